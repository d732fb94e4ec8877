/* The checkpoint loader. The first byte picks one of FUZZ_OPTIMS (net, optimiser)
   pairs (fuzz_optim: SGD, SGD with momentum, Adam, AdamW, Adamax, each trained a few
   steps), the rest is the checkpoint. A refusal must leave the net and the optimiser
   exactly as they were (the bytes of nn_save_checkpoint compared: parameters,
   buffers, moments, step, learning rate, random state) and set a status and a
   sentence; what it accepts must hold no NaN parameter, a finite learning rate > 0
   and a step count >= 0, and must round-trip (saved, loaded, saved: the same bytes).
   After an accepted checkpoint the pair gets its first state back. */
#include <math.h>
#include <stdlib.h>
#include "fuzz.h"
#include "mutator.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed);

static nn_net *nets[FUZZ_OPTIMS];
static nn_optim *opts[FUZZ_OPTIMS];
static unsigned char *before[FUZZ_OPTIMS];   /* each pair's checkpoint before any load */
static size_t before_size[FUZZ_OPTIMS];

static nn_status load_checkpoint(nn_net *net, nn_optim *opt, const void *data, size_t size)
{
    return nn_load_checkpoint_memory(net, opt, data, size);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int k;
    (void)argc; (void)argv;
    fuzz_init();
    for (k = 0; k < FUZZ_OPTIMS; k++) {
        nets[k] = fuzz_net();
        opts[k] = fuzz_optim(nets[k], k);
        fuzz_train(nets[k], opts[k], 2);
        before[k] = fuzz_checkpoint_bytes(nets[k], opts[k], &before_size[k]);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *a, *b;
    size_t na, nb;
    nn_status st;
    int k;
    if (size < 1) return 0;
    k = data[0] % FUZZ_OPTIMS;
    fuzz_clear_error();
    st = load_checkpoint(nets[k], opts[k], data + 1, size - 1);
    if (st != NN_OK) {
        fuzz_expect_failure(st, "nn_load_checkpoint");
        a = fuzz_checkpoint_bytes(nets[k], opts[k], &na);
        fuzz_expect_same("atomic", before[k], before_size[k], a, na,
                         "the net and optimiser before and after a failed nn_load_checkpoint");
        free(a);
        return 0;
    }
    fuzz_expect_no_nan(nets[k], "nn_load_checkpoint");
    FUZZ_CHECK(fuzz_skip("values") ||
               (nn_optim_get_lr(opts[k]) >= 0 && isfinite(nn_optim_get_lr(opts[k])) && nn_optim_steps(opts[k]) >= 0),
               "nn_load_checkpoint accepted the learning rate %g and the step count %ld",
               (double)nn_optim_get_lr(opts[k]), nn_optim_steps(opts[k]));
    a = fuzz_checkpoint_bytes(nets[k], opts[k], &na);
    st = load_checkpoint(nets[k], opts[k], a, na);
    FUZZ_CHECK(st == NN_OK || fuzz_skip("roundtrip"), "nn_load_checkpoint refuses what nn_save_checkpoint wrote: %s",
               nn_error());
    b = fuzz_checkpoint_bytes(nets[k], opts[k], &nb);
    fuzz_expect_same("roundtrip", a, na, b, nb, "checkpoint saved, loaded and saved again");
    free(a);
    free(b);
    FUZZ_CHECK(load_checkpoint(nets[k], opts[k], before[k], before_size[k]) == NN_OK,
               "the pair's own first checkpoint does not load: %s", nn_error());
    return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
    return fuzz_mutate_safetensors(data, size, max_size, seed, 1);   /* after the optimiser byte */
}
