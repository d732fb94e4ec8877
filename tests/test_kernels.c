/* Kernels: GEMM (every transpose, edges, alpha/beta, SIMD vs scalar, threads),
   the thread pool, im2col / col2im, the vector loops. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

#ifdef __aarch64__
#define BIG(x86, arm) (arm)   /* qemu is slow: keep the NEON run short */
#else
#define BIG(x86, arm) (x86)
#endif

static void fill_uniform(nn_rng *r, float *x, size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) x[i] = 2.0f * nn_rng_uniform(r) - 1.0f;
}

static void fill_nan(float *x, size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) x[i] = NAN;
}

typedef struct shape { int m, n, k; } shape;

/* Random op(A), op(B) and C with padded leading dimensions (ld = row length + pad). */
typedef struct problem {
    int ta, tb, m, n, k, lda, ldb, ldc;
    float *a, *b, *c0;
    size_t a_size, b_size, c_size;
} problem;

static problem problem_new(nn_rng *r, int ta, int tb, shape s)
{
    problem p;
    int a_rows = ta ? s.k : s.m, a_cols = ta ? s.m : s.k;
    int b_rows = tb ? s.n : s.k, b_cols = tb ? s.k : s.n;
    p.ta = ta; p.tb = tb; p.m = s.m; p.n = s.n; p.k = s.k;
    p.lda = a_cols + 3; p.ldb = b_cols + 5; p.ldc = s.n + 7;
    p.a_size = (size_t)a_rows * p.lda;
    p.b_size = (size_t)b_rows * p.ldb;
    p.c_size = (size_t)s.m * p.ldc;
    p.a = (float *)malloc((p.a_size + 1) * sizeof(float));
    p.b = (float *)malloc((p.b_size + 1) * sizeof(float));
    p.c0 = (float *)malloc((p.c_size + 1) * sizeof(float));
    fill_uniform(r, p.a, p.a_size);
    fill_uniform(r, p.b, p.b_size);
    fill_uniform(r, p.c0, p.c_size);
    return p;
}

static void problem_free(problem *p) { free(p->a); free(p->b); free(p->c0); }

static float op_a(const problem *p, int i, int q) { return p->ta ? p->a[(size_t)q * p->lda + i] : p->a[(size_t)i * p->lda + q]; }
static float op_b(const problem *p, int q, int j) { return p->tb ? p->b[(size_t)j * p->ldb + q] : p->b[(size_t)q * p->ldb + j]; }

/* Checks c against alpha*op(A)*op(B) + beta*c0 computed in double, and that the
   padding columns of c still hold c0's values. Bound: a float sum of k products,
   then a scale and an add, in any order, is within gamma_(k+2) = (k+2)u/(1-(k+2)u)
   (u = 2^-24) of the exact value times the sum of the magnitudes of its terms
   (Higham, "Accuracy and Stability of Numerical Algorithms", 3.1); we allow twice
   (k+2)u * (|alpha| sum|a||b| + |beta c0|). Returns the number of bad entries. */
static int check_gemm(const problem *p, float alpha, float beta, const float *c, const char *what)
{
    int i, j, q, bad = 0;
    const double u = 1.0 / 16777216.0;
    for (i = 0; i < p->m; i++)
        for (j = 0; j < p->ldc; j++) {
            size_t at = (size_t)i * p->ldc + j;
            double exact = 0.0, magnitude = 0.0, tol;
            if (j >= p->n) {
                if (memcmp(&c[at], &p->c0[at], sizeof(float)) != 0) bad++;
                continue;
            }
            for (q = 0; q < p->k; q++) {
                double t = (double)op_a(p, i, q) * op_b(p, q, j);
                exact += t;
                magnitude += fabs(t);
            }
            exact *= alpha;
            magnitude *= fabs(alpha);
            if (beta != 0.0f) {
                exact += (double)beta * p->c0[at];
                magnitude += fabs((double)beta * p->c0[at]);
            }
            tol = 2.0 * (p->k + 2) * u * magnitude + 1e-30;
            if (!(fabs(c[at] - exact) <= tol)) {
                if (bad < 3)
                    fprintf(stderr, "  %s ta=%d tb=%d m=%d n=%d k=%d alpha=%g beta=%g: C[%d][%d] = %.9g, "
                            "expected %.9g (tol %.3g)\n", what, p->ta, p->tb, p->m, p->n, p->k,
                            alpha, beta, i, j, c[at], exact, tol);
                bad++;
            }
        }
    return bad;
}

