import XCTest
@testable import JEM

final class PhiloxTests: XCTestCase {
    /// Random123's kat_vectors for philox4x32 with 10 rounds (counter, key -> output).
    func testKnownAnswerVectors() {
        let cases: [((UInt32, UInt32, UInt32, UInt32), (UInt32, UInt32), [UInt32])] = [
            ((0, 0, 0, 0), (0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            ((.max, .max, .max, .max), (.max, .max), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
            ((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
             [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
        ]
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
