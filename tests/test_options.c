/* The layer options of PyTorch's modules beyond their defaults: Conv2d with rectangular
   kernel, stride and padding, dilation and groups (and its depthwise path), MaxPool2d
   and AvgPool2d with ceil_mode and count_include_pad=False, BatchNorm's momentum, eps
   and affine=False, and Hardtanh / ReLU6. Gradient checks by central differences
   (gradcheck.h), the depthwise path against the grouped GEMMs, 1 against 2 threads,
   known values, and the model-file text of every option (round trip, damaged text).
   tests/options_torch.c + .py compare the same options with PyTorch. */

/* The batched convolution path only for workspaces up to 16384 floats, so that the
   cases built for max_batch 3 take it and those built for 1000 go image by image. */
#define NN_CONV_KEEP_COLS ((size_t)16384)
#ifndef OPTIONS_NAME
#define OPTIONS_NAME "test_options"
#endif
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

/* Distinct values (a permutation of 0..n-1 times step, centred): no max-pool ties. */
static void fill_permutation(float *x, int n, float step, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    int *idx = (int *)malloc((size_t)n * sizeof(int)), i;
    for (i = 0; i < n; i++) idx[i] = i;
    nn_rng_shuffle(&r, idx, n);
    for (i = 0; i < n; i++) x[i] = (float)(idx[i] - n / 2) * step;
    free(idx);
}

static nn_net *make_net(nn_shape in, const nn_layer_desc *layers, int count, int max_batch)
{
    nn_net *net = nn_net_new(in);
    int i;
    for (i = 0; i < count; i++)
        if (nn_add(net, layers[i]) != NN_OK) {
            CHECK(0, "nn_add: %s", nn_error());
            nn_net_free(net);
            return NULL;
        }
    nn_set_input_grad(net, 1);
    if (nn_build(net, max_batch, 7) != NN_OK) {
        CHECK(0, "nn_build: %s", nn_error());
        nn_net_free(net);
        return NULL;
    }
    return net;
}

static void randomise_params(nn_net *net, uint64_t seed)
{
    int p;
    for (p = 0; p < nn_num_param_tensors(net); p++) {
        nn_param *par = nn_get_param(net, p);
        if (par->learnable) fill_uniform(par->value, par->size, -1.0f, 1.0f, seed + (uint64_t)p);
    }
}

/* Gradient check of one layer (then an optional second) on input in, batch n. */
static void check_layers(nn_shape in, const nn_layer_desc *d, int count, int n, int max_batch, double h,
                         int permutation, int training, const char *what)
{
    nn_net *net = make_net(in, d, count, max_batch);
    size_t size = (size_t)n * nn_shape_size(in);
    float *x = (float *)malloc(size * sizeof(float));
    if (!net) { free(x); return; }
    if (permutation) fill_permutation(x, (int)size, 0.05f, 11);
    else fill_uniform(x, size, -2.0f, 2.0f, 11);
    randomise_params(net, 5);
    nn_set_training(net, training);
    CHECK(gradcheck_net(net, x, n, h, 2e-3, 300, 3) == 0, "%s", what);
    nn_net_free(net);
    free(x);
}

/* ---- Conv2d --------------------------------------------------------------------- */

typedef struct { int c, h, w, out, kh, kw, sh, sw, ph, pw, dh, dw, groups, no_bias; } conv_opt;

static const conv_opt conv_opts[] = {
    {2, 7, 8, 3, 3, 2, 1, 1, 1, 0, 1, 1, 1, 0},   /* rectangular kernel and padding */
    {2, 7, 9, 3, 3, 3, 1, 2, 1, 1, 1, 1, 1, 0},   /* stride_h != stride_w */
    {2, 9, 8, 2, 3, 3, 2, 1, 0, 2, 1, 1, 1, 1},   /* and the other way, padding 0x2 */
    {2, 9, 9, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0},   /* dilation 2 */
    {3, 9, 8, 2, 3, 2, 2, 1, 1, 1, 2, 3, 1, 0},   /* dilation 2x3, stride 2x1 */
    {4, 6, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 0},   /* groups 2 */
    {6, 5, 5, 3, 1, 1, 1, 1, 0, 0, 1, 1, 3, 1},   /* groups 3, 1x1 (x is the column matrix) */
    {3, 7, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 0},   /* depthwise 3x3 */
    {3, 9, 8, 3, 3, 3, 2, 2, 1, 1, 1, 1, 3, 0},   /* depthwise, stride 2 */
    {4, 9, 9, 4, 3, 3, 1, 1, 2, 2, 2, 2, 4, 0},   /* depthwise, dilation 2 */
    {2, 8, 7, 2, 5, 3, 2, 1, 2, 0, 1, 2, 2, 1},   /* depthwise, everything rectangular */
    {1, 6, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},   /* one channel: depthwise too */
};
#define NUM_CONV_OPTS ((int)(sizeof conv_opts / sizeof conv_opts[0]))

