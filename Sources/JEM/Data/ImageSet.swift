import Foundation
import JEMBackend

/// Pixel values of an `ImageSet`, NCHW.
public enum PixelStorage: Sendable, Equatable {
    /// Bytes 0...255, scaled to [-1, 1] on the way out (v / 127.5 - 1).
    case uint8([UInt8])
    /// Already scaled to [-1, 1].
    case float32([Float])

    public var count: Int {
        switch self {
        case .uint8(let v): return v.count
        case .float32(let v): return v.count
        }
    }
}

/// `count` images of `channels × height × width` pixels, stored NCHW (row-major), with optional
/// integer labels (one per image, `0 ..< classCount`).
public struct ImageSet: Sendable, Equatable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let count: Int
    public let pixels: PixelStorage
    public let labels: [Int32]?

    /// `pixels` must hold exactly `count × channels × height × width` values and `labels`, when
    /// given, exactly `count` labels (a programming error otherwise).
    public init(channels: Int, height: Int, width: Int, count: Int, pixels: PixelStorage, labels: [Int32]?) {
        precondition(channels > 0 && height > 0 && width > 0 && count >= 0, "bad image set shape")
        precondition(pixels.count == count * channels * height * width,
                     "pixel count \(pixels.count) does not match \(count)×\(channels)×\(height)×\(width)")
        precondition(labels == nil || labels!.count == count, "label count does not match image count")
        self.channels = channels
        self.height = height
        self.width = width
        self.count = count
        self.pixels = pixels
        self.labels = labels
    }

    /// Values per image (`channels × height × width`).
    public var imageSize: Int { channels * height * width }

    /// `[channels, height, width]`.
    public var shape: [Int] { [channels, height, width] }

    /// Writes image `i` (NCHW order, `imageSize` floats) scaled to [-1, 1] into `into`.
    public func image(_ i: Int, into: UnsafeMutablePointer<Float>) {
        precondition(i >= 0 && i < count, "image index \(i) out of range 0..<\(count)")
        let n = imageSize, base = i * n
        switch pixels {
        case .uint8(let v):
            v.withUnsafeBufferPointer { src in
                ImageSet.byteToUnit.withUnsafeBufferPointer { lut in
                    for j in 0..<n { into[j] = lut[Int(src[base + j])] }
                }
            }
        case .float32(let v):
            v.withUnsafeBufferPointer { src in
                into.update(from: src.baseAddress! + base, count: n)
            }
        }
    }

    /// Image `i` scaled to [-1, 1] (`imageSize` floats).
    public func image(_ i: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: imageSize) { buf, initialized in
            image(i, into: buf.baseAddress!)
            initialized = imageSize
        }
    }

    /// Writes the images at `indices`, one after another, into `into` (`indices.count × imageSize`).
    public func images(_ indices: [Int], into: UnsafeMutablePointer<Float>) {
        for (k, i) in indices.enumerated() { image(i, into: into + k * imageSize) }
    }

    /// Images `indices` (in that order, repeats allowed) with their labels.
    public func subset(_ indices: [Int]) -> ImageSet {
        let n = imageSize
        for i in indices { precondition(i >= 0 && i < count, "subset index \(i) out of range 0..<\(count)") }
        let newPixels: PixelStorage
        switch pixels {
        case .uint8(let v):
            var out = [UInt8](); out.reserveCapacity(indices.count * n)
            for i in indices { out.append(contentsOf: v[(i * n)..<(i * n + n)]) }
            newPixels = .uint8(out)
        case .float32(let v):
            var out = [Float](); out.reserveCapacity(indices.count * n)
            for i in indices { out.append(contentsOf: v[(i * n)..<(i * n + n)]) }
            newPixels = .float32(out)
        }
        return ImageSet(channels: channels, height: height, width: width, count: indices.count,
                        pixels: newPixels, labels: labels.map { l in indices.map { l[$0] } })
    }

    /// The same images without labels, or with `labels` replaced.
    public func withLabels(_ labels: [Int32]?) -> ImageSet {
        ImageSet(channels: channels, height: height, width: width, count: count, pixels: pixels, labels: labels)
    }

    /// Images per label (`counts[k]` = images labelled k), sized to the largest label + 1.
    public func labelCounts() -> [Int] {
        guard let labels else { return [] }
        var counts = [Int](repeating: 0, count: Int(labels.max() ?? -1) + 1)
        for l in labels where l >= 0 { counts[Int(l)] += 1 }
        return counts
    }

    /// v / 127.5 - 1 for every byte v (exact at 0 and 255).
    static let byteToUnit: [Float] = (0..<256).map { Float($0) / 127.5 - 1 }
}
