import Foundation

/// One check of a backend against the reference (or of the reference against ground truth).
public struct ParityResult: Sendable {
    public var name: String
    /// The worst error of the check: max |a - b| / max(max |b|, tiny) for relative checks, where
    /// b is the reference; max |a - b| for checks with an absolute tolerance (`detail` then says
    /// "absolute"); infinity when one side is non-finite where the other is not (or differs).
    public var maxRelativeError: Double
    /// The largest error that passes (0 for bit-exact checks).
    public var tolerance: Double
    public var passed: Bool
    /// The shape or parameters checked, and how.
    public var detail: String

    public init(name: String, maxRelativeError: Double, tolerance: Double, passed: Bool, detail: String) {
        self.name = name
        self.maxRelativeError = maxRelativeError
        self.tolerance = tolerance
        self.passed = passed
        self.detail = detail
    }
}

/// Runs every op of the `Backend` protocol on a reference and a candidate backend with the same
/// deterministic random inputs (Philox, so the data are identical on every machine), on odd
/// shapes, and reports the worst error per check. `jem-gpu selftest` prints it; the tests assert it.
///
/// Tolerances: 1e-4 relative for float math; bit-exact for copies, Philox words and uniform fills;
/// 1e-6 absolute for Gaussian noise (Box-Muller through each device's log/sin/cos) and SGLD.
public enum ParitySuite {
    /// Groups of ops, so that a test can run (and name) one group at a time.
    public enum Group: String, CaseIterable, Sendable {
        case buffers, gemm, bias, convolution, activations, pointwise, pooling, loss, sampling, optimizers,
             reductions, philox
    }

    /// Relative tolerance of the float checks.
    public static let tolerance = 1e-4
    /// Absolute tolerance of the checks built on Gaussian noise.
    public static let gaussianTolerance = 1e-6

    /// Every group.
    public static func run(reference: Backend, candidate: Backend, seed: UInt64 = 1) throws -> [ParityResult] {
        try run(reference: reference, candidate: candidate, seed: seed, groups: Group.allCases)
    }

    /// The given groups, in order. `.philox` compares raw Philox words and so needs an
    /// `OpenCLBackend` candidate; with another candidate it reports nothing.
    public static func run(reference: Backend, candidate: Backend, seed: UInt64 = 1,
                           groups: [Group]) throws -> [ParityResult] {
        let h = ParityHarness(reference: reference, candidate: candidate, seed: seed)
        for group in groups {
            switch group {
            case .buffers: try buffers(h)
            case .gemm: try gemm(h)
            case .bias: try bias(h)
            case .convolution: try convolution(h)
            case .activations: try activations(h)
            case .pointwise: try pointwise(h)
            case .pooling: try pooling(h)
            case .loss: try loss(h)
            case .sampling: try sampling(h)
            case .optimizers: try optimizers(h)
            case .reductions: try reductions(h)
            case .philox: try philox(h)
            }
        }
        try reference.synchronize()
        try candidate.synchronize()
        return h.results
    }

    // MARK: Buffers

