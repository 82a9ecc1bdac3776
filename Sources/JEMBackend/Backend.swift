import Foundation
/// The op-level interface every compute engine implements: the operations one JEM iteration
/// needs, each with its backward, on float32 data that stays where the backend keeps it.
///
/// Conventions, shared by every backend:
/// - Images are NCHW, row-major; conv weights are `[outChannels][inChannels][k][k]` (PyTorch's).
/// - Matrices are row-major (C = alpha * op(A) * op(B) + beta * C, as `cblas_sgemm` RowMajor).
/// - Ops overwrite their output unless they take `accumulate: true`, which adds to it instead.
/// - Compute ops do not throw. A backend that can fail asynchronously (OpenCL) remembers its first
///   error and throws it from the next `download`, `synchronize` or allocation, like a CUDA
///   sticky error, so model code stays free of `try` on every op.
/// - Random numbers come from Philox addressed by `(seed, stream, element)`: every backend
///   draws the very same numbers for the same address (see `Philox`).
public protocol Backend: AnyObject {
    /// "cpu" or "opencl".
    var kind: BackendKind { get }
    /// Human-readable device, e.g. "CPU (2 threads, OpenBLAS Cooperlake)".
    var deviceDescription: String { get }

    // MARK: Buffers

    /// A new buffer of `count` elements (contents undefined).
    func makeBuffer(count: Int, type: ElementType) throws -> DeviceBuffer
    /// Copies host floats into `buffer[offset ..< offset + values.count]`.
    func upload(_ values: [Float], to buffer: DeviceBuffer, offset: Int) throws
    /// Copies host int32 values into an `.int32` buffer.
    func upload(_ values: [Int32], to buffer: DeviceBuffer, offset: Int) throws
    /// Reads `count` floats starting at `offset` back to the host (waits for pending work).
    func download(_ buffer: DeviceBuffer, offset: Int, count: Int) throws -> [Float]
    /// Reads `count` int32 values back to the host.
    func downloadInt32(_ buffer: DeviceBuffer, offset: Int, count: Int) throws -> [Int32]
    /// `destination[dstOffset ..< +count] = source[srcOffset ..< +count]` on the device.
    func copy(_ source: DeviceBuffer, sourceOffset: Int, to destination: DeviceBuffer,
              destinationOffset: Int, count: Int)
    /// Waits for queued work and reports the first asynchronous error, if any.
    func synchronize() throws
    /// What has crossed between the host and this backend's memory since it was made: every
    /// upload, download and reduction result. Benchmarks read it to check that training keeps
    /// its data on the device.
    var transfers: TransferCounts { get }

    // MARK: Dense