static nn_layer_desc conv_desc(const conv_opt *t)
{
    nn_layer_desc d = nn_conv2d(t->out, t->kh, t->sh, t->ph);
    d.kernel_w = t->kw; d.stride_w = t->sw; d.pad_w = t->pw;
    d.dilation_h = t->dh; d.dilation_w = t->dw; d.groups = t->groups; d.no_bias = t->no_bias;
    return d;
}

/* Conv2d is bilinear, so h can be large (no truncation error; test_layers.c). Each case
   runs batched (max_batch 3), image by image (1000), and for the depthwise ones also
   with the depthwise path off. */
static void test_conv_gradcheck(void)
{
    int i, mb, mode;
    for (i = 0; i < NUM_CONV_OPTS; i++)
        for (mode = 0; mode >= -1; mode--)
            for (mb = 0; mb < 2; mb++) {
                const conv_opt *t = &conv_opts[i];
                nn_layer_desc d = conv_desc(t);
                char what[160];
                int depthwise = t->groups == t->c && t->out == t->c;
                if (mode && !depthwise) continue;
                nn__depthwise_mode = mode;
                snprintf(what, sizeof what, "conv option case %d, max_batch %d, depthwise path %s",
                         i, mb ? 1000 : 3, mode ? "off" : "on");
                check_layers(nn_shape3(t->c, t->h, t->w), &d, 1, 3, mb ? 1000 : 3, 0.25, 0, 1, what);
                {
                    nn_net *net = make_net(nn_shape3(t->c, t->h, t->w), &d, 1, mb ? 1000 : 3);
                    const nn_layer *L = net ? nn_get_layer(net, 0) : NULL;
                    if (L) {
                        CHECK(nn__conv_depthwise(nn__plan_of(net, L), L) == (depthwise && !mode), "%s: depthwise path", what);
                        CHECK(L->weight->shape[1] == t->c / t->groups && L->weight->shape[2] == t->kh &&
                              L->weight->shape[3] == t->kw, "%s: weight shape", what);
                    }
                    nn_net_free(net);
                }
                nn__depthwise_mode = 0;
            }
}

/* PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in =
   (C/groups) kh kw: 9 for a depthwise 3x3 on 16 channels (144 if the groups were
   ignored), so the largest of its 144 weights lies near 1/3. */
static void test_conv_init(void)
{
    nn_layer_desc d = nn_conv2d(16, 3, 1, 1);
    nn_net *net;
    float most = 0.0f;
    size_t i;
    d.groups = 16;
    net = make_net(nn_shape3(16, 5, 5), &d, 1, 1);
    if (!net) return;
    for (i = 0; i < nn_get_layer(net, 0)->weight->size; i++)
        if (fabsf(nn_get_layer(net, 0)->weight->value[i]) > most) most = fabsf(nn_get_layer(net, 0)->weight->value[i]);
    CHECK(most <= 1.0f / 3.0f && most > 0.25f, "largest initial weight %g, expected in (0.25, 1/3]", most);
    nn_net_free(net);
}

/* Direct convolution in double with every option, as PyTorch defines it. */
static void naive_conv(const conv_opt *t, int n, const float *x, const float *w, const float *b, double *y,
                       int oh, int ow)
{
    int i, o, c, oy, ox, ky, kx, cg = t->c / t->groups, og = t->out / t->groups;
    for (i = 0; i < n; i++)
        for (o = 0; o < t->out; o++)
            for (oy = 0; oy < oh; oy++)
                for (ox = 0; ox < ow; ox++) {
                    double s = b ? b[o] : 0.0;
                    for (c = 0; c < cg; c++)
                        for (ky = 0; ky < t->kh; ky++)
                            for (kx = 0; kx < t->kw; kx++) {
                                int iy = oy * t->sh - t->ph + ky * t->dh, ix = ox * t->sw - t->pw + kx * t->dw;
                                int ci = o / og * cg + c;
                                if (iy < 0 || iy >= t->h || ix < 0 || ix >= t->w) continue;
                                s += (double)w[((o * cg + c) * t->kh + ky) * t->kw + kx] *
                                     x[(((size_t)i * t->c + ci) * t->h + iy) * t->w + ix];
                            }
                    y[(((size_t)i * t->out + o) * oh + oy) * ow + ox] = s;
                }
}

/* The forward of every option against the direct sum (a gradient check alone would
   pass a layer that is consistently wrong in its shapes: this pins the geometry). */
