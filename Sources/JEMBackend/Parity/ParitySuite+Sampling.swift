import Foundation
import JEMSupport

/// The "sampling" op group: SGLD, fills, noise, replay-buffer gather/scatter (Kernels/sampling.cl).
extension ParitySuite {
    static func sampling(_ h: ParityHarness) throws {
        let seed = h.seed &+ 1000
        for (count, clip, range) in [(1031, Float(0.3) as Float?, (Float(-1)...Float(1)) as ClosedRange<Float>?),
                                     (998, nil, nil)] {
            let x = try h.pair(h.random(count, -1.2, 1.2)), grad = try h.pair(h.random(count, -1, 1))
            h.both { b, p in
                b.sgldUpdate(x: p(x), grad: p(grad), count: count, stepSize: 0.5, noiseStd: 0.01, seed: seed,
                             stream: 17, gradClip: clip, clampRange: range)
            }
            try h.check("sgldUpdate", x, mode: .absolute(gaussianTolerance),
                        "\(count) elements, step 0.5, noise 0.01, clip \(clip.map { "\($0)" } ?? "none"), "
                        + "clamp \(range.map { "\($0)" } ?? "none")")
        }
        for (count, low, high) in [(1030, Float(-1), Float(1)), (5, Float(0.25), Float(3))] {
            let x = try h.pair(h.random(count))
            h.both { b, p in b.fillUniform(p(x), count: count, low: low, high: high, seed: seed, stream: 3) }
            try h.check("fillUniform", x, mode: .bitExact, "\(count) elements in [\(low), \(high))")
        }
        for (count, std) in [(1031, Float(1)), (6, Float(0.05))] {
            let x = try h.pair(h.random(count))
            h.both { b, p in b.addGaussianNoise(p(x), count: count, std: std, seed: seed, stream: 9) }
            try h.check("addGaussianNoise", x, mode: .absolute(gaussianTolerance), "\(count) elements, std \(std)")
        }

        let sourceRows = 20, rowSize = 37, rows = 9
        let source = try h.pair(h.random(sourceRows * rowSize))
        let indices = try h.pair((0..<rows).map { Int32(($0 * 13 + 5) % sourceRows) })
        let reinit = try h.pair((0..<rows).map { Int32($0 % 3 == 1 ? 1 : 0) })
        for withReinit in [true, false] {
            let out = try h.pair(h.random(rows * rowSize))
            h.both { b, p in
                b.gatherRows(p(source), indices: p(indices), reinit: withReinit ? p(reinit) : nil, rows: rows,
                             rowSize: rowSize, seed: seed, stream: 21, out: p(out))
            }
            try h.check("gatherRows", out, mode: .bitExact,
                        "\(rows) of \(sourceRows) rows of \(rowSize)" + (withReinit ? ", 3 re-initialised" : ""))
        }
        let destination = try h.pair(h.random(sourceRows * rowSize))
        let targetIndices: [Int32] = (0..<rows).map { (r: Int) -> Int32 in
            r % 4 == 2 ? -1 : Int32((r * 7 + 2) % sourceRows)
        }
        let targets = try h.pair(targetIndices)
        let rowsIn = try h.pair(h.random(rows * rowSize))
        h.both { b, p in b.scatterRows(p(rowsIn), indices: p(targets), rows: rows, rowSize: rowSize,
                                       destination: p(destination)) }
        try h.check("scatterRows", destination, mode: .bitExact,
                    "\(rows) rows of \(rowSize) into \(sourceRows), 2 skipped (index -1)")
    }
}
