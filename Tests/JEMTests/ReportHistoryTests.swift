import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// metrics.jsonl as the report reads it: steps, evaluations, divergences and end records; a
/// stopped-and-resumed run; a restart that went back in iterations; corrupt lines skipped with
/// their line number; a real resumed run's log through the trainer.
final class ReportHistoryTests: XCTestCase {
    func step(_ iteration: Int, epoch: Int = 0, loss: String = "1.5", rate: Double = 10) -> String {
        """
        {"cross_entropy":1.25,"energy_l2":0.01,"epoch":\(epoch),"f_data":-2.5,"f_sample":-3,"gap":0.5,\
        "iteration":\(iteration),"iterations_per_second":\(rate),"loss":\(loss),"lr":0.001,"pxy":0,\
        "sample_rms":0.7,"sgld_steps":5,"train_accuracy":0.\(iteration)}
        """
    }

    func testStepsEventsResumeAndCorruptLines() {
        let lines = [
            step(2, rate: 4),
            step(4, rate: 5),
            #"{"event":"eval","iteration":4,"epoch":0,"valid_accuracy":0.5,"valid_nll":1.4,"test_accuracy":0.25,"test_nll":1.6,"test_noise":0}"#,
            #"{"event":"divergence","iteration":5,"problem":"non-finite loss (nan) or energies","action":"rolled back to iteration 4, reseeded, lr scale now 0.5","recoveries":1}"#,
            step(6, rate: 3),
            #"{"event":"end","iteration":6,"reason":"stopped by signal","best_valid_accuracy":0.5,"recoveries":1,"last_loss":1.5}"#,
            "",
            step(8, epoch: 1, loss: "\"nan\"", rate: 2),      // a non-finite loss, written as a string
            #"{"iteration":9,"loss":0.5,"epo"#,                 // cut short by a kill
            step(10, epoch: 1, loss: "\"abc\""),                 // a value of the wrong type
            #"{"event":"checkpoint","iteration":10}"#,         // an event the report does not know
            #"[1, 2, 3]"#,
            #"{"loss":1.0,"epoch":1}"#,                          // no iteration
            step(12, epoch: 1, rate: 2),
            #"{"event":"eval","iteration":12,"epoch":1,"valid_accuracy":0.75,"valid_nll":1.1,"test_accuracy":0.7,"test_nll":1.2,"test_noise":0}"#,
            #"{"event":"end","iteration":12,"reason":"finished","best_valid_accuracy":0.75,"recoveries":1,"last_loss":1.5}"#,
        ]
        let history = RunHistory(text: lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(history.steps.map(\.iteration), [2, 4, 6, 8, 12])
        XCTAssertEqual(history.steps[0].trainAccuracy, 0.2)
        XCTAssertEqual(history.steps[0].crossEntropy, 1.25)
        XCTAssertEqual(history.steps[0].fSample, -3)
        XCTAssertEqual(history.steps[0].learningRate, 0.001)
        XCTAssertTrue(history.steps[3].loss.isNaN)
        XCTAssertEqual(history.steps[3].epoch, 1)
        XCTAssertEqual(history.evaluations.map(\.iteration), [4, 12])
        XCTAssertEqual(history.evaluations[1].testAccuracy, 0.7)
        XCTAssertEqual(history.evaluations[0].validNLL, 1.4)
        XCTAssertEqual(history.divergences, [RunHistory.Divergence(
            iteration: 5, problem: "non-finite loss (nan) or energies",
            action: "rolled back to iteration 4, reseeded, lr scale now 0.5", recoveries: 1)])
        XCTAssertEqual(history.ends.map(\.reason), ["stopped by signal", "finished"])
        XCTAssertEqual(history.bestValidAccuracy, 0.75)
        XCTAssertEqual(history.lastIteration, 12)
        XCTAssertEqual(history.rewinds, 0)
        // Two processes: 0 -> 6 at 3 it/s, then 6 -> 12 at 2 it/s.
        XCTAssertEqual(history.processCount, 2)
        XCTAssertEqual(history.trainingSeconds ?? 0, 6.0 / 3 + 6.0 / 2, accuracy: 1e-12)
        // Every bad line is named by its 1-based number (the blank line 7 counts but is not read).
        XCTAssertEqual(history.lineCount, 15)
        XCTAssertEqual(history.warnings.count, 5, "\(history.warnings)")
        let numbers = history.warnings.map { $0.split(separator: ":")[0] }
        XCTAssertEqual(numbers, ["metrics.jsonl line 9", "metrics.jsonl line 10", "metrics.jsonl line 11",
                                 "metrics.jsonl line 12", "metrics.jsonl line 13"])
        XCTAssertTrue(history.warnings[0].contains("invalid JSON"), history.warnings[0])
        XCTAssertTrue(history.warnings[1].contains("\"loss\" has the wrong type"), history.warnings[1])
        XCTAssertTrue(history.warnings[2].contains("unknown event \"checkpoint\""), history.warnings[2])
        XCTAssertTrue(history.warnings[4].contains("no \"iteration\""), history.warnings[4])
    }

    /// A log that goes back in iterations (a restart from an earlier checkpoint whose old lines
    /// were not dropped): the newer lines replace the older ones from that iteration on.
    func testRestartFromAnEarlierIterationReplacesTheOldLines() {
        let lines = [
            step(2, loss: "1"), step(4, loss: "1"), step(6, loss: "1"),
            #"{"event":"eval","iteration":6,"epoch":0,"valid_accuracy":0.5}"#,
            step(8, loss: "1", rate: 4),
            // The process died; a new one restarted from the checkpoint at iteration 4.
            step(6, loss: "2", rate: 1), step(8, loss: "2", rate: 1),
            #"{"event":"eval","iteration":8,"epoch":0,"valid_accuracy":0.625}"#,
        ]
        let history = RunHistory(text: lines.joined(separator: "\n"))
        XCTAssertEqual(history.steps.map(\.iteration), [2, 4, 6, 8])
        XCTAssertEqual(history.steps.map(\.loss), [1, 1, 2, 2])
        XCTAssertEqual(history.evaluations.map(\.iteration), [8], "the eval at 6 belonged to the abandoned lines")
        XCTAssertEqual(history.rewinds, 1)
        XCTAssertEqual(history.processCount, 2)
        XCTAssertTrue(history.warnings.isEmpty)
        // 0 -> 8 at 4 it/s, then 4 -> 8 at 1 it/s.
        XCTAssertEqual(history.trainingSeconds ?? 0, 8.0 / 4 + 4.0 / 1, accuracy: 1e-12)
    }

    func testUnreadableFilesAreErrorsNamingThem() throws {
        let folder = NSTemporaryDirectory() + "jem-history-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let garbage = folder + "/garbage.jsonl"
        try Data("not json\n{also not\n".utf8).write(to: URL(fileURLWithPath: garbage))
        XCTAssertThrowsError(try RunHistory(path: garbage)) { error in
            XCTAssertTrue("\(error)".contains(garbage), "\(error)")
            XCTAssertTrue("\(error)".contains("none of its 2 lines"), "\(error)")
        }
        let binary = folder + "/binary.jsonl"
        try Data([0xFF, 0xFE, 0x00, 0x80]).write(to: URL(fileURLWithPath: binary))
        XCTAssertThrowsError(try RunHistory(path: binary)) { XCTAssertTrue("\($0)".contains(binary), "\($0)") }
        XCTAssertThrowsError(try RunHistory(path: folder + "/missing.jsonl")) {
            XCTAssertTrue("\($0)".contains("missing.jsonl"), "\($0)")
        }
        // An empty log (a run stopped before its first logging step) is no error.
        let empty = folder + "/empty.jsonl"
        try Data().write(to: URL(fileURLWithPath: empty))
        XCTAssertEqual(try RunHistory(path: empty).steps.count, 0)
    }

    /// The trainer's own log of a run stopped after 6 iterations, with a step and a half-written
    /// line of a killed process after the checkpoint, then resumed to 12: the resume truncates
    /// the log to the checkpoint and continues it, and the history reads it back line for line.
    func testRealResumedRunLog() throws {
        let folder = NSTemporaryDirectory() + "jem-history-run-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var config = Presets.standard
        config.batchSize = 16
        config.sgldSteps = 2
        config.bufferSize = 64
        config.warmupIterations = 2
        config.pxDelay = 0
        config.pxRamp = 0
        config.logEvery = 2
        config.sampleEvery = 0
        config.finalSampleSteps = 0
        config.maxIterations = 6
        let dataset = BuiltinDataset.make(trainCount: 300, testCount: 60, seed: 5)
        func train(_ config: TrainingConfig, resume: Bool) throws {
            let run = try TrainingRun(config: config, dataset: dataset, backend: CPUBackend(), outputDirectory: folder,
                                      resume: resume)
            run.report = { _ in }
            try run.run()
        }
        try train(config, resume: false)
        let log = folder + "/metrics.jsonl"
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: log))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data((step(8) + "\n" + #"{"iteration":10,"lo"#).utf8))
        try handle.close()
        XCTAssertEqual(try RunHistory(path: log).warnings.count, 1, "the half-written line before the resume")

        config.maxIterations = 12
        try train(config, resume: true)
        let history = try RunHistory(path: log)
        XCTAssertEqual(history.warnings, [])
        XCTAssertEqual(history.steps.map(\.iteration), [2, 4, 6, 8, 10, 12])
        XCTAssertEqual(history.evaluations.map(\.iteration), [6, 12])
        XCTAssertEqual(history.ends.map(\.iteration), [6, 12])
        XCTAssertEqual(history.processCount, 2)
        XCTAssertEqual(history.rewinds, 0)
        XCTAssertNotNil(history.trainingSeconds)

        // Each step equals its line as JSONSerialization reads it (to a few ulps: Foundation's
        // parser on Linux is not always the nearest double).
        let objects = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["event"] == nil }
        XCTAssertEqual(objects.count, 6)
        for (object, step) in zip(objects, history.steps) {
            XCTAssertEqual(object["iteration"] as? Int, step.iteration)
            for (key, value) in [("loss", step.loss), ("cross_entropy", step.crossEntropy ?? .nan),
                                 ("train_accuracy", step.trainAccuracy ?? .nan), ("f_data", step.fData ?? .nan),
                                 ("f_sample", step.fSample ?? .nan), ("lr", step.learningRate ?? .nan)] {
                let expected = try XCTUnwrap(object[key] as? Double, key)
                XCTAssertEqual(value, expected, accuracy: 1e-12 * max(1, abs(expected)), key)
            }
        }
        XCTAssertNotEqual(history.steps[5].fSample, 0, "the p(x) term ran, so f(x_q) was logged")
    }
}
