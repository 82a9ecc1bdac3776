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
    case conv, elementwise, logsumexp, sgld, adam, reduce, philox
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

    /// The program of `Kernels/<file>.cl`, built on first use and cached.
    func program(_ file: KernelFile) throws -> OpenCLProgram {
        if let cached = programs[file] { return cached }
        guard let source = CLKernels.resolvedSource(file.rawValue) else {
            throw BackendError("kernel file \(file.rawValue).cl is not embedded in this build (or one of its "
                + "#include files is missing)")
        }
        let built = try buildProgram(source: source, name: file.rawValue)
        programs[file] = built
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
