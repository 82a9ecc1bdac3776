import Dispatch
import Foundation

/// Splits `0 ..< count` into at most one contiguous chunk per core and runs `body` on each.
/// Small jobs (below `grain` elements per chunk) run inline: a thread hop costs more than they do.
@inline(__always)
func parallelChunks(_ count: Int, grain: Int = 16_384, _ body: (Range<Int>) -> Void) {
    let threads = min(CPUThreads.count, max(1, count / max(grain, 1)))
    if threads <= 1 {
        if count > 0 { body(0..<count) }
        return
    }
    withoutActuallyEscaping(body) { body in
        let box = UnsafeSendable(body)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let start = count * t / threads, end = count * (t + 1) / threads
            if start < end { box.value(start..<end) }
        }
    }
}

/// The number of worker threads pointwise CPU work splits into (the machine's cores).
enum CPUThreads {
    static let count = max(1, ProcessInfo.processInfo.activeProcessorCount)
}

/// Carries a non-Sendable value (a pointer, a closure) into `concurrentPerform`, whose chunks
/// touch disjoint memory by construction.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
