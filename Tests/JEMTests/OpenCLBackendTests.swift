import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The OpenCL backend against the CPU reference, op group by op group (through `ParitySuite`), plus
/// device listing, build-log and allocation errors, sticky errors and Philox on the device.
/// These run on any OpenCL device, PoCL's CPU device included; they never skip.
final class OpenCLBackendTests: XCTestCase {
    /// One backend for the whole class: each program and CLBlast kernel compiles once per process
    /// (seconds each on a cold PoCL cache).
    nonisolated(unsafe) private static var shared: OpenCLBackend?

    private func backend() throws -> OpenCLBackend {
        if let shared = Self.shared { return shared }
        let made = try OpenCLBackend(selection: .first)
        print("OpenCL parity tests on \(made.deviceDescription)")
        Self.shared = made
        return made
    }

    /// Runs one group of the parity suite and asserts every check, printing each one's worst error.
    private func assertParity(_ group: ParitySuite.Group, on candidate: OpenCLBackend? = nil,
                              file: StaticString = #filePath, line: UInt = #line) throws {
        let device = try candidate ?? backend()
        let started = Date()
        let results = try ParitySuite.run(reference: CPUBackend(), candidate: device, seed: 1, groups: [group])
        XCTAssertFalse(results.isEmpty, "group \(group) ran no checks", file: file, line: line)
        for r in results {
            print("  \(r.passed ? "pass" : "FAIL")  \(r.name)  error \(String(format: "%.2e", r.maxRelativeError)) "
                  + "(tolerance \(String(format: "%.0e", r.tolerance)))  \(r.detail)")
            XCTAssertTrue(r.passed, "\(r.name) [\(r.detail)]: error \(r.maxRelativeError) above \(r.tolerance)",
                          file: file, line: line)
        }
        let worst = results.filter { $0.tolerance > 0 }.map(\.maxRelativeError).max() ?? 0
        print("group \(group): \(results.count) checks, worst error \(String(format: "%.2e", worst)), "
              + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s")
    }

    // MARK: Parity, one test per op group

    func testBuffersParity() throws { try assertParity(.buffers) }
    func testGEMMParity() throws { try assertParity(.gemm) }
    func testConvolutionParity() throws { try assertParity(.convolution) }
    func testPointwiseParity() throws { try assertParity(.pointwise) }
    func testLossParity() throws { try assertParity(.loss) }
    func testSamplingParity() throws { try assertParity(.sampling) }
    func testOptimizerParity() throws { try assertParity(.optimizers) }
    func testReductionParity() throws { try assertParity(.reductions) }
    func testRandomParity() throws { try assertParity(.random) }

    /// The convolutions again with a tiny workspace limit, so every batch runs image by image
    /// through the chunked path (beta = 1 accumulation of the filter gradient across chunks).
    func testConvolutionParityInImageChunks() throws {
        let device = try backend()
        let saved = device.convolutionWorkspaceLimitBytes
        device.convolutionWorkspaceLimitBytes = 1024
        defer { device.convolutionWorkspaceLimitBytes = saved }
        XCTAssertEqual(device.imagesPerChunk(ParitySuite.convolutionShapes[0]), 1)
        try assertParity(.convolution, on: device)
    }

    // MARK: Devices

    func testDeviceListing() throws {
        let devices = try OpenCLRuntime.devices()
        XCTAssertFalse(devices.isEmpty)
        for d in devices {
            print("device: \(d)")
            XCTAssertFalse(d.name.isEmpty)
            XCTAssertFalse(d.platformName.isEmpty)
            XCTAssertTrue(["GPU", "CPU", "accelerator", "other"].contains(d.typeDescription))
            XCTAssertEqual(d.isGPU, d.typeDescription == "GPU")
            XCTAssertGreaterThan(d.globalMemoryBytes, 0)
            XCTAssertGreaterThan(d.maxAllocationBytes, 0)
            XCTAssertLessThanOrEqual(d.maxAllocationBytes, d.globalMemoryBytes)
            XCTAssertGreaterThan(d.computeUnits, 0)
            XCTAssertGreaterThan(d.maxWorkGroupSize, 0)
        }
        let device = try backend()
        XCTAssertEqual(device.device, devices[0])
        XCTAssertTrue(device.deviceDescription.hasPrefix("OpenCL: \(devices[0].name) (\(devices[0].platformName), "),
                      device.deviceDescription)
        XCTAssertTrue(device.deviceDescription.hasSuffix(" GiB)"), device.deviceDescription)
        XCTAssertEqual(device.kind, .opencl)
    }

    func testNoPlatformIsAOneLineError() throws {
        for (status, count) in [(Int32(-1001), UInt32(0)), (Int32(0), UInt32(0))] {
            XCTAssertThrowsError(try OpenCLRuntime.checkPlatformQuery(status: status, count: count)) { error in
                let message = "\(error)"
                XCTAssertTrue(error is BackendError)
                XCTAssertTrue(message.hasPrefix("no OpenCL platform found"), message)
                XCTAssertTrue(message.contains("pocl-opencl-icd"), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
        XCTAssertThrowsError(try OpenCLRuntime.checkPlatformQuery(status: -6, count: 0)) { error in
            XCTAssertTrue("\(error)".contains("CL_OUT_OF_HOST_MEMORY"), "\(error)")
        }
        XCTAssertNoThrow(try OpenCLRuntime.checkPlatformQuery(status: 0, count: 1))
    }

    func testDeviceSelection() throws {
        XCTAssertEqual(OpenCLDeviceSelection.parse("2"), .flatIndex(2))
        XCTAssertEqual(OpenCLDeviceSelection.parse("0:1"), .index(platform: 0, device: 1))
        XCTAssertEqual(OpenCLDeviceSelection.parse(" 1 "), .flatIndex(1))
        XCTAssertEqual(OpenCLDeviceSelection.parse("H100"), .nameContains("H100"))
        XCTAssertEqual(OpenCLDeviceSelection.parse("1:x"), .nameContains("1:x"))

        let devices = try OpenCLRuntime.devices()
        let first = devices[0]
        XCTAssertEqual(try OpenCLDeviceSelection.first.position(in: devices), 0)
        XCTAssertEqual(try OpenCLDeviceSelection.flatIndex(0).position(in: devices), 0)
        XCTAssertEqual(try OpenCLDeviceSelection.index(platform: first.platformIndex, device: first.deviceIndex)
            .position(in: devices), 0)
        XCTAssertEqual(try OpenCLDeviceSelection.nameContains(String(first.name.prefix(6)).uppercased())
            .position(in: devices), 0)
        if let gpu = devices.firstIndex(where: \.isGPU) {
            XCTAssertEqual(try OpenCLDeviceSelection.firstGPU.position(in: devices), gpu)
        } else {
            XCTAssertThrowsError(try OpenCLDeviceSelection.firstGPU.position(in: devices)) { error in
                XCTAssertTrue("\(error)".contains("no OpenCL GPU found"), "\(error)")
            }
        }
        XCTAssertThrowsError(try OpenCLBackend(selection: .flatIndex(devices.count))) { error in
            XCTAssertTrue(error is BackendError)
            XCTAssertTrue("\(error)".contains(first.name), "the error lists the devices: \(error)")
        }
        XCTAssertThrowsError(try OpenCLBackend(selection: .nameContains("no-such-device-xyz")))
    }

    // MARK: Errors

    func testBrokenKernelSourceReportsBuildLog() throws {
        let device = try backend()
        let source = """
            __kernel void broken_kernel(__global float *x) {
                x[get_global_id(0)] = undeclared_variable_xyz * 2.0f;
            }
            """
        XCTAssertThrowsError(try device.buildProgram(source: source, name: "broken")) { error in
            let message = "\(error)"
            print("build error: \(message)")
            XCTAssertTrue(error is BackendError)
            XCTAssertTrue(message.contains("cannot build OpenCL program 'broken'"), message)
            XCTAssertTrue(message.contains("build log:"), message)
            XCTAssertTrue(message.contains("undeclared_variable_xyz"), "the compiler's log names the culprit: \(message)")
        }
        // A good source still builds, and the backend is unaffected.
        XCTAssertNoThrow(try device.buildProgram(source: "__kernel void fine(__global float *x) { x[0] = 1.0f; }",
                                                 name: "fine"))
        try device.synchronize()
    }

    func testAllocationAboveDeviceLimitIsAClearError() throws {
        let device = try backend()
        let tooMany = Int(device.device.maxAllocationBytes / 4) + 1
        XCTAssertThrowsError(try device.makeBuffer(count: tooMany, type: .float32)) { error in
            let message = "\(error)"
            print("allocation error: \(message)")
            XCTAssertTrue(error is BackendError)
            XCTAssertTrue(message.contains("CL_DEVICE_MAX_MEM_ALLOC_SIZE"), message)
            XCTAssertTrue(message.contains("MiB"), message)
        }
        XCTAssertThrowsError(try device.makeBuffer(count: -1, type: .float32))
        // The refusal is not sticky: the backend keeps working.
        let small = try device.makeBuffer([Float]([1, 2, 3]))
        XCTAssertEqual(try device.download(small), [1, 2, 3])
    }

    func testStickyErrorIsThrownLater() throws {
        let device = try OpenCLBackend(selection: .first)    // a backend of its own: the error stays
        let x = try device.makeBuffer([Float](repeating: 1, count: 8))
        let foreign = try CPUBackend().makeBuffer(count: 8)
        device.scale(foreign, by: 2, count: 8)               // does not throw: recorded
        device.scale(x, by: 2, count: 8)                     // skipped after the error
        XCTAssertThrowsError(try device.synchronize()) { error in
            XCTAssertTrue("\(error)".contains("scale"), "\(error)")
        }
        XCTAssertThrowsError(try device.download(x))
        XCTAssertThrowsError(try device.makeBuffer(count: 4))
        XCTAssertThrowsError(try device.sum(x, count: 8))

        let other = try OpenCLBackend(selection: .first)
        let y = try other.makeBuffer([Float](repeating: 1, count: 8))
        other.axpby(alpha: 1, x: y, beta: 1, y: y, count: 9)   // too many elements: recorded, not run
        XCTAssertThrowsError(try other.synchronize()) { error in
            XCTAssertTrue("\(error)".contains("needs 9 elements"), "\(error)")
        }
    }

    func testProgramsAndKernelsAreCached() throws {
        let device = try backend()
        let x = try device.makeBuffer([Float](repeating: 2, count: 10))
        device.scale(x, by: 0.5, count: 10)
        try device.synchronize()
        let program = device.programs[.pointwise], kernel = device.kernels["scale_values"]
        XCTAssertNotNil(program)
        XCTAssertNotNil(kernel)
        device.scale(x, by: 3, count: 10)
        try device.synchronize()
        XCTAssertTrue(device.programs[.pointwise] === program)
        XCTAssertTrue(device.kernels["scale_values"] === kernel)
        XCTAssertEqual(try device.download(x), [Float](repeating: 3, count: 10))
    }

    // MARK: Philox on the device

    func testPhiloxKnownAnswerVectorsOnDevice() throws {
        let device = try backend()
        let vectors: [((UInt32, UInt32, UInt32, UInt32), (UInt32, UInt32), [UInt32])] = [
            ((0, 0, 0, 0), (0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            ((0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff), (0xffff_ffff, 0xffff_ffff),
             [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
            ((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
             [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
        ]
        for (counter, key, expected) in vectors {
            XCTAssertEqual(try device.philoxRaw(counter: counter, key: key, count: 1), expected)
        }
    }

    func testPhiloxRawWordsMatchCPU() throws {
        let device = try backend()
        let counter: (UInt32, UInt32, UInt32, UInt32) = (0xffff_fff0, 3, 0xdead_beef, 1)
        let key: (UInt32, UInt32) = (0x1234_5678, 0x9abc_def0)
        let count = 4099
        let words = try device.philoxRaw(counter: counter, key: key, count: count)
        XCTAssertEqual(words.count, 4 * count)
        var mismatches = 0
        for i in 0..<count {
            let r = Philox.block(counter: (counter.0 &+ UInt32(i), counter.1, counter.2, counter.3), key: key)
            if Array(words[4 * i ..< 4 * i + 4]) != [r.0, r.1, r.2, r.3] { mismatches += 1 }
        }
        XCTAssertEqual(mismatches, 0, "\(mismatches) of \(count) blocks differ")
    }
}
