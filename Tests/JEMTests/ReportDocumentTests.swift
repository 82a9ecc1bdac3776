import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The report page's two renderings: Markdown with images in a folder next to it, and one HTML
/// file with the same images inline, text escaped, and another tool's Markdown converted.
final class ReportDocumentTests: XCTestCase {
    func document() -> (ReportDocument, Data) {
        let png = Data(Canvas(width: 3, height: 2, background: RGB(10, 20, 30)).pngData())
        var doc = ReportDocument(title: "Run <1> & co")
        doc.append(.heading(level: 2, text: "Results"))
        doc.append(.paragraph("Use `jem-gpu eval --out DIR/eval`, **not** <script>alert(1)</script>."))
        doc.append(.table(header: ["metric", "a"], rows: [["|loss| above", "0.5000"]], numeric: [1]))
        doc.append(.images([ReportDocument.Image(fileName: "curve.png", caption: "A curve", png: png),
                            ReportDocument.Image(fileName: "grid.png", caption: "A grid", png: png, pixelated: true)]))
        doc.append(.embeddedMarkdown("# Robust accuracy\n\nSome `text`\nmore text.\n| eps | refine 0 |\n|---|---:|\n| 0 (clean) | 97.5% (39/40) |\nAfter."))
        return (doc, png)
    }

    func testMarkdown() {
        let (doc, _) = document()
        let markdown = doc.markdown(imagesFolder: "report_files")
        XCTAssertTrue(markdown.hasPrefix("# Run <1> & co\n\n## Results\n\n"), markdown)
        XCTAssertTrue(markdown.contains("| metric | a |\n|---|---:|\n| \\|loss\\| above | 0.5000 |\n"), markdown)
        XCTAssertTrue(markdown.contains("![A curve](report_files/curve.png) ![A grid](report_files/grid.png)\n"), markdown)
        XCTAssertTrue(markdown.contains("# Robust accuracy\n\nSome `text`\nmore text.\n| eps | refine 0 |\n|---|---:|\n"),
                      "embedded as written: \(markdown)")
    }

    func testHTMLIsOneFileWithEscapedText() {
        let (doc, png) = document()
        let html = doc.html()
        XCTAssertTrue(html.contains("<title>Run &lt;1&gt; &amp; co</title>"))
        XCTAssertTrue(html.contains("<p>Use <code>jem-gpu eval --out DIR/eval</code>, <strong>not</strong> "
                                    + "&lt;script&gt;alert(1)&lt;/script&gt;.</p>"), html)
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertTrue(html.contains("<tr><td>|loss| above</td><td class=\"num\">0.5000</td></tr>"), html)
        let uri = "src=\"data:image/png;base64,\(png.base64EncodedString())\""
        XCTAssertEqual(html.components(separatedBy: uri).count - 1, 2)
        XCTAssertTrue(html.contains("<img class=\"grid\" alt=\"A grid\" " + uri))
        XCTAssertFalse(html.contains("curve.png"))
        // The embedded Markdown: its heading nested one level down, paragraphs joined, the
        // pipe table as a table without its rule row.
        XCTAssertTrue(html.contains("<h2>Robust accuracy</h2>\n<p>Some <code>text</code> more text.</p>\n<table>"), html)
        XCTAssertTrue(html.contains("<thead><tr><th>eps</th><th>refine 0</th></tr></thead>"), html)
        XCTAssertTrue(html.contains("<tr><td>0 (clean)</td><td>97.5% (39/40)</td></tr>\n</tbody>\n</table>\n<p>After.</p>"), html)
        XCTAssertFalse(html.contains("---"))
    }

    func testWriteCreatesTheFolders() throws {
        let (doc, png) = document()
        let root = NSTemporaryDirectory() + "jem-report-doc-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folder = try doc.write(markdownPath: root + "/a/summary.md", htmlPath: root + "/b/page.html")
        XCTAssertEqual(folder, root + "/a/summary_files")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: folder + "/grid.png")), png)
        let markdown = try String(contentsOfFile: root + "/a/summary.md", encoding: .utf8)
        XCTAssertTrue(markdown.contains("](summary_files/grid.png)"))
        XCTAssertEqual(try String(contentsOfFile: root + "/b/page.html", encoding: .utf8), doc.html())
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root + "/a").filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary files left behind")
    }
}
