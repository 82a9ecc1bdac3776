import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The `jem-gpu` executable as a user runs it: exit codes and one-line errors (kills, signals and
/// full disks are in ReliabilityTests).
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

    /// Every `jem-gpu train` flag with invalid values: a non-zero exit, one error line that names
    /// the flag and says what is allowed, and no trap. (NaN and infinity are values too.)
    func testInvalidTrainFlagsNameTheFlag() throws {
        let out = try temporaryDirectory()
        // (arguments, the flag the message must name, what it must say is allowed)
        let cases: [([String], String, String)] = [
            (["--preset", "huge"], "--preset", "default"),
            (["--data", "/nonexistent/folder"], "/nonexistent/folder", "no such file"),
            (["--mode", "gan"], "--mode", "jem-xy"),
            (["--model", "resnet-18"], "--model", "wrn-D-W"), (["--model", "wrn-12-2"], "--model", "6n+4"),
            (["--model", "wrn-10-0"], "--model", "wrn-D-W"), (["--model", "wrn-10-99999999999999999999"], "--model", "wrn-D-W"),
            (["--model", "wrn-1006-1"], "--model", "10...1000"),
            (["--model", "wrn-1000-1000"], "--model", "GiB of memory"),
            (["--activation", "tanh"], "--activation", "leaky-relu or swish"),
            (["--px-weight", "-1"], "--px-weight", ">= 0"), (["--px-weight", "nan"], "--px-weight", ">= 0"),
            (["--pyx-weight", "-0.5"], "--pyx-weight", ">= 0"), (["--pxy-weight", "inf"], "--pxy-weight", "finite"),
            (["--px-delay", "-1"], "--px-delay", ">= 0"), (["--px-ramp", "-3"], "--px-ramp", ">= 0"),
            (["--energy-l2", "-0.1"], "--energy-l2", ">= 0"),
            (["--sgld-steps", "-1"], "--sgld-steps", ">= 0"), (["--sgld-steps", "1000000"], "--sgld-steps", "at most"),
            (["--sgld-lr", "-1"], "--sgld-lr", ">= 0"), (["--sgld-lr", "nan"], "--sgld-lr", ">= 0"),
            (["--sgld-std", "-0.01"], "--sgld-std", ">= 0"),
            (["--sgld-grad-clip", "0"], "--sgld-grad-clip", "> 0"), (["--sgld-clamp", "-1"], "--sgld-clamp", "> 0"),
            (["--buffer-size", "0"], "--buffer-size", "> 0"), (["--buffer-size", "-5"], "--buffer-size", "> 0"),
            (["--mode", "jem-xy", "--buffer-size", "1001"], "--buffer-size", "divisible by the 10 classes"),
            (["--buffer-size", "1000000000000"], "--buffer-size", "GiB of memory"),
            (["--reinit-freq", "2"], "--reinit-freq", "[0, 1]"), (["--reinit-freq", "nan"], "--reinit-freq", "[0, 1]"),
            (["--buffer-init", "mixed", "--informative-share", "1.5"], "--informative-share", "[0, 1]"),
            (["--optimizer", "rmsprop"], "--optimizer", "adam"),
            (["--lr", "0"], "--lr", "> 0"), (["--lr", "-1"], "--lr", "> 0"), (["--lr", "nan"], "--lr", "> 0"),
            (["--lr", "inf"], "--lr", "finite"), (["--lr", "fast"], "--lr", "> 0"),
            (["--momentum", "1"], "--momentum", "[0, 1)"), (["--momentum", "-0.5"], "--momentum", "[0, 1)"),
            (["--weight-decay", "-1"], "--weight-decay", ">= 0"), (["--warmup-iters", "-1"], "--warmup-iters", ">= 0"),
            (["--decay-epochs", "a,b"], "--decay-epochs", "non-negative integers"),
            (["--decay-epochs", "10,-1"], "--decay-epochs", "non-negative integers"),
            (["--decay-rate", "0"], "--decay-rate", "(0, 1]"), (["--decay-rate", "1.5"], "--decay-rate", "(0, 1]"),
            (["--epochs", "0"], "--epochs", "> 0"), (["--epochs", "2000000"], "--epochs", "at most"),
            (["--max-iterations", "-1"], "--max-iterations", ">= 0"),
            (["--batch-size", "0"], "--batch-size", "> 0"), (["--batch-size", "-4"], "--batch-size", "> 0"),
            (["--builtin-train", "100", "--batch-size", "200"], "--batch-size", "training images"),
            (["--seed", "-1"], "--seed", "0...2^64-1"),
            (["--valid", "-1"], "--valid", ">= 0"), (["--builtin-train", "100", "--valid", "100"], "--valid", "no training images"),
            (["--labels-per-class", "0"], "--labels-per-class", "> 0"),
            (["--labels-per-class", "1", "--batch-size", "16"], "--labels-per-class", "one batch"),
            (["--sigma", "-1"], "--sigma", ">= 0"), (["--pad", "-1"], "--pad", ">= 0"),
            (["--test-noise", "nan"], "--test-noise", ">= 0"), (["--flip", "maybe"], "--flip", "on"),
            (["--builtin-train", "0"], "--builtin-train", "1...1000000"),
            (["--builtin-train", "5000000"], "--builtin-train", "1...1000000"),
            (["--builtin-test", "0"], "--builtin-test", "1...1000000"),
            (["--max-recoveries", "-1"], "--max-recoveries", ">= 0"), (["--guard-loss", "0"], "--guard-loss", "> 0"),
            (["--guard-gap", "nan"], "--guard-gap", "> 0"), (["--recovery", "restart"], "--recovery", "cut-lr"),
            (["--snapshot-every", "0"], "--snapshot-every", "> 0"), (["--log-every", "0"], "--log-every", "> 0"),
            (["--sample-every", "-1"], "--sample-every", ">= 0"),
            (["--final-sample-steps", "-1"], "--final-sample-steps", ">= 0"),
            (["--checkpoint-every", "-1"], "--checkpoint-every", ">= 0"),
            (["--backend", "gpu"], "--backend", "opencl"), (["--backend", "opencl", "--device", "99"], "--device 99", "devices:"),
            (["--resume", out + "/nothing-here"], "--resume", "no checkpoints/last.safetensors"),
        ]
        for (arguments, flag, allowed) in cases {
            // A small built-in set and --max-iterations bound the run should validation ever let a case through.
            let result = try run(["train", "--backend", "cpu", "--max-iterations", "1", "--builtin-train", "300",
                                  "--builtin-test", "10", "--out", out + "/run"] + arguments)
            let errors = result.stderrLines.filter { $0.hasPrefix("Error:") }
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertEqual(errors.count, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(errors.first?.contains(flag) == true, "\(arguments) must name \(flag): \(result.stderr)")
            // What is allowed: in the error line, or for values that are not numbers at all, in the
            // help line ArgumentParser prints under it.
            XCTAssertTrue(result.stderr.contains(allowed), "\(arguments) must say '\(allowed)': \(result.stderr)")
            XCTAssertFalse(result.stderr.contains("Fatal error"), "\(arguments): \(result.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/run/checkpoints/last.safetensors"),
                       "no case may have trained")
    }
}
