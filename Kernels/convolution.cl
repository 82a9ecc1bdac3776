// Convolution through im2col + one GEMM, laid out "channel-major":
//   col[row][n*spatial + oy*OW + ox],  row = (c*k + ky)*k + kx,  spatial = OH*OW,
// so that W[Cout][Cin*k*k] x col[Cin*k*k][images*spatial] is one GEMM for a whole chunk of images,
// and its product [Cout][images*spatial] is permuted back to NCHW (with the bias fused in).
// Launched by OpenCLBackend.conv2dForward / conv2dBackwardData / conv2dBackwardFilter.
// Element offsets are passed explicitly (no sub-buffers); every kernel guards its range, because
// global sizes are rounded up to the work-group size.
#pragma OPENCL FP_CONTRACT OFF

// One work-item per column-matrix row segment: (output row oy, patch row (c, ky, kx), image n) as
// dims (0, 1, 2). It writes the outWidth columns of that output row: zeros where the tap falls into
// the padding, and a contiguous (stride 1) or strided copy of one input row in between, with no
// per-element divisions. (PoCL runs the work-items of a group as loops; the copy loop vectorises.)
__kernel void im2col(__global const float *input, uint inputOffset,
                     __global float *col,
                     uint channels, uint height, uint width,
                     uint kernelSize, uint stride, uint padding,
                     uint outHeight, uint outWidth, uint images) {
    uint oy = get_global_id(0), row = get_global_id(1), n = get_global_id(2);
    uint patch = channels * kernelSize * kernelSize;
    if (oy >= outHeight || row >= patch || n >= images) return;
    uint c = row / (kernelSize * kernelSize), kk = row - c * kernelSize * kernelSize;
    uint ky = kk / kernelSize, kx = kk - ky * kernelSize;
    uint spatial = outHeight * outWidth, cols = images * spatial;
    __global float *target = col + (size_t)row * cols + n * spatial + oy * outWidth;
    int iy = (int)(oy * stride + ky) - (int)padding;
    if (iy < 0 || iy >= (int)height) {
        for (uint ox = 0; ox < outWidth; ++ox) target[ox] = 0.0f;
        return;
    }
    // Valid ox: 0 <= ox*stride + kx - padding < width.
    uint first = kx >= padding ? 0 : (padding - kx + stride - 1) / stride;
    uint end = width + padding > kx ? (width + padding - kx + stride - 1) / stride : 0;
    end = min(end, outWidth);
    first = min(first, end);
    // Pixel ix = ox * stride + kx - padding of input row iy (valid ox only).
    __global const float *source = input + inputOffset + ((n * channels + c) * height + (uint)iy) * width;
    int shift = (int)kx - (int)padding;
    for (uint ox = 0; ox < first; ++ox) target[ox] = 0.0f;
    if (stride == 1) {
        for (uint ox = first; ox < end; ++ox) target[ox] = source[(int)ox + shift];
    } else {
        for (uint ox = first; ox < end; ++ox) target[ox] = source[(int)(ox * stride) + shift];
    }
    for (uint ox = end; ox < outWidth; ++ox) target[ox] = 0.0f;
}

