import CCLBlast
import CLKernels
import COpenCL
import Foundation
import JEMSupport

/// Per-device autotuning of the convolutions' forward and backward-data paths.
///
/// For each (op, layer shape) a few candidates compete: the built-in path (`conv_gemm` with the
/// device kind's register tile), `conv_gemm` with other register tiles, `conv_gemm_local` (a
/// local-memory tiled GEMM for GPUs) in a few tile sizes, im2col + CLBlast's GEMM, and CLBlast's
/// own `CLBlastSconvgemm` (forward). Every candidate first runs on a small batch of the shape and
/// is compared with the CPU backend (relative error at most `ParitySuite.tolerance`); one that
/// fails to build, to run or to match is out, so a fast wrong kernel never wins. The valid ones are
/// timed on the full shape (best of three after a warm-up) and the fastest wins.
///
/// Winners persist in `<program cache>/conv-tuning-<device hash>.json`, keyed by device, driver
/// version and the MD5 of Kernels/convolution.cl; a file for another driver or source (stale) or one
/// that cannot be read (corrupt) is ignored with a one-line notice and rewritten by the next tune.
///
/// Modes (`OpenCLBackend.convolutionTuning`): `.off` keeps the built-in path (the default on CPU
/// devices such as PoCL, so tests and CPU runs are unchanged), `.stored` uses stored winners only,
/// `.onFirstUse` (the default on GPUs) tunes a shape the first time it is met, `.retune` tunes every
/// shape met once more (`jem-gpu tune`). `JEM_GPU_TUNE=off|stored|on|retune` overrides the default.
public enum ConvolutionTuningMode: String, Sendable, CaseIterable {
    case off, stored, onFirstUse = "on", retune

    static func defaultMode(isGPU: Bool, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> ConvolutionTuningMode
    {
        if let text = environment["JEM_GPU_TUNE"]?.lowercased(), !text.isEmpty {
            switch text {
            case "0", "off", "no": return .off
            case "1", "on", "yes": return .onFirstUse
            default: if let mode = ConvolutionTuningMode(rawValue: text) { return mode }
            }
        }
        return isGPU ? .onFirstUse : .off
    }
}

extension ConvGemmTile {
    /// The built-in (untuned) tile: `.gpu` on GPUs and on Mesa's Rusticl, whose llvmpipe device
    /// runs work-items in SIMD lanes like a GPU (a 4 x 64 float16 tile per work-item spills there:
    /// a wrn-10-1 conv took 1.7 s with `.cpu` and 0.54 s with `.gpu` at batch 8, measured by the
    /// tuner), `.cpu` on the other CPU devices (PoCL, Intel's runtime).
    static func defaultTile(for device: OpenCLDeviceInfo) -> ConvGemmTile {
        device.isGPU || device.platformName.lowercased().contains("rusticl") ? .gpu : .cpu
    }
}

/// The two tuned ops.
public enum ConvTuningOp: String, Sendable, CaseIterable {
    case forward
    case backwardData = "backward-data"
}

/// A local-memory tile of `conv_gemm_local`: a work-group computes `rows` x `columns` outputs in
/// `depth`-deep slices, each work-item `perItemRows` x `perItemColumns` of them.
struct LocalGemmTile: Equatable {
    let rows: Int
    let columns: Int
    let depth: Int
    let perItemRows: Int
    let perItemColumns: Int
    /// Test only: a deliberately wrong kernel (it skips one product), which must never win.
    var faultForTests = false

    var groupRows: Int { rows / perItemRows }
    var groupColumns: Int { columns / perItemColumns }

    var defines: String {
        "#define LT_M \(rows)\n#define LT_N \(columns)\n#define LT_K \(depth)\n#define LT_WM \(perItemRows)\n"
            + "#define LT_WN \(perItemColumns)\n" + (faultForTests ? "#define LT_FAULT_FOR_TESTS\n" : "")
    }
}

/// One way to run a convolution op.
enum ConvCandidate: Equatable, CustomStringConvertible {
    /// The untuned path (`conv_gemm` with the device kind's tile, as without tuning).
    case builtIn
    /// `conv_gemm` with another register tile.
    case registerTile(ConvGemmTile)
    /// `conv_gemm_local`.
    case localTile(LocalGemmTile)
    /// im2col (or the permuted output gradient) + `CLBlastSgemm` + a permute / col2im.
    case clblastGemm
    /// `CLBlastSconvgemm` (forward only) + a bias kernel.
    case clblastConvgemm

