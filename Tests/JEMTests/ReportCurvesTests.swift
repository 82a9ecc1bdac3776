import Foundation
import XCTest
@testable import JEM
@testable import JEMBackend

/// Which series the training-curve charts draw from a history: the loss once for a run without
/// p(x), eval points with markers, energies only where the p(x) term ran.
final class ReportCurvesTests: XCTestCase {
    func history(pxFrom: Int?) -> RunHistory {
        var lines: [String] = []
        for it in stride(from: 2, through: 10, by: 2) {
            let f = pxFrom.map { it >= $0 } ?? false
            lines.append("{\"iteration\":\(it),\"epoch\":0,\"loss\":\(Double(it)),\"cross_entropy\":1,\"train_accuracy\":0.5,"
                         + "\"f_data\":\(f ? 1.5 : 0),\"f_sample\":\(f ? -2.5 : 0),\"iterations_per_second\":1}")
        }
        lines.append(#"{"event":"eval","iteration":10,"epoch":0,"valid_accuracy":0.75,"test_accuracy":0.5}"#)
        return RunHistory(text: lines.joined(separator: "\n"))
    }

    func points(_ series: Chart.Series) -> [(x: Double, y: Double)] {
        switch series.mark {
        case .line(let points, _), .markers(let points): return points
        default: return []
        }
    }

    func testSeries() throws {
        let jem = TrainingCurves.Run(label: "JEM", history: history(pxFrom: 6), usesPx: true)
        let baseline = TrainingCurves.Run(label: "baseline", history: history(pxFrom: nil), usesPx: false)

        let loss = try XCTUnwrap(TrainingCurves.loss([jem, baseline]))
        XCTAssertEqual(loss.series.map(\.name), ["JEM loss", "JEM cross-entropy", "baseline cross-entropy (= loss)"])
        XCTAssertEqual(points(loss.series[0]).map(\.y), [2, 4, 6, 8, 10])
        guard case .line(_, let dashed) = loss.series[2].mark else { return XCTFail("a line") }
        XCTAssertTrue(dashed, "the second run is dashed")

        let accuracy = try XCTUnwrap(TrainingCurves.accuracy([jem]))
        XCTAssertEqual(accuracy.series.map(\.name), ["JEM train", "JEM valid", nil, "JEM test", nil])
        guard case .markers(let valid) = accuracy.series[2].mark else { return XCTFail("markers") }
        XCTAssertEqual(valid.map(\.x), [10])
        XCTAssertEqual(valid.map(\.y), [0.75])

        // The baseline logs no energies; the JEM run's first two steps came before p(x) started.
        let energies = try XCTUnwrap(TrainingCurves.energies([jem, baseline]))
        XCTAssertEqual(energies.series.map(\.name), ["JEM f(x_data)", "JEM f(x_q)"])
        XCTAssertEqual(points(energies.series[0]).map(\.x), [6, 8, 10])
        XCTAssertEqual(points(energies.series[1]).map(\.y), [-2.5, -2.5, -2.5])
        XCTAssertEqual(energies.xRange?.lowerBound ?? 0, 2 - 0.32, accuracy: 1e-12, "the same span as the other charts")
        XCTAssertNil(TrainingCurves.energies([baseline]))
        XCTAssertNil(TrainingCurves.loss([TrainingCurves.Run(label: "x", history: RunHistory(text: ""), usesPx: true)]))
    }

    /// The legend goes to a corner the curves leave free, else above them.
    func testLegendAvoidsTheCurves() {
        func placed(_ points: [(x: Double, y: Double)]) -> Chart {
            var chart = Chart(title: "", xLabel: "", yLabel: "")
            chart.series = [Chart.Series(name: "a", color: .black, mark: .line(points: points, dashed: false))]
            TrainingCurves.placeLegend(&chart)
            return chart
        }
        XCTAssertEqual(placed([(0, 0), (10, 10)]).legendPosition, .topLeft)
        XCTAssertEqual(placed([(0, 10), (10, 0)]).legendPosition, .topRight)
        XCTAssertEqual(placed([(0, 10), (5, 10), (10, 10), (10, 0)]).legendPosition, .topRight)
        XCTAssertEqual(placed([(0, 5), (10, 5)]).legendPosition, .topRight, "nothing in any corner: the default")
        XCTAssertNil(placed([(0, 5), (10, 5)]).yRange)
        XCTAssertEqual(placed([(0, 10), (3, 0), (6, 10), (10, 0)]).legendPosition, .topRight)
        // Every corner crossed (a zigzag): headroom above the data for the legend box.
        let crowded = placed([(0, 10), (3, 0), (6, 10), (10, 0), (10, 10)])
        let (_, h) = TrainingCurves.legendFraction(crowded, yRange: crowded.dataRange(x: false))
        let data = crowded.dataRange(x: false)
        XCTAssertEqual(crowded.yRange?.upperBound ?? 0, data.lowerBound + (data.upperBound - data.lowerBound) / (1 - h),
                       accuracy: 1e-9)
        XCTAssertGreaterThan(h, 0.05)
        XCTAssertLessThan(h, 0.2)
    }
}
