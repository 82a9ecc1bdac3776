import Foundation
import JEMBackend

/// IDX files (MNIST, Fashion-MNIST, EMNIST): a 4-byte magic `00 00 type rank`, `rank` big-endian
/// UInt32 dimensions, then the unsigned bytes; each file optionally gzipped.
enum IDXFile {
    static let imageNames = ["train-images-idx3-ubyte", "t10k-images-idx3-ubyte"]
    static let labelNames = ["train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"]

    /// The file's bytes, gunzipped when they start with the gzip magic.
    static func readMaybeGzip(_ path: String) throws -> [UInt8] {
        let raw = try DataFiles.read(path)
        if raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B {
            return try ZlibCodec.inflate(raw, wrapper: .auto, file: path, what: "gzip data", multiMember: true)
        }
        return raw
    }

    /// Parses an IDX header; returns the dimensions and where the data lies in `bytes`.
    static func parse(_ bytes: [UInt8], file: String, rank expectedRank: Int) throws -> (dims: [Int], data: Range<Int>) {
        var c = ByteCursor(bytes, file: file)
        c.what = "IDX header"
        let expectedMagic = String(format: "00 00 08 %02X", expectedRank)
        guard bytes.count >= 4 else {
            throw c.error("truncated IDX header: \(bytes.count) bytes, expected at least 4 (magic \(expectedMagic))")
        }
        let magic = try c.take(4)
        let magicText = magic.map { String(format: "%02X", $0) }.joined(separator: " ")
        guard magic[0] == 0, magic[1] == 0 else {
            throw c.error("wrong magic \(magicText), expected \(expectedMagic) (not an IDX file)")
        }
        guard magic[2] == 0x08 else {
            throw c.error("IDX element type 0x\(String(format: "%02X", magic[2])) is not supported, expected 0x08 (unsigned byte)")
        }
        guard Int(magic[3]) == expectedRank else {
            let kind = expectedRank == 1 ? "a label file (1 dimension)" : "an image file (\(expectedRank) dimensions)"
            throw c.error("IDX file has \(magic[3]) dimensions (magic \(magicText)), expected \(kind), magic \(expectedMagic)")
        }
        var dims = [Int]()
        for _ in 0..<expectedRank { dims.append(Int(try c.u32(bigEndian: true))) }
        guard let total = CheckedSize.product(dims) else {
            throw c.error("IDX dimensions \(CheckedSize.shape(dims)) overflow the addressable size")
        }
        guard total == c.remaining else {
            if total > c.remaining {
                throw c.error("truncated: dimensions \(CheckedSize.shape(dims)) need \(total) data bytes, "
                              + "but only \(c.remaining) follow the header")
            }
            throw c.error("dimensions \(CheckedSize.shape(dims)) need \(total) data bytes, "
                          + "but \(c.remaining) follow the header")
        }
        return (dims, c.position..<bytes.count)
    }

    static func readImages(_ path: String) throws -> ImageSet {
        let bytes = try readMaybeGzip(path)
        let (dims, data) = try parse(bytes, file: path, rank: 3)
        guard dims[1] > 0, dims[2] > 0 else {
            throw DataError(path, "images of \(dims[1])×\(dims[2]) pixels, expected at least 1×1")
        }
        return ImageSet(channels: 1, height: dims[1], width: dims[2], count: dims[0],
                        pixels: .uint8(data.count == bytes.count ? bytes : Array(bytes[data])), labels: nil)
    }

    static func readLabels(_ path: String) throws -> [Int32] {
        let bytes = try readMaybeGzip(path)
        let (_, data) = try parse(bytes, file: path, rank: 1)
        return bytes[data].map { Int32($0) }
    }

    /// `name` or `name.gz` inside `folder`, whichever exists (also spelled `train-images.idx3-ubyte`).
    static func find(_ folder: String, _ name: String) -> String? {
        let dotted = name.replacingOccurrences(of: "-idx", with: ".idx")
        for candidate in [name, name + ".gz", dotted, dotted + ".gz"] {
            let p = DataFiles.join(folder, candidate)
            if DataFiles.kind(p) == .file { return p }
        }
        return nil
    }

    static func isFolder(_ folder: String) -> Bool {
        imageNames.contains { find(folder, $0) != nil }
    }

    /// A folder in the MNIST layout.
    static func loadFolder(_ folder: String) throws -> (train: ImageSet, test: ImageSet?) {
        func split(_ k: Int) throws -> ImageSet? {
            guard let imagesPath = find(folder, imageNames[k]) else { return nil }
            guard let labelsPath = find(folder, labelNames[k]) else {
                throw DataError(DataFiles.join(folder, labelNames[k]),
                                "missing: expected \(labelNames[k]) or \(labelNames[k]).gz next to \(DataFiles.basename(imagesPath))")
            }
            let images = try readImages(imagesPath)
            let labels = try readLabels(labelsPath)
            guard labels.count == images.count else {
                throw DataError(labelsPath, "label count \(labels.count) does not match image count \(images.count) in \(DataFiles.basename(imagesPath))")
            }
            return images.withLabels(labels)
        }
        guard let train = try split(0) else {
            throw DataError(DataFiles.join(folder, imageNames[0]),
                            "missing: an IDX folder needs train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
        }
        return (train, try split(1))
    }
}
