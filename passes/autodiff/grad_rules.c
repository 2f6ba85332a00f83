/* passes/autodiff/grad_rules.c — the gradient rule of each op (the list and the private ops are in
 * autodiff.h). A rule reads the forward node's operands and results, its results' gradients gy, and
 * adds a contribution to every input that needs one (qo_ad_add_grad). Contributions get the static
 * type of the value they belong to; intermediate values are typed by the final shape-infer. */
#include "passes/autodiff/ad_impl.h"

#include <math.h>
#include <string.h>

#define IN(i) qo_node_input(a->g, n, (i))
#define OUT(i) qo_node_output(a->g, n, (i))
#define NEEDS(i) (IN(i) && qo_ad_needs(a, IN(i)))

bool qo_ad_diff_slot(const ad *a, qo_node n, uint32_t i) {
    const qo_graph *g = a->g;
    switch ((qo_op)g->nodes[n].op) {
    case QO_OP_RESHAPE:
    case QO_OP_FLATTEN:
    case QO_OP_SQUEEZE:
    case QO_OP_UNSQUEEZE:
    case QO_OP_TRANSPOSE:
    case QO_OP_SLICE:
    case QO_OP_PAD:
    case QO_OP_SPLIT:
    case QO_OP_CAST:
    case QO_OP_HARDSIGMOID:
    case QO_OP_EXPAND:
    case QO_OP_SOFTMAX:
    case QO_OP_LOGSOFTMAX:
    case QO_OP_REDUCESUM:
    case QO_OP_REDUCEMEAN:
    case QO_OP_REDUCEMAX:
    case QO_OP_REDUCEMIN:
    case QO_OP_REDUCESUMSQUARE:
    case QO_OP_REDUCEL2:
    case QO_OP_REDUCELOGSUMEXP:
    case QO_OP_MAXPOOL:
    case QO_OP_AVERAGEPOOL:
    case QO_OP_GLOBALAVERAGEPOOL:
    case QO_OP_GLOBALMAXPOOL:
    case QO_OP_CLIP:
    case QO_OP_POW:
    case QO_OP_DROPOUT:
    case QO_OP_IDENTITY:
    case QO_OP_TRAIN_SOFTMAXCE:
    case QO_OP_SHAPE:
    case QO_OP_SIZE:
        return i == 0 && g->nodes[n].op != QO_OP_SHAPE && g->nodes[n].op != QO_OP_SIZE;
    case QO_OP_GATHER:
    case QO_OP_GATHERELEMENTS:
    case QO_OP_TILE:
    case QO_OP_DEPTHTOSPACE:
    case QO_OP_SPACETODEPTH:
    case QO_OP_CUMSUM:
    case QO_OP_RESIZE: return i == 0;
    case QO_OP_BATCHNORMALIZATION:
    case QO_OP_LAYERNORMALIZATION:
    case QO_OP_INSTANCENORMALIZATION: return i <= 2;
    case QO_OP_QONNX_QUANT: return i == 0 || i == 1 || (i == 3 && a->learn_bits);
    case QO_OP_WHERE: return i >= 1;
    default: return true; /* float operands of every other op (the rule decides, or reports) */
    }
}

/* Gradient of an elementwise result y for operand x: c (y's shape) summed over x's broadcast axes. */
static qo_status ew_contrib(ad *a, qo_node n, qo_val x, qo_val c) {
    int32_t yr;
    int64_t yd[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, OUT(0), "the result", &yr, yd));
    qo_val r;
    QO_TRY(qo_ad_unbroadcast(a, c, yr, yd, x, &r));
    if (r == c) qo_ad_type_like(a, r, OUT(0));
    qo_ad_add_grad(a, x, r);
    return QO_OK;
}

static qo_val konst(ad *a, qo_node n, double v) { return qo_ad_scalar(a, qo_ad_elem(a, OUT(0)), v); }

/* Where(cond, gy, 0) */
static qo_val masked(ad *a, qo_node n, qo_val cond, qo_val gy) {
    qo_val ins[3] = {cond, gy, konst(a, n, 0.0)};
    return qo_ad_op(a, QO_OP_WHERE, 3, ins);
}

/* A Relu whose only reader is a Quant (y -> Quant, the activation quantizers of every CNN): gy is
 * that Quant's QuantGrad dX, read by nothing yet, so the Relu's mask Where(y > 0, gy, 0) goes into
 * the QuantGrad as attribute relu = 1 (dX also zero where X <= 0), the same values without a pass
 * over the tensor. True when folded (gy is then the Relu input's gradient as it is). */
static bool fold_relu_mask(ad *a, qo_val y, qo_val gy) {
    qo_graph *g = a->g;
    qo_node q = g->vals[gy].def;
    if (!q || g->nodes[q].op != QO_OP_TRAIN_QUANTGRAD || qo_node_output(g, q, 0) != gy || g->vals[gy].nuses ||
        qo_node_input(g, q, 1) != y || qo_attr_int(g, q, "relu", 0))
        return false;
    qo_node_set_attr_int(g, q, "relu", 1);
    return true;
}

/* A constant float operand's single value; false if it is not a one-element constant. */
static bool const_scalar(ad *a, qo_val v, double *out) {
    float f;
    if (qo_pass_const_floats(a->g, v, &f, 1) != 1) return false;
    *out = f;
    return true;
}

/* ---- elementwise -------------------------------------------------------------------------------- */

