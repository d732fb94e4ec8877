/* nn_batch_correct (the training accuracy of a step, for any class count) and
   nn_input_shape. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

/* A 3-class net whose logits are its inputs (a Linear set to the identity), so that
   each sample's predicted class is chosen by the test. */
static nn_net *identity_net(int batch)
{
    nn_net *net = nn_net_new(nn_shape1(3));
    int i;
    nn_add(net, nn_linear(3));
    if (nn_build(net, batch, 1) != NN_OK) return net;
    for (i = 0; i < 9; i++) nn_get_param(net, 0)->value[i] = i % 4 == 0 ? 1.0f : 0.0f;
    for (i = 0; i < 3; i++) nn_get_param(net, 1)->value[i] = 0.0f;
    return net;
}

static void test_counts_the_argmax_against_the_labels(void)
{
    /* predictions 2, 0, 1, 0 (a tie of classes 0 and 1: the first wins, as nn_argmax) */
    static const float x[4 * 3] = {0, 1, 5,  3, -1, 2,  0, 7, 6,  4, 4, 1};
    static const int all_right[4] = {2, 0, 1, 0}, two_right[4] = {2, 1, 2, 0}, tie_second[4] = {2, 0, 1, 1};
    nn_net *net = identity_net(4);
    CHECK(nn_forward(net, x, 4) != NULL, "%s", nn_error());
    CHECK(nn_batch_correct(net, all_right, 4) == 4, "got %d of 4", nn_batch_correct(net, all_right, 4));
    CHECK(nn_batch_correct(net, two_right, 4) == 2, "got %d, expected 2", nn_batch_correct(net, two_right, 4));
    CHECK(nn_batch_correct(net, tie_second, 4) == 3, "a tie goes to the first class: got %d, expected 3",
          nn_batch_correct(net, tie_second, 4));
    /* a forward of 2 samples: only those count, and 4 labels are refused */
    CHECK(nn_forward(net, x + 6, 2) != NULL, "%s", nn_error());
    CHECK(nn_batch_correct(net, all_right + 2, 2) == 2, "the last forward's 2 samples");
    CHECK(nn_batch_correct(net, all_right, 4) == -1 && strstr(nn_error(), "2 samples"), "%s", nn_error());
    CHECK(nn_batch_correct(net, all_right + 2, 1) == -1, "1 label for a forward of 2 was accepted");
    nn_net_free(net);
}

static void test_labels_outside_the_classes_count_as_wrong(void)
{
    static const float x[2 * 3] = {0, 1, 5, 3, -1, 2};
    static const int bad[2] = {-1, 3};
    nn_net *net = identity_net(2);
    CHECK(nn_forward(net, x, 2) != NULL, "%s", nn_error());
    CHECK(nn_batch_correct(net, bad, 2) == 0, "got %d", nn_batch_correct(net, bad, 2));
    nn_net_free(net);
}

/* After nn_train_step it counts the logits of the step's forward (before the update),
   for a net of 5 classes and after nn_inference_only. */
static void test_after_a_train_step(void)
{
    enum { N = 16 };
    float x[N * 6];
    int y[N], i, expect = 0;
    nn_rng rng = nn_rng_new(9);
    nn_sgd_desc sgd = {0.5f, 0, 0, 0, 0};
    nn_net *net = nn_net_new(nn_shape3(1, 2, 3));
    nn_optim *opt = NULL;
    const float *logits;
    for (i = 0; i < N * 6; i++) x[i] = nn_rng_normal(&rng, 0.0f, 1.0f);
    for (i = 0; i < N; i++) y[i] = (int)nn_rng_below(&rng, 5);
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(8));
    nn_add(net, nn_tanh());
    nn_add(net, nn_linear(5));
    CHECK(nn_build(net, N, 3) == NN_OK && (opt = nn_sgd(net, sgd)) != NULL, "%s", nn_error());
    if (!opt) { nn_net_free(net); return; }
    CHECK(!isnan(nn_train_step(net, opt, x, y, N)), "%s", nn_error());
    logits = nn_layer_output(net, 3);
    for (i = 0; i < N; i++) expect += nn_argmax(logits + i * 5, 5) == y[i];
    CHECK(expect > 0 && expect < N, "the labels are random: %d of %d right", expect, N);
    CHECK(nn_batch_correct(net, y, N) == expect, "got %d, the logits say %d", nn_batch_correct(net, y, N), expect);
    CHECK(nn_inference_only(net) == NN_OK && nn_forward(net, x, N) != NULL, "%s", nn_error());
    CHECK(nn_batch_correct(net, y, N) >= 0, "inference-only: %s", nn_error());
    nn_optim_free(opt);
    nn_net_free(net);
}

static void test_input_shape(void)
{
    nn_net *net = nn_net_new(nn_shape3(1, 28, 28));
    nn_shape s = nn_input_shape(net);
    CHECK(s.c == 1 && s.h == 28 && s.w == 28, "before nn_build: %d x %d x %d", s.c, s.h, s.w);
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(10));
    CHECK(nn_build(net, 2, 1) == NN_OK, "%s", nn_error());
    s = nn_input_shape(net);
    CHECK(s.c == 1 && s.h == 28 && s.w == 28 && nn_output_shape(net).c == 10, "built: %d x %d x %d", s.c, s.h, s.w);
    nn_net_free(net);
}

int main(void)
{
    RUN(test_counts_the_argmax_against_the_labels);
    RUN(test_labels_outside_the_classes_count_as_wrong);
    RUN(test_after_a_train_step);
    RUN(test_input_shape);
    return test_end("test_accuracy");
}