static void test_conv_values(void)
{
    int i;
    for (i = 0; i < NUM_CONV_OPTS; i++) {
        const conv_opt *t = &conv_opts[i];
        nn_layer_desc d = conv_desc(t);
        nn_net *net = make_net(nn_shape3(t->c, t->h, t->w), &d, 1, 2);
        int oh = (t->h + 2 * t->ph - (t->kh - 1) * t->dh - 1) / t->sh + 1;
        int ow = (t->w + 2 * t->pw - (t->kw - 1) * t->dw - 1) / t->sw + 1;
        size_t in = 2 * (size_t)t->c * t->h * t->w, out = 2 * (size_t)t->out * oh * ow, j;
        float *x = (float *)malloc(in * sizeof(float));
        double *ref = (double *)malloc(out * sizeof(double)), worst = 0.0;
        const float *y;
        const nn_layer *L;
        if (!net) { free(x); free(ref); continue; }
        L = nn_get_layer(net, 0);
        CHECK(L->out.h == oh && L->out.w == ow, "case %d: output %dx%d, expected %dx%d", i, L->out.h, L->out.w, oh, ow);
        randomise_params(net, 3);
        fill_uniform(x, in, -1.0f, 1.0f, 4);
        y = nn_forward(net, x, 2);
        naive_conv(t, 2, x, L->weight->value, L->bias ? L->bias->value : NULL, ref, oh, ow);
        for (j = 0; j < out && L->out.h == oh && L->out.w == ow; j++)
            if (fabs(y[j] - ref[j]) > worst) worst = fabs(y[j] - ref[j]);
        CHECK(worst < 1e-5, "case %d: forward differs from the direct sum by %g", i, worst);
        nn_net_free(net);
        free(x);
        free(ref);
    }
}

/* Relative difference of two arrays, max |a - b| / max |b|. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0.0, m = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return m > 0.0 ? d / m : d;
}

/* Runs one depthwise conv forward and backward; copies y, dx, dW, db out. */
static void depthwise_run(const conv_opt *t, int mode, int n, int threads, float *out[4], size_t sizes[4])
{
    nn_layer_desc d = conv_desc(t);
    nn_net *net;
    const nn_layer *L;
    float *x, *dy;
    const float *y;
    size_t in = (size_t)n * t->c * t->h * t->w, k;
    nn__depthwise_mode = mode;
    nn_set_threads(threads);
    net = make_net(nn_shape3(t->c, t->h, t->w), &d, 1, n);   /* the mode stays for the run */
    if (!net) { nn__depthwise_mode = 0; return; }
    L = nn_get_layer(net, 0);
    CHECK(nn__conv_depthwise(nn__plan_of(net, L), L) == (mode == 0), "depthwise path %d", mode);
    randomise_params(net, 21);
    x = (float *)malloc(in * sizeof(float));
    fill_uniform(x, in, -1.0f, 1.0f, 22);
    sizes[0] = (size_t)n * nn_shape_size(L->out);
    sizes[1] = in;
    sizes[2] = L->weight->size;
    sizes[3] = L->bias->size;
    dy = (float *)malloc(sizes[0] * sizeof(float));
    fill_uniform(dy, sizes[0], -1.0f, 1.0f, 23);
    y = nn_forward(net, x, n);
    for (k = 0; k < 4; k++) out[k] = (float *)malloc(sizes[k] * sizeof(float));
    memcpy(out[0], y, sizes[0] * sizeof(float));
    nn_backward(net, dy);
    memcpy(out[1], nn_input_grad(net), in * sizeof(float));
    memcpy(out[2], L->weight->grad, sizes[2] * sizeof(float));
    memcpy(out[3], L->bias->grad, sizes[3] * sizeof(float));
    nn_net_free(net);
    free(x);
    free(dy);
    nn_set_threads(0);
    nn__depthwise_mode = 0;
}

/* The depthwise loops against the grouped GEMMs (within 1e-5 relative), and on 1
   against 2 threads (the same bits), on odd sizes, 1, 3 and 17 channels, strides 1
   and 2, dilation 1 and 2, square and not. */
static void test_depthwise_paths(void)
{
    static const conv_opt cases[] = {
        {1, 7, 9, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
        {3, 9, 7, 3, 3, 3, 2, 2, 1, 1, 1, 1, 3, 0},
        {17, 11, 13, 17, 3, 3, 1, 1, 1, 1, 1, 1, 17, 0},
        {17, 13, 11, 17, 3, 3, 2, 2, 1, 1, 1, 1, 17, 0},
        {17, 11, 9, 17, 3, 3, 1, 1, 2, 2, 2, 2, 17, 0},
        {3, 13, 9, 3, 5, 3, 2, 1, 2, 1, 2, 1, 3, 0},
        {17, 7, 7, 17, 5, 5, 2, 2, 2, 2, 1, 1, 17, 0},
    };
    static const char *const what[4] = { "y", "dx", "dW", "db" };
    int i, k;
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        float *fast[4] = {0}, *gemm[4] = {0}, *two[4] = {0};
        size_t sizes[4] = {0};
        depthwise_run(&cases[i], 0, 5, 1, fast, sizes);
        depthwise_run(&cases[i], -1, 5, 1, gemm, sizes);
        depthwise_run(&cases[i], 0, 5, 2, two, sizes);
        for (k = 0; k < 4; k++) {
            if (!fast[k] || !gemm[k] || !two[k]) { CHECK(0, "case %d: no result", i); break; }
            CHECK(rel_diff(fast[k], gemm[k], sizes[k]) <= 1e-5, "case %d: %s: depthwise vs grouped GEMM %g",
                  i, what[k], rel_diff(fast[k], gemm[k], sizes[k]));
            CHECK(!memcmp(fast[k], two[k], sizes[k] * sizeof(float)), "case %d: %s differs on 2 threads", i, what[k]);
        }
        for (k = 0; k < 4; k++) { free(fast[k]); free(gemm[k]); free(two[k]); }
    }
}

