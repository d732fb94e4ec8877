/* The nn.h side of tests/train_torch.py: two training steps of an architecture of
   examples/models.h (10 classes, SIZE x SIZE inputs), for PyTorch to repeat from the
   same start. nn.h builds and initialises the net (seed 7) and writes it,
   DIR/ARCH.init.safetensors; then two steps of nn_train_step (softmax cross-entropy,
   mean over the batch; SGD lr 0.1, momentum 0.9, weight decay 5e-4) on two random
   batches of 8 (DIR/ARCH.x0.npy, x1.npy: N(0, 1) inputs; y0.npy, y1.npy: labels in
   0..9 as float32), in training mode, and writes the losses (DIR/ARCH.loss.npy), the
   output of each step's Dropout layer if the net has one (DIR/ARCH.drop0.npy,
   drop1.npy: 8 x features, from which PyTorch takes nn.h's masks), the inputs of its
   Hardtanh (ReLU6) layers if it has any (DIR/ARCH.gate0.npy, gate1.npy, one after the
   other in layer order: PyTorch's ReLU6 take nn.h's side of 0 and 6) and the net
   after each step (DIR/ARCH.step1.safetensors, step2: parameters, running statistics,
   num_batches_tracked).
       Usage: train_torch ARCH SIZE DIR */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "examples/models.h"
#define NPY_IMPLEMENTATION
#include "tools/npy.h"

#include <stdlib.h>

#define BATCH 8
#define STEPS 2

static int fail(const char *what)
{
    fprintf(stderr, "train_torch: %s: %s\n", what, nn_error());
    return 1;
}

/* The inputs of every Hardtanh (ReLU6) of the last forward, one after the other in
   layer order, as DIR/ARCH.gateSTEP.npy (none: no file). */
static int write_gates(nn_net *net, const char *dir, const char *arch, int step)
{
    size_t total = 0, at = 0;
    int i, shape[1];
    float *all;
    char path[512];
    for (i = 1; i < nn_num_layers(net); i++)
        if (nn_get_layer(net, i)->desc.kind == NN_HARDTANH) total += nn_shape_size(nn_get_layer(net, i)->in) * BATCH;
    if (!total) return 0;
    if (!(all = (float *)malloc(total * sizeof(float)))) return fprintf(stderr, "train_torch: out of memory\n"), 1;
    for (i = 1; i < nn_num_layers(net); i++) {
        size_t size = nn_shape_size(nn_get_layer(net, i)->in) * BATCH;
        const float *in = nn_layer_output(net, i - 1);   /* the layer before it: its input */
        if (nn_get_layer(net, i)->desc.kind != NN_HARDTANH) continue;
        if (!in) return free(all), fail("nn_layer_output");
        memcpy(all + at, in, size * sizeof(float));
        at += size;
    }
    shape[0] = (int)total;
    snprintf(path, sizeof path, "%s/%s.gate%d.npy", dir, arch, step);
    i = npy_write(path, all, 1, shape);
    free(all);
    return i != 0 ? fprintf(stderr, "train_torch: %s\n", npy_error()), 1 : 0;
}

int main(int argc, char **argv)
{
    const model_arch *arch = argc == 4 ? model_find(argv[1]) : NULL;
    int size = argc == 4 ? atoi(argv[2]) : 0, shape[4], drop = -1, i, step;
    float *x, y_float[BATCH], losses[STEPS];
    int y[BATCH];
    char path[512];
    nn_rng rng = nn_rng_new(11);
    nn_sgd_desc sgd = {0};
    nn_optim *opt;
    nn_net *net;
    size_t count;
    if (!arch || size < 16 || size > 512) {
        fprintf(stderr, "usage: train_torch ARCH SIZE DIR (SIZE 16..512)\n");
        return 2;
    }
    shape[0] = BATCH; shape[1] = 3; shape[2] = size; shape[3] = size;
    count = (size_t)BATCH * 3 * size * size;
    if (!(x = (float *)malloc(count * sizeof(float)))) return fprintf(stderr, "train_torch: out of memory\n"), 1;
    if (!(net = arch->make(nn_shape3(3, size, size), 10)) || nn_build(net, BATCH, 7) != NN_OK) return fail(argv[1]);
    for (i = 0; i < nn_num_layers(net); i++)
        if (nn_get_layer(net, i)->desc.kind == NN_DROPOUT) drop = i;
    snprintf(path, sizeof path, "%s/%s.init.safetensors", argv[3], argv[1]);
    if (nn_save(net, path) != NN_OK) return fail(path);
    sgd.lr = 0.1f; sgd.momentum = 0.9f; sgd.weight_decay = 5e-4f;
    if (!(opt = nn_sgd(net, sgd))) return fail("nn_sgd");
    for (step = 0; step < STEPS; step++) {
        int label_shape[1] = {BATCH}, drop_shape[2];
        for (i = 0; i < (int)count; i++) x[i] = nn_rng_normal(&rng, 0.0f, 1.0f);
        for (i = 0; i < BATCH; i++) {
            y[i] = (int)(nn_rng_uniform(&rng) * 10.0f) % 10;
            y_float[i] = (float)y[i];
        }
        snprintf(path, sizeof path, "%s/%s.x%d.npy", argv[3], argv[1], step);
        if (npy_write(path, x, 4, shape) != 0) return fprintf(stderr, "train_torch: %s\n", npy_error()), 1;
        snprintf(path, sizeof path, "%s/%s.y%d.npy", argv[3], argv[1], step);
        if (npy_write(path, y_float, 1, label_shape) != 0) return fprintf(stderr, "train_torch: %s\n", npy_error()), 1;
        losses[step] = nn_train_step(net, opt, x, y, BATCH);
        if (losses[step] != losses[step]) return fail("nn_train_step");
        if (write_gates(net, argv[3], argv[1], step) != 0) return 1;
        if (drop >= 0) {   /* the Dropout's output of this step: 0 where nn.h dropped */
            const float *out = nn_layer_output(net, drop);
            if (!out) return fail("nn_layer_output");
            drop_shape[0] = BATCH;
            drop_shape[1] = (int)nn_shape_size(nn_get_layer(net, drop)->out);
            snprintf(path, sizeof path, "%s/%s.drop%d.npy", argv[3], argv[1], step);
            if (npy_write(path, out, 2, drop_shape) != 0) return fprintf(stderr, "train_torch: %s\n", npy_error()), 1;
        }
        snprintf(path, sizeof path, "%s/%s.step%d.safetensors", argv[3], argv[1], step + 1);
        if (nn_save(net, path) != NN_OK) return fail(path);
    }
    snprintf(path, sizeof path, "%s/%s.loss.npy", argv[3], argv[1]);
    shape[0] = STEPS;
    if (npy_write(path, losses, 1, shape) != 0) return fprintf(stderr, "train_torch: %s\n", npy_error()), 1;
    nn_optim_free(opt);
    nn_net_free(net);
    free(x);
    return 0;
}
