import CBLAS
import CJEMKernels
import Dispatch
import JEMSupport

/// The CPU backend's convolutions.
///
/// 3x3, stride-1, padding-1 convs with at least 4 input channels run through Winograd
/// (`CPUWinograd.swift`); 3x3, stride-2, padding-1 convs with at least 16 channels through its
/// stride-2 variant (`CPUWinogradStride2.swift`; weight gradients there only for outputs of 16x16
/// and more). Every other shape goes through im2col + GEMM, the images split over the
/// cores (forward and backward-data: blocks of images handed out dynamically, `parallelBlocks`;
/// weight gradients: one static range per thread): each thread lays out its images' patches
/// (im2col, [C*k*k][images*OH*OW], small enough to stay in cache), and one single-threaded
/// cblas_sgemm against the [Cout][C*k*k] weights writes the output. Small outputs (8x8 pixels)
/// are grouped several images per GEMM; a 1x1, stride-1 conv needs no im2col: the image already
/// is its column matrix.
///
/// The pre-activation WideResNet feeds convolutions with act(x). The `activation:` variants take
/// x and apply the leaky ReLU while laying out the input (Winograd pack, im2col), and its
/// derivative at x while writing the input gradient (Winograd unpack, the gathering col2im), so
/// act(x) and the gradient with respect to it are never written to memory. They compute the very
/// same float operations per element as activationForward / activationBackward followed by the
/// plain convolution. Swish, 1x1 stride-1 convs and col2im shapes without the gathering kernel fall
/// back to the separate ops (`composedConv2d*`).
extension CPUBackend {
    // MARK: Protocol entry points

    public func conv2dForward(_ s: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer,
                              bias: DeviceBuffer?, output: DeviceBuffer) {
        precondition(input.count >= s.inputCount && output.count >= s.outputCount && weight.count >= s.weightCount)
        convolutionForward(s, input: f(input), leaky: nil, weight: f(weight), bias: bias.map { f($0) },
                           output: f(output))
    }

    /// The im2col / 1x1 path adds the product onto the output as it stores it (no scratch, no
    /// second pass); the Winograd shapes use the composed default.
    public func conv2dForwardAdding(_ s: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?,
                                    scratch: DeviceBuffer, output: DeviceBuffer) {
        guard !winogradApplies(s, backward: false) && !winogradStride2Applies(s) else {
            composedConv2dForwardAdding(s, input: input, weight: weight, bias: bias, scratch: scratch, output: output)
            return
        }
        precondition(input.count >= s.inputCount && output.count >= s.outputCount && weight.count >= s.weightCount)
        convolutionForward(s, input: f(input), leaky: nil, weight: f(weight), bias: bias.map { f($0) },
                           output: f(output), accumulate: true)
    }

    public func conv2dBackwardData(_ s: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                                   gradInput: DeviceBuffer, accumulate: Bool) {
        precondition(gradOutput.count >= s.outputCount && gradInput.count >= s.inputCount
                     && weight.count >= s.weightCount)
        convolutionBackwardData(s, gradOutput: f(gradOutput), weight: f(weight), gate: nil, slope: 0,
                                gradInput: f(gradInput), accumulate: accumulate)
    }

    public func conv2dBackwardFilter(_ s: Conv2DShape, input: DeviceBuffer, gradOutput: DeviceBuffer,
                                     gradWeight: DeviceBuffer, gradBias: DeviceBuffer?, accumulate: Bool) {
        precondition(input.count >= s.inputCount && gradOutput.count >= s.outputCount
                     && gradWeight.count >= s.weightCount)
        convolutionBackwardFilter(s, input: f(input), leaky: nil, gradOutput: f(gradOutput),
                                  gradWeight: f(gradWeight), accumulate: accumulate)
        if let gradBias {
            biasGradient(gradOutput, outer: s.batch, channels: s.outChannels, inner: s.outHeight * s.outWidth,
                         gradBias: gradBias, accumulate: accumulate)
        }
    }

