import JEMBackend
/// Names the random draws of an attack, so that every number is a pure function of (seed, batch,
/// restart, PGD iteration) and the same on every backend:
///
/// - each evaluation of the refined classifier draws its copy and SGLD noise from
///   `RandomStream.attack(draw:part:)` with the `draw` below: PGD iteration i of restart r of
///   batch b differentiates its own fixed noise (fresh noise per iteration, like the official
///   script's `randn_like` on every call, while the function differentiated in one iteration is
///   deterministic); the final verdict on an example uses `evaluation(batch:)`, one draw per batch
///   shared by the clean pass, every epsilon, every restart and every refinement setting;
/// - the random start of restart r of batch b comes from `start(batch:restart:)`, the same for
///   every epsilon (scaled to it), so the accuracies at different epsilons share their random
///   numbers and differ only by the radius.
public enum AttackDraw {
    /// Limits of the fields packed into a draw (20 + 8 + 16 bits).
    public static let maxBatches = 1 << 20
    public static let maxRestarts = 1 << 8
    /// PGD iterations; the last value of the 16-bit field is the evaluation draw.
    public static let maxSteps = (1 << 16) - 1

    /// Iteration `iteration` of restart `restart` on batch `batch`.
    public static func iteration(batch: Int, restart: Int, iteration: Int) -> UInt64 {
        precondition(batch >= 0 && batch < maxBatches && restart >= 0 && restart < maxRestarts
                     && iteration >= 0 && iteration < maxSteps, "attack draw out of range")
        return UInt64(batch) << 24 | UInt64(restart) << 16 | UInt64(iteration)
    }

    /// The classifier that decides whether an example of batch `batch` is classified correctly.
    public static func evaluation(batch: Int) -> UInt64 {
        precondition(batch >= 0 && batch < maxBatches, "attack draw out of range")
        return UInt64(batch) << 24 | UInt64(maxSteps)
    }

    /// The Philox stream of the random start of restart `restart` on batch `batch`.
    public static func start(batch: Int, restart: Int) -> UInt64 {
        precondition(batch >= 0 && batch < maxBatches && restart >= 0 && restart < maxRestarts,
                     "attack draw out of range")
        return RandomStream.attackStart.id(UInt64(batch) << 8 | UInt64(restart))
    }
}
