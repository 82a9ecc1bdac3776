import Foundation
import JEM
import JEMBackend

/// One measured benchmark.
struct BenchResult {
    let backend: String
    let name: String
    let seconds: [Double]
    /// Process CPU time (all threads) per run: on a shared machine it counts the work done, not
    /// the time spent waiting for a core.
    var cpuSeconds: [Double] = []
    let flop: Double?      // per run
    let bytes: Double?     // memory traffic per run, for bandwidth-bound ops
    let ceiling: Double
    var extra: [String: Double] = [:]

    var median: Double { seconds.sorted()[seconds.count / 2] }
    var cpuMedian: Double? { cpuSeconds.isEmpty ? nil : cpuSeconds.sorted()[cpuSeconds.count / 2] }
    var gflops: Double? { flop.map { $0 / median / 1e9 } }
    var gbps: Double? { bytes.map { $0 / median / 1e9 } }

    var dictionary: [String: Any] {
        var d: [String: Any] = ["backend": backend, "name": name, "median_s": median,
                                "min_s": seconds.min() ?? 0, "max_s": seconds.max() ?? 0, "runs": seconds.count,
                                "all_s": seconds]
        if let gflops { d["gflops"] = gflops; d["fraction_of_gemm_ceiling"] = gflops / ceiling }
        if let gbps { d["gbytes_per_s"] = gbps }
        if let cpuMedian { d["cpu_median_s"] = cpuMedian }
        for (k, v) in extra { d[k] = v }
        return d
    }

    var line: String {
        var text = "\(name.count >= 52 ? name : name.padding(toLength: 52, withPad: " ", startingAt: 0)) "
        text += String(format: "%9.4f s (min %.4f, max %.4f, n=%d)", median, seconds.min() ?? 0, seconds.max() ?? 0,
                       seconds.count)
        if let gflops { text += String(format: "  %7.1f GFLOP/s  %3.0f%% of ceiling", gflops, 100 * gflops / ceiling) }
        if let gbps { text += String(format: "  %6.1f GB/s", gbps) }
        if let cpuMedian { text += String(format: "  cpu %.4f s", cpuMedian) }
        return text
    }
}

struct BenchSuite {
    let backend: any Backend
    let quick: Bool
    let filter: String?
    let ceiling: Double
    let batch: Int
    let model: String
    /// Timed runs of the JEM iteration (nil: 5, or 2 with `quick`).
    var runs: Int? = nil
    /// Names of ops that failed their check against the CPU backend (and were not timed).
    static nonisolated(unsafe) var refused: [String] = []

