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
        try projectionConvolution(h)
    }

    /// Residual blocks for the convolutions with a 1x1 projection shortcut: (batch, block input
    /// channels, output channels, height, width, stride); the second is one the CPU backend fuses
    /// (stride-2 Winograd).
    public static let projectionBlocks = [(2, 5, 6, 7, 9, 1), (2, 16, 17, 8, 16, 2)]

    /// A block's last conv plus its projection shortcut, and its first conv's input gradient
    /// plus the shortcut's (a backend may add the shortcut as it stores the conv).
    static func projectionConvolution(_ h: ParityHarness) throws {
        let activation = Activation.leakyReLU(slope: 0.2)
        for (batch, cin, cout, height, width, stride) in projectionBlocks {
            let first = Conv2DShape(batch: batch, inChannels: cin, height: height, width: width, outChannels: cout,
                                    kernel: 3, stride: 1, padding: 1)
            let last = Conv2DShape(batch: batch, inChannels: cout, height: height, width: width, outChannels: cout,
                                   kernel: 3, stride: stride, padding: 1)
            let projection = Conv2DShape(batch: batch, inChannels: cin, height: height, width: width,
                                         outChannels: cout, kernel: 1, stride: stride, padding: 0)
            let what = "\(last) + \(projection)"
            let x = try h.pair(h.random(first.inputCount, -2, 2)), hidden = try h.pair(h.random(last.inputCount, -2, 2))
            let weight = try h.pair(h.random(last.weightCount)), bias = try h.pair(h.random(cout))
            let projectionWeight = try h.pair(h.random(projection.weightCount))
            let projectionBias = try h.pair(h.random(cout))
            let scratch = try h.pair(h.random(max(last.inputCount, first.inputCount)))
            let projectionScratch = try h.pair(h.random(projection.outputCount))
            let output = try h.pair(h.random(last.outputCount))
            // The signs that a backend may keep from the forward for the backward (stale bits first).
            let hiddenSigns = try h.pair(h.random(ActivationSigns.floatCount(last)))
            let xSigns = try h.pair(h.random(ActivationSigns.floatCount(first)))
            h.both { b, p in
                b.conv2dForwardAddingProjection(last, input: p(hidden), activation: activation, scratch: p(scratch),
                                                weight: p(weight), bias: p(bias), projection: projection,
                                                projectionInput: p(x), projectionWeight: p(projectionWeight),
                                                projectionBias: p(projectionBias),
                                                projectionScratch: p(projectionScratch), output: p(output),
                                                inputSigns: p(hiddenSigns))
            }
            try h.check("conv2dForwardAddingProjection", output, what)

            let firstWeight = try h.pair(h.random(first.weightCount))
            let gradHidden = try h.pair(h.random(first.outputCount))
            let gradOutput = try h.pair(h.random(projection.outputCount))
            let gradInput = try h.pair(h.random(first.inputCount))
            let hiddenOut = try h.pair(h.random(first.outputCount))
            h.both { b, p in
                b.conv2dForward(first, input: p(x), activation: activation, scratch: p(scratch), weight: p(firstWeight),
                                bias: nil, output: p(hiddenOut), inputSigns: p(xSigns))
                b.conv2dBackwardDataAddingProjection(first, gradOutput: p(gradHidden), weight: p(firstWeight),
                                                     input: p(x), activation: activation, scratch: p(scratch),
                                                     projection: projection, projectionGradOutput: p(gradOutput),
                                                     projectionWeight: p(projectionWeight), gradInput: p(gradInput),
                                                     inputSigns: p(xSigns))
            }
            try h.check("conv2dBackwardDataAddingProjection", gradInput, "\(first) + \(projection)")
        }
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
                // Every other shape keeps the input's signs for the backward (stale bits first).
                let signs = index % 3 == 2 ? nil : try h.pair(h.random(ActivationSigns.floatCount(s)))
                h.both { b, p in
                    b.conv2dForward(s, input: p(input), activation: activation, scratch: p(scratch), weight: p(weight),
                                    bias: p(bias), output: p(output), inputSigns: signs.map { p($0) })
                }
                try h.check("conv2dForward of activated input", output, what)

                let gradOutput = try h.pair(h.random(s.outputCount)), gradInput = try h.pair(h.random(s.inputCount))
                h.both { b, p in
                    b.conv2dBackwardData(s, gradOutput: p(gradOutput), weight: p(weight), input: p(input),
                                         activation: activation, scratch: p(scratch), gradInput: p(gradInput),
                                         accumulate: accumulate, inputSigns: signs.map { p($0) })
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
