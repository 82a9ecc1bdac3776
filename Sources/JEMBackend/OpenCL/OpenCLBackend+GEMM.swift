import CCLBlast
import COpenCL

/// Dense matrix products through CLBlast (row-major, with offsets): `CLBlastSgemm` for one
/// product, `CLBlastSgemmStridedBatched` for a batch. On a cold PoCL cache each CLBlast kernel
/// variant costs seconds to compile once, so the backend uses few routine/transpose combinations.
extension OpenCLBackend {
    public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: DeviceBuffer, aOffset: Int, lda: Int, b: DeviceBuffer, bOffset: Int, ldb: Int,
                     beta: Float, c: DeviceBuffer, cOffset: Int, ldc: Int, batch: GemmBatch) {
        guard m > 0, n > 0, batch.count > 0 else { return }
        let last = batch.count - 1
        // Stored shapes: A is m x k (k x m when transposed), B is k x n (n x k), C is m x n.
        let aRows = transposeA ? k : m, aCols = transposeA ? m : k
        let bRows = transposeB ? n : k, bCols = transposeB ? k : n
        func extent(_ rows: Int, _ cols: Int, _ ld: Int, _ offset: Int, _ stride: Int) -> Int {
            rows == 0 || cols == 0 ? 0 : offset + last * stride + (rows - 1) * ld + cols
        }
        guard lda >= Swift.max(aCols, 1), ldb >= Swift.max(bCols, 1), ldc >= n,
              aOffset >= 0, bOffset >= 0, cOffset >= 0,
              batch.strideA >= 0, batch.strideB >= 0, batch.strideC >= 0 else {
            record(BackendError("gemm: invalid leading dimension, offset or stride (m \(m) n \(n) k \(k), "
                + "lda \(lda) ldb \(ldb) ldc \(ldc), batch \(batch))"))
            return
        }
        guard ready("gemm", .floats(a, extent(aRows, aCols, lda, aOffset, batch.strideA), "A"),
                    .floats(b, extent(bRows, bCols, ldb, bOffset, batch.strideB), "B"),
                    .floats(c, extent(m, n, ldc, cOffset, batch.strideC), "C")) else { return }
        let memA = (a as! OpenCLBuffer).mem, memB = (b as! OpenCLBuffer).mem, memC = (c as! OpenCLBuffer).mem
        if k == 0 {
            // C = beta * C: CLBlast refuses k == 0, BLAS defines it.
            for i in 0..<batch.count {
                launchElementwise("scale_matrix", in: .pointwise, count: m * n,
                                  [.buffer(c), .u32(cOffset + i * batch.strideC), .u32(m), .u32(n), .u32(ldc), .f32(beta)])
            }
            return
        }
        if batch.count == 1 {
            sgemm(transposeA, transposeB, m, n, k, alpha, memA, aOffset, lda, memB, bOffset, ldb,
                  beta, memC, cOffset, ldc)
        } else {
            var queue = self.queue
            let status = CLBlastSgemmStridedBatched(
                CLBlastLayoutRowMajor, transposeA ? CLBlastTransposeYes : CLBlastTransposeNo,
                transposeB ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha,
                memA, aOffset, lda, batch.strideA, memB, bOffset, ldb, batch.strideB, beta,
                memC, cOffset, ldc, batch.strideC, batch.count, &queue, nil)
            recordCLBlast(status, "CLBlastSgemmStridedBatched(\(m)x\(n)x\(k), batch \(batch.count))")
        }
    }

    /// One row-major `CLBlastSgemm` on raw buffers (sizes already checked, all > 0).
    func sgemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
               _ a: cl_mem?, _ aOffset: Int, _ lda: Int, _ b: cl_mem?, _ bOffset: Int, _ ldb: Int,
               _ beta: Float, _ c: cl_mem?, _ cOffset: Int, _ ldc: Int) {
        guard firstError == nil else { return }
        var queue = self.queue
        var status = CLBlastSuccess
        profiled("CLBlastSgemm \(transposeA ? "T" : "N")\(transposeB ? "T" : "N") \(m)x\(n)x\(k)") {
            status = CLBlastSgemm(CLBlastLayoutRowMajor, transposeA ? CLBlastTransposeYes : CLBlastTransposeNo,
                                  transposeB ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha,
                                  a, aOffset, lda, b, bOffset, ldb, beta, c, cOffset, ldc, &queue, nil)
        }
        recordCLBlast(status, "CLBlastSgemm(\(transposeA ? "T" : "N")\(transposeB ? "T" : "N") \(m)x\(n)x\(k))")
    }

    private func recordCLBlast(_ status: CLBlastStatusCode, _ what: String) {
        guard status != CLBlastSuccess else { return }
        let code = status.rawValue
        let meaning = code > -1000 ? OpenCLStatus.name(code) : "CLBlast status \(code)"
        record(BackendError("\(what) failed: \(meaning)"))
    }
}
