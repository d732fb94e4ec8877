/* Training and inference throughput of whole networks (issue: on par with PyTorch).
   make bench-train runs this and bench/pytorch_ref.py alternately; by hand:

     build/bench_train --model vgg|mlp|resnet18_cifar|mobilenet_v2 --mode train|infer
                       --batch B --threads T [--iters N]
     build/bench_train --model vgg --profile [--batch B --threads T]

   One case per process, so that the peak resident memory printed is the case's own:
     bench nn <mode> <model> batch=<b> threads=<t> median=<images/s> best=<images/s> peak_rss_mb=<MB>
   The data are random (throughput does not depend on the values): inputs N(0, 50^2) like
   mean-subtracted pixels (N(0, 1) like normalised ones for ResNet-18 and MobileNetV2),
   labels uniform. Training is nn_train_step (forward, softmax cross-entropy, backward,
   optimiser update): VGG with Adam at lr 1e-4, the MLP (E1) with SGD at lr 0.002,
   ResNet-18 (CIFAR, 32 x 32) and MobileNetV2 (224 x 224) with examples/resnet.c's SGD
   (lr 0.1, momentum 0.9, weight decay 5e-4). Inference is nn_forward in evaluation mode on a net made
   inference-only (nn_inference_only: no gradients, two shared output buffers).
   --profile times every layer's forward and backward in a training step and prints each
   one's share of the step (the loss and the optimiser update as their own rows). */
#define _POSIX_C_SOURCE 200809L
#define NN_IMPLEMENTATION
#include "nn.h"
#include "../examples/common.h"
#include "../examples/models.h"
#include <sys/resource.h>

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double peak_rss_mb(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024.0;   /* Linux reports kilobytes */
}

/* Per-layer timing of one training step: the loop of nn_forward / nn_backward with a
   clock around every layer. */
static void profile_step(nn_net *net, nn_optim *opt, const float *x, const int *y, int n,
                         double *forward, double *backward, double *loss_time, double *update)
{
    const float *out;
    int i, lowest, classes = (int)nn_shape_size(nn_output_shape(net));
    double t;
    net->x = x;
    net->tp.ptr[NN__T_INPUT] = (float *)x;
    net->batch = n;
    net->train_batches++;
    for (i = 0; i < net->num_layers; i++) {   /* a fused ReLU's row shows 0 (its BatchNorm does it) */
        t = now_seconds();
        nn__forward_layer(net, i);
        forward[i] += now_seconds() - t;
    }
    out = nn__t(net, net->plan[net->num_layers - 1].y);
    t = now_seconds();
    nn_softmax_cross_entropy(out, y, n, classes, net->loss_grad);
    *loss_time += now_seconds() - t;
    net->tp.ptr[NN__T_DOUT] = net->loss_grad;
    lowest = nn__lowest_trained(net);
    for (i = net->num_layers - 1; i >= lowest; i--) {   /* as nn_backward */
        t = now_seconds();
        nn__backward_layer(net, i, i == lowest);
        backward[i] += now_seconds() - t;
    }
    t = now_seconds();
    nn_optim_step(opt);
    *update += now_seconds() - t;
}

static void print_profile(nn_net *net, nn_optim *opt, const float *x, const int *y, int n, int steps)
{
    double forward[256] = {0}, backward[256] = {0}, loss_time = 0, update = 0, total = 0;
    double by_kind[NN_LAYER_KIND_COUNT] = {0};
    int i, s;
    for (s = 0; s < 2; s++) nn_train_step(net, opt, x, y, n);   /* warm-up */
    for (s = 0; s < steps; s++) profile_step(net, opt, x, y, n, forward, backward, &loss_time, &update);
    for (i = 0; i < net->num_layers; i++) total += forward[i] + backward[i];
    total += loss_time + update;
    printf("profile of a training step, batch %d, %d threads, %s kernels: %.1f ms per step "
           "(%.1f images/s)\n", n, nn_get_threads(), nn_simd_name(), 1e3 * total / steps, n * steps / total);
    printf("  %-3s %-12s %-14s %9s %9s %7s\n", "#", "layer", "output", "fwd ms", "bwd ms", "share");
    for (i = 0; i < net->num_layers; i++) {
        const nn_layer *L = &net->layers[i];
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", L->out.c, L->out.h, L->out.w);
        printf("  %-3d %-12s %-14s %9.2f %9.2f %6.1f%%\n", i, nn_layer_name(L->desc.kind), shape,
               1e3 * forward[i] / steps, 1e3 * backward[i] / steps, 100 * (forward[i] + backward[i]) / total);
        by_kind[L->desc.kind] += forward[i] + backward[i];
    }
    printf("  %-3s %-12s %-14s %9.2f %9s %6.1f%%\n", "", "loss", "", 1e3 * loss_time / steps, "", 100 * loss_time / total);
    printf("  %-3s %-12s %-14s %9.2f %9s %6.1f%%\n", "", "optimiser", "", 1e3 * update / steps, "", 100 * update / total);
    printf("by layer kind:");
    for (i = 1; i < NN_LAYER_KIND_COUNT; i++)
        if (by_kind[i] > 0) printf("  %s %.1f%%", nn_layer_name((nn_layer_kind)i), 100 * by_kind[i] / total);
    printf("\n");
}

