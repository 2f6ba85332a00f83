/* passes/train/trainer.c — the compiled training step (trainer.h). */
#include "passes/train/trainer.h"

#include "backends/llvm/jit.h"
#include "passes/pass.h"
#include "passes/quant/calib.h"
#include "passes/quant/config.h"
#include "passes/quant/qgraph.h"

#include "passes/pass_impl.h"
#include "runtime/ref/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { IN_DATA, IN_LABELS, IN_TEACHER, IN_LR, IN_ADAMSTEP, IN_STATE };

typedef struct step_fn {
    int64_t batch;
    qo_module *m;        /* the step module for this batch size (same inputs/outputs in every slot) */
    qo_jit *j;
} step_fn;

struct qo_trainer {
    qo_ctx *cx;
    qo_module *fwd;      /* private copy of the forward model */
    qo_module *m;        /* while building: the first step module (then fn[0].m) */
    qo_train_opts o;
    uint32_t nin, nout;
    uint8_t *kind;       /* per step input: IN_* */
    int32_t *fed_by;     /* per step input: output index "<x>_new", -1 none */
    qo_tensor *state;    /* per step input: current value (IN_STATE, IN_LR, IN_ADAMSTEP) */
    int loss_out, logits_out;
    step_fn fn[2];
    qo_jit *tj[2];       /* the teacher compiled for batch sizes tb[0], tb[1] */
    int64_t tb[2];
    int64_t steps;
};

static qo_status fail_graph(qo_ctx *cx, const char *what) {
    return qo_error(cx, QO_ERR_USAGE, NULL, "training: %s", what);
}

/* Parameter list: float initializers except Quant zero points and bit widths, bias scales, (unless
 * learn_scales) any Quant scale, and constants in roles PyTorch does not train (below). */
static const char **param_names(const qo_graph *g, bool learn_scales, uint32_t *np) {
    const char **p = qo_calloc(g->nconsts + 1, sizeof(char *));
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->nconsts; i++) {
        qo_val v = g->consts[i];
        if (g->vals[v].flags & QO_VAL_DEAD) continue;
        qo_elem e = qo_type_elem(g->m, g->vals[v].type);
        if (e != QO_F32) continue;
        bool ok = true;
        const qo_typedata *td = qo_type_get(g->m, g->vals[v].type);
        bool scalar = td && td->rank == 0;
        QO_FOR_EACH_USE(g, v, u) {
            qo_node n = g->uses[u].owner;
            if (!n) continue;
            uint32_t slot = u - g->nodes[n].in0;
            qo_op op = g->nodes[n].op;
            /* what PyTorch would not train either: exponents and bases of Pow (a BatchNorm or
               TensorNorm exported in eval mode leaves Pow(running_var + eps, 0.5)), Clip bounds,
               BatchNormalization's running mean and variance, and rank-0 constants outside Quant
               nodes (traced Python numbers: x * 2 - 1; parameters have a shape) */
            if (op == QO_OP_POW || (op == QO_OP_CLIP && slot >= 1) || (op == QO_OP_BATCHNORMALIZATION && slot >= 3))
                ok = false;
            if (!qo_qnode_is_quant(g, n)) {
                if (scalar) ok = false;
                continue;
            }
            if (slot >= 2) ok = false;
            if (slot == 1) {
                qo_qspec s;
                qo_ctx quiet;
                qo_ctx_init(&quiet);
                quiet.quiet = true;
                bool bias = qo_qnode_spec(&quiet, g, n, &s) && s.role == QO_QROLE_BIAS;
                if (bias || !learn_scales) ok = false;
            }
        }
        if (ok && g->vals[v].nuses && qo_val_name(g, v)[0]) p[k++] = qo_val_name(g, v);
    }
    *np = k;
    return p;
}

/* One default-domain node with result type ty. */
static qo_val kd_node(qo_graph *g, qo_op op, qo_val a, qo_val b, qo_type ty) {
    qo_val ins[2] = {a, b};
    qo_node n = qo_node_new(g, op, NULL, NULL, b ? 2 : 1, ins, 1);
    qo_val y = qo_node_output(g, n, 0);
    g->vals[y].type = ty;
    return y;
}

/* Brevitas's learned bit width (BitWidthParameter with min_bit_width 2 and IntRestrictValue(RoundSte)):
 * every weight and activation Quant with a constant scalar bit width b >= 2 reads
 * round_ste(abs_binary_sign_grad(o) + 2) instead, where the new parameter o (the step input
 * "<Quant output>" QO_TRAIN_BITS_SUFFIX) starts at b - 2. abs_binary_sign_grad is spelled o * (o < 0 ?
 * -1 : 1): |o| forward, the binary sign (+1 at 0, so a 2-bit start can grow) backward; the Round is a
 * straight-through estimator in passes/autodiff since it feeds only bit widths. Appends the
 * parameter names (module-owned) to pn[*np..] (room for one per Quant). */
