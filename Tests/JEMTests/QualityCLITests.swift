import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The commands of issue 14 as a user runs them, on two tiny runs trained by the CLI on a
/// --train-limit subset: train/resume with the limit, calibrate + eval (raw and
/// temperature-scaled NLL/ECE, labelled), sample-quality, the report sections, `--ood builtin`.
final class QualityCLITests: XCTestCase {
    static let builtin = ["--builtin-train", "300", "--builtin-test", "60"]
    /// JEM (informative init) and baseline, 6 iterations on the first 250 of 300 built-in digits.
    static let pair = TinyRunPair("jem-quality-cli", extra: ["--train-limit", "250"],
                                  jemExtra: ["--buffer-init", "informative"])

    override class func tearDown() {
        pair.remove()
        super.tearDown()
    }

    override func setUpWithError() throws { try Self.pair.prepare() }

    func trainedRuns() throws -> (jem: String, baseline: String) { try Self.pair.trained() }

    func json(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    func assertOneLineFailure(_ run: CommandRun, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(run.status, 0, file: file, line: line)
        let lines = run.stderrLines.filter { !$0.hasPrefix("backend") && !$0.hasPrefix("notice") }
        XCTAssertTrue(run.stderr.contains(text), "\(run.stderr)", file: file, line: line)
        XCTAssertLessThanOrEqual(lines.filter { $0.contains("Error") || $0.contains("error") }.count, 1, run.stderr,
                                 file: file, line: line)
    }

    func testTrainLimitIsRecordedAndKeptOnResume() throws {
        let (jem, _) = try trainedRuns()
        let config = try json(jem + "/config.json")
        XCTAssertEqual(config["trainLimit"] as? Int, 250)
        XCTAssertEqual((config["train_images"] as? Int ?? 0) + (config["valid_images"] as? Int ?? 0), 250)
        // --resume applies the recorded limit (a flag given again is ignored like the others).
        let copy = Self.pair.folder + "/resumed"
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: jem, toPath: copy)
        let resumed = try runJemGPU(["train", "--backend", "cpu", "--resume", copy, "--max-iterations", "8"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let after = try json(copy + "/config.json")
        XCTAssertEqual(after["trainLimit"] as? Int, 250)
        XCTAssertEqual(after["train_images"] as? Int, config["train_images"] as? Int)

        let tooMany = try runJemGPU(["train", "--backend", "cpu"] + Self.builtin
                                    + ["--train-limit", "400", "--out", Self.pair.folder + "/never"])
        assertOneLineFailure(tooMany, contains: "--train-limit 400 is more than the 300 training images")
        let zero = try runJemGPU(["train", "--train-limit", "0", "--out", Self.pair.folder + "/never"])
        assertOneLineFailure(zero, contains: "--train-limit")
        XCTAssertFalse(FileManager.default.fileExists(atPath: Self.pair.folder + "/never/checkpoints"))
    }

    func testCalibrateThenEvalShowsRawAndScaledNumbers() throws {
        let (_, baseline) = try trainedRuns()
        let checkpoint = baseline + "/checkpoints/best.safetensors"
        let temperaturePath = baseline + "/checkpoints/best.temperature.json"
        try? FileManager.default.removeItem(atPath: temperaturePath)
        let eval = ["eval", "--backend", "cpu", "--model", checkpoint] + Self.builtin

        let before = try runJemGPU(eval + ["--out", Self.pair.folder + "/eval-before", "--ood", "builtin:digits"])
        XCTAssertEqual(before.status, 0, before.stderr)
        XCTAssertTrue(before.stdout.contains("no temperature file"), before.stdout)
        let raw = try json(Self.pair.folder + "/eval-before/metrics.json")
        XCTAssertNil(raw["nll_scaled"])
        XCTAssertNil(raw["temperature"])
        XCTAssertNotNil((raw["ood"] as? [String: Any])?["digits"], "--ood builtin:digits names the built-in set")

        let calibrate = try runJemGPU(["calibrate", "--backend", "cpu", "--model", checkpoint])
        XCTAssertEqual(calibrate.status, 0, calibrate.stderr)
        let fitted = try json(temperaturePath)
        let t = try XCTUnwrap(fitted["temperature"] as? Double)
        XCTAssertGreaterThan(t, 0)
        XCTAssertEqual(fitted["count"] as? Int, 25, "the valid split of the 250 limited images")
        XCTAssertEqual(fitted["split"] as? String, "valid")
        XCTAssertLessThanOrEqual(try XCTUnwrap(fitted["nll_after"] as? Double), try XCTUnwrap(fitted["nll_before"] as? Double))

        let after = try runJemGPU(eval + ["--out", Self.pair.folder + "/eval-after"])
        XCTAssertEqual(after.status, 0, after.stderr)
        XCTAssertTrue(after.stdout.contains("nll_scaled"), after.stdout)
        let scaled = try json(Self.pair.folder + "/eval-after/metrics.json")
        XCTAssertEqual(scaled["nll"] as? Double, raw["nll"] as? Double, "the raw NLL stays raw")
        XCTAssertEqual(scaled["ece"] as? Double, raw["ece"] as? Double)
        XCTAssertEqual(scaled["temperature"] as? Double, t)
        XCTAssertNotNil(scaled["nll_scaled"] as? Double)
        XCTAssertNotNil(scaled["ece_scaled"] as? Double)

        try "garbage".write(toFile: temperaturePath, atomically: true, encoding: .utf8)
        let bad = try runJemGPU(eval + ["--out", Self.pair.folder + "/eval-bad"])
        assertOneLineFailure(bad, contains: temperaturePath + ": not a jem-gpu calibrate temperature file")
        try? FileManager.default.removeItem(atPath: temperaturePath)
    }

    func testSampleQualityAndReport() throws {
        let (jem, baseline) = try trainedRuns()
        let out = jem + "/sample_quality"
        let quality = try runJemGPU(["sample-quality", "--backend", "cpu", "--model", jem + "/checkpoints/best.safetensors",
                                     "--reference", baseline + "/checkpoints/best.safetensors", "--out", out, "--n", "30",
                                     "--steps", "2", "--kid-subsets", "5", "--kid-subset-size", "20"])
        XCTAssertEqual(quality.status, 0, quality.stderr)
        let result = try SampleQuality.Result.read(out + "/sample_quality.json")
        XCTAssertEqual(result.conditional.count, 30)
        XCTAssertEqual(result.unconditional.count, 30)
        XCTAssertEqual(result.initialization, "informative")
        XCTAssertEqual(result.testImages, 60)
        XCTAssertEqual(result.featureDimension, 64)
        let accuracy = try XCTUnwrap(result.conditional.conditionalAccuracy)
        XCTAssertTrue((0...1).contains(accuracy))
        XCTAssertNil(result.unconditional.conditionalAccuracy)
        XCTAssertTrue(result.conditional.frechetDistance.isFinite && result.conditional.frechetDistance > 0)
        XCTAssertEqual(result.conditional.kid.subsets, 5)
        XCTAssertEqual(result.conditional.kid.subsetSize, 20)
        for png in ["conditional.png", "unconditional.png", "initial.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + png), png)
        }
        let badReference = try runJemGPU(["sample-quality", "--backend", "cpu", "--model", jem + "/checkpoints/best.safetensors",
                                          "--reference", Self.pair.folder + "/missing.safetensors", "--out", Self.pair.folder + "/sq"])
        assertOneLineFailure(badReference, contains: "--reference")

        let report = try runJemGPU(["report", "--backend", "cpu", "--run", jem, "--baseline", baseline,
                                    "--out", Self.pair.folder + "/report/report.md", "--ood", "synthetic:uniform"])
        XCTAssertEqual(report.status, 0, report.stderr)
        let page = try String(contentsOfFile: Self.pair.folder + "/report/report.md", encoding: .utf8)
        XCTAssertTrue(page.contains("## Sample quality"), page)
        XCTAssertTrue(page.contains("class-conditional SGLD samples"), page)
        XCTAssertTrue(page.contains("NLL and ECE are raw"), page)
    }

    func testHelpListsTheNewFlags() throws {
        for (command, flags) in [("calibrate", ["--model", "--data", "--out"]),
                                 ("sample-quality", ["--model", "--reference", "--data", "--out", "--n", "--kid-subsets"]),
                                 ("train", ["--train-limit"]), ("fetch", ["--no-local"])] {
            let help = try runJemGPU(["help", command])
            for flag in flags { XCTAssertTrue(help.stdout.contains(flag), "\(command) \(flag)\n\(help.stdout)") }
        }
    }
}
