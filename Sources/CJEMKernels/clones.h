/* What the C kernels share: each public loop is compiled for AVX-512, AVX2 and baseline x86-64
   (picked at load time), and 16-lane vector types with unaligned loads. */
#ifndef JEM_CLONES_H
#define JEM_CLONES_H
#if defined(__x86_64__) && defined(__linux__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int i16 __attribute__((vector_size(64), aligned(4)));
typedef float v16a __attribute__((vector_size(64)));   /* 64-byte aligned, for streaming stores */
#define ld(p) (*(const v16 *)(p))

/* y = x > 0 ? x : slope * x, bit for bit as the scalar expression (NaN stays NaN). */
#define LEAKY(v, slope) ((v16)(((i16)((v) > 0) & (i16)(v)) | (~(i16)((v) > 0) & (i16)((slope) * (v)))))
#define LEAKY_GRAD(x, g, slope) ((v16)(((i16)((x) > 0) & (i16)(g)) | (~(i16)((x) > 0) & (i16)((g) * (slope)))))

#endif
