/* nn.h - neural networks in one C header: tensors, a fast GEMM, layers with their
   backward passes, optimisers, CIFAR-10 / IDX data and safetensors model files.

   Do this:
       #define NN_IMPLEMENTATION
   before you include this file in *one* C or C++ file to create the implementation.
   Every other file includes "nn.h" without the define and sees only the declarations.

   ---------------------------------------------------------------------------------
   1. QUICK START
   ---------------------------------------------------------------------------------

       #define NN_IMPLEMENTATION
       #include "nn.h"

       nn_net *net = nn_net_new(nn_shape3(3, 32, 32));
       nn_add(net, nn_flatten());
       nn_add(net, nn_linear(100));  nn_add(net, nn_leaky_relu(0.02f));
       nn_add(net, nn_linear(10));
       if (nn_build(net, 200, 42) != NN_OK) { fprintf(stderr, "%s\n", nn_error()); return 1; }
       nn_optim *opt = nn_sgd(net, (nn_sgd_desc){ .lr = 0.002f });
       nn_dataset train, test;
       if (nn_cifar10_load("data/cifar-10-batches-bin", &train, &test) != NN_OK) ...
       nn_batch_start(&train, 42);
       for (int step = 0; step < 1500; step++) {
           nn_next_batch(&train, 200, x, y);
           float loss = nn_train_step(net, opt, x, y, 200);
       }

   Build with one command: `cc -O2 my_program.c -lm -lpthread`.
   No -march flag is needed: the AVX2+FMA kernels are chosen at run time.

   ---------------------------------------------------------------------------------
   2. CONFIGURATION MACROS (define before including)
   ---------------------------------------------------------------------------------

       NN_IMPLEMENTATION   compile the implementation in this translation unit
       NN_STATIC           make every function static (private to one file)
       NN_MALLOC(size)     allocator (default malloc); define NN_FREE(p) with it
       NN_FREE(p)          deallocator (default free)
       NN_ASSERT(cond)     checks of the library's own invariants (default assert);
                           never used on anything a user or a file can get wrong
       NN_NO_SIMD          use only the portable scalar kernels (the test reference)
       NN_NO_THREADS       no thread pool; everything runs on the calling thread
       NN_NO_STDIO         no file I/O (for embedded inference from memory)

   ---------------------------------------------------------------------------------
   3. ERRORS
   ---------------------------------------------------------------------------------

   Functions that can fail return an nn_status (NN_OK is 0) or NULL. nn_error() then
   returns a sentence that names the problem, e.g.
       "data/test_batch.bin: size 30000 is not a multiple of the 3073-byte record".
   The library never calls exit() or abort() on bad input.

   ---------------------------------------------------------------------------------
   4. VERSION HISTORY
   ---------------------------------------------------------------------------------

       0.1.0  first release: tensors, GEMM, layers, optimisers, CIFAR-10, IDX

   License: MIT or public domain, your choice; see the end of this file.
*/
#ifndef NN_H
#define NN_H

#define NN_VERSION_MAJOR 0
#define NN_VERSION_MINOR 1
#define NN_VERSION_PATCH 0

#include <stddef.h>
#include <stdint.h>

#ifdef NN_STATIC
#define NNDEF static
#else
#define NNDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* =================================================================================
   PUBLIC API
   ================================================================================= */

/* ---- Errors --------------------------------------------------------------------- */

typedef enum nn_status {
    NN_OK = 0,
    NN_ERR_ARG,       /* a bad argument: wrong shape, out-of-range value, NULL */
    NN_ERR_NOMEM,     /* an allocation failed or a size overflowed */
    NN_ERR_IO,        /* a file could not be opened, read or written */
    NN_ERR_FORMAT,    /* a file is damaged or not of the expected format */
    NN_ERR_NUMERIC,   /* a value stopped being finite (NaN or infinity) */
    NN_ERR_STATE      /* a call out of order, e.g. a net used before nn_build */
} nn_status;

NNDEF const char *nn_error(void);                 /* the last error, as a sentence */
NNDEF const char *nn_status_name(nn_status s);   /* "NN_ERR_IO", ... */

/* ---- Random numbers --------------------------------------------------------------
   PCG32: the same sequence of integers and uniforms on every platform for a seed. */

typedef struct nn_rng { uint64_t state, inc; } nn_rng;

NNDEF nn_rng   nn_rng_new(uint64_t seed);
NNDEF uint32_t nn_rng_u32(nn_rng *r);
NNDEF uint32_t nn_rng_below(nn_rng *r, uint32_t n);     /* uniform in [0, n), unbiased */
NNDEF float    nn_rng_uniform(nn_rng *r);                /* uniform in [0, 1) */
NNDEF float    nn_rng_normal(nn_rng *r, float mean, float std);
NNDEF void     nn_rng_shuffle(nn_rng *r, int *items, int n);   /* Fisher-Yates */

/* ---- Tensors ---------------------------------------------------------------------
   A float32 array of up to 4 dimensions, row-major (NCHW for images). */

#define NN_MAX_DIMS 4

typedef struct nn_tensor {
    float *data;
    int    ndim;
    int    shape[NN_MAX_DIMS];
    size_t size;                 /* number of elements */
} nn_tensor;

/* The shape of one sample: (c, h, w); a feature vector is (features, 1, 1). */
typedef struct nn_shape { int c, h, w; } nn_shape;

NNDEF nn_shape  nn_shape3(int c, int h, int w);
NNDEF nn_shape  nn_shape1(int features);
NNDEF size_t    nn_shape_size(nn_shape s);
NNDEF nn_status nn_tensor_alloc(nn_tensor *t, int ndim, const int *shape);  /* zeroed */
NNDEF void      nn_tensor_free(nn_tensor *t);

/* ---- Kernels ---------------------------------------------------------------------
   Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
   op(A) is m x k, op(B) is k x n, C is m x n; lda/ldb/ldc are the row strides of the
   matrices as stored. When beta is 0, C is not read (it may hold NaN). */

NNDEF void nn_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb,
                   float beta, float *c, int ldc);
