import CBLAS
import CJEMKernels
import JEMSupport

/// Winograd F(4x4, 3x3) for the CPU backend's 3x3, stride-1, padding-1 convolutions.
///
/// Each 6x6 input tile d becomes B^T d B, each 3x3 filter g becomes G g G^T, and the 36
/// elementwise products summed over input channels are 36 GEMMs ([tiles][Cin] x [Cin][Cout]);
/// A^T (.) A turns each product tile into 4x4 outputs. That is 36 multiplies per 16 outputs and
/// input channel instead of 144: the 2.25x-4x fewer FLOPs of the stride-1 convs, which are about
/// 70% of the WideResNet's. Backward-data of such a conv is the same conv of the output gradient
/// with the spatially flipped, in/out-transposed filter, so one pipeline serves both.
///
/// Accuracy: the transforms add rounding of a few ulps of the largest terms (B and A have entries
/// up to 8 and the filter transform 1/24 .. 1), measured at up to 7.5e-6 of the largest output
/// magnitude for Cin 4 .. 64, Cout up to 128 (im2col: ~1e-7); see CPUWinogradTests.
///
/// Threads: the batch is cut into chunks of about 64 tiles (whole images), which the threads take
/// one after the other from a shared counter (`parallelBlocks`), each with its own scratch
/// (~1.5 MB for the widest WRN-10-2 conv, so a chunk stays in L2; chunks of 256 tiles measured
/// slower). The channels-last copies of the input and output are never written whole: packing
/// and the input transform, and the output transform and unpacking, run a tile row at a time
/// through a band of a few rows that stays in L1 (`jem_wino_pack_input`, `jem_wino_output_unpack`:
/// bit for bit the separate kernels' results). Single-threaded kernel timings: pack + input
/// transform 5-15% and output transform + unpack 5-25% faster fused, and the input transform
/// about 2x faster at 32 channels when it writes V tile-major (one store stream); at the level of
/// a whole conv (jem-bench, cpu column, loaded 2-core machine) the gain is within the noise. A chunk's GEMM mixes the tiles
/// of its images only, and the chunks are a fixed function of the batch size: the result never
/// depends on thread timing. The weight gradient sums per thread over a static split instead.
extension CPUBackend {
    /// The transforms' channel blocks.
    static let winogradLanes = 16
    /// Extra floats between the 36 transform-domain matrices: their sizes are multiples of 4 KiB,
    /// and 36 store streams 4 KiB apart would share one L1 set (measured: the input transform
    /// runs 30-40% faster skewed by one cache line).
    static let winogradSkew = 16

    /// Whether `s` (forward, or its backward-data when `backward`) runs through Winograd: 3x3,
    /// stride 1, padding 1, and at least 4 input and 4 output channels (below that the 16-lane
    /// transforms mostly move zeros: the 3-channel stem stays on im2col both ways; its
    /// backward-data, 16 -> 3 channels, measured 1.2-1.6 ms on im2col against 2.1-2.3 ms through
    /// Winograd at batch 64).
    func winogradApplies(_ s: Conv2DShape, backward: Bool) -> Bool {
        usesWinograd && s.kernel == 3 && s.stride == 1 && s.padding == 1
            && s.inChannels >= 4 && s.outChannels >= 4 && s.batch > 0
    }

    /// Whether the weight gradient of `s` runs through Winograd F(3x3, 4x4): the same convs.
    func winogradFilterGradientApplies(_ s: Conv2DShape) -> Bool {
        winogradApplies(s, backward: false)
    }

