import Dispatch
import Foundation
import JEMBackend
import JEMSupport

/// torchvision's ImageFolder layout: `root/<class name>/*.png`, classes sorted by name and
/// labelled 0, 1, … in that order; or `root/train/<class>/…` with `root/test/<class>/…` (or
/// `val`, `valid`) for a given split. Alpha is dropped (gray+alpha → 1 channel, RGBA → 3); every
/// image must have the same size and channel count.
enum ImageFolder {
    static let testSplitNames = ["test", "val", "valid", "validation"]
    static let unsupportedExtensions = ["jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff", "ppm"]

    /// Folders directly under `path` (non-hidden), sorted.
    static func subfolders(_ path: String) throws -> [String] {
        try DataFiles.list(path).filter { DataFiles.kind(DataFiles.join(path, $0)) == .folder }
    }

    /// True when `root` holds `train/` plus a test split, each with class folders.
    static func splitRoots(_ root: String) throws -> (train: String, test: String)? {
        let subs = try subfolders(root)
        guard subs.contains("train"), let test = testSplitNames.first(where: subs.contains) else { return nil }
        let trainRoot = DataFiles.join(root, "train"), testRoot = DataFiles.join(root, test)
        guard try !subfolders(trainRoot).isEmpty else { return nil }
        return (trainRoot, testRoot)
    }

    static func load(_ root: String) throws -> (train: ImageSet, test: ImageSet?, classNames: [String]) {
        if let (trainRoot, testRoot) = try splitRoots(root) {
            let (train, classes) = try loadSplit(trainRoot, classNames: nil)
            let (test, _) = try loadSplit(testRoot, classNames: classes)
            guard (test.channels, test.height, test.width) == (train.channels, train.height, train.width) else {
                throw DataError(testRoot, "images are \(test.channels)×\(test.height)×\(test.width), "
                                + "but \(trainRoot) holds \(train.channels)×\(train.height)×\(train.width)")
            }
            return (train, test, classes)
        }
        let (train, classes) = try loadSplit(root, classNames: nil)
        return (train, nil, classes)
    }

    /// One split. With `classNames` given (a test split), each class folder must be one of them
    /// and takes its label from that list.
    static func loadSplit(_ root: String, classNames known: [String]?) throws -> (ImageSet, [String]) {
        let classes = try subfolders(root)
        guard !classes.isEmpty else {
            let empty = try DataFiles.list(root).isEmpty
            throw DataError(root, (empty ? "empty folder" : "no class folders")
                            + ": expected an image folder root/<class name>/*.png (or a dataset file or folder of a known format)")
        }
        var files = [(path: String, label: Int32)]()
        for (index, name) in classes.enumerated() {
            let label: Int
            if let known {
                guard let k = known.firstIndex(of: name) else {
                    throw DataError(DataFiles.join(root, name), "class '\(name)' does not appear in the training split (\(known.joined(separator: ", ")))")
                }
                label = k
            } else {
                label = index
            }
            let folder = DataFiles.join(root, name)
            var count = 0
            for entry in try DataFiles.list(folder) {
                let ext = (entry as NSString).pathExtension.lowercased()
                let path = DataFiles.join(folder, entry)
                if ext == "png" {
                    files.append((path, Int32(label))); count += 1
                } else if unsupportedExtensions.contains(ext) {
                    throw DataError(path, "only PNG images are supported in an image folder; convert .\(ext) files to .png")
                }
            }
            guard count > 0 else { throw DataError(folder, "class folder '\(name)' holds no .png files") }
        }
        let images = try decodeAll(files.map(\.path))
        let first = images[0]
        let (c, h, w) = (first.channels == 2 || first.channels == 4 ? first.channels - 1 : first.channels, first.height, first.width)
        let plane = h * w
        var pixels = [UInt8](repeating: 0, count: images.count * c * plane)
        for (i, img) in images.enumerated() {
            let ci = img.channels == 2 || img.channels == 4 ? img.channels - 1 : img.channels
            guard (ci, img.height, img.width) == (c, h, w) else {
                let kind = ci != c ? "\(ci) channel\(ci == 1 ? "" : "s")" : "\(img.width)×\(img.height) pixels"
                throw DataError(files[i].path, "image has \(kind), but \(files[0].path) has "
                                + (ci != c ? "\(c) channel\(c == 1 ? "" : "s")" : "\(w)×\(h) pixels")
                                + "; every image in a folder must have the same size and channel count")
            }
            img.pixels.withUnsafeBufferPointer { src in
                pixels.withUnsafeMutableBufferPointer { dst in
                    let base = i * c * plane, stride = img.channels
                    for p in 0..<plane {
                        for k in 0..<c { dst[base + k * plane + p] = src[p * stride + k] }
                    }
                }
            }
        }
        return (ImageSet(channels: c, height: h, width: w, count: images.count, pixels: .uint8(pixels),
                         labels: files.map(\.label)), known ?? classes)
    }

    /// Decodes `paths` on all cores; the first failure (in path order) is thrown.
    static func decodeAll(_ paths: [String]) throws -> [PNG.Image] {
        final class Results: @unchecked Sendable {
            var values: [Result<PNG.Image, Error>?]
            init(_ n: Int) { values = Array(repeating: nil, count: n) }
        }
        let results = Results(paths.count)
        let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, paths.count / 16))
        results.values.withUnsafeMutableBufferPointer { buf in
            let out = UnsafeSendable(buf.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let start = paths.count * t / threads, end = paths.count * (t + 1) / threads
                for i in start..<end {
                    out.value[i] = Result { try PNG.read(paths[i]) }
                }
            }
        }
        return try results.values.map { try $0!.get() }
    }
}
