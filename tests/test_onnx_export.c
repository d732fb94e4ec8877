/* nn_save_onnx and nn_save_onnx_memory, read back by a small protobuf walker written
   here: every layer kind becomes the operators docs/ONNX.md lists (a table with one net
   per kind and option, which must cover every kind), the initializers hold the
   parameters' bytes under their names, the header and the input and output are as
   documented, node outputs are unique, the same net gives the same bytes (rebuilt with
   the seed, inference-only), another seed other bytes; the file is written atomically
   (a write that fails leaves the old file and no temporary); a net that is not built,
   and NULL arguments, are refused. The meaning of the graphs is checked outside nn.h by
   tests/onnx_export.sh (onnx.checker, OpenCV, a numpy interpreter). */
#define _XOPEN_SOURCE 700
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

/* ---- A protobuf walker ------------------------------------------------------------ */

typedef struct { const unsigned char *p, *end; } pb;

static int pb_varint(pb *r, uint64_t *v)
{
    int shift;
    *v = 0;
    for (shift = 0; shift < 64 && r->p < r->end; shift += 7) {
        unsigned char b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

/* The next field of r: 1 with its number, its varint or fixed32 value v, or (wire type
   2) its bytes in sub; 0 at the end or on a damaged message. */
static int pb_next(pb *r, int *field, uint64_t *v, pb *sub)
{
    uint64_t tag, len;
    if (r->p >= r->end || !pb_varint(r, &tag)) return 0;
    *field = (int)(tag >> 3);
    switch (tag & 7) {
    case 0: return pb_varint(r, v);
    case 5:
        if (r->end - r->p < 4) return 0;
        *v = (uint64_t)r->p[0] | (uint64_t)r->p[1] << 8 | (uint64_t)r->p[2] << 16 | (uint64_t)r->p[3] << 24;
        r->p += 4;
        return 1;
    case 2:
        if (!pb_varint(r, &len) || len > (uint64_t)(r->end - r->p)) return 0;
        sub->p = r->p;
        sub->end = r->p + len;
        r->p += len;
        return 1;
    default: return 0;
    }
}

static int pb_is(pb s, const char *text) { return (size_t)(s.end - s.p) == strlen(text) && !memcmp(s.p, text, strlen(text)); }

/* Field `field` (length-delimited) of message m, the n-th occurrence (0 first). */
static int pb_get(pb m, int field, int n, pb *out)
{
    int f;
    uint64_t v;
    pb sub;
    while (pb_next(&m, &f, &v, &sub))
        if (f == field && n-- == 0) { *out = sub; return 1; }
    return 0;
}

static int pb_int(pb m, int field, int64_t *out)
{
    int f;
    uint64_t v;
    pb sub;
    while (pb_next(&m, &f, &v, &sub))
        if (f == field) { *out = (int64_t)v; return 1; }
    return 0;
}

/* The ModelProto of an export and its GraphProto. */
typedef struct { unsigned char *data; size_t size; pb model, graph; } model;

static int export_net(nn_net *net, model *m)
{
    memset(m, 0, sizeof *m);
    if (nn_save_onnx_memory(net, &m->data, &m->size) != NN_OK) return 0;
    m->model.p = m->data;
    m->model.end = m->data + m->size;
    return pb_get(m->model, 7, 0, &m->graph);
}

/* The operators of the graph's nodes, space-separated. */
static void op_list(const model *m, char *out, size_t cap)
{
    pb node, op;
    int i;
    out[0] = 0;
    for (i = 0; pb_get(m->graph, 1, i, &node); i++)
        if (pb_get(node, 4, 0, &op) && strlen(out) + (size_t)(op.end - op.p) + 2 < cap) {
            if (i) strcat(out, " ");
            strncat(out, (const char *)op.p, (size_t)(op.end - op.p));
        }
}

/* The node whose op_type is op (the n-th such), and its attribute name's ints. */
static int node_of(const model *m, const char *op, int n, pb *out)
{
    pb node, t;
    int i;
    for (i = 0; pb_get(m->graph, 1, i, &node); i++)
        if (pb_get(node, 4, 0, &t) && pb_is(t, op) && n-- == 0) { *out = node; return 1; }
    return 0;
}

static int attr_ints(pb node, const char *name, int64_t *v, int cap)
{
    pb a, t;
    int i, f, count = 0;
    uint64_t x;
    for (i = 0; pb_get(node, 5, i, &a); i++) {
        pb r = a, sub;
        if (!pb_get(a, 1, 0, &t) || !pb_is(t, name)) continue;
        while (pb_next(&r, &f, &x, &sub))
            if ((f == 8 || f == 3) && count < cap) v[count++] = (int64_t)x;
        return count;
    }
    return -1;   /* no such attribute */
}

/* The parameters and running statistics of net random (variances in [0.5, 1.5)), so that
   an export that mixed them up would show. */
static void randomise(nn_net *net, uint64_t seed)
{
    nn_rng rng = nn_rng_new(seed);
    int i;
    size_t j;
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        int variance = strstr(p->name, "running_var") != NULL;
        for (j = 0; j < p->size; j++)
            p->value[j] = variance ? 0.5f + nn_rng_uniform(&rng) : nn_rng_uniform(&rng) - 0.5f;
    }
}

/* The export read back by nn_load_onnx_memory: every parameter and running statistic under
   its name with the same bits, and the same outputs on a random batch of 2 (within 1e-6
   of the largest output). */
static void check_round_trip(nn_net *net, const model *m, const char *what)
{
    nn_net *back = nn_load_onnx_memory(m->data, m->size, 2);
    size_t in = nn_shape_size(nn_get_layer(net, 0)->in), out = nn_shape_size(nn_output_shape(net)), j;
    float x[2 * 256], want[2 * 256], largest = 0.0f, worst = 0.0f;
    const float *y;
    nn_rng rng = nn_rng_new(5);
    int i, k;
    CHECK(back != NULL, "%s: the export does not import: %s", what, nn_error());
    CHECK(in <= 256 && out <= 256, "%s: a case too large for the buffers", what);
    if (!back || in > 256 || out > 256) { nn_net_free(back); return; }
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        const nn_param *p = nn_get_param(net, i), *q = NULL;
        for (k = 0; k < nn_num_param_tensors(back) && !q; k++)
            if (!strcmp(nn_get_param(back, k)->name, p->name)) q = nn_get_param(back, k);
        CHECK(q && q->size == p->size && !memcmp(q->value, p->value, p->size * sizeof *p->value),
              "%s: %s %s", what, p->name, q ? "differs" : "is missing");
    }
    for (j = 0; j < 2 * in; j++) x[j] = nn_rng_normal(&rng, 0.0f, 1.0f);
    y = nn_forward(net, x, 2);
    memcpy(want, y, 2 * out * sizeof *y);
    y = nn_forward(back, x, 2);
    CHECK(y != NULL && nn_shape_size(nn_output_shape(back)) == out, "%s: %s", what, nn_error());
    for (j = 0; y && j < 2 * out; j++) {
        largest = fmaxf(largest, fabsf(want[j]));
        worst = fmaxf(worst, fabsf(y[j] - want[j]));
    }
    CHECK(worst <= 1e-6f * fmaxf(largest, 1e-30f), "%s: outputs differ by %g (largest %g)", what, worst, largest);
    nn_net_free(back);
}

