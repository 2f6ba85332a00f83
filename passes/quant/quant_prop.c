/* passes/quant/quant_prop.c — `quant-prop`: QuantTensor metadata (qo_quant on value types) carried
 * through ops that do not change quantization. Types only: no node is added or removed.
 *
 * The result of op n gets the quant of its data input x (input 0) when every value n can produce
 * lies on x's grid and in x's integer range:
 *   Identity, Dropout (result 0)        copied
 *   MaxPool, GlobalMaxPool (result 0)   copied (per-axis only along axis 0 or 1: pooling is spatial)
 *   Relu                                copied when x is unsigned with zero point 0 (Relu is the
 *                                       identity then); a signed x is left alone (Brevitas requantizes)
 *   Reshape, Flatten, Squeeze, Unsqueeze  copied; per-axis only when the channel axis survives as one
 *                                       output axis of the same extent with the same number of
 *                                       elements before it (static shapes), else nothing is set
 *   Transpose                           copied; the per-axis axis follows the permutation
 *   Slice                               copied; per-axis only when the channel axis is not sliced
 *   Pad                                 mode constant with value 0, when 0 is on the grid (the zero
 *                                       point(s) inside the integer range); per-axis only when the
 *                                       channel axis gets no padding
 *   DepthToSpace, SpaceToDepth          copied per tensor (per-axis only along the batch axis 0)
 *   Resize                              mode nearest; per-axis only when the channel axis keeps its
 *                                       extent (static shapes)
 *   Concat                              all inputs carry equal quant (per-axis: not along the concat
 *                                       axis)
 *   Add                                 both inputs per-tensor, zero point 0, equal scale and
 *                                       signedness: bits = max(bits) + 1 (Brevitas QuantTensor add;
 *                                       the sum's integer range fits), narrow off
 * Anything else is left alone, and a result that already has a quant is overwritten only by a
 * different one computed here. */
#include "passes/pass_impl.h"
#include "passes/quant/config.h"
#include "passes/quant/qgraph.h"

#include <string.h>

static const qo_quant *val_quant(const qo_graph *g, qo_val v) {
    const qo_typedata *t = v ? qo_type_get(g->m, g->vals[v].type) : NULL;
    return t && t->kind == QO_TY_TENSOR ? t->quant : NULL;
}

static const qo_typedata *val_td(const qo_graph *g, qo_val v) {
    const qo_typedata *t = v ? qo_type_get(g->m, g->vals[v].type) : NULL;
    return t && t->kind == QO_TY_TENSOR ? t : NULL;
}

static bool static_shape(const qo_typedata *t) {
    if (!t || t->rank < 0) return false;
    for (int32_t i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return false;
    return true;
}

static bool const_eq(const qo_module *m, qo_cref a, qo_cref b) {
    if (a == b) return true;
    if (!a || !b) return false;
    const qo_constdata *x = qo_const_get(m, a), *y = qo_const_get(m, b);
    return x->type == y->type && x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes);
}

static bool quant_eq(const qo_module *m, const qo_quant *a, const qo_quant *b) {
    if (!a || !b) return a == b;
    if (a->bits != b->bits || a->is_signed != b->is_signed || a->narrow != b->narrow || a->round != b->round ||
        a->per_axis != b->per_axis || a->pow2 != b->pow2)
        return false;
    if (!a->per_axis) return a->scale == b->scale && a->zp == b->zp;
    return a->axis == b->axis && const_eq(m, a->scales, b->scales) && const_eq(m, a->zps, b->zps);
}

/* Integer range of a quant descriptor (REFERENCE §3.1). */
static void quant_range(const qo_quant *q, int64_t *lo, int64_t *hi) {
    if (q->is_signed) {
        *lo = -((int64_t)1 << (q->bits - 1)) + (q->narrow ? 1 : 0);
        *hi = ((int64_t)1 << (q->bits - 1)) - 1;
        if (q->bits == 1) *lo = -1, *hi = 0;
    } else {
        *lo = 0;
        *hi = ((int64_t)1 << q->bits) - 1 - (q->narrow ? 1 : 0);
    }
}

/* True if every zero point is 0 (want_zero) or, else, inside the integer range (0.0 on the grid). */
static bool zps_ok(const qo_module *m, const qo_quant *q, bool want_zero) {
    int64_t lo, hi;
    quant_range(q, &lo, &hi);
    if (!q->per_axis) return want_zero ? q->zp == 0 : q->zp >= lo && q->zp <= hi;
    if (!q->zps) return true;
    const qo_constdata *c = qo_const_get(m, q->zps);
    const int32_t *z = c->data;
    for (size_t i = 0; i < c->nbytes / 4; i++) {
        int32_t v;
        memcpy(&v, &z[i], 4);
        if (want_zero ? v != 0 : v < lo || v > hi) return false;
    }
    return true;
}

