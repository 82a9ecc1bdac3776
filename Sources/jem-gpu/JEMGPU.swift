import ArgumentParser
import Foundation
import JEM
import JEMBackend

@main
struct JEMGPU: ParsableCommand {
    static func main() {
        OpenBLASSetup.relaunchWithBestKernelsIfNeeded()
        // A file-size limit (ulimit -f) would otherwise kill the process with SIGXFSZ mid-write;
        // ignored, the write fails with EFBIG and is reported like a full disk (one line, naming
        // the file, the previous checkpoint intact).
        signal(SIGXFSZ, SIG_IGN)
        Self.main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "jem-gpu",
        abstract: "Train and evaluate Joint Energy-based Models on OpenCL GPUs or the CPU.",
        discussion: """
            JEM (Grathwohl et al., ICLR 2020) reads a softmax classifier f as an energy model, E(x) = -LogSumExp_y f(x)[y], and trains it with cross-entropy plus a generative term whose negatives come from SGLD chains kept in a replay buffer.

            Every command that computes takes --backend auto|cpu|opencl: auto picks the first OpenCL GPU and falls back to the CPU backend with a one-line notice.
            """,
        subcommands: [TrainCommand.self, SampleCommand.self, EvalCommand.self, CalibrateCommand.self, SampleQualityCommand.self, ScoreCommand.self, AttackCommand.self, ReportCommand.self, DevicesCommand.self, SelfTestCommand.self, TuneCommand.self, DataCommand.self, FetchCommand.self])
}

/// The global backend convention shared by every computing subcommand.
struct BackendOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Compute backend: auto (first OpenCL GPU, else CPU), cpu, or opencl.", valueName: "auto|cpu|opencl"))
    var backend: BackendChoice = .auto

    @Option(name: .long, help: ArgumentHelp(
        "OpenCL device: index from `jem-gpu devices`, platform:device (indices or names), a name substring, or auto (default: the first GPU, else the first device).",
        valueName: "N|P:D|NAME"))
    var device: String?

    @Flag(name: .customLong("no-tune"), help: ArgumentHelp(
        "Keep the built-in convolution kernels: no autotuning and no stored tuning results (GPUs tune each conv shape on first use; see `jem-gpu tune`)."))
    var noTune = false

    /// The backend, printing the fallback notice of `--backend auto` on stderr.
    func makeBackend() throws -> any Backend {
        // Under mpirun, this process's entry of a --device list (or local rank mod device count).
        let device = try Distributed.current.map { try Distributed.device(self.device, backend: self.backend, world: $0) }
            ?? self.device
        let made: (backend: any Backend, notice: String?)
        do { made = try BackendSelection.make(backend, device: device) } catch let error as BackendError {
            if let world = Distributed.current, world.isDistributed {   // the line MPI_Abort follows
                throw BackendError("--backend \(self.backend.rawValue) device \(device ?? "(default)"): \(error.message)")
            }
            // Name the flag when the device asked for is not there.
            guard let device, error.message.hasPrefix("no OpenCL device") else { throw error }
            throw BackendError("--device \(device): \(error.message)")
        }
        let (backend, notice) = made
        if let notice { printError(notice) }
        if noTune, let opencl = backend as? OpenCLBackend { opencl.convolutionTuning = .off }
        return backend
    }
}

extension BackendChoice: ExpressibleByArgument {}

/// An error whose message is already the one line the user should see.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

func printError(_ line: String) {
    var stderr = StandardError()
    print(line, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
