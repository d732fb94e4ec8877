/* NaN and infinity: the vector loops (SSE, NEON under qemu, and the plain 4-float
   structs of NN_NO_SIMD through tests/test_numerics_scalar.c) against the scalar rules
   they document, on data full of NaN, +-inf and signed zeros; layers that must keep NaN
   as PyTorch does (tests/nan_torch.py compares the values with PyTorch itself); the
   divergence checks of nn_train_step and nn_optim_step, which must leave the net and
   the optimiser as they were; optimiser and nn_evaluate argument checks. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

#ifndef NUMERICS_NAME
#define NUMERICS_NAME "test_numerics"
#endif

/* equal values, or both NaN (a NaN's sign and payload may differ between paths) */
static int same(float a, float b) { return (a != a && b != b) || (a == b && signbit(a) == signbit(b)); }

static int same_all(const float *a, const float *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) if (!same(a[i], b[i])) return 0;
    return 1;
}

static void fill_special(float *x, size_t n, uint64_t seed)
{
    static const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, -NAN};
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) {
        x[i] = 2.0f * nn_rng_uniform(&r) - 1.0f;
        if (nn_rng_below(&r, 3) == 0) x[i] = special[nn_rng_below(&r, 6)];
    }
}

static void test_select_lanes(void)
{
    float p[4] = {NAN, 1.0f, -1.0f, 0.0f}, q[4] = {0.0f, NAN, -1.0f, -0.0f}, out[4];
    float a[4] = {10, 11, 12, 13}, b[4] = {20, 21, 22, 23};
    nn__v4_store(out, nn__v4_select_gt(nn__v4_load(p), nn__v4_load(q), nn__v4_load(a), nn__v4_load(b)));
    CHECK(out[0] == 20 && out[1] == 21 && out[2] == 22 && out[3] == 23, "gt %g %g %g %g", out[0], out[1], out[2], out[3]);
    nn__v4_store(out, nn__v4_select_le(nn__v4_load(p), nn__v4_load(q), nn__v4_load(a), nn__v4_load(b)));
    CHECK(out[0] == 20 && out[1] == 21 && out[2] == 12 && out[3] == 13, "le %g %g %g %g", out[0], out[1], out[2], out[3]);
}

/* Every length 0..41 and misalignment, data a third NaN / inf / signed zero. */
static void test_vector_loops_on_nan(void)
{
    enum { MAX = 41 };
    float x[MAX + 4], g[MAX + 4], m[MAX + 4], y[MAX + 4], want[MAX];
    const float a = 0.37f, mu = 0.21f, b = -0.4f, k = 1.7f, c = 0.05f;
    size_t n, i;
    int off, bad = 0, bad_sum = 0, bad_finite = 0;
    fill_special(x, MAX + 4, 1);
    fill_special(g, MAX + 4, 2);
    fill_special(m, MAX + 4, 3);
    for (n = 0; n <= MAX; n++)
        for (off = 0; off < 4; off++) {
            const float *xs = x + off, *gs = g + off, *ms = m + off;
            double sum = 0, sg = 0, sgd = 0;
            float got_g, got_gd;
            int finite = 1;
#define LOOP(call, expr)                                          \
            call;                                                 \
            for (i = 0; i < n; i++) want[i] = (expr);             \
            bad += !same_all(y, want, n);
            LOOP(nn__vmask_pos(y, ms, gs, n), ms[i] <= 0.0f ? 0.0f : gs[i])
            LOOP(nn__vmask_pos(y, xs, xs, n), xs[i] <= 0.0f ? 0.0f : xs[i])
            LOOP(nn__vselect_pos(y, xs, gs, n, a), xs[i] > 0.0f ? gs[i] : a * gs[i])
            LOOP(nn__vaffine(y, xs, n, a, mu, b, 1),
                 a * (xs[i] - mu) + b <= 0.0f ? 0.0f : a * (xs[i] - mu) + b)
            LOOP(nn__vaffine(y, xs, n, a, mu, b, 0), a * (xs[i] - mu) + b)
            LOOP(nn__vaxpy_dev(y, a, gs, ms, xs, n, k, mu, c),
                 a * (ms[i] <= 0.0f ? 0.0f : gs[i]) + k * (xs[i] - mu) + c)
            LOOP(nn__vaxpy_dev(y, a, gs, ms, NULL, n, 0.0f, mu, c), a * (ms[i] <= 0.0f ? 0.0f : gs[i]) + c)
#undef LOOP
            /* sums: NaN exactly when a term is NaN or infinities of both signs meet */
            for (i = 0; i < n; i++) {
                double gm = ms[i] <= 0.0f ? 0.0 : gs[i];
                sum += xs[i];
                sg += gm;
                sgd += gm * ((double)xs[i] - mu);
                finite &= isfinite(xs[i]) != 0;
            }
            /* isnan gives some non-zero value (MinGW-w64: -1 for a double): compare truths */
            bad_sum += (isnan(nn__vsum(xs, n)) != 0) != (isnan(sum) != 0);
            nn__vsum_grad(gs, ms, xs, n, mu, &got_g, &got_gd);
            bad_sum += (isnan(got_g) != 0) != (isnan(sg) != 0) || (isnan(got_gd) != 0) != (isnan(sgd) != 0);
            bad_sum += (isnan(nn__vsum_sq_dev(xs, n, mu)) != 0) != !finite;
            bad_finite += nn__vfinite(xs, n) != finite;
        }
    CHECK(bad == 0, "%d element-wise loops differ from their scalar rule", bad);
    CHECK(bad_sum == 0, "%d sums differ in NaN-ness", bad_sum);
    CHECK(bad_finite == 0, "%d finiteness checks wrong", bad_finite);
}

