/* NaN and infinity against PyTorch, driven by tests/torch.sh (needs Debian's python3-torch).
     nan_torch DIR   runs every layer (forward and backward), loss and argmax of nn.h on
                     inputs holding NaN, +inf, -inf, signed zeros and ties, and writes for
                     each case DIR/<case>.safetensors (the net before the forward) and
                     DIR/<case>.<array>.f32 (inputs, outputs, gradients, buffers after),
                     listed in DIR/cases.txt; tests/nan_torch.py recomputes every one in
                     PyTorch and compares, NaN and infinity positions and signs included. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include <stdlib.h>

static const char *dir;
static FILE *list;

static int put(const char *name, const char *array, const float *v, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s.%s.f32", dir, name, array);
    if (!(f = fopen(path, "wb")) || fwrite(v, sizeof(float), n, f) != n) { perror(path); exit(1); }
    return fclose(f);
}

/* n normal values with NaN, +-inf, +-0 and a tie sprinkled in (positions vary with seed). */
static void fill_special(float *x, size_t n, uint64_t seed)
{
    static const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.5f, 1.5f, -NAN};
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) x[i] = nn_rng_normal(&r, 0.0f, 1.5f);
    for (i = seed % 5; i < n; i += 7 + seed % 3) x[i] = special[(i / 7) % 8];
}

/* A net of the given layers on x (n samples): forward, backward from dy, everything out. */
static void net_case(const char *name, nn_net *net, int n, int training, const float *x, const float *dy)
{
    char path[512];
    size_t in, out;
    int i;
    nn_set_input_grad(net, 1);
    if (nn_build(net, n, 11) != NN_OK) { fprintf(stderr, "%s: %s\n", name, nn_error()); exit(1); }
    nn_set_training(net, training);
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    if (nn_save(net, path) != NN_OK) { fprintf(stderr, "%s: %s\n", name, nn_error()); exit(1); }
    in = (size_t)n * nn_shape_size(net->input);
    out = (size_t)n * nn_shape_size(nn_output_shape(net));
    put(name, "x", x, in);
    put(name, "dy", dy, out);
    put(name, "y", nn_forward(net, x, n), out);
    nn_backward(net, dy);
    put(name, "dx", nn_input_grad(net), in);
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        char array[80];
        snprintf(array, sizeof array, "%s.%s", p->learnable ? "grad" : "buf", p->name);
        put(name, array, p->learnable ? p->grad : p->value, p->size);
    }
    if (net->layers[0].desc.kind == NN_DROPOUT && training) put(name, "mask", nn__t(net, net->plan[0].work), in);
    if (!strncmp(name, "conv_winograd", 13) && !net->plan[0].winograd) {
        fprintf(stderr, "%s: the layer does not use Winograd\n", name);
        exit(1);
    }
    fprintf(list, "net %s %d %d\n", name, n, training);
    nn_net_free(net);
}

static nn_net *one(nn_shape in, nn_layer_desc a)
{
    nn_net *net = nn_net_new(in);
    nn_add(net, a);
    return net;
}

static nn_net *two(nn_shape in, nn_layer_desc a, nn_layer_desc b)
{
    nn_net *net = one(in, a);
    nn_add(net, b);
    return net;
}

