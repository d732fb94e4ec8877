/* Untrusted model files and checkpoints: hostile files rejected fast and small, strict
   parsing, byte-identical round trips, all-or-nothing loads, atomic saves, NULLs. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

/* A counting allocator: the library's every allocation goes through it. Requests past
   the budget are refused (so that a hostile file cannot really take the memory), and
   the largest total ever asked for is kept. */
static size_t mem_now, mem_asked_peak, mem_budget = (size_t)1 << 30;
static void *count_malloc(size_t n)
{
    size_t *p;
    if (n > SIZE_MAX - mem_now || n > SIZE_MAX - 16) { mem_asked_peak = SIZE_MAX; return NULL; }
    if (mem_now + n > mem_asked_peak) mem_asked_peak = mem_now + n;
    if (mem_now + n > mem_budget || !(p = (size_t *)malloc(n + 16))) return NULL;
    p[0] = n;
    mem_now += n;
    return (char *)p + 16;
}
static void count_free(void *q)
{
    size_t *p;
    if (!q) return;
    p = (size_t *)((char *)q - 16);
    mem_now -= p[0];
    free(p);
}
#define NN_MALLOC(n) count_malloc(n)
#define NN_FREE(p) count_free(p)
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A safetensors file from a header text and data bytes (malloc'd). */
static unsigned char *make_file(const char *header, const void *data, size_t data_len, size_t *size)
{
    size_t len = strlen(header);
    unsigned char *f = (unsigned char *)malloc(8 + len + data_len + 1);
    int k;
    for (k = 0; k < 8; k++) f[k] = (unsigned char)((uint64_t)len >> (8 * k));
    memcpy(f + 8, header, len);
    if (data_len) memcpy(f + 8 + len, data, data_len);
    *size = 8 + len + data_len;
    return f;
}

/* A copy of a file with the first `from` of its header replaced by `to`. */
static unsigned char *edit_file(const unsigned char *file, size_t size, const char *from, const char *to,
                                size_t *out_size)
{
    uint64_t len = 0;
    char *header, *at, *edited;
    unsigned char *out;
    int k;
    for (k = 7; k >= 0; k--) len = len << 8 | file[k];
    header = (char *)calloc(1, (size_t)len + 1);
    memcpy(header, file + 8, (size_t)len);
    at = strstr(header, from);
    if (!at) { free(header); return NULL; }
    edited = (char *)malloc((size_t)len + strlen(to) + 1);
    memcpy(edited, header, (size_t)(at - header));
    strcpy(edited + (at - header), to);
    strcat(edited, at + strlen(from));
    out = make_file(edited, file + 8 + len, size - 8 - (size_t)len, out_size);
    free(header);
    free(edited);
    return out;
}

/* Loads a file that must be refused: NULL, an error containing `why`, fast, and at most
   a few MB asked for. */
static void expect_refused(const unsigned char *file, size_t size, int max_batch, const char *why, const char *what)
{
    double t0 = now_s(), took;
    size_t before = mem_now;
    nn_net *net;
    mem_asked_peak = mem_now;
    net = nn_load_memory(file, size, max_batch);
    took = now_s() - t0;
    CHECK(net == NULL, "%s: loaded", what);
    CHECK(!why || strstr(nn_error(), why), "%s: error '%s', expected '%s'", what, nn_error(), why);
    CHECK(took < 0.5, "%s: took %.2f s", what, took);
    CHECK(mem_asked_peak - before < ((size_t)4 << 20), "%s: asked for %zu bytes", what, mem_asked_peak - before);
    nn_net_free(net);
}

static void expect_refused_header(const char *header, size_t data_len, int max_batch, const char *why)
{
    size_t size;
    unsigned char *data = (unsigned char *)calloc(1, data_len + 1);
    unsigned char *file = make_file(header, data, data_len, &size);
    expect_refused(file, size, max_batch, why, header);
    free(file);
    free(data);
}

/* ---- Files that ask for far more than they hold ------------------------------------ */

static void test_hostile_files_fail_fast(void)
{
    char *relus;
    size_t i;
    /* No tensors: refused before the net is built (was 9.5 s / 2.47 GB, 3.6 s / 1.15 GB). */
    expect_refused_header("{\"__metadata__\":{\"input\":\"3,2048,2048\",\"layers\":\"Conv2d out=64 kernel=3 stride=1 pad=1\"}}",
                          0, 1, "is missing");
    expect_refused_header("{\"__metadata__\":{\"input\":\"1,1,300000\",\"layers\":\"Flatten;Linear out=1000\"}}",
                          0, 1, "is missing");
    /* 3,000 ReLUs on a 1000x1000 input: 24 GB of activations for batches of 2. */
    relus = (char *)malloc(3000 * 5 + 200);
    strcpy(relus, "{\"__metadata__\":{\"input\":\"1,1000,1000\",\"layers\":\"");
    for (i = 0; i < 3000; i++) strcat(relus, i ? ";ReLU" : "ReLU");
    strcat(relus, "\"}}");
    expect_refused_header(relus, 0, 2, "NN_MAX_BUILD_BYTES");
    free(relus);
    /* A mean image of 3 numbers for a 3.6 GB input: counted before anything is allocated. */
    expect_refused_header("{\"__metadata__\":{\"input\":\"3,17320,17320\",\"layers\":\"Flatten\","
                          "\"preprocess\":\"mean_image\",\"preprocess_mean\":\"1,2,3\"}}", 0, 1, "preprocessing holds");
    /* 4,295,032,832 inputs: Flatten once made that 65,536 wide. */
    expect_refused_header("{\"__metadata__\":{\"input\":\"65537,65536,1\",\"layers\":\"Flatten;Linear out=1\"}}",
                          0, 1, "INT_MAX");
    /* Class names are checked before the build (the ReLU's output takes 16 MB). */
    expect_refused_header("{\"__metadata__\":{\"input\":\"2,1000,1000\",\"layers\":\"ReLU;"
                          "AvgPool2d kernel=1000 stride=1000\",\"classes\":\"a,\"}}", 0, 2, "class name 1");
    /* %d read 4294967324 as 28. */
    expect_refused_header("{\"__metadata__\":{\"input\":\"1,4294967324,28\",\"layers\":\"Flatten\"}}", 0, 1, "input shape");
    expect_refused_header("{\"__metadata__\":{\"input\":\"1,-28,28\",\"layers\":\"Flatten\"}}", 0, 1, "input shape");
    expect_refused_header("{\"__metadata__\":{\"input\":\"1,28,28,\",\"layers\":\"Flatten\"}}", 0, 1, "input shape");
    /* Signed overflow in the shape arithmetic of Conv2d, pooling and Winograd's tiles
       (the sanitizer build turns any into a failure). */
    expect_refused_header("{\"__metadata__\":{\"input\":\"1,8,8\",\"layers\":\"Conv2d out=1 kernel=3 stride=1 pad=2147483647\"}}",
                          0, 1, "INT_MAX");
    {   /* windows of 2^31 - 2 or - 1 that are nearly all padding: a valid net, no overflow */
        static const char *const pools[2] = {
            "{\"__metadata__\":{\"input\":\"1,8,8\",\"layers\":\"MaxPool2d kernel=2147483647 stride=1 pad=1073741823\"}}",
            "{\"__metadata__\":{\"input\":\"1,8,8\",\"layers\":\"AvgPool2d kernel=2147483646 stride=1 pad=1073741823\"}}"};
        for (i = 0; i < 2; i++) {
            size_t size;
            unsigned char *file = make_file(pools[i], NULL, 0, &size);
            nn_net *net = nn_load_memory(file, size, 1);
            CHECK(net && nn_output_shape(net).h == 8 + (int)i && nn_output_shape(net).w == 8 + (int)i, "%s: %s", pools[i], nn_error());
            nn_net_free(net);
            free(file);
        }
    }
    expect_refused_header("{\"__metadata__\":{\"input\":\"16,2147483647,2\",\"layers\":\"Conv2d out=1 kernel=3 stride=1 pad=1\"}}",
                          0, 1, NULL);
    expect_refused_header("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Flatten;Linear out=2147483647;Linear out=2147483647\"}}",
                          0, 1, NULL);
}

/* nn_build by a program: the same cap, added up before the first allocation. */
static void test_build_cap(void)
{
    nn_net *net = nn_net_new(nn_shape3(1, 1000, 1000));
    size_t before = mem_now;
    int i;
    for (i = 0; i < 100; i++) nn_add(net, nn_relu());   /* 100 x 4 MB x 32 = 12.8 GB */
    mem_asked_peak = mem_now;
    CHECK(nn_build(net, 32, 1) == NN_ERR_NOMEM && strstr(nn_error(), "NN_MAX_BUILD_BYTES"), "%s", nn_error());
    CHECK(mem_asked_peak - before < ((size_t)1 << 20), "asked for %zu bytes", mem_asked_peak - before);
    nn_net_free(net);
}

/* ---- Strict parsing: what a file must not get away with ---------------------------- */

static const float one_weight[2] = {0.5f, -0.25f};
#define LIN_META "\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\"}"
#define LIN_W "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]}"
#define LIN_B "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}"

static void refused_lin(const char *header, const float *data, size_t data_len, const char *why)
{
    size_t size;
    unsigned char *file = make_file(header, data ? (const void *)data : (const void *)one_weight, data_len, &size);
    expect_refused(file, size, 1, why, header);
    free(file);
}

static void test_strict_files(void)
{
    float nan_data[2] = {0.5f, NAN}, inf_data[2] = {INFINITY, 0.0f};
    float three[3] = {1, 2, 3};
    size_t size;
    unsigned char *file = make_file("{" LIN_META "," LIN_W "," LIN_B "}", one_weight, 8, &size);
    nn_net *ok = nn_load_memory(file, size, 1);
    CHECK(ok != NULL, "the valid file: %s", nn_error());
    nn_net_free(ok);
    free(file);
    /* JSON escapes become UTF-8 (a surrogate pair one character); a lone surrogate is malformed. */
    file = make_file("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\","
                     "\"classes\":\"\\u00fc\\ud83d\\ude00\\/\"}," LIN_W "," LIN_B "}", one_weight, 8, &size);
    ok = nn_load_memory(file, size, 1);
    CHECK(ok && nn_class_name(ok, 0) && !strcmp(nn_class_name(ok, 0), "\xc3\xbc\xf0\x9f\x98\x80/"), "escapes: %s",
          ok && nn_class_name(ok, 0) ? nn_class_name(ok, 0) : nn_error());
    nn_net_free(ok);
    free(file);
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"classes\":\"\\ud83d\"}," LIN_W "," LIN_B "}",
                NULL, 8, "malformed");
    refused_lin("{" LIN_META "," LIN_W "," LIN_B "}", nan_data, 8, "holds nan");
    refused_lin("{" LIN_META "," LIN_W "," LIN_B "}", inf_data, 8, "holds inf");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"nn_format\":\"2\"}," LIN_W "," LIN_B "}",
                NULL, 8, "nn_format version '2'");
    refused_lin("{" LIN_META "," LIN_W "," LIN_W "," LIN_B "}", NULL, 8, NULL);   /* a name twice */
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"input\":\"1,1,1\"}," LIN_W "," LIN_B "}",
                NULL, 8, "appears twice");
    refused_lin("{" LIN_META "," LIN_W "," LIN_B ",\"__metadata__\":{}}", NULL, 8, "two __metadata__");
    refused_lin("{" LIN_META ",\"0.weight\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
                LIN_B "}", NULL, 8, "malformed");
    refused_lin("{" LIN_META ",\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4],\"x\":{\"a\":1,\"a\":2}},"
                LIN_B "}", NULL, 8, "malformed");
    refused_lin("{" LIN_META "," LIN_W ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                NULL, 8, "overlaps");
    refused_lin("{" LIN_META "," LIN_W ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                three, 12, "bytes after the last tensor");
    refused_lin("{" LIN_META "," LIN_W ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                three, 12, "gap");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1.9\"}," LIN_W "," LIN_B "}", NULL, 8, "bad value");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1 out=1\"}," LIN_W "," LIN_B "}",
                NULL, 8, "twice");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1;LeakyReLU alpha=nan\"}," LIN_W "," LIN_B "}",
                NULL, 8, "bad value");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1;LeakyReLU alpha=1e39\"}," LIN_W "," LIN_B "}",
                NULL, 8, "bad value");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1 no_bias=2\"}," LIN_W "}", NULL, 4, "bad value");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"preprocess\":\"channels\","
                "\"preprocess_scale\":\"nan\",\"preprocess_mean\":\"0\",\"preprocess_std\":\"1\"}," LIN_W "," LIN_B "}",
                NULL, 8, "preprocess_scale");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"preprocess\":\"channels\","
                "\"preprocess_scale\":\"1\",\"preprocess_mean\":\"nan\",\"preprocess_std\":\"1\"}," LIN_W "," LIN_B "}",
                NULL, 8, "finite numbers");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"preprocess\":\"mean_image\","
                "\"preprocess_mean\":\"inf\"}," LIN_W "," LIN_B "}", NULL, 8, "finite numbers");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"classes\":\"a,b\"}," LIN_W "," LIN_B "}",
                NULL, 8, "2 class names for 1 outputs");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"classes\":\"a\\u0000b\"}," LIN_W "," LIN_B "}",
                NULL, 8, "malformed");
    refused_lin("{\"__metadata__\":{\"input\":\"1,1,1\",\"layers\":\"Linear out=1\",\"classes\":\"a\x01\"}," LIN_W "," LIN_B "}",
                NULL, 8, "malformed");
    refused_lin("{" LIN_META "," LIN_W "," LIN_B ",\"0.extra\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}",
                NULL, 8, "does not belong");
}

