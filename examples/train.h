/* train.h - the bookkeeping of the training examples' loops, in one place: the running
   loss and accuracy since the last evaluation, the progress line, the learning-rate
   schedule, the evaluations (a line, a row of the curves CSV), and the report at the
   end (the confusion matrix, the plot of the curves, the model file, the result line).
   The loop itself stays in the example:

       trainer t;
       train_setup s = {.program = "mlp", .out_dir = out, .name = "mlp", .title = "MLP on CIFAR-10",
                        .steps = steps, .batch = batch};
       if (trainer_open(&t, &s, net, opt)) return 1;
       for (int step = 1; step <= steps; step++) {
           nn_next_batch(&train, batch, t.x, t.y);
           if (trainer_step(&t, batch)) return 1;
           if (step % eval_freq == 0 || step == steps) trainer_evaluate(&t, NULL, &test);
       }
       return trainer_finish(&t, &train, &test);

   trainer_finish is trainer_report (the confusion matrix, OUT/mlp.png,
   OUT/mlp.safetensors), trainer_result ("result: test_accuracy=... mean_last5=...
   steps=...") and trainer_close (which frees the net and the optimiser, which the
   trainer owns), then frees the data sets.

   Include after nn.h (it includes common.h and report.h). */
#ifndef NN_EXAMPLES_TRAIN_H
#define NN_EXAMPLES_TRAIN_H
#include "common.h"
#include "report.h"

/* The flags every CIFAR-10 training example has, in a flag table: TRAIN_FLAGS(o). */
typedef struct train_options {
    const char *data_dir, *out_dir;
    float lr, momentum, weight_decay;
    int batch, threads;
    long seed;
} train_options;

#define TRAIN_FLAGS(o)                                                                                \
    {"learning_rate", FLAG_FLOAT, &(o).lr, 1e-12, 1e3, "F", ""},                                      \
    {"batch_size", FLAG_INT, &(o).batch, 1, 50000, "N", ""},                                          \
    {"momentum", FLAG_FLOAT, &(o).momentum, 0, 1, "F", "SGD momentum"},                               \
    {"weight_decay", FLAG_FLOAT, &(o).weight_decay, 0, 10, "F", ""},                                  \
    {"data_dir", FLAG_TEXT, &(o).data_dir, 0, 0, "DIR", "CIFAR-10 binary batches"},                   \
    {"seed", FLAG_LONG, &(o).seed, 0, 2147483647L, "N", ""},                                          \
    {"threads", FLAG_INT, &(o).threads, 0, 256, "N", "(0: all cores)"},                               \
    {"out", FLAG_TEXT, &(o).out_dir, 0, 0, "DIR", "where the CSV, plot and model go"}

typedef struct train_setup {
    const char *program;          /* for messages */
    const char *out_dir, *name;   /* OUT_DIR/NAME.csv, .png and .safetensors */
    const char *title;            /* the plot's title (NULL: no plot of this run) */
    int steps;                    /* the run's steps, for the progress line and the schedule */
    int batch;                    /* the largest batch: t.x and t.y hold that many samples */
    int per_epoch;                /* 1: an evaluation ends an epoch: the curves get an epoch
                                     column and the train figures are the epoch's mean over
                                     its samples (its last batch may be short); 0: the mean
                                     of the steps' losses since the last evaluation */
    int validation;               /* 1: trainer_evaluate gets a validation set too */
    int steps_per_epoch;          /* > 0 (with per_epoch 0): the line shows the epoch and lr */
    const char *schedule;         /* the learning rate: NULL or "none" (the optimiser's),
                                     "step" (x lr_gamma every lr_step_size steps) or "cosine"
                                     (to 0 at steps), from lr */
    float lr, lr_gamma;
    long lr_step_size;
} train_setup;

typedef struct trainer {
    train_setup s;
    nn_net *net;
    nn_optim *opt;
    float *x;                     /* room for s.batch samples of the net's input */
    int *y;
    curves log;
    int step, epoch;
    long samples;                 /* trained on so far */
    double loss, correct, seen;   /* since the last evaluation: loss sum, right, samples */
    int window_steps;
    float test_loss, test_acc;    /* of the last evaluation */
    double t0, last_progress;
    double seconds;               /* from trainer_open to the end of the last evaluation */
} trainer;

/* The optimiser called name (sgd, adam, adamw, adamax; the momentum is SGD's); NULL
   after a message on stderr. */
