/* The layer options against PyTorch, driven by tests/torch.sh (needs Debian's python3-torch).
     options_torch DIR   builds one small net per option (rectangular, strided, dilated,
                         grouped and depthwise Conv2d, on both depthwise paths; the pools
                         with ceil_mode and count_include_pad=False on awkward sizes;
                         BatchNorm with momentum, eps and affine=False in training and
                         evaluation; Hardtanh and ReLU6, a NaN included), runs its forward
                         and backward and writes DIR/<case>.safetensors (the net before
                         the forward) and DIR/<case>.<array>.f32 (input, output gradient,
                         output, input gradient, parameter gradients, buffers after),
                         listed in DIR/cases.txt; tests/options_torch.py recomputes each in
                         PyTorch (float64) and compares within 1e-5 relative. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include <stdlib.h>

static const char *dir;
static FILE *list;

static void put(const char *name, const char *array, const float *v, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s.%s.f32", dir, name, array);
    if (!(f = fopen(path, "wb")) || fwrite(v, sizeof(float), n, f) != n || fclose(f)) { perror(path); exit(1); }
}

static void fill(float *v, size_t n, float lo, float hi, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) v[i] = lo + (hi - lo) * nn_rng_uniform(&r);
}

/* Builds net for batch n, randomises its parameters and buffers (running variances
   positive), saves it, runs forward and backward and writes everything out. */
static void run_case(const char *name, nn_net *net, int n, int training, int nan_at)
{
    char path[512];
    size_t in, out;
    float *x, *dy;
    int i;
    nn_set_input_grad(net, 1);
    if (nn_build(net, n, 11) != NN_OK) { fprintf(stderr, "%s: %s\n", name, nn_error()); exit(1); }
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        int var = strstr(p->name, "running_var") != NULL;
        fill(p->value, p->size, var ? 0.5f : -1.0f, var ? 2.0f : 1.0f, 100 + (uint64_t)i);
    }
    nn_set_training(net, training);
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    if (nn_save(net, path) != NN_OK) { fprintf(stderr, "%s: %s\n", name, nn_error()); exit(1); }
    in = (size_t)n * nn_shape_size(net->input);
    out = (size_t)n * nn_shape_size(nn_output_shape(net));
    x = (float *)malloc(in * sizeof(float));
    dy = (float *)malloc(out * sizeof(float));
    fill(x, in, -3.0f, 3.0f, 7);
    fill(dy, out, -1.0f, 1.0f, 8);
    if (nan_at >= 0) x[nan_at] = NAN;
    put(name, "x", x, in);
    put(name, "dy", dy, out);
    put(name, "y", nn_forward(net, x, n), out);
    if (nn_backward(net, dy) != NN_OK) { fprintf(stderr, "%s: %s\n", name, nn_error()); exit(1); }
    put(name, "dx", nn_input_grad(net), in);
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        char array[96];
        snprintf(array, sizeof array, "%s.%s", p->learnable ? "grad" : "buf", p->name);
        put(name, array, p->learnable ? p->grad : p->value, p->size);
    }
    fprintf(list, "%s %d %d\n", name, n, training);
    free(x);
    free(dy);
    nn_net_free(net);
}

