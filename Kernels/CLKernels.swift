/// The OpenCL C sources of Kernels/*.cl, embedded at build time by the KernelEmbedder plugin.
public enum CLKernels {
    /// Names of every embedded kernel file (file name without `.cl`), sorted.
    public static var names: [String] { EmbeddedKernels.sources.keys.sorted() }

    /// The source of `Kernels/<name>.cl`, byte for byte, or nil if there is no such file.
    public static func source(_ name: String) -> String? { EmbeddedKernels.sources[name] }

    /// The source with every `#include "other.cl"` line replaced by that file's text (once per
    /// file), because OpenCL compilers see one string and no file system.
    public static func resolvedSource(_ name: String) -> String? {
        var included = Set<String>()
        return resolve(name, included: &included)
    }

    private static func resolve(_ name: String, included: inout Set<String>) -> String? {
        guard let text = source(name) else { return nil }
        included.insert(name)
        var lines: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingPrefix(while: { $0 == " " })
            if trimmed.hasPrefix("#include \""), let end = trimmed.dropFirst(10).firstIndex(of: "\"") {
                let file = String(trimmed[trimmed.index(trimmed.startIndex, offsetBy: 10)..<end])
                let other = file.hasSuffix(".cl") ? String(file.dropLast(3)) : file
                if included.contains(other) { continue }
                guard let body = resolve(other, included: &included) else { return nil }
                lines.append(Substring(body))
            } else {
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}
