/* passes/autodiff/ad_impl.h — what the autodiff driver (autodiff.c) shares with the gradient rules
 * (grad_rules.c): the state of one differentiation and the emission helpers. Internal to
 * passes/autodiff/. */
#ifndef QOPT_PASSES_AUTODIFF_AD_IMPL_H
#define QOPT_PASSES_AUTODIFF_AD_IMPL_H

#include "passes/autodiff/autodiff.h"
#include "passes/pass_impl.h"

#define QO_AD_MAXR 8 /* highest rank the rules handle (the runtime's QO_MAX_RANK) */

typedef struct ad {
    qo_ctx *cx;
    qo_graph *g;
    qo_module *m;
    int64_t opset;
    uint32_t nfwd;      /* values [1, nfwd) are the forward graph's; need/grad index them */
    uint32_t nfwd_nodes; /* nodes [1, nfwd_nodes) are the forward graph's */
    bool *need;         /* forward value depends on a parameter through differentiable slots */
    qo_val *grad;       /* accumulated gradient of a forward value (0: none yet) */
    bool learn_bits;
    bool used_private;  /* a private (ai.qopt.train) op was emitted */
    qo_node cur;        /* forward node whose rule runs */
    char curname[160];  /* "<node name or op>/grad" for emitted nodes */
} ad;

/* Reports an error at the current forward node (file, node, op) and returns code. */
qo_status qo_ad_err(ad *a, qo_status code, const char *fmt, ...) QO_PRINTF(3, 4);

/* True if forward value v needs a gradient. */
bool qo_ad_needs(const ad *a, qo_val v);
/* Adds contribution c to the gradient of forward value x (an Add node when x already has one). */
void qo_ad_add_grad(ad *a, qo_val x, qo_val c);

/* A node of op reading ins[0..nin) with nout results, appended to the graph, named after the
 * current forward node. Private ops get domain "ai.qopt.train". */
qo_node qo_ad_node(ad *a, qo_op op, uint32_t nin, const qo_val *ins, uint32_t nout);
/* qo_ad_node with one result; returns it. */
qo_val qo_ad_op(ad *a, qo_op op, uint32_t nin, const qo_val *ins);
qo_val qo_ad_op1(ad *a, qo_op op, qo_val x);
qo_val qo_ad_op2(ad *a, qo_op op, qo_val x, qo_val y);
/* A rank-0 constant of element type e holding v. */
qo_val qo_ad_scalar(ad *a, qo_elem e, double v);
/* A 1-D int64 constant. */
qo_val qo_ad_ints(ad *a, int64_t n, const int64_t *v);
/* A constant of zeros with the type of forward value like. */
qo_val qo_ad_zeros_like(ad *a, qo_val like);

/* Static tensor shape of v: rank and dims (all known); false otherwise. */
bool qo_ad_shape(const ad *a, qo_val v, int32_t *rank, int64_t *dims);
/* Same, reported as an error naming `what` when the shape is not static. */
qo_status qo_ad_need_shape(ad *a, qo_val v, const char *what, int32_t *rank, int64_t *dims);
/* Element type of v (QO_UNDEF if unknown). */
qo_elem qo_ad_elem(const ad *a, qo_val v);
/* Gives v the plain tensor type (no quant, no symbols) elem/rank/dims. */
void qo_ad_set_type(ad *a, qo_val v, qo_elem e, int32_t rank, const int64_t *dims);
/* Gives v the plain tensor type of forward value like (its static shape). */
void qo_ad_type_like(ad *a, qo_val v, qo_val like);

/* ReduceSum(x, axes) with keepdims (opset >= 13 form: axes as an input). */
qo_val qo_ad_reducesum(ad *a, qo_val x, int n, const int64_t *axes, bool keepdims);
/* Reshape(x, dims) with a constant shape. */
qo_val qo_ad_reshape(ad *a, qo_val x, int32_t rank, const int64_t *dims);
/* The gradient gy of a result of shape (yrank, ydims) summed over the axes along which forward
 * value x was broadcast to it, in x's shape (typed). gy itself when the shapes are equal. */
qo_status qo_ad_unbroadcast(ad *a, qo_val gy, int32_t yrank, const int64_t *ydims, qo_val x, qo_val *out);

/* Whether input slot i of forward node n carries a gradient (float data operands; not shapes,
 * axes, labels, running statistics, zero points; bit widths only with learn_bits). */
bool qo_ad_diff_slot(const ad *a, qo_node n, uint32_t i);
/* Applies the gradient rule of forward node n whose results have gradients gy[0..nout) (0 = none):
 * adds the contributions of every input that needs one. QO_ERR_UNSUPPORTED naming the node when
 * its op has no rule. */
qo_status qo_ad_rule(ad *a, qo_node n, const qo_val *gy);
/* The rules of grad_rules_nn.c (normalization layers, Gather, GatherElements, Tile, DepthToSpace,
 * SpaceToDepth, CumSum, nearest Resize): *handled false, and nothing emitted, for other ops. */
qo_status qo_ad_rule_nn(ad *a, qo_node n, const qo_val *gy, bool *handled);

#endif
