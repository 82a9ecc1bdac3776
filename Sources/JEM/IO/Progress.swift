import Foundation
import JEMBackend

/// A progress bar on stderr with rate and ETA; when stderr is not a terminal it prints plain
/// log lines instead (every `logEvery` updates), so logs stay readable in files and CI.
public final class ProgressReporter {
    let total: Int
    let label: String
    let isTerminal: Bool
    let logEvery: Int
    let start = Date()
    var startCount = 0
    var lastDraw = Date.distantPast

    public init(total: Int, label: String, logEvery: Int = 25, startingAt: Int = 0) {
        self.total = max(total, 1)
        self.label = label
        self.logEvery = max(logEvery, 1)
        self.startCount = startingAt
        isTerminal = isatty(STDERR_FILENO) == 1
    }

    /// Items per second since this reporter started.
    public func rate(completed: Int) -> Double {
        let elapsed = Date().timeIntervalSince(start)
        return elapsed > 0 ? Double(completed - startCount) / elapsed : 0
    }

    public func update(completed: Int, detail: String) {
        let rate = rate(completed: completed)
        let remaining = rate > 0 ? Double(total - completed) / rate : 0
        let stats = String(format: "%.2f it/s, ETA %@", rate, Self.duration(remaining))
        if isTerminal {
            let now = Date()
            guard now.timeIntervalSince(lastDraw) > 0.1 || completed >= total else { return }
            lastDraw = now
            let width = 24, filled = max(0, min(width, Int(Double(width) * Double(completed) / Double(total))))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[K\(label) \(bar) \(completed)/\(total) \(stats) \(detail)".utf8))
        } else if completed % logEvery == 0 || completed >= total {
            FileHandle.standardError.write(Data("\(label) \(completed)/\(total) \(stats) \(detail)\n".utf8))
        }
    }

    /// Ends the bar's line (terminal only).
    public func finish() {
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// Prints a line without breaking the bar.
    public func message(_ line: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[K" : "") + line + "\n").utf8))
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 1e9 else { return "?" }   // Int(1e20) would trap
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
            : String(format: "%d:%02d", s / 60, s % 60)
    }
}