/* Element-wise layers on 150 values (two samples of 3x5x5: full vectors and a tail). */
static void elementwise_cases(void)
{
    static float x[150], dy[150], dy_special[150];
    nn_shape s = nn_shape3(3, 5, 5);
    struct { const char *name; nn_layer_desc d; } layers[12];
    int i, k = 0;
    fill_special(x, 150, 1);
    fill_special(dy_special, 150, 2);
    for (i = 0; i < 150; i++) dy[i] = 0.25f + 0.01f * (float)i;
    layers[k].name = "relu"; layers[k++].d = nn_relu();
    layers[k].name = "leaky_relu"; layers[k++].d = nn_leaky_relu(0.1f);
    layers[k].name = "leaky_relu0"; layers[k++].d = nn_leaky_relu(0.0f);
    layers[k].name = "sigmoid"; layers[k++].d = nn_sigmoid();
    layers[k].name = "tanh"; layers[k++].d = nn_tanh();
    layers[k].name = "gelu"; layers[k++].d = nn_gelu(0);
    layers[k].name = "gelu_tanh"; layers[k++].d = nn_gelu(1);
    layers[k].name = "softplus"; layers[k++].d = nn_softplus(0.0f, 0.0f);
    layers[k].name = "softplus_2_3"; layers[k++].d = nn_softplus(2.0f, 3.0f);
    layers[k].name = "scale"; layers[k++].d = nn_scale(-0.5f);
    layers[k].name = "scale0"; layers[k++].d = nn_scale(0.0f);
    layers[k].name = "dropout_eval"; layers[k++].d = nn_dropout(0.4f);
    for (i = 0; i < k; i++) {
        char name[64];
        int training = strcmp(layers[i].name, "dropout_eval") != 0;
        net_case(layers[i].name, one(s, layers[i].d), 2, training, x, dy);
        snprintf(name, sizeof name, "%s_dynan", layers[i].name);
        net_case(name, one(s, layers[i].d), 2, training, x, dy_special);
    }
    net_case("dropout_train", one(s, nn_dropout(0.4f)), 2, 1, x, dy_special);
}

/* Pooling on 2 channels of 8x8 (two samples) with windows holding several NaNs, a NaN
   and a larger number, infinities, ties, and all -inf. */
static void pooling_cases(void)
{
    static float x[2 * 2 * 64], dy[2 * 2 * 64];
    nn_shape s = nn_shape3(2, 8, 8);
    size_t i;
    fill_special(x, 256, 3);
    x[0] = 1.0f; x[1] = NAN; x[8] = NAN; x[9] = 5.0f;                 /* two NaNs, 5 larger */
    x[2] = INFINITY; x[3] = 2.0f; x[10] = INFINITY; x[11] = NAN;       /* inf tie, then NaN */
    x[4] = -INFINITY; x[5] = -INFINITY; x[12] = -INFINITY; x[13] = -INFINITY;
    x[6] = 3.0f; x[7] = 3.0f; x[14] = 3.0f; x[15] = 3.0f;              /* a four-way tie */
    x[64 + 18] = NAN; x[64 + 19] = NAN; x[64 + 26] = NAN; x[64 + 27] = NAN;
    for (i = 0; i < 256; i++) dy[i] = 1.0f + 0.125f * (float)(i % 16);
    net_case("maxpool_2_2_0", one(s, nn_maxpool2d(2, 2, 0)), 2, 1, x, dy);
    net_case("maxpool_3_2_1", one(s, nn_maxpool2d(3, 2, 1)), 2, 1, x, dy);
    net_case("maxpool_3_1_1", one(s, nn_maxpool2d(3, 1, 1)), 2, 1, x, dy);
    net_case("avgpool_2_2_0", one(s, nn_avgpool2d(2, 2, 0)), 2, 1, x, dy);
    net_case("avgpool_3_2_1", one(s, nn_avgpool2d(3, 2, 1)), 2, 1, x, dy);
    net_case("global_avgpool", one(s, nn_global_avgpool()), 2, 1, x, dy);
    fill_special(dy, 256, 4);
    net_case("maxpool_dynan", one(s, nn_maxpool2d(2, 2, 0)), 2, 1, x, dy);
    net_case("avgpool_dynan", one(s, nn_avgpool2d(3, 2, 1)), 2, 1, x, dy);
}

/* BatchNorm over 4 channels of 3x3 (three samples): a clean channel, one with a NaN, one
   with +inf, one with +inf and -inf; 1d over 6 features; training and evaluation, with
   and without the fused ReLU. */
