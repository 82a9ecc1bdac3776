import Foundation
import JEMSupport

/// The "convolution" op group (Kernels/convolution.cl, CPUBackend+Convolution.swift).
extension ParitySuite {
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

            let sum = try h.pair(h.random(s.outputCount)), scratch = try h.pair(h.random(s.outputCount))
            h.both { b, p in
                b.conv2dForwardAdding(s, input: p(input), weight: p(weight), bias: withBias ? p(bias) : nil,
                                      scratch: p(scratch), output: p(sum))
            }
            try h.check("conv2dForwardAdding", sum, "\(s)" + (withBias ? ", bias" : ""))

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
}
