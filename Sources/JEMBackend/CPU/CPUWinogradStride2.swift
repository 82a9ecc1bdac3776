import CBLAS
import CJEMKernels
import JEMSupport

/// Winograd for the CPU backend's 3x3, stride-2, padding-1 convolutions (the WideResNet's
/// downsampling convs), forward and backward-data.
///
/// Along each axis an output reads one even input pixel (the centre tap) and two odd ones (the
/// outer taps, a 2-tap correlation of the odd pixels): the even pixels are used as they are and
/// the odd ones go through Winograd F(4,2), so a tile of 4x4 outputs has 9 x 9 = 81 transform
/// points (see winograd_stride2.c): 81 GEMMs ([tiles][Cin] x [Cin][Cout]) with 5.1 multiplies per
/// output and input channel instead of im2col's 9. Backward-data is the transposed operation,
/// one tile per 8x8 input-gradient pixels, with the same filter transform of the flipped filter.
/// Weight gradients are the transposed forward (`winogradStride2FilterGradient`): the forward's
/// input transform, the 9 points per axis of the output gradient (as it is, and A dy), 81 GEMMs
/// summed over tiles, and back to the 3x3 taps.
///
/// The pipeline and threads are those of `CPUWinograd.swift` (fixed chunks of whole images, taken
/// from a shared counter: the result never depends on thread timing).
///
/// Accuracy: the transforms' entries are at most 3 (input) and 8 (output); measured relative
/// errors against the float64 loops are 1e-7 .. 4e-6 of the largest output (CPUWinogradTests).
extension CPUBackend {
    /// Whether `s` runs through the stride-2 Winograd (forward and backward-data): 3x3, stride 2,
    /// padding 1, at least 16 input and output channels (below that the 16-lane transforms
    /// mostly move zeros).
    func winogradStride2Applies(_ s: Conv2DShape) -> Bool {
        usesWinograd && s.kernel == 3 && s.stride == 2 && s.padding == 1
            && s.inChannels >= 16 && s.outChannels >= 16 && s.batch > 0
    }

    /// Whether the weight gradient of `s` runs through the stride-2 Winograd: its shapes with at
    /// least 16 tiles of 4x4 outputs per image (16x16 outputs and more). Below that the 81
    /// transform-domain sums per weight pair (9x the weights, 5.3 MB per thread at 128 channels)
    /// outweigh the work they save: at batch 64, 128 channels, 8x8 outputs it measured 12.1 ms
    /// against im2col's 7.7 ms; at 64 channels, 16x16 outputs, 7.5 ms against 9.3 ms.
    func winogradStride2FilterGradientApplies(_ s: Conv2DShape) -> Bool {
        winogradStride2Applies(s) && ((s.outHeight + 3) / 4) * ((s.outWidth + 3) / 4) >= 16
    }

