import Dispatch
import Foundation

/// The one parallel-for of jem-gpu: CPU backend loops, data loading and augmentation all split
/// their work through it, so the thread count is decided in one place.
public enum Parallel {
    /// Worker threads: set by `useThreads` (an MPI process's share of its machine's cores), else
    /// `JEM_THREADS` when set, else the machine's active cores.
    public static var threads: Int { chosen ?? defaultThreads }

    /// Makes every later parallel loop (and a CPU backend created afterwards) use `count` threads.
    /// For start-up, before work is split: several processes sharing a machine each take a share.
    public static func useThreads(_ count: Int) { chosen = max(1, count) }

    nonisolated(unsafe) private static var chosen: Int?
    private static let defaultThreads: Int = {
        if let text = ProcessInfo.processInfo.environment["JEM_THREADS"], let n = Int(text), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Splits `0 ..< count` into contiguous chunks of at least `minimumPerChunk` elements, at most
    /// `chunksPerThread` per thread, and runs `body` on each (chunks touch disjoint memory by the
    /// caller's construction). One chunk runs inline: a thread hop costs more than small jobs do.
    /// More than one chunk per thread hands work to the cores as they free up, so a core slowed by
    /// other work does not hold the whole job back.
    @inline(__always)
    public static func forEachChunk(_ count: Int, minimumPerChunk: Int = 16_384, chunksPerThread: Int = 1,
                                    _ body: (Range<Int>) -> Void) {
        let chunks = min(threads * max(chunksPerThread, 1), max(1, count / max(minimumPerChunk, 1)))
        if chunks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = UnsafeSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { t in
                let start = count * t / chunks, end = count * (t + 1) / chunks
                if start < end { box.value(start..<end) }
            }
        }
    }
}

/// Carries a non-Sendable value (a pointer, a closure) into `concurrentPerform`, whose chunks
/// touch disjoint memory by construction.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}
