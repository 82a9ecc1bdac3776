/// The naive 7-loop NCHW convolution in float64: the ground truth the CPU backend's Winograd and
/// im2col paths, the OpenCL kernels and `selftest --backend cpu` are held to. Forward,
/// backward-data and backward-filter are the same loop over every valid tap, with a different
/// product accumulated.
public enum NaiveConvolution {
    /// Calls `body(outputIndex, inputIndex, weightIndex)` for every tap that falls inside the
    /// input (any stride and padding).
    public static func forEachTap(_ s: Conv2DShape, _ body: (Int, Int, Int) -> Void) {
        let oh = s.outHeight, ow = s.outWidth, k = s.kernel
        for n in 0..<s.batch {
            for o in 0..<s.outChannels {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let out = ((n * s.outChannels + o) * oh + oy) * ow + ox
                        for c in 0..<s.inChannels {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let iy = oy * s.stride - s.padding + ky, ix = ox * s.stride - s.padding + kx
                                    if iy < 0 || iy >= s.height || ix < 0 || ix >= s.width { continue }
                                    body(out, ((n * s.inChannels + c) * s.height + iy) * s.width + ix,
                                         ((o * s.inChannels + c) * k + ky) * k + kx)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    public static func forward(_ s: Conv2DShape, input x: [Float], weight w: [Float], bias: [Float]?) -> [Float] {
        var y = [Double](repeating: 0, count: s.outputCount)
        forEachTap(s) { out, input, weight in y[out] += Double(x[input]) * Double(w[weight]) }
        if let bias {
            let spatial = s.outHeight * s.outWidth
            for i in 0..<y.count { y[i] += Double(bias[(i / spatial) % s.outChannels]) }
        }
        return y.map { Float($0) }
    }

    /// The adjoint of `forward`: every output gradient scattered back through its taps.
    public static func backwardData(_ s: Conv2DShape, gradOutput dy: [Float], weight w: [Float]) -> [Float] {
        var dx = [Double](repeating: 0, count: s.inputCount)
        forEachTap(s) { out, input, weight in dx[input] += Double(dy[out]) * Double(w[weight]) }
        return dx.map { Float($0) }
    }

    public static func backwardFilter(_ s: Conv2DShape, input x: [Float], gradOutput dy: [Float]) -> [Float] {
        var dw = [Double](repeating: 0, count: s.weightCount)
        forEachTap(s) { out, input, weight in dw[weight] += Double(dy[out]) * Double(x[input]) }
        return dw.map { Float($0) }
    }
}
