/* Networks, Linear and simple activations, losses, optimisers. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"
#include "gradcheck.h"

static void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) x[i] = lo + (hi - lo) * nn_rng_uniform(&r);
}

static void test_mlp_gradcheck(void)
{
    nn_net *net = nn_net_new(nn_shape3(2, 3, 1));
    float x[5 * 6];
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(7));
    nn_add(net, nn_leaky_relu(0.1f));
    nn_add(net, nn_linear(4));
    nn_add(net, nn_relu());
    nn_add(net, nn_linear(3));
    nn_set_input_grad(net, 1);
    CHECK(nn_build(net, 5, 3) == NN_OK, "%s", nn_error());
    fill_uniform(x, 30, -1, 1, 9);
    CHECK(gradcheck_net(net, x, 5, 1e-2, 2e-3, 1000, 1) == 0, "MLP gradients");
    /* A partial batch uses only its own samples. */
    CHECK(gradcheck_net(net, x, 2, 1e-2, 2e-3, 1000, 2) == 0, "MLP gradients, n=2");
    nn_net_free(net);
}

static void test_linear_known_values(void)
{
    nn_net *net = nn_net_new(nn_shape1(2));
    const float x[2] = {1.0f, -2.0f}, dy[3] = {1.0f, 0.5f, -1.0f};
    const float *y;
    const nn_layer *L;
    nn_add(net, nn_linear(3));
    nn_set_input_grad(net, 1);
    CHECK(nn_build(net, 1, 1) == NN_OK, "%s", nn_error());
    L = nn_get_layer(net, 0);
    CHECK(L->weight->shape[0] == 3 && L->weight->shape[1] == 2, "weight is out x in");
    {   /* W = [[1,2],[3,4],[5,6]], b = [0.5, 0, -0.5] */
        int i;
        for (i = 0; i < 6; i++) L->weight->value[i] = (float)(i + 1);
        L->bias->value[0] = 0.5f; L->bias->value[1] = 0.0f; L->bias->value[2] = -0.5f;
    }
    y = nn_forward(net, x, 1);
    CHECK(y[0] == -2.5f && y[1] == -5.0f && y[2] == -7.5f, "y = %g %g %g", y[0], y[1], y[2]);
    nn_backward(net, dy);
    /* dx = dy W = [1 + 1.5 - 5, 2 + 2 - 6]; dW = dy^T x; db = dy */
    CHECK(nn_input_grad(net)[0] == -2.5f && nn_input_grad(net)[1] == -2.0f, "dx");
    CHECK(L->weight->grad[0] == 1.0f && L->weight->grad[1] == -2.0f && L->weight->grad[5] == 2.0f, "dW");
    CHECK(L->bias->grad[2] == -1.0f, "db");
    nn_net_free(net);
}

static void test_leaky_relu_at_zero(void)
{
    nn_net *net = nn_net_new(nn_shape1(3));
    const float x[3] = {0.0f, -2.0f, 3.0f}, dy[3] = {1.0f, 1.0f, 1.0f};
    const float *y;
    nn_add(net, nn_leaky_relu(0.02f));
    nn_set_input_grad(net, 1);
    nn_build(net, 1, 0);
    y = nn_forward(net, x, 1);
    CHECK(y[0] == 0.0f && y[1] == -0.04f && y[2] == 3.0f, "y");
    nn_backward(net, dy);
    /* PyTorch: the derivative at 0 is the negative slope. */
    CHECK(nn_input_grad(net)[0] == 0.02f && nn_input_grad(net)[1] == 0.02f &&
          nn_input_grad(net)[2] == 1.0f, "dx at 0: %g", nn_input_grad(net)[0]);
    nn_net_free(net);
}

