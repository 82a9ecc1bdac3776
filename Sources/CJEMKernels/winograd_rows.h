/* The channels-first <-> channels-last row conversions that the Winograd pipelines share
   (winograd.c: 3x3 stride 1; winograd_stride2.c: 3x3 stride 2), with the vector types, loads,
   stores, leaky-ReLU selects (clones.h) and register transposes (transpose16.h) they use. */
#ifndef JEM_WINOGRAD_ROWS_H
#define JEM_WINOGRAD_ROWS_H
#include <string.h>
#include "clones.h"
#include "transpose16.h"

#define st(p, v) (*(v16 *)(p) = (v))
#define INLINE static inline __attribute__((always_inline))

/* The signs of an activation's input (ActivationSigns in Backend.swift): bit x % 16 of word
   signs[((n*c + ch)*h + y)*SIGN_WORDS(w) + x/16] is set where x[n][ch][y][x] > 0, the leaky ReLU's
   derivative in 1/32 of the input's bytes. Words never span two rows, so threads that own
   different images (or rows) never write the same word. */
#define SIGN_WORDS(w) (((w) + 15) / 16)
/* 16 lanes of bool: a compare into a mask register and back (kmov / movmsk, not a reduction). */
typedef _Bool b16 __attribute__((ext_vector_type(16)));
/* The 16 bits of v > 0 (NaN: 0, as the leaky ReLU's x > 0). */
#define SIGNS_OF(v) (__builtin_bit_cast(unsigned short, __builtin_convertvector((v) > 0, b16)))
/* g where the word's bit is set, g * slope elsewhere: LEAKY_GRAD with the signs instead of x (a
   macro: vector arguments of inline functions trip clang's ABI check in the baseline clone). */
#define LEAKY_GRAD_SIGNS(word, g, slope) ({ \
    i16 set_ = -__builtin_convertvector(__builtin_bit_cast(b16, (unsigned short)(word)), i16); \
    (v16)((set_ & (i16)(g)) | (~set_ & (i16)((g) * (slope)))); })

/* One row of an image's channels-last copy with one pixel of zero padding on the left (see
   jem_wino_pack): row[1 + ix][ch] = s[ch*plane + ix] (channels plane floats apart; through the
   leaky ReLU with `leaky`), zero up to pw pixels and cp channels; s NULL: a row of zeros.
   signs (with leaky, or NULL): this row's sign words of channel 0, channels signPlane words apart,
   receive the signs of the row (before the activation). */
INLINE void pack_row(const float *s, int c, size_t plane, int w, int pw, int cp, int leaky, float slope,
                     unsigned short *signs, size_t signPlane, float *row) {
    int full = w / 16 * 16;
    if (!s) { memset(row, 0, sizeof(float) * (size_t)pw * cp); return; }
    memset(row, 0, sizeof(float) * cp);
    memset(row + (size_t)(w + 1) * cp, 0, sizeof(float) * (size_t)(pw - w - 1) * cp);
    for (int c0 = 0; c0 < cp; c0 += 16) {
        for (int x0 = 0; x0 < full; x0 += 16) {
            v16 r[16];
            /* 16 channel planes at a time are too many streams for the hardware prefetcher:
               ask for the same pixels of the next row (the caller's next call; a prefetch past
               the buffer's end never faults). In-model, the packs of the 16 MB tensors (64
               channels at 32x32) went from ~4.6 to ~3.4 thread-ms per SGLD step each. */
            for (int i = 0; i < 16 && c0 + i < c; i++) __builtin_prefetch(s + (size_t)(c0 + i) * plane + x0 + w, 0, 3);
            for (int i = 0; i < 16; i++) r[i] = c0 + i < c ? ld(s + (size_t)(c0 + i) * plane + x0) : (v16){0};
            if (signs) for (int i = 0; i < 16 && c0 + i < c; i++) signs[(size_t)(c0 + i) * signPlane + x0 / 16] = SIGNS_OF(r[i]);
            if (leaky) for (int i = 0; i < 16; i++) r[i] = LEAKY(r[i], slope);
            TRANSPOSE16(r);
            for (int j = 0; j < 16; j++) st(row + (size_t)(1 + x0 + j) * cp + c0, r[j]);
        }
        if (full == w) continue;
        for (int i = 0; i < 16; i++) {
            unsigned short word = 0;
            for (int ix = full; ix < w; ix++) {
                float v = c0 + i < c ? s[(size_t)(c0 + i) * plane + ix] : 0;
                if (v > 0) word |= (unsigned short)(1u << (ix % 16));
                row[(size_t)(1 + ix) * cp + c0 + i] = leaky ? (v > 0 ? v : slope * v) : v;
            }
            if (signs && c0 + i < c) signs[(size_t)(c0 + i) * signPlane + full / 16] = word;
        }
    }
}

