/* two_layer.c - the two-layer nets of the backprop homework (E6): Linear -> f -> Linear -> g.

   Build:  cc -O2 -I. examples/two_layer.c -o two_layer -lm -lpthread
   Run:    ./two_layer                 (no data needed; about a second)

   (a) Regression: f = 3 ReLU (nn_relu then nn_scale(3)), g = identity,
       C = ||y~ - y||^2. The five steps of one SGD update on one data point: the forward
       values s1, a1, s2, y~; the loss; zeroing the gradients; the backward pass
       (dC/dy~, the Jacobians' diagonals, dC/ds2, dC/da1, dC/ds1 and the gradient of every
       parameter); the update p <- p - lr dC/dp.
   (b) Classification: f = tanh, g = sigmoid, first with the same squared error, then
       with binary cross-entropy D = (1/K) sum_i -[y_i log y~_i + (1 - y_i) log(1 - y~_i)].

   The program checks what it prints. A forward pass and the homework's backward formulas
   are written out again below in double precision; every printed gradient (of the loss
   with respect to y~, s2, a1, s1 and the parameters, and the Jacobian diagonals) is
   compared with central finite differences of that double forward pass, and the forward
   values of nn.h with the double ones. The error of an entry is |a - b| / max(|a|, |b|,
   1e-4). Checks of nn.h (float) pass below 1e-3, checks of the double formulas below 1e-6.
   Then each net is trained by mini-batch SGD on a small synthetic data set to show the
   loss going down. Any failed check makes the exit status 1.

   --inject_error scales one gradient nn.h computed by 1.01 before it is checked, to show
   that the check catches a 1% error (the program then exits 1). */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime in common.h */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "common.h"
#include <math.h>

#define MAX_IN 4
#define MAX_H 8
#define MAX_K 4
#define MAX_P (MAX_H * MAX_IN + MAX_H + MAX_K * MAX_H + MAX_K)
#define MAX_N 64

#define FD_STEP 1e-5        /* central differences: (L(p + h) - L(p - h)) / 2h */
#define TOL_NN 1e-3         /* nn.h's float results against the double reference */
#define TOL_FORMULA 1e-6    /* the double formulas against central differences */
#define ERR_FLOOR 1e-4      /* entries below this are compared absolutely */

enum { F_RELU3, F_TANH };
enum { G_IDENTITY, G_SIGMOID };
enum { LOSS_SQUARED, LOSS_BCE };

/* One of the homework's nets: sizes, activations and loss. */
typedef struct spec {
    const char *name;
    int n_in, hidden, k, f, g, loss;
} spec;

/* The parameters in one flat array theta: W1 (hidden x n_in), b1, W2 (k x hidden), b2,
   the order and layout of nn.h's (and PyTorch's) state_dict. */
static int off_b1(const spec *s) { return s->hidden * s->n_in; }
static int off_w2(const spec *s) { return off_b1(s) + s->hidden; }
static int off_b2(const spec *s) { return off_w2(s) + s->k * s->hidden; }
static int num_params(const spec *s) { return off_b2(s) + s->k; }

static int passed, failed;
static double worst_nn, worst_formula;   /* the largest errors seen, for the result line */
static int inject_error;

/* =================================================================================
   The double-precision reference: forward, loss and the homework's backward formulas
   ================================================================================= */

static double f_value(const spec *s, double v) { return s->f == F_RELU3 ? (v > 0 ? 3 * v : 0) : tanh(v); }
static double g_value(const spec *s, double v) { return s->g == G_IDENTITY ? v : 1 / (1 + exp(-v)); }

/* C(y~, y) for one sample. */
static double cost(const spec *s, const double *yt, const double *y)
{
    double c = 0;
    int i;
    for (i = 0; i < s->k; i++) {
        if (s->loss == LOSS_SQUARED) c += (yt[i] - y[i]) * (yt[i] - y[i]);
        else c -= (y[i] * log(yt[i]) + (1 - y[i]) * log(1 - yt[i])) / s->k;
    }
    return c;
}

/* Everything the forward and backward passes of one sample compute. */
typedef struct trace {
    double s1[MAX_H], a1[MAX_H], s2[MAX_K], yt[MAX_K], loss;
    double dC_dyt[MAX_K], dyt_ds2[MAX_K], da1_ds1[MAX_H];   /* Jacobians: diagonals */
    double dC_ds2[MAX_K], dC_da1[MAX_H], dC_ds1[MAX_H];
} trace;

/* The forward pass from a stage on: start 0 from x, 1 from s1, 2 from a1, 3 from s2,
   4 from y~ (t's vector of that stage is the input). Returns the cost. */
