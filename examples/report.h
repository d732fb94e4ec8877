/* The plot at the end of a training example: the curves of a run (examples/train.h's
   trainer_report). Include after nn.h and common.h. */
#ifndef NN_EXAMPLES_REPORT_H
#define NN_EXAMPLES_REPORT_H
#include "plot.h"

/* Loss and accuracy of train, validation (if the curves have it) and test against the
   epoch (if the curves have one) or the step, to path as a PNG. */
static inline int report_plot(const char *path, const curves *log, const char *title)
{
    plot_series loss[3] = {{NULL, NULL, 0, 31, 119, 180, "train"},
                           {NULL, NULL, 0, 44, 160, 44, "validation"},
                           {NULL, NULL, 0, 255, 127, 14, "test"}}, accuracy[3];
    const float *ys[3][2] = {{log->train_loss, log->train_acc}, {log->val_loss, log->val_acc},
                             {log->test_loss, log->test_acc}};
    int count = 0;
    for (int k = 0; k < 3; k++) {
        if (k == 1 && !(log->columns & CURVES_VAL)) continue;
        loss[count] = loss[k];
        loss[count].x = log->columns & CURVES_EPOCH ? log->epoch : log->step;
        loss[count].y = ys[k][0];
        loss[count].n = log->n;
        accuracy[count] = loss[count];
        accuracy[count].y = ys[k][1];
        count++;
    }
    return plot_loss_and_accuracy(path, title, log->columns & CURVES_EPOCH ? "epoch" : "step", loss, accuracy, count);
}

#endif
