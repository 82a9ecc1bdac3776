#ifndef CJEMKERNELS_H
#define CJEMKERNELS_H

#include <stddef.h>

/* Vectorised CPU kernels for jem-gpu's CPU backend. Each hot function is compiled three times
   (x86-64-v4 = AVX-512, x86-64-v3 = AVX2 + FMA, baseline) and the loader picks the best one for
   the machine once, so results are reproducible on a given machine.

   Winograd F(4x4, 3x3) for 3x3, stride-1, padding-1 convolutions. One call of the pipeline covers
   `nb` images of `c` channels, h x w pixels, cut into th x tw tiles of 4x4 outputs (6x6 inputs):

     jem_wino_filter  U[p][r][q] = (G g G^T)[p], p = 6*xi + nu < 36, r < rows, q < kp (zero above cols)
     jem_wino_pack    xp[n][4*th+2][4*tw+2][cp]: channels last, zero padded (pixels and channels)
     jem_wino_input   V[p][t][cp] = (B^T d B)[p] for every tile t = (n*th + ty)*tw + tx
     (the caller)     M[p][t][kp] = V[p] x U[p] (36 GEMMs)
     jem_wino_output  yp[n][4*th][4*tw][kp] = A^T M A
     jem_wino_unpack  y[n][k][h][w] (+)= yp (+ bias)

   cp and kp (channel strides) must be multiples of 16. */

/* Forward: rows = cin, cols = cout, g = w[q][r]. Backward data (backward != 0): the conv of the
   output gradient with the spatially flipped, transposed filter: rows = cout, cols = cin,
   g = w[r][q] flipped. w is [cout][cin][3][3]. */
void jem_wino_filter(const float *w, int cout, int cin, int backward, int kp, float *u);
/* leaky != 0: the input goes through the leaky ReLU with `slope` on the way (a fused pre-activation). */
void jem_wino_pack(const float *x, int nb, int c, int h, int w, int cp, int th, int tw, int leaky, float slope,
                   float *xp);
void jem_wino_input(const float *xp, int nb, int th, int tw, int cp, float *v, size_t pstride);
void jem_wino_output(const float *m, int nb, int th, int tw, int kp, size_t pstride, float *yp);
/* gate (layout of y, or NULL): multiply by the leaky ReLU's derivative at gate before storing (a
   fused activation backward). stream: write y with non-temporal stores where aligned (outputs too
   big to stay in cache). */
void jem_wino_unpack(const float *yp, int nb, int k, int h, int w, int kp, int th, int tw, const float *bias,
                     const float *gate, float slope, int accumulate, int stream, float *y);
/* The same pipeline with the channels-last copies never written whole: pack + input transform a
   tile row at a time through `band` (6 * (4*tw+2) * cp floats), output transform + unpack through
   `band` (16 * tw * kp floats). Bit for bit the results of the separate calls. Tile t, point p of
   V (M) sits at t*tstride + p*pstride: tstride = cp, pstride >= tiles*cp is the layout above;
   tstride = 36*cp, pstride = cp keeps each tile's 36 points together (one store stream).
   addend (layout of y, or NULL): added to each output as it is stored; y itself accumulates.
   signs (with leaky, or NULL): receives the signs of x (layout in winograd_rows.h: bit x % 16 of word
   ((n*c + ch)*h + y)*((w + 15)/16) + x/16 is x[n][ch][y][x] > 0), for the backward's gate; in the
   unpack, signs (or NULL) stands in for gate, bit for bit the same result. */
void jem_wino_pack_input(const float *x, int nb, int c, int h, int w, int cp, int th, int tw, int leaky, float slope,
                         unsigned short *signs, float *band, float *v, size_t tstride, size_t pstride);
void jem_wino_output_unpack(const float *m, int nb, int k, int h, int w, int kp, int th, int tw, size_t tstride,
                            size_t pstride, const float *bias, const float *gate, const unsigned short *signs,
                            float slope, const float *addend, int stream, float *band, float *y);
/* signs of x as jem_wino_pack_input writes them, for `rows` rows of w floats (rows = n*c*h). */
void jem_activation_signs(const float *x, size_t rows, int w, unsigned short *signs);


/* Weight gradients of the same convs, Winograd F(3x3, 4x4) (see winograd.c):
     jem_wino_pack + jem_wino_input    X[p][t][cp] from the input, as above
     jem_wino_pack + jem_wino_grad_input  D[p][t][kp] = G2 dy G2^T from the output gradient
     (the caller)                      P[p][k][c] = sum over t of D[p][t][k] X[p][t][c] (36 GEMMs)
     jem_wino_filter_grad              dw[k][c][3][3] (+)= A2^T P A2 */