static double forward_from(const spec *s, const double *theta, const double *x, const double *y, int start,
                           trace *t)
{
    const double *w1 = theta, *b1 = theta + off_b1(s), *w2 = theta + off_w2(s), *b2 = theta + off_b2(s);
    int i, j;
    if (start <= 0)
        for (j = 0; j < s->hidden; j++) {
            t->s1[j] = b1[j];
            for (i = 0; i < s->n_in; i++) t->s1[j] += w1[j * s->n_in + i] * x[i];
        }
    if (start <= 1)
        for (j = 0; j < s->hidden; j++) t->a1[j] = f_value(s, t->s1[j]);
    if (start <= 2)
        for (i = 0; i < s->k; i++) {
            t->s2[i] = b2[i];
            for (j = 0; j < s->hidden; j++) t->s2[i] += w2[i * s->hidden + j] * t->a1[j];
        }
    if (start <= 3)
        for (i = 0; i < s->k; i++) t->yt[i] = g_value(s, t->s2[i]);
    return t->loss = cost(s, t->yt, y);
}

/* The backward pass of one sample by the homework's formulas (1.2 (c), (d); 1.3):
     dC/dy~ = 2 (y~ - y)                         squared error
            = (1/K) (-y / y~ + (1 - y) / (1 - y~))  binary cross-entropy
     dy~/ds2 = I (identity)  or  diag(y~ (1 - y~)) (sigmoid)
     da1/ds1 = diag(3 [s1 > 0]) (3 ReLU)  or  diag(1 - tanh^2(s1))
     dC/ds2 = dC/dy~ dy~/ds2,  dC/da1 = dC/ds2 W2,  dC/ds1 = dC/da1 da1/ds1
     dC/dW2 = dC/ds2^T a1^T,  dC/db2 = dC/ds2,  dC/dW1 = dC/ds1^T x^T,  dC/db1 = dC/ds1
   (The homework's solution writes the sigmoid's derivative as sigma(s2^2)(1 - sigma(s2^2));
   with sigma_typo set that is used instead, to show the check rejecting it.)
   Adds scale times the parameter gradients to grad (may be NULL). */
static void backward_sample(const spec *s, const double *theta, const double *x, const double *y, trace *t,
                            double *grad, double scale, int sigma_typo)
{
    const double *w2 = theta + off_w2(s);
    int i, j;
    forward_from(s, theta, x, y, 0, t);
    for (i = 0; i < s->k; i++) {
        double p = t->yt[i], q = 1 / (1 + exp(-t->s2[i] * t->s2[i]));
        t->dC_dyt[i] = s->loss == LOSS_SQUARED ? 2 * (p - y[i]) : (-y[i] / p + (1 - y[i]) / (1 - p)) / s->k;
        t->dyt_ds2[i] = s->g == G_IDENTITY ? 1 : sigma_typo ? q * (1 - q) : p * (1 - p);
        t->dC_ds2[i] = t->dC_dyt[i] * t->dyt_ds2[i];
    }
    for (j = 0; j < s->hidden; j++) {
        t->dC_da1[j] = 0;
        for (i = 0; i < s->k; i++) t->dC_da1[j] += t->dC_ds2[i] * w2[i * s->hidden + j];
        t->da1_ds1[j] = s->f == F_RELU3 ? (t->s1[j] > 0 ? 3 : 0) : 1 - tanh(t->s1[j]) * tanh(t->s1[j]);
        t->dC_ds1[j] = t->dC_da1[j] * t->da1_ds1[j];
    }
    if (!grad) return;
    for (j = 0; j < s->hidden; j++) {
        for (i = 0; i < s->n_in; i++) grad[j * s->n_in + i] += scale * t->dC_ds1[j] * x[i];
        grad[off_b1(s) + j] += scale * t->dC_ds1[j];
    }
    for (i = 0; i < s->k; i++) {
        for (j = 0; j < s->hidden; j++) grad[off_w2(s) + i * s->hidden + j] += scale * t->dC_ds2[i] * t->a1[j];
        grad[off_b2(s) + i] += scale * t->dC_ds2[i];
    }
}

/* The mean cost over n samples. */
static double mean_cost(const spec *s, const double *theta, const double *x, const double *y, int n)
{
    trace t;
    double sum = 0;
    int i;
    for (i = 0; i < n; i++) sum += forward_from(s, theta, x + i * s->n_in, y + i * s->k, 0, &t);
    return sum / n;
}