    func run() throws -> [BenchResult] {
        var results: [BenchResult] = []
        // Every op of a non-CPU backend is checked against the CPU backend before it is timed.
        let validation = backend.kind == .cpu ? nil : BenchValidation(candidate: backend)
        func record(_ name: String, flop: Double? = nil, bytes: Double? = nil, warmup: Int = 1, runs: Int? = nil,
                    check: ((BenchValidation) throws -> Double)? = nil, tolerance: Double = BenchValidation.opTolerance,
                    _ body: () throws -> Void) throws {
            if let filter, !name.localizedCaseInsensitiveContains(filter) { return }
            if let validation, let check {
                let error = try check(validation)
                let passed = error <= tolerance
                print(String(format: "check %@: max rel. error vs CPU %.2e (tolerance %.0e) %@", name, error, tolerance,
                             passed ? "pass" : "FAIL: not timed"))
                if !passed {
                    Self.refused.append(name)
                    return
                }
            }
            let repetitions = runs ?? (quick ? 3 : 10)
            for _ in 0..<warmup { try body() }
            try backend.synchronize()
            var seconds: [Double] = [], cpuSeconds: [Double] = []
            for _ in 0..<repetitions {
                let cpuStart = processCPUSeconds()
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                try backend.synchronize()
                seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                cpuSeconds.append(processCPUSeconds() - cpuStart)
            }
            var result = BenchResult(backend: backend.kind.rawValue, name: name, seconds: seconds, flop: flop,
                                     bytes: bytes, ceiling: ceiling)
            result.cpuSeconds = cpuSeconds
            print(result.line)
            results.append(result)
        }

        // GEMM: square and conv-shaped (row-major [M,K] x [K,N]).
        let gemmShapes = quick ? [(256, 256, 256), (32, 16384, 288)]
            : [(1024, 1024, 1024), (32, 65536, 288), (64, 16384, 576), (128, 4096, 1152), (288, 65536, 32)]
        for (m, n, k) in gemmShapes {
            let a = try random(m * k, 1), b = try random(k * n, 2), c = try backend.makeBuffer(count: m * n)
            try record("gemm/sgemm \(m)x\(n)x\(k)", flop: 2 * Double(m * n * k), check: { v in
                try v.compare(inputs: [m * k, k * n], outputs: [m * n]) { e, i, o in e.gemm(m: m, n: n, k: k, a: i[0], b: i[1], c: o[0]) }
            }) {
                backend.gemm(m: m, n: n, k: k, a: a, b: b, c: c)
            }
        }

        // Every distinct conv of the model's forward, forward / backward-data / backward-filter.
        guard let (depth, widen) = WideResNetSpec.parse(model) else { return results }
        let spec = WideResNetSpec(depth: depth, widen: widen)
        let convBatch = quick ? min(batch, 8) : batch
        for s in convShapes(spec, batch: convBatch) {
            let x = try random(s.inputCount, 3), w = try random(s.weightCount, 4), b = try random(s.outChannels, 5)
            let y = try random(s.outputCount, 6), dx = try backend.makeBuffer(count: s.inputCount)
            let dw = try backend.makeBuffer(count: s.weightCount), db = try backend.makeBuffer(count: s.outChannels)
            let flop = 2 * Double(s.macs)
            var v = s
            v.batch = min(s.batch, 2)   // checked on two images of the shape
            try record("convolution/forward \(s)", flop: flop, check: { c in
                try c.compare(inputs: [v.inputCount, v.weightCount, v.outChannels], outputs: [v.outputCount]) { e, i, o in
                    e.conv2dForward(v, input: i[0], weight: i[1], bias: i[2], output: o[0])
                }
            }) {
                backend.conv2dForward(s, input: x, weight: w, bias: b, output: y)
            }
            try record("convolution/backward_data \(s)", flop: flop, check: { c in
                try c.compare(inputs: [v.outputCount, v.weightCount], outputs: [v.inputCount]) { e, i, o in
                    e.conv2dBackwardData(v, gradOutput: i[0], weight: i[1], gradInput: o[0], accumulate: false)
                }
            }) {
                backend.conv2dBackwardData(s, gradOutput: y, weight: w, gradInput: dx, accumulate: false)
            }
            try record("convolution/backward_filter \(s)", flop: flop, check: { c in
                try c.compare(inputs: [v.inputCount, v.outputCount], outputs: [v.weightCount, v.outChannels]) { e, i, o in
                    e.conv2dBackwardFilter(v, input: i[0], gradOutput: i[1], gradWeight: o[0], gradBias: o[1],
                                           accumulate: false)
                }
            }) {
                backend.conv2dBackwardFilter(s, input: x, gradOutput: y, gradWeight: dw, gradBias: db, accumulate: false)
            }
        }

        // Bandwidth-bound ops.
        let rows = 4096, cols = quick ? 100 : 1000
        let logits = try random(rows * cols, 7), lse = try backend.makeBuffer(count: rows)
        try record("loss/logsumexp \(rows)x\(cols)", bytes: Double(rows * cols * 4), check: { v in
            try v.compare(inputs: [rows * cols], outputs: [rows]) { e, i, o in e.logSumExpRows(i[0], rows: rows, cols: cols, out: o[0]) }
        }) {
            backend.logSumExpRows(logits, rows: rows, cols: cols, out: lse)
        }
        let count = convBatch * 3 * 32 * 32
        let sx = try random(count, 8), sg = try random(count, 9)
        try record("sampling/sgld_update \(convBatch)x3x32x32", bytes: Double(count * 12), check: { v in
            try v.compare(inputs: [count, count], outputs: [count]) { e, i, o in
                e.sgldUpdate(x: i[0], grad: i[1], count: count, stepSize: 1, noiseStd: 0.01, seed: 1, stream: 2,
                             gradClip: nil, clampRange: nil)
                e.copy(i[0], to: o[0], count: count)
            }
        }) {
            backend.sgldUpdate(x: sx, grad: sg, count: count, stepSize: 1, noiseStd: 0.01, seed: 1, stream: 2,
                               gradClip: nil, clampRange: nil)
        }
        let params = quick ? 300_000 : 36_500_000
        let p = try random(params, 10), g = try random(params, 11)
        let m1 = try backend.makeBuffer(count: params), m2 = try backend.makeBuffer(count: params)
        backend.fill(m1, value: 0, offset: 0, count: params)
        backend.fill(m2, value: 0, offset: 0, count: params)
        var step = 0
        let checkCount = min(params, 100_000)
        try record("optimizers/adam \(params) params", bytes: Double(params * 20), check: { v in
            try v.compare(inputs: [checkCount, checkCount], outputs: [checkCount, checkCount, checkCount]) { e, i, o in
                e.adamUpdate(parameters: i[0], gradients: i[1], firstMoment: o[0], secondMoment: o[1], count: checkCount,
                             hyper: AdamHyperparameters(learningRate: 1e-4), step: 1)
                e.copy(i[0], to: o[2], count: checkCount)
            }
        }) {
            step += 1
            backend.adamUpdate(parameters: p, gradients: g, firstMoment: m1, secondMoment: m2, count: params,
                               hyper: AdamHyperparameters(learningRate: 1e-4), step: step)
        }

        // Model level.
        let net = try WideResNet(spec: spec, maxBatch: batch, backend: backend)
        net.initialize(seed: 1)
        let input = try backend.makeBuffer(count: batch * spec.inputCount)
        backend.fillUniform(input, count: batch * spec.inputCount, low: -1, high: 1, seed: 1, stream: 1)
        let forwardFlop = 2 * Double(net.forwardMACsPerImage * batch)
        let modelRuns = quick ? 3 : 7
        let small = 2
        let smallInput = (0..<(small * spec.inputCount)).map { 2 * Philox.uniform(seed: 5, stream: 9, element: $0) - 1 }
        /// Logits, input gradient and (with `parameters`) every parameter gradient of one fwd + bwd at batch 2.
        func modelPass(_ e: any Backend, _ n: WideResNet, parameters: Bool) throws -> [Float] {
            let x = try e.makeBuffer(count: small * spec.inputCount)
            try e.upload(smallInput, to: x, offset: 0)
            let energy = try EnergyGradient(net: n)
            let logits = energy.forward(x, batch: small)
            var out = try e.download(logits, offset: 0, count: small * spec.classCount)
            if parameters {
                n.zeroGradients()
                energy.backward(logits, batch: small, mode: .full)
                for p in n.parameters where p.trainable { out += try e.download(p.gradient, offset: 0, count: p.count) }
            } else {
                energy.backward(logits, batch: small, mode: .inputOnly)
                out += try e.download(energy.inputGradient, offset: 0, count: small * spec.inputCount)
            }
            return out
        }
        try record("model/forward \(spec.name) batch \(batch)", flop: forwardFlop, runs: modelRuns, check: { v in
            try v.compareModel(spec) { e, n in try modelPass(e, n, parameters: false) }
        }, tolerance: BenchValidation.modelTolerance) {
            net.forward(input, batch: batch)
        }
        let energy = try EnergyGradient(net: net)
        try record("sampling/sgld_step \(spec.name) batch \(batch) (one SGLD step: fwd + d/dx + update)", flop: 2 * forwardFlop,
                   runs: modelRuns, check: { v in
            try v.compareModel(spec) { e, n in try modelPass(e, n, parameters: false) }
        }, tolerance: BenchValidation.modelTolerance) {
            energy.gradient(at: input, batch: batch)
            backend.sgldUpdate(x: input, grad: energy.inputGradient, count: batch * spec.inputCount, stepSize: 1, noiseStd: 0.01,
                               seed: 1, stream: 3, gradClip: nil, clampRange: 0...0.5)
        }
        try record("model/training_pass \(spec.name) batch \(batch) (fwd + bwd with parameter gradients)",
                   flop: 3 * forwardFlop, runs: modelRuns, check: { v in
            try v.compareModel(spec) { e, n in try modelPass(e, n, parameters: true) }
        }, tolerance: BenchValidation.modelTolerance) {
            energy.backward(energy.forward(input, batch: batch), batch: batch, mode: .full)
        }

        // One full JEM iteration (shared/bench's standard workload for wrn-10-2: batch 64, 3x32x32,
        // 20 SGLD steps, buffer 10000, three training passes with parameter gradients, Adam):
        // 49 forward-equivalents.
        let workload = try JEMIterationWorkload(backend: backend, spec: spec, batch: batch, sgldSteps: 20)
        let trainer = workload.trainer, data = workload.data
        var iteration = 0
        var traffic = TransferCounts()
        let jemName = "model/jem_iteration \(spec.name) batch \(batch) (20 SGLD steps)"
        try record(jemName, flop: 49 * forwardFlop, runs: runs ?? (quick ? 2 : 5), check: { v in
            // One iteration at batch 2 on both backends: the loss and the updated parameters.
            var outcomes: [[Float]] = []
            for e in [v.candidate, v.reference as any Backend] {
                var c = trainer.config
                c.batchSize = small
                c.bufferSize = 100
                let t = try JEMTrainer(config: c, spec: spec, backend: e)
                let d = TrainingBatch(px: smallInput, labeled: Array(smallInput.reversed()),
                                      labels: (0..<small).map { Int32($0 % spec.classCount) })
                let stats = try t.iterate(d, iteration: 0, learningRate: 1e-4, seed: 1)
                var values = [Float(stats.loss)]
                for p in t.net.parameters.prefix(3) { values += try e.download(p.value, offset: 0, count: p.count) }
                outcomes.append(values)
            }
            return BenchValidation.relativeError(outcomes[0], outcomes[1])
        }, tolerance: BenchValidation.modelTolerance) {
            let before = backend.transfers
            _ = try trainer.iterate(data, iteration: iteration, learningRate: 1e-4, seed: 1)
            traffic = backend.transfers - before    // the same every iteration: the last one is kept
            iteration += 1
        }
        if let index = results.lastIndex(where: { $0.name == jemName }) {
            // What crossed between host and device in one iteration (see README, Performance).
            results[index].extra["bytes_host_to_device_per_iteration"] = Double(traffic.bytesToDevice)
            results[index].extra["bytes_device_to_host_per_iteration"] = Double(traffic.bytesToHost)
            results[index].extra["uploads_per_iteration"] = Double(traffic.uploads)
            results[index].extra["downloads_per_iteration"] = Double(traffic.downloads)
            print("    host -> device \(traffic.bytesToDevice) bytes in \(traffic.uploads) uploads, "
                  + "device -> host \(traffic.bytesToHost) bytes in \(traffic.downloads) downloads per iteration")
        }
        return results
    }