/* ---- Round trips, byte for byte ---------------------------------------------------- */

static void fill(float *x, size_t n, uint64_t seed)
{
    nn_rng r = nn_rng_new(seed);
    size_t i;
    for (i = 0; i < n; i++) x[i] = nn_rng_uniform(&r) - 0.5f;
}

static void check_round_trip(nn_net *net, const char *what)
{
    unsigned char *a = NULL, *b = NULL;
    size_t sa = 0, sb = 0, i;
    nn_net *back;
    uint64_t len = 0;
    int k, raw_control = 0;
    CHECK(nn_save_memory(net, &a, &sa) == NN_OK, "%s: %s", what, nn_error());
    if (!a) return;
    for (k = 7; k >= 0; k--) len = len << 8 | a[k];
    for (i = 8; i < 8 + len; i++) raw_control += a[i] < 0x20;
    CHECK(raw_control == 0, "%s: %d raw control characters in the JSON header", what, raw_control);
    back = nn_load_memory(a, sa, 2);
    CHECK(back != NULL, "%s: %s", what, nn_error());
    if (back) {
        CHECK(nn_save_memory(back, &b, &sb) == NN_OK, "%s: %s", what, nn_error());
        CHECK(sa == sb && b && memcmp(a, b, sa) == 0, "%s: the second save differs (%zu vs %zu bytes)", what, sa, sb);
        nn_free_buffer(b);
        nn_net_free(back);
    }
    nn_free_buffer(a);
}

