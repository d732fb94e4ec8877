/* Learning-rate schedules: values worked out by hand, the edge cases, the policy for
   bad arguments, and a schedule driving an optimiser. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

/* Bit equality for floats, with both values in the message when they differ. */
#define CHECK_SAME(a, b) CHECK((a) == (b), "%.9g vs %.9g", (double)(a), (double)(b))

static void test_step_decay_by_hand(void)
{
    /* PyTorch's StepLR example: lr 0.05, step_size 30, gamma 0.1 gives 0.05 for steps
       0..29, 0.005 for 30..59, 0.0005 for 60..89. */
    CHECK_SAME(nn_lr_step_decay(0.05f, 0, 30, 0.1f), 0.05f);
    CHECK_SAME(nn_lr_step_decay(0.05f, 29, 30, 0.1f), 0.05f);
    CHECK_NEAR(nn_lr_step_decay(0.05f, 30, 30, 0.1f), 0.005, 1e-7);
    CHECK_NEAR(nn_lr_step_decay(0.05f, 59, 30, 0.1f), 0.005, 1e-7);
    CHECK_NEAR(nn_lr_step_decay(0.05f, 60, 30, 0.1f), 0.0005, 1e-7);
    CHECK_NEAR(nn_lr_step_decay(0.05f, 89, 30, 0.1f), 0.0005, 1e-7);
    /* gamma 0.5 only changes the exponent, so these are exact: 0.1 / 2^floor(step/3). */
    CHECK_SAME(nn_lr_step_decay(0.1f, 2, 3, 0.5f), 0.1f);
    CHECK_SAME(nn_lr_step_decay(0.1f, 3, 3, 0.5f), 0.05f);
    CHECK_SAME(nn_lr_step_decay(0.1f, 5, 3, 0.5f), 0.05f);
    CHECK_SAME(nn_lr_step_decay(0.1f, 6, 3, 0.5f), 0.025f);
    CHECK_SAME(nn_lr_step_decay(0.1f, 30, 3, 0.5f), 0.1f / 1024.0f);
    /* step_size 1: a decay at every step, 0.1 * 0.1^step. */
    CHECK_SAME(nn_lr_step_decay(0.1f, 0, 1, 0.1f), 0.1f);
    CHECK_NEAR(nn_lr_step_decay(0.1f, 1, 1, 0.1f), 0.01, 1e-7);
    CHECK_NEAR(nn_lr_step_decay(0.1f, 2, 1, 0.1f), 0.001, 1e-7);
    CHECK_NEAR(nn_lr_step_decay(0.1f, 5, 1, 0.1f), 1e-6, 1e-7);
    /* gamma 1 never decays; gamma 0 drops to 0 after the first period (as PyTorch). */
    CHECK_SAME(nn_lr_step_decay(0.3f, 1000000, 7, 1.0f), 0.3f);
    CHECK_SAME(nn_lr_step_decay(0.3f, 6, 7, 0.0f), 0.3f);
    CHECK_SAME(nn_lr_step_decay(0.3f, 7, 7, 0.0f), 0.0f);
}

static void test_cosine_by_hand(void)
{
    /* base 1, min 0, 4 steps: (1 + cos(pi t / 4)) / 2 = 1, 0.853553, 0.5, 0.146447, 0. */
    CHECK_SAME(nn_lr_cosine(1.0f, 0, 4, 0.0f), 1.0f);
    CHECK_NEAR(nn_lr_cosine(1.0f, 1, 4, 0.0f), 0.8535533906, 1e-7);
    CHECK_SAME(nn_lr_cosine(1.0f, 2, 4, 0.0f), 0.5f);
    CHECK_NEAR(nn_lr_cosine(1.0f, 3, 4, 0.0f), 0.1464466094, 1e-7);
    CHECK_SAME(nn_lr_cosine(1.0f, 4, 4, 0.0f), 0.0f);
    /* base 0.1, min 0.001, 100 steps: t = 25 gives 0.001 + 0.099 (1 + 0.707107) / 2,
       t = 50 the midpoint 0.0505, t = 75 gives 0.001 + 0.099 (1 - 0.707107) / 2. */
    CHECK_SAME(nn_lr_cosine(0.1f, 0, 100, 0.001f), 0.1f);
    CHECK_NEAR(nn_lr_cosine(0.1f, 25, 100, 0.001f), 0.0855017857, 1e-7);
    CHECK_NEAR(nn_lr_cosine(0.1f, 50, 100, 0.001f), 0.0505, 1e-7);
    CHECK_NEAR(nn_lr_cosine(0.1f, 75, 100, 0.001f), 0.0154982143, 1e-7);
    CHECK_SAME(nn_lr_cosine(0.1f, 100, 100, 0.001f), 0.001f);
}

