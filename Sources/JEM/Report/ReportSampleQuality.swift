import Foundation
import JEMBackend

extension RunFolder {
    /// Where `jem-gpu sample-quality --out DIR/sample_quality` writes its numbers.
    public var sampleQualityPath: String { path + "/sample_quality/sample_quality.json" }

    /// sample_quality/sample_quality.json, or nil when sample-quality was not run for this folder.
    public func sampleQuality() throws -> SampleQuality.Result? {
        guard FileManager.default.fileExists(atPath: sampleQualityPath) else { return nil }
        return try SampleQuality.Result.read(sampleQualityPath)
    }
}

extension ReportBuilder {
    /// "Sample quality": the numbers of `jem-gpu sample-quality` for each model that has them
    /// (conditional accuracy under the reference classifier, FD and KID against the test images
    /// in the reference's penultimate features, for the samples and for the chains' starting
    /// draws), or the command that produces them.
    func addSampleQuality(_ doc: inout ReportDocument) throws {
        doc.append(.heading(level: 2, text: "Sample quality"))
        var any = false
        for (i, m) in models.enumerated() {
            guard let q = try m.run.sampleQuality() else { continue }
            any = true
            if baseline != nil { doc.append(.heading(level: 3, text: header(i))) }
            func kid(_ r: SampleQuality.SetResult) -> String {
                String(format: "%.4g ± %.2g", r.kid.value, r.kid.std)
            }
            var sets: [(String, SampleQuality.SetResult)] = [
                ("class-conditional SGLD samples", q.conditional), ("unconditional SGLD samples", q.unconditional),
                ("initial draws (\(q.initialization), no SGLD step)", q.initial),
            ]
            if let halves = q.testHalves { sets.append(("test images, one half against the other", halves)) }
            let rows = sets.map { name, r in
                [name, "\(r.count)", r.conditionalAccuracy.map { Self.number($0) } ?? "-",
                 String(format: "%.4g", r.frechetDistance), kid(r)]
            }
            doc.append(.table(header: ["images", "count", "conditional accuracy", "Fréchet distance", "KID (± std)"],
                              rows: rows, numeric: [1, 2, 3, 4]))
            let accuracy = q.referenceTestAccuracy.map { ", test accuracy \(Self.number($0))" } ?? ""
            doc.append(.paragraph("From `\(m.run.sampleQualityPath)`: \(q.steps) SGLD steps of "
                                  + String(format: "%g, noise %g", q.stepSize, q.noiseStd) + ", seed \(q.seed). "
                                  + "Measured by the reference classifier `\(q.reference)`\(accuracy): conditional "
                                  + "accuracy is the share of class-conditional samples it assigns to their class; "
                                  + "Fréchet distance and KID (unbiased MMD² with kernel (x·y/d + 1)³, mean ± std over "
                                  + "subsets) compare each set with the \(q.testImages) test images in its "
                                  + "\(q.featureDimension) penultimate features (lower is closer)."))
        }
        if !any {
            doc.append(.paragraph("not measured: `jem-gpu sample-quality --model \(model.run.checkpoint) --reference "
                                  + "BASELINE_CKPT --out \(model.run.path)/sample_quality`"))
        }
    }
}