static void test_round_trips_byte_identical(void)
{
    static const char *const names[4] = {"say \"hi\"", "back\\slash", "tab\tnew\nline\x01\x1f", "\xc3\xbc \xe2\x82\xac \xf0\x9f\x98\x80"};
    const float mean[3] = {120.5f, 1e-7f, -3.25f}, std[3] = {60.0f, 1e9f, 0.001f};
    float x[2 * 3 * 8 * 8], *mean_image = (float *)malloc(1500 * sizeof(float));
    const char **many = (const char **)malloc(1500 * sizeof *many);
    char (*many_text)[16] = (char (*)[16])malloc(1500 * 16);
    int y[2] = {0, 3}, i;
    nn_net *net = nn_net_new(nn_shape3(3, 8, 8)), *mlp;
    nn_layer_desc conv = nn_conv2d(4, 3, 1, 1);
    nn_sgd_desc sgd = {0.01f, 0.9f, 0, 0, 0};
    nn_optim *opt;
    conv.no_bias = 1;
    nn_add(net, conv); nn_add(net, nn_batchnorm()); nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0)); nn_add(net, nn_conv2d(4, 3, 2, 1)); nn_add(net, nn_avgpool2d(3, 1, 1));
    nn_add(net, nn_leaky_relu(1e9f)); nn_add(net, nn_sigmoid()); nn_add(net, nn_tanh()); nn_add(net, nn_gelu(1));
    nn_add(net, nn_gelu(0)); nn_add(net, nn_softplus(2.0f, 20.0f)); nn_add(net, nn_scale(0.1f));
    nn_add(net, nn_dropout(0.125f)); nn_add(net, nn_global_avgpool()); nn_add(net, nn_flatten());
    nn_add(net, nn_linear(6)); nn_add(net, nn_batchnorm()); nn_add(net, nn_linear(4));
    CHECK(nn_build(net, 2, 5) == NN_OK, "%s", nn_error());
    fill(x, sizeof x / sizeof *x, 1);
    opt = nn_sgd(net, sgd);
    for (i = 0; i < 3; i++) nn_train_step(net, opt, x, y, 2);   /* running statistics, num_batches_tracked */
    CHECK(nn_set_preprocess_channels(net, 1.0f / 255, mean, std) == NN_OK, "%s", nn_error());
    CHECK(nn_set_class_names(net, names, 4) == NN_OK, "%s", nn_error());
    check_round_trip(net, "every layer, channel preprocessing, odd class names");
    {   /* a checkpoint, through memory */
        char path[] = "/tmp/nn_hostile_ckpt_XXXXXX";
        int fd = mkstemp(path);
        unsigned char *a = NULL, *b = NULL;
        size_t sa = 0, sb = 0;
        FILE *f;
        nn_net *other = nn_load_memory(NULL, 0, 1);   /* NULL with an error */
        CHECK(other == NULL, "NULL data loaded");
        CHECK(nn_save_checkpoint(net, opt, path) == NN_OK, "%s", nn_error());
        f = fopen(path, "rb");
        a = (unsigned char *)malloc(1 << 20);
        sa = fread(a, 1, 1 << 20, f);
        fclose(f);
        CHECK(nn_load_checkpoint_memory(net, opt, a, sa) == NN_OK, "%s", nn_error());
        CHECK(nn_save_checkpoint(net, opt, path) == NN_OK, "%s", nn_error());
        f = fopen(path, "rb");
        b = (unsigned char *)malloc(1 << 20);
        sb = fread(b, 1, 1 << 20, f);
        fclose(f);
        CHECK(sa == sb && memcmp(a, b, sa) == 0, "checkpoint: the second save differs");
        free(a); free(b);
        remove(path);
        close(fd);
    }
    nn_optim_free(opt);
    nn_net_free(net);
    /* More than 1,024 class names, a mean image. */
    mlp = nn_net_new(nn_shape3(1, 1, 1500));
    nn_add(mlp, nn_flatten()); nn_add(mlp, nn_linear(1500));
    CHECK(nn_build(mlp, 1, 3) == NN_OK, "%s", nn_error());
    for (i = 0; i < 1500; i++) { snprintf(many_text[i], 16, "c%d", i); many[i] = many_text[i]; mean_image[i] = (float)i / 7; }
    CHECK(nn_set_class_names(mlp, many, 1500) == NN_OK, "%s", nn_error());
    CHECK(nn_set_preprocess_mean_image(mlp, mean_image) == NN_OK, "%s", nn_error());
    check_round_trip(mlp, "1,500 classes, mean image");
    {
        unsigned char *a;
        size_t sa;
        nn_net *back;
        nn_save_memory(mlp, &a, &sa);
        back = nn_load_memory(a, sa, 1);
        CHECK(back && nn_class_name(back, 1499) && !strcmp(nn_class_name(back, 1499), "c1499"), "class 1499 lost");
        nn_net_free(back);
        nn_free_buffer(a);
    }
    nn_net_free(mlp);
    free(mean_image); free((void *)many); free(many_text);
}

