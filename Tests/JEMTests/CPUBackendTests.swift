import XCTest
@testable import JEM
@testable import JEMBackend

/// The CPU backend is the reference for every other backend, so it is checked against ground
/// truth: a naive convolution, hand-computed values, and central finite differences.
///
/// Finite differences run in float32 through the backend itself, so the check is directional:
/// for random x, v and output weights w, with L(x) = sum w*y(x) accumulated in float64,
/// (L(x + eps v) - L(x - eps v)) / (2 eps) must equal <dL/dx, v>. Rounding contributes about
/// 1e-7 * |L| / eps and the truncation O(eps^2 * L'''), so with eps = 1e-2 and |L| ~ 10 a relative
/// tolerance of 2e-3 is a few times above both; a wrong gradient is off by O(1).
final class CPUBackendTests: XCTestCase {
    let cpu = CPUBackend()

    func buffer(_ values: [Float]) throws -> DeviceBuffer { try cpu.makeBuffer(values) }

    /// Checks `analytic` (gradient of sum w*forward(x)) against the directional finite difference.
    func checkGradient(_ name: String, x: [Float], outputCount: Int, eps: Float = 1e-2, tolerance: Double = 2e-3,
                       forward: ([Float]) throws -> [Float], analytic: ([Float], [Float]) throws -> [Float],
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let w = randomArray(outputCount, seed: 91, stream: 1)
        let v = randomArray(x.count, seed: 91, stream: 2)
        let plus = try forward(zip(x, v).map { $0 + eps * $1 })
        let minus = try forward(zip(x, v).map { $0 - eps * $1 })
        let numeric = (dot(w, plus) - dot(w, minus)) / (2 * Double(eps))
        let exact = dot(try analytic(x, w), v)
        // Relative to the size of the terms of <dL/dx, v>, so that a sum that cancels to nearly 0
        // is not judged by its own tiny magnitude.
        let termScale = zip(try analytic(x, w), v).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
        let error = abs(numeric - exact) / max(abs(exact), 0.1 * termScale, 1e-6)
        XCTAssertLessThan(error, tolerance, "\(name): finite difference \(numeric) vs analytic \(exact)",
                          file: file, line: line)
    }

    // MARK: Convolution

    func testConvForwardMatchesNaiveLoops() throws {
        for s in oddConvShapes {
            let x = randomArray(s.inputCount, stream: 1), w = randomArray(s.weightCount, stream: 2)
            let b = randomArray(s.outChannels, stream: 3)
            let out = try cpu.makeBuffer(count: s.outputCount)
            cpu.conv2dForward(s, input: try buffer(x), weight: try buffer(w), bias: try buffer(b), output: out)
            let error = maxRelativeError(try cpu.download(out), naiveConv(s, input: x, weight: w, bias: b))
            XCTAssertLessThan(error, 1e-5, "\(s)")
            let noBias = try cpu.makeBuffer(count: s.outputCount)
            cpu.conv2dForward(s, input: try buffer(x), weight: try buffer(w), bias: nil, output: noBias)
            XCTAssertLessThan(maxRelativeError(try cpu.download(noBias), naiveConv(s, input: x, weight: w, bias: nil)), 1e-5)
        }
    }

    func testConvOverManyImagesMatchesNaiveLoops() throws {
        // 7 images split over the threads: every image lands in the right place.
        let s = Conv2DShape(batch: 7, inChannels: 3, height: 8, width: 6, outChannels: 5, kernel: 3, stride: 1, padding: 1)
        let x = randomArray(s.inputCount, stream: 4), w = randomArray(s.weightCount, stream: 5)
        let out = try cpu.makeBuffer(count: s.outputCount)
        cpu.conv2dForward(s, input: try buffer(x), weight: try buffer(w), bias: nil, output: out)
        XCTAssertLessThan(maxRelativeError(try cpu.download(out), naiveConv(s, input: x, weight: w, bias: nil)), 1e-5)
    }