static nn_net *net_of(nn_shape in, const nn_layer_desc *layers, int count, int batch, int input_grad)
{
    nn_net *net = nn_net_new(in);
    int i;
    for (i = 0; i < count; i++) nn_add(net, layers[i]);
    nn_set_input_grad(net, input_grad);
    if (nn_build(net, batch, 3) != NN_OK) {
        CHECK(0, "build: %s", nn_error());
        nn_net_free(net);
        return NULL;
    }
    return net;
}

/* ReLU keeps NaN and passes its gradient (PyTorch); on e42cc88 it gave 0 and 0. */
static void test_relu_keeps_nan(void)
{
    nn_layer_desc d = nn_relu();
    nn_net *net = net_of(nn_shape3(9, 1, 1), &d, 1, 1, 1);
    float x[9] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 2.0f, -2.0f, NAN, 1.0f}, dy[9];
    const float *y, *dx;
    int i;
    if (!net) return;
    for (i = 0; i < 9; i++) dy[i] = (float)(i + 1);
    y = nn_forward(net, x, 1);
    nn_backward(net, dy);
    dx = nn_input_grad(net);
    CHECK(isnan(y[0]) && isnan(y[7]) && y[1] == INFINITY && y[2] == 0.0f && y[5] == 2.0f && y[6] == 0.0f,
          "forward %g %g %g %g", y[0], y[1], y[2], y[7]);
    CHECK(dx[0] == 1.0f && dx[7] == 8.0f && dx[1] == 2.0f && dx[2] == 0.0f && dx[3] == 0.0f && dx[5] == 6.0f,
          "backward %g %g %g", dx[0], dx[7], dx[3]);
    nn_net_free(net);
}

/* The fused BatchNorm + ReLU gives the NaN of the two layers apart (Scale(1) between
   them prevents the fusion), in training (the whole channel) and evaluation. */
static void test_fused_batchnorm_relu_nan(void)
{
    nn_layer_desc fused[2], apart[3];
    nn_net *a, *b;
    float x[2 * 3 * 4], dy[2 * 3 * 4];
    int mode, i;
    fused[0] = nn_batchnorm(); fused[1] = nn_relu();
    apart[0] = nn_batchnorm(); apart[1] = nn_scale(1.0f); apart[2] = nn_relu();
    a = net_of(nn_shape3(3, 2, 2), fused, 2, 2, 1);
    b = net_of(nn_shape3(3, 2, 2), apart, 3, 2, 1);
    if (!a || !b) { nn_net_free(a); nn_net_free(b); return; }
    fill_special(x, 24, 9);
    for (i = 0; i < 24; i++) dy[i] = 0.5f + (float)i;
    x[0] = NAN; x[5] = 1.0f;
    for (mode = 1; mode >= 0; mode--) {
        const float *ya, *yb;
        nn_set_training(a, mode);
        nn_set_training(b, mode);
        ya = nn_forward(a, x, 2);
        yb = nn_forward(b, x, 2);
        CHECK(same_all(ya, yb, 24), "outputs differ (training %d)", mode);
        CHECK(isnan(ya[0]), "NaN lost (training %d)", mode);
        nn_backward(a, dy);
        nn_backward(b, dy);
        CHECK(same_all(nn_input_grad(a), nn_input_grad(b), 24), "input gradients differ (training %d)", mode);
        CHECK(same_all(nn_get_param(a, 0)->grad, nn_get_param(b, 0)->grad, 3), "gamma gradients differ");
    }
    nn_net_free(a);
    nn_net_free(b);
}

