import Foundation
import JEMBackend
import JEMSupport

/// Set by SIGINT/SIGTERM; the training loop checks it once per iteration.
nonisolated(unsafe) private var stopSignal: sig_atomic_t = 0

/// A whole training run: data, Algorithm 1 iterations, the divergence guard, evaluation,
/// sample grids, metrics.jsonl and atomic checkpoints that resume exactly.
///
/// Files under `outputDirectory`: config.json, metrics.jsonl, samples/*.png,
/// checkpoints/last.safetensors (model + training state) and checkpoints/best.safetensors
/// (model only, best validation accuracy).
public final class TrainingRun {
    public let config: TrainingConfig
    public let spec: WideResNetSpec
    public let outputDirectory: String
    public let trainer: JEMTrainer
    public let data: TrainingData
    public let valid: ImageSet
    public let test: ImageSet?
    public private(set) var state = RunState()
    let guardian: DivergenceGuard
    /// nil on the ranks of a data-parallel job other than 0 (rank 0 writes every file).
    let metrics: MetricsLog?
    /// The processes of a data-parallel job (`SingleProcess` in a plain run).
    public let communicator: any Communicator
    var writes: Bool { communicator.isWriter }
    /// Seconds this rank spent in `iterate` over the current logging window.
    var windowSeconds = 0.0
    var loggedStatistics = CommunicatorStatistics()
    let describe: [String: String]
    /// Messages for the user (one line each); stderr by default.
    public var report: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    /// Test hook: corrupts the p(x) and labelled batches of this iteration with NaN, once (a forced
    /// divergence; the replay after a rollback gets the clean batch, like a transient fault).
    public var injectNaNAtIteration: Int? = nil

    public var checkpointPath: String { outputDirectory + "/checkpoints/last.safetensors" }
    public var bestPath: String { outputDirectory + "/checkpoints/best.safetensors" }
    public var totalIterations: Int {
        let all = config.epochs * data.iterationsPerEpoch
        return config.maxIterations > 0 ? min(config.maxIterations, all) : all
    }

    /// Prepares a run. With `resume`, continues from `outputDirectory`'s last checkpoint.
    public init(config: TrainingConfig, dataset: Dataset, backend: any Backend, outputDirectory: String,
                resume: Bool, describe: [String: String] = [:],
                communicator: any Communicator = SingleProcess()) throws {
        self.communicator = communicator
        // The same checks as the CLI's: a library caller (or a corrupt checkpoint's config) gets a
        // one-line error here rather than a division by zero or a huge allocation later.
        do { try config.validate(for: dataset) } catch let error as ConfigError where resume {
            throw IOError("\(outputDirectory)/checkpoints/last.safetensors: the saved settings do not fit the data (\(error))")
        }
        guard let spec = config.spec(for: dataset) else { throw ConfigError("--model/--activation: invalid") }
        let dataset = dataset.limitingTrain(to: config.trainLimit)
        self.spec = spec
        self.config = config
        self.outputDirectory = outputDirectory
        self.describe = describe
        let split = DataSplit(dataset.train, validCount: config.validCount, labelsPerClass: config.labelsPerClass,
                              classCount: dataset.classCount, seed: config.seed)
        valid = split.valid
        test = dataset.test
        data = TrainingData(images: split.train, labeledIndices: split.labeledIndices, batchSize: config.batchSize,
                            seed: config.seed, augmentation: config.augmentation)

        let fm = FileManager.default
        let checkpointPath = outputDirectory + "/checkpoints/last.safetensors"
        // Resuming: the checkpoint is checked against the run before anything is allocated for it.
        var resumeFrom: (file: SafetensorsFile, state: RunState)? = nil
        if resume {
            guard fm.fileExists(atPath: checkpointPath) else {
                throw IOError("--resume \(outputDirectory): no checkpoints/last.safetensors to resume from")
            }
            resumeFrom = try Checkpoint.openForResume(checkpointPath, config: config, spec: spec)
            try Self.checkWorldSize(resumeFrom!.state, communicator: communicator, directory: outputDirectory)
        }
        var initial: InformativeInit? = nil
        if config.bufferInit != .uniform && config.usesSampling {
            initial = try InformativeInit.fit(config: config, dataset: dataset)
        }
        trainer = try JEMTrainer(config: config, spec: spec, backend: backend, initial: initial,
                                 communicator: communicator)
        guardian = try DivergenceGuard(trainer: trainer, lossLimit: config.guardLossLimit, gapLimit: config.guardGapLimit)
        state.sgldSteps = config.sgldSteps
        state.worldSize = communicator.isDistributed ? communicator.size : nil

        for folder in [outputDirectory, outputDirectory + "/checkpoints", outputDirectory + "/samples"] where communicator.isWriter {
            try AtomicFile.createDirectories(folder)
            // Temporary files of a killed run (never under a final name) are removed.
            AtomicFile.removeStaleTemporaries(in: folder)
        }
        if let (file, savedState) = resumeFrom {
            try Checkpoint.loadTrainingState(file, into: trainer)
            state = savedState
            trainer.optimizer.stepCount = state.optimizerSteps
            trainer.sampler?.steps = state.sgldSteps
            metrics = communicator.isWriter ? try MetricsLog(path: outputDirectory + "/metrics.jsonl", keepThrough: state.iteration) : nil
        } else {
            metrics = communicator.isWriter ? try MetricsLog(path: outputDirectory + "/metrics.jsonl") : nil
        }
        try writeConfig(backend: backend, dataset: dataset)
        if config.usesSampling, !resume { try writeInitialSamples(trainer.buffer?.start ?? .uniform) }
    }

