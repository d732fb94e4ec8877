/* plot.h - line charts of training curves, saved as PNG, for the example programs.

   Header-only: every function is static inline (so unused ones draw no warning). Include
   it in the program's .c file; it brings stb_image_write's implementation along, with
   static linkage. A program that compiles stb_image_write itself defines
   PLOT_EXTERN_STB_IMAGE_WRITE before including plot.h.

   Coordinates are pixels, origin at the top left, y down; pixel (i, j) covers
   [i, i+1) x [j, j+1). Text uses a built-in 5x7 bitmap font (printable ASCII). */
#ifndef NN_PLOT_H
#define NN_PLOT_H

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef PLOT_EXTERN_STB_IMAGE_WRITE
#undef STB_IMAGE_WRITE_IMPLEMENTATION   /* the declarations only */
#else
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#include <stb/stb_image_write.h>

typedef struct { unsigned char r, g, b; } plot_color;

typedef struct {
    int w, h;
    unsigned char *rgb;   /* w * h pixels, 3 bytes each, rows top to bottom */
} plot_canvas;

/* One line of a chart. x NULL puts the points at x = 0, 1, ..., n-1. Points with a
   non-finite coordinate are skipped (the line joins their neighbours). A series
   without a name is left out of the legend. */
typedef struct {
    const float *x;
    const float *y;
    int n;
    unsigned char r, g, b;
    const char *name;
} plot_series;

/* ---- canvas ---- */

/* A white canvas, or NULL when out of memory. */
static inline plot_canvas *plot_canvas_new(int w, int h)
{
    plot_canvas *c;
    size_t bytes;
    if (w <= 0 || h <= 0 || (size_t)w > (size_t)-1 / 3 / (size_t)h) return NULL;
    bytes = (size_t)w * (size_t)h * 3;
    c = (plot_canvas *)malloc(sizeof *c);
    if (!c) return NULL;
    c->rgb = (unsigned char *)malloc(bytes);
    if (!c->rgb) { free(c); return NULL; }
    memset(c->rgb, 255, bytes);
    c->w = w;
    c->h = h;
    return c;
}

static inline void plot_canvas_free(plot_canvas *c)
{
    if (!c) return;
    free(c->rgb);
    free(c);
}

/* 0 on success; -1, with a message on stderr, when the file cannot be written. */
static inline int plot_save_png(const plot_canvas *c, const char *path)
{
    errno = 0;
    if (stbi_write_png(path, c->w, c->h, 3, c->rgb, c->w * 3)) return 0;
    fprintf(stderr, "plot: cannot write %s: %s\n", path,
            errno ? strerror(errno) : "write failed");
    return -1;
}

/* ---- drawing primitives ---- */

static inline void plot_pixel(plot_canvas *c, int x, int y, plot_color col)
{
    unsigned char *p;
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = col.r;
    p[1] = col.g;
    p[2] = col.b;
}

/* Mixes col into pixel (x, y) with weight alpha in [0, 1]. */
static inline void plot_blend(plot_canvas *c, int x, int y, plot_color col, float alpha)
{
    unsigned char *p;
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || !(alpha > 0.0f)) return;
    if (alpha > 1.0f) alpha = 1.0f;
    p = c->rgb + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = (unsigned char)(p[0] + (col.r - p[0]) * alpha + 0.5f);
    p[1] = (unsigned char)(p[1] + (col.g - p[1]) * alpha + 0.5f);
    p[2] = (unsigned char)(p[2] + (col.b - p[2]) * alpha + 0.5f);
}

static inline void plot_fill_rect(plot_canvas *c, int x, int y, int w, int h, plot_color col)
{
    int i, j, x1 = x + w, y1 = y + h;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x1 > c->w) x1 = c->w;
    if (y1 > c->h) y1 = c->h;
    for (j = y; j < y1; j++)
        for (i = x; i < x1; i++) plot_pixel(c, i, j, col);
}

/* How much of the pixel centred at (px, py) a segment of the given width covers, in
   [0, 1]: antialiased, with round ends. */
static inline float plot_segment_coverage(float px, float py, float x0, float y0, float x1,
                                          float y1, float width)
{
    float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy, t = 0.0f, ex, ey, cover;
    if (len2 > 0.0f) {
        t = ((px - x0) * dx + (py - y0) * dy) / len2;
        t = t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t;
    }
    ex = x0 + t * dx - px;
    ey = y0 + t * dy - py;
    cover = 0.5f * width + 0.5f - sqrtf(ex * ex + ey * ey);
    return cover < 0.0f ? 0.0f : cover > 1.0f ? 1.0f : cover;
}

