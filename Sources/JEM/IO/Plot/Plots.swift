import Foundation
import JEMBackend

/// The charts jem-gpu draws, built on `Chart`.
public enum Plots {
    /// Curves over a common x axis (training curves: loss, accuracy, f(x) per iteration).
    public static func lineChart(title: String, xLabel: String, yLabel: String,
                                 series: [(name: String, points: [(x: Double, y: Double)])]) -> Chart {
        var chart = Chart(title: title, xLabel: xLabel, yLabel: yLabel)
        for (i, s) in series.enumerated() {
            chart.series.append(Chart.Series(name: s.name, color: RGB.palette[i % RGB.palette.count],
                                             mark: .line(points: s.points, dashed: false)))
        }
        return chart
    }

    /// Overlaid density histograms of several sets of values over the same `binCount` bins
    /// spanning all their finite values (each normalised to area 1, as matplotlib's density=True).
    public static func histograms(title: String, xLabel: String, sets: [(name: String, values: [Float])],
                                  binCount: Int = 50) -> Chart {
        var chart = Chart(title: title, xLabel: xLabel, yLabel: "density")
        let finite = sets.flatMap { $0.values.lazy.filter(\.isFinite).map(Double.init) }
        var low = finite.min() ?? 0, high = finite.max() ?? 1
        if high <= low { low -= 0.5; high += 0.5 }
        let width = (high - low) / Double(binCount)
        let edges = (0...binCount).map { low + Double($0) * width }
        for (i, set) in sets.enumerated() {
            var counts = [Double](repeating: 0, count: binCount)
            var total = 0
            for v in set.values where v.isFinite {
                counts[min(max(Int((Double(v) - low) / width), 0), binCount - 1)] += 1
                total += 1
            }
            let heights = counts.map { total > 0 ? $0 / (Double(total) * width) : 0 }
            let hidden = set.values.count - total
            let name = "\(set.name) (n=\(set.values.count)\(hidden > 0 ? ", \(hidden) non-finite" : ""))"
            chart.series.append(Chart.Series(name: name, color: RGB.palette[i % RGB.palette.count],
                                             mark: .histogram(edges: edges, heights: heights)))
        }
        return chart
    }

    /// ROC curves (true positive rate against false positive rate) with the chance diagonal.
    public static func roc(title: String, curves: [(name: String, points: [ROC.Point])]) -> Chart {
        var chart = Chart(title: title, xLabel: "false positive rate", yLabel: "true positive rate")
        chart.xRange = 0...1
        chart.yRange = 0...1
        chart.legendPosition = .bottomRight
        chart.series.append(Chart.Series(name: nil, color: .gray, mark: .line(points: [(0, 0), (1, 1)], dashed: true)))
        for (i, curve) in curves.enumerated() {
            let points = curve.points.map { (x: $0.falsePositiveRate, y: $0.truePositiveRate) }
            chart.series.append(Chart.Series(name: curve.name, color: RGB.palette[i % RGB.palette.count],
                                             mark: .line(points: points, dashed: false)))
        }
        return chart
    }

    /// Reliability diagram: the accuracy of each confidence bin as a bar, against the diagonal
    /// of perfect calibration; bars below the diagonal mean over-confidence.
    public static func reliability(title: String, _ diagram: ReliabilityDiagram) -> Chart {
        var chart = Chart(title: title, xLabel: "confidence (max softmax)", yLabel: "accuracy")
        chart.xRange = 0...1
        chart.yRange = 0...1
        chart.legendPosition = .topLeft
        let edges = [diagram.bins.first?.lower ?? 0] + diagram.bins.map(\.upper)
        chart.series.append(Chart.Series(name: String(format: "accuracy per bin (ECE %.4f)", diagram.ece),
                                         color: RGB.palette[0], mark: .bars(edges: edges,
                                                                            heights: diagram.bins.map { $0.accuracy ?? 0 })))
        chart.series.append(Chart.Series(name: "perfect calibration", color: .gray,
                                         mark: .line(points: [(0, 0), (1, 1)], dashed: true)))
        return chart
    }
}
