/* passes/quant/insert_quant.c — `insert-quant`: quantizers as QONNX Quant nodes, placed the way
 * Brevitas v0.12's graph-mode `quantize()` places them (brevitas/graph/quantize.py, quantize_impl.py),
 * in the same order of steps:
 *
 *   1. inputs       each float graph input gets a signed act quantizer     (inp_placeholder_handler)
 *   2. activations  each ReLU-like op (Relu, Clip with min >= 0) gets an unsigned act quantizer on
 *                   its result, and with act_ops "brevitas" (default) Sigmoid an unsigned and
 *                   Hardtanh (Clip with min < 0 and a max) a signed one
 *                                       (act_handler: QuantReLU, QuantSigmoid, QuantHardTanh)
 *   3. add outputs  an Add/Sub of two non-constant tensors whose result is read by anything but an
 *                   activation quantizer gets a quantizer, unsigned iff all its inputs are
 *                                                                          (add_output_quant_handler)
 *   4. alignment    the inputs of each Add/Sub (both non-constant) and Concat end in quantizers of
 *                   one "qopt_group" (one scale after calibration): an existing pending quantizer
 *                   found through carried ops joins the group, a Concat input aligns through its
 *                   inputs, otherwise one is inserted where the walk stopped; Concat also aligns
 *                   the sign                                                    (residual_handler)
 *   5. layers       Conv/ConvTranspose/Gemm/MatMul with a constant f32 weight: weight quantizer
 *                   resolved now (qo_quant_weight; per-channel axis Conv 0, ConvTranspose 1, Gemm
 *                   transB ? 0 : 1, MatMul last), pending bias quantizer for a constant 1-D bias
 *                   (scale = input scale x weight scale, resolved by quant-bias); a signed
 *                   quantizer on the activation input unless it is already quantized, looking
 *                   through the carried ops (config "carry"); a signed quantizer on the layer's
 *                   result when it is read by anything but an activation quantizer or is a graph
 *                   output                                   (layer_handler, requantize_output)
 *   6. outputs      each float graph output not quantized yet gets a signed quantizer
 *   7. first/last   keep_first_last_8bit: the first and last layers' weights, the first layer's input
 *                   quantizer and the last layer's output quantizer at 8 bits
 * Signed quantizers of steps 1, 3, 4 (inserted), 5 (input/output) and 6 are Brevitas QuantIdentity
 * quantizers: config io_bits sets their bits. Rules (op type / node-name glob) override the specs
 * of the quantizers a node owns or exclude the node. A graph output keeps its name: the quantizer's
 * result takes it and the float value becomes "<name>_float". Readers of a quantized value read the
 * quantizer's result, except the layer-input quantizers of step 5, which only the layer reads (as in
 * Brevitas). */
#include "passes/pass_impl.h"
#include "passes/quant/config.h"
#include "passes/quant/qgraph.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

enum { K_NONE = 0, K_INPUT, K_RELU, K_ADDOUT, K_ALIGN, K_LAYERIN, K_LAYEROUT, K_OUTPUT, K_WEIGHT, K_BIAS };

typedef struct iq {
    qo_ctx *cx;
    qo_graph *g;
    const qo_qconfig *c;
    uint8_t *kind;     /* by node id: K_* for quantizers this run inserted */
    uint32_t capkind;
    uint32_t ninserted;
    int64_t next_group;
} iq;

/* Specs that apply to one node after the rules. */
typedef struct nspec {
    bool exclude;
    bool w_axis;
    qo_qspec w, a, b;
} nspec;

static void node_spec(const iq *q, qo_node n, nspec *o) {
    const qo_qconfig *c = q->c;
    o->exclude = false;
    o->w = c->weights;
    o->a = c->acts;
    o->b = c->bias;
    o->w_axis = c->weights_axis;
    if (!n) return;
    const char *op = qo_node_op_type(q->g, n), *nm = qo_node_name(q->g, n);
    int32_t bits = 0;
    for (uint32_t i = 0; i < c->nrules; i++) {
        const qo_qrule *r = &c->rules[i];
        if (r->op && strcmp(r->op, op)) continue;
        if (r->name && fnmatch(r->name, nm, 0) != 0) continue;
        if (r->exclude) o->exclude = true;
        if (r->has_weights) {
            o->w = r->weights;
            o->w_axis = r->weights_axis;
        }
        if (r->has_acts) o->a = r->acts;
        if (r->has_bias) o->b = r->bias;
        if (r->bits) bits = r->bits;
    }
    if (bits) o->w.bits = o->a.bits = (uint8_t)bits;
}

