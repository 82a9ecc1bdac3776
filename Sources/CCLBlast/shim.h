#ifndef CCLBLAST_SHIM_H
#define CCLBLAST_SHIM_H
// clblast_c.h includes <CL/opencl.h> itself, so the target version must be set first.
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 300
#endif
#include <clblast_c.h>
#endif
