import ArgumentParser
import JEM

@main
struct JEMBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "jem-bench", abstract: "jem-gpu benchmark runner.")
}
