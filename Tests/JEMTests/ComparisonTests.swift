import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The one comparison behind the parity suite, the selftest and the tests must not be fooled by a
/// NaN, a length mismatch or a small row beside large ones; and a NaN injected into any op's
/// output must fail the parity suite and the selftest.
final class ComparisonTests: XCTestCase {
    func testNaNOrInfinityWhereReferenceIsFiniteIsAnInfiniteError() {
        for bad in [Float.nan, .infinity, -.infinity] {
            let c = Comparison(candidate: [1, bad, 3], reference: [1, 2, 3])
            XCTAssertEqual(c.maxAbsoluteError, .infinity, "\(bad)")
            XCTAssertEqual(c.maxRelativeError, .infinity, "\(bad)")
            XCTAssertFalse(c.isBitExact)
            XCTAssertEqual(maxAbsDifference([1, bad, 3], [1, 2, 3]), .infinity)
            XCTAssertFalse(maxRelativeError([1, bad, 3], [1, 2, 3]) <= 1e-4)
        }
        // NaN where the reference is NaN too (e.g. LogSumExp of a NaN row) is agreement.
        XCTAssertTrue(Comparison(candidate: [.nan, 1], reference: [.nan, 1]).isBitExact)
        XCTAssertEqual(Comparison(candidate: [.infinity, 1], reference: [.infinity, 1]).maxRelativeError, 0)
    }

    func testLengthMismatchNeverPasses() {
        let c = Comparison(candidate: [1, 2], reference: [1, 2, 3])
        XCTAssertTrue(c.lengthMismatch)
        XCTAssertFalse(c.isBitExact)
        XCTAssertEqual(c.maxRelativeError, .infinity)
        XCTAssertEqual(Comparison(candidate: [1, 2, 3], reference: [1, 2]).maxAbsoluteError, .infinity)
    }

    func testPerRowErrorCatchesASmallRowBesideLargeOnes() {
        // Row 0 holds +-1000, row 1 is off by 1%: against the whole buffer's scale that is 1e-5.
        let want: [Float] = [1000, -1000, 1, 2], got: [Float] = [1000, -1000, 1.01, 2]
        XCTAssertLessThan(Comparison(candidate: got, reference: want).maxRelativeError, 1e-4)
        XCTAssertGreaterThan(Comparison(candidate: got, reference: want, rowSize: 2).maxRelativeError, 4e-3)
    }

    /// Every parity group's first check fails when a NaN is put into its candidate output.
    func testInjectedNaNFailsEveryParityGroup() throws {
        for group in ParitySuite.Group.allCases where group != .random {
            let clean = try ParitySuite.run(reference: CPUBackend(), candidate: CPUBackend(), seed: 3, groups: [group],
                                            injectNaNInto: nil)
            XCTAssertFalse(clean.isEmpty, "\(group)")
            XCTAssertTrue(clean.allSatisfy(\.passed), "\(group): the CPU backend must agree with itself")
            let target = clean[0].name
            let poisoned = try ParitySuite.run(reference: CPUBackend(), candidate: CPUBackend(), seed: 3,
                                               groups: [group], injectNaNInto: target)
            XCTAssertTrue(poisoned.contains { $0.name == target && !$0.passed },
                          "\(group): a NaN in '\(target)' must fail the suite")
        }
    }

    func testInjectedNaNFailsTheSelftest() throws {
        let clean = try runJemGPU(["selftest", "--backend", "cpu"])
        XCTAssertEqual(clean.status, 0, clean.stdout + clean.stderr)
        let poisoned = try runJemGPU(["selftest", "--backend", "cpu"],
                                     environment: ["JEM_INJECT_NAN": "conv forward vs naive loops"])
        XCTAssertEqual(poisoned.status, 1, poisoned.stdout + poisoned.stderr)
        XCTAssertTrue(poisoned.stdout.contains("FAIL"), poisoned.stdout)
    }
}
