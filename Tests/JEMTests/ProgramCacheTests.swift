import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The on-disk OpenCL program cache: a second backend loads every program from it and computes
/// the very same numbers; corrupt, foreign or truncated entries are rebuilt from source; a folder
/// that cannot be written costs nothing but the speed-up. Runs on PoCL (never skipped).
final class ProgramCacheTests: XCTestCase {
    private var scratch = ""

    override func setUpWithError() throws {
        scratch = NSTemporaryDirectory() + "jem-program-cache-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: scratch)
    }

    private var allPrograms: Set<String> { Set(KernelFile.allCases.map(\.rawValue)) }

    /// Builds every kernel file, then runs two small JEM iterations (every program takes part) and
    /// returns the loss terms and all weights, bit for bit.
    private func run(on backend: OpenCLBackend) throws -> [Float] {
        for file in KernelFile.allCases { _ = try backend.program(file) }
        var config = TrainingConfig()
        config.model = "wrn-10-1"
        config.batchSize = 4
        config.sgldSteps = 2
        config.bufferSize = 16
        config.learningRate = 1e-3
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 8, imageWidth: 8, classCount: 3)
        let trainer = try JEMTrainer(config: config, spec: spec, backend: backend)
        var out: [Float] = []
        for iteration in 0..<2 {
            let batch = TrainingBatch(px: randomArray(4 * spec.inputCount, stream: UInt64(30 + iteration)),
                                      labeled: randomArray(4 * spec.inputCount, stream: UInt64(40 + iteration)),
                                      labels: [0, 1, 2, 0])
            let stats = try trainer.iterate(batch, iteration: iteration, learningRate: 1e-3, seed: 5)
            out += [Float(stats.loss), Float(stats.fData), Float(stats.fSample), Float(stats.crossEntropy)]
        }
        for parameter in trainer.net.parameters { out += try backend.download(parameter.value) }
        try backend.synchronize()
        return out
    }

    private func entries(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".bin") }.sorted().map { directory + "/" + $0 }
    }

    func testSecondBackendLoadsEveryProgramFromTheCacheWithIdenticalResults() throws {
        let cache = OpenCLProgramCache(directory: scratch + "/opencl")
        let first = try OpenCLBackend(selection: .first, programCache: cache)
        let built = try run(on: first)
        XCTAssertEqual(Set(first.programOrigins.keys), allPrograms)
        XCTAssertTrue(first.programOrigins.values.allSatisfy { $0 == .source }, "\(first.programOrigins)")
        XCTAssertEqual(entries(in: scratch + "/opencl").count, allPrograms.count)

        let second = try OpenCLBackend(selection: .first, programCache: cache)
        let loaded = try run(on: second)
        XCTAssertTrue(second.programOrigins.values.allSatisfy { $0 == .cache }, "\(second.programOrigins)")
        XCTAssertEqual(Set(second.programOrigins.keys), allPrograms)
        XCTAssertEqual(built.count, loaded.count)
        XCTAssertEqual(built, loaded, "results from cached binaries differ from the source build")
    }

    func testCorruptTruncatedAndForeignEntriesAreRebuiltSilently() throws {
        let directory = scratch + "/opencl"
        let cache = OpenCLProgramCache(directory: directory)
        let reference = try run(on: try OpenCLBackend(selection: .first, programCache: cache))
        let files = entries(in: directory)
        XCTAssertEqual(files.count, allPrograms.count)

        // A different damage per entry: a flipped byte in the binary (checksum), a cut, a wrong
        // magic, an empty file, and a well-formed entry whose "binary" is garbage that only the
        // driver can refuse; the rest get a key of another device.
        for (index, path) in files.enumerated() {
            var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
            switch index {
            case 0: bytes[bytes.count / 2] ^= 0x5A
            case 1: bytes.removeLast(bytes.count / 3)
            case 2: bytes[0] = UInt8(ascii: "X")
            case 3: bytes = []
            case 4:
                let key = try XCTUnwrap(storedKey(bytes))
                bytes = OpenCLProgramCache.encode(Array(repeating: 0xAB, count: 4096), key: key)
            default:
                let key = try XCTUnwrap(storedKey(bytes))
                let binary = try XCTUnwrap(OpenCLProgramCache.decode(bytes, key: key))
                bytes = OpenCLProgramCache.encode(binary, key: key.replacingOccurrences(of: "device ", with: "device X"))
            }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        }

        let recovered = try OpenCLBackend(selection: .first, programCache: cache)
        XCTAssertEqual(try run(on: recovered), reference)
        XCTAssertTrue(recovered.programOrigins.values.allSatisfy { $0 == .source }, "\(recovered.programOrigins)")

        // The rebuilt entries were written back: a third backend loads them all.
        let third = try OpenCLBackend(selection: .first, programCache: cache)
        XCTAssertEqual(try run(on: third), reference)
        XCTAssertTrue(third.programOrigins.values.allSatisfy { $0 == .cache }, "\(third.programOrigins)")
    }

    func testUnwritableCacheFolderIsNotFatal() throws {
        // A folder below a regular file can never be created (root ignores permission bits).
        let blocker = scratch + "/not-a-folder"
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        let backend = try OpenCLBackend(selection: .first,
                                        programCache: OpenCLProgramCache(directory: blocker + "/opencl"))
        let results = try run(on: backend)
        XCTAssertTrue(results.allSatisfy(\.isFinite))
        XCTAssertTrue(backend.programOrigins.values.allSatisfy { $0 == .source })
        XCTAssertFalse(OpenCLProgramCache(directory: blocker + "/opencl").store(name: "x", key: "k", binary: [1]))
        let reference = try run(on: try OpenCLBackend(selection: .first, programCache: .disabled))
        XCTAssertEqual(results, reference)
    }

    func testEntryFormatRejectsEveryTruncationAndAnotherKey() {
        let binary = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let encoded = OpenCLProgramCache.encode(binary, key: "key one")
        XCTAssertEqual(OpenCLProgramCache.decode(encoded, key: "key one"), binary)
        XCTAssertNil(OpenCLProgramCache.decode(encoded, key: "key two"))
        for length in 0..<encoded.count {
            XCTAssertNil(OpenCLProgramCache.decode(Array(encoded.prefix(length)), key: "key one"), "length \(length)")
        }
        XCTAssertNil(OpenCLProgramCache.decode(encoded + [0], key: "key one"))
        XCTAssertNil(OpenCLProgramCache.decode(OpenCLProgramCache.encode([], key: "k"), key: "k"))
    }

    func testKeyCoversDriverOptionsAndSource() {
        let device = OpenCLDeviceInfo(platformIndex: 0, deviceIndex: 0, platformName: "P", name: "D", vendor: "V",
                                      deviceVersion: "OpenCL 3.0", driverVersion: "1.0", isGPU: false,
                                      typeDescription: "CPU", globalMemoryBytes: 1, maxAllocationBytes: 1,
                                      computeUnits: 1, maxWorkGroupSize: 1)
        let newer = OpenCLDeviceInfo(platformIndex: 0, deviceIndex: 0, platformName: "P", name: "D", vendor: "V",
                                     deviceVersion: "OpenCL 3.0", driverVersion: "1.1", isGPU: false,
                                     typeDescription: "CPU", globalMemoryBytes: 1, maxAllocationBytes: 1,
                                     computeUnits: 1, maxWorkGroupSize: 1)
        let base = OpenCLProgramCache.key(device: device, buildOptions: "-a", source: "kernel void f() {}")
        XCTAssertNotEqual(base, OpenCLProgramCache.key(device: newer, buildOptions: "-a", source: "kernel void f() {}"))
        XCTAssertNotEqual(base, OpenCLProgramCache.key(device: device, buildOptions: "-b", source: "kernel void f() {}"))
        XCTAssertNotEqual(base, OpenCLProgramCache.key(device: device, buildOptions: "-a", source: "kernel void g() {}"))
        let cache = OpenCLProgramCache(directory: "/c")
        XCTAssertNotEqual(cache.path(name: "conv", key: base),
                          cache.path(name: "conv", key: OpenCLProgramCache.key(device: newer, buildOptions: "-a",
                                                                               source: "kernel void f() {}")))
    }

    func testFolderComesFromTheEnvironment() {
        XCTAssertEqual(OpenCLProgramCache.fromEnvironment(["JEM_GPU_CACHE_DIR": "/x", "XDG_CACHE_HOME": "/y",
                                                           "HOME": "/h"]).directory, "/x/opencl")
        XCTAssertNil(OpenCLProgramCache.fromEnvironment(["JEM_GPU_CACHE_DIR": "", "HOME": "/h"]).directory)
        XCTAssertEqual(OpenCLProgramCache.fromEnvironment(["XDG_CACHE_HOME": "/y", "HOME": "/h"]).directory,
                       "/y/jem-gpu/opencl")
        // The XDG spec ignores relative paths.
        XCTAssertEqual(OpenCLProgramCache.fromEnvironment(["XDG_CACHE_HOME": "rel", "HOME": "/h"]).directory,
                       "/h/.cache/jem-gpu/opencl")
        XCTAssertNil(OpenCLProgramCache.fromEnvironment([:]).directory)
    }

    /// The key stored in an entry (between the magic + length and the binary length).
    private func storedKey(_ bytes: [UInt8]) -> String? {
        let start = OpenCLProgramCache.magic.count
        guard bytes.count >= start + 4 else { return nil }
        let length = bytes[start..<(start + 4)].reversed().reduce(0) { $0 << 8 | Int($1) }
        guard bytes.count >= start + 4 + length else { return nil }
        return String(decoding: bytes[(start + 4)..<(start + 4 + length)], as: UTF8.self)
    }
}
