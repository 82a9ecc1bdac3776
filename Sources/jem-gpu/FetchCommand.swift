import ArgumentParser
import Foundation
import JEM
import JEMBackend
import JEMSupport

struct FetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Download a dataset's official files, verify their checksums, and lay them out for --data.",
        discussion: """
            Downloads into DIR (created if missing), with a progress bar on stderr (plain lines when stderr is not a terminal), and checks every file against its published MD5. Each file is streamed to a temporary file in DIR and renamed into place only once its checksum matches, so a failed or interrupted download never leaves a file under the final name. Files already present with the right checksum are not downloaded again.

            Afterwards 'jem-gpu train --data DIR' (or 'data inspect --data DIR') reads the folder directly:
              cifar10        cifar-10-binary.tar.gz (170 MB) -> DIR/cifar-10-batches-bin/
              cifar100       cifar-100-binary.tar.gz (169 MB) -> DIR/cifar-100-binary/
              mnist          4 MNIST *-ubyte.gz files (12 MB), kept gzipped in DIR/
              fashion-mnist  4 Fashion-MNIST *-ubyte.gz files (31 MB), kept gzipped in DIR/
              svhn           train_32x32.mat and test_32x32.mat (246 MB) in DIR/

            Sources: CIFAR from www.cs.toronto.edu/~kriz with the MD5s of the CIFAR page; MNIST, Fashion-MNIST and SVHN from the mirrors and with the MD5s that torchvision uses. Fetch MNIST and Fashion-MNIST into different folders: their file names are the same.

            Local copy: when Debian's dataset-fashion-mnist package is installed (apt-get install dataset-fashion-mnist), 'fetch fashion-mnist' copies its files from /usr/share/datasets/fashion-mnist instead of downloading them, with no network. Debian recompressed them, so each file is checked by the MD5 of its decompressed content (recorded in jem-gpu) instead of the published archive MD5. --no-local or --url-base downloads instead.

            --url-base replaces the server (files are fetched from URL/<file name>), e.g. a local mirror; --md5 replaces a published checksum when that mirror serves other bytes on purpose. Exits with status 1 and one line naming the URL or file on an HTTP error, a checksum mismatch, a timeout or a disk error.
            """)

    @Argument(help: ArgumentHelp("Dataset to download.", valueName: "cifar10|cifar100|mnist|fashion-mnist|svhn"))
    var dataset: DatasetName
    @Argument(help: ArgumentHelp("Folder to download into (created if missing).", valueName: "DIR"))
    var directory: String
    @Option(name: .customLong("url-base"), help: ArgumentHelp(
        "Fetch the files from URL/<file name> instead of the official server.", valueName: "URL"))
    var urlBase: String?
    @Option(name: .customLong("md5"), parsing: .singleValue, help: ArgumentHelp(
        "Expected MD5 of a file instead of the published one (repeatable; a bare HEX applies to a one-file dataset).",
        valueName: "FILE=HEX"))
    var md5: [String] = []
    @Flag(name: .customLong("keep-archive"), help: "CIFAR: keep the .tar.gz after unpacking it (deleted by default).")
    var keepArchive = false
    @Option(help: ArgumentHelp("Seconds without any data before a download fails.", valueName: "SECONDS"))
    var timeout: Double = 60
    @Flag(name: .customLong("no-local"), help: "Download even when a system package installs the dataset (fashion-mnist: dataset-fashion-mnist).")
    var noLocal = false

    enum DatasetName: String, ExpressibleByArgument, CaseIterable {
        case cifar10, cifar100, mnist, fashionMNIST = "fashion-mnist", svhn
    }

    func validate() throws {
        if !(timeout > 0) { throw ValidationError("--timeout must be > 0 seconds (got \(timeout))") }
        if directory.isEmpty { throw ValidationError("DIR must name a folder") }
        if let urlBase {
            guard let url = URL(string: urlBase), let scheme = url.scheme?.lowercased(),
                  ["http", "https"].contains(scheme), url.host != nil else {
                throw ValidationError("--url-base must be an http:// or https:// URL (got '\(urlBase)')")
            }
        }
        _ = try md5Overrides()
    }

    /// `--md5` values by file name.
    func md5Overrides() throws -> [String: String] {
        let source = Fetch.source(named: dataset.rawValue)!
        var result: [String: String] = [:]
        for value in md5 {
            let parts = value.split(separator: "=", maxSplits: 1).map(String.init)
            let (name, hex): (String, String)
            if parts.count == 2 {
                (name, hex) = (parts[0], parts[1])
            } else if source.files.count == 1 {
                (name, hex) = (source.files[0].name, value)
            } else {
                throw ValidationError("--md5 '\(value)': \(dataset.rawValue) has \(source.files.count) files, "
                                      + "write FILE=HEX with FILE one of \(source.files.map(\.name).joined(separator: ", "))")
            }
            guard source.files.contains(where: { $0.name == name }) else {
                throw ValidationError("--md5 '\(value)': \(dataset.rawValue) has no file '\(name)' "
                                      + "(its files: \(source.files.map(\.name).joined(separator: ", ")))")
            }
            guard hex.count == 32, hex.allSatisfy(\.isHexDigit) else {
                throw ValidationError("--md5 '\(value)': expected 32 hexadecimal digits after '='")
            }
            result[name] = hex.lowercased()
        }
        return result
    }

    func run() throws {
        let source = Fetch.source(named: dataset.rawValue)!
        let bar = DownloadBar()
        let options = Fetch.Options(urlBase: urlBase, md5Overrides: try md5Overrides(), keepArchive: keepArchive,
                                    idleTimeout: timeout, progress: { bar.update($0) }, useLocalCopy: !noLocal)
        let local = !noLocal && urlBase == nil ? source.localCopy : nil
        let from = local.map { "\($0.folder) if package \($0.package) is installed, else \(source.baseURL)" }
            ?? urlBase ?? source.baseURL
        printError("\(source.title): \(source.files.count) file\(source.files.count == 1 ? "" : "s") from \(from) into \(directory)")
        let report: Fetch.Report
        do {
            report = try Fetch.fetch(source, into: directory, options: options) { line in
                bar.finish()
                printError(line)
            }
        } catch {
            bar.finish()
            throw CommandFailure("\(error)")
        }
        print(report.summary)
        print("ready: jem-gpu train --data \(directory)")
    }
}

/// The project's progress bar (`ProgressReporter`), one per downloaded file.
final class DownloadBar: @unchecked Sendable {
    private let lock = NSLock()
    private var current: (file: String, reporter: ProgressReporter)?

    func update(_ p: Fetch.Progress) {
        lock.lock()
        defer { lock.unlock() }
        if current?.file != p.file {
            current?.reporter.finish()
            current = (p.file, ProgressReporter(bytes: p.expected.map { Int(clamping: $0) }, label: p.file))
        }
        current!.reporter.update(completed: Int(clamping: p.received), elapsed: p.elapsed, finished: p.finished)
        if p.finished { current = nil }
    }

    /// Ends a bar left open by a failed download or a note.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        current?.reporter.finish()
        current = nil
    }
}
