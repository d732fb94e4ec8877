/* Determinism: the same seed gives bit-identical weights after training, whether the
   net runs on 1, 2 or 3 threads.

   The net is a small CNN with every layer kind whose result could depend on the run:
   Conv2d (im2col + GEMM, col2im), BatchNorm2d (per-channel sums, running statistics),
   MaxPool2d, Dropout (the net's random state) and Linear, trained with Adam. At batch
   32 on 3x16x16 inputs its GEMMs are above nn_gemm's single-thread cut-off
   (m n k >= 64^3), so with 2 threads each is split into 2 parts; for example
   conv1 forward 8 x 8192 x 27, conv1 weight gradient 8 x 27 x 8192 (K = 8192 is
   summed in 22 KC blocks, never split), conv2 input gradient 72 x 2048 x 16,
   Linear(64) forward 32 x 64 x 256. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

#define BATCH 32
#define STEPS 50
#define POOL 4                      /* distinct batches, cycled */
#define SAMPLE (3 * 16 * 16)

static float inputs[POOL * BATCH * SAMPLE];
static int labels[POOL * BATCH];

static void make_data(void)
{
    nn_rng r = nn_rng_new(2024);   /* the data never depends on the net's seed */
    size_t i;
    for (i = 0; i < sizeof inputs / sizeof inputs[0]; i++) inputs[i] = 2.0f * nn_rng_uniform(&r) - 1.0f;
    for (i = 0; i < POOL * BATCH; i++) labels[i] = (int)nn_rng_below(&r, 10);
}

static nn_net *small_cnn(uint64_t seed)
{
    nn_net *net = nn_net_new(nn_shape3(3, 16, 16));
    nn_add(net, nn_conv2d(8, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));       /* 8 x 8 x 8 */
    nn_add(net, nn_conv2d(16, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));       /* 16 x 4 x 4 */
    nn_add(net, nn_flatten());
    nn_add(net, nn_dropout(0.25f));
    nn_add(net, nn_linear(64));
    nn_add(net, nn_relu());
    nn_add(net, nn_dropout(0.25f));
    nn_add(net, nn_linear(10));
    if (nn_build(net, BATCH, seed) != NN_OK) {
        fprintf(stderr, "small_cnn: %s\n", nn_error());
        nn_net_free(net);
        return NULL;
    }
    return net;
}

/* Every parameter and buffer of a net (nn_get_param 0, 1, ...) one after another,
   with the loss of every step. */
#define MAX_PARAMS 32

typedef struct snapshot {
    float *values;
    size_t count;
    int params;
    size_t offset[MAX_PARAMS + 1];
    char name[MAX_PARAMS][32];
    float losses[STEPS];
} snapshot;

static void take(nn_net *net, snapshot *s)
{
    int i;
    CHECK(nn_num_param_tensors(net) <= MAX_PARAMS, "%d parameters, room for %d", nn_num_param_tensors(net), MAX_PARAMS);
    s->params = nn_num_param_tensors(net) < MAX_PARAMS ? nn_num_param_tensors(net) : MAX_PARAMS;
    s->offset[0] = 0;
    for (i = 0; i < s->params; i++) {
        s->offset[i + 1] = s->offset[i] + nn_get_param(net, i)->size;
        memcpy(s->name[i], nn_get_param(net, i)->name, sizeof s->name[i]);
    }
    s->count = s->offset[s->params];
    s->values = (float *)malloc(s->count * sizeof(float));
    for (i = 0; s->values && i < s->params; i++)
        memcpy(s->values + s->offset[i], nn_get_param(net, i)->value,
               (s->offset[i + 1] - s->offset[i]) * sizeof(float));
}

/* Builds the CNN from seed and trains it for STEPS Adam steps on `threads` threads;
   returns 0 on success. Restores the thread count. */
static int train(uint64_t seed, int threads, snapshot *initial, snapshot *final)
{
    int saved = nn_get_threads(), step;
    nn_adam_desc adam = {1e-3f, 0, 0, 0, 0};
    nn_net *net;
    nn_optim *opt;
    nn_set_threads(threads);
    net = small_cnn(seed);
    opt = net ? nn_adam(net, adam) : NULL;
    if (!opt) {
        nn_net_free(net);
        nn_set_threads(saved);
        return -1;
    }
    if (initial) take(net, initial);
    for (step = 0; step < STEPS; step++) {
        int b = step % POOL;
        final->losses[step] = nn_train_step(net, opt, inputs + (size_t)b * BATCH * SAMPLE,
                                            labels + b * BATCH, BATCH);
    }
    take(net, final);
    nn_optim_free(opt);
    nn_net_free(net);
    nn_set_threads(saved);
    return final->values ? 0 : -1;
}

