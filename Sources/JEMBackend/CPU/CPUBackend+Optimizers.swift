import Foundation
import JEMSupport

/// Adam and SGD with momentum (the "optimizers" op group, Kernels/optimizers.cl on OpenCL).
extension CPUBackend {
    public func adamUpdate(parameters: DeviceBuffer, gradients: DeviceBuffer, firstMoment: DeviceBuffer,
                           secondMoment: DeviceBuffer, count: Int, hyper: AdamHyperparameters, step: Int) {
        let p = UnsafeSendable(f(parameters)), g = UnsafeSendable(f(gradients))
        let m = UnsafeSendable(f(firstMoment)), v = UnsafeSendable(f(secondMoment))
        let c = AdamCoefficients(hyper, step: step)
        Parallel.forEachChunk(count) { r in for i in r {
            let grad = g.value[i] + hyper.weightDecay * p.value[i]
            let mi = hyper.beta1 * m.value[i] + (1 - hyper.beta1) * grad
            let vi = hyper.beta2 * v.value[i] + (1 - hyper.beta2) * grad * grad
            m.value[i] = mi
            v.value[i] = vi
            p.value[i] -= c.stepSize * mi / (vi.squareRoot() / c.sqrtBiasCorrection2 + hyper.epsilon)
        } }
    }

    public func sgdMomentumUpdate(parameters: DeviceBuffer, gradients: DeviceBuffer, momentumBuffer: DeviceBuffer,
                                  count: Int, learningRate: Float, momentum: Float, weightDecay: Float) {
        let p = UnsafeSendable(f(parameters)), g = UnsafeSendable(f(gradients)), b = UnsafeSendable(f(momentumBuffer))
        Parallel.forEachChunk(count) { r in for i in r {
            let buf = momentum * b.value[i] + g.value[i] + weightDecay * p.value[i]
            b.value[i] = buf
            p.value[i] -= learningRate * buf
        } }
    }
}
