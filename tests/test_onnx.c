/* The ONNX importer: a small model written here protobuf field by field
   (tests/onnx_model.h: Conv, BatchNormalization, Relu, a residual block, MaxPool,
   Flatten, Gemm) loads and computes what the same net built with nn_add computes, with
   its weights as raw_data, packed or unpacked float_data, its nodes in order or back to
   front; the layer names come from the
   weights; the net trains. Then hostile and damaged inputs, each refused with
   NN_ERR_FORMAT (or its status) and a sentence: every truncation of the file, lengths
   past the end, an 11-byte varint, groups nested past the limit (and within it,
   skipped), giant and negative dims, a tensor whose bytes do not match its dims, an
   index out of range, a node reading a missing value, a cycle, a wrong weight size,
   unsupported operators, attributes and pads, a file that would take more memory to
   read than 64 bytes per byte (and 16 MiB); NaN weights load as NaN. Each case's
   message is printed ("hostile: CASE: MESSAGE", the table of docs/ONNX.md). */
#define NN_IMPLEMENTATION
#include "../nn.h"
#include "harness.h"
#include "onnx_model.h"

#define ERR_HAS(s) CHECK(strstr(nn_error(), s) != NULL, "error \"%s\" lacks \"%s\"", nn_error(), s)

static void input(float *x, int n)
{
    int i;
    for (i = 0; i < n * 108; i++) x[i] = (float)((i * 37) % 23 - 11) / 8.0f;
}

/* The same net through nn_add, its weights set as om_model_small writes them. */
static nn_net *reference(int batch)
{
    nn_net *net = nn_net_new(nn_shape3(3, 6, 6));
    nn_layer_desc bn = nn_batchnorm(), c2 = nn_conv2d(4, 3, 1, 1);
    int layers[9] = { 0, 0, 1, 1, 1, 1, 4, 8, 8 }, t;
    bn.eps = 1e-3f;
    c2.no_bias = 1;
    nn_add(net, nn_conv2d(4, 3, 1, 1));
    nn_add(net, bn);
    nn_add(net, nn_relu());
    nn_add(net, nn_block());
    nn_add(net, c2);
    nn_add(net, nn_block_end(1));
    nn_add(net, nn_maxpool2d(2, 2, 0));
    nn_add(net, nn_flatten());
    nn_add(net, nn_linear(2));
    if (nn_build(net, batch, 1) != NN_OK) return NULL;
    for (t = 0; t < 9; t++) {
        const nn_layer *L = nn_get_layer(net, layers[t]);
        nn_param *p = t == 0 || t == 2 || t == 6 || t == 7 ? L->weight : t == 1 || t == 3 || t == 8 ? L->bias :
                      t == 4 ? L->running_mean : L->running_var;
        size_t i;
        for (i = 0; i < p->size; i++) p->value[i] = t == 5 ? 0.5f + (float)i / 4.0f : om_weight(t, i);
    }
    nn_set_training(net, 0);
    return net;
}

static void test_small_model_loads_and_matches(void)
{
    int how;
    float x[3 * 108];
    nn_net *ref = reference(3);
    const float *want;
    float w[6];
    input(x, 3);
    CHECK(ref != NULL, "%s", nn_error());
    if (!ref) return;
    want = nn_forward(ref, x, 3);
    memcpy(w, want, sizeof w);
    for (how = 0; how < 4; how++) {
        om_buf m = om_model_small(how < 3 ? how : 4);   /* 4: raw_data, the nodes back to front */
        nn_net *net = nn_load_onnx_memory(m.p, m.n, 3);
        const float *y;
        int i;
        CHECK(net != NULL, "weights as %d: %s", how, nn_error());
        if (net) {
            CHECK(nn_num_layers(net) == 9, "%d layers", nn_num_layers(net));
            CHECK(!strcmp(nn_get_param(net, 0)->name, "conv1.weight"), "%s", nn_get_param(net, 0)->name);
            CHECK(!strcmp(nn_get_layer(net, 4)->name, "block.conv"), "%s", nn_get_layer(net, 4)->name);
            CHECK(nn_get_layer(net, 5)->desc.kind == NN_BLOCK_END && nn_get_layer(net, 5)->desc.relu, "block end");
            y = nn_forward(net, x, 3);
            for (i = 0; y && i < 6; i++) CHECK_NEAR(y[i], w[i], 1e-6);
            CHECK(y != NULL, "%s", nn_error());
        }
        nn_net_free(net);
        free(m.p);
    }
    nn_net_free(ref);
}