static void test_default_init_bounds(void)
{
    nn_net *net = nn_net_new(nn_shape1(400));
    const nn_layer *L;
    size_t i;
    float bound = 1.0f / 20.0f, lo = 1, hi = -1;
    nn_add(net, nn_linear(50));
    nn_build(net, 1, 7);
    L = nn_get_layer(net, 0);
    for (i = 0; i < L->weight->size; i++) {
        if (L->weight->value[i] < lo) lo = L->weight->value[i];
        if (L->weight->value[i] > hi) hi = L->weight->value[i];
    }
    CHECK(lo >= -bound && hi <= bound, "outside U(-1/sqrt(in), 1/sqrt(in)): %g %g", lo, hi);
    CHECK(lo < -0.9f * bound && hi > 0.9f * bound, "does not fill the range: %g %g", lo, hi);
    /* NN_INIT_DEFAULT brings PyTorch's initialisation back after another one. */
    nn_init_weights(net, NN_INIT_CONSTANT, 0.5f, 0.0f, 0.25f, NN_LINEAR);
    CHECK(L->weight->value[3] == 0.5f && L->bias->value[3] == 0.25f, "constant init");
    nn_init_weights(net, NN_INIT_DEFAULT, 0.5f, 0.0f, 0.25f, NN_LINEAR);
    lo = 1; hi = -1;
    for (i = 0; i < L->weight->size; i++) {
        if (L->weight->value[i] < lo) lo = L->weight->value[i];
        if (L->weight->value[i] > hi) hi = L->weight->value[i];
    }
    CHECK(lo >= -bound && hi <= bound && lo < -0.9f * bound && hi > 0.9f * bound,
          "NN_INIT_DEFAULT: weights in [%g, %g]", lo, hi);
    for (i = 0, lo = 0; i < L->bias->size; i++) lo += fabsf(L->bias->value[i]) <= bound && L->bias->value[i] != 0.25f;
    CHECK(lo == (float)L->bias->size, "NN_INIT_DEFAULT: biases not redrawn from U(-bound, bound)");
    nn_net_free(net);
}

/* The first layers with parameters get no input gradient (nobody below needs it) unless
   the input gradient is asked for; the parameter gradients are the same either way. */
static void test_no_input_grad_below_parameters(void)
{
    nn_net *a = nn_net_new(nn_shape3(2, 3, 3)), *b = nn_net_new(nn_shape3(2, 3, 3));
    float x[4 * 18], dy[4 * 5];
    int i;
    fill_uniform(x, 4 * 18, -1, 1, 3);
    fill_uniform(dy, 4 * 5, -1, 1, 4);
    for (i = 0; i < 2; i++) {
        nn_net *net = i ? b : a;
        nn_add(net, nn_flatten());
        nn_add(net, nn_relu());
        nn_add(net, nn_linear(6));
        nn_add(net, nn_tanh());
        nn_add(net, nn_linear(5));
    }
    nn_set_input_grad(b, 1);
    CHECK(nn_build(a, 4, 9) == NN_OK && nn_build(b, 4, 9) == NN_OK, "build: %s", nn_error());
    CHECK(a->plan[2].dx == NN__T_NONE && a->plan[0].dx == NN__T_NONE, "dx below every parameter planned");
    CHECK(a->plan[3].dx != NN__T_NONE && b->plan[2].dx != NN__T_NONE, "a needed dx is missing");
    nn_forward(a, x, 4); nn_backward(a, dy);
    nn_forward(b, x, 4); nn_backward(b, dy);
    CHECK(nn_layer_input_grad(a, 2) == NULL && nn_layer_input_grad(a, 3) != NULL, "the accessor's answers");
    CHECK(nn_input_grad(a) == NULL && nn_input_grad(b) != NULL &&
          nn_input_grad(b) == nn_layer_input_grad(b, 1), "the input gradient through the Flatten view");
    for (i = 0; i < nn_num_param_tensors(a); i++)
        CHECK(!memcmp(nn_get_param(a, i)->grad, nn_get_param(b, i)->grad, nn_get_param(a, i)->size * sizeof(float)),
              "gradient of %s differs", nn_get_param(a, i)->name);
    nn_net_free(a);
    nn_net_free(b);
}

