/* int8 quantization: the int8 product kernels against the scalar reference (bit-exact,
   awkward sizes, on AVX2 here and on NEON with and without sdot under qemu), the
   fixed-point requantization, the observers, nn_quantize's arithmetic against an
   independent computation of PyTorch's definitions, int8 model files (round trips,
   damaged files), and the calls an int8 net refuses.
   NN_EXPECT_QKERNEL=name makes the run fail unless that kernel is the one picked
   (make test-neon runs it with and without the dot-product extension). */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"
#include <stdlib.h>

static uint32_t rnd(nn_rng *r, uint32_t n) { return nn_rng_below(r, n); }

/* The products as the kernels' contract defines them, in 64 bits, unpadded. */
static void ref_products(int m, int n, int k, int kp, const int8_t *w, const uint8_t *x, int32_t *c)
{
    int i, j, p;
    for (i = 0; i < m; i++)
        for (j = 0; j < n; j++) {
            long long s = 0;
            for (p = 0; p < k; p++) s += (long long)w[(size_t)i * kp + p] * x[(size_t)j * kp + p];
            c[(size_t)i * n + j] = (int32_t)s;
        }
}

/* Fills m rows of w (kp long, k used) and n of x; mode 0 random, 1 the extremes
   (weights +-127, activations 127: the bound of vpmaddubsw's int16 pairs). */
static void fill_operands(nn_rng *r, int m, int n, int k, int kp, int8_t *w, uint8_t *x, int mode)
{
    int i, p;
    memset(w, 0, (size_t)m * kp);
    memset(x, 0, (size_t)n * kp);
    for (i = 0; i < m; i++)
        for (p = 0; p < k; p++)
            w[(size_t)i * kp + p] = (int8_t)(mode ? (rnd(r, 2) ? 127 : -127) : (int)rnd(r, 255) - 127);
    for (i = 0; i < n; i++)
        for (p = 0; p < k; p++) x[(size_t)i * kp + p] = (uint8_t)(mode ? 127 : rnd(r, 128));
}

static void test_kernels_bit_exact(void)
{
    static const int sizes[] = {1, 3, 4, 5, 7, 8, 17, 33, 100};
    static const int ks[] = {1, 3, 7, 17, 31, 32, 33, 100, 577, 4608};
    const int ns = (int)(sizeof sizes / sizeof sizes[0]), nk = (int)(sizeof ks / sizeof ks[0]);
    nn_rng r = nn_rng_new(7);
    const char *name;
    nn__qgemm_fn fast = nn__qgemm_pick(&name);
    int a, b, kk, mode, bad = 0, runs = 0, paths;
    const char *expect = getenv("NN_EXPECT_QKERNEL");
    printf("int8 kernel: %s\n", name);
    CHECK(!expect || !strcmp(expect, name), "picked %s, expected %s", name, expect);
    for (paths = 0; paths < 2; paths++) {
        if (paths == 1) {   /* NEON: the path without sdot as well */
#ifdef NN__NEON
            nn__qgemm_force = 2;
            fast = nn__qgemm_pick(&name);
            nn__qgemm_force = 0;
            printf("int8 kernel: %s\n", name);
#else
            break;
#endif
        }
        for (a = 0; a < ns; a++)
            for (b = 0; b < ns; b++)
                for (kk = 0; kk < nk; kk++)
                    for (mode = 0; mode < 2; mode++) {
                        int m = sizes[a], n = sizes[b], k = ks[kk], kp = (k + NN__QK - 1) / NN__QK * NN__QK;
                        int8_t *w;
                        uint8_t *x;
                        int32_t *c0, *c1, *c2;
                        if (k > 600 && (m > 17 || n > 17)) continue;
                        w = (int8_t *)malloc((size_t)m * kp);
                        x = (uint8_t *)malloc((size_t)n * kp);
                        c0 = (int32_t *)malloc((size_t)m * n * 4);
                        c1 = (int32_t *)malloc((size_t)m * n * 4);
                        c2 = (int32_t *)malloc((size_t)m * n * 4);
                        fill_operands(&r, m, n, k, kp, w, x, mode);
                        ref_products(m, n, k, kp, w, x, c0);
                        nn__qgemm_scalar(m, n, kp, w, x, c1, n);
                        fast(m, n, kp, w, x, c2, n);
                        runs++;
                        if (memcmp(c0, c1, (size_t)m * n * 4) || memcmp(c0, c2, (size_t)m * n * 4)) {
                            if (bad++ < 3)
                                CHECK(0, "%s m=%d n=%d k=%d mode %d: %d (reference) %d (scalar) %d (fast)", name,
                                      m, n, k, mode, c0[0], c1[0], c2[0]);
                        }
                        free(w); free(x); free(c0); free(c1); free(c2);
                    }
    }
    CHECK(bad == 0, "%d of %d products differ", bad, runs);
    /* A stride larger than n (the layers write blocks of rows into wider outputs). */
    {
        int8_t w[5 * 64];
        uint8_t x[3 * 64];
        int32_t c1[5 * 7], c2[5 * 7];
        fill_operands(&r, 5, 3, 40, 64, w, x, 0);
        memset(c1, 0x55, sizeof c1);
        memcpy(c2, c1, sizeof c1);
        nn__qgemm_scalar(5, 3, 64, w, x, c1, 7);
        nn__qgemm_pick(NULL)(5, 3, 64, w, x, c2, 7);
        CHECK(!memcmp(c1, c2, sizeof c1), "ldc 7: the fast kernel wrote other cells");
    }
}

