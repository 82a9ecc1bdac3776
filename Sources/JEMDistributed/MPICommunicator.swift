import CJEMMPI
import Foundation
import JEM
import JEMBackend

/// `Communicator` over Open MPI's MPI_COMM_WORLD. Created only when the process was started by
/// mpirun (`OMPI_COMM_WORLD_SIZE` in the environment), so a plain run never initialises MPI.
public final class MPICommunicator: Communicator {
    public let size: Int
    public let rank: Int
    public let localRank: Int
    public let localSize: Int
    public private(set) var statistics = CommunicatorStatistics()
    let world: MPI_Comm   // an opaque pointer (CJEMMPI)

    /// True when this process is a rank of an mpirun job.
    public static var launchedByMPI: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["OMPI_COMM_WORLD_SIZE"] != nil
    }

    /// The job's communicator: MPI when launched by mpirun, else `SingleProcess` (no MPI call at all).
    public static func world() throws -> any Communicator {
        launchedByMPI ? try MPICommunicator() : SingleProcess()
    }

    nonisolated(unsafe) private static var initialised = false

    /// Initialises MPI (once per process; finalised at exit).
    public init() throws {
        if !Self.initialised {
            var reason = [CChar](repeating: 0, count: 512)
            guard jem_mpi_open(&reason, Int32(reason.count)) == 0 else {
                throw BackendError(String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
            var provided: Int32 = 0
            guard jem_MPI_Init_thread(jem_mpi_thread_funneled(), &provided) == jem_mpi_success() else {
                throw BackendError("MPI_Init_thread failed")
            }
            Self.initialised = true
            atexit { _ = jem_MPI_Finalize() }
        }
        world = jem_mpi_comm_world()
        var value: Int32 = 0
        jem_MPI_Comm_size(world, &value)
        size = Int(value)
        jem_MPI_Comm_rank(world, &value)
        rank = Int(value)
        let environment = ProcessInfo.processInfo.environment
        localRank = environment["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap { Int($0) } ?? rank
        localSize = environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap { Int($0) } ?? size
    }

    private func check(_ code: Int32, _ what: String) throws {
        guard code == jem_mpi_success() else { throw BackendError("MPI \(what) failed on rank \(rank) (code \(code))") }
    }

    /// MPI counts are Int32: long buffers go in chunks.
    private static let chunk = 1 << 28

    public func allreduceSum(_ values: inout [Float]) throws {
        let started = Date()
        let count = values.count
        try values.withUnsafeMutableBufferPointer { buffer in
            var start = 0
            while start < count {
                let n = min(Self.chunk, count - start)
                try check(jem_MPI_Allreduce(jem_mpi_in_place(), buffer.baseAddress! + start, Int32(n), jem_mpi_float(),
                                        jem_mpi_sum(), world), "allreduce")
                start += n
            }
        }
        statistics.allreduceSeconds += Date().timeIntervalSince(started)
        statistics.allreduceBytes += count * MemoryLayout<Float>.size
    }

    public func allreduceSum(_ values: inout [Double]) throws {
        let started = Date()
        let count = values.count
        try values.withUnsafeMutableBufferPointer { buffer in
            try check(jem_MPI_Allreduce(jem_mpi_in_place(), buffer.baseAddress!, Int32(count), jem_mpi_double(),
                                    jem_mpi_sum(), world), "allreduce")
        }
        statistics.allreduceSeconds += Date().timeIntervalSince(started)
        statistics.allreduceBytes += count * MemoryLayout<Double>.size
    }

    public func allgather(_ local: [Float], counts: [Int]) throws -> [Float] {
        precondition(counts.count == size && counts[rank] == local.count, "allgather counts do not match")
        let started = Date()
        let total = counts.reduce(0, +)
        precondition(total < Int(Int32.max), "allgather of \(total) floats exceeds MPI's Int32 counts")
        var displacements = [Int32](repeating: 0, count: size)
        for r in 1..<max(size, 1) { displacements[r] = displacements[r - 1] + Int32(counts[r - 1]) }
        var out = [Float](repeating: 0, count: total)
        var counts32 = counts.map { Int32($0) }
        try local.withUnsafeBufferPointer { send in
            try out.withUnsafeMutableBufferPointer { receive in
                try check(jem_MPI_Allgatherv(send.baseAddress, Int32(local.count), jem_mpi_float(), receive.baseAddress,
                                         &counts32, &displacements, jem_mpi_float(), world), "allgather")
            }
        }
        statistics.allgatherSeconds += Date().timeIntervalSince(started)
        statistics.allgatherBytes += total * MemoryLayout<Float>.size
        return out
    }

    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        var count: [Int32] = [Int32(bytes.count)]
        try check(jem_MPI_Bcast(&count, 1, jem_mpi_int(), Int32(root), world), "broadcast")
        var data = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
        try data.withUnsafeMutableBufferPointer { buffer in
            try check(jem_MPI_Bcast(buffer.baseAddress, count[0], jem_mpi_byte(), Int32(root), world), "broadcast")
        }
        return data
    }

    public func barrier() throws { try check(jem_MPI_Barrier(world), "barrier") }

    public func abort(code: Int32) -> Never {
        _ = jem_MPI_Abort(world, code)
        exit(code)
    }
}
