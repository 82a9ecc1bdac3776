#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>
#include "CJEMMPI.h"

// Open MPI 4 (mpi.h): MPI_SUCCESS, MPI_THREAD_FUNNELED (second of the MPI_THREAD_* enum), MPI_IN_PLACE.
#define MPI_SUCCESS 0
#define MPI_THREAD_FUNNELED 1
#define MPI_IN_PLACE ((void *)1)

// Nothing here references an MPI symbol at link time: everything is looked up in libmpi after
// dlopen (RTLD_GLOBAL, which Open MPI's own plugins need to find libmpi's symbols).
static void *library;
static void *world, *type_float, *type_double, *type_byte, *type_int, *op_sum, *op_max;
static int (*p_init_thread)(int *, char ***, int, int *);
static int (*p_finalize)(void);
static int (*p_comm_size)(MPI_Comm, int *);
static int (*p_comm_rank)(MPI_Comm, int *);
static int (*p_allreduce)(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm);
static int (*p_allgatherv)(const void *, int, MPI_Datatype, void *, const int *, const int *, MPI_Datatype, MPI_Comm);
static int (*p_bcast)(void *, int, MPI_Datatype, int, MPI_Comm);
static int (*p_barrier)(MPI_Comm);
static int (*p_abort)(MPI_Comm, int);

int jem_mpi_open(char *error, int length) {
    if (library) return 0;
    const char *names[] = {"libmpi.so.40", "libmpi.so"};
    void *handle = NULL;
    for (int i = 0; i < 2 && !handle; i++) handle = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!handle) {
        snprintf(error, length, "cannot load Open MPI (libmpi.so.40): %s", dlerror());
        return -1;
    }
#define RESOLVE(target, name) \
    if (!(*(void **)&(target) = dlsym(handle, name))) { \
        snprintf(error, length, "libmpi lacks %s (not Open MPI 4?)", name); \
        return -1; \
    }
    RESOLVE(world, "ompi_mpi_comm_world")
    RESOLVE(type_float, "ompi_mpi_float")
    RESOLVE(type_double, "ompi_mpi_double")
    RESOLVE(type_byte, "ompi_mpi_byte")
    RESOLVE(type_int, "ompi_mpi_int")
    RESOLVE(op_sum, "ompi_mpi_op_sum")
    RESOLVE(op_max, "ompi_mpi_op_max")
    RESOLVE(p_init_thread, "MPI_Init_thread")
    RESOLVE(p_finalize, "MPI_Finalize")
    RESOLVE(p_comm_size, "MPI_Comm_size")
    RESOLVE(p_comm_rank, "MPI_Comm_rank")
    RESOLVE(p_allreduce, "MPI_Allreduce")
    RESOLVE(p_allgatherv, "MPI_Allgatherv")
    RESOLVE(p_bcast, "MPI_Bcast")
    RESOLVE(p_barrier, "MPI_Barrier")
    RESOLVE(p_abort, "MPI_Abort")
#undef RESOLVE
    library = handle;
    return 0;
}

MPI_Comm jem_mpi_comm_world(void) { return (MPI_Comm)world; }
MPI_Datatype jem_mpi_float(void) { return (MPI_Datatype)type_float; }
MPI_Datatype jem_mpi_double(void) { return (MPI_Datatype)type_double; }
MPI_Datatype jem_mpi_byte(void) { return (MPI_Datatype)type_byte; }
MPI_Datatype jem_mpi_int(void) { return (MPI_Datatype)type_int; }
MPI_Op jem_mpi_sum(void) { return (MPI_Op)op_sum; }
MPI_Op jem_mpi_max(void) { return (MPI_Op)op_max; }
void *jem_mpi_in_place(void) { return MPI_IN_PLACE; }
int jem_mpi_success(void) { return MPI_SUCCESS; }
int jem_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

int jem_MPI_Init_thread(int required, int *provided) { return p_init_thread(NULL, NULL, required, provided); }
int jem_MPI_Finalize(void) { return p_finalize(); }
int jem_MPI_Comm_size(MPI_Comm comm, int *size) { return p_comm_size(comm, size); }
int jem_MPI_Comm_rank(MPI_Comm comm, int *rank) { return p_comm_rank(comm, rank); }
int jem_MPI_Allreduce(const void *send, void *receive, int count, MPI_Datatype type, MPI_Op op, MPI_Comm comm) {
    return p_allreduce(send, receive, count, type, op, comm);
}
int jem_MPI_Allgatherv(const void *send, int sendCount, MPI_Datatype sendType, void *receive,
                       const int *receiveCounts, const int *displacements, MPI_Datatype receiveType, MPI_Comm comm) {
    return p_allgatherv(send, sendCount, sendType, receive, receiveCounts, displacements, receiveType, comm);
}
int jem_MPI_Bcast(void *buffer, int count, MPI_Datatype type, int root, MPI_Comm comm) {
    return p_bcast(buffer, count, type, root, comm);
}
int jem_MPI_Barrier(MPI_Comm comm) { return p_barrier(comm); }
int jem_MPI_Abort(MPI_Comm comm, int code) { return p_abort(comm, code); }

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
