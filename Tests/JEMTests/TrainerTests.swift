import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

final class TrainerTests: XCTestCase {
    let cpu = CPUBackend()

    func tinyConfig() -> TrainingConfig {
        var c = TrainingConfig()
        c.model = "wrn-10-1"
        c.batchSize = 4
        c.sgldSteps = 3
        c.bufferSize = 20
        c.energyL2 = 0.1
        c.learningRate = 1e-3
        c.warmupIterations = 0
        c.augmentation = .none
        c.seed = 3
        return c
    }

    let tinySpec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 1, imageHeight: 8, imageWidth: 8, classCount: 3,
                                  activation: .swish)

    func tinyBatch(_ b: Int, _ spec: WideResNetSpec) -> TrainingBatch {
        TrainingBatch(px: randomArray(b * spec.inputCount, stream: 1), labeled: randomArray(b * spec.inputCount, stream: 2),
                      labels: (0..<b).map { Int32($0 % spec.classCount) })
    }

    /// The gradient the trainer applies equals the finite-difference gradient of the JEM loss
    /// L = CE(x_lab) + mean f(x_q) - mean f(x_data) + l2 (mean f(x_data)^2 + mean f(x_q)^2),
    /// with the SGLD samples x_q held fixed (no gradient flows through the chain).
    func testJEMIterationGradientMatchesFiniteDifferences() throws {
        var config = tinyConfig()
        config.mode = .jemXY   // exercises every term: CE, p(x) and p(x, y)
        config.pxyWeight = 0.5
        config.learningRate = 1e-30   // gradients only; the step leaves the weights unchanged in float32
        let trainer = try JEMTrainer(config: config, spec: tinySpec, backend: cpu)
        let b = config.batchSize, k = tinySpec.classCount
        let batch = tinyBatch(b, tinySpec)
        let stats = try trainer.iterate(batch, iteration: 0, learningRate: config.learningRate, seed: 3)
        let fakeX = try trainer.lastSamples()
        // The class-conditional samples of the p(x,y) term are still in the sampler's chains.
        let fakeXY = try cpu.download(trainer.sampler!.chains, offset: 0, count: b * tinySpec.inputCount)
        let params = trainer.net.trainableParameters
        let gradients = try params.map { try cpu.download($0.gradient) }

        func loss() throws -> Double {
            let real = try trainer.logits(of: batch.px, count: b)
            let fake = try trainer.logits(of: fakeX, count: b)
            let lab = try trainer.logits(of: batch.labeled, count: b)
            let fakeCond = try trainer.logits(of: fakeXY, count: b)
            var l = 0.0
            for r in 0..<b {
                let y = Int(batch.labels[r])
                let fr = logSumExp(real[(r * k)..<((r + 1) * k)]), fq = logSumExp(fake[(r * k)..<((r + 1) * k)])
                l += (logSumExp(lab[(r * k)..<((r + 1) * k)]) - Double(lab[r * k + y])) / Double(b)
                l += (fq - fr) / Double(b) + 0.1 * (fr * fr + fq * fq) / Double(b)
                l += 0.5 * (Double(fakeCond[r * k + y]) - Double(lab[r * k + y])) / Double(b)
            }
            return l
        }
        XCTAssertEqual(try loss(), stats.loss, accuracy: 1e-4 * max(1, abs(stats.loss)))

        let eps: Float = 1e-2
        var numeric = 0.0, analytic = 0.0, scale = 0.0
        for (index, p) in params.enumerated() {
            let p0 = try cpu.download(p.value), dir = randomArray(p.count, stream: 500 + UInt64(index))
            try cpu.upload(zip(p0, dir).map { $0 + eps * $1 }, to: p.value, offset: 0)
            let up = try loss()
            try cpu.upload(zip(p0, dir).map { $0 - eps * $1 }, to: p.value, offset: 0)
            let down = try loss()
            try cpu.upload(p0, to: p.value, offset: 0)
            numeric += (up - down) / (2 * Double(eps))
            analytic += dot(gradients[index], dir)
            scale += zip(gradients[index], dir).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
        }
        XCTAssertEqual(numeric, analytic, accuracy: 2e-3 * max(abs(analytic), 0.1 * scale))
    }

    func testSGLDRaisesEnergyScoreAndUpdatesBuffer() throws {
        let net = try WideResNet(spec: tinySpec, maxBatch: 8, backend: cpu)
        net.initialize(seed: 1)
        let buffer = try ReplayBuffer(size: 16, rowSize: tinySpec.inputCount, backend: cpu, seed: 1)
        let before = try cpu.download(buffer.storage)
        let sampler = try SGLDSampler(net: net, steps: 20, stepSize: 1, noiseStd: 0.01)
        let draw = buffer.draw(batch: 8, seed: 1, iteration: 0, reinitFrequency: 0)
        try cpu.upload(draw.indices, to: sampler.indexBuffer, offset: 0)
        let start = try cpu.makeBuffer(count: 8 * tinySpec.inputCount)
        cpu.gatherRows(buffer.storage, indices: sampler.indexBuffer, reinit: nil, rows: 8, rowSize: tinySpec.inputCount,
                       seed: 1, stream: 0, out: start)
        func meanLSE(_ x: DeviceBuffer) throws -> Double {
            let logits = net.forward(x, batch: 8)
            let lse = try cpu.makeBuffer(count: 8)
            cpu.logSumExpRows(logits, rows: 8, cols: tinySpec.classCount, out: lse)
            return mean(try cpu.download(lse))
        }
        let initial = try meanLSE(start)
        let samples = try sampler.sample(from: buffer, draw: draw, classes: nil, seed: 1, iteration: 0)
        let sampledHost = try cpu.download(samples, offset: 0, count: 8 * tinySpec.inputCount)
        XCTAssertGreaterThan(try meanLSE(samples), initial, "SGLD must climb f(x) = LSE on average")
        // Every written-back row holds its chain's final sample; other rows are unchanged.
        let after = try cpu.download(buffer.storage)
        let n = tinySpec.inputCount
        for (r, index) in draw.writeBack.enumerated() where index >= 0 {
            XCTAssertEqual(Array(after[(Int(index) * n)..<(Int(index) * n + n)]), Array(sampledHost[(r * n)..<(r * n + n)]))
        }
        let touched = Set(draw.indices.map(Int.init))
        for row in 0..<16 where !touched.contains(row) {
            XCTAssertEqual(Array(after[(row * n)..<(row * n + n)]), Array(before[(row * n)..<(row * n + n)]))
        }
    }

    func testReplayDrawMarksDuplicatesLastWriteWins() {
        let buffer = try! ReplayBuffer(size: 3, rowSize: 1, backend: cpu, seed: 1)
        let draw = buffer.draw(batch: 12, seed: 2, iteration: 5, reinitFrequency: 0.5)
        var seen = Set<Int32>()
        for r in stride(from: 11, through: 0, by: -1) {
            if seen.contains(draw.indices[r]) { XCTAssertEqual(draw.writeBack[r], -1) } else {
                XCTAssertEqual(draw.writeBack[r], draw.indices[r])
            }
            seen.insert(draw.indices[r])
        }
        XCTAssertTrue(draw.reinit.contains(1) && draw.reinit.contains(0))
        // Class-partitioned: class y draws rows y*size/K ..< (y+1)*size/K.
        let classed = try! ReplayBuffer(size: 30, rowSize: 1, backend: cpu, seed: 1)
        let labels: [Int32] = [0, 1, 2, 2, 1, 0]
        let d = classed.draw(batch: 6, seed: 2, iteration: 0, reinitFrequency: 0, classes: labels, classCount: 3)
        for (r, y) in labels.enumerated() { XCTAssertEqual(Int(d.indices[r]) / 10, Int(y)) }
    }

    func testTestTimeNoiseIsDeterministicAndChangesInputs() throws {
        var config = tinyConfig()
        config.batchSize = 4
        let trainer = try JEMTrainer(config: config, spec: tinySpec, backend: cpu)
        let images = randomArray(6 * tinySpec.inputCount, stream: 3)
        let set = ImageSet(channels: 1, height: 8, width: 8, count: 6, pixels: .float32(images),
                           labels: [0, 1, 2, 0, 1, 2])
        let clean = try trainer.classify(set)
        let noisy = try trainer.classify(set, noiseStd: 0.5)
        XCTAssertEqual(try trainer.classify(set, noiseStd: 0.5).nll, noisy.nll)
        XCTAssertNotEqual(clean.nll, noisy.nll)
        XCTAssertEqual(try trainer.classify(set).nll, clean.nll)
    }

    func testPxWeightDelayAndRamp() {
        var c = TrainingConfig()
        c.pxWeight = 2
        c.pxDelay = 10
        c.pxRamp = 4
        XCTAssertEqual((0...15).map { c.pxWeight(at: $0) }, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.5, 1, 1.5, 2, 2, 2])
        c.mode = .baseline
        XCTAssertEqual(c.pxWeight(at: 20), 0)
    }

    func testLearningRateScheduleMatchesOfficial() {
        let s = LearningRateSchedule(base: 1e-4, warmupIterations: 1000, decayEpochs: [160, 180], decayRate: 0.3)
        XCTAssertEqual(s.rate(iteration: 0, epoch: 0), 0)
        XCTAssertEqual(s.rate(iteration: 500, epoch: 0), 5e-5, accuracy: 1e-9)
        XCTAssertEqual(s.rate(iteration: 1000, epoch: 1), 1e-4, accuracy: 1e-9)
        XCTAssertEqual(s.rate(iteration: 200_000, epoch: 170), 3e-5, accuracy: 1e-9)
        XCTAssertEqual(s.rate(iteration: 200_000, epoch: 190), 9e-6, accuracy: 1e-9)
    }

    func testPresetDecayEpochsKeepTheirShareOfALongerOrShorterRun() {
        XCTAssertEqual(LearningRateSchedule.stretch([3], from: 4, to: 6), [5])
        XCTAssertEqual(LearningRateSchedule.stretch([3], from: 4, to: 4), [3])
        XCTAssertEqual(LearningRateSchedule.stretch([3], from: 4, to: 2), [2])
        XCTAssertEqual(LearningRateSchedule.stretch([160, 180], from: 200, to: 10), [8, 9])
        XCTAssertEqual(LearningRateSchedule.stretch([160, 180], from: 200, to: 200), [160, 180])
        XCTAssertEqual(LearningRateSchedule.stretch([], from: 4, to: 6), [])
    }
}
