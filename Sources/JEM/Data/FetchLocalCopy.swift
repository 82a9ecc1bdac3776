import Foundation
import JEMBackend
import JEMSupport

extension Fetch {
    /// True when every file of `source` is in the local copy's folder (the package is installed).
    static func isInstalled(_ local: LocalCopy, _ source: Source) -> Bool {
        source.files.allSatisfy { DataFiles.kind(DataFiles.join(local.folder, $0.name)) == .file }
    }

    /// MD5 of a file's content after gunzipping it (a file that is not gzipped is hashed as it is).
    public static func contentMD5(of path: String) throws -> String {
        do {
            return try contentMD5(try DataFiles.read(path), file: path)
        } catch let error as FetchError {
            throw error
        } catch {
            throw FetchError(.io, "\(error)")
        }
    }

    static func contentMD5(_ raw: [UInt8], file: String) throws -> String {
        guard raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B else { return MD5.hex(raw) }
        do {
            return MD5.hex(try ZlibCodec.inflate(raw, wrapper: .auto, file: file, what: "gzip data", multiMember: true))
        } catch {
            throw FetchError(.archive, "\(error)")
        }
    }

    /// Copies the files of `source` from its local copy into `directory`, each checked by the MD5
    /// of its decompressed content before it is written (to a temporary name, fsynced, renamed).
    /// A file already in `directory` with the right content is left as it is. A local file whose
    /// content does not match is refused with one line naming it and the package.
    static func installLocalCopy(_ local: LocalCopy, of source: Source, into directory: String, report: inout Report,
                                 log: (String) -> Void) throws {
        log("\(source.title): copying from \(local.folder) (Debian package \(local.package)), no download")
        for file in source.files {
            guard let expected = local.contentMD5[file.name]?.lowercased() else {
                throw FetchError(.checksum, "\(file.name): no content checksum for the local copy of \(source.name)")
            }
            let path = DataFiles.join(directory, file.name)
            if DataFiles.kind(path) == .file, (try? contentMD5(of: path)) == expected {
                log("\(path): already present, content MD5 \(expected) matches")
                report.alreadyPresent.append(file.name)
                continue
            }
            let localPath = DataFiles.join(local.folder, file.name)
            let bytes: [UInt8]
            do { bytes = try DataFiles.read(localPath) } catch {
                throw FetchError(.io, "\(error)")
            }
            let actual = try contentMD5(bytes, file: localPath)
            guard actual == expected else {
                throw FetchError(.checksum, "\(localPath): decompressed content has MD5 \(actual), expected \(expected) "
                                 + "(package \(local.package) holds other files; fetch them with --no-local)")
            }
            do { try AtomicFile.write(Data(bytes), to: path) } catch {
                throw FetchError(.io, "\(error)")
            }
            report.copiedFromLocal.append(file.name)
        }
    }
}
