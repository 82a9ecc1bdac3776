import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// `jem-gpu train --data DIR` on an MNIST-layout IDX folder, JEM and baseline, on the CPU
/// backend and on the OpenCL backend (PoCL in CI): every combination trains, and the two
/// backends log the same loss curve.
final class TrainOnIDXTests: XCTestCase {
    /// 64 training and 16 test images of 12x12 in 4 classes.
    func idxFolder() throws -> String {
        let dir = DataFixtures.makeTempDir("jem-idx-train")
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let trainLabels = (0..<64).map { UInt8($0 % 4) }, testLabels = (0..<16).map { UInt8($0 % 4) }
        _ = DataFixtures.write(DataFixtures.idx(dims: [64, 12, 12], data: DataFixtures.pixelsNCHW(n: 64, c: 1, h: 12, w: 12)),
                               dir + "/train-images-idx3-ubyte")
        _ = DataFixtures.write(DataFixtures.idxLabels(trainLabels), dir + "/train-labels-idx1-ubyte")
        _ = DataFixtures.write(DataFixtures.idx(dims: [16, 12, 12],
                                                data: DataFixtures.pixelsNCHW(n: 16, c: 1, h: 12, w: 12, offset: 500)),
                               dir + "/t10k-images-idx3-ubyte")
        _ = DataFixtures.write(DataFixtures.idxLabels(testLabels), dir + "/t10k-labels-idx1-ubyte")
        return dir
    }

    /// The logged per-step losses of a run.
    func losses(_ out: String) throws -> [Double] {
        try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["event"] == nil }.compactMap { $0["loss"] as? Double }
    }

    func testJEMAndBaselineTrainOnAnIDXFolderOnBothBackends() throws {
        let data = try idxFolder()
        for mode in ["jem", "baseline"] {
            var curves: [String: [Double]] = [:]
            for backend in ["cpu", "opencl"] {
                let out = DataFixtures.makeTempDir("jem-idx-run")
                addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
                let run = try runJemGPU(["train", "--data", data, "--mode", mode, "--backend", backend,
                                         "--batch-size", "8", "--sgld-steps", "2", "--buffer-size", "16",
                                         "--px-delay", "0", "--px-ramp", "0", "--max-iterations", "6",
                                         "--log-every", "2", "--final-sample-steps", "0", "--out", out])
                XCTAssertEqual(run.status, 0, "\(mode) on \(backend): \(run.stderr)")
                XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/checkpoints/last.safetensors"))
                let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/config.json")))
                    as? [String: Any]
                XCTAssertEqual(config?["backend"] as? String, backend)
                XCTAssertEqual(config?["mode"] as? String, mode)
                curves[backend] = try losses(out)
                XCTAssertEqual(curves[backend]?.count, 3, "\(mode) on \(backend): one loss per 2 iterations")
            }
            for (a, b) in zip(curves["cpu"] ?? [], curves["opencl"] ?? []) {
                XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(a)), "\(mode): CPU and OpenCL loss curves differ")
            }
        }
    }
}