/* Imported nets train like any other: a step of SGD lowers the loss. */
static void test_imported_net_trains(void)
{
    om_buf m = om_model_small(0);
    nn_net *net = nn_load_onnx_memory(m.p, m.n, 4);
    nn_optim *opt;
    float x[4 * 108], first = 0, last = 0;
    int y[4] = { 0, 1, 1, 0 }, s;
    input(x, 4);
    CHECK(net != NULL, "%s", nn_error());
    if (!net) { free(m.p); return; }
    nn_set_training(net, 1);
    opt = nn_sgd(net, (nn_sgd_desc){ .lr = 0.05f });
    for (s = 0; s < 10; s++) {
        float loss = nn_train_step(net, opt, x, y, 4);
        if (!s) first = loss;
        last = loss;
    }
    CHECK(first == first && last < first, "loss %g -> %g", first, last);
    nn_optim_free(opt);
    nn_net_free(net);
    free(m.p);
}

/* A failing load: NULL with the status's sentence holding `has`; printed for the table. */
static void refused(const char *what, const void *data, size_t n, int max_batch, const char *has)
{
    nn_net *net = nn_load_onnx_memory(data, n, max_batch);
    CHECK(net == NULL, "%s loaded", what);
    nn_net_free(net);
    CHECK(strstr(nn_error(), has) != NULL, "%s: error \"%s\" lacks \"%s\"", what, nn_error(), has);
    printf("hostile: %s: %s\n", what, nn_error());
}

static void test_every_truncation_is_refused(void)
{
    om_buf m = om_model_small(0);
    size_t n, loaded = 0, onnx_err = 0;
    for (n = 0; n < m.n; n++) {
        nn_net *net = nn_load_onnx_memory(m.p, n, 2);
        loaded += net != NULL;
        onnx_err += strncmp(nn_error(), "onnx: ", 6) == 0;
        nn_net_free(net);
    }
    CHECK(loaded == 0, "%zu of %zu prefixes loaded", loaded, m.n);
    CHECK(onnx_err == m.n, "%zu of %zu prefixes without an onnx: message", onnx_err, m.n);
    printf("hostile: truncated at each of the %zu bytes: e.g. %s\n", m.n, nn_error());
    free(m.p);
}

/* A graph from the small model's nodes with one node swapped in, for the cases below. */
static om_buf model_with(const char *op, const char *const *in, const char *const *out, om_buf *extra_inits)
{
    static const int64_t xin[4] = { -1, 3, 6, 6 }, yout[2] = { -1, 4 };
    om_buf g = { 0, 0, 0 }, n = om_node(op, "bad", in, out);
    om_msg(&g, 1, &n);
    if (extra_inits && extra_inits->n) om_put(&g, extra_inits->p, extra_inits->n);
    if (extra_inits) free(extra_inits->p);
    om_value(&g, 11, "x", xin, 4);
    om_value(&g, 12, "y", yout, 2);
    return om_model(&g, 13);
}

