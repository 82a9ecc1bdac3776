import Foundation
import JEMBackend

/// A NumPy `.npy` array: magic `\x93NUMPY`, version, a little-endian header length, a Python dict
/// literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, 28, 28), }`, then the data.
struct NPYArray {
    /// `kind` is NumPy's type character (`u`, `i`, `f`, `b`), `size` the bytes per element.
    struct DType: CustomStringConvertible {
        let kind: Character
        let size: Int
        let bigEndian: Bool
        let descr: String
        var description: String { descr }
    }

    let shape: [Int]
    let dtype: DType
    let fortranOrder: Bool
    /// The raw element bytes (C order unless `fortranOrder`).
    let bytes: [UInt8]
    let range: Range<Int>
    let file: String

    var count: Int { shape.reduce(1, *) }  // checked when parsed
    var shapeText: String { "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")") }

    init(bytes: [UInt8], file: String) throws {
        var c = ByteCursor(bytes, file: file)
        c.what = "NPY header"
        let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
        guard bytes.count >= 6, bytes[0..<6].elementsEqual(magic) else {
            throw c.error(bytes.count < 6 ? "truncated: \(bytes.count) bytes, expected the 6-byte NPY magic \\x93NUMPY"
                                          : "wrong magic, expected \\x93NUMPY (not a .npy file)")
        }
        try c.skip(6)
        let major = try c.u8()
        _ = try c.u8()
        let headerLength: Int
        switch major {
        case 1: headerLength = Int(try c.u16())
        case 2, 3: headerLength = Int(try c.u32())
        default: throw c.error("NPY format version \(major) is not supported (expected 1, 2 or 3)")
        }
        let header = try c.range(headerLength, "NPY header (declared \(headerLength) bytes)")
        let text = String(decoding: bytes[header], as: UTF8.self)
        var parser = PythonLiteralParser(text: text, file: file)
        guard case .dict(let dict) = try parser.parseValue() else {
            throw c.error("NPY header is not a dict: \(text.prefix(80))")
        }
        guard case .string(let descr)? = dict["descr"] else {
            throw c.error("NPY header has no 'descr' string (structured dtypes are not supported)")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw c.error("NPY header has no 'fortran_order' boolean")
        }
        guard case .tuple(let dimValues)? = dict["shape"] else {
            throw c.error("NPY header has no 'shape' tuple")
        }
        var shape = [Int]()
        for d in dimValues {
            guard case .int(let v) = d, v >= 0 else { throw c.error("NPY shape holds a non-integer or negative dimension") }
            shape.append(v)
        }
        dtype = try NPYArray.parseDescr(descr, file: file)
        guard let count = CheckedSize.product(shape), let needed = CheckedSize.multiply(count, dtype.size) else {
            throw c.error("NPY shape \(shape) is too large (its byte size overflows)")
        }
        guard needed == c.remaining else {
            let shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")"
            if needed > c.remaining {
                throw c.error("truncated: shape \(shapeText) of \(descr) needs \(needed) data bytes, only \(c.remaining) follow the header")
            }
            throw c.error("shape \(shapeText) of \(descr) needs \(needed) data bytes, but \(c.remaining) follow the header")
        }
        self.shape = shape
        self.fortranOrder = fortran
        self.bytes = bytes
        self.range = c.position..<bytes.count
        self.file = file
    }

    static func parseDescr(_ descr: String, file: String) throws -> DType {
        var chars = Array(descr)
        var bigEndian = false
        if let first = chars.first, "<>|=".contains(first) {
            bigEndian = first == ">"
            chars.removeFirst()
        }
        guard chars.count >= 2, let size = Int(String(chars.dropFirst())),
              let kind = chars.first, "uifb".contains(kind),
              (kind == "f" ? [4, 8].contains(size) : [1, 2, 4, 8].contains(size)) else {
            throw DataError(file, "dtype '\(descr)' is not supported (expected an integer, bool, float32 or float64 dtype, e.g. '|u1' or '<f4')")
        }
        return DType(kind: kind, size: size, bigEndian: bigEndian, descr: descr)
    }