    /// The name stored in tuning files and printed.
    var id: String {
        switch self {
        case .builtIn: return "built-in"
        case .registerTile(let t):
            return "conv_gemm \(t.rows)x\(t.columns) wg \(t.localRows)x\(t.localColumns)"
        case .localTile(let t):
            return "conv_gemm_local \(t.rows)x\(t.columns)x\(t.depth) per item \(t.perItemRows)x\(t.perItemColumns)"
                + (t.faultForTests ? " (faulty)" : "")
        case .clblastGemm: return "im2col + CLBlast sgemm"
        case .clblastConvgemm: return "CLBlast convgemm"
        }
    }

    var description: String { id }

    /// The candidates for `op` on a device of this kind (`defaultTile`: the built-in tile).
    static func all(for op: ConvTuningOp, isGPU: Bool, defaultTile: ConvGemmTile) -> [ConvCandidate] {
        var list: [ConvCandidate] = [.builtIn]
        let tiles: [ConvGemmTile] = isGPU
            ? [ConvGemmTile(rows: 4, vectors: 2, width: 4, localRows: 4, localColumns: 16),
               ConvGemmTile(rows: 8, vectors: 1, width: 4, localRows: 4, localColumns: 16)]
            : [ConvGemmTile(rows: 4, vectors: 2, width: 16, localRows: 2, localColumns: 1), .gpu]
        list += tiles.filter { $0 != defaultTile }.map(ConvCandidate.registerTile)
        let locals: [LocalGemmTile] = isGPU
            ? [LocalGemmTile(rows: 64, columns: 64, depth: 16, perItemRows: 4, perItemColumns: 4),
               LocalGemmTile(rows: 32, columns: 64, depth: 16, perItemRows: 4, perItemColumns: 4),
               LocalGemmTile(rows: 128, columns: 64, depth: 8, perItemRows: 8, perItemColumns: 4)]
            : [LocalGemmTile(rows: 64, columns: 64, depth: 16, perItemRows: 4, perItemColumns: 4)]
        list += locals.map(ConvCandidate.localTile)
        list.append(.clblastGemm)
        if op == .forward { list.append(.clblastConvgemm) }
        return list
    }
}

/// What one tuning found for one (op, shape).
struct ConvTuningEntry: Codable, Equatable {
    var winner: String
    /// The winner's best time on the full shape.
    var seconds: Double
    /// Every candidate's best time; nil where it failed to build, run or match the CPU backend.
    var candidates: [String: Double?]
    /// Why invalid candidates were refused.
    var refused: [String: String]
}

/// The tuning file of one device (JSON).
struct ConvTuningFile: Codable, Equatable {
    static let currentFormat = 1
    var format: Int
    var platform: String
    var device: String
    var vendor: String
    var driver: String
    var sourceMD5: String
    var entries: [String: ConvTuningEntry]
}

/// The tuner's state, owned by one backend.
final class ConvolutionTuner {
    var mode: ConvolutionTuningMode
    /// Entries of the tuning file (read on first use) and of tunings in this process.
    var file: ConvTuningFile?
    var loaded = false
    /// Shapes tuned in this process (`.retune` tunes each once).
    var tunedHere: Set<String> = []
    /// Kernels of the candidate programs, by candidate id.
    var kernels: [String: OpenCLKernel] = [:]
    var programs: [String: OpenCLProgram] = [:]
    /// True while tuning: convolutions then take the path they are told to.
    var busy = false
    /// Seconds spent tuning in this process.
    var seconds: Double = 0
    /// One line per tuned shape (and notices); standard error by default.
    var log: (String) -> Void = { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }
    /// Tests: the candidates to try instead of `ConvCandidate.all`.
    var candidatesOverride: ((ConvTuningOp, Conv2DShape) -> [ConvCandidate])?
    /// Tests: the time of a candidate (called with a closure that runs it once) instead of the clock.
    var timer: ((ConvCandidate, () -> Void) throws -> Double)?
    /// Where the file is read from and written to (nil: no program cache, nothing persists).
    var path: String?

    init(mode: ConvolutionTuningMode) {
        self.mode = mode
    }

