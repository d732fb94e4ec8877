/* Layers: Conv2d, pooling, BatchNorm, activations, Scale, Dropout.
   Gradient checks by central differences (gradcheck.h), known values computed by hand,
   and Conv2d against a direct 7-loop convolution in double. */

/* Take the batched convolution path only when its workspace fits 16384 floats, so
   that the test cases built for max_batch 3 take it and those built for 1000 go image
   by image; test_conv2d_gradcheck checks that both paths are exercised. */
#define NN_CONV_KEEP_COLS ((size_t)16384)
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

/* Distinct values: a random permutation of 0..n-1, times step, shifted to be centred.
   Max pooling on it has no ties, and a probe of size h < step/2 never changes a max. */
static void fill_permutation(float *x, int n, float step, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    int *idx = (int *)malloc((size_t)n * sizeof(int)), i;
    for (i = 0; i < n; i++) idx[i] = i;
    nn_rng_shuffle(&r, idx, n);
    for (i = 0; i < n; i++) x[i] = (float)(idx[i] - n / 2) * step;
    free(idx);
}

/* A net of the given layers on input shape in, with the input gradient enabled. */
static nn_net *make_net(nn_shape in, const nn_layer_desc *layers, int count, int max_batch)
{
    nn_net *net = nn_net_new(in);
    int i;
    for (i = 0; i < count; i++) nn_add(net, layers[i]);
    nn_set_input_grad(net, 1);
    if (nn_build(net, max_batch, 7) != NN_OK) {
        CHECK(0, "nn_build: %s", nn_error());
        nn_net_free(net);
        return NULL;
    }
    return net;
}

/* Randomises every learnable parameter (so BN's gamma = 1, beta = 0 prove nothing
   special) in [-1, 1]. */
static void randomise_params(nn_net *net, uint64_t seed)
{
    int p;
    for (p = 0; p < nn_num_param_tensors(net); p++) {
        nn_param *par = nn_get_param(net, p);
        if (par->learnable) fill_uniform(par->value, par->size, -1.0f, 1.0f, seed + (uint64_t)p);
    }
}

/* Gradient check of a single layer on input shape in, batch n, built for max_batch. */
static void check_layer(nn_shape in, nn_layer_desc d, int n, int max_batch, double h,
                        int permutation_input, const char *what)
{
    nn_net *net = make_net(in, &d, 1, max_batch);
    size_t count = (size_t)n * nn_shape_size(in);
    float *x = (float *)malloc(count * sizeof(float));
    if (!net) { free(x); return; }
    if (permutation_input) fill_permutation(x, (int)count, 0.05f, 11);
    else fill_uniform(x, count, -2.0f, 2.0f, 11);
    randomise_params(net, 5);
    CHECK(gradcheck_net(net, x, n, h, 2e-3, 300, 3) == 0, "%s", what);
    nn_net_free(net);
    free(x);
}

/* ---- Conv2d ------------------------------------------------------------------------ */

typedef struct { int c, h, w, out, k, s, p, no_bias; } conv_case;

static const conv_case conv_cases[] = {
    {2, 5, 7, 3, 1, 1, 0, 0},   /* 1x1: x is the column matrix */
    {2, 5, 7, 3, 1, 2, 0, 1},   /* 1x1 with stride: im2col */
    {2, 6, 5, 3, 3, 1, 1, 0},
    {3, 7, 6, 2, 3, 2, 0, 0},
    {2, 7, 9, 2, 3, 2, 2, 1},
    {2, 7, 9, 2, 5, 1, 2, 1},
    {1, 8, 5, 2, 5, 2, 2, 0},
    {2, 5, 4, 4, 5, 2, 1, 0},
    {1, 3, 3, 1, 5, 1, 1, 0},   /* kernel larger than the image, fits with padding */
};
#define NUM_CONV_CASES ((int)(sizeof conv_cases / sizeof conv_cases[0]))

/* Conv2d is linear in x and in W (bilinear), so central differences have no truncation
   error and h can be large: h = 0.25 leaves only float rounding in the loss (~1e-7 of
   sum |y r|, divided by 2h), far below tol 2e-3. Each case runs batched (max_batch 3)
   and image by image (max_batch 1000), through the GEMMs (a 1-channel case would
   otherwise take the depthwise path, which tests/test_options.c checks). */
static void test_conv2d_gradcheck(void)
{
    int i, mb;
    nn__depthwise_mode = -1;
    for (i = 0; i < NUM_CONV_CASES; i++)
        for (mb = 0; mb < 2; mb++) {
            const conv_case *t = &conv_cases[i];
            nn_layer_desc d = nn_conv2d(t->out, t->k, t->s, t->p);
            char what[128];
            d.no_bias = t->no_bias;
            snprintf(what, sizeof what, "conv case %d (c%d %dx%d out%d k%d s%d p%d bias %d), max_batch %d",
                     i, t->c, t->h, t->w, t->out, t->k, t->s, t->p, !t->no_bias, mb ? 1000 : 3);
            check_layer(nn_shape3(t->c, t->h, t->w), d, 3, mb ? 1000 : 3, 0.25, 0, what);
            {   /* which path did it take? */
                nn_net *net = make_net(nn_shape3(t->c, t->h, t->w), &d, 1, mb ? 1000 : 3);
                const nn_layer *L = net ? nn_get_layer(net, 0) : NULL;
                if (L) CHECK(nn__conv_batched(&net->plan[0], L) == (!mb && !nn__conv_direct(L)), "%s: path", what);
                nn_net_free(net);
            }
        }
    nn__depthwise_mode = 0;
}

/* Direct convolution in double: y[i,o,oy,ox] = b[o] + sum_{c,ky,kx} W[o,c,ky,kx] x[i,c,iy,ix]
   with iy = oy s - p + ky; and its adjoints dx, dW, db for a given dy. */
