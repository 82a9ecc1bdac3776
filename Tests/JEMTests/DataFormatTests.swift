import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The dataset readers: every format read back from fixtures the tests write themselves, and
/// every kind of bad input answered by a one-line `DataError` naming the file.
final class DataFormatTests: XCTestCase {
    typealias F = DataFixtures
    var dir = ""

    override func setUp() {
        super.setUp()
        dir = F.makeTempDir()
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
        super.tearDown()
    }

    // MARK: Helpers

    /// `body` must throw a `DataError` whose one-line description names `file` (and contains
    /// `message` when given).
    func assertDataError<T>(_ body: @autoclosure () throws -> T, names file: String, _ message: String? = nil,
                            file sourceFile: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected a DataError naming \(file)", file: sourceFile, line: line)
        } catch let error as DataError {
            let text = error.description
            XCTAssertFalse(text.contains("\n"), "multi-line error: \(text)", file: sourceFile, line: line)
            XCTAssertTrue(text.contains(file), "error does not name \(file): \(text)", file: sourceFile, line: line)
            if let message {
                XCTAssertTrue(text.contains(message), "error lacks '\(message)': \(text)", file: sourceFile, line: line)
            }
        } catch {
            XCTFail("expected a DataError, got \(type(of: error)): \(error)", file: sourceFile, line: line)
        }
    }

    func bytes(of set: ImageSet) -> [UInt8] {
        guard case .uint8(let p) = set.pixels else { XCTFail("expected uint8 pixels"); return [] }
        return p
    }

    func floats(of set: ImageSet) -> [Float] {
        (0..<set.count).flatMap { set.image($0) }
    }

    func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
        XCTAssertEqual(a.count, b.count)
        return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    func checkRange(_ set: ImageSet, file: StaticString = #filePath, line: UInt = #line) {
        let v = floats(of: set)
        XCTAssertTrue(v.allSatisfy { $0 >= -1 && $0 <= 1 }, "values outside [-1, 1]", file: file, line: line)
    }

    // MARK: IDX

    func testIDXFolderPlainAndGzip() throws {
        for gz in [false, true] {
            let folder = F.idxFolder(dir + "/mnist-\(gz)", gz: gz)
            let d = try DatasetLoader.load(folder)
            XCTAssertEqual(d.format, "IDX")
            XCTAssertEqual(d.summary, "IDX: 6 train, 4 test, 1×8×8, 6 classes")
            XCTAssertEqual(d.train.shape, [1, 8, 8])
            XCTAssertEqual(d.train.labels, [0, 1, 2, 3, 4, 5])
            XCTAssertEqual(d.test?.labels, [5, 4, 3, 2])
            XCTAssertEqual(bytes(of: d.train), F.pixelsNCHW(n: 6, c: 1, h: 8, w: 8))
            XCTAssertEqual(bytes(of: d.test!), F.pixelsNCHW(n: 4, c: 1, h: 8, w: 8, offset: 100))
            checkRange(d.train)
        }
    }

    func testIDXSingleImagesFileIsUnlabelled() throws {
        let path = F.write(F.gzip(F.idxImages(n: 3, h: 9, w: 10)), dir + "/ood-images-idx3-ubyte.gz")
        let d = try DatasetLoader.load(path)
        XCTAssertEqual(d.summary, "IDX: 3 train, no test, 1×9×10, unlabelled")
        XCTAssertNil(d.train.labels)
        XCTAssertEqual(bytes(of: d.train), F.pixelsNCHW(n: 3, c: 1, h: 9, w: 10))
    }

    // MARK: CIFAR

    func testCIFAR10FolderAndTarGz() throws {
        let folder = dir + "/cifar-10-batches-bin"
        for (name, data) in F.cifar10Members() { F.write(data, folder + "/" + name) }
        let tgz = F.write(F.gzip(F.tar(folder: "cifar-10-batches-bin", members: F.cifar10Members())),
                          dir + "/cifar-10-binary.tar.gz")
        for path in [folder, dir, tgz] {  // `dir` holds the folder one level down
            let d = try DatasetLoader.load(path)
            XCTAssertEqual(d.summary, "CIFAR-10: 10 train, 3 test, 3×32×32, 10 classes", path)
            XCTAssertEqual(d.train.labels, (0..<10).map(Int32.init))
            XCTAssertEqual(d.test?.labels, [9, 0, 5])
            XCTAssertEqual(d.classNames?.first, "airplane")
            XCTAssertEqual(bytes(of: d.train), F.pixelsNCHW(n: 10, c: 3, h: 32, w: 32))
            XCTAssertEqual(bytes(of: d.test!), F.pixelsNCHW(n: 3, c: 3, h: 32, w: 32, offset: 100))
        }
    }

    func testCIFAR100FineCoarseAndTar() throws {
        let folder = dir + "/cifar-100-binary"
        for (name, data) in F.cifar100Members() { F.write(data, folder + "/" + name) }
        let fine = try DatasetLoader.load(folder)
        XCTAssertEqual(fine.summary, "CIFAR-100: 4 train, 2 test, 3×32×32, 100 classes")
        XCTAssertEqual(fine.train.labels, [99, 42, 0, 7])
        XCTAssertEqual(fine.classNames?[99], "worm")
        let coarse = try DatasetLoader.load(folder, options: LoadOptions(cifar100Labels: .coarse))
        XCTAssertEqual(coarse.classCount, 20)
        XCTAssertEqual(coarse.train.labels, [0, 19, 3, 7])
        XCTAssertEqual(coarse.test?.labels, [1, 2])
        let tar = F.write(F.tar(folder: "cifar-100-binary", members: F.cifar100Members()), dir + "/c100.tar")
        let fromTar = try DatasetLoader.load(tar)
        XCTAssertEqual(fromTar.train, fine.train)
        XCTAssertEqual(fromTar.test, fine.test)
        XCTAssertEqual(CIFARBinary.cifar100FineNames.count, 100)
        XCTAssertEqual(CIFARBinary.cifar100CoarseNames.count, 20)
    }

    // MARK: SVHN

    func testSVHNMatUncompressedAndCompressed() throws {
        let labels = [1, 10, 5]
        for compressed in [false, true] {
            for yAsUInt8 in [false, true] {
                let path = F.write(F.svhnMat(n: 3, labels: labels, compressed: compressed, yAsUInt8: yAsUInt8),
                                   dir + "/svhn-\(compressed)-\(yAsUInt8)/train_32x32.mat")
                let d = try DatasetLoader.load(path)
                XCTAssertEqual(d.summary, "SVHN: 3 train, no test, 3×32×32, 10 classes")
                XCTAssertEqual(d.train.labels, [1, 0, 5], "label 10 is digit 0")
                XCTAssertEqual(bytes(of: d.train), F.pixelsNCHW(n: 3, c: 3, h: 32, w: 32))
            }
        }
        // A folder with both splits; a single-image file whose X lost its trailing dimension.
        let folder = dir + "/svhn"
        F.write(F.svhnMat(n: 2, labels: [3, 4], compressed: true, yAsUInt8: false), folder + "/train_32x32.mat")
        F.write(F.svhnMat(n: 1, labels: [10], compressed: false, yAsUInt8: false, xDims: [32, 32, 3]),
                folder + "/test_32x32.mat")
        let d = try DatasetLoader.load(folder)
        XCTAssertEqual(d.summary, "SVHN: 2 train, 1 test, 3×32×32, 10 classes")
        XCTAssertEqual(d.test?.labels, [0])
        XCTAssertEqual(bytes(of: d.test!), F.pixelsNCHW(n: 1, c: 3, h: 32, w: 32))
    }

    // MARK: NumPy

    func testNPYLayoutsAndDtypes() throws {
        let nchw = F.pixelsNCHW(n: 2, c: 3, h: 8, w: 9)
        let a = try DatasetLoader.load(F.write(F.npyUInt8(nchw, shape: [2, 3, 8, 9]), dir + "/a.npy"))
        XCTAssertEqual(a.summary, "NumPy .npy: 2 train, no test, 3×8×9, unlabelled")
        XCTAssertEqual(bytes(of: a.train), nchw)
        let b = try DatasetLoader.load(F.write(F.npyUInt8(F.pixelsNHWC(n: 2, c: 3, h: 8, w: 9), shape: [2, 8, 9, 3]),
                                               dir + "/b.npy"))
        XCTAssertEqual(bytes(of: b.train), nchw, "NHWC is transposed to NCHW")
        let gray = F.pixelsNCHW(n: 4, c: 1, h: 8, w: 8)
        let c = try DatasetLoader.load(F.write(F.npyUInt8(gray, shape: [4, 8, 8]), dir + "/c.npy"))
        XCTAssertEqual(c.train.shape, [1, 8, 8])
        XCTAssertEqual(bytes(of: c.train), gray)

        // float32 in [0, 1] is rescaled to [-1, 1]; the same image as its uint8 form / 255.
        let f = try DatasetLoader.load(F.write(F.npyFloat32(nchw.map { Float($0) / 255 }, shape: [2, 3, 8, 9]), dir + "/f.npy"))
        XCTAssertEqual(maxDiff(floats(of: f.train), floats(of: a.train)), 0, accuracy: 1e-5)
        let g = try DatasetLoader.load(F.write(F.npyFloat32(nchw.map { Float($0) }, shape: [2, 3, 8, 9]), dir + "/g.npy"))
        XCTAssertEqual(maxDiff(floats(of: g.train), floats(of: a.train)), 0, accuracy: 1e-5)
        checkRange(f.train)

        // (N, 3, 8, 3) is ambiguous; 4 channels need the layout given.
        let amb = F.write(F.npyUInt8(F.pixelsNCHW(n: 1, c: 3, h: 8, w: 3), shape: [1, 3, 8, 3]), dir + "/amb.npy")
        assertDataError(try DatasetLoader.load(amb), names: "amb.npy", "layout")
        let four = F.write(F.npyUInt8(F.pixelsNCHW(n: 2, c: 4, h: 8, w: 8), shape: [2, 4, 8, 8]), dir + "/four.npy")
        assertDataError(try DatasetLoader.load(four), names: "four.npy", "no channel axis")
        let forced = try DatasetLoader.load(four, options: LoadOptions(layout: .nchw))
        XCTAssertEqual(forced.train.shape, [4, 8, 8])
        XCTAssertEqual(bytes(of: forced.train), F.pixelsNCHW(n: 2, c: 4, h: 8, w: 8))

        // Fortran order is transposed to C order.
        var fortran = [UInt8](repeating: 0, count: nchw.count)
        let dims = [2, 3, 8, 9]
        for i in 0..<2 { for k in 0..<3 { for y in 0..<8 { for x in 0..<9 {
            fortran[i + dims[0] * (k + dims[1] * (y + dims[2] * x))] = nchw[((i * 3 + k) * 8 + y) * 9 + x]
        } } } }
        let fo = try DatasetLoader.load(F.write(F.npy(descr: "|u1", shape: dims, data: fortran, fortran: true), dir + "/fo.npy"))
        XCTAssertEqual(bytes(of: fo.train), nchw)
    }

    func testNPZStoredAndDeflated() throws {
        for deflated in [false, true] {
            let path = F.write(F.zip(F.npzMembers(), deflated: deflated), dir + "/d\(deflated).npz")
            let d = try DatasetLoader.load(path)
            XCTAssertEqual(d.summary, "NumPy .npz: 5 train, 2 test, 3×8×8, 3 classes")
            XCTAssertEqual(d.train.labels, [0, 1, 2, 0, 1])
            XCTAssertEqual(d.test?.labels, [1, 2])
            XCTAssertEqual(bytes(of: d.train), F.pixelsNCHW(n: 5, c: 3, h: 8, w: 8))
            XCTAssertEqual(bytes(of: d.test!), F.pixelsNCHW(n: 2, c: 3, h: 8, w: 8, offset: 50))
        }
        // x, y with uint8 labels of shape (N, 1).
        let xy = F.zip([("x.npy", F.npyUInt8(F.pixelsNCHW(n: 3, c: 1, h: 8, w: 8), shape: [3, 1, 8, 8])),
                        ("y.npy", F.npy(descr: "|u1", shape: [3, 1], data: [2, 0, 1]))], deflated: true)
        let d = try DatasetLoader.load(F.write(xy, dir + "/xy.npz"))
        XCTAssertEqual(d.summary, "NumPy .npz: 3 train, no test, 1×8×8, 3 classes")
        XCTAssertEqual(d.train.labels, [2, 0, 1])
    }

    // MARK: Image folder and PNG

    func testImageFolderOfEveryPNGKind() throws {
        // Class "a": RGB and RGBA (alpha dropped), class "b": palette, class "c": gray+alpha... no:
        // channel counts must agree, so one RGB folder and one gray folder.
        let rgb = dir + "/rgb"
        let img0 = F.pixelsNHWC(n: 1, c: 3, h: 8, w: 10)
        F.write(PNG.encode(pixels: img0, width: 10, height: 8, channels: 3), rgb + "/b/0.png")
        var rgba = [UInt8]()
        let img1 = F.pixelsNHWC(n: 1, c: 3, h: 8, w: 10, offset: 1)
        for p in 0..<80 { rgba += img1[(3 * p)..<(3 * p + 3)] + [UInt8(p)] }
        F.write(PNG.encode(pixels: rgba, width: 10, height: 8, channels: 4), rgb + "/b/1.png")
        // Palette: 4 colors.
        let palette: [UInt8] = [0, 0, 0, 255, 0, 0, 0, 255, 0, 10, 20, 30]
        let indices = (0..<80).map { UInt8($0 % 4) }
        F.write(PNG.encodePalette(indices: indices, width: 10, height: 8, palette: palette), rgb + "/a/p.png")
        F.write([UInt8]("ignored".utf8), rgb + "/a/readme.txt")
        let d = try DatasetLoader.load(rgb)
        XCTAssertEqual(d.summary, "image folder: 3 train, no test, 3×8×10, 2 classes")
        XCTAssertEqual(d.classNames, ["a", "b"])
        XCTAssertEqual(d.train.labels, [0, 1, 1])
        let px = bytes(of: d.train)
        XCTAssertEqual(Array(px[0..<3]), [0, 255, 0], "palette index 0, 1, 2 in red plane")
        XCTAssertEqual(Array(px[240..<480]), F.pixelsNCHW(n: 1, c: 3, h: 8, w: 10))
        XCTAssertEqual(Array(px[480..<720]), F.pixelsNCHW(n: 1, c: 3, h: 8, w: 10, offset: 1))

        // Gray and gray+alpha, with train/test splits.
        let gray = dir + "/gray"
        let g0 = F.pixelsNCHW(n: 1, c: 1, h: 8, w: 8)
        var ga = [UInt8]()
        for v in g0 { ga += [v, 7] }
        F.write(PNG.encode(pixels: g0, width: 8, height: 8, channels: 1), gray + "/train/cat/0.png")
        F.write(PNG.encode(pixels: ga, width: 8, height: 8, channels: 2), gray + "/train/dog/0.png")
        F.write(PNG.encode(pixels: g0, width: 8, height: 8, channels: 1), gray + "/test/dog/0.png")
        let s = try DatasetLoader.load(gray)
        XCTAssertEqual(s.summary, "image folder: 2 train, 1 test, 1×8×8, 2 classes")
        XCTAssertEqual(s.test?.labels, [1])
        XCTAssertEqual(bytes(of: s.train), g0 + g0)
    }

    func testPNGRoundTripEveryFilterAndKind() throws {
        for channels in 1...4 {
            let (w, h) = (13, 7)
            let pixels = (0..<(w * h * channels)).map { UInt8(truncatingIfNeeded: $0 * 29 + ($0 / 7) * 3) }
            for filter in [nil] + PNG.Filter.allCases.map(Optional.some) {
                let png = PNG.encode(pixels: pixels, width: w, height: h, channels: channels, filter: filter)
                let back = try PNG.decode(png)
                XCTAssertEqual(back, PNG.Image(width: w, height: h, channels: channels, pixels: pixels),
                               "channels \(channels), filter \(String(describing: filter))")
            }
        }
        // Palette with transparency, and 1-bit / 4-bit gray (written by hand).
        let pal = try PNG.decode(PNG.encodePalette(indices: [0, 1, 1, 0], width: 2, height: 2,
                                                   palette: [1, 2, 3, 4, 5, 6], alpha: [9]))
        XCTAssertEqual(pal.channels, 4)
        XCTAssertEqual(pal.pixels, [1, 2, 3, 9, 4, 5, 6, 255, 4, 5, 6, 255, 1, 2, 3, 9])
        let oneBit = try PNG.decode(F.pngRaw(width: 10, height: 1, bitDepth: 1, colorType: 0, rows: [[0b1010_0000, 0b1100_0000]]))
        XCTAssertEqual(oneBit.pixels, [255, 0, 255, 0, 0, 0, 0, 0, 255, 255])
        let fourBit = try PNG.decode(F.pngRaw(width: 3, height: 1, bitDepth: 4, colorType: 0, rows: [[0xF0, 0x80]]))
        XCTAssertEqual(fourBit.pixels, [255, 0, 136])
        let sixteen = try PNG.decode(F.pngRaw(width: 2, height: 1, bitDepth: 16, colorType: 2,
                                              rows: [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]]))
        XCTAssertEqual(sixteen.pixels, [1, 3, 5, 7, 9, 11])
    }

    func testImageGridIsWrittenAtomically() throws {
        let set = BuiltinDataset.images(count: 7, split: 0, seed: 3)
        let path = dir + "/grid.png"
        try ImageGrid.write(set, count: 7, columns: 4, to: path)
        let png = try PNG.read(path)
        XCTAssertEqual(png.width, 4 * 30 + 2)
        XCTAssertEqual(png.height, 2 * 30 + 2)
        XCTAssertEqual(png.channels, 1)
        // The first image sits at (2, 2), the same bytes it was made from (v/127.5-1 round trip).
        XCTAssertEqual(png.pixels[2 * png.width + 2], bytes(of: set)[0])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["grid.png"], "no temporary file left")
        assertDataError(try ImageGrid.write(set, count: 7, columns: 4, to: dir + "/missing/grid.png"), names: "grid.png")
        let rgb = try ImageGrid.encode(images: [Float](repeating: 2, count: 2 * 3 * 8 * 8), count: 2, channels: 3,
                                       height: 8, width: 8, columns: 1)
        let decoded = try PNG.decode(rgb)
        XCTAssertEqual(decoded.channels, 3)
        XCTAssertEqual(decoded.pixels[(2 * decoded.width + 2) * 3], 255, "clamped to 1")
    }

    // MARK: Built-in

    func testBuiltinIsDeterministicBalancedAndInRange() throws {
        let a = try DatasetLoader.load("builtin", options: LoadOptions(builtinTrainCount: 500, builtinTestCount: 105, builtinSeed: 42))
        let b = BuiltinDataset.make(trainCount: 500, testCount: 105, seed: 42)
        let c = BuiltinDataset.make(trainCount: 500, testCount: 105, seed: 43)
        XCTAssertEqual(a.summary, "builtin: 500 train, 105 test, 1×28×28, 10 classes")
        XCTAssertEqual(a.train, b.train)
        XCTAssertEqual(a.test, b.test)
        XCTAssertNotEqual(a.train.pixels, c.train.pixels)
        XCTAssertNotEqual(a.train.pixels, a.test!.subset(Array(0..<100)).pixels)
        XCTAssertEqual(a.train.labelCounts(), [Int](repeating: 50, count: 10))
        XCTAssertEqual(a.test!.labelCounts(), [11, 11, 11, 11, 11, 10, 10, 10, 10, 10])
        // A prefix of a larger set is the smaller set: image i depends only on (seed, split, i).
        XCTAssertEqual(BuiltinDataset.images(count: 20, split: 0, seed: 42), a.train.subset(Array(0..<20)))
        // Images are not blank: ink and background both present.
        let px = bytes(of: a.train)
        for i in 0..<10 {
            let img = px[(i * 784)..<((i + 1) * 784)]
            XCTAssertGreaterThan(img.max()!, 150)
            XCTAssertLessThan(img.filter { $0 > 128 }.count, 400)
        }
        checkRange(a.test!)
        let start = Date()
        _ = BuiltinDataset.images(count: 2000, split: 0, seed: 1)
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "2000 images must be fast even in a debug build")
    }

    func testImageSetSubsetAndImage() {
        let set = ImageSet(channels: 1, height: 2, width: 2, count: 3, pixels: .uint8([0, 255, 127, 128, 1, 2, 3, 4, 9, 9, 9, 9]),
                           labels: [7, 8, 9])
        XCTAssertEqual(set.image(0), [-1, 1, 127 / 127.5 - 1, 128 / 127.5 - 1])
        let s = set.subset([2, 0, 2])
        XCTAssertEqual(s.count, 3)
        XCTAssertEqual(s.labels, [9, 7, 9])
        XCTAssertEqual(s.image(1), set.image(0))
        let f = ImageSet(channels: 1, height: 1, width: 2, count: 2, pixels: .float32([0.5, -0.5, 1, -1]), labels: nil)
        XCTAssertEqual(f.subset([1]).image(0), [1, -1])
    }

    // MARK: Bad input

    func testMissingPathsAndEmptyFolders() throws {
        assertDataError(try DatasetLoader.load(dir + "/nope"), names: "nope", "no such file")
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        assertDataError(try DatasetLoader.load(empty), names: "empty", "empty folder")
        try FileManager.default.createDirectory(atPath: empty + "/cls", withIntermediateDirectories: true)
        assertDataError(try DatasetLoader.load(empty), names: "cls", "no .png files")
        F.write([1, 2, 3], dir + "/strange.xyz")
        assertDataError(try DatasetLoader.load(dir + "/strange.xyz"), names: "strange.xyz", "unrecognised")
        assertDataError(try DatasetLoader.load("builtin", options: LoadOptions(builtinTrainCount: 0)), names: "builtin")
    }

    func testWrongMagic() {
        var idx = F.idxImages(n: 2)
        idx[2] = 0x09
        assertDataError(try IDXFile.parse(idx, file: "x-images-idx3-ubyte", rank: 3), names: "x-images-idx3-ubyte", "element type")
        idx[0] = 0x42
        assertDataError(try IDXFile.parse(idx, file: "x-images-idx3-ubyte", rank: 3), names: "x-images-idx3-ubyte", "wrong magic")
        let folder = F.idxFolder(dir + "/m", gz: false)
        F.write(F.idxImages(n: 6), folder + "/train-labels-idx1-ubyte")  // an image file where labels belong
        assertDataError(try DatasetLoader.load(folder), names: "train-labels-idx1-ubyte", "expected a label file")
        var npy = F.npyUInt8([1, 2], shape: [2])
        npy[1] = UInt8(ascii: "X")
        assertDataError(try NPYArray(bytes: npy, file: "a.npy"), names: "a.npy", "wrong magic")
        var png = PNG.encode(pixels: [1], width: 1, height: 1, channels: 1)
        png[1] = 0
        assertDataError(try PNG.decode(png, file: "p.png"), names: "p.png", "wrong magic")
        var mat = F.svhnMat(n: 1, labels: [1], compressed: false, yAsUInt8: true)
        mat[126] = UInt8(ascii: "X")
        assertDataError(try MATFile(bytes: mat, file: "t.mat"), names: "t.mat", "wrong magic")
        assertDataError(try ZipArchive(bytes: [UInt8](repeating: 7, count: 100), file: "z.npz"), names: "z.npz", "wrong magic")
        assertDataError(try TarArchive(bytes: [UInt8](repeating: 7, count: 1024), file: "t.tar"), names: "t.tar", "checksum")
        assertDataError(try PNG.decode(F.pngRaw(width: 1, height: 1, bitDepth: 8, colorType: 0, rows: [[0]], interlace: 1),
                                       file: "i.png"), names: "i.png", "interlaced")
    }

    func testLabelCountMismatch() {
        let folder = F.idxFolder(dir + "/m", gz: true, trainLabels: [0, 1, 2, 3, 4])
        assertDataError(try DatasetLoader.load(folder), names: "train-labels-idx1-ubyte.gz",
                        "label count 5 does not match image count 6")
        var members = F.npzMembers()
        members[1] = ("y_train.npy", F.npyInt64([0, 1, 2]))
        let npz = F.write(F.zip(members, deflated: false), dir + "/bad.npz")
        assertDataError(try DatasetLoader.load(npz), names: "bad.npz", "label count 3 in y_train does not match image count 5")
        let mat = F.write(F.svhnMat(n: 2, labels: [1, 2, 3], compressed: true, yAsUInt8: false), dir + "/train_32x32.mat")
        assertDataError(try DatasetLoader.load(mat), names: "train_32x32.mat", "label count 3")
    }

    func testLabelsOutOfRange() {
        let npz = F.write(F.zip(F.npzMembers(yTest: [1, 3]), deflated: true), dir + "/range.npz")
        assertDataError(try DatasetLoader.load(npz), names: "range.npz", "test label 3 of image 1 is outside 0..<3")
        let ok = F.write(F.zip(F.npzMembers(), deflated: true), dir + "/ok.npz")
        XCTAssertEqual(try DatasetLoader.load(ok, options: LoadOptions(classCount: 10)).classCount, 10)
        assertDataError(try DatasetLoader.load(ok, options: LoadOptions(classCount: 2)), names: "ok.npz", "label 2")
        var negative = F.npzMembers()
        negative[1] = ("y_train.npy", F.npyInt64([0, 1, -1, 0, 1]))
        assertDataError(try DatasetLoader.load(F.write(F.zip(negative, deflated: false), dir + "/neg.npz")),
                        names: "neg.npz", "y_train[2] is -1.0")
        var cifar = F.cifar10Members()
        cifar[3].1[3073] = 10  // second record of data_batch_3
        let folder = dir + "/c10"
        for (name, data) in cifar { F.write(data, folder + "/" + name) }
        assertDataError(try DatasetLoader.load(folder), names: "data_batch_3.bin", "record 1: label 10, expected 0..<10")
        let svhn = F.write(F.svhnMat(n: 2, labels: [1, 11], compressed: false, yAsUInt8: true), dir + "/s/test_32x32.mat")
        assertDataError(try DatasetLoader.load(svhn), names: "test_32x32.mat", "label 11")
    }

    func testNPZMissingKeyAndWrongShapes() {
        let noY = F.zip(Array(F.npzMembers().filter { $0.0 != "y_train.npy" }), deflated: false)
        assertDataError(try DatasetLoader.load(F.write(noY, dir + "/noy.npz")), names: "noy.npz", "missing array 'y_train'")
        let wrongKey = F.zip(F.npzMembers(xTrainKey: "images"), deflated: true)
        assertDataError(try DatasetLoader.load(F.write(wrongKey, dir + "/wk.npz")), names: "wk.npz", "missing array 'x_train'")
        let oneHot = F.zip([("x.npy", F.npyUInt8(F.pixelsNCHW(n: 2, c: 1, h: 8, w: 8), shape: [2, 8, 8])),
                            ("y.npy", F.npyInt64([1, 0, 0, 1], shape: [2, 2]))], deflated: false)
        assertDataError(try DatasetLoader.load(F.write(oneHot, dir + "/oh.npz")), names: "oh.npz", "one-hot")
        let flat = F.npyUInt8([UInt8](repeating: 0, count: 2 * 64), shape: [2, 64])
        assertDataError(try DatasetLoader.load(F.write(flat, dir + "/flat.npy")), names: "flat.npy", "expected images")
        let complexType = F.npy(descr: "<c8", shape: [1], data: [UInt8](repeating: 0, count: 8))
        assertDataError(try DatasetLoader.load(F.write(complexType, dir + "/c8.npy")), names: "c8.npy", "dtype '<c8'")
        let standardized = F.npyFloat32([-3, 2, 0, 1] + [Float](repeating: 0, count: 60), shape: [1, 8, 8])
        assertDataError(try DatasetLoader.load(F.write(standardized, dir + "/z.npy")), names: "z.npy", "[-3.0, 2.0]")
        let tiny = F.npyUInt8([UInt8](repeating: 0, count: 2 * 16), shape: [2, 4, 4])
        assertDataError(try DatasetLoader.load(F.write(tiny, dir + "/tiny.npy")), names: "tiny.npy", "at least 8×8")
    }

    /// Float images holding NaN or ±Inf are refused at load, naming the file (and the array
    /// inside an .npz): a single NaN pixel would otherwise turn the first batch's loss into NaN.
    func testNonFiniteFloatPixelsAreRefused() {
        for bad: Float in [.nan, .infinity, -.infinity] {
            let pixels = [Float](repeating: 0.5, count: 127) + [bad]
            let f32 = F.write(F.npyFloat32(pixels, shape: [2, 8, 8]), dir + "/f32.npy")
            assertDataError(try DatasetLoader.load(f32), names: "f32.npy", "non-finite value (\(bad))")
            let f64 = F.write(F.npy(descr: "<f8", shape: [2, 8, 8], data: pixels.flatMap { F.le64(Double($0).bitPattern) }),
                              dir + "/f64.npy")
            assertDataError(try DatasetLoader.load(f64), names: "f64.npy", "non-finite value")
            var members = F.npzMembers()
            members[0] = ("x_train.npy", F.npyFloat32([Float](repeating: 0.5, count: 5 * 3 * 64 - 1) + [bad], shape: [5, 3, 8, 8]))
            let npz = F.write(F.zip(members, deflated: true), dir + "/nan.npz")
            assertDataError(try DatasetLoader.load(npz), names: "nan.npz: x_train.npy", "non-finite value")
        }
    }

    func testImageFolderMixedSizesAndChannels() {
        let sizes = dir + "/sizes"
        F.write(PNG.encode(pixels: [UInt8](repeating: 1, count: 64), width: 8, height: 8, channels: 1), sizes + "/a/0.png")
        F.write(PNG.encode(pixels: [UInt8](repeating: 1, count: 72), width: 9, height: 8, channels: 1), sizes + "/b/0.png")
        assertDataError(try DatasetLoader.load(sizes), names: "b/0.png", "9×8 pixels")
        let channels = dir + "/channels"
        F.write(PNG.encode(pixels: [UInt8](repeating: 1, count: 64), width: 8, height: 8, channels: 1), channels + "/a/0.png")
        F.write(PNG.encode(pixels: [UInt8](repeating: 1, count: 192), width: 8, height: 8, channels: 3), channels + "/a/1.png")
        assertDataError(try DatasetLoader.load(channels), names: "a/1.png", "3 channels")
        let jpeg = dir + "/jpeg"
        F.write([0xFF, 0xD8], jpeg + "/a/0.jpg")
        assertDataError(try DatasetLoader.load(jpeg), names: "0.jpg", "only PNG")
        let corrupt = dir + "/corrupt"
        F.write(PNG.encode(pixels: [UInt8](repeating: 1, count: 64), width: 8, height: 8, channels: 1), corrupt + "/a/0.png")
        F.write(Array(PNG.encode(pixels: [UInt8](repeating: 1, count: 64), width: 8, height: 8, channels: 1).prefix(40)),
                corrupt + "/a/1.png")
        assertDataError(try DatasetLoader.load(corrupt), names: "a/1.png", "truncated")
    }

    func testAbsurdHeaderSizes() {
        // IDX dimensions whose product overflows Int.
        let huge = [0, 0, 8, 3] + F.be32(0xFFFF_FFFF) + F.be32(0xFFFF_FFFF) + F.be32(0xFFFF_FFFF) + [1, 2, 3]
        let idxPath = F.write(huge, dir + "/huge-images-idx3-ubyte")
        assertDataError(try DatasetLoader.load(idxPath), names: "huge-images-idx3-ubyte", "overflow")
        let big = [0, 0, 8, 3] + F.be32(0x7FFF_FFFF) + F.be32(28) + F.be32(28) + [1, 2, 3]
        assertDataError(try IDXFile.parse(big, file: "big", rank: 3), names: "big", "truncated")
        // NPY shapes of 2^62 (and 2^62 × 28 × 28, which overflows), and beyond 64 bits.
        let npy1 = F.npy(descr: "|u1", shape: [], data: [0, 1, 2], shapeText: "(4611686018427387904, 28, 28)")
        assertDataError(try DatasetLoader.load(F.write(npy1, dir + "/a.npy")), names: "a.npy", "too large")
        let npy2 = F.npy(descr: "|u1", shape: [], data: [0, 1, 2], shapeText: "(4611686018427387904,)")
        assertDataError(try DatasetLoader.load(F.write(npy2, dir + "/b.npy")), names: "b.npy", "truncated")
        let npy3 = F.npy(descr: "<f4", shape: [], data: [], shapeText: "(99999999999999999999999, 1)")
        assertDataError(try DatasetLoader.load(F.write(npy3, dir + "/c.npy")), names: "c.npy", "malformed")
        var npy4 = F.npyUInt8([1], shape: [1])
        npy4[6] = 2; npy4[8] = 0xFF; npy4[9] = 0xFF  // version 2: a 4-byte header length of ~4 GiB
        npy4.insert(contentsOf: [0xFF, 0x7F], at: 10)
        assertDataError(try NPYArray(bytes: npy4, file: "d.npy"), names: "d.npy", "truncated")
        // A MAT variable claiming 2^31 × 2^31 × … elements.
        let dims = [0x7FFF_FFFF, 0x7FFF_FFFF, 0x7FFF_FFFF, 0x7FFF_FFFF]
        let mat = F.matHeader() + F.matMatrix(name: "X", classID: 9, dims: dims, storage: 2, data: [1, 2, 3])
        assertDataError(try MATFile(bytes: mat, file: "m.mat"), names: "m.mat", "overflow")
        let mat2 = F.matHeader() + F.le32(14) + F.le32(0x7FFF_FFF0) + [UInt8](repeating: 0, count: 16)
        assertDataError(try MATFile(bytes: mat2, file: "m2.mat"), names: "m2.mat", "truncated")
        // A PNG claiming 2^31-1 × 2^31-1 pixels from a few bytes of IDAT.
        for (side, message) in [(0x7FFF_FFFF, "too large"), (100_000, "cannot hold")] {
            var ihdr = F.pngRaw(width: 1, height: 1, bitDepth: 8, colorType: 2, rows: [[1, 2, 3]])
            ihdr.replaceSubrange(16..<24, with: F.be32(side) + F.be32(side))
            let crc = ZlibCodec.crc32(ihdr, range: 12..<29)
            ihdr.replaceSubrange(29..<33, with: F.be32(Int(crc)))
            assertDataError(try PNG.decode(ihdr, file: "w.png"), names: "w.png", message)
        }
        // A tar member declaring 8 GiB, a zip member declaring 4 GiB from 10 bytes.
        var tar = F.tar(folder: "x", members: [("a.bin", [1, 2, 3])])
        let header = F.tarHeader(name: "x/a.bin", size: 0o77777777777)
        tar.replaceSubrange(512..<1024, with: header)
        assertDataError(try TarArchive(bytes: tar, file: "t.tar"), names: "t.tar", "declares 8589934591 bytes")
        var zip = F.zip([("x.npy", F.npyUInt8([1, 2, 3], shape: [3]))], deflated: true)
        let cd = zip.count - 22 - 46 - 5
        zip.replaceSubrange((cd + 24)..<(cd + 28), with: F.le32(0xFFFF_FFF0))
        assertDataError(try ZipArchive(bytes: zip, file: "z.npz").extract(ZipArchive(bytes: zip, file: "z.npz").entries[0]),
                        names: "z.npz", "cannot inflate to the declared")
    }

    /// Every strict prefix of every fixture is refused with a DataError naming the file (CIFAR
    /// batches cut at a record boundary are valid smaller batches, and accepted).
    func testTruncatedFilesAtManyLengths() throws {
        let cifar = F.cifar10Members()[1].1
        let fixtures: [(String, [UInt8], ([UInt8], String) throws -> Void)] = [
            ("t-images-idx3-ubyte", F.idxImages(n: 3), { b, f in _ = try IDXFile.parse(b, file: f, rank: 3) }),
            ("t-labels.gz", F.gzip(F.idxLabels([1, 2, 3, 4, 5, 6, 7, 8])), { b, f in
                _ = try IDXFile.parse(try ZlibCodec.inflate(b, wrapper: .auto, file: f, multiMember: true), file: f, rank: 1)
            }),
            ("a.npy", F.npyUInt8(F.pixelsNCHW(n: 2, c: 1, h: 8, w: 8), shape: [2, 8, 8]), { b, f in _ = try NPYArray(bytes: b, file: f) }),
            ("stored.npz", F.zip(F.npzMembers(), deflated: false), { b, f in
                let z = try ZipArchive(bytes: b, file: f)
                for e in z.entries { _ = try NPYArray(bytes: try z.extract(e), file: f) }
                if z.entries.count != 4 { throw DataError(f, "entries") }
            }),
            ("deflated.npz", F.zip(F.npzMembers(), deflated: true), { b, f in
                let z = try ZipArchive(bytes: b, file: f)
                for e in z.entries { _ = try NPYArray(bytes: try z.extract(e), file: f) }
                if z.entries.count != 4 { throw DataError(f, "entries") }
            }),
            ("plain.mat", F.svhnMat(n: 1, labels: [3], h: 8, w: 8, compressed: false, yAsUInt8: false), { b, f in
                let m = try MATFile(bytes: b, file: f)
                if m.variables.count != 2 { throw DataError(f, "variables") }
            }),
            ("zipped.mat", F.svhnMat(n: 1, labels: [3], h: 8, w: 8, compressed: true, yAsUInt8: true), { b, f in
                let m = try MATFile(bytes: b, file: f)
                if m.variables.count != 2 { throw DataError(f, "variables") }
            }),
            ("i.png", PNG.encode(pixels: F.pixelsNHWC(n: 1, c: 3, h: 5, w: 6), width: 6, height: 5, channels: 3), { b, f in
                _ = try PNG.decode(b, file: f)
            }),
            ("c.tar.gz", F.gzip(F.tar(folder: "c", members: [("data_batch_1.bin", cifar)])), { b, f in
                let t = try TarArchive(bytes: try ZlibCodec.inflate(b, wrapper: .auto, file: f, multiMember: true), file: f)
                _ = try CIFARBinary.loadArchive(t, coarse: false)
            }),
        ]
        var checked = 0
        for (name, full, parse) in fixtures {
            XCTAssertNoThrow(try parse(full, name), name)
            let lengths = full.count <= 1200 ? Array(0..<full.count)
                                             : Array(0..<600) + Array(stride(from: 600, to: full.count, by: 37))
            for n in lengths {
                assertDataError(try parse(Array(full.prefix(n)), name), names: name)
                checked += 1
            }
        }
        // CIFAR batches and a truncated file through the loader.
        for n in [0, 1, 3072, 3073, 3074, 6145] {
            let path = F.write(Array(cifar.prefix(n)), dir + "/cut/data_batch_1.bin")
            if n > 0 && n % 3073 == 0 {
                XCTAssertEqual(try DatasetLoader.load(dir + "/cut").train.count, n / 3073)
            } else {
                assertDataError(try DatasetLoader.load(dir + "/cut"), names: path)
            }
        }
        XCTAssertGreaterThan(checked, 3000)
    }

    /// Random byte flips (fixed seed, fixed count) in every fixture: each parse either succeeds or
    /// throws a one-line DataError; it never traps. `JEM_FUZZ_ITERATIONS` (default 60 per fixture)
    /// and `JEM_FUZZ_SEED` run a longer or different loop.
    func testRandomByteFlipsNeverCrash() throws {
        let environment = ProcessInfo.processInfo.environment
        let iterations = environment["JEM_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 60
        let seed = environment["JEM_FUZZ_SEED"].flatMap(UInt64.init) ?? 99
        let fixtures: [(String, [UInt8])] = [
            ("f.npz", F.zip(F.npzMembers(), deflated: true)),
            ("g.npz", F.zip(F.npzMembers(), deflated: false)),
            ("h.mat", F.svhnMat(n: 2, labels: [3, 10], h: 8, w: 8, compressed: true, yAsUInt8: false)),
            ("k.mat", F.svhnMat(n: 2, labels: [3, 10], h: 8, w: 8, compressed: false, yAsUInt8: true)),
            ("x-images-idx3-ubyte", F.idxImages(n: 2)),
            ("p.png", PNG.encode(pixels: F.pixelsNHWC(n: 1, c: 3, h: 8, w: 8), width: 8, height: 8, channels: 3)),
            ("q.png", PNG.encodePalette(indices: [0, 1, 2, 1], width: 2, height: 2, palette: [1, 2, 3, 4, 5, 6, 7, 8, 9])),
            ("n.npy", F.npyFloat32([0.5, 0.25, 1, 0] + [Float](repeating: 0.5, count: 60), shape: [1, 1, 8, 8])),
            ("t.tar", F.tar(folder: "c", members: [("train.bin", F.cifar100Members()[0].1)])),
        ]
        var accepted = 0, refused = 0
        var element = 0
        for (name, full) in fixtures {
            let path = dir + "/fuzz/" + name
            for _ in 0..<iterations {
                var b = full
                let flips = 1 + Int(Philox.uniform(seed: seed, stream: 5, element: element) * 4)
                element += 1
                for _ in 0..<flips {
                    let at = min(b.count - 1, Int(Philox.uniform(seed: seed, stream: 6, element: element) * Float(b.count)))
                    let value = UInt8(Philox.uniform(seed: seed, stream: 7, element: element) * 256)
                    element += 1
                    b[at] = name.hasSuffix(".npy") && at < 60 && Philox.uniform(seed: seed, stream: 8, element: element) < 0.5
                        ? UInt8(ascii: "9") : value  // digits in the header: absurd shapes
                }
                F.write(b, path)
                do {
                    if name.hasSuffix(".tar") {
                        _ = try CIFARBinary.loadArchive(try TarArchive(bytes: b, file: path), coarse: false)
                    } else if name.hasSuffix(".png") {
                        _ = try PNG.read(path)
                    } else {
                        _ = try DatasetLoader.load(path)
                    }
                    accepted += 1
                } catch let error as DataError {
                    XCTAssertTrue(error.description.contains(name), error.description)
                    XCTAssertFalse(error.description.contains("\n"))
                    refused += 1
                }
            }
        }
        XCTAssertEqual(accepted + refused, iterations * fixtures.count)
        XCTAssertGreaterThan(refused, 0)
    }
}
