// Row-wise LogSumExp (the JEM energy), its gradient, and softmax cross-entropy, launched by
// OpenCLBackend.logSumExpRows / logSumExpBackward / softmaxCrossEntropyForward / ...Backward.
// Rows are reduced by one work-group each (the local size is a power of two), in local memory.
// Special rows behave as on the CPU: a row of all -inf gives -inf, any +inf gives +inf; the
// max is subtracted first, so rows of +-1000 neither overflow nor underflow.
#pragma OPENCL FP_CONTRACT OFF

// max(row[0 ..< cols]) (-inf for an empty row), computed by the whole work-group; every
// work-item gets it. `scratch` holds get_local_size(0) floats. All work-items must call it.
inline float row_max(__global const float *row, uint cols, __local float *scratch) {
    uint lid = get_local_id(0), size = get_local_size(0);
    float m = -INFINITY;
    for (uint c = lid; c < cols; c += size) m = fmax(m, row[c]);
    scratch[lid] = m;
    for (uint span = size / 2; span > 0; span >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < span) scratch[lid] = fmax(scratch[lid], scratch[lid + span]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    m = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return m;
}

// sum(exp(row[c] - m)), computed by the whole work-group; every work-item gets it.
inline float row_sum_exp(__global const float *row, uint cols, float m, __local float *scratch) {
    uint lid = get_local_id(0), size = get_local_size(0);
    float s = 0.0f;
    for (uint c = lid; c < cols; c += size) s += exp(row[c] - m);
    scratch[lid] = s;
    for (uint span = size / 2; span > 0; span >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < span) scratch[lid] += scratch[lid + span];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    s = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return s;
}

// log(sum(exp(row[0 ..< cols]))) = m + log(sum(exp(row - m))), m = the row max; every work-item
// gets it. -inf for a row of -inf, +inf when any entry is +inf.
inline float row_logsumexp(__global const float *row, uint cols, __local float *scratch) {
    float m = row_max(row, cols, scratch);
    if (m == -INFINITY || m == INFINITY) return m;   // uniform: every work-item holds the same m
    return m + log(row_sum_exp(row, cols, m, scratch));
}

// out[r] = log sum_c exp(x[r][c]); one work-group per row.
__kernel void logsumexp_rows(__global const float *x, __global float *out, uint cols,
                             __local float *scratch) {
    uint r = get_group_id(0);
    float lse = row_logsumexp(x + (size_t)r * cols, cols, scratch);
    if (get_local_id(0) == 0) out[r] = lse;
}

// gradX[r][c] (+)= gradOut[r] * softmax(x[r])[c]; one work-group per row. The softmax is
// exp(x - max) / sum(exp(x - max)) from the row itself, not exp(x - lse): with |lse| ~ 1000 the
// float lse has lost the low bits that the difference needs. A row of -inf has gradient 0.
__kernel void logsumexp_backward(__global const float *x, __global const float *gradOut,
                                 __global float *gradX, uint cols, uint accumulate,
                                 __local float *scratch) {
    uint r = get_group_id(0), lid = get_local_id(0), size = get_local_size(0);
    __global const float *row = x + (size_t)r * cols;
    __global float *grad = gradX + (size_t)r * cols;
    float m = row_max(row, cols, scratch);
    float s = m > -INFINITY ? row_sum_exp(row, cols, m, scratch) : 0.0f;   // uniform branch
    float g = gradOut[r];
    for (uint c = lid; c < cols; c += size) {
        float v = m == -INFINITY ? 0.0f : g * (exp(row[c] - m) / s);
        grad[c] = accumulate ? grad[c] + v : v;
    }
}

// losses[r] = lse(logits[r]) - logits[r][labels[r]]; one work-group per row.
// A label outside 0 ..< cols gives NaN (the CPU backend stops with a precondition instead).
__kernel void softmax_cross_entropy_forward(__global const float *logits, __global const int *labels,
                                            __global float *losses, uint cols, __local float *scratch) {
    uint r = get_group_id(0);
    __global const float *row = logits + (size_t)r * cols;
    float lse = row_logsumexp(row, cols, scratch);
    if (get_local_id(0) == 0) {
        int label = labels[r];
        losses[r] = (label >= 0 && label < (int)cols) ? lse - row[label] : NAN;
    }
}

// gradLogits[r][c] (+)= scale * (softmax(logits[r])[c] - (c == labels[r])); one work-group per row.
__kernel void softmax_cross_entropy_backward(__global const float *logits, __global const int *labels,
                                             __global float *gradLogits, uint cols, float scale,
                                             uint accumulate, __local float *scratch) {
    uint r = get_group_id(0), lid = get_local_id(0), size = get_local_size(0);
    __global const float *row = logits + (size_t)r * cols;
    __global float *grad = gradLogits + (size_t)r * cols;
    float lse = row_logsumexp(row, cols, scratch);
    int label = labels[r];
    for (uint c = lid; c < cols; c += size) {
        float v = scale * (exp(row[c] - lse) - ((int)c == label ? 1.0f : 0.0f));
        grad[c] = accumulate ? grad[c] + v : v;
    }
}
