import Foundation

/// Which OpenCL device a backend should open.
public enum OpenCLDeviceSelection: Sendable, Equatable, CustomStringConvertible {
    /// The first GPU in `OpenCLRuntime.devices()` order; an error when there is none.
    case firstGPU
    /// The first device of any type.
    case first
    /// Device `device` of platform `platform` (the indices `OpenCLDeviceInfo` reports).
    case index(platform: Int, device: Int)
    /// Position in `OpenCLRuntime.devices()`.
    case flatIndex(Int)
    /// The first device whose name contains the text (case-insensitive); when no device name
    /// matches, the first whose platform name or vendor does.
    case nameContains(String)

    /// Reads a user's choice: "2" is `.flatIndex(2)`, "0:1" is `.index(platform: 0, device: 1)`,
    /// anything else is `.nameContains(text)` (case-insensitive).
    public static func parse(_ text: String) -> OpenCLDeviceSelection {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let flat = Int(trimmed), flat >= 0 { return .flatIndex(flat) }
        let parts = trimmed.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 2, let platform = Int(parts[0]), let device = Int(parts[1]), platform >= 0, device >= 0 {
            return .index(platform: platform, device: device)
        }
        return .nameContains(trimmed)
    }

    public var description: String {
        switch self {
        case .firstGPU: return "first GPU"
        case .first: return "first device"
        case .index(let platform, let device): return "device \(platform):\(device)"
        case .flatIndex(let index): return "device #\(index)"
        case .nameContains(let text): return "device matching '\(text)'"
        }
    }

    /// The position in `devices` this selection names, or a one-line error listing the devices.
    func position(in devices: [OpenCLDeviceInfo]) throws -> Int {
        let found: Int?
        switch self {
        case .firstGPU:
            found = devices.firstIndex { $0.isGPU }
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
        }
        guard let found else {
            let list = devices.enumerated().map { "#\($0.offset) \($0.element)" }.joined(separator: "; ")
            let what: String
            switch self {
            case .firstGPU: what = "no OpenCL GPU found"
            case .first: what = "no OpenCL device found"
            case .index(let platform, let device): what = "no OpenCL device \(platform):\(device)"
            case .flatIndex(let index): what = "no OpenCL device #\(index)"
            case .nameContains(let text): what = "no OpenCL device matches '\(text)'"
            }
            throw BackendError("\(what) (devices: \(list)); pick one by position, platform:device or part of its name")
        }
        return found
    }
}
