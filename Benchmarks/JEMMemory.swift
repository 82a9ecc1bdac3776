import Foundation
import JEM
import JEMBackend

/// `jem-bench --jem-memory`: a process that runs only the JEM-iteration workload on the CPU
/// backend (the same trainer set-up as the "JEM iteration" benchmark: batch, model, 20 SGLD steps,
/// buffer 10000, Adam), with no GEMM ceiling and no other benchmark's buffers, then reports its
/// peak resident memory (VmHWM) and a table of what the iteration allocates, from the code's own
/// buffer sizes: the bytes `makeBuffer` handed out while each owner was built, and the CPU
/// backend's convolution scratch after the iterations. `make bench-compare` compares the peak with
/// PyTorch's (ru_maxrss of jem_iteration.py, read right after its JEM iterations).
enum JEMMemory {
    struct Row {
        let owner: String
        let bytes: Int
    }

    static func run(model: String, batch: Int, iterations: Int, json: String?) throws {
        guard let (depth, widen) = WideResNetSpec.parse(model) else { return }
        let spec = WideResNetSpec(depth: depth, widen: widen)
        let backend = CPUBackend()
        let config = benchConfig(spec: spec, batch: batch)

        // What each owner allocates, built one by one on a second backend (nothing runs on it).
        let probe = CPUBackend()
        func bytes(_ build: () throws -> Void) rethrows -> Int {
            let before = probe.allocatedBytes
            try build()
            return probe.allocatedBytes - before
        }
        var net: WideResNet!
        let netBytes = try bytes { net = try WideResNet(spec: spec, maxBatch: batch, backend: probe) }
        let parameterBytes = net.parameters.reduce(0) { $0 + $1.value.byteCount + $1.gradient.byteCount }
        let adamBytes = try bytes {
            _ = try Optimizer(kind: .adam, parameters: net.trainableParameters, weightDecay: 0, backend: probe)
        }
        let replayBytes = try bytes {
            _ = try ReplayBuffer(size: config.bufferSize, rowSize: spec.inputCount, backend: probe, seed: 1)
        }
        let samplerBytes = try bytes {
            _ = try SGLDSampler(net: net, steps: config.sgldSteps, stepSize: config.sgldLR, noiseStd: config.sgldStd)
        }

        // The measured process: the trainer, one warm-up and `iterations` timed iterations.
        let trainer = try JEMTrainer(config: config, spec: spec, backend: backend)
        let trainerBytes = backend.allocatedBytes
        let data = benchBatch(spec: spec, batch: batch)
        var seconds: [Double] = []
        for iteration in 0...iterations {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try trainer.iterate(data, iteration: iteration, learningRate: 1e-4, seed: 1)
            if iteration > 0 { seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        let peak = peakResidentBytes()
        let resident = backend.residentBufferBytes

        var rows = [
            Row(owner: "parameters + their gradients", bytes: parameterBytes),
            Row(owner: "activations kept for backward + gradient scratch (WideResNet)",
                bytes: netBytes - parameterBytes),
            Row(owner: "Adam moments", bytes: adamBytes),
            Row(owner: "replay buffer (\(config.bufferSize) images)", bytes: replayBytes),
            Row(owner: "SGLD chains, input gradient, indices", bytes: samplerBytes),
            Row(owner: "trainer: real batch, energies, sample copy, ...",
                bytes: trainerBytes - netBytes - adamBytes - replayBytes - samplerBytes),
        ]
        rows += backend.scratchBytes.filter { $0.bytes > 0 }.map { Row(owner: "CPU scratch: \($0.purpose)", bytes: $0.bytes) }
        let total = rows.reduce(0) { $0 + $1.bytes }

        print("One JEM iteration, \(spec.name), batch \(batch), CPU backend: what it allocates")
        func line(_ name: String, _ b: Int) {
            print(name.padding(toLength: 66, withPad: " ", startingAt: 0) + String(format: "%9.1f MB", Double(b) / 1e6))
        }
        for row in rows { line(row.owner, row.bytes) }
        line("total allocated by the code", total)
        line("  of which makeBuffer buffers resident after the iterations", resident)
        print("  (the rest of the makeBuffer bytes were never written: the WideResNet's act(x) and d act(x)")
        print("   buffers, which a backend that fuses the activations into the convolutions never touches, and")
        print("   the shortcut outputs, which one that adds the shortcut onto the block output never needs)")
        let scratch = backend.scratchBytes.reduce(0) { $0 + $1.bytes }
        line("peak resident memory of this process (VmHWM)", peak)
        line("  of which runtime, libraries, OpenBLAS, heap (the rest)", peak - resident - scratch)
        let median = seconds.sorted()[seconds.count / 2]
        print(String(format: "JEM iteration: median %.3f s over %d (after 1 warm-up)", median, seconds.count))

        if let json {
            let document: [String: Any] = [
                "workload": "JEM iteration only, \(spec.name), batch \(batch), \(config.sgldSteps) SGLD steps",
                "peak_rss_bytes": peak, "allocated_bytes": total, "resident_buffer_bytes": resident,
                "allocations": rows.map { ["owner": $0.owner, "bytes": $0.bytes] },
                "median_s": median, "all_s": seconds,
            ]
            let data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys])
            try data.write(to: URL(fileURLWithPath: json), options: .atomic)
        }
    }

    /// The trainer configuration of the "JEM iteration" benchmark (BenchSuite).
    static func benchConfig(spec: WideResNetSpec, batch: Int) -> TrainingConfig {
        var config = TrainingConfig()
        config.model = spec.name
        config.batchSize = batch
        config.sgldSteps = 20
        config.bufferSize = 10000
        config.pxDelay = 0
        return config
    }

    /// Two different real batches and labels, as the "JEM iteration" benchmark uses them.
    static func benchBatch(spec: WideResNetSpec, batch: Int) -> TrainingBatch {
        let images = { (stream: UInt64) in
            (0..<(batch * spec.inputCount)).map { 2 * Philox.uniform(seed: 5, stream: stream, element: $0) - 1 }
        }
        return TrainingBatch(px: images(1), labeled: images(2),
                             labels: (0..<batch).map { Int32($0 % spec.classCount) })
    }
}