/* ---- Pooling ---------------------------------------------------------------------- */

/* Output sizes as PyTorch 1.13 gives them (torch.nn.MaxPool2d(k, s, p, ceil_mode=True)
   on an H x W input). */
static void test_pool_sizes(void)
{
    static const struct { int h, w, kh, kw, sh, sw, ph, pw, ceil, oh, ow; } cases[] = {
        {5, 5, 2, 2, 2, 2, 0, 0, 1, 3, 3},
        {5, 5, 2, 2, 2, 2, 0, 0, 0, 2, 2},
        {6, 7, 3, 3, 2, 2, 1, 1, 1, 4, 4},   /* 7: ceil(6/2)+1 = 4, start 6 < 7+1 */
        {5, 5, 3, 3, 2, 2, 1, 1, 1, 3, 3},   /* ceil(4/2)+1 = 3 */
        {4, 4, 2, 2, 3, 3, 1, 1, 1, 2, 2},   /* ceil(4/3)+1 = 3, but (3-1)*3 = 6 >= 4+1: 2 */
        {7, 6, 3, 2, 2, 3, 1, 0, 1, 4, 2},   /* rectangular */
    };
    int i;
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        nn_layer_desc d = nn_maxpool2d(cases[i].kh, cases[i].sh, cases[i].ph);
        nn_net *net;
        d.kernel_w = cases[i].kw; d.stride_w = cases[i].sw; d.pad_w = cases[i].pw; d.ceil_mode = cases[i].ceil;
        net = make_net(nn_shape3(1, cases[i].h, cases[i].w), &d, 1, 1);
        if (!net) continue;
        CHECK(nn_output_shape(net).h == cases[i].oh && nn_output_shape(net).w == cases[i].ow,
              "case %d: %dx%d, PyTorch %dx%d", i, nn_output_shape(net).h, nn_output_shape(net).w,
              cases[i].oh, cases[i].ow);
        nn_net_free(net);
    }
}

/* AvgPool2d's divisor at the edges: a 1x5 row [1 2 3 4 5], kernel 1x2, stride 2,
   padding 0x1, ceil_mode: windows {pad,1} {2,3} {4,5} -> with the padding counted
   (1/2, 5/2, 9/2); count_include_pad=False (1, 5/2, 9/2). A 1x4 row with kernel 1x3,
   stride 2, no padding, ceil_mode: windows {1,2,3} {3,4,past}: the past-the-edge cell
   counts in neither: (2, 3.5) both ways. */
static void test_avgpool_divisor(void)
{
    static const float row5[5] = {1, 2, 3, 4, 5}, row4[4] = {1, 2, 3, 4};
    static const float inc[3] = {0.5f, 2.5f, 4.5f}, exc[3] = {1.0f, 2.5f, 4.5f}, both[2] = {2.0f, 3.5f};
    int e, j;
    for (e = 0; e < 2; e++) {
        nn_layer_desc d = nn_avgpool2d(1, 1, 0);
        nn_net *net;
        const float *y;
        d.kernel_w = 2; d.stride_w = 2; d.pad_w = 1; d.ceil_mode = 1; d.exclude_pad = e;
        net = make_net(nn_shape3(1, 1, 5), &d, 1, 1);
        if (!net) continue;
        CHECK(nn_output_shape(net).w == 3, "width %d", nn_output_shape(net).w);
        y = nn_forward(net, row5, 1);
        for (j = 0; j < 3; j++) CHECK(y[j] == (e ? exc : inc)[j], "exclude_pad %d: y[%d] = %g", e, j, y[j]);
        nn_net_free(net);
        d.kernel_w = 3; d.stride_w = 2; d.pad_w = 0;
        net = make_net(nn_shape3(1, 1, 4), &d, 1, 1);
        if (!net) continue;
        CHECK(nn_output_shape(net).w == 2, "width %d", nn_output_shape(net).w);
        y = nn_forward(net, row4, 1);
        for (j = 0; j < 2; j++) CHECK(y[j] == both[j], "exclude_pad %d, past the edge: y[%d] = %g", e, j, y[j]);
        nn_net_free(net);
    }
}