/* Runs nn_gemm on a copy of c0 (NaN in C's used part when beta is 0). */
static float *run_gemm(const problem *p, float alpha, float beta)
{
    float *c = (float *)malloc((p->c_size + 1) * sizeof(float));
    int i;
    memcpy(c, p->c0, p->c_size * sizeof(float));
    if (beta == 0.0f)
        for (i = 0; i < p->m; i++) fill_nan(c + (size_t)i * p->ldc, (size_t)p->n);
    nn_gemm(p->ta, p->tb, p->m, p->n, p->k, alpha, p->a, p->lda, p->b, p->ldb, beta, c, p->ldc);
    return c;
}

static const shape gemm_shapes[] = {
    {1, 1, 1}, {1, 70, 1}, {70, 1, 3}, {5, 7, 1}, {2, 3, 4}, {6, 16, 8}, {7, 17, 9},
    {13, 17, 19}, {31, 37, 41}, {61, 67, 70}, {64, 64, 64}, {5, 300, 11}, {300, 5, 13},
    {12, 32, 256}, {11, 31, 257}, {23, 29, 1031}, {47, 45, 1500}, {290, 33, 40},
    {7, 3100, 20}, {97, 101, 529},
};

static void test_gemm_every_transpose(void)
{
    static const float alphas[] = {1.0f, 1.0f, -0.5f, 2.0f};
    static const float betas[] = {0.0f, 1.0f, 0.25f, -1.0f};
    nn_rng r = nn_rng_new(1);
    size_t s;
    int t, v;
    printf("  simd: %s, threads: %d\n", nn_simd_name(), nn_get_threads());
#if defined(__aarch64__) && !defined(NN_NO_SIMD)
    CHECK(strcmp(nn_simd_name(), "neon") == 0, "aarch64 runs %s", nn_simd_name());
#elif defined(__x86_64__) && !defined(NN_NO_SIMD)
    if (__builtin_cpu_supports("avx512f"))
        CHECK(strcmp(nn_simd_name(), "avx512f") == 0, "AVX-512 CPU runs %s", nn_simd_name());
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        CHECK(strcmp(nn_simd_name(), "avx2+fma") == 0, "AVX2 CPU runs %s", nn_simd_name());
#endif
    for (s = 0; s < sizeof gemm_shapes / sizeof gemm_shapes[0]; s++)
        for (t = 0; t < 4; t++) {
            problem p = problem_new(&r, t >> 1, t & 1, gemm_shapes[s]);
            for (v = 0; v < 4; v++) {
                float *c = run_gemm(&p, alphas[v], betas[v]);
                int bad = check_gemm(&p, alphas[v], betas[v], c, "nn_gemm");
                CHECK(bad == 0, "shape %d trans %d alpha %g beta %g: %d bad", (int)s, t,
                      alphas[v], betas[v], bad);
                free(c);
            }
            problem_free(&p);
        }
}

static void test_gemm_reference_matches_double(void)
{
    nn_rng r = nn_rng_new(2);
    shape s = {9, 11, 13};
    int t;
    for (t = 0; t < 4; t++) {
        problem p = problem_new(&r, t >> 1, t & 1, s);
        float *c = (float *)malloc((p.c_size + 1) * sizeof(float));
        memcpy(c, p.c0, p.c_size * sizeof(float));
        nn_gemm_reference(p.ta, p.tb, p.m, p.n, p.k, -0.5f, p.a, p.lda, p.b, p.ldb, 0.25f, c, p.ldc);
        CHECK(check_gemm(&p, -0.5f, 0.25f, c, "reference") == 0, "trans %d", t);
        free(c);
        problem_free(&p);
    }
}