    /// Stride-2 convs on rows of 16 and 32 pixels take the vectorised im2col / col2im path
    /// (blocks of 16 pixels); odd heights, channel counts and a 1x1 shortcut included.
    func testStrideTwoConvsMatchNaiveLoops() throws {
        let shapes = [
            Conv2DShape(batch: 3, inChannels: 5, height: 16, width: 16, outChannels: 7, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 2, inChannels: 3, height: 15, width: 32, outChannels: 4, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 1, inChannels: 2, height: 10, width: 48, outChannels: 3, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 3, inChannels: 6, height: 16, width: 16, outChannels: 5, kernel: 1, stride: 2, padding: 0),
            Conv2DShape(batch: 2, inChannels: 4, height: 9, width: 32, outChannels: 3, kernel: 1, stride: 2, padding: 0),
        ]
        for (index, s) in shapes.enumerated() {
            let stream = UInt64(10 * index)
            let x = randomArray(s.inputCount, stream: stream + 1), w = randomArray(s.weightCount, stream: stream + 2)
            let b = randomArray(s.outChannels, stream: stream + 3), dy = randomArray(s.outputCount, stream: stream + 4)
            let out = try cpu.makeBuffer(count: s.outputCount)
            cpu.conv2dForward(s, input: try buffer(x), weight: try buffer(w), bias: try buffer(b), output: out)
            XCTAssertLessThan(maxRelativeError(try cpu.download(out), naiveConv(s, input: x, weight: w, bias: b)), 1e-5,
                              "forward \(s)")
            let expected = naiveConvBackwardData(s, gradOutput: dy, weight: w)
            let dx = try cpu.makeBuffer(count: s.inputCount)
            cpu.conv2dBackwardData(s, gradOutput: try buffer(dy), weight: try buffer(w), gradInput: dx, accumulate: false)
            XCTAssertLessThan(maxRelativeError(try cpu.download(dx), expected), 1e-5, "backward data \(s)")
            let start = randomArray(s.inputCount, stream: stream + 5)
            let sum = try buffer(start)
            cpu.conv2dBackwardData(s, gradOutput: try buffer(dy), weight: try buffer(w), gradInput: sum, accumulate: true)
            XCTAssertLessThan(maxRelativeError(try cpu.download(sum), zip(start, expected).map { $0 + $1 }), 1e-5,
                              "backward data, accumulate \(s)")
        }
    }

    /// Convs with small outputs run the im2col path on groups of images per GEMM (N = images x
    /// pixels); batches that leave partial groups on each thread, all three passes.
    func testGroupedIm2colConvsMatchNaiveLoops() throws {
        let shapes = [
            Conv2DShape(batch: 11, inChannels: 5, height: 8, width: 8, outChannels: 6, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 9, inChannels: 4, height: 16, width: 16, outChannels: 3, kernel: 1, stride: 2, padding: 0),
            Conv2DShape(batch: 7, inChannels: 3, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 1, padding: 0),
        ]
        for (index, s) in shapes.enumerated() {
            XCTAssertGreaterThan(cpu.imagesPerGemm(s), 1, "\(s)")
            let stream = UInt64(10 * index + 100)
            let x = randomArray(s.inputCount, stream: stream + 1), w = randomArray(s.weightCount, stream: stream + 2)
            let b = randomArray(s.outChannels, stream: stream + 3), dy = randomArray(s.outputCount, stream: stream + 4)
            let out = try cpu.makeBuffer(count: s.outputCount)
            cpu.conv2dForward(s, input: try buffer(x), weight: try buffer(w), bias: try buffer(b), output: out)
            XCTAssertLessThan(maxRelativeError(try cpu.download(out), naiveConv(s, input: x, weight: w, bias: b)), 1e-5,
                              "forward \(s)")
            let wantDx = naiveConvBackwardData(s, gradOutput: dy, weight: w)
            let start = randomArray(s.inputCount, stream: stream + 5)
            let dx = try buffer(start)
            cpu.conv2dBackwardData(s, gradOutput: try buffer(dy), weight: try buffer(w), gradInput: dx, accumulate: true)
            XCTAssertLessThan(maxRelativeError(try cpu.download(dx), zip(start, wantDx).map { $0 + $1 }), 1e-5,
                              "backward data \(s)")
            let wantDw = naiveConvBackwardFilter(s, input: x, gradOutput: dy)
            let dw = try cpu.makeBuffer(count: s.weightCount)
            cpu.conv2dBackwardFilter(s, input: try buffer(x), gradOutput: try buffer(dy), gradWeight: dw, gradBias: nil,
                                     accumulate: false)
            XCTAssertLessThan(maxRelativeError(try cpu.download(dw), wantDw), 1e-5, "backward filter \(s)")
        }
    }

