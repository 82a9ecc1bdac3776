/* The im2col / col2im layout changes of the CPU backend's convolutions (with the leaky ReLU of a
   pre-activation block applied on the way when asked), cloned for each instruction set like the
   pointwise loops (see CJEMKernels.h). */
#include "CJEMKernels.h"
#include "clones.h"
#include <string.h>

/* The output columns ox whose input column ox*stride - pad + kx lies inside 0 ..< w. */
static inline void valid_range(int ow, int w, int stride, int pad, int kx, int *lo, int *hi) {
    int a = pad - kx, b = w + pad - kx;   /* need a <= ox*stride < b */
    int l = a <= 0 ? 0 : (a + stride - 1) / stride;
    int h = b <= 0 ? 0 : (b + stride - 1) / stride;
    *lo = l < ow ? l : ow;
    *hi = h < ow ? h : ow;
    if (*hi < *lo) *hi = *lo;
}

typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef int i8 __attribute__((vector_size(32), aligned(4)));
#define ld8(p) (*(const v8 *)(p))
#define st8(p, v) (*(v8 *)(p) = (v))
#define LEAKY8(v, slope) ((v8)(((i8)((v) > 0) & (i8)(v)) | (~(i8)((v) > 0) & (i8)((slope) * (v)))))
#define LEAKY_GRAD8(x, g, slope) ((v8)(((i8)((x) > 0) & (i8)(g)) | (~(i8)((x) > 0) & (i8)((g) * (slope)))))

/* The three columns kx = 0, 1, 2 of a 3x3, stride-2, padding-1 conv read input columns
   2ox-1, 2ox, 2ox+1: the odd pixels shifted by one, the even pixels, the odd pixels. For rows of
   w = 2*ow pixels with ow a multiple of 8, each block of 16 pixels is split with two shuffles. */
static inline int fast_stride2(int k, int stride, int pad, int w, int ow) {
    return stride == 2 && w == 2 * ow && ow % 8 == 0 && ((k == 3 && pad == 1) || (k == 1 && pad == 0));
}

/* col[(ch*k + ky)*k + kx][oy*ow + ox] = image[ch][oy*stride - pad + ky][ox*stride - pad + kx] (0 outside);
   rows of col are ld floats apart (ld >= oh*ow: several images side by side). With `leaky`, the
   pixels go through the leaky ReLU (x > 0 ? x : slope * x) on the way. */
CLONES void jem_im2col(const float *image, int c, int h, int w, int k, int stride, int pad, int leaky, float slope,
                       float *col, size_t ld) {
    int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    if (fast_stride2(k, stride, pad, w, ow)) {
        for (int ch = 0; ch < c; ch++) for (int ky = 0; ky < k; ky++) {
            float *r0 = col + (size_t)(ch * k + ky) * k * ld;
            for (int oy = 0; oy < oh; oy++) {
                int iy = oy * 2 - pad + ky;
                float *d = r0 + (size_t)oy * ow;
                if (iy < 0 || iy >= h) {
                    for (int kx = 0; kx < k; kx++) memset(d + (size_t)kx * ld, 0, sizeof(float) * ow);
                    continue;
                }
                const float *s = image + ((size_t)ch * h + iy) * w;
                v8 previousOdd = {0};
                for (int x0 = 0; x0 < ow; x0 += 8) {
                    v8 a = ld8(s + 2 * x0), b = ld8(s + 2 * x0 + 8);
                    if (leaky) { a = LEAKY8(a, slope); b = LEAKY8(b, slope); }
                    v8 even = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
                    if (k == 1) { st8(d + x0, even); continue; }
                    v8 odd = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
                    st8(d + x0, __builtin_shufflevector(previousOdd, odd, 7, 8, 9, 10, 11, 12, 13, 14));
                    st8(d + ld + x0, even);
                    st8(d + 2 * ld + x0, odd);
                    previousOdd = odd;
                }
            }
        }
        return;
    }
    for (int ch = 0; ch < c; ch++) for (int ky = 0; ky < k; ky++) for (int kx = 0; kx < k; kx++) {
        const float *src = image + (size_t)ch * h * w;
        float *dst = col + ((size_t)(ch * k + ky) * k + kx) * ld;
        int lo, hi;
        valid_range(ow, w, stride, pad, kx, &lo, &hi);
        for (int oy = 0; oy < oh; oy++) {
            int iy = oy * stride - pad + ky;
            float *d = dst + (size_t)oy * ow;
            if (iy < 0 || iy >= h) { memset(d, 0, sizeof(float) * ow); continue; }
            const float *s = src + (size_t)iy * w + (kx - pad);
            for (int ox = 0; ox < lo; ox++) d[ox] = 0;
            if (leaky) {
                for (int ox = lo; ox < hi; ox++) { float v = s[(size_t)ox * stride]; d[ox] = v > 0 ? v : slope * v; }
            } else if (stride == 1) {
                memcpy(d + lo, s + lo, sizeof(float) * (size_t)(hi - lo));
            } else {
                for (int ox = lo; ox < hi; ox++) d[ox] = s[(size_t)ox * stride];
            }
            for (int ox = hi; ox < ow; ox++) d[ox] = 0;
        }
    }
}

