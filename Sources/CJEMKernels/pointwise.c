/* Pointwise loops of the CPU backend. Written as plain loops without branches in the element
   loops, so that the compiler vectorises them for each of the three instruction sets (see
   CJEMKernels.h); every element is computed the same way in each clone, so results do not depend
   on how the caller splits the range. */
#include "CJEMKernels.h"
#include "clones.h"
#include <string.h>

/* Outputs of at least this many floats per call are written with non-temporal stores: they
   leave the caches anyway before they are read again (an activation of the WideResNet at batch
   64 is 4-16 MB), and streaming them saves the read-for-ownership of every line. */
#define STREAM_MIN ((size_t)1 << 18)

static inline void fence(void) {
#if defined(__x86_64__)
    __builtin_ia32_sfence();
#endif
}


/* The first index from which y + i is 64-byte aligned (at most n). */
static inline size_t aligned_start(const float *y, size_t n) {
    size_t misalignment = ((size_t)y & 63) / sizeof(float);
    size_t head = misalignment ? 16 - misalignment : 0;
    return ((size_t)y & 3) ? n : (head < n ? head : n);
}

CLONES void jem_leaky_relu_forward(const float *x, float *y, size_t n, float slope) {
    size_t i = 0;
    if (n >= STREAM_MIN) {
        size_t head = aligned_start(y, n);
        for (; i < head; i++) { float v = x[i]; y[i] = v > 0 ? v : slope * v; }
        for (; i + 16 <= n; i += 16) { v16 v = ld(x + i); __builtin_nontemporal_store((v16a)LEAKY(v, slope), (v16a *)(y + i)); }
        fence();
    }
    for (; i < n; i++) {
        float v = x[i];
        y[i] = v > 0 ? v : slope * v;
    }
}

CLONES void jem_leaky_relu_backward(const float *x, const float *gy, float *gx, size_t n, float slope,
                                    int accumulate) {
    if (accumulate) {
        for (size_t i = 0; i < n; i++) gx[i] += gy[i] * (x[i] > 0 ? 1.0f : slope);
        return;
    }
    size_t i = 0;
    if (n >= STREAM_MIN) {
        size_t head = aligned_start(gx, n);
        for (; i < head; i++) gx[i] = gy[i] * (x[i] > 0 ? 1.0f : slope);
        for (; i + 16 <= n; i += 16) {
            v16 v = ld(x + i), g = ld(gy + i);
            __builtin_nontemporal_store((v16a)LEAKY_GRAD(v, g, slope), (v16a *)(gx + i));
        }
        fence();
    }
    for (; i < n; i++) gx[i] = gy[i] * (x[i] > 0 ? 1.0f : slope);
}

CLONES void jem_axpby(float alpha, const float *x, float beta, float *y, size_t n) {
    if (beta == 0) {
        for (size_t i = 0; i < n; i++) y[i] = alpha * x[i];
    } else if (alpha == 1 && beta == 1) {
        for (size_t i = 0; i < n; i++) y[i] = x[i] + y[i];
    } else {
        for (size_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * y[i];
    }
}

long jem_fetch_increment(long *counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }
