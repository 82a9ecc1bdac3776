import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// `jem-gpu eval` and `jem-gpu score` as a user runs them, on a tiny model trained for one
/// epoch: eval's numbers are recomputed from score's dump (with the project's readers and with
/// numpy), the valid split is the trainer's, other shapes and class counts work, and bad input
/// gives one line naming the flag.
final class EvaluationCLITests: XCTestCase {
    /// Built-in digits, 300 train (30 held out as valid) and 60 test images, as the CLI makes
    /// them with `--builtin-train 300 --builtin-test 60`.
    static let builtinFlags = ["--builtin-train", "300", "--builtin-test", "60"]
    nonisolated(unsafe) static var folder: String = ""
    nonisolated(unsafe) static var trained: (checkpoint: String, metrics: [[String: Any]])?

    override class func tearDown() {
        if !folder.isEmpty { try? FileManager.default.removeItem(atPath: folder) }
        super.tearDown()
    }

    override func setUpWithError() throws {
        try requireJemGPUBinary()
        if Self.folder.isEmpty {
            Self.folder = NSTemporaryDirectory() + "jem-eval-cli-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: Self.folder, withIntermediateDirectories: true)
        }
    }

    /// One epoch of JEM training (16 iterations) through the library, test noise 0.1: the run
    /// evaluates its valid and test sets after the last iteration, on the weights it saves.
    func trainedModel() throws -> (checkpoint: String, metrics: [[String: Any]]) {
        if let trained = Self.trained { return trained }
        var config = Presets.standard
        config.batchSize = 16
        config.sgldSteps = 2
        config.bufferSize = 64
        config.maxIterations = 16
        config.warmupIterations = 2
        config.pxDelay = 0
        config.pxRamp = 0
        config.learningRate = 1e-3
        config.testNoise = 0.1
        config.seed = 23
        config.sampleEvery = 0
        config.finalSampleSteps = 0
        let dataset = BuiltinDataset.make(trainCount: 300, testCount: 60)
        let dir = Self.folder + "/run"
        let run = try TrainingRun(config: config, dataset: dataset, backend: CPUBackend(), outputDirectory: dir, resume: false)
        run.report = { _ in }
        try run.run()
        let lines = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let trained = (run.checkpointPath, lines)
        Self.trained = trained
        return trained
    }

    func readJSON(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
    }

    /// The arrays of an .npz, through the project's own zip and NPY readers (numeric ones only).
    func readNPZ(_ path: String) throws -> [String: NPYArray] {
        let zip = try ZipArchive(path: path)
        var arrays: [String: NPYArray] = [:]
        for entry in zip.entries where entry.name.hasSuffix(".npy") {
            let bytes = try zip.extract(entry)
            if let array = try? NPYArray(bytes: bytes, file: entry.name) { arrays[String(entry.name.dropLast(4))] = array }
        }
        return arrays
    }

    func scores(_ arrays: [String: NPYArray], prefix: String) throws -> ExampleScores {
        let logits = try XCTUnwrap(arrays[prefix + "logits"])
        return ExampleScores(count: logits.shape[0], classCount: logits.shape[1], logits: logits.cOrderFloats(),
                             labels: arrays[prefix + "labels"].map { $0.doubles().map { Int32($0) } },
                             lse: try XCTUnwrap(arrays[prefix + "lse"]).cOrderFloats(),
                             maxProbability: try XCTUnwrap(arrays[prefix + "maxprob"]).cOrderFloats(),
                             gradientNorm: try XCTUnwrap(arrays[prefix + "gradnorm"]).cOrderFloats())
    }

