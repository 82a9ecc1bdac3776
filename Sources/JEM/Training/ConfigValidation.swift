import Foundation
import JEMBackend
import JEMSupport

/// A setting that cannot be used, said in one line naming the `jem-gpu train` flag (or, for the
/// few settings without one, the config key) and what is allowed.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension TrainingConfig {
    /// Largest values accepted for counts that drive loops: far above any real run, low enough
    /// that a corrupt checkpoint cannot ask for 10^18 SGLD steps or overflow `epochs × iterations`.
    public static let maxEpochs = 1_000_000
    public static let maxSGLDSteps = 100_000

    /// Checks every setting on its own (the dataset-dependent checks are `validate(for:)`).
    /// The CLI runs this on the flags, and `--resume` on the config a checkpoint carries, so a
    /// corrupt or hand-edited checkpoint is refused with the same messages as a bad flag.
    /// NaN fails every range check (the comparisons are written so that it does).
    public func validate() throws {
        func positive<T: BinaryInteger>(_ v: T, _ flag: String) throws {
            if v <= 0 { throw ConfigError("--\(flag) must be > 0 (got \(v))") }
        }
        func nonNegative<T: BinaryInteger>(_ v: T, _ flag: String) throws {
            if v < 0 { throw ConfigError("--\(flag) must be >= 0 (got \(v))") }
        }
        func positive(_ v: Float, _ flag: String) throws {
            if !(v > 0 && v.isFinite) { throw ConfigError("--\(flag) must be a finite number > 0 (got \(v))") }
        }
        func nonNegative(_ v: Float, _ flag: String) throws {
            if !(v >= 0 && v.isFinite) { throw ConfigError("--\(flag) must be a finite number >= 0 (got \(v))") }
        }
        func unit(_ v: Float, _ flag: String, _ range: String, _ ok: Bool) throws {
            if !ok { throw ConfigError("--\(flag) must be in \(range) (got \(v))") }
        }
        guard let (depth, widen) = WideResNetSpec.parse(model) else {
            throw ConfigError("--model must be wrn-D-W with D = 6n+4 in 10...\(WideResNetSpec.maxDepth) and W in "
                              + "1...\(WideResNetSpec.maxWiden), e.g. wrn-28-10 (got '\(model)')")
        }
        _ = (depth, widen)
        guard parsedActivation != nil else {
            throw ConfigError("--activation must be leaky-relu or swish (got '\(activation)')")
        }
        try nonNegative(pxWeight, "px-weight")
        try nonNegative(pyxWeight, "pyx-weight")
        try nonNegative(pxyWeight, "pxy-weight")
        try nonNegative(pxDelay, "px-delay")
        try nonNegative(pxRamp, "px-ramp")
        try nonNegative(energyL2, "energy-l2")
        try nonNegative(sgldSteps, "sgld-steps")
        if sgldSteps > Self.maxSGLDSteps {
            throw ConfigError("--sgld-steps must be at most \(Self.maxSGLDSteps) (got \(sgldSteps))")
        }
        try nonNegative(sgldLR, "sgld-lr")
        try nonNegative(sgldStd, "sgld-std")
        if let sgldGradClip { try positive(sgldGradClip, "sgld-grad-clip") }
        if let sgldClamp { try positive(sgldClamp, "sgld-clamp") }
        try positive(bufferSize, "buffer-size")
        try unit(reinitFrequency, "reinit-freq", "[0, 1]", reinitFrequency >= 0 && reinitFrequency <= 1)
        try unit(informativeShare, "informative-share", "[0, 1]", informativeShare >= 0 && informativeShare <= 1)
        try positive(learningRate, "lr")
        try unit(momentum, "momentum", "[0, 1)", momentum >= 0 && momentum < 1)
        try nonNegative(weightDecay, "weight-decay")
        try nonNegative(warmupIterations, "warmup-iters")
        if let bad = decayEpochs.first(where: { $0 < 0 }) {
            throw ConfigError("--decay-epochs must be non-negative epochs (got \(bad))")
        }
        try unit(decayRate, "decay-rate", "(0, 1]", decayRate > 0 && decayRate <= 1)
        try positive(epochs, "epochs")
        if epochs > Self.maxEpochs { throw ConfigError("--epochs must be at most \(Self.maxEpochs) (got \(epochs))") }
        try nonNegative(maxIterations, "max-iterations")
        try positive(batchSize, "batch-size")
        try positive(guardLossLimit, "guard-loss")
        try positive(guardGapLimit, "guard-gap")
        try nonNegative(maxRecoveries, "max-recoveries")
        try positive(snapshotEvery, "snapshot-every")
        if !(recoveryFactor > 0 && recoveryFactor <= 1) {
            throw ConfigError("recoveryFactor must be in (0, 1] (got \(recoveryFactor))")
        }
        if let validCount { try nonNegative(validCount, "valid") }
        if let trainLimit { try positive(trainLimit, "train-limit") }
        if let labelsPerClass { try positive(labelsPerClass, "labels-per-class") }
        try nonNegative(augmentation.noiseStd, "sigma")
        try nonNegative(augmentation.padding, "pad")
        try nonNegative(testNoise, "test-noise")
        try positive(logEvery, "log-every")
        try nonNegative(sampleEvery, "sample-every")
        try nonNegative(finalSampleSteps, "final-sample-steps")
        if finalSampleSteps > Self.maxSGLDSteps {
            throw ConfigError("--final-sample-steps must be at most \(Self.maxSGLDSteps) (got \(finalSampleSteps))")
        }
        try nonNegative(checkpointEvery, "checkpoint-every")
        try positive(evalEvery, "evalEvery")
    }

    /// The checks that need the dataset: batch size, validation split, labels, the class-partitioned
    /// buffer, and a memory estimate (so an absurd size is refused before anything is allocated).
    public func validate(for dataset: Dataset, memoryBytes: UInt64 = ProcessInfo.processInfo.physicalMemory) throws {
        try validate()
        if let trainLimit, trainLimit > dataset.train.count {
            throw ConfigError("--train-limit \(trainLimit) is more than the \(dataset.train.count) training images of --data \(data)")
        }
        let trainCount = min(trainLimit ?? Int.max, dataset.train.count)
        let valid = validCount ?? (trainCount >= 50_000 ? 5000 : trainCount / 10)
        if valid >= trainCount {
            throw ConfigError("--valid \(valid) leaves no training images (the dataset has \(trainCount))")
        }
        if batchSize > trainCount - valid {
            throw ConfigError("--batch-size \(batchSize) is larger than the \(trainCount - valid) training "
                              + "images left after the validation split (--valid \(valid))")
        }
        if dataset.train.labels == nil && usesPyx {
            throw ConfigError("--data \(data): the dataset has no labels; use --mode ebm to train p(x) only")
        }
        if (usesPxy || classConditionalSampling) && (dataset.classCount == 0 || bufferSize % dataset.classCount != 0) {
            throw ConfigError("--buffer-size \(bufferSize) must be divisible by the \(dataset.classCount) classes "
                              + "for class-conditional sampling")
        }
        if let labelsPerClass, labelsPerClass * dataset.classCount < batchSize {
            throw ConfigError("--labels-per-class \(labelsPerClass) keeps fewer labelled images than one batch "
                              + "(--batch-size \(batchSize))")
        }
        guard let spec = spec(for: dataset) else { return }
        let perEpoch = (trainCount - valid) / batchSize
        guard epochs.multipliedReportingOverflow(by: max(perEpoch, 1)).overflow == false else {
            throw ConfigError("--epochs \(epochs) × \(perEpoch) iterations per epoch overflows")
        }
        // The buffer and the model are what a bad size makes huge; each estimate is a lower bound.
        let imageBytes = spec.inputCount * 4
        if usesSampling, bufferSize.multipliedReportingOverflow(by: imageBytes).overflow
            || UInt64(bufferSize * imageBytes) > memoryBytes {
            throw ConfigError("--buffer-size \(bufferSize) needs \(Self.gib(Double(bufferSize) * Double(imageBytes))) GiB "
                              + "for the replay buffer, more than the \(Self.gib(Double(memoryBytes))) GiB of memory")
        }
        let modelBytes = spec.estimatedBytes(batch: batchSize)
        if modelBytes > Double(memoryBytes) {
            throw ConfigError("--model \(model) with --batch-size \(batchSize) needs about \(Self.gib(modelBytes)) GiB "
                              + "(weights, optimizer state, activations), more than the \(Self.gib(Double(memoryBytes))) GiB of memory")
        }
    }

    /// The network this config builds for `dataset` (nil when --model/--activation are invalid).
    public func spec(for dataset: Dataset) -> WideResNetSpec? {
        guard let (depth, widen) = WideResNetSpec.parse(model), let activation = parsedActivation else { return nil }
        let train = dataset.train
        return WideResNetSpec(depth: depth, widen: widen, inputChannels: train.channels, imageHeight: train.height,
                              imageWidth: train.width, classCount: dataset.classCount, activation: activation)
    }

    static func gib(_ bytes: Double) -> String { String(format: "%.1f", bytes / Double(1 << 30)) }
}

