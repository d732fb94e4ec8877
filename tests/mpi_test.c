/* Data-parallel training under real MPI (tests/mpi_check.sh runs it with mpirun -np 2
   and -np 3). Every rank builds the same net from the same seed and trains on its shard
   of each global batch; rank 0 also trains one process on the whole batch and compares.
   Prints "ok NAME" / "FAIL NAME: why" (rank 0) and "mpi_test: N passed, N failed".
   --die R: rank R exits in the middle of training, --kill R: it is killed (SIGKILL)
   there (the failure tests: the others must stop with an error, not hang). */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <signal.h>
#include <unistd.h>
#define NN_IMPLEMENTATION
#include "nn.h"

static int rank, world, passed, failed, kill_it;

static void result(int ok, const char *name, const char *why)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (rank == 0) {
        if (all) printf("ok   %s (np %d)\n", name, world);
        else printf("FAIL %s (np %d): %s\n", name, world, why);
        fflush(stdout);
    }
    if (all) passed++;
    else failed++;
}

static int mpi_sum(float *buffer, size_t count, void *ctx)
{
    (void)ctx;
    return MPI_Allreduce(MPI_IN_PLACE, buffer, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

#define N_SAMPLES 96
#define SAMPLE (3 * 8 * 8)
#define BATCH 12
#define STEPS 20
#define SEED 77

static float data_x[N_SAMPLES * SAMPLE];
static int data_y[N_SAMPLES];

static void data_set(nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->n = N_SAMPLES;
    d->shape = nn_shape3(3, 8, 8);
    d->num_classes = 10;
    d->x = data_x;
    d->y = data_y;
}

static nn_net *make_net(int bn, int batch)
{
    nn_net *net = nn_net_new(nn_shape3(3, 8, 8));
    nn_add(net, nn_conv2d(4, 3, 1, 1));
    if (bn) nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(16));
    if (bn) nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_linear(10));
    if (nn_build(net, batch, 9) != NN_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, nn_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return net;
}

static nn_optim *make_opt(nn_net *net)
{
    nn_sgd_desc d = {0};
    d.lr = 0.05f;
    d.momentum = 0.9f;
    return nn_sgd(net, d);
}

static size_t params_copy(nn_net *net, float *out)
{
    size_t at = 0;
    int i;
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        if (out) memcpy(out + at, p->value, p->size * sizeof(float));
        at += p->size;
    }
    return at;
}

