import Foundation

/// Philox4x32-10 counter-based generator, bit-identical to Kernels/random.cl.
///
/// A stream of numbers is named by `(seed, stream)`; element `i` comes from the block with counter
/// `(i/4 low, i/4 high, stream low, stream high)`, key `(seed low, seed high)`, lane `i%4`. No state:
/// the CPU and OpenCL backends draw the same numbers for the same address, in any order.
public enum Philox {
    public static let m0: UInt32 = 0xD251_1F53, m1: UInt32 = 0xCD9E_8D57
    public static let w0: UInt32 = 0x9E37_79B9, w1: UInt32 = 0xBB67_AE85

    /// One Philox4x32 block with 10 rounds.
    @inline(__always)
    public static func block(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32))
        -> (UInt32, UInt32, UInt32, UInt32)
    {
        var c = counter
        var k = key
        for round in 0..<10 {
            if round > 0 { k.0 &+= w0; k.1 &+= w1 }
            let p0 = UInt64(m0) &* UInt64(c.0)
            let p1 = UInt64(m1) &* UInt64(c.2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            c = (hi1 ^ c.1 ^ k.0, lo1, hi0 ^ c.3 ^ k.1, lo0)
        }
        return c
    }

    /// The block holding elements `4*index ..< 4*index+4` of stream `(seed, stream)`.
    @inline(__always)
    public static func block(seed: UInt64, stream: UInt64, index: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        block(counter: (UInt32(truncatingIfNeeded: index), UInt32(truncatingIfNeeded: index >> 32),
                        UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)),
              key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
    }

    /// [0, 1) from the top 24 bits: exactly representable, so identical on every device.
    @inline(__always)
    public static func uniform01(_ bits: UInt32) -> Float { Float(bits >> 8) * 0x1p-24 }

    /// (0, 1], safe for log.
    @inline(__always)
    static func uniform01Open0(_ bits: UInt32) -> Float { Float((bits >> 8) + 1) * 0x1p-24 }

    /// Two standard normals from two words (Box-Muller), as `philox_box_muller` in the kernel.
    @inline(__always)
    public static func boxMuller(_ a: UInt32, _ b: UInt32) -> (Float, Float) {
        let radius = (-2 * Foundation.log(uniform01Open0(a))).squareRoot()
        let angle = Float(6.283185307179586) * uniform01(b)
        return (radius * Foundation.cos(angle), radius * Foundation.sin(angle))
    }

    /// Four standard normals: elements `4*index ..< 4*index+4` of the normal stream.
    @inline(__always)
    public static func normal4(seed: UInt64, stream: UInt64, index: UInt64) -> (Float, Float, Float, Float) {
        let r = block(seed: seed, stream: stream, index: index)
        let a = boxMuller(r.0, r.1), b = boxMuller(r.2, r.3)
        return (a.0, a.1, b.0, b.1)
    }

    @inline(__always)
    public static func lane<T>(_ v: (T, T, T, T), _ i: Int) -> T {
        switch i & 3 { case 0: return v.0; case 1: return v.1; case 2: return v.2; default: return v.3 }
    }

    /// Element `i` of the standard-normal stream.
    public static func normal(seed: UInt64, stream: UInt64, element i: Int) -> Float {
        lane(normal4(seed: seed, stream: stream, index: UInt64(i >> 2)), i)
    }

    /// Element `i` of the uniform [0, 1) stream.
    public static func uniform(seed: UInt64, stream: UInt64, element i: Int) -> Float {
        uniform01(lane(block(seed: seed, stream: stream, index: UInt64(i >> 2)), i))
    }

    /// Fills `out[0..<count]` with elements `start ..< start+count` of the normal stream,
    /// one Philox block per four elements.
    public static func fillNormal(_ out: UnsafeMutablePointer<Float>, count: Int, start: Int = 0,
                                  seed: UInt64, stream: UInt64) {
        var i = 0
        while i < count {
            let element = start + i
            let n = normal4(seed: seed, stream: stream, index: UInt64(element >> 2))
            var lane = element & 3
            while lane < 4 && i < count { out[i] = Philox.lane(n, lane); lane += 1; i += 1 }
        }
    }
}
