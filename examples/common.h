/* Shared by the example programs: flag parsing (by hand or from a table), the progress
   line and the CSV log of the curves. Include after nn.h. The functions are static inline,
   so a program that uses only some of them draws no unused-function warning. */
#ifndef NN_EXAMPLES_COMMON_H
#define NN_EXAMPLES_COMMON_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _WIN32
#include <direct.h>   /* _mkdir */
#endif
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
#ifdef _WIN32
    if (_mkdir(path) == 0 || errno == EEXIST) return 0;
#else
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
#endif
    fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
    return -1;
}

/* ---- Flags from a table: parse_flags reads argv by it and prints --help from it. ---- */

typedef enum { FLAG_INT, FLAG_LONG, FLAG_FLOAT, FLAG_TEXT, FLAG_CHOICE, FLAG_SWITCH, FLAG_LIST } flag_kind;

typedef struct flag {
    const char *name;    /* --name */
    flag_kind   kind;    /* value points to an int, long, float, const char *, const char *,
                            int (set to 1, takes no value) or flag_list */
    void       *value;
    double      lo, hi;  /* a number's range */
    const char *arg;     /* the value in --help ("N", "DIR"); FLAG_CHOICE: the choices, "a|b|c" */
    const char *help;    /* the rest of the --help line ('\n' breaks it), to which the default
                            is added in brackets unless it ends in a bracket itself */
} flag;

/* FLAG_LIST: comma-separated positive integers, "100,100". */
typedef struct flag_list {
    int n, v[16];
} flag_list;

/* Whether choices ("a|b|c") holds word. */
static inline int flag_is_choice(const char *choices, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = choices; *p; p += strcspn(p, "|"), p += *p == '|')
        if (strcspn(p, "|") == len && !strncmp(p, word, len)) return 1;
    return 0;
}

static inline void flags_help(const char *usage, const flag *flags, int n)
{
    int width = 0;
    for (int i = 0; i < n; i++) {
        int w = (int)strlen(flags[i].name) + (flags[i].kind == FLAG_SWITCH ? 0 : 1 + (int)strlen(flags[i].arg));
        if (w > width && w <= 24) width = w;   /* a longer one gets a line of its own */
    }
    printf("usage: %s\n", usage);
    for (int i = 0; i < n; i++) {
        char left[128];
        const char *help = flags[i].help;
        snprintf(left, sizeof left, "%s%s%s", flags[i].name, flags[i].kind == FLAG_SWITCH ? "" : " ",
                 flags[i].kind == FLAG_SWITCH ? "" : flags[i].arg);
        if ((int)strlen(left) > width) printf("  --%s\n  %*s  ", left, width + 2, "");
        else printf("  --%-*s  ", width, left);
        for (size_t len; (len = strcspn(help, "\n")), help[len]; help += len + 1)
            printf("%.*s\n  %*s  ", (int)len, help, width + 2, "");
        printf("%s", help);
        /* the default, unless the text gives it (in brackets at its end) */
        size_t len = strlen(help);
        const char *space = len ? " " : "";
        if (len && help[len - 1] == ')') printf("\n");
        else if (flags[i].kind == FLAG_INT) printf("%s(%d)\n", space, *(const int *)flags[i].value);
        else if (flags[i].kind == FLAG_LONG) printf("%s(%ld)\n", space, *(const long *)flags[i].value);
        else if (flags[i].kind == FLAG_FLOAT) printf("%s(%g)\n", space, *(const float *)flags[i].value);
        else if (flags[i].kind == FLAG_TEXT || flags[i].kind == FLAG_CHOICE)
            printf("%s(%s)\n", space, *(const char *const *)flags[i].value);
        else printf("\n");
    }
}

/* Reads "--name value" flags (and switches) into the table's variables; returns 1 after
   printing --help (with usage, e.g. "mlp [flags]"; NULL: silently), else 0. A bad flag
   or value is a one-line message and exit status 2. */
static inline int parse_flags(const char *program, const char *usage, const flag *flags, int n,
                              int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        const flag *f = NULL;
        if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
            if (usage) flags_help(usage, flags, n);
            return 1;
        }
        if (strncmp(name, "--", 2)) usage_error(program, "unexpected argument '%s'", name);
        for (int k = 0; k < n && !f; k++)
            if (!strcmp(name + 2, flags[k].name)) f = &flags[k];
        if (!f) usage_error(program, "unknown flag '%s'", name);
        name += 2;
        if (f->kind == FLAG_SWITCH) { *(int *)f->value = 1; continue; }
        if (!value) usage_error(program, "--%s needs a value", name);
        i++;
        switch (f->kind) {
        case FLAG_INT: *(int *)f->value = (int)flag_long(program, name, value, (long)f->lo, (long)f->hi); break;
        case FLAG_LONG: *(long *)f->value = flag_long(program, name, value, (long)f->lo, (long)f->hi); break;
        case FLAG_FLOAT: *(float *)f->value = flag_float(program, name, value, f->lo, f->hi); break;
        case FLAG_LIST: {
            flag_list *list = (flag_list *)f->value;
            list->n = flag_int_list(program, name, value, list->v, (int)(sizeof list->v / sizeof *list->v));
            break;
        }
        case FLAG_CHOICE:
            if (!flag_is_choice(f->arg, value)) {
                fprintf(stderr, "%s: --%s must be one of %s, not '%s' (try --help)\n", program, name, f->arg, value);
                exit(2);
            }
            /* fall through */
        default: *(const char **)f->value = value; break;
        }
    }
    return 0;
}

