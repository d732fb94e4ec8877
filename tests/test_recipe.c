/* The general training features of the airbench94 recipe: label smoothing, parameter
   options (learning-rate and weight-decay multipliers, frozen parameters) and their
   checkpoints, the triangular schedule, weight averaging (EMA / Lookahead), the
   alternating flip and reflection padding of the batcher, and test-time augmentation.
   Their PyTorch side is tests/recipe_torch.c + .py. */
#define _POSIX_C_SOURCE 200809L   /* mkstemp */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"
#include <unistd.h>

static void fill(float *v, size_t n, float lo, float hi, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) v[i] = lo + (hi - lo) * nn_rng_uniform(&r);
}

/* Linear(5) -> ReLU -> Linear(3) on 4 features (names 0.*, 2.*). */
static nn_net *mlp(int batch, uint64_t seed)
{
    nn_net *net = nn_net_new(nn_shape1(4));
    nn_add(net, nn_linear(5));
    nn_add(net, nn_relu());
    nn_add(net, nn_linear(3));
    if (nn_build(net, batch, seed) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
    return net;
}

static nn_param *param(nn_net *net, const char *name)
{
    int i;
    for (i = 0; i < nn_num_param_tensors(net); i++)
        if (!strcmp(nn_get_param(net, i)->name, name)) return nn_get_param(net, i);
    return NULL;
}

static int same_floats(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof(float)); }

/* ---- Label smoothing ------------------------------------------------------------------ */

static void test_smoothing_formula_and_gradient(void)
{
    enum { N = 4, K = 5 };
    float z[N * K], g[N * K], g0[N * K], zp[N * K];
    int y[N] = {0, 3, 4, 1}, i, j;
    double want = 0.0, eps = 0.2;
    fill(z, N * K, -3.0f, 3.0f, 1);
    for (i = 0; i < N; i++) {   /* (1 - eps) nll + eps/K sum_c -log p_c, from log-softmax */
        double m = -1e30, s = 0.0;
        for (j = 0; j < K; j++) m = z[i * K + j] > m ? z[i * K + j] : m;
        for (j = 0; j < K; j++) s += exp(z[i * K + j] - m);
        for (j = 0; j < K; j++) {
            double logp = z[i * K + j] - m - log(s);
            want -= ((j == y[i] ? 1.0 - eps : 0.0) + eps / K) * logp;
        }
    }
    want /= N;
    CHECK_NEAR(nn_softmax_cross_entropy_smooth(z, y, N, K, 0.2f, g), want, 1e-6);
    for (i = 0; i < N * K; i++) {   /* central differences of the loss itself */
        double h = 1e-2, lp, lm;
        memcpy(zp, z, sizeof z);
        zp[i] = z[i] + (float)h; lp = nn_softmax_cross_entropy_smooth(zp, y, N, K, 0.2f, NULL);
        zp[i] = z[i] - (float)h; lm = nn_softmax_cross_entropy_smooth(zp, y, N, K, 0.2f, NULL);
        CHECK(fabs((lp - lm) / (2 * h) - g[i]) < 2e-4, "dz[%d]: fd %g, analytic %g", i, (lp - lm) / (2 * h), g[i]);
    }
    /* eps 0 is the plain loss, bit for bit; eps 1 is the uniform target */
    CHECK(nn_softmax_cross_entropy_smooth(z, y, N, K, 0.0f, g) == nn_softmax_cross_entropy(z, y, N, K, g0) &&
          same_floats(g, g0, N * K), "eps 0 differs from nn_softmax_cross_entropy");
    nn_softmax_cross_entropy_smooth(z, y, N, K, 1.0f, g);
    for (j = 0; j < K; j++) {
        double s = 0;
        for (i = 0; i < K; i++) s += exp(z[i] - z[j]);
        CHECK_NEAR(g[j], (1.0 / s - 1.0 / K) / N, 1e-6);
    }
    CHECK(isnan(nn_softmax_cross_entropy_smooth(z, y, N, K, 1.5f, NULL)), "eps 1.5 accepted");
    CHECK(isnan(nn_softmax_cross_entropy_smooth(z, y, N, K, NAN, NULL)), "eps NaN accepted");
}

