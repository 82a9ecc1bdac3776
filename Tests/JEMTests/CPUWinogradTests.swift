import XCTest
@testable import JEM
@testable import JEMBackend

/// The CPU backend's Winograd F(4x4, 3x3) path (3x3, stride-1, padding-1 convs, forward and
/// backward-data) and its stride-2 variant (3x3, stride 2, padding 1) against the naive float64 loops, on shapes that stress the tiling: channel
/// counts that are not multiples of the 16-lane blocks, heights and widths that leave partial
/// tiles, rows of 16+ pixels (the register-transpose path) with a tail, batches of 1 and 3.
///
/// Tolerance: every output is a sum of 36 * Cin products that pass through the input transform
/// (entries up to 5, sums of 4 terms per 1-D pass), the filter transform and the output transform
/// (entries up to 8), so float32 rounding of the intermediate terms is a few hundred ulps of the
/// largest term rather than of the result. Measured (JEM_PRINT_ERRORS=1 prints them): 1e-7 .. 7.5e-6
/// of the largest |output| for Cin 4 .. 64 and Cout up to 128 (im2col + GEMM: ~1e-7). 3e-5 leaves 4x headroom; a wrong tap, a
/// misplaced tile or a lost channel block is off by O(1). For SGLD and training this is far below
/// the noise the sampler adds (step noise 0.01 on inputs of ±1) and below the 1e-4 parity
/// tolerance that the OpenCL backend is held to against this backend.
final class CPUWinogradTests: XCTestCase {
    let cpu = CPUBackend()
    let reference = CPUBackend(winograd: false)
    static let tolerance = 3e-5

    static let shapes: [Conv2DShape] = [
        Conv2DShape(batch: 1, inChannels: 5, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 3, inChannels: 17, height: 11, width: 13, outChannels: 19, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 2, inChannels: 16, height: 16, width: 16, outChannels: 32, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 3, inChannels: 33, height: 18, width: 35, outChannels: 7, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 1, inChannels: 4, height: 1, width: 1, outChannels: 5, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 5, inChannels: 64, height: 8, width: 8, outChannels: 128, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 2, inChannels: 32, height: 32, width: 32, outChannels: 64, kernel: 3, stride: 1, padding: 1),
    ]

    func buffer(_ values: [Float]) throws -> DeviceBuffer { try cpu.makeBuffer(values) }

    func testShapesTakeTheWinogradPath() {
        for s in Self.shapes {
            XCTAssertTrue(cpu.winogradApplies(s, backward: false), "\(s)")
            XCTAssertTrue(cpu.winogradApplies(s, backward: true), "\(s)")
            XCTAssertFalse(reference.winogradApplies(s, backward: false))
        }
        let stem = Conv2DShape(batch: 2, inChannels: 3, height: 32, width: 32, outChannels: 16, kernel: 3, stride: 1,
                               padding: 1)
        XCTAssertFalse(cpu.winogradApplies(stem, backward: false), "3 input channels stay on im2col")
        XCTAssertFalse(cpu.winogradApplies(stem, backward: true), "nor does its backward-data (3 output channels)")
        for other in oddConvShapes where other.stride != 1 || other.kernel != 3 || other.padding != 1 {
            XCTAssertFalse(cpu.winogradApplies(other, backward: false), "\(other)")
            XCTAssertFalse(cpu.winogradApplies(other, backward: true), "\(other)")
        }
    }

    func testForwardMatchesNaiveLoops() throws {
        try checkForwardMatchesNaiveLoops(Self.shapes, firstStream: 0, label: "winograd fwd")
    }