/* MaxPool2d: a NaN beats a larger number, the last NaN of the window gets the gradient
   (PyTorch's CPU kernel; e42cc88 gave it to the first). */
static void test_maxpool_last_nan(void)
{
    nn_layer_desc d = nn_maxpool2d(2, 2, 0);
    nn_net *net = net_of(nn_shape3(1, 2, 4), &d, 1, 1, 1);
    float x[8] = {1.0f, NAN, INFINITY, 2.0f, NAN, 5.0f, INFINITY, 3.0f}, dy[2] = {1.0f, 2.0f};
    const float *y, *dx;
    if (!net) return;
    y = nn_forward(net, x, 1);
    nn_backward(net, dy);
    dx = nn_input_grad(net);
    CHECK(isnan(y[0]) && y[1] == INFINITY, "forward %g %g", y[0], y[1]);
    CHECK(dx[4] == 1.0f && dx[1] == 0.0f && dx[0] == 0.0f && dx[5] == 0.0f, "NaN window %g %g", dx[1], dx[4]);
    CHECK(dx[2] == 2.0f && dx[6] == 0.0f, "inf tie %g %g", dx[2], dx[6]);
    nn_net_free(net);
}

static void test_argmax_nan(void)
{
    float v[] = {1.0f, NAN, 3.0f, NAN}, w[] = {NAN, 7.0f}, u[] = {1.0f, INFINITY, INFINITY};
    CHECK(nn_argmax(v, 4) == 1, "%d", nn_argmax(v, 4));
    CHECK(nn_argmax(w, 2) == 0, "%d", nn_argmax(w, 2));
    CHECK(nn_argmax(u, 3) == 1, "%d", nn_argmax(u, 3));
    CHECK(nn_argmax(NULL, 3) == 0 && nn_argmax(v, 0) == 0, "degenerate");
}

static void test_losses_nan(void)
{
    float p[2] = {NAN, 0.5f}, t[2] = {1.0f, 0.0f}, g[2], z[2] = {INFINITY, -INFINITY}, tz[2] = {0.5f, 0.0f};
    float loss = nn_bce(p, t, 2, g);
    CHECK(isnan(loss) && isnan(g[0]) && g[1] == 1.0f, "bce NaN p: %g %g %g", loss, g[0], g[1]);
    p[0] = 1.5f;
    CHECK(isnan(nn_bce(p, t, 2, g)) && strstr(nn_error(), "outside [0, 1]"), "bce p > 1: %s", nn_error());
    CHECK(isinf(nn_bce_with_logits(z, tz, 1, g)) && isnan(nn_bce_with_logits(z + 1, tz + 1, 1, g)),
          "bce with logits at +-inf");
}

/* A batch with one NaN pixel through Conv -> ReLU -> Linear: on e42cc88 nn_train_step
   returned a finite loss and set no error while the conv's weights became NaN. Now:
   NaN, NN_ERR_NUMERIC naming the step and the first layer, everything as before. */
static void test_train_step_nan_pixel(void)
{
    nn_layer_desc d[5];
    nn_net *net;
    nn_optim *opt;
    nn_sgd_desc sgd = {0.1f, 0.9f, 0.0f, 0.0f, 0};
    float x[4 * 2 * 6 * 6], w0[4 * 2 * 9], loss;
    int y[4] = {0, 1, 2, 1}, i;
    d[0] = nn_conv2d(4, 3, 1, 1); d[1] = nn_relu(); d[2] = nn_flatten(); d[3] = nn_linear(3);
    if (!(net = net_of(nn_shape3(2, 6, 6), d, 4, 4, 0))) return;
    opt = nn_sgd(net, sgd);
    fill_special(x, 0, 0);
    for (i = 0; i < 4 * 72; i++) x[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    CHECK(isfinite(nn_train_step(net, opt, x, y, 4)), "clean step: %s", nn_error());
    memcpy(w0, nn_get_param(net, 0)->value, sizeof w0);
    x[72 + 14] = NAN;
    loss = nn_train_step(net, opt, x, y, 4);
    CHECK(isnan(loss) && strstr(nn_error(), "step 2") && strstr(nn_error(), "layer 0 (Conv2d)"),
          "%g: %s", loss, nn_error());
    CHECK(!memcmp(w0, nn_get_param(net, 0)->value, sizeof w0), "the conv's weights changed");
    CHECK(nn_optim_steps(opt) == 1, "step count %ld", nn_optim_steps(opt));
    x[72 + 14] = 0.25f;
    CHECK(isfinite(nn_train_step(net, opt, x, y, 4)) && nn_optim_steps(opt) == 2, "training goes on");
    nn_optim_free(opt);
    nn_net_free(net);
}

/* The state of a net and its optimiser, to compare before and after a failed step. */
typedef struct { float *v; size_t n; long step; } snapshot;

static snapshot take(nn_net *net, nn_optim *opt)
{
    snapshot s;
    size_t at = 0, size = 0;
    int i, k;
    for (i = 0; i < nn_num_param_tensors(net); i++) size += 3 * nn_get_param(net, i)->size;
    s.v = (float *)malloc(size * sizeof(float));
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        memcpy(s.v + at, p->value, p->size * sizeof(float));
        at += p->size;
        for (k = 0; k < 2; k++) {
            float *state = k ? opt->v[i] : opt->m[i];
            if (state) memcpy(s.v + at, state, p->size * sizeof(float));
            else memset(s.v + at, 0, p->size * sizeof(float));
            at += p->size;
        }
    }
    s.n = at;
    s.step = nn_optim_steps(opt);
    return s;
}

