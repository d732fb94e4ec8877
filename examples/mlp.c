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
#include "train.h"

int main(int argc, char **argv)
{
    const char *program = "mlp", *data_dir = "data/cifar-10-batches-bin", *out_dir = "results";
    const char *optimizer = "sgd", *init = "normal", *schedule = "none";
    int max_steps = 1500, batch = 200, eval_freq = 100;
    int batchnorm = 0, threads = 0;
    flag_list hidden = {1, {100}};
    long lr_step_size = 0, seed = 42;
    float lr = 0.002f, lr_gamma = 0.1f, neg_slope = 0.02f, momentum = 0, weight_decay = 0, dropout = 0;
    const flag flags[] = {
        {"dnn_hidden_units", FLAG_LIST, &hidden, 0, 0, "LIST", "hidden layer sizes, comma-separated (100)"},
        {"learning_rate", FLAG_FLOAT, &lr, 1e-12, 1e3, "F", "(0.002)"},
        {"lr_schedule", FLAG_CHOICE, &schedule, 0, 0, "none|step|cosine",
         "step: x lr_gamma every lr_step_size steps,\ncosine: to 0 at max_steps (none)"},
        {"lr_step_size", FLAG_LONG, &lr_step_size, 0, 1e8, "N", "(0: a third of max_steps)"},
        {"lr_gamma", FLAG_FLOAT, &lr_gamma, 0, 1, "F", "(0.1)"},
        {"max_steps", FLAG_INT, &max_steps, 1, 1e8, "N", "(1500)"},
        {"batch_size", FLAG_INT, &batch, 1, 50000, "N", "(200)"},
        {"eval_freq", FLAG_INT, &eval_freq, 1, 1e8, "N", "test evaluation every N steps (100)"},
        {"neg_slope", FLAG_FLOAT, &neg_slope, 0, 1, "F", "LeakyReLU negative slope (0.02)"},
        {"data_dir", FLAG_TEXT, &data_dir, 0, 0, "DIR", "CIFAR-10 binary batches (data/cifar-10-batches-bin)"},
        {"optimizer", FLAG_CHOICE, &optimizer, 0, 0, "sgd|adam|adamw|adamax", "(sgd)"},
        {"momentum", FLAG_FLOAT, &momentum, 0, 1, "F", "SGD momentum (0)"},
        {"weight_decay", FLAG_FLOAT, &weight_decay, 0, 10, "F", "(0)"},
        {"batchnorm", FLAG_SWITCH, &batchnorm, 0, 0, NULL, "BatchNorm after every hidden Linear"},
        {"dropout", FLAG_FLOAT, &dropout, 0, 0.99, "F", "dropout after every hidden activation (0)"},
        {"init", FLAG_CHOICE, &init, 0, 0, "normal|default", "N(0, 1e-4), biases 0, or PyTorch's (normal)"},
        {"seed", FLAG_LONG, &seed, 0, 2147483647L, "N", "(42)"},
        {"threads", FLAG_INT, &threads, 0, 256, "N", "(0: all cores)"},
        {"out", FLAG_TEXT, &out_dir, 0, 0, "DIR", "where the CSV, plot and model go (results)"},
    };
    if (parse_flags(program, "mlp [flags]", flags, sizeof flags / sizeof *flags, argc, argv)) return 0;
    if (lr_step_size == 0) lr_step_size = max_steps / 3 > 0 ? max_steps / 3 : 1;
    nn_set_threads(threads);

    nn_dataset train, test;
    if (train_load_cifar10(program, data_dir, &train, &test)) return 1;
    float *mean = train_center(program, &train, &test);
    if (!mean) return 1;

    nn_net *net = nn_net_new(train.shape);
    nn_add(net, nn_flatten());
    for (int i = 0; i < hidden.n; i++) {
        nn_add(net, nn_linear(hidden.v[i]));
        if (batchnorm) nn_add(net, nn_batchnorm());
        nn_add(net, nn_leaky_relu(neg_slope));
        if (dropout > 0) nn_add(net, nn_dropout(dropout));
    }
    nn_add(net, nn_linear(10));
    if (nn_build(net, batch, (uint64_t)seed) != NN_OK || (!strcmp(init, "normal") &&
        nn_init_weights(net, NN_INIT_NORMAL, 0.0f, 1e-4f, 0.0f, NN_LINEAR) != NN_OK) ||
        nn_set_preprocess_mean_image(net, mean) != NN_OK || nn_set_class_names(net, cifar10_classes, 10) != NN_OK) {
        fprintf(stderr, "%s: %s\n", program, nn_error());
        return 1;
    }
    nn_optim *opt = train_optimizer(program, net, optimizer, lr, momentum, weight_decay);
    trainer t;
    train_setup setup = {.program = program, .out_dir = out_dir, .name = "mlp", .title = "MLP on CIFAR-10",
                         .steps = max_steps, .batch = batch, .schedule = schedule, .lr = lr,
                         .lr_gamma = lr_gamma, .lr_step_size = lr_step_size};
    if (!opt || trainer_open(&t, &setup, net, opt)) return 1;

    printf("MLP 3072-");
    for (int i = 0; i < hidden.n; i++) printf("%d-", hidden.v[i]);
    printf("10, %zu parameters, %s lr %g, batch %d, %d steps, %s kernels, %d threads\n",
           nn_param_count(net), optimizer, lr, batch, max_steps, nn_simd_name(), nn_get_threads());
    if (!strcmp(schedule, "step")) printf("learning rate x %g every %ld steps\n", lr_gamma, lr_step_size);
    if (!strcmp(schedule, "cosine")) printf("learning rate: cosine from %g to 0 over %d steps\n", lr, max_steps);
    nn_batch_start(&train, (uint64_t)seed);
    for (int step = 1; step <= max_steps; step++) {
        nn_next_batch(&train, batch, t.x, t.y);
        if (trainer_step(&t, batch)) return 1;
        if ((step % eval_freq == 0 || step == max_steps) && trainer_evaluate(&t, NULL, &test)) return 1;
    }
    if (trainer_report(&t, &test)) return 1;
    trainer_result(&t);
    trainer_close(&t);
    free(mean);
    nn_optim_free(opt);
    nn_net_free(net);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
