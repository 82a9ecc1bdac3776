/// Bias forward/backward, activations, BLAS-1-like pointwise ops and global average pooling
/// (Kernels/pointwise.cl): one work-item per element, or one work-group per reduced channel/row.
extension OpenCLBackend {
    /// Work-group size asked for by kernels that reduce a channel (long) in local memory.
    static let channelReductionLocalSize = 256
    /// Work-group size asked for by kernels that reduce a row (short: classes, pixels).
    static let rowReductionLocalSize = 64

    // MARK: Bias

    public func addBias(_ y: DeviceBuffer, bias: DeviceBuffer, outer: Int, channels: Int, inner: Int) {
        let count = outer * channels * inner
        guard count > 0, ready("addBias", sizes: [count], .floats(y, count, "y"), .floats(bias, channels, "bias"))
        else { return }
        launchElementwise("add_bias", in: .pointwise, count: count,
                          [.buffer(y), .buffer(bias), .u32(channels), .u32(inner), .u32(count)])
    }

    public func biasGradient(_ gradY: DeviceBuffer, outer: Int, channels: Int, inner: Int,
                             gradBias: DeviceBuffer, accumulate: Bool) {
        guard channels > 0, outer >= 0, inner >= 0,
              ready("biasGradient", sizes: [outer * channels * inner],
                    .floats(gradY, outer * channels * inner, "gradY"), .floats(gradBias, channels, "gradBias"))
        else { return }
        launchGroups("bias_gradient", in: .pointwise, groups: channels, preferredLocal: Self.channelReductionLocalSize,
                     [.buffer(gradY), .buffer(gradBias), .u32(outer), .u32(channels), .u32(inner),
                      .u32(accumulate ? 1 : 0), .localScratch])
    }

    // MARK: Activations

