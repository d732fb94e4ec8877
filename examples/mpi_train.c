/* mpi_train.c - data-parallel training across processes with MPI (E1's MLP, E3's VGG
   ConvNet or the CIFAR ResNet-18 on CIFAR-10).

   Build:  make mpi    (mpicc -O2 -I. -I/usr/include/stb examples/mpi_train.c -o build/mpi_train -lm -lpthread)
   Run:    mpirun -np 2 build/mpi_train --model vgg --batch_size 32 --max_steps 5000

   Every process holds the whole net, built from the same seed (so the same initial
   parameters: checked at the start by comparing a hash of them across the processes),
   and draws its shard of every global batch of B samples from the batcher
   (nn_batch_shard): the union of the shards is the batch one process would have drawn.
   nn.h sums the gradients through the hook below (MPI_Allreduce, in place) and divides
   them by the number of processes before the update, so every process applies the same
   update. The test set is evaluated in shards and the confusion matrices summed, which
   gives exactly the accuracy of one process. Rank 0 prints the progress, writes
   OUT/mpi_train.csv, OUT/mpi_train.png and OUT/model.safetensors.
   The recipes: mlp (E1) SGD lr 0.002, N(0, 1e-4^2) weights, batch 200, 1500 steps;
   vgg (E3) Adam lr 1e-4, batch 32, 5000 steps; both on pixels minus the mean image;
   resnet18_cifar (examples/resnet.c) SGD 0.1, momentum 0.9, weight decay 5e-4, cosine
   to 0, flip + 4-pixel crop, per-channel normalisation, batch 128. --sync_batchnorm
   takes BatchNorm statistics over the global batch (nn_set_sync_batchnorm). */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, mkdir */
#include <limits.h>
#include <mpi.h>
#define NN_IMPLEMENTATION
#include "nn.h"
#include "train.h"
#include "models.h"

typedef struct {
    MPI_Comm comm;
    double seconds;   /* spent in the all-reduce (waiting for the others included) */
    double waiting;   /* --time_allreduce 1: of which in a barrier before it */
    int barrier;
    long calls;
} mpi_hook;

/* nn.h's all-reduce hook: sums buffer across the processes, in place. */
static int mpi_sum(float *buffer, size_t count, void *ctx)
{
    mpi_hook *h = (mpi_hook *)ctx;
    double t = MPI_Wtime();
    if (h->barrier) {   /* the wait for the slowest process, apart from the transfer */
        MPI_Barrier(h->comm);
        h->waiting += MPI_Wtime() - t;
    }
    while (count > 0) {
        int c = count > (size_t)INT_MAX ? INT_MAX : (int)count;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buffer, c, MPI_FLOAT, MPI_SUM, h->comm);
        if (rc != MPI_SUCCESS) return rc;
        buffer += c;
        count -= (size_t)c;
    }
    h->seconds += MPI_Wtime() - t;
    h->calls++;
    return 0;
}

static int rank, world;

static void die(const char *what)
{
    fprintf(stderr, "mpi_train (rank %d of %d): %s\n", rank, world, what);
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

/* FNV-1a over the bytes of every parameter and buffer. */
static unsigned long long param_hash(nn_net *net)
{
    unsigned long long h = 1469598103934665603ULL;
    int i;
    size_t j;
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        const nn_param *p = nn_get_param(net, i);
        const unsigned char *b = (const unsigned char *)p->value;
        for (j = 0; j < p->size * sizeof(float); j++) h = (h ^ b[j]) * 1099511628211ULL;
    }
    return h;
}

/* Loss sum and confusion matrix of this process's part of the test set, summed over
   the processes. */
