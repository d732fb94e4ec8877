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
   it in order and reshuffles at the end of every epoch. */

typedef struct nn_dataset {
    int    n;             /* samples */
    nn_shape shape;       /* of one sample */
    int    num_classes;
    float *x;             /* n * nn_shape_size(shape) */
    int   *y;             /* n labels in [0, num_classes) */
    /* batcher state */
    int   *order;
    int    cursor, epoch;
    nn_rng rng;
} nn_dataset;

#define NN_CIFAR10_RECORD 3073   /* 1 label byte + 3 x 32 x 32 pixel bytes */

NNDEF nn_status nn_cifar10_load_files(const char *const *paths, int count, nn_dataset *out);
/* dir/data_batch_1..5.bin into train, dir/test_batch.bin into test (either may be NULL). */
NNDEF nn_status nn_cifar10_load(const char *dir, nn_dataset *train, nn_dataset *test);
/* MNIST-style IDX files (uncompressed): images u8 [n, rows, cols], labels u8 [n]. */
NNDEF nn_status nn_idx_load(const char *images_path, const char *labels_path, nn_dataset *out);
NNDEF void      nn_dataset_free(nn_dataset *d);

NNDEF nn_status nn_mean_image(const nn_dataset *d, float *mean);     /* shape-sized */
NNDEF void      nn_subtract_image(nn_dataset *d, const float *mean);
NNDEF void      nn_channel_stats(const nn_dataset *d, float *mean, float *std);
NNDEF void      nn_normalize_channels(nn_dataset *d, const float *mean, const float *std);
NNDEF void      nn_scale_pixels(nn_dataset *d, float factor);

NNDEF nn_status nn_batch_start(nn_dataset *d, uint64_t seed);   /* shuffled order */
/* Copies the next n samples into x and their labels into y; at the end of the data
   set it reshuffles and continues from the start of the new order. */
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
   nn__parallel(tasks, fn, ctx) runs fn(ctx, 0..tasks-1), spread over a persistent
   pool of nn_get_threads() - 1 workers plus the calling thread, and returns when all
   tasks are done. Callers split work so that results do not depend on the number of
   threads. Calls from inside a task, or while another thread uses the pool, run
   inline. Idle workers spin for about 0.1 ms, then sleep on a condition variable;
   an atexit hook stops and joins them. */

#ifndef NN_NO_THREADS
#include <pthread.h>
#include <stdlib.h>   /* getenv, strtol, atexit */
#include <unistd.h>   /* sysconf */
#endif

typedef void (*nn__task_fn)(void *ctx, int task);

#define NN__MAX_THREADS 64

static int nn__threads;                 /* 0 until decided */
static NN__THREAD_LOCAL int nn__in_task;

/* Per-thread packing workspace for GEMM: grown on demand, then reused, so that a
   training loop with fixed shapes allocates only in its first step. */
static NN__THREAD_LOCAL float *nn__workspace;
static NN__THREAD_LOCAL size_t nn__workspace_floats;

static float *nn__workspace_get(size_t floats)
{
    if (floats > nn__workspace_floats) {
        size_t bytes;
        float *p;
        if (!nn__mul_ok(floats, sizeof(float), &bytes)) return NULL;
        p = (float *)nn__alloc(bytes);
        if (!p) return NULL;
        nn__free(nn__workspace);
        nn__workspace = p;
        nn__workspace_floats = floats;
    }
    return nn__workspace;
}

static int nn__default_threads(void)
{
#ifdef NN_NO_THREADS
    return 1;
#else
    const char *env = getenv("NN_THREADS");
    long n = env ? strtol(env, NULL, 10) : 0;
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > NN__MAX_THREADS) n = NN__MAX_THREADS;
    return (int)n;
#endif
}

NNDEF void nn_set_threads(int n)
{
#ifdef NN_NO_THREADS
    (void)n;
    nn__threads = 1;
#else
    nn__threads = n <= 0 ? nn__default_threads() : n > NN__MAX_THREADS ? NN__MAX_THREADS : n;
#endif
}

NNDEF int nn_get_threads(void)
{
    if (!nn__threads) nn__threads = nn__default_threads();
    return nn__threads;
}

static void nn__run_inline(int tasks, nn__task_fn fn, void *ctx)
{
    int t, outer = nn__in_task;
    nn__in_task = 1;
    for (t = 0; t < tasks; t++) fn(ctx, t);
    nn__in_task = outer;
}

#ifdef NN_NO_THREADS

static void nn__parallel(int tasks, nn__task_fn fn, void *ctx) { nn__run_inline(tasks, fn, ctx); }

#else

static void nn__workspace_release(void)
{
    nn__free(nn__workspace);
    nn__workspace = NULL;
    nn__workspace_floats = 0;
}

static pthread_mutex_t nn__pool_lock = PTHREAD_MUTEX_INITIALIZER;   /* guards nn__pool */
static pthread_mutex_t nn__pool_owner = PTHREAD_MUTEX_INITIALIZER;  /* one job at a time */
static pthread_cond_t nn__pool_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t nn__pool_done = PTHREAD_COND_INITIALIZER;

/* Idle threads spin this many pause instructions (about 0.1 ms) before they sleep:
   the next job usually follows soon, and a condition-variable wake-up costs tens of
   microseconds. The flags read while spinning are written atomically under the lock. */
