import JEMBackend

/// The real images of one iteration: a batch for p(x) and a labelled batch for p(y|x), drawn
/// from separate shuffled streams as in the official code. NCHW floats in [-1, 1].
public struct TrainingBatch: Sendable {
    public var px: [Float]
    public var labeled: [Float]
    public var labels: [Int32]
    public init(px: [Float], labeled: [Float], labels: [Int32]) {
        self.px = px
        self.labeled = labeled
        self.labels = labels
    }
}

/// Scalars of one iteration, computed on the host from the few values that come back.
public struct IterationStats: Sendable {
    public var loss: Double = 0
    public var crossEntropy: Double = 0
    public var accuracy: Double = 0
    /// mean f(x_data) and mean f(x_q), f = LSE(logits) = -E(x).
    public var fData: Double = 0
    public var fSample: Double = 0
    public var pxyTerm: Double = 0
    public var energyL2: Double = 0
    /// Root mean square of the p(x) samples: drifting chains (the official code's samples wander
    /// to ±70 when it diverges) show up here.
    public var sampleRMS: Double = 0
    public var gap: Double { fData - fSample }
    public var isFinite: Bool { loss.isFinite && fData.isFinite && fSample.isFinite }
}

/// Algorithm 1 of the JEM paper on any backend:
///
///     L = pyx * CE(x_lab, y_lab) + px(t) * (mean f(x_q) - mean f(x_data))
///         + pxy * (mean f(x_q|y, y) - mean f(x_lab, y))  [jem-xy]  + l2 * (mean f(x_data)^2 + mean f(x_q)^2)
///
/// px(t) is `pxWeight`, or 0 then a linear ramp with `--px-delay`/`--px-ramp`.
/// Each real or fake batch goes through its own forward and a full backward right away (the
/// terms are separable and there is no batch norm), so only one batch of activations is alive.
public final class JEMTrainer {
    public let config: TrainingConfig
    public let net: WideResNet
    public let backend: any Backend
    public let optimizer: Optimizer
    public let buffer: ReplayBuffer?
    public let sampler: SGLDSampler?
    /// The rows of each global batch this process computes (all of them in a plain run), and the
    /// other processes of a data-parallel job (see Distributed/ShardedTraining.swift).
    public let shard: BatchShard
    public let communicator: any Communicator
    let shardChains: ShardChains?

    let realBatch: DeviceBuffer
    let labelBuffer: DeviceBuffer
    /// f(x) and its parameter gradients for the p(x) term (no input gradient needed).
    let energy: EnergyGradient
    let energies: DeviceBuffer
    let rowGrad: DeviceBuffer
    let gradLogits: DeviceBuffer
    /// A device copy of the last p(x) samples, read back only when a grid is written.
    let sampleCopy: DeviceBuffer
    public private(set) var hasSamples = false

    /// `initial` is required when `config.bufferInit` is informative or mixed (TrainingRun fits it
    /// to the training split).
    public init(config: TrainingConfig, spec: WideResNetSpec, backend: any Backend,
                initial: InformativeInit? = nil, communicator: any Communicator = SingleProcess()) throws {
        self.config = config
        self.backend = backend
        self.communicator = communicator
        shard = BatchShard.of(batch: config.batchSize, rank: communicator.rank, size: communicator.size)
        let batch = shard.count
        net = try WideResNet(spec: spec, maxBatch: batch, backend: backend)
        net.initialize(seed: config.seed)
        optimizer = try Optimizer(kind: config.optimizer, parameters: net.trainableParameters,
                                  weightDecay: config.weightDecay, backend: backend)
        optimizer.momentum = config.momentum
        if config.usesSampling {
            precondition(config.bufferInit == .uniform || initial != nil, "informative init needs its Gaussians")
            do {
                buffer = try ReplayBuffer(size: config.bufferSize, rowSize: spec.inputCount, backend: backend,
                                          seed: config.seed, start: ChainStart(config.bufferInit, mixedShare: config.informativeShare,
                                                                               gaussians: initial))
            } catch let error as BackendError {
                throw BackendError("replay buffer of --buffer-size \(config.bufferSize) images: \(error)")
            }
            sampler = try SGLDSampler(net: net, steps: config.sgldSteps, stepSize: config.sgldLR,
                                      noiseStd: config.sgldStd, gradClip: config.sgldGradClip,
                                      clampRange: config.sgldClamp.map { -$0...$0 })
        } else {
            buffer = nil
            sampler = nil
        }
        shardChains = shard.isWhole || !config.usesSampling ? nil
            : try ShardChains(batch: shard.total, rowSize: spec.inputCount, backend: backend)
        realBatch = try backend.makeBuffer(count: batch * spec.inputCount)
        labelBuffer = try backend.makeBuffer(count: batch, type: .int32)
        energy = try EnergyGradient(net: net, inputGradient: false)
        energies = try backend.makeBuffer(count: batch)
        rowGrad = try backend.makeBuffer(count: batch)
        gradLogits = try backend.makeBuffer(count: batch * spec.classCount)
        sampleCopy = try backend.makeBuffer(count: config.usesSampling ? shard.total * spec.inputCount : 0)
    }

