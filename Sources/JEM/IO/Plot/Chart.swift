import Foundation
import JEMBackend

/// A 2-D chart: a framed plot area with grid lines, ticks and numbers on both axes, a title,
/// axis labels and a legend, and any number of series (lines, histogram outlines, bars).
/// Rendered onto a `Canvas`; every plot jem-gpu writes (training curves, OOD histograms, ROC
/// curves, reliability diagrams) is one of these.
public struct Chart {
    public enum Mark {
        /// Points joined by straight segments; a non-finite point breaks the line.
        case line(points: [(x: Double, y: Double)], dashed: Bool)
        /// A filled square at each point (values that are few, e.g. one evaluation per epoch,
        /// stay visible where a line of one point would draw nothing).
        case markers(points: [(x: Double, y: Double)])
        /// A histogram: `heights[i]` over `[edges[i], edges[i+1])`, drawn as a step outline over
        /// a light fill (so several overlaid histograms stay readable).
        case histogram(edges: [Double], heights: [Double])
        /// Filled bars: `heights[i]` over `[edges[i], edges[i+1]]`, with a dark outline.
        case bars(edges: [Double], heights: [Double])
    }

    public struct Series {
        /// Legend text; nil keeps the series out of the legend.
        public var name: String?
        public var color: RGB
        public var mark: Mark
        public init(name: String?, color: RGB, mark: Mark) {
            self.name = name
            self.color = color
            self.mark = mark
        }
    }

