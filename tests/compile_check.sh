#!/bin/sh
# The header compiles warning-free as C99 with gcc and clang, as C++ with g++ and
# clang++, and under each configuration macro. Prints "compile_check: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/impl.c" <<'SRC'
#define NN_IMPLEMENTATION
#include "nn.h"
#include "nn.h"   /* a second include must be harmless */
int main(void) { return nn_error() == 0; }
SRC
# A translation unit that only declares, linked against one that implements.
printf '#include "nn.h"\nint user(void) { return (int)nn_shape_size(nn_shape3(1, 2, 3)); }\n' > "$tmp/user.c"
passed=0; failed=0
try() {   # try NAME command...
    name=$1; shift
    if "$@" > "$tmp/out" 2>&1; then passed=$((passed + 1))
    else failed=$((failed + 1)); echo "FAIL compile $name: $*"; head -n 15 "$tmp/out"; fi
}
W="-Wall -Wextra -Werror"
for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    try "$cc c99" $cc -std=c99 -Wpedantic $W -I. -c "$tmp/impl.c" -o "$tmp/a.o"
    try "$cc c11 -O2" $cc -std=c11 -O2 -Wpedantic $W -I. -c "$tmp/impl.c" -o "$tmp/a.o"
    for macro in NN_NO_SIMD NN_NO_THREADS NN_STATIC NN_NO_STDIO NN_NO_FUSION NN_NO_WINOGRAD NN_NO_ONNX; do
        try "$cc -D$macro" $cc -std=c99 -Wpedantic $W -D$macro -I. -c "$tmp/impl.c" -o "$tmp/a.o"
    done
    try "$cc declarations only" $cc -std=c99 -Wpedantic $W -I. -c "$tmp/user.c" -o "$tmp/u.o"
done
for cxx in g++ clang++; do
    command -v $cxx >/dev/null || continue
    try "$cxx" $cxx -x c++ -std=c++11 $W -I. -c "$tmp/impl.c" -o "$tmp/a.o"
done
# Plain `cc -O2` with no -march flag links and runs (the AVX2 path is chosen at run time).
try "cc link+run" sh -c "cc -O2 -I. '$tmp/impl.c' -o '$tmp/prog' -lm -lpthread && '$tmp/prog'"
# The portable path (NN_NO_SIMD: scalar GEMM, plain-float vectors) passes the kernel,
# layer and optimiser tests, vector loops included.
for t in test_kernels test_layers test_optim; do
    try "$t with NN_NO_SIMD" sh -c "cc -O2 -DNN_NO_SIMD -I. tests/$t.c -o '$tmp/$t' -lm -lpthread && '$tmp/$t' > /dev/null"
done
# The layer tests pass with the BatchNorm + ReLU fusion switched off too.
try "layers with NN_NO_FUSION" sh -c "cc -O2 -DNN_NO_FUSION -I. tests/test_layers.c -o '$tmp/layers' -lm -lpthread && '$tmp/layers' > /dev/null"
# With Winograd compiled out, every Conv2d takes im2col (test_winograd checks the choice).
try "winograd with NN_NO_WINOGRAD" sh -c "cc -O2 -DNN_NO_WINOGRAD -I. tests/test_winograd.c -o '$tmp/wino' -lm -lpthread && '$tmp/wino' > /dev/null"
echo "compile_check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
