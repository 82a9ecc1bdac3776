import Dispatch
import Foundation

/// Sharing a pointer to disjoint slots with `concurrentPerform` workers.
enum DataParallel {
    struct Pointer<T>: @unchecked Sendable {
        let value: UnsafeMutablePointer<T>
        init(_ value: UnsafeMutablePointer<T>) { self.value = value }
    }

    /// Runs `body` over `0..<count` split into one contiguous chunk per core.
    static func chunks(_ count: Int, minimumPerChunk: Int = 64, _ body: @Sendable (Range<Int>) -> Void) {
        let threads = max(1, min(ProcessInfo.processInfo.activeProcessorCount, count / max(1, minimumPerChunk)))
        if threads == 1 {
            if count > 0 { body(0..<count) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            let start = count * t / threads, end = count * (t + 1) / threads
            if start < end { body(start..<end) }
        }
    }
}
