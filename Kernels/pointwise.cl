// Pointwise ops, bias forward/backward and global average pooling, launched by the OpenCLBackend
// methods of the same names (activationForward -> leaky_relu_forward / swish_forward, ...).
// 1-D NDRanges rounded up to the work-group size, so every kernel guards `index < count`.
// Formulas follow CPUBackend term by term; FP_CONTRACT OFF keeps a*b+c from being fused.
#pragma OPENCL FP_CONTRACT OFF

#include "common.cl"

inline float sigmoid(float v) { return 1.0f / (1.0f + exp(-v)); }

__kernel void leaky_relu_forward(__global const float *x, __global float *y, float slope, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float v = x[i];
    y[i] = v > 0.0f ? v : slope * v;
}

__kernel void leaky_relu_backward(__global const float *x, __global const float *gradY,
                                  __global float *gradX, float slope, uint count, uint accumulate) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float g = gradY[i] * (x[i] > 0.0f ? 1.0f : slope);
    gradX[i] = accumulate ? gradX[i] + g : g;
}

__kernel void swish_forward(__global const float *x, __global float *y, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float v = x[i];
    y[i] = v / (1.0f + exp(-v));
}

__kernel void swish_backward(__global const float *x, __global const float *gradY,
                             __global float *gradX, uint count, uint accumulate) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float v = x[i], sig = sigmoid(v);
    float g = gradY[i] * (sig + v * sig * (1.0f - sig));
    gradX[i] = accumulate ? gradX[i] + g : g;
}

// y = alpha * x + beta * y; beta == 0 does not read y (so garbage or NaN in y is overwritten).
__kernel void axpby(float alpha, __global const float *x, float beta, __global float *y, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    y[i] = beta == 0.0f ? alpha * x[i] : alpha * x[i] + beta * y[i];
}

__kernel void scale_values(__global float *x, float alpha, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    x[i] *= alpha;
}

__kernel void fill_values(__global float *x, float value, uint offset, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    x[offset + i] = value;
}

__kernel void clamp_values(__global float *x, float low, float high, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    x[i] = swift_min(swift_max(x[i], low), high);
}

// y = sign(x): +1, -1, or x itself for +-0 and NaN (as CPUBackend.sign).
__kernel void sign_values(__global const float *x, __global float *y, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float v = x[i];
    y[i] = v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v);
}

// x[i] *= factors[i / rowSize]; one work-item per element.
__kernel void scale_rows(__global float *x, __global const float *factors, uint rowSize, uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    x[i] *= factors[i / rowSize];
}

// C[r][c] = beta * C[r][c] over a rows x cols matrix with leading dimension ld at `offset`
// (GEMM with k == 0; beta == 0 writes zeros without reading C, as BLAS does).
__kernel void scale_matrix(__global float *c, uint offset, uint rows, uint cols, uint ld, float beta) {
    uint i = get_global_id(0);
    if (i >= rows * cols) return;
    uint r = i / cols, col = i - r * cols;
    __global float *p = c + offset + r * ld + col;
    *p = beta == 0.0f ? 0.0f : beta * *p;
}

// y[o][c][i] += bias[c] for y shaped [outer][channels][inner]; one work-item per element of y.
__kernel void add_bias(__global float *y, __global const float *bias, uint channels, uint inner,
                       uint count) {
    uint i = get_global_id(0);
    if (i >= count) return;
    y[i] += bias[(i / inner) % channels];
}

// Tree reduction of scratch[0 ..< get_local_size(0)] (a power of two) into scratch[0].
inline void reduce_local_sum(__local float *scratch) {
    uint lid = get_local_id(0);
    for (uint span = get_local_size(0) / 2; span > 0; span >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < span) scratch[lid] += scratch[lid + span];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

// gradBias[c] (+)= sum over o, i of gradY[o][c][i]. One work-group per channel: its work-items
// stride over the outer*inner elements of the channel, then reduce in local memory.
__kernel void bias_gradient(__global const float *gradY, __global float *gradBias,
                            uint outer, uint channels, uint inner, uint accumulate,
                            __local float *scratch) {
    uint c = get_group_id(0), lid = get_local_id(0), size = get_local_size(0);
    float sum = 0.0f;
    uint total = outer * inner;
    for (uint t = lid; t < total; t += size) {
        uint o = t / inner, i = t - o * inner;
        sum += gradY[(o * channels + c) * inner + i];
    }
    scratch[lid] = sum;
    reduce_local_sum(scratch);
    if (lid == 0) gradBias[c] = accumulate ? gradBias[c] + scratch[0] : scratch[0];
}

// y[r] = mean of x[r][0 ..< spatial]; one work-group per row. inverse = 1 / spatial.
__kernel void global_average_pool_forward(__global const float *x, __global float *y,
                                          uint spatial, float inverse, __local float *scratch) {
    uint r = get_group_id(0), lid = get_local_id(0), size = get_local_size(0);
    __global const float *row = x + r * spatial;
    float sum = 0.0f;
    for (uint i = lid; i < spatial; i += size) sum += row[i];
    scratch[lid] = sum;
    reduce_local_sum(scratch);
    if (lid == 0) y[r] = scratch[0] * inverse;
}

// gradX[r][i] (+)= gradY[r] * inverse; one work-item per element of gradX.
__kernel void global_average_pool_backward(__global const float *gradY, __global float *gradX,
                                           uint spatial, float inverse, uint count, uint accumulate) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float g = gradY[i / spatial] * inverse;
    gradX[i] = accumulate ? gradX[i] + g : g;
}

// One work-group per row: n = ||x_r||_2 (sum of squares reduced in local memory), written to
// norms[r] when writeNorms; then x_r *= target / n, always (atMost == 0) or only when n > target
// (atMost == 1, the projection onto the L2 ball). A row of zeros is left unchanged.
__kernel void rescale_rows(__global float *x, __global float *norms, uint rowSize, float target,
                           uint atMost, uint writeNorms, __local float *scratch) {
    uint r = get_group_id(0), lid = get_local_id(0), size = get_local_size(0);
    __global float *row = x + (size_t)r * rowSize;
    float s = 0.0f;
    for (uint j = lid; j < rowSize; j += size) s += row[j] * row[j];
    scratch[lid] = s;
    reduce_local_sum(scratch);
    float n = sqrt(scratch[0]);
    if (writeNorms && lid == 0) norms[r] = n;
    if (n > 0.0f && (!atMost || n > target)) {
        float factor = target / n;
        for (uint j = lid; j < rowSize; j += size) row[j] *= factor;
    }
}
