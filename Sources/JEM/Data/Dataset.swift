import Foundation
import JEMBackend

/// A labelled (or unlabelled) image dataset: a training split, an optional test split, and what
/// the loader found.
public struct Dataset: Sendable {
    /// "builtin", "IDX", "CIFAR-10", "CIFAR-100", "SVHN", "NumPy .npz", "NumPy .npy", "image folder".
    public let format: String
    /// The path it was loaded from ("builtin" for the built-in dataset).
    public let source: String
    public let train: ImageSet
    public let test: ImageSet?
    /// Number of classes (labels are `0 ..< classCount`); 0 for an unlabelled set.
    public let classCount: Int
    public let classNames: [String]?

    public init(format: String, source: String, train: ImageSet, test: ImageSet?, classCount: Int, classNames: [String]?) {
        self.format = format
        self.source = source
        self.train = train
        self.test = test
        self.classCount = classCount
        self.classNames = classNames
    }

    /// True when the training images carry labels.
    public var isLabelled: Bool { train.labels != nil }

    /// One line, e.g. `IDX: 60000 train, 10000 test, 1×28×28, 10 classes`.
    public var summary: String {
        let testPart = test.map { "\($0.count) test" } ?? "no test"
        let classes = isLabelled ? "\(classCount) class\(classCount == 1 ? "" : "es")" : "unlabelled"
        return "\(format): \(train.count) train, \(testPart), \(train.channels)×\(train.height)×\(train.width), \(classes)"
    }
}

/// How `DatasetLoader.load` reads a dataset.
public struct LoadOptions: Sendable, Equatable {
    /// Axis order of 4-D NumPy image arrays.
    public enum Layout: String, Sendable, CaseIterable {
        /// The channel axis is whichever of dimension 1 and the last dimension is 1 or 3.
        case auto, nchw, nhwc
    }

    /// Which CIFAR-100 labels to use.
    public enum CIFAR100Labels: String, Sendable, CaseIterable {
        /// 100 fine classes (the default, as in the JEM paper).
        case fine
        /// 20 superclasses.
        case coarse
    }

    /// Labels at or above this are refused as corrupt.
    public static let maxClassCount = 100_000

    /// Built-in dataset: training and test images and the generator seed.
    public var builtinTrainCount: Int
    public var builtinTestCount: Int
    public var builtinSeed: UInt64
    /// NumPy layout override.
    public var layout: Layout
    public var cifar100Labels: CIFAR100Labels
    /// When set, every label must be below it (otherwise the count is the largest label + 1 for
    /// formats that do not fix it).
    public var classCount: Int?

    public init(builtinTrainCount: Int = BuiltinDataset.defaultTrainCount,
                builtinTestCount: Int = BuiltinDataset.defaultTestCount,
                builtinSeed: UInt64 = BuiltinDataset.defaultSeed,
                layout: Layout = .auto, cifar100Labels: CIFAR100Labels = .fine, classCount: Int? = nil) {
        self.builtinTrainCount = builtinTrainCount
        self.builtinTestCount = builtinTestCount
        self.builtinSeed = builtinSeed
        self.layout = layout
        self.cifar100Labels = cifar100Labels
        self.classCount = classCount
    }
}

/// Opens a dataset from a path, detecting its format.
public enum DatasetLoader {
    /// Smallest supported image side.
    public static let minimumImageSide = 8