static int unchanged(snapshot before, nn_net *net, nn_optim *opt)
{
    snapshot now = take(net, opt);
    int same_state = now.n == before.n && !memcmp(now.v, before.v, now.n * sizeof(float)) && now.step == before.step;
    free(now.v);
    free(before.v);
    return same_state;
}

static nn_optim *make_optim(nn_net *net, int kind)
{
    nn_sgd_desc sgd = {0.05f, 0.9f, 0.0f, 1e-4f, 0};
    nn_adam_desc adam = {1e-3f, 0, 0, 0, 0};
    return kind == 0 ? nn_sgd(net, sgd) : kind == 1 ? nn_adam(net, adam) : kind == 2 ? nn_adamw(net, adam)
                                                                           : nn_adamax(net, adam);
}

/* nn_optim_step on a NaN or infinite gradient in the middle of a tensor larger than one
   chunk (so that chunks before it are fine) leaves everything as it was, for every
   optimiser, and names the parameter and index. */
static void test_optim_step_bad_gradient(void)
{
    nn_layer_desc d[2];
    nn_net *net;
    int kind, i;
    d[0] = nn_linear(300); d[1] = nn_linear(10);
    if (!(net = net_of(nn_shape3(200, 1, 1), d, 2, 2, 0))) return;
    for (kind = 0; kind < 4; kind++) {
        nn_optim *opt = make_optim(net, kind);
        nn_param *w = nn_get_param(net, 2);
        snapshot s;
        nn_status st;
        for (i = 0; i < nn_num_param_tensors(net); i++) {
            nn_param *p = nn_get_param(net, i);
            size_t j;
            for (j = 0; j < p->size; j++) p->grad[j] = 0.01f * (float)((j % 13) - 6);
        }
        CHECK(nn_optim_step(opt) == NN_OK && nn_optim_step(opt) == NN_OK, "clean steps: %s", nn_error());
        nn_get_param(net, 0)->grad[50000] = INFINITY;
        s = take(net, opt);
        st = nn_optim_step(opt);
        CHECK(st == NN_ERR_NUMERIC && strstr(nn_error(), "0.weight") && strstr(nn_error(), "index 50000") &&
              strstr(nn_error(), "step 3"), "kind %d: %s", kind, nn_error());
        CHECK(unchanged(s, net, opt), "kind %d: the state changed", kind);
        nn_get_param(net, 0)->grad[50000] = 0.0f;
        w->grad[7] = NAN;
        s = take(net, opt);
        CHECK(nn_optim_step(opt) == NN_ERR_NUMERIC && strstr(nn_error(), "1.weight (Linear)"), "kind %d: %s", kind, nn_error());
        CHECK(unchanged(s, net, opt), "kind %d: the state changed (NaN in the last tensor)", kind);
        w->grad[7] = 0.0f;
        CHECK(nn_optim_step(opt) == NN_OK && nn_optim_steps(opt) == 3, "kind %d: goes on", kind);
        nn_optim_free(opt);
    }
    nn_net_free(net);
}

/* Finite gradients whose update overflows (a huge learning rate; a gradient whose
   square overflows Adam's second moment) are caught the same way. */
