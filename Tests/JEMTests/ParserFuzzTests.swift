import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend
@testable import JEMSupport

/// One fuzzing loop, fixed seed and fixed counts, over every file parser a user can point jem-gpu
/// at: IDX (plain and gzipped), CIFAR binary (folder and .tar.gz), SVHN .mat (plain and
/// compressed), NPY, NPZ (stored and deflated), PNG through the image-folder loader, safetensors,
/// and the config / run-state metadata a checkpoint carries into `--resume`. Each fixture gets
/// every truncation, random byte flips, absurd size fields (binary and written as text), and wrong
/// dtypes and shapes. Every case must parse or throw one line naming the file: never a crash, a
/// hang (each case is timed) or a huge allocation (peak memory is checked). `JEM_TEST_LONG=1`
/// runs 20x the random cases.
final class ParserFuzzTests: XCTestCase {
    typealias F = DataFixtures
    static let long = ProcessInfo.processInfo.environment["JEM_TEST_LONG"] != nil
    static let seed: UInt64 = 20_240_611

    /// One parser under test: a valid fixture, how to run the parser on bytes written to `path`,
    /// and its format-specific hostile variants.
    struct Target {
        let name: String
        let fixture: [UInt8]
        /// Truncation lengths: all of them for small fixtures.
        var lengths: [Int]? = nil
        var structured: [(String, [UInt8])] = []
        /// Fraction of the random cases (flips, sizes, numbers) this target gets.
        var randomShare = 1.0
        /// Writes `bytes` where the parser reads them and parses; returns the file the error must name.
        let parse: (_ bytes: [UInt8], _ folder: String) throws -> Void
        let names: String
    }

    struct Tally { var cases = 0, accepted = 0, refused = 0 }

    var dir = ""

    override func setUp() {
        super.setUp()
        dir = (try? scratchDirectory("jem-fuzz")) ?? F.makeTempDir("jem-fuzz")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
        super.tearDown()
    }

    // MARK: Mutations

    /// 1-4 random bytes set to random values.
    static func flip(_ bytes: [UInt8], _ random: HostRandom, _ i: Int) -> [UInt8] {
        var b = bytes
        let flips = 1 + random.integer(8 * i, below: 4)
        for f in 0..<flips {
            b[random.integer(8 * i + 1 + 2 * f, below: b.count)] = UInt8(random.integer(8 * i + 2 + 2 * f, below: 256))
        }
        return b
    }

    /// A 2-, 4- or 8-byte window near the start overwritten with an extreme size, either endianness.
    static func absurdBinarySize(_ bytes: [UInt8], _ random: HostRandom, _ i: Int) -> [UInt8] {
        let values: [UInt64] = [0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
                                0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 1 << 40]
        let width = [2, 4, 8][random.integer(4 * i, below: 3)]
        guard bytes.count > width else { return bytes }
        let at = random.integer(4 * i + 1, below: min(bytes.count - width, 512) + 1)
        let v = values[random.integer(4 * i + 2, below: values.count)]
        let bigEndian = random.integer(4 * i + 3, below: 2) == 1
        var b = bytes
        for k in 0..<width {
            let shift = UInt64(8 * (bigEndian ? width - 1 - k : k))
            b[at + k] = UInt8(truncatingIfNeeded: v >> shift)
        }
        return b
    }

    /// A number written as text in a header (NPY shape, safetensors JSON, tar octal sizes)
    /// replaced with an absurd one.
    static func absurdTextNumber(_ bytes: [UInt8], _ random: HostRandom, _ i: Int) -> [UInt8] {
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        var runs: [Range<Int>] = []
        var k = 0
        let end = min(bytes.count, 2048)
        while k < end {
            if digits.contains(bytes[k]) {
                let start = k
                while k < end && digits.contains(bytes[k]) { k += 1 }
                runs.append(start..<k)
            } else { k += 1 }
        }
        guard !runs.isEmpty else { return bytes }
        let replacements = ["99999999999999999999999", "9223372036854775807", "4611686018427387904", "-1", "0",
                            "2147483648", "77777777777", "1e400", "NaN"]
        let run = runs[random.integer(3 * i, below: runs.count)]
        let text = replacements[random.integer(3 * i + 1, below: replacements.count)]
        var b = bytes
        b.replaceSubrange(run, with: Array(text.utf8))
        return b
    }