    /// The Winograd convs write `inputSigns` as their input transform reads the input; every other
    /// path writes them in a pass of their own, so the backward may always read them.
    public func conv2dForward(_ s: Conv2DShape, input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                              weight: DeviceBuffer, bias: DeviceBuffer?, output: DeviceBuffer,
                              inputSigns: DeviceBuffer?) {
        guard let slope = fusedSlope(activation, s) else {
            composedConv2dForward(s, input: input, activation: activation, scratch: scratch, weight: weight, bias: bias,
                                  output: output)
            if let inputSigns { writeSigns(s, input: input, signs: inputSigns) }
            return
        }
        precondition(input.count >= s.inputCount && output.count >= s.outputCount && weight.count >= s.weightCount)
        let fused = winogradApplies(s, backward: false) || winogradStride2Applies(s)
        convolutionForward(s, input: f(input), leaky: slope, weight: f(weight), bias: bias.map { f($0) },
                           output: f(output), signs: fused ? signWords(inputSigns, of: s) : nil)
        if let inputSigns, !fused { writeSigns(s, input: input, signs: inputSigns) }
    }

    /// The words of an ActivationSigns buffer for the input of `s` (nil: none), checked for size.
    func signWords(_ signs: DeviceBuffer?, of s: Conv2DShape) -> UnsafeMutablePointer<UInt16>? {
        guard let signs else { return nil }
        precondition(signs.count >= ActivationSigns.floatCount(s),
                     "inputSigns holds \(signs.count) of \(ActivationSigns.floatCount(s)) floats")
        return signWords(signs)
    }

    /// ActivationSigns of the input of `s`, image by image over the threads.
    func writeSigns(_ s: Conv2DShape, input: DeviceBuffer, signs: DeviceBuffer) {
        let x = UnsafeSendable(f(input)), words = UnsafeSendable(signWords(signs, of: s)!)
        let rows = s.inChannels * s.height, perRow = (s.width + 15) / 16
        parallelImages(s.batch) { _, images in
            jem_activation_signs(x.value + images.lowerBound * rows * s.width, images.count * rows, Int32(s.width),
                                 words.value + images.lowerBound * rows * perRow)
        }
    }

    /// With `inputSigns`, the Winograd convs read the activation's derivative from them instead of
    /// from `input` (bit for bit the same result).
    public func conv2dBackwardData(_ s: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                                   input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                                   gradInput: DeviceBuffer, accumulate: Bool, inputSigns: DeviceBuffer?) {
        guard let slope = fusedSlope(activation, s),
              winogradApplies(s, backward: true) || winogradStride2Applies(s)
                || jem_col2im_gathers(Int32(s.height), Int32(s.width), Int32(s.kernel), Int32(s.stride),
                                      Int32(s.padding)) != 0 else {
            composedConv2dBackwardData(s, gradOutput: gradOutput, weight: weight, input: input, activation: activation,
                                       scratch: scratch, gradInput: gradInput, accumulate: accumulate)
            return
        }
        precondition(gradOutput.count >= s.outputCount && gradInput.count >= s.inputCount
                     && input.count >= s.inputCount && weight.count >= s.weightCount)
        convolutionBackwardData(s, gradOutput: f(gradOutput), weight: f(weight), gate: f(input),
                                signs: signWords(inputSigns, of: s), slope: slope, gradInput: f(gradInput),
                                accumulate: accumulate)
    }

    public func conv2dBackwardFilter(_ s: Conv2DShape, input: DeviceBuffer, activation: Activation,
                                     scratch: DeviceBuffer, gradOutput: DeviceBuffer, gradWeight: DeviceBuffer,
                                     gradBias: DeviceBuffer?, accumulate: Bool) {
        guard let slope = fusedSlope(activation, s) else {
            composedConv2dBackwardFilter(s, input: input, activation: activation, scratch: scratch,
                                         gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias,
                                         accumulate: accumulate)
            return
        }
        precondition(input.count >= s.inputCount && gradOutput.count >= s.outputCount
                     && gradWeight.count >= s.weightCount)
        convolutionBackwardFilter(s, input: f(input), leaky: slope, gradOutput: f(gradOutput),
                                  gradWeight: f(gradWeight), accumulate: accumulate)
        if let gradBias {
            biasGradient(gradOutput, outer: s.batch, channels: s.outChannels, inner: s.outHeight * s.outWidth,
                         gradBias: gradBias, accumulate: accumulate)
        }
    }