/* ---- Every layer kind ---------------------------------------------------------------- */

typedef struct {
    const char *what;
    nn_layer_kind kind;     /* the kind the case covers */
    int c, h, w;            /* input */
    nn_layer_desc layers[6];
    const char *ops;        /* the graph's operators */
} kind_case;

static nn_layer_desc with(nn_layer_desc d, int field, int value)
{
    if (field == 1) d.ceil_mode = value;
    if (field == 2) d.exclude_pad = value;
    if (field == 3) d.no_affine = value;
    if (field == 4) d.no_bias = value;
    if (field == 5) d.groups = value;
    if (field == 6) d.kernel_w = value;
    return d;
}

static void test_every_kind_exports(void)
{
    kind_case cases[] = {
        {"Linear on features", NN_LINEAR, 4, 1, 1, {nn_linear(3)}, "Gemm"},
        {"Linear after pooling (N x C x 1 x 1)", NN_LINEAR, 2, 3, 3, {nn_global_avgpool(), nn_linear(3)},
         "GlobalAveragePool Flatten Gemm"},
        {"Linear without bias", NN_LINEAR, 4, 1, 1, {with(nn_linear(3), 4, 1)}, "Gemm"},
        {"Conv2d", NN_CONV2D, 3, 5, 5, {nn_conv2d(2, 3, 1, 1)}, "Conv"},
        {"Conv2d grouped, no bias", NN_CONV2D, 4, 5, 5, {with(with(nn_conv2d(2, 3, 2, 1), 5, 2), 4, 1)}, "Conv"},
        {"Conv2d after Linear", NN_CONV2D, 4, 1, 1, {nn_linear(3), nn_conv2d(2, 1, 1, 0)}, "Gemm Reshape Conv Flatten"},
        {"MaxPool2d", NN_MAXPOOL2D, 2, 4, 4, {nn_maxpool2d(2, 2, 0)}, "MaxPool"},
        {"MaxPool2d ceil_mode", NN_MAXPOOL2D, 2, 5, 5, {with(nn_maxpool2d(2, 2, 0), 1, 1)}, "MaxPool"},
        {"AvgPool2d", NN_AVGPOOL2D, 2, 4, 4, {nn_avgpool2d(3, 1, 1)}, "AveragePool"},
        {"AvgPool2d ceil_mode, padding counted", NN_AVGPOOL2D, 2, 6, 6, {with(nn_avgpool2d(3, 2, 1), 1, 1)},
         "Pad AveragePool"},
        {"AvgPool2d ceil_mode by end pads, padding counted", NN_AVGPOOL2D, 2, 4, 5,
         {with(with(nn_avgpool2d(3, 2, 1), 1, 1), 6, 2)}, "Pad AveragePool"},
        {"AvgPool2d ceil_mode, exclude_pad", NN_AVGPOOL2D, 2, 6, 6,
         {with(with(nn_avgpool2d(3, 2, 1), 1, 1), 2, 1)}, "AveragePool"},
        {"GlobalAvgPool", NN_GLOBAL_AVGPOOL, 2, 3, 3, {nn_global_avgpool()}, "GlobalAveragePool Flatten"},
        {"BatchNorm2d", NN_BATCHNORM, 2, 3, 3, {nn_batchnorm()}, "BatchNormalization"},
        {"BatchNorm1d", NN_BATCHNORM, 3, 1, 1, {nn_batchnorm()}, "BatchNormalization"},
        {"BatchNorm no_affine", NN_BATCHNORM, 2, 3, 3, {with(nn_batchnorm(), 3, 1)}, "BatchNormalization"},
        {"ReLU", NN_RELU, 3, 1, 1, {nn_relu()}, "Relu"},
        {"LeakyReLU", NN_LEAKY_RELU, 3, 1, 1, {nn_leaky_relu(0.1f)}, "LeakyRelu"},
        {"Sigmoid", NN_SIGMOID, 3, 1, 1, {nn_sigmoid()}, "Sigmoid"},
        {"Tanh", NN_TANH, 3, 1, 1, {nn_tanh()}, "Tanh"},
        {"GELU", NN_GELU, 3, 1, 1, {nn_gelu(0)}, "Mul Erf Add Mul Mul"},
        {"GELU tanh", NN_GELU, 3, 1, 1, {nn_gelu(1)}, "Mul Mul Mul Add Mul Tanh Add Mul Mul"},
        {"Softplus", NN_SOFTPLUS, 3, 1, 1, {nn_softplus(0.0f, 0.0f)}, "Softplus Greater Where"},
        {"Softplus beta 2", NN_SOFTPLUS, 3, 1, 1, {nn_softplus(2.0f, 5.0f)}, "Mul Softplus Div Greater Where"},
        {"Scale", NN_SCALE, 3, 1, 1, {nn_scale(2.0f)}, "Mul"},
        {"Dropout", NN_DROPOUT, 3, 1, 1, {nn_dropout(0.5f), nn_relu()}, "Relu"},
        {"Dropout alone", NN_DROPOUT, 3, 1, 1, {nn_dropout(0.5f)}, "Identity"},
        {"Flatten", NN_FLATTEN, 2, 2, 2, {nn_flatten()}, "Flatten"},
        {"Flatten of features", NN_FLATTEN, 3, 1, 1, {nn_flatten(), nn_relu()}, "Relu"},
        {"Hardtanh", NN_HARDTANH, 3, 1, 1, {nn_hardtanh(-2.0f, 3.0f)}, "Clip"},
        {"ReLU6", NN_HARDTANH, 3, 1, 1, {nn_relu6()}, "Clip"},
        {"a block with a shortcut path", NN_SHORTCUT, 3, 1, 1,
         {nn_block(), nn_relu(), nn_shortcut(), nn_scale(2.0f), nn_block_end(1)}, "Relu Mul Add Relu"},
        {"a block without", NN_BLOCK, 3, 1, 1, {nn_block(), nn_tanh(), nn_block_end(0)}, "Tanh Add"},
        {"a block end, paths of two ranks", NN_BLOCK_END, 2, 3, 3,
         {nn_global_avgpool(), nn_block(), nn_flatten(), nn_block_end(0)}, "GlobalAveragePool Flatten Flatten Add"},
    };
    int covered[NN_LAYER_KIND_COUNT] = {0}, i, k;
    char ops[512];
    for (i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        nn_net *net = nn_net_new(nn_shape3(cases[i].c, cases[i].h, cases[i].w));
        model m;
        for (k = 0; k < 6 && cases[i].layers[k].kind; k++) nn_add(net, cases[i].layers[k]);
        CHECK(nn_build(net, 2, 1) == NN_OK, "%s: %s", cases[i].what, nn_error());
        randomise(net, (uint64_t)i);
        CHECK(nn_set_training(net, 0) == NN_OK, "%s", nn_error());
        CHECK(export_net(net, &m), "%s: %s", cases[i].what, nn_error());
        op_list(&m, ops, sizeof ops);
        CHECK(!strcmp(ops, cases[i].ops), "%s: \"%s\", expected \"%s\"", cases[i].what, ops, cases[i].ops);
        check_round_trip(net, &m, cases[i].what);
        covered[cases[i].kind] = 1;
        nn_free_buffer(m.data);
        nn_net_free(net);
    }
    for (k = 1; k < NN_LAYER_KIND_COUNT; k++)
        CHECK(covered[k], "no case exports a %s", nn_layer_name((nn_layer_kind)k));
}

