/* The nn.h side of tests/onnx_export.sh: builds each net, trains it three SGD steps on
   a fixed random batch (so that the BatchNorm running statistics are its own, not 0
   and 1), and in evaluation mode writes DIR/NAME.onnx (nn_save_onnx), the model file
   DIR/NAME.safetensors (for `nn export`), a random batch DIR/NAME_x.npy and nn.h's
   output on it DIR/NAME_y.npy. It checks itself that the ONNX bytes are the same after
   nn_inference_only, and reads the bytes back with nn_load_onnx_memory: the same
   parameters bit for bit, the same outputs within 1e-5 (relative). The nets: E1's MLP and E3's VGG ConvNet (examples/models.h), E4's
   tutorial CNN and LeNet-5 (examples/small_cnns.c's make_net), resnet18_cifar (32 x 32)
   and mobilenet_v2 (224 x 224) of examples/models.h, and "layers", a net of every other
   layer kind and option the export maps differently (below), with "layers_cv" the same
   without Softplus, Hardtanh and ReLU6 (the operators OpenCV 4.6 cannot run).
       Usage: onnx_export DIR [NAME...] */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "examples/models.h"
#define NPY_IMPLEMENTATION
#include "tools/npy.h"

#include <stdlib.h>

static nn_net *small_cnn(int lenet)
{
    nn_net *net = nn_net_new(nn_shape3(3, 32, 32));
    if (!lenet) {
        nn_add(net, nn_conv2d(6, 5, 1, 0));  nn_add(net, nn_relu());  nn_add(net, nn_maxpool2d(2, 2, 0));
        nn_add(net, nn_conv2d(16, 5, 1, 0)); nn_add(net, nn_relu());  nn_add(net, nn_maxpool2d(2, 2, 0));
        nn_add(net, nn_flatten());
        nn_add(net, nn_linear(120)); nn_add(net, nn_relu());
        nn_add(net, nn_linear(84));  nn_add(net, nn_relu());
        nn_add(net, nn_linear(10));
    } else {
        nn_add(net, nn_conv2d(6, 5, 1, 0));   nn_add(net, nn_tanh()); nn_add(net, nn_avgpool2d(2, 2, 0));
        nn_add(net, nn_conv2d(16, 5, 1, 0));  nn_add(net, nn_tanh()); nn_add(net, nn_avgpool2d(2, 2, 0));
        nn_add(net, nn_conv2d(120, 5, 1, 0)); nn_add(net, nn_tanh());
        nn_add(net, nn_flatten());
        nn_add(net, nn_linear(84)); nn_add(net, nn_tanh());
        nn_add(net, nn_linear(10));
    }
    return net;
}

/* 3 x 12 x 11 in, 5 out. The shapes are chosen for the pooling cases of nn__oxw_pool:
   ceil_mode adding a window on one axis with padding counted (a Pad node), ceil_mode
   adding a window on one axis while PyTorch's rule takes it away on the other (end
   padding), ceil_mode with exclude_pad; a Conv2d after a Linear (a Reshape to N x C x 1
   x 1), a Linear after global pooling (a Flatten), nested blocks, a shortcut path, two
   layers with one name. */
