/* Winograd F(4x4, 3x3) transforms (see CJEMKernels.h for the pipeline and the layouts).
   The transforms vectorise over 16 channels (the channels-last layouts); the channel-first
   <-> channels-last conversions go through 16x16 register transposes. */
#include "CJEMKernels.h"
#include <string.h>
#include "winograd_rows.h"

/* xp[n][iy][ix][cp], iy < 4*th+2, ix < 4*tw+2: the image with one pixel of zero padding (more on the
   bottom/right when the tiles overhang), channels last and zero above c; with `leaky`, each pixel
   goes through the leaky ReLU first (x > 0 ? x : slope * x, as jem_leaky_relu_forward). 16x16 blocks go through
   registers (TRANSPOSE16); the pixels of a row beyond its last full block are copied one by one. */
CLONES void jem_wino_pack(const float *x, int nb, int c, int h, int w, int cp, int th, int tw, int leaky,
                          float slope, float *xp) {
    int ph = 4 * th + 2, pw = 4 * tw + 2;
    for (int n = 0; n < nb; n++) {
        float *dst = xp + (size_t)n * ph * pw * cp;
        const float *src = x + (size_t)n * c * h * w;
        for (int iy = 0; iy < ph; iy++)
            pack_row(iy >= 1 && iy <= h ? src + (size_t)(iy - 1) * w : 0, c, (size_t)h * w, w, pw, cp, leaky, slope,
                     0, 0, dst + (size_t)iy * pw * cp);
    }
}

/* U[p][r][q] = (G g G^T)[p] for the 16 filters q0..q0+15 of row r at a time, in float. */
CLONES void jem_wino_filter(const float *w, int cout, int cin, int backward, int kp, float *u) {
    int rows = backward ? cout : cin, cols = backward ? cin : cout;
    const float s6 = 1.0f / 6, s12 = 1.0f / 12, s24 = 1.0f / 24;
    for (int r = 0; r < rows; r++) for (int q0 = 0; q0 < kp; q0 += 16) {
        float tap[9][16];
        for (int l = 0; l < 16; l++) {
            int q = q0 + l;
            for (int a = 0; a < 9; a++)
                tap[a][l] = q >= cols ? 0 : backward ? w[((size_t)r * cin + q) * 9 + 8 - a] : w[((size_t)q * cin + r) * 9 + a];
        }
        v16 t[6][3];
        for (int b = 0; b < 3; b++) {
            v16 g0 = ld(tap[b]), g1 = ld(tap[3 + b]), g2 = ld(tap[6 + b]);
            t[0][b] = 0.25f * g0;
            t[1][b] = -s6 * (g0 + g1 + g2);
            t[2][b] = -s6 * (g0 - g1 + g2);
            t[3][b] = s24 * g0 + s12 * g1 + s6 * g2;
            t[4][b] = s24 * g0 - s12 * g1 + s6 * g2;
            t[5][b] = g2;
        }
        float *out = u + (size_t)r * kp + q0;
        size_t ps = (size_t)rows * kp;
        for (int i = 0; i < 6; i++) {
            v16 g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
            st(out + (6 * i + 0) * ps, 0.25f * g0);
            st(out + (6 * i + 1) * ps, -s6 * (g0 + g1 + g2));
            st(out + (6 * i + 2) * ps, -s6 * (g0 - g1 + g2));
            st(out + (6 * i + 3) * ps, s24 * g0 + s12 * g1 + s6 * g2);
            st(out + (6 * i + 4) * ps, s24 * g0 - s12 * g1 + s6 * g2);
            st(out + (6 * i + 5) * ps, g2);
        }
    }
}

/* The tiles of one tile row: v[p][tx][cp] (p stride pstride floats) = B^T d B, d the 6x6 window at
   column 4*tx of the 6 padded rows at `rows` (rowstride floats apart, channels last). */
