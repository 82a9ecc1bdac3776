import ArgumentParser
import Foundation
import JEM
import JEMBackend

/// The flags `eval` and `score` share: which checkpoint, which images, which OOD sets, and how
/// they are scored. `prepare()` turns them into a loaded network and the sets to score, or one
/// line naming the flag at fault.
struct EvaluationInputs: ParsableArguments {
    @OptionGroup var backendOptions: BackendOptions

    @Option(help: ArgumentHelp("Checkpoint (.safetensors) written by jem-gpu train.", valueName: "CKPT"))
    var model: String
    @Option(help: ArgumentHelp("In-distribution dataset: builtin, or any folder/file `train --data` reads "
                               + "(default: the data the checkpoint was trained on).", valueName: "PATH"))
    var data: String?
    @Option(help: ArgumentHelp("Images of --data to score: test (a single images file without a test split is "
                               + "used whole), train (the part the trainer learned from) or valid (the part it held "
                               + "out, carved with the checkpoint's --valid and --seed).", valueName: "test|train|valid"))
    var split: EvaluationSplit = .test
    @Option(parsing: .singleValue, help: ArgumentHelp(
        "An out-of-distribution set, repeatable: any dataset PATH the loaders read (its test split, else all of "
        + "it), optionally named PATH:name; or synthetic:uniform (U(-1,1) noise), synthetic:interp (midpoint of two "
        + "random in-distribution images) or synthetic:permuted (each in-distribution image with its pixels "
        + "randomly permuted), made from the scored images, as many of them, seeded by --seed.",
        valueName: "PATH[:name]|synthetic:KIND"))
    var ood: [String] = []
    @Option(name: .customLong("batch-size"), help: "Images per forward/backward pass.")
    var batchSize: Int = 100
    @Option(name: .customLong("test-noise"), help: ArgumentHelp(
        "Std of Gaussian noise added to every input before scoring (the official evaluation uses 0.03; default 0, "
        + "deterministic either way: Philox noise addressed by image index and --seed).", valueName: "SIGMA"))
    var testNoise: Float = 0
    @Option(help: "Seed of the test noise and the synthetic OOD sets (default: the checkpoint's training seed, else 1).")
    var seed: UInt64?
    @Option(help: ArgumentHelp("Axis order of NumPy image arrays.", valueName: "auto|nchw|nhwc"))
    var layout: LoadOptions.Layout = .auto
    @Option(name: .customLong("builtin-train"), help: ArgumentHelp(
        "Built-in dataset: training images (give the value used in training, for --split train/valid).", valueName: "N"))
    var builtinTrain: Int = BuiltinDataset.defaultTrainCount
    @Option(name: .customLong("builtin-test"), help: ArgumentHelp("Built-in dataset: test images.", valueName: "N"))
    var builtinTest: Int = BuiltinDataset.defaultTestCount

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be >= 1 (got \(batchSize))") }
        guard testNoise >= 0, testNoise.isFinite else {
            throw ValidationError("--test-noise must be a finite value >= 0 (got \(testNoise))")
        }
        guard builtinTrain >= 1 else { throw ValidationError("--builtin-train must be > 0 (got \(builtinTrain))") }
        guard builtinTest >= 0 else { throw ValidationError("--builtin-test must be >= 0 (got \(builtinTest))") }
        for value in ood where value.hasPrefix("synthetic:") && SyntheticOOD(rawValue: String(value.dropFirst(10))) == nil {
            throw ValidationError("--ood \(value): unknown synthetic set, expected synthetic:uniform, synthetic:interp "
                                  + "or synthetic:permuted")
        }
    }

    /// Everything an evaluation needs, checked against each other.
    struct Prepared {
        let spec: WideResNetSpec
        let net: WideResNet
        let inDistribution: EvaluationSet
        let ood: [EvaluationSet]
        let settings: EvaluationSettings
    }

    func prepare() throws -> Prepared {
        let file: SafetensorsFile
        let spec: WideResNetSpec, config: TrainingConfig?
        do {
            file = try SafetensorsFile(path: model)
            (spec, _, config) = try Checkpoint.describe(file)
        } catch {
            throw CommandFailure("--model \(error)")
        }
        guard let dataPath = data ?? config?.data else {
            throw CommandFailure("--data is needed: \(model) does not record the data it was trained on")
        }
        let options = LoadOptions(builtinTrainCount: builtinTrain, builtinTestCount: builtinTest, layout: layout)
        let dataset: Dataset
        do { dataset = try DatasetLoader.load(dataPath, options: options) } catch {
            throw CommandFailure("--data \(error)")
        }
        let selected: EvaluationImages
        do { selected = try EvaluationData.select(dataset, split: split, config: config) } catch {
            throw CommandFailure("--split \(split.rawValue): \(error)")
        }
        if split != .test, let trained = config?.data, trained != dataPath {
            printError("notice: --split \(split.rawValue) is carved from \(dataPath), but the checkpoint was trained on "
                       + "\(trained)")
        }
        if let problem = EvaluationData.mismatch(selected.images, classCount: dataset.isLabelled ? dataset.classCount : nil,
                                                 spec: spec) {
            throw CommandFailure("--data \(dataPath): \(problem) (checkpoint \(model))")
        }
        let seed = self.seed ?? config?.seed ?? 1
        let inDistribution = EvaluationSet(name: "in-distribution", source: "\(dataPath) (\(selected.detail))",
                                           images: selected.images)
        var oodSets: [EvaluationSet] = []
        for value in ood {
            let set = try loadOOD(value, from: inDistribution, options: options, seed: seed)
            if let problem = EvaluationData.mismatch(set.images, classCount: nil, spec: spec) {
                throw CommandFailure("--ood \(value): \(problem)")
            }
            guard !oodSets.contains(where: { $0.name == set.name }) else {
                throw CommandFailure("--ood \(value): a second OOD set named '\(set.name)' (name them PATH:name)")
            }
            oodSets.append(set)
        }
        let backend = try backendOptions.makeBackend()
        let net = try WideResNet(spec: spec, maxBatch: batchSize, backend: backend)
        do { try Checkpoint.loadModel(file, into: net) } catch { throw CommandFailure("--model \(error)") }
        var settings = EvaluationSettings(checkpoint: model, data: dataPath, split: split.rawValue,
                                          splitDetail: selected.detail, testNoise: testNoise, seed: seed)
        settings.backend = backend.kind.rawValue
        settings.device = backend.deviceDescription
        return Prepared(spec: spec, net: net, inDistribution: inDistribution, ood: oodSets, settings: settings)
    }

    /// One `--ood` value: a synthetic set made from the in-distribution images, or a dataset.
    func loadOOD(_ value: String, from inDistribution: EvaluationSet, options: LoadOptions, seed: UInt64) throws
        -> EvaluationSet
    {
        if value.hasPrefix("synthetic:"), let kind = SyntheticOOD(rawValue: String(value.dropFirst(10))) {
            return EvaluationSet(name: kind.name, source: "\(kind.name) from \(inDistribution.source), seed \(seed)",
                                 images: kind.make(from: inDistribution.images, seed: seed))
        }
        var path = value, name = (value as NSString).lastPathComponent
        // PATH:name, unless the whole value is an existing path or what follows the colon looks like a path.
        if !FileManager.default.fileExists(atPath: value), let colon = value.lastIndex(of: ":") {
            let suffix = String(value[value.index(after: colon)...])
            if !suffix.isEmpty && !suffix.contains("/") {
                path = String(value[..<colon])
                name = suffix
            }
        }
        let dataset: Dataset
        do { dataset = try DatasetLoader.load(path, options: options) } catch {
            throw CommandFailure("--ood \(error)")
        }
        let images = dataset.test ?? dataset.train
        let which = dataset.test != nil ? "test split" : "all images"
        return EvaluationSet(name: name, source: "\(path) (\(which) of \(dataset.format), \(images.count) images)",
                             images: images.withLabels(nil))
    }
}

extension EvaluationSplit: ExpressibleByArgument {}
