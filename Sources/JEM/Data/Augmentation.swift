import JEMBackend
import JEMSupport
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
        Parallel.forEachChunk(count, minimumPerChunk: 16) { rows in
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
        // Four blocks (16 elements) at a time: Philox four lanes wide, Box-Muller per lane.
        while j + 16 <= count {
            let w = philox4(seed: seed, stream: stream, index: UInt64((start + j) >> 2))
            for lane in 0..<4 {
                let a = Philox.boxMuller(w.0[lane], w.1[lane]), b = Philox.boxMuller(w.2[lane], w.3[lane])
                x[j] += std * a.0
                x[j + 1] += std * a.1
                x[j + 2] += std * b.0
                x[j + 3] += std * b.1
                j += 4
            }
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

    /// The Philox blocks `index ..< index + 4` of `(seed, stream)` as four lanes: word k of
    /// block `index + l` is `result.k[l]`, bit-identical to `Philox.block(seed:stream:index:)`.
    /// The 32×32→64-bit multiplies run four lanes wide.
    @inline(__always)
    static func philox4(seed: UInt64, stream: UInt64, index: UInt64)
        -> (SIMD4<UInt32>, SIMD4<UInt32>, SIMD4<UInt32>, SIMD4<UInt32>) {
        let low: SIMD4<UInt64> = SIMD4(repeating: 0xFFFF_FFFF)
        let counters = SIMD4<UInt64>(index, index &+ 1, index &+ 2, index &+ 3)
        var c0 = counters & low, c1 = (counters &>> 32) & low
        var c2 = SIMD4<UInt64>(repeating: stream & 0xFFFF_FFFF), c3 = SIMD4<UInt64>(repeating: stream >> 32)
        var k0 = seed & 0xFFFF_FFFF, k1 = seed >> 32
        let m0 = SIMD4<UInt64>(repeating: UInt64(Philox.m0)), m1 = SIMD4<UInt64>(repeating: UInt64(Philox.m1))
        for round in 0..<10 {
            if round > 0 {
                k0 = (k0 &+ UInt64(Philox.w0)) & 0xFFFF_FFFF
                k1 = (k1 &+ UInt64(Philox.w1)) & 0xFFFF_FFFF
            }
            let p0 = m0 &* c0, p1 = m1 &* c2
            let next0 = (p1 &>> 32) ^ c1 ^ SIMD4(repeating: k0)
            let next2 = (p0 &>> 32) ^ c3 ^ SIMD4(repeating: k1)
            c1 = p1 & low
            c3 = p0 & low
            c0 = next0
            c2 = next2
        }
        return (SIMD4<UInt32>(truncatingIfNeeded: c0), SIMD4<UInt32>(truncatingIfNeeded: c1),
                SIMD4<UInt32>(truncatingIfNeeded: c2), SIMD4<UInt32>(truncatingIfNeeded: c3))
    }
}
