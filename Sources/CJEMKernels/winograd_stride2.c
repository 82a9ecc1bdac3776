/* Winograd for 3x3, stride-2, padding-1 convolutions (see CJEMKernels.h for the pipeline).

   Along one axis, output o reads inputs 2o-1, 2o, 2o+1 with taps w0, w1, w2: the even input 2o
   alone (tap w1) plus a 2-tap correlation of the odd inputs 2o-1, 2o+1 (taps w0, w2). For a tile
   of 4 outputs the 9 inputs d0..d8 (d_j = x[2*o0 - 1 + j]) become 9 transform points: 4 for the
   even inputs d1, d3, d5, d7 as they are, and 5 for Winograd F(4,2) on the odd ones
   e = (d0, d2, d4, d6, d8), with the interpolation points 0, 1, -1, 2, infinity:

     B^T = [ 2 -1 -2  1 0;  0  2  1 -1 0;  0 -2  3 -1 0;  0 -1  0  1 0;  0  2 -1 -2 1 ]
     G   = [ 1/2 0; 1/2 1/2; 1/6 -1/6; 1/6 1/3; 0 1 ]        (applied to (w0, w2))
     A^T = [ 1 1 1 1 0;  0 1 -1 2 0;  0 1 1 4 0;  0 1 -1 8 1 ]

   so y_i = q_i * w1 + (A^T [(G g) . (B^T e)])_i. In 2D the 9 x 9 = 81 points per tile of 4x4
   outputs give 81 GEMMs ([tiles][C] x [C][K]): 81/16 = 5.1 multiplies per output and input
   channel instead of 9 (the 16 points of two even axes are the 1x1 conv of the (even, even)
   pixels with the centre tap).

   Backward data is the transposed operation: along one axis dx[2o] = w1 dy[o] and
   dx[2o+1] = w2 dy[o] + w0 dy[o+1], a 2-tap correlation of dy with (w2, w0), i.e. the same
   filter transform of the flipped filter. A tile of 8 input-gradient pixels (2*o0 .. 2*o0+7)
   reads dy[o0 .. o0+4]: points 0..3 are dy[o0 .. o0+3] as they are, points 4..8 B^T of all 5;
   the output transform gives dx[2*o0 + 2i] = point i and dx[2*o0 + 2i + 1] = (A^T points 4..8)_i.

   Layouts as in winograd.c: channels last, 16-channel vectors, tile t point p of V (M) at
   t*tstride + p*pstride. */
#include "CJEMKernels.h"
#include <string.h>
#include "winograd_rows.h"

/* B^T of F(4,2) on e0..e4 into q[4..8]. */
#define ODD_INPUT(q, e0, e1, e2, e3, e4) do { \
    q[4] = 2 * ((e0) - (e2)) + ((e3) - (e1)); \
    q[5] = 2 * (e1) + ((e2) - (e3)); \
    q[6] = 3 * (e2) - 2 * (e1) - (e3); \
    q[7] = (e3) - (e1); \
    q[8] = 2 * ((e1) - (e3)) + ((e4) - (e2)); } while (0)

/* The 9 filter points of one axis from the taps (t0, t1, t2). */
#define FILTER_AXIS(f, t0, t1, t2) do { \
    f[0] = f[1] = f[2] = f[3] = (t1); \
    f[4] = 0.5f * (t0); \
    f[5] = 0.5f * ((t0) + (t2)); \
    f[6] = (1.0f / 6) * ((t0) - (t2)); \
    f[7] = (1.0f / 6) * (t0) + (1.0f / 3) * (t2); \
    f[8] = (t2); } while (0)

/* U[p][r][q] for p = 9*a + b < 81 and rows first <= r < last, as jem_wino_filter (backward:
   rows = cout, the filter flipped and transposed). */