    /// output += conv(x) + bias (the residual shortcut) against the naive loops on every path: 1x1
    /// stride 1 (the GEMM adds onto the output), grouped im2col (1x1 stride 2, 3x3 padding 0: added
    /// as the product is stored), and the Winograd shapes (composed: conv into scratch, then added).
    func testConvForwardAddingMatchesNaiveLoops() throws {
        let shapes = [
            Conv2DShape(batch: 3, inChannels: 16, height: 8, width: 8, outChannels: 12, kernel: 1, stride: 1, padding: 0),
            Conv2DShape(batch: 9, inChannels: 4, height: 16, width: 16, outChannels: 3, kernel: 1, stride: 2, padding: 0),
            Conv2DShape(batch: 7, inChannels: 3, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 1, padding: 0),
            Conv2DShape(batch: 2, inChannels: 8, height: 9, width: 9, outChannels: 6, kernel: 3, stride: 1, padding: 1),
            Conv2DShape(batch: 2, inChannels: 16, height: 10, width: 10, outChannels: 16, kernel: 3, stride: 2, padding: 1),
        ]
        for (index, s) in shapes.enumerated() {
            let stream = UInt64(10 * index + 700)
            let x = randomArray(s.inputCount, stream: stream + 1), w = randomArray(s.weightCount, stream: stream + 2)
            let b = randomArray(s.outChannels, stream: stream + 3), start = randomArray(s.outputCount, stream: stream + 4)
            for bias in [b, nil] {
                let out = try buffer(start), scratch = try cpu.makeBuffer(count: s.outputCount)
                cpu.conv2dForwardAdding(s, input: try buffer(x), weight: try buffer(w), bias: try bias.map(buffer),
                                        scratch: scratch, output: out)
                let want = zip(start, naiveConv(s, input: x, weight: w, bias: bias)).map { $0 + $1 }
                XCTAssertLessThan(maxRelativeError(try cpu.download(out), want), 3e-5, "\(s), bias \(bias != nil)")
            }
        }
    }

    /// conv(act(x)) with the activation fused (Winograd pack/unpack of both strides, im2col and the gathering
    /// col2im) against activation + conv as separate ops on the same backend: forward and weight
    /// gradients bit for bit (the convs see the same activated values); the input gradient to
    /// rounding (accumulating adds act' * g with one rounding or two).
    func testFusedActivationConvsMatchSeparateOps() throws {
        let shapes = [
            Conv2DShape(batch: 3, inChannels: 17, height: 9, width: 16, outChannels: 6, kernel: 3, stride: 1, padding: 1),
            Conv2DShape(batch: 5, inChannels: 4, height: 16, width: 16, outChannels: 7, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 9, inChannels: 5, height: 8, width: 16, outChannels: 3, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 2, inChannels: 3, height: 9, width: 7, outChannels: 6, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 3, inChannels: 3, height: 8, width: 8, outChannels: 5, kernel: 3, stride: 1, padding: 1),
            // The stride-2 Winograd (leaky ReLU in its pack, act' in its unpack).
            Conv2DShape(batch: 3, inChannels: 17, height: 15, width: 16, outChannels: 20, kernel: 3, stride: 2, padding: 1),
            // ... and its weight gradient (16x15 outputs: leaky ReLU in the pack).
            Conv2DShape(batch: 2, inChannels: 16, height: 32, width: 30, outChannels: 18, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 2, inChannels: 4, height: 16, width: 16, outChannels: 3, kernel: 1, stride: 2, padding: 0),
            Conv2DShape(batch: 2, inChannels: 4, height: 5, width: 6, outChannels: 3, kernel: 1, stride: 1, padding: 0),
        ]
        for (index, s) in shapes.enumerated() {
            for activation in [Activation.leakyReLU(slope: 0.2), .swish] {
                let stream = UInt64(10 * index + 200)
                let x = try buffer(randomArray(s.inputCount, stream: stream + 1, low: -2, high: 2))
                let w = try buffer(randomArray(s.weightCount, stream: stream + 2))
                let b = try buffer(randomArray(s.outChannels, stream: stream + 3))
                let dy = try buffer(randomArray(s.outputCount, stream: stream + 4))
                let start = randomArray(s.inputCount, stream: stream + 5), startW = randomArray(s.weightCount, stream: 6)
                let scratch = try cpu.makeBuffer(count: s.inputCount)
                var fused: [[Float]] = [], separate: [[Float]] = []
                for composed in [false, true] {
                    let y = try cpu.makeBuffer(count: s.outputCount), dx = try cpu.makeBuffer(count: s.inputCount)
                    let dxSum = try buffer(start), dw = try buffer(startW)
                    let db = try buffer(Array(startW.prefix(s.outChannels)))
                    if composed {
                        cpu.composedConv2dForward(s, input: x, activation: activation, scratch: scratch, weight: w,
                                                  bias: b, output: y)
                        cpu.composedConv2dBackwardData(s, gradOutput: dy, weight: w, input: x, activation: activation,
                                                       scratch: scratch, gradInput: dx, accumulate: false)
                        cpu.composedConv2dBackwardData(s, gradOutput: dy, weight: w, input: x, activation: activation,
                                                       scratch: scratch, gradInput: dxSum, accumulate: true)
                        cpu.composedConv2dBackwardFilter(s, input: x, activation: activation, scratch: scratch,
                                                         gradOutput: dy, gradWeight: dw, gradBias: db, accumulate: true)
                    } else {
                        cpu.conv2dForward(s, input: x, activation: activation, scratch: scratch, weight: w, bias: b,
                                          output: y)
                        cpu.conv2dBackwardData(s, gradOutput: dy, weight: w, input: x, activation: activation,
                                               scratch: scratch, gradInput: dx, accumulate: false)
                        cpu.conv2dBackwardData(s, gradOutput: dy, weight: w, input: x, activation: activation,
                                               scratch: scratch, gradInput: dxSum, accumulate: true)
                        cpu.conv2dBackwardFilter(s, input: x, activation: activation, scratch: scratch,
                                                 gradOutput: dy, gradWeight: dw, gradBias: db, accumulate: true)
                    }
                    let results = [try cpu.download(y), try cpu.download(dx), try cpu.download(dxSum),
                                   try cpu.download(dw), try cpu.download(db)]
                    if composed { separate = results } else { fused = results }
                }
                let what = "\(s), \(activation)"
                XCTAssertEqual(fused[0], separate[0], "forward \(what)")
                XCTAssertEqual(fused[1], separate[1], "backward data \(what)")
                XCTAssertLessThan(maxRelativeError(fused[2], separate[2]), 1e-6, "backward data, accumulate \(what)")
                XCTAssertEqual(fused[3], separate[3], "backward filter \(what)")
                XCTAssertEqual(fused[4], separate[4], "bias \(what)")
            }
        }
    }

