/* The signs of an activation's input written on their own (the convs whose forward does not go
   through pack_row: im2col shapes, 1x1 convs, unfused activations). Layout in winograd_rows.h. */
#include "CJEMKernels.h"
#include "winograd_rows.h"

CLONES void jem_activation_signs(const float *x, size_t rows, int w, unsigned short *signs) {
    int full = w / 16 * 16;
    for (size_t r = 0; r < rows; r++) {
        const float *row = x + r * (size_t)w;
        unsigned short *out = signs + r * SIGN_WORDS(w);
        for (int x0 = 0; x0 < full; x0 += 16) out[x0 / 16] = SIGNS_OF(ld(row + x0));
        if (full == w) continue;
        unsigned short word = 0;
        for (int ix = full; ix < w; ix++) if (row[ix] > 0) word |= (unsigned short)(1u << (ix % 16));
        out[full / 16] = word;
    }
}