/* The portable scalar GEMM, the reference the fast paths are tested against. */
NNDEF void nn_gemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                             const float *a, int lda, const float *b, int ldb,
                             float beta, float *c, int ldc);
NNDEF const char *nn_simd_name(void);   /* "avx2+fma", "neon" or "scalar" */
NNDEF void nn_set_threads(int n);       /* 0: the NN_THREADS variable, else online cores */
NNDEF int  nn_get_threads(void);

/* im2col: one image (channels x height x width) to a matrix with
   channels*kernel_h*kernel_w rows and out_h*out_w columns, row stride ld_col, where
   out_h = (height + 2*pad_h - kernel_h) / stride_h + 1 (likewise out_w). Padding reads
   as 0. col2im is its adjoint: it ADDS each column entry back into the image. */
NNDEF void nn_im2col(const float *img, int channels, int height, int width,
                     int kernel_h, int kernel_w, int stride_h, int stride_w,
                     int pad_h, int pad_w, float *col, int ld_col);
NNDEF void nn_col2im(const float *col, int ld_col, int channels, int height, int width,
                     int kernel_h, int kernel_w, int stride_h, int stride_w,
                     int pad_h, int pad_w, float *img);

/* ---- Layers ----------------------------------------------------------------------
   A layer is described by value (nn_linear(100), nn_conv2d(64, 3, 1, 1), ...) and
   added to a net; the net infers its input shape when it is built. */

typedef enum nn_layer_kind {
    NN_LINEAR = 1, NN_CONV2D, NN_MAXPOOL2D, NN_AVGPOOL2D, NN_GLOBAL_AVGPOOL,
    NN_BATCHNORM, NN_RELU, NN_LEAKY_RELU, NN_SIGMOID, NN_TANH, NN_GELU, NN_SOFTPLUS,
    NN_SCALE, NN_DROPOUT, NN_FLATTEN,
    NN_LAYER_KIND_COUNT
} nn_layer_kind;

typedef struct nn_layer_desc {
    nn_layer_kind kind;
    int   out;            /* Linear: out features; Conv2d: out channels */
    int   kernel, stride, pad;
    int   no_bias;        /* Linear/Conv2d: 1 = no bias */
    float alpha;          /* LeakyReLU slope, Scale factor, Dropout p, Softplus beta */
    float beta;           /* Softplus threshold */
    int   approximate;    /* GELU: 1 = tanh approximation */
} nn_layer_desc;

NNDEF const char   *nn_layer_name(nn_layer_kind kind);   /* "Linear", "Conv2d", ... */
NNDEF nn_layer_desc nn_linear(int out_features);
NNDEF nn_layer_desc nn_conv2d(int out_channels, int kernel, int stride, int pad);
NNDEF nn_layer_desc nn_maxpool2d(int kernel, int stride, int pad);
NNDEF nn_layer_desc nn_avgpool2d(int kernel, int stride, int pad);
NNDEF nn_layer_desc nn_global_avgpool(void);
NNDEF nn_layer_desc nn_batchnorm(void);     /* 1d on features, 2d on channels */
NNDEF nn_layer_desc nn_relu(void);
NNDEF nn_layer_desc nn_leaky_relu(float negative_slope);
NNDEF nn_layer_desc nn_sigmoid(void);
NNDEF nn_layer_desc nn_tanh(void);
NNDEF nn_layer_desc nn_gelu(int tanh_approximation);
NNDEF nn_layer_desc nn_softplus(float beta, float threshold);
NNDEF nn_layer_desc nn_scale(float factor);
NNDEF nn_layer_desc nn_dropout(float p);
NNDEF nn_layer_desc nn_flatten(void);

/* A learnable tensor with its gradient, or a buffer (running statistics). Names are
   PyTorch's state_dict keys of the equivalent nn.Sequential ("0.weight", ...). */
typedef struct nn_param {
    char   name[32];
    float *value;
    float *grad;           /* NULL for buffers */
    int    ndim;
    int    shape[NN_MAX_DIMS];
    size_t size;
} nn_param;

typedef struct nn_layer {
    nn_layer_desc desc;
    nn_shape  in, out;               /* per-sample shapes */
    nn_param *weight, *bias;         /* NULL where the layer has none */
    nn_param *running_mean, *running_var;
    float    *y;                     /* output activations, batch x out */
    float    *dx;                    /* gradient w.r.t. the input, batch x in */
    float    *work;                  /* per-layer workspace (masks, statistics, ...) */
    size_t    work_size;
} nn_layer;

/* ---- Losses ----------------------------------------------------------------------
   Each returns the loss averaged over the batch (or summed where said) and, if grad
   is not NULL, writes dLoss/dInput there. */

NNDEF float nn_softmax_cross_entropy(const float *logits, const int *labels, int n,
                                     int classes, float *grad);
NNDEF float nn_softmax_cross_entropy_soft(const float *logits, const float *targets,
                                          int n, int classes, float *grad);
NNDEF float nn_mse(const float *pred, const float *target, size_t count, int sum,
                   float *grad);
NNDEF float nn_bce(const float *prob, const float *target, size_t count, float *grad);
NNDEF float nn_bce_with_logits(const float *logits, const float *target, size_t count,
                               float *grad);

/* ---- Networks --------------------------------------------------------------------- */

typedef struct nn_net nn_net;

typedef enum nn_init { NN_INIT_DEFAULT = 0, NN_INIT_NORMAL, NN_INIT_CONSTANT } nn_init;

NNDEF nn_net   *nn_net_new(nn_shape input);
NNDEF void      nn_net_free(nn_net *net);
NNDEF nn_status nn_add(nn_net *net, nn_layer_desc layer);
/* Infers every shape, allocates every buffer for up to max_batch samples and
   initialises the parameters as PyTorch does by default, seeded. */
NNDEF nn_status nn_build(nn_net *net, int max_batch, uint64_t seed);
/* Re-initialise weights from N(mean, std) (NN_INIT_NORMAL) or to a constant, biases
   to bias_value; layers of the given kind only (0: Linear and Conv2d). */
