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

/// y = x W^T + b, PyTorch's nn.Linear layout (weight [out][in]).
public struct Linear {
    public let weight: Parameter
    public let bias: Parameter
    public let inFeatures: Int
    public let outFeatures: Int

    init(name: String, inFeatures: Int, outFeatures: Int, trainable: Bool = true, backend: any Backend) throws {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = try Parameter(name: name + ".weight", shape: [outFeatures, inFeatures], trainable: trainable,
                               backend: backend)
        bias = try Parameter(name: name + ".bias", shape: [outFeatures], trainable: trainable, backend: backend)
    }

    func forward(batch: Int, input: DeviceBuffer, output: DeviceBuffer, on backend: any Backend) {
        backend.gemm(transposeA: false, transposeB: true, m: batch, n: outFeatures, k: inFeatures, alpha: 1,
                     a: input, aOffset: 0, lda: inFeatures, b: weight.value, bOffset: 0, ldb: inFeatures,
                     beta: 0, c: output, cOffset: 0, ldc: outFeatures, batch: .single)
        backend.addBias(output, bias: bias.value, outer: batch, channels: outFeatures, inner: 1)
    }

    func backward(batch: Int, input: DeviceBuffer, gradOutput: DeviceBuffer, gradInput: DeviceBuffer,
                  parameters: Bool, on backend: any Backend) {
        if parameters {
            // dW[out][in] += dY^T[out][batch] x X[batch][in]
            backend.gemm(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: batch, alpha: 1,
                         a: gradOutput, aOffset: 0, lda: outFeatures, b: input, bOffset: 0, ldb: inFeatures,
                         beta: 1, c: weight.gradient, cOffset: 0, ldc: inFeatures, batch: .single)
            backend.biasGradient(gradOutput, outer: batch, channels: outFeatures, inner: 1, gradBias: bias.gradient,
                                 accumulate: true)
        }
        // dX[batch][in] = dY[batch][out] x W[out][in]
        backend.gemm(transposeA: false, transposeB: false, m: batch, n: inFeatures, k: outFeatures, alpha: 1,
                     a: gradOutput, aOffset: 0, lda: outFeatures, b: weight.value, bOffset: 0, ldb: inFeatures,
                     beta: 0, c: gradInput, cOffset: 0, ldc: inFeatures, batch: .single)
    }
}
