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
#include "train.h"

static const char *const fashion_classes[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
};

enum { ACT_SIGMOID, ACT_RELU, NUM_ACTS };
static const char *const act_names[NUM_ACTS] = {"sigmoid", "relu"};

typedef struct config {
    const char *program, *out_dir, *optimizer;
    int hidden, epochs, batch;
    float lr, momentum;
    long seed;
} config;

/* One run: its curves (a row per epoch), steps and training time. */
typedef struct history {
    curves log;
    int steps;
    double seconds;
} history;

/* Trains the MLP with one activation; 0 on success. */
static int run(const config *cfg, int act, nn_dataset *train, const nn_dataset *test, history *h)
{
    static const float zero[1] = {0.0f}, one[1] = {1.0f};
    nn_net *net = nn_net_new(train->shape);
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(cfg->hidden));
    nn_add(net, act == ACT_RELU ? nn_relu() : nn_sigmoid());
    nn_add(net, nn_linear(10));
    /* The model file records that inputs are raw pixels / 255. */
    if (nn_build(net, cfg->batch, (uint64_t)cfg->seed) != NN_OK ||
        nn_set_preprocess_channels(net, 1.0f / 255.0f, zero, one) != NN_OK ||
        nn_set_class_names(net, fashion_classes, 10) != NN_OK) {
        fprintf(stderr, "%s: %s\n", cfg->program, nn_error());
        nn_net_free(net);
        return 1;
    }
    nn_optim *opt = train_optimizer(cfg->program, net, cfg->optimizer, cfg->lr, cfg->momentum, 0.0f);
    const int steps_per_epoch = (train->n + cfg->batch - 1) / cfg->batch;
    char name[64];
    snprintf(name, sizeof name, "fashion_mlp_%s", act_names[act]);
    train_setup setup = {.program = cfg->program, .out_dir = cfg->out_dir, .name = name,
                         .steps = steps_per_epoch * cfg->epochs, .batch = cfg->batch, .per_epoch = 1};
    trainer t = {0};
    int status = 1;
    if (trainer_open(&t, &setup, net, opt)) goto done;

    printf("\n== MLP 784-%d-10 with %s: %zu parameters, %s lr %g, batch %d, %d epochs of %d steps, %d threads\n",
           cfg->hidden, act_names[act], nn_num_param_scalars(net), cfg->optimizer, cfg->lr, cfg->batch, cfg->epochs,
           steps_per_epoch, nn_get_threads());
    fflush(stdout);
    nn_batch_start(train, (uint64_t)cfg->seed);
    for (int epoch = 1; epoch <= cfg->epochs; epoch++) {
        for (int seen = 0, n; seen < train->n; seen += n) {   /* the last batch takes what is left */
            n = train->n - seen < cfg->batch ? train->n - seen : cfg->batch;
            nn_next_batch(train, n, t.x, t.y);
            if (trainer_step(&t, n)) goto done;
        }
        if (trainer_evaluate(&t, NULL, test)) goto done;
    }
    h->seconds = t.seconds;
    h->steps = t.step;
    status = trainer_report(&t, test);
    trainer_keep_curves(&t, &h->log);
done:
    trainer_close(&t);   /* and the net and the optimiser */
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
    plot_series loss[2 * NUM_ACTS], acc[2 * NUM_ACTS];
    int count = 0;
    for (int a = 0; a < NUM_ACTS; a++) {
        const curves *c = &runs[a].log;
        if (!done[a]) continue;
        for (int k = 0; k < 2; k++, count++) {
            plot_series s = {c->epoch, k ? c->test_loss : c->train_loss, c->n,
                             colors[a][k][0], colors[a][k][1], colors[a][k][2], names[a][k]};
            loss[count] = acc[count] = s;
            acc[count].y = k ? c->test_acc : c->train_acc;
        }
    }
    return plot_loss_and_accuracy(path, "Fashion-MNIST MLP: sigmoid vs ReLU", "epoch", loss, acc, count);
}

