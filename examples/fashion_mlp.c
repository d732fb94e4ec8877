/* fashion_mlp.c - one-hidden-layer MLP on Fashion-MNIST, Sigmoid against ReLU (E5).

   Build:  cc -O2 -I. -I/usr/include/stb examples/fashion_mlp.c -o fashion_mlp -lm -lpthread
   Run:    ./fashion_mlp --threads 1          (both activations, 10 epochs, a table)
   Data:   `make fashion-data` unpacks Debian's dataset-fashion-mnist into data/fashion-mnist.

   The net: 784 -> Linear(128) -> Sigmoid or ReLU -> Linear(10), softmax cross-entropy,
   PyTorch's default initialisation (the same initial weights for both activations, since
   they share the seed), plain SGD at learning rate 0.1, batch 128, 10 epochs. Pixels are
   scaled to 0..1. An epoch is every training image once, in a fresh shuffled order (the
   same order for both activations); its last batch takes the 96 images left over. As in
   the source (001 Q9, on MNIST), the 10,000 test images serve as the validation set and
   are evaluated after every epoch.

   Writes OUT/fashion_mlp_<activation>.csv (the curves per epoch) and .safetensors (the
   model), and OUT/fashion_mlp.png with the curves of both runs on one plot. Prints both
   accuracies per epoch side by side, then how many epochs ReLU finished ahead. The last
   line is the result line of the ReLU run (of the one run with --activation). */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, mkdir */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "common.h"
#include "plot.h"

#define MAX_EPOCHS 1000

static const char *const fashion_classes[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
};

enum { ACT_SIGMOID, ACT_RELU, NUM_ACTS };
static const char *const act_names[NUM_ACTS] = {"sigmoid", "relu"};

static void help(void)
{
    printf("usage: fashion_mlp [flags]\n"
           "  --activation NAME   sigmoid, relu or both (both)\n"
           "  --hidden N          hidden units (128)\n"
           "  --optimizer NAME    sgd or adam (sgd)\n"
           "  --learning_rate F   (sgd: 0.1, adam: 0.001)\n"
           "  --momentum F        SGD momentum (0)\n"
           "  --epochs N          (10)\n"
           "  --batch_size N      (128)\n"
           "  --data_dir DIR      the four unpacked IDX files (data/fashion-mnist)\n"
           "  --seed N            initialisation and batch order (42)\n"
           "  --threads N         (0: all cores)\n"
           "  --out DIR           where the CSVs, plot and models go (results)\n");
}

/* One row per epoch. */
typedef struct history {
    int   n;
    float epoch[MAX_EPOCHS], train_loss[MAX_EPOCHS], train_acc[MAX_EPOCHS];
    float test_loss[MAX_EPOCHS], test_acc[MAX_EPOCHS];
    long  steps;
    double seconds;
} history;

typedef struct config {
    const char *program, *out_dir, *optimizer;
    int hidden, epochs, batch;
    float lr, momentum;
    uint64_t seed;
} config;

static float mean_last(const float *v, int n, int k)
{
    double sum = 0;
    int i, from = n > k ? n - k : 0;
    for (i = from; i < n; i++) sum += v[i];
    return n ? (float)(sum / (n - from)) : 0.0f;
}

