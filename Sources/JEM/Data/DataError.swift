import Foundation
import JEMBackend

/// A dataset file (or folder) that cannot be used, said in one line that names the file and what
/// was expected, e.g. `train-labels-idx1-ubyte: label count 59999 does not match image count 60000`.
///
/// Every reader in `Data/` reports bad input (missing, truncated, corrupt or absurd files) with this
/// error and never traps: sizes read from headers are checked with overflow-safe arithmetic against
/// the bytes actually present before anything is allocated.
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file or folder at fault, as the loader was given it (or a member inside an archive,
    /// written `archive.tar.gz: member`).
    public let file: String
    /// What was wrong and what was expected.
    public let message: String

    public init(_ file: String, _ message: String) {
        self.file = file
        self.message = message
    }

    /// `file: message`, always a single line.
    public var description: String {
        let line = "\(file): \(message)"
        return line.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r" })
            .joined(separator: " ")
    }
}
