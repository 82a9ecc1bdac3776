import CBLAS
import Dispatch
import Foundation

/// The host BLAS (OpenBLAS) for the few host-side computations above the backend, so that no
/// target but this one links BLAS.
public enum HostBLAS {
    /// y += A^T x for a row-major `rows x cols` matrix A (x has `rows` elements, y `cols`).
    public static func addTransposedProduct(_ a: UnsafePointer<Float>, rows: Int, cols: Int,
                                            _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(rows), Int32(cols), 1, a, Int32(cols), x, 1, 1, y, 1)
    }

    /// alpha * op(A) op(B) in double precision, row-major: op(A) is m x k, op(B) k x n (A is
    /// stored k x m when `transposeA`, B n x k when `transposeB`). Returns the m x n product.
    public static func multiply(_ a: [Double], _ b: [Double], m: Int, n: Int, k: Int, transposeA: Bool = false,
                                transposeB: Bool = false, alpha: Double = 1) -> [Double] {
        precondition(a.count >= m * k && b.count >= k * n, "matrix sizes")
        var c = [Double](repeating: 0, count: m * n)
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(transposeA ? m : k), b, Int32(transposeB ? k : n),
                    0, &c, Int32(n))
        return c
    }

    /// GFLOP/s of cblas_sgemm on n x n x n (n = 2048, or 1024 when `quick`), best of a few runs:
    /// the practical ceiling benchmarks compare their effective FLOP rates with.
    public static func gemmCeilingGFLOPS(quick: Bool) -> Double {
        let n = quick ? 1024 : 2048
        let a = [Float](repeating: 0.5, count: n * n), b = [Float](repeating: 0.25, count: n * n)
        var c = [Float](repeating: 0, count: n * n)
        var best = Double.infinity
        for _ in 0..<(quick ? 3 : 6) {
            let start = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b,
                        Int32(n), 0, &c, Int32(n))
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * pow(Double(n), 3) / best / 1e9
    }
}