void jem_wino_grad_input(const float *dp, int nb, int th, int tw, int kp, float *d, size_t pstride);
void jem_wino_filter_grad(const float *prod, int cout, int cin, int accumulate, float *dw);

/* Winograd for 3x3, stride-2, padding-1 convolutions (winograd_stride2.c): per axis the even
   input pixels as they are and F(4,2) on the odd ones, 9 x 9 = 81 points per tile.
     jem_wino2_filter             U[p][r][q] (p < 81) for rows first ..< last, rows/cols/backward as
                                  jem_wino_filter (81 x rows x kp floats: the threads share the rows)
     jem_wino2_pack_input         forward: x -> V, tiles of 4x4 outputs (th x tw over oh x ow), signs as
                                  jem_wino_pack_input
     (the caller)                 M[p][t][kp] = V[p] x U[p] (81 GEMMs)
     jem_wino2_output_unpack      y = A~^T M A~ (+ bias) (+ addend, as jem_wino_output_unpack)
   and for backward data (tiles of 8x8 input pixels, th x tw over h x w):
     jem_wino2_pack_input_backward   dy -> V
     jem_wino2_output_unpack_backward  dx = the 8x8 pixels (times act'(gate) when given, or from the
                                  signs as in jem_wino_output_unpack) (+ addend)
   band: 9*(8*tw+1)*cp, 5*(4*tw+2)*cp, 4*4*tw*kp and 8*8*tw*kp floats respectively. */
void jem_wino2_filter(const float *w, int cout, int cin, int backward, int kp, int first, int last, float *u);
void jem_wino2_pack_input(const float *x, int nb, int c, int h, int w, int cp, int th, int tw, int leaky, float slope,
                          unsigned short *signs, float *band, float *v, size_t tstride, size_t pstride);
void jem_wino2_pack_input_backward(const float *dy, int nb, int c, int oh, int ow, int cp, int th, int tw,
                                   float *band, float *v, size_t tstride, size_t pstride);
void jem_wino2_output_unpack(const float *m, int nb, int k, int oh, int ow, int kp, int th, int tw, size_t tstride,
                             size_t pstride, const float *bias, const float *addend, int stream, float *band,
                             float *y);
void jem_wino2_output_unpack_backward(const float *m, int nb, int k, int h, int w, int kp, int th, int tw,
                                      size_t tstride, size_t pstride, const float *gate, const unsigned short *signs,
                                      float slope, const float *addend, int stream, float *band, float *dx);

/* Weight gradients of the stride-2 convs (winograd_stride2.c), the transposed forward:
     jem_wino2_pack_input                   X[p][t][cp] from the input, tiles of 4x4 outputs
     jem_wino_pack + jem_wino2_grad_output  D[p][t][kp]: per axis dy as it is and A~ dy
     (the caller)                           P[p][k][c] = sum over t of D[p][t][k] X[p][t][c] (81 GEMMs)
     jem_wino2_filter_grad                  dw[k][c][3][3] (+)= H P H^T (H: 3 x 9) */
void jem_wino2_grad_output(const float *dp, int nb, int th, int tw, int kp, float *d, size_t pstride);
void jem_wino2_filter_grad(const float *prod, int cout, int cin, int accumulate, float *dw);

/* Pointwise loops (pointwise.c); the caller splits the range over its threads. Calls of at least
   2^18 elements write their outputs with non-temporal stores (see pointwise.c). */
void jem_leaky_relu_forward(const float *x, float *y, size_t n, float slope);
/* gx (+)= gy * (x > 0 ? 1 : slope); gx may be gy. */
void jem_leaky_relu_backward(const float *x, const float *gy, float *gx, size_t n, float slope, int accumulate);
/* y = alpha * x + beta * y (beta == 0: y is not read). */
void jem_axpby(float alpha, const float *x, float beta, float *y, size_t n);

/* One image's im2col columns [c*k*k][oh*ow] (rows ld >= oh*ow floats apart, so that several
   images can sit side by side; leaky: through the leaky ReLU on the way) and their adjoint
   (image (+)= col2im(col), times the leaky ReLU's derivative at gate when given). A gate is only
   allowed where jem_col2im_gathers (the vectorised stride-2 shapes). */
void jem_im2col(const float *image, int c, int h, int w, int k, int stride, int pad, int leaky, float slope,
                float *col, size_t ld);
int jem_col2im_gathers(int h, int w, int k, int stride, int pad);
void jem_col2im(const float *col, int c, int h, int w, int k, int stride, int pad, const float *gate, float slope,
                float *image, int accumulate, size_t ld);

/* Atomically adds 1 to *counter and returns its previous value (the work queue of the CPU
   backend's dynamically scheduled loops). */
long jem_fetch_increment(long *counter);

#endif
