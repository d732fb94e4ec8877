/* Finite-difference gradient checks for a whole net (include after nn.h + harness.h).

   The scalar loss is L = sum_i y_i r_i for a fixed random r, so dL/dy = r. Each input
   and parameter entry is moved by +-h and the central difference (L+ - L-) / 2h is
   compared with the analytic gradient. L is summed in double; the forward runs in
   float, so each L carries a rounding error of about 1e-7 * sum|y_i r_i|, which the
   difference divides by 2h: with h = 1e-2 that is ~1e-5 relative to typical gradients
   of order 1, while the truncation error is O(h^2 * f''') ~ 1e-4. We accept
   |fd - analytic| <= tol * max(1, |fd|, |analytic|) with tol = 2e-3 by default:
   a wrong gradient (a missing factor, a transposed index) is off by O(1).

   Piecewise-linear layers (ReLU, max pooling) have kinks where no finite difference
   is valid. A probe whose one-sided differences (L+ - L0)/h and (L0 - L-)/h disagree by
   more than 5% straddles a kink and is skipped (a wrong backward cannot cause that:
   both sides are differences of the true forward). At most a tenth may be skipped. */
#ifndef NN_TEST_GRADCHECK_H
#define NN_TEST_GRADCHECK_H

static double gc_loss(nn_net *net, const float *x, int n, const float *r)
{
    const float *y = nn_forward(net, x, n);
    size_t i, count = (size_t)n * nn_shape_size(nn_output_shape(net));
    double L = 0.0;
    for (i = 0; i < count; i++) L += (double)y[i] * r[i];
    return L;
}

/* 1 when the two one-sided differences agree (no kink within h). */
static int gc_smooth(double lp, double l0, double lm, double h)
{
    double right = (lp - l0) / h, left = (l0 - lm) / h;
    double scale = fabs(right) > fabs(left) ? fabs(right) : fabs(left);
    return fabs(right - left) <= 0.05 * (scale > 1.0 ? scale : 1.0);
}

static int gc_close(double fd, double an, double tol)
{
    double scale = fabs(fd) > fabs(an) ? fabs(fd) : fabs(an);
    if (scale < 1.0) scale = 1.0;
    return fabs(fd - an) <= tol * scale;
}

/* Checks dL/dx and every learnable parameter's gradient of a built net (built with
   nn_set_input_grad(net, 1)) on input x (n samples, modified and restored).
   max_checks limits how many entries of each tensor are probed (spread evenly).
   Returns the number of mismatches (also reported through CHECK). */
static int gradcheck_net(nn_net *net, float *x, int n, double h, double tol, int max_checks,
                         unsigned seed)
{
    nn_rng rng = nn_rng_new(seed);
    size_t out_count = (size_t)n * nn_shape_size(nn_output_shape(net));
    size_t in_count = (size_t)n * nn_shape_size(net->input);
    float *r = (float *)malloc(out_count * sizeof(float));
    float *dx = (float *)malloc(in_count * sizeof(float));
    float **pgrad = (float **)calloc((size_t)nn_num_param_tensors(net), sizeof(float *));
    int bad = 0, p, checked_nonzero = 0, probes = 0, skipped = 0;
    double l0;
    size_t i, stride;
    for (i = 0; i < out_count; i++) r[i] = nn_rng_uniform(&rng) * 2.0f - 1.0f;
    nn_forward(net, x, n);
    nn_backward(net, r);
    memcpy(dx, nn_input_grad(net), in_count * sizeof(float));
    l0 = gc_loss(net, x, n, r);
    for (p = 0; p < nn_num_param_tensors(net); p++) {
        nn_param *par = nn_get_param(net, p);
        if (!par->learnable) continue;
        pgrad[p] = (float *)malloc(par->size * sizeof(float));
        memcpy(pgrad[p], par->grad, par->size * sizeof(float));
    }
    stride = in_count / (size_t)max_checks + 1;
    for (i = 0; i < in_count; i += stride) {
        float saved = x[i];
        double lp, lm, fd;
        x[i] = saved + (float)h; lp = gc_loss(net, x, n, r);
        x[i] = saved - (float)h; lm = gc_loss(net, x, n, r);
        x[i] = saved;
        fd = (lp - lm) / (2.0 * h);
        probes++;
        if (!gc_smooth(lp, l0, lm, h)) { skipped++; continue; }
        checked_nonzero += fabs(fd) > 1e-3;
        if (!gc_close(fd, dx[i], tol)) {
            bad++;
            CHECK(0, "dL/dx[%zu]: finite difference %.6g, backward %.6g", i, fd, dx[i]);
        }
    }
    for (p = 0; p < nn_num_param_tensors(net); p++) {
        nn_param *par = nn_get_param(net, p);
        if (!par->learnable) continue;
        stride = par->size / (size_t)max_checks + 1;
        for (i = 0; i < par->size; i += stride) {
            float saved = par->value[i];
            double lp, lm, fd;
            par->value[i] = saved + (float)h; lp = gc_loss(net, x, n, r);
            par->value[i] = saved - (float)h; lm = gc_loss(net, x, n, r);
            par->value[i] = saved;
            fd = (lp - lm) / (2.0 * h);
            probes++;
            if (!gc_smooth(lp, l0, lm, h)) { skipped++; continue; }
            checked_nonzero += fabs(fd) > 1e-3;
            if (!gc_close(fd, pgrad[p][i], tol)) {
                bad++;
                CHECK(0, "dL/d%s[%zu]: finite difference %.6g, backward %.6g", par->name, i, fd, pgrad[p][i]);
            }
        }
        free(pgrad[p]);
    }
    CHECK(skipped * 10 <= probes, "%d of %d probes straddled a kink", skipped, probes);
    /* Guard against a check that compares zero with zero. */
    CHECK(checked_nonzero > 0, "every probed gradient was ~0: the check proves nothing");
    free(pgrad); free(dx); free(r);
    return bad;
}
#endif