    /// samples/x_init.png: draws of the chains' starting distribution (the informative Gaussians,
    /// one column per class, U(-1, 1) noise, or a mix), so the later grids can be compared with
    /// where SGLD began.
    private func writeInitialSamples(_ start: ChainStart) throws {
        guard writes else { return }
        let columns = min(start.gaussians?.classCount ?? spec.classCount, 10)
        let count = columns * max(1, 64 / columns)
        let stream = RandomStream.informativeInit.id(1 << 55 | 1)
        let images = start.draw(classes: (0..<count).map { $0 % columns }, size: spec.inputCount, seed: config.seed,
                                streams: .init(uniform: stream, gaussian: stream,
                                               coin: RandomStream.informativeInit.id(1 << 55 | 2)))
        try ImageGrid.write(images: images, count: count, channels: spec.inputChannels, height: spec.imageHeight,
                            width: spec.imageWidth, columns: columns, to: outputDirectory + "/samples/x_init.png")
    }

    private func writeConfig(backend: any Backend, dataset: Dataset) throws {
        guard writes else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var document = try JSONSerialization.jsonObject(with: encoder.encode(config)) as? [String: Any] ?? [:]
        document["backend"] = backend.kind.rawValue
        document["device"] = backend.deviceDescription
        document["model_spec"] = spec.description
        document["dataset"] = dataset.summary
        document["train_images"] = data.images.count
        document["labeled_images"] = data.labeledIndices.count
        document["valid_images"] = valid.count
        document["test_images"] = test?.count ?? 0
        document["iterations_per_epoch"] = data.iterationsPerEpoch
        document["jem_gpu_version"] = JEMVersion.string
        if communicator.isDistributed { document["world_size"] = communicator.size }
        for (k, v) in describe { document[k] = v }
        let json = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(json, to: outputDirectory + "/config.json")
    }