int main(int argc, char **argv)
{
    const char *program = "bench_train", *model = "vgg", *mode = "train";
    int batch = 0, threads = 1, iters = 0, profile = 0, i, s;
    nn_net *net;
    nn_optim *opt;
    nn_shape input = nn_shape3(3, 32, 32);
    size_t size;
    float *x, scale;
    int *y, big;
    double times[1000];
    nn_rng rng = nn_rng_new(7);

    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--profile")) { profile = 1; continue; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "model")) model = value;
        else if (!strcmp(flag, "mode")) mode = value;
        else if (!strcmp(flag, "batch")) batch = (int)flag_long(program, flag, value, 1, 4096);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 1, 256);
        else if (!strcmp(flag, "iters")) iters = (int)flag_long(program, flag, value, 1, 1000);
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    if (strcmp(model, "vgg") && strcmp(model, "mlp") && strcmp(model, "resnet18_cifar") && strcmp(model, "mobilenet_v2"))
        usage_error(program, "--model must be vgg, mlp, resnet18_cifar or mobilenet_v2, not '%s'", model);
    if (strcmp(mode, "train") && strcmp(mode, "infer")) usage_error(program, "--mode must be train or infer, not '%s'", mode);
    big = !strcmp(model, "resnet18_cifar") || !strcmp(model, "mobilenet_v2");
    if (!batch) batch = !strcmp(model, "mlp") ? 200 : !strcmp(model, "resnet18_cifar") ? 128 : 32;
    if (!iters) iters = !strcmp(model, "mlp") ? 200 : batch >= 128 ? 5 : batch == 1 ? 50 : big ? 10 : 15;
    nn_set_threads(threads);

    if (!strcmp(model, "mobilenet_v2")) input = nn_shape3(3, 224, 224);
    if (!strcmp(model, "vgg")) net = vgg_convnet(input);
    else if (!strcmp(model, "mlp")) { int hidden = 100; net = mlp_net(input, &hidden, 1, 0.02f); }
    else net = !strcmp(model, "resnet18_cifar") ? resnet18_cifar(input, 10) : mobilenet_v2(input, 10);
    if (!net || nn_build(net, batch, 1) != NN_OK) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
    if (big) {
        nn_sgd_desc sgd = {0};
        sgd.lr = 0.1f; sgd.momentum = 0.9f; sgd.weight_decay = 5e-4f;
        opt = nn_sgd(net, sgd);
    } else if (!strcmp(model, "vgg")) {
        nn_adam_desc adam = {0};
        adam.lr = 1e-4f;
        opt = nn_adam(net, adam);
    } else {
        nn_sgd_desc sgd = {0};
        sgd.lr = 0.002f;
        nn_init_weights(net, NN_INIT_NORMAL, 0.0f, 1e-4f, 0.0f, NN_LINEAR);
        opt = nn_sgd(net, sgd);
    }
    size = nn_shape_size(input);
    scale = big ? 1.0f : 50.0f;
    x = (float *)malloc((size_t)batch * size * sizeof(float));
    y = (int *)malloc((size_t)batch * sizeof(int));
    if (!opt || !x || !y) { fprintf(stderr, "%s: out of memory\n", program); return 1; }
    for (i = 0; i < batch * (int)size; i++) x[i] = nn_rng_normal(&rng, 0.0f, scale);
    for (i = 0; i < batch; i++) y[i] = (int)nn_rng_below(&rng, 10);

    if (profile) {
        print_profile(net, opt, x, y, batch, iters);
        return 0;
    }
    nn_set_training(net, !strcmp(mode, "train"));
    if (!strcmp(mode, "infer") && nn_inference_only(net) != NN_OK) {
        fprintf(stderr, "%s: %s\n", program, nn_error());
        return 1;
    }
    for (s = -3; s < iters; s++) {   /* three warm-up rounds */
        double t = now_seconds();
        if (!strcmp(mode, "train") ? !isfinite(nn_train_step(net, opt, x, y, batch)) : !nn_forward(net, x, batch)) {
            fprintf(stderr, "%s: %s\n", program, nn_error());   /* a failed step is no measurement */
            return 1;
        }
        if (s >= 0) times[s] = now_seconds() - t;
    }
    qsort(times, (size_t)iters, sizeof(double), compare_doubles);
    printf("bench nn %s %s batch=%d threads=%d median=%.1f best=%.1f peak_rss_mb=%.0f\n", mode, model, batch,
           threads, batch / times[iters / 2], batch / times[0], peak_rss_mb());
    free(x); free(y);
    nn_optim_free(opt);
    nn_net_free(net);
    return 0;
}
