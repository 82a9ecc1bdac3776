import JEMBackend
extension WideResNet {
    /// The penultimate features and the logits of `count` images (rows of `spec.inputCount`
    /// floats), in batches of up to `maxBatch`: the features are the globally average-pooled
    /// activations of the last block (`spec.featureCount` per image), the input of the final
    /// linear layer `class_output`. Returns both row-major ([count][features], [count][classes]).
    public func penultimateFeatures(_ images: [Float], count: Int) throws -> (features: [Float], logits: [Float]) {
        let size = spec.inputCount, d = spec.featureCount, k = spec.classCount
        precondition(images.count >= count * size, "fewer images than count")
        var features = [Float](), logits = [Float]()
        features.reserveCapacity(count * d)
        logits.reserveCapacity(count * k)
        let input = try backend.makeBuffer(count: maxBatch * size)
        var first = 0
        while first < count {
            let n = min(maxBatch, count - first)
            try backend.upload(Array(images[(first * size)..<((first + n) * size)]), to: input, offset: 0)
            forward(input, batch: n)
            features += try backend.download(pooled, offset: 0, count: n * d)
            logits += try backend.download(self.logits, offset: 0, count: n * k)
            first += n
        }
        return (features, logits)
    }
}
