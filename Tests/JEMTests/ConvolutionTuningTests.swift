import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// Convolution autotuning (OpenCLBackend+ConvolutionTuning.swift) on PoCL with tiny shapes and a
/// few cheap candidates (conv_gemm tiles and the local-memory kernel; no CLBlast, whose first
/// call compiles for seconds on a cold PoCL cache).
final class ConvolutionTuningTests: XCTestCase {
    static let shape = Conv2DShape(batch: 3, inChannels: 5, height: 9, width: 7, outChannels: 6, kernel: 3,
                                   stride: 1, padding: 1)
    static let local = LocalGemmTile(rows: 64, columns: 64, depth: 16, perItemRows: 4, perItemColumns: 4)
    static let faulty: LocalGemmTile = {
        var tile = LocalGemmTile(rows: 32, columns: 64, depth: 16, perItemRows: 4, perItemColumns: 4)
        tile.faultForTests = true
        return tile
    }()

    private func temporaryCache() throws -> OpenCLProgramCache {
        let path = NSTemporaryDirectory() + "jem-tuning-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return OpenCLProgramCache(directory: path)
    }

    /// A PoCL backend whose tuner tries `candidates` and times them with `times` (by candidate id).
    private func backend(cache: OpenCLProgramCache, mode: ConvolutionTuningMode, candidates: [ConvCandidate],
                         times: [String: Double]? = nil, log: ((String) -> Void)? = nil) throws -> OpenCLBackend {
        let device = try OpenCLBackend(selection: .first, programCache: cache)
        device.convolutionTuning = mode
        device.convolutionTuner.candidatesOverride = { _, _ in candidates }
        if let times {
            device.convolutionTuner.timer = { candidate, run in
                run()
                return times[candidate.id] ?? 1
            }
        }
        device.convolutionTuner.log = log ?? { print("  \($0)") }
        return device
    }

    /// Forward (with bias) and backward-data (accumulating) of `shape` on `device`.
    private func runOps(_ device: any Backend, _ s: Conv2DShape = shape) throws -> (forward: [Float], data: [Float]) {
        let x = try device.makeBuffer(count: s.inputCount), w = try device.makeBuffer(count: s.weightCount)
        let b = try device.makeBuffer(count: s.outChannels), y = try device.makeBuffer(count: s.outputCount)
        let dx = try device.makeBuffer(count: s.inputCount)
        try device.upload(randomArray(s.inputCount, seed: 3), to: x, offset: 0)
        try device.upload(randomArray(s.weightCount, seed: 4), to: w, offset: 0)
        try device.upload(randomArray(s.outChannels, seed: 5), to: b, offset: 0)
        try device.upload(randomArray(s.inputCount, seed: 6), to: dx, offset: 0)
        device.conv2dForward(s, input: x, weight: w, bias: b, output: y)
        device.conv2dBackwardData(s, gradOutput: y, weight: w, gradInput: dx, accumulate: true)
        return (try device.download(y, offset: 0, count: s.outputCount),
                try device.download(dx, offset: 0, count: s.inputCount))
    }

    func testWinnerIsTheFastestValidCandidate() {
        let timed: [(ConvCandidate, Double?)] = [
            (.builtIn, 3e-3), (.localTile(Self.local), 1e-3), (.registerTile(.gpu), nil), (.clblastGemm, 2e-3),
        ]
        XCTAssertEqual(ConvolutionTuner.winner(timed)?.0, .localTile(Self.local))
        XCTAssertNil(ConvolutionTuner.winner([(.builtIn, nil), (.clblastGemm, .nan)]))
    }

