import XCTest
@testable import JEM
@testable import JEMBackend

final class WideResNetTests: XCTestCase {
    let cpu = CPUBackend()

    /// Names and shapes of the official `CCF(depth=10, width=2)` state_dict, in order, as
    /// `wideresnet.py` and `train_wrn_ebm.py` (wgrathwohl/JEM) register them with norm=None.
    static let officialWRN10x2: [(String, [Int])] = [
        ("f.conv1.weight", [16, 3, 3, 3]), ("f.conv1.bias", [16]),
        ("f.layer1.0.conv1.weight", [32, 16, 3, 3]), ("f.layer1.0.conv1.bias", [32]),
        ("f.layer1.0.conv2.weight", [32, 32, 3, 3]), ("f.layer1.0.conv2.bias", [32]),
        ("f.layer1.0.shortcut.0.weight", [32, 16, 1, 1]), ("f.layer1.0.shortcut.0.bias", [32]),
        ("f.layer2.0.conv1.weight", [64, 32, 3, 3]), ("f.layer2.0.conv1.bias", [64]),
        ("f.layer2.0.conv2.weight", [64, 64, 3, 3]), ("f.layer2.0.conv2.bias", [64]),
        ("f.layer2.0.shortcut.0.weight", [64, 32, 1, 1]), ("f.layer2.0.shortcut.0.bias", [64]),
        ("f.layer3.0.conv1.weight", [128, 64, 3, 3]), ("f.layer3.0.conv1.bias", [128]),
        ("f.layer3.0.conv2.weight", [128, 128, 3, 3]), ("f.layer3.0.conv2.bias", [128]),
        ("f.layer3.0.shortcut.0.weight", [128, 64, 1, 1]), ("f.layer3.0.shortcut.0.bias", [128]),
        ("f.linear.weight", [10, 128]), ("f.linear.bias", [10]),
        ("energy_output.weight", [1, 128]), ("energy_output.bias", [1]),
        ("class_output.weight", [10, 128]), ("class_output.bias", [10]),
    ]

    func testOfficialStateDictNamesShapesAndCounts() throws {
        let net = try WideResNet(spec: WideResNetSpec(depth: 10, widen: 2), maxBatch: 1, backend: cpu)
        XCTAssertEqual(net.parameters.map(\.name), Self.officialWRN10x2.map(\.0))
        XCTAssertEqual(net.parameters.map(\.shape), Self.officialWRN10x2.map(\.1))
        // shared/bench: 304,885 parameters, 303,466 used; 72,795,392 MACs per 32x32 image.
        XCTAssertEqual(net.parameters.reduce(0) { $0 + $1.count }, 304_885)
        XCTAssertEqual(net.trainableParameters.reduce(0) { $0 + $1.count }, 303_466)
        XCTAssertEqual(net.forwardMACsPerImage, 72_795_392)

        // wrn-28-10: 4 blocks per stage, shortcut only on each stage's first block.
        let big = try WideResNet(spec: WideResNetSpec(depth: 28, widen: 10), maxBatch: 1, backend: cpu)
        let names = Set(big.parameters.map(\.name))
        XCTAssertTrue(names.contains("f.layer3.3.conv2.weight"))
        XCTAssertTrue(names.contains("f.layer1.0.shortcut.0.weight"))
        XCTAssertFalse(names.contains("f.layer1.1.shortcut.0.weight"))
        XCTAssertEqual(big.parameters.first { $0.name == "class_output.weight" }?.shape, [10, 640])
    }

    func testSpecParsing() {
        XCTAssertTrue(WideResNetSpec.parse("wrn-28-10")! == (28, 10))
        XCTAssertTrue(WideResNetSpec.parse("WRN-10-1")! == (10, 1))
        XCTAssertNil(WideResNetSpec.parse("wrn-12-2"))
        XCTAssertNil(WideResNetSpec.parse("resnet-18"))
    }