static void test_hostile_inputs(void)
{
    om_buf m = om_model_small(0), b = { 0, 0, 0 };
    unsigned char *copy = (unsigned char *)malloc(m.n + 64);
    size_t i;
    nn_net *net;
    /* lengths past the end: the graph's length (after the 0x3a key) grown by 100 */
    for (i = 0; i + 1 < m.n && m.p[i] != 0x3a; i++) {}
    memcpy(copy, m.p, m.n);
    copy[i + 1] = (unsigned char)(copy[i + 1] + 100);
    refused("a length past the end", copy, m.n, 2, "damaged file");
    /* an 11-byte varint at the start */
    memset(copy, 0xff, 10);
    copy[10] = 0x01;
    refused("an 11-byte varint", copy, 11, 2, "damaged file");
    refused("empty input", copy, 0, 2, "not an ONNX model");
    refused("random bytes", "\x12\x03xyz", 5, 2, "not an ONNX model");
    /* groups nested 40 deep in an unknown field of the model (limit 32), then 30 */
    {
        int depth, deep[2] = { 40, 30 };
        for (depth = 0; depth < 2; depth++) {
            om_buf g = { 0, 0, 0 };
            int k;
            for (k = 0; k < deep[depth]; k++) om_key(&g, 99, 3);
            for (k = 0; k < deep[depth]; k++) om_key(&g, 99, 4);
            om_put(&g, m.p, m.n);
            if (!depth) refused("groups nested 40 deep", g.p, g.n, 2, "damaged file");
            else {
                net = nn_load_onnx_memory(g.p, g.n, 2);
                CHECK(net != NULL, "30 nested groups are skipped: %s", nn_error());
                nn_net_free(net);
            }
            free(g.p);
        }
    }
    /* giant dims: 2^40 x 2^40 floats in 8 bytes */
    {
        static const int64_t dims[2] = { (int64_t)1 << 40, (int64_t)1 << 40 };
        static const float v[2] = { 1, 2 };
        static const char *const in[] = { "x", "w", NULL }, *const out[] = { "y", NULL };
        om_tensor(&b, 5, "w", dims, 2, v, 2, 0);
        m = (free(m.p), model_with("MatMul", in, out, &b));
        refused("giant dims (2^40 x 2^40)", m.p, m.n, 2, "dimension 0 is 1099511627776");
    }
    {
        static const int64_t dims[2] = { 4, -3 };
        static const float v[2] = { 1, 2 };
        static const char *const in[] = { "x", "w", NULL }, *const out[] = { "y", NULL };
        memset(&b, 0, sizeof b);
        om_tensor(&b, 5, "w", dims, 2, v, 2, 0);
        free(m.p);
        m = model_with("MatMul", in, out, &b);
        refused("a negative dim", m.p, m.n, 2, "dimension 1 is -3");
    }
    {   /* a weight whose bytes do not match its dims */
        static const int64_t dims[4] = { 4, 3, 3, 3 };
        static float v[100];
        static const char *const in[] = { "x", "w", NULL }, *const out[] = { "y", NULL };
        memset(&b, 0, sizeof b);
        om_tensor(&b, 5, "w", dims, 4, v, 100, 0);
        free(m.p);
        m = model_with("Conv", in, out, &b);
        refused("a weight of 100 values for dims 4x3x3x3", m.p, m.n, 2, "holds 100 values");
    }
    {   /* a weight of the wrong shape for its input: 4 x 2 x 3 x 3 on 3 channels */
        static const int64_t dims[4] = { 4, 2, 3, 3 };
        static float v[72];
        static const char *const in[] = { "x", "w", NULL }, *const out[] = { "y", NULL };
        memset(&b, 0, sizeof b);
        om_tensor(&b, 5, "w", dims, 4, v, 72, 0);
        free(m.p);
        m = model_with("Conv", in, out, &b);
        refused("a Conv weight for 2 channels on 3", m.p, m.n, 2, "a weight of 4 x 2 for 3 channels");
    }
    {
        static const char *const in[] = { "x", "nowhere", NULL }, *const out[] = { "y", NULL };
        free(m.p);
        m = model_with("Conv", in, out, NULL);
        refused("a node reading a missing value", m.p, m.n, 2, "reads 'nowhere'");
    }
    {
        static const char *const in[] = { "x", NULL }, *const out[] = { "y", NULL };
        free(m.p);
        m = model_with("Softmax", in, out, NULL);
        refused("a Softmax at the output", m.p, m.n, 2, "(Softmax): nn.h nets output logits");
        free(m.p);
        m = model_with("LRN", in, out, NULL);
        refused("an unsupported operator", m.p, m.n, 2, "node 0 'bad' (LRN): unsupported operator");
    }
    {   /* a cycle: a = Relu(b), b = Relu(a) */
        static const int64_t xin[4] = { -1, 3, 6, 6 };
        om_buf g = { 0, 0, 0 };
        OM_NODE(&g, "Relu", "r1", OM_L("x"), OM_L("a"));
        OM_NODE(&g, "Add", "add", OM_L("a", "c"), OM_L("b"));
        OM_NODE(&g, "Relu", "r2", OM_L("b"), OM_L("c"));
        OM_NODE(&g, "Relu", "r3", OM_L("b"), OM_L("y"));
        om_value(&g, 11, "x", xin, 4);
        om_value(&g, 12, "y", xin, 4);
        free(m.p);
        m = om_model(&g, 13);
        refused("a cycle", m.p, m.n, 2, "cycle");
    }
    {   /* Gather of a shape with a negative index in range (-1) is fine; -9 is not */
        int k;
        for (k = 0; k < 2; k++) {
            static const int64_t xin[4] = { -1, 3, 6, 6 }, yout[2] = { -1, 108 };
            om_buf g = { 0, 0, 0 }, t = { 0, 0, 0 }, n, dims = { 0, 0, 0 };
            static const char *const cin[] = { "n", "rest", NULL }, *const cout[] = { "shape", NULL };
            OM_NODE(&g, "Shape", "shape_of", OM_L("x"), OM_L("s"));
            n = om_node("Gather", "gather", (const char *const[]){ "s", "i", NULL }, (const char *const[]){ "g", NULL });
            om_attr_int(&n, "axis", 0);
            om_msg(&g, 1, &n);
            n = om_node("Unsqueeze", "unsq", (const char *const[]){ "g", NULL }, (const char *const[]){ "n", NULL });
            om_attr_ints(&n, "axes", (const int64_t[]){ 0 }, 1);
            om_msg(&g, 1, &n);
            n = om_node("Concat", "cat", cin, cout);
            om_attr_int(&n, "axis", 0);
            om_msg(&g, 1, &n);
            OM_NODE(&g, "Reshape", "view", OM_L("x", "shape"), OM_L("y"));
            om_msg(&dims, 1, &dims);   /* a scalar: no dims */
            om_int(&t, 2, 7);
            om_str(&t, 8, "i");
            om_int(&t, 7, k ? -9 : -4);   /* -4 of 4 dims: the batch */
            om_msg(&g, 5, &t);
            om_int(&t, 1, 1);
            om_int(&t, 2, 7);
            om_str(&t, 8, "rest");
            om_int(&t, 7, -1);
            om_msg(&g, 5, &t);
            om_value(&g, 11, "x", xin, 4);
            om_value(&g, 12, "y", yout, 2);
            free(m.p);
            m = om_model(&g, 12);   /* opset 12: Unsqueeze's axes as an attribute */
            if (k) refused("a Gather index out of range (-9 of 4)", m.p, m.n, 2, "index -9 outside 0..3");
            else {
                net = nn_load_onnx_memory(m.p, m.n, 2);
                CHECK(net && nn_num_layers(net) == 1 && nn_get_layer(net, 0)->desc.kind == NN_FLATTEN,
                      "x.view(x.size(-4), -1) is a Flatten: %s", nn_error());
                nn_net_free(net);
            }
        }
    }
    {   /* asymmetric pads nn.h cannot express */
        static const int64_t xin[4] = { -1, 3, 6, 6 }, pads[4] = { 0, 0, 1, 1 }, k3[2] = { 3, 3 }, s1[2] = { 1, 1 };
        om_buf g = { 0, 0, 0 }, n = om_node("MaxPool", "pool", (const char *const[]){ "x", NULL },
                                           (const char *const[]){ "y", NULL });
        om_attr_ints(&n, "kernel_shape", k3, 2);
        om_attr_ints(&n, "strides", s1, 2);
        om_attr_ints(&n, "pads", pads, 4);
        om_msg(&g, 1, &n);
        om_value(&g, 11, "x", xin, 4);
        om_value(&g, 12, "y", xin, 4);
        free(m.p);
        m = om_model(&g, 13);
        refused("asymmetric pads (0, 1)", m.p, m.n, 2, "node 0 'pool' (MaxPool): pads (0, 1) on an axis of 6");
    }
    {   /* two graph inputs */
        static const int64_t xin[4] = { -1, 3, 6, 6 };
        om_buf g = { 0, 0, 0 };
        OM_NODE(&g, "Add", "add", OM_L("x", "z"), OM_L("y"));
        om_value(&g, 11, "x", xin, 4);
        om_value(&g, 11, "z", xin, 4);
        om_value(&g, 12, "y", xin, 4);
        free(m.p);
        m = om_model(&g, 13);
        refused("two graph inputs", m.p, m.n, 2, "the graph has 2 inputs");
    }
    {   /* an opset nn.h does not know */
        om_buf g = { 0, 0, 0 };
        static const int64_t xin[4] = { -1, 3, 6, 6 };
        OM_NODE(&g, "Relu", "r", OM_L("x"), OM_L("y"));
        om_value(&g, 11, "x", xin, 4);
        om_value(&g, 12, "y", xin, 4);
        free(m.p);
        m = om_model(&g, 99);
        refused("opset 99", m.p, m.n, 2, "opset 99");
    }
    {   /* 200,000 empty attributes (2 bytes each) would take 135 bytes of memory per byte */
        static const int64_t xin[4] = { -1, 3, 6, 6 };
        om_buf g = { 0, 0, 0 }, n = om_node("Relu", "r", (const char *const[]){ "x", NULL },
                                           (const char *const[]){ "y", NULL });
        static const unsigned char empty[2] = { 0x2a, 0x00 };
        int k;
        for (k = 0; k < 200000; k++) om_put(&n, empty, 2);
        om_msg(&g, 1, &n);
        om_value(&g, 11, "x", xin, 4);
        om_value(&g, 12, "y", xin, 4);
        free(m.p);
        m = om_model(&g, 13);
        refused("200,000 empty attributes in 400 KB", m.p, m.n, 2, "reading the model would take more than");
    }
    free(m.p);
    m = om_model_small(0);
    refused("a batch too large for NN_MAX_BUILD_BYTES", m.p, m.n, 10000000, "NN_MAX_BUILD_BYTES");
    net = nn_load_onnx_memory(m.p, m.n, 0);
    CHECK(!net && strstr(nn_error(), "batch size 0"), "%s", nn_error());
    net = nn_load_onnx_memory(NULL, 10, 1);
    CHECK(!net && strstr(nn_error(), "data is NULL"), "%s", nn_error());
    free(m.p);
    free(copy);
}