    /// Forward with and without bias against the naive loops (`JEM_PRINT_ERRORS` prints the errors).
    func checkForwardMatchesNaiveLoops(_ shapes: [Conv2DShape], firstStream: UInt64, label: String,
                                       file: StaticString = #filePath, line: UInt = #line) throws {
        for (index, s) in shapes.enumerated() {
            let stream = UInt64(10 * index) + firstStream
            let x = randomArray(s.inputCount, stream: stream + 1)
            let w = randomArray(s.weightCount, stream: stream + 2, low: -0.3, high: 0.3)
            let b = randomArray(s.outChannels, stream: stream + 3)
            for bias in [b, nil] {
                let out = try cpu.makeBuffer(count: s.outputCount)
                cpu.conv2dForward(s, input: try buffer(x), weight: try buffer(w), bias: try bias.map(buffer), output: out)
                let error = maxRelativeError(try cpu.download(out), naiveConv(s, input: x, weight: w, bias: bias))
                if ProcessInfo.processInfo.environment["JEM_PRINT_ERRORS"] != nil { print("\(label) \(s) bias \(bias != nil): \(error)") }
                XCTAssertLessThan(error, Self.tolerance, "\(s), bias: \(bias != nil)", file: file, line: line)
            }
        }
    }

    func testBackwardDataMatchesNaiveLoopsAndAccumulates() throws {
        try checkBackwardDataMatchesNaiveLoops(Self.shapes, firstStream: 0, label: "winograd bwd")
    }

    /// Backward-data, plain and accumulating, against the naive loops.
    func checkBackwardDataMatchesNaiveLoops(_ shapes: [Conv2DShape], firstStream: UInt64, label: String,
                                            file: StaticString = #filePath, line: UInt = #line) throws {
        for (index, s) in shapes.enumerated() {
            let stream = UInt64(10 * index) + firstStream
            let dy = randomArray(s.outputCount, stream: stream + 4)
            let w = randomArray(s.weightCount, stream: stream + 5, low: -0.3, high: 0.3)
            let expected = naiveConvBackwardData(s, gradOutput: dy, weight: w)
            let dx = try cpu.makeBuffer(count: s.inputCount)
            cpu.conv2dBackwardData(s, gradOutput: try buffer(dy), weight: try buffer(w), gradInput: dx, accumulate: false)
            let error = maxRelativeError(try cpu.download(dx), expected)
            if ProcessInfo.processInfo.environment["JEM_PRINT_ERRORS"] != nil { print("\(label) \(s): \(error)") }
            XCTAssertLessThan(error, Self.tolerance, "\(s)", file: file, line: line)

            let start = randomArray(s.inputCount, stream: stream + 6)
            let sum = try buffer(start)
            cpu.conv2dBackwardData(s, gradOutput: try buffer(dy), weight: try buffer(w), gradInput: sum, accumulate: true)
            let want = zip(start, expected).map { $0 + $1 }
            XCTAssertLessThan(maxRelativeError(try cpu.download(sum), want), Self.tolerance, "\(s), accumulate",
                              file: file, line: line)
        }
    }

    /// Weight gradients by F(3x3, 4x4): sums over every tile of every image, so the relative error
    /// is of the same order as the forward's (the transforms are the same size).
    func testFilterGradientMatchesNaiveLoopsAndAccumulates() throws {
        for s in Self.shapes { XCTAssertTrue(cpu.winogradFilterGradientApplies(s), "\(s)") }
        try checkFilterGradientMatchesNaiveLoops(Self.shapes, firstStream: 0, label: "winograd filter")
    }

    /// Weight and bias gradients, plain and accumulating, against the naive loops.
    func checkFilterGradientMatchesNaiveLoops(_ shapes: [Conv2DShape], firstStream: UInt64, label: String,
                                              file: StaticString = #filePath, line: UInt = #line) throws {
        for (index, s) in shapes.enumerated() {
            let stream = UInt64(10 * index) + firstStream
            let x = randomArray(s.inputCount, stream: stream + 7), dy = randomArray(s.outputCount, stream: stream + 8)
            let expected = naiveConvBackwardFilter(s, input: x, gradOutput: dy)
            let dw = try cpu.makeBuffer(count: s.weightCount), db = try cpu.makeBuffer(count: s.outChannels)
            cpu.conv2dBackwardFilter(s, input: try buffer(x), gradOutput: try buffer(dy), gradWeight: dw, gradBias: db,
                                     accumulate: false)
            let error = maxRelativeError(try cpu.download(dw), expected)
            if ProcessInfo.processInfo.environment["JEM_PRINT_ERRORS"] != nil { print("\(label) \(s): \(error)") }
            XCTAssertLessThan(error, Self.tolerance, "\(s)", file: file, line: line)
            var biasSums = [Float](repeating: 0, count: s.outChannels)
            let spatial = s.outHeight * s.outWidth
            for n in 0..<s.batch {
                for o in 0..<s.outChannels {
                    for i in 0..<spatial { biasSums[o] += dy[(n * s.outChannels + o) * spatial + i] }
                }
            }
            XCTAssertLessThan(maxRelativeError(try cpu.download(db), biasSums), 1e-5, "bias \(s)", file: file, line: line)

            let start = randomArray(s.weightCount, stream: stream + 9)
            let sum = try buffer(start)
            cpu.conv2dBackwardFilter(s, input: try buffer(x), gradOutput: try buffer(dy), gradWeight: sum, gradBias: nil,
                                     accumulate: true)
            XCTAssertLessThan(maxRelativeError(try cpu.download(sum), zip(start, expected).map { $0 + $1 }),
                              Self.tolerance, "\(s), accumulate", file: file, line: line)
        }
    }

