/* speedrun.c - Keller Jordan's airbench94 recipe for CIFAR-10 (94% in 9.9 epochs on a GPU),
   written with nn.h's training features. docs/SPEEDRUN.md maps each part of the recipe
   to nn.h; docs/RESULTS.md has the full runs (0.9056 and 0.9048 with TTA for seeds 42 and
   1 on the JPEG copy of CIFAR-10 here; seed 42 in 42.8 minutes on 2 threads of a Zen 5).

   Build:  make build/speedrun
   Run:    build/speedrun --threads 2 --data_dir data/cifar-10-batches-bin --out results
   Smoke:  build/speedrun --epochs 0.2 --test_images 2000 --out /tmp/speedrun

   The net (airbench94's): a 2x2 convolution 3 -> 24 with bias whose weights whiten 2x2
   patches (the eigenvectors of the patch covariance of 5,000 training images over the
   square roots of their eigenvalues, and their negatives), frozen, its bias trained for
   the first 3 epochs only; GELU; three groups of conv3x3 -> MaxPool2d(2) -> BatchNorm ->
   GELU -> conv3x3 -> BatchNorm -> GELU of widths 64, 256, 256; MaxPool2d(3); Linear
   256 -> 10 without bias; Scale 1/9. The 3x3 convolutions have no bias and start with
   the identity ("dirac") on their first in-channels; the BatchNorms have eps 1e-12,
   PyTorch momentum 0.4 (airbench's 0.6 is 1 - PyTorch's) and a weight frozen at 1.
   Training: batch 1024 (each epoch's last partial batch dropped), SGD with Nesterov
   momentum 0.85, label smoothing 0.2, airbench's learning rate 11.5 and weight decay
   0.0153 per 1024 examples (see lr_and_wd), BatchNorm biases at 64x the rate and the
   same decay, the triangular schedule (0.2 -> 1 over 23% of the steps, -> 0.07),
   Lookahead every 5 steps; alternating flip and 2-pixel translation with reflection
   padding; test-time augmentation level 2 (mirror and 1-pixel translations).
   Writes OUT/speedrun.csv, OUT/speedrun.png, OUT/speedrun.safetensors. */
#define _POSIX_C_SOURCE 200809L   /* clock_gettime, mkdir */
#define NN_IMPLEMENTATION
#include "nn.h"
#include "common.h"
#include "plot.h"

/* airbench94's normalisation constants (of pixel / 255) */
static const float cifar_mean[3] = {0.4914f, 0.4822f, 0.4465f}, cifar_std[3] = {0.2470f, 0.2435f, 0.2616f};

static void help(void)
{
    printf("usage: speedrun [flags]\n"
           "  --epochs F          (9.9, airbench94's)\n"
           "  --batch_size N      (1024; the rate and decay are scaled as airbench94 does)\n"
           "  --test_images N     evaluate on every (10000/N)-th test image only (0: all 10000)\n"
           "  --data_dir DIR      CIFAR-10 binary batches (data/cifar-10-batches-bin); also --data\n"
           "  --seed N            (42)\n"
           "  --threads N         (0: all cores)\n"
           "  --out DIR           where the CSV, plot and model go (results)\n");
}

static int fail(const char *program)
{
    fprintf(stderr, "\n%s: %s\n", program, nn_error());
    return 1;
}

/* ---- The whitening layer -------------------------------------------------------------
   Eigen-decomposition of a symmetric n x n matrix by cyclic Jacobi rotations (double):
   on return a is diagonal (the eigenvalues) and column k of v is the eigenvector of
   a[k][k]. Each rotation zeroes one off-diagonal pair; sweeps repeat until the
   off-diagonal mass is negligible (quadratic convergence: ~10 sweeps for 12 x 12). */
#define WN 12   /* 3 channels x 2 x 2 */