static void set_kind(iq *q, qo_node n, int k) {
    if (n >= q->capkind) QO_GROW(q->kind, q->capkind, n + 64);
    q->kind[n] = (uint8_t)k;
}

static int kind_of(const iq *q, qo_node n) { return n < q->capkind ? q->kind[n] : K_NONE; }

static bool is_float_val(const qo_graph *g, qo_val v) {
    const qo_typedata *t = v ? qo_type_get(g->m, g->vals[v].type) : NULL;
    return t && t->kind == QO_TY_TENSOR && t->elem == QO_F32;
}

static bool is_const(const qo_graph *g, qo_val v) { return v && qo_pass_val_const(g, v) != NULL; }

/* ---- op classes ------------------------------------------------------------------------------ */
/* Lower bound of a Clip (opset >= 11: constant input 1; before: attribute "min"); false if none. */
static bool clip_min(const qo_graph *g, qo_node n, float *mn) {
    if (g->nodes[n].nin >= 2) {
        qo_val v = qo_node_input(g, n, 1);
        if (!v) return false;
        return qo_pass_const_floats(g, v, mn, 1) == 1;
    }
    const qo_attr *a = qo_node_attr(g, n, "min");
    if (!a || a->kind != QO_ATTR_FLOAT) return false;
    *mn = a->u.f;
    return true;
}

static bool is_relu_like(const qo_graph *g, qo_node n) {
    if (g->nodes[n].op == QO_OP_RELU) return true;
    float mn;
    return g->nodes[n].op == QO_OP_CLIP && clip_min(g, n, &mn) && mn >= 0.0f;
}

/* Clip with both bounds and min < 0: Brevitas nn.Hardtanh. */
static bool is_hardtanh(const qo_graph *g, qo_node n) {
    float mn;
    if (g->nodes[n].op != QO_OP_CLIP || !clip_min(g, n, &mn) || !(mn < 0.0f)) return false;
    if (g->nodes[n].nin >= 2) return g->nodes[n].nin >= 3 && qo_node_input(g, n, 2) && is_const(g, qo_node_input(g, n, 2));
    return qo_node_attr(g, n, "max") != NULL;
}

/* An activation op whose result gets a quantizer (Brevitas QUANT_ACT_MAP), and its sign. */
static bool is_act_op(const iq *q, qo_node n, bool *is_signed) {
    const qo_graph *g = q->g;
    *is_signed = false;
    if (is_relu_like(g, n)) return true;
    if (q->c->act_ops != QO_QACTOPS_BREVITAS) return false;
    if (g->nodes[n].op == QO_OP_SIGMOID) return true;
    *is_signed = is_hardtanh(g, n);
    return *is_signed;
}

static bool is_residual(const qo_graph *g, qo_node n) {
    qo_op op = g->nodes[n].op;
    if (op == QO_OP_ADD || op == QO_OP_SUB)
        return !is_const(g, qo_node_input(g, n, 0)) && !is_const(g, qo_node_input(g, n, 1)) &&
               is_float_val(g, qo_node_output(g, n, 0));
    if (op != QO_OP_CONCAT || !is_float_val(g, qo_node_output(g, n, 0))) return false;
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->nodes[n].nin; i++) k += !is_const(g, qo_node_input(g, n, i));
    return k >= 2;
}

/* Weighted layer: the weight input (1) is a constant f32 tensor. */
static bool is_layer(const qo_graph *g, qo_node n) {
    qo_op op = g->nodes[n].op;
    if (op != QO_OP_CONV && op != QO_OP_CONVTRANSPOSE && op != QO_OP_GEMM && op != QO_OP_MATMUL) return false;
    if (g->nodes[n].nin < 2) return false;
    qo_val w = qo_node_input(g, n, 1);
    const qo_constdata *cd = w ? qo_pass_val_const(g, w) : NULL;
    return cd && qo_type_elem(g->m, cd->type) == QO_F32 && qo_node_input(g, n, 0);
}

