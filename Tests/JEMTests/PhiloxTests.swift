import XCTest
@testable import JEM
@testable import JEMBackend

final class PhiloxTests: XCTestCase {
    /// Random123's kat_vectors for philox4x32 with 10 rounds (counter, key -> output).
    func testKnownAnswerVectors() {
        let cases = ReferenceChecks.philoxKnownAnswers.map { ($0.counter, $0.key, $0.output) }
        XCTAssertEqual(cases.count, 3)
        for (counter, key, expected) in cases {
            let r = Philox.block(counter: counter, key: key)
            XCTAssertEqual([r.0, r.1, r.2, r.3], expected)
        }
    }

    func testAddressingIsOrderFreeAndStreamsDiffer() {
        var filled = [Float](repeating: 0, count: 10)
        filled.withUnsafeMutableBufferPointer { Philox.fillNormal($0.baseAddress!, count: 10, start: 3, seed: 5, stream: 2) }
        for i in 0..<10 { XCTAssertEqual(filled[i], Philox.normal(seed: 5, stream: 2, element: 3 + i)) }
        XCTAssertNotEqual(Philox.normal(seed: 5, stream: 2, element: 0), Philox.normal(seed: 5, stream: 3, element: 0))
        XCTAssertNotEqual(Philox.normal(seed: 5, stream: 2, element: 0), Philox.normal(seed: 6, stream: 2, element: 0))
    }

    func testDistributions() {
        let n = 200_000
        var sum = 0.0, sumSquares = 0.0, uniformSum = 0.0
        var uniformMin: Float = 1, uniformMax: Float = 0
        for i in 0..<n {
            let z = Double(Philox.normal(seed: 11, stream: 0, element: i))
            sum += z
            sumSquares += z * z
            let u = Philox.uniform(seed: 11, stream: 1, element: i)
            uniformSum += Double(u)
            uniformMin = min(uniformMin, u)
            uniformMax = max(uniformMax, u)
        }
        // Standard errors: mean 1/sqrt(n) = 0.0022, variance sqrt(2/n) = 0.0032; allow 5 sigma.
        XCTAssertEqual(sum / Double(n), 0, accuracy: 0.012)
        XCTAssertEqual(sumSquares / Double(n), 1, accuracy: 0.016)
        XCTAssertEqual(uniformSum / Double(n), 0.5, accuracy: 0.004)
        XCTAssertGreaterThanOrEqual(uniformMin, 0)
        XCTAssertLessThan(uniformMax, 1)
    }
}
