/* nn_load_weights_memory into the fixed net of fuzz_net(). A refusal must leave the
   net exactly as it was (nn_save_memory's bytes compared) and set a status and a
   sentence; what it accepts holds no NaN and must round-trip (saved, loaded into the
   net again, saved: the same bytes). After an accepted file the net gets its first weights back. */
#include <stdlib.h>
#include "fuzz.h"
#include "mutator.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);

static nn_net *net;
static unsigned char *before;   /* nn_save_memory of the net before any load */
static size_t before_size;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_init();
    net = fuzz_net();
    FUZZ_CHECK(nn_save_memory(net, &before, &before_size) == NN_OK, "nn_save_memory: %s", nn_error());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *a, *b;
    size_t na, nb;
    nn_status st;
    fuzz_clear_error();
    st = nn_load_weights_memory(net, data, size);
    if (st != NN_OK) {
        fuzz_expect_failure(st, "nn_load_weights_memory");
        FUZZ_CHECK(nn_save_memory(net, &a, &na) == NN_OK, "nn_save_memory: %s", nn_error());
        fuzz_expect_same("atomic", before, before_size, a, na,
                         "the net before and after a failed nn_load_weights_memory");
        nn_free_buffer(a);
        return 0;
    }
    fuzz_expect_no_nan(net, "nn_load_weights_memory");
    FUZZ_CHECK(nn_save_memory(net, &a, &na) == NN_OK, "nn_save_memory: %s", nn_error());
    st = nn_load_weights_memory(net, a, na);
    FUZZ_CHECK(st == NN_OK || fuzz_skip("roundtrip"), "nn_load_weights_memory refuses what nn_save_memory wrote: %s",
               nn_error());
    FUZZ_CHECK(nn_save_memory(net, &b, &nb) == NN_OK, "nn_save_memory: %s", nn_error());
    fuzz_expect_same("roundtrip", a, na, b, nb, "weights saved, loaded and saved again");
    nn_free_buffer(a);
    nn_free_buffer(b);
    FUZZ_CHECK(nn_load_weights_memory(net, before, before_size) == NN_OK,
               "the net's own first weights do not load: %s", nn_error());
    return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    return fuzz_mutate_safetensors(data, size, max_size, seed, 0);
}
