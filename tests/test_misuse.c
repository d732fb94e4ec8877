/* Misuse: every public function with each of its pointer arguments NULL in turn (the
   others valid), the calls out of order, the setters' bad values and who frees what.
   Each misuse runs in a child process, so that a crash fails that one case (named with
   its signal) and the sweep goes on; a sanitizer report in the child fails it too.
   test_every_public_function_is_swept reads nn.h and fails when a public function is
   neither swept here nor listed as taking no pointer. */
#define _XOPEN_SOURCE 700
#include <sys/wait.h>
#include <unistd.h>
#define NN_IMPLEMENTATION
#include "nn.h"
#include "harness.h"

/* ---- The child-process runner ------------------------------------------------------ */

#define MAX_SWEPT 256
static const char *swept[MAX_SWEPT];   /* the functions the sweep called */
static int num_swept;

static void note_swept(const char *fn)
{
    int i;
    for (i = 0; i < num_swept; i++)
        if (!strcmp(swept[i], fn)) return;
    if (num_swept < MAX_SWEPT) swept[num_swept++] = fn;
}

/* nn_error() says something other than its "no error" (cleared before each case). */
static int error_set(void) { return strcmp(nn_error(), "no error") != 0; }
static void error_clear(void) { nn__error_text[0] = '\0'; }

static int is_status(nn_status got, nn_status want) { return got == want && error_set(); }
static int is_arg(nn_status got) { return is_status(got, NN_ERR_ARG); }
static int is_state(nn_status got) { return is_status(got, NN_ERR_STATE); }
static int is_null(const void *p) { return p == NULL && error_set(); }
static int is_zero(double v) { return v == 0.0 && error_set(); }
static int is_nan(double v) { return isnan(v) && error_set(); }
static int is_zero_shape(nn_shape s) { return s.c == 0 && s.h == 0 && s.w == 0 && error_set(); }
static int is_minus_one(int v) { return v == -1 && error_set(); }
/* A void (or not yet checked) call: it must not crash; ERR: and must set the error. */
#define RUNS(call) ((void)(call), 1)
#define RUNS_ERR(call) ((void)(call), error_set())

/* Runs `expect` (which makes the call and judges its result) in a child. Exit 0: as
   documented; 3: another result; anything else: a crash or a sanitizer report. */