/* NaN weights load as they are (PyTorch runs them too) and come out as NaN. */
static void test_nan_weights_load(void)
{
    static const int64_t dims[2] = { 2, 3 }, xin[2] = { -1, 3 }, yout[2] = { -1, 2 };
    float v[6] = { 1, 2, 3, 4, 5, 6 }, x[3] = { 1, 1, 1 };
    om_buf g = { 0, 0, 0 }, m, n;
    nn_net *net;
    const float *y;
    v[4] = NAN;
    n = om_node("Gemm", "fc", (const char *const[]){ "x", "fc.weight", NULL }, (const char *const[]){ "y", NULL });
    om_attr_int(&n, "transB", 1);
    om_msg(&g, 1, &n);
    om_tensor(&g, 5, "fc.weight", dims, 2, v, 6, 1);
    om_value(&g, 11, "x", xin, 2);
    om_value(&g, 12, "y", yout, 2);
    m = om_model(&g, 13);
    net = nn_load_onnx_memory(m.p, m.n, 1);
    CHECK(net != NULL, "%s", nn_error());
    if (net) {
        CHECK(isnan(nn_get_layer(net, 0)->weight->value[4]), "NaN weight kept");
        y = nn_forward(net, x, 1);
        CHECK(y && y[0] == 6.0f && isnan(y[1]), "y = %g %g", y ? y[0] : 0, y ? y[1] : 0);
        CHECK(!strcmp(nn_get_layer(net, 0)->name, "fc"), "name %s", nn_get_layer(net, 0)->name);
    }
    nn_net_free(net);
    free(m.p);
}