    /// Leaky ReLU over more than 2^18 elements per thread takes the streaming-store path; an odd
    /// count puts the second thread's range off the 64-byte grid (head and tail loops). Bit-exact:
    /// the vector select computes the same float operation per element (NaN stays NaN).
    func testLeakyReLUStreamingPathIsExact() throws {
        let count = 2 * (1 << 18) + 37, slope: Float = 0.2
        var x = randomArray(count, stream: 41, low: -2, high: 2)
        x[5] = .nan
        x[400_000] = -.infinity
        let g = randomArray(count, stream: 42)
        let xb = try buffer(x), gb = try buffer(g)
        let y = try cpu.makeBuffer(count: count), dx = try cpu.makeBuffer(count: count)
        cpu.activationForward(.leakyReLU(slope: slope), x: xb, y: y, count: count)
        cpu.activationBackward(.leakyReLU(slope: slope), x: xb, gradY: gb, gradX: dx, count: count, accumulate: false)
        let forward = try cpu.download(y), backward = try cpu.download(dx)
        for i in 0..<count {
            let want = x[i] > 0 ? x[i] : slope * x[i], wantGrad = g[i] * (x[i] > 0 ? 1 : slope)
            if forward[i].bitPattern != want.bitPattern || backward[i].bitPattern != wantGrad.bitPattern {
                XCTFail("element \(i): \(forward[i]) vs \(want), \(backward[i]) vs \(wantGrad)")
                return
            }
        }
        // In place (gradX = gradY), as the WideResNet backward calls it.
        cpu.activationBackward(.leakyReLU(slope: slope), x: xb, gradY: gb, gradX: gb, count: count, accumulate: false)
        XCTAssertEqual(try cpu.download(gb).map(\.bitPattern), backward.map(\.bitPattern))
    }

    func testConvBackwardDataGradient() throws {
        for s in oddConvShapes {
            let w = randomArray(s.weightCount, stream: 2)
            let wb = try buffer(w)
            try checkGradient("conv backward data \(s)", x: randomArray(s.inputCount, stream: 1),
                              outputCount: s.outputCount,
                              forward: { x in
                                  let out = try cpu.makeBuffer(count: s.outputCount)
                                  cpu.conv2dForward(s, input: try buffer(x), weight: wb, bias: nil, output: out)
                                  return try cpu.download(out)
                              },
                              analytic: { _, g in
                                  let dx = try cpu.makeBuffer(count: s.inputCount)
                                  cpu.conv2dBackwardData(s, gradOutput: try buffer(g), weight: wb, gradInput: dx,
                                                         accumulate: false)
                                  return try cpu.download(dx)
                              })
        }
    }