    static func buffers(_ h: ParityHarness) throws {
        let x = try h.pair(h.random(37))
        try h.upload(h.random(5), to: x, offset: 11)
        try h.check("upload/download", x, mode: .bitExact, "37 floats, 5 re-uploaded at offset 11")
        let partialRef = try h.reference.download(x.reference, offset: 9, count: 20)
        let partialCand = try h.candidate.download(x.candidate, offset: 9, count: 20)
        h.compare("download with offset", candidate: partialCand, reference: partialRef, mode: .bitExact,
                  "floats 9..<29")

        let ints: [Int32] = (0..<29).map { Int32($0 * 7919 % 1000) - 500 }
        let i = try h.pair(ints)
        try h.reference.upload([Int32(-7), 123_456_789], to: i.reference, offset: 3)
        try h.candidate.upload([Int32(-7), 123_456_789], to: i.candidate, offset: 3)
        let intsRef = try h.reference.downloadInt32(i.reference, offset: 0, count: 29)
        let intsCand = try h.candidate.downloadInt32(i.candidate, offset: 0, count: 29)
        h.compare("int32 upload/download", candidate: intsCand.map(Float.init), reference: intsRef.map(Float.init),
                  mode: .bitExact, "29 int32, 2 re-uploaded at offset 3")

        let source = try h.pair(h.random(53)), destination = try h.pair(h.random(61))
        h.both { b, p in b.copy(p(source), sourceOffset: 4, to: p(destination), destinationOffset: 9, count: 40) }
        try h.check("copy", destination, mode: .bitExact, "40 floats, offsets 4 -> 9")
        h.both { b, p in b.copy(p(destination), sourceOffset: 0, to: p(destination), destinationOffset: 5, count: 50) }
        try h.check("copy within a buffer (overlapping, forward)", destination, mode: .bitExact, "50 floats, 0 -> 5")
        h.both { b, p in b.copy(p(destination), sourceOffset: 8, to: p(destination), destinationOffset: 2, count: 50) }
        try h.check("copy within a buffer (overlapping, backward)", destination, mode: .bitExact, "50 floats, 8 -> 2")

        h.both { b, p in b.fill(p(destination), value: -2.5, offset: 13, count: 29) }
        try h.check("fill", destination, mode: .bitExact, "29 of 61 floats at offset 13")
    }

    // MARK: GEMM

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

    // MARK: Bias

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

    // MARK: Convolution

    /// The convolution shapes of the suite: odd sizes, both kernel sizes, strides and paddings.
    public static let convolutionShapes: [Conv2DShape] = [
        Conv2DShape(batch: 3, inChannels: 5, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 3, inChannels: 5, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 2, inChannels: 3, height: 7, width: 9, outChannels: 6, kernel: 1, stride: 1, padding: 0),
        Conv2DShape(batch: 2, inChannels: 5, height: 9, width: 7, outChannels: 4, kernel: 1, stride: 2, padding: 0),
        Conv2DShape(batch: 3, inChannels: 2, height: 7, width: 9, outChannels: 3, kernel: 3, stride: 1, padding: 0),
    ]

    static func convolution(_ h: ParityHarness) throws {
        for (index, s) in convolutionShapes.enumerated() {
            let withBias = index % 2 == 0, accumulate = index % 2 == 1
            let input = try h.pair(h.random(s.inputCount)), weight = try h.pair(h.random(s.weightCount))
            let bias = try h.pair(h.random(s.outChannels))
            let output = try h.pair(h.random(s.outputCount))
            h.both { b, p in
                b.conv2dForward(s, input: p(input), weight: p(weight), bias: withBias ? p(bias) : nil, output: p(output))
            }
            try h.check("conv2dForward", output, "\(s)" + (withBias ? ", bias" : ""))

            let gradOutput = try h.pair(h.random(s.outputCount)), gradInput = try h.pair(h.random(s.inputCount))
            h.both { b, p in
                b.conv2dBackwardData(s, gradOutput: p(gradOutput), weight: p(weight), gradInput: p(gradInput),
                                     accumulate: accumulate)
            }
            try h.check("conv2dBackwardData", gradInput, "\(s)" + (accumulate ? ", accumulate" : ""))

            let gradWeight = try h.pair(h.random(s.weightCount)), gradBias = try h.pair(h.random(s.outChannels))
            h.both { b, p in
                b.conv2dBackwardFilter(s, input: p(input), gradOutput: p(gradOutput), gradWeight: p(gradWeight),
                                       gradBias: withBias ? p(gradBias) : nil, accumulate: accumulate)
            }
            try h.check("conv2dBackwardFilter", gradWeight, "\(s)" + (accumulate ? ", accumulate" : ""))
            if withBias {
                try h.check("conv2dBackwardFilter bias", gradBias, "\(s)" + (accumulate ? ", accumulate" : ""))
            }
        }
        try activatedConvolution(h)
    }

