import Foundation
import JEMBackend
import JEMSupport

/// Checkpoints are safetensors files. The model tensors carry the official JEM `CCF`
/// state_dict names and layouts (`f.conv1.weight`, ..., `class_output.bias`), so they load into
/// the official PyTorch code; the training state (optimizer moments, replay buffer) sits in the
/// same file under `train.*`, and the counters and config in the metadata. Written atomically.
///
/// To load one into the official model: `sd = {k: torch.from_numpy(v) for k, v in
/// safetensors.numpy.load_file(path).items() if not k.startswith("train.")}`.
public enum Checkpoint {
    public static let formatVersion = "1"

    public static func save(_ trainer: JEMTrainer, state: RunState, spec: WideResNetSpec, to path: String,
                            includeTrainingState: Bool) throws {
        let backend = trainer.backend
        var writer = SafetensorsWriter()
        for p in trainer.net.parameters {
            writer.add(p.name, shape: p.shape, floats: try backend.download(p.value))
        }
        if includeTrainingState {
            for t in trainer.optimizer.stateTensors {
                writer.add(t.name, shape: t.shape, floats: try backend.download(t.buffer))
            }
            if let buffer = trainer.buffer {
                writer.add("train.replay_buffer",
                           shape: [buffer.size, spec.inputChannels, spec.imageHeight, spec.imageWidth],
                           floats: try backend.download(buffer.storage))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        writer.metadata = [
            "format": "jem-gpu",
            "format_version": formatVersion,
            "model": spec.name,
            "activation": trainer.config.activation,
            "input_shape": "\(spec.inputChannels),\(spec.imageHeight),\(spec.imageWidth)",
            "classes": "\(spec.classCount)",
            "training_state": includeTrainingState ? "yes" : "no",
            "run_state": String(decoding: try encoder.encode(state), as: UTF8.self),
            "config": String(decoding: try encoder.encode(trainer.config), as: UTF8.self),
        ]
        try writer.write(to: path)
    }

    /// The model spec and run state recorded in a checkpoint.
    public static func describe(_ file: SafetensorsFile) throws -> (spec: WideResNetSpec, state: RunState?,
                                                                    config: TrainingConfig?) {
        let name = (file.path as NSString).lastPathComponent
        let m = file.metadata
        guard m["format"] == "jem-gpu", let model = m["model"], let (depth, widen) = WideResNetSpec.parse(model),
              let shape = m["input_shape"]?.split(separator: ",").compactMap({ Int($0) }), shape.count == 3,
              let classes = m["classes"].flatMap({ Int($0) }) else {
            throw IOError("\(name): not a jem-gpu checkpoint (metadata lacks format/model/input_shape/classes)")
        }
        let activation: Activation = m["activation"] == "swish" ? .swish : .leakyReLU(slope: 0.2)
        let spec = WideResNetSpec(depth: depth, widen: widen, inputChannels: shape[0], imageHeight: shape[1],
                                  imageWidth: shape[2], classCount: classes, activation: activation)
        guard (1...4096).contains(shape[0]), (1...65536).contains(shape[1]), (1...65536).contains(shape[2]),
              (1...LoadOptions.maxClassCount).contains(classes) else {
            throw IOError("\(name): checkpoint metadata has input shape \(shape) and \(classes) classes, out of range")
        }
        func decode<T: Decodable>(_ type: T.Type, _ key: String) throws -> T? {
            guard let text = m[key] else { return nil }
            do { return try JSONDecoder().decode(type, from: Data(text.utf8)) } catch {
                throw IOError("\(name): checkpoint metadata '\(key)' is not a valid \(type) (\(Self.summary(error)))")
            }
        }
        return (spec, try decode(RunState.self, "run_state"), try decode(TrainingConfig.self, "config"))
    }

    /// One line for a decoding error (DecodingError's own description spans lines and types).
    static func summary(_ error: Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        let text: String
        switch error as? DecodingError {
        case .keyNotFound(let key, _): text = "missing '\(key.stringValue)'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): text = "wrong value at '\(path(c))'"
        case .dataCorrupted(let c): text = c.codingPath.isEmpty ? "not JSON" : "bad value at '\(path(c))'"
        default: text = "\(error)"
        }
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// The settings of the run saved in `directory` (its checkpoints/last.safetensors), checked like
    /// flags: a corrupt or hand-edited checkpoint is refused with one line instead of trusted.
    public static func resumeConfig(directory: String) throws -> TrainingConfig {
        let path = directory + "/checkpoints/last.safetensors"
        guard FileManager.default.fileExists(atPath: path) else {
            throw IOError("--resume \(directory): no checkpoints/last.safetensors to resume from")
        }
        let file = try SafetensorsFile(path: path)
        guard let config = try describe(file).config else {
            throw IOError("\(path): checkpoint has no training config to resume")
        }
        do { try config.validate() } catch let error as ConfigError {
            throw IOError("\(path): the saved settings are invalid (\(error)); the checkpoint is corrupt")
        }
        return config
    }

    /// Opens the checkpoint a run of `config` on `spec` resumes from, checking before anything is
    /// allocated that it describes the same network, that its counters are sane, and that its
    /// tensors hold exactly as many floats as the run will allocate for them.
    public static func openForResume(_ path: String, config: TrainingConfig, spec: WideResNetSpec) throws
        -> (file: SafetensorsFile, state: RunState)
    {
        let file = try SafetensorsFile(path: path)
        let name = (path as NSString).lastPathComponent
        let (savedSpec, savedState, _) = try describe(file)
        guard savedSpec == spec, let savedState else {
            throw IOError("\(path): checkpoint is \(savedSpec)\(savedState == nil ? " without training state" : ""), "
                          + "the run asks for \(spec)")
        }
        try savedState.validate(against: config, file: name)
        let modelFloats = file.entries.filter { !$0.name.hasPrefix("train.") }.reduce(0) { $0 + $1.count }
        guard modelFloats == spec.parameterCount else {
            throw IOError("\(name): checkpoint holds \(modelFloats) model values, \(spec.name) has \(spec.parameterCount)")
        }
        if config.usesSampling {
            let expected = config.bufferSize * spec.inputCount
            guard let entry = file.entry("train.replay_buffer"), entry.count == expected else {
                throw IOError("\(name): checkpoint lacks a replay buffer of \(config.bufferSize) images (--buffer-size)")
            }
        }
        return (file, savedState)
    }

    /// Loads the model tensors into `net`, refusing the file at the first tensor whose name or
    /// shape differs from the model's.
    public static func loadModel(_ file: SafetensorsFile, into net: WideResNet) throws {
        let name = (file.path as NSString).lastPathComponent
        for p in net.parameters {
            guard let entry = file.entry(p.name) else {
                throw IOError("\(name): checkpoint lacks tensor '\(p.name)' of the requested \(net.spec.name)")
            }
            guard entry.shape == p.shape else {
                throw IOError("\(name): tensor '\(p.name)' has shape \(entry.shape), the requested \(net.spec.name) "
                              + "expects \(p.shape)")
            }
            try net.backend.upload(try file.floats(p.name), to: p.value, offset: 0)
        }
    }

    /// Loads the model and the training state (optimizer moments, replay buffer).
    public static func loadTrainingState(_ file: SafetensorsFile, into trainer: JEMTrainer) throws {
        let name = (file.path as NSString).lastPathComponent
        try loadModel(file, into: trainer.net)
        for t in trainer.optimizer.stateTensors {
            guard let entry = file.entry(t.name), entry.count == t.buffer.count else {
                throw IOError("\(name): checkpoint lacks optimizer state '\(t.name)' (was it saved with another "
                              + "optimizer, or without training state?)")
            }
            try trainer.backend.upload(try file.floats(t.name), to: t.buffer, offset: 0)
        }
        if let buffer = trainer.buffer {
            guard let entry = file.entry("train.replay_buffer"), entry.count == buffer.storage.count else {
                throw IOError("\(name): checkpoint lacks a replay buffer of \(buffer.size) images")
            }
            try trainer.backend.upload(try file.floats("train.replay_buffer"), to: buffer.storage, offset: 0)
        }
    }
}