/* Central differences of the mean cost with respect to every parameter. */
static void numeric_param_grad(const spec *s, double *theta, const double *x, const double *y, int n, double *grad)
{
    int p;
    for (p = 0; p < num_params(s); p++) {
        double keep = theta[p], up, down;
        theta[p] = keep + FD_STEP;
        up = mean_cost(s, theta, x, y, n);
        theta[p] = keep - FD_STEP;
        down = mean_cost(s, theta, x, y, n);
        theta[p] = keep;
        grad[p] = (up - down) / (2 * FD_STEP);
    }
}

/* Central differences of the cost of one sample with respect to the vector of a stage
   (1 s1, 2 a1, 3 s2, 4 y~), the rest of the forward pass recomputed from it. */
static void numeric_stage_grad(const spec *s, const double *theta, const double *x, const double *y, int stage,
                               double *grad)
{
    trace t;
    double *v;
    int i, len = stage <= 2 ? s->hidden : s->k;
    forward_from(s, theta, x, y, 0, &t);
    v = stage == 1 ? t.s1 : stage == 2 ? t.a1 : stage == 3 ? t.s2 : t.yt;
    for (i = 0; i < len; i++) {
        double keep = v[i], up, down;
        v[i] = keep + FD_STEP;
        up = forward_from(s, theta, x, y, stage, &t);
        v[i] = keep - FD_STEP;
        down = forward_from(s, theta, x, y, stage, &t);
        v[i] = keep;
        grad[i] = (up - down) / (2 * FD_STEP);
    }
}

/* Central differences of an element-wise activation: f (which 0) or g (which 1). */
static void numeric_diag(const spec *s, int which, const double *at, int n, double *out)
{
    int i;
    for (i = 0; i < n; i++) {
        double up = which ? g_value(s, at[i] + FD_STEP) : f_value(s, at[i] + FD_STEP);
        double down = which ? g_value(s, at[i] - FD_STEP) : f_value(s, at[i] - FD_STEP);
        out[i] = (up - down) / (2 * FD_STEP);
    }
}

/* =================================================================================
   Checks and printing
   ================================================================================= */

static double entry_error(double a, double b)
{
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) / (m > ERR_FLOOR ? m : ERR_FLOOR);
}

/* Compares got (n values) with the reference ref and prints one line. A reference
   without any entry above ERR_FLOOR fails too: comparing zeros with zeros proves nothing.
   tolerance TOL_NN marks a check of nn.h, TOL_FORMULA one of the double formulas. */
static int check(const char *what, const double *got, const double *ref, int n, double tolerance)
{
    double err = 0, biggest = 0;
    int i, ok;
    for (i = 0; i < n; i++) {
        double e = entry_error(got[i], ref[i]);
        if (e > err || e != e) err = e != e ? HUGE_VAL : e;
        if (fabs(ref[i]) > biggest) biggest = fabs(ref[i]);
    }
    ok = err < tolerance && biggest > ERR_FLOOR;
    printf("    check %-44s max error %.1e  %s%s\n", what, err, ok ? "PASS" : "FAIL",
           biggest > ERR_FLOOR ? "" : " (every reference entry is ~0: nothing checked)");
    if (ok) passed++;
    else failed++;
    if (tolerance == TOL_NN && err > worst_nn) worst_nn = err;
    if (tolerance == TOL_FORMULA && err > worst_formula) worst_formula = err;
    return ok;
}

/* A yes/no check, printed like the others. */
static int check_true(const char *what, int condition)
{
    printf("    check %-44s %-15s  %s\n", what, condition ? "yes" : "no", condition ? "PASS" : "FAIL");
    if (condition) passed++;
    else failed++;
    return condition;
}

static void print_vec(const char *name, const double *v, int n)
{
    int i;
    printf("    %-34s [", name);
    for (i = 0; i < n; i++) printf("%s%9.5f", i ? " " : "", v[i]);
    printf("]\n");
}

static void print_mat(const char *name, const double *m, int rows, int cols)
{
    int r, c;
    for (r = 0; r < rows; r++) {
        printf("    %-34s [", r ? "" : name);
        for (c = 0; c < cols; c++) printf("%s%9.5f", c ? " " : "", m[r * cols + c]);
        printf("]\n");
    }
}

static void to_double(const float *src, double *dst, int n)
{
    int i;
    for (i = 0; i < n; i++) dst[i] = src[i];
}

/* The two Linear layers of a net built by build_net. */
static const nn_layer *linear1(nn_net *net) { return nn_get_layer(net, 0); }
static const nn_layer *linear2(const spec *s, nn_net *net) { return nn_get_layer(net, s->f == F_RELU3 ? 3 : 2); }

