/* unpack_images - writes the records of a CIFAR-10 binary batch file as PNG images,
   the reverse of pack_images.

   Usage: unpack_images [--count N] [--stride K] [--size S] BATCH.bin OUTDIR

   A record is 1 label byte and then the S*S red, green and blue bytes, each plane
   row-major (S = 32: CIFAR-10's 3073 bytes). Record i (from 0) becomes
   OUTDIR/<i, 5 digits>_<class>.png, an S x S RGB PNG holding exactly the record's
   pixels (PNG is lossless), e.g. test/00003_airplane.png. Class names come from
   batches.meta.txt next to BATCH.bin (one per line, as pack_images and the official
   archive write them); without it, or for a label past its end, the label number.
   --stride K writes every K-th record (0, K, 2K, ...; a spread over the whole file,
   which matters when it is sorted by class), --count N at most N of them.
   OUTDIR is created if missing (one level).

   Exit status: 0 done, 1 a damaged batch file or an I/O error, 2 bad usage.
   Build:  cc -O2 -I/usr/include/stb tools/unpack_images.c -o unpack_images -lm */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#define MAX_CLASSES 256
#define MAX_NAME 64

static void usage(const char *why)
{
    fprintf(stderr, "unpack_images: %s\nusage: unpack_images [--count N] [--stride K] [--size S] BATCH.bin OUTDIR\n", why);
    exit(2);
}

static long parse_long(const char *flag, const char *text, long lo, long hi)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "unpack_images: %s expects an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, text);
        exit(2);
    }
    return v;
}

/* Class names from dir(batch)/batches.meta.txt, made safe for a file name; returns
   how many (0 when the file is missing). */
static int read_class_names(const char *batch, char names[MAX_CLASSES][MAX_NAME])
{
    const char *slash = strrchr(batch, '/');
    size_t dir_len = slash ? (size_t)(slash - batch + 1) : 0;
    char *path = (char *)malloc(dir_len + 32), line[256];
    int count = 0;
    FILE *f;
    if (!path) return 0;
    memcpy(path, batch, dir_len);
    strcpy(path + dir_len, "batches.meta.txt");
    f = fopen(path, "r");
    free(path);
    if (!f) return 0;
    while (count < MAX_CLASSES && fgets(line, sizeof line, f)) {
        char *p = names[count];
        size_t i, n = strcspn(line, "\r\n");
        if (n == 0) break;   /* the official file ends with blank lines */
        if (n >= MAX_NAME) n = MAX_NAME - 1;
        for (i = 0; i < n; i++) {
            char c = line[i];
            p[i] = (c == '/' || c == ' ' || c == '\\') ? '_' : c;
        }
        p[n] = 0;
        count++;
    }
    fclose(f);
    return count;
}

int main(int argc, char **argv)
{
    char names[MAX_CLASSES][MAX_NAME], *path;
    const char *batch, *outdir;
    long count = -1, stride = 1, size = 32, records, file_size, r, written = 0;
    int argi = 1, num_names, p;
    unsigned char *record, *rgb;
    size_t record_size, plane;
    FILE *f;

    while (argi < argc && !strncmp(argv[argi], "--", 2)) {
        if (!strcmp(argv[argi], "--help") || !strcmp(argv[argi], "-h")) {
            printf("usage: unpack_images [--count N] [--stride K] [--size S] BATCH.bin OUTDIR\n"
                   "  --count N   at most N images (all)\n"
                   "  --stride K  every K-th record: 0, K, 2K, ... (1)\n"
                   "  --size S    records hold S x S images (32)\n");
            return 0;
        }
        if (argi + 1 >= argc) usage("an option needs a value");
        if (!strcmp(argv[argi], "--count")) count = parse_long("--count", argv[argi + 1], 1, 100000000L);
        else if (!strcmp(argv[argi], "--stride")) stride = parse_long("--stride", argv[argi + 1], 1, 100000000L);
        else if (!strcmp(argv[argi], "--size")) size = parse_long("--size", argv[argi + 1], 1, 4096);
        else usage("unknown option");
        argi += 2;
    }
    if (argc - argi != 2) usage("expected BATCH.bin and OUTDIR");
    batch = argv[argi];
    outdir = argv[argi + 1];
    plane = (size_t)size * (size_t)size;
    record_size = 1 + 3 * plane;

    if (!(f = fopen(batch, "rb"))) {
        fprintf(stderr, "unpack_images: %s: cannot open (%s)\n", batch, strerror(errno));
        return 1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (file_size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "unpack_images: %s: cannot determine the size\n", batch);
        fclose(f);
        return 1;
    }
    if (file_size == 0 || (size_t)file_size % record_size) {
        fprintf(stderr, "unpack_images: %s: size %ld is not a non-zero multiple of the %lu-byte record\n",
                batch, file_size, (unsigned long)record_size);
        fclose(f);
        return 1;
    }
    records = (long)((size_t)file_size / record_size);
    num_names = read_class_names(batch, names);
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "unpack_images: %s: cannot create (%s)\n", outdir, strerror(errno));
        fclose(f);
        return 1;
    }
    record = (unsigned char *)malloc(record_size);
    rgb = (unsigned char *)malloc(3 * plane);
    path = (char *)malloc(strlen(outdir) + MAX_NAME + 32);
    if (!record || !rgb || !path) { fprintf(stderr, "unpack_images: out of memory\n"); return 1; }
    for (r = 0; r < records && (count < 0 || written < count); r += stride) {
        size_t i;
        if (fseek(f, r * (long)record_size, SEEK_SET) != 0 || fread(record, 1, record_size, f) != record_size) {
            fprintf(stderr, "unpack_images: %s: read error at record %ld\n", batch, r);
            return 1;
        }
        for (i = 0; i < plane; i++)
            for (p = 0; p < 3; p++) rgb[3 * i + (size_t)p] = record[1 + (size_t)p * plane + i];
        if (record[0] < num_names) sprintf(path, "%s/%05ld_%s.png", outdir, r, names[record[0]]);
        else sprintf(path, "%s/%05ld_%d.png", outdir, r, record[0]);
        errno = 0;
        if (!stbi_write_png(path, (int)size, (int)size, 3, rgb, (int)size * 3)) {
            fprintf(stderr, "unpack_images: %s: cannot write (%s)\n", path, errno ? strerror(errno) : "write failed");
            return 1;
        }
        written++;
    }
    fclose(f);
    printf("unpack_images: %ld of %ld records of %s -> %s/*.png\n", written, records, batch, outdir);
    free(record); free(rgb); free(path);
    return 0;
}
