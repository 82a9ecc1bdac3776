import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import JEMSupport

/// Downloads the official archives of the datasets `jem-gpu` reads, checks their published MD5
/// checksums, and leaves a folder that `--data DIR` loads directly:
///
/// - `cifar10`: `cifar-10-binary.tar.gz`, unpacked to `DIR/cifar-10-batches-bin/`
/// - `cifar100`: `cifar-100-binary.tar.gz`, unpacked to `DIR/cifar-100-binary/`
/// - `mnist`, `fashion-mnist`: the four `*-ubyte.gz` files in `DIR/` (read gzipped)
/// - `svhn`: `train_32x32.mat` and `test_32x32.mat` in `DIR/`
///
/// Every file is streamed to a temporary file in `DIR` (hashed while it arrives), checked, then
/// renamed into place: a failed or interrupted download never leaves a file under the final name.
/// Files already present with the right checksum are not downloaded again.
public enum Fetch {
    /// One file of a dataset: its name (on the server and on disk) and published MD5.
    public struct RemoteFile: Sendable, Equatable {
        public let name: String
        public let md5: String

        public init(name: String, md5: String) {
            self.name = name
            self.md5 = md5
        }
    }

    /// A dataset as published: where its files live and what to do with them once downloaded.
    public struct Source: Sendable, Equatable {
        /// The name `jem-gpu fetch` takes (`cifar10`, ...).
        public let name: String
        public let title: String
        /// Files are fetched from `baseURL + "/" + file.name`.
        public let baseURL: String
        public let files: [RemoteFile]
        /// For an archive (the CIFAR tarballs): the folder inside it that is unpacked into DIR.
        public let unpackFolder: String?
    }

