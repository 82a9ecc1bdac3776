import Foundation
import JEMBackend
import JEMSupport

/// Assembles the report page of a run, optionally against a baseline run: the comparison table
/// of the evaluations (accuracy, NLL, ECE, OOD AUROCs), the OOD sets used, training curves,
/// reliability diagrams, the run's sample grids, robust accuracy (attack/attack.md), and the
/// runs' settings, divergence events and log warnings.
public struct ReportBuilder {
    /// One model of the report: its run folder and its evaluation (eval/metrics.json).
    public struct Model {
        public var run: RunFolder
        public var evaluation: EvaluationResult?
        /// attack/attack.md of the run, when `jem-gpu attack --out DIR/attack` was run.
        public var attackMarkdown: String?

        public init(run: RunFolder, evaluation: EvaluationResult?, attackMarkdown: String?) {
            self.run = run
            self.evaluation = evaluation
            self.attackMarkdown = attackMarkdown
        }
    }

    public var model: Model
    public var baseline: Model?
    /// Lines the caller wants on the page (where the evaluations came from, notices).
    public var notes: [String] = []

    public init(model: Model, baseline: Model?, notes: [String] = []) {
        self.model = model
        self.baseline = baseline
        self.notes = notes
    }

    var models: [Model] { [model] + (baseline.map { [$0] } ?? []) }

    /// "JEM", "baseline", "JEM-xy", "EBM" after the training mode; the folder names when both
    /// models would get the same label.
    var labels: [String] {
        let byMode = models.map { Self.modeTitle($0.run.config.mode) }
        return Set(byMode).count == byMode.count ? byMode : models.map(\.run.name)
    }

    static func modeTitle(_ mode: TrainingMode) -> String {
        switch mode {
        case .jem: return "JEM"
        case .baseline: return "baseline"
        case .jemXY: return "JEM-xy"
        case .ebm: return "EBM"
        }
    }

    /// Table header of model i: its label and folder.
    func header(_ i: Int) -> String { "\(labels[i]) (`\(models[i].run.name)`)" }

    public func build(date: Date = Date()) throws -> ReportDocument {
        let title = baseline == nil ? "jem-gpu report: \(model.run.name)"
            : "jem-gpu report: \(model.run.name) vs \(baseline!.run.name)"
        var doc = ReportDocument(title: title)
        let runs = models.enumerated().map { "the **\(labels[$0.offset])** run `\($0.element.run.path)`" }
        let stamp = ISO8601DateFormatter.string(from: date, timeZone: .current, formatOptions: [.withInternetDateTime])
        let subject = runs.count == 2 ? runs[0] + " compared with " + runs[1] : runs[0]
        doc.append(.paragraph(subject.prefix(1).uppercased() + subject.dropFirst()
                              + ". Written by jem-gpu \(JEMVersion.string) on \(stamp)."))
        if !notes.isEmpty { doc.append(.bullets(notes)) }

        addResults(&doc)
        try addCurves(&doc)
        addCalibration(&doc)
        try addSamples(&doc)
        try addSampleQuality(&doc)
        addRobustness(&doc)
        addSettings(&doc)
        addEvents(&doc)
        return doc
    }

    // MARK: Results

    static func number(_ value: Double?) -> String {
        guard let value else { return "n/a" }
        return value.isFinite ? String(format: "%.4f", value) : "\(value)"
    }

    /// OOD set names in a fixed order: the synthetic sets as `eval` lists them, then the rest by name.
    static func orderedOODNames(_ evaluations: [EvaluationResult]) -> [String] {
        let names = Set(evaluations.flatMap { $0.ood.keys })
        let synthetic = SyntheticOOD.allCases.map(\.name).filter(names.contains)
        return synthetic + names.subtracting(synthetic).sorted()
    }

