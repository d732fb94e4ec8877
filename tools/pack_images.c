/* pack_images - packs an image-folder tree into the CIFAR-10 binary layout.

   Usage: pack_images [--seed S] [--size N] ROOT OUTDIR

   ROOT/train/<class>/<image> and ROOT/test/<class>/<image>, any format stb_image reads.
   Writes OUTDIR/data_batch_1.bin .. data_batch_5.bin, OUTDIR/test_batch.bin and
   OUTDIR/batches.meta.txt. A record is 1 label byte followed by the N*N red, then
   green, then blue bytes, each plane row-major (N = 32 gives CIFAR-10's 3073 bytes).

   Order (see docs/DATA.md):
   - classes are the subfolders of ROOT/train in strcmp order; label = position;
     ROOT/test may only use those classes;
   - within a class, files in strcmp order of their names (names starting with '.'
     are skipped);
   - training images are listed class by class, then permuted by Fisher-Yates
     (i from n-1 down to 1, j uniform in [0, i]) drawn with nn.h's
     nn_rng_below from nn_rng_new(seed); the default seed is 42.
     Batch b (1..5) holds positions [(b-1)*n/5, b*n/5) of that permutation;
   - test images stay in class-then-file order.
   Images of another size are resized to N x N with stbir_resize_uint8; grayscale and
   RGBA images are converted to RGB by stb_image.

   Images no record can come from are skipped, each with a message on stderr, and
   leave their place in the order empty (the other images keep theirs):
   - a file stb_image cannot read (not an image, truncated or damaged data);
   - an image of zero width or height, or of more than MAX_PIXELS (4096 x 4096)
     pixels, found from the header (stbi_info) before anything is decoded;
   - a binary PNM (P5, P6) with fewer pixel bytes than its header announces
     (stb_image would return the missing pixels uninitialised).
   A batch file that would be left empty by skipped images is an error.

   Output goes to "<name>.tmp" files that are renamed only when everything succeeded;
   on every failure (an I/O error, running out of memory, a signal) the temporary
   files are removed, so OUTDIR never holds a partial or temporary batch file.
   Exit status: 0 every image packed; 3 packed, but some images were skipped;
   1 an error, nothing written; 2 bad usage. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../examples/stb_impl.h"   /* stb_image and stb_image_resize */

#define NN_IMPLEMENTATION   /* for its random numbers; no threads needed */
#define NN_STATIC
#define NN_NO_THREADS
#include "../nn.h"

#define MAX_CLASSES 256
#define TRAIN_BATCHES 5
/* The largest image accepted: 4096 x 4096 pixels (48 MB decoded), any aspect. */
#define MAX_PIXELS (4096L * 4096L)

typedef struct entry { char *path; int label; } entry;

typedef struct list { entry *items; int count, cap; } list;

static const char *const out_names[TRAIN_BATCHES + 2] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
    "data_batch_5.bin", "test_batch.bin", "batches.meta.txt"
};

/* ---- Temporary files ------------------------------------------------------------
   The paths of the temporary files that may exist; every way out of the program but a
   success removes them (atexit for exit(), a handler for the usual signals). */

static char *tmp_paths[TRAIN_BATCHES + 2];

static void remove_temporaries(void)
{
    int i;
    for (i = 0; i < TRAIN_BATCHES + 2; i++)
        if (tmp_paths[i]) remove(tmp_paths[i]);
}

static void on_signal(int sig)
{
    int i;
    for (i = 0; i < TRAIN_BATCHES + 2; i++)
        if (tmp_paths[i]) unlink(tmp_paths[i]);   /* async-signal-safe, unlike remove */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ---- Helpers ---------------------------------------------------------------------- */

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (!q) {
        fprintf(stderr, "pack_images: out of memory\n");
        exit(1);
    }
    return q;
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = (char *)xrealloc(NULL, la + lb + 2);
    memcpy(s, a, la);
    s[la] = '/';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in dir of entries that are directories (want_dirs) or regular
   files; names starting with '.' are skipped. Returns -1 if dir cannot be read. */
static int list_dir(const char *dir, int want_dirs, char ***names_out)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    int count = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char *full;
        int ok;
        if (e->d_name[0] == '.') continue;
        full = join(dir, e->d_name);
        ok = stat(full, &st) == 0 && (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        free(full);
        if (!ok) continue;
        names = (char **)xrealloc(names, (size_t)(count + 1) * sizeof *names);
        names[count++] = strcpy((char *)xrealloc(NULL, strlen(e->d_name) + 1), e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)count, sizeof *names, compare_names);
    *names_out = names;
    return count;
}

