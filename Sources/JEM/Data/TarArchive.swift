import Foundation
import JEMBackend

/// A minimal reader of (optionally gzipped) tar archives: ustar/GNU headers with checksums,
/// GNU long names (`L`) and pax `path=` records; regular files only, as ranges into one buffer.
struct TarArchive {
    struct Member {
        let name: String
        let range: Range<Int>
    }

    /// The (decompressed) archive bytes the member ranges point into.
    let bytes: [UInt8]
    let members: [Member]
    let file: String

    /// Reads `path`, gunzipping it first when it starts with the gzip magic.
    init(path: String) throws {
        let raw = try DataFiles.read(path)
        let isGzip = raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B
        let bytes = isGzip
            ? try ZlibCodec.inflate(raw, wrapper: .auto, file: path, what: "gzip data", multiMember: true)
            : raw
        try self.init(bytes: bytes, file: path)
    }

    init(bytes: [UInt8], file: String) throws {
        self.bytes = bytes
        self.file = file
        members = try TarArchive.parse(bytes, file: file)
    }

    /// True when `bytes` hold a tar header at the start (ustar magic or a valid checksum).
    static func looksLikeTar(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 512 else { return false }
        if bytes[257..<262].elementsEqual("ustar".utf8) { return true }
        return (try? checksumMatches(bytes, at: 0)) == true
    }

    func member(named basename: String) -> Member? {
        members.first { DataFiles.basename($0.name) == basename }
    }

    func contents(_ m: Member) -> [UInt8] { Array(bytes[m.range]) }

    static func checksumMatches(_ bytes: [UInt8], at h: Int) throws -> Bool {
        guard let stored = octal(bytes[(h + 148)..<(h + 156)]) else { return false }
        var sum = 0
        for i in 0..<512 { sum += (148..<156).contains(i) ? 0x20 : Int(bytes[h + i]) }
        return sum == stored
    }

    /// A NUL/space-terminated octal field, or GNU base-256 (high bit set); nil when malformed or
    /// too large for Int.
    static func octal(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            var v = UInt64(first & 0x7F)
            for b in field.dropFirst() {
                guard v >> 55 == 0 else { return nil }
                v = v << 8 | UInt64(b)
            }
            return CheckedSize.int(v)
        }
        var v = 0
        var seenDigit = false
        for b in field {
            if b == 0 || (b == 0x20 && seenDigit) { break }
            if b == 0x20 { continue }
            guard b >= 0x30 && b <= 0x37 else { return nil }
            seenDigit = true
            guard let m = CheckedSize.multiply(v, 8), let a = CheckedSize.add(m, Int(b - 0x30)) else { return nil }
            v = a
        }
        return seenDigit ? v : 0
    }

    static func string(_ field: ArraySlice<UInt8>) -> String {
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[field.startIndex..<end], as: UTF8.self)
    }

    static func parse(_ bytes: [UInt8], file: String) throws -> [Member] {
        var members = [Member]()
        var h = 0
        var longName: String?
        var paxPath: String?
        while true {
            if h == bytes.count { break }  // no end-of-archive blocks: tolerated
            guard bytes.count - h >= 512 else {
                throw DataError(file, "truncated tar archive: a header at offset \(h) needs 512 bytes, \(bytes.count - h) remain")
            }
            if bytes[h..<(h + 512)].allSatisfy({ $0 == 0 }) { break }  // end of archive
            guard try checksumMatches(bytes, at: h) else {
                throw DataError(file, "corrupt tar header at offset \(h): checksum mismatch (not a tar archive?)")
            }
            guard let size = octal(bytes[(h + 124)..<(h + 136)]) else {
                throw DataError(file, "corrupt tar header at offset \(h): bad size field")
            }
            let dataStart = h + 512
            guard size <= bytes.count - dataStart else {
                throw DataError(file, "truncated tar archive: member at offset \(h) declares \(size) bytes, "
                                + "only \(bytes.count - dataStart) remain")
            }
            let padded = size + (512 - size % 512) % 512
            let type = bytes[h + 156]
            var name = string(bytes[h..<(h + 100)])
            if bytes[(h + 257)..<(h + 262)].elementsEqual("ustar".utf8) {
                let prefix = string(bytes[(h + 345)..<(h + 500)])
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            let data = dataStart..<(dataStart + size)
            switch type {
            case UInt8(ascii: "L"):
                longName = string(bytes[data])
            case UInt8(ascii: "x"):
                paxPath = paxRecord(bytes[data], key: "path") ?? paxPath
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                members.append(Member(name: paxPath ?? longName ?? name, range: data))
                longName = nil; paxPath = nil
            default:
                longName = nil; paxPath = nil  // directories, links, global pax headers: skipped
            }
            h = min(bytes.count, dataStart + padded)
        }
        return members
    }

    /// The value of `key` in pax extended-header records `"<len> key=value\n"`.
    static func paxRecord(_ data: ArraySlice<UInt8>, key: String) -> String? {
        let text = String(decoding: data, as: UTF8.self)
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let record = line[line.index(after: space)...]
            if record.hasPrefix(key + "=") { return String(record.dropFirst(key.count + 1)) }
        }
        return nil
    }
}
