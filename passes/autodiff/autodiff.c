/* passes/autodiff/autodiff.c — reverse-mode autodiff driver (qo_autodiff), the emission helpers the
 * gradient rules use, and the `autodiff` pass. Contracts in autodiff.h and ad_impl.h.
 *
 * The algorithm: (1) shape-infer the module; (2) mark the forward values that depend on a parameter
 * through differentiable operand slots (program order); (3) seed d(loss) = 1 and walk the forward
 * nodes in reverse program order, applying each node's rule when one of its results has a gradient
 * and one of its inputs needs one; contributions to a value used several times are summed with Add;
 * (4) name each parameter's gradient "<p>_grad" and make it a graph output; (5) shape-infer again.
 * Backward nodes are appended after the forward ones, so program order stays topological. */
#include "passes/autodiff/ad_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- diagnostics and queries ------------------------------------------------------------------ */

qo_status qo_ad_err(ad *a, qo_status code, const char *fmt, ...) {
    qo_loc loc = a->cur ? qo_node_loc(a->g, a->cur) : (qo_loc){0};
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return qo_error(a->cx, code, a->cur ? &loc : NULL, "autodiff: %s", buf);
}

bool qo_ad_needs(const ad *a, qo_val v) { return v && v < a->nfwd && a->need[v]; }

qo_elem qo_ad_elem(const ad *a, qo_val v) { return v ? qo_type_elem(a->m, a->g->vals[v].type) : QO_UNDEF; }

bool qo_ad_shape(const ad *a, qo_val v, int32_t *rank, int64_t *dims) {
    const qo_typedata *t = v ? qo_type_get(a->m, a->g->vals[v].type) : NULL;
    if (!t || t->kind != QO_TY_TENSOR || t->rank < 0 || t->rank > QO_AD_MAXR) return false;
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return false;
        dims[i] = t->dims[i];
    }
    *rank = t->rank;
    return true;
}

qo_status qo_ad_need_shape(ad *a, qo_val v, const char *what, int32_t *rank, int64_t *dims) {
    if (qo_ad_shape(a, v, rank, dims)) return QO_OK;
    const char *nm = qo_val_name(a->g, v);
    return qo_ad_err(a, QO_ERR_UNSUPPORTED, "%s%s%s%s needs a static shape (run shape-infer with known input shapes)",
                     what, nm[0] ? " '" : "", nm, nm[0] ? "'" : "");
}

void qo_ad_set_type(ad *a, qo_val v, qo_elem e, int32_t rank, const int64_t *dims) {
    a->g->vals[v].type = qo_type_tensor(a->m, e, rank, dims, NULL);
    a->g->vals[v].flags |= QO_VAL_INFO; /* written as value_info: shape-infer cannot derive private ops' */
}

void qo_ad_type_like(ad *a, qo_val v, qo_val like) {
    int32_t r;
    int64_t d[QO_AD_MAXR];
    if (qo_ad_shape(a, like, &r, d)) qo_ad_set_type(a, v, qo_ad_elem(a, like), r, d);
}

/* ---- emission ------------------------------------------------------------------------------- */

qo_node qo_ad_node(ad *a, qo_op op, uint32_t nin, const qo_val *ins, uint32_t nout) {
    const char *dom = qo_op_info(op)->dom == D_TRAIN ? QO_TRAIN_DOMAIN : NULL;
    if (dom) a->used_private = true;
    qo_node n = qo_node_new(a->g, op, dom, NULL, nin, ins, nout);
    if (a->curname[0]) qo_node_set_name(a->g, n, a->curname);
    return n;
}

qo_val qo_ad_op(ad *a, qo_op op, uint32_t nin, const qo_val *ins) {
    return qo_node_output(a->g, qo_ad_node(a, op, nin, ins, 1), 0);
}

qo_val qo_ad_op1(ad *a, qo_op op, qo_val x) { return qo_ad_op(a, op, 1, &x); }

