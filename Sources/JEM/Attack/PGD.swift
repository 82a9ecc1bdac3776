import JEMBackend
/// The norm of an attack's threat model.
public enum AttackNorm: String, Sendable, Codable, CaseIterable {
    case linf, l2
}

/// One projected-gradient-descent attack (Madry et al. 2018), in the model's input units (pixels
/// span [-1, 1]; callers convert from [0, 1] pixel units, see `AttackPlan`).
public struct PGDSettings: Sendable, Equatable {
    public var norm: AttackNorm
    /// Radius of the ball around the clean input.
    public var epsilon: Float
    /// Length of each step: every element moves by it (L∞, sign of the gradient) or the whole
    /// image does (L2, the gradient scaled to this norm).
    public var stepSize: Float
    public var steps: Int

    public init(norm: AttackNorm, epsilon: Float, stepSize: Float, steps: Int) {
        self.norm = norm
        self.epsilon = epsilon
        self.stepSize = stepSize
        self.steps = steps
    }
}

/// PGD on the cross-entropy of the true label of a `RefinedClassifier`, batched on the device:
///
///     x = clip(x0 + random start in the ball)
///     repeat steps: x = project(x + step(grad of CE at x))
///
/// step: stepSize * sign(g) (L∞) or stepSize * g / ‖g‖ (L2, per example); project: onto the
/// epsilon ball around x0 (clamp each element of x - x0 to ±epsilon, or scale x - x0 down to norm
/// epsilon), then onto the pixel range [-1, 1]. Clipping to the range after the ball projection
/// stays inside the ball: x0 lies in the range, so clipping never moves an element away from it.
/// Random start: uniform in the L∞ ball; for L2 a uniformly random direction at distance epsilon
/// (on the sphere: for images, d in the hundreds, the uniform distribution on the ball puts
/// almost all its mass there anyway, P(r < 0.99 epsilon) = 0.99^d).
public final class PGDAttack {
    public let classifier: RefinedClassifier
    /// `[maxExamples][D]`: the adversarial examples of the last `run`.
    public let adversarial: DeviceBuffer
    let delta: DeviceBuffer
    let backend: any Backend
    let rowSize: Int
    /// The pixel range of the model's inputs.
    public static let range: ClosedRange<Float> = -1...1

    public init(classifier: RefinedClassifier) throws {
        self.classifier = classifier
        backend = classifier.backend
        rowSize = classifier.rowSize
        adversarial = try backend.makeBuffer(count: classifier.maxExamples * rowSize)
        delta = try backend.makeBuffer(count: classifier.maxExamples * rowSize)
    }

    /// Attacks the `batch` examples in `clean` (`[batch][D]`, labels `.int32`); the result is left
    /// in `adversarial`. Draws come from batch `batchIndex`, restart `restart` (see `AttackDraw`).
    @discardableResult
    public func run(clean: DeviceBuffer, labels: DeviceBuffer, batch: Int, settings: PGDSettings, batchIndex: Int,
                    restart: Int) -> DeviceBuffer {
        precondition(settings.epsilon >= 0 && settings.steps >= 0)
        let count = batch * rowSize, seed = classifier.seed, eps = settings.epsilon
        // Random start.
        let startStream = AttackDraw.start(batch: batchIndex, restart: restart)
        switch settings.norm {
        case .linf:
            backend.fillUniform(delta, count: count, low: -eps, high: eps, seed: seed, stream: startStream)
        case .l2:
            backend.fill(delta, value: 0, offset: 0, count: count)
            backend.addGaussianNoise(delta, count: count, std: 1, seed: seed, stream: startStream)
            backend.rescaleRows(delta, rows: batch, rowSize: rowSize, toNorm: eps, mode: .exact, norms: nil)
        }
        place(clean: clean, count: count)
        for step in 0..<settings.steps {
            classifier.lossGradient(adversarial, labels: labels, batch: batch,
                                    draw: AttackDraw.iteration(batch: batchIndex, restart: restart, iteration: step))
            let gradient = classifier.inputGradient
            // The step direction goes through `delta` (free until the projection below).
            switch settings.norm {
            case .linf:
                backend.sign(gradient, y: delta, count: count)
                backend.axpby(alpha: settings.stepSize, x: delta, beta: 1, y: adversarial, count: count)
            case .l2:
                backend.copy(gradient, to: delta, count: count)
                backend.rescaleRows(delta, rows: batch, rowSize: rowSize, toNorm: settings.stepSize, mode: .exact,
                                    norms: nil)
                backend.axpby(alpha: 1, x: delta, beta: 1, y: adversarial, count: count)
            }
            // delta = x - x0, projected onto the ball.
            backend.copy(adversarial, to: delta, count: count)
            backend.axpby(alpha: -1, x: clean, beta: 1, y: delta, count: count)
            switch settings.norm {
            case .linf: backend.clamp(delta, low: -eps, high: eps, count: count)
            case .l2: backend.rescaleRows(delta, rows: batch, rowSize: rowSize, toNorm: eps, mode: .atMost, norms: nil)
            }
            place(clean: clean, count: count)
        }
        return adversarial
    }

    /// adversarial = clip(clean + delta) to the pixel range.
    func place(clean: DeviceBuffer, count: Int) {
        backend.copy(clean, to: adversarial, count: count)
        backend.axpby(alpha: 1, x: delta, beta: 1, y: adversarial, count: count)
        backend.clamp(adversarial, low: Self.range.lowerBound, high: Self.range.upperBound, count: count)
    }
}
