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
#include "train.h"

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

/* Test accuracy per epoch of every run on one chart. */
static int plot_all(const char *path, const curves *runs, char (*names)[32], int count)
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
    long seed;
    const float *mean, *std;
} config;

typedef struct run_result {
    int net, opt;
    float lr, val_acc, test_acc, mean_last5;
    int steps;
    double seconds;
} run_result;

/* Trains one net with one optimiser, its curves into *h; 0 on success. */
static int run(const config *cfg, int which, int opt_kind, nn_dataset *train, const nn_dataset *val,
               const nn_dataset *test, curves *h, run_result *res)
{
    const float lr = cfg->lr > 0 ? cfg->lr : recipe_lr[opt_kind];
    nn_net *net = make_net(which);
    if (!net || nn_build(net, cfg->batch, (uint64_t)cfg->seed) != NN_OK ||
        nn_set_preprocess_channels(net, 1.0f / 255.0f, cfg->mean, cfg->std) != NN_OK ||
        nn_set_class_names(net, cifar10_classes, 10) != NN_OK) {
        fprintf(stderr, "%s: %s\n", cfg->program, nn_error());
        nn_net_free(net);
        return 1;
    }
    nn_optim *opt = train_optimizer(cfg->program, net, opt_names[opt_kind], lr, opt_kind == OPT_SGD ? 0.9f : 0.0f, 0.0f);
    const int steps_per_epoch = (train->n + cfg->batch - 1) / cfg->batch;
    char name[64], title[128];
    snprintf(name, sizeof name, "small_cnns_%s_%s", net_names[which], opt_names[opt_kind]);
    snprintf(title, sizeof title, "%s + %s on CIFAR-10", net_titles[which], opt_names[opt_kind]);
    train_setup setup = {.program = cfg->program, .out_dir = cfg->out_dir, .name = name, .title = title,
                         .steps = steps_per_epoch * cfg->epochs, .batch = cfg->batch, .per_epoch = 1,
                         .validation = 1};
    trainer t = {0};
    int status = 1;
    if (trainer_open(&t, &setup, net, opt)) goto done;

    printf("\n== %s + %s: %zu parameters, lr %g%s, batch %d, %d epochs of %d steps, %s kernels, %d threads\n",
           net_titles[which], opt_names[opt_kind], nn_num_param_scalars(net), lr,
           opt_kind == OPT_SGD ? " momentum 0.9" : "", cfg->batch, cfg->epochs, steps_per_epoch,
           nn_simd_name(), nn_get_threads());
    fflush(stdout);
    nn_batch_start(train, (uint64_t)cfg->seed);
    for (int epoch = 1; epoch <= cfg->epochs; epoch++) {
        /* The last batch of an epoch takes what is left, so epochs stay aligned. */
        for (int seen = 0, n; seen < train->n; seen += n) {
            n = train->n - seen < cfg->batch ? train->n - seen : cfg->batch;
            nn_next_batch(train, n, t.x, t.y);
            if (trainer_step(&t, n)) goto done;
        }
        if (trainer_evaluate(&t, val, test)) goto done;
    }
    res->seconds = t.seconds;
    res->net = which;
    res->opt = opt_kind;
    res->lr = lr;
    res->val_acc = t.log.val_acc[t.log.n - 1];
    res->test_acc = t.test_acc;
    res->mean_last5 = curves_mean_last(&t.log, 5);
    res->steps = t.step;
    status = trainer_report(&t, test);
    trainer_keep_curves(&t, h);
done:
    trainer_close(&t);   /* and the net and the optimiser */
    return status;
}

static void print_result(const run_result *r)
{
    printf("result: test_accuracy=%.4f mean_last5=%.4f steps=%d seconds=%.1f\n",
           r->test_acc, r->mean_last5, r->steps, r->seconds);
}

int main(int argc, char **argv)
{
    const char *program = "small_cnns", *data_dir = "data/cifar-10-batches-bin";
    const char *net_flag = "tutorial", *opt_flag = "adam";
    static const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.5f, 0.5f, 0.5f};
    config cfg = {program, "results", 10, 64, 0.0f, 42, mean, std};
    int threads = 0, n_val = 5000, count = 0, chosen = 0, failed = 0;
    const flag flags[] = {
        {"net", FLAG_CHOICE, &net_flag, 0, 0, "tutorial|lenet|all", "(tutorial)"},
        {"optimizer", FLAG_CHOICE, &opt_flag, 0, 0, "sgd|adam|adamax|all", "(adam)"},
        {"epochs", FLAG_INT, &cfg.epochs, 1, 10000, "N", "(10)"},
        {"batch_size", FLAG_INT, &cfg.batch, 1, 10000, "N", "(64)"},
        {"learning_rate", FLAG_FLOAT, &cfg.lr, 1e-12, 1e3, "F", "overrides the recipe's (sgd 0.001, adam 0.0005, adamax 0.0001)"},
        {"validation", FLAG_INT, &n_val, 1, 25000, "N", "training images held out for validation (5000)"},
        {"data_dir", FLAG_TEXT, &data_dir, 0, 0, "DIR", "CIFAR-10 binary batches (data/cifar-10-batches-bin)"},
        {"seed", FLAG_LONG, &cfg.seed, 0, 2147483647L, "N", "initialisation, split and batch order (42)"},
        {"threads", FLAG_INT, &threads, 0, 256, "N", "(0: all cores)"},
        {"out", FLAG_TEXT, &cfg.out_dir, 0, 0, "DIR", "where the CSVs, plots and models go (results)"},
    };
    if (parse_flags(program, "small_cnns [flags]", flags, sizeof flags / sizeof *flags, argc, argv)) return 0;
    nn_set_threads(threads);

    nn_dataset train, val, test;
    if (train_load_cifar10(program, data_dir, &train, &test)) return 1;
    /* 0..255 -> 0..1 -> (x - 0.5) / 0.5, before the split so that both parts get it. */
    nn_scale_pixels(&train, 1.0f / 255.0f);
    nn_scale_pixels(&test, 1.0f / 255.0f);
    nn_normalize_channels(&train, mean, std);
    nn_normalize_channels(&test, mean, std);
    if (split_validation(&train, &val, n_val, (uint64_t)cfg.seed)) return 1;
    if (ensure_dir(cfg.out_dir)) return 1;
    printf("CIFAR-10: %d training, %d validation (split with seed %lu), %d test images\n", train.n, val.n,
           (unsigned long)cfg.seed, test.n);

    curves runs[NUM_NETS * NUM_OPTS];
    run_result results[NUM_NETS * NUM_OPTS];
    char names[NUM_NETS * NUM_OPTS][32];
    double total_seconds = 0;
    for (int a = 0; a < NUM_NETS; a++) {
        if (strcmp(net_flag, "all") && strcmp(net_flag, net_names[a])) continue;
        for (int b = 0; b < NUM_OPTS; b++) {
            if (strcmp(opt_flag, "all") && strcmp(opt_flag, opt_names[b])) continue;
            if (run(&cfg, a, b, &train, &val, &test, &runs[count], &results[count])) {
                failed = 1;
                curves_close(&runs[count]);
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
        for (int i = 0; i < count; i++) {
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
    for (int i = 0; i < count; i++) curves_close(&runs[i]);
    free(val.x);
    free(val.y);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return failed ? 1 : 0;
}