static void jacobi_eigen(double a[WN][WN], double v[WN][WN])
{
    int i, j, k, sweep;
    for (i = 0; i < WN; i++)
        for (j = 0; j < WN; j++) v[i][j] = i == j;
    for (sweep = 0; sweep < 100; sweep++) {
        double off = 0.0, diag = 0.0;
        for (i = 0; i < WN; i++)
            for (j = 0; j < WN; j++) {
                if (i != j) off += a[i][j] * a[i][j];
                else diag += a[i][i] * a[i][i];
            }
        if (off <= 1e-30 * diag) break;
        for (i = 0; i < WN - 1; i++)
            for (j = i + 1; j < WN; j++) {
                double theta, t, c, s;
                if (a[i][j] == 0.0) continue;
                /* the angle that zeroes a[i][j]: t = tan, the smaller root */
                theta = (a[j][j] - a[i][i]) / (2.0 * a[i][j]);
                t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                c = 1.0 / sqrt(t * t + 1.0);
                s = t * c;
                for (k = 0; k < WN; k++) {   /* a = a J (columns i, j) */
                    double aki = a[k][i], akj = a[k][j];
                    a[k][i] = c * aki - s * akj;
                    a[k][j] = s * aki + c * akj;
                }
                for (k = 0; k < WN; k++) {   /* a = J^T a (rows i, j) */
                    double aik = a[i][k], ajk = a[j][k];
                    a[i][k] = c * aik - s * ajk;
                    a[j][k] = s * aik + c * ajk;
                }
                for (k = 0; k < WN; k++) {   /* v = v J */
                    double vki = v[k][i], vkj = v[k][j];
                    v[k][i] = c * vki - s * vkj;
                    v[k][j] = s * vki + c * vkj;
                }
            }
    }
}

/* Sets the 24 x 3 x 2 x 2 weight to airbench94's whitening: the covariance (not
   centred) of every 2x2 patch of the first `count` images, its eigenvectors in
   descending order of eigenvalue, each over sqrt(eigenvalue + 5e-4), then their
   negatives. The patch vector is (channel, row, column), the weight's own order. */
static void whitening_weights(const float *x, int count, float *weight)
{
    static double cov[WN][WN], vec[WN][WN];
    double patch[WN], patches = 0.0;
    int order[WN], img, r, c, ch, i, j, k;
    memset(cov, 0, sizeof cov);
    for (img = 0; img < count; img++)
        for (r = 0; r < 31; r++)
            for (c = 0; c < 31; c++) {
                const float *base = x + (size_t)img * 3 * 1024;
                for (ch = 0; ch < 3; ch++)
                    for (i = 0; i < 4; i++) patch[ch * 4 + i] = base[ch * 1024 + (r + i / 2) * 32 + c + i % 2];
                for (i = 0; i < WN; i++)
                    for (j = i; j < WN; j++) cov[i][j] += patch[i] * patch[j];
                patches += 1.0;
            }
    for (i = 0; i < WN; i++)
        for (j = i; j < WN; j++) cov[j][i] = cov[i][j] /= patches;
    jacobi_eigen(cov, vec);
    for (i = 0; i < WN; i++) order[i] = i;
    for (i = 1; i < WN; i++)   /* descending eigenvalues (insertion sort) */
        for (j = i; j > 0 && cov[order[j]][order[j]] > cov[order[j - 1]][order[j - 1]]; j--) {
            k = order[j]; order[j] = order[j - 1]; order[j - 1] = k;
        }
    for (k = 0; k < WN; k++) {
        double scale = 1.0 / sqrt(cov[order[k]][order[k]] + 5e-4);
        for (i = 0; i < WN; i++) {
            weight[k * WN + i] = (float)(vec[i][order[k]] * scale);
            weight[(k + WN) * WN + i] = -weight[k * WN + i];
        }
    }
}

/* ---- The net ----------------------------------------------------------------------- */

static nn_layer_desc batchnorm(void)
{
    nn_layer_desc bn = nn_batchnorm();
    bn.momentum = 0.4f;    /* PyTorch's convention; airbench94 writes 1 - 0.4 = 0.6 */
    bn.eps = 1e-12f;
    return bn;
}

static nn_layer_desc conv3x3(int out)
{
    nn_layer_desc c = nn_conv2d(out, 3, 1, 1);
    c.no_bias = 1;
    return c;
}

static nn_net *airbench_net(void)
{
    static const int widths[3] = {64, 256, 256};
    nn_net *net = nn_net_new(nn_shape3(3, 32, 32));
    nn_layer_desc fc = nn_linear(10);
    int g;
    fc.no_bias = 1;
    nn_add(net, nn_conv2d(24, 2, 1, 0));   /* the whitening layer, 0.weight and 0.bias */
    nn_add(net, nn_gelu(0));
    for (g = 0; g < 3; g++) {
        nn_add(net, conv3x3(widths[g]));
        nn_add(net, nn_maxpool2d(2, 2, 0));
        nn_add(net, batchnorm());
        nn_add(net, nn_gelu(0));
        nn_add(net, conv3x3(widths[g]));
        nn_add(net, batchnorm());
        nn_add(net, nn_gelu(0));
    }
    nn_add(net, nn_maxpool2d(3, 3, 0));
    nn_add(net, nn_flatten());
    nn_add(net, fc);
    nn_add(net, nn_scale(1.0f / 9.0f));
    return net;
}