CLONES void jem_wino2_filter(const float *w, int cout, int cin, int backward, int kp, int first, int last, float *u) {
    int rows = backward ? cout : cin, cols = backward ? cin : cout;
    size_t ps = (size_t)rows * kp;
    for (int r = first; r < last; r++) for (int q0 = 0; q0 < kp; q0 += 16) {
        float tap[9][16];
        for (int l = 0; l < 16; l++) {
            int q = q0 + l;
            for (int a = 0; a < 9; a++)
                tap[a][l] = q >= cols ? 0 : backward ? w[((size_t)r * cin + q) * 9 + 8 - a] : w[((size_t)q * cin + r) * 9 + a];
        }
        v16 t[9][3];
        for (int b = 0; b < 3; b++) {
            v16 f[9];
            FILTER_AXIS(f, ld(tap[b]), ld(tap[3 + b]), ld(tap[6 + b]));
            for (int a = 0; a < 9; a++) t[a][b] = f[a];
        }
        float *out = u + (size_t)r * kp + q0;
        for (int a = 0; a < 9; a++) {
            v16 f[9];
            FILTER_AXIS(f, t[a][0], t[a][1], t[a][2]);
            for (int b = 0; b < 9; b++) st(out + (size_t)(9 * a + b) * ps, f[b]);
        }
    }
}

/* The 9 transform points of one axis of the forward input window d0..d8 (a macro: vector
   arguments of inline functions trip clang's ABI check in the baseline clone). */
#define FORWARD_AXIS(q, d0, d1, d2, d3, d4, d5, d6, d7, d8) do { \
    q[0] = (d1); q[1] = (d3); q[2] = (d5); q[3] = (d7); \
    ODD_INPUT(q, d0, d2, d4, d6, d8); } while (0)

/* Forward: x (nb images of c channels, h x w) -> V for every tile of 4x4 outputs,
   t = (n*th + ty)*tw + tx. The 9 input rows 8*ty - 1 .. 8*ty + 7 of a tile row are packed
   channels last into `band` (9 * (8*tw + 1) * cp floats; band column j is input column j - 1),
   the last one kept for the next tile row. leaky: the input goes through the leaky ReLU on the way. */
CLONES void jem_wino2_pack_input(const float *x, int nb, int c, int h, int w, int cp, int th, int tw, int leaky,
                                 float slope, unsigned short *signs, float *band, float *v, size_t tstride,
                                 size_t pstride) {
    int pw = 8 * tw + 1;
    size_t rowstride = (size_t)pw * cp, plane = (size_t)h * w, signPlane = (size_t)h * SIGN_WORDS(w);
    for (int n = 0; n < nb; n++) {
        const float *src = x + (size_t)n * c * plane;
        unsigned short *sg = signs ? signs + (size_t)n * c * signPlane : 0;
        for (int ty = 0; ty < th; ty++) {
            int first = 0;
            if (ty > 0) { memmove(band, band + 8 * rowstride, sizeof(float) * rowstride); first = 1; }
            for (int r = first; r < 9; r++) {
                int iy = 8 * ty - 1 + r;
                int inside = iy >= 0 && iy < h;
                pack_row(inside ? src + (size_t)iy * w : 0, c, plane, w, pw, cp, leaky, slope,
                         sg && inside ? sg + (size_t)iy * SIGN_WORDS(w) : 0, signPlane, band + r * rowstride);
            }
            float *vrow = v + ((size_t)n * th + ty) * tw * tstride;
            for (int tx = 0; tx < tw; tx++) {
                const float *base = band + (size_t)8 * tx * cp;
                for (int c0 = 0; c0 < cp; c0 += 16) {
                    v16 m[9][9];
                    for (int j = 0; j < 9; j++) {
                        const float *col = base + (size_t)j * cp + c0;
                        v16 q[9];
                        FORWARD_AXIS(q, ld(col), ld(col + rowstride), ld(col + 2 * rowstride),
                                     ld(col + 3 * rowstride), ld(col + 4 * rowstride), ld(col + 5 * rowstride),
                                     ld(col + 6 * rowstride), ld(col + 7 * rowstride), ld(col + 8 * rowstride));
                        for (int i = 0; i < 9; i++) m[i][j] = q[i];
                    }
                    float *out = vrow + (size_t)tx * tstride + c0;
                    for (int i = 0; i < 9; i++) {
                        v16 q[9];
                        FORWARD_AXIS(q, m[i][0], m[i][1], m[i][2], m[i][3], m[i][4], m[i][5], m[i][6], m[i][7], m[i][8]);
                        for (int j = 0; j < 9; j++) st(out + (size_t)(9 * i + j) * pstride, q[j]);
                    }
                }
            }
        }
    }
}