    /// output = conv(leaky ? act(input) : input, weight) (+ bias), or for `backward`
    /// gradInput (+)= [gate ? act'(gate) * : ] the backward-data of `s` applied to input = gradOutput.
    /// `prefill` and `signs` as in `winogradConvolution`.
    func winogradStride2Convolution(_ s: Conv2DShape, input: UnsafeMutablePointer<Float>, leaky: Float?,
                                    weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?,
                                    gate: UnsafeMutablePointer<Float>?, signs: UnsafeMutablePointer<UInt16>? = nil,
                                    slope: Float,
                                    output: UnsafeMutablePointer<Float>, backward: Bool, accumulate: Bool,
                                    prefill: ((Int, Range<Int>, UnsafeMutablePointer<Float>) -> Void)? = nil) {
        let lanes = Self.winogradLanes
        let inC = backward ? s.outChannels : s.inChannels, outC = backward ? s.inChannels : s.outChannels
        let cp = (inC + lanes - 1) / lanes * lanes, kp = (outC + lanes - 1) / lanes * lanes
        let h = s.height, w = s.width, oh = s.outHeight, ow = s.outWidth
        // Forward: tiles of 4x4 outputs; backward: tiles of 8x8 input pixels (the same count).
        let th = backward ? (h + 7) / 8 : (oh + 3) / 4, tw = backward ? (w + 7) / 8 : (ow + 3) / 4
        let tilesPerImage = th * tw
        // Chunks of about 32 tiles: V and M of a chunk (81 points) then stay within L2 at 64
        // channels (measured at batch 64 on the loaded 2-core machine: 3-30% faster per op than
        // chunks of 64 tiles; 16 no better).
        let chunk = max(1, (32 + tilesPerImage - 1) / tilesPerImage)
        let inPlane = backward ? oh * ow : h * w, outPlane = backward ? h * w : oh * ow
        // The transformed filter is 9x the weights (81 points): its rows are split over the threads.
        let key = WinogradFilterCache.Key(weight: weight, points: 81, inChannels: s.inChannels,
                                          outChannels: s.outChannels, paddedColumns: kp, backward: backward)
        let weights = UnsafeSendable(weight)
        let filter = UnsafeSendable(winogradFilters.filter(key, weightCount: s.weightCount, count: 81 * inC * kp) { u in
            let target = UnsafeSendable(u)
            parallelImages(inC) { _, rows in
                jem_wino2_filter(weights.value, Int32(s.outChannels), Int32(s.inChannels), backward ? 1 : 0,
                                 Int32(kp), Int32(rows.lowerBound), Int32(rows.upperBound), target.value)
            }
        })
        let x = UnsafeSendable(input), y = UnsafeSendable(output), b = UnsafeSendable(bias)
        let gates = UnsafeSendable(gate), words = UnsafeSendable(signs)
        precondition(signs == nil || (backward ? gate != nil : leaky != nil), "signs without an activation")
        // The signs' words of one image of the conv's input (x forward, gradInput backward).
        let imageWords = s.inChannels * h * ((w + 15) / 16)
        let scratch = threadScratch
        let stream: Int32 = s.batch * outC * outPlane * 4 / Parallel.threads >= 1 << 20 ? 1 : 0
        parallelBlocks(s.batch, block: chunk) { thread, images in
            let space = scratch[thread]
            let tilesMost = min(chunk, s.batch) * tilesPerImage
            let inputBand = space.packed.reserve(backward ? 5 * (4 * tw + 2) * cp : 9 * (8 * tw + 1) * cp)
            let transformed = space.transformed.reserve(81 * tilesMost * cp)
            let products = space.products.reserve(81 * (tilesMost * kp + Self.winogradSkew))
            let outputBand = space.unpacked.reserve(backward ? 64 * tw * kp : 16 * tw * kp)
            let first = images.lowerBound, nb = images.count, tiles = nb * tilesPerImage
            let outStride = tiles * kp + Self.winogradSkew
            let source = x.value + first * inC * inPlane, target = y.value + first * outC * outPlane
            // V tile-major (one store stream for the input transform), M point-major.
            if backward {
                jem_wino2_pack_input_backward(source, Int32(nb), Int32(inC), Int32(oh), Int32(ow), Int32(cp), Int32(th),
                                              Int32(tw), inputBand, transformed, 81 * cp, cp)
            } else {
                jem_wino2_pack_input(source, Int32(nb), Int32(inC), Int32(h), Int32(w), Int32(cp), Int32(th), Int32(tw),
                                     leaky == nil ? 0 : 1, leaky ?? 0, words.value.map { $0 + first * imageWords },
                                     inputBand, transformed, 81 * cp, cp)
            }
            for p in 0..<81 {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tiles), Int32(outC), Int32(inC), 1,
                            transformed + p * cp, Int32(81 * cp), filter.value + p * inC * kp, Int32(kp), 0,
                            products + p * outStride, Int32(kp))
            }
            var addend: UnsafeMutablePointer<Float>? = accumulate ? target : nil
            if let prefill {
                addend = space.shortcut.reserve(min(chunk, s.batch) * outC * outPlane)
                prefill(thread, images, addend!)
            }
            if backward {
                jem_wino2_output_unpack_backward(products, Int32(nb), Int32(outC), Int32(h), Int32(w), Int32(kp),
                                                 Int32(th), Int32(tw), kp, outStride,
                                                 gates.value.map { $0 + first * outC * outPlane },
                                                 words.value.map { UnsafePointer($0 + first * imageWords) }, slope, addend,
                                                 stream, outputBand, target)
            } else {
                jem_wino2_output_unpack(products, Int32(nb), Int32(outC), Int32(oh), Int32(ow), Int32(kp), Int32(th),
                                        Int32(tw), kp, outStride, b.value, addend, stream, outputBand, target)
            }
        }
    }

    /// gradWeight (+)= the weight gradient of the stride-2 conv `s` (of the leaky-ReLU-activated
    /// input when `leaky` is given), see winograd_stride2.c: the 81 transform-domain sums over the
    /// tiles of 4x4 outputs (`winogradFilterGradientSums`), then turned into taps once.
    func winogradStride2FilterGradient(_ s: Conv2DShape, input: UnsafeMutablePointer<Float>, leaky: Float?,
                                       gradOutput: UnsafeMutablePointer<Float>,
                                       gradWeight: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let th = (s.outHeight + 3) / 4, tw = (s.outWidth + 3) / 4
        let cp = Self.lanesPadded(s.inChannels)
        winogradFilterGradientSums(s, points: 81, tileRows: th, tileColumns: tw, inputBand: 9 * (8 * tw + 1) * cp,
                                   input: input, gradOutput: gradOutput,
                                   transformInput: { x, nb, band, tiles, pstride in
            jem_wino2_pack_input(x, Int32(nb), Int32(s.inChannels), Int32(s.height), Int32(s.width), Int32(cp),
                                 Int32(th), Int32(tw), leaky == nil ? 0 : 1, leaky ?? 0, nil, band, tiles, cp, pstride)
        }, transformGradient: { packed, nb, tiles, pstride in
            jem_wino2_grad_output(packed, Int32(nb), Int32(th), Int32(tw), Int32(Self.lanesPadded(s.outChannels)),
                                  tiles, pstride)
        })
        jem_wino2_filter_grad(threadScratch[0].weightGradient.reserve(81 * s.outChannels * s.inChannels),
                              Int32(s.outChannels), Int32(s.inChannels), accumulate ? 1 : 0, gradWeight)
    }
}
