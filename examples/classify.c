/* classify.c - a saved model names the classes of your images.

   Build:  cc -O2 -I. -I/usr/include/stb examples/classify.c -o classify -lm -lpthread
   Run:    ./classify results/mlp.safetensors cat.jpg truck.png
           ./classify --cifar data/cifar-10-batches-bin/test_batch.bin results/mlp.safetensors
           ./classify results/fashion_mlp_relu.safetensors shoe.png
           ./classify --idx data/fashion-mnist/t10k-images-idx3-ubyte \
                      --labels data/fashion-mnist/t10k-labels-idx1-ubyte results/fashion_mlp_relu.safetensors

   The model file is all it needs: nn_load rebuilds the net from the file's metadata,
   which also holds the input shape, the preprocessing and the class names. Each image
   (any size, any format stb_image reads) is converted to the channels the model takes
   (grey for a 1-channel model such as E5's Fashion-MNIST MLP, RGB for CIFAR-10's),
   resized to its input size, preprocessed as in training and run through the net in
   evaluation mode; one line per image gives the top classes with their softmax
   probabilities:
       cat.jpg: cat 0.612, dog 0.201, frog 0.050

   --cifar FILE classifies the records of a CIFAR-10 binary batch file instead (named
   FILE[i]) and ends with the accuracy over them: the batch evaluation that
   tests/classify_check.sh compares with images written out as PNG and read back.
   --idx IMAGES --labels LABELS does the same with a pair of IDX files (Fashion-MNIST,
   MNIST) for a model of their image size.

   An image that cannot be read is reported on stderr and skipped; the others are still
   classified. Exit status: 0 all classified, 1 the model or some input could not be
   read, 2 bad usage. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime in common.h */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "common.h"
#include "image.h"

static void help(void)
{
    printf("usage: classify [flags] MODEL.safetensors IMAGE...\n"
           "       classify [flags] --cifar FILE MODEL.safetensors\n"
           "       classify [flags] --idx IMAGES --labels LABELS MODEL.safetensors\n"
           "  --top K        classes shown per image (3)\n"
           "  --batch N      images run through the net together (16)\n"
           "  --cifar FILE   classify the records of a CIFAR-10 binary batch file and\n"
           "                 print the accuracy (the model must take 3 x 32 x 32 inputs)\n"
           "  --idx FILE     classify the images of an IDX file (Fashion-MNIST) and print\n"
           "                 the accuracy; --labels FILE gives their labels\n"
           "  --labels FILE  the IDX labels file that goes with --idx\n"
           "  --count N      with --cifar or --idx: the first N records only (all)\n"
           "  --threads N    (0: all cores)\n");
}

/* Runs the n samples of pixels through the net and prints a line for each. */
static void run_batch(nn_net *net, float *pixels, float *x, int n, char **names, int top,
                      const int *labels, long *correct)
{
    int classes = (int)nn_shape_size(nn_output_shape(net)), i;
    const float *logits;
    if (!n) return;
    nn_preprocess(net, pixels, x, n);
    logits = nn_forward(net, x, n);
    for (i = 0; i < n; i++) {
        image_print_top(net, names[i], logits + (size_t)i * classes, classes, top);
        if (labels) *correct += nn_argmax(logits + (size_t)i * classes, classes) == labels[i];
    }
}

/* --cifar, --idx: the first count records of d (all if count < 0), batch by batch, named
   FILE[i]; then the accuracy. names has room for batch pointers. */
static int classify_records(nn_net *net, const nn_dataset *d, const char *file, long count, int batch,
                          int top, float *pixels, float *x, char **names)
{
    size_t size = nn_shape_size(d->shape);
    long correct = 0;
    int i, k, n, status = 0;
    if (count < 0 || count > d->n) count = d->n;
    for (k = 0; k < batch; k++)
        if (!(names[k] = (char *)malloc(strlen(file) + 16))) status = 1;
    for (i = 0; i < count && !status; i += n) {
        n = count - i < batch ? (int)count - i : batch;
        for (k = 0; k < n; k++) sprintf(names[k], "%s[%d]", file, i + k);
        memcpy(pixels, d->x + (size_t)i * size, (size_t)n * size * sizeof(float));
        run_batch(net, pixels, x, n, names, top, d->y + i, &correct);
    }
    if (status) fprintf(stderr, "classify: out of memory\n");
    else printf("accuracy %.4f (%ld of %ld)\n", (double)correct / (double)count, correct, count);
    for (k = 0; k < batch; k++) free(names[k]);
    return status;
}