/* After nn_build: dirac init of the first in-channels of every 3x3 conv, the whitening
   weights frozen, the BatchNorm weights frozen at 1 and their biases at 64x the rate
   with the same decay (lr x 64, weight decay coefficient / 64: PyTorch's
   param_groups of airbench94). */
static nn_status airbench_init(nn_net *net, const float *whiten_x, int whiten_count)
{
    nn_param_options frozen = {0, 0, 0, 1}, bias = {64.0f, 1.0f / 64.0f, 0, 0};
    nn_status st;
    int i;
    whitening_weights(whiten_x, whiten_count, nn_get_layer(net, 0)->weight->value);
    memset(nn_get_layer(net, 0)->bias->value, 0, 24 * sizeof(float));
    if ((st = nn_set_param_options(net, "0.weight", frozen)) != NN_OK) return st;
    for (i = 0; i < nn_num_layers(net); i++) {
        const nn_layer *L = nn_get_layer(net, i);
        if (L->desc.kind == NN_CONV2D && L->desc.kernel_h == 3) {
            int in = L->in.c, o;
            float *w = L->weight->value;
            memset(w, 0, (size_t)in * in * 9 * sizeof(float));   /* filters 0..in-1: identity */
            for (o = 0; o < in; o++) w[((size_t)o * in + o) * 9 + 4] = 1.0f;
        }
        if (L->desc.kind == NN_BATCHNORM) {
            if ((st = nn_set_param_options(net, L->weight->name, frozen)) != NN_OK ||
                (st = nn_set_param_options(net, L->bias->name, bias)) != NN_OK)
                return st;
        }
    }
    return NN_OK;
}

/* airbench94 sums the loss over the batch and gives PyTorch's SGD lr = 11.5 / ks and
   weight_decay = wd / lr with wd = 0.0153 batch / ks, ks = 1024 (1 + 1 / (1 - momentum))
   (the Nesterov step's growth under a constant gradient). nn_train_step averages the
   loss, so the same steps take lr x batch and weight_decay / batch. */
static void lr_and_wd(int batch, float momentum, float *lr, float *weight_decay)
{
    double ks = 1024.0 * (1.0 + 1.0 / (1.0 - momentum)), lr_sum = 11.5 / ks, wd = 0.0153 * batch / ks;
    *lr = (float)(lr_sum * batch);
    *weight_decay = (float)(wd / lr_sum / batch);
}

/* The progress line on stderr: epoch, step, loss and accuracy since the epoch began,
   images/s, time left at that rate. */
/* The recipe's training state: the net built and initialised (whitening, dirac, options),
   label smoothing 0.2, Nesterov SGD at airbench94's rate and decay, the Lookahead copy, and
   the batcher with the alternating flip and the reflected 2-pixel translation. */
typedef struct recipe {
    nn_net *net;
    nn_optim *opt;
    nn_ema *lookahead;
    float lr, weight_decay;
    int total;   /* steps of the whole run, for the schedule and the Lookahead decay */
} recipe;

static nn_status recipe_open(recipe *r, nn_dataset *train, int batch, unsigned long seed, int total)
{
    const float momentum = 0.85f;
    nn_augment augment = {.flip = 2, .crop_pad = 2, .reflect = 1};
    memset(r, 0, sizeof *r);
    r->total = total;
    lr_and_wd(batch, momentum, &r->lr, &r->weight_decay);
    if (!(r->net = airbench_net())) return NN_ERR_NOMEM;
    if (nn_build(r->net, batch, seed) != NN_OK || airbench_init(r->net, train->x, 5000) != NN_OK ||
        nn_set_label_smoothing(r->net, 0.2f) != NN_OK)
        return NN_ERR_ARG;
    if (!(r->opt = nn_sgd(r->net, (nn_sgd_desc){.lr = r->lr, .momentum = momentum,
                                               .weight_decay = r->weight_decay, .nesterov = 1})) ||
        !(r->lookahead = nn_ema_new(r->net)))
        return NN_ERR_NOMEM;
    if (nn_batch_start(train, seed) != NN_OK || nn_set_augment(train, augment) != NN_OK) return NN_ERR_ARG;
    return NN_OK;
}

/* Step `step` (from 0) of the recipe: the triangular rate, one training step, and every
   5 steps the Lookahead: decay 0.95^5 (steps done / total)^3. Returns the loss. */
