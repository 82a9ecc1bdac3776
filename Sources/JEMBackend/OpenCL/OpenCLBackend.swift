import COpenCL
import Foundation

/// The OpenCL backend: one context and one in-order command queue on one device. Kernels come from
/// `Kernels/*.cl` (each file built once, on first use of one of its kernels); the convolutions'
/// forward and backward-data GEMMs run on the backend's own `conv_gemm` kernel, every other GEMM
/// (the dense layers, `gemm`, the filter gradients) on CLBlast.
///
/// Compute ops never throw: the first failure is remembered (sticky, like a CUDA error) and thrown
/// by the next `synchronize`, `download`, `downloadInt32`, `upload`, `sum`, `sumOfSquares` or
/// `makeBuffer`; ops after a failure do nothing. Data stays on the device between ops.
///
/// Not thread-safe: one backend serves one training loop (kernel objects and workspaces are shared).
public final class OpenCLBackend: Backend {
    public let kind = BackendKind.opencl
    /// The device this backend runs on.
    public let device: OpenCLDeviceInfo

    let deviceID: cl_device_id?
    let context: cl_context?
    let queue: cl_command_queue?
    /// Options every program is built with: OpenCL C 1.2, and correctly rounded divide/sqrt where
    /// the device offers it (so Adam and softmax follow the CPU closely).
    let buildOptions: String

    var programs: [KernelFile: OpenCLProgram] = [:]
    var kernels: [String: OpenCLKernel] = [:]
    /// Wall-clock seconds each program took to build (a cold PoCL cache makes this visible).
    public internal(set) var buildSeconds: [String: Double] = [:]
    /// Where each `Kernels/*.cl` program came from: compiled from source, or a binary of
    /// `programCache` (filled as programs are first used).
    public internal(set) var programOrigins: [String: ProgramOrigin] = [:]
    /// Built program binaries on disk, shared by processes (see `OpenCLProgramCache`).
    public let programCache: OpenCLProgramCache
    private(set) var firstError: BackendError?
    /// Every `clEnqueueWriteBuffer` / `clEnqueueReadBuffer` of `upload` / `download` (reductions
    /// read their partial sums through `download`, so they are counted too).
    public private(set) var transfers = TransferCounts()

    /// im2col columns ([Cin*k*k][images*OH*OW]) and the column gradients of backward-data.
    let columns = OpenCLWorkspace(name: "convolution column")
    /// Channel-major GEMM products and permuted output gradients ([Cout][images*OH*OW]).
    let staging = OpenCLWorkspace(name: "convolution staging")
    /// Per-work-group partial sums of `sum` / `sumOfSquares`.
    let partials = OpenCLWorkspace(name: "reduction partials")
    /// Convolutions run in chunks of images so that each workspace stays below this many bytes
    /// (and below the device's largest allocation). Lowered by tests to exercise chunking.
    var convolutionWorkspaceLimitBytes = 256 << 20
    /// Forward and backward-data run in smaller chunks on CPU devices, so that a chunk's im2col
    /// columns are still in cache when conv_gemm reads them (8 MiB on PoCL: about 20% less time per
    /// wrn-10-2 SGLD step than 256 MiB chunks, measured in alternating runs); no extra limit on GPUs.
    let convolutionCacheChunkBytes: Int
    /// Filter gradients image by image on conv_gemm (CPU devices), or over chunks on CLBlast (GPUs,
    /// where one launch per image would leave the device idle). Tests switch it to check both.
    var filterGradientOnConvGemm: Bool
    /// `JEM_OPENCL_PROFILE=1`: every launch waits for its kernel, and its wall time is added to
    /// `profile[name]` (seconds, calls) for benchmarks to print. Off by default (it serialises the queue).
    let profiling = ProcessInfo.processInfo.environment["JEM_OPENCL_PROFILE"] == "1"
    public internal(set) var profile: [String: (seconds: Double, calls: Int)] = [:]
    /// The register tile of the convolutions' GEMM kernel (`conv_gemm`) on this device. Tests set
    /// it before the conv program is first built, to check the other device kind's tile on PoCL.
    var convGemmTile: ConvGemmTile
    /// Autotuning of the convolution paths (OpenCLBackend+ConvolutionTuning.swift): off on CPU
    /// devices unless asked for, tuned on first use on GPUs.
    let convolutionTuner: ConvolutionTuner

