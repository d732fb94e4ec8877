/* Data augmentation in the batcher: horizontal flip and padded random crop, applied by
   nn_next_batch to the copies only, seeded and deterministic. */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

/* A set of n images c x h x w whose pixel values are all distinct and non-zero:
   x = 1 + index; label = sample index. */
static void make_set(nn_dataset *d, float *x, int *y, int n, int c, int h, int w)
{
    int i;
    memset(d, 0, sizeof *d);
    for (i = 0; i < n * c * h * w; i++) x[i] = (float)(1 + i);
    for (i = 0; i < n; i++) y[i] = i;
    d->n = n; d->shape = nn_shape3(c, h, w); d->num_classes = n; d->x = x; d->y = y;
}

/* The augmentation's documented draws, replayed on a copy of its generator. */
static void draws(nn_rng *r, nn_augment a, int *oy, int *ox, int *flip)
{
    *oy = *ox = a.crop_pad;
    *flip = 0;
    if (a.crop_pad) {
        *oy = (int)nn_rng_below(r, 2u * (uint32_t)a.crop_pad + 1u);
        *ox = (int)nn_rng_below(r, 2u * (uint32_t)a.crop_pad + 1u);
    }
    if (a.flip) *flip = (int)(nn_rng_u32(r) >> 31);
}

static void test_flip_of_a_known_image(void)
{
    /* one 1 x 2 x 3 image: rows (1 2 3), (4 5 6); mirrored: (3 2 1), (6 5 4) */
    static const float mirrored[6] = {3, 2, 1, 6, 5, 4};
    float x[6], out[6];
    int y[1], by[1], i, plain = 0, flipped = 0, other = 0;
    nn_dataset d;
    nn_augment a = {1, 0, 0};
    make_set(&d, x, y, 1, 1, 2, 3);
    CHECK(nn_batch_start(&d, 11) == NN_OK && nn_set_augment(&d, a) == NN_OK, "%s", nn_error());
    for (i = 0; i < 64; i++) {
        CHECK(nn_next_batch(&d, 1, out, by) == NN_OK, "%s", nn_error());
        if (!memcmp(out, x, sizeof out)) plain++;
        else if (!memcmp(out, mirrored, sizeof out)) flipped++;
        else other++;
    }
    CHECK(other == 0, "%d batches are neither the image nor its mirror", other);
    CHECK(plain > 0 && flipped > 0, "%d plain, %d flipped of 64", plain, flipped);
    for (i = 0; i < 6; i++) CHECK(x[i] == (float)(1 + i), "the set's pixel %d changed", i);
    nn_dataset_free(&d);
}

/* Crop by (oy, ox) of 2 channels of 5 x 4 images padded by 2, with and without a flip:
   every output pixel is the source pixel the shift predicts, 0 where it falls into the
   padding; pixel (0, 0) of each channel lands where the offset puts it. */
