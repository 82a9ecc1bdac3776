import CJEMKernels
import Foundation
import JEMSupport

/// Bias, activations, arithmetic, per-row scaling and pooling (the "pointwise" op group,
/// Kernels/pointwise.cl on OpenCL).
extension CPUBackend {
    public func addBias(_ y: DeviceBuffer, bias: DeviceBuffer, outer: Int, channels: Int, inner: Int) {
        let py = UnsafeSendable(f(y)), pb = UnsafeSendable(f(bias))
        Parallel.forEachChunk(outer * channels, minimumPerChunk: max(1, 16_384 / max(inner, 1))) { rows in
            for row in rows {
                let value = pb.value[row % channels]
                let base = py.value + row * inner
                for i in 0..<inner { base[i] += value }
            }
        }
    }

    public func biasGradient(_ gradY: DeviceBuffer, outer: Int, channels: Int, inner: Int,
                             gradBias: DeviceBuffer, accumulate: Bool) {
        let pg = UnsafeSendable(f(gradY)), pb = UnsafeSendable(f(gradBias))
        Parallel.forEachChunk(channels, minimumPerChunk: max(1, 16_384 / max(outer * inner, 1))) { range in
            for c in range {
                var total: Float = 0
                for o in 0..<outer {
                    let base = pg.value + (o * channels + c) * inner
                    var s: Float = 0
                    for i in 0..<inner { s += base[i] }
                    total += s
                }
                pb.value[c] = accumulate ? pb.value[c] + total : total
            }
        }
    }


    public func activationForward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, count: Int) {
        let px = UnsafeSendable(f(x)), py = UnsafeSendable(f(y))
        switch activation {
        case .leakyReLU(let slope):
            Parallel.forEachChunk(count) { r in
                jem_leaky_relu_forward(px.value + r.lowerBound, py.value + r.lowerBound, r.count, slope)
            }
        case .swish:
            Parallel.forEachChunk(count) { r in for i in r { let v = px.value[i]; py.value[i] = v / (1 + Foundation.exp(-v)) } }
        }
    }

    public func activationBackward(_ activation: Activation, x: DeviceBuffer, gradY: DeviceBuffer,
                                   gradX: DeviceBuffer, count: Int, accumulate: Bool) {
        let px = UnsafeSendable(f(x)), pg = UnsafeSendable(f(gradY)), pd = UnsafeSendable(f(gradX))
        switch activation {
        case .leakyReLU(let slope):
            Parallel.forEachChunk(count) { r in
                jem_leaky_relu_backward(px.value + r.lowerBound, pg.value + r.lowerBound, pd.value + r.lowerBound,
                                        r.count, slope, accumulate ? 1 : 0)
            }
        case .swish:
            Parallel.forEachChunk(count) { r in for i in r {
                let v = px.value[i], sig = 1 / (1 + Foundation.exp(-v))
                let g = pg.value[i] * (sig + v * sig * (1 - sig))
                pd.value[i] = accumulate ? pd.value[i] + g : g
            } }
        }
    }

    public func axpby(alpha: Float, x: DeviceBuffer, beta: Float, y: DeviceBuffer, count: Int) {
        let px = UnsafeSendable(f(x)), py = UnsafeSendable(f(y))
        Parallel.forEachChunk(count) { r in
            jem_axpby(alpha, px.value + r.lowerBound, beta, py.value + r.lowerBound, r.count)
        }
    }

    public func scale(_ x: DeviceBuffer, by alpha: Float, count: Int) {
        let px = UnsafeSendable(f(x))
        Parallel.forEachChunk(count) { r in for i in r { px.value[i] *= alpha } }
    }

    public func fill(_ x: DeviceBuffer, value: Float, offset: Int, count: Int) {
        precondition(offset + count <= x.count)
        (f(x) + offset).update(repeating: value, count: count)
    }

    public func clamp(_ x: DeviceBuffer, low: Float, high: Float, count: Int) {
        let px = UnsafeSendable(f(x))
        Parallel.forEachChunk(count) { r in for i in r { px.value[i] = Swift.min(Swift.max(px.value[i], low), high) } }
    }

    public func sign(_ x: DeviceBuffer, y: DeviceBuffer, count: Int) {
        let px = UnsafeSendable(f(x)), py = UnsafeSendable(f(y))
        Parallel.forEachChunk(count) { r in for i in r {
            let v = px.value[i]
            py.value[i] = v > 0 ? 1 : (v < 0 ? -1 : v)
        } }
    }

    // MARK: Per-row scaling

    public func rescaleRows(_ x: DeviceBuffer, rows: Int, rowSize: Int, toNorm target: Float, mode: RowRescale,
                            norms: DeviceBuffer?) {
        let px = UnsafeSendable(f(x)), pn = UnsafeSendable(norms.map { f($0) })
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 16_384 / max(rowSize, 1))) { range in
            for r in range {
                let row = px.value + r * rowSize
                var s: Float = 0
                for j in 0..<rowSize { s += row[j] * row[j] }
                let n = s.squareRoot()
                pn.value?[r] = n
                if n > 0 && (mode == .exact || n > target) {
                    let factor = target / n
                    for j in 0..<rowSize { row[j] *= factor }
                }
            }
        }
    }

    public func scaleRows(_ x: DeviceBuffer, by factors: DeviceBuffer, rows: Int, rowSize: Int) {
        let px = UnsafeSendable(f(x)), pf = UnsafeSendable(f(factors))
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 16_384 / max(rowSize, 1))) { range in
            for r in range {
                let row = px.value + r * rowSize, factor = pf.value[r]
                for j in 0..<rowSize { row[j] *= factor }
            }
        }
    }

    // MARK: Pooling

    public func globalAveragePoolForward(x: DeviceBuffer, y: DeviceBuffer, rows: Int, spatial: Int) {
        let px = UnsafeSendable(f(x)), py = UnsafeSendable(f(y))
        let inverse = 1 / Float(spatial)
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 16_384 / max(spatial, 1))) { range in
            for r in range {
                var s: Float = 0
                let base = px.value + r * spatial
                for i in 0..<spatial { s += base[i] }
                py.value[r] = s * inverse
            }
        }
    }

    public func globalAveragePoolBackward(gradY: DeviceBuffer, gradX: DeviceBuffer, rows: Int, spatial: Int,
                                          accumulate: Bool) {
        let pg = UnsafeSendable(f(gradY)), pd = UnsafeSendable(f(gradX))
        let inverse = 1 / Float(spatial)
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 16_384 / max(spatial, 1))) { range in
            for r in range {
                let g = pg.value[r] * inverse
                let base = pd.value + r * spatial
                if accumulate {
                    for i in 0..<spatial { base[i] += g }
                } else {
                    base.update(repeating: g, count: spatial)
                }
            }
        }
    }
}