    /// C = alpha * op(A) * op(B) + beta * C (row-major), repeated `batch.count` times with the
    /// given element strides between consecutive matrices.
    func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
              a: DeviceBuffer, aOffset: Int, lda: Int, b: DeviceBuffer, bOffset: Int, ldb: Int,
              beta: Float, c: DeviceBuffer, cOffset: Int, ldc: Int, batch: GemmBatch)

    /// `y[o, c, i] += bias[c]` for `y` shaped `[outer][channels][inner]`.
    func addBias(_ y: DeviceBuffer, bias: DeviceBuffer, outer: Int, channels: Int, inner: Int)
    /// `gradBias[c] (+)= sum over o, i of gradY[o, c, i]`.
    func biasGradient(_ gradY: DeviceBuffer, outer: Int, channels: Int, inner: Int,
                      gradBias: DeviceBuffer, accumulate: Bool)

    // MARK: Convolution (NCHW, square kernel 1 or 3, stride 1 or 2, padding 0 or 1)

    /// output = conv(input, weight) + bias.
    func conv2dForward(_ shape: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer,
                       bias: DeviceBuffer?, output: DeviceBuffer)
    /// output += conv(input, weight) + bias: a residual branch added onto what `output` holds.
    /// `scratch` (outputCount floats) may be overwritten.
    func conv2dForwardAdding(_ shape: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?,
                             scratch: DeviceBuffer, output: DeviceBuffer)
    /// gradInput (+)= d(output)/d(input)^T · gradOutput.
    func conv2dBackwardData(_ shape: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                            gradInput: DeviceBuffer, accumulate: Bool)
    /// gradWeight (+)= d(output)/d(weight)^T · gradOutput; gradBias (+)= its bias gradient.
    func conv2dBackwardFilter(_ shape: Conv2DShape, input: DeviceBuffer, gradOutput: DeviceBuffer,
                              gradWeight: DeviceBuffer, gradBias: DeviceBuffer?, accumulate: Bool)

    // MARK: Convolution of an activated input (the pre-activation blocks' act -> conv)
    //
    // The same results as activationForward / activationBackward around the plain convolution
    // (which is what the default implementations below do, using `scratch`, inputCount floats).
    // A backend may instead apply the activation on the fly (the CPU backend does); models always
    // call these, so how to fuse is the backend's decision alone.

    /// output = conv(activation(input), weight) + bias. `scratch` may be overwritten. `inputSigns`
    /// (`ActivationSigns.floatCount(shape)` floats, or nil) may receive the signs of `input` for the
    /// backward-data of this same input (the CPU backend writes them; the defaults leave it alone).
    func conv2dForward(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                       weight: DeviceBuffer, bias: DeviceBuffer?, output: DeviceBuffer, inputSigns: DeviceBuffer?)
    /// gradInput (+)= activation'(input) * [d output / d activation(input)]^T gradOutput: the input
    /// gradient of conv(activation(input)). `scratch` may be overwritten. `inputSigns`: the buffer the
    /// forward of this same `input` was given (or nil); a backend may read activation' from it
    /// instead of from `input`.
    func conv2dBackwardData(_ shape: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                            input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                            gradInput: DeviceBuffer, accumulate: Bool, inputSigns: DeviceBuffer?)
    /// gradWeight, gradBias (+)= the parameter gradients of conv(activation(input)). `scratch` may be
    /// overwritten.
    func conv2dBackwardFilter(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation,
                              scratch: DeviceBuffer, gradOutput: DeviceBuffer, gradWeight: DeviceBuffer,
                              gradBias: DeviceBuffer?, accumulate: Bool)

    // MARK: Convolution plus a residual block's 1x1 projection shortcut
    //
    // A pre-activation block with a projection shortcut adds a 1x1 conv of its raw input x onto
    // its last conv, and in backward the shortcut's input gradient onto its first conv's. The
    // defaults run the two convs one after the other (`composedConv2d*AddingProjection`); a
    // backend may instead add the shortcut while the conv's output is still in cache (the CPU
    // backend does, image by image).

    /// output = conv(activation(input), weight) + bias + projection(projectionInput) + projectionBias:
    /// `shape` is the block's last conv, `projection` its shortcut (1x1, the same batch and output
    /// size). `scratch` (shape.inputCount floats) and `projectionScratch` (projection.outputCount)
    /// may be overwritten; `inputSigns` as in conv2dForward.
    func conv2dForwardAddingProjection(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation,
                                       scratch: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?,
                                       projection: Conv2DShape, projectionInput: DeviceBuffer,
                                       projectionWeight: DeviceBuffer, projectionBias: DeviceBuffer?,
                                       projectionScratch: DeviceBuffer, output: DeviceBuffer,
                                       inputSigns: DeviceBuffer?)
    /// gradInput = projection^T(projectionGradOutput) + activation'(input) * conv^T(gradOutput), the
    /// input gradient of a block whose first conv is `shape` (stride 1, of the activated block input
    /// `input`) and whose shortcut is `projection` (1x1, from the same input). Overwrites gradInput;
    /// `scratch` (shape.inputCount floats) may be overwritten; `inputSigns` as in conv2dBackwardData.
    func conv2dBackwardDataAddingProjection(_ shape: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                                            input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                                            projection: Conv2DShape, projectionGradOutput: DeviceBuffer,
                                            projectionWeight: DeviceBuffer, gradInput: DeviceBuffer,
                                            inputSigns: DeviceBuffer?)

    // MARK: Pointwise

    /// y = activation(x) over `count` elements.
    func activationForward(_ activation: Activation, x: DeviceBuffer, y: DeviceBuffer, count: Int)
    /// gradX (+)= gradY * activation'(x).
    func activationBackward(_ activation: Activation, x: DeviceBuffer, gradY: DeviceBuffer,
                            gradX: DeviceBuffer, count: Int, accumulate: Bool)
    /// y = alpha * x + beta * y.
    func axpby(alpha: Float, x: DeviceBuffer, beta: Float, y: DeviceBuffer, count: Int)
    /// x *= alpha.
    func scale(_ x: DeviceBuffer, by alpha: Float, count: Int)
    /// x[offset ..< offset+count] = value.
    func fill(_ x: DeviceBuffer, value: Float, offset: Int, count: Int)
    /// x = min(max(x, low), high).
    func clamp(_ x: DeviceBuffer, low: Float, high: Float, count: Int)
    /// y = sign(x): +1 for x > 0, -1 for x < 0, x itself for ±0 and NaN.
    func sign(_ x: DeviceBuffer, y: DeviceBuffer, count: Int)

    // MARK: Per-row scaling (adversarial attacks: L2 steps, ball projections)

    /// For each of `rows` rows of `rowSize` elements: n = ‖x_r‖₂ (written to `norms[r]` when given),
    /// then x_r *= target / n: always (`.exact`, the row gets norm `target`) or only when n > target
    /// (`.atMost`, the projection onto the L2 ball of radius `target`). A row of zeros is unchanged.
    func rescaleRows(_ x: DeviceBuffer, rows: Int, rowSize: Int, toNorm target: Float, mode: RowRescale,
                     norms: DeviceBuffer?)
    /// x[r, j] *= factors[r] for `rows` rows of `rowSize` elements.
    func scaleRows(_ x: DeviceBuffer, by factors: DeviceBuffer, rows: Int, rowSize: Int)

    // MARK: Pooling

    /// y[r] = mean of x[r, 0 ..< spatial], for `rows` = N*C rows.
    func globalAveragePoolForward(x: DeviceBuffer, y: DeviceBuffer, rows: Int, spatial: Int)
    /// gradX[r, i] (+)= gradY[r] / spatial.
    func globalAveragePoolBackward(gradY: DeviceBuffer, gradX: DeviceBuffer, rows: Int, spatial: Int,
                                   accumulate: Bool)

    // MARK: Energy and loss (rows = examples, cols = classes)

    /// out[r] = log sum_c exp(x[r, c]); a row of all -inf gives -inf.
    func logSumExpRows(_ x: DeviceBuffer, rows: Int, cols: Int, out: DeviceBuffer)
    /// gradX[r, c] (+)= gradOut[r] * softmax(x[r])[c], given out = logSumExpRows(x).
    func logSumExpBackward(_ x: DeviceBuffer, lse: DeviceBuffer, gradOut: DeviceBuffer, rows: Int,
                           cols: Int, gradX: DeviceBuffer, accumulate: Bool)
    /// losses[r] = lse(x[r]) - x[r, labels[r]]  (labels: `.int32`).
    func softmaxCrossEntropyForward(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int,
                                    losses: DeviceBuffer)
    /// gradLogits (+)= scale * (softmax(logits) - onehot(labels)).
    func softmaxCrossEntropyBackward(_ logits: DeviceBuffer, labels: DeviceBuffer, rows: Int, cols: Int,
                                     scale: Float, gradLogits: DeviceBuffer, accumulate: Bool)

    // MARK: Sampling and optimisation

    /// SGLD step over `count` elements: g = clip(grad, ±gradClip) when given;
    /// x += stepSize * g + noiseStd * N(0,1)[seed, stream, i]; then x = clamp(x, clampRange) when given.
    func sgldUpdate(x: DeviceBuffer, grad: DeviceBuffer, count: Int, stepSize: Float, noiseStd: Float,
                    seed: UInt64, stream: UInt64, gradClip: Float?, clampRange: ClosedRange<Float>?)
    /// x[i] = low + (high - low) * U[0,1)[seed, stream, i].
    func fillUniform(_ x: DeviceBuffer, count: Int, low: Float, high: Float, seed: UInt64, stream: UInt64)
    /// x[i] += std * N(0,1)[seed, stream, i].
    func addGaussianNoise(_ x: DeviceBuffer, count: Int, std: Float, seed: UInt64, stream: UInt64)
    /// Replay-buffer read: out row r = reinit[r] != 0 ? U(-1,1)[seed, stream, r*rowSize + j]
    /// : source row indices[r]. `indices` and `reinit` are `.int32` of length `rows`.
    func gatherRows(_ source: DeviceBuffer, indices: DeviceBuffer, reinit: DeviceBuffer?, rows: Int,
                    rowSize: Int, seed: UInt64, stream: UInt64, out: DeviceBuffer)
    /// Replay-buffer write-back: destination row indices[r] = source row r, skipping rows whose
    /// index is negative (the caller marks duplicates so that the result is deterministic).
    func scatterRows(_ source: DeviceBuffer, indices: DeviceBuffer, rows: Int, rowSize: Int,
                     destination: DeviceBuffer)
    /// PyTorch's Adam (L2 weight decay added to the gradient, bias correction with `step` ≥ 1).
    func adamUpdate(parameters: DeviceBuffer, gradients: DeviceBuffer, firstMoment: DeviceBuffer,
                    secondMoment: DeviceBuffer, count: Int, hyper: AdamHyperparameters, step: Int)
    /// PyTorch's SGD with momentum: buf = momentum*buf + (g + wd*p); p -= lr*buf.
    func sgdMomentumUpdate(parameters: DeviceBuffer, gradients: DeviceBuffer, momentumBuffer: DeviceBuffer,
                           count: Int, learningRate: Float, momentum: Float, weightDecay: Float)

    // MARK: Reductions (scalars back to the host)

    /// sum of x[0 ..< count], accumulated in at least float32 with a pairwise/tree order.
    func sum(_ x: DeviceBuffer, count: Int) throws -> Float
    /// sum of x[i]^2.
    func sumOfSquares(_ x: DeviceBuffer, count: Int) throws -> Float
}

