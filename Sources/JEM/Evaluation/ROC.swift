import JEMBackend
/// Area under the ROC curve for "is this example positive (in-distribution)?", where a higher
/// score means more in-distribution, and the curve itself for plotting.
///
/// AUROC is the Mann-Whitney U statistic over all (positive, negative) pairs: a pair counts 1
/// when the positive scores higher, 1/2 when the scores tie, 0 otherwise, divided by
/// n_pos · n_neg. That is exactly what `sklearn.metrics.roc_auc_score` returns (the trapezoid
/// under the curve whose tied scores form diagonal steps), computed here from average ranks in
/// O(n log n).
public enum ROC {
    /// nil when either side is empty or a score is NaN (no ordering exists).
    public static func auroc(positive: [Float], negative: [Float]) -> Double? {
        guard !positive.isEmpty, !negative.isEmpty,
              !positive.contains(where: \.isNaN), !negative.contains(where: \.isNaN) else { return nil }
        // Sort every score once, remembering which side it came from.
        var all = positive.map { ($0, true) } + negative.map { ($0, false) }
        all.sort { $0.0 < $1.0 }
        // Average 1-based rank of each group of tied scores; sum of the positives' ranks.
        var positiveRankSum = 0.0
        var i = 0
        while i < all.count {
            var j = i
            var positivesInGroup = 0
            while j < all.count && all[j].0 == all[i].0 {
                if all[j].1 { positivesInGroup += 1 }
                j += 1
            }
            let averageRank = Double(i + 1 + j) / 2   // mean of ranks i+1 ... j
            positiveRankSum += averageRank * Double(positivesInGroup)
            i = j
        }
        let nPos = Double(positive.count), nNeg = Double(negative.count)
        let u = positiveRankSum - nPos * (nPos + 1) / 2
        return u / (nPos * nNeg)
    }

    /// One point of the ROC curve: the rates of classifying as positive every example whose
    /// score is at least `threshold`.
    public struct Point: Sendable, Equatable {
        public var falsePositiveRate: Double
        public var truePositiveRate: Double
        public var threshold: Float
    }

    /// The curve from (0, 0) to (1, 1), one point per distinct score (descending thresholds),
    /// so the trapezoid area under it equals `auroc`. Empty when `auroc` would be nil.
    public static func curve(positive: [Float], negative: [Float]) -> [Point] {
        guard !positive.isEmpty, !negative.isEmpty,
              !positive.contains(where: \.isNaN), !negative.contains(where: \.isNaN) else { return [] }
        var all = positive.map { ($0, true) } + negative.map { ($0, false) }
        all.sort { $0.0 > $1.0 }
        let nPos = Double(positive.count), nNeg = Double(negative.count)
        var points = [Point(falsePositiveRate: 0, truePositiveRate: 0, threshold: .infinity)]
        var truePositives = 0, falsePositives = 0, i = 0
        while i < all.count {
            let threshold = all[i].0
            while i < all.count && all[i].0 == threshold {
                if all[i].1 { truePositives += 1 } else { falsePositives += 1 }
                i += 1
            }
            points.append(Point(falsePositiveRate: Double(falsePositives) / nNeg,
                                truePositiveRate: Double(truePositives) / nPos, threshold: threshold))
        }
        return points
    }

    /// Trapezoid area under a curve (for checking `curve` against `auroc`).
    public static func area(_ points: [Point]) -> Double {
        zip(points, points.dropFirst()).reduce(0) { sum, pair in
            sum + (pair.1.falsePositiveRate - pair.0.falsePositiveRate)
                * (pair.1.truePositiveRate + pair.0.truePositiveRate) / 2
        }
    }
}