static void test_pool_gradcheck(void)
{
    int kind, ceil, exclude;
    for (kind = 0; kind < 2; kind++)
        for (ceil = 0; ceil < 2; ceil++)
            for (exclude = 0; exclude <= kind; exclude++) {
                nn_layer_desc d = kind ? nn_avgpool2d(3, 2, 1) : nn_maxpool2d(3, 2, 1);
                char what[96];
                d.kernel_w = 2; d.stride_w = 3; d.pad_w = 1;
                d.ceil_mode = ceil; d.exclude_pad = exclude;
                snprintf(what, sizeof what, "%s ceil_mode %d exclude_pad %d", kind ? "AvgPool2d" : "MaxPool2d",
                         ceil, exclude);
                /* 6x8: 3-row windows at stride 2 leave a ceil-mode window past the edge */
                check_layers(nn_shape3(2, 6, 8), &d, 1, 2, 2, 1e-2, 1, 1, what);
            }
}

/* ---- BatchNorm ---------------------------------------------------------------------- */

static void test_batchnorm_options(void)
{
    int affine, training, spatial;
    for (spatial = 0; spatial < 2; spatial++)
        for (affine = 0; affine < 2; affine++)
            for (training = 0; training < 2; training++) {
                nn_layer_desc d[2];
                char what[96];
                d[0] = nn_batchnorm();
                d[0].momentum = 0.3f; d[0].eps = 0.5f; d[0].no_affine = !affine;
                d[1] = nn_tanh();   /* so that sum(y) is not constant in training */
                snprintf(what, sizeof what, "BatchNorm%dd affine %d training %d", spatial ? 2 : 1, affine, training);
                check_layers(spatial ? nn_shape3(3, 3, 4) : nn_shape1(5), d, 2, 4, 4, 1e-2, 0, training, what);
            }
    {   /* the momentum, the eps and the parameters, by value */
        nn_layer_desc d = nn_batchnorm();
        nn_net *net;
        float x[4] = {1, 2, 3, 6};   /* mean 3, biased var 3.5, unbiased 14/3 */
        const float *y;
        const nn_layer *L;
        d.momentum = 0.25f; d.eps = 0.5f; d.no_affine = 1;
        net = make_net(nn_shape1(1), &d, 1, 4);
        if (!net) return;
        L = nn_get_layer(net, 0);
        CHECK(nn_num_param_tensors(net) == 2 && !L->weight && !L->bias && L->running_mean && L->running_var,
              "no_affine: %d parameters", nn_num_param_tensors(net));
        y = nn_forward(net, x, 4);
        CHECK_NEAR(y[3], 3.0 / sqrt(3.5 + 0.5), 1e-6);
        CHECK_NEAR(L->running_mean->value[0], 0.25 * 3.0, 1e-7);
        CHECK_NEAR(L->running_var->value[0], 0.75 + 0.25 * 14.0 / 3.0, 1e-6);
        nn_set_training(net, 0);
        y = nn_forward(net, x, 4);
        CHECK_NEAR(y[3], (6.0 - 0.75) / sqrt(0.75 + 0.25 * 14.0 / 3.0 + 0.5), 1e-6);
        nn_net_free(net);
    }
    {   /* the fused BatchNorm + ReLU without the affine parameters */
        nn_layer_desc d[2];
        d[0] = nn_batchnorm(); d[0].no_affine = 1; d[0].eps = 0.25f;
        d[1] = nn_relu();
        check_layers(nn_shape3(2, 3, 3), d, 2, 3, 3, 1e-3, 0, 1, "BatchNorm2d no_affine + fused ReLU");
    }
}

/* ---- Hardtanh ------------------------------------------------------------------------ */