/* images and labels of one half of the data set in dir; 0, or 1 after a message. */
static int load(const char *program, const char *dir, const char *half, nn_dataset *d)
{
    char images[1024], labels[1024];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte", dir, half);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte", dir, half);
    if (nn_idx_load(images, labels, d) == NN_OK) return 0;
    fprintf(stderr, "%s: %s\n(run `make fashion-data` to get Fashion-MNIST)\n", program, nn_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *program = "fashion_mlp", *data_dir = "data/fashion-mnist", *act_flag = "both";
    config cfg = {program, "results", "sgd", 128, 10, 128, 0.0f, 0.0f, 42};
    int threads = 0;
    const flag flags[] = {
        {"activation", FLAG_CHOICE, &act_flag, 0, 0, "sigmoid|relu|both", "(both)"},
        {"hidden", FLAG_INT, &cfg.hidden, 1, 100000, "N", "hidden units (128)"},
        {"optimizer", FLAG_CHOICE, &cfg.optimizer, 0, 0, "sgd|adam", "(sgd)"},
        {"learning_rate", FLAG_FLOAT, &cfg.lr, 1e-12, 1e3, "F", "(sgd: 0.1, adam: 0.001)"},
        {"momentum", FLAG_FLOAT, &cfg.momentum, 0, 1, "F", "SGD momentum (0)"},
        {"epochs", FLAG_INT, &cfg.epochs, 1, 1000, "N", "(10)"},
        {"batch_size", FLAG_INT, &cfg.batch, 1, 60000, "N", "(128)"},
        {"data_dir", FLAG_TEXT, &data_dir, 0, 0, "DIR", "the four unpacked IDX files (data/fashion-mnist)"},
        {"seed", FLAG_LONG, &cfg.seed, 0, 2147483647L, "N", "initialisation and batch order (42)"},
        {"threads", FLAG_INT, &threads, 0, 256, "N", "(0: all cores)"},
        {"out", FLAG_TEXT, &cfg.out_dir, 0, 0, "DIR", "where the CSVs, plot and models go (results)"},
    };
    if (parse_flags(program, "fashion_mlp [flags]", flags, sizeof flags / sizeof *flags, argc, argv)) return 0;
    if (cfg.lr == 0) cfg.lr = !strcmp(cfg.optimizer, "sgd") ? 0.1f : 0.001f;
    nn_set_threads(threads);

    nn_dataset train, test;
    if (load(program, data_dir, "train", &train)) return 1;
    if (load(program, data_dir, "t10k", &test)) { nn_dataset_free(&train); return 1; }
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

    static history runs[NUM_ACTS];
    int done[NUM_ACTS] = {0, 0}, last = -1;
    for (int a = 0; a < NUM_ACTS; a++) {
        if (strcmp(act_flag, "both") && strcmp(act_flag, act_names[a])) continue;
        if (run(&cfg, a, &train, &test, &runs[a])) {
            nn_dataset_free(&train);
            nn_dataset_free(&test);
            return 1;
        }
        done[a] = 1;
        last = a;
    }

    const curves *sig = &runs[ACT_SIGMOID].log, *relu = &runs[ACT_RELU].log;
    if (done[ACT_SIGMOID] && done[ACT_RELU]) {
        int ahead = 0;
        printf("\ntest accuracy after each epoch\nepoch   sigmoid    relu   relu - sigmoid\n");
        for (int i = 0; i < relu->n; i++) {
            float s = sig->test_acc[i], r = relu->test_acc[i];
            ahead += r > s;
            printf("%5d   %.4f   %.4f   %+.4f\n", i + 1, s, r, r - s);
        }
        printf("ReLU ahead of sigmoid after %d of %d epochs\n", ahead, relu->n);
        printf("sigmoid: test_accuracy=%.4f mean_last5=%.4f seconds=%.1f\n", sig->test_acc[sig->n - 1],
               curves_mean_last(sig, 5), runs[ACT_SIGMOID].seconds);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/fashion_mlp.png", cfg.out_dir);
    if (plot_runs(path, runs, done) == 0) printf("plot: %s\n", path);
    const history *h = &runs[last];
    printf("result: test_accuracy=%.4f mean_last5=%.4f steps=%d seconds=%.1f\n", h->log.test_acc[h->log.n - 1],
           curves_mean_last(&h->log, 5), h->steps, h->seconds);
    for (int a = 0; a < NUM_ACTS; a++) curves_close(&runs[a].log);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
