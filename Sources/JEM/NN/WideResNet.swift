import JEMBackend
/// The architecture of the official JEM WideResNet (`wideresnet.py` + `CCF` in `train_wrn_ebm.py`).
public struct WideResNetSpec: Sendable, Equatable, CustomStringConvertible {
    /// 6n+4.
    public var depth: Int
    public var widen: Int
    public var inputChannels: Int
    public var imageHeight: Int
    public var imageWidth: Int
    public var classCount: Int
    public var activation: Activation

    public init(depth: Int, widen: Int, inputChannels: Int = 3, imageHeight: Int = 32, imageWidth: Int = 32,
                classCount: Int = 10, activation: Activation = .leakyReLU(slope: 0.2)) {
        self.depth = depth
        self.widen = widen
        self.inputChannels = inputChannels
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.classCount = classCount
        self.activation = activation
    }

    /// Bounds on `wrn-D-W` far beyond any trainable network, so that sizes computed from a name
    /// (channels, parameter counts) can never overflow; the memory estimate refuses big ones.
    public static let maxDepth = 1000
    public static let maxWiden = 1000

    /// Parses `wrn-D-W` (e.g. `wrn-28-10`); nil when malformed, when D is not 6n+4, or when D or W
    /// is beyond `maxDepth` / `maxWiden`.
    public static func parse(_ name: String) -> (depth: Int, widen: Int)? {
        let parts = name.lowercased().split(separator: "-")
        guard parts.count == 3, parts[0] == "wrn", let depth = Int(parts[1]), let widen = Int(parts[2]),
              depth >= 10, depth <= maxDepth, (depth - 4) % 6 == 0, widen >= 1, widen <= maxWiden else { return nil }
        return (depth, widen)
    }

    /// Floats in every tensor of the state_dict (`WideResNet.parameters`), computed without
    /// allocating: a checkpoint must hold exactly this many before a network is built for it.
    public var parameterCount: Int {
        let c = stageChannels, k = classCount
        var total = inputChannels * c[0] * 9 + c[0]
        var inChannels = c[0]
        for stage in 0..<3 {
            for index in 0..<blocksPerStage {
                let out = c[stage + 1], stride = (index == 0 && stage > 0) ? 2 : 1
                total += inChannels * out * 9 + out + out * out * 9 + out
                if stride != 1 || inChannels != out { total += inChannels * out + out }
                inChannels = out
            }
        }
        return total + 2 * (featureCount * k + k) + featureCount + 1
    }

    /// A lower bound on the bytes a training run of this network needs with `batch` images:
    /// weights, gradients and two Adam moments, and one activation per block output. Used to
    /// refuse absurd sizes with a message instead of an allocation failure (it ignores the
    /// replay buffer, which is checked on its own).
    public func estimatedBytes(batch: Int) -> Double {
        var activations = Double(stageChannels[0] * imageHeight * imageWidth)
        var h = imageHeight, w = imageWidth
        for stage in 0..<3 {
            if stage > 0 { h = (h + 1) / 2; w = (w + 1) / 2 }
            activations += Double(blocksPerStage) * Double(stageChannels[stage + 1] * h * w)
        }
        return 4 * (4 * Double(parameterCount) + Double(batch) * activations)
    }

    public var blocksPerStage: Int { (depth - 4) / 6 }
    /// Channels of the stem and the three stages: 16, 16k, 32k, 64k.
    public var stageChannels: [Int] { [16, 16 * widen, 32 * widen, 64 * widen] }
    public var featureCount: Int { 64 * widen }
    public var inputCount: Int { inputChannels * imageHeight * imageWidth }
    public var name: String { "wrn-\(depth)-\(widen)" }
    public var description: String {
        "\(name) (\(activation)), input \(inputChannels)×\(imageHeight)×\(imageWidth), \(classCount) classes"
    }
}

