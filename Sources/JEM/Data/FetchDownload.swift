import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
import JEMBackend
import JEMSupport
#endif

extension Fetch {
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
