// Convolution through im2col + one GEMM, laid out "channel-major":
//   col[row][n*spatial + oy*OW + ox],  row = (c*k + ky)*k + kx,  spatial = OH*OW,
// so that W[Cout][Cin*k*k] x col[Cin*k*k][images*spatial] is one GEMM for a whole chunk of images,
// and its product [Cout][images*spatial] is permuted back to NCHW (with the bias fused in).
// Launched by OpenCLBackend.conv2dForward / conv2dBackwardData / conv2dBackwardFilter.
// Element offsets are passed explicitly (no sub-buffers); every kernel guards its range, because
// global sizes are rounded up to the work-group size.
#pragma OPENCL FP_CONTRACT OFF

// 2-D NDRange: dim 0 = column (image n, output pixel), dim 1 = row (c, ky, kx).
// Consecutive work-items write consecutive columns: coalesced writes.
__kernel void im2col(__global const float *input, uint inputOffset,
                     __global float *col,
                     uint channels, uint height, uint width,
                     uint kernelSize, uint stride, uint padding,
                     uint outHeight, uint outWidth, uint images) {
    uint column = get_global_id(0), row = get_global_id(1);
    uint spatial = outHeight * outWidth, cols = images * spatial;
    uint patch = channels * kernelSize * kernelSize;
    if (column >= cols || row >= patch) return;
    uint n = column / spatial, pixel = column - n * spatial;
    uint oy = pixel / outWidth, ox = pixel - oy * outWidth;
    uint c = row / (kernelSize * kernelSize), kk = row - c * kernelSize * kernelSize;
    uint ky = kk / kernelSize, kx = kk - ky * kernelSize;
    int iy = (int)(oy * stride + ky) - (int)padding;
    int ix = (int)(ox * stride + kx) - (int)padding;
    float value = 0.0f;
    if (iy >= 0 && iy < (int)height && ix >= 0 && ix < (int)width) {
        value = input[inputOffset + ((n * channels + c) * height + (uint)iy) * width + (uint)ix];
    }
    col[row * cols + column] = value;
}

// The adjoint of im2col written as a gather: one work-item per input pixel (n, c, iy, ix) sums
// every column entry that read it, in (ky, kx) order. No two work-items write the same pixel,
// so no atomics are needed. accumulate != 0 adds to gradInput instead of overwriting it.
__kernel void col2im(__global const float *col,
                     __global float *gradInput, uint gradInputOffset,
                     uint channels, uint height, uint width,
                     uint kernelSize, uint stride, uint padding,
                     uint outHeight, uint outWidth, uint images, uint accumulate) {
    uint index = get_global_id(0);
    uint imageSize = channels * height * width;
    if (index >= images * imageSize) return;
    uint n = index / imageSize, rest = index - n * imageSize;
    uint c = rest / (height * width), p = rest - c * height * width;
    uint iy = p / width, ix = p - iy * width;
    uint spatial = outHeight * outWidth, cols = images * spatial;
    __global float *target = gradInput + gradInputOffset + index;
    float sum = accumulate ? *target : 0.0f;
    for (uint ky = 0; ky < kernelSize; ++ky) {
        int ty = (int)(iy + padding) - (int)ky;          // = oy * stride
        if (ty < 0 || ty % (int)stride != 0) continue;
        uint oy = (uint)ty / stride;
        if (oy >= outHeight) continue;
        for (uint kx = 0; kx < kernelSize; ++kx) {
            int tx = (int)(ix + padding) - (int)kx;      // = ox * stride
            if (tx < 0 || tx % (int)stride != 0) continue;
            uint ox = (uint)tx / stride;
            if (ox >= outWidth) continue;
            uint row = (c * kernelSize + ky) * kernelSize + kx;
            sum += col[row * cols + n * spatial + oy * outWidth + ox];
        }
    }
    *target = sum;
}

// [images][channels][spatial] (NCHW, starting at sourceOffset) -> [channels][images*spatial].
// One work-item per destination element: coalesced writes, reads in runs of `spatial`.
__kernel void nchw_to_channel_major(__global const float *source, uint sourceOffset,
                                    __global float *destination,
                                    uint channels, uint images, uint spatial) {
    uint index = get_global_id(0);
    uint cols = images * spatial;
    if (index >= channels * cols) return;
    uint c = index / cols, rest = index - c * cols;
    uint n = rest / spatial, i = rest - n * spatial;
    destination[index] = source[sourceOffset + (n * channels + c) * spatial + i];
}

// [channels][images*spatial] -> [images][channels][spatial] (NCHW, starting at destinationOffset),
// adding bias[c] when hasBias != 0 (bias may then be any buffer).
__kernel void channel_major_to_nchw(__global const float *source,
                                    __global float *destination, uint destinationOffset,
                                    __global const float *bias, uint hasBias,
                                    uint channels, uint images, uint spatial) {
    uint index = get_global_id(0);
    if (index >= images * channels * spatial) return;
    uint n = index / (channels * spatial), rest = index - n * channels * spatial;
    uint c = rest / spatial, i = rest - c * spatial;
    float value = source[c * images * spatial + n * spatial + i];
    if (hasBias) value += bias[c];
    destination[destinationOffset + index] = value;
}
