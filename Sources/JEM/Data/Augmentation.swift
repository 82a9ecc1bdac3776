/// The paper's training augmentation: pad (reflect) + random crop back to the original size,
/// optional horizontal flip, then Gaussian noise sigma (the official code adds sigma = 0.03 to
/// every input). Every random choice comes from Philox addressed by (seed, stream, image row),
/// so a batch is a pure function of the iteration that draws it.
public struct Augmentation: Sendable, Codable, Equatable {
    /// Reflect padding before the random crop; 0 disables cropping.
    public var padding = 4
    public var horizontalFlip = true
    /// Standard deviation of the Gaussian noise added to each pixel (in [-1, 1] units).
    public var noiseStd: Float = 0.03

    public init(padding: Int = 4, horizontalFlip: Bool = true, noiseStd: Float = 0.03) {
        self.padding = padding
        self.horizontalFlip = horizontalFlip
        self.noiseStd = noiseStd
    }

    public static let none = Augmentation(padding: 0, horizontalFlip: false, noiseStd: 0)

    /// Transforms `count` images in place (NCHW, each `channels*height*width`). Row r uses the
    /// uniform words r*4 ..< r*4+4 of `stream` for its crop and flip, and the normal elements
    /// r*imageSize ..< (r+1)*imageSize of `noiseStream`.
    public func apply(_ images: UnsafeMutablePointer<Float>, count: Int, channels: Int, height: Int, width: Int,
                      seed: UInt64, stream: UInt64, noiseStream: UInt64) {
        let imageSize = channels * height * width
        let moves = movesPixels(height: height, width: width)
        let box = UnsafeSendable(images)
        parallelChunks(count, grain: 16) { rows in
            let scratch = Scratch(imageSize: imageSize, width: width)
            defer { scratch.deallocate() }
            for r in rows {
                let image = box.value + r * imageSize
                if moves {
                    scratch.source.update(from: image, count: imageSize)
                    transform(scratch.source, into: image, row: r, channels: channels, height: height, width: width,
                              seed: seed, stream: stream, noiseStream: noiseStream, columns: scratch.columns)
                } else if noiseStd > 0 {
                    Self.addNoise(image, count: imageSize, start: r * imageSize, std: noiseStd, seed: seed,
                                  stream: noiseStream)
                }
            }
        }
    }

    /// Per-thread buffers of `transform`: a copy of the source image and the crop's column map.
    struct Scratch {
        let source: UnsafeMutablePointer<Float>
        let columns: UnsafeMutablePointer<Int>

        init(imageSize: Int, width: Int) {
            source = .allocate(capacity: imageSize)
            columns = .allocate(capacity: width)
        }

        func deallocate() {
            source.deallocate()
            columns.deallocate()
        }
    }

    /// Whether any image may be cropped or flipped (when not, `transform` is a copy plus noise).
    @inline(__always)
    func movesPixels(height: Int, width: Int) -> Bool {
        horizontalFlip || min(padding, height - 1, width - 1) > 0
    }

    /// Augments one image: `source` (read only, `channels*height*width` floats) goes to `output`
    /// cropped and flipped as row `row` of `stream` says, then noise elements
    /// `row*imageSize ..< (row+1)*imageSize` of `noiseStream` are added. `columns` holds `width`
    /// scratch Ints. `source` and `output` must not overlap.
    @inline(__always)
    func transform(_ source: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, row r: Int,
                   channels: Int, height: Int, width: Int, seed: UInt64, stream: UInt64, noiseStream: UInt64,
                   columns: UnsafeMutablePointer<Int>) {
        let imageSize = channels * height * width
        let pad = min(padding, height - 1, width - 1)
        let words = Philox.block(seed: seed, stream: stream, index: UInt64(r))
        let flip = horizontalFlip && (words.2 & 1) == 1
        if pad > 0 || flip {
            let dy = pad > 0 ? Int(words.0 % UInt32(2 * pad + 1)) - pad : 0
            let dx = pad > 0 ? Int(words.1 % UInt32(2 * pad + 1)) - pad : 0
            for x in 0..<width { columns[x] = Self.reflect((flip ? width - 1 - x : x) + dx, width) }
            for c in 0..<channels {
                let plane = source + c * height * width
                for y in 0..<height {
                    let from = plane + Self.reflect(y + dy, height) * width
                    let to = output + (c * height + y) * width
                    if dx == 0 && !flip {
                        to.update(from: from, count: width)
                    } else {
                        for x in 0..<width { to[x] = from[columns[x]] }
                    }
                }
            }
        } else {
            output.update(from: source, count: imageSize)
        }
        if noiseStd > 0 {
            Self.addNoise(output, count: imageSize, start: r * imageSize, std: noiseStd, seed: seed, stream: noiseStream)
        }
    }

    /// Reflect padding's index map ("reflect" as in torch: the edge pixel is not repeated).
    @inline(__always)
    static func reflect(_ i: Int, _ n: Int) -> Int {
        if i < 0 { return -i }
        if i >= n { return 2 * n - 2 - i }
        return i
    }

    /// x[j] += std * N(0,1)[seed, stream, start + j]: the same numbers `Backend.addGaussianNoise` draws.
    @inline(__always)
    static func addNoise(_ x: UnsafeMutablePointer<Float>, count: Int, start: Int, std: Float, seed: UInt64,
                         stream: UInt64) {
        var j = 0
        // Up to the first element on a block boundary, lane by lane.
        while j < count && (start + j) & 3 != 0 {
            x[j] += std * Philox.normal(seed: seed, stream: stream, element: start + j)
            j += 1
        }
        // Whole blocks of four.
        while j + 4 <= count {
            let n = Philox.normal4(seed: seed, stream: stream, index: UInt64((start + j) >> 2))
            x[j] += std * n.0
            x[j + 1] += std * n.1
            x[j + 2] += std * n.2
            x[j + 3] += std * n.3
            j += 4
        }
        if j < count {
            let n = Philox.normal4(seed: seed, stream: stream, index: UInt64((start + j) >> 2))
            var lane = 0
            while j < count {
                x[j] += std * Philox.lane(n, lane)
                lane += 1
                j += 1
            }
        }
    }
}