static void naive_conv(const conv_case *t, int n, const float *x, const float *w, const float *b,
                       const float *dy, double *y, double *dx, double *dw, double *db)
{
    int oh = (t->h + 2 * t->p - t->k) / t->s + 1, ow = (t->w + 2 * t->p - t->k) / t->s + 1;
    int i, o, c, oy, ox, ky, kx;
    memset(dx, 0, sizeof(double) * (size_t)n * t->c * t->h * t->w);
    memset(dw, 0, sizeof(double) * (size_t)t->out * t->c * t->k * t->k);
    memset(db, 0, sizeof(double) * (size_t)t->out);
    for (i = 0; i < n; i++)
        for (o = 0; o < t->out; o++)
            for (oy = 0; oy < oh; oy++)
                for (ox = 0; ox < ow; ox++) {
                    size_t yi = (((size_t)i * t->out + o) * oh + oy) * ow + ox;
                    double sum = b ? b[o] : 0.0, g = dy[yi];
                    if (b) db[o] += g;
                    for (c = 0; c < t->c; c++)
                        for (ky = 0; ky < t->k; ky++)
                            for (kx = 0; kx < t->k; kx++) {
                                int iy = oy * t->s - t->p + ky, ix = ox * t->s - t->p + kx;
                                size_t wi = (((size_t)o * t->c + c) * t->k + ky) * t->k + kx, xi;
                                if (iy < 0 || iy >= t->h || ix < 0 || ix >= t->w) continue;
                                xi = (((size_t)i * t->c + c) * t->h + iy) * t->w + ix;
                                sum += (double)w[wi] * x[xi];
                                dx[xi] += (double)w[wi] * g;
                                dw[wi] += (double)x[xi] * g;
                            }
                    y[yi] = sum;
                }
}

/* float GEMM sums of at most a few hundred products of O(1) terms: agreement to 1e-4
   relative (of max(1, |value|)) is ample, while an indexing error is off by O(1). */
static void test_conv2d_vs_naive(void)
{
    int i;
    for (i = 0; i < NUM_CONV_CASES; i++) {
        const conv_case *t = &conv_cases[i];
        nn_layer_desc d = nn_conv2d(t->out, t->k, t->s, t->p);
        nn_net *net;
        const nn_layer *L;
        int n = 2, oh = (t->h + 2 * t->p - t->k) / t->s + 1, ow = (t->w + 2 * t->p - t->k) / t->s + 1;
        size_t nx = (size_t)n * t->c * t->h * t->w, ny = (size_t)n * t->out * oh * ow;
        size_t nw = (size_t)t->out * t->c * t->k * t->k, j;
        float *x = (float *)malloc(nx * sizeof(float)), *dy = (float *)malloc(ny * sizeof(float));
        double *y = (double *)malloc(ny * sizeof(double)), *dx = (double *)malloc(nx * sizeof(double));
        double *dw = (double *)malloc(nw * sizeof(double)), db[8];
        const float *got;
        int bad = 0;
        d.no_bias = t->no_bias;
        net = make_net(nn_shape3(t->c, t->h, t->w), &d, 1, i % 2 ? 2 : 1000);
        if (!net) break;
        L = nn_get_layer(net, 0);
        CHECK(L->out.c == t->out && L->out.h == oh && L->out.w == ow, "case %d: output shape", i);
        CHECK(L->weight->ndim == 4 && L->weight->shape[0] == t->out && L->weight->shape[1] == t->c &&
              L->weight->shape[2] == t->k && L->weight->shape[3] == t->k, "case %d: weight shape", i);
        CHECK(t->no_bias ? L->bias == NULL : (L->bias && L->bias->size == (size_t)t->out), "case %d: bias", i);
        fill_uniform(x, nx, -1, 1, 100 + (uint64_t)i);
        fill_uniform(dy, ny, -1, 1, 200 + (uint64_t)i);
        randomise_params(net, 300 + (uint64_t)i);
        naive_conv(t, n, x, L->weight->value, L->bias ? L->bias->value : NULL, dy, y, dx, dw, db);
        got = nn_forward(net, x, n);
        for (j = 0; j < ny; j++) bad += fabs(got[j] - y[j]) > 1e-4 * (fabs(y[j]) > 1 ? fabs(y[j]) : 1);
        CHECK(bad == 0, "case %d: %d outputs differ from the direct convolution", i, bad);
        nn_backward(net, dy);
        bad = 0;
        for (j = 0; j < nx; j++)
            bad += fabs(nn_input_grad(net)[j] - dx[j]) > 1e-4 * (fabs(dx[j]) > 1 ? fabs(dx[j]) : 1);
        CHECK(bad == 0, "case %d: %d entries of dx differ", i, bad);
        bad = 0;
        for (j = 0; j < nw; j++)
            bad += fabs(L->weight->grad[j] - dw[j]) > 1e-4 * (fabs(dw[j]) > 1 ? fabs(dw[j]) : 1);
        CHECK(bad == 0, "case %d: %d entries of dW differ", i, bad);
        if (L->bias) {
            bad = 0;
            for (j = 0; j < (size_t)t->out; j++)
                bad += fabs(L->bias->grad[j] - db[j]) > 1e-4 * (fabs(db[j]) > 1 ? fabs(db[j]) : 1);
            CHECK(bad == 0, "case %d: %d entries of db differ", i, bad);
        }
        /* backward overwrites (does not accumulate) the parameter gradients */
        nn_forward(net, x, n);
        nn_backward(net, dy);
        CHECK(fabs(L->weight->grad[0] - dw[0]) <= 1e-4 * (fabs(dw[0]) > 1 ? fabs(dw[0]) : 1),
              "case %d: a second backward must give the same dW", i);
        nn_net_free(net);
        free(x); free(dy); free(y); free(dx); free(dw);
    }
}

static void test_conv2d_known_values(void)
{
    /* x = 1..9 on 3x3, W = ones 2x2, b = 1: y = [12 16 24 28] + 1.
       dy = ones: dx counts the windows covering each pixel, dW[ky,kx] = the sum of the
       2x2 block at offset (ky,kx), db = 4. */
    nn_layer_desc d = nn_conv2d(1, 2, 1, 0);
    nn_net *net = make_net(nn_shape3(1, 3, 3), &d, 1, 1);
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, dy[4] = {1, 1, 1, 1};
    const float want_dx[9] = {1, 2, 1, 2, 4, 2, 1, 2, 1}, want_dw[4] = {12, 16, 24, 28};
    const float *y, *dx;
    const nn_layer *L;
    int i, ok = 1;
    if (!net) return;
    L = nn_get_layer(net, 0);
    for (i = 0; i < 4; i++) L->weight->value[i] = 1.0f;
    L->bias->value[0] = 1.0f;
    y = nn_forward(net, x, 1);
    CHECK(y[0] == 13 && y[1] == 17 && y[2] == 25 && y[3] == 29, "y = %g %g %g %g", y[0], y[1], y[2], y[3]);
    nn_backward(net, dy);
    dx = nn_input_grad(net);
    for (i = 0; i < 9; i++) ok &= dx[i] == want_dx[i];
    for (i = 0; i < 4; i++) ok &= L->weight->grad[i] == want_dw[i];
    CHECK(ok, "dx / dW");
    CHECK(L->bias->grad[0] == 4.0f, "db = %g", L->bias->grad[0]);
    CHECK(strcmp(L->weight->name, "0.weight") == 0 && strcmp(L->bias->name, "0.bias") == 0, "names");
    nn_net_free(net);
}

