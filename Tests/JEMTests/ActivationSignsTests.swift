import XCTest
@testable import JEM
@testable import JEMBackend

/// `ActivationSigns`: the forward conv of an activated input writes the signs of its input, and
/// the backward-data of that input reads them instead of the input tensor. On every CPU path
/// (stride-1 and stride-2 Winograd, im2col, 1x1, unfused swish) the results must be bit for bit
/// those without signs, the signs must be x > 0 in the documented layout, and the Winograd
/// input gradients must really read them.
final class ActivationSignsTests: XCTestCase {
    let cpu = CPUBackend()

    /// Widths with and without a tail of less than 16 pixels, partial tiles, channels that are not
    /// multiples of 16, and the paths that write the signs in a pass of their own.
    static let shapes: [Conv2DShape] = [
        Conv2DShape(batch: 3, inChannels: 16, height: 8, width: 20, outChannels: 16, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 2, inChannels: 32, height: 16, width: 16, outChannels: 24, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 3, inChannels: 5, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 1, padding: 1),
        Conv2DShape(batch: 3, inChannels: 17, height: 15, width: 16, outChannels: 20, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 2, inChannels: 16, height: 32, width: 30, outChannels: 18, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 5, inChannels: 4, height: 16, width: 16, outChannels: 7, kernel: 3, stride: 2, padding: 1),
        Conv2DShape(batch: 2, inChannels: 4, height: 5, width: 6, outChannels: 3, kernel: 1, stride: 1, padding: 0),
    ]

    func buffer(_ values: [Float]) throws -> DeviceBuffer { try cpu.makeBuffer(values) }

    /// The sign words as the layout documents them, from the input values.
    func expectedSigns(_ x: [Float], _ s: Conv2DShape) -> [UInt16] {
        let perRow = (s.width + 15) / 16, rows = s.batch * s.inChannels * s.height
        var words = [UInt16](repeating: 0, count: rows * perRow)
        for r in 0..<rows {
            for i in 0..<s.width where x[r * s.width + i] > 0 { words[r * perRow + i / 16] |= 1 << UInt16(i % 16) }
        }
        return words
    }