static qo_status rule_ew(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    qo_op op = (qo_op)g->nodes[n].op;
    qo_val x = IN(0), y = OUT(0);
    switch (op) {
    case QO_OP_ADD:
        if (NEEDS(0)) QO_TRY(ew_contrib(a, n, IN(0), gy));
        if (NEEDS(1)) QO_TRY(ew_contrib(a, n, IN(1), gy));
        return QO_OK;
    case QO_OP_SUB:
        if (NEEDS(0)) QO_TRY(ew_contrib(a, n, IN(0), gy));
        if (NEEDS(1)) QO_TRY(ew_contrib(a, n, IN(1), qo_ad_op1(a, QO_OP_NEG, gy)));
        return QO_OK;
    case QO_OP_MUL:
        if (NEEDS(0)) QO_TRY(ew_contrib(a, n, IN(0), qo_ad_op2(a, QO_OP_MUL, gy, IN(1))));
        if (NEEDS(1)) QO_TRY(ew_contrib(a, n, IN(1), qo_ad_op2(a, QO_OP_MUL, gy, IN(0))));
        return QO_OK;
    case QO_OP_DIV:
        if (NEEDS(0)) QO_TRY(ew_contrib(a, n, IN(0), qo_ad_op2(a, QO_OP_DIV, gy, IN(1))));
        if (NEEDS(1)) {
            /* d(a/b)/db = -(a/b)/b */
            qo_val t = qo_ad_op2(a, QO_OP_DIV, qo_ad_op2(a, QO_OP_MUL, gy, y), IN(1));
            QO_TRY(ew_contrib(a, n, IN(1), qo_ad_op1(a, QO_OP_NEG, t)));
        }
        return QO_OK;
    case QO_OP_NEG: return ew_contrib(a, n, x, qo_ad_op1(a, QO_OP_NEG, gy));
    case QO_OP_IDENTITY:
    case QO_OP_DROPOUT:
        if (op == QO_OP_DROPOUT && (qo_attr_int(g, n, "training_mode", 0) || (g->nodes[n].nin > 2 && IN(2))))
            return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Dropout in training mode has no gradient rule");
        return ew_contrib(a, n, x, gy);
    case QO_OP_RELU:
        if (fold_relu_mask(a, y, gy)) return ew_contrib(a, n, x, gy);
        return ew_contrib(a, n, x, masked(a, n, qo_ad_op2(a, QO_OP_GREATER, y, konst(a, n, 0)), gy));
    case QO_OP_LEAKYRELU: {
        double al = qo_attr_float(g, n, "alpha", 0.01f);
        qo_val ins[3] = {qo_ad_op2(a, QO_OP_GREATER, x, konst(a, n, 0)), gy,
                         qo_ad_op2(a, QO_OP_MUL, gy, konst(a, n, al))};
        return ew_contrib(a, n, x, qo_ad_op(a, QO_OP_WHERE, 3, ins));
    }
    case QO_OP_SIGMOID: {
        qo_val d = qo_ad_op2(a, QO_OP_MUL, y, qo_ad_op2(a, QO_OP_SUB, konst(a, n, 1), y));
        return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, d));
    }
    case QO_OP_TANH: {
        qo_val d = qo_ad_op2(a, QO_OP_SUB, konst(a, n, 1), qo_ad_op2(a, QO_OP_MUL, y, y));
        return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, d));
    }
    case QO_OP_EXP: return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, y));
    case QO_OP_LOG: return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_DIV, gy, x));
    case QO_OP_SQRT:
        return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_DIV, qo_ad_op2(a, QO_OP_MUL, gy, konst(a, n, 0.5)), y));
    case QO_OP_ABS: return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, qo_ad_op1(a, QO_OP_SIGN, x)));
    case QO_OP_POW: {
        double p;
        if (!const_scalar(a, IN(1), &p))
            return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Pow: only a constant scalar exponent is differentiated");
        qo_val d = p == 2.0 ? qo_ad_op2(a, QO_OP_MUL, x, konst(a, n, 2.0))
                            : qo_ad_op2(a, QO_OP_MUL, qo_ad_op2(a, QO_OP_POW, x, konst(a, n, p - 1)), konst(a, n, p));
        return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, d));
    }
    case QO_OP_CLIP: {
        /* torch.clamp: gradient where min <= x <= max */
        qo_val cond = 0;
        if (g->nodes[n].nin > 1 && IN(1)) cond = qo_ad_op2(a, QO_OP_GREATEROREQUAL, x, IN(1));
        if (g->nodes[n].nin > 2 && IN(2)) {
            qo_val c2 = qo_ad_op2(a, QO_OP_LESSOREQUAL, x, IN(2));
            cond = cond ? qo_ad_op2(a, QO_OP_AND, cond, c2) : c2;
        }
        return ew_contrib(a, n, x, cond ? masked(a, n, cond, gy) : gy);
    }
    case QO_OP_SUM:
    case QO_OP_MEAN: {
        uint32_t k = g->nodes[n].nin;
        qo_val c = op == QO_OP_MEAN ? qo_ad_op2(a, QO_OP_DIV, gy, konst(a, n, (double)k)) : gy;
        for (uint32_t i = 0; i < k; i++)
            if (NEEDS(i)) QO_TRY(ew_contrib(a, n, IN(i), c));
        return QO_OK;
    }
    case QO_OP_EXPAND: return ew_contrib(a, n, x, gy);
    case QO_OP_CAST: {
        qo_elem e = qo_ad_elem(a, x);
        if (e != QO_F32 && e != QO_F64) return QO_OK;
        qo_val c = qo_ad_op1(a, QO_OP_CAST, gy);
        qo_node_set_attr_int(g, g->vals[c].def, "to", e);
        qo_ad_type_like(a, c, x);
        qo_ad_add_grad(a, x, c);
        return QO_OK;
    }
    case QO_OP_RECIPROCAL:
        return ew_contrib(a, n, x, qo_ad_op1(a, QO_OP_NEG, qo_ad_op2(a, QO_OP_MUL, gy, qo_ad_op2(a, QO_OP_MUL, y, y))));
    case QO_OP_SOFTPLUS: return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, qo_ad_op1(a, QO_OP_SIGMOID, x)));
    case QO_OP_ERF: {
        /* 2/sqrt(pi) exp(-x^2) */
        qo_val e = qo_ad_op1(a, QO_OP_EXP, qo_ad_op1(a, QO_OP_NEG, qo_ad_op2(a, QO_OP_MUL, x, x)));
        qo_val d = qo_ad_op2(a, QO_OP_MUL, e, konst(a, n, 1.1283791670955125739));
        return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, d));
    }
    case QO_OP_HARDSIGMOID: {
        /* alpha where 0 < alpha x + beta < 1 (torch: strict) */
        double al = qo_attr_float(g, n, "alpha", 0.2f);
        qo_val cond = qo_ad_op2(a, QO_OP_AND, qo_ad_op2(a, QO_OP_GREATER, y, konst(a, n, 0)),
                                qo_ad_op2(a, QO_OP_LESS, y, konst(a, n, 1)));
        return ew_contrib(a, n, x, masked(a, n, cond, qo_ad_op2(a, QO_OP_MUL, gy, konst(a, n, al))));
    }
    case QO_OP_ROUND:
    case QO_OP_FLOOR:
    case QO_OP_CEIL:
    case QO_OP_SIGN: {
        /* zero almost everywhere (torch), except a rounding that feeds only Quant bit widths: Brevitas's
           learned bit width is round_ste(parameter), a straight-through estimator */
        bool ste = op != QO_OP_SIGN && g->vals[y].nuses > 0 && !qo_pass_val_is_graph_output(g, y);
        QO_FOR_EACH_USE(g, y, u) {
            qo_node un = g->uses[u].owner;
            if (un >= a->nfwd_nodes) continue; /* the backward graph's QuantGrad reads it too */
            ste &= un && g->nodes[un].op == QO_OP_QONNX_QUANT && u == qo_node_use(g, un, 3);
        }
        return ste ? ew_contrib(a, n, x, gy) : QO_OK;
    }
    case QO_OP_WHERE: {
        qo_val z = konst(a, n, 0);
        if (NEEDS(1)) {
            qo_val ins[3] = {IN(0), gy, z};
            QO_TRY(ew_contrib(a, n, IN(1), qo_ad_op(a, QO_OP_WHERE, 3, ins)));
        }
        if (NEEDS(2)) {
            qo_val ins[3] = {IN(0), z, gy};
            QO_TRY(ew_contrib(a, n, IN(2), qo_ad_op(a, QO_OP_WHERE, 3, ins)));
        }
        return QO_OK;
    }
    case QO_OP_MAX:
    case QO_OP_MIN: {
        /* dY to the inputs equal to Y, split evenly among ties (torch.maximum/minimum: half each) */
        uint32_t k = g->nodes[n].nin;
        if (k == 1) return ew_contrib(a, n, x, gy);
        qo_val one = konst(a, n, 1), zero = konst(a, n, 0), cnt = 0, eq[64];
        if (k > 64) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "%s of more than 64 inputs", qo_node_op_type(g, n));
        for (uint32_t i = 0; i < k; i++) {
            eq[i] = qo_ad_op2(a, QO_OP_EQUAL, IN(i), y);
            qo_val ins[3] = {eq[i], one, zero};
            qo_val c = qo_ad_op(a, QO_OP_WHERE, 3, ins);
            cnt = cnt ? qo_ad_op2(a, QO_OP_ADD, cnt, c) : c;
        }
        qo_val share = qo_ad_op2(a, QO_OP_DIV, gy, cnt);
        for (uint32_t i = 0; i < k; i++)
            if (NEEDS(i)) QO_TRY(ew_contrib(a, n, IN(i), masked(a, n, eq[i], share)));
        return QO_OK;
    }
    case QO_OP_PRELU: {
        /* torch: slope * dY where x <= 0; dSlope = x dY there */
        qo_val pos = qo_ad_op2(a, QO_OP_GREATER, x, konst(a, n, 0)), zero = konst(a, n, 0);
        if (NEEDS(0)) {
            qo_val ins[3] = {pos, gy, qo_ad_op2(a, QO_OP_MUL, gy, IN(1))};
            QO_TRY(ew_contrib(a, n, x, qo_ad_op(a, QO_OP_WHERE, 3, ins)));
        }
        if (NEEDS(1)) {
            qo_val ins[3] = {pos, zero, qo_ad_op2(a, QO_OP_MUL, gy, x)};
            QO_TRY(ew_contrib(a, n, IN(1), qo_ad_op(a, QO_OP_WHERE, 3, ins)));
        }
        return QO_OK;
    }
    case QO_OP_ELU:
    case QO_OP_CELU:
    case QO_OP_SELU: {
        /* x > 0: dY (Selu: gamma dY); else dY times the derivative written with y:
           Elu y + alpha, Celu y / alpha + 1, Selu y + gamma alpha */
        double al = qo_attr_float(g, n, "alpha", op == QO_OP_SELU ? 1.67326319217681884765625f : 1.0f);
        double ga = op == QO_OP_SELU ? qo_attr_float(g, n, "gamma", 1.05070102214813232421875f) : 1.0;
        qo_val neg = op == QO_OP_ELU    ? qo_ad_op2(a, QO_OP_ADD, y, konst(a, n, al))
                     : op == QO_OP_CELU ? qo_ad_op2(a, QO_OP_ADD, qo_ad_op2(a, QO_OP_DIV, y, konst(a, n, al)), konst(a, n, 1))
                                        : qo_ad_op2(a, QO_OP_ADD, y, konst(a, n, ga * al));
        qo_val ins[3] = {qo_ad_op2(a, QO_OP_GREATER, x, konst(a, n, 0)),
                         op == QO_OP_SELU ? qo_ad_op2(a, QO_OP_MUL, gy, konst(a, n, ga)) : gy,
                         qo_ad_op2(a, QO_OP_MUL, gy, neg)};
        return ew_contrib(a, n, x, qo_ad_op(a, QO_OP_WHERE, 3, ins));
    }
    case QO_OP_THRESHOLDEDRELU:
        return ew_contrib(a, n, x,
                          masked(a, n, qo_ad_op2(a, QO_OP_GREATER, x, konst(a, n, qo_attr_float(g, n, "alpha", 1.0f))), gy));
    case QO_OP_HARDSWISH: {
        /* torch: 0 below -3, dY (x / 3 + 1/2) up to 3, dY above */
        qo_val mid = qo_ad_op2(a, QO_OP_MUL, gy,
                               qo_ad_op2(a, QO_OP_ADD, qo_ad_op2(a, QO_OP_DIV, x, konst(a, n, 3)), konst(a, n, 0.5)));
        qo_val in_hi[3] = {qo_ad_op2(a, QO_OP_LESSOREQUAL, x, konst(a, n, 3)), mid, gy};
        qo_val t = qo_ad_op(a, QO_OP_WHERE, 3, in_hi);
        qo_val in_lo[3] = {qo_ad_op2(a, QO_OP_LESS, x, konst(a, n, -3)), konst(a, n, 0), t};
        return ew_contrib(a, n, x, qo_ad_op(a, QO_OP_WHERE, 3, in_lo));
    }
    case QO_OP_SOFTSIGN: {
        qo_val d = qo_ad_op2(a, QO_OP_ADD, konst(a, n, 1), qo_ad_op1(a, QO_OP_ABS, x));
        return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_DIV, gy, qo_ad_op2(a, QO_OP_MUL, d, d)));
    }
    case QO_OP_MISH: {
        /* tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), sp = softplus(x) */
        qo_val t = qo_ad_op1(a, QO_OP_TANH, qo_ad_op1(a, QO_OP_SOFTPLUS, x));
        qo_val u = qo_ad_op2(a, QO_OP_SUB, konst(a, n, 1), qo_ad_op2(a, QO_OP_MUL, t, t));
        qo_val d = qo_ad_op2(a, QO_OP_ADD, t, qo_ad_op2(a, QO_OP_MUL, qo_ad_op2(a, QO_OP_MUL, x, qo_ad_op1(a, QO_OP_SIGMOID, x)), u));
        return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, d));
    }
    case QO_OP_GELU: {
        const qo_attr *ap = qo_node_attr(g, n, "approximate");
        bool tanh_form = ap && ap->kind == QO_ATTR_STRING && ap->u.s.n == 4 && memcmp(ap->u.s.p, "tanh", 4) == 0;
        qo_val d;
        if (!tanh_form) {
            /* Phi(x) + x phi(x): (1 + erf(x / sqrt 2)) / 2 + x exp(-x^2 / 2) / sqrt(2 pi) */
            qo_val e = qo_ad_op1(a, QO_OP_ERF, qo_ad_op2(a, QO_OP_DIV, x, konst(a, n, 1.4142135623730950488)));
            qo_val cdf = qo_ad_op2(a, QO_OP_MUL, qo_ad_op2(a, QO_OP_ADD, e, konst(a, n, 1)), konst(a, n, 0.5));
            qo_val x2 = qo_ad_op2(a, QO_OP_MUL, x, x);
            qo_val pdf = qo_ad_op2(a, QO_OP_MUL, qo_ad_op1(a, QO_OP_EXP, qo_ad_op2(a, QO_OP_MUL, x2, konst(a, n, -0.5))),
                                   konst(a, n, 0.39894228040143267794));
            d = qo_ad_op2(a, QO_OP_ADD, cdf, qo_ad_op2(a, QO_OP_MUL, x, pdf));
        } else {
            /* u = k (x + c x^3), t = tanh u: (1 + t) / 2 + x (1 - t^2) k (1 + 3 c x^2) / 2 */
            const double k = 0.79788456080286535588, c = 0.044715;
            qo_val x2 = qo_ad_op2(a, QO_OP_MUL, x, x);
            qo_val inner = qo_ad_op2(a, QO_OP_ADD, konst(a, n, 1), qo_ad_op2(a, QO_OP_MUL, x2, konst(a, n, c)));
            qo_val t = qo_ad_op1(a, QO_OP_TANH, qo_ad_op2(a, QO_OP_MUL, qo_ad_op2(a, QO_OP_MUL, x, inner), konst(a, n, k)));
            qo_val du = qo_ad_op2(a, QO_OP_ADD, konst(a, n, k), qo_ad_op2(a, QO_OP_MUL, x2, konst(a, n, 3 * c * k)));
            qo_val sech2 = qo_ad_op2(a, QO_OP_SUB, konst(a, n, 1), qo_ad_op2(a, QO_OP_MUL, t, t));
            qo_val a1 = qo_ad_op2(a, QO_OP_ADD, konst(a, n, 1), t);
            qo_val a2 = qo_ad_op2(a, QO_OP_MUL, qo_ad_op2(a, QO_OP_MUL, x, sech2), du);
            d = qo_ad_op2(a, QO_OP_MUL, qo_ad_op2(a, QO_OP_ADD, a1, a2), konst(a, n, 0.5));
        }
        return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, d));
    }
    case QO_OP_SIN: return ew_contrib(a, n, x, qo_ad_op2(a, QO_OP_MUL, gy, qo_ad_op1(a, QO_OP_COS, x)));
    case QO_OP_COS:
        return ew_contrib(a, n, x, qo_ad_op1(a, QO_OP_NEG, qo_ad_op2(a, QO_OP_MUL, gy, qo_ad_op1(a, QO_OP_SIN, x))));
    default: return qo_ad_err(a, QO_ERR_UNSUPPORTED, "no gradient rule for %s", qo_node_op_type(g, n));
    }
}

