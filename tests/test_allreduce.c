/* Data-parallel training without MPI: nn_set_allreduce, nn_set_sync_batchnorm,
   nn_shard and nn_batch_shard, with an in-process all-reduce that simulates P ranks
   (one thread per rank, each with its own net, meeting at a barrier). tests/mpi_test.c
   runs the same checks under real MPI. */
#define _POSIX_C_SOURCE 200809L   /* pthread_barrier_t */
#include <pthread.h>
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

#define MAX_RANKS 4
#define SUM_CAP ((size_t)1 << 21)

/* ---- The simulated world ---------------------------------------------------------- */

typedef struct {
    int P;
    pthread_barrier_t bar;
    float *bufs[MAX_RANKS];
    size_t counts[MAX_RANKS];
    float *sum;
    int mismatch;   /* the ranks called with different counts */
} world_t;

typedef struct {
    world_t *w;
    int rank;
    long calls;
} rank_ctx;

/* Sums in rank order (the same bits on every rank), like one MPI_Allreduce. */
static int fake_sum(float *buf, size_t count, void *ctx)
{
    rank_ctx *r = (rank_ctx *)ctx;
    world_t *w = r->w;
    int k;
    size_t j;
    r->calls++;
    w->bufs[r->rank] = buf;
    w->counts[r->rank] = count;
    pthread_barrier_wait(&w->bar);
    if (r->rank == 0) {
        for (k = 1; k < w->P; k++) w->mismatch |= w->counts[k] != count;
        for (j = 0; j < count && j < SUM_CAP; j++) {
            float s = w->bufs[0][j];
            for (k = 1; k < w->P; k++) s += w->bufs[k][j];
            w->sum[j] = s;
        }
    }
    pthread_barrier_wait(&w->bar);
    memcpy(buf, w->sum, (count < SUM_CAP ? count : SUM_CAP) * sizeof(float));
    pthread_barrier_wait(&w->bar);
    return 0;
}

/* ---- A small synthetic problem ---------------------------------------------------- */

#define N_SAMPLES 48
#define SHAPE nn_shape3(3, 8, 8)

static float data_x[N_SAMPLES * 3 * 8 * 8];
static int data_y[N_SAMPLES];

static void make_data(void)
{
    nn_rng r = nn_rng_new(5);
    int i;
    for (i = 0; i < N_SAMPLES * 3 * 64; i++) data_x[i] = nn_rng_normal(&r, 0.5f, 1.0f);
    for (i = 0; i < N_SAMPLES; i++) data_y[i] = (int)nn_rng_below(&r, 10);
}

static void data_set(nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->n = N_SAMPLES;
    d->shape = SHAPE;
    d->num_classes = 10;
    d->x = data_x;
    d->y = data_y;
}

/* Conv -> (BatchNorm) -> ReLU -> MaxPool -> Linear -> (BatchNorm1d) -> ReLU -> Linear. */
static nn_net *make_net(int bn, int batch)
{
    nn_net *net = nn_net_new(SHAPE);
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
        nn_net_free(net);
        return NULL;
    }
    return net;
}

#define STEPS 20
#define SEED 77

static nn_optim *make_opt(nn_net *net)
{
    nn_sgd_desc d = {0};
    d.lr = 0.05f;
    d.momentum = 0.9f;
    return nn_sgd(net, d);
}

/* All parameters and buffers, back to back. */
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

/* One process with the global batch. */
static int train_single(int bn, int batch, float *out)
{
    nn_net *net = make_net(bn, batch);
    nn_optim *opt = net ? make_opt(net) : NULL;
    nn_dataset d;
    float x[16 * 192];
    int y[16], step, ok = opt != NULL;
    data_set(&d);
    ok = ok && nn_batch_start(&d, SEED) == NN_OK;
    for (step = 0; ok && step < STEPS; step++)
        ok = nn_next_batch(&d, batch, x, y) == NN_OK && isfinite(nn_train_step(net, opt, x, y, batch));
    if (ok) params_copy(net, out);
    nn_dataset_free(&d);
    nn_optim_free(opt);
    nn_net_free(net);
    return ok;
}

typedef struct {
    world_t *w;
    int rank, bn, sync, batch, ok;
    float *out;
    unsigned char same_start;
} rank_job;