static void test_conv2d_default_init(void)
{
    /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in*k*k = 4*9 = 36: bound 1/6. */
    nn_layer_desc d = nn_conv2d(8, 3, 1, 1);
    nn_net *net = make_net(nn_shape3(4, 5, 5), &d, 1, 1);
    const nn_layer *L;
    float lo = 1, hi = -1;
    size_t i;
    if (!net) return;
    L = nn_get_layer(net, 0);
    for (i = 0; i < L->weight->size; i++) {
        if (L->weight->value[i] < lo) lo = L->weight->value[i];
        if (L->weight->value[i] > hi) hi = L->weight->value[i];
    }
    CHECK(lo >= -1.0f / 6 && hi <= 1.0f / 6 && lo < -0.15f && hi > 0.15f, "weights in [%g, %g]", lo, hi);
    for (i = 0; i < L->bias->size; i++)
        CHECK(fabsf(L->bias->value[i]) <= 1.0f / 6, "bias %g", L->bias->value[i]);
    nn_net_free(net);
}

/* ---- Pooling ------------------------------------------------------------------------ */

/* Max pooling is piecewise linear: on a permutation input (spacing 0.05) a probe of
   h = 0.01 never changes an argmax, so the differences are exact up to rounding. */
static void test_maxpool_gradcheck(void)
{
    check_layer(nn_shape3(2, 6, 8), nn_maxpool2d(2, 2, 0), 3, 3, 0.01, 1, "maxpool 2/2/0");
    check_layer(nn_shape3(2, 7, 5), nn_maxpool2d(2, 2, 0), 3, 3, 0.01, 1, "maxpool 2/2/0 odd");
    check_layer(nn_shape3(2, 7, 9), nn_maxpool2d(3, 2, 1), 3, 3, 0.01, 1, "maxpool 3/2/1");
    check_layer(nn_shape3(3, 5, 6), nn_maxpool2d(3, 1, 1), 2, 2, 0.01, 1, "maxpool 3/1/1");
    check_layer(nn_shape3(1, 9, 7), nn_maxpool2d(3, 0, 0), 2, 2, 0.01, 1, "maxpool 3/default/0");
    check_layer(nn_shape3(2, 8, 7), nn_maxpool2d(5, 2, 2), 2, 2, 0.01, 1, "maxpool 5/2/2");
}

/* Average pooling is linear: h = 0.25 (see the Conv2d note). */
static void test_avgpool_gradcheck(void)
{
    check_layer(nn_shape3(2, 6, 8), nn_avgpool2d(2, 2, 0), 3, 3, 0.25, 0, "avgpool 2/2/0");
    check_layer(nn_shape3(2, 7, 9), nn_avgpool2d(3, 2, 1), 3, 3, 0.25, 0, "avgpool 3/2/1");
    check_layer(nn_shape3(3, 5, 6), nn_avgpool2d(3, 1, 1), 2, 2, 0.25, 0, "avgpool 3/1/1");
    check_layer(nn_shape3(1, 9, 7), nn_avgpool2d(5, 2, 2), 2, 2, 0.25, 0, "avgpool 5/2/2");
    check_layer(nn_shape3(2, 7, 5), nn_avgpool2d(2, 0, 1), 2, 2, 0.25, 0, "avgpool 2/default/1");
    check_layer(nn_shape3(3, 5, 7), nn_global_avgpool(), 3, 3, 0.25, 0, "global avgpool");
}

static void test_maxpool_known_values(void)
{
    {   /* a tie: the first maximum in scan order takes the whole gradient */
        nn_layer_desc d = nn_maxpool2d(2, 2, 0);
        nn_net *net = make_net(nn_shape3(1, 2, 4), &d, 1, 1);
        const float x[8] = {1, 1, 2, 0, 1, 1, 0, 2}, dy[2] = {5, 7};
        const float *y, *dx;
        if (!net) return;
        y = nn_forward(net, x, 1);
        CHECK(y[0] == 1 && y[1] == 2, "y = %g %g", y[0], y[1]);
        nn_backward(net, dy);
        dx = nn_input_grad(net);
        CHECK(dx[0] == 5 && dx[1] == 0 && dx[4] == 0 && dx[5] == 0, "tie 1: first max gets dy");
        CHECK(dx[2] == 7 && dx[7] == 0 && dx[3] == 0 && dx[6] == 0, "tie 2: first max gets dy");
        CHECK(nn_get_layer(net, 0)->out.h == 1 && nn_get_layer(net, 0)->out.w == 2, "shape");
        nn_net_free(net);
    }
    {   /* padding never wins, even over all-negative input; overlapping windows add up */
        nn_layer_desc d = nn_maxpool2d(3, 1, 1);
        nn_net *net = make_net(nn_shape3(1, 2, 2), &d, 1, 1);
        const float x[4] = {-3, -1, -4, -2}, dy[4] = {1, 2, 3, 4};
        const float *y, *dx;
        if (!net) return;
        y = nn_forward(net, x, 1);
        CHECK(y[0] == -1 && y[1] == -1 && y[2] == -1 && y[3] == -1, "y = %g %g %g %g", y[0], y[1], y[2], y[3]);
        nn_backward(net, dy);
        dx = nn_input_grad(net);
        CHECK(dx[0] == 0 && dx[1] == 10 && dx[2] == 0 && dx[3] == 0, "dx = %g %g %g %g", dx[0], dx[1], dx[2], dx[3]);
        nn_net_free(net);
    }
    {   /* NaN wins its window (PyTorch propagates it); -inf and +inf are ordinary */
        nn_layer_desc d = nn_maxpool2d(2, 2, 0);
        nn_net *net = make_net(nn_shape3(1, 2, 6), &d, 1, 1);
        float x[12] = {1, 5, -INFINITY, -INFINITY, 2, 3,
                       0, 0, -INFINITY, -INFINITY, INFINITY, 3};
        const float dy[3] = {1, 2, 3};
        const float *y, *dx;
        if (!net) return;
        x[6] = NAN;
        y = nn_forward(net, x, 1);
        CHECK(isnan(y[0]) && y[1] == -INFINITY && y[2] == INFINITY, "y = %g %g %g", y[0], y[1], y[2]);
        nn_backward(net, dy);
        dx = nn_input_grad(net);
        CHECK(dx[6] == 1 && dx[1] == 0 && dx[2] == 2 && dx[10] == 3, "dx to the NaN / first -inf / +inf");
        nn_net_free(net);
    }
    {   /* 3/2/1 on 5x5 (VGG's pooling): output 3x3; the corner window sees 2x2 pixels */
        nn_layer_desc d = nn_maxpool2d(3, 2, 1);
        nn_net *net = make_net(nn_shape3(1, 5, 5), &d, 1, 1);
        float x[25];
        const float *y;
        int i;
        if (!net) return;
        for (i = 0; i < 25; i++) x[i] = (float)-i;   /* the max of a window is its top-left */
        y = nn_forward(net, x, 1);
        CHECK(nn_get_layer(net, 0)->out.h == 3 && nn_get_layer(net, 0)->out.w == 3, "shape");
        CHECK(y[0] == 0 && y[1] == -1 && y[2] == -3 && y[3] == -5 && y[4] == -6 && y[8] == -18,
              "y = %g %g %g %g %g .. %g", y[0], y[1], y[2], y[3], y[4], y[8]);
        nn_net_free(net);
    }
}

