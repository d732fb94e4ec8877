/* Data: CIFAR-10 and IDX readers, preprocessing, the batcher and the image packer.
   Every test writes its own small files in a temporary directory. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

static char tmp_root[] = "/tmp/nn_test_data_XXXXXX";

/* A path inside the temporary directory (rotating buffers, so a few can coexist). */
static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", tmp_root, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot create %s", path);
    if (!f) return;
    if (size) CHECK(fwrite(data, 1, size, f) == size, "short write to %s", path);
    fclose(f);
}

static int contains(const char *text, const char *part) { return strstr(text, part) != NULL; }

static int is_zeroed(const nn_dataset *d)
{
    static const nn_dataset zero;
    return memcmp(d, &zero, sizeof zero) == 0;
}

/* ---- CIFAR-10 --------------------------------------------------------------------- */

static unsigned char cifar_pixel(int record, int i) { return (unsigned char)((record * 7 + i * 13) % 256); }

/* Records first..first+count-1 with labels from `labels` and pixels cifar_pixel(). */
static unsigned char *cifar_records(int first, int count, const int *labels)
{
    unsigned char *buf = (unsigned char *)malloc((size_t)count * NN_CIFAR10_RECORD);
    int r, i;
    for (r = 0; r < count; r++) {
        unsigned char *rec = buf + (size_t)r * NN_CIFAR10_RECORD;
        rec[0] = (unsigned char)labels[r];
        for (i = 0; i < 3072; i++) rec[1 + i] = cifar_pixel(first + r, i);
    }
    return buf;
}

static void write_cifar(const char *path, int first, int count, const int *labels)
{
    unsigned char *buf = cifar_records(first, count, labels);
    write_bytes(path, buf, (size_t)count * NN_CIFAR10_RECORD);
    free(buf);
}

static void check_cifar_sample(const nn_dataset *d, int sample, int record, int label)
{
    const float *x = d->x + (size_t)sample * 3072;
    int i, bad = 0;
    for (i = 0; i < 3072; i++) bad += x[i] != (float)cifar_pixel(record, i);
    CHECK(bad == 0, "sample %d: %d pixels differ", sample, bad);
    CHECK(d->y[sample] == label, "sample %d: label %d, expected %d", sample, d->y[sample], label);
}

static void test_cifar_reads_known_records(void)
{
    static const int labels[3] = { 0, 9, 4 };
    const char *path = tmp_path("three.bin");
    nn_dataset d;
    int r;
    write_cifar(path, 0, 3, labels);
    CHECK(nn_cifar10_load_files(&path, 1, &d) == NN_OK, "%s", nn_error());
    CHECK(d.n == 3, "n = %d", d.n);
    CHECK(d.shape.c == 3 && d.shape.h == 32 && d.shape.w == 32, "shape %dx%dx%d",
          d.shape.c, d.shape.h, d.shape.w);
    CHECK(d.num_classes == 10, "num_classes %d", d.num_classes);
    CHECK(d.order == NULL && d.cursor == 0 && d.epoch == 0, "batcher state not clear");
    for (r = 0; r < 3 && d.x; r++) check_cifar_sample(&d, r, r, labels[r]);
    /* Layout: the green plane starts at 1024, row-major, e.g. (G, y=2, x=5). */
    if (d.x) CHECK(d.x[3072 + 1024 + 2 * 32 + 5] == (float)cifar_pixel(1, 1024 + 69), "layout");
    nn_dataset_free(&d);
    CHECK(is_zeroed(&d), "nn_dataset_free leaves fields set");
}

static void test_cifar_concatenates_files(void)
{
    static const int a[2] = { 1, 2 }, b[1] = { 3 };
    const char *paths[3];
    nn_dataset d;
    paths[0] = tmp_path("a.bin");
    paths[1] = tmp_path("b.bin");
    paths[2] = paths[0];
    write_cifar(paths[0], 0, 2, a);
    write_cifar(paths[1], 2, 1, b);
    CHECK(nn_cifar10_load_files(paths, 3, &d) == NN_OK, "%s", nn_error());
    CHECK(d.n == 5, "n = %d", d.n);
    if (d.n == 5) {
        check_cifar_sample(&d, 0, 0, 1);
        check_cifar_sample(&d, 1, 1, 2);
        check_cifar_sample(&d, 2, 2, 3);
        check_cifar_sample(&d, 3, 0, 1);
        check_cifar_sample(&d, 4, 1, 2);
    }
    nn_dataset_free(&d);
}