/* theta (or its gradient) gathered from the net's parameters. */
static void gather(const spec *s, nn_net *net, double *theta, int grads)
{
    const nn_layer *l1 = linear1(net), *l2 = linear2(s, net);
    to_double(grads ? l1->weight->grad : l1->weight->value, theta, s->hidden * s->n_in);
    to_double(grads ? l1->bias->grad : l1->bias->value, theta + off_b1(s), s->hidden);
    to_double(grads ? l2->weight->grad : l2->weight->value, theta + off_w2(s), s->k * s->hidden);
    to_double(grads ? l2->bias->grad : l2->bias->value, theta + off_b2(s), s->k);
}

/* Linear -> f -> Linear -> g as an nn.h net, PyTorch's default initialisation. */
static nn_net *build_net(const spec *s, int max_batch, uint64_t seed)
{
    nn_net *net = nn_net_new(nn_shape1(s->n_in));
    if (!net) return NULL;
    nn_add(net, nn_linear(s->hidden));
    if (s->f == F_RELU3) {
        nn_add(net, nn_relu());
        nn_add(net, nn_scale(3.0f));
    } else {
        nn_add(net, nn_tanh());
    }
    nn_add(net, nn_linear(s->k));
    if (s->g == G_SIGMOID) nn_add(net, nn_sigmoid());
    if (nn_build(net, max_batch, seed) != NN_OK) {
        fprintf(stderr, "two_layer: %s\n", nn_error());
        nn_net_free(net);
        return NULL;
    }
    return net;
}

/* The mean cost of n samples with nn.h, and dC/dy~ into grad (may be NULL): the squared
   error summed over the K outputs and averaged over the samples, or nn_bce (averaged over
   all n K entries, which is the mean over samples of the homework's (1/K) sum). */
static float nn_cost(const spec *s, const float *out, const float *y, int n, float *grad)
{
    size_t count = (size_t)n * s->k, i;
    float c;
    if (s->loss == LOSS_BCE) return nn_bce(out, y, count, grad);
    c = nn_mse(out, y, count, 1, grad);
    if (grad)
        for (i = 0; i < count; i++) grad[i] /= (float)n;
    return c / (float)n;
}