/* Compares two snapshots bit for bit, parameter by parameter (memcmp), and names
   every parameter that differs and the first step whose loss differs. */
static void same(const snapshot *a, const snapshot *b, const char *what)
{
    int i, step;
    CHECK(a->values && b->values && a->params == b->params && a->count == b->count,
          "%s: snapshots missing or of different sizes", what);
    if (!a->values || !b->values || a->params != b->params || a->count != b->count) return;
    for (step = 0; step < STEPS; step++)
        if (memcmp(&a->losses[step], &b->losses[step], sizeof(float)) != 0) break;
    CHECK(step == STEPS, "%s: the loss differs first at step %d: %.9g vs %.9g", what, step + 1,
          step < STEPS ? a->losses[step] : 0.0f, step < STEPS ? b->losses[step] : 0.0f);
    for (i = 0; i < a->params; i++) {
        size_t at = a->offset[i], size = a->offset[i + 1] - at, j;
        if (memcmp(a->values + at, b->values + at, size * sizeof(float)) == 0) continue;
        for (j = 0; j < size && memcmp(&a->values[at + j], &b->values[at + j], sizeof(float)) == 0; j++)
            ;
        CHECK(0, "%s: %s differs, first at element %zu of %zu: %.9g vs %.9g", what, a->name[i], j,
              size, a->values[at + j], b->values[at + j]);
    }
}

static void release(snapshot *s) { free(s->values); s->values = NULL; }

/* The comparisons below would pass vacuously if training did nothing or the seed were
   ignored: show that the weights move, the loss is finite, and the seed matters. */
static void test_training_moves_and_seed_matters(void)
{
    snapshot start, a, other;
    int step;
    CHECK(train(7, 1, &start, &a) == 0, "%s", nn_error());
    CHECK(train(8, 1, NULL, &other) == 0, "%s", nn_error());
    for (step = 0; step < STEPS; step++)
        CHECK(isfinite(a.losses[step]), "loss %g at step %d", a.losses[step], step + 1);
    CHECK(a.losses[STEPS - 1] < a.losses[0], "loss %g -> %g: no learning", a.losses[0], a.losses[STEPS - 1]);
    CHECK(start.values && a.values && memcmp(start.values, a.values, a.count * sizeof(float)) != 0,
          "50 steps left every weight unchanged");
    CHECK(other.values && a.values && memcmp(other.values, a.values, a.count * sizeof(float)) != 0,
          "seeds 7 and 8 gave the same weights");
    release(&start); release(&a); release(&other);
}

static void test_same_seed_twice(void)
{
    snapshot a, b;
    int threads;
    for (threads = 1; threads <= 2; threads++) {
        char what[32];
        snprintf(what, sizeof what, "%d thread%s, twice", threads, threads > 1 ? "s" : "");
        CHECK(train(7, threads, NULL, &a) == 0 && train(7, threads, NULL, &b) == 0, "%s", nn_error());
        same(&a, &b, what);
        release(&a); release(&b);
    }
}

static void test_thread_count_does_not_matter(void)
{
    snapshot one, two, three;
#ifndef NN_NO_THREADS
    {
        int saved = nn_get_threads();
        nn_set_threads(2);
        CHECK(nn_get_threads() == 2, "asked for 2 threads, got %d", nn_get_threads());
        nn_set_threads(saved);
    }
#endif
    CHECK(train(7, 1, NULL, &one) == 0, "%s", nn_error());
    CHECK(train(7, 2, NULL, &two) == 0, "%s", nn_error());
    CHECK(train(7, 3, NULL, &three) == 0, "%s", nn_error());   /* more threads than cores */
    same(&one, &two, "1 vs 2 threads");
    same(&one, &three, "1 vs 3 threads");
    release(&one); release(&two); release(&three);
}

int main(void)
{
    make_data();
    RUN(test_training_moves_and_seed_matters);
    RUN(test_same_seed_twice);
    RUN(test_thread_count_does_not_matter);
    return test_end("test_determinism");
}
