/* tools/npy.h: NumPy's own files read (versions 1.0 and 2.0), written back byte for byte
   as NumPy writes them, round trips through memory and files, and a table of damaged
   headers, each refused with its sentence, nothing allocated beyond the file's size. */
#include <stdlib.h>
#include <string.h>

static size_t npy_largest_alloc;   /* the largest single allocation of npy.h */
static void *test_malloc(size_t size)
{
    if (size > npy_largest_alloc) npy_largest_alloc = size;
    return malloc(size);
}
#define NPY_MALLOC(size) test_malloc(size)
#define NPY_FREE(p) free(p)
#define NPY_IMPLEMENTATION
#include "tools/npy.h"
#include "harness.h"

/* Written by NumPy 1.24 (np.lib.format.write_array(f, a, version=...)) for
   [[1.5, -2, 3], [0.25, 1e-3, -7]] (1.0), [1, 2, 3] (2.0), arange(4).reshape(1, 2, 1, 2)
   - 1.5 (1.0). */
static const char numpy_2x3[153] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }       "
    "                                                   "
    "\x0a\x00\x00\xc0\x3f\x00\x00\x00\xc0\x00\x00@@\x00\x00\x80>o\x12\x83:\x00\x00\xe0\xc0";
static const char numpy_v2_3[141] =
    "\x93NUMPY\x02\x00t\x00\x00\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } "
    "                                                         "
    "\x0a\x00\x00\x80\x3f\x00\x00\x00@\x00\x00@@";
static const char numpy_1x2x1x2[145] =
    "\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 2), } "
    "                                                   "
    "\x0a\x00\x00\xc0\xbf\x00\x00\x00\xbf\x00\x00\x00\x3f\x00\x00\xc0\x3f";

static void test_reads_numpy_files(void)
{
    static const float v2x3[6] = {1.5f, -2, 3, 0.25f, 1e-3f, -7}, v3[3] = {1, 2, 3};
    static const float v4[4] = {-1.5f, -0.5f, 0.5f, 1.5f};
    npy_array a;
    int i;
    CHECK(npy_read_memory(numpy_2x3, sizeof numpy_2x3 - 1, "2x3", &a) == 0, "%s", npy_error());
    CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.size == 6 && a.data, "ndim %d", a.ndim);
    for (i = 0; a.data && i < 6; i++) CHECK(a.data[i] == v2x3[i], "[%d] %g", i, (double)a.data[i]);
    npy_free(&a);
    CHECK(a.data == NULL && a.ndim == 0, "npy_free did not zero the array");
    CHECK(npy_read_memory(numpy_v2_3, sizeof numpy_v2_3 - 1, "v2", &a) == 0, "%s", npy_error());
    CHECK(a.ndim == 1 && a.shape[0] == 3 && a.size == 3, "ndim %d", a.ndim);
    for (i = 0; a.data && i < 3; i++) CHECK(a.data[i] == v3[i], "[%d] %g", i, (double)a.data[i]);
    npy_free(&a);
    CHECK(npy_read_memory(numpy_1x2x1x2, sizeof numpy_1x2x1x2 - 1, "4d", &a) == 0, "%s", npy_error());
    CHECK(a.ndim == 4 && a.shape[0] == 1 && a.shape[1] == 2 && a.shape[2] == 1 && a.shape[3] == 2, "shape");
    for (i = 0; a.data && i < 4; i++) CHECK(a.data[i] == v4[i], "[%d] %g", i, (double)a.data[i]);
    npy_free(&a);
}

/* npy_write_memory gives NumPy's bytes exactly (the same dict text, padded to 64). */
static void test_writes_numpy_bytes(void)
{
    static const float v2x3[6] = {1.5f, -2, 3, 0.25f, 1e-3f, -7}, v4[4] = {-1.5f, -0.5f, 0.5f, 1.5f};
    static const int s2x3[2] = {2, 3}, s4[4] = {1, 2, 1, 2};
    unsigned char *file;
    size_t size;
    CHECK(npy_write_memory(v2x3, 2, s2x3, &file, &size) == 0, "%s", npy_error());
    CHECK(size == sizeof numpy_2x3 - 1 && !memcmp(file, numpy_2x3, size), "2x3: %zu bytes differ from NumPy's", size);
    npy_free_buffer(file);
    CHECK(npy_write_memory(v4, 4, s4, &file, &size) == 0, "%s", npy_error());
    CHECK(size == sizeof numpy_1x2x1x2 - 1 && !memcmp(file, numpy_1x2x1x2, size), "4d: %zu bytes differ", size);
    npy_free_buffer(file);
    CHECK(npy_write_memory(v4, 0, s4, &file, &size) != 0 && !file, "0 dimensions written");
    CHECK(npy_write_memory(v4, 5, s4, &file, &size) != 0 && !file, "5 dimensions written");
    {
        int bad[2] = {2, 0};
        CHECK(npy_write_memory(v4, 2, bad, &file, &size) != 0 && strstr(npy_error(), "dimension 1 is 0"), "%s",
              npy_error());
    }
}