/* ---- Setters and NULLs -------------------------------------------------------------- */

static nn_net *small_net(uint64_t seed)
{
    nn_net *net = nn_net_new(nn_shape3(2, 3, 3));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(6));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_linear(10));
    if (nn_build(net, 4, seed) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); exit(1); }
    return net;
}

static void test_setters_refuse(void)
{
    static const char *const ten[11] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"};
    const char *with_null[10] = {"a", "b", NULL, "d", "e", "f", "g", "h", "i", "j"};
    nn_net *net = small_net(1), *unbuilt = nn_net_new(nn_shape3(1, 1, 1));
    float mean[18] = {0}, std[2] = {1, 1}, cmean[2] = {0, 0};
    CHECK(nn_set_class_names(net, ten, 2) == NN_ERR_ARG, "2 names for 10 outputs");
    CHECK(nn_set_class_names(net, ten, 11) == NN_ERR_ARG, "11 names for 10 outputs");
    CHECK(nn_set_class_names(net, ten, -1) == NN_ERR_ARG, "-1 names");
    CHECK(nn_set_class_names(net, with_null, 10) == NN_ERR_ARG, "a NULL name");
    CHECK(nn_set_class_names(net, (const char *const[]){"a", "b", "c", "d", "e", "f", "g", "h", "i", "j,k"}, 10) == NN_ERR_ARG,
          "a comma");
    CHECK(nn_set_class_names(net, (const char *const[]){"a", "b", "c", "d", "e", "f", "g", "h", "i", "\xff"}, 10) == NN_ERR_ARG,
          "invalid UTF-8");
    CHECK(nn_set_class_names(net, ten, 10) == NN_OK, "%s", nn_error());
    CHECK(nn_set_class_names(net, NULL, 0) == NN_OK && nn_class_name(net, 0) == NULL, "clearing");
    CHECK(nn_set_class_names(unbuilt, ten, 1) == NN_ERR_STATE, "unbuilt net");
    CHECK(nn_set_preprocess_channels(net, NAN, cmean, std) == NN_ERR_ARG, "NaN scale");
    CHECK(nn_set_preprocess_channels(net, 0.0f, cmean, std) == NN_ERR_ARG, "zero scale");
    cmean[1] = NAN;
    CHECK(nn_set_preprocess_channels(net, 1.0f, cmean, std) == NN_ERR_ARG, "NaN mean");
    cmean[1] = 0;
    std[0] = INFINITY;
    CHECK(nn_set_preprocess_channels(net, 1.0f, cmean, std) == NN_ERR_ARG, "infinite std");
    mean[17] = NAN;
    CHECK(nn_set_preprocess_mean_image(net, mean) == NN_ERR_ARG, "NaN in the mean image");
    CHECK(nn_get_preprocess(net) == NN_PREPROCESS_NONE, "a refused setter changed the net");
    nn_net_free(net);
    nn_net_free(unbuilt);
}

