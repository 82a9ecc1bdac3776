import Foundation
import JEMBackend

/// A plain left-aligned text table: the first row is the header, underlined.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        func line(_ row: [String]) -> String {
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        var lines = [line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")]
        lines += rows.dropFirst().map(line)
        return lines.joined(separator: "\n")
    }
}

func formatFixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
func formatScientific(_ value: Double) -> String { value == 0 ? "0" : String(format: "%.2e", value) }