    /// The last p(x) samples on the host ([] before the first sampling iteration).
    public func lastSamples() throws -> [Float] {
        hasSamples ? try backend.download(sampleCopy) : []
    }

    /// One training iteration: sampling, the loss, its gradients, and the optimizer step.
    /// `seed` is the run's seed (changed by the divergence guard after a rollback).
    public func iterate(_ data: TrainingBatch, iteration: Int, learningRate: Float, seed: UInt64) throws
        -> IterationStats
    {
        // b: the rows this process computes; gb: the global batch every mean is over.
        let b = shard.count, gb = shard.total, k = net.spec.classCount
        var stats = IterationStats()
        net.zeroGradients()

        let pxWeight = config.pxWeight(at: iteration)
        if pxWeight > 0, let buffer, let sampler {
            var classes: [Int32]? = nil
            if config.classConditionalSampling {
                let random = HostRandom(seed: seed, stream: RandomStream.perIteration(.labeledOrder, iteration: iteration,
                                                                                      chain: 3))
                classes = (0..<gb).map { Int32(random.integer($0, below: k)) }
            }
            let draw = buffer.draw(batch: gb, seed: seed, iteration: iteration, chain: 0,
                                   reinitFrequency: config.reinitFrequency, classes: classes, classCount: k)
            let (samples, all) = try sampleChains(sampler, buffer: buffer, draw: draw, classes: classes, seed: seed,
                                                  iteration: iteration, chain: 0)
            let count = gb * net.spec.inputCount
            backend.copy(all, to: sampleCopy, count: count)
            hasSamples = true
            stats.sampleRMS = Double(try backend.sumOfSquares(all, count: count) / Float(count)).squareRoot()
            try backend.upload(shard.rows(of: data.px, rowSize: net.spec.inputCount), to: realBatch, offset: 0)
            // -px * mean f(x_data): d/df_r = -px/B (+ 2 l2 f_r / B).
            // The energy penalty regularises the p(x) term, so it ramps with it.
            let l2 = config.energyL2 * pxWeight / config.pxWeight
            let fData = try energyPass(input: realBatch, weight: -pxWeight, l2: l2)
            let fSample = try energyPass(input: samples, weight: pxWeight, l2: l2)
            stats.fData = mean(fData)
            stats.fSample = mean(fSample)
            stats.energyL2 = Double(l2) * (meanOfSquares(fData) + meanOfSquares(fSample))
            stats.loss += Double(pxWeight) * (stats.fSample - stats.fData) + stats.energyL2
        }

        if config.usesPyx || config.usesPxy {
            let labels = shard.rows(of: data.labels, rowSize: 1)
            try backend.upload(shard.rows(of: data.labeled, rowSize: net.spec.inputCount), to: realBatch, offset: 0)
            try backend.upload(labels, to: labelBuffer, offset: 0)
            let logits = net.forward(realBatch, batch: b)
            let host = try backend.download(logits, offset: 0, count: b * k)
            let metrics = ClassificationMetrics(logits: host, labels: labels, classCount: k)
            stats.crossEntropy = metrics.nll
            stats.accuracy = metrics.accuracy
            var labelLogit = 0.0
            for r in 0..<b { labelLogit += Double(host[r * k + Int(labels[r])]) }
            if config.usesPyx {
                backend.softmaxCrossEntropyBackward(logits, labels: labelBuffer, rows: b, cols: k,
                                                    scale: config.pyxWeight / Float(gb), gradLogits: gradLogits,
                                                    accumulate: false)
                stats.loss += Double(config.pyxWeight) * stats.crossEntropy
            } else {
                backend.fill(gradLogits, value: 0, offset: 0, count: b * k)
            }
            if config.usesPxy {
                // -pxy * mean logit_y(x_lab): adds -pxy/B * one-hot(y).
                addOneHot(logits: logits, scale: -config.pxyWeight / Float(gb))
                stats.pxyTerm -= labelLogit / Double(b)
            }
            net.backward(gradLogits: gradLogits, batch: b, gradInput: nil, mode: .full)
        }

        if config.usesPxy, let buffer, let sampler {
            // Class-conditional chains for the labels of this batch (class-partitioned buffer).
            let draw = buffer.draw(batch: gb, seed: seed, iteration: iteration, chain: 1,
                                   reinitFrequency: config.reinitFrequency, classes: data.labels, classCount: k)
            let (samples, _) = try sampleChains(sampler, buffer: buffer, draw: draw, classes: data.labels, seed: seed,
                                                iteration: iteration, chain: 1)
            let labels = shard.rows(of: data.labels, rowSize: 1)
            let logits = net.forward(samples, batch: b)
            let host = try backend.download(logits, offset: 0, count: b * k)
            var labelLogit = 0.0
            for r in 0..<b { labelLogit += Double(host[r * k + Int(labels[r])]) }
            backend.fill(gradLogits, value: 0, offset: 0, count: b * k)
            addOneHot(logits: logits, scale: config.pxyWeight / Float(gb))
            net.backward(gradLogits: gradLogits, batch: b, gradInput: nil, mode: .full)
            stats.pxyTerm += labelLogit / Double(b)
            stats.loss += Double(config.pxyWeight) * stats.pxyTerm
        }

        // Data-parallel: sum the gradients and average the statistics over the ranks (no-op alone).
        try reduceAcrossRanks(&stats)
        optimizer.step(learningRate: learningRate)
        return stats
    }