/// Host <-> backend traffic: bytes and calls in each direction. Subtract two readings to get the
/// traffic of what ran between them.
public struct TransferCounts: Sendable, Equatable {
    /// Bytes copied host -> device (`upload`).
    public var bytesToDevice = 0
    /// Bytes copied device -> host (`download`, `downloadInt32`, and what `sum` / `sumOfSquares`
    /// read back).
    public var bytesToHost = 0
    public var uploads = 0
    public var downloads = 0

    public init() {}

    // Empty transfers are not counted: no backend issues a copy for them.
    mutating func recordUpload(bytes: Int) {
        guard bytes > 0 else { return }
        bytesToDevice += bytes
        uploads += 1
    }

    mutating func recordDownload(bytes: Int) {
        guard bytes > 0 else { return }
        bytesToHost += bytes
        downloads += 1
    }

    public static func - (after: TransferCounts, before: TransferCounts) -> TransferCounts {
        var d = TransferCounts()
        d.bytesToDevice = after.bytesToDevice - before.bytesToDevice
        d.bytesToHost = after.bytesToHost - before.bytesToHost
        d.uploads = after.uploads - before.uploads
        d.downloads = after.downloads - before.downloads
        return d
    }
}

public enum BackendKind: String, Sendable, CaseIterable {
    case cpu, opencl
}