    /// With an injected timer: the fastest candidate wins when it is valid; the faulty kernel (the
    /// fastest of all by the timer) fails validation against the CPU backend and never wins.
    func testInjectedTimerFastestValidWinsAndWrongKernelNever() throws {
        let cache = try temporaryCache()
        let candidates: [ConvCandidate] = [.builtIn, .registerTile(.gpu), .localTile(Self.local),
                                           .localTile(Self.faulty)]
        let times = ["built-in": 4e-3, ConvCandidate.registerTile(.gpu).id: 3e-3,
                     ConvCandidate.localTile(Self.local).id: 2e-3, ConvCandidate.localTile(Self.faulty).id: 1e-4]
        let device = try backend(cache: cache, mode: .onFirstUse, candidates: candidates, times: times)
        _ = try runOps(device)
        let winners = device.convolutionTuningWinners
        let forwardKey = ConvolutionTuner.shapeKey(.forward, Self.shape)
        let dataKey = ConvolutionTuner.shapeKey(.backwardData, Self.shape)
        XCTAssertEqual(winners[forwardKey]?.candidate, ConvCandidate.localTile(Self.local).id)
        XCTAssertEqual(winners[dataKey]?.candidate, ConvCandidate.localTile(Self.local).id)
        let entry = try XCTUnwrap(device.convolutionTuner.file?.entries[forwardKey])
        XCTAssertEqual(entry.candidates[ConvCandidate.localTile(Self.faulty).id], .some(nil))
        XCTAssertTrue(entry.refused[ConvCandidate.localTile(Self.faulty).id]?.contains("differs from the CPU") ?? false,
                      "\(entry.refused)")
        XCTAssertGreaterThan(device.convolutionTuningSeconds, 0)

        // Now the built-in path is fastest: it wins and the op takes the untuned path.
        let other = try backend(cache: try temporaryCache(), mode: .onFirstUse, candidates: candidates,
                                times: times.merging(["built-in": 1e-5]) { $1 })
        _ = try runOps(other)
        XCTAssertEqual(other.convolutionTuningWinners[forwardKey]?.candidate, "built-in")
        XCTAssertNil(other.convolutionChoice(.forward, Self.shape))
    }