static void evaluate(nn_net *net, const nn_dataset *test, float *loss, float *acc, int *confusion)
{
    nn_dataset part = {0};
    int first, i, correct = 0;
    double sum, mean = 0;
    float mean_loss = 0;
    part.n = nn_shard(test->n, rank, world, &first);
    part.shape = test->shape;
    part.num_classes = test->num_classes;
    part.x = test->x + (size_t)first * nn_shape_size(test->shape);
    part.y = test->y + first;
    if (nn_evaluate(net, &part, &mean_loss, NULL, confusion) != NN_OK) die(nn_error());
    sum = (double)mean_loss * part.n;
    MPI_Allreduce(MPI_IN_PLACE, confusion, 100, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&sum, &mean, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (i = 0; i < 10; i++) correct += confusion[i * 10 + i];
    *loss = (float)(mean / test->n);
    *acc = (float)correct / (float)test->n;
}

int main(int argc, char **argv)
{
    const char *program = "mpi_train", *data_dir = "data/cifar-10-batches-bin", *out_dir = "results";
    const char *model = "vgg";
    int max_steps = 0, batch = 0, eval_freq = 500, threads = 1, sync_bn = 0, i, step, local, resnet, vgg;
    float lr = 0, test_loss = 0, test_acc = 0, mean_c[3], std_c[3];
    long seed = 42;
    unsigned long long hash, lo, hi;
    nn_dataset train, test;
    nn_net *net;
    nn_optim *opt;
    float *x, *pixels = NULL;
    int *y, confusion[100];
    curves log;
    char path[1024];
    double t0, window[3] = {0, 0, 0}, step_seconds = 0;   /* loss sum, correct, samples */
    mpi_hook hook = {0};

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const flag flags[] = {
        {"model", FLAG_CHOICE, &model, 0, 0, "mlp|vgg|vgg_convnet|resnet18_cifar", "(vgg)"},
        {"batch_size", FLAG_INT, &batch, 1, 50000, "N", "the global batch, split across the processes (mlp 200, vgg 32, resnet 128)"},
        {"max_steps", FLAG_INT, &max_steps, 1, 1e8, "N", "(mlp 1500, vgg 5000, resnet 3910)"},
        {"learning_rate", FLAG_FLOAT, &lr, 1e-12, 1e3, "F", "(mlp 0.002, vgg 1e-4, resnet 0.1)"},
        {"eval_freq", FLAG_INT, &eval_freq, 0, 1e8, "N", "test evaluation every N steps (500; 0: none, for timing)"},
        {"seed", FLAG_LONG, &seed, 0, 2147483647L, "N", "(42)"},
        {"threads", FLAG_INT, &threads, 0, 256, "N", "per process (1)"},
        {"sync_batchnorm", FLAG_INT, &sync_bn, 0, 1, "1", "BatchNorm statistics over the global batch (0)"},
        {"time_allreduce", FLAG_INT, &hook.barrier, 0, 1, "1", "a barrier before each all-reduce, to time the wait apart (0)"},
        {"data_dir", FLAG_TEXT, &data_dir, 0, 0, "DIR", "CIFAR-10 binary batches (data/cifar-10-batches-bin)"},
        {"out", FLAG_TEXT, &out_dir, 0, 0, "DIR", "where rank 0 writes the CSV, plot and model (results)"},
    };
    if (parse_flags(program, rank == 0 ? "mpirun -np P mpi_train [flags]" : NULL, flags, sizeof flags / sizeof *flags,
                    argc, argv)) {
        MPI_Finalize();
        return 0;
    }
    if (!strcmp(model, "vgg_convnet")) model = "vgg";
    resnet = !strcmp(model, "resnet18_cifar");
    vgg = !strcmp(model, "vgg");
    if (!resnet && !vgg && strcmp(model, "mlp"))
        usage_error(program, "--model must be mlp, vgg or resnet18_cifar, not '%s'", model);
    if (!batch) batch = resnet ? 128 : vgg ? 32 : 200;
    if (!max_steps) max_steps = resnet ? 3910 : vgg ? 5000 : 1500;
    if (lr == 0) lr = resnet ? 0.1f : vgg ? 1e-4f : 0.002f;
    if (batch < world) die("the global batch must hold at least one sample per process");
    nn_set_threads(threads);
    local = nn_shard(batch, rank, world, NULL);

    if (nn_cifar10_load(data_dir, &train, &test) != NN_OK) die(nn_error());
    net = vgg ? vgg_convnet(train.shape) : model_find(model)->make(train.shape, 10);
    if (!net || nn_build(net, local, (uint64_t)seed) != NN_OK) die(nn_error());
    if (!strcmp(model, "mlp")) nn_init_weights(net, NN_INIT_NORMAL, 0.0f, 1e-4f, 0.0f, NN_LINEAR);
    if (resnet) {   /* raw pixels in the set (black padding), normalised per batch */
        nn_augment augment = {.flip = 1, .crop_pad = 4};
        if (nn_channel_stats(&train, mean_c, std_c) != NN_OK) die(nn_error());
        for (i = 0; i < 3; i++) { mean_c[i] /= 255.0f; std_c[i] /= 255.0f; }
        if (nn_set_preprocess_channels(net, 1.0f / 255.0f, mean_c, std_c) != NN_OK ||
            nn_preprocess(net, test.x, test.x, test.n) != NN_OK || nn_set_augment(&train, augment) != NN_OK)
            die(nn_error());
        if (!(pixels = (float *)malloc((size_t)local * nn_shape_size(train.shape) * sizeof(float))))
            die("out of memory");
    } else {
        if (train_center(program, net, &train, &test)) die("cannot subtract the mean image");
    }
    nn_set_class_names(net, cifar10_classes, 10);
    hook.comm = MPI_COMM_WORLD;
    if (nn_set_allreduce(net, mpi_sum, &hook, world) != NN_OK || nn_set_sync_batchnorm(net, sync_bn) != NN_OK)
        die(nn_error());
    opt = train_optimizer(program, net, vgg ? "adam" : "sgd", lr, resnet ? 0.9f : 0.0f, resnet ? 5e-4f : 0.0f);
    if (!opt) die(nn_error());
    /* The same seed gives the same parameters on every process: checked. */
    hash = param_hash(net);
    MPI_Allreduce(&hash, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&hash, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi) die("the processes start from different parameters");
    if (rank == 0) {
        if (ensure_dir(out_dir)) die("cannot create the output directory");
        snprintf(path, sizeof path, "%s/mpi_train.csv", out_dir);
        if (curves_open(&log, path, eval_freq ? max_steps / eval_freq + 2 : 1)) die("cannot write the curves");
        printf("%s, %zu parameters, %s lr %g, global batch %d over %d processes (%d here), %d steps, "
               "%s kernels, %d threads each%s\n", model, nn_num_param_scalars(net), vgg ? "adam" : "sgd", lr, batch,
               world, local, max_steps, nn_simd_name(), nn_get_threads(), sync_bn ? ", synchronised BatchNorm" : "");
        fflush(stdout);
    }
    x = (float *)malloc((size_t)local * nn_shape_size(train.shape) * sizeof(float));
    y = (int *)malloc((size_t)local * sizeof(int));
    if (!x || !y) die("out of memory");
    if (nn_batch_start(&train, (uint64_t)seed) != NN_OK || nn_batch_shard(&train, rank, world) != NN_OK) die(nn_error());
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = now_seconds();
    for (step = 1; step <= max_steps; step++) {
        float loss;
        double ts = now_seconds();
        if (nn_next_batch(&train, batch, resnet ? pixels : x, y) != NN_OK) die(nn_error());
        if (resnet) {
            nn_preprocess(net, pixels, x, local);
            nn_optim_set_lr(opt, nn_lr_cosine(lr, nn_optim_steps(opt), max_steps, 0.0f));
        }
        loss = nn_train_step(net, opt, x, y, local);
        if (!isfinite(loss)) die(nn_error());
        step_seconds += now_seconds() - ts;
        window[1] += nn_batch_correct(net, y, local);
        window[0] += (double)loss * local; window[2] += local;
        int evaluating = eval_freq > 0 && (step % eval_freq == 0 || step == max_steps);
        if (step % 5 == 0 || evaluating || step == max_steps) {
            double sums[3], elapsed = now_seconds() - t0;
            MPI_Allreduce(window, sums, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
            if (rank == 0)
                progress(step, max_steps, (float)(sums[0] / sums[2]), (float)(sums[1] / sums[2]),
                         step * (double)batch / elapsed, elapsed);
            if (evaluating) {
                evaluate(net, &test, &test_loss, &test_acc, confusion);
                if (rank == 0) {
                    fprintf(stderr, "\r%*s\r", 75, "");
                    printf("step %5d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  (%.1fs)\n", step,
                           sums[0] / sums[2], sums[1] / sums[2], test_loss, test_acc, now_seconds() - t0);
                    fflush(stdout);
                    curves_add(&log, step, (float)(sums[0] / sums[2]), (float)(sums[1] / sums[2]), test_loss, test_acc);
                }
                window[0] = window[1] = window[2] = 0;
            }
        }
    }
    {
        /* the slowest process's share of its steps spent in the gradient all-reduce */
        double mine[3] = {hook.seconds, step_seconds, hook.waiting}, most[3];
        MPI_Allreduce(mine, most, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (eval_freq) evaluate(net, &test, &test_loss, &test_acc, confusion);
        if (rank == 0 && eval_freq) {
            printf("\nconfusion matrix on the %d test images, evaluated in %d shards (rows: true class):\n",
                   test.n, world);
            nn_print_confusion(stdout, confusion, 10, cifar10_classes);
            snprintf(path, sizeof path, "%s/mpi_train.png", out_dir);
            if (plot_training_curves(path, log.step, log.train_loss, log.train_acc, log.n, log.step,
                                     log.test_loss, log.test_acc, log.n, "data-parallel training on CIFAR-10") == 0)
                printf("curves: %s/mpi_train.csv, plot: %s\n", out_dir, path);
        }
        if (rank == 0) {
            snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
            if (nn_save(net, path) != NN_OK) fprintf(stderr, "%s: %s\n", program, nn_error());
            else printf("model: %s\n", path);
            printf("all-reduce: %.2f s of %.2f s of steps (%.1f%%), %ld calls, %.3f ms per step; %.1f images/s "
                   "over the steps\n", most[0], most[1], 100.0 * most[0] / most[1], hook.calls,
                   1e3 * most[0] / max_steps, (double)max_steps * batch / most[1]);
            if (hook.barrier)
                printf("all-reduce: of which waiting for the slowest process (barrier) %.2f s at most; the "
                       "transfer %.3f ms per step on rank 0\n", most[2], 1e3 * (hook.seconds - hook.waiting) / max_steps);
            if (eval_freq)
                printf("result: test_accuracy=%.4f mean_last5=%.4f steps=%d seconds=%.1f processes=%d\n", test_acc,
                       curves_mean_last(&log, 5), max_steps, now_seconds() - t0, world);
            else
                printf("result: no evaluation (--eval_freq 0) steps=%d seconds=%.1f processes=%d\n", max_steps,
                       now_seconds() - t0, world);
            curves_close(&log);
        }
    }
    free(x); free(y); free(pixels);
    nn_optim_free(opt);
    nn_net_free(net);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    MPI_Finalize();
    return 0;
}
