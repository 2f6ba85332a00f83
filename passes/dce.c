/* passes/dce.c — dead code elimination: nodes whose results are all unused (and not graph outputs,
 * not captured by a nested graph), unused trailing optional outputs of a few ops, unused
 * initializers and unused captures. Graph inputs are kept (they are the model's interface).
 * Nodes holding subgraphs are kept: erasing them would orphan their bodies in the module. */
#include "passes/pass_impl.h"

static bool node_has_graph_attr(const qo_graph *g, qo_node n) {
    const qo_nodedata *nd = &g->nodes[n];
    for (uint32_t i = 0; i < nd->nattr; i++) {
        uint8_t k = g->attrs[nd->attr0 + i].kind;
        if (k == QO_ATTR_GRAPH || k == QO_ATTR_GRAPHS) return true;
    }
    return false;
}

static bool val_live(const qo_graph *g, qo_val v, const bool *captured) {
    const qo_value *vd = &g->vals[v];
    return vd->nuses > 0 || (vd->name && captured[vd->name]);
}

/* First output index from which unused outputs may be dropped (they are optional), or -1.
 * Not BatchNormalization: onnxruntime picks training mode from its output count before opset 14. */
static int optional_outputs_from(const qo_graph *g, qo_node n) {
    switch (g->nodes[n].op) {
    case QO_OP_DROPOUT:            /* mask */
    case QO_OP_MAXPOOL:            /* indices */
    case QO_OP_LAYERNORMALIZATION: /* mean, inv std dev */
        return 1;
    default:
        return -1;
    }
}

qo_status qo_pass_dce(qo_pass_ctx *pc, qo_graph *g) {
    bool *captured = qo_pass_captured_names(g);
    int64_t removed = 0, outs = 0, consts = 0, caps = 0;
    /* reverse program order: a dead node's inputs may become dead in the same sweep */
    for (qo_node n = g->last, prev; n; n = prev) {
        prev = g->nodes[n].prev;
        const qo_nodedata *nd = &g->nodes[n];
        if (node_has_graph_attr(g, n)) continue; /* bodies would be orphaned */
        bool live = false;
        for (uint32_t i = 0; i < nd->nout && !live; i++) {
            qo_val v = g->outs[nd->out0 + i];
            live = v && val_live(g, v, captured);
        }
        if (!live) {
            qo_node_erase(g, n);
            removed++;
            continue;
        }
        int from = optional_outputs_from(g, n);
        if (from < 0) continue;
        /* drop unused optional outputs from the end only, so positions of used ones stay */
        for (uint32_t i = nd->nout; i-- > (uint32_t)from;) {
            qo_val v = g->outs[g->nodes[n].out0 + i];
            if (!v) continue;
            if (val_live(g, v, captured)) break;
            qo_node_drop_output(g, n, i);
            outs++;
        }
    }
    /* initializers: iterate over a copy, erasing edits the list */
    for (uint32_t i = g->nconsts; i-- > 0;) {
        qo_val v = g->consts[i];
        const qo_value *vd = &g->vals[v];
        if ((vd->flags & QO_VAL_INPUT) || val_live(g, v, captured)) continue;
        qo_val_erase(g, v);
        consts++;
    }
    for (uint32_t i = g->ncaptures; i-- > 0;) {
        qo_val v = g->captures[i];
        if (val_live(g, v, captured)) continue;
        qo_val_erase(g, v);
        caps++;
    }
    qo_free(captured);
    if (removed) qo_pass_stat(pc, "nodes-removed", removed);
    if (outs) qo_pass_stat(pc, "outputs-dropped", outs);
    if (consts) qo_pass_stat(pc, "constants-removed", consts);
    if (caps) qo_pass_stat(pc, "captures-removed", caps);
    if (removed || outs || consts || caps) pc->changed = true;
    return QO_OK;
}
