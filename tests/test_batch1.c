/* Inference at small batches: the kernels that take an inference-only net's products
   with few columns, the weights read in place (nn__gemm_wide), against their scalar
   kernels and the AVX2 GEMM (the same bits), against a double-precision product (within
   the rounding bound), over thread counts (the same bits), and whole nets: an
   inference-only net at batches 1..5 against the same net in evaluation mode, which
   keeps the GEMM (the same bits). */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

static void fill(nn_rng *r, float *x, size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) x[i] = 2.0f * nn_rng_uniform(r) - 1.0f;
}

/* One product C = A B of m x n from k terms: A with row stride lda > k; B k x n with
   row stride ldb (conv form) or, transposed (Linear form), B[p][j] = Bt[j][p] with Bt
   n x k; C with row stride ldc > n (guard columns) or, transposed, C[i][j] at
   c[j ldc + i] with ldc > m. */
typedef struct product {
    int trans, m, n, k, lda, ldb, ldc;
    float *a, *b;
} product;

static product product_new(nn_rng *r, int trans, int m, int n, int k)
{
    product p;
    p.trans = trans; p.m = m; p.n = n; p.k = k;
    p.lda = k + 3;
    p.ldb = trans ? k + 1 : n + 5;
    p.ldc = trans ? m + 2 : n + 2;
    p.a = (float *)malloc(sizeof(float) * (size_t)m * p.lda);
    p.b = (float *)malloc(sizeof(float) * (size_t)(trans ? n : k) * p.ldb);
    fill(r, p.a, (size_t)m * p.lda);
    fill(r, p.b, (size_t)(trans ? n : k) * p.ldb);
    return p;
}

static void product_free(product *p) { free(p->a); free(p->b); }
static size_t c_size(const product *p) { return (size_t)(p->trans ? p->n : p->m) * p->ldc; }
static float b_at(const product *p, int t, int j) { return p->b[p->trans ? (size_t)j * p->ldb + t : (size_t)t * p->ldb + j]; }
static size_t c_at(const product *p, int i, int j) { return p->trans ? (size_t)j * p->ldc + i : (size_t)i * p->ldc + j; }

static float *guarded(const product *p)
{
    float *c = (float *)malloc(sizeof(float) * c_size(p));
    size_t i;
    for (i = 0; i < c_size(p); i++) c[i] = 1234.5f;
    return c;
}

static float *run_wide(const product *p)
{
    float *c = guarded(p);
    int ok = p->trans ? nn__gemm_wide(p->m, p->n, p->k, p->a, p->lda, p->b, 1, (size_t)p->ldb, c, 1, (size_t)p->ldc)
                      : nn__gemm_wide(p->m, p->n, p->k, p->a, p->lda, p->b, (size_t)p->ldb, 1, c, (size_t)p->ldc, 1);
    CHECK(ok, "no workspace");
    return c;
}

/* The GEMM of the same product: C^T = Bt A^T in the Linear form (nn_gemm(0, 1, ...)). */
static float *run_gemm(const product *p)
{
    float *c = guarded(p);
    if (p->trans) nn_gemm(0, 1, p->n, p->m, p->k, 1.0f, p->b, p->ldb, p->a, p->lda, 0.0f, c, p->ldc);
    else nn_gemm(0, 0, p->m, p->n, p->k, 1.0f, p->a, p->lda, p->b, p->ldb, 0.0f, c, p->ldc);
    return c;
}

/* Every C[i][j] within the rounding bound of the double product, (k + 2) u sum |terms|,
   and everything else in C untouched. */
static int check_product(const product *p, const float *c)
{
    int i, j, t, bad = 0;
    size_t q, real = 0;
    for (i = 0; i < p->m; i++)
        for (j = 0; j < p->n; j++) {
            double exact = 0.0, size = 0.0;
            for (t = 0; t < p->k; t++) {
                double term = (double)p->a[(size_t)i * p->lda + t] * b_at(p, t, j);
                exact += term;
                size += fabs(term);
            }
            if (!(fabs(c[c_at(p, i, j)] - exact) <= (p->k + 2) * 6e-8 * size + 1e-30)) bad++;
        }
    for (q = 0; q < c_size(p); q++) real += c[q] != 1234.5f;
    return bad + (real != (size_t)p->m * p->n);
}

/* m, n, k: panels 4 (n <= 4), 8 and 16 wide, partial tiles of rows and columns, k
   below, at and across the GEMM's K blocks (384) */
static const int shapes[][3] = {{1, 1, 1}, {1, 4, 512}, {8, 4, 8}, {3, 5, 7}, {9, 3, 17}, {17, 8, 100},
                                {13, 2, 4609}, {64, 4, 33}, {6, 16, 64}, {7, 17, 385}, {13, 33, 5},
                                {50, 64, 300}, {5, 1, 1}, {12, 48, 2304}, {20, 10, 769}};

/* The SIMD kernels give the scalar kernels' bits and the AVX2 GEMM's (where nn.h has
   them: elsewhere the products stay with the GEMM and only the scalar kernels are
   checked), every one within the rounding bound, in both forms. */
static void test_wide_same_bits_as_scalar_and_gemm(void)
{
    nn_rng r = nn_rng_new(5);
    int s, trans;
    nn_set_threads(1);
    for (trans = 0; trans < 2; trans++)
        for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
            product p = product_new(&r, trans, shapes[s][0], shapes[s][1], shapes[s][2]);
            float *slow, *fast, *gemm;
            nn__gemm_force_scalar = 1;
            slow = run_wide(&p);
            nn__gemm_force_scalar = 0;
            CHECK(check_product(&p, slow) == 0, "scalar, form %d, shape %d", trans, s);
            if (nn__wide_ok()) {
                fast = run_wide(&p);
                gemm = run_gemm(&p);
                CHECK(check_product(&p, fast) == 0, "simd, form %d, shape %d", trans, s);
                CHECK(memcmp(fast, slow, sizeof(float) * c_size(&p)) == 0, "form %d, shape %d: not the scalar bits",
                      trans, s);
                CHECK(memcmp(fast, gemm, sizeof(float) * c_size(&p)) == 0, "form %d, shape %d: not the GEMM's bits",
                      trans, s);
                free(fast);
                free(gemm);
            }
            free(slow);
            product_free(&p);
        }
}

