// MPI's handles and constants are macros (Open MPI: casts of addresses of globals), which Swift
// cannot import; these functions return them.
#ifndef CJEMMPI_H
#define CJEMMPI_H
#include <mpi.h>

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

/// CPUs in this process's affinity mask.
int jem_affinity_count(void);
/// Restricts this process to slice `part` of `parts` equal slices of its current affinity mask
/// (so `parts` processes on one machine do not share cores). Returns the CPUs kept, or -1.
int jem_affinity_split(int part, int parts);

#endif
