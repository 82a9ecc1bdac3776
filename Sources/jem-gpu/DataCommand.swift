import ArgumentParser
import Foundation
import JEM
import JEMBackend

/// `jem-gpu data ...`: looking at datasets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Look at a dataset the way the trainer will read it.",
        subcommands: [DataInspectCommand.self])
}

struct DataInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print what the loader finds in a dataset and write a PNG grid of its first images.",
        discussion: """
            Reads --data as 'train --data' does (builtin; an IDX, CIFAR-10/100 binary or SVHN folder; an image folder root/<class>/*.png; or a .npz, .npy, CIFAR .tar.gz/.bin, SVHN .mat or *-images-idx3-ubyte[.gz] file) and prints, on stdout: the loader's one-line summary, the storage and value range of each split's pixels, the images per class in each split, and where the grid went.

            The grid (default inspect.png in the current folder, written atomically) shows the first --count images of --split, row by row, as the network sees them after scaling to [-1, 1] (no augmentation). 1- and 3-channel images are drawn as gray and RGB; 2 channels as gray (channel 0), 4 or more as RGB (channels 0-2).

            Exits with status 1 and one line naming the file when the dataset cannot be read.
            """)

    @Option(help: ArgumentHelp("Dataset: builtin, an IDX/CIFAR/SVHN/NumPy/image folder or file.", valueName: "PATH"))
    var data: String = "builtin"
    @Option(help: ArgumentHelp("PNG file for the image grid.", valueName: "FILE"))
    var out: String = "inspect.png"
    @Option(help: ArgumentHelp("Images in the grid (the first N of the split).", valueName: "N"))
    var count: Int = 64
    @Option(help: ArgumentHelp("Grid columns (default: the square root of --count, rounded up).", valueName: "N"))
    var columns: Int?
    @Option(help: ArgumentHelp("Split the grid shows.", valueName: "train|test"))
    var split: Split = .train
    @Option(help: ArgumentHelp("Axis order of NumPy image arrays (auto: the channel axis is whichever of dimension 1 and the last is 1 or 3).",
                               valueName: "auto|nchw|nhwc"))
    var layout: LoadOptions.Layout = .auto
    @Option(name: .customLong("builtin-train"), help: "Built-in dataset: training images.")
    var builtinTrain: Int = BuiltinDataset.defaultTrainCount
    @Option(name: .customLong("builtin-test"), help: "Built-in dataset: test images.")
    var builtinTest: Int = BuiltinDataset.defaultTestCount

    enum Split: String, ExpressibleByArgument, CaseIterable { case train, test }

    func validate() throws {
        if count < 1 || count > 10_000 { throw ValidationError("--count must be in 1...10000 (got \(count))") }
        if let columns, columns < 1 { throw ValidationError("--columns must be >= 1 (got \(columns))") }
        if out.isEmpty { throw ValidationError("--out must name a file") }
        if builtinTrain < 1 { throw ValidationError("--builtin-train must be > 0 (got \(builtinTrain))") }
        if builtinTest < 0 { throw ValidationError("--builtin-test must be >= 0 (got \(builtinTest))") }
    }

    func run() throws {
        let options = LoadOptions(builtinTrainCount: builtinTrain, builtinTestCount: builtinTest, layout: layout)
        let dataset: Dataset
        do {
            dataset = try DatasetLoader.load(data, options: options)
        } catch {
            throw CommandFailure("\(error)")
        }
        print(dataset.summary)
        if dataset.source != data { print("source: \(dataset.source)") }
        let splits: [(String, ImageSet)] = [("train", dataset.train)] + (dataset.test.map { [("test", $0)] } ?? [])
        for (name, set) in splits { print("\(name): " + Self.describePixels(set)) }
        print(Self.classTable(dataset))

        let shown: ImageSet
        switch split {
        case .train: shown = dataset.train
        case .test:
            guard let test = dataset.test else {
                throw CommandFailure("--split test: \(data) has no test split (only \(dataset.train.count) training images)")
            }
            shown = test
        }
        let n = min(count, shown.count)
        let cols = columns ?? Int(Double(n).squareRoot().rounded(.up))
        let (values, channels, note) = Self.displayChannels(shown, count: n)
        do {
            try ImageGrid.write(images: values, count: n, channels: channels, height: shown.height, width: shown.width,
                                columns: cols, to: out)
        } catch {
            throw CommandFailure("--out \(out): \(error)")
        }
        let rows = (n + min(cols, n) - 1) / min(cols, n)
        print("grid: \(out), the first \(n) \(split.rawValue) image\(n == 1 ? "" : "s") (\(rows) row\(rows == 1 ? "" : "s") of "
              + "\(min(cols, n))\(note))")
    }

    // MARK: Statistics

    /// `uint8 0…255 (scaled -1.000…1.000), mean -0.052, std 0.502` for one split.
    static func describePixels(_ set: ImageSet) -> String {
        var (sum, sumSquares) = (0.0, 0.0)
        let total = Double(max(set.count * set.imageSize, 1))
        let text: String
        switch set.pixels {
        case .uint8(let bytes):
            var histogram = [Int](repeating: 0, count: 256)
            bytes.withUnsafeBufferPointer { b in for v in b { histogram[Int(v)] += 1 } }
            let low = histogram.firstIndex { $0 > 0 } ?? 0, high = histogram.lastIndex { $0 > 0 } ?? 0
            for (v, k) in histogram.enumerated() where k > 0 {
                let x = Double(v) / 127.5 - 1
                sum += Double(k) * x
                sumSquares += Double(k) * x * x
            }
            text = "uint8 pixels \(low)…\(high) (scaled \(fixed(Double(low) / 127.5 - 1))…\(fixed(Double(high) / 127.5 - 1)))"
        case .float32(let values):
            var (low, high) = (Float.infinity, -Float.infinity)
            var nonFinite = 0
            values.withUnsafeBufferPointer { b in
                for v in b {
                    guard v.isFinite else { nonFinite += 1; continue }
                    low = min(low, v); high = max(high, v)
                    sum += Double(v)
                    sumSquares += Double(v) * Double(v)
                }
            }
            text = "float32 pixels \(fixed(Double(low)))…\(fixed(Double(high))) (used as stored)"
                + (nonFinite > 0 ? ", \(nonFinite) NaN/inf" : "")
        }
        let mean = sum / total
        let std = max(0, sumSquares / total - mean * mean).squareRoot()
        return "\(set.count) images, " + text + ", mean \(fixed(mean)), std \(fixed(std))"
    }

    static func fixed(_ v: Double) -> String { String(format: "%.3f", v) }

    /// Images per class in each split, one class per line (or a note for unlabelled data).
    static func classTable(_ d: Dataset) -> String {
        guard d.isLabelled, let trainLabels = d.train.labels else { return "classes: none (unlabelled)" }
        func counts(_ labels: [Int32]?) -> [Int]? {
            guard let labels else { return nil }
            var c = [Int](repeating: 0, count: d.classCount)
            for l in labels where l >= 0 && Int(l) < d.classCount { c[Int(l)] += 1 }
            return c
        }
        let train = counts(trainLabels)!, test = counts(d.test?.labels)
        var rows = [["class", "name", "train"] + (test == nil ? [] : ["test"])]
        for k in 0..<d.classCount {
            let name = d.classNames.flatMap { k < $0.count ? $0[k] : nil } ?? ""
            rows.append(["\(k)", name, "\(train[k])"] + (test.map { ["\($0[k])"] } ?? []))
        }
        let empty = train.enumerated().filter { $0.element == 0 }.map { "\($0.offset)" }
        return TextTable.render(rows)
            + (empty.isEmpty ? "" : "\nno training images in class\(empty.count == 1 ? "" : "es") \(empty.joined(separator: ", "))")
    }

    /// The first `count` images scaled to [-1, 1], reduced to 1 or 3 channels for the PNG.
    static func displayChannels(_ set: ImageSet, count: Int) -> (values: [Float], channels: Int, note: String) {
        let plane = set.height * set.width
        var image = [Float](repeating: 0, count: set.imageSize)
        let keep: Int, note: String
        switch set.channels {
        case 1, 3: keep = set.channels; note = ""
        case 2: keep = 1; note = "; channel 0 of 2 shown as gray"
        default: keep = 3; note = "; channels 0-2 of \(set.channels) shown as RGB"
        }
        var values = [Float]()
        values.reserveCapacity(count * keep * plane)
        for i in 0..<count {
            image.withUnsafeMutableBufferPointer { set.image(i, into: $0.baseAddress!) }
            values.append(contentsOf: image[0..<(keep * plane)])
        }
        return (values, keep, note)
    }
}

extension LoadOptions.Layout: ExpressibleByArgument {}
