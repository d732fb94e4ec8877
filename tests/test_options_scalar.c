/* tests/test_options.c on the plain 4-float structs (NN_NO_SIMD): the depthwise rows
   (nn__vaxpy_gather, nn__vaxpy_scatter, nn__vdot_strided) on the scalar path. */
#define NN_NO_SIMD
#define OPTIONS_NAME "test_options_scalar"
#include "test_options.c"