static void *train_rank(void *arg)
{
    rank_job *j = (rank_job *)arg;
    int local = nn_shard(j->batch, j->rank, j->w->P, NULL), step;
    nn_net *net = make_net(j->bn, local);
    nn_optim *opt = net ? make_opt(net) : NULL;
    rank_ctx ctx;
    nn_dataset d;
    float x[16 * 192];
    int y[16];
    nn_set_threads(1);
    ctx.w = j->w;
    ctx.rank = j->rank;
    ctx.calls = 0;
    data_set(&d);
    j->ok = opt && nn_set_allreduce(net, fake_sum, &ctx, j->w->P) == NN_OK &&
            nn_set_sync_batchnorm(net, j->sync) == NN_OK && nn_batch_start(&d, SEED) == NN_OK &&
            nn_batch_shard(&d, j->rank, j->w->P) == NN_OK;
    if (j->ok) params_copy(net, j->out);   /* the start, before any step */
    for (step = 0; j->ok && step < STEPS; step++)
        j->ok = nn_next_batch(&d, j->batch, x, y) == NN_OK && isfinite(nn_train_step(net, opt, x, y, local));
    if (j->ok) params_copy(net, j->out + params_copy(net, NULL));
    nn_dataset_free(&d);
    nn_optim_free(opt);
    nn_net_free(net);
    return NULL;
}

/* Runs P ranks; out[r] gets rank r's parameters at the start, then after STEPS. */
static int train_world(int P, int bn, int sync, int batch, float **out)
{
    world_t w;
    rank_job jobs[MAX_RANKS];
    pthread_t ids[MAX_RANKS];
    int r, ok = 1;
    memset(&w, 0, sizeof w);
    w.P = P;
    w.sum = (float *)malloc(SUM_CAP * sizeof(float));
    pthread_barrier_init(&w.bar, NULL, (unsigned)P);
    for (r = 0; r < P; r++) {
        jobs[r].w = &w; jobs[r].rank = r; jobs[r].bn = bn; jobs[r].sync = sync;
        jobs[r].batch = batch; jobs[r].out = out[r]; jobs[r].ok = 0;
        pthread_create(&ids[r], NULL, train_rank, &jobs[r]);
    }
    for (r = 0; r < P; r++) {
        pthread_join(ids[r], NULL);
        ok = ok && jobs[r].ok;
    }
    pthread_barrier_destroy(&w.bar);
    free(w.sum);
    return ok && !w.mismatch;
}

/* max |a - b| / max |b| over each tensor of the net's layout, the largest of them. */
static double rel_diff(nn_net *layout, const float *a, const float *b)
{
    double worst = 0;
    size_t at = 0, k;
    int i;
    for (i = 0; i < nn_num_param_tensors(layout); i++) {
        size_t n = nn_get_param(layout, i)->size;
        double d = 0, m = 0;
        for (k = 0; k < n; k++) {
            double e = fabs((double)a[at + k] - b[at + k]);
            if (e > d) d = e;
            if (fabs((double)b[at + k]) > m) m = fabs((double)b[at + k]);
        }
        if (m > 0 && d / m > worst) worst = d / m;
        at += n;
    }
    return worst;
}

/* P ranks with shards of the global batch against one process with the whole batch. */
static void check_world(int P, int bn, int sync, int batch, int expect_equal)
{
    nn_net *layout = make_net(bn, 1);
    size_t n = params_copy(layout, NULL);
    float *single = (float *)malloc(n * sizeof(float)), *out[MAX_RANKS];
    int r;
    double d;
    for (r = 0; r < P; r++) out[r] = (float *)malloc(2 * n * sizeof(float));
    CHECK(train_single(bn, batch, single), "single process: %s", nn_error());
    CHECK(train_world(P, bn, sync, batch, out), "%d ranks: %s", P, nn_error());
    for (r = 1; r < P; r++) {
        CHECK(!memcmp(out[r], out[0], n * sizeof(float)), "rank %d starts from other parameters", r);
        CHECK(!memcmp(out[r] + n, out[0] + n, n * sizeof(float)),
              "rank %d's parameters after %d steps differ from rank 0's", r, STEPS);
    }
    d = rel_diff(layout, out[0] + n, single);
    if (expect_equal)
        CHECK(d <= 1e-5, "P=%d bn=%d sync=%d batch=%d: relative difference %g to one process", P, bn, sync,
              batch, d);
    else   /* per-process statistics are not the global batch's: this must differ */
        CHECK(d > 1e-3, "P=%d unsynchronised BatchNorm matches one process (%g): the test cannot tell", P, d);
    for (r = 0; r < P; r++) free(out[r]);
    free(single);
    nn_net_free(layout);
}