static void test_crop_moves_pixels_and_pads_with_zeros(void)
{
    enum { N = 3, C = 2, H = 5, W = 4, P = 2 };
    float x[N * C * H * W], out[C * H * W];
    int y[N], by[1], step, c, i, j, seen[2 * P + 1][2 * P + 1] = {{0}}, missing = 0, zeros = 0;
    nn_augment aug[2] = {{0, P, 0}, {1, P, 0}};
    int t;
    for (t = 0; t < 2; t++) {
        nn_dataset d;
        nn_rng r;
        make_set(&d, x, y, N, C, H, W);
        CHECK(nn_batch_start(&d, 5) == NN_OK && nn_set_augment(&d, aug[t]) == NN_OK, "%s", nn_error());
        for (step = 0; step < 200; step++) {
            int oy, ox, flip, bad = 0;
            const float *src;
            r = d.aug_rng;
            draws(&r, aug[t], &oy, &ox, &flip);
            CHECK(nn_next_batch(&d, 1, out, by) == NN_OK, "%s", nn_error());
            src = x + (size_t)by[0] * C * H * W;
            if (!t) seen[oy][ox]++;
            for (c = 0; c < C; c++)
                for (i = 0; i < H; i++)
                    for (j = 0; j < W; j++) {
                        int sy = i + oy - P, sx = (flip ? W - 1 - j : j) + ox - P;
                        float want = sy >= 0 && sy < H && sx >= 0 && sx < W ? src[(c * H + sy) * W + sx] : 0.0f;
                        bad += out[(c * H + i) * W + j] != want;
                        zeros += want == 0.0f;
                    }
            /* pixel (0, 0) of channel 1 moves to (P - oy, P - ox), mirrored in x if flipped */
            i = P - oy; j = P - ox; if (flip) j = W - 1 - j;
            if (i >= 0 && i < H && j >= 0 && j < W)
                bad += out[(H + i) * W + j] != src[H * W];
            CHECK(bad == 0, "augment %d, step %d (oy %d, ox %d, flip %d): %d pixels wrong",
                  t, step, oy, ox, flip, bad);
            if (bad) break;
        }
        nn_dataset_free(&d);
    }
    for (i = 0; i <= 2 * P; i++)
        for (j = 0; j <= 2 * P; j++) missing += !seen[i][j];
    CHECK(missing == 0, "%d of the 25 offsets never drawn in 200 crops", missing);
    CHECK(zeros > 0, "no crop reached the padding");
    for (i = 0; i < N * C * H * W; i++) CHECK(x[i] == (float)(1 + i), "the set's pixel %d changed", i);
}

/* Offset (2, 1) by hand on a 1 x 3 x 3 image padded by 1: a crop shifted up by one row
   and not sideways, so row 2 is padding. */
static void test_crop_by_hand(void)
{
    static const float want[9] = {4, 5, 6, 7, 8, 9, 0, 0, 0};
    float x[9], out[9];
    int y[1], i, found = 0;
    nn_dataset d;
    nn_augment a = {0, 1, 0};
    make_set(&d, x, y, 1, 1, 3, 3);
    CHECK(nn_batch_start(&d, 2) == NN_OK && nn_set_augment(&d, a) == NN_OK, "%s", nn_error());
    for (i = 0; i < 200 && !found; i++) {
        nn_rng r = d.aug_rng;
        int oy, ox, flip;
        draws(&r, a, &oy, &ox, &flip);
        CHECK(nn_next_batch(&d, 1, out, NULL) == NN_OK, "%s", nn_error());
        if (oy == 2 && ox == 1) {
            found = 1;
            CHECK(!memcmp(out, want, sizeof want), "crop (2, 1): %g %g %g / %g %g %g / %g %g %g",
                  out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8]);
        }
    }
    CHECK(found, "offset (2, 1) never drawn");
    nn_dataset_free(&d);
}

/* Same seed: same batches, pixels and labels; another seed: other crops; the shuffled
   order (the labels) does not depend on augmentation. */