/* ---- Curves: kept in memory for the plot, and written to a CSV as they come. ----
   The columns: [epoch,] step, train loss and accuracy, [validation loss and accuracy,]
   test loss and accuracy. */

enum { CURVES_EPOCH = 1, CURVES_VAL = 2 };

typedef struct curves {
    FILE  *csv;
    int    n, cap;
    float *step, *train_loss, *train_acc, *test_loss, *test_acc;
    int    columns;                      /* CURVES_EPOCH | CURVES_VAL */
    float *epoch, *val_loss, *val_acc;
} curves;

/* Room for twice the rows (at least 16); -1 without memory. */
static inline int curves_grow(curves *c)
{
    float **cols[8] = {&c->epoch, &c->step, &c->train_loss, &c->train_acc, &c->val_loss, &c->val_acc,
                       &c->test_loss, &c->test_acc};
    int cap = c->cap ? 2 * c->cap : 16;
    for (int k = 0; k < 8; k++) {
        float *grown = (float *)realloc(*cols[k], (size_t)cap * sizeof(float));
        if (!grown) return -1;
        *cols[k] = grown;
    }
    c->cap = cap;
    return 0;
}

/* Writes the CSV's header; capacity rows are kept in memory from the start (more as
   they come). */
static inline int curves_open_columns(curves *c, const char *csv_path, int capacity, int columns)
{
    memset(c, 0, sizeof *c);
    c->columns = columns;
    c->csv = fopen(csv_path, "w");
    if (!c->csv) { fprintf(stderr, "cannot write %s: %s\n", csv_path, strerror(errno)); return -1; }
    fprintf(c->csv, "%sstep,train_loss,train_accuracy,%stest_loss,test_accuracy\n",
            columns & CURVES_EPOCH ? "epoch," : "", columns & CURVES_VAL ? "val_loss,val_accuracy," : "");
    while (c->cap < capacity)
        if (curves_grow(c)) { fprintf(stderr, "out of memory for the curves\n"); return -1; }
    return 0;
}

static inline int curves_open(curves *c, const char *csv_path, int capacity)
{
    return curves_open_columns(c, csv_path, capacity, 0);
}

/* One row (epoch, val_loss and val_acc are written only if the curves have them). */
static inline void curves_add_row(curves *c, int epoch, int step, float train_loss, float train_acc,
                                  float val_loss, float val_acc, float test_loss, float test_acc)
{
    if (c->columns & CURVES_EPOCH) fprintf(c->csv, "%d,", epoch);
    fprintf(c->csv, "%d,%.6f,%.6f,", step, train_loss, train_acc);
    if (c->columns & CURVES_VAL) fprintf(c->csv, "%.6f,%.6f,", val_loss, val_acc);
    fprintf(c->csv, "%.6f,%.6f\n", test_loss, test_acc);
    fflush(c->csv);
    if (c->n == c->cap && curves_grow(c)) return;   /* in the CSV only */
    c->epoch[c->n] = (float)epoch;
    c->step[c->n] = (float)step;
    c->train_loss[c->n] = train_loss; c->train_acc[c->n] = train_acc;
    c->val_loss[c->n] = val_loss;     c->val_acc[c->n] = val_acc;
    c->test_loss[c->n] = test_loss;   c->test_acc[c->n] = test_acc;
    c->n++;
}

static inline void curves_add(curves *c, int step, float train_loss, float train_acc, float test_loss, float test_acc)
{
    curves_add_row(c, 0, step, train_loss, train_acc, 0.0f, 0.0f, test_loss, test_acc);
}

static inline float curves_mean_last(const curves *c, int k)
{
    double sum = 0;
    int from = c->n > k ? c->n - k : 0;
    for (int i = from; i < c->n; i++) sum += c->test_acc[i];
    return c->n ? (float)(sum / (c->n - from)) : 0.0f;
}

static inline void curves_close(curves *c)
{
    if (c->csv) fclose(c->csv);
    free(c->epoch); free(c->step); free(c->train_loss); free(c->train_acc);
    free(c->val_loss); free(c->val_acc); free(c->test_loss); free(c->test_acc);
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
