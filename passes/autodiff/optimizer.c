/* passes/autodiff/optimizer.c — one optimizer step in the IR (qo_add_optimizer) and the `optimizer`
 * pass. Contracts in autodiff.h. The update is ordinary elementwise ONNX ops appended after the
 * backward graph, so the JIT fuses each parameter's update into one loop. */
#include "passes/autodiff/ad_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct opt {
    qo_ctx *cx;
    qo_graph *g;
    qo_module *m;
    qo_val lr, step; /* graph inputs */
} opt;

static qo_val op2(opt *o, qo_op op, qo_val x, qo_val y) {
    qo_val ins[2] = {x, y};
    return qo_node_output(o->g, qo_node_new(o->g, op, NULL, NULL, 2, ins, 1), 0);
}

static qo_val op1(opt *o, qo_op op, qo_val x) {
    return qo_node_output(o->g, qo_node_new(o->g, op, NULL, NULL, 1, &x, 1), 0);
}

static qo_val scalar(opt *o, float v) { return qo_pass_add_const(o->g, NULL, QO_F32, 0, NULL, &v); }

/* A graph input named nm of type t whose default is the constant c (zeros when c is 0). */
static qo_val state_input(opt *o, const char *nm, qo_type t, qo_cref c) {
    if (!c) {
        int64_t n = qo_type_numel(o->m, t);
        size_t nb = qo_elem_storage(qo_type_elem(o->m, t), n);
        void *z = qo_calloc(nb ? nb : 1, 1);
        c = qo_const_new(o->m, t, z, nb, true);
        qo_free(z);
    }
    qo_val v = qo_graph_add_input(o->g, nm, t);
    o->g->vals[v].cref = c;
    return v;
}

/* Makes parameter p a graph input with its value as the default; returns the input. */
static qo_val param_input(opt *o, qo_val p) {
    qo_graph *g = o->g;
    if (g->vals[p].flags & QO_VAL_INPUT) return p;
    char *nm = qo_strdup(qo_val_name(g, p));
    qo_type t = qo_const_get(o->m, g->vals[p].cref)->type;
    qo_cref c = g->vals[p].cref;
    qo_val_set_name(g, p, "");
    qo_val in = qo_graph_add_input(g, nm, t);
    g->vals[in].cref = c;
    qo_replace_all_uses(g, p, in);
    qo_graph_remove_const(g, p);
    qo_val_erase(g, p);
    qo_free(nm);
    return in;
}

/* Names v "<base><suffix>", typed t, and appends it as a graph output. */
static void out_named(opt *o, qo_val v, const char *base, const char *suffix, qo_type t) {
    char *nm = qo_malloc(strlen(base) + strlen(suffix) + 1);
    sprintf(nm, "%s%s", base, suffix);
    qo_val_set_name(o->g, v, nm);
    o->g->vals[v].type = t;
    qo_graph_add_output(o->g, v);
    qo_free(nm);
}

static char *cat(const char *a, const char *b) {
    char *s = qo_malloc(strlen(a) + strlen(b) + 1);
    sprintf(s, "%s%s", a, b);
    return s;
}