    /// The datasets `jem-gpu fetch` knows, with the URLs and MD5 checksums their publishers
    /// give (CIFAR: https://www.cs.toronto.edu/~kriz/cifar.html; MNIST, Fashion-MNIST and SVHN:
    /// the mirrors and checksums of torchvision's `datasets/mnist.py` and `datasets/svhn.py`).
    public static let sources: [Source] = [
        Source(name: "cifar10", title: "CIFAR-10 (binary version)", baseURL: "https://www.cs.toronto.edu/~kriz",
               files: [RemoteFile(name: "cifar-10-binary.tar.gz", md5: "c32a1d4ab5d03f1284b67883e8d87530")],
               unpackFolder: "cifar-10-batches-bin"),
        Source(name: "cifar100", title: "CIFAR-100 (binary version)", baseURL: "https://www.cs.toronto.edu/~kriz",
               files: [RemoteFile(name: "cifar-100-binary.tar.gz", md5: "03b5dce01913d631647c71ecec9e9cb8")],
               unpackFolder: "cifar-100-binary"),
        Source(name: "mnist", title: "MNIST", baseURL: "https://ossci-datasets.s3.amazonaws.com/mnist",
               files: [RemoteFile(name: "train-images-idx3-ubyte.gz", md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                       RemoteFile(name: "train-labels-idx1-ubyte.gz", md5: "d53e105ee54ea40749a09fcbcd1e9432"),
                       RemoteFile(name: "t10k-images-idx3-ubyte.gz", md5: "9fb629c4189551a2d022fa330f9573f3"),
                       RemoteFile(name: "t10k-labels-idx1-ubyte.gz", md5: "ec29112dd5afa0611ce80d1b7f02629c")],
               unpackFolder: nil),
        Source(name: "fashion-mnist", title: "Fashion-MNIST",
               baseURL: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
               files: [RemoteFile(name: "train-images-idx3-ubyte.gz", md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                       RemoteFile(name: "train-labels-idx1-ubyte.gz", md5: "25c81989df183df01b3e8a0aad5dffbe"),
                       RemoteFile(name: "t10k-images-idx3-ubyte.gz", md5: "bef4ecab320f06d8554ea6380940ec79"),
                       RemoteFile(name: "t10k-labels-idx1-ubyte.gz", md5: "bb300cfdad3c16e7a12a480ee83cd310")],
               unpackFolder: nil),
        Source(name: "svhn", title: "SVHN (cropped digits)", baseURL: "http://ufldl.stanford.edu/housenumbers",
               files: [RemoteFile(name: "train_32x32.mat", md5: "e26dedcc434d2e4c54c9b2d4a06d8373"),
                       RemoteFile(name: "test_32x32.mat", md5: "eb5a983be6a315427106f1b164d9cef3")],
               unpackFolder: nil),
    ]

    public static var datasetNames: [String] { sources.map(\.name) }

    public static func source(named name: String) -> Source? { sources.first { $0.name == name } }

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

        public init(urlBase: String? = nil, md5Overrides: [String: String] = [:], keepArchive: Bool = false,
                    idleTimeout: TimeInterval = 60, fileTimeout: TimeInterval = 4 * 3600,
                    progress: (@Sendable (Progress) -> Void)? = nil) {
            self.urlBase = urlBase
            self.md5Overrides = md5Overrides
            self.keepArchive = keepArchive
            self.idleTimeout = idleTimeout
            self.fileTimeout = fileTimeout
            self.progress = progress
        }
    }

    /// Where a download stands.
    public struct Progress: Sendable {
        public let file: String
        public let received: Int64
        /// From the server's Content-Length; nil when it sent none.
        public let expected: Int64?
        public let elapsed: TimeInterval
        public let finished: Bool

        public init(file: String, received: Int64, expected: Int64?, elapsed: TimeInterval, finished: Bool) {
            self.file = file
            self.received = received
            self.expected = expected
            self.elapsed = elapsed
            self.finished = finished
        }

        public var bytesPerSecond: Double { elapsed > 0 ? Double(received) / elapsed : 0 }

        /// Seconds left at the average rate so far; nil when unknown.
        public var secondsLeft: Double? {
            guard let expected, bytesPerSecond > 0 else { return nil }
            return max(0, Double(expected - received) / bytesPerSecond)
        }

        public var fraction: Double? {
            guard let expected, expected > 0 else { return nil }
            return min(1, Double(received) / Double(expected))
        }
    }

    /// What `fetch` did.
    public struct Report: Sendable {
        /// Files downloaded and verified (name, bytes).
        public var downloaded: [(name: String, bytes: Int64)] = []
        /// Files that were already present with the right checksum.
        public var alreadyPresent: [String] = []
        /// The folder `--data` should be given (DIR itself).
        public var dataPath: String = ""
        /// The loader's one-line summary of the result.
        public var summary: String = ""
    }

    // MARK: Fetching a dataset

    /// Downloads `source` into `directory` (created if missing), verifies every file, unpacks
    /// the CIFAR archives, and loads the result once to check it. `log` receives one-line notes
    /// (already present, unpacking, ...).
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

    // MARK: Unpacking

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

    // MARK: Downloading one file

    /// Downloads `url` to `path` and returns its size. The body streams into a hidden temporary
    /// file next to `path` as it arrives; once complete, the file is flushed, hashed, and renamed
    /// to `path` only when its MD5 equals `md5` (lowercase hex; nil: no check). On any failure
    /// the temporary file is deleted and nothing appears under `path`.
    ///
    /// (A data task whose delegate only appends to the file: URLSession on Linux queues received
    /// chunks for the delegate without back-pressure, so the delegate must keep up with the
    /// network; a write to the page cache does. Its download tasks would stage the file in
    /// /tmp instead, and leave it there when a transfer fails.)
    @discardableResult
    public static func download(_ url: URL, to path: String, md5: String?, options: Options = .init()) throws -> Int64 {
        let name = DataFiles.basename(path)
        let parent = (path as NSString).deletingLastPathComponent
        let folder = parent.isEmpty ? "." : parent
        let temporary = DataFiles.join(folder, ".\(name).part-\(getpid())")
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
              let handle = FileHandle(forWritingAtPath: temporary) else {
            throw FetchError(.io, "\(path): cannot create a file in \(folder) (\(String(cString: strerror(errno))))")
        }
        let receiver = Receiver(file: name, url: url, handle: handle, progress: options.progress)
        var succeeded = false
        defer {
            receiver.closeFile()
            if !succeeded { unlink(temporary) }
        }

        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = options.idleTimeout
        configuration.timeoutIntervalForResource = options.fileTimeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: configuration, delegate: receiver, delegateQueue: queue)
        var request = URLRequest(url: url)
        // The archives are already compressed; a transparently decoded body would not match the MD5.
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        let task = session.dataTask(with: request)
        task.resume()
        let deadline = DispatchTime.now() + options.fileTimeout + options.idleTimeout + 5
        if receiver.done.wait(timeout: deadline) == .timedOut {
            task.cancel()
            session.invalidateAndCancel()
            throw FetchError(.network, "\(url.absoluteString): download did not finish within \(Int(options.fileTimeout)) s")
        }
        session.finishTasksAndInvalidate()

        let outcome = receiver.outcome()
        if let failure = outcome.failure { throw failure }
        if let expected = outcome.expected, outcome.received != expected {
            throw FetchError(.network, "\(url.absoluteString): the connection closed after \(outcome.received) of \(expected) bytes")
        }
        do {
            try handle.synchronize()
        } catch {
            throw FetchError(.io, "\(temporary): cannot flush to disk (\((error as NSError).localizedDescription))")
        }
        let actual = try Self.md5(of: temporary)
        if let md5, actual != md5.lowercased() {
            throw FetchError(.checksum, "\(path): MD5 mismatch: downloaded \(outcome.received) bytes with MD5 \(actual), "
                             + "expected \(md5.lowercased()); the download was discarded")
        }
        guard rename(temporary, path) == 0 else {
            throw FetchError(.io, "\(path): cannot rename the download into place (\(String(cString: strerror(errno))))")
        }
        succeeded = true
        let fd = open(folder, O_RDONLY)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
        return outcome.received
    }

