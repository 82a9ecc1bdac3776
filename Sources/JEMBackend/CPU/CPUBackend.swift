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
    /// The Winograd-transformed filters, reused while the weights stay the same.
    var winogradFilters = WinogradFilterCache()

    /// Host memory is the CPU backend's memory, so "transfers" are the copies in and out of its
    /// buffers: counted like the OpenCL backend's, so that both report the same traffic.
    public internal(set) var transfers = TransferCounts()
    /// Bytes of every buffer `makeBuffer` has handed out (freed ones included): what the callers
    /// own, as opposed to the backend's own scratch (`scratchBytes`). For jem-bench's memory table.
    public private(set) var allocatedBytes = 0
    /// Every buffer handed out, weakly (for `residentBufferBytes`).
    private var handedOut: [WeakCPUBuffer] = []

    /// Bytes of the live buffers that are resident in memory now (mincore): pages never written
    /// (e.g. scratch that a fused path never uses) are allocated but not resident.
    public var residentBufferBytes: Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var total = 0
        for entry in handedOut {
            guard let buffer = entry.buffer else { continue }
            let start = Int(bitPattern: buffer.raw) & ~(page - 1)
            let end = Int(bitPattern: buffer.raw) + buffer.byteCount
            let pages = (end - start + page - 1) / page
            var flags = [UInt8](repeating: 0, count: pages)
            guard mincore(UnsafeMutableRawPointer(bitPattern: start), end - start, &flags) == 0 else { continue }
            // Pages shared with a neighbouring allocation count as a whole page here.
            total += flags.reduce(0) { $0 + Int($1 & 1) } * page
        }
        return min(total, allocatedBytes)
    }

    /// Whether 3x3, stride-1, padding-1 convolutions (forward, backward-data, weight gradients)
    /// and 3x3, stride-2, padding-1 ones (forward, backward-data) run through Winograd (see
    /// `CPUWinograd.swift`, `CPUWinogradStride2.swift`) instead of im2col + GEMM.
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

    @inline(__always) func cpu(_ b: DeviceBuffer) -> CPUBuffer {
        guard let buffer = b as? CPUBuffer else {
            preconditionFailure("CPUBackend was given a buffer of another backend (\(type(of: b)))")
        }
        return buffer
    }

    @inline(__always) func f(_ b: DeviceBuffer) -> UnsafeMutablePointer<Float> { cpu(b).floats }
    @inline(__always) func i32(_ b: DeviceBuffer) -> UnsafeMutablePointer<Int32> { cpu(b).ints }
    /// The 16-bit words of an `ActivationSigns` buffer.
    @inline(__always) func signWords(_ b: DeviceBuffer) -> UnsafeMutablePointer<UInt16> {
        cpu(b).raw.assumingMemoryBound(to: UInt16.self)
    }

    // MARK: Buffers

    public func makeBuffer(count: Int, type: ElementType) throws -> DeviceBuffer {
        guard count >= 0 else { throw BackendError("cannot allocate a buffer of \(count) elements") }
        allocatedBytes += count * type.size
        let buffer = CPUBuffer(count: count, type: type)
        handedOut.append(WeakCPUBuffer(buffer))
        return buffer
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
}

extension CPUBackend {
    /// The convolution scratch held now, bytes by purpose (all threads together).
    public var scratchBytes: [(purpose: String, bytes: Int)] {
        func sum(_ pick: (ConvolutionScratch) -> Scratch) -> Int { threadScratch.reduce(0) { $0 + pick($1).bytes } }
        return [("im2col columns", sum(\.columns)), ("weight-gradient partial sums", sum(\.weightGradient)),
                ("grouped images (im2col GEMM)", sum(\.grouped)), ("Winograd input band", sum(\.packed)),
                ("Winograd transformed tiles", sum(\.transformed)), ("Winograd products", sum(\.products)),
                ("Winograd output band, packed output gradient", sum(\.unpacked)),
                ("Winograd residual shortcut of a chunk", sum(\.shortcut)),
                ("Winograd filters (cached per conv)", winogradFilters.totalBytes)]
    }
}

private struct WeakCPUBuffer {
    weak var buffer: CPUBuffer?
    init(_ buffer: CPUBuffer) { self.buffer = buffer }
}

/// One thread's convolution scratch.
final class ConvolutionScratch: @unchecked Sendable {
    let columns = Scratch()
    let weightGradient = Scratch()
    /// Output gradients gathered, or outputs to scatter, for a group of images ([C][images*HW]).
    let grouped = Scratch()
    // Winograd: the band of padded channels-last input rows of one tile row, the tile transforms,
    // their products with the filter, and the band of channels-last output rows (see
    // CJEMKernels.h); for weight gradients, `unpacked` holds the packed output gradient.
    let packed = Scratch()
    let transformed = Scratch()
    let products = Scratch()
    let unpacked = Scratch()
    /// A residual shortcut's output for the images of one Winograd chunk, added as the conv's
    /// output is stored (`winogradConvolution`'s prefill).
    let shortcut = Scratch()
}

/// A grow-only host scratch area, 64-byte aligned.
final class Scratch {
    private var raw: UnsafeMutableRawPointer?
    private var pointer: UnsafeMutablePointer<Float>?
    private var capacity = 0

    deinit { raw?.deallocate() }

    /// Bytes held now.
    var bytes: Int { pointer == nil ? 0 : capacity * 4 }

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
