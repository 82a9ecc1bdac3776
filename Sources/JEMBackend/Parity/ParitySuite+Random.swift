import Foundation
import JEMSupport

/// The "random" op group: raw Philox words (Kernels/random.cl) against the host generator.
extension ParitySuite {
    /// Random123's published known-answer vectors for Philox4x32-10: (counter, key, output).
    static let knownAnswers: [(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32), output: [UInt32])] = [
        ((0, 0, 0, 0), (0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
        ((.max, .max, .max, .max), (.max, .max), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
        ((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
         [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
    ]

    static func philox(_ h: ParityHarness) throws {
        guard let device = h.candidate as? OpenCLBackend else { return }
        var failures = 0
        for answer in knownAnswers {
            let words = try device.philoxRaw(counter: answer.counter, key: answer.key, count: 1)
            if words != answer.output { failures += 1 }
        }
        h.results.append(ParityResult(name: "philox_raw known answers (Random123)",
                                      maxRelativeError: failures == 0 ? 0 : .infinity, tolerance: 0,
                                      passed: failures == 0, detail: "\(failures) of 3 vectors differ, bit-exact"))
        let key = (UInt32(truncatingIfNeeded: h.seed), UInt32(truncatingIfNeeded: h.seed >> 32))
        for counter in [(UInt32(5), UInt32(0), UInt32(7), UInt32(0)), (UInt32.max - 100, UInt32(1), UInt32(2), UInt32(3))] {
            let count = 1000
            let words = try device.philoxRaw(counter: counter, key: key, count: count)
            var expected: [UInt32] = []
            expected.reserveCapacity(4 * count)
            for i in 0..<count {
                let r = Philox.block(counter: (counter.0 &+ UInt32(i), counter.1, counter.2, counter.3), key: key)
                expected += [r.0, r.1, r.2, r.3]
            }
            let differing = zip(words, expected).filter { $0 != $1 }.count + abs(words.count - expected.count)
            h.results.append(ParityResult(name: "philox_raw CPU == OpenCL", maxRelativeError: differing == 0 ? 0 : .infinity,
                                          tolerance: 0, passed: differing == 0,
                                          detail: "\(count) blocks from counter \(counter.0),\(counter.1),\(counter.2),"
                                            + "\(counter.3): \(differing) words differ, bit-exact"))
        }
    }
}
