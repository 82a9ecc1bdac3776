import Dispatch
import Foundation
import JEMSupport

/// Full reductions to one scalar (the "reductions" op group, Kernels/reductions.cl on OpenCL).
extension CPUBackend {
    // The scalar result counts as one 4-byte download (what a device backend must read back at least).
    public func sum(_ x: DeviceBuffer, count: Int) throws -> Float {
        transfers.recordDownload(bytes: 4)
        return Float(reduce(f(x), count) { Double($0) })
    }

    public func sumOfSquares(_ x: DeviceBuffer, count: Int) throws -> Float {
        transfers.recordDownload(bytes: 4)
        return Float(reduce(f(x), count) { Double($0) * Double($0) })
    }

    /// Double-precision per-chunk sums, added in chunk order: deterministic for a given core count.
    func reduce(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ term: (Float) -> Double) -> Double {
        let chunks = Swift.max(1, Swift.min(64, count / 4096))
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { out in
            let o = UnsafeSendable(out.baseAddress!), px = UnsafeSendable(p)
            withoutActuallyEscaping(term) { term in
                let t = UnsafeSendable(term)
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    let start = count * c / chunks, end = count * (c + 1) / chunks
                    var s = 0.0
                    for i in start..<end { s += t.value(px.value[i]) }
                    o.value[c] = s
                }
            }
        }
        return partial.reduce(0, +)
    }
}
