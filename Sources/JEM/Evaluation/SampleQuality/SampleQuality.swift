import Foundation
import JEMBackend
import JEMSupport

/// How good a model's SGLD samples are, measured with a separate reference classifier (usually
/// the cross-entropy baseline): `jem-gpu sample-quality`.
///
/// - conditional accuracy: the share of class-conditional samples (SGLD on the logit f(x)[y])
///   that the reference classifies as y;
/// - Fréchet distance and KID between the samples and the test images, in the reference's
///   penultimate features (the pooled features before its final linear layer);
/// - the same numbers for draws of the chains' initial distribution (U(-1,1) or the informative
///   per-class Gaussians), so that what SGLD adds can be told from where it starts.
public enum SampleQuality {
    /// Settings of one measurement.
    public struct Options: Sendable {
        /// Samples of each kind (class-conditional: `count / classes` per class, at least 1).
        public var count: Int
        public var steps: Int
        public var stepSize: Float
        public var noiseStd: Float
        public var seed: UInt64
        public var kidSubsets: Int
        public var kidSubsetSize: Int

        public init(count: Int, steps: Int, stepSize: Float, noiseStd: Float, seed: UInt64, kidSubsets: Int = 100,
                    kidSubsetSize: Int = 1000) {
            self.count = count
            self.steps = steps
            self.stepSize = stepSize
            self.noiseStd = noiseStd
            self.seed = seed
            self.kidSubsets = kidSubsets
            self.kidSubsetSize = kidSubsetSize
        }
    }

    /// The numbers of one set of images against the test images.
    public struct SetResult: Codable, Sendable, Equatable {
        public var count: Int
        public var frechetDistance: Double
        public var kid: KernelInceptionDistance
        /// Share the reference classifies as the class the image was drawn for (conditional sets only).
        public var conditionalAccuracy: Double?

        enum CodingKeys: String, CodingKey {
            case count, frechetDistance = "frechet_distance", kid, conditionalAccuracy = "conditional_accuracy"
        }
    }

    /// sample_quality.json.
    public struct Result: Codable, Sendable, Equatable {
        public var model: String
        public var reference: String
        public var data: String
        public var testImages: Int
        /// The reference's accuracy on the test images (how far its judgement can be trusted).
        public var referenceTestAccuracy: Double?
        public var featureDimension: Int
        /// "uniform", "informative" or "mixed P": the chains' initial distribution (`ChainStart.name`).
        public var initialization: String
        public var steps: Int
        public var stepSize: Float
        public var noiseStd: Float
        public var seed: UInt64
        public var conditional: SetResult
        public var unconditional: SetResult
        /// Draws of the initial distribution (the chains' starting points, before any SGLD step).
        public var initial: SetResult
        /// FD and KID of a second half of the test images against the first: the floor that
        /// finite samples give (nil when the test split has fewer than 4 images).
        public var testHalves: SetResult?
        public var backend: String = ""
        public var device: String = ""
        public var version: String = JEMVersion.string

        enum CodingKeys: String, CodingKey {
            case model, reference, data, testImages = "test_images", referenceTestAccuracy = "reference_test_accuracy"
            case featureDimension = "feature_dimension", initialization, steps, stepSize = "step_size"
            case noiseStd = "noise_std", seed, conditional, unconditional, initial, testHalves = "test_halves"
            case backend, device, version
        }

        public static func read(_ path: String) throws -> Result {
            do {
                return try JSONDecoder().decode(Result.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
            } catch {
                throw IOError("\(path): not a jem-gpu sample_quality.json (\(error.localizedDescription))")
            }
        }
    }

    /// The images behind the numbers (for the grids): row-major, `inputCount` floats each.
    public struct Images {
        public var conditional: [Float]
        public var conditionalClasses: [Int32]
        public var unconditional: [Float]
        public var initial: [Float]
    }