public enum ElementType: Sendable {
    case float32, int32
    public var size: Int { 4 }
}

/// A block of device (or host) memory owned by one backend. Backends subclass it.
open class DeviceBuffer: @unchecked Sendable {
    public let count: Int
    public let type: ElementType
    public init(count: Int, type: ElementType) {
        self.count = count
        self.type = type
    }
    public var byteCount: Int { count * type.size }
}

public struct GemmBatch: Sendable, Equatable {
    public var count: Int
    public var strideA: Int
    public var strideB: Int
    public var strideC: Int
    public init(count: Int, strideA: Int, strideB: Int, strideC: Int) {
        self.count = count
        self.strideA = strideA
        self.strideB = strideB
        self.strideC = strideC
    }
    public static let single = GemmBatch(count: 1, strideA: 0, strideB: 0, strideC: 0)
}

/// The geometry of one 2-D convolution: NCHW input, square kernel, equal stride and padding.
public struct Conv2DShape: Sendable, Equatable, CustomStringConvertible {
    public var batch: Int
    public var inChannels: Int
    public var height: Int
    public var width: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernel: Int, stride: Int, padding: Int) {
        self.batch = batch
        self.inChannels = inChannels
        self.height = height
        self.width = width
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    public var inputCount: Int { batch * inChannels * height * width }
    public var outputCount: Int { batch * outChannels * outHeight * outWidth }
    public var weightCount: Int { outChannels * inChannels * kernel * kernel }
    /// Rows of the im2col matrix: inChannels * k * k.
    public var patchSize: Int { inChannels * kernel * kernel }
    /// Multiply-adds of the forward pass.
    public var macs: Int { outputCount * patchSize }
    /// A 1x1, stride-1, unpadded conv is a plain GEMM: no im2col needed.
    public var isPointwise: Bool { kernel == 1 && stride == 1 && padding == 0 }

    /// Whether this is a 1x1 unpadded conv (a residual shortcut) whose output has the layout of
    /// `conv`'s output.
    public func isProjection(addingOntoOutputOf conv: Conv2DShape) -> Bool {
        kernel == 1 && padding == 0 && batch == conv.batch && outChannels == conv.outChannels
            && outHeight == conv.outHeight && outWidth == conv.outWidth
    }

    /// Whether this is a 1x1 unpadded conv (a residual shortcut) that reads an input of the layout
    /// of `conv`'s input.
    public func isProjection(sharingInputOf conv: Conv2DShape) -> Bool {
        kernel == 1 && padding == 0 && batch == conv.batch && inChannels == conv.inChannels
            && height == conv.height && width == conv.width
    }

    public var description: String {
        "\(batch)x\(inChannels)x\(height)x\(width) -> \(outChannels) k\(kernel) s\(stride) p\(padding)"
    }
}

