/* nn_load_onnx_memory on any bytes. A refusal returns NULL with a sentence in
   nn_error(). What it accepts is a built net that runs a forward on a batch (of
   zeros) and, where its weights are finite (NaN weights load, as PyTorch's would),
   saves as an nn.h model file that nn_load_memory accepts and that saves again to the
   very same bytes. Seeds: ONNX models written by tests/onnx_model.h (make_corpus). */
#include <stdlib.h>
#include "fuzz.h"

#define FUZZ_BATCH 2   /* max_batch of the loaded nets */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    fuzz_init();
    return 0;
}

static int finite_weights(nn_net *net)
{
    int i;
    size_t k;
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        const nn_param *p = nn_get_param(net, i);
        for (k = 0; k < p->size; k++)
            if (!(p->value[k] - p->value[k] == 0.0f)) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_net *net, *again;
    unsigned char *a, *b;
    size_t na, nb, in;
    float *x;
    fuzz_clear_error();
    net = nn_load_onnx_memory(data, size, FUZZ_BATCH);
    if (!net) {
        fuzz_expect_failure(NN_ERR_FORMAT, "nn_load_onnx_memory");
        return 0;
    }
    in = nn_shape_size(nn_get_layer(net, 0)->in);
    x = (float *)calloc(FUZZ_BATCH * in, sizeof *x);
    FUZZ_CHECK(x != NULL, "calloc of %zu floats", FUZZ_BATCH * in);
    FUZZ_CHECK(nn_forward(net, x, FUZZ_BATCH) != NULL, "nn_forward of an imported net: %s", nn_error());
    free(x);
    if (finite_weights(net)) {
        FUZZ_CHECK(nn_save_memory(net, &a, &na) == NN_OK, "nn_save_memory of an imported net: %s", nn_error());
        again = nn_load_memory(a, na, FUZZ_BATCH);
        FUZZ_CHECK(again || fuzz_skip("roundtrip"), "nn_load_memory refuses an imported net's file: %s", nn_error());
        if (again) {
            FUZZ_CHECK(nn_save_memory(again, &b, &nb) == NN_OK, "nn_save_memory of a reloaded net: %s", nn_error());
            fuzz_expect_same("roundtrip", a, na, b, nb, "imported, saved, loaded and saved again");
            nn_free_buffer(b);
            nn_net_free(again);
        }
        nn_free_buffer(a);
    }
    nn_net_free(net);
    return 0;
}