/* ---- linear algebra ---------------------------------------------------------------------------- */

static qo_val transpose_last2(ad *a, qo_val x, int32_t r) {
    int64_t perm[QO_AD_MAXR];
    for (int32_t i = 0; i < r; i++) perm[i] = i;
    perm[r - 1] = r - 2, perm[r - 2] = r - 1;
    qo_val t = qo_ad_op1(a, QO_OP_TRANSPOSE, x);
    qo_node_set_attr_ints(a->g, a->g->vals[t].def, "perm", perm, (uint32_t)r);
    return t;
}

/* Reshape of x to (r, d), typed (elem of like). */
static qo_val reshape_typed(ad *a, qo_val x, int32_t r, const int64_t *d, qo_val like) {
    qo_val v = qo_ad_reshape(a, x, r, d);
    qo_ad_set_type(a, v, qo_ad_elem(a, like), r, d);
    return v;
}

/* MatMul: dA = dY B^T, dB = A^T dY (last two axes), summed over broadcast batch axes. A 1-D A is
 * [1, K] and a 1-D B is [K, 1] (numpy), with dY reshaped to match and the results reshaped back. */
static qo_val gemm(ad *a, qo_val x, qo_val y, bool ta, bool tb, double alpha);

static qo_status rule_matmul(ad *a, qo_node n, qo_val gy) {
    int32_t ar, br, yr;
    int64_t ad_[QO_AD_MAXR], bd[QO_AD_MAXR], yd[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "MatMul operand A", &ar, ad_));
    QO_TRY(qo_ad_need_shape(a, IN(1), "MatMul operand B", &br, bd));
    QO_TRY(qo_ad_need_shape(a, OUT(0), "the MatMul result", &yr, yd));
    if (ar < 1 || br < 1) return qo_ad_err(a, QO_ERR_INVALID_MODEL, "MatMul with a scalar operand");
    qo_val A = IN(0), B = IN(1);
    if (ar == 2 && br == 2) { /* dA = dY B^T, dB = A^T dY as Gemm with transposed operands (BLAS reads
                                 them transposed; no Transpose materialized) */
        if (NEEDS(0)) {
            qo_val c = gemm(a, gy, B, false, true, 1.0);
            qo_ad_type_like(a, c, A);
            qo_ad_add_grad(a, A, c);
        }
        if (NEEDS(1)) {
            qo_val c = gemm(a, A, gy, true, false, 1.0);
            qo_ad_type_like(a, c, B);
            qo_ad_add_grad(a, B, c);
        }
        return QO_OK;
    }
    if (ar == 1 || br == 1) {
        /* y's batch dims, then M (1 for a 1-D A) and N (1 for a 1-D B) */
        int32_t nb = yr - (ar >= 2) - (br >= 2);
        int64_t y2[QO_AD_MAXR];
        memcpy(y2, yd, sizeof(int64_t) * (size_t)(nb > 0 ? nb : 0));
        y2[nb] = ar == 1 ? 1 : ad_[ar - 2];
        y2[nb + 1] = br == 1 ? 1 : bd[br - 1];
        if (ar == 1) {
            int64_t k = ad_[0];
            ad_[0] = 1, ad_[1] = k, ar = 2;
            A = reshape_typed(a, A, 2, ad_, IN(0));
        }
        if (br == 1) {
            bd[1] = 1, br = 2;
            B = reshape_typed(a, B, 2, bd, IN(1));
        }
        yr = nb + 2;
        memcpy(yd, y2, sizeof(int64_t) * (size_t)yr);
        gy = reshape_typed(a, gy, yr, yd, OUT(0));
    }
    qo_val r;
    int64_t cd[QO_AD_MAXR];
    if (NEEDS(0)) {
        /* c has y's batch dims and A's last two */
        qo_val c = qo_ad_op2(a, QO_OP_MATMUL, gy, transpose_last2(a, B, br));
        memcpy(cd, yd, sizeof(int64_t) * (size_t)yr);
        cd[yr - 2] = ad_[ar - 2], cd[yr - 1] = ad_[ar - 1];
        QO_TRY(qo_ad_unbroadcast(a, c, yr, cd, A, &r));
        if (r == c) qo_ad_type_like(a, r, A);
        if (A != IN(0)) r = reshape_typed(a, r, 1, ad_ + 1, IN(0));
        qo_ad_add_grad(a, IN(0), r);
    }
    if (NEEDS(1)) {
        qo_val c = qo_ad_op2(a, QO_OP_MATMUL, transpose_last2(a, A, ar), gy);
        /* c has y's batch dims and B's last two */
        memcpy(cd, yd, sizeof(int64_t) * (size_t)yr);
        cd[yr - 2] = bd[br - 2], cd[yr - 1] = bd[br - 1];
        QO_TRY(qo_ad_unbroadcast(a, c, yr, cd, B, &r));
        if (r == c) qo_ad_type_like(a, r, B);
        if (B != IN(1)) r = reshape_typed(a, r, 1, bd, IN(1));
        qo_ad_add_grad(a, IN(1), r);
    }
    return QO_OK;
}

