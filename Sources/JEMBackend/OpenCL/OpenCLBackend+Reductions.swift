import COpenCL

/// Sums to one scalar (Kernels/reductions.cl): each work-group reduces a grid-strided share of the
/// input in local memory and writes one partial; only the partials (at most `maxGroups` floats)
/// come back, and the host adds them in double.
extension OpenCLBackend {
    static let maxReductionGroups = 256

    public func sum(_ x: DeviceBuffer, count: Int) throws -> Float {
        try reduce("sum_partials", x, count: count)
    }

    public func sumOfSquares(_ x: DeviceBuffer, count: Int) throws -> Float {
        try reduce("sum_of_squares_partials", x, count: count)
    }

    private func reduce(_ name: String, _ x: DeviceBuffer, count: Int) throws -> Float {
        try throwIfFailed()
        guard count > 0 else { return 0 }
        guard ready(name, sizes: [count], .floats(x, count, "x")) else {
            try throwIfFailed()
            return 0
        }
        let local = try kernel(name, in: .reductions).localSize(preferred: Self.channelReductionLocalSize)
        // Enough groups to fill a GPU, few enough that the partials are a tiny download; on small
        // inputs every work-item still gets several elements.
        let groups = Swift.max(1, Swift.min(Self.maxReductionGroups, count / (local * 4)))
        let partial = try partials.reserve(groups, using: self)
        launch(name, in: .reductions, global: [groups * local], local: [local],
               [.buffer(x), .u32(count), .buffer(partial), .localScratch])
        let values = try download(partial, offset: 0, count: groups)
        return Float(values.reduce(0.0) { $0 + Double($1) })
    }
}
