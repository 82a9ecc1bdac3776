import Foundation
import XCTest
@testable import JEM

/// The `jem-gpu` executable as a user runs it: exit codes, one-line errors, and a training
/// process killed with SIGKILL at random instants.
final class CLITests: XCTestCase {
    /// The jem-gpu binary built next to this test bundle (`swift build --build-tests` builds it).
    static var binary: String {
        let bundle = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent()
        var folder = bundle
        while folder.path != "/" && !FileManager.default.fileExists(atPath: folder.appendingPathComponent("jem-gpu").path) {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent("jem-gpu").path
    }

    @discardableResult
    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandRun {
        try runJemGPU(arguments, environment: environment)
    }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "jem-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    override func setUpWithError() throws {
        // Never skipped: `make test` builds the binary with the tests.
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            XCTFail("jem-gpu binary not found next to the tests at \(Self.binary) (run `swift build --build-tests`)")
            throw CancellationError()
        }
    }

    func testNoOpenCLPlatform() throws {
        let env = ["OCL_ICD_VENDORS": "/nonexistent"]
        let devices = try run(["devices"], environment: env)
        XCTAssertNotEqual(devices.status, 0)
        let message = devices.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(message.split(separator: "\n").count, 1, message)
        XCTAssertTrue(message.lowercased().contains("no opencl platform"), message)

        let forced = try run(["selftest", "--backend", "opencl"], environment: env)
        XCTAssertNotEqual(forced.status, 0)
        XCTAssertTrue(forced.stderr.lowercased().contains("opencl"), forced.stderr)

        let auto = try run(["selftest", "--backend", "auto"], environment: env)
        XCTAssertEqual(auto.status, 0, auto.stderr)
        XCTAssertTrue(auto.stderr.contains("using the CPU backend"), auto.stderr)
        XCTAssertTrue(auto.stdout.contains("0 failed"), auto.stdout)
    }

    func testInvalidTrainFlagsNameTheFlag() throws {
        let cases: [([String], String)] = [
            (["--lr", "0"], "--lr"), (["--lr", "-1"], "--lr"), (["--batch-size", "-4"], "--batch-size"),
            (["--model", "resnet-18"], "--model"), (["--model", "wrn-12-2"], "--model"),
            (["--activation", "tanh"], "--activation"), (["--reinit-freq", "2"], "--reinit-freq"),
            (["--mode", "gan"], "--mode"), (["--builtin-train", "100", "--batch-size", "200"], "--batch-size"),
            (["--mode", "jem-xy", "--buffer-size", "1001"], "--buffer-size"),
            (["--data", "/nonexistent/folder"], "/nonexistent/folder"),
        ]
        for (arguments, flag) in cases {
            // --max-iterations bounds the run should validation ever let a case through.
            let result = try run(["train", "--backend", "cpu", "--max-iterations", "1"] + arguments)
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue(result.stderr.contains(flag), "\(arguments): \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("Fatal error"), "\(arguments): \(result.stderr)")
        }
    }

    /// kill -9 at random instants of a run that checkpoints every iteration: afterwards the last
    /// checkpoint always opens, and `--resume` continues from it.
    func testKilledTrainingAlwaysLeavesAReadableCheckpoint() throws {
        let dir = try temporaryDirectory()
        let arguments = ["train", "--backend", "cpu", "--builtin-train", "200", "--builtin-test", "20",
                         "--batch-size", "8", "--sgld-steps", "2", "--buffer-size", "32", "--checkpoint-every", "1",
                         "--max-iterations", "400", "--log-every", "5", "--out", dir]
        let random = HostRandom(seed: 17, stream: 1)
        var survived = 0
        for attempt in 0..<5 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = attempt == 0 ? arguments : ["train", "--backend", "cpu", "--resume", dir,
                                                            "--max-iterations", "400"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait for the first checkpoint of the first run, then a random 0.2-1.2 s.
            let deadline = Date().addingTimeInterval(60)
            while attempt == 0 && !FileManager.default.fileExists(atPath: dir + "/checkpoints/last.safetensors")
                && Date() < deadline { usleep(20_000) }
            usleep(UInt32(200_000 + Int(random.uniform(attempt) * 1_000_000)))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let file = try SafetensorsFile(path: dir + "/checkpoints/last.safetensors")
            let (_, state, _) = try Checkpoint.describe(file)
            XCTAssertNotNil(state)
            XCTAssertNotNil(file.entry("train.replay_buffer"))
            survived += 1
        }
        XCTAssertEqual(survived, 5)
    }

    func testSigtermWritesFinalCheckpointAndExitsZero() throws {
        let dir = try temporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["train", "--backend", "cpu", "--builtin-train", "200", "--builtin-test", "20",
                             "--batch-size", "8", "--sgld-steps", "2", "--buffer-size", "32", "--checkpoint-every", "0",
                             "--max-iterations", "100000", "--out", dir]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: dir + "/metrics.jsonl") && Date() < deadline { usleep(20_000) }
        usleep(1_500_000)
        let start = Date()
        process.terminate()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        let file = try SafetensorsFile(path: dir + "/checkpoints/last.safetensors")
        XCTAssertGreaterThan(try Checkpoint.describe(file).state?.iteration ?? 0, 0)
    }
}
