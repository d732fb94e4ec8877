/* nn_cifar10_load_files on a file holding the input after its first byte, given
   1 + first byte % 3 times (the files are concatenated). Accepted: every record is a
   label < 10 and 3072 pixel bytes, and the set holds exactly those values. Refused:
   a status, a sentence, and the set left zeroed. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *paths[3];
    nn_dataset ds, zero;
    size_t records, r, i, file_size;
    int copies, c;
    nn_status st;
    if (size < 1) return 0;
    copies = 1 + data[0] % 3;
    file_size = size - 1;
    paths[0] = paths[1] = paths[2] = fuzz_write_temp("data.bin", data + 1, file_size);
    memset(&zero, 0, sizeof zero);
    memset(&ds, 0x5a, sizeof ds);   /* the loader overwrites *out without reading it */
    fuzz_clear_error();
    st = nn_cifar10_load_files(paths, copies, &ds);
    if (st != NN_OK) {
        fuzz_expect_failure(st, "nn_cifar10_load_files");
        FUZZ_CHECK(memcmp(&ds, &zero, sizeof ds) == 0, "a failed nn_cifar10_load_files left the set not zeroed");
        return 0;
    }
    records = file_size / NN_CIFAR10_RECORD;
    FUZZ_CHECK(file_size > 0 && file_size % NN_CIFAR10_RECORD == 0,
               "nn_cifar10_load_files accepted a file of %zu bytes", file_size);
    FUZZ_CHECK(ds.n >= 0 && (size_t)ds.n == copies * records && ds.shape.c == 3 && ds.shape.h == 32 &&
               ds.shape.w == 32 && ds.num_classes == 10 && ds.x && ds.y && !ds.order,
               "accepted %zu records x %d as n=%d shape %dx%dx%d classes %d", records, copies, ds.n,
               ds.shape.c, ds.shape.h, ds.shape.w, ds.num_classes);
    for (c = 0; c < copies; c++)
        for (r = 0; r < records; r++) {
            const uint8_t *rec = data + 1 + r * NN_CIFAR10_RECORD;
            size_t at = (size_t)c * records + r;
            const float *x = ds.x + at * (NN_CIFAR10_RECORD - 1);
            FUZZ_CHECK(rec[0] < 10 && ds.y[at] == rec[0], "record %zu: label byte %d loaded as %d", at,
                       rec[0], ds.y[at]);
            for (i = 0; i < NN_CIFAR10_RECORD - 1; i++)
                FUZZ_CHECK(x[i] == (float)rec[1 + i], "record %zu pixel %zu: byte %d loaded as %g", at, i,
                           rec[1 + i], (double)x[i]);
        }
    nn_dataset_free(&ds);
    return 0;
}