    /// Loads `path`: `"builtin"` for the built-in dataset; a folder (IDX, CIFAR binary, SVHN .mat
    /// files, or an image folder `root/<class>/*.png`); or a file (`.npz`, `.npy`, a CIFAR
    /// `.tar.gz`/`.tar`, an SVHN `.mat`, a `*-images-idx3-ubyte[.gz]` IDX image file, a CIFAR
    /// `.bin` batch). Files are recognised by their content first, their name second.
    ///
    /// Throws `DataError` (one line naming the file and what was expected) for anything it
    /// cannot use; it never writes anything.
    public static func load(_ path: String, options: LoadOptions = .init()) throws -> Dataset {
        if path == "builtin" {
            let most = BuiltinDataset.maximumCount
            guard (1...most).contains(options.builtinTrainCount), (0...most).contains(options.builtinTestCount) else {
                throw DataError("builtin", "train size \(options.builtinTrainCount) and test size \(options.builtinTestCount): "
                                + "expected a train size in 1...\(most) and a test size in 0...\(most)")
            }
            return BuiltinDataset.make(trainCount: options.builtinTrainCount, testCount: options.builtinTestCount,
                                       seed: options.builtinSeed)
        }
        if let k = options.classCount, k < 1 || k > LoadOptions.maxClassCount {
            throw DataError(path, "class count \(k) requested, expected 1...\(LoadOptions.maxClassCount)")
        }
        let raw: Dataset
        switch DataFiles.kind(path) {
        case .missing:
            throw DataError(path, "no such file or folder (expected a dataset file or folder, or 'builtin')")
        case .folder:
            raw = try loadFolder(path, options: options)
        case .file:
            raw = try loadFile(path, options: options)
        }
        return try validated(raw, options: options)
    }

    // MARK: Detection

    static func loadFolder(_ path: String, options: LoadOptions) throws -> Dataset {
        let coarse = options.cifar100Labels == .coarse
        if IDXFile.isFolder(path) {
            let (train, test) = try IDXFile.loadFolder(path)
            return dataset("IDX", path, train, test, classNames: nil)
        }
        if CIFARBinary.folderVariant(path) != nil {
            let l = try CIFARBinary.loadFolder(path, coarse: coarse)
            return dataset(l.variant.name, path, l.train, l.test, classNames: l.classNames)
        }
        if SVHNFile.isFolder(path) {
            let (train, test) = try SVHNFile.loadFolder(path)
            return dataset("SVHN", path, train, test, classNames: (0..<10).map(String.init))
        }
        // The folder the official CIFAR archives unpack to, one level down.
        let entries = try DataFiles.list(path)
        for inner in ["cifar-10-batches-bin", "cifar-100-binary"] where entries.contains(inner) {
            let p = DataFiles.join(path, inner)
            if DataFiles.kind(p) == .folder, CIFARBinary.folderVariant(p) != nil {
                let l = try CIFARBinary.loadFolder(p, coarse: coarse)
                return dataset(l.variant.name, p, l.train, l.test, classNames: l.classNames)
            }
        }
        let (train, test, names) = try ImageFolder.load(path)
        return dataset("image folder", path, train, test, classNames: names)
    }

    static func loadFile(_ path: String, options: LoadOptions) throws -> Dataset {
        let name = DataFiles.basename(path)
        let lower = name.lowercased()
        let head = try prefix(path, 520)
        func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && head[0..<magic.count].elementsEqual(magic) }
        let isGzip = starts([0x1F, 0x8B])

