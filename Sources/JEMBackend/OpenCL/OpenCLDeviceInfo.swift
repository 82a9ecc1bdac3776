/// One OpenCL device as `OpenCLRuntime.devices()` lists it: where it is (platform and device
/// index, as the ICD loader orders them) and what it offers.
public struct OpenCLDeviceInfo: Sendable, Equatable, CustomStringConvertible {
    /// Position of the platform in `clGetPlatformIDs`' list.
    public let platformIndex: Int
    /// Position of the device in its platform's `clGetDeviceIDs(CL_DEVICE_TYPE_ALL)` list.
    public let deviceIndex: Int
    public let platformName: String
    public let name: String
    public let vendor: String
    /// CL_DEVICE_VERSION, e.g. "OpenCL 3.0 CUDA".
    public let deviceVersion: String
    /// CL_DRIVER_VERSION.
    public let driverVersion: String
    public let isGPU: Bool
    /// "GPU", "CPU", "accelerator" or "other".
    public let typeDescription: String
    public let globalMemoryBytes: UInt64
    /// The largest single buffer the device accepts (CL_DEVICE_MAX_MEM_ALLOC_SIZE).
    public let maxAllocationBytes: UInt64
    public let computeUnits: Int
    public let maxWorkGroupSize: Int

    public init(platformIndex: Int, deviceIndex: Int, platformName: String, name: String, vendor: String,
                deviceVersion: String, driverVersion: String, isGPU: Bool, typeDescription: String,
                globalMemoryBytes: UInt64, maxAllocationBytes: UInt64, computeUnits: Int,
                maxWorkGroupSize: Int) {
        self.platformIndex = platformIndex
        self.deviceIndex = deviceIndex
        self.platformName = platformName
        self.name = name
        self.vendor = vendor
        self.deviceVersion = deviceVersion
        self.driverVersion = driverVersion
        self.isGPU = isGPU
        self.typeDescription = typeDescription
        self.globalMemoryBytes = globalMemoryBytes
        self.maxAllocationBytes = maxAllocationBytes
        self.computeUnits = computeUnits
        self.maxWorkGroupSize = maxWorkGroupSize
    }

    /// Global memory in GiB, one decimal.
    public var globalMemoryGiB: String { Self.gib(globalMemoryBytes) }

    /// "0:1 GPU NVIDIA H100 80GB HBM3 (NVIDIA CUDA, 132 CUs, 79.1 GiB, max alloc 19.8 GiB)".
    public var description: String {
        "\(platformIndex):\(deviceIndex) \(typeDescription) \(name) (\(platformName), \(computeUnits) CUs, "
            + "\(globalMemoryGiB) GiB, max alloc \(Self.gib(maxAllocationBytes)) GiB)"
    }

    static func gib(_ bytes: UInt64) -> String {
        let tenths = (bytes * 10 + (1 << 29)) >> 30    // rounded to 0.1 GiB
        return "\(tenths / 10).\(tenths % 10)"
    }
}
