import CBLAS
import CJEMKernels
import Foundation
import JEMSupport

/// Host memory for `CPUBackend`: 64-byte aligned, freed with the buffer.
public final class CPUBuffer: DeviceBuffer, @unchecked Sendable {
    let raw: UnsafeMutableRawPointer

    override init(count: Int, type: ElementType) {
        raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * type.size, alignment: 64)
        super.init(count: count, type: type)
    }

    deinit { raw.deallocate() }

    var floats: UnsafeMutablePointer<Float> { raw.assumingMemoryBound(to: Float.self) }
    var ints: UnsafeMutablePointer<Int32> { raw.assumingMemoryBound(to: Int32.self) }
}

/// The reference backend and the CI fallback: plain Swift for pointwise work split over the
/// cores, OpenBLAS `cblas_sgemm` for everything GEMM-shaped (convolutions through im2col).
///
/// Not thread-safe: one backend serves one training loop (its scratch space is shared by ops).
public final class CPUBackend: Backend {
    public let kind = BackendKind.cpu
    public let deviceDescription: String

    /// Per-thread convolution scratch (im2col columns, partial weight gradients, Winograd
    /// tiles), grown on demand and reused: no allocation per op.
    let threadScratch = (0..<Parallel.threads).map { _ in ConvolutionScratch() }
    /// The Winograd-transformed filter of the current conv call.
    let winogradFilter = Scratch()

    /// Host memory is the CPU backend's memory, so "transfers" are the copies in and out of its
    /// buffers: counted like the OpenCL backend's, so that both report the same traffic.
    public private(set) var transfers = TransferCounts()

    /// Whether 3x3, stride-1, padding-1 convolutions (forward, backward-data, weight gradients)
    /// run through Winograd (see `CPUWinograd.swift`) instead of im2col + GEMM.
    public let usesWinograd: Bool
    /// Whether the convolutions of an activated input apply the leaky ReLU (and its derivative)
    /// on the fly (see `CPUConvolution.swift`) instead of as separate passes over memory.
    public let fusesActivations: Bool

    /// `winograd: false` keeps every convolution on im2col + GEMM, `fuseActivations: false` runs
    /// activation and convolution as separate ops (references for the tests and benchmarks).
    public init(winograd: Bool = true, fuseActivations: Bool = true) {
        usesWinograd = winograd
        fusesActivations = fuseActivations
        let threads = Parallel.threads
        // Parallelism is ours (images over cores); each GEMM runs single-threaded inside it.
        openblas_set_num_threads(1)
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        let options = (winograd ? [] : ["no Winograd"]) + (fuseActivations ? [] : ["unfused activations"])
        deviceDescription = "CPU (\(threads) threads, OpenBLAS \(core)\(options.map { ", " + $0 }.joined()))"
    }

    @inline(__always) private func cpu(_ b: DeviceBuffer) -> CPUBuffer {
        guard let buffer = b as? CPUBuffer else {
            preconditionFailure("CPUBackend was given a buffer of another backend (\(type(of: b)))")
        }
        return buffer
    }

    @inline(__always) func f(_ b: DeviceBuffer) -> UnsafeMutablePointer<Float> { cpu(b).floats }
    @inline(__always) private func i32(_ b: DeviceBuffer) -> UnsafeMutablePointer<Int32> { cpu(b).ints }

    // MARK: Buffers

    public func makeBuffer(count: Int, type: ElementType) throws -> DeviceBuffer {
        guard count >= 0 else { throw BackendError("cannot allocate a buffer of \(count) elements") }
        return CPUBuffer(count: count, type: type)
    }

