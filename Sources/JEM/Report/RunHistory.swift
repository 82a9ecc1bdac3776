import Foundation
import JEMBackend
import JEMSupport

/// What a run's metrics.jsonl says happened: the logged training steps, the per-epoch
/// evaluations, divergence events and the end record of every process that worked on the run.
///
/// A resumed run's log is the first process's lines up to its checkpoint (the trainer drops the
/// rest when it resumes) followed by the new process's lines. Should a log nevertheless go back
/// in iterations (lines appended by a restart that did not truncate), the later lines win: the
/// earlier points at or after that iteration are dropped, as the continued run re-did them.
/// Lines that are not JSON objects of the expected shape (a line cut short by a kill, a
/// hand-edited value) are skipped with a warning naming the line.
public struct RunHistory: Sendable {
    /// One logging step: averages over the iterations since the previous one.
    public struct Step: Sendable, Equatable {
        public var iteration: Int
        public var epoch: Int
        public var learningRate: Double?
        public var loss: Double
        public var crossEntropy: Double?
        public var trainAccuracy: Double?
        public var fData: Double?
        public var fSample: Double?
        public var gap: Double?
        public var energyL2: Double?
        public var sampleRMS: Double?
        /// Iterations per second since the process writing this line started.
        public var iterationsPerSecond: Double?
    }

    /// An `"event": "eval"` line: valid (and test, when the data has one) accuracy after an epoch.
    public struct Evaluation: Sendable, Equatable {
        public var iteration: Int
        public var epoch: Int?
        public var validAccuracy: Double?
        public var validNLL: Double?
        public var testAccuracy: Double?
        public var testNLL: Double?
    }

    /// An `"event": "divergence"` line: the guard rolled the run back.
    public struct Divergence: Sendable, Equatable {
        public var iteration: Int
        public var problem: String
        public var action: String
        /// Recoveries so far, this one included.
        public var recoveries: Int?
    }

    /// An `"event": "end"` line: one process stopped (finished, by signal, or diverged).
    public struct End: Sendable, Equatable {
        public var iteration: Int
        public var reason: String
        public var bestValidAccuracy: Double?
        public var recoveries: Int?
    }

    public private(set) var steps: [Step] = []
    public private(set) var evaluations: [Evaluation] = []
    public private(set) var divergences: [Divergence] = []
    public private(set) var ends: [End] = []
    /// One line per skipped line: "metrics.jsonl line N: why".
    public private(set) var warnings: [String] = []
    /// Lines read (non-empty ones).
    public private(set) var lineCount = 0
    /// Times the log went back in iterations (a restart whose old lines were still there).
    public private(set) var rewinds = 0
    /// Per process that logged steps: (first iteration it started from, its last step), in order.
    /// A process boundary is an end record or a rewind; see `trainingSeconds`.
    private var segments: [(start: Int, last: Step)] = []

    /// The last completed iteration any line mentions.
    public var lastIteration: Int {
        max(steps.last?.iteration ?? 0, evaluations.last?.iteration ?? 0, ends.last?.iteration ?? 0)
    }