static void test_same_parameters_as_one_process(void)
{
    check_world(2, 0, 0, 12, 1);
    check_world(3, 0, 0, 12, 1);
}

static void test_sync_batchnorm_as_one_process(void)
{
    check_world(2, 1, 1, 12, 1);
    check_world(3, 1, 1, 12, 1);
    check_world(2, 1, 0, 12, 0);
}

/* ---- Sharding ----------------------------------------------------------------------- */

static void test_shard_split(void)
{
    static const int counts[3] = {4, 3, 3}, firsts[3] = {0, 4, 7};
    int r, first;
    for (r = 0; r < 3; r++) {
        CHECK(nn_shard(10, r, 3, &first) == counts[r] && first == firsts[r], "rank %d of 3: %d at %d", r,
              nn_shard(10, r, 3, NULL), first);
    }
    CHECK(nn_shard(2, 2, 3, &first) == 0 && first == 2, "more ranks than items");
    CHECK(nn_shard(10, 3, 3, &first) == 0 && first == 0, "rank out of range");
    CHECK(nn_shard(10, 0, 0, NULL) == 0 && nn_shard(-1, 0, 1, NULL) == 0, "bad world");
    CHECK(nn_shard(10, 0, 1, &first) == 10 && first == 0, "one rank");
}

/* The shards of P batchers concatenated are the batch of one, augmentation included,
   over batches that straddle epochs and a B not divisible by P. */
static void test_batch_shard_union(void)
{
    static const int worlds[3] = {2, 3, 4}, batches[3] = {12, 7, 5};
    nn_augment aug = {1, 2, 0};
    size_t size = 3 * 64;
    int wi, bi, b, r;
    for (wi = 0; wi < 3; wi++)
        for (bi = 0; bi < 3; bi++) {
            int P = worlds[wi], B = batches[bi], same = 1;
            nn_dataset one, part[4];
            float full[16 * 192], mine[16 * 192];
            int fy[16], my[16];
            if (B < P) continue;
            data_set(&one);
            nn_batch_start(&one, 3);
            nn_set_augment(&one, aug);
            for (r = 0; r < P; r++) {
                data_set(&part[r]);
                nn_batch_start(&part[r], 3);
                nn_set_augment(&part[r], aug);
                CHECK(nn_batch_shard(&part[r], r, P) == NN_OK, "%s", nn_error());
            }
            for (b = 0; b < 20; b++) {   /* 20 x B > 2 epochs of 48 */
                nn_next_batch(&one, B, full, fy);
                for (r = 0; r < P; r++) {
                    int first, count = nn_shard(B, r, P, &first);
                    CHECK(nn_next_batch(&part[r], B, mine, my) == NN_OK, "%s", nn_error());
                    same &= !memcmp(mine, full + (size_t)first * size, (size_t)count * size * sizeof(float)) &&
                            !memcmp(my, fy + first, (size_t)count * sizeof(int));
                }
            }
            CHECK(same, "P=%d B=%d: the shards are not the single batch", P, B);
            for (r = 0; r < P; r++) {
                CHECK(part[r].epoch == one.epoch && part[r].cursor == one.cursor, "P=%d B=%d: rank %d's batcher "
                      "is elsewhere", P, B, r);
                nn_dataset_free(&part[r]);
            }
            nn_dataset_free(&one);
        }
}

static void test_batch_shard_errors(void)
{
    nn_dataset d;
    float x[16 * 192];
    int y[16];
    data_set(&d);
    CHECK(nn_batch_shard(NULL, 0, 1) == NN_ERR_ARG, "NULL set");
    CHECK(nn_batch_shard(&d, 0, 0) == NN_ERR_ARG, "world 0");
    CHECK(nn_batch_shard(&d, 2, 2) == NN_ERR_ARG, "rank 2 of 2");
    CHECK(nn_batch_shard(&d, -1, 2) == NN_ERR_ARG, "rank -1");
    CHECK(nn_batch_shard(&d, 1, 3) == NN_OK, "%s", nn_error());
    CHECK(nn_next_batch(&d, 2, x, y) == NN_ERR_ARG && d.cursor == 0, "a global batch smaller than the world");
    CHECK(nn_next_batch(&d, 3, x, y) == NN_OK && d.cursor == 3, "%s", nn_error());
    CHECK(nn_batch_shard(&d, 0, 1) == NN_OK && nn_next_batch(&d, 2, x, y) == NN_OK && d.cursor == 5,
          "world 1 ends sharding");
    nn_dataset_free(&d);
}