static int run_case(const char *fn, const char *what, pid_t pid)
{
    int status = 0;
    note_swept(fn);
    if (pid < 0) {
        fprintf(stderr, "FAIL %s: %s: cannot fork\n", fn, what);
        return 0;
    }
    if (waitpid(pid, &status, 0) != pid) status = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
        fprintf(stderr, "FAIL %s: %s: not the documented result\n", fn, what);
    else if (WIFSIGNALED(status))
        fprintf(stderr, "FAIL %s: %s: crashed (signal %d)\n", fn, what, WTERMSIG(status));
    else
        fprintf(stderr, "FAIL %s: %s: exit status %d (a sanitizer report?)\n", fn, what,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

#define CASE(fn, what, expect)                                                     \
    do {                                                                           \
        pid_t case_pid;                                                            \
        fflush(NULL);                                                              \
        case_pid = fork();                                                         \
        if (case_pid == 0) {                                                       \
            alarm(30);                                                             \
            error_clear();                                                         \
            _exit((expect) ? 0 : 3);                                               \
        }                                                                          \
        if (!run_case(fn, what, case_pid)) harness_test_failed++;                  \
    } while (0)

/* ---- Fixtures, made once in the parent and inherited by every child --------------- */

static nn_net *net;                 /* Flatten, Linear(3), ReLU, Linear(2) on 1x2x2, batch 4 */
static nn_optim *opt;
static float x[4 * 4], dy[4 * 2], out[64], mean[4], std_[4];
static int y[4] = {0, 1, 1, 0}, confusion[4] = {1, 0, 0, 1}, items[3] = {0, 1, 2};
static nn_dataset ds, ds_no_x, ds_no_y;   /* filled by hand: our own arrays */
static const nn_augment aug_none = {0, 0, 0}, aug_flip = {1, 0, 0}, aug_flip3 = {3, 0, 0},
                        aug_neg = {0, -1, 0}, aug_big = {0, 2, 0}, aug_pad1 = {1, 1, 0};
static unsigned char *model;        /* nn_save_memory of net */
static size_t model_size;
static char dir[] = "/tmp/nn_test_misuse_XXXXXX", path[64];
static FILE *devnull;
static const char *const two_names[2] = {"cat", "dog"};
static const char *const null_name[2] = {"cat", NULL};

static nn_net *small_net(int input_grad)
{
    nn_net *n = nn_net_new(nn_shape3(1, 2, 2));
    nn_add(n, nn_flatten());
    nn_add(n, nn_linear(3));
    nn_add(n, nn_relu());
    nn_add(n, nn_linear(2));
    nn_set_input_grad(n, input_grad);
    return n;
}

static int setup(void)
{
    int i;
    nn_sgd_desc sgd = {0};
    for (i = 0; i < 16; i++) x[i] = (float)(i % 5) - 2.0f;
    for (i = 0; i < 8; i++) dy[i] = 0.125f * (float)(i - 3);
    for (i = 0; i < 4; i++) { mean[i] = 1.0f; std_[i] = 2.0f; }
    net = small_net(1);
    sgd.lr = 0.1f;
    if (nn_build(net, 4, 1) != NN_OK || !(opt = nn_sgd(net, sgd)) ||
        nn_save_memory(net, &model, &model_size) != NN_OK || !mkdtemp(dir) ||
        !(devnull = fopen("/dev/null", "w"))) {
        fprintf(stderr, "setup: %s\n", nn_error());
        return 0;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    ds.n = 4; ds.shape = nn_shape3(1, 2, 2); ds.num_classes = 2; ds.x = x; ds.y = y;
    ds_no_x = ds; ds_no_x.x = NULL;
    ds_no_y = ds; ds_no_y.y = NULL;
    return 1;
}

/* ---- The NULL sweep: the sections of errors, memory, RNG, tensors, kernels, networks,
   data and nn_print_confusion ------------------------------------------------------ */

static void test_null_core_and_kernels(void)
{
    nn_rng r = nn_rng_new(1);
    CASE("nn_rng_u32", "NULL r", is_zero(nn_rng_u32(NULL)));
    CASE("nn_rng_below", "NULL r", is_zero(nn_rng_below(NULL, 5)));
    CASE("nn_rng_uniform", "NULL r", is_zero(nn_rng_uniform(NULL)));
    CASE("nn_rng_normal", "NULL r", is_zero(nn_rng_normal(NULL, 0.0f, 1.0f)));
    CASE("nn_rng_shuffle", "NULL r", is_arg(nn_rng_shuffle(NULL, items, 3)));
    CASE("nn_rng_shuffle", "NULL items", is_arg(nn_rng_shuffle(&r, NULL, 3)));
    CASE("nn_gemm", "NULL a", is_arg(nn_gemm(0, 0, 2, 2, 2, 1.0f, NULL, 2, x, 2, 0.0f, out, 2)));
    CASE("nn_gemm", "NULL b", is_arg(nn_gemm(0, 0, 2, 2, 2, 1.0f, x, 2, NULL, 2, 0.0f, out, 2)));
    CASE("nn_gemm", "NULL c", is_arg(nn_gemm(0, 0, 2, 2, 2, 1.0f, x, 2, x, 2, 0.0f, NULL, 2)));
    CASE("nn_gemm_reference", "NULL a",
         is_arg(nn_gemm_reference(0, 0, 2, 2, 2, 1.0f, NULL, 2, x, 2, 0.0f, out, 2)));
    CASE("nn_gemm_reference", "NULL b",
         is_arg(nn_gemm_reference(0, 0, 2, 2, 2, 1.0f, x, 2, NULL, 2, 0.0f, out, 2)));
    CASE("nn_gemm_reference", "NULL c",
         is_arg(nn_gemm_reference(0, 0, 2, 2, 2, 1.0f, x, 2, x, 2, 0.0f, NULL, 2)));
    CASE("nn_im2col", "NULL img", is_arg(nn_im2col(NULL, 1, 4, 4, 3, 3, 1, 1, 1, 1, out, 16)));
    CASE("nn_im2col", "NULL col", is_arg(nn_im2col(x, 1, 4, 4, 3, 3, 1, 1, 1, 1, NULL, 16)));
    CASE("nn_col2im", "NULL col", is_arg(nn_col2im(NULL, 4, 1, 4, 4, 3, 3, 2, 2, 1, 1, out)));
    CASE("nn_col2im", "NULL img", is_arg(nn_col2im(x, 4, 1, 4, 4, 3, 3, 2, 2, 1, 1, NULL)));
}

static void test_null_networks(void)
{
    CASE("nn_net_free", "NULL net (a no-op)", RUNS(nn_net_free(NULL)));
    CASE("nn_add", "NULL net", is_arg(nn_add(NULL, nn_relu())));
    CASE("nn_build", "NULL net", is_arg(nn_build(NULL, 4, 0)));
    CASE("nn_init_weights", "NULL net", is_arg(nn_init_weights(NULL, NN_INIT_DEFAULT, 0, 0, 0, 0)));
    CASE("nn_set_training", "NULL net", is_arg(nn_set_training(NULL, 0)));
    CASE("nn_num_layers", "NULL net", is_zero(nn_num_layers(NULL)));
    CASE("nn_get_layer", "NULL net", is_null(nn_get_layer(NULL, 0)));
    CASE("nn_num_param_tensors", "NULL net", is_zero(nn_num_param_tensors(NULL)));
    CASE("nn_get_param", "NULL net", is_null(nn_get_param(NULL, 0)));
    CASE("nn_num_param_scalars", "NULL net", is_zero((double)nn_num_param_scalars(NULL)));
    CASE("nn_input_shape", "NULL net", is_zero_shape(nn_input_shape(NULL)));
    CASE("nn_output_shape", "NULL net", is_zero_shape(nn_output_shape(NULL)));
    CASE("nn_max_batch", "NULL net", is_zero(nn_max_batch(NULL)));
    CASE("nn_forward", "NULL net", is_null(nn_forward(NULL, x, 1)));
    CASE("nn_forward", "NULL x", is_null(nn_forward(net, NULL, 1)));
    CASE("nn_backward", "NULL net", is_arg(nn_backward(NULL, dy)));
    CASE("nn_backward", "NULL dy", nn_forward(net, x, 2) && is_arg(nn_backward(net, NULL)));
    CASE("nn_zero_grad", "NULL net", is_arg(nn_zero_grad(NULL)));
    CASE("nn_set_input_grad", "NULL net", is_arg(nn_set_input_grad(NULL, 1)));
    CASE("nn_input_grad", "NULL net", is_null(nn_input_grad(NULL)));
    CASE("nn_layer_output", "NULL net", is_null(nn_layer_output(NULL, 0)));
    CASE("nn_layer_input_grad", "NULL net", is_null(nn_layer_input_grad(NULL, 0)));
    CASE("nn_inference_only", "NULL net", is_arg(nn_inference_only(NULL)));
}

static void test_null_data(void)
{
    const char *const paths[1] = {path}, *const null_path[1] = {NULL};
    nn_dataset d, e;
    float m[4], s[4], bx[4];
    int by[1];
    CASE("nn_cifar10_load_files", "NULL paths", is_arg(nn_cifar10_load_files(NULL, 1, &d)));
    CASE("nn_cifar10_load_files", "a NULL path", is_arg(nn_cifar10_load_files(null_path, 1, &d)));
    CASE("nn_cifar10_load_files", "NULL out", is_arg(nn_cifar10_load_files(paths, 1, NULL)));
    CASE("nn_cifar10_load", "NULL dir", is_arg(nn_cifar10_load(NULL, &d, &e)));
    CASE("nn_cifar10_load", "NULL train and test", is_arg(nn_cifar10_load(dir, NULL, NULL)));
    CASE("nn_idx_load", "NULL images_path", is_arg(nn_idx_load(NULL, path, &d)));
    CASE("nn_idx_load", "NULL labels_path", is_arg(nn_idx_load(path, NULL, &d)));
    CASE("nn_idx_load", "NULL out", is_arg(nn_idx_load(path, path, NULL)));
    CASE("nn_dataset_free", "NULL d (a no-op)", RUNS(nn_dataset_free(NULL)));
    CASE("nn_mean_image", "NULL d", is_arg(nn_mean_image(NULL, m)));
    CASE("nn_mean_image", "NULL mean", is_arg(nn_mean_image(&ds, NULL)));
    CASE("nn_mean_image", "NULL d->x", is_arg(nn_mean_image(&ds_no_x, m)));
    CASE("nn_subtract_image", "NULL d", is_arg(nn_subtract_image(NULL, mean)));
    CASE("nn_subtract_image", "NULL mean", is_arg(nn_subtract_image(&ds, NULL)));
    CASE("nn_subtract_image", "NULL d->x", is_arg(nn_subtract_image(&ds_no_x, mean)));
    CASE("nn_channel_stats", "NULL d", is_arg(nn_channel_stats(NULL, m, s)));
    CASE("nn_channel_stats", "NULL mean", is_arg(nn_channel_stats(&ds, NULL, s)));
    CASE("nn_channel_stats", "NULL std", is_arg(nn_channel_stats(&ds, m, NULL)));
    CASE("nn_channel_stats", "NULL d->x", is_arg(nn_channel_stats(&ds_no_x, m, s)));
    CASE("nn_normalize_channels", "NULL d", is_arg(nn_normalize_channels(NULL, mean, std_)));
    CASE("nn_normalize_channels", "NULL mean", is_arg(nn_normalize_channels(&ds, NULL, std_)));
    CASE("nn_normalize_channels", "NULL std", is_arg(nn_normalize_channels(&ds, mean, NULL)));
    CASE("nn_normalize_channels", "NULL d->x", is_arg(nn_normalize_channels(&ds_no_x, mean, std_)));
    CASE("nn_scale_pixels", "NULL d", is_arg(nn_scale_pixels(NULL, 2.0f)));
    CASE("nn_scale_pixels", "NULL d->x", is_arg(nn_scale_pixels(&ds_no_x, 2.0f)));
    CASE("nn_set_augment", "NULL d", is_arg(nn_set_augment(NULL, aug_none)));
    CASE("nn_set_augment", "NULL d->x", is_arg(nn_set_augment(&ds_no_x, aug_none)));
    CASE("nn_batch_start", "NULL d", is_arg(nn_batch_start(NULL, 1)));
    CASE("nn_batch_start", "NULL d->x", is_arg(nn_batch_start(&ds_no_x, 1)));
    CASE("nn_next_batch", "NULL d", is_arg(nn_next_batch(NULL, 1, bx, by)));
    CASE("nn_next_batch", "NULL d->x", is_arg(nn_next_batch(&ds_no_x, 1, bx, by)));
    CASE("nn_next_batch", "NULL d->y with labels asked for", is_arg(nn_next_batch(&ds_no_y, 1, bx, by)));
    /* Documented: x and y may be NULL (the batch is skipped, or only its labels taken). */
    CASE("nn_next_batch", "NULL x and y (allowed)", nn_next_batch(&ds, 3, NULL, NULL) == NN_OK && ds.cursor == 3);
    CASE("nn_next_batch", "NULL x (allowed)", nn_next_batch(&ds, 1, NULL, by) == NN_OK && by[0] == 0);
    CASE("nn_next_batch", "NULL d->y, no labels asked for (allowed)",
         nn_next_batch(&ds_no_y, 1, bx, NULL) == NN_OK && bx[0] == x[0]);
    CASE("nn_print_confusion", "NULL out", is_arg(nn_print_confusion(NULL, confusion, 2, NULL)));
    CASE("nn_print_confusion", "NULL confusion", is_arg(nn_print_confusion(devnull, NULL, 2, NULL)));
    CASE("nn_print_confusion", "NULL names (allowed)", nn_print_confusion(devnull, confusion, 2, NULL) == NN_OK);
    CASE("nn_print_confusion", "a NULL name (its index is printed)",
         nn_print_confusion(devnull, confusion, 2, null_name) == NN_OK);
}

/* ---- The NULL sweep over the other sections: losses, optimisers and nn_train_step,
   model files, nn_evaluate and nn_argmax: NN_ERR_ARG, NULL, or NaN with the error set;
   a function that returns no status is only required not to crash and to set it. */

static void test_null_losses(void)
{
    float g[4];
    CASE("nn_softmax_cross_entropy", "NULL logits", is_nan(nn_softmax_cross_entropy(NULL, y, 2, 2, g)));
    CASE("nn_softmax_cross_entropy", "NULL labels", is_nan(nn_softmax_cross_entropy(x, NULL, 2, 2, g)));
    CASE("nn_softmax_cross_entropy", "NULL grad (allowed)", isfinite(nn_softmax_cross_entropy(x, y, 2, 2, NULL)));
    CASE("nn_softmax_cross_entropy_soft", "NULL logits",
         is_nan(nn_softmax_cross_entropy_soft(NULL, mean, 2, 2, g)));
    CASE("nn_softmax_cross_entropy_soft", "NULL targets",
         is_nan(nn_softmax_cross_entropy_soft(x, NULL, 2, 2, g)));
    CASE("nn_softmax_cross_entropy_smooth", "NULL logits", is_nan(nn_softmax_cross_entropy_smooth(NULL, y, 2, 2, 0.1f, g)));
    CASE("nn_softmax_cross_entropy_smooth", "NULL labels", is_nan(nn_softmax_cross_entropy_smooth(x, NULL, 2, 2, 0.1f, g)));
    CASE("nn_softmax_cross_entropy_smooth", "NULL grad (allowed)",
         isfinite(nn_softmax_cross_entropy_smooth(x, y, 2, 2, 0.1f, NULL)));
    CASE("nn_mse", "NULL pred", is_nan(nn_mse(NULL, x, 4, 0, g)));
    CASE("nn_mse", "NULL target", is_nan(nn_mse(x, NULL, 4, 0, g)));
    CASE("nn_bce", "NULL prob", is_nan(nn_bce(NULL, mean, 4, g)));
    CASE("nn_bce", "NULL target", is_nan(nn_bce(mean, NULL, 4, g)));
    CASE("nn_bce_with_logits", "NULL logits", is_nan(nn_bce_with_logits(NULL, mean, 4, g)));
    CASE("nn_bce_with_logits", "NULL target", is_nan(nn_bce_with_logits(x, NULL, 4, g)));
}

static void test_null_optimisers(void)
{
    nn_sgd_desc sgd = {0};
    nn_adam_desc adam = {0};
    sgd.lr = 0.1f;
    CASE("nn_sgd", "NULL net", is_null(nn_sgd(NULL, sgd)));
    CASE("nn_adam", "NULL net", is_null(nn_adam(NULL, adam)));
    CASE("nn_adamw", "NULL net", is_null(nn_adamw(NULL, adam)));
    CASE("nn_adamax", "NULL net", is_null(nn_adamax(NULL, adam)));
    CASE("nn_optim_free", "NULL opt (a no-op)", RUNS(nn_optim_free(NULL)));
    CASE("nn_optim_step", "NULL opt", RUNS_ERR(nn_optim_step(NULL)));
    CASE("nn_optim_set_lr", "NULL opt", RUNS_ERR(nn_optim_set_lr(NULL, 0.1f)));
    CASE("nn_set_check_input", "NULL net", is_arg(nn_set_check_input(NULL, 1)));
    CASE("nn_set_label_smoothing", "NULL net", is_arg(nn_set_label_smoothing(NULL, 0.1f)));
    CASE("nn_set_param_options", "NULL net", is_arg(nn_set_param_options(NULL, "1", (nn_param_options){0})));
    CASE("nn_set_param_options", "NULL name", is_arg(nn_set_param_options(net, NULL, (nn_param_options){0})));
    CASE("nn_ema_new", "NULL net", is_null(nn_ema_new(NULL)));
    CASE("nn_ema_update", "NULL e", is_arg(nn_ema_update(NULL, 0.5f)));
    CASE("nn_ema_apply", "NULL e", is_arg(nn_ema_apply(NULL)));
    CASE("nn_ema_swap", "NULL e", is_arg(nn_ema_swap(NULL)));
    CASE("nn_ema_free", "NULL e (a no-op)", RUNS(nn_ema_free(NULL)));
    CASE("nn_set_allreduce", "NULL net", is_arg(nn_set_allreduce(NULL, NULL, NULL, 1)));
    CASE("nn_set_sync_batchnorm", "NULL net", is_arg(nn_set_sync_batchnorm(NULL, 1)));
    CASE("nn_batch_shard", "NULL d", is_arg(nn_batch_shard(NULL, 0, 2)));
    CASE("nn_optim_get_lr", "NULL opt", RUNS_ERR(nn_optim_get_lr(NULL)));
    CASE("nn_optim_steps", "NULL opt", RUNS_ERR(nn_optim_steps(NULL)));
    CASE("nn_train_step", "NULL net", is_nan(nn_train_step(NULL, opt, x, y, 2)));
    CASE("nn_train_step", "NULL opt", is_nan(nn_train_step(net, NULL, x, y, 2)));
    CASE("nn_train_step", "NULL x", is_nan(nn_train_step(net, opt, NULL, y, 2)));
    CASE("nn_train_step", "NULL y", is_nan(nn_train_step(net, opt, x, NULL, 2)));
    CASE("nn_batch_correct", "NULL net", is_minus_one(nn_batch_correct(NULL, y, 2)));
    CASE("nn_batch_correct", "NULL labels", is_minus_one(nn_batch_correct(net, NULL, 2)));
}

static void test_null_model_files(void)
{
    unsigned char *data;
    size_t size;
    float px[4];
    CASE("nn_set_preprocess_mean_image", "NULL net", is_arg(nn_set_preprocess_mean_image(NULL, mean)));
    CASE("nn_set_preprocess_mean_image", "NULL mean_image", is_arg(nn_set_preprocess_mean_image(net, NULL)));
    CASE("nn_set_preprocess_channels", "NULL net", is_arg(nn_set_preprocess_channels(NULL, 1.0f, mean, std_)));
    CASE("nn_set_preprocess_channels", "NULL mean", is_arg(nn_set_preprocess_channels(net, 1.0f, NULL, std_)));
    CASE("nn_set_preprocess_channels", "NULL std", is_arg(nn_set_preprocess_channels(net, 1.0f, mean, NULL)));
    CASE("nn_get_preprocess", "NULL net", RUNS_ERR(nn_get_preprocess(NULL)));
    CASE("nn_preprocess", "NULL net", is_arg(nn_preprocess(NULL, x, px, 1)));
    CASE("nn_preprocess", "NULL pixels", is_arg(nn_preprocess(net, NULL, px, 1)));
    CASE("nn_preprocess", "NULL x", is_arg(nn_preprocess(net, x, NULL, 1)));
    CASE("nn_set_class_names", "NULL net", is_arg(nn_set_class_names(NULL, two_names, 2)));
    CASE("nn_set_class_names", "NULL names", is_arg(nn_set_class_names(net, NULL, 2)));
    CASE("nn_set_class_names", "a NULL name", is_arg(nn_set_class_names(net, null_name, 2)));
    CASE("nn_class_name", "NULL net", is_null(nn_class_name(NULL, 0)));
    CASE("nn_save_memory", "NULL net", is_arg(nn_save_memory(NULL, &data, &size)));
    CASE("nn_save_memory", "NULL data", is_arg(nn_save_memory(net, NULL, &size)));
    CASE("nn_save_memory", "NULL size", is_arg(nn_save_memory(net, &data, NULL)));
    CASE("nn_free_buffer", "NULL data (a no-op)", RUNS(nn_free_buffer(NULL)));
    CASE("nn_load_memory", "NULL data", is_null(nn_load_memory(NULL, model_size, 4)));
    CASE("nn_load_weights_memory", "NULL net", is_arg(nn_load_weights_memory(NULL, model, model_size)));
    CASE("nn_load_weights_memory", "NULL data", is_arg(nn_load_weights_memory(net, NULL, model_size)));
    CASE("nn_save", "NULL net", is_arg(nn_save(NULL, path)));
    CASE("nn_save", "NULL path", is_arg(nn_save(net, NULL)));
    CASE("nn_load", "NULL path", is_null(nn_load(NULL, 4)));
    CASE("nn_load_weights", "NULL net", is_arg(nn_load_weights(NULL, path)));
    CASE("nn_load_weights", "NULL path", is_arg(nn_load_weights(net, NULL)));
    CASE("nn_save_checkpoint", "NULL net", is_arg(nn_save_checkpoint(NULL, opt, path)));
    CASE("nn_save_checkpoint", "NULL opt", is_arg(nn_save_checkpoint(net, NULL, path)));
    CASE("nn_save_checkpoint", "NULL path", is_arg(nn_save_checkpoint(net, opt, NULL)));
    CASE("nn_load_checkpoint", "NULL net", is_arg(nn_load_checkpoint(NULL, opt, path)));
    CASE("nn_load_checkpoint", "NULL opt", is_arg(nn_load_checkpoint(net, NULL, path)));
    CASE("nn_load_checkpoint", "NULL path", is_arg(nn_load_checkpoint(net, opt, NULL)));
    CASE("nn_load_checkpoint_memory", "NULL net", is_arg(nn_load_checkpoint_memory(NULL, opt, model, model_size)));
    CASE("nn_load_checkpoint_memory", "NULL opt", is_arg(nn_load_checkpoint_memory(net, NULL, model, model_size)));
    CASE("nn_load_checkpoint_memory", "NULL data", is_arg(nn_load_checkpoint_memory(net, opt, NULL, model_size)));
    CASE("nn_load_onnx_memory", "NULL data", is_null(nn_load_onnx_memory(NULL, model_size, 4)));
    CASE("nn_load_onnx", "NULL path", is_null(nn_load_onnx(NULL, 4)));
    {
        nn_quantize_desc qd = {0};
        CASE("nn_quantize", "NULL net", is_null(nn_quantize(NULL, &ds, 1, qd)));
        CASE("nn_quantize", "NULL calibration", is_null(nn_quantize(net, NULL, 1, qd)));
        CASE("nn_is_quantized", "NULL net", RUNS_ERR(nn_is_quantized(NULL)));
    }
}

static void test_null_metrics(void)
{
    float loss, acc;
    int conf[4];
    CASE("nn_evaluate", "NULL net", is_arg(nn_evaluate(NULL, &ds, &loss, &acc, conf)));
    CASE("nn_evaluate", "NULL d", is_arg(nn_evaluate(net, NULL, &loss, &acc, conf)));
    CASE("nn_evaluate", "NULL outputs (allowed)", nn_evaluate(net, &ds, NULL, NULL, NULL) == NN_OK);
    CASE("nn_evaluate_tta", "NULL net", is_arg(nn_evaluate_tta(NULL, &ds, 2, &loss, &acc, conf)));
    CASE("nn_evaluate_tta", "NULL d", is_arg(nn_evaluate_tta(net, NULL, 2, &loss, &acc, conf)));
    CASE("nn_evaluate_tta", "NULL outputs (allowed)", nn_evaluate_tta(net, &ds, 2, NULL, NULL, NULL) == NN_OK);
    CASE("nn_forward_tta", "NULL net", is_arg(nn_forward_tta(NULL, x, 2, 2, out)));
    CASE("nn_forward_tta", "NULL x", is_arg(nn_forward_tta(net, NULL, 2, 2, out)));
    CASE("nn_forward_tta", "NULL out", is_arg(nn_forward_tta(net, x, 2, 2, NULL)));
    CASE("nn_argmax", "NULL v", RUNS_ERR(nn_argmax(NULL, 3)));
}

/* The ONNX export: each pointer NULL, and a net that is not built. */
static void test_null_onnx_export(void)
{
    unsigned char *data = NULL;
    size_t size = 0;
    nn_net *fresh = nn_net_new(nn_shape1(4));
    nn_add(fresh, nn_linear(2));
    CASE("nn_save_onnx_memory", "NULL net", is_arg(nn_save_onnx_memory(NULL, &data, &size)));
    CASE("nn_save_onnx_memory", "NULL data", is_arg(nn_save_onnx_memory(net, NULL, &size)));
    CASE("nn_save_onnx_memory", "NULL size", is_arg(nn_save_onnx_memory(net, &data, NULL)));
    CASE("nn_save_onnx_memory", "before nn_build", is_state(nn_save_onnx_memory(fresh, &data, &size)) &&
         data == NULL && size == 0);
    CASE("nn_save_onnx", "NULL net", is_arg(nn_save_onnx(NULL, path)));
    CASE("nn_save_onnx", "NULL path", is_arg(nn_save_onnx(net, NULL)));
    CASE("nn_save_onnx", "before nn_build", is_state(nn_save_onnx(fresh, path)));
    nn_net_free(fresh);
}

/* Public functions without pointer arguments: nothing to sweep. */
static const char *const no_pointer_args[] = {
    "nn_error", "nn_status_name", "nn_rng_new", "nn_shape3", "nn_shape1", "nn_shape_size",
    "nn_simd_name", "nn_set_threads", "nn_get_threads", "nn_layer_name", "nn_linear",
    "nn_conv2d", "nn_maxpool2d", "nn_avgpool2d", "nn_global_avgpool", "nn_batchnorm",
    "nn_relu", "nn_leaky_relu", "nn_sigmoid", "nn_tanh", "nn_gelu", "nn_softplus", "nn_scale",
    "nn_dropout", "nn_flatten", "nn_relu6", "nn_hardtanh", "nn_block", "nn_shortcut", "nn_block_end",
    "nn_named" /* its name may be NULL: the default */, "nn_net_new", "nn_lr_step_decay", "nn_lr_cosine",
    "nn_lr_triangular",
    "nn_shard" /* its first may be NULL */
};

/* Every NNDEF of nn.h's public part is swept above or listed in no_pointer_args (so a
   new public function must join the sweep). */
static void test_every_public_function_is_swept(void)
{
    char header[512], line[1024];
    const char *slash = strrchr(__FILE__, '/');
    FILE *f;
    int functions = 0;
    snprintf(header, sizeof header, "%.*s/../nn.h", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".");
    f = fopen(header, "r");
    CHECK(f != NULL, "cannot open %s", header);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        char *name, *paren;
        size_t i, listed = 0;
        int k;
        if (!strncmp(line, "#ifdef NN_IMPLEMENTATION", 24)) break;
        if (strncmp(line, "NNDEF ", 6) || !(paren = strchr(line, '('))) continue;
        *paren = '\0';
        name = strrchr(line, ' ');
        name = name ? name + 1 : line;
        while (*name == '*') name++;
        functions++;
        for (i = 0; i < sizeof no_pointer_args / sizeof *no_pointer_args; i++)
            listed += !strcmp(no_pointer_args[i], name);
        for (k = 0; k < num_swept; k++) listed += !strcmp(swept[k], name);
        CHECK(listed >= 1, "%s: neither swept nor listed as taking no pointer", name);
    }
    fclose(f);
    CHECK(functions > 90, "only %d public functions found in %s", functions, header);
}

/* ---- Call order ------------------------------------------------------------------- */

static void test_backward_order(void)
{
    nn_net *fresh = small_net(1);
    CASE("nn_backward", "before nn_build", is_state(nn_backward(fresh, dy)));
    CHECK(nn_build(fresh, 4, 2) == NN_OK, "%s", nn_error());
    CASE("nn_backward", "built, no forward yet", is_state(nn_backward(fresh, dy)) &&
         strstr(nn_error(), "no nn_forward") != NULL);
    CASE("nn_backward", "after a forward",
         nn_forward(fresh, x, 4) && nn_backward(fresh, dy) == NN_OK);
    /* A rebuild for a smaller batch forgets the forward of 4 samples (it used to run the
       backward on 4 samples in buffers for 2). */
    CASE("nn_backward", "rebuilt after a forward",
         nn_forward(fresh, x, 4) && nn_build(fresh, 2, 3) == NN_OK && is_state(nn_backward(fresh, dy)));
    CASE("nn_backward", "inference-only after a forward",
         nn_forward(fresh, x, 4) && nn_inference_only(fresh) == NN_OK && is_state(nn_backward(fresh, dy)));
    nn_net_free(fresh);
}

/* nn_layer_output after a forward: the last layer's is what nn_forward returned, the
   Flatten's (a view) is the input. */
static int output_is_forward(nn_net *n)
{
    const float *y = nn_forward(n, x, 2);
    return y && nn_layer_output(n, 3) == y && nn_layer_output(n, 0) == x;
}

static void test_other_calls_out_of_order(void)
{
    nn_net *fresh = small_net(1), *plain = small_net(0);
    CASE("nn_forward", "before nn_build", is_null(nn_forward(fresh, x, 1)) && strstr(nn_error(), "not built"));
    CASE("nn_input_grad", "before nn_build", is_null(nn_input_grad(fresh)));
    CASE("nn_layer_output", "before nn_build", is_null(nn_layer_output(fresh, 0)));
    CASE("nn_layer_input_grad", "before nn_build", is_null(nn_layer_input_grad(fresh, 0)));
    CASE("nn_zero_grad", "before nn_build", is_state(nn_zero_grad(fresh)));
    CASE("nn_set_training", "before nn_build", is_state(nn_set_training(fresh, 0)));
    CASE("nn_init_weights", "before nn_build", is_state(nn_init_weights(fresh, NN_INIT_DEFAULT, 0, 0, 0, 0)));
    CASE("nn_inference_only", "before nn_build", is_state(nn_inference_only(fresh)));
    CASE("nn_output_shape", "before nn_build", nn_output_shape(fresh).c == 0);
    CASE("nn_input_shape", "before nn_build", nn_input_shape(fresh).c == 1 && nn_input_shape(fresh).h == 2);
    CASE("nn_batch_correct", "before nn_build", is_minus_one(nn_batch_correct(fresh, y, 1)) &&
         strstr(nn_error(), "not built"));
    CASE("nn_max_batch", "before nn_build", nn_max_batch(fresh) == 0);
    CASE("nn_set_param_options", "before nn_build", is_state(nn_set_param_options(fresh, "1", (nn_param_options){0})));
    CASE("nn_ema_new", "before nn_build", is_null(nn_ema_new(fresh)) && strstr(nn_error(), "build"));
    CASE("nn_forward_tta", "before nn_build", is_state(nn_forward_tta(fresh, x, 1, 1, out)));
    CASE("nn_evaluate_tta", "before nn_build", is_state(nn_evaluate_tta(fresh, &ds, 1, NULL, NULL, NULL)));
    CHECK(nn_build(fresh, 4, 2) == NN_OK && nn_build(plain, 4, 2) == NN_OK, "%s", nn_error());
    CASE("nn_add", "after nn_build", is_state(nn_add(fresh, nn_relu())));
    CASE("nn_set_input_grad", "a change after nn_build", is_state(nn_set_input_grad(fresh, 0)) &&
         is_state(nn_set_input_grad(plain, 1)));
    CASE("nn_set_input_grad", "the built value again", nn_set_input_grad(fresh, 7) == NN_OK &&
         nn_set_input_grad(plain, 0) == NN_OK);
    CASE("nn_input_grad", "built, no backward yet", is_null(nn_input_grad(fresh)));
    CASE("nn_layer_output", "built, no forward yet", is_null(nn_layer_output(fresh, 3)) && strstr(nn_error(), "no nn_forward"));
    CASE("nn_batch_correct", "built, no forward yet", is_minus_one(nn_batch_correct(fresh, y, 1)) &&
         strstr(nn_error(), "no forward"));
    CASE("nn_batch_correct", "n is not the forward's", nn_forward(fresh, x, 2) &&
         is_minus_one(nn_batch_correct(fresh, y, 3)) && nn_batch_correct(fresh, y, 2) >= 0);
    CASE("nn_layer_input_grad", "built, no backward yet", is_null(nn_layer_input_grad(fresh, 3)));
    CASE("nn_layer_output", "index out of range", nn_forward(fresh, x, 1) && is_null(nn_layer_output(fresh, 4)) &&
         is_null(nn_layer_output(fresh, -1)));
    CASE("nn_layer_output", "after a forward", output_is_forward(fresh));
    CASE("nn_layer_input_grad", "not computed (nothing below has parameters)",
         nn_forward(plain, x, 4) && nn_backward(plain, dy) == NN_OK && is_null(nn_layer_input_grad(plain, 1)) &&
         nn_layer_input_grad(plain, 2) != NULL);
    CASE("nn_layer_input_grad", "index out of range", is_null(nn_layer_input_grad(plain, 4)));
    CASE("nn_input_grad", "not asked for",
         nn_forward(plain, x, 4) && nn_backward(plain, dy) == NN_OK && is_null(nn_input_grad(plain)));
    CASE("nn_input_grad", "after a backward, and after the next forward",
         nn_forward(fresh, x, 4) && nn_backward(fresh, dy) == NN_OK && nn_input_grad(fresh) != NULL &&
         nn_forward(fresh, x, 1) && nn_input_grad(fresh) == nn_layer_input_grad(fresh, 1));
    CASE("nn_input_grad", "after a rebuild",
         nn_forward(fresh, x, 4) && nn_backward(fresh, dy) == NN_OK && nn_build(fresh, 4, 3) == NN_OK &&
         is_null(nn_input_grad(fresh)));
    CASE("nn_zero_grad", "inference-only", nn_inference_only(plain) == NN_OK && is_state(nn_zero_grad(plain)));
    CASE("nn_layer_input_grad", "inference-only", nn_inference_only(plain) == NN_OK &&
         is_null(nn_layer_input_grad(plain, 3)));
    CASE("nn_layer_output", "inference-only: only the last layer's", nn_inference_only(plain) == NN_OK &&
         nn_forward(plain, x, 4) &&
         is_null(nn_layer_output(plain, 1)) && nn_layer_output(plain, 3) != NULL);
    CASE("nn_get_layer", "index out of range", is_null(nn_get_layer(fresh, 4)) && is_null(nn_get_layer(fresh, -1)));
    CASE("nn_get_param", "index out of range", is_null(nn_get_param(fresh, 4)));
    nn_net_free(fresh);
    nn_net_free(plain);
}

/* ---- Setters and arguments out of range ---------------------------------------------- */

/* Whether every parameter value of a equals the saved copy. */
static int params_are(const nn_net *a, const float *saved)
{
    int i;
    size_t at = 0;
    for (i = 0; i < a->num_params; i++) {
        if (memcmp(a->params[i].value, saved + at, a->params[i].size * sizeof(float))) return 0;
        at += a->params[i].size;
    }
    return 1;
}

static void test_init_weights_values(void)
{
    float saved[64];
    int i;
    size_t at = 0;
    for (i = 0; i < net->num_params; i++) {
        memcpy(saved + at, net->params[i].value, net->params[i].size * sizeof(float));
        at += net->params[i].size;
    }
    CHECK(at <= 64, "fixture too large");
    CASE("nn_init_weights", "unknown how", is_arg(nn_init_weights(net, (nn_init)7, 0, 1, 0, 0)) && params_are(net, saved));
    CASE("nn_init_weights", "unknown kind", is_arg(nn_init_weights(net, NN_INIT_NORMAL, 0, 1, 0, (nn_layer_kind)99)) &&
         is_arg(nn_init_weights(net, NN_INIT_NORMAL, 0, 1, 0, (nn_layer_kind)-1)) && params_are(net, saved));
    CASE("nn_init_weights", "NaN std", is_arg(nn_init_weights(net, NN_INIT_NORMAL, 0, NAN, 0, 0)) && params_are(net, saved));
    CASE("nn_init_weights", "negative std", is_arg(nn_init_weights(net, NN_INIT_NORMAL, 0, -1, 0, 0)) && params_are(net, saved));
    CASE("nn_init_weights", "infinite mean", is_arg(nn_init_weights(net, NN_INIT_NORMAL, INFINITY, 1, 0, 0)));
    CASE("nn_init_weights", "NaN constant", is_arg(nn_init_weights(net, NN_INIT_CONSTANT, NAN, 0, 0, 0)) && params_are(net, saved));
    CASE("nn_init_weights", "NaN bias", is_arg(nn_init_weights(net, NN_INIT_CONSTANT, 0, 0, NAN, 0)) && params_are(net, saved));
    CASE("nn_init_weights", "std 0 (allowed: a constant)",
         nn_init_weights(net, NN_INIT_NORMAL, 0.5f, 0.0f, 0.0f, 0) == NN_OK && nn_get_param(net, 0)->value[1] == 0.5f);
    CASE("nn_init_weights", "default ignores the other arguments",
         nn_init_weights(net, NN_INIT_DEFAULT, NAN, NAN, NAN, 0) == NN_OK);
    CASE("nn_set_training", "any non-zero is training",
         nn_set_training(net, 5) == NN_OK && net->training == 1 && nn_set_training(net, 0) == NN_OK && !net->training);
}

static void test_kernel_arguments(void)
{
    float c[4] = {1, 2, 3, 4};
    CASE("nn_im2col", "stride 0 (it divided by zero)", is_arg(nn_im2col(x, 1, 4, 4, 3, 3, 0, 1, 1, 1, out, 16)));
    CASE("nn_im2col", "stride -1", is_arg(nn_im2col(x, 1, 4, 4, 3, 3, 1, -1, 1, 1, out, 16)));
    CASE("nn_im2col", "kernel 0", is_arg(nn_im2col(x, 1, 4, 4, 0, 3, 1, 1, 1, 1, out, 16)));
    CASE("nn_im2col", "padding -1", is_arg(nn_im2col(x, 1, 4, 4, 3, 3, 1, 1, -1, 0, out, 16)));
    CASE("nn_im2col", "0 channels", is_arg(nn_im2col(x, 0, 4, 4, 3, 3, 1, 1, 1, 1, out, 16)));
    CASE("nn_im2col", "height -4", is_arg(nn_im2col(x, 1, -4, 4, 3, 3, 1, 1, 1, 1, out, 16)));
    /* 2x2 image, 5x5 kernel: (2 - 5) / 2 + 1 rounded to 1 output and read outside. */
    CASE("nn_im2col", "kernel larger than the padded image", is_arg(nn_im2col(x, 1, 2, 2, 5, 5, 2, 2, 0, 0, out, 1)));
    CASE("nn_im2col", "ld_col below the outputs", is_arg(nn_im2col(x, 1, 4, 4, 3, 3, 1, 1, 1, 1, out, 15)));
    CASE("nn_im2col", "sizes overflowing an int", is_arg(nn_im2col(x, 1, 65536, 65536, 1, 1, 1, 1, 0, 0, out, 16)));
    CASE("nn_im2col", "stride + padding overflowing an int",
         is_arg(nn_im2col(x, 1, 4, 4, 3, 3, INT_MAX, 1, 1000, 1, out, 16)));
    CASE("nn_im2col", "a stride beyond the image (allowed: one output row)",
         nn_im2col(x, 1, 4, 4, 3, 3, 1000, 1, 1, 1, out, 4) == NN_OK && out[0] == 0 &&
         out[4 * 4] == x[0] && out[4 * 4 + 3] == x[3]);
    CASE("nn_col2im", "stride 0 (it divided by zero)", is_arg(nn_col2im(x, 4, 1, 4, 4, 3, 3, 1, 0, 1, 1, out)));
    CASE("nn_col2im", "kernel larger than the padded image", is_arg(nn_col2im(x, 1, 1, 2, 2, 5, 5, 2, 2, 0, 0, out)));
    CASE("nn_gemm", "m < 0", is_arg(nn_gemm(0, 0, -1, 2, 2, 1.0f, x, 2, x, 2, 0.0f, c, 2)));
    CASE("nn_gemm", "k < 0", is_arg(nn_gemm(0, 0, 2, 2, -2, 1.0f, x, 2, x, 2, 1.0f, c, 2)) && c[0] == 1 && c[3] == 4);
    CASE("nn_gemm", "ldc < n, C untouched", is_arg(nn_gemm(0, 0, 2, 2, 2, 1.0f, x, 2, x, 2, 0.0f, c, 1)) && c[1] == 2);
    CASE("nn_gemm", "lda < k", is_arg(nn_gemm(0, 0, 2, 2, 3, 1.0f, x, 2, x, 2, 0.0f, c, 2)));
    CASE("nn_gemm", "lda < m with trans_a", is_arg(nn_gemm(1, 0, 3, 1, 2, 1.0f, x, 2, x, 1, 0.0f, c, 1)));
    CASE("nn_gemm", "ldb < k with trans_b", is_arg(nn_gemm(0, 1, 1, 2, 3, 1.0f, x, 3, x, 2, 0.0f, c, 2)));
    CASE("nn_gemm_reference", "ldb < n", is_arg(nn_gemm_reference(0, 0, 2, 2, 2, 1.0f, x, 2, x, 1, 0.0f, c, 2)));
    CASE("nn_gemm", "m = 0 does nothing (NULL pointers allowed)",
         nn_gemm(0, 0, 0, 2, 2, 1.0f, NULL, 2, NULL, 2, 0.0f, NULL, 2) == NN_OK);
    CASE("nn_gemm", "k = 0 scales C (a and b not read)",
         nn_gemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 2, 2.0f, c, 2) == NN_OK && c[0] == 2 && c[3] == 8);
    CASE("nn_gemm", "alpha = 0 scales C", nn_gemm(0, 0, 2, 2, 2, 0.0f, NULL, 2, NULL, 2, 0.0f, c, 2) == NN_OK && c[2] == 0);
    CASE("nn_set_threads", "negative", is_arg(nn_set_threads(-1)) && nn_get_threads() == 1);
    CASE("nn_set_threads", "above the maximum is the maximum",
         nn_set_threads(1000) == NN_OK && (nn_get_threads() == 64 || nn_get_threads() == 1));
    CASE("nn_rng_shuffle", "n < 0", is_arg(nn_rng_shuffle(&net->rng, items, -1)));
}

static void test_data_arguments(void)
{
    float big_x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, bx[8], nan_mean[4] = {0, NAN, 0, 0};
    float m[2] = {1, 2}, s_nan[2] = {1, NAN}, s_neg[2] = {1, -1}, s_zero[2] = {2, 0};
    int labels[2] = {0, 1}, by[2];
    nn_dataset d = {0}, empty = {0};
    d.n = 2; d.shape = nn_shape3(2, 1, 2); d.num_classes = 2; d.x = big_x; d.y = labels;
    CASE("nn_normalize_channels", "NaN std, nothing changed",
         is_arg(nn_normalize_channels(&d, m, s_nan)) && big_x[0] == 1 && big_x[7] == 8);
    CASE("nn_normalize_channels", "negative std", is_arg(nn_normalize_channels(&d, m, s_neg)) && big_x[0] == 1);
    CASE("nn_normalize_channels", "NaN mean", is_arg(nn_normalize_channels(&d, nan_mean + 1, m)));
    CASE("nn_normalize_channels", "std 0 only shifts",
         nn_normalize_channels(&d, m, s_zero) == NN_OK && big_x[1] == 0.5f && big_x[2] == 1.0f);
    CASE("nn_scale_pixels", "NaN factor", is_arg(nn_scale_pixels(&d, NAN)) && big_x[0] == 1);
    CASE("nn_scale_pixels", "infinite factor", is_arg(nn_scale_pixels(&d, INFINITY)));
    CASE("nn_subtract_image", "NaN in the mean", is_arg(nn_subtract_image(&d, nan_mean)) && big_x[0] == 1);
    CASE("nn_mean_image", "empty set", is_arg(nn_mean_image(&empty, m)));
    CASE("nn_subtract_image", "empty set", is_arg(nn_subtract_image(&empty, m)));
    CASE("nn_channel_stats", "empty set", is_arg(nn_channel_stats(&empty, m, s_zero)));
    CASE("nn_batch_start", "empty set", is_arg(nn_batch_start(&empty, 1)));
    CASE("nn_next_batch", "empty set", is_arg(nn_next_batch(&empty, 1, bx, by)));
    CASE("nn_next_batch", "n = 0", is_arg(nn_next_batch(&d, 0, bx, by)));
    CASE("nn_next_batch", "n < 0", is_arg(nn_next_batch(&d, -3, bx, by)));
    d.cursor = 2;
    CASE("nn_next_batch", "cursor outside the set", is_arg(nn_next_batch(&d, 1, bx, by)));
    d.cursor = -1;
    CASE("nn_next_batch", "negative cursor", is_arg(nn_next_batch(&d, 1, bx, by)));
    CASE("nn_cifar10_load", "train and test the same set", is_arg(nn_cifar10_load(dir, &d, &d)));
    d.cursor = 0;
    CASE("nn_set_augment", "empty set", is_arg(nn_set_augment(&empty, aug_flip)));
    CASE("nn_set_augment", "flip on 1x2 samples (not images)", is_arg(nn_set_augment(&d, aug_flip)));
    CASE("nn_set_augment", "no augmentation of 1x2 samples (allowed)",
         nn_set_augment(&d, aug_none) == NN_OK);
    d.shape = nn_shape3(1, 2, 2);   /* 2x2 images from here on */
    CASE("nn_set_augment", "flip 3 (reserved)", is_arg(nn_set_augment(&d, aug_flip3)) && !d.augment.flip);
    CASE("nn_set_augment", "negative crop_pad", is_arg(nn_set_augment(&d, aug_neg)) && !d.augment.crop_pad);
    CASE("nn_set_augment", "crop_pad >= min(h, w)", is_arg(nn_set_augment(&d, aug_big)));
    CASE("nn_set_augment", "crop_pad 1 on 2x2 images (allowed)",
         nn_set_augment(&d, aug_pad1) == NN_OK && d.augment.crop_pad == 1);
    d.augment.crop_pad = 5;
    CASE("nn_next_batch", "augment crop_pad set by hand too large", is_arg(nn_next_batch(&d, 1, bx, by)));
    d.augment.crop_pad = -1;
    CASE("nn_next_batch", "augment crop_pad set by hand negative", is_arg(nn_next_batch(&d, 1, bx, by)));
    CASE("nn_print_confusion", "0 classes", is_arg(nn_print_confusion(devnull, confusion, 0, NULL)));
}

/* ---- Ownership ------------------------------------------------------------------------ */

/* A set made of the program's own malloc'd arrays: the batcher's order is released by
   nn_dataset_free, which leaves x and y alone (under ASan: no bad free, no leak). */
static void test_user_filled_set_is_released(void)
{
    nn_dataset d = {0};
    float *px = (float *)malloc(6 * sizeof(float)), bx[3];
    int *py = (int *)malloc(3 * sizeof(int)), by[1], i;
    CHECK(px && py, "out of memory");
    if (!px || !py) return;
    for (i = 0; i < 3; i++) { px[2 * i] = (float)i; px[2 * i + 1] = -(float)i; py[i] = i; }
    d.n = 3; d.shape = nn_shape1(2); d.num_classes = 3; d.x = px; d.y = py;
    CHECK(nn_batch_start(&d, 5) == NN_OK && d.order != NULL, "%s", nn_error());
    CHECK(nn_next_batch(&d, 1, bx, by) == NN_OK && bx[0] == (float)by[0], "the batch");
    nn_dataset_free(&d);
    CHECK(d.order == NULL && d.x == NULL && d.n == 0, "not zeroed");
    CHECK(px[4] == 2.0f && py[2] == 2, "the program's arrays were touched");
    free(px);
    free(py);
}

/* A loaded set owns its arrays, and nn_dataset_free frees them (else ASan's leak check
   fails this program). */
static void test_loaded_set_owns_its_arrays(void)
{
    unsigned char record[NN_CIFAR10_RECORD] = {3};
    const char *paths[1];
    char file[96];
    nn_dataset d;
    FILE *f;
    snprintf(file, sizeof file, "%s/one.bin", dir);
    paths[0] = file;
    f = fopen(file, "wb");
    CHECK(f && fwrite(record, 1, sizeof record, f) == sizeof record, "cannot write %s", file);
    if (f) fclose(f);
    CHECK(nn_cifar10_load_files(paths, 1, &d) == NN_OK && d.owns_data == 1 && d.y[0] == 3, "%s", nn_error());
    CHECK(nn_batch_start(&d, 1) == NN_OK, "%s", nn_error());
    nn_dataset_free(&d);
    CHECK(d.owns_data == 0 && d.x == NULL, "not zeroed");
    remove(file);
}

/* nn_add takes only what a model file can hold, so every built net saves to a file
   that loads again and saves to the same bytes. */
static void test_add_descriptors(void)
{
    nn_net *n = nn_net_new(nn_shape1(3)), *back = NULL;
    nn_layer_desc bad = nn_relu();
    unsigned char *a = NULL, *b = NULL;
    size_t a_size = 0, b_size = 0;
    bad.out = -3;
    CASE("nn_add", "a negative size", is_arg(nn_add(n, bad)));
    bad = nn_linear(2);
    bad.no_bias = 2;
    CASE("nn_add", "a flag that is not 0 or 1", is_arg(nn_add(n, bad)));
    CASE("nn_add", "a NaN slope", is_arg(nn_add(n, nn_leaky_relu(NAN))));
    CASE("nn_add", "an infinite factor", is_arg(nn_add(n, nn_scale(INFINITY))));
    CHECK(nn_num_layers(n) == 0, "a refused layer was added");
    CHECK(nn_add(n, nn_leaky_relu(1e9f)) == NN_OK && nn_add(n, nn_scale(-0.0f)) == NN_OK &&
          nn_add(n, nn_linear(2)) == NN_OK && nn_add(n, nn_softplus(1e-30f, 3e38f)) == NN_OK &&
          nn_build(n, 2, 1) == NN_OK, "%s", nn_error());
    CHECK(nn_save_memory(n, &a, &a_size) == NN_OK && (back = nn_load_memory(a, a_size, 2)) != NULL &&
          nn_save_memory(back, &b, &b_size) == NN_OK, "%s", nn_error());
    CHECK(a_size == b_size && !memcmp(a, b, a_size), "extreme options: the reloaded net saves other bytes");
    nn_free_buffer(a);
    nn_free_buffer(b);
    nn_net_free(back);
    nn_net_free(n);
}

int main(void)
{
    nn_set_threads(1);   /* the children are forked: no pool threads may exist */
    if (!setup()) return 1;
    RUN(test_null_core_and_kernels);
    RUN(test_null_networks);
    RUN(test_null_data);
    RUN(test_null_losses);
    RUN(test_null_optimisers);
    RUN(test_null_model_files);
    RUN(test_null_metrics);
    RUN(test_null_onnx_export);
    RUN(test_every_public_function_is_swept);
    RUN(test_backward_order);
    RUN(test_other_calls_out_of_order);
    RUN(test_init_weights_values);
    RUN(test_kernel_arguments);
    RUN(test_data_arguments);
    RUN(test_user_filled_set_is_released);
    RUN(test_loaded_set_owns_its_arrays);
    RUN(test_add_descriptors);
    nn_optim_free(opt);
    nn_net_free(net);
    nn_free_buffer(model);
    fclose(devnull);
    remove(path);
    rmdir(dir);
    return test_end("test_misuse");
}