static void test_cifar_rejects_bad_sizes(void)
{
    static const int labels[2] = { 5, 6 };
    static const size_t sizes[] = { 0, 1, 3072, 3074, 2 * 3073 - 1 };
    unsigned char *buf = cifar_records(0, 2, labels);
    const char *path = tmp_path("cut.bin");
    size_t i;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        nn_dataset d;
        char size_text[32];
        nn_status s;
        write_bytes(path, buf, sizes[i]);
        memset(&d, 0xab, sizeof d);
        s = nn_cifar10_load_files(&path, 1, &d);
        snprintf(size_text, sizeof size_text, "size %zu", sizes[i]);
        CHECK(s == NN_ERR_FORMAT, "size %zu: %s", sizes[i], nn_status_name(s));
        CHECK(contains(nn_error(), path) && contains(nn_error(), size_text)
              && contains(nn_error(), "3073"), "message: %s", nn_error());
        CHECK(is_zeroed(&d), "size %zu: out not zeroed", sizes[i]);
    }
    free(buf);
}

static void test_cifar_rejects_bad_label(void)
{
    static const int labels[3] = { 1, 2, 10 };
    const char *paths[2];
    nn_dataset d;
    nn_status s;
    paths[0] = tmp_path("good.bin");
    paths[1] = tmp_path("badlabel.bin");
    write_cifar(paths[0], 0, 2, labels);
    write_cifar(paths[1], 0, 3, labels);
    s = nn_cifar10_load_files(paths, 2, &d);
    CHECK(s == NN_ERR_FORMAT, "%s", nn_status_name(s));
    CHECK(contains(nn_error(), paths[1]) && contains(nn_error(), "record 2")
          && contains(nn_error(), "label 10"), "message: %s", nn_error());
    CHECK(is_zeroed(&d), "out not zeroed");
}

static void test_cifar_missing_file(void)
{
    const char *paths[2];
    nn_dataset d;
    nn_status s;
    static const int labels[1] = { 0 };
    paths[0] = tmp_path("present.bin");
    paths[1] = tmp_path("absent.bin");
    write_cifar(paths[0], 0, 1, labels);
    s = nn_cifar10_load_files(paths, 2, &d);
    CHECK(s == NN_ERR_IO, "%s", nn_status_name(s));
    CHECK(contains(nn_error(), paths[1]) && contains(nn_error(), strerror(ENOENT)),
          "message: %s", nn_error());
    CHECK(is_zeroed(&d), "out not zeroed");
    CHECK(nn_cifar10_load_files(paths, 0, &d) == NN_ERR_ARG, "count 0 accepted");
}

static void test_cifar_load_directory(void)
{
    static const int labels[4] = { 3, 1, 4, 1 };
    char name[64];
    nn_dataset train, test;
    int b;
    mkdir(tmp_path("cifar"), 0700);
    for (b = 1; b <= 5; b++) {
        snprintf(name, sizeof name, "cifar/data_batch_%d.bin", b);
        write_cifar(tmp_path(name), b, 1, labels + (b - 1) % 4);
    }
    /* Without test_batch.bin: an error, and train is not left half loaded. */
    CHECK(nn_cifar10_load(tmp_path("cifar"), &train, &test) == NN_ERR_IO, "no test file");
    CHECK(contains(nn_error(), "test_batch.bin"), "message: %s", nn_error());
    CHECK(is_zeroed(&train) && is_zeroed(&test), "outputs not zeroed");
    CHECK(nn_cifar10_load(tmp_path("cifar"), &train, NULL) == NN_OK, "%s", nn_error());
    CHECK(train.n == 5, "train n = %d", train.n);
    if (train.n == 5)
        for (b = 0; b < 5; b++) check_cifar_sample(&train, b, b + 1, labels[b % 4]);
    nn_dataset_free(&train);
    write_cifar(tmp_path("cifar/test_batch.bin"), 9, 2, labels);
    CHECK(nn_cifar10_load(tmp_path("cifar"), &train, &test) == NN_OK, "%s", nn_error());
    CHECK(train.n == 5 && test.n == 2, "n = %d, %d", train.n, test.n);
    if (test.n == 2) check_cifar_sample(&test, 1, 10, labels[1]);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    CHECK(nn_cifar10_load(tmp_path("cifar"), NULL, &test) == NN_OK && test.n == 2, "test only");
    nn_dataset_free(&test);
}

