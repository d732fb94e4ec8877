/* The nn.h side of tests/models_torch.py's trained direction: builds an architecture of
   examples/models.h for 3 x 32 x 32 inputs and 10 classes, trains it three SGD steps
   (momentum 0.9, weight decay 5e-4) on a fixed random batch, so that weights, running
   statistics and num_batches_tracked are nn.h's own, and writes
   DIR/ARCH.trained.safetensors, the batch DIR/ARCH.trained_x.npy and the eval logits on
   it DIR/ARCH.trained_y.npy for PyTorch to compare with.
       Usage: models_train ARCH DIR */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "examples/models.h"
#define NPY_IMPLEMENTATION
#include "tools/npy.h"

#define BATCH 4

int main(int argc, char **argv)
{
    static float x[BATCH * 3 * 32 * 32];
    int y[BATCH], shape[4] = {BATCH, 3, 32, 32}, out_shape[2] = {BATCH, 10}, i;
    const model_arch *arch = argc == 3 ? model_find(argv[1]) : NULL;
    char path[512];
    nn_rng rng = nn_rng_new(5);
    const float *logits;
    nn_optim *opt;
    nn_net *net;
    if (!arch) {
        fprintf(stderr, "usage: models_train ARCH DIR\n");
        return 2;
    }
    for (i = 0; i < BATCH * 3 * 32 * 32; i++) x[i] = nn_rng_normal(&rng, 0.0f, 1.0f);
    for (i = 0; i < BATCH; i++) y[i] = i % 10;
    if (!(net = arch->make(nn_shape3(3, 32, 32), 10)) || nn_build(net, BATCH, 11) != NN_OK ||
        !(opt = nn_sgd(net, (nn_sgd_desc){ .lr = 0.01f, .momentum = 0.9f, .weight_decay = 5e-4f }))) {
        fprintf(stderr, "models_train: %s: %s\n", argv[1], nn_error());
        return 1;
    }
    for (i = 0; i < 3; i++) {
        float loss = nn_train_step(net, opt, x, y, BATCH);
        if (loss != loss) {
            fprintf(stderr, "models_train: step %d: %s\n", i, nn_error());
            return 1;
        }
    }
    nn_set_training(net, 0);
    logits = nn_forward(net, x, BATCH);
    snprintf(path, sizeof path, "%s/%s.trained.safetensors", argv[2], argv[1]);
    if (!logits || nn_save(net, path) != NN_OK) {
        fprintf(stderr, "models_train: %s\n", nn_error());
        return 1;
    }
    snprintf(path, sizeof path, "%s/%s.trained_x.npy", argv[2], argv[1]);
    if (npy_write(path, x, 4, shape) != 0) return fprintf(stderr, "models_train: %s\n", npy_error()), 1;
    snprintf(path, sizeof path, "%s/%s.trained_y.npy", argv[2], argv[1]);
    if (npy_write(path, logits, 2, out_shape) != 0) return fprintf(stderr, "models_train: %s\n", npy_error()), 1;
    nn_optim_free(opt);
    nn_net_free(net);
    return 0;
}