/* The three ways a pool's ceil_mode is written (nn__oxw_pool). */
static void test_pool_ceil_mode(void)
{
    struct { int h, w, kh, kw, pad, exclude; int64_t pads[4]; int ceil; } cases[] = {
        /* ceil adds a row and a column, ONNX counts the same: ceil_mode */
        {5, 5, 2, 2, 0, 0, {0, 0, 0, 0}, 1},
        /* a row added, a column taken away by PyTorch's rule (ONNX's ceil would keep
           it): end padding instead */
        {4, 5, 3, 2, 1, 0, {1, 1, 2, 1}, 0},
        /* no window added: plain floor */
        {5, 5, 3, 3, 1, 0, {1, 1, 1, 1}, 0},
    };
    int i, pool;
    for (pool = 0; pool < 2; pool++)
        for (i = 0; i < 3; i++) {
            nn_net *net = nn_net_new(nn_shape3(1, cases[i].h, cases[i].w));
            nn_layer_desc d = pool ? nn_avgpool2d(cases[i].kh, 2, cases[i].pad) : nn_maxpool2d(cases[i].kh, 2, cases[i].pad);
            int64_t v[4];
            model m;
            pb node = {NULL, NULL};
            d.kernel_w = cases[i].kw;
            d.pad_w = cases[i].pad;
            d.ceil_mode = 1;
            d.exclude_pad = pool;   /* counting the padding is the Pad case of test_every_kind_exports */
            nn_add(net, d);
            CHECK(nn_build(net, 1, 1) == NN_OK, "%s", nn_error());
            CHECK(export_net(net, &m) && node_of(&m, pool ? "AveragePool" : "MaxPool", 0, &node), "case %d", i);
            CHECK(attr_ints(node, "pads", v, 4) == 4 && v[0] == cases[i].pads[0] && v[1] == cases[i].pads[1] &&
                  v[2] == cases[i].pads[2] && v[3] == cases[i].pads[3], "case %d: pads %d %d %d %d", i, (int)v[0],
                  (int)v[1], (int)v[2], (int)v[3]);
            CHECK((attr_ints(node, "ceil_mode", v, 1) == 1 && v[0] == 1) == cases[i].ceil, "case %d: ceil_mode", i);
            CHECK((attr_ints(node, "count_include_pad", v, 1) == 1) == 0, "case %d: count_include_pad", i);
            nn_free_buffer(m.data);
            nn_net_free(net);
        }
}