static void test_gemm_degenerate_sizes(void)
{
    float c[6] = {1, 2, 3, 4, 5, 6}, a[6] = {1, 1, 1, 1, 1, 1}, b[6] = {1, 1, 1, 1, 1, 1};
    int i;
    nn_gemm(0, 0, 2, 3, 0, 1.0f, a, 1, b, 3, 0.5f, c, 3);          /* k = 0: C = beta C */
    for (i = 0; i < 6; i++) CHECK(c[i] == 0.5f * (float)(i + 1), "c[%d] = %g", i, c[i]);
    fill_nan(c, 6);
    nn_gemm(1, 1, 2, 3, 0, 1.0f, a, 2, b, 1, 0.0f, c, 3);          /* beta = 0: C not read */
    for (i = 0; i < 6; i++) CHECK(c[i] == 0.0f, "c[%d] = %g", i, c[i]);
    for (i = 0; i < 6; i++) c[i] = 7.0f;
    nn_gemm(0, 0, 0, 3, 2, 1.0f, a, 2, b, 3, 0.0f, c, 3);          /* m = 0, n = 0: no-ops */
    nn_gemm(0, 0, 2, 0, 2, 1.0f, a, 2, b, 3, 0.0f, c, 3);
    for (i = 0; i < 6; i++) CHECK(c[i] == 7.0f, "c[%d] = %g", i, c[i]);
    fill_nan(c, 6);
    nn_gemm(0, 0, 2, 3, 2, 0.0f, a, 2, b, 3, 0.0f, c, 3);          /* alpha = 0 */
    for (i = 0; i < 6; i++) CHECK(c[i] == 0.0f, "c[%d] = %g", i, c[i]);
}

/* The SIMD micro-kernel against the portable blocked path (same driver, scalar
   micro-kernel), both within the rounding bound of the exact result and of each other. */
static void test_gemm_simd_matches_scalar(void)
{
    static const shape shapes[] = {{6, 16, 256}, {7, 17, 300}, {50, 70, 33}, {145, 40, 600},
                                   {3, 200, 1}, {200, 3, 700}};
    nn_rng r = nn_rng_new(3);
    size_t s;
    int t;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (t = 0; t < 4; t++) {
            problem p = problem_new(&r, t >> 1, t & 1, shapes[s]);
            float *fast, *slow;
            size_t i;
            double worst = 0.0;
            nn__gemm_force_scalar = 1;
            slow = run_gemm(&p, 0.75f, 0.5f);
            CHECK(strcmp(nn_simd_name(), "scalar") == 0, "forced: %s", nn_simd_name());
            nn__gemm_force_scalar = 0;
            fast = run_gemm(&p, 0.75f, 0.5f);
            CHECK(check_gemm(&p, 0.75f, 0.5f, slow, "scalar") == 0, "shape %d trans %d", (int)s, t);
            CHECK(check_gemm(&p, 0.75f, 0.5f, fast, nn_simd_name()) == 0, "shape %d trans %d", (int)s, t);
            for (i = 0; i < p.c_size; i++) {
                double d = fabs((double)fast[i] - slow[i]);
                if (d > worst) worst = d;
            }
            CHECK(worst <= 1e-4 * sqrt((double)p.k), "max |simd - scalar| = %g", worst);
            free(fast);
            free(slow);
            problem_free(&p);
        }
}

/* The AVX-512 kernel (12 x 32 tiles, a 24 x 16 narrow tile) against the AVX2 one (6 x 16,
   12 x 8): the same K blocks and the same chains, so the same bits, on sizes around both
   tiles' edges, every transpose, alpha and beta. Runs where the CPU has AVX-512F. */
static void test_gemm_avx512_matches_avx2(void)
{
#if defined(__x86_64__) && !defined(NN_NO_SIMD)
    static const shape shapes[] = {{12, 32, 384}, {13, 33, 385}, {11, 31, 7}, {24, 16, 100},
                                   {25, 15, 769}, {97, 70, 530}, {5, 300, 11}, {300, 5, 13},
                                   {64, 961, 216}, {1, 1, 1}};
    nn_rng r = nn_rng_new(4);
    size_t s;
    int t;
    if (!__builtin_cpu_supports("avx512f")) {
        printf("  (no AVX-512F on this CPU: AVX-512 kernel not run)\n");
        return;
    }
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (t = 0; t < 4; t++) {
            problem p = problem_new(&r, t >> 1, t & 1, shapes[s]);
            float *wide, *narrow;
            nn__gemm_no_avx512 = 1;
            narrow = run_gemm(&p, t ? -0.5f : 1.0f, t & 1 ? 0.25f : 0.0f);
            CHECK(strcmp(nn_simd_name(), "avx2+fma") == 0, "AVX-512 off: %s", nn_simd_name());
            nn__gemm_no_avx512 = 0;
            wide = run_gemm(&p, t ? -0.5f : 1.0f, t & 1 ? 0.25f : 0.0f);
            CHECK(strcmp(nn_simd_name(), "avx512f") == 0, "AVX-512 on: %s", nn_simd_name());
            CHECK(memcmp(wide, narrow, p.c_size * sizeof(float)) == 0, "shape %d trans %d: bits differ",
                  (int)s, t);
            CHECK(check_gemm(&p, t ? -0.5f : 1.0f, t & 1 ? 0.25f : 0.0f, wide, "avx512f") == 0,
                  "shape %d trans %d", (int)s, t);
            free(wide);
            free(narrow);
            problem_free(&p);
        }
#endif
}

