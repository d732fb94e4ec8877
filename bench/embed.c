/* Small-app inference of the VGG ConvNet (E3): latency at batch 1 and throughput at
   batch 32, the model's size, its accuracy. make bench-embed runs this and
   bench/embed_torch.py alternately (bench/embed.sh); by hand:

     build/bench_embed --save PATH [--data DIR]        a random model (nn_build's init)
     build/bench_embed --model PATH --mode M --batch B --threads T [--iters N] [--data DIR]
     build/bench_embed --model PATH --mode M --size
     build/bench_embed --model PATH --mode M --accuracy DIR
     build/bench_embed --bandwidth                     a streaming read, 1 thread
     build/bench_embed --limit                         the batch-1 limit of the VGG ConvNet

   A mode turns the float32 net loaded from PATH into the net that runs (the table
   `modes` below; the calibration images are the first 500 of DIR/data_batch_1.bin,
   preprocessed as the model says). A mode not in the table prints
     bench nn <mode> unsupported
   and exits 3. The timing prints one line,
     bench nn <mode> vgg batch=<b> threads=<t> median=<images/s> best=<images/s> peak_rss_mb=<MB>
   --size prints "size nn <mode> bytes=<the model file's size>", --accuracy
   "accuracy nn <mode> top1=<fraction of the 10,000 test images>". --save writes a model
   with nn_build's random weights whose preprocessing is the mean image of the 500
   calibration images (so that both sides feed it the same inputs). --bandwidth reads a
   1 GiB buffer (far beyond the L3) five times and prints the best
     bandwidth read_gbs=<GB/s>
   --limit measures that and the GEMM's speed (nn_gemm of the VGG's 512 x 512 x 2304
   product, 1 thread, best of 20) and gives each Conv2d / Linear of the VGG ConvNet at
   batch 1 the time of the slower of its two bounds, FLOPs at the GEMM's speed and its
   weights read once from memory; it prints one line a layer and then
     limit vgg batch=1 gemm_gflops=<G> read_gbs=<B> compute_ms= memory_ms= limit_ms=<sum of the maxima> */
#define _POSIX_C_SOURCE 200809L
#define NN_IMPLEMENTATION
#include "nn.h"
#include "../examples/common.h"
#include "../examples/models.h"
#include <sys/resource.h>

#define CALIBRATION_IMAGES 500

typedef struct embed_mode {
    const char *name;
    /* The net to run, made from the loaded float32 net (which it may return, changed,
       or free); NULL with nn_error() set on failure. */
    nn_net *(*prepare)(nn_net *net, const nn_dataset *calibration);
    int needs_calibration;
} embed_mode;

static nn_net *prepare_fp32(nn_net *net, const nn_dataset *calibration)
{
    (void)calibration;
    return nn_inference_only(net) == NN_OK ? net : NULL;
}

/* nn_quantize on the calibration images; the float32 net is freed. */
static nn_net *prepare_int8(nn_net *net, const nn_dataset *calibration)
{
    nn_quantize_desc desc = {0};
    nn_net *q = nn_quantize(net, calibration, calibration->n, desc);
    nn_net_free(net);
    return q;
}

static const embed_mode modes[] = {
    {"fp32", prepare_fp32, 0},
    {"int8", prepare_int8, 1},
};