    // MARK: Stride 2

    /// 3x3, stride-2, padding-1 shapes for the stride-2 Winograd (even points as they are, F(4,2)
    /// on the odd ones): exact tiles, odd heights and widths (partial tiles, the last odd input
    /// column read by no tap's right neighbour), channel counts off the 16-lane blocks, rows of
    /// 16+ pixels with a tail, a 1x1 input, the model's two shapes.
    static let strideTwoShapes: [Conv2DShape] = [
        Conv2DShape(batch: 1, inChannels: 16, height: 8, width: 8, outChannels: 16, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 3, inChannels: 17, height: 11, width: 13, outChannels: 19, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 2, inChannels: 48, height: 33, width: 35, outChannels: 20, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 2, inChannels: 16, height: 2, width: 3, outChannels: 33, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 2, inChannels: 24, height: 1, width: 1, outChannels: 16, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 2, inChannels: 64, height: 32, width: 32, outChannels: 64, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 17, inChannels: 128, height: 16, width: 16, outChannels: 128, kernel: 3, stride: 2,
                    padding: 1),
    ]

    func testStrideTwoShapesTakeTheWinogradPath() {
        for s in Self.strideTwoShapes {
            XCTAssertTrue(cpu.winogradStride2Applies(s), "\(s)")
            XCTAssertFalse(cpu.winogradApplies(s, backward: false), "\(s)")
            XCTAssertFalse(reference.winogradStride2Applies(s), "\(s)")
        }
        let narrow = Conv2DShape(batch: 2, inChannels: 15, height: 16, width: 16, outChannels: 32, kernel: 3, stride: 2,
                                 padding: 1)
        XCTAssertFalse(cpu.winogradStride2Applies(narrow), "fewer than 16 input channels stay on im2col")
        for other in oddConvShapes where other.stride != 2 || other.kernel != 3 || other.padding != 1 {
            XCTAssertFalse(cpu.winogradStride2Applies(other), "\(other)")
        }
    }

    func testStrideTwoForwardMatchesNaiveLoops() throws {
        try checkForwardMatchesNaiveLoops(Self.strideTwoShapes, firstStream: 500, label: "winograd s2 fwd")
    }

    /// The transposed forward: the same transforms, summed over every tile of every image.
    func testStrideTwoFilterGradientMatchesNaiveLoopsAndAccumulates() throws {
        // The Winograd weight gradient serves outputs of 16x16 and more: the model's 64-channel
        // conv and a wide odd shape here, the rest of the shapes take im2col (checked too).
        let winograd = Self.strideTwoShapes.filter { cpu.winogradStride2FilterGradientApplies($0) }
        XCTAssertEqual(winograd.map(\.inChannels), [48, 64])
        try checkFilterGradientMatchesNaiveLoops(Self.strideTwoShapes, firstStream: 500, label: "winograd s2 filter")
        // The kernel itself on every shape (partial tiles, channels off the 16-lane blocks, 1x1 input).
        for (index, s) in Self.strideTwoShapes.enumerated() {
            let x = randomArray(s.inputCount, stream: UInt64(600 + index)), dy = randomArray(s.outputCount, stream: 7)
            let bx = try buffer(x) as! CPUBuffer, bdy = try buffer(dy) as! CPUBuffer
            let dw = try cpu.makeBuffer(count: s.weightCount) as! CPUBuffer
            cpu.winogradStride2FilterGradient(s, input: bx.floats, leaky: nil, gradOutput: bdy.floats,
                                              gradWeight: dw.floats, accumulate: false)
            let error = maxRelativeError(try cpu.download(dw), naiveConvBackwardFilter(s, input: x, gradOutput: dy))
            XCTAssertLessThan(error, Self.tolerance, "direct \(s)")
        }
    }