    func testConvBackwardFilterAndBiasGradient() throws {
        for s in oddConvShapes {
            let x = try buffer(randomArray(s.inputCount, stream: 1))
            // Weights and bias packed in one vector so one finite difference covers both.
            let params = randomArray(s.weightCount + s.outChannels, stream: 2)
            try checkGradient("conv backward filter \(s)", x: params, outputCount: s.outputCount,
                              forward: { p in
                                  let out = try cpu.makeBuffer(count: s.outputCount)
                                  cpu.conv2dForward(s, input: x, weight: try buffer(Array(p[..<s.weightCount])),
                                                    bias: try buffer(Array(p[s.weightCount...])), output: out)
                                  return try cpu.download(out)
                              },
                              analytic: { _, g in
                                  let dw = try cpu.makeBuffer(count: s.weightCount)
                                  let db = try cpu.makeBuffer(count: s.outChannels)
                                  cpu.conv2dBackwardFilter(s, input: x, gradOutput: try buffer(g), gradWeight: dw,
                                                           gradBias: db, accumulate: false)
                                  return try cpu.download(dw) + cpu.download(db)
                              })
        }
    }

    func testConvBackwardAccumulates() throws {
        let s = oddConvShapes[1]
        let x = try buffer(randomArray(s.inputCount, stream: 1)), w = try buffer(randomArray(s.weightCount, stream: 2))
        let g = try buffer(randomArray(s.outputCount, stream: 3))
        let dx = try cpu.makeBuffer(count: s.inputCount), dw = try cpu.makeBuffer(count: s.weightCount)
        cpu.conv2dBackwardData(s, gradOutput: g, weight: w, gradInput: dx, accumulate: false)
        cpu.conv2dBackwardFilter(s, input: x, gradOutput: g, gradWeight: dw, gradBias: nil, accumulate: false)
        let once = try cpu.download(dx), onceW = try cpu.download(dw)
        cpu.conv2dBackwardData(s, gradOutput: g, weight: w, gradInput: dx, accumulate: true)
        cpu.conv2dBackwardFilter(s, input: x, gradOutput: g, gradWeight: dw, gradBias: nil, accumulate: true)
        XCTAssertLessThan(maxRelativeError(try cpu.download(dx), once.map { 2 * $0 }), 1e-6)
        XCTAssertLessThan(maxRelativeError(try cpu.download(dw), onceW.map { 2 * $0 }), 1e-6)
    }

    // MARK: Dense