    public func upload(_ values: [Float], to buffer: DeviceBuffer, offset: Int) throws {
        try checkRange(buffer, offset: offset, count: values.count, type: .float32)
        transfers.recordUpload(bytes: values.count * 4)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { (f(buffer) + offset).update(from: base, count: values.count) }
        }
    }

    public func upload(_ values: [Int32], to buffer: DeviceBuffer, offset: Int) throws {
        try checkRange(buffer, offset: offset, count: values.count, type: .int32)
        transfers.recordUpload(bytes: values.count * 4)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { (i32(buffer) + offset).update(from: base, count: values.count) }
        }
    }

    public func download(_ buffer: DeviceBuffer, offset: Int, count: Int) throws -> [Float] {
        try checkRange(buffer, offset: offset, count: count, type: .float32)
        transfers.recordDownload(bytes: count * 4)
        return Array(UnsafeBufferPointer(start: f(buffer) + offset, count: count))
    }

    public func downloadInt32(_ buffer: DeviceBuffer, offset: Int, count: Int) throws -> [Int32] {
        try checkRange(buffer, offset: offset, count: count, type: .int32)
        transfers.recordDownload(bytes: count * 4)
        return Array(UnsafeBufferPointer(start: i32(buffer) + offset, count: count))
    }

    private func checkRange(_ buffer: DeviceBuffer, offset: Int, count: Int, type: ElementType) throws {
        guard buffer.type == type else { throw BackendError("buffer holds \(buffer.type), expected \(type)") }
        guard offset >= 0, count >= 0, offset + count <= buffer.count else {
            throw BackendError("range \(offset)..<\(offset + count) outside a buffer of \(buffer.count)")
        }
    }

    public func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer,
                     destinationOffset: Int, count: Int) {
        precondition(sourceOffset + count <= source.count && destinationOffset + count <= destination.count)
        (cpu(destination).raw + destinationOffset * 4).copyMemory(from: cpu(source).raw + sourceOffset * 4,
                                                                  byteCount: count * 4)
    }

    public func synchronize() throws {}

    // MARK: Dense

    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: DeviceBuffer, aOffset: Int, lda: Int, b: DeviceBuffer, bOffset: Int, ldb: Int,
                     beta: Float, c: DeviceBuffer, cOffset: Int, ldc: Int, batch: GemmBatch) {
        let pa = f(a), pb = f(b), pc = f(c)
        // Large standalone GEMMs use every core; the convolutions call OpenBLAS single-threaded
        // from their own threads, so the default stays 1.
        let threaded = m * n * k >= 1 << 21 && Parallel.threads > 1
        if threaded { openblas_set_num_threads(Int32(Parallel.threads)) }
        defer { if threaded { openblas_set_num_threads(1) } }
        for i in 0..<batch.count {
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
                        transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                        pa + aOffset + i * batch.strideA, Int32(lda),
                        pb + bOffset + i * batch.strideB, Int32(ldb), beta,
                        pc + cOffset + i * batch.strideC, Int32(ldc))
        }
    }

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

    // MARK: Pointwise

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

    // MARK: Energy and loss

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

    // MARK: Sampling and optimisation

    /// Runs `body(block, firstElement)` for every Philox block (4 elements) overlapping 0..<count.
    @inline(__always)
    private func philoxBlocks(_ count: Int, _ body: (Int) -> Void) {
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

    public func adamUpdate(parameters: DeviceBuffer, gradients: DeviceBuffer, firstMoment: DeviceBuffer,
                           secondMoment: DeviceBuffer, count: Int, hyper: AdamHyperparameters, step: Int) {
        let p = UnsafeSendable(f(parameters)), g = UnsafeSendable(f(gradients))
        let m = UnsafeSendable(f(firstMoment)), v = UnsafeSendable(f(secondMoment))
        let c = AdamCoefficients(hyper, step: step)
        Parallel.forEachChunk(count) { r in for i in r {
            let grad = g.value[i] + hyper.weightDecay * p.value[i]
            let mi = hyper.beta1 * m.value[i] + (1 - hyper.beta1) * grad
            let vi = hyper.beta2 * v.value[i] + (1 - hyper.beta2) * grad * grad
            m.value[i] = mi
            v.value[i] = vi
            p.value[i] -= c.stepSize * mi / (vi.squareRoot() / c.sqrtBiasCorrection2 + hyper.epsilon)
        } }
    }

    public func sgdMomentumUpdate(parameters: DeviceBuffer, gradients: DeviceBuffer, momentumBuffer: DeviceBuffer,
                                  count: Int, learningRate: Float, momentum: Float, weightDecay: Float) {
        let p = UnsafeSendable(f(parameters)), g = UnsafeSendable(f(gradients)), b = UnsafeSendable(f(momentumBuffer))
        Parallel.forEachChunk(count) { r in for i in r {
            let buf = momentum * b.value[i] + g.value[i] + weightDecay * p.value[i]
            b.value[i] = buf
            p.value[i] -= learningRate * buf
        } }
    }

    // MARK: Reductions

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
    private func reduce(_ p: UnsafeMutablePointer<Float>, _ count: Int, _ term: (Float) -> Double) -> Double {
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

/// Adam's bias-corrected step, computed exactly as PyTorch does (in float64, then rounded).
struct AdamCoefficients {
    let stepSize: Float
    let sqrtBiasCorrection2: Float

    init(_ hyper: AdamHyperparameters, step: Int) {
        precondition(step >= 1, "Adam steps count from 1")
        let correction1 = 1 - pow(Double(hyper.beta1), Double(step))
        let correction2 = 1 - pow(Double(hyper.beta2), Double(step))
        stepSize = Float(Double(hyper.learningRate) / correction1)
        sqrtBiasCorrection2 = Float(correction2.squareRoot())
    }
}

/// One thread's convolution scratch.
final class ConvolutionScratch: @unchecked Sendable {
    let columns = Scratch()
    let weightGradient = Scratch()
    /// Output gradients gathered, or outputs to scatter, for a group of images ([C][images*HW]).
    let grouped = Scratch()
    // Winograd: the channels-last padded input, its tile transforms, their products with the
    // filter, and the channels-last output (see CJEMKernels.h).
    let packed = Scratch()
    let transformed = Scratch()
    let products = Scratch()
    let unpacked = Scratch()
}

/// A grow-only host scratch area, 64-byte aligned.
final class Scratch {
    private var raw: UnsafeMutableRawPointer?
    private var pointer: UnsafeMutablePointer<Float>?
    private var capacity = 0

    deinit { raw?.deallocate() }

    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if count > capacity || pointer == nil {
            raw?.deallocate()
            capacity = Swift.max(count, 1)
            let memory = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64)
            raw = memory
            pointer = memory.bindMemory(to: Float.self, capacity: capacity)
        }
        return pointer!
    }
}