/* An antialiased line from (x0, y0) to (x1, y1), width pixels thick (1, 2, ...). */
static inline void plot_line(plot_canvas *c, float x0, float y0, float x1, float y1,
                             float width, plot_color col)
{
    float reach = 0.5f * width + 1.0f;
    int i, j;
    int i0 = (int)floorf(fminf(x0, x1) - reach), i1 = (int)ceilf(fmaxf(x0, x1) + reach);
    int j0 = (int)floorf(fminf(y0, y1) - reach), j1 = (int)ceilf(fmaxf(y0, y1) + reach);
    if (i0 < 0) i0 = 0;
    if (j0 < 0) j0 = 0;
    if (i1 > c->w) i1 = c->w;
    if (j1 > c->h) j1 = c->h;
    for (j = j0; j < j1; j++)
        for (i = i0; i < i1; i++)
            plot_blend(c, i, j, col,
                       plot_segment_coverage(i + 0.5f, j + 0.5f, x0, y0, x1, y1, width));
}

/* ---- text ---- */

#define PLOT_GLYPH_ROWS 9   /* 7 rows above the baseline, 2 for descenders */
#define PLOT_CAP_ROWS 7

/* Printable ASCII from ' ' on, 5 columns wide: one byte per row, bit 4 is the leftmost
   column. Glyphs are drawn as wide as their ink (proportional spacing). */
