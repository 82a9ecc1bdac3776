import JEMBackend
import Foundation

/// The kernel distance of Bińkowski et al. 2018 (KID): the unbiased estimate of the squared MMD
/// between two feature sets under the polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over
/// `subsets` random subsets of `subsetSize` rows drawn from each set (without replacement within
/// a subset), with the standard deviation over the subsets, as the reference implementations
/// (the KID authors' code, torch-fidelity) report it. The subsets are a fixed function of `seed`.
public struct KernelInceptionDistance: Codable, Sendable, Equatable {
    /// Mean unbiased MMD² over the subsets (can be slightly negative for equal distributions).
    public var value: Double
    /// Standard deviation of the subset estimates.
    public var std: Double
    /// std / sqrt(subsets): the standard error of `value` if the subsets were independent.
    public var standardError: Double
    public var subsets: Int
    public var subsetSize: Int

    enum CodingKeys: String, CodingKey {
        case value, std, standardError = "standard_error", subsets, subsetSize = "subset_size"
    }

    /// `a` and `b` hold `na` and `nb` rows of `dimension` features; `subsetSize` is capped at
    /// min(na, nb) (at least 2 rows each are needed).
    public init(_ a: [Float], count na: Int, _ b: [Float], count nb: Int, dimension d: Int, subsets: Int = 100,
                subsetSize: Int = 1000, seed: UInt64 = 0) {
        let m = min(subsetSize, na, nb)
        precondition(m >= 2 && subsets >= 1, "KID needs at least 2 rows per set and 1 subset")
        var generator = SplitMix64(seed: seed)
        var estimates: [Double] = []
        for _ in 0..<subsets {
            let x = Self.rows(a, Self.choose(m, of: na, &generator), d)
            let y = Self.rows(b, Self.choose(m, of: nb, &generator), d)
            estimates.append(Self.mmd2(x, y, m: m, d: d))
        }
        let mean = estimates.reduce(0, +) / Double(subsets)
        let variance = subsets > 1 ? estimates.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(subsets - 1) : 0
        value = mean
        std = variance.squareRoot()
        standardError = std / Double(subsets).squareRoot()
        self.subsets = subsets
        self.subsetSize = m
    }

    /// Unbiased MMD² of two m-row sets: mean off-diagonal k(x, x') + mean off-diagonal k(y, y')
    /// − 2 mean k(x, y).
    static func mmd2(_ x: [Double], _ y: [Double], m: Int, d: Int) -> Double {
        func kernelSum(_ p: [Double], _ q: [Double], offDiagonal: Bool) -> Double {
            let gram = HostBLAS.multiply(p, q, m: m, n: m, k: d, transposeB: true, alpha: 1 / Double(d))
            var sum = 0.0
            for i in 0..<m {
                for j in 0..<m where !(offDiagonal && i == j) {
                    let k = gram[i * m + j] + 1
                    sum += k * k * k
                }
            }
            return sum
        }
        let pairs = Double(m) * Double(m - 1)
        return kernelSum(x, x, offDiagonal: true) / pairs + kernelSum(y, y, offDiagonal: true) / pairs
            - 2 * kernelSum(x, y, offDiagonal: false) / (Double(m) * Double(m))
    }

    /// `m` distinct indices of 0..<n (a partial Fisher-Yates shuffle).
    static func choose(_ m: Int, of n: Int, _ g: inout SplitMix64) -> [Int] {
        var order = Array(0..<n)
        for i in 0..<m {
            let j = i + Int(g.next() % UInt64(n - i))
            order.swapAt(i, j)
        }
        return Array(order[..<m])
    }

    static func rows(_ features: [Float], _ indices: [Int], _ d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: indices.count * d)
        for (r, i) in indices.enumerated() { for j in 0..<d { out[r * d + j] = Double(features[i * d + j]) } }
        return out
    }
}

/// SplitMix64 (Steele et al.): the small generator behind KID's subset draws.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
