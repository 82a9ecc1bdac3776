import Foundation
import JEM
import JEMBackend

/// "OpenCL first iteration (cold/warm cache)": how long a new process takes from launch to the end
/// of its first JEM iteration, kernel builds included, with empty caches and then with the caches
/// the first process left. Each measurement is a child process of jem-bench (the same executable
/// with `--first-iteration-probe`), because a process keeps its programs and CLBlast's kernels in
/// memory: only a new process starts cold.
///
/// The caches are the program cache of jem-gpu (`JEM_GPU_CACHE_DIR`) and the driver's own where
/// it has one that an environment variable moves (PoCL: `POCL_CACHE_DIR`; NVIDIA:
/// `CUDA_CACHE_PATH`), all pointed at a fresh temporary folder.
///
/// The child's iterations take one SGLD step instead of 20: the first step already launches every
/// kernel and GEMM shape of the full iteration, so the start-up cost is the same, and a short
/// iteration keeps the measurement quick and its noise small (a full one takes a minute on PoCL).
/// After the first iteration the child runs `steadyRuns` more; start-up = (launch to the end of
/// iteration 1) - (median later iteration): device opening, program builds, first-launch
/// compiles of the driver and CLBlast, and the trainer's setup.
enum ColdStart {
    static let sgldSteps = 1
    static let steadyRuns = 3

    /// The line the child prints its JSON on.
    static let marker = "first-iteration-probe: "
    /// The parent's CLOCK_MONOTONIC at launch, in nanoseconds, for the child's "since launch".
    static let launchVariable = "JEM_BENCH_LAUNCH_NS"

