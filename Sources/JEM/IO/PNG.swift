import Foundation
import JEMBackend

/// PNG encoding (8-bit gray, gray+alpha, RGB, RGBA) and decoding (every non-interlaced PNG:
/// gray, gray+alpha, RGB, RGBA and palette, bit depths 1-16, all five row filters), with zlib
/// from CZlib. Decoding checks every chunk's CRC and bounds every size it reads.
public enum PNG {
    /// An 8-bit image, pixels interleaved row-major (`height × width × channels`).
    public struct Image: Sendable, Equatable {
        public let width: Int
        public let height: Int
        /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (palette images decode to 3, or 4 with transparency).
        public let channels: Int
        public let pixels: [UInt8]

        public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
            precondition(width > 0 && height > 0 && (1...4).contains(channels), "bad PNG image shape")
            precondition(pixels.count == width * height * channels, "pixel count does not match the PNG image shape")
            self.width = width
            self.height = height
            self.channels = channels
            self.pixels = pixels
        }
    }

    /// PNG row filters; the encoder picks one per row (minimum sum of absolute differences)
    /// unless told to use one.
    public enum Filter: UInt8, Sendable, CaseIterable {
        case none = 0, sub = 1, up = 2, average = 3, paeth = 4
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    // MARK: Encoding

    /// A PNG file holding `image` (8 bits per sample).
    public static func encode(_ image: Image, filter: Filter? = nil, level: Int32 = 6) -> [UInt8] {
        let colorType: UInt8 = [0, 4, 2, 6][image.channels - 1]
        let raw = filtered(image.pixels, width: image.width, height: image.height, bytesPerPixel: image.channels,
                           filter: filter)
        return assemble(width: image.width, height: image.height, bitDepth: 8, colorType: colorType,
                        extraChunks: [], raw: raw, level: level)
    }

    /// A PNG file of 8-bit samples (`channels` 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA).
    public static func encode(pixels: [UInt8], width: Int, height: Int, channels: Int,
                              filter: Filter? = nil, level: Int32 = 6) -> [UInt8] {
        encode(Image(width: width, height: height, channels: channels, pixels: pixels), filter: filter, level: level)
    }

    /// An 8-bit palette PNG (`indices` row-major, `palette` RGB triples, optional per-entry alpha).
    static func encodePalette(indices: [UInt8], width: Int, height: Int, palette: [UInt8], alpha: [UInt8]? = nil,
                              filter: Filter? = nil) -> [UInt8] {
        var chunks = [("PLTE", palette)]
        if let alpha { chunks.append(("tRNS", alpha)) }
        let raw = filtered(indices, width: width, height: height, bytesPerPixel: 1, filter: filter)
        return assemble(width: width, height: height, bitDepth: 8, colorType: 3, extraChunks: chunks, raw: raw, level: 6)
    }

    /// Signature, IHDR, `extraChunks`, IDAT (zlib of `raw`), IEND; `interlace` is written as given
    /// (for tests of the decoder's refusal).
    static func assemble(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, extraChunks: [(String, [UInt8])],
                         raw: [UInt8], level: Int32, interlace: UInt8 = 0) -> [UInt8] {
        var out = signature
        var ihdr = [UInt8]()
        ihdr += bigEndian32(UInt32(width)) + bigEndian32(UInt32(height))
        ihdr += [bitDepth, colorType, 0, 0, interlace]
        appendChunk(&out, "IHDR", ihdr)
        for (type, data) in extraChunks { appendChunk(&out, type, data) }
        appendChunk(&out, "IDAT", ZlibCodec.deflate(raw, wrapper: .zlib, level: level))
        appendChunk(&out, "IEND", [])
        return out
    }

    static func bigEndian32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
    }

    static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        out += bigEndian32(UInt32(data.count))
        let body = Array(type.utf8) + data
        out += body
        out += bigEndian32(ZlibCodec.crc32(body))
    }

    /// Rows prefixed by their filter byte.
    static func filtered(_ pixels: [UInt8], width: Int, height: Int, bytesPerPixel bpp: Int, filter: Filter?) -> [UInt8] {
        let rowBytes = width * bpp
        var out = [UInt8](repeating: 0, count: height * (rowBytes + 1))
        var candidate = [UInt8](repeating: 0, count: rowBytes)
        pixels.withUnsafeBufferPointer { px in
            for y in 0..<height {
                let row = y * rowBytes, prior = row - rowBytes
                let o = y * (rowBytes + 1)
                var bestScore = Int.max
                for f in filter.map({ [$0] }) ?? Filter.allCases {
                    var score = 0
                    for x in 0..<rowBytes {
                        let a = x >= bpp ? Int(px[row + x - bpp]) : 0
                        let b = y > 0 ? Int(px[prior + x]) : 0
                        let c = (x >= bpp && y > 0) ? Int(px[prior + x - bpp]) : 0
                        let v = Int(px[row + x])
                        let p: Int
                        switch f {
                        case .none: p = 0
                        case .sub: p = a
                        case .up: p = b
                        case .average: p = (a + b) / 2
                        case .paeth: p = paeth(a, b, c)
                        }
                        let d = UInt8(truncatingIfNeeded: v - p)
                        candidate[x] = d
                        score += Int(d < 128 ? d : 255 - d + 1)
                    }
                    if filter != nil || score < bestScore {
                        bestScore = score
                        out[o] = f.rawValue
                        for x in 0..<rowBytes { out[o + 1 + x] = candidate[x] }
                    }
                }
            }
        }
        return out
    }

    @inline(__always)
    static func paeth(_ a: Int, _ b: Int, _ c: Int) -> Int {
        let p = a + b - c
        let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    // MARK: Decoding

    /// Decodes the PNG at `path`.
    public static func read(_ path: String) throws -> Image {
        try decode(try DataFiles.read(path), file: path)
    }

    /// Decodes a PNG file's bytes; `file` names it in errors.
    public static func decode(_ bytes: [UInt8], file: String = "PNG") throws -> Image {
        var c = ByteCursor(bytes, file: file)
        c.what = "PNG chunk"
        guard bytes.count >= 8, bytes[0..<8].elementsEqual(signature) else {
            throw DataError(file, bytes.count < 8 ? "truncated: \(bytes.count) bytes, expected the 8-byte PNG signature"
                                                  : "wrong magic, expected the PNG signature (not a PNG file)")
        }
        try c.skip(8)
        var header: (width: Int, height: Int, depth: Int, color: UInt8)?
        var palette = [UInt8]()
        var paletteAlpha: [UInt8]?
        var idat = [UInt8]()
        var sawEnd = false
        while !sawEnd {
            let length = Int(try c.u32(bigEndian: true))
            guard length <= 0x7FFF_FFFF else { throw c.error("corrupt PNG chunk length \(length)") }
            let typeRange = try c.range(4, "PNG chunk type")
            let type = String(decoding: bytes[typeRange], as: UTF8.self)
            let data = try c.range(length, "PNG '\(type)' chunk (\(length) bytes)")
            let crc = try c.u32(bigEndian: true)
            guard ZlibCodec.crc32(bytes, range: typeRange.lowerBound..<data.upperBound) == crc else {
                throw c.error("corrupt PNG: CRC mismatch in the '\(type)' chunk")
            }
            if header == nil && type != "IHDR" { throw c.error("corrupt PNG: the first chunk is '\(type)', expected IHDR") }
            switch type {
            case "IHDR":
                guard header == nil, length == 13 else { throw c.error("corrupt PNG: bad IHDR chunk") }
                var h = ByteCursor(bytes, file: file, range: data)
                let width = Int(try h.u32(bigEndian: true)), height = Int(try h.u32(bigEndian: true))
                let depth = Int(try h.u8()), color = try h.u8()
                let compression = try h.u8(), filterMethod = try h.u8(), interlace = try h.u8()
                guard width > 0, height > 0, width <= 0x7FFF_FFFF, height <= 0x7FFF_FFFF else {
                    throw c.error("PNG size \(width)×\(height) is invalid")
                }
                let allowed: [Int] = switch color {
                case 0: [1, 2, 4, 8, 16]
                case 3: [1, 2, 4, 8]
                case 2, 4, 6: [8, 16]
                default: []
                }
                guard allowed.contains(depth) else {
                    throw c.error("PNG color type \(color) with bit depth \(depth) is invalid")
                }
                guard compression == 0, filterMethod == 0 else {
                    throw c.error("PNG compression/filter method \(compression)/\(filterMethod) is invalid, expected 0/0")
                }
                guard interlace == 0 else {
                    throw c.error("interlaced (Adam7) PNGs are not supported; save the image without interlacing")
                }
                header = (width, height, depth, color)
            case "PLTE":
                guard length % 3 == 0, length / 3 <= 256, length > 0 else { throw c.error("corrupt PNG: bad PLTE chunk of \(length) bytes") }
                palette = Array(bytes[data])
            case "tRNS":
                if header?.color == 3 { paletteAlpha = Array(bytes[data]) }
            case "IDAT":
                idat.append(contentsOf: bytes[data])
            case "IEND":
                sawEnd = true
            default:
                // Unknown critical chunks (uppercase first letter) cannot be skipped safely.
                if let first = type.utf8.first, first >= 0x41 && first <= 0x5A {
                    throw c.error("PNG critical chunk '\(type)' is not supported")
                }
            }
        }
        guard let (width, height, depth, color) = header else { throw c.error("corrupt PNG: no IHDR") }
        let samples = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(color)]!
        guard let bitsPerPixel = CheckedSize.multiply(samples, depth),
              let rowBits = CheckedSize.multiply(width, bitsPerPixel),
              let rawSize = CheckedSize.multiply(height, rowBits / 8 + (rowBits % 8 == 0 ? 0 : 1) + 1),
              let _ = CheckedSize.multiply(CheckedSize.multiply(width, height) ?? -1, 4) else {
            throw c.error("PNG size \(width)×\(height) is too large")
        }
        let rowBytes = rowBits / 8 + (rowBits % 8 == 0 ? 0 : 1)
        guard !idat.isEmpty else { throw c.error("corrupt PNG: no IDAT data") }
        guard rawSize <= ZlibCodec.maxExpansion(idat.count) else {
            throw c.error("truncated PNG: \(idat.count) bytes of IDAT cannot hold a \(width)×\(height) image")
        }
        if color == 3 && palette.isEmpty { throw c.error("corrupt PNG: palette image without a PLTE chunk") }
        var raw = try ZlibCodec.inflate(idat, wrapper: .zlib, file: file, what: "PNG image data", maxOutput: rawSize)
        guard raw.count == rawSize else {
            throw c.error("truncated PNG image data: \(raw.count) bytes, \(width)×\(height) needs \(rawSize)")
        }
        try unfilter(&raw, rows: height, rowBytes: rowBytes, bytesPerPixel: max(1, bitsPerPixel / 8), file: file)

        // Expand to 8-bit samples.
        let outChannels = color == 3 ? (paletteAlpha == nil ? 3 : 4) : samples
        var out = [UInt8](repeating: 0, count: width * height * outChannels)
        let paletteCount = palette.count / 3
        try raw.withUnsafeBufferPointer { src in
            try out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let row = y * (rowBytes + 1) + 1
                    let o = y * width * outChannels
                    if depth == 8 && color != 3 {
                        (dst.baseAddress! + o).update(from: src.baseAddress! + row, count: width * samples)
                    } else if depth == 16 {
                        for k in 0..<(width * samples) { dst[o + k] = src[row + 2 * k] }
                    } else {
                        let perByte = 8 / depth, mask = (1 << depth) - 1
                        for x in 0..<width {
                            let byte = Int(src[row + x / perByte])
                            let v = (byte >> (8 - depth * (x % perByte + 1))) & mask
                            if color == 3 {
                                guard v < paletteCount else {
                                    throw DataError(file, "corrupt PNG: palette index \(v) at (\(x), \(y)) beyond the \(paletteCount)-entry palette")
                                }
                                for k in 0..<3 { dst[o + x * outChannels + k] = palette[v * 3 + k] }
                                if outChannels == 4, let a = paletteAlpha {
                                    dst[o + x * 4 + 3] = v < a.count ? a[v] : 255
                                }
                            } else {
                                dst[o + x] = UInt8(v * 255 / mask)
                            }
                        }
                    }
                }
            }
        }
        return Image(width: width, height: height, channels: outChannels, pixels: out)
    }

    /// Undoes the row filters in place (each row is its filter byte then `rowBytes` bytes).
    static func unfilter(_ raw: inout [UInt8], rows: Int, rowBytes: Int, bytesPerPixel bpp: Int, file: String) throws {
        try raw.withUnsafeMutableBufferPointer { buf in
            for y in 0..<rows {
                let start = y * (rowBytes + 1)
                let f = buf[start]
                let row = start + 1, prior = row - (rowBytes + 1)
                switch f {
                case 0: break
                case 1:
                    if rowBytes > bpp { for x in bpp..<rowBytes { buf[row + x] &+= buf[row + x - bpp] } }
                case 2:
                    if y > 0 { for x in 0..<rowBytes { buf[row + x] &+= buf[prior + x] } }
                case 3:
                    for x in 0..<rowBytes {
                        let a = x >= bpp ? Int(buf[row + x - bpp]) : 0
                        let b = y > 0 ? Int(buf[prior + x]) : 0
                        buf[row + x] &+= UInt8((a + b) >> 1)
                    }
                case 4:
                    for x in 0..<rowBytes {
                        let a = x >= bpp ? Int(buf[row + x - bpp]) : 0
                        let b = y > 0 ? Int(buf[prior + x]) : 0
                        let c = (x >= bpp && y > 0) ? Int(buf[prior + x - bpp]) : 0
                        buf[row + x] &+= UInt8(paeth(a, b, c))
                    }
                default:
                    throw DataError(file, "corrupt PNG: row \(y) has filter type \(f), expected 0-4")
                }
            }
        }
    }
}
