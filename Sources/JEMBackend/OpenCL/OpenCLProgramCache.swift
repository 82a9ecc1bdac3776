import Foundation
import JEMSupport

/// Built OpenCL program binaries on disk, so that a second process skips the OpenCL C compiler
/// (seconds per program on PoCL, and on GPU drivers without a cache of their own).
///
/// One file per program, named by a hash of its key. The key is everything the binary depends on:
/// platform, device, device and driver versions, build options and a hash of the source; it is
/// stored in the file too and compared in full on load, together with a checksum of the binary.
/// Any entry that is missing, unreadable, truncated, corrupt or made for something else reads as a
/// miss: the program is then built from source and the entry rewritten. Writes go to a temporary
/// file renamed into place (a reader never sees half an entry), and a cache folder that cannot be
/// created or written only costs the speed-up: no cache operation ever throws.
///
/// The folder is `$JEM_GPU_CACHE_DIR/opencl` when that variable is set (an empty value turns the
/// cache off), else `$XDG_CACHE_HOME/jem-gpu/opencl`, else `~/.cache/jem-gpu/opencl`.
public struct OpenCLProgramCache: Sendable, Equatable {
    /// Where entries live; nil when the cache is off.
    public let directory: String?

    public init(directory: String?) {
        self.directory = directory
    }

    public static let disabled = OpenCLProgramCache(directory: nil)

    /// The folder the environment asks for (see the type's description).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment)
        -> OpenCLProgramCache
    {
        if let root = environment["JEM_GPU_CACHE_DIR"] {
            return OpenCLProgramCache(directory: root.isEmpty ? nil : root + "/opencl")
        }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return OpenCLProgramCache(directory: xdg + "/jem-gpu/opencl")
        }
        guard let home = environment["HOME"], !home.isEmpty else { return .disabled }
        return OpenCLProgramCache(directory: home + "/.cache/jem-gpu/opencl")
    }

    /// Bumped when the file layout changes, so that old entries read as misses.
    static let formatVersion = 1
    static let magic = Array("JEMCLBIN".utf8)

    /// The full key of one program: what must match for a stored binary to be reused.
    static func key(device: OpenCLDeviceInfo, buildOptions: String, source: String) -> String {
        [
            "format \(formatVersion)",
            "platform \(device.platformName)",
            "device \(device.name)",
            "vendor \(device.vendor)",
            "device-version \(device.deviceVersion)",
            "driver-version \(device.driverVersion)",
            "options \(buildOptions)",
            "source-md5 \(MD5.hex(Array(source.utf8))) length \(source.utf8.count)",
        ].joined(separator: "\n")
    }

    /// The entry file of `key`: `<directory>/<name>-<md5 of key>.bin`.
    func path(name: String, key: String) -> String? {
        guard let directory else { return nil }
        let safeName = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
        return "\(directory)/\(safeName)-\(MD5.hex(Array(key.utf8))).bin"
    }

    /// The stored binary for `key`, or nil (no entry, or one that fails any check).
    func load(name: String, key: String) -> [UInt8]? {
        guard let path = path(name: name, key: key),
              let data = FileManager.default.contents(atPath: path) else { return nil }
        return Self.decode([UInt8](data), key: key)
    }

    /// Stores `binary` under `key`; false when it could not (the caller carries on without).
    @discardableResult
    func store(name: String, key: String, binary: [UInt8]) -> Bool {
        guard let directory, let path = path(name: name, key: key), !binary.isEmpty else { return false }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try AtomicFile.write(Data(Self.encode(binary, key: key)), to: path)
            return true
        } catch {
            return false
        }
    }

    /// magic, u32 key length, key (UTF-8), u64 binary length, binary, MD5 of the binary (16 bytes);
    /// integers little-endian.
    static func encode(_ binary: [UInt8], key: String) -> [UInt8] {
        let keyBytes = Array(key.utf8)
        var out = magic
        out.reserveCapacity(magic.count + 12 + keyBytes.count + binary.count + 16)
        withUnsafeBytes(of: UInt32(keyBytes.count).littleEndian) { out += $0 }
        out += keyBytes
        withUnsafeBytes(of: UInt64(binary.count).littleEndian) { out += $0 }
        out += binary
        var md5 = MD5()
        md5.update(binary)
        out += md5.finalize()
        return out
    }

    static func decode(_ bytes: [UInt8], key: String) -> [UInt8]? {
        var at = 0
        func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, n <= bytes.count - at else { return nil }
            defer { at += n }
            return bytes[at..<(at + n)]
        }
        func integer(_ size: Int) -> UInt64? {
            guard let slice = take(size) else { return nil }
            return slice.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        guard take(magic.count).map(Array.init) == magic,
              let keyLength = integer(4), let storedKey = take(Int(keyLength)),
              Array(storedKey) == Array(key.utf8),
              let binaryLength = integer(8), binaryLength <= UInt64(bytes.count),
              let binary = take(Int(binaryLength)), let checksum = take(16), at == bytes.count else { return nil }
        var md5 = MD5()
        md5.update(Array(binary))
        guard md5.finalize() == Array(checksum), !binary.isEmpty else { return nil }
        return Array(binary)
    }
}