    func addResults(_ doc: inout ReportDocument) {
        doc.append(.heading(level: 2, text: baseline == nil ? "Results" : "\(labels[0]) vs \(labels[1])"))
        let evaluations = models.compactMap(\.evaluation)
        guard !evaluations.isEmpty else {
            doc.append(.paragraph("No evaluation: run `jem-gpu eval --model \(model.run.checkpoint) --out "
                                  + "\(model.run.evaluationFolder)`."))
            return
        }
        let splits = Set(evaluations.map(\.settings.split))
        let split = splits.count == 1 ? splits.first! : "evaluated"
        var rows: [[String]] = []
        func row(_ name: String, _ value: (EvaluationResult) -> Double?) {
            rows.append([name] + models.map { Self.number($0.evaluation.flatMap(value)) })
        }
        row("\(split) accuracy") { $0.accuracy }
        row("NLL, raw (mean cross-entropy)") { $0.nll }
        row("ECE, raw (20 bins)") { $0.ece }
        let scaled = evaluations.contains { $0.temperature != nil }
        if scaled {
            row("temperature T (calibrate, valid split)") { $0.temperature }
            row("NLL, temperature-scaled (logits / T)") { $0.nllScaled }
            row("ECE, temperature-scaled (logits / T)") { $0.eceScaled }
        }
        let oodNames = Self.orderedOODNames(evaluations)
        for name in oodNames {
            for score in OODScore.allCases {
                row("AUROC \(score.rawValue), \(name)") { $0.ood[name]?.auroc(score) }
            }
        }
        rows.append(["images scored"] + models.map { $0.evaluation.map { "\($0.count)" } ?? "n/a" })
        doc.append(.table(header: ["metric"] + models.indices.map(header), rows: rows,
                          numeric: Set(1...models.count)))
        doc.append(.paragraph("Higher is better for accuracy and AUROC, lower for NLL and ECE. AUROC: in-distribution "
                              + "images are the positive class; px = LogSumExp of the logits (log p(x) up to a "
                              + "constant), py = max softmax probability, pxgrad = -‖∂ LogSumExp / ∂x‖₂; 0.5 is "
                              + "chance, 1 perfect separation. NLL and ECE are raw (the logits as they are)"
                              + (scaled ? "; the temperature-scaled rows divide the logits by the T that `jem-gpu "
                                 + "calibrate` fitted on the run's validation split (n/a: no temperature file)."
                                 : "; `jem-gpu calibrate` adds temperature-scaled rows.")))
        var settings: [String] = []
        for (i, m) in models.enumerated() {
            guard let e = m.evaluation else {
                settings.append("\(header(i)): not evaluated")
                continue
            }
            let s = e.settings
            settings.append("\(header(i)): `\(s.checkpoint)` on \(s.data), \(s.splitDetail); test noise "
                            + String(format: "%g", s.testNoise) + ", seed \(s.seed), backend \(s.backend) (\(s.device))")
        }
        doc.append(.bullets(settings))
        if evaluations.count == 2, let difference = Self.settingsDifference(evaluations[0], evaluations[1]) {
            doc.append(.paragraph("**Note:** the two evaluations differ in \(difference); their numbers are not "
                                  + "directly comparable."))
        }

        doc.append(.heading(level: 3, text: "OOD sets"))
        if oodNames.isEmpty {
            doc.append(.paragraph("No OOD set was evaluated."))
        } else {
            let oodRows = oodNames.map { name -> [String] in
                let result = evaluations.lazy.compactMap { $0.ood[name] }.first
                let what = SyntheticOOD.allCases.first { $0.name == name }.map(\.explanation)
                    ?? (result?.source.hasPrefix("builtin ") == true ? "the built-in procedural digits" : "a dataset")
                let used = models.map { $0.evaluation?.ood[name] != nil ? "yes" : "no" }
                return ["`\(name)`", what, result?.source ?? "", result.map { "\($0.count)" } ?? ""] + used
            }
            doc.append(.table(header: ["set", "what it is", "made from", "images"] + models.indices.map(header),
                              rows: oodRows, numeric: [3]))
        }
    }

    /// What differs between two evaluations' settings that changes the numbers, or nil.
    static func settingsDifference(_ a: EvaluationResult, _ b: EvaluationResult) -> String? {
        var parts: [String] = []
        if a.settings.data != b.settings.data { parts.append("data (\(a.settings.data) vs \(b.settings.data))") }
        if a.settings.split != b.settings.split { parts.append("split (\(a.settings.split) vs \(b.settings.split))") }
        if a.count != b.count { parts.append("images scored (\(a.count) vs \(b.count))") }
        if a.settings.testNoise != b.settings.testNoise {
            parts.append("test noise (\(a.settings.testNoise) vs \(b.settings.testNoise))")
        }
        if a.settings.seed != b.settings.seed && !(a.ood.isEmpty && b.ood.isEmpty) {
            parts.append("seed of the noise and synthetic sets (\(a.settings.seed) vs \(b.settings.seed))")
        }
        if Set(a.ood.keys) != Set(b.ood.keys) { parts.append("OOD sets") }
        return parts.isEmpty ? nil : parts.joined(separator: ", ")
    }

    // MARK: Figures

