/* resnet.c - the CIFAR ResNet-18 on CIFAR-10 with the usual recipe.

   Build:  make build/resnet
   Run:    build/resnet --epochs 30 --data_dir data/cifar-10-batches-bin --out results
   Smoke:  build/resnet --max_steps 20 --out /tmp/resnet

   The net is resnet18_cifar() of examples/models.h: torchvision's resnet18 with a 3x3
   stride-1 stem and no max-pool, for 32 x 32 inputs. The recipe: inputs normalised per
   channel with the training set's mean and std (recorded in the model, as torchvision's
   ToTensor + Normalize: x = (pixel / 255 - mean) / std), a random crop with 4 pixels of
   black padding and a horizontal flip drawn by the batcher (nn_set_augment), SGD with
   momentum 0.9 and weight decay 5e-4 (nesterov off), lr 0.1 annealed to 0 by the cosine
   schedule over all steps, batch 128. The test set is evaluated after every epoch.
   Writes OUT/resnet.csv, OUT/resnet.png, OUT/resnet.safetensors. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, mkdir */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "train.h"
#include "models.h"

static int fail(const char *program)
{
    fprintf(stderr, "\n%s: %s\n", program, nn_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *program = "resnet";
    train_options o = {.data_dir = "data/cifar-10-batches-bin", .out_dir = "results", .lr = 0.1f, .momentum = 0.9f,
                       .weight_decay = 5e-4f, .batch = 128, .seed = 42};
    int epochs = 30, max_steps = 0;
    const flag flags[] = {
        {"epochs", FLAG_INT, &epochs, 1, 10000, "N", ""},
        {"max_steps", FLAG_INT, &max_steps, 0, 1e8, "N", "stop after N steps, the schedule spanning them (0: all epochs)"},
        TRAIN_FLAGS(o),
        {"data", FLAG_TEXT, &o.data_dir, 0, 0, "DIR", "the same as --data_dir"},
    };
    if (parse_flags(program, "resnet [flags]", flags, sizeof flags / sizeof *flags, argc, argv)) return 0;
    nn_set_threads(o.threads);

    nn_dataset train, test;
    if (train_load_cifar10(program, o.data_dir, &train, &test)) return 1;
    /* torchvision's units: mean and std of pixel / 255 */
    float mean[3], std[3];
    if (nn_channel_stats(&train, mean, std) != NN_OK) return fail(program);
    for (int i = 0; i < 3; i++) { mean[i] /= 255.0f; std[i] /= 255.0f; }

    nn_net *net = resnet18_cifar(train.shape, 10);
    if (!net || nn_build(net, o.batch, (uint64_t)o.seed) != NN_OK) return fail(program);
    if (nn_set_preprocess_channels(net, 1.0f / 255.0f, mean, std) != NN_OK
        || nn_set_class_names(net, cifar10_classes, 10) != NN_OK) return fail(program);
    /* The training set stays in raw pixels, so that the crop pads with black; each batch
       is normalised after augmentation. The test set is normalised once, in place. */
    nn_augment augment = {.flip = 1, .crop_pad = 4};   /* flip, 4-pixel padded crop */
    if (nn_preprocess(net, test.x, test.x, test.n) != NN_OK) return fail(program);
    if (nn_batch_start(&train, (uint64_t)o.seed) != NN_OK || nn_set_augment(&train, augment) != NN_OK) return fail(program);
    nn_optim *opt = train_optimizer(program, net, "sgd", o.lr, o.momentum, o.weight_decay);
    int steps_per_epoch = (train.n + o.batch - 1) / o.batch, total = max_steps ? max_steps : epochs * steps_per_epoch;
    trainer t;
    train_setup setup = {.program = program, .out_dir = o.out_dir, .name = "resnet", .title = "ResNet-18 (CIFAR) on CIFAR-10",
                         .steps = total, .batch = o.batch, .steps_per_epoch = steps_per_epoch, .schedule = "cosine", .lr = o.lr};
    if (trainer_open(&t, &setup, net, opt)) return 1;
    float *pixels = (float *)malloc((size_t)o.batch * nn_shape_size(train.shape) * sizeof(float));
    if (!pixels) { fprintf(stderr, "%s: out of memory\n", program); return 1; }

    printf("ResNet-18 (CIFAR), %zu parameters, SGD lr %g cosine, momentum %g, weight decay %g, batch %d, "
           "%d steps (%d per epoch), %s kernels, %d threads\n", nn_num_param_scalars(net), o.lr, o.momentum,
           o.weight_decay, o.batch, total, steps_per_epoch, nn_simd_name(), nn_get_threads());
    for (int step = 1; step <= total; step++) {
        nn_next_batch(&train, o.batch, pixels, t.y);
        nn_preprocess(net, pixels, t.x, o.batch);
        if (trainer_step(&t, o.batch)) return 1;
        if ((step % steps_per_epoch == 0 || step == total) && trainer_evaluate(&t, NULL, &test)) return 1;
    }
    free(pixels);
    return trainer_finish(&t, &train, &test);
}
