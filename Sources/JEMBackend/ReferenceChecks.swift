/// Checks that need no second backend: the ground truth the CPU backend is held to.
/// `jem-gpu selftest --backend cpu` prints them; the test suite asserts them.
public enum ReferenceChecks {
    /// Random123's published known-answer vectors for Philox4x32-10: (counter, key, output).
    public static let philoxKnownAnswers: [(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32),
                                            output: [UInt32])] = [
        ((0, 0, 0, 0), (0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
        ((.max, .max, .max, .max), (.max, .max), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
        ((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
         [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
    ]

    /// Philox known answers on the host implementation, and `backend`'s convolution against the
    /// naive loops on odd shapes. Returns one result per check.
    public static func run(on backend: any Backend,
                           injectNaNInto: String? = FaultInjection.environmentTarget) throws -> [ParityResult] {
        var results: [ParityResult] = []
        let philoxOK = philoxKnownAnswers.allSatisfy { kat in
            let r = Philox.block(counter: kat.counter, key: kat.key)
            return [r.0, r.1, r.2, r.3] == kat.output
        }
        results.append(ParityResult(name: "philox known answers (Random123)", maxRelativeError: philoxOK ? 0 : 1,
                                    tolerance: 0, passed: philoxOK, detail: "3 vectors, bit-exact"))
        let shapes = [
            Conv2DShape(batch: 3, inChannels: 5, height: 7, width: 9, outChannels: 4, kernel: 3, stride: 1, padding: 1),
            Conv2DShape(batch: 2, inChannels: 3, height: 9, width: 7, outChannels: 6, kernel: 3, stride: 2, padding: 1),
            Conv2DShape(batch: 2, inChannels: 4, height: 9, width: 9, outChannels: 3, kernel: 1, stride: 2, padding: 0),
        ]
        for s in shapes {
            let x = (0..<s.inputCount).map { 2 * Philox.uniform(seed: 1, stream: 1, element: $0) - 1 }
            let w = (0..<s.weightCount).map { 2 * Philox.uniform(seed: 1, stream: 2, element: $0) - 1 }
            let b = (0..<s.outChannels).map { 2 * Philox.uniform(seed: 1, stream: 3, element: $0) - 1 }
            let out = try backend.makeBuffer(count: s.outputCount)
            backend.conv2dForward(s, input: try backend.makeBuffer(x), weight: try backend.makeBuffer(w),
                                  bias: try backend.makeBuffer(b), output: out)
            let got = FaultInjection.apply(try backend.download(out), check: "conv forward vs naive loops",
                                           target: injectNaNInto)
            let want = NaiveConvolution.forward(s, input: x, weight: w, bias: b)
            let error = Comparison(candidate: got, reference: want).maxRelativeError
            results.append(ParityResult(name: "conv forward vs naive loops", maxRelativeError: error, tolerance: 1e-5,
                                        passed: error <= 1e-5, detail: s.description))
        }
        return results
    }
}
