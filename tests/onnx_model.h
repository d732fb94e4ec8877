/* Small ONNX models written by hand, protobuf field by field, for the importer's tests
   (tests/test_onnx.c, tests/test_nn_tool.c) and the fuzz seeds (tests/fuzz/make_corpus.c).
   om_buf is a growing byte buffer; om_* append one field. om_model_small() writes
   the test model: x (N x 3 x 6 x 6) -> Conv 4x3x3x3 pad 1 -> BatchNormalization ->
   Relu -> a residual block (Conv 4x4x3x3 pad 1, Add with its input, Relu) -> MaxPool 2
   -> Flatten -> Gemm (2 x 36, transB) -> y, weights from a fixed formula (om_weight). */
#ifndef NN_ONNX_MODEL_H
#define NN_ONNX_MODEL_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct om_buf { unsigned char *p; size_t n, cap; } om_buf;

static void om_put(om_buf *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        b->p = (unsigned char *)realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void om_varint(om_buf *b, uint64_t v)
{
    unsigned char c;
    do {
        c = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) c |= 0x80;
        om_put(b, &c, 1);
    } while (v);
}

static void om_key(om_buf *b, unsigned field, unsigned wire) { om_varint(b, (uint64_t)field << 3 | wire); }
static void om_int(om_buf *b, unsigned field, int64_t v) { om_key(b, field, 0); om_varint(b, (uint64_t)v); }
static void om_bytes(om_buf *b, unsigned field, const void *data, size_t n)
{
    om_key(b, field, 2);
    om_varint(b, n);
    om_put(b, data, n);
}
static void om_str(om_buf *b, unsigned field, const char *s) { om_bytes(b, field, s, strlen(s)); }
static void om_msg(om_buf *b, unsigned field, om_buf *sub)   /* appends sub and frees it */
{
    om_bytes(b, field, sub->p, sub->n);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}
static void om_f32(om_buf *b, unsigned field, float f)
{
    unsigned char le[4];
    uint32_t u;
    memcpy(&u, &f, 4);
    le[0] = (unsigned char)u; le[1] = (unsigned char)(u >> 8); le[2] = (unsigned char)(u >> 16); le[3] = (unsigned char)(u >> 24);
    om_key(b, field, 5);
    om_put(b, le, 4);
}

/* A TensorProto of float32 values: raw_data (how = 0), packed float_data (1) or one
   float_data field per value (2). */
static void om_tensor(om_buf *b, unsigned field, const char *name, const int64_t *dims, int ndims,
                      const float *v, size_t n, int how)
{
    om_buf t = { 0, 0, 0 }, d = { 0, 0, 0 };
    size_t i;
    for (i = 0; i < (size_t)ndims; i++) om_varint(&d, (uint64_t)dims[i]);
    om_msg(&t, 1, &d);                                 /* dims, packed */
    om_int(&t, 2, 1);                                  /* FLOAT */
    om_str(&t, 8, name);
    if (how == 0 || how == 1) {
        om_buf r = { 0, 0, 0 };
        for (i = 0; i < n; i++) {
            unsigned char le[4];
            uint32_t u;
            memcpy(&u, &v[i], 4);
            le[0] = (unsigned char)u; le[1] = (unsigned char)(u >> 8);
            le[2] = (unsigned char)(u >> 16); le[3] = (unsigned char)(u >> 24);
            om_put(&r, le, 4);
        }
        om_msg(&t, how == 0 ? 9 : 4, &r);
    } else {
        for (i = 0; i < n; i++) om_f32(&t, 4, v[i]);
    }
    om_msg(b, field, &t);
}

static void om_attr_int(om_buf *node, const char *name, int64_t v)
{
    om_buf a = { 0, 0, 0 };
    om_str(&a, 1, name);
    om_int(&a, 3, v);
    om_int(&a, 20, 2);
    om_msg(node, 5, &a);
}

static void om_attr_float(om_buf *node, const char *name, float v)
{
    om_buf a = { 0, 0, 0 };
    om_str(&a, 1, name);
    om_f32(&a, 2, v);
    om_int(&a, 20, 1);
    om_msg(node, 5, &a);
}

static void om_attr_ints(om_buf *node, const char *name, const int64_t *v, int n)
{
    om_buf a = { 0, 0, 0 };
    int i;
    om_str(&a, 1, name);
    for (i = 0; i < n; i++) om_int(&a, 8, v[i]);      /* unpacked, as onnx writes them */
    om_int(&a, 20, 7);
    om_msg(node, 5, &a);
}

/* A NodeProto: op, inputs and outputs (NULL-terminated lists); attributes appended by
   the caller into *node before om_node_end. */
static om_buf om_node(const char *op, const char *name, const char *const *in, const char *const *out)
{
    om_buf n = { 0, 0, 0 };
    for (; *in; in++) om_str(&n, 1, *in);
    for (; *out; out++) om_str(&n, 2, *out);
    om_str(&n, 3, name);
    om_str(&n, 4, op);
    return n;
}

/* A ValueInfoProto of a float tensor; dims < 0 are symbolic ("N"). */
static void om_value(om_buf *graph, unsigned field, const char *name, const int64_t *dims, int ndims)
{
    om_buf vi = { 0, 0, 0 }, type = { 0, 0, 0 }, tt = { 0, 0, 0 }, shape = { 0, 0, 0 };
    int i;
    for (i = 0; i < ndims; i++) {
        om_buf dim = { 0, 0, 0 };
        if (dims[i] < 0) om_str(&dim, 2, "N");
        else om_int(&dim, 1, dims[i]);
        om_msg(&shape, 1, &dim);
    }
    om_int(&tt, 1, 1);
    om_msg(&tt, 2, &shape);
    om_msg(&type, 1, &tt);
    om_str(&vi, 1, name);
    om_msg(&vi, 2, &type);
    om_msg(graph, field, &vi);
}