#if defined(__GNUC__) || defined(__clang__)
#define NN__SPIN 4096
#define NN__LOAD(x) __atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define NN__STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)
#if defined(__x86_64__) || defined(__i386__)
#define NN__PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define NN__PAUSE() __asm__ __volatile__("yield")
#else
#define NN__PAUSE() ((void)0)
#endif
#else
#define NN__SPIN 0
#define NN__LOAD(x) (x)
#define NN__STORE(x, v) ((x) = (v))
#define NN__PAUSE() ((void)0)
#endif

static struct nn__pool_state {
    pthread_t ids[NN__MAX_THREADS];
    int started, active, stopping, exit_hooked;
    unsigned long generation;            /* bumped for every job */
    nn__task_fn fn;
    void *ctx;
    int tasks, next, unfinished;
} nn__pool;

/* Runs the current job's tasks until none is left; nn__pool_lock is held on entry
   and on return, released while a task runs. */
static void nn__pool_drain(void)
{
    while (nn__pool.next < nn__pool.tasks) {
        int t = nn__pool.next++;
        nn__task_fn fn = nn__pool.fn;
        void *ctx = nn__pool.ctx;
        pthread_mutex_unlock(&nn__pool_lock);
        fn(ctx, t);
        pthread_mutex_lock(&nn__pool_lock);
        NN__STORE(nn__pool.unfinished, nn__pool.unfinished - 1);
        if (nn__pool.unfinished == 0) pthread_cond_signal(&nn__pool_done);
    }
}

static void *nn__pool_worker(void *arg)
{
    int index = (int)(intptr_t)arg, spin;
    unsigned long seen = 0;
    nn__in_task = 1;
    for (;;) {
        for (spin = 0; spin < NN__SPIN && NN__LOAD(nn__pool.generation) == seen &&
                       !NN__LOAD(nn__pool.stopping); spin++)
            NN__PAUSE();
        pthread_mutex_lock(&nn__pool_lock);
        while (!nn__pool.stopping && nn__pool.generation == seen)
            pthread_cond_wait(&nn__pool_wake, &nn__pool_lock);
        if (nn__pool.stopping) {
            pthread_mutex_unlock(&nn__pool_lock);
            break;
        }
        seen = nn__pool.generation;
        if (index < nn__pool.active) nn__pool_drain();
        pthread_mutex_unlock(&nn__pool_lock);
    }
    nn__workspace_release();
    return NULL;
}

static void nn__pool_stop(void)
{
    int i;
    pthread_mutex_lock(&nn__pool_lock);
    NN__STORE(nn__pool.stopping, 1);
    pthread_cond_broadcast(&nn__pool_wake);
    pthread_mutex_unlock(&nn__pool_lock);
    for (i = 0; i < nn__pool.started; i++) pthread_join(nn__pool.ids[i], NULL);
    nn__pool.started = 0;
    nn__workspace_release();   /* the exiting thread's own */
}

static void nn__parallel(int tasks, nn__task_fn fn, void *ctx)
{
    int workers = nn_get_threads() - 1, spin;
    if (tasks <= 0) return;
    if (tasks == 1 || workers < 1 || nn__in_task || pthread_mutex_trylock(&nn__pool_owner) != 0) {
        nn__run_inline(tasks, fn, ctx);
        return;
    }
    pthread_mutex_lock(&nn__pool_lock);
    if (!nn__pool.exit_hooked) nn__pool.exit_hooked = atexit(nn__pool_stop) == 0 ? 1 : -1;
    while (nn__pool.exit_hooked == 1 && !nn__pool.stopping && nn__pool.started < workers &&
           pthread_create(&nn__pool.ids[nn__pool.started], NULL, nn__pool_worker,
                          (void *)(intptr_t)nn__pool.started) == 0)
        nn__pool.started++;
    nn__pool.active = nn__pool.started < workers ? nn__pool.started : workers;
    nn__pool.fn = fn;
    nn__pool.ctx = ctx;
    nn__pool.tasks = tasks;
    nn__pool.next = 0;
    NN__STORE(nn__pool.unfinished, tasks);
    NN__STORE(nn__pool.generation, nn__pool.generation + 1);
    pthread_cond_broadcast(&nn__pool_wake);
    nn__in_task = 1;
    nn__pool_drain();
    pthread_mutex_unlock(&nn__pool_lock);
    for (spin = 0; spin < NN__SPIN && NN__LOAD(nn__pool.unfinished) > 0; spin++) NN__PAUSE();
    pthread_mutex_lock(&nn__pool_lock);
    while (nn__pool.unfinished > 0) pthread_cond_wait(&nn__pool_done, &nn__pool_lock);
    nn__in_task = 0;
    pthread_mutex_unlock(&nn__pool_lock);
    pthread_mutex_unlock(&nn__pool_owner);
}

#endif /* NN_NO_THREADS */