/* A checkpoint pairs a net with an optimiser of its current build: after a rebuild the
   moments belong to the old parameters, so neither a save nor a load may use them. */
static void test_checkpoint_of_a_rebuilt_net(void)
{
    nn_net *net = small_net(3);
    nn_sgd_desc sgd = {0.1f, 0.9f, 0, 0, 0};
    nn_optim *opt = nn_sgd(net, sgd), *fresh;
    const char *path = "build/hostile_rebuilt.ckpt";
    CHECK(nn_save_checkpoint(net, opt, path) == NN_OK, "%s", nn_error());
    CHECK(nn_build(net, 4, 4) == NN_OK, "%s", nn_error());
    CHECK(nn_save_checkpoint(net, opt, path) == NN_ERR_STATE && strstr(nn_error(), "rebuilt"), "save: %s", nn_error());
    CHECK(nn_load_checkpoint(net, opt, path) == NN_ERR_STATE && strstr(nn_error(), "rebuilt"), "load: %s", nn_error());
    fresh = nn_sgd(net, sgd);
    CHECK(nn_load_checkpoint(net, fresh, path) == NN_OK, "a new optimiser loads it: %s", nn_error());
    nn_optim_free(fresh);
    nn_optim_free(opt);
    nn_net_free(net);
    remove(path);
}

static void test_null_arguments(void)
{
    nn_net *net = small_net(2);
    nn_sgd_desc sgd = {0.1f, 0.9f, 0, 0, 0};
    nn_optim *opt = nn_sgd(net, sgd);
    unsigned char *buf = NULL, file[16] = {0};
    size_t size = 0;
    float v[18] = {0}, one[2] = {1, 1};
    CHECK(nn_save_memory(NULL, &buf, &size) == NN_ERR_ARG, "save_memory net");
    CHECK(nn_save_memory(net, NULL, &size) == NN_ERR_ARG, "save_memory data");
    CHECK(nn_save_memory(net, &buf, NULL) == NN_ERR_ARG, "save_memory size");
    CHECK(nn_set_preprocess_mean_image(NULL, v) == NN_ERR_ARG, "mean_image net");
    CHECK(nn_set_preprocess_mean_image(net, NULL) == NN_ERR_ARG, "mean_image values");
    CHECK(nn_set_preprocess_channels(NULL, 1, one, one) == NN_ERR_ARG, "channels net");
    CHECK(nn_set_preprocess_channels(net, 1, NULL, one) == NN_ERR_ARG, "channels mean");
    CHECK(nn_set_preprocess_channels(net, 1, one, NULL) == NN_ERR_ARG, "channels std");
    CHECK(nn_get_preprocess(NULL) == NN_PREPROCESS_NONE, "get_preprocess");
    CHECK(nn_preprocess(NULL, v, v, 1) == NN_ERR_ARG, "preprocess net");
    CHECK(nn_preprocess(net, NULL, v, 1) == NN_ERR_ARG, "preprocess pixels");
    CHECK(nn_preprocess(net, v, NULL, 1) == NN_ERR_ARG, "preprocess x");
    CHECK(nn_preprocess(net, v, v, -1) == NN_ERR_ARG, "preprocess n");
    CHECK(nn_set_class_names(NULL, NULL, 0) == NN_ERR_ARG, "class names net");
    CHECK(nn_set_class_names(net, NULL, 10) == NN_ERR_ARG, "class names names");
    CHECK(nn_class_name(NULL, 0) == NULL, "class_name");
    nn_free_buffer(NULL);
    CHECK(nn_load_memory(NULL, 100, 1) == NULL, "load_memory data");
    CHECK(nn_load_memory(file, sizeof file, 0) == NULL && strstr(nn_error(), "batch"), "load_memory batch");
    CHECK(nn_load_weights_memory(NULL, file, sizeof file) == NN_ERR_ARG, "load_weights_memory net");
    CHECK(nn_load_weights_memory(net, NULL, 10) == NN_ERR_ARG, "load_weights_memory data");
    CHECK(nn_load_checkpoint_memory(NULL, opt, file, sizeof file) == NN_ERR_ARG, "checkpoint_memory net");
    CHECK(nn_load_checkpoint_memory(net, NULL, file, sizeof file) == NN_ERR_ARG, "checkpoint_memory opt");
    CHECK(nn_load_checkpoint_memory(net, opt, NULL, 10) == NN_ERR_ARG, "checkpoint_memory data");
    CHECK(nn_save(NULL, "/tmp/nn_hostile_null") == NN_ERR_ARG, "save net");
    CHECK(nn_save(net, NULL) == NN_ERR_ARG, "save path");
    CHECK(nn_load(NULL, 1) == NULL, "load path");
    CHECK(nn_load_weights(NULL, "/tmp/x") == NN_ERR_ARG, "load_weights net");
    CHECK(nn_load_weights(net, NULL) == NN_ERR_ARG, "load_weights path");
    CHECK(nn_save_checkpoint(NULL, opt, "/tmp/x") == NN_ERR_ARG, "save_checkpoint net");
    CHECK(nn_save_checkpoint(net, NULL, "/tmp/x") == NN_ERR_ARG, "save_checkpoint opt");
    CHECK(nn_save_checkpoint(net, opt, NULL) == NN_ERR_ARG, "save_checkpoint path");
    CHECK(nn_load_checkpoint(NULL, opt, "/tmp/x") == NN_ERR_ARG, "load_checkpoint net");
    CHECK(nn_load_checkpoint(net, NULL, "/tmp/x") == NN_ERR_ARG, "load_checkpoint opt");
    CHECK(nn_load_checkpoint(net, opt, NULL) == NN_ERR_ARG, "load_checkpoint path");
    nn_optim_free(opt);
    nn_net_free(net);
}

