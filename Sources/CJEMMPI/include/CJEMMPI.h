// Open MPI for Swift, loaded on demand. MPI's handles and constants are macros (Open MPI: casts
// of addresses of globals), which Swift cannot import; these functions return them. The MPI
// calls go through pointers resolved by `jem_mpi_open()` (dlopen of libmpi.so.40), so a plain
// run, which never calls it, does not load Open MPI at all: no start-up cost. For that, nothing
// here includes mpi.h (SwiftPM would link -lmpi into every binary with the pkg-config flags):
// handles are Open MPI's pointers, as void *, and the two constants used are Open MPI's values.
#ifndef CJEMMPI_H
#define CJEMMPI_H

typedef void *MPI_Comm;
typedef void *MPI_Datatype;
typedef void *MPI_Op;

/// Loads libmpi and resolves every function below; 0 on success, else -1 with a reason in `error`.
int jem_mpi_open(char *error, int length);

MPI_Comm jem_mpi_comm_world(void);
MPI_Datatype jem_mpi_float(void);
MPI_Datatype jem_mpi_double(void);
MPI_Datatype jem_mpi_byte(void);
MPI_Datatype jem_mpi_int(void);
MPI_Op jem_mpi_sum(void);
MPI_Op jem_mpi_max(void);
void *jem_mpi_in_place(void);
int jem_mpi_success(void);
int jem_mpi_thread_funneled(void);

int jem_MPI_Init_thread(int required, int *provided);
int jem_MPI_Finalize(void);
int jem_MPI_Comm_size(MPI_Comm comm, int *size);
int jem_MPI_Comm_rank(MPI_Comm comm, int *rank);
int jem_MPI_Allreduce(const void *send, void *receive, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm);
int jem_MPI_Allgatherv(const void *send, int sendCount, MPI_Datatype sendType, void *receive,
                       const int *receiveCounts, const int *displacements, MPI_Datatype receiveType, MPI_Comm comm);
int jem_MPI_Bcast(void *buffer, int count, MPI_Datatype type, int root, MPI_Comm comm);
int jem_MPI_Barrier(MPI_Comm comm);
int jem_MPI_Abort(MPI_Comm comm, int code);

/// CPUs in this process's affinity mask.
int jem_affinity_count(void);
/// Restricts this process to slice `part` of `parts` equal slices of its current affinity mask
/// (so `parts` processes on one machine do not share cores). Returns the CPUs kept, or -1.
int jem_affinity_split(int part, int parts);

#endif