static nn_net *one(nn_shape in, nn_layer_desc a)
{
    nn_net *net = nn_net_new(in);
    if (nn_add(net, a) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
    return net;
}

static nn_layer_desc conv(int out, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int groups)
{
    nn_layer_desc d = nn_conv2d(out, kh, sh, ph);
    d.kernel_w = kw; d.stride_w = sw; d.pad_w = pw; d.dilation_h = dh; d.dilation_w = dw; d.groups = groups;
    return d;
}

static nn_layer_desc pool(int avg, int kh, int kw, int sh, int sw, int ph, int pw, int ceil, int exclude)
{
    nn_layer_desc d = avg ? nn_avgpool2d(kh, sh, ph) : nn_maxpool2d(kh, sh, ph);
    d.kernel_w = kw; d.stride_w = sw; d.pad_w = pw; d.ceil_mode = ceil; d.exclude_pad = exclude;
    return d;
}

static nn_layer_desc bn(float momentum, float eps, int no_affine)
{
    nn_layer_desc d = nn_batchnorm();
    d.momentum = momentum; d.eps = eps; d.no_affine = no_affine;
    return d;
}

int main(int argc, char **argv)
{
    char path[512];
    int mode, ceil, ex, t;
    if (argc != 2) { fprintf(stderr, "usage: options_torch DIR\n"); return 2; }
    dir = argv[1];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    if (!(list = fopen(path, "w"))) { perror(path); return 1; }
    run_case("conv_rect", one(nn_shape3(3, 9, 8), conv(4, 3, 2, 1, 1, 1, 0, 1, 1, 1)), 2, 1, -1);
    run_case("conv_stride_2x1", one(nn_shape3(3, 9, 8), conv(4, 3, 3, 2, 1, 1, 2, 1, 1, 1)), 2, 1, -1);
    run_case("conv_stride_1x3", one(nn_shape3(2, 7, 10), conv(3, 2, 3, 1, 3, 0, 1, 1, 1, 1)), 2, 1, -1);
    run_case("conv_dilation_2", one(nn_shape3(3, 11, 9), conv(4, 3, 3, 1, 1, 2, 2, 2, 2, 1)), 2, 1, -1);
    run_case("conv_dilation_2x3", one(nn_shape3(2, 11, 12), conv(3, 3, 2, 2, 1, 1, 0, 2, 3, 1)), 2, 1, -1);
    run_case("conv_groups_2", one(nn_shape3(4, 7, 9), conv(6, 3, 3, 1, 1, 1, 1, 1, 1, 2)), 2, 1, -1);
    run_case("conv_groups_3_1x1", one(nn_shape3(6, 5, 7), conv(9, 1, 1, 1, 1, 0, 0, 1, 1, 3)), 2, 1, -1);
    for (mode = 0; mode >= -1; mode--) {   /* the depthwise loops, then the grouped GEMMs */
        char name[64];
        const char *path_name = mode ? "gemm" : "direct";
        nn__depthwise_mode = mode;
        snprintf(name, sizeof name, "depthwise_3x3_%s", path_name);
        run_case(name, one(nn_shape3(17, 11, 9), conv(17, 3, 3, 1, 1, 1, 1, 1, 1, 17)), 3, 1, -1);
        snprintf(name, sizeof name, "depthwise_stride_2_%s", path_name);
        run_case(name, one(nn_shape3(3, 9, 7), conv(3, 3, 3, 2, 2, 1, 1, 1, 1, 3)), 3, 1, -1);
        snprintf(name, sizeof name, "depthwise_dilation_2_%s", path_name);
        run_case(name, one(nn_shape3(5, 11, 13), conv(5, 3, 3, 1, 1, 2, 2, 2, 2, 5)), 2, 1, -1);
        snprintf(name, sizeof name, "depthwise_rect_%s", path_name);
        run_case(name, one(nn_shape3(1, 9, 8), conv(1, 5, 3, 2, 1, 2, 0, 1, 2, 1)), 2, 1, -1);
        nn__depthwise_mode = 0;
    }
    for (t = 0; t < 2; t++)
        for (ceil = 0; ceil < 2; ceil++)
            for (ex = 0; ex <= t; ex++) {
                char name[64];
                snprintf(name, sizeof name, "%s_ceil%d_exclude%d", t ? "avgpool" : "maxpool", ceil, ex);
                run_case(name, one(nn_shape3(2, 8, 7), pool(t, 3, 3, 2, 2, 1, 1, ceil, ex)), 2, 1, -1);
                snprintf(name, sizeof name, "%s_rect_ceil%d_exclude%d", t ? "avgpool" : "maxpool", ceil, ex);
                run_case(name, one(nn_shape3(2, 7, 10), pool(t, 3, 2, 2, 3, 1, 1, ceil, ex)), 2, 1, -1);
                snprintf(name, sizeof name, "%s_k2p1_ceil%d_exclude%d", t ? "avgpool" : "maxpool", ceil, ex);
                run_case(name, one(nn_shape3(1, 5, 6), pool(t, 2, 2, 2, 2, 1, 1, ceil, ex)), 2, 1, -1);
            }
    for (t = 0; t < 2; t++) {   /* evaluation, training */
        char name[64];
        snprintf(name, sizeof name, "bn2d_momentum_eps_train%d", t);
        run_case(name, one(nn_shape3(3, 4, 5), bn(0.3f, 1e-2f, 0)), 3, t, -1);
        snprintf(name, sizeof name, "bn2d_no_affine_train%d", t);
        run_case(name, one(nn_shape3(3, 4, 5), bn(0.0f, 0.5f, 1)), 3, t, -1);
        snprintf(name, sizeof name, "bn1d_no_affine_momentum_train%d", t);
        run_case(name, one(nn_shape1(6), bn(0.7f, 0.0f, 1)), 5, t, -1);
        {
            nn_net *net = one(nn_shape3(2, 3, 3), bn(0.2f, 1e-3f, 1));
            snprintf(name, sizeof name, "bn2d_no_affine_relu_train%d", t);
            nn_add(net, nn_relu());
            run_case(name, net, 3, t, -1);
        }
    }
    run_case("relu6", one(nn_shape1(40), nn_relu6()), 3, 1, 5);
    run_case("hardtanh_default", one(nn_shape1(40), nn_hardtanh(0.0f, 0.0f)), 3, 1, 17);
    run_case("hardtanh_-0.5_2", one(nn_shape3(2, 3, 4), nn_hardtanh(-0.5f, 2.0f)), 3, 1, 9);
    fclose(list);
    return 0;
}
