/* PyTorch interoperability, driven by tests/interop.sh (needs Debian's python3-torch).
     interop export DIR   trains a small CNN a few steps, saves DIR/nn.safetensors, the
                          inputs DIR/x.f32 and nn.h's evaluation-mode logits DIR/nn_logits.f32
     interop check DIR    loads DIR/torch.safetensors (written by PyTorch) and compares
                          its logits on DIR/x.f32 with PyTorch's DIR/torch_logits.f32 */
#define NN_IMPLEMENTATION
#include "nn.h"
#include <stdlib.h>

#define BATCH 8

static int write_floats(const char *dir, const char *name, const float *v, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, "wb")) || fwrite(v, sizeof(float), n, f) != n) { perror(path); return 1; }
    return fclose(f) != 0;
}

static int read_floats(const char *dir, const char *name, float *v, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, "rb")) || fread(v, sizeof(float), n, f) != n) { perror(path); return 1; }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    static float x[BATCH * 3 * 12 * 12], logits[BATCH * 10], theirs[BATCH * 10];
    nn_rng rng = nn_rng_new(3);
    size_t i;
    if (argc != 3) { fprintf(stderr, "usage: interop export|check DIR\n"); return 2; }
    for (i = 0; i < sizeof x / sizeof *x; i++) x[i] = nn_rng_normal(&rng, 0.0f, 1.0f);
    if (!strcmp(argv[1], "export")) {
        nn_net *net = nn_net_new(nn_shape3(3, 12, 12));
        nn_adam_desc adam = {1e-3f, 0, 0, 0, 0};
        nn_optim *opt;
        int y[BATCH], step;
        nn_add(net, nn_conv2d(8, 3, 1, 1)); nn_add(net, nn_batchnorm()); nn_add(net, nn_relu());
        nn_add(net, nn_maxpool2d(3, 2, 1));
        nn_add(net, nn_conv2d(6, 5, 2, 2)); nn_add(net, nn_leaky_relu(0.1f));
        nn_add(net, nn_avgpool2d(2, 2, 1)); nn_add(net, nn_tanh());
        nn_add(net, nn_flatten());
        nn_add(net, nn_linear(16)); nn_add(net, nn_batchnorm()); nn_add(net, nn_gelu(0));
        nn_add(net, nn_dropout(0.2f)); nn_add(net, nn_sigmoid());
        nn_add(net, nn_linear(12)); nn_add(net, nn_softplus(2.0f, 10.0f));
        nn_add(net, nn_linear(10));
        if (nn_build(net, BATCH, 5) != NN_OK || !(opt = nn_adam(net, adam))) { fprintf(stderr, "%s\n", nn_error()); return 1; }
        for (step = 0; step < 5; step++) {
            for (i = 0; i < BATCH; i++) y[i] = (int)((i + (size_t)step) % 10);
            nn_train_step(net, opt, x, y, BATCH);
        }
        nn_set_training(net, 0);
        memcpy(logits, nn_forward(net, x, BATCH), sizeof logits);
        {
            char path[512];
            snprintf(path, sizeof path, "%s/nn.safetensors", argv[2]);
            if (nn_save(net, path) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); return 1; }
        }
        nn_optim_free(opt);
        nn_net_free(net);
        return write_floats(argv[2], "x.f32", x, sizeof x / sizeof *x) ||
               write_floats(argv[2], "nn_logits.f32", logits, BATCH * 10);
    }
    if (!strcmp(argv[1], "check")) {
        char path[512];
        nn_net *net;
        const float *out;
        double worst = 0;
        snprintf(path, sizeof path, "%s/torch.safetensors", argv[2]);
        if (!(net = nn_load(path, BATCH))) { fprintf(stderr, "%s\n", nn_error()); return 1; }
        if (read_floats(argv[2], "torch_logits.f32", theirs, BATCH * 10)) return 1;
        out = nn_forward(net, x, BATCH);
        for (i = 0; i < BATCH * 10; i++) {
            double d = fabs((double)out[i] - theirs[i]);
            if (d > worst) worst = d;
        }
        printf("PyTorch model loaded in nn.h: max |logit difference| = %.3g\n", worst);
        nn_net_free(net);
        return worst <= 1e-4 ? 0 : 1;
    }
    fprintf(stderr, "usage: interop export|check DIR\n");
    return 2;
}