    // MARK: The loop

    func fuzz(_ targets: [Target]) throws {
        let random = HostRandom(seed: Self.seed, stream: 11)
        let scale = Self.long ? 20 : 1
        let flips = 250 * scale, sizes = 100 * scale, texts = 60 * scale
        let memoryBefore = peakMemoryBytes()
        var slowest = 0.0, slowestCase = ""
        var report: [String] = []
        var element = 0
        for target in targets {
            let folder = dir + "/" + target.name.replacingOccurrences(of: "/", with: "_")
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            XCTAssertNoThrow(try target.parse(target.fixture, folder), "\(target.name): the fixture itself must parse")
            var cases: [(String, [UInt8])] = []
            for n in target.lengths ?? Array(0..<target.fixture.count) {
                cases.append(("truncated to \(n)", Array(target.fixture.prefix(n))))
            }
            let (flips, sizes, texts) = (Int(Double(flips) * target.randomShare), Int(Double(sizes) * target.randomShare),
                                         Int(Double(texts) * target.randomShare))
            for _ in 0..<flips { element += 1; cases.append(("flip \(element)", Self.flip(target.fixture, random, element))) }
            for _ in 0..<sizes {
                element += 1
                cases.append(("binary size \(element)", Self.absurdBinarySize(target.fixture, random, element)))
            }
            for _ in 0..<texts {
                element += 1
                cases.append(("text number \(element)", Self.absurdTextNumber(target.fixture, random, element)))
            }
            cases += target.structured
            var tally = Tally()
            for (label, bytes) in cases {
                let started = Date()
                do {
                    try target.parse(bytes, folder)
                    tally.accepted += 1
                } catch {
                    let text = "\(error)"
                    // A config that is valid but absurd (a guard limit of 1e-30) may train and stop
                    // cleanly on its divergence guard: that is an answer too, naming the checkpoint.
                    XCTAssertTrue(error is DataError || error is IOError || error is TrainingDiverged,
                                  "\(target.name) \(label): \(type(of: error)): \(text)")
                    XCTAssertTrue(text.contains(target.names), "\(target.name) \(label): error does not name the file: \(text)")
                    XCTAssertFalse(text.contains("\n"), "\(target.name) \(label): multi-line error: \(text)")
                    tally.refused += 1
                }
                tally.cases += 1
                let seconds = Date().timeIntervalSince(started)
                if seconds > slowest { (slowest, slowestCase) = (seconds, "\(target.name) \(label)") }
                XCTAssertLessThan(seconds, 5, "\(target.name) \(label): took \(seconds) s (a hang?)")
            }
            XCTAssertGreaterThan(tally.refused, 0, target.name)
            report.append("\(target.name) \(tally.cases) (\(tally.refused) refused)")
        }
        let grown = peakMemoryBytes() - memoryBefore
        XCTAssertLessThan(grown, 1 << 30, "peak memory grew by \(grown) bytes: a huge allocation")
        print("fuzzed: " + report.joined(separator: ", ") + String(format: "; slowest case %.3f s (%@)", slowest, slowestCase))
    }