/* A last B panel of at most NR/2 columns goes through the narrow edge tile (two A
   panels at once); its columns must get the same bits as when a full tile computes them
   (the same product with more columns). */
static void test_gemm_narrow_edge_same_bits(void)
{
    static const int narrow[] = {100, 4, 8, 33, 17};   /* 6 x 16 + 4, ..., 2 x 16 + 1 */
    nn_rng r = nn_rng_new(5);
    size_t s;
    int t, i;
    for (s = 0; s < sizeof narrow / sizeof narrow[0]; s++)
        for (t = 0; t < 4; t++) {
            const int m = 131, k = 700, n = narrow[s], wide = (n + 15) / 16 * 16 + 16;
            int ta = t >> 1, tb = t & 1;
            float *a = (float *)malloc((size_t)m * k * sizeof(float));
            float *b = (float *)malloc((size_t)wide * k * sizeof(float));
            float *c1 = (float *)malloc((size_t)m * n * sizeof(float));
            float *c2 = (float *)malloc((size_t)m * wide * sizeof(float));
            int bad = 0;
            for (i = 0; i < m * k; i++) a[i] = nn_rng_uniform(&r) - 0.5f;
            for (i = 0; i < wide * k; i++) b[i] = nn_rng_uniform(&r) - 0.5f;
            for (i = 0; i < m * n; i++) c1[i] = 0.25f;
            for (i = 0; i < m * wide; i++) c2[i] = 0.25f;
            /* op(B)'s first n columns are the same numbers in both calls: B^T is n x k
               rows (a prefix of wide rows), B is k x ldb with ldb = wide. */
            nn_gemm(ta, tb, m, n, k, 0.75f, a, ta ? m : k, b, tb ? k : wide, 0.5f, c1, n);
            nn_gemm(ta, tb, m, wide, k, 0.75f, a, ta ? m : k, b, tb ? k : wide, 0.5f, c2, wide);
            for (i = 0; i < m; i++) bad += memcmp(c1 + (size_t)i * n, c2 + (size_t)i * wide, (size_t)n * sizeof(float)) != 0;
            CHECK(bad == 0, "n = %d, trans %d: %d rows differ", n, t, bad);
            free(a); free(b); free(c1); free(c2);
        }
}