/* The five steps of one SGD update on the data point (x, y), printed and checked. */
static int five_steps(const spec *s, nn_net *net, const float *x, const float *y, float lr)
{
    const int n_last = nn_num_layers(net) - 1;
    double theta[MAX_P], before[MAX_P], ref[MAX_P], formula[MAX_P], got[MAX_P], xd[MAX_IN], yd[MAX_K];
    double v[MAX_H], fd[MAX_H];
    float loss_grad[MAX_K];
    const float *out;
    trace t;
    float loss;
    int i, p, np = num_params(s), ok = 1;

    to_double(x, xd, s->n_in);
    to_double(y, yd, s->k);
    gather(s, net, theta, 0);
    memcpy(before, theta, sizeof theta);
    printf("  the data point and the initial parameters (PyTorch's default initialisation):\n");
    print_vec("x", xd, s->n_in);
    print_vec("y", yd, s->k);
    print_mat("W1", theta, s->hidden, s->n_in);
    print_vec("b1", theta + off_b1(s), s->hidden);
    print_mat("W2", theta + off_w2(s), s->k, s->hidden);
    print_vec("b2", theta + off_b2(s), s->k);

    /* Step 1: forward. */
    out = nn_forward(net, x, 1);
    if (!out) { fprintf(stderr, "two_layer: %s\n", nn_error()); return 0; }
    backward_sample(s, theta, xd, yd, &t, NULL, 0, 0);
    printf("  step 1, forward (nn_forward): the input and output of every layer\n");
    to_double(nn_layer_output(net, 0), v, s->hidden);
    print_vec("s1 = W1 x + b1", v, s->hidden);
    ok &= check("s1 (nn.h) against the double forward", v, t.s1, s->hidden, TOL_NN);
    to_double(nn_layer_output(net, s->f == F_RELU3 ? 2 : 1), v, s->hidden);   /* f's last layer */
    print_vec(s->f == F_RELU3 ? "a1 = 3 ReLU(s1)" : "a1 = tanh(s1)", v, s->hidden);
    ok &= check("a1 (nn.h) against the double forward", v, t.a1, s->hidden, TOL_NN);
    to_double(nn_layer_output(net, s->f == F_RELU3 ? 3 : 2), v, s->k);
    print_vec("s2 = W2 a1 + b2", v, s->k);
    ok &= check("s2 (nn.h) against the double forward", v, t.s2, s->k, TOL_NN);
    to_double(out, v, s->k);
    print_vec(s->g == G_IDENTITY ? "y~ = s2" : "y~ = sigmoid(s2)", v, s->k);
    ok &= check("y~ (nn.h) against the double forward", v, t.yt, s->k, TOL_NN);

    /* Step 2: loss. */
    loss = nn_cost(s, out, y, 1, loss_grad);
    printf("  step 2, loss: %s = %.6f\n", s->loss == LOSS_SQUARED ? "C = ||y~ - y||^2" : "C = D_BCE(y, y~)", loss);
    v[0] = loss;
    ok &= check("C (nn.h) against the double forward", v, &t.loss, 1, TOL_NN);

    /* Step 3: zero the gradients. nn_backward overwrites them, so this is only the
       habit PyTorch needs (there backward() accumulates). */
    nn_zero_grad(net);
    printf("  step 3, zero the gradients (nn_zero_grad)\n");

    /* Step 4: backward. */
    nn_backward(net, loss_grad);
    printf("  step 4, backward (nn_backward); each checked against central differences (h = %g):\n", FD_STEP);
    to_double(loss_grad, v, s->k);
    print_vec("dC/dy~", v, s->k);
    numeric_stage_grad(s, theta, xd, yd, 4, fd);
    ok &= check("dC/dy~ (nn.h loss gradient)", v, fd, s->k, TOL_NN);
    ok &= check("dC/dy~ (formula)", t.dC_dyt, fd, s->k, TOL_FORMULA);
    print_vec(s->g == G_IDENTITY ? "dy~/ds2 = I, diagonal" : "dy~/ds2 = diag(y~ (1 - y~))", t.dyt_ds2, s->k);
    numeric_diag(s, 1, t.s2, s->k, fd);
    ok &= check("dy~/ds2 (formula)", t.dyt_ds2, fd, s->k, TOL_FORMULA);
    if (s->g == G_SIGMOID) {
        trace typo;
        backward_sample(s, theta, xd, yd, &typo, NULL, 0, 1);
        double off = 0;
        backward_sample(s, theta, xd, yd, &typo, NULL, 0, 1);
        for (i = 0; i < s->k; i++)
            if (entry_error(typo.dyt_ds2[i], fd[i]) > off) off = entry_error(typo.dyt_ds2[i], fd[i]);
        printf("    (the solution's sigma(s2^2)(1 - sigma(s2^2)) would give [");
        for (i = 0; i < s->k; i++) printf("%s%.5f", i ? " " : "", typo.dyt_ds2[i]);
        printf("]: error %.1e, it would fail)\n", off);
    }
    to_double(s->g == G_IDENTITY ? loss_grad : nn_layer_input_grad(net, n_last), v, s->k);
    print_vec("dC/ds2 = dC/dy~ dy~/ds2", v, s->k);
    numeric_stage_grad(s, theta, xd, yd, 3, fd);
    ok &= check("dC/ds2 (nn.h)", v, fd, s->k, TOL_NN);
    ok &= check("dC/ds2 (formula)", t.dC_ds2, fd, s->k, TOL_FORMULA);
    to_double(nn_layer_input_grad(net, s->f == F_RELU3 ? 3 : 2), v, s->hidden);
    print_vec("dC/da1 = dC/ds2 W2", v, s->hidden);
    numeric_stage_grad(s, theta, xd, yd, 2, fd);
    ok &= check("dC/da1 (nn.h)", v, fd, s->hidden, TOL_NN);
    ok &= check("dC/da1 (formula)", t.dC_da1, fd, s->hidden, TOL_FORMULA);
    print_vec(s->f == F_RELU3 ? "da1/ds1 = diag(3 [s1 > 0])" : "da1/ds1 = diag(1 - tanh^2(s1))", t.da1_ds1, s->hidden);
    numeric_diag(s, 0, t.s1, s->hidden, fd);
    ok &= check("da1/ds1 (formula)", t.da1_ds1, fd, s->hidden, TOL_FORMULA);
    to_double(nn_layer_input_grad(net, 1), v, s->hidden);
    print_vec("dC/ds1 = dC/da1 da1/ds1", v, s->hidden);
    numeric_stage_grad(s, theta, xd, yd, 1, fd);
    ok &= check("dC/ds1 (nn.h)", v, fd, s->hidden, TOL_NN);
    ok &= check("dC/ds1 (formula)", t.dC_ds1, fd, s->hidden, TOL_FORMULA);

    gather(s, net, got, 1);
    if (inject_error) {
        int worst = 0;
        for (p = 1; p < np; p++) if (fabs(got[p]) > fabs(got[worst])) worst = p;
        got[worst] *= 1.01;
        printf("    (--inject_error: parameter gradient %d scaled by 1.01 before the checks)\n", worst);
    }
    memset(formula, 0, sizeof formula);
    backward_sample(s, theta, xd, yd, &t, formula, 1.0, 0);
    numeric_param_grad(s, theta, xd, yd, 1, ref);
    print_mat("dC/dW1 = dC/ds1^T x^T", got, s->hidden, s->n_in);
    ok &= check("dC/dW1 (nn.h)", got, ref, s->hidden * s->n_in, TOL_NN);
    ok &= check("dC/dW1 (formula)", formula, ref, s->hidden * s->n_in, TOL_FORMULA);
    print_vec("dC/db1 = dC/ds1", got + off_b1(s), s->hidden);
    ok &= check("dC/db1 (nn.h)", got + off_b1(s), ref + off_b1(s), s->hidden, TOL_NN);
    ok &= check("dC/db1 (formula)", formula + off_b1(s), ref + off_b1(s), s->hidden, TOL_FORMULA);
    print_mat("dC/dW2 = dC/ds2^T a1^T", got + off_w2(s), s->k, s->hidden);
    ok &= check("dC/dW2 (nn.h)", got + off_w2(s), ref + off_w2(s), s->k * s->hidden, TOL_NN);
    ok &= check("dC/dW2 (formula)", formula + off_w2(s), ref + off_w2(s), s->k * s->hidden, TOL_FORMULA);
    print_vec("dC/db2 = dC/ds2", got + off_b2(s), s->k);
    ok &= check("dC/db2 (nn.h)", got + off_b2(s), ref + off_b2(s), s->k, TOL_NN);
    ok &= check("dC/db2 (formula)", formula + off_b2(s), ref + off_b2(s), s->k, TOL_FORMULA);

    /* Step 5: update. */
    {
        nn_sgd_desc d = {0};
        nn_optim *opt;
        double expect[MAX_P], c_before = t.loss, c_after;
        d.lr = lr;
        if (!(opt = nn_sgd(net, d))) { fprintf(stderr, "two_layer: %s\n", nn_error()); return 0; }
        nn_optim_step(opt);
        nn_optim_free(opt);
        gather(s, net, got, 1);   /* the gradients as nn.h holds them (no injected error) */
        for (p = 0; p < np; p++) expect[p] = (float)before[p] - lr * (float)got[p];
        gather(s, net, theta, 0);
        printf("  step 5, update p <- p - lr dC/dp with lr %g (nn_sgd, nn_optim_step):\n", lr);
        print_mat("W1", theta, s->hidden, s->n_in);
        print_vec("b1", theta + off_b1(s), s->hidden);
        print_mat("W2", theta + off_w2(s), s->k, s->hidden);
        print_vec("b2", theta + off_b2(s), s->k);
        ok &= check("updated parameters against p - lr dC/dp", theta, expect, np, TOL_NN);
        c_after = mean_cost(s, theta, xd, yd, 1);
        printf("    C at this data point: %.6f before the update, %.6f after\n", c_before, c_after);
        ok &= check_true("the update lowered C at this point", c_after < c_before);
    }
    return ok;
}