    public enum LegendPosition { case topLeft, topRight, bottomRight }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series] = []
    /// Axis ranges; nil: from the data (with a margin for lines, from 0 for histograms and bars).
    public var xRange: ClosedRange<Double>? = nil
    public var yRange: ClosedRange<Double>? = nil
    public var legendPosition = LegendPosition.topRight
    public var width = 720
    public var height = 540
    /// Font scale: each 5×7 glyph pixel becomes scale×scale pixels.
    public var textScale = 2

    public init(title: String, xLabel: String, yLabel: String) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    public func write(to path: String) throws { try render().write(to: path) }

    public func render() -> Canvas {
        var canvas = Canvas(width: width, height: height)
        let s = textScale, lineHeight = Canvas.textHeight(scale: s)
        let (xr, yr) = (xRange ?? dataRange(x: true), yRange ?? dataRange(x: false))
        let xTicks = Self.ticks(xr), yTicks = Self.ticks(yr)
        let yTickLabels = Self.labels(yTicks)
        let widestY = yTickLabels.map { Canvas.textWidth($0, scale: s) }.max() ?? 0
        // Plot area: room for the title above, the y label and tick numbers left, the x tick
        // numbers and x label below.
        let left = 2 * lineHeight + widestY + 16, right = width - 24
        let top = 2 * lineHeight + 8, bottom = height - (3 * lineHeight + 14)
        guard right - left > 20, bottom - top > 20 else { return canvas }
        func px(_ x: Double) -> Int { left + Int(((x - xr.lowerBound) / (xr.upperBound - xr.lowerBound) * Double(right - left)).rounded()) }
        func py(_ y: Double) -> Int { bottom - Int(((y - yr.lowerBound) / (yr.upperBound - yr.lowerBound) * Double(bottom - top)).rounded()) }

        // Grid and ticks.
        for t in xTicks { canvas.line(x0: px(t), y0: top, x1: px(t), y1: bottom, .lightGray) }
        for t in yTicks { canvas.line(x0: left, y0: py(t), x1: right, y1: py(t), .lightGray) }

        // Series, clipped to the plot area.
        canvas.clip = (left, top, right, bottom)
        for series in self.series { draw(series, on: &canvas, px: { px($0) }, py: { py($0) }, baseline: py(max(yr.lowerBound, min(0, yr.upperBound)))) }
        canvas.clip = nil

        // Frame, tick marks and numbers.
        for (x0, y0, x1, y1) in [(left, top, right, top), (left, bottom, right, bottom), (left, top, left, bottom),
                                 (right, top, right, bottom)] {
            canvas.line(x0: x0, y0: y0, x1: x1, y1: y1, .black)
        }
        for (t, label) in zip(xTicks, Self.labels(xTicks)) {
            canvas.line(x0: px(t), y0: bottom, x1: px(t), y1: bottom + 5, .black)
            canvas.text(label, x: px(t) - Canvas.textWidth(label, scale: s) / 2, y: bottom + 9, scale: s)
        }
        for (t, label) in zip(yTicks, yTickLabels) {
            canvas.line(x0: left - 5, y0: py(t), x1: left, y1: py(t), .black)
            canvas.text(label, x: left - 9 - Canvas.textWidth(label, scale: s), y: py(t) - lineHeight / 2, scale: s)
        }

        // Title, axis labels, legend.
        let titleText = Self.fit(title, width: width - 16, scale: s)
        canvas.text(titleText, x: (width - Canvas.textWidth(titleText, scale: s)) / 2, y: lineHeight / 2 + 2, scale: s)
        let xText = Self.fit(xLabel, width: right - left, scale: s)
        canvas.text(xText, x: (left + right - Canvas.textWidth(xText, scale: s)) / 2, y: height - lineHeight - 8, scale: s)
        let yText = Self.fit(yLabel, width: bottom - top, scale: s)
        canvas.text(yText, x: 6, y: (top + bottom + Canvas.textWidth(yText, scale: s)) / 2, scale: s, vertical: true)
        drawLegend(on: &canvas, left: left, top: top, right: right, bottom: bottom)
        return canvas
    }

    private func draw(_ series: Series, on canvas: inout Canvas, px: (Double) -> Int, py: (Double) -> Int,
                      baseline: Int) {
        switch series.mark {
        case .line(let points, let dashed):
            var previous: (Int, Int)? = nil
            for p in points {
                guard p.x.isFinite, p.y.isFinite else { previous = nil; continue }
                let q = (px(p.x), py(p.y))
                if let previous {
                    canvas.line(x0: previous.0, y0: previous.1, x1: q.0, y1: q.1, series.color, thickness: 2,
                                dash: dashed ? 6 : 0)
                }
                previous = q
            }
        case .markers(let points):
            for p in points where p.x.isFinite && p.y.isFinite {
                canvas.fillRect(x: px(p.x) - 3, y: py(p.y) - 3, width: 7, height: 7, series.color)
            }
        case .histogram(let edges, let heights):
            let fill = series.color.lightened(0.75)
            for (i, h) in heights.enumerated() where h.isFinite && h > 0 {
                let x0 = px(edges[i]), x1 = px(edges[i + 1]), y = py(h)
                canvas.fillRect(x: x0, y: min(y, baseline), width: max(x1 - x0, 1), height: abs(baseline - y), fill)
            }
            // The outline on top of every fill: up and down at each edge, across at each height.
            var yPrevious = baseline
            for (i, h) in heights.enumerated() {
                let y = h.isFinite ? py(h) : baseline, x0 = px(edges[i]), x1 = px(edges[i + 1])
                canvas.line(x0: x0, y0: yPrevious, x1: x0, y1: y, series.color, thickness: 2)
                canvas.line(x0: x0, y0: y, x1: x1, y1: y, series.color, thickness: 2)
                yPrevious = y
            }
            if let last = edges.last { canvas.line(x0: px(last), y0: yPrevious, x1: px(last), y1: baseline, series.color, thickness: 2) }
        case .bars(let edges, let heights):
            for (i, h) in heights.enumerated() where h.isFinite && h != 0 {
                let x0 = px(edges[i]) + 1, x1 = px(edges[i + 1]) - 1, y = py(h)
                canvas.fillRect(x: x0, y: min(y, baseline), width: max(x1 - x0, 1), height: abs(baseline - y), series.color)
                let dark = RGB(series.color.r / 2, series.color.g / 2, series.color.b / 2)
                for (a, b, c, d) in [(x0, y, x1, y), (x0, y, x0, baseline), (x1, y, x1, baseline)] {
                    canvas.line(x0: a, y0: b, x1: c, y1: d, dark)
                }
            }
        }
    }

    private func drawLegend(on canvas: inout Canvas, left: Int, top: Int, right: Int, bottom: Int) {
        let entries = series.compactMap { s in s.name.map { ($0, s.color) } }
        guard !entries.isEmpty else { return }
        let s = textScale, lineHeight = Canvas.textHeight(scale: s), swatch = 3 * lineHeight / 2
        let names = entries.map { Self.fit($0.0, width: (right - left) * 3 / 4, scale: s) }
        let boxWidth = (names.map { Canvas.textWidth($0, scale: s) }.max() ?? 0) + swatch + 24
        let rowHeight = lineHeight + 8, boxHeight = rowHeight * entries.count + 8
        let x = legendPosition == .topLeft ? left + 10 : right - 10 - boxWidth
        let y = legendPosition == .bottomRight ? bottom - 10 - boxHeight : top + 10
        canvas.fillRect(x: x, y: y, width: boxWidth, height: boxHeight, .white)
        for (x0, y0, x1, y1) in [(x, y, x + boxWidth, y), (x, y + boxHeight, x + boxWidth, y + boxHeight),
                                 (x, y, x, y + boxHeight), (x + boxWidth, y, x + boxWidth, y + boxHeight)] {
            canvas.line(x0: x0, y0: y0, x1: x1, y1: y1, .gray)
        }
        for (i, (name, entry)) in zip(names, entries).enumerated() {
            let rowY = y + 8 + i * rowHeight
            canvas.fillRect(x: x + 8, y: rowY + lineHeight / 2 - 2, width: swatch, height: 5, entry.1)
            canvas.text(name, x: x + 16 + swatch, y: rowY, scale: s)
        }
    }

    /// The range covering every finite data value: lines get a 4% margin; histograms and bars
    /// start at 0 on the y axis.
    func dataRange(x: Bool) -> ClosedRange<Double> {
        var values: [Double] = []
        var fromZero = false
        for s in series {
            switch s.mark {
            case .line(let points, _), .markers(let points): values += points.map { x ? $0.x : $0.y }
            case .histogram(let edges, let heights), .bars(let edges, let heights):
                values += x ? edges : heights
                if !x { fromZero = true }
            }
        }
        values = values.filter(\.isFinite)
        guard var low = values.min(), var high = values.max() else { return 0...1 }
        if fromZero { low = min(low, 0); high = max(high, 0) }
        if high - low <= 0 {
            let pad = max(abs(low) * 0.1, 1e-3)
            return (low - pad)...(high + pad)
        }
        let margin = fromZero ? 0 : 0.04 * (high - low)
        return (low - margin)...(high + (fromZero && !x ? 0.05 * (high - low) : margin))
    }

    /// About six "nice" tick values (1, 2 or 5 × 10^k apart) inside `range`.
    static func ticks(_ range: ClosedRange<Double>, target: Int = 6) -> [Double] {
        let span = range.upperBound - range.lowerBound
        guard span > 0, span.isFinite else { return [range.lowerBound] }
        let raw = span / Double(target), magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        var ticks: [Double] = []
        var k = (range.lowerBound / step).rounded(.up)
        while k * step <= range.upperBound + step * 1e-9 && ticks.count < 50 {
            let t = k * step
            ticks.append(abs(t) < step * 1e-9 ? 0 : t)
            k += 1
        }
        return ticks
    }

    /// Tick numbers with as many decimals as the tick spacing needs (scientific when huge or tiny).
    static func labels(_ ticks: [Double]) -> [String] {
        guard ticks.count > 1 else { return ticks.map { String(format: "%g", $0) } }
        let step = ticks[1] - ticks[0], largest = ticks.map(abs).max() ?? 0
        if largest >= 1e5 || step < 1e-4 { return ticks.map { String(format: "%.1e", $0) } }
        let decimals = max(0, Int(-floor(log10(step) + 1e-9)))
        return ticks.map { String(format: "%.\(decimals)f", $0) }
    }

    /// `text` shortened with "..." to fit `width` pixels.
    static func fit(_ text: String, width: Int, scale: Int) -> String {
        let most = max((width / scale + 1) / BitmapFont.advance, 3)
        return text.count <= most ? text : String(text.prefix(most - 3)) + "..."
    }
}
