import JEMBackend
/// Adam (the paper's) or SGD with momentum over the network's trainable parameters, with the
/// per-parameter state on the device. `step` is the single point where "gradients ready"
/// becomes "parameters updated" (the place a data-parallel all-reduce would go).
public final class Optimizer {
    public enum Kind: String, Sendable, Codable, CaseIterable { case adam, sgd }

    public let kind: Kind
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var momentum: Float = 0.9
    public var weightDecay: Float
    /// Optimizer steps taken so far (Adam's bias correction uses step + 1 for the next one).
    public var stepCount = 0

    let parameters: [Parameter]
    /// Adam: first and second moments; SGD: the momentum buffer in `first`.
    let first: [DeviceBuffer]
    let second: [DeviceBuffer]
    let backend: any Backend

    public init(kind: Kind, parameters: [Parameter], weightDecay: Float, backend: any Backend) throws {
        self.kind = kind
        self.parameters = parameters
        self.weightDecay = weightDecay
        self.backend = backend
        first = try parameters.map { p in
            let b = try backend.makeBuffer(count: p.count)
            backend.fill(b, value: 0, offset: 0, count: p.count)
            return b
        }
        second = try parameters.map { p in
            let b = try backend.makeBuffer(count: kind == .adam ? p.count : 0)
            if kind == .adam { backend.fill(b, value: 0, offset: 0, count: p.count) }
            return b
        }
    }

    public func step(learningRate: Float) {
        stepCount += 1
        for (i, p) in parameters.enumerated() {
            switch kind {
            case .adam:
                backend.adamUpdate(parameters: p.value, gradients: p.gradient, firstMoment: first[i],
                                   secondMoment: second[i], count: p.count,
                                   hyper: AdamHyperparameters(learningRate: learningRate, beta1: beta1, beta2: beta2,
                                                              epsilon: epsilon, weightDecay: weightDecay),
                                   step: stepCount)
            case .sgd:
                backend.sgdMomentumUpdate(parameters: p.value, gradients: p.gradient, momentumBuffer: first[i],
                                          count: p.count, learningRate: learningRate, momentum: momentum,
                                          weightDecay: weightDecay)
            }
        }
    }

    /// The per-parameter state tensors, named for checkpoints.
    var stateTensors: [(name: String, buffer: DeviceBuffer, shape: [Int])] {
        var list: [(String, DeviceBuffer, [Int])] = []
        for (i, p) in parameters.enumerated() {
            list.append(("train.optimizer.\(kind == .adam ? "exp_avg" : "momentum").\(p.name)", first[i], p.shape))
            if kind == .adam { list.append(("train.optimizer.exp_avg_sq.\(p.name)", second[i], p.shape)) }
        }
        return list
    }
}

/// The official schedule: linear warmup lr * it / warmup while it <= warmup (so iteration 0 runs
/// at lr 0, as in train_wrn_ebm.py), then lr * rate^(number of decay epochs reached).
public struct LearningRateSchedule: Sendable, Codable, Equatable {
    public var base: Float
    public var warmupIterations: Int
    public var decayEpochs: [Int]
    public var decayRate: Float

    public init(base: Float, warmupIterations: Int, decayEpochs: [Int], decayRate: Float) {
        self.base = base
        self.warmupIterations = warmupIterations
        self.decayEpochs = decayEpochs
        self.decayRate = decayRate
    }

    /// A preset's decay epochs moved to a run of `epochs` instead of `presetEpochs`, keeping each
    /// decay at the same share of the run (rounded up to a whole epoch): [3] of 4 epochs becomes
    /// [5] of 6, [160, 180] of 200 becomes [8, 9] of 10. Without it, `--epochs 6` on the default
    /// preset would decay at epoch 3 and train half the run at the low rate.
    public static func stretch(_ decayEpochs: [Int], from presetEpochs: Int, to epochs: Int) -> [Int] {
        guard presetEpochs > 0, epochs > 0 else { return decayEpochs }
        return decayEpochs.map { ($0 * epochs + presetEpochs - 1) / presetEpochs }
    }

    public func rate(iteration: Int, epoch: Int) -> Float {
        if warmupIterations > 0 && iteration <= warmupIterations {
            return base * Float(iteration) / Float(warmupIterations)
        }
        let decays = decayEpochs.filter { epoch >= $0 }.count
        return base * pow(decayRate, Float(decays))
    }
}

import Foundation