/* ---- GEMM ------------------------------------------------------------------------
   Goto / BLIS structure (Goto & van de Geijn, "Anatomy of high-performance matrix
   multiplication"; Van Zee & van de Geijn, "BLIS"):

     for jc in N by NC:            B block  KC x NC   packed once per (jc, pc)  -> L3
       for pc in K by KC:
         pack op(B)[pc, jc] into NR-wide panels
         for ic in M by MC:        A block  MC x KC   packed                     -> L2
           pack op(A)[ic, pc] into MR-tall panels
           for jr in NC by NR:     one B panel KC x NR stays in L1
             for ir in MC by MR:   micro-kernel: MR x NR tile of C in registers

   Panels are zero-padded at the matrix edges, so the micro-kernel always computes a
   full MR x NR tile; a partial tile of C is written through a small buffer. Every
   element of C is accumulated over K in the same order (KC blocks, then k within a
   block) whatever the tile or thread it lands in, so splitting M or N over threads
   at MR / NR boundaries gives bit-identical results for any thread count. K is never
   split across threads. */

/* C[0..MR) x [0..NR) (row stride ldc) = alpha * Apanel * Bpanel + beta * C, where
   beta == 0 means C is not read. The epilogue multiplies and adds without fusing so
   that the partial-tile path (alpha = 1, beta = 0, then nn__tile_writeback) rounds
   exactly like a full tile. */
typedef void (*nn__micro_fn)(int kc, const float *a, const float *b, float *c, size_t ldc,
                             float alpha, float beta);

typedef struct nn__gemm_kernel {
    const char *name;
    nn__micro_fn micro;
    int mr, nr;         /* register tile */
    int mc, kc, nc;     /* cache blocks (multiples of mr / nr) */
} nn__gemm_kernel;

#define NN__MAX_MR 8
#define NN__MAX_NR 16

/* Set by the tests to compare the SIMD kernel with the portable one. */
static int nn__gemm_force_scalar;

static void nn__micro_scalar(int kc, const float *a, const float *b, float *c, size_t ldc,
                             float alpha, float beta)
{
    float acc[4][8];
    int p, i, j;
    memset(acc, 0, sizeof acc);
    for (p = 0; p < kc; p++, a += 4, b += 8)
        for (i = 0; i < 4; i++)
            for (j = 0; j < 8; j++) acc[i][j] += a[i] * b[j];
    for (i = 0; i < 4; i++, c += ldc)
        for (j = 0; j < 8; j++)
            c[j] = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[j];
}

/* Scalar blocks: a 4 x 8 tile; A block 128 x 256 (128 KiB, in L2), B panel 256 x 8. */
static const nn__gemm_kernel nn__kernel_scalar = { "scalar", nn__micro_scalar, 4, 8, 128, 256, 2048 };

#ifdef NN__X86
#include <immintrin.h>

/* 6 x 16 tile: 12 ymm accumulators, 2 for the B row, 1 for the broadcast A value. */
#define NN__AVX_ROW(i, lo, hi)                                                          \
    av = _mm256_broadcast_ss(a + (i));                                                  \
    lo = _mm256_fmadd_ps(av, b0, lo);                                                   \
    hi = _mm256_fmadd_ps(av, b1, hi);
#define NN__AVX_STEP                                                                    \
    b0 = _mm256_load_ps(b);                                                             \
    b1 = _mm256_load_ps(b + 8);                                                         \
    NN__AVX_ROW(0, c00, c01) NN__AVX_ROW(1, c10, c11) NN__AVX_ROW(2, c20, c21)          \
    NN__AVX_ROW(3, c30, c31) NN__AVX_ROW(4, c40, c41) NN__AVX_ROW(5, c50, c51)          \
    a += 6;                                                                             \
    b += 16;
#define NN__AVX_STORE(i, lo, hi)                                                        \
    if (beta == 0.0f) {                                                                 \
        _mm256_storeu_ps(c + (i) * ldc, _mm256_mul_ps(va, lo));                         \
        _mm256_storeu_ps(c + (i) * ldc + 8, _mm256_mul_ps(va, hi));                     \
    } else {                                                                            \
        _mm256_storeu_ps(c + (i) * ldc, _mm256_add_ps(_mm256_mul_ps(va, lo),            \
                         _mm256_mul_ps(vb, _mm256_loadu_ps(c + (i) * ldc))));           \
        _mm256_storeu_ps(c + (i) * ldc + 8, _mm256_add_ps(_mm256_mul_ps(va, hi),        \
                         _mm256_mul_ps(vb, _mm256_loadu_ps(c + (i) * ldc + 8))));       \
    }

__attribute__((target("avx2,fma")))
static void nn__micro_avx2(int kc, const float *a, const float *b, float *c, size_t ldc,
                           float alpha, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m256 b0, b1, av, va, vb;
    int p;
    for (p = 0; p < 6; p++) {
        _mm_prefetch((const char *)(c + p * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + p * ldc + 15), _MM_HINT_T0);
    }
    for (p = 0; p + 4 <= kc; p += 4) {
        NN__AVX_STEP NN__AVX_STEP NN__AVX_STEP NN__AVX_STEP
    }
    for (; p < kc; p++) {
        NN__AVX_STEP
    }
    va = _mm256_set1_ps(alpha);
    vb = _mm256_set1_ps(beta);
    NN__AVX_STORE(0, c00, c01) NN__AVX_STORE(1, c10, c11) NN__AVX_STORE(2, c20, c21)
    NN__AVX_STORE(3, c30, c31) NN__AVX_STORE(4, c40, c41) NN__AVX_STORE(5, c50, c51)
}