    /// CPU time of this process, every thread, in seconds.
    private func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    private func random(_ count: Int, _ stream: UInt64) throws -> DeviceBuffer {
        let buffer = try backend.makeBuffer(count: count)
        backend.fillUniform(buffer, count: count, low: -1, high: 1, seed: 99, stream: stream)
        return buffer
    }

    /// The distinct convolutions of a WRN forward at 32x32.
    private func convShapes(_ spec: WideResNetSpec, batch: Int) -> [Conv2DShape] {
        var shapes = [Conv2DShape(batch: batch, inChannels: spec.inputChannels, height: 32, width: 32, outChannels: 16,
                                  kernel: 3, stride: 1, padding: 1)]
        var channels = 16, size = 32
        for (stage, out) in spec.stageChannels.dropFirst().enumerated() {
            let stride = stage == 0 ? 1 : 2
            shapes.append(Conv2DShape(batch: batch, inChannels: channels, height: size, width: size, outChannels: out,
                                      kernel: 3, stride: 1, padding: 1))
            shapes.append(Conv2DShape(batch: batch, inChannels: out, height: size, width: size, outChannels: out,
                                      kernel: 3, stride: stride, padding: 1))
            shapes.append(Conv2DShape(batch: batch, inChannels: channels, height: size, width: size, outChannels: out,
                                      kernel: 1, stride: stride, padding: 0))
            size /= stride
            if spec.blocksPerStage > 1 {
                shapes.append(Conv2DShape(batch: batch, inChannels: out, height: size, width: size, outChannels: out,
                                          kernel: 3, stride: 1, padding: 1))
            }
            channels = out
        }
        return shapes
    }
}
