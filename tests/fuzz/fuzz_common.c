/* The fuzz targets' shared code, and nn.h's implementation on a counting allocator. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fuzz.h"

/* ---- The counting allocator: each block carries its size in a 16-byte header
   (malloc's alignment is kept); nn.h aligns on top of it. */

static size_t fuzz_live;   /* bytes nn.h holds now */

/* Coverage for memory: libFuzzer counts these like its own edge counters, so an input
   that makes a larger allocation (by powers of two), holds more at once, or allocates
   more often than any before it is kept, and the fuzzer climbs towards the caps
   instead of meeting them only by chance. */
#if defined(__linux__) && (defined(__clang__) || defined(__GNUC__))
__attribute__((section("__libfuzzer_extra_counters")))
#endif
static unsigned char fuzz_memory_counters[2][64];

static int fuzz_log2(size_t v)
{
    int k = 0;
    while (v >>= 1) k++;
    return k;
}

static void *fuzz_malloc(size_t size)
{
    unsigned char *p;
    unsigned char *single = &fuzz_memory_counters[0][fuzz_log2(size)];
    *single = (unsigned char)(*single + (*single < 255));
    if (size > FUZZ_MAX_ALLOC || fuzz_live + size > FUZZ_MAX_LIVE) {
        if (fuzz_skip("cap")) return NULL;
        if (size > FUZZ_MAX_ALLOC)
            fuzz_fail("nn.h asked for %zu bytes at once, over FUZZ_MAX_ALLOC (%zu)", size,
                      (size_t)FUZZ_MAX_ALLOC);
        fuzz_fail("nn.h would hold %zu bytes (%zu more), over FUZZ_MAX_LIVE (%zu)",
                  fuzz_live + size, size, (size_t)FUZZ_MAX_LIVE);
    }
    if (!(p = (unsigned char *)malloc(size + 16))) return NULL;
    memcpy(p, &size, sizeof size);
    fuzz_live += size;
    fuzz_memory_counters[1][fuzz_log2(fuzz_live)] = 1;
    return p + 16;
}

static void fuzz_free(void *block)
{
    size_t size;
    unsigned char *p = (unsigned char *)block;
    if (!p) return;
    p -= 16;
    memcpy(&size, p, sizeof size);
    fuzz_live -= size;
    free(p);
}

#define NN_MALLOC(size) fuzz_malloc(size)
#define NN_FREE(p) fuzz_free(p)
/* The documented cap on what one build may allocate, set below the harness's own caps
   so that a file the loaders accept can never make nn.h hold more than FUZZ_MAX_LIVE. */
#define NN_MAX_BUILD_BYTES (FUZZ_MAX_LIVE / 2)
#define NN_IMPLEMENTATION
#include "../../nn.h"

/* ---- Checks ---------------------------------------------------------------------- */

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("fuzz: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    __builtin_trap();
}

void fuzz_clear_error(void) { nn__error_text[0] = 0; }   /* the one use of nn.h's internals */

void fuzz_expect_failure(nn_status st, const char *what)
{
    const char *e = nn_error();
    FUZZ_CHECK(st != NN_OK, "%s failed but returned NN_OK", what);
    FUZZ_CHECK(strcmp(nn_status_name(st), "NN_ERR_UNKNOWN") != 0, "%s returned status %d, not an nn_status",
               what, (int)st);
    FUZZ_CHECK(strcmp(e, "no error") != 0 && strlen(e) >= 8 && strchr(e, ' '),
               "%s failed (%s) without a sentence in nn_error(): '%s'", what, nn_status_name(st), e);
}

void fuzz_expect_same(const char *check, const unsigned char *a, size_t na, const unsigned char *b,
                      size_t nb, const char *what)
{
    size_t i = 0;
    if ((na == nb && (na == 0 || memcmp(a, b, na) == 0)) || fuzz_skip(check)) return;
    while (i < na && i < nb && a[i] == b[i]) i++;
    fuzz_fail("%s: %zu and %zu bytes, first difference at byte %zu", what, na, nb, i);
}

void fuzz_expect_no_nan(nn_net *net, const char *what)
{
    int i;
    size_t k;
    if (fuzz_skip("nan")) return;
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        const nn_param *p = nn_get_param(net, i);
        for (k = 0; k < p->size; k++)
            FUZZ_CHECK(p->value[k] == p->value[k], "%s accepted a NaN in '%s'", what, p->name);
    }
}

