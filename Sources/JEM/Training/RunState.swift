import JEMBackend
/// The host-side counters of a run: with the device tensors, everything needed to continue
/// exactly where it stopped (all randomness is addressed by seed and iteration).
public struct RunState: Sendable, Codable, Equatable {
    /// Iterations completed.
    public var iteration = 0
    public var optimizerSteps = 0
    /// Divergence recoveries so far; each one reseeds the run.
    public var recoveries = 0
    /// Multiplier on the scheduled learning rate (cut by recoveries).
    public var learningRateScale: Float = 1
    /// Current SGLD steps (raised by recoveries when asked).
    public var sgldSteps = 0
    public var bestValidAccuracy: Double = -1
    public var bestIteration = -1
    /// Processes of the data-parallel job that wrote it (nil: one process).
    public var worldSize: Int? = nil

    public init() {}

    /// The seed every draw uses: the run's seed, moved to a new stream family per recovery.
    public func effectiveSeed(_ base: UInt64) -> UInt64 { base &+ UInt64(recoveries) &* 0x9E37_79B9_7F4A_7C15 }
}
