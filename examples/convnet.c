/* convnet.c - the VGG-style ConvNet of the assignment on CIFAR-10 (experiment E3).

   Build:  cc -O2 -I. -I/usr/include/stb examples/convnet.c -o convnet -lm -lpthread
   Run:    ./convnet --data_dir data/cifar-10-batches-bin        (E3: about 0.75)

   Inputs are pixels 0..255 minus the training set's mean image, N x 3 x 32 x 32.
   The net (examples/models.h's vgg_convnet() builds the same for the other programs):
   five stages of [Conv 3x3 / pad 1 -> BatchNorm -> ReLU] blocks (64; 128; 256, 256;
   512, 512; 512, 512 channels), each stage ending in a 3x3 / stride 2 / pad 1 max pool
   (32 -> 16 -> 8 -> 4 -> 2 -> 1 pixels), a 1x1 average pool, then Linear(512 -> 10).
   PyTorch's default initialisation, Adam (lr 1e-4), batch 32, 5,000 steps, a test
   evaluation every 500. Writes OUT/convnet.csv, OUT/convnet.png, OUT/convnet.safetensors. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, mkdir */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "train.h"

int main(int argc, char **argv)
{
    const char *program = "convnet", *optimizer = "adam";
    train_options o = {.data_dir = "data/cifar-10-batches-bin", .out_dir = "results", .lr = 1e-4f, .momentum = 0.9f,
                       .batch = 32, .seed = 42};
    int max_steps = 5000, eval_freq = 500;
    const flag flags[] = {
        TRAIN_FLAGS(o),
        {"max_steps", FLAG_INT, &max_steps, 1, 1e8, "N", ""},
        {"eval_freq", FLAG_INT, &eval_freq, 1, 1e8, "N", "test evaluation every N steps"},
        {"optimizer", FLAG_CHOICE, &optimizer, 0, 0, "adam|adamw|adamax|sgd", ""},
    };
    if (parse_flags(program, "convnet [flags]", flags, sizeof flags / sizeof *flags, argc, argv)) return 0;
    nn_set_threads(o.threads);

    nn_dataset train, test;
    if (train_load_cifar10(program, o.data_dir, &train, &test)) return 1;

    /* conv1, pool, conv2, pool, conv3a, conv3b, pool, conv4a, conv4b, pool, conv5a, conv5b, pool */
    static const int widths[] = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};   /* 0: max pool */
    nn_net *net = nn_net_new(train.shape);
    for (size_t i = 0; i < sizeof widths / sizeof *widths; i++) {
        if (!widths[i]) { nn_add(net, nn_maxpool2d(3, 2, 1)); continue; }
        nn_add(net, nn_conv2d(widths[i], 3, 1, 1));   /* Conv 3x3 -> BatchNorm -> ReLU */
        nn_add(net, nn_batchnorm());
        nn_add(net, nn_relu());
    }
    nn_add(net, nn_avgpool2d(1, 1, 0));   /* an identity at 1x1, kept so the layer indices match PyTorch's */
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(10));
    if (nn_build(net, o.batch, (uint64_t)o.seed) != NN_OK || train_center(program, net, &train, &test) ||
        nn_set_class_names(net, cifar10_classes, 10) != NN_OK) {
        fprintf(stderr, "%s: %s\n", program, nn_error());
        return 1;
    }
    nn_optim *opt = train_optimizer(program, net, optimizer, o.lr, o.momentum, o.weight_decay);
    trainer t;
    train_setup setup = {.program = program, .out_dir = o.out_dir, .name = "convnet",
                         .title = "VGG ConvNet on CIFAR-10", .steps = max_steps, .batch = o.batch};
    if (trainer_open(&t, &setup, net, opt)) return 1;
    nn_batch_start(&train, (uint64_t)o.seed);

    printf("VGG ConvNet, %zu parameters, %s lr %g, batch %d, %d steps, %s kernels, %d threads\n",
           nn_num_param_scalars(net), optimizer, o.lr, o.batch, max_steps, nn_simd_name(), nn_get_threads());
    for (int step = 1; step <= max_steps; step++) {
        nn_next_batch(&train, o.batch, t.x, t.y);
        if (trainer_step(&t, o.batch)) return 1;
        if ((step % eval_freq == 0 || step == max_steps) && trainer_evaluate(&t, NULL, &test)) return 1;
    }
    return trainer_finish(&t, &train, &test);
}
