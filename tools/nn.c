/* nn - the model tool: what a model file holds, a model run on .npy arrays, and
   PyTorch state_dicts of the architectures of examples/models.h converted to nn.h
   model files.

   Build:  make build/nn   (installed as bin/nn by `make install`)
   Usage:
     nn info MODEL
         the architecture (one layer per line: kind, options, parameter names, input ->
         output shape), the parameter count, the input shape, the preprocessing and
         the class names.
     nn run MODEL IN.npy OUT.npy [--batch N] [--threads T]
         IN: float32 N x C x H x W, the net's input already preprocessed (N x F for a
         net of F features); OUT: float32 N x outputs, the net's output in evaluation
         mode, computed --batch samples at a time (default 8: nn_load sizes the net's
         training buffers for that batch before nn_inference_only drops them, tens of
         megabytes a sample for the 224 x 224 nets).
     nn convert --arch NAME [--classes K] WEIGHTS.safetensors OUT.safetensors
         builds NAME of examples/models.h (`nn convert --help` lists them) for its
         input shape, loads a state_dict PyTorch saved as safetensors (strictly: a
         missing, extra or misshapen tensor is an error naming it) and saves an nn.h
         model file that nn_load, classify and embed take.
     nn import IN.onnx OUT.safetensors
         reads an ONNX model (docs/ONNX.md: the operators it maps to nn.h layers) and
         saves it as an nn.h model file; info and run also take .onnx models (by the
         extension, or by the first bytes).
     nn export MODEL OUT.onnx [--classes K]
         the net as an ONNX model (opset 13, dynamic batch; docs/ONNX.md): MODEL is an
         nn.h model file, or the name of an architecture of examples/models.h, built
         for its input with PyTorch's default initialisation (seed 0) and --classes
         outputs (10).
     nn quantize MODEL CIFAR_DIR OUT.safetensors [--count N]
         an int8 model of MODEL (nn_quantize): calibrated on the first N (default 500,
         at most 10000) images of CIFAR_DIR/data_batch_1.bin, preprocessed as MODEL
         says; OUT runs wherever MODEL did (nn run, classify, embed).
   Bad input gets a sentence on stderr and exit status 1; bad usage status 2. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "examples/models.h"
#define NPY_IMPLEMENTATION
#include "tools/npy.h"

#include <errno.h>
#include <stdlib.h>

static void usage(FILE *out)
{
    size_t i;
    fprintf(out, "usage: nn info MODEL.safetensors\n"
                 "       nn run MODEL.safetensors IN.npy OUT.npy [--batch N] [--threads T]\n"
                 "       nn convert --arch NAME [--classes K] WEIGHTS.safetensors OUT.safetensors\n"
                 "       nn import IN.onnx OUT.safetensors\n"
                 "       nn export MODEL OUT.onnx [--classes K]\n"
                 "       nn quantize MODEL.safetensors CIFAR_DIR OUT.safetensors [--count N]\n"
                 "       nn --help\n"
                 "  info      the layers with their shapes, the parameter count, the input shape,\n"
                 "            the preprocessing and the class names\n"
                 "  run       IN: float32 N x C x H x W (preprocessed input), OUT: float32 N x outputs\n"
                 "            (evaluation mode); --batch: samples per forward (8), --threads (0: all cores)\n"
                 "  convert   a PyTorch state_dict saved as safetensors, for the architecture NAME,\n"
                 "            to an nn.h model file; --classes: outputs of the classifier (10)\n"
                 "  import    an ONNX model to an nn.h model file (info and run take .onnx too)\n"
                 "  export    an nn.h model file, or an architecture NAME (untrained), as an ONNX\n"
                 "            model (opset 13, dynamic batch)\n"
                 "  quantize  an int8 model calibrated on the first N (500) images of data_batch_1.bin\n"
                 "architectures:\n");
    for (i = 0; i < sizeof model_archs / sizeof model_archs[0]; i++)
        fprintf(out, "  %-15s %d x %d x %d input%s; %s\n", model_archs[i].name, model_archs[i].input.c,
                model_archs[i].input.h, model_archs[i].input.w, model_archs[i].classes ? ", 10 classes" : "",
                model_archs[i].about);
}

static int fail(const char *what)
{
    fprintf(stderr, "nn: %s\n", what);
    return 1;
}

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "nn: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (nn --help)\n");
    return 2;
}

/* A whole decimal int in [lo, hi] into *v. */
static int parse_int(const char *s, int lo, int hi, int *v)
{
    char *end;
    long x;
    errno = 0;
    x = strtol(s, &end, 10);
    if (!*s || *end || errno || x < lo || x > hi) return 0;
    *v = (int)x;
    return 1;
}