/* Clip's bounds as attributes (opset 6) and as inputs (opset 13: an initializer and a
   Constant node), ReLU6 among them. */
static void test_clip_bounds(void)
{
    static const int64_t xin[2] = { -1, 4 }, none[1] = { 0 };
    const float x[4] = { -7, -0.25f, 0.75f, 9 }, lo = 0.0f;
    int k;
    for (k = 0; k < 2; k++) {
        om_buf g = { 0, 0, 0 }, m, n;
        nn_net *net;
        const float *y;
        if (!k) {
            n = om_node("Clip", "clip", (const char *const[]){ "x", NULL }, (const char *const[]){ "y", NULL });
            om_attr_float(&n, "min", -0.5f);
            om_attr_float(&n, "max", 0.5f);
            om_msg(&g, 1, &n);
        } else {
            om_buf a = { 0, 0, 0 };
            n = om_node("Constant", "six", (const char *const[]){ NULL }, (const char *const[]){ "hi", NULL });
            om_str(&a, 1, "value");
            om_tensor(&a, 5, "", none, 0, (const float[]){ 6.0f }, 1, 0);
            om_int(&a, 20, 4);
            om_msg(&n, 5, &a);
            om_msg(&g, 1, &n);
            OM_NODE(&g, "Clip", "relu6", OM_L("x", "lo", "hi"), OM_L("y"));
            om_tensor(&g, 5, "lo", none, 0, &lo, 1, 1);
        }
        om_value(&g, 11, "x", xin, 2);
        om_value(&g, 12, "y", xin, 2);
        m = om_model(&g, k ? 13 : 6);
        net = nn_load_onnx_memory(m.p, m.n, 1);
        CHECK(net != NULL, "%s", nn_error());
        y = net ? nn_forward(net, x, 1) : NULL;
        CHECK(y && nn_get_layer(net, 0)->desc.kind == NN_HARDTANH, "a Hardtanh");
        if (y && !k) CHECK(y[0] == -0.5f && y[1] == -0.25f && y[2] == 0.5f && y[3] == 0.5f, "%g %g %g %g", y[0], y[1], y[2], y[3]);
        if (y && k) CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 0.75f && y[3] == 6.0f, "%g %g %g %g", y[0], y[1], y[2], y[3]);
        nn_net_free(net);
        free(m.p);
    }
}

