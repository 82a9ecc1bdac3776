/// Class-conditional SGLD on f(x)[y] (the logit of class y): `perClass` chains for each class,
/// started from replay-buffer images the network assigns to that class when there are enough
/// of them (else from U(-1,1)), run for `steps` steps. Returns the images, class by class
/// (row y of a grid holds class y).
public enum ConditionalSampling {
    public static func sample(net: WideResNet, buffer: ReplayBuffer?, perClass: Int, steps: Int, stepSize: Float,
                              noiseStd: Float, seed: UInt64, clamp: ClosedRange<Float>? = -1...1) throws -> [Float] {
        let backend = net.backend, k = net.spec.classCount, size = net.spec.inputCount
        let total = k * perClass
        let batch = min(net.maxBatch, total)
        let sampler = try SGLDSampler(net: net, steps: steps, stepSize: stepSize, noiseStd: noiseStd, gradClip: nil,
                                      clampRange: clamp)
        // Starting points: buffer images grouped by predicted class.
        var starts = [[Float]](repeating: [], count: k)
        if let buffer {
            let all = try backend.download(buffer.storage)
            var offset = 0
            let scratch = try backend.makeBuffer(count: net.maxBatch * size)
            while offset < buffer.size {
                let n = min(net.maxBatch, buffer.size - offset)
                try backend.upload(Array(all[(offset * size)..<((offset + n) * size)]), to: scratch, offset: 0)
                let logits = try backend.download(net.forward(scratch, batch: n), offset: 0, count: n * k)
                for r in 0..<n {
                    let row = logits[(r * k)..<((r + 1) * k)]
                    let y = row.indices.max(by: { row[$0] < row[$1] })! - r * k
                    if starts[y].count < perClass * size {
                        starts[y] += all[((offset + r) * size)..<((offset + r + 1) * size)]
                    }
                }
                offset += n
            }
        }
        var images = [Float](repeating: 0, count: total * size)
        var labels = [Int32](repeating: 0, count: total)
        let uniform = HostRandom(seed: seed, stream: RandomStream.sampleChains.id())
        for y in 0..<k {
            for i in 0..<perClass {
                let slot = y * perClass + i
                labels[slot] = Int32(y)
                if starts[y].count >= (i + 1) * size {
                    for j in 0..<size { images[slot * size + j] = starts[y][i * size + j] }
                } else {
                    for j in 0..<size { images[slot * size + j] = 2 * uniform.uniform(slot * size + j) - 1 }
                }
            }
        }
        var first = 0
        while first < total {
            let n = min(batch, total - first)
            try backend.upload(Array(images[(first * size)..<((first + n) * size)]), to: sampler.chains, offset: 0)
            try sampler.run(batch: n, classes: Array(labels[first..<(first + n)]), seed: seed,
                            iteration: first / batch, chain: 2)
            let out = try backend.download(sampler.chains, offset: 0, count: n * size)
            images.replaceSubrange((first * size)..<((first + n) * size), with: out)
            first += n
        }
        return images
    }
}