static const unsigned char plot_font[95][PLOT_GLYPH_ROWS] = {
    {0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, /* ' ' */
    {0x04,0x04,0x04,0x04,0x04,0x00,0x04,0x00,0x00}, /* '!' */
    {0x0a,0x0a,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, /* '"' */
    {0x0a,0x0a,0x1f,0x0a,0x1f,0x0a,0x0a,0x00,0x00}, /* '#' */
    {0x04,0x0f,0x14,0x0e,0x05,0x1e,0x04,0x00,0x00}, /* '$' */
    {0x18,0x19,0x02,0x04,0x08,0x13,0x03,0x00,0x00}, /* '%' */
    {0x0c,0x12,0x14,0x08,0x15,0x12,0x0d,0x00,0x00}, /* '&' */
    {0x04,0x04,0x08,0x00,0x00,0x00,0x00,0x00,0x00}, /* '\'' */
    {0x02,0x04,0x08,0x08,0x08,0x04,0x02,0x00,0x00}, /* '(' */
    {0x08,0x04,0x02,0x02,0x02,0x04,0x08,0x00,0x00}, /* ')' */
    {0x00,0x04,0x15,0x0e,0x15,0x04,0x00,0x00,0x00}, /* '*' */
    {0x00,0x04,0x04,0x1f,0x04,0x04,0x00,0x00,0x00}, /* '+' */
    {0x00,0x00,0x00,0x00,0x00,0x0c,0x0c,0x04,0x08}, /* ',' */
    {0x00,0x00,0x00,0x1f,0x00,0x00,0x00,0x00,0x00}, /* '-' */
    {0x00,0x00,0x00,0x00,0x00,0x0c,0x0c,0x00,0x00}, /* '.' */
    {0x00,0x01,0x02,0x04,0x08,0x10,0x00,0x00,0x00}, /* '/' */
    {0x0e,0x11,0x13,0x15,0x19,0x11,0x0e,0x00,0x00}, /* '0' */
    {0x04,0x0c,0x04,0x04,0x04,0x04,0x0e,0x00,0x00}, /* '1' */
    {0x0e,0x11,0x01,0x02,0x04,0x08,0x1f,0x00,0x00}, /* '2' */
    {0x0e,0x11,0x01,0x06,0x01,0x11,0x0e,0x00,0x00}, /* '3' */
    {0x02,0x06,0x0a,0x12,0x1f,0x02,0x02,0x00,0x00}, /* '4' */
    {0x1f,0x10,0x1e,0x01,0x01,0x11,0x0e,0x00,0x00}, /* '5' */
    {0x06,0x08,0x10,0x1e,0x11,0x11,0x0e,0x00,0x00}, /* '6' */
    {0x1f,0x01,0x02,0x04,0x08,0x08,0x08,0x00,0x00}, /* '7' */
    {0x0e,0x11,0x11,0x0e,0x11,0x11,0x0e,0x00,0x00}, /* '8' */
    {0x0e,0x11,0x11,0x0f,0x01,0x02,0x0c,0x00,0x00}, /* '9' */
    {0x00,0x0c,0x0c,0x00,0x00,0x0c,0x0c,0x00,0x00}, /* ':' */
    {0x00,0x0c,0x0c,0x00,0x00,0x0c,0x0c,0x04,0x08}, /* ';' */
    {0x02,0x04,0x08,0x10,0x08,0x04,0x02,0x00,0x00}, /* '<' */
    {0x00,0x00,0x1f,0x00,0x1f,0x00,0x00,0x00,0x00}, /* '=' */
    {0x08,0x04,0x02,0x01,0x02,0x04,0x08,0x00,0x00}, /* '>' */
    {0x0e,0x11,0x01,0x02,0x04,0x00,0x04,0x00,0x00}, /* '?' */
    {0x0e,0x11,0x17,0x15,0x17,0x10,0x0f,0x00,0x00}, /* '@' */
    {0x0e,0x11,0x11,0x1f,0x11,0x11,0x11,0x00,0x00}, /* 'A' */
    {0x1e,0x11,0x11,0x1e,0x11,0x11,0x1e,0x00,0x00}, /* 'B' */
    {0x0e,0x11,0x10,0x10,0x10,0x11,0x0e,0x00,0x00}, /* 'C' */
    {0x1e,0x11,0x11,0x11,0x11,0x11,0x1e,0x00,0x00}, /* 'D' */
    {0x1f,0x10,0x10,0x1e,0x10,0x10,0x1f,0x00,0x00}, /* 'E' */
    {0x1f,0x10,0x10,0x1e,0x10,0x10,0x10,0x00,0x00}, /* 'F' */
    {0x0e,0x11,0x10,0x17,0x11,0x11,0x0f,0x00,0x00}, /* 'G' */
    {0x11,0x11,0x11,0x1f,0x11,0x11,0x11,0x00,0x00}, /* 'H' */
    {0x0e,0x04,0x04,0x04,0x04,0x04,0x0e,0x00,0x00}, /* 'I' */
    {0x07,0x02,0x02,0x02,0x02,0x12,0x0c,0x00,0x00}, /* 'J' */
    {0x11,0x12,0x14,0x18,0x14,0x12,0x11,0x00,0x00}, /* 'K' */
    {0x10,0x10,0x10,0x10,0x10,0x10,0x1f,0x00,0x00}, /* 'L' */
    {0x11,0x1b,0x15,0x15,0x11,0x11,0x11,0x00,0x00}, /* 'M' */
    {0x11,0x11,0x19,0x15,0x13,0x11,0x11,0x00,0x00}, /* 'N' */
    {0x0e,0x11,0x11,0x11,0x11,0x11,0x0e,0x00,0x00}, /* 'O' */
    {0x1e,0x11,0x11,0x1e,0x10,0x10,0x10,0x00,0x00}, /* 'P' */
    {0x0e,0x11,0x11,0x11,0x15,0x12,0x0d,0x00,0x00}, /* 'Q' */
    {0x1e,0x11,0x11,0x1e,0x14,0x12,0x11,0x00,0x00}, /* 'R' */
    {0x0f,0x10,0x10,0x0e,0x01,0x01,0x1e,0x00,0x00}, /* 'S' */
    {0x1f,0x04,0x04,0x04,0x04,0x04,0x04,0x00,0x00}, /* 'T' */
    {0x11,0x11,0x11,0x11,0x11,0x11,0x0e,0x00,0x00}, /* 'U' */
    {0x11,0x11,0x11,0x11,0x11,0x0a,0x04,0x00,0x00}, /* 'V' */
    {0x11,0x11,0x11,0x15,0x15,0x15,0x0a,0x00,0x00}, /* 'W' */
    {0x11,0x11,0x0a,0x04,0x0a,0x11,0x11,0x00,0x00}, /* 'X' */
    {0x11,0x11,0x0a,0x04,0x04,0x04,0x04,0x00,0x00}, /* 'Y' */
    {0x1f,0x01,0x02,0x04,0x08,0x10,0x1f,0x00,0x00}, /* 'Z' */
    {0x0e,0x08,0x08,0x08,0x08,0x08,0x0e,0x00,0x00}, /* '[' */
    {0x00,0x10,0x08,0x04,0x02,0x01,0x00,0x00,0x00}, /* '\\' */
    {0x0e,0x02,0x02,0x02,0x02,0x02,0x0e,0x00,0x00}, /* ']' */
    {0x04,0x0a,0x11,0x00,0x00,0x00,0x00,0x00,0x00}, /* '^' */
    {0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x1f}, /* '_' */
    {0x08,0x04,0x00,0x00,0x00,0x00,0x00,0x00,0x00}, /* '`' */
    {0x00,0x00,0x0e,0x01,0x0f,0x11,0x0f,0x00,0x00}, /* 'a' */
    {0x10,0x10,0x16,0x19,0x11,0x11,0x1e,0x00,0x00}, /* 'b' */
    {0x00,0x00,0x0e,0x10,0x10,0x11,0x0e,0x00,0x00}, /* 'c' */
    {0x01,0x01,0x0d,0x13,0x11,0x11,0x0f,0x00,0x00}, /* 'd' */
    {0x00,0x00,0x0e,0x11,0x1f,0x10,0x0e,0x00,0x00}, /* 'e' */
    {0x06,0x09,0x08,0x1c,0x08,0x08,0x08,0x00,0x00}, /* 'f' */
    {0x00,0x00,0x0f,0x11,0x11,0x11,0x0f,0x01,0x0e}, /* 'g' */
    {0x10,0x10,0x16,0x19,0x11,0x11,0x11,0x00,0x00}, /* 'h' */
    {0x04,0x00,0x0c,0x04,0x04,0x04,0x0e,0x00,0x00}, /* 'i' */
    {0x02,0x00,0x06,0x02,0x02,0x02,0x02,0x12,0x0c}, /* 'j' */
    {0x10,0x10,0x12,0x14,0x18,0x14,0x12,0x00,0x00}, /* 'k' */
    {0x0c,0x04,0x04,0x04,0x04,0x04,0x0e,0x00,0x00}, /* 'l' */
    {0x00,0x00,0x1a,0x15,0x15,0x11,0x11,0x00,0x00}, /* 'm' */
    {0x00,0x00,0x16,0x19,0x11,0x11,0x11,0x00,0x00}, /* 'n' */
    {0x00,0x00,0x0e,0x11,0x11,0x11,0x0e,0x00,0x00}, /* 'o' */
    {0x00,0x00,0x1e,0x11,0x11,0x11,0x1e,0x10,0x10}, /* 'p' */
    {0x00,0x00,0x0f,0x11,0x11,0x11,0x0f,0x01,0x01}, /* 'q' */
    {0x00,0x00,0x16,0x19,0x10,0x10,0x10,0x00,0x00}, /* 'r' */
    {0x00,0x00,0x0f,0x10,0x0e,0x01,0x1e,0x00,0x00}, /* 's' */
    {0x08,0x08,0x1e,0x08,0x08,0x09,0x06,0x00,0x00}, /* 't' */
    {0x00,0x00,0x11,0x11,0x11,0x13,0x0d,0x00,0x00}, /* 'u' */
    {0x00,0x00,0x11,0x11,0x11,0x0a,0x04,0x00,0x00}, /* 'v' */
    {0x00,0x00,0x11,0x11,0x15,0x15,0x0a,0x00,0x00}, /* 'w' */
    {0x00,0x00,0x11,0x0a,0x04,0x0a,0x11,0x00,0x00}, /* 'x' */
    {0x00,0x00,0x11,0x11,0x11,0x11,0x0f,0x01,0x0e}, /* 'y' */
    {0x00,0x00,0x1f,0x02,0x04,0x08,0x1f,0x00,0x00}, /* 'z' */
    {0x02,0x04,0x04,0x08,0x04,0x04,0x02,0x00,0x00}, /* '{' */
    {0x04,0x04,0x04,0x04,0x04,0x04,0x04,0x00,0x00}, /* '|' */
    {0x08,0x04,0x04,0x02,0x04,0x04,0x08,0x00,0x00}, /* '}' */
    {0x00,0x00,0x08,0x15,0x02,0x00,0x00,0x00,0x00}, /* '~' */
};

/* The glyph of ch; '?' for characters outside printable ASCII. */
static inline const unsigned char *plot_glyph(char ch)
{
    unsigned char u = (unsigned char)ch;
    return plot_font[(u >= 32 && u < 127 ? u : '?') - 32];
}

/* The first and last columns of a glyph that have ink; a space gets three columns. */
static inline void plot_glyph_columns(const unsigned char *glyph, int *first, int *last)
{
    unsigned ink = 0;
    int row;
    for (row = 0; row < PLOT_GLYPH_ROWS; row++) ink |= glyph[row];
    *first = 0;
    *last = 2;
    if (!ink) return;
    while (!(ink & (0x10u >> *first))) ++*first;
    for (*last = 4; !(ink & (0x10u >> *last)); --*last) {}
}

/* Width in pixels of text drawn at the given scale. */
static inline int plot_text_width(const char *text, int scale)
{
    int w = 0, first, last;
    for (; *text; text++) {
        plot_glyph_columns(plot_glyph(*text), &first, &last);
        w += last - first + 1 + (text[1] ? 1 : 0);
    }
    return w * scale;
}

/* Draws text with its top left corner at (x, y); each font pixel becomes a scale x scale
   square. Capitals are 7 * scale pixels high; descenders reach 9 * scale. */
static inline void plot_text(plot_canvas *c, int x, int y, const char *text, int scale,
                             plot_color col)
{
    int first, last, row, column;
    for (; *text; text++) {
        const unsigned char *glyph = plot_glyph(*text);
        plot_glyph_columns(glyph, &first, &last);
        for (row = 0; row < PLOT_GLYPH_ROWS; row++)
            for (column = first; column <= last; column++)
                if (glyph[row] & (0x10u >> column))
                    plot_fill_rect(c, x + (column - first) * scale, y + row * scale, scale,
                                   scale, col);
        x += (last - first + 2) * scale;
    }
}

/* ---- axes ---- */

#define PLOT_MAX_TICKS 16

/* The round step (1, 2 or 5 times a power of ten) whose tick count over span comes
   closest to target. */
static inline double plot_nice_step(double span, int target)
{
    static const double multiples[4] = {1.0, 2.0, 5.0, 10.0};
    double magnitude = pow(10.0, floor(log10(span / target))), best = magnitude;
    int i;
    for (i = 1; i < 4; i++) {
        double step = multiples[i] * magnitude;
        if (fabs(span / step - target) < fabs(span / best - target)) best = step;
    }
    return best;
}

/* The round values k * step inside [lo, hi], about target of them: writes at most max to
   ticks, the step to *step, and returns how many. */
static inline int plot_ticks(double lo, double hi, int target, double *step, double *ticks,
                             int max)
{
    double k, k_end;
    int n = 0;
    *step = 0.0;
    if (!(hi > lo) || !isfinite(hi - lo) || target < 1) return 0;
    *step = plot_nice_step(hi - lo, target);
    k = ceil(lo / *step - 1e-9);
    k_end = floor(hi / *step + 1e-9);
    for (; k <= k_end && n < max; k++) ticks[n++] = k * *step + 0.0;   /* + 0.0: no -0 */
    return n;
}

/* Tick value v as text, with the decimals its axis' step needs; exponent notation for
   axes whose largest value (max_abs) is huge or whose step is tiny. */
static inline void plot_format_tick(double v, double step, double max_abs, char *buf,
                                    size_t size)
{
    if (max_abs >= 1e6 || step < 1e-4)
        snprintf(buf, size, "%g", v);
    else
        snprintf(buf, size, "%.*f", step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9), v);
}

/* Point i of s in *x, *y; 0 when it is to be skipped (a coordinate is not finite). */
static inline int plot_point(const plot_series *s, int i, double *x, double *y)
{
    *x = s->x ? (double)s->x[i] : (double)i;
    *y = s->y[i];
    return isfinite(*x) && isfinite(*y);
}

static inline int plot_series_length(const plot_series *s)
{
    return s->y ? s->n : 0;
}

/* The range of the series' x (axis 0) or y (axis 1) values, with a 4% margin each side.
   Equal values (to about 5 digits) get a range of +-10% around them (+-1 around 0); no
   values at all get [0, 1]. */
static inline void plot_auto_range(const plot_series *series, int nseries, int axis, double *lo,
                                   double *hi)
{
    double a = HUGE_VAL, b = -HUGE_VAL, x, y, mid;
    int k, i;
    for (k = 0; k < nseries; k++)
        for (i = 0; i < plot_series_length(&series[k]); i++)
            if (plot_point(&series[k], i, &x, &y)) {
                double v = axis ? y : x;
                if (v < a) a = v;
                if (v > b) b = v;
            }
    if (a > b) {
        *lo = 0.0;
        *hi = 1.0;
    } else if (b - a <= 1e-5 * fmax(fabs(a), fabs(b))) {
        mid = 0.5 * (a + b);
        *lo = mid == 0.0 ? -1.0 : mid - 0.1 * fabs(mid);
        *hi = mid == 0.0 ? 1.0 : mid + 0.1 * fabs(mid);
    } else {
        *lo = a - 0.04 * (b - a);
        *hi = b + 0.04 * (b - a);
    }
}

/* ---- charts ---- */

/* A chart's plot area on the canvas and the data range it shows. */
typedef struct {
    int x, y, w, h;
    double x_lo, x_hi, y_lo, y_hi;
} plot_frame;

static inline float plot_frame_x(const plot_frame *f, double x)
{
    return (float)(f->x + (x - f->x_lo) / (f->x_hi - f->x_lo) * f->w);
}

static inline float plot_frame_y(const plot_frame *f, double y)
{
    return (float)(f->y + f->h - (y - f->y_lo) / (f->y_hi - f->y_lo) * f->h);
}

/* Raises mask (one float per pixel of the plot area) to the coverage of a segment. */
static inline void plot_mask_segment(float *mask, const plot_frame *f, float x0, float y0,
                                     float x1, float y1, float width)
{
    float reach = 0.5f * width + 1.0f;
    int i, j;
    int i0 = (int)floorf(fminf(x0, x1) - reach), i1 = (int)ceilf(fmaxf(x0, x1) + reach);
    int j0 = (int)floorf(fminf(y0, y1) - reach), j1 = (int)ceilf(fmaxf(y0, y1) + reach);
    if (i0 < f->x) i0 = f->x;
    if (j0 < f->y) j0 = f->y;
    if (i1 > f->x + f->w) i1 = f->x + f->w;
    if (j1 > f->y + f->h) j1 = f->y + f->h;
    for (j = j0; j < j1; j++)
        for (i = i0; i < i1; i++) {
            float *m = &mask[(size_t)(j - f->y) * (size_t)f->w + (size_t)(i - f->x)];
            float cover = plot_segment_coverage(i + 0.5f, j + 0.5f, x0, y0, x1, y1, width);
            if (cover > *m) *m = cover;
        }
}

/* Draws a series as a polyline clipped to the plot area, joining its finite points; a
   single finite point becomes a dot three times the line width. Joints are not darkened
   by overlapping segments: each pixel takes the largest coverage of any segment. -1 when
   out of memory. */
static inline int plot_draw_series(plot_canvas *c, const plot_frame *f, const plot_series *s,
                                   float width)
{
    plot_color col;
    float *mask = (float *)calloc((size_t)f->w * (size_t)f->h, sizeof *mask);
    float last_x = 0.0f, last_y = 0.0f;
    double x, y;
    int i, j, started = 0, finite = 0;
    if (!mask) return -1;
    for (i = 0; i < plot_series_length(s); i++) finite += plot_point(s, i, &x, &y);
    if (finite == 1) width *= 3.0f;
    for (i = 0; i < plot_series_length(s); i++) {
        float px, py;
        if (!plot_point(s, i, &x, &y)) continue;
        px = plot_frame_x(f, x);
        py = plot_frame_y(f, y);
        plot_mask_segment(mask, f, started ? last_x : px, started ? last_y : py, px, py, width);
        last_x = px;
        last_y = py;
        started = 1;
    }
    col.r = s->r;
    col.g = s->g;
    col.b = s->b;
    for (j = 0; j < f->h; j++)
        for (i = 0; i < f->w; i++)
            plot_blend(c, f->x + i, f->y + j, col, mask[(size_t)j * (size_t)f->w + (size_t)i]);
    free(mask);
    return 0;
}

/* How many points of the series, and of 7 samples along each of their segments, fall in
   the rectangle (x, y, w, h): the legend goes where this is smallest. */
static inline int plot_points_in_rect(const plot_frame *f, const plot_series *series,
                                      int nseries, int x, int y, int w, int h)
{
    int k, i, t, inside = 0;
    for (k = 0; k < nseries; k++) {
        float last_x = 0.0f, last_y = 0.0f;
        int started = 0;
        for (i = 0; i < plot_series_length(&series[k]); i++) {
            double vx, vy;
            float px, py;
            if (!plot_point(&series[k], i, &vx, &vy)) continue;
            px = plot_frame_x(f, vx);
            py = plot_frame_y(f, vy);
            for (t = started ? 1 : 8; t <= 8; t++) {
                float sx = last_x + (px - last_x) * t / 8.0f;
                float sy = last_y + (py - last_y) * t / 8.0f;
                inside += sx >= x && sx < x + w && sy >= y && sy < y + h;
            }
            last_x = px;
            last_y = py;
            started = 1;
        }
    }
    return inside;
}

/* A box naming each named series that has values beside a stroke of its colour, in the
   corner of the plot area where it hides the least data. */
static inline void plot_legend(plot_canvas *c, const plot_frame *f, const plot_series *series,
                               int nseries, int scale)
{
    const plot_color border = {190, 190, 190}, white = {255, 255, 255}, ink = {40, 40, 40};
    const int pad = 4 * scale, stroke = 10 * scale, row_h = PLOT_GLYPH_ROWS * scale + scale;
    int k, entries = 0, name_w = 0, box_w, box_h, corner, best = -1, best_count = 0, row;
    int box_x = 0, box_y = 0;
    for (k = 0; k < nseries; k++)
        if (series[k].name && plot_series_length(&series[k]) > 0) {
            int w = plot_text_width(series[k].name, scale);
            if (w > name_w) name_w = w;
            entries++;
        }
    if (!entries) return;
    box_w = pad + stroke + pad + name_w + pad;
    box_h = pad + entries * row_h - scale + pad;
    /* Corners in order of preference: top right, top left, bottom right, bottom left. */
    for (corner = 0; corner < 4; corner++) {
        int x = corner % 2 ? f->x + 2 * pad : f->x + f->w - 2 * pad - box_w;
        int y = corner < 2 ? f->y + 2 * pad : f->y + f->h - 2 * pad - box_h;
        int count = plot_points_in_rect(f, series, nseries, x - pad, y - pad, box_w + 2 * pad,
                                        box_h + 2 * pad);
        if (best < 0 || count < best_count) {
            best = corner;
            best_count = count;
            box_x = x;
            box_y = y;
        }
    }
    plot_fill_rect(c, box_x, box_y, box_w, box_h, border);
    plot_fill_rect(c, box_x + 1, box_y + 1, box_w - 2, box_h - 2, white);
    for (k = 0, row = 0; k < nseries; k++) {
        plot_color col;
        int y = box_y + pad + row * row_h;
        if (!series[k].name || plot_series_length(&series[k]) <= 0) continue;
        col.r = series[k].r;
        col.g = series[k].g;
        col.b = series[k].b;
        plot_fill_rect(c, box_x + pad, y + (PLOT_CAP_ROWS * scale) / 2 - scale, stroke,
                       2 * scale, col);
        plot_text(c, box_x + pad + stroke + pad, y, series[k].name, scale, ink);
        row++;
    }
}

/* A line chart of the series in the canvas rectangle (x0, y0, w, h): title on top (may
   be NULL), axes with round ticks and a light grid, the x label below (may be NULL) and
   a legend. The ranges fit the data. Text is twice as large in panels of at least
   400 x 250. -1, with a message, when out of memory or the rectangle is too small. */
static inline int plot_panel(plot_canvas *c, int x0, int y0, int w, int h, const char *title,
                             const char *xlabel, const plot_series *series, int nseries)
{
    const plot_color ink = {40, 40, 40}, axis = {90, 90, 90}, grid = {225, 225, 225};
    const int scale = w >= 400 && h >= 250 ? 2 : 1;
    const int pad = 4 * scale, tick = 3 * scale, text_h = PLOT_GLYPH_ROWS * scale;
    const int cap_h = PLOT_CAP_ROWS * scale;
    double x_ticks[PLOT_MAX_TICKS], y_ticks[PLOT_MAX_TICKS], x_step, y_step, x_abs, y_abs;
    char y_labels[PLOT_MAX_TICKS][32], label[32];
    int nx = 0, ny, i, k, target, label_w = 0, top, bottom, left, right;
    plot_frame f;

    plot_auto_range(series, nseries, 0, &f.x_lo, &f.x_hi);
    plot_auto_range(series, nseries, 1, &f.y_lo, &f.y_hi);
    x_abs = fmax(fabs(f.x_lo), fabs(f.x_hi));
    y_abs = fmax(fabs(f.y_lo), fabs(f.y_hi));
    ny = plot_ticks(f.y_lo, f.y_hi, 5, &y_step, y_ticks, PLOT_MAX_TICKS);
    for (i = 0; i < ny; i++) {
        int lw;
        plot_format_tick(y_ticks[i], y_step, y_abs, y_labels[i], sizeof y_labels[i]);
        lw = plot_text_width(y_labels[i], scale);
        if (lw > label_w) label_w = lw;
    }
    top = pad + (title ? text_h + pad : 0);
    bottom = 1 + tick + pad + text_h + (xlabel ? pad + text_h : 0) + pad;
    left = pad + label_w + pad + tick + 1;
    right = 4 * pad;
    f.x = x0 + left;
    f.y = y0 + top;
    f.w = w - left - right;
    f.h = h - top - bottom;
    if (f.w < 20 || f.h < 20) {
        fprintf(stderr, "plot: panel of %d x %d pixels is too small\n", w, h);
        return -1;
    }

    /* Fewer x ticks while their labels would touch. */
    for (target = 5; target >= 2; target--) {
        int widest = 0;
        nx = plot_ticks(f.x_lo, f.x_hi, target, &x_step, x_ticks, PLOT_MAX_TICKS);
        for (i = 0; i < nx; i++) {
            plot_format_tick(x_ticks[i], x_step, x_abs, label, sizeof label);
            if (plot_text_width(label, scale) > widest) widest = plot_text_width(label, scale);
        }
        if (widest + 3 * pad <= x_step / (f.x_hi - f.x_lo) * f.w) break;
    }

    for (i = 0; i < nx; i++)
        plot_fill_rect(c, (int)plot_frame_x(&f, x_ticks[i]), f.y, 1, f.h, grid);
    for (i = 0; i < ny; i++)
        plot_fill_rect(c, f.x, (int)plot_frame_y(&f, y_ticks[i]), f.w, 1, grid);
    for (k = 0; k < nseries; k++)
        if (plot_draw_series(c, &f, &series[k], 1.5f + 0.5f * scale) != 0) {
            fprintf(stderr, "plot: out of memory\n");
            return -1;
        }

    /* Frame just outside the plot area, ticks and their labels. */
    plot_fill_rect(c, f.x - 1, f.y - 1, f.w + 2, 1, axis);
    plot_fill_rect(c, f.x - 1, f.y + f.h, f.w + 2, 1, axis);
    plot_fill_rect(c, f.x - 1, f.y - 1, 1, f.h + 2, axis);
    plot_fill_rect(c, f.x + f.w, f.y - 1, 1, f.h + 2, axis);
    for (i = 0; i < ny; i++) {
        int y = (int)plot_frame_y(&f, y_ticks[i]);
        plot_fill_rect(c, f.x - 1 - tick, y, tick, 1, axis);
        plot_text(c, f.x - 1 - tick - pad - plot_text_width(y_labels[i], scale), y - cap_h / 2,
                  y_labels[i], scale, ink);
    }
    for (i = 0; i < nx; i++) {
        int x = (int)plot_frame_x(&f, x_ticks[i]);
        plot_fill_rect(c, x, f.y + f.h + 1, 1, tick, axis);
        plot_format_tick(x_ticks[i], x_step, x_abs, label, sizeof label);
        plot_text(c, x - plot_text_width(label, scale) / 2, f.y + f.h + 1 + tick + pad, label,
                  scale, ink);
    }

    if (title)
        plot_text(c, f.x + (f.w - plot_text_width(title, scale)) / 2, y0 + pad, title, scale,
                  ink);
    if (xlabel)
        plot_text(c, f.x + (f.w - plot_text_width(xlabel, scale)) / 2,
                  f.y + f.h + 1 + tick + pad + text_h + pad, xlabel, scale, ink);
    plot_legend(c, &f, series, nseries, scale);
    return 0;
}

/* One PNG of 1000 x 420 with two charts side by side, "loss" and "accuracy", each with a
   train and a test curve against the step. Either set may be empty (n 0 or NULL
   values); title may be NULL. 0 on success, -1 with a message on failure. */
/* Loss (left) and accuracy (right) side by side, count series each, against xlabel,
   under a title (NULL: none); written to path as a PNG. */
static inline int plot_loss_and_accuracy(const char *path, const char *title, const char *xlabel,
                                         const plot_series *loss, const plot_series *accuracy, int count)
{
    const int width = 1000, height = 420, title_scale = 3;
    const plot_color ink = {40, 40, 40};
    plot_canvas *c = plot_canvas_new(width, height);
    int top = 0, status;
    if (!c) {
        fprintf(stderr, "plot: out of memory for %s\n", path);
        return -1;
    }
    if (title) {
        top = 10 + PLOT_CAP_ROWS * title_scale;
        plot_text(c, (width - plot_text_width(title, title_scale)) / 2, 10, title, title_scale,
                  ink);
    }
    status = plot_panel(c, 0, top, width / 2, height - top, "loss", xlabel, loss, count);
    if (status == 0)
        status = plot_panel(c, width / 2, top, width - width / 2, height - top, "accuracy",
                            xlabel, accuracy, count);
    if (status == 0) status = plot_save_png(c, path);
    plot_canvas_free(c);
    return status;
}

static inline int plot_training_curves(const char *path, const float *steps_train,
                                       const float *train_loss, const float *train_acc,
                                       int n_train, const float *steps_test,
                                       const float *test_loss, const float *test_acc,
                                       int n_test, const char *title)
{
    plot_series loss[2] = {{NULL, NULL, 0, 31, 119, 180, "train"},
                           {NULL, NULL, 0, 255, 127, 14, "test"}};
    plot_series accuracy[2];
    loss[0].x = steps_train;
    loss[0].y = train_loss;
    loss[0].n = n_train;
    loss[1].x = steps_test;
    loss[1].y = test_loss;
    loss[1].n = n_test;
    accuracy[0] = loss[0];
    accuracy[0].y = train_acc;
    accuracy[1] = loss[1];
    accuracy[1].y = test_acc;
    return plot_loss_and_accuracy(path, title, "step", loss, accuracy, 2);
}

#endif
