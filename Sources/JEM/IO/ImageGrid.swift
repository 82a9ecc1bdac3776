import Foundation
import JEMBackend
import JEMSupport

/// Writes a batch of images as one PNG grid (for `data inspect` and samples during training).
public enum ImageGrid {
    /// Writes `count` images (NCHW floats in [-1, 1], clamped; `channels` 1 or 3) as a PNG grid
    /// of `columns` columns with 2 px of black padding around and between the images.
    /// The file appears atomically (temporary file in the same folder, then a rename).
    public static func write(images: [Float], count: Int, channels: Int, height: Int, width: Int,
                             columns: Int, to path: String) throws {
        let png = try encode(images: images, count: count, channels: channels, height: height, width: width,
                             columns: columns, file: path)
        do {
            try AtomicFile.write(Data(png), to: path)
        } catch let error as IOError {
            throw DataError(path, "cannot write the image grid: \(error.description)")
        }
    }

    /// The grid's PNG bytes.
    public static func encode(images: [Float], count: Int, channels: Int, height: Int, width: Int,
                              columns: Int, padding: Int = 2, file: String = "image grid") throws -> [UInt8] {
        guard channels == 1 || channels == 3 else {
            throw DataError(file, "images have \(channels) channels, expected 1 (gray) or 3 (RGB)")
        }
        guard count > 0, height > 0, width > 0, columns > 0, padding >= 0 else {
            throw DataError(file, "nothing to draw: \(count) images of \(height)×\(width) in \(columns) columns")
        }
        let imageSize = channels * height * width
        guard let total = CheckedSize.multiply(count, imageSize), images.count >= total else {
            throw DataError(file, "\(images.count) values given, \(count) images of \(channels)×\(height)×\(width) need \(CheckedSize.multiply(count, imageSize).map(String.init) ?? "more")")
        }
        let cols = min(columns, count)
        let rows = (count + cols - 1) / cols
        let gridW = cols * (width + padding) + padding, gridH = rows * (height + padding) + padding
        var pixels = [UInt8](repeating: 0, count: gridW * gridH * channels)
        for i in 0..<count {
            let ox = padding + (i % cols) * (width + padding), oy = padding + (i / cols) * (height + padding)
            for y in 0..<height {
                for x in 0..<width {
                    for c in 0..<channels {
                        var v = images[i * imageSize + (c * height + y) * width + x]
                        if v.isNaN { v = -1 }
                        let byte = ((min(1, max(-1, v)) + 1) * 127.5).rounded()
                        pixels[((oy + y) * gridW + ox + x) * channels + c] = UInt8(byte)
                    }
                }
            }
        }
        return PNG.encode(pixels: pixels, width: gridW, height: gridH, channels: channels)
    }

    /// The first `min(count, set.count)` images of `set` as a grid.
    public static func write(_ set: ImageSet, count: Int, columns: Int, to path: String) throws {
        let n = min(count, set.count)
        var values = [Float](repeating: 0, count: n * set.imageSize)
        values.withUnsafeMutableBufferPointer { buf in
            for i in 0..<n { set.image(i, into: buf.baseAddress! + i * set.imageSize) }
        }
        try write(images: values, count: n, channels: set.channels, height: set.height, width: set.width,
                  columns: columns, to: path)
    }
}
