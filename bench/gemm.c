/* GEMM benchmark: nn_gemm against OpenBLAS's cblas_sgemm, side by side in one run.
   make bench-gemm   (OPENBLAS_CORETYPE=Haswell or Zen picks OpenBLAS's kernel)

   First the single-thread FP32 FMA peak of this core, then one line per case:
     gemm <case> M= N= K= threads= nn=<GFLOPS> openblas=<GFLOPS> ratio=<nn/openblas>
   Each line is the best of REPS rounds; every round times nn.h then OpenBLAS, each for
   at least MIN_SECONDS of back-to-back calls, so both see the same machine noise.
   After a call, OpenBLAS's idle threads busy-wait for up to 2^28 cycles (about 0.1 s
   here) and would take the second core from nn.h's next round, so with 2 threads each
   OpenBLAS round is followed by a 0.15 s pause (nn.h's workers spin only ~0.1 ms).
   Optional arguments, for tuning: build/bench_gemm [case-name-substring [max-threads]] */
#define _POSIX_C_SOURCE 200112L
#define NN_IMPLEMENTATION
#include "nn.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS 9
#define MIN_SECONDS 0.025

static void pause_seconds(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* 12 independent FMA chains (more than latency 4 x 2 pipes), 8 floats each. */
__attribute__((target("avx2,fma")))
static double fma_peak_gflops(void)
{
    __m256 acc[12], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    float sink[8], total = 0.0f;
    double best = 0.0;
    int i, round;
    long it, iters = 4000000;   /* about 20 ms a round; best of 12 rides out noise */
    for (i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (round = 0; round < 12; round++) {
        double t0 = now(), secs;
        for (it = 0; it < iters; it++) {
            acc[0] = _mm256_fmadd_ps(acc[0], x, y);   acc[1] = _mm256_fmadd_ps(acc[1], x, y);
            acc[2] = _mm256_fmadd_ps(acc[2], x, y);   acc[3] = _mm256_fmadd_ps(acc[3], x, y);
            acc[4] = _mm256_fmadd_ps(acc[4], x, y);   acc[5] = _mm256_fmadd_ps(acc[5], x, y);
            acc[6] = _mm256_fmadd_ps(acc[6], x, y);   acc[7] = _mm256_fmadd_ps(acc[7], x, y);
            acc[8] = _mm256_fmadd_ps(acc[8], x, y);   acc[9] = _mm256_fmadd_ps(acc[9], x, y);
            acc[10] = _mm256_fmadd_ps(acc[10], x, y); acc[11] = _mm256_fmadd_ps(acc[11], x, y);
        }
        secs = now() - t0;
        if (iters * 12.0 * 16.0 / secs * 1e-9 > best) best = iters * 12.0 * 16.0 / secs * 1e-9;
    }
    for (i = 0; i < 12; i++) {
        _mm256_storeu_ps(sink, acc[i]);
        total += sink[0];
    }
    if (total == 42.0f) printf("(unlikely)\n");   /* keeps the chains alive */
    return best;
}
#else
static double fma_peak_gflops(void) { return 0.0; }
#endif

typedef struct gemm_case { const char *name; int ta, tb, m, n, k; } gemm_case;

static float *buf_a, *buf_b, *buf_c;

static void run(int lib, const gemm_case *g)
{
    int lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
    if (lib == 0)
        nn_gemm(g->ta, g->tb, g->m, g->n, g->k, 1.0f, buf_a, lda, buf_b, ldb, 0.0f, buf_c, g->n);
    else
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                    g->m, g->n, g->k, 1.0f, buf_a, lda, buf_b, ldb, 0.0f, buf_c, g->n);
}

/* GFLOPS of back-to-back calls for at least MIN_SECONDS. */
static double measure(int lib, const gemm_case *g)
{
    double flops = 2.0 * g->m * g->n * g->k, t0 = now(), secs;
    int calls = 0;
    do {
        run(lib, g);
        calls++;
        secs = now() - t0;
    } while (secs < MIN_SECONDS);
    return flops * calls / secs * 1e-9;
}

int main(int argc, char **argv)
{
    static const struct { int cin, cout, hw; } vgg[] = {
        {3, 64, 32}, {64, 128, 16}, {128, 256, 8}, {256, 256, 8},
        {256, 512, 4}, {512, 512, 4}, {512, 512, 2}, {512, 512, 2},
    };
    const int batch = 32;
    gemm_case cases[4 + 3 * 8 + 3];
    char names[3 * 8][32];
    const char *filter = argc > 1 ? argv[1] : "";
    int max_threads = argc > 2 ? atoi(argv[2]) : 2;
    int count = 0, i, t, rep;
    size_t max_a = 0, max_b = 0, max_c = 0;
    double peak, nn_1024 = 0.0;
    nn_rng r = nn_rng_new(1);

    for (i = 256; i <= 2048; i *= 2) {
        gemm_case g = { "square", 0, 0, i, i, i };
        cases[count++] = g;
    }
    for (i = 0; i < 8; i++) {
        int cin9 = vgg[i].cin * 9, cout = vgg[i].cout, cols = batch * vgg[i].hw * vgg[i].hw;
        gemm_case fwd = { NULL, 0, 0, cout, cols, cin9 };    /* W * col */
        gemm_case wgrad = { NULL, 0, 1, cout, cin9, cols };  /* dY * col^T */
        gemm_case igrad = { NULL, 1, 0, cin9, cols, cout };  /* W^T * dY */
        sprintf(names[3 * i], "conv%d.fwd", i + 1);
        sprintf(names[3 * i + 1], "conv%d.wgrad", i + 1);
        sprintf(names[3 * i + 2], "conv%d.igrad", i + 1);
        fwd.name = names[3 * i]; wgrad.name = names[3 * i + 1]; igrad.name = names[3 * i + 2];
        cases[count++] = fwd; cases[count++] = wgrad; cases[count++] = igrad;
    }
    {   /* the E1 MLP's first Linear at batch 200: y = x W^T and dW = dy^T x */
        gemm_case fwd = { "mlp.fwd", 0, 1, 200, 100, 3072 };
        gemm_case wgrad = { "mlp.wgrad", 1, 0, 100, 3072, 200 };
        gemm_case tr = { "mlp.fwdT", 0, 1, 100, 200, 3072 };
        cases[count++] = tr;
        cases[count++] = fwd; cases[count++] = wgrad;
    }
    for (i = 0; i < count; i++) {
        size_t a = (size_t)cases[i].m * cases[i].k, b = (size_t)cases[i].k * cases[i].n,
               c = (size_t)cases[i].m * cases[i].n;
        if (a > max_a) max_a = a;
        if (b > max_b) max_b = b;
        if (c > max_c) max_c = c;
    }
    buf_a = (float *)malloc(max_a * sizeof(float));
    buf_b = (float *)malloc(max_b * sizeof(float));
    buf_c = (float *)malloc(max_c * sizeof(float));
    if (!buf_a || !buf_b || !buf_c) { fprintf(stderr, "out of memory\n"); return 1; }
    for (i = 0; i < (int)max_a; i++) buf_a[i] = nn_rng_uniform(&r) - 0.5f;
    for (i = 0; i < (int)max_b; i++) buf_b[i] = nn_rng_uniform(&r) - 0.5f;
    memset(buf_c, 0, max_c * sizeof(float));

    {   /* the machine is shared: say how busy it was */
        FILE *f = fopen("/proc/loadavg", "r");
        char line[128];
        if (f && fgets(line, sizeof line, f)) printf("load average at start: %s", line);
        if (f) fclose(f);
    }
    peak = fma_peak_gflops();
    printf("peak fp32 FMA, 1 thread (12 independent ymm chains): %.1f GFLOPS\n", peak);
    printf("nn.h kernel: %s\n", nn_simd_name());
    printf("OpenBLAS: core %s, config %s\n", openblas_get_corename(), openblas_get_config());
    printf("conv cases: VGG at batch %d, 3x3/s1/p1, batch folded into the GEMM: "
           "fwd M=Cout N=%d*H*W K=Cin*9 (NN), wgrad M=Cout N=Cin*9 K=%d*H*W (NT), "
           "igrad M=Cin*9 N=%d*H*W K=Cout (TN)\n", batch, batch, batch, batch);
    printf("each line: best of %d alternating rounds of >= %.0f ms\n", REPS, MIN_SECONDS * 1e3);
    fflush(stdout);
    for (t = 1; t <= max_threads; t++) {
        nn_set_threads(t);
        openblas_set_num_threads(t);
        for (i = 0; i < count; i++) {
            double best_nn = 0.0, best_blas = 0.0;
            if (!strstr(cases[i].name, filter)) continue;
            run(0, &cases[i]);   /* warm up: pack buffers, pool, caches */
            run(1, &cases[i]);
            if (t > 1) pause_seconds(0.15);
            for (rep = 0; rep < REPS; rep++) {
                double x = measure(0, &cases[i]), y = measure(1, &cases[i]);
                if (t > 1) pause_seconds(0.15);   /* let OpenBLAS's threads go to sleep */
                if (x > best_nn) best_nn = x;
                if (y > best_blas) best_blas = y;
            }
            if (t == 1 && cases[i].m == 1024 && cases[i].ta == 0 && cases[i].tb == 0) nn_1024 = best_nn;
            printf("gemm %s M=%d N=%d K=%d threads=%d nn=%.1f openblas=%.1f ratio=%.2f\n",
                   cases[i].name, cases[i].m, cases[i].n, cases[i].k, t, best_nn, best_blas,
                   best_nn / best_blas);
            fflush(stdout);
        }
    }
    if (peak > 0.0)
        printf("square 1024, 1 thread: %.0f%% of the measured peak\n", 100.0 * nn_1024 / peak);
    free(buf_a);
    free(buf_b);
    free(buf_c);
    return 0;
}
