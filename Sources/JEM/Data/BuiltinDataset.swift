import Dispatch
import Foundation
import JEMBackend
import JEMSupport

/// The built-in dataset: handwritten-looking digits 0-9, 1×28×28 grayscale, generated on the fly
/// and deterministic for a seed, so training needs no files.
///
/// Each digit is a few strokes (line segments, arcs and Bézier curves in a unit box, with
/// per-digit style variants). Every image gets its own smooth warp, scale, aspect, rotation,
/// slant, shift, stroke width and ink level; strokes are anti-aliased by the distance of each
/// pixel to each segment; then pixel noise is added. Image `i` of a split depends only on
/// `(seed, split, i)` (Philox), so any subset can be regenerated and generation runs in parallel.
public enum BuiltinDataset {
    public static let defaultTrainCount = 8000
    public static let defaultTestCount = 2000
    public static let defaultSeed: UInt64 = 1
    public static let side = 28
    /// The most images one split may have (784 MB of pixels).
    public static let maximumCount = 1_000_000
    public static let classNames = (0..<10).map(String.init)

    /// Train and test splits (labels cycle 0…9, so every class has `count / 10` images, ±1).
    public static func make(trainCount: Int = defaultTrainCount, testCount: Int = defaultTestCount,
                            seed: UInt64 = defaultSeed) -> Dataset {
        Dataset(format: "builtin", source: "builtin", train: images(count: trainCount, split: 0, seed: seed),
                test: testCount > 0 ? images(count: testCount, split: 1, seed: seed) : nil,
                classCount: 10, classNames: classNames)
    }

    /// `count` images of split `split` (0 train, 1 test, others for extra sets).
    public static func images(count: Int, split: UInt64, seed: UInt64) -> ImageSet {
        precondition(count >= 0)
        let n = side * side
        var pixels = [UInt8](repeating: 0, count: count * n)
        if count > 0 { pixels.withUnsafeMutableBufferPointer { buf in
            let out = UnsafeSendable(buf.baseAddress!)
            Parallel.forEachChunk(count, minimumPerChunk: 256) { range in
                var canvas = [Float](repeating: 0, count: n)
                var noise = [Float](repeating: 0, count: n)
                for i in range {
                    render(digit: i % 10, stream: split << 40 | UInt64(i), seed: seed, canvas: &canvas, noise: &noise,
                           into: out.value + i * n)
                }
            }
        } }
        return ImageSet(channels: 1, height: side, width: side, count: count, pixels: .uint8(pixels),
                        labels: (0..<count).map { Int32($0 % 10) })
    }

    // MARK: Glyphs

    typealias Point = SIMD2<Float>
    /// A glyph variant: polylines in the unit box (x right, y down; digits span about
    /// x 0.25…0.75, y 0.12…0.88).
    typealias Glyph = [[Point]]

    static func arc(_ cx: Float, _ cy: Float, _ rx: Float, _ ry: Float, from a0: Float, to a1: Float,
                    steps: Int = 16) -> [Point] {
        (0...steps).map { k in
            let a = (a0 + (a1 - a0) * Float(k) / Float(steps)) * .pi / 180
            return Point(cx + rx * cos(a), cy + ry * sin(a))
        }
    }

    static func bezier(_ p0: Point, _ p1: Point, _ p2: Point, _ p3: Point, steps: Int = 12) -> [Point] {
        (0...steps).map { k in
            let t = Float(k) / Float(steps), u = 1 - t
            return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3
        }
    }

    static func p(_ x: Float, _ y: Float) -> Point { Point(x, y) }