INLINE void input_tiles(const float *rows, size_t rowstride, int tw, int cp, float *v, size_t tstride, size_t pstride) {
    for (int tx = 0; tx < tw; tx++) {
        const float *base = rows + (size_t)4 * tx * cp;
        for (int c0 = 0; c0 < cp; c0 += 16) {
            v16 m[6][6];
            for (int j = 0; j < 6; j++) {
                v16 d0 = ld(base + 0 * rowstride + (size_t)j * cp + c0), d1 = ld(base + 1 * rowstride + (size_t)j * cp + c0);
                v16 d2 = ld(base + 2 * rowstride + (size_t)j * cp + c0), d3 = ld(base + 3 * rowstride + (size_t)j * cp + c0);
                v16 d4 = ld(base + 4 * rowstride + (size_t)j * cp + c0), d5 = ld(base + 5 * rowstride + (size_t)j * cp + c0);
                m[0][j] = 4 * d0 - 5 * d2 + d4;
                m[1][j] = (d4 + d3) - 4 * (d1 + d2);
                m[2][j] = (d4 - d3) + 4 * (d1 - d2);
                m[3][j] = (d4 - d2) + 2 * (d3 - d1);
                m[4][j] = (d4 - d2) - 2 * (d3 - d1);
                m[5][j] = 4 * d1 - 5 * d3 + d5;
            }
            float *out = v + (size_t)tx * tstride + c0;
            for (int i = 0; i < 6; i++) {
                v16 d0 = m[i][0], d1 = m[i][1], d2 = m[i][2], d3 = m[i][3], d4 = m[i][4], d5 = m[i][5];
                st(out + (size_t)(6 * i + 0) * pstride, 4 * d0 - 5 * d2 + d4);
                st(out + (size_t)(6 * i + 1) * pstride, (d4 + d3) - 4 * (d1 + d2));
                st(out + (size_t)(6 * i + 2) * pstride, (d4 - d3) + 4 * (d1 - d2));
                st(out + (size_t)(6 * i + 3) * pstride, (d4 - d2) + 2 * (d3 - d1));
                st(out + (size_t)(6 * i + 4) * pstride, (d4 - d2) - 2 * (d3 - d1));
                st(out + (size_t)(6 * i + 5) * pstride, 4 * d1 - 5 * d3 + d5);
            }
        }
    }
}

/* v[p][t][cp] (p stride pstride floats) = B^T d B for every tile t = (n*th + ty)*tw + tx. */
CLONES void jem_wino_input(const float *xp, int nb, int th, int tw, int cp, float *v, size_t pstride) {
    int ph = 4 * th + 2, pw = 4 * tw + 2;
    for (int n = 0; n < nb; n++) for (int ty = 0; ty < th; ty++) {
        size_t t = ((size_t)n * th + ty) * tw;
        input_tiles(xp + ((size_t)n * ph + 4 * ty) * pw * cp, (size_t)pw * cp, tw, cp, v + t * cp, cp, pstride);
    }
}

/* jem_wino_pack and jem_wino_input in one pass, a tile row at a time: the 6 padded rows a tile row
   reads are packed into `band` (6 * (4*tw+2) * cp floats, small enough to stay in L1/L2) and
   transformed from there; the 2 rows that the next tile row shares are moved up, not packed
   again. The same float operations as the two calls. */
CLONES void jem_wino_pack_input(const float *x, int nb, int c, int h, int w, int cp, int th, int tw, int leaky,
                                float slope, unsigned short *signs, float *band, float *v, size_t tstride,
                                size_t pstride) {
    int pw = 4 * tw + 2;
    size_t rowstride = (size_t)pw * cp, plane = (size_t)h * w, signPlane = (size_t)h * SIGN_WORDS(w);
    for (int n = 0; n < nb; n++) {
        const float *src = x + (size_t)n * c * plane;
        unsigned short *sg = signs ? signs + (size_t)n * c * signPlane : 0;
        for (int ty = 0; ty < th; ty++) {
            int first = 0;
            if (ty > 0) { memmove(band, band + 4 * rowstride, sizeof(float) * 2 * rowstride); first = 2; }
            for (int r = first; r < 6; r++) {
                int iy = 4 * ty + r;
                int inside = iy >= 1 && iy <= h;
                pack_row(inside ? src + (size_t)(iy - 1) * w : 0, c, plane, w, pw, cp, leaky, slope,
                         sg && inside ? sg + (size_t)(iy - 1) * SIGN_WORDS(w) : 0, signPlane, band + r * rowstride);
            }
            input_tiles(band, rowstride, tw, cp, v + ((size_t)n * th + ty) * tw * tstride, tstride, pstride);
        }
    }
}

/* The 4 output rows of one tile row: rows[i][ox][kp] (rows rowstride floats apart) = A^T m A of
   the tiles at m (tile tx at m + tx*kp, p stride pstride). */
