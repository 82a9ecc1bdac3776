import Foundation

/// Which OpenCL device a backend should open.
public enum OpenCLDeviceSelection: Sendable, Equatable, CustomStringConvertible {
    /// The first GPU in `OpenCLRuntime.devices()` order; an error when there is none.
    case firstGPU
    /// The first GPU of any platform when there is one, else the first device ("auto"): with
    /// several platforms installed (PoCL, Rusticl, a vendor driver) a GPU wins over any CPU device.
    case auto
    /// The first device of any type.
    case first
    /// Device `device` of platform `platform` (the indices `OpenCLDeviceInfo` reports).
    case index(platform: Int, device: Int)
    /// Position in `OpenCLRuntime.devices()`.
    case flatIndex(Int)
    /// The first device whose name contains the text (case-insensitive); when no device name
    /// matches, the first whose platform name or vendor does.
    case nameContains(String)
    /// "platform:device" by names: the platform by name substring, the device in it by index or
    /// name substring (e.g. "rusticl:llvmpipe", "Intel:0", "portable:0"). When no platform matches,
    /// the whole text is read as `.nameContains`.
    case platformAndDevice(platform: String, device: String)

    /// Reads a user's choice: "2" is `.flatIndex(2)`, "0:1" is `.index(platform: 0, device: 1)`,
    /// "auto" is `.auto`, "gpu" is `.firstGPU`, "rusticl:llvmpipe" (either side a name or an index)
    /// is `.platformAndDevice`, anything else is `.nameContains(text)` (case-insensitive).
    public static func parse(_ text: String) -> OpenCLDeviceSelection {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let flat = Int(trimmed), flat >= 0 { return .flatIndex(flat) }
        switch trimmed.lowercased() {
        case "auto": return .auto
        case "gpu": return .firstGPU
        default: break
        }
        let parts = trimmed.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2, let platform = Int(parts[0]), let device = Int(parts[1]), platform >= 0, device >= 0 {
            return .index(platform: platform, device: device)
        }
        // A platform named by text ("rusticl:0", "intel:xeon"); "1:x" stays a name (as before).
        if parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, Int(parts[0]) == nil {
            return .platformAndDevice(platform: String(parts[0]), device: String(parts[1]))
        }
        return .nameContains(trimmed)
    }

    public var description: String {
        switch self {
        case .firstGPU: return "first GPU"
        case .auto: return "first GPU, else first device"
        case .first: return "first device"
        case .index(let platform, let device): return "device \(platform):\(device)"
        case .flatIndex(let index): return "device #\(index)"
        case .nameContains(let text): return "device matching '\(text)'"
        case .platformAndDevice(let platform, let device): return "device '\(device)' of platform '\(platform)'"
        }
    }

    /// The position in `devices` this selection names, or a one-line error listing the devices.
    public func position(in devices: [OpenCLDeviceInfo]) throws -> Int {
        let found: Int?
        switch self {
        case .firstGPU:
            found = devices.firstIndex { $0.isGPU }
        case .auto:
            found = devices.firstIndex { $0.isGPU } ?? (devices.isEmpty ? nil : 0)
        case .first:
            found = devices.isEmpty ? nil : 0
        case .index(let platform, let device):
            found = devices.firstIndex { $0.platformIndex == platform && $0.deviceIndex == device }
        case .flatIndex(let index):
            found = devices.indices.contains(index) ? index : nil
        case .nameContains(let text):
            let needle = text.lowercased()
            found = devices.firstIndex { $0.name.lowercased().contains(needle) }
                ?? devices.firstIndex {
                    $0.platformName.lowercased().contains(needle) || $0.vendor.lowercased().contains(needle)
                }
        case .platformAndDevice(let platform, let device):
            let platformNeedle = platform.lowercased(), deviceNeedle = device.lowercased()
            func platformMatches(_ d: OpenCLDeviceInfo) -> Bool {
                if let index = Int(platform) { return d.platformIndex == index }
                return d.platformName.lowercased().contains(platformNeedle)
            }
            if devices.contains(where: platformMatches) {
                found = devices.firstIndex {
                    guard platformMatches($0) else { return false }
                    if let index = Int(device) { return $0.deviceIndex == index }
                    return $0.name.lowercased().contains(deviceNeedle)
                }
            } else {
                return try OpenCLDeviceSelection.nameContains("\(platform):\(device)").position(in: devices)
            }
        }
        guard let found else {
            let list = devices.enumerated().map { "#\($0.offset) \($0.element)" }.joined(separator: "; ")
            let what: String
            switch self {
            case .firstGPU: what = "no OpenCL GPU found"
            case .auto: what = "no OpenCL device found"
            case .first: what = "no OpenCL device found"
            case .index(let platform, let device): what = "no OpenCL device \(platform):\(device)"
            case .flatIndex(let index): what = "no OpenCL device #\(index)"
            case .nameContains(let text): what = "no OpenCL device matches '\(text)'"
            case .platformAndDevice(let platform, let device):
                what = "no OpenCL device '\(device)' on platform '\(platform)'"
            }
            throw BackendError("\(what) (devices: \(list)); pick one by position, platform:device or part of its name")
        }
        return found
    }
}
