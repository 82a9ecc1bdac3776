import Foundation
import XCTest
@testable import JEMBackend

/// The selftest on a second OpenCL implementation: Mesa's Rusticl on llvmpipe (Debian
/// mesa-opencl-icd, which `make deps` installs), through an ICD vendors folder of the test's own
/// (RUSTICL_ENABLE=llvmpipe makes the device appear). It fails when any op differs from the CPU
/// backend or a kernel does not build there; skipped only where Rusticl is not installed. The
/// other implementations (PoCL is the rest of the suite; Intel's CPU runtime) run in
/// `make test-portability`.
final class PortabilityTests: XCTestCase {
    static let rusticl = "/usr/lib/x86_64-linux-gnu/libRusticlOpenCL.so.1"

    func testRusticlSelfTestPasses() throws {
        guard FileManager.default.fileExists(atPath: Self.rusticl) else {
            throw XCTSkip("Mesa Rusticl is not installed (\(Self.rusticl); `make deps` installs mesa-opencl-icd)")
        }
        let folder = NSTemporaryDirectory() + "jem-rusticl-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/vendors", withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        try (Self.rusticl + "\n").write(toFile: folder + "/vendors/rusticl.icd", atomically: true, encoding: .utf8)
        let environment = ["OCL_ICD_VENDORS": folder + "/vendors", "RUSTICL_ENABLE": "llvmpipe",
                           "JEM_GPU_CACHE_DIR": folder + "/cache"]
        let run = try runJemGPU(["selftest", "--backend", "opencl", "--device", "rusticl:0"],
                                environment: environment)
        let summary = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        print("Rusticl selftest: \(summary)")
        XCTAssertEqual(run.status, 0, "Rusticl selftest failed:\n\(run.stdout)\n\(run.stderr)")
        XCTAssertTrue(run.stdout.contains("(rusticl"), run.stdout)
        XCTAssertTrue(summary.contains(" 0 failed"), summary)
    }
}
