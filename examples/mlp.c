/* mlp.c - the multi-layer perceptron of the assignment on CIFAR-10 (experiments E1, E2).

   Build:  cc -O2 -I. -I/usr/include/stb examples/mlp.c -o mlp -lm -lpthread
   Run:    ./mlp --data_dir data/cifar-10-batches-bin           (E1: about 0.46)
           ./mlp --dnn_hidden_units 100,100 --learning_rate 0.008 --neg_slope 0.05 \
                 --batch_size 400 --max_steps 5000                  (E2)

   Inputs are pixels 0..255 minus the training set's mean image, flattened to 3,072.
   The net: [Linear -> (BatchNorm) -> LeakyReLU -> (Dropout)] per hidden layer, then
   Linear(10), softmax cross-entropy. Weights start from N(0, 1e-4^2) and biases at 0,
   as in the assignment's NumPy part (--init default gives PyTorch's initialisation).
   Writes OUT/mlp.csv (the curves), OUT/mlp.png (their plot) and OUT/mlp.safetensors. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, mkdir */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "common.h"
#include "report.h"

#define MAX_HIDDEN 16

static void help(void)
{
    printf("usage: mlp [flags]\n"
           "  --dnn_hidden_units LIST  hidden layer sizes, comma-separated (100)\n"
           "  --learning_rate F        (0.002)\n"
           "  --lr_schedule NAME       none, step (x lr_gamma every lr_step_size steps)\n"
           "                           or cosine (to 0 at max_steps) (none)\n"
           "  --lr_step_size N         (0: a third of max_steps)\n"
           "  --lr_gamma F             (0.1)\n"
           "  --max_steps N            (1500)\n"
           "  --batch_size N           (200)\n"
           "  --eval_freq N            test evaluation every N steps (100)\n"
           "  --neg_slope F            LeakyReLU negative slope (0.02)\n"
           "  --data_dir DIR           CIFAR-10 binary batches (data/cifar-10-batches-bin)\n"
           "  --optimizer NAME         sgd, adam, adamw or adamax (sgd)\n"
           "  --momentum F             SGD momentum (0)\n"
           "  --weight_decay F         (0)\n"
           "  --batchnorm              BatchNorm after every hidden Linear\n"
           "  --dropout F              dropout after every hidden activation (0)\n"
           "  --init NAME              normal (N(0, 1e-4), biases 0) or default (PyTorch) (normal)\n"
           "  --seed N                 (42)\n"
           "  --threads N              (0: all cores)\n"
           "  --out DIR                where the CSV, plot and model go (results)\n");
}