static void add_learned_bits(qo_graph *g, const char **pn, uint32_t *np) {
    qo_module *m = g->m;
    qo_type t0 = qo_type_tensor(m, QO_F32, 0, NULL, NULL), tb = qo_type_tensor(m, QO_BOOL, 0, NULL, NULL);
    float zero = 0.0f, neg = -1.0f, pos = 1.0f, base = 2.0f;
    qo_val zc = 0, nc = 0, pc = 0, bc = 0;
    char nm[512];
    QO_FOR_EACH_NODE(g, q) {
        if (!qo_qnode_is_quant(g, q) || g->nodes[q].op != QO_OP_QONNX_QUANT) continue;
        qo_qspec sp;
        qo_ctx quiet;
        qo_ctx_init(&quiet);
        quiet.quiet = true;
        if (qo_qnode_spec(&quiet, g, q, &sp) && sp.role == QO_QROLE_BIAS) continue;
        qo_use_id u = qo_node_use(g, q, 3);
        float b;
        if (!u || qo_pass_const_floats(g, g->uses[u].val, &b, 1) != 1 || !(b >= 2.0f) || !isfinite(b)) continue;
        if (!zc) {
            zc = qo_pass_add_const(g, "qopt_bits_zero", QO_F32, 0, NULL, &zero);
            nc = qo_pass_add_const(g, "qopt_bits_neg", QO_F32, 0, NULL, &neg);
            pc = qo_pass_add_const(g, "qopt_bits_pos", QO_F32, 0, NULL, &pos);
            bc = qo_pass_add_const(g, "qopt_bits_min", QO_F32, 0, NULL, &base);
        }
        snprintf(nm, sizeof nm, "%s%s", qo_val_name(g, qo_node_output(g, q, 0)), QO_TRAIN_BITS_SUFFIX);
        float off = b - base;
        qo_val o = qo_pass_add_const(g, nm, QO_F32, 0, NULL, &off);
        qo_node saved = g->insert_before;
        g->insert_before = q;
        qo_val lt = kd_node(g, QO_OP_LESS, o, zc, tb);
        qo_val ins[3] = {lt, nc, pc};
        qo_node wn = qo_node_new(g, QO_OP_WHERE, NULL, NULL, 3, ins, 1);
        qo_val sg = qo_node_output(g, wn, 0);
        g->vals[sg].type = t0;
        qo_val bits = kd_node(g, QO_OP_ROUND, kd_node(g, QO_OP_ADD, kd_node(g, QO_OP_MUL, o, sg, t0), bc, t0), 0, t0);
        g->insert_before = saved;
        qo_set_input(g, u, bits);
        pn[(*np)++] = qo_val_name(g, o);
    }
}

/* The scale value of the per-tensor, zero-point-free Quant that v reads through scale-preserving ops
 * (qo_calib_input_scale's walk, on the nodes instead of the types), or 0. */
static qo_val input_scale_val(const qo_graph *g, qo_val v) {
    for (int hops = 0; v && hops < 64; hops++) {
        qo_node d = g->vals[v].def;
        if (!d) return 0;
        if (qo_qnode_is_quant(g, d)) {
            if (g->nodes[d].op != QO_OP_QONNX_QUANT || g->nodes[d].nin < 4) return 0;
            qo_val sc = qo_node_input(g, d, 1);
            float zp = 1;
            const qo_typedata *st = qo_type_get(g->m, g->vals[sc].type);
            if (!st || st->kind != QO_TY_TENSOR || qo_type_numel(g->m, g->vals[sc].type) != 1) return 0;
            if (qo_pass_const_floats(g, qo_node_input(g, d, 2), &zp, 1) != 1 || zp != 0.0f) return 0;
            return sc;
        }
        if (!qo_quant_keeps_scale((qo_op)g->nodes[d].op) || g->vals[v].res != 0) return 0;
        v = qo_node_input(g, d, 0);
    }
    return 0;
}

/* Bias scales follow the learned scales every step, as Brevitas's IntBias (scale = input scale x
 * weight scale, the accumulator's): each bias Quant (qopt_spec role bias) of a Conv, ConvTranspose
 * or Gemm whose input comes from a per-tensor zero-point-free Quant and whose weight is a Quant reads
 * Reshape(Mul(s_in, s_w)) (the float32 product quant-bias computes at export) instead of its PTQ
 * constant, and moves right before the layer; gradients reach both scales through it. Other biases
 * keep their constant scale. */
