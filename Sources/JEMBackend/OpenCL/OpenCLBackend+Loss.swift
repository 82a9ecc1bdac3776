/// Row-wise LogSumExp (the JEM energy) and softmax cross-entropy (Kernels/loss.cl): one
/// work-group per row, reducing in local memory.
extension OpenCLBackend {
    public func logSumExpRows(_ x: DeviceBuffer, rows: Int, cols: Int, out: DeviceBuffer) {
        guard rows > 0, cols >= 0,
              ready("logSumExpRows", sizes: [rows * cols], .floats(x, rows * cols, "x"), .floats(out, rows, "out"))
        else { return }
        launchGroups("logsumexp_rows", in: .loss, groups: rows, preferredLocal: Self.rowReductionLocalSize,
                     [.buffer(x), .buffer(out), .u32(cols), .localScratch])
    }

    /// Recomputes each row's max and sum of exponentials (as the CPU backend does) rather than
    /// using `lse`, whose float value is too coarse for rows of +-1000; `lse` is not read.
    public func logSumExpBackward(_ x: DeviceBuffer, lse: DeviceBuffer, gradOut: DeviceBuffer, rows: Int,
                                  cols: Int, gradX: DeviceBuffer, accumulate: Bool) {
        let count = rows * cols
        guard count > 0, ready("logSumExpBackward", sizes: [count], .floats(x, count, "x"),
                               .floats(gradOut, rows, "gradOut"), .floats(gradX, count, "gradX")) else { return }
        launchGroups("logsumexp_backward", in: .loss, groups: rows, preferredLocal: Self.rowReductionLocalSize,
                     [.buffer(x), .buffer(gradOut), .buffer(gradX), .u32(cols), .u32(accumulate ? 1 : 0),
                      .localScratch])
    }

    public func softmaxCrossEntropyForward(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int,
                                           losses: DeviceBuffer) {
        guard rows > 0, cols > 0,
              ready("softmaxCrossEntropyForward", sizes: [rows * cols], .floats(logits, rows * cols, "logits"),
                    .ints(labels, rows, "labels"), .floats(losses, rows, "losses")) else { return }
        launchGroups("softmax_cross_entropy_forward", in: .loss, groups: rows,
                     preferredLocal: Self.rowReductionLocalSize,
                     [.buffer(logits), .buffer(labels), .buffer(losses), .u32(cols), .localScratch])
    }

    public func softmaxCrossEntropyBackward(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int,
                                            scale: Float, gradLogits: DeviceBuffer, accumulate: Bool) {
        guard rows > 0, cols > 0,
              ready("softmaxCrossEntropyBackward", sizes: [rows * cols], .floats(logits, rows * cols, "logits"),
                    .ints(labels, rows, "labels"), .floats(gradLogits, rows * cols, "gradLogits")) else { return }
        launchGroups("softmax_cross_entropy_backward", in: .loss, groups: rows,
                     preferredLocal: Self.rowReductionLocalSize,
                     [.buffer(logits), .buffer(labels), .buffer(gradLogits), .u32(cols), .f32(scale),
                      .u32(accumulate ? 1 : 0), .localScratch])
    }
}