static void batchnorm_cases(void)
{
    static float x[3 * 4 * 9], dy[3 * 4 * 9], x1[8 * 6], dy1[8 * 6];
    nn_shape s = nn_shape3(4, 3, 3);
    nn_rng r = nn_rng_new(5);
    int i, training;
    for (i = 0; i < 108; i++) { x[i] = nn_rng_normal(&r, 0.5f, 2.0f); dy[i] = nn_rng_normal(&r, 0.0f, 1.0f); }
    x[9 + 4] = NAN; x[18 + 2] = INFINITY; x[2 * 36 + 27 + 1] = -INFINITY; x[27 + 5] = INFINITY;
    for (i = 0; i < 48; i++) { x1[i] = nn_rng_normal(&r, 0.0f, 1.0f); dy1[i] = nn_rng_normal(&r, 0.0f, 1.0f); }
    x1[7] = NAN; x1[6 * 3 + 2] = -INFINITY;
    for (training = 0; training < 2; training++) {
        net_case(training ? "batchnorm_train" : "batchnorm_eval", one(s, nn_batchnorm()), 3, training, x, dy);
        net_case(training ? "batchnorm_relu_train" : "batchnorm_relu_eval",
                 two(s, nn_batchnorm(), nn_relu()), 3, training, x, dy);
        net_case(training ? "batchnorm1d_train" : "batchnorm1d_eval",
                 two(nn_shape3(6, 1, 1), nn_batchnorm(), nn_relu()), 8, training, x1, dy1);
    }
}

/* Linear and Conv2d (im2col + GEMM, and Winograd at 16 channels of 16x16) with a NaN and
   an infinity in the input. */
static void gemm_cases(void)
{
    static float x[2 * 16 * 256], dy[2 * 16 * 256];
    nn_rng r = nn_rng_new(6);
    int i;
    for (i = 0; i < 2 * 16 * 256; i++) { x[i] = nn_rng_normal(&r, 0.0f, 1.0f); dy[i] = nn_rng_normal(&r, 0.0f, 1.0f); }
    x[5] = NAN; x[40] = INFINITY;
    net_case("linear", two(nn_shape3(3, 2, 2), nn_flatten(), nn_linear(5)), 4, 1, x, dy);
    net_case("conv3x3", one(nn_shape3(3, 6, 6), nn_conv2d(4, 3, 1, 1)), 2, 1, x, dy);
    net_case("conv5x5_s2", one(nn_shape3(2, 9, 9), nn_conv2d(3, 5, 2, 2)), 2, 1, x, dy);
    for (i = 0; i < 2 * 16 * 256; i++) x[i] = nn_rng_normal(&r, 0.0f, 1.0f);
    x[300] = NAN; x[16 * 256 + 1000] = NAN;
    net_case("conv_winograd_nan", one(nn_shape3(16, 16, 16), nn_conv2d(16, 3, 1, 1)), 2, 1, x, dy);
    x[300] = INFINITY; x[16 * 256 + 1000] = -INFINITY;
    net_case("conv_winograd_inf", one(nn_shape3(16, 16, 16), nn_conv2d(16, 3, 1, 1)), 2, 1, x, dy);
}

static void loss_case(const char *kind, const char *name, const float *z, const float *t, int n, int classes)
{
    float grad[64], loss, labels[16];
    int y[16], i;
    size_t count = (size_t)n * classes;
    if (!strcmp(kind, "ce")) {
        for (i = 0; i < n; i++) { y[i] = (int)t[i]; labels[i] = t[i]; }
        loss = nn_softmax_cross_entropy(z, y, n, classes, grad);
        put(name, "t", labels, (size_t)n);
    } else {
        put(name, "t", t, count);
        loss = !strcmp(kind, "soft") ? nn_softmax_cross_entropy_soft(z, t, n, classes, grad)
             : !strcmp(kind, "mse") ? nn_mse(z, t, count, 0, grad)
             : !strcmp(kind, "mse_sum") ? nn_mse(z, t, count, 1, grad)
             : !strcmp(kind, "bce") ? nn_bce(z, t, count, grad)
             : nn_bce_with_logits(z, t, count, grad);
    }
    put(name, "z", z, count);
    put(name, "loss", &loss, 1);
    put(name, "grad", grad, count);
    fprintf(list, "loss %s %s %d %d\n", name, kind, n, classes);
}