int main(int argc, char **argv)
{
    const char *program = "classify", *cifar = NULL, *idx = NULL, *labels = NULL, *why;
    int top = 3, batch = 16, threads = 0, i, n = 0, status = 0, first_image = 0;
    long count = -1;
    char **names;
    float *pixels, *x;
    size_t size;
    nn_shape in;
    nn_net *net;

    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { help(); return 0; }
        if (!strcmp(flag, "--")) { i++; break; }
        if (strncmp(flag, "--", 2)) break;   /* the model, then the images */
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "top")) top = (int)flag_long(program, flag, value, 1, 1000000);
        else if (!strcmp(flag, "batch")) batch = (int)flag_long(program, flag, value, 1, 65536);
        else if (!strcmp(flag, "cifar")) cifar = value;
        else if (!strcmp(flag, "idx")) idx = value;
        else if (!strcmp(flag, "labels")) labels = value;
        else if (!strcmp(flag, "count")) count = flag_long(program, flag, value, 1, 1000000000L);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 0, 256);
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    if (i >= argc) usage_error(program, "%s", "give a model file and images");
    if (cifar && idx) usage_error(program, "%s", "--cifar or --idx, not both");
    if (!idx != !labels) usage_error(program, "%s", "--idx and --labels go together");
    const char *records = cifar ? cifar : idx;
    if (!records && i + 1 >= argc) usage_error(program, "%s", "give at least one image after the model");
    if (records && i + 1 < argc) usage_error(program, "unexpected argument '%s' with --cifar or --idx", argv[i + 1]);
    if (count > 0 && !records) usage_error(program, "%s", "--count goes with --cifar or --idx");
    first_image = i + 1;
    nn_set_threads(threads);

    /* nn_load builds a trainable net; this program only predicts, so it drops the
       gradients and per-layer buffers (nn_inference_only). */
    if (!(net = nn_load(argv[i], batch)) || nn_inference_only(net) != NN_OK) {
        fprintf(stderr, "%s: %s\n", program, nn_error());
        nn_net_free(net);
        return 1;
    }
    if ((why = image_check_net(net))) {
        fprintf(stderr, "%s: %s: %s\n", program, argv[i], why);
        nn_net_free(net);
        return 1;
    }
    in = nn_input_shape(net);
    size = nn_shape_size(in);
    pixels = (float *)malloc((size_t)batch * size * sizeof(float));
    x = (float *)malloc((size_t)batch * size * sizeof(float));
    names = (char **)calloc((size_t)batch, sizeof(char *));
    if (!pixels || !x || !names) { fprintf(stderr, "%s: out of memory\n", program); status = 1; }
    else if (records) {
        nn_dataset d;
        if ((cifar ? nn_cifar10_load_files(&cifar, 1, &d) : nn_idx_load(idx, labels, &d)) != NN_OK) {
            fprintf(stderr, "%s: %s\n", program, nn_error());
            status = 1;
        } else if (d.shape.c != in.c || d.shape.h != in.h || d.shape.w != in.w) {
            fprintf(stderr, "%s: the model takes %d x %d x %d inputs; the records of %s are %d x %d x %d\n", program,
                    in.c, in.h, in.w, records, d.shape.c, d.shape.h, d.shape.w);
            status = 1;
        } else status = classify_records(net, &d, records, count, batch, top, pixels, x, names);
        nn_dataset_free(&d);
    } else {
        for (i = first_image; i < argc; i++) {
            if ((why = image_load(argv[i], in.c, in.h, in.w, pixels + (size_t)n * size))) {
                fprintf(stderr, "%s: %s\n", program, why);
                status = 1;
                continue;
            }
            names[n++] = argv[i];
            if (n == batch) { run_batch(net, pixels, x, n, names, top, NULL, NULL); n = 0; }
        }
        run_batch(net, pixels, x, n, names, top, NULL, NULL);
    }
    free(pixels); free(x); free(names);
    nn_net_free(net);
    return status;
}
