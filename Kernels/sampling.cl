// Sampling kernels: the SGLD step with Philox Gaussian noise, uniform fills, additive noise and
// the replay-buffer gather (with per-row re-initialisation) / scatter, launched by
// OpenCLBackend.sgldUpdate / fillUniform / addGaussianNoise / gatherRows / scatterRows.
//
// Random numbers are addressed exactly as on the CPU (Sources/JEM/Random/Philox.swift): element i
// of stream (seed, stream) is lane i%4 of Philox block i/4. The per-element kernels here run one
// work-item per block of 4 elements, so each block is computed once.
#pragma OPENCL FP_CONTRACT OFF
#include "common.cl"
#include "random.cl"

inline float lane_of(float4 v, uint lane) {
    return lane == 0 ? v.x : lane == 1 ? v.y : lane == 2 ? v.z : v.w;
}

// x += stepSize * clip(grad, +-gradClip) + noiseStd * N(0,1)[seed, stream, i], then
// x = clamp(x, low, high). "No clip" / "no clamp" are passed as +-INFINITY.
__kernel void sgld_update(__global float *x, __global const float *grad, uint count,
                          float stepSize, float noiseStd, ulong seed, ulong stream,
                          float gradClip, float low, float high) {
    uint block = get_global_id(0), first = block * 4;
    if (first >= count) return;
    float4 noise = philox_normal4(seed, stream, block);
    if (count - first >= 4) {
        float4 g = vload4(block, grad), v = vload4(block, x);
        float4 out;
        out.x = swift_min(swift_max(v.x + stepSize * swift_min(swift_max(g.x, -gradClip), gradClip) + noiseStd * noise.x, low), high);
        out.y = swift_min(swift_max(v.y + stepSize * swift_min(swift_max(g.y, -gradClip), gradClip) + noiseStd * noise.y, low), high);
        out.z = swift_min(swift_max(v.z + stepSize * swift_min(swift_max(g.z, -gradClip), gradClip) + noiseStd * noise.z, low), high);
        out.w = swift_min(swift_max(v.w + stepSize * swift_min(swift_max(g.w, -gradClip), gradClip) + noiseStd * noise.w, low), high);
        vstore4(out, block, x);
    } else {
        for (uint lane = 0; lane < count - first; ++lane) {
            uint i = first + lane;
            float g = swift_min(swift_max(grad[i], -gradClip), gradClip);
            float v = x[i] + stepSize * g + noiseStd * lane_of(noise, lane);
            x[i] = swift_min(swift_max(v, low), high);
        }
    }
}

// x[i] = low + (high - low) * U[0,1)[seed, stream, i].
__kernel void fill_uniform(__global float *x, uint count, float low, float high,
                           ulong seed, ulong stream) {
    uint block = get_global_id(0), first = block * 4;
    if (first >= count) return;
    uint4 r = philox_block(seed, stream, block);
    float range = high - low;
    float4 u = (float4)(philox_uniform01(r.x), philox_uniform01(r.y),
                        philox_uniform01(r.z), philox_uniform01(r.w));
    if (count - first >= 4) {
        vstore4((float4)(low + range * u.x, low + range * u.y, low + range * u.z, low + range * u.w),
                block, x);
    } else {
        for (uint lane = 0; lane < count - first; ++lane) x[first + lane] = low + range * lane_of(u, lane);
    }
}

// x[i] += std * N(0,1)[seed, stream, i].
__kernel void add_gaussian_noise(__global float *x, uint count, float std, ulong seed, ulong stream) {
    uint block = get_global_id(0), first = block * 4;
    if (first >= count) return;
    float4 noise = philox_normal4(seed, stream, block);
    if (count - first >= 4) {
        float4 v = vload4(block, x);
        vstore4((float4)(v.x + std * noise.x, v.y + std * noise.y, v.z + std * noise.z, v.w + std * noise.w),
                block, x);
    } else {
        for (uint lane = 0; lane < count - first; ++lane) x[first + lane] += std * lane_of(noise, lane);
    }
}

// Replay-buffer read, one work-item per output element (r, j):
// out[r][j] = (hasReinit && reinit[r] != 0) ? 2 * U[0,1)[seed, stream, r*rowSize + j] - 1
//                                           : source[indices[r]][j].
// An index outside 0 ..< sourceRows yields NaN (the CPU backend stops with a precondition).
__kernel void gather_rows(__global const float *source, uint sourceRows,
                          __global const int *indices, __global const int *reinit, uint hasReinit,
                          uint rows, uint rowSize, ulong seed, ulong stream, __global float *out) {
    uint i = get_global_id(0);
    if (i >= rows * rowSize) return;
    uint r = i / rowSize, j = i - r * rowSize;
    if (hasReinit && reinit[r] != 0) {
        out[i] = 2.0f * philox_uniform_at(seed, stream, (ulong)i) - 1.0f;
    } else {
        int index = indices[r];
        out[i] = (index >= 0 && (uint)index < sourceRows) ? source[(size_t)index * rowSize + j] : NAN;
    }
}

// Replay-buffer write-back: destination[indices[r]][j] = source[r][j], skipping negative indices
// (and, defensively, indices past the end). One work-item per source element.
__kernel void scatter_rows(__global const float *source, __global const int *indices,
                           uint rows, uint rowSize, uint destinationRows, __global float *destination) {
    uint i = get_global_id(0);
    if (i >= rows * rowSize) return;
    uint r = i / rowSize, j = i - r * rowSize;
    int index = indices[r];
    if (index < 0 || (uint)index >= destinationRows) return;
    destination[(size_t)index * rowSize + j] = source[i];
}
