import Foundation
import JEMSupport

/// The "pointwise" op group: bias, activations, arithmetic and pooling (Kernels/pointwise.cl).
extension ParitySuite {
    static func bias(_ h: ParityHarness) throws {
        for (outer, channels, inner) in [(3, 5, 7), (4, 10, 1), (2, 3, 300)] {
            let count = outer * channels * inner
            let y = try h.pair(h.random(count)), bias = try h.pair(h.random(channels))
            h.both { b, p in b.addBias(p(y), bias: p(bias), outer: outer, channels: channels, inner: inner) }
            try h.check("addBias", y, "outer \(outer) channels \(channels) inner \(inner)")
            for accumulate in [false, true] {
                let grad = try h.pair(h.random(channels))
                h.both { b, p in
                    b.biasGradient(p(y), outer: outer, channels: channels, inner: inner, gradBias: p(grad),
                                   accumulate: accumulate)
                }
                try h.check("biasGradient", grad, "outer \(outer) channels \(channels) inner \(inner)"
                            + (accumulate ? ", accumulate" : ""))
            }
        }
    }

    static func activations(_ h: ParityHarness) throws {
        for activation in [Activation.leakyReLU(slope: 0.2), .swish] {
            for count in [1031, 77] {
                let x = try h.pair(h.random(count, -4, 4)), y = try h.pair(h.random(count))
                h.both { b, p in b.activationForward(activation, x: p(x), y: p(y), count: count) }
                try h.check("activationForward", y, "\(activation), \(count) elements")
                let accumulate = count == 77
                let gradY = try h.pair(h.random(count)), gradX = try h.pair(h.random(count))
                h.both { b, p in
                    b.activationBackward(activation, x: p(x), gradY: p(gradY), gradX: p(gradX), count: count,
                                         accumulate: accumulate)
                }
                try h.check("activationBackward", gradX, "\(activation), \(count) elements"
                            + (accumulate ? ", accumulate" : ""))
            }
        }
    }

    static func pointwise(_ h: ParityHarness) throws {
        for (count, alpha, beta) in [(1031, Float(0.75), Float(-1.5)), (77, Float(-2), Float(0))] {
            // beta = 0 must not read y: start from NaN there.
            let x = try h.pair(h.random(count))
            let y = try h.pair(beta == 0 ? [Float](repeating: .nan, count: count) : h.random(count))
            h.both { b, p in b.axpby(alpha: alpha, x: p(x), beta: beta, y: p(y), count: count) }
            try h.check("axpby", y, "alpha \(alpha) beta \(beta), \(count) elements")
            h.both { b, p in b.scale(p(y), by: -0.37, count: count - 3) }
            try h.check("scale", y, "by -0.37, \(count - 3) of \(count) elements")
            // Fill a copy of the reference's y on both sides, so that the untouched elements agree
            // bit for bit whatever rounding `scale` had.
            let filled = try h.pair(try h.reference.download(y.reference))
            h.both { b, p in b.fill(p(filled), value: 0.125, offset: 5, count: count - 9) }
            try h.check("fill", filled, mode: .bitExact, "0.125 at offset 5, \(count - 9) elements")
            let z = try h.pair(h.random(count, -3, 3))
            h.both { b, p in b.clamp(p(z), low: -1, high: 0.5, count: count) }
            try h.check("clamp", z, mode: .bitExact, "[-1, 0.5], \(count) elements")
            // Zeros among the values: sign keeps them.
            let w = try h.pair(h.random(count).enumerated().map { $0.offset % 7 == 0 ? 0 : $0.element })
            let s = try h.pair(h.random(count))
            h.both { b, p in b.sign(p(w), y: p(s), count: count) }
            try h.check("sign", s, mode: .bitExact, "\(count) elements with zeros")
        }
        // Rows of different norms, one of zeros (left unchanged); both modes, with and without norms.
        for (rows, rowSize) in [(7, 301), (5, 64)] {
            var values = h.random(rows * rowSize)
            for r in 0..<rows { for j in 0..<rowSize { values[r * rowSize + j] *= Float(r) * 0.5 } }
            let target: Float = 3
            for mode in [RowRescale.exact, .atMost] {
                let x = try h.pair(values), norms = try h.pair(h.random(rows))
                h.both { b, p in
                    b.rescaleRows(p(x), rows: rows, rowSize: rowSize, toNorm: target, mode: mode, norms: p(norms))
                }
                try h.check("rescaleRows", x, "\(rows)x\(rowSize) to norm \(target), \(mode)")
                try h.check("rescaleRows norms", norms, "\(rows)x\(rowSize), \(mode)")
                h.both { b, p in b.rescaleRows(p(x), rows: rows, rowSize: rowSize, toNorm: 0.5, mode: mode, norms: nil) }
                try h.check("rescaleRows", x, "\(rows)x\(rowSize) to norm 0.5, \(mode), no norms")
            }
            let x = try h.pair(values), factors = try h.pair(h.random(rows, -2, 2))
            h.both { b, p in b.scaleRows(p(x), by: p(factors), rows: rows, rowSize: rowSize) }
            try h.check("scaleRows", x, "\(rows)x\(rowSize)")
        }
    }

    static func pooling(_ h: ParityHarness) throws {
        for (rows, spatial) in [(15, 63), (6, 300)] {
            let x = try h.pair(h.random(rows * spatial)), y = try h.pair(h.random(rows))
            h.both { b, p in b.globalAveragePoolForward(x: p(x), y: p(y), rows: rows, spatial: spatial) }
            try h.check("globalAveragePoolForward", y, "rows \(rows) spatial \(spatial)")
            for accumulate in [false, true] {
                let gradX = try h.pair(h.random(rows * spatial))
                h.both { b, p in
                    b.globalAveragePoolBackward(gradY: p(y), gradX: p(gradX), rows: rows, spatial: spatial,
                                                accumulate: accumulate)
                }
                try h.check("globalAveragePoolBackward", gradX, "rows \(rows) spatial \(spatial)"
                            + (accumulate ? ", accumulate" : ""))
            }
        }
    }
}
