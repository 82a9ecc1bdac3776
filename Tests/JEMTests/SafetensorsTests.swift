import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend
@testable import JEMSupport

/// The safetensors reader against hostile files: every truncation, random byte flips, absurd
/// header sizes, wrong shapes and offsets. Each must give a one-line IOError naming the file,
/// never a crash, hang or huge allocation.
final class SafetensorsTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "jem-st-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
    }

    func fixture() throws -> Data {
        var writer = SafetensorsWriter()
        writer.add("a.weight", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        writer.add("b", shape: [4], int32: [7, 8, 9, -1])
        writer.add("empty", shape: [0, 5], floats: [])
        writer.metadata = ["format": "test"]
        return try writer.serialized()
    }

    func write(_ data: Data, _ name: String = "x.safetensors") throws -> String {
        let path = folder + "/" + name
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func assertRejected(_ data: Data, _ context: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(data)
        do {
            let parsed = try SafetensorsFile(path: path)
            // A flip that still parses must still read consistently within bounds.
            for e in parsed.entries {
                switch e.dtype {
                case .f32: XCTAssertEqual(try parsed.floats(e.name).count, e.count, file: file, line: line)
                case .i32: XCTAssertEqual(try parsed.int32(e.name).count, e.count, file: file, line: line)
                default: break
                }
            }
        } catch let error as IOError {
            let text = error.description
            XCTAssertTrue(text.hasPrefix("x.safetensors") || text.hasPrefix(path), "\(context): \(text)", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), "\(context): multi-line error", file: file, line: line)
        }
    }

    func testRoundTrip() throws {
        let file = try SafetensorsFile(path: try write(try fixture()))
        XCTAssertEqual(try file.floats("a.weight"), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try file.int32("b"), [7, 8, 9, -1])
        XCTAssertEqual(file.entry("empty")?.shape, [0, 5])
        XCTAssertEqual(file.metadata["format"], "test")
        XCTAssertThrowsError(try file.floats("b"))        // wrong dtype
        XCTAssertThrowsError(try file.floats("missing"))  // no such tensor
    }

    func testEveryTruncationIsRejectedCleanly() throws {
        let data = try fixture()
        for length in 0..<data.count {
            let path = try write(data.prefix(length))
            XCTAssertThrowsError(try SafetensorsFile(path: path), "length \(length)") { error in
                XCTAssertTrue(error is IOError)
                XCTAssertTrue("\(error)".hasPrefix("x.safetensors"), "\(error)")
            }
        }
    }

    func testRandomByteFlips() throws {
        let data = try fixture()
        let random = HostRandom(seed: 2024, stream: 1)
        let count = ProcessInfo.processInfo.environment["JEM_TEST_LONG"] == nil ? 2000 : 200_000
        for i in 0..<count {
            var bytes = [UInt8](data)
            let flips = 1 + random.integer(3 * i, below: 4)
            for f in 0..<flips {
                let position = random.integer(3 * i + 1 + f * 7919, below: bytes.count)
                bytes[position] = UInt8(random.integer(3 * i + 2 + f * 104_729, below: 256))
            }
            try assertRejected(Data(bytes), "flip case \(i)")
        }
    }

    func testAbsurdHeadersAndShapes() throws {
        func file(header: String, data: Data = Data(count: 24), length: UInt64? = nil) -> Data {
            var d = Data()
            withUnsafeBytes(of: (length ?? UInt64(header.utf8.count)).littleEndian) { d.append(contentsOf: $0) }
            d.append(Data(header.utf8))
            d.append(data)
            return d
        }
        let cases: [(String, Data)] = [
            ("header length 2^63", file(header: "{}", length: 1 << 63)),
            ("header length beyond file", file(header: "{}", length: 1_000_000)),
            ("not JSON", file(header: "{{{{")),
            ("JSON array", file(header: "[1,2]")),
            ("negative dim", file(header: #"{"t":{"dtype":"F32","shape":[-1,6],"data_offsets":[0,24]}}"#)),
            ("overflowing shape", file(header: #"{"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,24]}}"#)),
            ("offsets past end", file(header: #"{"t":{"dtype":"F32","shape":[6],"data_offsets":[0,2400]}}"#)),
            ("offsets vs shape", file(header: #"{"t":{"dtype":"F32","shape":[5],"data_offsets":[0,24]}}"#)),
            ("reversed offsets", file(header: #"{"t":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}}"#)),
            ("unknown dtype", file(header: #"{"t":{"dtype":"F128","shape":[6],"data_offsets":[0,24]}}"#)),
            ("overlap", file(header: #"{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"u":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#)),
            ("metadata not strings", file(header: #"{"__metadata__":{"a":1}}"#)),
        ]
        for (name, data) in cases {
            let path = try write(data)
            XCTAssertThrowsError(try SafetensorsFile(path: path), name) { error in
                XCTAssertTrue("\(error)".hasPrefix("x.safetensors"), "\(name): \(error)")
            }
        }
        XCTAssertThrowsError(try SafetensorsFile(path: folder + "/missing.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("no such file"))
        }
    }

    /// A checkpoint of one architecture is refused by another, naming the first mismatch.
    func testCheckpointOfAnotherModelIsRefusedWithTheFirstMismatchingName() throws {
        let cpu = CPUBackend()
        var config = TrainingConfig()
        config.batchSize = 1
        config.bufferSize = 2
        let small = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 8, imageWidth: 8, classCount: 10)
        let trainer = try JEMTrainer(config: config, spec: small, backend: cpu)
        let path = folder + "/small.safetensors"
        try Checkpoint.save(trainer, state: RunState(), spec: small, to: path, includeTrainingState: false)
        let file = try SafetensorsFile(path: path)

        let wider = try WideResNet(spec: WideResNetSpec(depth: 10, widen: 2, inputChannels: 1, imageHeight: 8,
                                                        imageWidth: 8, classCount: 10), maxBatch: 1, backend: cpu)
        XCTAssertThrowsError(try Checkpoint.loadModel(file, into: wider)) { error in
            XCTAssertTrue("\(error)".contains("'f.layer1.0.conv1.weight'"), "\(error)")
        }
        let moreClasses = try WideResNet(spec: WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 8,
                                                              imageWidth: 8, classCount: 100), maxBatch: 1, backend: cpu)
        XCTAssertThrowsError(try Checkpoint.loadModel(file, into: moreClasses)) { error in
            XCTAssertTrue("\(error)".contains("'f.linear.weight'"), "\(error)")
        }
        let deeper = try WideResNet(spec: WideResNetSpec(depth: 16, widen: 1, inputChannels: 1, imageHeight: 8,
                                                         imageWidth: 8, classCount: 10), maxBatch: 1, backend: cpu)
        XCTAssertThrowsError(try Checkpoint.loadModel(file, into: deeper)) { error in
            XCTAssertTrue("\(error)".contains("lacks tensor 'f.layer1.1.conv1.weight'"), "\(error)")
        }
    }
}
