import ArgumentParser
import Foundation
import JEM
import JEMBackend

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
    @Flag(help: "Train into an --out folder that already holds a run's checkpoint, replacing it (without it, that is refused).")
    var overwrite = false

    // Model and objective
    @Option(help: ArgumentHelp("Network, wrn-D-W with D = 6n+4 (e.g. wrn-28-10, wrn-10-2).", valueName: "wrn-D-W"))
    var model: String?
    @Option(help: ArgumentHelp("Nonlinearity: leaky-relu (0.2, official) or swish.", valueName: "leaky-relu|swish"))
    var activation: String?
    @Option(help: ArgumentHelp("Objective: jem (p(y|x)+p(x)), baseline (cross-entropy only), jem-xy (+p(x,y)), ebm (p(x) only).",
                               valueName: "jem|baseline|jem-xy|ebm"))
    var mode: TrainingMode?
    @Option(name: .customLong("px-weight"), parsing: .unconditional, help: "Weight of the log p(x) term.") var pxWeight: Float?
    @Option(name: .customLong("pyx-weight"), parsing: .unconditional, help: "Weight of the cross-entropy (log p(y|x)) term.") var pyxWeight: Float?
    @Option(name: .customLong("pxy-weight"), parsing: .unconditional, help: "Weight of the log p(x,y) term (mode jem-xy).") var pxyWeight: Float?
    @Flag(name: .customLong("class-cond-sampling"), help: "Sample p(x) chains class-conditionally (uniform random y).")
    var classConditionalSampling = false
    @Option(name: .customLong("px-delay"), parsing: .unconditional, help: "Iterations trained as a plain classifier before p(x) starts.")
    var pxDelay: Int?
    @Option(name: .customLong("px-ramp"), parsing: .unconditional, help: "Iterations over which the p(x) weight then ramps up linearly from 0.")
    var pxRamp: Int?
    @Option(name: .customLong("energy-l2"), parsing: .unconditional, help: "L2 penalty on f(x)^2 for real and fake (author's advice: 0.1).")
    var energyL2: Float?

    // SGLD
    @Option(name: .customLong("sgld-steps"), parsing: .unconditional, help: "SGLD steps per iteration.") var sgldSteps: Int?
    @Option(name: .customLong("sgld-lr"), parsing: .unconditional, help: "SGLD gradient step size.") var sgldLR: Float?
    @Option(name: .customLong("sgld-std"), parsing: .unconditional, help: "SGLD noise standard deviation.") var sgldStd: Float?
    @Option(name: .customLong("sgld-grad-clip"), parsing: .unconditional, help: "Clip each SGLD gradient element to ±VALUE (off by default).")
    var sgldGradClip: Float?
    @Option(name: .customLong("sgld-clamp"), parsing: .unconditional, help: "Clamp samples to [-VALUE, VALUE] after each step (off by default).")
    var sgldClamp: Float?
    @Option(name: .customLong("buffer-size"), parsing: .unconditional, help: "Replay buffer images (kept on the device).") var bufferSize: Int?
    @Option(name: .customLong("reinit-freq"), parsing: .unconditional, help: "Probability that a chain restarts from its initial distribution.")
    var reinitFrequency: Float?
    @Option(name: .customLong("buffer-init"), help: ArgumentHelp(
        "Where chains start and restart: uniform = U(-1,1) (official JEM); informative = a Gaussian per class fitted to the training images (JEM++); mixed = each start from the Gaussians with probability --informative-share, else U(-1,1). Default: uniform.",
        valueName: "uniform|informative|mixed"))
    var bufferInit: BufferInit?
    @Option(name: .customLong("informative-share"), parsing: .unconditional, help: ArgumentHelp(
        "With --buffer-init mixed: the probability in [0, 1] that a chain starts or restarts from the class Gaussians (default 0.5).",
        valueName: "P"))
    var informativeShare: Float?

    // Optimisation
    @Option(help: ArgumentHelp("adam (betas .9/.999) or sgd (momentum).", valueName: "adam|sgd"))
    var optimizer: Optimizer.Kind?
    @Option(parsing: .unconditional, help: "Learning rate (> 0).") var lr: Float?
    @Option(parsing: .unconditional, help: "SGD momentum.") var momentum: Float?
    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "L2 weight decay.") var weightDecay: Float?
    @Option(name: .customLong("warmup-iters"), parsing: .unconditional, help: "Linear warmup iterations (0: none).") var warmupIterations: Int?
    @Option(name: .customLong("decay-epochs"), help: ArgumentHelp("Epochs at which the lr is multiplied by --decay-rate.",
                                                                   valueName: "E1,E2,..."))
    var decayEpochs: String?
    @Option(name: .customLong("decay-rate"), parsing: .unconditional, help: "Learning-rate decay factor.") var decayRate: Float?
    @Option(parsing: .unconditional, help: "Epochs. Without --decay-epochs the preset's lr decays keep their share of the run (default preset: 4 epochs, decay at 3; --epochs 6 decays at 5).") var epochs: Int?
    @Option(name: .customLong("max-iterations"), parsing: .unconditional, help: "Stop after this many iterations in total (0: all epochs).")
    var maxIterations: Int?
    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "Batch size (data, labelled and SGLD batches).") var batchSize: Int?
    @Option(parsing: .unconditional, help: "Random seed, an integer 0...2^64-1 (model init, data order, buffer, SGLD noise).") var seed: UInt64?

    // Data
    @Option(parsing: .unconditional, help: "Validation images held out (default: 5000 for 50k+ sets, else 10%).") var valid: Int?
    @Option(name: .customLong("labels-per-class"), parsing: .unconditional, help: "Semi-supervised: keep N labels per class.")
    var labelsPerClass: Int?
    @Option(name: .customLong("train-limit"), parsing: .unconditional,
            help: "Use only the first N training images of --data (before the validation split; default: all).")
    var trainLimit: Int?
    @Option(parsing: .unconditional, help: "Std of Gaussian noise added to training inputs (official 0.03).") var sigma: Float?
    @Option(parsing: .unconditional, help: "Reflect padding for random crops (0: no crop).") var pad: Int?
    @Option(name: .customLong("test-noise"),
            parsing: .unconditional, help: "Std of Gaussian noise added to valid/test inputs when evaluating (official code: 0.03; default 0).")
    var testNoise: Float?
    @Option(help: ArgumentHelp("Random horizontal flips (default: on for 3-channel images except SVHN).",
                               valueName: "on|off"))
    var flip: Switch?
    @Option(name: .customLong("builtin-train"), parsing: .unconditional, help: "Built-in dataset: training images.") var builtinTrain: Int?
    @Option(name: .customLong("builtin-test"), parsing: .unconditional, help: "Built-in dataset: test images.") var builtinTest: Int?

    // Divergence guard and output
    @Option(name: .customLong("max-recoveries"), parsing: .unconditional, help: "Divergence rollbacks allowed before stopping.")
    var maxRecoveries: Int?
    @Option(name: .customLong("guard-loss"), parsing: .unconditional, help: "Divergence when |loss| exceeds this.") var guardLoss: Float?
    @Option(name: .customLong("guard-gap"), parsing: .unconditional, help: "Divergence when |f(x_data) - f(x_q)| exceeds this.") var guardGap: Float?
    @Option(help: ArgumentHelp("After a divergence: cut-lr (x0.5) or more-sgld-steps (+10).",
                               valueName: "cut-lr|more-sgld-steps"))
    var recovery: TrainingConfig.RecoveryAction?
    @Option(name: .customLong("snapshot-every"), parsing: .unconditional, help: "Iterations between in-memory good-state snapshots.")
    var snapshotEvery: Int?
    @Option(name: .customLong("log-every"), parsing: .unconditional, help: "Iterations between metrics.jsonl lines.") var logEvery: Int?
    @Option(name: .customLong("sample-every"), parsing: .unconditional, help: "Iterations between sample grids (0: only at the end).")
    var sampleEvery: Int?
    @Option(name: .customLong("final-sample-steps"),
            parsing: .unconditional, help: "SGLD steps of the class-conditional grid samples/conditional_final.png written at the end (0: none).")
    var finalSampleSteps: Int?
    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional, help: "Iterations between checkpoints (also at every epoch end).")
    var checkpointEvery: Int?

    enum Preset: String, ExpressibleByArgument, CaseIterable { case `default`, paper }
    enum Switch: String, ExpressibleByArgument, CaseIterable { case on, off }

    /// Flag checks before anything is loaded. The ranges live in `TrainingConfig.validate()` (also
    /// run on the config a checkpoint carries at --resume); a preset is always valid, so a refusal
    /// there is always about a flag given here, and its message names that flag.
    func validate() throws {
        if let builtinTrain, !(1...BuiltinDataset.maximumCount).contains(builtinTrain) {
            throw ValidationError("--builtin-train must be in 1...\(BuiltinDataset.maximumCount) (got \(builtinTrain))")
        }
        if let builtinTest, !(1...BuiltinDataset.maximumCount).contains(builtinTest) {
            throw ValidationError("--builtin-test must be in 1...\(BuiltinDataset.maximumCount) (got \(builtinTest))")
        }
        if let decayEpochs, parseEpochList(decayEpochs) == nil {
            throw ValidationError("--decay-epochs must be comma-separated non-negative integers, e.g. 160,180 (got '\(decayEpochs)')")
        }
        do { try makeConfig(digits: false).validate() } catch let error as ConfigError {
            throw ValidationError(error.description)
        }
    }

    func parseEpochList(_ text: String) -> [Int]? {
        if text.isEmpty || text == "none" { return [] }
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard values.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        return values.map { $0! }
    }

    /// The preset's settings with every explicit flag applied on top.
    /// `digits` (1-channel images or SVHN) turns the default horizontal flip off.
    func makeConfig(digits: Bool) -> TrainingConfig {
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
        if let informativeShare { c.informativeShare = informativeShare }
        if let optimizer { c.optimizer = optimizer }
        if let lr { c.learningRate = lr }
        if let momentum { c.momentum = momentum }
        if let weightDecay { c.weightDecay = weightDecay }
        if let warmupIterations { c.warmupIterations = warmupIterations }
        if let decayEpochs, let list = parseEpochList(decayEpochs) { c.decayEpochs = list }
        if let decayRate { c.decayRate = decayRate }
        if let epochs {
            // The preset's lr decay keeps its share of the run unless --decay-epochs says otherwise.
            if decayEpochs == nil { c.decayEpochs = LearningRateSchedule.stretch(c.decayEpochs, from: c.epochs, to: epochs) }
            c.epochs = epochs
        }
        if let maxIterations { c.maxIterations = maxIterations }
        if let batchSize { c.batchSize = batchSize }
        if let seed { c.seed = seed }
        if let valid { c.validCount = valid }
        if let labelsPerClass { c.labelsPerClass = labelsPerClass }
        if let trainLimit { c.trainLimit = trainLimit }
        if let sigma { c.augmentation.noiseStd = sigma }
        if let pad { c.augmentation.padding = pad }
        if let testNoise { c.testNoise = testNoise }
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
        // Under mpirun: one rank per device, the global --batch-size split over the ranks (see
        // Distributed.swift); without it, `world` is a single process and nothing changes.
        let world = try Distributed.world()
        try Distributed.guarded(world) { try train(world) }
    }

    func train(_ world: any Communicator) throws {
        var config: TrainingConfig
        let outputDirectory: String
        var dataPath = data
        if let resume {
            // The saved config, checked like flags (a corrupt checkpoint is refused, not trusted).
            config = try Checkpoint.resumeConfig(directory: resume)
            if let epochs { config.epochs = epochs }
            if let maxIterations { config.maxIterations = maxIterations }
            dataPath = config.data
            outputDirectory = resume
        } else {
            config = TrainingConfig()
            outputDirectory = out ?? "runs/" + Self.timestamp()
            // Nothing a user trained is lost by a repeated command line.
            let existing = outputDirectory + "/checkpoints/last.safetensors"
            if !overwrite, FileManager.default.fileExists(atPath: existing) {
                throw CommandFailure("--out \(outputDirectory) already holds a trained run (\(existing)): "
                                     + "continue it with --resume \(outputDirectory), replace it with --overwrite, or choose another --out")
            }
        }
        // A resumed run regenerates the built-in dataset with the sizes it was trained on.
        let options = LoadOptions(
            builtinTrainCount: (resume != nil ? config.builtinTrainCount : nil) ?? builtinTrain ?? BuiltinDataset.defaultTrainCount,
            builtinTestCount: (resume != nil ? config.builtinTestCount : nil) ?? builtinTest ?? BuiltinDataset.defaultTestCount)
        let dataset = try DatasetLoader.load(dataPath, options: options)
        if world.isWriter { printError(dataset.summary) }
        if resume == nil {
            config = makeConfig(digits: dataset.train.channels == 1 || dataset.format.lowercased().contains("svhn"))
            if dataPath == "builtin" {
                config.builtinTrainCount = options.builtinTrainCount
                config.builtinTestCount = options.builtinTestCount
            }
        }
        // Before the backend: a bad size is refused before any device is opened or memory allocated.
        do { try config.validate(for: dataset) } catch let error as ConfigError {
            let prefix = resume.map { "--resume \($0): the checkpoint's settings do not fit the data: " } ?? ""
            throw ValidationError(prefix + error.description)
        }
        if config.batchSize % world.size != 0 {
            throw ValidationError("--batch-size \(config.batchSize) is not divisible by the \(world.size) processes of "
                                  + "mpirun -np \(world.size) (each computes batch-size/N rows of the global batch)")
        }
        let backend = try backendOptions.makeBackend()
        printError(Distributed.prefix(world) + "backend: \(backend.deviceDescription)")
        let run = try TrainingRun(config: config, dataset: dataset, backend: backend, outputDirectory: outputDirectory,
                                  resume: resume != nil, communicator: world)
        if world.isWriter { printError("\(run.spec) | \(config.mode.rawValue) | \(run.data.iterationsPerEpoch) it/epoch, "
                   + "\(run.totalIterations) iterations | out \(outputDirectory)"
                   + (world.isDistributed ? " | \(world.size) processes, \(config.batchSize / world.size) rows each" : "")) }
        try run.run()
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
