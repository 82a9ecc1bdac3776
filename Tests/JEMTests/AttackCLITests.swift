import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// `jem-gpu attack` as a user runs it: one-line errors for bad input, and a small end-to-end run.
final class AttackCLITests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        try requireJemGPUBinary()
        folder = NSTemporaryDirectory() + "jem-attack-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        addTeardownBlock { [folder] in try? FileManager.default.removeItem(atPath: folder) }
    }

    /// A freshly initialised model checkpoint (`jem-gpu train`'s format) for 1-channel images.
    func checkpoint(side: Int, classes: Int) throws -> String {
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: side, imageWidth: side,
                                  classCount: classes)
        var config = TrainingConfig()
        config.model = spec.name
        config.mode = .baseline
        config.batchSize = 2
        let trainer = try JEMTrainer(config: config, spec: spec, backend: CPUBackend())
        let path = folder + "/model-\(side)-\(classes).safetensors"
        try Checkpoint.save(trainer, state: RunState(), spec: spec, to: path, includeTrainingState: false)
        return path
    }

    func testBadInputGivesOneLineNamingTheFlagOrFile() throws {
        let digits = try checkpoint(side: 28, classes: 10)
        let threeClasses = try checkpoint(side: 28, classes: 3)
        let small = try checkpoint(side: 8, classes: 10)
        let out = folder + "/out"
        let cases: [([String], String)] = [
            (["--model", digits, "--eps=-0.1"], "--eps"),
            (["--model", digits, "--eps", "8/0"], "--eps"),
            (["--model", digits, "--eps", "0.1", "--norm", "l3"], "--norm"),
            (["--model", digits, "--eps", "0.1", "--steps", "0"], "--steps"),
            (["--model", digits, "--eps", "0.1", "--copies", "0"], "--copies"),
            (["--model", digits, "--eps", "0.1", "--refine", "1,x"], "--refine"),
            (["--model", folder + "/missing.safetensors", "--eps", "0.1"], folder + "/missing.safetensors"),
            (["--model", digits, "--eps", "0.1", "--data", folder + "/no-data"], folder + "/no-data"),
            (["--model", threeClasses, "--eps", "0.1"], "10 classes but model-28-3.safetensors has 3"),
            (["--model", small, "--eps", "0.1"], "expects 1x8x8"),
        ]
        for (arguments, expected) in cases {
            let result = try runJemGPU(["attack", "--backend", "cpu", "--out", out, "--limit", "2"] + arguments)
            let message = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertEqual(message.split(separator: "\n").count, 1, "\(arguments): \(message)")
            XCTAssertTrue(message.contains(expected), "\(arguments): \(message)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/attack.json"))
    }

    func testSmallRunWritesTheTable() throws {
        let model = try checkpoint(side: 28, classes: 10)
        let out = folder + "/run"
        let result = try runJemGPU(["attack", "--backend", "cpu", "--model", model, "--data", "builtin", "--out", out,
                                    "--eps", "0.1,8/255", "--limit", "6", "--batch-size", "4", "--steps", "2",
                                    "--refine", "0,1", "--copies", "2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("refine 0") && result.stdout.contains("8/255"), result.stdout)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/attack.json")))
        let report = try XCTUnwrap(json as? [String: Any])
        XCTAssertEqual(report["examples"] as? Int, 6)
        XCTAssertEqual(report["split"] as? String, "test")
        let rows = try XCTUnwrap(report["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["epsilonText"] as? String }, ["0 (clean)", "0.1", "8/255"])
        let correct = rows.map { $0["correct"] as? [Int] ?? [] }
        for row in correct {
            XCTAssertEqual(row.count, 2)
            // Robust means correct clean and under attack, so no row exceeds the clean one.
            for j in 0..<2 { XCTAssertLessThanOrEqual(row[j], correct[0][j]) }
        }
        XCTAssertEqual(rows[2]["epsilon"] as? Double ?? 0, 8.0 / 255, accuracy: 1e-6)
        XCTAssertEqual(rows[2]["epsilonModelUnits"] as? Double ?? 0, 16.0 / 255, accuracy: 1e-6)
        let markdown = try String(contentsOfFile: out + "/attack.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("| 8/255 |"), markdown)
        // Written atomically: no temporary files left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(), ["attack.json", "attack.md"])
    }
}