    func testStrideTwoBackwardDataMatchesNaiveLoopsAndAccumulates() throws {
        try checkBackwardDataMatchesNaiveLoops(Self.strideTwoShapes, firstStream: 500, label: "winograd s2 bwd")
    }

    /// The model's own convs against the im2col path (which the naive tests pin down to ~1e-7).
    func testModelConvsMatchIm2col() throws {
        let shapes = [
            Conv2DShape(batch: 3, inChannels: 16, height: 32, width: 32, outChannels: 32, kernel: 3, stride: 1, padding: 1),
            Conv2DShape(batch: 3, inChannels: 32, height: 32, width: 32, outChannels: 32, kernel: 3, stride: 1, padding: 1),
            Conv2DShape(batch: 3, inChannels: 64, height: 16, width: 16, outChannels: 128, kernel: 3, stride: 1, padding: 1),
            Conv2DShape(batch: 3, inChannels: 3, height: 32, width: 32, outChannels: 16, kernel: 3, stride: 1, padding: 1),
            // 2 MB of output: written with streaming stores.
            Conv2DShape(batch: 8, inChannels: 32, height: 32, width: 32, outChannels: 64, kernel: 3, stride: 1, padding: 1),
            // The stride-2 Winograd (forward, backward-data and weight gradients), the first with
            // 2 MB of input gradient (streaming stores).
            Conv2DShape(batch: 8, inChannels: 64, height: 32, width: 32, outChannels: 64, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 3, inChannels: 128, height: 16, width: 16, outChannels: 128, kernel: 3, stride: 2,
                        padding: 1),
        ]
        for s in shapes {
            let x = randomArray(s.inputCount, stream: 1), w = randomArray(s.weightCount, stream: 2, low: -0.2, high: 0.2)
            let b = randomArray(s.outChannels, stream: 3), dy = randomArray(s.outputCount, stream: 4)
            var results: [[Float]] = []
            for backend in [cpu, reference] {
                let out = try backend.makeBuffer(count: s.outputCount), dx = try backend.makeBuffer(count: s.inputCount)
                backend.conv2dForward(s, input: try backend.makeBuffer(x), weight: try backend.makeBuffer(w),
                                      bias: try backend.makeBuffer(b), output: out)
                backend.conv2dBackwardData(s, gradOutput: try backend.makeBuffer(dy), weight: try backend.makeBuffer(w),
                                           gradInput: dx, accumulate: false)
                let dw = try backend.makeBuffer(count: s.weightCount)
                backend.conv2dBackwardFilter(s, input: try backend.makeBuffer(x), gradOutput: try backend.makeBuffer(dy),
                                             gradWeight: dw, gradBias: nil, accumulate: false)
                results.append(try backend.download(out))
                results.append(try backend.download(dx))
                results.append(try backend.download(dw))
            }
            XCTAssertLessThan(maxRelativeError(results[0], results[3]), Self.tolerance, "forward \(s)")
            XCTAssertLessThan(maxRelativeError(results[1], results[4]), Self.tolerance, "backward data \(s)")
            XCTAssertLessThan(maxRelativeError(results[2], results[5]), Self.tolerance, "backward filter \(s)")
        }
    }