/* ---- The model's contents -------------------------------------------------------------- */

/* Conv2d, BatchNorm, ReLU, Flatten, Linear on 2 x 4 x 4, trained a step. */
static nn_net *small_net(uint64_t seed)
{
    nn_net *net = nn_net_new(nn_shape3(2, 4, 4));
    nn_optim *opt;
    float x[3 * 32];
    int y[3] = {0, 1, 2}, i;
    nn_add(net, nn_conv2d(3, 3, 1, 1));
    nn_add(net, nn_batchnorm());
    nn_add(net, nn_relu());
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(3));
    nn_build(net, 3, seed);
    opt = nn_sgd(net, (nn_sgd_desc){ .lr = 0.1f });
    for (i = 0; i < 3 * 32; i++) x[i] = (float)((i * 29) % 17) / 8.0f - 1.0f;
    nn_train_step(net, opt, x, y, 3);
    nn_optim_free(opt);
    nn_set_training(net, 0);
    return net;
}

/* Every parameter is an initializer of its name, shape and bytes (float32, raw). */
static void test_initializers_and_header(void)
{
    nn_net *net = small_net(1);
    model m;
    pb t, name, raw, info, node, out;
    int64_t v, ir = 0, opset = 0;
    int i, k, found, outputs = 0, unique = 1, j;
    const char *outs[16];
    char version[32];
    size_t lens[16];
    CHECK(export_net(net, &m), "%s", nn_error());
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        const nn_param *p = nn_get_param(net, i);
        found = 0;
        for (k = 0; pb_get(m.graph, 5, k, &t); k++) {
            int64_t dims[4];
            int nd = 0, f;
            uint64_t x;
            pb r = t, sub;
            if (!pb_get(t, 8, 0, &name) || !pb_is(name, p->name)) continue;
            while (pb_next(&r, &f, &x, &sub))
                if (f == 1 && nd < 4) dims[nd++] = (int64_t)x;
            found = nd == p->ndim && pb_int(t, 2, &v) && v == 1 && pb_get(t, 9, 0, &raw) &&
                    (size_t)(raw.end - raw.p) == p->size * 4 && !memcmp(raw.p, p->value, p->size * 4);
            for (f = 0; f < nd; f++) found &= dims[f] == p->shape[f];
        }
        CHECK(found, "no initializer %s with its shape and values", p->name);
    }
    CHECK(pb_int(m.model, 1, &ir) && ir == 7, "ir_version %d", (int)ir);
    CHECK(pb_get(m.model, 2, 0, &name) && pb_is(name, "nn.h"), "producer_name");
    snprintf(version, sizeof version, "%d.%d.%d", NN_VERSION_MAJOR, NN_VERSION_MINOR, NN_VERSION_PATCH);
    CHECK(pb_get(m.model, 3, 0, &name) && pb_is(name, version), "producer_version");
    CHECK(pb_get(m.model, 8, 0, &t) && pb_int(t, 2, &opset) && opset == 13, "opset %d", (int)opset);
    /* input N x 2 x 4 x 4, output N x 3 */
    CHECK(pb_get(m.graph, 11, 0, &info) && pb_get(info, 1, 0, &name) && pb_is(name, "input"), "input name");
    {
        pb type = {NULL, NULL}, tensor = {NULL, NULL}, shape = {NULL, NULL}, dim, param;
        int64_t want[4] = {0, 2, 4, 4};
        CHECK(pb_get(info, 2, 0, &type) && pb_get(type, 1, 0, &tensor) && pb_get(tensor, 2, 0, &shape), "input type");
        CHECK(pb_get(shape, 1, 0, &dim) && pb_get(dim, 2, 0, &param) && pb_is(param, "N"), "dynamic batch");
        for (k = 1; k < 4; k++) CHECK(pb_get(shape, 1, k, &dim) && pb_int(dim, 1, &v) && v == want[k], "dim %d", k);
        CHECK(!pb_get(shape, 1, 4, &dim), "rank 4");
        CHECK(pb_get(m.graph, 12, 0, &info) && pb_get(info, 1, 0, &name) && pb_is(name, "output"), "output");
        CHECK(pb_get(info, 2, 0, &type) && pb_get(type, 1, 0, &tensor) && pb_get(tensor, 2, 0, &shape) &&
              pb_get(shape, 1, 1, &dim) && pb_int(dim, 1, &v) && v == 3 && !pb_get(shape, 1, 2, &dim), "N x 3");
    }
    /* node outputs are unique and the last is "output"; BatchNormalization's epsilon */
    for (i = 0; pb_get(m.graph, 1, i, &node) && i < 16; i++)
        if (pb_get(node, 2, 0, &out)) { outs[outputs] = (const char *)out.p; lens[outputs++] = (size_t)(out.end - out.p); }
    for (i = 0; i < outputs; i++)
        for (j = 0; j < i; j++) unique &= lens[i] != lens[j] || memcmp(outs[i], outs[j], lens[i]);
    CHECK(unique && outputs == 5 && lens[4] == 6 && !memcmp(outs[4], "output", 6), "%d node outputs", outputs);
    CHECK(node_of(&m, "BatchNormalization", 0, &node), "no BatchNormalization");
    nn_free_buffer(m.data);
    nn_net_free(net);
}