/* Output axis that input axis a becomes under a reshape of static shapes; -1 if none. */
static int reshape_axis(const qo_typedata *in, const qo_typedata *out, int a) {
    if (!static_shape(in) || !static_shape(out) || a >= in->rank) return -1;
    int64_t pre = 1;
    for (int i = 0; i < a; i++) pre *= in->dims[i];
    int64_t p = 1;
    for (int j = 0; j < out->rank; j++) {
        if (p == pre && out->dims[j] == in->dims[a]) return j;
        p *= out->dims[j];
        if (p > pre && pre) return -1;
    }
    return -1;
}

/* Axes a Slice slices (normalized), into ax; count, or -1 if unknown. */
static int slice_axes(const qo_graph *g, qo_node n, int32_t rank, int64_t *ax) {
    int64_t k;
    if (g->nodes[n].nin >= 2) {
        if (g->nodes[n].nin >= 4 && qo_node_input(g, n, 3)) k = qo_pass_const_ints(g, qo_node_input(g, n, 3), ax, QO_MAX_RANK);
        else {
            int64_t st[QO_MAX_RANK];
            k = qo_pass_const_ints(g, qo_node_input(g, n, 1), st, QO_MAX_RANK);
            for (int64_t i = 0; i < k; i++) ax[i] = i;
        }
    } else {
        const qo_attr *a = qo_node_attr(g, n, "axes");
        if (a && a->kind == QO_ATTR_INTS && a->n <= QO_MAX_RANK) {
            k = a->n;
            for (uint32_t i = 0; i < a->n; i++) ax[i] = a->u.is[i];
        } else {
            const qo_attr *s = qo_node_attr(g, n, "starts");
            if (!s || s->kind != QO_ATTR_INTS || s->n > QO_MAX_RANK) return -1;
            k = s->n;
            for (int64_t i = 0; i < k; i++) ax[i] = i;
        }
    }
    if (k < 0) return -1;
    for (int64_t i = 0; i < k; i++)
        if (ax[i] < 0) ax[i] += rank;
    return (int)k;
}

/* Pad: mode constant, value 0; pads along axis a zero (a < 0: not needed). */
static bool pad_ok(const qo_graph *g, qo_node n, int32_t rank, int a) {
    const qo_attr *m = qo_node_attr(g, n, "mode");
    if (m && m->kind == QO_ATTR_STRING && !(m->u.s.n == 8 && !memcmp(m->u.s.p, "constant", 8))) return false;
    if (g->nodes[n].nin >= 3 && qo_node_input(g, n, 2)) {
        float v;
        if (qo_pass_const_floats(g, qo_node_input(g, n, 2), &v, 1) != 1 || v != 0.0f) return false;
    } else if (qo_attr_float(g, n, "value", 0.0f) != 0.0f) return false;
    if (a < 0) return true;
    int64_t pads[2 * QO_MAX_RANK];
    int64_t k;
    if (g->nodes[n].nin >= 2) {
        if (g->nodes[n].nin >= 4 && qo_node_input(g, n, 3)) return false; /* axes input: keep it simple */
        k = qo_pass_const_ints(g, qo_node_input(g, n, 1), pads, 2 * QO_MAX_RANK);
    } else {
        const qo_attr *p = qo_node_attr(g, n, "pads");
        if (!p || p->kind != QO_ATTR_INTS || p->n > 2 * QO_MAX_RANK) return false;
        k = p->n;
        for (uint32_t i = 0; i < p->n; i++) pads[i] = p->u.is[i];
    }
    return k == 2 * rank && pads[a] == 0 && pads[a + rank] == 0;
}

