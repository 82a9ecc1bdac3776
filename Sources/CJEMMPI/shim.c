#define _GNU_SOURCE
#include <sched.h>
#include "CJEMMPI.h"

MPI_Comm jem_mpi_comm_world(void) { return MPI_COMM_WORLD; }
MPI_Datatype jem_mpi_float(void) { return MPI_FLOAT; }
MPI_Datatype jem_mpi_double(void) { return MPI_DOUBLE; }
MPI_Datatype jem_mpi_byte(void) { return MPI_BYTE; }
MPI_Datatype jem_mpi_int(void) { return MPI_INT; }
MPI_Op jem_mpi_sum(void) { return MPI_SUM; }
MPI_Op jem_mpi_max(void) { return MPI_MAX; }
void *jem_mpi_in_place(void) { return MPI_IN_PLACE; }
int jem_mpi_success(void) { return MPI_SUCCESS; }
int jem_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

int jem_affinity_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    return CPU_COUNT(&set);
}

int jem_affinity_split(int part, int parts) {
    cpu_set_t set, mine;
    if (parts < 1 || part < 0 || sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int total = CPU_COUNT(&set);
    if (total < parts) return -1;
    int lo = total * part / parts, hi = total * (part + 1) / parts, seen = 0;
    CPU_ZERO(&mine);
    for (int cpu = 0; cpu < CPU_SETSIZE && seen < hi; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        if (seen >= lo) CPU_SET(cpu, &mine);
        seen++;
    }
    if (sched_setaffinity(0, sizeof(mine), &mine) != 0) return -1;
    return hi - lo;
}
