import Foundation
import JEMSupport

/// SGLD, Philox fills and the replay-buffer gather/scatter (the "sampling" op group,
/// Kernels/sampling.cl on OpenCL).
extension CPUBackend {
    /// Runs `body(block, firstElement)` for every Philox block (4 elements) overlapping 0..<count.
    @inline(__always)
    func philoxBlocks(_ count: Int, _ body: (Int) -> Void) {
        Parallel.forEachChunk((count + 3) / 4, minimumPerChunk: 2048) { blocks in for b in blocks { body(b) } }
    }

    public func sgldUpdate(x: DeviceBuffer, grad: DeviceBuffer, count: Int, stepSize: Float, noiseStd: Float,
                           seed: UInt64, stream: UInt64, gradClip: Float?, clampRange: ClosedRange<Float>?) {
        let px = UnsafeSendable(f(x)), pg = UnsafeSendable(f(grad))
        let clip = gradClip ?? .infinity
        let low = clampRange?.lowerBound ?? -.infinity, high = clampRange?.upperBound ?? .infinity
        philoxBlocks(count) { b in
            let n = Philox.normal4(seed: seed, stream: stream, index: UInt64(b))
            for lane in 0..<Swift.min(4, count - 4 * b) {
                let i = 4 * b + lane
                let g = Swift.min(Swift.max(pg.value[i], -clip), clip)
                let v = px.value[i] + stepSize * g + noiseStd * Philox.lane(n, lane)
                px.value[i] = Swift.min(Swift.max(v, low), high)
            }
        }
    }

    public func fillUniform(_ x: DeviceBuffer, count: Int, low: Float, high: Float, seed: UInt64, stream: UInt64) {
        let px = UnsafeSendable(f(x))
        philoxBlocks(count) { b in
            let r = Philox.block(seed: seed, stream: stream, index: UInt64(b))
            for lane in 0..<Swift.min(4, count - 4 * b) {
                px.value[4 * b + lane] = low + (high - low) * Philox.uniform01(Philox.lane(r, lane))
            }
        }
    }

    public func addGaussianNoise(_ x: DeviceBuffer, count: Int, std: Float, seed: UInt64, stream: UInt64) {
        let px = UnsafeSendable(f(x))
        philoxBlocks(count) { b in
            let n = Philox.normal4(seed: seed, stream: stream, index: UInt64(b))
            for lane in 0..<Swift.min(4, count - 4 * b) { px.value[4 * b + lane] += std * Philox.lane(n, lane) }
        }
    }

    public func gatherRows(_ source: DeviceBuffer, indices: DeviceBuffer, reinit: DeviceBuffer?, rows: Int,
                           rowSize: Int, seed: UInt64, stream: UInt64, out: DeviceBuffer) {
        let ps = UnsafeSendable(f(source)), pi = UnsafeSendable(i32(indices)), po = UnsafeSendable(f(out))
        let pr = UnsafeSendable(reinit.map { i32($0) })
        let sourceRows = source.count / max(rowSize, 1)
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 16_384 / max(rowSize, 1))) { range in
            for r in range {
                let dst = po.value + r * rowSize
                if let flags = pr.value, flags[r] != 0 {
                    // Element j of row r is element r*rowSize+j of the uniform stream.
                    for j in 0..<rowSize {
                        dst[j] = 2 * Philox.uniform(seed: seed, stream: stream, element: r * rowSize + j) - 1
                    }
                } else {
                    let index = Int(pi.value[r])
                    precondition(index >= 0 && index < sourceRows, "row index \(index) outside 0..<\(sourceRows)")
                    dst.update(from: ps.value + index * rowSize, count: rowSize)
                }
            }
        }
    }

    public func scatterRows(_ source: DeviceBuffer, indices: DeviceBuffer, rows: Int, rowSize: Int,
                            destination: DeviceBuffer) {
        let ps = UnsafeSendable(f(source)), pi = UnsafeSendable(i32(indices)), pd = UnsafeSendable(f(destination))
        let destinationRows = destination.count / max(rowSize, 1)
        Parallel.forEachChunk(rows, minimumPerChunk: max(1, 16_384 / max(rowSize, 1))) { range in
            for r in range {
                let index = Int(pi.value[r])
                if index < 0 { continue }
                precondition(index < destinationRows, "row index \(index) outside 0..<\(destinationRows)")
                (pd.value + index * rowSize).update(from: ps.value + r * rowSize, count: rowSize)
            }
        }
    }
}