/* ---- IDX -------------------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);  p[3] = (unsigned char)v;
}

/* An IDX file with the given magic and dims, then `data_size` bytes 0, 1, 2, ... */
static void write_idx(const char *path, uint32_t magic, int ndim, const uint32_t *dims,
                      size_t data_size)
{
    size_t header = 4 + 4 * (size_t)ndim, i;
    unsigned char *buf = (unsigned char *)malloc(header + data_size + 1);
    put_be32(buf, magic);
    for (i = 0; i < (size_t)ndim; i++) put_be32(buf + 4 + 4 * i, dims[i]);
    for (i = 0; i < data_size; i++) buf[header + i] = (unsigned char)(i * 3 % 256);
    write_bytes(path, buf, header + data_size);
    free(buf);
}

static void test_idx_reads_known_values(void)
{
    static const unsigned char labels_file[] = { 0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 4 };
    static const uint32_t dims[3] = { 3, 2, 5 };
    const char *images = tmp_path("img.idx"), *labels = tmp_path("lab.idx");
    nn_dataset d;
    int i, bad = 0;
    write_idx(images, 0x803, 3, dims, 30);
    write_bytes(labels, labels_file, sizeof labels_file);
    CHECK(nn_idx_load(images, labels, &d) == NN_OK, "%s", nn_error());
    CHECK(d.n == 3 && d.shape.c == 1 && d.shape.h == 2 && d.shape.w == 5,
          "n %d shape %dx%dx%d", d.n, d.shape.c, d.shape.h, d.shape.w);
    CHECK(d.num_classes == 5, "num_classes %d", d.num_classes);
    if (d.n == 3) {
        for (i = 0; i < 30; i++) bad += d.x[i] != (float)(i * 3 % 256);
        CHECK(bad == 0, "%d pixels differ", bad);
        CHECK(d.y[0] == 1 && d.y[1] == 0 && d.y[2] == 4, "labels %d %d %d", d.y[0], d.y[1], d.y[2]);
    }
    nn_dataset_free(&d);
}

/* Loads and expects a format error whose message contains `part` and the path. */
static void expect_idx_error(const char *images, const char *labels, const char *bad_path,
                             const char *part, const char *what)
{
    nn_dataset d;
    nn_status s;
    memset(&d, 0xcd, sizeof d);
    s = nn_idx_load(images, labels, &d);
    CHECK(s == NN_ERR_FORMAT, "%s: %s (%s)", what, nn_status_name(s), nn_error());
    CHECK(contains(nn_error(), bad_path) && contains(nn_error(), part), "%s: message: %s",
          what, nn_error());
    CHECK(is_zeroed(&d), "%s: out not zeroed", what);
}