static void om_scalar(om_buf *g, const char *name, float v)
{
    static const int64_t none[1] = { 0 };
    om_tensor(g, 5, name, none, 0, &v, 1, 0);
}

/* A graph on N x 4 whose value x forks and joins again: 0 the tanh GELU as PyTorch 1.13
   writes it (its node order and operand order, kappa k), 1 Softplus(2, threshold) as
   nn_save_onnx writes it (the Div by k), 2 a plain Softplus, 3 a Greater alone. */
static om_buf fork_model(int which, float k, float threshold)
{
    static const int64_t xin[2] = { -1, 4 };
    om_buf g = { 0, 0, 0 };
    if (which == 0) {
        OM_NODE(&g, "Mul", "square", OM_L("x", "x"), OM_L("a"));
        OM_NODE(&g, "Mul", "cube", OM_L("x", "a"), OM_L("b"));
        OM_NODE(&g, "Mul", "kappa", OM_L("kappa", "b"), OM_L("c"));
        OM_NODE(&g, "Add", "inner", OM_L("x", "c"), OM_L("d"));
        OM_NODE(&g, "Mul", "beta", OM_L("beta", "d"), OM_L("e"));
        OM_NODE(&g, "Tanh", "tanh", OM_L("e"), OM_L("f"));
        OM_NODE(&g, "Add", "one", OM_L("one", "f"), OM_L("h"));
        OM_NODE(&g, "Mul", "times_x", OM_L("x", "h"), OM_L("i"));
        OM_NODE(&g, "Mul", "half", OM_L("half", "i"), OM_L("y"));
        om_scalar(&g, "kappa", k);
        om_scalar(&g, "beta", 0.7978845834732056f);
        om_scalar(&g, "one", 1.0f);
        om_scalar(&g, "half", 0.5f);
    } else if (which == 1) {
        OM_NODE(&g, "Mul", "scale", OM_L("x", "beta"), OM_L("z"));
        OM_NODE(&g, "Softplus", "softplus", OM_L("z"), OM_L("s"));
        OM_NODE(&g, "Div", "unscale", OM_L("s", "beta2"), OM_L("q"));
        OM_NODE(&g, "Greater", "above", OM_L("z", "threshold"), OM_L("gt"));
        OM_NODE(&g, "Where", "where", OM_L("gt", "x", "q"), OM_L("y"));
        om_scalar(&g, "beta", 2.0f);
        om_scalar(&g, "beta2", k);
        om_scalar(&g, "threshold", threshold);
    } else if (which == 2) {
        OM_NODE(&g, "Softplus", "softplus", OM_L("x"), OM_L("y"));
    } else {
        OM_NODE(&g, "Greater", "above", OM_L("x", "threshold"), OM_L("y"));
        om_scalar(&g, "threshold", threshold);
    }
    om_value(&g, 11, "x", xin, 2);
    om_value(&g, 12, "y", xin, 2);
    return om_model(&g, 13);
}