/// The official JEM network, pre-activation WideResNet without normalisation, on any backend:
///
///     conv1 3x3 (C -> 16) -> 3 stages of n wide_basic blocks (stride 1, 2, 2 on the first block's
///     second conv) -> act -> global average pool -> class_output Linear(64k -> K) = logits
///     wide_basic(x) = conv2(act(conv1(act(x)))) + shortcut(x), shortcut = 1x1 conv of the RAW x
///     when the shape changes, identity otherwise.
///
/// f(x) = LogSumExp(logits) is the negative energy. Activations for up to `maxBatch` images are
/// allocated once; forward keeps what backward needs. `backward(.inputOnly)` computes only the
/// input gradient (the SGLD step); `.full` also accumulates every parameter gradient.
public final class WideResNet {
    public let spec: WideResNetSpec
    public let maxBatch: Int
    let backend: any Backend

    let stem: Conv2D
    let blocks: [WideBasicBlock]
    let classOutput: Linear
    /// The official CCF's unused heads, kept only so checkpoints keep the official names.
    let energyOutput: Linear
    let unusedLinear: Linear

    // Head activations and gradient scratch.
    let headActivated: DeviceBuffer   // act(out of the last block)
    let pooled: DeviceBuffer          // [batch][features]
    let pooledGrad: DeviceBuffer
    public let logits: DeviceBuffer   // [batch][classes]
    let gradA: DeviceBuffer, gradB: DeviceBuffer   // ping-pong block-output gradients
    let stemOutput: DeviceBuffer
    /// The input of the last forward (the stem's weight gradient needs it).
    private var lastInput: DeviceBuffer?

    public enum GradientMode { case inputOnly, full }

    public init(spec: WideResNetSpec, maxBatch: Int, backend: any Backend) throws {
        precondition((spec.depth - 4) % 6 == 0 && spec.depth >= 10, "WRN depth must be 6n+4")
        self.spec = spec
        self.maxBatch = maxBatch
        self.backend = backend
        let channels = spec.stageChannels
        stem = try Conv2D(name: "f.conv1", inChannels: spec.inputChannels, outChannels: channels[0], kernel: 3,
                          stride: 1, padding: 1, backend: backend)
        var blocks: [WideBasicBlock] = []
        var inChannels = channels[0], height = spec.imageHeight, width = spec.imageWidth
        var largest = maxBatch * channels[0] * height * width
        stemOutput = try backend.makeBuffer(count: largest)
        for stage in 0..<3 {
            for index in 0..<spec.blocksPerStage {
                let stride = (index == 0 && stage > 0) ? 2 : 1
                let block = try WideBasicBlock(name: "f.layer\(stage + 1).\(index)", inChannels: inChannels,
                                               outChannels: channels[stage + 1], stride: stride, height: height,
                                               width: width, maxBatch: maxBatch, activation: spec.activation,
                                               backend: backend)
                blocks.append(block)
                inChannels = channels[stage + 1]
                height = block.outHeight
                width = block.outWidth
                largest = max(largest, maxBatch * inChannels * block.height * block.width)
            }
        }
        self.blocks = blocks
        let features = spec.featureCount
        unusedLinear = try Linear(name: "f.linear", inFeatures: features, outFeatures: spec.classCount,
                                  trainable: false, backend: backend)
        energyOutput = try Linear(name: "energy_output", inFeatures: features, outFeatures: 1, trainable: false,
                                  backend: backend)
        classOutput = try Linear(name: "class_output", inFeatures: features, outFeatures: spec.classCount,
                                 backend: backend)
        let finalCount = maxBatch * features * height * width
        headActivated = try backend.makeBuffer(count: finalCount)
        pooled = try backend.makeBuffer(count: maxBatch * features)
        pooledGrad = try backend.makeBuffer(count: maxBatch * features)
        logits = try backend.makeBuffer(count: maxBatch * spec.classCount)
        gradA = try backend.makeBuffer(count: largest)
        gradB = try backend.makeBuffer(count: largest)
    }

    /// Every tensor in the official state_dict order: f.conv1, f.layer*, f.linear, energy_output,
    /// class_output.
    public var parameters: [Parameter] {
        var list = [stem.weight, stem.bias]
        for block in blocks { list += block.parameters }
        list += [unusedLinear.weight, unusedLinear.bias, energyOutput.weight, energyOutput.bias,
                 classOutput.weight, classOutput.bias]
        return list
    }

    public var trainableParameters: [Parameter] { parameters.filter(\.trainable) }

