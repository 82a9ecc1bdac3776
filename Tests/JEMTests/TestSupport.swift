import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// Deterministic test data: element i of Philox stream (seed, stream) mapped to [low, high).
func randomArray(_ count: Int, seed: UInt64 = 7, stream: UInt64 = 0, low: Float = -1, high: Float = 1) -> [Float] {
    (0..<count).map { low + (high - low) * Philox.uniform(seed: seed, stream: stream, element: $0) }
}

/// max|a-b|, through the suite's one comparison: infinite when a NaN/inf appears where the
/// reference differs, or when the lengths differ.
func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    Float(Comparison(candidate: a, reference: b).maxAbsoluteError)
}

/// max|a-b| / max|b| (infinite on NaN/inf or length mismatches): the parity measure.
func maxRelativeError(_ a: [Float], _ b: [Float]) -> Double {
    Comparison(candidate: a, reference: b).maxRelativeError
}

func dot(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

/// The naive convolution loops (float64), the ground truth for the backends' conv paths.
func naiveConv(_ s: Conv2DShape, input x: [Float], weight w: [Float], bias: [Float]?) -> [Float] {
    NaiveConvolution.forward(s, input: x, weight: w, bias: bias)
}

func naiveConvBackwardData(_ s: Conv2DShape, gradOutput dy: [Float], weight w: [Float]) -> [Float] {
    NaiveConvolution.backwardData(s, gradOutput: dy, weight: w)
}

func naiveConvBackwardFilter(_ s: Conv2DShape, input x: [Float], gradOutput dy: [Float]) -> [Float] {
    NaiveConvolution.backwardFilter(s, input: x, gradOutput: dy)
}

/// The shapes every conv test covers: odd sizes, both kernel sizes, both strides, both paddings.
let oddConvShapes: [Conv2DShape] = [
    Conv2DShape(batch: 3, inChannels: 5, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 1, padding: 1),
    Conv2DShape(batch: 2, inChannels: 3, height: 9, width: 7, outChannels: 6, kernel: 3, stride: 2, padding: 1),
    Conv2DShape(batch: 3, inChannels: 5, height: 7, width: 9, outChannels: 4, kernel: 1, stride: 1, padding: 0),
    Conv2DShape(batch: 2, inChannels: 4, height: 9, width: 9, outChannels: 3, kernel: 1, stride: 2, padding: 0),
    Conv2DShape(batch: 1, inChannels: 2, height: 6, width: 5, outChannels: 3, kernel: 3, stride: 1, padding: 0),
]

/// Fails the calling test (and stops it) when the jem-gpu binary is not built next to the tests.
func requireJemGPUBinary() throws {
    guard FileManager.default.isExecutableFile(atPath: CLITests.binary) else {
        XCTFail("jem-gpu binary not found next to the tests at \(CLITests.binary) (run `swift build --build-tests`)")
        throw CancellationError()
    }
}

/// What one run of the jem-gpu executable printed and returned.
struct CommandRun {
    let status: Int32
    let stdout: String
    let stderr: String
    var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
}

/// Runs the jem-gpu binary built next to the tests (see `CLITests.binary`). Its output goes to
/// temporary files, not pipes: a chatty stderr can never fill a pipe and block the process.
func runJemGPU(_ arguments: [String], environment: [String: String] = [:], in folder: String? = nil) throws
    -> CommandRun
{
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CLITests.binary)
    process.arguments = arguments
    if let folder { process.currentDirectoryURL = URL(fileURLWithPath: folder) }
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let base = NSTemporaryDirectory() + "jem-run-output-\(UUID().uuidString)"
    let (out, err) = (base + ".stdout", base + ".stderr")
    defer { unlink(out); unlink(err) }
    FileManager.default.createFile(atPath: out, contents: nil)
    FileManager.default.createFile(atPath: err, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
    try process.run()
    process.waitUntilExit()
    return CommandRun(status: process.terminationStatus,
                      stdout: String(decoding: FileManager.default.contents(atPath: out) ?? Data(), as: UTF8.self),
                      stderr: String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self))
}

/// A fresh folder for tests that write many files: on a RAM file system (/dev/shm) where there is
/// one with room, since every checkpoint a run writes is fsynced and on a busy disk those fsyncs,
/// not the computation, would set the test's duration; otherwise in the temporary folder.
func scratchDirectory(_ prefix: String) throws -> String {
    var info = statvfs()
    let ram = "/dev/shm"
    let roomy = statvfs(ram, &info) == 0 && UInt64(info.f_bavail) * UInt64(info.f_frsize) > 1 << 30
    let base = roomy && access(ram, W_OK) == 0 ? ram + "/" : NSTemporaryDirectory()
    let path = base + prefix + "-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Two tiny runs trained once by the CLI and shared by the tests of one class: a JEM and a
/// baseline, 6 iterations of batch 16 on 300 built-in digits (60 test), the p(x) term on from the
/// start, sample grids at 3 and 6 and a 2-step conditional grid; each evaluates after its last
/// iteration, so both write best.safetensors.
final class TinyRunPair: @unchecked Sendable {
    let prefix: String
    /// Flags added to both runs, and to the JEM run only.
    let extra: [String], jemExtra: [String]
    private(set) var folder = ""
    private var runs: (jem: String, baseline: String)?

    init(_ prefix: String, extra: [String] = [], jemExtra: [String] = []) {
        self.prefix = prefix
        self.extra = extra
        self.jemExtra = jemExtra
    }

    /// For setUpWithError: the binary must exist; the scratch folder is made once.
    func prepare() throws {
        try requireJemGPUBinary()
        if folder.isEmpty { folder = try scratchDirectory(prefix) }
    }

    /// For the class's tearDown.
    func remove() {
        if !folder.isEmpty { try? FileManager.default.removeItem(atPath: folder) }
        folder = ""
        runs = nil
    }

    func trained() throws -> (jem: String, baseline: String) {
        if let runs { return runs }
        let common = ["train", "--backend", "cpu", "--data", "builtin", "--builtin-train", "300", "--builtin-test", "60",
                      "--model", "wrn-10-1", "--max-iterations", "6", "--batch-size", "16", "--sgld-steps", "2",
                      "--buffer-size", "64", "--px-delay", "0", "--px-ramp", "0", "--warmup-iters", "2",
                      "--log-every", "2", "--sample-every", "3", "--final-sample-steps", "2", "--seed", "3"] + extra
        let jem = folder + "/jem", baseline = folder + "/baseline"
        for (dir, flags) in [(jem, jemExtra), (baseline, ["--mode", "baseline"])] {
            let result = try runJemGPU(common + flags + ["--out", dir])
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        runs = (jem, baseline)
        return (jem, baseline)
    }
}
