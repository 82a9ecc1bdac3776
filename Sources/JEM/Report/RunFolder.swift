import Foundation
import JEMBackend
import JEMSupport

/// A training run folder as `jem-gpu train --out DIR` leaves it, read for a report: config.json,
/// metrics.jsonl, the checkpoints, the sample grids, and what later commands added (eval/ from
/// `jem-gpu eval --out DIR/eval`, attack/ from `jem-gpu attack --out DIR/attack`).
/// Every problem is an `IOError` of one line naming the file.
public struct RunFolder {
    public let path: String
    /// The settings the run trained with (config.json; the checkpoint's copy if that is unreadable).
    public let config: TrainingConfig
    /// What config.json adds to the settings (backend, device, dataset summary, split sizes).
    public let details: Details
    public let history: RunHistory
    /// checkpoints/best.safetensors when it exists (best validation accuracy), else last.safetensors.
    public let checkpoint: String
    /// The network the checkpoint holds (input shape and class count included).
    public let spec: WideResNetSpec
    /// samples/*.png that a report shows: x_init.png, the last x_q grid, conditional_final.png.
    public let sampleGrids: SampleGrids

    public struct Details: Decodable, Sendable {
        public var backend: String?
        public var device: String?
        public var modelSpec: String?
        public var dataset: String?
        public var trainImages: Int?
        public var labeledImages: Int?
        public var validImages: Int?
        public var testImages: Int?
        public var iterationsPerEpoch: Int?
        public var version: String?

        enum CodingKeys: String, CodingKey {
            case backend, device, modelSpec = "model_spec", dataset, trainImages = "train_images"
            case labeledImages = "labeled_images", validImages = "valid_images", testImages = "test_images"
            case iterationsPerEpoch = "iterations_per_epoch", version = "jem_gpu_version"
        }
    }

    public struct SampleGrids: Sendable, Equatable {
        /// Draws of the chains' starting distribution.
        public var initial: String?
        /// The newest SGLD grid of the replay-buffer chains (x_q_final.png, else the highest x_q_N.png).
        public var lastChains: String?
        /// One row per class, class-conditional SGLD at the end of training.
        public var conditional: String?
    }

    public var name: String { (URL(fileURLWithPath: path).standardized.path as NSString).lastPathComponent }
    public var metricsPath: String { path + "/metrics.jsonl" }
    /// Where `jem-gpu eval --out DIR/eval` writes, and where a report keeps its own evaluation.
    public var evaluationFolder: String { path + "/eval" }
    public var evaluationPath: String { evaluationFolder + "/metrics.json" }
    public var attackMarkdownPath: String { path + "/attack/attack.md" }

    public init(path: String) throws {
        let fm = FileManager.default
        var isFolder: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isFolder) else { throw IOError("\(path): no such run folder") }
        guard isFolder.boolValue else { throw IOError("\(path): not a folder (expected a jem-gpu train --out folder)") }
        self.path = path

        let best = path + "/checkpoints/best.safetensors", last = path + "/checkpoints/last.safetensors"
        guard let checkpoint = [best, last].first(where: { fm.fileExists(atPath: $0) }) else {
            throw IOError("\(path)/checkpoints: no best.safetensors or last.safetensors (has the run trained?)")
        }
        self.checkpoint = checkpoint
        let described: (spec: WideResNetSpec, state: RunState?, config: TrainingConfig?)
        do { described = try Checkpoint.describe(try SafetensorsFile(path: checkpoint)) } catch {
            throw IOError("\(checkpoint): \(error)")
        }
        spec = described.spec

        let configPath = path + "/config.json"
        guard fm.fileExists(atPath: configPath) else {
            throw IOError("\(configPath): missing (not a jem-gpu train folder?)")
        }
        let configData: Data
        do { configData = try Data(contentsOf: URL(fileURLWithPath: configPath)) } catch {
            throw IOError("\(configPath): cannot read (\(error.localizedDescription))")
        }
        do { details = try JSONDecoder().decode(Details.self, from: configData) } catch {
            throw IOError("\(configPath): not a jem-gpu config (\(error.localizedDescription))")
        }
        // config.json holds every TrainingConfig field next to the details; a config.json of
        // another version may not decode, and the checkpoint carries the same settings.
        if let decoded = try? JSONDecoder().decode(TrainingConfig.self, from: configData) {
            config = decoded
        } else if let saved = described.config {
            config = saved
        } else {
            throw IOError("\(configPath): cannot read the training settings, and \(checkpoint) records none")
        }