/* Zen 3: L1d 32 KiB, L2 512 KiB, L3 32 MiB (similar on Haswell..Zen 4).
   KC = 384: a B panel 384 x 16 (24 KiB) stays in L1 while A panels 384 x 6 (9 KiB)
   stream through; long K runs halve the C-tile loads/stores per FMA against KC 256.
   MC = 96: the A block 96 x 384 (144 KiB) sits in L2 next to the B panels.
   NC = 3072: the B block 384 x 3072 (4.5 MiB) stays in L3.
   Measured side by side (bench/gemm.c): 96/384 was as fast as or faster than 144/256,
   72/512 and 120/320 on square and conv shapes, within this machine's noise. */
static const nn__gemm_kernel nn__kernel_avx2 = { "avx2+fma", nn__micro_avx2, 6, 16, 96, 384, 3072 };
#endif /* NN__X86 */

#ifdef NN__NEON
#include <arm_neon.h>

/* 8 x 12 tile: 24 q-register accumulators, 2 for the A column, 3 for the B row. */
#define NN__NEON_ROW(r0, r1, r2, av, lane)                                              \
    r0 = vfmaq_laneq_f32(r0, b0, av, lane);                                             \
    r1 = vfmaq_laneq_f32(r1, b1, av, lane);                                             \
    r2 = vfmaq_laneq_f32(r2, b2, av, lane);
#define NN__NEON_STORE1(p, r)                                                           \
    vst1q_f32(p, beta == 0.0f ? vmulq_n_f32(r, alpha)                                   \
                              : vaddq_f32(vmulq_n_f32(r, alpha), vmulq_n_f32(vld1q_f32(p), beta)));
#define NN__NEON_STORE(i, r0, r1, r2)                                                   \
    NN__NEON_STORE1(c + (i) * ldc, r0)                                                  \
    NN__NEON_STORE1(c + (i) * ldc + 4, r1)                                              \
    NN__NEON_STORE1(c + (i) * ldc + 8, r2)

static void nn__micro_neon(int kc, const float *a, const float *b, float *c, size_t ldc,
                           float alpha, float beta)
{
    float32x4_t c00 = vdupq_n_f32(0.0f), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    float32x4_t c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    float32x4_t c40 = c00, c41 = c00, c42 = c00, c50 = c00, c51 = c00, c52 = c00;
    float32x4_t c60 = c00, c61 = c00, c62 = c00, c70 = c00, c71 = c00, c72 = c00;
    int p;
    for (p = 0; p < kc; p++, a += 8, b += 12) {
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        NN__NEON_ROW(c00, c01, c02, a0, 0) NN__NEON_ROW(c10, c11, c12, a0, 1)
        NN__NEON_ROW(c20, c21, c22, a0, 2) NN__NEON_ROW(c30, c31, c32, a0, 3)
        NN__NEON_ROW(c40, c41, c42, a1, 0) NN__NEON_ROW(c50, c51, c52, a1, 1)
        NN__NEON_ROW(c60, c61, c62, a1, 2) NN__NEON_ROW(c70, c71, c72, a1, 3)
    }
    NN__NEON_STORE(0, c00, c01, c02) NN__NEON_STORE(1, c10, c11, c12)
    NN__NEON_STORE(2, c20, c21, c22) NN__NEON_STORE(3, c30, c31, c32)
    NN__NEON_STORE(4, c40, c41, c42) NN__NEON_STORE(5, c50, c51, c52)
    NN__NEON_STORE(6, c60, c61, c62) NN__NEON_STORE(7, c70, c71, c72)
}

/* Typical aarch64 cores (64 KiB L1d, >= 1 MiB L2): B panel 256 x 12 (12 KiB) and
   A panel 256 x 8 in L1, A block 128 x 256 (128 KiB) in L2. */
static const nn__gemm_kernel nn__kernel_neon = { "neon", nn__micro_neon, 8, 12, 128, 256, 3072 };
#endif /* NN__NEON */

static const nn__gemm_kernel *nn__gemm_pick(void)
{
    if (nn__gemm_force_scalar) return &nn__kernel_scalar;
#if defined(NN__X86)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &nn__kernel_avx2;
#elif defined(NN__NEON)
    return &nn__kernel_neon;
#endif
    return &nn__kernel_scalar;
}

NNDEF const char *nn_simd_name(void) { return nn__gemm_pick()->name; }

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

/* Copies n floats; for the register-tile widths the size is a constant, so the
   compiler emits a few vector moves instead of a loop or a call. */
static void nn__copy_run(float *dst, const float *src, int n)
{
    switch (n) {
    case 4: memcpy(dst, src, 4 * sizeof(float)); break;
    case 6: memcpy(dst, src, 6 * sizeof(float)); break;
    case 8: memcpy(dst, src, 8 * sizeof(float)); break;
    case 12: memcpy(dst, src, 12 * sizeof(float)); break;
    case 16: memcpy(dst, src, 16 * sizeof(float)); break;
    default: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    }
}

/* Fills a w-wide panel from `lines` lines that run along K (line i at src + i*ld):
   dst[p*w + i] = line i [p], zero for i >= lines. This is op(A) not transposed and
   op(B) transposed. With the power-of-two strides of conv shapes, all lines fall in
   one cache set, so only four are read at a time (SSE: 4 x 4 transposes), then two,
   then one. */
