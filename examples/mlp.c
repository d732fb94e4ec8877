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
    const char *program = "mlp", *optimizer = "sgd", *init = "normal", *schedule = "none";
    train_options o = {.data_dir = "data/cifar-10-batches-bin", .out_dir = "results", .lr = 0.002f, .batch = 200,
                       .seed = 42};
    flag_list hidden = {1, {100}};
    int max_steps = 1500, eval_freq = 100, batchnorm = 0;
    long lr_step_size = 0;
    float lr_gamma = 0.1f, neg_slope = 0.02f, dropout = 0;
    const flag flags[] = {
        {"dnn_hidden_units", FLAG_LIST, &hidden, 0, 0, "LIST", "hidden layer sizes, comma-separated (100)"},
        {"max_steps", FLAG_INT, &max_steps, 1, 1e8, "N", ""},
        {"eval_freq", FLAG_INT, &eval_freq, 1, 1e8, "N", "test evaluation every N steps"},
        {"optimizer", FLAG_CHOICE, &optimizer, 0, 0, "sgd|adam|adamw|adamax", ""},
        {"lr_schedule", FLAG_CHOICE, &schedule, 0, 0, "none|step|cosine",
         "step: x lr_gamma every lr_step_size steps,\ncosine: to 0 at max_steps"},
        {"lr_step_size", FLAG_LONG, &lr_step_size, 0, 1e8, "N", "(0: a third of max_steps)"},
        {"lr_gamma", FLAG_FLOAT, &lr_gamma, 0, 1, "F", ""},
        {"neg_slope", FLAG_FLOAT, &neg_slope, 0, 1, "F", "LeakyReLU negative slope"},
        {"batchnorm", FLAG_SWITCH, &batchnorm, 0, 0, NULL, "BatchNorm after every hidden Linear"},
        {"dropout", FLAG_FLOAT, &dropout, 0, 0.99, "F", "dropout after every hidden activation"},
        {"init", FLAG_CHOICE, &init, 0, 0, "normal|default", "N(0, 1e-4) with biases 0, or PyTorch's"},
        TRAIN_FLAGS(o),
    };
    if (parse_flags(program, "mlp [flags]", flags, sizeof flags / sizeof *flags, argc, argv)) return 0;
    if (lr_step_size == 0) lr_step_size = max_steps / 3 > 0 ? max_steps / 3 : 1;
    nn_set_threads(o.threads);

    nn_dataset train, test;
    if (train_load_cifar10(program, o.data_dir, &train, &test)) return 1;

    nn_net *net = nn_net_new(train.shape);
    nn_add(net, nn_flatten());
    for (int i = 0; i < hidden.n; i++) {
        nn_add(net, nn_linear(hidden.v[i]));
        if (batchnorm) nn_add(net, nn_batchnorm());
        nn_add(net, nn_leaky_relu(neg_slope));
        if (dropout > 0) nn_add(net, nn_dropout(dropout));
    }
    nn_add(net, nn_linear(10));
    if (nn_build(net, o.batch, (uint64_t)o.seed) != NN_OK || (!strcmp(init, "normal") &&
        nn_init_weights(net, NN_INIT_NORMAL, 0.0f, 1e-4f, 0.0f, NN_LINEAR) != NN_OK) ||
        train_center(program, net, &train, &test) || nn_set_class_names(net, cifar10_classes, 10) != NN_OK) {
        fprintf(stderr, "%s: %s\n", program, nn_error());
        return 1;
    }
    nn_optim *opt = train_optimizer(program, net, optimizer, o.lr, o.momentum, o.weight_decay);
    trainer t;
    train_setup setup = {.program = program, .out_dir = o.out_dir, .name = "mlp", .title = "MLP on CIFAR-10",
                         .steps = max_steps, .batch = o.batch, .schedule = schedule, .lr = o.lr,
                         .lr_gamma = lr_gamma, .lr_step_size = lr_step_size};
    if (trainer_open(&t, &setup, net, opt)) return 1;
    nn_batch_start(&train, (uint64_t)o.seed);

    printf("MLP 3072-");
    for (int i = 0; i < hidden.n; i++) printf("%d-", hidden.v[i]);
    printf("10, %zu parameters, %s lr %g, batch %d, %d steps, %s kernels, %d threads\n",
           nn_num_param_scalars(net), optimizer, o.lr, o.batch, max_steps, nn_simd_name(), nn_get_threads());
    if (!strcmp(schedule, "step")) printf("learning rate x %g every %ld steps\n", lr_gamma, lr_step_size);
    if (!strcmp(schedule, "cosine")) printf("learning rate: cosine from %g to 0 over %d steps\n", o.lr, max_steps);
    for (int step = 1; step <= max_steps; step++) {
        nn_next_batch(&train, o.batch, t.x, t.y);
        if (trainer_step(&t, o.batch)) return 1;
        if ((step % eval_freq == 0 || step == max_steps) && trainer_evaluate(&t, NULL, &test)) return 1;
    }
    return trainer_finish(&t, &train, &test);
}