        history = try RunHistory(path: path + "/metrics.jsonl")
        sampleGrids = Self.findSampleGrids(path + "/samples")
    }

    static func findSampleGrids(_ folder: String) -> SampleGrids {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        func existing(_ name: String) -> String? { files.contains(name) ? folder + "/" + name : nil }
        // x_q_000200.png ...: zero-padded iteration numbers, so the largest name is the newest.
        let numbered = files.filter { $0.hasPrefix("x_q_") && $0.hasSuffix(".png") && $0 != "x_q_final.png" }
            .filter { Int($0.dropFirst(4).dropLast(4)) != nil }
            .max { Int($0.dropFirst(4).dropLast(4))! < Int($1.dropFirst(4).dropLast(4))! }
        return SampleGrids(initial: existing("x_init.png"),
                           lastChains: existing("x_q_final.png") ?? numbered.map { folder + "/" + $0 },
                           conditional: existing("conditional_final.png"))
    }

    /// The evaluation in eval/metrics.json, or nil when there is none or it is older than the
    /// checkpoint (the run trained again since: its numbers would describe another model).
    public func savedEvaluation() throws -> EvaluationResult? {
        let fm = FileManager.default
        guard fm.fileExists(atPath: evaluationPath) else { return nil }
        if let evaluated = modificationDate(evaluationPath), let trained = modificationDate(checkpoint),
           evaluated < trained {
            return nil
        }
        do {
            return try EvaluationResult.decoder.decode(EvaluationResult.self,
                                                       from: Data(contentsOf: URL(fileURLWithPath: evaluationPath)))
        } catch {
            throw IOError("\(evaluationPath): not a jem-gpu eval metrics.json (\(error.localizedDescription))")
        }
    }

    /// True when eval/metrics.json exists but predates the checkpoint.
    public var evaluationIsStale: Bool {
        guard let evaluated = modificationDate(evaluationPath), let trained = modificationDate(checkpoint) else {
            return false
        }
        return evaluated < trained
    }

    /// attack/attack.md (`jem-gpu attack --out DIR/attack`), or nil when it was not run.
    public func attackMarkdown() throws -> String? {
        guard FileManager.default.fileExists(atPath: attackMarkdownPath) else { return nil }
        do { return try String(contentsOfFile: attackMarkdownPath, encoding: .utf8) } catch {
            throw IOError("\(attackMarkdownPath): cannot read as UTF-8 text (\(error.localizedDescription))")
        }
    }

    /// Why `other` cannot be compared with this run (another dataset, image shape or class
    /// count), or nil when it can.
    public func comparisonProblem(with other: RunFolder) -> String? {
        if other.config.data != config.data {
            return "\(other.path): trained on \(other.config.data), but \(path) on \(config.data); a comparison "
                + "needs the same dataset"
        }
        let mine = [spec.inputChannels, spec.imageHeight, spec.imageWidth]
        let theirs = [other.spec.inputChannels, other.spec.imageHeight, other.spec.imageWidth]
        if mine != theirs {
            return "\(other.checkpoint): the model takes \(theirs.map(String.init).joined(separator: "×")) images, "
                + "\(checkpoint) takes \(mine.map(String.init).joined(separator: "×")); a comparison needs the same data"
        }
        if other.spec.classCount != spec.classCount {
            return "\(other.checkpoint): the model has \(other.spec.classCount) classes, \(checkpoint) "
                + "\(spec.classCount); a comparison needs the same data"
        }
        return nil
    }

    /// The images the built-in dataset was made with, from the split sizes config.json records
    /// (train_images + valid_images, test_images); nil for other data or when they are missing.
    public var builtinCounts: (train: Int, test: Int)? {
        guard config.data == "builtin" else { return nil }
        if let train = config.builtinTrainCount, let test = config.builtinTestCount { return (train, test) }
        guard let train = details.trainImages, let valid = details.validImages,
              let test = details.testImages else { return nil }
        return (train + valid, test)
    }

    private func modificationDate(_ file: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: file))?[.modificationDate] as? Date
    }
}
