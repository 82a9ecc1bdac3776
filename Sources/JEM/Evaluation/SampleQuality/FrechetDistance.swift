import JEMBackend
import Foundation

/// Mean and covariance of a set of feature vectors, in double precision. The covariance is the
/// unbiased sample covariance (divided by n - 1), as `numpy.cov` and the FID reference code.
public struct FeatureStatistics: Sendable {
    public let count: Int
    public let dimension: Int
    public let mean: [Double]
    /// dimension × dimension, row-major.
    public let covariance: [Double]

    /// `features` holds `count` rows of `dimension` values (count >= 2).
    public init(features: [Float], count: Int, dimension d: Int) {
        precondition(count >= 2 && features.count >= count * d, "at least two feature rows")
        var mean = [Double](repeating: 0, count: d)
        for r in 0..<count { for j in 0..<d { mean[j] += Double(features[r * d + j]) } }
        for j in 0..<d { mean[j] /= Double(count) }
        var centered = [Double](repeating: 0, count: count * d)
        for r in 0..<count { for j in 0..<d { centered[r * d + j] = Double(features[r * d + j]) - mean[j] } }
        // C = X^T X / (n - 1); the upper triangle mirrored so that C is exactly symmetric.
        var covariance = HostBLAS.multiply(centered, centered, m: d, n: d, k: count, transposeA: true,
                                           alpha: 1 / Double(count - 1))
        for i in 0..<d { for j in 0..<i { covariance[i * d + j] = covariance[j * d + i] } }
        self.count = count
        dimension = d
        self.mean = mean
        self.covariance = covariance
    }
}

/// The Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017, FID):
/// ‖μ1 − μ2‖² + tr(Σ1) + tr(Σ2) − 2 tr((Σ1^½ Σ2 Σ1^½)^½).
///
/// tr((Σ1 Σ2)^½) equals tr((Σ1^½ Σ2 Σ1^½)^½), and the latter is the square root of a symmetric
/// positive semi-definite matrix, so both roots come from symmetric eigendecompositions
/// (`SymmetricEigen`, double precision; eigenvalues that rounding makes slightly negative count
/// as 0). No complex square root or LAPACK is needed.
public enum FrechetDistance {
    public static func distance(_ a: FeatureStatistics, _ b: FeatureStatistics) -> Double {
        precondition(a.dimension == b.dimension)
        let d = a.dimension
        var meanTerm = 0.0
        for j in 0..<d { meanTerm += (a.mean[j] - b.mean[j]) * (a.mean[j] - b.mean[j]) }
        var traces = 0.0
        for j in 0..<d { traces += a.covariance[j * d + j] + b.covariance[j * d + j] }
        let rootA = SymmetricEigen(a.covariance, n: d).reconstruct { max($0, 0).squareRoot() }
        let product = multiply(multiply(rootA, b.covariance, d), rootA, d)
        let crossTrace = SymmetricEigen(product, n: d).values.reduce(0) { $0 + max($1, 0).squareRoot() }
        return meanTerm + traces - 2 * crossTrace
    }

    /// Between two feature sets (rows of `dimension`).
    public static func distance(_ a: [Float], count na: Int, _ b: [Float], count nb: Int, dimension d: Int) -> Double {
        distance(FeatureStatistics(features: a, count: na, dimension: d),
                 FeatureStatistics(features: b, count: nb, dimension: d))
    }

    /// n×n row-major product.
    static func multiply(_ x: [Double], _ y: [Double], _ n: Int) -> [Double] {
        HostBLAS.multiply(x, y, m: n, n: n, k: n)
    }
}