static void test_build_errors(void)
{
    nn_net *net = nn_net_new(nn_shape3(3, 4, 4));
    CHECK(nn_net_new(nn_shape3(0, 1, 1)) == NULL, "empty input accepted");
    CHECK(nn_build(net, 4, 0) == NN_ERR_ARG, "no layers accepted");
    nn_add(net, nn_linear(10));
    CHECK(nn_build(net, 4, 0) == NN_ERR_ARG, "Linear on 3x4x4 accepted");
    CHECK(strstr(nn_error(), "nn_flatten") != NULL && strstr(nn_error(), "layer 0") != NULL,
          "message: %s", nn_error());
    CHECK(nn_build(net, 0, 0) == NN_ERR_ARG, "batch 0 accepted");
    nn_net_free(net);
    net = nn_net_new(nn_shape1(4));
    nn_add(net, nn_linear(2));
    CHECK(nn_forward(net, NULL, 1) == NULL && strstr(nn_error(), "not built"), "forward before build");
    nn_build(net, 2, 0);
    {
        float x[12] = {0};
        CHECK(nn_forward(net, x, 3) == NULL, "batch above max accepted");
        CHECK(strstr(nn_error(), "1 to 2") != NULL, "message: %s", nn_error());
    }
    CHECK(nn_add(net, nn_relu()) == NN_ERR_STATE, "add after build");
    nn_net_free(net);
}

static void test_cross_entropy(void)
{
    const float z[6] = {1.0f, 2.0f, 3.0f, 0.0f, 0.0f, 1000.0f};
    const int labels[2] = {2, 0};
    float g[6];
    double e1 = exp(1.0), e2 = exp(2.0), e3 = exp(3.0), s = e1 + e2 + e3;
    float loss = nn_softmax_cross_entropy(z, labels, 2, 3, g);
    /* Sample 1: -log softmax_2; sample 2: logsumexp(0,0,1000) - 0 = 1000 (stable). */
    CHECK_NEAR(loss, (-log(e3 / s) + 1000.0) / 2, 1e-6);
    CHECK_NEAR(g[0], e1 / s / 2, 1e-6);
    CHECK_NEAR(g[2], (e3 / s - 1) / 2, 1e-6);
    CHECK_NEAR(g[3], -0.5, 1e-6);
    CHECK_NEAR(g[5], 0.5, 1e-6);
    {
        const int bad[1] = {3};
        CHECK(isnan(nn_softmax_cross_entropy(z, bad, 1, 3, NULL)), "bad label accepted");
    }
    {   /* Soft targets equal to one-hot give the same loss and gradient. */
        const float t[6] = {0, 0, 1, 1, 0, 0};
        float g2[6];
        int i;
        CHECK_NEAR(nn_softmax_cross_entropy_soft(z, t, 2, 3, g2), loss, 1e-6);
        for (i = 0; i < 6; i++) CHECK_NEAR(g2[i], g[i], 1e-6);
    }
}

static void test_mse_and_bce(void)
{
    const float p[3] = {0.2f, 0.9f, 0.5f}, t[3] = {0.0f, 1.0f, 1.0f};
    float g[3];
    CHECK_NEAR(nn_mse(p, t, 3, 0, g), (0.04 + 0.01 + 0.25) / 3, 1e-6);
    CHECK_NEAR(g[2], 2 * -0.5 / 3, 1e-6);
    CHECK_NEAR(nn_mse(p, t, 3, 1, g), 0.30, 1e-6);
    CHECK_NEAR(g[2], -1.0, 1e-6);
    CHECK_NEAR(nn_bce(p, t, 3, g), -(log(0.8) + log(0.9) + log(0.5)) / 3, 1e-6);
    CHECK_NEAR(g[0], (0.2 / (0.2 * 0.8)) / 3, 1e-5);
    {   /* Clamped logs: p = 0 with t = 1 costs 100, as PyTorch. */
        const float p0[1] = {0.0f}, t1[1] = {1.0f};
        CHECK_NEAR(nn_bce(p0, t1, 1, NULL), 100.0, 1e-6);
    }
    {   /* BCE with logits equals BCE of the sigmoid, and is finite for huge logits. */
        const float z[3] = {-1.0f, 2.0f, 0.0f}, big[1] = {-200.0f}, one[1] = {1.0f};
        float s[3], gz[3];
        int i;
        for (i = 0; i < 3; i++) s[i] = 1.0f / (1.0f + expf(-z[i]));
        CHECK_NEAR(nn_bce_with_logits(z, t, 3, gz), nn_bce(s, t, 3, NULL), 1e-6);
        for (i = 0; i < 3; i++) CHECK_NEAR(gz[i], (s[i] - t[i]) / 3, 1e-6);
        CHECK_NEAR(nn_bce_with_logits(big, one, 1, NULL), 200.0, 1e-6);
    }
}