/* Two layers with one name get distinct node names. */
static void test_repeated_names(void)
{
    nn_net *net = nn_net_new(nn_shape1(3));
    model m;
    pb a = {NULL, NULL}, b = {NULL, NULL}, out = {NULL, NULL};
    nn_add(net, nn_named(nn_relu(), "act"));
    nn_add(net, nn_named(nn_tanh(), "act"));
    nn_add(net, nn_sigmoid());
    CHECK(nn_build(net, 1, 1) == NN_OK, "%s", nn_error());
    CHECK(export_net(net, &m) && node_of(&m, "Relu", 0, &a) && node_of(&m, "Tanh", 0, &b), "%s", nn_error());
    CHECK(pb_get(a, 2, 0, &out) && pb_is(out, "act/Relu"), "the first act");
    CHECK(pb_get(b, 2, 0, &out) && pb_is(out, "act#1/Tanh"), "the second act: %.*s", (int)(out.end - out.p), out.p);
    nn_free_buffer(m.data);
    nn_net_free(net);
}

/* ---- Bytes and files ------------------------------------------------------------------ */

static int same(const model *a, const model *b) { return a->size == b->size && !memcmp(a->data, b->data, a->size); }

static void test_deterministic(void)
{
    nn_net *a = small_net(1), *b = small_net(1), *c = small_net(2);
    model ma, ma2, mb, mc, mi;
    CHECK(export_net(a, &ma) && export_net(a, &ma2) && export_net(b, &mb) && export_net(c, &mc), "%s", nn_error());
    CHECK(same(&ma, &ma2), "the same net gave other bytes");
    CHECK(same(&ma, &mb), "the same net built again with the seed gave other bytes");
    CHECK(!same(&ma, &mc), "another seed gave the same bytes");
    CHECK(nn_set_training(a, 1) == NN_OK && export_net(a, &mi) && same(&ma, &mi), "training mode changed the bytes");
    nn_free_buffer(mi.data);
    CHECK(nn_inference_only(a) == NN_OK && export_net(a, &mi) && same(&ma, &mi), "inference-only changed the bytes");
    nn_free_buffer(mi.data);
    nn_free_buffer(ma.data);
    nn_free_buffer(ma2.data);
    nn_free_buffer(mb.data);
    nn_free_buffer(mc.data);
    nn_net_free(a);
    nn_net_free(b);
    nn_net_free(c);
}

