import Foundation
import JEMBackend
import JEMSupport

/// metrics.jsonl: one JSON object per line, appended and flushed as the run goes.
public final class MetricsLog {
    public let path: String
    private let handle: FileHandle

    /// Opens (creating) the log. With `keepThrough`, lines of iterations after that one are
    /// dropped first: a resumed run rewrites what the interrupted run logged past its checkpoint.
    public init(path: String, keepThrough iteration: Int? = nil) throws {
        self.path = path
        let fm = FileManager.default
        if let iteration, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let kept = text.split(separator: "\n").filter { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      let it = object["iteration"] as? Int else { return false }
                return it <= iteration
            }
            try AtomicFile.write(Data((kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).utf8), to: path)
        } else if !fm.fileExists(atPath: path) || iteration == nil {
            guard fm.createFile(atPath: path, contents: nil) else {
                throw IOError("\(path): cannot create the metrics log (\(String(cString: strerror(errno))))")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw IOError("\(path): cannot open the metrics log for writing")
        }
        self.handle = handle
        try handle.seekToEnd()
    }

    deinit { try? handle.close() }

    public func append(_ record: [String: Any]) throws {
        let cleaned = record.mapValues { value -> Any in
            if let d = value as? Double, !d.isFinite { return String(d) }
            if let f = value as? Float, !f.isFinite { return String(f) }
            return value
        }
        var data = try JSONSerialization.data(withJSONObject: cleaned, options: [.sortedKeys])
        data.append(0x0A)
        let end = try? handle.offset()
        do {
            if CrashPoint.isArmed {
                // Test-only: a kill halfway through a line (see CrashPoint).
                try handle.write(contentsOf: data.prefix(data.count / 2))
                CrashPoint.reach("metrics-half-line")
                try handle.write(contentsOf: data.dropFirst(data.count / 2))
            } else {
                try handle.write(contentsOf: data)
            }
        } catch {
            // Disk full mid-line: cut the partial line so the log stays whole JSON lines.
            if let end { try? handle.truncate(atOffset: end) }
            throw IOError("\(path): cannot append to the metrics log (\(AtomicFile.reason(error)))")
        }
    }
}