/* ---- All or nothing ------------------------------------------------------------------ */

static float *snapshot(nn_net *net)
{
    size_t total = 0, at = 0;
    int i;
    float *s;
    for (i = 0; i < nn_num_param_tensors(net); i++) total += nn_get_param(net, i)->size;
    s = (float *)malloc(total * sizeof(float));
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        memcpy(s + at, nn_get_param(net, i)->value, nn_get_param(net, i)->size * sizeof(float));
        at += nn_get_param(net, i)->size;
    }
    return s;
}

static int same_as(nn_net *net, const float *s)
{
    size_t at = 0;
    int i;
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        if (memcmp(s + at, nn_get_param(net, i)->value, nn_get_param(net, i)->size * sizeof(float))) return 0;
        at += nn_get_param(net, i)->size;
    }
    return 1;
}

static void train(nn_net *net, nn_optim *opt, int steps, uint64_t seed)
{
    float x[4 * 18];
    int y[4] = {0, 1, 2, 3}, i;
    for (i = 0; i < steps; i++) {
        fill(x, 72, seed + (uint64_t)i);
        nn_train_step(net, opt, x, y, 4);
    }
}

static void test_all_or_nothing(void)
{
    nn_net *a = small_net(3), *b = small_net(4);
    nn_adam_desc adam = {0.01f, 0, 0, 0, 0};
    nn_optim *oa = nn_adam(a, adam), *ob = nn_adam(b, adam);
    unsigned char *file, *bad;
    size_t size, bad_size;
    float *before, *moments_before;
    char path[] = "/tmp/nn_hostile_aon_XXXXXX";
    int fd = mkstemp(path), i;
    FILE *f;
    static const char *const edits[][2] = {
        {"\"optimizer_lr\":\"", "\"optimizer_lr\":\"nan"},
        {"\"optimizer_step\":\"", "\"optimizer_step\":\"-"},
        {"\"optimizer_step\":\"", "\"optimizer_step\":\"99999999999999999999"},
        {"\"optimizer\":\"1\"", "\"optimizer\":\"1.5\""},
        {"\"rng\":\"", "\"rng\":\"x"},
    };
    train(a, oa, 5, 10);
    train(b, ob, 7, 20);
    /* A weights file whose last tensor holds a NaN: b keeps every value. */
    nn_save_memory(a, &file, &size);
    bad = (unsigned char *)malloc(size);
    memcpy(bad, file, size);
    memcpy(bad + size - 4, &(float){NAN}, 4);
    before = snapshot(b);
    CHECK(nn_load_weights_memory(b, bad, size) != NN_OK, "a NaN weight loaded");
    CHECK(same_as(b, before), "a failed nn_load_weights_memory changed the net");
    f = fopen(path, "wb"); fwrite(bad, 1, size, f); fclose(f);
    CHECK(nn_load_weights(b, path) != NN_OK && same_as(b, before), "a failed nn_load_weights changed the net");
    free(bad);
    nn_free_buffer(file);
    /* A checkpoint whose last moment holds a NaN, or whose step or lr is bad: b and its
       optimiser keep every value. */
    CHECK(nn_save_checkpoint(a, oa, path) == NN_OK, "%s", nn_error());
    {
        FILE *r = fopen(path, "rb");
        file = (unsigned char *)malloc(1 << 20);
        size = fread(file, 1, 1 << 20, r);
        fclose(r);
    }
    {
        nn_sgd_desc none = {0.1f, 0, 0, 0, 0};
        nn_optim *plain = nn_sgd(b, none);
        CHECK(nn_load_checkpoint_memory(b, plain, file, size) != NN_OK, "an SGD optimiser took Adam's state");
        nn_optim_free(plain);
    }
    moments_before = (float *)malloc(18 * 6 * sizeof(float));
    nn_save_memory(b, &bad, &bad_size);   /* b's weights, to compare with later */
    {
        unsigned char *ckpt_b;
        size_t sb;
        char pb[] = "/tmp/nn_hostile_aonb_XXXXXX";
        int fdb = mkstemp(pb);
        FILE *r;
        nn_save_checkpoint(b, ob, pb);
        r = fopen(pb, "rb");
        ckpt_b = (unsigned char *)malloc(1 << 20);
        sb = fread(ckpt_b, 1, 1 << 20, r);
        fclose(r);
        {
            unsigned char *nan_ckpt = (unsigned char *)malloc(size);
            memcpy(nan_ckpt, file, size);
            memcpy(nan_ckpt + size - 4, &(float){NAN}, 4);
            CHECK(nn_load_checkpoint_memory(b, ob, nan_ckpt, size) != NN_OK, "a NaN moment loaded");
            free(nan_ckpt);
        }
        for (i = 0; i < (int)(sizeof edits / sizeof *edits); i++) {
            size_t es;
            unsigned char *e = edit_file(file, size, edits[i][0], edits[i][1], &es);
            CHECK(e != NULL, "edit %d", i);
            if (!e) continue;
            CHECK(nn_load_checkpoint_memory(b, ob, e, es) != NN_OK, "checkpoint edit '%s' loaded", edits[i][1]);
            free(e);
        }
        {   /* the step and every moment as they were: the checkpoint b saves now is the same */
            unsigned char *again;
            size_t sa2;
            nn_save_checkpoint(b, ob, pb);
            r = fopen(pb, "rb");
            again = (unsigned char *)malloc(1 << 20);
            sa2 = fread(again, 1, 1 << 20, r);
            fclose(r);
            CHECK(sa2 == sb && memcmp(again, ckpt_b, sb) == 0, "a failed checkpoint load changed the net or optimiser");
            free(again);
        }
        CHECK(nn_load_checkpoint_memory(b, ob, file, size) == NN_OK, "%s", nn_error());
        CHECK(nn_optim_steps(ob) == 5, "steps %ld", nn_optim_steps(ob));
        free(ckpt_b);
        remove(pb);
        close(fdb);
    }
    nn_free_buffer(bad);
    free(moments_before);
    free(file);
    free(before);
    remove(path);
    close(fd);
    nn_optim_free(oa); nn_optim_free(ob);
    nn_net_free(a); nn_net_free(b);
}

