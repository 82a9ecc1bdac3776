import JEM
import JEMBackend

/// The official JEM iteration of shared/bench (wrn-D-W at `batch`, 3x32x32, a 10,000-image replay
/// buffer, p(x) from the first iteration, Adam) on fixed random batches: the one definition behind
/// jem-bench's `model/jem_iteration`, its cold-start children and `make bench-compare`.
struct JEMIterationWorkload {
    let trainer: JEMTrainer
    /// Two different real batches, as the official script draws them from two loaders.
    let data: TrainingBatch

    init(backend: any Backend, spec: WideResNetSpec, batch: Int, sgldSteps: Int) throws {
        var config = TrainingConfig()
        config.model = spec.name
        config.batchSize = batch
        config.sgldSteps = sgldSteps
        config.bufferSize = 10000
        config.pxDelay = 0
        trainer = try JEMTrainer(config: config, spec: spec, backend: backend)
        let images = { (stream: UInt64) in
            (0..<(batch * spec.inputCount)).map { 2 * Philox.uniform(seed: 5, stream: stream, element: $0) - 1 }
        }
        data = TrainingBatch(px: images(1), labeled: images(2), labels: (0..<batch).map { Int32($0 % spec.classCount) })
    }
}