/// The signs of an activation's input, one bit per element (set where the input is > 0): all the
/// leaky ReLU's derivative needs, in 1/32 of the input's bytes. A forward conv of an activated
/// input may write them and the backward-data of the same input read them instead of the input,
/// so the input gradient does not read the whole input tensor again (see conv2dForward). Layout:
/// one 16-bit word per 16 pixels of a row (bit x % 16 of word x / 16), rows in the input's order.
public enum ActivationSigns {
    /// Floats of a buffer for the signs of `batch` x `channels` x `height` x `width` elements.
    public static func floatCount(batch: Int, channels: Int, height: Int, width: Int) -> Int {
        (batch * channels * height * ((width + 15) / 16) + 1) / 2
    }

    /// Floats of a buffer for the signs of the input of `shape`.
    public static func floatCount(_ shape: Conv2DShape) -> Int {
        floatCount(batch: shape.batch, channels: shape.inChannels, height: shape.height, width: shape.width)
    }
}

public enum Activation: Sendable, Equatable, CustomStringConvertible {
    case leakyReLU(slope: Float)
    case swish

    public var description: String {
        switch self {
        case .leakyReLU(let slope): return "leaky-relu(\(slope))"
        case .swish: return "swish"
        }
    }
}

/// How `rescaleRows` treats a row's norm.
public enum RowRescale: Sendable, Equatable {
    /// Scale every non-zero row to the target norm.
    case exact
    /// Scale down only rows whose norm exceeds the target (project onto the ball).
    case atMost
}

public struct AdamHyperparameters: Sendable, Equatable {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// Adam's bias-corrected step, computed exactly as PyTorch does (in float64, then rounded).
struct AdamCoefficients {
    let stepSize: Float
    let sqrtBiasCorrection2: Float