    /// Shapes for the convolutions of an activated input: the suite's shapes plus the ones the
    /// CPU backend fuses (Winograd, and a stride-2 conv on 16-pixel rows).
    public static let activatedConvolutionShapes: [Conv2DShape] = convolutionShapes + [
        Conv2DShape(batch: 3, inChannels: 6, height: 8, width: 16, outChannels: 5, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 2, inChannels: 17, height: 12, width: 16, outChannels: 9, kernel: 3, stride: 1, padding: 1),
    ]

    /// conv(activation(x)) and its gradients (a backend may fuse them; the reference may not).
    static func activatedConvolution(_ h: ParityHarness) throws {
        for (index, s) in activatedConvolutionShapes.enumerated() {
            for activation in [Activation.leakyReLU(slope: 0.2), .swish] {
                let accumulate = index % 2 == 0
                let what = "\(s), \(activation)" + (accumulate ? ", accumulate" : "")
                let input = try h.pair(h.random(s.inputCount, -2, 2)), weight = try h.pair(h.random(s.weightCount))
                let bias = try h.pair(h.random(s.outChannels)), output = try h.pair(h.random(s.outputCount))
                let scratch = try h.pair(h.random(s.inputCount))
                h.both { b, p in
                    b.conv2dForward(s, input: p(input), activation: activation, scratch: p(scratch), weight: p(weight),
                                    bias: p(bias), output: p(output))
                }
                try h.check("conv2dForward of activated input", output, what)

                let gradOutput = try h.pair(h.random(s.outputCount)), gradInput = try h.pair(h.random(s.inputCount))
                h.both { b, p in
                    b.conv2dBackwardData(s, gradOutput: p(gradOutput), weight: p(weight), input: p(input),
                                         activation: activation, scratch: p(scratch), gradInput: p(gradInput),
                                         accumulate: accumulate)
                }
                try h.check("conv2dBackwardData of activated input", gradInput, what)

                let gradWeight = try h.pair(h.random(s.weightCount)), gradBias = try h.pair(h.random(s.outChannels))
                h.both { b, p in
                    b.conv2dBackwardFilter(s, input: p(input), activation: activation, scratch: p(scratch),
                                           gradOutput: p(gradOutput), gradWeight: p(gradWeight), gradBias: p(gradBias),
                                           accumulate: accumulate)
                }
                try h.check("conv2dBackwardFilter of activated input", gradWeight, what)
                try h.check("conv2dBackwardFilter of activated input, bias", gradBias, what)
            }
        }
    }

    // MARK: Activations

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

    // MARK: Pointwise

