/* Inference at small batches: the dot kernel and the row-panel kernel that take an
   inference-only net's products with few columns (nn__small_product), against their
   scalar kernels (the same bits), against a double-precision product (within the
   rounding bound), over thread counts (the same bits), and whole nets: an
   inference-only net at batches 1..5 against the same net in evaluation mode, which
   keeps the GEMM. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

static void fill(nn_rng *r, float *x, size_t count)
{
    size_t i;
    for (i = 0; i < count; i++) x[i] = 2.0f * nn_rng_uniform(r) - 1.0f;
}

/* One product C = A Bt^T (dot) or A B (rows) of m x n from k terms, A with row stride
   lda >= k, B with ldb, C with ldc >= n. */
typedef struct product {
    int rows_kernel, m, n, k, lda, ldb, ldc;
    float *a, *b;
} product;

static product product_new(nn_rng *r, int rows_kernel, int m, int n, int k)
{
    product p;
    p.rows_kernel = rows_kernel; p.m = m; p.n = n; p.k = k;
    p.lda = k + 3;
    p.ldb = rows_kernel ? n + 5 : k + 1;   /* B: k x n (rows) or Bt: n x k (dot) */
    p.ldc = n + 2;
    p.a = (float *)malloc(sizeof(float) * (size_t)m * p.lda);
    p.b = (float *)malloc(sizeof(float) * (size_t)(rows_kernel ? k : n) * p.ldb);
    fill(r, p.a, (size_t)m * p.lda);
    fill(r, p.b, (size_t)(rows_kernel ? k : n) * p.ldb);
    return p;
}

static void product_free(product *p) { free(p->a); free(p->b); }

static float b_at(const product *p, int t, int j)
{
    return p->rows_kernel ? p->b[(size_t)t * p->ldb + j] : p->b[(size_t)j * p->ldb + t];
}

/* C (ldc x m, guard values between the rows untouched) */
static float *run(const product *p)
{
    float *c = (float *)malloc(sizeof(float) * (size_t)p->m * p->ldc);
    int i;
    for (i = 0; i < p->m * p->ldc; i++) c[i] = 1234.5f;
    if (p->rows_kernel) CHECK(nn__gemm_rows(p->m, p->n, p->k, p->a, p->lda, p->b, p->ldb, c, p->ldc), "no workspace");
    else nn__gemm_dot(p->m, p->n, p->k, p->a, p->lda, p->b, p->ldb, c, p->ldc);
    return c;
}

/* Every C[i][j] within the rounding bound of the double product, (k + 8) u sum |terms|
   (8 lanes summed at the end), and the guard columns untouched. */
static int check_product(const product *p, const float *c)
{
    int i, j, t, bad = 0;
    for (i = 0; i < p->m; i++)
        for (j = 0; j < p->ldc; j++) {
            double exact = 0.0, size = 0.0;
            if (j >= p->n) {
                if (c[(size_t)i * p->ldc + j] != 1234.5f) bad++;
                continue;
            }
            for (t = 0; t < p->k; t++) {
                double term = (double)p->a[(size_t)i * p->lda + t] * b_at(p, t, j);
                exact += term;
                size += fabs(term);
            }
            if (!(fabs(c[(size_t)i * p->ldc + j] - exact) <= (p->k + 8) * 6e-8 * size + 1e-30)) bad++;
        }
    return bad;
}

static const int dot_shapes[][3] = {{1, 1, 1}, {1, 10, 512}, {2, 4, 8}, {3, 5, 7}, {5, 3, 17}, {7, 9, 100},
                                    {13, 2, 4609}, {64, 4, 33}, {4, 64, 15}, {9, 1, 6}};
static const int rows_shapes[][3] = {{1, 9, 3}, {6, 16, 64}, {7, 17, 100}, {13, 33, 5}, {50, 64, 300},
                                     {5, 1, 1}, {12, 48, 2304}};

/* The SIMD kernels give the scalar kernels' bits (where there is a SIMD kernel: on
   other machines the products stay with the GEMM and only the scalar one is checked),
   both within the rounding bound. */