/* Finite differences through the losses themselves (in double, so tight). */
static void test_loss_gradients_fd(void)
{
    float z[12], t[12], g[12], gm[12], gb[12], p[12];
    int labels[3] = {0, 3, 2}, i;
    fill_uniform(z, 12, -2, 2, 4);
    fill_uniform(t, 12, 0, 1, 5);
    fill_uniform(p, 12, 0.05f, 0.95f, 6);
    nn_softmax_cross_entropy(z, labels, 3, 4, g);
    nn_mse(z, t, 12, 0, gm);
    nn_bce(p, t, 12, gb);
    for (i = 0; i < 12; i++) {
        float s = z[i], sp = p[i], h = 1e-2f;
        double lp, lm;
        z[i] = s + h; lp = nn_softmax_cross_entropy(z, labels, 3, 4, NULL);
        z[i] = s - h; lm = nn_softmax_cross_entropy(z, labels, 3, 4, NULL);
        CHECK_NEAR((lp - lm) / (2 * h), g[i], 2e-3);
        z[i] = s + h; lp = nn_mse(z, t, 12, 0, NULL);
        z[i] = s - h; lm = nn_mse(z, t, 12, 0, NULL);
        z[i] = s;
        CHECK_NEAR((lp - lm) / (2 * h), gm[i], 2e-3);
        h = 1e-3f;
        p[i] = sp + h; lp = nn_bce(p, t, 12, NULL);
        p[i] = sp - h; lm = nn_bce(p, t, 12, NULL);
        p[i] = sp;
        CHECK_NEAR((lp - lm) / (2 * h), gb[i], 5e-3);
    }
}

/* One parameter w (Linear 1->1 without bias... with bias zeroed) driven by known gradients:
   the optimisers' updates computed by hand. */
static nn_net *scalar_net(float w0)
{
    nn_net *net = nn_net_new(nn_shape1(1));
    nn_layer_desc d = nn_linear(1);
    d.no_bias = 1;
    nn_add(net, d);
    nn_build(net, 1, 0);
    nn_get_layer(net, 0)->weight->value[0] = w0;
    return net;
}

static float run_optimizer(nn_optim *opt, nn_net *net, const float *grads, int steps)
{
    nn_param *w = nn_get_layer(net, 0)->weight;
    int s;
    for (s = 0; s < steps; s++) {
        w->grad[0] = grads[s];
        nn_optim_step(opt);
    }
    return w->value[0];
}