    /// eval's metrics.json == the metrics recomputed from score's .npz of the same model, data,
    /// OOD sets and test noise: with the library's functions exactly, with numpy to 1e-6; the
    /// CSV holds the same numbers; the plots are PNGs.
    func testEvalNumbersAreRecomputedFromTheScoreDump() throws {
        let (checkpoint, _) = try trainedModel()
        let common = ["--backend", "cpu", "--model", checkpoint, "--data", "builtin"] + Self.builtinFlags
            + ["--ood", "synthetic:uniform", "--ood", "synthetic:permuted", "--test-noise", "0.03", "--batch-size", "25"]
        let out = Self.folder + "/eval"
        let eval = try runJemGPU(["eval"] + common + ["--out", out])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        XCTAssertTrue(eval.stdout.contains("AUROC vs synthetic:uniform"), eval.stdout)
        let npz = Self.folder + "/scores.npz", csv = Self.folder + "/scores.csv"
        let score = try runJemGPU(["score"] + common + ["--out", npz, "--csv", csv])
        XCTAssertEqual(score.status, 0, score.stderr)

        let metrics = try readJSON(out + "/metrics.json")
        let settings = metrics["settings"] as? [String: Any] ?? [:]
        XCTAssertEqual(settings["test_noise"] as? Double ?? 0, 0.03, accuracy: 1e-7)
        XCTAssertEqual(settings["backend"] as? String, "cpu")
        XCTAssertEqual(settings["checkpoint"] as? String, checkpoint)
        XCTAssertEqual(settings["split"] as? String, "test")
        XCTAssertEqual(settings["classes"] as? Int, 10)
        XCTAssertEqual(settings["seed"] as? Int, 23, "the seed defaults to the checkpoint's training seed")
        XCTAssertEqual(metrics["count"] as? Int, 60)
        let bins = (metrics["calibration"] as? [String: Any])?["bins"] as? [[String: Any]] ?? []
        XCTAssertEqual(bins.count, 20)
        XCTAssertEqual(bins.reduce(0) { $0 + ($1["count"] as? Int ?? 0) }, 60)

        // The project's readers and the library's metric functions give back the very numbers.
        let arrays = try readNPZ(npz)
        let inDistribution = try scores(arrays, prefix: "")
        XCTAssertEqual(inDistribution.labels, BuiltinDataset.make(trainCount: 300, testCount: 60).test!.labels)
        let oodNames = ["synthetic:uniform": "ood_synthetic_uniform_", "synthetic:permuted": "ood_synthetic_permuted_"]
        let empty = ImageSet(channels: 1, height: 1, width: 1, count: 0, pixels: .float32([]), labels: nil)
        let ood = try oodNames.sorted { $0.key < $1.key }.map {
            (set: EvaluationSet(name: $0.key, source: "", images: empty), scores: try scores(arrays, prefix: $0.value))
        }
        let recomputed = EvaluationResult(settings: EvaluationSettings(checkpoint: "", data: "", split: "", splitDetail: "",
                                                                       testNoise: 0, seed: 0),
                                          inDistribution: inDistribution, ood: ood)
        // (Read with JSONDecoder: Foundation's JSONSerialization on Linux does not parse
        // doubles to the nearest value, the encoder's shortest round-trip digits need a decoder
        // that does.)
        let decoded = try EvaluationResult.decoder.decode(EvaluationResult.self,
                                                          from: Data(contentsOf: URL(fileURLWithPath: out + "/metrics.json")))
        XCTAssertEqual(decoded.accuracy, recomputed.accuracy)
        XCTAssertEqual(decoded.nll, recomputed.nll)
        XCTAssertEqual(decoded.ece, recomputed.ece)
        XCTAssertEqual(decoded.calibration, recomputed.calibration)
        XCTAssertEqual(Set(decoded.ood.keys), Set(oodNames.keys))
        for (name, _) in oodNames {
            for score in OODScore.allCases {
                XCTAssertNotNil(decoded.ood[name]?.auroc(score))
                XCTAssertEqual(decoded.ood[name]?.auroc(score), recomputed.ood[name]?.auroc(score), "\(name) \(score)")
            }
        }
        XCTAssertEqual(arrays["test_noise"]?.cOrderFloats(), [0.03])

        // The CSV: a settings comment, a header, one row per example with the same numbers.
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertTrue(rows[0].hasPrefix("# jem-gpu score {"), rows[0])
        XCTAssertTrue(rows[0].contains("\"test_noise\":0.03"), rows[0])
        XCTAssertEqual(rows[1].split(separator: ",").count, 6 + 10)
        XCTAssertEqual(rows.count, 2 + 3 * 60)
        let first = rows[2].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(first[0], "in-distribution")
        XCTAssertEqual(Int32(first[2]), inDistribution.labels?[0])
        XCTAssertEqual(Float(first[3]), inDistribution.lse[0])
        XCTAssertEqual(Float(first[5]), inDistribution.gradientNorm[0])
        XCTAssertEqual(Float(first[15]), inDistribution.logits[9])
        XCTAssertTrue(rows.last!.hasPrefix("synthetic:permuted,59,,"), rows.last!)

        for plot in ["reliability.png", "hist_px_synthetic_uniform.png", "hist_py_synthetic_permuted.png",
                     "hist_pxgrad_synthetic_uniform.png", "roc_synthetic_uniform.png", "roc_synthetic_permuted.png"] {
            XCTAssertNoThrow(try PNG.read(out + "/" + plot), plot)
        }

        // A missing numpy skips visibly (counted in make test's closing line), never passes silently.
        guard pythonHasNumPy() else { throw XCTSkip("python3 with numpy not available: numpy recomputation not run") }
        // Independent recomputation: argmax accuracy, float64 cross-entropy, 20-bin ECE on
        // float32 edges, and AUROC as U / (n1 n0) over all pairs.
        let python = try runPython("""
            import sys, json, numpy as np
            d = np.load(sys.argv[1]); m = json.load(open(sys.argv[2]))
            logits = d["logits"].astype(np.float64); y = d["labels"]
            top = logits.max(1); lse = top + np.log(np.exp(logits - top[:, None]).sum(1))
            acc = (d["logits"].argmax(1) == y).mean(); nll = (lse - logits[np.arange(len(y)), y]).mean()
            conf = d["maxprob"]; correct = d["logits"].argmax(1) == y
            edges = np.arange(21, dtype=np.float32) / np.float32(20); ece = 0.0
            for b in range(20):
                inside = (conf > edges[b]) & (conf <= edges[b + 1])
                if inside.any(): ece += inside.mean() * abs(correct[inside].mean() - conf[inside].astype(np.float64).mean())
            def auroc(p, n):
                p = p[:, None]; n = n[None, :]
                return ((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size)
            worst = max(abs(acc - m["accuracy"]), abs(nll - m["nll"]), abs(ece - m["ece"]))
            for name, key in [("synthetic:uniform", "ood_synthetic_uniform_"), ("synthetic:permuted", "ood_synthetic_permuted_")]:
                r = m["ood"][name]
                worst = max(worst, abs(auroc(d["lse"], d[key + "lse"]) - r["px"]),
                            abs(auroc(d["maxprob"], d[key + "maxprob"]) - r["py"]),
                            abs(auroc(-d["gradnorm"], -d[key + "gradnorm"]) - r["pxgrad"]))
            assert json.loads(str(d["settings"]))["test_noise"] == m["settings"]["test_noise"]
            print(worst)
            """, [npz, out + "/metrics.json"])
        XCTAssertEqual(python.status, 0, python.text)
        let worst = Double(python.text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1
        XCTAssertLessThan(worst, 1e-6, python.text)
    }

    /// --split valid scores the images the trainer held out (the checkpoint's seed and --valid),
    /// and --split test its test set: with the training test noise, eval reproduces the
    /// accuracies the run logged after its last iteration.
    func testSplitsAreTheTrainersSplits() throws {
        let (checkpoint, log) = try trainedModel()
        let last = try XCTUnwrap(log.last { $0["event"] as? String == "eval" })
        for (split, key, count) in [("valid", "valid", 30), ("test", "test", 60)] {
            let out = Self.folder + "/split-" + split
            let result = try runJemGPU(["eval", "--backend", "cpu", "--model", checkpoint, "--split", split,
                                        "--test-noise", "0.1", "--out", out] + Self.builtinFlags)
            XCTAssertEqual(result.status, 0, result.stderr)
            let metrics = try readJSON(out + "/metrics.json")
            XCTAssertEqual(metrics["count"] as? Int, count)
            XCTAssertEqual(metrics["accuracy"] as? Double ?? 0, last[key + "_accuracy"] as? Double ?? 1, accuracy: 1e-12, split)
            XCTAssertEqual(metrics["nll"] as? Double ?? 0, last[key + "_nll"] as? Double ?? 1, accuracy: 1e-5, split)
            XCTAssertEqual((metrics["settings"] as? [String: Any])?["data"] as? String, "builtin", "--data defaults to the training data")
        }
        let train = try runJemGPU(["score", "--backend", "cpu", "--model", checkpoint, "--split", "train",
                                   "--csv", Self.folder + "/train.csv"] + Self.builtinFlags)
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stdout.contains("(270 rows)"), train.stdout)
    }