static inline nn_optim *train_optimizer(const char *program, nn_net *net, const char *name, float lr,
                                        float momentum, float weight_decay)
{
    nn_sgd_desc sgd = {0};
    nn_adam_desc adam = {0};
    nn_optim *opt;
    adam.lr = sgd.lr = lr;
    adam.weight_decay = sgd.weight_decay = weight_decay;
    sgd.momentum = momentum;
    opt = !strcmp(name, "sgd") ? nn_sgd(net, sgd) : !strcmp(name, "adam") ? nn_adam(net, adam)
        : !strcmp(name, "adamw") ? nn_adamw(net, adam) : nn_adamax(net, adam);
    if (!opt) fprintf(stderr, "%s: %s\n", program, nn_error());
    return opt;
}

/* CIFAR-10 from dir; 0, or 1 after a message on stderr. */
static inline int train_load_cifar10(const char *program, const char *dir, nn_dataset *train, nn_dataset *test)
{
    if (nn_cifar10_load(dir, train, test) == NN_OK) return 0;
    fprintf(stderr, "%s: %s\n(run `make data` to get CIFAR-10)\n", program, nn_error());
    return 1;
}

/* Subtracts the training set's mean image from both sets and records it in the net
   (nn_set_preprocess_mean_image); 0, or 1 after a message on stderr. */
static inline int train_center(const char *program, nn_net *net, nn_dataset *train, nn_dataset *test)
{
    float *mean = (float *)malloc(nn_shape_size(train->shape) * sizeof(float));
    int status = !mean || nn_mean_image(train, mean) != NN_OK || nn_set_preprocess_mean_image(net, mean) != NN_OK;
    if (status) fprintf(stderr, "%s: %s\n", program, mean ? nn_error() : "out of memory");
    else {
        nn_subtract_image(train, mean);
        nn_subtract_image(test, mean);
    }
    free(mean);
    return status;
}

/* The schedule's learning rate after step updates. */
static inline float trainer_lr(const trainer *t, long step)
{
    const train_setup *s = &t->s;
    if (s->schedule && !strcmp(s->schedule, "step")) return nn_lr_step_decay(s->lr, step, s->lr_step_size, s->lr_gamma);
    if (s->schedule && !strcmp(s->schedule, "cosine")) return nn_lr_cosine(s->lr, step, s->steps, 0.0f);
    return nn_optim_get_lr(t->opt);
}

/* Opens OUT_DIR/NAME.csv and the batch buffers for a built net and its optimiser,
   which the trainer then owns: trainer_close frees them, also when this fails (with opt
   NULL, after train_optimizer's message). 0, or 1 after a message on stderr. */
static inline int trainer_open(trainer *t, const train_setup *s, nn_net *net, nn_optim *opt)
{
    char path[1024];
    memset(t, 0, sizeof *t);
    t->s = *s;
    t->net = net;
    t->opt = opt;
    if (!opt || ensure_dir(s->out_dir)) return 1;
    snprintf(path, sizeof path, "%s/%s.csv", s->out_dir, s->name);
    if (curves_open_columns(&t->log, path, 16, (s->per_epoch ? CURVES_EPOCH : 0) | (s->validation ? CURVES_VAL : 0)))
        return 1;
    t->x = (float *)malloc((size_t)s->batch * nn_shape_size(nn_input_shape(net)) * sizeof(float));
    t->y = (int *)malloc((size_t)s->batch * sizeof(int));
    if (!t->x || !t->y) { fprintf(stderr, "%s: out of memory\n", s->program); return 1; }
    t->t0 = now_seconds();
    return 0;
}

/* One step on the first n samples of t->x and t->y (after setting the schedule's
   learning rate); the progress line on stderr about twice a second. 0, or 1 after a
   message on stderr when the step failed. */
static inline int trainer_step(trainer *t, int n)
{
    if (t->s.schedule && strcmp(t->s.schedule, "none"))
        nn_optim_set_lr(t->opt, trainer_lr(t, nn_optim_steps(t->opt)));
    float loss = nn_train_step(t->net, t->opt, t->x, t->y, n);
    if (!isfinite(loss)) { fprintf(stderr, "\n%s: %s\n", t->s.program, nn_error()); return 1; }
    t->step++;
    t->samples += n;
    t->loss += t->s.per_epoch ? (double)loss * n : loss;
    t->correct += nn_batch_correct(t->net, t->y, n);
    t->seen += n;
    t->window_steps++;
    double now = now_seconds(), elapsed = now - t->t0;
    if (now - t->last_progress >= 0.5 || t->step == t->s.steps) {
        progress(t->step, t->s.steps, (float)(t->loss / (t->s.per_epoch ? t->seen : t->window_steps)),
                 (float)(t->correct / t->seen), t->samples / elapsed, elapsed);
        t->last_progress = now;
    }
    return 0;
}

/* Evaluates on val (with setup.validation) and test, prints a line, adds a row to the
   curves and starts a new window (and epoch). 0, or 1 after a message on stderr. */