qo_val qo_ad_op2(ad *a, qo_op op, qo_val x, qo_val y) {
    qo_val ins[2] = {x, y};
    return qo_ad_op(a, op, 2, ins);
}

qo_val qo_ad_scalar(ad *a, qo_elem e, double v) {
    if (e == QO_F64) return qo_pass_add_const(a->g, NULL, QO_F64, 0, NULL, &v);
    float f = (float)v;
    return qo_pass_add_const(a->g, NULL, QO_F32, 0, NULL, &f);
}

qo_val qo_ad_ints(ad *a, int64_t n, const int64_t *v) { return qo_pass_add_const(a->g, NULL, QO_I64, 1, &n, v); }

qo_val qo_ad_zeros_like(ad *a, qo_val like) {
    int32_t r = 0;
    int64_t d[QO_AD_MAXR];
    if (!qo_ad_shape(a, like, &r, d)) return 0;
    int64_t n = 1;
    for (int32_t i = 0; i < r; i++) n *= d[i];
    qo_elem e = qo_ad_elem(a, like);
    void *z = qo_calloc((size_t)(n ? n : 1), e == QO_F64 ? 8 : 4);
    qo_val v = qo_pass_add_const(a->g, NULL, e == QO_F64 ? QO_F64 : QO_F32, r, d, z);
    qo_free(z);
    return v;
}

qo_val qo_ad_reducesum(ad *a, qo_val x, int n, const int64_t *axes, bool keepdims) {
    qo_val ins[2] = {x, qo_ad_ints(a, n, axes)};
    qo_node r = qo_ad_node(a, QO_OP_REDUCESUM, 2, ins, 1);
    qo_node_set_attr_int(a->g, r, "keepdims", keepdims ? 1 : 0);
    return qo_node_output(a->g, r, 0);
}

qo_val qo_ad_reshape(ad *a, qo_val x, int32_t rank, const int64_t *dims) {
    int64_t d1 = 0;
    qo_val sh = rank ? qo_ad_ints(a, rank, dims) : qo_pass_add_const(a->g, NULL, QO_I64, 1, &d1, &d1);
    return qo_ad_op2(a, QO_OP_RESHAPE, x, sh);
}

qo_status qo_ad_unbroadcast(ad *a, qo_val gy, int32_t yr, const int64_t *yd, qo_val x, qo_val *out) {
    int32_t xr;
    int64_t xd[QO_AD_MAXR], axes[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, x, "a broadcast operand", &xr, xd));
    if (xr > yr) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "operand of rank %d broadcast to rank %d", (int)xr, (int)yr);
    int na = 0;
    for (int32_t i = 0; i < yr; i++) {
        int32_t j = i - (yr - xr);
        if (j < 0 || (xd[j] == 1 && yd[i] != 1)) axes[na++] = i;
        else if (xd[j] != yd[i])
            return qo_ad_err(a, QO_ERR_INVALID_MODEL, "operand dim %d (%lld) does not broadcast to %lld", (int)j,
                             (long long)xd[j], (long long)yd[i]);
    }
    if (!na && xr == yr) {
        *out = gy;
        return QO_OK;
    }
    qo_val r = gy;
    if (na == yr - xr) r = qo_ad_reducesum(a, gy, na, axes, false); /* only the leading axes: no Reshape */
    else {
        if (na) r = qo_ad_reducesum(a, gy, na, axes, true);
        if (xr != yr) r = qo_ad_reshape(a, r, xr, xd);
    }
    qo_ad_set_type(a, r, qo_ad_elem(a, x) ? qo_ad_elem(a, x) : qo_ad_elem(a, gy), xr, xd);
    *out = r;
    return QO_OK;
}

void qo_ad_add_grad(ad *a, qo_val x, qo_val c) {
    QO_ASSERT(x && x < a->nfwd);
    if (!c) return;
    if (!a->grad[x]) {
        a->grad[x] = c;
        return;
    }
    qo_val s = qo_ad_op2(a, QO_OP_ADD, a->grad[x], c);
    qo_ad_type_like(a, s, x);
    a->grad[x] = s;
}

