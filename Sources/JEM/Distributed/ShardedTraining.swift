import Foundation
import JEMBackend

/// Device buffers of the whole global batch of SGLD chains, kept by each rank of a data-parallel
/// job: the chains start from the replay buffer at their global rows (so re-initialisation noise
/// is addressed by global row), each SGLD step's noise is drawn for the whole batch at its global
/// element indices, and after the last step the ranks all-gather their rows so that every rank
/// writes the identical batch back into its (replicated) replay buffer.
final class ShardChains {
    let global: DeviceBuffer
    let globalGrad: DeviceBuffer
    let indices: DeviceBuffer
    let reinit: DeviceBuffer
    let labels: DeviceBuffer

    init(batch: Int, rowSize: Int, backend: any Backend) throws {
        global = try backend.makeBuffer(count: batch * rowSize)
        globalGrad = try backend.makeBuffer(count: batch * rowSize)
        indices = try backend.makeBuffer(count: batch, type: .int32)
        reinit = try backend.makeBuffer(count: batch, type: .int32)
        labels = try backend.makeBuffer(count: batch, type: .int32)
        backend.fill(globalGrad, value: 0, offset: 0, count: batch * rowSize)
    }
}

extension JEMTrainer {
    /// Runs the chains of `draw` (a draw for the whole global batch) and writes them back. Returns
    /// this rank's rows of the samples (at offset 0) and the whole batch of samples (the same buffer
    /// in a plain run).
    func sampleChains(_ sampler: SGLDSampler, buffer: ReplayBuffer, draw: ReplayBuffer.Draw, classes: [Int32]?,
                      seed: UInt64, iteration: Int, chain: Int) throws -> (local: DeviceBuffer, all: DeviceBuffer) {
        guard let shardChains else {
            let samples = try sampler.sample(from: buffer, draw: draw, classes: classes, seed: seed,
                                             iteration: iteration, chain: chain)
            return (samples, samples)
        }
        let all = try sampler.sampleShard(from: buffer, draw: draw, classes: classes, seed: seed, iteration: iteration,
                                          chain: chain, shard: shard, chains: shardChains, communicator: communicator)
        return (sampler.chains, all)
    }

    /// Sums the parameter gradients over the ranks (one flat allreduce) and averages the host
    /// statistics, so that every rank takes the identical optimizer step and the divergence guard
    /// decides the same everywhere. Per-rank gradients are already scaled by 1/(global batch), so
    /// the sum is the gradient of one process with the whole batch. A no-op in a plain run.
    func reduceAcrossRanks(_ stats: inout IterationStats) throws {
        guard communicator.isDistributed else { return }
        let parameters = net.trainableParameters
        var flat = [Float]()
        flat.reserveCapacity(parameters.reduce(0) { $0 + $1.count })
        for p in parameters { flat += try backend.download(p.gradient) }
        let local = debugSkipAllreduceRank == communicator.rank ? flat : nil
        try communicator.allreduceSum(&flat)
        if let local { flat = local }   // the deliberately broken variant of the tests
        var offset = 0
        for p in parameters {
            try backend.upload(Array(flat[offset..<(offset + p.count)]), to: p.gradient, offset: 0)
            offset += p.count
        }
        // Each rank's statistics are means over its equal share of rows: the global mean is their mean.
        // (sampleRMS is computed from the gathered batch already.)
        var values = [stats.loss, stats.crossEntropy, stats.accuracy, stats.fData, stats.fSample, stats.pxyTerm,
                      stats.energyL2]
        try communicator.allreduceSum(&values)
        let n = Double(communicator.size)
        stats.loss = values[0] / n
        stats.crossEntropy = values[1] / n
        stats.accuracy = values[2] / n
        stats.fData = values[3] / n
        stats.fSample = values[4] / n
        stats.pxyTerm = values[5] / n
        stats.energyL2 = values[6] / n
    }
}

extension SGLDSampler {
    /// `sample(from:draw:...)` for this rank's rows of a global batch: the same chains, noise and
    /// write-back as one process running all of `draw`, with this rank computing the gradients of
    /// rows `shard.range` only. Returns the whole batch of samples (identical on every rank);
    /// `chains` holds this rank's rows at offset 0.
    func sampleShard(from buffer: ReplayBuffer, draw: ReplayBuffer.Draw, classes: [Int32]?, seed: UInt64,
                     iteration: Int, chain: Int, shard: BatchShard, chains g: ShardChains,
                     communicator: any Communicator) throws -> DeviceBuffer {
        let batch = draw.indices.count, rowSize = buffer.rowSize, n = shard.count
        precondition(batch == shard.total)
        let first = shard.first * rowSize, localCount = n * rowSize, count = batch * rowSize
        try buffer.startChains(draw, classes: classes, seed: seed, iteration: iteration, chain: chain,
                               indices: g.indices, reinitMask: g.reinit, out: g.global)
        backend.copy(g.global, sourceOffset: first, to: chains, destinationOffset: 0, count: localCount)
        if let classes { try backend.upload(shard.rows(of: classes, rowSize: 1), to: labelBuffer, offset: 0) }
        // Rows of other ranks get a zero gradient here; their values are replaced by the gather below.
        for step in 0..<steps {
            energy.gradient(at: chains, batch: n, labels: classes == nil ? nil : labelBuffer)
            backend.copy(energy.inputGradient, sourceOffset: 0, to: g.globalGrad, destinationOffset: first,
                         count: localCount)
            backend.sgldUpdate(x: g.global, grad: g.globalGrad, count: count, stepSize: stepSize, noiseStd: noiseStd,
                               seed: seed, stream: RandomStream.sgld(iteration: iteration, step: step, chain: chain),
                               gradClip: gradClip, clampRange: clampRange)
            backend.copy(g.global, sourceOffset: first, to: chains, destinationOffset: 0, count: localCount)
        }
        let mine = try backend.download(chains, offset: 0, count: localCount)
        let gathered = try communicator.allgather(mine, counts: Array(repeating: localCount, count: communicator.size))
        try backend.upload(gathered, to: g.global, offset: 0)
        try backend.upload(draw.writeBack, to: g.indices, offset: 0)
        backend.scatterRows(g.global, indices: g.indices, rows: batch, rowSize: rowSize, destination: buffer.storage)
        return g.global
    }
}