static void test_hardtanh(void)
{
    static const float x[8] = {-7.0f, -1.0f, -0.5f, 0.0f, 2.0f, 6.0f, 6.5f, NAN};
    static const float relu6_y[8] = {0, 0, 0, 0, 2, 6, 6, NAN}, relu6_dx[8] = {0, 0, 0, 0, 1, 0, 0, 0};
    static const float ht_y[8] = {-1, -1, -0.5f, 0, 1, 1, 1, NAN}, ht_dx[8] = {0, 0, 1, 1, 0, 0, 0, 0};
    static const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int k, i;
    for (k = 0; k < 2; k++) {
        nn_layer_desc d = k ? nn_hardtanh(0.0f, 0.0f) : nn_relu6();
        nn_net *net = make_net(nn_shape1(8), &d, 1, 1);
        const float *y, *dx;
        if (!net) continue;
        y = nn_forward(net, x, 1);
        for (i = 0; i < 8; i++) {
            float want = (k ? ht_y : relu6_y)[i];
            CHECK(want != want ? y[i] != y[i] : y[i] == want, "%s: y[%d] = %g", k ? "Hardtanh" : "ReLU6", i, y[i]);
        }
        nn_backward(net, ones);
        dx = nn_input_grad(net);
        for (i = 0; i < 8; i++)
            CHECK(dx[i] == (k ? ht_dx : relu6_dx)[i], "%s: dx[%d] = %g", k ? "Hardtanh" : "ReLU6", i, dx[i]);
        nn_net_free(net);
    }
    {   /* gradcheck on values away from the kinks: uniform in [-2, 2] against (-0.7, 1.3) */
        nn_layer_desc d[2];
        d[0] = nn_linear(6);
        d[1] = nn_hardtanh(-0.7f, 1.3f);
        check_layers(nn_shape1(4), d, 2, 3, 3, 1e-3, 0, 1, "Linear + Hardtanh(-0.7, 1.3)");
    }
    {   /* min_val < max_val */
        nn_net *net = nn_net_new(nn_shape1(3));
        nn_add(net, nn_hardtanh(2.0f, 2.0f));
        CHECK(nn_build(net, 1, 1) == NN_ERR_ARG && strstr(nn_error(), "min_val < max_val"), "%s", nn_error());
        nn_net_free(net);
    }
}

/* ---- Model files ------------------------------------------------------------------- */

/* A net with every option, its layer text, and the file. */
static nn_net *options_net(void)
{
    nn_net *net = nn_net_new(nn_shape3(4, 11, 10));
    nn_layer_desc d;
    d = nn_conv2d(6, 3, 1, 1); d.kernel_w = 2; d.stride_w = 2; d.pad_w = 0; d.dilation_h = 2; d.groups = 2;
    nn_add(net, d);                                       /* 6 x 9 x 5 */
    d = nn_batchnorm(); d.momentum = 0.2f; d.eps = 1e-3f; nn_add(net, d);
    nn_add(net, nn_relu6());
    d = nn_conv2d(6, 3, 1, 1); d.groups = 6; d.dilation_w = 2; d.pad_w = 2; nn_add(net, d);   /* depthwise */
    d = nn_batchnorm(); d.no_affine = 1; nn_add(net, d);
    nn_add(net, nn_relu());
    d = nn_maxpool2d(2, 2, 0); d.ceil_mode = 1; nn_add(net, d);                     /* 6 x 5 x 3 */
    d = nn_avgpool2d(3, 2, 1); d.kernel_w = 2; d.stride_w = 1; d.pad_w = 0; d.ceil_mode = 1; d.exclude_pad = 1;
    nn_add(net, d);
    nn_add(net, nn_hardtanh(-0.5f, 2.25f));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(3));
    nn_set_input_grad(net, 1);
    if (nn_build(net, 2, 5) != NN_OK) {
        CHECK(0, "options net: %s", nn_error());
        nn_net_free(net);
        return NULL;
    }
    return net;
}

static const char options_layers[] =
    "Conv2d out=6 kernel=3 kernel_w=2 stride=1 stride_w=2 pad=1 pad_w=0 dilation=2 dilation_w=1 groups=2;"
    "BatchNorm momentum=0.200000003 eps=0.00100000005;Hardtanh min=0 max=6;"
    "Conv2d out=6 kernel=3 stride=1 pad=1 pad_w=2 dilation_w=2 groups=6;BatchNorm no_affine=1;ReLU;"
    "MaxPool2d kernel=2 stride=2 ceil_mode=1;"
    "AvgPool2d kernel=3 kernel_w=2 stride=2 stride_w=1 pad=1 pad_w=0 ceil_mode=1 exclude_pad=1;"
    "Hardtanh min=-0.5 max=2.25;Flatten;Linear out=3";

/* The net with every option, one forward and backward in training on 1 and on 2
   threads: the same bits in the output, the input gradient and every gradient and buffer. */
