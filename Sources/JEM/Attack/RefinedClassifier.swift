import JEMBackend
/// The classifier an attack targets (see `Refinement`): logits averaged over noisy copies of each
/// input, each copy refined by SGLD on f = LogSumExp(logits), and the input gradient of the
/// cross-entropy of those averaged logits, all on the device.
///
/// Copy c of example b is row `c * batch + b` of a `[copies * batch][D]` buffer, so the copies of
/// all examples run through the network as one batch, the average over copies is one GEMM with a
/// row of 1/copies, and the sum of the copies' input gradients one GEMM with a row of ones.
///
/// Forward, with the noise n and xi fixed by `draw` (Philox, see `AttackDraw`):
///
///     x_0 = repeat(x) + copyNoise * n
///     x_{k+1} = x_k + a * grad f(x_k) + s * xi_k          k = 0 ..< steps
///     logits = mean over copies of net(x_steps)
///
/// Backward (`.full`): the Jacobian of one step is I + a * H_k, H_k the Hessian of f at x_k
/// (symmetric, so it is its own transpose), hence g_k = g_{k+1} + a * H_k g_{k+1}, down to g_0,
/// then the copies' gradients are summed into the input gradient. The engine has no double
/// backprop, so H_k v is a central difference of input gradients (`hessianVectorProduct`).
public final class RefinedClassifier {
    public let net: WideResNet
    /// `steps` may change between calls, up to `maxSteps`; `copies` is fixed by the buffers.
    public var refinement: Refinement {
        didSet {
            precondition(refinement.steps >= 0 && refinement.steps <= maxSteps && refinement.copies == oldValue.copies,
                         "refinement steps above maxSteps or copies changed")
        }
    }
    public let maxSteps: Int
    /// Most examples per call: the network's batch divided by the copies.
    public let maxExamples: Int
    public let seed: UInt64
    /// Root-mean-square change per input element of the finite-difference probes x ± h u (see
    /// `hessianVectorProduct`), in the model's input units (pixels span [-1, 1]).
    public var hessianProbeScale: Float = 1e-3

    let backend: any Backend
    let rowSize: Int
    let classCount: Int
    /// x_0 ... x_maxSteps, each `[copies * maxExamples][D]`.
    let states: [DeviceBuffer]
    let probe: DeviceBuffer
    let direction: DeviceBuffer
    let gradPlus: DeviceBuffer
    let gradMinus: DeviceBuffer
    /// The gradient flowing back through the refinement, one row per copy.
    let chainGradient: DeviceBuffer
    let rowNorms: DeviceBuffer
    /// grad f for the SGLD refinement steps and the Hessian-vector probes.
    let energy: EnergyGradient
    let ones: DeviceBuffer
    let gradCopyLogits: DeviceBuffer
    /// `[maxExamples][K]`: the averaged logits of the last call.
    public let averagedLogits: DeviceBuffer
    let gradAveraged: DeviceBuffer
    /// `[maxExamples]`: the per-example cross-entropy of the last `lossGradient` call.
    public let losses: DeviceBuffer
    /// `[maxExamples][D]`: the input gradient of the last `lossGradient` call.
    public let inputGradient: DeviceBuffer

    public init(net: WideResNet, refinement: Refinement, maxSteps: Int, seed: UInt64) throws {
        precondition(refinement.copies >= 1 && refinement.steps >= 0 && refinement.steps <= maxSteps)
        guard net.maxBatch >= refinement.copies else {
            throw BackendError("the network's batch \(net.maxBatch) is smaller than the \(refinement.copies) copies")
        }
        self.net = net
        self.refinement = refinement
        self.maxSteps = maxSteps
        self.seed = seed
        let backend = net.backend
        self.backend = backend
        rowSize = net.spec.inputCount
        classCount = net.spec.classCount
        maxExamples = net.maxBatch / refinement.copies
        let rows = refinement.copies * maxExamples, size = rows * net.spec.inputCount
        states = try (0...maxSteps).map { _ in try backend.makeBuffer(count: size) }
        probe = try backend.makeBuffer(count: size)
        direction = try backend.makeBuffer(count: size)
        gradPlus = try backend.makeBuffer(count: size)
        gradMinus = try backend.makeBuffer(count: size)
        chainGradient = try backend.makeBuffer(count: size)
        rowNorms = try backend.makeBuffer(count: rows)
        energy = try EnergyGradient(net: net, inputGradient: false)
        ones = try backend.makeBuffer(count: rows)
        backend.fill(ones, value: 1, offset: 0, count: rows)
        gradCopyLogits = try backend.makeBuffer(count: rows * classCount)
        averagedLogits = try backend.makeBuffer(count: maxExamples * classCount)
        gradAveraged = try backend.makeBuffer(count: maxExamples * classCount)
        losses = try backend.makeBuffer(count: maxExamples)
        inputGradient = try backend.makeBuffer(count: maxExamples * net.spec.inputCount)
    }

    /// The averaged logits `[batch][K]` of the refined copies of `input` (`[batch][D]`).
    @discardableResult
    public func logits(_ input: DeviceBuffer, batch: Int, draw: UInt64) -> DeviceBuffer {
        precondition(batch >= 1 && batch <= maxExamples, "batch \(batch) outside 1...\(maxExamples)")
        let copies = refinement.copies, rows = copies * batch, count = rows * rowSize
        for c in 0..<copies {
            backend.copy(input, sourceOffset: 0, to: states[0], destinationOffset: c * batch * rowSize,
                         count: batch * rowSize)
        }
        if refinement.copyNoise > 0 {
            backend.addGaussianNoise(states[0], count: count, std: refinement.copyNoise, seed: seed,
                                     stream: RandomStream.attack(draw: draw, part: 0))
        }
        for k in 0..<refinement.steps {
            energyGradient(at: states[k], rows: rows, into: gradPlus)
            backend.copy(states[k], to: states[k + 1], count: count)
            backend.sgldUpdate(x: states[k + 1], grad: gradPlus, count: count, stepSize: refinement.stepSize,
                               noiseStd: refinement.noiseStd, seed: seed,
                               stream: RandomStream.attack(draw: draw, part: 1 + k), gradClip: nil, clampRange: nil)
        }
        let copyLogits = net.forward(states[refinement.steps], batch: rows)
        // averaged[1][batch*K] = (1/copies) * ones[1][copies] x copyLogits[copies][batch*K]
        backend.gemm(m: 1, n: batch * classCount, k: copies, alpha: 1 / Float(copies), a: ones, b: copyLogits,
                     c: averagedLogits)
        return averagedLogits
    }