    /// Opens the selected device (see `OpenCLRuntime.devices()` for the list). `programCache`
    /// defaults to the folder the environment names (`JEM_GPU_CACHE_DIR`, `XDG_CACHE_HOME`, `HOME`).
    public init(selection: OpenCLDeviceSelection = .first,
                programCache: OpenCLProgramCache = .fromEnvironment()) throws {
        self.programCache = programCache
        let entries = try OpenCLRuntime.enumerate()
        let entry = entries[try selection.position(in: entries.map(\.info))]
        device = entry.info
        deviceID = entry.device

        var status: cl_int = 0
        var properties: [cl_context_properties] = [
            cl_context_properties(CL_CONTEXT_PLATFORM), cl_context_properties(Int(bitPattern: entry.platform)), 0,
        ]
        var id: cl_device_id? = entry.device
        let context = clCreateContext(&properties, 1, &id, nil, nil, &status)
        try OpenCLStatus.check(status, "clCreateContext on \(entry.info.name)")
        let queue = Self.makeQueue(context: context, device: entry.device, deviceVersion: entry.info.deviceVersion,
                                   status: &status)
        if status != CL_SUCCESS || queue == nil {
            clReleaseContext(context)
            throw BackendError("creating a command queue on \(entry.info.name) failed: \(OpenCLStatus.name(status))")
        }
        self.context = context
        self.queue = queue

        // "OpenCL C 1.2 ..." or later: ask for 1.2 explicitly (the kernels use nothing newer).
        let cVersion = OpenCLRuntime.deviceString(entry.device, CL_DEVICE_OPENCL_C_VERSION)
        var options = cVersion.hasPrefix("OpenCL C 1.0") || cVersion.hasPrefix("OpenCL C 1.1") ? [] : ["-cl-std=CL1.2"]
        let fpConfig = OpenCLRuntime.deviceScalar(entry.device, CL_DEVICE_SINGLE_FP_CONFIG, cl_device_fp_config(0))
        if fpConfig & cl_device_fp_config(CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0 {
            options.append("-cl-fp32-correctly-rounded-divide-sqrt")
        }
        buildOptions = options.joined(separator: " ")
        convGemmTile = ConvGemmTile.defaultTile(for: entry.info)
        convolutionCacheChunkBytes = entry.info.isGPU ? Int.max : 8 << 20
        filterGradientOnConvGemm = !entry.info.isGPU
        convolutionTuner = ConvolutionTuner(mode: ConvolutionTuningMode.defaultMode(isGPU: entry.info.isGPU))
    }

    deinit {
        clFinish(queue)
        if profiling, !profile.isEmpty {
            let total = profile.values.reduce(0) { $0 + $1.seconds }
            var lines = ["OpenCL profile (JEM_OPENCL_PROFILE=1), \(String(format: "%.3f", total)) s in all:"]
            for (name, entry) in profile.sorted(by: { $0.value.seconds > $1.value.seconds }) {
                lines.append(String(format: "  %-40@ %8.3f s %6d calls %8.3f ms/call", name as NSString, entry.seconds,
                                    entry.calls, 1000 * entry.seconds / Double(entry.calls)))
            }
            FileHandle.standardError.write((lines.joined(separator: "\n") + "\n").data(using: .utf8)!)
        }
        kernels.removeAll()
        programs.removeAll()
        clReleaseCommandQueue(queue)
        clReleaseContext(context)
    }

    /// An in-order queue: `clCreateCommandQueueWithProperties` on OpenCL 2.0+ devices, the 1.x
    /// entry point (looked up at run time, so no deprecated symbol is referenced) on older ones.
    private static func makeQueue(context: cl_context?, device: cl_device_id, deviceVersion: String,
                                  status: inout cl_int) -> cl_command_queue? {
        let major = deviceVersion.split(separator: " ").dropFirst().first
            .flatMap { $0.split(separator: ".").first }.flatMap { Int($0) } ?? 1
        if major >= 2 {
            return clCreateCommandQueueWithProperties(context, device, nil, &status)
        }
        typealias CreateQueue = @convention(c) (cl_context?, cl_device_id?, cl_command_queue_properties,
                                                UnsafeMutablePointer<cl_int>?) -> cl_command_queue?
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "clCreateCommandQueue") else {
            status = CL_INVALID_OPERATION
            return nil
        }
        return unsafeBitCast(symbol, to: CreateQueue.self)(context, device, 0, &status)
    }