    init(_ hyper: AdamHyperparameters, step: Int) {
        precondition(step >= 1, "Adam steps count from 1")
        let correction1 = 1 - pow(Double(hyper.beta1), Double(step))
        let correction2 = 1 - pow(Double(hyper.beta2), Double(step))
        stepSize = Float(Double(hyper.learningRate) / correction1)
        sqrtBiasCorrection2 = Float(correction2.squareRoot())
    }
}

/// Convenience overloads with the common defaults.
extension Backend {
    public func makeBuffer(count: Int) throws -> DeviceBuffer { try makeBuffer(count: count, type: .float32) }

    public func makeBuffer(_ values: [Float]) throws -> DeviceBuffer {
        let buffer = try makeBuffer(count: values.count, type: .float32)
        try upload(values, to: buffer, offset: 0)
        return buffer
    }

    public func makeBuffer(_ values: [Int32]) throws -> DeviceBuffer {
        let buffer = try makeBuffer(count: values.count, type: .int32)
        try upload(values, to: buffer, offset: 0)
        return buffer
    }

    public func download(_ buffer: DeviceBuffer) throws -> [Float] {
        try download(buffer, offset: 0, count: buffer.count)
    }

    public func downloadInt32(_ buffer: DeviceBuffer) throws -> [Int32] {
        try downloadInt32(buffer, offset: 0, count: buffer.count)
    }

    public func copy(_ source: DeviceBuffer, to destination: DeviceBuffer, count: Int) {
        copy(source, sourceOffset: 0, to: destination, destinationOffset: 0, count: count)
    }

    public func gemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                     alpha: Float = 1, a: DeviceBuffer, b: DeviceBuffer, beta: Float = 0, c: DeviceBuffer) {
        gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
             a: a, aOffset: 0, lda: transposeA ? m : k, b: b, bOffset: 0, ldb: transposeB ? k : n,
             beta: beta, c: c, cOffset: 0, ldc: n, batch: .single)
    }
}

/// Convolutions of an activated input as separate ops: the default of every backend that does
/// not fuse them (the OpenCL backend), and the CPU backend's fallback for what it does not fuse.
extension Backend {
    public func conv2dForward(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                              weight: DeviceBuffer, bias: DeviceBuffer?, output: DeviceBuffer,
                              inputSigns: DeviceBuffer?) {
        composedConv2dForward(shape, input: input, activation: activation, scratch: scratch, weight: weight, bias: bias,
                              output: output)
    }

    public func conv2dBackwardData(_ shape: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                                   input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                                   gradInput: DeviceBuffer, accumulate: Bool, inputSigns: DeviceBuffer?) {
        composedConv2dBackwardData(shape, gradOutput: gradOutput, weight: weight, input: input, activation: activation,
                                   scratch: scratch, gradInput: gradInput, accumulate: accumulate)
    }

    /// conv2dForward of an activated input without signs to keep.
    public func conv2dForward(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                              weight: DeviceBuffer, bias: DeviceBuffer?, output: DeviceBuffer) {
        conv2dForward(shape, input: input, activation: activation, scratch: scratch, weight: weight, bias: bias,
                      output: output, inputSigns: nil)
    }

    /// conv2dBackwardData of an activated input that reads activation' from `input`.
    public func conv2dBackwardData(_ shape: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                                   input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                                   gradInput: DeviceBuffer, accumulate: Bool) {
        conv2dBackwardData(shape, gradOutput: gradOutput, weight: weight, input: input, activation: activation,
                           scratch: scratch, gradInput: gradInput, accumulate: accumulate, inputSigns: nil)
    }

    public func conv2dBackwardFilter(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation,
                                     scratch: DeviceBuffer, gradOutput: DeviceBuffer, gradWeight: DeviceBuffer,
                                     gradBias: DeviceBuffer?, accumulate: Bool) {
        composedConv2dBackwardFilter(shape, input: input, activation: activation, scratch: scratch,
                                     gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias,
                                     accumulate: accumulate)
    }