    /// The per-example cross-entropy of the averaged logits (into `losses`) and the gradient of
    /// their sum with respect to `input` (into `inputGradient`, `[batch][D]`), with the noise of
    /// `draw`. Summing over examples keeps each example's gradient its own.
    public func lossGradient(_ input: DeviceBuffer, labels: DeviceBuffer, batch: Int, draw: UInt64) {
        let copies = refinement.copies, rows = copies * batch, k = classCount
        logits(input, batch: batch, draw: draw)
        backend.softmaxCrossEntropyForward(averagedLogits, labels: labels, rows: batch, cols: k, losses: losses)
        backend.softmaxCrossEntropyBackward(averagedLogits, labels: labels, rows: batch, cols: k, scale: 1,
                                            gradLogits: gradAveraged, accumulate: false)
        // Every copy's logits get 1/copies of the averaged logits' gradient:
        // grad[copies][batch*K] = (1/copies) * ones[copies][1] x gradAveraged[1][batch*K].
        backend.gemm(m: copies, n: batch * k, k: 1, alpha: 1 / Float(copies), a: ones, b: gradAveraged,
                     c: gradCopyLogits)
        // The last forward was net(x_steps), so this is the gradient at the refined copies.
        net.backward(gradLogits: gradCopyLogits, batch: rows, gradInput: chainGradient, mode: .inputOnly)
        if refinement.gradient == .full {
            for step in (0..<refinement.steps).reversed() {
                hessianVectorProduct(at: states[step], vector: chainGradient, rows: rows,
                                     accumulateScaled: refinement.stepSize)
            }
        }
        // inputGradient[1][batch*D] = ones[1][copies] x chainGradient[copies][batch*D]
        backend.gemm(m: 1, n: batch * rowSize, k: copies, a: ones, b: chainGradient, c: inputGradient)
    }

    /// grad f at `x` (`rows` rows), f = LogSumExp of the logits, summed over rows (each row's
    /// gradient is its own).
    func energyGradient(at x: DeviceBuffer, rows: Int, into gradient: DeviceBuffer) {
        energy.gradient(at: x, batch: rows, into: gradient)
    }

    /// v += scale * H v, H the Hessian of f at `x`, row by row (f is a sum of per-row terms, so H
    /// is block diagonal and each row is its own problem).
    ///
    /// Each row of v is split into its norm and direction u (‖u‖ = 1) and
    ///
    ///     H u ≈ (grad f(x + h u) - grad f(x - h u)) / (2h),   h = hessianProbeScale * sqrt(D),
    ///
    /// then multiplied back by the norm. Normalising per row matters: PGD uses each example's
    /// gradient direction whatever its size, and one probe size for all rows would push the rows
    /// with tiny gradients (confidently classified examples) into float32 rounding noise.
    ///
    /// Why h: the central difference errs by about h² |f'''| / 6 (truncation) plus ρ ‖grad f‖ / h
    /// (rounding: ρ ~ 1e-6, the relative error of a float32 gradient through the network). A probe
    /// that moves each element by ~1e-3 (RMS) in a [-1, 1] range is ten times smaller than the
    /// SGLD noise itself (0.01), so the truncation error stays far below the scale on which the
    /// network's gradient changes, and h (≈ 0.03 for 28×28 inputs) is large enough that the
    /// rounding error is ~1e-4 of the gradient (AttackTests measures 1e-4 against differences of
    /// the whole composite on a smooth network). With LeakyReLU (the official network) grad f
    /// jumps where a unit changes sign, so the refinement is itself discontinuous there; the
    /// difference then returns the secant over [x - h u, x + h u], jumps included, where double
    /// backprop would return the piecewise Hessian and ignore them. Rows of zeros stay zero:
    /// their probes coincide, so the difference is exactly 0.
    func hessianVectorProduct(at x: DeviceBuffer, vector v: DeviceBuffer, rows: Int, accumulateScaled scale: Float) {
        let count = rows * rowSize
        let h = hessianProbeScale * Float(rowSize).squareRoot()
        backend.copy(v, to: direction, count: count)
        backend.rescaleRows(direction, rows: rows, rowSize: rowSize, toNorm: 1, mode: .exact, norms: rowNorms)
        backend.copy(x, to: probe, count: count)
        backend.axpby(alpha: h, x: direction, beta: 1, y: probe, count: count)
        energyGradient(at: probe, rows: rows, into: gradPlus)
        backend.copy(x, to: probe, count: count)
        backend.axpby(alpha: -h, x: direction, beta: 1, y: probe, count: count)
        energyGradient(at: probe, rows: rows, into: gradMinus)
        backend.axpby(alpha: -1, x: gradMinus, beta: 1, y: gradPlus, count: count)
        backend.scaleRows(gradPlus, by: rowNorms, rows: rows, rowSize: rowSize)
        backend.axpby(alpha: scale / (2 * h), x: gradPlus, beta: 1, y: v, count: count)
    }
}
