/* speedrun.c - the airbench94 net of examples/speedrun.c, timed (make bench-speedrun).

   build/bench_speedrun --steps N [--threads T]
       N training steps of the recipe (batch 1024 of real CIFAR-10 with the alternating
       flip and reflected translation, label smoothing, Nesterov SGD with the parameter
       groups and the triangular schedule, Lookahead every 5 steps) after one warm-up step;
       prints `nn steps=N seconds=S epoch_seconds=E images_per_s=I` with E = S x 48 / N,
       and each step's time on stderr (`step K S s`, step 0 the warm-up).
   build/bench_speedrun --profile N [--threads T]
       one warm-up step, then N steps timed layer by layer (forward, backward), the loss
       and the optimiser; prints the mean milliseconds per step of each, and each layer's
       GFLOP/s where it has multiply-adds (2 x multiply-adds / time).
   Flags: --batch (1024), --data_dir, --seed, --winograd (0: where it pays, -1: never,
   1: wherever it applies; for measuring). The example is compiled in with its main
   renamed, so the net and its initialisation are the example's own. */
#define main speedrun_main
#include "../examples/speedrun.c"
#undef main

/* Multiply-adds of layer L's forward per image (its backward: about 2x for a layer with
   weights, the weight gradient and the input gradient; 1x where the input gradient is
   not needed). 0 for a layer without weights. */
static double layer_macs(const nn_layer *L)
{
    if (L->desc.kind == NN_CONV2D)
        return (double)nn_shape_size(L->out) * L->in.c * L->desc.kernel_h * L->desc.kernel_w;
    if (L->desc.kind == NN_LINEAR) return (double)nn_shape_size(L->in) * nn_shape_size(L->out);
    return 0.0;
}

