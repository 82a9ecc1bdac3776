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
    let energy: EnergyGradient
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
        energy = try EnergyGradient(net: net)
        indexBuffer = try backend.makeBuffer(count: n, type: .int32)
        reinitBuffer = try backend.makeBuffer(count: n, type: .int32)
        labelBuffer = try backend.makeBuffer(count: n, type: .int32)
    }

    /// Starts chains from the replay buffer (with re-initialisation), runs the SGLD steps, and
    /// writes the samples back. The samples stay in `chains`.
    public func sample(from buffer: ReplayBuffer, draw: ReplayBuffer.Draw, classes: [Int32]?, seed: UInt64,
                       iteration: Int, chain: Int = 0) throws -> DeviceBuffer {
        let batch = draw.indices.count
        try buffer.startChains(draw, classes: classes, seed: seed, iteration: iteration, chain: chain,
                               indices: indexBuffer, reinitMask: reinitBuffer, out: chains)
        try run(batch: batch, classes: classes, seed: seed, iteration: iteration, chain: chain)
        try backend.upload(draw.writeBack, to: indexBuffer, offset: 0)
        backend.scatterRows(chains, indices: indexBuffer, rows: batch, rowSize: buffer.rowSize,
                            destination: buffer.storage)
        return chains
    }

    /// Runs the SGLD steps on whatever `chains` holds (fresh chains for `jem-gpu sample`).
    public func run(batch: Int, classes: [Int32]?, seed: UInt64, iteration: Int, chain: Int = 0) throws {
        let count = batch * net.spec.inputCount
        if let classes { try backend.upload(classes, to: labelBuffer, offset: 0) }
        for step in 0..<steps {
            energy.gradient(at: chains, batch: batch, labels: classes == nil ? nil : labelBuffer)
            backend.sgldUpdate(x: chains, grad: energy.inputGradient, count: count, stepSize: stepSize,
                               noiseStd: noiseStd, seed: seed, stream: RandomStream.sgld(iteration: iteration, step: step, chain: chain),
                               gradClip: gradClip, clampRange: clampRange)
        }
    }
}
