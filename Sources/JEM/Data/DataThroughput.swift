import Foundation
import JEMBackend
import JEMSupport

/// How fast the input pipeline produces training batches on the host: the figure behind the
/// "≥ 20,000 CIFAR-size images/s with augmentation on 2 cores" target of the datasets issue.
///
/// It times `TrainingData.make(iteration:)` (the work the prefetch thread does for every
/// iteration: two index streams, uint8 → [-1, 1] conversion, pad + crop + flip + noise) on a
/// synthetic uint8 image set of the requested shape, so no dataset file is needed.
public enum DataThroughput {
    public struct Result: Sendable, CustomStringConvertible {
        /// Images produced (the p(x) batch and the labelled batch of every timed iteration).
        public let images: Int
        public let iterations: Int
        public let seconds: Double
        /// CPU time the process used meanwhile (all threads): a figure that other load on the
        /// machine disturbs less than `seconds`.
        public let cpuSeconds: Double
        /// Worker threads the augmentation may use (the machine's cores).
        public let threads: Int
        public let shape: [Int]
        public let batchSize: Int

        public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }
        public var iterationsPerSecond: Double { seconds > 0 ? Double(iterations) / seconds : 0 }
        public var cpuMicrosecondsPerImage: Double { images > 0 ? cpuSeconds / Double(images) * 1e6 : 0 }

        /// e.g. `3×32×32 uint8, batch 64 (+64 labelled): 27323 images/s (213.5 it/s, 38400 images
        /// in 1.405 s, 72.1 µs CPU per image) on 2 threads`
        public var description: String {
            String(format: "%@ uint8, batch %d (+%d labelled): %.0f images/s (%.1f it/s, %d images in %.3f s, %.1f µs CPU per image) on %d thread%@",
                   shape.map(String.init).joined(separator: "×"), batchSize, batchSize, imagesPerSecond,
                   iterationsPerSecond, images, seconds, cpuMicrosecondsPerImage, threads, threads == 1 ? "" : "s")
        }
    }

    /// The augmentation of the paper's CIFAR runs: pad 4 (reflect) + random crop + flip + σ 0.03 noise.
    public static let paperAugmentation = Augmentation(padding: 4, horizontalFlip: true, noiseStd: 0.03)

    /// A deterministic uint8 image set (labels `i % classCount`) for timing.
    public static func syntheticImages(count: Int, channels: Int = 3, height: Int = 32, width: Int = 32,
                                       classCount: Int = 10, seed: UInt64 = 1) -> ImageSet {
        let size = channels * height * width
        var pixels = [UInt8](repeating: 0, count: count * size)
        pixels.withUnsafeMutableBufferPointer { buf in
            var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
            for i in 0..<buf.count {
                // xorshift64*: cheap, deterministic, and not constant (so copies cannot be skipped).
                state ^= state >> 12; state ^= state << 25; state ^= state >> 27
                buf[i] = UInt8(truncatingIfNeeded: (state &* 0x2545_F491_4F6C_DD1D) >> 56)
            }
        }
        let labels = (0..<count).map { Int32($0 % max(classCount, 1)) }
        return ImageSet(channels: channels, height: height, width: width, count: count, pixels: .uint8(pixels),
                        labels: labels)
    }

    /// Times `iterations` calls of `TrainingData.make(iteration:)` (after one untimed warm-up
    /// call) over `imageCount` synthetic images of `channels × height × width`, every image
    /// labelled. The default shape and augmentation are CIFAR-10's.
    public static func measure(imageCount: Int = 50_000, channels: Int = 3, height: Int = 32, width: Int = 32,
                               batchSize: Int = 64, iterations: Int = 200,
                               augmentation: Augmentation = paperAugmentation, seed: UInt64 = 1) -> Result {
        precondition(imageCount >= batchSize && batchSize > 0 && iterations > 0, "bad throughput settings")
        let set = syntheticImages(count: imageCount, channels: channels, height: height, width: width, seed: seed)
        let data = TrainingData(images: set, labeledIndices: Array(0..<imageCount), batchSize: batchSize, seed: seed,
                                augmentation: augmentation)
        var checksum: Float = 0
        checksum += data.make(iteration: 0).px[0]
        let start = DispatchTime.now().uptimeNanoseconds, cpuStart = processCPUSeconds()
        for it in 1...iterations {
            let batch = data.make(iteration: it)
            checksum += batch.px[it % batch.px.count] + batch.labeled[0]
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let cpuSeconds = processCPUSeconds() - cpuStart
        // Keeps the batches observable so the optimiser cannot drop them.
        if checksum.isNaN { FileHandle.standardError.write(Data("NaN in a synthetic batch\n".utf8)) }
        return Result(images: 2 * batchSize * iterations, iterations: iterations, seconds: seconds,
                      cpuSeconds: cpuSeconds, threads: Parallel.threads, shape: [channels, height, width],
                      batchSize: batchSize)
    }

    static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
