#ifndef CZLIB_SHIM_H
#define CZLIB_SHIM_H
// zlib: inflate for .gz / .npz / PNG input, deflate for PNG output.
#include <zlib.h>
#endif
