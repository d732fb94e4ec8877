/* The GEMM's per-thread packing workspace: a thread of the program's own that ran a
   GEMM (directly, or through nn_forward) gives its workspace back when it exits. */
#include <pthread.h>
#include <stdlib.h>

static long live_blocks;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static void *counted_malloc(size_t size)
{
    pthread_mutex_lock(&live_lock);
    live_blocks++;
    pthread_mutex_unlock(&live_lock);
    return malloc(size);
}
static void counted_free(void *p)
{
    pthread_mutex_lock(&live_lock);
    live_blocks--;
    pthread_mutex_unlock(&live_lock);
    free(p);
}
static long live(void)
{
    long n;
    pthread_mutex_lock(&live_lock);
    n = live_blocks;
    pthread_mutex_unlock(&live_lock);
    return n;
}
#define NN_MALLOC(size) counted_malloc(size)
#define NN_FREE(p) counted_free(p)
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

enum { SIZE = 96 };
static float a[SIZE * SIZE], b[SIZE * SIZE], c[SIZE * SIZE];

static void *one_gemm(void *status)
{
    *(nn_status *)status = nn_gemm(0, 0, SIZE, SIZE, SIZE, 1.0f, a, SIZE, b, SIZE, 0.0f, c, SIZE);
    return NULL;
}

static void test_thread_exit_frees_workspace(void)
{
    int round;
    long before = live();
    for (round = 0; round < 3; round++) {
        pthread_t thread;
        nn_status st = NN_ERR_STATE;
        CHECK(pthread_create(&thread, NULL, one_gemm, &st) == 0, "pthread_create");
        pthread_join(thread, NULL);
        CHECK(st == NN_OK, "%s", nn_error());
        CHECK(live() == before, "round %d: %ld blocks still live after the thread exited (%ld before)",
              round, live(), before);
    }
    CHECK(c[0] == c[0], "the product was computed");
}

static void test_release_then_exit(void)
{
    /* The calling thread's own workspace is kept for reuse: a second GEMM allocates nothing. */
    long after_first;
    pthread_t thread;
    nn_status st = NN_ERR_STATE;
    CHECK(nn_gemm(0, 0, SIZE, SIZE, SIZE, 1.0f, a, SIZE, b, SIZE, 0.0f, c, SIZE) == NN_OK, "%s", nn_error());
    after_first = live();
    CHECK(nn_gemm(0, 0, SIZE, SIZE, SIZE, 1.0f, a, SIZE, b, SIZE, 0.0f, c, SIZE) == NN_OK, "%s", nn_error());
    CHECK(live() == after_first, "a second GEMM on the same thread allocated");
    CHECK(pthread_create(&thread, NULL, one_gemm, &st) == 0, "pthread_create");
    pthread_join(thread, NULL);
    CHECK(st == NN_OK && live() == after_first, "another thread's GEMM left %ld blocks", live() - after_first);
}

int main(void)
{
    int i;
    nn_set_threads(1);   /* no pool: every workspace here is a program thread's own */
    for (i = 0; i < SIZE * SIZE; i++) {
        a[i] = (float)(i % 7) - 3.0f;
        b[i] = (float)(i % 5) - 2.0f;
    }
    RUN(test_thread_exit_frees_workspace);
    RUN(test_release_then_exit);
    return test_end("test_workspace");
}