    /// "OpenCL: NVIDIA H100 80GB HBM3 (NVIDIA CUDA, 132 CUs, 79.1 GiB)".
    public var deviceDescription: String {
        "OpenCL: \(device.name) (\(device.platformName), \(device.computeUnits) CUs, \(device.globalMemoryGiB) GiB)"
    }

    // MARK: Sticky errors

    /// Remembers `error` unless an earlier one is already remembered.
    func record(_ error: BackendError) {
        if firstError == nil { firstError = error }
    }

    /// Records a failed OpenCL call; true when `status` is CL_SUCCESS.
    @discardableResult
    func record(_ status: cl_int, _ what: @autoclosure () -> String) -> Bool {
        if status == CL_SUCCESS { return true }
        record(BackendError("\(what()) failed: \(OpenCLStatus.name(status))"))
        return false
    }

    /// Forgets a recorded error: only the convolution tuner does this, after a candidate failed.
    func clearRecordedError() {
        firstError = nil
    }

    func throwIfFailed() throws {
        if let firstError { throw firstError }
    }

    /// One buffer argument of an op and the elements the op touches in it.
    struct Use {
        let buffer: DeviceBuffer
        let count: Int
        let name: String
        let type: ElementType?

        static func floats(_ buffer: DeviceBuffer, _ count: Int, _ name: String) -> Use {
            Use(buffer: buffer, count: count, name: name, type: .float32)
        }
        static func ints(_ buffer: DeviceBuffer, _ count: Int, _ name: String) -> Use {
            Use(buffer: buffer, count: count, name: name, type: .int32)
        }
        static func any(_ buffer: DeviceBuffer, _ count: Int, _ name: String) -> Use {
            Use(buffer: buffer, count: count, name: name, type: nil)
        }
    }

    /// True when no error is pending and every buffer is one of this backend's, of the right type
    /// and large enough; otherwise records why and returns false (the op then does nothing).
    func ready(_ op: String, sizes: [Int] = [], _ uses: Use...) -> Bool {
        guard firstError == nil else { return false }
        if let bad = sizes.first(where: { $0 < 0 || $0 > Int(UInt32.max) }) {
            record(BackendError("\(op): size \(bad) is negative or above 2^32-1"))
            return false
        }
        for use in uses {
            guard let buffer = use.buffer as? OpenCLBuffer, buffer.context == context else {
                record(BackendError("\(op): \(use.name) is a \(type(of: use.buffer)) of another backend"))
                return false
            }
            if let type = use.type, buffer.type != type {
                record(BackendError("\(op): \(use.name) holds \(buffer.type), expected \(type)"))
                return false
            }
            if use.count > buffer.count {
                record(BackendError("\(op): \(use.name) needs \(use.count) elements but holds \(buffer.count)"))
                return false
            }
        }
        return true
    }

    // MARK: Buffers