static void test_options_threads(void)
{
    float x[2 * 4 * 11 * 10], dy[2 * 3], *got[2][16] = {{0}};
    size_t sizes[16] = {0};
    int t, p, count = 0;
    fill_uniform(x, sizeof x / sizeof x[0], -1.0f, 1.0f, 19);
    fill_uniform(dy, 6, -1.0f, 1.0f, 20);
    for (t = 0; t < 2; t++) {
        nn_net *net;
        nn_set_threads(t + 1);
        if (!(net = options_net())) break;
        got[t][0] = (float *)malloc(6 * sizeof(float));
        memcpy(got[t][0], nn_forward(net, x, 2), 6 * sizeof(float));
        nn_backward(net, dy);
        got[t][1] = (float *)malloc(sizeof x);
        memcpy(got[t][1], nn_input_grad(net), sizeof x);
        sizes[0] = 6; sizes[1] = sizeof x / sizeof x[0];
        count = 2 + nn_num_param_tensors(net);
        for (p = 0; p < nn_num_param_tensors(net) && p < 14; p++) {
            nn_param *par = nn_get_param(net, p);
            sizes[2 + p] = par->size;
            got[t][2 + p] = (float *)malloc(par->size * sizeof(float));
            memcpy(got[t][2 + p], par->grad ? par->grad : par->value, par->size * sizeof(float));
        }
        nn_net_free(net);
    }
    nn_set_threads(0);
    CHECK(count == 14, "%d arrays", count);
    for (p = 0; p < count && p < 16; p++) {
        CHECK(got[0][p] && got[1][p] && !memcmp(got[0][p], got[1][p], sizes[p] * sizeof(float)),
              "array %d differs between 1 and 2 threads", p);
        free(got[0][p]);
        free(got[1][p]);
    }
}

/* A copy of a file with the first `from` of its header replaced by `to`, the header
   length rewritten. */
static unsigned char *replace_in_header(const unsigned char *buf, size_t size, const char *from, const char *to,
                                        size_t *out_size)
{
    uint64_t len = 0;
    size_t k, at, lf = strlen(from), lt = strlen(to), new_len;
    unsigned char *out;
    const char *hit;
    char *header;
    for (k = 0; k < 8; k++) len |= (uint64_t)buf[k] << (8 * k);
    header = (char *)malloc((size_t)len + 1);
    memcpy(header, buf + 8, (size_t)len);
    header[len] = 0;
    hit = strstr(header, from);
    if (!hit) { free(header); return NULL; }
    at = (size_t)(hit - header);
    new_len = (size_t)len - lf + lt;
    *out_size = size - lf + lt;
    out = (unsigned char *)malloc(*out_size);
    for (k = 0; k < 8; k++) out[k] = (unsigned char)((uint64_t)new_len >> (8 * k));
    memcpy(out + 8, header, at);
    memcpy(out + 8 + at, to, lt);
    memcpy(out + 8 + at + lt, header + at + lf, (size_t)len - at - lf);
    memcpy(out + 8 + new_len, buf + 8 + len, size - 8 - (size_t)len);
    free(header);
    return out;
}

static void test_model_options(void)
{
    nn_net *net = options_net(), *back;
    unsigned char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0, k;
    float x[2 * 4 * 11 * 10];
    const float *ya;
    float y0[6];
    static const char *const damaged[][2] = {
        {"groups=2", "groups=2x"}, {"groups=2", "groups=-2"}, {"dilation=2", "dilation=2 dilation=2"},
        {"ceil_mode=1;", "ceil_mode=2;"}, {"exclude_pad=1", "exclude_pad=1.0"}, {"eps=0.00100000005", "eps=inf"},
        {"momentum=0.200000003", "momentum=nan"}, {"min=0 max=6", "min=0 max=6 max=6"},
        {"Linear out=3", "Linear out=3 groups=1"}, {"ReLU;", "ReLU ceil_mode=1;"},
        {"MaxPool2d kernel=2", "MaxPool2d exclude_pad=1 kernel=2"}, {"no_affine=1", "no_affine=1 kernel_w=3"},
        {"Hardtanh min=0", "Hardtanh eps=1 min=0"}, {"kernel_w=2", "kernel_w=2 kernel_w=2"},
        {"min=0 max=6", "min=6 max=0"}, {"groups=6", "groups=4"}, {"no_affine=1", "no_affine=0 momentum=2"},
    };
    if (!net) return;
    fill_uniform(x, sizeof x / sizeof x[0], -1.0f, 1.0f, 9);
    nn_set_training(net, 0);
    ya = nn_forward(net, x, 2);
    memcpy(y0, ya, sizeof y0);
    CHECK(nn_save_memory(net, &a, &na) == NN_OK, "%s", nn_error());
    CHECK(a && strstr((const char *)a + 8, options_layers) != NULL, "the layer text is not the expected one");
    back = nn_load_memory(a, na, 2);
    CHECK(back != NULL, "load: %s", nn_error());
    if (back) {
        const float *yb = nn_forward(back, x, 2);
        CHECK(!memcmp(yb, y0, sizeof y0), "the loaded net gives other outputs");
        CHECK(nn_save_memory(back, &b, &nb) == NN_OK && nb == na && !memcmp(a, b, na),
              "the re-saved file is not byte-identical");
        CHECK(nn_num_param_tensors(back) == 12 && !strcmp(nn_get_param(back, 7)->name, "3.bias") &&
              !strcmp(nn_get_param(back, 8)->name, "4.running_mean") &&
              !strcmp(nn_get_param(back, 10)->name, "10.weight"),
              "the no_affine BatchNorm holds only its running statistics");
        nn_net_free(back);
    }
    for (k = 0; a && k < sizeof damaged / sizeof damaged[0]; k++) {
        size_t nd = 0;
        unsigned char *d = replace_in_header(a, na, damaged[k][0], damaged[k][1], &nd);
        nn_net *bad;
        CHECK(d != NULL, "'%s' not in the file", damaged[k][0]);
        if (!d) continue;
        bad = nn_load_memory(d, nd, 2);
        CHECK(!bad, "'%s' loaded", damaged[k][1]);
        nn_net_free(bad);
        free(d);
    }
    {   /* a no_affine BatchNorm's file with a weight it cannot hold, and an affine one's
           without: the tensors must match */
        nn_net *affine = nn_net_new(nn_shape3(2, 3, 3)), *plain = nn_net_new(nn_shape3(2, 3, 3));
        nn_layer_desc d = nn_batchnorm();
        unsigned char *fa = NULL, *fp = NULL;
        size_t sa = 0, sp = 0;
        nn_add(affine, d);
        d.no_affine = 1;
        nn_add(plain, d);
        nn_build(affine, 1, 1);
        nn_build(plain, 1, 1);
        nn_save_memory(affine, &fa, &sa);
        nn_save_memory(plain, &fp, &sp);
        CHECK(nn_load_weights_memory(plain, fa, sa) == NN_ERR_FORMAT, "an affine file into a no_affine net");
        CHECK(nn_load_weights_memory(affine, fp, sp) == NN_ERR_FORMAT, "a no_affine file into an affine net");
        CHECK(nn_load_weights_memory(plain, fp, sp) == NN_OK, "%s", nn_error());
        nn_free_buffer(fa);
        nn_free_buffer(fp);
        nn_net_free(affine);
        nn_net_free(plain);
    }
    nn_free_buffer(a);
    nn_free_buffer(b);
    nn_net_free(net);
}