static void test_cosine_edges(void)
{
    long t;
    float previous = 2.0f;
    /* Beyond the end the rate stays at min_lr (PyTorch's formula would climb back to
       base_lr by step 2 * total_steps). */
    CHECK_SAME(nn_lr_cosine(0.1f, 101, 100, 0.001f), 0.001f);
    CHECK_SAME(nn_lr_cosine(0.1f, 150, 100, 0.001f), 0.001f);
    CHECK_SAME(nn_lr_cosine(0.1f, 200, 100, 0.001f), 0.001f);
    CHECK_SAME(nn_lr_cosine(0.1f, 1000000, 100, 0.001f), 0.001f);
    /* One step in all: base_lr for the only update, then min_lr. */
    CHECK_SAME(nn_lr_cosine(0.5f, 0, 1, 0.25f), 0.5f);
    CHECK_SAME(nn_lr_cosine(0.5f, 1, 1, 0.25f), 0.25f);
    /* Never increases over a run, and stays within [min_lr, base_lr]. */
    for (t = 0; t <= 1100; t++) {
        float lr = nn_lr_cosine(1.0f, t, 1000, 0.01f);
        CHECK(lr <= previous && lr >= 0.01f && lr <= 1.0f, "step %ld: %.9g after %.9g", t, lr, previous);
        previous = lr;
    }
}

static void test_bad_arguments_leave_the_rate(void)
{
    /* A negative step counts as step 0; a period or a length <= 0 turns the schedule off. */
    CHECK_SAME(nn_lr_step_decay(0.1f, -1, 3, 0.5f), 0.1f);
    CHECK_SAME(nn_lr_step_decay(0.1f, -100, 1, 0.5f), 0.1f);
    CHECK_SAME(nn_lr_step_decay(0.1f, 10, 0, 0.5f), 0.1f);
    CHECK_SAME(nn_lr_step_decay(0.1f, 10, -3, 0.5f), 0.1f);
    CHECK_SAME(nn_lr_cosine(0.1f, -1, 100, 0.0f), 0.1f);
    CHECK_SAME(nn_lr_cosine(0.1f, -100, 100, 0.0f), 0.1f);
    CHECK_SAME(nn_lr_cosine(0.1f, 10, 0, 0.0f), 0.1f);
    CHECK_SAME(nn_lr_cosine(0.1f, 10, -5, 0.0f), 0.1f);
}

/* One weight, SGD without momentum, gradient 1 at every step: after the updates the
   weight is w0 - (the sum of the rates used), which shows that each update ran at the
   rate the schedule gave for the steps done before it. */
static void test_schedule_drives_sgd(void)
{
    nn_net *net = nn_net_new(nn_shape1(1));
    nn_layer_desc d = nn_linear(1);
    nn_sgd_desc sgd = {0.1f, 0, 0, 0, 0};
    nn_optim *opt;
    nn_param *w;
    float rates[5];
    int i;
    d.no_bias = 1;
    nn_add(net, d);
    CHECK(nn_build(net, 1, 0) == NN_OK, "%s", nn_error());
    opt = nn_sgd(net, sgd);
    w = nn_get_param(net, 0);
    w->value[0] = 1.0f;
    for (i = 0; i < 5; i++) {
        nn_optim_set_lr(opt, nn_lr_step_decay(0.1f, nn_optim_steps(opt), 2, 0.5f));
        rates[i] = nn_optim_get_lr(opt);
        w->grad[0] = 1.0f;
        nn_optim_step(opt);
    }
    /* Rates 0.1, 0.1, 0.05, 0.05, 0.025: the weight moves by 0.325 in all. */
    CHECK_SAME(rates[0], 0.1f);
    CHECK_SAME(rates[1], 0.1f);
    CHECK_SAME(rates[2], 0.05f);
    CHECK_SAME(rates[3], 0.05f);
    CHECK_SAME(rates[4], 0.025f);
    CHECK_NEAR(w->value[0], 0.675, 1e-6);
    nn_optim_free(opt);
    nn_net_free(net);
}

