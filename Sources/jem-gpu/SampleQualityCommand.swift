import ArgumentParser
import Foundation
import JEM
import JEMBackend
import JEMSupport

struct SampleQualityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample-quality",
        abstract: "Measure a model's SGLD samples with a reference classifier: conditional accuracy, Fréchet distance, KID.",
        discussion: """
            Draws --n class-conditional samples (--n / classes per class, SGLD on the logit f(x)[y]) and --n unconditional samples (SGLD on LogSumExp f(x)) from --model, with the sampler settings of its run: the chains start from the run's --buffer-init distribution (U(-1,1), or the informative per-class Gaussians refitted to the run's training split), take --steps steps (default: the run's --final-sample-steps, else --sgld-steps) of --sgld-lr with noise --sgld-std (default: the run's), clamped to [-1,1].

            Then measures them with --reference (a classifier trained on the same data, typically the `--mode baseline` run) and writes --out DIR/sample_quality.json:
              conditional.conditional_accuracy  share of class-conditional samples the reference classifies as their class;
              frechet_distance                  Fréchet distance between Gaussians fitted to the reference's penultimate features (the pooled features before its last linear layer) of the samples and of the test images of --data;
              kid                               kernel distance (unbiased MMD^2, kernel (x.y/d + 1)^3) with its std over --kid-subsets subsets of --kid-subset-size;
            for conditional, unconditional and initial (the chains' starting draws, before any step); test_halves gives the same two numbers for one half of the test images against the other (the floor of finite samples); reference_test_accuracy is the reference's own test accuracy. Also writes conditional.png (one row per class), unconditional.png and initial.png.

            'jem-gpu report --run RUN' shows these numbers when RUN/sample_quality/sample_quality.json exists (--out RUN/sample_quality). Exits with status 1 and one line naming the flag when the checkpoints do not fit each other or the data.
            """)

    @OptionGroup var backendOptions: BackendOptions
    @Option(help: ArgumentHelp("Checkpoint whose samples are measured (.safetensors).", valueName: "CKPT"))
    var model: String
    @Option(help: ArgumentHelp("Checkpoint of the classifier that measures them (e.g. the baseline run's best.safetensors).",
                               valueName: "CKPT"))
    var reference: String
    @Option(help: ArgumentHelp("Dataset whose test images the samples are compared with (default: --model's training data).",
                               valueName: "PATH"))
    var data: String?
    @Option(help: ArgumentHelp("Output folder for sample_quality.json and the grids.", valueName: "DIR"))
    var out: String
    @Option(help: "Samples of each kind (class-conditional and unconditional).")
    var n: Int = 1000
    @Option(help: "SGLD steps per chain (default: the run's --final-sample-steps, else its --sgld-steps).")
    var steps: Int?
    @Option(name: .customLong("sgld-lr"), help: "SGLD step size (default: the run's).")
    var sgldLR: Float?
    @Option(name: .customLong("sgld-std"), help: "SGLD noise standard deviation (default: the run's).")
    var sgldStd: Float?
    @Option(name: .customLong("kid-subsets"), help: "KID: number of random subsets.")
    var kidSubsets: Int = 100
    @Option(name: .customLong("kid-subset-size"), help: "KID: rows per subset (capped by the smaller set).")
    var kidSubsetSize: Int = 1000
    @Option(help: "Seed of the chains and the KID subsets.")
    var seed: UInt64 = 1

    func validate() throws {
        guard n >= 2 else { throw ValidationError("--n must be >= 2 (got \(n))") }
        if let steps, steps < 0 || steps > TrainingConfig.maxSGLDSteps {
            throw ValidationError("--steps must be in 0...\(TrainingConfig.maxSGLDSteps) (got \(steps))")
        }
        if let sgldLR, !(sgldLR > 0 && sgldLR.isFinite) { throw ValidationError("--sgld-lr must be > 0 (got \(sgldLR))") }
        if let sgldStd, !(sgldStd >= 0 && sgldStd.isFinite) {
            throw ValidationError("--sgld-std must be >= 0 (got \(sgldStd))")
        }
        guard kidSubsets >= 1 else { throw ValidationError("--kid-subsets must be >= 1 (got \(kidSubsets))") }
        guard kidSubsetSize >= 2 else { throw ValidationError("--kid-subset-size must be >= 2 (got \(kidSubsetSize))") }
    }

    func run() throws {
        func open(_ path: String, flag: String) throws -> (SafetensorsFile, WideResNetSpec, TrainingConfig?) {
            do {
                let file = try SafetensorsFile(path: path)
                let (spec, _, config) = try Checkpoint.describe(file)
                return (file, spec, config)
            } catch {
                throw CommandFailure("\(flag) \(error)")
            }
        }
        let (modelFile, spec, config) = try open(model, flag: "--model")
        let (referenceFile, referenceSpec, _) = try open(reference, flag: "--reference")
        let run = config ?? TrainingConfig()
        if referenceSpec.inputChannels != spec.inputChannels || referenceSpec.imageHeight != spec.imageHeight
            || referenceSpec.imageWidth != spec.imageWidth || referenceSpec.classCount != spec.classCount {
            throw CommandFailure("--reference \(reference): \(referenceSpec.description) does not take the images and "
                                 + "classes of --model \(model) (\(spec.description))")
        }
        guard let dataPath = data ?? config?.data else {
            throw CommandFailure("--data is needed: \(model) does not record the data it was trained on")
        }
        let dataset: Dataset
        do {
            dataset = try DatasetLoader.load(dataPath, options: LoadOptions(
                builtinTrainCount: run.builtinTrainCount ?? BuiltinDataset.defaultTrainCount,
                builtinTestCount: run.builtinTestCount ?? BuiltinDataset.defaultTestCount))
        } catch {
            throw CommandFailure("--data \(error)")
        }
        let test = dataset.test ?? dataset.train
        if let problem = EvaluationData.mismatch(test, classCount: dataset.isLabelled ? dataset.classCount : nil, spec: spec) {
            throw CommandFailure("--data \(dataPath): \(problem) (checkpoint \(model))")
        }
        guard test.count >= 2 else { throw CommandFailure("--data \(dataPath): fewer than 2 test images") }
        var start = ChainStart.uniform
        if let config, config.bufferInit != .uniform {
            do {
                start = ChainStart(config.bufferInit, mixedShare: config.informativeShare,
                                   gaussians: try InformativeInit.fit(config: run, dataset: dataset))
            } catch {
                throw CommandFailure("--data \(dataPath): \(error)")
            }
        }
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CommandFailure("--out \(out): cannot create the folder (\(error.localizedDescription))")
        }
        let backend = try backendOptions.makeBackend()
        let net = try WideResNet(spec: spec, maxBatch: 64, backend: backend)
        let judge = try WideResNet(spec: referenceSpec, maxBatch: 100, backend: backend)
        do { try Checkpoint.loadModel(modelFile, into: net) } catch { throw CommandFailure("--model \(error)") }
        do { try Checkpoint.loadModel(referenceFile, into: judge) } catch { throw CommandFailure("--reference \(error)") }

        let options = SampleQuality.Options(
            count: n, steps: steps ?? (run.finalSampleSteps > 0 ? run.finalSampleSteps : run.sgldSteps),
            stepSize: sgldLR ?? run.sgldLR, noiseStd: sgldStd ?? run.sgldStd, seed: seed, kidSubsets: kidSubsets,
            kidSubsetSize: kidSubsetSize)
        let started = Date()
        var (result, images) = try SampleQuality.measure(model: net, reference: judge, start: start, test: test,
                                                         options: options) { printError($0) }
        result.model = model
        result.reference = reference
        result.data = dataPath
        result.backend = backend.kind.rawValue
        result.device = backend.deviceDescription

        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                      nan: "nan")
        try AtomicFile.write(try encoder.encode(result), to: out + "/sample_quality.json")
        let k = spec.classCount, perClass = images.conditionalClasses.count / k, shown = min(perClass, 10)
        func grid(_ pixels: [Float], count: Int, columns: Int, _ name: String) throws {
            try ImageGrid.write(images: pixels, count: count, channels: spec.inputChannels, height: spec.imageHeight,
                                width: spec.imageWidth, columns: columns, to: out + "/" + name)
        }
        // One row per class: the first `shown` samples of each.
        let size = spec.inputCount
        var rows: [Float] = [], starts: [Float] = []
        for y in 0..<k {
            let first = y * perClass * size
            rows += images.conditional[first..<(first + shown * size)]
            starts += images.initial[first..<(first + shown * size)]
        }
        try grid(rows, count: k * shown, columns: shown, "conditional.png")
        try grid(starts, count: k * shown, columns: shown, "initial.png")
        let unconditionalShown = min(n, 100)
        try grid(images.unconditional, count: unconditionalShown,
                 columns: Int(Double(unconditionalShown).squareRoot().rounded(.up)), "unconditional.png")

        func line(_ name: String, _ r: SampleQuality.SetResult) -> String {
            name.padding(toLength: 14, withPad: " ", startingAt: 0)
                + String(format: " FD %10.4g   KID %.4g ± %.2g", r.frechetDistance, r.kid.value, r.kid.std)
                + (r.conditionalAccuracy.map { String(format: "   conditional accuracy %.4f", $0) } ?? "")
        }
        print(line("conditional", result.conditional))
        print(line("unconditional", result.unconditional))
        print(line("initial", result.initial))
        if let halves = result.testHalves { print(line("test halves", halves)) }
        print(String(format: "wrote %@/sample_quality.json, conditional.png, unconditional.png, initial.png (%.1f s)", out,
                     Date().timeIntervalSince(started)))
    }
}