    /// Style variants of each digit (angles in degrees, 0 = right, 90 = down).
    static let glyphs: [[Glyph]] = [
        // 0
        [[arc(0.5, 0.5, 0.22, 0.36, from: -90, to: 270, steps: 28)],
         [arc(0.5, 0.5, 0.19, 0.37, from: -80, to: 285, steps: 28)]],
        // 1
        [[[p(0.52, 0.12), p(0.49, 0.88)]],
         [[p(0.37, 0.27), p(0.52, 0.12), p(0.50, 0.88)]],
         [[p(0.37, 0.27), p(0.52, 0.12), p(0.50, 0.88)], [p(0.37, 0.88), p(0.63, 0.88)]]],
        // 2
        [[arc(0.5, 0.32, 0.2, 0.2, from: 190, to: 375) + [p(0.27, 0.88), p(0.77, 0.88)]],
         [arc(0.5, 0.31, 0.21, 0.19, from: 185, to: 360)
            + bezier(p(0.71, 0.31), p(0.70, 0.55), p(0.40, 0.70), p(0.26, 0.87)) + [p(0.76, 0.85)]]],
        // 3
        [[arc(0.5, 0.31, 0.19, 0.18, from: 200, to: 450) + arc(0.5, 0.68, 0.21, 0.2, from: 270, to: 520)],
         [[p(0.28, 0.13), p(0.72, 0.13), p(0.47, 0.44)] + arc(0.5, 0.66, 0.22, 0.22, from: 260, to: 515)]],
        // 4
        [[[p(0.63, 0.88), p(0.63, 0.12), p(0.24, 0.64), p(0.78, 0.64)]],
         [[p(0.35, 0.12), p(0.27, 0.62), p(0.78, 0.62)], [p(0.64, 0.32), p(0.64, 0.88)]]],
        // 5
        [[[p(0.73, 0.12), p(0.35, 0.12), p(0.32, 0.47)] + arc(0.5, 0.65, 0.21, 0.22, from: 225, to: 500)],
         [[p(0.34, 0.12), p(0.31, 0.46)] + arc(0.5, 0.65, 0.22, 0.22, from: 225, to: 500), [p(0.34, 0.12), p(0.72, 0.12)]]],
        // 6
        [[bezier(p(0.67, 0.12), p(0.42, 0.18), p(0.28, 0.45), p(0.30, 0.68)),
          arc(0.5, 0.68, 0.2, 0.19, from: 180, to: 540, steps: 24)],
         [[p(0.62, 0.12), p(0.33, 0.60)], arc(0.5, 0.69, 0.2, 0.18, from: 200, to: 560, steps: 24)]],
        // 7
        [[[p(0.26, 0.13), p(0.75, 0.13), p(0.43, 0.88)]],
         [[p(0.26, 0.13), p(0.75, 0.13)] + bezier(p(0.75, 0.13), p(0.58, 0.38), p(0.48, 0.60), p(0.45, 0.88))],
         [[p(0.26, 0.13), p(0.75, 0.13), p(0.43, 0.88)], [p(0.40, 0.50), p(0.68, 0.50)]]],
        // 8
        [[arc(0.5, 0.3, 0.17, 0.18, from: 90, to: 450, steps: 20), arc(0.5, 0.69, 0.21, 0.2, from: -90, to: 270, steps: 24)],
         [arc(0.5, 0.31, 0.19, 0.19, from: 90, to: 450, steps: 20), arc(0.5, 0.69, 0.19, 0.19, from: -90, to: 270, steps: 24)]],
        // 9
        [[arc(0.49, 0.33, 0.19, 0.2, from: 0, to: 360, steps: 24), [p(0.68, 0.33), p(0.64, 0.88)]],
         [arc(0.49, 0.33, 0.19, 0.2, from: 0, to: 360, steps: 24),
          bezier(p(0.68, 0.33), p(0.70, 0.60), p(0.62, 0.84), p(0.40, 0.87))]],
    ]

    // MARK: Rendering

