import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// Whole runs on real (built-in) digits, small enough for CI: exact resume, divergence
/// recovery, and the files a run writes.
final class TrainingRunTests: XCTestCase {
    static let dataset = BuiltinDataset.make(trainCount: 300, testCount: 60, seed: 5)

    func smallConfig() -> TrainingConfig {
        var c = Presets.standard
        c.batchSize = 16
        c.sgldSteps = 2
        c.bufferSize = 64
        c.epochs = 2
        c.warmupIterations = 3
        c.logEvery = 2
        c.sampleEvery = 4
        c.checkpointEvery = 3
        c.snapshotEvery = 2
        c.seed = 11
        c.finalSampleSteps = 2
        c.pxDelay = 0   // exercise the p(x) term from the first iteration
        c.pxRamp = 0
        return c
    }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "jem-run-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func tensors(_ path: String) throws -> [String: [Float]] {
        let file = try SafetensorsFile(path: path)
        var out: [String: [Float]] = [:]
        for e in file.entries where e.dtype == .f32 { out[e.name] = try file.floats(e.name) }
        return out
    }

    func quietRun(_ config: TrainingConfig, _ dir: String, resume: Bool = false) throws -> TrainingRun {
        let run = try TrainingRun(config: config, dataset: Self.dataset, backend: CPUBackend(), outputDirectory: dir,
                                  resume: resume)
        run.report = { _ in }
        return run
    }

    /// N iterations + stop + resume + M iterations == N+M uninterrupted, to the bit, for the
    /// weights, the Adam moments and the replay buffer.
    func testResumeIsBitExact() throws {
        // Both chain initialisations: U(-1,1) restarts are drawn on the device, informative
        // ones on the host; either must be redrawn identically after a resume.
        for bufferInit in BufferInit.allCases { try checkResumeIsBitExact(bufferInit) }
    }

    func checkResumeIsBitExact(_ bufferInit: BufferInit) throws {
        var config = smallConfig()
        config.maxIterations = 9
        config.bufferInit = bufferInit
        let straight = try temporaryDirectory()
        try quietRun(config, straight).run()

        let interrupted = try temporaryDirectory()
        var first = config
        first.maxIterations = 5
        try quietRun(first, interrupted).run()
        let resumed = try quietRun(config, interrupted, resume: true)
        XCTAssertEqual(resumed.state.iteration, 5)
        try resumed.run()

        let a = try tensors(straight + "/checkpoints/last.safetensors")
        let b = try tensors(interrupted + "/checkpoints/last.safetensors")
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        XCTAssertTrue(a.keys.contains("train.replay_buffer"))
        XCTAssertTrue(a.keys.contains("train.optimizer.exp_avg.f.conv1.weight"))
        for (name, values) in a {
            XCTAssertEqual(values, b[name], "tensor \(name) differs after resume (\(bufferInit) init)")
        }
        // The metrics log of the resumed run has exactly one line per logging step.
        let lines = try String(contentsOfFile: interrupted + "/metrics.jsonl", encoding: .utf8)
            .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let logged = lines.filter { $0["event"] == nil }.compactMap { $0["iteration"] as? Int }
        XCTAssertEqual(logged, [2, 4, 5, 6, 8, 9])  // 5: the first run's last step
    }

    func testRunWritesConfigMetricsSamplesAndCheckpoints() throws {
        var config = smallConfig()
        config.maxIterations = 18   // one epoch of (300 - 30) / 16 = 16 iterations, and 2 more
        let dir = try temporaryDirectory()
        let run = try quietRun(config, dir)
        XCTAssertEqual(run.data.iterationsPerEpoch, 16)
        try run.run()
        let fm = FileManager.default
        for file in ["config.json", "metrics.jsonl", "checkpoints/last.safetensors", "checkpoints/best.safetensors",
                     "samples/x_q_000004.png", "samples/x_q_final.png", "samples/conditional_final.png"] {
            XCTAssertTrue(fm.fileExists(atPath: dir + "/" + file), file)
        }
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json")))
            as? [String: Any]
        XCTAssertEqual(written?["backend"] as? String, "cpu")
        XCTAssertEqual(written?["model"] as? String, "wrn-10-1")
        let metrics = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        XCTAssertTrue(metrics.contains("\"valid_accuracy\""))
        XCTAssertTrue(metrics.contains("\"test_accuracy\""))
        XCTAssertTrue(metrics.contains("\"f_sample\""))
        // best.safetensors is model-only, with the official names.
        let best = try SafetensorsFile(path: dir + "/checkpoints/best.safetensors")
        XCTAssertFalse(best.entries.contains { $0.name.hasPrefix("train.") })
        XCTAssertNotNil(best.entry("class_output.weight"))
    }

    /// A huge learning rate diverges; the guard rolls back, cuts the lr and the run finishes
    /// with finite weights.
    func testForcedDivergenceByHugeLearningRateRecovers() throws {
        var config = smallConfig()
        config.learningRate = 5
        config.warmupIterations = 0
        config.maxIterations = 12
        config.guardLossLimit = 50
        config.guardLossLimit = 1e12   // so that the gap, the SGLD-specific symptom, trips first
        config.guardGapLimit = 50
        config.maxRecoveries = 20
        config.recoveryFactor = 0.01
        let dir = try temporaryDirectory()
        let run = try quietRun(config, dir)
        try run.run()
        XCTAssertGreaterThan(run.state.recoveries, 0)
        XCTAssertEqual(run.state.iteration, 12)
        let weights = try tensors(dir + "/checkpoints/last.safetensors")
        XCTAssertTrue(weights.values.allSatisfy { $0.allSatisfy(\.isFinite) })
        XCTAssertEqual(try divergences(dir).count, run.state.recoveries)
        try assertUsableCheckpoint(dir)
    }

    /// A checkpoint is usable when it is finite and a new run resumes from it (the same path as
    /// `jem-gpu train --resume`: settings checked, tensors loaded into a fresh trainer).
    func assertUsableCheckpoint(_ dir: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let weights = try tensors(dir + "/checkpoints/last.safetensors")
        XCTAssertTrue(weights.values.allSatisfy { $0.allSatisfy(\.isFinite) }, "non-finite checkpoint", file: file, line: line)
        let config = try Checkpoint.resumeConfig(directory: dir)
        let resumed = try quietRun(config, dir, resume: true)
        let net = try tensors(dir + "/checkpoints/last.safetensors")
        for p in resumed.trainer.net.parameters {
            XCTAssertEqual(try resumed.trainer.backend.download(p.value), net[p.name], p.name, file: file, line: line)
        }
    }

    /// The divergence events metrics.jsonl recorded.
    func divergences(_ dir: String) throws -> [[String: Any]] {
        try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["event"] as? String == "divergence" }
    }

    /// A huge SGLD step throws the chains far from the data: the gap |f(x_data) - f(x_q)| trips the
    /// guard, which rolls back and adds SGLD steps until its budget is spent, then stops with a
    /// message and a finite checkpoint that resumes.
    func testForcedDivergenceByHugeSGLDStepStopsCleanly() throws {
        var config = smallConfig()
        config.sgldLR = 1e7
        config.maxIterations = 8
        config.guardLossLimit = 1e12   // so that the gap, the SGLD-specific symptom, trips first
        config.guardGapLimit = 50
        config.maxRecoveries = 2
        config.recoveryAction = .moreSGLDSteps
        let dir = try temporaryDirectory()
        let run = try quietRun(config, dir)
        var messages: [String] = []
        run.report = { messages.append($0) }
        XCTAssertThrowsError(try run.run()) { error in
            XCTAssertTrue("\(error)".contains("training diverged 2 times"), "\(error)")
            XCTAssertTrue("\(error)".contains(dir + "/checkpoints/last.safetensors"), "\(error)")
        }
        XCTAssertTrue(messages.last?.hasPrefix("diverged 2 times (limit --max-recoveries 2)") == true, "\(messages)")
        let events = try divergences(dir)
        XCTAssertEqual(events.count, 3, "two recoveries and the one that stopped the run")
        XCTAssertTrue((events.first?["problem"] as? String)?.contains("f(x_data) - f(x_q)") == true, "\(events)")
        XCTAssertTrue((events.first?["action"] as? String)?.contains("SGLD steps now 12") == true, "\(events)")
        try assertUsableCheckpoint(dir)
    }

    /// NaN in one batch (a transient fault): the guard rolls back, reseeds, and the run finishes.
    func testInjectedNaNIsRecovered() throws {
        var config = smallConfig()
        config.maxIterations = 10
        config.maxRecoveries = 3
        let dir = try temporaryDirectory()
        let run = try quietRun(config, dir)
        var messages: [String] = []
        run.report = { messages.append($0) }
        run.injectNaNAtIteration = 6
        try run.run()
        XCTAssertEqual(run.state.iteration, 10)
        XCTAssertEqual(run.state.recoveries, 1)
        XCTAssertEqual(messages.last, "finished at iteration 10 after 1 divergence recoveries; checkpoint "
                       + dir + "/checkpoints/last.safetensors")
        let events = try divergences(dir)
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(events.first?["iteration"] as? Int, 6)
        XCTAssertTrue((events.first?["problem"] as? String)?.hasPrefix("non-finite loss") == true, "\(events)")
        try assertUsableCheckpoint(dir)
    }

    /// NaN injected into a batch: the guard catches it; with no recoveries allowed the run stops
    /// with a clear error and the last good checkpoint, whose weights are finite.
    func testInjectedNaNStopsCleanlyWithUsableCheckpoint() throws {
        var config = smallConfig()
        config.maxIterations = 10
        config.maxRecoveries = 0
        let dir = try temporaryDirectory()
        let run = try quietRun(config, dir)
        run.injectNaNAtIteration = 6
        XCTAssertThrowsError(try run.run()) { error in
            XCTAssertTrue("\(error)".contains("diverged"), "\(error)")
        }
        // Back to the last confirmed snapshot: the snapshot of iteration 6 held weights no
        // iteration had checked yet (the NaN iteration was to check them).
        XCTAssertEqual(run.state.iteration, 4)
        try assertUsableCheckpoint(dir)
    }
}