/* Trains the MLP with one activation; 0 on success. */
static int run(const config *cfg, int act, nn_dataset *train, const nn_dataset *test, history *h)
{
    static const float zero[1] = {0.0f}, one[1] = {1.0f};
    const int steps_per_epoch = (train->n + cfg->batch - 1) / cfg->batch;
    const long total_steps = (long)steps_per_epoch * cfg->epochs;
    const size_t sample = nn_shape_size(train->shape);
    char path[1024];
    nn_net *net = nn_net_new(train->shape);
    nn_optim *opt = NULL;
    FILE *csv = NULL;
    float *x = NULL, test_loss = 0, test_acc = 0;
    int *y = NULL, confusion[100], epoch, status = -1;
    long step = 0;
    double t0;

    memset(h, 0, sizeof *h);
    if (!net) goto fail_nn;
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(cfg->hidden));
    nn_add(net, act == ACT_RELU ? nn_relu() : nn_sigmoid());
    nn_add(net, nn_linear(10));
    if (nn_build(net, cfg->batch, cfg->seed) != NN_OK) goto fail_nn;
    /* The model file records that inputs are raw pixels / 255. */
    if (nn_set_preprocess_channels(net, 1.0f / 255.0f, zero, one) != NN_OK ||
        nn_set_class_names(net, fashion_classes, 10) != NN_OK)
        goto fail_nn;
    if (!strcmp(cfg->optimizer, "sgd")) {
        nn_sgd_desc d = {0};
        d.lr = cfg->lr;
        d.momentum = cfg->momentum;
        opt = nn_sgd(net, d);
    } else {
        nn_adam_desc d = {0};
        d.lr = cfg->lr;
        opt = nn_adam(net, d);
    }
    if (!opt) goto fail_nn;
    snprintf(path, sizeof path, "%s/fashion_mlp_%s.csv", cfg->out_dir, act_names[act]);
    if (!(csv = fopen(path, "w"))) {
        fprintf(stderr, "%s: cannot write %s: %s\n", cfg->program, path, strerror(errno));
        goto done;
    }
    fprintf(csv, "epoch,step,train_loss,train_accuracy,test_loss,test_accuracy\n");
    x = (float *)malloc((size_t)cfg->batch * sample * sizeof(float));
    y = (int *)malloc((size_t)cfg->batch * sizeof(int));
    if (!x || !y) { fprintf(stderr, "%s: out of memory\n", cfg->program); goto done; }

    printf("\n== MLP 784-%d-10 with %s: %zu parameters, %s lr %g, batch %d, %d epochs of %d steps, %d threads\n",
           cfg->hidden, act_names[act], nn_num_param_scalars(net), cfg->optimizer, cfg->lr, cfg->batch, cfg->epochs,
           steps_per_epoch, nn_get_threads());
    fflush(stdout);
    nn_batch_start(train, cfg->seed);
    t0 = now_seconds();
    for (epoch = 1; epoch <= cfg->epochs; epoch++) {
        double epoch_loss = 0, epoch_correct = 0;
        int seen = 0, s, i;
        for (s = 0; s < steps_per_epoch; s++) {
            int n = train->n - seen < cfg->batch ? train->n - seen : cfg->batch;
            const float *logits;
            float loss;
            nn_next_batch(train, n, x, y);
            loss = nn_train_step(net, opt, x, y, n);
            if (!isfinite(loss)) { fprintf(stderr, "\n%s: %s\n", cfg->program, nn_error()); goto done; }
            logits = nn_layer_output(net, nn_num_layers(net) - 1);
            for (i = 0; i < n; i++) epoch_correct += nn_argmax(logits + i * 10, 10) == y[i];
            epoch_loss += (double)loss * n;
            seen += n;
            step++;
            if (step % 20 == 0 || step == total_steps) {
                double elapsed = now_seconds() - t0;
                progress((int)step, (int)total_steps, (float)(epoch_loss / seen), (float)(epoch_correct / seen),
                         step * (double)cfg->batch / elapsed, elapsed);
            }
        }
        if (nn_evaluate(net, test, &test_loss, &test_acc, NULL) != NN_OK) goto fail_nn;
        fprintf(stderr, "\r%*s\r", 75, "");
        printf("epoch %3d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  (%.1fs)\n", epoch,
               epoch_loss / seen, epoch_correct / seen, test_loss, test_acc, now_seconds() - t0);
        fflush(stdout);
        fprintf(csv, "%d,%ld,%.6f,%.6f,%.6f,%.6f\n", epoch, step, epoch_loss / seen, epoch_correct / seen,
                test_loss, test_acc);
        fflush(csv);
        h->epoch[h->n] = (float)epoch;
        h->train_loss[h->n] = (float)(epoch_loss / seen);
        h->train_acc[h->n] = (float)(epoch_correct / seen);
        h->test_loss[h->n] = test_loss;
        h->test_acc[h->n] = test_acc;
        h->n++;
    }
    h->seconds = now_seconds() - t0;
    h->steps = step;

    if (nn_evaluate(net, test, NULL, NULL, confusion) != NN_OK) goto fail_nn;
    printf("confusion matrix on the %d test images (rows: true class):\n", test->n);
    nn_print_confusion(stdout, confusion, 10, fashion_classes);
    printf("curves: %s/fashion_mlp_%s.csv\n", cfg->out_dir, act_names[act]);
    snprintf(path, sizeof path, "%s/fashion_mlp_%s.safetensors", cfg->out_dir, act_names[act]);
    if (nn_save(net, path) != NN_OK) fprintf(stderr, "%s: %s\n", cfg->program, nn_error());
    else printf("model: %s\n", path);
    status = 0;
    goto done;
