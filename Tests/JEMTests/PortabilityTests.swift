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

    /// Intel's runtime as `make test-portability` installs it (skipped before that has run).
    static var intel: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/portability/intel-ocl/lib/libintelocl.so").path
    }

    func testRusticlSelfTestPasses() throws {
        guard FileManager.default.fileExists(atPath: Self.rusticl) else {
            throw XCTSkip("Mesa Rusticl is not installed (\(Self.rusticl); `make deps` installs mesa-opencl-icd)")
        }
        try selfTest(library: Self.rusticl, device: "rusticl:0", platform: "(rusticl",
                     environment: ["RUSTICL_ENABLE": "llvmpipe"])
    }

    func testIntelSelfTestPassesWhereInstalled() throws {
        guard FileManager.default.fileExists(atPath: Self.intel) else {
            throw XCTSkip("Intel's OpenCL runtime is not installed (`make test-portability` installs it)")
        }
        try selfTest(library: Self.intel, device: "intel(r) opencl:0", platform: "(Intel(R) OpenCL")
    }

    /// `jem-gpu selftest --backend opencl` with `library` as the only ICD: every op passes.
    private func selfTest(library: String, device: String, platform: String,
                          environment extra: [String: String] = [:]) throws {
        let folder = NSTemporaryDirectory() + "jem-portability-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/vendors", withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: folder) }
        try (library + "\n").write(toFile: folder + "/vendors/driver.icd", atomically: true, encoding: .utf8)
        var environment = ["OCL_ICD_VENDORS": folder + "/vendors", "JEM_GPU_CACHE_DIR": folder + "/cache"]
        environment.merge(extra) { $1 }
        let run = try runJemGPU(["selftest", "--backend", "opencl", "--device", device], environment: environment)
        let summary = run.stdout.split(separator: "\n").last.map(String.init) ?? ""
        print("selftest on \(device): \(summary)")
        XCTAssertEqual(run.status, 0, "selftest on \(device) failed:\n\(run.stdout)\n\(run.stderr)")
        XCTAssertTrue(run.stdout.contains(platform), run.stdout)
        XCTAssertTrue(summary.contains(" 0 failed"), summary)
    }
}
