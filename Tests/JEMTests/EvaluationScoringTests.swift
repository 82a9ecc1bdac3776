import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The per-example scores `eval` and `score` compute on the backend: the input-gradient norm
/// against finite differences, LSE and max-softmax against the host, batch-size and backend
/// independence, test noise addressed by image index, and any class count and image shape.
final class EvaluationScoringTests: XCTestCase {
    let cpu = CPUBackend()

    func makeNet(_ spec: WideResNetSpec, maxBatch: Int, seed: UInt64 = 5, on backend: (any Backend)? = nil) throws
        -> WideResNet
    {
        let net = try WideResNet(spec: spec, maxBatch: maxBatch, backend: backend ?? cpu)
        net.initialize(seed: seed)
        return net
    }

    func randomSet(_ spec: WideResNetSpec, count: Int, stream: UInt64, labelled: Bool = true) -> ImageSet {
        ImageSet(channels: spec.inputChannels, height: spec.imageHeight, width: spec.imageWidth, count: count,
                 pixels: .float32(randomArray(count * spec.inputCount, stream: stream)),
                 labels: labelled ? (0..<count).map { Int32(($0 * 7) % spec.classCount) } : nil)
    }

    /// gradnorm = ‖∂LSE/∂x‖₂ per example, against the norm of the gradient measured by central
    /// differences pixel by pixel. Swish keeps LSE smooth, so no kink sits inside ±eps.
    func testGradientNormMatchesFiniteDifferences() throws {
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 8, imageWidth: 8, classCount: 3,
                                  activation: .swish)
        let batch = 3, size = spec.inputCount
        let net = try makeNet(spec, maxBatch: batch)
        let set = randomSet(spec, count: batch, stream: 21)
        let scores = try Scorer(net: net).score(set)

