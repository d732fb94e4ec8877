/* Model files (safetensors): round trips, metadata, damaged files, checkpoints. */
#define _POSIX_C_SOURCE 200809L
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"
#include <stdlib.h>
#include <unistd.h>

static nn_net *small_net(uint64_t seed)
{
    nn_net *net = nn_net_new(nn_shape3(2, 3, 3));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(6));
    nn_add(net, nn_leaky_relu(0.05f));
    nn_add(net, nn_linear(4));
    nn_add(net, nn_relu());
    nn_add(net, nn_linear(3));
    if (nn_build(net, 4, seed) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
    return net;
}

static void fill(float *x, size_t n, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) x[i] = nn_rng_uniform(&r) * 255.0f;
}

static void test_round_trip_bit_identical(void)
{
    nn_net *net = small_net(1), *back;
    float x[4 * 18], mean[18], out1[12];
    const char *names[3] = {"cat", "dog", "bird"};
    unsigned char *buf;
    size_t size;
    fill(x, 72, 2);
    fill(mean, 18, 3);
    nn_set_preprocess_mean_image(net, mean);
    nn_set_class_names(net, names, 3);
    nn_set_training(net, 0);
    memcpy(out1, nn_forward(net, x, 4), sizeof out1);
    CHECK(nn_save_memory(net, &buf, &size) == NN_OK, "%s", nn_error());
    back = nn_load_memory(buf, size, 4);
    CHECK(back != NULL, "%s", nn_error());
    if (back) {
        float pre1[18], pre2[18];
        CHECK(nn_num_layers(back) == 6 && nn_get_layer(back, 2)->desc.negative_slope == 0.05f, "architecture");
        CHECK(memcmp(nn_forward(back, x, 4), out1, sizeof out1) == 0, "logits differ after load");
        CHECK(nn_get_preprocess(back) == NN_PREPROCESS_MEAN_IMAGE, "preprocessing kind");
        nn_preprocess(net, x, pre1, 1);
        nn_preprocess(back, x, pre2, 1);
        CHECK(memcmp(pre1, pre2, sizeof pre1) == 0, "mean image differs");
        CHECK(nn_class_name(back, 1) && !strcmp(nn_class_name(back, 1), "dog"), "class names");
        CHECK(nn_class_name(back, 3) == NULL, "class 3");
        nn_net_free(back);
    }
    /* The header length and alignment as the format requires. */
    {
        uint64_t len = 0;
        int k;
        for (k = 7; k >= 0; k--) len = len << 8 | buf[k];
        CHECK(len % 8 == 0 && buf[8] == '{', "header length %llu", (unsigned long long)len);
    }
    nn_free_buffer(buf);
    nn_net_free(net);
}

static void test_file_round_trip_and_weights(void)
{
    char path[] = "/tmp/nn_test_model_XXXXXX";
    int fd = mkstemp(path);
    nn_net *net = small_net(5), *other = small_net(6), *loaded;
    float x[18], a[3];
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) close(fd);   /* the name is ours; an open file could not be replaced on Windows */
    fill(x, 18, 1);
    CHECK(nn_save(net, path) == NN_OK, "%s", nn_error());
    memcpy(a, nn_forward(net, x, 1), sizeof a);
    CHECK(nn_load_weights(other, path) == NN_OK, "%s", nn_error());
    CHECK(memcmp(nn_forward(other, x, 1), a, sizeof a) == 0, "load_weights");
    loaded = nn_load(path, 1);
    CHECK(loaded && memcmp(nn_forward(loaded, x, 1), a, sizeof a) == 0, "load");
    nn_net_free(loaded);
    CHECK(nn_load("/nonexistent/model.safetensors", 1) == NULL && strstr(nn_error(), "/nonexistent/model.safetensors"),
          "missing file: %s", nn_error());
    {   /* A net of another shape refuses the weights, naming the tensor. */
        nn_net *wrong = nn_net_new(nn_shape3(2, 3, 3));
        nn_add(wrong, nn_flatten()); nn_add(wrong, nn_linear(7));
        nn_build(wrong, 1, 0);
        CHECK(nn_load_weights(wrong, path) != NN_OK && strstr(nn_error(), "1.weight") && strstr(nn_error(), "shape"),
              "message: %s", nn_error());
        nn_net_free(wrong);
    }
    remove(path);
    nn_net_free(net);
    nn_net_free(other);
}

