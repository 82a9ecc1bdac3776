import Foundation
import PackagePlugin

/// Turns every `.cl` file of the target it is applied to (Kernels/) into one generated Swift
/// file, `EmbeddedKernels.swift`, so kernels travel inside the binary.
@main
struct KernelEmbedder: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        guard let module = target.sourceModule else { return [] }
        let inputs = module.sourceFiles(withSuffix: "cl").map(\.url).sorted { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedKernels.swift")
        return [.buildCommand(
            displayName: "Embedding \(inputs.count) OpenCL kernel file(s)",
            executable: try context.tool(named: "kernel-embedder").url,
            arguments: [output.path(percentEncoded: false)] + inputs.map { $0.path(percentEncoded: false) },
            inputFiles: inputs,
            outputFiles: [output])]
    }
}
