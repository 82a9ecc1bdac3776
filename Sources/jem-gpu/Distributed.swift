import ArgumentParser
import CJEMMPI
import Foundation
import JEM
import JEMBackend
import JEMDistributed
import JEMSupport

/// The data-parallel side of the commands that support `mpirun -np N` (train, eval, score): the
/// job's communicator, one device per process, CPU cores split between the processes of a
/// machine, and errors that end every rank. Without mpirun all of this is a no-op (no MPI call).
enum Distributed {
    /// The job's communicator, made once (MPI is initialised only under mpirun).
    nonisolated(unsafe) private static var made: (any Communicator)?

    static func world() throws -> any Communicator {
        if let made { return made }
        let world = try MPICommunicator.world()
        made = world
        if world.isDistributed { splitCPUCores(world) }
        return world
    }

    /// The communicator if one was made (BackendOptions asks; plain commands never make one).
    static var current: (any Communicator)? { made }

    /// Processes sharing a machine share its cores: when mpirun did not bind them (each sees every
    /// CPU), each keeps an equal disjoint slice; either way the CPU backend's and the data
    /// pipeline's thread count (`Parallel.threads`) becomes the number of CPUs this process may run on.
    static func splitCPUCores(_ world: any Communicator) {
        guard world.localSize > 1 else { return }
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let visible = Int(jem_affinity_count())
        if visible >= world.localSize, visible == online {   // not bound by mpirun: take a slice
            _ = jem_affinity_split(Int32(world.localRank), Int32(world.localSize))
        }
        Parallel.useThreads(Int(jem_affinity_count()))
    }

    /// The --device of this process: one entry of a comma list per local rank, or (OpenCL, no list)
    /// device local_rank mod the number of GPUs (of devices when there is no GPU).
    static func device(_ requested: String?, backend: BackendChoice, world: any Communicator) throws -> String? {
        if let requested, requested.contains(",") {
            let list = requested.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard list.count == world.localSize else {
                throw ValidationError("--device \(requested): \(list.count) devices for \(world.localSize) processes "
                                      + "on this machine (give one per local rank, or one device for all)")
            }
            return list[world.localRank]
        }
        guard requested == nil, world.isDistributed, backend != .cpu else { return requested }
        guard let devices = try? OpenCLRuntime.devices() else { return nil }
        // The GPUs (as the single-process default picks the first GPU); with none, every device for
        // --backend opencl, and none for auto (which then falls back to the CPU backend).
        let gpus = devices.indices.filter { devices[$0].isGPU }
        let candidates = !gpus.isEmpty ? gpus : backend == .auto ? [] : Array(devices.indices)
        guard !candidates.isEmpty else { return nil }
        return String(candidates[world.localRank % candidates.count])
    }

    /// Runs a command's body. In a job, an error that only this rank hit (a device that does not
    /// open, a file) is printed as one line naming the rank and ends every rank (MPI_Abort); errors
    /// every rank hits alike (flag checks) are printed by rank 0 only.
    static func guarded(_ world: any Communicator, _ body: () throws -> Void) throws {
        guard world.isDistributed else { return try body() }
        do {
            try body()
        } catch let error as ValidationError {
            if world.rank == 0 { throw error }
            exit(1)
        } catch {
            printError("Error: rank \(world.rank) of \(world.size): \(error)")
            world.abort(code: 1)
        }
    }

    /// A line prefix naming the rank in a job ("" alone).
    static func prefix(_ world: any Communicator) -> String {
        world.isDistributed ? "rank \(world.rank): " : ""
    }
}
