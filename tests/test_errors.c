/* Errors: nn_error() describes the latest call of its thread. A call that succeeds
   leaves "no error", one that fails its own sentence (also when it failed after calling
   other public functions inside), and each thread has its message of its own.
   test_every_fallible_function_clears reads nn.h: every public function that returns a
   value starts by clearing the message, or is one of the few that cannot fail. */
#define _XOPEN_SOURCE 700
#ifndef NN_NO_THREADS
#include <pthread.h>
#endif
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

static int no_error(void) { return !strcmp(nn_error(), "no error"); }

/* A message that some earlier call left behind. */
static void leave_an_error(void)
{
    nn_build(NULL, 1, 0);
}

#define FRESH_AFTER(call)                                                          \
    do {                                                                           \
        leave_an_error();                                                          \
        (void)(call);                                                              \
        CHECK(no_error(), "%s succeeded but nn_error() says \"%s\"", #call, nn_error()); \
    } while (0)

static nn_sgd_desc sgd(float lr)   /* (no designated initialiser: compiles as C++11 too) */
{
    nn_sgd_desc d;
    memset(&d, 0, sizeof d);
    d.lr = lr;
    return d;
}

static nn_net *small_net(int batch)
{
    nn_net *net = nn_net_new(nn_shape3(1, 4, 4));
    if (!net) return NULL;
    nn_add(net, nn_conv2d(2, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(3));
    if (nn_build(net, batch, 1) != NN_OK) { nn_net_free(net); return NULL; }
    return net;
}

/* One successful call of each kind clears what an earlier failure left. */
/* nn_net_new succeeds (and the net is freed, which leaves the message alone). */
static int net_new_and_free(void)
{
    nn_net *made = nn_net_new(nn_shape1(3));
    int ok = made != NULL;
    nn_net_free(made);
    return ok;
}

static void test_success_clears(void)
{
    float x[2 * 16], dy[2 * 3], a[4] = { 1, 2, 3, 4 }, c[4], col[9 * 16];
    int y[2] = { 0, 2 }, i;
    nn_net *net = small_net(2), *back = NULL;
    nn_optim *opt = NULL;
    nn_ema *avg = NULL;
    unsigned char *image = NULL;
    size_t size = 0;
    nn_rng r = nn_rng_new(3);
    nn_dataset d;
    float loss, acc;
    CHECK(net != NULL, "%s", nn_error());
    if (!net) return;
    for (i = 0; i < 32; i++) x[i] = (float)(i % 7) - 3.0f;
    for (i = 0; i < 6; i++) dy[i] = 0.1f * (float)i;
    memset(&d, 0, sizeof d);
    d.n = 2; d.shape = nn_shape3(1, 4, 4); d.num_classes = 3; d.x = x; d.y = y;

    FRESH_AFTER(net_new_and_free());
    FRESH_AFTER(nn_num_layers(net));
    FRESH_AFTER(nn_get_layer(net, 0));
    FRESH_AFTER(nn_num_param_tensors(net));
    FRESH_AFTER(nn_num_param_scalars(net));
    FRESH_AFTER(nn_output_shape(net));
    FRESH_AFTER(nn_set_training(net, 1));
    FRESH_AFTER(nn_forward(net, x, 2));
    FRESH_AFTER(nn_layer_output(net, 0));
    FRESH_AFTER(nn_backward(net, dy));
    FRESH_AFTER(nn_zero_grad(net));
    FRESH_AFTER(opt = nn_sgd(net, sgd(0.01f)));
    FRESH_AFTER(nn_train_step(net, opt, x, y, 2));
    FRESH_AFTER(nn_optim_step(opt));
    FRESH_AFTER(nn_optim_get_lr(opt));
    FRESH_AFTER(avg = nn_ema_new(net));
    FRESH_AFTER(nn_ema_update(avg, 0.5f));
    FRESH_AFTER(nn_evaluate(net, &d, &loss, &acc, NULL));
    FRESH_AFTER(nn_save_memory(net, &image, &size));
    FRESH_AFTER(back = nn_load_memory(image, size, 2));
    FRESH_AFTER(nn_is_quantized(back));
    FRESH_AFTER(nn_load_weights_memory(net, image, size));
    FRESH_AFTER(nn_softmax_cross_entropy(x, y, 2, 3, NULL));
    FRESH_AFTER(nn_argmax(x, 4));
    FRESH_AFTER(nn_gemm(0, 0, 2, 2, 1, 1.0f, a, 1, a, 2, 0.0f, c, 2));
    FRESH_AFTER(nn_im2col(x, 1, 4, 4, 3, 3, 1, 1, 1, 1, col, 16));
    FRESH_AFTER(nn_rng_u32(&r));
    FRESH_AFTER(nn_rng_shuffle(&r, y, 2));
    FRESH_AFTER(nn_set_threads(1));
    FRESH_AFTER(nn_batch_start(&d, 1));
    FRESH_AFTER(nn_next_batch(&d, 1, x + 16, y + 1));
    nn_dataset_free(&d);
    nn_ema_free(avg);
    nn_free_buffer(image);
    nn_net_free(back);
    nn_optim_free(opt);
    nn_net_free(net);
}

/* A failure keeps its own message, also where the failing function called other
   public functions (which clear the message as they start) before it failed, and
   nothing else can be read as a failure of the calls that came before. */
static void test_failure_keeps_its_message(void)
{
    float x[2 * 16], dy[3] = { 0 };
    int y[2] = { 0, 1 }, i;
    nn_net *net = small_net(2);
    nn_optim *opt = net ? nn_sgd(net, sgd(0.01f)) : NULL;
    unsigned char *image = NULL;
    size_t size = 0;
    nn_dataset d;
    CHECK(net && opt, "%s", nn_error());
    if (!net || !opt) { nn_net_free(net); return; }
    for (i = 0; i < 32; i++) x[i] = 1.0f;
    /* nn_train_step runs nn_forward and the loss before it finds the NaN */
    x[5] = NAN;
    CHECK(isnan(nn_train_step(net, opt, x, y, 2)) && strstr(nn_error(), "diverged"),
          "nn_train_step on a NaN: \"%s\"", nn_error());
    /* nn_evaluate runs nn_forward, the loss and nn_argmax on every batch first */
    memset(&d, 0, sizeof d);
    d.n = 2; d.shape = nn_shape3(1, 4, 4); d.num_classes = 3; d.x = x; d.y = y;
    CHECK(nn_evaluate(net, &d, NULL, NULL, NULL) == NN_ERR_NUMERIC && strstr(nn_error(), "not all finite"),
          "nn_evaluate on a NaN: \"%s\"", nn_error());
    x[5] = 1.0f;
    /* nn_load_memory calls nn_net_new, nn_add and nn_build inside */
    CHECK(nn_save_memory(net, &image, &size) == NN_OK, "%s", nn_error());
    if (image) {
        CHECK(nn_load_memory(image, size, 0) == NULL && !no_error(),
              "a load for batches of 0 says \"%s\"", nn_error());
        CHECK(nn_load_memory(image, size / 2, 2) == NULL && !no_error(),
              "a truncated file says \"%s\"", nn_error());
    }
    /* a failure after a success */
    CHECK(nn_forward(net, x, 2) != NULL && no_error(), "%s", nn_error());
    CHECK(nn_backward(net, NULL) == NN_ERR_ARG && strstr(nn_error(), "nn_backward"),
          "\"%s\"", nn_error());
    (void)dy;
    nn_free_buffer(image);
    nn_optim_free(opt);
    nn_net_free(net);
}

/* The free functions and the pure ones leave the message as it is: it still
   describes the last call that could fail. */
static void test_pure_functions_leave_it(void)
{
    leave_an_error();
    nn_net_free(NULL);
    (void)nn_shape_size(nn_shape3(1, 2, 3));
    (void)nn_linear(4);
    (void)nn_status_name(NN_ERR_IO);
    CHECK(strstr(nn_error(), "nn_build") != NULL, "the message became \"%s\"", nn_error());
}

#ifndef NN_NO_THREADS
/* Each thread fails in its own way, waits for the other, then reads its message. */
static pthread_barrier_t both_failed;

static void *thread_fails(void *arg)
{
    int which = *(const int *)arg, ok;
    if (which == 0) nn_forward(NULL, NULL, 1);
    else nn_set_threads(-5);
    pthread_barrier_wait(&both_failed);
    ok = which == 0 ? strstr(nn_error(), "nn_forward") != NULL : strstr(nn_error(), "-5 threads") != NULL;
    pthread_barrier_wait(&both_failed);
    if (which == 0) ok = ok && nn_set_threads(0) == NN_OK && no_error();   /* clears only its own */
    pthread_barrier_wait(&both_failed);
    if (which == 1) ok = ok && strstr(nn_error(), "-5 threads") != NULL;
    *(int *)arg = ok ? 100 : -1;
    return NULL;
}

static void test_each_thread_has_its_message(void)
{
    pthread_t t[2];
    int arg[2] = { 0, 1 }, i;
    leave_an_error();
    CHECK(pthread_barrier_init(&both_failed, NULL, 2) == 0, "barrier");
    for (i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, thread_fails, &arg[i]) == 0, "thread %d", i);
    for (i = 0; i < 2; i++) pthread_join(t[i], NULL);
    pthread_barrier_destroy(&both_failed);
    CHECK(arg[0] == 100, "the first thread's message was not its own");
    CHECK(arg[1] == 100, "the second thread's message was not its own");
    CHECK(strstr(nn_error(), "nn_build") != NULL, "the main thread's message became \"%s\"", nn_error());
}
#endif

/* The functions that cannot fail: they report nothing, so they need not clear. */
static const char *const cannot_fail[] = {
    "nn_error", "nn_status_name", "nn_simd_name", "nn_layer_name", "nn_shape3", "nn_shape1",
    "nn_shape_size", "nn_rng_new", "nn_get_threads", "nn_lr_step_decay", "nn_lr_cosine",
    "nn_lr_triangular", "nn_shard", "nn_named", "nn_linear", "nn_conv2d", "nn_maxpool2d",
    "nn_avgpool2d", "nn_global_avgpool", "nn_batchnorm", "nn_relu", "nn_relu6", "nn_hardtanh",
    "nn_leaky_relu", "nn_sigmoid", "nn_tanh", "nn_gelu", "nn_softplus", "nn_scale", "nn_dropout",
    "nn_flatten", "nn_block", "nn_shortcut", "nn_block_end"
};

static int listed_pure(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof cannot_fail / sizeof *cannot_fail; i++)
        if (!strcmp(cannot_fail[i], name)) return 1;
    return 0;
}

