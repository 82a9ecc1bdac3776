import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// Checkpoints load in Python with `safetensors.numpy.load_file`, with the names and shapes of
/// the official model (`make test` installs the safetensors package with pip).
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
            for k, v in d.items():
                if not k.startswith("train."):
                    print(k, ",".join(str(s) for s in v.shape), v.dtype)
            print("buffer", ",".join(str(s) for s in d["train.replay_buffer"].shape))
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
            if parts.count == 3 {
                XCTAssertEqual(parts[2], "float32")
                loaded[String(parts[0])] = parts[1].split(separator: ",").compactMap { Int($0) }
            }
        }
        let official = Dictionary(uniqueKeysWithValues: WideResNetTests.officialWRN10x2.map { ($0.0, $0.1) })
        XCTAssertEqual(loaded, official)
        XCTAssertTrue(text.contains("buffer 4,3,32,32"), text)
    }
}