/* Split over 2 and 3 threads (along m), the bits of one thread. */
static void test_wide_threads_same_bits(void)
{
    static const int big[][4] = {{0, 64, 4, 2048}, {0, 99, 40, 300}, {1, 100, 1, 3072}, {1, 97, 7, 500}};
    nn_rng r = nn_rng_new(6);
    int s, t;
    for (s = 0; s < (int)(sizeof big / sizeof big[0]); s++) {
        product p = product_new(&r, big[s][0], big[s][1], big[s][2], big[s][3]);
        float *one, *more;
        nn__gemm_force_scalar = !nn__wide_ok();
        nn_set_threads(1);
        one = run_wide(&p);
        for (t = 2; t <= 3; t++) {
            nn_set_threads(t);
            more = run_wide(&p);
            CHECK(memcmp(one, more, sizeof(float) * c_size(&p)) == 0, "shape %d, %d threads", s, t);
            free(more);
        }
        CHECK(check_product(&p, one) == 0, "shape %d", s);
        nn__gemm_force_scalar = 0;
        free(one);
        product_free(&p);
    }
    nn_set_threads(1);
}

/* A net with products of every kind at small batches: 3x3 at 8 x 8 (64 columns per
   image: rows at batch 1, the GEMM from 2), grouped 3x3 at 4 x 4 (16), 1x1 at 2 x 2 (4:
   4, 8 and 16 wide panels) and a Linear (batches up to 8). */
static nn_net *small_net(void)
{
    nn_net *net = nn_net_new(nn_shape3(5, 8, 8));
    nn_layer_desc grouped = nn_conv2d(12, 3, 1, 1);
    grouped.groups = 2;
    nn_add(net, nn_conv2d(10, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, grouped);
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_conv2d(9, 1, 1, 0));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(7));
    return net;
}

/* An inference-only net at batches 1..5 gives the evaluation-mode net's outputs (the
   GEMM) bit for bit, with 1 and 2 threads; its products at small batches go the wide
   way (where nn.h has the kernels), the training net's never. */
static void test_inference_only_matches_gemm_path(void)
{
    nn_net *ref = small_net(), *net;
    unsigned char *bytes;
    size_t size, i;
    float x[5 * 320];
    nn_rng r = nn_rng_new(8);
    int n, i2;
    nn_set_threads(1);
    CHECK(nn_build(ref, 5, 3) == NN_OK, "%s", nn_error());
    for (i = 0; i < (size_t)nn_num_param_tensors(ref); i++) {   /* BatchNorm statistics not 0 and 1 */
        nn_param *p = nn_get_param(ref, (int)i);
        size_t j;
        for (j = 0; j < p->size; j++) p->value[j] += 0.1f * (2.0f * nn_rng_uniform(&r) - 1.0f);
        if (strstr(p->name, "running_var")) for (j = 0; j < p->size; j++) p->value[j] = 0.5f + p->value[j] * p->value[j];
    }
    CHECK(nn_save_memory(ref, &bytes, &size) == NN_OK, "%s", nn_error());
    net = nn_load_memory(bytes, size, 5);
    CHECK(net != NULL, "%s", nn_error());
    nn_free_buffer(bytes);
    if (!net) { nn_net_free(ref); return; }
    nn_set_training(ref, 0);
    nn_set_training(net, 0);
    CHECK(nn_inference_only(net) == NN_OK, "%s", nn_error());
    fill(&r, x, sizeof x / sizeof x[0]);
    for (n = 1; n <= 5; n++) {
        float want[5 * 7], got[5 * 7], top = 0;
        const float *out;
        nn_set_threads(1);
        out = nn_forward(ref, x, n);
        memcpy(want, out, sizeof(float) * 7 * n);
        out = nn_forward(net, x, n);
        memcpy(got, out, sizeof(float) * 7 * n);
        for (i = 0; i < (size_t)(7 * n); i++) top = fabsf(want[i]) > top ? fabsf(want[i]) : top;
        CHECK(top > 0.0f, "batch %d: all zero", n);
        CHECK(memcmp(got, want, sizeof(float) * 7 * n) == 0, "batch %d: other bits than the GEMM's", n);
        nn_set_threads(2);
        out = nn_forward(net, x, n);
        CHECK(memcmp(out, got, sizeof(float) * 7 * n) == 0, "batch %d: 2 threads give other bits", n);
    }
    for (i2 = 0; i2 < nn_num_layers(net); i2++) {
        nn__run a = nn__run_of(net, i2), b = nn__run_of(ref, i2);
        CHECK(nn__wide_pays(&a, 4, NN_WIDE_MAX_N) == nn__wide_ok(), "layer %d", i2);
        CHECK(!nn__wide_pays(&b, 4, NN_WIDE_MAX_N), "layer %d of a trainable net", i2);
    }
    nn_set_threads(1);
    nn_net_free(ref);
    nn_net_free(net);
}

int main(void)
{
    RUN(test_wide_same_bits_as_scalar_and_gemm);
    RUN(test_wide_threads_same_bits);
    RUN(test_inference_only_matches_gemm_path);
    return test_end("test_batch1");
}