/* ---- driver --------------------------------------------------------------------------------- */

static bool is_float_val(const ad *a, qo_val v) {
    qo_elem e = qo_ad_elem(a, v);
    return e == QO_F32 || e == QO_F64;
}

void qo_train_ops_infer(qo_graph *g) {
    qo_module *m = g->m;
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = &g->nodes[n];
        if (qo_op_info((qo_op)nd->op)->dom != D_TRAIN) continue;
        /* result r takes the shape of input src (-1: rank 0) and the element type of input 0 */
        for (uint32_t r = 0; r < nd->nout; r++) {
            qo_val y = qo_node_output(g, n, r);
            if (!y || qo_type_numel(m, g->vals[y].type) >= 0) continue;
            int src;
            switch ((qo_op)nd->op) {
            case QO_OP_TRAIN_SOFTMAXCE: src = -1; break;
            case QO_OP_TRAIN_CONVGRADWEIGHT: src = 2; break;
            case QO_OP_TRAIN_BATCHNORMGRAD: src = r == 0 ? 1 : 2; break;
            default: src = 1; break;
            }
            qo_val x = qo_node_input(g, n, 0);
            qo_elem e = x ? qo_type_elem(m, g->vals[x].type) : QO_UNDEF;
            if (e == QO_UNDEF) continue;
            if (src < 0) {
                g->vals[y].type = qo_type_tensor(m, e, 0, NULL, NULL);
                g->vals[y].flags |= QO_VAL_INFO;
                continue;
            }
            qo_val s = qo_node_input(g, n, (uint32_t)src);
            const qo_typedata *t = s ? qo_type_get(m, g->vals[s].type) : NULL;
            if (t && t->kind == QO_TY_TENSOR && t->rank >= 0) {
                g->vals[y].type = qo_type_tensor(m, e, t->rank, t->dims, t->syms);
                g->vals[y].flags |= QO_VAL_INFO;
            }
        }
    }
}

static qo_status shape_infer(qo_ctx *cx, qo_module *m) {
    QO_TRY(qo_pipeline_run(cx, m, "shape-infer{warn-conflicts=false}", NULL));
    qo_train_ops_infer(qo_module_main(m));
    return qo_pipeline_run(cx, m, "shape-infer{warn-conflicts=false}", NULL);
}

static void set_curname(ad *a, qo_node n) {
    const char *nm = qo_node_name(a->g, n);
    snprintf(a->curname, sizeof a->curname, "%s/grad", nm[0] ? nm : qo_node_op_type(a->g, n));
}

/* Gives value v the name nm as a graph output: renames v when it is an anonymous node result not
 * yet an output, else adds an Identity. */
static void name_output(ad *a, qo_val v, const char *nm) {
    qo_graph *g = a->g;
    const qo_value *vd = &g->vals[v];
    if (!vd->def || vd->name || vd->nuses || v < a->nfwd) {
        qo_val c = qo_ad_op1(a, QO_OP_IDENTITY, v);
        g->vals[c].type = g->vals[v].type;
        v = c;
    }
    qo_val_set_name(g, v, nm);
    qo_graph_add_output(g, v);
}

/* True if v is read as a weight, bias or scale: Conv/ConvTranspose W and B, Gemm's operands,
 * MatMul's, BatchNormalization's scale and bias, a Quant's scale or bit width. */
static bool weight_slot_use(const qo_graph *g, qo_val v) {
    QO_FOR_EACH_USE(g, v, u) {
        qo_node n = g->uses[u].owner;
        if (!n) continue;
        uint32_t slot = u - g->nodes[n].in0;
        switch ((qo_op)g->nodes[n].op) {
        case QO_OP_CONV:
        case QO_OP_CONVTRANSPOSE:
        case QO_OP_BATCHNORMALIZATION:
            if (slot == 1 || slot == 2) return true;
            break;
        case QO_OP_GEMM:
        case QO_OP_MATMUL: return true;
        case QO_OP_QONNX_QUANT:
            if (slot == 1 || slot == 3) return true;
            break;
        default: break;
        }
    }
    return false;
}

