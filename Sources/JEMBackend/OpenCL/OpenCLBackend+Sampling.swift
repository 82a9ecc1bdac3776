/// SGLD, Philox fills and the replay-buffer gather/scatter (Kernels/sampling.cl). Random numbers are
/// addressed as on the CPU: element i of (seed, stream) is lane i%4 of Philox block i/4.
extension OpenCLBackend {
    public func sgldUpdate(x: DeviceBuffer, grad: DeviceBuffer, count: Int, stepSize: Float, noiseStd: Float,
                           seed: UInt64, stream: UInt64, gradClip: Float?, clampRange: ClosedRange<Float>?) {
        guard count > 0, ready("sgldUpdate", sizes: [count], .floats(x, count, "x"), .floats(grad, count, "grad"))
        else { return }
        launchElementwise("sgld_update", in: .sampling, count: (count + 3) / 4,
                          [.buffer(x), .buffer(grad), .u32(count), .f32(stepSize), .f32(noiseStd), .u64(seed),
                           .u64(stream), .f32(gradClip ?? .infinity), .f32(clampRange?.lowerBound ?? -.infinity),
                           .f32(clampRange?.upperBound ?? .infinity)])
    }

    public func fillUniform(_ x: DeviceBuffer, count: Int, low: Float, high: Float, seed: UInt64, stream: UInt64) {
        guard count > 0, ready("fillUniform", sizes: [count], .floats(x, count, "x")) else { return }
        launchElementwise("fill_uniform", in: .sampling, count: (count + 3) / 4,
                          [.buffer(x), .u32(count), .f32(low), .f32(high), .u64(seed), .u64(stream)])
    }

    public func addGaussianNoise(_ x: DeviceBuffer, count: Int, std: Float, seed: UInt64, stream: UInt64) {
        guard count > 0, ready("addGaussianNoise", sizes: [count], .floats(x, count, "x")) else { return }
        launchElementwise("add_gaussian_noise", in: .sampling, count: (count + 3) / 4,
                          [.buffer(x), .u32(count), .f32(std), .u64(seed), .u64(stream)])
    }

    public func gatherRows(_ source: DeviceBuffer, indices: DeviceBuffer, reinit: DeviceBuffer?, rows: Int,
                           rowSize: Int, seed: UInt64, stream: UInt64, out: DeviceBuffer) {
        let count = rows * rowSize
        guard count > 0, ready("gatherRows", sizes: [count, source.count], .floats(source, 0, "source"),
                               .ints(indices, rows, "indices"), .ints(reinit ?? indices, rows, "reinit"),
                               .floats(out, count, "out")) else { return }
        launchElementwise("gather_rows", in: .sampling, count: count,
                          [.buffer(source), .u32(source.count / rowSize), .buffer(indices), .buffer(reinit ?? indices),
                           .u32(reinit == nil ? 0 : 1), .u32(rows), .u32(rowSize), .u64(seed), .u64(stream),
                           .buffer(out)])
    }

    public func scatterRows(_ source: DeviceBuffer, indices: DeviceBuffer, rows: Int, rowSize: Int,
                            destination: DeviceBuffer) {
        let count = rows * rowSize
        guard count > 0, ready("scatterRows", sizes: [count, destination.count], .floats(source, count, "source"),
                               .ints(indices, rows, "indices"), .floats(destination, 0, "destination")) else { return }
        launchElementwise("scatter_rows", in: .sampling, count: count,
                          [.buffer(source), .buffer(indices), .u32(rows), .u32(rowSize),
                           .u32(destination.count / rowSize), .buffer(destination)])
    }

    /// Raw Philox4x32-10 words from the `philox_raw` kernel of Kernels/random.cl: block i uses
    /// `counter` with i added to its word 0 (wrapping), under `key`; 4 words per block, in order.
    /// For the known-answer tests and the CPU == OpenCL bit-equality check.
    public func philoxRaw(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32),
                          count: Int) throws -> [UInt32] {
        try throwIfFailed()
        guard count > 0 else { return [] }
        let out = try allocate(count: 4 * count, type: .int32, purpose: "philox_raw output")
        let local = try kernel("philox_raw", in: .random).localSize(preferred: 256)
        launch("philox_raw", in: .random, global: [count], local: [local],
               [.buffer(out), .words([counter.0, counter.1, counter.2, counter.3]), .words([key.0, key.1]),
                .u32(count)])
        return try downloadInt32(out, offset: 0, count: 4 * count).map { UInt32(bitPattern: $0) }
    }
}