fail_nn:
    fprintf(stderr, "%s: %s\n", cfg->program, nn_error());
done:
    if (csv) fclose(csv);
    free(x);
    free(y);
    nn_optim_free(opt);
    nn_net_free(net);
    return status;
}

/* Loss and accuracy per epoch, train and test, of every run that was made. */
static int plot_runs(const char *path, const history *runs, const int *done)
{
    static const unsigned char colors[NUM_ACTS][2][3] = {
        {{158, 202, 225}, {31, 119, 180}},    /* sigmoid: light = train, dark = test */
        {{253, 174, 107}, {217, 72, 1}}       /* relu */
    };
    static const char *const names[NUM_ACTS][2] = {{"sigmoid train", "sigmoid test"},
                                                   {"relu train", "relu test"}};
    const int width = 1000, height = 420, title_scale = 3;
    const plot_color ink = {40, 40, 40};
    const char *title = "Fashion-MNIST MLP: sigmoid vs ReLU";
    plot_series loss[2 * NUM_ACTS], acc[2 * NUM_ACTS];
    plot_canvas *c = plot_canvas_new(width, height);
    int a, k, count = 0, top = 10 + PLOT_CAP_ROWS * title_scale, status;
    if (!c) { fprintf(stderr, "plot: out of memory\n"); return -1; }
    for (a = 0; a < NUM_ACTS; a++) {
        if (!done[a]) continue;
        for (k = 0; k < 2; k++) {
            plot_series *s = &loss[count];
            s->x = runs[a].epoch;
            s->y = k ? runs[a].test_loss : runs[a].train_loss;
            s->n = runs[a].n;
            s->r = colors[a][k][0];
            s->g = colors[a][k][1];
            s->b = colors[a][k][2];
            s->name = names[a][k];
            acc[count] = *s;
            acc[count].y = k ? runs[a].test_acc : runs[a].train_acc;
            count++;
        }
    }
    plot_text(c, (width - plot_text_width(title, title_scale)) / 2, 10, title, title_scale, ink);
    status = plot_panel(c, 0, top, width / 2, height - top, "loss", "epoch", loss, count);
    if (status == 0)
        status = plot_panel(c, width / 2, top, width - width / 2, height - top, "accuracy", "epoch", acc, count);
    if (status == 0) status = plot_save_png(c, path);
    plot_canvas_free(c);
    return status;
}

