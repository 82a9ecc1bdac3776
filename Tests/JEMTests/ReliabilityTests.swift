import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The reliability suite, against the `jem-gpu` executable as a user runs it: SIGKILL at many
/// exact instants (checkpoint writes included) followed by a bit-exact resume, a full disk or a
/// file-size limit while checkpointing or logging, an output folder that cannot exist, OpenCL
/// faults, and SIGINT/SIGTERM. `JEM_TEST_LONG=1` adds more randomly timed kills.
final class ReliabilityTests: XCTestCase {
    static let long = ProcessInfo.processInfo.environment["JEM_TEST_LONG"] != nil

    override func setUpWithError() throws {
        try requireJemGPUBinary()
    }

    func temporaryDirectory() throws -> String {
        let path = try scratchDirectory("jem-rel")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// A run small enough to repeat dozens of times (about a second on 2 cores) that still does
    /// everything a real one does: SGLD from the first iteration, a checkpoint every iteration,
    /// a metrics line per iteration, an evaluation and best.safetensors at the end.
    static func tinyRun(_ dir: String, iterations: Int = 8) -> [String] {
        ["train", "--backend", "cpu", "--builtin-train", "120", "--builtin-test", "12", "--batch-size", "4",
         "--sgld-steps", "1", "--buffer-size", "16", "--px-delay", "0", "--px-ramp", "0", "--warmup-iters", "2",
         "--checkpoint-every", "1", "--log-every", "1", "--sample-every", "0", "--final-sample-steps", "0",
         "--max-iterations", "\(iterations)", "--out", dir]
    }

    static func resume(_ dir: String, iterations: Int = 8) -> [String] {
        ["train", "--backend", "cpu", "--resume", dir, "--max-iterations", "\(iterations)"]
    }

    // MARK: Files of a run

    /// Every tensor of a checkpoint, by name.
    func tensors(_ path: String) throws -> [String: [Float]] {
        let file = try SafetensorsFile(path: path)
        var out: [String: [Float]] = [:]
        for e in file.entries where e.dtype == .f32 { out[e.name] = try file.floats(e.name) }
        return out
    }

    func runState(_ dir: String) throws -> RunState? {
        try Checkpoint.describe(SafetensorsFile(path: dir + "/checkpoints/last.safetensors")).state
    }

    /// metrics.jsonl as objects; fails the test on a line that is not JSON (a half-written line).
    func metricsLines(_ dir: String, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        return text.split(separator: "\n").compactMap { row in
            let object = try? JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any]
            XCTAssertNotNil(object, "metrics.jsonl holds a line that is not JSON: \(row)", file: file, line: line)
            return object
        }
    }

    /// What a run logged per iteration, without the timing fields (which differ from run to run).
    func loggedLosses(_ dir: String) throws -> [String] {
        try metricsLines(dir).filter { $0["event"] == nil }.map { "\($0["iteration"]!) \($0["loss"]!) \($0["f_sample"]!)" }
    }

    /// Leftover temporary files (`.NAME.tmp-PID`) anywhere under the run folder.
    func temporaries(_ dir: String) -> [String] {
        let all = FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []
        return all.filter { ($0 as NSString).lastPathComponent.contains(".tmp-") }
    }

    func sha(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// Starts the binary with stdout/stderr in files (no pipe can fill up and block it).
    func start(_ arguments: [String], environment: [String: String] = [:], stderr: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        FileManager.default.createFile(atPath: stderr, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderr))
        try process.run()
        return process
    }

    // MARK: kill -9