extension RunState {
    /// Checks the counters a checkpoint carries against its config (a corrupt checkpoint must not
    /// resume with 10^18 SGLD steps, a NaN learning-rate scale or a negative iteration).
    public func validate(against config: TrainingConfig, file: String) throws {
        func bad(_ what: String) -> IOError { IOError("\(file): run state \(what); the checkpoint is corrupt") }
        // Written so that no sum can overflow: every field may hold any Int.
        if iteration < 0 || optimizerSteps < 0 || optimizerSteps > iteration {
            throw bad("has iteration \(iteration) and optimizer steps \(optimizerSteps)")
        }
        if recoveries < 0 || recoveries > config.maxRecoveries {
            throw bad("has \(recoveries) recoveries (--max-recoveries \(config.maxRecoveries))")
        }
        if !(learningRateScale > 0 && learningRateScale <= 1) {
            throw bad("has a learning-rate scale of \(learningRateScale), expected (0, 1]")
        }
        // Each recovery may have added 10 steps (config.sgldSteps is at most maxSGLDSteps).
        let extra = sgldSteps >= 0 ? sgldSteps - config.sgldSteps : 0   // both >= 0: no overflow
        if sgldSteps < 0 || sgldSteps > TrainingConfig.maxSGLDSteps || (extra > 0 && (extra - 1) / 10 + 1 > recoveries) {
            throw bad("has \(sgldSteps) SGLD steps, expected \(config.sgldSteps) + 10 per recovery (\(recoveries))")
        }
        if !(bestValidAccuracy.isFinite && bestValidAccuracy >= -1 && bestValidAccuracy <= 1)
            || bestIteration < -1 || bestIteration > iteration {
            throw bad("has best accuracy \(bestValidAccuracy) at iteration \(bestIteration)")
        }
    }
}
