import JEMBackend
/// A 2-D convolution layer with bias (every conv of the official WRN has one).
public struct Conv2D {
    public let weight: Parameter
    public let bias: Parameter
    public let inChannels: Int
    public let outChannels: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int

    init(name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int,
         backend: any Backend) throws {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        weight = try Parameter(name: name + ".weight", shape: [outChannels, inChannels, kernel, kernel], backend: backend)
        bias = try Parameter(name: name + ".bias", shape: [outChannels], backend: backend)
    }

    var fanIn: Int { inChannels * kernel * kernel }

    func shape(batch: Int, height: Int, width: Int) -> Conv2DShape {
        Conv2DShape(batch: batch, inChannels: inChannels, height: height, width: width, outChannels: outChannels,
                    kernel: kernel, stride: stride, padding: padding)
    }

    func forward(_ s: Conv2DShape, input: DeviceBuffer, output: DeviceBuffer, on backend: any Backend) {
        backend.conv2dForward(s, input: input, weight: weight.value, bias: bias.value, output: output)
    }

    /// output += conv(input) + bias; `scratch` (outputCount floats) may be overwritten.
    func forwardAdding(_ s: Conv2DShape, input: DeviceBuffer, scratch: DeviceBuffer, output: DeviceBuffer,
                       on backend: any Backend) {
        backend.conv2dForwardAdding(s, input: input, weight: weight.value, bias: bias.value, scratch: scratch,
                                    output: output)
    }

    /// Parameter gradients (accumulated) when `parameters`, then the input gradient when asked.
    func backward(_ s: Conv2DShape, input: DeviceBuffer, gradOutput: DeviceBuffer, gradInput: DeviceBuffer?,
                  accumulateInput: Bool, parameters: Bool, on backend: any Backend) {
        if parameters {
            backend.conv2dBackwardFilter(s, input: input, gradOutput: gradOutput, gradWeight: weight.gradient,
                                         gradBias: bias.gradient, accumulate: true)
        }
        if let gradInput {
            backend.conv2dBackwardData(s, gradOutput: gradOutput, weight: weight.value, gradInput: gradInput,
                                       accumulate: accumulateInput)
        }
    }
}
