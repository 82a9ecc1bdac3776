/// Which engine a command runs on: the global `--backend auto|cpu|opencl` convention.
public enum BackendChoice: String, Sendable, CaseIterable {
    /// The first OpenCL GPU, else the CPU backend with a one-line notice.
    case auto
    case cpu
    case opencl
}

public enum BackendSelection {
    /// Makes the backend a user asked for. `device` (for OpenCL) is a flat index from
    /// `jem-gpu devices`, `platform:device` (indices or names), `auto`, or a name substring; without
    /// one, `opencl` takes the first GPU of any platform, else the first device. `notice` is a line to print
    /// when `auto` fell back to the CPU.
    public static func make(_ choice: BackendChoice, device: String? = nil) throws
        -> (backend: any Backend, notice: String?)
    {
        switch choice {
        case .cpu:
            return (CPUBackend(), nil)
        case .opencl:
            let selection = device.map(OpenCLDeviceSelection.parse) ?? .auto
            return (try OpenCLBackend(selection: selection), nil)
        case .auto:
            let selection = device.map(OpenCLDeviceSelection.parse) ?? .firstGPU
            do {
                return (try OpenCLBackend(selection: selection), nil)
            } catch {
                return (CPUBackend(), "note: no usable OpenCL GPU (\(error)); using the CPU backend")
            }
        }
    }
}