    /// A new buffer, refusing sizes the device cannot hold in one allocation.
    func allocate(count: Int, type: ElementType, purpose: String) throws -> OpenCLBuffer {
        guard count >= 0 else { throw BackendError("cannot allocate a \(purpose) of \(count) elements") }
        let (bytes, overflow) = Swift.max(count, 1).multipliedReportingOverflow(by: type.size)
        guard !overflow else { throw BackendError("cannot allocate a \(purpose) of \(count) \(type) elements: too large") }
        guard UInt64(bytes) <= device.maxAllocationBytes else {
            throw BackendError("cannot allocate a \(purpose) of \(count) \(type) elements (\(bytes) bytes, "
                + "\(Self.mib(bytes)) MiB): \(device.name) allows at most \(device.maxAllocationBytes) bytes "
                + "(\(Self.mib(Int(clamping: device.maxAllocationBytes))) MiB) in one buffer (CL_DEVICE_MAX_MEM_ALLOC_SIZE); "
                + "use a smaller batch or split the data")
        }
        guard count <= Int(UInt32.max) else {
            throw BackendError("cannot allocate a \(purpose) of \(count) elements: the OpenCL kernels index "
                + "buffers with 32 bits (at most \(UInt32.max) elements)")
        }
        var status: cl_int = 0
        let mem = clCreateBuffer(context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status)
        guard status == CL_SUCCESS, mem != nil else {
            throw BackendError("allocating a \(purpose) of \(Self.mib(bytes)) MiB on \(device.name) failed: "
                + OpenCLStatus.name(status))
        }
        return OpenCLBuffer(mem: mem, context: context, count: count, type: type)
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / Double(1 << 20)) }

    public func makeBuffer(count: Int, type: ElementType) throws -> DeviceBuffer {
        try throwIfFailed()
        return try allocate(count: count, type: type, purpose: "buffer")
    }

    private func checkedBuffer(_ buffer: DeviceBuffer, offset: Int, count: Int, type: ElementType,
                               _ what: String) throws -> OpenCLBuffer {
        guard let mine = buffer as? OpenCLBuffer, mine.context == context else {
            throw BackendError("\(what): the buffer belongs to another backend (\(Swift.type(of: buffer)))")
        }
        guard mine.type == type else { throw BackendError("\(what): buffer holds \(mine.type), expected \(type)") }
        guard offset >= 0, count >= 0, offset + count <= mine.count else {
            throw BackendError("\(what): range \(offset)..<\(offset + count) outside a buffer of \(mine.count)")
        }
        return mine
    }

    private func write<T>(_ values: [T], to buffer: DeviceBuffer, offset: Int, type: ElementType) throws {
        try throwIfFailed()
        let target = try checkedBuffer(buffer, offset: offset, count: values.count, type: type, "upload")
        guard !values.isEmpty else { return }
        let status = values.withUnsafeBytes { bytes in
            clEnqueueWriteBuffer(queue, target.mem, cl_bool(CL_TRUE), offset * type.size, bytes.count,
                                 bytes.baseAddress, 0, nil, nil)
        }
        try OpenCLStatus.check(status, "upload of \(values.count) elements")
        transfers.recordUpload(bytes: values.count * type.size)
    }

    private func read<T>(_ buffer: DeviceBuffer, offset: Int, count: Int, type: ElementType, as _: T.Type) throws -> [T] {
        try throwIfFailed()
        let source = try checkedBuffer(buffer, offset: offset, count: count, type: type, "download")
        guard count > 0 else { return [] }
        var status: cl_int = 0
        let values = [T](unsafeUninitializedCapacity: count) { pointer, initialized in
            status = clEnqueueReadBuffer(queue, source.mem, cl_bool(CL_TRUE), offset * type.size,
                                         count * type.size, pointer.baseAddress, 0, nil, nil)
            initialized = count
        }
        if status != CL_SUCCESS { record(status, "download of \(count) elements") }
        try throwIfFailed()
        transfers.recordDownload(bytes: count * type.size)
        return values
    }

    public func upload(_ values: [Float], to buffer: DeviceBuffer, offset: Int) throws {
        try write(values, to: buffer, offset: offset, type: .float32)
    }

    public func upload(_ values: [Int32], to buffer: DeviceBuffer, offset: Int) throws {
        try write(values, to: buffer, offset: offset, type: .int32)
    }

    public func download(_ buffer: DeviceBuffer, offset: Int, count: Int) throws -> [Float] {
        try read(buffer, offset: offset, count: count, type: .float32, as: Float.self)
    }

    public func downloadInt32(_ buffer: DeviceBuffer, offset: Int, count: Int) throws -> [Int32] {
        try read(buffer, offset: offset, count: count, type: .int32, as: Int32.self)
    }

    public func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer,
                     destinationOffset: Int, count: Int) {
        guard count >= 0, sourceOffset >= 0, destinationOffset >= 0 else {
            record(BackendError("copy: negative count or offset (\(count) from \(sourceOffset) to \(destinationOffset))"))
            return
        }
        guard count > 0 else { return }
        guard ready("copy", .any(source, sourceOffset + count, "source"),
                    .any(destination, destinationOffset + count, "destination")),
              let from = source as? OpenCLBuffer, let to = destination as? OpenCLBuffer else { return }
        if from === to {
            if sourceOffset == destinationOffset { return }
            if abs(sourceOffset - destinationOffset) < count {
                // Overlapping ranges (memmove semantics): OpenCL refuses them, so go through scratch.
                do {
                    let scratch = try staging.reserve(count, using: self)
                    enqueueCopy(from, sourceOffset, scratch, 0, count)
                    enqueueCopy(scratch, 0, to, destinationOffset, count)
                } catch let error as BackendError {
                    record(error)
                } catch {
                    record(BackendError("copy: \(error)"))
                }
                return
            }
        }
        enqueueCopy(from, sourceOffset, to, destinationOffset, count)
    }

    private func enqueueCopy(_ from: OpenCLBuffer, _ fromOffset: Int, _ to: OpenCLBuffer, _ toOffset: Int,
                             _ count: Int) {
        record(clEnqueueCopyBuffer(queue, from.mem, to.mem, fromOffset * 4, toOffset * 4, count * 4, 0, nil, nil),
               "copy of \(count) elements")
    }

    public func synchronize() throws {
        if firstError == nil { record(clFinish(queue), "clFinish") }
        try throwIfFailed()
    }
}

