import CLKernels
import COpenCL
import Foundation

/// A built OpenCL program (one .cl file, includes inlined), released with the object.
public final class OpenCLProgram {
    /// The name it was built under (the .cl file name without extension, for the kernel files).
    public let name: String
    let handle: cl_program?

    init(name: String, handle: cl_program?) {
        self.name = name
        self.handle = handle
    }

    deinit { clReleaseProgram(handle) }
}

/// The kernel files of `Kernels/`, each built into one program on first use.
enum KernelFile: String, CaseIterable {
    case convolution, pointwise, loss, sampling, optimizers, reductions, random
}

/// Where a built program came from.
public enum ProgramOrigin: String, Sendable {
    /// Compiled from its OpenCL C source in this process.
    case source
    /// Loaded from a binary of the on-disk program cache.
    case cache
}

extension OpenCLBackend {
    /// Compiles `source` for this backend's device. A failure throws a `BackendError` that holds
    /// the compiler's build log. The kernel cache builds every `Kernels/*.cl` file through this,
    /// at most once per backend; it is public so that tests and tools can build their own source.
    @discardableResult
    public func buildProgram(source: String, name: String) throws -> OpenCLProgram {
        var status: cl_int = 0
        let handle: cl_program? = source.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            var length = strlen(text)
            return clCreateProgramWithSource(context, 1, &pointer, &length, &status)
        }
        try OpenCLStatus.check(status, "clCreateProgramWithSource(\(name))")
        let program = OpenCLProgram(name: name, handle: handle)
        var deviceID = self.deviceID
        let started = Date()
        let built = clBuildProgram(handle, 1, &deviceID, buildOptions, nil, nil)
        buildSeconds[name] = Date().timeIntervalSince(started)
        if built != CL_SUCCESS {
            let log = buildLog(handle)
            throw BackendError("cannot build OpenCL program '\(name)' for \(device.name) "
                + "(\(OpenCLStatus.name(built)), options '\(buildOptions)'); build log:\n"
                + (log.isEmpty ? "(empty)" : log))
        }
        return program
    }

    private func buildLog(_ program: cl_program?) -> String {
        var size = 0
        let logInfo = cl_program_build_info(CL_PROGRAM_BUILD_LOG)
        guard clGetProgramBuildInfo(program, deviceID, logInfo, 0, nil, &size) == CL_SUCCESS, size > 0 else {
            return ""
        }
        var bytes = [UInt8](repeating: 0, count: size)
        guard clGetProgramBuildInfo(program, deviceID, logInfo, size, &bytes, nil) == CL_SUCCESS else { return "" }
        return OpenCLRuntime.decode(bytes)
    }

    /// Builds a program from a binary `clGetProgramInfo(CL_PROGRAM_BINARIES)` gave for this device;
    /// nil when the driver refuses it (the caller then builds from source).
    func buildProgram(binary: [UInt8], name: String) -> OpenCLProgram? {
        var deviceID = self.deviceID
        var length = binary.count
        var binaryStatus: cl_int = 0, status: cl_int = 0
        let started = Date()
        let handle: cl_program? = binary.withUnsafeBufferPointer { bytes in
            var pointer: UnsafePointer<UInt8>? = bytes.baseAddress
            return clCreateProgramWithBinary(context, 1, &deviceID, &length, &pointer, &binaryStatus, &status)
        }
        guard status == CL_SUCCESS, binaryStatus == CL_SUCCESS, handle != nil else {
            if handle != nil { clReleaseProgram(handle) }
            return nil
        }
        let program = OpenCLProgram(name: name, handle: handle)
        // A binary still needs clBuildProgram (it links the device code); it skips the C compiler.
        guard clBuildProgram(handle, 1, &deviceID, buildOptions, nil, nil) == CL_SUCCESS else { return nil }
        buildSeconds[name] = Date().timeIntervalSince(started)
        return program
    }

    /// The device binary of a built program, or nil when the driver gives none.
    func binary(of program: OpenCLProgram) -> [UInt8]? {
        var size = 0
        guard clGetProgramInfo(program.handle, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size,
                               &size, nil) == CL_SUCCESS, size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: size)
        let status = bytes.withUnsafeMutableBufferPointer { buffer in
            // One device in the context, so one pointer in the array the query fills.
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            return clGetProgramInfo(program.handle, cl_program_info(CL_PROGRAM_BINARIES),
                                    MemoryLayout<UnsafeMutablePointer<UInt8>?>.size, &pointer, nil)
        }
        return status == CL_SUCCESS ? bytes : nil
    }

    /// The program of `Kernels/<file>.cl`, built on first use and kept for the backend's life:
    /// from the on-disk cache when it holds a binary for this device, driver, source and options,
    /// else from source (and the binary stored for the next process).
    func program(_ file: KernelFile) throws -> OpenCLProgram {
        if let cached = programs[file] { return cached }
        let name = file.rawValue
        guard var source = CLKernels.resolvedSource(name) else {
            throw BackendError("kernel file \(name).cl is not embedded in this build (or one of its "
                + "#include files is missing)")
        }
        // The conv GEMM's tile is chosen per device (part of the source, so of the cache key too).
        if file == .convolution { source = convGemmTile.defines + source }
        let key = OpenCLProgramCache.key(device: device, buildOptions: buildOptions, source: source)
        if let stored = programCache.load(name: name, key: key), let built = buildProgram(binary: stored, name: name) {
            programs[file] = built
            programOrigins[name] = .cache
            return built
        }
        let built = try buildProgram(source: source, name: name)
        programs[file] = built
        programOrigins[name] = .source
        if programCache.directory != nil, let compiled = binary(of: built) {
            programCache.store(name: name, key: key, binary: compiled)
        }
        return built
    }

    /// Kernel `name` of `Kernels/<file>.cl`, created once and reused.
    func kernel(_ name: String, in file: KernelFile) throws -> OpenCLKernel {
        if let cached = kernels[name] { return cached }
        let program = try program(file)
        var status: cl_int = 0
        let handle = clCreateKernel(program.handle, name, &status)
        try OpenCLStatus.check(status, "clCreateKernel(\(name)) in \(file.rawValue).cl")
        let created = OpenCLKernel(name: name, handle: handle, deviceID: deviceID,
                                   deviceMaxWorkGroupSize: device.maxWorkGroupSize)
        kernels[name] = created
        return created
    }
}
