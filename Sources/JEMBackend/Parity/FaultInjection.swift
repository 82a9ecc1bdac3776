import Foundation

/// A test hook that proves the checks can fail: with `JEM_INJECT_NAN=<check name>` (or the
/// `injectNaNInto` argument of `ParitySuite.run` / `ReferenceChecks.run`), the first element of
/// that check's candidate output is replaced by NaN after it is read back, as if the op had
/// produced it. The suite and `jem-gpu selftest` must then report a failure.
public enum FaultInjection {
    /// The check named by `JEM_INJECT_NAN`, if any.
    public static var environmentTarget: String? {
        ProcessInfo.processInfo.environment["JEM_INJECT_NAN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `values` with a NaN in front when `target` names `check`.
    static func apply(_ values: [Float], check: String, target: String?) -> [Float] {
        guard let target, target == check, !values.isEmpty else { return values }
        var poisoned = values
        poisoned[0] = .nan
        return poisoned
    }
}