    /// Runs until the last iteration, a stop signal, or too many divergences. Returns the summary.
    @discardableResult
    public func run() throws -> [String: Any] {
        stopSignal = 0
        let previousInt = signal(SIGINT) { _ in stopSignal = 1 }
        let previousTerm = signal(SIGTERM) { _ in stopSignal = 1 }
        // Under mpirun also SIGUSR1, which mpirun forwards to every rank: SIGTERM/SIGINT to mpirun
        // stop the run the same way, but make mpirun itself exit 1 (Open MPI's rule).
        if communicator.isDistributed { signal(SIGUSR1) { _ in stopSignal = 1 } }
        defer {
            signal(SIGINT, previousInt)
            signal(SIGTERM, previousTerm)
            if communicator.isDistributed { signal(SIGUSR1, SIG_DFL) }
        }
        let total = totalIterations
        let progress = ProgressReporter(total: total, label: "train", logEvery: config.logEvery,
                                        startingAt: state.iteration)
        var stopReason = "finished"
        var last = IterationStats()
        var window: [IterationStats] = []
        guardian.snapshot(state, trusted: true)

        while state.iteration < total {
            // Every rank stops at the same iteration, whichever of them got the signal.
            if try communicator.any(stopSignal != 0) {
                stopReason = "stopped by signal"
                break
            }
            let iteration = state.iteration
            let epoch = iteration / data.iterationsPerEpoch
            let lr = config.schedule.rate(iteration: iteration, epoch: epoch) * state.learningRateScale
            var batch = data.batch(iteration: iteration)
            if injectNaNAtIteration == iteration {
                batch.px[0] = .nan
                batch.labeled[0] = .nan
                injectNaNAtIteration = nil
            }
            let iterationStart = Date()
            let stats = try trainer.iterate(batch, iteration: iteration, learningRate: lr,
                                            seed: state.effectiveSeed(config.seed))
            try trainer.backend.synchronize()
            windowSeconds += Date().timeIntervalSince(iterationStart)

            if let problem = guardian.problem(stats) {
                if try !recover(problem: problem, at: iteration, progress: progress) {
                    stopReason = "diverged \(state.recoveries) times (limit --max-recoveries \(config.maxRecoveries))"
                    break
                }
                continue
            }
            guardian.confirm()   // the weights of the pending snapshot just passed the check
            state.iteration += 1
            state.optimizerSteps = trainer.optimizer.stepCount
            CrashPoint.reach("iteration")
            last = stats
            window.append(stats)

            if state.iteration % config.logEvery == 0 || state.iteration == total {
                try logIteration(window: window, lr: lr, epoch: epoch, rate: progress.rate(completed: state.iteration))
                window.removeAll()
            }
            if writes { progress.update(completed: state.iteration, detail: String(
                format: "ep %d loss %.3f acc %.3f f(x) %.2f f(xq) %.2f", epoch, stats.loss, stats.accuracy,
                stats.fData, stats.fSample)) }
            if config.sampleEvery > 0, state.iteration % config.sampleEvery == 0, trainer.hasSamples {
                try writeSamples(name: String(format: "samples/x_q_%06d.png", state.iteration))
            }
            let epochEnd = state.iteration % data.iterationsPerEpoch == 0
            if epochEnd && (epoch + 1) % max(config.evalEvery, 1) == 0 || state.iteration == total {
                try evaluate(epoch: epoch, progress: progress)
            }
            if config.checkpointEvery > 0 && state.iteration % config.checkpointEvery == 0 || epochEnd {
                try saveCheckpoint()
            }
            if state.iteration % max(config.snapshotEvery, 1) == 0 { guardian.snapshot(state) }
        }
        progress.finish()
        try saveCheckpoint()
        if trainer.hasSamples {
            try writeSamples(name: "samples/x_q_final.png")
            // A stopped run exits at once (SIGTERM must not wait for 100 more SGLD steps).
            if config.finalSampleSteps > 0 && stopReason == "finished" {
                try writeConditionalSamples(name: "samples/conditional_final.png")
            }
        }
        let summary: [String: Any] = [
            "event": "end", "iteration": state.iteration, "reason": stopReason,
            "best_valid_accuracy": state.bestValidAccuracy, "recoveries": state.recoveries,
            "last_loss": last.loss,
        ]
        try metrics?.append(summary)
        let recovered = state.recoveries > 0 ? " after \(state.recoveries) divergence recoveries" : ""
        if writes { report("\(stopReason) at iteration \(state.iteration)\(recovered); checkpoint \(checkpointPath)") }
        if stopReason.hasPrefix("diverged") {
            throw TrainingDiverged(message: "training diverged \(state.recoveries) times; stopped at iteration "
                                   + "\(state.iteration) with the last good model in \(checkpointPath)")
        }
        return summary
    }

