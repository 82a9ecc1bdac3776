import Foundation
import JEMBackend

/// The PNG figures of an evaluation: the reliability diagram, and per OOD set the histograms
/// of each score (in-distribution vs that set) and the ROC curves of the three scores.
public enum EvaluationPlots {
    /// Writes the figures into `folder` (atomically) and returns their file names.
    @discardableResult
    public static func write(_ output: Evaluator.Output, to folder: String) throws -> [String] {
        var written: [String] = []
        func save(_ chart: Chart, _ name: String) throws {
            try chart.write(to: folder + "/" + name)
            written.append(name)
        }
        let result = output.result
        let noise = result.settings.testNoise > 0 ? String(format: ", noise %g", result.settings.testNoise) : ""
        if let diagram = result.calibration {
            try save(Plots.reliability(title: String(format: "Reliability, %@ (acc %.4f%@)", result.settings.split,
                                                     result.accuracy ?? 0, noise), diagram),
                     "reliability.png")
        }
        var used = Set<String>()
        for (set, scores) in output.ood {
            let stem = uniqueStem(set.name, &used)
            for score in OODScore.allCases {
                let auroc = result.ood[set.name]?.auroc(score).map { String(format: "%.4f", $0) } ?? "n/a"
                let chart = Plots.histograms(
                    title: "\(score.rawValue): \(set.name), AUROC \(auroc)", xLabel: score.title,
                    sets: [("in-distribution", output.inDistribution.values(score)), (set.name, scores.values(score))])
                try save(chart, "hist_\(score.rawValue)_\(stem).png")
            }
            let curves = OODScore.allCases.map { score in
                let auroc = result.ood[set.name]?.auroc(score).map { String(format: "%.4f", $0) } ?? "n/a"
                return (name: "\(score.rawValue) AUROC \(auroc)",
                        points: ROC.curve(positive: output.inDistribution.values(score), negative: scores.values(score)))
            }
            try save(Plots.roc(title: "ROC: in-distribution vs \(set.name)\(noise)", curves: curves), "roc_\(stem).png")
        }
        return written
    }

    /// A file-name-safe form of an OOD set name (`synthetic:uniform` -> `synthetic_uniform`),
    /// suffixed with _2, _3 ... when two names map to the same one.
    public static func uniqueStem(_ name: String, _ used: inout Set<String>) -> String {
        let base = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") ? $0 : "_" })
        var stem = base.isEmpty ? "ood" : base, k = 2
        while used.contains(stem) { stem = "\(base)_\(k)"; k += 1 }
        used.insert(stem)
        return stem
    }
}
