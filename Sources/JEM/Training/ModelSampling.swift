import Foundation
import JEMBackend

/// Samples from a trained model with SGLD (`jem-gpu sample` and the grids a run writes):
/// unconditional chains on LSE f(x), class-conditional chains on the logit f(x)[y], and the
/// replay buffer sorted by the class the network predicts.
public enum ModelSampling {
    /// Up to `perClass` replay-buffer images per predicted class, most confident first.
    /// Returns one array per class (each `count * inputCount` floats, possibly empty).
    public static func bufferByClass(net: WideResNet, buffer: ReplayBuffer, perClass: Int) throws -> [[Float]] {
        let backend = net.backend, k = net.spec.classCount, size = net.spec.inputCount
        let all = try backend.download(buffer.storage)
        var ranked = [[(confidence: Float, row: Int)]](repeating: [], count: k)
        let scratch = try backend.makeBuffer(count: net.maxBatch * size)
        var offset = 0
        while offset < buffer.size {
            let n = min(net.maxBatch, buffer.size - offset)
            try backend.upload(Array(all[(offset * size)..<((offset + n) * size)]), to: scratch, offset: 0)
            let logits = try backend.download(net.forward(scratch, batch: n), offset: 0, count: n * k)
            for r in 0..<n {
                let row = logits[(r * k)..<((r + 1) * k)]
                let y = row.indices.max(by: { row[$0] < row[$1] })! - r * k
                // max softmax = 1 / sum exp(l - l_max)
                let top = row.max()!
                let confidence = 1 / row.reduce(Float(0)) { $0 + expf($1 - top) }
                ranked[y].append((confidence, offset + r))
            }
            offset += n
        }
        return ranked.map { entries in
            entries.sorted { $0.confidence > $1.confidence }.prefix(perClass).flatMap {
                all[($0.row * size)..<(($0.row + 1) * size)]
            }
        }
    }

    /// Class-conditional SGLD on f(x)[y]: `perClass` chains for each class, started from the
    /// buffer images the network assigns to that class when there are enough (most confident
    /// first), else from `start` (a Gaussian start from that class's Gaussian). Returns the
    /// images class by class (row y of a grid holds class y).
    public static func conditional(net: WideResNet, buffer: ReplayBuffer?, start: ChainStart, perClass: Int,
                                   steps: Int, stepSize: Float, noiseStd: Float, seed: UInt64) throws -> [Float] {
        let k = net.spec.classCount, size = net.spec.inputCount
        let starts = try buffer.map { try bufferByClass(net: net, buffer: $0, perClass: perClass) }
            ?? Array(repeating: [], count: k)
        let fresh = freshStarts(classes: (0..<(k * perClass)).map { $0 / perClass }, size: size, start: start,
                                seed: seed)
        var images = [Float](repeating: 0, count: k * perClass * size)
        for y in 0..<k {
            for i in 0..<perClass {
                let slot = (y * perClass + i) * size
                let source = starts[y].count >= (i + 1) * size ? Array(starts[y][(i * size)..<((i + 1) * size)])
                    : Array(fresh[slot..<(slot + size)])
                images.replaceSubrange(slot..<(slot + size), with: source)
            }
        }
        let labels = (0..<(k * perClass)).map { Int32($0 / perClass) }
        return try run(net: net, images: images, classes: labels, steps: steps, stepSize: stepSize,
                       noiseStd: noiseStd, seed: seed)
    }

    /// `count` fresh chains (from `start`; Gaussian starts take the classes in turn) run for
    /// `steps` SGLD steps on f(x) = LSE.
    public static func unconditional(net: WideResNet, count: Int, start: ChainStart, steps: Int,
                                     stepSize: Float, noiseStd: Float, seed: UInt64) throws -> [Float] {
        let classes = (0..<count).map { $0 % (start.gaussians?.classCount ?? 1) }
        let images = freshStarts(classes: classes, size: net.spec.inputCount, start: start, seed: seed)
        return try run(net: net, images: images, classes: nil, steps: steps, stepSize: stepSize, noiseStd: noiseStd,
                       seed: seed)
    }

    /// Starting points of fresh chains: draws of `start` for the given classes.
    static func freshStarts(classes: [Int], size: Int, start: ChainStart, seed: UInt64) -> [Float] {
        start.draw(classes: classes, size: size, seed: seed,
                   streams: .init(uniform: RandomStream.sampleChains.id(), gaussian: RandomStream.sampleChains.id(1),
                                  coin: RandomStream.sampleChains.id(2)))
    }

    /// Runs SGLD (clamped to [-1,1]) on `images` in batches of the network's size.
    static func run(net: WideResNet, images: [Float], classes: [Int32]?, steps: Int, stepSize: Float, noiseStd: Float,
                    seed: UInt64) throws -> [Float] {
        let backend = net.backend, size = net.spec.inputCount, total = images.count / size
        let sampler = try SGLDSampler(net: net, steps: steps, stepSize: stepSize, noiseStd: noiseStd, gradClip: nil,
                                      clampRange: -1...1)
        var out = images
        var first = 0
        while first < total {
            let n = min(net.maxBatch, total - first)
            try backend.upload(Array(out[(first * size)..<((first + n) * size)]), to: sampler.chains, offset: 0)
            try sampler.run(batch: n, classes: classes.map { Array($0[first..<(first + n)]) }, seed: seed,
                            iteration: first / net.maxBatch, chain: 2)
            out.replaceSubrange((first * size)..<((first + n) * size),
                                with: try backend.download(sampler.chains, offset: 0, count: n * size))
            first += n
        }
        return out
    }
}