/* Every truncation and thousands of random byte flips: an error or a valid model,
   never a crash (run under the sanitizers too). */
static void test_damaged_files(void)
{
    nn_net *net = small_net(7);
    unsigned char *buf, *copy;
    size_t size, cut;
    int flips, errors = 0, loaded = 0;
    nn_rng r = nn_rng_new(99);
    float x[18];
    fill(x, 18, 4);
    nn_set_class_names(net, (const char *const[]){"a", "b", "c"}, 3);
    nn_save_memory(net, &buf, &size);
    copy = (unsigned char *)malloc(size);
    for (cut = 0; cut < size; cut++) {
        nn_net *m;
        memcpy(copy, buf, cut);
        m = nn_load_memory(copy, cut, 1);
        if (m) { loaded++; nn_net_free(m); }
        else errors += nn_error()[0] != 0;
    }
    CHECK(loaded == 0, "%d truncated files loaded", loaded);
    CHECK(errors == (int)size, "%d of %zu truncations without a message", (int)size - errors, size);
    for (flips = 0; flips < 4000; flips++) {
        nn_net *m;
        int k, nflip = 1 + (int)nn_rng_below(&r, 3);
        memcpy(copy, buf, size);
        for (k = 0; k < nflip; k++) copy[nn_rng_below(&r, (uint32_t)size)] ^= (unsigned char)(1 + nn_rng_below(&r, 255));
        m = nn_load_memory(copy, size, 1);
        if (m) {   /* a flip in the data or in a harmless place: the model must still run */
            const float *y = nn_forward(m, x, 1);
            CHECK(y != NULL, "loaded model does not run");
            nn_net_free(m);
        }
    }
    free(copy);
    nn_free_buffer(buf);
    nn_net_free(net);
}

static void test_malformed_headers(void)
{
    static const char *headers[] = {
        "{", "}", "[]", "{\"a\":1}", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99]}}",
        "{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Bogus\"}}",
        "{\"__metadata__\":{\"input\":\"1,1\",\"layers\":\"Flatten\"}}",
        "{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=-5\"}}",
        "{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=2\"}}",
        "{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\"},"
        "\"0.weight\":{\"dtype\":\"F16\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
        "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
        "{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\"},"
        "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
        "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
        "\"9.extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\"},"
        "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
        "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
    };
    int i, n = (int)(sizeof headers / sizeof *headers);
    for (i = 0; i < n; i++) {
        unsigned char file[1024];
        size_t len = strlen(headers[i]);
        nn_net *m;
        int k;
        for (k = 0; k < 8; k++) file[k] = (unsigned char)((uint64_t)len >> (8 * k));
        memcpy(file + 8, headers[i], len);
        memset(file + 8 + len, 0, 8);
        m = nn_load_memory(file, 8 + len + 8, 1);
        if (i == n - 1) CHECK(m != NULL, "the valid file failed: %s", nn_error());
        else CHECK(m == NULL && strstr(nn_error(), "model:"), "header %d accepted (%s)", i, nn_error());
        nn_net_free(m);
    }
}

/* Train 20 steps, checkpoint, train 20 more; a fresh net+optimiser loaded from the
   checkpoint and trained the same 20 steps ends with bit-identical weights. */
static void train_steps(nn_net *net, nn_optim *opt, int from, int to)
{
    float x[4 * 18];
    int y[4], step, i;
    for (step = from; step < to; step++) {
        fill(x, 72, (uint64_t)step);
        for (i = 0; i < 4; i++) { y[i] = (step + i) % 3; x[i] /= 255.0f; }
        nn_train_step(net, opt, x, y, 4);
    }
}