    /// kill -9 at 20+ exact instants (after an optimizer step, halfway through a checkpoint's
    /// bytes, between its fsync and rename, after the rename, halfway through a metrics line, in
    /// the writes a resumed run starts with) and at randomly timed ones. After each: the last
    /// checkpoint opens, `--resume` continues from it, the temporary files are gone, the log is
    /// whole lines, and the final weights, Adam moments, replay buffer, run state and logged
    /// losses equal those of one uninterrupted run, bit for bit (CPU backend).
    func testKillNineAtManyInstantsThenResumeIsBitExact() throws {
        let root = try temporaryDirectory()
        let reference = root + "/reference"
        let started = Date()
        let straight = try runJemGPU(Self.tinyRun(reference))
        XCTAssertEqual(straight.status, 0, straight.stderr)
        let runSeconds = Date().timeIntervalSince(started)
        let expected = try tensors(reference + "/checkpoints/last.safetensors")
        let expectedBest = try tensors(reference + "/checkpoints/best.safetensors")
        let expectedState = try runState(reference)
        let expectedLosses = try loggedLosses(reference)
        XCTAssertEqual(expectedState?.iteration, 8)
        XCTAssertEqual(expectedLosses.count, 8)

        // Each instant: the crash point of the first run, then (optional) one of the resumed run.
        // Writes of the first run, in order: config.json, then per iteration i a metrics line and
        // last.safetensors #i; at iteration 8 the evaluation (metrics line, best.safetensors), then
        // last.safetensors #8, the final #9, x_q_final.png and the end line.
        var instants: [(first: String, second: String?)] = [
            ("iteration@2", nil), ("iteration@4", nil), ("iteration@6", nil), ("iteration@8", nil),
            ("write-half:last.safetensors@2", nil), ("write-half:last.safetensors@5", nil),
            ("write-half:last.safetensors@8", nil), ("write-half:last.safetensors@9", nil),
            ("before-rename:last.safetensors@2", nil), ("before-rename:last.safetensors@4", nil),
            ("before-rename:last.safetensors@7", nil), ("before-rename:last.safetensors@9", nil),
            ("after-rename:last.safetensors@3", nil), ("after-rename:last.safetensors@6", nil),
            ("write-half:best.safetensors@1", nil), ("before-rename:best.safetensors@1", nil),
            ("metrics-half-line@3", nil), ("metrics-half-line@6", nil), ("metrics-half-line@10", nil),
            ("write-half:x_q_final.png@1", nil),
            // The resumed run killed again: while it rewrites metrics.jsonl and config.json, and
            // halfway through its first checkpoint.
            ("iteration@3", "write-half:metrics.jsonl@1"), ("iteration@3", "before-rename:config.json@1"),
            ("before-rename:last.safetensors@3", "write-half:last.safetensors@2"),
        ]
        // Randomly timed kills from outside, after the first checkpoint exists.
        let timed = Self.long ? 40 : 6
        for i in 0..<timed { instants.append(("timed@\(i)", nil)) }

        let random = HostRandom(seed: 2718, stream: 3)
        var kills = 0, exactKills = 0, timedKills = 0, resumedFrom: Set<Int> = []
        for (index, instant) in instants.enumerated() {
            let dir = root + "/run\(index)"
            let log = root + "/stderr\(index)"
            var points = [instant.first] + (instant.second.map { [$0] } ?? [])
            var arguments = Self.tinyRun(dir)
            while !points.isEmpty {
                let point = points.removeFirst()
                if point.hasPrefix("timed@") {
                    let process = try start(arguments, stderr: log)
                    let deadline = Date().addingTimeInterval(60)
                    while !FileManager.default.fileExists(atPath: dir + "/checkpoints/last.safetensors"),
                          process.isRunning, Date() < deadline { usleep(2000) }
                    // Within the first half of a whole run's duration: the run is past its start-up
                    // by now, so nearly every kill lands before it finishes (one that does not is
                    // not counted).
                    usleep(UInt32(random.uniform(index) * Float(runSeconds) * 500_000))
                    kill(process.processIdentifier, SIGKILL)
                    process.waitUntilExit()
                    if process.terminationReason == .uncaughtSignal { timedKills += 1; kills += 1 }
                } else {
                    let process = try start(arguments, environment: ["JEM_TEST_KILL_AT": point], stderr: log)
                    process.waitUntilExit()
                    XCTAssertEqual(process.terminationReason, .uncaughtSignal, "\(point): the crash point was never reached")
                    XCTAssertEqual(process.terminationStatus, SIGKILL, point)
                    kills += 1
                    exactKills += 1
                }
                // The checkpoint left behind is complete and carries the training state.
                let state = try XCTUnwrap(try runState(dir), "\(point): no run state")
                let file = try SafetensorsFile(path: dir + "/checkpoints/last.safetensors")
                XCTAssertNotNil(file.entry("train.replay_buffer"), point)
                resumedFrom.insert(state.iteration)
                arguments = Self.resume(dir)
            }
            let resumed = try runJemGPU(arguments)
            XCTAssertEqual(resumed.status, 0, "\(instant): \(resumed.stderr)")
            let got = try tensors(dir + "/checkpoints/last.safetensors")
            XCTAssertEqual(Set(got.keys), Set(expected.keys), "\(instant)")
            for (name, values) in expected where got[name] != values {
                XCTFail("\(instant): tensor \(name) differs from the uninterrupted run")
            }
            XCTAssertEqual(try tensors(dir + "/checkpoints/best.safetensors"), expectedBest, "\(instant)")
            XCTAssertEqual(try runState(dir), expectedState, "\(instant)")
            XCTAssertEqual(try loggedLosses(dir), expectedLosses, "\(instant): metrics.jsonl differs")
            XCTAssertEqual(temporaries(dir), [], "\(instant): temporary files left behind")
        }
        print("kill -9: \(kills) kills (\(exactKills) at exact crash points, \(timedKills) of \(timed) timed), resumed from "
              + "iterations \(resumedFrom.sorted()), all bit-exact")
        XCTAssertGreaterThanOrEqual(kills, 20)
        XCTAssertGreaterThan(resumedFrom.count, 4, "the kills should land at different iterations")
    }

