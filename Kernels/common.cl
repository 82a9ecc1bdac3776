// Helpers shared by several kernel files, included with #include "common.cl" (CLKernels inlines
// each included file once, since OpenCL compilers see one string and no file system).
#ifndef JEM_COMMON_CL
#define JEM_COMMON_CL

// Swift's generic min/max (`y < x ? y : x`, `y >= x ? y : x`), so NaN behaves as on the CPU.
inline float swift_min(float x, float y) { return y < x ? y : x; }
inline float swift_max(float x, float y) { return y >= x ? y : x; }

#endif
