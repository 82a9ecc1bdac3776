import ArgumentParser
import Foundation
import JEM
import JEMBackend

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Autotune the OpenCL convolutions of a model for this device and store the winners.",
        discussion: """
            Runs one forward and one backward pass of the model at the batch size, and tunes every convolution shape met (forward and backward-data): the built-in conv_gemm, other register tiles, the local-memory tiled conv_gemm_local, im2col + CLBlast GEMM and CLBlast's convgemm. Every candidate is checked against the CPU backend first; one that differs never wins. The winners go to the program-cache folder (conv-tuning-*.json, keyed by device, driver version and kernel source) and are used by every later run on this device; on GPUs, shapes not tuned yet are tuned on first use anyway. --no-tune in other commands ignores them.
            """)

    @OptionGroup var backendOptions: BackendOptions

    @Option(help: ArgumentHelp("Network, wrn-D-W.", valueName: "wrn-D-W"))
    var model: String = "wrn-28-10"

    @Option(name: .customLong("batch-size"), help: "Batch size the convolutions run at.")
    var batchSize: Int = 64

    @Option(help: ArgumentHelp("Input channels and size, CxHxW (CIFAR: 3x32x32).", valueName: "CxHxW"))
    var input: String = "3x32x32"

    @Option(help: "Classes of the output layer.")
    var classes: Int = 10

    @Flag(help: "Keep winners already stored and tune only shapes without one.")
    var keep = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        guard WideResNetSpec.parse(model) != nil else {
            throw ValidationError("--model must be wrn-D-W with D = 6n+4, e.g. wrn-28-10 (got '\(model)')")
        }
        guard parsedInput != nil else { throw ValidationError("--input must be CxHxW, e.g. 3x32x32 (got '\(input)')") }
        guard classes >= 2 else { throw ValidationError("--classes must be at least 2 (got \(classes))") }
    }

    var parsedInput: (Int, Int, Int)? {
        let parts = input.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else { return nil }
        return (parts[0], parts[1], parts[2])
    }

    func run() throws {
        guard backendOptions.backend != .cpu else {
            throw CommandFailure("tune: the CPU backend has nothing to tune; use --backend opencl")
        }
        let made = try backendOptions.makeBackend()
        guard let backend = made as? OpenCLBackend else {
            throw CommandFailure("tune: no OpenCL device to tune (the CPU backend was chosen)")
        }
        if backendOptions.noTune { throw CommandFailure("tune: --no-tune contradicts tune") }
        backend.convolutionTuning = keep ? .onFirstUse : .retune
        print("Tuning \(model) convolutions at batch \(batchSize) on \(backend.deviceDescription)")
        let (depth, widen) = WideResNetSpec.parse(model)!
        let (channels, height, width) = parsedInput!
        let spec = WideResNetSpec(depth: depth, widen: widen, inputChannels: channels, imageHeight: height,
                                  imageWidth: width, classCount: classes)
        let started = Date()
        let net = try WideResNet(spec: spec, maxBatch: batchSize, backend: backend)
        net.initialize(seed: 1)
        let input = try backend.makeBuffer(count: batchSize * spec.inputCount)
        backend.fillUniform(input, count: batchSize * spec.inputCount, low: -1, high: 1, seed: 1, stream: 1)
        let gradLogits = try backend.makeBuffer(count: batchSize * spec.classCount)
        let gradInput = try backend.makeBuffer(count: batchSize * spec.inputCount)
        backend.fillUniform(gradLogits, count: batchSize * spec.classCount, low: -1, high: 1, seed: 1, stream: 2)
        _ = net.forward(input, batch: batchSize)
        net.backward(gradLogits: gradLogits, batch: batchSize, gradInput: gradInput, mode: .full)
        try backend.synchronize()
        let winners = backend.convolutionTuningWinners.sorted { $0.key < $1.key }
        var rows = [["op and shape", "winner", "ms"]]
        for (key, value) in winners {
            rows.append([key, value.candidate, formatFixed(value.seconds * 1e3, 3)])
        }
        print(TextTable.render(rows))
        print("Time spent tuning: \(formatFixed(backend.convolutionTuningSeconds, 1)) s "
              + "(whole command \(formatFixed(Date().timeIntervalSince(started), 1)) s); winners in "
              + (backend.convolutionTuningPath ?? "memory only (no program cache folder)"))
    }
}
