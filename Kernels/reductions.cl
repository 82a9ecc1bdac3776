// Full reductions to one scalar, launched by OpenCLBackend.sum / sumOfSquares: each work-group
// strides over the input (grid-stride loop, coalesced), reduces in local memory (the local size
// is a power of two) and writes one partial; the host adds the few partials in double.
#pragma OPENCL FP_CONTRACT OFF

inline void reduce_partial(__local float *scratch, __global float *partials) {
    uint lid = get_local_id(0);
    for (uint span = get_local_size(0) / 2; span > 0; span >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < span) scratch[lid] += scratch[lid + span];
    }
    if (lid == 0) partials[get_group_id(0)] = scratch[0];
}

__kernel void sum_partials(__global const float *x, uint count, __global float *partials,
                           __local float *scratch) {
    float s = 0.0f;
    for (uint i = get_global_id(0); i < count; i += get_global_size(0)) s += x[i];
    scratch[get_local_id(0)] = s;
    reduce_partial(scratch, partials);
}

__kernel void sum_of_squares_partials(__global const float *x, uint count, __global float *partials,
                                      __local float *scratch) {
    float s = 0.0f;
    for (uint i = get_global_id(0); i < count; i += get_global_size(0)) { float v = x[i]; s += v * v; }
    scratch[get_local_id(0)] = s;
    reduce_partial(scratch, partials);
}
