import Foundation
import JEMBackend

/// The numeric variables of a MATLAB level-5 (.mat, v5/v6/v7) file: a 128-byte header, then data
/// elements `miMATRIX`, each possibly wrapped in a zlib-compressed `miCOMPRESSED` element.
/// Non-numeric variables (cells, structs, chars, sparse) are skipped; v7.3 (HDF5) is refused.
struct MATFile {
    /// One numeric array, column-major, in its stored element type.
    struct Variable {
        let name: String
        /// mxCLASS (6 double … 15 uint64).
        let classID: UInt8
        let dims: [Int]
        /// miTYPE of the stored real part (may be narrower than the class, as MATLAB saves it).
        let storage: UInt32
        let bytes: [UInt8]
        let range: Range<Int>
        let bigEndian: Bool
        let file: String

        var count: Int { dims.reduce(1, *) }  // checked when parsed

        /// The values as bytes when stored as miUINT8, else converted (each must be an integer 0...255).
        func uint8Values() throws -> [UInt8] {
            if storage == MATFile.miUINT8 { return Array(bytes[range]) }
            var out = [UInt8](repeating: 0, count: count)
            try forEachValue { i, v in
                guard v >= 0, v <= 255, v == v.rounded() else {
                    throw DataError(file, "variable '\(name)': element \(i) is \(v), expected an integer 0...255")
                }
                out[i] = UInt8(v)
            }
            return out
        }

        /// The values as doubles.
        func doubleValues() throws -> [Double] {
            var out = [Double](repeating: 0, count: count)
            try forEachValue { i, v in out[i] = v }
            return out
        }

        func forEachValue(_ body: (Int, Double) throws -> Void) throws {
            var c = ByteCursor(bytes, file: file, range: range)
            let be = bigEndian
            for i in 0..<count {
                let v: Double
                switch storage {
                case MATFile.miINT8: v = Double(Int8(bitPattern: try c.u8()))
                case MATFile.miUINT8: v = Double(try c.u8())
                case MATFile.miINT16: v = Double(Int16(bitPattern: try c.u16(bigEndian: be)))
                case MATFile.miUINT16: v = Double(try c.u16(bigEndian: be))
                case MATFile.miINT32: v = Double(Int32(bitPattern: try c.u32(bigEndian: be)))
                case MATFile.miUINT32: v = Double(try c.u32(bigEndian: be))
                case MATFile.miSINGLE: v = Double(Float(bitPattern: try c.u32(bigEndian: be)))
                case MATFile.miDOUBLE: v = Double(bitPattern: try c.u64(bigEndian: be))
                case MATFile.miINT64: v = Double(Int64(bitPattern: try c.u64(bigEndian: be)))
                case MATFile.miUINT64: v = Double(try c.u64(bigEndian: be))
                default: throw DataError(file, "variable '\(name)': unsupported element type \(storage)")
                }
                try body(i, v)
            }
        }
    }

    static let miINT8: UInt32 = 1, miUINT8: UInt32 = 2, miINT16: UInt32 = 3, miUINT16: UInt32 = 4
    static let miINT32: UInt32 = 5, miUINT32: UInt32 = 6, miSINGLE: UInt32 = 7, miDOUBLE: UInt32 = 9
    static let miINT64: UInt32 = 12, miUINT64: UInt32 = 13, miMATRIX: UInt32 = 14, miCOMPRESSED: UInt32 = 15

    static func elementSize(_ type: UInt32) -> Int? {
        switch type {
        case miINT8, miUINT8: return 1
        case miINT16, miUINT16: return 2
        case miINT32, miUINT32, miSINGLE: return 4
        case miDOUBLE, miINT64, miUINT64: return 8
        default: return nil
        }
    }

    let file: String
    let variables: [Variable]

    init(path: String) throws {
        try self.init(bytes: try DataFiles.read(path), file: path)
    }