int main(int argc, char **argv)
{
    const char *program = "fashion_mlp", *data_dir = "data/fashion-mnist", *act_flag = "both";
    static history runs[NUM_ACTS];
    int done[NUM_ACTS] = {0, 0}, threads = 0, i, a, last = -1;
    config cfg;
    nn_dataset train, test;
    char path[1024], images[1024], labels[1024];

    memset(&cfg, 0, sizeof cfg);
    cfg.program = program;
    cfg.out_dir = "results";
    cfg.optimizer = "sgd";
    cfg.hidden = 128;
    cfg.epochs = 10;
    cfg.batch = 128;
    cfg.seed = 42;
    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { help(); return 0; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "activation")) act_flag = value;
        else if (!strcmp(flag, "hidden")) cfg.hidden = (int)flag_long(program, flag, value, 1, 100000);
        else if (!strcmp(flag, "optimizer")) cfg.optimizer = value;
        else if (!strcmp(flag, "learning_rate")) cfg.lr = flag_float(program, flag, value, 1e-12, 1e3);
        else if (!strcmp(flag, "momentum")) cfg.momentum = flag_float(program, flag, value, 0, 1);
        else if (!strcmp(flag, "epochs")) cfg.epochs = (int)flag_long(program, flag, value, 1, MAX_EPOCHS);
        else if (!strcmp(flag, "batch_size")) cfg.batch = (int)flag_long(program, flag, value, 1, 60000);
        else if (!strcmp(flag, "data_dir")) data_dir = value;
        else if (!strcmp(flag, "seed")) cfg.seed = (uint64_t)flag_long(program, flag, value, 0, 2147483647L);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 0, 256);
        else if (!strcmp(flag, "out")) cfg.out_dir = value;
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    if (strcmp(act_flag, "sigmoid") && strcmp(act_flag, "relu") && strcmp(act_flag, "both"))
        usage_error(program, "--activation must be sigmoid, relu or both, not '%s'", act_flag);
    if (strcmp(cfg.optimizer, "sgd") && strcmp(cfg.optimizer, "adam"))
        usage_error(program, "--optimizer must be sgd or adam, not '%s'", cfg.optimizer);
    if (cfg.lr == 0) cfg.lr = !strcmp(cfg.optimizer, "sgd") ? 0.1f : 0.001f;
    nn_set_threads(threads);

    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte", data_dir);
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte", data_dir);
    if (nn_idx_load(images, labels, &train) != NN_OK) {
        fprintf(stderr, "%s: %s\n(run `make fashion-data` to get Fashion-MNIST)\n", program, nn_error());
        return 1;
    }
    snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte", data_dir);
    snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte", data_dir);
    if (nn_idx_load(images, labels, &test) != NN_OK) {
        fprintf(stderr, "%s: %s\n(run `make fashion-data` to get Fashion-MNIST)\n", program, nn_error());
        nn_dataset_free(&train);
        return 1;
    }
    if (train.num_classes > 10 || test.num_classes > 10 || train.shape.c != test.shape.c ||
        train.shape.h != test.shape.h || train.shape.w != test.shape.w) {
        fprintf(stderr, "%s: %s does not hold Fashion-MNIST (10 classes, equal image sizes)\n", program, data_dir);
        nn_dataset_free(&train);
        nn_dataset_free(&test);
        return 1;
    }
    nn_scale_pixels(&train, 1.0f / 255.0f);
    nn_scale_pixels(&test, 1.0f / 255.0f);
    if (ensure_dir(cfg.out_dir)) return 1;
    printf("Fashion-MNIST: %d training, %d test images of %dx%d\n", train.n, test.n, train.shape.h, train.shape.w);

    for (a = 0; a < NUM_ACTS; a++) {
        if (strcmp(act_flag, "both") && strcmp(act_flag, act_names[a])) continue;
        if (run(&cfg, a, &train, &test, &runs[a])) {
            nn_dataset_free(&train);
            nn_dataset_free(&test);
            return 1;
        }
        done[a] = 1;
        last = a;
    }

    if (done[ACT_SIGMOID] && done[ACT_RELU]) {
        int ahead = 0;
        printf("\ntest accuracy after each epoch\nepoch   sigmoid    relu   relu - sigmoid\n");
        for (i = 0; i < runs[ACT_RELU].n; i++) {
            float s = runs[ACT_SIGMOID].test_acc[i], r = runs[ACT_RELU].test_acc[i];
            ahead += r > s;
            printf("%5d   %.4f   %.4f   %+.4f\n", i + 1, s, r, r - s);
        }
        printf("ReLU ahead of sigmoid after %d of %d epochs\n", ahead, runs[ACT_RELU].n);
        printf("sigmoid: test_accuracy=%.4f mean_last5=%.4f seconds=%.1f\n", runs[ACT_SIGMOID].test_acc[runs[ACT_SIGMOID].n - 1],
               mean_last(runs[ACT_SIGMOID].test_acc, runs[ACT_SIGMOID].n, 5), runs[ACT_SIGMOID].seconds);
    }
    snprintf(path, sizeof path, "%s/fashion_mlp.png", cfg.out_dir);
    if (plot_runs(path, runs, done) == 0) printf("plot: %s\n", path);
    {
        const history *h = &runs[last];
        printf("result: test_accuracy=%.4f mean_last5=%.4f steps=%ld seconds=%.1f\n", h->test_acc[h->n - 1],
               mean_last(h->test_acc, h->n, 5), h->steps, h->seconds);
    }
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
