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
        return chart
    }

    /// Train accuracy per logging step, and valid / test accuracy at each evaluation (the end of
    /// every epoch and the last iteration), with a marker per evaluation.
    public static func accuracy(_ runs: [Run]) -> Chart? {
        guard runs.contains(where: { !$0.history.steps.isEmpty || !$0.history.evaluations.isEmpty }) else { return nil }
        var chart = Chart(title: "Accuracy: train per step, valid and test per epoch", xLabel: "iteration",
                          yLabel: "accuracy")
        chart.legendPosition = .bottomRight
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
        return chart
    }

    /// Mean f(x) = LogSumExp of the logits on the data batch and on the SGLD samples, for the
    /// runs that sample; nil when none does.
    public static func energies(_ runs: [Run]) -> Chart? {
        let sampling = runs.enumerated().filter { $0.element.usesPx && !$0.element.history.steps.isEmpty }
        guard !sampling.isEmpty else { return nil }
        var chart = Chart(title: "f(x_data) vs f(x_q): LogSumExp of the logits", xLabel: "iteration", yLabel: "f(x)")
        for (r, run) in sampling {
            let steps = run.history.steps
            chart.series.append(line("\(run.label) f(x_data)",
                                     steps.compactMap { s in s.fData.map { (x: Double(s.iteration), y: $0) } }, run: r, color: 0))
            chart.series.append(line("\(run.label) f(x_q)",
                                     steps.compactMap { s in s.fSample.map { (x: Double(s.iteration), y: $0) } }, run: r, color: 1))
        }
        return chart
    }
}