void fuzz_expect_json_header(const unsigned char *file, size_t size, const char *what)
{
    uint64_t n = 0;
    size_t i = 8;
    int k;
    if (fuzz_skip("json")) return;
    FUZZ_CHECK(size >= 8, "%s: %zu bytes", what, size);
    for (k = 0; k < 8; k++) n |= (uint64_t)file[k] << (8 * k);
    FUZZ_CHECK(n <= size - 8, "%s: a header of %llu bytes in %zu", what, (unsigned long long)n, size);
    while (i < 8 + n) {
        unsigned char c = file[i];
        int more = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
        FUZZ_CHECK(c >= 0x20, "%s: control character 0x%02x at header byte %zu", what, c, i - 8);
        FUZZ_CHECK(more >= 0 && (c & 0xfe) != 0xc0 && c < 0xf5 && i + more < 8 + n,
                   "%s: not UTF-8 at header byte %zu", what, i - 8);
        for (i++; more > 0; more--, i++)
            FUZZ_CHECK((file[i] & 0xc0) == 0x80, "%s: not UTF-8 at header byte %zu", what, i - 8);
    }
}

/* ---- Temporary files ------------------------------------------------------------- */

#define FUZZ_MAX_TEMPS 8
static char fuzz_temps[FUZZ_MAX_TEMPS][256];
static int fuzz_num_temps;

static void fuzz_remove_temps(void)
{
    int i;
    for (i = 0; i < fuzz_num_temps; i++) remove(fuzz_temps[i]);
}

const char *fuzz_temp_path(const char *name)
{
    struct stat st;
    const char *dir = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    char path[256];
    int i;
    snprintf(path, sizeof path, "%s/nn_fuzz_%ld_%s", dir, (long)getpid(), name);
    for (i = 0; i < fuzz_num_temps; i++)
        if (!strcmp(fuzz_temps[i], path)) return fuzz_temps[i];
    FUZZ_CHECK(fuzz_num_temps < FUZZ_MAX_TEMPS, "more than %d temporary files", FUZZ_MAX_TEMPS);
    if (fuzz_num_temps == 0) atexit(fuzz_remove_temps);
    strcpy(fuzz_temps[fuzz_num_temps], path);
    return fuzz_temps[fuzz_num_temps++];
}

const char *fuzz_write_temp(const char *name, const void *data, size_t size)
{
    const char *path = fuzz_temp_path(name);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s", path);
    return path;
}

unsigned char *fuzz_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *data;
    long len;
    FUZZ_CHECK(f && fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0,
               "cannot read %s", path);
    data = (unsigned char *)malloc((size_t)len + 1);
    FUZZ_CHECK(data && fread(data, 1, (size_t)len, f) == (size_t)len, "cannot read %s", path);
    fclose(f);
    *size = (size_t)len;
    return data;
}

void fuzz_init(void) { nn_set_threads(1); }

int fuzz_skip(const char *check)
{
    const char *list = getenv("FUZZ_SKIP"), *at;
    size_t n = strlen(check);
    for (at = list ? strstr(list, check) : NULL; at; at = strstr(at + 1, check))
        if ((at == list || at[-1] == ',') && (at[n] == 0 || at[n] == ',')) return 1;
    return 0;
}

/* ---- The fixed net and its optimisers -------------------------------------------- */

nn_net *fuzz_net(void)
{
    nn_net *net = nn_net_new(nn_shape3(1, 4, 4));
    nn_layer_desc last = nn_linear(3);
    last.no_bias = 1;
    FUZZ_CHECK(net, "nn_net_new: %s", nn_error());
    nn_add(net, nn_conv2d(2, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(4));
    nn_add(net, nn_batchnorm());
    nn_add(net, last);
    FUZZ_CHECK(nn_build(net, FUZZ_NET_BATCH, 7) == NN_OK, "building the fixed net: %s", nn_error());
    return net;
}

nn_optim *fuzz_optim(nn_net *net, int kind)
{
    nn_sgd_desc sgd;
    nn_adam_desc adam;
    nn_optim *opt = NULL;
    memset(&sgd, 0, sizeof sgd);
    memset(&adam, 0, sizeof adam);
    sgd.lr = 0.05f;
    adam.lr = 0.01f;
    switch (kind) {
    case 0: opt = nn_sgd(net, sgd); break;
    case 1: sgd.momentum = 0.9f; sgd.nesterov = 1; opt = nn_sgd(net, sgd); break;
    case 2: opt = nn_adam(net, adam); break;
    case 3: opt = nn_adamw(net, adam); break;
    default: opt = nn_adamax(net, adam); break;
    }
    FUZZ_CHECK(opt, "optimiser %d: %s", kind, nn_error());
    return opt;
}

void fuzz_train(nn_net *net, nn_optim *opt, int steps)
{
    float x[FUZZ_NET_BATCH * 16];
    int y[FUZZ_NET_BATCH] = { 0, 2 }, i;
    for (i = 0; i < FUZZ_NET_BATCH * 16; i++) x[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
    for (i = 0; i < steps; i++) nn_train_step(net, opt, x, y, FUZZ_NET_BATCH);
}

unsigned char *fuzz_checkpoint_bytes(nn_net *net, nn_optim *opt, size_t *size)
{
    const char *path = fuzz_temp_path("state.ckpt");
    nn_status st = nn_save_checkpoint(net, opt, path);
    FUZZ_CHECK(st == NN_OK, "nn_save_checkpoint: %s", nn_error());
    return fuzz_read_file(path, size);
}