    /// A residual block's last conv with its 1x1 projection shortcut added as the conv is stored
    /// (`conv2dForwardAddingProjection`), and its first conv's input gradient with the shortcut's
    /// (`conv2dBackwardDataAddingProjection`), against the composed ops of the reference (im2col,
    /// separate activation): stride-1 and stride-2 blocks, partial chunks and im2col groups (the
    /// 4x4 outputs: 8 images per shortcut GEMM), outputs big enough for streaming stores, and an
    /// output that already holds values (it is overwritten, not added to).
    func testConvAddingProjectionMatchesComposedOps() throws {
        let slope: Float = 0.2, activation = Activation.leakyReLU(slope: slope)
        // (batch, block input channels, output channels, height, width, stride)
        let blocks = [(3, 8, 12, 9, 10, 1), (5, 16, 20, 12, 14, 2), (11, 16, 24, 8, 8, 2), (4, 16, 32, 32, 32, 1),
                      (8, 32, 64, 32, 32, 2)]
        for (index, (batch, cin, cout, h, w, stride)) in blocks.enumerated() {
            let conv1 = Conv2DShape(batch: batch, inChannels: cin, height: h, width: w, outChannels: cout, kernel: 3,
                                    stride: 1, padding: 1)
            let conv2 = Conv2DShape(batch: batch, inChannels: cout, height: h, width: w, outChannels: cout, kernel: 3,
                                    stride: stride, padding: 1)
            let projection = Conv2DShape(batch: batch, inChannels: cin, height: h, width: w, outChannels: cout,
                                         kernel: 1, stride: stride, padding: 0)
            XCTAssertTrue(stride == 1 ? cpu.winogradApplies(conv2, backward: false) : cpu.winogradStride2Applies(conv2))
            XCTAssertTrue(cpu.winogradApplies(conv1, backward: true))
            let seed = UInt64(20 * index + 300)
            let x = randomArray(conv1.inputCount, stream: seed, low: -2, high: 2)
            let hidden = randomArray(conv2.inputCount, stream: seed + 1, low: -2, high: 2)
            let w1 = randomArray(conv1.weightCount, stream: seed + 2, low: -0.2, high: 0.2)
            let w2 = randomArray(conv2.weightCount, stream: seed + 3, low: -0.2, high: 0.2)
            let ws = randomArray(projection.weightCount, stream: seed + 4, low: -0.5, high: 0.5)
            let b2 = randomArray(cout, stream: seed + 5), bs = randomArray(cout, stream: seed + 6)
            let dy = randomArray(conv2.outputCount, stream: seed + 7)
            let dHidden = randomArray(conv1.outputCount, stream: seed + 8)
            let stale = randomArray(max(conv2.outputCount, conv1.inputCount), stream: seed + 9)
            var results: [[Float]] = []
            for backend in [cpu, CPUBackend(winograd: false, fuseActivations: false)] {
                func make(_ values: [Float]) throws -> DeviceBuffer { try backend.makeBuffer(values) }
                let out = try make(stale), dx = try make(stale)
                backend.conv2dForwardAddingProjection(
                    conv2, input: try make(hidden), activation: activation,
                    scratch: try backend.makeBuffer(count: conv2.inputCount), weight: try make(w2), bias: try make(b2),
                    projection: projection, projectionInput: try make(x), projectionWeight: try make(ws),
                    projectionBias: try make(bs), projectionScratch: try backend.makeBuffer(count: projection.outputCount),
                    output: out)
                backend.conv2dBackwardDataAddingProjection(
                    conv1, gradOutput: try make(dHidden), weight: try make(w1), input: try make(x),
                    activation: activation, scratch: try backend.makeBuffer(count: conv1.inputCount),
                    projection: projection, projectionGradOutput: try make(dy), projectionWeight: try make(ws),
                    gradInput: dx)
                results.append(try backend.download(out, offset: 0, count: conv2.outputCount))
                results.append(try backend.download(dx, offset: 0, count: conv1.inputCount))
            }
            XCTAssertLessThan(maxRelativeError(results[0], results[2]), Self.tolerance, "forward \(conv2)")
            XCTAssertLessThan(maxRelativeError(results[1], results[3]), Self.tolerance, "backward data \(conv1)")
        }
    }

