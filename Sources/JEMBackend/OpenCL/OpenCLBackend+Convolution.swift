import COpenCL

/// Convolutions as im2col + GEMM per chunk of images (Kernels/convolution.cl):
/// - forward: im2col -> output_n[Cout][OH*OW] = W[Cout][Cin*k*k] x col_n with `conv_gemm`, the
///   backend's own register-tiled GEMM batched over images, writing NCHW directly with the bias
///   fused (a 1x1 stride-1 conv reads its input as the column matrix: no im2col);
/// - backward-data: col_n = W^T x gradOutput_n (`conv_gemm` reading NCHW) -> col2im (a gather per
///   input row); 1x1 stride-1 convs write (or add to) gradInput directly;
/// - backward-filter (training only), CPU devices: image by image, im2row (transposed columns) and
///   dW (+)= gradOutput_n x rows_n on `conv_gemm`; GPUs: im2col + permute gradOutput -> CLBlast
///   gradOut x col^T over a chunk of images (beta 1 after the first chunk or when accumulating);
///   then the bias-gradient kernel.
/// On PoCL (2-core AVX-512 VM) conv_gemm runs at 110-145 GFLOP/s where CLBlast's untuned kernels
/// ran at 10-26, and the row-wise im2col / col2im take 8-10 ms per wrn-10-2 conv instead of 60-70.
/// The chunk is as many images as keep both workspaces below `convolutionWorkspaceLimitBytes`
/// and the device's largest allocation; the workspaces are kept and only ever grow.
extension OpenCLBackend {
    /// Images per chunk (`cacheSized`: forward and backward-data, also below `convolutionCacheChunkBytes`).
    func imagesPerChunk(_ s: Conv2DShape, cacheSized: Bool = false) -> Int {
        let perImage = Swift.max(s.patchSize, s.outChannels) * s.outHeight * s.outWidth
        var limitBytes = Swift.min(convolutionWorkspaceLimitBytes, Int(clamping: device.maxAllocationBytes))
        if cacheSized { limitBytes = Swift.min(limitBytes, convolutionCacheChunkBytes) }
        return Swift.max(1, Swift.min(s.batch, limitBytes / 4 / Swift.max(perImage, 1)))
    }

    private func validShape(_ op: String, _ s: Conv2DShape) -> Bool {
        guard s.batch >= 0, s.inChannels > 0, s.outChannels > 0, s.kernel > 0, s.stride > 0, s.padding >= 0,
              s.height + 2 * s.padding >= s.kernel, s.width + 2 * s.padding >= s.kernel else {
            record(BackendError("\(op): invalid convolution shape \(s)"))
            return false
        }
        return true
    }

    private func im2col(_ s: Conv2DShape, input: DeviceBuffer, firstImage: Int, images: Int, col: OpenCLBuffer) {
        launch("im2col", in: .convolution, global: [s.outHeight, s.patchSize, images], local: [rowGroup(s.outHeight), 1, 1],
               [.buffer(input), .u32(firstImage * s.inChannels * s.height * s.width), .buffer(col),
                .u32(s.inChannels), .u32(s.height), .u32(s.width), .u32(s.kernel), .u32(s.stride), .u32(s.padding),
                .u32(s.outHeight), .u32(s.outWidth), .u32(images)])
    }

    private func toChannelMajor(_ s: Conv2DShape, gradOutput: DeviceBuffer, firstImage: Int, images: Int,
                                into target: OpenCLBuffer) {
        let spatial = s.outHeight * s.outWidth
        launchElementwise("nchw_to_channel_major", in: .convolution, count: s.outChannels * images * spatial,
                          [.buffer(gradOutput), .u32(firstImage * s.outChannels * spatial), .buffer(target),
                           .u32(s.outChannels), .u32(images), .u32(spatial)])
    }

    /// Work-group size over the image rows of im2col / col2im: the largest power of two up to
    /// min(rows, 32), so a group covers the rows of one (channel, image) plane with little waste.
    func rowGroup(_ rows: Int) -> Int {
        var size = 1
        while size * 2 <= Swift.min(rows, 32) { size *= 2 }
        return size
    }

    /// A 1x1, stride-1, unpadded conv: its im2col columns are the input itself.
    func isPointwise(_ s: Conv2DShape) -> Bool {
        s.kernel == 1 && s.stride == 1 && s.padding == 0
    }

    /// One batched operand of `conv_gemm`: matrix b starts at offset + b * batchStride, rows ld apart.
    struct GemmOperand {
        let buffer: DeviceBuffer
        let offset: Int
        let ld: Int
        let batchStride: Int
    }