static void loss_cases(void)
{
    const float I = INFINITY, N = NAN;
    float ce_z[][6] = {{1, N, 2, 0.5f, 1, 2}, {1, I, 2, 0.5f, 1, 2}, {1, -I, 2, 0.5f, 1, 2},
                       {-I, -I, -I, 0.5f, 1, 2}, {I, I, 1, 0.5f, 1, 2}};
    float ce_t[][2] = {{0, 1}, {0, 1}, {1, 1}, {1, 0}, {2, 2}};
    float soft_z[][6] = {{1, 2, 3, 1, 2, 3}, {1, -I, 3, 1, 2, 3}, {1, 2, 3, 1, 2, 3}, {N, 2, 3, 1, 2, 3},
                         {1, 2, -I, 1, 2, 3}};
    float soft_t[][6] = {{0.2f, N, 0.8f, 0, 0.5f, 0.5f}, {0.2f, 0, 0.8f, 0, 0.5f, 0.5f},
                         {0.2f, I, 0.8f, 0, 0.5f, 0.5f}, {0.2f, 0.3f, 0.5f, 0, 0.5f, 0.5f},
                         {0.2f, 0.3f, 0.5f, 0, 0.5f, 0.5f}};
    float mse_p[8] = {N, 1, I, I, -I, 0.5f, 2, -0.0f}, mse_t[8] = {1, N, I, 1, I, 0.5f, -I, 0};
    float bce_p[12] = {0, 0, 0, 0, 1, 1, 1, 1, 0.5f, 0.5f, 0.5f, 0.5f};
    float bce_t[12] = {0, 1, N, I, 0, 1, N, I, 0, 1, N, -I};
    float bcel_z[16] = {I, I, I, I, -I, -I, -I, -I, N, N, N, N, 2, 2, 2, 2};
    float bcel_t[16] = {0, 0.5f, 1, N, 0, 0.5f, 1, N, 0, 0.5f, 1, N, 0, 0.5f, 1, N};
    char name[64];
    int i, j;
    for (i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "ce%d", i);
        loss_case("ce", name, ce_z[i], ce_t[i], 2, 3);
        snprintf(name, sizeof name, "soft%d", i);
        loss_case("soft", name, soft_z[i], soft_t[i], 2, 3);
    }
    loss_case("mse", "mse", mse_p, mse_t, 1, 8);
    loss_case("mse_sum", "mse_sum", mse_p, mse_t, 1, 8);
    for (i = 0; i < 12; i++) {   /* one element each: the mean would mix them */
        snprintf(name, sizeof name, "bce%d", i);
        loss_case("bce", name, bce_p + i, bce_t + i, 1, 1);
    }
    for (i = 0; i < 16; i++) {
        snprintf(name, sizeof name, "bcel%d", i);
        loss_case("bcel", name, bcel_z + i, bcel_t + i, 1, 1);
    }
    {
        float rows[][4] = {{1, N, 3, N}, {N, N, 1, 2}, {1, I, I, 2}, {-I, -I, -I, -I}, {2, 3, 3, 1}, {-N, 1, 9, 2}};
        float got[6];
        for (j = 0; j < 6; j++) got[j] = (float)nn_argmax(rows[j], 4);
        put("argmax", "z", rows[0], 24);
        put("argmax", "got", got, 6);
        fprintf(list, "argmax argmax 6 4\n");
    }
}

int main(int argc, char **argv)
{
    char path[512];
    if (argc != 2) { fprintf(stderr, "usage: nan_torch DIR\n"); return 2; }
    dir = argv[1];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    if (!(list = fopen(path, "w"))) { perror(path); return 1; }
    elementwise_cases();
    pooling_cases();
    batchnorm_cases();
    gemm_cases();
    loss_cases();
    return fclose(list) != 0;
}
