import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The attack on the CPU backend: the per-row ops it adds, the input gradient through the SGLD
/// refinement against finite differences of the whole composite, PGD's constraints, and robust
/// accuracy on a trained tiny model (`AttackFixture`).
final class AttackTests: XCTestCase {
    let cpu = CPUBackend()
    var d: Int { AttackFixture.spec.inputCount }

    // MARK: Backend ops

    func testRowOpsMatchNaiveLoops() throws {
        let rows = 5, size = 37
        var x0 = randomArray(rows * size, stream: 3)
        for j in 0..<size { x0[2 * size + j] = 0 }   // a row of zeros stays zero
        for mode in [RowRescale.exact, .atMost] {
            let x = try cpu.makeBuffer(x0), norms = try cpu.makeBuffer(count: rows)
            cpu.rescaleRows(x, rows: rows, rowSize: size, toNorm: 2.5, mode: mode, norms: norms)
            let got = try cpu.download(x), gotNorms = try cpu.download(norms)
            for r in 0..<rows {
                let row = x0[(r * size)..<((r + 1) * size)].map(Double.init)
                let n = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
                XCTAssertEqual(Double(gotNorms[r]), n, accuracy: 1e-5 * max(n, 1))
                let factor = n == 0 || (mode == .atMost && n <= 2.5) ? 1 : 2.5 / n
                for j in 0..<size {
                    XCTAssertEqual(Double(got[r * size + j]), row[j] * factor, accuracy: 1e-5, "\(mode) row \(r)")
                }
            }
        }
        let x = try cpu.makeBuffer(x0), factors = try cpu.makeBuffer([Float]([2, -1, 3, 0.5, 0]))
        cpu.scaleRows(x, by: factors, rows: rows, rowSize: size)
        XCTAssertEqual(try cpu.download(x), x0.enumerated().map { $0.element * [2, -1, 3, 0.5, 0][$0.offset / size] })
        let values: [Float] = [-2, 0, 3e-30, -0.0, .nan, 7]
        let y = try cpu.makeBuffer(count: values.count)
        cpu.sign(try cpu.makeBuffer(values), y: y, count: values.count)
        let signs = try cpu.download(y)
        XCTAssertEqual(Array(signs[0..<4]), [-1, 0, 1, 0])
        XCTAssertEqual(signs[3].sign, .minus)
        XCTAssertTrue(signs[4].isNaN)
        XCTAssertEqual(signs[5], 1)
    }

    // MARK: Gradient through the refinement

