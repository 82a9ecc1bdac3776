import JEMBackend
/// How the classifier under attack turns an input into logits, as the official
/// `attack_model.py` (`DummyModel.refined_logits`) does: `copies` copies of the input, each with
/// its own Gaussian noise of std `copyNoise`, each refined by `steps` SGLD steps on
/// f(x) = LogSumExp(logits(x)), `x <- x + stepSize * df/dx + noiseStd * N(0, I)` (no clamp, as
/// the official code), and the logits of the refined copies averaged. The official values:
/// 5 copies, sigma .03, SGLD step 1 with noise .01; `steps` is its `--n_steps_refine`.
public struct Refinement: Sendable, Equatable, Codable {
    public var steps: Int
    public var copies: Int
    public var copyNoise: Float
    public var stepSize: Float
    public var noiseStd: Float
    /// How the attack differentiates through the refinement.
    public var gradient: RefinementGradient

    public init(steps: Int, copies: Int = 5, copyNoise: Float = 0.03, stepSize: Float = 1, noiseStd: Float = 0.01,
                gradient: RefinementGradient = .full) {
        self.steps = steps
        self.copies = copies
        self.copyNoise = copyNoise
        self.stepSize = stepSize
        self.noiseStd = noiseStd
        self.gradient = gradient
    }
}

/// The input gradient of the refined classifier.
public enum RefinementGradient: String, Sendable, Codable, CaseIterable {
    /// The exact chain rule through every SGLD step: d x_{k+1} / d x_k = I + stepSize * H_k,
    /// H_k the Hessian of f at x_k (its products with vectors by finite differences).
    case full
    /// Treat the refinement as the identity in the backward pass (BPDA): the gradient of the
    /// logits at the refined point, passed straight to the input. This is what the official
    /// script computes in effect: its SGLD update writes `x_k.data`, which autograd does not see,
    /// and the gradient inside it is taken without `create_graph`.
    case straightThrough = "straight-through"
}
