import ArgumentParser
import Foundation
import JEM
import JEMBackend
import JEMSupport

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint: accuracy, NLL, calibration (ECE) and OOD detection (AUROC), with plots.",
        discussion: """
            Scores the --split images of --data and every --ood set with the checkpoint's network (batched on the backend: one forward and one input-only backward per batch) and writes to --out:

            metrics.json: accuracy; nll (mean cross-entropy, raw logits); ece (raw) (20 equal-width bins (i/20, (i+1)/20] of the max-softmax confidence, Guo et al.) with every bin's count, mean confidence and accuracy under calibration.bins; summaries of the three OOD scores on each set; and under ood.<name> the AUROC of px = LogSumExp(logits), py = max softmax and pxgrad = -||dLSE/dx||_2 (in-distribution = positive, as the official eval_wrn_ebm.py); plus every setting used (checkpoint, data, split, test noise, seed, backend, device, batch size).

            Temperature scaling: when `jem-gpu calibrate` stored a temperature beside the checkpoint (NAME.temperature.json, fitted on the validation split), metrics.json also holds temperature, temperature_file, nll_scaled and ece_scaled (NLL and ECE of softmax(logits / T)); nll and ece stay the raw numbers. Without that file the scaled numbers are left out (eval never fits a temperature on the images it scores).

            reliability.png (accuracy per confidence bin against the diagonal), hist_<score>_<ood>.png (in-distribution vs that set, per score) and roc_<ood>.png (the three ROC curves).

            Synthetic OOD sets need no download: --ood synthetic:uniform (every pixel U(-1,1)), synthetic:interp (the paper's interp: the midpoint of two different random in-distribution images) and synthetic:permuted (each in-distribution image with its pixel positions randomly permuted, channels together). Each has as many images as the scored set and is a pure function of those images and --seed.

            Files are written atomically. Exits with status 1 and one line naming the flag and file when an input does not fit: a checkpoint with another class count or input shape than --data, an OOD set of another image shape, missing files. `jem-gpu score` writes the per-example numbers these metrics are computed from.
            """)

    @OptionGroup var inputs: EvaluationInputs
    @Option(help: ArgumentHelp("Output folder for metrics.json and the plots.", valueName: "DIR"))
    var out: String

    func run() throws {
        // Under mpirun the images are split over the ranks (whole batches each) and rank 0 writes.
        let world = try Distributed.world()
        try Distributed.guarded(world) { try evaluate(world) }
    }

    func evaluate(_ world: any Communicator) throws {
        let prepared = try inputs.prepare()
        if world.isWriter { printError("\(prepared.spec) | \(prepared.inDistribution.images.count) images (\(prepared.settings.splitDetail))"
                   + " | backend \(prepared.settings.device)") }
        if world.isWriter { do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure("--out \(out): cannot create the folder (\(error.localizedDescription))")
        } }
        let started = Date()
        let evaluator = try Evaluator(net: prepared.net)
        evaluator.communicator = world
        var output = try evaluator.evaluate(prepared.inDistribution, ood: prepared.ood, settings: prepared.settings) {
            if world.isWriter { printError("scoring \($0)") }
        }
        guard world.isWriter else { return }
        let temperatureNote = try addTemperatureScaling(checkpoint: inputs.model, to: &output)
        let seconds = Date().timeIntervalSince(started)
        let result = output.result
        let json = try EvaluationResult.encoder.encode(result)
        try AtomicFile.write(json, to: out + "/metrics.json")
        let plots = try EvaluationPlots.write(output, to: out)

        if let accuracy = result.accuracy, let nll = result.nll, let ece = result.ece {
            print(String(format: "accuracy %.4f  nll %.4f  ece %.4f  (raw, %d images)", accuracy, nll, ece, result.count))
            print(temperatureNote)
        } else {
            print("\(result.count) unlabelled images: no accuracy, NLL or ECE")
        }
        for set in prepared.ood {
            guard let r = result.ood[set.name] else { continue }
            func text(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "n/a" }
            print("AUROC vs \(set.name): px \(text(r.px))  py \(text(r.py))  pxgrad \(text(r.pxgrad))  (\(r.count) images)")
        }
        let images = result.count + result.ood.values.reduce(0) { $0 + $1.count }
        print(String(format: "wrote %@/metrics.json and %d plots (%d images scored in %.1f s)", out, plots.count,
                     images, seconds))
    }
}
