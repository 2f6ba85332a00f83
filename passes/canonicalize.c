/* passes/canonicalize.c — one form per legacy construct (`canonicalize`).
 *
 *   Constant nodes            → initializers named like their output
 *   Identity                  → removed (uses read its input); kept when its output's name must stay
 *                               (graph output or captured by a body) and its input cannot take it
 *   Dropout (inference)       → removed when the mask is unused and it is not in training mode
 *   Clip{min,max} attributes  → Clip(x, min, max) inputs, only when the opset is >= 11
 *   Upsample                  → Resize (asymmetric; nearest_mode floor), only when the opset is >= 11
 *   BatchNormalization        → legacy attributes dropped where meaning is unchanged (spatial=1,
 *                               is_test, consumed_inputs)
 *   Pad with all pads zero    → removed (any mode: nothing is added; the output is the input)
 *   axes/split/starts/pads attributes on Squeeze, Unsqueeze, ReduceX, Split, Slice, Pad
 *                             → operand form, only when the model's opset requires that form
 * A rewrite never needs an opset the model does not import: the old form stays otherwise, so the
 * module stays valid for its own opset imports. */
#include "passes/pass_impl.h"

#include <string.h>

typedef struct cz {
    qo_pass_ctx *pc;
    qo_graph *g;
    int64_t opset;
    bool *captured;
    int64_t consts, identities, dropouts, clips, upsamples, bn_attrs, to_inputs, pads;
} cz;

static bool name_must_stay(const cz *c, qo_val v) {
    const qo_value *vd = &c->g->vals[v];
    return qo_pass_val_is_graph_output(c->g, v) || (vd->name && c->captured[vd->name]);
}

/* Replaces the single result `out` of node n by `in` and erases n. When out's name must stay, `in`
 * takes over the name if it can (a node result or initializer that is neither a graph input, graph
 * output nor captured); otherwise nothing happens. Returns whether n was removed. */
static bool bypass(cz *c, qo_node n, qo_val out, qo_val in) {
    qo_graph *g = c->g;
    if (!in || !out) return false;
    if (name_must_stay(c, out)) {
        const qo_value *iv = &g->vals[in];
        bool can_rename = (iv->def || (iv->flags & QO_VAL_CONST)) && !(iv->flags & QO_VAL_INPUT) &&
                          !(iv->flags & QO_VAL_CAPTURE) && !name_must_stay(c, in);
        if (!can_rename) return false;
        char *nm = qo_strdup(qo_val_name(g, out));
        qo_val_set_name(g, out, "");
        qo_val_set_name(g, in, nm);
        qo_free(nm);
        /* the declared type of the output is the better one to keep if the input has none */
        if (!g->vals[in].type) g->vals[in].type = g->vals[out].type;
        g->vals[in].flags |= g->vals[out].flags & QO_VAL_INFO;
    }
    qo_replace_all_uses(g, out, in);
    for (uint32_t i = 0; i < g->nodes[n].nout; i++) {
        qo_val o = qo_node_output(g, n, i);
        if (o && g->vals[o].nuses) return false; /* another result still used: cannot erase */
    }
    qo_node_erase(g, n);
    return true;
}

static void constant_node(cz *c, qo_node n) {
    qo_graph *g = c->g;
    qo_val out = qo_node_output(g, n, 0);
    if (!out) return;
    qo_cref cr = qo_pass_constant_node_tensor(g, n);
    if (!cr) return; /* sparse_value: keep the node */
    char *nm = qo_strdup(qo_val_name(g, out));
    qo_val nv = qo_graph_add_const(g, nm, cr);
    qo_free(nm);
    g->vals[nv].doc = g->vals[out].doc;
    g->vals[nv].flags |= g->vals[out].flags & QO_VAL_INFO;
    qo_replace_all_uses(g, out, nv);
    qo_node_erase(g, n);
    c->consts++;
}

static qo_val add_const_f32(cz *c, const char *name, int32_t rank, const int64_t *dims, const float *v) {
    return qo_pass_add_const(c->g, name, QO_F32, rank, dims, v);
}

