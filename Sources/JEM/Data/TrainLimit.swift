import JEMBackend
/// `jem-gpu train --train-limit N`: a run that learns from the first N training images of its
/// data only (e.g. a Fashion-MNIST subset sized for a CPU). The limit is a `TrainingConfig`
/// field, so the trainer, `--resume`, and everything that reproduces the run's split (eval and
/// calibrate's valid split, attack, the informative initialisation, sample-quality) apply it the
/// same way: first the limit, then the validation split of the remaining images.
extension Dataset {
    /// The dataset with only its first `limit` training images (file order, before any shuffle);
    /// the test split is untouched. Itself when `limit` is nil or not below the training count,
    /// so applying a limit twice is harmless. (`TrainingConfig.validate(for:)` refuses a limit
    /// above the training count, naming the flag.)
    public func limitingTrain(to limit: Int?) -> Dataset {
        guard let limit, limit >= 0, limit < train.count else { return self }
        return Dataset(format: format, source: source, train: train.subset(Array(0..<limit)), test: test,
                       classCount: classCount, classNames: classNames)
    }
}
