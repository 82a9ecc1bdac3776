import Foundation

/// The Winograd-transformed filters of the CPU backend's recent convolutions, kept between calls.
///
/// An SGLD chain runs the same network 20 times between two parameter updates, so the filter of
/// each conv is transformed 40 times (forward and backward-data) for one set of weights. The
/// transform writes 36 or 81 floats per weight (5.3 MB for the 128-channel stride-2 conv) and is
/// memory bound; comparing the weights with a copy taken at the last transform reads 1/36 - 1/81
/// of that. An entry is reused only when the weights are bit for bit the copy, so a hit gives
/// exactly the floats a new transform would (no reliance on who writes the weights, or when).
///
/// Entries are keyed by the weight buffer's address, the pipeline (stride 1 or 2, forward or
/// backward-data) and the shape. The cache holds at most `capacityBytes` of transformed filters
/// (wrn-10-2 needs about 17 MB); a conv that does not fit is transformed into a shared scratch
/// every call, as before.
final class WinogradFilterCache {
    struct Key: Hashable {
        let weight: UnsafeMutablePointer<Float>
        let points: Int, inChannels: Int, outChannels: Int, paddedColumns: Int, backward: Bool
    }

    private final class Entry {
        let weights: UnsafeMutablePointer<Float>, weightCount: Int
        let filter: UnsafeMutablePointer<Float>, filterCount: Int
        init(weightCount: Int, filterCount: Int) {
            self.weightCount = weightCount
            self.filterCount = filterCount
            weights = .allocate(capacity: weightCount)
            filter = .allocate(capacity: filterCount)
        }
        deinit { weights.deallocate(); filter.deallocate() }
    }

    let capacityBytes: Int
    private var entries: [Key: Entry] = [:]
    private let overflow = Scratch()
    /// Bytes of transformed filters held (entries only).
    private(set) var bytes = 0

    init(capacityBytes: Int = 64 << 20) { self.capacityBytes = capacityBytes }

    /// Bytes held: entries, their weight copies and the overflow scratch.
    var totalBytes: Int { entries.values.reduce(0) { $0 + $1.weightCount * 4 } + bytes + overflow.bytes }

    /// The transformed filter for `key` (`count` floats) of the `weightCount` weights at
    /// `key.weight`: the cached one when the weights are unchanged since it was made, else
    /// `transform(into:)` fills it now.
    func filter(_ key: Key, weightCount: Int, count: Int,
                transform: (UnsafeMutablePointer<Float>) -> Void) -> UnsafeMutablePointer<Float> {
        let byteCount = weightCount * 4
        if let entry = entries[key] {
            if memcmp(entry.weights, key.weight, byteCount) != 0 {
                transform(entry.filter)
                entry.weights.update(from: key.weight, count: weightCount)
            }
            return entry.filter
        }
        guard bytes + count * 4 <= capacityBytes else {
            let scratch = overflow.reserve(count)
            transform(scratch)
            return scratch
        }
        let entry = Entry(weightCount: weightCount, filterCount: count)
        transform(entry.filter)
        entry.weights.update(from: key.weight, count: weightCount)
        entries[key] = entry
        bytes += count * 4
        return entry.filter
    }
}
