import Foundation
import JEMBackend
import JEMSupport

/// A report page as a list of blocks, rendered twice: as Markdown whose images are files in a
/// folder next to it, and as one self-contained HTML file with the same images as data URIs.
///
/// Text in headings, paragraphs, lists and table cells is Markdown with only two inline forms,
/// `code` and **bold**; the HTML renderer escapes everything else.
public struct ReportDocument {
    public struct Image {
        /// File name inside the images folder (report_files/ for report.md).
        public var fileName: String
        /// Alt text and caption.
        public var caption: String
        public var png: Data
        /// Small pixel-art grids (sample images) are shown enlarged without smoothing.
        public var pixelated: Bool

        public init(fileName: String, caption: String, png: Data, pixelated: Bool = false) {
            self.fileName = fileName
            self.caption = caption
            self.png = png
            self.pixelated = pixelated
        }
    }

    public enum Block {
        case heading(level: Int, text: String)
        case paragraph(String)
        case bullets([String])
        /// First row: the header. `numeric` columns are right-aligned.
        case table(header: [String], rows: [[String]], numeric: Set<Int>)
        /// Images shown side by side, each with its caption.
        case images([Image])
        /// Markdown written by another tool (attack.md), copied into the .md as it is; the HTML
        /// gets its headings, pipe tables and paragraphs converted.
        case embeddedMarkdown(String)
    }

    public var title: String
    public var blocks: [Block] = []

    public init(title: String) { self.title = title }

    public mutating func append(_ block: Block) { blocks.append(block) }

    public var images: [Image] {
        blocks.flatMap { block -> [Image] in
            if case .images(let images) = block { return images }
            return []
        }
    }

    // MARK: Markdown

    /// The Markdown text; images are referenced as `imagesFolder/fileName`.
    public func markdown(imagesFolder: String) -> String {
        var parts = ["# " + title]
        for block in blocks {
            switch block {
            case .heading(let level, let text):
                parts.append(String(repeating: "#", count: max(1, min(level, 6))) + " " + text)
            case .paragraph(let text):
                parts.append(text)
            case .bullets(let items):
                parts.append(items.map { "- " + $0 }.joined(separator: "\n"))
            case .table(let header, let rows, let numeric):
                func row(_ cells: [String]) -> String {
                    "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |"
                }
                let rule = "|" + header.indices.map { numeric.contains($0) ? "---:" : "---" }.joined(separator: "|") + "|"
                parts.append(([row(header), rule] + rows.map(row)).joined(separator: "\n"))
            case .images(let images):
                // On one line, so that renderers place them side by side.
                parts.append(images.map { "![\($0.caption)](\(imagesFolder)/\($0.fileName))" }.joined(separator: " "))
                parts.append(images.map { "*\($0.caption)*" }.joined(separator: " · "))
            case .embeddedMarkdown(let text):
                parts.append(text.trimmingCharacters(in: .newlines))
            }
        }
        return parts.joined(separator: "\n\n") + "\n"
    }

    // MARK: HTML