int main(int argc, char **argv)
{
    const char *program = "mlp", *data_dir = "data/cifar-10-batches-bin", *out_dir = "results";
    const char *optimizer = "sgd", *init = "normal", *schedule = "none";
    int hidden[MAX_HIDDEN] = {100}, num_hidden = 1, max_steps = 1500, batch = 200, eval_freq = 100;
    int batchnorm = 0, threads = 0, i, step;
    long lr_step_size = 0;
    float lr_gamma = 0.1f;
    float lr = 0.002f, neg_slope = 0.02f, momentum = 0.0f, weight_decay = 0.0f, dropout = 0.0f;
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
        if (!strcmp(flag, "--batchnorm")) { batchnorm = 1; continue; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "dnn_hidden_units")) num_hidden = flag_int_list(program, flag, value, hidden, MAX_HIDDEN);
        else if (!strcmp(flag, "learning_rate")) lr = flag_float(program, flag, value, 1e-12, 1e3);
        else if (!strcmp(flag, "lr_schedule")) schedule = value;
        else if (!strcmp(flag, "lr_step_size")) lr_step_size = flag_long(program, flag, value, 0, 100000000);
        else if (!strcmp(flag, "lr_gamma")) lr_gamma = flag_float(program, flag, value, 0, 1);
        else if (!strcmp(flag, "max_steps")) max_steps = (int)flag_long(program, flag, value, 1, 100000000);
        else if (!strcmp(flag, "batch_size")) batch = (int)flag_long(program, flag, value, 1, 50000);
        else if (!strcmp(flag, "eval_freq")) eval_freq = (int)flag_long(program, flag, value, 1, 100000000);
        else if (!strcmp(flag, "neg_slope")) neg_slope = flag_float(program, flag, value, 0, 1);
        else if (!strcmp(flag, "data_dir")) data_dir = value;
        else if (!strcmp(flag, "optimizer")) optimizer = value;
        else if (!strcmp(flag, "momentum")) momentum = flag_float(program, flag, value, 0, 1);
        else if (!strcmp(flag, "weight_decay")) weight_decay = flag_float(program, flag, value, 0, 10);
        else if (!strcmp(flag, "dropout")) dropout = flag_float(program, flag, value, 0, 0.99);
        else if (!strcmp(flag, "init")) init = value;
        else if (!strcmp(flag, "seed")) seed = (unsigned long)flag_long(program, flag, value, 0, 2147483647L);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 0, 256);
        else if (!strcmp(flag, "out")) out_dir = value;
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    if (strcmp(optimizer, "sgd") && strcmp(optimizer, "adam") && strcmp(optimizer, "adamw") && strcmp(optimizer, "adamax"))
        usage_error(program, "--optimizer must be sgd, adam, adamw or adamax, not '%s'", optimizer);
    if (strcmp(schedule, "none") && strcmp(schedule, "step") && strcmp(schedule, "cosine"))
        usage_error(program, "--lr_schedule must be none, step or cosine, not '%s'", schedule);
    if (lr_step_size == 0) lr_step_size = max_steps / 3 > 0 ? max_steps / 3 : 1;
    if (strcmp(init, "normal") && strcmp(init, "default"))
        usage_error(program, "--init must be normal or default, not '%s'", init);
    nn_set_threads(threads);

    if (nn_cifar10_load(data_dir, &train, &test) != NN_OK) {
        fprintf(stderr, "%s: %s\n(run `make data` to get CIFAR-10)\n", program, nn_error());
        return 1;
    }
    mean = (float *)malloc(nn_shape_size(train.shape) * sizeof(float));
    if (!mean || nn_mean_image(&train, mean) != NN_OK) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
    nn_subtract_image(&train, mean);
    nn_subtract_image(&test, mean);

    net = nn_net_new(train.shape);
    nn_add(net, nn_flatten());
    for (i = 0; i < num_hidden; i++) {
        nn_add(net, nn_linear(hidden[i]));
        if (batchnorm) nn_add(net, nn_batchnorm());
        nn_add(net, nn_leaky_relu(neg_slope));
        if (dropout > 0) nn_add(net, nn_dropout(dropout));
    }
    nn_add(net, nn_linear(10));
    if (nn_build(net, batch, seed) != NN_OK) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
    if (!strcmp(init, "normal")) nn_init_weights(net, NN_INIT_NORMAL, 0.0f, 1e-4f, 0.0f, NN_LINEAR);
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
    snprintf(path, sizeof path, "%s/mlp.csv", out_dir);
    if (curves_open(&log, path, max_steps / eval_freq + 2)) return 1;

    printf("MLP 3072-");
    for (i = 0; i < num_hidden; i++) printf("%d-", hidden[i]);
    printf("10, %zu parameters, %s lr %g, batch %d, %d steps, %s kernels, %d threads\n",
           nn_num_param_scalars(net), optimizer, lr, batch, max_steps, nn_simd_name(), nn_get_threads());
    if (!strcmp(schedule, "step"))
        printf("learning rate x %g every %ld steps\n", lr_gamma, lr_step_size);
    else if (!strcmp(schedule, "cosine"))
        printf("learning rate: cosine from %g to 0 over %d steps\n", lr, max_steps);
    x = (float *)malloc((size_t)batch * nn_shape_size(train.shape) * sizeof(float));
    y = (int *)malloc((size_t)batch * sizeof(int));
    nn_batch_start(&train, seed);
    t0 = now_seconds();
    for (step = 1; step <= max_steps; step++) {
        const float *logits;
        float loss;
        nn_next_batch(&train, batch, x, y);
        if (!strcmp(schedule, "step"))
            nn_optim_set_lr(opt, nn_lr_step_decay(lr, nn_optim_steps(opt), lr_step_size, lr_gamma));
        else if (!strcmp(schedule, "cosine"))
            nn_optim_set_lr(opt, nn_lr_cosine(lr, nn_optim_steps(opt), max_steps, 0.0f));
        loss = nn_train_step(net, opt, x, y, batch);
        if (!isfinite(loss)) { fprintf(stderr, "\n%s: %s\n", program, nn_error()); return 1; }
        logits = nn_layer_output(net, nn_num_layers(net) - 1);
        for (i = 0; i < batch; i++) window_correct += nn_argmax(logits + i * 10, 10) == y[i];
        window_loss += loss; window_n += batch; window_steps++;
        if (step % 10 == 0 || step == max_steps) {
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
    report_run(program, net, &test, &log, out_dir, "mlp", "MLP on CIFAR-10", max_steps, now_seconds() - t0);
    curves_close(&log);
    free(x); free(y); free(mean);
    nn_optim_free(opt);
    nn_net_free(net);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