    func addCurves(_ doc: inout ReportDocument) throws {
        doc.append(.heading(level: 2, text: "Training curves"))
        let runs = models.enumerated().map {
            TrainingCurves.Run(label: labels[$0.offset], history: $0.element.run.history,
                               usesPx: $0.element.run.config.usesSampling)
        }
        let charts: [(String, String, Chart?)] = [
            ("curve_loss.png", "Loss and cross-entropy per logging step", TrainingCurves.loss(runs)),
            ("curve_accuracy.png", "Train accuracy per logging step; valid and test accuracy at each evaluation",
             TrainingCurves.accuracy(runs)),
            ("curve_energy.png", "Mean f(x) = LogSumExp(logits) on data and on SGLD samples (from when the p(x) "
             + "term starts)", TrainingCurves.energies(runs)),
        ]
        let images = charts.compactMap { name, caption, chart in
            chart.map { ReportDocument.Image(fileName: name, caption: caption, png: Data($0.render().pngData())) }
        }
        if images.isEmpty {
            doc.append(.paragraph("No training step was logged."))
        } else {
            doc.append(.images(images))
        }
        if baseline != nil {
            doc.append(.paragraph("\(labels[1]) lines are dashed."))
        }
        if !runs.contains(where: \.usesPx) {
            doc.append(.paragraph("No run samples, so there is no f(x_q) curve."))
        }
    }

    func addCalibration(_ doc: inout ReportDocument) {
        doc.append(.heading(level: 2, text: "Calibration"))
        var images: [ReportDocument.Image] = []
        for (i, m) in models.enumerated() {
            guard let e = m.evaluation, let diagram = e.calibration else { continue }
            let chart = Plots.reliability(title: "\(labels[i]): \(e.settings.split) acc \(Self.number(e.accuracy))", diagram)
            images.append(ReportDocument.Image(fileName: "reliability_\(i + 1).png",
                                               caption: "Reliability of \(header(i)), ECE \(Self.number(e.ece))",
                                               png: Data(chart.render().pngData())))
        }
        if images.isEmpty {
            doc.append(.paragraph("No labelled evaluation, so no reliability diagram."))
        } else {
            doc.append(.images(images))
            doc.append(.paragraph("Accuracy per max-softmax confidence bin (20 bins) against the diagonal of perfect "
                                  + "calibration; bars below it mean over-confidence."))
        }
    }

    func addSamples(_ doc: inout ReportDocument) throws {
        let run = model.run
        doc.append(.heading(level: 2, text: "Samples of \(header(0))"))
        let grids = run.sampleGrids
        let wanted: [(String?, String, String)] = [
            (grids.conditional, "conditional_final.png", "Class-conditional SGLD at the end of training, one row per class"),
            (grids.lastChains, "chains_last.png", "The replay-buffer chains, last grid (`\(grids.lastChains.map { ($0 as NSString).lastPathComponent } ?? "")`)"),
            (grids.initial, "x_init.png", "Where the chains start (`x_init.png`)"),
        ]
        var images: [ReportDocument.Image] = []
        for (path, name, caption) in wanted {
            guard let path else { continue }
            let png: Data
            do { png = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw IOError("\(path): cannot read (\(error.localizedDescription))")
            }
            images.append(ReportDocument.Image(fileName: name, caption: caption, png: png, pixelated: true))
        }
        if images.isEmpty {
            doc.append(.paragraph(run.config.usesSampling
                                  ? "The run wrote no sample grid (`\(run.path)/samples/` is empty)."
                                  : "The run does not sample (mode \(run.config.mode.rawValue)): no sample grids."))
        } else {
            doc.append(.images(images))
        }
    }

    func addRobustness(_ doc: inout ReportDocument) {
        doc.append(.heading(level: 2, text: "Robust accuracy"))
        for (i, m) in models.enumerated() {
            if baseline != nil { doc.append(.heading(level: 3, text: header(i))) }
            if let markdown = m.attackMarkdown {
                doc.append(.paragraph("From `\(m.run.attackMarkdownPath)`:"))
                doc.append(.embeddedMarkdown(markdown))
            } else {
                doc.append(.paragraph("not run: `jem-gpu attack --model \(m.run.checkpoint) --eps 2/255,8/255 --out "
                                      + "\(m.run.path)/attack`"))
            }
        }
    }

