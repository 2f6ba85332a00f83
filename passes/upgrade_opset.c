/* passes/upgrade_opset.c — `upgrade-opset{to=13}`: raises the default-domain opset of an older
 * model (7-12) keeping every op's meaning, so backends that need a newer opset (QCDQ: 13) accept it.
 *
 *   Softmax/LogSoftmax/Hardmax (< 13)  coerce the input to 2-D at `axis` (default 1): unchanged
 *                                       when axis is the last dimension (axis made explicit), else
 *                                       Flatten(axis) -> op(axis=-1) -> Reshape(Shape(x))
 *   TopK (< 10)                         k attribute -> int64 [1] operand
 *   Scatter (deprecated at 11)          ScatterElements
 *   Dropout (< 12)                      ratio attribute -> operand
 *   Resize (10)                         (X, scales) -> (X, roi = [], scales), asymmetric coordinates,
 *                                       nearest_mode floor (Resize-10 is Upsample's formula)
 *   then the opset import is raised and `canonicalize` moves the remaining legacy attributes to
 *   operands (Clip min/max, Squeeze/Unsqueeze/ReduceSum axes, Split split, Slice starts/ends, Pad
 *   pads/value) and turns Upsample into Resize.
 * Ops whose semantics changed in ways not handled here (Scan before 9, Loop/If bodies' opset-bound
 * ops) are reported as errors naming the node instead of being upgraded silently. */
#include "passes/pass_impl.h"

#include <string.h>

static qo_val node1(qo_graph *g, qo_node before, qo_op op, uint32_t nin, const qo_val *ins) {
    qo_node saved = g->insert_before;
    g->insert_before = before;
    qo_node n = qo_node_new(g, op, NULL, NULL, nin, ins, 1);
    g->insert_before = saved;
    return qo_node_output(g, n, 0);
}

/* Softmax-family node n of an opset below 13: 2-D coercion made explicit. */
static qo_status softmax_like(qo_pass_ctx *pc, qo_graph *g, qo_node n) {
    qo_val x = qo_node_input(g, n, 0), y = qo_node_output(g, n, 0);
    const qo_typedata *td = qo_type_get(g->m, g->vals[x].type);
    int64_t axis = qo_attr_int(g, n, "axis", 1);
    if (!td || td->kind != QO_TY_TENSOR || td->rank < 0) {
        qo_loc l = qo_node_loc(g, n);
        return qo_error(pc->cx, QO_ERR_UNSUPPORTED, &l,
                        "upgrade-opset: the input rank is unknown, so the opset-%lld 2-D coercion cannot be "
                        "expressed at opset 13 (run shape-infer first)", (long long)qo_module_opset(g->m, ""));
    }
    int64_t r = td->rank;
    if (axis < 0) axis += r;
    if (axis == r - 1 || r <= 1) {
        qo_node_set_attr_int(g, n, "axis", r <= 1 ? -1 : axis);
        return QO_OK;
    }
    /* Flatten(x, axis) -> op(axis=-1) -> Reshape(., Shape(x)) */
    qo_val f = node1(g, n, QO_OP_FLATTEN, 1, &x);
    qo_node_set_attr_int(g, g->vals[f].def, "axis", axis);
    qo_val s = node1(g, n, QO_OP_SHAPE, 1, &x);
    qo_set_input(g, qo_node_use(g, n, 0), f);
    qo_node_set_attr_int(g, n, "axis", -1);
    qo_val tmp = qo_node_output(g, n, 0);
    qo_node nxt = g->nodes[n].next;
    qo_val ins[2] = {tmp, s};
    char *nm = qo_strdup(qo_val_name(g, y));
    qo_type ty = g->vals[y].type;
    qo_val_set_name(g, y, "");
    g->vals[y].type = 0;
    qo_val out = node1(g, nxt, QO_OP_RESHAPE, 2, ins);
    /* readers of y now read the reshaped result (the Reshape itself keeps reading tmp == y) */
    qo_use_id u = g->vals[y].first_use;
    while (u) {
        qo_use_id next = g->uses[u].next;
        if (g->uses[u].owner != g->vals[out].def) qo_set_input(g, u, out);
        u = next;
    }
    qo_val_set_name(g, out, nm);
    g->vals[out].type = ty;
    qo_free(nm);
    return QO_OK;
}

