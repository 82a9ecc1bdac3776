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
    public internal(set) var transfers = TransferCounts()

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

    @inline(__always) func cpu(_ b: DeviceBuffer) -> CPUBuffer {
        guard let buffer = b as? CPUBuffer else {
            preconditionFailure("CPUBackend was given a buffer of another backend (\(type(of: b)))")
        }
        return buffer
    }

    @inline(__always) func f(_ b: DeviceBuffer) -> UnsafeMutablePointer<Float> { cpu(b).floats }
    @inline(__always) func i32(_ b: DeviceBuffer) -> UnsafeMutablePointer<Int32> { cpu(b).ints }

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