static void test_optim_step_overflow(void)
{
    nn_layer_desc d = nn_linear(4);
    nn_net *net;
    nn_optim *opt;
    snapshot s;
    size_t j;
    if (!(net = net_of(nn_shape3(3, 1, 1), &d, 1, 1, 0))) return;
    opt = make_optim(net, 0);
    for (j = 0; j < 12; j++) nn_get_param(net, 0)->grad[j] = 1e10f;
    nn_optim_set_lr(opt, 1e30f);
    s = take(net, opt);
    CHECK(nn_optim_step(opt) == NN_ERR_NUMERIC && strstr(nn_error(), "update of 0.weight"), "%s", nn_error());
    CHECK(unchanged(s, net, opt), "SGD state changed");
    nn_optim_free(opt);
    opt = make_optim(net, 1);
    for (j = 0; j < 12; j++) nn_get_param(net, 0)->grad[j] = 1.0f;
    nn_get_param(net, 0)->grad[5] = 1e30f;   /* its square does not fit a float */
    s = take(net, opt);
    CHECK(nn_optim_step(opt) == NN_ERR_NUMERIC && strstr(nn_error(), "index 5"), "%s", nn_error());
    CHECK(unchanged(s, net, opt), "Adam state changed");
    nn_optim_free(opt);
    nn_net_free(net);
}

/* A failed nn_train_step also puts back what the forward changed: BatchNorm's running
   statistics, the dropout RNG, the batch count. */
static void test_train_step_failure_restores_buffers(void)
{
    nn_layer_desc d[5];
    nn_net *net;
    nn_optim *opt;
    float x[3 * 8], rm[8], rv[8];
    int y[3] = {0, 1, 0}, i;
    nn_rng rng;
    d[0] = nn_batchnorm(); d[1] = nn_dropout(0.5f); d[2] = nn_linear(2);
    if (!(net = net_of(nn_shape3(8, 1, 1), d, 3, 3, 0))) return;
    opt = make_optim(net, 1);
    for (i = 0; i < 24; i++) x[i] = (float)(i % 5) - 2.0f;
    CHECK(isfinite(nn_train_step(net, opt, x, y, 3)), "clean step");
    memcpy(rm, net->layers[0].running_mean->value, sizeof rm);
    memcpy(rv, net->layers[0].running_var->value, sizeof rv);
    rng = net->rng;
    x[9] = -INFINITY;
    CHECK(isnan(nn_train_step(net, opt, x, y, 3)), "step with -inf");
    CHECK(!memcmp(rm, net->layers[0].running_mean->value, sizeof rm) &&
          !memcmp(rv, net->layers[0].running_var->value, sizeof rv), "running statistics changed");
    CHECK(rng.state == net->rng.state && net->train_batches == 1, "RNG or batch count changed");
    nn_optim_free(opt);
    nn_net_free(net);
}

static void test_check_input(void)
{
    nn_layer_desc d[2];
    nn_net *net;
    nn_optim *opt;
    float x[2 * 6];
    int y[2] = {0, 1}, i;
    d[0] = nn_linear(2);
    if (!(net = net_of(nn_shape3(6, 1, 1), d, 1, 2, 0))) return;
    opt = make_optim(net, 0);
    for (i = 0; i < 12; i++) x[i] = 0.1f * (float)i;
    x[8] = INFINITY;
    nn_set_check_input(net, 1);
    CHECK(isnan(nn_train_step(net, opt, x, y, 2)) && strstr(nn_error(), "value 2 of sample 1"), "%s", nn_error());
    CHECK(net->train_batches == 0, "the forward ran");
    nn_set_check_input(net, 0);
    CHECK(isnan(nn_train_step(net, opt, x, y, 2)) && strstr(nn_error(), "input batch has"), "%s", nn_error());
    x[8] = 0.0f;
    CHECK(isfinite(nn_train_step(net, opt, x, y, 2)), "%s", nn_error());
    nn_set_check_input(NULL, 1);
    nn_optim_free(opt);
    nn_net_free(net);
}