static void bias_scales_per_step(qo_graph *g) {
    qo_module *m = g->m;
    uint32_t nq = 0, k = 0;
    QO_FOR_EACH_NODE(g, n) nq += qo_qnode_is_quant(g, n);
    qo_node *qs = qo_calloc(nq + 1, sizeof *qs); /* collected first: the loop below moves nodes */
    QO_FOR_EACH_NODE(g, n) if (qo_qnode_is_quant(g, n)) qs[k++] = n;
    for (uint32_t i = 0; i < k; i++) {
        qo_node q = qs[i];
        if (g->nodes[q].op != QO_OP_QONNX_QUANT || g->nodes[q].nin < 4) continue;
        qo_qspec sp;
        qo_ctx quiet;
        qo_ctx_init(&quiet);
        quiet.quiet = true;
        if (!qo_qnode_spec(&quiet, g, q, &sp) || sp.role != QO_QROLE_BIAS) continue;
        qo_val y = qo_node_output(g, q, 0);
        qo_node L = 0;
        QO_FOR_EACH_USE(g, y, u) {
            qo_node o = g->uses[u].owner;
            qo_op op = o ? (qo_op)g->nodes[o].op : QO_OP_UNKNOWN;
            if (o && (op == QO_OP_CONV || op == QO_OP_CONVTRANSPOSE || op == QO_OP_GEMM) && u == qo_node_use(g, o, 2)) L = o;
        }
        if (!L || g->vals[y].nuses != 1) continue;
        qo_node wq = qo_qnode_of(g, qo_node_input(g, L, 1));
        qo_val sin = input_scale_val(g, qo_node_input(g, L, 0));
        if (!wq || !sin || g->nodes[wq].op != QO_OP_QONNX_QUANT) continue;
        qo_val sw = qo_node_input(g, wq, 1), sb = qo_node_input(g, q, 1);
        int64_t nw = qo_type_numel(m, g->vals[sw].type), nb = qo_type_numel(m, g->vals[sb].type);
        const qo_typedata *bt = qo_type_get(m, g->vals[sb].type), *wt = qo_type_get(m, g->vals[sw].type);
        const qo_typedata *it = qo_type_get(m, g->vals[sin].type);
        if (!bt || !wt || !it || it->rank > wt->rank || nw < 1 || (nw != 1 && nw != nb)) continue;
        /* a per-channel weight scale must run along the layer's output channels (quant-bias checks it too) */
        qo_op lop = (qo_op)g->nodes[L].op;
        int want = lop == QO_OP_CONVTRANSPOSE ? 1 : lop == QO_OP_GEMM ? (qo_attr_int(g, L, "transB", 0) ? 0 : 1) : 0;
        bool along = nw == 1;
        for (int d = 0; !along && d < wt->rank; d++) along = wt->dims[d] == nw && d == want;
        if (!along) continue;
        qo_node saved = g->insert_before;
        g->insert_before = L;
        qo_val prod = kd_node(g, QO_OP_MUL, sin, sw, g->vals[sw].type);
        if (bt->rank != wt->rank || (bt->rank > 0 && memcmp(bt->dims, wt->dims, sizeof(int64_t) * (size_t)bt->rank))) {
            int64_t sh[QO_MAX_RANK] = {0}, one = bt->rank;
            if (bt->rank > 0) memcpy(sh, bt->dims, sizeof(int64_t) * (size_t)bt->rank);
            qo_val shc = qo_pass_add_const(g, NULL, QO_I64, 1, &one, sh);
            prod = kd_node(g, QO_OP_RESHAPE, prod, shc, g->vals[sb].type);
        }
        g->insert_before = saved;
        qo_node_move_before(g, q, L);
        qo_set_input(g, qo_node_use(g, q, 1), prod);
    }
    qo_free(qs);
}

/* Replaces the loss ce (cross-entropy, renamed "ce_loss") by alpha * T^2 / N * sum(pt * (lt - ls)) +
 * (1 - alpha) * ce, with ls / lt the log-softmax of the logits / the "teacher_logits" input over T and
 * pt = exp(lt) (see qo_train_opts). Returns the new loss value. */
static qo_val add_distill(qo_graph *g, const qo_train_opts *o, qo_val logits, qo_val ce, int64_t batch, int64_t ncls) {
    qo_module *m = g->m;
    int64_t d2[2] = {batch, ncls};
    qo_type t2 = qo_type_tensor(m, QO_F32, 2, d2, NULL), t0 = qo_type_tensor(m, QO_F32, 0, NULL, NULL);
    qo_val tl = qo_graph_add_input(g, "teacher_logits", t2);
    float T = o->distill_temp, a = o->distill_alpha;
    float kd_w = (float)((double)a * (double)T * (double)T / (double)batch), ce_w = 1.0f - a;
    qo_val Tc = qo_pass_add_const(g, "qopt_distill_temp", QO_F32, 0, NULL, &T);
    qo_val kw = qo_pass_add_const(g, "qopt_distill_kd_weight", QO_F32, 0, NULL, &kd_w);
    qo_val cw = qo_pass_add_const(g, "qopt_distill_ce_weight", QO_F32, 0, NULL, &ce_w);
    qo_val ls = kd_node(g, QO_OP_LOGSOFTMAX, kd_node(g, QO_OP_DIV, logits, Tc, t2), 0, t2);
    qo_val lt = kd_node(g, QO_OP_LOGSOFTMAX, kd_node(g, QO_OP_DIV, tl, Tc, t2), 0, t2);
    qo_node_set_attr_int(g, g->vals[ls].def, "axis", 1);
    qo_node_set_attr_int(g, g->vals[lt].def, "axis", 1);
    qo_val pt = kd_node(g, QO_OP_EXP, lt, 0, t2);
    qo_val kl = kd_node(g, QO_OP_REDUCESUM, kd_node(g, QO_OP_MUL, pt, kd_node(g, QO_OP_SUB, lt, ls, t2), t2), 0, t0);
    qo_node_set_attr_int(g, g->vals[kl].def, "keepdims", 0);
    qo_val_set_name(g, ce, "ce_loss");
    qo_val loss = kd_node(g, QO_OP_ADD, kd_node(g, QO_OP_MUL, kl, kw, t0), kd_node(g, QO_OP_MUL, ce, cw, t0), t0);
    qo_val_set_name(g, loss, "loss");
    return loss;
}