/* An option set on a kind that does not have it is refused, not ignored. */
static void test_options_on_other_kinds(void)
{
    nn_net *net = nn_net_new(nn_shape3(2, 8, 8));
    nn_layer_desc d;
    CHECK(net != NULL, "nn_net_new");
    if (!net) return;
    d = nn_linear(3); d.p = 0.5f;
    CHECK(nn_add(net, d) == NN_ERR_ARG, "Linear with a Dropout p");
    d = nn_conv2d(4, 3, 1, 1); d.ceil_mode = 1;
    CHECK(nn_add(net, d) == NN_ERR_ARG, "Conv2d with ceil_mode");
    d = nn_maxpool2d(2, 2, 0); d.dilation_h = 2;
    CHECK(nn_add(net, d) == NN_ERR_ARG, "MaxPool2d with dilation");
    d = nn_maxpool2d(2, 2, 0); d.exclude_pad = 1;
    CHECK(nn_add(net, d) == NN_ERR_ARG, "MaxPool2d with exclude_pad");
    d = nn_relu(); d.momentum = 0.5f;
    CHECK(nn_add(net, d) == NN_ERR_ARG, "ReLU with a momentum");
    d = nn_linear(3); d.relu = 1;
    CHECK(nn_add(net, d) == NN_ERR_ARG, "Linear with relu");
    CHECK(nn_num_layers(net) == 0, "a refused layer was added");
    d = nn_conv2d(4, 3, 1, 1); d.kernel_w = 1; d.dilation_h = 2; d.groups = 2;
    CHECK(nn_add(net, d) == NN_OK, "Conv2d with its own options: %s", nn_error());
    d = nn_batchnorm(); d.momentum = 0.6f; d.eps = 1e-3f; d.no_affine = 1;
    CHECK(nn_add(net, d) == NN_OK, "BatchNorm with its own options: %s", nn_error());
    d = nn_avgpool2d(2, 2, 1); d.ceil_mode = 1; d.exclude_pad = 1;
    CHECK(nn_add(net, d) == NN_OK, "AvgPool2d with its own options: %s", nn_error());
    CHECK(nn_add(net, nn_leaky_relu(0.1f)) == NN_OK && nn_add(net, nn_relu6()) == NN_OK &&
          nn_add(net, nn_softplus(2.0f, 10.0f)) == NN_OK, "activations with their options: %s", nn_error());
    nn_net_free(net);
}

int main(void)
{
    RUN(test_conv_gradcheck);
    RUN(test_conv_init);
    RUN(test_conv_values);
    RUN(test_depthwise_paths);
    RUN(test_pool_sizes);
    RUN(test_avgpool_divisor);
    RUN(test_pool_gradcheck);
    RUN(test_batchnorm_options);
    RUN(test_hardtanh);
    RUN(test_model_options);
    RUN(test_options_threads);
    RUN(test_options_on_other_kinds);
    return test_end(OPTIONS_NAME);
}
