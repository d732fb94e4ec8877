/* Writes the seed corpora of the fuzz targets: valid inputs of each kind, small enough
   that libFuzzer mutates them quickly.
     Usage: make_corpus DIR      (writes DIR/<target>/seed_*; DIR/<target> must exist)
   load_memory: saved models of several architectures, with preprocessing and class
   names, and int8 ones (nn_quantize); load_weights: files for fuzz_net(), as nn.h and as PyTorch write them;
   checkpoint: one per optimiser kind (first byte: which); cifar10 and idx: tiny sets
   in the layouts of their targets; npy: .npy files of 1 to 4 dimensions, versions 1.0
   and 2.0; onnx: small ONNX models (tests/onnx_model.h). Built with fuzz_common.c (see the Makefile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"
#define NPY_IMPLEMENTATION
#include "../../tools/npy.h"
#include "../onnx_model.h"

static const char *root;

static void put(const char *target, const char *name, const void *prefix, size_t prefix_size,
                const void *data, size_t size)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s/seed_%s", root, target, name);
    f = fopen(path, "wb");
    if (!f || fwrite(prefix, 1, prefix_size, f) != prefix_size || fwrite(data, 1, size, f) != size ||
        fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        exit(1);
    }
}

/* Every seed is checked to be accepted by its loader, so that the targets start from
   inputs that reach their round-trip checks. */
static void accepted(const char *name, nn_status st)
{
    FUZZ_CHECK(st == NN_OK, "seed %s is refused: %s", name, nn_error());
}

static void put_net(const char *target, const char *name, nn_net *net)
{
    unsigned char *data;
    size_t size;
    FUZZ_CHECK(nn_save_memory(net, &data, &size) == NN_OK, "saving %s: %s", name, nn_error());
    put(target, name, "", 0, data, size);
    if (!strcmp(target, "load_memory")) {
        nn_net *again = nn_load_memory(data, size, 4);
        accepted(name, again ? NN_OK : NN_ERR_FORMAT);
        nn_net_free(again);
    } else {
        nn_net *fixed = fuzz_net();
        accepted(name, nn_load_weights_memory(fixed, data, size));
        nn_net_free(fixed);
    }
    nn_free_buffer(data);
}

static nn_net *built(nn_net *net, const char *name)
{
    FUZZ_CHECK(nn_build(net, 4, 3) == NN_OK, "building %s: %s", name, nn_error());
    return net;
}

/* int8 nets (nn_quantize): a conv net with every op kind and an MLP, with class names. */
static void int8_seeds(void)
{
    static float x[6 * 2 * 6 * 6];
    static const char *const classes[3] = { "cat", "dog", "bird" };
    int y[6] = {0}, i;
    nn_dataset d;
    nn_quantize_desc qd = {0};
    nn_net *net = nn_net_new(nn_shape3(2, 6, 6)), *q;
    nn_rng r = nn_rng_new(5);
    memset(&d, 0, sizeof d);
    for (i = 0; i < 6 * 72; i++) x[i] = nn_rng_normal(&r, 0.0f, 1.0f);
    d.n = 6; d.shape = nn_shape3(2, 6, 6); d.x = x; d.y = y;
    nn_add(net, nn_conv2d(3, 3, 1, 1)); nn_add(net, nn_batchnorm()); nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_conv2d(4, 2, 1, 1)); nn_add(net, nn_tanh()); nn_add(net, nn_avgpool2d(2, 2, 1));
    nn_add(net, nn_global_avgpool()); nn_add(net, nn_flatten()); nn_add(net, nn_linear(3));
    built(net, "int8 cnn");
    nn_set_class_names(net, classes, 3);
    q = nn_quantize(net, &d, 6, qd);
    FUZZ_CHECK(q != NULL, "quantizing the cnn: %s", nn_error());
    put_net("load_memory", "int8_cnn", q);
    nn_net_free(q);
    nn_net_free(net);
    net = nn_net_new(nn_shape3(2, 6, 6));
    nn_add(net, nn_flatten()); nn_add(net, nn_linear(5)); nn_add(net, nn_leaky_relu(0.1f));
    nn_add(net, nn_linear(2));
    q = nn_quantize(built(net, "int8 mlp"), &d, 6, qd);
    FUZZ_CHECK(q != NULL, "quantizing the mlp: %s", nn_error());
    put_net("load_memory", "int8_mlp", q);
    nn_net_free(q);
    nn_net_free(net);
}

