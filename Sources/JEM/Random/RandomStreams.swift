import JEMBackend
/// Names for every Philox stream the trainer draws from. A stream id is `tag << 56 | counter`,
/// so streams of different purposes never overlap, and every draw is a pure function of
/// (seed, purpose, iteration, ...): resuming at iteration N redraws exactly what an
/// uninterrupted run would have drawn, with no generator state to save.
public enum RandomStream: UInt64, Sendable {
    case parameterInit = 1
    case bufferInit
    case replayIndex
    case replayReinit
    case reinitNoise
    case sgldNoise
    case dataOrder
    case labeledOrder
    case augmentation
    case dataNoise
    case sampleChains
    case validSplit
    case labelSubset
    case informativeInit
    case informativeClass
    case attackNoise
    case attackStart
    /// Which restarts of a mixed buffer (`--buffer-init mixed`) come from the class Gaussians.
    case restartKind

    /// The stream id for this purpose and a counter below 2^56.
    public func id(_ counter: UInt64 = 0) -> UInt64 {
        precondition(counter < (1 << 56), "stream counter \(counter) out of range")
        return rawValue << 56 | counter
    }

    /// Per-iteration draws; `chain` separates the samplers of one iteration (p(x) and p(x,y)).
    public static func perIteration(_ purpose: RandomStream, iteration: Int, chain: Int = 0) -> UInt64 {
        purpose.id(UInt64(iteration) << 2 | UInt64(chain))
    }

    /// SGLD noise of step `step` at iteration `iteration` (steps below 4096).
    public static func sgld(iteration: Int, step: Int, chain: Int = 0) -> UInt64 {
        RandomStream.sgldNoise.id(UInt64(iteration) << 14 | UInt64(chain) << 12 | UInt64(step))
    }

    /// Test-time input noise (`--test-noise`) of evaluation set `set`: 0 the in-distribution set
    /// (the trainer's valid/test evaluation draws from it too, so `jem-gpu eval` with the
    /// training seed reproduces the logged accuracy), 1... the OOD sets in order.
    public static func testNoise(set: Int) -> UInt64 {
        RandomStream.dataNoise.id((1 << 55) | UInt64(set == 0 ? 1 : set + 1))
    }

    /// Noise of one evaluation of the refined classifier (`RefinedClassifier`): `draw` (below
    /// 2^44, see `AttackDraw`) names the evaluation, `part` 0 the copy noise and 1 + k the noise
    /// of refinement step k (parts below 4096).
    public static func attack(draw: UInt64, part: Int) -> UInt64 {
        precondition(draw < (1 << 44) && part >= 0 && part < 4096, "attack noise draw \(draw) part \(part) out of range")
        return RandomStream.attackNoise.id(draw << 12 | UInt64(part))
    }
}

/// Small host-side draws from Philox (indices, coin flips, permutations).
public struct HostRandom {
    public let seed: UInt64
    public let stream: UInt64

    public init(seed: UInt64, stream: UInt64) {
        self.seed = seed
        self.stream = stream
    }

    /// Element i of the uniform [0, 1) stream.
    public func uniform(_ i: Int) -> Float { Philox.uniform(seed: seed, stream: stream, element: i) }

    /// A uniform integer in 0..<bound from two words (53 bits, so no visible modulo bias).
    public func integer(_ i: Int, below bound: Int) -> Int {
        precondition(bound > 0)
        let r = Philox.block(seed: seed, stream: stream, index: UInt64(i))
        let bits = (UInt64(r.0) << 21) ^ UInt64(r.1 >> 11)
        return Int(bits % UInt64(bound))
    }

    /// A Fisher-Yates permutation of 0..<count.
    public func permutation(_ count: Int) -> [Int] {
        var order = Array(0..<count)
        if count < 2 { return order }
        for i in stride(from: count - 1, to: 0, by: -1) {
            order.swapAt(i, integer(i, below: i + 1))
        }
        return order
    }
}