    /// conv2dForward into `scratch`, then added onto `output` (axpby).
    public func conv2dForwardAdding(_ shape: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer,
                                    bias: DeviceBuffer?, scratch: DeviceBuffer, output: DeviceBuffer) {
        composedConv2dForwardAdding(shape, input: input, weight: weight, bias: bias, scratch: scratch, output: output)
    }

    public func composedConv2dForwardAdding(_ shape: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer,
                                            bias: DeviceBuffer?, scratch: DeviceBuffer, output: DeviceBuffer) {
        precondition(scratch.count >= shape.outputCount, "scratch holds \(scratch.count) of \(shape.outputCount) floats")
        conv2dForward(shape, input: input, weight: weight, bias: bias, output: scratch)
        axpby(alpha: 1, x: scratch, beta: 1, y: output, count: shape.outputCount)
    }

    /// activationForward into `scratch`, then conv2dForward of it.
    public func composedConv2dForward(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation,
                                      scratch: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?,
                                      output: DeviceBuffer) {
        precondition(scratch.count >= shape.inputCount, "scratch holds \(scratch.count) of \(shape.inputCount) floats")
        activationForward(activation, x: input, y: scratch, count: shape.inputCount)
        conv2dForward(shape, input: scratch, weight: weight, bias: bias, output: output)
    }

    /// conv2dBackwardData into `scratch`, then activationBackward at `input`.
    public func composedConv2dBackwardData(_ shape: Conv2DShape, gradOutput: DeviceBuffer, weight: DeviceBuffer,
                                           input: DeviceBuffer, activation: Activation, scratch: DeviceBuffer,
                                           gradInput: DeviceBuffer, accumulate: Bool) {
        precondition(scratch.count >= shape.inputCount, "scratch holds \(scratch.count) of \(shape.inputCount) floats")
        conv2dBackwardData(shape, gradOutput: gradOutput, weight: weight, gradInput: scratch, accumulate: false)
        activationBackward(activation, x: input, gradY: scratch, gradX: gradInput, count: shape.inputCount,
                           accumulate: accumulate)
    }

    /// activationForward into `scratch`, then conv2dBackwardFilter with it.
    public func composedConv2dBackwardFilter(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation,
                                             scratch: DeviceBuffer, gradOutput: DeviceBuffer, gradWeight: DeviceBuffer,
                                             gradBias: DeviceBuffer?, accumulate: Bool) {
        precondition(scratch.count >= shape.inputCount, "scratch holds \(scratch.count) of \(shape.inputCount) floats")
        activationForward(activation, x: input, y: scratch, count: shape.inputCount)
        conv2dBackwardFilter(shape, input: scratch, gradOutput: gradOutput, gradWeight: gradWeight, gradBias: gradBias,
                             accumulate: accumulate)
    }
}

/// A residual block's projection shortcut run as its own convolution: the default of every
/// backend that does not fuse it (the OpenCL backend), and the CPU backend's fallback.
extension Backend {
    public func conv2dForwardAddingProjection(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation,
                                              scratch: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?,
                                              projection: Conv2DShape, projectionInput: DeviceBuffer,
                                              projectionWeight: DeviceBuffer, projectionBias: DeviceBuffer?,
                                              projectionScratch: DeviceBuffer, output: DeviceBuffer,
                                              inputSigns: DeviceBuffer?) {
        composedConv2dForwardAddingProjection(shape, input: input, activation: activation, scratch: scratch,
                                              weight: weight, bias: bias, projection: projection,
                                              projectionInput: projectionInput, projectionWeight: projectionWeight,
                                              projectionBias: projectionBias, projectionScratch: projectionScratch,
                                              output: output, inputSigns: inputSigns)
    }

    public func conv2dForwardAddingProjection(_ shape: Conv2DShape, input: DeviceBuffer, activation: Activation,
                                              scratch: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer?,
                                              projection: Conv2DShape, projectionInput: DeviceBuffer,
                                              projectionWeight: DeviceBuffer, projectionBias: DeviceBuffer?,
                                              projectionScratch: DeviceBuffer, output: DeviceBuffer) {
        conv2dForwardAddingProjection(shape, input: input, activation: activation, scratch: scratch, weight: weight,
                                      bias: bias, projection: projection, projectionInput: projectionInput,
                                      projectionWeight: projectionWeight, projectionBias: projectionBias,
                                      projectionScratch: projectionScratch, output: output, inputSigns: nil)
    }

