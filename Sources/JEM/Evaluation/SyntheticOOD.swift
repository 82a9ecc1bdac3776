import JEMBackend
/// Out-of-distribution sets made from the in-distribution images themselves, so that any
/// dataset (the built-in one included) has OOD sets without a download. Each has as many
/// images as the set it is made from, no labels, and is a pure function of (images, seed).
public enum SyntheticOOD: String, Sendable, CaseIterable {
    /// Every pixel U(-1, 1), independently.
    case uniform
    /// The JEM paper's "interp": the midpoint (x_a + x_b) / 2 of two different random images.
    case interp
    /// Each image with its pixel positions randomly permuted (channels move together, so the
    /// colour histogram is kept and only the spatial structure is destroyed).
    case permuted

    /// `synthetic:<kind>` as given on the command line.
    public var name: String { "synthetic:" + rawValue }

    /// What the set is, in one sentence (for reports).
    public var explanation: String {
        switch self {
        case .uniform: return "every pixel drawn independently from U(-1, 1): pure noise"
        case .interp: return "the midpoint (x_a + x_b) / 2 of two different random in-distribution images "
            + "(the JEM paper's interp)"
        case .permuted: return "each in-distribution image with its pixel positions randomly shuffled (channels "
            + "together): the same pixel values, no spatial structure"
        }
    }

    /// Philox streams of the synthetic sets: a tag no training stream uses (RandomStream tags
    /// are small), the kind in the next byte, then the image index where one is needed.
    static func stream(_ kind: SyntheticOOD, _ counter: UInt64 = 0) -> UInt64 {
        let index: UInt64 = kind == .uniform ? 1 : kind == .interp ? 2 : 3
        return 0xE0 << 56 | index << 48 | counter
    }

    public func make(from set: ImageSet, seed: UInt64) -> ImageSet {
        let n = set.count, size = set.imageSize, plane = set.height * set.width
        var pixels = [Float](repeating: 0, count: n * size)
        switch self {
        case .uniform:
            let stream = Self.stream(.uniform)
            var i = 0
            while i < pixels.count {
                let words = Philox.block(seed: seed, stream: stream, index: UInt64(i >> 2))
                for lane in 0..<min(4, pixels.count - i) {
                    pixels[i + lane] = 2 * Philox.uniform01(Philox.lane(words, lane)) - 1
                }
                i += 4
            }
        case .interp:
            let order = HostRandom(seed: seed, stream: Self.stream(.interp)).permutation(n)
            var a = [Float](repeating: 0, count: size), b = a
            for i in 0..<n {
                a.withUnsafeMutableBufferPointer { set.image(order[i], into: $0.baseAddress!) }
                b.withUnsafeMutableBufferPointer { set.image(order[(i + 1) % n], into: $0.baseAddress!) }
                for j in 0..<size { pixels[i * size + j] = 0.5 * (a[j] + b[j]) }
            }
        case .permuted:
            var source = [Float](repeating: 0, count: size)
            for i in 0..<n {
                let order = HostRandom(seed: seed, stream: Self.stream(.permuted, UInt64(i))).permutation(plane)
                source.withUnsafeMutableBufferPointer { set.image(i, into: $0.baseAddress!) }
                for c in 0..<set.channels {
                    for p in 0..<plane { pixels[i * size + c * plane + p] = source[c * plane + order[p]] }
                }
            }
        }
        return ImageSet(channels: set.channels, height: set.height, width: set.width, count: n,
                        pixels: .float32(pixels), labels: nil)
    }
}
