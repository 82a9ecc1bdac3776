import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// config.json and checkpoint configs written by earlier versions must still open (their missing
/// keys take the defaults, which are the older behaviour); present keys must still be valid.
final class TrainingConfigTests: XCTestCase {
    /// A config in which no property keeps its default, so a property missing from
    /// `TrainingConfig.init(from:)` would come back as its default and fail the round trip.
    private func configWithNoDefaultLeft() -> TrainingConfig {
        var c = TrainingConfig()
        c.model = "wrn-16-4"; c.activation = "swish"; c.mode = .jemXY
        c.pxWeight = 0.5; c.pyxWeight = 2; c.pxyWeight = 3; c.classConditionalSampling = true
        c.pxDelay = 7; c.pxRamp = 9; c.energyL2 = 0.25
        c.sgldSteps = 5; c.sgldLR = 2; c.sgldStd = 0.02; c.sgldGradClip = 0.1; c.sgldClamp = 1.5
        c.bufferSize = 123; c.bufferInit = .informative; c.informativeShare = 0.3; c.reinitFrequency = 0.5
        c.optimizer = .sgd; c.learningRate = 3e-3; c.momentum = 0.5; c.weightDecay = 1e-4
        c.warmupIterations = 11; c.decayEpochs = [2, 4]; c.decayRate = 0.1; c.epochs = 6
        c.maxIterations = 77; c.batchSize = 32; c.seed = 0xFFFF_FFFF_FFFF_FFF1
        c.guardLossLimit = 5; c.guardGapLimit = 6; c.maxRecoveries = 1; c.snapshotEvery = 3
        c.recoveryAction = .moreSGLDSteps; c.recoveryFactor = 0.25
        c.data = "/data/x"; c.builtinTrainCount = 100; c.builtinTestCount = 50; c.validCount = 10
        c.trainLimit = 900
        c.labelsPerClass = 4; c.augmentation = .none; c.testNoise = 0.03
        c.logEvery = 2; c.sampleEvery = 3; c.finalSampleSteps = 4; c.checkpointEvery = 5; c.evalEvery = 6
        return c
    }

    func testEveryPropertyRoundTrips() throws {
        let config = configWithNoDefaultLeft()
        let defaults = Mirror(reflecting: TrainingConfig()).children.map { String(describing: $0.value) }
        for (child, defaultValue) in zip(Mirror(reflecting: config).children, defaults) {
            XCTAssertNotEqual(String(describing: child.value), defaultValue,
                              "\(child.label ?? "?") keeps its default: change it in configWithNoDefaultLeft()")
        }
        let decoded = try JSONDecoder().decode(TrainingConfig.self, from: JSONEncoder().encode(config))
        XCTAssertEqual(decoded, config)
    }

    func testKeysAnEarlierVersionDidNotWriteTakeTheirDefaults() throws {
        var written = TrainingConfig()
        written.epochs = 3
        written.learningRate = 1e-3
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(written)) as? [String: Any])
        for newer in ["pxDelay", "pxRamp", "bufferInit", "testNoise", "evalEvery"] {
            XCTAssertNotNil(object.removeValue(forKey: newer), newer)
        }
        let decoded = try JSONDecoder().decode(TrainingConfig.self,
                                               from: JSONSerialization.data(withJSONObject: object))
        XCTAssertEqual(decoded, written)
        XCTAssertEqual(decoded.bufferInit, .uniform)
        XCTAssertEqual(decoded.pxDelay, 0)
    }

    func testAPresentKeyWithAWrongValueIsStillAnError() throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainingConfig()))
                                   as? [String: Any])
        object["bufferInit"] = "gaussian"
        XCTAssertThrowsError(try JSONDecoder().decode(TrainingConfig.self,
                                                      from: JSONSerialization.data(withJSONObject: object)))
        object["bufferInit"] = "uniform"
        object["epochs"] = "many"
        XCTAssertThrowsError(try JSONDecoder().decode(TrainingConfig.self,
                                                      from: JSONSerialization.data(withJSONObject: object)))
    }
}