/* 1 and 2 threads must give the same bits (the split never changes a sum's order). */
static void test_gemm_threads_bit_identical(void)
{
    static const shape shapes[] = {
        {64, BIG(4096, 1024), 27},   /* conv1 forward: tiny K */
        {27, BIG(4096, 1024), 64},   /* conv1 input grad (TN) */
        {64, 27, BIG(4096, 1024)},   /* conv1 weight grad (NT): huge K */
        {128, 576, BIG(1024, 256)},  /* weight grad */
        {BIG(1152, 300), 128, 256},  /* tall */
        {7, 1000, 300}, {1000, 7, 300}, {200, 200, 200}, {97, 131, 1031},
    };
    nn_rng r = nn_rng_new(4);
    int saved = nn_get_threads();
    size_t s;
    int t;
    for (s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (t = 0; t < 4; t++) {
            problem p = problem_new(&r, t >> 1, t & 1, shapes[s]);
            float *one, *two;
            nn_set_threads(1);
            one = run_gemm(&p, 1.0f, 0.0f);
            nn_set_threads(2);
            two = run_gemm(&p, 1.0f, 0.0f);
            CHECK(memcmp(one, two, p.c_size * sizeof(float)) == 0, "m=%d n=%d k=%d trans %d",
                  p.m, p.n, p.k, t);
            free(one);
            free(two);
            nn_set_threads(3);      /* more threads than cores still agrees */
            two = run_gemm(&p, 1.0f, 0.0f);
            nn_set_threads(1);
            one = run_gemm(&p, 1.0f, 0.0f);
            CHECK(memcmp(one, two, p.c_size * sizeof(float)) == 0, "3 threads: m=%d n=%d k=%d",
                  p.m, p.n, p.k);
            free(one);
            free(two);
            problem_free(&p);
        }
    nn_set_threads(saved);
}

typedef struct count_ctx { int hits[64]; int nested_hits[64]; } count_ctx;

static void count_nested(void *ctx, int task) { ((count_ctx *)ctx)->nested_hits[task]++; }

static void count_task(void *ctx, int task)
{
    count_ctx *cc = (count_ctx *)ctx;
    cc->hits[task]++;
    if (task == 5) nn__parallel(64, count_nested, ctx);   /* nested: runs inline */
}

static void test_parallel_runs_every_task_once(void)
{
    int saved = nn_get_threads(), threads, round, t;
    for (threads = 1; threads <= 4; threads++) {
        nn_set_threads(threads);
#ifdef NN_NO_THREADS
        CHECK(nn_get_threads() == 1, "%d threads without a pool", nn_get_threads());
#else
        CHECK(nn_get_threads() == threads, "%d threads", nn_get_threads());
#endif
        for (round = 0; round < 50; round++) {
            count_ctx cc;
            memset(&cc, 0, sizeof cc);
            nn__parallel(1 + round % 64, count_task, &cc);
            for (t = 0; t < 64; t++) {
                CHECK(cc.hits[t] == (t < 1 + round % 64), "threads %d round %d task %d: %d",
                      threads, round, t, cc.hits[t]);
                CHECK(cc.nested_hits[t] == (round % 64 >= 5), "nested task %d", t);
            }
        }
    }
    nn_set_threads(0);
    CHECK(nn_get_threads() >= 1, "default %d", nn_get_threads());
    nn_set_threads(saved);
}

/* ---- im2col / col2im ---- */

typedef struct conv_case { int c, h, w, kh, kw, sh, sw, ph, pw; } conv_case;

/* nn_im2col has three paths: stride-1 same-size with rows >= 8 (shifted copy), small
   outputs (kernel size * outputs <= 256: index map) and the general row loops; the
   cases cover each. */

static const conv_case conv_cases[] = {
    {3, 7, 9, 3, 3, 1, 1, 1, 1},    /* 3x3 / s1 / p1: the shifted-copy path */
    {2, 6, 12, 3, 3, 1, 1, 1, 1},
    {2, 5, 11, 3, 5, 1, 1, 1, 2},   /* same-size, non-square kernel */
    {1, 9, 10, 5, 5, 1, 1, 2, 2},
    {2, 8, 8, 1, 1, 1, 1, 0, 0},    /* 1x1 */
    {3, 10, 7, 3, 2, 2, 1, 1, 0},   /* non-square kernel and stride */
    {2, 9, 11, 5, 3, 2, 3, 2, 1},
    {1, 5, 5, 5, 5, 1, 1, 2, 2},
    {4, 6, 6, 2, 2, 2, 2, 0, 0},
    {2, 4, 5, 3, 3, 1, 1, 2, 2},    /* padding wider than half the kernel */
    {1, 1, 1, 3, 3, 1, 1, 1, 1},
    {2, 12, 3, 3, 1, 3, 1, 1, 0},
};

static int out_size(int size, int k, int s, int p) { return (size + 2 * p - k) / s + 1; }

/* Two images side by side in one col matrix (ld_col = 2 * oh * ow + 3): the forward
   conv via im2col + gemm_reference equals a direct loop over all seven indices. */
static void test_im2col_conv_matches_direct(void)
{
    nn_rng r = nn_rng_new(5);
    size_t cs;
    for (cs = 0; cs < sizeof conv_cases / sizeof conv_cases[0]; cs++) {
        conv_case q = conv_cases[cs];
        int cout = 3, oh = out_size(q.h, q.kh, q.sh, q.ph), ow = out_size(q.w, q.kw, q.sw, q.pw);
        int rows = q.c * q.kh * q.kw, ld = 2 * oh * ow + 3, img_size = q.c * q.h * q.w;
        float *x = (float *)malloc(2 * (size_t)img_size * sizeof(float));
        float *w = (float *)malloc((size_t)cout * rows * sizeof(float));
        float *col = (float *)malloc((size_t)rows * ld * sizeof(float));
        float *y = (float *)malloc((size_t)cout * 2 * oh * ow * sizeof(float));
        int img, co, ci, ki, kj, oy, ox, i, bad = 0;
        fill_uniform(&r, x, 2 * (size_t)img_size);
        fill_uniform(&r, w, (size_t)cout * rows);
        fill_nan(col, (size_t)rows * ld);
        for (img = 0; img < 2; img++)
            nn_im2col(x + (size_t)img * img_size, q.c, q.h, q.w, q.kh, q.kw, q.sh, q.sw, q.ph, q.pw,
                      col + (size_t)img * oh * ow, ld);
        for (i = 0; i < rows; i++)
            CHECK(isnan(col[(size_t)i * ld + 2 * oh * ow]), "case %d wrote past its columns", (int)cs);
        nn_gemm_reference(0, 0, cout, 2 * oh * ow, rows, 1.0f, w, rows, col, ld, 0.0f, y, 2 * oh * ow);
        for (img = 0; img < 2; img++)
            for (co = 0; co < cout; co++)
                for (oy = 0; oy < oh; oy++)
                    for (ox = 0; ox < ow; ox++) {
                        double sum = 0.0;
                        for (ci = 0; ci < q.c; ci++)
                            for (ki = 0; ki < q.kh; ki++)
                                for (kj = 0; kj < q.kw; kj++) {
                                    int iy = oy * q.sh - q.ph + ki, ix = ox * q.sw - q.pw + kj;
                                    if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w) continue;
                                    sum += (double)w[(co * q.c + ci) * q.kh * q.kw + ki * q.kw + kj] *
                                           x[(size_t)img * img_size + (ci * q.h + iy) * q.w + ix];
                                }
                        if (fabs(y[(size_t)co * 2 * oh * ow + img * oh * ow + oy * ow + ox] - sum) > 1e-5)
                            bad++;
                    }
        CHECK(bad == 0, "case %d: %d outputs differ", (int)cs, bad);
        free(x); free(w); free(col); free(y);
    }
}

