import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend
@testable import JEMSupport

/// Data-parallel training and evaluation under Open MPI (`mpirun -np 2` on localhost): the same run
/// as one process with the same global batch, a killed rank, eval/score equality. Open MPI is
/// configured for a 2-core container as root through the environment of each mpirun only.
final class DistributedTests: XCTestCase {
    static let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Open MPI on one machine, as root, in a container: shared memory + self transports only (no
    /// network probing), no rsh/ssh agent, no CMA single-copy (ptrace is usually blocked), more ranks
    /// than cores allowed.
    static let mpiEnvironment: [String: String] = [
        "OMPI_MCA_btl": "self,vader",
        "OMPI_MCA_btl_vader_single_copy_mechanism": "none",
        "OMPI_MCA_plm_rsh_agent": "",
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_hwloc_base_binding_policy": "none",
        // Ranks that wait for their peers yield the core (the ranks share 2 cores with each other).
        "OMPI_MCA_mpi_yield_when_idle": "1",
    ]

    /// Tolerances on max|a-b| / max|b| per checkpoint tensor (weights, Adam moments, replay buffer),
    /// 2 ranks against 1 process. The ranks sum the two halves' gradients in another order, and on
    /// the CPU each rank runs on half the cores, so the backend's chunked sums split differently
    /// (float re-association); nothing else differs. It grows with the iterations: Adam divides by
    /// sqrt(v), so an element with a tiny second moment turns a 1e-7 difference of its gradient
    /// into ~1e-3 of a step of size lr, and the next gradients see those weights. After 3
    /// iterations (measured 8.3e-7 baseline on the CPU; 8.5e-7, 3.4e-7 on PoCL) the JEM run on the
    /// CPU already shows it, by seed: 1 process with 1 thread against 2 threads, seeds 11-14,
    /// 5e-6 .. 2.5e-4 (the largest: seed 11, the Adam first moment of layer2.0.conv1). After 10
    /// iterations: 1.1e-4 jem, 1.8e-4 baseline on the CPU, 1.7e-4 jem on PoCL.
    /// A rank that skips the allreduce differs by ~1 (measured 0.8-1.5).
    static let shortTolerance = 5e-4
    static let longTolerance = 1e-3

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: CLITests.binary) else {
            XCTFail("jem-gpu binary not found next to the tests at \(CLITests.binary)")
            throw CancellationError()
        }
        guard Self.mpirun != nil else { throw XCTSkip("mpirun not installed (apt-get install openmpi-bin)") }
    }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "jem-mpi-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    static func mpiArguments(_ np: Int, _ arguments: [String]) -> [String] {
        ["--allow-run-as-root", "--oversubscribe", "-np", "\(np)", CLITests.binary] + arguments
    }

    /// Starts `mpirun -np N jem-gpu ARGS` (or plain jem-gpu for N = 0) with output to files.
    func start(_ np: Int, _ arguments: [String], environment: [String: String] = [:], log: String) throws -> Process {
        let process = Process()
        if np > 0 {
            process.executableURL = URL(fileURLWithPath: Self.mpirun!)
            process.arguments = Self.mpiArguments(np, arguments)
        } else {
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in Self.mpiEnvironment.merging(environment, uniquingKeysWith: { $1 }) { env[k] = v }
        if np == 0 && environment["JEM_THREADS"] == nil {
            // Each of two ranks on this machine runs on half its cores (Parallel.useThreads); the one
            // process it is compared with does too, so the CPU backend's chunked sums split alike
            // and its device description (in metrics.json) is the same.
            env["JEM_THREADS"] = String(max(1, ProcessInfo.processInfo.activeProcessorCount / 2))
        }
        process.environment = env
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    @discardableResult
    func run(_ np: Int, _ arguments: [String], environment: [String: String] = [:], expectSuccess: Bool = true,
             file: StaticString = #filePath, line: UInt = #line) throws -> (status: Int32, output: String) {
        let log = try temporaryDirectory() + "/output.log"
        let process = try start(np, arguments, environment: environment, log: log)
        process.waitUntilExit()
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        if expectSuccess {
            XCTAssertEqual(process.terminationStatus, 0, "\(np) ranks: \(arguments.joined(separator: " "))\n\(output)",
                           file: file, line: line)
        }
        return (process.terminationStatus, output)
    }

    /// A short run that exercises every part of an iteration: SGLD from the first iteration (no
    /// p(x) delay), informative restarts, the divergence guard's snapshots, logging.
    static func trainArguments(_ out: String, mode: String = "jem", backend: String = "cpu", iterations: Int = 10)
        -> [String]
    {
        ["train", "--backend", backend, "--data", "builtin", "--builtin-train", "512", "--builtin-test", "64",
         "--valid", "64", "--model", "wrn-10-1", "--mode", mode, "--batch-size", "64", "--max-iterations",
         "\(iterations)", "--px-delay", "0", "--px-ramp", "0", "--sgld-steps", "5", "--buffer-size", "500",
         "--reinit-freq", "0.2", "--log-every", "5", "--sample-every", "0", "--final-sample-steps", "0",
         "--checkpoint-every", "4", "--seed", "11", "--out", out,
         // Pinned (the default preset's 0.1 / 0.01 make the p(x) gradient a near-cancelling difference,
         // where the halves' re-association shows 30x larger: 6.8e-5 after 3 iterations, 1.0e-3 after 10).
         "--px-weight", "1", "--energy-l2", "0.1"]
    }

    static func tensors(_ dir: String) throws -> [String: [Float]] {
        let file = try SafetensorsFile(path: dir + "/checkpoints/last.safetensors")
        var all: [String: [Float]] = [:]
        for entry in file.entries { all[entry.name] = try file.floats(entry.name) }
        return all
    }

    /// The largest per-tensor relative difference between two checkpoints (model, Adam moments, buffer).
    static func largestDifference(_ a: String, _ b: String) throws -> (name: String, relative: Double) {
        let (x, y) = (try tensors(a), try tensors(b))
        XCTAssertEqual(Set(x.keys), Set(y.keys))
        var worst = ("", 0.0)
        for (name, values) in y {
            guard let other = x[name], other.count == values.count else { return (name, .infinity) }
            let e = maxRelativeError(other, values)
            if !(e <= worst.1) { worst = (name, e.isNaN ? .infinity : e) }
        }
        return worst
    }

    func checkEquivalence(mode: String, backend: String, iterations: Int, tolerance: Double) throws {
        let dir = try temporaryDirectory()
        try run(0, Self.trainArguments(dir + "/one", mode: mode, backend: backend, iterations: iterations))
        let two = try run(2, Self.trainArguments(dir + "/two", mode: mode, backend: backend, iterations: iterations))
        XCTAssertTrue(two.output.contains("2 processes, 32 rows each"), two.output)
        let worst = try Self.largestDifference(dir + "/two", dir + "/one")
        XCTAssertLessThanOrEqual(worst.relative, tolerance, "\(mode)/\(backend): \(worst.name)")
        print("DistributedTests \(mode)/\(backend), \(iterations) iterations: largest relative difference 2 ranks "
              + "vs 1 process \(worst.relative) (\(worst.name))")
        // Rank 0 alone wrote, with the world size in config.json, metrics and the run state.
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/two/config.json")))
            as? [String: Any]
        XCTAssertEqual(config?["world_size"] as? Int, 2)
        let lines = try String(contentsOfFile: dir + "/two/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let logged = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["loss"] != nil }
        XCTAssertEqual(logged.count, (iterations + 4) / 5)
        XCTAssertEqual(logged.first?["world_size"] as? Int, 2)
        XCTAssertEqual((logged.first?["rank_seconds_per_iteration"] as? [Double])?.count, 2)
        let file = try SafetensorsFile(path: dir + "/two/checkpoints/last.safetensors")
        XCTAssertEqual(try Checkpoint.describe(file).state?.worldSize, 2)
    }

    func testTwoRanksEqualOneProcessJEMOnCPU() throws {
        try checkEquivalence(mode: "jem", backend: "cpu", iterations: 3, tolerance: Self.shortTolerance)
        try checkEquivalence(mode: "jem", backend: "cpu", iterations: 10, tolerance: Self.longTolerance)
    }

    func testTwoRanksEqualOneProcessBaselineOnCPU() throws {
        try checkEquivalence(mode: "baseline", backend: "cpu", iterations: 3, tolerance: Self.shortTolerance)
        try checkEquivalence(mode: "baseline", backend: "cpu", iterations: 10, tolerance: Self.longTolerance)
    }

    func testTwoRanksEqualOneProcessJEMOnOpenCL() throws {
        guard (try? OpenCLRuntime.devices())?.isEmpty == false else { throw XCTSkip("no OpenCL device") }
        try checkEquivalence(mode: "jem", backend: "opencl", iterations: 3, tolerance: Self.shortTolerance)
    }

    func testTwoRanksEqualOneProcessBaselineOnOpenCL() throws {
        guard (try? OpenCLRuntime.devices())?.isEmpty == false else { throw XCTSkip("no OpenCL device") }
        try checkEquivalence(mode: "baseline", backend: "opencl", iterations: 3, tolerance: Self.shortTolerance)
    }

    /// The comparison above detects a broken allreduce: rank 0 keeping its own half of the gradient
    /// (JEM_DEBUG_SKIP_ALLREDUCE_RANK=0) must fail it by orders of magnitude.
    func testASkippedAllreduceFailsTheComparison() throws {
        let dir = try temporaryDirectory()
        try run(0, Self.trainArguments(dir + "/one", iterations: 4))
        try run(2, Self.trainArguments(dir + "/two", iterations: 4), environment: ["JEM_DEBUG_SKIP_ALLREDUCE_RANK": "0"])
        let worst = try Self.largestDifference(dir + "/two", dir + "/one")
        XCTAssertGreaterThan(worst.relative, 100 * Self.longTolerance, worst.name)
    }

    func testBatchNotDivisibleByRanksIsOneLineNamingBatchSize() throws {
        let dir = try temporaryDirectory()
        var arguments = Self.trainArguments(dir + "/run")
        arguments[arguments.firstIndex(of: "--batch-size")! + 1] = "63"
        let result = try run(2, arguments, expectSuccess: false)
        XCTAssertNotEqual(result.status, 0)
        let lines = result.output.split(separator: "\n").filter { $0.contains("--batch-size 63") }
        XCTAssertEqual(lines.count, 1, result.output)
        XCTAssertTrue(lines.first?.contains("not divisible by the 2 processes") == true, result.output)
    }

    /// A rank whose device does not open stops the whole job with one line naming rank and device.
    func testARankThatCannotOpenItsDeviceStopsTheJob() throws {
        guard (try? OpenCLRuntime.devices())?.isEmpty == false else { throw XCTSkip("no OpenCL device") }
        let dir = try temporaryDirectory()
        var arguments = Self.trainArguments(dir + "/run", backend: "opencl")
        arguments += ["--device", "0,97"]
        let started = Date()
        let result = try run(2, arguments, expectSuccess: false)
        XCTAssertNotEqual(result.status, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 120)
        let lines = result.output.split(separator: "\n").filter { $0.hasPrefix("Error: rank 1 of 2") }
        XCTAssertEqual(lines.count, 1, result.output)
        XCTAssertTrue(lines.first?.contains("97") == true, result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/run/checkpoints/last.safetensors"))
    }

    /// SIGKILL of one rank mid-run ends the job; the last checkpoint is intact, and `--resume` under
    /// the same process count finishes bit for bit where an uninterrupted run does.
    func testKilledRankThenResumeIsBitExact() throws {
        let dir = try temporaryDirectory()
        let iterations = 16
        try run(2, Self.trainArguments(dir + "/whole", iterations: iterations))

        let log = dir + "/killed.log"
        let process = try start(2, Self.trainArguments(dir + "/killed", iterations: iterations), log: log)
        let checkpoint = dir + "/killed/checkpoints/last.safetensors"
        let deadline = Date().addingTimeInterval(300)
        while process.isRunning && Date() < deadline && !FileManager.default.fileExists(atPath: checkpoint) {
            usleep(20_000)
        }
        XCTAssertTrue(process.isRunning, "the run ended before its first checkpoint")
        let ranks = Self.children(of: process.processIdentifier)
        XCTAssertEqual(ranks.count, 2, "rank processes of mpirun: \(ranks)")
        if let victim = ranks.last { kill(victim, SIGKILL) }
        process.waitUntilExit()
        XCTAssertNotEqual(process.terminationStatus, 0)
        let state = try XCTUnwrap(try Checkpoint.describe(SafetensorsFile(path: checkpoint)).state)
        XCTAssertLessThan(state.iteration, iterations, "killed after the end")
        XCTAssertEqual(state.iteration % 4, 0)

        try run(2, ["train", "--resume", dir + "/killed"])
        let worst = try Self.largestDifference(dir + "/killed", dir + "/whole")
        XCTAssertEqual(worst.relative, 0, "not bit-exact: \(worst.name)")

        // Another process count is refused with one line.
        let other = try run(0, ["train", "--resume", dir + "/killed", "--max-iterations", "\(iterations + 4)"],
                            expectSuccess: false)
        XCTAssertNotEqual(other.status, 0)
        XCTAssertTrue(other.output.contains("written by 2 processes (mpirun -np 2)"), other.output)
    }

    /// The processes whose parent is `pid` (mpirun's ranks).
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }.sorted()
    }

    /// SIGTERM to mpirun (which passes it on to every rank) or SIGUSR1 (which it forwards): the ranks
    /// agree to stop, rank 0 writes a final checkpoint and the "end" line, every rank exits 0. mpirun
    /// itself exits 1 after SIGTERM/SIGINT whatever the ranks did (Open MPI's rule), 0 after SIGUSR1.
    func testSignalsToMpirunWriteAFinalCheckpoint() throws {
        for (signal, status) in [(SIGTERM, Int32(1)), (SIGUSR1, Int32(0))] {
            let dir = try temporaryDirectory()
            var arguments = Self.trainArguments(dir + "/run", iterations: 100_000)
            arguments[arguments.firstIndex(of: "--checkpoint-every")! + 1] = "0"
            arguments[arguments.firstIndex(of: "--log-every")! + 1] = "1"
            arguments += ["--epochs", "1000"]
            // After SIGTERM mpirun gives the ranks this long before SIGKILL (default 1 s: too short
            // for an iteration and a checkpoint on a loaded machine).
            let process = try start(2, arguments, environment: ["OMPI_MCA_odls_base_sigkill_timeout": "60"],
                                    log: dir + "/log")
            let deadline = Date().addingTimeInterval(300)
            while process.isRunning && Date() < deadline,
                  ((try? String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8))?.split(separator: "\n").count ?? 0) < 3 {
                usleep(20_000)
            }
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            let output = (try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? ""
            XCTAssertEqual(process.terminationStatus, status, "signal \(signal): \(output)")
            let state = try XCTUnwrap(try Checkpoint.describe(SafetensorsFile(path: dir + "/run/checkpoints/last.safetensors")).state)
            XCTAssertGreaterThanOrEqual(state.iteration, 3)
            XCTAssertTrue(output.contains("stopped by signal at iteration \(state.iteration)"), output)
            let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            let end = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any]
            XCTAssertEqual(end?["reason"] as? String, "stopped by signal")
            XCTAssertFalse(output.contains("exited on signal"), output)   // no rank was killed
        }
    }

    /// eval and score under mpirun -np 2 give the numbers of one process.
    func testEvalAndScoreUnderTwoRanksEqualOneProcess() throws {
        let dir = try temporaryDirectory()
        try run(0, Self.trainArguments(dir + "/run", iterations: 2))
        let model = dir + "/run/checkpoints/last.safetensors"
        // 200 test images with batch 64: the last rank gets the short batch.
        let common = ["--backend", "cpu", "--model", model, "--data", "builtin", "--builtin-test", "200", "--split", "test",
                      "--ood", "synthetic:uniform", "--ood", "synthetic:permuted", "--test-noise", "0.03"]
        for (np, name) in [(0, "one"), (2, "two")] {
            try run(np, ["eval"] + common + ["--out", dir + "/eval-" + name])
            try run(np, ["score"] + common + ["--out", dir + "/score-\(name).npz", "--csv", dir + "/score-\(name).csv"])
        }
        func metrics(_ name: String) throws -> NSDictionary {
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/eval-\(name)/metrics.json")))
            var dictionary = try XCTUnwrap(object as? [String: Any])
            var settings = dictionary["settings"] as? [String: Any] ?? [:]
            settings["device"] = nil   // "CPU (N threads ...)": the ranks split the cores
            dictionary["settings"] = settings
            return dictionary as NSDictionary
        }
        XCTAssertEqual(try metrics("two"), try metrics("one"))
        let csv = { (name: String) in try String(contentsOfFile: dir + "/score-\(name).csv", encoding: .utf8) }
        XCTAssertEqual(try csv("two"), try csv("one"))
        XCTAssertGreaterThan(try csv("one").split(separator: "\n").count, 200)
    }
}