/* ---- Scale: 16,000 layers match their 32,000 tensors in n log n ---------------------- */

static void test_many_tensors_fast(void)
{
    nn_net *net = nn_net_new(nn_shape3(1, 1, 1)), *back;
    unsigned char *buf;
    size_t size;
    double t0, took;
    int i;
    for (i = 0; i < 16000; i++) nn_add(net, nn_linear(1));
    CHECK(nn_build(net, 1, 1) == NN_OK, "%s", nn_error());
    nn_save_memory(net, &buf, &size);
    t0 = now_s();
    back = nn_load_memory(buf, size, 1);
    took = now_s() - t0;
    CHECK(back != NULL, "%s", nn_error());
    CHECK(took < 1.5, "loading 32,000 tensors took %.2f s", took);
    t0 = now_s();
    CHECK(nn_load_weights_memory(net, buf, size) == NN_OK, "%s", nn_error());
    took = now_s() - t0;
    CHECK(took < 1.5, "nn_load_weights_memory of 32,000 tensors took %.2f s", took);
    nn_net_free(back);
    nn_free_buffer(buf);
    nn_net_free(net);
}

/* ---- Files on disk: directories, full disks, kill -9 ---------------------------------- */

static void test_directory_is_not_a_file(void)
{
    nn_net *net = small_net(5);
    nn_sgd_desc sgd = {0.1f, 0.9f, 0, 0, 0};
    nn_optim *opt = nn_sgd(net, sgd);
    mem_asked_peak = mem_now;
    CHECK(nn_load("/tmp", 1) == NULL && strstr(nn_error(), "directory"), "%s", nn_error());
    CHECK(nn_load_weights(net, "/tmp") == NN_ERR_IO && strstr(nn_error(), "directory"), "%s", nn_error());
    CHECK(nn_load_checkpoint(net, opt, "/tmp") == NN_ERR_IO && strstr(nn_error(), "directory"), "%s", nn_error());
    CHECK(mem_asked_peak - mem_now < 4096, "asked for %zu bytes", mem_asked_peak - mem_now);
    {   /* the data loaders share the opening helper */
        static const char *const dirs[1] = {"/tmp"};
        nn_dataset d;
        CHECK(nn_cifar10_load_files(dirs, 1, &d) == NN_ERR_IO && strstr(nn_error(), "directory"), "%s", nn_error());
        CHECK(nn_idx_load("/tmp", "/tmp", &d) == NN_ERR_IO && strstr(nn_error(), "directory"), "%s", nn_error());
    }
    nn_optim_free(opt);
    nn_net_free(net);
}

static int file_equals(const char *path, const unsigned char *data, size_t size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *got;
    size_t n;
    int same;
    if (!f) return 0;
    got = (unsigned char *)malloc(size + 1);
    n = fread(got, 1, size + 1, f);
    fclose(f);
    same = n == size && memcmp(got, data, size) == 0;
    free(got);
    return same;
}

