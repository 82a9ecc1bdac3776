import Foundation
import JEMSupport

/// The "gemm" op group.
extension ParitySuite {
    static func gemm(_ h: ParityHarness) throws {
        struct Case { var tA: Bool, tB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float, pad: Int, offset: Int }
        var cases: [Case] = []
        for (tA, tB) in [(false, false), (false, true), (true, false), (true, true)] {
            cases.append(Case(tA: tA, tB: tB, m: 7, n: 5, k: 9, alpha: 0.7, beta: -0.3, pad: 2, offset: 3))
            cases.append(Case(tA: tA, tB: tB, m: 13, n: 11, k: 6, alpha: 1, beta: 0, pad: 0, offset: 0))
        }
        for c in cases {
            let aRows = c.tA ? c.k : c.m, aCols = c.tA ? c.m : c.k
            let bRows = c.tB ? c.n : c.k, bCols = c.tB ? c.k : c.n
            let lda = aCols + c.pad, ldb = bCols + c.pad + 1, ldc = c.n + c.pad
            let aOff = c.offset, bOff = 2 * c.offset, cOff = c.offset + 1
            let a = try h.pair(h.random(aOff + aRows * lda)), b = try h.pair(h.random(bOff + bRows * ldb))
            // beta = 0 must not read C: start from NaN there.
            let out = try h.pair(c.beta == 0 ? [Float](repeating: .nan, count: cOff + c.m * ldc)
                                             : h.random(cOff + c.m * ldc))
            h.both { be, p in
                be.gemm(transposeA: c.tA, transposeB: c.tB, m: c.m, n: c.n, k: c.k, alpha: c.alpha, a: p(a),
                        aOffset: aOff, lda: lda, b: p(b), bOffset: bOff, ldb: ldb, beta: c.beta, c: p(out),
                        cOffset: cOff, ldc: ldc, batch: .single)
            }
            try h.check("gemm \(c.tA ? "T" : "N")\(c.tB ? "T" : "N")", out,
                        (c.beta == 0 ? "C was NaN, " : "") + "m\(c.m) n\(c.n) k\(c.k) alpha \(c.alpha) beta \(c.beta) lda \(lda) ldb \(ldb) ldc \(ldc) "
                        + "offsets \(aOff)/\(bOff)/\(cOff)")
        }

        // Strided batches: separate matrices with gaps; and one A shared by every product (stride 0).
        for (tB, shareA) in [(false, false), (true, true)] {
            let m = 6, n = 7, k = 5, count = 3
            let strideA = shareA ? 0 : m * k + 3, strideB = k * n + 2, strideC = m * n + 4
            let a = try h.pair(h.random(2 + m * k + (count - 1) * strideA))
            let b = try h.pair(h.random(1 + k * n + (count - 1) * strideB))
            let out = try h.pair(h.random(3 + m * n + (count - 1) * strideC))
            let batch = GemmBatch(count: count, strideA: strideA, strideB: strideB, strideC: strideC)
            h.both { be, p in
                be.gemm(transposeA: false, transposeB: tB, m: m, n: n, k: k, alpha: 1.3, a: p(a), aOffset: 2, lda: k,
                        b: p(b), bOffset: 1, ldb: tB ? k : n, beta: 0.5, c: p(out), cOffset: 3, ldc: n, batch: batch)
            }
            try h.check("gemm strided batch N\(tB ? "T" : "N")", out,
                        "\(count) x m\(m) n\(n) k\(k), strides \(strideA)/\(strideB)/\(strideC), alpha 1.3 beta 0.5")
        }

        let out = try h.pair(h.random(4 * 6))
        h.both { be, p in
            be.gemm(transposeA: false, transposeB: false, m: 3, n: 5, k: 0, alpha: 1, a: p(out), aOffset: 0, lda: 1,
                    b: p(out), bOffset: 0, ldb: 5, beta: -2, c: p(out), cOffset: 1, ldc: 6, batch: .single)
        }
        try h.check("gemm k = 0 (C = beta C)", out, "m3 n5 ldc 6 beta -2")
    }
}