static qo_val add_const_i64(cz *c, int32_t rank, const int64_t *dims, const int64_t *v) {
    return qo_pass_add_const(c->g, "", QO_I64, rank, dims, v);
}

/* Clip-6 attributes → Clip-11 inputs (only valid at opset >= 11). */
static void clip_attrs(cz *c, qo_node n) {
    qo_graph *g = c->g;
    const qo_attr *mn = qo_node_attr(g, n, "min"), *mx = qo_node_attr(g, n, "max");
    if (!mn && !mx) return;
    if (c->opset < 11 || g->nodes[n].nin > 1) return;
    /* min/max inputs must have the input's element type; attributes are float */
    qo_val x = qo_node_input(g, n, 0);
    qo_elem e = qo_type_elem(g->m, g->vals[x].type);
    if (e != QO_F32) return;
    float lo = mn ? mn->u.f : -3.402823466e+38f, hi = mx ? mx->u.f : 3.402823466e+38f;
    qo_val vlo = mn ? add_const_f32(c, "", 0, NULL, &lo) : 0;
    qo_val vhi = mx ? add_const_f32(c, "", 0, NULL, &hi) : 0;
    qo_node_set_num_inputs(g, n, vhi ? 3 : 2);
    qo_set_input(g, qo_node_use(g, n, 1), vlo);
    if (vhi) qo_set_input(g, qo_node_use(g, n, 2), vhi);
    qo_node_remove_attr(g, n, "min");
    qo_node_remove_attr(g, n, "max");
    c->clips++;
}

/* Upsample → Resize-11 with matching semantics (needs opset >= 11). */
static void upsample(cz *c, qo_node n) {
    qo_graph *g = c->g;
    if (c->opset < 11) { /* Resize-10 has no coordinate modes: keep the Upsample */
        qo_loc l = qo_node_loc(g, n);
        qo_note(c->pc->cx, &l, "Upsample kept: Resize with the same semantics needs opset 11, the model imports %lld",
                (long long)c->opset);
        return;
    }
    const qo_attr *mode = qo_node_attr(g, n, "mode");
    bool linear = mode && mode->kind == QO_ATTR_STRING && mode->u.s.n >= 6 &&
                  (memcmp(mode->u.s.p, "linear", 6) == 0 || memcmp(mode->u.s.p, "bilinear", 8) == 0);
    qo_val x = qo_node_input(g, n, 0), scales = qo_node_input(g, n, 1);
    if (!scales) {
        const qo_attr *sa = qo_node_attr(g, n, "scales");
        if (!sa || sa->kind != QO_ATTR_FLOATS) return;
        int64_t d = sa->n;
        scales = add_const_f32(c, "", 1, &d, sa->u.fs);
    }
    int64_t zero = 0;
    float none = 0;
    qo_val roi = add_const_f32(c, "", 1, &zero, &none);
    qo_val ins[3] = {x, roi, scales};
    g->insert_before = n;
    qo_node r = qo_node_new(g, QO_OP_RESIZE, NULL, NULL, 3, ins, 1);
    g->insert_before = 0;
    g->nodes[r].name = g->nodes[n].name;
    qo_node_set_attr_string(g, r, "mode", linear ? "linear" : "nearest", linear ? 6 : 7);
    qo_node_set_attr_string(g, r, "coordinate_transformation_mode", "asymmetric", 10);
    if (!linear) qo_node_set_attr_string(g, r, "nearest_mode", "floor", 5);
    qo_val out = qo_node_output(g, n, 0), nout = qo_node_output(g, r, 0);
    g->vals[nout].type = g->vals[out].type;
    g->vals[nout].doc = g->vals[out].doc;
    g->vals[nout].flags |= g->vals[out].flags & QO_VAL_INFO;
    char *nm = qo_strdup(qo_val_name(g, out));
    qo_replace_all_uses(g, out, nout);
    qo_node_erase(g, n);
    qo_val_set_name(g, nout, nm);
    qo_free(nm);
    c->upsamples++;
}

