import Foundation
import JEMBackend

/// The three out-of-distribution scores of the official `eval_wrn_ebm.py`; higher means "more
/// in-distribution".
public enum OODScore: String, Sendable, Codable, CaseIterable {
    /// LogSumExp of the logits: f(x) = -E(x), the unnormalised log p(x).
    case px
    /// Largest softmax probability, max_y p(y|x).
    case py
    /// Minus the L2 norm of the input gradient of f(x): -‖∂f/∂x‖₂ (flattened over C, H, W).
    case pxgrad

    public var title: String {
        switch self {
        case .px: return "px = LSE(logits)"
        case .py: return "py = max softmax"
        case .pxgrad: return "pxgrad = -|dLSE/dx|"
        }
    }
}

/// Gaussian noise added to every input before it is scored (the official evaluation adds
/// sigma .03). Element j of image i draws N(0,1) element `i * imageSize + j` of Philox
/// `(seed, stream)`, so the noise depends neither on the batch size nor on the backend.
public struct TestNoise: Sendable, Equatable {
    public var std: Float
    public var seed: UInt64
    public var stream: UInt64

    public init(std: Float, seed: UInt64, stream: UInt64) {
        self.std = std
        self.seed = seed
        self.stream = stream
    }

    public static let none = TestNoise(std: 0, seed: 0, stream: 0)
}

/// Per-example outputs of the network on one image set, from which every metric is computed
/// (and which `jem-gpu score` writes out, so anyone can recompute the metrics).
public struct ExampleScores: Sendable, Equatable {
    public let count: Int
    public let classCount: Int
    /// `[count][classCount]`, row-major.
    public var logits: [Float]
    public var labels: [Int32]?
    /// f(x) = LSE(logits), computed on the backend.
    public var lse: [Float]
    /// max_y softmax(logits)_y = exp(max logit - lse).
    public var maxProbability: [Float]
    /// ‖∂f(x)/∂x‖₂ per example.
    public var gradientNorm: [Float]

    /// The score used for OOD detection (higher = more in-distribution).
    public func values(_ score: OODScore) -> [Float] {
        switch score {
        case .px: return lse
        case .py: return maxProbability
        case .pxgrad: return gradientNorm.map { -$0 }
        }
    }
}

/// Computes `ExampleScores` batch by batch on the backend: one forward, LSE and its softmax
/// seed, one input-only backward, and the squared gradient norms as the diagonal of one GEMM
/// `G·Gᵀ` (the gradients never leave the device; per batch only the logits, the LSE values
/// and the `n × n` Gram matrix are read back).
public final class Scorer {
    public let net: WideResNet
    let backend: any Backend
    /// Images per batch: the network's `maxBatch`.
    public var batchSize: Int { net.maxBatch }

    let input: DeviceBuffer
    let energy: EnergyGradient
    let gram: DeviceBuffer

    public init(net: WideResNet) throws {
        self.net = net
        backend = net.backend
        let b = net.maxBatch, size = net.spec.inputCount
        input = try backend.makeBuffer(count: b * size)
        energy = try EnergyGradient(net: net)
        gram = try backend.makeBuffer(count: b * b)
    }

    /// Scores every image of `set` (whose shape must be the network's input shape), or the images
    /// `range` of it (one rank's part of a data-parallel evaluation; noise stays addressed by image index).
    public func score(_ set: ImageSet, noise: TestNoise = .none, range: Range<Int>? = nil) throws -> ExampleScores {
        let range = range ?? 0..<set.count
        let spec = net.spec, k = spec.classCount, size = set.imageSize
        precondition(set.shape == [spec.inputChannels, spec.imageHeight, spec.imageWidth],
                     "image shape \(set.shape) is not the network's input (callers check it first)")
        var logits = [Float](repeating: 0, count: range.count * k)
        var lseValues = [Float](repeating: 0, count: range.count)
        var maxProbability = [Float](repeating: 0, count: range.count)
        var gradientNorm = [Float](repeating: 0, count: range.count)
        var chunk = [Float](repeating: 0, count: batchSize * size)
        var start = range.lowerBound
        while start < range.upperBound {
            let n = min(batchSize, range.upperBound - start)
            chunk.withUnsafeMutableBufferPointer { buffer in
                set.images(Array(start..<(start + n)), into: buffer.baseAddress!)
                if noise.std > 0 {
                    Augmentation.addNoise(buffer.baseAddress!, count: n * size, start: start * size, std: noise.std,
                                          seed: noise.seed, stream: noise.stream)
                }
            }
            try backend.upload(n == batchSize ? chunk : Array(chunk[0..<(n * size)]), to: input, offset: 0)
            let out = energy.forward(input, batch: n)
            energy.backward(out, batch: n, mode: .inputOnly)
            let gradInput = energy.inputGradient
            // Gram matrix of the n gradient rows; its diagonal holds the squared norms.
            backend.gemm(transposeA: false, transposeB: true, m: n, n: n, k: size, alpha: 1, a: gradInput, aOffset: 0,
                         lda: size, b: gradInput, bOffset: 0, ldb: size, beta: 0, c: gram, cOffset: 0, ldc: n,
                         batch: .single)
            let batchLogits = try backend.download(out, offset: 0, count: n * k)
            let batchLSE = try backend.download(energy.energies, offset: 0, count: n)
            let batchGram = try backend.download(gram, offset: 0, count: n * n)
            for r in 0..<n {
                let row = batchLogits[(r * k)..<((r + 1) * k)]
                let i = start + r - range.lowerBound
                logits.replaceSubrange((i * k)..<((i + 1) * k), with: row)
                lseValues[i] = batchLSE[r]
                maxProbability[i] = Float(Foundation.exp(Double(row.max() ?? 0) - Double(batchLSE[r])))
                gradientNorm[i] = max(batchGram[r * n + r], 0).squareRoot()
            }
            start += n
        }
        return ExampleScores(count: range.count, classCount: k, logits: logits,
                             labels: range.count == set.count ? set.labels : set.labels.map { Array($0[range]) }, lse: lseValues,
                             maxProbability: maxProbability, gradientNorm: gradientNorm)
    }
}
