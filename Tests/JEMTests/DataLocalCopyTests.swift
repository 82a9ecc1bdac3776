import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend
@testable import JEMSupport

/// `jem-gpu fetch` from a system package's copy of a dataset (Debian's dataset-fashion-mnist):
/// no network, each file checked by the MD5 of its decompressed content.
final class DataLocalCopyTests: XCTestCase {
    typealias F = DataFixtures
    var dir = ""

    override func setUp() {
        super.setUp()
        dir = F.makeTempDir("jem-local-copy")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
        super.tearDown()
    }

    /// A fashion-mnist source whose local copy is a fixture folder and whose server cannot answer.
    func source(files: [String: [UInt8]], contentOf content: [String: [UInt8]]? = nil) -> Fetch.Source {
        let package = dir + "/package"
        try? FileManager.default.createDirectory(atPath: package, withIntermediateDirectories: true)
        for (name, bytes) in files { _ = F.write(bytes, package + "/" + name) }
        let base = Fetch.source(named: "fashion-mnist")!
        let md5 = (content ?? files).mapValues { MD5.hex(try! ZlibCodec.inflate($0, wrapper: .auto, file: "", what: "")) }
        return Fetch.Source(name: base.name, title: base.title, baseURL: "http://127.0.0.1:9", files: base.files,
                            unpackFolder: nil,
                            localCopy: Fetch.LocalCopy(package: "test-package", folder: package, contentMD5: md5,
                                                       contentSHA256: [:]))
    }

    func testCopiesFromTheLocalCopyWithoutNetworkAndSkipsWhenPresent() throws {
        let files = DataCommandTests.mnistFiles()
        let source = source(files: files)
        var notes: [String] = []
        let report = try Fetch.fetch(source, into: dir + "/out") { notes.append($0) }
        XCTAssertEqual(report.copiedFromLocal.sorted(), files.keys.sorted())
        XCTAssertEqual(report.downloaded.count, 0)
        XCTAssertEqual(report.summary, "IDX: 6 train, 4 test, 1×8×8, 6 classes")
        XCTAssertTrue(notes.joined().contains("test-package"), "\(notes)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/out").sorted(), files.keys.sorted(),
                       "no temporary file left")
        let again = try Fetch.fetch(source, into: dir + "/out")
        XCTAssertEqual(again.alreadyPresent.sorted(), files.keys.sorted())
        XCTAssertEqual(again.copiedFromLocal, [])
    }

    func testContentMismatchIsOneLineNamingTheFileAndNothingIsWritten() throws {
        var files = DataCommandTests.mnistFiles()
        let expected = files
        files["t10k-labels-idx1-ubyte.gz"] = F.gzip(F.idxLabels([1, 1, 1, 1]))
        let source = source(files: files, contentOf: expected)
        XCTAssertThrowsError(try Fetch.fetch(source, into: dir + "/out")) { error in
            guard let error = error as? FetchError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.kind, .checksum)
            XCTAssertTrue(error.description.contains(dir + "/package/t10k-labels-idx1-ubyte.gz"), error.description)
            XCTAssertFalse(error.description.contains("\n"))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out/t10k-labels-idx1-ubyte.gz"))
    }

    func testNoLocalDownloadsInstead() throws {
        let source = source(files: DataCommandTests.mnistFiles())
        let options = Fetch.Options(idleTimeout: 5, fileTimeout: 10, useLocalCopy: false)
        XCTAssertThrowsError(try Fetch.fetch(source, into: dir + "/out", options: options)) { error in
            XCTAssertEqual((error as? FetchError)?.kind, .network, "\(error)")
        }
    }

    /// The catalogue's content hashes are those of the installed Debian package (skipped without it).
    func testDebianFashionMNISTPackage() throws {
        let local = Fetch.fashionMNISTDebian
        guard FileManager.default.fileExists(atPath: local.folder + "/train-labels-idx1-ubyte.gz") else {
            throw XCTSkip("dataset-fashion-mnist is not installed")
        }
        let source = Fetch.source(named: "fashion-mnist")!
        XCTAssertEqual(source.localCopy, local)
        XCTAssertEqual(Set(local.contentMD5.keys), Set(source.files.map(\.name)))
        XCTAssertEqual(Set(local.contentSHA256.keys), Set(source.files.map(\.name)))
        let report = try Fetch.fetch(source, into: dir + "/fashion")
        XCTAssertEqual(report.copiedFromLocal.count, 4)
        XCTAssertEqual(report.summary, "IDX: 60000 train, 10000 test, 1×28×28, 10 classes")
    }
}
