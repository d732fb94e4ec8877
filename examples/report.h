/* The end of a training example (mlp.c, convnet.c): the confusion matrix on the test set,
   the plot of the curves, the saved model and the summary line. Include after nn.h and
   common.h. */
#ifndef NN_EXAMPLES_REPORT_H
#define NN_EXAMPLES_REPORT_H
#include "plot.h"

/* Writes OUT_DIR/NAME.png and OUT_DIR/NAME.safetensors (the curves are in NAME.csv). */
static inline void report_run(const char *program, nn_net *net, const nn_dataset *test, const curves *log,
                              const char *out_dir, const char *name, const char *title,
                              int steps, double seconds)
{
    int confusion[100];
    float test_loss = 0, test_acc = 0;
    char path[1024];
    nn_evaluate(net, test, &test_loss, &test_acc, confusion);
    printf("\nconfusion matrix on the %d test images (rows: true class):\n", test->n);
    nn_print_confusion(stdout, confusion, 10, cifar10_classes);
    snprintf(path, sizeof path, "%s/%s.png", out_dir, name);
    if (plot_training_curves(path, log->step, log->train_loss, log->train_acc, log->n,
                             log->step, log->test_loss, log->test_acc, log->n, title) == 0)
        printf("curves: %s/%s.csv, plot: %s\n", out_dir, name, path);
    snprintf(path, sizeof path, "%s/%s.safetensors", out_dir, name);
    if (nn_save(net, path) != NN_OK) fprintf(stderr, "%s: %s\n", program, nn_error());
    else printf("model: %s\n", path);
    printf("result: test_accuracy=%.4f mean_last5=%.4f steps=%d seconds=%.1f\n",
           test_acc, curves_mean_last(log, 5), steps, seconds);
}

#endif