    /// The session delegate: checks the HTTP status, appends the body to the file, reports
    /// progress, and remembers the first error.
    final class Receiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        let file: String
        let url: URL
        let progress: (@Sendable (Progress) -> Void)?
        let done = DispatchSemaphore(value: 0)
        let start = Date()

        private let lock = NSLock()
        private var handle: FileHandle?
        private var received: Int64 = 0
        private var expected: Int64?
        private var failure: FetchError?
        private var lastReport = Date.distantPast

        init(file: String, url: URL, handle: FileHandle, progress: (@Sendable (Progress) -> Void)?) {
            self.file = file
            self.url = url
            self.handle = handle
            self.progress = progress
        }

        func outcome() -> (received: Int64, expected: Int64?, failure: FetchError?) {
            lock.lock()
            defer { lock.unlock() }
            return (received, expected, failure)
        }

        /// Closes the file; later chunks (of a cancelled task) are dropped.
        func closeFile() {
            lock.lock()
            try? handle?.close()
            handle = nil
            lock.unlock()
        }

        private func fail(_ error: FetchError) {
            lock.lock()
            if failure == nil { failure = error }
            lock.unlock()
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                        completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
            if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
                let reason = HTTPURLResponse.localizedString(forStatusCode: http.statusCode)
                fail(FetchError(.http(http.statusCode),
                                "\(url.absoluteString): the server answered HTTP \(http.statusCode) (\(reason)), expected the file \(file)"))
                completionHandler(.cancel)
                return
            }
            lock.lock()
            expected = response.expectedContentLength >= 0 ? response.expectedContentLength : nil
            lock.unlock()
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            lock.lock()
            guard failure == nil, let handle else {
                lock.unlock()
                return
            }
            do {
                try handle.write(contentsOf: data)
            } catch {
                failure = FetchError(.io, "\(file): cannot write the download (\((error as NSError).localizedDescription))")
                lock.unlock()
                dataTask.cancel()
                return
            }
            received += Int64(data.count)
            let now = Date()
            let report = now.timeIntervalSince(lastReport) >= 0.1
            if report { lastReport = now }
            let snapshot = Progress(file: file, received: received, expected: expected,
                                    elapsed: now.timeIntervalSince(start), finished: false)
            lock.unlock()
            if report { progress?(snapshot) }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            if let error {
                let ns = error as NSError
                let what = ns.code == NSURLErrorTimedOut ? "timed out (no data for the idle timeout)"
                    : ns.localizedDescription
                fail(FetchError(.network, "\(url.absoluteString): download failed: \(what)"))
            }
            lock.lock()
            let snapshot = Progress(file: file, received: received, expected: expected,
                                    elapsed: Date().timeIntervalSince(start), finished: true)
            let ok = failure == nil
            lock.unlock()
            if ok { progress?(snapshot) }
            done.signal()
        }
    }
}

