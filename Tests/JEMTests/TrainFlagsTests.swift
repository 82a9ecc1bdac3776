import Foundation
import XCTest
@testable import JEM

/// Each training setting is declared as an option in TrainCommand, copied into the config in
/// `makeConfig`, range-checked in ConfigValidation (with the flag's name) and written to
/// config.json. This test holds those places against each other: every flag `train --help` lists
/// must be in the table below (so a new flag cannot be forgotten), and one run with every flag
/// set to a non-default value must write each value to its config.json key. The invalid-value
/// messages are checked flag by flag in CLITests.testInvalidTrainFlagsNameTheFlag.
final class TrainFlagsTests: XCTestCase {
    /// Flags that choose where and how to run, not what is trained.
    static let runFlags: Set<String> = ["--backend", "--device", "--no-tune", "--preset", "--data", "--out", "--resume", "--overwrite"]

    /// flag, value (nil for a switch), config.json key path, the value expected there.
    static var table: [(flag: String, value: String?, key: String, expected: Any)] { [
        ("--model", "wrn-16-1", "model", "wrn-16-1"), ("--activation", "swish", "activation", "swish"),
        ("--mode", "baseline", "mode", "baseline"), ("--px-weight", "0.5", "pxWeight", 0.5),
        ("--pyx-weight", "0.75", "pyxWeight", 0.75), ("--pxy-weight", "0.25", "pxyWeight", 0.25),
        ("--class-cond-sampling", nil, "classConditionalSampling", true), ("--px-delay", "7", "pxDelay", 7),
        ("--px-ramp", "9", "pxRamp", 9), ("--energy-l2", "0.5", "energyL2", 0.5), ("--sgld-steps", "3", "sgldSteps", 3),
        ("--sgld-lr", "0.5", "sgldLR", 0.5), ("--sgld-std", "0.02", "sgldStd", 0.02),
        ("--sgld-grad-clip", "0.1", "sgldGradClip", 0.1), ("--sgld-clamp", "1.5", "sgldClamp", 1.5),
        ("--buffer-size", "90", "bufferSize", 90), ("--reinit-freq", "0.1", "reinitFrequency", 0.1),
        ("--buffer-init", "informative", "bufferInit", "informative"), ("--optimizer", "sgd", "optimizer", "sgd"),
        ("--informative-share", "0.25", "informativeShare", 0.25),
        ("--lr", "0.002", "learningRate", 0.002), ("--momentum", "0.8", "momentum", 0.8),
        ("--weight-decay", "0.0001", "weightDecay", 0.0001), ("--warmup-iters", "7", "warmupIterations", 7),
        ("--decay-epochs", "2,3", "decayEpochs", [2, 3]), ("--decay-rate", "0.5", "decayRate", 0.5),
        ("--epochs", "2", "epochs", 2), ("--max-iterations", "1", "maxIterations", 1), ("--batch-size", "8", "batchSize", 8),
        ("--seed", "5", "seed", 5), ("--valid", "30", "validCount", 30), ("--labels-per-class", "5", "labelsPerClass", 5),
        ("--sigma", "0.05", "augmentation.noiseStd", 0.05), ("--pad", "1", "augmentation.padding", 1),
        ("--test-noise", "0.01", "testNoise", 0.01), ("--flip", "on", "augmentation.horizontalFlip", true),
        ("--builtin-train", "200", "builtinTrainCount", 200), ("--builtin-test", "100", "builtinTestCount", 100),
        ("--max-recoveries", "2", "maxRecoveries", 2), ("--guard-loss", "500", "guardLossLimit", 500),
        ("--guard-gap", "50", "guardGapLimit", 50), ("--recovery", "more-sgld-steps", "recoveryAction", "more-sgld-steps"),
        ("--snapshot-every", "11", "snapshotEvery", 11), ("--log-every", "3", "logEvery", 3),
        ("--sample-every", "0", "sampleEvery", 0), ("--final-sample-steps", "0", "finalSampleSteps", 0),
        ("--checkpoint-every", "13", "checkpointEvery", 13), ("--train-limit", "150", "trainLimit", 150),
    ] }

    func testEveryTrainFlagIsInTheTable() throws {
        let help = try runJemGPU(["train", "--help"])
        XCTAssertEqual(help.status, 0)
        let listed = Set(help.stdout.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.drop { $0 == " " }
            guard line.hasPrefix("  --"), let name = trimmed.split(separator: " ").first else { return nil }
            return String(name)
        })
        XCTAssertGreaterThan(listed.count, 40)
        let covered = Set(Self.table.map(\.flag)).union(Self.runFlags)
        XCTAssertEqual(listed.subtracting(covered).sorted(), [], "flags of `train --help` missing from this table")
        XCTAssertEqual(covered.subtracting(listed).sorted(), [], "flags in this table that `train --help` does not list")
    }

    func testEveryTrainFlagReachesConfigJSON() throws {
        let out = try scratchDirectory("train-flags")
        defer { try? FileManager.default.removeItem(atPath: out) }
        var arguments = ["train", "--backend", "cpu", "--out", out]
        for row in Self.table {
            arguments.append(row.flag)
            if let value = row.value { arguments.append(value) }
        }
        let run = try runJemGPU(arguments)
        XCTAssertEqual(run.status, 0, run.stderr)
        let data = try Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        for row in Self.table {
            var node: Any? = config
            for part in row.key.split(separator: ".") { node = (node as? [String: Any])?[String(part)] }
            switch row.expected {
            case let want as Double:
                let got = try XCTUnwrap((node as? NSNumber)?.doubleValue, "\(row.flag): \(row.key) missing")
                XCTAssertEqual(got, want, accuracy: 1e-6 * max(1, abs(want)), row.flag)
            case let want as Int:
                XCTAssertEqual((node as? NSNumber)?.intValue, want, "\(row.flag) -> \(row.key)")
            case let want as Bool:
                XCTAssertEqual(node as? Bool, want, "\(row.flag) -> \(row.key)")
            case let want as [Int]:
                XCTAssertEqual((node as? [NSNumber])?.map(\.intValue), want, "\(row.flag) -> \(row.key)")
            default:
                XCTAssertEqual(node as? String, row.expected as? String, "\(row.flag) -> \(row.key)")
            }
        }
    }

    /// `--epochs` moves the preset's lr decay with the run; an explicit `--decay-epochs` wins.
    func testEpochsStretchThePresetDecayUnlessDecayEpochsIsGiven() throws {
        let out = try scratchDirectory("train-decay")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let common = ["train", "--backend", "cpu", "--mode", "baseline", "--builtin-train", "200", "--builtin-test", "100",
                      "--max-iterations", "1", "--overwrite", "--out", out]
        for (extra, want) in [(["--epochs", "6"], [5]), (["--epochs", "6", "--decay-epochs", "2"], [2]), ([], [3]),
                              (["--preset", "paper", "--model", "wrn-10-1", "--valid", "50", "--epochs", "10"], [8, 9])] {
            let run = try runJemGPU(common + extra)
            XCTAssertEqual(run.status, 0, run.stderr)
            let data = try Data(contentsOf: URL(fileURLWithPath: out + "/config.json"))
            let config = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
            XCTAssertEqual((config["decayEpochs"] as? [NSNumber])?.map(\.intValue), want, extra.joined(separator: " "))
        }
    }
}
