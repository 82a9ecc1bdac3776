import Foundation
import JEMSupport

/// The "loss" op group: LogSumExp and softmax cross-entropy (Kernels/loss.cl).
extension ParitySuite {
    static func loss(_ h: ParityHarness) throws {
        // Errors are measured per row (each LSE value against itself, each gradient row against its
        // largest entry), so a small row beside rows of +-1000 is held to the same tolerance.
        // Random rows, then special rows: +-1000, all -inf, some -inf, a +inf entry.
        let cols = 10
        var special: [Float] = []
        special += (0..<cols).map { $0 % 3 == 0 ? 1000 : -1000 }
        special += [Float](repeating: -1000, count: cols)
        special += [Float](repeating: 1000, count: cols)
        special += [Float](repeating: -.infinity, count: cols)
        special += (0..<cols).map { $0 % 2 == 0 ? -.infinity : Float($0) }
        special += (0..<cols).map { $0 == 4 ? .infinity : 0 }
        let specialRows = special.count / cols
        let cases: [(rows: Int, cols: Int, values: [Float], label: String)] = [
            (9, cols, h.random(9 * cols, -5, 5), "random"),
            (5, 300, h.random(5 * 300, -20, 20), "random"),
            (specialRows, cols, special, "rows of +-1000, all -inf, some -inf, +inf"),
        ]
        for c in cases {
            let x = try h.pair(c.values), lse = try h.pair(h.random(c.rows))
            let shape = "\(c.rows)x\(c.cols) \(c.label)"
            h.both { b, p in b.logSumExpRows(p(x), rows: c.rows, cols: c.cols, out: p(lse)) }
            try h.check("logSumExpRows", lse, rowSize: 1, shape)
            for accumulate in [false, true] {
                let gradOut = try h.pair(h.random(c.rows)), gradX = try h.pair(h.random(c.rows * c.cols))
                h.both { b, p in
                    b.logSumExpBackward(p(x), lse: p(lse), gradOut: p(gradOut), rows: c.rows, cols: c.cols,
                                        gradX: p(gradX), accumulate: accumulate)
                }
                try h.check("logSumExpBackward", gradX, rowSize: c.cols, shape + (accumulate ? ", accumulate" : ""))
            }
        }
        let minusInfinityRow = 3
        let x = try h.pair(special), lse = try h.pair(h.random(specialRows))
        h.both { b, p in b.logSumExpRows(p(x), rows: specialRows, cols: cols, out: p(lse)) }
        let value = try h.candidate.download(lse.candidate, offset: minusInfinityRow, count: 1)[0]
        h.results.append(ParityResult(name: "logSumExpRows all -inf row", maxRelativeError: value == -.infinity ? 0 : .infinity,
                                      tolerance: 0, passed: value == -.infinity,
                                      detail: "candidate gives \(value), must be -inf"))

        // Cross-entropy: random logits, and extreme (finite) ones.
        var extreme: [Float] = []
        for r in 0..<6 { extreme += (0..<cols).map { ($0 + r) % 4 == 0 ? 1000 : ($0 % 2 == 0 ? -1000 : 0.5) } }
        let ceCases: [(rows: Int, cols: Int, values: [Float], label: String)] = [
            (11, cols, h.random(11 * cols, -6, 6), "random"),
            (4, 257, h.random(4 * 257, -3, 3), "random"),
            (6, cols, extreme, "logits +-1000"),
        ]
        for c in ceCases {
            let logits = try h.pair(c.values)
            let labels = try h.pair((0..<c.rows).map { Int32(($0 * 7 + 3) % c.cols) })
            let losses = try h.pair(h.random(c.rows))
            let shape = "\(c.rows)x\(c.cols) \(c.label)"
            h.both { b, p in b.softmaxCrossEntropyForward(p(logits), labels: p(labels), rows: c.rows, cols: c.cols,
                                                          losses: p(losses)) }
            try h.check("softmaxCrossEntropyForward", losses, shape)
            let finite = try h.candidate.download(losses.candidate).allSatisfy(\.isFinite)
            h.results.append(ParityResult(name: "softmaxCrossEntropyForward finite", maxRelativeError: finite ? 0 : .infinity,
                                          tolerance: 0, passed: finite, detail: shape))
            for accumulate in [false, true] {
                let grad = try h.pair(h.random(c.rows * c.cols))
                h.both { b, p in
                    b.softmaxCrossEntropyBackward(p(logits), labels: p(labels), rows: c.rows, cols: c.cols,
                                                  scale: 1 / Float(c.rows), gradLogits: p(grad), accumulate: accumulate)
                }
                try h.check("softmaxCrossEntropyBackward", grad, rowSize: c.cols, shape + (accumulate ? ", accumulate" : ""))
            }
        }
    }
}
