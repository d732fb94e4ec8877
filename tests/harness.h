/* A tiny test harness: TEST functions made of CHECKs, run by RUN in main().
   A test passes when none of its CHECKs failed. test_end() prints
   "<program>: N passed, N failed" and returns the exit status. */
#ifndef NN_TEST_HARNESS_H
#define NN_TEST_HARNESS_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

static int harness_passed, harness_failed, harness_test_failed;
static const char *harness_current;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            if (harness_test_failed < 5) {                                       \
                fprintf(stderr, "FAIL %s (%s:%d): %s: ", harness_current,        \
                        __FILE__, __LINE__, #cond);                              \
                fprintf(stderr, __VA_ARGS__);                                    \
                fputc('\n', stderr);                                             \
            }                                                                    \
            harness_test_failed++;                                               \
        }                                                                        \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
#define CHECK_NEAR(a, b, tol)                                                    \
    do {                                                                         \
        double harness_a = (a), harness_b = (b);                                 \
        double harness_scale = fabs(harness_b) > 1.0 ? fabs(harness_b) : 1.0;    \
        CHECK(fabs(harness_a - harness_b) <= (tol) * harness_scale,              \
              "%.9g vs %.9g (tol %g)", harness_a, harness_b, (double)(tol));     \
    } while (0)

#define RUN(test_fn)                                                             \
    do {                                                                         \
        harness_current = #test_fn;                                              \
        harness_test_failed = 0;                                                 \
        test_fn();                                                               \
        if (harness_test_failed) harness_failed++;                               \
        else harness_passed++;                                                   \
    } while (0)

static int test_end(const char *program)
{
    printf("%s: %d passed, %d failed\n", program, harness_passed, harness_failed);
    return harness_failed ? 1 : 0;
}
#endif
