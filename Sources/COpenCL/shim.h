#ifndef COPENCL_SHIM_H
#define COPENCL_SHIM_H
// OpenCL 3.0 headers; the backend only uses 1.2-level features plus
// clCreateCommandQueueWithProperties, which every 2.0+ ICD loader exports.
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 300
#endif
#include <CL/cl.h>
#endif