/* ---- loading: nn.h model files and ONNX models ---- */

/* An ONNX model by its extension, or by its first bytes: field 1 (ir_version) of a
   ModelProto is 0x08, where a safetensors file has its header length and then '{'. */
static int is_onnx(const char *path)
{
    size_t len = strlen(path);
    unsigned char b[9] = { 0 };
    FILE *fp;
    if (len >= 5 && !strcmp(path + len - 5, ".onnx")) return 1;
    if (!(fp = fopen(path, "rb"))) return 0;
    len = fread(b, 1, sizeof b, fp);
    fclose(fp);
    return len == sizeof b && b[0] == 0x08 && b[8] != '{';
}

static nn_net *load_model(const char *path, int max_batch)
{
    return is_onnx(path) ? nn_load_onnx(path, max_batch) : nn_load(path, max_batch);
}

/* ---- info ---- */

static void print_shape(nn_shape s)
{
    if (s.h == 1 && s.w == 1) printf("%d", s.c);
    else printf("%dx%dx%d", s.c, s.h, s.w);
}

/* The options that differ from PyTorch's defaults, as PyTorch names them. */
static void print_options(const nn_layer *l)
{
    const nn_layer_desc *d = &l->desc;
    switch (d->kind) {
    case NN_LINEAR:
        printf(" out=%d%s", d->out, d->no_bias ? " bias=False" : "");
        break;
    case NN_CONV2D:
        printf(" out=%d kernel=%dx%d stride=%dx%d pad=%dx%d", d->out, d->kernel_h, d->kernel_w,
               d->stride_h ? d->stride_h : 1, d->stride_w ? d->stride_w : 1, d->pad_h, d->pad_w);
        if (d->dilation_h > 1 || d->dilation_w > 1) printf(" dilation=%dx%d", d->dilation_h, d->dilation_w);
        if (d->groups > 1) printf(" groups=%d", d->groups);
        if (d->no_bias) printf(" bias=False");
        break;
    case NN_MAXPOOL2D: case NN_AVGPOOL2D:
        printf(" kernel=%dx%d stride=%dx%d pad=%dx%d", d->kernel_h, d->kernel_w,
               d->stride_h ? d->stride_h : d->kernel_h, d->stride_w ? d->stride_w : d->kernel_w, d->pad_h, d->pad_w);
        if (d->ceil_mode) printf(" ceil_mode=True");
        if (d->exclude_pad) printf(" count_include_pad=False");
        break;
    case NN_BATCHNORM:
        if (d->eps != 0.0f) printf(" eps=%g", (double)d->eps);
        if (d->momentum != 0.0f) printf(" momentum=%g", (double)d->momentum);
        if (d->no_affine) printf(" affine=False");
        break;
    case NN_LEAKY_RELU: printf(" negative_slope=%g", (double)d->negative_slope); break;
    case NN_GELU: if (d->approximate) printf(" approximate=tanh"); break;
    case NN_SOFTPLUS:
        printf(" beta=%g threshold=%g", d->beta != 0.0f ? (double)d->beta : 1.0,
               d->threshold != 0.0f ? (double)d->threshold : 20.0);
        break;
    case NN_SCALE: printf(" factor=%g", (double)d->factor); break;
    case NN_DROPOUT: printf(" p=%g", (double)d->p); break;
    case NN_HARDTANH:
        printf(" min_val=%g max_val=%g", d->min_val == 0.0f && d->max_val == 0.0f ? -1.0 : (double)d->min_val,
               d->min_val == 0.0f && d->max_val == 0.0f ? 1.0 : (double)d->max_val);
        break;
    case NN_BLOCK_END: if (d->relu) printf(" relu"); break;
    default: break;
    }
}

static void print_param(const nn_param *p)
{
    int k;
    if (!p) return;
    printf(" %s(", p->name);
    for (k = 0; k < p->ndim; k++) printf(k ? "x%d" : "%d", p->shape[k]);
    printf(")");
}

