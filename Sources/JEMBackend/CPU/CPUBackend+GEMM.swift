import CBLAS
import Foundation
import JEMSupport

/// GEMM on OpenBLAS (the "gemm" op group).
extension CPUBackend {
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: DeviceBuffer, aOffset: Int, lda: Int, b: DeviceBuffer, bOffset: Int, ldb: Int,
                     beta: Float, c: DeviceBuffer, cOffset: Int, ldc: Int, batch: GemmBatch) {
        let pa = f(a), pb = f(b), pc = f(c)
        // Large standalone GEMMs use every core; the convolutions call OpenBLAS single-threaded
        // from their own threads, so the default stays 1.
        let threaded = m * n * k >= 1 << 21 && Parallel.threads > 1
        if threaded { openblas_set_num_threads(Int32(Parallel.threads)) }
        defer { if threaded { openblas_set_num_threads(1) } }
        for i in 0..<batch.count {
            cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
                        transposeB ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                        pa + aOffset + i * batch.strideA, Int32(lda),
                        pb + bOffset + i * batch.strideB, Int32(ldb), beta,
                        pc + cOffset + i * batch.strideC, Int32(ldc))
        }
    }
}