/* col2im is the adjoint of im2col: <im2col(x), y> = <x, col2im(y)>, and it adds. */
static void test_col2im_is_adjoint(void)
{
    nn_rng r = nn_rng_new(6);
    size_t cs;
    for (cs = 0; cs < sizeof conv_cases / sizeof conv_cases[0]; cs++) {
        conv_case q = conv_cases[cs];
        int oh = out_size(q.h, q.kh, q.sh, q.ph), ow = out_size(q.w, q.kw, q.sw, q.pw);
        int rows = q.c * q.kh * q.kw, ld = oh * ow + 2, img_size = q.c * q.h * q.w, i, j;
        float *x = (float *)malloc((size_t)img_size * sizeof(float));
        float *base = (float *)malloc((size_t)img_size * sizeof(float));
        float *back = (float *)malloc((size_t)img_size * sizeof(float));
        float *col = (float *)malloc((size_t)rows * ld * sizeof(float));
        float *y = (float *)malloc((size_t)rows * ld * sizeof(float));
        double lhs = 0.0, rhs = 0.0, scale = 0.0;
        fill_uniform(&r, x, (size_t)img_size);
        fill_uniform(&r, base, (size_t)img_size);
        fill_uniform(&r, y, (size_t)rows * ld);
        nn_im2col(x, q.c, q.h, q.w, q.kh, q.kw, q.sh, q.sw, q.ph, q.pw, col, ld);
        memcpy(back, base, (size_t)img_size * sizeof(float));
        nn_col2im(y, ld, q.c, q.h, q.w, q.kh, q.kw, q.sh, q.sw, q.ph, q.pw, back);
        for (i = 0; i < rows; i++)
            for (j = 0; j < oh * ow; j++) {
                lhs += (double)col[(size_t)i * ld + j] * y[(size_t)i * ld + j];
                scale += fabs((double)col[(size_t)i * ld + j] * y[(size_t)i * ld + j]);
            }
        for (i = 0; i < img_size; i++) rhs += (double)x[i] * ((double)back[i] - base[i]);
        CHECK(fabs(lhs - rhs) <= 1e-5 * (scale + 1.0), "case %d: %.9g vs %.9g", (int)cs, lhs, rhs);
        free(x); free(base); free(back); free(col); free(y);
    }
}

/* The vector loops against the scalar expressions they document, for every length
   0..41 and every misalignment: element-wise results bit for bit (with zeros, +-0 and
   negative values in the data), nothing written past the end, sums within float
   rounding of a double reference. */
