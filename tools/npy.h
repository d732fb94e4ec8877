/* npy.h - NumPy .npy files of float32 arrays, read and written; one stb-style header.

   Do this:
       #define NPY_IMPLEMENTATION
   before you include this file in *one* C or C++ file.

   Reads format versions 1.0 and 2.0 (2- and 4-byte header lengths) and writes 1.0, for
   arrays of dtype '<f4' (little-endian float32) in C order with 1 to NPY_MAX_DIMS
   dimensions, each at least 1. The file may be untrusted: the magic, the version, the
   header length, every key of the header's dict and its value, and the shape's
   product against the bytes that follow are checked before anything is allocated, so
   a file never gets an array larger than itself (nor than NPY_MAX_BYTES). Failures
   return -1 and npy_error() says why in a sentence ("x.npy: dtype '>f4' is not '<f4'
   (little-endian float32)"); nothing is left allocated.

   Configuration: NPY_MALLOC(size) / NPY_FREE(p) (both or neither; default malloc and
   free), NPY_MAX_BYTES (the largest data section read; default 4 GiB, 1 GiB where
   size_t has 32 bits), NPY_MAX_HEADER (the longest header read; default 65536). */
#ifndef NPY_H
#define NPY_H
#include <stddef.h>

#define NPY_MAX_DIMS 4

typedef struct npy_array {
    int    ndim;
    int    shape[NPY_MAX_DIMS];
    size_t size;             /* number of elements, the product of the shape */
    float *data;             /* from NPY_MALLOC: release with npy_free */
} npy_array;

#ifdef __cplusplus
extern "C" {
#endif
/* The last failure, as a sentence. */
const char *npy_error(void);
/* Parses an image of a whole .npy file; on success *out owns a copy of the data. On
   failure *out is zeroed. name is used in the messages (NULL: "npy"). */
int  npy_read_memory(const void *file, size_t size, const char *name, npy_array *out);
/* The header of a file of file_size bytes whose first avail bytes are at head: on
   success the shape in *out (data NULL) and the data's offset in *offset. */
int  npy_parse_header(const void *head, size_t avail, size_t file_size, const char *name,
                      npy_array *out, size_t *offset);
/* Reads a .npy file (the header, then exactly the data it announces). */
int  npy_read(const char *path, npy_array *out);
/* The file image of an array in a buffer from NPY_MALLOC (release with NPY_FREE, or
   npy_free_buffer); shape: ndim dimensions, each >= 1. */
int  npy_write_memory(const float *data, int ndim, const int *shape, unsigned char **file, size_t *size);
int  npy_write(const char *path, const float *data, int ndim, const int *shape);
void npy_free(npy_array *a);        /* NULL or a zeroed array: nothing */
void npy_free_buffer(void *p);
#ifdef __cplusplus
}
#endif
#endif /* NPY_H */

#ifdef NPY_IMPLEMENTATION
#ifndef NPY_IMPLEMENTATION_DONE
#define NPY_IMPLEMENTATION_DONE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(NPY_MALLOC) != defined(NPY_FREE)
#error "define both NPY_MALLOC and NPY_FREE, or neither"
#endif
#ifndef NPY_MALLOC
#include <stdlib.h>
#define NPY_MALLOC(size) malloc(size)
#define NPY_FREE(p) free(p)
#endif
#ifndef NPY_MAX_BYTES
#if SIZE_MAX > 0xffffffffu
#define NPY_MAX_BYTES ((size_t)4 << 30)
#else
#define NPY_MAX_BYTES ((size_t)1 << 30)
#endif
#endif
#ifndef NPY_MAX_HEADER
#define NPY_MAX_HEADER 65536
#endif

static char npy__text[320];

const char *npy_error(void) { return npy__text[0] ? npy__text : "no error"; }

static int npy__fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(npy__text, sizeof npy__text, fmt, ap);
    va_end(ap);
    return -1;
}

void npy_free(npy_array *a)
{
    if (!a) return;
    if (a->data) NPY_FREE(a->data);
    memset(a, 0, sizeof *a);
}

void npy_free_buffer(void *p)
{
    if (p) NPY_FREE(p);
}

/* ---- The header's dict: a Python literal such as
       {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
   with any spacing, either quote, the keys in any order, each exactly once. */

typedef struct npy__parser {
    const char *p, *end;
    const char *name;
} npy__parser;

