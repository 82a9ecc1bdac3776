import Foundation
import JEMBackend

/// The one progress bar of jem-gpu, on stderr with rate and ETA: training iterations, attack
/// batches, and the bytes of a download. When stderr is not a terminal it prints plain log lines
/// instead (every `logEvery` items; for bytes, every tenth of the total, or every 10 s when the
/// total is unknown), so logs stay readable in files and CI. Safe to update from any thread.
public final class ProgressReporter: @unchecked Sendable {
    /// What is counted: iterations (`3/10 2.00 it/s`) or bytes (`1.5 MB / 3.0 MB 1.0 MB/s`).
    public enum Unit: Sendable { case iterations, bytes }

    /// nil: unknown (a download whose server sent no size).
    let total: Int?
    let label: String
    let unit: Unit
    let isTerminal: Bool
    let logEvery: Int
    let start = Date()
    var startCount = 0
    private let lock = NSLock()
    private var lastDraw = Date.distantPast
    private var lastLog = Date.distantPast
    private var lastTenth = -1
    private var drawn = false

    public init(total: Int, label: String, logEvery: Int = 25, startingAt: Int = 0) {
        self.total = max(total, 1)
        self.label = label
        self.unit = .iterations
        self.logEvery = max(logEvery, 1)
        self.startCount = startingAt
        isTerminal = isatty(STDERR_FILENO) == 1
    }

    /// A byte counter (a download): `total` nil when the size is not known.
    public init(bytes total: Int?, label: String, isTerminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.total = total.map { max($0, 1) }
        self.label = label
        self.unit = .bytes
        self.logEvery = 1
        self.isTerminal = isTerminal
    }

    /// Items per second since this reporter started.
    public func rate(completed: Int) -> Double {
        let elapsed = Date().timeIntervalSince(start)
        return elapsed > 0 ? Double(completed - startCount) / elapsed : 0
    }

    /// Draws (terminal) or logs (otherwise) the state after `completed` items or bytes.
    /// `elapsed` replaces the time since this reporter started (a download measures its own);
    /// `finished` ends the line with the total time instead of an ETA.
    public func update(completed: Int, detail: String = "", elapsed: TimeInterval? = nil, finished: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        let seconds = elapsed ?? Date().timeIntervalSince(start)
        let rate = seconds > 0 ? Double(completed - (elapsed == nil ? startCount : 0)) / seconds : 0
        let done = finished || (total.map { completed >= $0 } ?? false)
        let now = Date()
        if isTerminal {
            guard now.timeIntervalSince(lastDraw) > 0.1 || done else { return }
            lastDraw = now
            let line = Self.line(label: label, completed: completed, total: total, rate: rate, elapsed: seconds,
                                 finished: finished, unit: unit, barWidth: 24, detail: detail)
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (finished ? "\n" : "")).utf8))
            drawn = !finished
            return
        }
        let log: Bool
        switch unit {
        case .iterations:
            log = completed % logEvery == 0 || done
        case .bytes:
            // One line per 10% step (the 100% one is the "done" line), or every 10 s without a size.
            let tenth = total.map { min(9, Int(Double(completed) / Double($0) * 10)) } ?? -1
            log = finished || tenth > lastTenth || (total == nil && now.timeIntervalSince(lastLog) >= 10)
            lastTenth = max(lastTenth, tenth)
        }
        guard log else { return }
        lastLog = now
        let line = Self.line(label: label, completed: completed, total: total, rate: rate, elapsed: seconds,
                             finished: finished, unit: unit, barWidth: nil, detail: detail)
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Ends a bar's line left open (terminal only).
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        if isTerminal && (drawn || unit == .iterations) { FileHandle.standardError.write(Data("\n".utf8)) }
        drawn = false
    }

    /// Prints a line without breaking the bar.
    public func message(_ line: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[K" : "") + line + "\n").utf8))
    }

    /// One progress line: `train ██████·· 30/40 2.00 it/s, ETA 0:05 detail` with a bar of
    /// `barWidth` (terminal), `train 30/40 2.00 it/s, ETA 0:05 detail` without;
    /// `x.tar.gz ██·· 50.0 MB / 200.0 MB 10.0 MB/s, ETA 0:15` for bytes, `done in 0:20` once finished.
    public static func line(label: String, completed: Int, total: Int?, rate: Double, elapsed: TimeInterval,
                            finished: Bool, unit: Unit, barWidth: Int?, detail: String = "") -> String {
        var parts = [label]
        if let barWidth {
            if let total {
                let filled = max(0, min(barWidth, Int(Double(barWidth) * Double(completed) / Double(total))))
                parts.append(String(repeating: "█", count: filled) + String(repeating: "·", count: barWidth - filled))
            } else {
                parts.append(String(repeating: "·", count: barWidth))
            }
        }
        let remaining = total.map { rate > 0 ? Double($0 - completed) / rate : Double.infinity }
        let timing = finished ? "done in \(duration(elapsed))" : "ETA \(remaining.map(duration) ?? "?")"
        switch unit {
        case .iterations:
            parts.append("\(completed)/\(total ?? 0)")
            parts.append(String(format: "%.2f it/s, ", rate) + timing)
        case .bytes:
            parts.append(bytes(Double(completed)) + (total.map { " / " + bytes(Double($0)) } ?? ""))
            parts.append("\(bytes(rate))/s, " + timing)
        }
        if !detail.isEmpty { parts.append(detail) }
        return parts.joined(separator: " ")
    }

    /// Decimal units, as download sizes are usually quoted (170.1 MB).
    public static func bytes(_ n: Double) -> String {
        if n < 1000 { return String(format: "%.0f B", n) }
        if n < 1e6 { return String(format: "%.1f kB", n / 1e3) }
        if n < 1e9 { return String(format: "%.1f MB", n / 1e6) }
        return String(format: "%.2f GB", n / 1e9)
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, abs(seconds) < 1e9 else { return "?" }   // Int(1e20) would trap
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
            : String(format: "%d:%02d", s / 60, s % 60)
    }
}