static qo_status update_param(opt *o, const qo_optim_opts *op, const char *name) {
    qo_graph *g = o->g;
    char *gname = cat(name, "_grad");
    qo_val p = qo_graph_find(g, name), gv = qo_graph_find(g, gname);
    qo_free(gname);
    if (!p || g->vals[p].def || (!(g->vals[p].flags & QO_VAL_CONST) && !g->vals[p].cref))
        return qo_error(o->cx, QO_ERR_USAGE, NULL, "optimizer: parameter '%s' is not an initializer or an input with a default",
                        name);
    if (!gv) return qo_error(o->cx, QO_ERR_USAGE, NULL, "optimizer: no gradient '%s_grad' (run autodiff first)", name);
    if (qo_type_elem(o->m, g->vals[p].type) != QO_F32)
        return qo_error(o->cx, QO_ERR_UNSUPPORTED, NULL, "optimizer: parameter '%s' is not float32", name);
    p = param_input(o, p);
    qo_type t = g->vals[p].type;
    qo_val d = gv;
    if (op->weight_decay != 0.0f) d = op2(o, QO_OP_ADD, d, op2(o, QO_OP_MUL, p, scalar(o, op->weight_decay)));
    if (op->kind == QO_OPTIM_SGD) {
        if (op->momentum != 0.0f) {
            char *bn = cat(name, "_momentum");
            qo_val b = state_input(o, bn, t, 0);
            qo_val nb = op2(o, QO_OP_MUL, b, scalar(o, op->momentum));
            qo_val dd = op->dampening != 0.0f ? op2(o, QO_OP_MUL, d, scalar(o, 1.0f - op->dampening)) : d;
            nb = op2(o, QO_OP_ADD, nb, dd);
            d = op->nesterov ? op2(o, QO_OP_ADD, d, op2(o, QO_OP_MUL, nb, scalar(o, op->momentum))) : nb;
            qo_val p_new = op2(o, QO_OP_SUB, p, op2(o, QO_OP_MUL, d, o->lr));
            out_named(o, p_new, name, "_new", t);
            out_named(o, nb, bn, "_new", t);
            qo_free(bn);
        } else {
            qo_val p_new = op2(o, QO_OP_SUB, p, op2(o, QO_OP_MUL, d, o->lr));
            out_named(o, p_new, name, "_new", t);
        }
        return QO_OK;
    }
    /* Adam (torch 1.13 single-tensor form) */
    float b1 = op->beta1, b2 = op->beta2, eps = op->eps;
    if (b1 == 0 && b2 == 0 && eps == 0) b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    char *mn = cat(name, "_adam_m"), *vn = cat(name, "_adam_v");
    qo_val m = state_input(o, mn, t, 0), v = state_input(o, vn, t, 0);
    qo_val m_new = op2(o, QO_OP_ADD, op2(o, QO_OP_MUL, m, scalar(o, b1)), op2(o, QO_OP_MUL, d, scalar(o, 1.0f - b1)));
    qo_val v_new = op2(o, QO_OP_ADD, op2(o, QO_OP_MUL, v, scalar(o, b2)),
                       op2(o, QO_OP_MUL, op2(o, QO_OP_MUL, d, d), scalar(o, 1.0f - b2)));
    qo_val bc1 = op2(o, QO_OP_SUB, scalar(o, 1.0f), op2(o, QO_OP_POW, scalar(o, b1), o->step));
    qo_val bc2 = op2(o, QO_OP_SUB, scalar(o, 1.0f), op2(o, QO_OP_POW, scalar(o, b2), o->step));
    qo_val step_size = op2(o, QO_OP_DIV, o->lr, bc1);
    qo_val denom = op2(o, QO_OP_ADD, op2(o, QO_OP_DIV, op1(o, QO_OP_SQRT, v_new), op1(o, QO_OP_SQRT, bc2)), scalar(o, eps));
    qo_val p_new = op2(o, QO_OP_SUB, p, op2(o, QO_OP_MUL, op2(o, QO_OP_DIV, m_new, denom), step_size));
    out_named(o, p_new, name, "_new", t);
    out_named(o, m_new, mn, "_new", t);
    out_named(o, v_new, vn, "_new", t);
    qo_free(mn);
    qo_free(vn);
    return QO_OK;
}

/* Running statistics of a training-mode BatchNormalization n whose input_mean/input_var are
 * initializers, updated as torch does: batch mean and unbiased batch variance of X over every axis but
 * 1, new = old * momentum + batch * (1 - momentum) (ONNX's momentum: torch's is 1 - it). */
static qo_status bn_stats(opt *o, qo_node n) {
    qo_graph *g = o->g;
    if (!qo_attr_int(g, n, "training_mode", 0) || g->nodes[n].nin < 5) return QO_OK;
    qo_val x = qo_node_input(g, n, 0), mv = qo_node_input(g, n, 3), vv = qo_node_input(g, n, 4);
    if (!(g->vals[mv].flags & QO_VAL_CONST) || !(g->vals[vv].flags & QO_VAL_CONST) || g->vals[mv].flags & QO_VAL_INPUT ||
        mv == vv)
        return QO_OK;
    const qo_typedata *xt = qo_type_get(o->m, g->vals[x].type);
    if (!xt || xt->kind != QO_TY_TENSOR || xt->rank < 2 || xt->elem != QO_F32 || qo_type_numel(o->m, g->vals[x].type) < 0) {
        qo_loc loc = qo_node_loc(g, n);
        return qo_error(o->cx, QO_ERR_UNSUPPORTED, &loc, "optimizer: running statistics need a static f32 input shape");
    }
    int64_t axes[8], cnt = 1;
    int na = 0;
    if (xt->rank > 8) return QO_OK;
    for (int32_t i = 0; i < xt->rank; i++) {
        if (i != 1) axes[na++] = i, cnt *= xt->dims[i];
    }
    if (cnt < 2) return QO_OK;
    int64_t na64 = na, c = xt->dims[1], one = 1;
    qo_val ax = qo_pass_add_const(g, NULL, QO_I64, 1, &na64, axes);
    qo_val ins[2] = {x, ax};
    qo_node rs = qo_node_new(g, QO_OP_REDUCESUM, NULL, NULL, 2, ins, 1);
    qo_val mean = op2(o, QO_OP_DIV, qo_node_output(g, rs, 0), scalar(o, (float)cnt)); /* keepdims: [1, C, 1...] */
    qo_val dv = op2(o, QO_OP_SUB, x, mean);
    ins[0] = op2(o, QO_OP_MUL, dv, dv);
    qo_node rv = qo_node_new(g, QO_OP_REDUCESUM, NULL, NULL, 2, ins, 1);
    qo_val var = op2(o, QO_OP_DIV, qo_node_output(g, rv, 0), scalar(o, (float)(cnt - 1)));
    qo_val shape = qo_pass_add_const(g, NULL, QO_I64, 1, &one, &c);
    float mom = qo_attr_float(g, n, "momentum", 0.9f);
    const qo_val stat[2] = {mean, var};
    const qo_val old[2] = {mv, vv};
    for (int k = 0; k < 2; k++) {
        char *nm = qo_strdup(qo_val_name(g, old[k]));
        qo_val in = param_input(o, old[k]);
        qo_val b = op2(o, QO_OP_RESHAPE, stat[k], shape);
        qo_val nv = op2(o, QO_OP_ADD, op2(o, QO_OP_MUL, in, scalar(o, mom)), op2(o, QO_OP_MUL, b, scalar(o, 1.0f - mom)));
        out_named(o, nv, nm, "_new", g->vals[in].type);
        qo_free(nm);
    }
    return QO_OK;
}

