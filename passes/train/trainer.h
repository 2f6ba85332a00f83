/* passes/train/trainer.h — training driven from C: one compiled function per training step.
 *
 * A trainer takes a forward model whose graph output 0 is the logits [N, C] (float, or the quantized IR
 * of passes/quant/qgraph.h for quantization-aware training), appends softmax cross-entropy against an
 * int64 "labels" input (and optionally a distillation term against a teacher's logits), differentiates it (passes/autodiff: Brevitas's straight-through estimators for
 * Quant nodes, learned scales), adds the optimizer update, and compiles forward + backward + update into
 * one LLVM-JIT function. Parameters and optimizer state live in host tensors that each step replaces
 * with the step's "<x>_new" outputs. Deterministic: no randomness inside a step; shuffling (in the
 * caller or qo_train_run) draws from a seeded generator.
 * Library rules: nothing printed (progress through callbacks), errors through cx. */
#ifndef QOPT_PASSES_TRAIN_TRAINER_H
#define QOPT_PASSES_TRAIN_TRAINER_H

#include "passes/autodiff/autodiff.h"
#include "runtime/rt.h"

typedef struct qo_trainer qo_trainer;

/* Name suffix of the learned bit-width parameters (qo_train_opts.learn_bits), after the Quant's output. */
#define QO_TRAIN_BITS_SUFFIX ".bit_width_offset"

typedef struct qo_train_opts {
    qo_optim_kind optimizer;  /* QO_OPTIM_SGD or QO_OPTIM_ADAM */
    float lr;                 /* base learning rate */
    float momentum;           /* SGD */
    float weight_decay;
    int threads;              /* 0 = all cores */
    bool learn_scales;        /* Quant scales of weights and activations are parameters (Brevitas's
                                 learned scales); bias scales never are: they follow s_in x s_w every
                                 step, as Brevitas's IntBias */
    bool learn_bits;          /* Brevitas's learned bit width on every weight and activation Quant with a
                                 constant bit width >= 2: the parameter "<Quant output>" QO_TRAIN_BITS_SUFFIX
                                 o starts at bits - 2 and the Quant reads round_ste(|o| + 2) (|.| with
                                 the binary-sign gradient); the trained model gets the rounded value */
    /* Knowledge distillation (Hinton et al.): with a teacher (a model with the same input and logits
       shape, e.g. the float model before quantization; run by the JIT on each batch, never trained),
       the loss is alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) averaged over the batch (torch's
       kl_div(log_softmax(s / T), softmax(t / T), reduction="batchmean") * T^2) + (1 - alpha) * the
       cross-entropy with the labels. NULL: cross-entropy only. The teacher must outlive the trainer. */
    const qo_module *teacher;
    float distill_temp;       /* T > 0 */
    float distill_alpha;      /* in [0, 1] */
} qo_train_opts;

/* Builds and compiles the training step for batches of `batch` samples (a shorter last batch gets its
 * own compiled step on first use). The model is not modified (the trainer works on a copy). */
qo_status qo_trainer_new(qo_ctx *cx, const qo_module *fwd, int64_t batch, const qo_train_opts *o, qo_trainer **out);

/* One step on x (batch of the model's input) and y (int64 labels): forward, backward, update with
 * learning rate lr. *loss gets the batch's mean loss, *correct (may be NULL) the number of argmax hits. */
qo_status qo_trainer_step(qo_trainer *t, const qo_tensor *x, const qo_tensor *y, float lr, float *loss,
                          int64_t *correct);

/* The forward model with the current parameters (a new module; free it). */
qo_status qo_trainer_model(qo_trainer *t, qo_module **out);

/* Accuracy and mean loss of the current parameters on (x, y), in batches of `batch`. */
qo_status qo_trainer_eval(qo_trainer *t, const qo_tensor *x, const qo_tensor *y, int64_t batch, double *acc,
                          double *loss);

/* Number of steps taken, and the names/values of the state tensors (parameters and optimizer state) for
 * checkpoints; qo_trainer_set_state restores one by name (shape and type must match). */
int64_t qo_trainer_steps(const qo_trainer *t);
uint32_t qo_trainer_nstate(const qo_trainer *t);
const char *qo_trainer_state_name(const qo_trainer *t, uint32_t i);
const qo_tensor *qo_trainer_state(const qo_trainer *t, uint32_t i);
qo_status qo_trainer_set_state(qo_trainer *t, const char *name, const qo_tensor *v);
void qo_trainer_set_steps(qo_trainer *t, int64_t steps);

void qo_trainer_free(qo_trainer *t);

#endif
