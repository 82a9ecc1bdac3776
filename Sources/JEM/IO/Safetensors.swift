import Foundation
import JEMBackend
import JEMSupport

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, a
/// JSON header of N bytes `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}`,
/// then the raw little-endian tensor bytes. Data only: loading one never runs code.
public enum SafetensorsDType: String, Sendable {
    case f32 = "F32", i32 = "I32", i64 = "I64", u8 = "U8"
    var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .i64: return 8
        case .u8: return 1
        }
    }
}

/// Builds a safetensors file in memory and writes it atomically.
public struct SafetensorsWriter {
    private var entries: [(name: String, dtype: SafetensorsDType, shape: [Int], bytes: Data)] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count, "\(name): shape \(shape) does not hold \(floats.count) values")
        entries.append((name, .f32, shape, floats.withUnsafeBytes { Data($0) }))
    }

    public mutating func add(_ name: String, shape: [Int], int32: [Int32]) {
        precondition(shape.reduce(1, *) == int32.count, "\(name): shape \(shape) does not hold \(int32.count) values")
        entries.append((name, .i32, shape, int32.withUnsafeBytes { Data($0) }))
    }

    /// The file's bytes: header padded with spaces to a multiple of 8, then the data.
    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for e in entries {
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]]
            offset += e.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var data = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        for e in entries { data.append(e.bytes) }
        return data
    }

    public func write(to path: String) throws { try AtomicFile.write(try serialized(), to: path) }
}

/// A parsed safetensors file. Every size in the header is checked against the file before any
/// allocation, so a corrupt or hostile file gives a one-line `IOError`, never a crash.
public struct SafetensorsFile {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: SafetensorsDType
        public let shape: [Int]
        let range: Range<Int>   // in the data section
        public var count: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let metadata: [String: String]
    /// Tensors in data order.
    public let entries: [Entry]
    private let data: Data
    private let dataStart: Int

    /// Largest header accepted (the format's own reference implementation uses 100 MB).
    static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        self.path = path
        let name = (path as NSString).lastPathComponent
        func fail(_ why: String) -> IOError { IOError("\(name): not a valid safetensors file: \(why)") }
        guard FileManager.default.fileExists(atPath: path) else { throw IOError("\(path): no such file") }
        let contents: Data
        do { contents = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw IOError("\(path): cannot read (\(error.localizedDescription))")
        }
        guard contents.count >= 8 else { throw fail("\(contents.count) bytes, shorter than the 8-byte header length") }
        let headerLength = contents.prefix(8).withUnsafeBytes { raw -> UInt64 in
            var v: UInt64 = 0
            for i in (0..<8).reversed() { v = v << 8 | UInt64(raw[i]) }
            return v
        }
        guard headerLength <= UInt64(Self.maxHeaderBytes), Int(headerLength) <= contents.count - 8 else {
            throw fail("header length \(headerLength) exceeds the file size \(contents.count) or the 100 MB limit")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let object = try? JSONSerialization.jsonObject(with: contents.subdata(in: 8..<headerEnd)),
              let header = object as? [String: Any] else { throw fail("header is not a JSON object") }
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        let dataLength = contents.count - headerEnd
        for (key, value) in header {
            if key == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                  let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw fail("tensor '\(key)' lacks dtype, shape or data_offsets") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw fail("tensor '\(key)' has unsupported dtype \(dtypeName) (expected F32, I32, I64 or U8)")
            }
            var elements = 1
            for d in shape {
                guard d >= 0 else { throw fail("tensor '\(key)' has a negative dimension in \(shape)") }
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow, product <= dataLength else { throw fail("tensor '\(key)' shape \(shape) exceeds the file") }
                elements = product
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength, end - begin == elements * dtype.size else {
                throw fail("tensor '\(key)' data_offsets \(offsets) do not match its shape \(shape) or the file size")
            }
            entries.append(Entry(name: key, dtype: dtype, shape: shape, range: begin..<end))
        }
        entries.sort { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(entries, entries.dropFirst()) where a.range.upperBound > b.range.lowerBound {
            throw fail("tensors '\(a.name)' and '\(b.name)' overlap")
        }
        self.metadata = metadata
        self.entries = entries
        self.data = contents
        self.dataStart = headerEnd
    }

    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    public func floats(_ name: String) throws -> [Float] {
        guard let e = entry(name) else { throw IOError("\((path as NSString).lastPathComponent): no tensor '\(name)'") }
        guard e.dtype == .f32 else { throw IOError("\((path as NSString).lastPathComponent): '\(name)' is \(e.dtype.rawValue), expected F32") }
        return [Float](unsafeUninitializedCapacity: e.count) { out, initialized in
            data.withUnsafeBytes { raw in
                let src = UnsafeRawBufferPointer(rebasing: raw[(dataStart + e.range.lowerBound)..<(dataStart + e.range.upperBound)])
                UnsafeMutableRawBufferPointer(out).copyMemory(from: src)
            }
            initialized = e.count
        }
    }

    public func int32(_ name: String) throws -> [Int32] {
        guard let e = entry(name) else { throw IOError("\((path as NSString).lastPathComponent): no tensor '\(name)'") }
        guard e.dtype == .i32 else { throw IOError("\((path as NSString).lastPathComponent): '\(name)' is \(e.dtype.rawValue), expected I32") }
        return [Int32](unsafeUninitializedCapacity: e.count) { out, initialized in
            data.withUnsafeBytes { raw in
                let src = UnsafeRawBufferPointer(rebasing: raw[(dataStart + e.range.lowerBound)..<(dataStart + e.range.upperBound)])
                UnsafeMutableRawBufferPointer(out).copyMemory(from: src)
            }
            initialized = e.count
        }
    }
}