    /// With a Winograd conv of a leaky-ReLU-activated input, the projection shortcut (im2col path,
    /// 1x1) of each chunk of images goes into a chunk-sized scratch that stays in cache, and the
    /// conv's output transform adds it as it stores the output: the block output is written once,
    /// where the composed ops write it, read it back from memory and write it again.
    public func conv2dForwardAddingProjection(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation,
                                              scratch: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?,
                                              projection: Conv2DShape, projectionInput: DeviceBuffer,
                                              projectionWeight: DeviceBuffer, projectionBias: DeviceBuffer?,
                                              projectionScratch: DeviceBuffer, output: DeviceBuffer,
                                              inputSigns: DeviceBuffer?) {
        guard let slope = fusedSlope(activation, shape), projection.isProjection(addingOntoOutputOf: shape),
              winogradApplies(shape, backward: false) || winogradStride2Applies(shape) else {
            composedConv2dForwardAddingProjection(shape, input: input, activation: activation, scratch: scratch,
                                                  weight: weight, bias: bias, projection: projection,
                                                  projectionInput: projectionInput, projectionWeight: projectionWeight,
                                                  projectionBias: projectionBias, projectionScratch: projectionScratch,
                                                  output: output, inputSigns: inputSigns)
            return
        }
        let signs = signWords(inputSigns, of: shape)
        precondition(input.count >= shape.inputCount && output.count >= shape.outputCount
                     && weight.count >= shape.weightCount && projectionInput.count >= projection.inputCount
                     && projectionWeight.count >= projection.weightCount)
        let x = UnsafeSendable(f(projectionInput)), w = UnsafeSendable(f(projectionWeight))
        let b = UnsafeSendable(projectionBias.map { f($0) })
        let group = imagesPerGemm(projection), imageIn = projection.inChannels * projection.height * projection.width
        let prefill: (Int, Range<Int>, UnsafeMutablePointer<Float>) -> Void = { thread, images, addend in
            let input = x.value + images.lowerBound * imageIn
            for first in stride(from: 0, to: images.count, by: group) {
                self.im2colForward(projection, images: first..<min(first + group, images.count), thread: thread,
                                   input: input, leaky: nil, weight: w.value, bias: b.value, output: addend,
                                   accumulate: false)
            }
        }
        if winogradApplies(shape, backward: false) {
            winogradConvolution(shape, input: f(input), leaky: slope, weight: f(weight), bias: bias.map { f($0) },
                                gate: nil, signs: signs, slope: 0, output: f(output), backward: false,
                                accumulate: false, prefill: prefill)
        } else {
            winogradStride2Convolution(shape, input: f(input), leaky: slope, weight: f(weight),
                                       bias: bias.map { f($0) }, gate: nil, signs: signs, slope: 0, output: f(output),
                                       backward: false, accumulate: false, prefill: prefill)
        }
    }

