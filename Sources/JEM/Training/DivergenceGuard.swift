import JEMBackend
/// Watches every iteration for divergence (non-finite loss, |L| above a limit, or the gap
/// |f(x_data) - f(x_q)| exploding), keeps an in-memory copy of the last good state, and on a
/// trip rolls back to it. The caller then reseeds and cuts the lr or adds SGLD steps.
///
/// An iteration's loss is that of the weights *before* its optimizer step, so a state copied at
/// the end of iteration k (after its step) is only known to be good once iteration k+1 passes
/// the check. A copy therefore starts as `pending` and becomes the rollback target on `confirm()`;
/// a divergence before that discards it. (With a single copy, a step that blew the weights up
/// just before a snapshot poisoned the snapshot, and every rollback diverged again at once.)
public final class DivergenceGuard {
    public let lossLimit: Double
    public let gapLimit: Double
    let trainer: JEMTrainer
    private let sources: [DeviceBuffer]
    private var good: [DeviceBuffer]
    private var pending: [DeviceBuffer]
    public private(set) var snapshotState: RunState?
    private var pendingState: RunState?

    public init(trainer: JEMTrainer, lossLimit: Float, gapLimit: Float) throws {
        self.trainer = trainer
        self.lossLimit = Double(lossLimit)
        self.gapLimit = Double(gapLimit)
        var tensors = trainer.net.parameters.map(\.value) + trainer.optimizer.stateTensors.map(\.buffer)
        if let buffer = trainer.buffer { tensors.append(buffer.storage) }
        sources = tensors
        good = try tensors.map { try trainer.backend.makeBuffer(count: $0.count) }
        pending = try tensors.map { try trainer.backend.makeBuffer(count: $0.count) }
    }

    /// Why `stats` counts as divergence, or nil when it looks healthy.
    public func problem(_ stats: IterationStats) -> String? {
        if !stats.isFinite { return "non-finite loss (\(stats.loss)) or energies" }
        if abs(stats.loss) > lossLimit { return "|loss| \(stats.loss) above the limit \(lossLimit)" }
        if abs(stats.gap) > gapLimit { return "|f(x_data) - f(x_q)| = \(abs(stats.gap)) above the limit \(gapLimit)" }
        return nil
    }

    /// Copies the current model, optimizer state and replay buffer (on the device) as a pending
    /// snapshot; `trusted` (the state a run starts or resumes from) makes it the rollback target at once.
    public func snapshot(_ state: RunState, trusted: Bool = false) {
        for (source, copy) in zip(sources, pending) { trainer.backend.copy(source, to: copy, count: source.count) }
        pendingState = state
        if trusted { confirm() }
    }

    /// The iteration after the pending snapshot passed the check: the snapshot is good.
    public func confirm() {
        guard let state = pendingState else { return }
        swap(&good, &pending)
        snapshotState = state
        pendingState = nil
    }

    /// Restores the last good snapshot and returns its state, or nil when none was taken.
    public func rollback() -> RunState? {
        pendingState = nil
        guard let state = snapshotState else { return nil }
        for (source, copy) in zip(sources, good) { trainer.backend.copy(copy, to: source, count: source.count) }
        trainer.optimizer.stepCount = state.optimizerSteps
        return state
    }
}

/// Training stopped because the divergence guard ran out of recoveries.
public struct TrainingDiverged: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
