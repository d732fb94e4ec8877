/* tools/nn.c, the model tool, called in-process (its main as nn_tool_main) with its
   stdout and stderr caught: --help; info on a small model with preprocessing and class
   names; run on .npy batches against nn_forward, batch by batch; convert of an nn.h
   file of E1's MLP; import of an ONNX model (tests/onnx_model.h) and run and info on
   it, found by its extension or its first bytes; export of a model file and of an
   architecture (nn_save_onnx's bytes); and the bad inputs, each with its sentence and status (1 bad
   input, 2 bad usage). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <unistd.h>
#define main nn_tool_main
#include "../tools/nn.c"
#undef main
#include "harness.h"
#include "onnx_model.h"

#define DIR "build/nn_tool_test"
static char out_text[1 << 16], err_text[1 << 16];

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

/* Runs `nn ARGS...` (NULL-terminated); its output lands in out_text and err_text. */
static int tool(const char *first, ...)
{
    char *argv[16];
    int argc = 0, so, se, fo, fe, st;
    va_list ap;
    argv[argc++] = (char *)"nn";
    va_start(ap, first);
    for (argv[argc] = (char *)first; argv[argc] && argc < 15; argv[argc] = va_arg(ap, char *)) argc++;
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    so = dup(1); se = dup(2);
    fo = open(DIR "/stdout.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    fe = open(DIR "/stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1); dup2(fe, 2);
    st = nn_tool_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1); dup2(se, 2);
    close(so); close(se); close(fo); close(fe);
    slurp(DIR "/stdout.txt", out_text, sizeof out_text);
    slurp(DIR "/stderr.txt", err_text, sizeof err_text);
    return st;
}

#define HAS(text, s) CHECK(strstr(text, s) != NULL, "no \"%s\" in:\n%s", s, text)

/* Conv2d, BatchNorm, ReLU, MaxPool2d, Flatten, Linear(3) on 3 x 8 x 8, with channel
   preprocessing and class names, trained one step so the statistics are not the
   defaults; saved to DIR/small.safetensors. */
