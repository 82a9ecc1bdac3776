import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// `jem-gpu report` as a user runs it, on two tiny runs trained by the CLI (JEM and baseline):
/// the comparison table holds the very numbers of both eval/metrics.json files, the figures it
/// references exist, the HTML is one file with the figures embedded, an existing evaluation and
/// attack.md are used, and bad input gives one line naming the path.
final class ReportCLITests: XCTestCase {
    static let pair = TinyRunPair("jem-report-cli")

    override class func tearDown() {
        pair.remove()
        super.tearDown()
    }

    override func setUpWithError() throws { try Self.pair.prepare() }

    func trainedRuns() throws -> (jem: String, baseline: String) { try Self.pair.trained() }

    func decode(_ path: String) throws -> EvaluationResult {
        try EvaluationResult.decoder.decode(EvaluationResult.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    func format(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "n/a" }

    /// The baseline was evaluated beforehand with one OOD set; the report evaluates the JEM run
    /// itself with the three default sets and writes jem/eval/.
    func testReportComparesJEMWithBaseline() throws {
        let (jem, baseline) = try trainedRuns()
        let baselineEval = try runJemGPU(["eval", "--backend", "cpu", "--model", baseline + "/checkpoints/best.safetensors",
                                          "--builtin-train", "300", "--builtin-test", "60", "--seed", "3",
                                          "--ood", "synthetic:uniform", "--out", baseline + "/eval"])
        XCTAssertEqual(baselineEval.status, 0, baselineEval.stderr)

        let out = Self.pair.folder + "/compare/report.md"
        let report = try runJemGPU(["report", "--backend", "cpu", "--run", jem, "--baseline", baseline, "--out", out])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(report.stderr.contains("evaluating \(jem)/checkpoints/best.safetensors"), report.stderr)
        XCTAssertFalse(report.stderr.contains("evaluating \(baseline)"), "the baseline's eval/metrics.json is reused")

        let mine = try decode(jem + "/eval/metrics.json"), theirs = try decode(baseline + "/eval/metrics.json")
        XCTAssertEqual(mine.settings.checkpoint, jem + "/checkpoints/best.safetensors")
        XCTAssertEqual(mine.count, 60, "the test split of the run's own data (300 train / 60 test built-in digits)")
        XCTAssertEqual(mine.settings.seed, 3)
        XCTAssertEqual(Set(mine.ood.keys), ["synthetic:uniform", "synthetic:interp", "synthetic:permuted"])
        XCTAssertNoThrow(try PNG.read(jem + "/eval/reliability.png"))

        let markdown = try text(out)
        func expectRow(_ name: String, _ a: Double?, _ b: Double?) {
            let row = "| \(name) | \(format(a)) | \(format(b)) |"
            XCTAssertTrue(markdown.contains(row), "missing row \(row)")
        }
        XCTAssertTrue(markdown.contains("| metric | JEM (`jem`) | baseline (`baseline`) |"), markdown)
        expectRow("test accuracy", mine.accuracy, theirs.accuracy)
        expectRow("NLL, raw (mean cross-entropy)", mine.nll, theirs.nll)
        expectRow("ECE, raw (20 bins)", mine.ece, theirs.ece)
        for name in ["synthetic:uniform", "synthetic:interp", "synthetic:permuted"] {
            for score in OODScore.allCases {
                XCTAssertNotNil(mine.ood[name]?.auroc(score))
                expectRow("AUROC \(score.rawValue), \(name)", mine.ood[name]?.auroc(score), theirs.ood[name]?.auroc(score))
            }
        }
        XCTAssertNotNil(theirs.ood["synthetic:uniform"]?.px)
        XCTAssertNil(theirs.ood["synthetic:interp"], "the baseline's own evaluation had one OOD set")
        XCTAssertTrue(markdown.contains("the two evaluations differ in OOD sets"), markdown)
        // The OOD sets are documented.
        for kind in SyntheticOOD.allCases { XCTAssertTrue(markdown.contains(kind.explanation), kind.name) }
        XCTAssertTrue(markdown.contains("not run: `jem-gpu attack --model \(jem)/checkpoints/best.safetensors"), markdown)
        XCTAssertTrue(markdown.contains("| mode | jem | baseline |"), markdown)
        XCTAssertTrue(markdown.contains("| iterations done | 6 (16 per epoch) | 6 (16 per epoch) |"), markdown)
        XCTAssertTrue(markdown.contains("None: no run tripped the divergence guard."), markdown)

        // Every figure the Markdown references exists next to it and is a PNG, including the
        // curves, both reliability diagrams and the JEM run's three kinds of sample grid.
        let references = matches(#"\]\((report_files/[^)]+)\)"#, in: markdown)
        XCTAssertEqual(Set(references), Set(["curve_loss.png", "curve_accuracy.png", "curve_energy.png",
                                             "reliability_1.png", "reliability_2.png", "conditional_final.png",
                                             "chains_last.png", "x_init.png"].map { "report_files/" + $0 }))
        for reference in references { XCTAssertNoThrow(try PNG.read(Self.pair.folder + "/compare/" + reference), reference) }
        // The last chains grid is x_q_final.png, copied as it is.
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: Self.pair.folder + "/compare/report_files/chains_last.png")),
                       try Data(contentsOf: URL(fileURLWithPath: jem + "/samples/x_q_final.png")))

        // The HTML: one file, every image a data URI holding the same PNG as the Markdown's file.
        let html = try text(Self.pair.folder + "/compare/report.html")
        XCTAssertFalse(html.contains("report_files"))
        let sources = matches(#"<img[^>]* src="([^"]*)""#, in: html)
        XCTAssertEqual(sources.count, references.count)
        XCTAssertTrue(sources.allSatisfy { $0.hasPrefix("data:image/png;base64,") })
        let loss = try Data(contentsOf: URL(fileURLWithPath: Self.pair.folder + "/compare/report_files/curve_loss.png"))
        XCTAssertTrue(sources.contains("data:image/png;base64," + loss.base64EncodedString()))
        XCTAssertTrue(html.contains("<td class=\"num\">\(format(mine.ece))</td>"), "the table in the HTML")
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "nothing to fetch")

        // A second report reuses both evaluations and embeds the attack table verbatim.
        let attack = """
            # Robust accuracy under PGD

            Model `wrn-10-1`, data `builtin` (test, 40 examples), backend cpu.

            | eps (linf, [0,1] px) | refine 0 | refine 10 |
            |---|---|---|
            | 0 (clean) | 97.5% (39/40) | 95.0% (38/40) |
            | 8/255 | 12.5% (5/40) | 30.0% (12/40) |

            """
        try FileManager.default.createDirectory(atPath: jem + "/attack", withIntermediateDirectories: true)
        try Data(attack.utf8).write(to: URL(fileURLWithPath: jem + "/attack/attack.md"))
        let again = try runJemGPU(["report", "--backend", "cpu", "--run", jem, "--baseline", baseline, "--out",
                                   Self.pair.folder + "/again.md", "--html", Self.pair.folder + "/html/again.html"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(again.stderr.contains("evaluating"), again.stderr)
        let second = try text(Self.pair.folder + "/again.md")
        XCTAssertTrue(second.contains(attack.trimmingCharacters(in: .newlines)), second)
        XCTAssertTrue(second.contains("| ECE, raw (20 bins) | \(format(mine.ece)) | \(format(theirs.ece)) |"))
        XCTAssertTrue(second.contains("](again_files/curve_loss.png)"), second)
        let secondHTML = try text(Self.pair.folder + "/html/again.html")
        XCTAssertTrue(secondHTML.contains("<td>12.5% (5/40)</td>"), secondHTML)
        XCTAssertTrue(secondHTML.contains("<th>eps (linf, [0,1] px)</th>"), secondHTML)
        XCTAssertFalse(secondHTML.contains("|---|"))
    }

    /// A report on one run: no baseline column, a divergence event in the table, and a corrupt
    /// metrics line skipped with a warning on stderr and on the page.
    func testSingleRunAndCorruptLine() throws {
        let (jem, _) = try trainedRuns()
        let copy = Self.pair.folder + "/corrupt"
        try copyRun(jem, to: copy)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: copy + "/metrics.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(("""
            {"action":"rolled back to iteration 4, reseeded, lr scale now 0.5","event":"divergence","iteration":5,\
            "problem":"|loss| 20000 above the limit 10000.0","recoveries":1}

            """ + #"{"iteration": 7, "loss": 0."#).utf8))
        try handle.close()
        let lineCount = try text(copy + "/metrics.jsonl").split(separator: "\n").count
        let out = Self.pair.folder + "/single/report.md"
        let result = try runJemGPU(["report", "--backend", "cpu", "--run", copy, "--ood", "synthetic:uniform", "--out", out])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("warning: \(copy)/metrics.jsonl line \(lineCount): not a metrics record"),
                      result.stderr)
        let markdown = try text(out)
        XCTAssertTrue(markdown.contains("## Log warnings"), markdown)
        XCTAssertTrue(markdown.contains("| 5 | \\|loss\\| 20000 above the limit 10000.0 | rolled back to iteration 4, "
                                        + "reseeded, lr scale now 0.5 | 1 |"), markdown)
        XCTAssertTrue(markdown.contains("| divergence recoveries | 1 |"), markdown)
        XCTAssertTrue(markdown.contains("| metric | JEM (`corrupt`) |\n"), markdown)
        let evaluation = try decode(copy + "/eval/metrics.json")
        XCTAssertEqual(Set(evaluation.ood.keys), ["synthetic:uniform"])
        XCTAssertTrue(markdown.contains("| AUROC pxgrad, synthetic:uniform | \(format(evaluation.ood["synthetic:uniform"]?.pxgrad)) |"))
        XCTAssertFalse(markdown.contains("synthetic:interp"))
    }

    /// Bad input: one line on stderr naming the path, exit status not 0.
    func testBadInputsNameThePath() throws {
        let (jem, baseline) = try trainedRuns()
        let fm = FileManager.default
        let out = ["--out", Self.pair.folder + "/bad/report.md"]

        let noCheckpoints = Self.pair.folder + "/no-checkpoints"
        try copyRun(jem, to: noCheckpoints)
        try fm.removeItem(atPath: noCheckpoints + "/checkpoints")

        let noConfig = Self.pair.folder + "/no-config"
        try copyRun(jem, to: noConfig)
        try fm.removeItem(atPath: noConfig + "/config.json")

        let garbageLog = Self.pair.folder + "/garbage-log"
        try copyRun(jem, to: garbageLog)
        try Data("this is\nnot a log\n".utf8).write(to: URL(fileURLWithPath: garbageLog + "/metrics.jsonl"))

        // A "baseline" whose config says it trained on other data.
        let otherData = Self.pair.folder + "/other-data"
        try copyRun(baseline, to: otherData)
        let config = try text(otherData + "/config.json")
        try Data(config.replacingOccurrences(of: "\"data\" : \"builtin\"", with: "\"data\" : \"/data/cifar10\"").utf8)
            .write(to: URL(fileURLWithPath: otherData + "/config.json"))
        XCTAssertNotEqual(config, try text(otherData + "/config.json"))

        // A "baseline" whose checkpoint takes 3×12×10 images.
        let otherShape = Self.pair.folder + "/other-shape"
        try copyRun(baseline, to: otherShape)
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 3, imageHeight: 12, imageWidth: 10, classCount: 10)
        var tiny = TrainingConfig()
        tiny.batchSize = 4
        tiny.bufferSize = 4
        let trainer = try JEMTrainer(config: tiny, spec: spec, backend: CPUBackend())
        try Checkpoint.save(trainer, state: RunState(), spec: spec, to: otherShape + "/checkpoints/best.safetensors",
                            includeTrainingState: false)

        let aFile = Self.pair.folder + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: aFile))

        let cases: [([String], [String])] = [
            (["--run", Self.pair.folder + "/nonexistent"] + out, [Self.pair.folder + "/nonexistent", "no such run folder"]),
            (["--run", aFile] + out, [aFile, "not a folder"]),
            (["--run", noCheckpoints] + out, [noCheckpoints + "/checkpoints", "best.safetensors"]),
            (["--run", noConfig] + out, [noConfig + "/config.json"]),
            (["--run", garbageLog] + out, [garbageLog + "/metrics.jsonl", "none of its 2 lines"]),
            (["--run", jem, "--baseline", Self.pair.folder + "/nonexistent"] + out, ["--baseline", Self.pair.folder + "/nonexistent"]),
            (["--run", jem, "--baseline", otherData] + out, [otherData, "/data/cifar10", "same dataset"]),
            (["--run", jem, "--baseline", otherShape] + out, [otherShape + "/checkpoints/best.safetensors", "3×12×10", "1×28×28"]),
            (["--run", jem, "--out", aFile + "/report.md"], [aFile]),
        ]
        for (arguments, expected) in cases {
            let result = try runJemGPU(["report", "--backend", "cpu"] + arguments)
            let lines = result.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertEqual(lines.count, 1, "\(arguments): \(result.stderr)")
            for text in expected { XCTAssertTrue(result.stderr.contains(text), "\(arguments): '\(text)' not in \(result.stderr)") }
            XCTAssertFalse(result.stderr.contains("Fatal error"), "\(arguments): \(result.stderr)")
        }
        XCTAssertFalse(fm.fileExists(atPath: Self.pair.folder + "/bad/report.md"))

        let flag = try runJemGPU(["report", "--run", jem, "--ood", "synthetic:gaussian"] + out)
        XCTAssertNotEqual(flag.status, 0)
        XCTAssertTrue(flag.stderr.hasPrefix("Error: --ood synthetic:gaussian"), flag.stderr)
        let help = try runJemGPU(["help", "report"])
        for option in ["--run", "--baseline", "--out", "--html", "--ood", "--batch-size", "--test-noise", "--seed",
                       "--reevaluate", "--backend", "--device"] {
            XCTAssertTrue(help.stdout.contains(option), option)
        }
    }

    /// Copies a run folder without its eval/ and attack/ (so each test sees only what it adds).
    func copyRun(_ source: String, to destination: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: destination, withIntermediateDirectories: true)
        for item in ["config.json", "metrics.jsonl", "checkpoints", "samples"] {
            try fm.copyItem(atPath: source + "/" + item, toPath: destination + "/" + item)
        }
    }

    func matches(_ pattern: String, in text: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap {
            Range($0.range(at: 1), in: text).map { String(text[$0]) }
        }
    }
}
