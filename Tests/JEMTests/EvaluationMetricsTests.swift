import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The metric arithmetic of `jem-gpu eval` against hand-computed cases and brute force:
/// ECE and its bins, AUROC (Mann-Whitney U with ties 1/2), the ROC curve, accuracy and NLL.
final class EvaluationMetricsTests: XCTestCase {
    // MARK: ECE

    /// One example per bin, each bin's gap computed by hand; 0.05, 0.3, 0.35, 0.9, 0.95 and 1.0
    /// sit exactly on bin upper edges and belong to the bin below them ((lower, upper]).
    func testECEOnBinEdgesByHand() {
        let confidences: [Float] = [0.05, 0.3, 0.35, 0.9, 0.95, 1.0]
        let correct = [true, false, true, true, true, false]
        let d = ReliabilityDiagram(confidences: confidences, correct: correct)
        XCTAssertEqual(d.bins.count, 20)
        let occupied = d.bins.enumerated().filter { $0.element.count > 0 }.map(\.offset)
        XCTAssertEqual(occupied, [0, 5, 6, 17, 18, 19])
        // |1-.05| + |0-.3| + |1-.35| + |1-.9| + |1-.95| + |0-1| = 3.05, over 6 examples.
        XCTAssertEqual(d.ece, 3.05 / 6, accuracy: 1e-6)
        XCTAssertEqual(d.maximumGap, 1, accuracy: 1e-6)
        XCTAssertEqual(d.bins[0].lower, 0)
        XCTAssertEqual(d.bins[0].upper, 0.05)
        XCTAssertEqual(d.bins[0].accuracy, 1)
        XCTAssertEqual(d.bins[0].confidence!, 0.05, accuracy: 1e-7)
        XCTAssertNil(d.bins[1].accuracy)
        XCTAssertNil(d.bins[1].confidence)
        // Just above an edge moves up one bin.
        let above = ReliabilityDiagram(confidences: [Float(0.05).nextUp, Float(0.3).nextUp], correct: [true, true])
        XCTAssertEqual(above.bins[1].count, 1)
        XCTAssertEqual(above.bins[6].count, 1)
    }

    func testECEOfSeveralExamplesInOneBin() {
        // (0.60, 0.65]: confidence mean 0.623333, accuracy 2/3.
        let d = ReliabilityDiagram(confidences: [0.62, 0.64, 0.61], correct: [true, false, true])
        XCTAssertEqual(d.bins[12].count, 3)
        XCTAssertEqual(d.ece, abs(2.0 / 3 - (0.62 + 0.64 + 0.61) / 3), accuracy: 1e-6)
    }

    func testECEAllCorrectAndAllWrong() {
        let sure = ReliabilityDiagram(confidences: [1, 1, 1, 1], correct: [true, true, true, true])
        XCTAssertEqual(sure.ece, 0, accuracy: 1e-12)
        XCTAssertEqual(sure.bins[19].count, 4)
        let allCorrect = ReliabilityDiagram(confidences: [0.8, 0.8], correct: [true, true])
        XCTAssertEqual(allCorrect.ece, 0.2, accuracy: 1e-6)
        let allWrong = ReliabilityDiagram(confidences: [0.3, 0.7], correct: [false, false])
        XCTAssertEqual(allWrong.ece, 0.5, accuracy: 1e-6)
        XCTAssertEqual(ReliabilityDiagram(confidences: [], correct: []).ece, 0)
    }

    /// Random confidences: the bins partition the examples, and ECE equals a direct double loop
    /// over the definition.
    func testECEMatchesTheDefinitionOnRandomData() {
        let n = 997
        let confidences = randomArray(n, stream: 3, low: 0.1, high: 1)
        let correct = randomArray(n, stream: 4, low: 0, high: 1).enumerated().map { $0.element < confidences[$0.offset] }
        let d = ReliabilityDiagram(confidences: confidences, correct: correct)
        XCTAssertEqual(d.bins.reduce(0) { $0 + $1.count }, n)
        var ece = 0.0
        for b in 0..<20 {
            let lower = Float(b) / 20, upper = Float(b + 1) / 20
            let members = (0..<n).filter { confidences[$0] > lower && confidences[$0] <= upper }
            guard !members.isEmpty else { continue }
            let accuracy = Double(members.filter { correct[$0] }.count) / Double(members.count)
            let confidence = members.reduce(0.0) { $0 + Double(confidences[$1]) } / Double(members.count)
            ece += Double(members.count) / Double(n) * abs(accuracy - confidence)
            XCTAssertEqual(d.bins[b].count, members.count, "bin \(b)")
        }
        XCTAssertEqual(d.ece, ece, accuracy: 1e-12)
    }