    func testGemmAllTransposesAlphaBetaAndBatches() throws {
        let m = 5, n = 7, k = 3, batches = 3
        let a = randomArray(batches * m * k, stream: 1), b = randomArray(batches * k * n, stream: 2)
        let c0 = randomArray(batches * m * n, stream: 3)
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let c = try buffer(c0)
                cpu.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.7,
                         a: try buffer(a), aOffset: 0, lda: transposeA ? m : k,
                         b: try buffer(b), bOffset: 0, ldb: transposeB ? k : n, beta: -0.3, c: c, cOffset: 0, ldc: n,
                         batch: GemmBatch(count: batches, strideA: m * k, strideB: k * n, strideC: m * n))
                let result = try cpu.download(c)
                for t in 0..<batches {
                    for i in 0..<m {
                        for j in 0..<n {
                            var acc = 0.0
                            for p in 0..<k {
                                let av = transposeA ? a[t * m * k + p * m + i] : a[t * m * k + i * k + p]
                                let bv = transposeB ? b[t * k * n + j * k + p] : b[t * k * n + p * n + j]
                                acc += Double(av) * Double(bv)
                            }
                            let expected = 0.7 * acc - 0.3 * Double(c0[t * m * n + i * n + j])
                            XCTAssertEqual(Double(result[t * m * n + i * n + j]), expected, accuracy: 1e-5)
                        }
                    }
                }
            }
        }
    }

    func testBiasAddAndGradient() throws {
        let outer = 3, channels = 4, inner = 5
        let bias = randomArray(channels, stream: 2)
        try checkGradient("bias", x: bias, outputCount: outer * channels * inner,
                          forward: { b in
                              let y = try buffer(randomArray(outer * channels * inner, stream: 1))
                              cpu.addBias(y, bias: try buffer(b), outer: outer, channels: channels, inner: inner)
                              return try cpu.download(y)
                          },
                          analytic: { _, g in
                              let db = try cpu.makeBuffer(count: channels)
                              cpu.biasGradient(try buffer(g), outer: outer, channels: channels, inner: inner,
                                               gradBias: db, accumulate: false)
                              return try cpu.download(db)
                          })
    }

    // MARK: Pointwise and pooling

    func testActivationGradients() throws {
        // Keep leaky-ReLU inputs away from the kink at 0 (|x| > eps), where it is not differentiable.
        let x = randomArray(257, stream: 1).map { $0 + ($0 >= 0 ? 0.05 : -0.05) }
        for activation in [Activation.leakyReLU(slope: 0.2), .swish] {
            try checkGradient("\(activation)", x: x, outputCount: x.count,
                              forward: { x in
                                  let y = try cpu.makeBuffer(count: x.count)
                                  cpu.activationForward(activation, x: try buffer(x), y: y, count: x.count)
                                  return try cpu.download(y)
                              },
                              analytic: { x, g in
                                  let dx = try cpu.makeBuffer(count: x.count)
                                  cpu.activationBackward(activation, x: try buffer(x), gradY: try buffer(g), gradX: dx,
                                                         count: x.count, accumulate: false)
                                  return try cpu.download(dx)
                              })
        }
        let y = try cpu.makeBuffer(count: 3)
        cpu.activationForward(.leakyReLU(slope: 0.2), x: try buffer([-2, 0, 3]), y: y, count: 3)
        XCTAssertEqual(try cpu.download(y), [-0.4, 0, 3])
        cpu.activationForward(.swish, x: try buffer([0, 1, -1]), y: y, count: 3)
        XCTAssertEqual(try cpu.download(y)[1], Float(1 / (1 + exp(-1.0))), accuracy: 1e-7)
    }

    func testPointwiseOps() throws {
        let x = try buffer([1, -2, 3, 4]), y = try buffer([10, 20, 30, 40])
        cpu.axpby(alpha: 2, x: x, beta: 0.5, y: y, count: 4)
        XCTAssertEqual(try cpu.download(y), [7, 6, 21, 28])
        cpu.scale(y, by: -1, count: 3)
        XCTAssertEqual(try cpu.download(y), [-7, -6, -21, 28])
        cpu.clamp(y, low: -10, high: 25, count: 4)
        XCTAssertEqual(try cpu.download(y), [-7, -6, -10, 25])
        cpu.fill(y, value: 1.5, offset: 1, count: 2)
        XCTAssertEqual(try cpu.download(y), [-7, 1.5, 1.5, 25])
        XCTAssertEqual(try cpu.sum(y, count: 4), 21)
        XCTAssertEqual(try cpu.sumOfSquares(x, count: 4), 30)
    }

    func testGlobalAveragePoolGradient() throws {
        let rows = 6, spatial = 10
        try checkGradient("avgpool", x: randomArray(rows * spatial, stream: 1), outputCount: rows,
                          forward: { x in
                              let y = try cpu.makeBuffer(count: rows)
                              cpu.globalAveragePoolForward(x: try buffer(x), y: y, rows: rows, spatial: spatial)
                              return try cpu.download(y)
                          },
                          analytic: { _, g in
                              let dx = try cpu.makeBuffer(count: rows * spatial)
                              cpu.globalAveragePoolBackward(gradY: try buffer(g), gradX: dx, rows: rows, spatial: spatial,
                                                            accumulate: false)
                              return try cpu.download(dx)
                          })
    }

    // MARK: Energy and loss

    func testLogSumExpGradient() throws {
        let rows = 5, cols = 7
        try checkGradient("logsumexp", x: randomArray(rows * cols, stream: 1, low: -3, high: 3), outputCount: rows,
                          forward: { x in
                              let out = try cpu.makeBuffer(count: rows)
                              cpu.logSumExpRows(try buffer(x), rows: rows, cols: cols, out: out)
                              return try cpu.download(out)
                          },
                          analytic: { x, g in
                              let xb = try buffer(x), lse = try cpu.makeBuffer(count: rows), dx = try cpu.makeBuffer(count: x.count)
                              cpu.logSumExpRows(xb, rows: rows, cols: cols, out: lse)
                              cpu.logSumExpBackward(xb, lse: lse, gradOut: try buffer(g), rows: rows, cols: cols,
                                                    gradX: dx, accumulate: false)
                              return try cpu.download(dx)
                          })
    }

    func testLogSumExpExtremeRows() throws {
        let inf = Float.infinity
        let x: [Float] = [1000, 1000, 1000, 1000, -1000, -1000, -1000, -1000, -inf, -inf, -inf, -inf, -inf, 0, -inf, 5]
        let out = try cpu.makeBuffer(count: 4)
        cpu.logSumExpRows(try buffer(x), rows: 4, cols: 4, out: out)
        let lse = try cpu.download(out)
        XCTAssertEqual(lse[0], 1000 + log(4), accuracy: 1e-4)
        XCTAssertEqual(lse[1], -1000 + log(4), accuracy: 1e-4)
        XCTAssertEqual(lse[2], -inf)
        XCTAssertEqual(lse[3], 5 + log(1 + exp(-5)), accuracy: 1e-6)
        let dx = try cpu.makeBuffer(count: 16)
        cpu.logSumExpBackward(try buffer(x), lse: out, gradOut: try buffer([1, 1, 1, 1]), rows: 4, cols: 4,
                              gradX: dx, accumulate: false)
        let grad = try cpu.download(dx)
        XCTAssertEqual(Array(grad[0..<4]), [0.25, 0.25, 0.25, 0.25])
        XCTAssertEqual(Array(grad[8..<12]), [0, 0, 0, 0])
        XCTAssertEqual(grad[12], 0)
        XCTAssertTrue(grad.allSatisfy { $0.isFinite })
    }

    func testCrossEntropyValuesAndGradient() throws {
        // Extreme logits: the loss is exact and finite, never inf or NaN.
        let logits: [Float] = [1000, -1000, 0, -1000, 1000, 0, 50, 50, 50]
        let labels = try cpu.makeBuffer([Int32(0), 0, 2])
        let losses = try cpu.makeBuffer(count: 3)
        cpu.softmaxCrossEntropyForward(try buffer(logits), labels: labels, rows: 3, cols: 3, losses: losses)
        let l = try cpu.download(losses)
        XCTAssertEqual(l[0], 0)
        XCTAssertEqual(l[1], 2000)
        XCTAssertEqual(l[2], Float(log(3.0)), accuracy: 1e-5)
        let rows = 4, cols = 6
        let labelBuffer = try cpu.makeBuffer([Int32(1), 5, 0, 3])
        try checkGradient("cross-entropy", x: randomArray(rows * cols, stream: 1, low: -3, high: 3), outputCount: rows,
                          forward: { x in
                              let out = try cpu.makeBuffer(count: rows)
                              cpu.softmaxCrossEntropyForward(try buffer(x), labels: labelBuffer, rows: rows, cols: cols,
                                                             losses: out)
                              return try cpu.download(out)
                          },
                          analytic: { x, g in
                              // The backward takes one scale for all rows: sum_r g_r * dloss_r is checked
                              // row by row with scale g_r.
                              var total = [Float](repeating: 0, count: x.count)
                              for r in 0..<rows {
                                  let dx = try cpu.makeBuffer(count: x.count)
                                  cpu.softmaxCrossEntropyBackward(try buffer(x), labels: labelBuffer, rows: rows, cols: cols,
                                                                  scale: g[r], gradLogits: dx, accumulate: false)
                                  let d = try cpu.download(dx)
                                  for c in 0..<cols { total[r * cols + c] = d[r * cols + c] }
                              }
                              return total
                          })
    }

    // MARK: Sampling and optimisation

    func testSGLDUpdateFormulaClipAndClamp() throws {
        let count = 11
        let x0 = randomArray(count, stream: 1), g = randomArray(count, stream: 2, low: -5, high: 5)
        let x = try buffer(x0)
        cpu.sgldUpdate(x: x, grad: try buffer(g), count: count, stepSize: 0.5, noiseStd: 0.1, seed: 3, stream: 9,
                       gradClip: 1, clampRange: -1.2...1.2)
        let result = try cpu.download(x)
        for i in 0..<count {
            let clipped = min(max(g[i], -1), 1)
            let expected = min(max(x0[i] + 0.5 * clipped + 0.1 * Philox.normal(seed: 3, stream: 9, element: i), -1.2), 1.2)
            XCTAssertEqual(result[i], expected, accuracy: 1e-6)
        }
    }

    func testUniformFillAndNoise() throws {
        let x = try cpu.makeBuffer(count: 1001)
        cpu.fillUniform(x, count: 1001, low: -1, high: 1, seed: 4, stream: 2)
        let u = try cpu.download(x)
        XCTAssertTrue(u.allSatisfy { $0 >= -1 && $0 < 1 })
        XCTAssertEqual(u[1000], 2 * Philox.uniform(seed: 4, stream: 2, element: 1000) - 1)
        cpu.addGaussianNoise(x, count: 1001, std: 0.5, seed: 4, stream: 3)
        XCTAssertEqual(try cpu.download(x)[7], u[7] + 0.5 * Philox.normal(seed: 4, stream: 3, element: 7), accuracy: 1e-6)
    }

    func testReplayGatherReinitAndScatter() throws {
        let rowSize = 3
        let store = try buffer((0..<12).map(Float.init))  // 4 rows
        let out = try cpu.makeBuffer(count: 3 * rowSize)
        cpu.gatherRows(store, indices: try cpu.makeBuffer([Int32(2), 0, 3]), reinit: try cpu.makeBuffer([Int32(0), 1, 0]),
                       rows: 3, rowSize: rowSize, seed: 8, stream: 1, out: out)
        let gathered = try cpu.download(out)
        XCTAssertEqual(Array(gathered[0..<3]), [6, 7, 8])
        XCTAssertEqual(Array(gathered[6..<9]), [9, 10, 11])
        for j in 0..<3 { XCTAssertEqual(gathered[3 + j], 2 * Philox.uniform(seed: 8, stream: 1, element: 3 + j) - 1) }
        cpu.scale(out, by: -1, count: 9)
        cpu.scatterRows(out, indices: try cpu.makeBuffer([Int32(1), -1, 0]), rows: 3, rowSize: rowSize, destination: store)
        XCTAssertEqual(try cpu.download(store), [-9, -10, -11, -6, -7, -8, 6, 7, 8, 9, 10, 11])
    }

    func testAdamMatchesPyTorchFormula() throws {
        let hyper = AdamHyperparameters(learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1)
        var p: [Double] = [0.5, -1, 2], m: [Double] = [0, 0, 0], v: [Double] = [0, 0, 0]
        let params = try buffer(p.map(Float.init)), mb = try cpu.makeBuffer(count: 3), vb = try cpu.makeBuffer(count: 3)
        cpu.fill(mb, value: 0, offset: 0, count: 3)
        cpu.fill(vb, value: 0, offset: 0, count: 3)
        for step in 1...3 {
            let g: [Double] = [0.1 * Double(step), -0.2, 0.3]
            cpu.adamUpdate(parameters: params, gradients: try buffer(g.map(Float.init)), firstMoment: mb, secondMoment: vb,
                           count: 3, hyper: hyper, step: step)
            for i in 0..<3 {
                let gi = g[i] + 0.1 * p[i]
                m[i] = 0.9 * m[i] + 0.1 * gi
                v[i] = 0.999 * v[i] + 0.001 * gi * gi
                let denom = (v[i].squareRoot() / (1 - pow(0.999, Double(step))).squareRoot()) + 1e-8
                p[i] -= 0.01 / (1 - pow(0.9, Double(step))) * m[i] / denom
            }
        }
        let result = try cpu.download(params)
        for i in 0..<3 { XCTAssertEqual(Double(result[i]), p[i], accuracy: 1e-6) }
    }

    func testSGDMomentum() throws {
        let params = try buffer([1, 2]), momentum = try buffer([0, 0])
        cpu.sgdMomentumUpdate(parameters: params, gradients: try buffer([0.5, -1]), momentumBuffer: momentum, count: 2,
                              learningRate: 0.1, momentum: 0.9, weightDecay: 0)
        cpu.sgdMomentumUpdate(parameters: params, gradients: try buffer([0.5, -1]), momentumBuffer: momentum, count: 2,
                              learningRate: 0.1, momentum: 0.9, weightDecay: 0)
        // buf1 = g, buf2 = 0.9 g + g = 1.9 g; p = p0 - 0.1 g - 0.19 g.
        let r = try cpu.download(params)
        XCTAssertEqual(r[0], 1 - 0.29 * 0.5, accuracy: 1e-6)
        XCTAssertEqual(r[1], 2 + 0.29, accuracy: 1e-6)
    }
}