    /// Reads `path`; a missing or unreadable file, or one in which no line can be read, is an
    /// error naming it. Warnings name the file by its last path component.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw IOError("\(path): missing (no training log)") }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw IOError("\(path): cannot read (\(error.localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw IOError("\(path): not UTF-8 text") }
        self.init(text: text, name: (path as NSString).lastPathComponent)
        if lineCount > 0 && warnings.count == lineCount {
            throw IOError("\(path): none of its \(lineCount) lines is a metrics record (\(warnings[0]))")
        }
    }

    /// Parses the text of a metrics.jsonl (never fails; bad lines become warnings).
    public init(text: String, name: String = "metrics.jsonl") {
        var segmentStart = 0
        var segmentLast: Step? = nil
        func closeSegment(nextStart: Int) {
            if let last = segmentLast { segments.append((segmentStart, last)) }
            segmentLast = nil
            segmentStart = nextStart
        }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty else { continue }
            lineCount += 1
            let record: Record
            do { record = try Self.decoder.decode(Record.self, from: Data(line.utf8)) } catch {
                warnings.append("\(name) line \(index + 1): not a metrics record (\(Self.reason(error))), skipped")
                continue
            }
            guard let iteration = record.iteration else {
                warnings.append("\(name) line \(index + 1): no \"iteration\", skipped")
                continue
            }
            switch record.event {
            case nil:
                guard let loss = record.loss, let epoch = record.epoch else {
                    warnings.append("\(name) line \(index + 1): a training step without \"loss\" or \"epoch\", skipped")
                    continue
                }
                if let previous = steps.last, iteration <= previous.iteration {
                    // A restart from an earlier checkpoint: its lines replace the old ones from here on.
                    rewinds += 1
                    steps.removeAll { $0.iteration >= iteration }
                    evaluations.removeAll { $0.iteration >= iteration }
                    closeSegment(nextStart: steps.last?.iteration ?? 0)
                }
                let step = Step(iteration: iteration, epoch: epoch, learningRate: record.lr, loss: loss,
                                crossEntropy: record.cross_entropy, trainAccuracy: record.train_accuracy,
                                fData: record.f_data, fSample: record.f_sample, gap: record.gap,
                                energyL2: record.energy_l2, sampleRMS: record.sample_rms,
                                iterationsPerSecond: record.iterations_per_second)
                steps.append(step)
                segmentLast = step
            case "eval":
                // Evaluated again at the same iteration (a restart): the newer line counts.
                evaluations.removeAll { $0.iteration >= iteration }
                evaluations.append(Evaluation(iteration: iteration, epoch: record.epoch,
                                              validAccuracy: record.valid_accuracy, validNLL: record.valid_nll,
                                              testAccuracy: record.test_accuracy, testNLL: record.test_nll))
            case "divergence":
                divergences.append(Divergence(iteration: iteration, problem: record.problem ?? "?",
                                              action: record.action ?? "?", recoveries: record.recoveries))
            case "end":
                ends.append(End(iteration: iteration, reason: record.reason ?? "?",
                                bestValidAccuracy: record.best_valid_accuracy, recoveries: record.recoveries))
                closeSegment(nextStart: iteration)
            case let other?:
                warnings.append("\(name) line \(index + 1): unknown event \"\(other)\", skipped")
            }
        }
        closeSegment(nextStart: 0)
    }

    /// Processes that logged training steps (1 for a run never stopped and resumed).
    public var processCount: Int { segments.count }

    /// Seconds spent in the training loops, from each process's last logged rate: a process that
    /// started at iteration s and logged rate r at iteration i had run (i - s) / r seconds then.
    /// Evaluation inside the loop is included; what follows the last logged step (the final
    /// checkpoint and sample grids) is not. A process killed without an end record and resumed
    /// is counted as if it were one with the one that continued it, so the figure is an
    /// estimate; nil when no step logged a rate.
    public var trainingSeconds: Double? {
        var total = 0.0, any = false
        for (start, last) in segments {
            guard let rate = last.iterationsPerSecond, rate > 0, rate.isFinite else { continue }
            total += Double(last.iteration - start) / rate
            any = true
        }
        return any ? total : nil
    }

    /// The best valid accuracy the run recorded.
    public var bestValidAccuracy: Double? {
        let logged = evaluations.compactMap(\.validAccuracy).max()
        let recorded = ends.compactMap(\.bestValidAccuracy).filter { $0 >= 0 }.max()
        switch (logged, recorded) {
        case let (a?, b?): return max(a, b)
        case let (a, b): return a ?? b
        }
    }

    /// The fields a metrics line may carry (snake_case, as the trainer writes them).
    private struct Record: Decodable {
        var event: String?
        var iteration: Int?
        var epoch: Int?
        var lr: Double?
        var loss: Double?
        var cross_entropy: Double?
        var train_accuracy: Double?
        var f_data: Double?
        var f_sample: Double?
        var gap: Double?
        var energy_l2: Double?
        var sample_rms: Double?
        var iterations_per_second: Double?
        var valid_accuracy: Double?
        var valid_nll: Double?
        var test_accuracy: Double?
        var test_nll: Double?
        var problem: String?
        var action: String?
        var reason: String?
        var recoveries: Int?
        var best_valid_accuracy: Double?
    }

    /// The log writes non-finite numbers as the strings Swift prints for them.
    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf",
                                                                        negativeInfinity: "-inf", nan: "nan")
        return decoder
    }

    private static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            let key = context.codingPath.last?.stringValue
            return key.map { "\"\($0)\" has the wrong type" } ?? "not a JSON object"
        case DecodingError.dataCorrupted:
            return "invalid JSON"
        default:
            return "unreadable"
        }
    }
}
