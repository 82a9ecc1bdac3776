import ArgumentParser
import JEM
import JEMBackend

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List every OpenCL platform and device with its memory and compute units.",
        discussion: """
            The index in the first column is what --device takes (so does platform:device or a name substring). Exits with status 1 and one line of explanation when no OpenCL platform or device exists; the CPU backend works without one.
            """)

    func run() throws {
        let devices: [OpenCLDeviceInfo]
        do {
            devices = try OpenCLRuntime.devices()
        } catch {
            throw CommandFailure("\(error)")
        }
        let gib = 1024.0 * 1024 * 1024
        var rows = [["#", "platform:device", "type", "name", "CUs", "memory", "max alloc", "platform", "driver"]]
        for (index, d) in devices.enumerated() {
            rows.append([
                "\(index)", "\(d.platformIndex):\(d.deviceIndex)", d.typeDescription, d.name, "\(d.computeUnits)",
                formatFixed(Double(d.globalMemoryBytes) / gib, 1) + " GiB",
                formatFixed(Double(d.maxAllocationBytes) / gib, 1) + " GiB",
                d.platformName, d.driverVersion,
            ])
        }
        print(TextTable.render(rows))
        if !devices.contains(where: \.isGPU) {
            print("No GPU among them: --backend auto will use the CPU backend; --backend opencl uses device 0.")
        }
    }
}