static void test_optimizers_by_hand(void)
{
    const float g[3] = {1.0f, -2.0f, 0.5f};
    nn_net *net;
    nn_optim *opt;
    {   /* SGD, momentum 0.9, dampening 0, wd 0.1, lr 0.1:
           step 1: g=1+0.1*1=1.1, b=1.1, w=1-0.11=0.89
           step 2: g=-2+0.089=-1.911, b=0.99-1.911=-0.921, w=0.89+0.0921=0.9821
           step 3: g=0.5+0.09821=0.59821, b=-0.8289+0.59821=-0.23069, w=0.9821+0.023069=1.005169 */
        nn_sgd_desc d = {0.1f, 0.9f, 0.0f, 0.1f, 0};
        net = scalar_net(1.0f);
        opt = nn_sgd(net, d);
        CHECK_NEAR(run_optimizer(opt, net, g, 3), 1.005169, 1e-6);
        nn_optim_free(opt); nn_net_free(net);
    }
    {   /* Nesterov: step 1: b=1, g=1+0.9=1.9, w=1-0.19=0.81;
           step 2: b=0.9-2=-1.1, g=-2-0.99=-2.99, w=0.81+0.299=1.109 */
        nn_sgd_desc d = {0.1f, 0.9f, 0.0f, 0.0f, 1};
        net = scalar_net(1.0f);
        opt = nn_sgd(net, d);
        CHECK_NEAR(run_optimizer(opt, net, g, 2), 1.109, 1e-6);
        nn_optim_free(opt); nn_net_free(net);
    }
    {   /* Adam lr 0.1: step 1 moves by lr * sign(g) (m/(sqrt v) = 1 after correction):
           w = 1 - 0.1 = 0.9. Step 2: m = 0.09 - 0.2 = -0.11, v = 0.000999 + 0.004 = 0.004999;
           mhat = -0.11/0.19 = -0.578947, vhat = 0.004999/0.001999 = 2.500750;
           w = 0.9 + 0.1 * 0.578947 / (1.581376 + 1e-8) = 0.936610 */
        nn_adam_desc d = {0.1f, 0, 0, 0, 0};
        net = scalar_net(1.0f);
        opt = nn_adam(net, d);
        CHECK_NEAR(run_optimizer(opt, net, g, 1), 0.9, 1e-6);
        CHECK_NEAR(run_optimizer(opt, net, g + 1, 1), 0.936610, 1e-5);
        nn_optim_free(opt); nn_net_free(net);
    }
    {   /* AdamW lr 0.1, wd 0.5: step 1: w = 1*(1-0.05) - 0.1 = 0.85 */
        nn_adam_desc d = {0.1f, 0, 0, 0, 0.5f};
        net = scalar_net(1.0f);
        opt = nn_adamw(net, d);
        CHECK_NEAR(run_optimizer(opt, net, g, 1), 0.85, 1e-6);
        nn_optim_free(opt); nn_net_free(net);
    }
    {   /* Adamax lr 0.1: step 1: m=0.1, u=1, w = 1 - 0.1/0.1 * 0.1/1 = 0.9;
           step 2: m = 0.09-0.2 = -0.11, u = max(0.999, 2) = 2, clr = 0.1/0.19;
           w = 0.9 + 0.1/0.19 * 0.11/2 = 0.928947 */
        nn_adam_desc d = {0.1f, 0, 0, 0, 0};
        net = scalar_net(1.0f);
        opt = nn_adamax(net, d);
        CHECK_NEAR(run_optimizer(opt, net, g, 2), 0.928947, 1e-5);
        nn_optim_free(opt); nn_net_free(net);
    }
    {
        nn_sgd_desc bad = {0.0f, 0, 0, 0, 0};
        net = scalar_net(1.0f);
        CHECK(nn_sgd(net, bad) == NULL && strstr(nn_error(), "learning rate"), "lr 0 accepted");
        nn_net_free(net);
    }
}

/* A toy problem an MLP must learn: the class is the index of the largest input. */
static void test_mlp_learns(void)
{
    nn_net *net = nn_net_new(nn_shape1(4));
    float x[64 * 4];
    int y[64], step, i, correct = 0;
    nn_rng rng = nn_rng_new(11);
    nn_adam_desc d = {0.01f, 0, 0, 0, 0};
    nn_optim *opt;
    const float *out;
    nn_add(net, nn_linear(32)); nn_add(net, nn_relu()); nn_add(net, nn_linear(4));
    nn_build(net, 64, 1);
    opt = nn_adam(net, d);
    for (step = 0; step < 300; step++) {
        for (i = 0; i < 64; i++) {
            int j, best = 0;
            for (j = 0; j < 4; j++) {
                x[i * 4 + j] = nn_rng_uniform(&rng);
                if (x[i * 4 + j] > x[i * 4 + best]) best = j;
            }
            y[i] = best;
        }
        CHECK(isfinite(nn_train_step(net, opt, x, y, 64)), "loss: %s", nn_error());
    }
    out = nn_forward(net, x, 64);
    for (i = 0; i < 64; i++) {
        int j, best = 0;
        for (j = 1; j < 4; j++) if (out[i * 4 + j] > out[i * 4 + best]) best = j;
        correct += best == y[i];
    }
    CHECK(correct >= 56, "only %d of 64 right after training", correct);
    nn_optim_free(opt);
    nn_net_free(net);
}