    public func conv2dBackwardDataAddingProjection(_ shape: Conv2DShape, gradOutput: DeviceBuffer,
                                                   weight: DeviceBuffer, input: DeviceBuffer, activation: Activation,
                                                   scratch: DeviceBuffer, projection: Conv2DShape,
                                                   projectionGradOutput: DeviceBuffer, projectionWeight: DeviceBuffer,
                                                   gradInput: DeviceBuffer, inputSigns: DeviceBuffer?) {
        composedConv2dBackwardDataAddingProjection(shape, gradOutput: gradOutput, weight: weight, input: input,
                                                   activation: activation, scratch: scratch, projection: projection,
                                                   projectionGradOutput: projectionGradOutput,
                                                   projectionWeight: projectionWeight, gradInput: gradInput,
                                                   inputSigns: inputSigns)
    }

    public func conv2dBackwardDataAddingProjection(_ shape: Conv2DShape, gradOutput: DeviceBuffer,
                                                   weight: DeviceBuffer, input: DeviceBuffer, activation: Activation,
                                                   scratch: DeviceBuffer, projection: Conv2DShape,
                                                   projectionGradOutput: DeviceBuffer, projectionWeight: DeviceBuffer,
                                                   gradInput: DeviceBuffer) {
        conv2dBackwardDataAddingProjection(shape, gradOutput: gradOutput, weight: weight, input: input,
                                           activation: activation, scratch: scratch, projection: projection,
                                           projectionGradOutput: projectionGradOutput,
                                           projectionWeight: projectionWeight, gradInput: gradInput, inputSigns: nil)
    }

    /// conv2dForward of the activated input, then conv2dForwardAdding of the projection.
    public func composedConv2dForwardAddingProjection(_ shape: Conv2DShape, input: DeviceBuffer,
                                                      activation: Activation, scratch: DeviceBuffer,
                                                      weight: DeviceBuffer, bias: DeviceBuffer?,
                                                      projection: Conv2DShape, projectionInput: DeviceBuffer,
                                                      projectionWeight: DeviceBuffer, projectionBias: DeviceBuffer?,
                                                      projectionScratch: DeviceBuffer, output: DeviceBuffer,
                                                      inputSigns: DeviceBuffer? = nil) {
        precondition(projection.isProjection(addingOntoOutputOf: shape), "projection \(projection) does not fit \(shape)")
        conv2dForward(shape, input: input, activation: activation, scratch: scratch, weight: weight, bias: bias,
                      output: output, inputSigns: inputSigns)
        conv2dForwardAdding(projection, input: projectionInput, weight: projectionWeight, bias: projectionBias,
                            scratch: projectionScratch, output: output)
    }

    /// conv2dBackwardData of the projection into gradInput, then the conv's (activated) input
    /// gradient added onto it.
    public func composedConv2dBackwardDataAddingProjection(_ shape: Conv2DShape, gradOutput: DeviceBuffer,
                                                           weight: DeviceBuffer, input: DeviceBuffer,
                                                           activation: Activation, scratch: DeviceBuffer,
                                                           projection: Conv2DShape, projectionGradOutput: DeviceBuffer,
                                                           projectionWeight: DeviceBuffer, gradInput: DeviceBuffer,
                                                           inputSigns: DeviceBuffer? = nil) {
        precondition(projection.isProjection(sharingInputOf: shape), "projection \(projection) does not fit \(shape)")
        conv2dBackwardData(projection, gradOutput: projectionGradOutput, weight: projectionWeight,
                           gradInput: gradInput, accumulate: false)
        conv2dBackwardData(shape, gradOutput: gradOutput, weight: weight, input: input, activation: activation,
                           scratch: scratch, gradInput: gradInput, accumulate: true, inputSigns: inputSigns)
    }
}

/// An error a backend reports; its description is one line a user can act on.
public struct BackendError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