static nn_net *layers_net(int opencv)
{
    nn_net *net = nn_net_new(nn_shape3(3, 12, 11));
    nn_layer_desc d;
    d = nn_conv2d(6, 3, 2, 1);                    /* 3x2 kernel, stride 2x1, pad 1x0, dilation 1x2 */
    d.kernel_w = 2; d.stride_w = 1; d.pad_w = 0; d.dilation_w = 2;
    nn_add(net, d);                               /* 6 x 6 x 9 */
    d = nn_batchnorm(); d.no_affine = 1; d.momentum = 0.3f; d.eps = 1e-3f;
    nn_add(net, d);
    nn_add(net, nn_gelu(0));
    d = nn_conv2d(6, 3, 1, 1); d.groups = 3; d.no_bias = 1;
    nn_add(net, d);
    nn_add(net, nn_gelu(1));
    d = nn_avgpool2d(3, 2, 1); d.ceil_mode = 1;   /* 6 x 4 x 5: ceil adds a row, padding counted */
    nn_add(net, d);
    nn_add(net, nn_leaky_relu(0.1f));
    d = nn_maxpool2d(3, 2, 1); d.kernel_w = 2; d.ceil_mode = 1;   /* 6 x 3 x 3: adds a row, not a column */
    nn_add(net, d);
    nn_add(net, nn_named(nn_sigmoid(), "act"));
    nn_add(net, nn_block());
    nn_add(net, nn_conv2d(6, 1, 1, 0));
    nn_add(net, nn_block());
    nn_add(net, nn_named(nn_tanh(), "act"));
    nn_add(net, nn_block_end(0));
    nn_add(net, nn_block_end(0));
    nn_add(net, nn_block());
    nn_add(net, nn_conv2d(8, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_shortcut());
    d = nn_conv2d(8, 1, 1, 0); d.no_bias = 1;
    nn_add(net, d);
    nn_add(net, nn_block_end(1));
    nn_add(net, nn_scale(0.5f));
    if (!opencv) {
        nn_add(net, nn_softplus(2.0f, 1.5f));
        nn_add(net, nn_hardtanh(-0.5f, 0.8f));
    }
    d = nn_avgpool2d(2, 2, 0); d.ceil_mode = 1; d.exclude_pad = 1;   /* 8 x 2 x 2 */
    nn_add(net, d);
    if (!opencv) nn_add(net, nn_relu6());
    nn_add(net, nn_global_avgpool());
    nn_add(net, nn_linear(12));
    nn_add(net, nn_batchnorm());                  /* BatchNorm1d */
    nn_add(net, nn_dropout(0.3f));
    d = nn_linear(7); d.no_bias = 1;
    nn_add(net, d);
    nn_add(net, nn_conv2d(5, 1, 1, 0));           /* on 7 x 1 x 1 */
    nn_add(net, nn_relu());
    return net;
}

static nn_net *make(const char *name, nn_shape *in)
{
    static const int hidden = 100;
    *in = nn_shape3(3, 32, 32);
    if (!strcmp(name, "mlp")) return mlp_net(*in, &hidden, 1, 0.02f);
    if (!strcmp(name, "vgg_convnet")) return vgg_convnet(*in);
    if (!strcmp(name, "tutorial_cnn")) return small_cnn(0);
    if (!strcmp(name, "lenet5")) return small_cnn(1);
    if (!strcmp(name, "resnet18_cifar")) return resnet18_cifar(*in, 10);
    *in = nn_shape3(3, 224, 224);
    if (!strcmp(name, "mobilenet_v2")) return mobilenet_v2(*in, 10);
    *in = nn_shape3(3, 12, 11);
    if (!strcmp(name, "layers")) return layers_net(0);
    if (!strcmp(name, "layers_cv")) return layers_net(1);
    return NULL;
}

/* The export read back by nn_load_onnx_memory: every parameter and running statistic
   under its name with the same bits, and nn.h's outputs on x within 1e-5 of the largest. */
static int round_trip(nn_net *net, const unsigned char *bytes, size_t size, const float *x, int batch,
                      const char *name)
{
    nn_net *back = nn_load_onnx_memory(bytes, size, batch);
    size_t n = (size_t)batch * nn_shape_size(nn_output_shape(net)), j;
    float *want = (float *)malloc(n * sizeof *want), largest = 0.0f, worst = 0.0f;
    const float *y;
    int i, k, ok = back && want;
    if (!back) fprintf(stderr, "onnx_export: %s: the export does not import: %s\n", name, nn_error());
    for (i = 0; ok && i < nn_num_param_tensors(net); i++) {
        const nn_param *p = nn_get_param(net, i), *q = NULL;
        for (k = 0; k < nn_num_param_tensors(back) && !q; k++)
            if (!strcmp(nn_get_param(back, k)->name, p->name)) q = nn_get_param(back, k);
        if (!q || q->size != p->size || memcmp(q->value, p->value, p->size * sizeof *p->value)) {
            fprintf(stderr, "onnx_export: %s: the imported %s %s\n", name, p->name, q ? "differs" : "is missing");
            ok = 0;
        }
    }
    if (ok && (y = nn_forward(net, x, batch)) != NULL) memcpy(want, y, n * sizeof *y);
    if (ok && (!y || !(y = nn_forward(back, x, batch)) || nn_shape_size(nn_output_shape(back)) * (size_t)batch != n)) {
        fprintf(stderr, "onnx_export: %s: %s\n", name, nn_error());
        ok = 0;
    }
    for (j = 0; ok && j < n; j++) {
        largest = fmaxf(largest, fabsf(want[j]));
        worst = fmaxf(worst, fabsf(y[j] - want[j]));
    }
    if (ok && !(worst <= 1e-5f * largest)) {
        fprintf(stderr, "onnx_export: %s: the imported net's outputs differ by %g (largest %g)\n", name, worst, largest);
        ok = 0;
    }
    if (ok) printf("%s: read back by nn_load_onnx_memory: %d parameters bit for bit, outputs within %.2g\n", name,
                   nn_num_param_tensors(net), worst / fmaxf(largest, 1e-30f));
    nn_net_free(back);
    free(want);
    return ok;
}

static int export_one(const char *dir, const char *name)
{
    nn_shape in;
    nn_net *net = make(name, &in);
    int batch = in.h > 32 ? 2 : 3, i, shape[4], status = 1, classes;
    size_t per = nn_shape_size(in), size1, size2;
    float *x = NULL;
    int y[3];
    unsigned char *bytes1 = NULL, *bytes2 = NULL;
    char path[512];
    nn_rng rng = nn_rng_new(7);
    nn_optim *opt = NULL;
    const float *out;
    if (!net) { fprintf(stderr, "onnx_export: unknown net %s\n", name); return 1; }
    if (nn_build(net, batch, 3) != NN_OK || !(opt = nn_sgd(net, (nn_sgd_desc){ .lr = 0.01f, .momentum = 0.9f })) ||
        !(x = (float *)malloc((size_t)batch * per * sizeof *x))) goto done;
    classes = (int)nn_shape_size(nn_output_shape(net));
    for (i = 0; i < batch * (int)per; i++) x[i] = nn_rng_normal(&rng, 0.0f, 1.0f);
    for (i = 0; i < batch; i++) y[i] = i % classes;
    for (i = 0; i < 3; i++) {
        float loss = nn_train_step(net, opt, x, y, batch);
        if (loss != loss) goto done;
    }
    for (i = 0; i < batch * (int)per; i++) x[i] = nn_rng_normal(&rng, 0.0f, 1.0f);   /* a new batch */
    if (nn_set_training(net, 0) != NN_OK || !(out = nn_forward(net, x, batch))) goto done;
    shape[0] = batch; shape[1] = in.c; shape[2] = in.h; shape[3] = in.w;
    snprintf(path, sizeof path, "%s/%s_x.npy", dir, name);
    if (npy_write(path, x, 4, shape) != 0) { fprintf(stderr, "onnx_export: %s\n", npy_error()); goto done; }
    shape[1] = classes;
    snprintf(path, sizeof path, "%s/%s_y.npy", dir, name);
    if (npy_write(path, out, 2, shape) != 0) { fprintf(stderr, "onnx_export: %s\n", npy_error()); goto done; }
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    if (nn_save_onnx(net, path) != NN_OK) goto done;
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    if (nn_save(net, path) != NN_OK || nn_save_onnx_memory(net, &bytes1, &size1) != NN_OK ||
        nn_inference_only(net) != NN_OK || nn_save_onnx_memory(net, &bytes2, &size2) != NN_OK) goto done;
    if (size1 != size2 || memcmp(bytes1, bytes2, size1)) {
        fprintf(stderr, "onnx_export: %s: the inference-only net exports other bytes\n", name);
        status = 2;
        goto done;
    }
    printf("%s: %zu bytes, %d x %d x %d in, %d out, batch %d\n", name, size1, in.c, in.h, in.w, classes, batch);
    status = round_trip(net, bytes1, size1, x, batch, name) ? 0 : 2;
done:
    if (status == 1) fprintf(stderr, "onnx_export: %s: %s\n", name, nn_error());
    nn_free_buffer(bytes1);
    nn_free_buffer(bytes2);
    nn_optim_free(opt);
    nn_net_free(net);
    free(x);
    return status;
}

int main(int argc, char **argv)
{
    static const char *const all[] = {"mlp", "vgg_convnet", "tutorial_cnn", "lenet5", "resnet18_cifar",
                                      "mobilenet_v2", "layers", "layers_cv"};
    int i, failed = 0;
    if (argc < 2) { fprintf(stderr, "usage: onnx_export DIR [NAME...]\n"); return 2; }
    if (argc == 2)
        for (i = 0; i < (int)(sizeof all / sizeof all[0]); i++) failed |= export_one(argv[1], all[i]);
    for (i = 2; i < argc; i++) failed |= export_one(argv[1], argv[i]);
    return failed ? 1 : 0;
}
