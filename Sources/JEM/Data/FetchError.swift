import Foundation
import JEMBackend
import JEMSupport

/// A download that failed, in one line naming the URL or file and what went wrong.
public struct FetchError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The server answered with this non-2xx status.
        case http(Int)
        /// The file arrived but its MD5 is not the expected one.
        case checksum
        /// Connection, timeout or truncated transfer.
        case network
        /// Writing or renaming on the local disk.
        case io
        /// The downloaded archive or files cannot be unpacked or loaded.
        case archive
    }

    public let kind: Kind
    public let description: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        description = message.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" })
            .joined(separator: " ")
    }
}
