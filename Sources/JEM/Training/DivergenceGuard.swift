/// Watches every iteration for divergence (non-finite loss, |L| above a limit, or the gap
/// |f(x_data) - f(x_q)| exploding), keeps an in-memory copy of the last good state, and on a
/// trip rolls back to it. The caller then reseeds and cuts the lr or adds SGLD steps.
public final class DivergenceGuard {
    public let lossLimit: Double
    public let gapLimit: Double
    let trainer: JEMTrainer
    private var copies: [(source: DeviceBuffer, copy: DeviceBuffer)] = []
    public private(set) var snapshotState: RunState?

    public init(trainer: JEMTrainer, lossLimit: Float, gapLimit: Float) throws {
        self.trainer = trainer
        self.lossLimit = Double(lossLimit)
        self.gapLimit = Double(gapLimit)
        var tensors = trainer.net.parameters.map(\.value) + trainer.optimizer.stateTensors.map(\.buffer)
        if let buffer = trainer.buffer { tensors.append(buffer.storage) }
        copies = try tensors.map { ($0, try trainer.backend.makeBuffer(count: $0.count)) }
    }

    /// Why `stats` counts as divergence, or nil when it looks healthy.
    public func problem(_ stats: IterationStats) -> String? {
        if !stats.isFinite { return "non-finite loss (\(stats.loss)) or energies" }
        if abs(stats.loss) > lossLimit { return "|loss| \(stats.loss) above the limit \(lossLimit)" }
        if abs(stats.gap) > gapLimit { return "|f(x_data) - f(x_q)| = \(abs(stats.gap)) above the limit \(gapLimit)" }
        return nil
    }

    /// Copies the current model, optimizer state and replay buffer (on the device).
    public func snapshot(_ state: RunState) {
        for (source, copy) in copies { trainer.backend.copy(source, to: copy, count: source.count) }
        snapshotState = state
    }

    /// Restores the last snapshot and returns its state, or nil when none was taken.
    public func rollback() -> RunState? {
        guard let state = snapshotState else { return nil }
        for (source, copy) in copies { trainer.backend.copy(copy, to: source, count: source.count) }
        trainer.optimizer.stepCount = state.optimizerSteps
        return state
    }
}