/* Backward data: dy (nb images of c = cout channels, oh x ow) -> V for every tile of 8x8 input
   pixels (th x tw tiles over the h x w input). The 5 dy rows 4*ty .. 4*ty + 4 of a tile row are
   packed channels last into `band` (5 * (4*tw + 2) * cp floats; band column j is dy column j - 1),
   the last one kept for the next tile row. */
CLONES void jem_wino2_pack_input_backward(const float *dy, int nb, int c, int oh, int ow, int cp, int th, int tw,
                                          float *band, float *v, size_t tstride, size_t pstride) {
    int pw = 4 * tw + 2;
    size_t rowstride = (size_t)pw * cp, plane = (size_t)oh * ow;
    for (int n = 0; n < nb; n++) {
        const float *src = dy + (size_t)n * c * plane;
        for (int ty = 0; ty < th; ty++) {
            int first = 0;
            if (ty > 0) { memmove(band, band + 4 * rowstride, sizeof(float) * rowstride); first = 1; }
            for (int r = first; r < 5; r++) {
                int iy = 4 * ty + r;
                pack_row(iy < oh ? src + (size_t)iy * ow : 0, c, plane, ow, pw, cp, 0, 0, 0, 0, band + r * rowstride);
            }
            float *vrow = v + ((size_t)n * th + ty) * tw * tstride;
            for (int tx = 0; tx < tw; tx++) {
                const float *base = band + (size_t)(4 * tx + 1) * cp;
                for (int c0 = 0; c0 < cp; c0 += 16) {
                    v16 m[9][5];
                    for (int j = 0; j < 5; j++) {
                        const float *col = base + (size_t)j * cp + c0;
                        v16 e0 = ld(col), e1 = ld(col + rowstride), e2 = ld(col + 2 * rowstride);
                        v16 e3 = ld(col + 3 * rowstride), e4 = ld(col + 4 * rowstride);
                        v16 q[9];
                        q[0] = e0; q[1] = e1; q[2] = e2; q[3] = e3;
                        ODD_INPUT(q, e0, e1, e2, e3, e4);
                        for (int i = 0; i < 9; i++) m[i][j] = q[i];
                    }
                    float *out = vrow + (size_t)tx * tstride + c0;
                    for (int i = 0; i < 9; i++) {
                        v16 q[9];
                        q[0] = m[i][0]; q[1] = m[i][1]; q[2] = m[i][2]; q[3] = m[i][3];
                        ODD_INPUT(q, m[i][0], m[i][1], m[i][2], m[i][3], m[i][4]);
                        for (int j = 0; j < 9; j++) st(out + (size_t)(9 * i + j) * pstride, q[j]);
                    }
                }
            }
        }
    }
}

/* A^T of F(4,2) on q[4..8]: the odd part of the 4 outputs. */
#define ODD_OUTPUT(o, q) do { \
    v16 a_ = q[5] + q[6], b_ = q[5] - q[6]; \
    o[0] = q[4] + a_ + q[7]; \
    o[1] = b_ + 2 * q[7]; \
    o[2] = a_ + 4 * q[7]; \
    o[3] = b_ + 8 * q[7] + q[8]; } while (0)

/* Forward: M (tile tx of a tile row at m + tx*tstride, point p at p*pstride) -> y (+ bias) (+ addend),
   4 output rows per tile row through `band` (4 * 4*tw * kp floats), as jem_wino_output_unpack. */