static void test_same_seed_same_batches(void)
{
    enum { N = 10, SIZE = 3 * 6 * 6, B = 7, STEPS = 5 };
    static float x[N * SIZE], b1[B * SIZE], b2[B * SIZE], b3[B * SIZE], b4[B * SIZE];
    int y[N], y1[B], y2[B], y3[B], y4[B], step, same_other = 1, labels_differ = 0, pixels_differ = 0;
    nn_dataset d1, d2, d3, d4;
    nn_augment a = {1, 2, 0};
    make_set(&d1, x, y, N, 3, 6, 6);
    d2 = d1; d3 = d1; d4 = d1;
    CHECK(nn_batch_start(&d1, 9) == NN_OK && nn_set_augment(&d1, a) == NN_OK, "%s", nn_error());
    CHECK(nn_set_augment(&d2, a) == NN_OK && nn_batch_start(&d2, 9) == NN_OK, "%s", nn_error());
    CHECK(nn_batch_start(&d3, 10) == NN_OK && nn_set_augment(&d3, a) == NN_OK, "%s", nn_error());
    CHECK(nn_batch_start(&d4, 9) == NN_OK, "%s", nn_error());
    for (step = 0; step < STEPS; step++) {
        CHECK(nn_next_batch(&d1, B, b1, y1) == NN_OK && nn_next_batch(&d2, B, b2, y2) == NN_OK
              && nn_next_batch(&d3, B, b3, y3) == NN_OK && nn_next_batch(&d4, B, b4, y4) == NN_OK,
              "%s", nn_error());
        CHECK(!memcmp(b1, b2, sizeof b1) && !memcmp(y1, y2, sizeof y1), "step %d: same seed, other batch", step);
        same_other &= !memcmp(b1, b3, sizeof b1);
        labels_differ += memcmp(y1, y4, sizeof y1) != 0;
        pixels_differ += memcmp(b1, b4, sizeof b1) != 0;
    }
    CHECK(!same_other, "seeds 9 and 10 gave the same augmented batches");
    {   /* one sample: the order cannot differ, so only the crops and flips can */
        nn_dataset e1 = d1, e2 = d1;
        e1.n = e2.n = 1; e1.order = e2.order = NULL;
        CHECK(nn_batch_start(&e1, 9) == NN_OK && nn_batch_start(&e2, 10) == NN_OK
              && nn_set_augment(&e1, a) == NN_OK && nn_set_augment(&e2, a) == NN_OK, "%s", nn_error());
        CHECK(nn_next_batch(&e1, B, b1, y1) == NN_OK && nn_next_batch(&e2, B, b3, y3) == NN_OK, "%s", nn_error());
        CHECK(memcmp(b1, b3, sizeof b1) != 0, "seeds 9 and 10 gave the same crops of one sample");
        nn_dataset_free(&e1); nn_dataset_free(&e2);
    }
    CHECK(labels_differ == 0, "augmentation changed the shuffled order");
    CHECK(pixels_differ == STEPS, "only %d of %d augmented batches differ from the plain ones",
          pixels_differ, STEPS);
    nn_dataset_free(&d1); nn_dataset_free(&d2); nn_dataset_free(&d3); nn_dataset_free(&d4);
}

/* Over 20000 samples of a 1 x 2 x 2 image, the flipped share is 0.5 within 0.02
   (7 standard deviations of a fair coin: 0.0035). */
static void test_flips_about_half_the_time(void)
{
    enum { STEPS = 20000 };
    float x[4], out[4];
    int y[1], i, flipped = 0;
    nn_dataset d;
    nn_augment a = {1, 0, 0};
    make_set(&d, x, y, 1, 1, 2, 2);
    CHECK(nn_batch_start(&d, 123) == NN_OK && nn_set_augment(&d, a) == NN_OK, "%s", nn_error());
    for (i = 0; i < STEPS; i++) {
        CHECK(nn_next_batch(&d, 1, out, NULL) == NN_OK, "%s", nn_error());
        flipped += out[0] == 2.0f && out[1] == 1.0f;
    }
    CHECK(fabs((double)flipped / STEPS - 0.5) < 0.02, "%d of %d flipped", flipped, STEPS);
    nn_dataset_free(&d);
}

/* No augmentation (never set, or set to zero after being on): the batch is a byte copy
   of the samples in the shuffled order, as before augmentation existed. */
