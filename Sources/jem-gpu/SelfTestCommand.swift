import ArgumentParser
import Foundation
import JEM
import JEMBackend

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check the chosen backend on this machine and print a pass/fail table.",
        discussion: """
            With an OpenCL backend, every op of the Backend protocol runs on the device and on the CPU reference backend with the same random inputs, and the worst relative error of each is printed (tolerance 1e-4; random-number ops must agree bit for bit or within 1e-6). With the CPU backend, the reference itself is checked: Philox against the published Random123 known-answer vectors, and convolution against naive loops. Exits with status 1 if any check fails.
            """)

    @OptionGroup var backendOptions: BackendOptions

    func run() throws {
        let backend = try backendOptions.makeBackend()
        print("Backend: \(backend.deviceDescription)")
        let start = Date()
        var results = try ReferenceChecks.run(on: backend)
        if backend.kind != .cpu {
            results += try ParitySuite.run(reference: CPUBackend(), candidate: backend)
        }
        var rows = [["check", "max rel. error", "tolerance", "result", "detail"]]
        for r in results {
            rows.append([r.name, formatScientific(r.maxRelativeError), formatScientific(r.tolerance),
                         r.passed ? "pass" : "FAIL", r.detail])
        }
        print(TextTable.render(rows))
        let failed = results.filter { !$0.passed }.count
        let worst = results.map(\.maxRelativeError).max() ?? 0
        print("\(results.count - failed) passed, \(failed) failed (worst relative error \(formatScientific(worst)), "
              + "\(formatFixed(Date().timeIntervalSince(start), 1)) s)")
        if failed > 0 { throw ExitCode(1) }
    }
}