    /// Draws the samples with `model` and measures them with `reference` against `test`.
    /// `progress` is told each phase.
    public static func measure(model: WideResNet, reference: WideResNet, start: ChainStart, test: ImageSet,
                               options: Options, progress: (String) -> Void = { _ in })
        throws -> (result: Result, images: Images)
    {
        let spec = model.spec, k = spec.classCount, size = spec.inputCount
        let perClass = max(1, options.count / k)
        progress("class-conditional SGLD: \(perClass * k) chains x \(options.steps) steps")
        let conditional = try ModelSampling.conditional(net: model, buffer: nil, start: start, perClass: perClass,
                                                        steps: options.steps, stepSize: options.stepSize,
                                                        noiseStd: options.noiseStd, seed: options.seed)
        let classes = (0..<(perClass * k)).map { Int32($0 / perClass) }
        progress("unconditional SGLD: \(options.count) chains x \(options.steps) steps")
        let unconditional = try ModelSampling.unconditional(net: model, count: options.count, start: start,
                                                            steps: options.steps, stepSize: options.stepSize,
                                                            noiseStd: options.noiseStd, seed: options.seed)
        // Where the class-conditional chains started: the same draws, before any step.
        let initialDraws = ModelSampling.freshStarts(classes: classes.map(Int.init), size: size, start: start,
                                                     seed: options.seed)

        progress("reference features of \(test.count) test images")
        var testPixels = [Float](repeating: 0, count: test.count * size)
        testPixels.withUnsafeMutableBufferPointer { test.images(Array(0..<test.count), into: $0.baseAddress!) }
        let d = reference.spec.featureCount
        let testOut = try reference.penultimateFeatures(testPixels, count: test.count)
        progress("reference features of the samples")
        let condOut = try reference.penultimateFeatures(conditional, count: classes.count)
        let uncondOut = try reference.penultimateFeatures(unconditional, count: options.count)
        let initOut = try reference.penultimateFeatures(initialDraws, count: classes.count)

        progress("Fréchet distances and KID")
        let testStats = FeatureStatistics(features: testOut.features, count: test.count, dimension: d)
        func measured(_ features: [Float], count: Int, classes: [Int32]?, logits: [Float]) -> SetResult {
            let fd = FrechetDistance.distance(FeatureStatistics(features: features, count: count, dimension: d), testStats)
            let kid = KernelInceptionDistance(features, count: count, testOut.features, count: test.count, dimension: d,
                                              subsets: options.kidSubsets, subsetSize: options.kidSubsetSize,
                                              seed: options.seed)
            let accuracy = classes.map { ClassificationMetrics(logits: logits, labels: $0, classCount: k).accuracy }
            return SetResult(count: count, frechetDistance: fd, kid: kid, conditionalAccuracy: accuracy)
        }
        var halves: SetResult? = nil
        if test.count >= 4 {
            let half = test.count / 2
            let first = Array(testOut.features[..<(half * d)]), second = Array(testOut.features[(half * d)..<(2 * half * d)])
            halves = SetResult(
                count: half,
                frechetDistance: FrechetDistance.distance(first, count: half, second, count: half, dimension: d),
                kid: KernelInceptionDistance(first, count: half, second, count: half, dimension: d,
                                             subsets: options.kidSubsets, subsetSize: options.kidSubsetSize,
                                             seed: options.seed),
                conditionalAccuracy: nil)
        }
        let referenceAccuracy = test.labels.map {
            ClassificationMetrics(logits: testOut.logits, labels: $0, classCount: reference.spec.classCount).accuracy
        }
        let result = Result(
            model: "", reference: "", data: "", testImages: test.count, referenceTestAccuracy: referenceAccuracy,
            featureDimension: d, initialization: start.name, steps: options.steps,
            stepSize: options.stepSize, noiseStd: options.noiseStd, seed: options.seed,
            conditional: measured(condOut.features, count: classes.count, classes: classes, logits: condOut.logits),
            unconditional: measured(uncondOut.features, count: options.count, classes: nil, logits: uncondOut.logits),
            initial: measured(initOut.features, count: classes.count, classes: start.gaussians == nil ? nil : classes,
                              logits: initOut.logits),
            testHalves: halves)
        return (result, Images(conditional: conditional, conditionalClasses: classes, unconditional: unconditional,
                               initial: initialDraws))
    }
}
