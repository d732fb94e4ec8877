/* What the libFuzzer targets in tests/fuzz/ share (implemented in fuzz_common.c, which
   also compiles nn.h's implementation with a counting allocator).

   Every target checks more than the absence of crashes, and stops with
   __builtin_trap() (a "deadly signal" to libFuzzer, which then saves the input) when
   - an allocation of nn.h asks for more than FUZZ_MAX_ALLOC bytes at once, or the
     bytes nn.h holds at one time exceed FUZZ_MAX_LIVE;
   - a call fails without a status other than NN_OK or without a sentence in nn_error();
   - its own property fails (round trips, all-or-nothing loads: see each target).
   Build with `make fuzz-build`; `make fuzz` runs every target (tests/fuzz/run.sh). */
#ifndef NN_FUZZ_H
#define NN_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include "../../nn.h"

/* The caps of the counting allocator (fuzz_common.c; override with -D). A file of a
   few kilobytes never needs more. */
#ifndef FUZZ_MAX_ALLOC
#define FUZZ_MAX_ALLOC ((size_t)64 << 20)
#endif
#ifndef FUZZ_MAX_LIVE
#define FUZZ_MAX_LIVE ((size_t)64 << 20)
#endif

/* Prints "fuzz: <message>" and traps. */
void fuzz_fail(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((noreturn, format(printf, 1, 2)))
#endif
    ;
#define FUZZ_CHECK(cond, ...) do { if (!(cond)) fuzz_fail(__VA_ARGS__); } while (0)

/* One thread (the loaders do not need the pool). */
void fuzz_init(void);

/* To look past a known bug while it is being fixed, FUZZ_SKIP names checks to leave
   out, comma-separated: "cap" (an allocation over a cap fails as out of memory instead
   of trapping), "atomic" (a failed load may change the net and optimiser), "nan"
   (NaN parameters), "values" (a checkpoint's learning rate and step), "roundtrip",
   "json" (the saved header as strict JSON). */
int fuzz_skip(const char *check);

/* Empties nn_error()'s sentence, so that a failure that sets none is noticed. */
void fuzz_clear_error(void);
/* A call named `what` failed with status st: st must be a known status other than
   NN_OK, and nn_error() a sentence set since fuzz_clear_error(). */
void fuzz_expect_failure(nn_status st, const char *what);

/* A path "<tmp>/nn_fuzz_<pid>_<name>" (in /dev/shm where there is one), removed at exit. */
const char *fuzz_temp_path(const char *name);
/* Writes the bytes to fuzz_temp_path(name) and returns that path. */
const char *fuzz_write_temp(const char *name, const void *data, size_t size);
/* The whole file in a malloc'ed buffer (the caller frees it); traps if it cannot be read. */
unsigned char *fuzz_read_file(const char *path, size_t *size);
/* Traps if a parameter or buffer of the net holds a NaN (a loader must refuse those). */
void fuzz_expect_no_nan(nn_net *net, const char *what);
/* Traps unless the header of a safetensors file that nn.h wrote can be strict JSON:
   valid UTF-8 without control characters (JSON allows them in strings only escaped,
   and nn.h writes no whitespace but the padding spaces). */
void fuzz_expect_json_header(const unsigned char *file, size_t size, const char *what);
/* Traps unless the two byte strings are equal (or FUZZ_SKIP names check); what names
   them in the message. */
void fuzz_expect_same(const char *check, const unsigned char *a, size_t na, const unsigned char *b,
                      size_t nb, const char *what);

/* The fixed small net of the weights and checkpoint targets (make_corpus.c writes
   files for it): Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear, BatchNorm1d,
   Linear without bias on a 1x4x4 input, built for batches of FUZZ_NET_BATCH. */
#define FUZZ_NET_BATCH 2
nn_net *fuzz_net(void);
/* Optimiser kinds of the checkpoint target: 0 SGD, 1 SGD with Nesterov momentum,
   2 Adam, 3 AdamW, 4 Adamax. */
#define FUZZ_OPTIMS 5
nn_optim *fuzz_optim(nn_net *net, int kind);
/* steps training steps on a fixed batch, so that moments and statistics are not zero. */
void fuzz_train(nn_net *net, nn_optim *opt, int steps);
/* The checkpoint of (net, opt) as bytes (saved through a temporary file; the caller
   frees them). */
unsigned char *fuzz_checkpoint_bytes(nn_net *net, nn_optim *opt, size_t *size);
#endif