static void test_kernels_same_bits_as_scalar(void)
{
    nn_rng r = nn_rng_new(5);
    int kind, s;
    nn_set_threads(1);
    for (kind = 0; kind < 2; kind++) {
        int count = kind ? (int)(sizeof rows_shapes / sizeof rows_shapes[0]) : (int)(sizeof dot_shapes / sizeof dot_shapes[0]);
        for (s = 0; s < count; s++) {
            const int *sh = kind ? rows_shapes[s] : dot_shapes[s];
            product p = product_new(&r, kind, sh[0], sh[1], sh[2]);
            float *slow, *fast;
            nn__gemm_force_scalar = 1;
            slow = run(&p);
            nn__gemm_force_scalar = 0;
            CHECK(check_product(&p, slow) == 0, "%s scalar %dx%dx%d", kind ? "rows" : "dot", sh[0], sh[1], sh[2]);
            if (nn__dot_pick()) {
                fast = run(&p);
                CHECK(check_product(&p, fast) == 0, "%s simd %dx%dx%d", kind ? "rows" : "dot", sh[0], sh[1], sh[2]);
                CHECK(memcmp(fast, slow, sizeof(float) * (size_t)p.m * p.ldc) == 0, "%s %dx%dx%d: other bits",
                      kind ? "rows" : "dot", sh[0], sh[1], sh[2]);
                free(fast);
            }
            free(slow);
            product_free(&p);
        }
    }
}

/* Split over 2 and 3 threads (along m, or n for the dot kernel when n > m), the bits of
   one thread. */
static void test_kernels_threads_same_bits(void)
{
    static const int shapes[][4] = {{0, 64, 4, 2048}, {0, 3, 40, 3000}, {0, 1, 10, 40000}, {1, 64, 40, 300},
                                    {1, 97, 17, 500}};
    nn_rng r = nn_rng_new(6);
    int s, t;
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        product p = product_new(&r, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3]);
        float *one, *more;
        nn__gemm_force_scalar = nn__dot_pick() == NULL;
        nn_set_threads(1);
        one = run(&p);
        for (t = 2; t <= 3; t++) {
            nn_set_threads(t);
            more = run(&p);
            CHECK(memcmp(one, more, sizeof(float) * (size_t)p.m * p.ldc) == 0, "shape %d, %d threads", s, t);
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
   dot up to batch 2, rows from 3) and a Linear (dot). */
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
   GEMM) within 1e-5 of their largest, 1 and 2 threads the same bits; where the new
   kernels run, the bits of batch 1 are not the GEMM's (they did run). */
static void test_inference_only_matches_gemm_path(void)
{
    nn_net *ref = small_net(), *net;
    unsigned char *bytes;
    size_t size, i;
    float x[5 * 320];
    nn_rng r = nn_rng_new(8);
    int n, differ = 0;
    nn_set_threads(1);
    CHECK(nn_build(ref, 5, 3) == NN_OK, "%s", nn_error());
    for (i = 0; i < (size_t)nn_num_params(ref); i++) {   /* BatchNorm statistics not 0 and 1 */
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
        for (i = 0; i < (size_t)(7 * n); i++) {
            CHECK(fabsf(got[i] - want[i]) <= 1e-5f * top, "batch %d, output %d: %g vs %g", n, (int)i, got[i], want[i]);
            if (n == 1 && got[i] != want[i]) differ = 1;
        }
        nn_set_threads(2);
        out = nn_forward(net, x, n);
        CHECK(memcmp(out, got, sizeof(float) * 7 * n) == 0, "batch %d: 2 threads give other bits", n);
    }
    if (nn__dot_pick()) CHECK(differ, "batch 1: the GEMM's bits, the small-batch kernels did not run");
    nn_set_threads(1);
    nn_net_free(ref);
    nn_net_free(net);
}

int main(void)
{
    RUN(test_kernels_same_bits_as_scalar);
    RUN(test_kernels_threads_same_bits);
    RUN(test_inference_only_matches_gemm_path);
    return test_end("test_batch1");
}