/* Every rank, through memory and through a file; values with every bit pattern class. */
static void test_round_trips(void)
{
    static const int shapes[4][4] = {{7}, {3, 5}, {2, 3, 4}, {2, 3, 17, 11}};
    const char *path = "build/test_npy.npy";
    int r;
    for (r = 0; r < 4; r++) {
        size_t n = 1, i, size;
        float *v;
        unsigned char *file;
        npy_array a, b;
        int k;
        for (k = 0; k <= r; k++) n *= (size_t)shapes[r][k];
        v = (float *)malloc(n * sizeof *v);
        for (i = 0; i < n; i++) v[i] = (float)((int)(i * 2654435761u % 2001) - 1000) / 7.0f;
        v[0] = -0.0f;
        CHECK(npy_write_memory(v, r + 1, shapes[r], &file, &size) == 0, "%s", npy_error());
        CHECK((size - n * 4) % 64 == 0, "rank %d: data not aligned on 64 (header %zu)", r + 1, size - n * 4);
        CHECK(npy_read_memory(file, size, "mem", &a) == 0, "%s", npy_error());
        CHECK(npy_write(path, v, r + 1, shapes[r]) == 0, "%s", npy_error());
        CHECK(npy_read(path, &b) == 0, "%s", npy_error());
        CHECK(a.ndim == r + 1 && b.ndim == r + 1 && a.size == n && b.size == n, "rank %d", r + 1);
        for (k = 0; k <= r; k++) CHECK(a.shape[k] == shapes[r][k] && b.shape[k] == shapes[r][k], "dim %d", k);
        CHECK(a.data && b.data && !memcmp(a.data, v, n * 4) && !memcmp(b.data, v, n * 4), "rank %d values", r + 1);
        npy_free(&a);
        npy_free(&b);
        npy_free_buffer(file);
        free(v);
    }
    remove(path);
}

/* A file: version major (1 or 2), the header text (padded with spaces and a newline
   unless raw), then data_bytes bytes of data. */
static unsigned char *make_file(int version, const char *header, int raw, size_t data_bytes, size_t *size)
{
    size_t prefix = version == 2 ? 12 : 10, len = strlen(header), hlen = raw ? len : len + 1;
    unsigned char *f;
    if (!raw) hlen += (64 - (prefix + hlen) % 64) % 64;
    *size = prefix + hlen + data_bytes;
    f = (unsigned char *)calloc(1, *size + 1);
    memcpy(f, "\x93NUMPY", 6);
    f[6] = (unsigned char)version;
    f[8] = (unsigned char)hlen;
    f[9] = (unsigned char)(hlen >> 8);
    memset(f + prefix, ' ', hlen);
    memcpy(f + prefix, header, len);
    if (!raw) f[prefix + hlen - 1] = '\n';
    return f;
}

#define OK_DICT(shape) "{'descr': '<f4', 'fortran_order': False, 'shape': " shape ", }"