qo_status qo_autodiff(qo_ctx *cx, qo_graph *g, const qo_autodiff_opts *o) {
    static const qo_autodiff_opts dflt = {0};
    if (!o) o = &dflt;
    qo_module *m = g->m;
    ad a = {.cx = cx, .g = g, .m = m, .opset = qo_module_opset(m, ""), .learn_bits = o->learn_bitwidth};
    if (!a.opset) a.opset = 21;
    if (a.opset < 13)
        return qo_error(cx, QO_ERR_UNSUPPORTED, NULL, "autodiff: the model imports opset %lld; gradients need opset >= 13",
                        (long long)a.opset);
    QO_TRY(shape_infer(cx, m));
    /* the loss */
    qo_val loss = 0;
    if (o->loss && o->loss[0]) {
        loss = qo_graph_find(g, o->loss);
        if (!loss) return qo_error(cx, QO_ERR_USAGE, NULL, "autodiff: no value named '%s' (the loss)", o->loss);
    } else {
        if (g->noutputs != 1)
            return qo_error(cx, QO_ERR_USAGE, NULL, "autodiff: the graph has %u outputs; name the loss (loss=NAME)",
                            g->noutputs);
        loss = qo_graph_output(g, 0);
    }
    if (qo_type_numel(m, g->vals[loss].type) != 1 || !is_float_val(&a, loss))
        return qo_error(cx, QO_ERR_USAGE, NULL, "autodiff: the loss '%s' is not a one-element float tensor",
                        qo_val_name(g, loss));
    a.nfwd = g->nvals;
    a.nfwd_nodes = g->nnodes;
    a.need = qo_calloc(a.nfwd, sizeof *a.need);
    a.grad = qo_calloc(a.nfwd, sizeof *a.grad);
    qo_val *params = NULL;
    uint32_t np = 0, capp = 0;
    qo_status st = QO_OK;
    /* (2) parameters and the values depending on them */
    if (o->params) {
        for (uint32_t i = 0; i < o->nparams; i++) {
            qo_val p = qo_graph_find(g, o->params[i]);
            if (!p || g->vals[p].def || !is_float_val(&a, p)) {
                st = qo_error(cx, QO_ERR_USAGE, NULL, "autodiff: parameter '%s' is not a float initializer or graph input",
                              o->params[i]);
                goto done;
            }
            QO_GROW(params, capp, np + 1);
            params[np++] = p;
            a.need[p] = true;
        }
    } else {
        for (uint32_t i = 0; i < g->nconsts; i++) {
            qo_val p = g->consts[i];
            if (!(g->vals[p].flags & QO_VAL_DEAD) && is_float_val(&a, p) &&
                (qo_type_numel(m, g->vals[p].type) > 1 || weight_slot_use(g, p)))
                a.need[p] = true;
        }
    }
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = &g->nodes[n];
        bool any = false;
        for (uint32_t i = 0; i < nd->nin && !any; i++)
            any = qo_ad_needs(&a, qo_node_input(g, n, i)) && qo_ad_diff_slot(&a, n, i);
        if (!any) continue;
        for (uint32_t r = 0; r < nd->nout; r++) {
            qo_val y = qo_node_output(g, n, r);
            if (y && is_float_val(&a, y)) a.need[y] = true;
        }
    }
    /* (3) seed and reverse sweep */
    {
        int32_t lr = 0;
        int64_t ld[QO_AD_MAXR];
        qo_ad_shape(&a, loss, &lr, ld);
        qo_elem le = qo_ad_elem(&a, loss);
        double one = 1.0;
        float onef = 1.0f;
        a.grad[loss] = qo_pass_add_const(g, NULL, le, lr, ld, le == QO_F64 ? (void *)&one : (void *)&onef);
    }
    qo_node last = g->last;
    qo_val gy[64];
    for (qo_node n = last; n; n = g->nodes[n].prev) {
        const qo_nodedata *nd = &g->nodes[n];
        if (nd->nout > 64) continue;
        bool anyg = false, anyin = false;
        for (uint32_t r = 0; r < nd->nout; r++) {
            qo_val y = qo_node_output(g, n, r);
            gy[r] = y && y < a.nfwd ? a.grad[y] : 0;
            anyg |= gy[r] != 0;
        }
        for (uint32_t i = 0; i < nd->nin && !anyin; i++)
            anyin = qo_ad_needs(&a, qo_node_input(g, n, i)) && qo_ad_diff_slot(&a, n, i);
        if (!anyg || !anyin) continue;
        a.cur = n;
        set_curname(&a, n);
        st = qo_ad_rule(&a, n, gy);
        if (st) goto done;
    }
    a.cur = 0;
    a.curname[0] = 0;
    /* (4) outputs */
    if (!o->params) {
        for (uint32_t i = 0; i < g->nconsts; i++) {
            qo_val p = g->consts[i];
            if (p < a.nfwd && a.need[p] && a.grad[p]) {
                QO_GROW(params, capp, np + 1);
                params[np++] = p;
            }
        }
    }
    for (uint32_t i = 0; i < np; i++) {
        qo_val p = params[i], gv = a.grad[p];
        const char *pn = qo_val_name(g, p);
        char *nm = qo_malloc(strlen(pn) + 8);
        sprintf(nm, "%s_grad", pn);
        if (qo_graph_find(g, nm)) {
            st = qo_error(cx, QO_ERR_USAGE, NULL, "autodiff: a value named '%s' exists already", nm);
            qo_free(nm);
            goto done;
        }
        if (!gv) gv = qo_ad_zeros_like(&a, p);
        if (!gv) {
            st = qo_error(cx, QO_ERR_UNSUPPORTED, NULL, "autodiff: parameter '%s' needs a static shape", pn);
            qo_free(nm);
            goto done;
        }
        name_output(&a, gv, nm);
        qo_val outv = qo_graph_output(g, g->noutputs - 1);
        if (!g->vals[outv].type) qo_ad_type_like(&a, outv, p);
        qo_free(nm);
    }
    if (a.used_private && !qo_module_opset(m, QO_TRAIN_DOMAIN)) qo_module_set_opset(m, QO_TRAIN_DOMAIN, 1);
    st = shape_infer(cx, m);