int jem_col2im_gathers(int h, int w, int k, int stride, int pad) {
    int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    (void)oh;
    return fast_stride2(k, stride, pad, w, ow);
}

/* The adjoint of jem_im2col: image (+)= the sum of the col entries that read each pixel; with a
   gate (gathering shapes only, see jem_col2im_gathers), each pixel's sum is first multiplied by
   the leaky ReLU's derivative at the gate (gate > 0 ? 1 : slope). In the
   fast stride-2 case every image row is gathered once from the (ky, oy) rows that read it
   (no zeroing pass, one store per pixel): per block of 16 pixels the even ones come from kx = 1
   and the odd ones 2ox+1 from kx = 2 (at ox) and kx = 0 (at ox+1), interleaved by two shuffles. */
CLONES void jem_col2im(const float *col, int c, int h, int w, int k, int stride, int pad, const float *gate,
                       float slope, float *image, int accumulate, size_t ld) {
    int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    if (fast_stride2(k, stride, pad, w, ow)) {
        for (int ch = 0; ch < c; ch++) for (int iy = 0; iy < h; iy++) {
            float *d = image + ((size_t)ch * h + iy) * w;
            const float *g = gate ? gate + ((size_t)ch * h + iy) * w : 0;
            const float *sources[3];
            int count = 0;
            for (int ky = 0; ky < k; ky++) {
                int t = iy + pad - ky;
                if (t < 0 || (t & 1) || t / 2 >= oh) continue;
                sources[count++] = col + (size_t)(ch * k + ky) * k * ld + (size_t)(t / 2) * ow;
            }
            for (int x0 = 0; x0 < ow; x0 += 8) {
                v8 even = {0}, odd = {0};
                for (int q = 0; q < count; q++) {
                    const float *r0 = sources[q];
                    if (k == 1) { even += ld8(r0 + x0); continue; }
                    v8 next = x0 + 8 < ow ? ld8(r0 + x0 + 8) : (v8){0};
                    even += ld8(r0 + ld + x0);
                    odd += ld8(r0 + 2 * ld + x0) + __builtin_shufflevector(ld8(r0 + x0), next, 1, 2, 3, 4, 5, 6, 7, 8);
                }
                v8 lo = __builtin_shufflevector(even, odd, 0, 8, 1, 9, 2, 10, 3, 11);
                v8 hi = __builtin_shufflevector(even, odd, 4, 12, 5, 13, 6, 14, 7, 15);
                if (g) { lo = LEAKY_GRAD8(ld8(g + 2 * x0), lo, slope); hi = LEAKY_GRAD8(ld8(g + 2 * x0 + 8), hi, slope); }
                if (accumulate) { lo += ld8(d + 2 * x0); hi += ld8(d + 2 * x0 + 8); }
                st8(d + 2 * x0, lo);
                st8(d + 2 * x0 + 8, hi);
            }
        }
        return;
    }
    if (gate) __builtin_trap();   /* the caller checks jem_col2im_gathers first */
    if (!accumulate) memset(image, 0, sizeof(float) * (size_t)c * h * w);
    for (int ch = 0; ch < c; ch++) for (int ky = 0; ky < k; ky++) {
        float *dst = image + (size_t)ch * h * w;
        const float *rows = col + (size_t)(ch * k + ky) * k * ld;
        for (int oy = 0; oy < oh; oy++) {
            int iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= h) continue;
            float *d = dst + (size_t)iy * w;
            for (int kx = 0; kx < k; kx++) {
                const float *r = rows + (size_t)kx * ld + (size_t)oy * ow;
                int lo, hi;
                valid_range(ow, w, stride, pad, kx, &lo, &hi);
                float *base = d + (kx - pad);
                if (stride == 1) {
                    for (int ox = lo; ox < hi; ox++) base[ox] += r[ox];
                } else {
                    for (int ox = lo; ox < hi; ox++) base[(size_t)ox * stride] += r[ox];
                }
            }
        }
    }
}