    static func pointwise(_ h: ParityHarness) throws {
        for (count, alpha, beta) in [(1031, Float(0.75), Float(-1.5)), (77, Float(-2), Float(0))] {
            // beta = 0 must not read y: start from NaN there.
            let x = try h.pair(h.random(count))
            let y = try h.pair(beta == 0 ? [Float](repeating: .nan, count: count) : h.random(count))
            h.both { b, p in b.axpby(alpha: alpha, x: p(x), beta: beta, y: p(y), count: count) }
            try h.check("axpby", y, "alpha \(alpha) beta \(beta), \(count) elements")
            h.both { b, p in b.scale(p(y), by: -0.37, count: count - 3) }
            try h.check("scale", y, "by -0.37, \(count - 3) of \(count) elements")
            h.both { b, p in b.fill(p(y), value: 0.125, offset: 5, count: count - 9) }
            try h.check("fill", y, mode: .bitExact, "0.125 at offset 5, \(count - 9) elements")
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

    // MARK: Pooling

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

    // MARK: Energy and loss

    static func loss(_ h: ParityHarness) throws {
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
            try h.check("logSumExpRows", lse, shape)
            for accumulate in [false, true] {
                let gradOut = try h.pair(h.random(c.rows)), gradX = try h.pair(h.random(c.rows * c.cols))
                h.both { b, p in
                    b.logSumExpBackward(p(x), lse: p(lse), gradOut: p(gradOut), rows: c.rows, cols: c.cols,
                                        gradX: p(gradX), accumulate: accumulate)
                }
                try h.check("logSumExpBackward", gradX, shape + (accumulate ? ", accumulate" : ""))
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
                try h.check("softmaxCrossEntropyBackward", grad, shape + (accumulate ? ", accumulate" : ""))
            }
        }
    }

    // MARK: Sampling

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

    // MARK: Optimisers

    static func optimizers(_ h: ParityHarness) throws {
        let cases = [(1031, AdamHyperparameters(learningRate: 1e-3, weightDecay: 0.01), 1),
                     (77, AdamHyperparameters(learningRate: 0.1, beta1: 0.8, beta2: 0.99, epsilon: 1e-6), 7)]
        for (count, hyper, step) in cases {
            let parameters = try h.pair(h.random(count)), gradients = try h.pair(h.random(count))
            let m = try h.pair(h.random(count, -0.1, 0.1)), v = try h.pair(h.random(count, 0, 0.01))
            h.both { b, p in
                b.adamUpdate(parameters: p(parameters), gradients: p(gradients), firstMoment: p(m), secondMoment: p(v),
                             count: count, hyper: hyper, step: step)
            }
            let detail = "\(count) elements, lr \(hyper.learningRate), wd \(hyper.weightDecay), step \(step)"
            try h.check("adamUpdate parameters", parameters, detail)
            try h.check("adamUpdate first moment", m, detail)
            try h.check("adamUpdate second moment", v, detail)
        }
        for (count, lr, momentum, wd) in [(1031, Float(0.1), Float(0.9), Float(5e-4)), (77, Float(0.5), Float(0), Float(0))] {
            let parameters = try h.pair(h.random(count)), gradients = try h.pair(h.random(count))
            let buffer = try h.pair(h.random(count))
            h.both { b, p in
                b.sgdMomentumUpdate(parameters: p(parameters), gradients: p(gradients), momentumBuffer: p(buffer),
                                    count: count, learningRate: lr, momentum: momentum, weightDecay: wd)
            }
            let detail = "\(count) elements, lr \(lr), momentum \(momentum), wd \(wd)"
            try h.check("sgdMomentumUpdate parameters", parameters, detail)
            try h.check("sgdMomentumUpdate momentum", buffer, detail)
        }
    }

    // MARK: Reductions

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

    // MARK: Philox

    /// Random123's published known-answer vectors for Philox4x32-10: (counter, key, output).
    static let knownAnswers: [(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32), output: [UInt32])] = [
        ((0, 0, 0, 0), (0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
        ((.max, .max, .max, .max), (.max, .max), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
        ((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
         [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
    ]

    static func philox(_ h: ParityHarness) throws {
        guard let device = h.candidate as? OpenCLBackend else { return }
        var failures = 0
        for answer in knownAnswers {
            let words = try device.philoxRaw(counter: answer.counter, key: answer.key, count: 1)
            if words != answer.output { failures += 1 }
        }
        h.results.append(ParityResult(name: "philox_raw known answers (Random123)",
                                      maxRelativeError: failures == 0 ? 0 : .infinity, tolerance: 0,
                                      passed: failures == 0, detail: "\(failures) of 3 vectors differ, bit-exact"))
        let key = (UInt32(truncatingIfNeeded: h.seed), UInt32(truncatingIfNeeded: h.seed >> 32))
        for counter in [(UInt32(5), UInt32(0), UInt32(7), UInt32(0)), (UInt32.max - 100, UInt32(1), UInt32(2), UInt32(3))] {
            let count = 1000
            let words = try device.philoxRaw(counter: counter, key: key, count: count)
            var expected: [UInt32] = []
            expected.reserveCapacity(4 * count)
            for i in 0..<count {
                let r = Philox.block(counter: (counter.0 &+ UInt32(i), counter.1, counter.2, counter.3), key: key)
                expected += [r.0, r.1, r.2, r.3]
            }
            let differing = zip(words, expected).filter { $0 != $1 }.count + abs(words.count - expected.count)
            h.results.append(ParityResult(name: "philox_raw CPU == OpenCL", maxRelativeError: differing == 0 ? 0 : .infinity,
                                          tolerance: 0, passed: differing == 0,
                                          detail: "\(count) blocks from counter \(counter.0),\(counter.1),\(counter.2),"
                                            + "\(counter.3): \(differing) words differ, bit-exact"))
        }
    }
}

/// The two backends and the suite's bookkeeping: deterministic inputs, paired buffers, comparison.
final class ParityHarness {
    let reference: Backend
    let candidate: Backend
    let seed: UInt64
    private var stream: UInt64 = 0
    var results: [ParityResult] = []

    init(reference: Backend, candidate: Backend, seed: UInt64) {
        self.reference = reference
        self.candidate = candidate
        self.seed = seed
    }

    /// The same data on both backends.
    struct Pair {
        let reference: DeviceBuffer
        let candidate: DeviceBuffer
    }

    enum Mode {
        case relative(Double)
        case absolute(Double)
        case bitExact
    }

    /// `count` uniform values in [low, high) from the next Philox stream of the suite's seed.
    func random(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
        stream += 1
        return (0..<count).map { low + (high - low) * Philox.uniform(seed: seed, stream: stream, element: $0) }
    }

    func pair(_ values: [Float]) throws -> Pair {
        Pair(reference: try reference.makeBuffer(values), candidate: try candidate.makeBuffer(values))
    }

    func pair(_ values: [Int32]) throws -> Pair {
        Pair(reference: try reference.makeBuffer(values), candidate: try candidate.makeBuffer(values))
    }

    func upload(_ values: [Float], to pair: Pair, offset: Int) throws {
        try reference.upload(values, to: pair.reference, offset: offset)
        try candidate.upload(values, to: pair.candidate, offset: offset)
    }

    /// Runs `body` on the reference, then on the candidate; `p` picks a pair's buffer of that backend.
    func both(_ body: (Backend, (Pair) -> DeviceBuffer) -> Void) {
        body(reference) { $0.reference }
        body(candidate) { $0.candidate }
    }

    /// Downloads both sides of `pair` and records the comparison.
    func check(_ name: String, _ pair: Pair, mode: Mode = .relative(ParitySuite.tolerance), _ detail: String) throws {
        let want = try reference.download(pair.reference)
        let got = try candidate.download(pair.candidate)
        compare(name, candidate: got, reference: want, mode: mode, detail)
    }

    func compare(_ name: String, candidate got: [Float], reference want: [Float], mode: Mode, _ detail: String) {
        var maxDifference = 0.0, scale = 0.0, nonFiniteMismatches = 0, differing = 0
        if got.count != want.count { nonFiniteMismatches += 1 }
        for (a, b) in zip(got, want) {
            if b.isFinite { scale = Swift.max(scale, Double(abs(b))) }
            if a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) { continue }
            differing += 1
            if !a.isFinite || !b.isFinite {
                nonFiniteMismatches += 1
            } else {
                maxDifference = Swift.max(maxDifference, Double(abs(a - b)))
            }
        }
        let relative = nonFiniteMismatches > 0 ? Double.infinity : maxDifference / Swift.max(scale, 1e-30)
        let result: ParityResult
        switch mode {
        case .relative(let tolerance):
            result = ParityResult(name: name, maxRelativeError: relative, tolerance: tolerance,
                                  passed: relative <= tolerance, detail: detail)
        case .absolute(let tolerance):
            let absolute = nonFiniteMismatches > 0 ? Double.infinity : maxDifference
            result = ParityResult(name: name, maxRelativeError: absolute, tolerance: tolerance,
                                  passed: absolute <= tolerance, detail: detail + "; absolute error")
        case .bitExact:
            result = ParityResult(name: name, maxRelativeError: relative, tolerance: 0, passed: differing == 0,
                                  detail: detail + "; bit-exact, \(differing) of \(want.count) differ")
        }
        results.append(result)
    }
}