    // MARK: AUROC and the ROC curve

    func testAUROCByHand() {
        // Pairs (pos, neg): (3,1) 1, (3,2) 1, (2,1) 1, (2,2) 1/2.
        XCTAssertEqual(ROC.auroc(positive: [3, 2], negative: [1, 2]), 0.875)
        XCTAssertEqual(ROC.auroc(positive: [1, 1], negative: [1, 1, 1]), 0.5)
        XCTAssertEqual(ROC.auroc(positive: [5, 6], negative: [1]), 1)
        XCTAssertEqual(ROC.auroc(positive: [1], negative: [5, 6]), 0)
        XCTAssertEqual(ROC.auroc(positive: [-.infinity, 4], negative: [0, .infinity]), 0.25)
        // One side empty (every example of one label), or an unordered NaN: no AUROC.
        XCTAssertNil(ROC.auroc(positive: [], negative: [1, 2]))
        XCTAssertNil(ROC.auroc(positive: [1, 2], negative: []))
        XCTAssertNil(ROC.auroc(positive: [1, .nan], negative: [0]))
    }

    /// AUROC == U / (n1 n0) counted over every pair, on random scores with many ties.
    func testAUROCEqualsBruteForceMannWhitney() {
        for (trial, (n1, n0)) in [(1, 1), (5, 3), (40, 77), (200, 150)].enumerated() {
            for levels in [3, 20, 0] {   // 0: continuous scores (no ties)
                func scores(_ n: Int, _ stream: UInt64, shift: Float) -> [Float] {
                    randomArray(n, stream: stream).map { v in
                        let x = v + shift
                        return levels > 0 ? (x * Float(levels)).rounded() / Float(levels) : x
                    }
                }
                let pos = scores(n1, UInt64(100 + trial), shift: 0.2), neg = scores(n0, UInt64(200 + trial), shift: 0)
                var u = 0.0
                for p in pos { for q in neg { u += p > q ? 1 : (p == q ? 0.5 : 0) } }
                let expected = u / Double(n1 * n0)
                let auroc = ROC.auroc(positive: pos, negative: neg)
                XCTAssertNotNil(auroc)
                XCTAssertEqual(auroc!, expected, accuracy: 1e-12, "n1 \(n1) n0 \(n0) levels \(levels)")
                // The trapezoid under the curve (diagonal steps on ties) is the same number.
                let curve = ROC.curve(positive: pos, negative: neg)
                XCTAssertEqual(ROC.area(curve), expected, accuracy: 1e-12)
                XCTAssertEqual(curve.first?.falsePositiveRate, 0)
                XCTAssertEqual(curve.first?.truePositiveRate, 0)
                XCTAssertEqual(curve.last?.falsePositiveRate, 1)
                XCTAssertEqual(curve.last?.truePositiveRate, 1)
            }
        }
    }

    // MARK: Accuracy, NLL

    func testAccuracyAndNLLByHand() {
        // Row 0: logits (0, ln 3): p = (1/4, 3/4), label 1: correct, CE = ln(4/3).
        // Row 1: a tie (2, 2): argmax is the first, label 1: wrong, CE = ln 2.
        let logits: [Float] = [0, Float(log(3.0)), 2, 2]
        let m = ClassificationMetrics(logits: logits, labels: [1, 1], classCount: 2)
        XCTAssertEqual(m.accuracy, 0.5)
        XCTAssertEqual(m.nll, (log(4.0 / 3) + log(2.0)) / 2, accuracy: 1e-6)
        // One class: always right, no loss.
        let single = ClassificationMetrics(logits: [3, -1, 7], labels: [0, 0, 0], classCount: 1)
        XCTAssertEqual(single.accuracy, 1)
        XCTAssertEqual(single.nll, 0, accuracy: 1e-12)
        // Every example with the same label.
        let same = ClassificationMetrics(logits: [5, 0, 0, 0, 5, 0, 0, 0, 5], labels: [2, 2, 2], classCount: 3)
        XCTAssertEqual(same.accuracy, 1.0 / 3, accuracy: 1e-12)
    }