    /// PyTorch-default initialisation from Philox (seed, stream = parameter index).
    public func initialize(seed: UInt64) {
        for (index, layer) in allLayers.enumerated() {
            layer.weight.initializeUniform(fanIn: layer.fanIn, seed: seed, stream: UInt64(2 * index), backend: backend)
            layer.bias.initializeUniform(fanIn: layer.fanIn, seed: seed, stream: UInt64(2 * index + 1), backend: backend)
        }
    }

    private var allLayers: [(weight: Parameter, bias: Parameter, fanIn: Int)] {
        var list: [(Parameter, Parameter, Int)] = [(stem.weight, stem.bias, stem.fanIn)]
        for block in blocks {
            list.append((block.conv1.weight, block.conv1.bias, block.conv1.fanIn))
            list.append((block.conv2.weight, block.conv2.bias, block.conv2.fanIn))
            if let s = block.shortcut { list.append((s.weight, s.bias, s.fanIn)) }
        }
        for l in [unusedLinear, energyOutput, classOutput] { list.append((l.weight, l.bias, l.inFeatures)) }
        return list
    }

    public func zeroGradients() {
        for p in parameters { backend.fill(p.gradient, value: 0, offset: 0, count: p.count) }
    }

    /// Runs the network on `input` ([batch][C][H][W]); the logits land in `logits` ([batch][K]).
    @discardableResult
    public func forward(_ input: DeviceBuffer, batch: Int) -> DeviceBuffer {
        precondition(batch <= maxBatch, "batch \(batch) above the network's maxBatch \(maxBatch)")
        lastInput = input
        let s = stem.shape(batch: batch, height: spec.imageHeight, width: spec.imageWidth)
        stem.forward(s, input: input, output: stemOutput, on: backend)
        var x = stemOutput
        for block in blocks {
            block.forward(x, batch: batch, on: backend)
            x = block.output
        }
        let last = blocks[blocks.count - 1]
        let spatial = last.outHeight * last.outWidth, features = spec.featureCount
        backend.activationForward(spec.activation, x: x, y: headActivated, count: batch * features * spatial)
        backend.globalAveragePoolForward(x: headActivated, y: pooled, rows: batch * features, spatial: spatial)
        classOutput.forward(batch: batch, input: pooled, output: logits, on: backend)
        return logits
    }

    /// Backpropagates `gradLogits` ([batch][K]) through the last `forward`. Writes the input
    /// gradient into `gradInput` when given; in `.full` mode also adds every parameter gradient.
    public func backward(gradLogits: DeviceBuffer, batch: Int, gradInput: DeviceBuffer?, mode: GradientMode) {
        let full = mode == .full
        let last = blocks[blocks.count - 1]
        let spatial = last.outHeight * last.outWidth, features = spec.featureCount
        classOutput.backward(batch: batch, input: pooled, gradOutput: gradLogits, gradInput: pooledGrad,
                             parameters: full, on: backend)
        // Pool backward straight into the activation's input gradient slot, then through act.
        backend.globalAveragePoolBackward(gradY: pooledGrad, gradX: gradB, rows: batch * features, spatial: spatial,
                                          accumulate: false)
        backend.activationBackward(spec.activation, x: last.output, gradY: gradB, gradX: gradA,
                                   count: batch * features * spatial, accumulate: false)
        var gradOut = gradA, gradIn = gradB
        for (i, block) in blocks.enumerated().reversed() {
            let input = i == 0 ? stemOutput : blocks[i - 1].output
            block.backward(input: input, gradOutput: gradOut, gradInput: gradIn, batch: batch, parameters: full,
                           on: backend)
            swap(&gradOut, &gradIn)
        }
        let s = stem.shape(batch: batch, height: spec.imageHeight, width: spec.imageWidth)
        if full, let lastInput {
            backend.conv2dBackwardFilter(s, input: lastInput, gradOutput: gradOut,
                                         gradWeight: stem.weight.gradient, gradBias: stem.bias.gradient,
                                         accumulate: true)
        }
        if let gradInput {
            backend.conv2dBackwardData(s, gradOutput: gradOut, weight: stem.weight.value, gradInput: gradInput,
                                       accumulate: false)
        }
    }

