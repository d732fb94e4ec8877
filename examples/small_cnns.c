/* small_cnns.c - two small CNNs on CIFAR-10, each trained with three optimisers (E4).

   Build:  cc -O2 -I. -I/usr/include/stb examples/small_cnns.c -o small_cnns -lm -lpthread
   Run:    ./small_cnns                           (the "tutorial" CNN with Adam, 10 epochs)
           ./small_cnns --net all --optimizer all --threads 1     (all six runs, a table)

   The nets:
     tutorial  Conv(3,6,5) ReLU MaxPool(2,2) Conv(6,16,5) ReLU MaxPool(2,2)
               Linear(400,120) ReLU Linear(120,84) ReLU Linear(84,10)
     lenet     Conv(3,6,5) Tanh AvgPool(2,2) Conv(6,16,5) Tanh AvgPool(2,2)
               Conv(16,120,5) Tanh Linear(120,84) Tanh Linear(84,10)
   with PyTorch's default initialisation and softmax cross-entropy. The optimisers, with
   the source's learning rates: sgd (0.001, momentum 0.9), adam (0.0005), adamax (0.0001).

   Data: the 50,000 training images are shuffled once with --seed; the first 45,000 are
   trained on and the last 5,000 are the validation set. Pixels are scaled to 0..1 and
   normalised with mean 0.5 and std 0.5 per channel (stored in the model file). An epoch
   is every training image once, in a fresh shuffled order, in batches of --batch_size
   (the last batch of an epoch is smaller when the size does not divide 45,000, as
   PyTorch's DataLoader). Validation and the full 10,000-image test set are evaluated
   after every epoch.

   Each run writes OUT/small_cnns_<net>_<optimizer>.csv (the curves per epoch), .png
   (their plot) and .safetensors (the model), and prints the test confusion matrix.
   With more than one run, a table of all of them follows, and OUT/small_cnns_all.png
   plots their test accuracy. The last line is the result line of one run: tutorial +
   adam if it was among the runs (the source's final recipe), else the first run. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, mkdir */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "common.h"
#include "plot.h"

enum { NET_TUTORIAL, NET_LENET, NUM_NETS };
enum { OPT_SGD, OPT_ADAM, OPT_ADAMAX, NUM_OPTS };

static const char *const net_names[NUM_NETS] = {"tutorial", "lenet"};
static const char *const net_titles[NUM_NETS] = {"tutorial CNN", "LeNet-5"};
static const char *const opt_names[NUM_OPTS] = {"sgd", "adam", "adamax"};
static const float recipe_lr[NUM_OPTS] = {0.001f, 0.0005f, 0.0001f};
/* Test accuracy after 10 epochs of the same recipes in PyTorch on the same data
   (../shared/EXPERIMENTS.md, E4); shown beside ours when the recipe is unchanged. */
static const float pytorch_test_acc[NUM_NETS][NUM_OPTS] = {
    {0.492f, 0.596f, 0.417f},
    {0.445f, 0.552f, 0.396f}
};

static void help(void)
{
    printf("usage: small_cnns [flags]\n"
           "  --net NAME          tutorial, lenet or all (tutorial)\n"
           "  --optimizer NAME    sgd, adam, adamax or all (adam)\n"
           "  --epochs N          (10)\n"
           "  --batch_size N      (64)\n"
           "  --learning_rate F   overrides the recipe's (sgd 0.001, adam 0.0005, adamax 0.0001)\n"
           "  --validation N      training images held out for validation (5000)\n"
           "  --data_dir DIR      CIFAR-10 binary batches (data/cifar-10-batches-bin)\n"
           "  --seed N            initialisation, split and batch order (42)\n"
           "  --threads N         (0: all cores)\n"
           "  --out DIR           where the CSVs, plots and models go (results)\n");
}

/* ---- One row per epoch, kept for the plots and written to a CSV as it comes ---- */

typedef struct history {
    FILE  *csv;
    int    n, cap;
    float *epoch, *train_loss, *train_acc, *val_loss, *val_acc, *test_loss, *test_acc;
} history;

static int history_open(history *h, const char *csv_path, int capacity)
{
    float *block;
    memset(h, 0, sizeof *h);
    block = (float *)calloc((size_t)capacity * 7, sizeof(float));
    if (!block) { fprintf(stderr, "out of memory\n"); return -1; }
    h->csv = fopen(csv_path, "w");
    if (!h->csv) {
        fprintf(stderr, "cannot write %s: %s\n", csv_path, strerror(errno));
        free(block);
        return -1;
    }
    fprintf(h->csv, "epoch,step,train_loss,train_accuracy,val_loss,val_accuracy,test_loss,test_accuracy\n");
    h->cap = capacity;
    h->epoch = block;
    h->train_loss = block + capacity;
    h->train_acc = block + 2 * capacity;
    h->val_loss = block + 3 * capacity;
    h->val_acc = block + 4 * capacity;
    h->test_loss = block + 5 * capacity;
    h->test_acc = block + 6 * capacity;
    return 0;
}

