/* Conv2d's Winograd F(2x2, 3x3) path (3x3, stride 1, padding 1): forward, input
   gradient and weight gradient against a direct convolution in double and against the
   im2col path of the same layer; a finite-difference gradient check of a small net;
   1 vs 2 threads bit for bit; which layers take the path.

   Tolerance. Per output, the Winograd sums run in the transformed domain, where the
   terms are not the convolution's own products w*x but the products U_e V_e of
   transformed filters and patches. With |B|, |G|, |A| entries <= 1, every such
   product is bounded by products |g_ab| |d_pq| of one filter tap and one input of the
   4x4 patch, and each (tap, input) pair enters an output with total weight at most
   4 (2 per axis: in 1-D the largest weight of a pair, summed over the transformed
   positions, is 2). So, with S = 4 sum_c (sum_ab |g_ab|)(sum_{5x5 window} |d|) (the
   window around an output holds its tile's patch), every partial sum is at most S and
   the error is at most (number of roundings on the way) * eps * S: about 10 in the
   three transforms and one product, plus the length of the GEMM's sum (C for y, O for
   dx, the number of tiles n T for dW). We allow (16 + length) * FLT_EPSILON * S;
   FLT_EPSILON is twice the unit roundoff. A wrong index or sign is off by about the
   value itself, far above this (main() checks that the bound is not vacuous: the
   measured errors are reported against it and S stays a modest multiple of |value|). */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"
#include "gradcheck.h"

static void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * nn_rng_uniform(&r);
}

/* One Conv2d(out, 3, 1, 1) on c x h x w, built for max_batch with the Winograd mode
   given (1: wherever it applies, -1: never), input gradient on. */
static nn_net *conv_net(int c, int h, int w, int out, int no_bias, int max_batch, int mode)
{
    nn_net *net = nn_net_new(nn_shape3(c, h, w));
    nn_layer_desc d = nn_conv2d(out, 3, 1, 1);
    nn_status st;
    d.no_bias = no_bias;
    nn_add(net, d);
    nn_set_input_grad(net, 1);
    nn__wino_mode = mode;
    st = nn_build(net, max_batch, 7);
    nn__wino_mode = 0;
    if (st != NN_OK) {
        CHECK(0, "nn_build: %s", nn_error());
        nn_net_free(net);
        return NULL;
    }
    return net;
}

typedef struct { int c, h, w, out, n, max_batch, no_bias; } wino_case;

/* Reference in double: y, dx, dW, db and the error scales S of the header comment. */
typedef struct {
    double *y, *dx, *dw, db[80];
    double *sy, *sdx, *sdw;
} reference;

static double window_abs(const float *plane, int h, int w, int cy, int cx)
{
    double s = 0.0;
    int y, x;
    for (y = cy - 2; y <= cy + 2; y++)
        for (x = cx - 2; x <= cx + 2; x++)
            if (y >= 0 && y < h && x >= 0 && x < w) s += fabs(plane[y * w + x]);
    return s;
}

static void naive_reference(const wino_case *t, const float *x, const float *wt, const float *b,
                            const float *dy, reference *r)
{
    int C = t->c, H = t->h, W = t->w, O = t->out, n = t->n, i, o, c, y, xx, ky, kx;
    size_t plane = (size_t)H * W;
    double *gabs = (double *)calloc((size_t)O * C, sizeof(double));
    memset(r->dx, 0, sizeof(double) * n * C * plane);
    memset(r->dw, 0, sizeof(double) * O * C * 9);
    memset(r->sdx, 0, sizeof(double) * n * C * plane);
    memset(r->sdw, 0, sizeof(double) * O * C);
    memset(r->db, 0, sizeof r->db);
    for (o = 0; o < O; o++)
        for (c = 0; c < C; c++)
            for (ky = 0; ky < 9; ky++) gabs[o * C + c] += fabs(wt[(o * C + c) * 9 + ky]);
    for (i = 0; i < n; i++)
        for (o = 0; o < O; o++)
            for (y = 0; y < H; y++)
                for (xx = 0; xx < W; xx++) {
                    size_t yi = (((size_t)i * O + o) * H + y) * W + xx;
                    double sum = b ? b[o] : 0.0, scale = b ? fabs(b[o]) : 0.0, g = dy[yi];
                    r->db[o] += g;
                    for (c = 0; c < C; c++) {
                        const float *xc = x + ((size_t)i * C + c) * plane;
                        double win = window_abs(xc, H, W, y, xx);
                        scale += 4.0 * gabs[o * C + c] * win;
                        r->sdw[o * C + c] += 4.0 * fabs(g) * win;
                        for (ky = 0; ky < 3; ky++)
                            for (kx = 0; kx < 3; kx++) {
                                int iy = y - 1 + ky, ix = xx - 1 + kx;
                                size_t wi = ((size_t)o * C + c) * 9 + ky * 3 + kx, xi;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                xi = ((size_t)i * C + c) * plane + iy * W + ix;
                                sum += (double)wt[wi] * x[xi];
                                r->dx[xi] += (double)wt[wi] * g;
                                r->dw[wi] += (double)x[xi] * g;
                            }
                    }
                    r->y[yi] = sum;
                    r->sy[yi] = scale;
                }
    for (i = 0; i < n; i++)
        for (c = 0; c < C; c++)
            for (y = 0; y < H; y++)
                for (xx = 0; xx < W; xx++) {
                    double s = 0.0;
                    for (o = 0; o < O; o++)
                        s += 4.0 * gabs[o * C + c] *
                             window_abs(dy + ((size_t)i * O + o) * plane, H, W, y, xx);
                    r->sdx[((size_t)i * C + c) * plane + y * W + xx] = s;
                }
    free(gabs);
}

