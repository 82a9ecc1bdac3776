import XCTest
@testable import JEM
@testable import JEMBackend

/// Fresh chain starts (`jem-gpu sample`, `sample-quality`, x_init.png) for the three --buffer-init settings.
final class ChainStartTests: XCTestCase {
    func gaussians() throws -> InformativeInit {
        var pixels = [Float]()
        for i in 0..<(40 * 4) {
            let mean: Float = (i / 4) % 2 == 0 ? -0.5 : 0.5
            pixels.append(mean + 0.01 * Float(i % 7))
        }
        let set = ImageSet(channels: 1, height: 2, width: 2, count: 40, pixels: .float32(pixels),
                           labels: (0..<40).map { Int32($0 % 2) })
        return try InformativeInit(images: set, indices: Array(0..<40), classCount: 2, seed: 1)
    }

    let streams = ChainStart.Streams(uniform: 11, gaussian: 12, coin: 13)

    /// Uniform and informative starts are exactly the draws they were before mixing existed: U(-1,1)
    /// pixels in stream order, and the Gaussians' rows.
    func testUniformAndInformativeStartsAreTheirOwnDraws() throws {
        let g = try gaussians(), classes = [0, 1, 1, 0, 1]
        let uniform = ChainStart.uniform.draw(classes: classes, size: 4, seed: 3, streams: streams)
        let random = HostRandom(seed: 3, stream: 11)
        XCTAssertEqual(uniform, (0..<20).map { 2 * random.uniform($0) - 1 })
        let informative = ChainStart(gaussians: g).draw(classes: classes, size: 4, seed: 3, streams: streams)
        XCTAssertEqual(informative, g.sample(classes: classes, seed: 3, stream: 12))
        XCTAssertEqual(ChainStart.uniform.name, "uniform")
        XCTAssertEqual(ChainStart(gaussians: g).name, "informative")
        XCTAssertEqual(ChainStart(.mixed, mixedShare: 0.25, gaussians: g).name, "mixed 0.25")
        XCTAssertEqual(ChainStart(.uniform, mixedShare: 0.25, gaussians: g).name, "uniform")
    }

    /// A mixed start takes each row from one of the two, the Gaussian rows in about the share.
    func testMixedStartsTakeEachRowFromOneOfTheTwo() throws {
        let g = try gaussians(), classes = (0..<400).map { $0 % 2 }
        let uniform = ChainStart.uniform.draw(classes: classes, size: 4, seed: 3, streams: streams)
        let informative = ChainStart(gaussians: g).draw(classes: classes, size: 4, seed: 3, streams: streams)
        let mixed = ChainStart(.mixed, mixedShare: 0.3, gaussians: g).draw(classes: classes, size: 4, seed: 3,
                                                                           streams: streams)
        var fromGaussians = 0
        for r in 0..<400 {
            let row = Array(mixed[(4 * r)..<(4 * r + 4)])
            let u = Array(uniform[(4 * r)..<(4 * r + 4)]), i = Array(informative[(4 * r)..<(4 * r + 4)])
            XCTAssertTrue(row == u || row == i, "row \(r)")
            if row == i { fromGaussians += 1 }
        }
        // 400 rows at p = 0.3: 120 expected, standard deviation 9.2.
        XCTAssertEqual(Double(fromGaussians), 120, accuracy: 40)
    }
}