/* Hyperparameters that were accepted silently on e42cc88. */
static void test_optim_validation(void)
{
    nn_layer_desc d = nn_linear(2);
    nn_net *net = net_of(nn_shape3(3, 1, 1), &d, 1, 1, 0);
    nn_sgd_desc sgd = {0.1f, 0, 0, 0, 0};
    nn_adam_desc adam = {0, 0, 0, 0, 0};
    nn_optim *opt;
    float bad[3] = {NAN, INFINITY, -1.0f};
    int i;
    if (!net) return;
    for (i = 0; i < 3; i++) {
        nn_sgd_desc s = sgd;
        nn_adam_desc a = adam;
        s.momentum = bad[i];
        CHECK(!nn_sgd(net, s), "momentum %g", bad[i]);
        s = sgd; s.weight_decay = bad[i];
        CHECK(!nn_sgd(net, s), "SGD weight decay %g", bad[i]);
        s = sgd; s.lr = bad[i];
        CHECK(!nn_sgd(net, s), "SGD lr %g", bad[i]);
        a.beta1 = bad[i];
        CHECK(!nn_adam(net, a), "beta1 %g", bad[i]);
        a = adam; a.beta2 = bad[i];
        CHECK(!nn_adamw(net, a), "beta2 %g", bad[i]);
        a = adam; a.eps = bad[i];
        CHECK(!nn_adamax(net, a), "eps %g", bad[i]);
        a = adam; a.weight_decay = bad[i];
        CHECK(!nn_adam(net, a) && !strcmp(nn_status_name(NN_ERR_ARG), "NN_ERR_ARG"), "Adam weight decay %g", bad[i]);
    }
    sgd.dampening = NAN;
    CHECK(!nn_sgd(net, sgd), "dampening NaN");
    sgd.dampening = 0.0f;
    opt = nn_sgd(net, sgd);
    for (i = 0; i < 3; i++)
        CHECK(nn_optim_set_lr(opt, bad[i]) == NN_ERR_ARG && nn_optim_get_lr(opt) == 0.1f, "set_lr %g", bad[i]);
    CHECK(nn_optim_set_lr(opt, 0.0f) == NN_OK && nn_optim_get_lr(opt) == 0.0f, "lr 0");
    nn_optim_free(opt);
    nn_net_free(net);
}

/* An optimiser kept across an nn_build: NN_ERR_STATE, and freeing it is still safe
   after the net grew (its moments are sized by what it was made for). */
static void test_optim_after_rebuild(void)
{
    nn_layer_desc d = nn_linear(2);
    nn_net *net = net_of(nn_shape3(3, 1, 1), &d, 1, 2, 0);
    nn_optim *opt;
    float x[6] = {0};
    int y[2] = {0, 1};
    if (!net) return;
    opt = make_optim(net, 1);
    CHECK(isfinite(nn_train_step(net, opt, x, y, 2)), "%s", nn_error());
    nn_add(net, nn_relu());
    nn_add(net, nn_linear(2));
    CHECK(nn_build(net, 2, 4) == NN_OK, "%s", nn_error());
    CHECK(nn_optim_step(opt) == NN_ERR_STATE && strstr(nn_error(), "rebuilt"), "%s", nn_error());
    CHECK(isnan(nn_train_step(net, opt, x, y, 2)) && strstr(nn_error(), "rebuilt"), "%s", nn_error());
    nn_optim_free(opt);
    nn_net_free(net);
}

static void test_optim_null(void)
{
    nn_sgd_desc sgd = {0.1f, 0, 0, 0, 0};
    nn_adam_desc adam = {0, 0, 0, 0, 0};
    nn_layer_desc d = nn_linear(2);
    nn_net *net = net_of(nn_shape3(3, 1, 1), &d, 1, 2, 0), *unbuilt = nn_net_new(nn_shape3(3, 1, 1));
    nn_optim *opt;
    float x[6] = {0};
    int y[2] = {0, 1};
    if (!net) return;
    CHECK(!nn_sgd(NULL, sgd) && strstr(nn_error(), "NULL"), "%s", nn_error());
    CHECK(!nn_adam(NULL, adam) && !nn_adamw(NULL, adam) && !nn_adamax(NULL, adam), "adam");
    CHECK(!nn_sgd(unbuilt, sgd) && strstr(nn_error(), "build the net first"), "%s", nn_error());
    nn_optim_free(NULL);
    CHECK(nn_optim_step(NULL) == NN_ERR_ARG, "step");
    CHECK(nn_optim_set_lr(NULL, 0.1f) == NN_ERR_ARG, "set_lr");
    CHECK(isnan(nn_optim_get_lr(NULL)) && nn_optim_steps(NULL) == 0, "getters");
    opt = nn_sgd(net, sgd);
    CHECK(isnan(nn_train_step(NULL, opt, x, y, 2)) && strstr(nn_error(), "net is NULL"), "%s", nn_error());
    CHECK(isnan(nn_train_step(net, NULL, x, y, 2)) && strstr(nn_error(), "opt is NULL"), "%s", nn_error());
    CHECK(isnan(nn_train_step(net, opt, NULL, y, 2)) && strstr(nn_error(), "x is NULL"), "%s", nn_error());
    CHECK(isnan(nn_train_step(net, opt, x, NULL, 2)) && strstr(nn_error(), "y is NULL"), "%s", nn_error());
    nn_optim_free(opt);
    nn_net_free(net);
    nn_net_free(unbuilt);
}

/* n > max batch is refused before the labels are read (e42cc88 read n of them: under
   ASan a heap overflow of this array). */