/* Builds the training-step module for batches of `batch` samples (static shapes: autodiff needs them). */
static qo_status build_step(qo_trainer *t, int64_t batch, qo_module **out) {
    qo_ctx *cx = t->cx;
    qo_module *m = NULL;
    QO_TRY(qo_calib_clone(cx, t->fwd, &m));
    qo_status st = QO_OK;
    qo_graph *g = qo_module_main(m);
    if (!g || !g->noutputs || g->ninputs != 1) {
        st = fail_graph(cx, "the model must have one input and the logits as output 0");
        goto fail;
    }
    const qo_typedata *it = qo_type_get(m, g->vals[g->inputs[0]].type);
    if (!it || it->kind != QO_TY_TENSOR || it->rank < 1) {
        st = fail_graph(cx, "the model input needs a known rank");
        goto fail;
    }
    int64_t dims[QO_MAX_RANK];
    memcpy(dims, it->dims, sizeof(int64_t) * (size_t)it->rank);
    dims[0] = batch;
    g->vals[g->inputs[0]].type = qo_type_tensor(m, (qo_elem)it->elem, it->rank, dims, NULL);
    st = qo_pipeline_run(cx, m, "shape-infer", NULL);
    if (st != QO_OK) goto fail;
    qo_val logits = qo_graph_output(g, 0);
    const qo_typedata *lt = qo_type_get(m, g->vals[logits].type);
    if (!lt || lt->rank != 2) {
        st = fail_graph(cx, "graph output 0 must be the logits, a [N, C] tensor");
        goto fail;
    }
    qo_val labels = qo_graph_add_input(g, "labels", qo_type_tensor(m, QO_I64, 1, &batch, NULL));
    qo_val ins[2] = {logits, labels};
    qo_node ce = qo_node_new(g, QO_OP_TRAIN_SOFTMAXCE, QO_TRAIN_DOMAIN, "SoftmaxCrossEntropy", 2, ins, 1);
    qo_node_set_name(g, ce, "qopt_train_loss");
    qo_val loss = qo_node_output(g, ce, 0);
    qo_val_set_name(g, loss, "loss");
    g->vals[loss].type = qo_type_tensor(m, QO_F32, 0, NULL, NULL);
    if (!qo_module_opset(m, QO_TRAIN_DOMAIN)) qo_module_set_opset(m, QO_TRAIN_DOMAIN, 1);
    uint32_t np, nq = 0;
    const char **pn = param_names(g, t->o.learn_scales, &np);
    if (t->o.learn_bits) {
        QO_FOR_EACH_NODE(g, q) nq += qo_qnode_is_quant(g, q);
        const char **all = qo_calloc(np + nq + 1, sizeof *all);
        memcpy(all, pn, np * sizeof *pn);
        qo_free(pn);
        pn = all;
    }
    if (t->o.teacher) loss = add_distill(g, &t->o, logits, loss, batch, lt->dims[1]); /* after param_names: its
                                                                                   constants are not trained */
    qo_graph_add_output(g, loss);
    /* learned scales enter their Quant nodes through Abs, as Brevitas's abs_binary_sign_grad: the
       effective scale is |s|, so an update that crosses zero cannot produce a negative scale */
    for (uint32_t i = 0; i < np; i++) {
        qo_val v = qo_graph_find(g, pn[i]);
        if (!v) continue;
        qo_use_id u = g->vals[v].first_use;
        while (u) {
            qo_use_id next = g->uses[u].next;
            qo_node q = g->uses[u].owner;
            if (q && qo_qnode_is_quant(g, q) && u == qo_node_use(g, q, 1)) {
                qo_node saved = g->insert_before;
                g->insert_before = q;
                qo_node ab = qo_node_new(g, QO_OP_ABS, NULL, NULL, 1, &v, 1);
                g->insert_before = saved;
                g->vals[qo_node_output(g, ab, 0)].type = g->vals[v].type;
                qo_set_input(g, u, qo_node_output(g, ab, 0));
            }
            u = next;
        }
    }
    bias_scales_per_step(g);
    if (t->o.learn_bits) add_learned_bits(g, pn, &np); /* after the Abs insertion: its parameters are not scales */
    qo_autodiff_opts ao = {.loss = "loss", .params = pn, .nparams = np, .learn_bitwidth = t->o.learn_bits};
    qo_optim_opts oo = {.kind = t->o.optimizer, .lr = t->o.lr, .momentum = t->o.momentum,
                        .weight_decay = t->o.weight_decay};
    st = qo_autodiff(cx, g, &ao);
    if (st == QO_OK) st = qo_add_optimizer(cx, g, &oo);
    qo_free(pn);
    if (st == QO_OK) st = qo_verify(cx, m);
    if (st != QO_OK) goto fail;
    *out = m;
    return QO_OK;
fail:
    qo_module_free(m);
    return st;
}

