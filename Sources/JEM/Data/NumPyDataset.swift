import Foundation
import JEMBackend

/// Images and labels from NumPy files: a `.npy` image array (unlabelled) or an `.npz` holding
/// `x_train, y_train[, x_test, y_test]` or `x, y`.
enum NumPyDataset {
    /// Image arrays are `(N, H, W)`, `(N, C, H, W)` or `(N, H, W, C)`: uint8 (0…255), another
    /// integer type holding 0…255, or float32/float64 in [0, 1], [-1, 1] or [0, 255] (rescaled to
    /// [-1, 1]). `layout` `.auto` finds the channel axis: dimension 1 or the last one, whichever
    /// is 1 or 3.
    static func images(_ a: NPYArray, name: String, layout: LoadOptions.Layout) throws -> ImageSet {
        let file = a.file
        let s = a.shape
        let n: Int, c: Int, h: Int, w: Int, nhwc: Bool
        switch s.count {
        case 3:
            (n, c, h, w, nhwc) = (s[0], 1, s[1], s[2], false)
        case 4:
            let first = s[1] == 1 || s[1] == 3, last = s[3] == 1 || s[3] == 3
            switch layout {
            case .nchw: nhwc = false
            case .nhwc: nhwc = true
            case .auto:
                if first && !last { nhwc = false } else if last && !first { nhwc = true } else if first && last {
                    // (N, 3, H, 3): the layout whose image is square wins.
                    if s[2] == s[3] && s[1] != s[2] { nhwc = false } else if s[1] == s[2] && s[2] != s[3] { nhwc = true } else {
                        throw DataError(file, "\(name) has shape \(a.shapeText): ambiguous channel axis, pass a layout (nchw or nhwc)")
                    }
                } else {
                    throw DataError(file, "\(name) has shape \(a.shapeText): no channel axis of size 1 or 3 at position 1 or last "
                                    + "(expected (N, C, H, W) or (N, H, W, C); pass a layout to force one)")
                }
            }
            (n, c, h, w) = nhwc ? (s[0], s[3], s[1], s[2]) : (s[0], s[1], s[2], s[3])
        default:
            throw DataError(file, "\(name) has shape \(a.shapeText), expected images (N, H, W), (N, C, H, W) or (N, H, W, C)")
        }
        guard c > 0, h > 0, w > 0 else {
            throw DataError(file, "\(name) has shape \(a.shapeText), expected non-empty images")
        }
        let pixels: PixelStorage
        if a.dtype.kind == "f" {
            var values = a.cOrderFloats()
            var lo = Float.infinity, hi = -Float.infinity
            for v in values {
                guard v.isFinite else { throw DataError(file, "\(name) holds a non-finite value (\(v)), expected pixel values") }
                lo = min(lo, v); hi = max(hi, v)
            }
            if values.isEmpty { lo = 0; hi = 0 }
            let scale: Float, offset: Float
            if lo >= 0 && hi <= 1 { (scale, offset) = (2, -1) }                 // [0, 1]
            else if lo >= -1 && hi <= 1 { (scale, offset) = (1, 0) }            // [-1, 1]
            else if lo >= 0 && hi <= 255 { (scale, offset) = (1 / 127.5, -1) } // [0, 255]
            else {
                throw DataError(file, "\(name) (\(a.dtype)) holds values in [\(lo), \(hi)], expected pixels in [0, 1], [-1, 1] or [0, 255]")
            }
            if scale != 1 || offset != 0 {
                for i in values.indices { values[i] = min(1, max(-1, values[i] * scale + offset)) }
            }
            pixels = .float32(nhwc ? toNCHW(values, n: n, h: h, w: w, c: c) : values)
        } else {
            let values: [UInt8]
            if let b = a.cOrderBytes(), a.dtype.kind == "u" {
                values = b
            } else {
                values = try a.cOrder { i -> UInt8? in
                    let v = a.value(at: i)
                    return v >= 0 && v <= 255 ? UInt8(v) : nil
                }.enumerated().map { i, v in
                    guard let v else {
                        throw DataError(file, "\(name) (\(a.dtype)) element \(i) is \(a.value(at: i)), expected pixels 0...255")
                    }
                    return v
                }
            }
            pixels = .uint8(nhwc ? toNCHW(values, n: n, h: h, w: w, c: c) : values)
        }
        return ImageSet(channels: c, height: h, width: w, count: n, pixels: pixels, labels: nil)
    }

    static func toNCHW<T>(_ v: [T], n: Int, h: Int, w: Int, c: Int) -> [T] {
        if c == 1 { return v }
        var out = v
        let plane = h * w
        v.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n {
                    let base = i * plane * c
                    for p in 0..<plane {
                        for k in 0..<c { dst[base + k * plane + p] = src[base + p * c + k] }
                    }
                }
            }
        }
        return out
    }

    /// Labels `(N,)` or `(N, 1)` of any integer dtype (or integral floats), each ≥ 0.
    static func labels(_ a: NPYArray, name: String) throws -> [Int32] {
        guard a.shape.count == 1 || (a.shape.count == 2 && a.shape[1] == 1) else {
            throw DataError(a.file, "\(name) has shape \(a.shapeText), expected labels (N,) (class indices, not one-hot)")
        }
        var out = [Int32]()
        out.reserveCapacity(a.count)
        for (i, v) in a.doubles().enumerated() {
            guard v >= 0, v < Double(LoadOptions.maxClassCount), v == v.rounded() else {
                throw DataError(a.file, "\(name)[\(i)] is \(v), expected a class index 0..<\(LoadOptions.maxClassCount)")
            }
            out.append(Int32(v))
        }
        return out
    }

    static func loadNPY(_ path: String, layout: LoadOptions.Layout) throws -> ImageSet {
        try images(NPYArray(bytes: try DataFiles.read(path), file: path), name: "array", layout: layout)
    }

    static func loadNPZ(_ path: String, layout: LoadOptions.Layout) throws -> (train: ImageSet, test: ImageSet?) {
        let zip = try ZipArchive(path: path)
        let keys = zip.entries.map { $0.name.hasSuffix(".npy") ? String($0.name.dropLast(4)) : $0.name }
        func has(_ k: String) -> Bool { keys.contains(k) }
        func array(_ k: String) throws -> NPYArray {
            let e = zip.entries[keys.firstIndex(of: k)!]
            return try NPYArray(bytes: try zip.extract(e), file: "\(path): \(e.name)")
        }
        let found = keys.isEmpty ? "none" : keys.joined(separator: ", ")
        func missing(_ k: String) -> DataError {
            DataError(path, "missing array '\(k)' (expected keys x_train, y_train[, x_test, y_test] or x, y; found \(found))")
        }
        func split(_ xKey: String, _ yKey: String) throws -> ImageSet {
            guard has(xKey) else { throw missing(xKey) }
            guard has(yKey) else { throw missing(yKey) }
            let x = try array(xKey)
            let images = try images(x, name: xKey, layout: layout)
            let y = try array(yKey)
            let labels = try labels(y, name: yKey)
            guard labels.count == images.count else {
                throw DataError(y.file, "label count \(labels.count) in \(yKey) does not match image count \(images.count) in \(xKey)")
            }
            return images.withLabels(labels)
        }
        if has("x_train") || has("y_train") || has("x_test") || has("y_test") {
            let train = try split("x_train", "y_train")
            let test = has("x_test") || has("y_test") ? try split("x_test", "y_test") : nil
            return (train, test)
        }
        if has("x") || has("y") { return (try split("x", "y"), nil) }
        throw missing("x_train")
    }
}