// The adjoint of im2col: one work-item per input row (iy, channel c, image n) as dims (0, 1, 2)
// sums every column entry that read a pixel of that row, tap by tap in (ky, kx) order, into the
// row of gradInput (first cleared, or kept when accumulate != 0). No two work-items write the same
// pixel, so no atomics are needed.
__kernel void col2im(__global const float *col,
                     __global float *gradInput, uint gradInputOffset,
                     uint channels, uint height, uint width,
                     uint kernelSize, uint stride, uint padding,
                     uint outHeight, uint outWidth, uint images, uint accumulate) {
    uint iy = get_global_id(0), c = get_global_id(1), n = get_global_id(2);
    if (iy >= height || c >= channels || n >= images) return;
    uint spatial = outHeight * outWidth, cols = images * spatial;
    __global float *target = gradInput + gradInputOffset + ((n * channels + c) * height + iy) * width;
    if (!accumulate) {
        for (uint ix = 0; ix < width; ++ix) target[ix] = 0.0f;
    }
    for (uint ky = 0; ky < kernelSize; ++ky) {
        int ty = (int)(iy + padding) - (int)ky;          // = oy * stride
        if (ty < 0 || ty % (int)stride != 0) continue;
        uint oy = (uint)ty / stride;
        if (oy >= outHeight) continue;
        for (uint kx = 0; kx < kernelSize; ++kx) {
            uint row = (c * kernelSize + ky) * kernelSize + kx;
            __global const float *source = col + (size_t)row * cols + n * spatial + oy * outWidth;
            uint first = kx >= padding ? 0 : (padding - kx + stride - 1) / stride;
            uint end = width + padding > kx ? (width + padding - kx + stride - 1) / stride : 0;
            end = min(end, outWidth);
            int shift = (int)kx - (int)padding;                // pixel ix = ox * stride + shift
            if (stride == 1) {
                for (uint ox = first; ox < end; ++ox) target[(int)ox + shift] += source[ox];
            } else {
                for (uint ox = first; ox < end; ++ox) target[(int)(ox * stride) + shift] += source[ox];
            }
        }
    }
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

// ---------------------------------------------------------------------------------------------
// conv_gemm: the convolutions' own GEMM (replaces CLBlast in the forward and backward-data paths),
// batched over images with element strides, so that it reads and writes NCHW tensors directly:
//   C[b][m][n] = (accumulate ? C[b][m][n] : 0) + sum_k A[m, k] * B[b][k][n] (+ bias[m]),
// A element (m, k) at A[aOffset + m*aRowStride + k*aColStride] (so W and W^T are the same kernel),
// B[b][k][n] at B[bOffset + b*bBatchStride + k*ldb + n], C[b][m][n] at C[cOffset + b*cBatchStride + m*ldc + n].
// Each work-item computes a register tile of GEMM_MR rows x GEMM_NR columns, kept in GEMM_NV vectors
// of GEMM_VW floats per row; the k loop loads GEMM_NV vectors of B and broadcasts GEMM_MR scalars of
// A. NDRange: dim 0 = row block, dim 1 = column block, dim 2 = batch; a work-group spans row blocks
// of the same columns, so the B panel it shares stays in cache. Tiles that stick out of the matrix
// take a guarded scalar path. The tile shape comes from #defines the backend puts in front of this
// file per device (a CPU OpenCL device wants wide vectors per work-item: PoCL keeps the register tile
// in AVX registers; a GPU wants small tiles per work-item and many work-items).
#ifndef GEMM_MR
#define GEMM_MR 4
#endif
#ifndef GEMM_NV
#define GEMM_NV 4
#endif
#ifndef GEMM_VW
#define GEMM_VW 16
#endif
#define GEMM_NR (GEMM_NV * GEMM_VW)
#if GEMM_VW == 16
#define GVEC float16
#define GLOAD vload16
#define GSTORE vstore16
#elif GEMM_VW == 8
#define GVEC float8
#define GLOAD vload8
#define GSTORE vstore8
#elif GEMM_VW == 4
#define GVEC float4
#define GLOAD vload4
#define GSTORE vstore4
#else
#error "GEMM_VW must be 4, 8 or 16"
#endif

__kernel void conv_gemm(__global const float *A, uint aOffset, uint aRowStride, uint aColStride,
                        __global const float *B, uint bOffset, uint ldb, uint bBatchStride,
                        __global float *C, uint cOffset, uint ldc, uint cBatchStride,
                        uint M, uint N, uint K,
                        __global const float *bias, uint hasBias, uint accumulate) {
    uint m0 = get_global_id(0) * GEMM_MR, n0 = get_global_id(1) * GEMM_NR, b = get_global_id(2);
    if (m0 >= M || n0 >= N) return;
    __global const float *a = A + aOffset + m0 * aRowStride;
    __global const float *bp = B + bOffset + b * bBatchStride + n0;
    __global float *c = C + cOffset + b * cBatchStride + m0 * ldc + n0;
    if (m0 + GEMM_MR <= M && n0 + GEMM_NR <= N) {
        GVEC acc[GEMM_MR][GEMM_NV];
        _Pragma("unroll") for (int i = 0; i < GEMM_MR; ++i)
            _Pragma("unroll") for (int j = 0; j < GEMM_NV; ++j) acc[i][j] = (GVEC)(0.0f);
        for (uint k = 0; k < K; ++k) {
            GVEC bv[GEMM_NV];
            _Pragma("unroll") for (int j = 0; j < GEMM_NV; ++j) bv[j] = GLOAD(0, bp + k * ldb + j * GEMM_VW);
            _Pragma("unroll") for (int i = 0; i < GEMM_MR; ++i) {
                GVEC av = (GVEC)(a[i * aRowStride + k * aColStride]);
                _Pragma("unroll") for (int j = 0; j < GEMM_NV; ++j) acc[i][j] = fma(av, bv[j], acc[i][j]);
            }
        }
        _Pragma("unroll") for (int i = 0; i < GEMM_MR; ++i) {
            GVEC extra = (GVEC)(hasBias ? bias[m0 + i] : 0.0f);
            _Pragma("unroll") for (int j = 0; j < GEMM_NV; ++j) {
                __global float *target = c + i * ldc + j * GEMM_VW;
                GVEC value = acc[i][j] + extra;
                if (accumulate) value += GLOAD(0, target);
                GSTORE(value, 0, target);
            }
        }
        return;
    }
    // Edge tile: scalar, guarded, the same sum in the same k order.
    uint rows = min((uint)GEMM_MR, M - m0), cols = min((uint)GEMM_NR, N - n0);
    for (uint i = 0; i < rows; ++i) {
        for (uint j = 0; j < cols; ++j) {
            float sum = 0.0f;
            for (uint k = 0; k < K; ++k) sum = fma(a[i * aRowStride + k * aColStride], bp[k * ldb + j], sum);
            if (hasBias) sum += bias[m0 + i];
            __global float *target = c + i * ldc + j;
            *target = accumulate ? *target + sum : sum;
        }
    }
}

// im2col transposed ("im2row") for one image: rows[p][r] = the patch entry r = (c, ky, kx) of output
// pixel p = oy*outWidth + ox of image `image`, zero in the padding; one work-item per output pixel
// writes its patch contiguously. It is the B operand of the filter gradient on conv_gemm,
// dW[Cout][patch] (+)= gradOut_n[Cout][spatial] x rows[spatial][patch], summed image by image.
__kernel void im2row(__global const float *input, uint image,
                     __global float *rows,
                     uint channels, uint height, uint width,
                     uint kernelSize, uint stride, uint padding,
                     uint outHeight, uint outWidth) {
    uint p = get_global_id(0);
    if (p >= outHeight * outWidth) return;
    uint oy = p / outWidth, ox = p - oy * outWidth;
    uint patch = channels * kernelSize * kernelSize;
    __global float *target = rows + (size_t)p * patch;
    __global const float *source = input + (size_t)image * channels * height * width;
    uint r = 0;
    for (uint c = 0; c < channels; ++c) {
        for (uint ky = 0; ky < kernelSize; ++ky) {
            int iy = (int)(oy * stride + ky) - (int)padding;
            bool rowInside = iy >= 0 && iy < (int)height;
            for (uint kx = 0; kx < kernelSize; ++kx, ++r) {
                int ix = (int)(ox * stride + kx) - (int)padding;
                target[r] = rowInside && ix >= 0 && ix < (int)width
                    ? source[(c * height + (uint)iy) * width + (uint)ix] : 0.0f;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Autotuning candidates (OpenCLBackend+ConvolutionTuning.swift), compiled only into the programs
// the tuner builds (JEM_CONV_CANDIDATES defined in front of this file), never into the default one.
#ifdef JEM_CONV_CANDIDATES
// conv_gemm_local: the contract of conv_gemm, tiled through local memory for GPUs. A work-group
// computes an LT_M x LT_N block of C: it stages LT_K-deep slices of A and B in local memory (every
// global element read once per group instead of once per work-item), and each work-item keeps an
// LT_WM x LT_WN register tile whose rows and columns are spread LT_M/LT_WM and LT_N/LT_WN apart.
// NDRange: dim 0 = columns (consecutive work-items read consecutive columns of B: coalesced),
// dim 1 = rows, dim 2 = batch. Each output is the same fma chain in the same k order as conv_gemm.
#ifndef LT_M
#define LT_M 64
#endif
#ifndef LT_N
#define LT_N 64
#endif
#ifndef LT_K
#define LT_K 16
#endif
#ifndef LT_WM
#define LT_WM 4
#endif
#ifndef LT_WN
#define LT_WN 4
#endif
#define LT_TM (LT_M / LT_WM)
#define LT_TN (LT_N / LT_WN)

__kernel __attribute__((reqd_work_group_size(LT_TN, LT_TM, 1)))
void conv_gemm_local(__global const float *A, uint aOffset, uint aRowStride, uint aColStride,
                     __global const float *B, uint bOffset, uint ldb, uint bBatchStride,
                     __global float *C, uint cOffset, uint ldc, uint cBatchStride,
                     uint M, uint N, uint K,
                     __global const float *bias, uint hasBias, uint accumulate) {
    __local float As[LT_K][LT_M];
    __local float Bs[LT_K][LT_N];
    uint tx = get_local_id(0), ty = get_local_id(1), tid = ty * LT_TN + tx;
    uint n0 = get_group_id(0) * LT_N, m0 = get_group_id(1) * LT_M, b = get_global_id(2);
    __global const float *bp = B + bOffset + b * bBatchStride;
    float acc[LT_WM][LT_WN];
    for (int i = 0; i < LT_WM; ++i)
        for (int j = 0; j < LT_WN; ++j) acc[i][j] = 0.0f;
    for (uint k0 = 0; k0 < K; k0 += LT_K) {
        for (uint e = tid; e < LT_K * LT_M; e += LT_TM * LT_TN) {
            uint kk = e / LT_M, mm = e - kk * LT_M, gm = m0 + mm, gk = k0 + kk;
            As[kk][mm] = gm < M && gk < K ? A[aOffset + gm * aRowStride + gk * aColStride] : 0.0f;
        }
        for (uint e = tid; e < LT_K * LT_N; e += LT_TM * LT_TN) {
            uint kk = e / LT_N, nn = e - kk * LT_N, gn = n0 + nn, gk = k0 + kk;
            Bs[kk][nn] = gn < N && gk < K ? bp[gk * ldb + gn] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        uint depth = min((uint)LT_K, K - k0);
#ifdef LT_FAULT_FOR_TESTS
        if (k0 == 0) depth -= 1;   // a deliberately wrong variant: the tuner's tests check it never wins
#endif
        for (uint kk = 0; kk < depth; ++kk) {
            float av[LT_WM], bv[LT_WN];
            for (int i = 0; i < LT_WM; ++i) av[i] = As[kk][ty + i * LT_TM];
            for (int j = 0; j < LT_WN; ++j) bv[j] = Bs[kk][tx + j * LT_TN];
            for (int i = 0; i < LT_WM; ++i)
                for (int j = 0; j < LT_WN; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    __global float *c = C + cOffset + b * cBatchStride;
    for (int i = 0; i < LT_WM; ++i) {
        uint m = m0 + ty + i * LT_TM;
        if (m >= M) continue;
        float extra = hasBias ? bias[m] : 0.0f;
        for (int j = 0; j < LT_WN; ++j) {
            uint n = n0 + tx + j * LT_TN;
            if (n >= N) continue;
            float value = acc[i][j] + extra;
            if (accumulate) value += c[m * ldc + n];
            c[m * ldc + n] = value;
        }
    }
}

// output[n][c][i] += bias[c] over `count` NCHW elements (after CLBlast's convgemm, which has no bias).
__kernel void add_channel_bias(__global float *output, uint offset, __global const float *bias,
                               uint channels, uint spatial, uint count) {
    uint index = get_global_id(0);
    if (index >= count) return;
    uint c = (index / spatial) % channels;
    output[offset + index] += bias[c];
}
#endif
