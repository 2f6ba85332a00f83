/* passes/autodiff/autodiff.h — reverse-mode automatic differentiation as an IR transformation, and
 * the optimizer step that turns a differentiated graph into one training step.
 *
 * qo_autodiff appends the backward graph to the main graph, in the same IR: gradients are ordinary
 * values computed by ordinary nodes, so the interpreter and the LLVM JIT run a training step like
 * any other graph (the JIT fuses the elementwise gradient chains). ONNX ops express a gradient where
 * they can (Mul, Where, ReduceSum + Reshape over broadcast axes, MatMul, Transpose, Gemm with
 * trans attributes, ConvTranspose for a Conv's input gradient, Pad for Slice, Slice for Concat,
 * Expand for reductions and global pooling); the rest are qopt's private ops, domain
 * "ai.qopt.train" (ir/ops.def's last block, reference kernels in runtime/ref/train.c):
 *
 *   ConvGradWeight(dY, X, W) -> dW           a grouped Conv's weight gradient; the Conv's strides, pads,
 *                                            dilations, group, kernel_shape attributes; W gives
 *                                            the shape only
 *   MaxPoolGrad(dY, X) -> dX                 dY to the first maximal element of each window
 *   AveragePoolGrad(dY, X) -> dX             dY / count to each element of the window (the pool's
 *                                            attributes, count_include_pad included)
 *   BatchNormalizationGrad(dY, X, scale)     training-mode BatchNormalization (batch statistics,
 *       -> dX, dScale, dBias                 biased variance, attribute epsilon)
 *   QuantGrad(dY, X, scale, zeropt, bitwidth) Brevitas's gradients of a QONNX Quant (attributes
 *       -> dX, dScale, dBitwidth             signed, narrow, rounding_mode): round is the identity
 *                                            (straight-through), clamp's gradient is zero outside
 *                                            the integer range: dX = dY * [lo <= v <= hi] with
 *                                            v = x/s + z; dScale = dY * ((q - z) - [lo <= v <= hi]
 *                                            * x/s) (LSQ, q = round(clamp(v))), per element;
 *                                            dBitwidth = dY * s * d(clamp bound)/db where clamped;
 *                                            with attribute reduce=1 (what the pass emits) both
 *                                            are summed to the scale's / bit width's shape
 *                                            (float32: float32 arithmetic, fsum.h's order);
 *                                            relu=1 (set by the Relu rule when a Relu's only
 *                                            reader is the Quant, X its output): dX also zero
 *                                            where X <= 0, the Relu's mask folded in
 *   SoftmaxCrossEntropy(logits[N,C], labels[N]) -> loss   mean (attribute reduction "mean"|"sum")
 *                                            of logsumexp(row) - row[label], a rank-0 scalar, as
 *                                            torch.nn.functional.cross_entropy
 *   SoftmaxCrossEntropyGrad(dLoss, logits, labels) -> dLogits
 *
 * Ops with gradients: Add Sub Mul Div Sum Mean Expand (numpy broadcasting: gradients summed over
 * broadcast axes), Neg Abs Exp Log Sqrt Reciprocal Pow (constant exponent) Erf Softplus Relu
 * LeakyRelu Sigmoid HardSigmoid Tanh Clip Where Cast (float to float) Identity Dropout (inference),
 * MatMul (1-D operands as numpy, batch broadcasting) Gemm (transA/transB/alpha/beta, C broadcasting), Reshape
 * Flatten Squeeze Unsqueeze Transpose, Softmax LogSoftmax, ReduceSum ReduceMean, Conv and
 * ConvTranspose (groups, strides, pads, dilations, output_padding; auto_pad SAME_* for Conv and the
 * pools, NOTSET/VALID for ConvTranspose; the weight
 * gradient of a group-1 Conv is itself a Conv, so the JIT runs it on the optimized kernel; grouped
 * ones use ConvGradWeight), MaxPool AveragePool GlobalAveragePool GlobalMaxPool, BatchNormalization
 * (training_mode=1), Concat, Split, Slice (positive steps), Pad (constant), QONNX Quant,
 * SoftmaxCrossEntropy.
 * Round Floor Ceil Sign have zero gradients (as in torch), except a Round/Floor/Ceil whose result
 * feeds only Quant bit-width inputs: that is Brevitas's learned bit width (round_ste of a parameter),
 * differentiated straight through.
 * A node on a path from a parameter to the loss without a rule is an error naming it. Integer
 * operands (shapes, axes, labels) and Quant's zero point never get gradients; Quant's bit width gets
 * one only with learn_bitwidth.
 *
 * Requirements: default-domain opset >= 13, static shapes on the forward values the rules read
 * (run shape-infer first; qo_autodiff runs it itself), float (f32/f64) parameters. */
