import JEMBackend
/// Stochastic Gradient Langevin Dynamics on the network's negative energy f(x) = LSE(f(x)):
/// `x <- x + stepSize * df/dx + noiseStd * N(0, I)` for `steps` steps (ascent on f, descent
/// on the energy), with optional per-element gradient clip and x clamp. Every step stays on the
/// device: forward, the input-only backward, and the update with Philox noise.
public final class SGLDSampler {
    public var steps: Int
    public var stepSize: Float
    public var noiseStd: Float
    public var gradClip: Float?
    public var clampRange: ClosedRange<Float>?

    let net: WideResNet
    let backend: any Backend
    /// The chains of the current batch, [maxBatch][C][H][W].
    public let chains: DeviceBuffer
    let gradInput: DeviceBuffer
    let energies: DeviceBuffer
    let ones: DeviceBuffer
    let gradLogits: DeviceBuffer
    let indexBuffer: DeviceBuffer
    let reinitBuffer: DeviceBuffer
    let labelBuffer: DeviceBuffer

    public init(net: WideResNet, steps: Int, stepSize: Float, noiseStd: Float, gradClip: Float? = nil,
                clampRange: ClosedRange<Float>? = nil) throws {
        self.net = net
        self.backend = net.backend
        self.steps = steps
        self.stepSize = stepSize
        self.noiseStd = noiseStd
        self.gradClip = gradClip
        self.clampRange = clampRange
        let n = net.maxBatch, inputCount = net.spec.inputCount
        chains = try backend.makeBuffer(count: n * inputCount)
        gradInput = try backend.makeBuffer(count: n * inputCount)
        energies = try backend.makeBuffer(count: n)
        ones = try backend.makeBuffer(count: n)
        backend.fill(ones, value: 1, offset: 0, count: n)
        gradLogits = try backend.makeBuffer(count: n * net.spec.classCount)
        indexBuffer = try backend.makeBuffer(count: n, type: .int32)
        reinitBuffer = try backend.makeBuffer(count: n, type: .int32)
        labelBuffer = try backend.makeBuffer(count: n, type: .int32)
    }

    /// Starts chains from the replay buffer (with re-initialisation), runs the SGLD steps, and
    /// writes the samples back. The samples stay in `chains`.
    public func sample(from buffer: ReplayBuffer, draw: ReplayBuffer.Draw, classes: [Int32]?, seed: UInt64,
                       iteration: Int, chain: Int = 0) throws -> DeviceBuffer {
        let batch = draw.indices.count
        try backend.upload(draw.indices, to: indexBuffer, offset: 0)
        let informative = buffer.initial != nil
        if !informative { try backend.upload(draw.reinit, to: reinitBuffer, offset: 0) }
        // U(-1,1) restarts are drawn on the device inside the gather; informative ones come from
        // the host (a few images per iteration) and overwrite their rows.
        backend.gatherRows(buffer.storage, indices: indexBuffer, reinit: informative ? nil : reinitBuffer, rows: batch,
                           rowSize: buffer.rowSize, seed: seed,
                           stream: RandomStream.perIteration(.reinitNoise, iteration: iteration, chain: chain),
                           out: chains)
        for (row, image) in buffer.informativeRestarts(draw, classes: classes, seed: seed, iteration: iteration,
                                                       chain: chain) {
            try backend.upload(image, to: chains, offset: row * buffer.rowSize)
        }
        try run(batch: batch, classes: classes, seed: seed, iteration: iteration, chain: chain)
        try backend.upload(draw.writeBack, to: indexBuffer, offset: 0)
        backend.scatterRows(chains, indices: indexBuffer, rows: batch, rowSize: buffer.rowSize,
                            destination: buffer.storage)
        return chains
    }

    /// Runs the SGLD steps on whatever `chains` holds (fresh chains for `jem-gpu sample`).
    public func run(batch: Int, classes: [Int32]?, seed: UInt64, iteration: Int, chain: Int = 0) throws {
        let k = net.spec.classCount, count = batch * net.spec.inputCount
        if let classes { try backend.upload(classes, to: labelBuffer, offset: 0) }
        for step in 0..<steps {
            let logits = net.forward(chains, batch: batch)
            seedGradient(logits: logits, batch: batch, classCount: k, conditional: classes != nil)
            net.backward(gradLogits: gradLogits, batch: batch, gradInput: gradInput, mode: .inputOnly)
            backend.sgldUpdate(x: chains, grad: gradInput, count: count, stepSize: stepSize, noiseStd: noiseStd,
                               seed: seed, stream: RandomStream.sgld(iteration: iteration, step: step, chain: chain),
                               gradClip: gradClip, clampRange: clampRange)
        }
    }

    /// d/dlogits of sum_r f(x_r): softmax for f = LSE, one-hot(y) for f(x, y) = logit_y.
    func seedGradient(logits: DeviceBuffer, batch: Int, classCount k: Int, conditional: Bool) {
        backend.logSumExpRows(logits, rows: batch, cols: k, out: energies)
        if conditional {
            // one-hot = softmax - (softmax - one-hot): the cross-entropy gradient negated plus the
            // LSE gradient, both on the backend.
            backend.softmaxCrossEntropyBackward(logits, labels: labelBuffer, rows: batch, cols: k, scale: -1,
                                                gradLogits: gradLogits, accumulate: false)
            backend.logSumExpBackward(logits, lse: energies, gradOut: ones, rows: batch, cols: k, gradX: gradLogits,
                                      accumulate: true)
        } else {
            backend.logSumExpBackward(logits, lse: energies, gradOut: ones, rows: batch, cols: k, gradX: gradLogits,
                                      accumulate: false)
        }
    }
}