static void history_add(history *h, int epoch, long step, float train_loss, float train_acc,
                        float val_loss, float val_acc, float test_loss, float test_acc)
{
    fprintf(h->csv, "%d,%ld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", epoch, step, train_loss, train_acc,
            val_loss, val_acc, test_loss, test_acc);
    fflush(h->csv);
    if (h->n == h->cap) return;
    h->epoch[h->n] = (float)epoch;
    h->train_loss[h->n] = train_loss; h->train_acc[h->n] = train_acc;
    h->val_loss[h->n] = val_loss;     h->val_acc[h->n] = val_acc;
    h->test_loss[h->n] = test_loss;   h->test_acc[h->n] = test_acc;
    h->n++;
}

static float mean_last(const float *v, int n, int k)
{
    double sum = 0;
    int i, from = n > k ? n - k : 0;
    for (i = from; i < n; i++) sum += v[i];
    return n ? (float)(sum / (n - from)) : 0.0f;
}

static void history_free(history *h)
{
    if (h->csv) fclose(h->csv);
    free(h->epoch);
    memset(h, 0, sizeof *h);
}

/* ---- Plots ---- */

/* Loss and accuracy per epoch, train / validation / test, side by side. */
static int plot_run(const char *path, const char *title, const history *h)
{
    const int width = 1000, height = 420, title_scale = 3;
    const plot_color ink = {40, 40, 40};
    plot_series loss[3] = {{NULL, NULL, 0, 31, 119, 180, "train"},
                           {NULL, NULL, 0, 44, 160, 44, "validation"},
                           {NULL, NULL, 0, 255, 127, 14, "test"}};
    plot_series acc[3];
    plot_canvas *c = plot_canvas_new(width, height);
    int k, top = 10 + PLOT_CAP_ROWS * title_scale, status;
    if (!c) { fprintf(stderr, "plot: out of memory\n"); return -1; }
    loss[0].y = h->train_loss;
    loss[1].y = h->val_loss;
    loss[2].y = h->test_loss;
    for (k = 0; k < 3; k++) {
        loss[k].x = h->epoch;
        loss[k].n = h->n;
        acc[k] = loss[k];
    }
    acc[0].y = h->train_acc;
    acc[1].y = h->val_acc;
    acc[2].y = h->test_acc;
    plot_text(c, (width - plot_text_width(title, title_scale)) / 2, 10, title, title_scale, ink);
    status = plot_panel(c, 0, top, width / 2, height - top, "loss", "epoch", loss, 3);
    if (status == 0)
        status = plot_panel(c, width / 2, top, width - width / 2, height - top, "accuracy", "epoch", acc, 3);
    if (status == 0) status = plot_save_png(c, path);
    plot_canvas_free(c);
    return status;
}

/* Test accuracy per epoch of every run on one chart. */
static int plot_all(const char *path, const history *runs, char (*names)[32], int count)
{
    static const unsigned char colors[6][3] = {
        {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}
    };
    plot_series series[NUM_NETS * NUM_OPTS];
    plot_canvas *c = plot_canvas_new(800, 420);
    int k, status;
    if (!c) { fprintf(stderr, "plot: out of memory\n"); return -1; }
    for (k = 0; k < count; k++) {
        series[k].x = runs[k].epoch;
        series[k].y = runs[k].test_acc;
        series[k].n = runs[k].n;
        series[k].r = colors[k % 6][0];
        series[k].g = colors[k % 6][1];
        series[k].b = colors[k % 6][2];
        series[k].name = names[k];
    }
    status = plot_panel(c, 0, 0, 800, 420, "CIFAR-10 test accuracy", "epoch", series, count);
    if (status == 0) status = plot_save_png(c, path);
    plot_canvas_free(c);
    return status;
}

/* ---- Data ---- */

/* Shuffles d in place (Fisher-Yates, seeded) and moves its last n_val samples into val,
   whose buffers the caller frees with free(); d keeps the first d->n - n_val. */