#ifndef QOPT_PASSES_AUTODIFF_AUTODIFF_H
#define QOPT_PASSES_AUTODIFF_AUTODIFF_H

#include "ir/ir.h"

#define QO_TRAIN_DOMAIN "ai.qopt.train"

typedef struct qo_autodiff_opts {
    const char *loss;           /* name of the scalar (one-element) float loss value; NULL: the main
                                   graph's only output */
    const char *const *params;  /* names of the values to differentiate with respect to (initializers
                                   or graph inputs); NULL: the float initializers from which the loss
                                   is reachable through differentiable operand slots, except
                                   one-element constants not read as a weight, bias or scale (the
                                   1 of 1 - x, a normalizing divisor) */
    uint32_t nparams;
    bool learn_bitwidth;        /* default parameters include Quant bit widths (else never) */
} qo_autodiff_opts;

/* Appends the backward graph of the main graph g's loss to g and adds, for each parameter p, a graph
 * output "<p>_grad" holding dloss/dp (same type as p; zeros when the loss does not depend on p).
 * Existing outputs stay. Runs shape-infer on the module first and at the end (so every new value has
 * a static type when the forward's are static) and imports the "ai.qopt.train" opset (version 1)
 * when a private op is emitted. Errors (no loss, a non-scalar loss, a parameter not found, an op
 * without a gradient rule, an unsupported attribute or shape) name the node and op, and leave g with
 * the nodes emitted so far (the caller discards the module). */
qo_status qo_autodiff(qo_ctx *cx, qo_graph *g, const qo_autodiff_opts *o);

/* Types the results of g's ai.qopt.train nodes that have no static type yet (shape-infer does not
 * know them): SoftmaxCrossEntropy a rank-0 scalar, the gradients the shape of what they differentiate
 * (input 1, W for ConvGradWeight, scale for BatchNormalizationGrad's dScale/dBias), in the element
 * type of input 0, marked QO_VAL_INFO (the ONNX writer keeps them as value_info). Run shape-infer
 * afterwards to propagate. */
void qo_train_ops_infer(qo_graph *g);

typedef enum qo_optim_kind { QO_OPTIM_SGD = 0, QO_OPTIM_ADAM = 1 } qo_optim_kind;

typedef struct qo_optim_opts {
    qo_optim_kind kind;
    float lr;                   /* default of the graph input "lr" (a rank-0 f32: schedules feed it) */
    float weight_decay;         /* L2 term added to the gradient (torch SGD/Adam weight_decay) */
    float momentum;             /* SGD; 0 = plain SGD (no state) */
    float dampening;            /* SGD (torch's first step copies the gradient: equal only for 0) */
    bool nesterov;              /* SGD */
    float beta1, beta2, eps;    /* Adam (torch defaults 0.9, 0.999, 1e-8 when all three are 0) */
    const char *const *params;  /* parameters to update; NULL: every value p with a "<p>_grad" output */
    uint32_t nparams;
    bool bn_stats;              /* training-mode BatchNormalization running statistics become state
                                   (see qo_add_optimizer) */
} qo_optim_opts;

/* Turns g (differentiated by qo_autodiff) into one optimizer step. Each parameter p (an
 * initializer or a graph input with a default) becomes a graph input "p" whose default is its current
 * value; optimizer state becomes inputs with zero defaults ("<p>_momentum" for SGD with momentum,
 * "<p>_adam_m" and "<p>_adam_v" for Adam); "lr" (rank-0 f32) and, for Adam, "adam_step" (rank-0 f32,
 * the 1-based step number t for the bias corrections) are inputs too. Appends outputs "<p>_new" and
 * "<state>_new" with torch's update formulas:
 *   SGD:  g' = g + wd p;  b = momentum b + (1 - dampening) g';  d = nesterov ? g' + momentum b : b
 *         (d = g' without momentum);  p_new = p - lr d
 *   Adam: g' = g + wd p;  m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2;
 *         p_new = p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * With bn_stats, the input_mean/input_var initializers M, V of each training-mode BatchNormalization
 * become inputs too, with outputs "<M>_new" = M momentum + mean (1 - momentum) and "<V>_new" =
 * V momentum + var (1 - momentum) from the batch mean and the unbiased batch variance of X, as
 * torch's BatchNorm updates running_mean/running_var (ONNX's momentum m is torch's 1 - m).
 * Feeding every "<x>_new" output back into input "<x>" is one training step per run. */
qo_status qo_add_optimizer(qo_ctx *cx, qo_graph *g, const qo_optim_opts *o);

#endif
