import Foundation
import JEMSupport

/// Uploads, downloads and copies: bit-exact.
extension ParitySuite {
    static func buffers(_ h: ParityHarness) throws {
        let x = try h.pair(h.random(37))
        try h.upload(h.random(5), to: x, offset: 11)
        try h.check("upload/download", x, mode: .bitExact, "37 floats, 5 re-uploaded at offset 11")
        let partialRef = try h.reference.download(x.reference, offset: 9, count: 20)
        let partialCand = try h.candidate.download(x.candidate, offset: 9, count: 20)
        h.compare("download with offset", candidate: partialCand, reference: partialRef, mode: .bitExact,
                  "floats 9..<29")

        let ints: [Int32] = (0..<29).map { Int32($0 * 7919 % 1000) - 500 }
        let i = try h.pair(ints)
        try h.reference.upload([Int32(-7), 123_456_789], to: i.reference, offset: 3)
        try h.candidate.upload([Int32(-7), 123_456_789], to: i.candidate, offset: 3)
        let intsRef = try h.reference.downloadInt32(i.reference, offset: 0, count: 29)
        let intsCand = try h.candidate.downloadInt32(i.candidate, offset: 0, count: 29)
        h.compare("int32 upload/download", candidate: intsCand.map(Float.init), reference: intsRef.map(Float.init),
                  mode: .bitExact, "29 int32, 2 re-uploaded at offset 3")

        let source = try h.pair(h.random(53)), destination = try h.pair(h.random(61))
        h.both { b, p in b.copy(p(source), sourceOffset: 4, to: p(destination), destinationOffset: 9, count: 40) }
        try h.check("copy", destination, mode: .bitExact, "40 floats, offsets 4 -> 9")
        h.both { b, p in b.copy(p(destination), sourceOffset: 0, to: p(destination), destinationOffset: 5, count: 50) }
        try h.check("copy within a buffer (overlapping, forward)", destination, mode: .bitExact, "50 floats, 0 -> 5")
        h.both { b, p in b.copy(p(destination), sourceOffset: 8, to: p(destination), destinationOffset: 2, count: 50) }
        try h.check("copy within a buffer (overlapping, backward)", destination, mode: .bitExact, "50 floats, 8 -> 2")

        h.both { b, p in b.fill(p(destination), value: -2.5, offset: 13, count: 29) }
        try h.check("fill", destination, mode: .bitExact, "29 of 61 floats at offset 13")
    }
}
