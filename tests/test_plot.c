/* examples/plot.h: canvas, lines, text, round ticks, ranges, charts and their PNGs. */
#define _POSIX_C_SOURCE 200809L   /* mkstemp, close */
#include <unistd.h>
#include "examples/plot.h"
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#include "harness.h"

static const plot_color blue = {31, 119, 180}, orange = {255, 127, 14};

static int is_color(const unsigned char *p, plot_color c)
{
    return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

/* The colour of text (darker than the axes' grey). */
static int is_ink(const unsigned char *p)
{
    return p[0] < 64 && p[1] < 64 && p[2] < 64;
}

static const unsigned char *pixel_at(const plot_canvas *c, int x, int y)
{
    return c->rgb + ((size_t)y * c->w + x) * 3;
}

/* Pixels of colour col in the columns [x0, x1) of an RGB image: their count, extremes
   and mean row. */
typedef struct { int count, min_x, max_x, y_at_min_x, y_at_max_x; double mean_y; } color_stats;

static color_stats find_color(const unsigned char *rgb, int w, int h, int x0, int x1,
                              plot_color col)
{
    color_stats s = {0, INT_MAX, -1, 0, 0, 0.0};
    int x, y;
    for (y = 0; y < h; y++)
        for (x = x0; x < x1; x++)
            if (is_color(rgb + ((size_t)y * w + x) * 3, col)) {
                s.count++;
                s.mean_y += y;
                if (x < s.min_x) { s.min_x = x; s.y_at_min_x = y; }
                if (x > s.max_x) { s.max_x = x; s.y_at_max_x = y; }
            }
    if (s.count) s.mean_y /= s.count;
    return s;
}

static void test_nice_ticks_on_known_ranges(void)
{
    double t[PLOT_MAX_TICKS], step;
    int n, i;

    n = plot_ticks(0.0, 1.0, 5, &step, t, PLOT_MAX_TICKS);
    CHECK(n == 6, "0..1 gave %d ticks", n);
    CHECK_NEAR(step, 0.2, 1e-12);
    for (i = 0; i < n && i < 6; i++) CHECK_NEAR(t[i], 0.2 * i, 1e-12);

    n = plot_ticks(0.0, 1500.0, 5, &step, t, PLOT_MAX_TICKS);
    CHECK(n == 4, "0..1500 gave %d ticks", n);
    CHECK_NEAR(step, 500.0, 1e-12);
    for (i = 0; i < n && i < 4; i++) CHECK_NEAR(t[i], 500.0 * i, 1e-12);

    /* Inside the range only. */
    n = plot_ticks(-0.37, 0.93, 5, &step, t, PLOT_MAX_TICKS);
    CHECK(n == 6, "-0.37..0.93 gave %d ticks", n);
    CHECK_NEAR(t[0], -0.2, 1e-12);
    CHECK_NEAR(t[n - 1], 0.8, 1e-12);

    /* ceil(-0.5) is -0: the zero tick must still be +0 (no "-0.0" label). */
    n = plot_ticks(-0.1, 0.9, 5, &step, t, PLOT_MAX_TICKS);
    CHECK(n >= 1 && t[0] == 0.0 && !signbit(t[0]), "first tick %g", t[0]);

    /* Any range: a step of 1, 2 or 5 times a power of ten, about 5 ticks. */
    for (i = 0; i < 200; i++) {
        double lo = -50.0 + i * 0.731, hi = lo + pow(10.0, i % 13 - 6) * (1.0 + (i % 7) * 1.3);
        double mantissa;
        n = plot_ticks(lo, hi, 5, &step, t, PLOT_MAX_TICKS);
        mantissa = step / pow(10.0, floor(log10(step) + 1e-9));
        CHECK(n >= 3 && n <= 8, "%g..%g gave %d ticks", lo, hi, n);
        CHECK(fabs(mantissa - 1) < 1e-9 || fabs(mantissa - 2) < 1e-9 ||
                  fabs(mantissa - 5) < 1e-9, "step %g", step);
        CHECK(t[0] >= lo - 1e-6 * step && t[n - 1] <= hi + 1e-6 * step, "%g..%g", lo, hi);
    }

    CHECK(plot_ticks(1.0, 1.0, 5, &step, t, PLOT_MAX_TICKS) == 0, "empty range");
}

static void test_tick_labels(void)
{
    char buf[32];
    plot_format_tick(3 * 0.2, 0.2, 1.0, buf, sizeof buf);
    CHECK(strcmp(buf, "0.6") == 0, "got %s", buf);
    plot_format_tick(0.05, 0.05, 0.2, buf, sizeof buf);
    CHECK(strcmp(buf, "0.05") == 0, "got %s", buf);
    plot_format_tick(1000.0, 500.0, 1500.0, buf, sizeof buf);
    CHECK(strcmp(buf, "1000") == 0, "got %s", buf);
    plot_format_tick(-1.5, 0.5, 2.0, buf, sizeof buf);
    CHECK(strcmp(buf, "-1.5") == 0, "got %s", buf);
    plot_format_tick(2e6, 5e5, 3e6, buf, sizeof buf);
    CHECK(strcmp(buf, "2e+06") == 0, "got %s", buf);
}

static void test_auto_range(void)
{
    static const float constant[4] = {3.0f, 3.0f, 3.0f, 3.0f};
    static const float zeros[2] = {0.0f, 0.0f};
    float gappy[6] = {1.0f, 0.0f, 3.0f, 0.0f, 2.0f, 0.0f}, none[3];
    plot_series s = {NULL, constant, 4, 0, 0, 0, NULL};
    double lo, hi, t[PLOT_MAX_TICKS], step;
    int n, i, has_three = 0;

    /* A constant series: a range around it whose ticks include it. */
    plot_auto_range(&s, 1, 1, &lo, &hi);
    CHECK(lo < 3.0 && hi > 3.0 && hi - lo < 1.0, "constant 3: %g..%g", lo, hi);
    n = plot_ticks(lo, hi, 5, &step, t, PLOT_MAX_TICKS);
    for (i = 0; i < n; i++) has_three += fabs(t[i] - 3.0) < 1e-9;
    CHECK(n >= 3 && n <= 8 && has_three, "%d ticks over %g..%g", n, lo, hi);

    s.y = zeros;
    s.n = 2;
    plot_auto_range(&s, 1, 1, &lo, &hi);
    CHECK(lo == -1.0 && hi == 1.0, "constant 0: %g..%g", lo, hi);

    s.n = 1;   /* a single value */
    plot_auto_range(&s, 1, 0, &lo, &hi);
    CHECK(lo < 0.0 && hi > 0.0, "single point's x: %g..%g", lo, hi);

    /* NaN and infinities are skipped; a 4% margin each side. */
    gappy[1] = NAN;
    gappy[3] = INFINITY;
    gappy[5] = -INFINITY;
    s.y = gappy;
    s.n = 6;
    plot_auto_range(&s, 1, 1, &lo, &hi);
    CHECK_NEAR(lo, 1.0 - 0.08, 1e-9);
    CHECK_NEAR(hi, 3.0 + 0.08, 1e-9);

    for (i = 0; i < 3; i++) none[i] = NAN;
    s.y = none;
    s.n = 3;
    plot_auto_range(&s, 1, 1, &lo, &hi);
    CHECK(lo == 0.0 && hi == 1.0, "no finite value: %g..%g", lo, hi);
}

static void test_canvas_and_primitives(void)
{
    const plot_color black = {0, 0, 0};
    plot_canvas *c = plot_canvas_new(40, 30);
    int x, white = 1, on = 0, off = 0;
    CHECK(plot_canvas_new(0, 10) == NULL && plot_canvas_new(10, -1) == NULL, "bad sizes");
    CHECK(c != NULL, "40 x 30");
    if (!c) return;
    for (x = 0; x < 40 * 30 * 3; x++) white &= c->rgb[x] == 255;
    CHECK(white, "a new canvas is white");

    /* A 1 pixel line along a row of pixel centres is crisp: that row only. */
    plot_line(c, 5.5f, 10.5f, 25.5f, 10.5f, 1.0f, black);
    for (x = 5; x <= 25; x++) on += is_color(pixel_at(c, x, 10), black);
    for (x = 0; x < 40; x++) off += !is_color(pixel_at(c, x, 9), (plot_color){255, 255, 255}) +
                                    !is_color(pixel_at(c, x, 11), (plot_color){255, 255, 255});
    CHECK(on == 21 && off == 0, "%d on, %d off the row", on, off);

    /* Clipped at the edges: nothing outside the canvas is touched (ASan watches). */
    plot_line(c, -10.0f, -10.0f, 60.0f, 45.0f, 2.0f, black);
    plot_fill_rect(c, 35, 25, 20, 20, blue);
    CHECK(is_color(pixel_at(c, 39, 29), blue), "clipped rectangle");
    CHECK(is_color(pixel_at(c, 20, 13), black), "thick diagonal line through (20.5, 14)");
    plot_pixel(c, -1, 0, black);
    plot_pixel(c, 40, 30, black);

    /* The blend of half white, half black. */
    plot_fill_rect(c, 0, 0, 1, 1, (plot_color){255, 255, 255});
    plot_blend(c, 0, 0, black, 0.5f);
    CHECK(pixel_at(c, 0, 0)[0] == 128, "blend gave %d", pixel_at(c, 0, 0)[0]);
    plot_canvas_free(c);
}

static void test_text(void)
{
    const plot_color black = {0, 0, 0};
    plot_canvas *c = plot_canvas_new(80, 40);
    int x, y, ink = 0, question_ink = 0;
    if (!c) { CHECK(0, "canvas"); return; }
    /* Proportional: '1' is 3 columns, 'a' 5, with one column between glyphs. */
    CHECK(plot_text_width("1", 1) == 3, "width of 1: %d", plot_text_width("1", 1));
    CHECK(plot_text_width("ab", 2) == 22, "width of ab: %d", plot_text_width("ab", 2));
    CHECK(plot_text_width("", 3) == 0, "empty");

    /* '8' has 17 lit font pixels; at scale 2 each is 2 x 2. */
    plot_text(c, 3, 4, "8", 2, black);
    for (y = 0; y < 40; y++)
        for (x = 0; x < 80; x++) ink += is_color(pixel_at(c, x, y), black);
    CHECK(ink == 17 * 4, "'8' at scale 2 lit %d pixels", ink);
    CHECK(is_color(pixel_at(c, 3 + 2, 4), black) && !is_color(pixel_at(c, 3, 4), black),
          "top row of 8 is .###.");

    /* Characters outside ASCII are drawn as '?'; text beyond the canvas is clipped. */
    memset(c->rgb, 255, (size_t)80 * 40 * 3);
    plot_text(c, 0, 0, "\x80", 1, black);
    for (y = 0; y < 40; y++)
        for (x = 0; x < 80; x++) question_ink += is_color(pixel_at(c, x, y), black);
    CHECK(question_ink == 9, "'?' lit %d pixels", question_ink);
    plot_text(c, 70, 35, "Clipped (text) 1.5e-3%", 3, black);
    plot_canvas_free(c);
}

/* A chart of one line: where its pixels go, and that the axes got their labels. */
static void check_line_direction(int rising)
{
    float x[50], y[50];
    plot_series s = {x, y, 50, 31, 119, 180, NULL};
    plot_canvas *c = plot_canvas_new(500, 300);
    color_stats st;
    int i, px, py, labels_left = 0, labels_below = 0;
    if (!c) { CHECK(0, "canvas"); return; }
    for (i = 0; i < 50; i++) {
        x[i] = 100.0f + 10.0f * i;
        y[i] = rising ? 0.02f * i : 5.0f - 0.1f * i;
    }
    CHECK(plot_panel(c, 0, 0, 500, 300, "title", "step", &s, 1) == 0, "panel");
    st = find_color(c->rgb, 500, 300, 0, 500, blue);
    CHECK(st.count > 400, "%d blue pixels", st.count);
    CHECK(st.max_x - st.min_x > 300, "line spans x %d..%d", st.min_x, st.max_x);
    if (rising)
        CHECK(st.y_at_max_x < st.y_at_min_x - 150, "rising: y %d -> %d", st.y_at_min_x,
              st.y_at_max_x);
    else
        CHECK(st.y_at_max_x > st.y_at_min_x + 150, "falling: y %d -> %d", st.y_at_min_x,
              st.y_at_max_x);
    /* Tick labels left of the plot area and below it. */
    for (py = 0; py < 300; py++)
        for (px = 0; px < st.min_x - 15; px++) labels_left += is_ink(pixel_at(c, px, py));
    for (py = (rising ? st.y_at_min_x : st.y_at_max_x) + 15; py < 300; py++)
        for (px = 0; px < 500; px++) labels_below += is_ink(pixel_at(c, px, py));
    CHECK(labels_left > 100, "%d dark pixels left of the axis", labels_left);
    CHECK(labels_below > 100, "%d dark pixels below the axis", labels_below);
    plot_canvas_free(c);
}

static void test_rising_line_goes_up_to_the_right(void) { check_line_direction(1); }
static void test_falling_line_goes_down_to_the_right(void) { check_line_direction(0); }

static void test_nan_and_empty_series(void)
{
    float x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    float y[8] = {1, NAN, 2, INFINITY, 3, -INFINITY, 2.5f, 1};
    float lone[3] = {NAN, 4.0f, NAN}, all_nan[2] = {NAN, NAN};
    plot_series s[5] = {{x, y, 8, 31, 119, 180, "gaps"},
                        {NULL, lone, 3, 255, 127, 14, NULL},
                        {x, all_nan, 2, 0, 160, 0, "all NaN"},
                        {x, NULL, 8, 200, 0, 0, "no values"},
                        {x, y, 0, 200, 0, 200, NULL}};
    plot_canvas *c = plot_canvas_new(400, 250);
    color_stats st;
    int i, tinted;
    if (!c) { CHECK(0, "canvas"); return; }
    CHECK(plot_panel(c, 0, 0, 400, 250, NULL, NULL, s, 5) == 0, "panel");
    st = find_color(c->rgb, 400, 250, 0, 400, blue);
    CHECK(st.count > 100, "%d blue pixels", st.count);
    /* The lone point is a dot: a pixel or more of its colour, antialiased around. */
    st = find_color(c->rgb, 400, 250, 0, 400, orange);
    tinted = 0;
    for (i = 0; i < 400 * 250; i++) {
        const unsigned char *p = c->rgb + (size_t)i * 3;
        tinted += p[0] > 200 && p[2] < 230 && p[0] - p[2] > 20;
    }
    CHECK(st.count >= 1 && tinted >= 4, "the lone point: %d orange, %d tinted", st.count,
          tinted);

    /* Nothing finite at all. */
    memset(c->rgb, 255, (size_t)400 * 250 * 3);
    CHECK(plot_panel(c, 0, 0, 400, 250, "empty", "x", &s[2], 2) == 0, "empty panel");
    CHECK(find_color(c->rgb, 400, 250, 0, 400, (plot_color){0, 160, 0}).count > 0,
          "an all-NaN series keeps its legend entry");
    CHECK(find_color(c->rgb, 400, 250, 0, 400, (plot_color){200, 0, 0}).count == 0,
          "a series without values has none");
    CHECK(plot_panel(c, 0, 0, 30, 20, "tiny", "x", s, 1) == -1, "too small a panel");
    plot_canvas_free(c);
}

static void test_training_curves_png(void)
{
    enum { N = 300, M = 7 };
    float steps[N], loss[N], acc[N], test_steps[M], test_loss[M], test_acc[M];
    char path[] = "/tmp/nn_test_plot_XXXXXX";
    unsigned char *img;
    color_stats left_third, right_third;
    int i, w = 0, h = 0, comp = 0, fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    close(fd);
    for (i = 0; i < N; i++) {
        steps[i] = (float)(10 * i);
        loss[i] = 2.0f / (1.0f + i / 30.0f) + 0.05f * (i % 3);
        acc[i] = 0.9f - 0.8f / (1.0f + i / 40.0f);
    }
    for (i = 0; i < M; i++) {
        test_steps[i] = 500.0f * i;
        test_loss[i] = 2.2f / (1.0f + test_steps[i] / 300.0f);
        test_acc[i] = 0.85f - 0.75f / (1.0f + test_steps[i] / 400.0f);
    }
    test_loss[3] = NAN;
    CHECK(plot_training_curves(path, steps, loss, acc, N, test_steps, test_loss, test_acc, M,
                               "training") == 0, "write %s", path);
    img = stbi_load(path, &w, &h, &comp, 3);
    CHECK(img != NULL, "read back %s", path);
    if (img) {
        CHECK(w == 1000 && h == 420, "%d x %d", w, h);
        /* Both curves in both panels. */
        CHECK(find_color(img, w, h, 0, w / 2, blue).count > 300, "train loss");
        CHECK(find_color(img, w, h, 0, w / 2, orange).count > 300, "test loss");
        CHECK(find_color(img, w, h, w / 2, w, blue).count > 300, "train accuracy");
        CHECK(find_color(img, w, h, w / 2, w, orange).count > 300, "test accuracy");
        /* Loss falls to the right, accuracy rises (rows grow downwards). */
        left_third = find_color(img, w, h, 0, w / 6, blue);
        right_third = find_color(img, w, h, w / 3, w / 2, blue);
        CHECK(left_third.mean_y < right_third.mean_y - 50, "loss rows %g -> %g",
              left_third.mean_y, right_third.mean_y);
        left_third = find_color(img, w, h, w / 2, w / 2 + w / 6, blue);
        right_third = find_color(img, w, h, w - w / 6, w, blue);
        CHECK(left_third.mean_y > right_third.mean_y + 50, "accuracy rows %g -> %g",
              left_third.mean_y, right_third.mean_y);
        stbi_image_free(img);
    }
    remove(path);

    /* No test set: still a chart. */
    fd = mkstemp(path);
    if (fd >= 0) close(fd);
    CHECK(plot_training_curves(path, steps, loss, acc, N, NULL, NULL, NULL, 0, NULL) == 0,
          "train only");
    remove(path);
}

static void test_save_fails_in_missing_dir(void)
{
    plot_canvas *c = plot_canvas_new(10, 10);
    if (!c) { CHECK(0, "canvas"); return; }
    fprintf(stderr, "(an error message about a missing directory is expected next)\n");
    CHECK(plot_save_png(c, "/nonexistent-nn-dir/plot.png") == -1, "save into a missing dir");
    plot_canvas_free(c);
}

int main(void)
{
    RUN(test_nice_ticks_on_known_ranges);
    RUN(test_tick_labels);
    RUN(test_auto_range);
    RUN(test_canvas_and_primitives);
    RUN(test_text);
    RUN(test_rising_line_goes_up_to_the_right);
    RUN(test_falling_line_goes_down_to_the_right);
    RUN(test_nan_and_empty_series);
    RUN(test_training_curves_png);
    RUN(test_save_fails_in_missing_dir);
    return test_end("test_plot");
}