    public func activationForward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, count: Int) {
        guard count > 0, ready("activationForward", sizes: [count], .floats(x, count, "x"), .floats(y, count, "y"))
        else { return }
        switch activation {
        case .leakyReLU(let slope):
            launchElementwise("leaky_relu_forward", in: .pointwise, count: count,
                              [.buffer(x), .buffer(y), .f32(slope), .u32(count)])
        case .swish:
            launchElementwise("swish_forward", in: .pointwise, count: count, [.buffer(x), .buffer(y), .u32(count)])
        }
    }

    public func activationBackward(_ activation: Activation, x: DeviceBuffer, gradY: DeviceBuffer,
                                   gradX: DeviceBuffer, count: Int, accumulate: Bool) {
        guard count > 0, ready("activationBackward", sizes: [count], .floats(x, count, "x"),
                               .floats(gradY, count, "gradY"), .floats(gradX, count, "gradX"))
        else { return }
        switch activation {
        case .leakyReLU(let slope):
            launchElementwise("leaky_relu_backward", in: .pointwise, count: count,
                              [.buffer(x), .buffer(gradY), .buffer(gradX), .f32(slope), .u32(count),
                               .u32(accumulate ? 1 : 0)])
        case .swish:
            launchElementwise("swish_backward", in: .pointwise, count: count,
                              [.buffer(x), .buffer(gradY), .buffer(gradX), .u32(count), .u32(accumulate ? 1 : 0)])
        }
    }

    // MARK: Pointwise

    public func axpby(alpha: Float, x: DeviceBuffer, beta: Float, y: DeviceBuffer, count: Int) {
        guard count > 0, ready("axpby", sizes: [count], .floats(x, count, "x"), .floats(y, count, "y")) else { return }
        launchElementwise("axpby", in: .pointwise, count: count,
                          [.f32(alpha), .buffer(x), .f32(beta), .buffer(y), .u32(count)])
    }

    public func scale(_ x: DeviceBuffer, by alpha: Float, count: Int) {
        guard count > 0, ready("scale", sizes: [count], .floats(x, count, "x")) else { return }
        launchElementwise("scale_values", in: .pointwise, count: count, [.buffer(x), .f32(alpha), .u32(count)])
    }

    public func fill(_ x: DeviceBuffer, value: Float, offset: Int, count: Int) {
        guard count >= 0, offset >= 0 else {
            record(BackendError("fill: negative count or offset (\(count) at \(offset))"))
            return
        }
        guard count > 0, ready("fill", sizes: [offset + count], .floats(x, offset + count, "x")) else { return }
        launchElementwise("fill_values", in: .pointwise, count: count,
                          [.buffer(x), .f32(value), .u32(offset), .u32(count)])
    }

    public func clamp(_ x: DeviceBuffer, low: Float, high: Float, count: Int) {
        guard count > 0, ready("clamp", sizes: [count], .floats(x, count, "x")) else { return }
        launchElementwise("clamp_values", in: .pointwise, count: count,
                          [.buffer(x), .f32(low), .f32(high), .u32(count)])
    }

    public func sign(_ x: DeviceBuffer, y: DeviceBuffer, count: Int) {
        guard count > 0, ready("sign", sizes: [count], .floats(x, count, "x"), .floats(y, count, "y")) else { return }
        launchElementwise("sign_values", in: .pointwise, count: count, [.buffer(x), .buffer(y), .u32(count)])
    }

    // MARK: Per-row scaling

    public func rescaleRows(_ x: DeviceBuffer, rows: Int, rowSize: Int, toNorm target: Float, mode: RowRescale,
                            norms: DeviceBuffer?) {
        guard rows > 0, rowSize > 0,
              ready("rescaleRows", sizes: [rows * rowSize], .floats(x, rows * rowSize, "x"),
                    .floats(norms ?? x, norms == nil ? 0 : rows, "norms")) else { return }
        // Without `norms` the kernel gets x in that slot and never writes it (writeNorms = 0).
        launchGroups("rescale_rows", in: .pointwise, groups: rows, preferredLocal: Self.channelReductionLocalSize,
                     [.buffer(x), .buffer(norms ?? x), .u32(rowSize), .f32(target), .u32(mode == .atMost ? 1 : 0),
                      .u32(norms == nil ? 0 : 1), .localScratch])
    }

    public func scaleRows(_ x: DeviceBuffer, by factors: DeviceBuffer, rows: Int, rowSize: Int) {
        let count = rows * rowSize
        guard count > 0, ready("scaleRows", sizes: [count], .floats(x, count, "x"), .floats(factors, rows, "factors"))
        else { return }
        launchElementwise("scale_rows", in: .pointwise, count: count,
                          [.buffer(x), .buffer(factors), .u32(rowSize), .u32(count)])
    }

    // MARK: Pooling

    public func globalAveragePoolForward(x: DeviceBuffer, y: DeviceBuffer, rows: Int, spatial: Int) {
        guard rows > 0, spatial > 0,
              ready("globalAveragePoolForward", sizes: [rows * spatial], .floats(x, rows * spatial, "x"),
                    .floats(y, rows, "y")) else { return }
        launchGroups("global_average_pool_forward", in: .pointwise, groups: rows,
                     preferredLocal: Self.rowReductionLocalSize,
                     [.buffer(x), .buffer(y), .u32(spatial), .f32(1 / Float(spatial)), .localScratch])
    }

    public func globalAveragePoolBackward(gradY: DeviceBuffer, gradX: DeviceBuffer, rows: Int, spatial: Int,
                                          accumulate: Bool) {
        let count = rows * spatial
        guard count > 0, ready("globalAveragePoolBackward", sizes: [count], .floats(gradY, rows, "gradY"),
                               .floats(gradX, count, "gradX")) else { return }
        launchElementwise("global_average_pool_backward", in: .pointwise, count: count,
                          [.buffer(gradY), .buffer(gradX), .u32(spatial), .f32(1 / Float(spatial)), .u32(count),
                           .u32(accumulate ? 1 : 0)])
    }
}
