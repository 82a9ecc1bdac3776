import ArgumentParser
import Foundation
import JEM
import JEMBackend
import JEMSupport

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "One page on a training run, optionally against a baseline run: results, curves, calibration, samples.",
        discussion: """
            Reads the run folder --run DIR (what `jem-gpu train --out DIR` wrote) and, with --baseline, a second one trained on the same data (typically `--mode baseline`), and writes --out FILE.md, the same page as one self-contained HTML file (FILE.html, or --html), and the figures into FILE_files/ next to the Markdown (report_files/ for report.md), referenced by relative path.

            The page holds: a table of both models' accuracy, NLL, ECE (raw, and temperature-scaled where `jem-gpu calibrate` stored a temperature beside the checkpoint) and the AUROC of px, py and pxgrad per OOD set, with what each OOD set is; training curves (loss and cross-entropy, train/valid/test accuracy, f(x_data) vs f(x_q)) with the runs overlaid; reliability diagrams; the run's sample grids (conditional_final.png, the last x_q grid, x_init.png); the robust-accuracy table of DIR/attack/attack.md when `jem-gpu attack --out DIR/attack` was run; the sample-quality numbers of DIR/sample_quality/sample_quality.json when `jem-gpu sample-quality --out DIR/sample_quality` was run; and the runs' settings, training time, resumes and divergence events.

            Evaluation numbers come from DIR/eval/metrics.json when it exists and is newer than the checkpoint (written by `jem-gpu eval --out DIR/eval`, or by an earlier report). Otherwise the report evaluates the run's best checkpoint (else last) on the test split of its training data, with the --ood sets (default: synthetic:uniform, synthetic:interp, synthetic:permuted), and writes DIR/eval/ (metrics.json and plots) so the next report reuses it. Both models are evaluated with the same sets and --seed.

            Unreadable metrics.jsonl lines are skipped with a warning (on stderr and on the page). Exits with status 1 and one line naming the path when a run folder is missing or has no checkpoint or config, the baseline was trained on other data, images or classes, or a file cannot be read or written.
            """)

    @OptionGroup var backendOptions: BackendOptions

    @Option(name: .customLong("run"), help: ArgumentHelp("Run folder written by jem-gpu train (the JEM run).", valueName: "DIR"))
    var runFolder: String
    @Option(help: ArgumentHelp("A second run folder on the same data to compare with (e.g. --mode baseline).",
                               valueName: "DIR"))
    var baseline: String?
    @Option(help: ArgumentHelp("Markdown file to write; its figures go to <name>_files/ next to it.", valueName: "FILE.md"))
    var out: String
    @Option(help: ArgumentHelp("Self-contained HTML file to write (default: --out with .html).", valueName: "FILE"))
    var html: String?
    @Option(parsing: .singleValue, help: ArgumentHelp(
        "OOD set for an evaluation the report runs itself, repeatable: a dataset PATH[:name] or synthetic:uniform, "
        + "synthetic:interp, synthetic:permuted (default: the three synthetic sets).", valueName: "PATH[:name]|synthetic:KIND"))
    var ood: [String] = []
    @Option(name: .customLong("batch-size"), help: "Images per forward/backward pass of the evaluation.")
    var batchSize: Int = 100
    @Option(name: .customLong("test-noise"), help: ArgumentHelp(
        "Std of Gaussian noise added to every input of the evaluation (default 0).", valueName: "SIGMA"))
    var testNoise: Float = 0
    @Option(help: "Seed of the test noise and the synthetic OOD sets (default: the run's training seed).")
    var seed: UInt64?
    @Flag(help: "Evaluate again even where DIR/eval/metrics.json exists (and overwrite it).")
    var reevaluate = false

    static let defaultOOD = SyntheticOOD.allCases.map(\.name)

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be >= 1 (got \(batchSize))") }
        guard testNoise >= 0, testNoise.isFinite else {
            throw ValidationError("--test-noise must be a finite value >= 0 (got \(testNoise))")
        }
        for value in ood where value.hasPrefix("synthetic:") && SyntheticOOD(rawValue: String(value.dropFirst(10))) == nil {
            throw ValidationError("--ood \(value): unknown synthetic set, expected synthetic:uniform, synthetic:interp "
                                  + "or synthetic:permuted")
        }
    }

    func run() throws {
        let model = try load(runFolder, flag: "--run")
        let base = try baseline.map { try load($0, flag: "--baseline") }
        if let base, let problem = model.comparisonProblem(with: base) { throw CommandFailure("--baseline \(problem)") }
        // Checked before any evaluation, which can take a while.
        let htmlPath = html ?? (out.hasSuffix(".md") ? String(out.dropLast(3)) : out) + ".html"
        for (flag, file) in [("--out", out), ("--html", htmlPath)] {
            let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
            do { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) } catch {
                throw CommandFailure("\(flag) \(file): cannot create the folder \(folder) (\(error.localizedDescription))")
            }
        }
        let seed = self.seed ?? model.config.seed
        var notes: [String] = []
        let modelEvaluation = try evaluation(of: model, seed: seed, notes: &notes)
        let baseEvaluation = try base.map { try evaluation(of: $0, seed: seed, notes: &notes) }
        let builder = ReportBuilder(
            model: .init(run: model, evaluation: modelEvaluation, attackMarkdown: try attack(model)),
            baseline: try base.map { .init(run: $0, evaluation: baseEvaluation, attackMarkdown: try attack($0)) },
            notes: notes)
        let document: ReportDocument, folder: String
        do {
            document = try builder.build()
            folder = try document.write(markdownPath: out, htmlPath: htmlPath)
        } catch let error as IOError {
            throw CommandFailure(error.description)
        }
        print("wrote \(out), \(htmlPath) and \(document.images.count) figures in \(folder)")
    }

    /// The run folder, its log warnings printed.
    func load(_ path: String, flag: String) throws -> RunFolder {
        let run: RunFolder
        do { run = try RunFolder(path: path) } catch { throw CommandFailure("\(flag) \(error)") }
        for warning in run.history.warnings { printError("warning: \(path)/\(warning)") }
        return run
    }

    func attack(_ run: RunFolder) throws -> String? {
        do { return try run.attackMarkdown() } catch { throw CommandFailure("\(error)") }
    }

    /// eval/metrics.json of the run, or a fresh evaluation written there.
    func evaluation(of run: RunFolder, seed: UInt64, notes: inout [String]) throws -> EvaluationResult {
        if !reevaluate {
            let saved: EvaluationResult?
            do { saved = try run.savedEvaluation() } catch { throw CommandFailure("\(error)") }
            // A temperature fitted after the saved evaluation: evaluate again to show its scaled numbers.
            let newTemperature: Bool
            if case .found(_, let file) = (try? TemperatureFile.lookup(forCheckpoint: run.checkpoint)) ?? .none(path: ""),
               let saved, saved.labelled, saved.temperature != file.temperature {
                newTemperature = true
            } else {
                newTemperature = false
            }
            if newTemperature {
                printError("notice: \(TemperatureFile.path(forCheckpoint: run.checkpoint)) holds a temperature that "
                           + "\(run.evaluationPath) does not use: evaluating again")
            }
            if let saved, !newTemperature {
                let requested = ood.isEmpty ? Self.defaultOOD : ood
                if !ood.isEmpty || testNoise != 0, Set(saved.ood.keys) != Set(requested) || saved.settings.testNoise != testNoise {
                    printError("notice: \(run.evaluationPath) was made with other OOD sets or test noise than asked; "
                               + "it is used as it is (--reevaluate evaluates again)")
                }
                notes.append("`\(run.name)`: numbers from `\(run.evaluationPath)`.")
                return saved
            }
            if run.evaluationIsStale {
                printError("notice: \(run.evaluationPath) is older than \(run.checkpoint): evaluating again")
            }
        }
        var arguments = ["--model", run.checkpoint, "--data", run.config.data, "--split", "test",
                         "--batch-size", "\(batchSize)", "--test-noise", "\(testNoise)", "--seed", "\(seed)",
                         "--backend", backendOptions.backend.rawValue]
        if let device = backendOptions.device { arguments += ["--device", device] }
        if let counts = run.builtinCounts {
            arguments += ["--builtin-train", "\(counts.train)", "--builtin-test", "\(counts.test)"]
        }
        for set in ood.isEmpty ? Self.defaultOOD : ood { arguments += ["--ood", set] }

        let failure = { (why: String) in CommandFailure("\(run.path): cannot evaluate \(run.checkpoint): \(why)") }
        let inputs: EvaluationInputs
        do { inputs = try EvaluationInputs.parse(arguments) } catch {
            throw failure(EvaluationInputs.message(for: error))
        }
        let prepared: EvaluationInputs.Prepared
        do { prepared = try inputs.prepare() } catch { throw failure("\(error)") }
        printError("evaluating \(run.checkpoint): \(prepared.inDistribution.images.count) test images and "
                   + "\(prepared.ood.map(\.name).joined(separator: ", ")) on \(prepared.settings.device)")
        var output = try Evaluator(net: prepared.net).evaluate(prepared.inDistribution, ood: prepared.ood,
                                                               settings: prepared.settings)
        printError(try addTemperatureScaling(checkpoint: run.checkpoint, to: &output))
        do {
            try FileManager.default.createDirectory(atPath: run.evaluationFolder, withIntermediateDirectories: true)
            try AtomicFile.write(try EvaluationResult.encoder.encode(output.result), to: run.evaluationPath)
            try EvaluationPlots.write(output, to: run.evaluationFolder)
        } catch {
            throw CommandFailure("\(run.evaluationFolder): cannot write the evaluation (\(error))")
        }
        notes.append("`\(run.name)`: evaluated by this report, written to `\(run.evaluationPath)`.")
        return output.result
    }
}