    static func shapeKey(_ op: ConvTuningOp, _ s: Conv2DShape) -> String {
        "\(op.rawValue) n\(s.batch) c\(s.inChannels) \(s.height)x\(s.width) -> \(s.outChannels) "
            + "k\(s.kernel) s\(s.stride) p\(s.padding)"
    }

    /// The fastest candidate with a time (valid ones only), ties to the earlier one.
    static func winner(_ timed: [(ConvCandidate, Double?)]) -> (ConvCandidate, Double)? {
        var best: (ConvCandidate, Double)?
        for (candidate, seconds) in timed {
            guard let seconds, seconds.isFinite else { continue }
            if best == nil || seconds < best!.1 { best = (candidate, seconds) }
        }
        return best
    }
}

extension ConvTuningFile {
    /// Reads `data`; nil and a reason when it is not a tuning file of this format.
    static func decode(_ data: Data) -> (file: ConvTuningFile?, problem: String?) {
        do {
            let file = try JSONDecoder().decode(ConvTuningFile.self, from: data)
            guard file.format == currentFormat else { return (nil, "format \(file.format), expected \(currentFormat)") }
            return (file, nil)
        } catch {
            return (nil, "not a readable tuning file")
        }
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

extension OpenCLBackend {
    /// How convolutions pick their path on this backend (see `ConvolutionTuningMode`).
    public var convolutionTuning: ConvolutionTuningMode {
        get { convolutionTuner.mode }
        set { convolutionTuner.mode = newValue }
    }

    /// Seconds spent tuning convolutions in this process.
    public var convolutionTuningSeconds: Double { convolutionTuner.seconds }

    /// The tuning file of this device (nil without a program cache folder).
    public var convolutionTuningPath: String? { tuningFilePath() }

    /// The stored and new winners: shape key -> (candidate, seconds).
    public var convolutionTuningWinners: [String: (candidate: String, seconds: Double)] {
        (convolutionTuner.file?.entries ?? [:]).mapValues { ($0.winner, $0.seconds) }
    }

    /// MD5 of Kernels/convolution.cl (with includes): tuning results depend on it.
    static var convolutionSourceMD5: String {
        MD5.hex(Array((CLKernels.resolvedSource("convolution") ?? "").utf8))
    }

    func tuningFilePath() -> String? {
        guard let directory = programCache.directory else { return nil }
        let identity = [device.platformName, device.name, device.vendor].joined(separator: "\n")
        return "\(directory)/conv-tuning-\(MD5.hex(Array(identity.utf8))).json"
    }

    /// A file for this device, driver and kernel source.
    func emptyTuningFile() -> ConvTuningFile {
        ConvTuningFile(format: ConvTuningFile.currentFormat, platform: device.platformName, device: device.name,
                       vendor: device.vendor, driver: device.driverVersion, sourceMD5: Self.convolutionSourceMD5,
                       entries: [:])
    }

    /// Reads the tuning file once; a corrupt or stale one is ignored with a one-line notice.
    func loadTuningFileIfNeeded() {
        let tuner = convolutionTuner
        guard !tuner.loaded else { return }
        tuner.loaded = true
        tuner.path = tuningFilePath()
        var file = emptyTuningFile()
        if let path = tuner.path, let data = FileManager.default.contents(atPath: path) {
            let (stored, problem) = ConvTuningFile.decode(data)
            if let stored {
                if stored.platform == file.platform, stored.device == file.device, stored.vendor == file.vendor,
                   stored.driver == file.driver, stored.sourceMD5 == file.sourceMD5 {
                    file = stored
                } else {
                    tuner.log("note: ignoring stale convolution tuning file \(path) (made for driver "
                        + "'\(stored.driver)' and kernel source \(stored.sourceMD5.prefix(8)); now "
                        + "'\(file.driver)', \(file.sourceMD5.prefix(8))); shapes are tuned again")
                }
            } else {
                tuner.log("note: ignoring corrupt convolution tuning file \(path) (\(problem ?? "unreadable")); "
                    + "shapes are tuned again")
            }
        }
        tuner.file = file
    }

    func saveTuningFile() {
        let tuner = convolutionTuner
        guard let path = tuner.path, let file = tuner.file, let directory = programCache.directory else { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try AtomicFile.write(try file.encoded(), to: path)
        } catch {
            tuner.log("note: could not write the convolution tuning file \(path): \(error)")
        }
    }

    /// The path `op` on shape `s` should take: nil for the built-in one (tuning off, nothing
    /// stored, or the built-in path won). Tunes the shape first when the mode asks for it.
    func convolutionChoice(_ op: ConvTuningOp, _ s: Conv2DShape) -> ConvCandidate? {
        let tuner = convolutionTuner
        guard tuner.mode != .off, !tuner.busy, firstError == nil, s.batch > 0 else { return nil }
        loadTuningFileIfNeeded()
        let key = ConvolutionTuner.shapeKey(op, s)
        let candidates = tuner.candidatesOverride?(op, s)
            ?? ConvCandidate.all(for: op, isGPU: device.isGPU, defaultTile: convGemmTile)
        // Once per shape and process at most: a tuning that found no valid candidate (or could not
        // allocate its buffers) is not retried on every call.
        let needsTuning = !tuner.tunedHere.contains(key)
            && (tuner.mode == .retune || (tuner.mode == .onFirstUse && tuner.file?.entries[key] == nil))
        if needsTuning {
            tune(op, s, key: key, candidates: candidates)
        }
        guard let winner = tuner.file?.entries[key]?.winner else { return nil }
        // A stored winner this build no longer offers means the built-in path.
        guard let candidate = candidates.first(where: { $0.id == winner }), candidate != .builtIn else { return nil }
        return candidate
    }

    /// Tunes `op` on `s` among `candidates` and records the winner (see the type's description).
    func tune(_ op: ConvTuningOp, _ s: Conv2DShape, key: String, candidates: [ConvCandidate]) {
        let tuner = convolutionTuner
        tuner.busy = true
        defer { tuner.busy = false }
        let started = Date()
        tuner.tunedHere.insert(key)
        var timed: [(ConvCandidate, Double?)] = []
        var refused: [String: String] = [:]
        do {
            let bench = try TuningWorkload(op, s, backend: self)
            for candidate in candidates {
                do {
                    try bench.validate(candidate, on: self)
                    let seconds = try measure(candidate) { bench.runFull(candidate, on: self) }
                    timed.append((candidate, seconds))
                } catch {
                    clearRecordedError()
                    refused[candidate.id] = "\(error)"
                    timed.append((candidate, nil))
                }
            }
        } catch {
            clearRecordedError()
            tuner.log("note: could not tune convolution \(key): \(error); using the built-in path")
            return
        }
        clearRecordedError()
        let elapsed = Date().timeIntervalSince(started)
        tuner.seconds += elapsed
        guard let (winner, seconds) = ConvolutionTuner.winner(timed) else {
            tuner.log("note: no convolution candidate passed for \(key); using the built-in path")
            return
        }
        var entry = ConvTuningEntry(winner: winner.id, seconds: seconds, candidates: [:], refused: refused)
        for (candidate, time) in timed { entry.candidates[candidate.id] = time }
        tuner.file?.entries[key] = entry
        saveTuningFile()
        let builtIn = timed.first { $0.0 == .builtIn }?.1 ?? nil
        tuner.log(String(format: "tuned convolution %@: %@ %.3f ms", key, winner.id, seconds * 1e3)
            + (builtIn.map { String(format: " (built-in %.3f ms)", $0 * 1e3) } ?? "")
            + ", \(timed.filter { $0.1 != nil }.count)/\(timed.count) candidates valid"
            + String(format: ", %.2f s tuning", elapsed))
    }

    /// Best of three timed runs after one warm-up (or the injected timer of tests).
    private func measure(_ candidate: ConvCandidate, _ body: () -> Void) throws -> Double {
        if let timer = convolutionTuner.timer {
            return try timer(candidate, body)
        }
        body()
        try synchronize()
        var best = Double.infinity
        for _ in 0..<3 {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            try synchronize()
            best = Swift.min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }

    // MARK: Running a candidate

    /// `conv2dForward` through `candidate` (buffers already checked).
    func convolutionForward(_ candidate: ConvCandidate, _ s: Conv2DShape, input: DeviceBuffer, weight: DeviceBuffer,
                            bias: DeviceBuffer?, output: DeviceBuffer) {
        if candidate == .builtIn {
            let tuner = convolutionTuner, wasBusy = tuner.busy
            tuner.busy = true
            conv2dForward(s, input: input, weight: weight, bias: bias, output: output)
            tuner.busy = wasBusy
            return
        }
        let spatial = s.outHeight * s.outWidth, chunk = imagesPerChunk(s, cacheSized: true)
        let outImage = s.outChannels * spatial, inImage = s.inChannels * s.height * s.width
        var first = 0
        while first < s.batch, firstError == nil {
            let images = Swift.min(chunk, s.batch - first), cols = images * spatial
            do {
                switch candidate {
                case .clblastConvgemm:
                    var queue = self.queue
                    let status = CLBlastSconvgemm(
                        CLBlastKernelModeCrossCorrelation, s.inChannels, s.height, s.width, s.kernel, s.kernel,
                        s.padding, s.padding, s.stride, s.stride, 1, 1, s.outChannels, images,
                        (input as! OpenCLBuffer).mem, first * inImage, (weight as! OpenCLBuffer).mem, 0,
                        (output as! OpenCLBuffer).mem, first * outImage, &queue, nil)
                    if status != CLBlastSuccess {
                        record(BackendError("CLBlastSconvgemm(\(s)) failed: status \(status.rawValue)"))
                    } else if let bias {
                        let kernel = try candidateKernel("add_channel_bias", for: .clblastConvgemm)
                        launch(kernel, global: [images * outImage], local: [kernel.localSize(preferred: 256)],
                               [.buffer(output), .u32(first * outImage), .buffer(bias), .u32(s.outChannels),
                                .u32(spatial), .u32(images * outImage)])
                    }
                case .clblastGemm:
                    let col = try columns.reserve(s.patchSize * cols, using: self)
                    launchIm2col(s, input: input, firstImage: first, images: images, col: col)
                    let product = try staging.reserve(s.outChannels * cols, using: self)
                    sgemm(false, false, s.outChannels, cols, s.patchSize, 1, (weight as! OpenCLBuffer).mem, 0,
                          s.patchSize, col.mem, 0, cols, 0, product.mem, 0, cols)
                    launchElementwise("channel_major_to_nchw", in: .convolution, count: images * outImage,
                                      [.buffer(product), .buffer(output), .u32(first * outImage),
                                       .buffer(bias ?? weight), .u32(bias == nil ? 0 : 1), .u32(s.outChannels),
                                       .u32(images), .u32(spatial)])
                case .registerTile, .localTile:
                    let b: GemmOperand
                    if isPointwise(s) {
                        b = GemmOperand(buffer: input, offset: first * inImage, ld: spatial, batchStride: inImage)
                    } else {
                        let col = try columns.reserve(s.patchSize * cols, using: self)
                        launchIm2col(s, input: input, firstImage: first, images: images, col: col)
                        b = GemmOperand(buffer: col, offset: 0, ld: cols, batchStride: spatial)
                    }
                    try candidateGemm(candidate, m: s.outChannels, n: spatial, k: s.patchSize, batch: images,
                                      a: weight, aRowStride: s.patchSize, aColStride: 1, b: b,
                                      c: GemmOperand(buffer: output, offset: first * outImage, ld: spatial,
                                                     batchStride: outImage),
                                      bias: bias, accumulate: false)
                case .builtIn:
                    break
                }
            } catch {
                record(error as? BackendError ?? BackendError("conv2dForward (\(candidate)): \(error)"))
            }
            first += images
        }
    }

    /// `conv2dBackwardData` through `candidate` (buffers already checked).
    func convolutionBackwardData(_ candidate: ConvCandidate, _ s: Conv2DShape, gradOutput: DeviceBuffer,
                                 weight: DeviceBuffer, gradInput: DeviceBuffer, accumulate: Bool) {
        if candidate == .builtIn {
            let tuner = convolutionTuner, wasBusy = tuner.busy
            tuner.busy = true
            conv2dBackwardData(s, gradOutput: gradOutput, weight: weight, gradInput: gradInput, accumulate: accumulate)
            tuner.busy = wasBusy
            return
        }
        let spatial = s.outHeight * s.outWidth, chunk = imagesPerChunk(s, cacheSized: true)
        let imageSize = s.inChannels * s.height * s.width, outImage = s.outChannels * spatial
        var first = 0
        while first < s.batch, firstError == nil {
            let images = Swift.min(chunk, s.batch - first), cols = images * spatial
            do {
                let col = try columns.reserve(s.patchSize * cols, using: self)
                switch candidate {
                case .clblastGemm, .clblastConvgemm:
                    // col[patch][cols] = W^T x gradOut[Cout][cols] (gradOut permuted to channel-major).
                    let permuted = try staging.reserve(s.outChannels * cols, using: self)
                    launchElementwise("nchw_to_channel_major", in: .convolution, count: s.outChannels * cols,
                                      [.buffer(gradOutput), .u32(first * outImage), .buffer(permuted),
                                       .u32(s.outChannels), .u32(images), .u32(spatial)])
                    sgemm(true, false, s.patchSize, cols, s.outChannels, 1, (weight as! OpenCLBuffer).mem, 0,
                          s.patchSize, permuted.mem, 0, cols, 0, col.mem, 0, cols)
                default:
                    try candidateGemm(candidate, m: s.patchSize, n: spatial, k: s.outChannels, batch: images,
                                      a: weight, aRowStride: 1, aColStride: s.patchSize,
                                      b: GemmOperand(buffer: gradOutput, offset: first * outImage, ld: spatial,
                                                     batchStride: outImage),
                                      c: GemmOperand(buffer: col, offset: 0, ld: cols, batchStride: spatial),
                                      bias: nil, accumulate: false)
                }
                launch("col2im", in: .convolution, global: [s.height, s.inChannels, images],
                       local: [rowGroup(s.height), 1, 1],
                       [.buffer(col), .buffer(gradInput), .u32(first * imageSize), .u32(s.inChannels),
                        .u32(s.height), .u32(s.width), .u32(s.kernel), .u32(s.stride), .u32(s.padding),
                        .u32(s.outHeight), .u32(s.outWidth), .u32(images), .u32(accumulate ? 1 : 0)])
            } catch {
                record(error as? BackendError ?? BackendError("conv2dBackwardData (\(candidate)): \(error)"))
            }
            first += images
        }
    }

    private func launchIm2col(_ s: Conv2DShape, input: DeviceBuffer, firstImage: Int, images: Int, col: OpenCLBuffer) {
        launch("im2col", in: .convolution, global: [s.outHeight, s.patchSize, images],
               local: [rowGroup(s.outHeight), 1, 1],
               [.buffer(input), .u32(firstImage * s.inChannels * s.height * s.width), .buffer(col),
                .u32(s.inChannels), .u32(s.height), .u32(s.width), .u32(s.kernel), .u32(s.stride), .u32(s.padding),
                .u32(s.outHeight), .u32(s.outWidth), .u32(images)])
    }

    /// `conv_gemm`'s contract with a candidate's kernel (register or local tile).
    private func candidateGemm(_ candidate: ConvCandidate, m: Int, n: Int, k: Int, batch: Int, a: DeviceBuffer,
                               aRowStride: Int, aColStride: Int, b: GemmOperand, c: GemmOperand,
                               bias: DeviceBuffer?, accumulate: Bool) throws {
        guard m > 0, n > 0, batch > 0 else { return }
        let arguments: [KernelArgument] = [
            .buffer(a), .u32(0), .u32(aRowStride), .u32(aColStride),
            .buffer(b.buffer), .u32(b.offset), .u32(b.ld), .u32(b.batchStride),
            .buffer(c.buffer), .u32(c.offset), .u32(c.ld), .u32(c.batchStride),
            .u32(m), .u32(n), .u32(k), .buffer(bias ?? a), .u32(bias == nil ? 0 : 1), .u32(accumulate ? 1 : 0),
        ]
        switch candidate {
        case .registerTile(let tile):
            let kernel = try candidateKernel("conv_gemm", for: candidate)
            let rowBlocks = (m + tile.rows - 1) / tile.rows, colBlocks = (n + tile.columns - 1) / tile.columns
            var local = [1, 1, 1]
            while local[0] * 2 <= Swift.min(rowBlocks, tile.localRows) { local[0] *= 2 }
            while local[1] * 2 <= Swift.min(colBlocks, tile.localColumns) { local[1] *= 2 }
            launch(kernel, global: [rowBlocks, colBlocks, batch], local: local, arguments)
        case .localTile(let tile):
            let kernel = try candidateKernel("conv_gemm_local", for: candidate)
            guard tile.groupRows * tile.groupColumns <= kernel.maxWorkGroupSize else {
                throw BackendError("conv_gemm_local: work-groups of \(tile.groupRows * tile.groupColumns) "
                    + "exceed the kernel's limit of \(kernel.maxWorkGroupSize) on \(device.name)")
            }
            let rowBlocks = (m + tile.rows - 1) / tile.rows, colBlocks = (n + tile.columns - 1) / tile.columns
            launch(kernel, global: [colBlocks * tile.groupColumns, rowBlocks * tile.groupRows, batch],
                   local: [tile.groupColumns, tile.groupRows, 1], arguments)
        default:
            throw BackendError("candidate \(candidate) has no conv_gemm kernel")
        }
    }

    /// Kernel `name` of the convolution program built for `candidate` (its tile as #defines, and
    /// JEM_CONV_CANDIDATES so that the candidate kernels are compiled in); built once per backend.
    func candidateKernel(_ name: String, for candidate: ConvCandidate) throws -> OpenCLKernel {
        let tuner = convolutionTuner
        var defines = "#define JEM_CONV_CANDIDATES\n"
        switch candidate {
        case .registerTile(let tile): defines += tile.defines
        case .localTile(let tile): defines += convGemmTile.defines + tile.defines
        default: defines += convGemmTile.defines
        }
        let kernelKey = "\(name) | \(defines)"
        if let cached = tuner.kernels[kernelKey] { return cached }
        let program: OpenCLProgram
        if let built = tuner.programs[defines] {
            program = built
        } else {
            guard let source = CLKernels.resolvedSource("convolution") else {
                throw BackendError("kernel file convolution.cl is not embedded in this build")
            }
            let full = defines + source
            let key = OpenCLProgramCache.key(device: device, buildOptions: buildOptions, source: full)
            let cacheName = "convolution-candidate"
            if let stored = programCache.load(name: cacheName, key: key),
               let fromBinary = buildProgram(binary: stored, name: cacheName) {
                program = fromBinary
            } else {
                program = try buildProgram(source: full, name: cacheName)
                if programCache.directory != nil, let compiled = binary(of: program) {
                    programCache.store(name: cacheName, key: key, binary: compiled)
                }
            }
            tuner.programs[defines] = program
        }
        var status: cl_int = 0
        let handle = clCreateKernel(program.handle, name, &status)
        try OpenCLStatus.check(status, "clCreateKernel(\(name)) for \(candidate)")
        let kernel = OpenCLKernel(name: name, handle: handle, deviceID: deviceID,
                                  deviceMaxWorkGroupSize: device.maxWorkGroupSize)
        tuner.kernels[kernelKey] = kernel
        return kernel
    }

    /// Launches a kernel object (rounded up to whole work-groups), recording any failure.
    func launch(_ kernel: OpenCLKernel, global: [Int], local: [Int], _ arguments: [KernelArgument]) {
        guard firstError == nil, !global.contains(0) else { return }
        do {
            try kernel.setArguments(arguments, localSize: local.reduce(1, *))
            let rounded = zip(global, local).map { ($0 + $1 - 1) / $1 * $1 }
            var status: cl_int = CL_SUCCESS
            profiled(profileName(kernel.name, global)) {
                status = clEnqueueNDRangeKernel(queue, kernel.handle, cl_uint(global.count), nil, rounded, local,
                                                0, nil, nil)
            }
            try OpenCLStatus.check(status, "clEnqueueNDRangeKernel(\(kernel.name), global \(rounded), local \(local))")
        } catch let error as BackendError {
            record(error)
        } catch {
            record(BackendError("\(kernel.name): \(error)"))
        }
    }
}

/// The buffers one tuning uses: the full shape for timing, and a small batch of it with the
/// CPU backend's answer for validation. Inputs are fixed Philox draws.
private struct TuningWorkload {
    let op: ConvTuningOp
    let full: Conv2DShape
    let small: Conv2DShape
    /// Full-shape device buffers: (input or gradOutput), weight, bias, (output or gradInput).
    let source: DeviceBuffer, weight: DeviceBuffer, bias: DeviceBuffer, target: DeviceBuffer
    /// Small-shape device buffers and the expected result.
    let smallSource: DeviceBuffer, smallTarget: DeviceBuffer
    let smallTargetStart: [Float]
    let expected: [Float]

    init(_ op: ConvTuningOp, _ s: Conv2DShape, backend: OpenCLBackend) throws {
        self.op = op
        full = s
        var small = s
        small.batch = Swift.min(s.batch, 2)
        self.small = small
        func values(_ count: Int, _ stream: UInt64) -> [Float] {
            (0..<count).map { 2 * Philox.uniform(seed: 17, stream: stream, element: $0) - 1 }
        }
        let sourceCount = op == .forward ? s.inputCount : s.outputCount
        let targetCount = op == .forward ? s.outputCount : s.inputCount
        let smallSourceCount = op == .forward ? small.inputCount : small.outputCount
        let smallTargetCount = op == .forward ? small.outputCount : small.inputCount
        let weights = values(s.weightCount, 2), biases = values(s.outChannels, 3)
        let smallInput = values(smallSourceCount, 1)
        // Backward-data validates with accumulate on: the target starts non-zero.
        smallTargetStart = op == .forward ? [Float](repeating: 0, count: smallTargetCount) : values(smallTargetCount, 4)

        source = try backend.makeBuffer(count: sourceCount, type: .float32)
        weight = try backend.makeBuffer(count: s.weightCount, type: .float32)
        bias = try backend.makeBuffer(count: s.outChannels, type: .float32)
        target = try backend.makeBuffer(count: targetCount, type: .float32)
        smallSource = try backend.makeBuffer(count: smallSourceCount, type: .float32)
        smallTarget = try backend.makeBuffer(count: smallTargetCount, type: .float32)
        backend.fillUniform(source, count: sourceCount, low: -1, high: 1, seed: 17, stream: 5)
        try backend.upload(weights, to: weight, offset: 0)
        try backend.upload(biases, to: bias, offset: 0)
        try backend.upload(smallInput, to: smallSource, offset: 0)

        let cpu = CPUBackend()
        let cpuSource = try cpu.makeBuffer(count: smallSourceCount, type: .float32)
        let cpuWeight = try cpu.makeBuffer(count: s.weightCount, type: .float32)
        let cpuBias = try cpu.makeBuffer(count: s.outChannels, type: .float32)
        let cpuTarget = try cpu.makeBuffer(count: smallTargetCount, type: .float32)
        try cpu.upload(smallInput, to: cpuSource, offset: 0)
        try cpu.upload(weights, to: cpuWeight, offset: 0)
        try cpu.upload(biases, to: cpuBias, offset: 0)
        try cpu.upload(smallTargetStart, to: cpuTarget, offset: 0)
        if op == .forward {
            cpu.conv2dForward(small, input: cpuSource, weight: cpuWeight, bias: cpuBias, output: cpuTarget)
        } else {
            cpu.conv2dBackwardData(small, gradOutput: cpuSource, weight: cpuWeight, gradInput: cpuTarget,
                                   accumulate: true)
        }
        expected = try cpu.download(cpuTarget, offset: 0, count: smallTargetCount)
    }

    func run(_ candidate: ConvCandidate, on backend: OpenCLBackend, shape: Conv2DShape, source: DeviceBuffer,
             target: DeviceBuffer, accumulate: Bool) {
        if op == .forward {
            backend.convolutionForward(candidate, shape, input: source, weight: weight, bias: bias, output: target)
        } else {
            backend.convolutionBackwardData(candidate, shape, gradOutput: source, weight: weight, gradInput: target,
                                            accumulate: accumulate)
        }
    }

    func runFull(_ candidate: ConvCandidate, on backend: OpenCLBackend) {
        run(candidate, on: backend, shape: full, source: source, target: target, accumulate: false)
    }

    /// Throws unless `candidate` runs and matches the CPU backend on the small batch.
    func validate(_ candidate: ConvCandidate, on backend: OpenCLBackend) throws {
        try backend.upload(smallTargetStart, to: smallTarget, offset: 0)
        run(candidate, on: backend, shape: small, source: smallSource, target: smallTarget,
            accumulate: op == .backwardData)
        try backend.synchronize()
        let got = try backend.download(smallTarget, offset: 0, count: expected.count)
        var worst: Float = 0, scale: Float = 0
        for (a, b) in zip(got, expected) {
            worst = Swift.max(worst, abs(a - b).isNaN ? .infinity : abs(a - b))
            scale = Swift.max(scale, abs(b))
        }
        let error = Double(worst) / Swift.max(Double(scale), 1e-30)
        guard error <= ParitySuite.tolerance else {
            throw BackendError(String(format: "differs from the CPU backend (relative error %.2e > %.0e)", error,
                                      ParitySuite.tolerance))
        }
    }
}
