/* The airbench94 recipe's training features against PyTorch, driven by
   tests/recipe_torch.sh (needs Debian's python3-torch).
     recipe_torch DIR   writes into DIR, for tests/recipe_torch.py to recompute:
       sgd, adam, adamw   four training steps of a small conv net (Conv2d, BatchNorm, GELU,
                          MaxPool2d, Linear, Scale) with label smoothing 0.2, a triangular
                          learning rate and parameter options that change between steps
                          (frozen, unfrozen, lr and weight-decay multipliers, no_decay):
                          <case>.init.safetensors, .final.safetensors, .x.f32, .y.i32 and
                          <case>.json (per step: the rate, the options, nn_train_step's loss)
       smooth             nn_softmax_cross_entropy_smooth's loss and gradient for three eps
                          on logits with a -inf and large values
       augment            the batcher's copy (nn__augment_copy) of one image for every
                          offset, flip and padding (zeros, reflection), P = 1 and 2
       tta                nn_forward_tta at levels 0, 1, 2 of a small net in evaluation
       ema                three nn_ema_update calls on changing values, then nn_ema_apply
       schedule           nn_lr_triangular at every step of airbench94's 476-step run */
#define NN_IMPLEMENTATION
#include "nn.h"
#include <stdlib.h>

static const char *dir;

static FILE *open_out(const char *name, const char *mode)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, mode))) { perror(path); exit(1); }
    return f;
}

static void put(const char *name, const void *v, size_t bytes)
{
    FILE *f = open_out(name, "wb");
    if (fwrite(v, 1, bytes, f) != bytes || fclose(f)) { perror(name); exit(1); }
}

static void fill(float *v, size_t n, float lo, float hi, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) v[i] = lo + (hi - lo) * nn_rng_uniform(&r);
}

static void ok(nn_status st, const char *what)
{
    if (st != NN_OK) { fprintf(stderr, "%s: %s\n", what, nn_error()); exit(1); }
}

static void save(nn_net *net, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ok(nn_save(net, path), path);
}

/* 3x6x6 -> Conv2d(4, 3x3, pad 1) -> GELU -> BatchNorm(momentum 0.6, eps 1e-3) ->
   MaxPool2d(2) -> Flatten -> Linear(5) -> Scale(0.5). The GELU gives the conv's bias a
   gradient (before a BatchNorm it would be rounding noise, which Adam magnifies). */
static nn_net *small_net(int batch)
{
    nn_net *net = nn_net_new(nn_shape3(3, 6, 6));
    nn_layer_desc bn = nn_batchnorm();
    bn.momentum = 0.6f;
    bn.eps = 1e-3f;
    nn_add(net, nn_conv2d(4, 3, 1, 1));
    nn_add(net, nn_gelu(0));
    nn_add(net, bn);
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(5));
    nn_add(net, nn_scale(0.5f));
    ok(nn_build(net, batch, 21), "build");
    return net;
}

/* The options of step k (the same for every case). */
static void step_options(nn_net *net, int k)
{
    nn_param_options none = {0}, frozen = {0, 0, 0, 1};
    ok(nn_set_param_options(net, "", none), "options");
    if (k < 2) ok(nn_set_param_options(net, "0.weight", frozen), "options");
    else ok(nn_set_param_options(net, "0.bias", frozen), "options");
    ok(nn_set_param_options(net, "2.weight", frozen), "options");
    ok(nn_set_param_options(net, "2.bias", (nn_param_options){8.0f, 0.125f, 0, 0}), "options");
    ok(nn_set_param_options(net, "5.bias", (nn_param_options){0, 0, 1, 0}), "options");
    if (k == 3) ok(nn_set_param_options(net, "5.weight", (nn_param_options){0.5f, 3.0f, 0, 0}), "options");
}