/* Worst |got - want| / tol over count values, tol = (16 + len) eps scale. *sharpness
   (if not NULL) gets mean tol / mean |want|: errors above that fraction of a typical
   value are caught, so it shows that the bound is not vacuous. */
static double worst_ratio(const float *got, const double *want, const double *scale, size_t count,
                          int len, double *sharpness)
{
    double worst = 0.0, sum_tol = 0.0, sum_want = 0.0;
    size_t j;
    for (j = 0; j < count; j++) {
        double tol = (16.0 + len) * FLT_EPSILON * scale[j] + 1e-30;
        double r = fabs(got[j] - want[j]) / tol;
        if (r > worst || r != r) worst = r != r ? 1e30 : r;
        sum_tol += tol;
        sum_want += fabs(want[j]);
    }
    if (sharpness) *sharpness = sum_tol / (sum_want + 1e-30);
    return worst;
}

static double g_worst[3];   /* worst error / tolerance seen, for y, dx, dW */
static double g_sharpness;  /* largest mean y tolerance / mean |y| */

/* Runs one case through the Winograd and the im2col layer with the same weights and
   checks both against the reference. mode 1 takes the Winograd path for any batch;
   mode 0 only where it pays (else the layer goes image by image through im2col). */
static void check_case(const wino_case *t, uint64_t seed, int mode)
{
    int C = t->c, H = t->h, W = t->w, O = t->out, n = t->n, T = ((H + 1) / 2) * ((W + 1) / 2);
    size_t nx = (size_t)n * C * H * W, ny = (size_t)n * O * H * W, nw = (size_t)O * C * 9;
    nn_net *wino = conv_net(C, H, W, O, t->no_bias, t->max_batch, mode);
    nn_net *ref = conv_net(C, H, W, O, t->no_bias, t->max_batch, -1);
    float *x = (float *)malloc(nx * sizeof(float)), *dy = (float *)malloc(ny * sizeof(float));
    reference r;
    const nn_layer *L, *R;
    const float *y;
    double worst, sharpness = 0.0;
    char what[96];
    snprintf(what, sizeof what, "c%d %dx%d out%d n%d (max_batch %d)%s", C, H, W, O, n,
             t->max_batch, t->no_bias ? " no bias" : "");
    r.y = (double *)malloc(ny * sizeof(double));
    r.sy = (double *)malloc(ny * sizeof(double));
    r.dx = (double *)malloc(nx * sizeof(double));
    r.sdx = (double *)malloc(nx * sizeof(double));
    r.dw = (double *)malloc(nw * sizeof(double));
    r.sdw = (double *)malloc((size_t)O * C * sizeof(double));
    if (!wino || !ref) goto done;
    L = nn_get_layer(wino, 0);
    R = nn_get_layer(ref, 0);
#ifndef NN_NO_WINOGRAD
    CHECK(wino->plan[0].winograd == 1, "%s: the Winograd path was not taken", what);
#endif
    CHECK(ref->plan[0].winograd == 0, "%s: the reference took the Winograd path", what);
    fill_uniform(x, nx, -1, 1, seed);
    fill_uniform(dy, ny, -1, 1, seed + 1);
    fill_uniform(L->weight->value, nw, -1, 1, seed + 2);
    memcpy(R->weight->value, L->weight->value, nw * sizeof(float));
    if (L->bias) {
        fill_uniform(L->bias->value, (size_t)O, -1, 1, seed + 3);
        memcpy(R->bias->value, L->bias->value, (size_t)O * sizeof(float));
    }
    naive_reference(t, x, L->weight->value, L->bias ? L->bias->value : NULL, dy, &r);
    nn__wino_mode = mode;   /* while it runs, too: mode 1 forces the path for small batches */

    y = nn_forward(wino, x, n);
    worst = worst_ratio(y, r.y, r.sy, ny, C, &sharpness);
    if (worst > g_worst[0]) g_worst[0] = worst;
    CHECK(worst <= 1.0, "%s: y error %.3g x the bound", what, worst);
    {   /* both paths are within their bounds of the truth, so within the sum of each other */
        const float *y2 = nn_forward(ref, x, n);
        size_t j;
        for (j = 0; j < ny; j++)
            if (fabs((double)y[j] - y2[j]) > 2.0 * (16.0 + 9 * C) * FLT_EPSILON * r.sy[j]) break;
        CHECK(j == ny, "%s: y Winograd vs im2col differ at %zu: %.9g vs %.9g", what, j, y[j], y2[j]);
    }
    nn_backward(wino, dy);
    nn_backward(ref, dy);
    worst = worst_ratio(nn_input_grad(wino), r.dx, r.sdx, nx, O, NULL);
    if (worst > g_worst[1]) g_worst[1] = worst;
    CHECK(worst <= 1.0, "%s: dx error %.3g x the bound", what, worst);
    {
        double *sdw9 = (double *)malloc(nw * sizeof(double));
        size_t j;
        for (j = 0; j < nw; j++) sdw9[j] = r.sdw[j / 9];
        worst = worst_ratio(L->weight->grad, r.dw, sdw9, nw, n * T, NULL);
        if (worst > g_worst[2]) g_worst[2] = worst;
        CHECK(worst <= 1.0, "%s: dW error %.3g x the bound", what, worst);
        /* the im2col layer's gradients agree within the sum of both bounds */
        for (j = 0; j < nw; j++)
            if (fabs((double)L->weight->grad[j] - R->weight->grad[j]) >
                2.0 * (16.0 + 9 * n * H * W) * FLT_EPSILON * sdw9[j]) break;
        CHECK(j == nw, "%s: dW Winograd vs im2col differ at %zu", what, j);
        for (j = 0; j < nx; j++)
            if (fabs((double)nn_input_grad(wino)[j] - nn_input_grad(ref)[j]) >
                2.0 * (16.0 + 9 * O) * FLT_EPSILON * r.sdx[j]) break;
        CHECK(j == nx, "%s: dx Winograd vs im2col differ at %zu", what, j);
        free(sdw9);
    }
    if (L->bias) {
        int o;
        for (o = 0; o < O; o++) {
            /* the Winograd path sums in the same order as the batched im2col path */
            if (nn__wino_pays(&wino->plan[0], L, n) && nn__conv_batched(&ref->plan[0], R))
                CHECK(L->bias->grad[o] == R->bias->grad[o], "%s: db[%d] %.9g vs %.9g", what, o,
                      L->bias->grad[o], R->bias->grad[o]);
            CHECK_NEAR(L->bias->grad[o], r.db[o], 1e-5 * (H * W * n));
        }
    }
    /* the bound is tight enough to catch an error of 3% of a typical output */
    if (sharpness > g_sharpness) g_sharpness = sharpness;
    CHECK(sharpness < 0.03, "%s: the y tolerance is %.3g of a typical |y|", what, sharpness);
done:
    nn__wino_mode = 0;
    nn_net_free(wino);
    nn_net_free(ref);
    free(x); free(dy);
    free(r.y); free(r.sy); free(r.dx); free(r.sdx); free(r.dw); free(r.sdw);
}