/* Pad with mode constant and a zero (or absent) pad value. */
static bool pad_zero(const qo_graph *g, qo_node n) {
    const qo_attr *m = qo_node_attr(g, n, "mode");
    if (m && m->kind == QO_ATTR_STRING && !(m->u.s.n == 8 && !memcmp(m->u.s.p, "constant", 8))) return false;
    if (g->nodes[n].nin >= 3 && qo_node_input(g, n, 2)) {
        float v;
        return qo_pass_const_floats(g, qo_node_input(g, n, 2), &v, 1) == 1 && v == 0.0f;
    }
    return qo_attr_float(g, n, "value", 0.0f) == 0.0f;
}

static bool resize_nearest(const qo_graph *g, qo_node n) {
    const qo_attr *m = qo_node_attr(g, n, "mode"); /* default: nearest */
    return !m || (m->kind == QO_ATTR_STRING && m->u.s.n == 7 && !memcmp(m->u.s.p, "nearest", 7));
}

/* Does the config look through n (its data input 0 -> result 0) when looking for a quantizer? */
static bool carried(const iq *q, qo_node n, qo_val v) {
    const qo_graph *g = q->g;
    if (qo_node_output(g, n, 0) != v) return false;
    switch ((qo_op)g->nodes[n].op) {
    case QO_OP_MAXPOOL: case QO_OP_IDENTITY: case QO_OP_DROPOUT: case QO_OP_DEPTHTOSPACE:
    case QO_OP_SPACETODEPTH: case QO_OP_RESHAPE: case QO_OP_TRANSPOSE:
        return true;
    case QO_OP_FLATTEN: case QO_OP_SQUEEZE: case QO_OP_UNSQUEEZE: case QO_OP_SLICE:
        return q->c->carry == QO_QCARRY_ALL;
    case QO_OP_PAD: return q->c->carry == QO_QCARRY_ALL && pad_zero(g, n);
    case QO_OP_RESIZE: return q->c->carry == QO_QCARRY_ALL && resize_nearest(g, n);
    default: return false;
    }
}

/* The Quant node that v comes from through carried ops (and, with carry "all", Relu on an
 * unsigned quantizer); 0 if none. *stop gets the value where the walk ended. */
static qo_node quant_source(const iq *q, qo_val v, qo_val *stop) {
    const qo_graph *g = q->g;
    for (int guard = 0; v && guard < 100000; guard++) {
        if (stop) *stop = v;
        qo_node d = g->vals[v].def;
        if (!d) return 0;
        if (qo_qnode_is_quant(g, d)) return d;
        if (q->c->carry == QO_QCARRY_ALL && g->nodes[d].op == QO_OP_RELU) {
            qo_node s = quant_source(q, qo_node_input(g, d, 0), NULL);
            return s && !qo_attr_int(g, s, "signed", 1) ? s : 0;
        }
        if (!carried(q, d, v)) return 0;
        v = qo_node_input(g, d, 0);
    }
    return 0;
}

/* Brevitas are_inputs_quantized_and_aligned for one value: quantized through carried ops, or an
 * Add/Sub/Concat whose inputs are all quantized by quantizers of one group. */
static bool is_quantized(const iq *q, qo_val v, int depth) {
    qo_val stop = 0;
    if (quant_source(q, v, &stop)) return true;
    const qo_graph *g = q->g;
    qo_node d = stop ? g->vals[stop].def : 0;
    if (!d || depth > 64 || !is_residual(g, d)) return false;
    int64_t grp = -1;
    for (uint32_t i = 0; i < g->nodes[d].nin; i++) {
        qo_val x = qo_node_input(g, d, i);
        if (!x || is_const(g, x)) continue;
        qo_node s = quant_source(q, x, NULL);
        if (!s) return false;
        int64_t gi = qo_qnode_group(g, s);
        if (!gi || (grp >= 0 && gi != grp)) return false;
        grp = gi;
    }
    return grp > 0;
}

/* Brevitas are_inputs_unsigned: every input comes from an unsigned quantizer (through carried ops
 * and Add/Sub/Concat). */
static bool inputs_unsigned(const iq *q, qo_node n, int depth) {
    const qo_graph *g = q->g;
    if (depth > 64) return false;
    for (uint32_t i = 0; i < g->nodes[n].nin; i++) {
        qo_val x = qo_node_input(g, n, i);
        if (!x || is_const(g, x)) continue;
        qo_val stop = 0;
        qo_node s = quant_source(q, x, &stop);
        if (s) {
            if (qo_attr_int(g, s, "signed", 1)) return false;
            continue;
        }
        qo_node d = g->vals[stop].def;
        if (!d || !is_residual(g, d) || !inputs_unsigned(q, d, depth + 1)) return false;
    }
    return true;
}

