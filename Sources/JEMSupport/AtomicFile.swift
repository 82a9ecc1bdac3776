import Foundation

/// Writes files so that a reader (or a process killed mid-write) only ever sees the old complete
/// file or the new complete file: data goes to a temporary file in the same folder, is fsynced,
/// renamed over the final name, and the folder is fsynced so the rename itself is durable.
/// A failed write (disk full, file-size limit, unwritable folder) throws a one-line `IOError`
/// naming the final path, removes the temporary file and leaves the old file untouched.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        let name = (path as NSString).lastPathComponent
        try write(to: path) { handle in
            if CrashPoint.isArmed {
                // Test-only: a kill halfway through the bytes (see CrashPoint).
                try handle.write(contentsOf: data.prefix(data.count / 2))
                CrashPoint.reach("write-half:" + name)
                try handle.write(contentsOf: data.dropFirst(data.count / 2))
            } else {
                try handle.write(contentsOf: data)
            }
        }
    }

    /// Streams the content through `body` (for files too large to build in memory twice).
    public static func write(to path: String, _ body: (FileHandle) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        let temporary = folder + "/" + temporaryName(for: name, pid: getpid())
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw IOError("\(path): cannot create a file in \(folder) (\(String(cString: strerror(errno))))")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            do {
                try body(handle)
                try handle.synchronize()
                try handle.close()
            } catch {
                try? handle.close()
                throw error
            }
            CrashPoint.reach("before-rename:" + name)
            guard rename(temporary, path) == 0 else {
                throw IOError("\(path): cannot rename the temporary file into place (\(String(cString: strerror(errno))))")
            }
        } catch {
            unlink(temporary)
            if let io = error as? IOError { throw io }
            throw IOError("\(path): write failed (\(reason(error))); the previous file, if any, is unchanged")
        }
        CrashPoint.reach("after-rename:" + name)
        let fd = open(folder, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// `mkdir -p` that says why it failed ("Not a directory" where a path component is a file;
    /// Foundation's own error reads "NSCocoaErrorDomain error 512").
    public static func createDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw IOError("\(path): cannot create the output folder (\(String(cString: strerror(errno))))")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw IOError("\(path): cannot create the output folder (a file of that name exists)")
        }
    }

    /// `.NAME.tmp-PID`: hidden, and never a final name.
    static func temporaryName(for name: String, pid: pid_t) -> String { "." + name + ".tmp-\(pid)" }

    /// Removes the temporary files that writers killed mid-write left in `folder` (those whose
    /// process no longer exists); a live writer's file is left alone. Returns the names removed.
    @discardableResult
    public static func removeStaleTemporaries(in folder: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            guard let dash = name.range(of: ".tmp-", options: .backwards),
                  let pid = pid_t(name[dash.upperBound...]) else { continue }
            if pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH { continue }
            if unlink(folder + "/" + name) == 0 { removed.append(name) }
        }
        return removed
    }

    /// The reason of a Foundation/POSIX error in one line, e.g. "File too large".
    public static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return ns.localizedDescription.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// A file-system error whose description is one line naming the file.
public struct IOError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
