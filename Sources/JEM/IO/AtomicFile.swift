import Foundation

/// Writes files so that a reader (or a process killed mid-write) only ever sees the old complete
/// file or the new complete file: data goes to a temporary file in the same folder, is fsynced,
/// renamed over the final name, and the folder is fsynced so the rename itself is durable.
public enum AtomicFile {
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { handle in try handle.write(contentsOf: data) }
    }

    /// Streams the content through `body` (for files too large to build in memory twice).
    public static func write(to path: String, _ body: (FileHandle) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let temporary = folder + "/." + url.lastPathComponent + ".tmp-\(getpid())"
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
            guard rename(temporary, path) == 0 else {
                throw IOError("\(path): cannot rename the temporary file into place (\(String(cString: strerror(errno))))")
            }
        } catch {
            unlink(temporary)
            if let io = error as? IOError { throw io }
            throw IOError("\(path): write failed (\(error.localizedDescription))")
        }
        let fd = open(folder, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}

/// A file-system error whose description is one line naming the file.
public struct IOError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