static void test_divergence_is_reported(void)
{
    nn_net *net = nn_net_new(nn_shape1(2));
    float x[2] = {1e30f, -1e30f};
    int y[1] = {0}, bad[1] = {5};
    nn_sgd_desc d = {1e10f, 0, 0, 0, 0};
    nn_optim *opt;
    float loss = 0;
    int step;
    nn_add(net, nn_linear(3));
    nn_build(net, 1, 0);
    opt = nn_sgd(net, d);
    for (step = 0; step < 10 && isfinite(loss); step++) loss = nn_train_step(net, opt, x, y, 1);
    CHECK(isnan(loss), "never diverged");
    CHECK(strstr(nn_error(), "diverged") && strstr(nn_error(), "at step"), "message: %s", nn_error());
    CHECK(isnan(nn_train_step(net, opt, x, bad, 1)) && strstr(nn_error(), "label 5"), "bad label: %s", nn_error());
    nn_optim_free(opt);
    nn_net_free(net);
}

static void test_same_seed_same_weights(void)
{
    float w[2][40];
    int run;
    for (run = 0; run < 2; run++) {
        nn_net *net = nn_net_new(nn_shape1(5));
        nn_add(net, nn_linear(8));
        nn_build(net, 1, 1234);
        memcpy(w[run], nn_get_layer(net, 0)->weight->value, sizeof w[run]);
        nn_net_free(net);
    }
    CHECK(memcmp(w[0], w[1], sizeof w[0]) == 0, "same seed, different weights");
}

/* A net made inference-only gives the same outputs, bit for bit, as the full net, in
   evaluation and in training mode (BatchNorm batch statistics, dropout masks), through
   the im2col and Winograd conv paths, a fused BatchNorm + ReLU, pooling and a Flatten
   view; it keeps two output buffers, and training it fails with a clear error. */
static nn_net *inference_test_net(void)
{
    nn_net *net = nn_net_new(nn_shape3(3, 8, 8));
    nn_add(net, nn_conv2d(16, 3, 1, 1));   /* 3 channels: im2col */
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_conv2d(16, 3, 1, 1));   /* 16 channels, 16 x 4 tiles: Winograd */
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_dropout(0.25f));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(5));
    nn_add(net, nn_tanh());
    return net;
}

