import Foundation
import JEMBackend
import JEMSupport

/// An RGB colour, 8 bits per channel.
public struct RGB: Sendable, Equatable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        self.r = r
        self.g = g
        self.b = b
    }

    public static let white = RGB(255, 255, 255)
    public static let black = RGB(0, 0, 0)
    public static let gray = RGB(128, 128, 128)
    public static let lightGray = RGB(225, 225, 225)

    /// Distinct series colours (the first ones of matplotlib's default cycle).
    public static let palette = [RGB(31, 119, 180), RGB(255, 127, 14), RGB(44, 160, 44), RGB(214, 39, 40),
                                 RGB(148, 103, 189), RGB(140, 86, 75), RGB(227, 119, 194), RGB(127, 127, 127)]

    /// This colour mixed with white: `amount` 0 keeps it, 1 gives white (translucent fills).
    public func lightened(_ amount: Double) -> RGB {
        func mix(_ v: UInt8) -> UInt8 { UInt8((Double(v) + (255 - Double(v)) * amount).rounded()) }
        return RGB(mix(r), mix(g), mix(b))
    }
}

/// A raster image to draw plots on: pixels, lines, rectangles and bitmap-font text, saved as PNG.
/// Drawing outside the canvas is clipped silently.
public struct Canvas {
    public let width: Int
    public let height: Int
    public private(set) var pixels: [UInt8]
    /// When set, drawing is limited to this rectangle (a chart's plot area).
    public var clip: (minX: Int, minY: Int, maxX: Int, maxY: Int)? = nil

    public init(width: Int, height: Int, background: RGB = .white) {
        precondition(width > 0 && height > 0)
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fillRect(x: 0, y: 0, width: width, height: height, background)
    }

    public func pixel(x: Int, y: Int) -> RGB {
        let i = (y * width + x) * 3
        return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    public mutating func set(x: Int, y: Int, _ color: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        if let c = clip, x < c.minX || y < c.minY || x > c.maxX || y > c.maxY { return }
        let i = (y * width + x) * 3
        pixels[i] = color.r
        pixels[i + 1] = color.g
        pixels[i + 2] = color.b
    }

    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, _ color: RGB) {
        for yy in max(y, 0)..<max(min(y + h, height), max(y, 0)) {
            for xx in max(x, 0)..<max(min(x + w, width), max(x, 0)) { set(x: xx, y: yy, color) }
        }
    }

    /// A straight line (Bresenham) `thickness` pixels wide; with `dash` > 0, drawn `dash` pixels
    /// on, `dash` pixels off.
    public mutating func line(x0: Int, y0: Int, x1: Int, y1: Int, _ color: RGB, thickness: Int = 1, dash: Int = 0) {
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy, x = x0, y = y0, step = 0
        // Bound the walk: lines far outside the canvas (huge data values) are clipped, not walked.
        let limit = 4 * (width + height) + dx - dy
        while step <= limit {
            if dash <= 0 || (step / dash) % 2 == 0 {
                let low = -(thickness - 1) / 2
                for oy in low..<(low + thickness) { for ox in low..<(low + thickness) { set(x: x + ox, y: y + oy, color) } }
            }
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
            step += 1
        }
    }

    /// Width in pixels of `text` drawn at `scale`.
    public static func textWidth(_ text: String, scale: Int) -> Int {
        text.isEmpty ? 0 : (text.count * BitmapFont.advance - 1) * scale
    }

    public static func textHeight(scale: Int) -> Int { BitmapFont.glyphHeight * scale }

    /// Draws `text` with its top-left corner at (x, y), each font pixel a `scale`×`scale` block.
    /// `vertical` draws it rotated 90° counter-clockwise (reading bottom to top), starting at
    /// the bottom-left corner (x, y).
    public mutating func text(_ text: String, x: Int, y: Int, scale: Int = 1, _ color: RGB = .black,
                              vertical: Bool = false) {
        for (index, character) in text.enumerated() {
            let columns = BitmapFont.columns(character)
            let offset = index * BitmapFont.advance * scale
            for gx in 0..<BitmapFont.glyphWidth {
                for gy in 0..<BitmapFont.glyphHeight where BitmapFont.isSet(columns, x: gx, y: gy) {
                    // Upright: font (gx, gy) -> (x + offset + gx, y + gy).
                    // Vertical: the glyph's x runs up the canvas, its y runs right.
                    let px = vertical ? x + gy * scale : x + offset + gx * scale
                    let py = vertical ? y - offset - (gx + 1) * scale + 1 : y + gy * scale
                    fillRect(x: px, y: py, width: scale, height: scale, color)
                }
            }
        }
    }

    public func pngData() -> [UInt8] { PNG.encode(pixels: pixels, width: width, height: height, channels: 3) }

    /// Writes the PNG atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(Data(pngData()), to: path)
    }
}
