/// How far a result is from its reference: the one comparison behind the parity suite, the
/// selftest, the tests and the benchmarks' validation.
///
/// A NaN or infinity where the reference has a different value, or a length mismatch, makes
/// every error infinite (Swift's `max` would silently drop a NaN). The relative error is taken
/// per row (`rowSize` elements; the whole buffer when nil) against that row's largest finite
/// reference magnitude, so a row of small values beside rows of +-1000 is still held to the
/// tolerance.
public struct Comparison: Sendable {
    public private(set) var count = 0
    /// Elements whose bit patterns differ (NaN == NaN).
    public private(set) var differing = 0
    /// Elements where one side is non-finite and the other is a different value.
    public private(set) var nonFiniteMismatches = 0
    public private(set) var lengthMismatch = false
    public private(set) var maxAbsoluteError = 0.0
    public private(set) var maxRelativeError = 0.0

    public init(candidate got: [Float], reference want: [Float], rowSize: Int? = nil) {
        count = want.count
        lengthMismatch = got.count != want.count
        let row = Swift.max(rowSize ?? want.count, 1)
        var start = 0
        while start < Swift.min(got.count, want.count) {
            let end = Swift.min(start + row, got.count, want.count)
            var scale = 0.0, worst = 0.0
            for i in start..<end {
                let a = got[i], b = want[i]
                if b.isFinite { scale = Swift.max(scale, Double(b.magnitude)) }
                if a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) { continue }
                differing += 1
                if !a.isFinite || !b.isFinite {
                    nonFiniteMismatches += 1
                } else {
                    let d = Double((a - b).magnitude)
                    if d > worst { worst = d }
                }
            }
            maxAbsoluteError = Swift.max(maxAbsoluteError, worst)
            maxRelativeError = Swift.max(maxRelativeError, worst / Swift.max(scale, 1e-30))
            start = end
        }
        if lengthMismatch || nonFiniteMismatches > 0 {
            maxAbsoluteError = .infinity
            maxRelativeError = .infinity
        }
    }

    public var isBitExact: Bool { !lengthMismatch && differing == 0 }

    /// Why it failed, for messages: "length 3 vs 4", "2 non-finite mismatches", or "".
    public var problem: String {
        if lengthMismatch { return "length mismatch" }
        if nonFiniteMismatches > 0 { return "\(nonFiniteMismatches) non-finite mismatches" }
        return ""
    }
}
