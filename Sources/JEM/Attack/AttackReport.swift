import Foundation
import JEMBackend
import JEMSupport

/// What `jem-gpu attack` writes: DIR/attack.json (settings, counts, accuracies) and DIR/attack.md
/// (the table), both atomically.
public struct AttackReport: Codable, Sendable {
    public struct Row: Codable, Sendable {
        /// As the user wrote it ("8/255"), and its value in [0, 1] pixel units.
        public var epsilonText: String
        public var epsilon: Float
        /// In the model's [-1, 1] units, and the PGD step there (0 for the clean row).
        public var epsilonModelUnits: Float
        public var stepSizeModelUnits: Float
        /// Per refinement setting, in `refineSteps` order.
        public var correct: [Int]
        public var accuracy: [Double]
    }

    public var model: String
    public var data: String
    public var split: String
    public var backend: String
    public var examples: Int
    public var plan: AttackPlan
    /// The step-size rule in words ("2.5 * eps / steps" or the fixed value).
    public var stepSizeRule: String
    /// The clean row (epsilon 0) first, then one row per epsilon given.
    public var rows: [Row]
    public var seconds: Double

    public init(model: String, data: String, split: String, backend: String, plan: AttackPlan, epsilonTexts: [String],
                result: RobustAccuracyResult, seconds: Double) {
        self.model = model
        self.data = data
        self.split = split
        self.backend = backend
        self.plan = plan
        examples = result.examples
        stepSizeRule = plan.stepSize.map { "\($0) (fixed, [0, 1] pixel units)" } ?? "2.5 * eps / steps"
        self.seconds = seconds
        let columns = plan.refineSteps.indices
        rows = [Row(epsilonText: "0 (clean)", epsilon: 0, epsilonModelUnits: 0, stepSizeModelUnits: 0,
                    correct: result.cleanCorrect, accuracy: columns.map(result.cleanAccuracy))]
        for (i, epsilon) in plan.epsilons.enumerated() {
            let pgd = plan.pgd(epsilon: epsilon)
            rows.append(Row(epsilonText: epsilonTexts[i], epsilon: epsilon, epsilonModelUnits: pgd.epsilon,
                            stepSizeModelUnits: epsilon > 0 ? pgd.stepSize : 0, correct: result.robustCorrect[i],
                            accuracy: columns.map { result.robustAccuracy(i, $0) }))
        }
    }

    /// The table as rows of cells, header first: one row per epsilon, one column per refinement.
    public var tableCells: [[String]] {
        let header = ["eps (\(plan.norm.rawValue), [0,1] px)"] + plan.refineSteps.map { "refine \($0)" }
        return [header] + rows.map { row in
            [row.epsilonText] + row.accuracy.indices.map { j in
                String(format: "%.1f%% (%d/%d)", 100 * row.accuracy[j], row.correct[j], examples)
            }
        }
    }

    /// Markdown: a line of settings, then the table.
    public var markdown: String {
        let r = plan.refinement(steps: 0)
        var lines = [
            "# Robust accuracy under PGD",
            "",
            "Model `\(model)`, data `\(data)` (\(split), \(examples) examples), backend \(backend).",
            "PGD \(plan.norm.rawValue), \(plan.steps) steps of \(stepSizeRule), \(plan.restarts) restart(s), random "
                + "start; logits averaged over \(r.copies) copies (noise \(r.copyNoise)), each refined by SGLD (step "
                + "\(r.stepSize), noise \(r.noiseStd)), gradient \(r.gradient.rawValue); seed \(plan.seed). "
                + "Epsilon in [0, 1] pixel units (x2 in the model's [-1, 1] range).",
            "",
        ]
        let cells = tableCells
        lines.append("| " + cells[0].joined(separator: " | ") + " |")
        lines.append("|" + cells[0].map { _ in "---" }.joined(separator: "|") + "|")
        for row in cells.dropFirst() { lines.append("| " + row.joined(separator: " | ") + " |") }
        return lines.joined(separator: "\n") + "\n"
    }

    public func write(to folder: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: folder + "/attack.json")
        try AtomicFile.write(Data(markdown.utf8), to: folder + "/attack.md")
    }
}
