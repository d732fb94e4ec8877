/* examples/speedrun.c's numerical pieces: the Jacobi eigensolver against a matrix with
   known eigenvalues, the whitening layer (its filters make the patch covariance the
   identity), the dirac init and parameter options of its net, and the rate and decay
   it derives from airbench94's. The example is compiled in with its main renamed. */
#define main speedrun_main
#include "../examples/speedrun.c"
#undef main
#include "harness.h"

static void test_jacobi_tridiagonal(void)
{
    /* tridiag(-1, 2, -1) of order 12: eigenvalues 2 - 2 cos(k pi / 13), k = 1..12 */
    static double a[WN][WN], v[WN][WN], a0[WN][WN];
    int i, j, k, found[WN] = {0};
    const double pi = 3.14159265358979323846;
    memset(a, 0, sizeof a);
    for (i = 0; i < WN; i++) {
        a[i][i] = 2.0;
        if (i + 1 < WN) a[i][i + 1] = a[i + 1][i] = -1.0;
    }
    memcpy(a0, a, sizeof a);
    jacobi_eigen(a, v);
    for (k = 1; k <= WN; k++) {
        double want = 2.0 - 2.0 * cos(k * pi / (WN + 1));
        for (i = 0; i < WN; i++)
            if (fabs(a[i][i] - want) < 1e-12) found[k - 1]++;
    }
    for (k = 0; k < WN; k++) CHECK(found[k] == 1, "eigenvalue %d found %d times", k + 1, found[k]);
    for (k = 0; k < WN; k++)   /* A v_k = lambda_k v_k and the v_k orthonormal */
        for (i = 0; i < WN; i++) {
            double av = 0.0, dot = 0.0;
            for (j = 0; j < WN; j++) {
                av += a0[i][j] * v[j][k];
                dot += v[j][i] * v[j][k];
            }
            CHECK(fabs(av - a[k][k] * v[i][k]) < 1e-12, "A v != lambda v at (%d, %d)", i, k);
            CHECK(fabs(dot - (i == k)) < 1e-12, "v not orthonormal at (%d, %d)", i, k);
        }
}

/* Correlated images: each pixel a mix of a per-image colour and noise. */
static void test_whitening_makes_the_identity(void)
{
    enum { COUNT = 40 };
    float *x = (float *)malloc((size_t)COUNT * 3 * 1024 * sizeof(float)), w[24 * WN];
    double cov[WN][WN], patch[WN], wc[WN], n = 0.0;
    nn_rng r = nn_rng_new(3);
    int img, p, c, i, j, k, rr, cc;
    for (img = 0; img < COUNT; img++) {
        float base = nn_rng_normal(&r, 0, 1);
        for (c = 0; c < 3; c++)
            for (p = 0; p < 1024; p++)
                x[(img * 3 + c) * 1024 + p] = base * (1.0f + 0.3f * c) + nn_rng_normal(&r, 0, 0.5f) +
                                              (p % 32 > 0 ? 0.5f * x[(img * 3 + c) * 1024 + p - 1] : 0.0f);
    }
    whitening_weights(x, COUNT, w);
    for (k = 0; k < WN; k++)
        for (i = 0; i < WN; i++) CHECK(w[(k + WN) * WN + i] == -w[k * WN + i], "filter %d is not -filter %d", k + WN, k);
    memset(cov, 0, sizeof cov);   /* the covariance of the 12 whitened outputs */
    for (img = 0; img < COUNT; img++)
        for (rr = 0; rr < 31; rr++)
            for (cc = 0; cc < 31; cc++) {
                for (c = 0; c < 3; c++)
                    for (i = 0; i < 4; i++) patch[c * 4 + i] = x[(img * 3 + c) * 1024 + (rr + i / 2) * 32 + cc + i % 2];
                for (k = 0; k < WN; k++) {
                    wc[k] = 0.0;
                    for (i = 0; i < WN; i++) wc[k] += w[k * WN + i] * patch[i];
                }
                for (i = 0; i < WN; i++)
                    for (j = 0; j < WN; j++) cov[i][j] += wc[i] * wc[j];
                n += 1.0;
            }
    for (i = 0; i < WN; i++)
        for (j = 0; j < WN; j++) {
            double want = i == j ? 1.0 : 0.0;
            CHECK(fabs(cov[i][j] / n - want) < 0.02, "whitened covariance [%d][%d] = %g", i, j, cov[i][j] / n);
        }
    free(x);
}

static void test_net_init_and_options(void)
{
    nn_net *net = airbench_net();
    float *x = (float *)calloc(3 * 1024 * 2, sizeof(float)), lr, wd;
    int i, dirac = 1, frozen = 0, scaled = 0;
    const nn_layer *g1;
    CHECK(nn_build(net, 2, 1) == NN_OK, "%s", nn_error());
    for (i = 0; i < 3 * 1024 * 2; i++) x[i] = (float)(i % 17) / 17.0f;
    CHECK(airbench_init(net, x, 2) == NN_OK, "%s", nn_error());
    CHECK(nn_output_shape(net).c == 10 && nn_num_param_scalars(net) == 1972792, "%d outputs, %zu parameters",
          nn_output_shape(net).c, nn_num_param_scalars(net));
    g1 = nn_get_layer(net, 2);   /* conv 24 -> 64: filters 0..23 the identity */
    for (i = 0; i < 24 * 24 * 9; i++) dirac &= g1->weight->value[i] == ((i % 9 == 4 && i / 9 / 24 == i / 9 % 24) ? 1.0f : 0.0f);
    CHECK(dirac, "the first 24 filters of the first 3x3 conv are not the identity");
    for (i = 0; i < nn_num_param_tensors(net); i++) {
        nn_param *p = nn_get_param(net, i);
        frozen += p->options.frozen;
        scaled += p->options.lr_scale == 64.0f && p->options.wd_scale == 1.0f / 64.0f;
    }
    CHECK(frozen == 7 && scaled == 6, "%d frozen (the whitening weight, 6 BatchNorm weights), %d at 64x", frozen, scaled);
    lr_and_wd(1024, 0.85f, &lr, &wd);   /* 11.5 / (1 + 1 / 0.15) = 1.5; 0.0153 / 11.5 */
    CHECK_NEAR(lr, 1.5, 1e-6);
    CHECK_NEAR(wd, 0.0153 / 11.5, 1e-9);
    free(x);
    nn_net_free(net);
}

int main(void)
{
    RUN(test_jacobi_tridiagonal);
    RUN(test_whitening_makes_the_identity);
    RUN(test_net_init_and_options);
    return test_end("test_speedrun");
}