static inline int trainer_evaluate(trainer *t, const nn_dataset *val, const nn_dataset *test)
{
    float train_loss = (float)(t->loss / (t->s.per_epoch ? t->seen : t->window_steps));
    float train_acc = (float)(t->correct / t->seen), val_loss = 0, val_acc = 0;
    if ((val && nn_evaluate(t->net, val, &val_loss, &val_acc, NULL) != NN_OK) ||
        nn_evaluate(t->net, test, &t->test_loss, &t->test_acc, NULL) != NN_OK) {
        fprintf(stderr, "\n%s: %s\n", t->s.program, nn_error());
        return 1;
    }
    t->epoch++;
    fprintf(stderr, "\r%*s\r", 75, "");
    if (t->s.per_epoch) printf("epoch %3d  ", t->epoch);
    else if (t->s.steps_per_epoch > 0)
        printf("epoch %6.2f  step %6d  lr %.4f  ", (double)t->step / t->s.steps_per_epoch, t->step, trainer_lr(t, t->step));
    else printf("step %5d  ", t->step);
    printf("train loss %.4f acc %.4f  ", train_loss, train_acc);
    if (val) printf("val loss %.4f acc %.4f  ", val_loss, val_acc);
    printf("test loss %.4f acc %.4f  (%.1fs)\n", t->test_loss, t->test_acc, now_seconds() - t->t0);
    fflush(stdout);
    curves_add_row(&t->log, t->epoch, t->step, train_loss, train_acc, val_loss, val_acc, t->test_loss, t->test_acc);
    t->loss = t->correct = t->seen = 0;
    t->window_steps = 0;
    t->seconds = now_seconds() - t->t0;
    return 0;
}

/* The end of a run: the confusion matrix on test, the plot of the curves (with a
   title), OUT_DIR/NAME.safetensors. 0, or 1 after a message on stderr. */
static inline int trainer_report(trainer *t, const nn_dataset *test)
{
    int classes = (int)nn_shape_size(nn_output_shape(t->net));
    int *confusion = (int *)malloc((size_t)classes * (size_t)classes * sizeof(int));
    const char **names = (const char **)malloc((size_t)classes * sizeof(char *));
    char path[1024], csv[1024];
    int status = 1;
    if (!confusion || !names) fprintf(stderr, "%s: out of memory\n", t->s.program);
    else if (nn_evaluate(t->net, test, NULL, NULL, confusion) != NN_OK) fprintf(stderr, "%s: %s\n", t->s.program, nn_error());
    else {
        for (int i = 0; i < classes; i++) names[i] = nn_class_name(t->net, i);
        printf("%sconfusion matrix on the %d test images (rows: true class):\n", t->s.per_epoch ? "" : "\n", test->n);
        nn_print_confusion(stdout, confusion, classes, names[0] ? names : NULL);
        snprintf(csv, sizeof csv, "%s/%s.csv", t->s.out_dir, t->s.name);
        snprintf(path, sizeof path, "%s/%s.png", t->s.out_dir, t->s.name);
        if (!t->s.title) printf("curves: %s\n", csv);
        else if (report_plot(path, &t->log, t->s.title) == 0) printf("curves: %s, plot: %s\n", csv, path);
        snprintf(path, sizeof path, "%s/%s.safetensors", t->s.out_dir, t->s.name);
        if (nn_save(t->net, path) != NN_OK) fprintf(stderr, "%s: %s\n", t->s.program, nn_error());
        else printf("model: %s\n", path);
        status = 0;
    }
    free(confusion);
    free(names);
    return status;
}

/* The last line the experiment scripts read. */
static inline void trainer_result(const trainer *t)
{
    printf("result: test_accuracy=%.4f mean_last5=%.4f steps=%d seconds=%.1f\n", t->test_acc,
           curves_mean_last(&t->log, 5), t->step, t->seconds);
}

/* Hands the curves over to *keep (closing the CSV), for a plot of several runs; free
   them with curves_close. */
static inline void trainer_keep_curves(trainer *t, curves *keep)
{
    if (t->log.csv) fclose(t->log.csv);
    t->log.csv = NULL;
    *keep = t->log;
    memset(&t->log, 0, sizeof t->log);
}

/* Frees the curves, the buffers, the net and the optimiser. */
static inline void trainer_close(trainer *t)
{
    curves_close(&t->log);
    free(t->x);
    free(t->y);
    nn_optim_free(t->opt);
    nn_net_free(t->net);
    memset(t, 0, sizeof *t);
}

/* The end of a single run: trainer_report, trainer_result, trainer_close, and frees
   the data sets (train may be NULL). Returns the exit status. */
static inline int trainer_finish(trainer *t, nn_dataset *train, nn_dataset *test)
{
    int status = trainer_report(t, test);
    if (!status) trainer_result(t);
    trainer_close(t);
    nn_dataset_free(train);
    nn_dataset_free(test);
    return status;
}
#endif