done:
    qo_free(params);
    qo_free(a.need);
    qo_free(a.grad);
    return st;
}

/* ---- the pass ------------------------------------------------------------------------------- */

/* Splits a comma-separated list into a malloc'd array of pointers into the malloc'd copy *buf. */
static const char **split_list(const char *s, uint32_t *n, char **buf) {
    *buf = qo_strdup(s);
    const char **v = NULL;
    uint32_t cap = 0;
    *n = 0;
    for (char *p = *buf, *q; p && *p; p = q) {
        q = strchr(p, ',');
        if (q) *q++ = 0;
        if (!*p) continue;
        QO_GROW(v, cap, *n + 1);
        v[(*n)++] = p;
    }
    return v;
}

qo_status qo_pass_autodiff(qo_pass_ctx *pc, qo_graph *g) {
    const char *loss = qo_pass_opt_str(pc, "loss"), *ps = qo_pass_opt_str(pc, "params");
    qo_autodiff_opts o = {.loss = loss && loss[0] ? loss : NULL, .learn_bitwidth = qo_pass_opt_bool(pc, "learn-bitwidth")};
    char *buf = NULL;
    const char **pv = NULL;
    if (ps && ps[0]) {
        pv = split_list(ps, &o.nparams, &buf);
        o.params = pv;
    }
    qo_status s = qo_autodiff(pc->cx, g, &o);
    qo_free(pv);
    qo_free(buf);
    if (s == QO_OK) pc->changed = true;
    return s;
}
