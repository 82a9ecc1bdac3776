import JEMBackend
/// The persistent replay buffer of SGLD chains, kept on the device: `size` images, initialised
/// from U(-1, 1), from JEM++'s per-class Gaussians (`InformativeInit`) or from a mix of the two.
/// With `classCount` > 0 it is class-partitioned as in the official code: class y owns the
/// contiguous rows y*size/K ..< (y+1)*size/K.
public final class ReplayBuffer {
    public let size: Int
    public let rowSize: Int
    public let storage: DeviceBuffer
    let backend: any Backend

    /// Where rows start and restart. A row i that starts from the Gaussians uses class
    /// i * K / size (contiguous blocks, the same partition as class-conditional draws); restarts
    /// are decided in `startChains`.
    public let start: ChainStart
    /// The class Gaussians, when any start uses them.
    public var initial: InformativeInit? { start.gaussians }

    public init(size: Int, rowSize: Int, backend: any Backend, seed: UInt64, start: ChainStart = .uniform) throws {
        precondition(size > 0 && rowSize > 0)
        self.size = size
        self.rowSize = rowSize
        self.backend = backend
        self.start = start
        storage = try backend.makeBuffer(count: size * rowSize)
        if let initial = start.gaussians, start.informativeShare >= 1 {
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
            if let initial = start.gaussians {
                // Mixed: each row independently replaced by a draw from its class's Gaussian.
                let coin = HostRandom(seed: seed, stream: RandomStream.bufferInit.id(2))
                for row in 0..<size where start.fromGaussians(row: row, coin: coin) {
                    let image = initial.sample(classes: [row * initial.classCount / size], seed: seed,
                                               stream: RandomStream.bufferInit.id(1), firstRow: row)
                    try backend.upload(image, to: storage, offset: row * rowSize)
                }
            }
        }
    }

    /// Puts the starting points of `draw`'s chains into `out`: the drawn rows, with the rows
    /// marked for re-initialisation replaced. Restarts from U(-1,1) are drawn on the device inside
    /// the gather; those from the class Gaussians come from the host (a few images per iteration)
    /// and overwrite their rows. `indices` and `reinitMask` are device scratch of `draw`'s length.
    func startChains(_ draw: Draw, classes: [Int32]?, seed: UInt64, iteration: Int, chain: Int,
                     indices: DeviceBuffer, reinitMask: DeviceBuffer, out: DeviceBuffer) throws {
        let batch = draw.indices.count
        try backend.upload(draw.indices, to: indices, offset: 0)
        let fromGaussians = restartsFromGaussians(draw, seed: seed, iteration: iteration, chain: chain)
        let anyUniform = start.informativeShare < 1
        if anyUniform {
            let uniformRestarts = (0..<batch).map { draw.reinit[$0] != 0 && !fromGaussians[$0] ? Int32(1) : 0 }
            try backend.upload(uniformRestarts, to: reinitMask, offset: 0)
        }
        backend.gatherRows(storage, indices: indices, reinit: anyUniform ? reinitMask : nil, rows: batch,
                           rowSize: rowSize, seed: seed,
                           stream: RandomStream.perIteration(.reinitNoise, iteration: iteration, chain: chain), out: out)
        guard let initial else { return }
        let pick = HostRandom(seed: seed, stream: RandomStream.perIteration(.informativeClass, iteration: iteration,
                                                                            chain: chain))
        let stream = RandomStream.perIteration(.informativeInit, iteration: iteration, chain: chain)
        // The class of a restart: the chain's class when chains are class-conditional, else a
        // uniformly drawn class (as JEM++ does).
        for r in 0..<batch where fromGaussians[r] {
            let c = classes.map { Int($0[r]) % initial.classCount } ?? pick.integer(r, below: initial.classCount)
            try backend.upload(initial.sample(classes: [c], seed: seed, stream: stream, firstRow: r), to: out,
                               offset: r * rowSize)
        }
    }

    /// Which rows of `draw` restart from the class Gaussians: every re-initialised row when the
    /// share is 1, none without Gaussians, else each by an independent coin.
    func restartsFromGaussians(_ draw: Draw, seed: UInt64, iteration: Int, chain: Int) -> [Bool] {
        let coin = HostRandom(seed: seed, stream: RandomStream.perIteration(.restartKind, iteration: iteration,
                                                                            chain: chain))
        return draw.reinit.indices.map { r in draw.reinit[r] != 0 && start.fromGaussians(row: r, coin: coin) }
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