static void profile(nn_net *net, nn_optim *opt, nn_dataset *train, float *x, int *y, int batch, int steps)
{
    int layers = nn_num_layers(net), i, s, lowest;
    double *fw = (double *)calloc((size_t)layers, sizeof(double));
    double *bw = (double *)calloc((size_t)layers, sizeof(double));
    double loss_t = 0.0, opt_t = 0.0, total = 0.0, data_t = 0.0, t, flops = 0.0;
    if (!fw || !bw) { fprintf(stderr, "out of memory\n"); exit(1); }
    for (s = -1; s < steps; s++) {   /* step -1 warms up */
        int on = s >= 0;
        t = now_seconds();
        nn_next_batch(train, batch, x, y);
        if (on) data_t += now_seconds() - t;
        nn__optim_buffers(opt, 0);
        net->x = x;
        net->tp.ptr[NN__T_INPUT] = x;
        net->batch = batch;
        net->train_batches += net->training;
        for (i = 0; i < layers; i++) {
            t = now_seconds();
            nn__forward_layer(net, i);
            if (on) fw[i] += now_seconds() - t;
        }
        t = now_seconds();
        nn_softmax_cross_entropy_smooth(nn__t(net, net->plan[layers - 1].y), y, batch, 10, net->label_smoothing,
                                        net->loss_grad);
        if (on) loss_t += now_seconds() - t;
        net->tp.ptr[NN__T_DOUT] = net->loss_grad;
        lowest = nn__lowest_trained(net);
        for (i = layers - 1; i >= lowest; i--) {
            t = now_seconds();
            nn__backward_layer(net, i, i == lowest);
            if (on) bw[i] += now_seconds() - t;
        }
        net->backward_done = 1;
        t = now_seconds();
        if (nn__optim_apply(opt) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
        if (on) opt_t += now_seconds() - t;
    }
    printf("per-layer profile of one training step: batch %d, %d threads, %s kernels, mean of %d steps (ms)\n",
           batch, nn_get_threads(), nn_simd_name(), steps);
    printf("%-3s %-22s %-12s %9s %9s %8s\n", "#", "layer", "output", "forward", "backward", "GFLOP/s");
    for (i = 0; i < layers; i++) {
        const nn_layer *L = nn_get_layer(net, i);
        double macs = layer_macs(L) * batch, f = fw[i] / steps, b = bw[i] / steps;
        char name[64], shape[32];
        /* the weight gradient always (unless frozen), the input gradient above `lowest` */
        double work = macs * (1.0 + (L->weight && !L->weight->options.frozen) + (i > lowest));
        if (L->desc.kind == NN_CONV2D)
            snprintf(name, sizeof name, "Conv2d %dx%d %d->%d", L->desc.kernel_h, L->desc.kernel_w, L->in.c, L->out.c);
        else snprintf(name, sizeof name, "%s", nn_layer_name(L->desc.kind));
        snprintf(shape, sizeof shape, "%dx%dx%d", L->out.c, L->out.h, L->out.w);
        printf("%-3d %-22s %-12s %9.1f %9.1f", i, name, shape, f * 1e3, b * 1e3);
        if (macs > 0) printf(" %8.1f", 2.0 * work / (f + b) * 1e-9);
        printf("\n");
        total += f + b;
        flops += 2.0 * work;
    }
    total += (loss_t + opt_t + data_t) / steps;
    printf("    %-35s %9.1f\n", "loss (label smoothing 0.2)", loss_t / steps * 1e3);
    printf("    %-35s %9.1f\n", "optimiser (Nesterov SGD)", opt_t / steps * 1e3);
    printf("    %-35s %9.1f\n", "batch (flip, translate)", data_t / steps * 1e3);
    printf("    %-35s %9.1f  (%.0f images/s, %.1f GFLOP/s overall)\n", "step", total * 1e3, batch / total,
           flops / total * 1e-9);
    free(fw);
    free(bw);
}

int main(int argc, char **argv)
{
    const char *program = "bench_speedrun", *data_dir = "data/cifar-10-batches-bin";
    int batch = 1024, threads = 1, steps = 3, prof = 0, i, s, total = 476, step;
    unsigned long seed = 42;
    float mean[3], std[3];
    double t0, seconds;
    nn_dataset train, test;
    recipe r;
    float *x;
    int *y;
    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "steps")) steps = (int)flag_long(program, flag, value, 1, 10000);
        else if (!strcmp(flag, "profile")) { prof = 1; steps = (int)flag_long(program, flag, value, 1, 10000); }
        else if (!strcmp(flag, "batch")) batch = (int)flag_long(program, flag, value, 1, 4096);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 0, 256);
        else if (!strcmp(flag, "seed")) seed = (unsigned long)flag_long(program, flag, value, 0, 2147483647L);
        else if (!strcmp(flag, "data_dir")) data_dir = value;
        else if (!strcmp(flag, "winograd")) nn__wino_mode = (int)flag_long(program, flag, value, -1, 1);
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    nn_set_threads(threads);
    if (nn_cifar10_load(data_dir, &train, &test) != NN_OK) return fail(program);
    for (i = 0; i < 3; i++) { mean[i] = cifar_mean[i] * 255.0f; std[i] = cifar_std[i] * 255.0f; }
    if (nn_normalize_channels(&train, mean, std) != NN_OK) return fail(program);
    if (recipe_open(&r, &train, batch, seed, total) != NN_OK) return fail(program);
    x = (float *)malloc((size_t)batch * nn_shape_size(train.shape) * sizeof(float));
    y = (int *)malloc((size_t)batch * sizeof(int));
    if (!x || !y) { fprintf(stderr, "%s: out of memory\n", program); return 1; }
    if (prof) {
        profile(r.net, r.opt, &train, x, y, batch, steps);
    } else {
        t0 = 0.0;
        for (step = 0; step <= steps; step++) {   /* step 0 warms up */
            if (step == 1) t0 = now_seconds();
            double ts = now_seconds();
            nn_next_batch(&train, batch, x, y);
            if (!isfinite(recipe_step(&r, step, x, y, batch))) return fail(program);
            fprintf(stderr, "step %d %.3f s\n", step, now_seconds() - ts);
        }
        seconds = now_seconds() - t0;
        s = train.n / batch;
        printf("nn steps=%d seconds=%.2f epoch_seconds=%.1f images_per_s=%.1f threads=%d\n", steps, seconds,
               seconds * s / steps, (double)steps * batch / seconds, nn_get_threads());
    }
    free(x); free(y);
    recipe_close(&r);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