/* ---- Sharded evaluation ---------------------------------------------------------- */

static void test_sharded_evaluation(void)
{
    nn_net *net = make_net(1, 5);
    nn_dataset d;
    int full[100], sum[100], part_c[100], P, r, k;
    float loss, acc;
    data_set(&d);
    CHECK(net && nn_evaluate(net, &d, &loss, &acc, full) == NN_OK, "%s", nn_error());
    for (P = 2; P <= 4; P++) {
        double loss_sum = 0;
        int correct = 0;
        memset(sum, 0, sizeof sum);
        for (r = 0; r < P; r++) {
            nn_dataset part = {0};
            int first;
            float l;
            part.n = nn_shard(d.n, r, P, &first);
            part.shape = d.shape;
            part.num_classes = 10;
            part.x = d.x + (size_t)first * 192;
            part.y = d.y + first;
            CHECK(nn_evaluate(net, &part, &l, NULL, part_c) == NN_OK, "%s", nn_error());
            for (k = 0; k < 100; k++) sum[k] += part_c[k];
            loss_sum += (double)l * part.n;
        }
        for (k = 0; k < 10; k++) correct += sum[k * 11];
        CHECK(!memcmp(sum, full, sizeof sum), "P=%d: the summed confusion matrices differ", P);
        CHECK((float)correct / (float)d.n == acc, "P=%d: accuracy %g, one process %g", P,
              (float)correct / (float)d.n, acc);
        CHECK_NEAR(loss_sum / d.n, loss, 1e-5);
    }
    nn_net_free(net);
}

/* ---- Buckets and failures --------------------------------------------------------- */

typedef struct {
    size_t counts[16];
    float *ptrs[16];
    int calls, fail_at;   /* the call that returns 7 (-1: none) */
} recorder;

/* One rank of a world of one: records the calls and leaves the values. */
static int record_sum(float *buf, size_t count, void *ctx)
{
    recorder *r = (recorder *)ctx;
    if (r->calls < 16) {
        r->counts[r->calls] = count;
        r->ptrs[r->calls] = buf;
    }
    return r->calls++ == r->fail_at ? 7 : 0;
}

static void test_buckets(void)
{
    nn_net *net = nn_net_new(nn_shape3(3, 32, 32));
    recorder rec;
    nn_optim *opt;
    float x[2 * 3072], g[10];
    int y[2] = {1, 2}, i;
    memset(&rec, 0, sizeof rec);
    rec.fail_at = -1;
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(400));   /* 1,228,800 weights: more than a bucket */
    nn_add(net, nn_relu());
    nn_add(net, nn_linear(10));
    CHECK(nn_build(net, 2, 1) == NN_OK && (opt = make_opt(net)) != NULL, "%s", nn_error());
    for (i = 0; i < 2 * 3072; i++) x[i] = (float)(i % 7) - 3.0f;
    CHECK(nn_set_allreduce(net, record_sum, &rec, 2) == NN_OK, "%s", nn_error());
    CHECK(isfinite(nn_train_step(net, opt, x, y, 2)), "%s", nn_error());
    /* reverse order: 3.bias, 3.weight, 1.bias in one bucket, then 1.weight in place */
    CHECK(rec.calls == 2 && rec.counts[0] == 10 + 4000 + 400 && rec.counts[1] == 1228800,
          "%d calls: %lu, %lu", rec.calls, (unsigned long)rec.counts[0], (unsigned long)rec.counts[1]);
    CHECK(rec.ptrs[1] == nn_get_param(net, 0)->grad, "the large tensor is not summed in place");
    /* world 2 and a hook that leaves the values: every gradient is halved */
    nn_forward(net, x, 2);
    {
        const float *logits = nn_layer_output(net, 3);
        float dy[20];
        nn_softmax_cross_entropy(logits, y, 2, 10, dy);
        nn_backward(net, dy);
    }
    memcpy(g, nn_get_param(net, 3)->grad, sizeof g);
    CHECK(nn_set_allreduce(net, record_sum, &rec, 2) == NN_OK && nn_optim_step(opt) == NN_OK, "%s", nn_error());
    for (i = 0; i < 10; i++) CHECK(nn_get_param(net, 3)->grad[i] == g[i] / 2, "bias grad %d not halved", i);
    nn_optim_free(opt);
    nn_net_free(net);
}