    /// C_b (+)= A x B_b (+ bias[m]) for b in 0 ..< batch, with conv_gemm (Kernels/convolution.cl): A element
    /// (i, j) at a[aOffset + i*aRowStride + j*aColStride], B_b k x n and C_b m x n row-major.
    func convGemm(m: Int, n: Int, k: Int, batch: Int, a: DeviceBuffer, aOffset: Int, aRowStride: Int,
                  aColStride: Int, b: GemmOperand, c: GemmOperand, bias: DeviceBuffer?, accumulate: Bool) {
        guard m > 0, n > 0, batch > 0 else { return }
        let tile = convGemmTile
        let rowBlocks = (m + tile.rows - 1) / tile.rows, colBlocks = (n + tile.columns - 1) / tile.columns
        var local = [1, 1, 1]
        while local[0] * 2 <= Swift.min(rowBlocks, tile.localRows) { local[0] *= 2 }
        while local[1] * 2 <= Swift.min(colBlocks, tile.localColumns) { local[1] *= 2 }
        launch("conv_gemm", in: .convolution, global: [rowBlocks, colBlocks, batch], local: local,
               [.buffer(a), .u32(aOffset), .u32(aRowStride), .u32(aColStride),
                .buffer(b.buffer), .u32(b.offset), .u32(b.ld), .u32(b.batchStride),
                .buffer(c.buffer), .u32(c.offset), .u32(c.ld), .u32(c.batchStride),
                .u32(m), .u32(n), .u32(k), .buffer(bias ?? a), .u32(bias == nil ? 0 : 1), .u32(accumulate ? 1 : 0)])
    }

    public func conv2dForward(_ s: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer,
                              bias: DeviceBuffer?, output: DeviceBuffer) {
        guard validShape("conv2dForward", s), s.batch > 0 else { return }
        guard ready("conv2dForward", sizes: [s.inputCount, s.outputCount],
                    .floats(input, s.inputCount, "input"), .floats(weight, s.weightCount, "weight"),
                    .floats(bias ?? weight, bias == nil ? 0 : s.outChannels, "bias"),
                    .floats(output, s.outputCount, "output")) else { return }
        if let tuned = convolutionChoice(.forward, s) {
            return convolutionForward(tuned, s, input: input, weight: weight, bias: bias, output: output)
        }
        let spatial = s.outHeight * s.outWidth, chunk = imagesPerChunk(s, cacheSized: true)
        let outImage = s.outChannels * spatial
        var first = 0
        while first < s.batch, firstError == nil {
            let images = Swift.min(chunk, s.batch - first), cols = images * spatial
            do {
                // B_n[Cin*k*k][spatial]: the input itself for a 1x1 stride-1 conv, else im2col columns.
                let b: GemmOperand
                if isPointwise(s) {
                    b = GemmOperand(buffer: input, offset: first * s.inChannels * spatial, ld: spatial,
                                    batchStride: s.inChannels * spatial)
                } else {
                    let col = try columns.reserve(s.patchSize * cols, using: self)
                    im2col(s, input: input, firstImage: first, images: images, col: col)
                    b = GemmOperand(buffer: col, offset: 0, ld: cols, batchStride: spatial)
                }
                // output_n[Cout][spatial] = W[Cout][Cin*k*k] x B_n (+ bias), straight into NCHW.
                convGemm(m: s.outChannels, n: spatial, k: s.patchSize, batch: images,
                         a: weight, aOffset: 0, aRowStride: s.patchSize, aColStride: 1, b: b,
                         c: GemmOperand(buffer: output, offset: first * outImage, ld: spatial, batchStride: outImage),
                         bias: bias, accumulate: false)
            } catch {
                record(error as? BackendError ?? BackendError("conv2dForward: \(error)"))
            }
            first += images
        }
    }

    public func conv2dBackwardData(_ s: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                                   gradInput: DeviceBuffer, accumulate: Bool) {
        guard validShape("conv2dBackwardData", s), s.batch > 0 else { return }
        guard ready("conv2dBackwardData", sizes: [s.inputCount, s.outputCount],
                    .floats(gradOutput, s.outputCount, "gradOutput"), .floats(weight, s.weightCount, "weight"),
                    .floats(gradInput, s.inputCount, "gradInput")) else { return }
        if let tuned = convolutionChoice(.backwardData, s) {
            return convolutionBackwardData(tuned, s, gradOutput: gradOutput, weight: weight, gradInput: gradInput,
                                           accumulate: accumulate)
        }
        let spatial = s.outHeight * s.outWidth, chunk = imagesPerChunk(s, cacheSized: true)
        let imageSize = s.inChannels * s.height * s.width, outImage = s.outChannels * spatial
        var first = 0
        while first < s.batch, firstError == nil {
            let images = Swift.min(chunk, s.batch - first), cols = images * spatial
            do {
                let gradOut = GemmOperand(buffer: gradOutput, offset: first * outImage, ld: spatial,
                                          batchStride: outImage)
                if isPointwise(s) {
                    // gradInput_n[Cin][spatial] (+)= W^T x gradOut_n.
                    convGemm(m: s.inChannels, n: spatial, k: s.outChannels, batch: images,
                             a: weight, aOffset: 0, aRowStride: 1, aColStride: s.patchSize, b: gradOut,
                             c: GemmOperand(buffer: gradInput, offset: first * imageSize, ld: spatial,
                                            batchStride: imageSize),
                             bias: nil, accumulate: accumulate)
                } else {
                    // col_n[Cin*k*k][spatial] = W^T x gradOut_n, then col2im (a gather).
                    let col = try columns.reserve(s.patchSize * cols, using: self)
                    convGemm(m: s.patchSize, n: spatial, k: s.outChannels, batch: images,
                             a: weight, aOffset: 0, aRowStride: 1, aColStride: s.patchSize, b: gradOut,
                             c: GemmOperand(buffer: col, offset: 0, ld: cols, batchStride: spatial),
                             bias: nil, accumulate: false)
                    launch("col2im", in: .convolution, global: [s.height, s.inChannels, images], local: [rowGroup(s.height), 1, 1],
                                      [.buffer(col), .buffer(gradInput), .u32(first * imageSize),
                                       .u32(s.inChannels), .u32(s.height), .u32(s.width), .u32(s.kernel),
                                       .u32(s.stride), .u32(s.padding), .u32(s.outHeight), .u32(s.outWidth),
                                       .u32(images), .u32(accumulate ? 1 : 0)])
                }
            } catch {
                record(error as? BackendError ?? BackendError("conv2dBackwardData: \(error)"))
            }
            first += images
        }
    }