qo_status qo_trainer_new(qo_ctx *cx, const qo_module *fwd, int64_t batch, const qo_train_opts *o, qo_trainer **out) {
    *out = NULL;
    if (batch < 1) return fail_graph(cx, "batch size must be at least 1");
    if (o->teacher && (!(o->distill_temp > 0) || !isfinite(o->distill_temp) || !(o->distill_alpha >= 0) ||
                       !(o->distill_alpha <= 1)))
        return fail_graph(cx, "distillation needs a temperature > 0 and an alpha in [0, 1]");
    qo_trainer *t = qo_calloc(1, sizeof *t);
    t->cx = cx;
    t->o = *o;
    t->loss_out = t->logits_out = -1;
    qo_status st = qo_calib_clone(cx, fwd, &t->fwd);
    if (st == QO_OK) st = build_step(t, batch, &t->m);
    if (st != QO_OK) goto fail;
    qo_graph *g = qo_module_main(t->m);
    uint32_t ndata = 1;
    t->nin = g->ninputs;
    t->nout = g->noutputs;
    t->kind = qo_calloc(t->nin, 1);
    t->fed_by = qo_calloc(t->nin, sizeof(int32_t));
    t->state = qo_calloc(t->nin, sizeof(qo_tensor));
    for (uint32_t k = 0; k < t->nout; k++) {
        const char *nm = qo_val_name(g, qo_graph_output(g, k));
        if (!strcmp(nm, "loss")) t->loss_out = (int)k;
    }
    t->logits_out = 0;
    char nm[512];
    for (uint32_t i = 0; i < t->nin && st == QO_OK; i++) {
        qo_val v = g->inputs[i];
        const char *iname = qo_val_name(g, v);
        t->fed_by[i] = -1;
        if (i < ndata) t->kind[i] = IN_DATA;
        else if (!strcmp(iname, "labels")) t->kind[i] = IN_LABELS;
        else if (!strcmp(iname, "teacher_logits")) t->kind[i] = IN_TEACHER;
        else if (!strcmp(iname, "lr")) t->kind[i] = IN_LR;
        else if (!strcmp(iname, "adam_step")) t->kind[i] = IN_ADAMSTEP;
        else t->kind[i] = IN_STATE;
        snprintf(nm, sizeof nm, "%s_new", iname);
        for (uint32_t k = 0; k < t->nout; k++)
            if (!strcmp(qo_val_name(g, qo_graph_output(g, k)), nm)) t->fed_by[i] = (int)k;
        if (t->kind[i] != IN_DATA && t->kind[i] != IN_LABELS && t->kind[i] != IN_TEACHER) {
            if (!g->vals[v].cref) {
                st = qo_error(cx, QO_ERR_PASS, NULL, "training: step input '%s' has no initial value", iname);
                break;
            }
            qo_tensor view;
            st = qo_tensor_from_const(cx, t->m, g->vals[v].cref, &view);
            if (st == QO_OK) st = qo_tensor_copy(cx, &view, &t->state[i]);
            qo_tensor_free(&view);
        }
    }
    if (st != QO_OK || t->loss_out < 0) {
        if (st == QO_OK) st = fail_graph(cx, "no loss output");
        goto fail;
    }
    t->fn[0].batch = batch;
    t->fn[0].m = t->m;
    t->m = NULL;
    *out = t;
    return QO_OK;
fail:
    qo_trainer_free(t);
    return st;
}

/* The compiled step for batch size n (built and compiled on first use; at most two sizes alive). */
static qo_status step_for(qo_trainer *t, int64_t n, const qo_tensor *x, const qo_tensor *y, qo_jit **out) {
    for (int i = 0; i < 2; i++)
        if (t->fn[i].j && t->fn[i].batch == n) {
            *out = t->fn[i].j;
            return QO_OK;
        }
    int slot = t->fn[0].batch == n ? 0 : 1;
    if (slot == 1 && t->fn[1].batch != n) {
        qo_jit_free(t->fn[1].j);
        qo_module_free(t->fn[1].m);
        t->fn[1] = (step_fn){0};
        QO_TRY(build_step(t, n, &t->fn[1].m));
        t->fn[1].batch = n;
        const qo_graph *a = qo_module_main(t->fn[0].m), *b = qo_module_main(t->fn[1].m);
        if (a->ninputs != b->ninputs || a->noutputs != b->noutputs)
            return qo_error(t->cx, QO_ERR_PASS, NULL, "training: the step for batch %lld differs in its inputs",
                            (long long)n);
    }
    (void)x;
    (void)y;
    /* the step module is built with static shapes for this batch size: the JIT takes them as they are
       (re-inferring from input shapes would drop the types of the ai.qopt.train results) */
    qo_jit_opts jo = {.threads = t->o.threads, .opt_level = -1, .fast_conv = true};
    qo_status st = qo_jit_compile(t->cx, t->fn[slot].m, &jo, &t->fn[slot].j);
    if (st != QO_OK) return st;
    *out = t->fn[slot].j;
    return QO_OK;
}

