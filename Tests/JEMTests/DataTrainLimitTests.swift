import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// `train --train-limit N`: the first N training images, before the validation split; checked
/// like a flag, and reproduced by everything that carves the run's split again.
final class DataTrainLimitTests: XCTestCase {
    func testFirstImagesOnlyTestUntouched() throws {
        let dataset = BuiltinDataset.make(trainCount: 300, testCount: 40, seed: BuiltinDataset.defaultSeed)
        let limited = dataset.limitingTrain(to: 120)
        XCTAssertEqual(limited.train.count, 120)
        XCTAssertEqual(limited.test?.count, 40)
        for i in [0, 57, 119] { XCTAssertEqual(limited.train.image(i), dataset.train.image(i)) }
        XCTAssertEqual(limited.train.labels, Array(dataset.train.labels![..<120]))
        XCTAssertEqual(dataset.limitingTrain(to: nil).train.count, 300)
        XCTAssertEqual(dataset.limitingTrain(to: 300).train.count, 300)
        XCTAssertEqual(limited.limitingTrain(to: 120).train.count, 120, "applying it twice is harmless")
    }

    func testValidationNamesTheFlag() throws {
        let dataset = BuiltinDataset.make(trainCount: 300, testCount: 40, seed: BuiltinDataset.defaultSeed)
        var config = TrainingConfig()
        config.batchSize = 16
        config.trainLimit = 0
        XCTAssertThrowsError(try config.validate(for: dataset)) { XCTAssertTrue("\($0)".contains("--train-limit"), "\($0)") }
        config.trainLimit = 400
        XCTAssertThrowsError(try config.validate(for: dataset)) {
            XCTAssertTrue("\($0)".contains("--train-limit 400 is more than the 300 training images"), "\($0)")
        }
        config.trainLimit = 100
        XCTAssertNoThrow(try config.validate(for: dataset))
        // The limit, not the whole set, is what the validation split and batch size are checked against.
        config.validCount = 95
        XCTAssertThrowsError(try config.validate(for: dataset)) { XCTAssertTrue("\($0)".contains("--batch-size"), "\($0)") }
    }

    func testEvaluationCarvesTheSameSplit() throws {
        let dataset = BuiltinDataset.make(trainCount: 300, testCount: 40, seed: BuiltinDataset.defaultSeed)
        var config = TrainingConfig()
        config.trainLimit = 150
        config.seed = 9
        let valid = try EvaluationData.select(dataset, split: .valid, config: config)
        let expected = DataSplit(dataset.limitingTrain(to: 150).train, validCount: nil, labelsPerClass: nil,
                                 classCount: dataset.classCount, seed: 9).valid
        XCTAssertEqual(valid.images.count, 15)
        XCTAssertEqual(valid.images.labels, expected.labels)
        XCTAssertTrue(valid.detail.contains("--train-limit 150"), valid.detail)
        let train = try EvaluationData.select(dataset, split: .train, config: config)
        XCTAssertEqual(train.images.count, 135)
    }
}
