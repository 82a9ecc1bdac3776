import JEMBackend
import JEMSupport
/// Which images of a dataset an evaluation scores.
public enum EvaluationSplit: String, Sendable, Codable, CaseIterable {
    /// The dataset's test split; a dataset that is a single set of images (one .npy, one IDX
    /// image file, one SVHN .mat) has none and is used whole.
    case test
    /// The training images the trainer learned from: the training split minus the valid part.
    case train
    /// The images the trainer held out for validation (the same ones, carved with the
    /// checkpoint's recorded `--valid` count and seed).
    case valid
}

/// The images of an evaluation, with a sentence saying where they came from.
public struct EvaluationImages: Sendable {
    public let images: ImageSet
    public let detail: String
}

public enum EvaluationData {
    /// The images of `split`. `train` and `valid` repeat the trainer's `DataSplit` with the
    /// valid count and seed of `config` (the training config stored in the checkpoint); without
    /// one, `valid` cannot be reproduced and is refused, and `train` is the whole training split.
    public static func select(_ dataset: Dataset, split: EvaluationSplit, config: TrainingConfig?) throws
        -> EvaluationImages
    {
        switch split {
        case .test:
            if let test = dataset.test {
                return EvaluationImages(images: test, detail: "test split of \(dataset.format), \(test.count) images")
            }
            return EvaluationImages(images: dataset.train,
                                    detail: "all \(dataset.train.count) images (\(dataset.format) has no test split)")
        case .train, .valid:
            guard let config else {
                if split == .train {
                    return EvaluationImages(images: dataset.train, detail: "the whole training split, "
                                            + "\(dataset.train.count) images (checkpoint has no training config)")
                }
                throw IOError("the checkpoint records no training config, so its valid split (count and seed) "
                              + "cannot be reproduced; use --split test or train")
            }
            let carved = DataSplit(dataset.limitingTrain(to: config.trainLimit).train, validCount: config.validCount, labelsPerClass: nil,
                                   classCount: dataset.classCount, seed: config.seed)
            let set = split == .valid ? carved.valid : carved.train
            let validText = (config.validCount.map { "--valid \($0)" } ?? "default --valid")
                + (config.trainLimit.map { ", --train-limit \($0)" } ?? "")
            return EvaluationImages(images: set, detail: "\(split.rawValue) part of the training split as the trainer "
                                    + "carved it (\(validText), seed \(config.seed)), \(set.count) images")
        }
    }

    /// The one-line reason `images` cannot be evaluated with a network of `spec`, or nil when
    /// they can: their shape must be the network's input, and `classCount` (the dataset's, for
    /// labelled data; nil to skip the check) its class count.
    public static func mismatch(_ images: ImageSet, classCount: Int?, spec: WideResNetSpec) -> String? {
        if images.shape != [spec.inputChannels, spec.imageHeight, spec.imageWidth] {
            return "images are \(CheckedSize.shape(images.shape)) but the model \(spec.name) takes "
                + "\(spec.inputChannels)×\(spec.imageHeight)×\(spec.imageWidth)"
        }
        if let classCount, classCount != spec.classCount {
            return "the data has \(classCount) classes but the model classifies \(spec.classCount)"
        }
        if images.count == 0 { return "holds no images to evaluate" }
        return nil
    }
}
