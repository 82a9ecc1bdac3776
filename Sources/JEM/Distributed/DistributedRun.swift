import Foundation
import JEMSupport

extension TrainingRun {
    /// A checkpoint continues bit for bit only with the process count that wrote it (the count
    /// fixes how gradients are summed); another count is refused with one line.
    static func checkWorldSize(_ saved: RunState, communicator: any Communicator, directory: String) throws {
        let savedSize = saved.worldSize ?? 1
        guard savedSize != communicator.size else { return }
        func processes(_ n: Int) -> String { n == 1 ? "1 process (no mpirun)" : "\(n) processes (mpirun -np \(n))" }
        throw IOError("--resume \(directory): the checkpoint was written by \(processes(savedSize)), this run has "
                      + "\(processes(communicator.size)); resume with the same process count (the count sets the "
                      + "order in which gradients are summed, so another one would not continue the run exactly)")
    }

    /// metrics.jsonl fields of a data-parallel run for one logging window: the world size, each rank's
    /// seconds per iteration and the collective time and bytes per iteration. A collective, called by
    /// every rank at the same iteration; empty in a plain run.
    func distributedLogFields(iterations: Int) throws -> [String: Any] {
        defer { windowSeconds = 0 }
        guard communicator.isDistributed else { return [:] }
        let n = Double(max(iterations, 1))
        let stats = communicator.statistics
        let previous = loggedStatistics
        let perRank = try communicator.gatherScalars([windowSeconds / n,
                                                      (stats.allreduceSeconds - previous.allreduceSeconds) / n])
        loggedStatistics = stats
        return [
            "world_size": communicator.size,
            "rank_seconds_per_iteration": perRank.map { $0[0] },
            "rank_allreduce_seconds_per_iteration": perRank.map { $0[1] },
            "allreduce_bytes_per_iteration": Double(stats.allreduceBytes - previous.allreduceBytes) / n,
            "allgather_bytes_per_iteration": Double(stats.allgatherBytes - previous.allgatherBytes) / n,
        ]
    }
}