static void test_winograd_shapes(void)
{
    static const wino_case fixed[] = {
        {1, 1, 1, 1, 1, 1, 0},   {1, 2, 2, 1, 1, 1, 0},    {3, 3, 3, 2, 2, 2, 1},
        {2, 5, 7, 3, 3, 3, 0},   {4, 7, 5, 5, 2, 5, 0},    {1, 1, 9, 2, 2, 2, 0},
        {5, 9, 1, 2, 1, 1, 1},   {70, 4, 4, 3, 2, 2, 0},   {3, 2, 2, 70, 5, 5, 0},
        {64, 2, 2, 64, 5, 5, 0}, {16, 16, 16, 8, 2, 4, 0}, {8, 13, 11, 9, 3, 3, 0},
        {2, 34, 37, 2, 1, 2, 0},
    };
    nn_rng rng = nn_rng_new(2024);
    int i;
    for (i = 0; i < (int)(sizeof fixed / sizeof fixed[0]); i++) check_case(&fixed[i], 100 + 10 * (uint64_t)i, 1);
    for (i = 0; i < 40; i++) {   /* random shapes: channels 1..70, sizes 1..12, batch 1..5 */
        wino_case t;
        t.c = 1 + (int)nn_rng_below(&rng, 70);
        t.out = 1 + (int)nn_rng_below(&rng, 70);
        t.h = 1 + (int)nn_rng_below(&rng, 12);
        t.w = 1 + (int)nn_rng_below(&rng, 12);
        t.n = 1 + (int)nn_rng_below(&rng, 5);
        t.max_batch = t.n + (int)nn_rng_below(&rng, 3);   /* n below max_batch too */
        t.no_bias = (int)nn_rng_below(&rng, 4) == 0;
        check_case(&t, 1000 + 10 * (uint64_t)i, 1);
    }
    printf("  worst error / bound: y %.3g, dx %.3g, dW %.3g; y bound <= %.3g of a typical |y|\n",
           g_worst[0], g_worst[1], g_worst[2], g_sharpness);
}

