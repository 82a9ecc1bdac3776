import ArgumentParser
import Foundation
import JEM

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a JEM (or the cross-entropy baseline) with Algorithm 1 of the paper.",
        discussion: """
            With no flags: the 'default' preset, a small WideResNet on the built-in digit dataset, sized to show learning within minutes on 2 CPU cores. '--preset paper' is the official CIFAR-10 command (wrn-28-10, Adam 1e-4, warmup 1000, 200 epochs, sigma .03, 20 SGLD steps). Any flag given explicitly overrides the preset.

            Writes to --out: config.json, metrics.jsonl (per logging step and per evaluation), samples/*.png (SGLD sample grids), checkpoints/last.safetensors (model with the official state_dict names + training state) and checkpoints/best.safetensors (model with the best validation accuracy). Checkpoints are written atomically. '--resume DIR' continues DIR's run exactly (flags other than --epochs, --max-iterations and --backend/--device are taken from the checkpoint). SIGINT/SIGTERM write a final checkpoint and exit 0.
            """)

    @OptionGroup var backendOptions: BackendOptions

    // Run
    @Option(help: ArgumentHelp("Settings to start from: default (small, fast, stable) or paper (official CIFAR-10).",
                               valueName: "default|paper"))
    var preset: Preset = .default
    @Option(help: ArgumentHelp("Dataset: builtin, an IDX/CIFAR/SVHN/NumPy/image folder or file.", valueName: "PATH"))
    var data: String = "builtin"
    @Option(help: ArgumentHelp("Output folder (default runs/<timestamp>).", valueName: "DIR"))
    var out: String?
    @Option(help: ArgumentHelp("Continue the run in DIR from its last checkpoint, exactly.", valueName: "DIR"))
    var resume: String?

    // Model and objective
    @Option(help: ArgumentHelp("Network, wrn-D-W with D = 6n+4 (e.g. wrn-28-10, wrn-10-2).", valueName: "wrn-D-W"))
    var model: String?
    @Option(help: ArgumentHelp("Nonlinearity: leaky-relu (0.2, official) or swish.", valueName: "leaky-relu|swish"))
    var activation: String?
    @Option(help: ArgumentHelp("Objective: jem (p(y|x)+p(x)), baseline (cross-entropy only), jem-xy (+p(x,y)), ebm (p(x) only).",
                               valueName: "jem|baseline|jem-xy|ebm"))
    var mode: TrainingMode?
    @Option(name: .customLong("px-weight"), help: "Weight of the log p(x) term.") var pxWeight: Float?
    @Option(name: .customLong("pyx-weight"), help: "Weight of the cross-entropy (log p(y|x)) term.") var pyxWeight: Float?
    @Option(name: .customLong("pxy-weight"), help: "Weight of the log p(x,y) term (mode jem-xy).") var pxyWeight: Float?
    @Flag(name: .customLong("class-cond-sampling"), help: "Sample p(x) chains class-conditionally (uniform random y).")
    var classConditionalSampling = false
    @Option(name: .customLong("px-delay"), help: "Iterations trained as a plain classifier before p(x) starts.")
    var pxDelay: Int?
    @Option(name: .customLong("px-ramp"), help: "Iterations over which the p(x) weight then ramps up linearly from 0.")
    var pxRamp: Int?
    @Option(name: .customLong("energy-l2"), help: "L2 penalty on f(x)^2 for real and fake (author's advice: 0.1).")
    var energyL2: Float?

    // SGLD
    @Option(name: .customLong("sgld-steps"), help: "SGLD steps per iteration.") var sgldSteps: Int?
    @Option(name: .customLong("sgld-lr"), help: "SGLD gradient step size.") var sgldLR: Float?
    @Option(name: .customLong("sgld-std"), help: "SGLD noise standard deviation.") var sgldStd: Float?
    @Option(name: .customLong("sgld-grad-clip"), help: "Clip each SGLD gradient element to ±VALUE (off by default).")
    var sgldGradClip: Float?
    @Option(name: .customLong("sgld-clamp"), help: "Clamp samples to [-VALUE, VALUE] after each step (off by default).")
    var sgldClamp: Float?
    @Option(name: .customLong("buffer-size"), help: "Replay buffer images (kept on the device).") var bufferSize: Int?
    @Option(name: .customLong("reinit-freq"), help: "Probability that a chain restarts from its initial distribution.")
    var reinitFrequency: Float?
    @Option(name: .customLong("buffer-init"), help: ArgumentHelp(
        "Where chains start and restart: uniform = U(-1,1) (official JEM); informative = a Gaussian per class fitted to the training images (JEM++). Default: informative, paper preset: uniform.",
        valueName: "uniform|informative"))
    var bufferInit: BufferInit?

    // Optimisation
    @Option(help: ArgumentHelp("adam (betas .9/.999) or sgd (momentum).", valueName: "adam|sgd"))
    var optimizer: Optimizer.Kind?
    @Option(help: "Learning rate.") var lr: Float?
    @Option(help: "SGD momentum.") var momentum: Float?
    @Option(name: .customLong("weight-decay"), help: "L2 weight decay.") var weightDecay: Float?
    @Option(name: .customLong("warmup-iters"), help: "Linear warmup iterations (0: none).") var warmupIterations: Int?
    @Option(name: .customLong("decay-epochs"), help: ArgumentHelp("Epochs at which the lr is multiplied by --decay-rate.",
                                                                   valueName: "E1,E2,..."))
    var decayEpochs: String?
    @Option(name: .customLong("decay-rate"), help: "Learning-rate decay factor.") var decayRate: Float?
    @Option(help: "Epochs.") var epochs: Int?
    @Option(name: .customLong("max-iterations"), help: "Stop after this many iterations in total (0: all epochs).")
    var maxIterations: Int?
    @Option(name: .customLong("batch-size"), help: "Batch size (data, labelled and SGLD batches).") var batchSize: Int?
    @Option(help: "Random seed (model init, data order, buffer, SGLD noise).") var seed: UInt64?

    // Data
    @Option(help: "Validation images held out (default: 5000 for 50k+ sets, else 10%).") var valid: Int?
    @Option(name: .customLong("labels-per-class"), help: "Semi-supervised: keep N labels per class.")
    var labelsPerClass: Int?
    @Option(help: "Std of Gaussian noise added to training inputs (official 0.03).") var sigma: Float?
    @Option(help: "Reflect padding for random crops (0: no crop).") var pad: Int?
    @Option(name: .customLong("test-noise"),
            help: "Std of Gaussian noise added to valid/test inputs when evaluating (official code: 0.03; default 0).")
    var testNoise: Float?
    @Option(help: ArgumentHelp("Random horizontal flips (default: on for 3-channel images except SVHN).",
                               valueName: "on|off"))
    var flip: Switch?
    @Option(name: .customLong("builtin-train"), help: "Built-in dataset: training images.") var builtinTrain: Int?
    @Option(name: .customLong("builtin-test"), help: "Built-in dataset: test images.") var builtinTest: Int?

    // Divergence guard and output
    @Option(name: .customLong("max-recoveries"), help: "Divergence rollbacks allowed before stopping.")
    var maxRecoveries: Int?
    @Option(name: .customLong("guard-loss"), help: "Divergence when |loss| exceeds this.") var guardLoss: Float?
    @Option(name: .customLong("guard-gap"), help: "Divergence when |f(x_data) - f(x_q)| exceeds this.") var guardGap: Float?
    @Option(help: ArgumentHelp("After a divergence: cut-lr (x0.5) or more-sgld-steps (+10).",
                               valueName: "cut-lr|more-sgld-steps"))
    var recovery: TrainingConfig.RecoveryAction?
    @Option(name: .customLong("snapshot-every"), help: "Iterations between in-memory good-state snapshots.")
    var snapshotEvery: Int?
    @Option(name: .customLong("log-every"), help: "Iterations between metrics.jsonl lines.") var logEvery: Int?
    @Option(name: .customLong("sample-every"), help: "Iterations between sample grids (0: only at the end).")
    var sampleEvery: Int?
    @Option(name: .customLong("final-sample-steps"),
            help: "SGLD steps of the class-conditional grid samples/conditional_final.png written at the end (0: none).")
    var finalSampleSteps: Int?
    @Option(name: .customLong("checkpoint-every"), help: "Iterations between checkpoints (also at every epoch end).")
    var checkpointEvery: Int?

    enum Preset: String, ExpressibleByArgument, CaseIterable { case `default`, paper }
    enum Switch: String, ExpressibleByArgument, CaseIterable { case on, off }

    func validate() throws {
        func positive<T: Comparable & Numeric>(_ value: T?, _ flag: String) throws {
            if let value, value <= 0 { throw ValidationError("--\(flag) must be > 0 (got \(value))") }
        }
        func nonNegative<T: Comparable & Numeric>(_ value: T?, _ flag: String) throws {
            if let value, value < 0 { throw ValidationError("--\(flag) must be >= 0 (got \(value))") }
        }
        try positive(lr, "lr")
        try positive(batchSize, "batch-size")
        try positive(epochs, "epochs")
        try positive(bufferSize, "buffer-size")
        try nonNegative(sgldSteps, "sgld-steps")
        try nonNegative(sgldLR, "sgld-lr")
        try nonNegative(sgldStd, "sgld-std")
        try positive(sgldGradClip, "sgld-grad-clip")
        try positive(sgldClamp, "sgld-clamp")
        try nonNegative(energyL2, "energy-l2")
        try nonNegative(warmupIterations, "warmup-iters")
        try nonNegative(maxIterations, "max-iterations")
        try nonNegative(weightDecay, "weight-decay")
        try nonNegative(sigma, "sigma")
        try nonNegative(pad, "pad")
        try nonNegative(testNoise, "test-noise")
        try nonNegative(valid, "valid")
        try positive(labelsPerClass, "labels-per-class")
        try nonNegative(maxRecoveries, "max-recoveries")
        try positive(guardLoss, "guard-loss")
        try positive(guardGap, "guard-gap")
        try positive(snapshotEvery, "snapshot-every")
        try positive(logEvery, "log-every")
        try nonNegative(sampleEvery, "sample-every")
        try nonNegative(checkpointEvery, "checkpoint-every")
        try nonNegative(finalSampleSteps, "final-sample-steps")
        try positive(builtinTrain, "builtin-train")
        try positive(builtinTest, "builtin-test")
        try nonNegative(pxWeight, "px-weight")
        try nonNegative(pyxWeight, "pyx-weight")
        try nonNegative(pxyWeight, "pxy-weight")
        try nonNegative(pxDelay, "px-delay")
        try nonNegative(pxRamp, "px-ramp")
        if let reinitFrequency, !(0...1).contains(reinitFrequency) {
            throw ValidationError("--reinit-freq must be in [0, 1] (got \(reinitFrequency))")
        }
        if let decayRate, decayRate <= 0 || decayRate > 1 {
            throw ValidationError("--decay-rate must be in (0, 1] (got \(decayRate))")
        }
        if let model, WideResNetSpec.parse(model) == nil {
            throw ValidationError("--model must be wrn-D-W with D = 6n+4 >= 10 and W >= 1, e.g. wrn-28-10 (got '\(model)')")
        }
        if let activation, !["leaky-relu", "swish"].contains(activation) {
            throw ValidationError("--activation must be leaky-relu or swish (got '\(activation)')")
        }
        if let decayEpochs, parseEpochList(decayEpochs) == nil {
            throw ValidationError("--decay-epochs must be comma-separated non-negative integers, e.g. 160,180 (got '\(decayEpochs)')")
        }
    }

    func parseEpochList(_ text: String) -> [Int]? {
        if text.isEmpty || text == "none" { return [] }
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard values.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        return values.map { $0! }
    }

    /// The preset's settings with every explicit flag applied on top.
    func makeConfig(dataset: Dataset) -> TrainingConfig {
        var c = preset == .paper ? Presets.paper : Presets.standard
        c.data = data
        if let model { c.model = model }
        if let activation { c.activation = activation }
        if let mode {
            c.mode = mode
            if mode == .jemXY && c.pxyWeight == 0 { c.pxyWeight = 1 }   // the mode means using the term
        }
        if let pxWeight { c.pxWeight = pxWeight }
        if let pyxWeight { c.pyxWeight = pyxWeight }
        if let pxyWeight { c.pxyWeight = pxyWeight }
        if classConditionalSampling { c.classConditionalSampling = true }
        if let pxDelay { c.pxDelay = pxDelay }
        if let pxRamp { c.pxRamp = pxRamp }
        if let energyL2 { c.energyL2 = energyL2 }
        if let sgldSteps { c.sgldSteps = sgldSteps }
        if let sgldLR { c.sgldLR = sgldLR }
        if let sgldStd { c.sgldStd = sgldStd }
        if let sgldGradClip { c.sgldGradClip = sgldGradClip }
        if let sgldClamp { c.sgldClamp = sgldClamp }
        if let bufferSize { c.bufferSize = bufferSize }
        if let reinitFrequency { c.reinitFrequency = reinitFrequency }
        if let bufferInit { c.bufferInit = bufferInit }
        if let optimizer { c.optimizer = optimizer }
        if let lr { c.learningRate = lr }
        if let momentum { c.momentum = momentum }
        if let weightDecay { c.weightDecay = weightDecay }
        if let warmupIterations { c.warmupIterations = warmupIterations }
        if let decayEpochs, let list = parseEpochList(decayEpochs) { c.decayEpochs = list }
        if let decayRate { c.decayRate = decayRate }
        if let epochs { c.epochs = epochs }
        if let maxIterations { c.maxIterations = maxIterations }
        if let batchSize { c.batchSize = batchSize }
        if let seed { c.seed = seed }
        if let valid { c.validCount = valid }
        if let labelsPerClass { c.labelsPerClass = labelsPerClass }
        if let sigma { c.augmentation.noiseStd = sigma }
        if let pad { c.augmentation.padding = pad }
        if let testNoise { c.testNoise = testNoise }
        let digits = dataset.train.channels == 1 || dataset.format.lowercased().contains("svhn")
        c.augmentation.horizontalFlip = flip.map { $0 == .on } ?? !digits
        if let maxRecoveries { c.maxRecoveries = maxRecoveries }
        if let guardLoss { c.guardLossLimit = guardLoss }
        if let guardGap { c.guardGapLimit = guardGap }
        if let recovery { c.recoveryAction = recovery }
        if let snapshotEvery { c.snapshotEvery = snapshotEvery }
        if let logEvery { c.logEvery = logEvery }
        if let sampleEvery { c.sampleEvery = sampleEvery }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let finalSampleSteps { c.finalSampleSteps = finalSampleSteps }
        return c
    }

    func run() throws {
        var config: TrainingConfig
        let outputDirectory: String
        var dataPath = data
        if let resume {
            let checkpoint = resume + "/checkpoints/last.safetensors"
            let file = try SafetensorsFile(path: checkpoint)
            guard let saved = try Checkpoint.describe(file).config else {
                throw CommandFailure("\(checkpoint): checkpoint has no training config to resume")
            }
            config = saved
            if let epochs { config.epochs = epochs }
            if let maxIterations { config.maxIterations = maxIterations }
            dataPath = config.data
            outputDirectory = resume
        } else {
            config = TrainingConfig()
            outputDirectory = out ?? "runs/" + Self.timestamp()
        }
        let options = LoadOptions(builtinTrainCount: builtinTrain ?? BuiltinDataset.defaultTrainCount,
                                  builtinTestCount: builtinTest ?? BuiltinDataset.defaultTestCount)
        let dataset = try DatasetLoader.load(dataPath, options: options)
        printError(dataset.summary)
        if resume == nil { config = makeConfig(dataset: dataset) }
        try check(config, dataset: dataset)
        let backend = try backendOptions.makeBackend()
        printError("backend: \(backend.deviceDescription)")
        let run = try TrainingRun(config: config, dataset: dataset, backend: backend, outputDirectory: outputDirectory,
                                  resume: resume != nil)
        printError("\(run.spec) | \(config.mode.rawValue) | \(run.data.iterationsPerEpoch) it/epoch, "
                   + "\(run.totalIterations) iterations | out \(outputDirectory)")
        try run.run()
    }

    /// Checks that need the dataset: batch size, buffer partition, data size.
    func check(_ c: TrainingConfig, dataset: Dataset) throws {
        let trainCount = dataset.train.count
        let validCount = c.validCount ?? (trainCount >= 50_000 ? 5000 : trainCount / 10)
        if c.batchSize > trainCount - validCount {
            throw ValidationError("--batch-size \(c.batchSize) is larger than the \(trainCount - validCount) training "
                                  + "images left after the validation split (--valid \(validCount))")
        }
        if dataset.train.labels == nil && c.usesPyx {
            throw ValidationError("--data \(c.data): the dataset has no labels; use --mode ebm to train p(x) only")
        }
        if c.usesPxy || c.classConditionalSampling, c.bufferSize % dataset.classCount != 0 {
            throw ValidationError("--buffer-size \(c.bufferSize) must be divisible by the \(dataset.classCount) classes "
                                  + "for class-conditional sampling")
        }
        if let perClass = c.labelsPerClass, perClass * dataset.classCount < c.batchSize {
            throw ValidationError("--labels-per-class \(perClass) keeps fewer labelled images than one batch "
                                  + "(--batch-size \(c.batchSize))")
        }
    }

    static func timestamp() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        return f.string(from: Date())
    }
}

extension TrainingMode: ExpressibleByArgument {}
extension BufferInit: ExpressibleByArgument {}
extension Optimizer.Kind: ExpressibleByArgument {}
extension TrainingConfig.RecoveryAction: ExpressibleByArgument {}