    /// Element `i` (in storage order) as a Double.
    @inline(__always)
    func value(at i: Int) -> Double {
        let p = range.lowerBound + i * dtype.size
        var raw: UInt64 = 0
        for k in 0..<dtype.size {
            raw |= UInt64(bytes[p + (dtype.bigEndian ? dtype.size - 1 - k : k)]) << (8 * UInt64(k))
        }
        switch (dtype.kind, dtype.size) {
        case ("f", 4): return Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw)))
        case ("f", _): return Double(bitPattern: raw)
        case ("i", 1): return Double(Int8(truncatingIfNeeded: raw))
        case ("i", 2): return Double(Int16(truncatingIfNeeded: raw))
        case ("i", 4): return Double(Int32(truncatingIfNeeded: raw))
        case ("i", _): return Double(Int64(bitPattern: raw))
        default: return Double(raw)
        }
    }

    /// `element(storageIndex)` for every element, in C order (transposing Fortran-order data).
    func cOrder<T>(_ element: (Int) -> T) -> [T] {
        guard fortranOrder, shape.count > 1, count > 0 else { return (0..<count).map(element) }
        let rank = shape.count
        var strides = [Int](repeating: 1, count: rank)
        for k in 1..<rank { strides[k] = strides[k - 1] * shape[k - 1] }
        var index = [Int](repeating: 0, count: rank)
        var offset = 0
        var out = [T]()
        out.reserveCapacity(count)
        for _ in 0..<count {
            out.append(element(offset))
            var k = rank - 1
            while k >= 0 {
                index[k] += 1
                offset += strides[k]
                if index[k] < shape[k] { break }
                offset -= strides[k] * shape[k]
                index[k] = 0
                k -= 1
            }
        }
        return out
    }

    /// All elements in C order, as doubles (for small arrays such as labels).
    func doubles() -> [Double] { cOrder { value(at: $0) } }

    /// All elements in C order as bytes when `|u1`, else nil.
    func cOrderBytes() -> [UInt8]? {
        guard dtype.kind == "u" || dtype.kind == "b", dtype.size == 1 else { return nil }
        if !fortranOrder || shape.count <= 1 { return Array(bytes[range]) }
        let base = range.lowerBound
        return cOrder { bytes[base + $0] }
    }

    /// All elements in C order as floats.
    func cOrderFloats() -> [Float] {
        if !fortranOrder, dtype.kind == "f", dtype.size == 4, !dtype.bigEndian {
            return [Float](unsafeUninitializedCapacity: count) { buf, n in
                bytes.withUnsafeBytes { raw in
                    UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[range]))
                }
                n = count
            }
        }
        return cOrder { Float(value(at: $0)) }
    }
}

/// Parses the Python literals that appear in .npy headers: dicts, tuples, lists, strings,
/// integers, True/False/None.
struct PythonLiteralParser {
    indirect enum Value {
        case dict([String: Value])
        case tuple([Value])
        case string(String)
        case int(Int)
        case bool(Bool)
        case none
    }

    let chars: [Character]
    var i = 0
    let file: String
    var depth = 0

    init(text: String, file: String) {
        chars = Array(text)
        self.file = file
    }

    func error(_ what: String) -> DataError {
        DataError(file, "malformed NPY header (\(what) at character \(i)): \(String(chars.prefix(100)))")
    }

    mutating func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }

    mutating func parseValue() throws -> Value {
        skipSpace()
        guard i < chars.count else { throw error("unexpected end") }
        depth += 1
        defer { depth -= 1 }
        guard depth < 32 else { throw error("nested too deeply") }
        let ch = chars[i]
        switch ch {
        case "{":
            i += 1
            var d = [String: Value]()
            while true {
                skipSpace()
                guard i < chars.count else { throw error("unterminated dict") }
                if chars[i] == "}" { i += 1; return .dict(d) }
                guard case .string(let key) = try parseValue() else { throw error("dict key is not a string") }
                skipSpace()
                guard i < chars.count, chars[i] == ":" else { throw error("expected ':'") }
                i += 1
                d[key] = try parseValue()
                skipSpace()
                if i < chars.count, chars[i] == "," { i += 1 }
            }
        case "(", "[":
            let close: Character = ch == "(" ? ")" : "]"
            i += 1
            var items = [Value]()
            while true {
                skipSpace()
                guard i < chars.count else { throw error("unterminated tuple") }
                if chars[i] == close { i += 1; return .tuple(items) }
                items.append(try parseValue())
                skipSpace()
                if i < chars.count, chars[i] == "," { i += 1 } else if i < chars.count, chars[i] != close {
                    throw error("expected ',' or '\(close)'")
                }
            }
        case "'", "\"":
            i += 1
            var s = ""
            while i < chars.count, chars[i] != ch {
                if chars[i] == "\\", i + 1 < chars.count { i += 1 }
                s.append(chars[i]); i += 1
            }
            guard i < chars.count else { throw error("unterminated string") }
            i += 1
            return .string(s)
        default:
            var word = ""
            while i < chars.count, chars[i].isLetter || chars[i].isNumber || chars[i] == "-" || chars[i] == "_" {
                word.append(chars[i]); i += 1
            }
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default:
                var digits = Substring(word)
                if digits.hasSuffix("L") { digits = digits.dropLast() }  // Python 2 longs
                guard let v = Int(digits) else {
                    throw error(word.isEmpty ? "unexpected '\(ch)'" : "'\(word.prefix(30))' is not an integer that fits in 64 bits")
                }
                return .int(v)
            }
        }
    }
}