    /// Rolls back to the last snapshot, reseeds, and applies the recovery action. False when
    /// the recovery budget is spent (the last good state is restored either way).
    private func recover(problem: String, at iteration: Int, progress: ProgressReporter) throws -> Bool {
        guard var restored = guardian.rollback() else { return false }
        let recoveries = state.recoveries + 1
        restored.recoveries = recoveries
        restored.learningRateScale = state.learningRateScale
        restored.sgldSteps = state.sgldSteps
        let exhausted = recoveries > config.maxRecoveries
        var action = "rolled back to iteration \(restored.iteration)"
        if !exhausted {
            switch config.recoveryAction {
            case .cutLearningRate:
                restored.learningRateScale *= config.recoveryFactor
                action += ", reseeded, lr scale now \(restored.learningRateScale)"
            case .moreSGLDSteps:
                restored.sgldSteps = min(restored.sgldSteps + 10, TrainingConfig.maxSGLDSteps)
                trainer.sampler?.steps = restored.sgldSteps
                action += ", reseeded, SGLD steps now \(restored.sgldSteps)"
            }
        }
        state = restored
        try metrics?.append(["event": "divergence", "iteration": iteration, "problem": problem, "action": action,
                            "recoveries": recoveries])
        progress.message("divergence at iteration \(iteration): \(problem); \(action)")
        if exhausted { state.recoveries = recoveries - 1 }
        return !exhausted
    }

    private func logIteration(window: [IterationStats], lr: Float, epoch: Int, rate: Double) throws {
        func avg(_ key: (IterationStats) -> Double) -> Double { window.map(key).reduce(0, +) / Double(window.count) }
        let distributed = try distributedLogFields(iterations: window.count)   // a collective: every rank
        guard let metrics else { return }
        try metrics.append(distributed.merging([
            "iteration": state.iteration, "epoch": epoch, "lr": Double(lr), "loss": avg(\.loss),
            "cross_entropy": avg(\.crossEntropy), "train_accuracy": avg(\.accuracy), "f_data": avg(\.fData),
            "f_sample": avg(\.fSample), "gap": avg(\.gap), "pxy": avg(\.pxyTerm), "energy_l2": avg(\.energyL2),
            "sample_rms": avg(\.sampleRMS),
            "iterations_per_second": rate, "sgld_steps": state.sgldSteps,
        ]) { $1 })
    }

    private func evaluate(epoch: Int, progress: ProgressReporter) throws {
        guard writes else { return }
        var record: [String: Any] = ["event": "eval", "iteration": state.iteration, "epoch": epoch]
        let validResult = try trainer.classify(valid, noiseStd: config.testNoise)
        record["test_noise"] = Double(config.testNoise)
        record["valid_accuracy"] = validResult.accuracy
        record["valid_nll"] = validResult.nll
        if let test {
            let testResult = try trainer.classify(test, noiseStd: config.testNoise)
            record["test_accuracy"] = testResult.accuracy
            record["test_nll"] = testResult.nll
        }
        try metrics?.append(record)
        progress.message(String(format: "epoch %d: valid acc %.4f", epoch, validResult.accuracy)
                         + ((record["test_accuracy"] as? Double).map { String(format: ", test acc %.4f", $0) } ?? ""))
        if validResult.accuracy > state.bestValidAccuracy {
            state.bestValidAccuracy = validResult.accuracy
            state.bestIteration = state.iteration
            try Checkpoint.save(trainer, state: state, spec: spec, to: bestPath, includeTrainingState: false)
        }
    }

    public func saveCheckpoint() throws {
        guard writes else { return }
        state.optimizerSteps = trainer.optimizer.stepCount
        try Checkpoint.save(trainer, state: state, spec: spec, to: checkpointPath, includeTrainingState: true)
    }

    /// One row per class: class-conditional SGLD from the buffer's images of that class.
    private func writeConditionalSamples(name: String) throws {
        guard writes else { return }
        let perClass = min(10, max(1, 100 / spec.classCount))
        let images = try ModelSampling.conditional(net: trainer.net, buffer: trainer.buffer,
                                                   start: trainer.buffer?.start ?? .uniform, perClass: perClass,
                                                   steps: config.finalSampleSteps, stepSize: config.sgldLR,
                                                   noiseStd: config.sgldStd, seed: state.effectiveSeed(config.seed))
        try ImageGrid.write(images: images, count: spec.classCount * perClass, channels: spec.inputChannels,
                            height: spec.imageHeight, width: spec.imageWidth, columns: perClass,
                            to: outputDirectory + "/" + name)
    }

    private func writeSamples(name: String) throws {
        guard writes else { return }
        let count = config.batchSize
        try ImageGrid.write(images: try trainer.lastSamples(), count: count, channels: spec.inputChannels,
                            height: spec.imageHeight, width: spec.imageWidth,
                            columns: Int(Double(count).squareRoot().rounded(.up)), to: outputDirectory + "/" + name)
    }
}