qo_status qo_pass_upgrade_opset(qo_pass_ctx *pc, qo_graph *g) {
    int64_t to = qo_pass_opt_int(pc, "to");
    int64_t from = qo_module_opset(g->m, "");
    if (!from || from >= to) return QO_OK;
    if (to < 13 || to > 21) return qo_error(pc->cx, QO_ERR_USAGE, NULL, "upgrade-opset: 'to' must be in 13..21");
    /* element types and ranks at the old opset first: the rewrites below and canonicalize's need them */
    qo_status st = qo_pipeline_run(pc->cx, g->m, "shape-infer{warn-conflicts=false}", NULL);
    if (st != QO_OK) return st;
    for (uint32_t gi = 0; gi < g->m->ngraphs; gi++) {
        qo_graph *sg = g->m->graphs[gi];
        QO_FOR_EACH_NODE(sg, n) {
            qo_op op = (qo_op)sg->nodes[n].op;
            qo_loc l = qo_node_loc(sg, n);
            if ((op == QO_OP_SCAN && from < 9) || (gi > 0 && (op == QO_OP_SOFTMAX || op == QO_OP_LOGSOFTMAX))) {
                st = qo_error(pc->cx, QO_ERR_UNSUPPORTED, &l, "upgrade-opset: %s at opset %lld is not upgraded",
                              qo_node_op_type(sg, n), (long long)from);
                continue;
            }
            if (gi > 0) continue;
            if (op == QO_OP_SOFTMAX || op == QO_OP_LOGSOFTMAX || op == QO_OP_HARDMAX) {
                qo_status s = softmax_like(pc, sg, n);
                if (s != QO_OK) st = s;
            } else if (op == QO_OP_SCATTER) { /* deprecated at 11: ScatterElements is the same op */
                sg->nodes[n].op = QO_OP_SCATTERELEMENTS;
                sg->nodes[n].op_type = qo_intern(sg->m, "ScatterElements");
            } else if (op == QO_OP_DROPOUT && from < 12 && qo_node_attr(sg, n, "ratio")) {
                float r = qo_attr_float(sg, n, "ratio", 0.5f);
                qo_val rv = qo_pass_add_const(sg, "", QO_F32, 0, NULL, &r);
                if (sg->nodes[n].nin < 2) qo_node_set_num_inputs(sg, n, 2);
                qo_set_input(sg, qo_node_use(sg, n, 1), rv);
                qo_node_remove_attr(sg, n, "ratio");
            } else if (op == QO_OP_TOPK && from < 10) {
                int64_t k = qo_attr_int(sg, n, "k", -1), one = 1;
                if (k < 0) continue;
                qo_val kv = qo_pass_add_const(sg, "", QO_I64, 1, &one, &k);
                qo_node_set_num_inputs(sg, n, 2);
                qo_set_input(sg, qo_node_use(sg, n, 1), kv);
                qo_node_remove_attr(sg, n, "k");
            } else if (op == QO_OP_RESIZE && from == 10 && sg->nodes[n].nin == 2) {
                qo_val scales = qo_node_input(sg, n, 1);
                int64_t zero = 0;
                float none = 0;
                qo_val roi = qo_pass_add_const(sg, "", QO_F32, 1, &zero, &none);
                qo_node_set_num_inputs(sg, n, 3);
                qo_set_input(sg, qo_node_use(sg, n, 1), roi);
                qo_set_input(sg, qo_node_use(sg, n, 2), scales);
                const qo_attr *mode = qo_node_attr(sg, n, "mode");
                bool nearest = !mode || (mode->kind == QO_ATTR_STRING && mode->u.s.n == 7 &&
                                         memcmp(mode->u.s.p, "nearest", 7) == 0);
                qo_node_set_attr_string(sg, n, "coordinate_transformation_mode", "asymmetric", 10);
                if (nearest) qo_node_set_attr_string(sg, n, "nearest_mode", "floor", 5);
            }
        }
    }
    if (st != QO_OK) return st;
    qo_module_set_opset(g->m, "", to);
    pc->changed = true;
    qo_pass_stat(pc, "opset-raised", to - from);
    return qo_pipeline_run(pc->cx, g->m, "canonicalize", NULL);
}