static void free_names(char **names, int count)
{
    int i;
    for (i = 0; i < count; i++) free(names[i]);
    free(names);
}

static void list_add(list *l, char *path, int label)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->items = (entry *)xrealloc(l->items, (size_t)l->cap * sizeof *l->items);
    }
    l->items[l->count].path = path;
    l->items[l->count].label = label;
    l->count++;
}

/* Appends split/<class>/<file> for every class to l, counting per class. */
static void collect(const char *root, const char *split, char **classes, int num_classes,
                   list *l, int *counts)
{
    char *split_dir = join(root, split);
    int c, i;
    for (c = 0; c < num_classes; c++) {
        char *class_dir = join(split_dir, classes[c]), **files;
        int count = list_dir(class_dir, 0, &files);
        counts[c] = count < 0 ? 0 : count;
        for (i = 0; i < count; i++) list_add(l, join(class_dir, files[i]), c);
        if (count >= 0) free_names(files, count);
        free(class_dir);
    }
    free(split_dir);
}

/* Reads the next decimal number of a PNM header, after whitespace and comments;
   -1 if there is none or it is over 9 digits. */
static long pnm_number(FILE *f)
{
    long v = 0;
    int c = fgetc(f), digits = 0;
    for (;;) {
        while (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') c = fgetc(f);
        if (c != '#') break;
        while (c != EOF && c != '\n' && c != '\r') c = fgetc(f);
    }
    for (; c >= '0' && c <= '9'; c = fgetc(f))
        if (++digits > 9) return -1;
        else v = 10 * v + (c - '0');
    return digits ? v : -1;   /* the one character after the number is consumed, as stb does */
}

/* For a binary PNM (P5, P6) of w x h, how many pixel bytes its data lacks; 0 for a
   complete one and for every other format. */
static long long pnm_missing(const char *path)
{
    FILE *f = fopen(path, "rb");
    long w, h, maxval, start, end;
    long long need = 0;
    int t;
    if (!f) return 0;
    if (fgetc(f) == 'P' && ((t = fgetc(f)) == '5' || t == '6') && (w = pnm_number(f)) > 0 &&
        (h = pnm_number(f)) > 0 && (maxval = pnm_number(f)) > 0 && (start = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) >= 0)
        need = (long long)w * h * (t == '6' ? 3 : 1) * (maxval > 255 ? 2 : 1) - (end - start);
    fclose(f);
    return need > 0 ? need : 0;
}

/* Decodes one image, resizes it to size x size and writes its record. Returns 0 when
   written, -1 when the image is skipped (with a message), 1 on a write error. */
static int write_record(FILE *f, const char *out_path, const entry *e, int size,
                        unsigned char *resized, unsigned char *record)
{
    int w, h, channels, p, plane = size * size;
    long long missing;
    unsigned char *pixels;
    const unsigned char *rgb;
    if (!stbi_info(e->path, &w, &h, &channels)) {
        fprintf(stderr, "pack_images: %s: skipped, not an image stb_image can read (%s)\n", e->path,
                stbi_failure_reason());
        return -1;
    }
    if (w < 1 || h < 1 || (long long)w * h > MAX_PIXELS) {
        fprintf(stderr, "pack_images: %s: skipped, %dx%d pixels (%s)\n", e->path, w, h,
                w < 1 || h < 1 ? "an empty image" : "more than the 4096x4096 accepted");
        return -1;
    }
    if ((missing = pnm_missing(e->path)) > 0) {
        fprintf(stderr, "pack_images: %s: skipped, truncated: %lld bytes of its %dx%d pixels are missing\n",
                e->path, missing, w, h);
        return -1;
    }
    if (!(pixels = stbi_load(e->path, &w, &h, &channels, 3))) {
        fprintf(stderr, "pack_images: %s: skipped, cannot decode (%s)\n", e->path, stbi_failure_reason());
        return -1;
    }
    rgb = pixels;
    if (w != size || h != size) {
        if (!stbir_resize_uint8(pixels, w, h, 0, resized, size, size, 0, 3)) {
            fprintf(stderr, "pack_images: %s: skipped, cannot resize %dx%d to %dx%d\n",
                    e->path, w, h, size, size);
            stbi_image_free(pixels);
            return -1;
        }
        rgb = resized;
    }
    record[0] = (unsigned char)e->label;
    for (p = 0; p < plane; p++) {
        record[1 + p] = rgb[3 * p];
        record[1 + plane + p] = rgb[3 * p + 1];
        record[1 + 2 * plane + p] = rgb[3 * p + 2];
    }
    stbi_image_free(pixels);
    if (fwrite(record, 1, (size_t)(1 + 3 * plane), f) != (size_t)(1 + 3 * plane)) {
        fprintf(stderr, "pack_images: %s: write error (%s)\n", out_path, strerror(errno));
        return 1;
    }
    return 0;
}

static void usage(const char *message)
{
    fprintf(stderr, "pack_images: %s\nusage: pack_images [--seed S] [--size N] ROOT OUTDIR\n",
            message);
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t seed = 42;
    int size = 32, i, c, status = 0, num_classes, argi, renamed = 0, skipped_train = 0, skipped_test = 0;
    const char *root, *outdir;
    char **classes, **test_classes, *train_dir, *test_dir;
    char *final_paths[TRAIN_BATCHES + 2];
    int train_counts[MAX_CLASSES], test_counts[MAX_CLASSES], num_test_classes;
    list train = { NULL, 0, 0 }, test = { NULL, 0, 0 };
    unsigned char *resized, *record;
    nn_rng rng;
    FILE *f;

    for (argi = 1; argi < argc && strncmp(argv[argi], "--", 2) == 0; argi += 2) {
        char *end;
        if (argi + 1 >= argc) usage("an option lacks its value");
        errno = 0;
        if (strcmp(argv[argi], "--seed") == 0) {
            seed = strtoull(argv[argi + 1], &end, 10);
            if (errno || *end || argv[argi + 1][0] == '-' || end == argv[argi + 1])
                usage("--seed takes a non-negative integer");
        } else if (strcmp(argv[argi], "--size") == 0) {
            long v = strtol(argv[argi + 1], &end, 10);
            if (errno || *end || end == argv[argi + 1] || v < 1 || v > 4096)
                usage("--size takes an integer 1..4096");
            size = (int)v;
        } else {
            usage("unknown option");
        }
    }
    if (argc - argi != 2) usage("expected ROOT and OUTDIR");
    root = argv[argi];
    outdir = argv[argi + 1];

    train_dir = join(root, "train");
    test_dir = join(root, "test");
    num_classes = list_dir(train_dir, 1, &classes);
    if (num_classes <= 0) {
        fprintf(stderr, "pack_images: %s: %s\n", train_dir,
                num_classes < 0 ? strerror(errno) : "no class folders");
        return 1;
    }
    if (num_classes > MAX_CLASSES) {
        fprintf(stderr, "pack_images: %s: %d classes, at most %d fit a label byte\n",
                train_dir, num_classes, MAX_CLASSES);
        return 1;
    }
    num_test_classes = list_dir(test_dir, 1, &test_classes);
    if (num_test_classes < 0) {
        fprintf(stderr, "pack_images: %s: %s\n", test_dir, strerror(errno));
        return 1;
    }
    for (i = 0; i < num_test_classes; i++)
        if (!bsearch(&test_classes[i], classes, (size_t)num_classes, sizeof *classes, compare_names)) {
            fprintf(stderr, "pack_images: %s/%s: class not in %s\n", test_dir, test_classes[i],
                    train_dir);
            return 1;
        }
    free_names(test_classes, num_test_classes);
    collect(root, "train", classes, num_classes, &train, train_counts);
    collect(root, "test", classes, num_classes, &test, test_counts);
    if (train.count < TRAIN_BATCHES) {
        fprintf(stderr, "pack_images: %s: %d images, need at least %d (one per batch file)\n",
                train_dir, train.count, TRAIN_BATCHES);
        return 1;
    }

    /* The documented training order: Fisher-Yates over the class-then-file list. */
    rng = nn_rng_new(seed);
    for (i = train.count - 1; i > 0; i--) {
        int j = (int)nn_rng_below(&rng, (uint32_t)i + 1);
        entry t = train.items[i];
        train.items[i] = train.items[j];
        train.items[j] = t;
    }

    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "pack_images: %s: cannot create (%s)\n", outdir, strerror(errno));
        return 1;
    }
    for (i = 0; i < TRAIN_BATCHES + 2; i++) final_paths[i] = join(outdir, out_names[i]);
    atexit(remove_temporaries);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    for (i = 0; i < TRAIN_BATCHES + 2; i++) {
        char *tmp = (char *)xrealloc(NULL, strlen(final_paths[i]) + 5);
        sprintf(tmp, "%s.tmp", final_paths[i]);
        tmp_paths[i] = tmp;
    }
    resized = (unsigned char *)xrealloc(NULL, (size_t)size * size * 3);
    record = (unsigned char *)xrealloc(NULL, 1 + (size_t)size * size * 3);

    for (i = 0; i < TRAIN_BATCHES + 1 && status == 0; i++) {
        const list *l = i < TRAIN_BATCHES ? &train : &test;
        int from = i < TRAIN_BATCHES ? (int)((int64_t)i * train.count / TRAIN_BATCHES) : 0;
        int to = i < TRAIN_BATCHES ? (int)((int64_t)(i + 1) * train.count / TRAIN_BATCHES)
                                   : test.count;
        int *counts = i < TRAIN_BATCHES ? train_counts : test_counts, k, written = 0;
        if (!(f = fopen(tmp_paths[i], "wb"))) {
            fprintf(stderr, "pack_images: %s: cannot create (%s)\n", tmp_paths[i], strerror(errno));
            status = 1;
            break;
        }
        for (k = from; k < to && status == 0; k++) {
            int r = write_record(f, tmp_paths[i], &l->items[k], size, resized, record);
            if (r < 0) {
                counts[l->items[k].label]--;
                if (i < TRAIN_BATCHES) skipped_train++; else skipped_test++;
            } else {
                status = r;
                written++;
            }
        }
        if (fclose(f) != 0 && status == 0) {
            fprintf(stderr, "pack_images: %s: write error (%s)\n", tmp_paths[i], strerror(errno));
            status = 1;
        }
        if (status == 0 && written == 0 && i < TRAIN_BATCHES) {
            fprintf(stderr, "pack_images: %s: no image left (%d skipped)\n", final_paths[i], to - from);
            status = 1;
        }
    }
    if (status == 0) {
        if (!(f = fopen(tmp_paths[TRAIN_BATCHES + 1], "w"))) {
            fprintf(stderr, "pack_images: %s: cannot create (%s)\n",
                    tmp_paths[TRAIN_BATCHES + 1], strerror(errno));
            status = 1;
        } else {
            for (c = 0; c < num_classes; c++) fprintf(f, "%s\n", classes[c]);
            if (fclose(f) != 0) {
                fprintf(stderr, "pack_images: %s: write error\n", tmp_paths[TRAIN_BATCHES + 1]);
                status = 1;
            }
        }
    }
    for (renamed = 0; renamed < TRAIN_BATCHES + 2 && status == 0; renamed++)
        if (rename(tmp_paths[renamed], final_paths[renamed]) != 0) {
            fprintf(stderr, "pack_images: %s: cannot rename (%s)\n", tmp_paths[renamed],
                    strerror(errno));
            status = 1;
        }
    if (status != 0) {
        /* Leave no mix of new and missing files behind. */
        for (i = 0; i < renamed; i++) remove(final_paths[i]);
        return status;   /* the atexit hook removes the temporary files */
    }
    for (i = 0; i < TRAIN_BATCHES + 2; i++) {
        free(tmp_paths[i]);
        tmp_paths[i] = NULL;   /* renamed: nothing left to remove */
    }

    printf("%-16s %8s %8s\n", "class", "train", "test");
    for (c = 0; c < num_classes; c++)
        printf("%3d %-12s %8d %8d\n", c, classes[c], train_counts[c], test_counts[c]);
    printf("%-16s %8d %8d\n", "total", train.count - skipped_train, test.count - skipped_test);
    if (skipped_train + skipped_test)
        printf("skipped %d training and %d test images (see the messages above)\n", skipped_train,
               skipped_test);
    printf("wrote %s/{data_batch_1..%d.bin,test_batch.bin,batches.meta.txt} (seed %llu)\n",
           outdir, TRAIN_BATCHES, (unsigned long long)seed);

    for (i = 0; i < train.count; i++) free(train.items[i].path);
    for (i = 0; i < test.count; i++) free(test.items[i].path);
    for (i = 0; i < TRAIN_BATCHES + 2; i++) free(final_paths[i]);
    free(train.items);
    free(test.items);
    free_names(classes, num_classes);
    free(train_dir);
    free(test_dir);
    free(resized);
    free(record);
    return skipped_train + skipped_test ? 3 : 0;
}