    /// Uniform draws `[0, 1)` from one image's Philox stream.
    struct Draws {
        let seed: UInt64, stream: UInt64
        var next = 0
        mutating func uniform() -> Float {
            defer { next += 1 }
            return Philox.uniform(seed: seed, stream: stream, element: next)
        }
        mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * uniform() }
        mutating func index(_ n: Int) -> Int { min(n - 1, Int(uniform() * Float(n))) }
    }

    /// Renders one image into `into` (`side × side` bytes).
    static func render(digit: Int, stream: UInt64, seed: UInt64, canvas: inout [Float], noise: inout [Float],
                       into: UnsafeMutablePointer<UInt8>) {
        var r = Draws(seed: seed, stream: stream)
        let variants = glyphs[digit]
        let glyph = variants[r.index(variants.count)]

        // Smooth warp in glyph space, then scale / aspect / slant / rotation / shift to pixels.
        let warpX = r.uniform(-0.045, 0.045), warpY = r.uniform(-0.045, 0.045)
        let phaseX = r.uniform(), phaseY = r.uniform()
        let scale = r.uniform(0.85, 1.1) * 21
        let aspect = r.uniform(0.85, 1.15)
        let slant = r.uniform(-0.3, 0.3)
        let angle = r.uniform(-0.22, 0.22)
        let center = Point(Float(side - 1) / 2 + r.uniform(-2.5, 2.5), Float(side - 1) / 2 + r.uniform(-2.5, 2.5))
        let halfWidth = r.uniform(0.7, 1.6)
        let ink = r.uniform(0.7, 1.0)
        let noiseSigma = r.uniform(0.02, 0.12)
        let background = r.uniform(0, 0.08)
        let (ca, sa) = (cos(angle), sin(angle))
        let sx = scale * aspect, sy = scale

        @inline(__always) func map(_ q: Point) -> Point {
            var x = q.x + warpX * sin(2 * .pi * (q.y + phaseX))
            let y = q.y + warpY * sin(2 * .pi * (q.x + phaseY)) - 0.5
            x -= 0.5
            x = (x - slant * y) * sx
            let yy = y * sy
            return center + Point(ca * x - sa * yy, sa * x + ca * yy)
        }

        for k in 0..<canvas.count { canvas[k] = 0 }
        let reach = halfWidth + 0.5
        canvas.withUnsafeMutableBufferPointer { img in
            for line in glyph {
                var a = map(line[0])
                for q in line.dropFirst() {
                    let b = map(q)
                    drawSegment(a, b, halfWidth: halfWidth, reach: reach, into: img)
                    a = b
                }
            }
        }

        // Pixel noise: a normal per pixel from the image's second stream.
        noise.withUnsafeMutableBufferPointer { buf in
            Philox.fillNormal(buf.baseAddress!, count: buf.count, seed: seed, stream: stream | 1 << 63)
        }
        for k in 0..<canvas.count {
            let v = background + ink * canvas[k] + noiseSigma * noise[k]
            into[k] = UInt8(max(0, min(255, (v * 255).rounded())))
        }
    }

    /// Max-composites the anti-aliased segment `a`–`b` (coverage 1 within `halfWidth`, fading to
    /// 0 over the next pixel) into `img`, visiting only its bounding box.
    @inline(__always)
    static func drawSegment(_ a: Point, _ b: Point, halfWidth: Float, reach: Float, into img: UnsafeMutableBufferPointer<Float>) {
        let x0 = max(0, Int((min(a.x, b.x) - reach).rounded(.down)))
        let x1 = min(side - 1, Int((max(a.x, b.x) + reach).rounded(.up)))
        let y0 = max(0, Int((min(a.y, b.y) - reach).rounded(.down)))
        let y1 = min(side - 1, Int((max(a.y, b.y) + reach).rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        let d = b - a
        let len2 = max((d * d).sum(), 1e-6)
        for y in y0...y1 {
            for x in x0...x1 {
                let pa = Point(Float(x), Float(y)) - a
                let t = max(0, min(1, (pa * d).sum() / len2))
                let e = pa - t * d
                let dist = (e * e).sum().squareRoot()
                let cover = max(0, min(1, halfWidth + 0.5 - dist))
                let k = y * side + x
                if cover > img[k] { img[k] = cover }
            }
        }
    }
}