static void train_case(const char *name, int kind)
{
    enum { N = 8, STEPS = 4, IN = 3 * 36 };
    nn_net *net = small_net(N);
    nn_optim *opt;
    float x[STEPS * N * IN], base = kind == 0 ? 0.05f : 0.01f, wd = kind == 0 ? 5e-3f : 0.02f;
    int y[STEPS * N], k, i;
    char file[256];
    FILE *js;
    nn_rng r = nn_rng_new(5);
    if (kind == 0) opt = nn_sgd(net, (nn_sgd_desc){.lr = base, .momentum = 0.85f, .weight_decay = wd, .nesterov = 1});
    else if (kind == 1) opt = nn_adam(net, (nn_adam_desc){.lr = base, .weight_decay = wd});
    else opt = nn_adamw(net, (nn_adam_desc){.lr = base, .weight_decay = wd});
    if (!opt) ok(NN_ERR_ARG, "optimiser");
    fill(x, sizeof x / sizeof *x, -2, 2, 6);
    for (i = 0; i < STEPS * N; i++) y[i] = (int)nn_rng_below(&r, 5);
    ok(nn_set_label_smoothing(net, 0.2f), "smoothing");
    snprintf(file, sizeof file, "%s.init.safetensors", name); save(net, file);
    snprintf(file, sizeof file, "%s.x.f32", name); put(file, x, sizeof x);
    snprintf(file, sizeof file, "%s.y.i32", name); put(file, y, sizeof y);
    snprintf(file, sizeof file, "%s.json", name);
    js = open_out(file, "w");
    fprintf(js, "{\"optimizer\": \"%s\", \"momentum\": 0.85, \"weight_decay\": %.9g, \"smoothing\": 0.2, "
            "\"n\": %d, \"steps\": [", kind == 0 ? "sgd" : kind == 1 ? "adam" : "adamw", wd, N);
    for (k = 0; k < STEPS; k++) {
        float lr = nn_lr_triangular(base, nn_optim_steps(opt), STEPS, 0.23f, 0.2f, 0.07f), loss;
        step_options(net, k);
        ok(nn_optim_set_lr(opt, lr), "lr");
        loss = nn_train_step(net, opt, x + (size_t)k * N * IN, y + k * N, N);
        if (!isfinite(loss)) ok(NN_ERR_NUMERIC, "nn_train_step");
        fprintf(js, "%s{\"lr\": %.9g, \"loss\": %.9g, \"options\": {", k ? ", " : "", lr, loss);
        for (i = 0; i < nn_num_param_tensors(net); i++) {
            nn_param *p = nn_get_param(net, i);
            if (!p->learnable) continue;
            fprintf(js, "%s\"%s\": [%.9g, %.9g, %d, %d]", i ? ", " : "", p->name, p->options.lr_scale,
                    p->options.wd_scale, p->options.no_decay, p->options.frozen);
        }
        fprintf(js, "}}");
    }
    fprintf(js, "]}\n");
    fclose(js);
    snprintf(file, sizeof file, "%s.final.safetensors", name); save(net, file);
    nn_optim_free(opt);
    nn_net_free(net);
}

static void smooth_case(void)
{
    enum { N = 6, K = 5 };
    static const float eps[3] = {0.2f, 0.0f, 1.0f};
    float z[N * K], out[3][1 + N * K];
    int y[N] = {0, 4, 2, 2, 1, 3}, e;
    fill(z, N * K, -4, 4, 3);
    z[2 * K + 3] = -INFINITY;          /* a -inf logit that is not the label */
    z[4 * K + 0] = 1e4f;               /* a large one */
    z[4 * K + 1] = 1e4f - 3.0f;
    for (e = 0; e < 3; e++) out[e][0] = nn_softmax_cross_entropy_smooth(z, y, N, K, eps[e], out[e] + 1);
    put("smooth.z.f32", z, sizeof z);
    put("smooth.y.i32", y, sizeof y);
    put("smooth.out.f32", out, sizeof out);
}