static void nn__pack_gather(const float *src, int ld, int lines, int kb, int w, float *dst)
{
    int i = 0, p;
    if (lines < w) memset(dst, 0, (size_t)w * kb * sizeof(float));   /* padding lines */
#ifdef NN__X86
    for (; i + 4 <= lines; i += 4) {
        const float *l0 = src + (size_t)i * ld, *l1 = l0 + ld, *l2 = l1 + ld, *l3 = l2 + ld;
        float *d = dst + i;
        for (p = 0; p + 4 <= kb; p += 4, d += 4 * w) {
            __m128 r0 = _mm_loadu_ps(l0 + p), r1 = _mm_loadu_ps(l1 + p);
            __m128 r2 = _mm_loadu_ps(l2 + p), r3 = _mm_loadu_ps(l3 + p);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(d, r0);
            _mm_storeu_ps(d + w, r1);
            _mm_storeu_ps(d + 2 * w, r2);
            _mm_storeu_ps(d + 3 * w, r3);
        }
        for (; p < kb; p++, d += w) {
            d[0] = l0[p];
            d[1] = l1[p];
            d[2] = l2[p];
            d[3] = l3[p];
        }
    }
    for (; i + 2 <= lines; i += 2) {   /* e.g. rows 4 and 5 of a 6-row A panel */
        const float *l0 = src + (size_t)i * ld, *l1 = l0 + ld;
        float *d = dst + i;
        for (p = 0; p + 4 <= kb; p += 4, d += 4 * w) {
            __m128 r0 = _mm_loadu_ps(l0 + p), r1 = _mm_loadu_ps(l1 + p);
            __m128 lo = _mm_unpacklo_ps(r0, r1), hi = _mm_unpackhi_ps(r0, r1);
            _mm_storel_pi((__m64 *)d, lo);
            _mm_storeh_pi((__m64 *)(d + w), lo);
            _mm_storel_pi((__m64 *)(d + 2 * w), hi);
            _mm_storeh_pi((__m64 *)(d + 3 * w), hi);
        }
        for (; p < kb; p++, d += w) {
            d[0] = l0[p];
            d[1] = l1[p];
        }
    }
#endif
    for (; i < lines; i++) {
        const float *line = src + (size_t)i * ld;
        for (p = 0; p < kb; p++) dst[(size_t)p * w + i] = line[p];
    }
}

/* Fills the panels of a block whose K rows are contiguous (row p at src + p*ld holds
   `count` values): this is op(A) transposed and op(B) not transposed. Each row is read
   sequentially and dealt out w values at a time to consecutive panels (panel size
   w*kb); the last panel is zero-padded to w. */
static void nn__pack_deal(const float *src, int ld, int count, int kb, int w, float *dst)
{
    int j0, j, p;
    for (p = 0; p < kb; p++) {
        const float *row = src + (size_t)p * ld;
        float *d = dst + (size_t)p * w;
        for (j0 = 0; j0 + w <= count; j0 += w, d += (size_t)w * kb) nn__copy_run(d, row + j0, w);
        if (j0 < count) {
            for (j = 0; j < count - j0; j++) d[j] = row[j0 + j];
            for (; j < w; j++) d[j] = 0.0f;
        }
    }
}

/* Packs the mb x kb block of op(A) starting at a into mr-tall panels: panel r holds,
   for each p, the mr values op(A)[r*mr .. r*mr+mr-1][p]; rows past mb are zero. */
static void nn__pack_a(int trans, const float *a, int lda, int mb, int kb, int mr, float *dst)
{
    int i0;
    if (trans) {
        nn__pack_deal(a, lda, mb, kb, mr, dst);
        return;
    }
    for (i0 = 0; i0 < mb; i0 += mr, dst += (size_t)mr * kb)
        nn__pack_gather(a + (size_t)i0 * lda, lda, mb - i0 < mr ? mb - i0 : mr, kb, mr, dst);
}

/* Packs the kb x nb block of op(B) starting at b into nr-wide panels: panel q holds,
   for each p, the nr values op(B)[p][q*nr .. q*nr+nr-1]; columns past nb are zero. */
static void nn__pack_b(int trans, const float *b, int ldb, int kb, int nb, int nr, float *dst)
{
    int j0;
    if (!trans) {
        nn__pack_deal(b, ldb, nb, kb, nr, dst);
        return;
    }
    for (j0 = 0; j0 < nb; j0 += nr, dst += (size_t)nr * kb)
        nn__pack_gather(b + (size_t)j0 * ldb, ldb, nb - j0 < nr ? nb - j0 : nr, kb, nr, dst);
}

/* C = alpha * T + beta * C for the rows x cols corner of a tile T (row stride ldt). */
static void nn__tile_writeback(const float *t, int ldt, float *c, size_t ldc, int rows, int cols,
                               float alpha, float beta)
{
    int i, j;
    for (i = 0; i < rows; i++, t += ldt, c += ldc)
        for (j = 0; j < cols; j++)
            c[j] = beta == 0.0f ? alpha * t[j] : alpha * t[j] + beta * c[j];
}

static int nn__round_up(int x, int multiple) { return (x + multiple - 1) / multiple * multiple; }

/* Splits total into equal blocks of at most max_block, each rounded up to unit. */
static int nn__even_block(int total, int max_block, int unit)
{
    int blocks = (total + max_block - 1) / max_block;
    return nn__round_up((total + blocks - 1) / blocks, unit);
}