static void test_idx_rejects_bad_files(void)
{
    const char *images = tmp_path("i.idx"), *labels = tmp_path("l.idx"), *bad = tmp_path("bad.idx");
    uint32_t dims[3] = { 4, 3, 3 }, ldims[1] = { 4 };
    write_idx(images, 0x803, 3, dims, 36);
    write_idx(labels, 0x801, 1, ldims, 4);

    write_idx(bad, 0x1f8b0803, 3, dims, 36);
    expect_idx_error(bad, labels, bad, "magic 0x1f8b0803", "images magic");
    expect_idx_error(images, images, images, "magic 0x00000803", "images given as labels");
    write_idx(bad, 0x803, 3, dims, 35);
    expect_idx_error(bad, labels, bad, "size 51, expected 52", "truncated images");
    write_idx(bad, 0x803, 3, dims, 37);
    expect_idx_error(bad, labels, bad, "size 53, expected 52", "extra image byte");
    write_idx(bad, 0x801, 1, ldims, 3);
    expect_idx_error(images, bad, bad, "size 11, expected 12", "truncated labels");
    write_bytes(bad, "\0\0\x08\x03\0\0", 6);
    expect_idx_error(bad, labels, bad, "header", "cut header");
    write_bytes(bad, "", 0);
    expect_idx_error(bad, labels, bad, "size 0", "empty file");
    {
        uint32_t five[1] = { 5 };
        write_idx(bad, 0x801, 1, five, 5);
        expect_idx_error(images, bad, bad, "4 images", "count mismatch");
    }
    {
        uint32_t zero[3] = { 4, 0, 3 };
        write_idx(bad, 0x803, 3, zero, 0);
        expect_idx_error(bad, labels, bad, "dimension 1 is 0", "zero dimension");
    }
    {
        uint32_t huge[3] = { 0x7fffffffu, 0x7fffffffu, 0x7fffffffu };
        write_idx(bad, 0x803, 3, huge, 36);
        expect_idx_error(bad, labels, bad, "overflow", "overflowing dimensions");
    }
    {
        uint32_t negative[3] = { 0x80000000u, 3, 3 };
        write_idx(bad, 0x803, 3, negative, 36);
        expect_idx_error(bad, labels, bad, "dimension 0 is 2147483648", "dimension > INT_MAX");
    }
    {
        nn_dataset d;
        CHECK(nn_idx_load(tmp_path("nothing.idx"), labels, &d) == NN_ERR_IO, "missing file");
        CHECK(contains(nn_error(), "nothing.idx"), "message: %s", nn_error());
    }
}

/* ---- Preprocessing ---------------------------------------------------------------- */

/* A data set of n samples of the given shape, x[i] = values[i], labels i % 3. */
static nn_dataset make_dataset(int n, nn_shape shape, const float *values)
{
    nn_dataset d;
    size_t count = (size_t)n * nn_shape_size(shape);
    int i;
    memset(&d, 0, sizeof d);
    d.n = n;
    d.shape = shape;
    d.num_classes = 3;
    d.x = (float *)nn__calloc(count, sizeof(float));
    d.y = (int *)nn__calloc((size_t)n, sizeof(int));
    d.owns_data = 1;   /* nn.h's allocator: nn_dataset_free frees them */
    if (values) memcpy(d.x, values, count * sizeof(float));
    for (i = 0; i < n; i++) d.y[i] = i % 3;
    return d;
}

static void test_mean_image_and_subtract(void)
{
    /* 3 samples of shape (1, 1, 2). */
    static const float values[6] = { 1, 10, 2, 20, 6, 60 };
    nn_dataset d = make_dataset(3, nn_shape3(1, 1, 2), values), empty;
    float mean[2];
    CHECK(nn_mean_image(&d, mean) == NN_OK, "%s", nn_error());
    CHECK_NEAR(mean[0], 3.0, 1e-7);
    CHECK_NEAR(mean[1], 30.0, 1e-7);
    nn_subtract_image(&d, mean);
    CHECK_NEAR(d.x[0], -2.0, 1e-7);
    CHECK_NEAR(d.x[3], -10.0, 1e-7);
    CHECK_NEAR(d.x[4], 3.0, 1e-7);
    CHECK_NEAR(d.x[5], 30.0, 1e-7);
    nn_dataset_free(&d);
    memset(&empty, 0, sizeof empty);
    CHECK(nn_mean_image(&empty, mean) == NN_ERR_ARG, "empty data set accepted");
}

/* The mean of many equal large values must come out exact (sums in double). */
static void test_mean_image_is_accurate(void)
{
    int n = 100000, i;
    nn_dataset d = make_dataset(n, nn_shape3(1, 1, 1), NULL);
    float mean;
    for (i = 0; i < n; i++) d.x[i] = i % 2 ? 255.0f : 254.0f;
    CHECK(nn_mean_image(&d, &mean) == NN_OK, "%s", nn_error());
    CHECK(mean == 254.5f, "mean %.9g", mean);
    nn_dataset_free(&d);
}