qo_status qo_add_optimizer(qo_ctx *cx, qo_graph *g, const qo_optim_opts *op) {
    opt o = {.cx = cx, .g = g, .m = g->m};
    if (op->kind != QO_OPTIM_SGD && op->kind != QO_OPTIM_ADAM)
        return qo_error(cx, QO_ERR_USAGE, NULL, "optimizer: unknown kind %d", (int)op->kind);
    if (qo_graph_find(g, "lr")) return qo_error(cx, QO_ERR_USAGE, NULL, "optimizer: a value named 'lr' exists already");
    /* the parameters: explicit, or every p with an output "<p>_grad" */
    char **names = NULL;
    uint32_t nn = 0, cap = 0;
    if (op->params) {
        for (uint32_t i = 0; i < op->nparams; i++) {
            QO_GROW(names, cap, nn + 1);
            names[nn++] = qo_strdup(op->params[i]);
        }
    } else {
        for (uint32_t i = 0; i < g->noutputs; i++) {
            const char *on = qo_val_name(g, qo_graph_output(g, i));
            size_t l = strlen(on);
            if (l <= 5 || strcmp(on + l - 5, "_grad")) continue;
            QO_GROW(names, cap, nn + 1);
            names[nn] = qo_strdup(on);
            names[nn++][l - 5] = 0;
        }
    }
    qo_status s = QO_OK;
    if (!nn) s = qo_error(cx, QO_ERR_USAGE, NULL, "optimizer: no parameters (no <p>_grad outputs: run autodiff first)");
    if (!s) {
        qo_type st = qo_type_tensor(o.m, QO_F32, 0, NULL, NULL);
        o.lr = state_input(&o, "lr", st, qo_const_new(o.m, st, &op->lr, 4, true));
        if (op->kind == QO_OPTIM_ADAM) {
            float one = 1.0f;
            o.step = state_input(&o, "adam_step", st, qo_const_new(o.m, st, &one, 4, true));
        }
    }
    for (uint32_t i = 0; i < nn && !s; i++) s = update_param(&o, op, names[i]);
    if (!s && op->bn_stats) {
        qo_node last = g->last;
        for (qo_node n = g->first; n && !s; n = n == last ? 0 : g->nodes[n].next)
            if (g->nodes[n].op == QO_OP_BATCHNORMALIZATION) s = bn_stats(&o, n);
    }
    for (uint32_t i = 0; i < nn; i++) qo_free(names[i]);
    qo_free(names);
    if (!s) s = qo_pipeline_run(cx, o.m, "shape-infer{warn-conflicts=false}", NULL);
    return s;
}

static qo_status float_opt(qo_pass_ctx *pc, const char *key, float *out) {
    const char *s = qo_pass_opt_str(pc, key);
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) return qo_error(pc->cx, QO_ERR_USAGE, NULL, "optimizer: option %s=%s is not a number", key, s);
    *out = (float)v;
    return QO_OK;
}

qo_status qo_pass_optimizer(qo_pass_ctx *pc, qo_graph *g) {
    qo_optim_opts o = {0};
    const char *k = qo_pass_opt_str(pc, "kind");
    if (strcmp(k, "sgd") == 0) o.kind = QO_OPTIM_SGD;
    else if (strcmp(k, "adam") == 0) o.kind = QO_OPTIM_ADAM;
    else return qo_error(pc->cx, QO_ERR_USAGE, NULL, "optimizer: kind=%s (sgd or adam)", k);
    QO_TRY(float_opt(pc, "lr", &o.lr));
    QO_TRY(float_opt(pc, "momentum", &o.momentum));
    QO_TRY(float_opt(pc, "dampening", &o.dampening));
    QO_TRY(float_opt(pc, "weight-decay", &o.weight_decay));
    QO_TRY(float_opt(pc, "beta1", &o.beta1));
    QO_TRY(float_opt(pc, "beta2", &o.beta2));
    QO_TRY(float_opt(pc, "eps", &o.eps));
    o.nesterov = qo_pass_opt_bool(pc, "nesterov");
    o.bn_stats = qo_pass_opt_bool(pc, "bn-stats");
    QO_TRY(qo_add_optimizer(pc->cx, g, &o));
    pc->changed = true;
    return QO_OK;
}
