import COpenCL

/// One argument of a kernel launch.
enum KernelArgument {
    /// A buffer of this backend (checked by the op before the launch).
    case buffer(DeviceBuffer)
    /// A `uint` argument; the value must fit in 32 bits.
    case u32(Int)
    case i32(Int32)
    case f32(Float)
    case u64(UInt64)
    /// A `uint2` / `uint4` vector argument.
    case words([UInt32])
    /// `__local float scratch[local size]`: one float per work-item of the launch's work-group.
    case localScratch
}

/// A kernel object, created once per backend and reused. Not thread-safe (`clSetKernelArg`
/// mutates it), like the backend that owns it.
final class OpenCLKernel {
    let name: String
    let handle: cl_kernel?
    /// CL_KERNEL_WORK_GROUP_SIZE for this device.
    let maxWorkGroupSize: Int

    init(name: String, handle: cl_kernel?, deviceID: cl_device_id?, deviceMaxWorkGroupSize: Int) {
        self.name = name
        self.handle = handle
        var size = 0
        let status = clGetKernelWorkGroupInfo(handle, deviceID, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                                              MemoryLayout<Int>.size, &size, nil)
        maxWorkGroupSize = Swift.max(1, status == CL_SUCCESS && size > 0 ? size : deviceMaxWorkGroupSize)
    }

    deinit { clReleaseKernel(handle) }

    /// The largest power of two that is at most `preferred` and that the kernel allows. One fixed
    /// local size per kernel also means one compiled variant on drivers that specialise on it (PoCL).
    func localSize(preferred: Int) -> Int {
        var size = 1
        while size * 2 <= Swift.min(preferred, maxWorkGroupSize) { size *= 2 }
        return size
    }

    func setArguments(_ arguments: [KernelArgument], localSize: Int) throws {
        for (index, argument) in arguments.enumerated() {
            let i = cl_uint(index)
            let status: cl_int
            switch argument {
            case .buffer(let buffer):
                guard let buffer = buffer as? OpenCLBuffer else {
                    throw BackendError("kernel \(name): argument \(index) is not an OpenCL buffer")
                }
                var mem = buffer.mem
                status = clSetKernelArg(handle, i, MemoryLayout<cl_mem?>.size, &mem)
            case .u32(let value):
                guard var v = UInt32(exactly: value) else {
                    throw BackendError("kernel \(name): argument \(index) = \(value) does not fit in 32 bits")
                }
                status = clSetKernelArg(handle, i, 4, &v)
            case .i32(var value):
                status = clSetKernelArg(handle, i, 4, &value)
            case .f32(var value):
                status = clSetKernelArg(handle, i, 4, &value)
            case .u64(var value):
                status = clSetKernelArg(handle, i, 8, &value)
            case .words(let words):
                status = words.withUnsafeBytes { clSetKernelArg(handle, i, $0.count, $0.baseAddress) }
            case .localScratch:
                status = clSetKernelArg(handle, i, localSize * MemoryLayout<Float>.size, nil)
            }
            try OpenCLStatus.check(status, "clSetKernelArg(\(name), \(index))")
        }
    }
}

extension OpenCLBackend {
    /// Launches kernel `name` of `file` over `global` work-items (rounded up here to whole
    /// work-groups of `local`) and records any failure instead of throwing.
    func launch(_ name: String, in file: KernelFile, global: [Int], local: [Int], _ arguments: [KernelArgument]) {
        guard firstError == nil, !global.contains(0) else { return }
        do {
            let kernel = try kernel(name, in: file)
            try kernel.setArguments(arguments, localSize: local.reduce(1, *))
            let rounded = zip(global, local).map { ($0 + $1 - 1) / $1 * $1 }
            var status: cl_int = CL_SUCCESS
            profiled(profileName(name, global)) {
                status = clEnqueueNDRangeKernel(queue, kernel.handle, cl_uint(global.count), nil, rounded, local,
                                                0, nil, nil)
            }
            try OpenCLStatus.check(status, "clEnqueueNDRangeKernel(\(name), global \(rounded), local \(local))")
        } catch let error as BackendError {
            record(error)
        } catch {
            record(BackendError("\(name): \(error)"))
        }
    }

    /// One work-item per element of `count` (a 1-D launch in work-groups of up to 256).
    func launchElementwise(_ name: String, in file: KernelFile, count: Int, _ arguments: [KernelArgument]) {
        guard firstError == nil, count > 0 else { return }
        do {
            let local = try kernel(name, in: file).localSize(preferred: 256)
            launch(name, in: file, global: [count], local: [local], arguments)
        } catch let error as BackendError {
            record(error)
        } catch {
            record(BackendError("\(name): \(error)"))
        }
    }

    /// `groups` work-groups of (up to) `preferredLocal` work-items each, for kernels that reduce
    /// one row or channel per work-group in local memory (`.localScratch` arguments).
    func launchGroups(_ name: String, in file: KernelFile, groups: Int, preferredLocal: Int,
                      _ arguments: [KernelArgument]) {
        guard firstError == nil, groups > 0 else { return }
        do {
            let local = try kernel(name, in: file).localSize(preferred: preferredLocal)
            launch(name, in: file, global: [groups * local], local: [local], arguments)
        } catch let error as BackendError {
            record(error)
        } catch {
            record(BackendError("\(name): \(error)"))
        }
    }
}

extension OpenCLBackend {
    /// The profile entry of a launch: the kernel, and for conv_gemm its sizes too.
    func profileName(_ name: String, _ global: [Int]) -> String {
        name == "conv_gemm" ? "\(name) \(global.map(String.init).joined(separator: "x"))" : name
    }
}