static float recipe_step(recipe *r, int step, const float *x, const int *y, int batch)
{
    float loss;
    nn_optim_set_lr(r->opt, nn_lr_triangular(r->lr, step, r->total, 0.23f, 0.2f, 0.07f));
    loss = nn_train_step(r->net, r->opt, x, y, batch);
    if ((step + 1) % 5 == 0) {
        double t = (double)(step + 1) / r->total;
        nn_ema_update(r->lookahead, (float)(pow(0.95, 5.0) * t * t * t));
        nn_ema_apply(r->lookahead);
    }
    return loss;
}

static void recipe_close(recipe *r)
{
    nn_ema_free(r->lookahead);
    nn_optim_free(r->opt);
    nn_net_free(r->net);
}

static void progress_line(int epoch, int step, int total, float loss, float acc, double images_per_s,
                          double elapsed)
{
    double left = step ? elapsed / step * (total - step) : 0.0;
    fprintf(stderr, "\repoch %2d  step %4d/%d  loss %.4f  acc %.3f  %6.0f img/s  %5.0fs left ", epoch, step,
            total, loss, acc, images_per_s, left);
    fflush(stderr);
}

/* Accuracy of the last batch's logits. */
static int correct_of(const float *logits, const int *y, int n)
{
    int i, c = 0;
    for (i = 0; i < n; i++) c += nn_argmax(logits + (size_t)i * 10, 10) == y[i];
    return c;
}

