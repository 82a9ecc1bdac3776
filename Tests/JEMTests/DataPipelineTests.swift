import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// TrainingData (the per-iteration batch producer) and Augmentation (pad/crop/flip/noise):
/// determinism, stream coverage, the validation/labelled split, and what each augmentation does.
final class DataPipelineTests: XCTestCase {
    // MARK: Fixtures

    /// `count` images whose pixel 0 of channel 0 is the image id `i` (float32 storage, so every
    /// id survives), the rest a pattern; labels `label(i)`.
    static func idImages(count: Int, channels: Int = 1, height: Int = 8, width: Int = 8,
                         label: (Int) -> Int32 = { Int32($0 % 10) }) -> ImageSet {
        let size = channels * height * width
        var pixels = [Float](repeating: 0, count: count * size)
        for i in 0..<count {
            for j in 0..<size { pixels[i * size + j] = Float((i * 7 + j * 3) % 23) / 23 - 0.5 }
            pixels[i * size] = Float(i)
        }
        return ImageSet(channels: channels, height: height, width: width, count: count, pixels: .float32(pixels),
                        labels: (0..<count).map(label))
    }

    /// The image ids (pixel 0) of every image in a batch of `ImageSet.idImages`.
    static func ids(_ batch: [Float], imageSize: Int) -> [Int] {
        stride(from: 0, to: batch.count, by: imageSize).map { Int(batch[$0]) }
    }

    /// A pattern with no symmetry (so mirrors and shifts are visible).
    static func patternImages(count: Int, channels: Int, height: Int, width: Int) -> [Float] {
        let size = channels * height * width
        return (0..<(count * size)).map { j in
            let i = j / size, c = (j % size) / (height * width), y = (j % (height * width)) / width, x = j % width
            return Float((i * 31 + c * 17 + y * 11 + x * 5 + x * y) % 97) / 48.5 - 1
        }
    }

    func apply(_ augmentation: Augmentation, _ images: [Float], count: Int, channels: Int, height: Int, width: Int,
               seed: UInt64 = 3, stream: UInt64 = 5, noiseStream: UInt64 = 6) -> [Float] {
        var out = images
        out.withUnsafeMutableBufferPointer { buf in
            augmentation.apply(buf.baseAddress!, count: count, channels: channels, height: height, width: width,
                               seed: seed, stream: stream, noiseStream: noiseStream)
        }
        return out
    }

