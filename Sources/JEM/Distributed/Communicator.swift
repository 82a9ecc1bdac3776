import Foundation
import JEMBackend

/// The processes of one data-parallel job (`mpirun -np N`), as the trainer and the evaluation
/// see them: no MPI types here. `SingleProcess` is the default everywhere, so a plain run takes
/// exactly the code path it always took; `MPICommunicator` (target JEMDistributed) is the real one.
///
/// Every collective must be called by every rank in the same order with the same sizes.
public protocol Communicator: AnyObject {
    /// Processes in the job (1 for a plain run).
    var size: Int { get }
    /// This process, 0 ..< size; rank 0 is the only writer of files.
    var rank: Int { get }
    /// This process among those on the same machine (picks the device), and how many there are.
    var localRank: Int { get }
    var localSize: Int { get }
    /// Element-wise sum over all ranks, in place; every rank gets the same values.
    func allreduceSum(_ values: inout [Float]) throws
    func allreduceSum(_ values: inout [Double]) throws
    /// Concatenates every rank's `local` in rank order; `counts[r]` is rank r's element count.
    func allgather(_ local: [Float], counts: [Int]) throws -> [Float]
    /// Rank `root`'s bytes on every rank.
    func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8]
    func barrier() throws
    /// Prints nothing; ends every rank of the job with `code` (the caller printed the reason).
    func abort(code: Int32) -> Never
    /// Seconds spent in collectives and bytes moved by `allreduceSum` since the start.
    var statistics: CommunicatorStatistics { get }
}

public struct CommunicatorStatistics: Sendable {
    public var allreduceSeconds = 0.0
    public var allreduceBytes = 0
    public var allgatherSeconds = 0.0
    public var allgatherBytes = 0
    public init() {}
}

extension Communicator {
    public var isWriter: Bool { rank == 0 }
    public var isDistributed: Bool { size > 1 }

    /// True on every rank when `flag` is true on any rank (e.g. a stop signal that reached only some).
    public func any(_ flag: Bool) throws -> Bool {
        if size == 1 { return flag }
        var value: [Double] = [flag ? 1 : 0]
        try allreduceSum(&value)
        return value[0] > 0
    }

    /// Every rank's `value`, in rank order.
    public func gatherScalars(_ values: [Double]) throws -> [[Double]] {
        if size == 1 { return [values] }
        let all = try allgather(values.map(Float.init), counts: Array(repeating: values.count, count: size))
        return (0..<size).map { r in all[(r * values.count)..<((r + 1) * values.count)].map(Double.init) }
    }
}

/// A plain run: one process, collectives are identities.
public final class SingleProcess: Communicator {
    public init() {}
    public var size: Int { 1 }
    public var rank: Int { 0 }
    public var localRank: Int { 0 }
    public var localSize: Int { 1 }
    public func allreduceSum(_ values: inout [Float]) throws {}
    public func allreduceSum(_ values: inout [Double]) throws {}
    public func allgather(_ local: [Float], counts: [Int]) throws -> [Float] { local }
    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] { bytes }
    public func barrier() throws {}
    public func abort(code: Int32) -> Never { exit(code) }
    public var statistics: CommunicatorStatistics { CommunicatorStatistics() }
}

/// The rows of a global batch one rank computes: [first, first + count) of `total`.
/// Every random draw of those rows is addressed by its global row, so N ranks compute exactly
/// the rows one process would.
public struct BatchShard: Sendable, Equatable {
    public var first: Int
    public var count: Int
    public var total: Int

    public init(first: Int, count: Int, total: Int) {
        self.first = first
        self.count = count
        self.total = total
    }

    public static func whole(_ batch: Int) -> BatchShard { BatchShard(first: 0, count: batch, total: batch) }

    /// Rank `rank`'s equal share of `batch` rows (the caller checked that `size` divides `batch`).
    public static func of(batch: Int, rank: Int, size: Int) -> BatchShard {
        precondition(batch % size == 0, "batch \(batch) not divisible by \(size) ranks")
        let n = batch / size
        return BatchShard(first: rank * n, count: n, total: batch)
    }

    public var isWhole: Bool { count == total }
    public var range: Range<Int> { first..<(first + count) }

    /// This shard's rows of a row-major host array of `total` rows.
    public func rows<T>(of values: [T], rowSize: Int) -> [T] {
        isWhole ? values : Array(values[(first * rowSize)..<((first + count) * rowSize)])
    }
}

/// Contiguous ranges of `count` items over `size` ranks, in whole chunks of `chunk` items (so each
/// chunk is computed exactly as one process computes it): rank r's range.
public func chunkedSplit(count: Int, chunk: Int, rank: Int, size: Int) -> Range<Int> {
    let chunks = (count + chunk - 1) / max(chunk, 1)
    let lo = chunks * rank / size, hi = chunks * (rank + 1) / size
    return min(lo * chunk, count)..<min(hi * chunk, count)
}

/// Test hook for the distributed equivalence tests: `JEM_DEBUG_SKIP_ALLREDUCE_RANK=r` makes rank r
/// keep its own gradient instead of the sum (it still takes part in the collective, so nothing hangs).
let debugSkipAllreduceRank: Int? = ProcessInfo.processInfo.environment["JEM_DEBUG_SKIP_ALLREDUCE_RANK"].flatMap { Int($0) }