static void test_channel_stats_and_normalize(void)
{
    /* 2 samples of shape (2, 1, 2): channel 0 holds 1,3,5,7; channel 1 holds 10 x4. */
    static const float values[8] = { 1, 3, 10, 10, 5, 7, 10, 10 };
    nn_dataset d = make_dataset(2, nn_shape3(2, 1, 2), values);
    float mean[2], std[2], after_mean[2], after_std[2];
    nn_channel_stats(&d, mean, std);
    CHECK_NEAR(mean[0], 4.0, 1e-7);
    CHECK_NEAR(std[0], sqrt(5.0), 1e-7);   /* population: (9+1+1+9)/4 */
    CHECK_NEAR(mean[1], 10.0, 1e-7);
    CHECK_NEAR(std[1], 0.0, 1e-7);
    nn_normalize_channels(&d, mean, std);
    CHECK_NEAR(d.x[0], -3.0 / sqrt(5.0), 1e-6);
    CHECK_NEAR(d.x[5], 3.0 / sqrt(5.0), 1e-6);
    CHECK(d.x[2] == 0.0f && d.x[7] == 0.0f, "constant channel: %g %g", d.x[2], d.x[7]);
    nn_channel_stats(&d, after_mean, after_std);
    CHECK_NEAR(after_mean[0], 0.0, 1e-6);
    CHECK_NEAR(after_std[0], 1.0, 1e-6);
    nn_scale_pixels(&d, -2.0f);
    CHECK_NEAR(d.x[0], 6.0 / sqrt(5.0), 1e-6);
    nn_dataset_free(&d);
}

/* ---- Batcher ---------------------------------------------------------------------- */

/* Sample i has x = (i, -i) and label i % 3. */
static nn_dataset make_indexed(int n)
{
    nn_dataset d = make_dataset(n, nn_shape3(2, 1, 1), NULL);
    int i;
    for (i = 0; i < n; i++) {
        d.x[2 * i] = (float)i;
        d.x[2 * i + 1] = (float)-i;
    }
    return d;
}

/* Draws `count` samples in batches of `batch` and records their indices. */
static void draw(nn_dataset *d, int count, int batch, int *indices)
{
    float x[2 * 64];
    int y[64], done = 0, i;
    while (done < count) {
        int n = count - done < batch ? count - done : batch;
        nn_next_batch(d, n, x, y);
        for (i = 0; i < n; i++) {
            indices[done + i] = (int)x[2 * i];
            CHECK(x[2 * i + 1] == -x[2 * i] && y[i] == indices[done + i] % 3,
                  "sample %d: x (%g, %g), y %d", done + i, x[2 * i], x[2 * i + 1], y[i]);
        }
        done += n;
    }
}

static void test_batcher_epochs(void)
{
    enum { N = 50 };
    nn_dataset d = make_indexed(N);
    int seen[3][N], e, i, in_order = 1, same_as_previous = 1;
    CHECK(nn_batch_start(&d, 7) == NN_OK, "%s", nn_error());
    /* Batches of 10 divide 50: three whole epochs. */
    for (e = 0; e < 3; e++) {
        int count[N] = { 0 };
        CHECK(d.epoch == e && d.cursor == 0, "epoch %d: state %d/%d", e, d.epoch, d.cursor);
        draw(&d, N, 10, seen[e]);
        for (i = 0; i < N; i++) count[seen[e][i]]++;
        for (i = 0; i < N; i++) CHECK(count[i] == 1, "epoch %d: sample %d seen %d times", e, i, count[i]);
    }
    CHECK(d.epoch == 3, "epoch %d after three", d.epoch);
    for (i = 0; i < N; i++) in_order &= seen[0][i] == i;
    for (i = 0; i < N; i++) same_as_previous &= seen[1][i] == seen[0][i];
    CHECK(!in_order, "the first epoch is not shuffled");
    CHECK(!same_as_previous, "the second epoch repeats the first order");
    nn_dataset_free(&d);
}