/* ---- building -------------------------------------------------------------------------------- */
/* True if a Quant node reads v (v is quantized already: insert-quant run twice adds nothing). */
static bool has_quant_reader(const qo_graph *g, qo_val v) {
    QO_FOR_EACH_USE(g, v, u) if (qo_qnode_is_quant(g, g->uses[u].owner)) return true;
    return false;
}

static bool read_by_output(const qo_graph *g, qo_val v) {
    QO_FOR_EACH_USE(g, v, u) if (!g->uses[u].owner) return true;
    return false;
}

/* Points the readers of x at y: node readers except the quantizer qn (all of them, or only `only`
 * when it is not 0), and graph outputs when `outputs` (y then takes x's name). */
static void rewire(iq *q, qo_val x, qo_val y, qo_node qn, qo_node only, bool outputs) {
    qo_graph *g = q->g;
    uint32_t cnt = 0, cap = 0;
    qo_use_id *us = NULL;
    bool out = false;
    QO_FOR_EACH_USE(g, x, u) {
        qo_node o = g->uses[u].owner;
        if (o == qn || (only && o != only) || (!o && !outputs)) continue;
        if (!o) out = true;
        QO_GROW(us, cap, cnt + 1);
        us[cnt++] = u;
    }
    for (uint32_t i = 0; i < cnt; i++) qo_set_input(g, us[i], y);
    qo_free(us);
    if (out && g->vals[x].name) {
        char *keep = qo_strdup(qo_val_name(g, x));
        char *fl = qo_pass_fresh_name(g, keep, "_float");
        qo_val_set_name(g, x, fl);
        qo_val_set_name(g, y, keep);
        qo_free(fl);
        qo_free(keep);
    }
}

/* Activation spec for a quantizer owned by node `owner` (0: the config's). */
static qo_qspec act_spec(const iq *q, qo_node owner, bool is_signed, bool identity) {
    nspec ns;
    node_spec(q, owner, &ns);
    qo_qspec s = ns.a;
    s.is_signed = is_signed;
    if (is_signed && s.zp == QO_QZP_STATS) s.zp = QO_QZP_ZERO; /* shifted quantizers are unsigned only */
    if (identity && q->c->io_bits) s.bits = (uint8_t)q->c->io_bits;
    if (s.bits == 1 && s.narrow) s.narrow = false;
    return s;
}

/* Inserts a pending quantizer on x (kind k) and rewires x's readers (see rewire). Returns the node
 * or 0 with an error reported. */
static qo_node insert_act(iq *q, qo_val x, const qo_qspec *s, int k, qo_node only, bool outputs) {
    qo_node n = qo_qnode_new(q->cx, q->g, x, s, 0, NULL, NULL);
    if (!n) return 0;
    set_kind(q, n, k);
    q->ninserted++;
    rewire(q, x, qo_node_output(q->g, n, 0), n, only, outputs);
    return n;
}

/* Rewrites a pending quantizer's spec: signed/narrow/rounding_mode/qopt_spec attributes and the bit
 * width constant (the result stays without qo_quant). */
static void respec(iq *q, qo_node n, const qo_qspec *s) {
    qo_graph *g = q->g;
    qo_node_set_attr_int(g, n, "signed", s->is_signed);
    qo_node_set_attr_int(g, n, "narrow", s->narrow);
    const char *rm = qo_round_qonnx_name((qo_round)s->round);
    qo_node_set_attr_string(g, n, "rounding_mode", rm, strlen(rm));
    char buf[512];
    qo_qspec_format(s, buf, sizeof buf);
    qo_node_set_attr_string(g, n, QO_QATTR_SPEC, buf, strlen(buf));
    qo_val old = qo_node_input(g, n, 3);
    float b = 0;
    if (qo_pass_const_floats(g, old, &b, 1) == 1 && b == (float)s->bits) return;
    float bits = (float)s->bits;
    const char *base = qo_val_name(g, qo_node_input(g, n, 0));
    char *nm = qo_pass_fresh_name(g, base[0] ? base : "v", "_bitwidth");
    qo_set_input(g, qo_node_use(g, n, 3), qo_pass_add_const(g, nm, QO_F32, 0, NULL, &bits));
    qo_free(nm);
    qo_pass_drop_unused_const(g, old);
}

