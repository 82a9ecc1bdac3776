import Foundation
import JEMSupport

/// Row-wise LogSumExp (the JEM energy) and softmax cross-entropy (the "loss" op group,
/// Kernels/loss.cl on OpenCL).
extension CPUBackend {
    /// log-sum-exp of one row; -inf for a row of -inf, +inf if any entry is +inf, NaN if any is NaN.
    @inline(__always)
    static func logSumExp(_ row: UnsafeMutablePointer<Float>, _ cols: Int) -> Float {
        var m = -Float.infinity
        for c in 0..<cols { m = Swift.max(m, row[c]) }
        if m == -.infinity || m == .infinity { return m }
        if m.isNaN { return .nan }
        var s: Float = 0
        for c in 0..<cols { s += Foundation.exp(row[c] - m) }
        return m + Foundation.log(s)
    }

    public func logSumExpRows(_ x: DeviceBuffer, rows: Int, cols: Int, out: DeviceBuffer) {
        let px = UnsafeSendable(f(x)), po = UnsafeSendable(f(out))
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 4096 / max(cols, 1))) { range in
            for r in range { po.value[r] = Self.logSumExp(px.value + r * cols, cols) }
        }
    }

    public func logSumExpBackward(_ x: DeviceBuffer, lse: DeviceBuffer, gradOut: DeviceBuffer, rows: Int,
                                  cols: Int, gradX: DeviceBuffer, accumulate: Bool) {
        _ = lse  // the row statistics are recomputed (see below); `lse` is part of the protocol for GPUs
        let px = UnsafeSendable(f(x)), pg = UnsafeSendable(f(gradOut)), pd = UnsafeSendable(f(gradX))
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 4096 / max(cols, 1))) { range in
            for r in range {
                let g = pg.value[r], row = px.value + r * cols, d = pd.value + r * cols
                // softmax = exp(x - max) / sum, recomputed from the row: exp(x - lse) would lose
                // the low bits of lse when |lse| is large (rows of ±1000).
                var m = -Float.infinity
                for c in 0..<cols { m = Swift.max(m, row[c]) }
                var s: Float = 0
                if m > -.infinity { for c in 0..<cols { s += Foundation.exp(row[c] - m) } }
                for c in 0..<cols {
                    // A row of -inf has no softmax; its gradient is 0 by convention.
                    let v = m == -.infinity ? 0 : g * (Foundation.exp(row[c] - m) / s)
                    d[c] = accumulate ? d[c] + v : v
                }
            }
        }
    }

    public func softmaxCrossEntropyForward(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int,
                                           losses: DeviceBuffer) {
        let px = UnsafeSendable(f(logits)), py = UnsafeSendable(i32(labels)), po = UnsafeSendable(f(losses))
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 4096 / max(cols, 1))) { range in
            for r in range {
                let row = px.value + r * cols
                let label = Int(py.value[r])
                precondition(label >= 0 && label < cols, "label \(label) outside 0..<\(cols)")
                po.value[r] = Self.logSumExp(row, cols) - row[label]
            }
        }
    }

    public func softmaxCrossEntropyBackward(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int,
                                            scale: Float, gradLogits: DeviceBuffer, accumulate: Bool) {
        let px = UnsafeSendable(f(logits)), py = UnsafeSendable(i32(labels)), pd = UnsafeSendable(f(gradLogits))
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 4096 / max(cols, 1))) { range in
            for r in range {
                let row = px.value + r * cols, d = pd.value + r * cols
                let l = Self.logSumExp(row, cols), label = Int(py.value[r])
                for c in 0..<cols {
                    let v = scale * (Foundation.exp(row[c] - l) - (c == label ? 1 : 0))
                    d[c] = accumulate ? d[c] + v : v
                }
            }
        }
    }
}