static int cmd_info(int argc, char **argv)
{
    nn_net *net;
    nn_shape in, out;
    int i, outputs, named = 0;
    if (argc != 1) return bad_usage("info takes one model file%s", "");
    if (!(net = load_model(argv[0], 1))) return fail(nn_error());
    in = nn_get_layer(net, 0) ? nn_get_layer(net, 0)->in : nn_output_shape(net);
    out = nn_output_shape(net);
    outputs = (int)nn_shape_size(out);
    printf("%s: %d layers\n", argv[0], nn_num_layers(net));
    for (i = 0; i < nn_num_layers(net); i++) {
        const nn_layer *l = nn_get_layer(net, i);
        printf("%4d  %s", i, nn_layer_name(l->desc.kind));
        print_options(l);
        print_param(l->weight);
        print_param(l->bias);
        print_param(l->running_mean);
        print_param(l->running_var);
        printf("  ");
        print_shape(l->in);
        printf(" -> ");
        print_shape(l->out);
        printf("\n");
    }
    printf("parameters: %zu (%d tensors with the buffers)\n", nn_num_param_scalars(net), nn_num_param_tensors(net));
    printf("input: %d x %d x %d (float32, N x C x H x W)\n", in.c, in.h, in.w);
    printf("output: %d\n", outputs);
    switch (nn_get_preprocess(net)) {
    case NN_PREPROCESS_NONE: printf("preprocessing: none recorded (inputs as given)\n"); break;
    case NN_PREPROCESS_MEAN_IMAGE: printf("preprocessing: pixel * scale - mean image (per pixel)\n"); break;
    case NN_PREPROCESS_CHANNELS: {
        /* x = a pixel + b per channel, read off the preprocessing of pixels 0 and 1 */
        size_t size = nn_shape_size(in), plane = (size_t)in.h * in.w;
        float *px = (float *)malloc(2 * size * sizeof *px), *x = (float *)malloc(2 * size * sizeof *x);
        int c;
        if (!px || !x) { free(px); free(x); nn_net_free(net); return fail("out of memory"); }
        for (i = 0; i < (int)size; i++) { px[i] = 0.0f; px[size + i] = 1.0f; }
        nn_preprocess(net, px, x, 2);
        printf("preprocessing: per channel x = a * pixel + b (pixels 0..255):");
        for (c = 0; c < in.c; c++)
            printf(" (a=%g, b=%g)", (double)(x[size + c * plane] - x[c * plane]), (double)x[c * plane]);
        printf("\n");
        free(px);
        free(x);
        break;
    }
    }
    for (i = 0; i < outputs; i++) named += nn_class_name(net, i) != NULL;
    if (!named) printf("classes: %d, unnamed\n", outputs);
    else {
        printf("classes:");
        for (i = 0; i < outputs; i++) printf(" %s", nn_class_name(net, i) ? nn_class_name(net, i) : "?");
        printf("\n");
    }
    nn_net_free(net);
    return 0;
}

/* ---- run ---- */

static int cmd_run(int argc, char **argv)
{
    const char *paths[3];
    int npaths = 0, batch = 8, threads = 0, i, outputs, shape[2], status = 1;
    nn_net *net = NULL;
    npy_array x;
    nn_shape in;
    float *y = NULL;
    size_t per;
    memset(&x, 0, sizeof x);
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--batch") || !strcmp(argv[i], "--threads")) {
            int *v = argv[i][2] == 'b' ? &batch : &threads;
            if (i + 1 >= argc) return bad_usage("%s needs a value", argv[i]);
            if (!parse_int(argv[i + 1], v == &batch ? 1 : 0, v == &batch ? 1 << 20 : 64, v))
                return bad_usage(v == &batch ? "--batch %s: expected a count from 1" : "--threads %s: expected 0 to 64",
                                 argv[i + 1]);
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return bad_usage("unknown flag %s", argv[i]);
        } else if (npaths == 3) {
            return bad_usage("run takes MODEL IN.npy OUT.npy; %s is one too many", argv[i]);
        } else {
            paths[npaths++] = argv[i];
        }
    }
    if (npaths != 3) return bad_usage("run takes MODEL IN.npy OUT.npy%s", "");
    if (nn_set_threads(threads) != NN_OK) return fail(nn_error());
    if (npy_read(paths[1], &x) != 0) return fail(npy_error());
    if (x.shape[0] < batch) batch = x.shape[0];
    if (!(net = load_model(paths[0], batch)) || !nn_get_layer(net, 0)) { fail(nn_error()); goto done; }
    in = nn_get_layer(net, 0)->in;
    per = nn_shape_size(in);
    if (!((x.ndim == 4 && x.shape[1] == in.c && x.shape[2] == in.h && x.shape[3] == in.w) ||
          (x.ndim == 2 && in.h == 1 && in.w == 1 && x.shape[1] == in.c))) {
        fprintf(stderr, "nn: %s: shape (", paths[1]);
        for (i = 0; i < x.ndim; i++) fprintf(stderr, i ? ", %d" : "%d", x.shape[i]);
        if (in.h == 1 && in.w == 1) fprintf(stderr, ") does not fit the net's input: expected (N, %d)\n", in.c);
        else fprintf(stderr, ") does not fit the net's input: expected (N, %d, %d, %d)\n", in.c, in.h, in.w);
        goto done;
    }
    if (nn_set_training(net, 0) != NN_OK || nn_inference_only(net) != NN_OK) { fail(nn_error()); goto done; }
    outputs = (int)nn_shape_size(nn_output_shape(net));
    if (!(y = (float *)malloc((size_t)x.shape[0] * (size_t)outputs * sizeof *y))) { fail("out of memory"); goto done; }
    for (i = 0; i < x.shape[0]; i += batch) {
        int n = x.shape[0] - i < batch ? x.shape[0] - i : batch;
        const float *out = nn_forward(net, x.data + (size_t)i * per, n);
        if (!out) { fail(nn_error()); goto done; }
        memcpy(y + (size_t)i * outputs, out, (size_t)n * outputs * sizeof *y);
    }
    shape[0] = x.shape[0];
    shape[1] = outputs;
    if (npy_write(paths[2], y, 2, shape) != 0) { fail(npy_error()); goto done; }
    status = 0;
