import ArgumentParser
import JEM

@main
struct JEMGPU: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jem-gpu",
        abstract: "Train and evaluate Joint Energy-based Models on OpenCL GPUs or the CPU.")
}