static void test_failing_hook(void)
{
    int bn;
    for (bn = 0; bn < 2; bn++) {
        nn_net *net = make_net(bn, 4);
        nn_optim *opt = make_opt(net);
        size_t n = params_copy(net, NULL);
        float *before = (float *)malloc(n * sizeof(float)), *after = (float *)malloc(n * sizeof(float));
        float x[4 * 192];
        int y[4] = {0, 1, 2, 3}, i, call;
        recorder rec;
        for (i = 0; i < 4 * 192; i++) x[i] = data_x[i];
        CHECK(opt && isfinite(nn_train_step(net, opt, x, y, 4)), "%s", nn_error());
        nn_set_sync_batchnorm(net, bn);
        /* fail each call of a step in turn: the gradient buckets, and with synchronised
           BatchNorm its three sums per layer */
        for (call = 0; call < (bn ? 7 : 1); call++) {
            memset(&rec, 0, sizeof rec);
            rec.fail_at = call;
            nn_set_allreduce(net, record_sum, &rec, 2);
            params_copy(net, before);
            CHECK(isnan(nn_train_step(net, opt, x, y, 4)), "bn=%d: a failing hook (call %d) gave a loss", bn, call);
            CHECK(strstr(nn_error(), "all-reduce hook returned 7") != NULL, "bn=%d: %s", bn, nn_error());
            CHECK(!bn || call >= 6 || strstr(nn_error(), "synchronised BatchNorm") != NULL, "%s", nn_error());
            params_copy(net, after);
            CHECK(!memcmp(before, after, n * sizeof(float)), "bn=%d call %d: the parameters or running "
                  "statistics changed", bn, call);
            CHECK(nn_optim_steps(opt) == 1, "the step was counted");
        }
        /* nn_optim_step too; NN_ERR_IO */
        memset(&rec, 0, sizeof rec);
        rec.fail_at = 0;
        nn_set_sync_batchnorm(net, 0);
        nn_set_allreduce(net, record_sum, &rec, 2);
        CHECK(nn_optim_step(opt) == NN_ERR_IO, "nn_optim_step with a failing hook: %s", nn_error());
        params_copy(net, after);
        CHECK(!memcmp(before, after, n * sizeof(float)) && nn_optim_steps(opt) == 1, "nn_optim_step updated");
        /* off again: no hook is called */
        CHECK(nn_set_allreduce(net, NULL, NULL, 0) == NN_OK && isfinite(nn_train_step(net, opt, x, y, 4)) &&
              rec.calls == 1, "a hook turned off was called");
        free(before);
        free(after);
        nn_optim_free(opt);
        nn_net_free(net);
    }
}

static void test_arguments(void)
{
    nn_net *net = make_net(0, 2);
    recorder rec;
    memset(&rec, 0, sizeof rec);
    CHECK(nn_set_allreduce(NULL, record_sum, &rec, 2) == NN_ERR_ARG, "NULL net");
    CHECK(nn_set_allreduce(net, record_sum, &rec, 0) == NN_ERR_ARG, "world 0");
    CHECK(nn_set_allreduce(net, NULL, NULL, 0) == NN_OK, "off with any world size");
    CHECK(nn_set_sync_batchnorm(NULL, 1) == NN_ERR_ARG, "NULL net");
    nn_net_free(net);
}

int main(void)
{
    make_data();
    RUN(test_shard_split);
    RUN(test_batch_shard_union);
    RUN(test_batch_shard_errors);
    RUN(test_same_parameters_as_one_process);
    RUN(test_sync_batchnorm_as_one_process);
    RUN(test_sharded_evaluation);
    RUN(test_buckets);
    RUN(test_failing_hook);
    RUN(test_arguments);
    return test_end("test_allreduce");
}
