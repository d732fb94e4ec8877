/* convnet.c - the VGG-style ConvNet of the assignment on CIFAR-10 (experiment E3).

   Build:  cc -O2 -I. -I/usr/include/stb examples/convnet.c -o convnet -lm -lpthread
   Run:    ./convnet --data_dir data/cifar-10-batches-bin        (E3: about 0.75)

   Inputs are pixels 0..255 minus the training set's mean image, N x 3 x 32 x 32; the
   net is vgg_convnet() of examples/models.h (five stages of Conv 3x3 -> BatchNorm -> ReLU
   blocks and 3x3/2 max pooling, 32 -> 1 pixels, then Linear(512 -> 10)).
   PyTorch's default initialisation, Adam (lr 1e-4), batch 32, 5,000 steps, a test
   evaluation every 500. Writes OUT/convnet.csv, OUT/convnet.png, OUT/convnet.safetensors. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, mkdir */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "common.h"
#include "report.h"
#include "models.h"

static void help(void)
{
    printf("usage: convnet [flags]\n"
           "  --learning_rate F   (1e-4)\n"
           "  --max_steps N       (5000)\n"
           "  --batch_size N      (32)\n"
           "  --eval_freq N       test evaluation every N steps (500)\n"
           "  --data_dir DIR      CIFAR-10 binary batches (data/cifar-10-batches-bin)\n"
           "  --optimizer NAME    adam, adamw, adamax or sgd (adam)\n"
           "  --momentum F        SGD momentum (0.9)\n"
           "  --weight_decay F    (0)\n"
           "  --seed N            (42)\n"
           "  --threads N         (0: all cores)\n"
           "  --out DIR           where the CSV, plot and model go (results)\n");
}

int main(int argc, char **argv)
{
    const char *program = "convnet", *data_dir = "data/cifar-10-batches-bin", *out_dir = "results";
    const char *optimizer = "adam";
    int max_steps = 5000, batch = 32, eval_freq = 500, threads = 0, i, step;
    float lr = 1e-4f, momentum = 0.9f, weight_decay = 0.0f;
    unsigned long seed = 42;
    nn_dataset train, test;
    nn_net *net;
    nn_optim *opt;
    float *mean, *x;
    int *y;
    curves log;
    char path[1024];
    double t0, window_loss = 0, window_correct = 0;
    int window_n = 0, window_steps = 0;
    float test_loss = 0, test_acc = 0;

    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { help(); return 0; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "learning_rate")) lr = flag_float(program, flag, value, 1e-12, 1e3);
        else if (!strcmp(flag, "max_steps")) max_steps = (int)flag_long(program, flag, value, 1, 100000000);
        else if (!strcmp(flag, "batch_size")) batch = (int)flag_long(program, flag, value, 1, 4096);
        else if (!strcmp(flag, "eval_freq")) eval_freq = (int)flag_long(program, flag, value, 1, 100000000);
        else if (!strcmp(flag, "data_dir")) data_dir = value;
        else if (!strcmp(flag, "optimizer")) optimizer = value;
        else if (!strcmp(flag, "momentum")) momentum = flag_float(program, flag, value, 0, 1);
        else if (!strcmp(flag, "weight_decay")) weight_decay = flag_float(program, flag, value, 0, 10);
        else if (!strcmp(flag, "seed")) seed = (unsigned long)flag_long(program, flag, value, 0, 2147483647L);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 0, 256);
        else if (!strcmp(flag, "out")) out_dir = value;
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    if (strcmp(optimizer, "sgd") && strcmp(optimizer, "adam") && strcmp(optimizer, "adamw") && strcmp(optimizer, "adamax"))
        usage_error(program, "--optimizer must be sgd, adam, adamw or adamax, not '%s'", optimizer);
    nn_set_threads(threads);

    if (nn_cifar10_load(data_dir, &train, &test) != NN_OK) {
        fprintf(stderr, "%s: %s\n(run `make data` to get CIFAR-10)\n", program, nn_error());
        return 1;
    }
    mean = (float *)malloc(nn_shape_size(train.shape) * sizeof(float));
    if (!mean || nn_mean_image(&train, mean) != NN_OK) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
    nn_subtract_image(&train, mean);
    nn_subtract_image(&test, mean);

    net = vgg_convnet(train.shape);
    if (nn_build(net, batch, seed) != NN_OK) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
    nn_set_preprocess_mean_image(net, mean);
    nn_set_class_names(net, cifar10_classes, 10);
    {
        nn_adam_desc adam = {0};
        nn_sgd_desc sgd = {0};
        adam.lr = sgd.lr = lr;
        adam.weight_decay = sgd.weight_decay = weight_decay;
        sgd.momentum = momentum;
        opt = !strcmp(optimizer, "sgd") ? nn_sgd(net, sgd) : !strcmp(optimizer, "adam") ? nn_adam(net, adam)
            : !strcmp(optimizer, "adamw") ? nn_adamw(net, adam) : nn_adamax(net, adam);
        if (!opt) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
    }
    if (ensure_dir(out_dir)) return 1;
    snprintf(path, sizeof path, "%s/convnet.csv", out_dir);
    if (curves_open(&log, path, max_steps / eval_freq + 2)) return 1;

    printf("VGG ConvNet, %zu parameters, %s lr %g, batch %d, %d steps, %s kernels, %d threads\n",
           nn_num_param_scalars(net), optimizer, lr, batch, max_steps, nn_simd_name(), nn_get_threads());
    x = (float *)malloc((size_t)batch * nn_shape_size(train.shape) * sizeof(float));
    y = (int *)malloc((size_t)batch * sizeof(int));
    if (!x || !y) { fprintf(stderr, "%s: out of memory\n", program); return 1; }
    nn_batch_start(&train, seed);
    t0 = now_seconds();
    for (step = 1; step <= max_steps; step++) {
        const float *logits;
        float loss;
        nn_next_batch(&train, batch, x, y);
        loss = nn_train_step(net, opt, x, y, batch);
        if (!isfinite(loss)) { fprintf(stderr, "\n%s: %s\n", program, nn_error()); return 1; }
        logits = nn_layer_output(net, nn_num_layers(net) - 1);
        for (i = 0; i < batch; i++) window_correct += nn_argmax(logits + i * 10, 10) == y[i];
        window_loss += loss; window_n += batch; window_steps++;
        if (step % 5 == 0 || step == max_steps) {
            double elapsed = now_seconds() - t0;
            progress(step, max_steps, (float)(window_loss / window_steps), (float)(window_correct / window_n),
                     step * (double)batch / elapsed, elapsed);
        }
        if (step % eval_freq == 0 || step == max_steps) {
            float train_loss = (float)(window_loss / window_steps), train_acc = (float)(window_correct / window_n);
            nn_evaluate(net, &test, &test_loss, &test_acc, NULL);
            fprintf(stderr, "\r%*s\r", 75, "");
            printf("step %5d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  (%.1fs)\n",
                   step, train_loss, train_acc, test_loss, test_acc, now_seconds() - t0);
            fflush(stdout);
            curves_add(&log, step, train_loss, train_acc, test_loss, test_acc);
            window_loss = window_correct = 0; window_n = window_steps = 0;
        }
    }
    report_run(program, net, &test, &log, out_dir, "convnet", "VGG ConvNet on CIFAR-10", max_steps, now_seconds() - t0);
    curves_close(&log);
    free(x); free(y); free(mean);
    nn_optim_free(opt);
    nn_net_free(net);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