    static func monotonicNanoseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }

    /// CPU seconds this process has used (all threads, the driver's included). On a machine shared
    /// with other work, CPU time moves much less than wall time, so the start-up cost is also
    /// given in CPU seconds.
    static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// The child: open the device, build a JEM trainer, run two iterations, print the timings.
    static func probe(device: String?, model: String, batch: Int) throws {
        let launched = ProcessInfo.processInfo.environment[launchVariable].flatMap { UInt64($0) }
            ?? monotonicNanoseconds()
        func since(_ start: UInt64) -> Double { Double(monotonicNanoseconds() - start) / 1e9 }
        let mainStart = monotonicNanoseconds()

        guard let engine = try BackendSelection.make(.opencl, device: device).backend as? OpenCLBackend else {
            throw BenchError("the first-iteration probe needs the OpenCL backend")
        }
        let openSeconds = since(mainStart)
        let (trainer, data, setupSeconds) = try makeTrainer(engine, model: model, batch: batch)
        var step = monotonicNanoseconds()
        _ = try trainer.iterate(data, iteration: 0, learningRate: 1e-4, seed: 1)
        try engine.synchronize()
        let firstSeconds = since(step)
        let toFirstEnd = since(launched)
        let cpuToFirstEnd = processCPUSeconds()
        var later: [Double] = [], laterCPU: [Double] = []
        for iteration in 1...steadyRuns {
            step = monotonicNanoseconds()
            let cpu = processCPUSeconds()
            _ = try trainer.iterate(data, iteration: iteration, learningRate: 1e-4, seed: 1)
            try engine.synchronize()
            later.append(since(step))
            laterCPU.append(processCPUSeconds() - cpu)
        }
        let steadySeconds = later.sorted()[later.count / 2]
        let steadyCPU = laterCPU.sorted()[laterCPU.count / 2]

        let origins = engine.programOrigins.values
        let report: [String: Any] = [
            "since_launch_to_first_iteration_end_s": toFirstEnd,
            "process_start_s": Double(mainStart - launched) / 1e9,
            "open_device_s": openSeconds,
            "setup_s": setupSeconds,
            "first_iteration_s": firstSeconds,
            "steady_iteration_s": steadySeconds,
            "cpu_to_first_iteration_end_s": cpuToFirstEnd,
            "steady_iteration_cpu_s": steadyCPU,
            "sgld_steps": sgldSteps,
            "programs_from_source": origins.filter { $0 == .source }.count,
            "programs_from_cache": origins.filter { $0 == .cache }.count,
            "program_build_s": engine.buildSeconds.values.reduce(0, +),
            "program_cache": engine.programCache.directory ?? "",
        ]
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(marker + String(decoding: json, as: UTF8.self))
    }

    private static func makeTrainer(_ backend: any Backend, model: String, batch: Int) throws
        -> (JEMTrainer, TrainingBatch, Double)
    {
        let start = monotonicNanoseconds()
        guard let (depth, widen) = WideResNetSpec.parse(model) else { throw BenchError("bad model \(model)") }
        let spec = WideResNetSpec(depth: depth, widen: widen)
        var config = TrainingConfig()
        config.model = spec.name
        config.batchSize = batch
        config.sgldSteps = sgldSteps
        config.bufferSize = 10000
        config.pxDelay = 0
        let trainer = try JEMTrainer(config: config, spec: spec, backend: backend)
        let images = { (stream: UInt64) in
            (0..<(batch * spec.inputCount)).map { 2 * Philox.uniform(seed: 5, stream: stream, element: $0) - 1 }
        }
        let data = TrainingBatch(px: images(1), labeled: images(2),
                                 labels: (0..<batch).map { Int32($0 % spec.classCount) })
        try backend.synchronize()
        return (trainer, data, Double(monotonicNanoseconds() - start) / 1e9)
    }

    /// The parent: children on one fresh cache folder: cold (every cache empty), warm (the caches
    /// the cold one left: a second start), and warm with the driver's cache emptied again (what
    /// jem-gpu's program cache alone gives); one result each.
    static func measure(executable: String, device: String?, model: String, batch: Int,
                        ceiling: Double) throws -> [BenchResult] {
        let folder = NSTemporaryDirectory() + "jem-bench-cold-start-\(getpid())"
        try? FileManager.default.removeItem(atPath: folder)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var environment = ProcessInfo.processInfo.environment
        environment["JEM_GPU_CACHE_DIR"] = folder + "/jem-gpu"
        environment["POCL_CACHE_DIR"] = folder + "/pocl"
        environment["CUDA_CACHE_PATH"] = folder + "/cuda"

        var results: [BenchResult] = []
        for state in ["cold cache", "warm cache", "warm jem-gpu cache, empty driver cache"] {
            if state.hasPrefix("warm jem-gpu") {
                for driverCache in ["/pocl", "/cuda"] { try? FileManager.default.removeItem(atPath: folder + driverCache) }
            }
            let report = try runChild(executable: executable, device: device, model: model, batch: batch,
                                      environment: environment)
            func value(_ key: String) -> Double { (report[key] as? NSNumber)?.doubleValue ?? .nan }
            let total = value("since_launch_to_first_iteration_end_s")
            let steady = value("steady_iteration_s")
            // The reported time is the start-up cost; the JSON keeps its parts.
            var result = BenchResult(backend: "opencl", name: "OpenCL first iteration, \(state): start-up",
                                     seconds: [total - steady], flop: nil, bytes: nil, ceiling: ceiling)
            let startUpCPU = value("cpu_to_first_iteration_end_s") - value("steady_iteration_cpu_s")
            for key in ["since_launch_to_first_iteration_end_s", "process_start_s", "open_device_s", "setup_s",
                        "first_iteration_s", "steady_iteration_s", "cpu_to_first_iteration_end_s",
                        "steady_iteration_cpu_s", "sgld_steps", "programs_from_source", "programs_from_cache",
                        "program_build_s"] {
                result.extra[key] = value(key)
            }
            result.extra["start_up_cpu_s"] = startUpCPU
            print(result.line)
            print(String(format: "    = %.2f s from launch to the end of iteration 1 (%d SGLD step) - %.2f s for a "
                          + "later one; in CPU time %.2f s - %.2f s = %.2f s", total, sgldSteps, steady,
                          value("cpu_to_first_iteration_end_s"), value("steady_iteration_cpu_s"), startUpCPU))
            print(String(format: "    device %.2f s, setup %.2f s, iteration 1 %.2f s; %d programs from source, "
                          + "%d from cache, %.2f s in program builds", value("open_device_s"), value("setup_s"),
                          value("first_iteration_s"), Int(value("programs_from_source")),
                          Int(value("programs_from_cache")), value("program_build_s")))
            results.append(result)
        }
        return results
    }

    private static func runChild(executable: String, device: String?, model: String, batch: Int,
                                 environment: [String: String]) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--first-iteration-probe", "--model", model, "--batch", String(batch)]
            + (device.map { ["--device", $0] } ?? [])
        var env = environment
        env[launchVariable] = String(monotonicNanoseconds())
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        guard process.terminationStatus == 0,
              let line = text.split(separator: "\n").last(where: { $0.hasPrefix(marker) }),
              let object = try JSONSerialization.jsonObject(with: Data(line.dropFirst(marker.count).utf8))
                as? [String: Any] else {
            throw BenchError("the first-iteration probe failed (exit \(process.terminationStatus)):\n\(text)")
        }
        return object
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
