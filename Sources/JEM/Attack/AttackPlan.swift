import JEMBackend
/// Everything `RobustAccuracy` runs: the threat model in [0, 1] pixel units (as the paper and
/// foolbox state it), the PGD settings, and the refined classifiers to attack.
///
/// Units: the network sees pixels in [-1, 1] (x_model = 2 * x_pixel - 1, as the official
/// `attack_model.py` wrapper does), so a radius or step of e in [0, 1] units is 2e in the model's
/// units, for L∞ and L2 alike.
public struct AttackPlan: Sendable, Equatable, Codable {
    public var norm: AttackNorm
    /// Radii in [0, 1] pixel units; 0 needs no attack (the ball is the clean input).
    public var epsilons: [Float]
    public var steps: Int
    /// Step length in [0, 1] pixel units for every epsilon; nil: 2.5 * epsilon / steps, the rule
    /// of Madry et al., which lets PGD cross the whole ball and back within its steps.
    public var stepSize: Float?
    /// Independent random starts; an example counts as broken if any of them breaks it.
    public var restarts: Int
    /// SGLD refinement steps of each classifier attacked (one column of the result each).
    public var refineSteps: [Int]
    /// The rest of the classifier (see `Refinement`): copies, their noise, the SGLD step and
    /// noise, and how the attack differentiates through the refinement.
    public var copies: Int
    public var copyNoise: Float
    public var sgldStepSize: Float
    public var sgldNoise: Float
    public var refineGradient: RefinementGradient
    /// Examples per batch; the network runs `batchSize * copies` images at once.
    public var batchSize: Int
    public var seed: UInt64

    public init(norm: AttackNorm, epsilons: [Float], steps: Int = 40, stepSize: Float? = nil, restarts: Int = 1,
                refineSteps: [Int], copies: Int = 5, copyNoise: Float = 0.03, sgldStepSize: Float = 1,
                sgldNoise: Float = 0.01, refineGradient: RefinementGradient = .full, batchSize: Int = 20,
                seed: UInt64 = 1) {
        self.norm = norm
        self.epsilons = epsilons
        self.steps = steps
        self.stepSize = stepSize
        self.restarts = restarts
        self.refineSteps = refineSteps
        self.copies = copies
        self.copyNoise = copyNoise
        self.sgldStepSize = sgldStepSize
        self.sgldNoise = sgldNoise
        self.refineGradient = refineGradient
        self.batchSize = batchSize
        self.seed = seed
    }

    /// The classifier of column `steps`.
    public func refinement(steps: Int) -> Refinement {
        Refinement(steps: steps, copies: copies, copyNoise: copyNoise, stepSize: sgldStepSize, noiseStd: sgldNoise,
                   gradient: refineGradient)
    }

    /// [0, 1] pixel units to the model's [-1, 1] units.
    public static func modelUnits(_ pixels: Float) -> Float { 2 * pixels }

    /// Step length in [0, 1] pixel units at radius `epsilon`.
    public func stepSize(epsilon: Float) -> Float { stepSize ?? 2.5 * epsilon / Float(steps) }

    /// The PGD settings at radius `epsilon` ([0, 1] units), in the model's units.
    public func pgd(epsilon: Float) -> PGDSettings {
        PGDSettings(norm: norm, epsilon: Self.modelUnits(epsilon), stepSize: Self.modelUnits(stepSize(epsilon: epsilon)),
                    steps: steps)
    }

    /// The first problem with the plan, as a message naming the setting, or nil.
    public func problem() -> String? {
        if epsilons.isEmpty { return "no epsilon given" }
        if let bad = epsilons.first(where: { !($0 >= 0) || !$0.isFinite }) { return "epsilon \(bad) must be >= 0" }
        if steps < 1 || steps >= AttackDraw.maxSteps { return "steps \(steps) must be in 1...\(AttackDraw.maxSteps - 1)" }
        if let s = stepSize, !(s > 0) || !s.isFinite { return "step size \(s) must be > 0" }
        if restarts < 1 || restarts > AttackDraw.maxRestarts {
            return "restarts \(restarts) must be in 1...\(AttackDraw.maxRestarts)"
        }
        if refineSteps.isEmpty { return "no refinement setting given" }
        if let bad = refineSteps.first(where: { $0 < 0 || $0 > 4094 }) { return "refine \(bad) must be in 0...4094" }
        if copies < 1 { return "copies \(copies) must be >= 1" }
        if !(copyNoise >= 0) { return "copy noise \(copyNoise) must be >= 0" }
        if !(sgldStepSize >= 0) { return "SGLD step \(sgldStepSize) must be >= 0" }
        if !(sgldNoise >= 0) { return "SGLD noise \(sgldNoise) must be >= 0" }
        if batchSize < 1 { return "batch size \(batchSize) must be >= 1" }
        return nil
    }
}
