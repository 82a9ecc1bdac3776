import Foundation
import JEM
import JEMBackend
import JEMSupport
import JEMDistributed

/// `jem-bench --distributed` (alone or under `mpirun -np N`): the seconds of one data-parallel JEM
/// iteration per rank (global batch `batch`, split over the ranks) with the part spent in the
/// gradient allreduce, and the allreduce alone for gradient buffers of several sizes, up to
/// wrn-28-10's 36.5 M parameters (146 MB). Rank 0 prints; the figures feed the README's projection.
enum DistributedBench {
    static func run(backendChoice: BackendChoice, device: String?, model: String, batch: Int, runs: Int,
                    json: String?) throws {
        let world = try MPICommunicator.world()
        guard batch % world.size == 0 else {
            throw BackendError("--batch \(batch) is not divisible by the \(world.size) ranks")
        }
        let backend = try BackendSelection.make(backendChoice, device: device).backend
        func say(_ line: String) { if world.isWriter { print(line) } }
        say("distributed: \(world.size) rank(s), rank 0 on \(backend.deviceDescription)")

        // One JEM iteration on `model` with 3x32x32 inputs (as the main suite), 20 SGLD steps.
        guard let (depth, widen) = WideResNetSpec.parse(model) else { throw BackendError("bad --model \(model)") }
        let spec = WideResNetSpec(depth: depth, widen: widen, inputChannels: 3, imageHeight: 32, imageWidth: 32,
                                  classCount: 10)
        var config = TrainingConfig()
        config.model = spec.name
        config.batchSize = batch
        config.sgldSteps = 20
        config.bufferSize = 10000
        config.pxDelay = 0
        let trainer = try JEMTrainer(config: config, spec: spec, backend: backend, communicator: world)
        let images = { (stream: UInt64) in
            (0..<(batch * spec.inputCount)).map { 2 * Philox.uniform(seed: 5, stream: stream, element: $0) - 1 }
        }
        let data = TrainingBatch(px: images(1), labeled: images(2), labels: (0..<batch).map { Int32($0 % 10) })
        _ = try trainer.iterate(data, iteration: 0, learningRate: 1e-4, seed: 1)   // warm-up
        try backend.synchronize()
        var iterationSeconds: [Double] = [], allreduceSeconds: [Double] = []
        for i in 1...runs {
            try world.barrier()
            let before = world.statistics.allreduceSeconds
            let start = Date()
            _ = try trainer.iterate(data, iteration: i, learningRate: 1e-4, seed: 1)
            try backend.synchronize()
            iterationSeconds.append(Date().timeIntervalSince(start))
            allreduceSeconds.append(world.statistics.allreduceSeconds - before)
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let perRank = try world.gatherScalars([median(iterationSeconds), median(allreduceSeconds)])
        let gradientBytes = trainer.net.trainableParameters.reduce(0) { $0 + $1.count } * 4
        var results: [String: Any] = [
            "world_size": world.size, "model": spec.name, "global_batch": batch, "rows_per_rank": batch / world.size,
            "gradient_bytes": gradientBytes, "device": backend.deviceDescription,
            "rank_iteration_seconds": perRank.map { $0[0] }, "rank_allreduce_seconds": perRank.map { $0[1] },
        ]
        for (r, v) in perRank.enumerated() {
            say(String(format: "  rank %d: JEM iteration %@ batch %d (%d rows here): %.3f s, allreduce of %.2f MB: %.4f s",
                       r, spec.name, batch, batch / world.size, v[0], Double(gradientBytes) / 1e6, v[1]))
        }

        // The allreduce alone: sum of `count` floats over all ranks (in place), median of 5.
        var allreduce: [[String: Double]] = []
        for megabytes in [1.0, 16.0, 146.0] {
            let count = Int(megabytes * 1e6 / 4)
            var values = [Float](repeating: 1, count: count)
            try world.allreduceSum(&values)   // warm-up (pages, connections)
            var times: [Double] = []
            for _ in 0..<5 {
                try world.barrier()
                let start = Date()
                try world.allreduceSum(&values)
                times.append(Date().timeIntervalSince(start))
            }
            let t = try world.gatherScalars([median(times)]).map { $0[0] }.max() ?? 0
            let busBandwidth = world.size > 1 ? 2 * Double(world.size - 1) / Double(world.size) * megabytes / 1e3 / t : 0
            say(String(format: "  allreduce %.0f MB: %.4f s (bus bandwidth %.2f GB/s)", megabytes, t, busBandwidth))
            allreduce.append(["megabytes": megabytes, "seconds": t, "bus_gigabytes_per_second": busBandwidth])
        }
        results["allreduce"] = allreduce
        if world.isWriter, let json {
            let data = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(data, to: json)
        }
    }
}