static void test_full_disk_keeps_the_old_file(void)
{
    char dir[] = "/tmp/nn_hostile_disk_XXXXXX", path[64], tmp[80];
    nn_net *small = small_net(6), *big = nn_net_new(nn_shape3(1, 1, 1000));
    nn_sgd_desc sgd = {0.1f, 0.9f, 0, 0, 0};
    nn_optim *opt;
    unsigned char *old;
    size_t old_size;
    struct rlimit saved, lim;
    struct stat sb;
    nn_add(big, nn_flatten()); nn_add(big, nn_linear(1000));
    nn_build(big, 1, 1);
    opt = nn_sgd(big, sgd);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(nn_save(small, path) == NN_OK, "%s", nn_error());
    nn_save_memory(small, &old, &old_size);
    /* Writes past 64 KB fail with EFBIG (SIGXFSZ ignored): the 4 MB save fails. */
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 65536;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    CHECK(nn_save(big, path) == NN_ERR_IO, "a save past the file size limit succeeded");
    CHECK(nn_save_checkpoint(big, opt, path) == NN_ERR_IO, "a checkpoint past the file size limit succeeded");
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_DFL);
    CHECK(file_equals(path, old, old_size), "the failed save destroyed the old file");
    CHECK(stat(tmp, &sb) != 0, "the temporary file was left behind");
    /* A full device: an error, no crash (the file was once closed twice). */
    CHECK(nn_save(small, "/dev/full") == NN_ERR_IO, "/dev/full: %s", nn_error());
    CHECK(nn_save_checkpoint(big, opt, "/dev/full") == NN_ERR_IO, "/dev/full: %s", nn_error());
    /* A directory that does not exist: an error naming it. */
    CHECK(nn_save(small, "/nonexistent/dir/m.safetensors") == NN_ERR_IO && strstr(nn_error(), "/nonexistent/dir"),
          "%s", nn_error());
    remove(path);
    rmdir(dir);
    nn_free_buffer(old);
    nn_optim_free(opt);
    nn_net_free(small);
    nn_net_free(big);
}

/* A child saves checkpoints of states 1, 2, 3, ... in a loop and is killed at random
   moments; the file must always load, as one whole state. */
static void test_kill_during_checkpoint(void)
{
    char dir[] = "/tmp/nn_hostile_kill_XXXXXX", path[64];
    nn_net *net = nn_net_new(nn_shape3(1, 1, 400));
    nn_sgd_desc sgd = {0.1f, 0.9f, 0, 0, 0};
    nn_optim *opt;
    nn_rng r = nn_rng_new(7);
    int round, loaded = 0, newer = 0;
    nn_add(net, nn_flatten()); nn_add(net, nn_linear(400));
    nn_build(net, 1, 1);
    opt = nn_sgd(net, sgd);
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    nn_init_weights(net, NN_INIT_CONSTANT, 0.0f, 0.0f, 0.0f, NN_LINEAR);
    CHECK(nn_save_checkpoint(net, opt, path) == NN_OK, "%s", nn_error());
    for (round = 0; round < 20; round++) {
        pid_t child = fork();
        struct timespec wait;
        if (child == 0) {
            int k;
            for (k = 1; ; k++) {
                nn_init_weights(net, NN_INIT_CONSTANT, (float)k, 0.0f, (float)k, NN_LINEAR);
                if (nn_save_checkpoint(net, opt, path) != NN_OK) _exit(3);
            }
        }
        wait.tv_sec = 0;
        wait.tv_nsec = 1000000L * (long)(5 + nn_rng_below(&r, 300));
        nanosleep(&wait, NULL);
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        {
            nn_net *back = nn_net_new(nn_shape3(1, 1, 400));
            nn_optim *bopt;
            nn_add(back, nn_flatten()); nn_add(back, nn_linear(400));
            nn_build(back, 1, 2);
            bopt = nn_sgd(back, sgd);
            if (nn_load_checkpoint(back, bopt, path) == NN_OK) {
                nn_param *w = nn_get_param(back, 0), *b = nn_get_param(back, 1);
                size_t i;
                int whole = 1;
                for (i = 0; i < w->size; i++) whole &= w->value[i] == w->value[0];
                for (i = 0; i < b->size; i++) whole &= b->value[i] == w->value[0];
                CHECK(whole, "round %d: a mixture of states", round);
                newer += w->value[0] > 0;
                loaded++;
            } else CHECK(0, "round %d: %s", round, nn_error());
            nn_optim_free(bopt);
            nn_net_free(back);
        }
    }
    CHECK(loaded == 20, "%d of 20 checkpoints loaded", loaded);
    CHECK(newer > 0, "the child never completed a save");
    {
        char tmp[80];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        remove(tmp);
    }
    remove(path);
    rmdir(dir);
    nn_optim_free(opt);
    nn_net_free(net);
}

int main(void)
{
    RUN(test_hostile_files_fail_fast);
    RUN(test_build_cap);
    RUN(test_strict_files);
    RUN(test_round_trips_byte_identical);
    RUN(test_setters_refuse);
    RUN(test_null_arguments);
    RUN(test_checkpoint_of_a_rebuilt_net);
    RUN(test_all_or_nothing);
    RUN(test_many_tensors_fast);
    RUN(test_directory_is_not_a_file);
    RUN(test_full_disk_keeps_the_old_file);
    RUN(test_kill_during_checkpoint);
    return test_end("test_hostile");
}
