import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bounds-checked reading of a byte buffer: every read first checks that the bytes are there and
/// throws a `DataError` naming `file` when they are not, so a truncated or corrupt file can never
/// cause an out-of-bounds read.
struct ByteCursor {
    let bytes: [UInt8]
    /// Where reading may start and must stop (a member inside a larger buffer).
    let start: Int
    let end: Int
    var position: Int
    /// The file named in errors.
    let file: String
    /// Names the structure being read in "truncated" errors, e.g. "IDX header".
    var what = "data"

    init(_ bytes: [UInt8], file: String, range: Range<Int>? = nil) {
        self.bytes = bytes
        let r = range ?? 0..<bytes.count
        start = r.lowerBound
        end = r.upperBound
        position = r.lowerBound
        self.file = file
    }

    var remaining: Int { end - position }
    var offset: Int { position - start }
    var atEnd: Bool { position >= end }

    func error(_ message: String) -> DataError { DataError(file, message) }

    /// Throws unless `count` more bytes are available.
    func need(_ count: Int, _ what: String? = nil) throws {
        if count < 0 || count > remaining {
            throw error("truncated \(what ?? self.what): needs \(count) bytes at offset \(offset), "
                        + "but only \(max(remaining, 0)) remain")
        }
    }

    mutating func skip(_ count: Int, _ what: String? = nil) throws {
        try need(count, what)
        position += count
    }

    mutating func seek(toOffset newOffset: Int, _ what: String? = nil) throws {
        guard newOffset >= 0, newOffset <= end - start else {
            throw error("\(what ?? self.what) offset \(newOffset) lies outside the \(end - start)-byte file")
        }
        position = start + newOffset
    }

    mutating func u8() throws -> UInt8 {
        try need(1)
        defer { position += 1 }
        return bytes[position]
    }

    mutating func u16(bigEndian: Bool = false) throws -> UInt16 {
        try need(2)
        defer { position += 2 }
        let a = UInt16(bytes[position]), b = UInt16(bytes[position + 1])
        return bigEndian ? (a << 8 | b) : (b << 8 | a)
    }

    mutating func u32(bigEndian: Bool = false) throws -> UInt32 {
        try need(4)
        defer { position += 4 }
        var v: UInt32 = 0
        for i in 0..<4 {
            let byte = UInt32(bytes[position + (bigEndian ? i : 3 - i)])
            v = v << 8 | byte
        }
        return v
    }

    mutating func u64(bigEndian: Bool = false) throws -> UInt64 {
        try need(8)
        defer { position += 8 }
        var v: UInt64 = 0
        for i in 0..<8 {
            let byte = UInt64(bytes[position + (bigEndian ? i : 7 - i)])
            v = v << 8 | byte
        }
        return v
    }

    /// The next `count` bytes as a range into `bytes` (no copy).
    mutating func range(_ count: Int, _ what: String? = nil) throws -> Range<Int> {
        try need(count, what)
        defer { position += count }
        return position..<(position + count)
    }

    mutating func take(_ count: Int, _ what: String? = nil) throws -> [UInt8] {
        Array(bytes[try range(count, what)])
    }
}

/// Overflow-safe size arithmetic for sizes read from headers.
enum CheckedSize {
    /// The product of `factors`, or nil when any is negative or the product overflows `Int`.
    static func product<S: Sequence>(_ factors: S) -> Int? where S.Element == Int {
        var p = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (r, overflow) = p.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            p = r
        }
        return p
    }

    static func multiply(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o ? nil : r
    }

    static func add(_ a: Int, _ b: Int) -> Int? {
        let (r, o) = a.addingReportingOverflow(b)
        return o ? nil : r
    }

    /// `UInt64` to `Int`, nil when it does not fit.
    static func int(_ v: UInt64) -> Int? { v <= UInt64(Int.max) ? Int(v) : nil }

    /// `a × b × …` written for messages, e.g. `60000×28×28`.
    static func shape(_ dims: [Int]) -> String { dims.map(String.init).joined(separator: "×") }
}

/// Reading whole files and listing folders with errors that name the path.
enum DataFiles {
    /// Files larger than this are refused before any allocation (no dataset file is near it).
    static let maxFileBytes = 1 << 36

    /// The whole file at `path`.
    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            throw DataError(path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DataError(path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw DataError(path, "is a folder, expected a file") }
        let size = Int(st.st_size)
        guard size >= 0, size <= maxFileBytes else {
            throw DataError(path, "file of \(size) bytes is larger than the \(maxFileBytes)-byte limit")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        let failure: Int32 = bytes.withUnsafeMutableBytes { buf -> Int32 in
            while done < size {
                let n = Glibc.read(fd, buf.baseAddress! + done, min(size - done, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if n == 0 { break }
                done += n
            }
            return 0
        }
        if failure != 0 { throw DataError(path, "read failed: \(String(cString: strerror(failure)))") }
        if done < size { bytes.removeSubrange(done...) }  // the file shrank while being read
        return bytes
    }

    enum Kind { case file, folder, missing }

    static func kind(_ path: String) -> Kind {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return .missing }
        return isDir.boolValue ? .folder : .file
    }

    /// Non-hidden entries of a folder, sorted by their UTF-8 bytes (Python's `sorted` order).
    static func list(_ path: String) throws -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw DataError(path, "cannot list folder: \((error as NSError).localizedDescription)")
        }
        return names.filter { !$0.hasPrefix(".") }.sorted(by: utf8Less)
    }

    static func utf8Less(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    static func basename(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
        if let slash = p.lastIndex(of: "/") { return String(p[p.index(after: slash)...]) }
        return String(p)
    }
}
