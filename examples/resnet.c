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
#include "common.h"
#include "report.h"
#include "models.h"

static void help(void)
{
    printf("usage: resnet [flags]\n"
           "  --epochs N          (30)\n"
           "  --max_steps N       stop after N steps, the schedule spanning them (0: all epochs)\n"
           "  --learning_rate F   peak of the cosine schedule (0.1)\n"
           "  --batch_size N      (128)\n"
           "  --momentum F        (0.9)\n"
           "  --weight_decay F    (5e-4)\n"
           "  --data_dir DIR      CIFAR-10 binary batches (data/cifar-10-batches-bin); also --data\n"
           "  --seed N            (42)\n"
           "  --threads N         (0: all cores)\n"
           "  --out DIR           where the CSV, plot and model go (results)\n");
}

static int fail(const char *program)
{
    fprintf(stderr, "\n%s: %s\n", program, nn_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *program = "resnet", *data_dir = "data/cifar-10-batches-bin", *out_dir = "results";
    int epochs = 30, max_steps = 0, batch = 128, threads = 0, steps_per_epoch, total, step, i;
    float lr = 0.1f, momentum = 0.9f, weight_decay = 5e-4f, mean[3], std[3];
    unsigned long seed = 42;
    nn_dataset train, test;
    nn_augment augment = {.flip = 1, .crop_pad = 4};   /* flip, 4-pixel padded crop */
    nn_sgd_desc sgd = {0};
    nn_net *net;
    nn_optim *opt;
    float *pixels, *x;
    int *y;
    curves log;
    char path[1024];
    double t0, window_loss = 0, window_correct = 0;
    int window_n = 0, window_steps = 0;

    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { help(); return 0; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "epochs")) epochs = (int)flag_long(program, flag, value, 1, 10000);
        else if (!strcmp(flag, "max_steps")) max_steps = (int)flag_long(program, flag, value, 0, 100000000);
        else if (!strcmp(flag, "learning_rate")) lr = flag_float(program, flag, value, 1e-12, 1e3);
        else if (!strcmp(flag, "batch_size")) batch = (int)flag_long(program, flag, value, 1, 4096);
        else if (!strcmp(flag, "momentum")) momentum = flag_float(program, flag, value, 0, 1);
        else if (!strcmp(flag, "weight_decay")) weight_decay = flag_float(program, flag, value, 0, 10);
        else if (!strcmp(flag, "data_dir") || !strcmp(flag, "data")) data_dir = value;
        else if (!strcmp(flag, "seed")) seed = (unsigned long)flag_long(program, flag, value, 0, 2147483647L);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 0, 256);
        else if (!strcmp(flag, "out")) out_dir = value;
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    nn_set_threads(threads);

    if (nn_cifar10_load(data_dir, &train, &test) != NN_OK) {
        fprintf(stderr, "%s: %s\n(run `make data` to get CIFAR-10)\n", program, nn_error());
        return 1;
    }
    /* torchvision's units: mean and std of pixel / 255 */
    if (nn_channel_stats(&train, mean, std) != NN_OK) return fail(program);
    for (i = 0; i < 3; i++) { mean[i] /= 255.0f; std[i] /= 255.0f; }

    net = resnet18_cifar(train.shape, 10);
    if (!net || nn_build(net, batch, seed) != NN_OK) return fail(program);
    if (nn_set_preprocess_channels(net, 1.0f / 255.0f, mean, std) != NN_OK
        || nn_set_class_names(net, cifar10_classes, 10) != NN_OK) return fail(program);
    /* The training set stays in raw pixels, so that the crop pads with black; each batch
       is normalised after augmentation. The test set is normalised once, in place. */
    if (nn_preprocess(net, test.x, test.x, test.n) != NN_OK) return fail(program);
    if (nn_batch_start(&train, seed) != NN_OK || nn_set_augment(&train, augment) != NN_OK) return fail(program);
    sgd.lr = lr; sgd.momentum = momentum; sgd.weight_decay = weight_decay;
    if (!(opt = nn_sgd(net, sgd))) return fail(program);

    steps_per_epoch = (train.n + batch - 1) / batch;
    total = max_steps ? max_steps : epochs * steps_per_epoch;
    if (ensure_dir(out_dir)) return 1;
    snprintf(path, sizeof path, "%s/resnet.csv", out_dir);
    if (curves_open(&log, path, total / steps_per_epoch + 2)) return 1;
    printf("ResNet-18 (CIFAR), %zu parameters, SGD lr %g cosine, momentum %g, weight decay %g, batch %d, "
           "%d steps (%d per epoch), %s kernels, %d threads\n", nn_num_param_scalars(net), lr, momentum,
           weight_decay, batch, total, steps_per_epoch, nn_simd_name(), nn_get_threads());
    pixels = (float *)malloc((size_t)batch * nn_shape_size(train.shape) * sizeof(float));
    x = (float *)malloc((size_t)batch * nn_shape_size(train.shape) * sizeof(float));
    y = (int *)malloc((size_t)batch * sizeof(int));
    if (!pixels || !x || !y) { fprintf(stderr, "%s: out of memory\n", program); return 1; }
    t0 = now_seconds();
    for (step = 1; step <= total; step++) {
        const float *logits;
        float loss;
        nn_next_batch(&train, batch, pixels, y);
        nn_preprocess(net, pixels, x, batch);
        nn_optim_set_lr(opt, nn_lr_cosine(lr, nn_optim_steps(opt), total, 0.0f));
        loss = nn_train_step(net, opt, x, y, batch);
        if (!isfinite(loss)) return fail(program);
        logits = nn_layer_output(net, nn_num_layers(net) - 1);
        for (i = 0; i < batch; i++) window_correct += nn_argmax(logits + i * 10, 10) == y[i];
        window_loss += loss; window_n += batch; window_steps++;
        if (step % 5 == 0 || step == total) {
            double elapsed = now_seconds() - t0;
            progress(step, total, (float)(window_loss / window_steps), (float)(window_correct / window_n),
                     step * (double)batch / elapsed, elapsed);
        }
        if (step % steps_per_epoch == 0 || step == total) {
            float train_loss = (float)(window_loss / window_steps), train_acc = (float)(window_correct / window_n);
            float test_loss = 0, test_acc = 0;
            if (nn_evaluate(net, &test, &test_loss, &test_acc, NULL) != NN_OK) return fail(program);
            fprintf(stderr, "\r%*s\r", 75, "");
            printf("epoch %6.2f  step %6d  lr %.4f  train loss %.4f acc %.4f  test loss %.4f acc %.4f  (%.0fs)\n",
                   (double)step / steps_per_epoch, step, nn_lr_cosine(lr, step, total, 0.0f), train_loss,
                   train_acc, test_loss, test_acc, now_seconds() - t0);
            fflush(stdout);
            curves_add(&log, step, train_loss, train_acc, test_loss, test_acc);
            window_loss = window_correct = 0; window_n = window_steps = 0;
        }
    }
    report_run(program, net, &test, &log, out_dir, "resnet", "ResNet-18 (CIFAR) on CIFAR-10", total,
               now_seconds() - t0);
    curves_close(&log);
    free(pixels); free(x); free(y);
    nn_optim_free(opt);
    nn_net_free(net);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
