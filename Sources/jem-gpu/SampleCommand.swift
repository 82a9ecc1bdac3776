import ArgumentParser
import Foundation
import JEM

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Draw class-conditional samples from a trained model with SGLD on f(x)[y].",
        discussion: """
            Chains start from the checkpoint's replay-buffer images that the model assigns to each class (from U(-1,1) when a class has too few, or with --fresh), run --steps SGLD steps on the class logit (step --sgld-lr, noise --sgld-std, clamped to [-1,1]), and are written as a PNG grid with one row per class: DIR/conditional.png.
            """)

    @OptionGroup var backendOptions: BackendOptions
    @Option(help: ArgumentHelp("Checkpoint (.safetensors) written by jem-gpu train.", valueName: "CKPT"))
    var model: String
    @Option(help: ArgumentHelp("Output folder.", valueName: "DIR")) var out: String
    @Option(help: "SGLD steps per chain.") var steps: Int = 100
    @Option(name: .customLong("per-class"), help: "Samples per class (one grid row each).") var perClass: Int = 10
    @Option(name: .customLong("sgld-lr"), help: "SGLD step size.") var sgldLR: Float = 1
    @Option(name: .customLong("sgld-std"), help: "SGLD noise standard deviation.") var sgldStd: Float = 0.01
    @Flag(help: "Start every chain from U(-1,1) instead of the replay buffer.") var fresh = false
    @Option(help: "Random seed of the chains.") var seed: UInt64 = 1

    func validate() throws {
        guard steps >= 0 else { throw ValidationError("--steps must be >= 0 (got \(steps))") }
        guard perClass >= 1 else { throw ValidationError("--per-class must be >= 1 (got \(perClass))") }
    }

    func run() throws {
        let file = try SafetensorsFile(path: model)
        let spec = try Checkpoint.describe(file).spec
        let backend = try backendOptions.makeBackend()
        let net = try WideResNet(spec: spec, maxBatch: 64, backend: backend)
        try Checkpoint.loadModel(file, into: net)
        var buffer: ReplayBuffer? = nil
        if !fresh, let entry = file.entry("train.replay_buffer"), entry.count % spec.inputCount == 0 {
            let b = try ReplayBuffer(size: entry.count / spec.inputCount, rowSize: spec.inputCount, backend: backend,
                                     seed: seed)
            try backend.upload(try file.floats("train.replay_buffer"), to: b.storage, offset: 0)
            buffer = b
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let images = try ConditionalSampling.sample(net: net, buffer: buffer, perClass: perClass, steps: steps,
                                                    stepSize: sgldLR, noiseStd: sgldStd, seed: seed)
        let path = out + "/conditional.png"
        try ImageGrid.write(images: images, count: spec.classCount * perClass, channels: spec.inputChannels,
                            height: spec.imageHeight, width: spec.imageWidth, columns: perClass, to: path)
        print("wrote \(path) (\(spec.classCount) rows of \(perClass), \(steps) SGLD steps)")
    }
}