    /// As the forward: the projection's input gradient of each chunk of images goes into the
    /// chunk scratch, and the Winograd backward-data of the (stride-1) conv adds it as it stores
    /// gradInput.
    public func conv2dBackwardDataAddingProjection(_ shape: Conv2DShape, gradOutput: DeviceBuffer,
                                                   weight: DeviceBuffer, input: DeviceBuffer, activation: Activation,
                                                   scratch: DeviceBuffer, projection: Conv2DShape,
                                                   projectionGradOutput: DeviceBuffer, projectionWeight: DeviceBuffer,
                                                   gradInput: DeviceBuffer, inputSigns: DeviceBuffer?) {
        guard let slope = fusedSlope(activation, shape), projection.isProjection(sharingInputOf: shape),
              winogradApplies(shape, backward: true) else {
            composedConv2dBackwardDataAddingProjection(shape, gradOutput: gradOutput, weight: weight, input: input,
                                                       activation: activation, scratch: scratch,
                                                       projection: projection,
                                                       projectionGradOutput: projectionGradOutput,
                                                       projectionWeight: projectionWeight, gradInput: gradInput,
                                                       inputSigns: inputSigns)
            return
        }
        precondition(gradOutput.count >= shape.outputCount && gradInput.count >= shape.inputCount
                     && input.count >= shape.inputCount && weight.count >= shape.weightCount
                     && projectionGradOutput.count >= projection.outputCount
                     && projectionWeight.count >= projection.weightCount)
        let dy = UnsafeSendable(f(projectionGradOutput)), w = UnsafeSendable(f(projectionWeight))
        let group = imagesPerGemm(projection), imageOut = projection.outChannels * projection.outHeight * projection.outWidth
        let prefill: (Int, Range<Int>, UnsafeMutablePointer<Float>) -> Void = { thread, images, addend in
            let gradients = dy.value + images.lowerBound * imageOut
            for first in stride(from: 0, to: images.count, by: group) {
                self.im2colBackwardData(projection, images: first..<min(first + group, images.count), thread: thread,
                                        gradOutput: gradients, weight: w.value, gate: nil, slope: 0,
                                        gradInput: addend, accumulate: false)
            }
        }
        winogradConvolution(shape, input: f(gradOutput), leaky: nil, weight: f(weight), bias: nil, gate: f(input),
                            signs: signWords(inputSigns, of: shape), slope: slope, output: f(gradInput),
                            backward: true, accumulate: false, prefill: prefill)
    }

    /// The leaky ReLU's slope when `activation` fuses into the convolution `s`: a leaky ReLU (swish
    /// stays a separate op) and not a 1x1 stride-1 conv (which reads its input in place).
    private func fusedSlope(_ activation: Activation, _ s: Conv2DShape) -> Float? {
        guard fusesActivations, !s.isPointwise, case .leakyReLU(let slope) = activation else { return nil }
        return slope
    }

    // MARK: Implementations

    /// output (+)= conv(leaky ? act(x) : x) + bias (`accumulate`: im2col and 1x1 shapes only).
    /// `signs`: the Winograd shapes' ActivationSigns of x (with leaky), written as x is read.
    func convolutionForward(_ s: Conv2DShape, input: UnsafeMutablePointer<Float>, leaky: Float?,
                            weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?,
                            output: UnsafeMutablePointer<Float>, accumulate: Bool = false,
                            signs: UnsafeMutablePointer<UInt16>? = nil) {
        precondition(!accumulate || (!winogradApplies(s, backward: false) && !winogradStride2Applies(s)))
        if winogradApplies(s, backward: false) {
            winogradConvolution(s, input: input, leaky: leaky, weight: weight, bias: bias, gate: nil, signs: signs,
                                slope: 0, output: output, backward: false, accumulate: false)
            return
        }
        if winogradStride2Applies(s) {
            winogradStride2Convolution(s, input: input, leaky: leaky, weight: weight, bias: bias, gate: nil,
                                       signs: signs, slope: 0, output: output, backward: false, accumulate: false)
            return
        }
        precondition(signs == nil, "signs are written by the Winograd convs only")
        let x = UnsafeSendable(input), w = UnsafeSendable(weight), y = UnsafeSendable(output)
        let b = UnsafeSendable(bias)
        precondition(leaky == nil || !s.isPointwise)
        parallelBlocks(s.batch, block: imagesPerGemm(s)) { thread, images in
            im2colForward(s, images: images, thread: thread, input: x.value, leaky: leaky, weight: w.value,
                          bias: b.value, output: y.value, accumulate: accumulate)
        }
    }

