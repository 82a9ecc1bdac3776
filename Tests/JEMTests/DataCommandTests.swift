import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend
@testable import JEMSupport

/// A tiny HTTP/1.0 file server on 127.0.0.1 (an ephemeral port) for the fetch tests: GET of a
/// known path answers 200 with the bytes, anything else 404. It accepts on its own thread (a
/// thread per connection) and stops itself after `lifetime` seconds if `stop()` is not called.
final class LocalHTTPServer: @unchecked Sendable {
    /// Path ("/name") → body. A `truncated` entry announces more bytes than it sends; a
    /// `stalled` one sends half its body, then nothing for 3 s.
    let files: [String: [UInt8]]
    let truncated: Set<String>
    let stalled: Set<String>
    private(set) var port: UInt16 = 0
    private let socketFD: Int32
    private let lock = NSLock()
    private var stopped = false
    private var requestLog: [String] = []
    private let finished = DispatchSemaphore(value: 0)

    init(files: [String: [UInt8]], truncated: Set<String> = [], stalled: Set<String> = [],
         lifetime: TimeInterval = 60) throws {
        self.files = files
        self.truncated = truncated
        self.stalled = stalled
        socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw IOError("socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(socketFD, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socketFD, 16) == 0 else {
            close(socketFD)
            throw IOError("bind/listen on 127.0.0.1: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socketFD, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        let deadline = Date().addingTimeInterval(lifetime)
        Thread.detachNewThread { [self] in
            serve(until: deadline)
            finished.signal()
        }
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Paths requested so far.
    var requests: [String] {
        lock.lock()
        defer { lock.unlock() }
        return requestLog
    }

    func stop() {
        lock.lock()
        let wasStopped = stopped
        stopped = true
        lock.unlock()
        if !wasStopped {
            _ = finished.wait(timeout: .now() + 5)
            close(socketFD)
        }
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    private func serve(until deadline: Date) {
        while !isStopped && Date() < deadline {
            var poller = pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let connection = accept(socketFD, nil, nil)
            guard connection >= 0 else { continue }
            Thread.detachNewThread { [self] in
                handle(connection)
                close(connection)
            }
        }
    }

    private func handle(_ connection: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.containsHeaderEnd, request.count < 65536 {
            let n = recv(connection, &buffer, buffer.count, 0)
            if n <= 0 { return }
            request += buffer[0..<n]
        }
        let line = String(decoding: request.prefix { $0 != 0x0D && $0 != 0x0A }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let path = parts.count >= 2 ? String(parts[1]) : ""
        lock.lock()
        requestLog.append(path)
        lock.unlock()
        if parts.first == "GET", let body = files[path] {
            let announced = truncated.contains(path) ? body.count * 10 + 100 : body.count
            send(connection, Array("HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(announced)\r\nConnection: close\r\n\r\n".utf8))
            if stalled.contains(path) {
                send(connection, Array(body.prefix(body.count / 2)))
                for _ in 0..<30 where !isStopped { usleep(100_000) }
            } else {
                send(connection, body)
            }
        } else {
            let body = Array("not found\n".utf8)
            send(connection, Array("HTTP/1.0 404 Not Found\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body)
        }
    }

    private func send(_ connection: Int32, _ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
    }
}

private extension Array where Element == UInt8 {
    var containsHeaderEnd: Bool {
        count >= 4 && (0...(count - 4)).contains { self[$0] == 13 && self[$0 + 1] == 10 && self[$0 + 2] == 13 && self[$0 + 3] == 10 }
    }
}

/// MD5, `Fetch` against a local HTTP server, and the `fetch` and `data inspect` commands run as
/// the user runs them.
final class DataCommandTests: XCTestCase {
    typealias F = DataFixtures
    var dir = ""

    override func setUp() {
        super.setUp()
        dir = F.makeTempDir("jem-fetch")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
        super.tearDown()
    }

    // MARK: Fixtures

    static func cifar10Archive() -> [UInt8] { F.gzip(F.tar(folder: "cifar-10-batches-bin", members: F.cifar10Members())) }

    static func mnistFiles() -> [String: [UInt8]] {
        ["train-images-idx3-ubyte.gz": F.gzip(F.idxImages(n: 6)),
         "train-labels-idx1-ubyte.gz": F.gzip(F.idxLabels([0, 1, 2, 3, 4, 5])),
         "t10k-images-idx3-ubyte.gz": F.gzip(F.idxImages(n: 4, offset: 100)),
         "t10k-labels-idx1-ubyte.gz": F.gzip(F.idxLabels([5, 4, 3, 2]))]
    }

    static func svhnFiles() -> [String: [UInt8]] {
        ["train_32x32.mat": F.svhnMat(n: 3, labels: [1, 10, 5], compressed: true, yAsUInt8: false),
         "test_32x32.mat": F.svhnMat(n: 2, labels: [2, 3], compressed: false, yAsUInt8: false)]
    }

    func serve(_ files: [String: [UInt8]], truncated: Set<String> = [], stalled: Set<String> = []) throws
        -> LocalHTTPServer {
        var byPath: [String: [UInt8]] = [:]
        for (name, bytes) in files { byPath["/" + name] = bytes }
        let server = try LocalHTTPServer(files: byPath, truncated: Set(truncated.map { "/" + $0 }),
                                         stalled: Set(stalled.map { "/" + $0 }))
        addTeardownBlock { server.stop() }
        return server
    }

    /// Everything in a folder, hidden entries included (temporary files must not linger).
    func entries(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    func options(_ server: LocalHTTPServer, md5: [String: [UInt8]], progress: (@Sendable (Fetch.Progress) -> Void)? = nil)
        -> Fetch.Options {
        Fetch.Options(urlBase: server.baseURL, md5Overrides: md5.mapValues { MD5.hex($0) }, idleTimeout: 10,
                      fileTimeout: 30, progress: progress)
    }

    // MARK: MD5

    func testMD5MatchesRFC1321TestSuite() throws {
        let suite: [(String, String)] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            ("12345678901234567890123456789012345678901234567890123456789012345678901234567890",
             "57edf4a22be3c955ac49da2e2107b67a"),
        ]
        for (text, digest) in suite { XCTAssertEqual(MD5.hex(Array(text.utf8)), digest, "MD5(\"\(text)\")") }
        XCTAssertEqual(MD5.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)), "7707d6ae4e027c70eea2a935c2296f21")

        // Streaming in pieces of any size gives the one-shot digest, around every padding edge.
        for length in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
            let whole = MD5.hex(bytes)
            for piece in [1, 3, 63, 64, 65] {
                var md5 = MD5()
                var k = 0
                while k < length { md5.update(Array(bytes[k..<min(length, k + piece)])); k += piece }
                XCTAssertEqual(md5.finalizeHex(), whole, "length \(length) in pieces of \(piece)")
            }
        }
        let path = F.write(Array("message digest".utf8), dir + "/m.txt")
        XCTAssertEqual(try MD5.hex(file: path), "f96b697d7cb7938d525a2f31aaf161d0")
    }

    func testPublishedChecksumsAreWellFormed() {
        XCTAssertEqual(Fetch.datasetNames, ["cifar10", "cifar100", "mnist", "fashion-mnist", "svhn"])
        for source in Fetch.sources {
            for file in source.files {
                XCTAssertEqual(file.md5.count, 32, file.name)
                XCTAssertTrue(file.md5.allSatisfy { "0123456789abcdef".contains($0) }, file.name)
            }
        }
        // The official binary-version archives (the CIFAR page lists these MD5s).
        XCTAssertEqual(Fetch.source(named: "cifar10")?.files.first?.md5, "c32a1d4ab5d03f1284b67883e8d87530")
        XCTAssertEqual(Fetch.source(named: "cifar100")?.files.first?.md5, "03b5dce01913d631647c71ecec9e9cb8")
    }

    // MARK: Fetch (library)

    func testFetchCIFAR10UnpacksAndSkipsWhenPresent() throws {
        let archive = Self.cifar10Archive()
        let server = try serve(["cifar-10-binary.tar.gz": archive])
        let source = Fetch.source(named: "cifar10")!
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var last: Fetch.Progress?
        }
        let seen = Seen()
        let report = try Fetch.fetch(source, into: dir, options: options(server, md5: ["cifar-10-binary.tar.gz": archive]) { p in
            seen.lock.lock(); seen.last = p; seen.lock.unlock()
        })
        XCTAssertEqual(report.summary, "CIFAR-10: 10 train, 3 test, 3×32×32, 10 classes")
        XCTAssertEqual(report.downloaded.map(\.bytes), [Int64(archive.count)])
        XCTAssertEqual(entries(dir), ["cifar-10-batches-bin"], "archive deleted, no temporary files")
        XCTAssertEqual(try DatasetLoader.load(dir).summary, report.summary, "--data DIR loads directly")
        XCTAssertEqual(seen.last?.finished, true)
        XCTAssertEqual(seen.last?.received, Int64(archive.count))
        XCTAssertEqual(seen.last?.expected, Int64(archive.count))
        XCTAssertEqual(server.requests, ["/cifar-10-binary.tar.gz"])

        // A second fetch finds the unpacked folder and downloads nothing.
        var notes: [String] = []
        let again = try Fetch.fetch(source, into: dir, options: options(server, md5: [:])) { notes.append($0) }
        XCTAssertEqual(again.downloaded.count, 0)
        XCTAssertEqual(server.requests.count, 1)
        XCTAssertTrue(notes.joined().contains("already unpacked"), "\(notes)")

        // --keep-archive keeps the verified .tar.gz next to the folder.
        let other = dir + "/keep"
        var keep = options(server, md5: ["cifar-10-binary.tar.gz": archive])
        keep.keepArchive = true
        _ = try Fetch.fetch(source, into: other, options: keep)
        XCTAssertEqual(entries(other), ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"])
    }

    func testFetchMNISTAndSVHNLayouts() throws {
        let mnist = Self.mnistFiles(), svhn = Self.svhnFiles()
        let server = try serve(mnist.merging(svhn) { a, _ in a })
        let m = try Fetch.fetch(Fetch.source(named: "mnist")!, into: dir + "/mnist", options: options(server, md5: mnist))
        XCTAssertEqual(m.summary, "IDX: 6 train, 4 test, 1×8×8, 6 classes")
        XCTAssertEqual(entries(dir + "/mnist"), mnist.keys.sorted())
        // Fashion-MNIST has the same file names; its checksums differ (overridden here too).
        let f = try Fetch.fetch(Fetch.source(named: "fashion-mnist")!, into: dir + "/fashion", options: options(server, md5: mnist))
        XCTAssertEqual(f.summary, m.summary)
        let s = try Fetch.fetch(Fetch.source(named: "svhn")!, into: dir + "/svhn", options: options(server, md5: svhn))
        XCTAssertEqual(s.summary, "SVHN: 3 train, 2 test, 3×32×32, 10 classes")
        XCTAssertEqual(entries(dir + "/svhn"), ["test_32x32.mat", "train_32x32.mat"])

        // Present files with the right checksum are not downloaded again; a damaged one is.
        let before = server.requests.count
        F.write([1, 2, 3], dir + "/svhn/test_32x32.mat")
        let again = try Fetch.fetch(Fetch.source(named: "svhn")!, into: dir + "/svhn", options: options(server, md5: svhn))
        XCTAssertEqual(again.alreadyPresent, ["train_32x32.mat"])
        XCTAssertEqual(again.downloaded.map(\.name), ["test_32x32.mat"])
        XCTAssertEqual(server.requests.count, before + 1)
        XCTAssertEqual(try DataFiles.read(dir + "/svhn/test_32x32.mat"), svhn["test_32x32.mat"])
    }

    func assertFetchError(_ body: @autoclosure () throws -> Fetch.Report, kind: FetchError.Kind, contains: [String],
                          file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected a FetchError", file: file, line: line)
        } catch let error as FetchError {
            XCTAssertEqual(error.kind, kind, error.description, file: file, line: line)
            XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
            for text in contains {
                XCTAssertTrue(error.description.contains(text), "'\(text)' missing from: \(error)", file: file, line: line)
            }
        } catch {
            XCTFail("expected a FetchError, got \(error)", file: file, line: line)
        }
    }

    func testChecksumMismatchHTTPErrorsAndTruncationLeaveNothing() throws {
        let archive = Self.cifar10Archive()
        let server = try serve(["cifar-10-binary.tar.gz": archive, "train_32x32.mat": [9, 9, 9],
                                "train-images-idx3-ubyte.gz": [UInt8](repeating: 7, count: 1000)],
                               truncated: ["train_32x32.mat"], stalled: ["train-images-idx3-ubyte.gz"])
        // The fixture is not the official archive: the published MD5 does not match.
        assertFetchError(try Fetch.fetch(Fetch.source(named: "cifar10")!, into: dir, options: options(server, md5: [:])),
                         kind: .checksum, contains: ["cifar-10-binary.tar.gz", "MD5 mismatch", MD5.hex(archive),
                                                     "c32a1d4ab5d03f1284b67883e8d87530"])
        XCTAssertEqual(entries(dir), [], "nothing under the final name, no temporary file")

        // 404: the server has no CIFAR-100.
        assertFetchError(try Fetch.fetch(Fetch.source(named: "cifar100")!, into: dir, options: options(server, md5: [:])),
                         kind: .http(404), contains: ["HTTP 404", server.baseURL + "/cifar-100-binary.tar.gz"])
        XCTAssertEqual(entries(dir), [])

        // The server goes quiet mid-transfer: the idle timeout ends the download.
        var impatient = options(server, md5: [:])
        impatient.idleTimeout = 1
        let start = Date()
        assertFetchError(try Fetch.fetch(Fetch.source(named: "mnist")!, into: dir, options: impatient),
                         kind: .network, contains: ["train-images-idx3-ubyte.gz"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.9, "the idle timeout, not the server, ended it")
        print("idle timeout of 1 s ended the stalled download after \(Date().timeIntervalSince(start)) s")
        XCTAssertEqual(entries(dir), [])

        // The connection closes before Content-Length bytes arrived.
        assertFetchError(try Fetch.fetch(Fetch.source(named: "svhn")!, into: dir, options: options(server, md5: [:])),
                         kind: .network, contains: ["train_32x32.mat"])
        XCTAssertEqual(entries(dir), [])

        // Nobody listening.
        let closedPort = server.port
        server.stop()
        var refused = Fetch.Options(urlBase: "http://127.0.0.1:\(closedPort)", idleTimeout: 5, fileTimeout: 10)
        refused.md5Overrides = [:]
        assertFetchError(try Fetch.fetch(Fetch.source(named: "cifar10")!, into: dir, options: refused),
                         kind: .network, contains: ["127.0.0.1:\(closedPort)"])
        XCTAssertEqual(entries(dir), [])
    }

    func testProgressLines() {
        let p = Fetch.Progress(file: "x.tar.gz", received: 50_000_000, expected: 200_000_000, elapsed: 5, finished: false)
        XCTAssertEqual(p.bytesPerSecond, 10_000_000)
        XCTAssertEqual(p.secondsLeft, 15)
        // Downloads use the one progress bar of the project (IO/Progress.swift).
        func line(_ p: Fetch.Progress, bar: Int?) -> String {
            ProgressReporter.line(label: p.file, completed: Int(p.received), total: p.expected.map(Int.init),
                                  rate: p.bytesPerSecond, elapsed: p.elapsed, finished: p.finished, unit: .bytes,
                                  barWidth: bar)
        }
        XCTAssertEqual(line(p, bar: nil), "x.tar.gz 50.0 MB / 200.0 MB 10.0 MB/s, ETA 0:15")
        XCTAssertEqual(line(p, bar: 8), "x.tar.gz ██······ 50.0 MB / 200.0 MB 10.0 MB/s, ETA 0:15")
        let unknown = Fetch.Progress(file: "y", received: 1500, expected: nil, elapsed: 1, finished: true)
        XCTAssertEqual(line(unknown, bar: nil), "y 1.5 kB 1.5 kB/s, done in 0:01")
        XCTAssertEqual(ProgressReporter.line(label: "train", completed: 30, total: 40, rate: 2, elapsed: 15, finished: false,
                                             unit: .iterations, barWidth: nil, detail: "loss 1.0"),
                       "train 30/40 2.00 it/s, ETA 0:05 loss 1.0")
    }

    // MARK: The commands, run as the user runs them

    func jemGPU(_ arguments: [String], in folder: String? = nil) throws -> CommandRun {
        try requireJemGPUBinary()
        return try runJemGPU(arguments, in: folder)
    }

    func testFetchCommand() throws {
        let archive = Self.cifar10Archive()
        let server = try serve(["cifar-10-binary.tar.gz": archive])
        // Published checksum: mismatch, one-line error, exit 1, nothing left.
        let bad = try jemGPU(["fetch", "cifar10", dir + "/a", "--url-base", server.baseURL])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderrLines.last?.contains("MD5 mismatch") == true, bad.stderr)
        XCTAssertTrue(bad.stderrLines.last?.contains(dir + "/a/cifar-10-binary.tar.gz") == true, bad.stderr)
        XCTAssertEqual(entries(dir + "/a"), [])
        // With the fixture's checksum: the folder loads, and data inspect reads it.
        let good = try jemGPU(["fetch", "cifar10", dir + "/b", "--url-base", server.baseURL + "/", "--md5", MD5.hex(archive)])
        XCTAssertEqual(good.status, 0, good.stderr)
        XCTAssertTrue(good.stdout.hasPrefix("CIFAR-10: 10 train, 3 test, 3×32×32, 10 classes\n"), good.stdout)
        // The project's progress bar (plain lines when stderr is not a terminal), ending with the total time.
        XCTAssertTrue(good.stderr.contains("cifar-10-binary.tar.gz ") && good.stderr.contains("B/s, done in"),
                      "progress lines: \(good.stderr)")
        XCTAssertEqual(entries(dir + "/b"), ["cifar-10-batches-bin"])
        // 404 (MNIST is not served).
        let missing = try jemGPU(["fetch", "mnist", dir + "/c", "--url-base", server.baseURL])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderrLines.last?.contains("HTTP 404") == true, missing.stderr)
        XCTAssertEqual(entries(dir + "/c"), [])
        // Flag errors name the flag.
        for (arguments, flag) in [(["fetch", "cifar10", dir, "--url-base", "ftp://x"], "--url-base"),
                                  (["fetch", "mnist", dir, "--md5", MD5.hex(archive)], "--md5"),
                                  (["fetch", "cifar10", dir, "--md5", "xyz"], "--md5"),
                                  (["fetch", "imagenet", dir], "imagenet")] {
            let r = try jemGPU(arguments)
            XCTAssertNotEqual(r.status, 0, "\(arguments)")
            XCTAssertTrue(r.stderr.contains(flag), "\(arguments): \(r.stderr)")
        }
    }

    /// A fixture of every format the loader reads, each inspected by the binary.
    func testDataInspectEveryFormat() throws {
        var paths: [String] = ["builtin"]
        paths.append(F.idxFolder(dir + "/idx", gz: false))
        paths.append(F.idxFolder(dir + "/idxgz", gz: true))
        paths.append(F.write(F.gzip(F.idxImages(n: 5)), dir + "/single/t10k-images-idx3-ubyte.gz"))
        let c10 = dir + "/c10/cifar-10-batches-bin"
        for (name, data) in F.cifar10Members() { F.write(data, c10 + "/" + name) }
        paths.append(c10)
        paths.append(F.write(Self.cifar10Archive(), dir + "/cifar-10-binary.tar.gz"))
        paths.append(F.write(F.cifarBatch(labels: [[3], [4]], offset: 0), dir + "/data_batch_1.bin"))
        let c100 = dir + "/c100/cifar-100-binary"
        for (name, data) in F.cifar100Members() { F.write(data, c100 + "/" + name) }
        paths.append(dir + "/c100")
        for (name, data) in Self.svhnFiles() { F.write(data, dir + "/svhn/" + name) }
        paths.append(dir + "/svhn")
        paths.append(dir + "/svhn/train_32x32.mat")
        paths.append(F.write(F.zip(F.npzMembers(), deflated: true), dir + "/d.npz"))
        paths.append(F.write(F.npyFloat32((0..<(4 * 9 * 9)).map { Float($0 % 7) / 3 - 1 }, shape: [4, 1, 9, 9]),
                             dir + "/x.npy"))
        let pngs = dir + "/folder"
        F.write(PNG.encode(pixels: F.pixelsNHWC(n: 1, c: 3, h: 8, w: 10), width: 10, height: 8, channels: 3), pngs + "/cat/0.png")
        F.write(PNG.encode(pixels: F.pixelsNHWC(n: 1, c: 3, h: 8, w: 10, offset: 1), width: 10, height: 8, channels: 3),
                pngs + "/dog/0.png")
        paths.append(pngs)

        let work = dir + "/work"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        for (k, path) in paths.enumerated() {
            let options = LoadOptions(builtinTrainCount: 100, builtinTestCount: 20)
            let expected = try DatasetLoader.load(path, options: options)
            let out = "grid\(k).png"
            let r = try jemGPU(["data", "inspect", "--data", path, "--out", out, "--count", "6", "--builtin-train", "100",
                                "--builtin-test", "20"], in: work)
            XCTAssertEqual(r.status, 0, "\(path): \(r.stderr)")
            let lines = r.stdout.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.first, expected.summary, path)
            XCTAssertTrue(lines.contains { $0.hasPrefix("train: \(expected.train.count) images, ") }, "\(path): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains(expected.isLabelled ? "class" : "unlabelled"), "\(path): \(r.stdout)")
            XCTAssertTrue(lines.last?.hasPrefix("grid: \(out), the first \(min(6, expected.train.count)) train image") == true,
                          "\(path): \(r.stdout)")
            let png = try PNG.read(work + "/" + out)
            let n = min(6, expected.train.count), columns = Int(Double(n).squareRoot().rounded(.up))
            let rows = (n + columns - 1) / columns
            XCTAssertEqual(png.width, columns * (expected.train.width + 2) + 2, path)
            XCTAssertEqual(png.height, rows * (expected.train.height + 2) + 2, path)
            XCTAssertEqual(png.channels, expected.train.channels == 3 || expected.train.channels >= 4 ? 3 : 1, path)
        }

        // The test split, and a 4-channel NumPy array shown as RGB.
        let test = try jemGPU(["data", "inspect", "--data", c10, "--split", "test", "--out", "t.png"], in: work)
        XCTAssertEqual(test.status, 0, test.stderr)
        XCTAssertTrue(test.stdout.contains("grid: t.png, the first 3 test images"), test.stdout)
        let four = F.write(F.npyUInt8(F.pixelsNCHW(n: 2, c: 4, h: 8, w: 8), shape: [2, 4, 8, 8]), dir + "/four.npy")
        let rgba = try jemGPU(["data", "inspect", "--data", four, "--layout", "nchw", "--out", "four.png"], in: work)
        XCTAssertEqual(rgba.status, 0, rgba.stderr)
        XCTAssertTrue(rgba.stdout.contains("channels 0-2 of 4 shown as RGB"), rgba.stdout)
        XCTAssertEqual(try PNG.read(work + "/four.png").channels, 3)
    }

    func testDataInspectErrors() throws {
        let work = dir
        let bad = F.write([0, 0, 8, 3, 0, 0], dir + "/bad-images-idx3-ubyte")
        let cases: [([String], String)] = [
            (["--data", dir + "/missing"], dir + "/missing"),
            (["--data", bad], bad),
            (["--data", "builtin", "--split", "test", "--builtin-test", "0"], "--split"),
            (["--count", "0"], "--count"),
            (["--split", "valid"], "--split"),
        ]
        for (arguments, named) in cases {
            let r = try jemGPU(["data", "inspect", "--out", "never.png"] + arguments, in: work)
            XCTAssertNotEqual(r.status, 0, "\(arguments)")
            XCTAssertTrue(r.stderr.contains(named), "\(arguments): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Fatal error"), "\(arguments)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: work + "/never.png"), "\(arguments) wrote a grid")
        }
        let r = try jemGPU(["data", "inspect", "--data", bad], in: work)
        XCTAssertEqual(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, r.stderr)
    }
}