/* The quant n's result gets, written to *out; false if none. */
static bool prop_one(const qo_graph *g, qo_node n, qo_quant *out) {
    qo_op op = g->nodes[n].op;
    qo_val x = g->nodes[n].nin ? qo_node_input(g, n, 0) : 0, y = qo_node_output(g, n, 0);
    const qo_quant *q = val_quant(g, x);
    if (!q || !y) return false;
    *out = *q;
    const qo_typedata *ti = val_td(g, x), *to = val_td(g, y);
    int a = q->per_axis ? q->axis : -1;
    switch (op) {
    case QO_OP_IDENTITY: case QO_OP_DROPOUT:
        return true;
    case QO_OP_MAXPOOL: case QO_OP_GLOBALMAXPOOL:
        return a < 2;
    case QO_OP_DEPTHTOSPACE: case QO_OP_SPACETODEPTH: /* moves values between C and H/W */
        return a < 0 || a == 0;
    case QO_OP_RELU:
        return !q->is_signed && zps_ok(g->m, q, true);
    case QO_OP_RESHAPE: case QO_OP_FLATTEN: case QO_OP_SQUEEZE: case QO_OP_UNSQUEEZE:
        if (a < 0) return true;
        out->axis = (int16_t)reshape_axis(ti, to, a);
        return out->axis >= 0;
    case QO_OP_TRANSPOSE: {
        if (a < 0) return true;
        if (!ti || ti->rank < 0) return false;
        const qo_attr *p = qo_node_attr(g, n, "perm");
        for (int32_t i = 0; i < ti->rank; i++) {
            int64_t src = p && p->kind == QO_ATTR_INTS && p->n == (uint32_t)ti->rank ? p->u.is[i] : ti->rank - 1 - i;
            if (src == a) {
                out->axis = (int16_t)i;
                return true;
            }
        }
        return false;
    }
    case QO_OP_SLICE: {
        if (a < 0) return true;
        if (!ti || ti->rank < 0) return false;
        int64_t ax[QO_MAX_RANK];
        int k = slice_axes(g, n, ti->rank, ax);
        if (k < 0) return false;
        for (int i = 0; i < k; i++)
            if (ax[i] == a) return false;
        return true;
    }
    case QO_OP_PAD:
        if (!zps_ok(g->m, q, false)) return false;
        if (a >= 0 && (!ti || ti->rank < 0)) return false;
        return pad_ok(g, n, ti ? ti->rank : 0, a);
    case QO_OP_RESIZE: {
        const qo_attr *m = qo_node_attr(g, n, "mode"); /* default: nearest */
        if (m && (m->kind != QO_ATTR_STRING || m->u.s.n != 7 || memcmp(m->u.s.p, "nearest", 7))) return false;
        if (a < 0) return true;
        const qo_attr *ct = qo_node_attr(g, n, "coordinate_transformation_mode");
        if (ct && ct->kind == QO_ATTR_STRING && ct->u.s.n == 18 && !memcmp(ct->u.s.p, "tf_crop_and_resize", 18))
            return false;
        return static_shape(ti) && static_shape(to) && ti->rank == to->rank && a < to->rank &&
               ti->dims[a] == to->dims[a];
    }
    case QO_OP_CONCAT: {
        for (uint32_t i = 1; i < g->nodes[n].nin; i++)
            if (!quant_eq(g->m, q, val_quant(g, qo_node_input(g, n, i)))) return false;
        if (a < 0) return true;
        if (!ti || ti->rank < 0) return false;
        int64_t ca = qo_attr_int(g, n, "axis", 0);
        if (ca < 0) ca += ti->rank;
        return ca != a;
    }
    case QO_OP_ADD: {
        const qo_quant *r = val_quant(g, qo_node_input(g, n, 1));
        if (!r || q->per_axis || r->per_axis || q->zp || r->zp || q->scale != r->scale ||
            q->is_signed != r->is_signed)
            return false;
        uint8_t b = q->bits > r->bits ? q->bits : r->bits;
        if (b >= 32) return false;
        out->bits = (uint8_t)(b + 1);
        out->narrow = 0;
        out->pow2 = q->pow2 && r->pow2;
        return true;
    }
    default:
        return false;
    }
}

qo_status qo_quant_prop(qo_ctx *cx, qo_graph *g) {
    (void)cx;
    QO_FOR_EACH_NODE(g, n) {
        qo_quant qn;
        if (qo_qnode_is_quant(g, n) || !prop_one(g, n, &qn)) continue;
        qo_val y = qo_node_output(g, n, 0);
        const qo_typedata *to = val_td(g, y);
        if (!to || quant_eq(g->m, to->quant, &qn)) continue;
        g->vals[y].type = qo_type_with_quant(g->m, g->vals[y].type, &qn);
    }
    return QO_OK;
}

qo_status qo_pass_quant_prop(qo_pass_ctx *pc, qo_graph *g) {
    /* count changes by comparing types before and after */
    uint32_t n = g->nvals;
    qo_type *before = qo_malloc(sizeof(qo_type) * (n ? n : 1));
    for (uint32_t i = 0; i < n; i++) before[i] = g->vals[i].type;
    qo_status st = qo_quant_prop(pc->cx, g);
    int64_t changed = 0;
    for (uint32_t i = 0; i < n; i++) changed += before[i] != g->vals[i].type;
    qo_free(before);
    if (changed) {
        pc->changed = true;
        qo_pass_stat(pc, "types-quantized", changed);
    }
    return st;
}