NNDEF void      nn_init_weights(nn_net *net, nn_init how, float mean_or_value, float std,
                                float bias_value, nn_layer_kind only);
NNDEF void      nn_set_training(nn_net *net, int training);
NNDEF int       nn_num_layers(const nn_net *net);
NNDEF nn_layer *nn_get_layer(nn_net *net, int i);
NNDEF int       nn_num_params(const nn_net *net);   /* includes buffers */
NNDEF nn_param *nn_get_param(nn_net *net, int i);
NNDEF size_t    nn_param_count(const nn_net *net);  /* learnable scalars */
NNDEF nn_shape  nn_output_shape(const nn_net *net);
NNDEF int       nn_max_batch(const nn_net *net);
/* Forward n <= max_batch samples; returns the output (n x output size), owned by net. */
NNDEF const float *nn_forward(nn_net *net, const float *x, int n);
/* Backward from dLoss/dOutput after a forward of the same n; fills every grad. */
NNDEF void      nn_backward(nn_net *net, const float *dy);
NNDEF void      nn_zero_grad(nn_net *net);

/* ---- Optimisers ------------------------------------------------------------------
   Parameter structs where zero means PyTorch's default (lr has no default for SGD). */

typedef struct nn_optim nn_optim;

typedef struct nn_sgd_desc {
    float lr, momentum, dampening, weight_decay;
    int   nesterov;
} nn_sgd_desc;

typedef struct nn_adam_desc {
    float lr;             /* 0: 1e-3 (Adamax: 2e-3) */
    float beta1, beta2;   /* 0: 0.9, 0.999 */
    float eps;            /* 0: 1e-8 */
    float weight_decay;   /* Adam/Adamax: L2 added to the gradient; AdamW: decoupled
                             (0 means 0 for Adam, 1e-2 for AdamW as PyTorch) */
} nn_adam_desc;

NNDEF nn_optim *nn_sgd(nn_net *net, nn_sgd_desc desc);
NNDEF nn_optim *nn_adam(nn_net *net, nn_adam_desc desc);
NNDEF nn_optim *nn_adamw(nn_net *net, nn_adam_desc desc);
NNDEF nn_optim *nn_adamax(nn_net *net, nn_adam_desc desc);
NNDEF void      nn_optim_free(nn_optim *opt);
NNDEF void      nn_optim_step(nn_optim *opt);
NNDEF void      nn_optim_set_lr(nn_optim *opt, float lr);
NNDEF float     nn_optim_get_lr(const nn_optim *opt);
/* Forward, softmax cross-entropy over integer labels, backward, update. Returns the
   mean loss; NaN (with nn_error() set) if the loss stopped being finite. */
NNDEF float     nn_train_step(nn_net *net, nn_optim *opt, const float *x, const int *y,
                              int n);

/* ---- Data ------------------------------------------------------------------------
   A labelled data set in memory, float pixels N x C x H x W, plus a batcher that walks
   it in a shuffled order and reshuffles at the end of every epoch.
   The loaders overwrite *out without freeing it: free a loaded set with
   nn_dataset_free before loading into it again. On failure *out is left zeroed. */

typedef struct nn_dataset {
    int    n;             /* samples */
    nn_shape shape;       /* of one sample */
    int    num_classes;
    float *x;             /* n * nn_shape_size(shape) */
    int   *y;             /* n labels in [0, num_classes) */
    /* batcher state */
    int   *order;         /* NULL until nn_batch_start */
    int    cursor;        /* next position in order */
    int    epoch;         /* completed epochs */
    nn_rng rng;
} nn_dataset;

#define NN_CIFAR10_RECORD 3073   /* 1 label byte + 3 x 32 x 32 pixel bytes */

/* CIFAR-10 binary batch files, concatenated in the given order. Each file must be a
   non-zero multiple of 3073 bytes with every label byte < 10. Pixels become floats
   0..255, layout N x 3 x 32 x 32 (R, G, B planes); num_classes is 10. */
NNDEF nn_status nn_cifar10_load_files(const char *const *paths, int count, nn_dataset *out);
/* dir/data_batch_1..5.bin into train, dir/test_batch.bin into test (either may be NULL).
   If either fails, both are left zeroed. */
NNDEF nn_status nn_cifar10_load(const char *dir, nn_dataset *train, nn_dataset *test);
/* MNIST-style IDX files (uncompressed): images u8 [n, rows, cols] (magic 0x00000803),
   labels u8 [n] (magic 0x00000801). Sizes must match the headers exactly. Pixels
   become floats 0..255, shape (1, rows, cols); num_classes is the largest label + 1. */
NNDEF nn_status nn_idx_load(const char *images_path, const char *labels_path, nn_dataset *out);
/* Frees the pixels, labels and batcher order and zeroes *d (NULL is fine). */
NNDEF void      nn_dataset_free(nn_dataset *d);

/* Per-pixel mean over all samples (shape-sized output), summed in double. */
NNDEF nn_status nn_mean_image(const nn_dataset *d, float *mean);
NNDEF void      nn_subtract_image(nn_dataset *d, const float *mean);
/* Per-channel mean and population standard deviation (shape.c values each). */
NNDEF void      nn_channel_stats(const nn_dataset *d, float *mean, float *std);
/* x = (x - mean[c]) / std[c]; a channel whose std is not > 0 is only shifted. */
NNDEF void      nn_normalize_channels(nn_dataset *d, const float *mean, const float *std);
NNDEF void      nn_scale_pixels(nn_dataset *d, float factor);   /* x *= factor */

/* Starts the batcher: order = 0..n-1 shuffled by Fisher-Yates with nn_rng_new(seed)
   (so the first epoch is shuffled too), cursor 0, epoch 0. May be called again to
   restart. The only call of the batcher that allocates. */
NNDEF nn_status nn_batch_start(nn_dataset *d, uint64_t seed);
/* Copies the next n samples into x (n * shape size floats) and their labels into y
   (either may be NULL). When the order is used up, the same generator reshuffles it,
   epoch is incremented and the batch continues from the start of the new order, so a
   batch may straddle two epochs. Without nn_batch_start the samples are walked in
   stored order 0..n-1, epoch after epoch, unshuffled. Never allocates. */