    /// Per-example cross-entropy (in Double) of the classifier's averaged logits at `pixels`.
    func losses(_ classifier: RefinedClassifier, _ pixels: [Float], labels: [Int32], draw: UInt64) throws -> [Double] {
        let k = classifier.net.spec.classCount, n = labels.count
        let logits = try cpu.download(classifier.logits(try cpu.makeBuffer(pixels), batch: n, draw: draw),
                                      offset: 0, count: n * k)
        return (0..<n).map { e in
            let row = logits[(e * k)..<((e + 1) * k)].map(Double.init)
            let m = row.max()!
            return m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) }) - row[Int(labels[e])]
        }
    }

    /// The analytic input gradient of the summed cross-entropy, and the same by central
    /// differences of the whole composite (copies, their noise, SGLD refinement, averaging, CE),
    /// coordinate by coordinate, with the same fixed noise. Each example's loss depends only on
    /// its own input, so one perturbed coordinate serves every example of the batch at once.
    func gradients(_ classifier: RefinedClassifier, batch: Int, t: Float) throws -> (analytic: [Float], numeric: [Float]) {
        let d = classifier.net.spec.inputCount
        let (x, pixels, labels, labelBuffer) = try AttackFixture.testBatch(batch, on: cpu)
        let draw = AttackDraw.iteration(batch: 3, restart: 1, iteration: 7)
        classifier.lossGradient(x, labels: labelBuffer, batch: batch, draw: draw)
        let analytic = try cpu.download(classifier.inputGradient, offset: 0, count: batch * d)
        var numeric = [Float](repeating: 0, count: batch * d)
        for j in 0..<d {
            var up = pixels, down = pixels
            for e in 0..<batch { up[e * d + j] += t; down[e * d + j] -= t }
            let plus = try losses(classifier, up, labels: labels, draw: draw)
            let minus = try losses(classifier, down, labels: labels, draw: draw)
            for e in 0..<batch { numeric[e * d + j] = Float((plus[e] - minus[e]) / (2 * Double(t))) }
        }
        return (analytic, numeric)
    }

    /// max over examples of ‖a - b‖ / ‖b‖.
    func worstRelativeError(_ a: [Float], _ b: [Float], batch: Int) -> Double {
        let d = a.count / batch
        return (0..<batch).map { e -> Double in
            let r = (e * d)..<((e + 1) * d)
            let diff = zip(a[r], b[r]).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
            let norm = b[r].reduce(0.0) { $0 + Double($1) * Double($1) }
            return (diff / norm).squareRoot()
        }.max()!
    }

    /// The gradient through 0, 1 and 2 refinement steps against central differences of the
    /// composite, on a smooth (Swish) network so that the composite is differentiable everywhere.
    ///
    /// Tolerance 1e-3 (relative L2 error per example): the composite's central difference with
    /// t = 1e-2 errs by the float32 rounding of the loss (~1e-7 absolute, / 2t = 5e-6 per
    /// coordinate, against coordinates of ~1e-2) plus an O(t²) truncation, and each refinement
    /// step adds the finite-difference Hessian product's own O(1e-4) error; measured: 1.3e-4 to
    /// 1.6e-4 at every step count. SGLD step 10 (the official step is 1) makes the Hessian term
    /// large enough that leaving it out (straight-through) misses by 1e-2 per step, ten times the
    /// tolerance: the check sees the term. Step 1 is checked too.
    func testRefinedGradientMatchesFiniteDifferences() throws {
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 8, imageWidth: 8, classCount: 3,
                                  activation: .swish)
        let batch = 4, tolerance = 1e-3
        let net = try WideResNet(spec: spec, maxBatch: batch * 3, backend: cpu)
        net.initialize(seed: 5)
        for (steps, sgldStep) in [(0, Float(10)), (1, 10), (2, 10), (2, 1)] {
            let classifier = try RefinedClassifier(
                net: net, refinement: Refinement(steps: steps, copies: 3, copyNoise: 0.03, stepSize: sgldStep,
                                                 noiseStd: 0.01), maxSteps: 2, seed: 5)
            let (analytic, numeric) = try gradients(classifier, batch: batch, t: 1e-2)
            let error = worstRelativeError(analytic, numeric, batch: batch)
            XCTAssertLessThan(error, tolerance, "refine \(steps), SGLD step \(sgldStep)")
            if steps > 0 && sgldStep == 10 {
                classifier.refinement.gradient = .straightThrough
                let (straight, _) = try gradients(classifier, batch: batch, t: 1e-2)
                XCTAssertGreaterThan(worstRelativeError(straight, numeric, batch: batch), 5 * tolerance,
                                     "refine \(steps): the Hessian term should matter here")
            }
        }
    }

    // MARK: PGD

    /// Every adversarial example lies in the epsilon ball around its clean input and in [-1, 1],
    /// for both norms, with radii small and large enough that the range clamp is active.
    func testPGDStaysInsideBallAndPixelRange() throws {
        let batch = 12
        let net = try AttackFixture.trainedNet(on: cpu, maxBatch: batch * 2)
        let classifier = try RefinedClassifier(
            net: net, refinement: Refinement(steps: 1, copies: 2, stepSize: 0.01), maxSteps: 1, seed: 2)
        let attack = try PGDAttack(classifier: classifier)
        let (x, pixels, _, labels) = try AttackFixture.testBatch(batch, on: cpu)
        for (norm, radii) in [(AttackNorm.linf, [Float(0.05), 0.8]), (.l2, [0.5, 6])] {
            for eps in radii {
                let settings = PGDSettings(norm: norm, epsilon: eps, stepSize: 2.5 * eps / 5, steps: 5)
                attack.run(clean: x, labels: labels, batch: batch, settings: settings, batchIndex: 0, restart: 0)
                let adv = try cpu.download(attack.adversarial, offset: 0, count: batch * d)
                XCTAssertTrue(adv.allSatisfy { $0 >= -1 && $0 <= 1 }, "\(norm) \(eps): outside [-1, 1]")
                var largest: Float = 0
                for e in 0..<batch {
                    let delta = (0..<d).map { adv[e * d + $0] - pixels[e * d + $0] }
                    let size = norm == .linf ? delta.map(abs).max()! : delta.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    // x0 + clamp(x - x0) rounds once more: a few ulps of the pixel (~1e-7) beyond.
                    XCTAssertLessThanOrEqual(size, eps * (1 + 1e-5) + 1e-6, "\(norm) \(eps) example \(e)")
                    largest = max(largest, size)
                }
                // The attack moves to the ball's edge for some example (it is not stuck at x0).
                XCTAssertGreaterThan(largest, 0.9 * eps, "\(norm) \(eps)")
                if eps >= 0.8 { XCTAssertTrue(adv.contains(1) || adv.contains(-1), "\(norm) \(eps): no pixel clamped") }
            }
        }
    }

    /// Epsilon 0: the random start and every projected step leave the clean input bit for bit,
    /// so the verdicts are the clean ones.
    func testZeroEpsilonGivesTheCleanInput() throws {
        let batch = 12
        let net = try AttackFixture.trainedNet(on: cpu, maxBatch: batch * 2)
        let plan = AttackPlan(norm: .linf, epsilons: [0], steps: 3, refineSteps: [1],
                              copies: 2, sgldStepSize: 0.01, batchSize: batch)
        let evaluation = try RobustAccuracy(net: net, plan: plan)
        evaluation.classifier.refinement.steps = 1
        let (x, pixels, labels, labelBuffer) = try AttackFixture.testBatch(batch, on: cpu)
        let clean = try evaluation.verdicts(x, labels: labels, batchIndex: 0)
        for norm in AttackNorm.allCases {
            let settings = PGDSettings(norm: norm, epsilon: 0, stepSize: 0.1, steps: 3)
            evaluation.attack.run(clean: x, labels: labelBuffer, batch: batch, settings: settings, batchIndex: 0,
                                  restart: 0)
            XCTAssertEqual(try cpu.download(evaluation.attack.adversarial, offset: 0, count: batch * d), pixels, "\(norm)")
            XCTAssertEqual(try evaluation.verdicts(evaluation.attack.adversarial, labels: labels, batchIndex: 0), clean)
        }
    }

    /// On the trained model: high clean accuracy, robust accuracy non-increasing in epsilon,
    /// and well below clean at the largest epsilon, for the plain and the refined classifier.
    func testRobustAccuracyFallsWithEpsilon() throws {
        let plan = AttackPlan(norm: .linf, epsilons: [0.02, 0.05, 0.1, 0.2], steps: 8, restarts: 1, refineSteps: [0, 1],
                              copies: 2, sgldStepSize: 0.01, batchSize: 15, seed: 4)
        let net = try AttackFixture.trainedNet(on: cpu, maxBatch: 30)
        let result = try RobustAccuracy(net: net, plan: plan).evaluate(AttackFixture.testImages, limit: 45)
        print("robust accuracy (linf, refine 0 | 1): clean \(result.cleanCorrect), by epsilon \(result.robustCorrect)")
        XCTAssertEqual(result.examples, 45)
        for j in 0..<2 {
            XCTAssertGreaterThanOrEqual(result.cleanAccuracy(j), 0.85, "refine \(plan.refineSteps[j])")
            var previous = result.cleanCorrect[j]
            for i in plan.epsilons.indices {
                XCTAssertLessThanOrEqual(result.robustCorrect[i][j], previous, "eps \(plan.epsilons[i])")
                previous = result.robustCorrect[i][j]
            }
            XCTAssertLessThan(result.robustAccuracy(plan.epsilons.count - 1, j), result.cleanAccuracy(j) - 0.3)
        }
    }
}
