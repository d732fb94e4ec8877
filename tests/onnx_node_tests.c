/* The ONNX backend node tests (Debian's libonnx-testdata: DIR/test_NAME/model.onnx with
   test_data_set_K/input_I.pb and output_0.pb, TensorProtos) run through nn.h's importer.
   Per test one line: "pass NAME", "fail NAME: why" (the model loads but its output is
   wrong, or a forward fails) or "unsupported NAME: nn_error()" (the importer refuses the
   model: an operator, attribute value, type or graph shape nn.h has no layer for).
   Node tests hand weights in as graph inputs (x, W, B): every input after the first is
   bound as a constant from its .pb file before the graph is read. Outputs are compared
   as onnx's backend runner does: |ours - theirs| <= 1e-7 + 1e-3 |theirs|, NaN where NaN;
   the shapes must hold the same number of values (the net's output is batch x features).
       Usage: onnx_node_tests [DIR]   (default /usr/share/libonnx-testdata/data/node)
   Ends with "onnx node tests: N unsupported" and "onnx: N passed, N failed". */
#define NN_IMPLEMENTATION
#include "nn.h"

#include <dirent.h>
#include <stdlib.h>

#define MAX_INPUTS 8

static unsigned char *slurp(const char *path, size_t *size)
{
    unsigned char *data;
    return nn__read_file(path, &data, size) == NN_OK ? data : NULL;
}

static int file_exists(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp) fclose(fp);
    return fp != NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* One TensorProto file as float32 values (NULL, with why set, for another type). */
static float *read_tensor(const char *path, nn__ox *ox, nn__ox_tensor *t, char *why, size_t why_n)
{
    size_t size;
    unsigned char *data = slurp(path, &size);
    if (!data) { snprintf(why, why_n, "%s", nn_error()); return NULL; }
    if (nn__ox_tensor_parse(ox, data, size, t) != NN_OK) snprintf(why, why_n, "%s", nn_error());
    else if (!t->f) snprintf(why, why_n, "%s holds type %d, not float32", path, t->dtype);
    nn__free(data);
    return t->f;
}

/* "pass", "fail" or "unsupported" for one data set of one test. */
static const char *one_set(const char *test, const char *set, const unsigned char *model, size_t model_size,
                           char *why, size_t why_n)
{
    char path[2048];
    unsigned char *binds[MAX_INPUTS];
    size_t bind_sizes[MAX_INPUTS];
    int nbinds = 0, i, batch;
    nn__ox ox;
    nn__ox_tensor x, y;
    nn_net *net = NULL;
    const char *verdict = "unsupported";
    const float *out;
    size_t k, per;
    memset(&ox, 0, sizeof ox);
    snprintf(path, sizeof path, "%s/%s/input_0.pb", test, set);
    if (!read_tensor(path, &ox, &x, why, why_n)) goto done;
    snprintf(path, sizeof path, "%s/%s/output_0.pb", test, set);
    if (!read_tensor(path, &ox, &y, why, why_n)) goto done;
    snprintf(path, sizeof path, "%s/%s/output_1.pb", test, set);
    if (file_exists(path)) {
        snprintf(why, why_n, "the node has a second output");
        goto done;
    }
    for (i = 1; i <= MAX_INPUTS; i++) {
        size_t size;
        snprintf(path, sizeof path, "%s/%s/input_%d.pb", test, set, i);
        if (!file_exists(path)) break;
        if (i == MAX_INPUTS || !(binds[nbinds] = slurp(path, &size))) {
            snprintf(why, why_n, "more than %d inputs or unreadable", MAX_INPUTS);
            goto done;
        }
        bind_sizes[nbinds++] = size;
    }
    if (x.ndim < 1 || x.dims[0] < 1 || x.dims[0] > 4096) {
        snprintf(why, why_n, "an input without a batch dimension");
        goto done;
    }
    batch = (int)x.dims[0];
    if (!(net = nn__ox_load(model, model_size, batch, (const void *const *)binds, bind_sizes, nbinds))) {
        snprintf(why, why_n, "%s", nn_error());
        goto done;
    }
    verdict = "fail";
    per = nn_shape_size(nn_output_shape(net));
    if (x.count != (size_t)batch * nn_shape_size(nn_get_layer(net, 0)->in)) {
        snprintf(why, why_n, "the input holds %zu values, the net takes %d x %zu", x.count, batch,
                 nn_shape_size(nn_get_layer(net, 0)->in));
        goto done;
    }
    if (!(out = nn_forward(net, x.f, batch))) { snprintf(why, why_n, "forward: %s", nn_error()); goto done; }
    if (y.count != (size_t)batch * per) {
        snprintf(why, why_n, "%zu output values, expected %zu", (size_t)batch * per, y.count);
        goto done;
    }
    for (k = 0; k < y.count; k++) {
        double a = out[k], b = y.f[k];
        if ((a != a) != (b != b) || (b == b && !(fabs(a - b) <= 1e-7 + 1e-3 * fabs(b)))) {
            snprintf(why, why_n, "output %zu is %.9g, expected %.9g", k, a, b);
            goto done;
        }
    }
    verdict = "pass";
done:
    for (i = 0; i < nbinds; i++) nn__free(binds[i]);
    nn_net_free(net);
    nn__ox_free(&ox);
    return verdict;
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "/usr/share/libonnx-testdata/data/node";
    DIR *d = opendir(root);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    int passed = 0, failed = 0, unsupported = 0;
    if (!d) { fprintf(stderr, "onnx_node_tests: cannot open %s\n", root); printf("onnx: 0 passed, 1 failed\n"); return 1; }
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5)) continue;
        if (n == cap && !(names = (char **)realloc(names, (cap = cap ? 2 * cap : 1024) * sizeof *names))) return 1;
        if (!(names[n] = (char *)malloc(strlen(e->d_name) + 1))) return 1;
        strcpy(names[n++], e->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (i = 0; i < n; i++) {
        char test[1024], path[2048], why[600] = "", set[64];
        unsigned char *model;
        size_t size;
        const char *verdict = "unsupported";
        int s;
        snprintf(test, sizeof test, "%s/%s", root, names[i]);
        snprintf(path, sizeof path, "%s/model.onnx", test);
        if (!(model = slurp(path, &size))) snprintf(why, sizeof why, "%s", nn_error());
        for (s = 0; model; s++) {
            snprintf(set, sizeof set, "test_data_set_%d", s);
            snprintf(path, sizeof path, "%s/%s/input_0.pb", test, set);
            if (!file_exists(path)) {
                if (!s) snprintf(why, sizeof why, "no test_data_set_0/input_0.pb");
                break;
            }
            verdict = one_set(test, set, model, size, why, sizeof why);
            if (strcmp(verdict, "pass")) break;
        }
        nn__free(model);
        if (!strcmp(verdict, "pass")) { printf("pass %s\n", names[i]); passed++; }
        else if (!strcmp(verdict, "fail")) { printf("fail %s: %s\n", names[i], why); failed++; }
        else { printf("unsupported %s: %s\n", names[i], why); unsupported++; }
        free(names[i]);
    }
    free(names);
    printf("onnx node tests: %d unsupported\n", unsupported);
    printf("onnx: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