static void npy__space(npy__parser *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int npy__expect(npy__parser *s, char c)
{
    npy__space(s);
    if (s->p >= s->end || *s->p != c) return 0;
    s->p++;
    return 1;
}

/* A quoted string without escapes into out (at most cap - 1 bytes). */
static int npy__string(npy__parser *s, char *out, size_t cap, const char *what)
{
    char quote;
    size_t n = 0;
    npy__space(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
        return npy__fail("%s: header: expected a quoted %s at offset %d", s->name, what, (int)(s->end - s->p));
    quote = *s->p++;
    while (s->p < s->end && *s->p != quote) {
        if (*s->p == '\\' || (unsigned char)*s->p < 0x20 || n + 1 >= cap)
            return npy__fail("%s: header: the %s is not a short plain string", s->name, what);
        out[n++] = *s->p++;
    }
    if (s->p >= s->end) return npy__fail("%s: header: the %s has no closing quote", s->name, what);
    s->p++;
    out[n] = 0;
    return 0;
}

/* The shape tuple: "(" [dim ("," dim)* [","]] ")"; a 1-tuple needs its comma. */
static int npy__shape(npy__parser *s, npy_array *out)
{
    int n = 0, comma = 0;
    if (!npy__expect(s, '(')) return npy__fail("%s: header: 'shape' is not a tuple", s->name);
    for (;;) {
        long long v = 0;
        int digits = 0;
        npy__space(s);
        if (s->p < s->end && *s->p == ')') { s->p++; break; }
        if (n && !comma) return npy__fail("%s: header: 'shape' lacks a comma between dimensions", s->name);
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (v > INT_MAX) break;
            v = v * 10 + (*s->p++ - '0');
            digits++;
        }
        if (!digits) return npy__fail("%s: header: 'shape' holds something that is not a dimension", s->name);
        if (v > INT_MAX || (s->p < s->end && *s->p >= '0' && *s->p <= '9'))
            return npy__fail("%s: header: a dimension of 'shape' is larger than %d", s->name, INT_MAX);
        if (digits > 1 && s->p[-digits] == '0')
            return npy__fail("%s: header: a dimension of 'shape' has a leading zero", s->name);
        if (s->p < s->end && *s->p == 'L') s->p++;   /* Python 2's long, as old NumPy wrote it */
        if (n == NPY_MAX_DIMS)
            return npy__fail("%s: header: 'shape' has more than %d dimensions", s->name, NPY_MAX_DIMS);
        if (v == 0) return npy__fail("%s: header: dimension %d of 'shape' is 0 (an empty array)", s->name, n);
        out->shape[n++] = (int)v;
        comma = npy__expect(s, ',');
    }
    if (n == 1 && !comma) return npy__fail("%s: header: 'shape' (%d) is not a tuple (no comma)", s->name, out->shape[0]);
    if (n == 0) return npy__fail("%s: header: 'shape' is () (a scalar); expected 1 to %d dimensions", s->name,
                                 NPY_MAX_DIMS);
    out->ndim = n;
    return 0;
}

static int npy__dict(npy__parser *s, npy_array *out)
{
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    char key[32], value[32];
    if (!npy__expect(s, '{')) return npy__fail("%s: header: not a dict (no '{')", s->name);
    for (;;) {
        npy__space(s);
        if (s->p < s->end && *s->p == '}') { s->p++; break; }
        if (npy__string(s, key, sizeof key, "key") != 0) return -1;
        if (!npy__expect(s, ':')) return npy__fail("%s: header: no ':' after the key '%s'", s->name, key);
        if (!strcmp(key, "descr")) {
            if (seen_descr++) return npy__fail("%s: header: the key 'descr' appears twice", s->name);
            if (npy__string(s, value, sizeof value, "descr") != 0) return -1;
            if (strcmp(value, "<f4"))
                return npy__fail("%s: dtype '%s' is not '<f4' (little-endian float32)", s->name, value);
        } else if (!strcmp(key, "fortran_order")) {
            if (seen_order++) return npy__fail("%s: header: the key 'fortran_order' appears twice", s->name);
            npy__space(s);
            if ((size_t)(s->end - s->p) >= 4 && !memcmp(s->p, "True", 4))
                return npy__fail("%s: the array is in Fortran order; expected C order (fortran_order False)",
                                 s->name);
            if ((size_t)(s->end - s->p) < 5 || memcmp(s->p, "False", 5))
                return npy__fail("%s: header: 'fortran_order' is neither True nor False", s->name);
            s->p += 5;
        } else if (!strcmp(key, "shape")) {
            if (seen_shape++) return npy__fail("%s: header: the key 'shape' appears twice", s->name);
            if (npy__shape(s, out) != 0) return -1;
        } else {
            return npy__fail("%s: header: unknown key '%s' (expected descr, fortran_order, shape)", s->name, key);
        }
        npy__space(s);
        if (s->p < s->end && *s->p == ',') { s->p++; continue; }
        if (s->p < s->end && *s->p == '}') { s->p++; break; }
        return npy__fail("%s: header: expected ',' or '}' after the value of '%s'", s->name, key);
    }
    if (!seen_descr || !seen_order || !seen_shape)
        return npy__fail("%s: header: the key '%s' is missing", s->name,
                         !seen_descr ? "descr" : !seen_order ? "fortran_order" : "shape");
    npy__space(s);   /* the padding: spaces, then the final newline (checked by the caller) */
    if (s->p != s->end) return npy__fail("%s: header: bytes after the dict", s->name);
    return 0;
}

/* The magic, the version and the header length: the header is b[*prefix, *prefix + *hlen). */
static int npy__prefix(const unsigned char *b, size_t avail, size_t file_size, const char *name, size_t *prefix,
                       size_t *hlen)
{
    if (avail < 8 || memcmp(b, "\x93NUMPY", 6)) return npy__fail("%s: not a .npy file (no \\x93NUMPY magic)", name);
    if ((b[6] != 1 && b[6] != 2) || b[7] != 0)
        return npy__fail("%s: .npy format version %d.%d; expected 1.0 or 2.0", name, b[6], b[7]);
    *prefix = b[6] == 1 ? 10 : 12;
    if (avail < *prefix) return npy__fail("%s: the file ends inside the header length", name);
    *hlen = b[6] == 1 ? (size_t)b[8] | (size_t)b[9] << 8
                      : (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    if (*hlen > NPY_MAX_HEADER)
        return npy__fail("%s: header length %zu is over the limit of %d bytes", name, *hlen, NPY_MAX_HEADER);
    if (*hlen > file_size - *prefix)
        return npy__fail("%s: header length %zu but the file has %zu bytes", name, *hlen, file_size);
    return 0;
}

int npy_parse_header(const void *head, size_t avail, size_t file_size, const char *name, npy_array *out,
                     size_t *offset)
{
    const unsigned char *b = (const unsigned char *)head;
    size_t prefix, hlen, i;
    npy__parser s;
    int k;
    if (!name) name = "npy";
    if (out) memset(out, 0, sizeof *out);
    if (!head || !out || !offset || avail > file_size) return npy__fail("npy_parse_header: bad arguments");
    if (npy__prefix(b, avail, file_size, name, &prefix, &hlen) != 0) return -1;
    if (hlen > avail - prefix) return npy__fail("npy_parse_header: %s: only %zu header bytes given", name, avail);
    if (hlen == 0 || b[prefix + hlen - 1] != '\n')
        return npy__fail("%s: header: does not end in a newline", name);
    for (i = 0; i < hlen; i++)
        if (b[prefix + i] >= 0x80 || b[prefix + i] == 0) return npy__fail("%s: header: not ASCII", name);
    s.p = (const char *)b + prefix;
    s.end = s.p + hlen;
    s.name = name;
    if (npy__dict(&s, out) != 0) { memset(out, 0, sizeof *out); return -1; }
    out->size = 1;
    for (k = 0; k < out->ndim; k++) {
        if (out->size > NPY_MAX_BYTES / 4 / (size_t)out->shape[k]) {
            memset(out, 0, sizeof *out);
            return npy__fail("%s: the shape holds more than NPY_MAX_BYTES (%zu bytes)", name, (size_t)NPY_MAX_BYTES);
        }
        out->size *= (size_t)out->shape[k];
    }
    if (file_size - prefix - hlen != out->size * 4) {
        size_t have = file_size - prefix - hlen;
        size_t want = out->size * 4;
        memset(out, 0, sizeof *out);
        return npy__fail("%s: the shape needs %zu data bytes but the file has %zu after the header", name, want,
                         have);
    }
    *offset = prefix + hlen;
    return 0;
}

/* Little-endian bytes to floats, whatever the host's byte order. */
static void npy__decode(float *dst, const unsigned char *src, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++, src += 4) {
        uint32_t u = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 | (uint32_t)src[3] << 24;
        memcpy(&dst[i], &u, 4);
    }
}

int npy_read_memory(const void *file, size_t size, const char *name, npy_array *out)
{
    size_t offset;
    if (!name) name = "npy";
    if (!file || !out) {
        if (out) memset(out, 0, sizeof *out);
        return npy__fail("npy_read_memory: NULL argument");
    }
    if (npy_parse_header(file, size, size, name, out, &offset) != 0) return -1;
    if (!(out->data = (float *)NPY_MALLOC(out->size * 4))) {
        memset(out, 0, sizeof *out);
        return npy__fail("%s: out of memory for %zu bytes", name, out->size * 4);
    }
    npy__decode(out->data, (const unsigned char *)file + offset, out->size);
    return 0;
}

int npy_read(const char *path, npy_array *out)
{
    unsigned char head[12], *buf = NULL;
    size_t file_size, offset, got, need, prefix, hlen, i;
    long end;
    FILE *f;
    if (out) memset(out, 0, sizeof *out);
    if (!path || !out) return npy__fail("npy_read: NULL argument");
    if (!(f = fopen(path, "rb"))) return npy__fail("%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return npy__fail("%s: cannot find its size (not a regular file?)", path);
    }
    file_size = (size_t)end;
    got = fread(head, 1, sizeof head, f);
    /* The prefix alone, then the whole header, then the data: what is allocated is
       never more than the file holds. */
    if (npy__prefix(head, got, file_size, path, &prefix, &hlen) != 0) {
        fclose(f);
        return -1;
    }
    need = prefix + hlen;
    if (!(buf = (unsigned char *)NPY_MALLOC(need))) {
        fclose(f);
        return npy__fail("%s: out of memory for its header", path);
    }
    memcpy(buf, head, got < need ? got : need);
    if (need > got && fread(buf + got, 1, need - got, f) != need - got) {
        NPY_FREE(buf);
        fclose(f);
        return npy__fail("%s: cannot read the header", path);
    }
    if (npy_parse_header(buf, need, file_size, path, out, &offset) != 0) {
        NPY_FREE(buf);
        fclose(f);
        return -1;
    }
    NPY_FREE(buf);
    if (!(out->data = (float *)NPY_MALLOC(out->size * 4))) {
        fclose(f);
        memset(out, 0, sizeof *out);
        return npy__fail("%s: out of memory for %zu bytes", path, out->size * 4);
    }
    if (fseek(f, (long)offset, SEEK_SET) != 0 || fread(out->data, 4, out->size, f) != out->size) {
        fclose(f);
        npy_free(out);
        return npy__fail("%s: cannot read the data (the file changed?)", path);
    }
    fclose(f);
    for (i = 0; i < out->size; i++) {   /* the bytes were read in place: decode them in place */
        unsigned char b[4];
        memcpy(b, &out->data[i], 4);
        npy__decode(&out->data[i], b, 1);
    }
    return 0;
}

int npy_write_memory(const float *data, int ndim, const int *shape, unsigned char **file, size_t *size)
{
    char dict[160];
    size_t n = 1, len, total, i;
    int k, pos;
    unsigned char *buf;
    if (file) *file = NULL;
    if (size) *size = 0;
    if (!data || !shape || !file || !size || ndim < 1 || ndim > NPY_MAX_DIMS)
        return npy__fail("npy_write: NULL argument or %d dimensions (expected 1 to %d)", ndim, NPY_MAX_DIMS);
    pos = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (k = 0; k < ndim; k++) {
        if (shape[k] < 1) return npy__fail("npy_write: dimension %d is %d (expected >= 1)", k, shape[k]);
        if (n > NPY_MAX_BYTES / 4 / (size_t)shape[k]) return npy__fail("npy_write: the array is too large");
        n *= (size_t)shape[k];
        pos += snprintf(dict + pos, sizeof dict - (size_t)pos, k + 1 < ndim ? "%d, " : ndim == 1 ? "%d,)" : "%d)",
                        shape[k]);
    }
    pos += snprintf(dict + pos, sizeof dict - (size_t)pos, ", }");
    len = (size_t)pos + 1;                 /* with the newline */
    len += (64 - (10 + len) % 64) % 64;    /* NumPy aligns the data on 64 bytes */
    total = 10 + len + n * 4;
    if (!(buf = (unsigned char *)NPY_MALLOC(total))) return npy__fail("npy_write: out of memory");
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(len & 0xff);
    buf[9] = (unsigned char)(len >> 8);
    memset(buf + 10, ' ', len);
    memcpy(buf + 10, dict, (size_t)pos);
    buf[10 + len - 1] = '\n';
    for (i = 0; i < n; i++) {
        uint32_t u;
        unsigned char *q = buf + 10 + len + 4 * i;
        memcpy(&u, &data[i], 4);
        q[0] = (unsigned char)u; q[1] = (unsigned char)(u >> 8);
        q[2] = (unsigned char)(u >> 16); q[3] = (unsigned char)(u >> 24);
    }
    *file = buf;
    *size = total;
    return 0;
}

int npy_write(const char *path, const float *data, int ndim, const int *shape)
{
    unsigned char *buf;
    size_t size;
    FILE *f;
    int bad;
    if (!path) return npy__fail("npy_write: NULL path");
    if (npy_write_memory(data, ndim, shape, &buf, &size) != 0) return -1;
    if (!(f = fopen(path, "wb"))) {
        NPY_FREE(buf);
        return npy__fail("%s: cannot create: %s", path, strerror(errno));
    }
    bad = fwrite(buf, 1, size, f) != size;
    bad |= fclose(f) != 0;
    NPY_FREE(buf);
    if (bad) return npy__fail("%s: cannot write %zu bytes", path, size);
    return 0;
}
#endif /* NPY_IMPLEMENTATION_DONE */
#endif /* NPY_IMPLEMENTATION */
