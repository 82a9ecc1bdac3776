/// Adam and SGD-with-momentum updates (Kernels/optimizers.cl), one work-item per parameter.
extension OpenCLBackend {
    public func adamUpdate(parameters: DeviceBuffer, gradients: DeviceBuffer, firstMoment: DeviceBuffer,
                           secondMoment: DeviceBuffer, count: Int, hyper: AdamHyperparameters, step: Int) {
        guard count > 0 else { return }
        guard step >= 1 else {
            record(BackendError("adamUpdate: Adam steps count from 1 (got \(step))"))
            return
        }
        guard ready("adamUpdate", sizes: [count], .floats(parameters, count, "parameters"),
                    .floats(gradients, count, "gradients"), .floats(firstMoment, count, "firstMoment"),
                    .floats(secondMoment, count, "secondMoment")) else { return }
        let c = AdamCoefficients(hyper, step: step)
        launchElementwise("adam_update", in: .optimizers, count: count,
                          [.buffer(parameters), .buffer(gradients), .buffer(firstMoment), .buffer(secondMoment),
                           .u32(count), .f32(c.stepSize), .f32(c.sqrtBiasCorrection2), .f32(hyper.beta1),
                           .f32(hyper.beta2), .f32(hyper.epsilon), .f32(hyper.weightDecay)])
    }

    public func sgdMomentumUpdate(parameters: DeviceBuffer, gradients: DeviceBuffer, momentumBuffer: DeviceBuffer,
                                  count: Int, learningRate: Float, momentum: Float, weightDecay: Float) {
        guard count > 0, ready("sgdMomentumUpdate", sizes: [count], .floats(parameters, count, "parameters"),
                               .floats(gradients, count, "gradients"),
                               .floats(momentumBuffer, count, "momentumBuffer")) else { return }
        launchElementwise("sgd_momentum_update", in: .optimizers, count: count,
                          [.buffer(parameters), .buffer(gradients), .buffer(momentumBuffer), .u32(count),
                           .f32(learningRate), .f32(momentum), .f32(weightDecay)])
    }
}
