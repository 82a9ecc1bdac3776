import CZlib
import Foundation
import JEMBackend

/// zlib inflate/deflate and CRC-32 for the readers (gzip, .npz, .mat, PNG) and the PNG writer.
///
/// Inflating never allocates more than the output actually produced (plus doubling slack), and
/// stops at `maxOutput`: by default the most a valid deflate stream can expand to (1032:1), so
/// a corrupt or hostile stream cannot make the reader allocate without bound.
enum ZlibCodec {
    enum Wrapper {
        /// RFC 1950 (PNG, .mat miCOMPRESSED).
        case zlib
        /// RFC 1952 (.gz).
        case gzip
        /// Raw RFC 1951 (zip members).
        case raw
        /// gzip or zlib, detected from the header (inflate only).
        case auto

        var windowBits: Int32 {
            switch self {
            case .zlib: return 15
            case .gzip: return 15 + 16
            case .raw: return -15
            case .auto: return 15 + 32
            }
        }
    }

    /// Largest output a deflate stream of `inputCount` bytes can produce, with slack.
    static func maxExpansion(_ inputCount: Int) -> Int {
        CheckedSize.add(CheckedSize.multiply(inputCount, 1032) ?? Int.max / 2, 4096) ?? Int.max / 2
    }

    /// Inflates `bytes[range]`.
    /// - Parameters:
    ///   - multiMember: for gzip, continue with the next member after a stream ends (as `gzip -d`).
    ///   - expected: when known, the exact output size (reserved up front: call only with a size
    ///     already checked to be plausible).
    ///   - maxOutput: throws once the output would exceed this.
    static func inflate(_ bytes: [UInt8], range: Range<Int>? = nil, wrapper: Wrapper, file: String,
                        what: String = "compressed data", multiMember: Bool = false,
                        expected: Int? = nil, maxOutput: Int? = nil) throws -> [UInt8] {
        let r = range ?? 0..<bytes.count
        guard !r.isEmpty else { throw DataError(file, "truncated \(what): no bytes") }
        let limit = min(maxOutput ?? Int.max, maxExpansion(r.count))
        var stream = z_stream()
        var status = inflateInit2_(&stream, wrapper.windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw DataError(file, "zlib inflateInit failed (\(status))") }
        defer { inflateEnd(&stream) }

        var output = [UInt8]()
        // A declared size is only a claim: reserve no more than the input could plausibly give,
        // and let real output grow the buffer beyond that.
        if let expected { output.reserveCapacity(min(expected, limit, r.count * 8 + (1 << 20))) }
        let chunk = 1 << 18
        var scratch = [UInt8](repeating: 0, count: chunk)
        var position = r.lowerBound

        try bytes.withUnsafeBufferPointer { input in
            try scratch.withUnsafeMutableBufferPointer { out in
                let base = UnsafeMutablePointer(mutating: input.baseAddress!)
                while true {
                    if stream.avail_in == 0 && position < r.upperBound {
                        let n = min(r.upperBound - position, 1 << 30)
                        stream.next_in = base + position
                        stream.avail_in = uInt(n)
                        position += n
                    }
                    stream.next_out = out.baseAddress!
                    stream.avail_out = uInt(chunk)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                    let produced = chunk - Int(stream.avail_out)
                    if produced > 0 {
                        if output.count + produced > limit {
                            throw DataError(file, "\(what) inflates to more than \(limit) bytes")
                        }
                        output.append(contentsOf: UnsafeBufferPointer(start: out.baseAddress!, count: produced))
                    }
                    switch status {
                    case Z_STREAM_END:
                        let left = Int(stream.avail_in) + (r.upperBound - position)
                        if left == 0 { return }
                        let next = r.upperBound - left
                        if multiMember, left >= 2, bytes[next] == 0x1F, bytes[next + 1] == 0x8B {
                            guard inflateReset(&stream) == Z_OK else {
                                throw DataError(file, "zlib inflateReset failed")
                            }
                            continue
                        }
                        if bytes[next..<r.upperBound].allSatisfy({ $0 == 0 }) { return }
                        if wrapper == .raw || wrapper == .zlib { return }  // container knows its sizes
                        throw DataError(file, "\(left) bytes of unexpected data after the end of the \(what)")
                    case Z_OK:
                        continue
                    case Z_BUF_ERROR:
                        if stream.avail_in == 0 && position >= r.upperBound {
                            throw DataError(file, "truncated \(what): the stream ends before its end marker")
                        }
                        continue
                    case Z_NEED_DICT:
                        throw DataError(file, "corrupt \(what): needs a preset dictionary")
                    case Z_MEM_ERROR:
                        throw DataError(file, "out of memory while inflating \(what)")
                    default:
                        let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                        throw DataError(file, "corrupt \(what) (\(reason))")
                    }
                }
            }
        }
        if let expected, output.count != expected {
            throw DataError(file, "\(what) inflates to \(output.count) bytes, expected \(expected)")
        }
        return output
    }

    /// Deflates `bytes` (level 0-9; 6 is zlib's default).
    static func deflate(_ bytes: [UInt8], wrapper: Wrapper = .zlib, level: Int32 = 6) -> [UInt8] {
        precondition(wrapper != .auto)
        var stream = z_stream()
        let status = deflateInit2_(&stream, level, Z_DEFLATED, wrapper.windowBits, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib deflateInit2 failed (\(status))")
        defer { deflateEnd(&stream) }
        var output = [UInt8]()
        output.reserveCapacity(bytes.count / 2 + 64)
        let chunk = 1 << 18
        var scratch = [UInt8](repeating: 0, count: chunk)
        bytes.withUnsafeBufferPointer { input in
            scratch.withUnsafeMutableBufferPointer { out in
                var position = 0
                var flush = Z_NO_FLUSH
                repeat {
                    if stream.avail_in == 0 && position < input.count {
                        let n = min(input.count - position, 1 << 30)
                        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + position)
                        stream.avail_in = uInt(n)
                        position += n
                    }
                    flush = position >= input.count ? Z_FINISH : Z_NO_FLUSH
                    stream.next_out = out.baseAddress!
                    stream.avail_out = uInt(chunk)
                    let rc = CZlib.deflate(&stream, flush)
                    precondition(rc != Z_STREAM_ERROR, "zlib deflate failed")
                    output.append(contentsOf: UnsafeBufferPointer(start: out.baseAddress!,
                                                                  count: chunk - Int(stream.avail_out)))
                    if rc == Z_STREAM_END { return }
                } while true
            }
        }
        return output
    }

    /// CRC-32 (as zip, gzip and PNG use it) of `bytes[range]`, continuing from `crc`.
    static func crc32(_ bytes: [UInt8], range: Range<Int>? = nil, crc: UInt32 = 0) -> UInt32 {
        let r = range ?? 0..<bytes.count
        var c = UInt(crc)
        bytes.withUnsafeBufferPointer { buf in
            var p = r.lowerBound
            while p < r.upperBound {
                let n = min(r.upperBound - p, 1 << 30)
                c = CZlib.crc32(c, buf.baseAddress! + p, uInt(n))
                p += n
            }
        }
        return UInt32(truncatingIfNeeded: c)
    }
}
