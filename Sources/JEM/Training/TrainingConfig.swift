import JEMBackend
/// Which terms of the JEM objective a run optimises.
public enum TrainingMode: String, Sendable, Codable, CaseIterable {
    /// p(y|x) + p(x): the paper's recipe.
    case jem
    /// Cross-entropy only: the comparison every JEM result needs.
    case baseline
    /// jem plus the p(x, y) term with class-conditional chains.
    case jemXY = "jem-xy"
    /// p(x) only.
    case ebm
}

/// Every setting of a training run. Written to config.json and into each checkpoint.
public struct TrainingConfig: Sendable, Codable, Equatable {
    // Model
    public var model = "wrn-10-1"
    public var activation = "leaky-relu"
    // Objective
    public var mode = TrainingMode.jem
    public var pxWeight: Float = 1
    public var pyxWeight: Float = 1
    public var pxyWeight: Float = 1
    public var classConditionalSampling = false
    /// Iterations trained as a plain classifier before the p(x) term starts (0: from the start).
    public var pxDelay = 0
    /// Iterations over which the p(x) weight then ramps linearly from 0 to `pxWeight`.
    public var pxRamp = 0
    public var energyL2: Float = 0
    // SGLD
    public var sgldSteps = 20
    public var sgldLR: Float = 1
    public var sgldStd: Float = 0.01
    public var sgldGradClip: Float? = nil
    public var sgldClamp: Float? = nil
    public var bufferSize = 10000
    /// Where chains start and restart: U(-1,1) (official JEM) or per-class Gaussians (JEM++).
    public var bufferInit = BufferInit.uniform
    /// With `bufferInit` mixed: the probability that a start (initial row or restart) is drawn
    /// from the class Gaussians rather than U(-1,1).
    public var informativeShare: Float = 0.5
    public var reinitFrequency: Float = 0.05
    // Optimisation
    public var optimizer = Optimizer.Kind.adam
    public var learningRate: Float = 1e-4
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0
    public var warmupIterations = 1000
    public var decayEpochs = [160, 180]
    public var decayRate: Float = 0.3
    public var epochs = 200
    /// Stop after this many iterations in total (0 = run all epochs).
    public var maxIterations = 0
    public var batchSize = 64
    public var seed: UInt64 = 1
    // Divergence guard
    public var guardLossLimit: Float = 1e4
    public var guardGapLimit: Float = 1e3
    public var maxRecoveries = 5
    public var snapshotEvery = 100
    public var recoveryAction = RecoveryAction.cutLearningRate
    public var recoveryFactor: Float = 0.5
    // Data
    public var data = "builtin"
    /// The built-in dataset's sizes (`--builtin-train/--builtin-test`), kept so that `--resume`
    /// regenerates the same images; nil for other data (and in checkpoints that predate them).
    public var builtinTrainCount: Int? = nil
    public var builtinTestCount: Int? = nil
    /// Held-out validation images (nil: 5000 for 50k+ training sets, else 10%).
    public var validCount: Int? = nil
    /// Train on the first N training images only (`--train-limit`; nil: all of them). Applied
    /// before the validation split, by the trainer, --resume and every command that reproduces
    /// the run's split (`Dataset.limitingTrain(to:)`).
    public var trainLimit: Int? = nil
    /// Semi-supervised: labels kept per class (nil: all).
    public var labelsPerClass: Int? = nil
    public var augmentation = Augmentation()
    /// Gaussian noise added to inputs when evaluating (the official code adds sigma = .03 at
    /// test time too; 0 keeps results deterministic and noise-free). Recorded in every eval line.
    public var testNoise: Float = 0
    // Output
    public var logEvery = 25
    public var sampleEvery = 200
    /// SGLD steps of the class-conditional sample grid written at the end (0: none).
    public var finalSampleSteps = 100
    public var checkpointEvery = 500
    public var evalEvery = 1

    public enum RecoveryAction: String, Sendable, Codable, CaseIterable {
        /// Multiply the learning rate by `recoveryFactor`.
        case cutLearningRate = "cut-lr"
        /// Add 10 SGLD steps (the author's advice in wgrathwohl/JEM#8).
        case moreSGLDSteps = "more-sgld-steps"
    }

    /// The field defaults above are the decoding baseline (what a config written by an earlier
    /// version meant by a missing key, see `init(from:)`), not a recipe: runs start from
    /// `Presets.standard` or `Presets.paper`, which set every training field explicitly.
    public init() {}

    public var usesPx: Bool { mode != .baseline && pxWeight > 0 }