static int64_t argmax_hits(const qo_tensor *logits, const qo_tensor *y) {
    if (logits->elem != QO_F32 || logits->rank != 2 || y->elem != QO_I64) return 0;
    int64_t n = logits->dims[0], c = logits->dims[1], hits = 0;
    const float *l = logits->data;
    const int64_t *lab = y->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (l[i * c + k] > l[i * c + best]) best = k;
        hits += best == lab[i];
    }
    return hits;
}

/* The teacher's logits on x into *out (compiled per batch size on first use, two sizes kept). */
static qo_status run_teacher(qo_trainer *t, const qo_tensor *x, qo_tensor *out) {
    int64_t n = x->dims[0];
    int s = t->tb[0] == n && t->tj[0] ? 0 : t->tb[1] == n && t->tj[1] ? 1 : (t->tj[0] ? 1 : 0);
    if (!t->tj[s] || t->tb[s] != n) {
        qo_jit_free(t->tj[s]);
        t->tj[s] = NULL;
        qo_jit_opts jo = {.threads = t->o.threads, .opt_level = -1, .fast_conv = true, .ninput_shapes = 1, .input_shapes = x};
        QO_TRY(qo_jit_compile(t->cx, t->o.teacher, &jo, &t->tj[s]));
        t->tb[s] = n;
    }
    uint32_t nout = qo_module_main(t->o.teacher)->noutputs;
    qo_tensor *o = qo_calloc(nout ? nout : 1, sizeof(qo_tensor));
    qo_status st = qo_jit_run(t->tj[s], &x, 1, o, nout);
    const qo_graph *sg = qo_module_main(t->fn[0].m);
    const qo_typedata *lt = qo_type_get(t->fn[0].m, sg->vals[qo_graph_output(sg, t->logits_out)].type);
    if (st == QO_OK && (nout < 1 || o[0].elem != QO_F32 || o[0].rank != 2 || o[0].dims[0] != n ||
                        !lt || lt->rank != 2 || o[0].dims[1] != lt->dims[1]))
        st = fail_graph(t->cx, "the teacher's output 0 must be float logits [N, C] with the student's C");
    if (st == QO_OK) {
        *out = o[0];
        o[0] = (qo_tensor){0};
    }
    for (uint32_t k = 0; k < nout; k++) qo_tensor_free(&o[k]);
    qo_free(o);
    return st;
}

qo_status qo_trainer_step(qo_trainer *t, const qo_tensor *x, const qo_tensor *y, float lr, float *loss,
                          int64_t *correct) {
    qo_ctx *cx = t->cx;
    if (x->rank < 1 || y->rank != 1 || y->elem != QO_I64 || y->dims[0] != x->dims[0])
        return fail_graph(cx, "labels must be int64 [N] with N the batch of the input");
    uint32_t ndata = 0;
    for (uint32_t i = 0; i < t->nin; i++) ndata += t->kind[i] == IN_DATA;
    if (ndata != 1) return fail_graph(cx, "training needs a single-input model");
    qo_jit *j = NULL;
    QO_TRY(step_for(t, x->dims[0], x, y, &j));
    qo_tensor tout[1] = {{0}};
    if (t->o.teacher) QO_TRY(run_teacher(t, x, tout));
    const qo_tensor **inp = qo_calloc(t->nin, sizeof *inp);
    for (uint32_t i = 0; i < t->nin; i++) {
        switch (t->kind[i]) {
        case IN_DATA: inp[i] = x; break;
        case IN_LABELS: inp[i] = y; break;
        case IN_TEACHER: inp[i] = &tout[0]; break;
        case IN_LR: ((float *)t->state[i].data)[0] = lr; inp[i] = &t->state[i]; break;
        case IN_ADAMSTEP: ((float *)t->state[i].data)[0] = (float)(t->steps + 1); inp[i] = &t->state[i]; break;
        default: inp[i] = &t->state[i];
        }
    }
    qo_tensor *out = qo_calloc(t->nout, sizeof(qo_tensor));
    qo_status st = qo_jit_run(j, inp, t->nin, out, t->nout);
    if (st == QO_OK) {
        *loss = ((const float *)out[t->loss_out].data)[0];
        if (correct) *correct = argmax_hits(&out[t->logits_out], y);
        for (uint32_t i = 0; i < t->nin; i++)
            if (t->fed_by[i] >= 0) {
                qo_tensor_free(&t->state[i]);
                t->state[i] = out[t->fed_by[i]];
                out[t->fed_by[i]] = (qo_tensor){0};
            }
        t->steps++;
    }
    for (uint32_t k = 0; k < t->nout; k++) qo_tensor_free(&out[k]);
    qo_free(out);
    qo_free(inp);
    qo_tensor_free(&tout[0]);
    return st;
}