NNDEF void      nn_next_batch(nn_dataset *d, int n, float *x, int *y);

#ifdef __cplusplus
}
#endif
#endif /* NN_H */

/* =================================================================================
   IMPLEMENTATION
   ================================================================================= */
#ifdef NN_IMPLEMENTATION
#ifndef NN_IMPLEMENTATION_DONE
#define NN_IMPLEMENTATION_DONE

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>    /* vsnprintf always; files only without NN_NO_STDIO */
#include <string.h>

#if defined(NN_MALLOC) != defined(NN_FREE)
#error "define both NN_MALLOC and NN_FREE, or neither"
#endif
#ifndef NN_MALLOC
#include <stdlib.h>
#define NN_MALLOC(size) malloc(size)
#define NN_FREE(p) free(p)
#endif
#ifndef NN_ASSERT
#include <assert.h>
#define NN_ASSERT(cond) assert(cond)
#endif

#ifndef NN_NO_SIMD
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NN__X86 1
#elif defined(__aarch64__) && defined(__ARM_NEON)
#define NN__NEON 1
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define NN__THREAD_LOCAL __thread
#else
#define NN__THREAD_LOCAL
#endif

/* ---- Errors --------------------------------------------------------------------- */

static NN__THREAD_LOCAL char nn__error_text[512];

NNDEF const char *nn_error(void) { return nn__error_text[0] ? nn__error_text : "no error"; }

/* Records a formatted message and returns the status, so that callers can write
   `return nn__fail(NN_ERR_IO, "%s: cannot open", path);`. */
static nn_status nn__fail(nn_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(nn__error_text, sizeof nn__error_text, fmt, ap);
    va_end(ap);
    return status;
}

NNDEF const char *nn_status_name(nn_status s)
{
    switch (s) {
    case NN_OK: return "NN_OK";
    case NN_ERR_ARG: return "NN_ERR_ARG";
    case NN_ERR_NOMEM: return "NN_ERR_NOMEM";
    case NN_ERR_IO: return "NN_ERR_IO";
    case NN_ERR_FORMAT: return "NN_ERR_FORMAT";
    case NN_ERR_NUMERIC: return "NN_ERR_NUMERIC";
    case NN_ERR_STATE: return "NN_ERR_STATE";
    }
    return "NN_ERR_UNKNOWN";
}

/* ---- Memory ----------------------------------------------------------------------
   Buffers are 64-byte aligned (one cache line, a whole AVX-512 register) on top of
   NN_MALLOC: the offset to the original pointer is kept just below the block. */

#define NN__ALIGN 64

static void *nn__alloc(size_t size)
{
    unsigned char *raw, *p;
    if (size > SIZE_MAX - NN__ALIGN - sizeof(void *)) return NULL;
    raw = (unsigned char *)NN_MALLOC(size + NN__ALIGN + sizeof(void *));
    if (!raw) return NULL;
    p = raw + sizeof(void *);
    p += (NN__ALIGN - (uintptr_t)p % NN__ALIGN) % NN__ALIGN;
    memcpy(p - sizeof(void *), &raw, sizeof raw);
    return p;
}

static void *nn__calloc(size_t count, size_t elem)
{
    void *p;
    if (elem && count > SIZE_MAX / elem) return NULL;
    p = nn__alloc(count * elem);
    if (p) memset(p, 0, count * elem);
    return p;
}

static void nn__free(void *p)
{
    void *raw;
    if (!p) return;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof raw);
    NN_FREE(raw);
}

