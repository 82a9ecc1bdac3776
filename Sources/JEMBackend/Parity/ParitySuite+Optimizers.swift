import Foundation
import JEMSupport

/// The "optimizers" op group: Adam and SGD (Kernels/optimizers.cl).
extension ParitySuite {
    static func optimizers(_ h: ParityHarness) throws {
        let cases = [(1031, AdamHyperparameters(learningRate: 1e-3, weightDecay: 0.01), 1),
                     (77, AdamHyperparameters(learningRate: 0.1, beta1: 0.8, beta2: 0.99, epsilon: 1e-6), 7)]
        for (count, hyper, step) in cases {
            let parameters = try h.pair(h.random(count)), gradients = try h.pair(h.random(count))
            let m = try h.pair(h.random(count, -0.1, 0.1)), v = try h.pair(h.random(count, 0, 0.01))
            h.both { b, p in
                b.adamUpdate(parameters: p(parameters), gradients: p(gradients), firstMoment: p(m), secondMoment: p(v),
                             count: count, hyper: hyper, step: step)
            }
            let detail = "\(count) elements, lr \(hyper.learningRate), wd \(hyper.weightDecay), step \(step)"
            try h.check("adamUpdate parameters", parameters, detail)
            try h.check("adamUpdate first moment", m, detail)
            try h.check("adamUpdate second moment", v, detail)
        }
        for (count, lr, momentum, wd) in [(1031, Float(0.1), Float(0.9), Float(5e-4)), (77, Float(0.5), Float(0), Float(0))] {
            let parameters = try h.pair(h.random(count)), gradients = try h.pair(h.random(count))
            let buffer = try h.pair(h.random(count))
            h.both { b, p in
                b.sgdMomentumUpdate(parameters: p(parameters), gradients: p(gradients), momentumBuffer: p(buffer),
                                    count: count, learningRate: lr, momentum: momentum, weightDecay: wd)
            }
            let detail = "\(count) elements, lr \(lr), momentum \(momentum), wd \(wd)"
            try h.check("sgdMomentumUpdate parameters", parameters, detail)
            try h.check("sgdMomentumUpdate momentum", buffer, detail)
        }
    }
}