    func peakMemoryBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }

    // MARK: Targets

    static func sampled(_ count: Int) -> [Int] {
        count <= 1500 ? Array(0..<count) : Array(0..<600) + Array(stride(from: 600, to: count, by: 13))
    }

    /// The dataset formats, each read through `DatasetLoader.load` as `--data` would read it.
    func dataTargets() -> [Target] {
        func load(_ name: String) -> ([UInt8], String) throws -> Void {
            { bytes, folder in _ = try DatasetLoader.load(F.write(bytes, folder + "/" + name)) }
        }
        let cifar = F.cifar10Members()
        let npyHeaderVariants = ["<f8", "<f2", ">f4", "<i8", ">i4", "|b1", "<c8", "|O", "<U4", "|V8", "<M8", "f4", ""]
        let shapes = ["()", "(0,)", "(0, 8, 8)", "(2, 0, 8)", "(1, 8, 8)", "(2, 1, 8, 8, 1)", "(-1, 8, 8)",
                      "(99999999999, 8, 8)", "(4611686018427387904, 8, 8)", "(2, 8, 8", "[2, 8, 8]", "(2.5, 8, 8)"]
        var npyStructured: [(String, [UInt8])] = []
        for d in npyHeaderVariants {
            npyStructured.append(("dtype \(d)", F.npy(descr: d, shape: [2, 8, 8], data: [UInt8](repeating: 1, count: 128))))
        }
        for s in shapes {
            npyStructured.append(("shape \(s)", F.npy(descr: "|u1", shape: [], data: [UInt8](repeating: 1, count: 128),
                                                       shapeText: s)))
        }
        for bad: Float in [.nan, .infinity, -.infinity] {
            npyStructured.append(("float32 \(bad)", F.npyFloat32([0.5, bad] + [Float](repeating: 0, count: 126), shape: [2, 8, 8])))
            let doubles = ([0.5, Double(bad)] + [Double](repeating: 0, count: 126)).flatMap { F.le64($0.bitPattern) }
            npyStructured.append(("float64 \(bad)", F.npy(descr: "<f8", shape: [2, 8, 8], data: doubles)))
        }
        npyStructured.append(("fortran", F.npy(descr: "|u1", shape: [2, 8, 8], data: [UInt8](repeating: 1, count: 128),
                                              fortran: true)))

        var idxStructured: [(String, [UInt8])] = []
        for type: UInt8 in [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0xFF] {
            for rank: UInt8 in [0, 1, 2, 3, 4, 255] {
                idxStructured.append(("type \(type) rank \(rank)", [0, 0, type, rank] + F.be32(2) + F.be32(8) + F.be32(8)
                                      + [UInt8](repeating: 7, count: 128)))
            }
        }
        idxStructured.append(("overflowing dims", [0, 0, 8, 3] + F.be32(0xFFFF_FFFF) + F.be32(0xFFFF_FFFF)
                              + F.be32(0xFFFF_FFFF) + [1, 2, 3]))
        idxStructured.append(("zero-sized images", [0, 0, 8, 3] + F.be32(2) + F.be32(0) + F.be32(8)))

        var matStructured: [(String, [UInt8])] = []
        for classID in [0, 1, 2, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 99] {
            matStructured.append(("class \(classID)", F.matHeader()
                + F.matMatrix(name: "X", classID: classID, dims: [8, 8, 3, 1], storage: 2, data: [UInt8](repeating: 1, count: 192))
                + F.matMatrix(name: "y", classID: 6, dims: [1, 1], storage: 9, data: F.le64(Double(3).bitPattern))))
        }
        matStructured.append(("huge dims", F.matHeader()
            + F.matMatrix(name: "X", classID: 9, dims: [0x7FFF_FFFF, 0x7FFF_FFFF, 0x7FFF_FFFF, 0x7FFF_FFFF], storage: 2,
                          data: [1, 2, 3])))
        matStructured.append(("huge element", F.matHeader() + F.le32(14) + F.le32(0x7FFF_FFF0) + [UInt8](repeating: 0, count: 16)))

        var pngStructured: [(String, [UInt8])] = []
        for (depth, color) in [(1, 0), (2, 0), (4, 0), (8, 0), (16, 0), (8, 2), (16, 2), (8, 3), (8, 4), (8, 6), (16, 6),
                               (3, 0), (8, 1), (8, 5), (16, 3), (0, 0)] {
            pngStructured.append(("depth \(depth) color \(color)",
                                  F.pngRaw(width: 8, height: 8, bitDepth: UInt8(depth), colorType: UInt8(color),
                                           rows: [[UInt8]](repeating: [UInt8](repeating: 0x55, count: 8 * 8), count: 8))))
        }
        for (w, h) in [(0, 8), (8, 0), (0x7FFF_FFFF, 0x7FFF_FFFF), (100_000, 100_000), (1, 1 << 30)] {
            var png = F.pngRaw(width: 1, height: 1, bitDepth: 8, colorType: 0, rows: [[1]])
            png.replaceSubrange(16..<24, with: F.be32(w) + F.be32(h))
            let crc = ZlibCodec.crc32(png, range: 12..<29)
            png.replaceSubrange(29..<33, with: F.be32(Int(crc)))
            pngStructured.append(("size \(w)x\(h)", png))
        }

        let png = PNG.encode(pixels: F.pixelsNHWC(n: 1, c: 3, h: 8, w: 8), width: 8, height: 8, channels: 3)
        let palette = PNG.encodePalette(indices: (0..<64).map { UInt8($0 % 3) }, width: 8, height: 8,
                                        palette: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        func imageFolder(_ bytes: [UInt8], _ folder: String) throws {
            // One good image next to the fuzzed one: a folder of two classes, as users have.
            F.write(png, folder + "/root/a/good.png")
            F.write(bytes, folder + "/root/b/fuzzed.png")
            _ = try DatasetLoader.load(folder + "/root")
        }
        let cifarTar = F.gzip(F.tar(folder: "cifar-10-batches-bin", members: Array(cifar.prefix(2)) + [
            ("data_batch_2.bin", cifar[1].1), ("data_batch_3.bin", cifar[1].1), ("data_batch_4.bin", cifar[1].1),
            ("data_batch_5.bin", cifar[1].1), ("test_batch.bin", cifar[1].1)]))
        func cifarFolder(_ bytes: [UInt8], _ folder: String) throws {
            let root = folder + "/cifar-10-batches-bin"
            for (name, data) in cifar { F.write(data, root + "/" + name) }
            F.write(bytes, root + "/data_batch_1.bin")
            _ = try DatasetLoader.load(root)
        }
        let batch = cifar.first { $0.0 == "data_batch_1.bin" }!.1
        let cifarLengths = Array(0..<300) + [3072, 3073, 3074, 6145, 6146, 6147] + Array(stride(from: 300, to: batch.count, by: 31))
        var cifarStructured: [(String, [UInt8])] = []
        for label: UInt8 in [10, 99, 255] {
            var b = batch
            b[3073] = label
            cifarStructured.append(("label \(label)", b))
        }
        cifarStructured.append(("empty", []))

        return [
            Target(name: "IDX", fixture: F.idxImages(n: 2), structured: idxStructured,
                   parse: load("x-images-idx3-ubyte"), names: "x-images-idx3-ubyte"),
            Target(name: "IDX.gz", fixture: F.gzip(F.idxImages(n: 2)), parse: load("z-images-idx3-ubyte.gz"),
                   names: "z-images-idx3-ubyte.gz"),
            Target(name: "CIFAR binary", fixture: batch, lengths: cifarLengths, structured: cifarStructured,
                   parse: cifarFolder, names: "data_batch_1.bin"),
            Target(name: "CIFAR .tar.gz", fixture: cifarTar, lengths: Self.sampled(cifarTar.count),
                   parse: load("cifar-10-binary.tar.gz"), names: "cifar-10-binary.tar.gz"),
            Target(name: "SVHN .mat", fixture: F.svhnMat(n: 2, labels: [3, 10], h: 8, w: 8, compressed: false, yAsUInt8: true),
                   structured: matStructured, parse: load("train_32x32.mat"), names: "train_32x32.mat"),
            Target(name: "SVHN .mat (compressed)",
                   fixture: F.svhnMat(n: 2, labels: [3, 10], h: 8, w: 8, compressed: true, yAsUInt8: false),
                   parse: load("test_32x32.mat"), names: "test_32x32.mat"),
            Target(name: "NPY", fixture: F.npyUInt8(F.pixelsNCHW(n: 2, c: 1, h: 8, w: 8), shape: [2, 8, 8]),
                   structured: npyStructured, parse: load("a.npy"), names: "a.npy"),
            Target(name: "NPY float32",
                   fixture: F.npyFloat32((0..<128).map { Float($0) / 128 }, shape: [2, 1, 8, 8]),
                   parse: load("f.npy"), names: "f.npy"),
            Target(name: "NPZ", fixture: F.zip(F.npzMembers(), deflated: false), lengths: Self.sampled(F.zip(F.npzMembers(), deflated: false).count),
                   parse: load("s.npz"), names: "s.npz"),
            Target(name: "NPZ deflated", fixture: F.zip(F.npzMembers(), deflated: true),
                   lengths: Self.sampled(F.zip(F.npzMembers(), deflated: true).count),
                   parse: load("d.npz"), names: "d.npz"),
            Target(name: "PNG", fixture: png, structured: pngStructured, parse: imageFolder, names: "fuzzed.png"),
            Target(name: "PNG palette", fixture: palette, parse: imageFolder, names: "fuzzed.png"),
        ]
    }

    func safetensorsTarget() throws -> Target {
        var writer = SafetensorsWriter()
        writer.add("a.weight", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        writer.add("b", shape: [4], int32: [7, 8, 9, -1])
        writer.metadata = ["format": "test"]
        func file(_ header: String, length: UInt64? = nil) -> [UInt8] {
            F.le64(length ?? UInt64(header.utf8.count)) + Array(header.utf8) + [UInt8](repeating: 0, count: 24)
        }
        var structured: [(String, [UInt8])] = [("header length 2^63", file("{}", length: 1 << 63))]
        for dtype in ["F16", "BF16", "F64", "I8", "BOOL", "f32", "", "F128"] {
            structured.append(("dtype \(dtype)", file(#"{"t":{"dtype":"\#(dtype)","shape":[6],"data_offsets":[0,24]}}"#)))
        }
        for shape in ["[-1,6]", "[4611686018427387904,4]", "[6,0]", "[]", "[1.5]", "\"6\"", "[[6]]"] {
            structured.append(("shape \(shape)", file(#"{"t":{"dtype":"F32","shape":\#(shape),"data_offsets":[0,24]}}"#)))
        }
        return Target(name: "safetensors", fixture: [UInt8](try writer.serialized()), structured: structured,
                      parse: { bytes, folder in
                          let f = try SafetensorsFile(path: F.write(bytes, folder + "/x.safetensors"))
                          for e in f.entries where e.dtype == .f32 { XCTAssertEqual(try f.floats(e.name).count, e.count) }
                          for e in f.entries where e.dtype == .i32 { XCTAssertEqual(try f.int32(e.name).count, e.count) }
                      }, names: "x.safetensors")
    }

    // MARK: Checkpoint metadata (--resume)

    /// A small labelled dataset of 8×8 images.
    static let tinyDataset: Dataset = {
        let n = 40
        let pixels = (0..<(n * 64)).map { UInt8(truncatingIfNeeded: $0 * 37 + $0 / 64) }
        let train = ImageSet(channels: 1, height: 8, width: 8, count: n, pixels: .uint8(pixels),
                             labels: (0..<n).map { Int32($0 % 4) })
        return Dataset(format: "test", source: "test", train: train, test: nil, classCount: 4, classNames: nil)
    }()

    static func tinyConfig() -> TrainingConfig {
        var c = Presets.standard
        c.batchSize = 2
        c.bufferSize = 4
        c.sgldSteps = 1
        c.pxDelay = 0
        c.pxRamp = 0
        c.maxIterations = 1
        c.finalSampleSteps = 0
        c.sampleEvery = 0
        c.data = "test"
        return c
    }

    /// The checkpoint's bytes with metadata `key` set to `value` (the tensor bytes unchanged).
    static func replacingMetadata(_ checkpoint: [UInt8], _ key: String, _ value: String) throws -> [UInt8] {
        let length = Int(checkpoint[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        var header = try JSONSerialization.jsonObject(with: Data(checkpoint[8..<(8 + length)])) as! [String: Any]
        var metadata = header["__metadata__"] as! [String: String]
        metadata[key] = value
        header["__metadata__"] = metadata
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while json.count % 8 != 0 { json.append(0x20) }
        return F.le64(UInt64(json.count)) + json + checkpoint[(8 + length)...]
    }

    /// What `jem-gpu train --resume` does with a checkpoint, on the tiny dataset: read and check
    /// the saved settings, open the run (which checks the state and tensors before allocating),
    /// and train one more iteration.
    static func resume(_ folder: String) throws {
        var config = try Checkpoint.resumeConfig(directory: folder)
        let iteration = try Checkpoint.describe(SafetensorsFile(path: folder + "/checkpoints/last.safetensors")).state?.iteration
        config.maxIterations = min(iteration ?? 0, Int.max - 1) + 1
        let run = try TrainingRun(config: config, dataset: tinyDataset, backend: CPUBackend(), outputDirectory: folder,
                                  resume: true)
        run.report = { _ in }
        try run.run()
    }

    /// Values that break every kind of field: wrong JSON types, negative, zero, huge, non-finite.
    nonisolated(unsafe) static let absurdValues: [Any] = [-1, 0, 1, 7, 1 << 62, Int.max, Int.min, 1e300, -0.5, 0.5, 1e-30, "x", NSNull(),
                                      [Any](), true, [1, 2]]

    func metadataTargets() throws -> [Target] {
        let base = dir + "/base"
        var config = Self.tinyConfig()
        let run = try TrainingRun(config: config, dataset: Self.tinyDataset, backend: CPUBackend(), outputDirectory: base,
                                  resume: false)
        run.report = { _ in }
        try run.run()
        let checkpoint = [UInt8](try Data(contentsOf: URL(fileURLWithPath: run.checkpointPath)))
        let metadata = try SafetensorsFile(path: run.checkpointPath).metadata
        config.maxIterations = 2
        func target(_ key: String, structured: [(String, [UInt8])], lengths: [Int]? = nil, share: Double) -> Target {
            Target(name: "checkpoint \(key)", fixture: Array(metadata[key]!.utf8), lengths: lengths, structured: structured,
                   randomShare: share,
                   parse: { bytes, folder in
                       let file = folder + "/checkpoints/last.safetensors"
                       F.write(try Self.replacingMetadata(checkpoint, key, String(decoding: bytes, as: UTF8.self)), file)
                       try? FileManager.default.removeItem(atPath: folder + "/metrics.jsonl")
                       try Self.resume(folder)
                   }, names: "last.safetensors")
        }
        // Every field of the JSON set to every absurd value.
        func absurdFields(_ key: String) throws -> [(String, [UInt8])] {
            let object = try JSONSerialization.jsonObject(with: Data(metadata[key]!.utf8)) as! [String: Any]
            var out: [(String, [UInt8])] = []
            for field in object.keys.sorted() {
                for value in Self.absurdValues {
                    var changed = object
                    changed[field] = value
                    out.append(("\(field) = \(value)", [UInt8](try JSONSerialization.data(withJSONObject: changed))))
                }
                if var nested = object[field] as? [String: Any] {   // augmentation
                    for inner in nested.keys.sorted() {
                        for value in Self.absurdValues {
                            nested[inner] = value
                            var changed = object
                            changed[field] = nested
                            out.append(("\(field).\(inner) = \(value)", [UInt8](try JSONSerialization.data(withJSONObject: changed))))
                        }
                    }
                }
            }
            return out
        }
        var shapeCases: [(String, [UInt8])] = []
        for text in ["1,8", "0,8,8", "1,8,8,1", "-1,8,8", "1,99999999999999999999,8", "1,8,9", "3,8,8", "", "a,b,c"] {
            shapeCases.append((text, Array(text.utf8)))
        }
        var modelCases: [(String, [UInt8])] = []
        for text in ["wrn-16-1", "wrn-10-2", "wrn-1000-1000", "wrn-9999999999999999999-1", "wrn-10", "resnet", ""] {
            modelCases.append((text, Array(text.utf8)))
        }
        var classCases: [(String, [UInt8])] = []
        for text in ["0", "-1", "3", "5", "100000000000", "x", ""] { classCases.append((text, Array(text.utf8))) }
        let configText = metadata["config"]!.utf8.count
        return [
            target("config", structured: try absurdFields("config"),
                   lengths: Array(0..<200) + Array(stride(from: 200, to: configText, by: 17)), share: 0.5),
            target("run_state", structured: try absurdFields("run_state"), share: 0.5),
            target("input_shape", structured: shapeCases, share: 0.1),
            target("model", structured: modelCases, share: 0.1),
            target("classes", structured: classCases, share: 0.1),
        ]
    }

    // MARK: The test

    func testEveryParserAgainstHostileInput() throws {
        try fuzz(dataTargets() + [safetensorsTarget()] + metadataTargets())
    }
}