/* The gradient of the mean cost over a batch, nn.h against central differences. */
static int batch_check(const spec *s, nn_net *net, const float *x, const float *y, int n)
{
    double theta[MAX_P], got[MAX_P], ref[MAX_P], formula[MAX_P], xd[MAX_N * MAX_IN], yd[MAX_N * MAX_K];
    float grad[MAX_N * MAX_K];
    const float *out = nn_forward(net, x, n);
    trace t;
    char what[64];
    int i;
    if (!out) { fprintf(stderr, "two_layer: %s\n", nn_error()); return 0; }
    nn_cost(s, out, y, n, grad);
    nn_zero_grad(net);
    nn_backward(net, grad);
    gather(s, net, theta, 0);
    gather(s, net, got, 1);
    to_double(x, xd, n * s->n_in);
    to_double(y, yd, n * s->k);
    numeric_param_grad(s, theta, xd, yd, n, ref);
    memset(formula, 0, sizeof formula);
    for (i = 0; i < n; i++) backward_sample(s, theta, xd + i * s->n_in, yd + i * s->k, &t, formula, 1.0 / n, 0);
    snprintf(what, sizeof what, "all parameters, batch of %d (nn.h)", n);
    i = check(what, got, ref, num_params(s), TOL_NN);
    snprintf(what, sizeof what, "all parameters, batch of %d (formula)", n);
    return check(what, formula, ref, num_params(s), TOL_FORMULA) && i;
}

/* Mini-batch SGD over the data set; prints the mean cost over all n samples (and, for
   the classifiers, the share of the n K outputs on the right side of 0.5) as it goes.
   Returns the final mean cost; *first gets the one before training. */