/* Those forks load as one layer each (nn_gelu(1), nn_softplus(2, 1.5), nn_softplus(1, 20))
   computing what that layer computes; a constant off (kappa 0.045, the Div by 3,
   threshold 0) is refused naming its node, and so is a Greater outside the pattern. */
static void test_fork_patterns(void)
{
    static const float x[8] = { -3.0f, -0.5f, 0.6f, 2.5f, 0.7f, -1.25f, 30.0f, 0.0f };
    static const struct { int which; float k, threshold; const char *what, *has; } cases[] = {
        { 0, 0.044715f, 0, NULL, NULL }, { 1, 2.0f, 1.5f, NULL, NULL }, { 2, 0, 0, NULL, NULL },
        { 0, 0.045f, 0, "a tanh GELU with kappa 0.045",
          "node 2 'kappa' (Mul): the constant 0.0450000018 where a tanh GELU has 0.044715" },
        { 1, 3.0f, 1.5f, "a Softplus multiplied by 2, divided by 3",
          "node 2 'unscale' (Div): a Softplus's beta 2 (multiplying) and 3 (dividing)" },
        { 1, 2.0f, 0.0f, "a Softplus with threshold 0", "node 3 'above' (Greater): a Softplus's threshold 0" },
        { 3, 0, 1.5f, "a Greater alone",
          "node 0 'above' (Greater): Greater outside the pattern of a Softplus with its threshold" } };
    size_t i;
    int j;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_buf m = fork_model(cases[i].which, cases[i].k, cases[i].threshold);
        nn_layer_desc want = cases[i].which == 0 ? nn_gelu(1) : nn_softplus(cases[i].which == 1 ? 2.0f : 1.0f,
                                                                            cases[i].which == 1 ? 1.5f : 20.0f);
        nn_net *net, *ref = nn_net_new(nn_shape3(4, 1, 1));
        const nn_layer_desc *got;
        float y[8];
        const float *r;
        if (cases[i].has) {
            refused(cases[i].what, m.p, m.n, 2, cases[i].has);
            free(m.p);
            nn_net_free(ref);
            continue;
        }
        net = nn_load_onnx_memory(m.p, m.n, 2);
        CHECK(net && nn_num_layers(net) == 1, "case %zu: %s", i, net ? "more than one layer" : nn_error());
        nn_add(ref, want);
        if (net && nn_num_layers(net) == 1 && nn_build(ref, 2, 0) == NN_OK) {
            got = &nn_get_layer(net, 0)->desc;
            CHECK(got->kind == want.kind && got->approximate == want.approximate && got->beta == want.beta &&
                  got->threshold == want.threshold, "case %zu: kind %d approximate %d beta %g threshold %g", i,
                  (int)got->kind, got->approximate, got->beta, got->threshold);
            memcpy(y, nn_forward(net, x, 2), sizeof y);
            r = nn_forward(ref, x, 2);
            for (j = 0; j < 8; j++) CHECK(y[j] == r[j], "case %zu: y[%d] = %g, not %g", i, j, y[j], r[j]);
        }
        nn_net_free(net);
        nn_net_free(ref);
        free(m.p);
    }
}

