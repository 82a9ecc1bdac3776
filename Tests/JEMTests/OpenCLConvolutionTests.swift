import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The OpenCL convolutions (im2col / col2im and the conv_gemm register-tiled GEMM of Kernels/convolution.cl)
/// against the CPU backend on shapes that reach every path of conv_gemm: whole 4 x 64 tiles, row
/// and column edge tiles, tiles that are only edge, the 1x1 stride-1 path without im2col, batch 1
/// and 3, odd channel counts and image sizes, stride 1 and 2, bias on/off, accumulate on/off, and
/// the activated-input forms with both activations. Small shapes: the whole class runs in seconds.
final class OpenCLConvolutionTests: XCTestCase {
    nonisolated(unsafe) private static var shared: OpenCLBackend?

    private func backend() throws -> OpenCLBackend {
        if let shared = Self.shared { return shared }
        let made = try OpenCLBackend(selection: .first)
        Self.shared = made
        return made
    }

    /// (shape, bias, accumulate) cases. Spatial sizes 81, 64, 144, 16 and 49 against the 64-column
    /// tile; output channels 6, 9, 5, 8, 10 and patch rows 45, 63, 54, 13, 36 against the 4-row tile.
    static let cases: [(Conv2DShape, Bool, Bool)] = [
        (Conv2DShape(batch: 1, inChannels: 5, height: 9, width: 9, outChannels: 6, kernel: 3, stride: 1, padding: 1),
         true, false),
        (Conv2DShape(batch: 3, inChannels: 7, height: 8, width: 8, outChannels: 9, kernel: 3, stride: 1, padding: 1),
         false, true),
        (Conv2DShape(batch: 3, inChannels: 6, height: 16, width: 16, outChannels: 5, kernel: 3, stride: 2, padding: 1),
         true, true),
        (Conv2DShape(batch: 2, inChannels: 13, height: 12, width: 12, outChannels: 8, kernel: 1, stride: 1, padding: 0),
         true, false),
        (Conv2DShape(batch: 2, inChannels: 13, height: 12, width: 12, outChannels: 8, kernel: 1, stride: 1, padding: 0),
         false, true),
        (Conv2DShape(batch: 1, inChannels: 4, height: 7, width: 7, outChannels: 10, kernel: 3, stride: 2, padding: 1),
         false, false),
        (Conv2DShape(batch: 3, inChannels: 3, height: 15, width: 13, outChannels: 4, kernel: 1, stride: 2, padding: 0),
         true, true),
        (Conv2DShape(batch: 1, inChannels: 9, height: 16, width: 8, outChannels: 16, kernel: 3, stride: 1, padding: 1),
         true, true),
    ]

    private func run(_ body: (ParityHarness) throws -> Void) throws -> [ParityResult] {
        let device = try backend()
        let h = ParityHarness(reference: CPUBackend(), candidate: device, seed: 7)
        try body(h)
        try device.synchronize()
        return h.results
    }

    private func assertAllPass(_ results: [ParityResult], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(results.isEmpty, file: file, line: line)
        for r in results {
            print("  \(r.passed ? "pass" : "FAIL")  \(r.name)  error \(String(format: "%.2e", r.maxRelativeError))  \(r.detail)")
            XCTAssertTrue(r.passed, "\(r.name) [\(r.detail)]: error \(r.maxRelativeError) above \(r.tolerance)",
                          file: file, line: line)
        }
    }

    /// Forward, backward-data and backward-filter of every case on both backends, compared.
    static func checkAllConvOps(_ h: ParityHarness, label: String) throws {
        for (s, withBias, accumulate) in cases {
            let what = "\(s)" + (withBias ? ", bias" : "") + (accumulate ? ", accumulate" : "") + label
            let input = try h.pair(h.random(s.inputCount)), weight = try h.pair(h.random(s.weightCount))
            let bias = try h.pair(h.random(s.outChannels)), output = try h.pair(h.random(s.outputCount))
            h.both { b, p in
                b.conv2dForward(s, input: p(input), weight: p(weight), bias: withBias ? p(bias) : nil, output: p(output))
            }
            try h.check("conv2dForward", output, what)
            let gradOutput = try h.pair(h.random(s.outputCount)), gradInput = try h.pair(h.random(s.inputCount))
            h.both { b, p in
                b.conv2dBackwardData(s, gradOutput: p(gradOutput), weight: p(weight), gradInput: p(gradInput),
                                     accumulate: accumulate)
            }
            try h.check("conv2dBackwardData", gradInput, what)
            let gradWeight = try h.pair(h.random(s.weightCount)), gradBias = try h.pair(h.random(s.outChannels))
            h.both { b, p in
                b.conv2dBackwardFilter(s, input: p(input), gradOutput: p(gradOutput), gradWeight: p(gradWeight),
                                       gradBias: withBias ? p(gradBias) : nil, accumulate: accumulate)
            }
            try h.check("conv2dBackwardFilter", gradWeight, what)
        }
    }