static float train(const spec *s, nn_net *net, const float *x, const float *y, int n, int batch, int epochs,
                   float lr, uint64_t seed, float *costs, int every, float *first)
{
    nn_sgd_desc d = {0};
    nn_optim *opt;
    nn_rng rng = nn_rng_new(seed);
    int order[MAX_N], e, i, j, logged = 0;
    float xb[MAX_N * MAX_IN], yb[MAX_N * MAX_K], grad[MAX_N * MAX_K], c;
    d.lr = lr;
    if (!(opt = nn_sgd(net, d))) { fprintf(stderr, "two_layer: %s\n", nn_error()); return NAN; }
    for (i = 0; i < n; i++) order[i] = i;
    for (e = 0; e <= epochs; e++) {
        if (e % every == 0) {
            const float *out = nn_forward(net, x, n);
            c = nn_cost(s, out, y, n, NULL);
            if (e == 0) *first = c;
            costs[logged++] = c;
            if (s->g == G_SIGMOID) {
                int right = 0;
                for (i = 0; i < n * s->k; i++) right += (out[i] > 0.5f) == (y[i] > 0.5f);
                costs[logged++] = (float)right / (float)(n * s->k);
            }
        }
        if (e == epochs) break;
        nn_rng_shuffle(&rng, order, n);
        for (i = 0; i + batch <= n; i += batch) {
            const float *out;
            for (j = 0; j < batch; j++) {
                memcpy(xb + j * s->n_in, x + order[i + j] * s->n_in, (size_t)s->n_in * sizeof(float));
                memcpy(yb + j * s->k, y + order[i + j] * s->k, (size_t)s->k * sizeof(float));
            }
            out = nn_forward(net, xb, batch);             /* 1. forward */
            nn_cost(s, out, yb, batch, grad);             /* 2. loss (and dC/dy~) */
            nn_zero_grad(net);                            /* 3. zero the gradients */
            nn_backward(net, grad);                       /* 4. backward */
            nn_optim_step(opt);                           /* 5. update */
        }
    }
    nn_optim_free(opt);
    return nn_cost(s, nn_forward(net, x, n), y, n, NULL);
}

static void help(void)
{
    printf("usage: two_layer [flags]\n"
           "  --seed N            data and initialisation (1)\n"
           "  --epochs N          epochs of mini-batch SGD per net (200)\n"
           "  --inject_error      spoil one nn.h gradient by 1%% to show the check failing\n");
}