/* In the implementation, every NNDEF definition that returns a value clears the message
   as its first statement, unless it is listed above; a listed one never records an error. */
static void test_every_fallible_function_clears(void)
{
    char header[512], line[4096], name[128] = "";
    const char *slash = strrchr(__FILE__, '/');
    FILE *f;
    int impl = 0, state = 0, defs = 0, pure = 0;
    /* state 1: before a body that must clear, 3: before a pure one's, 2: inside it */
    snprintf(header, sizeof header, "%.*s/../nn.h", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    f = fopen(header, "r");
    CHECK(f != NULL, "cannot open %s", header);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "#ifdef NN_IMPLEMENTATION", 24)) impl = 1;
        if (!impl) continue;
        if (state == 2) {
            if (line[0] == '}') state = 0;
            else CHECK(!strstr(line, "nn__fail") && !strstr(line, "nn__null_net"),
                       "%s cannot fail, but records an error: %s", name, line);
            continue;
        }
        if (!strncmp(line, "NNDEF ", 6) && strncmp(line, "NNDEF void ", 11)) {
            char copy[4096], *paren, *start;
            const char *brace;
            memcpy(copy, line, sizeof copy);
            if (!(paren = strchr(copy, '('))) continue;
            *paren = '\0';
            start = strrchr(copy, ' ');
            start = start ? start + 1 : copy;
            while (*start == '*') start++;
            snprintf(name, sizeof name, "%.127s", start);
            defs++;
            brace = strstr(line, ") {");
            if (listed_pure(name)) {
                pure++;
                if (brace) CHECK(!strstr(brace, "nn__fail"), "%s cannot fail, but: %s", name, line);
                state = brace ? 0 : 3;
            } else if (brace) {
                CHECK(!strncmp(brace, ") { nn__error_clear();", 22), "%s does not clear nn_error() first", name);
            } else {
                state = 1;
            }
            continue;
        }
        if (state == 3 && line[0] == '{') state = 2;
        if (state == 1 && line[0] == '{') {
            CHECK(fgets(line, sizeof line, f) && !strcmp(line, "    nn__error_clear();\n"),
                  "%s does not clear nn_error() first", name);
            state = 0;
        }
    }
    fclose(f);
    CHECK(defs > 100 && pure == (int)(sizeof cannot_fail / sizeof *cannot_fail),
          "%d definitions, %d of the %d pure ones found", defs, pure,
          (int)(sizeof cannot_fail / sizeof *cannot_fail));
}

int main(void)
{
    nn_set_threads(1);
    RUN(test_success_clears);
    RUN(test_failure_keeps_its_message);
    RUN(test_pure_functions_leave_it);
#ifndef NN_NO_THREADS
    RUN(test_each_thread_has_its_message);
#endif
    RUN(test_every_fallible_function_clears);
    return test_end("test_errors");
}
