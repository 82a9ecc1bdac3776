import Foundation
import JEMSupport

/// The "reductions" op group: sums to one scalar (Kernels/reductions.cl).
extension ParitySuite {
    static func reductions(_ h: ParityHarness) throws {
        for count in [1, 1031, 300_001] {
            let x = try h.pair(h.random(count, -0.5, 1))
            let sums = (try h.reference.sum(x.reference, count: count), try h.candidate.sum(x.candidate, count: count))
            h.compare("sum", candidate: [sums.1], reference: [sums.0], mode: .relative(tolerance), "\(count) elements")
            let squares = (try h.reference.sumOfSquares(x.reference, count: count),
                           try h.candidate.sumOfSquares(x.candidate, count: count))
            h.compare("sumOfSquares", candidate: [squares.1], reference: [squares.0], mode: .relative(tolerance),
                      "\(count) elements")
        }
    }
}
