import Foundation
import JEMBackend

/// Counts of one attack run: for each refinement setting (column), the examples classified
/// correctly when clean and under attack at each epsilon (row).
public struct RobustAccuracyResult: Sendable, Equatable, Codable {
    public var examples: Int
    /// `cleanCorrect[j]`: correct clean examples under refinement setting j.
    public var cleanCorrect: [Int]
    /// `robustCorrect[i][j]`: examples correct clean and after every restart at epsilon i, setting j.
    public var robustCorrect: [[Int]]

    public func cleanAccuracy(_ j: Int) -> Double { Double(cleanCorrect[j]) / Double(max(examples, 1)) }
    public func robustAccuracy(_ i: Int, _ j: Int) -> Double { Double(robustCorrect[i][j]) / Double(max(examples, 1)) }
}

/// Robust accuracy under PGD: every example of an image set, attacked batch by batch on the
/// device, for every epsilon and refinement setting of an `AttackPlan`.
///
/// An example counts as robust at epsilon if the refined classifier gets it right when clean and
/// after each restart's attack. The verdicts all use the same classifier noise per batch
/// (`AttackDraw.evaluation`), so epsilon = 0 gives exactly the clean accuracy, and a smaller
/// epsilon does not look worse only because of a different draw. Only the averaged logits
/// (`batch x K` floats) come back to the host, once per verdict.
public final class RobustAccuracy {
    public let plan: AttackPlan
    public let classifier: RefinedClassifier
    public let attack: PGDAttack
    let backend: any Backend
    let clean: DeviceBuffer
    let labels: DeviceBuffer

    /// `net` must hold `plan.batchSize * plan.copies` images per batch.
    public init(net: WideResNet, plan: AttackPlan) throws {
        if let problem = plan.problem() { throw BackendError("attack plan: \(problem)") }
        guard net.maxBatch >= plan.batchSize * plan.copies else {
            throw BackendError("attack plan: the network's batch \(net.maxBatch) is below batch size \(plan.batchSize) "
                               + "x \(plan.copies) copies")
        }
        self.plan = plan
        classifier = try RefinedClassifier(net: net, refinement: plan.refinement(steps: 0),
                                           maxSteps: plan.refineSteps.max()!, seed: plan.seed)
        attack = try PGDAttack(classifier: classifier)
        backend = net.backend
        clean = try backend.makeBuffer(count: plan.batchSize * net.spec.inputCount)
        labels = try backend.makeBuffer(count: plan.batchSize, type: .int32)
    }

    /// Attacks the first `limit` images of `images` (all when nil). `progress(done, total, note)` is
    /// called after each (batch, refinement setting).
    public func evaluate(_ images: ImageSet, limit: Int? = nil,
                         progress: ((Int, Int, String) -> Void)? = nil) throws -> RobustAccuracyResult {
        let spec = classifier.net.spec
        guard images.shape == [spec.inputChannels, spec.imageHeight, spec.imageWidth] else {
            throw BackendError("images are \(images.shape.map(String.init).joined(separator: "x")), the model expects "
                               + "\(spec.inputChannels)x\(spec.imageHeight)x\(spec.imageWidth)")
        }
        guard let allLabels = images.labels else { throw BackendError("the images have no labels") }
        let total = min(limit ?? images.count, images.count)
        let batches = (total + plan.batchSize - 1) / plan.batchSize
        guard batches <= AttackDraw.maxBatches else {
            throw BackendError("\(total) examples make \(batches) batches, at most \(AttackDraw.maxBatches) are supported")
        }
        let columns = plan.refineSteps.count
        var result = RobustAccuracyResult(examples: total, cleanCorrect: [Int](repeating: 0, count: columns),
                                          robustCorrect: [[Int]](repeating: [Int](repeating: 0, count: columns),
                                                                 count: plan.epsilons.count))
        let size = spec.inputCount
        var pixels = [Float](repeating: 0, count: plan.batchSize * size)
        for b in 0..<batches {
            let start = b * plan.batchSize, n = min(plan.batchSize, total - start)
            pixels.withUnsafeMutableBufferPointer { images.images(Array(start..<(start + n)), into: $0.baseAddress!) }
            let y = Array(allLabels[start..<(start + n)])
            try backend.upload(Array(pixels[0..<(n * size)]), to: clean, offset: 0)
            try backend.upload(y, to: labels, offset: 0)
            for (j, steps) in plan.refineSteps.enumerated() {
                classifier.refinement.steps = steps
                let cleanRight = try verdicts(clean, labels: y, batchIndex: b)
                result.cleanCorrect[j] += cleanRight.filter { $0 }.count
                for (i, epsilon) in plan.epsilons.enumerated() {
                    var robust = cleanRight
                    // epsilon 0: the ball is the clean input, nothing to attack.
                    if epsilon > 0 {
                        for restart in 0..<plan.restarts where robust.contains(true) {
                            attack.run(clean: clean, labels: labels, batch: n, settings: plan.pgd(epsilon: epsilon),
                                       batchIndex: b, restart: restart)
                            let right = try verdicts(attack.adversarial, labels: y, batchIndex: b)
                            for e in 0..<n where !right[e] { robust[e] = false }
                        }
                    }
                    result.robustCorrect[i][j] += robust.filter { $0 }.count
                }
                progress?(b * columns + j + 1, batches * columns, "batch \(b + 1)/\(batches), refine \(steps)")
            }
        }
        return result
    }

    /// Whether the refined classifier (with the batch's evaluation noise) predicts each label.
    public func verdicts(_ input: DeviceBuffer, labels y: [Int32], batchIndex: Int) throws -> [Bool] {
        let k = classifier.net.spec.classCount
        let logits = try backend.download(
            classifier.logits(input, batch: y.count, draw: AttackDraw.evaluation(batch: batchIndex)),
            offset: 0, count: y.count * k)
        return y.enumerated().map { e, label in
            let row = logits[(e * k)..<((e + 1) * k)]
            // The first index of the largest logit, as argmax in PyTorch and NumPy.
            let best = row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }! - e * k
            return best == Int(label)
        }
    }
}
