/* The AVX-512 GEMM kernel against the AVX2 one, side by side on the convolution shapes
   of the airbench94 and VGG nets (1 thread, best of 6 alternating rounds), and whether
   they give the same bits:  make build/bench_gemm_kernels && build/bench_gemm_kernels
   prints per shape  gemm M= N= K= ta= tb= avx512=<GFLOP/s> avx2=<GFLOP/s> ratio= same_bits= */
#define _POSIX_C_SOURCE 200112L
#define NN_IMPLEMENTATION
#include "nn.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void)
{
#ifndef NN__X86
    printf("not an x86 build with SIMD\n");
    return 0;
#else
    static const int shapes[][5] = {{64, 8192, 216, 0, 0},  {256, 2048, 576, 0, 0}, {256, 2048, 2304, 0, 0},
                                    {64, 576, 8192, 0, 1},  {256, 2304, 2048, 0, 1}, {576, 2048, 64, 1, 0},
                                    {2304, 2048, 256, 1, 0}, {100, 128, 3072, 0, 1}};
    int s;
    if (!__builtin_cpu_supports("avx512f")) {
        printf("no AVX-512F on this CPU\n");
        return 0;
    }
    nn_set_threads(1);
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], ta = shapes[s][3], tb = shapes[s][4];
        size_t i;
        float *a = (float *)malloc(sizeof(float) * m * k), *b = (float *)malloc(sizeof(float) * k * n);
        float *c[2];
        double best[2] = {1e30, 1e30};
        int rep, v;
        nn_rng r = nn_rng_new(1);
        c[0] = (float *)malloc(sizeof(float) * m * n);
        c[1] = (float *)malloc(sizeof(float) * m * n);
        if (!a || !b || !c[0] || !c[1]) { fprintf(stderr, "out of memory\n"); return 1; }
        for (i = 0; i < (size_t)m * k; i++) a[i] = nn_rng_uniform(&r) - 0.5f;
        for (i = 0; i < (size_t)k * n; i++) b[i] = nn_rng_uniform(&r) - 0.5f;
        for (rep = 0; rep < 6; rep++)
            for (v = 0; v < 2; v++) {
                double t;
                nn__gemm_no_avx512 = v;
                t = now();
                nn_gemm(ta, tb, m, n, k, 1.0f, a, ta ? m : k, b, tb ? k : n, 0.0f, c[v], n);
                t = now() - t;
                if (t < best[v]) best[v] = t;
            }
        printf("gemm M=%d N=%d K=%d ta=%d tb=%d avx512=%.1f avx2=%.1f ratio=%.2f same_bits=%d\n", m, n, k, ta, tb,
               2.0 * m * n * k / best[0] / 1e9, 2.0 * m * n * k / best[1] / 1e9, best[1] / best[0],
               memcmp(c[0], c[1], sizeof(float) * m * n) == 0);
        free(a); free(b); free(c[0]); free(c[1]);
    }
    return 0;
#endif
}
