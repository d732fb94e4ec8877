#!/bin/sh
# The header compiles warning-free (-Wall -Wextra -Wpedantic) as C99 and C11 with gcc
# and clang, as C++11 and C++17 with g++ and clang++, under each configuration macro
# alone and a few together; the thread-local storage the preprocessor picks is the
# language's (C11 _Thread_local, C++11 thread_local, MSVC __declspec(thread), else
# __thread), and tests/test_errors.c (one error message per thread) passes under each
# branch the compilers here can take, and fails with none.
# Prints "compile_check: N passed, N failed".
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
# Your own allocator and assert, declared before the header as a user would.
cat > "$tmp/own.c" <<'SRC'
#include <assert.h>
#include <stdlib.h>
static void *my_malloc(size_t size) { return malloc(size); }
static void my_free(void *p) { free(p); }
#define NN_MALLOC(size) my_malloc(size)
#define NN_FREE(p) my_free(p)
#define NN_ASSERT(cond) assert(cond)
#define NN_IMPLEMENTATION
#include "nn.h"
int main(void) { return nn_error() == 0; }
SRC
# The thread-local storage class the implementation picked, as text.
cat > "$tmp/tls.c" <<'SRC'
#define NN_IMPLEMENTATION
#include "nn.h"
#define TLS_TEXT2(x) #x
#define TLS_TEXT(x) TLS_TEXT2(x)
const char *tls_text = TLS_TEXT(NN__THREAD_LOCAL);
SRC
passed=0; failed=0
try() {   # try NAME command...
    name=$1; shift
    if "$@" > "$tmp/out" 2>&1; then passed=$((passed + 1))
    else failed=$((failed + 1)); echo "FAIL compile $name: $*"; head -n 15 "$tmp/out"; fi
}
try_fails() {   # try_fails NAME command...: the command must fail
    name=$1; shift
    if "$@" > "$tmp/out" 2>&1; then failed=$((failed + 1)); echo "FAIL compile $name (it should fail): $*"
    else passed=$((passed + 1)); fi
}
# tls COMPILER-AND-FLAGS EXPECTED: the preprocessor's choice of NN__THREAD_LOCAL.
tls() {
    try "thread-local of $1" sh -c "$1 -E -I. '$tmp/tls.c' | grep -F 'tls_text = \"$2\"' > /dev/null"
}
W="-Wall -Wextra -Wpedantic -Werror"
# Each configuration macro alone, then a few together (the defaults' opposites where a
# value is taken); these only parse and check (-fsyntax-only: the same warnings as -O0).
MACROS="NN_NO_SIMD NN_NO_THREADS NN_STATIC NN_NO_STDIO NN_NO_FUSION NN_NO_WINOGRAD NN_NO_ONNX
    NNDEF=extern NN_THREAD_LOCAL=__thread NN_MAX_BUILD_BYTES=((size_t)1<<20)
    NN_WINO_MIN_CHANNELS=1 NN_WINO_MIN_TILES=1 NN_CONV_KEEP_COLS=((size_t)0) NN_WIDE_MAX_N=1
    NN_WIDE_MAX_BATCH=1 NN_WIDE_AHEAD=0"
COMBOS="-DNN_NO_SIMD|-DNN_NO_THREADS|-DNN_NO_STDIO|-DNN_NO_ONNX
    -DNN_STATIC|-DNN_NO_THREADS|-DNN_NO_FUSION
    -DNN_STATIC|-DNN_NO_STDIO|-DNN_NO_WINOGRAD|-DNN_THREAD_LOCAL=__thread
    -DNN_STATIC|-DNN_NO_ONNX|-DNN_NO_SIMD
    -DNN_NO_SIMD|-DNN_NO_FUSION|-DNN_NO_WINOGRAD|-DNN_NO_ONNX|-DNNDEF=extern"
for cc in gcc clang g++ clang++; do
    command -v $cc >/dev/null || continue
    case $cc in
    *++) std1="-x c++ -std=c++11"; std2="-x c++ -std=c++17" ;;
    *)   std1="-std=c99"; std2="-std=c11" ;;
    esac
    try "$cc $std1" $cc $std1 $W -I. -c "$tmp/impl.c" -o "$tmp/a.o"
    try "$cc $std2 -O2" $cc $std2 -O2 $W -I. -c "$tmp/impl.c" -o "$tmp/a.o"
    for macro in $MACROS; do
        try "$cc -D$macro" $cc $std1 $W "-D$macro" -I. -fsyntax-only "$tmp/impl.c"
    done
    for combo in $COMBOS; do
        try "$cc $combo" $cc $std2 $W $(echo "$combo" | tr '|' ' ') -I. -fsyntax-only "$tmp/impl.c"
    done
    try "$cc own NN_MALLOC, NN_FREE, NN_ASSERT" $cc $std1 $W -I. -c "$tmp/own.c" -o "$tmp/a.o"
    try "$cc declarations only" $cc $std1 $W -I. -c "$tmp/user.c" -o "$tmp/u.o"
done
# The thread-local branches: the preprocessor's choice per language...
for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    tls "$cc -std=c99" __thread
    tls "$cc -std=c11" _Thread_local
    tls "$cc -std=c99 -D_MSC_VER=1930" "__declspec(thread)"
    tls "$cc -std=c11 -DNN_THREAD_LOCAL=__thread" __thread
done
for cxx in g++ clang++; do
    command -v $cxx >/dev/null || continue
    tls "$cxx -x c++ -std=c++11" thread_local
    tls "$cxx -x c++ -std=c++17 -DNN_THREAD_LOCAL=__thread" __thread
done
# ... and each branch these compilers run (MSVC's __declspec(thread) is not among them)
# keeps one message per thread; with no thread-local storage the test fails.
errors() {   # errors NAME command-prefix...: build tests/test_errors.c with it and run it
    name=$1; shift
    try "test_errors, $name" sh -c "$* -O1 -Wall -Wextra -Werror -I. tests/test_errors.c -o '$tmp/errors' -lm -lpthread && '$tmp/errors' > /dev/null"
}
errors "C99 __thread" gcc -std=c99 -Wpedantic
errors "C11 _Thread_local" gcc -std=c11 -Wpedantic
errors "clang C11 _Thread_local" clang -std=c11 -Wpedantic
errors "C++11 thread_local" g++ -x c++ -std=c++11 -Wpedantic
errors "C++17 forced __thread" clang++ -x c++ -std=c++17 -DNN_THREAD_LOCAL=__thread
try_fails "test_errors with no thread-local storage" sh -c "gcc -std=c99 -O1 -DNN_THREAD_LOCAL= -I. tests/test_errors.c -o '$tmp/errors' -lm -lpthread && '$tmp/errors' > /dev/null 2>&1"
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
