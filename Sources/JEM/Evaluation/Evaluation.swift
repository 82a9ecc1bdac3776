import Foundation
import JEMBackend
import JEMSupport

/// A set of images an evaluation scores: the in-distribution set or an OOD set.
public struct EvaluationSet: Sendable {
    /// "in-distribution", a dataset name given as PATH:name, or `synthetic:<kind>`.
    public var name: String
    /// Where the images came from (a path and split, or how they were synthesised).
    public var source: String
    public var images: ImageSet

    public init(name: String, source: String, images: ImageSet) {
        self.name = name
        self.source = source
        self.images = images
    }
}

/// What was evaluated and how: recorded in metrics.json so a result can be reproduced.
public struct EvaluationSettings: Codable, Sendable, Equatable {
    public var checkpoint: String
    public var data: String
    public var split: String
    public var splitDetail: String
    /// Std of the Gaussian noise added to every input (0: none).
    public var testNoise: Float
    /// Seed of that noise and of the synthetic OOD sets.
    public var seed: UInt64
    public var model: String = ""
    public var inputShape: [Int] = []
    public var classes: Int = 0
    public var batchSize: Int = 0
    public var backend: String = ""
    public var device: String = ""
    public var version: String = JEMVersion.string

    public init(checkpoint: String, data: String, split: String, splitDetail: String, testNoise: Float,
                seed: UInt64) {
        self.checkpoint = checkpoint
        self.data = data
        self.split = split
        self.splitDetail = splitDetail
        self.testNoise = testNoise
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case checkpoint, data, split, splitDetail = "split_detail", testNoise = "test_noise", seed, model
        case inputShape = "input_shape", classes, batchSize = "batch_size", backend, device, version
    }
}

/// Mean, spread and range of one score over one set (finite values only).
public struct ScoreSummary: Codable, Sendable, Equatable {
    public var mean: Double?
    public var std: Double?
    public var min: Double?
    public var max: Double?
    /// Values that were NaN or infinite (left out of the four above).
    public var nonFinite: Int

    public init(_ values: [Float]) {
        let finite = values.filter(\.isFinite).map(Double.init)
        nonFinite = values.count - finite.count
        guard !finite.isEmpty else { return }
        let mean = finite.reduce(0, +) / Double(finite.count)
        self.mean = mean
        std = (finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(finite.count)).squareRoot()
        min = finite.min()
        max = finite.max()
    }

    enum CodingKeys: String, CodingKey { case mean, std, min, max, nonFinite = "non_finite" }
}

/// AUROC of the three scores for one OOD set against the in-distribution set (in-distribution
/// = positive, higher score = more in-distribution); nil when a score has NaN values.
public struct OODResult: Codable, Sendable, Equatable {
    public var px: Double?
    public var py: Double?
    public var pxgrad: Double?
    public var count: Int
    public var source: String
    public var scores: [String: ScoreSummary]

    public func auroc(_ score: OODScore) -> Double? {
        switch score {
        case .px: return px
        case .py: return py
        case .pxgrad: return pxgrad
        }
    }
}

/// Everything `jem-gpu eval` reports (metrics.json), Codable so that later tools (a report
/// command) can read it back with `EvaluationResult.decoder`.
public struct EvaluationResult: Codable, Sendable, Equatable {
    public var settings: EvaluationSettings
    /// In-distribution images scored.
    public var count: Int
    public var labelled: Bool
    /// Classification metrics; nil when the in-distribution images have no labels.
    public var accuracy: Double?
    /// Mean cross-entropy (natural log).
    public var nll: Double?
    /// Expected calibration error, 20 bins; the bins are in `calibration`.
    public var ece: Double?
    public var calibration: ReliabilityDiagram?
    /// Summaries of px, py and pxgrad on the in-distribution set.
    public var scores: [String: ScoreSummary]
    /// Per OOD set name.
    public var ood: [String: OODResult]
    /// Temperature scaling (`jem-gpu calibrate`), present only when a temperature file was
    /// found beside the checkpoint: T, where it came from, and NLL/ECE of softmax(logits / T).
    /// `nll` and `ece` above are always the raw (T = 1) numbers.
    public var temperature: Double?
    public var temperatureFile: String?
    public var nllScaled: Double?
    public var eceScaled: Double?

