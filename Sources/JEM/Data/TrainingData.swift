import Dispatch
import Foundation
import JEMBackend
import JEMSupport

/// How a dataset's training images are split and which of them carry labels.
public struct DataSplit: Sendable {
    /// Images for p(x) and, where labelled, p(y|x).
    public let train: ImageSet
    /// Held-out images (best-checkpoint selection).
    public let valid: ImageSet
    /// Indices into `train` whose labels the classifier may use.
    public let labeledIndices: [Int]

    /// Holds out `validCount` shuffled training images (nil: 5000 for 50k+ sets, else 10%), and
    /// with `labelsPerClass` keeps only the first N shuffled labels of each class, as the
    /// official `--labels_per_class` does.
    public init(_ all: ImageSet, validCount: Int?, labelsPerClass: Int?, classCount: Int, seed: UInt64) {
        let order = HostRandom(seed: seed, stream: RandomStream.validSplit.id()).permutation(all.count)
        let nValid = min(validCount ?? (all.count >= 50_000 ? 5000 : all.count / 10), max(all.count - 1, 0))
        valid = all.subset(Array(order[..<nValid]))
        train = all.subset(Array(order[nValid...]))
        if let labelsPerClass, let labels = train.labels {
            var taken = [Int](repeating: 0, count: classCount)
            var chosen: [Int] = []
            for i in HostRandom(seed: seed, stream: RandomStream.labelSubset.id()).permutation(train.count) {
                let y = Int(labels[i])
                if y >= 0 && y < classCount && taken[y] < labelsPerClass {
                    taken[y] += 1
                    chosen.append(i)
                }
            }
            labeledIndices = chosen.sorted()
        } else {
            labeledIndices = Array(0..<train.count)
        }
    }
}

/// Produces the real batches of every iteration: a p(x) batch from an epoch-wise shuffle of all
/// training images, and a labelled batch from its own endless reshuffled cycle over the labelled
/// images (two streams, as the official loaders). Both drop the last partial batch.
///
/// `batch(iteration:)` is a pure function of (seed, iteration), so a resumed run sees exactly
/// the batches an uninterrupted one would. The next iteration's batch is prepared on a
/// background thread while the device computes the current one.
public final class TrainingData: @unchecked Sendable {
    public let images: ImageSet
    public let labeledIndices: [Int]
    public let batchSize: Int
    public let seed: UInt64
    public let augmentation: Augmentation
    public var iterationsPerEpoch: Int { images.count / batchSize }
    var labeledIterationsPerCycle: Int { labeledIndices.count / batchSize }

    private let queue = DispatchQueue(label: "jem.prefetch")
    private let lock = NSLock()
    private var pending: (iteration: Int, done: DispatchSemaphore)?
    private var ready: (iteration: Int, batch: TrainingBatch)?
    private let orders = IndexOrderCache()

    public init(images: ImageSet, labeledIndices: [Int], batchSize: Int, seed: UInt64, augmentation: Augmentation) {
        precondition(images.count >= batchSize && labeledIndices.count >= batchSize,
                     "fewer images than one batch (callers validate --batch-size first)")
        self.images = images
        self.labeledIndices = labeledIndices
        self.batchSize = batchSize
        self.seed = seed
        self.augmentation = augmentation
    }

    /// The batch of `iteration`, taken from the prefetcher when it already made it; then starts
    /// preparing iteration + 1.
    public func batch(iteration: Int) -> TrainingBatch {
        lock.lock()
        let waiting = pending
        lock.unlock()
        if let waiting, waiting.iteration == iteration { waiting.done.wait() }
        lock.lock()
        var result: TrainingBatch? = nil
        if let ready, ready.iteration == iteration { result = ready.batch }
        lock.unlock()
        let batch = result ?? make(iteration: iteration)
        prefetch(iteration + 1)
        return batch
    }

    private func prefetch(_ iteration: Int) {
        let done = DispatchSemaphore(value: 0)
        lock.lock()
        pending = (iteration, done)
        lock.unlock()
        queue.async { [self] in
            let batch = make(iteration: iteration)
            lock.lock()
            ready = (iteration, batch)
            lock.unlock()
            done.signal()
        }
    }