static void test_batcher_is_reproducible(void)
{
    enum { N = 37, DRAWN = 200 };
    nn_dataset a = make_indexed(N), b = make_indexed(N);
    int sa[DRAWN], sb[DRAWN], sc[DRAWN], same = 1, differs = 0, i;
    nn_batch_start(&a, 123);
    nn_batch_start(&b, 123);
    draw(&a, DRAWN, 16, sa);
    draw(&b, DRAWN, 64, sb);   /* different batch sizes, same stream of samples */
    for (i = 0; i < DRAWN; i++) same &= sa[i] == sb[i];
    CHECK(same, "same seed, different sequence");
    nn_batch_start(&b, 124);
    draw(&b, DRAWN, 16, sc);
    for (i = 0; i < DRAWN; i++) differs |= sa[i] != sc[i];
    CHECK(differs, "seeds 123 and 124 gave the same sequence");
    /* Restarting with the same seed replays the sequence. */
    nn_batch_start(&a, 123);
    draw(&a, DRAWN, 5, sc);
    for (i = 0; i < DRAWN; i++) CHECK(sc[i] == sa[i], "replay differs at %d", i);
    nn_dataset_free(&a);
    nn_dataset_free(&b);
}

static void test_batcher_straddles_epochs(void)
{
    enum { N = 7 };
    nn_dataset d = make_indexed(N);
    int first[N + 3], count[N] = { 0 }, i;
    float x[2 * 5];
    int y[5];
    nn_batch_start(&d, 1);
    draw(&d, 5, 5, first);
    CHECK(d.epoch == 0 && d.cursor == 5, "state %d/%d", d.epoch, d.cursor);
    nn_next_batch(&d, 5, x, y);   /* 2 from epoch 0, 3 from epoch 1 */
    CHECK(d.epoch == 1 && d.cursor == 3, "state %d/%d", d.epoch, d.cursor);
    for (i = 0; i < 2; i++) first[5 + i] = (int)x[2 * i];
    for (i = 0; i < N; i++) count[first[i]]++;
    for (i = 0; i < N; i++) CHECK(count[i] == 1, "epoch 0: sample %d seen %d times", i, count[i]);
    /* A batch larger than the data set wraps more than once. */
    {
        float big[2 * 64];
        int labels[64];
        nn_next_batch(&d, 18, big, labels);
        CHECK(d.epoch == 4 && d.cursor == 0, "state %d/%d", d.epoch, d.cursor);
    }
    nn_dataset_free(&d);
}

static void test_batcher_without_start_walks_in_order(void)
{
    nn_dataset d = make_indexed(4);
    int seen[10], i;
    draw(&d, 10, 3, seen);
    for (i = 0; i < 10; i++) CHECK(seen[i] == i % 4, "position %d: sample %d", i, seen[i]);
    CHECK(d.order == NULL && d.epoch == 2 && d.cursor == 2, "state %d/%d", d.epoch, d.cursor);
    nn_dataset_free(&d);
    CHECK(nn_batch_start(&d, 0) == NN_ERR_ARG, "empty data set accepted");
}

/* ---- The image packer (tools/pack_images) ----------------------------------------- */

/* A 24-bit BMP of one colour. */
static void write_bmp(const char *path, int w, int h, int r, int g, int b)
{
    int row = (3 * w + 3) / 4 * 4, x, y;
    size_t size = 54 + (size_t)row * h;
    unsigned char *buf = (unsigned char *)calloc(size, 1);
    static const int le_fields[][2] = { { 2, 4 }, { 10, 4 }, { 14, 4 }, { 18, 4 }, { 22, 4 },
                                        { 26, 2 }, { 28, 2 } };
    long values[7];
    values[0] = (long)size; values[1] = 54; values[2] = 40; values[3] = w; values[4] = h;
    values[5] = 1; values[6] = 24;
    buf[0] = 'B'; buf[1] = 'M';
    for (x = 0; x < 7; x++) {
        int k;
        for (k = 0; k < le_fields[x][1]; k++)
            buf[le_fields[x][0] + k] = (unsigned char)(values[x] >> (8 * k));
    }
    for (y = 0; y < h; y++)
        for (x = 0; x < w; x++) {
            unsigned char *p = buf + 54 + (size_t)y * row + 3 * x;
            p[0] = (unsigned char)b; p[1] = (unsigned char)g; p[2] = (unsigned char)r;
        }
    write_bytes(path, buf, size);
    free(buf);
}