/* A MaxPool whose end pads add a window (3 x 3, stride 2, pads (0, 0, 1, 1) on 6 x 6: 3 x 3
   out, where one pad of 0 on each side gives 2 x 3) is nn.h's ceil_mode, computing what
   nn_maxpool2d(3, 2, 0) with ceil_mode computes. */
static void test_end_pads_as_ceil_mode(void)
{
    static const int64_t xin[4] = { -1, 1, 6, 6 }, yout[4] = { -1, 1, 3, 3 }, pads[4] = { 0, 0, 1, 1 },
                         k3[2] = { 3, 3 }, s2[2] = { 2, 2 };
    om_buf g = { 0, 0, 0 }, m, n = om_node("MaxPool", "pool", (const char *const[]){ "x", NULL },
                                          (const char *const[]){ "y", NULL });
    nn_layer_desc d = nn_maxpool2d(3, 2, 0);
    nn_net *net, *ref = nn_net_new(nn_shape3(1, 6, 6));
    float x[36], y[9];
    const float *r;
    int i;
    for (i = 0; i < 36; i++) x[i] = (float)((i * 37) % 23 - 11);
    om_attr_ints(&n, "kernel_shape", k3, 2);
    om_attr_ints(&n, "strides", s2, 2);
    om_attr_ints(&n, "pads", pads, 4);
    om_msg(&g, 1, &n);
    om_value(&g, 11, "x", xin, 4);
    om_value(&g, 12, "y", yout, 4);
    m = om_model(&g, 13);
    net = nn_load_onnx_memory(m.p, m.n, 1);
    d.ceil_mode = 1;
    nn_add(ref, d);
    CHECK(net && nn_get_layer(net, 0)->desc.ceil_mode == 1 && nn_get_layer(net, 0)->desc.pad_h == 0 &&
          nn_shape_size(nn_output_shape(net)) == 9, "%s", net ? "not a 3 x 3 ceil_mode pool" : nn_error());
    if (net && nn_shape_size(nn_output_shape(net)) == 9 && nn_build(ref, 1, 0) == NN_OK) {
        memcpy(y, nn_forward(net, x, 1), sizeof y);
        r = nn_forward(ref, x, 1);
        for (i = 0; i < 9; i++) CHECK(y[i] == r[i], "y[%d] = %g, not %g", i, y[i], r[i]);
    }
    nn_net_free(net);
    nn_net_free(ref);
    free(m.p);
}

#ifndef NN_NO_STDIO
static void test_load_onnx_file(void)
{
    om_buf m = om_model_small(1);
    FILE *fp = fopen("build/test_onnx_small.onnx", "wb");
    nn_net *net;
    CHECK(fp != NULL, "cannot write build/test_onnx_small.onnx");
    if (!fp) { free(m.p); return; }
    fwrite(m.p, 1, m.n, fp);
    fclose(fp);
    net = nn_load_onnx("build/test_onnx_small.onnx", 2);
    CHECK(net != NULL && nn_num_layers(net) == 9, "%s", nn_error());
    nn_net_free(net);
    net = nn_load_onnx("build/no_such_model.onnx", 2);
    CHECK(!net && strstr(nn_error(), "build/no_such_model.onnx"), "%s", nn_error());
    fp = fopen("build/test_onnx_small.onnx", "wb");
    if (fp) { fwrite(m.p, 1, m.n / 2, fp); fclose(fp); }
    net = nn_load_onnx("build/test_onnx_small.onnx", 2);
    CHECK(!net && strstr(nn_error(), "build/test_onnx_small.onnx: onnx: "), "%s", nn_error());
    net = nn_load_onnx(NULL, 2);
    CHECK(!net && strstr(nn_error(), "path is NULL"), "%s", nn_error());
    free(m.p);
}
#endif

int main(void)
{
    RUN(test_small_model_loads_and_matches);
    RUN(test_imported_net_trains);
    RUN(test_every_truncation_is_refused);
    RUN(test_hostile_inputs);
    RUN(test_nan_weights_load);
    RUN(test_clip_bounds);
    RUN(test_fork_patterns);
    RUN(test_end_pads_as_ceil_mode);
#ifndef NN_NO_STDIO
    RUN(test_load_onnx_file);
#endif
    return test_end("test_onnx");
}