/* One micro-kernel call; a partial tile (rows < mr or cols < nr) goes through a buffer. */
static void nn__gemm_tile(const nn__gemm_kernel *kd, int kb, const float *ap, const float *bp,
                          float *c, int ldc, int rows, int cols, float alpha, float beta)
{
    float tile[NN__MAX_MR * NN__MAX_NR];
    if (rows == kd->mr && cols == kd->nr) {
        kd->micro(kb, ap, bp, c, (size_t)ldc, alpha, beta);
    } else {
        kd->micro(kb, ap, bp, tile, (size_t)kd->nr, 1.0f, 0.0f);
        nn__tile_writeback(tile, kd->nr, c, (size_t)ldc, rows, cols, alpha, beta);
    }
}

/* K blocks up to this long use the row-wise tile order (measured: +10..15% at K = 27
   and 64, -8% at K = 128). */
#define NN__SHORT_K 64

/* The single-threaded blocked GEMM (k > 0) on the calling thread's workspace. */
static void nn__gemm_blocked(const nn__gemm_kernel *kd, int trans_a, int trans_b, int m, int n,
                             int k, float alpha, const float *a, int lda, const float *b, int ldb,
                             float beta, float *c, int ldc)
{
    const int mr = kd->mr, nr = kd->nr;
    /* K blocks depend on k alone (never on the thread split): that fixes the order of
       the sums. MC and NC only choose which tiles share a packed block. */
    const int kc = nn__even_block(k, kd->kc, 1);
    const int mc = nn__even_block(m, kd->mc, mr), nc = nn__even_block(n, kd->nc, nr);
    const size_t a_size = (size_t)nn__round_up(mc * kc, 16), b_size = (size_t)nc * kc;
    float *a_pack = nn__workspace_get(a_size + b_size), *b_pack;
    int jc, pc, ic, jr, ir;
    if (!a_pack) {   /* out of memory: still give the right answer */
        nn_gemm_reference(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    b_pack = a_pack + a_size;
    for (jc = 0; jc < n; jc += nc) {
        int nb = n - jc < nc ? n - jc : nc;
        for (pc = 0; pc < k; pc += kc) {
            int kb = k - pc < kc ? k - pc : kc;
            float beta_block = pc == 0 ? beta : 1.0f;
            nn__pack_b(trans_b, trans_b ? b + (size_t)jc * ldb + pc : b + (size_t)pc * ldb + jc,
                       ldb, kb, nb, nr, b_pack);
            for (ic = 0; ic < m; ic += mc) {
                int mb = m - ic < mc ? m - ic : mc;
                nn__pack_a(trans_a, trans_a ? a + (size_t)pc * lda + ic : a + (size_t)ic * lda + pc,
                           lda, mb, kb, mr, a_pack);
                if (kb <= NN__SHORT_K) {
                    /* Short K: storing C dominates, so walk along C's rows (the A panel
                       stays in L1, B panels come from L2) rather than down its columns. */
                    for (ir = 0; ir < mb; ir += mr)
                        for (jr = 0; jr < nb; jr += nr)
                            nn__gemm_tile(kd, kb, a_pack + (size_t)ir * kb, b_pack + (size_t)jr * kb,
                                          c + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                                          mb - ir < mr ? mb - ir : mr, nb - jr < nr ? nb - jr : nr,
                                          alpha, beta_block);
                } else {
                    for (jr = 0; jr < nb; jr += nr)
                        for (ir = 0; ir < mb; ir += mr)
                            nn__gemm_tile(kd, kb, a_pack + (size_t)ir * kb, b_pack + (size_t)jr * kb,
                                          c + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                                          mb - ir < mr ? mb - ir : mr, nb - jr < nr ? nb - jr : nr,
                                          alpha, beta_block);
                }
            }
        }
    }
}

typedef struct nn__gemm_job {
    const nn__gemm_kernel *kd;
    int trans_a, trans_b, m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int split_n, parts, units;   /* split N in NR units (else M in MR units) into parts */
} nn__gemm_job;

static void nn__gemm_task(void *ctx, int task)
{
    const nn__gemm_job *g = (const nn__gemm_job *)ctx;
    int unit = g->split_n ? g->kd->nr : g->kd->mr, total = g->split_n ? g->n : g->m;
    int lo = (int)((long long)g->units * task / g->parts) * unit;
    int hi = (int)((long long)g->units * (task + 1) / g->parts) * unit;
    if (hi > total) hi = total;
    if (lo >= hi) return;
    if (g->split_n)
        nn__gemm_blocked(g->kd, g->trans_a, g->trans_b, g->m, hi - lo, g->k, g->alpha, g->a, g->lda,
                         g->trans_b ? g->b + (size_t)lo * g->ldb : g->b + lo, g->ldb,
                         g->beta, g->c + lo, g->ldc);
    else
        nn__gemm_blocked(g->kd, g->trans_a, g->trans_b, hi - lo, g->n, g->k, g->alpha,
                         g->trans_a ? g->a + lo : g->a + (size_t)lo * g->lda, g->lda, g->b, g->ldb,
                         g->beta, g->c + (size_t)lo * g->ldc, g->ldc);
}

NNDEF void nn_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb,
                   float beta, float *c, int ldc)
{
    nn__gemm_job g;
    int i, j;
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {   /* C = beta * C, without reading C when beta is 0 */
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++)
                c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    g.kd = nn__gemm_pick();
    g.trans_a = trans_a; g.trans_b = trans_b; g.m = m; g.n = n; g.k = k;
    g.lda = lda; g.ldb = ldb; g.ldc = ldc; g.alpha = alpha; g.beta = beta;
    g.a = a; g.b = b; g.c = c;
    /* Split the larger of M and N; below ~64^3 multiply-adds one thread is faster. */
    g.split_n = n >= m;
    g.units = g.split_n ? (n + g.kd->nr - 1) / g.kd->nr : (m + g.kd->mr - 1) / g.kd->mr;
    g.parts = (double)m * n * k < 262144.0 ? 1 : nn_get_threads();
    if (g.parts > g.units) g.parts = g.units;
    if (g.parts <= 1) nn__gemm_task(&g, 0);
    else nn__parallel(g.parts, nn__gemm_task, &g);
}

/* ---- im2col / col2im --------------------------------------------------------------
   Per kernel offset, the range of output positions whose input lies inside the image
   is computed once, so the inner loop is a plain (for stride 1, contiguous) copy. */

/* Output positions o in [0, out) with 0 <= o*stride - pad + offset < size: [*lo, *hi). */
static void nn__valid_range(int out, int size, int stride, int pad, int offset, int *lo, int *hi)
{
    int first = pad - offset, last = size - 1 + pad - offset, l, h;
    if (stride == 1) {   /* no divisions: this runs once per channel and kernel offset */
        l = first <= 0 ? 0 : first;
        h = last < 0 ? 0 : last + 1;
    } else {
        l = first <= 0 ? 0 : (first + stride - 1) / stride;
        h = last < 0 ? 0 : last / stride + 1;
    }
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Small outputs (the last layers of a conv net, e.g. 2x2): the row loops cost more
   than the copying, so the source offset of every (kernel offset, output) pair, or -1
   for padding, is worked out once and each channel becomes one flat loop. */
#define NN__IM2COL_MAP_MAX 256

static void nn__im2col_map(int height, int width, int kernel_h, int kernel_w, int stride_h,
                           int stride_w, int pad_h, int pad_w, int out_h, int out_w, int *map)
{
    int outputs = out_h * out_w, r, q;
    for (r = 0; r < kernel_h * kernel_w; r++)
        for (q = 0; q < outputs; q++) {
            int iy = q / out_w * stride_h - pad_h + r / kernel_w;
            int ix = q % out_w * stride_w - pad_w + r % kernel_w;
            *map++ = iy >= 0 && iy < height && ix >= 0 && ix < width ? iy * width + ix : -1;
        }
}

/* Stride 1 with out_h == height and out_w == width ("same" padding, e.g. 3x3 / pad 1):
   a col row is the image plane shifted by (ki - pad_h) rows and (kj - pad_w) columns,
   so its valid part is one contiguous copy from first to last valid entry; then the
   entries that wrapped around from a neighbouring image row are zeroed. Used for rows
   of 8 or more; below that the calls cost more than the general loops. */
static void nn__im2col_same(const float *img, int channels, int height, int width,
                            int kernel_h, int kernel_w, int pad_h, int pad_w, float *col, int ld_col)
{
    size_t plane = (size_t)height * width;
    int c, ki, kj, oy, ox, y_lo, y_hi, x_lo, x_hi;
    for (c = 0; c < channels; c++, img += plane) {
        for (ki = 0; ki < kernel_h; ki++) {
            nn__valid_range(height, height, 1, pad_h, ki, &y_lo, &y_hi);
            for (kj = 0; kj < kernel_w; kj++, col += ld_col) {
                size_t first, last;
                nn__valid_range(width, width, 1, pad_w, kj, &x_lo, &x_hi);
                if (y_lo >= y_hi || x_lo >= x_hi) {
                    memset(col, 0, plane * sizeof(float));
                    continue;
                }
                first = (size_t)y_lo * width + x_lo;
                last = (size_t)(y_hi - 1) * width + x_hi;
                memset(col, 0, first * sizeof(float));
                memcpy(col + first, img + (size_t)(y_lo + ki - pad_h) * width + (x_lo + kj - pad_w),
                       (last - first) * sizeof(float));
                memset(col + last, 0, (plane - last) * sizeof(float));
                if (x_lo > 0 || x_hi < width)
                    for (oy = y_lo; oy < y_hi; oy++) {
                        float *row = col + (size_t)oy * width;
                        for (ox = 0; ox < x_lo; ox++) row[ox] = 0.0f;
                        for (ox = x_hi; ox < width; ox++) row[ox] = 0.0f;
                    }
            }
        }
    }
}

NNDEF void nn_im2col(const float *img, int channels, int height, int width,
                     int kernel_h, int kernel_w, int stride_h, int stride_w,
                     int pad_h, int pad_w, float *col, int ld_col)
{
    int out_h = (height + 2 * pad_h - kernel_h) / stride_h + 1;
    int out_w = (width + 2 * pad_w - kernel_w) / stride_w + 1;
    int c, ki, kj, oy, ox, y_lo, y_hi, x_lo, x_hi;
    float *dst = col;
    if (stride_h == 1 && stride_w == 1 && out_h == height && out_w == width && width >= 8) {
        nn__im2col_same(img, channels, height, width, kernel_h, kernel_w, pad_h, pad_w, col, ld_col);
        return;
    }
    if (kernel_h * kernel_w * out_h * out_w <= NN__IM2COL_MAP_MAX) {
        int map[NN__IM2COL_MAP_MAX], r, q, outputs = out_h * out_w;
        nn__im2col_map(height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       out_h, out_w, map);
        for (c = 0; c < channels; c++, img += (size_t)height * width)
            for (r = 0; r < kernel_h * kernel_w; r++, col += ld_col)
                for (q = 0; q < outputs; q++) {
                    int at = map[r * outputs + q];
                    col[q] = at >= 0 ? img[at] : 0.0f;
                }
        return;
    }
    for (c = 0; c < channels; c++) {
        const float *plane = img + (size_t)c * height * width;
        for (ki = 0; ki < kernel_h; ki++) {
            nn__valid_range(out_h, height, stride_h, pad_h, ki, &y_lo, &y_hi);
            for (kj = 0; kj < kernel_w; kj++, dst += ld_col) {
                float *d = dst;
                nn__valid_range(out_w, width, stride_w, pad_w, kj, &x_lo, &x_hi);
                for (oy = 0; oy < out_h; oy++, d += out_w) {
                    /* src[i * stride_w] is the input under output lo + i; a row
                       outside the image gets the empty range */
                    int lo = 0, hi = 0;
                    const float *src = plane;
                    if (oy >= y_lo && oy < y_hi) {
                        lo = x_lo;
                        hi = x_hi;
                        src += (size_t)(oy * stride_h - pad_h + ki) * width + (lo * stride_w - pad_w + kj);
                    }
                    if (lo == 0 && hi == out_w) {
                        if (stride_w == 1)
                            for (ox = 0; ox < out_w; ox++) d[ox] = src[ox];
                        else
                            for (ox = 0; ox < out_w; ox++) d[ox] = src[ox * stride_w];
                    } else {
                        /* One pass with a select: separate short zero loops would
                           become memset calls that cost more than the row. */
                        for (ox = 0; ox < out_w; ox++)
                            d[ox] = ox >= lo && ox < hi ? src[(ox - lo) * stride_w] : 0.0f;
                    }
                }
            }
        }
    }
}

/* dst[i] += src[i] for i < n, 4 at a time (the compiler cannot prove the two rows
   apart, so it would not vectorize this at -O2). */
static void nn__add_row(float *dst, const float *src, int n)
{
    int i = 0;
#if defined(NN__X86)
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(dst + i, _mm_add_ps(_mm_loadu_ps(dst + i), _mm_loadu_ps(src + i)));
#elif defined(NN__NEON)
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, vaddq_f32(vld1q_f32(dst + i), vld1q_f32(src + i)));
#endif
    for (; i < n; i++) dst[i] += src[i];
}

NNDEF void nn_col2im(const float *col, int ld_col, int channels, int height, int width,
                     int kernel_h, int kernel_w, int stride_h, int stride_w,
                     int pad_h, int pad_w, float *img)
{
    int out_h = (height + 2 * pad_h - kernel_h) / stride_h + 1;
    int out_w = (width + 2 * pad_w - kernel_w) / stride_w + 1;
    int c, ki, kj, oy, ox, y_lo, y_hi, x_lo, x_hi;
    const float *row = col;
    if (kernel_h * kernel_w * out_h * out_w <= NN__IM2COL_MAP_MAX && out_w < 8) {
        int map[NN__IM2COL_MAP_MAX], r, q, outputs = out_h * out_w;
        nn__im2col_map(height, width, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       out_h, out_w, map);
        for (c = 0; c < channels; c++, img += (size_t)height * width)
            for (r = 0; r < kernel_h * kernel_w; r++, row += ld_col)
                for (q = 0; q < outputs; q++) {
                    int at = map[r * outputs + q];
                    if (at >= 0) img[at] += row[q];
                }
        return;
    }
    for (c = 0; c < channels; c++) {
        float *plane = img + (size_t)c * height * width;
        for (ki = 0; ki < kernel_h; ki++) {
            nn__valid_range(out_h, height, stride_h, pad_h, ki, &y_lo, &y_hi);
            for (kj = 0; kj < kernel_w; kj++, row += ld_col) {
                nn__valid_range(out_w, width, stride_w, pad_w, kj, &x_lo, &x_hi);
                if (stride_h == 1 && stride_w == 1 && x_lo == 0 && x_hi == width && out_w == width) {
                    /* whole rows, consecutive in both: one run */
                    if (y_lo < y_hi)
                        nn__add_row(plane + (size_t)(y_lo - pad_h + ki) * width + (kj - pad_w),
                                    row + (size_t)y_lo * out_w, (y_hi - y_lo) * width);
                    continue;
                }
                for (oy = y_lo; oy < y_hi; oy++) {
                    const float *s = row + (size_t)oy * out_w + x_lo;
                    float *dst = plane + (size_t)(oy * stride_h - pad_h + ki) * width
                                 + (x_lo * stride_w - pad_w + kj);
                    if (stride_w == 1)
                        nn__add_row(dst, s, x_hi - x_lo);
                    else
                        for (ox = 0; ox < x_hi - x_lo; ox++) dst[ox * stride_w] += s[ox];
                }
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