/* A binary PGM (grayscale) of one value. */
static void write_pgm(const char *path, int w, int h, int value)
{
    char header[64];
    int len = snprintf(header, sizeof header, "P5\n%d %d\n255\n", w, h);
    unsigned char *buf = (unsigned char *)malloc((size_t)len + (size_t)w * h);
    memcpy(buf, header, (size_t)len);
    memset(buf + len, value, (size_t)w * h);
    write_bytes(path, buf, (size_t)len + (size_t)w * h);
    free(buf);
}

/* Runs the packer with stdout and stderr sent to log; returns its exit status. */
static int run_packer(const char *packer, const char *seed, const char *root,
                      const char *out, const char *log)
{
    int status;
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0) _exit(127);
        if (seed) execl(packer, packer, "--seed", seed, root, out, (char *)NULL);
        else execl(packer, packer, root, out, (char *)NULL);
        _exit(127);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
    return WEXITSTATUS(status);
}

static char *read_text(const char *path)
{
    static char text[4096];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[n] = '\0';
    return text;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int ca, cb, same = fa && fb;
    while (same && (ca = getc(fa), cb = getc(fb), ca == cb) && ca != EOF) {}
    if (same) same = ca == cb;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static const char *packer_path(void)
{
    const char *env = getenv("NN_PACK_IMAGES");
    const char *path = env && *env ? env : "build/pack_images";
    return access(path, X_OK) == 0 ? path : NULL;
}

static void test_packer(void)
{
    const char *packer = packer_path();
    const char *dirs[] = { "img", "img/train", "img/test", "img/train/cat", "img/train/ant",
                           "img/test/ant", "img/test/cat" };
    const char *paths[5];
    char name[64];
    nn_dataset train, test;
    int i, b, labels[2] = { 0, 0 }, found_resized = 0, found_gray = 0;
    for (i = 0; i < (int)(sizeof dirs / sizeof dirs[0]); i++) mkdir(tmp_path(dirs[i]), 0700);
    /* Class "ant" sorts first: label 0. */
    write_bmp(tmp_path("img/train/ant/b.bmp"), 32, 32, 10, 20, 30);
    write_pgm(tmp_path("img/train/ant/a.pgm"), 32, 32, 77);
    write_bmp(tmp_path("img/train/ant/c.bmp"), 40, 20, 200, 100, 50);
    write_bmp(tmp_path("img/train/cat/x.bmp"), 32, 32, 1, 2, 3);
    write_bmp(tmp_path("img/train/cat/y.bmp"), 32, 32, 4, 5, 6);
    write_bmp(tmp_path("img/train/cat/z.bmp"), 32, 32, 7, 8, 9);
    write_bmp(tmp_path("img/test/cat/q.bmp"), 32, 32, 90, 91, 92);
    write_bmp(tmp_path("img/test/ant/p.bmp"), 32, 32, 80, 81, 82);

    CHECK(run_packer(packer, NULL, tmp_path("img"), tmp_path("out"), tmp_path("log")) == 0,
          "packer failed: %s", read_text(tmp_path("log")));
    CHECK(contains(read_text(tmp_path("log")), "ant"), "no per-class counts: %s",
          read_text(tmp_path("log")));
    CHECK(strcmp(read_text(tmp_path("out/batches.meta.txt")), "ant\ncat\n") == 0,
          "meta: %s", read_text(tmp_path("out/batches.meta.txt")));
    for (b = 0; b < 5; b++) {
        snprintf(name, sizeof name, "out/data_batch_%d.bin", b + 1);
        paths[b] = tmp_path(name);
    }
    CHECK(nn_cifar10_load_files(paths, 5, &train) == NN_OK, "%s", nn_error());
    CHECK(train.n == 6, "train n = %d", train.n);
    for (i = 0; i < train.n; i++) {
        const float *x = train.x + (size_t)i * 3072;
        labels[train.y[i]]++;
        if (x[0] == 77.0f) {   /* grayscale: R = G = B everywhere */
            found_gray = x[1024] == 77.0f && x[2048 + 1023] == 77.0f;
            CHECK(train.y[i] == 0, "grayscale image label %d", train.y[i]);
        }
        if (fabsf(x[0] - 200.0f) <= 1.0f) {   /* the 40x20 image, resized */
            found_resized = fabsf(x[1023] - 200.0f) <= 1.0f && fabsf(x[1024 + 500] - 100.0f) <= 1.0f
                            && fabsf(x[2048 + 31 * 32] - 50.0f) <= 1.0f;
        }
    }
    CHECK(labels[0] == 3 && labels[1] == 3, "label counts %d %d", labels[0], labels[1]);
    CHECK(found_gray, "grayscale image not found as R = G = B = 77");
    CHECK(found_resized, "resized 40x20 image not found");
    nn_dataset_free(&train);
    paths[0] = tmp_path("out/test_batch.bin");
    CHECK(nn_cifar10_load_files(paths, 1, &test) == NN_OK, "%s", nn_error());
    CHECK(test.n == 2 && test.y[0] == 0 && test.y[1] == 1 && test.x[0] == 80.0f
          && test.x[2048] == 82.0f && test.x[3072] == 90.0f, "test records out of class order");
    nn_dataset_free(&test);

    /* The order is fixed by the seed. */
    CHECK(run_packer(packer, "42", tmp_path("img"), tmp_path("out2"), tmp_path("log")) == 0,
          "packer failed: %s", read_text(tmp_path("log")));
    for (b = 1; b <= 5; b++) {
        char other[64];
        snprintf(name, sizeof name, "out/data_batch_%d.bin", b);
        snprintf(other, sizeof other, "out2/data_batch_%d.bin", b);
        CHECK(same_file(tmp_path(name), tmp_path(other)), "seed 42 is not the default order");
    }

    /* A corrupt image: exit 1, the path named, nothing written. */
    write_bytes(tmp_path("img/train/cat/w.jpg"), "\xff\xd8\xff\xe0 not a jpeg", 15);
    CHECK(run_packer(packer, NULL, tmp_path("img"), tmp_path("out3"), tmp_path("log")) == 1,
          "corrupt image: wrong exit status");
    CHECK(contains(read_text(tmp_path("log")), tmp_path("img/train/cat/w.jpg")),
          "message: %s", read_text(tmp_path("log")));
    CHECK(access(tmp_path("out3/data_batch_1.bin"), F_OK) != 0
          && access(tmp_path("out3/data_batch_1.bin.tmp"), F_OK) != 0
          && access(tmp_path("out3/test_batch.bin"), F_OK) != 0, "partial output left behind");
    CHECK(run_packer(packer, "x", tmp_path("img"), tmp_path("out3"), tmp_path("log")) == 2,
          "bad usage: wrong exit status");
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st; (void)type; (void)ftw;
    return remove(path);
}

int main(void)
{
    const char *packer;
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_cifar_reads_known_records);
    RUN(test_cifar_concatenates_files);
    RUN(test_cifar_rejects_bad_sizes);
    RUN(test_cifar_rejects_bad_label);
    RUN(test_cifar_missing_file);
    RUN(test_cifar_load_directory);
    RUN(test_idx_reads_known_values);
    RUN(test_idx_rejects_bad_files);
    RUN(test_mean_image_and_subtract);
    RUN(test_mean_image_is_accurate);
    RUN(test_channel_stats_and_normalize);
    RUN(test_batcher_epochs);
    RUN(test_batcher_is_reproducible);
    RUN(test_batcher_straddles_epochs);
    RUN(test_batcher_without_start_walks_in_order);
    packer = packer_path();
    if (packer) RUN(test_packer);
    else printf("SKIP test_packer: build/pack_images not found (make tools, or set NN_PACK_IMAGES)\n");
    nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return test_end("test_data");
}