/* A ModelProto around a graph: ir_version 7, producer, opset (default domain), then
   the graph last (so that any shorter prefix of the file lacks it or cuts it). */
static om_buf om_model(om_buf *graph, int64_t opset)
{
    om_buf m = { 0, 0, 0 }, os = { 0, 0, 0 };
    om_int(&m, 1, 7);
    om_str(&m, 2, "nn.h tests");
    om_str(&os, 1, "");
    om_int(&os, 2, opset);
    om_msg(&m, 8, &os);
    om_msg(&m, 7, graph);
    return m;
}

/* The test weights: small, varied, reproducible. */
static float om_weight(int tensor, size_t i) { return (float)((int)((i * 7 + (size_t)tensor * 13) % 17) - 8) / 16.0f; }

#define OM_NODE(g, op, name, ins, outs) do { static const char *const i_[] = ins, *const o_[] = outs; \
    om_buf n_ = om_node(op, name, i_, o_); om_msg(g, 1, &n_); } while (0)
#define OM_L(...) { __VA_ARGS__, NULL }

/* The graph of om_model_small, weights stored as how % 4 (see om_tensor); how & 4: the
   nodes written in reverse order (ONNX asks for a topological order; nn.h sorts). */
static om_buf om_model_small(int how)
{
    static const int64_t w1[4] = { 4, 3, 3, 3 }, w2[4] = { 4, 4, 3, 3 }, c4[1] = { 4 }, fc[2] = { 2, 36 },
                         b2[1] = { 2 }, pads[4] = { 1, 1, 1, 1 }, k2[2] = { 2, 2 }, xin[4] = { -1, 3, 6, 6 },
                         yout[2] = { -1, 2 };
    static const char *const names[9] = { "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                          "bn1.running_var", "block.conv.weight", "fc.weight", "fc.bias" };
    const int64_t *dims[9] = { w1, c4, c4, c4, c4, c4, w2, fc, b2 };
    const int nd[9] = { 4, 1, 1, 1, 1, 1, 4, 2, 1 };
    const size_t count[9] = { 108, 4, 4, 4, 4, 4, 144, 72, 2 };
    om_buf g = { 0, 0, 0 }, n, nodes = { 0, 0, 0 };
    float v[144];
    int t;
    size_t i;
    {
        static const char *const in[] = { "x", "conv1.weight", "conv1.bias", NULL }, *const out[] = { "c1", NULL };
        n = om_node("Conv", "conv1", in, out);
        om_attr_ints(&n, "pads", pads, 4);
        om_msg(&nodes, 1, &n);
    }
    {
        static const char *const in[] = { "c1", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", NULL },
                                 *const out[] = { "b1", NULL };
        n = om_node("BatchNormalization", "bn1", in, out);
        om_attr_float(&n, "epsilon", 1e-3f);
        om_msg(&nodes, 1, &n);
    }
    OM_NODE(&nodes, "Relu", "relu1", OM_L("b1"), OM_L("r1"));
    {
        static const char *const in[] = { "r1", "block.conv.weight", NULL }, *const out[] = { "c2", NULL };
        n = om_node("Conv", "block.conv", in, out);
        om_attr_ints(&n, "pads", pads, 4);
        om_msg(&nodes, 1, &n);
    }
    OM_NODE(&nodes, "Add", "add", OM_L("c2", "r1"), OM_L("s"));
    OM_NODE(&nodes, "Relu", "relu2", OM_L("s"), OM_L("r2"));
    {
        static const char *const in[] = { "r2", NULL }, *const out[] = { "p", NULL };
        n = om_node("MaxPool", "pool", in, out);
        om_attr_ints(&n, "kernel_shape", k2, 2);
        om_attr_ints(&n, "strides", k2, 2);
        om_msg(&nodes, 1, &n);
    }
    OM_NODE(&nodes, "Flatten", "flatten", OM_L("p"), OM_L("f"));
    {
        static const char *const in[] = { "f", "fc.weight", "fc.bias", NULL }, *const out[] = { "y", NULL };
        n = om_node("Gemm", "fc", in, out);
        om_attr_int(&n, "transB", 1);
        om_msg(&nodes, 1, &n);
    }
    if (how & 4) {                     /* the node fields back to front */
        size_t at[16], k = 0, p = 0;
        while (p < nodes.n && k < 16) {
            uint64_t len = 0;
            int shift = 0;
            at[k++] = p++;             /* the key 0x0a, then the length */
            do { len |= (uint64_t)(nodes.p[p] & 0x7f) << shift; shift += 7; } while (nodes.p[p++] & 0x80);
            p += (size_t)len;
        }
        at[k] = nodes.n;
        while (k--) om_put(&g, nodes.p + at[k], at[k + 1] - at[k]);
    } else {
        om_put(&g, nodes.p, nodes.n);
    }
    free(nodes.p);
    om_str(&g, 2, "small");
    for (t = 0; t < 9; t++) {
        for (i = 0; i < count[t]; i++) v[i] = om_weight(t, i);
        if (t == 5) for (i = 0; i < count[t]; i++) v[i] = 0.5f + (float)i / 4.0f;   /* variances > 0 */
        om_tensor(&g, 5, names[t], dims[t], nd[t], v, count[t], how % 4);
    }
    om_value(&g, 11, "x", xin, 4);
    om_value(&g, 12, "y", yout, 2);
    return om_model(&g, 13);
}
#endif