static void batchnorm(cz *c, qo_node n) {
    qo_graph *g = c->g;
    bool ch = false;
    if (qo_attr_int(g, n, "spatial", 1) == 1) ch |= qo_node_remove_attr(g, n, "spatial");
    ch |= qo_node_remove_attr(g, n, "consumed_inputs");
    /* is_test=1 only says "inference"; with one output that is what the node does anyway */
    if (qo_attr_int(g, n, "is_test", 0) == 1 && g->nodes[n].nout == 1) ch |= qo_node_remove_attr(g, n, "is_test");
    if (ch) c->bn_attrs++;
}

/* Moves an INTS attribute into operand slot `slot` as an int64 constant (legacy form in a model whose
 * opset requires the operand form). */
static bool attr_to_input(cz *c, qo_node n, const char *attr, uint32_t slot) {
    qo_graph *g = c->g;
    const qo_attr *a = qo_node_attr(g, n, attr);
    if (!a || a->kind != QO_ATTR_INTS) return false;
    if (qo_node_input(g, n, slot)) return false; /* both forms: leave it to the verifier */
    int64_t d = a->n;
    qo_val v = add_const_i64(c, 1, &d, a->u.is);
    if (g->nodes[n].nin <= slot) qo_node_set_num_inputs(g, n, slot + 1);
    qo_set_input(g, qo_node_use(g, n, slot), v);
    qo_node_remove_attr(g, n, attr);
    return true;
}

static void legacy_attrs(cz *c, qo_node n) {
    qo_graph *g = c->g;
    qo_op op = (qo_op)g->nodes[n].op;
    bool ch = false;
    switch (op) {
    case QO_OP_SQUEEZE:
    case QO_OP_UNSQUEEZE:
        if (c->opset >= 13) ch = attr_to_input(c, n, "axes", 1);
        break;
    case QO_OP_REDUCESUM:
        if (c->opset >= 13) ch = attr_to_input(c, n, "axes", 1);
        break;
    case QO_OP_REDUCEL1: case QO_OP_REDUCEL2: case QO_OP_REDUCELOGSUM: case QO_OP_REDUCELOGSUMEXP:
    case QO_OP_REDUCEMAX: case QO_OP_REDUCEMEAN: case QO_OP_REDUCEMIN: case QO_OP_REDUCEPROD:
    case QO_OP_REDUCESUMSQUARE:
        if (c->opset >= 18) ch = attr_to_input(c, n, "axes", 1);
        break;
    case QO_OP_SPLIT:
        if (c->opset >= 13) ch = attr_to_input(c, n, "split", 1);
        break;
    case QO_OP_SLICE:
        if (c->opset >= 10 && qo_node_attr(g, n, "starts") && qo_node_attr(g, n, "ends") &&
            g->nodes[n].nin == 1) {
            /* order matters: axes (slot 3) needs slots 1-2 first */
            ch = attr_to_input(c, n, "starts", 1);
            ch |= attr_to_input(c, n, "ends", 2);
            ch |= attr_to_input(c, n, "axes", 3);
            ch |= attr_to_input(c, n, "steps", 4);
        }
        break;
    case QO_OP_PAD:
        if (c->opset >= 11 && qo_node_attr(g, n, "pads") && g->nodes[n].nin == 1) {
            qo_val x = qo_node_input(g, n, 0);
            const qo_attr *va = qo_node_attr(g, n, "value");
            qo_elem e = qo_type_elem(g->m, g->vals[x].type);
            if (va && e != QO_F32) break; /* constant_value must have the input's type */
            ch = attr_to_input(c, n, "pads", 1);
            if (va) {
                float f = va->u.f;
                qo_val cv = add_const_f32(c, "", 0, NULL, &f);
                qo_node_set_num_inputs(g, n, 3);
                qo_set_input(g, qo_node_use(g, n, 2), cv);
                qo_node_remove_attr(g, n, "value");
            }
        }
        break;
    default:
        break;
    }
    if (ch) c->to_inputs++;
}

