import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The same JEM run on the CPU backend and on the OpenCL backend (PoCL in CI): identical
/// weights at start, identical Philox noise, so the loss curves agree to float tolerance.
final class TrainerParityTests: XCTestCase {
    func testCPUAndOpenCLGiveTheSameLossCurve() throws {
        try checkSameLossCurve(bufferInit: .uniform)
    }

    /// Informative restarts come from the host and are uploaded into the chains: they must land
    /// in the same rows on both backends (half the chains restart each iteration here).
    func testCPUAndOpenCLGiveTheSameLossCurveWithInformativeInit() throws {
        try checkSameLossCurve(bufferInit: .informative)
    }

    /// Mixed restarts: some rows from the Gaussians (host), the rest from U(-1,1) (device).
    func testCPUAndOpenCLGiveTheSameLossCurveWithMixedInit() throws {
        try checkSameLossCurve(bufferInit: .mixed)
    }

    func checkSameLossCurve(bufferInit: BufferInit) throws {
        let opencl = try OpenCLBackend(selection: .first)
        var config = TrainingConfig()
        config.bufferInit = bufferInit
        config.reinitFrequency = bufferInit == .uniform ? 0.05 : 0.5
        config.model = "wrn-10-1"
        config.batchSize = 8
        config.sgldSteps = 3
        config.bufferSize = 32
        config.learningRate = 1e-3
        config.warmupIterations = 0
        config.energyL2 = 0.1
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 12, imageWidth: 12, classCount: 4)
        var initial: InformativeInit? = nil
        if bufferInit != .uniform {
            let images = ImageSet(channels: 1, height: 12, width: 12, count: 40,
                                  pixels: .float32(randomArray(40 * spec.inputCount, stream: 77)),
                                  labels: (0..<40).map { Int32($0 % 4) })
            initial = try InformativeInit(images: images, indices: Array(0..<40), classCount: 4, seed: 3)
        }
        let cpuTrainer = try JEMTrainer(config: config, spec: spec, backend: CPUBackend(), initial: initial)
        let gpuTrainer = try JEMTrainer(config: config, spec: spec, backend: opencl, initial: initial)
        let initialWeights = try cpuTrainer.net.parameters.map { try cpuTrainer.backend.download($0.value) }
        var cpuLosses: [Double] = [], gpuLosses: [Double] = []
        for iteration in 0..<4 {
            let batch = TrainingBatch(px: randomArray(8 * spec.inputCount, stream: UInt64(10 + iteration)),
                                      labeled: randomArray(8 * spec.inputCount, stream: UInt64(20 + iteration)),
                                      labels: (0..<8).map { Int32(($0 + iteration) % 4) })
            let a = try cpuTrainer.iterate(batch, iteration: iteration, learningRate: 1e-3, seed: 9)
            let b = try gpuTrainer.iterate(batch, iteration: iteration, learningRate: 1e-3, seed: 9)
            // The chains (restarts included) start and move alike on both backends.
            XCTAssertLessThan(maxRelativeError(try gpuTrainer.lastSamples(), try cpuTrainer.lastSamples()), 1e-3,
                              "samples, iteration \(iteration)")
            cpuLosses.append(a.loss)
            gpuLosses.append(b.loss)
            XCTAssertEqual(a.crossEntropy, b.crossEntropy, accuracy: 1e-4 * max(1, abs(a.crossEntropy)))
            XCTAssertEqual(a.fSample, b.fSample, accuracy: 1e-3 * max(1, abs(a.fSample)))
        }
        for (a, b) in zip(cpuLosses, gpuLosses) { XCTAssertEqual(a, b, accuracy: 1e-3 * max(1, abs(a))) }
        // The four Adam updates agree too, as vectors: an element whose gradient is near zero is in
        // Adam's eps regime, where float rounding can flip its step (seen: one such element of
        // layer3 off by 1% of the tensor's largest weight with mixed restarts, whose samples agree to
        // 1e-7), so the check is on the update's norm, which a wrong gradient moves by O(1).
        for (i, (p, q)) in zip(cpuTrainer.net.parameters, gpuTrainer.net.parameters).enumerated() {
            let x = try cpuTrainer.backend.download(p.value), y = try opencl.download(q.value)
            var difference = 0.0, update = 0.0
            for j in x.indices {
                let cpuStep = Double(x[j] - initialWeights[i][j]), gpuStep = Double(y[j] - initialWeights[i][j])
                difference += (gpuStep - cpuStep) * (gpuStep - cpuStep)
                update += cpuStep * cpuStep
            }
            if update == 0 {   // tensors the JEM objective does not train (the CCF file's unused heads)
                XCTAssertEqual(difference, 0, p.name)
            } else {
                XCTAssertLessThan((difference / update).squareRoot(), 1e-2, p.name)
            }
        }
    }
}