static double gemm_gflops(void)
{
    int m = 512, n = 512, k = 2304, r;
    float *a = (float *)calloc((size_t)m * k, sizeof(float)), *b = (float *)calloc((size_t)k * n, sizeof(float));
    float *c = (float *)malloc((size_t)m * n * sizeof(float));
    double best = 0;
    if (!a || !b || !c) return 0;
    for (r = 0; r < 20; r++) {
        double t = now_seconds();
        nn_gemm(0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        t = now_seconds() - t;
        if (2.0 * m * n * k / t / 1e9 > best) best = 2.0 * m * n * k / t / 1e9;
    }
    free(a); free(b); free(c);
    return best;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double peak_rss_mb(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024.0;   /* Linux reports kilobytes */
}

/* The first `count` images of dir/data_batch_1.bin as raw pixels 0..255 (the set's
   own arrays, freed by the caller). */
static int read_calibration(const char *dir, int count, nn_dataset *d)
{
    char path[4096];
    unsigned char *rec = (unsigned char *)malloc((size_t)count * NN_CIFAR10_RECORD);
    FILE *f;
    int i, j;
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    memset(d, 0, sizeof *d);
    f = fopen(path, "rb");
    if (!rec || !f || fread(rec, NN_CIFAR10_RECORD, (size_t)count, f) != (size_t)count) {
        fprintf(stderr, "bench_embed: cannot read %d images from %s\n", count, path);
        if (f) fclose(f);
        free(rec);
        return 0;
    }
    fclose(f);
    d->n = count;
    d->shape = nn_shape3(3, 32, 32);
    d->num_classes = 10;
    d->x = (float *)malloc((size_t)count * 3072 * sizeof(float));
    d->y = (int *)malloc((size_t)count * sizeof(int));
    if (!d->x || !d->y) { free(rec); return 0; }
    for (i = 0; i < count; i++) {
        d->y[i] = rec[(size_t)i * NN_CIFAR10_RECORD];
        for (j = 0; j < 3072; j++) d->x[(size_t)i * 3072 + j] = rec[(size_t)i * NN_CIFAR10_RECORD + 1 + j];
    }
    free(rec);
    return 1;
}

static double bandwidth_gbs(void)
{
    size_t words = ((size_t)1 << 30) / sizeof(uint64_t), i;
    uint64_t *buf = (uint64_t *)malloc(words * sizeof(uint64_t)), s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    double best = 0;
    int r;
    if (!buf) return 0;
    for (i = 0; i < words; i++) buf[i] = i;   /* touch every page */
    for (r = 0; r < 5; r++) {
        double t = now_seconds();
        for (i = 0; i < words; i += 4) { s0 += buf[i]; s1 += buf[i + 1]; s2 += buf[i + 2]; s3 += buf[i + 3]; }
        t = now_seconds() - t;
        if (words * sizeof(uint64_t) / t / 1e9 > best) best = words * sizeof(uint64_t) / t / 1e9;
    }
    if (s0 + s1 + s2 + s3 == 42) printf("#");   /* keeps the sums */
    free(buf);
    return best;
}

int main(int argc, char **argv)
{
    const char *program = "bench_embed", *model = NULL, *mode_name = "fp32", *data = "data/cifar-10-batches-bin";
    const char *save = NULL, *accuracy = NULL;
    int batch = 1, threads = 1, iters = 0, size = 0, bandwidth = 0, limit = 0, i, s;
    const embed_mode *mode = NULL;
    nn_dataset calibration = {0};
    nn_net *net;
    double times[1000];
    float *x;
    nn_rng rng = nn_rng_new(7);

    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--size")) { size = 1; continue; }
        if (!strcmp(flag, "--bandwidth")) { bandwidth = 1; continue; }
        if (!strcmp(flag, "--limit")) { limit = 1; continue; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "model")) model = value;
        else if (!strcmp(flag, "mode")) mode_name = value;
        else if (!strcmp(flag, "data")) data = value;
        else if (!strcmp(flag, "save")) save = value;
        else if (!strcmp(flag, "accuracy")) accuracy = value;
        else if (!strcmp(flag, "batch")) batch = (int)flag_long(program, flag, value, 1, 4096);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 1, 256);
        else if (!strcmp(flag, "iters")) iters = (int)flag_long(program, flag, value, 1, 1000);
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    if (bandwidth) {
        printf("bandwidth read_gbs=%.1f\n", bandwidth_gbs());
        return 0;
    }
    nn_set_threads(threads);
    if (limit) {
        double g = gemm_gflops(), bw = bandwidth_gbs(), compute = 0, memory = 0, sum = 0;
        net = vgg_convnet(nn_shape3(3, 32, 32));
        if (!net || nn_build(net, 1, 7) != NN_OK) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
        for (i = 0; i < nn_num_layers(net); i++) {
            const nn_layer *L = nn_get_layer(net, i);
            double flops, bytes, tc, tm;
            if (!L->weight) continue;
            if (L->desc.kind != NN_CONV2D && L->desc.kind != NN_LINEAR) continue;
            bytes = 4.0 * L->weight->size;   /* every weight once, in float32 */
            flops = 2.0 * L->weight->size * L->out.h * L->out.w;
            tc = flops / g / 1e6; tm = bytes / bw / 1e6;
            printf("  layer %2d %-7s %4dx%2dx%2d MFLOP=%6.1f weights_mb=%5.2f compute_ms=%.3f memory_ms=%.3f\n", i,
                   nn_layer_name(L->desc.kind), L->out.c, L->out.h, L->out.w, flops / 1e6, bytes / 1e6, tc, tm);
            compute += tc; memory += tm; sum += tc > tm ? tc : tm;
        }
        printf("limit vgg batch=1 gemm_gflops=%.1f read_gbs=%.1f compute_ms=%.3f memory_ms=%.3f limit_ms=%.3f\n", g, bw,
               compute, memory, sum);
        nn_net_free(net);
        return 0;
    }
    if (save) {
        float mean[3072] = {0};
        int j;
        net = vgg_convnet(nn_shape3(3, 32, 32));
        if (!net || nn_build(net, 1, 7) != NN_OK) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
        if (!read_calibration(data, CALIBRATION_IMAGES, &calibration)) return 1;
        for (i = 0; i < CALIBRATION_IMAGES; i++)
            for (j = 0; j < 3072; j++) mean[j] += calibration.x[(size_t)i * 3072 + j] / CALIBRATION_IMAGES;
        if (nn_set_preprocess_mean_image(net, mean) != NN_OK || nn_save(net, save) != NN_OK) {
            fprintf(stderr, "%s: %s\n", program, nn_error());
            return 1;
        }
        return 0;
    }
    if (!model) usage_error(program, "%s needs --model (or --save / --bandwidth)", "");
    for (i = 0; i < (int)(sizeof modes / sizeof modes[0]); i++)
        if (!strcmp(modes[i].name, mode_name)) mode = &modes[i];
    if (!mode) { printf("bench nn %s unsupported\n", mode_name); return 3; }
    net = nn_load(model, accuracy ? 100 : batch);
    if (!net) { fprintf(stderr, "%s: %s: %s\n", program, model, nn_error()); return 1; }
    nn_set_training(net, 0);
    if (mode->needs_calibration) {
        if (!read_calibration(data, CALIBRATION_IMAGES, &calibration)
            || nn_preprocess(net, calibration.x, calibration.x, calibration.n) != NN_OK) {
            fprintf(stderr, "%s: calibration: %s\n", program, nn_error());
            return 1;
        }
    }
    net = mode->prepare(net, &calibration);
    free(calibration.x); free(calibration.y);
    if (!net) { fprintf(stderr, "%s: %s: %s\n", program, mode->name, nn_error()); return 1; }

    if (size) {
        unsigned char *bytes;
        size_t n;
        if (nn_save_memory(net, &bytes, &n) != NN_OK) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
        printf("size nn %s bytes=%lu\n", mode->name, (unsigned long)n);
        nn_free_buffer(bytes);
    } else if (accuracy) {
        nn_dataset test;
        int correct = 0, k, c;
        if (nn_cifar10_load(accuracy, NULL, &test) != NN_OK
            || nn_preprocess(net, test.x, test.x, test.n) != NN_OK) {
            fprintf(stderr, "%s: %s\n", program, nn_error());
            return 1;
        }
        for (i = 0; i < test.n; i += 100) {
            int n = test.n - i < 100 ? test.n - i : 100;
            const float *out = nn_forward(net, test.x + (size_t)i * 3072, n);
            if (!out) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
            for (k = 0; k < n; k++) {
                int best = 0;
                for (c = 1; c < 10; c++) if (out[k * 10 + c] > out[k * 10 + best]) best = c;
                correct += best == test.y[i + k];
            }
        }
        printf("accuracy nn %s top1=%.4f\n", mode->name, (double)correct / test.n);
        nn_dataset_free(&test);
    } else {
        if (!iters) iters = batch == 1 ? 100 : 15;
        x = (float *)malloc((size_t)batch * 3072 * sizeof(float));
        if (!x) { fprintf(stderr, "%s: out of memory\n", program); return 1; }
        for (i = 0; i < batch * 3072; i++) x[i] = nn_rng_normal(&rng, 0.0f, 50.0f);
        for (s = -3; s < iters; s++) {   /* three warm-up rounds */
            double t = now_seconds();
            if (!nn_forward(net, x, batch)) { fprintf(stderr, "%s: %s\n", program, nn_error()); return 1; }
            if (s >= 0) times[s] = now_seconds() - t;
        }
        qsort(times, (size_t)iters, sizeof(double), compare_doubles);
        printf("bench nn %s vgg batch=%d threads=%d median=%.1f best=%.1f peak_rss_mb=%.0f\n", mode->name, batch,
               threads, batch / times[iters / 2], batch / times[0], peak_rss_mb());
        free(x);
    }
    nn_net_free(net);
    return 0;
}