    /// Multiply-adds of one forward pass per image (convolutions and the class head), the FLOP
    /// count convention of shared/bench: 2 FLOP per MAC.
    public var forwardMACsPerImage: Int {
        var macs = stem.shape(batch: 1, height: spec.imageHeight, width: spec.imageWidth).macs
        for block in blocks { macs += block.macsPerImage }
        return macs + spec.featureCount * spec.classCount
    }
}

/// wide_basic: out = conv2(act(conv1(act(x)))) + shortcut(x).
final class WideBasicBlock {
    let conv1: Conv2D
    let conv2: Conv2D
    let shortcut: Conv2D?
    let activation: Activation
    let inChannels: Int, outChannels: Int, stride: Int
    let height: Int, width: Int          // input resolution (conv1 runs here)
    let outHeight: Int, outWidth: Int

    // Sized for maxBatch. The convs of an activated input take act(x) / act(hidden) as the
    // backend decides: a fusing backend applies them on the fly, the others write them into the
    // scratch buffers activated1/2 and gradActivated1.
    let activated1: DeviceBuffer   // act(x)
    let hidden: DeviceBuffer       // conv1(act(x))
    let activated2: DeviceBuffer   // act(hidden)
    let output: DeviceBuffer
    let shortcutOutput: DeviceBuffer?
    let gradHidden: DeviceBuffer   // scratch: d act(hidden), then d hidden (fused: d hidden directly)
    let gradActivated1: DeviceBuffer
    // ActivationSigns of x and hidden, written by the forward convs for their input gradients (a
    // backend that keeps them reads 1 bit per value there instead of the whole tensor again).
    let inputSigns: DeviceBuffer
    let hiddenSigns: DeviceBuffer

    init(name: String, inChannels: Int, outChannels: Int, stride: Int, height: Int, width: Int, maxBatch: Int,
         activation: Activation, backend: any Backend) throws {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.stride = stride
        self.height = height
        self.width = width
        self.activation = activation
        conv1 = try Conv2D(name: name + ".conv1", inChannels: inChannels, outChannels: outChannels, kernel: 3, stride: 1,
                           padding: 1, backend: backend)
        conv2 = try Conv2D(name: name + ".conv2", inChannels: outChannels, outChannels: outChannels, kernel: 3,
                           stride: stride, padding: 1, backend: backend)
        shortcut = (stride != 1 || inChannels != outChannels)
            ? try Conv2D(name: name + ".shortcut.0", inChannels: inChannels, outChannels: outChannels, kernel: 1,
                         stride: stride, padding: 0, backend: backend)
            : nil
        let s2 = conv2.shape(batch: 1, height: height, width: width)
        outHeight = s2.outHeight
        outWidth = s2.outWidth
        let inCount = maxBatch * inChannels * height * width
        let hiddenCount = maxBatch * outChannels * height * width
        let outCount = maxBatch * outChannels * outHeight * outWidth
        activated1 = try backend.makeBuffer(count: inCount)
        hidden = try backend.makeBuffer(count: hiddenCount)
        activated2 = try backend.makeBuffer(count: hiddenCount)
        output = try backend.makeBuffer(count: outCount)
        shortcutOutput = shortcut == nil ? nil : try backend.makeBuffer(count: outCount)
        gradHidden = try backend.makeBuffer(count: hiddenCount)
        gradActivated1 = try backend.makeBuffer(count: inCount)
        inputSigns = try backend.makeBuffer(count: ActivationSigns.floatCount(batch: maxBatch, channels: inChannels,
                                                                              height: height, width: width))
        hiddenSigns = try backend.makeBuffer(count: ActivationSigns.floatCount(batch: maxBatch, channels: outChannels,
                                                                               height: height, width: width))
    }

    var parameters: [Parameter] {
        var list = [conv1.weight, conv1.bias, conv2.weight, conv2.bias]
        if let s = shortcut { list += [s.weight, s.bias] }
        return list
    }