static int file_is(const char *path, const model *m)
{
    FILE *f = fopen(path, "rb");
    unsigned char *got = (unsigned char *)malloc(m->size + 1);
    int ok = f && got && fread(got, 1, m->size + 1, f) == m->size && !memcmp(got, m->data, m->size);
    if (f) fclose(f);
    free(got);
    return ok;
}

/* nn_save_onnx writes nn_save_onnx_memory's bytes; a write that fails (past a file size
   limit) leaves the old file whole and no temporary file. */
static void test_file_is_atomic(void)
{
    char dir[] = "/tmp/nn_onnx_export_XXXXXX", path[64], tmp[80];
    nn_net *small = small_net(1), *big = nn_net_new(nn_shape1(1000));
    model m;
    struct rlimit saved, lim;
    struct stat sb;
    nn_add(big, nn_linear(1000));
    CHECK(nn_build(big, 1, 1) == NN_OK, "%s", nn_error());
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(nn_save_onnx(big, path) == NN_OK, "%s", nn_error());
    CHECK(nn_save_onnx(small, path) == NN_OK, "%s", nn_error());   /* over the old one */
    CHECK(export_net(small, &m) && file_is(path, &m), "the file is not nn_save_onnx_memory's bytes");
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &saved);
    lim = saved;
    lim.rlim_cur = 65536;
    CHECK(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit");
    CHECK(nn_save_onnx(big, path) == NN_ERR_IO && strstr(nn_error(), "write failed"), "a 4 MB save past a 64 KB "
          "limit: %s", nn_error());
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_DFL);
    CHECK(file_is(path, &m), "the failed save destroyed the old file");
    CHECK(stat(tmp, &sb) != 0, "the temporary file was left behind");
    CHECK(nn_save_onnx(small, "/nonexistent/dir/m.onnx") == NN_ERR_IO && strstr(nn_error(), "/nonexistent/dir"),
          "%s", nn_error());
    remove(path);
    rmdir(dir);
    nn_free_buffer(m.data);
    nn_net_free(small);
    nn_net_free(big);
}