    func assertSameBatch(_ a: TrainingBatch, _ b: TrainingBatch, _ message: String,
                         file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.px.map(\.bitPattern), b.px.map(\.bitPattern), "px: " + message, file: file, line: line)
        XCTAssertEqual(a.labeled.map(\.bitPattern), b.labeled.map(\.bitPattern), "labeled: " + message,
                       file: file, line: line)
        XCTAssertEqual(a.labels, b.labels, "labels: " + message, file: file, line: line)
    }

    // MARK: TrainingData

    func testBatchesArePureFunctionsOfSeedAndIteration() {
        let set = DataThroughput.syntheticImages(count: 120, channels: 3, height: 10, width: 12)
        func make(seed: UInt64) -> TrainingData {
            TrainingData(images: set, labeledIndices: Array(stride(from: 0, to: 120, by: 2)), batchSize: 16,
                         seed: seed, augmentation: DataThroughput.paperAugmentation)
        }
        let data = make(seed: 9)
        let reference = (0..<12).map { data.make(iteration: $0) }
        for it in 0..<12 { assertSameBatch(data.make(iteration: it), reference[it], "make(\(it)) twice") }
        // Another instance with the same seed: the same batches, so a resumed run sees them too.
        let twin = make(seed: 9)
        for it in [11, 0, 5] { assertSameBatch(twin.make(iteration: it), reference[it], "fresh instance, \(it)") }
        // Through the prefetcher, in order (each call finds the batch prepared by the previous one)…
        let prefetched = make(seed: 9)
        for it in 0..<12 { assertSameBatch(prefetched.batch(iteration: it), reference[it], "batch(\(it)) in order") }
        // …and out of order (the prefetched batch is for the wrong iteration and must not be used).
        for it in [7, 3, 3, 11, 0, 8, 9, 2] {
            assertSameBatch(prefetched.batch(iteration: it), reference[it], "batch(\(it)) out of order")
        }
        // A different seed gives different batches.
        XCTAssertNotEqual(make(seed: 10).make(iteration: 0).px, reference[0].px)
        XCTAssertNotEqual(reference[0].px, reference[1].px)
    }

    func testPxStreamCoversEveryImageOncePerEpoch() {
        let set = Self.idImages(count: 40)
        let data = TrainingData(images: set, labeledIndices: Array(0..<40), batchSize: 8, seed: 4, augmentation: .none)
        XCTAssertEqual(data.iterationsPerEpoch, 5)
        var epochs: [[Int]] = []
        for epoch in 0..<3 {
            var seen: [Int] = []
            for position in 0..<5 {
                let it = epoch * 5 + position
                let batch = data.make(iteration: it)
                let ids = Self.ids(batch.px, imageSize: set.imageSize)
                XCTAssertEqual(ids, data.indices(iteration: it).px, "iteration \(it): the images are the indices' images")
                seen += ids
            }
            XCTAssertEqual(seen.sorted(), Array(0..<40), "epoch \(epoch) covers every image exactly once")
            epochs.append(seen)
        }
        XCTAssertNotEqual(epochs[0], epochs[1], "each epoch reshuffles")
        XCTAssertNotEqual(epochs[1], epochs[2])

        // A partial last batch is dropped: every image at most once, 35 of 37 used.
        let odd = TrainingData(images: Self.idImages(count: 37), labeledIndices: Array(0..<37), batchSize: 5, seed: 4,
                               augmentation: .none)
        XCTAssertEqual(odd.iterationsPerEpoch, 7)
        let used = (0..<7).flatMap { odd.indices(iteration: $0).px }
        XCTAssertEqual(Set(used).count, 35)
        XCTAssertTrue(used.allSatisfy { (0..<37).contains($0) })
    }

    func testLabelledStreamUsesOnlyLabeledIndices() {
        let set = Self.idImages(count: 60, label: { Int32($0 % 6) })
        let labeled = [1, 4, 9, 10, 22, 23, 30, 31, 40, 47, 55, 59]
        let data = TrainingData(images: set, labeledIndices: labeled, batchSize: 4, seed: 8, augmentation: .none)
        var cycle: [Int] = []
        for it in 0..<30 {
            let batch = data.make(iteration: it)
            let ids = Self.ids(batch.labeled, imageSize: set.imageSize)
            XCTAssertEqual(ids, data.indices(iteration: it).labeled)
            XCTAssertTrue(ids.allSatisfy(labeled.contains), "iteration \(it) used an unlabelled image: \(ids)")
            XCTAssertEqual(batch.labels, ids.map { Int32($0 % 6) }, "labels belong to the labelled images")
            cycle += ids
            if cycle.count == labeled.count {
                XCTAssertEqual(cycle.sorted(), labeled, "each cycle uses every labelled image once")
                cycle = []
            }
        }
        // The p(x) stream still uses every image.
        let px = Set((0..<15).flatMap { data.indices(iteration: $0).px })
        XCTAssertEqual(px, Set(0..<60))
    }

    func testDataSplitKeepsNLabelsPerClassAndDisjointValidation() {
        // 10 classes of unequal sizes; class 9 has only 2 images.
        let labels: [Int32] = (0..<300).map { i in i < 2 ? 9 : Int32(i % 9) }
        let set = Self.idImages(count: 300, label: { labels[$0] })
        let split = DataSplit(set, validCount: 50, labelsPerClass: 4, classCount: 10, seed: 21)
        XCTAssertEqual(split.valid.count, 50)
        XCTAssertEqual(split.train.count, 250)
        let trainIDs = Self.ids(split.train.subsetPixels(), imageSize: set.imageSize)
        let validIDs = Self.ids(split.valid.subsetPixels(), imageSize: set.imageSize)
        XCTAssertTrue(Set(trainIDs).isDisjoint(with: validIDs), "validation and train overlap")
        XCTAssertEqual((trainIDs + validIDs).sorted(), Array(0..<300))
        // Labels travel with their images.
        XCTAssertEqual(split.train.labels!, trainIDs.map { labels[$0] })

        var perClass = [Int](repeating: 0, count: 10)
        for i in split.labeledIndices { perClass[Int(split.train.labels![i])] += 1 }
        let available = (0..<10).map { k in split.train.labels!.filter { $0 == k }.count }
        for k in 0..<10 {
            XCTAssertEqual(perClass[k], min(4, available[k]), "class \(k)")
        }
        XCTAssertEqual(split.labeledIndices, split.labeledIndices.sorted())
        XCTAssertEqual(Set(split.labeledIndices).count, split.labeledIndices.count)

        // Without labelsPerClass every training image is labelled; the default hold-out is 10%.
        let full = DataSplit(set, validCount: nil, labelsPerClass: nil, classCount: 10, seed: 21)
        XCTAssertEqual(full.valid.count, 30)
        XCTAssertEqual(full.labeledIndices, Array(0..<270))
        // The split depends on the seed only.
        let again = DataSplit(set, validCount: 50, labelsPerClass: 4, classCount: 10, seed: 21)
        XCTAssertEqual(again.valid, split.valid)
        XCTAssertEqual(again.labeledIndices, split.labeledIndices)
        XCTAssertNotEqual(DataSplit(set, validCount: 50, labelsPerClass: 4, classCount: 10, seed: 22).valid, split.valid)
    }

    // MARK: Augmentation

    func testNoAugmentationIsTheIdentity() {
        let (n, c, h, w) = (9, 3, 11, 7)
        let images = Self.patternImages(count: n, channels: c, height: h, width: w)
        let none = Augmentation(padding: 0, horizontalFlip: false, noiseStd: 0)
        XCTAssertEqual(none, .none)
        XCTAssertEqual(apply(none, images, count: n, channels: c, height: h, width: w).map(\.bitPattern),
                       images.map(\.bitPattern))
        // Through TrainingData: exactly the [-1, 1]-scaled source images.
        let set = DataThroughput.syntheticImages(count: 20, channels: 3, height: 8, width: 8)
        let data = TrainingData(images: set, labeledIndices: Array(0..<20), batchSize: 5, seed: 1, augmentation: .none)
        let batch = data.make(iteration: 2)
        let (pxIndices, _) = data.indices(iteration: 2)
        XCTAssertEqual(batch.px, pxIndices.flatMap { set.image($0) })
    }

    func testFlipIsAnExactMirror() {
        let (n, c, h, w) = (32, 3, 5, 6)
        let images = Self.patternImages(count: n, channels: c, height: h, width: w)
        let out = apply(Augmentation(padding: 0, horizontalFlip: true, noiseStd: 0), images, count: n, channels: c,
                        height: h, width: w, seed: 11, stream: 12)
        let size = c * h * w
        var flipped = 0
        for i in 0..<n {
            let src = Array(images[(i * size)..<((i + 1) * size)]), dst = Array(out[(i * size)..<((i + 1) * size)])
            var mirror = src
            for k in 0..<c { for y in 0..<h { for x in 0..<w { mirror[(k * h + y) * w + x] = src[(k * h + y) * w + w - 1 - x] } } }
            let shouldFlip = Philox.block(seed: 11, stream: 12, index: UInt64(i)).2 & 1 == 1
            XCTAssertEqual(dst, shouldFlip ? mirror : src, "image \(i)")
            if shouldFlip { flipped += 1 }
        }
        XCTAssertTrue((8...24).contains(flipped), "about half the images flip: \(flipped) of \(n)")
    }

    /// Reflect padding of `pad` then the crop at (dy, dx), as torch's ReflectionPad2d + crop.
    static func reflectCrop(_ src: [Float], channels: Int, height h: Int, width w: Int, dy: Int, dx: Int) -> [Float] {
        func reflect(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i) }
        var out = src
        for k in 0..<channels { for y in 0..<h { for x in 0..<w {
            out[(k * h + y) * w + x] = src[(k * h + reflect(y + dy, h)) * w + reflect(x + dx, w)]
        } } }
        return out
    }

    func testCropStaysInsideTheReflectPaddedImage() {
        // A constant image stays constant whatever the crop and flip.
        let constant = [Float](repeating: 0.25, count: 16 * 3 * 32 * 32)
        let cropped = apply(DataThroughput.paperAugmentation.withNoise(0), constant, count: 16, channels: 3, height: 32,
                            width: 32)
        XCTAssertTrue(cropped.allSatisfy { $0 == 0.25 })

        // Every output is some reflect-padded crop (|dy|, |dx| <= pad), mirrored or not.
        let (n, c, h, w, pad) = (24, 2, 9, 10, 3)
        let images = Self.patternImages(count: n, channels: c, height: h, width: w)
        let out = apply(Augmentation(padding: pad, horizontalFlip: true, noiseStd: 0), images, count: n, channels: c,
                        height: h, width: w)
        let size = c * h * w
        var offsets = Set<[Int]>()
        for i in 0..<n {
            let src = Array(images[(i * size)..<((i + 1) * size)]), dst = Array(out[(i * size)..<((i + 1) * size)])
            var match: [Int]?
            search: for dy in -pad...pad { for dx in -pad...pad { for flip in [false, true] {
                var candidate = Self.reflectCrop(src, channels: c, height: h, width: w, dy: dy, dx: dx)
                if flip {
                    // The flip mirrors the output coordinate: out[x] = padded[w-1-x + dx].
                    let shifted = Self.reflectCrop(src, channels: c, height: h, width: w, dy: dy, dx: dx)
                    candidate = shifted
                    for k in 0..<c { for y in 0..<h { for x in 0..<w {
                        candidate[(k * h + y) * w + x] = shifted[(k * h + y) * w + w - 1 - x]
                    } } }
                }
                if candidate == dst { match = [dy, dx, flip ? 1 : 0]; break search }
            } } }
            XCTAssertNotNil(match, "image \(i) is not a reflect-padded crop within ±\(pad)")
            if let match { offsets.insert(match) }
        }
        XCTAssertGreaterThan(offsets.count, 8, "crops vary")

        // Padding larger than the image is clipped (8×8 with pad 10 keeps values from the image).
        let small = Self.patternImages(count: 4, channels: 1, height: 8, width: 8)
        let smallOut = apply(Augmentation(padding: 10, horizontalFlip: true, noiseStd: 0), small, count: 4, channels: 1,
                             height: 8, width: 8)
        for i in 0..<4 {
            let src = Set(small[(i * 64)..<((i + 1) * 64)])
            XCTAssertTrue(smallOut[(i * 64)..<((i + 1) * 64)].allSatisfy(src.contains))
        }
    }

    func testNoiseHasTheRequestedStd() {
        let (n, c, h, w) = (64, 3, 32, 32)
        for std: Float in [0.03, 0.2] {
            let out = apply(Augmentation(padding: 0, horizontalFlip: false, noiseStd: std),
                            [Float](repeating: 0, count: n * c * h * w), count: n, channels: c, height: h, width: w)
            let mean = out.reduce(0.0) { $0 + Double($1) } / Double(out.count)
            let variance = out.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(out.count - 1)
            XCTAssertEqual(mean, 0, accuracy: Double(std) * 0.01, "σ \(std)")
            XCTAssertEqual(variance.squareRoot(), Double(std), accuracy: Double(std) * 0.01, "σ \(std)")
            // The same numbers the backends draw: x[j] = σ · N(0,1)[noiseStream, j].
            for j in [0, 1, 2, 3, 4, 3071, 3072, 100_001] {
                XCTAssertEqual(out[j], std * Philox.normal(seed: 3, stream: 6, element: j), "element \(j)")
            }
        }
        // The noise is added after the crop and flip (so it is never shifted or mirrored).
        let images = Self.patternImages(count: 4, channels: 1, height: 8, width: 8)
        let both = apply(Augmentation(padding: 2, horizontalFlip: true, noiseStd: 0.1), images, count: 4, channels: 1,
                         height: 8, width: 8)
        let cropOnly = apply(Augmentation(padding: 2, horizontalFlip: true, noiseStd: 0), images, count: 4, channels: 1,
                             height: 8, width: 8)
        for j in 0..<both.count {
            XCTAssertEqual(both[j], cropOnly[j] + 0.1 * Philox.normal(seed: 3, stream: 6, element: j))
        }
    }

    func testFourLanePhiloxMatchesPhiloxBlock() {
        let seeds: [UInt64] = [0, 1234, 0xFFFF_FFFF_FFFF_FFFF, 0x8000_0001_7FFF_FFFF]
        let streams: [UInt64] = [0, RandomStream.perIteration(.dataNoise, iteration: 77, chain: 1), UInt64.max]
        let indices: [UInt64] = [0, 5, 0xFFFF_FFFE, 0xFFFF_FFFF_FFFF_FFFD, 1 << 40]  // carries into the high word, wraps
        for seed in seeds { for stream in streams { for index in indices {
            let w = Augmentation.philox4(seed: seed, stream: stream, index: index)
            for lane in 0..<4 {
                let b = Philox.block(seed: seed, stream: stream, index: index &+ UInt64(lane))
                XCTAssertEqual([w.0[lane], w.1[lane], w.2[lane], w.3[lane]], [b.0, b.1, b.2, b.3],
                               "seed \(seed) stream \(stream) index \(index) lane \(lane)")
            }
        } } }
        // addNoise at every alignment and length equals the element-wise definition.
        for start in [0, 1, 2, 3, 13, 64] {
            for count in [0, 1, 3, 4, 15, 16, 17, 33, 70] {
                var x = [Float](repeating: 0.5, count: count)
                x.withUnsafeMutableBufferPointer {
                    Augmentation.addNoise($0.baseAddress!, count: count, start: start, std: 0.25, seed: 9, stream: 4)
                }
                let expected = (0..<count).map { 0.5 + 0.25 * Philox.normal(seed: 9, stream: 4, element: start + $0) }
                XCTAssertEqual(x.map(\.bitPattern), expected.map(\.bitPattern), "start \(start) count \(count)")
            }
        }
    }

    // MARK: Pinned outputs

    /// FNV-1a over the bit patterns of a batch.
    static func fingerprint(_ batches: [TrainingBatch]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ v: UInt32) {
            for s in stride(from: 0, to: 32, by: 8) { h = (h ^ UInt64((v >> UInt32(s)) & 0xFF)) &* 0x100_0000_01B3 }
        }
        for b in batches {
            for v in b.px { mix(v.bitPattern) }
            for v in b.labeled { mix(v.bitPattern) }
            for v in b.labels { mix(UInt32(bitPattern: v)) }
        }
        return h
    }

    /// The batches of a few configurations, pinned before `TrainingData`/`Augmentation` were
    /// optimised: any speed-up must leave every bit of every batch as it was.
    func testPinnedBatchesAreBitIdentical() {
        struct Case {
            let name: String
            let set: ImageSet
            let labeled: [Int]
            let batch: Int
            let augmentation: Augmentation
            let expected: UInt64
            let firstValues: [Float]
        }
        let cifar = DataThroughput.syntheticImages(count: 300, channels: 3, height: 32, width: 32, seed: 5)
        let gray = DataThroughput.syntheticImages(count: 250, channels: 1, height: 28, width: 28, seed: 6)
        let odd = Self.idImages(count: 50, channels: 3, height: 9, width: 13)
        let tiny = DataThroughput.syntheticImages(count: 40, channels: 2, height: 8, width: 8, seed: 7)
        let cases = [
            Case(name: "cifar", set: cifar, labeled: Array(0..<300), batch: 32, augmentation: DataThroughput.paperAugmentation,
                 expected: 0x494f_28b9_b3de_3175,
                 firstValues: [0.07015369, -0.6595333, -0.024151854, 0.84411585, 0.77975506, -0.84894407]),
            Case(name: "gray", set: gray, labeled: Array(stride(from: 3, to: 250, by: 3)), batch: 16,
                 augmentation: Augmentation(padding: 2, horizontalFlip: false, noiseStd: 0.03), expected: 0x9906_ca84_0565_2fc3,
                 firstValues: [-0.7376895, -0.49482742, 0.46212268, 0.26372373, 0.92547756, -0.9249571]),
            Case(name: "odd float32", set: odd, labeled: Array(0..<50), batch: 8,
                 augmentation: Augmentation(padding: 4, horizontalFlip: true, noiseStd: 0.05), expected: 0xe07f_fb41_eb0d_5f22,
                 firstValues: [-0.21598436, -0.35994965, -0.42487943, 0.44081825, -0.1268612, 0.015001934]),
            Case(name: "tiny pad > side", set: tiny, labeled: Array(0..<40), batch: 8,
                 augmentation: Augmentation(padding: 10, horizontalFlip: true, noiseStd: 0), expected: 0x241a_bbc5_74cd_f1ef,
                 firstValues: [-0.84313726, 0.28627455, 0.654902, 0.96862745, -0.8745098, -0.1607843]),
        ]
        for c in cases {
            let data = TrainingData(images: c.set, labeledIndices: c.labeled, batchSize: c.batch, seed: 1234,
                                    augmentation: c.augmentation)
            let batches = [0, 1, 7, 40, 123].map { data.make(iteration: $0) }
            let print = "\(c.name): 0x\(String(Self.fingerprint(batches), radix: 16)) "
                + "\(batches[0].px.prefix(4).map { "\($0)" }) \(batches[2].labeled.suffix(2).map { "\($0)" })"
            XCTAssertEqual(Self.fingerprint(batches), c.expected, print)
            if !c.firstValues.isEmpty {
                XCTAssertEqual(Array(batches[0].px.prefix(4)) + Array(batches[2].labeled.suffix(2)), c.firstValues, c.name)
            }
        }
    }

    // MARK: Throughput

    func testThroughputMeasureRuns() {
        let r = DataThroughput.measure(imageCount: 2000, batchSize: 64, iterations: 10)
        XCTAssertEqual(r.images, 2 * 64 * 10)
        XCTAssertGreaterThan(r.imagesPerSecond, 0)
        print("data throughput (small set): \(r)")
    }

    /// The figure: CIFAR-10 size (50,000 images 3×32×32 uint8), paper augmentation.
    /// Printed only (speed targets live in Benchmarks/); runs with JEM_TEST_LONG=1.
    func testThroughputCIFARSize() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["JEM_TEST_LONG"] != nil, "set JEM_TEST_LONG=1")
        for batch in [64, 128] {
            print("data throughput (CIFAR-10 size): \(DataThroughput.measure(batchSize: batch, iterations: 300))")
        }
    }
}

private extension ImageSet {
    /// All pixels as floats (float32 storage as stored, uint8 scaled).
    func subsetPixels() -> [Float] { images(Array(0..<count)) }

    func images(_ indices: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: indices.count * imageSize)
        out.withUnsafeMutableBufferPointer { images(indices, into: $0.baseAddress!) }
        return out
    }
}

private extension Augmentation {
    func withNoise(_ std: Float) -> Augmentation {
        Augmentation(padding: padding, horizontalFlip: horizontalFlip, noiseStd: std)
    }
}
