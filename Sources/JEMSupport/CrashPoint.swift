import Foundation

/// Test-only: kills the process with SIGKILL at an exact instant, so the reliability tests can
/// interrupt a run where a timer rarely lands (halfway through a checkpoint's bytes, between the
/// fsync and the rename). Armed by `JEM_TEST_KILL_AT=<point>@<n>`: the n-th time (1-based) the code
/// reaches `<point>`, the process kills itself. Unset (always, outside the tests), `reach` is one
/// comparison against nil.
///
/// Points: `write-half:<file>` (half of an atomic file's bytes are in its temporary file),
/// `before-rename:<file>` (temporary file complete and fsynced, not yet renamed),
/// `after-rename:<file>` (renamed, folder not yet fsynced), `metrics-half-line` (half of a
/// metrics.jsonl line written), `iteration` (an optimizer step done, nothing logged or saved yet).
public enum CrashPoint {
    private static let armed: (point: String, count: Int)? = {
        guard let text = ProcessInfo.processInfo.environment["JEM_TEST_KILL_AT"],
              let at = text.lastIndex(of: "@"), let count = Int(text[text.index(after: at)...]) else { return nil }
        return (String(text[..<at]), count)
    }()
    nonisolated(unsafe) private static var hits = 0

    public static var isArmed: Bool { armed != nil }

    public static func reach(_ point: @autoclosure () -> String) {
        guard let armed, armed.point == point() else { return }
        hits += 1
        if hits == armed.count { kill(getpid(), SIGKILL) }
    }
}