CLONES void jem_wino2_output_unpack(const float *m, int nb, int k, int oh, int ow, int kp, int th, int tw,
                                    size_t tstride, size_t pstride, const float *bias, const float *addend,
                                    int stream, float *band, float *y) {
    size_t plane = (size_t)oh * ow, rowstride = (size_t)4 * tw * kp;
    for (int n = 0; n < nb; n++) for (int ty = 0; ty < th; ty++) {
        const float *mrow = m + ((size_t)n * th + ty) * tw * tstride;
        for (int tx = 0; tx < tw; tx++) {
            const float *in = mrow + (size_t)tx * tstride;
            float *base = band + (size_t)4 * tx * kp;
            for (int k0 = 0; k0 < kp; k0 += 16) {
                v16 r[4][9];
                for (int j = 0; j < 9; j++) {
                    v16 q[9], o[4];
                    for (int i = 0; i < 9; i++) q[i] = ld(in + (size_t)(9 * i + j) * pstride + k0);
                    ODD_OUTPUT(o, q);
                    for (int i = 0; i < 4; i++) r[i][j] = q[i] + o[i];
                }
                for (int i = 0; i < 4; i++) {
                    v16 o[4];
                    ODD_OUTPUT(o, r[i]);
                    float *row = base + (size_t)i * rowstride + k0;
                    for (int l = 0; l < 4; l++) st(row + (size_t)l * kp, r[i][l] + o[l]);
                }
            }
        }
        int rows = oh - 4 * ty < 4 ? oh - 4 * ty : 4;
        size_t offset = (size_t)n * k * plane + (size_t)4 * ty * ow;
        unpack_rows(band, rowstride, rows, k, plane, ow, kp, bias, 0, 0, 0, 0, addend ? addend + offset : 0, stream,
                    y + offset);
    }
#if defined(__x86_64__)
    if (stream) __builtin_ia32_sfence();
#endif
}

/* Backward data: M -> dx = the 8x8 input-gradient pixels of every tile, times the leaky
   ReLU's derivative at gate when given, (+ addend), 8 rows per tile row through `band` (8 * 8*tw * kp floats). */
CLONES void jem_wino2_output_unpack_backward(const float *m, int nb, int k, int h, int w, int kp, int th, int tw,
                                             size_t tstride, size_t pstride, const float *gate,
                                             const unsigned short *signs, float slope, const float *addend,
                                             int stream, float *band, float *dx) {
    size_t plane = (size_t)h * w, rowstride = (size_t)8 * tw * kp, signPlane = (size_t)h * SIGN_WORDS(w);
    for (int n = 0; n < nb; n++) for (int ty = 0; ty < th; ty++) {
        const float *mrow = m + ((size_t)n * th + ty) * tw * tstride;
        for (int tx = 0; tx < tw; tx++) {
            const float *in = mrow + (size_t)tx * tstride;
            float *base = band + (size_t)8 * tx * kp;
            for (int k0 = 0; k0 < kp; k0 += 16) {
                v16 r[8][9];
                for (int j = 0; j < 9; j++) {
                    v16 q[9], o[4];
                    for (int i = 0; i < 9; i++) q[i] = ld(in + (size_t)(9 * i + j) * pstride + k0);
                    ODD_OUTPUT(o, q);
                    for (int i = 0; i < 4; i++) { r[2 * i][j] = q[i]; r[2 * i + 1][j] = o[i]; }
                }
                for (int i = 0; i < 8; i++) {
                    v16 o[4];
                    ODD_OUTPUT(o, r[i]);
                    float *row = base + (size_t)i * rowstride + k0;
                    for (int l = 0; l < 4; l++) {
                        st(row + (size_t)(2 * l) * kp, r[i][l]);
                        st(row + (size_t)(2 * l + 1) * kp, o[l]);
                    }
                }
            }
        }
        int rows = h - 8 * ty < 8 ? h - 8 * ty : 8;
        size_t offset = (size_t)n * k * plane + (size_t)8 * ty * w;
        unpack_rows(band, rowstride, rows, k, plane, w, kp, 0, gate ? gate + offset : 0,
                    signs ? signs + ((size_t)n * k * h + 8 * ty) * SIGN_WORDS(w) : 0, signPlane, slope,
                    addend ? addend + offset : 0, stream, dx + offset);
    }
#if defined(__x86_64__)
    if (stream) __builtin_ia32_sfence();
#endif
}

/* Weight gradients. Along one axis dw[1] = sum_o dy[o] x[2o] and (dw[0], dw[2]) the correlation
   of the odd inputs with dy: by the transposition principle the gradient of the forward bilinear
   form y = q w1 + A^T [(G g) . (B^T e)] is dw1 = sum_i dy_i q_i and dg = G^T [(A dy) . (B^T e)].
   The input side is the forward transform (jem_wino2_pack_input); the output-gradient side has
   the same 9 points: dy_0..dy_3 as they are, then A dy = (dy0, dy0+dy1+dy2+dy3, dy0-dy1+dy2-dy3,
   dy0+2dy1+4dy2+8dy3, dy3); the sum over tiles is 81 GEMMs; then per axis dw1 = P0+P1+P2+P3 and
   (dw0, dw2) = G^T (P4..P8) = ((P4+P5)/2 + (P6+P7)/6, P5/2 - P6/6 + P7/3 + P8). */