static void test_damaged_headers(void)
{
    static const struct {
        int version;
        const char *header;
        size_t data;
        const char *error;
    } table[] = {
        {1, OK_DICT("(2, 3)"), 24, NULL},                       /* the good one the rest are cut from */
        {1, "{\"shape\":(6,),\"fortran_order\":False,\"descr\":\"<f4\"}", 24, NULL},
        {2, OK_DICT("(1, 1, 1, 6)"), 24, NULL},
        {3, OK_DICT("(2, 3)"), 24, "version 3.0"},
        {1, OK_DICT("(2, 3)"), 20, "needs 24 data bytes but the file has 20"},
        {1, OK_DICT("(2, 3)"), 28, "needs 24 data bytes but the file has 28"},
        {1, OK_DICT("(2, 3)"), 0, "needs 24 data bytes"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }", 24, "dtype '>f4' is not '<f4'"},
        {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24, "dtype '<f8'"},
        {1, "{'descr': '|u1', 'fortran_order': False, 'shape': (24,), }", 24, "dtype '|u1'"},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }", 24, "quoted descr"},
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, "Fortran order"},
        {1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }", 24, "neither True nor False"},
        {1, "{'descr': '<f4', 'shape': (2, 3), }", 24, "'fortran_order' is missing"},
        {1, "{'descr': '<f4', 'fortran_order': False}", 24, "'shape' is missing"},
        {1, "{'fortran_order': False, 'shape': (6,)}", 24, "'descr' is missing"},
        {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", 24, "'descr' appears twice"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'shape': (6,)}", 24, "'shape' appears twice"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}", 24, "unknown key 'extra'"},
        {1, OK_DICT("()"), 4, "is () (a scalar)"},
        {1, OK_DICT("(6)"), 24, "not a tuple (no comma)"},
        {1, OK_DICT("[6]"), 24, "'shape' is not a tuple"},
        {1, OK_DICT("(1, 1, 1, 1, 6)"), 24, "more than 4 dimensions"},
        {1, OK_DICT("(2, 0)"), 0, "dimension 1 of 'shape' is 0"},
        {1, OK_DICT("(-6,)"), 24, "not a dimension"},
        {1, OK_DICT("(2 3)"), 24, "lacks a comma"},
        {1, OK_DICT("(06,)"), 24, "leading zero"},
        {1, OK_DICT("(99999999999999999999999,)"), 24, "larger than 2147483647"},
        {1, OK_DICT("(2147483648,)"), 24, "larger than 2147483647"},
        {1, OK_DICT("(65536, 65536, 65536, 65536)"), 24, "more than NPY_MAX_BYTES"},
        {1, OK_DICT("(2147483647, 2147483647)"), 24, "more than NPY_MAX_BYTES"},
        {1, "'descr': '<f4', 'fortran_order': False, 'shape': (6,)", 24, "not a dict"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", 24, "expected ',' or '}'"},
        {1, "{'descr' '<f4', 'fortran_order': False, 'shape': (6,)}", 24, "no ':' after the key 'descr'"},
        {1, "{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", 24, "dtype '<f4, ' is not"},
        {1, "{descr: '<f4', 'fortran_order': False, 'shape': (6,)}", 24, "quoted key"},
        {1, OK_DICT("(6,)") " x", 24, "bytes after the dict"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\xc3\xa9", 24, "not ASCII"},
    };
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t size;
        unsigned char *f = make_file(table[i].version, table[i].header, 0, table[i].data, &size);
        npy_array a;
        int st;
        FILE *out;
        npy_largest_alloc = 0;
        st = npy_read_memory(f, size, "damaged.npy", &a);
        if (!table[i].error) {
            CHECK(st == 0 && a.size == 6, "case %zu: %s", i, npy_error());
        } else {
            CHECK(st != 0 && strstr(npy_error(), table[i].error) && strstr(npy_error(), "damaged.npy"),
                  "case %zu: got \"%s\", expected \"%s\"", i, st ? npy_error() : "accepted", table[i].error);
            CHECK(!a.data && a.ndim == 0 && a.size == 0, "case %zu: the array is not zeroed", i);
        }
        npy_free(&a);
        /* The same through a file: same verdict, nothing allocated beyond the file. */
        out = fopen("build/test_npy_damaged.npy", "wb");
        CHECK(out && fwrite(f, 1, size, out) == size && fclose(out) == 0, "cannot write the file");
        st = npy_read("build/test_npy_damaged.npy", &a);
        CHECK((st == 0) == !table[i].error, "case %zu: npy_read says %s", i, st ? npy_error() : "accepted");
        CHECK(!table[i].error || strstr(npy_error(), table[i].error), "case %zu: npy_read: %s", i, npy_error());
        CHECK(npy_largest_alloc <= size, "case %zu: allocated %zu bytes for a file of %zu", i, npy_largest_alloc,
              size);
        npy_free(&a);
        free(f);
    }
    remove("build/test_npy_damaged.npy");
}

/* Damage outside the dict: the magic, the lengths, truncation. */
static void test_damaged_prefix(void)
{
    size_t size, cut;
    unsigned char *f = make_file(1, OK_DICT("(2, 3)"), 0, 24, &size);
    npy_array a;
    f[1] = 'n';
    CHECK(npy_read_memory(f, size, "x", &a) != 0 && strstr(npy_error(), "no \\x93NUMPY magic"), "%s", npy_error());
    f[1] = 'N';
    for (cut = 0; cut < size; cut++)   /* every truncation is refused */
        CHECK(npy_read_memory(f, cut, "x", &a) != 0 && !a.data, "cut at %zu accepted", cut);
    f[8] = 0xff; f[9] = 0xff;   /* header length 65535 in a 152-byte file */
    CHECK(npy_read_memory(f, size, "x", &a) != 0 && strstr(npy_error(), "header length 65535 but the file has 152"),
          "%s", npy_error());
    f[8] = 64; f[9] = 0;        /* a length that cuts the header short: no newline at its end */
    CHECK(npy_read_memory(f, size, "x", &a) != 0 && strstr(npy_error(), "newline"), "%s", npy_error());
    free(f);
    f = make_file(2, OK_DICT("(2, 3)"), 0, 24, &size);
    f[10] = 0x10;               /* version 2.0, header length 1 MiB + 116 */
    CHECK(npy_read_memory(f, size, "x", &a) != 0 && strstr(npy_error(), "over the limit of 65536"), "%s",
          npy_error());
    free(f);
    f = make_file(1, OK_DICT("(2, 3)"), 1, 24, &size);   /* no padding, no newline */
    CHECK(npy_read_memory(f, size, "x", &a) != 0 && strstr(npy_error(), "newline"), "%s", npy_error());
    free(f);
    CHECK(npy_read("build/no/such/file.npy", &a) != 0 && strstr(npy_error(), "cannot open"), "%s", npy_error());
    CHECK(npy_read(".", &a) != 0, "a directory was read");
    CHECK(npy_read_memory(NULL, 0, "x", &a) != 0 && !a.data, "NULL accepted");
}

int main(void)
{
    RUN(test_reads_numpy_files);
    RUN(test_writes_numpy_bytes);
    RUN(test_round_trips);
    RUN(test_damaged_headers);
    RUN(test_damaged_prefix);
    return test_end("test_npy");
}