static qo_val gemm(ad *a, qo_val x, qo_val y, bool ta, bool tb, double alpha) {
    qo_val r = qo_ad_op2(a, QO_OP_GEMM, x, y);
    qo_node nn = a->g->vals[r].def;
    if (ta) qo_node_set_attr_int(a->g, nn, "transA", 1);
    if (tb) qo_node_set_attr_int(a->g, nn, "transB", 1);
    if (alpha != 1.0) qo_node_set_attr_float(a->g, nn, "alpha", (float)alpha);
    return r;
}

static qo_status rule_gemm(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    bool ta = qo_attr_int(g, n, "transA", 0) != 0, tb = qo_attr_int(g, n, "transB", 0) != 0;
    double alpha = qo_attr_float(g, n, "alpha", 1.0f), beta = qo_attr_float(g, n, "beta", 1.0f);
    qo_val A = IN(0), B = IN(1);
    if (NEEDS(0)) {
        /* dA' = alpha dY B'^T, A' = op(A) */
        qo_val c = !ta ? gemm(a, gy, B, false, !tb, alpha) : gemm(a, B, gy, tb, true, alpha);
        qo_ad_type_like(a, c, A);
        qo_ad_add_grad(a, A, c);
    }
    if (NEEDS(1)) {
        /* dB' = alpha A'^T dY */
        qo_val c = !tb ? gemm(a, A, gy, !ta, false, alpha) : gemm(a, gy, A, true, ta, alpha);
        qo_ad_type_like(a, c, B);
        qo_ad_add_grad(a, B, c);
    }
    if (g->nodes[n].nin > 2 && NEEDS(2)) {
        qo_val c = beta == 1.0 ? gy : qo_ad_op2(a, QO_OP_MUL, gy, konst(a, n, beta));
        QO_TRY(ew_contrib(a, n, IN(2), c));
    }
    return QO_OK;
}

/* ---- shape ops --------------------------------------------------------------------------------- */

