import CBLAS
import Foundation

/// OpenBLAS picks its kernels by CPU model when the library loads. Debian's 0.3.21 does not know
/// recent CPUs (e.g. Sapphire Rapids) and falls back to its SSE3 "Prescott" kernels, 5-10x
/// slower. The choice can only be overridden by OPENBLAS_CORETYPE before the library loads, so
/// the executables call `relaunchWithBestKernelsIfNeeded()` first thing: when detection fell
/// back and the CPU has AVX-512 or AVX2, it sets OPENBLAS_CORETYPE and re-executes itself once.
public enum OpenBLASSetup {
    /// The kernel set OpenBLAS chose, e.g. "Cooperlake", "SkylakeX", "Haswell", "Prescott".
    public static var coreName: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The OPENBLAS_CORETYPE this CPU deserves, from /proc/cpuinfo flags; nil when unknown.
    public static func suggestedCoreType() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") {
            return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"
        }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    public static func relaunchWithBestKernelsIfNeeded() {
        let generic: Set<String> = ["Prescott", "Core2", "Nehalem", "Katmai", "Coppermine", "Northwood", "Banias"]
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv("JEM_NO_RELAUNCH") == nil, generic.contains(coreName),
              let better = suggestedCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv("JEM_NO_RELAUNCH", "1", 1)   // never loop, even if the override is ignored
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv only returns on failure: carry on with the slow kernels.
    }
}