static int split_validation(nn_dataset *d, nn_dataset *val, int n_val, uint64_t seed)
{
    size_t sample = nn_shape_size(d->shape), bytes = sample * sizeof(float);
    float *tmp = (float *)malloc(bytes);
    nn_rng rng = nn_rng_new(seed);
    int i;
    memset(val, 0, sizeof *val);
    val->x = (float *)malloc((size_t)n_val * bytes);
    val->y = (int *)malloc((size_t)n_val * sizeof(int));
    if (!tmp || !val->x || !val->y) {
        fprintf(stderr, "out of memory for the validation split\n");
        free(tmp); free(val->x); free(val->y);
        return -1;
    }
    for (i = d->n - 1; i > 0; i--) {
        int j = (int)nn_rng_below(&rng, (uint32_t)i + 1), label;
        if (j == i) continue;
        memcpy(tmp, d->x + (size_t)i * sample, bytes);
        memcpy(d->x + (size_t)i * sample, d->x + (size_t)j * sample, bytes);
        memcpy(d->x + (size_t)j * sample, tmp, bytes);
        label = d->y[i]; d->y[i] = d->y[j]; d->y[j] = label;
    }
    d->n -= n_val;
    memcpy(val->x, d->x + (size_t)d->n * sample, (size_t)n_val * bytes);
    memcpy(val->y, d->y + d->n, (size_t)n_val * sizeof(int));
    val->n = n_val;
    val->shape = d->shape;
    val->num_classes = d->num_classes;
    free(tmp);
    return 0;
}

/* ---- Nets and runs ---- */

static nn_net *make_net(int which)
{
    nn_net *net = nn_net_new(nn_shape3(3, 32, 32));
    if (!net) return NULL;
    if (which == NET_TUTORIAL) {
        nn_add(net, nn_conv2d(6, 5, 1, 0));  nn_add(net, nn_relu());  nn_add(net, nn_maxpool2d(2, 2, 0));
        nn_add(net, nn_conv2d(16, 5, 1, 0)); nn_add(net, nn_relu());  nn_add(net, nn_maxpool2d(2, 2, 0));
        nn_add(net, nn_flatten());
        nn_add(net, nn_linear(120)); nn_add(net, nn_relu());
        nn_add(net, nn_linear(84));  nn_add(net, nn_relu());
        nn_add(net, nn_linear(10));
    } else {
        nn_add(net, nn_conv2d(6, 5, 1, 0));   nn_add(net, nn_tanh()); nn_add(net, nn_avgpool2d(2, 2, 0));
        nn_add(net, nn_conv2d(16, 5, 1, 0));  nn_add(net, nn_tanh()); nn_add(net, nn_avgpool2d(2, 2, 0));
        nn_add(net, nn_conv2d(120, 5, 1, 0)); nn_add(net, nn_tanh());
        nn_add(net, nn_flatten());
        nn_add(net, nn_linear(84)); nn_add(net, nn_tanh());
        nn_add(net, nn_linear(10));
    }
    return net;
}

typedef struct config {
    const char *program, *out_dir;
    int epochs, batch;
    float lr;               /* 0: the recipe's */
    uint64_t seed;
    const float *mean, *std;
} config;

typedef struct run_result {
    int net, opt;
    float lr, val_acc, test_acc, mean_last5;
    long steps;
    double seconds;
} run_result;

