import COpenCL

/// Convolutions as im2col + one CLBlast GEMM per chunk of images (Kernels/conv.cl):
/// - forward: im2col -> W[Cout][Cin*k*k] x col[Cin*k*k][images*OH*OW] -> permute to NCHW (+ bias);
/// - backward-data: permute gradOutput to channel-major -> W^T x gradOut -> col2im (a gather);
/// - backward-filter: im2col + permute gradOutput -> gradOut x col^T (beta 1 after the first
///   chunk or when accumulating) + the bias-gradient kernel.
/// The chunk is as many images as keep both workspaces below `convolutionWorkspaceLimitBytes`
/// and the device's largest allocation; the workspaces are kept and only ever grow.
extension OpenCLBackend {
    /// Images per chunk.
    func imagesPerChunk(_ s: Conv2DShape) -> Int {
        let perImage = Swift.max(s.patchSize, s.outChannels) * s.outHeight * s.outWidth
        let limitBytes = Swift.min(convolutionWorkspaceLimitBytes, Int(clamping: device.maxAllocationBytes))
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
        let cols = images * s.outHeight * s.outWidth
        launch("im2col", in: .conv, global: [cols, s.patchSize], local: [im2colLocalSize(), 1],
               [.buffer(input), .u32(firstImage * s.inChannels * s.height * s.width), .buffer(col),
                .u32(s.inChannels), .u32(s.height), .u32(s.width), .u32(s.kernel), .u32(s.stride), .u32(s.padding),
                .u32(s.outHeight), .u32(s.outWidth), .u32(images)])
    }

    private func im2colLocalSize() -> Int {
        (try? kernel("im2col", in: .conv).localSize(preferred: 256)) ?? 1
    }

    private func toChannelMajor(_ s: Conv2DShape, gradOutput: DeviceBuffer, firstImage: Int, images: Int,
                                into target: OpenCLBuffer) {
        let spatial = s.outHeight * s.outWidth
        launchElementwise("nchw_to_channel_major", in: .conv, count: s.outChannels * images * spatial,
                          [.buffer(gradOutput), .u32(firstImage * s.outChannels * spatial), .buffer(target),
                           .u32(s.outChannels), .u32(images), .u32(spatial)])
    }

    public func conv2dForward(_ s: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer,
                              bias: DeviceBuffer?, output: DeviceBuffer) {
        guard validShape("conv2dForward", s), s.batch > 0 else { return }
        guard ready("conv2dForward", sizes: [s.inputCount, s.outputCount],
                    .floats(input, s.inputCount, "input"), .floats(weight, s.weightCount, "weight"),
                    .floats(bias ?? weight, bias == nil ? 0 : s.outChannels, "bias"),
                    .floats(output, s.outputCount, "output")) else { return }
        let spatial = s.outHeight * s.outWidth, chunk = imagesPerChunk(s)
        var first = 0
        while first < s.batch, firstError == nil {
            let images = Swift.min(chunk, s.batch - first), cols = images * spatial
            do {
                let col = try columns.reserve(s.patchSize * cols, using: self)
                let product = try staging.reserve(s.outChannels * cols, using: self)
                im2col(s, input: input, firstImage: first, images: images, col: col)
                sgemm(false, false, s.outChannels, cols, s.patchSize, 1, (weight as! OpenCLBuffer).mem, 0,
                      s.patchSize, col.mem, 0, cols, 0, product.mem, 0, cols)
                launchElementwise("channel_major_to_nchw", in: .conv, count: s.outChannels * cols,
                                  [.buffer(product), .buffer(output), .u32(first * s.outChannels * spatial),
                                   .buffer(bias ?? product), .u32(bias == nil ? 0 : 1),
                                   .u32(s.outChannels), .u32(images), .u32(spatial)])
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
        let spatial = s.outHeight * s.outWidth, chunk = imagesPerChunk(s)
        let imageSize = s.inChannels * s.height * s.width
        var first = 0
        while first < s.batch, firstError == nil {
            let images = Swift.min(chunk, s.batch - first), cols = images * spatial
            do {
                let gradOut = try staging.reserve(s.outChannels * cols, using: self)
                let col = try columns.reserve(s.patchSize * cols, using: self)
                toChannelMajor(s, gradOutput: gradOutput, firstImage: first, images: images, into: gradOut)
                // col[Cin*k*k][cols] = W^T x gradOut[Cout][cols]
                sgemm(true, false, s.patchSize, cols, s.outChannels, 1, (weight as! OpenCLBuffer).mem, 0,
                      s.patchSize, gradOut.mem, 0, cols, 0, col.mem, 0, cols)
                launchElementwise("col2im", in: .conv, count: images * imageSize,
                                  [.buffer(col), .buffer(gradInput), .u32(first * imageSize),
                                   .u32(s.inChannels), .u32(s.height), .u32(s.width), .u32(s.kernel),
                                   .u32(s.stride), .u32(s.padding), .u32(s.outHeight), .u32(s.outWidth),
                                   .u32(images), .u32(accumulate ? 1 : 0)])
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
        var first = 0
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
