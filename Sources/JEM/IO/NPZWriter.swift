import Foundation
import JEMBackend
import JEMSupport

/// One array for a `.npy` file: little-endian float32, int64, or a unicode string scalar.
public enum NPYValue: Sendable, Equatable {
    case float32([Float], shape: [Int])
    case int64([Int64], shape: [Int])
    /// A 0-d `<U` array (numpy reads it with `str(a)` / `a.item()`; no pickling involved).
    case string(String)

    var descr: String {
        switch self {
        case .float32: return "<f4"
        case .int64: return "<i8"
        case .string(let s): return "<U\(max(s.unicodeScalars.count, 1))"
        }
    }

    var shape: [Int] {
        switch self {
        case .float32(_, let shape), .int64(_, let shape): return shape
        case .string: return []
        }
    }
}

/// Writes NumPy `.npy` arrays and `.npz` archives (a zip of `.npy` members, stored uncompressed
/// with their CRC-32), readable with `numpy.load` without `allow_pickle`.
public enum NPZWriter {
    /// The bytes of a version 1.0 `.npy` file. The header is padded with spaces so that the data
    /// starts at a multiple of 64 bytes, as numpy writes it.
    public static func npy(_ value: NPYValue) -> [UInt8] {
        let shape = value.shape
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(value.descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = UInt16(header.utf8.count)
        out += [UInt8(length & 0xFF), UInt8(length >> 8)]
        out += Array(header.utf8)
        switch value {
        case .float32(let values, _):
            precondition(values.count == shape.reduce(1, *), "float32 array of \(values.count) for shape \(shape)")
            for v in values { appendLittleEndian(&out, v.bitPattern) }
        case .int64(let values, _):
            precondition(values.count == shape.reduce(1, *), "int64 array of \(values.count) for shape \(shape)")
            for v in values { appendLittleEndian(&out, UInt64(bitPattern: v)) }
        case .string(let s):
            let scalars = s.unicodeScalars.isEmpty ? [Unicode.Scalar(0)] : Array(s.unicodeScalars)
            for u in scalars { appendLittleEndian(&out, u.value) }
        }
        return out
    }

    /// The bytes of an `.npz` archive holding `arrays` as `<name>.npy` members, in order.
    public static func npz(_ arrays: [(name: String, value: NPYValue)]) throws -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        for (name, value) in arrays {
            let member = npy(value)
            let fileName = Array((name + ".npy").utf8)
            guard member.count < 0xFFFF_FFFF, out.count < 0xFFFF_FFFF, fileName.count <= 0xFFFF else {
                throw IOError("\(name): array too large for a zip archive without zip64 (\(member.count) bytes)")
            }
            let crc = ZlibCodec.crc32(member), offset = UInt32(out.count)
            // Local file header: version 2.0, no flags, stored, a fixed 1980-01-01 date
            // (so the same arrays give the same bytes), CRC, sizes, name.
            appendLittleEndian(&out, UInt32(0x0403_4B50))
            appendCommonFields(&out, crc: crc, size: UInt32(member.count), nameLength: fileName.count)
            out += fileName
            out += member
            // Central directory entry: the same fields plus where the local header is.
            appendLittleEndian(&central, UInt32(0x0201_4B50))
            appendLittleEndian(&central, UInt16(20))   // made by: version 2.0
            appendCommonFields(&central, crc: crc, size: UInt32(member.count), nameLength: fileName.count)
            appendLittleEndian(&central, UInt16(0))    // comment length
            appendLittleEndian(&central, UInt16(0))    // disk number
            appendLittleEndian(&central, UInt16(0))    // internal attributes
            appendLittleEndian(&central, UInt32(0))    // external attributes
            appendLittleEndian(&central, offset)
            central += fileName
        }
        guard arrays.count < 0xFFFF, out.count + central.count < 0xFFFF_FFFF else {
            throw IOError("npz: \(arrays.count) arrays / \(out.count) bytes need zip64, which is not written")
        }
        let centralOffset = UInt32(out.count)
        out += central
        appendLittleEndian(&out, UInt32(0x0605_4B50))
        appendLittleEndian(&out, UInt16(0))            // this disk
        appendLittleEndian(&out, UInt16(0))            // disk with the central directory
        appendLittleEndian(&out, UInt16(arrays.count))
        appendLittleEndian(&out, UInt16(arrays.count))
        appendLittleEndian(&out, UInt32(central.count))
        appendLittleEndian(&out, centralOffset)
        appendLittleEndian(&out, UInt16(0))            // comment length
        return out
    }

    /// Writes an `.npz` archive atomically.
    public static func writeNPZ(_ arrays: [(name: String, value: NPYValue)], to path: String) throws {
        try AtomicFile.write(Data(try npz(arrays)), to: path)
    }

    /// version needed, flags, method, time, date, CRC-32, compressed and uncompressed size,
    /// name length, extra length: the run of fields local and central headers share.
    private static func appendCommonFields(_ out: inout [UInt8], crc: UInt32, size: UInt32, nameLength: Int) {
        appendLittleEndian(&out, UInt16(20))
        appendLittleEndian(&out, UInt16(0))
        appendLittleEndian(&out, UInt16(0))
        appendLittleEndian(&out, UInt16(0))
        appendLittleEndian(&out, UInt16(0x21))   // 1980-01-01
        appendLittleEndian(&out, crc)
        appendLittleEndian(&out, size)
        appendLittleEndian(&out, size)
        appendLittleEndian(&out, UInt16(nameLength))
        appendLittleEndian(&out, UInt16(0))
    }

    private static func appendLittleEndian<T: FixedWidthInteger>(_ out: inout [UInt8], _ value: T) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { out += $0 }
    }
}
