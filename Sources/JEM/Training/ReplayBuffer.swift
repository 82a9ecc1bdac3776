import JEMBackend
/// The persistent replay buffer of SGLD chains, kept on the device: `size` images, initialised
/// from U(-1, 1) or from JEM++'s per-class Gaussians (`InformativeInit`). With `classCount` > 0 it is class-partitioned as in the official code:
/// class y owns the contiguous rows y*size/K ..< (y+1)*size/K.
public final class ReplayBuffer {
    public let size: Int
    public let rowSize: Int
    public let storage: DeviceBuffer
    let backend: any Backend

    /// With `initial`, rows start from its Gaussians instead of U(-1, 1), row i from class
    /// i * K / size (contiguous blocks, the same partition as class-conditional draws), and
    /// re-initialised chains restart from them too (see `SGLDSampler.sample`).
    public let initial: InformativeInit?

    public init(size: Int, rowSize: Int, backend: any Backend, seed: UInt64, initial: InformativeInit? = nil) throws {
        precondition(size > 0 && rowSize > 0)
        self.size = size
        self.rowSize = rowSize
        self.backend = backend
        self.initial = initial
        storage = try backend.makeBuffer(count: size * rowSize)
        if let initial {
            // Generated on the host in blocks (the Gaussians live there) and uploaded once.
            let block = 256
            var first = 0
            while first < size {
                let n = min(block, size - first)
                let classes = (first..<(first + n)).map { $0 * initial.classCount / size }
                let rows = initial.sample(classes: classes, seed: seed, stream: RandomStream.bufferInit.id(1),
                                          firstRow: first)
                try backend.upload(rows, to: storage, offset: first * rowSize)
                first += n
            }
        } else {
            backend.fillUniform(storage, count: size * rowSize, low: -1, high: 1, seed: seed,
                                stream: RandomStream.bufferInit.id())
        }
    }

    /// Fresh starting points for the rows of `draw` marked for re-initialisation, from the
    /// informative Gaussians: class `classes[r]` when chains are class-conditional, else a
    /// uniformly drawn class (as JEM++ does). Returns (row, image) pairs.
    func informativeRestarts(_ draw: Draw, classes: [Int32]?, seed: UInt64, iteration: Int, chain: Int)
        -> [(row: Int, image: [Float])]
    {
        guard let initial else { return [] }
        let pick = HostRandom(seed: seed, stream: RandomStream.perIteration(.informativeClass, iteration: iteration,
                                                                            chain: chain))
        let stream = RandomStream.perIteration(.informativeInit, iteration: iteration, chain: chain)
        return draw.reinit.indices.filter { draw.reinit[$0] != 0 }.map { r in
            let c = classes.map { Int($0[r]) % initial.classCount } ?? pick.integer(r, below: initial.classCount)
            return (r, initial.sample(classes: [c], seed: seed, stream: stream, firstRow: r))
        }
    }

    /// Which rows start the chains of one iteration, and which of them restart from noise.
    public struct Draw {
        public var indices: [Int32]
        public var reinit: [Int32]
        /// `indices` with all but the last occurrence of a repeated row set to -1: the
        /// write-back is then deterministic and "last write wins" as in the official code.
        public var writeBack: [Int32]
    }

    /// Draws `batch` rows uniformly (with replacement, like torch.randint), each replaced by
    /// fresh U(-1,1) noise with probability `reinitFrequency`. With `classes`, row r comes from
    /// class classes[r]'s partition (which needs size divisible by `classCount`).
    public func draw(batch: Int, seed: UInt64, iteration: Int, chain: Int = 0, reinitFrequency: Float,
                     classes: [Int32]? = nil, classCount: Int = 0) -> Draw {
        let indexRandom = HostRandom(seed: seed, stream: RandomStream.perIteration(.replayIndex, iteration: iteration,
                                                                                   chain: chain))
        let coin = HostRandom(seed: seed, stream: RandomStream.perIteration(.replayReinit, iteration: iteration,
                                                                            chain: chain))
        var indices = [Int32](repeating: 0, count: batch), reinit = [Int32](repeating: 0, count: batch)
        for r in 0..<batch {
            if let classes {
                let partition = size / classCount
                indices[r] = Int32(Int(classes[r]) * partition + indexRandom.integer(r, below: partition))
            } else {
                indices[r] = Int32(indexRandom.integer(r, below: size))
            }
            reinit[r] = coin.uniform(r) < reinitFrequency ? 1 : 0
        }
        var writeBack = indices
        var seen = Set<Int32>()
        for r in stride(from: batch - 1, through: 0, by: -1) {
            if !seen.insert(indices[r]).inserted { writeBack[r] = -1 }
        }
        return Draw(indices: indices, reinit: reinit, writeBack: writeBack)
    }
}