    // MARK: Runs

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return String(format: "%.1f s", seconds) }
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        return "\(s / 3600) h \(s / 60 % 60) min"
    }

    func addSettings(_ doc: inout ReportDocument) {
        doc.append(.heading(level: 2, text: "Runs"))
        func row(_ name: String, _ value: (RunFolder) -> String) -> [String] { [name] + models.map { value($0.run) } }
        func sampling(_ r: RunFolder, _ text: String) -> String { r.config.usesSampling ? text : "-" }
        let rows: [[String]] = [
            row("folder") { "`\($0.path)`" },
            row("mode") { $0.config.mode.rawValue },
            row("model") { $0.details.modelSpec ?? $0.spec.description },
            row("data") { r in
                // The summary names the format ("builtin: 8000 train, ..."), not the path.
                guard let summary = r.details.dataset else { return "`\(r.config.data)`" }
                return summary.hasPrefix(r.config.data + ":") ? summary : "`\(r.config.data)` (\(summary))"
            },
            row("train / valid / test images") { r in
                [r.details.trainImages, r.details.validImages, r.details.testImages]
                    .map { $0.map(String.init) ?? "?" }.joined(separator: " / ")
            },
            row("epochs") { "\($0.config.epochs)" + ($0.config.maxIterations > 0 ? " (at most \($0.config.maxIterations) iterations)" : "") },
            row("iterations done") { r in
                let perEpoch = r.details.iterationsPerEpoch.map { " (\($0) per epoch)" } ?? ""
                return "\(r.history.lastIteration)\(perEpoch)"
            },
            row("batch size") { "\($0.config.batchSize)" },
            row("optimizer") { r in
                String(format: "%@, lr %g, warmup %d", r.config.optimizer.rawValue, r.config.learningRate,
                       r.config.warmupIterations)
            },
            row("p(x) term") { r in
                r.config.usesPx ? String(format: "weight %g, delay %d, ramp %d, energy L2 %g", r.config.pxWeight,
                                         r.config.pxDelay, r.config.pxRamp, r.config.energyL2) : "-"
            },
            row("SGLD") { r in
                sampling(r, String(format: "%d steps of %g, noise %g", r.config.sgldSteps, r.config.sgldLR, r.config.sgldStd))
            },
            row("replay buffer") { r in
                sampling(r, String(format: "%d images, %@ init, restart %g", r.config.bufferSize,
                                   r.config.bufferInit.rawValue, r.config.reinitFrequency))
            },
            row("seed") { "\($0.config.seed)" },
            row("backend") { "\($0.details.backend ?? "?") (\($0.details.device ?? "?"))" },
            row("training time") { r in
                r.history.trainingSeconds.map { "≈ " + Self.duration($0) } ?? "not derivable (no rate logged)"
            },
            row("processes") { r in
                let count = r.history.processCount
                return count <= 1 ? "\(count)" : "\(count) (stopped and resumed)"
            },
            row("stopped") { r in r.history.ends.last.map { "\($0.reason) at iteration \($0.iteration)" } ?? "no end record (still running or killed)" },
            row("best valid accuracy (logged)") { Self.number($0.history.bestValidAccuracy) },
            row("last test accuracy (logged)") { Self.number($0.history.evaluations.last?.testAccuracy) },
            row("divergence recoveries") { "\($0.history.divergences.count)" },
            row("checkpoint evaluated") { "`\(($0.checkpoint as NSString).lastPathComponent)`" },
            row("jem-gpu version") { $0.details.version ?? "?" },
        ]
        doc.append(.table(header: ["setting"] + models.indices.map(header), rows: rows, numeric: []))
        doc.append(.paragraph("Training time: the time inside the training loop of each process (evaluation "
                              + "included, final checkpoint and sample grids not), from the logged iterations per "
                              + "second."))
    }

    func addEvents(_ doc: inout ReportDocument) {
        doc.append(.heading(level: 2, text: "Divergence events"))
        var any = false
        for (i, m) in models.enumerated() {
            let events = m.run.history.divergences
            guard !events.isEmpty else { continue }
            any = true
            doc.append(.paragraph("\(header(i)): \(events.count) event(s), each rolled back and recovered unless the "
                                  + "run stopped (see stopped above)."))
            doc.append(.table(header: ["iteration", "problem", "action", "recoveries"],
                              rows: events.map { ["\($0.iteration)", $0.problem, $0.action, $0.recoveries.map(String.init) ?? "?"] },
                              numeric: [0, 3]))
        }
        if !any { doc.append(.paragraph("None: no run tripped the divergence guard.")) }

        let warnings = models.flatMap { m in m.run.history.warnings.map { "`\(m.run.path)`: \($0)" } }
        if !warnings.isEmpty {
            doc.append(.heading(level: 2, text: "Log warnings"))
            doc.append(.paragraph("These metrics.jsonl lines could not be read and were left out of the curves:"))
            doc.append(.bullets(warnings))
        }
    }
}