static nn_net *small_net(void)
{
    static const float mean[3] = {120, 110, 100}, std[3] = {60, 50, 40};
    static const char *const names[3] = {"cat", "dog", "frog"};
    nn_net *net = nn_net_new(nn_shape3(3, 8, 8));
    nn_optim *opt;
    float x[4 * 192];
    int y[4] = {0, 1, 2, 1}, i;
    nn_add(net, nn_conv2d(4, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(3));
    CHECK(nn_build(net, 4, 7) == NN_OK, "%s", nn_error());
    opt = nn_sgd(net, (nn_sgd_desc){ .lr = 0.1f });
    for (i = 0; i < 4 * 192; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    nn_train_step(net, opt, x, y, 4);
    nn_optim_free(opt);
    nn_set_preprocess_channels(net, 1.0f, mean, std);
    nn_set_class_names(net, names, 3);
    CHECK(nn_save(net, DIR "/small.safetensors") == NN_OK, "%s", nn_error());
    return net;
}

static void test_help_and_usage(void)
{
    CHECK(tool("--help", NULL) == 0, "status");
    HAS(out_text, "usage: nn info");
    HAS(out_text, "resnet18_cifar");
    HAS(out_text, "mobilenet_v2");
    CHECK(tool(NULL) == 2, "no command");
    CHECK(tool("frob", NULL) == 2, "unknown command");
    HAS(err_text, "unknown command 'frob'");
    CHECK(tool("info", NULL) == 2, "info without a file");
}

static void test_info(void)
{
    nn_net *net = small_net();
    char count[64];
    CHECK(tool("info", DIR "/small.safetensors", NULL) == 0, "status: %s", err_text);
    HAS(out_text, "Conv2d out=4 kernel=3x3 stride=1x1 pad=1x1 0.weight(4x3x3x3) 0.bias(4)  3x8x8 -> 4x8x8");
    HAS(out_text, "BatchNorm 1.weight(4) 1.bias(4) 1.running_mean(4) 1.running_var(4)");
    HAS(out_text, "MaxPool2d kernel=2x2 stride=2x2 pad=0x0  4x8x8 -> 4x4x4");
    HAS(out_text, "Linear out=3 5.weight(3x64) 5.bias(3)  64 -> 3");
    snprintf(count, sizeof count, "parameters: %zu", nn_num_param_scalars(net));
    HAS(out_text, count);
    HAS(out_text, "input: 3 x 8 x 8");
    HAS(out_text, "per channel x = a * pixel + b");
    HAS(out_text, "(a=0.0166667, b=-2) (a=0.02, b=-2.2)");   /* 1/60, -120/60; 1/50, -110/50 */
    HAS(out_text, "classes: cat dog frog");
    CHECK(tool("info", DIR "/missing.safetensors", NULL) == 1, "a missing file");
    HAS(err_text, "missing.safetensors");
    nn_net_free(net);
}

/* nn run's OUT against nn_forward of the same file in evaluation mode. */
static void test_run(void)
{
    nn_net *net = small_net(), *ref;
    float x[5 * 192], bad[5 * 3 * 8 * 9];
    int shape[4] = {5, 3, 8, 8}, wrong[4] = {5, 3, 8, 9}, i;
    const float *want;
    npy_array y;
    nn_net_free(net);
    for (i = 0; i < 5 * 192; i++) x[i] = (float)((i * 53) % 97) / 40.0f - 1.2f;
    CHECK(npy_write(DIR "/x.npy", x, 4, shape) == 0, "%s", npy_error());
    ref = nn_load(DIR "/small.safetensors", 5);
    nn_set_training(ref, 0);
    want = nn_forward(ref, x, 5);
    CHECK(tool("run", DIR "/small.safetensors", DIR "/x.npy", DIR "/y.npy", "--batch", "2", "--threads", "1",
               NULL) == 0, "status: %s", err_text);
    CHECK(npy_read(DIR "/y.npy", &y) == 0, "%s", npy_error());
    CHECK(y.ndim == 2 && y.shape[0] == 5 && y.shape[1] == 3, "OUT has %d dimensions", y.ndim);
    for (i = 0; y.data && want && i < 15; i++) CHECK_NEAR(y.data[i], want[i], 1e-6);
    npy_free(&y);
    CHECK(tool("run", DIR "/small.safetensors", DIR "/x.npy", DIR "/y.npy", NULL) == 0, "status: %s", err_text);
    CHECK(npy_read(DIR "/y.npy", &y) == 0, "%s", npy_error());
    for (i = 0; y.data && want && i < 15; i++) CHECK_NEAR(y.data[i], want[i], 1e-6);
    npy_free(&y);
    nn_net_free(ref);
    /* bad input: status 1 and a sentence */
    memset(bad, 0, sizeof bad);
    CHECK(npy_write(DIR "/wrong.npy", bad, 4, wrong) == 0, "%s", npy_error());
    CHECK(tool("run", DIR "/small.safetensors", DIR "/wrong.npy", DIR "/y.npy", NULL) == 1, "a wrong shape");
    HAS(err_text, "shape (5, 3, 8, 9) does not fit the net's input: expected (N, 3, 8, 8)");
    CHECK(npy_write(DIR "/wrong.npy", bad, 2, wrong) == 0, "%s", npy_error());
    CHECK(tool("run", DIR "/small.safetensors", DIR "/wrong.npy", DIR "/y.npy", NULL) == 1, "2 dimensions");
    HAS(err_text, "does not fit");
    CHECK(truncate(DIR "/wrong.npy", 100) == 0, "truncate");
    CHECK(tool("run", DIR "/small.safetensors", DIR "/wrong.npy", DIR "/y.npy", NULL) == 1, "a damaged .npy");
    HAS(err_text, "wrong.npy: header length 118 but the file has 100 bytes");
    CHECK(tool("run", DIR "/small.safetensors", DIR "/none.npy", DIR "/y.npy", NULL) == 1, "a missing .npy");
    HAS(err_text, "none.npy: cannot open");
    CHECK(tool("run", DIR "/none.safetensors", DIR "/x.npy", DIR "/y.npy", NULL) == 1, "a missing model");
    HAS(err_text, "none.safetensors");
    CHECK(tool("run", DIR "/small.safetensors", DIR "/x.npy", DIR "/no/such/dir/y.npy", NULL) == 1, "OUT unwritable");
    HAS(err_text, "cannot create");
    CHECK(tool("run", DIR "/small.safetensors", DIR "/x.npy", DIR "/y.npy", "--batch", "0", NULL) == 2, "batch 0");
    HAS(err_text, "--batch 0");
    CHECK(tool("run", DIR "/small.safetensors", DIR "/x.npy", DIR "/y.npy", "--threads", "x", NULL) == 2, "threads");
    CHECK(tool("run", DIR "/small.safetensors", DIR "/x.npy", DIR "/y.npy", "--batch", NULL) == 2, "no value");
    CHECK(tool("run", DIR "/small.safetensors", DIR "/x.npy", DIR "/y.npy", "--frob", NULL) == 2, "a bad flag");
    HAS(err_text, "unknown flag --frob");
    CHECK(tool("run", DIR "/small.safetensors", DIR "/x.npy", NULL) == 2, "no OUT");
}

/* E1's MLP saved by nn.h is a state_dict with the names convert expects. */
static void test_convert(void)
{
    const model_arch *mlp = model_find("mlp");
    nn_net *net = mlp ? mlp->make(mlp->input, 10) : NULL, *back;
    int i, same = 1;
    CHECK(net && nn_build(net, 1, 3) == NN_OK, "%s", nn_error());
    CHECK(nn_save(net, DIR "/mlp.safetensors") == NN_OK, "%s", nn_error());
    CHECK(tool("convert", "--arch", "mlp", DIR "/mlp.safetensors", DIR "/mlp_nn.safetensors", NULL) == 0, "status: %s",
          err_text);
    back = nn_load(DIR "/mlp_nn.safetensors", 1);
    CHECK(back && nn_num_param_tensors(back) == nn_num_param_tensors(net), "%s", nn_error());
    for (i = 0; back && i < nn_num_param_tensors(net); i++) {
        nn_param *a = nn_get_param(net, i), *b = nn_get_param(back, i);
        same &= !strcmp(a->name, b->name) && a->size == b->size && !memcmp(a->value, b->value, a->size * 4);
    }
    CHECK(same, "the converted file holds other tensors");
    nn_net_free(back);
    nn_net_free(net);
    CHECK(tool("convert", "--arch", "vgg_convnet", DIR "/mlp.safetensors", DIR "/o.safetensors", NULL) == 1,
          "MLP weights for the VGG net");
    HAS(err_text, "tensor '");
    CHECK(tool("convert", "--arch", "frob", DIR "/mlp.safetensors", DIR "/o.safetensors", NULL) == 2, "unknown arch");
    HAS(err_text, "unknown architecture 'frob'");
    CHECK(tool("convert", "--arch", "mlp", "--classes", "5", DIR "/mlp.safetensors", DIR "/o.safetensors", NULL) == 2,
          "classes for a fixed net");
    HAS(err_text, "mlp has 10 classes, not 5");
    CHECK(tool("convert", "--arch", "resnet18", "--classes", "0", DIR "/mlp.safetensors", DIR "/o.safetensors", NULL) ==
          2, "0 classes");
    CHECK(tool("convert", DIR "/mlp.safetensors", DIR "/o.safetensors", NULL) == 2, "no --arch");
    HAS(err_text, "--arch");
    CHECK(tool("convert", "--arch", "mlp", DIR "/none.safetensors", DIR "/o.safetensors", NULL) == 1, "no weights");
    HAS(err_text, "none.safetensors");
    CHECK(access(DIR "/o.safetensors", F_OK) != 0, "a failed convert wrote its output");
}

/* nn import writes a model file that gives nn_load_onnx's outputs; run and info take
   the .onnx model itself, also under another extension (by its first bytes). */
static void test_import_onnx(void)
{
    om_buf m = om_model_small(0);
    FILE *fp = fopen(DIR "/small.onnx", "wb");
    float x[3 * 108];
    int shape[4] = {3, 3, 6, 6}, i, k;
    nn_net *ref;
    const float *want;
    npy_array y;
    const char *models[3] = {DIR "/small.onnx", DIR "/small_onnx.bin", DIR "/imported.safetensors"};
    CHECK(fp && fwrite(m.p, 1, m.n, fp) == m.n && fclose(fp) == 0, "cannot write small.onnx");
    fp = fopen(DIR "/small_onnx.bin", "wb");
    CHECK(fp && fwrite(m.p, 1, m.n, fp) == m.n && fclose(fp) == 0, "cannot write small_onnx.bin");
    for (i = 0; i < 3 * 108; i++) x[i] = (float)((i * 29) % 31) / 10.0f - 1.5f;
    CHECK(npy_write(DIR "/ox.npy", x, 4, shape) == 0, "%s", npy_error());
    ref = nn_load_onnx(DIR "/small.onnx", 3);
    CHECK(ref != NULL, "%s", nn_error());
    if (!ref) { free(m.p); return; }
    want = nn_forward(ref, x, 3);
    CHECK(tool("import", DIR "/small.onnx", DIR "/imported.safetensors", NULL) == 0, "status: %s", err_text);
    HAS(out_text, "small.onnx: 9 layers, ");
    for (k = 0; k < 3; k++) {
        CHECK(tool("run", models[k], DIR "/ox.npy", DIR "/oy.npy", NULL) == 0, "run %s: %s", models[k], err_text);
        CHECK(npy_read(DIR "/oy.npy", &y) == 0, "%s", npy_error());
        CHECK(y.ndim == 2 && y.shape[0] == 3 && y.shape[1] == 2, "OUT has %d dimensions", y.ndim);
        for (i = 0; y.data && i < 6; i++) CHECK_NEAR(y.data[i], want[i], 1e-6);
        npy_free(&y);
    }
    CHECK(tool("info", DIR "/small.onnx", NULL) == 0, "status: %s", err_text);
    HAS(out_text, "Conv2d out=4 kernel=3x3 stride=1x1 pad=1x1 conv1.weight(4x3x3x3) conv1.bias(4)  3x6x6 -> 4x6x6");
    HAS(out_text, "BlockEnd relu");
    HAS(out_text, "Linear out=2 fc.weight(2x36) fc.bias(2)  36 -> 2");
    nn_net_free(ref);
    /* bad input and usage */
    fp = fopen(DIR "/cut.onnx", "wb");
    CHECK(fp && fwrite(m.p, 1, m.n / 2, fp) == m.n / 2 && fclose(fp) == 0, "cannot write cut.onnx");
    CHECK(tool("import", DIR "/cut.onnx", DIR "/o.safetensors", NULL) == 1, "a damaged model");
    HAS(err_text, "cut.onnx: onnx: damaged file");
    CHECK(tool("run", DIR "/cut.onnx", DIR "/ox.npy", DIR "/oy.npy", NULL) == 1, "run on a damaged model");
    HAS(err_text, "cut.onnx: onnx: ");
    CHECK(tool("import", DIR "/none.onnx", DIR "/o.safetensors", NULL) == 1, "a missing model");
    HAS(err_text, "none.onnx");
    CHECK(tool("import", DIR "/small.onnx", DIR "/no/such/dir/o.safetensors", NULL) == 1, "OUT unwritable");
    CHECK(tool("import", DIR "/small.onnx", NULL) == 2, "no OUT");
    HAS(err_text, "import takes IN.onnx OUT.safetensors");
    CHECK(access(DIR "/o.safetensors", F_OK) != 0, "a failed import wrote its output");
    free(m.p);
}

/* The bytes of nn_save_onnx_memory(net) are those of the file at path. */
static int same_file(nn_net *net, const char *path)
{
    unsigned char *want = NULL, *got;
    size_t size = 0;
    int same;
    FILE *f = fopen(path, "rb");
    CHECK(nn_save_onnx_memory(net, &want, &size) == NN_OK, "%s", nn_error());
    got = (unsigned char *)malloc(size + 1);
    same = f && want && got && fread(got, 1, size + 1, f) == size && !memcmp(got, want, size);
    if (f) fclose(f);
    free(got);
    nn_free_buffer(want);
    return same;
}

/* nn export of a model file and of an architecture name: nn_save_onnx's bytes. */
static void test_export(void)
{
    nn_net *net = small_net();
    const model_arch *mlp = model_find("mlp");
    nn_net_free(net);
    net = nn_load(DIR "/small.safetensors", 1);
    CHECK(tool("export", DIR "/small.safetensors", DIR "/small.onnx", NULL) == 0, "status: %s", err_text);
    HAS(out_text, "-> " DIR "/small.onnx");
    CHECK(net && same_file(net, DIR "/small.onnx"), "nn export wrote other bytes than nn_save_onnx");
    nn_net_free(net);
    net = mlp->make(mlp->input, 10);
    CHECK(nn_build(net, 1, 0) == NN_OK, "%s", nn_error());
    CHECK(tool("export", "mlp", DIR "/mlp.onnx", NULL) == 0, "status: %s", err_text);
    CHECK(same_file(net, DIR "/mlp.onnx"), "nn export mlp is not E1's MLP built with seed 0");
    nn_net_free(net);
    CHECK(tool("export", "resnet18", DIR "/r.onnx", "--classes", "3", NULL) == 0, "status: %s", err_text);
    HAS(out_text, "resnet18: 72 layers");
    CHECK(tool("export", DIR "/none.safetensors", DIR "/o.onnx", NULL) == 1, "no such file or architecture");
    HAS(err_text, "none.safetensors: cannot open");
    CHECK(tool("export", DIR "/x.npy", DIR "/o.onnx", NULL) == 1, "not a model file");
    CHECK(tool("export", "mlp", DIR "/no/such/dir/o.onnx", NULL) == 1, "OUT unwritable");
    HAS(err_text, "cannot create");
    CHECK(tool("export", "mlp", "--classes", "5", DIR "/o.onnx", NULL) == 2, "classes for a fixed net");
    HAS(err_text, "mlp has 10 classes, not 5");
    CHECK(tool("export", DIR "/small.safetensors", DIR "/o.onnx", "--classes", "5", NULL) == 2, "classes for a file");
    HAS(err_text, "--classes is for an architecture");
    CHECK(tool("export", "mlp", NULL) == 2, "no OUT");
    CHECK(tool("export", "mlp", DIR "/o.onnx", "x", NULL) == 2, "one too many");
    CHECK(tool("export", "mlp", DIR "/o.onnx", "--frob", NULL) == 2, "a bad flag");
    CHECK(access(DIR "/o.onnx", F_OK) != 0, "a failed export wrote its output");
    CHECK(tool("--help", NULL) == 0 && strstr(out_text, "nn export MODEL OUT.onnx"), "usage lists export");
}

int main(void)
{
    mkdir(DIR, 0755);
    RUN(test_help_and_usage);
    RUN(test_info);
    RUN(test_run);
    RUN(test_convert);
    RUN(test_import_onnx);
    RUN(test_export);
    return test_end("test_nn_tool");
}