    // MARK: Disk full, unwritable folder

    /// Runs `arguments` under a file-size limit of `kilobytes` (RLIMIT_FSIZE: a write past it fails
    /// with EFBIG, as on a full disk; jem-gpu ignores SIGXFSZ so it is an error, not a kill).
    func runLimited(_ kilobytes: Int, _ arguments: [String]) throws -> CommandRun {
        let script = "ulimit -f \(kilobytes) && exec \"$0\" \"$@\""
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", script, CLITests.binary] + arguments
        let folder = try temporaryDirectory()
        let out = folder + "/stdout", err = folder + "/stderr"
        FileManager.default.createFile(atPath: out, contents: nil)
        FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, "killed by a signal (SIGXFSZ not ignored?)")
        return CommandRun(status: process.terminationStatus,
                          stdout: String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self),
                          stderr: String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self))
    }

    /// The one error line of a failed run ("Error: ..."), failing the test unless there is exactly one.
    func errorLine(_ run: CommandRun, file: StaticString = #filePath, line: UInt = #line) -> String {
        let errors = run.stderrLines.filter { $0.hasPrefix("Error:") }
        XCTAssertEqual(errors.count, 1, "expected one error line: \(run.stderr)", file: file, line: line)
        XCTAssertNotEqual(run.status, 0, file: file, line: line)
        return errors.first ?? ""
    }

    func testDiskFullWhileWritingACheckpointKeepsThePreviousOne() throws {
        let dir = try temporaryDirectory() + "/run"
        let first = try runJemGPU(Self.tinyRun(dir, iterations: 2))
        XCTAssertEqual(first.status, 0, first.stderr)
        let last = dir + "/checkpoints/last.safetensors", best = dir + "/checkpoints/best.safetensors"
        let (lastBytes, bestBytes) = (sha(last), sha(best))
        XCTAssertGreaterThan(lastBytes?.count ?? 0, 256 * 1024, "the checkpoint must exceed the limit below")

        // 256 KiB: config.json and the metrics log fit, a checkpoint does not.
        let full = try runLimited(256, Self.resume(dir, iterations: 6))
        let message = errorLine(full)
        XCTAssertTrue(message.contains(last), message)
        XCTAssertTrue(message.contains("File too large"), message)
        XCTAssertTrue(message.contains("previous file"), message)
        XCTAssertEqual(sha(last), lastBytes, "the previous checkpoint must be intact")
        XCTAssertEqual(sha(best), bestBytes)
        XCTAssertEqual(temporaries(dir), [], "no half-written file may be left")
        XCTAssertEqual(try runState(dir)?.iteration, 2)
        _ = try metricsLines(dir)
        // And the run goes on from it once there is room again.
        let resumed = try runJemGPU(Self.resume(dir, iterations: 4))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try runState(dir)?.iteration, 4)
    }

    func testDiskFullWhileLoggingMetricsLeavesWholeLines() throws {
        let dir = try temporaryDirectory() + "/run"
        var arguments = Self.tinyRun(dir, iterations: 2)
        arguments[arguments.firstIndex(of: "--checkpoint-every")! + 1] = "0"   // only the final checkpoint
        let first = try runJemGPU(arguments)
        XCTAssertEqual(first.status, 0, first.stderr)
        let last = dir + "/checkpoints/last.safetensors"
        let lastBytes = sha(last)
        let logBytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: dir + "/metrics.jsonl")[.size] as? Int)
        let configBytes = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: dir + "/config.json")[.size] as? Int)
        // A limit the log reaches within a few iterations (and config.json stays under).
        let limit = max(logBytes, configBytes) / 1024 + 2
        let full = try runLimited(limit, Self.resume(dir, iterations: 25))
        let message = errorLine(full)
        XCTAssertTrue(message.contains(dir + "/metrics.jsonl"), message)
        XCTAssertTrue(message.contains("File too large"), message)
        XCTAssertEqual(sha(last), lastBytes, "the checkpoint must be intact")
        let lines = try metricsLines(dir)   // fails on a cut line
        XCTAssertGreaterThan(lines.count, 2, "the log grew before it hit the limit")
        XCTAssertEqual(temporaries(dir), [])
    }

    func testOutputFolderThatCannotExistIsAOneLineError() throws {
        let root = try temporaryDirectory()
        let file = root + "/a-file"
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        let result = try runJemGPU(Self.tinyRun(file + "/run", iterations: 1))
        let message = errorLine(result)
        XCTAssertTrue(message.contains(file + "/run"), message)
        XCTAssertTrue(message.contains("Not a directory"), message)

        // A run folder whose checkpoints/ is a file.
        let dir = root + "/run"
        XCTAssertEqual(try runJemGPU(Self.tinyRun(dir, iterations: 1)).status, 0)
        try FileManager.default.removeItem(atPath: dir + "/checkpoints")
        FileManager.default.createFile(atPath: dir + "/checkpoints", contents: Data())
        let broken = try runJemGPU(Self.tinyRun(dir, iterations: 1))
        XCTAssertTrue(errorLine(broken).contains(dir + "/checkpoints"), broken.stderr)
    }

    /// Repeating a train command line never replaces what it trained: the second run is refused
    /// with one line naming the folder, the way to continue it and --overwrite; the checkpoint is
    /// untouched. With --overwrite the folder is trained anew.
    func testTrainingIntoAFolderThatHoldsARunIsRefusedUnlessOverwrite() throws {
        let dir = try temporaryDirectory() + "/run"
        XCTAssertEqual(try runJemGPU(Self.tinyRun(dir, iterations: 2)).status, 0)
        let last = dir + "/checkpoints/last.safetensors"
        let before = try XCTUnwrap(sha(last))
        let again = try runJemGPU(Self.tinyRun(dir, iterations: 1))
        let message = errorLine(again)
        for part in ["--out " + dir, "--resume " + dir, "--overwrite"] {
            XCTAssertTrue(message.contains(part), "\(part): \(message)")
        }
        XCTAssertEqual(sha(last), before, "the refused run must not touch the checkpoint")
        let replaced = try runJemGPU(Self.tinyRun(dir, iterations: 1) + ["--overwrite"])
        XCTAssertEqual(replaced.status, 0, replaced.stderr)
        XCTAssertNotEqual(sha(last), before)
        XCTAssertEqual(try Checkpoint.describe(SafetensorsFile(path: last)).state?.iteration, 1)
    }

    // MARK: OpenCL faults

    /// A run never loses its checkpoint to an OpenCL fault: no platform with --backend opencl is
    /// a one-line error, --backend auto falls back to the CPU with a one-line notice and resumes,
    /// and a replay buffer above CL_DEVICE_MAX_MEM_ALLOC_SIZE is refused naming the size and limit.
    func testOpenCLFaultsAreClearAndNeverLoseACheckpoint() throws {
        let dir = try temporaryDirectory() + "/run"
        XCTAssertEqual(try runJemGPU(Self.tinyRun(dir, iterations: 2)).status, 0)
        let last = dir + "/checkpoints/last.safetensors"
        let before = sha(last)
        let noPlatform = ["OCL_ICD_VENDORS": "/nonexistent"]

        var arguments = Self.resume(dir, iterations: 3)
        arguments[arguments.firstIndex(of: "cpu")!] = "opencl"
        let forced = try runJemGPU(arguments, environment: noPlatform)
        XCTAssertTrue(errorLine(forced).lowercased().contains("no opencl platform"), forced.stderr)
        XCTAssertEqual(sha(last), before, "a failed start must not touch the checkpoint")

        arguments[arguments.firstIndex(of: "opencl")!] = "auto"
        let auto = try runJemGPU(arguments, environment: noPlatform)
        XCTAssertEqual(auto.status, 0, auto.stderr)
        XCTAssertEqual(auto.stderrLines.filter { $0.contains("using the CPU backend") }.count, 1, auto.stderr)
        XCTAssertEqual(try runState(dir)?.iteration, 3)

        // One buffer larger than the device allows.
        let device = try XCTUnwrap(OpenCLRuntime.devices().first)
        let imageBytes = 28 * 28 * 4
        let tooMany = Int(device.maxAllocationBytes) / imageBytes + 1
        let other = try temporaryDirectory() + "/big"
        var big = Self.tinyRun(other, iterations: 1)
        big[big.firstIndex(of: "cpu")!] = "opencl"
        big[big.firstIndex(of: "--buffer-size")! + 1] = "\(tooMany)"
        let refused = try runJemGPU(big)
        let message = errorLine(refused)
        XCTAssertTrue(message.contains("--buffer-size \(tooMany)"), message)
        XCTAssertTrue(message.contains("\(tooMany * imageBytes) bytes"), message)
        XCTAssertTrue(message.contains("at most \(device.maxAllocationBytes) bytes"), message)
        XCTAssertTrue(message.contains("CL_DEVICE_MAX_MEM_ALLOC_SIZE"), message)
    }

    // MARK: Signals

    /// SIGINT and SIGTERM: a final checkpoint, an "end" line saying why, exit 0 within seconds.
    func testSigintAndSigtermWriteAFinalCheckpointAndExitZero() throws {
        for signal in [SIGINT, SIGTERM] {
            let dir = try temporaryDirectory() + "/run"
            var arguments = Self.tinyRun(dir, iterations: 100_000)
            arguments[arguments.firstIndex(of: "--checkpoint-every")! + 1] = "0"
            let process = try start(arguments, stderr: dir + ".stderr")
            let deadline = Date().addingTimeInterval(60)
            while process.isRunning && Date() < deadline,
                  ((try? String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0) < 3 {
                usleep(10_000)
            }
            let sent = Date()
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .exit, "signal \(signal)")
            XCTAssertEqual(process.terminationStatus, 0, "signal \(signal)")
            XCTAssertLessThan(Date().timeIntervalSince(sent), 10, "signal \(signal)")
            let state = try XCTUnwrap(try runState(dir))
            XCTAssertGreaterThanOrEqual(state.iteration, 3)
            let end = try metricsLines(dir).last
            XCTAssertEqual(end?["event"] as? String, "end")
            XCTAssertEqual(end?["reason"] as? String, "stopped by signal")
            XCTAssertEqual(end?["iteration"] as? Int, state.iteration)
            let stderr = try String(contentsOfFile: dir + ".stderr", encoding: .utf8)
            XCTAssertTrue(stderr.contains("stopped by signal at iteration \(state.iteration)"), stderr)
        }
    }
}