static void test_checkpoint_resume(void)
{
    char path[] = "/tmp/nn_test_ckpt_XXXXXX";
    int fd = mkstemp(path), i;
    nn_net *a = small_net(11), *b = small_net(12);
    if (fd >= 0) close(fd);   /* as above */
    nn_adam_desc d = {0.01f, 0, 0, 0, 0};
    nn_optim *oa = nn_adam(a, d), *ob = nn_adam(b, d);
    train_steps(a, oa, 0, 20);
    CHECK(nn_save_checkpoint(a, oa, path) == NN_OK, "%s", nn_error());
    train_steps(a, oa, 20, 40);
    CHECK(nn_load_checkpoint(b, ob, path) == NN_OK, "%s", nn_error());
    CHECK(nn_optim_steps(ob) == 20, "step %ld", nn_optim_steps(ob));
    train_steps(b, ob, 20, 40);
    for (i = 0; i < nn_num_param_tensors(a); i++)
        CHECK(memcmp(nn_get_param(a, i)->value, nn_get_param(b, i)->value, nn_get_param(a, i)->size * 4) == 0,
              "%s differs after resuming", nn_get_param(a, i)->name);
    {   /* A plain model file is not a checkpoint; another optimiser kind is refused. */
        nn_sgd_desc s = {0.1f, 0.9f, 0, 0, 0};
        nn_optim *sgd = nn_sgd(b, s);
        CHECK(nn_load_checkpoint(b, sgd, path) == NN_ERR_ARG, "kind mismatch accepted");
        nn_optim_free(sgd);
        nn_save(a, path);
        CHECK(nn_load_checkpoint(b, ob, path) == NN_ERR_FORMAT && strstr(nn_error(), "not a checkpoint"), "%s", nn_error());
    }
    remove(path);
    nn_optim_free(oa); nn_optim_free(ob);
    nn_net_free(a); nn_net_free(b);
}

static void test_training_is_deterministic(void)
{
    nn_net *a = small_net(3), *b = small_net(3);
    nn_sgd_desc d = {0.05f, 0.9f, 0, 1e-4f, 0};
    nn_optim *oa = nn_sgd(a, d), *ob = nn_sgd(b, d);
    int i;
    train_steps(a, oa, 0, 50);
    train_steps(b, ob, 0, 50);
    for (i = 0; i < nn_num_param_tensors(a); i++)
        CHECK(memcmp(nn_get_param(a, i)->value, nn_get_param(b, i)->value, nn_get_param(a, i)->size * 4) == 0,
              "%s differs between two identical runs", nn_get_param(a, i)->name);
    nn_optim_free(oa); nn_optim_free(ob);
    nn_net_free(a); nn_net_free(b);
}

/* nn_load_memory gives the net back in evaluation mode: its Dropout passes everything,
   the same on every forward, until nn_set_training(net, 1). */
static void test_load_returns_evaluation_mode(void)
{
    nn_net *net = nn_net_new(nn_shape1(64)), *back = NULL;
    unsigned char *image = NULL;
    size_t size = 0;
    float x[64], eval[64];
    const float *y;
    int i, zeros = 0;
    for (i = 0; i < 64; i++) x[i] = 1.0f + (float)i;
    nn_add(net, nn_dropout(0.5f));
    CHECK(nn_build(net, 1, 3) == NN_OK && nn_save_memory(net, &image, &size) == NN_OK, "%s", nn_error());
    CHECK(image && (back = nn_load_memory(image, size, 1)) != NULL, "%s", nn_error());
    if (back) {
        y = nn_forward(back, x, 1);
        CHECK(y && !memcmp(y, x, sizeof x), "a loaded net's Dropout changed its input: not evaluation mode");
        if (y) memcpy(eval, y, sizeof eval);
        CHECK(nn_set_training(back, 1) == NN_OK && (y = nn_forward(back, x, 1)) != NULL, "%s", nn_error());
        for (i = 0; y && i < 64; i++) zeros += y[i] == 0.0f;
        CHECK(zeros > 8 && zeros < 56, "in training mode %d of 64 were dropped", zeros);
        CHECK(!memcmp(eval, x, sizeof x), "evaluation output");
    }
    nn_free_buffer(image);
    nn_net_free(back);
    nn_net_free(net);
}

int main(void)
{
    RUN(test_round_trip_bit_identical);
    RUN(test_file_round_trip_and_weights);
    RUN(test_damaged_files);
    RUN(test_malformed_headers);
    RUN(test_checkpoint_resume);
    RUN(test_training_is_deterministic);
    RUN(test_load_returns_evaluation_mode);
    return test_end("test_model");
}