static void test_no_augmentation_is_a_plain_copy(void)
{
    enum { N = 6, SIZE = 2 * 3 * 3, B = 4 };
    float x[N * SIZE], b1[B * SIZE], b2[B * SIZE];
    int y[N], y1[B], y2[B], step, i, bad = 0;
    nn_dataset d1, d2;
    nn_augment on = {1, 1, 0}, off = {0, 0, 0};
    make_set(&d1, x, y, N, 2, 3, 3);
    d2 = d1;
    CHECK(nn_batch_start(&d1, 4) == NN_OK && nn_batch_start(&d2, 4) == NN_OK, "%s", nn_error());
    CHECK(nn_set_augment(&d2, on) == NN_OK && nn_set_augment(&d2, off) == NN_OK, "%s", nn_error());
    for (step = 0; step < 5; step++) {
        CHECK(nn_next_batch(&d1, B, b1, y1) == NN_OK && nn_next_batch(&d2, B, b2, y2) == NN_OK,
              "%s", nn_error());
        CHECK(!memcmp(b1, b2, sizeof b1) && !memcmp(y1, y2, sizeof y1), "step %d differs", step);
        for (i = 0; i < B; i++) bad += memcmp(b1 + i * SIZE, x + y1[i] * SIZE, SIZE * sizeof(float)) != 0;
    }
    CHECK(bad == 0, "%d samples are not copies of the set's", bad);
    nn_dataset_free(&d1); nn_dataset_free(&d2);
}

/* Labels-only batches draw too, so the augmentation of later samples does not depend
   on whether earlier pixels were copied; a set never started draws from seed 0. */
static void test_draws_follow_the_samples(void)
{
    enum { N = 5, SIZE = 1 * 4 * 4 };
    float x[N * SIZE], b1[3 * SIZE], b2[3 * SIZE];
    int y[N], y1[3], y2[3];
    nn_dataset d1, d2, d3, d4;
    nn_augment a = {1, 1, 0};
    make_set(&d1, x, y, N, 1, 4, 4);
    d2 = d1; d3 = d1; d4 = d1;
    CHECK(nn_batch_start(&d1, 1) == NN_OK && nn_batch_start(&d2, 1) == NN_OK, "%s", nn_error());
    CHECK(nn_set_augment(&d1, a) == NN_OK && nn_set_augment(&d2, a) == NN_OK, "%s", nn_error());
    CHECK(nn_next_batch(&d1, 3, b1, y1) == NN_OK && nn_next_batch(&d2, 3, NULL, y2) == NN_OK, "%s", nn_error());
    CHECK(nn_next_batch(&d1, 3, b1, y1) == NN_OK && nn_next_batch(&d2, 3, b2, y2) == NN_OK, "%s", nn_error());
    CHECK(!memcmp(b1, b2, sizeof b1), "skipping the pixels changed later crops");
    CHECK(nn_set_augment(&d3, a) == NN_OK && nn_set_augment(&d4, a) == NN_OK, "%s", nn_error());
    CHECK(nn_next_batch(&d3, 3, b1, y1) == NN_OK && nn_next_batch(&d4, 3, b2, y2) == NN_OK, "%s", nn_error());
    CHECK(!memcmp(b1, b2, sizeof b1) && y1[0] == 0 && y1[2] == 2, "an unstarted set is not deterministic");
    {   /* and its generator is a real one: both outcomes of the flip occur */
        nn_dataset e;
        nn_augment f = {1, 0, 0};
        int i, flipped = 0;
        make_set(&e, x, y, 1, 1, 4, 4);
        CHECK(nn_set_augment(&e, f) == NN_OK, "%s", nn_error());
        for (i = 0; i < 32; i++) {
            CHECK(nn_next_batch(&e, 1, b1, NULL) == NN_OK, "%s", nn_error());
            flipped += b1[0] == 4.0f;
        }
        CHECK(flipped > 0 && flipped < 32, "unstarted set: %d of 32 flipped", flipped);
        nn_dataset_free(&e);
    }
    nn_dataset_free(&d1); nn_dataset_free(&d2); nn_dataset_free(&d3); nn_dataset_free(&d4);
}

int main(void)
{
    RUN(test_flip_of_a_known_image);
    RUN(test_crop_moves_pixels_and_pads_with_zeros);
    RUN(test_crop_by_hand);
    RUN(test_same_seed_same_batches);
    RUN(test_flips_about_half_the_time);
    RUN(test_no_augmentation_is_a_plain_copy);
    RUN(test_draws_follow_the_samples);
    return test_end("test_augment");
}