    /// The result type assembled from scores: every number traceable to the functions above,
    /// and it survives a JSON round trip.
    func testEvaluationResultFromScoresAndJSONRoundTrip() throws {
        let k = 3, n = 50
        let logits = randomArray(n * k, stream: 9, low: -3, high: 3)
        let labels = (0..<n).map { Int32($0 % k) }
        let lse = (0..<n).map { r in Float(logSumExp(logits[(r * k)..<((r + 1) * k)])) }
        let maxprob = (0..<n).map { r in exp(logits[(r * k)..<((r + 1) * k)].max()! - lse[r]) }
        let grad = randomArray(n, stream: 10, low: 0, high: 2)
        let scores = ExampleScores(count: n, classCount: k, logits: logits, labels: labels, lse: lse,
                                   maxProbability: maxprob, gradientNorm: grad)
        let oodLogits = randomArray(20 * k, stream: 11, low: -1, high: 1)
        let ood = ExampleScores(count: 20, classCount: k, logits: oodLogits, labels: nil,
                                lse: randomArray(20, stream: 12), maxProbability: randomArray(20, stream: 13, low: 0.3, high: 1),
                                gradientNorm: randomArray(20, stream: 14, low: 0, high: 3))
        let settings = EvaluationSettings(checkpoint: "c", data: "d", split: "test", splitDetail: "x", testNoise: 0.03, seed: 4)
        let set = EvaluationSet(name: "noise", source: "s", images: ImageSet(channels: 1, height: 1, width: 1, count: 0,
                                                                             pixels: .float32([]), labels: nil))
        let result = EvaluationResult(settings: settings, inDistribution: scores, ood: [(set, ood)])
        XCTAssertEqual(result.accuracy, ClassificationMetrics(logits: logits, labels: labels, classCount: k).accuracy)
        XCTAssertEqual(result.ece, ReliabilityDiagram(
            confidences: maxprob, correct: ClassificationMetrics.correctness(logits: logits, labels: labels, classCount: k)).ece)
        XCTAssertEqual(result.ood["noise"]?.px, ROC.auroc(positive: lse, negative: ood.lse))
        XCTAssertEqual(result.ood["noise"]?.pxgrad, ROC.auroc(positive: grad.map { -$0 }, negative: ood.gradientNorm.map { -$0 }))
        XCTAssertEqual(result.scores["px"]?.mean ?? 0, lse.reduce(0.0) { $0 + Double($1) } / Double(n), accuracy: 1e-9)

        let json = try EvaluationResult.encoder.encode(result)
        let object = try JSONSerialization.jsonObject(with: json) as? [String: Any]
        XCTAssertNotNil(object?["ece"] as? Double)
        XCTAssertEqual((object?["settings"] as? [String: Any])?["test_noise"] as? Double ?? -1, 0.03, accuracy: 1e-7)
        XCTAssertNotNil(((object?["ood"] as? [String: Any])?["noise"] as? [String: Any])?["pxgrad"] as? Double)
        XCTAssertEqual(try EvaluationResult.decoder.decode(EvaluationResult.self, from: json), result)
    }

    // MARK: Synthetic OOD sets

    func testSyntheticSetsAreDeterministicAndWhatTheyClaim() {
        let base = BuiltinDataset.make(trainCount: 1, testCount: 12, seed: 2).test!
        let n = base.count, size = base.imageSize
        for kind in SyntheticOOD.allCases {
            let a = kind.make(from: base, seed: 3), b = kind.make(from: base, seed: 3), c = kind.make(from: base, seed: 4)
            XCTAssertEqual(a, b, "\(kind) is not deterministic")
            XCTAssertNotEqual(a, c, "\(kind) ignores the seed")
            XCTAssertEqual(a.count, n)
            XCTAssertEqual(a.shape, base.shape)
            XCTAssertNil(a.labels)
        }
        let uniform = SyntheticOOD.uniform.make(from: base, seed: 3)
        let u = (0..<n).flatMap { uniform.image($0) }
        XCTAssertTrue(u.allSatisfy { $0 >= -1 && $0 < 1 })
        XCTAssertEqual(u.reduce(0, +) / Float(u.count), 0, accuracy: 0.05)

        // interp: every image is the midpoint of two different base images.
        let interp = SyntheticOOD.interp.make(from: base, seed: 3)
        let originals = (0..<n).map { base.image($0) }
        for i in 0..<n {
            let x = interp.image(i)
            let found = (0..<n).contains { a in
                (0..<n).contains { b in a != b && zip(x, zip(originals[a], originals[b])).allSatisfy { abs($0 - 0.5 * ($1.0 + $1.1)) < 1e-6 } }
            }
            XCTAssertTrue(found, "interp image \(i) is not a midpoint of two images")
        }
        // permuted: the same multiset of pixels as the source image, in another order.
        let permuted = SyntheticOOD.permuted.make(from: base, seed: 3)
        for i in 0..<n {
            let x = permuted.image(i)
            XCTAssertEqual(x.sorted(), originals[i].sorted())
            XCTAssertNotEqual(x, originals[i])
            XCTAssertEqual(x.count, size)
        }
    }
}