    /// Forward + full backward of `weight * mean f(x) + l2 * mean f(x)^2` for one batch; returns f(x).
    private func energyPass(input: DeviceBuffer, weight: Float, l2: Float) throws -> [Float] {
        let b = shard.count, gb = Float(shard.total)
        let logits = energy.forward(input, batch: b)
        // d/df_r = weight/B + 2 l2 f_r / B, computed on the device (B: the global batch).
        backend.fill(rowGrad, value: weight / gb, offset: 0, count: b)
        if l2 > 0 {
            backend.axpby(alpha: 2 * l2 / gb, x: energy.energies, beta: 1, y: rowGrad, count: b)
        }
        energy.backward(logits, batch: b, rowWeights: rowGrad, mode: .full)
        return try backend.download(energy.energies, offset: 0, count: b)
    }

    /// gradLogits += scale * one-hot(labels), as softmax - (softmax - one-hot) on the device.
    private func addOneHot(logits: DeviceBuffer, scale: Float) {
        let b = shard.count, k = net.spec.classCount
        backend.logSumExpRows(logits, rows: b, cols: k, out: energies)
        backend.softmaxCrossEntropyBackward(logits, labels: labelBuffer, rows: b, cols: k, scale: -scale,
                                            gradLogits: gradLogits, accumulate: true)
        backend.fill(rowGrad, value: scale, offset: 0, count: b)
        backend.logSumExpBackward(logits, lse: energies, gradOut: rowGrad, rows: b, cols: k, gradX: gradLogits,
                                  accumulate: true)
    }

    /// Logits of `images` (NCHW floats, `count` images), computed in batches on the device.
    public func logits(of images: [Float], count: Int) throws -> [Float] {
        let inputCount = net.spec.inputCount, k = net.spec.classCount
        var out = [Float]()
        out.reserveCapacity(count * k)
        var start = 0
        while start < count {
            let n = min(net.maxBatch, count - start)
            try backend.upload(Array(images[(start * inputCount)..<((start + n) * inputCount)]), to: realBatch, offset: 0)
            let logits = net.forward(realBatch, batch: n)
            out += try backend.download(logits, offset: 0, count: n * k)
            start += n
        }
        return out
    }
}

func mean(_ values: [Float]) -> Double { values.reduce(0.0) { $0 + Double($1) } / Double(max(values.count, 1)) }
func meanOfSquares(_ values: [Float]) -> Double {
    values.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(values.count, 1))
}

extension JEMTrainer {
    /// Accuracy and mean cross-entropy of the classifier on a labelled set. With `noiseStd` > 0,
    /// N(0, noiseStd²) is added to every input first, as the official evaluation does (sigma .03);
    /// the noise is Philox-addressed by image index, so the result is deterministic.
    public func classify(_ set: ImageSet, noiseStd: Float = 0) throws -> (accuracy: Double, nll: Double) {
        guard let labels = set.labels, set.count > 0 else { return (0, 0) }
        let size = set.imageSize
        var logits: [Float] = [], start = 0
        var chunk = [Float](repeating: 0, count: config.batchSize * size)
        while start < set.count {
            let n = min(config.batchSize, set.count - start)
            chunk.withUnsafeMutableBufferPointer { buffer in
                set.images(Array(start..<(start + n)), into: buffer.baseAddress!)
                if noiseStd > 0 {
                    Augmentation.addNoise(buffer.baseAddress!, count: n * size, start: start * size, std: noiseStd,
                                          seed: config.seed, stream: RandomStream.testNoise(set: 0))
                }
            }
            logits += try self.logits(of: chunk, count: n)
            start += n
        }
        let metrics = ClassificationMetrics(logits: logits, labels: labels, classCount: net.spec.classCount)
        return (metrics.accuracy, metrics.nll)
    }
}