    init(bytes: [UInt8], file: String) throws {
        self.file = file
        guard bytes.count >= 128 else {
            throw DataError(file, "truncated: \(bytes.count) bytes, a MATLAB v5 file has a 128-byte header")
        }
        let text = String(decoding: bytes[0..<116], as: UTF8.self)
        if text.hasPrefix("MATLAB 7.3") || (bytes.count >= 520 && bytes[512..<520].elementsEqual([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])) {
            throw DataError(file, "MATLAB v7.3 (HDF5) files are not supported; expected a v5 .mat file (save with -v7)")
        }
        // The binding magic is the version (0x0100) and endian indicator at bytes 124-127.
        let bigEndian: Bool
        switch (bytes[126], bytes[127]) {
        case (UInt8(ascii: "I"), UInt8(ascii: "M")): bigEndian = false
        case (UInt8(ascii: "M"), UInt8(ascii: "I")): bigEndian = true
        default:
            throw DataError(file, "wrong magic: no MATLAB 5.0 MAT-file header (endian indicator at byte 126 is not 'IM' or 'MI')")
        }
        let version = bigEndian ? (UInt16(bytes[124]) << 8 | UInt16(bytes[125])) : (UInt16(bytes[125]) << 8 | UInt16(bytes[124]))
        guard version == 0x0100 || text.hasPrefix("MATLAB") else {
            throw DataError(file, "wrong magic: MAT-file version 0x\(String(version, radix: 16)), expected 0x0100 (MATLAB 5.0)")
        }
        var vars = [Variable]()
        var c = ByteCursor(bytes, file: file)
        c.what = "MAT data element"
        try c.seek(toOffset: 128)
        while c.remaining > 0 {
            if c.remaining < 8, bytes[c.position...].allSatisfy({ $0 == 0 }) { break }  // padding
            let (type, _, data) = try MATFile.tag(&c, bigEndian: bigEndian)
            switch type {
            case MATFile.miCOMPRESSED:
                let inner = try ZlibCodec.inflate(bytes, range: data, wrapper: .zlib, file: file,
                                                  what: "miCOMPRESSED element at offset \(data.lowerBound - 8)")
                var ic = ByteCursor(inner, file: file)
                ic.what = "compressed MAT data element"
                let (innerType, _, innerData) = try MATFile.tag(&ic, bigEndian: bigEndian)
                if innerType == MATFile.miMATRIX, let v = try MATFile.matrix(inner, innerData, bigEndian: bigEndian, file: file) {
                    vars.append(v)
                }
            case MATFile.miMATRIX:
                if let v = try MATFile.matrix(bytes, data, bigEndian: bigEndian, file: file) { vars.append(v) }
            default:
                break  // other top-level elements are not variables
            }
        }
        variables = vars
    }

    func variable(_ name: String) -> Variable? { variables.first { $0.name == name } }

    /// Reads one tag (full or small-element form); returns its type, byte count and data range,
    /// and leaves the cursor after the data (padded to 8 bytes inside a matrix, except for the
    /// top-level elements, which MATLAB does not pad).
    static func tag(_ c: inout ByteCursor, bigEndian: Bool, padded: Bool = false) throws -> (UInt32, Int, Range<Int>) {
        let first = try c.u32(bigEndian: bigEndian)
        if first >> 16 != 0 {  // small data element: 2-byte size, 2-byte type, 4 bytes of data
            let size = Int(first >> 16), type = first & 0xFFFF
            guard size <= 4 else { throw c.error("corrupt MAT small data element of \(size) bytes at offset \(c.offset - 4)") }
            let r = try c.range(4)
            return (type, size, r.lowerBound..<(r.lowerBound + size))
        }
        let size = Int(try c.u32(bigEndian: bigEndian))
        let r = try c.range(size, "MAT data element (type \(first), \(size) bytes)")
        if padded {
            let pad = (8 - size % 8) % 8
            try c.skip(min(pad, c.remaining))
        }
        return (first, size, r)
    }

    /// Parses the body of a miMATRIX element; nil for non-numeric classes.
    static func matrix(_ bytes: [UInt8], _ body: Range<Int>, bigEndian: Bool, file: String) throws -> Variable? {
        guard !body.isEmpty else { return nil }  // an empty matrix element
        var c = ByteCursor(bytes, file: file, range: body)
        c.what = "miMATRIX element"
        let (flagsType, flagsSize, flagsRange) = try tag(&c, bigEndian: bigEndian, padded: true)
        guard flagsType == miUINT32, flagsSize >= 8 else {
            throw DataError(file, "corrupt miMATRIX: array flags have type \(flagsType), size \(flagsSize); expected miUINT32, 8 bytes")
        }
        var fc = ByteCursor(bytes, file: file, range: flagsRange)
        let flags = try fc.u32(bigEndian: bigEndian)
        let classID = UInt8(flags & 0xFF)
        let isComplex = flags & 0x800 != 0
        let (dimsType, dimsSize, dimsRange) = try tag(&c, bigEndian: bigEndian, padded: true)
        guard dimsType == miINT32, dimsSize % 4 == 0, dimsSize >= 8 else {
            throw DataError(file, "corrupt miMATRIX: dimensions have type \(dimsType), size \(dimsSize); expected miINT32, ≥ 2 values")
        }
        var dc = ByteCursor(bytes, file: file, range: dimsRange)
        var dims = [Int]()
        for _ in 0..<(dimsSize / 4) {
            let d = Int32(bitPattern: try dc.u32(bigEndian: bigEndian))
            guard d >= 0 else { throw DataError(file, "corrupt miMATRIX: negative dimension \(d)") }
            dims.append(Int(d))
        }
        let (_, _, nameRange) = try tag(&c, bigEndian: bigEndian, padded: true)
        let name = String(decoding: bytes[nameRange], as: UTF8.self)
        guard (6...15).contains(classID) else { return nil }  // cell, struct, object, char, sparse
        let (storage, realSize, realRange) = try tag(&c, bigEndian: bigEndian, padded: true)
        guard let esize = elementSize(storage) else {
            throw DataError(file, "variable '\(name)': unsupported storage type \(storage)")
        }
        guard let count = CheckedSize.product(dims), let needed = CheckedSize.multiply(count, esize) else {
            throw DataError(file, "variable '\(name)': dimensions \(CheckedSize.shape(dims)) overflow the addressable size")
        }
        guard needed == realSize else {
            throw DataError(file, "variable '\(name)': dimensions \(CheckedSize.shape(dims)) need \(needed) bytes of data, "
                            + "the element holds \(realSize)")
        }
        if isComplex {
            throw DataError(file, "variable '\(name)' is complex, expected a real array")
        }
        return Variable(name: name, classID: classID, dims: dims, storage: storage, bytes: bytes,
                        range: realRange, bigEndian: bigEndian, file: file)
    }
}