    /// output (+)= conv(input, weight) (+ bias), or for `backward` gradInput (+)= the
    /// backward-data of the conv of `s` applied to `input` = gradOutput. `leaky`: the input goes
    /// through the leaky ReLU with that slope first; `gate`: each output is multiplied by the leaky
    /// ReLU's derivative (slope `slope`) at gate (same layout as the output) before it is stored.
    /// `prefill(thread, images, addend)`: writes what to add onto those images of the output (a
    /// residual shortcut, laid out as the output, image `images.lowerBound` at `addend`) into a
    /// chunk-sized scratch that stays in cache; the output is then written once, never read.
    /// `signs` (ActivationSigns, or nil): forward (with `leaky`), written with the signs of the
    /// input as the input transform reads it; backward, read instead of `gate`.
    func winogradConvolution(_ s: Conv2DShape, input: UnsafeMutablePointer<Float>, leaky: Float?,
                             weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?,
                             gate: UnsafeMutablePointer<Float>?, signs: UnsafeMutablePointer<UInt16>? = nil,
                             slope: Float,
                             output: UnsafeMutablePointer<Float>, backward: Bool, accumulate: Bool,
                             prefill: ((Int, Range<Int>, UnsafeMutablePointer<Float>) -> Void)? = nil) {
        let lanes = Self.winogradLanes
        let inC = backward ? s.outChannels : s.inChannels, outC = backward ? s.inChannels : s.outChannels
        let cp = (inC + lanes - 1) / lanes * lanes, kp = (outC + lanes - 1) / lanes * lanes
        let h = s.height, w = s.width, th = (h + 3) / 4, tw = (w + 3) / 4, tilesPerImage = th * tw
        let chunk = max(1, (64 + tilesPerImage - 1) / tilesPerImage)
        let key = WinogradFilterCache.Key(weight: weight, points: 36, inChannels: s.inChannels,
                                          outChannels: s.outChannels, paddedColumns: kp, backward: backward)
        let u = winogradFilters.filter(key, weightCount: s.weightCount, count: 36 * inC * kp) { u in
            jem_wino_filter(weight, Int32(s.outChannels), Int32(s.inChannels), backward ? 1 : 0, Int32(kp), u)
        }
        let x = UnsafeSendable(input), y = UnsafeSendable(output), b = UnsafeSendable(bias)
        let filter = UnsafeSendable(u), gates = UnsafeSendable(gate), words = UnsafeSendable(signs)
        precondition(signs == nil || (backward ? gate != nil : leaky != nil), "signs without an activation")
        // The signs' words of one image (of the input forward, of gradInput backward: the same tensor).
        let imageWords = (backward ? outC : inC) * h * ((w + 15) / 16)
        let scratch = threadScratch
        // Outputs of a megabyte or more per thread leave the caches before the next op reads them:
        // stream them to memory instead of reading every line in first.
        let stream: Int32 = s.batch * outC * h * w * 4 / Parallel.threads >= 1 << 20 ? 1 : 0
        parallelBlocks(s.batch, block: chunk) { thread, images in
            let space = scratch[thread]
            let most = min(chunk, s.batch), tilesMost = most * tilesPerImage
            // The channels-last copies are never written whole: pack + input transform and output
            // transform + unpack each go a tile row at a time through a small band.
            let inputBand = space.packed.reserve(6 * (4 * tw + 2) * cp)
            let transformed = space.transformed.reserve(36 * (tilesMost * cp + Self.winogradSkew))
            let products = space.products.reserve(36 * (tilesMost * kp + Self.winogradSkew))
            let outputBand = space.unpacked.reserve(16 * tw * kp)
            let first = images.lowerBound, nb = images.count, tiles = nb * tilesPerImage
            let outStride = tiles * kp + Self.winogradSkew
            // V tile-major (each tile's 36 points together: one store stream for the input
            // transform instead of 36), M point-major (contiguous GEMM output).
            jem_wino_pack_input(x.value + first * inC * h * w, Int32(nb), Int32(inC), Int32(h), Int32(w), Int32(cp),
                                Int32(th), Int32(tw), leaky == nil ? 0 : 1, leaky ?? 0,
                                backward ? nil : words.value.map { $0 + first * imageWords }, inputBand, transformed,
                                36 * cp, cp)
            for p in 0..<36 {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(tiles), Int32(outC), Int32(inC), 1,
                            transformed + p * cp, Int32(36 * cp), filter.value + p * inC * kp, Int32(kp), 0,
                            products + p * outStride, Int32(kp))
            }
            let target = y.value + first * outC * h * w
            var addend: UnsafeMutablePointer<Float>? = accumulate ? target : nil
            if let prefill {
                addend = space.shortcut.reserve(most * outC * h * w)
                prefill(thread, images, addend!)
            }
            jem_wino_output_unpack(products, Int32(nb), Int32(outC), Int32(h), Int32(w), Int32(kp), Int32(th),
                                   Int32(tw), kp, outStride, b.value, gates.value.map { $0 + first * outC * h * w },
                                   backward ? words.value.map { UnsafePointer($0 + first * imageWords) } : nil, slope,
                                   addend, stream, outputBand, target)
        }
    }

    /// gradWeight (+)= the weight gradient of the conv `s` (3x3, stride 1, padding 1; of the
    /// leaky-ReLU-activated input when `leaky` is given), by
    /// Winograd F(3x3, 4x4): per 4x4 output tile, the 3x3 taps are the correlation of the 6x6
    /// input tile with the tile's output gradient; in the transform domain the sum over tiles is
    /// 36 GEMMs [Cout][tiles] x [tiles][Cin]. Each thread sums its images' tiles; the threads'
    /// sums are added in thread order (a fixed partition, as in the im2col path), then
    /// transformed back to 3x3 taps once.
    func winogradFilterGradient(_ s: Conv2DShape, input: UnsafeMutablePointer<Float>, leaky: Float?,
                                gradOutput: UnsafeMutablePointer<Float>, gradWeight: UnsafeMutablePointer<Float>,
                                accumulate: Bool) {
        let th = (s.height + 3) / 4, tw = (s.width + 3) / 4
        let cp = Self.lanesPadded(s.inChannels)
        winogradFilterGradientSums(s, points: 36, tileRows: th, tileColumns: tw, inputBand: 6 * (4 * tw + 2) * cp,
                                   input: input, gradOutput: gradOutput,
                                   transformInput: { x, nb, band, tiles, pstride in
            jem_wino_pack_input(x, Int32(nb), Int32(s.inChannels), Int32(s.height), Int32(s.width), Int32(cp),
                                Int32(th), Int32(tw), leaky == nil ? 0 : 1, leaky ?? 0, nil, band, tiles, cp, pstride)
        }, transformGradient: { packed, nb, tiles, pstride in
            jem_wino_grad_input(packed, Int32(nb), Int32(th), Int32(tw), Int32(Self.lanesPadded(s.outChannels)), tiles,
                                pstride)
        })
        jem_wino_filter_grad(threadScratch[0].weightGradient.reserve(36 * s.weightCount / 9), Int32(s.outChannels),
                             Int32(s.inChannels), accumulate ? 1 : 0, gradWeight)
    }

    /// Channel count rounded up to the transforms' 16-lane blocks.
    static func lanesPadded(_ channels: Int) -> Int { (channels + winogradLanes - 1) / winogradLanes * winogradLanes }

    /// The weight-gradient pipeline both Winograd paths share: the transform-domain sums
    /// P[p][k][c] = sum over tiles t of D[p][t][k] X[p][t][c] (`points` GEMMs [Cout][tiles] x
    /// [tiles][Cin]) over the tiles of 4x4 outputs (tileRows x tileColumns per image), into
    /// threadScratch[0].weightGradient (points * Cout * Cin floats). `transformInput(x, images,
    /// band, X, point stride)` writes X point-major from the input; `transformGradient(packed,
    /// images, D, point stride)` writes D from the output gradient as jem_wino_pack lays it out
    /// (one pixel of border). Each thread sums its images' tiles in chunks of about 64 tiles; the
    /// threads' sums are added in thread order (a fixed partition, as in the im2col path).
    func winogradFilterGradientSums(_ s: Conv2DShape, points: Int, tileRows th: Int, tileColumns tw: Int,
                                    inputBand: Int, input: UnsafeMutablePointer<Float>,
                                    gradOutput: UnsafeMutablePointer<Float>,
                                    transformInput: (UnsafeMutablePointer<Float>, Int, UnsafeMutablePointer<Float>,
                                                     UnsafeMutablePointer<Float>, Int) -> Void,
                                    transformGradient: (UnsafeMutablePointer<Float>, Int, UnsafeMutablePointer<Float>,
                                                        Int) -> Void) {
        let cin = s.inChannels, cout = s.outChannels, cp = Self.lanesPadded(cin), kp = Self.lanesPadded(cout)
        let oh = s.outHeight, ow = s.outWidth, tilesPerImage = th * tw
        let chunk = max(1, (64 + tilesPerImage - 1) / tilesPerImage)
        let productCount = points * cout * cin
        let x = UnsafeSendable(input), dy = UnsafeSendable(gradOutput)
        let inputStep = cin * s.height * s.width
        let scratch = threadScratch
        let used = withoutActuallyEscaping(transformInput) { transformInput in
            withoutActuallyEscaping(transformGradient) { transformGradient in
                let toInput = UnsafeSendable(transformInput), toGradient = UnsafeSendable(transformGradient)
                return parallelImages(s.batch) { thread, images in
                    let space = scratch[thread]
                    let most = min(chunk, images.count), tilesMost = most * tilesPerImage
                    let band = space.packed.reserve(inputBand)
                    let packedGradient = space.unpacked.reserve(most * (4 * th + 2) * (4 * tw + 2) * kp)
                    let inputTiles = space.transformed.reserve(points * (tilesMost * cp + Self.winogradSkew))
                    let gradientTiles = space.products.reserve(points * (tilesMost * kp + Self.winogradSkew))
                    let sums = space.weightGradient.reserve(productCount)
                    var first = images.lowerBound
                    while first < images.upperBound {
                        let nb = min(chunk, images.upperBound - first), tiles = nb * tilesPerImage
                        let inStride = tiles * cp + Self.winogradSkew, outStride = tiles * kp + Self.winogradSkew
                        toInput.value(x.value + first * inputStep, nb, band, inputTiles, inStride)
                        jem_wino_pack(dy.value + first * cout * oh * ow, Int32(nb), Int32(cout), Int32(oh), Int32(ow),
                                      Int32(kp), Int32(th), Int32(tw), 0, 0, packedGradient)
                        toGradient.value(packedGradient, nb, gradientTiles, outStride)
                        let beta: Float = first == images.lowerBound ? 0 : 1
                        for p in 0..<points {
                            // P[p][k][c] (+)= sum over t of D[p][t][k] X[p][t][c]
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(cout), Int32(cin), Int32(tiles),
                                        1, gradientTiles + p * outStride, Int32(kp), inputTiles + p * inStride,
                                        Int32(cp), beta, sums + p * cout * cin, Int32(cin))
                        }
                        first += nb
                    }
                }
            }
        }
        let total = threadScratch[0].weightGradient.reserve(productCount)
        for t in 1..<max(used, 1) {
            jem_axpby(1, threadScratch[t].weightGradient.reserve(productCount), 1, total, productCount)
        }
    }
}
