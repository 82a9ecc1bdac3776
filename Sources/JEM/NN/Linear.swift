import JEMBackend
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
