import JEMBackend
/// The training-curve charts of a report, one or two runs overlaid on each chart: loss and
/// cross-entropy, accuracy (train per logging step, valid and test per evaluation), and the
/// energies f(x_data) against f(x_q) of the runs that sample. The x axis is the iteration.
public enum TrainingCurves {
    public struct Run {
        /// Legend prefix, e.g. "JEM" or "baseline".
        public var label: String
        public var history: RunHistory
        /// Whether the run trains the p(x) term (and so logs f(x_q) and a loss that is not the CE).
        public var usesPx: Bool

        public init(label: String, history: RunHistory, usesPx: Bool) {
            self.label = label
            self.history = history
            self.usesPx = usesPx
        }
    }

    /// Colours per run (the first run blue/green/purple, the second orange/red/brown), and the
    /// second run's lines dashed, so that the runs can be told apart also where they overlap.
    static func colors(_ run: Int) -> [RGB] {
        run == 0 ? [RGB.palette[0], RGB.palette[2], RGB.palette[4]] : [RGB.palette[1], RGB.palette[3], RGB.palette[5]]
    }

    static func line(_ name: String, _ points: [(x: Double, y: Double)], run: Int, color: Int) -> Chart.Series {
        Chart.Series(name: name, color: colors(run)[color], mark: .line(points: points, dashed: run > 0))
    }

    /// Loss and cross-entropy per logging step; nil when no run logged a step. For a run without
    /// the p(x) term the loss is the cross-entropy, drawn once.
    public static func loss(_ runs: [Run]) -> Chart? {
        guard runs.contains(where: { !$0.history.steps.isEmpty }) else { return nil }
        var chart = Chart(title: "Loss and cross-entropy", xLabel: "iteration", yLabel: "loss")
        for (r, run) in runs.enumerated() {
            let steps = run.history.steps
            let crossEntropy = steps.compactMap { s in s.crossEntropy.map { (x: Double(s.iteration), y: $0) } }
            if run.usesPx {
                chart.series.append(line("\(run.label) loss", steps.map { (Double($0.iteration), $0.loss) }, run: r, color: 0))
                chart.series.append(line("\(run.label) cross-entropy", crossEntropy, run: r, color: 1))
            } else {
                chart.series.append(line("\(run.label) cross-entropy (= loss)", crossEntropy, run: r, color: 1))
            }
        }
        placeLegend(&chart)
        return chart
    }

    /// Train accuracy per logging step, and valid / test accuracy at each evaluation (the end of
    /// every epoch and the last iteration), with a marker per evaluation.
    public static func accuracy(_ runs: [Run]) -> Chart? {
        guard runs.contains(where: { !$0.history.steps.isEmpty || !$0.history.evaluations.isEmpty }) else { return nil }
        var chart = Chart(title: "Accuracy: train per step, valid and test per epoch", xLabel: "iteration",
                          yLabel: "accuracy")
        for (r, run) in runs.enumerated() {
            let h = run.history
            let train = h.steps.compactMap { s in s.trainAccuracy.map { (x: Double(s.iteration), y: $0) } }
            chart.series.append(line("\(run.label) train", train, run: r, color: 0))
            for (name, color, values) in [("valid", 1, h.evaluations.map { ($0.iteration, $0.validAccuracy) }),
                                          ("test", 2, h.evaluations.map { ($0.iteration, $0.testAccuracy) })] {
                let points = values.compactMap { it, v in v.map { (x: Double(it), y: $0) } }
                guard !points.isEmpty else { continue }
                chart.series.append(line("\(run.label) \(name)", points, run: r, color: color))
                chart.series.append(Chart.Series(name: nil, color: colors(r)[color], mark: .markers(points: points)))
            }
        }
        placeLegend(&chart)
        return chart
    }