        if starts([0x93] + Array("NUMPY".utf8)) || lower.hasSuffix(".npy") {
            return dataset("NumPy .npy", path, try NumPyDataset.loadNPY(path, layout: options.layout), nil, classNames: nil)
        }
        if starts([0x50, 0x4B, 0x03, 0x04]) || starts([0x50, 0x4B, 0x05, 0x06]) || lower.hasSuffix(".npz") {
            let (train, test) = try NumPyDataset.loadNPZ(path, layout: options.layout)
            return dataset("NumPy .npz", path, train, test, classNames: nil)
        }
        if starts(Array("MATLAB".utf8)) || lower.hasSuffix(".mat") {
            let set = try SVHNFile.load(path)
            return dataset("SVHN", path, set, nil, classNames: (0..<10).map(String.init))
        }
        if starts([0, 0, 8, 3]) || lower.contains("idx3-ubyte") {
            return dataset("IDX", path, try IDXFile.readImages(path), nil, classNames: nil)
        }
        if starts([0, 0, 8, 1]) || lower.contains("idx1-ubyte") {
            throw DataError(path, "an IDX label file on its own: expected an *-images-idx3-ubyte file or the folder holding both")
        }
        if isGzip || TarArchive.looksLikeTar(head) || lower.hasSuffix(".tar") || lower.hasSuffix(".tgz") {
            let archive = try TarArchive(path: path)
            let l = try CIFARBinary.loadArchive(archive, coarse: options.cifar100Labels == .coarse)
            return dataset(l.variant.name, path, l.train, l.test, classNames: l.classNames)
        }
        if starts(PNG.signature) {
            throw DataError(path, "a single PNG: expected an image folder root/<class name>/*.png")
        }
        if lower.hasSuffix(".bin") {
            let bytes = try DataFiles.read(path)
            let variant: CIFARBinary.Variant = (name == "train.bin" || name == "test.bin"
                                                || (bytes.count % 3073 != 0 && bytes.count % 3074 == 0)) ? .cifar100 : .cifar10
            let coarse = options.cifar100Labels == .coarse
            let set = try CIFARBinary.parse(bytes[...], file: path, variant: variant, coarse: coarse)
            let names = CIFARBinary.classNames(variant: variant, coarse: coarse) { _ in nil }
            return dataset(variant.name, path, set, nil, classNames: names)
        }
        throw DataError(path, "unrecognised dataset file: expected .npz, .npy, .mat (SVHN), a CIFAR .tar.gz or .bin, "
                        + "an *-images-idx3-ubyte[.gz] file, or a folder")
    }

    /// The first `count` bytes of a file (for sniffing its format).
    static func prefix(_ path: String, _ count: Int) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DataError(path, "cannot open for reading")
        }
        defer { try? handle.close() }
        do {
            return [UInt8](try handle.read(upToCount: count) ?? Data())
        } catch {
            throw DataError(path, "read failed: \(error.localizedDescription)")
        }
    }

    /// Class count fixed by the format, or nil to infer it from the labels.
    static func fixedClassCount(_ format: String, _ names: [String]?) -> Int? {
        switch format {
        case "CIFAR-10", "CIFAR-100", "SVHN", "builtin", "image folder": return names?.count
        default: return nil
        }
    }

    static func dataset(_ format: String, _ source: String, _ train: ImageSet, _ test: ImageSet?,
                        classNames: [String]?) -> Dataset {
        // Inferred from the training labels: a test label beyond them is reported as out of range.
        let classes = fixedClassCount(format, classNames) ?? Int(train.labels?.max() ?? -1) + 1
        return Dataset(format: format, source: source, train: train, test: test, classCount: classes,
                       classNames: classNames)
    }

    // MARK: Validation

    /// Checks what every format must satisfy: a non-empty training split, images of at least
    /// 8×8, the same shape in both splits, labels in range (and in both splits or neither).
    static func validated(_ d: Dataset, options: LoadOptions) throws -> Dataset {
        let src = d.source
        guard d.train.count > 0 else {
            throw DataError(src, "holds no training images (\(d.format)), expected at least one")
        }
        guard d.train.height >= minimumImageSide, d.train.width >= minimumImageSide else {
            throw DataError(src, "images are \(d.train.height)×\(d.train.width) pixels, at least "
                            + "\(minimumImageSide)×\(minimumImageSide) are needed")
        }
        if let t = d.test {
            guard t.shape == d.train.shape else {
                throw DataError(src, "test images are \(CheckedSize.shape(t.shape)) but training images are \(CheckedSize.shape(d.train.shape))")
            }
            guard (t.labels == nil) == (d.train.labels == nil) else {
                throw DataError(src, "one split is labelled and the other is not")
            }
        }
        var classCount = d.classCount
        if let requested = options.classCount {
            guard d.train.labels != nil else {
                throw DataError(src, "a class count of \(requested) was given, but the data is unlabelled")
            }
            if fixedClassCount(d.format, d.classNames) != nil && requested != d.classCount {
                throw DataError(src, "a class count of \(requested) was given, but \(d.format) has \(d.classCount) classes")
            }
            classCount = requested
        }
        for (split, set) in [("train", d.train), ("test", d.test)] {
            guard let labels = set?.labels else { continue }
            for (i, l) in labels.enumerated() where l < 0 || Int(l) >= classCount {
                throw DataError(src, "\(split) label \(l) of image \(i) is outside 0..<\(classCount) (\(classCount) classes)")
            }
        }
        if let names = d.classNames, d.train.labels != nil, names.count != classCount {
            return Dataset(format: d.format, source: d.source, train: d.train, test: d.test, classCount: classCount, classNames: nil)
        }
        return Dataset(format: d.format, source: d.source, train: d.train, test: d.test, classCount: classCount,
                       classNames: d.classNames)
    }
}
