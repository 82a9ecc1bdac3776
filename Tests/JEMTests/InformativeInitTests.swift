import XCTest
@testable import JEM
@testable import JEMBackend

/// JEM++'s per-class Gaussian initialisation of the SGLD chains.
final class InformativeInitTests: XCTestCase {
    /// Two classes of 3-pixel images with known means and correlated pixels.
    func fixture() -> ImageSet {
        var pixels = [Float](), labels = [Int32]()
        let random = HostRandom(seed: 3, stream: 99)
        for i in 0..<400 {
            let c = i % 2
            let a = Float(random.uniform(2 * i)) - 0.5, b = Float(random.uniform(2 * i + 1)) - 0.5
            // class 0 around (-0.5, 0, 0.3), class 1 around (0.4, -0.2, 0); pixel 2 tracks pixel 0.
            let mean: [Float] = c == 0 ? [-0.5, 0, 0.3] : [0.4, -0.2, 0]
            pixels += [mean[0] + 0.4 * a, mean[1] + 0.2 * b, mean[2] + 0.4 * a]
            labels.append(Int32(c))
        }
        return ImageSet(channels: 1, height: 1, width: 3, count: 400, pixels: .float32(pixels), labels: labels)
    }

    /// Many draws of one class reproduce that class's mean and covariance (the factor
    /// (X - mu)/sqrt(n-1) has covariance exactly Sigma), plus the 1e-4 jitter on the diagonal.
    func testDrawsMatchTheClassMeanAndCovariance() throws {
        let set = fixture()
        let initial = try InformativeInit(images: set, indices: Array(0..<set.count), classCount: 2, seed: 1)
        XCTAssertEqual(initial.countPerClass, [200, 200])
        for c in 0..<2 {
            let members = (0..<set.count).filter { set.labels![$0] == Int32(c) }
            let data = members.map { set.image($0).map(Double.init) }
            let mean = (0..<3).map { j in data.reduce(0) { $0 + $1[j] } / Double(data.count) }
            func cov(_ rows: [[Double]], _ m: [Double], _ i: Int, _ j: Int) -> Double {
                rows.reduce(0) { $0 + ($1[i] - m[i]) * ($1[j] - m[j]) } / Double(rows.count - 1)
            }
            let n = 20000
            let draws = initial.sample(classes: Array(repeating: c, count: n), seed: 7, stream: 5)
            let rows = (0..<n).map { r in (0..<3).map { Double(draws[r * 3 + $0]) } }
            let drawMean = (0..<3).map { j in rows.reduce(0) { $0 + $1[j] } / Double(n) }
            for j in 0..<3 {
                XCTAssertEqual(drawMean[j], mean[j], accuracy: 0.01, "class \(c) pixel \(j) mean")
                for k in 0..<3 {
                    let expected = cov(data, mean, j, k) + (j == k ? 1e-4 : 0)
                    XCTAssertEqual(cov(rows, drawMean, j, k), expected, accuracy: 0.003, "class \(c) cov[\(j)][\(k)]")
                }
            }
        }
    }

    func testDrawsAreDeterministicClampedAndRowAddressed() throws {
        let set = fixture()
        let initial = try InformativeInit(images: set, indices: Array(0..<set.count), classCount: 2, seed: 1)
        let a = initial.sample(classes: [0, 1, 1], seed: 4, stream: 8)
        XCTAssertEqual(a, initial.sample(classes: [0, 1, 1], seed: 4, stream: 8))
        XCTAssertNotEqual(a, initial.sample(classes: [0, 1, 1], seed: 5, stream: 8))
        // Row 2 alone, addressed as row 2, is the same image as in the batch.
        XCTAssertEqual(Array(a[6..<9]), initial.sample(classes: [1], seed: 4, stream: 8, firstRow: 2))
        let wide = initial.sample(classes: Array(repeating: 0, count: 500), seed: 4, stream: 9)
        XCTAssertTrue(wide.allSatisfy { $0 >= -1 && $0 <= 1 })
    }

    func testUnlabelledDataFitsOneGaussianAndTooFewImagesIsAnError() throws {
        let set = fixture().withLabels(nil)
        let initial = try InformativeInit(images: set, indices: Array(0..<set.count), classCount: 2, seed: 1)
        XCTAssertEqual(initial.classCount, 1)
        XCTAssertEqual(initial.countPerClass, [400])
        XCTAssertThrowsError(try InformativeInit(images: fixture(), indices: [0, 1, 2], classCount: 2, seed: 1)) {
            XCTAssertTrue("\($0)".contains("class 1 has 1 training images"), "\($0)")
        }
    }