    func testForwardAndBackwardDataMatchTheCPUBackend() throws {
        let results = try run { h in
            try Self.checkAllConvOps(h, label: "")
        }
        assertAllPass(results)
    }

    /// The GPU tile (4 x 4 per work-item in float4, work-groups of 4 x 16) compiled and run on this
    /// device, with the other filter-gradient path (CLBlast over chunks on PoCL), so that what a GPU
    /// would run is checked here too.
    func testGPUTileMatchesTheCPUBackend() throws {
        let device = try OpenCLBackend(selection: .first)
        device.convGemmTile = .gpu
        device.filterGradientOnConvGemm = !device.filterGradientOnConvGemm    // the other filter-gradient path
        let h = ParityHarness(reference: CPUBackend(), candidate: device, seed: 9)
        try Self.checkAllConvOps(h, label: ", GPU tile")
        try device.synchronize()
        assertAllPass(h.results)
    }

    func testActivatedInputFormsMatchTheCPUBackend() throws {
        let results = try run { h in
            for (s, _, accumulate) in Self.cases.prefix(3) {
                for activation in [Activation.leakyReLU(slope: 0.2), .swish] {
                    let what = "\(s), \(activation)" + (accumulate ? ", accumulate" : "")
                    let input = try h.pair(h.random(s.inputCount, -2, 2)), weight = try h.pair(h.random(s.weightCount))
                    let bias = try h.pair(h.random(s.outChannels)), output = try h.pair(h.random(s.outputCount))
                    let scratch = try h.pair(h.random(s.inputCount))
                    h.both { b, p in
                        b.conv2dForward(s, input: p(input), activation: activation, scratch: p(scratch),
                                        weight: p(weight), bias: p(bias), output: p(output))
                    }
                    try h.check("conv2dForward of activated input", output, what)
                    let gradOutput = try h.pair(h.random(s.outputCount))
                    let gradInput = try h.pair(h.random(s.inputCount))
                    h.both { b, p in
                        b.conv2dBackwardData(s, gradOutput: p(gradOutput), weight: p(weight), input: p(input),
                                             activation: activation, scratch: p(scratch), gradInput: p(gradInput),
                                             accumulate: accumulate)
                    }
                    try h.check("conv2dBackwardData of activated input", gradInput, what)
                }
            }
        }
        assertAllPass(results)
    }

    /// The comparison can fail: one weight changed by 1e-2 on the device side only is caught at
    /// the suite's tolerance, in a whole tile and in an edge tile of the output.
    func testAPerturbedWeightIsCaught() throws {
        let results = try run { h in
            let s = Self.cases[0].0
            var values = h.random(s.weightCount)
            let input = try h.pair(h.random(s.inputCount))
            let reference = try h.reference.makeBuffer(values)
            values[s.patchSize * 5 + 4] += 1e-2    // output channel 5: the row edge tile
            let weight = ParityHarness.Pair(reference: reference, candidate: try h.candidate.makeBuffer(values))
            let output = try h.pair(h.random(s.outputCount))
            h.both { b, p in b.conv2dForward(s, input: p(input), weight: p(weight), bias: nil, output: p(output)) }
            try h.check("conv2dForward, perturbed weight", output, "\(s)")
        }
        XCTAssertEqual(results.count, 1)
        XCTAssertFalse(results[0].passed, "a 1e-2 weight change went unnoticed (error \(results[0].maxRelativeError))")
    }
}
