import JEMBackend
/// Expected calibration error and the reliability diagram it is read from (Guo et al. 2017, the
/// `ECELoss` JEM++ uses): confidence = max softmax, `binCount` equal-width bins
/// `(i/binCount, (i+1)/binCount]`, ECE = Σ_b (|B_b| / n) · |accuracy(B_b) − confidence(B_b)|.
///
/// Bin edges are `i/binCount` rounded to float32 and compared with the float32 confidence, as
/// the PyTorch original compares against `torch.linspace(0, 1, binCount + 1)`: a confidence of
/// exactly 0.05 lies in bin 0, not bin 1. A confidence of 0 (impossible for a softmax) joins bin 0.
public struct ReliabilityDiagram: Codable, Sendable, Equatable {
    public struct Bin: Codable, Sendable, Equatable {
        /// The nominal edges i/binCount (membership is decided on their float32 roundings).
        public var lower: Double
        public var upper: Double
        public var count: Int
        /// Mean confidence of the examples in the bin; nil when the bin is empty.
        public var confidence: Double?
        /// Fraction of them classified correctly; nil when the bin is empty.
        public var accuracy: Double?
    }

    public var bins: [Bin]
    /// Σ_b (count_b / n) · |accuracy_b − confidence_b|; 0 for no examples.
    public var ece: Double
    /// Largest gap |accuracy_b − confidence_b| over the non-empty bins (the MCE of Guo et al.).
    public var maximumGap: Double

    enum CodingKeys: String, CodingKey { case bins, ece, maximumGap = "maximum_gap" }

    public init(confidences: [Float], correct: [Bool], binCount: Int = 20) {
        precondition(confidences.count == correct.count, "one correctness flag per confidence")
        precondition(binCount >= 1)
        let edges = (0...binCount).map { Float($0) / Float(binCount) }
        var counts = [Int](repeating: 0, count: binCount)
        var confidenceSums = [Double](repeating: 0, count: binCount)
        var correctCounts = [Int](repeating: 0, count: binCount)
        for (c, ok) in zip(confidences, correct) {
            let b = Self.bin(of: c, edges: edges)
            counts[b] += 1
            confidenceSums[b] += Double(c)
            if ok { correctCounts[b] += 1 }
        }
        let n = Double(confidences.count)
        var ece = 0.0, worst = 0.0
        bins = (0..<binCount).map { b in
            let count = counts[b]
            var bin = Bin(lower: Double(b) / Double(binCount), upper: Double(b + 1) / Double(binCount), count: count,
                          confidence: nil, accuracy: nil)
            if count > 0 {
                let confidence = confidenceSums[b] / Double(count), accuracy = Double(correctCounts[b]) / Double(count)
                bin.confidence = confidence
                bin.accuracy = accuracy
                ece += Double(count) / n * abs(accuracy - confidence)
                worst = max(worst, abs(accuracy - confidence))
            }
            return bin
        }
        self.ece = ece
        maximumGap = worst
    }

    /// The bin b with edges[b] < c <= edges[b+1] (values outside [0, 1] go to the end bins).
    static func bin(of c: Float, edges: [Float]) -> Int {
        let last = edges.count - 2
        guard c.isFinite else { return c > 0 ? last : 0 }
        // A first guess from the arithmetic, then settled by the float32 comparisons themselves.
        var b = min(max(Int((Double(c) * Double(last + 1)).rounded(.up)) - 1, 0), last)
        while b > 0 && c <= edges[b] { b -= 1 }
        while b < last && c > edges[b + 1] { b += 1 }
        return b
    }
}
