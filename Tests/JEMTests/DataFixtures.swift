import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// Writers of small dataset files in every supported format, for DataFormatTests. Everything is
/// built here from bytes (no downloads), compressed with the library's zlib wrapper.
enum DataFixtures {
    // MARK: Content

    /// A distinct, deterministic byte for every (image, channel, row, column).
    static func pixel(_ i: Int, _ c: Int, _ y: Int, _ x: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: i * 37 + c * 101 + y * 13 + x * 7 + (x * y) % 5)
    }

    /// `n` images NCHW.
    static func pixelsNCHW(n: Int, c: Int, h: Int, w: Int, offset: Int = 0) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(n * c * h * w)
        for i in 0..<n { for k in 0..<c { for y in 0..<h { for x in 0..<w { out.append(pixel(i + offset, k, y, x)) } } } }
        return out
    }

    static func pixelsNHWC(n: Int, c: Int, h: Int, w: Int, offset: Int = 0) -> [UInt8] {
        var out = [UInt8]()
        for i in 0..<n { for y in 0..<h { for x in 0..<w { for k in 0..<c { out.append(pixel(i + offset, k, y, x)) } } } }
        return out
    }

    // MARK: Files

    static func makeTempDir(_ name: String = "jem-data") -> String {
        let path = NSTemporaryDirectory() + "/\(name)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @discardableResult
    static func write(_ bytes: [UInt8], _ path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(bytes)), path)
        return path
    }

    static func gzip(_ bytes: [UInt8]) -> [UInt8] { ZlibCodec.deflate(bytes, wrapper: .gzip) }

    static func be32(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> $0) } }
    static func le16(_ v: Int) -> [UInt8] { [0, 8].map { UInt8(truncatingIfNeeded: v >> $0) } }
    static func le32(_ v: Int) -> [UInt8] { [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: v >> $0) } }
    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

    // MARK: IDX

    static func idx(dims: [Int], data: [UInt8]) -> [UInt8] {
        [0, 0, 8, UInt8(dims.count)] + dims.flatMap(be32) + data
    }

    static func idxImages(n: Int, h: Int = 8, w: Int = 8, offset: Int = 0) -> [UInt8] {
        idx(dims: [n, h, w], data: pixelsNCHW(n: n, c: 1, h: h, w: w, offset: offset))
    }

    static func idxLabels(_ labels: [UInt8]) -> [UInt8] { idx(dims: [labels.count], data: labels) }

    /// An MNIST-layout folder: 6 train and 4 test images of 8×8 (gzipped when `gz`).
    static func idxFolder(_ dir: String, gz: Bool, trainLabels: [UInt8] = [0, 1, 2, 3, 4, 5],
                          testLabels: [UInt8] = [5, 4, 3, 2]) -> String {
        func put(_ name: String, _ bytes: [UInt8]) {
            write(gz ? gzip(bytes) : bytes, dir + "/" + name + (gz ? ".gz" : ""))
        }
        put("train-images-idx3-ubyte", idxImages(n: 6))
        put("train-labels-idx1-ubyte", idxLabels(trainLabels))
        put("t10k-images-idx3-ubyte", idxImages(n: 4, offset: 100))
        put("t10k-labels-idx1-ubyte", idxLabels(testLabels))
        return dir
    }

    // MARK: CIFAR

    /// CIFAR records: label byte(s) then 3072 pixels of image `offset + k`.
    static func cifarBatch(labels: [[UInt8]], offset: Int) -> [UInt8] {
        var out = [UInt8]()
        for (k, l) in labels.enumerated() {
            out += l
            out += pixelsNCHW(n: 1, c: 3, h: 32, w: 32, offset: offset + k)
        }
        return out
    }

    /// `cifar-10-batches-bin` contents: 5 train batches of 2 images, a test batch of 3, the meta file.
    static func cifar10Members() -> [(String, [UInt8])] {
        var m = [(String, [UInt8])]()
        m.append(("batches.meta.txt", Array("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n".utf8)))
        for b in 0..<5 {
            m.append(("data_batch_\(b + 1).bin", cifarBatch(labels: [[UInt8(2 * b)], [UInt8(2 * b + 1)]], offset: 2 * b)))
        }
        m.append(("test_batch.bin", cifarBatch(labels: [[9], [0], [5]], offset: 100)))
        return m
    }

    /// `cifar-100-binary` contents: train.bin (4 images), test.bin (2), label name files.
    static func cifar100Members() -> [(String, [UInt8])] {
        [("train.bin", cifarBatch(labels: [[0, 99], [19, 42], [3, 0], [7, 7]], offset: 0)),
         ("test.bin", cifarBatch(labels: [[1, 50], [2, 98]], offset: 50)),
         ("fine_label_names.txt", Array(CIFARBinary.cifar100FineNames.joined(separator: "\n").utf8)),
         ("coarse_label_names.txt", Array(CIFARBinary.cifar100CoarseNames.joined(separator: "\n").utf8))]
    }

    // MARK: tar

    static func tarHeader(name: String, size: Int, type: UInt8 = UInt8(ascii: "0")) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, at o: Int) { for (k, b) in s.utf8.enumerated() { h[o + k] = b } }
        put(name, at: 0)
        put("0000644", at: 100); put("0000000", at: 108); put("0000000", at: 116)
        put(String(repeating: "0", count: max(0, 11 - String(size, radix: 8).count)) + String(size, radix: 8), at: 124)
        put("14000000000", at: 136)
        h[156] = type
        put("ustar", at: 257); put("00", at: 263)
        put("user", at: 265); put("group", at: 297)
        for k in 148..<156 { h[k] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        put(String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8), at: 148)
        h[154] = 0; h[155] = 0x20
        return h
    }

    static func tar(folder: String, members: [(String, [UInt8])]) -> [UInt8] {
        var out = tarHeader(name: folder + "/", size: 0, type: UInt8(ascii: "5"))
        for (name, data) in members {
            out += tarHeader(name: folder + "/" + name, size: data.count)
            out += data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
        }
        return out + [UInt8](repeating: 0, count: 1024)
    }

    // MARK: MATLAB v5

    static func matHeader() -> [UInt8] {
        var text = Array("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024".utf8)
        text += [UInt8](repeating: 0x20, count: 116 - text.count)
        return text + [UInt8](repeating: 0, count: 8) + [0x00, 0x01] + Array("IM".utf8)
    }

    /// A data element (tag + data, padded to 8 bytes), in the small format when it fits.
    static func matElement(_ type: Int, _ data: [UInt8], small: Bool = true) -> [UInt8] {
        if small && data.count <= 4 {
            return le16(type) + le16(data.count) + data + [UInt8](repeating: 0, count: 4 - data.count)
        }
        return le32(type) + le32(data.count) + data + [UInt8](repeating: 0, count: (8 - data.count % 8) % 8)
    }

    /// An miMATRIX variable: class (6 double, 9 uint8), dims, name, real data of storage type.
    static func matMatrix(name: String, classID: Int, dims: [Int], storage: Int, data: [UInt8]) -> [UInt8] {
        let body = matElement(6, le32(classID) + le32(0), small: false)
            + matElement(5, dims.flatMap(le32), small: false)
            + matElement(1, Array(name.utf8))
            + matElement(storage, data, small: false)
        return le32(14) + le32(body.count) + body
    }

    /// An SVHN-style file: X uint8 [h,w,3,n] column-major, y [n,1] (double, or uint8 storage of
    /// a double class), each variable compressed when `compressed`.
    static func svhnMat(n: Int, labels: [Int], h: Int = 32, w: Int = 32, compressed: Bool, yAsUInt8: Bool,
                        xDims: [Int]? = nil) -> [UInt8] {
        var x = [UInt8](repeating: 0, count: h * w * 3 * n)
        for i in 0..<n { for c in 0..<3 { for col in 0..<w { for r in 0..<h {
            x[r + h * (col + w * (c + 3 * i))] = pixel(i, c, r, col)
        } } } }
        let yData: [UInt8] = yAsUInt8 ? labels.map { UInt8($0) } : labels.flatMap { le64(Double($0).bitPattern) }
        let vars = [matMatrix(name: "X", classID: 9, dims: xDims ?? [h, w, 3, n], storage: 2, data: x),
                    matMatrix(name: "y", classID: 6, dims: [labels.count, 1], storage: yAsUInt8 ? 2 : 9, data: yData)]
        var out = matHeader()
        for v in vars {
            if compressed {
                let z = ZlibCodec.deflate(v, wrapper: .zlib)
                out += le32(15) + le32(z.count) + z
            } else {
                out += v
            }
        }
        return out
    }

    // MARK: NumPy

    static func npy(descr: String, shape: [Int], data: [UInt8], fortran: Bool = false, shapeText: String? = nil) -> [UInt8] {
        let dims = shapeText ?? ("(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")"))
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(dims), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        return [0x93] + Array("NUMPY".utf8) + [1, 0] + le16(header.utf8.count) + Array(header.utf8) + data
    }

    static func npyUInt8(_ v: [UInt8], shape: [Int]) -> [UInt8] { npy(descr: "|u1", shape: shape, data: v) }
    static func npyFloat32(_ v: [Float], shape: [Int]) -> [UInt8] {
        npy(descr: "<f4", shape: shape, data: v.flatMap { le32(Int($0.bitPattern)) })
    }
    static func npyInt64(_ v: [Int], shape: [Int]? = nil) -> [UInt8] {
        npy(descr: "<i8", shape: shape ?? [v.count], data: v.flatMap { le64(UInt64(bitPattern: Int64($0))) })
    }
    static func npyInt32(_ v: [Int]) -> [UInt8] {
        npy(descr: "<i4", shape: [v.count], data: v.flatMap { le32($0) })
    }

    /// A zip archive of `members`, stored or deflated, as numpy.savez / savez_compressed write.
    static func zip(_ members: [(String, [UInt8])], deflated: Bool) -> [UInt8] {
        var out = [UInt8](), central = [UInt8]()
        for (name, data) in members {
            let payload = deflated ? ZlibCodec.deflate(data, wrapper: .raw) : data
            let crc = Int(ZlibCodec.crc32(data))
            let method = deflated ? 8 : 0
            let offset = out.count
            let nameBytes = Array(name.utf8)
            out += le32(0x0403_4B50) + le16(20) + le16(0) + le16(method) + le16(0) + le16(0x21)
            out += le32(crc) + le32(payload.count) + le32(data.count) + le16(nameBytes.count) + le16(0) + nameBytes
            out += payload
            central += le32(0x0201_4B50) + le16(20) + le16(20) + le16(0) + le16(method) + le16(0) + le16(0x21)
            central += le32(crc) + le32(payload.count) + le32(data.count) + le16(nameBytes.count) + le16(0) + le16(0)
            central += le16(0) + le16(0) + le32(0) + le32(offset) + nameBytes
        }
        let cdOffset = out.count
        out += central
        out += le32(0x0605_4B50) + le16(0) + le16(0) + le16(members.count) + le16(members.count)
        out += le32(central.count) + le32(cdOffset) + le16(0)
        return out
    }

    /// x_train (5 images 3×8×8, NHWC uint8), y_train int64, x_test (2), y_test int32.
    static func npzMembers(xTrainKey: String = "x_train", yTest: [Int] = [1, 2]) -> [(String, [UInt8])] {
        [(xTrainKey + ".npy", npyUInt8(pixelsNHWC(n: 5, c: 3, h: 8, w: 8), shape: [5, 8, 8, 3])),
         ("y_train.npy", npyInt64([0, 1, 2, 0, 1])),
         ("x_test.npy", npyUInt8(pixelsNHWC(n: 2, c: 3, h: 8, w: 8, offset: 50), shape: [2, 8, 8, 3])),
         ("y_test.npy", npyInt32(yTest))]
    }

    // MARK: PNG

    /// 8-bit PNG with the raw rows given (for bit depths and color types the encoder does not write).
    static func pngRaw(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]],
                       chunks: [(String, [UInt8])] = [], interlace: UInt8 = 0) -> [UInt8] {
        PNG.assemble(width: width, height: height, bitDepth: bitDepth, colorType: colorType, extraChunks: chunks,
                     raw: rows.flatMap { [0] + $0 }, level: 6, interlace: interlace)
    }
}
