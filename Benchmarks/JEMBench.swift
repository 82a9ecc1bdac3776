import ArgumentParser
import Foundation
import JEM
import JEMBackend

/// The benchmark runner: op-level and model-level timings per backend, with the machine's
/// GEMM ceiling measured in the same run. Speed targets live here, never in tests.
@main
struct JEMBench: ParsableCommand {
    static func main() {
        OpenBLASSetup.relaunchWithBestKernelsIfNeeded()
        Self.main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "jem-bench",
        abstract: "Time jem-gpu's ops and model steps on each backend and write a table and JSON.",
        discussion: """
            Reports median/min/max seconds over repeated runs after warm-up, GFLOP/s (2 FLOP per multiply-add), the fraction of the float32 GEMM ceiling measured in the same run with cblas_sgemm at 2048^3, and the peak resident memory of the process.
            """)

    @Option(help: ArgumentHelp("Backends to run, comma-separated.", valueName: "cpu,opencl"))
    var backend: String = "cpu,opencl"

    @Option(help: ArgumentHelp("OpenCL device (index, platform:device or name substring).", valueName: "DEVICE"))
    var device: String?

    @Option(help: ArgumentHelp("Run only benchmarks whose name contains this text.", valueName: "TEXT"))
    var filter: String?

    @Flag(help: "Fewer repetitions and only the small shapes (a smoke run).")
    var quick = false

    @Option(help: ArgumentHelp("Write the results as JSON to this file.", valueName: "FILE"))
    var json: String?

    @Option(help: "Batch size of the model-level benchmarks.")
    var batch: Int = 64

    @Option(help: ArgumentHelp("Model of the model-level benchmarks.", valueName: "wrn-D-W"))
    var model: String = "wrn-10-2"

    @Option(help: ArgumentHelp("Timed runs of the JEM iteration benchmark (default 5, 2 with --quick).",
                               valueName: "N"))
    var iterations: Int?

    @Flag(help: "Data-parallel figures instead (alone or under mpirun -np N): one JEM iteration per rank with its gradient allreduce, and allreduce times up to 146 MB (DistributedBench.swift).")
    var distributed = false

    @Flag(help: "Run only the JEM-iteration workload on the CPU backend (no GEMM ceiling, no other benchmark) and report its peak resident memory and what it allocates (JEMMemory.swift).")
    var jemMemory = false

    @Flag(help: .hidden)   // the child process of "OpenCL first iteration" (ColdStart.swift)
    var firstIterationProbe = false

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1 (got \(batch))") }
        if let iterations, iterations < 1 {
            throw ValidationError("--iterations must be at least 1 (got \(iterations))")
        }
        guard WideResNetSpec.parse(model) != nil else {
            throw ValidationError("--model must be wrn-D-W with D = 6n+4, e.g. wrn-10-2 (got '\(model)')")
        }
    }

    func run() throws {
        if distributed {
            let choice = BackendChoice(rawValue: backend.split(separator: ",").first.map(String.init) ?? "cpu") ?? .cpu
            try DistributedBench.run(backendChoice: choice, device: device, model: model, batch: batch,
                                     runs: iterations ?? (quick ? 2 : 5), json: json)
            return
        }
        if firstIterationProbe {
            try ColdStart.probe(device: device, model: model, batch: batch)
            return
        }
        if jemMemory {
            try JEMMemory.run(model: model, batch: batch, iterations: iterations ?? (quick ? 2 : 5), json: json)
            return
        }
        var results: [BenchResult] = []
        let ceiling = HostBLAS.gemmCeilingGFLOPS(quick: quick)
        print("float32 GEMM ceiling (cblas_sgemm 2048^3, this run): \(String(format: "%.1f", ceiling)) GFLOP/s")
        if filter.map({ "data loading".localizedCaseInsensitiveContains($0) }) ?? true {
            // Host-side input pipeline (no backend): CIFAR-size images, pad 4 + crop + flip + noise.
            let d = DataThroughput.measure(imageCount: quick ? 5_000 : 50_000, iterations: quick ? 20 : 200)
            print(String(format: "data loading, 3x32x32 + augmentation, batch 64: %.0f images/s", d.imagesPerSecond))
            results.append(BenchResult(backend: "host", name: "data loading 3x32x32 augmented, images/s",
                                       seconds: [d.seconds / Double(d.iterations)], flop: nil, bytes: nil,
                                       ceiling: ceiling, extra: ["images_per_second": d.imagesPerSecond]))
        }
        for name in backend.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let choice = BackendChoice(rawValue: name), choice != .auto else {
                throw ValidationError("--backend takes cpu and/or opencl, comma-separated (got '\(name)')")
            }
            let engine: any Backend
            do {
                engine = try BackendSelection.make(choice, device: device).backend
            } catch {
                print("skipping \(name): \(error)")
                continue
            }
            print("\n== \(engine.deviceDescription)")
            let suite = BenchSuite(backend: engine, quick: quick, filter: filter, ceiling: ceiling,
                                   batch: batch, model: model, runs: iterations)
            results += try suite.run()
            if choice == .opencl, filter.map({ "OpenCL first iteration".localizedCaseInsensitiveContains($0) }) ?? true {
                let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
                results += try ColdStart.measure(executable: executable, device: device, model: model,
                                                 batch: quick ? min(batch, 8) : batch, ceiling: ceiling)
            }
        }
        if let json {
            let document: [String: Any] = [
                "gemm_ceiling_gflops": ceiling,
                "peak_rss_bytes": peakResidentBytes(),
                "results": results.map(\.dictionary),
            ]
            let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json), options: .atomic)
            print("\nwrote \(json)")
        }
    }
}

/// Peak resident set size of this process (VmHWM), in bytes.
func peakResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kib = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return kib * 1024
    }
    return 0
}