    /// The p(x) weight at `iteration`: 0 during the delay, then a linear ramp to `pxWeight`.
    public func pxWeight(at iteration: Int) -> Float {
        guard usesPx else { return 0 }
        let since = iteration - pxDelay
        if since < 0 { return 0 }
        if pxRamp <= 0 || since >= pxRamp { return pxWeight }
        return pxWeight * Float(since + 1) / Float(pxRamp)
    }
    public var usesPyx: Bool { mode != .ebm && pyxWeight > 0 }
    public var usesPxy: Bool { mode == .jemXY && pxyWeight > 0 }
    public var usesSampling: Bool { usesPx || usesPxy }

    public var schedule: LearningRateSchedule {
        LearningRateSchedule(base: learningRate, warmupIterations: warmupIterations, decayEpochs: decayEpochs,
                             decayRate: decayRate)
    }

    public var parsedActivation: Activation? {
        switch activation {
        case "leaky-relu": return .leakyReLU(slope: 0.2)
        case "swish": return .swish
        default: return nil
        }
    }
}

extension TrainingConfig {
    /// Decodes config.json or a checkpoint's config written by this or an earlier version: a key
    /// an earlier version did not write takes its default, and every default is the behaviour
    /// that version had (e.g. `bufferInit` uniform, `pxDelay` 0), so older runs still open and
    /// resume. A key that is present must hold a valid value. `TrainingConfigTests` checks that
    /// every property is listed here (a round trip of a config with no default left).
    public init(from decoder: Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try container.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        model = try value(.model, model)
        activation = try value(.activation, activation)
        mode = try value(.mode, mode)
        pxWeight = try value(.pxWeight, pxWeight)
        pyxWeight = try value(.pyxWeight, pyxWeight)
        pxyWeight = try value(.pxyWeight, pxyWeight)
        classConditionalSampling = try value(.classConditionalSampling, classConditionalSampling)
        pxDelay = try value(.pxDelay, pxDelay)
        pxRamp = try value(.pxRamp, pxRamp)
        energyL2 = try value(.energyL2, energyL2)
        sgldSteps = try value(.sgldSteps, sgldSteps)
        sgldLR = try value(.sgldLR, sgldLR)
        sgldStd = try value(.sgldStd, sgldStd)
        sgldGradClip = try value(.sgldGradClip, sgldGradClip)
        sgldClamp = try value(.sgldClamp, sgldClamp)
        bufferSize = try value(.bufferSize, bufferSize)
        bufferInit = try value(.bufferInit, bufferInit)
        informativeShare = try value(.informativeShare, informativeShare)
        reinitFrequency = try value(.reinitFrequency, reinitFrequency)
        optimizer = try value(.optimizer, optimizer)
        learningRate = try value(.learningRate, learningRate)
        momentum = try value(.momentum, momentum)
        weightDecay = try value(.weightDecay, weightDecay)
        warmupIterations = try value(.warmupIterations, warmupIterations)
        decayEpochs = try value(.decayEpochs, decayEpochs)
        decayRate = try value(.decayRate, decayRate)
        epochs = try value(.epochs, epochs)
        maxIterations = try value(.maxIterations, maxIterations)
        batchSize = try value(.batchSize, batchSize)
        seed = try value(.seed, seed)
        guardLossLimit = try value(.guardLossLimit, guardLossLimit)
        guardGapLimit = try value(.guardGapLimit, guardGapLimit)
        maxRecoveries = try value(.maxRecoveries, maxRecoveries)
        snapshotEvery = try value(.snapshotEvery, snapshotEvery)
        recoveryAction = try value(.recoveryAction, recoveryAction)
        recoveryFactor = try value(.recoveryFactor, recoveryFactor)
        data = try value(.data, data)
        builtinTrainCount = try value(.builtinTrainCount, builtinTrainCount)
        builtinTestCount = try value(.builtinTestCount, builtinTestCount)
        validCount = try value(.validCount, validCount)
        trainLimit = try value(.trainLimit, trainLimit)
        labelsPerClass = try value(.labelsPerClass, labelsPerClass)
        augmentation = try value(.augmentation, augmentation)
        testNoise = try value(.testNoise, testNoise)
        logEvery = try value(.logEvery, logEvery)
        sampleEvery = try value(.sampleEvery, sampleEvery)
        finalSampleSteps = try value(.finalSampleSteps, finalSampleSteps)
        checkpointEvery = try value(.checkpointEvery, checkpointEvery)
        evalEvery = try value(.evalEvery, evalEvery)
    }
}