/* Trains one net with one optimiser; 0 on success. */
static int run(const config *cfg, int which, int opt_kind, nn_dataset *train, const nn_dataset *val,
               const nn_dataset *test, history *h, run_result *res)
{
    const int steps_per_epoch = (train->n + cfg->batch - 1) / cfg->batch;
    const long total_steps = (long)steps_per_epoch * cfg->epochs;
    const size_t sample = nn_shape_size(train->shape);
    const float lr = cfg->lr > 0 ? cfg->lr : recipe_lr[opt_kind];
    char path[1024], base[900], title[128];
    nn_net *net = make_net(which);
    nn_optim *opt = NULL;
    float *x = NULL, val_loss = 0, val_acc = 0, test_loss = 0, test_acc = 0;
    int *y = NULL, confusion[100], epoch, status = -1;
    long step = 0;
    double t0;

    memset(h, 0, sizeof *h);
    snprintf(base, sizeof base, "%s/small_cnns_%s_%s", cfg->out_dir, net_names[which], opt_names[opt_kind]);
    if (!net || nn_build(net, cfg->batch, cfg->seed) != NN_OK) goto fail_nn;
    if (nn_set_preprocess_channels(net, 1.0f / 255.0f, cfg->mean, cfg->std) != NN_OK ||
        nn_set_class_names(net, cifar10_classes, 10) != NN_OK)
        goto fail_nn;
    if (opt_kind == OPT_SGD) {
        nn_sgd_desc d = {0};
        d.lr = lr;
        d.momentum = 0.9f;
        opt = nn_sgd(net, d);
    } else {
        nn_adam_desc d = {0};
        d.lr = lr;
        opt = opt_kind == OPT_ADAM ? nn_adam(net, d) : nn_adamax(net, d);
    }
    if (!opt) goto fail_nn;
    snprintf(path, sizeof path, "%s.csv", base);
    if (history_open(h, path, cfg->epochs)) goto done;
    x = (float *)malloc((size_t)cfg->batch * sample * sizeof(float));
    y = (int *)malloc((size_t)cfg->batch * sizeof(int));
    if (!x || !y) { fprintf(stderr, "%s: out of memory\n", cfg->program); goto done; }

    printf("\n== %s + %s: %zu parameters, lr %g%s, batch %d, %d epochs of %d steps, %s kernels, %d threads\n",
           net_titles[which], opt_names[opt_kind], nn_num_param_scalars(net), lr,
           opt_kind == OPT_SGD ? " momentum 0.9" : "", cfg->batch, cfg->epochs, steps_per_epoch,
           nn_simd_name(), nn_get_threads());
    fflush(stdout);
    nn_batch_start(train, cfg->seed);
    t0 = now_seconds();
    for (epoch = 1; epoch <= cfg->epochs; epoch++) {
        double epoch_loss = 0, epoch_correct = 0;
        int seen = 0, s, i;
        for (s = 0; s < steps_per_epoch; s++) {
            /* The last batch of an epoch takes what is left, so epochs stay aligned. */
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
        if (nn_evaluate(net, val, &val_loss, &val_acc, NULL) != NN_OK ||
            nn_evaluate(net, test, &test_loss, &test_acc, NULL) != NN_OK)
            goto fail_nn;
        fprintf(stderr, "\r%*s\r", 75, "");
        printf("epoch %3d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  test loss %.4f acc %.4f  (%.1fs)\n",
               epoch, epoch_loss / seen, epoch_correct / seen, val_loss, val_acc, test_loss, test_acc,
               now_seconds() - t0);
        fflush(stdout);
        history_add(h, epoch, step, (float)(epoch_loss / seen), (float)(epoch_correct / seen), val_loss, val_acc,
                    test_loss, test_acc);
    }
    res->seconds = now_seconds() - t0;
    res->net = which;
    res->opt = opt_kind;
    res->lr = lr;
    res->val_acc = val_acc;
    res->test_acc = test_acc;
    res->mean_last5 = mean_last(h->test_acc, h->n, 5);
    res->steps = step;

    if (nn_evaluate(net, test, NULL, NULL, confusion) != NN_OK) goto fail_nn;
    printf("confusion matrix on the %d test images (rows: true class):\n", test->n);
    nn_print_confusion(stdout, confusion, 10, cifar10_classes);
    snprintf(title, sizeof title, "%s + %s on CIFAR-10", net_titles[which], opt_names[opt_kind]);
    snprintf(path, sizeof path, "%s.png", base);
    if (plot_run(path, title, h) == 0) printf("curves: %s.csv, plot: %s\n", base, path);
    snprintf(path, sizeof path, "%s.safetensors", base);
    if (nn_save(net, path) != NN_OK) fprintf(stderr, "%s: %s\n", cfg->program, nn_error());
    else printf("model: %s\n", path);
    status = 0;
    goto done;
fail_nn:
    fprintf(stderr, "%s: %s\n", cfg->program, nn_error());
done:
    free(x);
    free(y);
    nn_optim_free(opt);
    nn_net_free(net);
    return status;
}

static void print_result(const run_result *r)
{
    printf("result: test_accuracy=%.4f mean_last5=%.4f steps=%ld seconds=%.1f\n",
           r->test_acc, r->mean_last5, r->steps, r->seconds);
}

int main(int argc, char **argv)
{
    const char *program = "small_cnns", *data_dir = "data/cifar-10-batches-bin";
    const char *net_flag = "tutorial", *opt_flag = "adam";
    static const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
    int threads = 0, n_val = 5000, i, a, b, count = 0, chosen = 0, failed = 0;
    config cfg;
    nn_dataset train, val, test;
    history runs[NUM_NETS * NUM_OPTS];
    run_result results[NUM_NETS * NUM_OPTS];
    char names[NUM_NETS * NUM_OPTS][32];
    double total_seconds = 0;

    memset(&cfg, 0, sizeof cfg);
    cfg.program = program;
    cfg.out_dir = "results";
    cfg.epochs = 10;
    cfg.batch = 64;
    cfg.seed = 42;
    cfg.mean = mean;
    cfg.std = std;
    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { help(); return 0; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "net")) net_flag = value;
        else if (!strcmp(flag, "optimizer")) opt_flag = value;
        else if (!strcmp(flag, "epochs")) cfg.epochs = (int)flag_long(program, flag, value, 1, 10000);
        else if (!strcmp(flag, "batch_size")) cfg.batch = (int)flag_long(program, flag, value, 1, 10000);
        else if (!strcmp(flag, "learning_rate")) cfg.lr = flag_float(program, flag, value, 1e-12, 1e3);
        else if (!strcmp(flag, "validation")) n_val = (int)flag_long(program, flag, value, 1, 25000);
        else if (!strcmp(flag, "data_dir")) data_dir = value;
        else if (!strcmp(flag, "seed")) cfg.seed = (uint64_t)flag_long(program, flag, value, 0, 2147483647L);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 0, 256);
        else if (!strcmp(flag, "out")) cfg.out_dir = value;
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    if (strcmp(net_flag, "tutorial") && strcmp(net_flag, "lenet") && strcmp(net_flag, "all"))
        usage_error(program, "--net must be tutorial, lenet or all, not '%s'", net_flag);
    if (strcmp(opt_flag, "sgd") && strcmp(opt_flag, "adam") && strcmp(opt_flag, "adamax") && strcmp(opt_flag, "all"))
        usage_error(program, "--optimizer must be sgd, adam, adamax or all, not '%s'", opt_flag);
    nn_set_threads(threads);

    if (nn_cifar10_load(data_dir, &train, &test) != NN_OK) {
        fprintf(stderr, "%s: %s\n(run `make data` to get CIFAR-10)\n", program, nn_error());
        return 1;
    }
    /* 0..255 -> 0..1 -> (x - 0.5) / 0.5, before the split so that both parts get it. */
    nn_scale_pixels(&train, 1.0f / 255.0f);
    nn_scale_pixels(&test, 1.0f / 255.0f);
    nn_normalize_channels(&train, mean, std);
    nn_normalize_channels(&test, mean, std);
    if (split_validation(&train, &val, n_val, cfg.seed)) return 1;
    if (ensure_dir(cfg.out_dir)) return 1;
    printf("CIFAR-10: %d training, %d validation (split with seed %lu), %d test images\n", train.n, val.n,
           (unsigned long)cfg.seed, test.n);

    for (a = 0; a < NUM_NETS; a++) {
        if (strcmp(net_flag, "all") && strcmp(net_flag, net_names[a])) continue;
        for (b = 0; b < NUM_OPTS; b++) {
            if (strcmp(opt_flag, "all") && strcmp(opt_flag, opt_names[b])) continue;
            if (run(&cfg, a, b, &train, &val, &test, &runs[count], &results[count])) {
                failed = 1;
                history_free(&runs[count]);
                break;
            }
            snprintf(names[count], sizeof names[count], "%s %s", net_names[a], opt_names[b]);
            if (a == NET_TUTORIAL && b == OPT_ADAM) chosen = count;
            total_seconds += results[count].seconds;
            count++;
        }
        if (failed) break;
    }

    if (!failed && count > 1) {
        char path[1024];
        int recipe = cfg.epochs == 10 && cfg.batch == 64 && cfg.lr == 0 && n_val == 5000;
        printf("\n%-13s %-9s %-9s %-8s %-9s %-12s %-13s %s\n", "net", "optimizer", "lr", "val acc", "test acc",
               "mean last 5", "PyTorch test", "seconds");
        for (i = 0; i < count; i++) {
            const run_result *r = &results[i];
            char torch[16] = "-";
            if (recipe) snprintf(torch, sizeof torch, "%.3f", pytorch_test_acc[r->net][r->opt]);
            printf("%-13s %-9s %-9g %-8.4f %-9.4f %-12.4f %-13s %.1f\n", net_titles[r->net], opt_names[r->opt],
                   r->lr, r->val_acc, r->test_acc, r->mean_last5, torch, r->seconds);
        }
        printf("total training time %.1f s for %d runs\n", total_seconds, count);
        snprintf(path, sizeof path, "%s/small_cnns_all.png", cfg.out_dir);
        if (plot_all(path, runs, names, count) == 0) printf("plot of all runs: %s\n", path);
        printf("the result line below is that of %s + %s\n", net_titles[results[chosen].net],
               opt_names[results[chosen].opt]);
    }
    if (!failed && count > 0) print_result(&results[chosen]);
    for (i = 0; i < count; i++) history_free(&runs[i]);
    free(val.x);
    free(val.y);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return failed ? 1 : 0;
}