/* After training, the QuantTensor metadata of the quantized IR is refreshed from the learned scale
 * constants, and the bias quantizers get scale = input scale x weight scale again, the product the
 * step graph computed (bias_scales_per_step). */
static qo_status refresh_quant(qo_ctx *cx, qo_graph *g) {
    bool any = false;
    for (qo_val v = 1; v < g->nvals; v++) {
        if (g->vals[v].flags & QO_VAL_DEAD) continue;
        const qo_typedata *td = qo_type_get(g->m, g->vals[v].type);
        if (td && td->quant && !qo_qnode_of(g, v)) g->vals[v].type = qo_type_with_quant(g->m, g->vals[v].type, NULL);
    }
    QO_FOR_EACH_NODE(g, n) {
        if (!qo_qnode_is_quant(g, n)) continue;
        any = true;
        qo_val y = qo_node_output(g, n, 0);
        if (!g->vals[y].type) continue;
        qo_qspec s;
        qo_ctx quiet;
        qo_ctx_init(&quiet);
        quiet.quiet = true;
        if (qo_qnode_spec(&quiet, g, n, &s) && s.role == QO_QROLE_BIAS) {
            g->vals[y].type = qo_type_with_quant(g->m, g->vals[y].type, NULL); /* pending again */
            continue;
        }
        qo_qparams p;
        QO_TRY(qo_qnode_read(cx, g, n, &p));
        qo_quant q;
        qo_qparams_to_quant(&p, g->m, &q);
        qo_qparams_free(&p);
        g->vals[y].type = qo_type_with_quant(g->m, g->vals[y].type, &q);
    }
    if (!any) return QO_OK;
    QO_TRY(qo_quant_prop(cx, g));
    return qo_quant_bias_graph(cx, g);
}

qo_status qo_trainer_model(qo_trainer *t, qo_module **out) {
    QO_TRY(qo_calib_clone(t->cx, t->fwd, out));
    qo_graph *fg = qo_module_main(*out), *sg = qo_module_main(t->fn[0].m);
    for (uint32_t i = 0; i < t->nin; i++) {
        if (t->kind[i] != IN_STATE || t->fed_by[i] < 0) continue;
        const char *sname = qo_val_name(sg, sg->inputs[i]);
        size_t sl = strlen(sname), bl = strlen(QO_TRAIN_BITS_SUFFIX);
        if (sl > bl && !strcmp(sname + sl - bl, QO_TRAIN_BITS_SUFFIX) && t->state[i].elem == QO_F32 &&
            qo_tensor_numel(&t->state[i]) == 1) {
            /* a learned bit width: the Quant gets its own constant round_half_even(|o| + 2) */
            char qn[512];
            snprintf(qn, sizeof qn, "%.*s", (int)(sl - bl), sname);
            qo_val qv = qo_graph_find(fg, qn);
            qo_node q = qv ? fg->vals[qv].def : 0;
            if (!q || !qo_qnode_is_quant(fg, q)) continue;
            float bits = qo_round_apply(fabsf(*(const float *)t->state[i].data) + 2.0f, QO_ROUND_HALF_EVEN); /* as the step */
            qo_val bc = qo_pass_add_const_named(fg, qn, "_bitwidth", QO_F32, 0, NULL, &bits);
            qo_set_input(fg, qo_node_use(fg, q, 3), bc);
            continue;
        }
        qo_val v = qo_graph_find(fg, sname);
        if (!v || !(fg->vals[v].flags & QO_VAL_CONST)) continue; /* optimizer state */
        const qo_tensor *s = &t->state[i];
        qo_type ty = qo_const_get(*out, fg->vals[v].cref)->type;
        bool scale = false; /* a learned Quant scale: the model holds |s| (see build_step) */
        QO_FOR_EACH_USE(fg, v, u) {
            qo_node q = fg->uses[u].owner;
            if (q && qo_qnode_is_quant(fg, q) && u == qo_node_use(fg, q, 1)) scale = true;
        }
        if (scale && s->elem == QO_F32) {
            float *a = qo_malloc(s->nbytes ? s->nbytes : 1);
            for (size_t k = 0; k < s->nbytes / 4; k++) a[k] = fabsf(((const float *)s->data)[k]);
            fg->vals[v].cref = qo_const_new(*out, ty, a, s->nbytes, true);
            qo_free(a);
        } else {
            fg->vals[v].cref = qo_const_new(*out, ty, s->data, s->nbytes, true);
        }
    }
    /* types first: the quantizers' metadata (and from it the bias scales) hang on them */
    qo_status st = qo_pipeline_run(t->cx, *out, "shape-infer", NULL);
    if (st == QO_OK) st = refresh_quant(t->cx, fg);
    if (st == QO_OK) st = qo_verify(t->cx, *out);
    if (st != QO_OK) {
        qo_module_free(*out);
        *out = NULL;
    }
    return st;
}