static void test_train_step_checks_n_first(void)
{
    nn_layer_desc d = nn_linear(2);
    nn_net *net = net_of(nn_shape3(3, 1, 1), &d, 1, 2, 0);
    nn_optim *opt;
    float x[9] = {0};
    int *y = (int *)malloc(2 * sizeof(int));
    if (!net) { free(y); return; }
    opt = make_optim(net, 0);
    y[0] = 0; y[1] = 1;
    CHECK(isnan(nn_train_step(net, opt, x, y, 3)) && strstr(nn_error(), "built for 1 to 2"), "%s", nn_error());
    CHECK(isnan(nn_train_step(net, opt, x, y, 0)), "n = 0");
    free(y);
    nn_optim_free(opt);
    nn_net_free(net);
}

/* nn_evaluate: the matrix is num_classes^2 even when the net has more outputs (e42cc88
   wrote outputs^2: a heap overflow under ASan); bad labels, NULL, an unbuilt net and
   NaN logits. */
static void test_evaluate(void)
{
    nn_layer_desc d = nn_linear(5);
    nn_net *net = net_of(nn_shape3(2, 1, 1), &d, 1, 4, 0), *unbuilt = nn_net_new(nn_shape3(2, 1, 1));
    nn_dataset set;
    float x[6 * 2], loss, acc;
    int y[6] = {0, 1, 2, 0, 1, 2}, *confusion = (int *)malloc(9 * sizeof(int)), i, total = 0;
    if (!net) { free(confusion); nn_net_free(unbuilt); return; }
    memset(&set, 0, sizeof set);
    for (i = 0; i < 12; i++) x[i] = (float)(i % 7) - 3.0f;
    set.n = 6; set.shape = nn_shape3(2, 1, 1); set.num_classes = 3; set.x = x; set.y = y;
    CHECK(nn_evaluate(net, &set, &loss, &acc, confusion) == NN_OK && isfinite(loss), "%s", nn_error());
    for (i = 0; i < 9; i++) total += confusion[i];
    CHECK(total <= 6 && acc >= 0.0f && acc <= 1.0f, "confusion total %d", total);
    y[4] = 3;
    for (i = 0; i < 9; i++) confusion[i] = -7;
    CHECK(nn_evaluate(net, &set, &loss, &acc, confusion) == NN_ERR_ARG && strstr(nn_error(), "label 3 of sample 4"),
          "%s", nn_error());
    CHECK(confusion[0] == -7 && confusion[8] == -7, "the matrix was written");
    y[4] = -1;
    CHECK(nn_evaluate(net, &set, NULL, NULL, NULL) == NN_ERR_ARG, "label -1");
    y[4] = 1;
    CHECK(nn_evaluate(NULL, &set, NULL, NULL, NULL) == NN_ERR_ARG && nn_evaluate(net, NULL, NULL, NULL, NULL) == NN_ERR_ARG,
          "NULL");
    CHECK(nn_evaluate(unbuilt, &set, NULL, NULL, NULL) == NN_ERR_STATE, "unbuilt");
    set.num_classes = 6;
    CHECK(nn_evaluate(net, &set, NULL, NULL, NULL) == NN_ERR_ARG, "more classes than outputs");
    set.num_classes = 3;
    x[5] = NAN;
    CHECK(nn_evaluate(net, &set, &loss, &acc, confusion) == NN_ERR_NUMERIC && isnan(loss) &&
          strstr(nn_error(), "sample 2"), "%g: %s", loss, nn_error());
    nn_set_check_input(net, 1);
    CHECK(nn_evaluate(net, &set, &loss, &acc, confusion) == NN_ERR_NUMERIC && strstr(nn_error(), "value 1 of sample 2"),
          "%s", nn_error());
    free(confusion);
    nn_net_free(net);
    nn_net_free(unbuilt);
}

/* GELU's kernels (nn__vgelu, nn__vgelu_grad: a fitted erf and exp on four lanes)
   against double precision on a sweep of [-14, 14]: y within 1e-6 (1 + |x|), dy/dx
   within 2e-6 (1 + |x|); the special values as the erff / expf formula gives them
   (NaN stays NaN, GELU(inf) = inf, GELU(-inf) and the gradients at +-inf are NaN,
   huge values saturate); every length and offset the same bits as one element at a
   time, nothing written past the end; and a hash of the sweep's bits, the same on
   the SSE, NEON and plain-struct paths (they compute the same operations). */