    func words(_ b: DeviceBuffer, count: Int) throws -> [UInt16] {
        let floats = try cpu.download(b)
        return floats.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self).prefix(count)) }
    }

    func testForwardWritesTheSignsAndTheInputGradientIsUnchanged() throws {
        for (index, s) in Self.shapes.enumerated() {
            for activation in [Activation.leakyReLU(slope: 0.2), .swish] {
                let seed = UInt64(10 * index + 500)
                var xValues = randomArray(s.inputCount, stream: seed, low: -2, high: 2)
                xValues[0] = 0; xValues[s.inputCount - 1] = -0   // zero has no sign bit (x > 0 is false)
                let x = try buffer(xValues)
                let w = try buffer(randomArray(s.weightCount, stream: seed + 1))
                let b = try buffer(randomArray(s.outChannels, stream: seed + 2))
                let dy = try buffer(randomArray(s.outputCount, stream: seed + 3))
                let start = randomArray(s.inputCount, stream: seed + 4)
                let scratch = try cpu.makeBuffer(count: s.inputCount)
                let signs = try buffer(randomArray(ActivationSigns.floatCount(s), stream: seed + 5))   // stale bits
                var results: [[Float]] = []
                for withSigns in [false, true] {
                    let y = try cpu.makeBuffer(count: s.outputCount), dx = try cpu.makeBuffer(count: s.inputCount)
                    let dxSum = try buffer(start)
                    let kept = withSigns ? signs : nil
                    cpu.conv2dForward(s, input: x, activation: activation, scratch: scratch, weight: w, bias: b,
                                      output: y, inputSigns: kept)
                    cpu.conv2dBackwardData(s, gradOutput: dy, weight: w, input: x, activation: activation,
                                           scratch: scratch, gradInput: dx, accumulate: false, inputSigns: kept)
                    cpu.conv2dBackwardData(s, gradOutput: dy, weight: w, input: x, activation: activation,
                                           scratch: scratch, gradInput: dxSum, accumulate: true, inputSigns: kept)
                    results += [try cpu.download(y), try cpu.download(dx), try cpu.download(dxSum)]
                }
                let what = "\(s), \(activation)"
                XCTAssertEqual(results[0], results[3], "forward \(what)")
                XCTAssertEqual(results[1], results[4], "backward data \(what)")
                XCTAssertEqual(results[2], results[5], "backward data, accumulate \(what)")
                let want = expectedSigns(xValues, s)
                XCTAssertEqual(try words(signs, count: want.count), want, "signs \(what)")
            }
        }
    }

    /// The Winograd input gradients read the signs, not the input: given the signs of another
    /// input, they give that input's gradient.
    func testWinogradInputGradientsReadTheSigns() throws {
        let activation = Activation.leakyReLU(slope: 0.2)
        for (index, s) in Self.shapes.enumerated()
        where cpu.winogradApplies(s, backward: true) || cpu.winogradStride2Applies(s) {
            let seed = UInt64(10 * index + 700)
            let x = try buffer(randomArray(s.inputCount, stream: seed, low: -2, high: 2))
            let other = try buffer(randomArray(s.inputCount, stream: seed + 1, low: -2, high: 2))
            let w = try buffer(randomArray(s.weightCount, stream: seed + 2))
            let dy = try buffer(randomArray(s.outputCount, stream: seed + 3))
            let scratch = try cpu.makeBuffer(count: s.inputCount)
            let signs = try cpu.makeBuffer(count: ActivationSigns.floatCount(s))
            cpu.conv2dForward(s, input: other, activation: activation, scratch: scratch, weight: w, bias: nil,
                              output: try cpu.makeBuffer(count: s.outputCount), inputSigns: signs)
            let fromSigns = try cpu.makeBuffer(count: s.inputCount), fromOther = try cpu.makeBuffer(count: s.inputCount)
            let fromX = try cpu.makeBuffer(count: s.inputCount)
            cpu.conv2dBackwardData(s, gradOutput: dy, weight: w, input: x, activation: activation, scratch: scratch,
                                   gradInput: fromSigns, accumulate: false, inputSigns: signs)
            cpu.conv2dBackwardData(s, gradOutput: dy, weight: w, input: other, activation: activation,
                                   scratch: scratch, gradInput: fromOther, accumulate: false)
            cpu.conv2dBackwardData(s, gradOutput: dy, weight: w, input: x, activation: activation, scratch: scratch,
                                   gradInput: fromX, accumulate: false)
            XCTAssertEqual(try cpu.download(fromSigns), try cpu.download(fromOther), "\(s)")
            XCTAssertNotEqual(try cpu.download(fromSigns), try cpu.download(fromX), "\(s)")
        }
    }

    /// A residual block's fused projection ops keep the signs too: the block's conv2 forward (with
    /// the shortcut added) writes the signs of its input, conv1's input gradient (with the
    /// shortcut's added) reads those of the block input, bit for bit as without them.
    func testProjectionOpsKeepTheSigns() throws {
        let activation = Activation.leakyReLU(slope: 0.2)
        for (index, (batch, cin, cout, h, w, stride)) in [(3, 16, 20, 12, 14, 2), (4, 16, 32, 16, 16, 1)].enumerated() {
            let conv1 = Conv2DShape(batch: batch, inChannels: cin, height: h, width: w, outChannels: cout, kernel: 3,
                                    stride: 1, padding: 1)
            let conv2 = Conv2DShape(batch: batch, inChannels: cout, height: h, width: w, outChannels: cout, kernel: 3,
                                    stride: stride, padding: 1)
            let projection = Conv2DShape(batch: batch, inChannels: cin, height: h, width: w, outChannels: cout,
                                         kernel: 1, stride: stride, padding: 0)
            let seed = UInt64(20 * index + 900)
            let xValues = randomArray(conv1.inputCount, stream: seed, low: -2, high: 2)
            let hiddenValues = randomArray(conv2.inputCount, stream: seed + 1, low: -2, high: 2)
            let x = try buffer(xValues), hidden = try buffer(hiddenValues)
            let w1 = try buffer(randomArray(conv1.weightCount, stream: seed + 2, low: -0.2, high: 0.2))
            let w2 = try buffer(randomArray(conv2.weightCount, stream: seed + 3, low: -0.2, high: 0.2))
            let ws = try buffer(randomArray(projection.weightCount, stream: seed + 4, low: -0.5, high: 0.5))
            let b2 = try buffer(randomArray(cout, stream: seed + 5)), bs = try buffer(randomArray(cout, stream: seed + 6))
            let dy = try buffer(randomArray(conv2.outputCount, stream: seed + 7))
            let dHidden = try buffer(randomArray(conv1.outputCount, stream: seed + 8))
            let xSigns = try cpu.makeBuffer(count: ActivationSigns.floatCount(conv1))
            let hiddenSigns = try cpu.makeBuffer(count: ActivationSigns.floatCount(conv2))
            var results: [[Float]] = []
            for withSigns in [false, true] {
                let out = try cpu.makeBuffer(count: conv2.outputCount), dx = try cpu.makeBuffer(count: conv1.inputCount)
                cpu.conv2dForward(conv1, input: x, activation: activation,
                                  scratch: try cpu.makeBuffer(count: conv1.inputCount), weight: w1, bias: nil,
                                  output: try cpu.makeBuffer(count: conv1.outputCount),
                                  inputSigns: withSigns ? xSigns : nil)
                cpu.conv2dForwardAddingProjection(
                    conv2, input: hidden, activation: activation, scratch: try cpu.makeBuffer(count: conv2.inputCount),
                    weight: w2, bias: b2, projection: projection, projectionInput: x, projectionWeight: ws,
                    projectionBias: bs, projectionScratch: try cpu.makeBuffer(count: projection.outputCount),
                    output: out, inputSigns: withSigns ? hiddenSigns : nil)
                cpu.conv2dBackwardDataAddingProjection(
                    conv1, gradOutput: dHidden, weight: w1, input: x, activation: activation,
                    scratch: try cpu.makeBuffer(count: conv1.inputCount), projection: projection,
                    projectionGradOutput: dy, projectionWeight: ws, gradInput: dx,
                    inputSigns: withSigns ? xSigns : nil)
                results += [try cpu.download(out), try cpu.download(dx)]
            }
            XCTAssertEqual(results[0], results[2], "forward \(conv2)")
            XCTAssertEqual(results[1], results[3], "backward data \(conv1)")
            XCTAssertEqual(try words(hiddenSigns, count: expectedSigns(hiddenValues, conv2).count),
                           expectedSigns(hiddenValues, conv2), "signs of hidden \(conv2)")
            XCTAssertEqual(try words(xSigns, count: expectedSigns(xValues, conv1).count), expectedSigns(xValues, conv1),
                           "signs of x \(conv1)")
        }
    }
}