INLINE void output_tiles(const float *m, int tw, int kp, size_t tstride, size_t pstride, float *rows,
                         size_t rowstride) {
    for (int tx = 0; tx < tw; tx++) {
        const float *in = m + (size_t)tx * tstride;
        float *base = rows + (size_t)4 * tx * kp;
        for (int k0 = 0; k0 < kp; k0 += 16) {
            v16 r[4][6];
            for (int j = 0; j < 6; j++) {
                v16 m0 = ld(in + (size_t)(0 + j) * pstride + k0), m1 = ld(in + (size_t)(6 + j) * pstride + k0);
                v16 m2 = ld(in + (size_t)(12 + j) * pstride + k0), m3 = ld(in + (size_t)(18 + j) * pstride + k0);
                v16 m4 = ld(in + (size_t)(24 + j) * pstride + k0), m5 = ld(in + (size_t)(30 + j) * pstride + k0);
                v16 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
                r[0][j] = m0 + a + c;
                r[1][j] = b + 2 * d;
                r[2][j] = a + 4 * c;
                r[3][j] = b + 8 * d + m5;
            }
            for (int i = 0; i < 4; i++) {
                v16 m0 = r[i][0], m1 = r[i][1], m2 = r[i][2], m3 = r[i][3], m4 = r[i][4], m5 = r[i][5];
                v16 a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
                float *row = base + (size_t)i * rowstride + k0;
                st(row, m0 + a + c);
                st(row + kp, b + 2 * d);
                st(row + 2 * kp, a + 4 * c);
                st(row + 3 * kp, b + 8 * d + m5);
            }
        }
    }
}

/* yp[n][oy][ox][kp] (oy < 4*th, ox < 4*tw) = A^T m A for every tile. */
CLONES void jem_wino_output(const float *m, int nb, int th, int tw, int kp, size_t pstride, float *yp) {
    int oh = 4 * th, ow = 4 * tw;
    for (int n = 0; n < nb; n++) for (int ty = 0; ty < th; ty++) {
        size_t t = ((size_t)n * th + ty) * tw;
        output_tiles(m + t * kp, tw, kp, kp, pstride, yp + ((size_t)n * oh + 4 * ty) * ow * kp, (size_t)ow * kp);
    }
}

/* y[n][k][oy][ox] (+)= yp[n][oy][ox][k] (+ bias[k]), through 16x16 register transposes; with a
   gate (same layout as y), each value is first multiplied by the leaky ReLU's derivative at the
   gate (gate > 0 ? 1 : slope, as jem_leaky_relu_backward). With
   `stream`, blocks of 16 pixels that start on a 64-byte boundary are written with non-temporal
   stores (the caller asks for it when the output is too big to stay in cache), then a store fence. */
CLONES void jem_wino_unpack(const float *yp, int nb, int k, int h, int w, int kp, int th, int tw, const float *bias,
                            const float *gate, float slope, int accumulate, int stream, float *y) {
    int ow = 4 * tw, oh = 4 * th;
    size_t plane = (size_t)h * w;
    for (int n = 0; n < nb; n++)
        unpack_rows(yp + (size_t)n * oh * ow * kp, (size_t)ow * kp, h, k, plane, w, kp, bias,
                    gate ? gate + (size_t)n * k * plane : 0, 0, 0, slope, accumulate ? y + (size_t)n * k * plane : 0, stream,
                    y + (size_t)n * k * plane);
#if defined(__x86_64__)
    if (stream) __builtin_ia32_sfence();
#endif
}

/* jem_wino_output and jem_wino_unpack in one pass, a tile row at a time: the tile row's 4 output
   rows go to `band` (4 * 4*tw * kp floats) and from there straight to y. The same float
   operations as the two calls. */
CLONES void jem_wino_output_unpack(const float *m, int nb, int k, int h, int w, int kp, int th, int tw,
                                   size_t tstride, size_t pstride, const float *bias, const float *gate,
                                   const unsigned short *signs, float slope, const float *addend, int stream,
                                   float *band, float *y) {
    int ow = 4 * tw;
    size_t plane = (size_t)h * w, rowstride = (size_t)ow * kp, signPlane = (size_t)h * SIGN_WORDS(w);
    for (int n = 0; n < nb; n++) for (int ty = 0; ty < th; ty++) {
        int rows = h - 4 * ty < 4 ? h - 4 * ty : 4;
        output_tiles(m + ((size_t)n * th + ty) * tw * tstride, tw, kp, tstride, pstride, band, rowstride);
        size_t offset = (size_t)n * k * plane + (size_t)4 * ty * w;
        unpack_rows(band, rowstride, rows, k, plane, w, kp, bias, gate ? gate + offset : 0,
                    signs ? signs + ((size_t)n * k * h + 4 * ty) * SIGN_WORDS(w) : 0, signPlane, slope,
                    addend ? addend + offset : 0, stream, y + offset);
    }
#if defined(__x86_64__)
    if (stream) __builtin_ia32_sfence();
#endif
}