int main(int argc, char **argv)
{
    static const spec regression = {"regression", 3, 4, 2, F_RELU3, G_IDENTITY, LOSS_SQUARED};
    static const spec squared = {"classification, squared error", 2, 4, 2, F_TANH, G_SIGMOID, LOSS_SQUARED};
    static const spec bce = {"classification, binary cross-entropy", 2, 4, 2, F_TANH, G_SIGMOID, LOSS_BCE};
    const char *program = "two_layer";
    const int n = 32, batch = 8, every_div = 10;
    float xr[MAX_N * MAX_IN], yr[MAX_N * MAX_K], xc[MAX_N * MAX_IN], yc[MAX_N * MAX_K];
    float reg_log[32], sq_log[64], bce_log[64], first, last_reg, last_sq, last_bce, first_sq, first_bce;
    int epochs = 200, every, i, rows, pick;
    uint64_t seed = 1;
    nn_rng rng;
    nn_net *net;

    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { help(); return 0; }
        if (!strcmp(flag, "--inject_error")) { inject_error = 1; continue; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "seed")) seed = (uint64_t)flag_long(program, flag, value, 0, 2147483647L);
        else if (!strcmp(flag, "epochs")) epochs = (int)flag_long(program, flag, value, every_div, 100000);
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    every = epochs / every_div;
    nn_set_threads(1);

    /* Synthetic data. Regression: x uniform in [-1, 1]^3,
       y = (|x0| + x1 x2, max(x0 + x1, 0) - 0.5) + N(0, 0.05^2) noise.
       Classification: x uniform in [-1, 1]^2, two binary labels per point,
       y0 = [x0 + x1 > 0] and y1 = [x0 x1 > 0] (the second needs the hidden layer). */
    rng = nn_rng_new(seed);
    for (i = 0; i < n; i++) {
        float *x = xr + i * 3, *y = yr + i * 2, *u = xc + i * 2, *t = yc + i * 2;
        x[0] = 2 * nn_rng_uniform(&rng) - 1;
        x[1] = 2 * nn_rng_uniform(&rng) - 1;
        x[2] = 2 * nn_rng_uniform(&rng) - 1;
        y[0] = fabsf(x[0]) + x[1] * x[2] + nn_rng_normal(&rng, 0, 0.05f);
        y[1] = (x[0] + x[1] > 0 ? x[0] + x[1] : 0) - 0.5f + nn_rng_normal(&rng, 0, 0.05f);
        u[0] = 2 * nn_rng_uniform(&rng) - 1;
        u[1] = 2 * nn_rng_uniform(&rng) - 1;
        t[0] = u[0] + u[1] > 0 ? 1.0f : 0.0f;
        t[1] = u[0] * u[1] > 0 ? 1.0f : 0.0f;
    }

    /* (a) */
    printf("(a) regression: Linear(3 -> 4) -> 3 ReLU -> Linear(4 -> 2) -> identity, C = ||y~ - y||^2\n");
    if (!(net = build_net(&regression, n, seed))) return 1;
    {
        /* The first sample with at least half of the ReLUs active, so that most of
           dC/dW1 is not zero by construction. */
        double theta[MAX_P], xd[MAX_IN], yd[MAX_K];
        trace t;
        int active = 0, j;
        gather(&regression, net, theta, 0);
        for (pick = 0; pick < n; pick++) {
            to_double(xr + pick * regression.n_in, xd, regression.n_in);
            to_double(yr + pick * regression.k, yd, regression.k);
            forward_from(&regression, theta, xd, yd, 0, &t);
            for (active = 0, j = 0; j < regression.hidden; j++) active += t.s1[j] > 0;
            if (2 * active >= regression.hidden) break;
        }
        if (pick == n) pick = 0;
        printf("  data point: sample %d of the data set, the first with %d of the %d ReLUs active\n", pick, active,
               regression.hidden);
    }
    five_steps(&regression, net, xr + pick * regression.n_in, yr + pick * regression.k, 0.05f);
    nn_net_free(net);
    /* (b) */
    printf("\n(b) classification: Linear(2 -> 4) -> tanh -> Linear(4 -> 2) -> sigmoid, C = ||y~ - y||^2\n");
    if (!(net = build_net(&squared, n, seed))) return 1;
    five_steps(&squared, net, xc, yc, 0.5f);
    nn_net_free(net);
    printf("\n(b) the same net with binary cross-entropy, C = (1/K) sum_i -[y_i log y~_i + (1 - y_i) log(1 - y~_i)]\n");
    if (!(net = build_net(&bce, n, seed))) return 1;
    five_steps(&bce, net, xc, yc, 0.5f);
    nn_net_free(net);

    /* Training on the data sets, every net from its initial weights again. */
    printf("\ngradients of the mean cost over the %d samples of each data set:\n", n);
    printf("  (a) regression\n");
    if (!(net = build_net(&regression, n, seed))) return 1;
    batch_check(&regression, net, xr, yr, n);
    last_reg = train(&regression, net, xr, yr, n, batch, epochs, 0.01f, seed, reg_log, every, &first);
    nn_net_free(net);
    printf("  (b) squared error\n");
    if (!(net = build_net(&squared, n, seed))) return 1;
    batch_check(&squared, net, xc, yc, n);
    last_sq = train(&squared, net, xc, yc, n, batch, epochs, 0.5f, seed, sq_log, every, &first_sq);
    nn_net_free(net);
    printf("  (b) binary cross-entropy\n");
    if (!(net = build_net(&bce, n, seed))) return 1;
    batch_check(&bce, net, xc, yc, n);
    last_bce = train(&bce, net, xc, yc, n, batch, epochs, 0.5f, seed, bce_log, every, &first_bce);
    nn_net_free(net);

    printf("\nmini-batch SGD (batch %d, %d samples, %d epochs; lr 0.01 for (a), 0.5 for (b)):\n"
           "mean cost over the data set, and for (b) the share of the 2 x %d labels right\n", batch, n, epochs, n);
    printf("%6s  %12s    %12s %6s    %12s %6s\n", "epoch", "(a) cost", "(b) sq. cost", "right", "(b) BCE cost",
           "right");
    rows = every_div + 1;
    for (i = 0; i < rows; i++)
        printf("%6d  %12.5f    %12.5f %6.3f    %12.5f %6.3f\n", i * every, reg_log[i], sq_log[2 * i], sq_log[2 * i + 1],
               bce_log[2 * i], bce_log[2 * i + 1]);
    check_true("training lowered the cost of (a)", last_reg < first);
    check_true("training lowered the cost of (b), squared", last_sq < first_sq);
    check_true("training lowered the cost of (b), BCE", last_bce < first_bce);

    printf("\nchecks: %d passed, %d failed; largest error of nn.h %.1e, of the formulas %.1e\n", passed,
           failed, worst_nn, worst_formula);
    printf("result: checks_passed=%d checks_failed=%d max_error_nn=%.1e max_error_formula=%.1e final_cost=%.4f,%.4f,%.4f\n",
           passed, failed, worst_nn, worst_formula, last_reg, last_sq, last_bce);
    return failed ? 1 : 0;
}
