import ArgumentParser
import Foundation
import JEM
import JEMBackend

struct CalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Fit a temperature for a checkpoint on its run's validation split (temperature scaling).",
        discussion: """
            Scores the validation images the trainer held out (the same ones: carved again from the checkpoint's data with its --valid, --train-limit and seed; no test image is used) and fits one temperature T > 0 that minimises the mean NLL of softmax(logits / T), by golden section search on log T over [0.01, 100]. The predictions, and so the accuracy, do not change.

            Writes the result beside the checkpoint (CKPT without .safetensors + .temperature.json, e.g. checkpoints/best.temperature.json; --out to put it elsewhere): temperature, nll_before, nll_after, ece_before, ece_after, count (validation images), split_detail, checkpoint, data. 'jem-gpu eval' and 'jem-gpu report' then show the temperature-scaled NLL and ECE next to the raw ones, labelled; without this file they show only the raw numbers.

            Exits with status 1 and one line naming the flag or file when the checkpoint records no training config (its validation split cannot be reproduced), the run held out no validation images, or the data has no labels.
            """)

    @OptionGroup var backendOptions: BackendOptions
    @Option(help: ArgumentHelp("Checkpoint (.safetensors) written by jem-gpu train.", valueName: "CKPT"))
    var model: String
    @Option(help: ArgumentHelp("The data the checkpoint was trained on (default: the path it records).", valueName: "PATH"))
    var data: String?
    @Option(help: ArgumentHelp("Where to write the temperature (default: beside the checkpoint, NAME.temperature.json).",
                               valueName: "FILE"))
    var out: String?
    @Option(name: .customLong("batch-size"), help: "Images per forward/backward pass.")
    var batchSize: Int = 100

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be >= 1 (got \(batchSize))") }
    }

    func run() throws {
        let config: TrainingConfig?
        do { (_, _, config) = try Checkpoint.describe(try SafetensorsFile(path: model)) } catch {
            throw CommandFailure("--model \(error)")
        }
        guard let config else {
            throw CommandFailure("--model \(model): the checkpoint records no training config, so the validation split "
                                 + "it was selected on cannot be reproduced")
        }
        var arguments = ["--model", model, "--split", "valid", "--batch-size", "\(batchSize)",
                         "--backend", backendOptions.backend.rawValue]
        if let device = backendOptions.device { arguments += ["--device", device] }
        if let data { arguments += ["--data", data] }
        if let train = config.builtinTrainCount, let test = config.builtinTestCount {
            arguments += ["--builtin-train", "\(train)", "--builtin-test", "\(test)"]
        }
        let inputs: EvaluationInputs
        do { inputs = try EvaluationInputs.parse(arguments) } catch {
            throw CommandFailure(EvaluationInputs.message(for: error))
        }
        let prepared = try inputs.prepare()
        let images = prepared.inDistribution.images
        guard images.labels != nil else {
            throw CommandFailure("--data \(prepared.settings.data): the validation images have no labels; a temperature "
                                 + "needs labelled images")
        }
        printError("\(prepared.spec) | \(images.count) images (\(prepared.settings.splitDetail)) | backend "
                   + prepared.settings.device)
        let output = try Evaluator(net: prepared.net).evaluate(prepared.inDistribution, ood: [],
                                                               settings: prepared.settings)
        let scores = output.inDistribution
        let labels = scores.labels!
        let fit = TemperatureScaling.fit(logits: scores.logits, labels: labels, classCount: scores.classCount)
        let before = TemperatureScaling.metrics(logits: scores.logits, labels: labels, classCount: scores.classCount,
                                                temperature: 1)
        let after = TemperatureScaling.metrics(logits: scores.logits, labels: labels, classCount: scores.classCount,
                                               temperature: fit.temperature)
        let file = TemperatureFile(fit: fit, eceBefore: before.ece, eceAfter: after.ece, count: images.count,
                                   split: "valid", splitDetail: prepared.settings.splitDetail, checkpoint: model,
                                   data: prepared.settings.data, testNoise: prepared.settings.testNoise)
        let path = out ?? TemperatureFile.path(forCheckpoint: model)
        do { try file.write(to: path) } catch { throw CommandFailure("--out \(error)") }
        print(String(format: "temperature %.4f on %d validation images: nll %.4f -> %.4f, ece %.4f -> %.4f",
                     fit.temperature, images.count, fit.nllBefore, fit.nllAfter, before.ece, after.ece))
        if fit.temperature > TemperatureScaling.highest * 0.99 || fit.temperature < TemperatureScaling.lowest * 1.01 {
            printError(String(format: "notice: T = %.4g is at the end of the search interval [%g, %g]: the validation "
                              + "NLL keeps falling beyond it (a model near chance, or one that is always right)",
                              fit.temperature, TemperatureScaling.lowest, TemperatureScaling.highest))
        }
        print("wrote \(path)")
    }
}

/// Adds the temperature-scaled NLL/ECE of `checkpoint`'s temperature file to an evaluation, or
/// says why there are none; returns the line to print. Never fits a temperature.
func addTemperatureScaling(checkpoint: String, to output: inout Evaluator.Output) throws -> String {
    guard output.result.labelled else { return "unlabelled images: no temperature-scaled NLL/ECE" }
    let lookup: TemperatureFile.Lookup
    do { lookup = try TemperatureFile.lookup(forCheckpoint: checkpoint) } catch { throw CommandFailure("\(error)") }
    switch lookup {
    case .none(let path):
        return "no temperature file (\(path)): raw NLL/ECE only; `jem-gpu calibrate --model \(checkpoint)` fits one "
            + "on the validation split"
    case .stale(let path):
        return "\(path) is older than \(checkpoint): temperature-scaled NLL/ECE left out (rerun jem-gpu calibrate)"
    case .found(let path, let file):
        output.result.addTemperatureScaling(file, path: path, scores: output.inDistribution)
        return String(format: "temperature %.4f (from %@, fitted on %d %@ images): nll_scaled %.4f  ece_scaled %.4f",
                      file.temperature, path, file.count, file.split, output.result.nllScaled ?? .nan,
                      output.result.eceScaled ?? .nan)
    }
}
