import Foundation
import XCTest

/// SwiftPM lets a target import the C modules of its dependencies' dependencies, so the target
/// graph alone does not stop `JEM` from calling OpenCL or BLAS. This test does: only files of the
/// backend target may import the device and BLAS modules.
final class LayeringTests: XCTestCase {
    func testOnlyTheBackendTargetImportsDeviceAndBLASModules() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let backendOnly = ["COpenCL", "CCLBlast", "CBLAS", "CJEMKernels", "CLKernels"]
        var offenders: [String] = [], scanned = 0
        for folder in ["Sources", "Benchmarks"] {
            let base = root.appendingPathComponent(folder)
            guard let files = FileManager.default.enumerator(atPath: base.path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                scanned += 1
                if file.hasPrefix("JEMBackend/") { continue }
                let text = try String(contentsOf: base.appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let words = line.split(separator: " ")
                    if words.count >= 2, words.contains("import"), let module = words.last,
                       backendOnly.contains(String(module)) {
                        offenders.append("\(folder)/\(file): \(line)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(scanned, 50, "the sources were not found from \(root.path)")
        XCTAssertEqual(offenders, [], "only Sources/JEMBackend may import \(backendOnly)")
    }
}
