import Foundation

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
        let decoder = JSONDecoder()
        let state = try m["run_state"].map { try decoder.decode(RunState.self, from: Data($0.utf8)) }
        let config = try m["config"].map { try decoder.decode(TrainingConfig.self, from: Data($0.utf8)) }
        return (spec, state, config)
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