static void augment_case(void)
{
    enum { C = 2, H = 5, W = 6 };
    float src[C * H * W], *out, *at;
    int pad, reflect, flip, oy, ox, count = 0;
    fill(src, C * H * W, -1, 1, 4);
    out = (float *)malloc(2 * 2 * 2 * 25 * sizeof src);
    at = out;
    for (pad = 1; pad <= 2; pad++)
        for (reflect = 0; reflect < 2; reflect++)
            for (flip = 0; flip < 2; flip++)
                for (oy = 0; oy <= 2 * pad; oy++)
                    for (ox = 0; ox <= 2 * pad; ox++, at += C * H * W, count++)
                        nn__augment_copy(at, src, nn_shape3(C, H, W), pad, oy, ox, flip, reflect);
    put("augment.src.f32", src, sizeof src);
    put("augment.out.f32", out, (size_t)count * sizeof src);
    free(out);
}

static void tta_case(void)
{
    enum { N = 6, IN = 3 * 64 };
    nn_net *net = nn_net_new(nn_shape3(3, 8, 8));
    float x[N * IN], out[3][N * 10];
    int i, lv;
    nn_layer_desc fc = nn_linear(10);
    fc.no_bias = 1;
    nn_add(net, nn_conv2d(6, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_gelu(0));
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_flatten());
    nn_add(net, fc);
    nn_add(net, nn_scale(1.0f / 9.0f));
    ok(nn_build(net, N, 7), "build");
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        int var = strstr(p->name, "running_var") != NULL;
        fill(p->value, p->size, var ? 0.5f : -1.0f, var ? 2.0f : 1.0f, 30 + (uint64_t)i);
    }
    fill(x, sizeof x / sizeof *x, -2, 2, 8);
    save(net, "tta.safetensors");
    for (lv = 0; lv < 3; lv++) ok(nn_forward_tta(net, x, N, lv, out[lv]), "nn_forward_tta");
    put("tta.x.f32", x, sizeof x);
    put("tta.out.f32", out, sizeof out);
    nn_net_free(net);
}

/* The values of every parameter and buffer, back to back (size floats). */
static size_t gather(nn_net *net, float *to)
{
    size_t at = 0;
    int i;
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        if (to) memcpy(to + at, p->value, p->size * sizeof(float));
        at += p->size;
    }
    return at;
}

static void ema_case(void)
{
    nn_net *net = small_net(2);
    size_t size = gather(net, NULL);
    float *rec = (float *)malloc(9 * size * sizeof(float)), decay[3];
    nn_ema *e;
    int k, i;
    decay[0] = 0.3f;
    decay[1] = 0.8f;
    decay[2] = (float)(pow(0.95, 5) * pow(0.4, 3));
    gather(net, rec);                                  /* the start */
    if (!(e = nn_ema_new(net))) ok(NN_ERR_NOMEM, "nn_ema_new");
    for (k = 0; k < 3; k++) {
        for (i = 0; i < nn_num_param_tensors(net); i++) {
            nn_param *p = nn_get_param(net, i);
            fill(p->value, p->size, -1, 1, 50 + (uint64_t)(10 * k + i));
        }
        gather(net, rec + (size_t)(1 + 2 * k) * size);   /* the net's values */
        ok(nn_ema_update(e, decay[k]), "nn_ema_update");
        memcpy(rec + (size_t)(2 + 2 * k) * size, e->avg, size * sizeof(float));   /* the average */
    }
    ok(nn_ema_apply(e), "nn_ema_apply");
    gather(net, rec + 7 * size);
    put("ema.decay.f32", decay, sizeof decay);
    put("ema.values.f32", rec, 8 * size * sizeof(float));
    nn_ema_free(e);
    nn_net_free(net);
    free(rec);
}

static void schedule_case(void)
{
    float lr[481];
    int s;
    for (s = 0; s < 481; s++) lr[s] = nn_lr_triangular(1.0f, s, 476, 0.23f, 0.2f, 0.07f);
    put("schedule.f32", lr, sizeof lr);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: recipe_torch DIR\n"); return 2; }
    dir = argv[1];
    train_case("sgd", 0);
    train_case("adam", 1);
    train_case("adamw", 2);
    smooth_case();
    augment_case();
    tta_case();
    ema_case();
    schedule_case();
    return 0;
}