    /// One HTML file: inline style, every image a base64 data URI.
    public func html() -> String {
        var body: [String] = ["<h1>\(Self.inline(title))</h1>"]
        for block in blocks {
            switch block {
            case .heading(let level, let text):
                let h = max(1, min(level, 6))
                body.append("<h\(h)>\(Self.inline(text))</h\(h)>")
            case .paragraph(let text):
                body.append("<p>\(Self.inline(text))</p>")
            case .bullets(let items):
                body.append("<ul>\n" + items.map { "<li>\(Self.inline($0))</li>" }.joined(separator: "\n") + "\n</ul>")
            case .table(let header, let rows, let numeric):
                body.append(Self.htmlTable(header: header, rows: rows, numeric: numeric))
            case .images(let images):
                let figures = images.map { image in
                    "<figure><img\(image.pixelated ? " class=\"grid\"" : "") alt=\"\(Self.escape(image.caption))\" "
                        + "src=\"data:image/png;base64,\(image.png.base64EncodedString())\">"
                        + "<figcaption>\(Self.inline(image.caption))</figcaption></figure>"
                }
                body.append("<div class=\"row\">\n" + figures.joined(separator: "\n") + "\n</div>")
            case .embeddedMarkdown(let text):
                body.append(Self.convertMarkdown(text))
            }
        }
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(Self.escape(title))</title>
            <style>
            body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
            table { border-collapse: collapse; margin: 0.8em 0; }
            th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: left; }
            th { background: #f2f2f2; }
            td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
            code { background: #f4f4f4; padding: 0 0.25em; border-radius: 3px; }
            .row { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
            figure { margin: 0; }
            figure img { max-width: 580px; width: 100%; border: 1px solid #ddd; }
            figure img.grid { image-rendering: pixelated; width: 340px; }
            figcaption { font-size: 0.9em; color: #555; max-width: 580px; }
            </style>
            </head>
            <body>
            \(body.joined(separator: "\n"))
            </body>
            </html>

            """
    }

    static func htmlTable(header: [String], rows: [[String]], numeric: Set<Int>) -> String {
        func cells(_ row: [String], tag: String) -> String {
            row.enumerated().map { i, cell in
                "<\(tag)\(numeric.contains(i) ? " class=\"num\"" : "")>\(inline(cell))</\(tag)>"
            }.joined()
        }
        return "<table>\n<thead><tr>\(cells(header, tag: "th"))</tr></thead>\n<tbody>\n"
            + rows.map { "<tr>\(cells($0, tag: "td"))</tr>" }.joined(separator: "\n") + "\n</tbody>\n</table>"
    }

    /// Headings, pipe tables (their |---| rule dropped) and paragraphs of another tool's Markdown.
    static func convertMarkdown(_ text: String) -> String {
        var html: [String] = [], table: [[String]] = [], paragraph: [String] = []
        func flushParagraph() {
            if !paragraph.isEmpty { html.append("<p>\(inline(paragraph.joined(separator: " ")))</p>") }
            paragraph = []
        }
        func flushTable() {
            if let header = table.first { html.append(htmlTable(header: header, rows: Array(table.dropFirst()), numeric: [])) }
            table = []
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("|") {
                flushParagraph()
                var inner = Substring(line.dropFirst())
                if inner.hasSuffix("|") { inner = inner.dropLast() }
                let cells = inner.split(separator: "|", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                let isRule = cells.allSatisfy { !$0.isEmpty && $0.allSatisfy { "-:".contains($0) } }
                if !isRule { table.append(cells) }
                continue
            }
            flushTable()
            if line.isEmpty {
                flushParagraph()
            } else if let level = headingLevel(line) {
                flushParagraph()
                let h = min(level + 1, 6)   // nested below the report's own section heading
                let text = String(line.drop { $0 == "#" }).trimmingCharacters(in: .whitespaces)
                html.append("<h\(h)>\(inline(text))</h\(h)>")
            } else {
                paragraph.append(line)
            }
        }
        flushParagraph()
        flushTable()
        return html.joined(separator: "\n")
    }

    static func headingLevel(_ line: String) -> Int? {
        let hashes = line.prefix { $0 == "#" }.count
        guard hashes >= 1, hashes <= 6, line.dropFirst(hashes).first == " " else { return nil }
        return hashes
    }

    /// Escapes `text` and turns `code` spans and **bold** into tags.
    static func inline(_ text: String) -> String {
        var out = "", code = false, bold = false
        var characters = Array(text)[...]
        while let c = characters.first {
            characters = characters.dropFirst()
            if c == "`" {
                out += code ? "</code>" : "<code>"
                code.toggle()
            } else if !code && c == "*" && characters.first == "*" {
                characters = characters.dropFirst()
                out += bold ? "</strong>" : "<strong>"
                bold.toggle()
            } else if !code && c == "\\" && characters.first == "|" {
                // A pipe escaped for a Markdown table cell.
                continue
            } else {
                out += escape(String(c))
            }
        }
        if code { out += "</code>" }
        if bold { out += "</strong>" }
        return out
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    // MARK: Files

    /// Writes the Markdown to `markdownPath`, its images into the folder `<stem>_files` next to
    /// it, and the HTML to `htmlPath`; every file atomically. Returns the image folder.
    @discardableResult
    public func write(markdownPath: String, htmlPath: String) throws -> String {
        let markdownURL = URL(fileURLWithPath: markdownPath)
        let folder = markdownURL.deletingLastPathComponent().path
        let stem = markdownURL.deletingPathExtension().lastPathComponent
        let imagesName = stem + "_files", imagesFolder = folder + "/" + imagesName
        let fm = FileManager.default
        for dir in [folder, imagesFolder, URL(fileURLWithPath: htmlPath).deletingLastPathComponent().path] {
            do { try fm.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw IOError("\(dir): cannot create the folder (\(error.localizedDescription))")
            }
        }
        for image in images { try AtomicFile.write(image.png, to: imagesFolder + "/" + image.fileName) }
        try AtomicFile.write(Data(markdown(imagesFolder: imagesName).utf8), to: markdownPath)
        try AtomicFile.write(Data(html().utf8), to: htmlPath)
        return imagesFolder
    }
}