static void models(void)
{
    static const char *const classes[3] = { "cat", "dog", "bird" };
    static const char *const two[2] = { "no", "yes" };
    float mean[48], stdev[3] = { 0.25f, 0.5f, 2.0f }, cmean[3] = { 0.5f, 0.25f, -1.0f };
    nn_layer_desc d;
    nn_net *net;
    int i;

    net = nn_net_new(nn_shape3(3, 4, 4));   /* an MLP with channel normalisation */
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(5));
    nn_add(net, nn_leaky_relu(0.02f));
    nn_add(net, nn_linear(3));
    built(net, "mlp");
    nn_set_preprocess_channels(net, 1.0f / 255, cmean, stdev);
    nn_set_class_names(net, classes, 3);
    put_net("load_memory", "mlp", net);
    nn_net_free(net);

    net = nn_net_new(nn_shape3(1, 6, 6));   /* a CNN with a mean image */
    nn_add(net, nn_conv2d(2, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));
    d = nn_conv2d(3, 3, 1, 1);
    d.no_bias = 1;
    nn_add(net, d);
    nn_add(net, nn_avgpool2d(2, 2, 1));
    nn_add(net, nn_global_avgpool());
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(2));
    built(net, "cnn");
    for (i = 0; i < 36; i++) mean[i] = (float)i / 7;
    nn_set_preprocess_mean_image(net, mean);
    nn_set_class_names(net, two, 2);
    put_net("load_memory", "cnn", net);
    nn_net_free(net);

    net = nn_net_new(nn_shape1(4));         /* every activation */
    nn_add(net, nn_linear(4));
    nn_add(net, nn_sigmoid());
    nn_add(net, nn_linear(3));
    nn_add(net, nn_tanh());
    nn_add(net, nn_gelu(1));
    nn_add(net, nn_gelu(0));
    nn_add(net, nn_softplus(2.0f, 10.0f));
    nn_add(net, nn_scale(0.5f));
    nn_add(net, nn_dropout(0.25f));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_linear(2));
    put_net("load_memory", "activations", built(net, "activations"));
    nn_net_free(net);

    net = nn_net_new(nn_shape3(2, 5, 7));   /* strides and paddings */
    nn_add(net, nn_conv2d(3, 2, 2, 1));
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(3, 2, 1));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(2));
    put_net("load_memory", "strides", built(net, "strides"));
    nn_net_free(net);

    net = fuzz_net();
    put_net("load_memory", "fixed_net", net);
    nn_net_free(net);
    int8_seeds();
}

/* A weights file as PyTorch writes one: no architecture in the metadata, the tensors
   in reverse order, num_batches_tracked as I64. */