    /// The transformed filters are kept between calls (`WinogradFilterCache`): after the weights
    /// change in place (one weight by 1e-3, then all of them), forward and backward-data give
    /// the bits of a backend that never saw the old weights; with no room in the cache (every call
    /// transforms into scratch) the bits are the same too.
    func testCachedFiltersFollowWeightUpdates() throws {
        let shapes = [
            Conv2DShape(batch: 3, inChannels: 16, height: 12, width: 12, outChannels: 24, kernel: 3, stride: 1, padding: 1),
            Conv2DShape(batch: 3, inChannels: 32, height: 16, width: 16, outChannels: 32, kernel: 3, stride: 2, padding: 1),
        ]
        for s in shapes {
            let cached = CPUBackend(), uncached = CPUBackend()
            uncached.winogradFilters = WinogradFilterCache(capacityBytes: 0)
            let x = randomArray(s.inputCount, stream: 1), dy = randomArray(s.outputCount, stream: 4)
            let first = randomArray(s.weightCount, stream: 2, low: -0.2, high: 0.2)
            var nudged = first
            nudged[s.weightCount / 2] += 1e-3
            let second = randomArray(s.weightCount, stream: 3, low: -0.2, high: 0.2)
            func run(_ backend: CPUBackend, _ w: DeviceBuffer) throws -> [Float] {
                let out = try backend.makeBuffer(count: s.outputCount), dx = try backend.makeBuffer(count: s.inputCount)
                backend.conv2dForward(s, input: try backend.makeBuffer(x), weight: w, bias: nil, output: out)
                backend.conv2dBackwardData(s, gradOutput: try backend.makeBuffer(dy), weight: w, gradInput: dx,
                                           accumulate: false)
                return try backend.download(out) + backend.download(dx)
            }
            let w = try cached.makeBuffer(first), u = try uncached.makeBuffer(first)
            var before = try run(cached, w)
            XCTAssertEqual(before, try run(uncached, u), "\(s): cache full vs none")
            XCTAssertEqual(before, try run(cached, w), "\(s): a hit gives the same bits")
            for weights in [nudged, second] {
                try cached.upload(weights, to: w, offset: 0)
                try uncached.upload(weights, to: u, offset: 0)
                let after = try run(cached, w)
                XCTAssertNotEqual(after, before, "\(s): the new weights are used")
                let fresh = CPUBackend()
                XCTAssertEqual(after, try run(fresh, try fresh.makeBuffer(weights)), "\(s): as a fresh backend")
                XCTAssertEqual(after, try run(uncached, u), "\(s): as without the cache")
                before = after
            }
        }
    }

    /// Same inputs, same bits: the chunking is fixed, whatever the threads' timing (the forward and
    /// backward-data blocks go to whichever thread is free; Winograd and im2col shapes).
    func testRepeatable() throws {
        for s in [Conv2DShape(batch: 7, inChannels: 24, height: 12, width: 20, outChannels: 40, kernel: 3, stride: 1,
                              padding: 1),
                  Conv2DShape(batch: 7, inChannels: 24, height: 16, width: 16, outChannels: 40, kernel: 3, stride: 2,
                              padding: 1),
                  Conv2DShape(batch: 9, inChannels: 12, height: 8, width: 8, outChannels: 20, kernel: 1, stride: 1,
                              padding: 0)] {
            try checkRepeatable(s)
        }
    }

    private func checkRepeatable(_ s: Conv2DShape) throws {
        let x = try buffer(randomArray(s.inputCount, stream: 1)), w = try buffer(randomArray(s.weightCount, stream: 2))
        let b = try buffer(randomArray(s.outChannels, stream: 3)), dy = try buffer(randomArray(s.outputCount, stream: 4))
        var outputs: [[Float]] = []
        for _ in 0..<3 {
            let out = try cpu.makeBuffer(count: s.outputCount), dx = try cpu.makeBuffer(count: s.inputCount)
            cpu.conv2dForward(s, input: x, weight: w, bias: b, output: out)
            cpu.conv2dBackwardData(s, gradOutput: dy, weight: w, gradInput: dx, accumulate: false)
            let dw = try cpu.makeBuffer(count: s.weightCount)
            cpu.conv2dBackwardFilter(s, input: x, gradOutput: dy, gradWeight: dw, gradBias: nil, accumulate: false)
            outputs.append(try cpu.download(out) + cpu.download(dx) + cpu.download(dw))
        }
        XCTAssertEqual(outputs[0], outputs[1], "\(s)")
        XCTAssertEqual(outputs[0], outputs[2], "\(s)")
    }
}