/* One GEMM op of rows x k (groups of them) with random weights and requantization
   parameters, packed as nn_quantize packs them. */
static void random_op(nn_rng *r, nn__qop *op, int rows, int groups, int k, int mode)
{
    int c, p, outs = rows * groups;
    memset(op, 0, sizeof *op);
    op->kind = NN__QGEMM;
    op->rows = rows;
    op->groups = groups;
    op->k = k;
    op->kp = (k + NN__QK - 1) / NN__QK * NN__QK;
    op->to_float = mode == 2;
    op->relu = mode == 1;
    op->out_zp = (int)rnd(r, 128);
    if (nn__qop_alloc(op, "test") != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
    for (c = 0; c < outs; c++) {
        for (p = 0; p < k; p++) op->w[(size_t)c * op->kp + p] = (int8_t)((int)rnd(r, 255) - 127);
        op->bias_eff[c] = (int32_t)rnd(r, 1u << 30) - (1 << 29);
        op->mult[c] = rnd(r, 8) ? (int32_t)((1u << 30) + rnd(r, 1u << 30)) : 0;
        op->shift[c] = rnd(r, 4) ? 20 + (int)rnd(r, 20) : 1 + (int)rnd(r, 62);
        op->deq[c] = nn_rng_uniform(r) * 1e-3f;
    }
    if (nn__qop_pack(op, "test") != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
}

static void free_op(nn__qop *op)
{
    nn__free(op->w); nn__free(op->w_scale); nn__free(op->bias); nn__free(op->bias_eff); nn__free(op->mult);
    nn__free(op->shift); nn__free(op->deq); nn__free(op->wp); nn__free(op->par);
}

/* The packed kernels (every one this CPU has, nn__qgemm_force stepping down from the
   widest) through nn__qgemm_rows against the scalar kernel and requantization, bit for
   bit: channels, columns and k off the blocks, 1 or 2 groups, a task per 32 channels,
   uint8 outputs (with the ReLU floor, bytes below 128 and any: AVX2's split) and float
   ones, channel strides of a convolution and of a Linear. */
static void test_packed_kernels(void)
{
    static const int rows_[] = {1, 5, 16, 17, 31, 32, 33, 64, 70};
    static const int cols_[] = {1, 2, 3, 5, 7, 8, 9, 13, 17, 40};
    static const int ks[] = {1, 3, 4, 27, 33, 100, 577, 4608};
    const int nr = (int)(sizeof rows_ / sizeof rows_[0]), nc = (int)(sizeof cols_ / sizeof cols_[0]);
    const int nk = (int)(sizeof ks / sizeof ks[0]);
    int isa = nn__qisa(), level, a, b, kk, mode, bad = 0, runs = 0;
    nn_rng r = nn_rng_new(11);
    printf("int8 packed kernels: this CPU has %d of 3 (AVX2, AVX-VNNI, AVX-512 VNNI)\n", isa);
    for (level = isa; level >= 1; level--) {
        const char *name;
        nn__qgemm_force = level == 3 ? 0 : level == 2 ? 4 : 3;
        CHECK(nn__qkern_pick(isa, &name) != NULL, "level %d: no kernel", level);
        printf("int8 packed kernel: %s\n", name);
        for (a = 0; a < nr; a++)
            for (b = 0; b < nc; b++)
                for (kk = 0; kk < nk; kk++)
                    for (mode = 0; mode < 4; mode++) {
                        int rows = rows_[a], n = cols_[b], k = ks[kk], groups = 1 + (a + b + mode) % 2, g, task;
                        int any = mode == 1 || mode == 3, linear = (a + kk) % 2, outs = rows * groups;
                        nn__qop op;
                        nn__qgemm_task t1, t2;
                        uint8_t *x, *y1, *y2;
                        float *f1, *f2;
                        size_t *at, j, cells = (size_t)outs * n;
                        int p;
                        if (k > 600 && (rows > 33 || n > 9)) continue;
                        random_op(&r, &op, rows, groups, k, mode == 3 ? 0 : mode);
                        x = (uint8_t *)calloc((size_t)(n + NN__QPAD_COLS) * op.kp, 1);
                        memset(x + (size_t)n * op.kp, 0xff, (size_t)NN__QPAD_COLS * op.kp);   /* read, unused */
                        y1 = (uint8_t *)malloc(cells); y2 = (uint8_t *)malloc(cells);
                        f1 = (float *)malloc(cells * 4); f2 = (float *)malloc(cells * 4);
                        at = (size_t *)malloc((size_t)n * sizeof(size_t));
                        memset(y1, 0x55, cells); memset(y2, 0x55, cells);
                        memset(f1, 0, cells * 4); memset(f2, 0, cells * 4);
                        for (j = 0; j < (size_t)n; j++) {
                            for (p = 0; p < k; p++) x[j * op.kp + p] = (uint8_t)rnd(&r, any ? 256 : 128);
                            at[j] = linear ? j * outs : j;
                        }
                        memset(&t1, 0, sizeof t1);
                        t1.op = &op;
                        t1.col = x;
                        t1.y = y1;
                        t1.yf = f1;
                        t1.at = at;
                        t1.cs = linear ? 1 : (size_t)n;
                        t1.n = n;
                        t1.per = 32;
                        t2 = t1;
                        t2.y = y2;
                        t2.yf = f2;
                        t1.kern = nn__qkern_pick(isa, NULL);
                        t2.gemm = nn__qgemm_scalar;
                        t2.acc = (int32_t *)malloc((size_t)rows * n * 4);
                        CHECK(nn__qsplit(&t1, x, NULL, (size_t)n * op.kp, &t1.split) == NULL, "split");
                        for (g = 0; g < groups; g++)
                            for (task = 0; task * 32 < rows; task++) {
                                t1.g = t2.g = g;
                                nn__qgemm_rows(&t1, task);
                                nn__qgemm_rows(&t2, task);
                            }
                        runs++;
                        if (memcmp(y1, y2, cells) || memcmp(f1, f2, cells * 4)) {
                            if (bad++ < 3)
                                CHECK(0, "%s rows=%d groups=%d n=%d k=%d mode %d linear %d: %d %g (kernel) %d %g "
                                      "(scalar)", name, rows, groups, n, k, mode, linear, y1[0], f1[0], y2[0], f2[0]);
                        }
                        free(x); free(y1); free(y2); free(f1); free(f2); free(at); free(t2.acc);
                        free_op(&op);
                    }
    }
    nn__qgemm_force = 0;
    CHECK(bad == 0, "%d of %d blocks differ", bad, runs);
}

/* nn__qim2row against the definition, on kernel, stride, padding and dilation
   geometries (windows inside, across both edges, outputs of one column; groups by c0). */
static void test_im2row(void)
{
    static const int geo[][7] = {   /* H, W, k, stride, pad, dilation, channels */
        {5, 7, 3, 1, 1, 1, 3}, {2, 2, 3, 1, 1, 1, 4}, {1, 1, 3, 1, 1, 1, 2}, {6, 9, 3, 2, 1, 1, 2},
        {8, 8, 1, 1, 0, 1, 5}, {7, 5, 5, 1, 2, 1, 2}, {9, 9, 3, 1, 2, 2, 2}, {4, 6, 2, 2, 0, 1, 3},
        {3, 10, 4, 3, 1, 1, 2}, {12, 12, 7, 2, 3, 1, 1}, {5, 5, 3, 1, 0, 1, 12}};
    int gi, bad = 0;
    nn_rng r = nn_rng_new(5);
    for (gi = 0; gi < (int)(sizeof geo / sizeof geo[0]); gi++) {
        int H = geo[gi][0], W = geo[gi][1], k = geo[gi][2], st = geo[gi][3], pad = geo[gi][4], dil = geo[gi][5];
        int C = geo[gi][6], oh = (H + 2 * pad - dil * (k - 1) - 1) / st + 1, ow = (W + 2 * pad - dil * (k - 1) - 1) / st + 1;
        int c0 = C > 2 ? 1 : 0, Cg = C - c0, K = Cg * k * k, kp = (K + NN__QK - 1) / NN__QK * NN__QK, oy, ox, c, ky, kx;
        nn_layer L;
        uint8_t *x = (uint8_t *)malloc((size_t)C * H * W + NN__QPAD_BYTES);
        uint8_t *col = (uint8_t *)malloc((size_t)oh * ow * kp + (size_t)NN__QPAD_COLS * kp);
        size_t i;
        memset(&L, 0, sizeof L);
        L.desc = nn_conv2d(4, k, st, pad);
        L.desc.dilation_h = L.desc.dilation_w = dil;
        L.in = nn_shape3(C, H, W);
        L.out = nn_shape3(4, oh, ow);
        for (i = 0; i < (size_t)C * H * W + NN__QPAD_BYTES; i++) x[i] = (uint8_t)rnd(&r, 256);
        memset(col, 0xee, (size_t)oh * ow * kp + (size_t)NN__QPAD_COLS * kp);
        nn__qim2row(x, &L, c0, Cg, 9, col, kp);
        for (oy = 0; oy < oh; oy++)
            for (ox = 0; ox < ow; ox++) {
                const uint8_t *row = col + ((size_t)oy * ow + ox) * kp;
                int at = 0;
                for (c = c0; c < C; c++)
                    for (ky = 0; ky < k; ky++)
                        for (kx = 0; kx < k; kx++, at++) {
                            int iy = oy * st - pad + ky * dil, ix = ox * st - pad + kx * dil;
                            int want = iy < 0 || iy >= H || ix < 0 || ix >= W ? 9 : x[((size_t)c * H + iy) * W + ix];
                            bad += row[at] != want;
                        }
                for (; at < kp; at++) bad += row[at] != 0;
            }
        CHECK(bad == 0, "geometry %d (%dx%d k%d s%d p%d d%d): %d bytes differ", gi, H, W, k, st, pad, dil, bad);
        free(x);
        free(col);
    }
}

/* round(acc * mult / 2^shift), half away from zero, by another route. */
static int32_t ref_round(int32_t acc, int32_t mult, int shift)
{
    long long prod = (long long)acc * mult, mag = prod < 0 ? -prod : prod;
    long long q = (mag >> shift) + ((mag >> (shift - 1)) & 1);
    q = q > (1 << 30) ? (1 << 30) : q;   /* saturated */
    return (int32_t)(prod < 0 ? -q : q);
}

static void test_requantization(void)
{
    nn_rng r = nn_rng_new(11);
    int32_t mult;
    int shift, i, bad = 0;
    CHECK(nn__qmultiplier(1.0, &mult, &shift) && mult == (1 << 30) && shift == 30, "M = 1: %d, %d", mult, shift);
    CHECK(nn__qmultiplier(0.5, &mult, &shift) && nn__qround(3, mult, shift) == 2 && nn__qround(-3, mult, shift) == -2 &&
          nn__qround(5, mult, shift) == 3 && nn__qround(-5, mult, shift) == -3 && nn__qround(4, mult, shift) == 2,
          "M = 0.5: 1.5 -> 2, -1.5 -> -2, 2.5 -> 3 (half away from zero)");
    CHECK(nn__qmultiplier(1e-12, &mult, &shift) && nn__qround(2000000000, mult, shift) == 0, "tiny M gives 0");
    CHECK(!nn__qmultiplier(2e9, &mult, &shift) && !nn__qmultiplier(0.0, &mult, &shift), "M out of range refused");
    for (i = 0; i < 20000; i++) {
        double M = ldexp(1.0 + nn_rng_uniform(&r), -(int)rnd(&r, 40));
        int32_t acc = (int32_t)(nn_rng_u32(&r) >> rnd(&r, 32)) * (rnd(&r, 2) ? 1 : -1);
        double exact;
        if (!nn__qmultiplier(M, &mult, &shift)) { bad++; continue; }
        exact = ldexp((double)mult, -shift);
        if (mult == 0 ? M >= ldexp(1.0, -32) : fabs(exact - M) > M * ldexp(1.0, -30)) bad++;
        if (nn__qround(acc, mult, shift) != ref_round(acc, mult, shift)) bad++;
        if (fabs((double)acc * exact) < ldexp(1.0, 30) &&
            fabs((double)nn__qround(acc, mult, shift) - (double)acc * exact) > 0.5 + fabs((double)acc * exact) * 1e-15)
            bad++;
        if (fabs((double)acc * exact) > ldexp(1.0, 30) + 1 && abs(nn__qround(acc, mult, shift)) != 1 << 30) bad++;
    }
    CHECK(bad == 0, "%d of 20000 multipliers or roundings wrong", bad);
}

static void test_observer(void)
{
    float s;
    int z;
    nn__qparams(-1.0f, 3.0f, &s, &z);
    CHECK(s == 4.0f / 127.0f && z == 32, "[-1, 3]: scale %g zp %d (expected 4/127, round(31.75) = 32)", s, z);
    nn__qparams(0.5f, 2.0f, &s, &z);
    CHECK(s == 2.0f / 127.0f && z == 0, "[0.5, 2] widened to [0, 2]: %g %d", s, z);
    nn__qparams(-2.0f, -1.0f, &s, &z);
    CHECK(s == 2.0f / 127.0f && z == 127, "[-2, -1] widened to [-2, 0]: %g %d", s, z);
    nn__qparams(0.0f, 0.0f, &s, &z);
    CHECK(s == FLT_EPSILON && z == 0, "an empty range: eps, 0 (%g %d)", s, z);
    CHECK(nn__qinput(0.5f, 1.0f, 0) == 0 && nn__qinput(1.5f, 1.0f, 0) == 2 && nn__qinput(2.5f, 1.0f, 3) == 5 &&
          nn__qinput(1000.0f, 1.0f, 0) == 255 && nn__qinput(130.0f, 1.0f, 0) == 130 && nn__qinput(-5.0f, 1.0f, 2) == 0 && nn__qinput(NAN, 1.0f, 9) == 0,
          "input rounding to even and clamping (to 255: values beyond the 7-bit calibrated range are kept)");
}

static void fill_set(nn_dataset *d, float *x, int *y, int n, nn_shape shape, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    size_t i, size = nn_shape_size(shape);
    memset(d, 0, sizeof *d);
    for (i = 0; i < (size_t)n * size; i++) x[i] = nn_rng_normal(&r, 0.2f, 1.0f);
    for (i = 0; i < (size_t)n; i++) y[i] = (int)(i % 3);
    d->n = n; d->shape = shape; d->num_classes = 0; d->x = x; d->y = y;
}

/* Independent: the int8 logits of Flatten, Linear(h), ReLU, Linear(o) computed here
   from the documented definitions (observers, per-channel weights, rounding), with
   double requantization (the fixed-point one differs only on an exact tie). */
static void test_definitions_mlp(void)
{
    enum { IN = 12, H = 9, O = 4, N = 20 };
    nn_net *net = nn_net_new(nn_shape3(3, 2, 2)), *qn;
    nn_dataset d;
    float x[N * IN], mn = INFINITY, mx = -INFINITY, sx, sh, sw1[H], sw2[O];
    int y[N], zx, zh, i, j, p, s, bad = 0, above = 0;
    int8_t w1[H][IN], w2[O][H];
    int32_t b1[H], b2[O];
    const float *out;
    nn_quantize_desc qd = {0};
    const nn_layer *L1, *L2;
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(H));
    nn_add(net, nn_relu());
    nn_add(net, nn_linear(O));
    nn_build(net, N, 3);
    nn_set_training(net, 0);
    fill_set(&d, x, y, N, nn_shape3(3, 2, 2), 5);
    qn = nn_quantize(net, &d, N, qd);
    CHECK(qn != NULL && nn_is_quantized(qn) && !nn_is_quantized(net), "%s", nn_error());
    if (!qn) { nn_net_free(net); return; }
    L1 = nn_get_layer(net, 1);
    L2 = nn_get_layer(net, 3);
    for (i = 0; i < N * IN; i++) { mn = x[i] < mn ? x[i] : mn; mx = x[i] > mx ? x[i] : mx; }
    nn__qparams(mn, mx, &sx, &zx);
    /* weights, biases */
    for (i = 0; i < H; i++) {
        float m = 0;
        for (p = 0; p < IN; p++) m = fabsf(L1->weight->value[i * IN + p]) > m ? fabsf(L1->weight->value[i * IN + p]) : m;
        sw1[i] = m / 127.0f;
        for (p = 0; p < IN; p++) w1[i][p] = (int8_t)rintf(L1->weight->value[i * IN + p] * (1.0f / sw1[i]));
        b1[i] = (int32_t)nearbyint((double)L1->bias->value[i] / ((double)sx * sw1[i]));
    }
    /* hidden range from the float net's ReLU output */
    nn_forward(net, x, N);
    {
        const float *h = nn_layer_output(net, 2);
        float hmn = INFINITY, hmx = -INFINITY;
        for (i = 0; i < N * H; i++) { hmn = h[i] < hmn ? h[i] : hmn; hmx = h[i] > hmx ? h[i] : hmx; }
        nn__qparams(hmn, hmx, &sh, &zh);
    }
    for (i = 0; i < O; i++) {
        float m = 0;
        for (p = 0; p < H; p++) m = fabsf(L2->weight->value[i * H + p]) > m ? fabsf(L2->weight->value[i * H + p]) : m;
        sw2[i] = m / 127.0f;
        for (p = 0; p < H; p++) w2[i][p] = (int8_t)rintf(L2->weight->value[i * H + p] * (1.0f / sw2[i]));
        b2[i] = (int32_t)nearbyint((double)L2->bias->value[i] / ((double)sh * sw2[i]));
    }
    for (i = 0; i < N * IN; i++) x[i] *= 1.8f;   /* beyond the calibrated range: levels above 127 */
    out = nn_forward(qn, x, N);
    CHECK(out != NULL, "%s", nn_error());
    for (s = 0; out && s < N; s++) {
        int qx[IN], qh[H];
        for (p = 0; p < IN; p++) {
            qx[p] = nn__qinput(x[s * IN + p], 1.0f / sx, zx);
            above += qx[p] > 127;
        }
        for (j = 0; j < H; j++) {
            long long acc = b1[j];
            double v;
            for (p = 0; p < IN; p++) acc += (long long)(qx[p] - zx) * w1[j][p];
            v = zh + floor(fabs((double)acc * ((double)sx * sw1[j] / sh)) + 0.5) * (acc < 0 ? -1 : 1);
            qh[j] = v < zh ? zh : v > 255 ? 255 : (int)v;
            above += qh[j] > 127;
        }
        for (j = 0; j < O; j++) {
            long long acc = b2[j];
            float logit;
            for (p = 0; p < H; p++) acc += (long long)(qh[p] - zh) * w2[j][p];
            logit = (float)acc * (sh * sw2[j]);
            if (logit != out[s * O + j]) {
                if (bad++ < 3) CHECK(0, "sample %d logit %d: %.9g (nn.h) vs %.9g (definitions)", s, j, out[s * O + j], logit);
            }
        }
    }
    CHECK(bad == 0, "%d logits differ", bad);
    CHECK(above > 0, "no level above 127 was tested");
    nn_net_free(qn);
    nn_net_free(net);
}

/* A small conv net of every supported kind, BatchNorm statistics made non-trivial. */
static nn_net *conv_net(uint64_t seed, int batch)
{
    nn_net *net = nn_net_new(nn_shape3(3, 12, 12));
    nn_layer_desc grouped = nn_conv2d(8, 3, 2, 1);
    nn_layer_desc wide = nn_conv2d(6, 3, 1, 2);
    int i;
    size_t j;
    grouped.groups = 2;
    wide.dilation_h = wide.dilation_w = 2;
    nn_add(net, nn_conv2d(6, 3, 1, 1)); nn_add(net, nn_batchnorm()); nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(3, 2, 1));
    nn_add(net, grouped); nn_add(net, nn_batchnorm()); nn_add(net, nn_relu());
    nn_add(net, wide); nn_add(net, nn_leaky_relu(0.1f));
    nn_add(net, nn_avgpool2d(2, 2, 1));
    nn_add(net, nn_conv2d(5, 1, 1, 0)); nn_add(net, nn_tanh());
    nn_add(net, nn_avgpool2d(1, 1, 0));
    nn_add(net, nn_global_avgpool());
    nn_add(net, nn_flatten());
    nn_add(net, nn_dropout(0.5f));
    nn_add(net, nn_linear(7)); nn_add(net, nn_batchnorm()); nn_add(net, nn_relu());
    nn_add(net, nn_linear(3));
    if (nn_build(net, batch, seed) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
    for (i = 0; i < nn_num_layers(net); i++) {
        const nn_layer *L = nn_get_layer(net, i);
        nn_rng r = nn_rng_new(seed + (uint64_t)i);
        if (L->desc.kind != NN_BATCHNORM) continue;
        for (j = 0; j < L->running_var->size; j++) {
            L->running_mean->value[j] = nn_rng_normal(&r, 0.0f, 0.3f);
            L->running_var->value[j] = 0.5f + nn_rng_uniform(&r);
            L->weight->value[j] = 0.5f + nn_rng_uniform(&r);
            L->bias->value[j] = nn_rng_normal(&r, 0.0f, 0.2f);
        }
    }
    nn_set_training(net, 0);
    return net;
}

static void test_conv_net(void)
{
    enum { N = 24 };
    nn_net *net = conv_net(21, 8), *qn, *back;
    nn_dataset d;
    static float x[N * 432], x2[N * 432];
    int y[N], i, agree = 0;
    float *f32 = (float *)malloc(N * 3 * sizeof(float)), *i8 = (float *)malloc(N * 3 * sizeof(float));
    float worst = 0.0f, range = 0.0f;
    nn_quantize_desc qd = {0};
    unsigned char *buf = NULL, *buf2 = NULL, *fbuf = NULL;
    size_t size = 0, size2 = 0, fsize = 0;
    const char *names[3] = {"a", "b", "c"};
    const float *out;
    fill_set(&d, x, y, N, nn_shape3(3, 12, 12), 9);
    nn_set_class_names(net, names, 3);
    qd.max_batch = N;
    qn = nn_quantize(net, &d, N, qd);
    CHECK(qn != NULL, "%s", nn_error());
    if (!qn) { nn_net_free(net); free(f32); free(i8); return; }
    CHECK(nn_max_batch(qn) == N && nn_output_shape(qn).c == 3 && !strcmp(nn_class_name(qn, 2), "c"),
          "the int8 net's batch, outputs and class names");
    for (i = 0; i < N; i += 8) memcpy(f32 + i * 3, nn_forward(net, x + i * 432, 8), 8 * 3 * sizeof(float));
    out = nn_forward(qn, x, N);
    memcpy(i8, out, N * 3 * sizeof(float));
    for (i = 0; i < N * 3; i++) {
        worst = fabsf(f32[i] - i8[i]) > worst ? fabsf(f32[i] - i8[i]) : worst;
        range = fabsf(f32[i]) > range ? fabsf(f32[i]) : range;
    }
    for (i = 0; i < N; i++) agree += nn_argmax(f32 + i * 3, 3) == nn_argmax(i8 + i * 3, 3);
    printf("conv net: int8 vs float32 logits: max difference %.4f of a range %.4f, top-1 agreement %d/%d\n",
           worst, range, agree, N);
    CHECK(worst <= 0.1f * range, "int8 logits far from float32: %g of %g", worst, range);
    /* The same bits from the scalar kernel, on 1 and 3 threads, one sample at a time. */
    nn__qgemm_force = 1;
    out = nn_forward(qn, x, N);
    CHECK(!memcmp(out, i8, N * 3 * sizeof(float)), "scalar kernel: other logits");
    for (i = 0; i < N * 432; i++) x2[i] = x[i] * 1.5f;   /* levels above 127: split, except on the scalar kernel */
    memcpy(f32, nn_forward(qn, x2, N), N * 3 * sizeof(float));
    nn__qgemm_force = 0;
    out = nn_forward(qn, x2, N);
    CHECK(!memcmp(out, f32, N * 3 * sizeof(float)), "activations above 127: the split products differ from the plain ones");
    nn_set_threads(3);
    out = nn_forward(qn, x, N);
    CHECK(!memcmp(out, i8, N * 3 * sizeof(float)), "3 threads: other logits");
    nn_set_threads(1);
    for (i = 0; i < N; i++) {
        out = nn_forward(qn, x + i * 432, 1);
        if (memcmp(out, i8 + i * 3, 3 * sizeof(float))) { CHECK(0, "sample %d alone: other logits", i); break; }
    }
    nn_set_threads(0);
    /* Files: the same logits after a round trip, the same bytes when saved again. */
    CHECK(nn_save_memory(qn, &buf, &size) == NN_OK, "%s", nn_error());
    back = nn_load_memory(buf, size, N);
    CHECK(back != NULL && nn_is_quantized(back), "load: %s", nn_error());
    if (back) {
        out = nn_forward(back, x, N);
        CHECK(out && !memcmp(out, i8, N * 3 * sizeof(float)), "loaded: other logits");
        CHECK(nn_save_memory(back, &buf2, &size2) == NN_OK && size2 == size && !memcmp(buf, buf2, size),
              "saved again: other bytes");
        CHECK(nn_class_name(back, 0) && !strcmp(nn_class_name(back, 0), "a"), "class names kept");
    }
    CHECK(nn_save_memory(net, &fbuf, &fsize) == NN_OK, "%s", nn_error());
    printf("conv net: float32 file %zu bytes, int8 file %zu bytes\n", fsize, size);
    nn_free_buffer(buf2);
    nn_net_free(back);
    /* Every prefix of the file is refused, none crashes. */
    {
        size_t cut;
        int loaded = 0;
        for (cut = 0; cut < size; cut += 1 + cut / 50) {
            nn_net *t = nn_load_memory(buf, cut, 1);
            loaded += t != NULL;
            nn_net_free(t);
        }
        CHECK(loaded == 0, "%d truncated files loaded", loaded);
    }
    nn_free_buffer(buf);
    nn_free_buffer(fbuf);
    /* What an int8 net refuses. */
    CHECK(nn_build(qn, 4, 1) == NN_ERR_STATE, "nn_build: %s", nn_error());
    CHECK(nn_layer_output(qn, 0) == NULL, "nn_layer_output");
    CHECK(nn_backward(qn, f32) == NN_ERR_STATE, "nn_backward");
    {
        nn_sgd_desc sgd = {0};
        sgd.lr = 0.1f;
        CHECK(nn_sgd(qn, sgd) == NULL, "an optimiser");
    }
    CHECK(nn_quantize(qn, &d, N, qd) == NULL, "quantized twice");
    CHECK(nn_forward(qn, x, N + 1) == NULL && nn_forward(qn, NULL, 1) == NULL, "nn_forward's checks");
    {
        float acc = -1.0f;
        CHECK(nn_evaluate(qn, &d, NULL, &acc, NULL) == NN_OK && acc >= 0.0f, "nn_evaluate: %s", nn_error());
    }
    nn_net_free(qn);
    nn_net_free(net);
    free(f32);
    free(i8);
}

/* A saved int8 image of a small net whose tensors the tests below damage. */
static nn_net *mlp_q(unsigned char **buf, size_t *size)
{
    nn_net *net = nn_net_new(nn_shape1(6)), *qn;
    nn_dataset d;
    float x[8 * 6];
    int y[8];
    nn_quantize_desc qd = {0};
    nn_add(net, nn_linear(5)); nn_add(net, nn_relu()); nn_add(net, nn_linear(2));
    nn_build(net, 4, 2);
    fill_set(&d, x, y, 8, nn_shape1(6), 4);
    qn = nn_quantize(net, &d, 8, qd);
    nn_net_free(net);
    if (!qn || nn_save_memory(qn, buf, size) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
    return qn;
}

/* Offset of tensor name's bytes in a safetensors image. */
static size_t tensor_at(const unsigned char *buf, const char *name)
{
    size_t hl = 0, at;
    int k;
    char key[96];
    const char *h, *p;
    for (k = 7; k >= 0; k--) hl = hl << 8 | buf[k];
    h = (const char *)buf + 8;
    snprintf(key, sizeof key, "\"%s\":", name);
    p = strstr(h, key);
    if (!p) return 0;
    p = strstr(p, "data_offsets\":[");
    at = strtoul(p + 15, NULL, 10);
    return 8 + hl + at;
}

static void test_hostile_files(void)
{
    unsigned char *buf, *bad;
    size_t size;
    nn_net *qn = mlp_q(&buf, &size), *t;
    struct { const char *tensor; int offset; unsigned char byte; const char *why; } cases[] = {
        {"0.weight", 0, 0x80, "-128"},
        {"0.weight_scale", 3, 0x7f, "NaN"},        /* 0x7f in the top byte with a mantissa: NaN or inf */
        {"0.weight_scale", 3, 0x80, "negative"},
        {"0.output_zero_point", 0, 128, "zero point 128"},
        {"0.output_zero_point", 3, 0xff, "negative zero point"},
        {"input.zero_point", 0, 200, "input zero point"},
        {"input.scale", 3, 0xff, "input scale NaN"},
        {"2.bias", 3, 0x7f, "bias 2^30+"},
    };
    int i;
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        size_t at = tensor_at(buf, cases[i].tensor);
        CHECK(at > 0, "no tensor %s", cases[i].tensor);
        if (!at) continue;
        bad = (unsigned char *)malloc(size);
        memcpy(bad, buf, size);
        bad[at + cases[i].offset] = cases[i].byte;
        if (!strcmp(cases[i].why, "NaN")) bad[at + 2] = 0xff;
        if (!strcmp(cases[i].why, "negative")) bad[at + 3] = 0xbf;
        t = nn_load_memory(bad, size, 1);
        CHECK(t == NULL && strstr(nn_error(), cases[i].tensor), "%s: %s", cases[i].why, t ? "loaded" : nn_error());
        nn_net_free(t);
        free(bad);
    }
    /* header edits: another kind, a dtype, a missing tensor name */
    {
        static const char *const from[] = {"\"int8\"", "\"127\"", "\"I8\"", "input.scale"};
        static const char *const to[] = {"\"int4\"", "\"255\"", "\"U8\"", "input.scalf"};
        for (i = 0; i < 4; i++) {
            char *p;
            bad = (unsigned char *)malloc(size);
            memcpy(bad, buf, size);
            p = strstr((char *)bad + 8, from[i]);
            CHECK(p != NULL, "no %s in the header", from[i]);
            if (p) memcpy(p, to[i], strlen(to[i]));
            t = nn_load_memory(bad, size, 1);
            CHECK(t == NULL, "%s -> %s loaded", from[i], to[i]);
            nn_net_free(t);
            free(bad);
        }
    }
    t = nn_load_memory(buf, size, 1);
    CHECK(t != NULL, "the undamaged image loads: %s", nn_error());
    nn_net_free(t);
    nn_free_buffer(buf);
    nn_net_free(qn);
}

static void test_refusals(void)
{
    nn_net *net = nn_net_new(nn_shape3(2, 4, 4)), *bn = nn_net_new(nn_shape3(2, 4, 4));
    nn_dataset d;
    float x[4 * 32];
    int y[4];
    nn_quantize_desc qd = {0};
    fill_set(&d, x, y, 4, nn_shape3(2, 4, 4), 1);
    CHECK(nn_quantize(NULL, &d, 4, qd) == NULL && nn_quantize(net, NULL, 4, qd) == NULL, "NULL");
    nn_add(net, nn_block()); nn_add(net, nn_conv2d(2, 3, 1, 1)); nn_add(net, nn_block_end(1));
    nn_add(net, nn_flatten()); nn_add(net, nn_linear(2));
    CHECK(nn_quantize(net, &d, 4, qd) == NULL, "unbuilt net");
    nn_build(net, 4, 1);
    CHECK(nn_quantize(net, &d, 0, qd) == NULL && nn_quantize(net, &d, 5, qd) == NULL, "count outside 1..n");
    qd.max_batch = -1;
    CHECK(nn_quantize(net, &d, 4, qd) == NULL, "max_batch -1");
    qd.max_batch = 0;
    CHECK(nn_quantize(net, &d, 4, qd) == NULL && strstr(nn_error(), "layer 0 (Block)"), "a block: %s", nn_error());
    nn_add(bn, nn_maxpool2d(2, 2, 0)); nn_add(bn, nn_batchnorm()); nn_add(bn, nn_flatten()); nn_add(bn, nn_linear(2));
    nn_build(bn, 4, 1);
    CHECK(nn_quantize(bn, &d, 4, qd) == NULL && strstr(nn_error(), "layer 1 (BatchNorm)"), "a lone BatchNorm: %s",
          nn_error());
    CHECK(nn_is_quantized(NULL) == 0, "NULL is not quantized");
    nn_net_free(net);
    nn_net_free(bn);
}

int main(void)
{
    RUN(test_kernels_bit_exact);
    RUN(test_packed_kernels);
    RUN(test_im2row);
    RUN(test_requantization);
    RUN(test_observer);
    RUN(test_definitions_mlp);
    RUN(test_conv_net);
    RUN(test_hostile_files);
    RUN(test_refusals);
    return test_end("test_quantize");
}
