import ArgumentParser
import Foundation
import JEM
import JEMBackend

struct AttackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attack",
        abstract: "Robust accuracy under PGD of a trained model, with SGLD refinement before classification.",
        discussion: """
            The classifier attacked is the official attack_model.py's: --copies copies of each input with Gaussian noise (--copy-noise), each refined by R SGLD steps on LogSumExp(logits) (step --sgld-lr, noise --sgld-std), logits averaged over the copies; one column of results per R in --refine (R = 0: the noisy copies only).

            PGD (--norm linf: sign-gradient steps; l2: steps along the gradient scaled to the step length) maximises the cross-entropy of the true label from a random start in the ball, projecting onto the ball and the pixel range after every step. --refine-gradient full differentiates exactly through the SGLD steps (Hessian-vector products by finite differences); straight-through treats them as the identity, which is what the official script computes in effect.

            Epsilon and step size are in [0, 1] pixel units, as in the paper and foolbox; the model sees [-1, 1], so both are doubled internally. An example counts as robust at an epsilon if it is classified correctly clean and after every restart. The clean row (epsilon 0) is always included. Examples are the first --limit of --split, in order. Cost per example and epsilon: restarts x steps x copies x (1 + R (1 + 2 if full)) forward+backward passes; for a wrn-10-1 on 28x28 digits on 2 CPU cores with the defaults, about 1.2 s (R = 0), 4.6 s (R = 1) and 36 s (R = 10), hence the default --limit of 100.

            Prints the table (rows: epsilon, columns: refinement) and writes DIR/attack.json and DIR/attack.md.
            """)

    @OptionGroup var backendOptions: BackendOptions
    @Option(help: ArgumentHelp("Checkpoint (.safetensors) written by jem-gpu train.", valueName: "CKPT"))
    var model: String
    @Option(help: ArgumentHelp("Dataset: builtin, an IDX/CIFAR/SVHN/NumPy/image folder or file.", valueName: "PATH"))
    var data: String = "builtin"
    @Option(help: ArgumentHelp("Output folder for attack.json and attack.md.", valueName: "DIR"))
    var out: String
    @Option(help: ArgumentHelp("Threat model: linf or l2.", valueName: "linf|l2"))
    var norm: String = "linf"
    @Option(help: ArgumentHelp("Radii in [0, 1] pixel units, comma-separated; fractions allowed (e.g. 2/255,8/255).",
                               valueName: "E1,E2,..."))
    var eps: String
    @Option(help: ArgumentHelp("Images attacked: test, train or valid (the checkpoint's held-out split).",
                               valueName: "test|train|valid"))
    var split: String = "test"
    @Option(help: "Attack the first N images of the split (0: all); see the cost above.") var limit: Int = 100
    @Option(name: .customLong("batch-size"),
            help: "Examples per batch (the network runs batch-size x copies images at once).")
    var batchSize: Int = 20
    @Option(help: "PGD iterations per restart.") var steps: Int = 40
    @Option(name: .customLong("step-size"),
            help: ArgumentHelp("PGD step length in [0, 1] pixel units for every epsilon (default: 2.5 x eps / steps).",
                               valueName: "S"))
    var stepSize: Float?
    @Option(help: "Random restarts; an example is broken if any restart breaks it.") var restarts: Int = 1
    @Option(help: ArgumentHelp("SGLD refinement steps before classification, one result column each.",
                               valueName: "R1,R2,..."))
    var refine: String = "0,1,10"
    @Option(help: "Noisy copies of each input whose logits are averaged.") var copies: Int = 5
    @Option(name: .customLong("copy-noise"), help: "Std of the Gaussian noise of each copy (model units).")
    var copyNoise: Float = 0.03
    @Option(name: .customLong("sgld-lr"), help: "SGLD step size of the refinement.") var sgldLR: Float = 1
    @Option(name: .customLong("sgld-std"), help: "SGLD noise std of the refinement.") var sgldStd: Float = 0.01
    @Option(name: .customLong("refine-gradient"),
            help: ArgumentHelp("Gradient through the refinement: full (exact) or straight-through (identity).",
                               valueName: "full|straight-through"))
    var refineGradient: String = "full"
    @Option(help: "Random seed (starts, copy and SGLD noise).") var seed: UInt64 = 1

    /// Checked in `run` rather than `validate`, so that a bad value gives one line (ArgumentParser
    /// adds the usage to a ValidationError).
    func checkFlags() throws {
        guard AttackNorm(rawValue: norm) != nil else {
            throw CommandFailure("--norm must be linf or l2 (got '\(norm)')")
        }
        guard let values = Self.parseEpsilons(eps) else {
            throw CommandFailure("--eps must be comma-separated numbers >= 0 or fractions like 8/255 (got '\(eps)')")
        }
        if let bad = values.first(where: { $0.value < 0 }) {
            throw CommandFailure("--eps must be >= 0 (got \(bad.text))")
        }
        guard ["test", "train", "valid"].contains(split) else {
            throw CommandFailure("--split must be test, train or valid (got '\(split)')")
        }
        guard limit >= 0 else { throw CommandFailure("--limit must be >= 0 (got \(limit))") }
        guard batchSize >= 1 else { throw CommandFailure("--batch-size must be >= 1 (got \(batchSize))") }
        guard steps >= 1 && steps < AttackDraw.maxSteps else {
            throw CommandFailure("--steps must be in 1...\(AttackDraw.maxSteps - 1) (got \(steps))")
        }
        if let stepSize, !(stepSize > 0) { throw CommandFailure("--step-size must be > 0 (got \(stepSize))") }
        guard restarts >= 1 && restarts <= AttackDraw.maxRestarts else {
            throw CommandFailure("--restarts must be in 1...\(AttackDraw.maxRestarts) (got \(restarts))")
        }
        guard Self.parseRefine(refine) != nil else {
            throw CommandFailure("--refine must be comma-separated integers in 0...4094, e.g. 0,1,10 (got '\(refine)')")
        }
        guard RefinementGradient(rawValue: refineGradient) != nil else {
            throw CommandFailure("--refine-gradient must be full or straight-through (got '\(refineGradient)')")
        }
        guard copies >= 1 else { throw CommandFailure("--copies must be >= 1 (got \(copies))") }
        guard copyNoise >= 0 else { throw CommandFailure("--copy-noise must be >= 0 (got \(copyNoise))") }
        guard sgldLR >= 0 else { throw CommandFailure("--sgld-lr must be >= 0 (got \(sgldLR))") }
        guard sgldStd >= 0 else { throw CommandFailure("--sgld-std must be >= 0 (got \(sgldStd))") }
    }

    /// "0.1,8/255" -> [(text, value)]; nil when an item is not a number or a fraction.
    static func parseEpsilons(_ text: String) -> [(text: String, value: Float)]? {
        let items = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var values: [(String, Float)] = []
        for item in items {
            let parts = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 1 || parts.count == 2, let a = Double(parts[0]), a.isFinite else { return nil }
            var value = a
            if parts.count == 2 {
                guard let b = Double(parts[1]), b.isFinite, b != 0 else { return nil }
                value = a / b
            }
            values.append((item, Float(value)))
        }
        return values.isEmpty ? nil : values
    }

    static func parseRefine(_ text: String) -> [Int]? {
        let values = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && (0...4094).contains($0!) }) else { return nil }
        return values.map { $0! }
    }

    func run() throws {
        try checkFlags()
        let epsilons = Self.parseEpsilons(eps)!
        let file = try SafetensorsFile(path: model)
        let (spec, _, config) = try Checkpoint.describe(file)
        let dataset = try DatasetLoader.load(data)
        let images = try chooseImages(dataset, config: config)
        guard images.labels != nil else {
            throw CommandFailure("--data \(data): the \(split) split has no labels; robust accuracy needs them")
        }
        let modelName = (model as NSString).lastPathComponent
        guard images.shape == [spec.inputChannels, spec.imageHeight, spec.imageWidth] else {
            throw CommandFailure("--data \(data): images are \(images.shape.map(String.init).joined(separator: "x")) but "
                                 + "\(modelName) expects \(spec.inputChannels)x\(spec.imageHeight)x\(spec.imageWidth)")
        }
        guard dataset.classCount == spec.classCount else {
            throw CommandFailure("--data \(data): \(dataset.classCount) classes but \(modelName) has \(spec.classCount)")
        }
        let plan = AttackPlan(norm: AttackNorm(rawValue: norm)!, epsilons: epsilons.map(\.value), steps: steps,
                              stepSize: stepSize, restarts: restarts, refineSteps: Self.parseRefine(refine)!,
                              copies: copies, copyNoise: copyNoise, sgldStepSize: sgldLR, sgldNoise: sgldStd,
                              refineGradient: RefinementGradient(rawValue: refineGradient)!,
                              batchSize: batchSize, seed: seed)
        let backend = try backendOptions.makeBackend()
        let net = try WideResNet(spec: spec, maxBatch: batchSize * copies, backend: backend)
        try Checkpoint.loadModel(file, into: net)
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure("--out \(out): cannot create the folder (\(error.localizedDescription))")
        }
        let count = limit == 0 ? images.count : min(limit, images.count)
        guard count > 0 else { throw CommandFailure("--data \(data): the \(split) split holds no images") }
        printError("attack: \(spec.name) on \(count) \(split) images, \(norm) eps \(eps), refine \(refine), "
                   + "\(restarts) restart(s) x \(steps) steps | \(backend.deviceDescription)")
        let evaluation = try RobustAccuracy(net: net, plan: plan)
        let units = (count + batchSize - 1) / batchSize * plan.refineSteps.count
        let reporter = ProgressReporter(total: units, label: "attack", logEvery: max(1, units / 20))
        let started = Date()
        let result = try evaluation.evaluate(images, limit: count) { done, _, note in
            reporter.update(completed: done, detail: note)
        }
        reporter.finish()
        try backend.synchronize()
        let report = AttackReport(model: model, data: data, split: split, backend: backend.deviceDescription, plan: plan,
                                  epsilonTexts: epsilons.map(\.text), result: result,
                                  seconds: Date().timeIntervalSince(started))
        try report.write(to: out)
        print(TextTable.render(report.tableCells))
        print("wrote \(out)/attack.json and \(out)/attack.md (\(String(format: "%.1f", report.seconds)) s)")
    }

    /// The images of --split: the dataset's test set, or the training images split as the
    /// checkpoint's run split them (its --valid count and seed), train or valid part.
    func chooseImages(_ dataset: Dataset, config: TrainingConfig?) throws -> ImageSet {
        if split == "test" {
            guard let test = dataset.test else {
                throw CommandFailure("--data \(data): no test split; use --split train or valid")
            }
            return test
        }
        let parts = DataSplit(dataset.limitingTrain(to: config?.trainLimit).train, validCount: config?.validCount, labelsPerClass: nil,
                              classCount: dataset.classCount, seed: config?.seed ?? TrainingConfig().seed)
        return split == "valid" ? parts.valid : parts.train
    }
}