    /// The winners persist: a second backend reads them (no tuning), and a corrupt or stale file is
    /// ignored with a one-line notice.
    func testTuningFileRoundTripsAndBadFilesAreIgnored() throws {
        let cache = try temporaryCache()
        let candidates: [ConvCandidate] = [.builtIn, .localTile(Self.local)]
        let times = ["built-in": 2e-3, ConvCandidate.localTile(Self.local).id: 1e-3]
        let first = try backend(cache: cache, mode: .onFirstUse, candidates: candidates, times: times)
        _ = try runOps(first)
        let path = try XCTUnwrap(first.convolutionTuningPath)
        let data = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let (decoded, problem) = ConvTuningFile.decode(data)
        XCTAssertNil(problem)
        XCTAssertEqual(decoded, first.convolutionTuner.file)
        XCTAssertEqual(try decoded?.encoded(), try first.convolutionTuner.file?.encoded())

        var lines: [String] = []
        let second = try backend(cache: cache, mode: .onFirstUse, candidates: candidates,
                                 times: ["built-in": 1e-5], log: { lines.append($0) })
        XCTAssertEqual(second.convolutionChoice(.forward, Self.shape), .localTile(Self.local))
        XCTAssertEqual(second.convolutionTuningSeconds, 0, "stored winners are reused, not tuned again")
        XCTAssertEqual(lines, [])

        // Corrupt: one notice, and the stored winners are gone.
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: path))
        lines = []
        let third = try backend(cache: cache, mode: .stored, candidates: candidates, log: { lines.append($0) })
        XCTAssertNil(third.convolutionChoice(.forward, Self.shape))
        XCTAssertEqual(lines.count, 1, "\(lines)")
        XCTAssertTrue(lines.first?.contains("ignoring corrupt convolution tuning file") ?? false, "\(lines)")

        // Stale: another driver version in the file.
        var stale = try XCTUnwrap(decoded)
        stale.driver = "some other driver 0.0"
        try stale.encoded().write(to: URL(fileURLWithPath: path))
        lines = []
        let fourth = try backend(cache: cache, mode: .stored, candidates: candidates, log: { lines.append($0) })
        XCTAssertNil(fourth.convolutionChoice(.forward, Self.shape))
        XCTAssertEqual(lines.count, 1, "\(lines)")
        XCTAssertTrue(lines.first?.contains("ignoring stale convolution tuning file") ?? false, "\(lines)")
    }

    /// Tuned paths give the untuned results within the parity tolerance (the local kernel runs the
    /// same fma chain per output as conv_gemm), on a 1x1 shape with two row blocks and a strided one too.
    func testTunedResultsEqualUntunedWithinTolerance() throws {
        let shapes = [Self.shape,
                      Conv2DShape(batch: 2, inChannels: 13, height: 12, width: 12, outChannels: 70, kernel: 1,
                                  stride: 1, padding: 0),
                      Conv2DShape(batch: 3, inChannels: 6, height: 16, width: 16, outChannels: 5, kernel: 3,
                                  stride: 2, padding: 1)]
        let untuned = try OpenCLBackend(selection: .first, programCache: .disabled)
        XCTAssertEqual(untuned.convolutionTuning, .off, "CPU devices keep the built-in path by default")
        for candidate in [ConvCandidate.localTile(Self.local), .registerTile(.gpu)] {
            let tuned = try backend(cache: try temporaryCache(), mode: .onFirstUse,
                                    candidates: [.builtIn, candidate], times: ["built-in": 1, candidate.id: 1e-6])
            for s in shapes {
                let reference = try runOps(untuned, s), got = try runOps(tuned, s)
                XCTAssertEqual(tuned.convolutionChoice(.forward, s), candidate)
                XCTAssertLessThanOrEqual(maxRelativeError(got.forward, reference.forward), ParitySuite.tolerance)
                XCTAssertLessThanOrEqual(maxRelativeError(got.data, reference.data), ParitySuite.tolerance)
            }
        }
    }

    func testModeFromEnvironment() {
        XCTAssertEqual(ConvolutionTuningMode.defaultMode(isGPU: true, environment: [:]), .onFirstUse)
        XCTAssertEqual(ConvolutionTuningMode.defaultMode(isGPU: false, environment: [:]), .off)
        XCTAssertEqual(ConvolutionTuningMode.defaultMode(isGPU: true, environment: ["JEM_GPU_TUNE": "off"]), .off)
        XCTAssertEqual(ConvolutionTuningMode.defaultMode(isGPU: false, environment: ["JEM_GPU_TUNE": "1"]), .onFirstUse)
        XCTAssertEqual(ConvolutionTuningMode.defaultMode(isGPU: false, environment: ["JEM_GPU_TUNE": "stored"]),
                       .stored)
    }

    func testDeviceSelectionAcrossPlatforms() throws {
        XCTAssertEqual(OpenCLDeviceSelection.parse("auto"), .auto)
        XCTAssertEqual(OpenCLDeviceSelection.parse("GPU"), .firstGPU)
        XCTAssertEqual(OpenCLDeviceSelection.parse("rusticl:llvmpipe"),
                       .platformAndDevice(platform: "rusticl", device: "llvmpipe"))
        func info(_ p: Int, _ d: Int, _ platform: String, _ name: String, gpu: Bool) -> OpenCLDeviceInfo {
            OpenCLDeviceInfo(platformIndex: p, deviceIndex: d, platformName: platform, name: name, vendor: "v",
                             deviceVersion: "OpenCL 3.0", driverVersion: "1", isGPU: gpu,
                             typeDescription: gpu ? "GPU" : "CPU", globalMemoryBytes: 1 << 30,
                             maxAllocationBytes: 1 << 28, computeUnits: 2, maxWorkGroupSize: 256)
        }
        let cpusOnly = [info(0, 0, "Portable Computing Language", "pthread-cpu", gpu: false),
                        info(1, 0, "rusticl", "llvmpipe (LLVM 15)", gpu: false)]
        let mixed = cpusOnly + [info(2, 0, "NVIDIA CUDA", "NVIDIA H200", gpu: true),
                                info(2, 1, "NVIDIA CUDA", "NVIDIA H100", gpu: true)]
        XCTAssertEqual(try OpenCLDeviceSelection.auto.position(in: cpusOnly), 0)
        XCTAssertEqual(try OpenCLDeviceSelection.auto.position(in: mixed), 2, "a GPU beats any CPU device")
        XCTAssertEqual(try OpenCLDeviceSelection.parse("rusticl:0").position(in: mixed), 1)
        XCTAssertEqual(try OpenCLDeviceSelection.parse("cuda:H100").position(in: mixed), 3)
        XCTAssertEqual(try OpenCLDeviceSelection.parse("NVIDIA CUDA:1").position(in: mixed), 3)
        XCTAssertEqual(try OpenCLDeviceSelection.parse("2:1").position(in: mixed), 3)
        XCTAssertEqual(try OpenCLDeviceSelection.parse("3").position(in: mixed), 3)
        XCTAssertEqual(try OpenCLDeviceSelection.parse("llvmpipe").position(in: mixed), 1)
        XCTAssertThrowsError(try OpenCLDeviceSelection.parse("rusticl:7").position(in: mixed)) { error in
            XCTAssertTrue("\(error)".contains("no OpenCL device '7' on platform 'rusticl'"), "\(error)")
        }
    }
}
