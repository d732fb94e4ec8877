/* Shared by the example programs: flag parsing, the progress line, the CSV log of the
   curves and the final summary. Include after nn.h. The functions are static inline,
   so a program that uses only some of them draws no unused-function warning. */
#ifndef NN_EXAMPLES_COMMON_H
#define NN_EXAMPLES_COMMON_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *const cifar10_classes[10] = {
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck"
};

static inline double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- Flags: "--name value"; a bad value is a one-line message and exit status 2. ---- */

static inline void usage_error(const char *program, const char *fmt, const char *what)
{
    fprintf(stderr, "%s: ", program);
    fprintf(stderr, fmt, what);
    fprintf(stderr, " (try --help)\n");
    exit(2);
}

static inline long flag_long(const char *program, const char *name, const char *value, long lo, long hi)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: --%s expects an integer in [%ld, %ld], got '%s'\n", program, name, lo, hi, value);
        exit(2);
    }
    return v;
}

static inline float flag_float(const char *program, const char *name, const char *value, double lo, double hi)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(value, &end);
    if (errno || end == value || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "%s: --%s expects a number in [%g, %g], got '%s'\n", program, name, lo, hi, value);
        exit(2);
    }
    return (float)v;
}

/* Comma-separated positive integers, e.g. "100,100"; returns the count. */
static inline int flag_int_list(const char *program, const char *name, const char *value, int *out, int max)
{
    int count = 0;
    const char *p = value;
    while (*p) {
        char item[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item || count == max) {
            fprintf(stderr, "%s: --%s expects up to %d comma-separated positive integers, got '%s'\n",
                    program, name, max, value);
            exit(2);
        }
        memcpy(item, p, len);
        item[len] = 0;
        out[count++] = (int)flag_long(program, name, item, 1, 1000000);
        p += len;
        if (*p == ',') p++;
    }
    if (!count) usage_error(program, "--%s expects at least one value", name);
    return count;
}

/* Creates a directory if it does not exist (one level). */
static inline int ensure_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

/* ---- Curves: kept in memory for the plot, and written to a CSV as they come. ---- */

typedef struct curves {
    FILE  *csv;
    int    n, cap;
    float *step, *train_loss, *train_acc, *test_loss, *test_acc;
} curves;

static inline int curves_open(curves *c, const char *csv_path, int capacity)
{
    memset(c, 0, sizeof *c);
    c->csv = fopen(csv_path, "w");
    if (!c->csv) { fprintf(stderr, "cannot write %s: %s\n", csv_path, strerror(errno)); return -1; }
    fprintf(c->csv, "step,train_loss,train_accuracy,test_loss,test_accuracy\n");
    c->cap = capacity;
    c->step = (float *)calloc((size_t)capacity, sizeof(float));
    c->train_loss = (float *)calloc((size_t)capacity, sizeof(float));
    c->train_acc = (float *)calloc((size_t)capacity, sizeof(float));
    c->test_loss = (float *)calloc((size_t)capacity, sizeof(float));
    c->test_acc = (float *)calloc((size_t)capacity, sizeof(float));
    return c->step && c->train_loss && c->train_acc && c->test_loss && c->test_acc ? 0 : -1;
}

static inline void curves_add(curves *c, int step, float train_loss, float train_acc, float test_loss, float test_acc)
{
    fprintf(c->csv, "%d,%.6f,%.6f,%.6f,%.6f\n", step, train_loss, train_acc, test_loss, test_acc);
    fflush(c->csv);
    if (c->n == c->cap) return;
    c->step[c->n] = (float)step;
    c->train_loss[c->n] = train_loss; c->train_acc[c->n] = train_acc;
    c->test_loss[c->n] = test_loss; c->test_acc[c->n] = test_acc;
    c->n++;
}

static inline float curves_mean_last(const curves *c, int k)
{
    double sum = 0;
    int i, from = c->n > k ? c->n - k : 0;
    for (i = from; i < c->n; i++) sum += c->test_acc[i];
    return c->n ? (float)(sum / (c->n - from)) : 0.0f;
}

static inline void curves_close(curves *c)
{
    if (c->csv) fclose(c->csv);
    free(c->step); free(c->train_loss); free(c->train_acc); free(c->test_loss); free(c->test_acc);
    memset(c, 0, sizeof *c);
}

/* The progress line on stderr: step, loss, accuracy, images/s, time left. */
static inline void progress(int step, int max_steps, float loss, float acc, double images_per_s, double elapsed)
{
    double left = step ? elapsed / step * (max_steps - step) : 0.0;
    fprintf(stderr, "\rstep %6d/%d  loss %.4f  acc %.3f  %8.0f img/s  %5.0fs left ",
            step, max_steps, loss, acc, images_per_s, left);
    fflush(stderr);
}
#endif
