import Foundation
import JEMBackend

extension Scorer {
    /// `score(set, noise:)` over the ranks of a data-parallel job: each rank scores its contiguous run
    /// of whole batches (so every batch is computed exactly as one process computes it) and the
    /// per-example results are all-gathered in image order. Every rank returns the whole set's scores.
    public func score(_ set: ImageSet, noise: TestNoise, communicator: any Communicator) throws -> ExampleScores {
        guard communicator.isDistributed else { return try score(set, noise: noise) }
        let k = net.spec.classCount, width = k + 3
        let ranges = (0..<communicator.size).map {
            chunkedSplit(count: set.count, chunk: batchSize, rank: $0, size: communicator.size)
        }
        let mine = try score(set, noise: noise, range: ranges[communicator.rank])
        var rows = [Float]()
        rows.reserveCapacity(mine.count * width)
        for i in 0..<mine.count {
            rows += mine.logits[(i * k)..<((i + 1) * k)]
            rows += [mine.lse[i], mine.maxProbability[i], mine.gradientNorm[i]]
        }
        let all = try communicator.allgather(rows, counts: ranges.map { $0.count * width })
        var logits = [Float](), lse = [Float](), maxProbability = [Float](), gradientNorm = [Float]()
        logits.reserveCapacity(set.count * k)
        for i in 0..<set.count {
            let row = all[(i * width)..<((i + 1) * width)]
            logits += row.prefix(k)
            lse.append(row[row.startIndex + k])
            maxProbability.append(row[row.startIndex + k + 1])
            gradientNorm.append(row[row.startIndex + k + 2])
        }
        return ExampleScores(count: set.count, classCount: k, logits: logits, labels: set.labels, lse: lse,
                             maxProbability: maxProbability, gradientNorm: gradientNorm)
    }
}