/* Conv-BN-GELU-Conv-pool-Linear with both convs on the Winograd path. GELU, not ReLU:
   a probe of x moves the batch statistics and so every pre-activation, crossing many
   ReLU kinks at once (see test_small_convnet_gradcheck in test_layers.c); h = 1e-3. */
static void test_winograd_gradcheck(void)
{
    nn_net *net = nn_net_new(nn_shape3(3, 5, 6));
    float x[2 * 3 * 5 * 6];
    int p;
    nn_add(net, nn_conv2d(4, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_gelu(0));
    nn_add(net, nn_conv2d(3, 3, 1, 1));
    nn_add(net, nn_global_avgpool());
    nn_add(net, nn_linear(2));
    nn_set_input_grad(net, 1);
    nn__wino_mode = 1;
    CHECK(nn_build(net, 2, 3) == NN_OK, "build: %s", nn_error());
    nn__wino_mode = 0;
#ifndef NN_NO_WINOGRAD
    CHECK(net->plan[0].winograd && net->plan[3].winograd, "both convs Winograd");
#endif
    for (p = 0; p < nn_num_param_tensors(net); p++) {
        nn_param *par = nn_get_param(net, p);
        if (par->learnable) fill_uniform(par->value, par->size, -1, 1, 40 + (uint64_t)p);
    }
    fill_uniform(x, sizeof x / sizeof x[0], -1, 1, 41);
    nn__wino_mode = 1;   /* 2 x 9 tiles: below NN_WINO_MIN_TILES */
    CHECK(gradcheck_net(net, x, 2, 1e-3, 2e-3, 200, 9) == 0, "gradcheck");
    nn__wino_mode = 0;
    nn_net_free(net);
}

/* The same training steps on 1 and 2 threads give the same bits: outputs, every
   parameter and the input gradient. Big enough for the GEMMs to split. */
static void test_winograd_threads(void)
{
    float *out[2], *params[2], *dx[2], *x;
    size_t nparams = 0, nx = (size_t)4 * 32 * 9 * 10, nout = 0;
    int run, p, step, labels[4] = {1, 0, 2, 1};
    for (run = 0; run < 2; run++) {
        nn_net *net = nn_net_new(nn_shape3(32, 9, 10));
        nn_optim *opt;
        nn_sgd_desc sgd = {0};
        size_t at = 0;
        nn_add(net, nn_conv2d(48, 3, 1, 1));
        nn_add(net, nn_batchnorm());
        nn_add(net, nn_relu());
        nn_add(net, nn_conv2d(40, 3, 1, 1));
        nn_add(net, nn_global_avgpool());
        nn_add(net, nn_linear(3));
        nn_set_input_grad(net, 1);
        CHECK(nn_build(net, 4, 11) == NN_OK, "build: %s", nn_error());
#ifndef NN_NO_WINOGRAD
        CHECK(net->plan[0].winograd && net->plan[3].winograd, "Winograd chosen");
#endif
        sgd.lr = 0.1f;
        opt = nn_sgd(net, sgd);
        nn_set_threads(run + 1);
        x = (float *)malloc(nx * sizeof(float));
        fill_uniform(x, nx, -2, 2, 5);
        for (step = 0; step < 3; step++) nn_train_step(net, opt, x, labels, 4);
        nout = 4 * 48 * 9 * 10;
        out[run] = (float *)malloc(nout * sizeof(float));
        memcpy(out[run], nn_layer_output(net, 0), nout * sizeof(float));
        dx[run] = (float *)malloc(nx * sizeof(float));
        memcpy(dx[run], nn_input_grad(net), nx * sizeof(float));
        nparams = nn_num_param_scalars(net);
        params[run] = (float *)malloc(nparams * sizeof(float));
        for (p = 0; p < nn_num_param_tensors(net); p++) {
            nn_param *par = nn_get_param(net, p);
            if (!par->learnable) continue;
            memcpy(params[run] + at, par->value, par->size * sizeof(float));
            at += par->size;
        }
        nn_optim_free(opt);
        nn_net_free(net);
        free(x);
    }
    nn_set_threads(0);
    CHECK(memcmp(out[0], out[1], nout * sizeof(float)) == 0, "conv output differs between 1 and 2 threads");
    CHECK(memcmp(dx[0], dx[1], nx * sizeof(float)) == 0, "dx differs between 1 and 2 threads");
    CHECK(memcmp(params[0], params[1], nparams * sizeof(float)) == 0, "parameters differ between 1 and 2 threads");
    for (run = 0; run < 2; run++) { free(out[run]); free(dx[run]); free(params[run]); }
}

/* By default a layer built for a batch of 16 (4x4 planes: 4 tiles each, 64 in all)
   takes the Winograd path for 16 images but goes through im2col for 3 (12 tiles);
   both are right. */
static void test_winograd_small_batch(void)
{
    static const wino_case cases[] = {{16, 4, 4, 8, 16, 16, 0}, {16, 4, 4, 8, 3, 16, 0}};
    nn_net *net = conv_net(16, 4, 4, 8, 0, 16, 0);
    if (net) {
        const nn_layer *L = nn_get_layer(net, 0);
#ifndef NN_NO_WINOGRAD
        CHECK(net->plan[0].winograd && nn__wino_pays(&net->plan[0], L, 16), "16 images: Winograd");
#endif
        CHECK(!nn__wino_pays(&net->plan[0], L, 3), "3 images: im2col");
        nn_net_free(net);
    }
    check_case(&cases[0], 77, 0);
    check_case(&cases[1], 78, 0);
}

/* Which Conv2d layers take the path by default. */
static void test_winograd_choice(void)
{
    static const struct { int c, h, w, k, s, p, want; } cases[] = {
        {64, 16, 16, 3, 1, 1, 1},    /* the VGG layers */
        {512, 2, 2, 3, 1, 1, 0},     /* batch 2: 2 tiles, too few */
        {512, 8, 8, 3, 1, 1, 0},     /* 32 tiles: too few */
        {256, 12, 12, 3, 1, 1, 1},   /* 72 tiles */
        {16, 32, 32, 3, 1, 1, 1},    /* 16 input channels: enough */
        {8, 32, 32, 3, 1, 1, 0},     /* too few input channels to gain */
        {64, 16, 16, 3, 2, 1, 0},    /* stride 2 */
        {64, 16, 16, 5, 1, 2, 0},    /* 5x5 */
        {64, 16, 16, 3, 1, 0, 0},    /* no padding */
        {16, 4, 300, 3, 1, 1, 0},    /* wider than 2 NN__WINO_MAX_TW */
    };
    int i;
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        nn_net *net = nn_net_new(nn_shape3(cases[i].c, cases[i].h, cases[i].w));
        int want = cases[i].want;
#ifdef NN_NO_WINOGRAD
        want = 0;
#endif
        nn_add(net, nn_conv2d(8, cases[i].k, cases[i].s, cases[i].p));
        if (nn_build(net, 2, 1) == NN_OK)
            CHECK(net->plan[0].winograd == want, "case %d: winograd %d, expected %d", i,
                  net->plan[0].winograd, want);
        else CHECK(0, "case %d: %s", i, nn_error());
        nn_net_free(net);
    }
}

int main(void)
{
    RUN(test_winograd_shapes);
    RUN(test_winograd_gradcheck);
    RUN(test_winograd_threads);
    RUN(test_winograd_small_batch);
    RUN(test_winograd_choice);
    return test_end("test_winograd");
}
