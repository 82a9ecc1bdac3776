import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// What evaluation writes besides metrics.json: .npy/.npz files (read back with the project's
/// own zip and NPY readers) and the PNG charts (text, axes, series where they belong).
final class EvaluationOutputTests: XCTestCase {
    // MARK: NPY / NPZ

    func testNPZRoundTripsThroughTheProjectsReaders() throws {
        let floats: [Float] = [1.5, -2, .infinity, 0, 3.25, -0.125]
        let ints: [Int64] = [0, -1, 99, Int64.max]
        let bytes = try NPZWriter.npz([("a", .float32(floats, shape: [2, 3])), ("labels", .int64(ints, shape: [4])),
                                       ("noise", .float32([0.03], shape: [])), ("settings", .string("{\"x\": \"é\"}"))])
        let zip = try ZipArchive(bytes: bytes, file: "t.npz")
        XCTAssertEqual(zip.entries.map(\.name), ["a.npy", "labels.npy", "noise.npy", "settings.npy"])
        XCTAssertTrue(zip.entries.allSatisfy { $0.method == 0 })
        let a = try NPYArray(bytes: try zip.extract(zip.entry("a.npy")!), file: "a")
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.dtype.descr, "<f4")
        XCTAssertEqual(a.cOrderFloats(), floats)
        let labels = try NPYArray(bytes: try zip.extract(zip.entry("labels.npy")!), file: "labels")
        XCTAssertEqual(labels.shape, [4])
        XCTAssertEqual(labels.dtype.descr, "<i8")
        let decoded = (0..<4).map { i in
            (0..<8).reduce(Int64(0)) { $0 | Int64(labels.bytes[labels.range.lowerBound + 8 * i + $1]) << (8 * Int64($1)) }
        }
        XCTAssertEqual(decoded, ints)
        let noise = try NPYArray(bytes: try zip.extract(zip.entry("noise.npy")!), file: "noise")
        XCTAssertEqual(noise.shape, [])
        XCTAssertEqual(noise.cOrderFloats(), [0.03])
        // Headers are padded so the data starts at a multiple of 64 bytes, as numpy writes them.
        for v: NPYValue in [.float32([1, 2, 3], shape: [3]), .int64([], shape: [0, 5]), .string("abc")] {
            let npy = NPZWriter.npy(v)
            let headerLength = Int(npy[8]) | Int(npy[9]) << 8
            XCTAssertEqual((10 + headerLength) % 64, 0)
            XCTAssertEqual(npy[10 + headerLength - 1], 0x0A)
        }
        // The string member: '<U10' (10 characters, é being one) as UTF-32LE code points.
        let settings = try zip.extract(zip.entry("settings.npy")!)
        XCTAssertTrue(String(decoding: settings.prefix(80), as: UTF8.self).contains("'descr': '<U10'"))
        XCTAssertEqual(settings.count % 4, 0)
    }

    func testNPZLoadsWithNumPyWhenAvailable() throws {
        guard pythonHasNumPy() else { throw XCTSkip("python3 with numpy not available: numpy check of the .npz writer not run") }
        let path = NSTemporaryDirectory() + "jem-npz-\(UUID().uuidString).npz"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NPZWriter.writeNPZ([("x", .float32([1, 2, 3, 4, 5, 6], shape: [3, 2])), ("y", .int64([7, -8], shape: [2])),
                                ("s", .string("héllo"))], to: path)
        let output = try runPython("""
            import sys, numpy as np
            d = np.load(sys.argv[1])
            assert sorted(d.files) == ["s", "x", "y"], d.files
            assert d["x"].dtype == np.float32 and d["x"].shape == (3, 2) and d["x"][2, 1] == 6
            assert d["y"].dtype == np.int64 and list(d["y"]) == [7, -8]
            print(str(d["s"]))
            """, [path])
        XCTAssertEqual(output.status, 0, output.text)
        XCTAssertEqual(output.text.trimmingCharacters(in: .whitespacesAndNewlines), "héllo")
    }

    // MARK: Plots

    /// Text is the font's bitmap, scaled; vertical text reads bottom to top.
    func testTextRenderingUsesTheGlyphs() {
        var canvas = Canvas(width: 40, height: 30)
        canvas.text("L", x: 2, y: 3, scale: 2)
        let glyph = BitmapFont.columns("L")
        for gx in 0..<5 {
            for gy in 0..<8 {
                let ink = canvas.pixel(x: 2 + 2 * gx + 1, y: 3 + 2 * gy + 1) == .black
                XCTAssertEqual(ink, BitmapFont.isSet(glyph, x: gx, y: gy), "pixel \(gx),\(gy)")
            }
        }
        // "L" rotated counter-clockwise: its stem (column 0) becomes the bottom row, its foot
        // (row 6) the rightmost column.
        var vertical = Canvas(width: 30, height: 30)
        vertical.text("L", x: 5, y: 20, vertical: true)
        XCTAssertEqual(vertical.pixel(x: 5, y: 20), .black)      // stem top (row 0) at the left
        XCTAssertEqual(vertical.pixel(x: 11, y: 20), .black)     // stem bottom (row 6)
        XCTAssertEqual(vertical.pixel(x: 11, y: 16), .black)     // foot end (column 4, row 6)
        XCTAssertEqual(vertical.pixel(x: 5, y: 16), .white)
        XCTAssertEqual(Canvas.textWidth("abc", scale: 2), (3 * 6 - 1) * 2)
    }

    func testTicksAndLabels() {
        XCTAssertEqual(Chart.ticks(0...1), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1])
        XCTAssertEqual(Chart.labels(Chart.ticks(0...1)), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"])
        XCTAssertEqual(Chart.labels(Chart.ticks(-30...270)), ["0", "50", "100", "150", "200", "250"])
        XCTAssertEqual(Chart.labels([0, 200_000, 400_000]), ["0.0e+00", "2.0e+05", "4.0e+05"])
    }

    /// A line chart as training curves will use it: decodes as PNG, the series colour lands
    /// inside the plot area, the frame and the title text are drawn.
    func testLineChartRendersAsPNG() throws {
        let chart = Plots.lineChart(title: "loss", xLabel: "iteration", yLabel: "value",
                                    series: [("train", (0..<50).map { (Double($0), exp(-Double($0) / 10)) }),
                                             ("valid", (0..<50).map { (Double($0), 0.5) })])
        let image = try PNG.decode(chart.render().pngData())
        XCTAssertEqual(image.width, 720)
        XCTAssertEqual(image.height, 540)
        XCTAssertEqual(image.channels, 3)
        func count(_ color: RGB, rows: Range<Int>) -> Int {
            var n = 0
            for y in rows { for x in 0..<image.width {
                let i = (y * image.width + x) * 3
                if image.pixels[i] == color.r && image.pixels[i + 1] == color.g && image.pixels[i + 2] == color.b { n += 1 }
            } }
            return n
        }
        XCTAssertGreaterThan(count(RGB.palette[0], rows: 40..<480), 300)
        XCTAssertGreaterThan(count(RGB.palette[1], rows: 40..<480), 300)
        XCTAssertGreaterThan(count(.black, rows: 0..<30), 20, "no title text")
    }

    func testHistogramsROCAndReliabilityCharts() throws {
        let h = Plots.histograms(title: "px", xLabel: "score", sets: [("in", randomArray(500, stream: 1)),
                                                                      ("out", randomArray(300, stream: 2, low: 0, high: 3) + [.nan])])
        guard case .histogram(let edges, let heights)? = h.series.first?.mark else { return XCTFail("no histogram") }
        XCTAssertEqual(edges.count, 51)
        // Density: the bars integrate to 1.
        XCTAssertEqual(zip(heights, zip(edges, edges.dropFirst())).reduce(0) { $0 + $1.0 * ($1.1.1 - $1.1.0) }, 1,
                       accuracy: 1e-9)
        XCTAssertEqual(h.series[1].name, "out (n=301, 1 non-finite)")
        _ = try PNG.decode(h.render().pngData())

        let curve = ROC.curve(positive: randomArray(50, stream: 3), negative: randomArray(50, stream: 4, low: -2, high: 0.5))
        let roc = Plots.roc(title: "ROC", curves: [("px", curve)])
        XCTAssertEqual(roc.xRange, 0...1)
        _ = try PNG.decode(roc.render().pngData())

        let diagram = ReliabilityDiagram(confidences: randomArray(100, stream: 5, low: 0.2, high: 1),
                                         correct: (0..<100).map { $0 % 3 != 0 })
        let reliability = Plots.reliability(title: "rel", diagram)
        guard case .bars(let barEdges, let barHeights)? = reliability.series.first?.mark else { return XCTFail("no bars") }
        XCTAssertEqual(barEdges.count, 21)
        XCTAssertEqual(barHeights, diagram.bins.map { $0.accuracy ?? 0 })
        _ = try PNG.decode(reliability.render().pngData())
    }
}

/// Whether `python3 -c "import numpy"` works here.
func pythonHasNumPy() -> Bool {
    (try? runPython("import numpy", []))?.status == 0
}

/// Runs a Python script with arguments; stdout and stderr together.
func runPython(_ script: String, _ arguments: [String]) throws -> (status: Int32, text: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let out = Pipe()
    process.standardOutput = out
    process.standardError = out
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, text)
}