/* A quantizer this pass may regroup / respec: pending, with a qopt_spec of an activation. */
static bool pending_act(const iq *q, qo_node n, qo_qspec *s) {
    if (!qo_qnode_is_pending(q->g, n)) return false;
    qo_ctx quiet = *q->cx;
    if (!qo_qnode_spec(&quiet, q->g, n, s)) return false;
    return s->role == QO_QROLE_ACT;
}

static void set_group(iq *q, qo_node n, int64_t grp) {
    qo_graph *g = q->g;
    int64_t old = qo_qnode_group(g, n);
    if (old == grp) return;
    if (old) { /* merge: every member of the old group joins the new one */
        QO_FOR_EACH_NODE(g, m)
            if (qo_qnode_is_quant(g, m) && qo_qnode_group(g, m) == old) qo_node_set_attr_int(g, m, QO_QATTR_GROUP, grp);
    }
    qo_node_set_attr_int(g, n, QO_QATTR_GROUP, grp);
}

/* ---- the steps --------------------------------------------------------------------------------- */
static qo_status step_inputs(iq *q) {
    qo_graph *g = q->g;
    uint32_t n = g->ninputs;
    qo_val *ins = qo_malloc(sizeof(qo_val) * (n ? n : 1));
    memcpy(ins, g->inputs, sizeof(qo_val) * n);
    qo_status st = QO_OK;
    for (uint32_t i = 0; i < n && st == QO_OK; i++) {
        qo_val x = ins[i];
        if (!is_float_val(g, x) || g->vals[x].cref || !g->vals[x].nuses || has_quant_reader(g, x)) continue;
        qo_qspec s = act_spec(q, 0, true, true);
        if (!insert_act(q, x, &s, K_INPUT, 0, false)) st = QO_ERR_USAGE;
    }
    qo_free(ins);
    return st;
}

/* Snapshot of the live nodes in program order (the steps insert nodes while they walk). */
static qo_node *snapshot(const qo_graph *g, uint32_t *cnt) {
    uint32_t n = 0, cap = 0;
    qo_node *v = NULL;
    QO_FOR_EACH_NODE(g, x) {
        QO_GROW(v, cap, n + 1);
        v[n++] = x;
    }
    *cnt = n;
    return v;
}

/* True if every reader of v is an activation quantizer or a ReLU-like op that gets one. */
static bool readers_quantize(const iq *q, qo_val v) {
    const qo_graph *g = q->g;
    if (read_by_output(g, v)) return false;
    QO_FOR_EACH_USE(g, v, u) {
        qo_node o = g->uses[u].owner;
        if (qo_qnode_is_quant(g, o)) continue;
        bool sg;
        if (q->c->relu_quant && is_act_op(q, o, &sg)) {
            nspec ns;
            node_spec(q, o, &ns);
            if (!ns.exclude) continue;
        }
        return false;
    }
    return true;
}

static qo_status step_relu(iq *q, const qo_node *nodes, uint32_t cnt) {
    qo_graph *g = q->g;
    for (uint32_t i = 0; i < cnt; i++) {
        qo_node n = nodes[i];
        bool sg;
        if (!is_act_op(q, n, &sg)) continue;
        qo_val y = qo_node_output(g, n, 0);
        if (!is_float_val(g, y) || !g->vals[y].nuses || has_quant_reader(g, y)) continue;
        nspec ns;
        node_spec(q, n, &ns);
        if (ns.exclude) continue;
        qo_qspec s = act_spec(q, n, sg, false);
        if (!insert_act(q, y, &s, K_RELU, 0, true)) return QO_ERR_USAGE;
    }
    return QO_OK;
}

static qo_status step_add_outputs(iq *q, const qo_node *nodes, uint32_t cnt) {
    qo_graph *g = q->g;
    for (uint32_t i = 0; i < cnt; i++) {
        qo_node n = nodes[i];
        qo_op op = g->nodes[n].op;
        if ((op != QO_OP_ADD && op != QO_OP_SUB) || !is_residual(g, n)) continue;
        nspec ns;
        node_spec(q, n, &ns);
        qo_val y = qo_node_output(g, n, 0);
        if (ns.exclude || !g->vals[y].nuses || readers_quantize(q, y)) continue;
        qo_qspec s = act_spec(q, n, !inputs_unsigned(q, n, 0), true);
        if (!insert_act(q, y, &s, K_ADDOUT, 0, true)) return QO_ERR_USAGE;
    }
    return QO_OK;
}