    public func conv2dBackwardFilter(_ s: Conv2DShape, input: DeviceBuffer, gradOutput: DeviceBuffer,
                                     gradWeight: DeviceBuffer, gradBias: DeviceBuffer?, accumulate: Bool) {
        guard validShape("conv2dBackwardFilter", s) else { return }
        guard ready("conv2dBackwardFilter", sizes: [s.inputCount, s.outputCount],
                    .floats(input, s.inputCount, "input"), .floats(gradOutput, s.outputCount, "gradOutput"),
                    .floats(gradWeight, s.weightCount, "gradWeight"),
                    .floats(gradBias ?? gradWeight, gradBias == nil ? 0 : s.outChannels, "gradBias")) else { return }
        let spatial = s.outHeight * s.outWidth, chunk = imagesPerChunk(s)
        if filterGradientOnConvGemm {
            // Image by image (a CPU device: each image's rows stay in cache for conv_gemm):
            // dW[Cout][Cin*k*k] (+)= gradOut_n[Cout][spatial] x rows_n[spatial][Cin*k*k].
            let outImage = s.outChannels * spatial
            for n in 0..<s.batch where firstError == nil {
                do {
                    let rows = try columns.reserve(spatial * s.patchSize, using: self)
                    launch("im2row", in: .convolution, global: [spatial], local: [rowGroup(spatial)],
                           [.buffer(input), .u32(n), .buffer(rows), .u32(s.inChannels), .u32(s.height),
                            .u32(s.width), .u32(s.kernel), .u32(s.stride), .u32(s.padding),
                            .u32(s.outHeight), .u32(s.outWidth)])
                    convGemm(m: s.outChannels, n: s.patchSize, k: spatial, batch: 1,
                             a: gradOutput, aOffset: n * outImage, aRowStride: spatial, aColStride: 1,
                             b: GemmOperand(buffer: rows, offset: 0, ld: s.patchSize, batchStride: 0),
                             c: GemmOperand(buffer: gradWeight, offset: 0, ld: s.patchSize, batchStride: 0),
                             bias: nil, accumulate: accumulate || n > 0)
                } catch {
                    record(error as? BackendError ?? BackendError("conv2dBackwardFilter: \(error)"))
                }
            }
        }
        var first = filterGradientOnConvGemm ? s.batch : 0
        while first < s.batch, firstError == nil {
            let images = Swift.min(chunk, s.batch - first), cols = images * spatial
            do {
                let col = try columns.reserve(s.patchSize * cols, using: self)
                let gradOut = try staging.reserve(s.outChannels * cols, using: self)
                im2col(s, input: input, firstImage: first, images: images, col: col)
                toChannelMajor(s, gradOutput: gradOutput, firstImage: first, images: images, into: gradOut)
                // dW[Cout][Cin*k*k] (+)= gradOut[Cout][cols] x col^T[cols][Cin*k*k]
                let beta: Float = (accumulate || first > 0) ? 1 : 0
                sgemm(false, true, s.outChannels, s.patchSize, cols, 1, gradOut.mem, 0, cols, col.mem, 0, cols,
                      beta, (gradWeight as! OpenCLBuffer).mem, 0, s.patchSize)
            } catch {
                record(error as? BackendError ?? BackendError("conv2dBackwardFilter: \(error)"))
            }
            first += images
        }
        if let gradBias {
            biasGradient(gradOutput, outer: s.batch, channels: s.outChannels, inner: spatial,
                         gradBias: gradBias, accumulate: accumulate)
        }
    }
}