/* Checked size arithmetic: 0 on overflow. */
static int nn__mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ---- Random numbers --------------------------------------------------------------
   PCG32 (O'Neill, "PCG: a family of simple fast space-efficient statistically good
   algorithms"): a 64-bit LCG whose output is a permuted 32-bit word. */

NNDEF uint32_t nn_rng_u32(nn_rng *r)
{
    uint64_t old = r->state;
    uint32_t xorshifted, rot;
    r->state = old * 6364136223846793005ULL + r->inc;
    xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
    rot = (uint32_t)(old >> 59);
    return (xorshifted >> rot) | (xorshifted << ((32 - rot) & 31));
}

NNDEF nn_rng nn_rng_new(uint64_t seed)
{
    nn_rng r;
    r.state = 0;
    r.inc = (seed << 1) | 1u;           /* any odd increment; derived from the seed */
    nn_rng_u32(&r);
    r.state += seed ^ 0x853c49e6748fea9bULL;
    nn_rng_u32(&r);
    return r;
}

NNDEF uint32_t nn_rng_below(nn_rng *r, uint32_t n)
{
    /* Reject the top partial range so that every residue is equally likely. */
    uint32_t limit, x;
    if (n <= 1) return 0;
    limit = (uint32_t)(0x100000000ULL - (0x100000000ULL % n));
    do x = nn_rng_u32(r); while (limit && x >= limit);
    return x % n;
}

NNDEF float nn_rng_uniform(nn_rng *r)
{
    return (float)(nn_rng_u32(r) >> 8) * (1.0f / 16777216.0f);   /* 24 exact bits */
}

NNDEF float nn_rng_normal(nn_rng *r, float mean, float std)
{
    /* Box-Muller in double; u1 in (0, 1] so that log(u1) is finite. */
    double u1 = ((double)(nn_rng_u32(r) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(nn_rng_u32(r) >> 8) / 16777216.0;
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return mean + std * (float)z;
}

NNDEF void nn_rng_shuffle(nn_rng *r, int *items, int n)
{
    int i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)nn_rng_below(r, (uint32_t)i + 1), t = items[i];
        items[i] = items[j];
        items[j] = t;
    }
}

/* ---- Tensors --------------------------------------------------------------------- */

NNDEF nn_shape nn_shape3(int c, int h, int w) { nn_shape s; s.c = c; s.h = h; s.w = w; return s; }
NNDEF nn_shape nn_shape1(int features) { return nn_shape3(features, 1, 1); }

NNDEF size_t nn_shape_size(nn_shape s)
{
    size_t n;
    if (s.c <= 0 || s.h <= 0 || s.w <= 0) return 0;
    if (!nn__mul_ok((size_t)s.c, (size_t)s.h, &n) || !nn__mul_ok(n, (size_t)s.w, &n)) return 0;
    return n;
}

NNDEF nn_status nn_tensor_alloc(nn_tensor *t, int ndim, const int *shape)
{
    size_t size = 1;
    int i;
    memset(t, 0, sizeof *t);
    if (ndim < 1 || ndim > NN_MAX_DIMS)
        return nn__fail(NN_ERR_ARG, "tensor: %d dimensions, expected 1 to %d", ndim, NN_MAX_DIMS);
    for (i = 0; i < ndim; i++) {
        if (shape[i] <= 0)
            return nn__fail(NN_ERR_ARG, "tensor: dimension %d is %d, expected > 0", i, shape[i]);
        if (!nn__mul_ok(size, (size_t)shape[i], &size))
            return nn__fail(NN_ERR_NOMEM, "tensor: size overflows");
        t->shape[i] = shape[i];
    }
    t->data = (float *)nn__calloc(size, sizeof(float));
    if (!t->data) return nn__fail(NN_ERR_NOMEM, "tensor: cannot allocate %zu floats", size);
    t->ndim = ndim;
    t->size = size;
    return NN_OK;
}

NNDEF void nn_tensor_free(nn_tensor *t)
{
    nn__free(t->data);
    memset(t, 0, sizeof *t);
}

/* =================================================================================
   KERNELS
   ================================================================================= */

/* ---- Threads ---------------------------------------------------------------------
   nn__parallel(tasks, fn, ctx) runs fn(ctx, 0..tasks-1), spread over the pool.
   Callers split work so that results do not depend on the number of threads. */

typedef void (*nn__task_fn)(void *ctx, int task);

static int nn__threads = 1;

NNDEF void nn_set_threads(int n) { nn__threads = n > 0 ? n : 1; }
NNDEF int  nn_get_threads(void) { return nn__threads; }

static void nn__parallel(int tasks, nn__task_fn fn, void *ctx)
{
    int t;
    for (t = 0; t < tasks; t++) fn(ctx, t);
}

/* ---- GEMM ------------------------------------------------------------------------ */

NNDEF void nn_gemm_reference(int trans_a, int trans_b, int m, int n, int k, float alpha,
                             const float *a, int lda, const float *b, int ldb,
                             float beta, float *c, int ldc)
{
    int i, j, p;
    for (i = 0; i < m; i++) {
        for (j = 0; j < n; j++) {
            float sum = 0.0f;
            for (p = 0; p < k; p++) {
                float av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                float bv = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += av * bv;
            }
            c[(size_t)i * ldc + j] = alpha * sum + (beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j]);
        }
    }
}

NNDEF const char *nn_simd_name(void) { return "scalar"; }

