/* image.h - image files in, class lines out: what classify.c and embed.c share.

   image_load() reads a PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PIC or PNM file of any size
   with stb_image, converted to the channels the net takes (1 grey, 2 grey + alpha,
   3 RGB, 4 RGBA: a colour image becomes grey for a Fashion-MNIST model, a grey one RGB
   for a CIFAR-10 model), resizes it to the net's input size with stbir_resize_uint8
   (the same call tools/pack_images uses to build a data set) and lays it out as the
   CIFAR-10 and IDX records are: planar channels of floats 0..255, row-major.
   An image that already has the input size is copied as it is, not resampled: stb's
   filter at scale 1 is not the identity (it changes most bytes of a 32x32 image).

   image_print_top() turns a row of logits into softmax probabilities and prints the
   k most likely classes on one line:  "cat.png: cat 0.612, dog 0.201, frog 0.050".

   image_classify() does both for one image with a net built for at least 1 sample.

   Include after nn.h in one .c file: it compiles stb_image and stb_image_resize into
   that file. Its own functions are static inline (a program may use some of them). */
#ifndef NN_EXAMPLES_IMAGE_H
#define NN_EXAMPLES_IMAGE_H
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stb_impl.h"

/* NULL if the net takes images: C x H x W inputs with C of 1 (grey), 2 (grey, alpha),
   3 (RGB) or 4 (RGBA), what stb_image gives; else a sentence saying why not. */
static inline const char *image_check_net(const nn_net *net)
{
    static char why[160];
    nn_shape in = nn_input_shape(net);
    if (in.c >= 1 && in.c <= 4 && in.h >= 1 && in.w >= 1) return NULL;
    snprintf(why, sizeof why, "the model takes %d x %d x %d inputs; image files give 1 to 4 channels "
             "(grey, grey + alpha, RGB, RGBA)", in.c, in.h, in.w);
    return why;
}

/* Reads path into out (c x h x w floats, c of 1 to 4). Returns NULL, or a sentence
   saying why not (valid until the next call). */
static inline const char *image_load(const char *path, int c, int h, int w, float *out)
{
    static char why[256];
    int iw, ih, channels;
    size_t plane = (size_t)h * (size_t)w;
    unsigned char *pixels, *resized = NULL;
    const unsigned char *px;
    FILE *fp = fopen(path, "rb");
    if (!fp) {   /* stb_image only says "can't fopen"; name the reason */
        snprintf(why, sizeof why, "%s: cannot open (%s)", path, strerror(errno));
        return why;
    }
    pixels = stbi_load_from_file(fp, &iw, &ih, &channels, c);   /* converted to c channels */
    fclose(fp);
    if (!pixels) {
        snprintf(why, sizeof why, "%s: not an image stb_image can read (%s)", path, stbi_failure_reason());
        return why;
    }
    px = pixels;
    if (iw != w || ih != h) {
        resized = (unsigned char *)malloc(plane * (size_t)c);
        if (!resized || !stbir_resize_uint8(pixels, iw, ih, 0, resized, w, h, 0, c)) {
            snprintf(why, sizeof why, "%s: cannot resize %dx%d to %dx%d", path, iw, ih, w, h);
            free(resized);
            stbi_image_free(pixels);
            return why;
        }
        px = resized;
    }
    for (int k = 0; k < c; k++)
        for (size_t i = 0; i < plane; i++) out[(size_t)k * plane + i] = (float)px[(size_t)c * i + (size_t)k];
    free(resized);
    stbi_image_free(pixels);
    return NULL;
}

/* "name: class p, class p, ..." for the k largest of n logits (the lower index first
   on ties), p = softmax. */
static inline void image_print_top(const nn_net *net, const char *name, const float *logits, int n, int k)
{
    double max = logits[0], sum = 0;
    int i, j, prev = -1;
    for (i = 1; i < n; i++) if (logits[i] > max) max = logits[i];
    for (i = 0; i < n; i++) sum += exp(logits[i] - max);
    printf("%s:", name);
    for (j = 0; j < k && j < n; j++) {
        const char *cls;
        int best = -1;
        for (i = 0; i < n; i++) {   /* the largest that ranks after the previous one */
            int after = prev < 0 || logits[i] < logits[prev] || (logits[i] == logits[prev] && i > prev);
            if (after && (best < 0 || logits[i] > logits[best])) best = i;
        }
        if (best < 0) break;   /* NaN logits */
        cls = nn_class_name(net, best);
        if (cls) printf("%s %s %.3f", j ? "," : "", cls, exp(logits[best] - max) / sum);
        else printf("%s class%d %.3f", j ? "," : "", best, exp(logits[best] - max) / sum);
        prev = best;
    }
    printf("\n");
}

/* One image through the net (built for at least 1 sample, checked by image_check_net):
   prints its top k classes; returns 0, or 1 after a message on stderr. */
static inline int image_classify(nn_net *net, const char *program, const char *path, int k)
{
    nn_shape in = nn_input_shape(net);
    size_t size = nn_shape_size(in);
    float *pixels = (float *)malloc(size * sizeof(float)), *x = (float *)malloc(size * sizeof(float));
    const char *why = pixels && x ? image_load(path, in.c, in.h, in.w, pixels) : "out of memory";
    if (!why) {
        nn_preprocess(net, pixels, x, 1);
        image_print_top(net, path, nn_forward(net, x, 1), (int)nn_shape_size(nn_output_shape(net)), k);
    } else fprintf(stderr, "%s: %s\n", program, why);
    free(pixels);
    free(x);
    return why != NULL;
}
#endif
