import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend
@testable import JEMSupport

/// Checkpoints load in Python with `safetensors.numpy.load_file`, with the names and shapes of
/// the official model and the same values as our reader sees (`make test` installs the
/// safetensors package with pip and stops if it cannot).
final class CheckpointInteropTests: XCTestCase {
    func testCheckpointLoadsWithPythonSafetensors() throws {
        let cpu = CPUBackend()
        var config = TrainingConfig()
        config.batchSize = 2
        config.bufferSize = 4
        let spec = WideResNetSpec(depth: 10, widen: 2)
        let trainer = try JEMTrainer(config: config, spec: spec, backend: cpu)
        let path = NSTemporaryDirectory() + "jem-interop-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint.save(trainer, state: RunState(), spec: spec, to: path, includeTrainingState: true)

        let script = """
            import sys
            from safetensors.numpy import load_file
            d = load_file(sys.argv[1])
            import hashlib
            for k, v in d.items():
                if not k.startswith("train."):
                    print(k, ",".join(str(s) for s in v.shape), v.dtype)
            print("buffer", ",".join(str(s) for s in d["train.replay_buffer"].shape))
            for k, v in d.items():
                print("md5", k, hashlib.md5(v.astype("<f4").tobytes()).hexdigest())
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "python3 with safetensors failed: \(text)")
        var loaded: [String: [Int]] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 3 && parts[0] != "md5" {
                XCTAssertEqual(parts[2], "float32")
                loaded[String(parts[0])] = parts[1].split(separator: ",").compactMap { Int($0) }
            }
        }
        let official = Dictionary(uniqueKeysWithValues: WideResNetTests.officialWRN10x2.map { ($0.0, $0.1) })
        XCTAssertEqual(loaded, official)
        XCTAssertTrue(text.contains("buffer 4,3,32,32"), text)

        // Values: every tensor (model, Adam moments, replay buffer) bit for bit as our reader and the
        // trainer's device buffers hold it, by the MD5 of its little-endian float32 bytes.
        var pythonMD5: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("md5 ") {
            let parts = line.split(separator: " ")
            pythonMD5[String(parts[1])] = String(parts[2])
        }
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(Set(pythonMD5.keys), Set(file.entries.map(\.name)))
        func md5(_ values: [Float]) -> String {
            MD5.hex(values.withUnsafeBytes { Data($0) })
        }
        for entry in file.entries {
            XCTAssertEqual(pythonMD5[entry.name], md5(try file.floats(entry.name)), entry.name)
        }
        var nonZero = 0
        for p in trainer.net.parameters where p.trainable {
            let ours = try cpu.download(p.value, offset: 0, count: p.count)
            if ours.contains(where: { $0 != 0 }) { nonZero += 1 }
            XCTAssertEqual(pythonMD5[p.name], md5(ours), p.name)
        }
        XCTAssertGreaterThan(nonZero, 10, "initialised weights, so that equal checksums mean something")
    }
}