static void test_vector_loops_match_scalar(void)
{
    enum { MAX = 41, PAD = 8 };
    nn_rng r = nn_rng_new(17);
    float x[MAX + 4], g[MAX + 4], m[MAX + 4], y[MAX + 4 + PAD], want[MAX];
    const float a = 0.37f, mu = 0.21f, b = -0.4f, k = 1.7f, c = 0.05f, canary = 12345.0f;
    size_t n, i;
    int off, bad = 0, bad_end = 0, bad_sum = 0, relu;
    for (i = 0; i < MAX + 4; i++) {
        x[i] = 2.0f * nn_rng_uniform(&r) - 1.0f;
        g[i] = 2.0f * nn_rng_uniform(&r) - 1.0f;
        m[i] = i % 5 == 0 ? 0.0f : i % 7 == 0 ? -0.0f : 2.0f * nn_rng_uniform(&r) - 1.0f;
    }
    for (n = 0; n <= MAX; n++)
        for (off = 0; off < 4; off++) {
            const float *xs = x + off, *gs = g + off, *ms = m + off;
            double sum = 0, sq = 0, sg = 0, sgd = 0;
            float got_g, got_gd;
#define RUN_LOOP(call, expr)                                                      \
            for (i = 0; i < n + PAD; i++) y[off + i] = canary;                     \
            call;                                                                 \
            for (i = 0; i < n; i++) want[i] = (expr);                              \
            bad += memcmp(y + off, want, n * sizeof(float)) != 0;                  \
            for (i = n; i < n + PAD; i++) bad_end += y[off + i] != canary;
            RUN_LOOP(nn__vmask_pos(y + off, ms, gs, n), ms[i] <= 0.0f ? 0.0f : gs[i])
            RUN_LOOP(nn__vselect_pos(y + off, xs, gs, n, a), xs[i] > 0.0f ? gs[i] : a * gs[i])
            for (relu = 0; relu < 2; relu++) {
                RUN_LOOP(nn__vaffine(y + off, xs, n, a, mu, b, relu),
                         relu ? (a * (xs[i] - mu) + b > 0.0f ? a * (xs[i] - mu) + b : 0.0f)
                              : a * (xs[i] - mu) + b)
            }
            RUN_LOOP(nn__vaxpy_dev(y + off, a, gs, NULL, xs, n, k, mu, c),
                     a * gs[i] + k * (xs[i] - mu) + c)
            RUN_LOOP(nn__vaxpy_dev(y + off, a, gs, ms, xs, n, k, mu, c),
                     a * (ms[i] > 0.0f ? gs[i] : 0.0f) + k * (xs[i] - mu) + c)
#undef RUN_LOOP
            for (i = 0; i < n; i++) {
                double gm = ms[i] > 0.0f ? gs[i] : 0.0;
                sum += xs[i];
                sq += ((double)xs[i] - mu) * ((double)xs[i] - mu);
                sg += gm;
                sgd += gm * ((double)xs[i] - mu);
            }
            bad_sum += fabs(nn__vsum(xs, n) - sum) > 1e-6 * (double)(n + 1);
            bad_sum += fabs(nn__vsum_sq_dev(xs, n, mu) - sq) > 1e-6 * (double)(n + 1);
            nn__vsum_grad(gs, ms, xs, n, mu, &got_g, &got_gd);
            bad_sum += fabs(got_g - sg) > 1e-6 * (double)(n + 1) || fabs(got_gd - sgd) > 1e-6 * (double)(n + 1);
        }
    CHECK(bad == 0, "%d element-wise results differ from the scalar expression", bad);
    CHECK(bad_end == 0, "%d writes past the end", bad_end);
    CHECK(bad_sum == 0, "%d sums off the double reference", bad_sum);
}

int main(void)
{
    RUN(test_gemm_every_transpose);
    RUN(test_gemm_reference_matches_double);
    RUN(test_gemm_degenerate_sizes);
    RUN(test_gemm_simd_matches_scalar);
    RUN(test_gemm_avx512_matches_avx2);
    RUN(test_gemm_narrow_edge_same_bits);
    RUN(test_gemm_threads_bit_identical);
    RUN(test_parallel_runs_every_task_once);
    RUN(test_im2col_conv_matches_direct);
    RUN(test_col2im_is_adjoint);
    RUN(test_vector_loops_match_scalar);
    return test_end("test_kernels");
}
