import COpenCL

/// Device memory of an `OpenCLBackend`: one `cl_mem`, released with the buffer.
public final class OpenCLBuffer: DeviceBuffer, @unchecked Sendable {
    /// The buffer object (never nil; typed optional as OpenCL's C API wants it).
    let mem: cl_mem?
    /// The context it belongs to, so a backend can refuse buffers of another one.
    let context: cl_context?

    init(mem: cl_mem?, context: cl_context?, count: Int, type: ElementType) {
        self.mem = mem
        self.context = context
        super.init(count: count, type: type)
    }

    deinit { clReleaseMemObject(mem) }
}

/// A grow-only device scratch buffer kept by the backend (im2col columns, permuted gradients,
/// reduction partials): reallocated only when a larger size is asked for.
final class OpenCLWorkspace {
    let name: String
    private(set) var buffer: OpenCLBuffer?

    init(name: String) { self.name = name }

    /// A buffer of at least `count` floats.
    func reserve(_ count: Int, using backend: OpenCLBackend) throws -> OpenCLBuffer {
        if let buffer, buffer.count >= count { return buffer }
        buffer = nil    // release the old one first (pending commands keep it alive until they finish)
        let grown = try backend.allocate(count: Swift.max(count, 1), type: .float32, purpose: "\(name) workspace")
        buffer = grown
        return grown
    }
}