NNDEF void nn_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb,
                   float beta, float *c, int ldc)
{
    nn_gemm_reference(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- im2col / col2im ------------------------------------------------------------- */

NNDEF void nn_im2col(const float *img, int channels, int height, int width,
                     int kernel_h, int kernel_w, int stride_h, int stride_w,
                     int pad_h, int pad_w, float *col, int ld_col)
{
    int out_h = (height + 2 * pad_h - kernel_h) / stride_h + 1;
    int out_w = (width + 2 * pad_w - kernel_w) / stride_w + 1;
    int c, ki, kj, oy, ox, row = 0;
    for (c = 0; c < channels; c++)
        for (ki = 0; ki < kernel_h; ki++)
            for (kj = 0; kj < kernel_w; kj++, row++) {
                float *dst = col + (size_t)row * ld_col;
                for (oy = 0; oy < out_h; oy++) {
                    int iy = oy * stride_h - pad_h + ki;
                    for (ox = 0; ox < out_w; ox++) {
                        int ix = ox * stride_w - pad_w + kj;
                        dst[oy * out_w + ox] = (iy >= 0 && iy < height && ix >= 0 && ix < width)
                            ? img[((size_t)c * height + iy) * width + ix] : 0.0f;
                    }
                }
            }
}

NNDEF void nn_col2im(const float *col, int ld_col, int channels, int height, int width,
                     int kernel_h, int kernel_w, int stride_h, int stride_w,
                     int pad_h, int pad_w, float *img)
{
    int out_h = (height + 2 * pad_h - kernel_h) / stride_h + 1;
    int out_w = (width + 2 * pad_w - kernel_w) / stride_w + 1;
    int c, ki, kj, oy, ox, row = 0;
    for (c = 0; c < channels; c++)
        for (ki = 0; ki < kernel_h; ki++)
            for (kj = 0; kj < kernel_w; kj++, row++) {
                const float *src = col + (size_t)row * ld_col;
                for (oy = 0; oy < out_h; oy++) {
                    int iy = oy * stride_h - pad_h + ki;
                    if (iy < 0 || iy >= height) continue;
                    for (ox = 0; ox < out_w; ox++) {
                        int ix = ox * stride_w - pad_w + kj;
                        if (ix >= 0 && ix < width)
                            img[((size_t)c * height + iy) * width + ix] += src[oy * out_w + ox];
                    }
                }
            }
}

/* =================================================================================
   LAYERS
   ================================================================================= */

/* ==== LAYERS-END ==== */

/* =================================================================================
   LOSSES
   ================================================================================= */

/* ==== LOSSES-END ==== */

/* =================================================================================
   NETWORKS AND OPTIMISERS
   ================================================================================= */

/* =================================================================================
   DATA
   ================================================================================= */

/* ---- Loading ---------------------------------------------------------------------
   Files are read in chunks of NN__CHUNK bytes and converted to float as they come,
   so a load needs no second copy of the data set in bytes. */

NNDEF void nn_dataset_free(nn_dataset *d)
{
    if (!d) return;
    nn__free(d->x);
    nn__free(d->y);
    nn__free(d->order);
    memset(d, 0, sizeof *d);
}

#ifndef NN_NO_STDIO

#define NN__CHUNK (1u << 20)

/* Allocates x and y for n samples of the given shape; on failure frees and zeroes d. */
static nn_status nn__dataset_alloc(nn_dataset *d, int n, nn_shape shape, const char *what)
{
    size_t x_bytes;
    memset(d, 0, sizeof *d);
    if (!nn__mul_ok((size_t)n, nn_shape_size(shape), &x_bytes)
        || !nn__mul_ok(x_bytes, sizeof(float), &x_bytes))
        return nn__fail(NN_ERR_NOMEM, "%s: %d samples of %dx%dx%d overflow the address space",
                        what, n, shape.c, shape.h, shape.w);
    /* Not zeroed: the loaders write every element. */
    d->x = (float *)nn__alloc(x_bytes);
    d->y = (int *)nn__alloc((size_t)n * sizeof(int));
    if (!d->x || !d->y) {
        nn_dataset_free(d);
        return nn__fail(NN_ERR_NOMEM, "%s: cannot allocate %d samples of %dx%dx%d floats",
                        what, n, shape.c, shape.h, shape.w);
    }
    d->n = n;
    d->shape = shape;
    return NN_OK;
}

static nn_status nn__open(const char *path, FILE **f)
{
    *f = fopen(path, "rb");
    if (!*f) return nn__fail(NN_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    return NN_OK;
}

/* The size of an open file in bytes; leaves the position at the start. */
static nn_status nn__file_size(FILE *f, const char *path, size_t *size)
{
    long end;
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        return nn__fail(NN_ERR_IO, "%s: cannot determine the size (%s)", path, strerror(errno));
    *size = (size_t)end;
    return NN_OK;
}

/* Reads exactly size bytes or fails with a message naming the path. */
static nn_status nn__read_exact(FILE *f, const char *path, unsigned char *buf, size_t size)
{
    if (fread(buf, 1, size, f) == size) return NN_OK;
    if (ferror(f)) return nn__fail(NN_ERR_IO, "%s: read error (%s)", path, strerror(errno));
    return nn__fail(NN_ERR_FORMAT, "%s: file ended early (changed while being read?)", path);
}

/* Checks one CIFAR-10 batch file and returns its record count. */
static nn_status nn__cifar10_count(const char *path, int *records)
{
    FILE *f;
    size_t size;
    nn_status s = nn__open(path, &f);
    if (s != NN_OK) return s;
    s = nn__file_size(f, path, &size);
    fclose(f);
    if (s != NN_OK) return s;
    if (size == 0)
        return nn__fail(NN_ERR_FORMAT, "%s: size 0, the file is empty (expected %d-byte records)",
                        path, NN_CIFAR10_RECORD);
    if (size % NN_CIFAR10_RECORD != 0)
        return nn__fail(NN_ERR_FORMAT, "%s: size %zu is not a multiple of the %d-byte record",
                        path, size, NN_CIFAR10_RECORD);
    if (size / NN_CIFAR10_RECORD > (size_t)INT_MAX)
        return nn__fail(NN_ERR_FORMAT, "%s: %zu records, more than %d", path,
                        size / NN_CIFAR10_RECORD, INT_MAX);
    *records = (int)(size / NN_CIFAR10_RECORD);
    return NN_OK;
}

/* Reads `records` records of one file into x and y (which point at its first sample). */
static nn_status nn__cifar10_read(const char *path, int records, unsigned char *buf,
                                  float *x, int *y)
{
    const int pixels = NN_CIFAR10_RECORD - 1;
    const int per_chunk = (int)(NN__CHUNK / NN_CIFAR10_RECORD);
    FILE *f;
    int done = 0;
    nn_status s = nn__open(path, &f);
    if (s != NN_OK) return s;
    while (done < records && s == NN_OK) {
        int count = records - done < per_chunk ? records - done : per_chunk, r, i;
        s = nn__read_exact(f, path, buf, (size_t)count * NN_CIFAR10_RECORD);
        for (r = 0; r < count && s == NN_OK; r++) {
            const unsigned char *rec = buf + (size_t)r * NN_CIFAR10_RECORD;
            float *dst = x + (size_t)(done + r) * pixels;
            if (rec[0] >= 10) {
                s = nn__fail(NN_ERR_FORMAT, "%s: record %d has label %d, expected 0..9",
                             path, done + r, rec[0]);
                break;
            }
            y[done + r] = rec[0];
            for (i = 0; i < pixels; i++) dst[i] = (float)rec[1 + i];
        }
        done += count;
    }
    fclose(f);
    return s;
}

NNDEF nn_status nn_cifar10_load_files(const char *const *paths, int count, nn_dataset *out)
{
    int *records = NULL, total = 0, i, at = 0;
    unsigned char *buf = NULL;
    nn_status s = NN_OK;
    if (!out) return nn__fail(NN_ERR_ARG, "cifar10: out is NULL");
    memset(out, 0, sizeof *out);
    if (!paths || count <= 0) return nn__fail(NN_ERR_ARG, "cifar10: no files given");
    records = (int *)nn__calloc((size_t)count, sizeof(int));
    if (!records) return nn__fail(NN_ERR_NOMEM, "cifar10: cannot allocate %d counts", count);
    /* First check every file, so that a bad last file fails before the big allocation. */
    for (i = 0; i < count && s == NN_OK; i++) {
        s = nn__cifar10_count(paths[i], &records[i]);
        if (s == NN_OK && records[i] > INT_MAX - total)
            s = nn__fail(NN_ERR_FORMAT, "cifar10: more than %d records in all", INT_MAX);
        if (s == NN_OK) total += records[i];
    }
    if (s == NN_OK) s = nn__dataset_alloc(out, total, nn_shape3(3, 32, 32), "cifar10");
    if (s == NN_OK) {
        buf = (unsigned char *)nn__alloc(NN__CHUNK);
        if (!buf) s = nn__fail(NN_ERR_NOMEM, "cifar10: cannot allocate the read buffer");
    }
    for (i = 0; i < count && s == NN_OK; i++) {
        s = nn__cifar10_read(paths[i], records[i], buf,
                             out->x + (size_t)at * (NN_CIFAR10_RECORD - 1), out->y + at);
        at += records[i];
    }
    nn__free(buf);
    nn__free(records);
    if (s != NN_OK) {
        nn_dataset_free(out);
        return s;
    }
    out->num_classes = 10;
    return NN_OK;
}

NNDEF nn_status nn_cifar10_load(const char *dir, nn_dataset *train, nn_dataset *test)
{
    static const char *const names[6] = {
        "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
        "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"
    };
    char *storage;
    const char *paths[6];
    size_t stride;
    nn_status s = NN_OK;
    int i;
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (!dir) return nn__fail(NN_ERR_ARG, "cifar10: dir is NULL");
    stride = strlen(dir) + 32;   /* "/" + the longest name + NUL */
    storage = (char *)nn__alloc(6 * stride);
    if (!storage) return nn__fail(NN_ERR_NOMEM, "cifar10: cannot allocate file names");
    for (i = 0; i < 6; i++) {
        char *p = storage + (size_t)i * stride;
        snprintf(p, stride, "%s/%s", dir, names[i]);
        paths[i] = p;
    }
    if (train) s = nn_cifar10_load_files(paths, 5, train);
    if (s == NN_OK && test) {
        s = nn_cifar10_load_files(paths + 5, 1, test);
        if (s != NN_OK && train) nn_dataset_free(train);
    }
    nn__free(storage);
    return s;
}

static uint32_t nn__be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Opens an IDX file of unsigned bytes with `ndim` dimensions, checks the magic, that
   every dimension is in 1..INT_MAX and that the size is exactly header + data.
   Leaves f positioned at the data. */
static nn_status nn__idx_open(const char *path, int ndim, FILE **f, int *dims)
{
    unsigned char header[16];
    size_t header_size = 4 + 4 * (size_t)ndim, size, expect = 1;
    uint32_t magic, want = 0x00000800u | (uint32_t)ndim;
    nn_status s;
    int i;
    if ((s = nn__open(path, f)) != NN_OK) return s;
    if ((s = nn__file_size(*f, path, &size)) != NN_OK) goto fail;
    if (size < header_size) {
        s = nn__fail(NN_ERR_FORMAT, "%s: size %zu is smaller than the %zu-byte IDX header",
                     path, size, header_size);
        goto fail;
    }
    if ((s = nn__read_exact(*f, path, header, header_size)) != NN_OK) goto fail;
    magic = nn__be32(header);
    if (magic != want) {
        s = nn__fail(NN_ERR_FORMAT, "%s: magic 0x%08x, expected 0x%08x (IDX, unsigned bytes, "
                     "%d dimension%s; gzipped files must be unpacked first)",
                     path, (unsigned)magic, (unsigned)want, ndim, ndim == 1 ? "" : "s");
        goto fail;
    }
    for (i = 0; i < ndim; i++) {
        uint32_t dim = nn__be32(header + 4 + 4 * i);
        if (dim == 0 || dim > (uint32_t)INT_MAX) {
            s = nn__fail(NN_ERR_FORMAT, "%s: dimension %d is %lu, expected 1..%d",
                         path, i, (unsigned long)dim, INT_MAX);
            goto fail;
        }
        dims[i] = (int)dim;
        if (!nn__mul_ok(expect, dim, &expect)) {
            s = nn__fail(NN_ERR_FORMAT, "%s: dimensions overflow the address space", path);
            goto fail;
        }
    }
    if (expect > SIZE_MAX - header_size || size != header_size + expect) {
        s = nn__fail(NN_ERR_FORMAT, "%s: size %zu, expected %zu for the dimensions in the header",
                     path, size, expect > SIZE_MAX - header_size ? SIZE_MAX : header_size + expect);
        goto fail;
    }
    return NN_OK;
fail:
    fclose(*f);
    *f = NULL;
    return s;
}

NNDEF nn_status nn_idx_load(const char *images_path, const char *labels_path, nn_dataset *out)
{
    FILE *fi = NULL, *fl = NULL;
    int idims[3], ldims[1], max_label = 0;
    size_t per_image, i, done, total;
    unsigned char *buf = NULL;
    nn_status s;
    if (!out) return nn__fail(NN_ERR_ARG, "idx: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path) return nn__fail(NN_ERR_ARG, "idx: a path is NULL");
    if ((s = nn__idx_open(images_path, 3, &fi, idims)) != NN_OK) return s;
    if ((s = nn__idx_open(labels_path, 1, &fl, ldims)) != NN_OK) goto done;
    if (idims[0] != ldims[0]) {
        s = nn__fail(NN_ERR_FORMAT, "%s has %d images but %s has %d labels",
                     images_path, idims[0], labels_path, ldims[0]);
        goto done;
    }
    if ((s = nn__dataset_alloc(out, idims[0], nn_shape3(1, idims[1], idims[2]), images_path)) != NN_OK)
        goto done;
    buf = (unsigned char *)nn__alloc(NN__CHUNK);
    if (!buf) {
        s = nn__fail(NN_ERR_NOMEM, "idx: cannot allocate the read buffer");
        goto done;
    }
    per_image = nn_shape_size(out->shape);
    total = (size_t)out->n * per_image;
    for (done = 0; done < total && s == NN_OK; done += NN__CHUNK) {
        size_t count = total - done < NN__CHUNK ? total - done : NN__CHUNK;
        s = nn__read_exact(fi, images_path, buf, count);
        for (i = 0; i < count && s == NN_OK; i++) out->x[done + i] = (float)buf[i];
    }
    for (done = 0; done < (size_t)out->n && s == NN_OK; done += NN__CHUNK) {
        size_t count = (size_t)out->n - done < NN__CHUNK ? (size_t)out->n - done : NN__CHUNK;
        s = nn__read_exact(fl, labels_path, buf, count);
        for (i = 0; i < count && s == NN_OK; i++) {
            out->y[done + i] = buf[i];
            if (buf[i] > max_label) max_label = buf[i];
        }
    }
    out->num_classes = max_label + 1;
done:
    nn__free(buf);
    if (fi) fclose(fi);
    if (fl) fclose(fl);
    if (s != NN_OK) nn_dataset_free(out);
    return s;
}

#endif /* NN_NO_STDIO */

/* ---- Preprocessing ---------------------------------------------------------------
   Statistics accumulate in double: 50,000 x 255 summed in float loses digits. */

NNDEF nn_status nn_mean_image(const nn_dataset *d, float *mean)
{
    size_t size = nn_shape_size(d->shape), j;
    double *sum;
    int i;
    if (d->n <= 0 || size == 0) return nn__fail(NN_ERR_ARG, "mean image: the data set is empty");
    sum = (double *)nn__calloc(size, sizeof(double));
    if (!sum) return nn__fail(NN_ERR_NOMEM, "mean image: cannot allocate %zu doubles", size);
    for (i = 0; i < d->n; i++) {
        const float *x = d->x + (size_t)i * size;
        for (j = 0; j < size; j++) sum[j] += x[j];
    }
    for (j = 0; j < size; j++) mean[j] = (float)(sum[j] / d->n);
    nn__free(sum);
    return NN_OK;
}

NNDEF void nn_subtract_image(nn_dataset *d, const float *mean)
{
    size_t size = nn_shape_size(d->shape), j;
    int i;
    for (i = 0; i < d->n; i++) {
        float *x = d->x + (size_t)i * size;
        for (j = 0; j < size; j++) x[j] -= mean[j];
    }
}

/* Two passes (mean, then squared deviations from it), each summed per channel. */
NNDEF void nn_channel_stats(const nn_dataset *d, float *mean, float *std)
{
    size_t plane = (size_t)d->shape.h * (size_t)d->shape.w, j;
    int i, c;
    for (c = 0; c < d->shape.c; c++) {
        double sum = 0.0, dev = 0.0, m, count = (double)d->n * (double)plane;
        for (i = 0; i < d->n; i++) {
            const float *x = d->x + ((size_t)i * d->shape.c + c) * plane;
            for (j = 0; j < plane; j++) sum += x[j];
        }
        m = count > 0 ? sum / count : 0.0;
        for (i = 0; i < d->n; i++) {
            const float *x = d->x + ((size_t)i * d->shape.c + c) * plane;
            for (j = 0; j < plane; j++) dev += (x[j] - m) * (x[j] - m);
        }
        mean[c] = (float)m;
        std[c] = count > 0 ? (float)sqrt(dev / count) : 0.0f;
    }
}

NNDEF void nn_normalize_channels(nn_dataset *d, const float *mean, const float *std)
{
    size_t plane = (size_t)d->shape.h * (size_t)d->shape.w, j;
    int i, c;
    for (c = 0; c < d->shape.c; c++) {
        float m = mean[c], inv = std[c] > 0.0f ? 1.0f / std[c] : 1.0f;
        for (i = 0; i < d->n; i++) {
            float *x = d->x + ((size_t)i * d->shape.c + c) * plane;
            for (j = 0; j < plane; j++) x[j] = (x[j] - m) * inv;
        }
    }
}

NNDEF void nn_scale_pixels(nn_dataset *d, float factor)
{
    size_t count = (size_t)d->n * nn_shape_size(d->shape), j;
    for (j = 0; j < count; j++) d->x[j] *= factor;
}

/* ---- Batcher ---------------------------------------------------------------------- */

NNDEF nn_status nn_batch_start(nn_dataset *d, uint64_t seed)
{
    int i;
    if (d->n <= 0) return nn__fail(NN_ERR_ARG, "batcher: the data set is empty");
    nn__free(d->order);
    d->order = (int *)nn__alloc((size_t)d->n * sizeof(int));
    if (!d->order) return nn__fail(NN_ERR_NOMEM, "batcher: cannot allocate %d indices", d->n);
    for (i = 0; i < d->n; i++) d->order[i] = i;
    d->rng = nn_rng_new(seed);
    nn_rng_shuffle(&d->rng, d->order, d->n);
    d->cursor = 0;
    d->epoch = 0;
    return NN_OK;
}

NNDEF void nn_next_batch(nn_dataset *d, int n, float *x, int *y)
{
    size_t size = nn_shape_size(d->shape);
    int i;
    if (d->n <= 0) return;
    for (i = 0; i < n; i++) {
        int k = d->order ? d->order[d->cursor] : d->cursor;
        if (x) memcpy(x + (size_t)i * size, d->x + (size_t)k * size, size * sizeof(float));
        if (y) y[i] = d->y[k];
        if (++d->cursor == d->n) {
            /* End of an epoch: count it and reshuffle at once, so that d->epoch is
               the number of completed epochs right after the batch that ended it. */
            if (d->order) nn_rng_shuffle(&d->rng, d->order, d->n);
            d->cursor = 0;
            d->epoch++;
        }
    }
}

/* =================================================================================
   MODEL FILES
   ================================================================================= */

/* =================================================================================
   METRICS
   ================================================================================= */

#endif /* NN_IMPLEMENTATION_DONE */
#endif /* NN_IMPLEMENTATION */

/*
------------------------------------------------------------------------------------
This software is available under 2 licenses -- choose whichever you prefer.
------------------------------------------------------------------------------------
ALTERNATIVE A - MIT License
Copyright (c) 2026 the nn.h authors
Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify,
merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following
conditions:
The above copyright notice and this permission notice shall be included in all copies
or substantial portions of the Software.
THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A
PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT
HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF
CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE
OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
------------------------------------------------------------------------------------
ALTERNATIVE B - Public Domain (www.unlicense.org)
This is free and unencumbered software released into the public domain.
Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.
In jurisdictions that recognize copyright laws, the author or authors of this
software dedicate any and all copyright interest in the software to the public
domain. We dedicate this software to the public domain to the benefit of the public
at large and to the detriment of our heirs and successors in perpetuity.
------------------------------------------------------------------------------------
*/