/* A Pad whose pads (attribute before opset 11, else a constant operand) are all zero. */
static bool pad_is_noop(const cz *c, qo_node n) {
    qo_graph *g = c->g;
    int64_t v[64], np;
    const qo_attr *a = qo_node_attr(g, n, "pads");
    if (a) {
        if (a->kind != QO_ATTR_INTS || a->n > 64) return false;
        np = a->n;
        for (int64_t i = 0; i < np; i++) v[i] = a->u.is[i];
    } else {
        qo_val p = g->nodes[n].nin > 1 ? qo_node_input(g, n, 1) : 0;
        if (!p) return false;
        np = qo_pass_const_ints(g, p, v, 64);
        if (np < 0) return false;
    }
    for (int64_t i = 0; i < np; i++)
        if (v[i] != 0) return false;
    return true;
}

static bool dropout_is_inference(const cz *c, qo_node n) {
    qo_graph *g = c->g;
    if (qo_node_input(g, n, 2)) { /* training_mode operand (opset 12) must be constant false */
        int64_t t;
        if (qo_pass_const_ints(g, qo_node_input(g, n, 2), &t, 1) != 1 || t != 0) return false;
    }
    if (c->opset < 7 && qo_attr_int(g, n, "is_test", 0) == 0) return false;
    qo_val mask = qo_node_output(g, n, 1);
    return !mask || (g->vals[mask].nuses == 0 && !name_must_stay(c, mask));
}

qo_status qo_pass_canonicalize(qo_pass_ctx *pc, qo_graph *g) {
    cz c = {.pc = pc, .g = g, .opset = qo_module_opset(g->m, "")};
    if (!c.opset) c.opset = 21;
    c.captured = qo_pass_captured_names(g);
    bool keep_identity = qo_pass_opt_bool(pc, "keep-identity");
    for (qo_node n = g->first, next; n; n = next) {
        next = g->nodes[n].next;
        qo_op op = (qo_op)g->nodes[n].op;
        switch (op) {
        case QO_OP_CONSTANT: constant_node(&c, n); break;
        case QO_OP_IDENTITY:
            if (!keep_identity && bypass(&c, n, qo_node_output(g, n, 0), qo_node_input(g, n, 0))) c.identities++;
            break;
        case QO_OP_DROPOUT:
            if (dropout_is_inference(&c, n)) {
                if (bypass(&c, n, qo_node_output(g, n, 0), qo_node_input(g, n, 0))) c.dropouts++;
            }
            break;
        case QO_OP_CLIP: clip_attrs(&c, n); break;
        case QO_OP_UPSAMPLE: upsample(&c, n); break;
        case QO_OP_BATCHNORMALIZATION: batchnorm(&c, n); break;
        case QO_OP_PAD:
            if (pad_is_noop(&c, n) && bypass(&c, n, qo_node_output(g, n, 0), qo_node_input(g, n, 0))) c.pads++;
            else legacy_attrs(&c, n);
            break;
        default: legacy_attrs(&c, n); break;
        }
    }
    qo_free(c.captured);
    int64_t total = c.consts + c.identities + c.dropouts + c.clips + c.upsamples + c.bn_attrs + c.to_inputs + c.pads;
    if (c.consts) qo_pass_stat(pc, "constants-materialized", c.consts);
    if (c.identities) qo_pass_stat(pc, "identities-removed", c.identities);
    if (c.dropouts) qo_pass_stat(pc, "dropouts-removed", c.dropouts);
    if (c.clips) qo_pass_stat(pc, "clip-attrs-to-inputs", c.clips);
    if (c.upsamples) qo_pass_stat(pc, "upsample-to-resize", c.upsamples);
    if (c.bn_attrs) qo_pass_stat(pc, "bn-legacy-attrs", c.bn_attrs);
    if (c.pads) qo_pass_stat(pc, "zero-pads-removed", c.pads);
    if (c.to_inputs) qo_pass_stat(pc, "attrs-to-inputs", c.to_inputs);
    if (total) pc->changed = true;
    return QO_OK;
}