static qo_status rule_reshape_like(ad *a, qo_node n, qo_val gy) {
    int32_t r;
    int64_t d[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the input", &r, d));
    qo_val c = qo_ad_reshape(a, gy, r, d);
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

static qo_status rule_transpose(ad *a, qo_node n, qo_val gy) {
    int32_t r;
    int64_t d[QO_AD_MAXR], perm[QO_AD_MAXR], inv[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the input", &r, d));
    const qo_attr *pa = qo_node_attr(a->g, n, "perm");
    for (int32_t i = 0; i < r; i++) perm[i] = r - 1 - i;
    if (pa && pa->kind == QO_ATTR_INTS && (int32_t)pa->n == r)
        for (int32_t i = 0; i < r; i++) perm[i] = pa->u.is[i] < 0 ? pa->u.is[i] + r : pa->u.is[i];
    for (int32_t i = 0; i < r; i++) inv[perm[i]] = i;
    qo_val c = qo_ad_op1(a, QO_OP_TRANSPOSE, gy);
    qo_node_set_attr_ints(a->g, a->g->vals[c].def, "perm", inv, (uint32_t)r);
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

/* Concat: each input's slice of dY along the axis. */
static qo_status rule_concat(ad *a, qo_node n, qo_val gy) {
    int32_t r;
    int64_t d[QO_AD_MAXR];
    int64_t axis = qo_attr_int(a->g, n, "axis", 0), off = 0;
    for (uint32_t i = 0; i < a->g->nodes[n].nin; i++) {
        QO_TRY(qo_ad_need_shape(a, IN(i), "a Concat input", &r, d));
        int64_t ax = axis < 0 ? axis + r : axis;
        if (ax < 0 || ax >= r) return qo_ad_err(a, QO_ERR_INVALID_MODEL, "Concat axis %lld out of range", (long long)axis);
        if (NEEDS(i)) {
            int64_t st = off, en = off + d[ax];
            qo_val ins[4] = {gy, qo_ad_ints(a, 1, &st), qo_ad_ints(a, 1, &en), qo_ad_ints(a, 1, &ax)};
            qo_val c = qo_ad_op(a, QO_OP_SLICE, 4, ins);
            qo_ad_type_like(a, c, IN(i));
            qo_ad_add_grad(a, IN(i), c);
        }
        off += d[ax];
    }
    return QO_OK;
}

/* Slice with unit steps: dY padded with zeros back to X's shape. */
static qo_status rule_slice(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    int32_t r;
    int64_t d[QO_AD_MAXR], st[QO_AD_MAXR], en[QO_AD_MAXR], ax[QO_AD_MAXR], sp[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the Slice input", &r, d));
    uint32_t nin = g->nodes[n].nin;
    int64_t k = qo_pass_const_ints(g, IN(1), st, QO_AD_MAXR), ke = qo_pass_const_ints(g, IN(2), en, QO_AD_MAXR);
    if (k < 0 || ke != k) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Slice: starts/ends must be constants");
    if (nin > 3 && IN(3)) {
        if (qo_pass_const_ints(g, IN(3), ax, QO_AD_MAXR) != k)
            return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Slice: axes must be a constant");
    } else
        for (int64_t i = 0; i < k; i++) ax[i] = i;
    if (nin > 4 && IN(4)) {
        if (qo_pass_const_ints(g, IN(4), sp, QO_AD_MAXR) != k)
            return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Slice: steps must be a constant");
    } else
        for (int64_t i = 0; i < k; i++) sp[i] = 1;
    if (r + 1 > QO_AD_MAXR) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Slice: rank %d too high", (int)r);
    /* per axis: positions s, s + k, ... (n of them) of d; dY's extent along it is n */
    int64_t pads[2 * QO_AD_MAXR] = {0}, cd[QO_AD_MAXR];
    memcpy(cd, d, sizeof(int64_t) * (size_t)r);
    int64_t pos[QO_AD_MAXR], cnt[QO_AD_MAXR], stp[QO_AD_MAXR];
    for (int32_t x = 0; x < r; x++) pos[x] = 0, cnt[x] = d[x], stp[x] = 1;
    for (int64_t i = 0; i < k; i++) {
        int64_t x = ax[i] < 0 ? ax[i] + r : ax[i];
        if (x < 0 || x >= r) return qo_ad_err(a, QO_ERR_INVALID_MODEL, "Slice: axis %lld out of range", (long long)ax[i]);
        if (sp[i] < 1) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Slice: only positive steps are differentiated");
        int64_t s0 = st[i] < 0 ? st[i] + d[x] : st[i], e = en[i] < 0 ? en[i] + d[x] : en[i];
        s0 = s0 < 0 ? 0 : s0 > d[x] ? d[x] : s0;
        e = e < 0 ? 0 : e > d[x] ? d[x] : e;
        pos[x] = s0, stp[x] = sp[i], cnt[x] = e > s0 ? (e - s0 + sp[i] - 1) / sp[i] : 0;
    }
    qo_val t = gy;
    for (int32_t x = 0; x < r; x++) {
        cd[x] = cnt[x];
        if (cnt[x] == 0) { /* empty slice: zero gradient */
            qo_ad_add_grad(a, IN(0), qo_ad_zeros_like(a, IN(0)));
            return QO_OK;
        }
    }
    for (int32_t x = 0; x < r; x++) {
        if (stp[x] == 1) {
            pads[x] = pos[x], pads[r + x] = d[x] - pos[x] - cnt[x];
            continue;
        }
        /* interleave k - 1 zeros after each element: [.., n, 1, ..] padded to [.., n, k, ..], flattened
         * to n k, cut to what fits after s, then placed at s */
        int64_t e1[QO_AD_MAXR + 1], p1[2 * (QO_AD_MAXR + 1)] = {0};
        for (int32_t i = 0, o = 0; i < r; i++) {
            e1[o++] = cd[i];
            if (i == x) e1[o++] = 1;
        }
        p1[(r + 1) + x + 1] = stp[x] - 1;
        t = qo_ad_reshape(a, t, r + 1, e1);
        qo_val ins[2] = {t, qo_ad_ints(a, 2 * (r + 1), p1)};
        t = qo_ad_op(a, QO_OP_PAD, 2, ins);
        cd[x] = cnt[x] * stp[x];
        t = qo_ad_reshape(a, t, r, cd);
        int64_t len = cd[x] < d[x] - pos[x] ? cd[x] : d[x] - pos[x], zero = 0, axis = x;
        if (len < cd[x]) {
            qo_val sl[4] = {t, qo_ad_ints(a, 1, &zero), qo_ad_ints(a, 1, &len), qo_ad_ints(a, 1, &axis)};
            t = qo_ad_op(a, QO_OP_SLICE, 4, sl);
        }
        int64_t pp[2 * QO_AD_MAXR] = {0};
        pp[x] = pos[x], pp[r + x] = d[x] - pos[x] - len;
        qo_val pi[2] = {t, qo_ad_ints(a, 2 * r, pp)};
        t = qo_ad_op(a, QO_OP_PAD, 2, pi);
        cd[x] = d[x];
    }
    qo_val ins[2] = {t, qo_ad_ints(a, 2 * r, pads)};
    qo_val c = qo_ad_op(a, QO_OP_PAD, 2, ins);
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

/* ---- reductions and softmax -------------------------------------------------------------------- */

/* The geometry of a reduction node: X's shape (r, d), kd = d with the reduced axes set to 1, the
 * count of reduced elements, and dY with the reduced axes kept (*gk: gy itself or a Reshape). Sets
 * *noop for an empty axes list with noop_with_empty_axes (Y is X). */
static qo_status reduce_geom(ad *a, qo_node n, qo_val gy, int32_t *r, int64_t *d, int64_t *kd, int64_t *cnt, qo_val *gk,
                             bool *noop) {
    qo_graph *g = a->g;
    int64_t axes[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the reduced input", r, d));
    int64_t na = -1;
    const qo_attr *aa = qo_node_attr(g, n, "axes");
    if (aa && aa->kind == QO_ATTR_INTS) {
        na = aa->n;
        if (na > QO_AD_MAXR) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "too many axes");
        if (na) memcpy(axes, aa->u.is, sizeof(int64_t) * (size_t)na);
    } else if (g->nodes[n].nin > 1 && IN(1)) {
        na = qo_pass_const_ints(g, IN(1), axes, QO_AD_MAXR);
        if (na < 0) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "reduction axes must be a constant");
    }
    bool keep = qo_attr_int(g, n, "keepdims", 1) != 0;
    *noop = false;
    if (na <= 0) {
        if (na == 0 && qo_attr_int(g, n, "noop_with_empty_axes", 0)) {
            *noop = true;
            return QO_OK;
        }
        na = *r;
        for (int32_t i = 0; i < *r; i++) axes[i] = i;
    }
    bool red[QO_AD_MAXR] = {0};
    *cnt = 1;
    for (int64_t i = 0; i < na; i++) {
        int64_t x = axes[i] < 0 ? axes[i] + *r : axes[i];
        if (x < 0 || x >= *r) return qo_ad_err(a, QO_ERR_INVALID_MODEL, "axis %lld out of range", (long long)axes[i]);
        if (!red[x]) *cnt *= d[x];
        red[x] = true;
    }
    for (int32_t i = 0; i < *r; i++) kd[i] = red[i] ? 1 : d[i];
    *gk = keep ? gy : qo_ad_reshape(a, gy, *r, kd);
    return QO_OK;
}

/* ReduceSum / ReduceMean: dY (with the reduced axes kept) expanded to X's shape (/ count for mean). */
static qo_status rule_reduce(ad *a, qo_node n, qo_val gy, bool mean) {
    int32_t r;
    int64_t d[QO_AD_MAXR], kd[QO_AD_MAXR], cnt;
    qo_val t;
    bool noop;
    QO_TRY(reduce_geom(a, n, gy, &r, d, kd, &cnt, &t, &noop));
    if (noop) return ew_contrib(a, n, IN(0), gy);
    if (mean) t = qo_ad_op2(a, QO_OP_DIV, t, konst(a, n, (double)cnt));
    qo_val c = qo_ad_op2(a, QO_OP_EXPAND, t, qo_ad_ints(a, r, d));
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

/* The other reductions, with dY and Y broadcast back along the kept axes (yk = Y reshaped so):
 *   ReduceMax / ReduceMin  dY / (number of ties) where X == Y, else 0 (torch.amax/amin)
 *   ReduceSumSquare        2 X dY
 *   ReduceL2               X dY / Y (0 where Y == 0: torch.linalg.vector_norm's subgradient)
 *   ReduceLogSumExp        dY exp(X - Y) */
static qo_status rule_reduce_other(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    qo_op op = (qo_op)g->nodes[n].op;
    int32_t r;
    int64_t d[QO_AD_MAXR], kd[QO_AD_MAXR], cnt;
    qo_val gk;
    bool noop;
    QO_TRY(reduce_geom(a, n, gy, &r, d, kd, &cnt, &gk, &noop));
    qo_val x = IN(0), y = OUT(0);
    if (noop) return ew_contrib(a, n, x, gy); /* Y = X */
    qo_val yk = qo_attr_int(g, n, "keepdims", 1) ? y : qo_ad_reshape(a, y, r, kd), c;
    switch (op) {
    case QO_OP_REDUCEMAX:
    case QO_OP_REDUCEMIN: {
        qo_val eq = qo_ad_op2(a, QO_OP_EQUAL, x, yk);
        qo_val ins[3] = {eq, konst(a, n, 1), konst(a, n, 0)};
        int64_t ax[QO_AD_MAXR]; /* the reduced axes (and size-1 ones: summing those changes nothing) */
        int na = 0;
        for (int32_t i = 0; i < r; i++)
            if (kd[i] == 1) ax[na++] = i;
        qo_val ties = qo_ad_reducesum(a, qo_ad_op(a, QO_OP_WHERE, 3, ins), na, ax, true);
        c = masked(a, n, eq, qo_ad_op2(a, QO_OP_DIV, gk, ties));
        break;
    }
    case QO_OP_REDUCESUMSQUARE: c = qo_ad_op2(a, QO_OP_MUL, qo_ad_op2(a, QO_OP_MUL, x, gk), konst(a, n, 2)); break;
    case QO_OP_REDUCEL2: {
        qo_val zero = qo_ad_op2(a, QO_OP_EQUAL, yk, konst(a, n, 0));
        qo_val ins[3] = {zero, konst(a, n, 1), yk};
        qo_val q = qo_ad_op2(a, QO_OP_DIV, qo_ad_op2(a, QO_OP_MUL, x, gk), qo_ad_op(a, QO_OP_WHERE, 3, ins));
        qo_val in2[3] = {zero, konst(a, n, 0), q};
        c = qo_ad_op(a, QO_OP_WHERE, 3, in2);
        break;
    }
    default: /* ReduceLogSumExp */
        c = qo_ad_op2(a, QO_OP_MUL, gk, qo_ad_op1(a, QO_OP_EXP, qo_ad_op2(a, QO_OP_SUB, x, yk)));
        break;
    }
    /* the kept-axes operands broadcast: c has X's shape */
    qo_ad_type_like(a, c, x);
    qo_ad_add_grad(a, x, c);
    return QO_OK;
}

static qo_status rule_softmax(ad *a, qo_node n, qo_val gy, bool is_log) {
    int32_t r;
    int64_t d[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the Softmax input", &r, d));
    int64_t ax = qo_attr_int(a->g, n, "axis", -1);
    if (ax < 0) ax += r;
    qo_val y = OUT(0), c;
    if (!is_log) {
        /* y * (dY - sum(dY * y)) */
        qo_val s = qo_ad_reducesum(a, qo_ad_op2(a, QO_OP_MUL, gy, y), 1, &ax, true);
        c = qo_ad_op2(a, QO_OP_MUL, y, qo_ad_op2(a, QO_OP_SUB, gy, s));
    } else {
        /* dY - exp(y) * sum(dY) */
        qo_val s = qo_ad_reducesum(a, gy, 1, &ax, true);
        c = qo_ad_op2(a, QO_OP_SUB, gy, qo_ad_op2(a, QO_OP_MUL, qo_ad_op1(a, QO_OP_EXP, y), s));
    }
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

/* ---- convolution, pooling, normalization ------------------------------------------------------- */

static void copy_attr(ad *a, qo_node from, qo_node to, const char *name) {
    const qo_attr *at = qo_node_attr(a->g, from, name);
    if (!at) return;
    qo_attr c = *at;
    qo_node_set_attr(a->g, to, &c);
}

static bool auto_pad_plain(ad *a, qo_node n) {
    const qo_attr *ap = qo_node_attr(a->g, n, "auto_pad");
    if (!ap || ap->kind != QO_ATTR_STRING) return true;
    return (ap->u.s.n == 6 && memcmp(ap->u.s.p, "NOTSET", 6) == 0) || (ap->u.s.n == 5 && memcmp(ap->u.s.p, "VALID", 5) == 0) ||
           ap->u.s.n == 0;
}

static bool auto_pad_valid(ad *a, qo_node n) {
    const qo_attr *ap = qo_node_attr(a->g, n, "auto_pad");
    return ap && ap->kind == QO_ATTR_STRING && ap->u.s.n == 5 && memcmp(ap->u.s.p, "VALID", 5) == 0;
}

/* ints attribute `name` (nsp entries, or 2*nsp for pads), default dflt. */
static void ints_attr(ad *a, qo_node n, const char *name, int cnt, int64_t dflt, int64_t *out) {
    const qo_attr *at = qo_node_attr(a->g, n, name);
    for (int i = 0; i < cnt; i++) out[i] = dflt;
    if (at && at->kind == QO_ATTR_INTS && cnt > 0 && (int)at->n == cnt) memcpy(out, at->u.is, sizeof(int64_t) * (size_t)cnt);
}

/* The gradient of Conv weights W (wd) for input x (xr, xd) and result gradient dy (dims yd) with the
 * Conv's strides, dilations, pads and group: dW[m, c, k] = sum over n, o of dy[n, m, o]
 * x[n, grp(m) C/group + c, o*s - pb + k*d], one ConvGradWeight (its optimized kernel is one sgemm
 * per image and group on an im2col of x, runtime/kernels/conv_grad.c). */
static qo_status weight_grad(ad *a, qo_val x, int32_t xr, const int64_t *xd, qo_val dy, const int64_t *yd, qo_val w,
                             const int64_t *wd, const int64_t *str, const int64_t *dil, const int64_t *pads, int64_t group,
                             qo_val *out) {
    qo_graph *g = a->g;
    int nsp = xr - 2;
    for (int i = 0; i < nsp; i++) {
        int64_t full = (xd[2 + i] + pads[i] + pads[nsp + i] - ((yd[2 + i] - 1) * str[i] + 1)) / dil[i] + 1;
        if (full < wd[2 + i]) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "weight gradient: inconsistent geometry");
    }
    qo_val ins[3] = {dy, x, w};
    qo_val c = qo_ad_op(a, QO_OP_TRAIN_CONVGRADWEIGHT, 3, ins);
    qo_node t = g->vals[c].def;
    qo_node_set_attr_ints(g, t, "strides", str, (uint32_t)nsp);
    qo_node_set_attr_ints(g, t, "dilations", dil, (uint32_t)nsp);
    qo_node_set_attr_ints(g, t, "pads", pads, (uint32_t)(2 * nsp));
    qo_node_set_attr_int(g, t, "group", group);
    qo_ad_type_like(a, c, w);
    *out = c;
    return QO_OK;
}

/* Bias gradient of a Conv/ConvTranspose: dY summed over every axis but 1. */
static void bias_grad(ad *a, qo_val gy, int32_t yr, qo_val b) {
    int64_t axes[QO_AD_MAXR];
    int na = 0;
    for (int32_t i = 0; i < yr; i++)
        if (i != 1) axes[na++] = i;
    qo_val c = qo_ad_reducesum(a, gy, na, axes, false);
    qo_ad_type_like(a, c, b);
    qo_ad_add_grad(a, b, c);
}

static qo_status rule_conv(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    int32_t xr, wr, yr;
    int64_t xd[QO_AD_MAXR], wd[QO_AD_MAXR], yd[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the Conv input", &xr, xd));
    QO_TRY(qo_ad_need_shape(a, IN(1), "the Conv weight", &wr, wd));
    QO_TRY(qo_ad_need_shape(a, OUT(0), "the Conv result", &yr, yd));
    int nsp = xr - 2;
    int64_t str[QO_AD_MAXR], dil[QO_AD_MAXR], pads[2 * QO_AD_MAXR];
    ints_attr(a, n, "strides", nsp, 1, str);
    ints_attr(a, n, "dilations", nsp, 1, dil);
    ints_attr(a, n, "pads", 2 * nsp, 0, pads);
    if (auto_pad_valid(a, n)) memset(pads, 0, sizeof pads);
    if (!auto_pad_plain(a, n)) {
        /* SAME_UPPER / SAME_LOWER: the explicit pads they stand for (odd one at the end / begin) */
        const qo_attr *ap = qo_node_attr(g, n, "auto_pad");
        bool lower = ap->u.s.n == 10 && memcmp(ap->u.s.p, "SAME_LOWER", 10) == 0;
        for (int i = 0; i < nsp; i++) {
            int64_t tot = (yd[2 + i] - 1) * str[i] + (wd[2 + i] - 1) * dil[i] + 1 - xd[2 + i];
            if (tot < 0) tot = 0;
            pads[i] = lower ? tot - tot / 2 : tot / 2;
            pads[nsp + i] = tot - pads[i];
        }
    }
    int64_t group = qo_attr_int(g, n, "group", 1);
    if (NEEDS(0)) {
        /* ConvTranspose of dY with the same weights: W (M, C/group, k) is ConvTranspose's
         * (C_in = M, C_out/group, k) layout; output_padding restores X's extent */
        int64_t adj[QO_AD_MAXR];
        for (int i = 0; i < nsp; i++) {
            int64_t full = (yd[2 + i] - 1) * str[i] + (wd[2 + i] - 1) * dil[i] + 1 - pads[i] - pads[nsp + i];
            adj[i] = xd[2 + i] - full;
            if (adj[i] < 0) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Conv input gradient: negative output padding");
        }
        qo_val c = qo_ad_op2(a, QO_OP_CONVTRANSPOSE, gy, IN(1));
        qo_node t = g->vals[c].def;
        qo_node_set_attr_ints(g, t, "strides", str, (uint32_t)nsp);
        qo_node_set_attr_ints(g, t, "dilations", dil, (uint32_t)nsp);
        qo_node_set_attr_ints(g, t, "pads", pads, (uint32_t)(2 * nsp));
        qo_node_set_attr_ints(g, t, "kernel_shape", wd + 2, (uint32_t)nsp);
        bool anyadj = false;
        for (int i = 0; i < nsp; i++) anyadj |= adj[i] != 0;
        if (anyadj) qo_node_set_attr_ints(g, t, "output_padding", adj, (uint32_t)nsp);
        if (group != 1) qo_node_set_attr_int(g, t, "group", group);
        qo_ad_type_like(a, c, IN(0));
        qo_ad_add_grad(a, IN(0), c);
    }
    if (NEEDS(1)) {
        qo_val c;
        QO_TRY(weight_grad(a, IN(0), xr, xd, gy, yd, IN(1), wd, str, dil, pads, group, &c));
        qo_ad_add_grad(a, IN(1), c);
    }
    if (g->nodes[n].nin > 2 && NEEDS(2)) bias_grad(a, gy, yr, IN(2));
    return QO_OK;
}

/* ConvTranspose Y = ConvT(X, W): dX = Conv(dY, W) with the same strides, pads, dilations, group
 * (output_padding only adds rows that no input reaches); dW is the Conv weight gradient with the
 * roles swapped (dY as the Conv input, X as its result gradient); dB sums dY. */
static qo_status rule_convtranspose(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    int32_t xr, wr, yr;
    int64_t xd[QO_AD_MAXR], wd[QO_AD_MAXR], yd[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the ConvTranspose input", &xr, xd));
    QO_TRY(qo_ad_need_shape(a, IN(1), "the ConvTranspose weight", &wr, wd));
    QO_TRY(qo_ad_need_shape(a, OUT(0), "the ConvTranspose result", &yr, yd));
    if (!auto_pad_plain(a, n) || qo_node_attr(g, n, "output_shape"))
        return qo_ad_err(a, QO_ERR_UNSUPPORTED, "ConvTranspose with auto_pad SAME_* or output_shape has no gradient rule");
    int nsp = xr - 2;
    int64_t str[QO_AD_MAXR], dil[QO_AD_MAXR], pads[2 * QO_AD_MAXR], adj[QO_AD_MAXR];
    ints_attr(a, n, "strides", nsp, 1, str);
    ints_attr(a, n, "dilations", nsp, 1, dil);
    ints_attr(a, n, "pads", 2 * nsp, 0, pads);
    ints_attr(a, n, "output_padding", nsp, 0, adj);
    if (auto_pad_valid(a, n)) memset(pads, 0, sizeof pads);
    for (int i = 0; i < nsp; i++)
        if (adj[i] >= str[i] && adj[i] >= dil[i])
            return qo_ad_err(a, QO_ERR_UNSUPPORTED, "ConvTranspose output_padding %lld not below the stride", (long long)adj[i]);
    int64_t group = qo_attr_int(g, n, "group", 1);
    if (NEEDS(0)) {
        qo_val c = qo_ad_op2(a, QO_OP_CONV, gy, IN(1));
        qo_node t = g->vals[c].def;
        qo_node_set_attr_ints(g, t, "strides", str, (uint32_t)nsp);
        qo_node_set_attr_ints(g, t, "dilations", dil, (uint32_t)nsp);
        qo_node_set_attr_ints(g, t, "pads", pads, (uint32_t)(2 * nsp));
        qo_node_set_attr_ints(g, t, "kernel_shape", wd + 2, (uint32_t)nsp);
        if (group != 1) qo_node_set_attr_int(g, t, "group", group);
        qo_ad_type_like(a, c, IN(0));
        qo_ad_add_grad(a, IN(0), c);
    }
    if (NEEDS(1)) {
        qo_val c;
        QO_TRY(weight_grad(a, gy, yr, yd, IN(0), xd, IN(1), wd, str, dil, pads, group, &c));
        qo_ad_add_grad(a, IN(1), c);
    }
    if (g->nodes[n].nin > 2 && NEEDS(2)) bias_grad(a, gy, yr, IN(2));
    return QO_OK;
}

/* Pad (constant mode, constant non-negative pads): dY sliced back to X's extent. */
static qo_status rule_pad(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    int32_t r;
    int64_t d[QO_AD_MAXR], pads[2 * QO_AD_MAXR], st[QO_AD_MAXR], en[QO_AD_MAXR], ax[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the Pad input", &r, d));
    const qo_attr *md = qo_node_attr(g, n, "mode");
    if (md && md->kind == QO_ATTR_STRING && !(md->u.s.n == 8 && memcmp(md->u.s.p, "constant", 8) == 0))
        return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Pad: only mode constant is differentiated");
    if ((g->nodes[n].nin > 3 && IN(3)) || g->nodes[n].nin < 2 || qo_pass_const_ints(g, IN(1), pads, 2 * QO_AD_MAXR) != 2 * r)
        return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Pad: pads must be a constant over every axis (no axes input)");
    for (int32_t i = 0; i < r; i++) {
        if (pads[i] < 0 || pads[r + i] < 0) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Pad: negative pads are not differentiated");
        st[i] = pads[i], en[i] = pads[i] + d[i], ax[i] = i;
    }
    qo_val ins[4] = {gy, qo_ad_ints(a, r, st), qo_ad_ints(a, r, en), qo_ad_ints(a, r, ax)};
    qo_val c = qo_ad_op(a, QO_OP_SLICE, 4, ins);
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

/* Split: the results' gradients (zeros for results without one) concatenated along the axis. */
static qo_status rule_split(ad *a, qo_node n, const qo_val *gy) {
    qo_graph *g = a->g;
    uint32_t k = g->nodes[n].nout;
    int32_t r;
    int64_t d[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the Split input", &r, d));
    qo_val *parts = qo_malloc(sizeof(qo_val) * k);
    for (uint32_t i = 0; i < k; i++) {
        parts[i] = gy[i];
        if (!parts[i]) parts[i] = qo_ad_zeros_like(a, OUT(i));
        if (!parts[i]) {
            qo_free(parts);
            return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Split result %u needs a static shape", i);
        }
    }
    qo_val c = k == 1 ? qo_ad_op1(a, QO_OP_IDENTITY, parts[0]) : qo_ad_op(a, QO_OP_CONCAT, k, parts);
    qo_free(parts);
    int64_t axis = qo_attr_int(g, n, "axis", 0);
    if (k > 1) qo_node_set_attr_int(g, g->vals[c].def, "axis", axis < 0 ? axis + r : axis);
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

static qo_status rule_pool(ad *a, qo_node n, qo_val gy, qo_op gop) {
    /* the gradient ops resolve the window geometry (auto_pad included) as the pools do */
    int32_t r;
    int64_t d[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the pooled input", &r, d));
    qo_val ins[2] = {gy, IN(0)};
    qo_val c = qo_ad_op(a, gop, 2, ins);
    qo_node t = a->g->vals[c].def;
    static const char *const names[] = {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                                        "kernel_shape", "pads", "strides"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) copy_attr(a, n, t, names[i]);
    if (gop == QO_OP_TRAIN_MAXPOOLGRAD) qo_node_remove_attr(a->g, t, "count_include_pad");
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

static qo_status rule_gap(ad *a, qo_node n, qo_val gy) {
    int32_t r;
    int64_t d[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the pooled input", &r, d));
    int64_t cnt = 1;
    for (int32_t i = 2; i < r; i++) cnt *= d[i];
    qo_val t = qo_ad_op2(a, QO_OP_DIV, gy, konst(a, n, (double)cnt));
    qo_val c = qo_ad_op2(a, QO_OP_EXPAND, t, qo_ad_ints(a, r, d));
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

/* GlobalMaxPool: MaxPoolGrad with the whole plane as the window. */
static qo_status rule_gmp(ad *a, qo_node n, qo_val gy) {
    int32_t r;
    int64_t d[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the pooled input", &r, d));
    if (r < 3) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "GlobalMaxPool input of rank %d", (int)r);
    qo_val ins[2] = {gy, IN(0)};
    qo_val c = qo_ad_op(a, QO_OP_TRAIN_MAXPOOLGRAD, 2, ins);
    qo_node_set_attr_ints(a->g, a->g->vals[c].def, "kernel_shape", d + 2, (uint32_t)(r - 2));
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

static qo_status rule_bn(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    if (!qo_attr_int(g, n, "training_mode", 0))
        return qo_ad_err(a, QO_ERR_UNSUPPORTED,
                         "BatchNormalization in inference mode: set training_mode=1 to train it, or fold-bn it first");
    qo_val ins[3] = {gy, IN(0), IN(1)};
    qo_node t = qo_ad_node(a, QO_OP_TRAIN_BATCHNORMGRAD, 3, ins, 3);
    copy_attr(a, n, t, "epsilon");
    for (uint32_t i = 0; i < 3; i++) {
        qo_val c = qo_node_output(g, t, i);
        qo_ad_type_like(a, c, IN(i));
        if (NEEDS(i)) qo_ad_add_grad(a, IN(i), c);
        else if (i > 0) qo_node_drop_output(g, t, i); /* dX is required by the signature: kept */
    }
    return QO_OK;
}

/* ---- quantizers and losses --------------------------------------------------------------------- */

static qo_status rule_quant(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    int32_t xr;
    int64_t xd[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the quantized input", &xr, xd));
    qo_val ins[5] = {gy, IN(0), IN(1), IN(2), IN(3)};
    qo_node t = qo_ad_node(a, QO_OP_TRAIN_QUANTGRAD, 5, ins, 3);
    copy_attr(a, n, t, "signed");
    copy_attr(a, n, t, "narrow");
    copy_attr(a, n, t, "rounding_mode");
    qo_elem e = qo_ad_elem(a, gy) ? qo_ad_elem(a, gy) : qo_ad_elem(a, OUT(0));
    /* reduce = 1: dScale and dBitwidth come summed to the shapes of the scale and the bit width
       (the kernels sum while computing them, without writing per-element tensors) */
    qo_node_set_attr_int(g, t, "reduce", 1);
    qo_ad_set_type(a, qo_node_output(g, t, 0), e, xr, xd);
    /* output 0 (dX) is required by the op's signature: it stays even when x needs no gradient
       (a quantizer on a graph input) */
    if (NEEDS(0)) qo_ad_add_grad(a, IN(0), qo_node_output(g, t, 0));
    for (uint32_t i = 1; i < 3; i++) {
        uint32_t slot = i == 1 ? 1 : 3; /* the scale's and the bit width's Quant inputs */
        if (!NEEDS(slot) || !qo_ad_diff_slot(a, n, slot)) {
            qo_node_drop_output(g, t, i);
            continue;
        }
        int32_t r;
        int64_t d[QO_AD_MAXR];
        QO_TRY(qo_ad_need_shape(a, IN(slot), i == 1 ? "the scale" : "the bit width", &r, d));
        if (r > xr) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Quant operand of rank %d beyond its input's %d", (int)r, (int)xr);
        qo_ad_set_type(a, qo_node_output(g, t, i), e, r, d);
        qo_ad_add_grad(a, IN(slot), qo_node_output(g, t, i));
    }
    return QO_OK;
}

static qo_status rule_softmaxce(ad *a, qo_node n, qo_val gy) {
    qo_val ins[3] = {gy, IN(0), IN(1)};
    qo_val c = qo_ad_op(a, QO_OP_TRAIN_SOFTMAXCEGRAD, 3, ins);
    copy_attr(a, n, a->g->vals[c].def, "reduction");
    qo_ad_type_like(a, c, IN(0));
    qo_ad_add_grad(a, IN(0), c);
    return QO_OK;
}

qo_status qo_ad_rule(ad *a, qo_node n, const qo_val *gy) {
    qo_graph *g = a->g;
    qo_op op = (qo_op)g->nodes[n].op;
    qo_val g0 = gy[0];
    if (op == QO_OP_SPLIT) return rule_split(a, n, gy);
    if (!g0) {
        if (op == QO_OP_BATCHNORMALIZATION || op == QO_OP_MAXPOOL || op == QO_OP_DROPOUT)
            return QO_OK; /* only running statistics / indices / masks have gradients: not differentiable */
        return qo_ad_err(a, QO_ERR_UNSUPPORTED, "no gradient rule for result %u of %s", 1, qo_node_op_type(g, n));
    }
    switch (op) {
    case QO_OP_MATMUL: return rule_matmul(a, n, g0);
    case QO_OP_GEMM: return rule_gemm(a, n, g0);
    case QO_OP_RESHAPE:
    case QO_OP_FLATTEN:
    case QO_OP_SQUEEZE:
    case QO_OP_UNSQUEEZE: return rule_reshape_like(a, n, g0);
    case QO_OP_TRANSPOSE: return rule_transpose(a, n, g0);
    case QO_OP_CONCAT: return rule_concat(a, n, g0);
    case QO_OP_SLICE: return rule_slice(a, n, g0);
    case QO_OP_REDUCESUM: return rule_reduce(a, n, g0, false);
    case QO_OP_REDUCEMEAN: return rule_reduce(a, n, g0, true);
    case QO_OP_REDUCEMAX:
    case QO_OP_REDUCEMIN:
    case QO_OP_REDUCESUMSQUARE:
    case QO_OP_REDUCEL2:
    case QO_OP_REDUCELOGSUMEXP: return rule_reduce_other(a, n, g0);
    case QO_OP_SOFTMAX: return rule_softmax(a, n, g0, false);
    case QO_OP_LOGSOFTMAX: return rule_softmax(a, n, g0, true);
    case QO_OP_CONV: return rule_conv(a, n, g0);
    case QO_OP_CONVTRANSPOSE: return rule_convtranspose(a, n, g0);
    case QO_OP_PAD: return rule_pad(a, n, g0);
    case QO_OP_MAXPOOL: return rule_pool(a, n, g0, QO_OP_TRAIN_MAXPOOLGRAD);
    case QO_OP_AVERAGEPOOL: return rule_pool(a, n, g0, QO_OP_TRAIN_AVERAGEPOOLGRAD);
    case QO_OP_GLOBALAVERAGEPOOL: return rule_gap(a, n, g0);
    case QO_OP_GLOBALMAXPOOL: return rule_gmp(a, n, g0);
    case QO_OP_BATCHNORMALIZATION: return rule_bn(a, n, g0);
    case QO_OP_QONNX_QUANT: return rule_quant(a, n, g0);
    case QO_OP_TRAIN_SOFTMAXCE: return rule_softmaxce(a, n, g0);
    default: {
        bool handled;
        qo_status st = qo_ad_rule_nn(a, n, gy, &handled);
        return handled ? st : rule_ew(a, n, g0);
    }
    }
}
