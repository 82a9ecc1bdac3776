import ArgumentParser
import Foundation
import JEM
import JEMBackend

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Draw samples from a trained model with SGLD and write PNG grids.",
        discussion: """
            Writes to --out:
              unconditional.png  --n fresh chains run for --steps SGLD steps on f(x) = LogSumExp of the logits.
              conditional.png    one row per class: --per-class chains run for --steps SGLD steps on the class logit f(x)[y], started from the checkpoint's replay-buffer images the model assigns to that class (most confident first), or fresh when a class has too few (or with --fresh).
              buffer.png         one row per class: the checkpoint's replay-buffer images sorted by predicted class, most confident first (no SGLD; needs a checkpoint with training state, e.g. last.safetensors).
            Fresh chains start where the run's chains started (--init): U(-1,1), or the per-class Gaussians of JEM++'s informative initialisation refitted to the run's training split (loaded from the checkpoint's --data unless --data is given). Every step is clamped to [-1,1].
            """)

    enum Init: String, ExpressibleByArgument, CaseIterable { case run, uniform, informative }

    @OptionGroup var backendOptions: BackendOptions
    @Option(help: ArgumentHelp("Checkpoint (.safetensors) written by jem-gpu train.", valueName: "CKPT"))
    var model: String
    @Option(help: ArgumentHelp("Output folder.", valueName: "DIR")) var out: String
    @Option(help: "SGLD steps per chain.") var steps: Int = 100
    @Option(help: "Unconditional chains (unconditional.png).") var n: Int = 64
    @Option(name: .customLong("per-class"), help: "Samples per class (one grid row each).") var perClass: Int = 10
    @Option(name: .customLong("sgld-lr"), help: "SGLD step size.") var sgldLR: Float = 1
    @Option(name: .customLong("sgld-std"), help: "SGLD noise standard deviation.") var sgldStd: Float = 0.01
    @Option(name: .customLong("init"), help: ArgumentHelp(
        "Starting distribution of fresh chains: run = the checkpoint's --buffer-init setting (a mixed run's share included), uniform = U(-1,1), informative = per-class Gaussians fitted to the training data.",
        valueName: "run|uniform|informative"))
    var initialization: Init = .run
    @Option(help: ArgumentHelp(
        "Training data for informative starts (default: the checkpoint's recorded --data).", valueName: "PATH"))
    var data: String?
    @Flag(help: "Start the conditional chains fresh instead of from the replay buffer.") var fresh = false
    @Option(help: "Random seed of the chains.") var seed: UInt64 = 1

    func validate() throws {
        guard steps >= 0 else { throw ValidationError("--steps must be >= 0 (got \(steps))") }
        guard n >= 1 else { throw ValidationError("--n must be >= 1 (got \(n))") }
        guard perClass >= 1 else { throw ValidationError("--per-class must be >= 1 (got \(perClass))") }
        guard sgldLR > 0, sgldLR.isFinite else { throw ValidationError("--sgld-lr must be > 0 (got \(sgldLR))") }
        guard sgldStd >= 0, sgldStd.isFinite else { throw ValidationError("--sgld-std must be >= 0 (got \(sgldStd))") }
    }

    func run() throws {
        let file = try SafetensorsFile(path: model)
        let (spec, _, config) = try Checkpoint.describe(file)
        let backend = try backendOptions.makeBackend()
        let net = try WideResNet(spec: spec, maxBatch: 64, backend: backend)
        try Checkpoint.loadModel(file, into: net)
        let start = try chainStart(config: config, spec: spec)
        var buffer: ReplayBuffer? = nil
        if let entry = file.entry("train.replay_buffer"), entry.count % spec.inputCount == 0 {
            let b = try ReplayBuffer(size: entry.count / spec.inputCount, rowSize: spec.inputCount, backend: backend,
                                     seed: seed)
            try backend.upload(try file.floats("train.replay_buffer"), to: b.storage, offset: 0)
            buffer = b
        }
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CommandFailure("--out \(out): cannot create the folder (\(error.localizedDescription))")
        }
        func grid(_ images: [Float], count: Int, columns: Int, name: String) throws {
            try ImageGrid.write(images: images, count: count, channels: spec.inputChannels, height: spec.imageHeight,
                                width: spec.imageWidth, columns: columns, to: out + "/" + name)
            print("wrote \(out)/\(name)")
        }
        let columns = Int(Double(n).squareRoot().rounded(.up))
        try grid(ModelSampling.unconditional(net: net, count: n, start: start, steps: steps, stepSize: sgldLR,
                                             noiseStd: sgldStd, seed: seed),
                 count: n, columns: columns, name: "unconditional.png")
        try grid(ModelSampling.conditional(net: net, buffer: fresh ? nil : buffer, start: start,
                                           perClass: perClass, steps: steps, stepSize: sgldLR, noiseStd: sgldStd,
                                           seed: seed),
                 count: spec.classCount * perClass, columns: perClass, name: "conditional.png")
        if let buffer {
            // Classes with fewer images than --per-class leave their row's tail blank.
            let byClass = try ModelSampling.bufferByClass(net: net, buffer: buffer, perClass: perClass)
            var images = [Float](repeating: -1, count: spec.classCount * perClass * spec.inputCount)
            for (y, rows) in byClass.enumerated() {
                let start = y * perClass * spec.inputCount
                images.replaceSubrange(start..<(start + rows.count), with: rows)
            }
            try grid(images, count: spec.classCount * perClass, columns: perClass, name: "buffer.png")
        } else {
            printError("note: \(model) holds no replay buffer (a best.safetensors?); buffer.png not written")
        }
    }

    /// Where fresh chains start: --init, or the run's --buffer-init (with its share when mixed);
    /// the Gaussians are refitted when any start uses them.
    func chainStart(config: TrainingConfig?, spec: WideResNetSpec) throws -> ChainStart {
        let wanted: BufferInit
        switch initialization {
        case .uniform: return .uniform
        case .informative: wanted = .informative
        case .run: wanted = config?.bufferInit ?? .uniform
        }
        guard wanted != .uniform else { return .uniform }
        var runConfig = config ?? TrainingConfig()
        guard let path = data ?? config?.data else {
            throw CommandFailure("--init informative: \(model) records no training data; pass --data PATH")
        }
        runConfig.data = path
        // The built-in dataset's sizes come from the run, so the refit sees the same images.
        let dataset = try DatasetLoader.load(path, options: LoadOptions(
            builtinTrainCount: runConfig.builtinTrainCount ?? BuiltinDataset.defaultTrainCount,
            builtinTestCount: runConfig.builtinTestCount ?? BuiltinDataset.defaultTestCount))
        guard dataset.train.shape == [spec.inputChannels, spec.imageHeight, spec.imageWidth] else {
            throw CommandFailure("--data \(path): images are \(dataset.train.shape.map(String.init).joined(separator: "x")), "
                                 + "the model expects \(spec.inputChannels)x\(spec.imageHeight)x\(spec.imageWidth)")
        }
        return ChainStart(wanted, mixedShare: runConfig.informativeShare,
                          gaussians: try InformativeInit.fit(config: runConfig, dataset: dataset))
    }
}
