import JEMBackend

/// The energy of a batch and its gradients on the device: f(x) = LogSumExp(net(x)) = -E(x), or
/// the class-conditional f(x, y) = net(x)[y]. The one routine behind SGLD (`SGLDSampler`), the
/// p(x) term of training (`JEMTrainer`), the pxgrad OOD score (`Scorer`) and the refinement of
/// the attacked classifier (`RefinedClassifier`).
public final class EnergyGradient {
    public let net: WideResNet
    /// f(x) of the last `forward`, one per row.
    public let energies: DeviceBuffer
    /// df/dx of the last input-only `backward` without an `into` buffer, [maxBatch][C][H][W]
    /// (empty when built with `inputGradient: false`).
    public let inputGradient: DeviceBuffer
    let ones: DeviceBuffer
    let gradLogits: DeviceBuffer
    var backend: any Backend { net.backend }

    public init(net: WideResNet, inputGradient: Bool = true) throws {
        self.net = net
        let backend = net.backend, n = net.maxBatch
        energies = try backend.makeBuffer(count: n)
        self.inputGradient = try backend.makeBuffer(count: inputGradient ? n * net.spec.inputCount : 0)
        ones = try backend.makeBuffer(count: n)
        backend.fill(ones, value: 1, offset: 0, count: n)
        gradLogits = try backend.makeBuffer(count: n * net.spec.classCount)
    }

    /// Runs the network on `x` and writes f(x) = LSE(logits) into `energies`; returns the logits.
    @discardableResult
    public func forward(_ x: DeviceBuffer, batch: Int) -> DeviceBuffer {
        let logits = net.forward(x, batch: batch)
        backend.logSumExpRows(logits, rows: batch, cols: net.spec.classCount, out: energies)
        return logits
    }

    /// Backpropagates sum_r w_r f(x_r) through the last `forward` (w = `rowWeights`, else all 1;
    /// with `labels`, f(x_r, y_r) = logit_y instead of the LSE). `.inputOnly`: df/dx into `into`
    /// (default `inputGradient`); `.full`: every parameter gradient accumulates.
    public func backward(_ logits: DeviceBuffer, batch: Int, rowWeights: DeviceBuffer? = nil,
                         labels: DeviceBuffer? = nil, mode: WideResNet.GradientMode, into: DeviceBuffer? = nil) {
        let k = net.spec.classCount
        if let labels {
            // one-hot = softmax - (softmax - one-hot): the cross-entropy gradient negated plus
            // the LSE gradient, both on the backend.
            precondition(rowWeights == nil, "class-conditional energies take unit row weights")
            backend.softmaxCrossEntropyBackward(logits, labels: labels, rows: batch, cols: k, scale: -1,
                                                gradLogits: gradLogits, accumulate: false)
            backend.logSumExpBackward(logits, lse: energies, gradOut: ones, rows: batch, cols: k, gradX: gradLogits,
                                      accumulate: true)
        } else {
            backend.logSumExpBackward(logits, lse: energies, gradOut: rowWeights ?? ones, rows: batch, cols: k,
                                      gradX: gradLogits, accumulate: false)
        }
        net.backward(gradLogits: gradLogits, batch: batch,
                     gradInput: mode == .inputOnly ? (into ?? inputGradient) : nil, mode: mode)
    }

    /// df/dx at `x` (forward + input-only backward) into `into` (default `inputGradient`).
    public func gradient(at x: DeviceBuffer, batch: Int, labels: DeviceBuffer? = nil, into: DeviceBuffer? = nil) {
        let logits = forward(x, batch: batch)
        backward(logits, batch: batch, labels: labels, mode: .inputOnly, into: into)
    }
}
