/* nn_idx_load on two files cut from the input: its first two bytes (little-endian)
   say how many of the remaining bytes form the images file, the rest is the labels
   file. Accepted: the headers are those of u8 IDX files (3 and 1 dimensions, the same
   count), the sizes match them, and the set holds exactly those bytes with
   num_classes = largest label + 1. Refused: a status, a sentence, the set zeroed. */
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_init();
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *images, *labels;
    size_t images_size, labels_size, n, pixels, i;
    const char *images_path, *labels_path;
    nn_dataset ds, zero;
    nn_status st;
    int max_label = 0;
    if (size < 2) return 0;
    images = data + 2;
    images_size = (size_t)data[0] | (size_t)data[1] << 8;
    if (images_size > size - 2) images_size = size - 2;
    labels = images + images_size;
    labels_size = size - 2 - images_size;
    images_path = fuzz_write_temp("images.idx", images, images_size);
    labels_path = fuzz_write_temp("labels.idx", labels, labels_size);
    memset(&zero, 0, sizeof zero);
    memset(&ds, 0x5a, sizeof ds);   /* the loader overwrites *out without reading it */
    fuzz_clear_error();
    st = nn_idx_load(images_path, labels_path, &ds);
    if (st != NN_OK) {
        fuzz_expect_failure(st, "nn_idx_load");
        FUZZ_CHECK(memcmp(&ds, &zero, sizeof ds) == 0, "a failed nn_idx_load left the set not zeroed");
        return 0;
    }
    FUZZ_CHECK(images_size >= 16 && labels_size >= 8 && be32(images) == 0x803 && be32(labels) == 0x801,
               "nn_idx_load accepted headers that are not u8 IDX ones (%zu and %zu bytes)", images_size,
               labels_size);
    n = be32(images + 4);
    pixels = (size_t)be32(images + 8) * be32(images + 12);
    FUZZ_CHECK(n == be32(labels + 4) && images_size == 16 + n * pixels && labels_size == 8 + n,
               "nn_idx_load accepted sizes %zu and %zu for %zu images of %zu pixels", images_size,
               labels_size, n, pixels);
    FUZZ_CHECK(ds.n >= 0 && (size_t)ds.n == n && ds.shape.c == 1 && (uint32_t)ds.shape.h == be32(images + 8) &&
               (uint32_t)ds.shape.w == be32(images + 12) && ds.x && ds.y && !ds.order,
               "accepted %zu images as n=%d shape %dx%dx%d", n, ds.n, ds.shape.c, ds.shape.h, ds.shape.w);
    for (i = 0; i < n * pixels; i++)
        FUZZ_CHECK(ds.x[i] == (float)images[16 + i], "pixel %zu: byte %d loaded as %g", i, images[16 + i],
                   (double)ds.x[i]);
    for (i = 0; i < n; i++) {
        FUZZ_CHECK(ds.y[i] == labels[8 + i], "label %zu: byte %d loaded as %d", i, labels[8 + i], ds.y[i]);
        if (labels[8 + i] > max_label) max_label = labels[8 + i];
    }
    FUZZ_CHECK(ds.num_classes == max_label + 1, "num_classes %d, largest label %d", ds.num_classes, max_label);
    nn_dataset_free(&ds);
    return 0;
}
