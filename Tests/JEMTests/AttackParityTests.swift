import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The attack on the OpenCL backend (PoCL's CPU device where there is no GPU) against the CPU
/// backend: the refined loss and its input gradient, the adversarial examples PGD finds, and the
/// robust-accuracy counts. These run on any OpenCL device; they never skip.
final class AttackParityTests: XCTestCase {
    let cpu = CPUBackend()
    /// One OpenCL backend for the class: its programs compile once per process.
    nonisolated(unsafe) private static var shared: OpenCLBackend?

    private func device() throws -> OpenCLBackend {
        if let shared = Self.shared { return shared }
        let made = try OpenCLBackend(selection: .first)
        print("attack parity on \(made.deviceDescription)")
        Self.shared = made
        return made
    }

    /// Loss and input gradient through 2 refinement steps (Hessian products included).
    func testRefinedLossAndGradientMatchCPU() throws {
        let batch = 6, refinement = Refinement(steps: 2, copies: 2, stepSize: 0.01)
        var results: [(losses: [Float], gradient: [Float])] = []
        for backend in [cpu, try device()] as [any Backend] {
            let net = try AttackFixture.trainedNet(on: backend, maxBatch: batch * 2)
            let classifier = try RefinedClassifier(net: net, refinement: refinement, maxSteps: 2, seed: 3)
            // Wrong labels: the trained net is so sure of the right ones that their cross-entropy
            // rounds to 0 in float32, and a parity check of values that are pure rounding means
            // nothing. Against a wrong label the loss and its gradient are O(1).
            let (x, _, trueLabels, _) = try AttackFixture.testBatch(batch, on: backend)
            let labels = try backend.makeBuffer(trueLabels.map { ($0 + 1) % 3 })
            classifier.lossGradient(x, labels: labels, batch: batch, draw: AttackDraw.iteration(batch: 0, restart: 0,
                                                                                                  iteration: 2))
            results.append((try backend.download(classifier.losses, offset: 0, count: batch),
                            try backend.download(classifier.inputGradient, offset: 0, count: batch * net.spec.inputCount)))
        }
        let lossError = maxRelativeError(results[1].losses, results[0].losses)
        let gradientError = maxRelativeError(results[1].gradient, results[0].gradient)
        print("refined loss relative error \(lossError), input gradient \(gradientError)")
        XCTAssertGreaterThan(results[0].losses.min() ?? 0, 0.01, "the losses must not be saturated")
        XCTAssertLessThan(lossError, 1e-3)
        XCTAssertLessThan(gradientError, 1e-3)
    }

    /// The same plan on both backends: the same counts, and adversarial examples whose loss agrees.
    func testRobustAccuracyMatchesCPU() throws {
        for norm in AttackNorm.allCases {
            let plan = AttackPlan(norm: norm, epsilons: norm == .linf ? [0.05, 0.1] : [0.5, 1], steps: 5,
                                  refineSteps: [0, 1], copies: 2, sgldStepSize: 0.01,
                                  batchSize: 10, seed: 6)
            var counts: [RobustAccuracyResult] = []
            var adversarial: [[Float]] = [], losses: [[Float]] = []
            for backend in [cpu, try device()] as [any Backend] {
                let net = try AttackFixture.trainedNet(on: backend, maxBatch: 30)
                let evaluation = try RobustAccuracy(net: net, plan: plan)
                counts.append(try evaluation.evaluate(AttackFixture.testImages, limit: 20))
                // The last attack run: batch 1, the largest epsilon, refinement 1. Its loss at the
                // adversarial examples, with the evaluation noise.
                let (_, _, _, labels) = try AttackFixture.testBatch(20, on: backend)
                let tail = try backend.makeBuffer(Array(try backend.downloadInt32(labels)[10..<20]))
                evaluation.classifier.lossGradient(evaluation.attack.adversarial, labels: tail, batch: 10,
                                                   draw: AttackDraw.evaluation(batch: 1))
                adversarial.append(try backend.download(evaluation.attack.adversarial, offset: 0, count: 10 * 64))
                losses.append(try backend.download(evaluation.classifier.losses, offset: 0, count: 10))
            }
            print("\(norm): cpu \(counts[0].robustCorrect) opencl \(counts[1].robustCorrect); adversarial max "
                  + "difference \(maxAbsDifference(adversarial[1], adversarial[0])), loss relative error "
                  + "\(maxRelativeError(losses[1], losses[0]))")
            XCTAssertEqual(counts[1], counts[0], "\(norm)")
            // Float differences could flip the sign of a near-zero gradient element and so move
            // one pixel by a step, and the CPU's Winograd convolutions round differently from the
            // device's im2col (~1e-4 relative per conv, compounded over 5 PGD steps through the
            // refinement): the loss at the end must agree to 5e-3.
            XCTAssertLessThan(maxRelativeError(losses[1], losses[0]), 5e-3, "\(norm)")
        }
    }
}