    /// 100 classes on 3×12×10 images from an .npz (a fresh, untrained checkpoint), with a
    /// synthetic OOD set; then every bad-input case: one line on stderr naming the flag.
    func testOtherShapesAndBadInputs() throws {
        let spec = WideResNetSpec(depth: 10, widen: 1, inputChannels: 3, imageHeight: 12, imageWidth: 10, classCount: 100)
        var config = TrainingConfig()
        config.batchSize = 4
        config.bufferSize = 4
        let trainer = try JEMTrainer(config: config, spec: spec, backend: CPUBackend())
        let checkpoint = Self.folder + "/c100.safetensors"
        try Checkpoint.save(trainer, state: RunState(), spec: spec, to: checkpoint, includeTrainingState: false)
        func images(_ n: Int, _ c: Int, _ h: Int, _ w: Int, stream: UInt64) -> NPYValue {
            .float32(randomArray(n * c * h * w, stream: stream), shape: [n, c, h, w])
        }
        let data = Self.folder + "/c100.npz"
        try NPZWriter.writeNPZ([("x_train", images(200, 3, 12, 10, stream: 1)), ("y_train", .int64((0..<200).map { Int64($0 % 100) }, shape: [200])),
                                ("x_test", images(40, 3, 12, 10, stream: 2)), ("y_test", .int64((0..<40).map { Int64($0 % 100) }, shape: [40]))],
                               to: data)
        let out = Self.folder + "/c100"
        let ok = try runJemGPU(["eval", "--backend", "cpu", "--model", checkpoint, "--data", data, "--ood", "synthetic:interp",
                                "--ood", data + ":same", "--out", out])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let metrics = try readJSON(out + "/metrics.json")
        XCTAssertEqual(metrics["count"] as? Int, 40)
        XCTAssertEqual((metrics["settings"] as? [String: Any])?["classes"] as? Int, 100)
        XCTAssertEqual((metrics["settings"] as? [String: Any])?["input_shape"] as? [Int], [3, 12, 10])
        // The same images as "OOD": indistinguishable, AUROC exactly 1/2 for every score.
        let same = (metrics["ood"] as? [String: [String: Any]])?["same"]
        for score in OODScore.allCases { XCTAssertEqual(same?[score.rawValue] as? Double, 0.5, score.rawValue) }

        // Bad inputs.
        let gray = Self.folder + "/gray.npz", fiveClasses = Self.folder + "/five.npz"
        try NPZWriter.writeNPZ([("x", images(20, 1, 12, 10, stream: 3)), ("y", .int64((0..<20).map { Int64($0 % 100) }, shape: [20]))],
                               to: gray)
        try NPZWriter.writeNPZ([("x", images(20, 3, 12, 10, stream: 4)), ("y", .int64((0..<20).map { Int64($0 % 5) }, shape: [20]))],
                               to: fiveClasses)
        let base = ["--backend", "cpu", "--model", checkpoint, "--out", Self.folder + "/bad"]
        let cases: [([String], [String])] = [
            (["eval", "--data", fiveClasses] + base, ["--data", "5 classes", "100"]),
            (["eval", "--data", gray] + base, ["--data", "1×12×10", "3×12×10"]),
            (["eval", "--data", "builtin"] + base, ["--data", "1×28×28"]),
            (["eval", "--data", data, "--ood", gray] + base, ["--ood", "gray.npz", "1×12×10"]),
            (["eval", "--data", data, "--ood", "/nonexistent/svhn.mat"] + base, ["--ood", "/nonexistent/svhn.mat"]),
            (["eval", "--data", "/nonexistent/data.npz"] + base, ["--data", "/nonexistent/data.npz"]),
            (["eval", "--data", data, "--backend", "cpu", "--model", "/nonexistent/m.safetensors", "--out", Self.folder + "/bad"],
             ["--model", "/nonexistent/m.safetensors"]),
            (["eval", "--data", data, "--model", data, "--out", Self.folder + "/bad"], ["--model", "c100.npz"]),
        ]
        for (arguments, expected) in cases {
            let result = try runJemGPU(arguments)
            let lines = result.stderr.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertEqual(lines.count, 1, "\(arguments): \(result.stderr)")
            for text in expected { XCTAssertTrue(result.stderr.contains(text), "\(arguments): '\(text)' not in \(result.stderr)") }
            XCTAssertFalse(result.stderr.contains("Fatal error"), "\(arguments): \(result.stderr)")
        }
        // Flag values the argument parser refuses: its one-line error names the flag (it then
        // prints the usage, as for every jem-gpu command).
        let flagCases: [([String], [String])] = [
            (["eval", "--data", data, "--ood", "synthetic:gaussian"] + base, ["--ood", "synthetic:gaussian"]),
            (["eval", "--data", data, "--test-noise=-1"] + base, ["--test-noise"]),
            (["eval", "--data", data, "--batch-size", "0"] + base, ["--batch-size"]),
            (["score", "--backend", "cpu", "--model", checkpoint, "--data", data], ["--out", "--csv"]),
        ]
        for (arguments, expected) in flagCases {
            let result = try runJemGPU(arguments)
            let first = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
            XCTAssertNotEqual(result.status, 0, "\(arguments)")
            XCTAssertTrue(first.hasPrefix("Error: "), "\(arguments): \(result.stderr)")
            for text in expected { XCTAssertTrue(first.contains(text), "\(arguments): '\(text)' not in \(first)") }
        }
    }
}
