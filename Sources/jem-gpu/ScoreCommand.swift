import ArgumentParser
import Foundation
import JEM
import JEMBackend
import JEMSupport

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Write every example's logits and OOD scores (.npz and/or CSV), to recompute any metric elsewhere.",
        discussion: """
            Scores the --split images of --data (and every --ood set) exactly as `jem-gpu eval` does, same flags, same test noise, and writes the raw numbers instead of the metrics.

            --out FILE.npz (numpy.load, no pickle): logits [N,K] float32, labels [N] int64 (when the data is labelled), lse [N] float32 (px = LogSumExp of the logits), maxprob [N] float32 (py = max softmax), gradnorm [N] float32 (||dLSE/dx||_2 over the flattened input; pxgrad = -gradnorm); for each OOD set the same arrays named ood_<name>_logits, ood_<name>_lse, ood_<name>_maxprob, ood_<name>_gradnorm (<name> with characters other than letters, digits, '-' and '.' replaced by '_'); test_noise (0-d float32); and settings, a 0-d string holding the settings as JSON (str(np.load(f)["settings"])).

            --csv FILE: one row per example, columns set,index,label,lse,maxprob,gradnorm,logit_0..logit_{K-1} (set is in-distribution or the OOD set's name; label empty when unknown; floats with 9 significant digits, which round-trip float32), after a first comment line '# jem-gpu score ...' with the settings.

            With numpy: acc = (logits.argmax(1) == labels).mean(); AUROC as the Mann-Whitney U statistic of lse (or maxprob, -gradnorm) in-distribution vs OOD, ties counting 1/2.
            """)

    @OptionGroup var inputs: EvaluationInputs
    @Option(help: ArgumentHelp("NumPy .npz file to write.", valueName: "FILE.npz"))
    var out: String?
    @Option(help: ArgumentHelp("CSV file to write (instead of or besides --out).", valueName: "FILE.csv"))
    var csv: String?

    func validate() throws {
        guard out != nil || csv != nil else { throw ValidationError("give --out FILE.npz and/or --csv FILE.csv") }
    }

    func run() throws {
        // Under mpirun the images are split over the ranks (whole batches each) and rank 0 writes.
        let world = try Distributed.world()
        try Distributed.guarded(world) { try score(world) }
    }

    func score(_ world: any Communicator) throws {
        let prepared = try inputs.prepare()
        if world.isWriter { printError("\(prepared.spec) | \(prepared.inDistribution.images.count) images (\(prepared.settings.splitDetail))"
                   + " | backend \(prepared.settings.device)") }
        let evaluator = try Evaluator(net: prepared.net)
        evaluator.communicator = world
        let output = try evaluator.evaluate(prepared.inDistribution, ood: prepared.ood, settings: prepared.settings) {
            if world.isWriter { printError("scoring \($0)") }
        }
        guard world.isWriter else { return }
        var used = Set<String>()
        let sets: [(prefix: String, name: String, source: String, scores: ExampleScores)] =
            [("", "in-distribution", prepared.inDistribution.source, output.inDistribution)]
            + output.ood.map { ("ood_" + EvaluationPlots.uniqueStem($0.set.name, &used) + "_", $0.set.name,
                                $0.set.source, $0.scores) }
        let settingsJSON = try Self.settingsJSON(output.result.settings, sets: sets.map { ($0.prefix, $0.name, $0.source, $0.scores.count) })
        if let out {
            var arrays: [(name: String, value: NPYValue)] = []
            for set in sets {
                let s = set.scores
                arrays.append((set.prefix + "logits", .float32(s.logits, shape: [s.count, s.classCount])))
                if let labels = s.labels { arrays.append((set.prefix + "labels", .int64(labels.map(Int64.init), shape: [s.count]))) }
                arrays.append((set.prefix + "lse", .float32(s.lse, shape: [s.count])))
                arrays.append((set.prefix + "maxprob", .float32(s.maxProbability, shape: [s.count])))
                arrays.append((set.prefix + "gradnorm", .float32(s.gradientNorm, shape: [s.count])))
            }
            arrays.append(("test_noise", .float32([output.result.settings.testNoise], shape: [])))
            arrays.append(("settings", .string(settingsJSON)))
            do { try NPZWriter.writeNPZ(arrays, to: out) } catch { throw CommandFailure("--out \(error)") }
            print("wrote \(out) (\(arrays.count) arrays)")
        }
        if let csv {
            do {
                try AtomicFile.write(to: csv) { handle in
                    try handle.write(contentsOf: Data(("# jem-gpu score " + settingsJSON + "\n").utf8))
                    let k = output.inDistribution.classCount
                    let header = ["set", "index", "label", "lse", "maxprob", "gradnorm"] + (0..<k).map { "logit_\($0)" }
                    try handle.write(contentsOf: Data((header.joined(separator: ",") + "\n").utf8))
                    for set in sets {
                        try handle.write(contentsOf: Data(Self.csvRows(set.name, set.scores).utf8))
                    }
                }
            } catch { throw CommandFailure("--csv \(error)") }
            print("wrote \(csv) (\(sets.reduce(0) { $0 + $1.scores.count }) rows)")
        }
    }

    /// The settings, plus which arrays/rows each set's numbers are under, as one line of JSON.
    static func settingsJSON(_ settings: EvaluationSettings,
                             sets: [(prefix: String, name: String, source: String, count: Int)]) throws -> String {
        let settingsObject = try JSONSerialization.jsonObject(with: EvaluationResult.encoder.encode(settings))
        var object = settingsObject as? [String: Any] ?? [:]
        object["sets"] = sets.map { ["prefix": $0.prefix, "name": $0.name, "source": $0.source, "count": $0.count] }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func csvRows(_ name: String, _ s: ExampleScores) -> String {
        // Quote the set name only when it needs it (a comma or quote in a user's OOD name).
        let field = name.contains(",") || name.contains("\"") ? "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : name
        func number(_ v: Float) -> String { v.isFinite ? String(format: "%.9g", Double(v)) : (v.isNaN ? "nan" : (v > 0 ? "inf" : "-inf")) }
        var text = ""
        for i in 0..<s.count {
            var row = [field, String(i), s.labels.map { String($0[i]) } ?? "", number(s.lse[i]), number(s.maxProbability[i]),
                       number(s.gradientNorm[i])]
            for c in 0..<s.classCount { row.append(number(s.logits[i * s.classCount + c])) }
            text += row.joined(separator: ",") + "\n"
        }
        return text
    }
}