    /// Which training images feed iteration `iteration`: (p(x) indices, labelled indices).
    public func indices(iteration: Int) -> (px: [Int], labeled: [Int]) {
        let epoch = iteration / iterationsPerEpoch, position = iteration % iterationsPerEpoch
        let order = orders.order(.px, epoch) {
            HostRandom(seed: seed, stream: RandomStream.dataOrder.id(UInt64(epoch))).permutation(images.count)
        }
        let px = Array(order[(position * batchSize)..<((position + 1) * batchSize)])
        let cycle = iteration / labeledIterationsPerCycle, slot = iteration % labeledIterationsPerCycle
        let labeledOrder = orders.order(.labeled, cycle) {
            HostRandom(seed: seed, stream: RandomStream.labeledOrder.id(UInt64(cycle))).permutation(labeledIndices.count)
        }
        let labeled = labeledOrder[(slot * batchSize)..<((slot + 1) * batchSize)].map { labeledIndices[$0] }
        return (px, labeled)
    }

    /// Builds the batch of `iteration` (no prefetching; deterministic).
    ///
    /// Both batches are made in one pass split over the cores: each image is converted to
    /// [-1, 1] into a per-thread scratch buffer, then cropped/flipped into the batch and noised
    /// there (`Augmentation.transform`), exactly as `Augmentation.apply` on the loaded batch.
    public func make(iteration: Int) -> TrainingBatch {
        let (pxIndices, labeledIndices) = indices(iteration: iteration)
        let size = images.imageSize, n = batchSize * size
        var labeled: [Float] = []
        let px = [Float](unsafeUninitializedCapacity: n) { pxBuffer, pxCount in
            labeled = [Float](unsafeUninitializedCapacity: n) { labeledBuffer, labeledCount in
                fill(px: pxBuffer.baseAddress!, pxIndices, labeled: labeledBuffer.baseAddress!, labeledIndices,
                     iteration: iteration)
                labeledCount = n
            }
            pxCount = n
        }
        let labels = images.labels.map { l in labeledIndices.map { l[$0] } } ?? [Int32](repeating: 0, count: batchSize)
        return TrainingBatch(px: px, labeled: labeled, labels: labels)
    }

    private func fill(px: UnsafeMutablePointer<Float>, _ pxIndices: [Int], labeled: UnsafeMutablePointer<Float>,
                      _ labeledIndices: [Int], iteration: Int) {
        let (c, h, w, size, b) = (images.channels, images.height, images.width, images.imageSize, batchSize)
        let augmentation = augmentation, images = images, seed = seed
        let moves = augmentation.movesPixels(height: h, width: w)
        let streams = (0...1).map { RandomStream.perIteration(.augmentation, iteration: iteration, chain: $0) }
        let noiseStreams = (0...1).map { RandomStream.perIteration(.dataNoise, iteration: iteration, chain: $0) }
        let outputs = UnsafeSendable((px, labeled))
        Parallel.forEachChunk(2 * b, minimumPerChunk: 8, chunksPerThread: 8) { rows in
            let scratch = Augmentation.Scratch(imageSize: size, width: w)
            defer { scratch.deallocate() }
            for k in rows {
                let which = k / b, r = k % b
                let source = which == 0 ? pxIndices[r] : labeledIndices[r]
                let out = (which == 0 ? outputs.value.0 : outputs.value.1) + r * size
                if moves {
                    images.image(source, into: scratch.source)
                    augmentation.transform(scratch.source, into: out, row: r, channels: c, height: h, width: w, seed: seed,
                                           stream: streams[which], noiseStream: noiseStreams[which],
                                           columns: scratch.columns)
                } else {
                    images.image(source, into: out)
                    if augmentation.noiseStd > 0 {
                        Augmentation.addNoise(out, count: size, start: r * size, std: augmentation.noiseStd, seed: seed,
                                              stream: noiseStreams[which])
                    }
                }
            }
        }
    }
}

/// The permutations of the two index streams, kept for the epochs (cycles) in use so that an
/// iteration does not redraw a whole-dataset shuffle. Shared by the caller's thread and the
/// prefetch thread; holds at most two orders per stream (the current one and the next).
final class IndexOrderCache: @unchecked Sendable {
    enum Stream { case px, labeled }

    private let lock = NSLock()
    private var px: [(key: Int, order: [Int])] = []
    private var labeled: [(key: Int, order: [Int])] = []

    func order(_ stream: Stream, _ key: Int, make: () -> [Int]) -> [Int] {
        lock.lock()
        let cached = (stream == .px ? px : labeled).first { $0.key == key }?.order
        lock.unlock()
        if let cached { return cached }
        let order = make()
        lock.lock()
        var list = stream == .px ? px : labeled
        if !list.contains(where: { $0.key == key }) {
            list.append((key, order))
            if list.count > 2 { list.removeFirst() }
        }
        if stream == .px { px = list } else { labeled = list }
        lock.unlock()
        return order
    }
}