qo_status qo_trainer_eval(qo_trainer *t, const qo_tensor *x, const qo_tensor *y, int64_t batch, double *acc,
                          double *loss) {
    qo_ctx *cx = t->cx;
    qo_module *m;
    QO_TRY(qo_trainer_model(t, &m));
    int64_t n = x->dims[0], hits = 0;
    double lsum = 0;
    qo_jit *j[2] = {NULL, NULL};
    int64_t jb[2] = {-1, -1};
    size_t xs = x->nbytes / (size_t)(n ? n : 1);
    qo_status st = QO_OK;
    for (int64_t i = 0; i < n && st == QO_OK; i += batch) {
        int64_t b = n - i < batch ? n - i : batch;
        qo_tensor xb = *x, yb = *y;
        xb.dims[0] = yb.dims[0] = b;
        xb.data = (char *)x->data + (size_t)i * xs;
        xb.nbytes = (size_t)b * xs;
        xb.owned = 0;
        yb.data = (int64_t *)y->data + i;
        yb.nbytes = (size_t)b * 8;
        yb.owned = 0;
        int s = jb[0] == b ? 0 : jb[1] == b ? 1 : (j[0] ? 1 : 0);
        if (jb[s] != b) {
            qo_jit_free(j[s]);
            j[s] = NULL;
            qo_jit_opts jo = {.threads = t->o.threads, .opt_level = -1, .ninput_shapes = 1, .input_shapes = &xb};
            st = qo_jit_compile(cx, m, &jo, &j[s]);
            if (st != QO_OK) break;
            jb[s] = b;
        }
        const qo_tensor *ip = &xb;
        uint32_t nout = qo_module_main(m)->noutputs;
        qo_tensor *o = qo_calloc(nout, sizeof(qo_tensor));
        st = qo_jit_run(j[s], &ip, 1, o, nout);
        if (st == QO_OK) {
            hits += argmax_hits(&o[0], &yb);
            const float *l = o[0].data;
            int64_t c = o[0].dims[1];
            for (int64_t r = 0; r < b; r++) {
                double mx = l[r * c];
                for (int64_t k = 1; k < c; k++) mx = fmax(mx, l[r * c + k]);
                double se = 0;
                for (int64_t k = 0; k < c; k++) se += exp(l[r * c + k] - mx);
                int64_t lab = ((const int64_t *)yb.data)[r];
                if (lab >= 0 && lab < c) lsum += mx + log(se) - l[r * c + lab];
            }
        }
        for (uint32_t k = 0; k < nout; k++) qo_tensor_free(&o[k]);
        qo_free(o);
    }
    qo_jit_free(j[0]);
    qo_jit_free(j[1]);
    qo_module_free(m);
    if (st == QO_OK) {
        *acc = n ? (double)hits / (double)n : 0;
        *loss = n ? lsum / (double)n : 0;
    }
    return st;
}

int64_t qo_trainer_steps(const qo_trainer *t) { return t->steps; }
void qo_trainer_set_steps(qo_trainer *t, int64_t steps) { t->steps = steps; }

uint32_t qo_trainer_nstate(const qo_trainer *t) { return t->nin; }

const char *qo_trainer_state_name(const qo_trainer *t, uint32_t i) {
    if (t->kind[i] != IN_STATE) return NULL;
    const qo_graph *g = qo_module_main(t->fn[0].m);
    return qo_val_name(g, g->inputs[i]);
}

const qo_tensor *qo_trainer_state(const qo_trainer *t, uint32_t i) {
    return t->kind[i] == IN_STATE ? &t->state[i] : NULL;
}

qo_status qo_trainer_set_state(qo_trainer *t, const char *name, const qo_tensor *v) {
    const qo_graph *g = qo_module_main(t->fn[0].m);
    for (uint32_t i = 0; i < t->nin; i++) {
        if (t->kind[i] != IN_STATE || strcmp(qo_val_name(g, g->inputs[i]), name)) continue;
        qo_tensor *s = &t->state[i];
        if (s->elem != v->elem || s->nbytes != v->nbytes)
            return qo_error(t->cx, QO_ERR_USAGE, NULL, "checkpoint: '%s' has another shape or type than the model's", name);
        memcpy(s->data, v->data, v->nbytes);
        return QO_OK;
    }
    return qo_error(t->cx, QO_ERR_USAGE, NULL, "checkpoint: the model has no state '%s'", name);
}

void qo_trainer_free(qo_trainer *t) {
    if (!t) return;
    for (int i = 0; i < 2; i++) {
        qo_jit_free(t->fn[i].j);
        qo_module_free(t->fn[i].m);
        qo_jit_free(t->tj[i]);
    }
    if (t->state)
        for (uint32_t i = 0; i < t->nin; i++) qo_tensor_free(&t->state[i]);
    qo_free(t->state);
    qo_free(t->kind);
    qo_free(t->fed_by);
    qo_module_free(t->m);
    qo_module_free(t->fwd);
    qo_free(t);
}