/// SVHN's `train_32x32.mat` / `test_32x32.mat`: `X` uint8 [32, 32, 3, N] (column-major: row,
/// column, channel, image) and `y` [N, 1] with 1…10, where 10 means the digit 0.
enum SVHNFile {
    static let trainName = "train_32x32.mat"
    static let testName = "test_32x32.mat"

    static func load(_ path: String) throws -> ImageSet {
        let mat = try MATFile(path: path)
        let names = mat.variables.map(\.name).joined(separator: ", ")
        guard let x = mat.variable("X") else {
            throw DataError(path, "no variable 'X' (expected X [32,32,3,N] and y [N,1]; found \(names.isEmpty ? "none" : names))")
        }
        guard let y = mat.variable("y") else {
            throw DataError(path, "no variable 'y' (expected X [32,32,3,N] and y [N,1]; found \(names))")
        }
        guard y.dims.count == 2, y.dims.contains(1) || y.count == 0 else {
            throw DataError(path, "variable 'y' has shape \(CheckedSize.shape(y.dims)), expected [N,1]")
        }
        let n = y.count
        var d = x.dims
        while d.count > 4, d.last == 1 { d.removeLast() }
        // MATLAB drops trailing singleton dimensions: [H,W,C] is one image, [H,W] one gray image.
        if d.count == 2 { d += [1, 1] }
        if d.count == 3 { d = (n == 1 && (d[2] == 3 || d[2] == 1)) ? d + [1] : [d[0], d[1], 1, d[2]] }
        guard d.count == 4 else {
            throw DataError(path, "variable 'X' has shape \(CheckedSize.shape(x.dims)), expected [H,W,C,N]")
        }
        let (h, w, ch, count) = (d[0], d[1], d[2], d[3])
        guard count == n else {
            throw DataError(path, "label count \(n) in 'y' does not match image count \(count) in 'X' (\(CheckedSize.shape(x.dims)))")
        }
        guard h > 0, w > 0, ch > 0 else {
            throw DataError(path, "variable 'X' has shape \(CheckedSize.shape(x.dims)), expected non-empty images")
        }
        let raw = try x.uint8Values()
        var labels = [Int32](repeating: 0, count: n)
        try y.forEachValue { i, v in
            guard v >= 0, v <= 10, v == v.rounded() else {
                throw DataError(path, "label \(v) of image \(i), expected 1...10 (10 = digit 0)")
            }
            labels[i] = Int32(v) % 10
        }
        // Column-major X[r, c, ch, i] at r + h*(c + w*(ch + C*i)) -> NCHW [i][ch][r][c].
        var pixels = [UInt8](repeating: 0, count: raw.count)
        raw.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                let plane = h * w
                for i in 0..<count {
                    for k in 0..<ch {
                        let base = (i * ch + k) * plane
                        for col in 0..<w {
                            let s = base + col * h
                            for r in 0..<h { dst[base + r * w + col] = src[s + r] }
                        }
                    }
                }
            }
        }
        return ImageSet(channels: ch, height: h, width: w, count: count, pixels: .uint8(pixels), labels: labels)
    }

    static func isFolder(_ folder: String) -> Bool {
        DataFiles.kind(DataFiles.join(folder, trainName)) == .file || DataFiles.kind(DataFiles.join(folder, testName)) == .file
    }

    static func loadFolder(_ folder: String) throws -> (ImageSet, ImageSet?) {
        let train = DataFiles.join(folder, trainName), test = DataFiles.join(folder, testName)
        guard DataFiles.kind(train) == .file else {
            throw DataError(train, "missing: an SVHN folder needs train_32x32.mat (and optionally test_32x32.mat)")
        }
        return (try load(train), DataFiles.kind(test) == .file ? try load(test) : nil)
    }
}