/* Puts the quantizer x comes from into group id (Brevitas recursive_input_handler): a pending act
 * quantizer found through carried ops joins it (made signed/unsigned like the group when align_sign);
 * a Concat is aligned through its inputs (with align_sign); otherwise a new quantizer is inserted
 * after the value where the walk stopped (after a resolved or imported quantizer's result, or after
 * the first op not carried), read by all that value's readers. */
static qo_status align_value(iq *q, qo_node owner, qo_val x, int64_t id, bool shared_signed, bool align_sign,
                             int depth) {
    qo_graph *g = q->g;
    qo_val stop = x;
    qo_node s = quant_source(q, x, &stop);
    qo_qspec sp;
    if (s && pending_act(q, s, &sp)) {
        if (align_sign && sp.is_signed != shared_signed) {
            sp.is_signed = shared_signed;
            if (shared_signed && sp.zp == QO_QZP_STATS) sp.zp = QO_QZP_ZERO;
            respec(q, s, &sp);
        }
        set_group(q, s, id);
        return QO_OK;
    }
    qo_node d = s ? 0 : g->vals[stop].def;
    if (d && g->nodes[d].op == QO_OP_CONCAT && is_residual(g, d) && depth < 64) {
        for (uint32_t k = 0; k < g->nodes[d].nin; k++) {
            qo_val y = qo_node_input(g, d, k);
            if (y && !is_const(g, y)) QO_TRY(align_value(q, owner, y, id, shared_signed, true, depth + 1));
        }
        return QO_OK;
    }
    qo_qspec ns = act_spec(q, owner, shared_signed, true);
    qo_node m = insert_act(q, stop, &ns, K_ALIGN, 0, true);
    if (!m) return QO_ERR_USAGE;
    qo_node_set_attr_int(g, m, QO_QATTR_GROUP, id);
    return QO_OK;
}

static qo_status step_align(iq *q, const qo_node *nodes, uint32_t cnt) {
    qo_graph *g = q->g;
    for (uint32_t i = 0; i < cnt; i++) {
        qo_node n = nodes[i];
        if (!is_residual(g, n)) continue;
        nspec ns;
        node_spec(q, n, &ns);
        if (ns.exclude) continue;
        bool cat = g->nodes[n].op == QO_OP_CONCAT;
        /* already aligned: all inputs quantized by one group (and one sign for Concat) */
        int64_t grp = -1;
        int sign = -1;
        bool aligned = true;
        for (uint32_t k = 0; k < g->nodes[n].nin && aligned; k++) {
            qo_val x = qo_node_input(g, n, k);
            if (!x || is_const(g, x)) continue;
            qo_node s = quant_source(q, x, NULL);
            int64_t gi = s ? qo_qnode_group(g, s) : 0;
            int si = s ? (int)qo_attr_int(g, s, "signed", 1) : 0;
            if (!s || !gi || (grp >= 0 && gi != grp) || (cat && sign >= 0 && si != sign)) aligned = false;
            grp = gi;
            sign = si;
        }
        if (aligned) continue;
        bool shared_signed = !inputs_unsigned(q, n, 0);
        int64_t id = ++q->next_group;
        for (uint32_t k = 0; k < g->nodes[n].nin; k++) {
            qo_val x = qo_node_input(g, n, k);
            if (x && !is_const(g, x)) QO_TRY(align_value(q, n, x, id, shared_signed, cat, 0));
        }
    }
    return QO_OK;
}

/* The constant behind a weight value (initializer or Constant node). */
static qo_cref weight_cref(const qo_graph *g, qo_val v) {
    if (g->vals[v].flags & QO_VAL_CONST) return g->vals[v].cref;
    qo_node d = g->vals[v].def;
    const qo_attr *a = d ? qo_node_attr(g, d, "value") : NULL;
    return a && a->kind == QO_ATTR_TENSOR ? a->u.t : 0;
}

/* Per-channel axis of a layer's weight (Brevitas: output channels). */
static int16_t layer_axis(const qo_graph *g, qo_node n, int32_t wrank) {
    switch ((qo_op)g->nodes[n].op) {
    case QO_OP_CONVTRANSPOSE: return 1;
    case QO_OP_GEMM: return qo_attr_int(g, n, "transB", 0) ? 0 : 1;
    case QO_OP_MATMUL: return (int16_t)(wrank - 1);
    default: return 0;
    }
}