static void test_avgpool_known_values(void)
{
    {   /* k2 s2 p1 on 2x2: each window holds one real pixel, divided by 4 anyway */
        nn_layer_desc d = nn_avgpool2d(2, 2, 1);
        nn_net *net = make_net(nn_shape3(1, 2, 2), &d, 1, 1);
        const float x[4] = {1, 2, 3, 4}, dy[4] = {1, 1, 1, 1};
        const float *y, *dx;
        if (!net) return;
        y = nn_forward(net, x, 1);
        CHECK(y[0] == 0.25f && y[1] == 0.5f && y[2] == 0.75f && y[3] == 1.0f, "y = %g %g %g %g", y[0], y[1], y[2], y[3]);
        nn_backward(net, dy);
        dx = nn_input_grad(net);
        CHECK(dx[0] == 0.25f && dx[1] == 0.25f && dx[2] == 0.25f && dx[3] == 0.25f, "dx");
        nn_net_free(net);
    }
    {   /* k3 s1 p1 on 3x3 ones: corner 4/9, edge 6/9, centre 1 */
        nn_layer_desc d = nn_avgpool2d(3, 1, 1);
        nn_net *net = make_net(nn_shape3(1, 3, 3), &d, 1, 1);
        const float x[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
        const float *y;
        if (!net) return;
        y = nn_forward(net, x, 1);
        CHECK_NEAR(y[0], 4.0 / 9, 1e-6);
        CHECK_NEAR(y[1], 6.0 / 9, 1e-6);
        CHECK_NEAR(y[4], 1.0, 1e-6);
        CHECK_NEAR(y[8], 4.0 / 9, 1e-6);
        nn_net_free(net);
    }
    {   /* global average: 2 channels of 2x2 -> 2x1x1 */
        nn_layer_desc d = nn_global_avgpool();
        nn_net *net = make_net(nn_shape3(2, 2, 2), &d, 1, 1);
        const float x[8] = {1, 2, 3, 4, -1, -1, -1, 3}, dy[2] = {4, -8};
        const float *y, *dx;
        if (!net) return;
        CHECK(nn_output_shape(net).c == 2 && nn_output_shape(net).h == 1 && nn_output_shape(net).w == 1, "shape");
        y = nn_forward(net, x, 1);
        CHECK(y[0] == 2.5f && y[1] == 0.0f, "y = %g %g", y[0], y[1]);
        nn_backward(net, dy);
        dx = nn_input_grad(net);
        CHECK(dx[0] == 1 && dx[3] == 1 && dx[4] == -2 && dx[7] == -2, "dx");
        nn_net_free(net);
    }
}

/* ---- BatchNorm ---------------------------------------------------------------------- */

/* Training mode is nonlinear (through the mean and variance): h = 1e-2 gives a
   truncation error O(h^2) ~ 1e-4 relative, inside tol 2e-3. Evaluation is affine. */
static void test_batchnorm_gradcheck(void)
{
    check_layer(nn_shape1(5), nn_batchnorm(), 4, 4, 1e-2, 0, "BatchNorm1d, training");
    check_layer(nn_shape1(3), nn_batchnorm(), 7, 9, 1e-2, 0, "BatchNorm1d, training, partial batch");
    check_layer(nn_shape3(3, 4, 5), nn_batchnorm(), 3, 3, 1e-2, 0, "BatchNorm2d, training");
    check_layer(nn_shape3(2, 3, 1), nn_batchnorm(), 2, 2, 1e-2, 0, "BatchNorm2d, training, 3x1");
    {   /* a large mean (50) against the spread (std 1.15): the statistics must not
           cancel. x +- h is rounded to float's ulp at 50 (4e-6), 2e-4 of 2h: inside tol.
           (A smaller spread needs a smaller h: the truncation error is O((h/std)^2).) */
        nn_layer_desc d = nn_batchnorm();
        nn_net *net = make_net(nn_shape3(2, 3, 3), &d, 1, 4);
        float x[4 * 18];
        if (!net) return;
        randomise_params(net, 14);
        fill_uniform(x, 72, 48.0f, 52.0f, 15);
        CHECK(gradcheck_net(net, x, 4, 1e-2, 2e-3, 300, 7) == 0, "BatchNorm2d, offset input");
        nn_net_free(net);
    }
    {   /* evaluation with non-trivial running statistics */
        nn_layer_desc d = nn_batchnorm();
        nn_net *net = make_net(nn_shape3(3, 3, 5), &d, 1, 2);
        float x[2 * 45];
        const nn_layer *L;
        if (!net) return;
        L = nn_get_layer(net, 0);
        randomise_params(net, 8);
        fill_uniform(L->running_mean->value, 3, -1, 1, 9);
        fill_uniform(L->running_var->value, 3, 0.5f, 2, 10);
        fill_uniform(x, 90, -2, 2, 12);
        nn_set_training(net, 0);
        CHECK(gradcheck_net(net, x, 2, 0.25, 2e-3, 300, 4) == 0, "BatchNorm2d, evaluation");
        nn_net_free(net);
    }
}

static void test_batchnorm_known_values(void)
{
    {   /* BatchNorm1d, one feature, batch [1, 3]: mean 2, biased var 1, unbiased 2 */
        nn_layer_desc d = nn_batchnorm();
        nn_net *net = make_net(nn_shape1(1), &d, 1, 2);
        const float x[2] = {1, 3}, dy[2] = {1, 0};
        const double s = 1.0 / sqrt(1.0 + 1e-5);
        const float *y;
        const nn_layer *L;
        if (!net) return;
        L = nn_get_layer(net, 0);
        CHECK(L->weight->value[0] == 1 && L->bias->value[0] == 0 && L->running_mean->value[0] == 0 &&
              L->running_var->value[0] == 1, "init gamma 1, beta 0, mean 0, var 1");
        CHECK(L->running_mean->learnable == 0 && L->running_var->grad == NULL, "running stats are buffers");
        CHECK(strcmp(L->running_var->name, "0.running_var") == 0, "name %s", L->running_var->name);
        L->weight->value[0] = 2.0f;
        L->bias->value[0] = 0.5f;
        y = nn_forward(net, x, 2);
        CHECK_NEAR(y[0], 0.5 - 2 * s, 1e-6);
        CHECK_NEAR(y[1], 0.5 + 2 * s, 1e-6);
        /* running_mean = 0.1 * 2; running_var = 0.9 * 1 + 0.1 * 2 (unbiased, m/(m-1) = 2) */
        CHECK_NEAR(L->running_mean->value[0], 0.2, 1e-7);
        CHECK_NEAR(L->running_var->value[0], 1.1, 1e-7);
        nn_backward(net, dy);
        /* xhat = -+s: dgamma = sum dy xhat = -s, dbeta = 1,
           dx = (g s/2)(2 dy - 1 - xhat (-s)) = (g s/2)(2 dy - 1 -+ s^2) ~ 1e-5 */
        CHECK_NEAR(L->weight->grad[0], -s, 1e-6);
        CHECK_NEAR(L->bias->grad[0], 1.0, 1e-7);
        CHECK_NEAR(nn_input_grad(net)[0], s * (2 - 1 - s * s), 1e-6);
        CHECK_NEAR(nn_input_grad(net)[1], s * (0 - 1 + s * s), 1e-6);
        /* evaluation: (x - 0.2)/sqrt(1.1 + eps) * 2 + 0.5, dx = 2/sqrt(1.1 + eps) dy */
        nn_set_training(net, 0);
        y = nn_forward(net, x, 2);
        CHECK_NEAR(y[0], (1 - 0.2) / sqrt(1.1 + 1e-5) * 2 + 0.5, 1e-6);
        CHECK_NEAR(y[1], (3 - 0.2) / sqrt(1.1 + 1e-5) * 2 + 0.5, 1e-6);
        nn_backward(net, dy);
        CHECK_NEAR(nn_input_grad(net)[0], 2 / sqrt(1.1 + 1e-5), 1e-6);
        CHECK_NEAR(nn_input_grad(net)[1], 0.0, 1e-7);
        CHECK(L->running_mean->value[0] == 0.2f, "evaluation leaves the running stats alone");
        /* the same batch shifted by 10000: the same normalised output (a one-pass float
           E[x^2] - E[x]^2 would lose the variance entirely) */
        {
            const float xs[2] = {10001, 10003};
            nn_set_training(net, 1);
            y = nn_forward(net, xs, 2);
            CHECK_NEAR(y[0], 0.5 - 2 * s, 1e-6);
            CHECK_NEAR(y[1], 0.5 + 2 * s, 1e-6);
        }
        nn_net_free(net);
    }
    {   /* BatchNorm2d statistics pool batch and space: m = n H W = 2*2*1 = 4 per channel */
        nn_layer_desc d = nn_batchnorm();
        nn_net *net = make_net(nn_shape3(2, 2, 1), &d, 1, 2);
        /* sample 0: ch0 [1 2], ch1 [10 10]; sample 1: ch0 [3 4], ch1 [10 14] */
        const float x[8] = {1, 2, 10, 10, 3, 4, 10, 14};
        const float *y;
        const nn_layer *L;
        if (!net) return;
        L = nn_get_layer(net, 0);
        y = nn_forward(net, x, 2);
        /* ch0: mean 2.5, biased var 1.25, unbiased 5/3; ch1: mean 11, var 3, unbiased 4 */
        CHECK_NEAR(y[0], (1 - 2.5) / sqrt(1.25 + 1e-5), 1e-6);
        CHECK_NEAR(y[5], (4 - 2.5) / sqrt(1.25 + 1e-5), 1e-6);
        CHECK_NEAR(y[7], (14 - 11) / sqrt(3 + 1e-5), 1e-6);
        CHECK_NEAR(L->running_mean->value[0], 0.25, 1e-7);
        CHECK_NEAR(L->running_mean->value[1], 1.1, 1e-7);
        CHECK_NEAR(L->running_var->value[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-7);
        CHECK_NEAR(L->running_var->value[1], 0.9 + 0.1 * 4.0, 1e-7);
        nn_net_free(net);
    }
}

/* A small VGG-style stack: conv -> BN2d -> GELU -> maxpool 3/2/1 -> conv -> BN ->
   GELU -> global avgpool -> linear, checked end to end in training mode.
   Not ReLU after BN: moving one conv weight shifts all n*H*W values of a channel, so a
   probe crosses many ReLU kinks at once, each changing the slope a little - too little
   for gradcheck's 5% kink detector, enough to exceed tol. GELU is smooth; ReLU is
   checked on its own in test_net.c and in "3 ReLU" below. h = 1e-3: the max pooling
   argmax switches less often, and the rounding error (~1e-7 * sum|y r| / 2h) stays
   below 1e-4. */
static void test_small_convnet_gradcheck(void)
{
    nn_layer_desc layers[9];
    nn_net *net;
    float x[3 * 2 * 7 * 6];
    layers[0] = nn_conv2d(3, 3, 1, 1);
    layers[1] = nn_batchnorm();
    layers[2] = nn_gelu(0);
    layers[3] = nn_maxpool2d(3, 2, 1);
    layers[4] = nn_conv2d(4, 3, 1, 1);
    layers[5] = nn_batchnorm();
    layers[6] = nn_gelu(0);
    layers[7] = nn_global_avgpool();
    layers[8] = nn_linear(3);
    net = make_net(nn_shape3(2, 7, 6), layers, 9, 3);
    if (!net) return;
    fill_uniform(x, sizeof x / sizeof x[0], -1, 1, 21);
    CHECK(gradcheck_net(net, x, 3, 1e-3, 2e-3, 100, 5) == 0, "small convnet");
    nn_net_free(net);
}

/* BatchNorm + ReLU run as one fused pass (nn_build plans it) must give the same
   bits as the two layers apart; a Scale(1) between them (exact in both directions)
   keeps them apart. Both BatchNorm kinds, training and evaluation, forward and every
   gradient. */
static void compare_fused(nn_shape in, nn_layer_desc first, int n)
{
    nn_layer_desc fused[5], apart[6];
    nn_net *a, *b;
    float x[4 * 3 * 5 * 5], dy[4 * 6 * 5 * 5];
    int mode, i, j;
    size_t count = nn_shape_size(in) * (size_t)n, k;
    fused[0] = first; fused[1] = nn_batchnorm(); fused[2] = nn_relu();
    fused[3] = nn_flatten(); fused[4] = nn_linear(4);
    apart[0] = first; apart[1] = nn_batchnorm(); apart[2] = nn_scale(1.0f); apart[3] = nn_relu();
    apart[4] = nn_flatten(); apart[5] = nn_linear(4);
    a = make_net(in, fused, 5, n);
    b = make_net(in, apart, 6, n);
    if (!a || !b) { nn_net_free(a); nn_net_free(b); return; }
#ifndef NN_NO_FUSION
    CHECK(a->plan[1].relu && !a->plan[2].run && !b->plan[1].relu && b->plan[3].run, "fusion in the plans");
#endif
    randomise_params(a, 3);
    randomise_params(b, 3);
    fill_uniform(x, count, -2, 2, 5);
    fill_uniform(dy, (size_t)n * 4, -1, 1, 6);
    for (mode = 1; mode >= 0; mode--) {
        const float *ya, *yb;
        nn_set_training(a, mode);
        nn_set_training(b, mode);
        ya = nn_forward(a, x, n);
        yb = nn_forward(b, x, n);
        CHECK(!memcmp(ya, yb, (size_t)n * 4 * sizeof(float)), "logits differ (training %d)", mode);
#ifndef NN_NO_FUSION
        CHECK(nn_layer_output(a, 2) == nn_layer_output(a, 1), "the fused ReLU's output is not its BatchNorm's");
#endif
        CHECK(!memcmp(nn_layer_output(a, 2), nn_layer_output(b, 3),
                      nn_shape_size(nn_get_layer(a, 2)->out) * n * sizeof(float)), "ReLU output differs");
        nn_backward(a, dy);
        nn_backward(b, dy);
        CHECK(!memcmp(nn_input_grad(a), nn_input_grad(b), count * sizeof(float)), "input gradient differs (training %d)", mode);
        for (i = 0; i < nn_num_param_tensors(a); i++) {
            nn_param *pa = nn_get_param(a, i), *pb = nn_get_param(b, i);
            if (!pa->learnable) {
                CHECK(!memcmp(pa->value, pb->value, pa->size * sizeof(float)), "%s differs", pa->name);
                continue;
            }
            for (k = 0, j = 0; k < pa->size; k++) j += pa->grad[k] != pb->grad[k];
            CHECK(j == 0, "%d values of the gradient of %s differ (training %d)", j, pa->name, mode);
        }
    }
    nn_net_free(a);
    nn_net_free(b);
}

static void test_batchnorm_relu_fusion(void)
{
    compare_fused(nn_shape3(3, 5, 5), nn_conv2d(6, 3, 1, 1), 4);   /* BatchNorm2d */
    compare_fused(nn_shape1(7), nn_linear(6), 3);                   /* BatchNorm1d */
}

/* Flatten is a view: no buffers of its own, the values pass through untouched in both
   directions, also twice in a row, first, or last; gradients through it check out. */
static void test_flatten_view(void)
{
    nn_layer_desc layers[4];
    nn_net *net;
    float x[2 * 2 * 5 * 4], dy[2 * 40];
    const float *y;
    size_t i;
    int same = 1;
    layers[0] = nn_conv2d(2, 3, 1, 1);
    layers[1] = nn_flatten();
    layers[2] = nn_flatten();
    layers[3] = nn_linear(3);
    net = make_net(nn_shape3(2, 5, 4), layers, 4, 2);
    if (!net) return;
    fill_uniform(x, 80, -1, 1, 31);
    randomise_params(net, 8);
    CHECK(gradcheck_net(net, x, 2, 1e-2, 2e-3, 100, 9) == 0, "Conv2d -> Flatten -> Flatten -> Linear");
    nn_forward(net, x, 2);
    CHECK(nn_layer_output(net, 2) == nn_layer_output(net, 0), "Flatten copied its input");
    nn_net_free(net);

    layers[0] = nn_flatten();   /* first and last: the net is the identity */
    net = make_net(nn_shape3(2, 5, 4), layers, 1, 2);
    if (!net) return;
    fill_uniform(dy, 80, -1, 1, 32);
    y = nn_forward(net, x, 2);
    nn_backward(net, dy);
    for (i = 0; i < 80; i++) same &= y[i] == x[i] && nn_input_grad(net)[i] == dy[i];
    CHECK(same && nn_output_shape(net).c == 40, "a lone Flatten is not the identity");
    nn_net_free(net);
}

/* ---- Activations -------------------------------------------------------------------- */

/* Smooth functions: h = 1e-2, truncation O(h^2 f''') ~ 1e-4. Scale is linear. */
static void test_activation_gradcheck(void)
{
    nn_shape s = nn_shape3(2, 3, 4);
    check_layer(s, nn_sigmoid(), 3, 3, 1e-2, 0, "Sigmoid");
    check_layer(s, nn_tanh(), 3, 3, 1e-2, 0, "Tanh");
    check_layer(s, nn_gelu(0), 3, 3, 1e-2, 0, "GELU");
    check_layer(s, nn_gelu(1), 3, 3, 1e-2, 0, "GELU tanh");
    check_layer(s, nn_softplus(0, 0), 3, 3, 1e-2, 0, "Softplus defaults");
    check_layer(s, nn_softplus(2.5f, 20), 3, 3, 1e-2, 0, "Softplus beta 2.5");
    check_layer(s, nn_scale(3.0f), 3, 3, 0.25, 0, "Scale 3");
    {   /* f = 3 ReLU of E6 */
        nn_layer_desc d[2];
        nn_net *net;
        float x[3 * 24];
        d[0] = nn_relu();
        d[1] = nn_scale(3.0f);
        net = make_net(s, d, 2, 3);
        if (!net) return;
        fill_uniform(x, 72, -2, 2, 13);
        CHECK(gradcheck_net(net, x, 3, 1e-2, 2e-3, 300, 6) == 0, "3 ReLU");
        nn_net_free(net);
    }
}

/* Runs one layer on x (count values) and backward with dy = ones; y and dx copied out. */
static void run_elementwise(nn_layer_desc d, const float *x, int count, float *y, float *dx)
{
    nn_net *net = make_net(nn_shape1(count), &d, 1, 1);
    float ones[16];
    int i;
    if (!net) return;
    for (i = 0; i < count; i++) ones[i] = 1.0f;
    memcpy(y, nn_forward(net, x, 1), (size_t)count * sizeof(float));
    nn_backward(net, ones);
    memcpy(dx, nn_input_grad(net), (size_t)count * sizeof(float));
    nn_net_free(net);
}

static void test_activation_known_values(void)
{
    float y[8], dx[8];
    {
        const float x[4] = {0, 2, -100, 100};
        run_elementwise(nn_sigmoid(), x, 4, y, dx);
        CHECK(y[0] == 0.5f && dx[0] == 0.25f, "sigmoid(0)");
        CHECK_NEAR(y[1], 0.8807970779778823, 1e-7);
        CHECK_NEAR(dx[1], 0.8807970779778823 * (1 - 0.8807970779778823), 1e-7);
        CHECK(y[2] >= 0 && y[2] < 1e-30f && y[3] == 1.0f && dx[3] == 0.0f, "saturation, no NaN");
    }
    {
        const float x[3] = {0.5f, 0, -20};
        run_elementwise(nn_tanh(), x, 3, y, dx);
        CHECK_NEAR(y[0], 0.46211715726000974, 1e-7);
        CHECK_NEAR(dx[0], 1 - 0.46211715726000974 * 0.46211715726000974, 1e-7);
        CHECK(y[1] == 0 && dx[1] == 1 && y[2] == -1.0f, "tanh(0), tanh(-20)");
    }
    {
        const float x[3] = {1, -1, 0};
        run_elementwise(nn_gelu(0), x, 3, y, dx);
        CHECK_NEAR(y[0], 0.8413447, 1e-6);
        CHECK_NEAR(y[1], -0.1586553, 1e-6);
        CHECK_NEAR(dx[0], 0.8413447 + 0.2419707, 1e-6);   /* Phi(1) + phi(1) */
        CHECK(y[2] == 0 && dx[2] == 0.5f, "GELU(0) = 0, GELU'(0) = 1/2");
        run_elementwise(nn_gelu(1), x, 3, y, dx);
        CHECK_NEAR(y[0], 0.8411920, 1e-6);
        CHECK_NEAR(y[1], -0.1588080, 1e-6);
    }
    {
        const float x[4] = {0, 30, -30, 1};
        run_elementwise(nn_softplus(0, 0), x, 4, y, dx);   /* beta 1, threshold 20 */
        CHECK_NEAR(y[0], 0.6931471805599453, 1e-7);
        CHECK(dx[0] == 0.5f, "softplus'(0) = 1/2");
        CHECK(y[1] == 30.0f && dx[1] == 1.0f, "above the threshold: the identity");
        CHECK(y[2] > 0 && y[2] < 1e-12f && dx[2] < 1e-12f, "softplus(-30) ~ e^-30");
        CHECK_NEAR(y[3], 1.3132616875182228, 1e-6);
    }
    {
        const float x[3] = {1, 11, 9};
        run_elementwise(nn_softplus(2, 20), x, 3, y, dx);
        CHECK_NEAR(y[0], log1p(exp(2.0)) / 2, 1e-6);
        CHECK_NEAR(dx[0], 1 / (1 + exp(-2.0)), 1e-6);
        CHECK(y[1] == 11.0f && dx[1] == 1.0f, "beta x = 22 > 20: identity");
        CHECK_NEAR(y[2], log1p(exp(18.0)) / 2, 1e-6);
    }
    {
        const float x[3] = {1, -2, 0.5f};
        run_elementwise(nn_scale(3), x, 3, y, dx);
        CHECK(y[0] == 3 && y[1] == -6 && y[2] == 1.5f && dx[0] == 3 && dx[2] == 3, "scale 3");
    }
}

/* ---- Dropout ------------------------------------------------------------------------ */

static void test_dropout(void)
{
    enum { N = 10000 };
    nn_layer_desc d = nn_dropout(0.3f);
    nn_net *net = make_net(nn_shape1(N), &d, 1, 1), *twin = make_net(nn_shape1(N), &d, 1, 1);
    float *x = (float *)malloc(N * sizeof(float)), *dy = (float *)malloc(N * sizeof(float));
    float *y1 = (float *)malloc(N * sizeof(float));
    const float *y, *dx;
    int i, kept = 0, ok = 1, same = 1;
    if (!net || !twin) return;
    fill_uniform(x, N, 0.5f, 1.5f, 31);
    fill_uniform(dy, N, -1, 1, 32);
    y = nn_forward(net, x, 1);
    memcpy(y1, y, N * sizeof(float));
    for (i = 0; i < N; i++) {
        if (y[i] != 0.0f) {
            kept++;
            ok &= fabsf(y[i] - x[i] / 0.7f) <= 1e-6f * fabsf(y[i]);
        }
    }
    /* kept ~ Binomial(10000, 0.7): std 46, so +-200 is over 4 sigma */
    CHECK(abs(kept - 7000) <= 200, "kept %d of 10000 with p = 0.3", kept);
    CHECK(ok, "kept values are scaled by 1/(1-p)");
    nn_backward(net, dy);
    dx = nn_input_grad(net);
    ok = 1;
    for (i = 0; i < N; i++) ok &= y1[i] == 0.0f ? dx[i] == 0.0f : fabsf(dx[i] - dy[i] / 0.7f) <= 1e-6f;
    CHECK(ok, "dx = dy * mask");
    /* same seed, same mask; the next forward draws a new one */
    y = nn_forward(twin, x, 1);
    for (i = 0; i < N; i++) same &= y[i] == y1[i];
    CHECK(same, "same seed, same mask");
    y = nn_forward(net, x, 1);
    same = 1;
    for (i = 0; i < N; i++) same &= y[i] == y1[i];
    CHECK(!same, "a new mask on each training forward");
    /* evaluation: the identity, forward and backward */
    nn_set_training(net, 0);
    y = nn_forward(net, x, 1);
    nn_backward(net, dy);
    dx = nn_input_grad(net);
    ok = 1;
    for (i = 0; i < N; i++) ok &= y[i] == x[i] && dx[i] == dy[i];
    CHECK(ok, "identity in evaluation");
    nn_net_free(net);
    nn_net_free(twin);
    free(x); free(dy); free(y1);
    {   /* p = 0 is the identity even in training */
        float xs[4] = {1, 2, 3, 4};
        nn_layer_desc d0 = nn_dropout(0.0f);
        nn_net *n0 = make_net(nn_shape1(4), &d0, 1, 1);
        if (!n0) return;
        y = nn_forward(n0, xs, 1);
        CHECK(y[0] == 1 && y[3] == 4, "p = 0");
        nn_net_free(n0);
    }
}

/* ---- Errors ------------------------------------------------------------------------- */

/* Builds net(in) = [linear-free prefix..., d] and expects NN_ERR_ARG with every
   fragment in the message. */
static void expect_build_error(nn_shape in, nn_layer_desc d, const char *frag1, const char *frag2)
{
    nn_net *net = nn_net_new(in);
    nn_status st;
    nn_add(net, nn_relu());
    nn_add(net, d);
    st = nn_build(net, 2, 1);
    CHECK(st == NN_ERR_ARG, "status %s for %s", nn_status_name(st), frag1);
    CHECK(strstr(nn_error(), frag1) != NULL && strstr(nn_error(), frag2) != NULL,
          "message \"%s\" lacks \"%s\" / \"%s\"", nn_error(), frag1, frag2);
    nn_net_free(net);
}

static void test_errors(void)
{
    nn_shape s = nn_shape3(2, 3, 4);
    expect_build_error(s, nn_conv2d(4, 5, 1, 0), "layer 1 (Conv2d)", "does not fit");
    {   /* stride 0 is PyTorch's default 1; groups must divide the channels */
        nn_layer_desc g = nn_conv2d(4, 3, 1, 1);
        g.groups = 3;
        expect_build_error(s, g, "layer 1 (Conv2d)", "3 groups do not divide 2 input and 4 output");
    }
    {   /* a negative size is refused when the layer is added */
        nn_net *net = nn_net_new(s);
        CHECK(nn_add(net, nn_conv2d(4, 3, 1, -1)) == NN_ERR_ARG && strstr(nn_error(), "padding -1"),
              "padding -1: %s", nn_error());
        nn_net_free(net);
    }
    expect_build_error(s, nn_conv2d(0, 3, 1, 1), "layer 1 (Conv2d)", "0 output channels");
    expect_build_error(s, nn_maxpool2d(4, 2, 0), "layer 1 (MaxPool2d)", "does not fit");
    expect_build_error(s, nn_maxpool2d(3, 2, 2), "layer 1 (MaxPool2d)", "more than half");
    expect_build_error(s, nn_avgpool2d(5, 1, 0), "layer 1 (AvgPool2d)", "does not fit");
    expect_build_error(s, nn_avgpool2d(2, 1, 2), "layer 1 (AvgPool2d)", "more than half");
    expect_build_error(s, nn_dropout(1.0f), "layer 1 (Dropout)", "p = 1");
    expect_build_error(s, nn_dropout(-0.5f), "layer 1 (Dropout)", "p = -0.5");
    {   /* the error names the shape it got: 3x4 after a conv with 5x5 kernel fails */
        nn_net *net = nn_net_new(nn_shape3(1, 8, 8));
        nn_add(net, nn_conv2d(2, 5, 1, 0));   /* 8x8 -> 4x4 */
        nn_add(net, nn_maxpool2d(2, 2, 0));   /* -> 2x2 */
        nn_add(net, nn_conv2d(2, 3, 1, 0));   /* 3 > 2: does not fit */
        CHECK(nn_build(net, 1, 1) == NN_ERR_ARG, "conv after pool");
        CHECK(strstr(nn_error(), "layer 2 (Conv2d) on input 2x2x2") != NULL, "%s", nn_error());
        nn_net_free(net);
    }
}

int main(void)
{
    RUN(test_conv2d_known_values);
    RUN(test_conv2d_default_init);
    RUN(test_conv2d_vs_naive);
    RUN(test_conv2d_gradcheck);
    RUN(test_maxpool_known_values);
    RUN(test_maxpool_gradcheck);
    RUN(test_avgpool_known_values);
    RUN(test_avgpool_gradcheck);
    RUN(test_batchnorm_known_values);
    RUN(test_batchnorm_gradcheck);
    RUN(test_small_convnet_gradcheck);
    RUN(test_batchnorm_relu_fusion);
    RUN(test_flatten_view);
    RUN(test_activation_known_values);
    RUN(test_activation_gradcheck);
    RUN(test_dropout);
    RUN(test_errors);
    return test_end("test_layers");
}