/// The tile shape of `conv_gemm` (Kernels/convolution.cl), fixed per device kind and compiled into the
/// conv program as #defines. A work-item computes `rows` x (`vectors` x `width`) outputs.
/// - CPU devices (PoCL): 4 x 64 per work-item in float16 registers, which PoCL's pthread device
///   keeps in 16 AVX-512 accumulators (measured on this 2-core VM: 110-145 GFLOP/s on the
///   conv shapes, against 10-26 for CLBlast's untuned kernels); small work-groups of row blocks.
/// - GPUs: 4 x 4 per work-item, work-groups of 4 x 16 work-items (consecutive work-items on
///   consecutive column blocks), the usual register tile of a GEMM on a GPU.
struct ConvGemmTile: Equatable {
    let rows: Int
    let vectors: Int
    let width: Int
    let localRows: Int
    let localColumns: Int
    var columns: Int { vectors * width }

    static let cpu = ConvGemmTile(rows: 4, vectors: 4, width: 16, localRows: 2, localColumns: 1)
    static let gpu = ConvGemmTile(rows: 4, vectors: 1, width: 4, localRows: 4, localColumns: 16)

    /// The #defines that select this tile in Kernels/convolution.cl.
    var defines: String {
        "#define GEMM_MR \(rows)\n#define GEMM_NV \(vectors)\n#define GEMM_VW \(width)\n"
    }
}

extension OpenCLBackend {
    /// Runs `body` (which enqueues work) and, when profiling, waits for it and charges its time to `name`.
    func profiled(_ name: @autoclosure () -> String, _ body: () -> Void) {
        guard profiling else { return body() }
        clFinish(queue)
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        clFinish(queue)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let key = name()
        let old = profile[key] ?? (0, 0)
        profile[key] = (old.seconds + seconds, old.calls + 1)
    }
}