/* `rows` output rows of one image: y[k][oy][ox] = s[oy][ox][k] (+ bias[k]) (+ addend[k][oy][ox])
   (s rows srow floats apart; y, gate and addend rows w floats apart, channels plane floats apart;
   addend NULL: nothing, y: accumulate), see jem_wino_unpack. signs (or NULL): the first row's
   sign words of channel 0 (channels signPlane words apart), used instead of gate. */
INLINE void unpack_rows(const float *src, size_t srow, int rows, int k, size_t plane, int w, int kp,
                        const float *bias, const float *gate, const unsigned short *signs, size_t signPlane,
                        float slope, const float *addend, int stream, float *y) {
    int full = w / 16 * 16;
    for (int oy = 0; oy < rows; oy++) {
        const float *s = src + (size_t)oy * srow;
        float *d = y + (size_t)oy * w;
        const float *gd = gate && !signs ? gate + (size_t)oy * w : 0;
        const unsigned short *sg = signs ? signs + (size_t)oy * SIGN_WORDS(w) : 0;
        const float *ad = addend ? addend + (size_t)oy * w : 0;
        for (int c0 = 0; c0 < k; c0 += 16) {
            int lanes = k - c0 < 16 ? k - c0 : 16;
            for (int x0 = 0; x0 < full; x0 += 16) {
                v16 r[16];
                for (int j = 0; j < 16; j++) r[j] = ld(s + (size_t)(x0 + j) * kp + c0);
                TRANSPOSE16(r);
                /* As in pack_row: the next row's gate and added pixels, 16 planes apart. */
                if (gd) for (int i = 0; i < lanes; i++) __builtin_prefetch(gd + (size_t)(c0 + i) * plane + x0 + w, 0, 3);
                if (ad) for (int i = 0; i < lanes; i++) __builtin_prefetch(ad + (size_t)(c0 + i) * plane + x0 + w, 0, 3);
                for (int i = 0; i < lanes; i++) {
                    float *o = d + (size_t)(c0 + i) * plane + x0;
                    v16 v = r[i] + (bias ? bias[c0 + i] : 0.0f);
                    if (sg) v = LEAKY_GRAD_SIGNS(sg[(size_t)(c0 + i) * signPlane + x0 / 16], v, slope);
                    if (gd) v = LEAKY_GRAD(ld(gd + (size_t)(c0 + i) * plane + x0), v, slope);
                    if (ad) v = ld(ad + (size_t)(c0 + i) * plane + x0) + v;
                    if (stream && ((size_t)o & 63) == 0) __builtin_nontemporal_store((v16a)v, (v16a *)o);
                    else st(o, v);
                }
            }
            for (int i = 0; i < lanes; i++) {
                float b = bias ? bias[c0 + i] : 0;
                float *o = d + (size_t)(c0 + i) * plane;
                const float *a = ad ? ad + (size_t)(c0 + i) * plane : 0;
                for (int ox = full; ox < w; ox++) {
                    float v = s[(size_t)ox * kp + c0 + i] + b;
                    if (sg) v = v * ((sg[(size_t)(c0 + i) * signPlane + ox / 16] >> (ox % 16)) & 1 ? 1.0f : slope);
                    if (gd) v = v * (gd[(size_t)(c0 + i) * plane + ox] > 0 ? 1.0f : slope);
                    o[ox] = a ? a[ox] + v : v;
                }
            }
        }
    }
}

#endif