    /// The buffer starts from the Gaussians (class blocks), and re-initialised chains restart from
    /// them rather than from U(-1,1).
    func testReplayBufferStartsAndRestartsFromTheGaussians() throws {
        let set = fixture()
        let initial = try InformativeInit(images: set, indices: Array(0..<set.count), classCount: 2, seed: 1)
        let backend = CPUBackend()
        let buffer = try ReplayBuffer(size: 10, rowSize: 3, backend: backend, seed: 2, start: ChainStart(gaussians: initial))
        let rows = try backend.download(buffer.storage)
        // Rows 0..<5 belong to class 0 (pixel 0 near -0.5), rows 5..<10 to class 1 (near 0.4).
        for r in 0..<5 { XCTAssertLessThan(rows[r * 3], 0, "row \(r)") }
        for r in 5..<10 { XCTAssertGreaterThan(rows[r * 3], 0, "row \(r)") }
        let draw = buffer.draw(batch: 8, seed: 2, iteration: 0, reinitFrequency: 1)
        let started = try startChains(buffer, draw, classes: [1, 1, 1, 1, 0, 0, 0, 0], backend: backend, seed: 2)
        for r in 0..<8 { XCTAssertEqual(started[r * 3] > 0, r < 4, "row \(r) restarts from its class") }
    }

    /// `--buffer-init mixed`: every row of the initial buffer and every restart is exactly what the
    /// uniform or the informative buffer (same seed) would hold there, from the Gaussians in about
    /// the requested share; rows not re-initialised keep their buffer row.
    func testMixedBufferDrawsEachStartFromOneOfTheTwo() throws {
        let set = fixture()
        let initial = try InformativeInit(images: set, indices: Array(0..<set.count), classCount: 2, seed: 1)
        let backend = CPUBackend()
        func buffer(_ share: Float) throws -> ReplayBuffer {
            try ReplayBuffer(size: 400, rowSize: 3, backend: backend, seed: 5,
                             start: ChainStart(gaussians: share > 0 ? initial : nil, informativeShare: share))
        }
        let uniform = try buffer(0), informative = try buffer(1), mixed = try buffer(0.25)
        func rows(_ values: [Float]) -> [[Float]] { (0..<(values.count / 3)).map { Array(values[($0 * 3)..<($0 * 3 + 3)]) } }
        func fromGaussians(_ got: [Float], _ u: [Float], _ i: [Float]) -> [Bool] {
            zip(rows(got), zip(rows(u), rows(i))).map { row, pair in
                XCTAssertTrue(row == pair.0 || row == pair.1, "row \(row) is neither start")
                return row == pair.1 && row != pair.0
            }
        }
        let initialShare = fromGaussians(try backend.download(mixed.storage), try backend.download(uniform.storage),
                                         try backend.download(informative.storage))
        // 400 rows at p = 0.25: 100 expected, standard deviation 8.7.
        XCTAssertEqual(Double(initialShare.filter { $0 }.count), 100, accuracy: 35)

        let draw = mixed.draw(batch: 64, seed: 5, iteration: 3, reinitFrequency: 0.5)
        let started = try startChains(mixed, draw, classes: nil, backend: backend)
        let startedU = try startChains(uniform, draw, classes: nil, backend: backend)
        let startedI = try startChains(informative, draw, classes: nil, backend: backend)
        let kept = try backend.download(mixed.storage)
        let restartShare = fromGaussians(started, startedU, startedI)
        for r in 0..<64 where draw.reinit[r] == 0 {
            XCTAssertEqual(Array(started[(r * 3)..<(r * 3 + 3)]), Array(kept[(Int(draw.indices[r]) * 3)...].prefix(3)))
        }
        let restarts = (0..<64).filter { draw.reinit[$0] != 0 }
        let fromGaussiansCount = restarts.filter { restartShare[$0] }.count
        XCTAssertGreaterThan(restarts.count, 16)
        XCTAssertGreaterThan(fromGaussiansCount, 0, "some restarts come from the Gaussians")
        XCTAssertLessThan(fromGaussiansCount, restarts.count, "some restarts come from U(-1,1)")
    }

    func startChains(_ buffer: ReplayBuffer, _ draw: ReplayBuffer.Draw, classes: [Int32]?, backend: CPUBackend,
                     seed: UInt64 = 5) throws -> [Float] {
        let n = draw.indices.count
        let indices = try backend.makeBuffer(count: n, type: .int32), mask = try backend.makeBuffer(count: n, type: .int32)
        let out = try backend.makeBuffer(count: n * buffer.rowSize)
        try buffer.startChains(draw, classes: classes, seed: seed, iteration: 3, chain: 0, indices: indices,
                               reinitMask: mask, out: out)
        return try backend.download(out)
    }
}
