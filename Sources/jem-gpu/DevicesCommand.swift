import ArgumentParser
import Foundation
import JEM
import JEMBackend

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List every OpenCL platform and device with its memory and compute units.",
        discussion: """
            The index in the first column is what --device takes (so does platform:device, by index or name such as rusticl:llvmpipe, or a name substring). Exits with status 1 and one line of explanation when no OpenCL platform or device exists; the CPU backend works without one.
            """)

    @Flag(help: "Print the devices as a JSON array (for scripts) instead of a table.")
    var json = false

    func run() throws {
        let devices: [OpenCLDeviceInfo]
        do {
            devices = try OpenCLRuntime.devices()
        } catch {
            throw CommandFailure("\(error)")
        }
        if json {
            let auto = try? OpenCLDeviceSelection.auto.position(in: devices)
            let list: [[String: Any]] = devices.enumerated().map { index, d in
                ["index": index, "platform_index": d.platformIndex, "device_index": d.deviceIndex,
                 "platform": d.platformName, "name": d.name, "vendor": d.vendor, "type": d.typeDescription,
                 "is_gpu": d.isGPU, "device_version": d.deviceVersion, "driver_version": d.driverVersion,
                 "compute_units": d.computeUnits, "global_memory_bytes": d.globalMemoryBytes,
                 "max_allocation_bytes": d.maxAllocationBytes, "auto": index == auto]
            }
            let data = try JSONSerialization.data(withJSONObject: list, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
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
        } else if let gpu = devices.firstIndex(where: \.isGPU) {
            print("--backend auto and --backend opencl use #\(gpu) (the first GPU) unless --device says otherwise.")
        }
    }
}