    enum CodingKeys: String, CodingKey {
        case settings, count, labelled, accuracy, nll, ece, calibration, scores, ood, temperature
        case temperatureFile = "temperature_file", nllScaled = "nll_scaled", eceScaled = "ece_scaled"
    }

    /// The metrics of a set of scores: pure arithmetic, so a `score` dump recomputes them exactly.
    public init(settings: EvaluationSettings, inDistribution: ExampleScores,
                ood: [(set: EvaluationSet, scores: ExampleScores)], binCount: Int = 20) {
        self.settings = settings
        count = inDistribution.count
        labelled = inDistribution.labels != nil
        if let labels = inDistribution.labels {
            let k = inDistribution.classCount
            let classification = ClassificationMetrics(logits: inDistribution.logits, labels: labels, classCount: k)
            accuracy = classification.accuracy
            nll = classification.nll
            let diagram = ReliabilityDiagram(
                confidences: inDistribution.maxProbability,
                correct: ClassificationMetrics.correctness(logits: inDistribution.logits, labels: labels, classCount: k),
                binCount: binCount)
            ece = diagram.ece
            calibration = diagram
        }
        scores = Self.summaries(inDistribution)
        var results: [String: OODResult] = [:]
        for (set, other) in ood {
            func auroc(_ s: OODScore) -> Double? {
                ROC.auroc(positive: inDistribution.values(s), negative: other.values(s))
            }
            results[set.name] = OODResult(px: auroc(.px), py: auroc(.py), pxgrad: auroc(.pxgrad), count: other.count,
                                          source: set.source, scores: Self.summaries(other))
        }
        self.ood = results
    }

    static func summaries(_ scores: ExampleScores) -> [String: ScoreSummary] {
        Dictionary(uniqueKeysWithValues: OODScore.allCases.map { ($0.rawValue, ScoreSummary(scores.values($0))) })
    }

    /// Pretty, key-sorted JSON; non-finite numbers (a diverged model) are written as strings.
    public static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf",
                                                                      negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf",
                                                                        negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// Scores the in-distribution set and every OOD set with one network and computes the
/// metrics: the library behind `jem-gpu eval` (and `score`, which keeps the raw scores).
public final class Evaluator {
    public let scorer: Scorer
    /// The processes that share the images (data-parallel `eval`/`score`); every rank gets all scores.
    public var communicator: any Communicator = SingleProcess()

    /// The scores and metrics of one evaluation.
    public struct Output {
        public var result: EvaluationResult
        public var inDistribution: ExampleScores
        public var ood: [(set: EvaluationSet, scores: ExampleScores)]
    }

    /// `net` must have been built with `maxBatch` = the evaluation batch size.
    public init(net: WideResNet) throws {
        scorer = try Scorer(net: net)
    }


    /// Scores every set (in-distribution first) and computes the metrics. `settings` gets the
    /// network, batch size and backend filled in. `progress` is told each set's name first.
    public func evaluate(_ inDistribution: EvaluationSet, ood: [EvaluationSet], settings: EvaluationSettings,
                         progress: (String) -> Void = { _ in }) throws -> Output {
        let net = scorer.net, spec = net.spec
        for set in [inDistribution] + ood {
            if let problem = EvaluationData.mismatch(set.images, classCount: nil, spec: spec) {
                throw IOError("\(set.name) (\(set.source)): \(problem)")
            }
        }
        var settings = settings
        settings.model = spec.name
        settings.inputShape = [spec.inputChannels, spec.imageHeight, spec.imageWidth]
        settings.classes = spec.classCount
        settings.batchSize = scorer.batchSize
        settings.backend = net.backend.kind.rawValue
        settings.device = net.backend.deviceDescription
        func noise(_ index: Int) -> TestNoise {
            TestNoise(std: settings.testNoise, seed: settings.seed, stream: RandomStream.testNoise(set: index))
        }
        progress(inDistribution.name)
        let inScores = try scorer.score(inDistribution.images, noise: noise(0), communicator: communicator)
        var oodScores: [(set: EvaluationSet, scores: ExampleScores)] = []
        for (j, set) in ood.enumerated() {
            progress(set.name)
            oodScores.append((set, try scorer.score(set.images, noise: noise(j + 1), communicator: communicator)))
        }
        let result = EvaluationResult(settings: settings, inDistribution: inScores, ood: oodScores)
        return Output(result: result, inDistribution: inScores, ood: oodScores)
    }
}