static void test_train_step_smooths(void)
{
    float x[8 * 4], logits[8 * 3];
    int y[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    nn_net *net = mlp(8, 3);
    nn_optim *opt = nn_sgd(net, (nn_sgd_desc){.lr = 0.1f});
    fill(x, sizeof x / sizeof *x, -1, 1, 2);
    CHECK(nn_set_label_smoothing(net, 0.2f) == NN_OK, "%s", nn_error());
    CHECK(nn_set_label_smoothing(net, -0.1f) == NN_ERR_ARG && nn_set_label_smoothing(NULL, 0.1f) == NN_ERR_ARG,
          "bad eps accepted");
    memcpy(logits, nn_forward(net, x, 8), sizeof logits);
    CHECK(nn_train_step(net, opt, x, y, 8) == nn_softmax_cross_entropy_smooth(logits, y, 8, 3, 0.2f, NULL),
          "nn_train_step's loss is not the smoothed one");
    nn_optim_free(opt);
    nn_net_free(net);
}

/* ---- Parameter options ---------------------------------------------------------------- */

static void test_param_options_names(void)
{
    nn_net *net = nn_net_new(nn_shape1(4));
    nn_param_options frozen = {0, 0, 0, 1};
    int i, count = 0;
    nn_add(net, nn_named(nn_linear(3), "a"));
    nn_add(net, nn_named(nn_linear(3), "ab"));
    nn_add(net, nn_named(nn_batchnorm(), "a.n"));
    CHECK(nn_set_param_options(net, "a", frozen) == NN_ERR_STATE, "accepted before nn_build");
    CHECK(nn_build(net, 2, 1) == NN_OK, "%s", nn_error());
    CHECK(nn_set_param_options(net, "a", frozen) == NN_OK, "%s", nn_error());
    CHECK(param(net, "a.weight")->options.frozen && param(net, "a.bias")->options.frozen &&
          param(net, "a.n.weight")->options.frozen && !param(net, "ab.weight")->options.frozen &&
          !param(net, "a.n.running_mean")->options.frozen, "'a' matched the wrong parameters");
    CHECK(nn_set_param_options(net, "a.b", frozen) == NN_ERR_ARG, "a prefix inside a name matched");
    CHECK(nn_set_param_options(net, "a.n.running_mean", frozen) == NN_ERR_ARG, "a buffer matched");
    CHECK(nn_set_param_options(net, "", (nn_param_options){2.0f, 0, 0, 0}) == NN_OK, "%s", nn_error());
    for (i = 0; i < nn_num_param_tensors(net); i++)
        count += nn_get_param(net, i)->options.lr_scale == 2.0f && !nn_get_param(net, i)->options.frozen;
    CHECK(count == 6, "'' set %d parameters, expected the 6 learnable ones", count);
    CHECK(nn_set_param_options(net, "a", (nn_param_options){-1.0f, 0, 0, 0}) == NN_ERR_ARG &&
          nn_set_param_options(net, "a", (nn_param_options){0, INFINITY, 0, 0}) == NN_ERR_ARG &&
          nn_set_param_options(net, "a", (nn_param_options){0, 0, 2, 0}) == NN_ERR_ARG &&
          nn_set_param_options(net, NULL, frozen) == NN_ERR_ARG, "bad options accepted");
    CHECK(nn_build(net, 2, 1) == NN_OK && param(net, "a.weight")->options.lr_scale == 0.0f,
          "nn_build kept the options");
    nn_net_free(net);
}

/* One SGD step with Nesterov momentum and weight decay on two nets that start equal. */
static void step_pair(nn_net *a, nn_optim *oa, nn_net *b, nn_optim *ob)
{
    float x[8 * 4];
    int y[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    fill(x, sizeof x / sizeof *x, -1, 1, 7);
    CHECK(isfinite(nn_train_step(a, oa, x, y, 8)) && isfinite(nn_train_step(b, ob, x, y, 8)), "%s", nn_error());
}

static void test_lr_and_wd_scales(void)
{
    nn_net *a = mlp(8, 5), *b = mlp(8, 5);
    nn_optim *oa = nn_sgd(a, (nn_sgd_desc){.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = 1});
    nn_optim *ob = nn_sgd(b, (nn_sgd_desc){.lr = 0.2f, .momentum = 0.9f, .weight_decay = 0.005f, .nesterov = 1});
    int k;
    /* a: lr 0.1 x 2, weight decay 0.01 x 0.5 = b's 0.2 and 0.005 (both exact in float) */
    CHECK(nn_set_param_options(a, "", (nn_param_options){2.0f, 0.5f, 0, 0}) == NN_OK, "%s", nn_error());
    for (k = 0; k < 3; k++) step_pair(a, oa, b, ob);
    CHECK(same_floats(param(a, "0.weight")->value, param(b, "0.weight")->value, 20) &&
          same_floats(param(a, "2.bias")->value, param(b, "2.bias")->value, 3), "scaled a differs from b");
    /* no_decay on one tensor: the same as weight decay 0 for it */
    nn_optim_free(oa); nn_optim_free(ob); nn_net_free(a); nn_net_free(b);
    a = mlp(8, 5); b = mlp(8, 5);
    oa = nn_sgd(a, (nn_sgd_desc){.lr = 0.1f, .weight_decay = 0.5f});
    ob = nn_sgd(b, (nn_sgd_desc){.lr = 0.1f});
    CHECK(nn_set_param_options(a, "2.bias", (nn_param_options){0, 0, 1, 0}) == NN_OK, "%s", nn_error());
    step_pair(a, oa, b, ob);
    CHECK(same_floats(param(a, "2.bias")->value, param(b, "2.bias")->value, 3), "no_decay still decays");
    CHECK(!same_floats(param(a, "2.weight")->value, param(b, "2.weight")->value, 15), "2.weight did not decay");
    nn_optim_free(oa); nn_optim_free(ob); nn_net_free(a); nn_net_free(b);
}

static void test_frozen_parameters(void)
{
    nn_net *a = mlp(8, 9), *b = mlp(8, 9);
    nn_optim *oa = nn_sgd(a, (nn_sgd_desc){.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.1f});
    nn_optim *ob = nn_sgd(b, (nn_sgd_desc){.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.1f});
    float w0[20];
    int i, k, untouched = 1;
    memcpy(w0, param(a, "0.weight")->value, sizeof w0);
    CHECK(nn_set_param_options(a, "0", (nn_param_options){0, 0, 0, 1}) == NN_OK, "%s", nn_error());
    for (i = 0; i < 20; i++) param(a, "0.weight")->grad[i] = 7.0f;
    step_pair(a, oa, b, ob);
    for (i = 0; i < 20; i++) untouched &= param(a, "0.weight")->grad[i] == 7.0f && oa->m[0][i] == 0.0f;
    CHECK(same_floats(param(a, "0.weight")->value, w0, 20), "a frozen weight moved");
    CHECK(untouched, "a frozen weight's gradient or momentum was written");
    CHECK(oa->steps[0] == 0 && oa->steps[1] == 0 && oa->steps[2] == 1 && oa->step == 1,
          "per-parameter steps %ld %ld %ld", oa->steps[0], oa->steps[1], oa->steps[2]);
    /* the first step of layer 2 depends only on its own gradient: the same as unfrozen */
    CHECK(same_floats(param(a, "2.weight")->value, param(b, "2.weight")->value, 15), "layer 2 differs");
    /* unfrozen, layer 0's first update is a first step (b = g), not momentum of a zero buffer */
    CHECK(nn_set_param_options(a, "0", (nn_param_options){0}) == NN_OK, "%s", nn_error());
    for (k = 0; k < 2; k++) step_pair(a, oa, b, ob);
    CHECK(oa->steps[0] == 2 && oa->steps[2] == 3, "steps %ld %ld", oa->steps[0], oa->steps[2]);
    nn_optim_free(oa); nn_optim_free(ob); nn_net_free(a); nn_net_free(b);
}

/* Nothing below the lowest layer with something to train needs an input gradient. */
static void test_frozen_layers_below_are_skipped(void)
{
    nn_net *net = mlp(8, 3);
    float x[8 * 4], dy[8 * 3], w_grad[15], *dx2;
    int i, untouched = 1;
    fill(x, 32, -1, 1, 1);
    fill(dy, 24, -1, 1, 2);
    nn_forward(net, x, 8);
    nn_backward(net, dy);
    memcpy(w_grad, param(net, "2.weight")->grad, sizeof w_grad);
    dx2 = (float *)nn_layer_input_grad(net, 2);   /* the second Linear's input gradient */
    CHECK(dx2 != NULL, "%s", nn_error());
    if (!dx2) return;
    CHECK(nn_set_param_options(net, "0", (nn_param_options){.frozen = 1}) == NN_OK, "%s", nn_error());
    for (i = 0; i < 40; i++) dx2[i] = 7.0f;
    nn_forward(net, x, 8);
    nn_backward(net, dy);
    for (i = 0; i < 40; i++) untouched &= dx2[i] == 7.0f;
    CHECK(untouched, "the input gradient of the lowest trained layer was computed");
    CHECK(same_floats(param(net, "2.weight")->grad, w_grad, 15), "layer 2's gradient changed");
    nn_net_free(net);
}

/* The whitening layer's case: a Conv2d whose weight is frozen and bias trained. */
static void test_frozen_conv_weight(void)
{
    nn_net *a = nn_net_new(nn_shape3(3, 6, 6)), *b = nn_net_new(nn_shape3(3, 6, 6));
    float x[4 * 108], dy[4 * 4 * 25];
    int i, untouched = 1;
    for (i = 0; i < 2; i++) {
        nn_net *net = i ? b : a;
        nn_add(net, nn_conv2d(4, 2, 1, 0));
        nn_add(net, nn_gelu(0));
        if (nn_build(net, 4, 3) != NN_OK) { CHECK(0, "%s", nn_error()); return; }
    }
    fill(x, sizeof x / sizeof *x, -1, 1, 4);
    fill(dy, sizeof dy / sizeof *dy, -1, 1, 5);
    CHECK(nn_set_param_options(a, "0.weight", (nn_param_options){0, 0, 0, 1}) == NN_OK, "%s", nn_error());
    for (i = 0; i < 48; i++) param(a, "0.weight")->grad[i] = 7.0f;
    nn_forward(a, x, 4); nn_backward(a, dy);
    nn_forward(b, x, 4); nn_backward(b, dy);
    for (i = 0; i < 48; i++) untouched &= param(a, "0.weight")->grad[i] == 7.0f;
    CHECK(untouched, "the frozen weight's gradient was computed");
    CHECK(same_floats(param(a, "0.bias")->grad, param(b, "0.bias")->grad, 4), "the bias gradient differs");
    nn_net_free(a); nn_net_free(b);
}

static void test_checkpoint_keeps_options(void)
{
    char path[] = "/tmp/nn_test_recipe_XXXXXX";
    int fd = mkstemp(path);
    nn_net *a = mlp(8, 11), *b = mlp(8, 12), *c = mlp(8, 11);
    nn_optim *oa = nn_adam(a, (nn_adam_desc){.lr = 0.01f, .weight_decay = 0.01f});
    nn_optim *ob = nn_adam(b, (nn_adam_desc){.lr = 0.01f, .weight_decay = 0.01f});
    nn_optim *oc = nn_adam(c, (nn_adam_desc){.lr = 0.01f, .weight_decay = 0.01f});
    unsigned char *plain;
    size_t size;
    CHECK(nn__save(c, oc, &plain, &size) == NN_OK && !strstr((const char *)plain + 8, "param_options") &&
          !strstr((const char *)plain + 8, "optimizer_steps"), "a default checkpoint holds the new keys");
    nn_free_buffer(plain);
    CHECK(fd >= 0, "mkstemp failed");
    if (fd >= 0) close(fd);
    nn_set_label_smoothing(a, 0.2f);
    nn_set_param_options(a, "0.weight", (nn_param_options){0, 0, 0, 1});
    nn_set_param_options(a, "2.bias", (nn_param_options){64.0f, 1.0f / 64.0f, 0, 0});
    step_pair(a, oa, c, oc);
    nn_set_param_options(a, "0.weight", (nn_param_options){0});
    nn_set_param_options(a, "2.weight", (nn_param_options){0, 0, 1, 0});
    CHECK(nn_save_checkpoint(a, oa, path) == NN_OK, "%s", nn_error());
    CHECK(nn_load_checkpoint(b, ob, path) == NN_OK, "%s", nn_error());
    CHECK(b->label_smoothing == 0.2f && ob->steps[0] == 0 && ob->steps[1] == 1 &&
          param(b, "2.bias")->options.lr_scale == 64.0f && param(b, "2.bias")->options.wd_scale == 1.0f / 64.0f &&
          param(b, "2.weight")->options.no_decay == 1 && !param(b, "0.weight")->options.frozen,
          "the checkpoint lost options, steps or smoothing");
    step_pair(a, oa, b, ob);
    CHECK(same_floats(param(a, "0.weight")->value, param(b, "0.weight")->value, 20) &&
          same_floats(param(a, "2.bias")->value, param(b, "2.bias")->value, 3), "resumed training differs");
    {   /* damaged keys: refused, and the pair is left as it was */
        static const char *const keys[3] = {"\"param_options\":\"", "\"optimizer_steps\":\"", "\"label_smoothing\":\""};
        static const char bad[3] = {'-', 'x', '7'};
        unsigned char *img;
        size_t n;
        int k;
        nn_set_param_options(a, "0.bias", (nn_param_options){0.5f, 0, 0, 0});
        CHECK(nn__save(a, oa, &img, &n) == NN_OK, "%s", nn_error());
        for (k = 0; k < 3; k++) {
            char *at = strstr((char *)img + 8, keys[k]), saved;
            CHECK(at != NULL, "no %s in the checkpoint", keys[k]);
            if (!at) continue;
            at += strlen(keys[k]);
            saved = *at;
            *at = bad[k];
            CHECK(nn_load_checkpoint_memory(b, ob, img, n) == NN_ERR_FORMAT && strstr(nn_error(), "checkpoint"),
                  "damaged %s: %s", keys[k], nn_error());
            CHECK(param(b, "0.bias")->options.lr_scale == 0.0f && ob->steps[0] == 1 && b->label_smoothing == 0.2f,
                  "a refused checkpoint changed the options");
            *at = saved;
        }
        CHECK(nn_load_checkpoint_memory(b, ob, img, n) == NN_OK && param(b, "0.bias")->options.lr_scale == 0.5f,
              "%s", nn_error());
        nn_free_buffer(img);
    }
    CHECK(nn_load_checkpoint_memory(b, ob, NULL, 0) == NN_ERR_ARG, "NULL data accepted");
    nn_optim_free(oa); nn_optim_free(ob); nn_optim_free(oc);
    nn_net_free(a); nn_net_free(b); nn_net_free(c);
    remove(path);
}

/* ---- The triangular schedule ------------------------------------------------------------ */

static void test_lr_triangular(void)
{
    /* total 100, warm-up floor(23) steps from 0.2 to 1, then down to 0.07 */
    CHECK_NEAR(nn_lr_triangular(2.0f, 0, 100, 0.23f, 0.2f, 0.07f), 0.4, 1e-7);
    CHECK_NEAR(nn_lr_triangular(2.0f, 10, 100, 0.23f, 0.2f, 0.07f), 2.0 * (0.2 * 13.0 / 23 + 10.0 / 23), 1e-7);
    CHECK_NEAR(nn_lr_triangular(2.0f, 23, 100, 0.23f, 0.2f, 0.07f), 2.0, 1e-7);
    CHECK_NEAR(nn_lr_triangular(2.0f, 50, 100, 0.23f, 0.2f, 0.07f), 2.0 * (50.0 / 77 + 0.07 * 27 / 77), 1e-7);
    CHECK_NEAR(nn_lr_triangular(2.0f, 100, 100, 0.23f, 0.2f, 0.07f), 0.14, 1e-7);
    CHECK_NEAR(nn_lr_triangular(2.0f, 500, 100, 0.23f, 0.2f, 0.07f), 0.14, 1e-7);
    CHECK(nn_lr_triangular(2.0f, -5, 100, 0.23f, 0.2f, 0.07f) == nn_lr_triangular(2.0f, 0, 100, 0.23f, 0.2f, 0.07f),
          "a negative step is not step 0");
    CHECK(nn_lr_triangular(2.0f, 5, 0, 0.23f, 0.2f, 0.07f) == 2.0f && nn_lr_triangular(2.0f, 5, 10, 1.5f, 0, 0) == 2.0f,
          "a bad schedule is not switched off");
    CHECK_NEAR(nn_lr_triangular(2.0f, 0, 10, 0.0f, 0.2f, 0.5f), 2.0, 1e-7);
}

/* ---- Weight averaging ------------------------------------------------------------------- */

static void test_ema(void)
{
    nn_net *net = nn_net_new(nn_shape1(4));
    nn_ema *e;
    float start[4], moved[4];
    nn_param *rm;
    int i, at = 28;   /* 1.running_mean after 0.weight 16, 0.bias, 1.weight, 1.bias 4 each */
    nn_add(net, nn_linear(4));
    nn_add(net, nn_batchnorm());
    nn_build(net, 2, 1);
    rm = param(net, "1.running_mean");
    CHECK(nn_ema_new(NULL) == NULL, "NULL net accepted");
    e = nn_ema_new(net);
    CHECK(e != NULL, "%s", nn_error());
    if (!e) return;
    fill(rm->value, 4, -1, 1, 3);   /* a buffer: averaged too (e was made before) */
    memcpy(moved, rm->value, sizeof moved);
    memset(start, 0, sizeof start);   /* running_mean starts at 0 */
    CHECK(nn_ema_update(e, 0.3f) == NN_OK, "%s", nn_error());
    for (i = 0; i < 4; i++) {   /* w = 0.7 >= 0.5: net - (net - avg)(1 - w), fused */
        float w = (float)(1.0 - (double)0.3f);
        CHECK(e->avg[at + i] == nn__fmaf(start[i] - moved[i], 1.0f - w, moved[i]), "avg[%d] = %g", i, e->avg[at + i]);
        start[i] = e->avg[at + i];
    }
    CHECK(nn_ema_update(e, 0.8f) == NN_OK, "%s", nn_error());
    for (i = 0; i < 4; i++) {   /* w = 0.2 < 0.5: avg + w (net - avg), fused */
        float w = (float)(1.0 - (double)0.8f);
        CHECK(e->avg[at + i] == nn__fmaf(w, moved[i] - start[i], start[i]), "avg[%d] = %g", i, e->avg[at + i]);
        start[i] = e->avg[at + i];
    }
    CHECK(nn_ema_swap(e) == NN_OK && same_floats(rm->value, start, 4) && same_floats(e->avg + at, moved, 4),
          "swap did not exchange");
    CHECK(nn_ema_swap(e) == NN_OK && same_floats(rm->value, moved, 4), "two swaps are not the identity");
    CHECK(nn_ema_apply(e) == NN_OK && same_floats(rm->value, start, 4), "apply did not copy the average in");
    CHECK(nn_ema_update(e, 1.0f) == NN_OK && same_floats(e->avg + at, start, 4), "decay 1 moved the average");
    CHECK(nn_ema_update(e, 1.5f) == NN_ERR_ARG && nn_ema_update(NULL, 0.5f) == NN_ERR_ARG &&
          nn_ema_apply(NULL) == NN_ERR_ARG && nn_ema_swap(NULL) == NN_ERR_ARG, "bad calls accepted");
    nn_build(net, 2, 1);
    CHECK(nn_ema_apply(e) == NN_ERR_STATE, "a stale average was applied");
    nn_ema_free(e);
    nn_ema_free(NULL);
    nn_net_free(net);
}

/* ---- Batcher: alternating flip, reflection padding --------------------------------------- */

static void make_set(nn_dataset *d, float *x, int *y, int n, int c, int h, int w)
{
    int i;
    memset(d, 0, sizeof *d);
    for (i = 0; i < n * c * h * w; i++) x[i] = (float)(1 + i);
    for (i = 0; i < n; i++) y[i] = i;
    d->n = n; d->shape = nn_shape3(c, h, w); d->num_classes = n; d->x = x; d->y = y;
}

static void test_alternating_flip(void)
{
    enum { N = 64, S = 6 };
    float x[N * S], out[8 * S];
    int y[N], by[8], first[N], e, b, i, j, flipped_first = 0;
    nn_dataset d;
    make_set(&d, x, y, N, 1, 2, 3);
    CHECK(nn_batch_start(&d, 5) == NN_OK && nn_set_augment(&d, (nn_augment){2, 0, 0}) == NN_OK, "%s", nn_error());
    for (e = 0; e < 4; e++)
        for (b = 0; b < N / 8; b++) {
            nn_next_batch(&d, 8, out, by);
            for (i = 0; i < 8; i++) {
                const float *src = x + by[i] * S;
                int same = 1, mirror = 1;
                for (j = 0; j < S; j++) {
                    same &= out[i * S + j] == src[j];
                    mirror &= out[i * S + j] == src[(j / 3) * 3 + 2 - j % 3];
                }
                CHECK(same != mirror, "sample %d is neither itself nor its mirror", by[i]);
                if (e == 0) { first[by[i]] = mirror; flipped_first += mirror; }
                else CHECK(mirror == (first[by[i]] ^ (e & 1)), "sample %d in epoch %d does not alternate", by[i], e);
            }
        }
    CHECK(flipped_first > 16 && flipped_first < 48, "%d of %d flipped in epoch 0", flipped_first, N);
    CHECK(nn_set_augment(&d, (nn_augment){3, 0, 0}) == NN_ERR_ARG, "flip 3 accepted");
    nn_dataset_free(&d);
}

static void test_alternating_flip_keeps_crops(void)
{
    float x[6 * 12], a[6 * 12], b[6 * 12];
    int y[6], by[6], i, j;
    nn_dataset d0, d2;
    make_set(&d0, x, y, 6, 1, 3, 4);
    make_set(&d2, x, y, 6, 1, 3, 4);
    nn_batch_start(&d0, 9); nn_batch_start(&d2, 9);
    nn_set_augment(&d0, (nn_augment){0, 1, 1});
    nn_set_augment(&d2, (nn_augment){2, 1, 1});
    nn_next_batch(&d0, 6, a, by);
    nn_next_batch(&d2, 6, b, by);
    for (i = 0; i < 6; i++) {
        int same = 1, mirror = 1;
        for (j = 0; j < 12; j++) {
            same &= a[i * 12 + j] == b[i * 12 + j];
            mirror &= a[i * 12 + j] == b[i * 12 + (j / 4) * 4 + 3 - j % 4];
        }
        CHECK(same || mirror, "sample %d: flip 2 changed the crop", i);
    }
    nn_dataset_free(&d0); nn_dataset_free(&d2);
}

static void test_reflection_padding(void)
{
    /* one 1 x 3 x 4 image 1..12; padded by 2 with reflection the 7 x 8 picture is
       rows 2 1 0 1 2 1 0 of columns 2 1 0 1 2 3 2 1; the offset (0, 1) window
       starts at padded row 0, column 1 */
    static const float src[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static const float want[12] = {10, 9, 10, 11, 6, 5, 6, 7, 2, 1, 2, 3};
    static const float want_flip[12] = {11, 10, 9, 10, 7, 6, 5, 6, 3, 2, 1, 2};
    float out[12], x[12], o2[12];
    int y[1], i, k;
    nn_dataset d;
    nn__augment_copy(out, src, nn_shape3(1, 3, 4), 2, 0, 1, 0, 1);
    CHECK(same_floats(out, want, 12), "reflection: got %g %g %g %g", out[0], out[1], out[2], out[3]);
    nn__augment_copy(out, src, nn_shape3(1, 3, 4), 2, 0, 1, 1, 1);
    CHECK(same_floats(out, want_flip, 12), "reflection then flip: got %g %g %g %g", out[0], out[1], out[2], out[3]);
    nn__augment_copy(out, src, nn_shape3(1, 3, 4), 2, 0, 1, 0, 0);
    CHECK(out[0] == 0.0f && out[9] == 1.0f, "zero padding changed");
    /* through the batcher: every output pixel is a source pixel, the centre draws exact */
    make_set(&d, x, y, 1, 1, 3, 4);
    nn_batch_start(&d, 1);
    CHECK(nn_set_augment(&d, (nn_augment){0, 2, 1}) == NN_OK, "%s", nn_error());
    for (k = 0; k < 40; k++) {
        nn_rng r = d.aug_rng;
        int oy = (int)nn_rng_below(&r, 5), ox = (int)nn_rng_below(&r, 5);
        nn_next_batch(&d, 1, o2, y);
        nn__augment_copy(out, x, d.shape, 2, oy, ox, 0, 1);
        CHECK(same_floats(o2, out, 12), "draw %d: the batch is not the documented copy", k);
        for (i = 0; i < 12; i++) CHECK(o2[i] >= 1.0f && o2[i] <= 12.0f, "pixel %g is padding", o2[i]);
    }
    CHECK(nn_set_augment(&d, (nn_augment){0, 0, 1}) == NN_ERR_ARG &&
          nn_set_augment(&d, (nn_augment){0, 1, 2}) == NN_ERR_ARG, "bad reflect accepted");
    nn_dataset_free(&d);
}

/* ---- Test-time augmentation -------------------------------------------------------------- */

/* view of image x (c x h x w): moved by (dy, dx) with reflection, then mirrored if flip */
static void view(float *out, const float *x, int c, int h, int w, int flip, int dy, int dx)
{
    int k, i, j;
    for (k = 0; k < c; k++)
        for (i = 0; i < h; i++)
            for (j = 0; j < w; j++) {
                int si = i - dy, sj = (flip ? w - 1 - j : j) - dx;   /* moved, then mirrored */
                si = si < 0 ? -si : si >= h ? 2 * (h - 1) - si : si;
                sj = sj < 0 ? -sj : sj >= w ? 2 * (w - 1) - sj : sj;
                out[(k * h + i) * w + j] = x[(k * h + si) * w + sj];
            }
}

static void test_tta_against_direct_views(void)
{
    enum { N = 5, C = 3, H = 6, W = 7, K = 4 };
    nn_net *net = nn_net_new(nn_shape3(C, H, W));
    float x[N * C * H * W], v[N * C * H * W], got[3][N * K];
    double want[N * K];
    static const int views[6][3] = {{0, 0, 0}, {1, 0, 0}, {0, 1, 1}, {1, 1, 1}, {0, -1, -1}, {1, -1, -1}};
    static const double weight[6] = {0.25, 0.25, 0.125, 0.125, 0.125, 0.125};
    int lv, i, k;
    nn_dataset d;
    int labels[N] = {0, 1, 2, 3, 0};
    float acc0, acc_plain, loss0, loss_plain, acc2;
    nn_add(net, nn_conv2d(4, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_gelu(0));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(K));
    nn_build(net, N, 3);
    fill(x, sizeof x / sizeof *x, -1, 1, 8);
    fill(param(net, "1.running_mean")->value, 4, -0.5f, 0.5f, 9);
    for (lv = 0; lv < 3; lv++)
        CHECK(nn_forward_tta(net, x, N, lv, got[lv]) == NN_OK, "%s", nn_error());
    CHECK(net->training == 1, "training mode not restored");
    nn_set_training(net, 0);
    memset(want, 0, sizeof want);
    for (k = 0; k < 6; k++) {
        const float *o;
        for (i = 0; i < N; i++)
            view(v + i * C * H * W, x + i * C * H * W, C, H, W, views[k][0], views[k][1], views[k][2]);
        o = nn_forward(net, v, N);
        for (i = 0; i < N * K; i++) want[i] += weight[k] * o[i];
        if (k == 0) for (i = 0; i < N * K; i++) CHECK(got[0][i] == o[i], "level 0 is not f(x)");
        if (k == 1) for (i = 0; i < N * K; i++) CHECK_NEAR(got[1][i], 0.5 * want[i] / 0.25, 1e-6);
    }
    for (i = 0; i < N * K; i++) CHECK_NEAR(got[2][i], want[i], 1e-6);
    memset(&d, 0, sizeof d);
    d.n = N; d.shape = nn_shape3(C, H, W); d.num_classes = K; d.x = x; d.y = labels;
    CHECK(nn_evaluate_tta(net, &d, 0, &loss0, &acc0, NULL) == NN_OK &&
          nn_evaluate(net, &d, &loss_plain, &acc_plain, NULL) == NN_OK && loss0 == loss_plain && acc0 == acc_plain,
          "level 0 is not nn_evaluate");
    CHECK(nn_evaluate_tta(net, &d, 2, NULL, &acc2, NULL) == NN_OK, "%s", nn_error());
    for (i = 0, k = 0; i < N; i++) k += nn_argmax(got[2] + i * K, K) == labels[i];
    CHECK(acc2 == (float)k / N, "accuracy %g, the TTA logits give %g", acc2, (float)k / N);
    CHECK(nn_forward_tta(net, x, N, 3, got[0]) == NN_ERR_ARG && nn_evaluate_tta(net, &d, -1, NULL, NULL, NULL) == NN_ERR_ARG &&
          nn_forward_tta(net, x, N + 1, 1, got[0]) == NN_ERR_ARG && nn_forward_tta(NULL, x, 1, 1, got[0]) == NN_ERR_ARG,
          "bad TTA calls accepted");
    nn_net_free(net);
}

int main(void)
{
    RUN(test_smoothing_formula_and_gradient);
    RUN(test_train_step_smooths);
    RUN(test_param_options_names);
    RUN(test_lr_and_wd_scales);
    RUN(test_frozen_parameters);
    RUN(test_frozen_layers_below_are_skipped);
    RUN(test_frozen_conv_weight);
    RUN(test_checkpoint_keeps_options);
    RUN(test_lr_triangular);
    RUN(test_ema);
    RUN(test_alternating_flip);
    RUN(test_alternating_flip_keeps_crops);
    RUN(test_reflection_padding);
    RUN(test_tta_against_direct_views);
    return test_end("test_recipe");
}
