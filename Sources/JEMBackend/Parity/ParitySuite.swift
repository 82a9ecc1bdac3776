import Foundation

/// One check of a backend against the reference (or of the reference against ground truth).
public struct ParityResult: Sendable {
    public var name: String
    /// The worst error of the check: max |a - b| / max(max |b|, tiny) for relative checks, where
    /// b is the reference; max |a - b| for checks with an absolute tolerance (`detail` then says
    /// "absolute"); infinity when one side is non-finite where the other is not (or differs).
    public var maxRelativeError: Double
    /// The largest error that passes (0 for bit-exact checks).
    public var tolerance: Double
    public var passed: Bool
    /// The shape or parameters checked, and how.
    public var detail: String

    public init(name: String, maxRelativeError: Double, tolerance: Double, passed: Bool, detail: String) {
        self.name = name
        self.maxRelativeError = maxRelativeError
        self.tolerance = tolerance
        self.passed = passed
        self.detail = detail
    }
}

/// Runs every op of the `Backend` protocol on a reference and a candidate backend with the same
/// deterministic random inputs (Philox, so the data are identical on every machine), on odd
/// shapes, and reports the worst error per check. `jem-gpu selftest` prints it; the tests assert it.
///
/// Tolerances: 1e-4 relative for float math; bit-exact for copies, Philox words and uniform fills;
/// 1e-6 absolute for Gaussian noise (Box-Muller through each device's log/sin/cos) and SGLD.
public enum ParitySuite {
    /// Op groups, one word each from kernel file to benchmark (Kernels/<group>.cl,
    /// CPUBackend+<Group>.swift, OpenCLBackend+<Group>.swift, ParitySuite+<Group>.swift), so that a
    /// test can run (and name) one group at a time.
    public enum Group: String, CaseIterable, Sendable {
        case buffers, gemm, convolution, pointwise, loss, sampling, optimizers, reductions, random
    }

    /// Relative tolerance of the float checks.
    public static let tolerance = 1e-4
    /// Absolute tolerance of the checks built on Gaussian noise.
    public static let gaussianTolerance = 1e-6

    /// Every group.
    public static func run(reference: Backend, candidate: Backend, seed: UInt64 = 1,
                           injectNaNInto: String? = FaultInjection.environmentTarget) throws -> [ParityResult] {
        try run(reference: reference, candidate: candidate, seed: seed, groups: Group.allCases,
                injectNaNInto: injectNaNInto)
    }

    /// The given groups, in order. `.random` compares raw Philox words and so needs an
    /// `OpenCLBackend` candidate; with another candidate it reports nothing.
    public static func run(reference: Backend, candidate: Backend, seed: UInt64 = 1,
                           groups: [Group], injectNaNInto: String? = FaultInjection.environmentTarget) throws
        -> [ParityResult]
    {
        let h = ParityHarness(reference: reference, candidate: candidate, seed: seed)
        h.injectNaNInto = injectNaNInto
        for group in groups {
            switch group {
            case .buffers: try buffers(h)
            case .gemm: try gemm(h)
            case .convolution: try convolution(h)
            case .pointwise:
                try bias(h)
                try activations(h)
                try pointwise(h)
                try pooling(h)
            case .loss: try loss(h)
            case .sampling: try sampling(h)
            case .optimizers: try optimizers(h)
            case .reductions: try reductions(h)
            case .random: try philox(h)
            }
        }
        try reference.synchronize()
        try candidate.synchronize()
        return h.results
    }

}

/// The two backends and the suite's bookkeeping: deterministic inputs, paired buffers, comparison.
final class ParityHarness {
    let reference: Backend
    let candidate: Backend
    let seed: UInt64
    private var stream: UInt64 = 0
    var results: [ParityResult] = []
    /// See `FaultInjection`.
    var injectNaNInto: String?

    init(reference: Backend, candidate: Backend, seed: UInt64) {
        self.reference = reference
        self.candidate = candidate
        self.seed = seed
    }

    /// The same data on both backends.
    struct Pair {
        let reference: DeviceBuffer
        let candidate: DeviceBuffer
    }

    enum Mode {
        case relative(Double)
        case absolute(Double)
        case bitExact
    }

    /// `count` uniform values in [low, high) from the next Philox stream of the suite's seed.
    func random(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
        stream += 1
        return (0..<count).map { low + (high - low) * Philox.uniform(seed: seed, stream: stream, element: $0) }
    }

    func pair(_ values: [Float]) throws -> Pair {
        Pair(reference: try reference.makeBuffer(values), candidate: try candidate.makeBuffer(values))
    }

    func pair(_ values: [Int32]) throws -> Pair {
        Pair(reference: try reference.makeBuffer(values), candidate: try candidate.makeBuffer(values))
    }

    func upload(_ values: [Float], to pair: Pair, offset: Int) throws {
        try reference.upload(values, to: pair.reference, offset: offset)
        try candidate.upload(values, to: pair.candidate, offset: offset)
    }

    /// Runs `body` on the reference, then on the candidate; `p` picks a pair's buffer of that backend.
    func both(_ body: (Backend, (Pair) -> DeviceBuffer) -> Void) {
        body(reference) { $0.reference }
        body(candidate) { $0.candidate }
    }

    /// Downloads both sides of `pair` and records the comparison (relative errors per row of
    /// `rowSize` elements when given).
    func check(_ name: String, _ pair: Pair, mode: Mode = .relative(ParitySuite.tolerance), rowSize: Int? = nil,
               _ detail: String) throws {
        let want = try reference.download(pair.reference)
        let got = try candidate.download(pair.candidate)
        compare(name, candidate: got, reference: want, mode: mode, rowSize: rowSize, detail)
    }

    func compare(_ name: String, candidate got: [Float], reference want: [Float], mode: Mode, rowSize: Int? = nil,
                 _ detail: String) {
        let got = FaultInjection.apply(got, check: name, target: injectNaNInto)
        let comparison = Comparison(candidate: got, reference: want, rowSize: rowSize)
        let relative = comparison.maxRelativeError
        let detail = comparison.problem.isEmpty ? detail : detail + "; " + comparison.problem
        let result: ParityResult
        switch mode {
        case .relative(let tolerance):
            result = ParityResult(name: name, maxRelativeError: relative, tolerance: tolerance,
                                  passed: relative <= tolerance, detail: detail)
        case .absolute(let tolerance):
            let absolute = comparison.maxAbsoluteError
            result = ParityResult(name: name, maxRelativeError: absolute, tolerance: tolerance,
                                  passed: absolute <= tolerance, detail: detail + "; absolute error")
        case .bitExact:
            result = ParityResult(name: name, maxRelativeError: relative, tolerance: 0, passed: comparison.isBitExact,
                                  detail: detail + "; bit-exact, \(comparison.differing) of \(want.count) differ")
        }
        results.append(result)
    }
}