    /// Mean f(x) = LogSumExp of the logits on the data batch and on the SGLD samples, for the
    /// runs that sample; nil when none does. Steps logged before the p(x) term started (its
    /// `--px-delay`) carry 0 for both, as nothing was computed, and are left out; the x axis
    /// still spans all logged iterations, as in the other charts.
    public static func energies(_ runs: [Run]) -> Chart? {
        let sampling = runs.enumerated().filter { $0.element.usesPx && !$0.element.history.steps.isEmpty }
        guard !sampling.isEmpty else { return nil }
        var chart = Chart(title: "f(x_data) vs f(x_q): LogSumExp of the logits", xLabel: "iteration", yLabel: "f(x)")
        let iterations = runs.flatMap { $0.history.steps.map { Double($0.iteration) } }
        if let first = iterations.min(), let last = iterations.max(), last > first {
            let margin = 0.04 * (last - first)   // the margin Chart gives lines
            chart.xRange = (first - margin)...(last + margin)
        }
        for (r, run) in sampling {
            let steps = run.history.steps.filter { !($0.fData == 0 && $0.fSample == 0) }
            chart.series.append(line("\(run.label) f(x_data)",
                                     steps.compactMap { s in s.fData.map { (x: Double(s.iteration), y: $0) } }, run: r, color: 0))
            chart.series.append(line("\(run.label) f(x_q)",
                                     steps.compactMap { s in s.fSample.map { (x: Double(s.iteration), y: $0) } }, run: r, color: 1))
        }
        placeLegend(&chart)
        return chart
    }

    /// Puts the legend where it hides no curve: in the first corner (the chart's own choice,
    /// top right, top left, bottom right) whose legend box no curve crosses, each segment
    /// sampled at 16 points; when every corner is crossed, the y axis gets headroom above the
    /// data for a top-right legend.
    static func placeLegend(_ chart: inout Chart) {
        let xr = chart.xRange ?? chart.dataRange(x: true), yr = chart.yRange ?? chart.dataRange(x: false)
        let width = xr.upperBound - xr.lowerBound, height = yr.upperBound - yr.lowerBound
        guard width > 0, height > 0, width.isFinite, height.isFinite else { return }
        let (w, h) = legendFraction(chart, yRange: yr)
        guard w < 1, h < 0.5 else { return }
        var counts: [Chart.LegendPosition: Int] = [.topLeft: 0, .topRight: 0, .bottomRight: 0]
        func count(_ x: Double, _ y: Double) {
            let u = (x - xr.lowerBound) / width, v = (y - yr.lowerBound) / height
            if v >= 1 - h && u <= w { counts[.topLeft]! += 1 }
            if v >= 1 - h && u >= 1 - w { counts[.topRight]! += 1 }
            if v <= h && u >= 1 - w { counts[.bottomRight]! += 1 }
        }
        for series in chart.series {
            switch series.mark {
            case .line(let points, _):
                for (a, b) in zip(points, points.dropFirst()) where a.x.isFinite && a.y.isFinite && b.x.isFinite && b.y.isFinite {
                    for k in 0..<16 {
                        let t = Double(k) / 16
                        count(a.x + t * (b.x - a.x), a.y + t * (b.y - a.y))
                    }
                }
                if let last = points.last, last.x.isFinite, last.y.isFinite { count(last.x, last.y) }
            case .markers(let points):
                for p in points where p.x.isFinite && p.y.isFinite { count(p.x, p.y) }
            default:
                break
            }
        }
        let order = [chart.legendPosition] + [Chart.LegendPosition.topRight, .topLeft, .bottomRight]
        if let free = order.first(where: { counts[$0] == 0 }) {
            chart.legendPosition = free
        } else {
            chart.yRange = yr.lowerBound...(yr.lowerBound + height / (1 - h))
            chart.legendPosition = .topRight
        }
    }

    /// The legend box with its offset from the frame, as fractions of the plot area's width and
    /// height (mirroring the layout of `Chart.render` and its legend).
    static func legendFraction(_ chart: Chart, yRange: ClosedRange<Double>) -> (width: Double, height: Double) {
        let s = chart.textScale, lineHeight = Canvas.textHeight(scale: s)
        let widestY = Chart.labels(Chart.ticks(yRange)).map { Canvas.textWidth($0, scale: s) }.max() ?? 0
        let plotWidth = Double(chart.width - 24 - (2 * lineHeight + widestY + 16))
        let plotHeight = Double(chart.height - (3 * lineHeight + 14) - (2 * lineHeight + 8))
        let names = chart.series.compactMap(\.name)
        guard !names.isEmpty, plotWidth > 0, plotHeight > 0 else { return (0, 0) }
        let boxWidth = (names.map { Canvas.textWidth($0, scale: s) }.max() ?? 0) + 3 * lineHeight / 2 + 24
        let boxHeight = (lineHeight + 8) * names.count + 8
        return (Double(boxWidth + 10) / plotWidth, Double(boxHeight + 10) / plotHeight)
    }
}
