/* nn_load_memory on any bytes. Whatever it accepts holds no NaN and must round-trip:
   nn_save_memory writes a file (its header strict JSON) that nn_load_memory accepts
   again, and saving that second net gives the very same bytes. A refusal returns NULL with a sentence in
   nn_error(). */
#include <stdlib.h>
#include "fuzz.h"
#include "mutator.h"

#define FUZZ_BATCH 4   /* max_batch of the loaded nets */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_net *net, *again;
    unsigned char *a, *b;
    size_t na, nb;
    fuzz_clear_error();
    net = nn_load_memory(data, size, FUZZ_BATCH);
    if (!net) {
        fuzz_expect_failure(NN_ERR_FORMAT, "nn_load_memory");
        return 0;
    }
    fuzz_expect_no_nan(net, "nn_load_memory");
    if (nn_is_quantized(net)) {   /* the int8 ops run on what the file describes */
        size_t in = nn_shape_size(nn_get_layer(net, 0)->in), k;
        float *x = (float *)calloc(in, sizeof(float));
        const float *out;
        FUZZ_CHECK(x != NULL, "out of memory");
        out = nn_forward(net, x, 1);
        FUZZ_CHECK(out != NULL, "nn_forward of a loaded int8 net: %s", nn_error());
        for (k = 0; out && k < nn_shape_size(nn_output_shape(net)); k++)
            FUZZ_CHECK(out[k] == out[k], "an int8 net gave NaN");
        free(x);
    }
    FUZZ_CHECK(nn_save_memory(net, &a, &na) == NN_OK, "nn_save_memory of a loaded net: %s", nn_error());
    fuzz_expect_json_header(a, na, "nn_save_memory of a loaded net");
    again = nn_load_memory(a, na, FUZZ_BATCH);
    FUZZ_CHECK(again || fuzz_skip("roundtrip"), "nn_load_memory refuses what nn_save_memory wrote: %s",
               nn_error());
    if (again) {
        FUZZ_CHECK(nn_save_memory(again, &b, &nb) == NN_OK, "nn_save_memory of a reloaded net: %s", nn_error());
        fuzz_expect_same("roundtrip", a, na, b, nb, "saved, loaded and saved again");
        nn_free_buffer(b);
        nn_net_free(again);
    }
    nn_free_buffer(a);
    nn_net_free(net);
    return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    return fuzz_mutate_safetensors(data, size, max_size, seed, 0);
}