/* Weight gradients by Winograd F(3x3, 4x4): the 3x3 taps of dW are the correlation of each 6x6
   input tile with the 4x4 output-gradient tile of the same position, so
   dW = A2^T [ sum over tiles of (G2 dy G2^T) . (B^T x B) ] A2 with the input transform above,
   G2 (6x4) and A2^T (3x6) from the same interpolation points (0, +-1, +-2, infinity):

     G2 = [ 1/4 0 0 0; -1/6 -1/6 -1/6 -1/6; -1/6 1/6 -1/6 1/6; 1/24 1/12 1/6 1/3; 1/24 -1/12 1/6 -1/3; 0 0 0 1 ]
     A2^T = [ 1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 1 ]

   dp is the output gradient packed by jem_wino_pack (one pixel of border, zero outside), so
   tile (ty, tx) starts at dp[4ty + 1][4tx + 1]. */
CLONES void jem_wino_grad_input(const float *dp, int nb, int th, int tw, int kp, float *d, size_t pstride) {
    int ph = 4 * th + 2, pw = 4 * tw + 2;
    const float s6 = 1.0f / 6, s12 = 1.0f / 12, s24 = 1.0f / 24, s3 = 1.0f / 3;
    for (int n = 0; n < nb; n++) for (int ty = 0; ty < th; ty++) for (int tx = 0; tx < tw; tx++) {
        size_t t = ((size_t)n * th + ty) * tw + tx;
        const float *base = dp + (((size_t)n * ph + 4 * ty + 1) * pw + 4 * tx + 1) * kp;
        for (int k0 = 0; k0 < kp; k0 += 16) {
            v16 m[6][4];
            for (int j = 0; j < 4; j++) {
                v16 g0 = ld(base + ((size_t)0 * pw + j) * kp + k0), g1 = ld(base + ((size_t)1 * pw + j) * kp + k0);
                v16 g2 = ld(base + ((size_t)2 * pw + j) * kp + k0), g3 = ld(base + ((size_t)3 * pw + j) * kp + k0);
                v16 even = g0 + g2, odd = g1 + g3, even4 = s24 * g0 + s6 * g2, odd4 = s12 * g1 + s3 * g3;
                m[0][j] = 0.25f * g0;
                m[1][j] = -s6 * (even + odd);
                m[2][j] = -s6 * (even - odd);
                m[3][j] = even4 + odd4;
                m[4][j] = even4 - odd4;
                m[5][j] = g3;
            }
            float *out = d + t * kp + k0;
            for (int i = 0; i < 6; i++) {
                v16 g0 = m[i][0], g1 = m[i][1], g2 = m[i][2], g3 = m[i][3];
                v16 even = g0 + g2, odd = g1 + g3, even4 = s24 * g0 + s6 * g2, odd4 = s12 * g1 + s3 * g3;
                st(out + (size_t)(6 * i + 0) * pstride, 0.25f * g0);
                st(out + (size_t)(6 * i + 1) * pstride, -s6 * (even + odd));
                st(out + (size_t)(6 * i + 2) * pstride, -s6 * (even - odd));
                st(out + (size_t)(6 * i + 3) * pstride, even4 + odd4);
                st(out + (size_t)(6 * i + 4) * pstride, even4 - odd4);
                st(out + (size_t)(6 * i + 5) * pstride, g3);
            }
        }
    }
}

/* dw[k][c][3][3] (+)= A2^T P[.][k][c] A2 for P[p][k][c] (p = 6*xi + nu, ld = cin). */
CLONES void jem_wino_filter_grad(const float *prod, int cout, int cin, int accumulate, float *dw) {
    size_t ps = (size_t)cout * cin;
    for (size_t e = 0; e < ps; e++) {
        float r[3][6];
        for (int j = 0; j < 6; j++) {
            float m0 = prod[(0 + j) * ps + e], m1 = prod[(6 + j) * ps + e], m2 = prod[(12 + j) * ps + e];
            float m3 = prod[(18 + j) * ps + e], m4 = prod[(24 + j) * ps + e], m5 = prod[(30 + j) * ps + e];
            float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
            r[0][j] = m0 + a + c;
            r[1][j] = b + 2 * d;
            r[2][j] = a + 4 * c + m5;
        }
        float *out = dw + e * 9;
        for (int i = 0; i < 3; i++) {
            float m0 = r[i][0], m1 = r[i][1], m2 = r[i][2], m3 = r[i][3], m4 = r[i][4], m5 = r[i][5];
            float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
            float v0 = m0 + a + c, v1 = b + 2 * d, v2 = a + 4 * c + m5;
            if (accumulate) { out[3 * i] += v0; out[3 * i + 1] += v1; out[3 * i + 2] += v2; }
            else { out[3 * i] = v0; out[3 * i + 1] = v1; out[3 * i + 2] = v2; }
        }
    }
}
