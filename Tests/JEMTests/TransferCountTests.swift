import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// What one JEM iteration moves between host and device, counted by the backends: the two real
/// batches, the labels and the replay draw going in; the scalars of the loss statistics coming
/// back. The same on the CPU backend and on OpenCL (PoCL here), except for the partial sums a
/// device reduction reads back.
final class TransferCountTests: XCTestCase {
    private let batch = 8
    private let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 3, imageHeight: 8, imageWidth: 8,
                                      classCount: 5)

    private func oneIteration(on backend: any Backend) throws -> TransferCounts {
        var config = TrainingConfig()
        config.model = "wrn-10-1"
        config.batchSize = batch
        config.sgldSteps = 2
        config.bufferSize = 40
        let trainer = try JEMTrainer(config: config, spec: spec, backend: backend)
        let data = TrainingBatch(px: randomArray(batch * spec.inputCount, stream: 1),
                                 labeled: randomArray(batch * spec.inputCount, stream: 2),
                                 labels: (0..<batch).map { Int32($0 % 5) })
        _ = try trainer.iterate(data, iteration: 0, learningRate: 1e-4, seed: 3)   // warm-up: same traffic
        let before = backend.transfers
        _ = try trainer.iterate(data, iteration: 1, learningRate: 1e-4, seed: 3)
        try backend.synchronize()
        return backend.transfers - before
    }

    /// Host -> device: p(x) batch and labelled batch (float32), labels, replay indices, restart
    /// flags and write-back indices (int32).
    private var expectedUpload: Int { 2 * batch * spec.inputCount * 4 + 4 * batch * 4 }
    /// Device -> host besides reductions: f(x) of the two p(x) batches, the labelled batch's logits.
    private var expectedDownloadBesidesReductions: Int { 2 * batch * 4 + batch * spec.classCount * 4 }

    func testCPUBackendCountsOnlyTheBatchesIndicesAndScalars() throws {
        let traffic = try oneIteration(on: CPUBackend())
        XCTAssertEqual(traffic.bytesToDevice, expectedUpload)
        XCTAssertEqual(traffic.uploads, 6)
        // + the sample RMS: one scalar.
        XCTAssertEqual(traffic.bytesToHost, expectedDownloadBesidesReductions + 4)
        XCTAssertEqual(traffic.downloads, 4)
    }

    func testOpenCLBackendMovesTheSameDataAsTheCPUBackend() throws {
        let traffic = try oneIteration(on: try OpenCLBackend(selection: .first, programCache: .disabled))
        XCTAssertEqual(traffic.bytesToDevice, expectedUpload)
        XCTAssertEqual(traffic.uploads, 6)
        XCTAssertEqual(traffic.downloads, 4)
        // The sample RMS reads back one partial sum per work-group (at most 256 floats).
        let partials = traffic.bytesToHost - expectedDownloadBesidesReductions
        XCTAssertGreaterThanOrEqual(partials, 4)
        XCTAssertLessThanOrEqual(partials, OpenCLBackend.maxReductionGroups * 4)
    }

    func testCountersAddUpEveryCallAndSkipEmptyOnes() throws {
        for backend in [CPUBackend() as any Backend, try OpenCLBackend(selection: .first, programCache: .disabled)] {
            let start = backend.transfers
            let floats = try backend.makeBuffer(count: 10)
            let ints = try backend.makeBuffer(count: 3, type: .int32)
            try backend.upload([Float](repeating: 1, count: 10), to: floats, offset: 0)
            try backend.upload([Int32](), to: ints, offset: 0)
            try backend.upload([1, 2, 3] as [Int32], to: ints, offset: 0)
            _ = try backend.download(floats, offset: 2, count: 5)
            _ = try backend.downloadInt32(ints, offset: 0, count: 0)
            let delta = backend.transfers - start
            XCTAssertEqual(delta.bytesToDevice, 52, "\(backend.kind)")
            XCTAssertEqual(delta.uploads, 2, "\(backend.kind)")
            XCTAssertEqual(delta.bytesToHost, 20, "\(backend.kind)")
            XCTAssertEqual(delta.downloads, 1, "\(backend.kind)")
        }
    }
}