    /// The im2col path's forward for one block of at most imagesPerGemm(s) images, on `thread`'s
    /// scratch: output (+)= conv(leaky ? act(x) : x) + bias for those images (input and output
    /// point at image 0).
    func im2colForward(_ s: Conv2DShape, images: Range<Int>, thread: Int, input: UnsafeMutablePointer<Float>,
                       leaky: Float?, weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?,
                       output: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let spatial = s.outHeight * s.outWidth, imageIn = s.inChannels * s.height * s.width
        let space = threadScratch[thread]
        let first = images.lowerBound, count = images.count, columnsLD = count * spatial
        let out = output + first * s.outChannels * spatial
        let columns: UnsafeMutablePointer<Float>
        if s.isPointwise {
            columns = input + first * imageIn   // count == 1: the image is its column matrix
        } else {
            columns = space.columns.reserve(s.patchSize * columnsLD)
            for j in 0..<count {
                Self.im2col(s, image: input + (first + j) * imageIn, leaky: leaky, col: columns + j * spatial,
                            ld: columnsLD)
            }
        }
        // One image writes its NCHW output directly; a group goes through [Cout][images*HW].
        let product = count == 1 ? out : space.grouped.reserve(s.outChannels * columnsLD)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(s.outChannels), Int32(columnsLD),
                    Int32(s.patchSize), 1, weight, Int32(s.patchSize), columns, Int32(columnsLD),
                    count == 1 && accumulate ? 1 : 0, product, Int32(columnsLD))
        for j in 0..<count {
            for c in 0..<s.outChannels {
                let row = out + (j * s.outChannels + c) * spatial, value = bias?[c] ?? 0
                if count == 1 {
                    if bias != nil { for i in 0..<spatial { row[i] += value } }
                } else if accumulate {
                    let source = product + c * columnsLD + j * spatial
                    for i in 0..<spatial { row[i] += source[i] + value }
                } else {
                    let source = product + c * columnsLD + j * spatial
                    for i in 0..<spatial { row[i] = source[i] + value }
                }
            }
        }
    }

    /// gradInput (+)= [gate ? act'(gate) * : ] conv^T(gradOutput). A gate needs a Winograd shape or
    /// a gathering col2im shape. `signs` (ActivationSigns of the gate, or nil): what the Winograd
    /// shapes read instead of the gate.
    func convolutionBackwardData(_ s: Conv2DShape, gradOutput: UnsafeMutablePointer<Float>,
                                 weight: UnsafeMutablePointer<Float>, gate: UnsafeMutablePointer<Float>?,
                                 signs: UnsafeMutablePointer<UInt16>? = nil, slope: Float,
                                 gradInput: UnsafeMutablePointer<Float>, accumulate: Bool) {
        if winogradApplies(s, backward: true) {
            winogradConvolution(s, input: gradOutput, leaky: nil, weight: weight, bias: nil, gate: gate,
                                signs: gate == nil ? nil : signs, slope: slope, output: gradInput, backward: true,
                                accumulate: accumulate)
            return
        }
        if winogradStride2Applies(s) {
            winogradStride2Convolution(s, input: gradOutput, leaky: nil, weight: weight, bias: nil, gate: gate,
                                       signs: gate == nil ? nil : signs, slope: slope, output: gradInput,
                                       backward: true, accumulate: accumulate)
            return
        }
        let dy = UnsafeSendable(gradOutput), w = UnsafeSendable(weight), dx = UnsafeSendable(gradInput)
        let gates = UnsafeSendable(gate)
        precondition(gate == nil || (!s.isPointwise && jem_col2im_gathers(Int32(s.height), Int32(s.width),
                                                                          Int32(s.kernel), Int32(s.stride),
                                                                          Int32(s.padding)) != 0))
        parallelBlocks(s.batch, block: imagesPerGemm(s)) { thread, images in
            im2colBackwardData(s, images: images, thread: thread, gradOutput: dy.value, weight: w.value,
                               gate: gates.value, slope: slope, gradInput: dx.value, accumulate: accumulate)
        }
    }

    /// The im2col path's backward-data for one block of at most imagesPerGemm(s) images, on
    /// `thread`'s scratch: gradInput (+)= [gate ? act'(gate) * : ] conv^T(gradOutput) for those
    /// images (the pointers at image 0).
    func im2colBackwardData(_ s: Conv2DShape, images: Range<Int>, thread: Int, gradOutput: UnsafeMutablePointer<Float>,
                            weight: UnsafeMutablePointer<Float>, gate: UnsafeMutablePointer<Float>?, slope: Float,
                            gradInput: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let spatial = s.outHeight * s.outWidth, imageIn = s.inChannels * s.height * s.width
        let space = threadScratch[thread]
        let first = images.lowerBound, count = images.count, columnsLD = count * spatial
        let g = gradOutput + first * s.outChannels * spatial, d = gradInput + first * imageIn
        if s.isPointwise {
            // dx[Cin][HW] (+)= W^T[Cin][Cout] x dy[Cout][HW]  (count == 1)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(s.inChannels), Int32(spatial),
                        Int32(s.outChannels), 1, weight, Int32(s.patchSize), g, Int32(spatial),
                        accumulate ? 1 : 0, d, Int32(spatial))
            return
        }
        let gradients = count == 1 ? g : Self.gatherImages(g, count: count, channels: s.outChannels,
                                                            spatial: spatial, into: space.grouped)
        let columns = space.columns.reserve(s.patchSize * columnsLD)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(s.patchSize), Int32(columnsLD),
                    Int32(s.outChannels), 1, weight, Int32(s.patchSize), gradients, Int32(columnsLD), 0,
                    columns, Int32(columnsLD))
        for j in 0..<count {
            Self.col2im(s, col: columns + j * spatial, gate: gate.map { $0 + (first + j) * imageIn },
                        slope: slope, image: d + j * imageIn, accumulate: accumulate, ld: columnsLD)
        }
    }

    /// gradWeight (+)= the weight gradient of conv(leaky ? act(x) : x) (the bias gradient is the
    /// caller's).
    func convolutionBackwardFilter(_ s: Conv2DShape, input: UnsafeMutablePointer<Float>, leaky: Float?,
                                   gradOutput: UnsafeMutablePointer<Float>, gradWeight: UnsafeMutablePointer<Float>,
                                   accumulate: Bool) {
        if winogradFilterGradientApplies(s) {
            winogradFilterGradient(s, input: input, leaky: leaky, gradOutput: gradOutput, gradWeight: gradWeight,
                                   accumulate: accumulate)
            return
        }
        if winogradStride2FilterGradientApplies(s) {
            winogradStride2FilterGradient(s, input: input, leaky: leaky, gradOutput: gradOutput,
                                          gradWeight: gradWeight, accumulate: accumulate)
            return
        }
        let spatial = s.outHeight * s.outWidth, imageIn = s.inChannels * s.height * s.width
        let x = UnsafeSendable(input), dy = UnsafeSendable(gradOutput)
        let scratch = threadScratch, group = imagesPerGemm(s)
        precondition(leaky == nil || !s.isPointwise)
        // Each thread sums its images' weight gradients into its own buffer; the buffers are then
        // added in thread order (a fixed partition: deterministic for a given core count).
        let used = parallelImages(s.batch) { thread, images in
            let partial = scratch[thread].weightGradient.reserve(s.weightCount)
            for first in stride(from: images.lowerBound, to: images.upperBound, by: group) {
                let count = min(group, images.upperBound - first), columnsLD = count * spatial
                let g = dy.value + first * s.outChannels * spatial
                let columns: UnsafeMutablePointer<Float>
                if s.isPointwise {
                    columns = x.value + first * imageIn
                } else {
                    columns = scratch[thread].columns.reserve(s.patchSize * columnsLD)
                    for j in 0..<count {
                        Self.im2col(s, image: x.value + (first + j) * imageIn, leaky: leaky, col: columns + j * spatial,
                                    ld: columnsLD)
                    }
                }
                let gradients = count == 1 ? g : Self.gatherImages(g, count: count, channels: s.outChannels,
                                                                    spatial: spatial,
                                                                    into: scratch[thread].grouped)
                // dW[Cout][C*k*k] (+)= dy[Cout][images*HW] x col^T[images*HW][C*k*k]
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(s.outChannels), Int32(s.patchSize),
                            Int32(columnsLD), 1, gradients, Int32(columnsLD), columns, Int32(columnsLD),
                            first == images.lowerBound ? 0 : 1, partial, Int32(s.patchSize))
            }
        }
        if !accumulate { gradWeight.update(repeating: 0, count: s.weightCount) }
        for t in 0..<used {
            jem_axpby(1, threadScratch[t].weightGradient.reserve(s.weightCount), 1, gradWeight, s.weightCount)
        }
    }

    /// Images per GEMM on the im2col path: small outputs (8x8 pixels) are grouped so that the
    /// GEMM's N (images x output pixels) reaches 256 (OpenBLAS runs 64-column GEMMs at about 60%
    /// of the speed of 256-column ones); 1x1 stride-1 convs use the images in place.
    func imagesPerGemm(_ s: Conv2DShape) -> Int {
        if s.isPointwise { return 1 }
        return max(1, min(8, 256 / max(s.outHeight * s.outWidth, 1)))
    }

    /// [channels][count*spatial] from `count` consecutive NCHW images of [channels][spatial].
    static func gatherImages(_ source: UnsafeMutablePointer<Float>, count: Int, channels: Int, spatial: Int,
                             into scratch: Scratch) -> UnsafeMutablePointer<Float> {
        let out = scratch.reserve(channels * count * spatial)
        for j in 0..<count {
            for c in 0..<channels {
                (out + c * count * spatial + j * spatial).update(from: source + (j * channels + c) * spatial,
                                                                 count: spatial)
            }
        }
        return out
    }

    /// Splits `count` images into one contiguous run per thread (at most the core count) and
    /// returns how many threads ran. OpenBLAS itself runs single-threaded (see init).
    @discardableResult
    func parallelImages(_ count: Int, _ body: (Int, Range<Int>) -> Void) -> Int {
        let threads = min(Parallel.threads, max(count, 1))
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let start = count * t / threads, end = count * (t + 1) / threads
                if start < end { box.value(t, start..<end) }
            }
        }
        return threads
    }

    /// Cuts `count` images into consecutive blocks of `block` images (the last one shorter) and
    /// runs `body(thread, images)` on every block; the threads take the next block from a shared
    /// counter as they finish the previous one. The blocks are a fixed function of (count, block),
    /// so for work whose result per block does not depend on the thread that computes it
    /// (forward and backward-data convolutions: each image's output is its own) the result is
    /// the same whatever the timing, while a thread that the OS preempts (the 2 cores are shared)
    /// no longer holds back half of the batch: the other one takes over the remaining blocks.
    /// `thread` indexes the per-thread scratch; sums over images (weight gradients) use the
    /// static split of `parallelImages` instead.
    func parallelBlocks(_ count: Int, block: Int, _ body: (Int, Range<Int>) -> Void) {
        let block = max(1, block), blocks = (count + block - 1) / block
        let threads = min(Parallel.threads, blocks)
        guard threads > 1 else {
            for b in 0..<blocks { body(0, b * block ..< min(count, (b + 1) * block)) }
            return
        }
        let counter = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        counter.initialize(to: 0)
        defer { counter.deallocate() }
        let next = UnsafeSendable(counter)
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                while true {
                    let b = next.value.withMemoryRebound(to: CLong.self, capacity: 1) { Int(jem_fetch_increment($0)) }
                    if b >= blocks { break }
                    box.value(t, b * block ..< min(count, (b + 1) * block))
                }
            }
        }
    }

    /// col[(c*k + ky)*k + kx][oy*OW + ox] = image[c][oy*s-p+ky][ox*s-p+kx] (0 outside), through the
    /// leaky ReLU with slope `leaky` when given. Rows of col are `ld` floats apart (ld >= OH*OW:
    /// several images side by side).
    static func im2col(_ s: Conv2DShape, image: UnsafeMutablePointer<Float>, leaky: Float?,
                       col: UnsafeMutablePointer<Float>, ld: Int) {
        jem_im2col(image, Int32(s.inChannels), Int32(s.height), Int32(s.width), Int32(s.kernel), Int32(s.stride),
                   Int32(s.padding), leaky == nil ? 0 : 1, leaky ?? 0, col, ld)
    }

    /// The adjoint of im2col for one image: image (+)= the sum of the col entries that read each
    /// pixel, times the leaky ReLU's derivative at `gate` when given.
    static func col2im(_ s: Conv2DShape, col: UnsafeMutablePointer<Float>, gate: UnsafeMutablePointer<Float>?,
                       slope: Float, image: UnsafeMutablePointer<Float>, accumulate: Bool, ld: Int) {
        jem_col2im(col, Int32(s.inChannels), Int32(s.height), Int32(s.width), Int32(s.kernel), Int32(s.stride),
                   Int32(s.padding), gate, slope, image, accumulate ? 1 : 0, ld)
    }
}