static void test_refused(void)
{
    nn_net *net = nn_net_new(nn_shape1(3)), *built = small_net(1);
    unsigned char *data = NULL;
    size_t size = 0;
    nn_add(net, nn_linear(2));
    CHECK(nn_save_onnx_memory(net, &data, &size) == NN_ERR_STATE && strstr(nn_error(), "not built"), "%s", nn_error());
    CHECK(data == NULL && size == 0, "an output was written");
    CHECK(nn_save_onnx(net, "/tmp/nn_onnx_export_unbuilt.onnx") == NN_ERR_STATE, "unbuilt, to a file");
    CHECK(access("/tmp/nn_onnx_export_unbuilt.onnx", F_OK) != 0, "a file was written");
    CHECK(nn_save_onnx_memory(NULL, &data, &size) == NN_ERR_ARG, "NULL net");
    CHECK(nn_save_onnx_memory(built, NULL, &size) == NN_ERR_ARG, "NULL data");
    CHECK(nn_save_onnx_memory(built, &data, NULL) == NN_ERR_ARG, "NULL size");
    CHECK(nn_save_onnx(built, NULL) == NN_ERR_ARG, "NULL path");
    nn_net_free(net);
    nn_net_free(built);
}

int main(void)
{
    RUN(test_every_kind_exports);
    RUN(test_pool_ceil_mode);
    RUN(test_initializers_and_header);
    RUN(test_repeated_names);
    RUN(test_deterministic);
    RUN(test_file_is_atomic);
    RUN(test_refused);
    return test_end("test_onnx_export");
}