    var macsPerImage: Int {
        conv1.shape(batch: 1, height: height, width: width).macs + conv2.shape(batch: 1, height: height, width: width).macs
            + (shortcut?.shape(batch: 1, height: height, width: width).macs ?? 0)
    }

    func forward(_ x: DeviceBuffer, batch: Int, on backend: any Backend) {
        let outCount = batch * outChannels * outHeight * outWidth
        let s1 = conv1.shape(batch: batch, height: height, width: width)
        let s2 = conv2.shape(batch: batch, height: height, width: width)
        backend.conv2dForward(s1, input: x, activation: activation, scratch: activated1, weight: conv1.weight.value,
                              bias: conv1.bias.value, output: hidden, inputSigns: inputSigns)
        if let shortcut, let shortcutOutput {
            // output = conv2(act(hidden)) + shortcut(x), the shortcut's own output buffer as scratch
            // (a backend that adds the shortcut as it stores the conv never touches it).
            backend.conv2dForwardAddingProjection(s2, input: hidden, activation: activation, scratch: activated2,
                                                  weight: conv2.weight.value, bias: conv2.bias.value,
                                                  projection: shortcut.shape(batch: batch, height: height,
                                                                             width: width),
                                                  projectionInput: x, projectionWeight: shortcut.weight.value,
                                                  projectionBias: shortcut.bias.value,
                                                  projectionScratch: shortcutOutput, output: output,
                                                  inputSigns: hiddenSigns)
        } else {
            backend.conv2dForward(s2, input: hidden, activation: activation, scratch: activated2,
                                  weight: conv2.weight.value, bias: conv2.bias.value, output: output,
                                  inputSigns: hiddenSigns)
            backend.axpby(alpha: 1, x: x, beta: 1, y: output, count: outCount)
        }
    }

    /// gradInput = d out / d x ^T gradOutput (overwritten); parameter gradients accumulate.
    func backward(input x: DeviceBuffer, gradOutput: DeviceBuffer, gradInput: DeviceBuffer, batch: Int,
                  parameters: Bool, on backend: any Backend) {
        let inCount = batch * inChannels * height * width
        let s1 = conv1.shape(batch: batch, height: height, width: width)
        let s2 = conv2.shape(batch: batch, height: height, width: width)
        let projection = shortcut?.shape(batch: batch, height: height, width: width)
        if let shortcut, let projection, parameters {
            shortcut.backward(projection, input: x, gradOutput: gradOutput, gradInput: nil, accumulateInput: false,
                              parameters: true, on: backend)
        }
        // The activations' derivatives are applied inside the convs' input gradients.
        if parameters {
            backend.conv2dBackwardFilter(s2, input: hidden, activation: activation, scratch: activated2,
                                         gradOutput: gradOutput, gradWeight: conv2.weight.gradient,
                                         gradBias: conv2.bias.gradient, accumulate: true)
        }
        backend.conv2dBackwardData(s2, gradOutput: gradOutput, weight: conv2.weight.value, input: hidden,
                                   activation: activation, scratch: activated2, gradInput: gradHidden,
                                   accumulate: false, inputSigns: hiddenSigns)
        if parameters {
            backend.conv2dBackwardFilter(s1, input: x, activation: activation, scratch: activated1,
                                         gradOutput: gradHidden, gradWeight: conv1.weight.gradient,
                                         gradBias: conv1.bias.gradient, accumulate: true)
        }
        // gradInput = shortcut^T(gradOutput) (or gradOutput itself) + the conv path's gradient.
        if let shortcut, let projection {
            backend.conv2dBackwardDataAddingProjection(s1, gradOutput: gradHidden, weight: conv1.weight.value,
                                                       input: x, activation: activation, scratch: gradActivated1,
                                                       projection: projection, projectionGradOutput: gradOutput,
                                                       projectionWeight: shortcut.weight.value, gradInput: gradInput,
                                                       inputSigns: inputSigns)
        } else {
            backend.copy(gradOutput, to: gradInput, count: inCount)
            backend.conv2dBackwardData(s1, gradOutput: gradHidden, weight: conv1.weight.value, input: x,
                                       activation: activation, scratch: gradActivated1, gradInput: gradInput,
                                       accumulate: true, inputSigns: inputSigns)
        }
    }
}