static void torch_style(nn_net *net)
{
    char header[4096];
    unsigned char body[4096], len8[8];
    size_t hlen, blen = 0, offset = 0;
    int i, k, d;
    strcpy(header, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (i = nn_num_param_tensors(net) - 1; i >= 0; i--) {
        nn_param *p = nn_get_param(net, i);
        size_t bytes = p->size * sizeof(float), len = strlen(p->name);
        hlen = strlen(header);
        snprintf(header + hlen, sizeof header - hlen, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", p->name);
        for (d = 0; d < p->ndim; d++) {
            hlen = strlen(header);
            snprintf(header + hlen, sizeof header - hlen, "%s%d", d ? "," : "", p->shape[d]);
        }
        hlen = strlen(header);
        snprintf(header + hlen, sizeof header - hlen, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        memcpy(body + blen, p->value, bytes);
        blen += bytes;
        offset += bytes;
        if (len > 12 && !strcmp(p->name + len - 11, "running_var")) {
            hlen = strlen(header);
            snprintf(header + hlen, sizeof header - hlen,
                     ",\"%.*s.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[%zu,%zu]}",
                     (int)(len - 12), p->name, offset, offset + 8);
            memset(body + blen, 0, 8);
            body[blen] = 3;
            blen += 8;
            offset += 8;
        }
    }
    strcat(header, "}");
    hlen = strlen(header);
    for (k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    {
        unsigned char file[8192];
        memcpy(file, len8, 8);
        memcpy(file + 8, header, hlen);
        memcpy(file + 8 + hlen, body, blen);
        nn_net *fixed = fuzz_net();
        put("load_weights", "torch_style", "", 0, file, 8 + hlen + blen);
        accepted("torch_style", nn_load_weights_memory(fixed, file, 8 + hlen + blen));
        nn_net_free(fixed);
    }
}

static void weights(void)
{
    nn_net *net = fuzz_net();
    nn_optim *opt = fuzz_optim(net, 0);
    put_net("load_weights", "fixed_net", net);
    fuzz_train(net, opt, 3);
    put_net("load_weights", "trained", net);
    torch_style(net);
    nn_optim_free(opt);
    nn_net_free(net);
}

static void checkpoints(void)
{
    int k;
    for (k = 0; k < FUZZ_OPTIMS; k++) {
        nn_net *net = fuzz_net();
        nn_optim *opt = fuzz_optim(net, k);
        unsigned char *data, prefix[1];
        size_t size;
        char name[32];
        fuzz_train(net, opt, 3);
        data = fuzz_checkpoint_bytes(net, opt, &size);
        prefix[0] = (unsigned char)k;
        snprintf(name, sizeof name, "optimizer_%d", k);
        put("checkpoint", name, prefix, 1, data, size);
        free(data);
        nn_optim_free(opt);
        nn_net_free(net);
        net = fuzz_net();
        opt = fuzz_optim(net, k);
        accepted(name, nn_load_checkpoint(net, opt, fuzz_temp_path("state.ckpt")));
        nn_optim_free(opt);
        nn_net_free(net);
    }
}

static void cifar10(void)
{
    static unsigned char records[2 * NN_CIFAR10_RECORD];
    unsigned char prefix[1];
    size_t i;
    for (i = 0; i < sizeof records; i++) records[i] = (unsigned char)(i * 37 + i / 5);
    records[0] = 3;
    records[NN_CIFAR10_RECORD] = 9;
    prefix[0] = 0;
    put("cifar10", "one_record", prefix, 1, records, NN_CIFAR10_RECORD);
    prefix[0] = 1;
    put("cifar10", "two_records_twice", prefix, 1, records, sizeof records);
    prefix[0] = 2;
    put("cifar10", "one_record_three_times", prefix, 1, records + NN_CIFAR10_RECORD, NN_CIFAR10_RECORD);
    {
        const char *path = fuzz_write_temp("data.bin", records, sizeof records);
        nn_dataset ds;
        accepted("two_records_twice", nn_cifar10_load_files(&path, 1, &ds));
        nn_dataset_free(&ds);
    }
}

static void idx_pair(const char *name, int n, int rows, int cols, int classes)
{
    unsigned char buf[2 + 16 + 4096 + 8 + 256];
    size_t images = 16 + (size_t)n * rows * cols, i;
    int k, dims[4];
    dims[0] = 0x803; dims[1] = n; dims[2] = rows; dims[3] = cols;
    buf[0] = (unsigned char)(images & 255);
    buf[1] = (unsigned char)(images >> 8);
    for (k = 0; k < 4; k++) {
        buf[2 + 4 * k] = (unsigned char)(dims[k] >> 24);
        buf[3 + 4 * k] = (unsigned char)(dims[k] >> 16);
        buf[4 + 4 * k] = (unsigned char)(dims[k] >> 8);
        buf[5 + 4 * k] = (unsigned char)dims[k];
    }
    for (i = 16; i < images; i++) buf[2 + i] = (unsigned char)(i * 29);
    dims[0] = 0x801;
    for (k = 0; k < 2; k++) {
        buf[2 + images + 4 * k] = (unsigned char)(dims[k] >> 24);
        buf[3 + images + 4 * k] = (unsigned char)(dims[k] >> 16);
        buf[4 + images + 4 * k] = (unsigned char)(dims[k] >> 8);
        buf[5 + images + 4 * k] = (unsigned char)dims[k];
    }
    for (k = 0; k < n; k++) buf[2 + images + 8 + k] = (unsigned char)(k % classes);
    put("idx", name, "", 0, buf, 2 + images + 8 + n);
    {
        const char *ip = fuzz_write_temp("images.idx", buf + 2, images);
        const char *lp = fuzz_write_temp("labels.idx", buf + 2 + images, 8 + (size_t)n);
        nn_dataset ds;
        accepted(name, nn_idx_load(ip, lp, &ds));
        nn_dataset_free(&ds);
    }
}

static void npy_seeds(void)
{
    static const int shapes[3][4] = {{3}, {2, 3}, {1, 2, 2, 2}};
    static const float values[8] = {1.5f, -2.0f, 0.25f, 3e-5f, -0.0f, 7.0f, 1e20f, -1e-20f};
    unsigned char *file, v2[256];
    size_t size;
    npy_array a;
    int i;
    for (i = 0; i < 3; i++) {
        char name[16];
        if (npy_write_memory(values, i == 2 ? 4 : i + 1, shapes[i], &file, &size) != 0 || size > sizeof v2 - 2) {
            fprintf(stderr, "make_corpus: npy: %s\n", npy_error());
            exit(1);
        }
        snprintf(name, sizeof name, "rank_%d", i == 2 ? 4 : i + 1);
        put("npy", name, "", 0, file, size);
        FUZZ_CHECK(npy_read_memory(file, size, name, &a) == 0, "seed %s is refused: %s", name, npy_error());
        npy_free(&a);
        if (i == 1) {   /* the same as version 2.0: a 4-byte header length */
            memcpy(v2, file, 8);
            v2[6] = 2;
            v2[8] = file[8]; v2[9] = file[9]; v2[10] = 0; v2[11] = 0;
            memcpy(v2 + 12, file + 10, size - 10);
            put("npy", "version_2", "", 0, v2, size + 2);
            FUZZ_CHECK(npy_read_memory(v2, size + 2, "version_2", &a) == 0, "seed version_2 is refused: %s",
                       npy_error());
            npy_free(&a);
        }
        npy_free_buffer(file);
    }
}

/* onnx: the test model of tests/onnx_model.h, its weights as raw_data, packed and
   unpacked float_data. */
static void onnx_seeds(void)
{
    static const char *const names[3] = { "small_raw", "small_packed", "small_unpacked" };
    int how;
    for (how = 0; how < 3; how++) {
        om_buf m = om_model_small(how);
        nn_net *net = nn_load_onnx_memory(m.p, m.n, 2);
        accepted(names[how], net ? NN_OK : NN_ERR_FORMAT);
        nn_net_free(net);
        put("onnx", names[how], "", 0, m.p, m.n);
        free(m.p);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    root = argv[1];
    fuzz_init();
    models();
    weights();
    checkpoints();
    cifar10();
    idx_pair("three_2x3", 3, 2, 3, 2);
    idx_pair("one_1x1", 1, 1, 1, 1);
    idx_pair("ten_4x4", 10, 4, 4, 10);
    npy_seeds();
    onnx_seeds();
    return 0;
}
