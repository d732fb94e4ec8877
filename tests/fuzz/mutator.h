/* A libFuzzer custom mutator for the model-file targets. A safetensors file starts with
   the length of its JSON header, so a byte inserted into or removed from the header
   makes the file unreadable at its first check: byte-level mutation alone seldom gets
   past it. Half of the mutations here act on the header alone (after `prefix` bytes of
   the target's own) and rewrite the length to match, keeping the data section; the
   other half are libFuzzer's usual ones on the whole input. Include in one target. */
#ifndef NN_FUZZ_MUTATOR_H
#define NN_FUZZ_MUTATOR_H
#include <stdlib.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static size_t fuzz_mutate_safetensors(uint8_t *data, size_t size, size_t max_size, unsigned seed,
                                      size_t prefix)
{
    uint64_t n = 0;
    size_t body, m;
    uint8_t *saved;
    int k;
    if (seed % 2 == 0 || size < prefix + 8) return LLVMFuzzerMutate(data, size, max_size);
    for (k = 0; k < 8; k++) n |= (uint64_t)data[prefix + k] << (8 * k);
    if (n > size - prefix - 8) return LLVMFuzzerMutate(data, size, max_size);
    body = size - prefix - 8 - (size_t)n;
    if (!(saved = (uint8_t *)malloc(body + 1))) return LLVMFuzzerMutate(data, size, max_size);
    memcpy(saved, data + prefix + 8 + n, body);
    m = LLVMFuzzerMutate(data + prefix + 8, (size_t)n, max_size - prefix - 8 - body);
    memcpy(data + prefix + 8 + m, saved, body);
    free(saved);
    for (k = 0; k < 8; k++) data[prefix + k] = (uint8_t)((uint64_t)m >> (8 * k));
    return prefix + 8 + m + body;
}
#endif
