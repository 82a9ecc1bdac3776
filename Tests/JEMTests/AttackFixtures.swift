import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// A tiny classification problem for the attack tests: 1x8x8 images of 3 classes (a vertical
/// bar, a horizontal bar, a diagonal, each at half contrast over Gaussian noise), and a wrn-10-1
/// trained on it with cross-entropy for a few hundred Adam steps (about a second on the CPU), so
/// that clean accuracy is high and small perturbations can still flip decisions.
enum AttackFixture {
    static let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 8, imageWidth: 8,
                                     classCount: 3)

    /// `count` labelled images (labels cycle 0, 1, 2) from Philox stream `stream`.
    static func images(count: Int, stream: UInt64) -> ImageSet {
        let side = 8, size = side * side
        var pixels = [Float](repeating: 0, count: count * size)
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let y = i % 3
            labels[i] = Int32(y)
            for r in 0..<side {
                for c in 0..<side {
                    let on: Bool
                    switch y {
                    case 0: on = c == 2 || c == 3
                    case 1: on = r == 4 || r == 5
                    default: on = r == c || r == c + 1
                    }
                    let noise = 0.35 * Philox.normal(seed: 11, stream: stream, element: i * size + r * side + c)
                    pixels[i * size + r * side + c] = min(max(-0.5 + (on ? 0.6 : 0) + noise, -1), 1)
                }
            }
        }
        return ImageSet(channels: 1, height: side, width: side, count: count, pixels: .float32(pixels), labels: labels)
    }

    static let trainingImages = images(count: 480, stream: 1)
    static let testImages = images(count: 60, stream: 2)

    /// The trained weights, in `WideResNet.parameters` order (trained once per test process).
    static let trainedWeights: [[Float]] = {
        do { return try train() } catch { fatalError("training the attack fixture failed: \(error)") }
    }()

    static func train() throws -> [[Float]] {
        let cpu = CPUBackend()
        var config = TrainingConfig()
        config.model = spec.name
        config.mode = .baseline
        config.batchSize = 16
        config.learningRate = 3e-3
        config.warmupIterations = 0
        config.augmentation = .none
        config.seed = 3
        let trainer = try JEMTrainer(config: config, spec: spec, backend: cpu)
        let set = trainingImages, size = spec.inputCount, b = config.batchSize
        for iteration in 0..<240 {
            let order = (0..<b).map { (iteration * b + $0) % set.count }
            var x = [Float](repeating: 0, count: b * size)
            x.withUnsafeMutableBufferPointer { set.images(order, into: $0.baseAddress!) }
            let labels = order.map { set.labels![$0] }
            _ = try trainer.iterate(TrainingBatch(px: x, labeled: x, labels: labels), iteration: iteration,
                                    learningRate: config.learningRate, seed: config.seed)
        }
        return try trainer.net.parameters.map { try cpu.download($0.value) }
    }

    /// A trained network on `backend` holding `maxBatch` images per pass.
    static func trainedNet(on backend: any Backend, maxBatch: Int) throws -> WideResNet {
        let net = try WideResNet(spec: spec, maxBatch: maxBatch, backend: backend)
        for (p, w) in zip(net.parameters, trainedWeights) { try backend.upload(w, to: p.value, offset: 0) }
        return net
    }

    /// The first `count` test images on `backend`, with their labels (host and device).
    static func testBatch(_ count: Int, on backend: any Backend) throws
        -> (x: DeviceBuffer, pixels: [Float], labels: [Int32], labelBuffer: DeviceBuffer)
    {
        var pixels = [Float](repeating: 0, count: count * spec.inputCount)
        pixels.withUnsafeMutableBufferPointer { testImages.images(Array(0..<count), into: $0.baseAddress!) }
        let labels = Array(testImages.labels![0..<count])
        return (try backend.makeBuffer(pixels), pixels, labels, try backend.makeBuffer(labels))
    }
}
