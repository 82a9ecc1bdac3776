#ifndef CBLAS_SHIM_H
#define CBLAS_SHIM_H
// OpenBLAS's cblas.h (found through pkg-config openblas) also declares
// openblas_set_num_threads and openblas_get_corename, which CPUBackend uses.
#include <cblas.h>
#endif
