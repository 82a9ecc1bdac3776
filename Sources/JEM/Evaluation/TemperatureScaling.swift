import Foundation
import JEMBackend

/// Temperature scaling (Guo et al. 2017): one scalar T > 0 that divides every logit, fitted by
/// minimising the mean NLL on held-out labelled images. It leaves the predictions (and so the
/// accuracy) unchanged and changes only the confidences, so NLL and ECE after scaling show how
/// much of a model's miscalibration one number removes.
///
/// The NLL of softmax(z / T) is convex in 1/T, hence unimodal in log T, and the fit is a golden
/// section search on log T over [`lowest`, `highest`], in double precision.
public enum TemperatureScaling {
    public static let lowest = 0.01
    public static let highest = 100.0

    /// Mean cross-entropy of softmax(logits / temperature) (rows of `classCount`), in double precision.
    public static func nll(logits: [Float], labels: [Int32], classCount k: Int, temperature t: Double) -> Double {
        precondition(logits.count == labels.count * k && t > 0)
        guard !labels.isEmpty else { return 0 }
        var total = 0.0
        for (r, y) in labels.enumerated() {
            let base = r * k
            var top = -Double.infinity
            for j in 0..<k { top = max(top, Double(logits[base + j]) / t) }
            var sum = 0.0
            for j in 0..<k { sum += Foundation.exp(Double(logits[base + j]) / t - top) }
            total += top + Foundation.log(sum) - Double(logits[base + Int(y)]) / t
        }
        return total / Double(labels.count)
    }

    /// The fitted temperature and the NLL before (T = 1) and after.
    public struct Fit: Sendable, Equatable {
        public var temperature: Double
        public var nllBefore: Double
        public var nllAfter: Double
    }

    /// Minimises `nll` over log T by golden section search (to a relative 1e-6 in T).
    public static func fit(logits: [Float], labels: [Int32], classCount k: Int) -> Fit {
        let objective = { (logT: Double) in nll(logits: logits, labels: labels, classCount: k, temperature: Foundation.exp(logT)) }
        var a = Foundation.log(lowest), b = Foundation.log(highest)
        let ratio = (5.0.squareRoot() - 1) / 2
        var c = b - ratio * (b - a), d = a + ratio * (b - a)
        var fc = objective(c), fd = objective(d)
        while b - a > 1e-6 {
            if fc <= fd {
                b = d; d = c; fd = fc
                c = b - ratio * (b - a); fc = objective(c)
            } else {
                a = c; c = d; fc = fd
                d = a + ratio * (b - a); fd = objective(d)
            }
        }
        var best = (a + b) / 2, bestValue = objective(best)
        // The search cannot return worse than no scaling when T = 1 lies in the interval.
        let unscaled = objective(0)
        if unscaled < bestValue { (best, bestValue) = (0, unscaled) }
        return Fit(temperature: Foundation.exp(best), nllBefore: unscaled, nllAfter: bestValue)
    }

    /// The logits divided by `temperature`, as float32 (identical to `logits` at T = 1).
    public static func scaled(_ logits: [Float], temperature t: Double) -> [Float] {
        t == 1 ? logits : logits.map { Float(Double($0) / t) }
    }

    /// Max softmax probability of each row, in double precision rounded to float32.
    public static func maxProbability(logits: [Float], classCount k: Int) -> [Float] {
        let n = k == 0 ? 0 : logits.count / k
        return (0..<n).map { r in
            let row = logits[(r * k)..<((r + 1) * k)]
            let top = Double(row.max() ?? 0)
            let sum = row.reduce(0.0) { $0 + Foundation.exp(Double($1) - top) }
            return Float(1 / sum)
        }
    }

    /// NLL, ECE and the reliability diagram of softmax(logits / temperature) (20 bins, as eval).
    public static func metrics(logits: [Float], labels: [Int32], classCount k: Int, temperature t: Double,
                               binCount: Int = 20) -> (nll: Double, ece: Double, diagram: ReliabilityDiagram) {
        let z = scaled(logits, temperature: t)
        let nll = ClassificationMetrics(logits: z, labels: labels, classCount: k).nll
        let diagram = ReliabilityDiagram(confidences: maxProbability(logits: z, classCount: k),
                                         correct: ClassificationMetrics.correctness(logits: z, labels: labels, classCount: k),
                                         binCount: binCount)
        return (nll, diagram.ece, diagram)
    }
}