/// A download that failed, in one line naming the URL or file and what went wrong.
public struct FetchError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The server answered with this non-2xx status.
        case http(Int)
        /// The file arrived but its MD5 is not the expected one.
        case checksum
        /// Connection, timeout or truncated transfer.
        case network
        /// Writing or renaming on the local disk.
        case io
        /// The downloaded archive or files cannot be unpacked or loaded.
        case archive
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        description = message.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" })
            .joined(separator: " ")
    }
}

/// A byte-count progress bar on stderr with rate and ETA; plain log lines (every 10% or every
/// 10 s) when stderr is not a terminal.
public final class DownloadProgressBar: @unchecked Sendable {
    private let lock = NSLock()
    private let isTerminal: Bool
    private var lastLine = Date.distantPast
    private var lastTenth = -1
    private var drawn = false

    public init(isTerminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.isTerminal = isTerminal
    }

    public func update(_ p: Fetch.Progress) {
        lock.lock()
        defer { lock.unlock() }
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + Self.barLine(p) + (p.finished ? "\n" : "")).utf8))
            drawn = !p.finished
            return
        }
        // One line per 10% step (the 100% one is the "done" line), or every 10 s without a size.
        let tenth = p.fraction.map { min(9, Int($0 * 10)) } ?? -1
        let now = Date()
        if p.finished || tenth > lastTenth || (p.fraction == nil && now.timeIntervalSince(lastLine) >= 10) {
            lastTenth = max(lastTenth, tenth)
            lastLine = now
            FileHandle.standardError.write(Data((Self.plainLine(p) + "\n").utf8))
        }
    }

    /// Ends a bar left open by a failed download (terminal only).
    public func finish() {
        lock.lock()
        defer { lock.unlock() }
        if isTerminal && drawn { FileHandle.standardError.write(Data("\n".utf8)) }
        drawn = false
        lastTenth = -1
    }

    /// `train_32x32.mat [██████······]  52.3 MB / 182.0 MB  12.4 MB/s  ETA 0:10`
    public static func barLine(_ p: Fetch.Progress, width: Int = 24) -> String {
        let filled = p.fraction.map { Int($0 * Double(width)) } ?? 0
        let bar = p.fraction == nil ? String(repeating: "·", count: width)
            : String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        return "\(p.file) [\(bar)] \(sizes(p))  \(bytes(p.bytesPerSecond))/s  " + (p.finished ? "done in \(duration(p.elapsed))" : "ETA \(eta(p))")
    }

    /// `train_32x32.mat: 52.3 MB / 182.0 MB (28%), 12.4 MB/s, ETA 0:10`
    public static func plainLine(_ p: Fetch.Progress) -> String {
        let percent = p.fraction.map { String(format: " (%.0f%%)", $0 * 100) } ?? ""
        return "\(p.file): \(sizes(p))\(percent), \(bytes(p.bytesPerSecond))/s, "
            + (p.finished ? "done in \(duration(p.elapsed))" : "ETA \(eta(p))")
    }

    static func sizes(_ p: Fetch.Progress) -> String {
        bytes(Double(p.received)) + (p.expected.map { " / " + bytes(Double($0)) } ?? "")
    }

    static func eta(_ p: Fetch.Progress) -> String { p.secondsLeft.map(duration) ?? "?" }

    /// Decimal units, as download sizes are usually quoted (170.1 MB).
    public static func bytes(_ n: Double) -> String {
        if n < 1000 { return String(format: "%.0f B", n) }
        if n < 1e6 { return String(format: "%.1f kB", n / 1e3) }
        if n < 1e9 { return String(format: "%.1f MB", n / 1e6) }
        return String(format: "%.2f GB", n / 1e9)
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
            : String(format: "%d:%02d", s / 60, s % 60)
    }
}
