// Optimiser updates, launched by OpenCLBackend.adamUpdate / sgdMomentumUpdate. Each follows the
// CPU formula term by term (same operation order, no fused multiply-add), so the results agree
// to rounding of the math library; the program is built with correctly rounded divide and sqrt
// where the device supports it.
#pragma OPENCL FP_CONTRACT OFF

// PyTorch's Adam with L2 weight decay. stepSize = lr / (1 - beta1^t) and
// sqrtBiasCorrection2 = sqrt(1 - beta2^t) are computed on the host in double, as PyTorch does.
__kernel void adam_update(__global float *parameters, __global const float *gradients,
                          __global float *firstMoment, __global float *secondMoment, uint count,
                          float stepSize, float sqrtBiasCorrection2, float beta1, float beta2,
                          float epsilon, float weightDecay) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float p = parameters[i];
    float grad = gradients[i] + weightDecay * p;
    float m = beta1 * firstMoment[i] + (1.0f - beta1) * grad;
    float v = beta2 * secondMoment[i] + (1.0f - beta2) * grad * grad;
    firstMoment[i] = m;
    secondMoment[i] = v;
    parameters[i] = p - stepSize * m / (sqrt(v) / sqrtBiasCorrection2 + epsilon);
}

// PyTorch's SGD with momentum: buf = momentum * buf + (g + wd * p); p -= lr * buf.
__kernel void sgd_momentum_update(__global float *parameters, __global const float *gradients,
                                  __global float *momentumBuffer, uint count, float learningRate,
                                  float momentum, float weightDecay) {
    uint i = get_global_id(0);
    if (i >= count) return;
    float p = parameters[i];
    float buf = momentum * momentumBuffer[i] + gradients[i] + weightDecay * p;
    momentumBuffer[i] = buf;
    parameters[i] = p - learningRate * buf;
}
