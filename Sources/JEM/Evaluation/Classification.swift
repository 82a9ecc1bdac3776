import Foundation
import JEMBackend

/// Accuracy and mean cross-entropy of a classifier from its logits, in double precision.
public struct ClassificationMetrics: Codable, Sendable, Equatable {
    public var count: Int
    /// Fraction of examples whose first largest logit is the label.
    public var accuracy: Double
    /// Mean of LSE(logits) - logits[label] (natural log).
    public var nll: Double

    public init(logits: [Float], labels: [Int32], classCount k: Int) {
        precondition(logits.count == labels.count * k, "one logit row per label")
        var correct = 0, nll = 0.0
        for (r, y) in labels.enumerated() {
            let row = logits[(r * k)..<((r + 1) * k)]
            nll += logSumExp(row) - Double(row[row.startIndex + Int(y)])
            if Self.argmax(row) == Int(y) { correct += 1 }
        }
        count = labels.count
        accuracy = labels.isEmpty ? 0 : Double(correct) / Double(labels.count)
        self.nll = labels.isEmpty ? 0 : nll / Double(labels.count)
    }

    /// Index (from 0) of the first largest value, as numpy's argmax.
    static func argmax(_ row: ArraySlice<Float>) -> Int {
        var best = row.startIndex
        for i in row.indices where row[i] > row[best] { best = i }
        return best - row.startIndex
    }

    /// Whether each example's prediction is its label.
    public static func correctness(logits: [Float], labels: [Int32], classCount k: Int) -> [Bool] {
        labels.enumerated().map { r, y in argmax(logits[(r * k)..<((r + 1) * k)]) == Int(y) }
    }
}

/// log(sum(exp(row))) in double precision, max subtracted first: -inf for a row of -inf.
func logSumExp(_ row: ArraySlice<Float>) -> Double {
    let m = Double(row.max() ?? -.infinity)
    if !m.isFinite { return m }
    return m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
}