static void test_inference_only(void)
{
    nn_net *full = inference_test_net(), *lean = inference_test_net(), *empty = nn_net_new(nn_shape1(3));
    float x[16 * 192], dy[16 * 5];
    const float *a, *b;
    nn_sgd_desc sgd = {0};
    nn_optim *opt;
    int labels[16] = {0}, i, n, mode, distinct = 0;
    const float *seen[2] = {NULL, NULL}, *input_buffer = NULL, *y;
    fill_uniform(x, 16 * 192, -1, 1, 21);
    fill_uniform(dy, 16 * 5, -1, 1, 22);
    CHECK(nn_inference_only(empty) == NN_ERR_STATE, "an unbuilt net");
    CHECK(nn_build(full, 16, 5) == NN_OK && nn_build(lean, 16, 5) == NN_OK, "%s", nn_error());
    CHECK(lean->plan[4].winograd && !lean->plan[0].winograd, "conv paths");
    sgd.lr = 0.1f;
    opt = nn_sgd(lean, sgd);
    CHECK(nn_inference_only(lean) == NN_OK && nn_inference_only(lean) == NN_OK, "%s", nn_error());
    for (i = 0; i < nn_num_param_tensors(lean); i++) CHECK(nn_get_param(lean, i)->grad == NULL, "a gradient kept");
    for (i = 0; i < nn_num_layers(lean); i++) {
        const nn_layer *L = nn_get_layer(lean, i);
        CHECK(lean->plan[i].dx == NN__T_NONE, "layer %d keeps its input gradient", i);
        if (L->desc.kind == NN_FLATTEN) continue;   /* a view: its output is its input */
        y = nn__t(lean, lean->plan[i].y);
        if (i > 0 && lean->plan[i - 1].relu)
            CHECK(y == input_buffer && !lean->plan[i].run, "layer %d: a fused ReLU's output is its BatchNorm's", i);
        else
            CHECK(y != input_buffer, "layer %d writes the buffer it reads", i);
        input_buffer = y;
        if (y == seen[0] || y == seen[1]) continue;
        if (distinct < 2) seen[distinct] = y;
        distinct++;
    }
    CHECK(distinct == 2, "%d output buffers, expected 2", distinct);
    for (mode = 0; mode < 2; mode++)
        for (n = 16; n >= 5; n -= 11) {
            nn_set_training(full, mode);
            nn_set_training(lean, mode);
            a = nn_forward(full, x, n);
            b = nn_forward(lean, x, n);
            CHECK(a && b && !memcmp(a, b, (size_t)n * 5 * sizeof(float)), "mode %d, n = %d: outputs differ", mode, n);
        }
    for (i = 0; i < nn_num_param_tensors(full); i++)   /* running statistics too */
        CHECK(!memcmp(nn_get_param(full, i)->value, nn_get_param(lean, i)->value,
                      nn_get_param(full, i)->size * sizeof(float)), "%s differs", nn_get_param(full, i)->name);
    nn_backward(lean, dy);
    CHECK(strstr(nn_error(), "nn_backward: the net is inference-only") != NULL, "'%s'", nn_error());
    CHECK(isnan(nn_train_step(lean, opt, x, labels, 4)) &&
          strstr(nn_error(), "nn_train_step: the net is inference-only"), "'%s'", nn_error());
    nn_optim_step(opt);   /* made before: its gradients are gone */
    CHECK(strstr(nn_error(), "nn_optim_step: the net is inference-only") != NULL && nn_optim_steps(opt) == 0,
          "'%s'", nn_error());
    CHECK(nn_sgd(lean, sgd) == NULL && strstr(nn_error(), "optimiser: the net is inference-only"), "'%s'", nn_error());
    CHECK(nn_input_grad(lean) == NULL, "an input gradient");
    nn_zero_grad(lean);   /* nothing to zero, no crash */
    nn_optim_free(opt);
    /* nn_build makes it trainable again. */
    CHECK(nn_build(lean, 16, 5) == NN_OK && (opt = nn_sgd(lean, sgd)) != NULL, "%s", nn_error());
    CHECK(isfinite(nn_train_step(lean, opt, x, labels, 16)), "train after rebuild: %s", nn_error());
    nn_optim_free(opt);
    nn_net_free(full);
    nn_net_free(lean);
    nn_net_free(empty);
}

int main(void)
{
    RUN(test_mlp_gradcheck);
    RUN(test_linear_known_values);
    RUN(test_leaky_relu_at_zero);
    RUN(test_default_init_bounds);
    RUN(test_build_errors);
    RUN(test_no_input_grad_below_parameters);
    RUN(test_cross_entropy);
    RUN(test_mse_and_bce);
    RUN(test_loss_gradients_fd);
    RUN(test_optimizers_by_hand);
    RUN(test_mlp_learns);
    RUN(test_divergence_is_reported);
    RUN(test_same_seed_same_weights);
    RUN(test_inference_only);
    return test_end("test_net");
}
