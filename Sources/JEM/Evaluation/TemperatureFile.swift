import Foundation
import JEMBackend
import JEMSupport

/// The temperature `jem-gpu calibrate` fitted for a checkpoint, stored beside it as
/// `NAME.temperature.json` (`checkpoints/best.safetensors` -> `checkpoints/best.temperature.json`):
/// T, the NLL and ECE before and after on the images it was fitted on (the run's validation
/// split), how many, and where they came from. `eval` and `report` read it to show
/// temperature-scaled NLL/ECE next to the raw ones; they never fit a temperature themselves.
public struct TemperatureFile: Codable, Sendable, Equatable {
    public var temperature: Double
    public var nllBefore: Double
    public var nllAfter: Double
    public var eceBefore: Double
    public var eceAfter: Double
    /// Images the temperature was fitted on.
    public var count: Int
    /// "valid" (the split the trainer held out) and a sentence saying how it was carved.
    public var split: String
    public var splitDetail: String
    public var checkpoint: String
    public var data: String
    public var testNoise: Float
    public var version: String = JEMVersion.string

    public init(fit: TemperatureScaling.Fit, eceBefore: Double, eceAfter: Double, count: Int, split: String,
                splitDetail: String, checkpoint: String, data: String, testNoise: Float) {
        temperature = fit.temperature
        nllBefore = fit.nllBefore
        nllAfter = fit.nllAfter
        self.eceBefore = eceBefore
        self.eceAfter = eceAfter
        self.count = count
        self.split = split
        self.splitDetail = splitDetail
        self.checkpoint = checkpoint
        self.data = data
        self.testNoise = testNoise
    }

    enum CodingKeys: String, CodingKey {
        case temperature, nllBefore = "nll_before", nllAfter = "nll_after", eceBefore = "ece_before"
        case eceAfter = "ece_after", count, split, splitDetail = "split_detail", checkpoint, data
        case testNoise = "test_noise", version
    }

    /// `CKPT` without its extension + `.temperature.json`, in the checkpoint's folder.
    public static func path(forCheckpoint checkpoint: String) -> String {
        let url = URL(fileURLWithPath: checkpoint)
        return url.deletingPathExtension().path + ".temperature.json"
    }

    /// Reads `path`; a file that is not a temperature file, or holds a temperature that is not a
    /// finite positive number, is one line naming it.
    public static func read(_ path: String) throws -> TemperatureFile {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw IOError("\(path): cannot read (\(error.localizedDescription))")
        }
        let file: TemperatureFile
        do { file = try JSONDecoder().decode(TemperatureFile.self, from: data) } catch {
            throw IOError("\(path): not a jem-gpu calibrate temperature file (rerun jem-gpu calibrate)")
        }
        guard file.temperature.isFinite, file.temperature > 0 else {
            throw IOError("\(path): temperature \(file.temperature) is not a finite number > 0 (rerun jem-gpu calibrate)")
        }
        return file
    }

    /// What a command finds beside a checkpoint.
    public enum Lookup {
        /// No temperature file: the scaled numbers are left out.
        case none(path: String)
        /// The file predates the checkpoint (the model was trained further since): left out.
        case stale(path: String)
        case found(path: String, file: TemperatureFile)
    }

    /// The temperature file of `checkpoint`, if there is one that is as new as the checkpoint.
    public static func lookup(forCheckpoint checkpoint: String) throws -> Lookup {
        let path = path(forCheckpoint: checkpoint)
        let fm = FileManager.default
        guard fm.fileExists(atPath: path) else { return .none(path: path) }
        func modified(_ p: String) -> Date? { (try? fm.attributesOfItem(atPath: p))?[.modificationDate] as? Date }
        if let fitted = modified(path), let trained = modified(checkpoint), fitted < trained { return .stale(path: path) }
        return .found(path: path, file: try read(path))
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: path)
    }
}

extension EvaluationResult {
    /// Adds the temperature-scaled NLL and ECE of the in-distribution logits (labelled sets only),
    /// recording T and the file it came from. The raw numbers stay as they are.
    public mutating func addTemperatureScaling(_ file: TemperatureFile, path: String, scores: ExampleScores) {
        guard let labels = scores.labels else { return }
        let scaled = TemperatureScaling.metrics(logits: scores.logits, labels: labels, classCount: scores.classCount,
                                                temperature: file.temperature)
        temperature = file.temperature
        temperatureFile = path
        nllScaled = scaled.nll
        eceScaled = scaled.ece
    }
}