/* The 9 points of one axis of 4 output-gradient values. */
#define GRAD_AXIS(q, g0, g1, g2, g3) do { \
    q[0] = (g0); q[1] = (g1); q[2] = (g2); q[3] = (g3); \
    q[4] = (g0); \
    q[5] = ((g0) + (g2)) + ((g1) + (g3)); \
    q[6] = ((g0) + (g2)) - ((g1) + (g3)); \
    q[7] = ((g0) + 4 * (g2)) + 2 * ((g1) + 4 * (g3)); \
    q[8] = (g3); } while (0)

/* D[p][t][kp] (p stride pstride, tile t at t*kp) for the tiles of 4x4 outputs of dp, the output
   gradient packed by jem_wino_pack (one pixel of border: tile (ty, tx) starts at dp[4ty+1][4tx+1]). */
CLONES void jem_wino2_grad_output(const float *dp, int nb, int th, int tw, int kp, float *d, size_t pstride) {
    int ph = 4 * th + 2, pw = 4 * tw + 2;
    for (int n = 0; n < nb; n++) for (int ty = 0; ty < th; ty++) for (int tx = 0; tx < tw; tx++) {
        size_t t = ((size_t)n * th + ty) * tw + tx;
        const float *base = dp + (((size_t)n * ph + 4 * ty + 1) * pw + 4 * tx + 1) * kp;
        for (int k0 = 0; k0 < kp; k0 += 16) {
            v16 m[9][4];
            for (int j = 0; j < 4; j++) {
                v16 q[9];
                GRAD_AXIS(q, ld(base + ((size_t)0 * pw + j) * kp + k0), ld(base + ((size_t)1 * pw + j) * kp + k0),
                          ld(base + ((size_t)2 * pw + j) * kp + k0), ld(base + ((size_t)3 * pw + j) * kp + k0));
                for (int i = 0; i < 9; i++) m[i][j] = q[i];
            }
            float *out = d + t * kp + k0;
            for (int i = 0; i < 9; i++) {
                v16 q[9];
                GRAD_AXIS(q, m[i][0], m[i][1], m[i][2], m[i][3]);
                for (int j = 0; j < 9; j++) st(out + (size_t)(9 * i + j) * pstride, q[j]);
            }
        }
    }
}

/* The 3 taps of one axis from its 9 points (G^T, and the sum of the even points). */
#define TAPS_AXIS(t, p) do { \
    t[0] = 0.5f * ((p)[4] + (p)[5]) + (1.0f / 6) * ((p)[6] + (p)[7]); \
    t[1] = ((p)[0] + (p)[1]) + ((p)[2] + (p)[3]); \
    t[2] = 0.5f * (p)[5] - (1.0f / 6) * (p)[6] + (1.0f / 3) * (p)[7] + (p)[8]; } while (0)

/* dw[k][c][3][3] (+)= H P[.][k][c] H^T for P[p][k][c] (p = 9*a + b < 81, ld = cin). */
CLONES void jem_wino2_filter_grad(const float *prod, int cout, int cin, int accumulate, float *dw) {
    size_t ps = (size_t)cout * cin;
    for (size_t e = 0; e < ps; e++) {
        float r[3][9];
        for (int b = 0; b < 9; b++) {
            float p[9], t[3];
            for (int a = 0; a < 9; a++) p[a] = prod[(size_t)(9 * a + b) * ps + e];
            TAPS_AXIS(t, p);
            for (int i = 0; i < 3; i++) r[i][b] = t[i];
        }
        float *out = dw + e * 9;
        for (int i = 0; i < 3; i++) {
            float t[3];
            TAPS_AXIS(t, r[i]);
            for (int j = 0; j < 3; j++) out[3 * i + j] = accumulate ? out[3 * i + j] + t[j] : t[j];
        }
    }
}