static qo_status quant_layer(iq *q, qo_node n, bool first, bool last) {
    qo_graph *g = q->g;
    const qo_qconfig *c = q->c;
    nspec ns;
    node_spec(q, n, &ns);
    qo_loc loc = qo_node_loc(g, n);
    /* weight: resolved now */
    qo_val wv = qo_node_input(g, n, 1);
    qo_tensor t;
    QO_TRY(qo_tensor_from_const(q->cx, g->m, weight_cref(g, wv), &t));
    qo_qspec ws = ns.w;
    if (first || last) ws.bits = c->keep_first_last_8bit ? 8 : ws.bits;
    if (ws.per_channel && !ns.w_axis) ws.axis = layer_axis(g, n, t.rank);
    if (ws.per_channel && t.rank < 1) ws.per_channel = false;
    if (ws.per_channel && ws.axis >= t.rank) {
        int32_t rank = t.rank;
        qo_tensor_free(&t);
        return qo_error(q->cx, QO_ERR_USAGE, &loc,
                        "per-channel weight quantizer: axis %d is outside the rank (%d) of weight '%s'", ws.axis,
                        rank, qo_val_name(g, wv));
    }
    qo_qtensor qt;
    qo_status st = qo_quant_weight(q->cx, &loc, &ws, &t, &qt);
    qo_tensor_free(&t);
    if (st != QO_OK) return st;
    qo_node wq = qo_qnode_new(q->cx, g, wv, &ws, qt.nscale, qt.scales, qt.zps);
    qo_qtensor_free(&qt);
    if (!wq) return QO_ERR_USAGE;
    set_kind(q, wq, K_WEIGHT);
    q->ninserted++;
    qo_set_input(g, qo_node_use(g, n, 1), qo_node_output(g, wq, 0));
    /* bias: pending, per channel along its only axis when the weights are */
    qo_op op = g->nodes[n].op;
    qo_val bv = op != QO_OP_MATMUL && g->nodes[n].nin >= 3 ? qo_node_input(g, n, 2) : 0;
    const qo_constdata *bcd = bv ? qo_pass_val_const(g, bv) : NULL;
    const qo_typedata *bt = bcd ? qo_type_get(g->m, bcd->type) : NULL;
    bool plain_gemm = op != QO_OP_GEMM || (qo_attr_float(g, n, "alpha", 1.0f) == 1.0f &&
                                            qo_attr_float(g, n, "beta", 1.0f) == 1.0f);
    if (bt && bt->elem == QO_F32 && bt->rank == 1 && plain_gemm) {
        qo_qspec bs = ns.b;
        bs.per_channel = ws.per_channel;
        bs.axis = 0;
        qo_node bq = qo_qnode_new(q->cx, g, bv, &bs, 0, NULL, NULL);
        if (!bq) return QO_ERR_USAGE;
        set_kind(q, bq, K_BIAS);
        q->ninserted++;
        qo_set_input(g, qo_node_use(g, n, 2), qo_node_output(g, bq, 0));
    }
    /* activation input */
    qo_val x = qo_node_input(g, n, 0);
    if (c->layer_input_quant && is_float_val(g, x) && !is_quantized(q, x, 0)) {
        qo_node reuse = 0;
        QO_FOR_EACH_USE(g, x, u) {
            qo_node o = g->uses[u].owner;
            if (o && kind_of(q, o) == K_LAYERIN) reuse = o;
        }
        if (reuse) qo_set_input(g, qo_node_use(g, n, 0), qo_node_output(g, reuse, 0));
        else {
            qo_qspec s = act_spec(q, n, true, true);
            if (!insert_act(q, x, &s, K_LAYERIN, n, false)) return QO_ERR_USAGE;
        }
    }
    /* result read by something that does not quantize it (Brevitas requantize_output) */
    qo_val y = qo_node_output(g, n, 0);
    if (c->output_quant && is_float_val(g, y) && g->vals[y].nuses && !readers_quantize(q, y)) {
        qo_qspec s = act_spec(q, n, true, true);
        if (!insert_act(q, y, &s, K_LAYEROUT, 0, true)) return QO_ERR_USAGE;
    }
    return QO_OK;
}

static qo_status step_outputs(iq *q) {
    qo_graph *g = q->g;
    for (uint32_t i = 0; i < g->noutputs; i++) {
        qo_val v = qo_graph_output(g, i);
        if (!is_float_val(g, v) || is_quantized(q, v, 0)) continue;
        qo_node d = g->vals[v].def;
        if (!d) continue; /* a graph input or constant passed through */
        nspec ns;
        node_spec(q, d, &ns);
        if (ns.exclude) continue;
        qo_qspec s = act_spec(q, d, true, true);
        if (!insert_act(q, v, &s, K_OUTPUT, 0, true)) return QO_ERR_USAGE;
    }
    return QO_OK;
}

