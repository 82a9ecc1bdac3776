import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// The numbers of `jem-gpu sample-quality`: the Jacobi eigensolver, the Fréchet distance and KID,
/// checked against NumPy on fixed features and against closed forms.
final class EvaluationSampleQualityTests: XCTestCase {
    /// n rows of d correlated, non-Gaussian but fixed features.
    func features(n: Int, d: Int, seed: UInt64, shift: Float = 0) -> [Float] {
        var g = SplitMix64(seed: seed)
        func normal() -> Float {
            let u1 = Double(g.next() >> 11) / Double(1 << 53), u2 = Double(g.next() >> 11) / Double(1 << 53)
            return Float((-2 * Foundation.log(max(u1, 1e-300))).squareRoot() * Foundation.cos(2 * .pi * u2))
        }
        var out: [Float] = []
        for _ in 0..<n {
            let z = (0..<d).map { _ in normal() }
            for j in 0..<d { out.append(z[j] + 0.5 * z[(j + 1) % d] + 0.1 * Float(j) + shift) }
        }
        return out
    }

    func testJacobiEigenDecomposes() {
        let n = 20
        var g = SplitMix64(seed: 5)
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in i..<n { let v = Double(g.next() % 2001) / 1000 - 1; a[i * n + j] = v; a[j * n + i] = v } }
        let e = SymmetricEigen(a, n: n)
        let back = e.reconstruct { $0 }
        for i in 0..<(n * n) { XCTAssertEqual(back[i], a[i], accuracy: 1e-10) }
        for i in 0..<n {
            for j in 0..<n {
                let dot = (0..<n).reduce(0.0) { $0 + e.vectors[$1 * n + i] * e.vectors[$1 * n + j] }
                XCTAssertEqual(dot, i == j ? 1 : 0, accuracy: 1e-10)
            }
        }
    }

    func testFrechetDistanceAndKIDMatchNumPy() throws {
        let d = 8, na = 300, nb = 200
        let a = features(n: na, d: d, seed: 1), b = features(n: nb, d: d, seed: 2, shift: 0.3).map { $0 * 1.2 }
        let fd = FrechetDistance.distance(a, count: na, b, count: nb, dimension: d)
        // All rows in one subset: the unbiased MMD² of the two whole sets (row order does not matter).
        let kid = KernelInceptionDistance(a, count: na, b, count: nb, dimension: d, subsets: 1, subsetSize: nb)
        let kidAll = KernelInceptionDistance(a, count: nb, b, count: nb, dimension: d, subsets: 1, subsetSize: nb)

        let dir = NSTemporaryDirectory() + "jem-fd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let json = try JSONSerialization.data(withJSONObject: ["a": a.map(Double.init), "b": b.map(Double.init), "d": d])
        try json.write(to: URL(fileURLWithPath: dir + "/features.json"))
        let script = """
            import json, numpy as np
            f = json.load(open('\(dir)/features.json'))
            d = f['d']; a = np.array(f['a']).reshape(-1, d); b = np.array(f['b']).reshape(-1, d)
            def fd(x, y):
                m1, m2 = x.mean(0), y.mean(0); s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
                w, v = np.linalg.eigh(s1); r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
                cross = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
                return ((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross
            def mmd(x, y):
                k = lambda p, q: (p @ q.T / d + 1) ** 3
                m = len(x); n = len(y); kxx = k(x, x); kyy = k(y, y)
                return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                        - 2 * k(x, y).mean())
            print('%.17g %.17g' % (fd(a, b), mmd(a[:200], b)))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw XCTSkip("python3 with numpy is not available") }
        let numbers = output.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard numbers.count == 2 else { return XCTFail("unexpected NumPy output: \(output)") }
        XCTAssertEqual(fd, numbers[0], accuracy: 1e-9 * max(1, abs(numbers[0])))
        // Subsets of 200 from 300 rows are a draw; with 200 of each the whole sets are used.
        XCTAssertEqual(kidAll.value, numbers[1], accuracy: 1e-9 * max(1, abs(numbers[1])))
        XCTAssertEqual(kid.subsetSize, nb)
        XCTAssertGreaterThan(fd, 0)
    }

    func testIdenticalSetsAndClosedForms() {
        let d = 6, n = 500
        let a = features(n: n, d: d, seed: 3)
        let stats = FeatureStatistics(features: a, count: n, dimension: d)
        XCTAssertEqual(FrechetDistance.distance(stats, stats), 0, accuracy: 1e-9)

        // Shifted by a constant vector: equal covariances, FD = |shift|².
        let shift: [Float] = [0.5, -1, 0.25, 2, 0, 1]
        let shifted = a.enumerated().map { $0.element + shift[$0.offset % d] }
        let expected = shift.reduce(0.0) { $0 + Double($1) * Double($1) }
        XCTAssertEqual(FrechetDistance.distance(a, count: n, shifted, count: n, dimension: d), expected,
                       accuracy: 1e-4 * expected)

        // Scaled by 2: Σ2 = 4Σ1, so FD = |μ1 − 2μ1|² + tr Σ1 + 4 tr Σ1 − 2 · 2 tr Σ1 = |μ1|² + tr Σ1.
        let doubled = a.map { 2 * $0 }
        var closed = 0.0
        for j in 0..<d { closed += stats.mean[j] * stats.mean[j] + stats.covariance[j * d + j] }
        XCTAssertEqual(FrechetDistance.distance(a, count: n, doubled, count: n, dimension: d), closed,
                       accuracy: 1e-6 * closed)
    }

    func testKIDOfOneDistributionIsZeroWithinItsError() {
        let d = 8
        let a = features(n: 2000, d: d, seed: 10), b = features(n: 2000, d: d, seed: 11)
        let same = KernelInceptionDistance(a, count: 2000, b, count: 2000, dimension: d, subsets: 50, subsetSize: 500, seed: 4)
        XCTAssertLessThan(abs(same.value), 3 * same.std, "\(same)")
        XCTAssertEqual(same.standardError, same.std / 50.0.squareRoot(), accuracy: 1e-15)
        let other = features(n: 2000, d: d, seed: 12, shift: 0.5)
        let apart = KernelInceptionDistance(a, count: 2000, other, count: 2000, dimension: d, subsets: 50, subsetSize: 500,
                                            seed: 4)
        XCTAssertGreaterThan(apart.value, 3 * apart.std, "\(apart)")
        XCTAssertGreaterThan(apart.value, abs(same.value) * 5)
        // The subsets are a fixed function of the seed.
        XCTAssertEqual(KernelInceptionDistance(a, count: 2000, b, count: 2000, dimension: d, subsets: 50, subsetSize: 500,
                                               seed: 4), same)
    }
}
