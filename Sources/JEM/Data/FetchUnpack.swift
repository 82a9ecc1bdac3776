import Foundation
import JEMBackend

extension Fetch {
    /// Unpacks the members `folder/<name>` of a (gzipped) tar archive into `destination`,
    /// through a temporary folder next to it that is renamed into place.
    static func unpack(_ archivePath: String, folder: String, to destination: String) throws {
        let archive: TarArchive
        do {
            archive = try TarArchive(path: archivePath)
        } catch {
            throw FetchError(.archive, "\(error)")
        }
        let parent = (destination as NSString).deletingLastPathComponent
        let temporary = DataFiles.join(parent, ".\(DataFiles.basename(destination)).tmp-\(getpid())")
        try? FileManager.default.removeItem(atPath: temporary)
        do {
            try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
            var written = 0
            for member in archive.members {
                let parts = member.name.split(separator: "/", omittingEmptySubsequences: true)
                guard parts.count == 2, parts[0] == folder, parts[1] != "..", parts[1] != "." else { continue }
                try writeSynced(archive.bytes[member.range], to: DataFiles.join(temporary, String(parts[1])))
                written += 1
            }
            guard written > 0 else {
                throw FetchError(.archive, "\(archivePath): the archive holds no files under \(folder)/")
            }
            if DataFiles.kind(destination) != .missing {
                let old = DataFiles.join(parent, ".\(DataFiles.basename(destination)).old-\(getpid())")
                guard rename(destination, old) == 0 else {
                    throw FetchError(.io, "\(destination): cannot move the old folder aside (\(String(cString: strerror(errno))))")
                }
                try? FileManager.default.removeItem(atPath: old)
            }
            guard rename(temporary, destination) == 0 else {
                throw FetchError(.io, "\(destination): cannot rename the unpacked folder into place (\(String(cString: strerror(errno))))")
            }
            let fd = open(parent.isEmpty ? "." : parent, O_RDONLY)
            if fd >= 0 {
                fsync(fd)
                close(fd)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            if let e = error as? FetchError { throw e }
            throw FetchError(.io, "\(temporary): \((error as NSError).localizedDescription)")
        }
    }

    /// Writes `bytes` to a new file and flushes it to disk (the archive may be deleted next).
    static func writeSynced(_ bytes: ArraySlice<UInt8>, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FetchError(.io, "\(path): cannot create (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var done = 0
        let failure: Int32 = bytes.withUnsafeBytes { buf in
            while done < buf.count {
                let n = write(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += n
            }
            return fsync(fd) == 0 ? 0 : errno
        }
        if failure != 0 { throw FetchError(.io, "\(path): cannot write (\(String(cString: strerror(failure))))") }
    }
}
