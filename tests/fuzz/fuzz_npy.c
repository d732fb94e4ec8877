/* tools/npy.h's reader on the input as a whole .npy file, through memory and through a
   file. Accepted: the input is a version 1.0 or 2.0 header of '<f4', C order, 1-4
   dimensions whose product times 4 is exactly the bytes after the header; the array
   holds those bytes; writing it again and reading that gives the same shape and bits.
   Refused: -1 with a sentence, the array zeroed, and the file reader says the same.
   Either way no allocation is larger than the input (so none can be giant). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

static size_t fuzz_npy_limit;   /* the input's size: no allocation may be larger */

static void *fuzz_npy_malloc(size_t size)
{
    FUZZ_CHECK(size <= fuzz_npy_limit + 1 && size <= FUZZ_MAX_ALLOC,
               "npy.h asked for %zu bytes for an input of %zu", size, fuzz_npy_limit);
    return malloc(size ? size : 1);
}
#define NPY_MALLOC(size) fuzz_npy_malloc(size)
#define NPY_FREE(p) free(p)
#define NPY_IMPLEMENTATION
#include "../../tools/npy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    npy_array a, b, c;
    size_t n = 1, offset, again_size;
    unsigned char *again;
    const char *path;
    char first[400];
    int st, k;
    fuzz_npy_limit = size;
    memset(&a, 0x5a, sizeof a);
    st = npy_read_memory(data, size, "in.npy", &a);
    snprintf(first, sizeof first, "%s", npy_error());
    path = fuzz_write_temp("in.npy", data, size);
    memset(&c, 0x5a, sizeof c);
    FUZZ_CHECK((npy_read(path, &c) == 0) == (st == 0), "the memory reader says %s, the file reader %s",
               st ? first : "accepted", npy_error());
    if (st != 0) {
        FUZZ_CHECK(strncmp(first, "in.npy: ", 8) == 0 && first[8], "a refusal without its sentence: \"%s\"", first);
        FUZZ_CHECK(!a.data && !a.ndim && !a.size && !c.data && !c.ndim, "a refused file left an array");
        return 0;
    }
    FUZZ_CHECK(size >= 10 && !memcmp(data, "\x93NUMPY", 6) && (data[6] == 1 || data[6] == 2) && !data[7],
               "accepted a file without the magic and a known version");
    FUZZ_CHECK(a.ndim >= 1 && a.ndim <= NPY_MAX_DIMS && a.data, "accepted with %d dimensions", a.ndim);
    for (k = 0; k < a.ndim; k++) {
        FUZZ_CHECK(a.shape[k] >= 1 && a.shape[k] == c.shape[k], "dimension %d: %d", k, a.shape[k]);
        n *= (size_t)a.shape[k];
    }
    FUZZ_CHECK(n == a.size && c.size == n && n * 4 <= size, "%zu elements in %zu bytes", a.size, size);
    offset = size - n * 4;
    FUZZ_CHECK(!memcmp(a.data, data + offset, n * 4) && !memcmp(c.data, a.data, n * 4),
               "the values are not the file's last %zu bytes", n * 4);
    FUZZ_CHECK(memchr(data, '\n', offset) && data[offset - 1] == '\n', "the header does not end in a newline");
    fuzz_npy_limit = (size_t)FUZZ_MAX_ALLOC;   /* the rewrite may pad more than the input did */
    FUZZ_CHECK(npy_write_memory(a.data, a.ndim, a.shape, &again, &again_size) == 0, "rewrite: %s", npy_error());
    FUZZ_CHECK(npy_read_memory(again, again_size, "again", &b) == 0, "reading the rewrite: %s", npy_error());
    FUZZ_CHECK(b.ndim == a.ndim && !memcmp(b.shape, a.shape, sizeof a.shape) && !memcmp(b.data, a.data, n * 4),
               "the rewrite reads back differently");
    npy_free_buffer(again);
    npy_free(&a);
    npy_free(&b);
    npy_free(&c);
    return 0;
}