/* Every rank's n floats equal rank 0's, bit for bit. */
static int same_everywhere(const float *v, size_t n)
{
    float *root = (float *)malloc(n * sizeof(float));
    int same;
    memcpy(root, v, n * sizeof(float));
    MPI_Bcast(root, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    same = !memcmp(root, v, n * sizeof(float));
    free(root);
    return same;
}

/* max over tensors of max |a - b| / max |b| */
static double rel_diff(nn_net *layout, const float *a, const float *b)
{
    double worst = 0;
    size_t at = 0, k;
    int i;
    for (i = 0; i < nn_num_param_tensors(layout); i++) {
        size_t n = nn_get_param(layout, i)->size;
        double d = 0, m = 0;
        for (k = 0; k < n; k++) {
            if (fabs((double)a[at + k] - b[at + k]) > d) d = fabs((double)a[at + k] - b[at + k]);
            if (fabs((double)b[at + k]) > m) m = fabs((double)b[at + k]);
        }
        if (m > 0 && d / m > worst) worst = d / m;
        at += n;
    }
    return worst;
}

/* Trains STEPS steps; sharded with the hook when distributed, else one process with
   the global batch. die: the rank that exits at step STEPS / 2 (-1: none). */
static nn_net *train(int bn, int sync, int distributed, int die)
{
    int local = distributed ? nn_shard(BATCH, rank, world, NULL) : BATCH, step;
    nn_net *net = make_net(bn, local);
    nn_optim *opt = make_opt(net);
    nn_dataset d;
    float x[BATCH * SAMPLE];
    int y[BATCH];
    data_set(&d);
    if (!opt || nn_batch_start(&d, SEED) != NN_OK ||
        (distributed && (nn_set_allreduce(net, mpi_sum, NULL, world) != NN_OK ||
                         nn_set_sync_batchnorm(net, sync) != NN_OK || nn_batch_shard(&d, rank, world) != NN_OK))) {
        fprintf(stderr, "rank %d: %s\n", rank, nn_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (step = 0; step < STEPS; step++) {
        if (step == STEPS / 2 && rank == die) {
            fprintf(stderr, "rank %d: %s at step %d (the failure test)\n", rank, kill_it ? "killed" : "exiting", step);
            if (kill_it) kill(getpid(), SIGKILL);
            _exit(3);
        }
        if (nn_next_batch(&d, BATCH, x, y) != NN_OK || !isfinite(nn_train_step(net, opt, x, y, local))) {
            fprintf(stderr, "rank %d: %s\n", rank, nn_error());
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    nn_dataset_free(&d);
    nn_optim_free(opt);
    return net;
}

static void check_training(int bn, int sync, const char *name)
{
    nn_net *net = make_net(bn, 1), *single;
    size_t n = params_copy(net, NULL);
    float *start = (float *)malloc(n * sizeof(float)), *mine = (float *)malloc(n * sizeof(float));
    float *one = (float *)malloc(n * sizeof(float));
    char why[200], label[120];
    int ok;
    double d = 0;
    params_copy(net, start);
    snprintf(label, sizeof label, "%s: the same seed gives the same parameters on every rank", name);
    result(same_everywhere(start, n), label, "the ranks start from different parameters");
    nn_net_free(net);
    net = train(bn, sync, 1, -1);
    params_copy(net, mine);
    snprintf(label, sizeof label, "%s: after %d steps every rank's parameters are bit-identical", name, STEPS);
    result(same_everywhere(mine, n), label, "they differ");
    if (rank == 0) {
        single = train(bn, sync, 0, -1);
        params_copy(single, one);
        d = rel_diff(single, mine, one);
        nn_net_free(single);
    }
    ok = rank != 0 || d <= 1e-5;
    snprintf(why, sizeof why, "relative difference %g", d);
    snprintf(label, sizeof label, "%s: %d processes with shards of a batch of %d = one process (1e-5)", name, world,
             BATCH);
    result(ok, label, why);
    if (rank == 0) printf("     (largest relative difference %.3g)\n", d);
    nn_net_free(net);
    free(start);
    free(mine);
    free(one);
}

static void check_evaluation(void)
{
    nn_net *net = train(1, 1, 1, -1);
    nn_dataset d, part = {0};
    int confusion[100], full[100], first, i, correct = 0;
    float loss, acc, part_loss;
    double sum, total = 0;
    char why[200];
    data_set(&d);
    nn_evaluate(net, &d, &loss, &acc, full);
    part.n = nn_shard(d.n, rank, world, &first);
    part.shape = d.shape;
    part.num_classes = 10;
    part.x = d.x + (size_t)first * SAMPLE;
    part.y = d.y + first;
    nn_evaluate(net, &part, &part_loss, NULL, confusion);
    sum = (double)part_loss * part.n;
    MPI_Allreduce(MPI_IN_PLACE, confusion, 100, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&sum, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    for (i = 0; i < 10; i++) correct += confusion[i * 11];
    snprintf(why, sizeof why, "accuracy %g (%d correct), one process %g; loss %g, one process %g",
             (double)correct / d.n, correct, (double)acc, total / d.n, (double)loss);
    result(!memcmp(confusion, full, sizeof full) && (float)correct / (float)d.n == acc &&
           fabs(total / d.n - loss) <= 1e-5 * (1 + fabs(loss)),
           "sharded evaluation: exactly one process's confusion matrix and accuracy", why);
    nn_net_free(net);
}

int main(int argc, char **argv)
{
    nn_rng r = nn_rng_new(5);
    int i, die = -1;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    for (i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--die") || !strcmp(argv[i], "--kill")) {
            die = atoi(argv[i + 1]);
            kill_it = !strcmp(argv[i], "--kill");
        }
    nn_set_threads(1);
    for (i = 0; i < N_SAMPLES * SAMPLE; i++) data_x[i] = nn_rng_normal(&r, 0.5f, 1.0f);
    for (i = 0; i < N_SAMPLES; i++) data_y[i] = (int)nn_rng_below(&r, 10);
    if (die >= 0) {
        nn_net_free(train(1, 1, 1, die));   /* never returns on any rank */
        if (rank == 0) printf("FAIL the training went on after rank %d died\n", die);
        MPI_Finalize();
        return 1;
    }
    check_training(0, 0, "no BatchNorm");
    check_training(1, 1, "synchronised BatchNorm");
    check_evaluation();
    if (rank == 0) printf("mpi_test: %d passed, %d failed\n", passed, failed);
    MPI_Finalize();
    return failed != 0;
}
