import Foundation
import JEMSupport

extension Fetch {
    /// How `fetch` downloads.
    public struct Options: Sendable {
        /// Replaces the source's base URL (a mirror, or a local server in tests).
        public var urlBase: String?
        /// Expected MD5 per file name, replacing the published one (for mirrors of other versions).
        public var md5Overrides: [String: String]
        /// Keep the CIFAR .tar.gz next to the unpacked folder (it is deleted by default).
        public var keepArchive: Bool
        /// Seconds without any data before a download fails.
        public var idleTimeout: TimeInterval
        /// Seconds a single file may take in all.
        public var fileTimeout: TimeInterval
        /// Called as bytes arrive (from a background thread, about 10 times a second at most).
        public var progress: (@Sendable (Progress) -> Void)?
        /// Copy the files from the source's `localCopy` (a system package) when it is installed
        /// and no `urlBase` is given, instead of downloading them.
        public var useLocalCopy: Bool

        public init(urlBase: String? = nil, md5Overrides: [String: String] = [:], keepArchive: Bool = false,
                    idleTimeout: TimeInterval = 60, fileTimeout: TimeInterval = 4 * 3600,
                    progress: (@Sendable (Progress) -> Void)? = nil, useLocalCopy: Bool = true) {
            self.useLocalCopy = useLocalCopy
            self.urlBase = urlBase
            self.md5Overrides = md5Overrides
            self.keepArchive = keepArchive
            self.idleTimeout = idleTimeout
            self.fileTimeout = fileTimeout
            self.progress = progress
        }
    }

    /// What `fetch` did.
    public struct Report: Sendable {
        /// Files downloaded and verified (name, bytes).
        public var downloaded: [(name: String, bytes: Int64)] = []
        /// Files that were already present with the right checksum.
        public var alreadyPresent: [String] = []
        /// Files copied from the local copy a system package installed (no network).
        public var copiedFromLocal: [String] = []
        /// The folder `--data` should be given (DIR itself).
        public var dataPath: String = ""
        /// The loader's one-line summary of the result.
        public var summary: String = ""
    }

    // MARK: Fetching a dataset

    /// Downloads `source` into `directory` (created if missing), verifies every file, unpacks
    /// the CIFAR archives, and loads the result once to check it. When the source has a local
    /// copy that is installed (and `options` allow it, with no `urlBase`), its files are copied
    /// instead (`installLocalCopy`). `log` receives one-line notes (already present, unpacking, ...).
    public static func fetch(_ source: Source, into directory: String, options: Options = .init(),
                             log: (String) -> Void = { _ in }) throws -> Report {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FetchError(.io, "\(directory): cannot create the folder (\((error as NSError).localizedDescription))")
        }
        var report = Report()
        report.dataPath = directory
        let base = options.urlBase ?? source.baseURL
        let unpacked = source.unpackFolder.map { DataFiles.join(directory, $0) }

        if let unpacked, DataFiles.kind(unpacked) == .folder, let existing = try? DatasetLoader.load(unpacked) {
            log("\(unpacked): already unpacked (\(existing.summary)); nothing to download")
            report.alreadyPresent = source.files.map(\.name)
            report.summary = existing.summary
            return report
        }
        if options.useLocalCopy, options.urlBase == nil, let local = source.localCopy, isInstalled(local, source) {
            try installLocalCopy(local, of: source, into: directory, report: &report, log: log)
            do {
                report.summary = try DatasetLoader.load(directory).summary
            } catch {
                throw FetchError(.archive, "\(directory): the files copied from \(local.folder) do not load: \(error)")
            }
            return report
        }
        for file in source.files {
            let path = DataFiles.join(directory, file.name)
            let expected = (options.md5Overrides[file.name] ?? file.md5).lowercased()
            if DataFiles.kind(path) == .file {
                let actual = try md5(of: path)
                if actual == expected {
                    log("\(path): already present, MD5 \(actual) matches")
                    report.alreadyPresent.append(file.name)
                    continue
                }
                log("\(path): present but its MD5 \(actual) is not the expected \(expected); downloading again")
            }
            guard let url = URL(string: joinURL(base, file.name)), url.scheme != nil else {
                throw FetchError(.network, "\(joinURL(base, file.name)): not a valid URL (check --url-base)")
            }
            let bytes = try download(url, to: path, md5: expected, options: options)
            report.downloaded.append((file.name, bytes))
        }
        if let folder = source.unpackFolder, let unpacked, let archive = source.files.first {
            let archivePath = DataFiles.join(directory, archive.name)
            log("unpacking \(archive.name) to \(unpacked)")
            try unpack(archivePath, folder: folder, to: unpacked)
            if !options.keepArchive { unlink(archivePath) }
        }
        do {
            report.summary = try DatasetLoader.load(directory).summary
        } catch {
            throw FetchError(.archive, "\(directory): the downloaded files do not load: \(error)")
        }
        return report
    }

    /// `base/name`, with exactly one slash between them.
    static func joinURL(_ base: String, _ name: String) -> String {
        var b = Substring(base)
        while b.hasSuffix("/") { b = b.dropLast() }
        return b + "/" + name
    }

    static func md5(of path: String) throws -> String {
        do {
            return try MD5.hex(file: path)
        } catch let error as IOError {
            throw FetchError(.io, error.description)
        }
    }
}
