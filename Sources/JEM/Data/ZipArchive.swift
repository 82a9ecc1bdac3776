import Foundation
import JEMBackend

/// A minimal zip reader for .npz files: the end-of-central-directory record (and its zip64
/// form), central-directory entries, local file headers, stored (0) or deflated (8) members,
/// each checked against its CRC-32.
struct ZipArchive {
    struct Entry {
        let name: String
        let method: UInt16
        let crc: UInt32
        let compressedSize: Int
        let uncompressedSize: Int
        let localHeaderOffset: Int
    }

    let bytes: [UInt8]
    let entries: [Entry]
    let file: String

    init(path: String) throws {
        try self.init(bytes: try DataFiles.read(path), file: path)
    }

    init(bytes: [UInt8], file: String) throws {
        self.bytes = bytes
        self.file = file
        guard bytes.count >= 22 else {
            throw DataError(file, "truncated: \(bytes.count) bytes is too short for a zip archive (.npz), expected at least 22")
        }
        // The end-of-central-directory record sits in the last 22 + 65535 bytes.
        var eocd = -1
        var p = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65535)
        while p >= lowest {
            if bytes[p] == 0x50 && bytes[p + 1] == 0x4B && bytes[p + 2] == 0x05 && bytes[p + 3] == 0x06 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else {
            let isZip = bytes[0] == 0x50 && bytes[1] == 0x4B
            throw DataError(file, isZip ? "truncated or corrupt zip archive: no end-of-central-directory record"
                                        : "wrong magic, expected a zip archive (PK) as written by numpy.savez")
        }
        var c = ByteCursor(bytes, file: file)
        c.what = "zip end-of-central-directory record"
        try c.seek(toOffset: eocd + 10)
        var entryCount = Int(try c.u16())
        var cdSize = Int(try c.u32())
        var cdOffset = Int(try c.u32())
        if entryCount == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // zip64: locator 20 bytes before the EOCD points at the zip64 EOCD record.
            guard eocd >= 20 else { throw DataError(file, "corrupt zip64 archive: no zip64 locator") }
            try c.seek(toOffset: eocd - 20)
            guard try c.u32() == 0x0706_4B50 else { throw DataError(file, "corrupt zip64 archive: bad zip64 locator") }
            try c.skip(4)
            guard let recordOffset = CheckedSize.int(try c.u64()) else { throw DataError(file, "corrupt zip64 locator offset") }
            try c.seek(toOffset: recordOffset, "zip64 end-of-central-directory record")
            guard try c.u32() == 0x0606_4B50 else { throw DataError(file, "corrupt zip64 end-of-central-directory record") }
            try c.skip(8 + 2 + 2 + 4 + 4 + 8)
            guard let n = CheckedSize.int(try c.u64()), let s = CheckedSize.int(try c.u64()),
                  let o = CheckedSize.int(try c.u64()) else {
                throw DataError(file, "corrupt zip64 end-of-central-directory record: sizes overflow")
            }
            (entryCount, cdSize, cdOffset) = (n, s, o)
        }
        guard cdOffset <= bytes.count, cdSize <= bytes.count - cdOffset else {
            throw DataError(file, "truncated or corrupt zip archive: central directory at \(cdOffset) (\(cdSize) bytes) "
                            + "lies outside the \(bytes.count)-byte file")
        }
        guard entryCount <= cdSize / 46 else {
            throw DataError(file, "corrupt zip archive: \(entryCount) entries cannot fit in a \(cdSize)-byte central directory")
        }
        var cd = ByteCursor(bytes, file: file, range: cdOffset..<(cdOffset + cdSize))
        cd.what = "zip central directory"
        var entries = [Entry]()
        for _ in 0..<entryCount {
            guard try cd.u32() == 0x0201_4B50 else {
                throw DataError(file, "corrupt zip central directory entry at offset \(cd.position - 4)")
            }
            try cd.skip(6)
            let method = try cd.u16()
            try cd.skip(4)
            let crc = try cd.u32()
            var compressed = Int(try cd.u32())
            var uncompressed = Int(try cd.u32())
            let nameLength = Int(try cd.u16()), extraLength = Int(try cd.u16()), commentLength = Int(try cd.u16())
            try cd.skip(8)
            var localOffset = Int(try cd.u32())
            let name = String(decoding: try cd.take(nameLength, "zip entry name"), as: UTF8.self)
            var extra = ByteCursor(bytes, file: file, range: try cd.range(extraLength, "zip extra field"))
            try cd.skip(commentLength, "zip entry comment")
            // zip64 extended information: the 64-bit forms of the fields that read 0xFFFFFFFF.
            while extra.remaining >= 4 {
                let id = try extra.u16(), size = Int(try extra.u16())
                var field = ByteCursor(bytes, file: file, range: try extra.range(size, "zip extra field"))
                guard id == 0x0001 else { continue }
                func wide() throws -> Int {
                    guard let v = CheckedSize.int(try field.u64()) else {
                        throw DataError(file, "corrupt zip64 size in entry '\(name)'")
                    }
                    return v
                }
                if uncompressed == 0xFFFF_FFFF { uncompressed = try wide() }
                if compressed == 0xFFFF_FFFF { compressed = try wide() }
                if localOffset == 0xFFFF_FFFF { localOffset = try wide() }
            }
            entries.append(Entry(name: name, method: method, crc: crc, compressedSize: compressed,
                                 uncompressedSize: uncompressed, localHeaderOffset: localOffset))
        }
        self.entries = entries
    }

    func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// The member's bytes, decompressed and CRC-checked.
    func extract(_ e: Entry) throws -> [UInt8] {
        let label = "\(file): \(e.name)"
        var c = ByteCursor(bytes, file: label)
        c.what = "zip local file header"
        try c.seek(toOffset: e.localHeaderOffset, "local file header")
        guard try c.u32() == 0x0403_4B50 else {
            throw DataError(label, "corrupt zip archive: no local file header at offset \(e.localHeaderOffset)")
        }
        try c.skip(22)
        let nameLength = Int(try c.u16()), extraLength = Int(try c.u16())
        try c.skip(nameLength + extraLength)
        let data = try c.range(e.compressedSize, "zip member data (\(e.compressedSize) bytes)")
        let out: [UInt8]
        switch e.method {
        case 0:
            guard e.compressedSize == e.uncompressedSize else {
                throw DataError(label, "corrupt zip entry: stored member sizes differ (\(e.compressedSize) vs \(e.uncompressedSize))")
            }
            out = Array(bytes[data])
        case 8:
            guard e.uncompressedSize <= ZlibCodec.maxExpansion(e.compressedSize) else {
                throw DataError(label, "corrupt zip entry: \(e.compressedSize) compressed bytes cannot inflate to the declared \(e.uncompressedSize)")
            }
            out = try ZlibCodec.inflate(bytes, range: data, wrapper: .raw, file: label, what: "deflated zip member",
                                        expected: e.uncompressedSize, maxOutput: e.uncompressedSize)
        default:
            throw DataError(label, "zip compression method \(e.method) is not supported (expected stored or deflated)")
        }
        guard ZlibCodec.crc32(out) == e.crc else {
            throw DataError(label, "corrupt zip member: CRC-32 mismatch")
        }
        return out
    }
}