        let x0 = (0..<batch).flatMap { set.image($0) }
        let input = try cpu.makeBuffer(count: x0.count), lse = try cpu.makeBuffer(count: batch)
        func lseOf(_ x: [Float]) throws -> [Float] {
            try cpu.upload(x, to: input, offset: 0)
            cpu.logSumExpRows(net.forward(input, batch: batch), rows: batch, cols: spec.classCount, out: lse)
            return try cpu.download(lse)
        }
        XCTAssertLessThan(maxRelativeError(scores.lse, try lseOf(x0)), 1e-6)
        // Each image's LSE depends on its own pixels only, so one pixel index is moved in every
        // image at once.
        let eps: Float = 1e-2
        var squared = [Double](repeating: 0, count: batch)
        for j in 0..<size {
            var plus = x0, minus = x0
            for r in 0..<batch { plus[r * size + j] += eps; minus[r * size + j] -= eps }
            let up = try lseOf(plus), down = try lseOf(minus)
            for r in 0..<batch {
                let derivative = (Double(up[r]) - Double(down[r])) / (2 * Double(eps))
                squared[r] += derivative * derivative
            }
        }
        for r in 0..<batch {
            let numeric = squared[r].squareRoot(), exact = Double(scores.gradientNorm[r])
            XCTAssertGreaterThan(exact, 1e-4, "a vanishing gradient would make the check meaningless")
            XCTAssertEqual(exact, numeric, accuracy: 3e-3 * numeric, "example \(r)")
        }
    }

    /// LSE and max softmax agree with the host computation from the logits, and scoring in
    /// batches of 4 (with a partial last batch) gives what one batch of 16 gives.
    func testScoresMatchTheHostAndDoNotDependOnTheBatchSize() throws {
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 12, imageWidth: 12, classCount: 5)
        let set = randomSet(spec, count: 10, stream: 22)
        let big = try Scorer(net: try makeNet(spec, maxBatch: 16)).score(set)
        let small = try Scorer(net: try makeNet(spec, maxBatch: 4)).score(set)
        XCTAssertEqual(big.labels, set.labels)
        XCTAssertLessThan(maxRelativeError(small.logits, big.logits), 1e-5)
        XCTAssertLessThan(maxRelativeError(small.lse, big.lse), 1e-5)
        XCTAssertLessThan(maxRelativeError(small.gradientNorm, big.gradientNorm), 1e-4)
        let k = spec.classCount
        for r in 0..<set.count {
            let row = big.logits[(r * k)..<((r + 1) * k)]
            let hostLSE = logSumExp(row)
            XCTAssertEqual(Double(big.lse[r]), hostLSE, accuracy: 1e-5 * max(1, abs(hostLSE)))
            let softmaxMax = row.map { exp(Double($0) - hostLSE) }.max()!
            XCTAssertEqual(Double(big.maxProbability[r]), softmaxMax, accuracy: 1e-5)
        }
    }

    /// Test noise: image i gets N(0,1) elements i*size ... of the stream, whatever the batch
    /// size, so scoring a noised set equals scoring the set noised by hand; 0 noise changes nothing.
    func testTestNoiseIsAddressedByImageIndex() throws {
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 3, imageHeight: 8, imageWidth: 8, classCount: 4)
        let set = randomSet(spec, count: 7, stream: 23)
        let noise = TestNoise(std: 0.05, seed: 9, stream: RandomStream.testNoise(set: 0))
        let a = try Scorer(net: try makeNet(spec, maxBatch: 3)).score(set, noise: noise)
        let b = try Scorer(net: try makeNet(spec, maxBatch: 7)).score(set, noise: noise)
        XCTAssertLessThan(maxRelativeError(a.logits, b.logits), 1e-5)
        var noised = (0..<set.count).flatMap { set.image($0) }
        for (i, _) in noised.enumerated() {
            noised[i] += 0.05 * Philox.normal(seed: 9, stream: RandomStream.testNoise(set: 0), element: i)
        }
        let byHand = ImageSet(channels: 3, height: 8, width: 8, count: 7, pixels: .float32(noised), labels: set.labels)
        let c = try Scorer(net: try makeNet(spec, maxBatch: 7)).score(byHand)
        XCTAssertLessThan(maxRelativeError(b.logits, c.logits), 1e-6)
        let clean = try Scorer(net: try makeNet(spec, maxBatch: 7)).score(set)
        XCTAssertGreaterThan(maxAbsDifference(clean.logits, b.logits), 1e-4, "the noise did nothing")
        XCTAssertNotEqual(RandomStream.testNoise(set: 0), RandomStream.testNoise(set: 1))
    }

    /// With the training seed and the same test noise, eval's accuracy and NLL are the ones the
    /// trainer logs for its test set (same noise stream, same images).
    func testEvaluatorReproducesTheTrainersNoisyTestAccuracy() throws {
        var config = TrainingConfig()
        config.batchSize = 8
        config.seed = 17
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 10, imageWidth: 9, classCount: 3)
        let trainer = try JEMTrainer(config: config, spec: spec, backend: cpu)
        let set = randomSet(spec, count: 21, stream: 24)
        let (accuracy, nll) = try trainer.classify(set, noiseStd: 0.2)

        let net = try WideResNet(spec: spec, maxBatch: 5, backend: cpu)
        for (p, q) in zip(trainer.net.parameters, net.parameters) { try cpu.upload(try cpu.download(p.value), to: q.value, offset: 0) }
        let settings = EvaluationSettings(checkpoint: "-", data: "-", split: "test", splitDetail: "-", testNoise: 0.2,
                                          seed: config.seed)
        let output = try Evaluator(net: net).evaluate(EvaluationSet(name: "in-distribution", source: "-", images: set),
                                                      ood: [], settings: settings)
        XCTAssertEqual(output.result.accuracy!, accuracy, accuracy: 1e-12)
        XCTAssertEqual(output.result.nll!, nll, accuracy: 1e-5)
        XCTAssertEqual(output.result.settings.batchSize, 5)
        XCTAssertEqual(output.result.settings.backend, "cpu")
        XCTAssertEqual(output.result.settings.classes, 3)
    }

    /// 100 classes on non-square 3×12×10 images (and 10 classes on 1×9×14): the evaluation runs
    /// end to end and its numbers are the metric functions applied to the scores.
    func testHundredAndTenClassesOnNonSquareImages() throws {
        for spec in [WideResNetSpec(depth: 10, widen: 1, inputChannels: 3, imageHeight: 12, imageWidth: 10, classCount: 100),
                     WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 9, imageWidth: 14, classCount: 10)] {
            let set = randomSet(spec, count: 30, stream: 25)
            let ood = SyntheticOOD.uniform.make(from: set, seed: 1)
            let settings = EvaluationSettings(checkpoint: "-", data: "-", split: "test", splitDetail: "-", testNoise: 0, seed: 1)
            let output = try Evaluator(net: try makeNet(spec, maxBatch: 8)).evaluate(
                EvaluationSet(name: "in-distribution", source: "-", images: set),
                ood: [EvaluationSet(name: "synthetic:uniform", source: "-", images: ood)], settings: settings)
            let s = output.inDistribution
            XCTAssertEqual(s.logits.count, 30 * spec.classCount)
            XCTAssertEqual(output.result.accuracy, ClassificationMetrics(logits: s.logits, labels: set.labels!,
                                                                         classCount: spec.classCount).accuracy)
            XCTAssertTrue(s.maxProbability.allSatisfy { $0 >= 1 / Float(spec.classCount) - 1e-6 && $0 <= 1 })
            XCTAssertTrue(s.gradientNorm.allSatisfy { $0.isFinite && $0 > 0 })
            let r = output.result.ood["synthetic:uniform"]
            XCTAssertEqual(r?.px, ROC.auroc(positive: s.lse, negative: output.ood[0].scores.lse))
            XCTAssertEqual(r?.count, 30)
            XCTAssertEqual(output.result.settings.inputShape, [spec.inputChannels, spec.imageHeight, spec.imageWidth])
        }
    }

    /// The same evaluation on the CPU and OpenCL backends (PoCL here): score arrays within float
    /// tolerance, and the metrics computed from them agree.
    func testCPUAndOpenCLAgree() throws {
        let opencl = try OpenCLBackend(selection: .first)
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 12, imageWidth: 12, classCount: 4)
        let set = randomSet(spec, count: 40, stream: 26)
        let ood = [EvaluationSet(name: "synthetic:interp", source: "-", images: SyntheticOOD.interp.make(from: set, seed: 2))]
        let settings = EvaluationSettings(checkpoint: "-", data: "-", split: "test", splitDetail: "-", testNoise: 0.03, seed: 3)
        let inDistribution = EvaluationSet(name: "in-distribution", source: "-", images: set)
        let a = try Evaluator(net: try makeNet(spec, maxBatch: 16)).evaluate(inDistribution, ood: ood, settings: settings)
        let b = try Evaluator(net: try makeNet(spec, maxBatch: 16, on: opencl)).evaluate(inDistribution, ood: ood,
                                                                                           settings: settings)
        for (x, y) in [(a.inDistribution, b.inDistribution), (a.ood[0].scores, b.ood[0].scores)] {
            XCTAssertLessThan(maxRelativeError(y.logits, x.logits), 1e-4)
            XCTAssertLessThan(maxRelativeError(y.lse, x.lse), 1e-4)
            XCTAssertLessThan(maxRelativeError(y.maxProbability, x.maxProbability), 1e-4)
            XCTAssertLessThan(maxRelativeError(y.gradientNorm, x.gradientNorm), 1e-3)
        }
        XCTAssertEqual(a.result.accuracy, b.result.accuracy)
        XCTAssertEqual(a.result.nll!, b.result.nll!, accuracy: 1e-4)
        XCTAssertEqual(a.result.ece!, b.result.ece!, accuracy: 1e-4)
        for score in OODScore.allCases {
            XCTAssertEqual(a.result.ood["synthetic:interp"]!.auroc(score)!, b.result.ood["synthetic:interp"]!.auroc(score)!,
                           accuracy: 2e-3, score.rawValue)
        }
        XCTAssertEqual(b.result.settings.backend, "opencl")
    }
}