/* keep_first_last_8bit: the first layer's input quantizer and the last one's output quantizers. */
static void first_last_acts(iq *q, qo_node first, qo_node last) {
    qo_graph *g = q->g;
    qo_qspec s;
    if (first) {
        qo_node src = quant_source(q, qo_node_input(g, first, 0), NULL);
        if (src && kind_of(q, src) != K_RELU && pending_act(q, src, &s) && s.bits != 8) {
            s.bits = 8;
            respec(q, src, &s);
        }
    }
    if (last) {
        qo_val y = qo_node_output(g, last, 0);
        QO_FOR_EACH_USE(g, y, u) {
            qo_node o = g->uses[u].owner;
            int k = o ? kind_of(q, o) : K_NONE;
            if ((k == K_LAYEROUT || k == K_OUTPUT) && pending_act(q, o, &s) && s.bits != 8) {
                s.bits = 8;
                respec(q, o, &s);
            }
        }
    }
}

qo_status qo_insert_quant(qo_ctx *cx, qo_graph *g, const qo_qconfig *c, uint32_t *ninserted) {
    iq q = {.cx = cx, .g = g, .c = c};
    if (ninserted) *ninserted = 0;
    /* groups already in the graph keep their ids */
    QO_FOR_EACH_NODE(g, n) if (qo_qnode_is_quant(g, n) && qo_qnode_group(g, n) > q.next_group) q.next_group = qo_qnode_group(g, n);
    /* check every spec once up front, so bad configs fail before the graph changes */
    QO_TRY(qo_qspec_check(cx, NULL, &c->weights));
    QO_TRY(qo_qspec_check(cx, NULL, &c->acts));
    QO_TRY(qo_qspec_check(cx, NULL, &c->bias));
    uint32_t cnt;
    qo_node *nodes = snapshot(g, &cnt);
    qo_node first = 0, last = 0;
    for (uint32_t i = 0; i < cnt; i++) {
        if (!is_layer(g, nodes[i])) continue;
        nspec ns;
        node_spec(&q, nodes[i], &ns);
        if (ns.exclude) continue;
        if (!first) first = nodes[i];
        last = nodes[i];
    }
    qo_status st = QO_OK;
    if (c->input_quant) st = step_inputs(&q);
    if (st == QO_OK && c->relu_quant) st = step_relu(&q, nodes, cnt);
    if (st == QO_OK && c->add_output_quant) st = step_add_outputs(&q, nodes, cnt);
    if (st == QO_OK && c->align_residual) st = step_align(&q, nodes, cnt);
    for (uint32_t i = 0; i < cnt && st == QO_OK; i++) {
        qo_node n = nodes[i];
        if (!is_layer(g, n)) continue;
        nspec ns;
        node_spec(&q, n, &ns);
        if (ns.exclude) continue;
        st = quant_layer(&q, n, n == first, n == last);
    }
    if (st == QO_OK && c->output_quant) st = step_outputs(&q);
    if (st == QO_OK && c->keep_first_last_8bit) first_last_acts(&q, first, last);
    qo_free(nodes);
    qo_free(q.kind);
    if (ninserted) *ninserted = q.ninserted;
    return st;
}

/* ---- the passes ---------------------------------------------------------------------------------- */
qo_status qo_pass_insert_quant(qo_pass_ctx *pc, qo_graph *g) {
    qo_qconfig c;
    qo_qconfig_default(&c);
    qo_status st = QO_OK;
    const char *file = qo_pass_opt_str(pc, "config");
    if (file && file[0]) st = qo_qconfig_load(pc->cx, file, &c);
    static const char *const keys[] = {"weights", "acts", "bias"};
    for (int i = 0; i < 3 && st == QO_OK; i++) {
        const char *v = qo_pass_opt_str(pc, keys[i]);
        if (v && v[0]) st = qo_qconfig_set(pc->cx, &c, keys[i], v);
    }
    uint32_t n = 0;
    if (st == QO_OK) st = qo_insert_quant(pc->cx, g, &c, &n);
    qo_qconfig_free(&c);
    if (n) {
        pc->changed = true;
        qo_pass_stat(pc, "quantizers-inserted", n);
    }
    return st;
}