done:
    free(y);
    nn_net_free(net);
    npy_free(&x);
    return status;
}

/* ---- convert ---- */

static int cmd_convert(int argc, char **argv)
{
    const char *arch_name = NULL, *paths[2];
    const model_arch *arch;
    int npaths = 0, classes = 10, i;
    nn_net *net;
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--arch")) {
            if (i + 1 >= argc) return bad_usage("--arch needs a name%s", "");
            arch_name = argv[++i];
        } else if (!strcmp(argv[i], "--classes")) {
            if (i + 1 >= argc) return bad_usage("--classes needs a count%s", "");
            if (!parse_int(argv[i + 1], 1, 1 << 20, &classes))
                return bad_usage("--classes %s: expected a count from 1", argv[i + 1]);
            i++;
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return bad_usage("unknown flag %s", argv[i]);
        } else if (npaths == 2) {
            return bad_usage("convert takes WEIGHTS.safetensors OUT.safetensors; %s is one too many", argv[i]);
        } else {
            paths[npaths++] = argv[i];
        }
    }
    if (!arch_name) return bad_usage("convert needs --arch NAME%s", "");
    if (npaths != 2) return bad_usage("convert takes WEIGHTS.safetensors OUT.safetensors%s", "");
    if (!(arch = model_find(arch_name))) return bad_usage("unknown architecture '%s'", arch_name);
    if (arch->classes && classes != arch->classes) {
        fprintf(stderr, "nn: %s has %d classes, not %d\n", arch->name, arch->classes, classes);
        return 2;
    }
    if (!(net = arch->make(arch->input, classes))) return fail(nn_error());
    if (nn_build(net, 1, 0) != NN_OK || nn_load_weights(net, paths[0]) != NN_OK || nn_save(net, paths[1]) != NN_OK) {
        fail(nn_error());
        nn_net_free(net);
        return 1;
    }
    printf("%s: %s with %zu parameters -> %s\n", paths[0], arch->name, nn_num_param_scalars(net), paths[1]);
    nn_net_free(net);
    return 0;
}

/* ---- import ---- */

static int cmd_import(int argc, char **argv)
{
    nn_net *net;
    if (argc != 2) return bad_usage("import takes IN.onnx OUT.safetensors%s", "");
    if (!(net = nn_load_onnx(argv[0], 1))) return fail(nn_error());
    if (nn_save(net, argv[1]) != NN_OK) {
        fail(nn_error());
        nn_net_free(net);
        return 1;
    }
    printf("%s: %d layers, %zu parameters -> %s\n", argv[0], nn_num_layers(net), nn_num_param_scalars(net), argv[1]);
    nn_net_free(net);
    return 0;
}

/* ---- export ---- */

