import Foundation
import JEM
import JEMBackend

/// Checks an op on the benchmarked backend against the CPU backend before it is timed: the same
/// Philox inputs on both, the outputs compared as max|a - b| / max|b|. An op above its tolerance is
/// not timed (a fast wrong kernel must not make a figure). Model-level checks run at batch 2 of
/// the same model (the same kernels and layer shapes but for the batch), so that the CPU side
/// stays short even for wrn-28-10.
struct BenchValidation {
    let candidate: any Backend
    let reference = CPUBackend()

    /// Relative tolerance of single ops (as `jem-gpu selftest`) and of whole-model results
    /// (errors add up through 10-28 layers).
    static let opTolerance = ParitySuite.tolerance
    static let modelTolerance = 1e-3

    static func relativeError(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count else { return .infinity }
        var worst: Float = 0, scale: Float = 0
        for (x, y) in zip(a, b) {
            let d = abs(x - y)
            worst = max(worst, d.isNaN ? .infinity : d)
            scale = max(scale, abs(y))
        }
        return Double(worst) / max(Double(scale), 1e-30)
    }

    /// Runs `body(backend, inputs, outputs)` on both backends with inputs of `inputCounts`
    /// (uniform in [-1, 1), Philox streams 1, 2, ...) and zeroed outputs of `outputCounts`;
    /// the worst relative error over the outputs.
    func compare(inputs inputCounts: [Int], outputs outputCounts: [Int],
                 _ body: (any Backend, [DeviceBuffer], [DeviceBuffer]) throws -> Void) throws -> Double {
        var results: [[[Float]]] = []
        for backend in [candidate, reference as any Backend] {
            var inputs: [DeviceBuffer] = []
            for (index, count) in inputCounts.enumerated() {
                let buffer = try backend.makeBuffer(count: count)
                let values = (0..<count).map { 2 * Philox.uniform(seed: 31, stream: UInt64(index + 1), element: $0) - 1 }
                try backend.upload(values, to: buffer, offset: 0)
                inputs.append(buffer)
            }
            var outputs: [DeviceBuffer] = []
            for count in outputCounts {
                let buffer = try backend.makeBuffer(count: count)
                backend.fill(buffer, value: 0, offset: 0, count: count)
                outputs.append(buffer)
            }
            try body(backend, inputs, outputs)
            try backend.synchronize()
            results.append(try zip(outputs, outputCounts).map { try backend.download($0.0, offset: 0, count: $0.1) })
        }
        return zip(results[0], results[1]).map { Self.relativeError($0.0, $0.1) }.max() ?? 0
    }

    /// A model-level result on both backends at batch 2: `body(backend, net)` returns the values
    /// to compare (the network is initialised identically on both).
    func compareModel(_ spec: WideResNetSpec, batch: Int = 2,
                      _ body: (any Backend, WideResNet) throws -> [Float]) throws -> Double {
        var results: [[Float]] = []
        for backend in [candidate, reference as any Backend] {
            let net = try WideResNet(spec: spec, maxBatch: batch, backend: backend)
            net.initialize(seed: 1)
            results.append(try body(backend, net))
        }
        return Self.relativeError(results[0], results[1])
    }
}