int main(int argc, char **argv)
{
    const char *program = "speedrun", *data_dir = "data/cifar-10-batches-bin", *out_dir = "results";
    int batch = 1024, threads = 0, test_images = 0, steps_per_epoch, total, step = 0, epoch, i;
    int confusion[100];
    double epochs = 9.9, t0, t_train = 0.0;
    float mean[3], std[3], test_loss = 0, test_acc = 0, tta_acc = 0;
    unsigned long seed = 42;
    nn_dataset train, test;
    recipe r;
    nn_net *net;
    float *x;
    int *y;
    curves log;
    char path[1024];

    for (i = 1; i < argc; i++) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { help(); return 0; }
        if (strncmp(flag, "--", 2)) usage_error(program, "unexpected argument '%s'", flag);
        if (!value) usage_error(program, "%s needs a value", flag);
        flag += 2; i++;
        if (!strcmp(flag, "epochs")) epochs = flag_float(program, flag, value, 0.01, 1000);
        else if (!strcmp(flag, "batch_size")) batch = (int)flag_long(program, flag, value, 1, 4096);
        else if (!strcmp(flag, "test_images")) test_images = (int)flag_long(program, flag, value, 0, 10000);
        else if (!strcmp(flag, "data_dir") || !strcmp(flag, "data")) data_dir = value;
        else if (!strcmp(flag, "seed")) seed = (unsigned long)flag_long(program, flag, value, 0, 2147483647L);
        else if (!strcmp(flag, "threads")) threads = (int)flag_long(program, flag, value, 0, 256);
        else if (!strcmp(flag, "out")) out_dir = value;
        else usage_error(program, "unknown flag '--%s'", flag);
    }
    nn_set_threads(threads);

    if (nn_cifar10_load(data_dir, &train, &test) != NN_OK) {
        fprintf(stderr, "%s: %s\n(run `make data` to get CIFAR-10)\n", program, nn_error());
        return 1;
    }
    if (test_images && test_images < test.n) {   /* every k-th image: the file is sorted by class */
        size_t size = nn_shape_size(test.shape);
        int stride = test.n / test_images;
        for (i = 0; i < test_images; i++) {
            memmove(test.x + (size_t)i * size, test.x + (size_t)i * stride * size, size * sizeof(float));
            test.y[i] = test.y[i * stride];
        }
        test.n = test_images;
    }
    /* Both sets normalised once, in place (reflection padding pads with image values,
       so it commutes with the normalisation) */
    for (i = 0; i < 3; i++) { mean[i] = cifar_mean[i] * 255.0f; std[i] = cifar_std[i] * 255.0f; }
    if (nn_normalize_channels(&train, mean, std) != NN_OK || nn_normalize_channels(&test, mean, std) != NN_OK)
        return fail(program);

    steps_per_epoch = train.n / batch;    /* the last partial batch is dropped */
    total = (int)ceil(steps_per_epoch * epochs);
    t0 = now_seconds();
    if (recipe_open(&r, &train, batch, seed, total) != NN_OK) return fail(program);
    t_train += now_seconds() - t0;
    net = r.net;
    if (nn_set_preprocess_channels(net, 1.0f / 255.0f, cifar_mean, cifar_std) != NN_OK ||
        nn_set_class_names(net, cifar10_classes, 10) != NN_OK)
        return fail(program);
    if (ensure_dir(out_dir)) return 1;
    snprintf(path, sizeof path, "%s/speedrun.csv", out_dir);
    if (curves_open(&log, path, (int)ceil(epochs) + 1)) return 1;
    printf("airbench94 net, %zu parameters, Nesterov SGD lr %.4g (x64 for BatchNorm biases), weight decay %.4g, "
           "batch %d, %d steps (%d per epoch), %s kernels, %d threads\n", nn_num_param_scalars(net), r.lr, r.weight_decay,
           batch, total, steps_per_epoch, nn_simd_name(), nn_get_threads());
    x = (float *)malloc((size_t)batch * nn_shape_size(train.shape) * sizeof(float));
    y = (int *)malloc((size_t)batch * sizeof(int));
    if (!x || !y) { fprintf(stderr, "%s: out of memory\n", program); return 1; }

    for (epoch = 0; epoch < (int)ceil(epochs) && step < total; epoch++) {
        double window_loss = 0.0, te = now_seconds();
        int window_correct = 0, window_n = 0, window_steps = 0, s;
        /* the whitening bias trains for the first 3 epochs only */
        if (nn_set_param_options(net, "0.bias", (nn_param_options){.frozen = epoch >= 3}) != NN_OK)
            return fail(program);
        for (s = 0; s < steps_per_epoch && step < total; s++) {
            float loss;
            nn_next_batch(&train, batch, x, y);
            loss = recipe_step(&r, step, x, y, batch);
            if (!isfinite(loss)) return fail(program);
            window_correct += correct_of(nn_layer_output(net, nn_num_layers(net) - 1), y, batch);
            window_loss += loss; window_n += batch; window_steps++;
            step++;
            if (step == total) { nn_ema_update(r.lookahead, 1.0f); nn_ema_apply(r.lookahead); }
            if (step % 2 == 0 || step == total) {
                double elapsed = t_train + now_seconds() - te;
                progress_line(epoch + 1, step, total, (float)(window_loss / window_steps),
                              (float)window_correct / window_n, window_n / (now_seconds() - te), elapsed);
            }
        }
        /* drop the rest of the epoch, as airbench94's loader (drop_last) */
        if (train.cursor) nn_next_batch(&train, train.n - train.cursor, NULL, NULL);
        t_train += now_seconds() - te;
        if (nn_evaluate(net, &test, &test_loss, &test_acc, NULL) != NN_OK) return fail(program);
        fprintf(stderr, "\r%*s\r", 90, "");
        printf("epoch %2d  step %4d  train loss %.4f acc %.4f  test loss %.4f acc %.4f  (%.0fs training)\n",
               epoch + 1, step, window_loss / window_steps, (double)window_correct / window_n, test_loss, test_acc,
               t_train);
        fflush(stdout);
        curves_add(&log, step, (float)(window_loss / window_steps), (float)window_correct / window_n, test_loss,
                   test_acc);
    }
    t0 = now_seconds();
    if (nn_evaluate_tta(net, &test, 2, NULL, &tta_acc, confusion) != NN_OK) return fail(program);
    t_train += now_seconds() - t0;
    printf("\nconfusion matrix with TTA on the %d test images (rows: true class):\n", test.n);
    nn_print_confusion(stdout, confusion, 10, cifar10_classes);
    snprintf(path, sizeof path, "%s/speedrun.png", out_dir);
    if (plot_training_curves(path, log.step, log.train_loss, log.train_acc, log.n, log.step, log.test_loss,
                             log.test_acc, log.n, "airbench94 recipe on CIFAR-10") == 0)
        printf("curves: %s/speedrun.csv, plot: %s\n", out_dir, path);
    snprintf(path, sizeof path, "%s/speedrun.safetensors", out_dir);
    if (nn_save(net, path) != NN_OK) fprintf(stderr, "%s: %s\n", program, nn_error());
    else printf("model: %s\n", path);
    printf("result: test_accuracy=%.4f tta_accuracy=%.4f seconds=%.1f steps=%d\n", test_acc, tta_acc, t_train, step);
    curves_close(&log);
    free(x); free(y);
    recipe_close(&r);
    nn_dataset_free(&train);
    nn_dataset_free(&test);
    return 0;
}