static int cmd_export(int argc, char **argv)
{
    const char *paths[2];
    const model_arch *arch;
    int npaths = 0, classes = 10, classes_set = 0, i;
    nn_net *net;
    FILE *fp;
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--classes")) {
            if (i + 1 >= argc) return bad_usage("--classes needs a count%s", "");
            if (!parse_int(argv[i + 1], 1, 1 << 20, &classes))
                return bad_usage("--classes %s: expected a count from 1", argv[i + 1]);
            classes_set = 1;
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return bad_usage("unknown flag %s", argv[i]);
        } else if (npaths == 2) {
            return bad_usage("export takes MODEL OUT.onnx; %s is one too many", argv[i]);
        } else {
            paths[npaths++] = argv[i];
        }
    }
    if (npaths != 2) return bad_usage("export takes MODEL OUT.onnx%s", "");
    /* a file of that name first, then an architecture */
    if ((fp = fopen(paths[0], "rb")) != NULL || !(arch = model_find(paths[0]))) {
        if (fp) fclose(fp);
        if (classes_set) return bad_usage("--classes is for an architecture; %s is a model file", paths[0]);
        if (!(net = nn_load(paths[0], 1))) return fail(nn_error());
    } else {
        if (arch->classes && classes != arch->classes) {
            fprintf(stderr, "nn: %s has %d classes, not %d\n", arch->name, arch->classes, classes);
            return 2;
        }
        if (!(net = arch->make(arch->input, classes))) return fail(nn_error());
        if (nn_build(net, 1, 0) != NN_OK) {
            fail(nn_error());
            nn_net_free(net);
            return 1;
        }
    }
    if (nn_save_onnx(net, paths[1]) != NN_OK) {
        fail(nn_error());
        nn_net_free(net);
        return 1;
    }
    printf("%s: %d layers, %zu parameters -> %s\n", paths[0], nn_num_layers(net), nn_num_param_scalars(net), paths[1]);
    nn_net_free(net);
    return 0;
}

/* ---- quantize ---- */

static int cmd_quantize(int argc, char **argv)
{
    const char *paths[3];
    char file[4096];
    const char *files[1];
    int npaths = 0, count = 500, i, status = 1;
    nn_net *net = NULL, *qn = NULL;
    nn_dataset raw, cal;
    nn_quantize_desc qd = {0};
    memset(&raw, 0, sizeof raw);
    memset(&cal, 0, sizeof cal);
    for (i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--count")) {
            if (i + 1 >= argc || !parse_int(argv[i + 1], 1, 10000, &count))
                return bad_usage("--count %s: expected 1 to 10000 images", i + 1 < argc ? argv[i + 1] : "");
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return bad_usage("unknown flag %s", argv[i]);
        } else if (npaths == 3) {
            return bad_usage("quantize takes MODEL CIFAR_DIR OUT; %s is one too many", argv[i]);
        } else {
            paths[npaths++] = argv[i];
        }
    }
    if (npaths != 3) return bad_usage("quantize takes MODEL CIFAR_DIR OUT.safetensors%s", "");
    snprintf(file, sizeof file, "%s/data_batch_1.bin", paths[1]);
    files[0] = file;
    if (!(net = nn_load(paths[0], 64)) || nn_cifar10_load_files(files, 1, &raw) != NN_OK) { fail(nn_error()); goto done; }
    if (nn_shape_size(raw.shape) != nn_shape_size(nn_get_layer(net, 0)->in)) {
        fprintf(stderr, "nn: %s does not take 3 x 32 x 32 images\n", paths[0]);
        goto done;
    }
    cal = raw;
    cal.owns_data = 0;
    cal.order = NULL;
    cal.n = count < raw.n ? count : raw.n;
    if (nn_get_preprocess(net) != NN_PREPROCESS_NONE &&
        nn_preprocess(net, raw.x, raw.x, cal.n) != NN_OK) { fail(nn_error()); goto done; }
    if (!(qn = nn_quantize(net, &cal, cal.n, qd)) || nn_save(qn, paths[2]) != NN_OK) { fail(nn_error()); goto done; }
    printf("%s: int8, calibrated on %d images of %s -> %s\n", paths[0], cal.n, file, paths[2]);
    status = 0;
done:
    nn_net_free(qn);
    nn_net_free(net);
    nn_dataset_free(&raw);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "convert")) return cmd_convert(argc - 2, argv + 2);
    if (!strcmp(argv[1], "import")) return cmd_import(argc - 2, argv + 2);
    if (!strcmp(argv[1], "export")) return cmd_export(argc - 2, argv + 2);
    if (!strcmp(argv[1], "quantize")) return cmd_quantize(argc - 2, argv + 2);
    return bad_usage("unknown command '%s'", argv[1]);
}
