/* tests/test_numerics.c on the plain 4-float structs (NN_NO_SIMD): the third path. */
#define NN_NO_SIMD
#define NUMERICS_NAME "test_numerics_scalar"
#include "test_numerics.c"