/* The vectorised updates against the scalar rules of PyTorch's documentation, bit for
   bit, on tensors of 35 and 5 values (a partial group of four at the end), for three
   steps of SGD (momentum, dampening, weight decay; then Nesterov), Adam, AdamW, Adamax. */
static void test_updates_match_scalar_rules(void)
{
    enum { SIZE = 40 };
    int kind, step, bad = 0;
    size_t i;
    for (kind = 0; kind < 5; kind++) {
        nn_net *net = nn_net_new(nn_shape1(7));
        nn_sgd_desc sgd = {0.05f, 0.9f, 0.1f, 0.01f, 0};
        nn_adam_desc adam = {2e-3f, 0.8f, 0.95f, 1e-6f, 0.03f};
        nn_optim *opt;
        float p[SIZE], m[SIZE], v[SIZE];
        nn_rng r = nn_rng_new(5 + kind);
        nn_add(net, nn_linear(5));
        CHECK(nn_build(net, 1, 1) == NN_OK, "%s", nn_error());
        if (kind == 1) { sgd.nesterov = 1; sgd.dampening = 0.0f; }   /* as PyTorch requires */
        opt = kind < 2 ? nn_sgd(net, sgd) : kind == 2 ? nn_adam(net, adam)
            : kind == 3 ? nn_adamw(net, adam) : nn_adamax(net, adam);
        if (!opt) {
            CHECK(0, "optimiser %d: %s", kind, nn_error());
            nn_net_free(net);
            continue;
        }
        for (i = 0; i < SIZE; i++) m[i] = v[i] = 0.0f;
        for (step = 1; step <= 3; step++) {
            int j, at = 0;
            for (j = 0; j < nn_num_param_tensors(net); j++) {
                nn_param *q = nn_get_param(net, j);
                for (i = 0; i < q->size; i++, at++) {
                    float g, w;
                    q->grad[i] = 2.0f * nn_rng_uniform(&r) - 1.0f;
                    if (step == 1) p[at] = q->value[i];
                    g = q->grad[i];
                    w = p[at];
                    if (kind < 2) {
                        g += sgd.weight_decay * w;
                        m[at] = step == 1 ? g : sgd.momentum * m[at] + (1.0f - sgd.dampening) * g;
                        g = sgd.nesterov ? g + sgd.momentum * m[at] : m[at];
                        p[at] = w - sgd.lr * g;
                    } else {
                        float bc1 = 1.0f - (float)pow(adam.beta1, step);
                        float bc2 = (float)sqrt(1.0 - pow(adam.beta2, step));
                        g += (kind == 3 ? 0.0f : adam.weight_decay) * w;
                        if (kind == 3) w *= 1.0f - adam.lr * adam.weight_decay;
                        m[at] = adam.beta1 * m[at] + (1.0f - adam.beta1) * g;
                        if (kind == 4) {
                            float u = adam.beta2 * v[at], a = fabsf(g) + adam.eps;
                            v[at] = u > a ? u : a;
                            p[at] = w - adam.lr / bc1 * m[at] / v[at];
                        } else {
                            v[at] = adam.beta2 * v[at] + (1.0f - adam.beta2) * g * g;
                            p[at] = w - adam.lr / bc1 * m[at] / (sqrtf(v[at]) / bc2 + adam.eps);
                        }
                    }
                }
            }
            nn_optim_step(opt);
            for (j = 0, at = 0; j < nn_num_param_tensors(net); j++) {
                nn_param *q = nn_get_param(net, j);
                for (i = 0; i < q->size; i++, at++) bad += q->value[i] != p[at];
            }
        }
        CHECK(bad == 0, "optimiser %d: %d values differ from the scalar rule", kind, bad);
        nn_optim_free(opt);
        nn_net_free(net);
    }
}

int main(void)
{
    RUN(test_step_decay_by_hand);
    RUN(test_cosine_by_hand);
    RUN(test_cosine_edges);
    RUN(test_bad_arguments_leave_the_rate);
    RUN(test_schedule_drives_sgd);
    RUN(test_updates_match_scalar_rules);
    return test_end("test_optim");
}
