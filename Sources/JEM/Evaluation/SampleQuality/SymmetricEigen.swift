import Foundation
import JEMBackend

/// Eigendecomposition of a real symmetric matrix by the cyclic Jacobi method, in double
/// precision: A = V diag(values) V^T with orthonormal V. O(n^3) per sweep and typically 6-10
/// sweeps; meant for the feature covariances of the Fréchet distance (tens to a few hundred
/// dimensions), where it needs no LAPACK.
public struct SymmetricEigen: Sendable {
    public let n: Int
    /// Eigenvalues, unsorted.
    public let values: [Double]
    /// Eigenvectors as columns, row-major n×n: vectors[i * n + j] is component i of vector j.
    public let vectors: [Double]

    /// `matrix` is n×n row-major and symmetric (only its symmetric part is used).
    public init(_ matrix: [Double], n: Int, maxSweeps: Int = 100) {
        precondition(matrix.count == n * n)
        var a = matrix
        for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { let m = (a[i * n + j] + a[j * n + i]) / 2; a[i * n + j] = m; a[j * n + i] = m } }
        var v = [Double](repeating: 0, count: n * n)
        for i in 0..<n { v[i * n + i] = 1 }
        let scale = a.reduce(0) { $0 + $1 * $1 }.squareRoot()
        for _ in 0..<maxSweeps {
            var off = 0.0
            for i in 0..<n { for j in (i + 1)..<max(i + 1, n) { off += a[i * n + j] * a[i * n + j] } }
            if off.squareRoot() <= 1e-15 * max(scale, Double.leastNormalMagnitude) { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) {
                    let apq = a[p * n + q]
                    if apq == 0 { continue }
                    let app = a[p * n + p], aqq = a[q * n + q]
                    // The rotation angle that zeroes a[p][q] (Golub & Van Loan 8.4, the smaller root).
                    let theta = (aqq - app) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                    for k in 0..<n {
                        let vkp = v[k * n + p], vkq = v[k * n + q]
                        v[k * n + p] = c * vkp - s * vkq
                        v[k * n + q] = s * vkp + c * vkq
                    }
                }
            }
        }
        self.n = n
        values = (0..<n).map { a[$0 * n + $0] }
        vectors = v
    }

    /// V diag(f(values)) V^T.
    public func reconstruct(_ f: (Double) -> Double) -> [Double] {
        let g = values.map(f)
        var out = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in i..<n {
                var sum = 0.0
                for k in 0..<n { sum += vectors[i * n + k] * g[k] * vectors[j * n + k] }
                out[i * n + j] = sum
                out[j * n + i] = sum
            }
        }
        return out
    }
}