    func testInitializationBoundsFollowPyTorchDefault() throws {
        let net = try WideResNet(spec: WideResNetSpec(depth: 10, widen: 1), maxBatch: 1, backend: cpu)
        net.initialize(seed: 3)
        let w = try cpu.download(net.parameters[2].value)   // f.layer1.0.conv1.weight, fan_in 16*9
        let bound = 1 / Float(16 * 9).squareRoot()
        XCTAssertTrue(w.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(w.map(abs).max()!, 0.9 * bound)
    }

    /// Gradients of sum_r w_r * LSE(logits_r) wrt the input and wrt parameters, against central
    /// finite differences (see CPUBackendTests for the tolerance argument). Swish keeps the
    /// function smooth, so no kink sits between x - eps and x + eps.
    func testInputAndParameterGradientsMatchFiniteDifferences() throws {
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 2, imageHeight: 6, imageWidth: 5, classCount: 3,
                                  activation: .swish)
        let batch = 2
        let net = try WideResNet(spec: spec, maxBatch: batch, backend: cpu)
        net.initialize(seed: 5)
        let x0 = randomArray(batch * spec.inputCount, stream: 1)
        let rowWeights: [Float] = [0.7, -1.3]
        let input = try cpu.makeBuffer(x0)
        let lse = try cpu.makeBuffer(count: batch), gradLSE = try cpu.makeBuffer(rowWeights)
        let gradLogits = try cpu.makeBuffer(count: batch * spec.classCount)

        func objective() throws -> Double {
            let logits = net.forward(input, batch: batch)
            cpu.logSumExpRows(logits, rows: batch, cols: spec.classCount, out: lse)
            return dot(try cpu.download(lse), rowWeights)
        }

        // Analytic gradients.
        net.zeroGradients()
        _ = try objective()
        cpu.logSumExpBackward(net.logits, lse: lse, gradOut: gradLSE, rows: batch, cols: spec.classCount,
                              gradX: gradLogits, accumulate: false)
        let gradInput = try cpu.makeBuffer(count: x0.count)
        net.backward(gradLogits: gradLogits, batch: batch, gradInput: gradInput, mode: .full)
        let dx = try cpu.download(gradInput)

        // Input-only mode must give the same input gradient and leave parameter gradients alone.
        let before = try cpu.download(net.parameters[0].gradient)
        let gradInput2 = try cpu.makeBuffer(count: x0.count)
        _ = try objective()
        net.backward(gradLogits: gradLogits, batch: batch, gradInput: gradInput2, mode: .inputOnly)
        XCTAssertEqual(try cpu.download(gradInput2), dx)
        XCTAssertEqual(try cpu.download(net.parameters[0].gradient), before)

        // Directional derivative along a random direction, input.
        let eps: Float = 1e-2
        let v = randomArray(x0.count, stream: 2)
        try cpu.upload(zip(x0, v).map { $0 + eps * $1 }, to: input, offset: 0)
        let plus = try objective()
        try cpu.upload(zip(x0, v).map { $0 - eps * $1 }, to: input, offset: 0)
        let minus = try objective()
        try cpu.upload(x0, to: input, offset: 0)
        let numeric = (plus - minus) / (2 * Double(eps)), exact = dot(dx, v)
        XCTAssertEqual(numeric, exact, accuracy: 2e-3 * max(abs(exact), 1e-2), "input gradient")

        // Each trainable parameter tensor, one random direction each.
        for (index, p) in net.trainableParameters.enumerated() {
            let p0 = try cpu.download(p.value), g = try cpu.download(p.gradient)
            let dir = randomArray(p.count, stream: 100 + UInt64(index))
            try cpu.upload(zip(p0, dir).map { $0 + eps * $1 }, to: p.value, offset: 0)
            let up = try objective()
            try cpu.upload(zip(p0, dir).map { $0 - eps * $1 }, to: p.value, offset: 0)
            let down = try objective()
            try cpu.upload(p0, to: p.value, offset: 0)
            let fd = (up - down) / (2 * Double(eps)), analytic = dot(g, dir)
            let scale = zip(g, dir).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            // Floor: the float32 objective carries ~1e-6 relative rounding, which the central
            // difference divides by 2*eps = 0.02, so differences below ~5e-5 are noise.
            XCTAssertEqual(fd, analytic, accuracy: max(2e-3 * max(abs(analytic), 0.1 * scale), 5e-5 * max(1, abs(up))),
                           p.name)
        }
    }

    /// The CPU backend applies the leaky ReLU inside the convolutions (forward, input gradient,
    /// weight gradients); the network must compute the same as with separate activation ops.
    /// 16x16 inputs put layer1 on Winograd and layer2's stride-2 conv on the gathering col2im;
    /// layer3's 8-pixel rows fall back to the separate ops inside the backend.
    func testFusedActivationsMatchSeparateOps() throws {
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 3, imageHeight: 16, imageWidth: 16, classCount: 4)
        let batch = 3
        var results: [[[Float]]] = []
        for backend in [CPUBackend(), CPUBackend(fuseActivations: false)] {
            let net = try WideResNet(spec: spec, maxBatch: batch, backend: backend)
            net.initialize(seed: 9)
            let input = try backend.makeBuffer(randomArray(batch * spec.inputCount, stream: 3))
            let logits = net.forward(input, batch: batch)
            let gradLogits = try backend.makeBuffer(randomArray(batch * spec.classCount, stream: 4))
            let gradInput = try backend.makeBuffer(count: batch * spec.inputCount)
            net.zeroGradients()
            net.backward(gradLogits: gradLogits, batch: batch, gradInput: gradInput, mode: .full)
            var tensors = [try backend.download(logits), try backend.download(gradInput)]
            for p in net.trainableParameters { tensors.append(try backend.download(p.gradient)) }
            results.append(tensors)
        }
        for (index, (fused, separate)) in zip(results[0], results[1]).enumerated() {
            XCTAssertLessThan(maxRelativeError(fused, separate), 1e-5, "tensor \(index)")
        }
    }
}
