import COpenCL
import Foundation

/// The OpenCL platforms and devices this machine offers, through the ICD loader.
public enum OpenCLRuntime {
    /// Every device of every platform, in loader order (platform by platform). Throws a one-line
    /// `BackendError` when there is no platform at all or no device on any platform.
    public static func devices() throws -> [OpenCLDeviceInfo] {
        try enumerate().map(\.info)
    }

    /// A listed device together with its handles (valid for the life of the process).
    struct Entry {
        let info: OpenCLDeviceInfo
        let platform: cl_platform_id
        let device: cl_device_id
    }

    static var noPlatformMessage: String {
        var where_ = "/etc/OpenCL/vendors or $OCL_ICD_VENDORS"
        if let custom = ProcessInfo.processInfo.environment["OCL_ICD_VENDORS"], !custom.isEmpty {
            where_ = "OCL_ICD_VENDORS=\(custom)"
        }
        return "no OpenCL platform found (the ICD loader found no vendor driver in \(where_)); "
            + "install a driver such as pocl-opencl-icd, or the GPU vendor's OpenCL ICD"
    }

    /// Turns the answer of `clGetPlatformIDs(0, nil, &count)` into an error: no platform at all
    /// (CL_PLATFORM_NOT_FOUND_KHR = -1001 from the ICD loader, or a count of 0) gets the
    /// explanation of `noPlatformMessage`; any other failure its status name.
    static func checkPlatformQuery(status: cl_int, count: cl_uint) throws {
        if status == -1001 || (status == CL_SUCCESS && count == 0) { throw BackendError(noPlatformMessage) }
        try OpenCLStatus.check(status, "clGetPlatformIDs")
    }

    static func enumerate() throws -> [Entry] {
        var platformCount: cl_uint = 0
        try checkPlatformQuery(status: clGetPlatformIDs(0, nil, &platformCount), count: platformCount)
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        try OpenCLStatus.check(clGetPlatformIDs(platformCount, &platforms, nil), "clGetPlatformIDs")

        var entries: [Entry] = []
        var platformNames: [String] = []
        for (platformIndex, platform) in platforms.enumerated() {
            guard let platform else { continue }
            let platformName = platformString(platform, CL_PLATFORM_NAME)
            platformNames.append(platformName)
            var deviceCount: cl_uint = 0
            let found = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount)
            guard found == CL_SUCCESS, deviceCount > 0 else { continue }   // CL_DEVICE_NOT_FOUND: none here
            var devices = [cl_device_id?](repeating: nil, count: Int(deviceCount))
            guard clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &devices, nil)
                == CL_SUCCESS else { continue }
            for (deviceIndex, device) in devices.enumerated() {
                guard let device else { continue }
                entries.append(Entry(info: info(device, platformIndex: platformIndex, deviceIndex: deviceIndex,
                                                platformName: platformName),
                                     platform: platform, device: device))
            }
        }
        if entries.isEmpty {
            throw BackendError("OpenCL platform(s) \(platformNames.map { "'\($0)'" }.joined(separator: ", ")) "
                + "report no devices; check that the driver supports this machine's hardware")
        }
        return entries
    }

    private static func info(_ device: cl_device_id, platformIndex: Int, deviceIndex: Int,
                             platformName: String) -> OpenCLDeviceInfo {
        let type = deviceScalar(device, CL_DEVICE_TYPE, cl_device_type(0))
        let isGPU = type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0
        let typeDescription: String
        if isGPU {
            typeDescription = "GPU"
        } else if type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 {
            typeDescription = "CPU"
        } else if type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 {
            typeDescription = "accelerator"
        } else {
            typeDescription = "other"
        }
        return OpenCLDeviceInfo(
            platformIndex: platformIndex, deviceIndex: deviceIndex, platformName: platformName,
            name: deviceString(device, CL_DEVICE_NAME), vendor: deviceString(device, CL_DEVICE_VENDOR),
            deviceVersion: deviceString(device, CL_DEVICE_VERSION),
            driverVersion: deviceString(device, CL_DRIVER_VERSION), isGPU: isGPU,
            typeDescription: typeDescription,
            globalMemoryBytes: deviceScalar(device, CL_DEVICE_GLOBAL_MEM_SIZE, cl_ulong(0)),
            maxAllocationBytes: deviceScalar(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, cl_ulong(0)),
            computeUnits: Int(deviceScalar(device, CL_DEVICE_MAX_COMPUTE_UNITS, cl_uint(0))),
            maxWorkGroupSize: deviceScalar(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, Int(0)))
    }

    // MARK: Info queries

    /// A string property, trimmed of NULs and surrounding spaces ("" when the query fails).
    static func deviceString(_ device: cl_device_id, _ parameter: Int32) -> String {
        var size = 0
        guard clGetDeviceInfo(device, cl_device_info(parameter), 0, nil, &size) == CL_SUCCESS, size > 0 else {
            return ""
        }
        var bytes = [UInt8](repeating: 0, count: size)
        guard clGetDeviceInfo(device, cl_device_info(parameter), size, &bytes, nil) == CL_SUCCESS else { return "" }
        return decode(bytes)
    }

    static func platformString(_ platform: cl_platform_id, _ parameter: Int32) -> String {
        var size = 0
        guard clGetPlatformInfo(platform, cl_platform_info(parameter), 0, nil, &size) == CL_SUCCESS, size > 0 else {
            return ""
        }
        var bytes = [UInt8](repeating: 0, count: size)
        guard clGetPlatformInfo(platform, cl_platform_info(parameter), size, &bytes, nil) == CL_SUCCESS else {
            return ""
        }
        return decode(bytes)
    }

    /// A fixed-size property (`cl_uint`, `cl_ulong`, `size_t`, bitfields), or `fallback` when the query fails.
    static func deviceScalar<T: BitwiseCopyable>(_ device: cl_device_id, _ parameter: Int32, _ fallback: T) -> T {
        var value = fallback
        let status = withUnsafeMutableBytes(of: &value) { raw in
            clGetDeviceInfo(device, cl_device_info(parameter), raw.count, raw.baseAddress, nil)
        }
        return status == CL_SUCCESS ? value : fallback
    }

    static func decode(_ bytes: [UInt8]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
