import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// Temperature scaling: the fit recovers a known temperature, T = 1 changes nothing, and a bad
/// temperature file is one line naming it.
final class EvaluationTemperatureTests: XCTestCase {
    /// n rows of K logits z ~ N(0, 2²) and labels drawn from softmax(z), with a seeded generator.
    func synthetic(n: Int, k: Int, seed: UInt64) -> (z: [Double], labels: [Int32]) {
        var g = SplitMix64(seed: seed)
        func uniform() -> Double { Double(g.next() >> 11) / Double(1 << 53) }
        var z = [Double](), labels = [Int32]()
        for _ in 0..<n {
            let row = (0..<k).map { _ in 2 * (-2 * Foundation.log(max(uniform(), 1e-300))).squareRoot() * Foundation.cos(2 * .pi * uniform()) }
            let top = row.max()!
            let p = row.map { Foundation.exp($0 - top) }
            var u = uniform() * p.reduce(0, +), y = 0
            while y < k - 1 && u >= p[y] { u -= p[y]; y += 1 }
            z += row
            labels.append(Int32(y))
        }
        return (z, labels)
    }

    func testFitRecoversAKnownTemperature() {
        let k = 10
        let (z, labels) = synthetic(n: 20_000, k: k, seed: 7)
        for t0 in [2.5, 0.5] {
            // softmax(z) is the truth; the model reports z / t0, so dividing by T = 1/t0 restores it.
            let logits = z.map { Float($0 / t0) }
            let fit = TemperatureScaling.fit(logits: logits, labels: labels, classCount: k)
            XCTAssertEqual(fit.temperature, 1 / t0, accuracy: 0.05 / t0, "t0 \(t0)")
            XCTAssertLessThan(fit.nllAfter, fit.nllBefore)
            XCTAssertEqual(fit.nllAfter, TemperatureScaling.nll(logits: logits, labels: labels, classCount: k,
                                                                temperature: fit.temperature), accuracy: 1e-12)
            // The minimum: a little either side is worse.
            for factor in [0.97, 1.03] {
                XCTAssertGreaterThan(TemperatureScaling.nll(logits: logits, labels: labels, classCount: k,
                                                            temperature: fit.temperature * factor), fit.nllAfter)
            }
        }
        // Calibrated logits give T close to 1.
        let fit = TemperatureScaling.fit(logits: z.map { Float($0) }, labels: labels, classCount: k)
        XCTAssertEqual(fit.temperature, 1, accuracy: 0.05)
    }

    func testTemperatureOneLeavesMetricsUnchanged() {
        let k = 5
        let (z, labels) = synthetic(n: 3000, k: k, seed: 11)
        let logits = z.map { Float($0 * 1.7) }
        let raw = ClassificationMetrics(logits: logits, labels: labels, classCount: k)
        let scaled = TemperatureScaling.metrics(logits: logits, labels: labels, classCount: k, temperature: 1)
        XCTAssertEqual(scaled.nll, raw.nll)
        XCTAssertEqual(TemperatureScaling.nll(logits: logits, labels: labels, classCount: k, temperature: 1), raw.nll,
                       accuracy: 1e-9)
        let diagram = ReliabilityDiagram(confidences: TemperatureScaling.maxProbability(logits: logits, classCount: k),
                                         correct: ClassificationMetrics.correctness(logits: logits, labels: labels, classCount: k))
        XCTAssertEqual(scaled.ece, diagram.ece)
        XCTAssertEqual(TemperatureScaling.scaled(logits, temperature: 1), logits)
        // Scaling never changes a prediction, so accuracy is the same at any T.
        let hot = TemperatureScaling.scaled(logits, temperature: 3.3)
        XCTAssertEqual(ClassificationMetrics(logits: hot, labels: labels, classCount: k).accuracy, raw.accuracy)

        // Through an evaluation result: T = 1 gives scaled numbers equal to the raw ones.
        let lse = [Float](repeating: 0, count: labels.count)
        let scores = ExampleScores(count: labels.count, classCount: k, logits: logits, labels: labels, lse: lse,
                                   maxProbability: TemperatureScaling.maxProbability(logits: logits, classCount: k),
                                   gradientNorm: lse)
        var result = EvaluationResult(settings: EvaluationSettings(checkpoint: "c", data: "d", split: "test",
                                                                   splitDetail: "", testNoise: 0, seed: 1),
                                      inDistribution: scores, ood: [])
        let file = TemperatureFile(fit: .init(temperature: 1, nllBefore: 0, nllAfter: 0), eceBefore: 0, eceAfter: 0,
                                   count: 1, split: "valid", splitDetail: "", checkpoint: "c", data: "d", testNoise: 0)
        result.addTemperatureScaling(file, path: "c.temperature.json", scores: scores)
        XCTAssertEqual(result.temperature, 1)
        XCTAssertEqual(result.nllScaled, result.nll)
        XCTAssertEqual(result.eceScaled, result.ece)
        let json = try! JSONSerialization.jsonObject(with: EvaluationResult.encoder.encode(result)) as! [String: Any]
        for key in ["nll", "ece", "temperature", "nll_scaled", "ece_scaled", "temperature_file"] {
            XCTAssertNotNil(json[key], key)
        }
    }

    func testTemperatureFileRoundTripAndBadFiles() throws {
        let dir = NSTemporaryDirectory() + "jem-temperature-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let checkpoint = dir + "/best.safetensors"
        XCTAssertEqual(TemperatureFile.path(forCheckpoint: checkpoint), dir + "/best.temperature.json")
        FileManager.default.createFile(atPath: checkpoint, contents: Data([1]))
        guard case .none = try TemperatureFile.lookup(forCheckpoint: checkpoint) else { return XCTFail("expected none") }

        let file = TemperatureFile(fit: .init(temperature: 1.7, nllBefore: 0.5, nllAfter: 0.4), eceBefore: 0.05,
                                   eceAfter: 0.01, count: 30, split: "valid", splitDetail: "x", checkpoint: checkpoint,
                                   data: "builtin", testNoise: 0)
        let path = TemperatureFile.path(forCheckpoint: checkpoint)
        try file.write(to: path)
        XCTAssertEqual(try TemperatureFile.read(path), file)
        guard case .found(_, let found) = try TemperatureFile.lookup(forCheckpoint: checkpoint) else {
            return XCTFail("expected found")
        }
        XCTAssertEqual(found.temperature, 1.7)

        for bad in ["not json", "{\"temperature\": 2}", "{\"temperature\": -1, \"nll_before\": 1, \"nll_after\": 1, "
                    + "\"ece_before\": 0, \"ece_after\": 0, \"count\": 1, \"split\": \"valid\", \"split_detail\": \"\", "
                    + "\"checkpoint\": \"c\", \"data\": \"d\", \"test_noise\": 0, \"version\": \"v\"}"] {
            try bad.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try TemperatureFile.read(path)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(path + ":"), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
            XCTAssertThrowsError(try TemperatureFile.lookup(forCheckpoint: checkpoint))
        }
    }
}