static void test_gelu_kernel(void)
{
    enum { SWEEP = 28001, MAX = 23, PAD = 6 };
    static float x[SWEEP], y[SWEEP], d[SWEEP], one[SWEEP];
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 1e-40f, -1e-40f,
                             3.92f, -3.92f, 5.5f, -5.5f, 13.2f, -13.2f, 13.3f, -13.3f, 20.0f, -20.0f};
    const int ns = (int)(sizeof special / sizeof special[0]);
    float sy[32], sd[32], ones[32], buf[MAX + 4 + PAD], want[MAX + 4];
    int i, n, off, bad_y = 0, bad_d = 0, bad_special = 0, bad_bits = 0, bad_end = 0;
    uint32_t hash = 2166136261u;
    for (i = 0; i < SWEEP; i++) {
        x[i] = -14.0f + 28.0f * (float)i / (SWEEP - 1);
        one[i] = 1.0f;
    }
    nn__vgelu(y, x, SWEEP);
    nn__vgelu_grad(d, x, one, SWEEP);
    for (i = 0; i < SWEEP; i++) {
        double v = x[i], cdf = 0.5 * (1.0 + erf(v / sqrt(2.0)));
        double grad = cdf + v * exp(-0.5 * v * v) / sqrt(2.0 * 3.14159265358979323846);
        uint32_t u[2];
        bad_y += fabs(y[i] - v * cdf) > 1e-6 * (1.0 + fabs(v));
        bad_d += fabs(d[i] - grad) > 2e-6 * (1.0 + fabs(v));
        memcpy(&u[0], &y[i], 4);
        memcpy(&u[1], &d[i], 4);
        hash = (hash ^ u[0]) * 16777619u;
        hash = (hash ^ u[1]) * 16777619u;
    }
    CHECK(bad_y == 0 && bad_d == 0, "%d values and %d gradients off the double reference", bad_y, bad_d);
    CHECK(hash == 0x44b0e5deu, "the sweep's bits hash to 0x%08x", (unsigned)hash);
    for (i = 0; i < ns; i++) ones[i] = 1.0f;
    nn__vgelu(sy, special, (size_t)ns);
    nn__vgelu_grad(sd, special, ones, (size_t)ns);
    for (i = 0; i < ns; i++) {
        float v = special[i], cdf = 0.5f * (1.0f + erff(v * 0.7071067811865476f));
        float wy = 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
        float wd = cdf + v * 0.3989422804014327f * expf(-0.5f * v * v);
        if (!same(sy[i], wy) && !(fabsf(sy[i] - wy) <= 1e-6f * (1.0f + fabsf(v)))) bad_special++;
        if (!same(sd[i], wd) && !(fabsf(sd[i] - wd) <= 2e-6f * (1.0f + fabsf(v)))) bad_special++;
    }
    CHECK(bad_special == 0, "%d special values differ from the erff / expf formula", bad_special);
    for (n = 0; n <= MAX; n++)
        for (off = 0; off < 4; off++) {
            const float *xs = x + 13000 + off * 7;
            for (i = 0; i < n + PAD; i++) buf[off + i] = 12345.0f;
            nn__vgelu(buf + off, xs, (size_t)n);
            for (i = 0; i < n; i++) nn__vgelu(want + i, xs + i, 1);
            bad_bits += memcmp(buf + off, want, (size_t)n * sizeof(float)) != 0;
            for (i = n; i < n + PAD; i++) bad_end += buf[off + i] != 12345.0f;
            for (i = 0; i < n + PAD; i++) buf[off + i] = 12345.0f;
            nn__vgelu_grad(buf + off, xs, one, (size_t)n);
            for (i = 0; i < n; i++) nn__vgelu_grad(want + i, xs + i, one, 1);
            bad_bits += memcmp(buf + off, want, (size_t)n * sizeof(float)) != 0;
            for (i = n; i < n + PAD; i++) bad_end += buf[off + i] != 12345.0f;
        }
    CHECK(bad_bits == 0, "%d lengths give other bits than one element at a time", bad_bits);
    CHECK(bad_end == 0, "%d writes past the end", bad_end);
}

int main(void)
{
    nn_set_threads(2);
    RUN(test_select_lanes);
    RUN(test_vector_loops_on_nan);
    RUN(test_relu_keeps_nan);
    RUN(test_fused_batchnorm_relu_nan);
    RUN(test_maxpool_last_nan);
    RUN(test_argmax_nan);
    RUN(test_losses_nan);
    RUN(test_train_step_nan_pixel);
    RUN(test_optim_step_bad_gradient);
    RUN(test_optim_step_overflow);
    RUN(test_train_step_failure_restores_buffers);
    RUN(test_check_input);
    RUN(test_optim_validation);
    RUN(test_optim_after_rebuild);
    RUN(test_optim_null);
    RUN(test_train_step_checks_n_first);
    RUN(test_evaluate);
    RUN(test_gelu_kernel);
    return test_end(NUMERICS_NAME);
}
