/* runtime/kernels/nodes.c — node adapters: resolve a node's attributes and input shapes the way
 * runtime/ref/nn.c does, allocate the output, and call the optimized kernel. Every check that
 * fails declines the node (QO_ERR_UNSUPPORTED, no diagnostic): the reference kernel then runs and
 * reports malformed nodes with its own messages. */
#include "runtime/kernels/kernels.h"

#include <string.h>

#define DECLINE QO_ERR_UNSUPPORTED

static bool is_f32(const qo_tensor *t) { return t && t->elem == QO_F32; }

static int attr_ints(qo_kctx *k, const char *name, int64_t *out, int max) {
    const qo_attr *a = qo_node_attr(k->g, k->n, name);
    if (!a) return -1;
    if (a->kind != QO_ATTR_INTS || a->n > (uint32_t)max) return -2;
    for (uint32_t i = 0; i < a->n; i++) out[i] = a->u.is[i];
    return (int)a->n;
}

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

static int attr_autopad(qo_kctx *k) {
    const qo_attr *a = qo_node_attr(k->g, k->n, "auto_pad");
    if (!a || a->kind != QO_ATTR_STRING || a->u.s.n == 0) return PAD_NOTSET;
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int i = 0; i < 4; i++)
        if (a->u.s.n == strlen(names[i]) && memcmp(a->u.s.p, names[i], a->u.s.n) == 0) return i;
    return -1;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

typedef struct geom {
    int nsp;
    int64_t in[QO_K_MAX_SP], out[QO_K_MAX_SP], ker[QO_K_MAX_SP], str[QO_K_MAX_SP], dil[QO_K_MAX_SP];
    int64_t pb[QO_K_MAX_SP], pe[QO_K_MAX_SP];
} geom;

/* Sliding-window geometry as the reference computes it; false for anything it would reject or
 * that the kernels do not cover (more than 3 spatial dims). */
static bool window_geom(qo_kctx *k, const qo_tensor *x, const int64_t *ker, int ceil_mode, geom *g) {
    memset(g, 0, sizeof *g);
    if (x->rank < 3 || x->rank - 2 > QO_K_MAX_SP) return false;
    int nsp = g->nsp = x->rank - 2;
    int64_t ks[QO_MAX_RANK], v[2 * QO_MAX_RANK];
    int n = attr_ints(k, "kernel_shape", ks, QO_MAX_RANK);
    if ((n >= 0 && n != nsp) || (n < 0 && !ker) || n == -2) return false;
    for (int i = 0; i < nsp; i++) {
        g->in[i] = x->dims[2 + i];
        g->ker[i] = n >= 0 ? ks[i] : ker[i];
        g->str[i] = g->dil[i] = 1;
        if (g->ker[i] < 1) return false;
    }
    n = attr_ints(k, "strides", v, QO_MAX_RANK);
    if (n == -2 || (n >= 0 && n != nsp)) return false;
    for (int i = 0; i < n; i++) g->str[i] = v[i];
    n = attr_ints(k, "dilations", v, QO_MAX_RANK);
    if (n == -2 || (n >= 0 && n != nsp)) return false;
    for (int i = 0; i < n; i++) g->dil[i] = v[i];
    for (int i = 0; i < nsp; i++)
        if (g->str[i] < 1 || g->dil[i] < 1) return false;
    int ap = attr_autopad(k);
    if (ap < 0) return false;
    if (ap == PAD_NOTSET) {
        n = attr_ints(k, "pads", v, 2 * QO_MAX_RANK);
        if (n == -2 || (n >= 0 && n != 2 * nsp)) return false;
        for (int i = 0; i < nsp && n > 0; i++) {
            g->pb[i] = v[i], g->pe[i] = v[nsp + i];
            if (g->pb[i] < 0 || g->pe[i] < 0) return false;
        }
    }
    for (int i = 0; i < nsp; i++) {
        int64_t dk = (g->ker[i] - 1) * g->dil[i] + 1;
        if (ap == PAD_SAME_UPPER || ap == PAD_SAME_LOWER) {
            g->out[i] = ceil_div(g->in[i], g->str[i]);
            int64_t need = (g->out[i] - 1) * g->str[i] + dk - g->in[i];
            if (need < 0) need = 0;
            g->pb[i] = ap == PAD_SAME_LOWER ? (need + 1) / 2 : need / 2;
            g->pe[i] = need - g->pb[i];
        } else {
            int64_t num = g->in[i] + g->pb[i] + g->pe[i] - dk;
            if (num < 0) return false;
            if (ceil_mode) {
                g->out[i] = ceil_div(num, g->str[i]) + 1;
                if ((g->out[i] - 1) * g->str[i] >= g->in[i] + g->pb[i]) g->out[i]--;
            } else {
                g->out[i] = num / g->str[i] + 1;
            }
        }
    }
    return true;
}

static qo_k_act act_of(const qo_k_act *act) {
    qo_k_act a = {QO_K_ACT_NONE, 0.0f, 0.0f};
    return act ? *act : a;
}

/* ---- Conv / ConvTranspose ------------------------------------------------------------------- */
static qo_status run_conv(qo_kctx *k, qo_pool *pool, const qo_k_act *act, const qo_tensor *const *in,
                          uint32_t nin, qo_tensor *out) {
    const qo_tensor *x = in[0], *w = nin > 1 ? in[1] : NULL, *b = nin > 2 ? in[2] : NULL;
    if (!is_f32(x) || !is_f32(w) || (b && !is_f32(b)) || w->rank != x->rank) return DECLINE;
    int64_t group = qo_attr_int(k->g, k->n, "group", 1);
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = w->dims[1];
    if (group < 1 || C != Cg * group || M % group != 0) return DECLINE;
    if (b && (b->rank != 1 || b->dims[0] != M)) return DECLINE;
    geom g;
    if (!window_geom(k, x, w->dims + 2, 0, &g)) return DECLINE;
    for (int i = 0; i < g.nsp; i++)
        if (g.ker[i] != w->dims[2 + i]) return DECLINE;
    qo_k_conv_params p = {.nsp = g.nsp, .N = N, .C = C, .M = M, .group = group, .act = act_of(act)};
    int64_t odims[QO_MAX_RANK] = {N, M};
    for (int i = 0; i < g.nsp; i++) {
        odims[2 + i] = p.out[i] = g.out[i];
        p.in[i] = g.in[i], p.ker[i] = g.ker[i], p.str[i] = g.str[i], p.dil[i] = g.dil[i], p.pad[i] = g.pb[i];
    }
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, odims));
    qo_k_conv_f32(&p, x->data, w->data, b ? b->data : NULL, out[0].data, pool);
    return QO_OK;
}

static qo_status run_convtranspose(qo_kctx *k, qo_pool *pool, const qo_k_act *act, const qo_tensor *const *in,
                                   uint32_t nin, qo_tensor *out) {
    const qo_tensor *x = in[0], *w = nin > 1 ? in[1] : NULL, *b = nin > 2 ? in[2] : NULL;
    if (!is_f32(x) || !is_f32(w) || (b && !is_f32(b))) return DECLINE;
    if (x->rank < 3 || x->rank - 2 > QO_K_MAX_SP || w->rank != x->rank) return DECLINE;
    int64_t group = qo_attr_int(k->g, k->n, "group", 1);
    int64_t N = x->dims[0], C = x->dims[1], Mg = w->dims[1];
    if (group < 1 || w->dims[0] != C || C % group != 0) return DECLINE;
    int64_t M = Mg * group;
    if (b && (b->rank != 1 || b->dims[0] != M)) return DECLINE;
    int nsp = x->rank - 2;
    int64_t ker[QO_MAX_RANK], str[QO_MAX_RANK], dil[QO_MAX_RANK], pb[QO_MAX_RANK] = {0}, pe[QO_MAX_RANK] = {0};
    int64_t adj[QO_MAX_RANK] = {0}, oshape[QO_MAX_RANK], outsp[QO_MAX_RANK], v[2 * QO_MAX_RANK];
    int n = attr_ints(k, "kernel_shape", v, QO_MAX_RANK);
    if (n == -2 || (n >= 0 && n != nsp)) return DECLINE;
    for (int i = 0; i < nsp; i++) {
        ker[i] = w->dims[2 + i];
        if (n >= 0 && v[i] != ker[i]) return DECLINE;
        str[i] = dil[i] = 1;
    }
    static const char *const lists[] = {"strides", "dilations", "output_padding"};
    int64_t *dst[] = {str, dil, adj};
    for (int l = 0; l < 3; l++) {
        n = attr_ints(k, lists[l], v, QO_MAX_RANK);
        if (n == -2 || (n >= 0 && n != nsp)) return DECLINE;
        for (int i = 0; i < n; i++) dst[l][i] = v[i];
    }
    for (int i = 0; i < nsp; i++)
        if (str[i] < 1 || dil[i] < 1) return DECLINE;
    int ap = attr_autopad(k);
    if (ap < 0) return DECLINE;
    n = attr_ints(k, "pads", v, 2 * QO_MAX_RANK);
    if (n == -2 || (n >= 0 && n != 2 * nsp)) return DECLINE;
    if (n > 0 && ap == PAD_NOTSET)
        for (int i = 0; i < nsp; i++) pb[i] = v[i], pe[i] = v[nsp + i];
    int nos = attr_ints(k, "output_shape", oshape, QO_MAX_RANK);
    if (nos == -2) return DECLINE;
    if (nos >= 0) {
        if (nos == nsp + 2) memmove(oshape, oshape + 2, (size_t)nsp * sizeof *oshape), nos = nsp;
        if (nos != nsp) return DECLINE;
    }
    for (int i = 0; i < nsp; i++) {
        int64_t full = str[i] * (x->dims[2 + i] - 1) + adj[i] + (ker[i] - 1) * dil[i] + 1;
        if (nos >= 0 || ap == PAD_SAME_UPPER || ap == PAD_SAME_LOWER) {
            outsp[i] = nos >= 0 ? oshape[i] : x->dims[2 + i] * str[i];
            int64_t total = full - outsp[i];
            if (total < 0) total = 0;
            if (ap == PAD_SAME_LOWER) pb[i] = total - total / 2;
            else pb[i] = total / 2;
        } else {
            outsp[i] = full - pb[i] - pe[i];
        }
        if (outsp[i] < 0) return DECLINE;
    }
    qo_k_conv_params p = {.nsp = nsp, .N = N, .C = C, .M = M, .group = group, .act = act_of(act)};
    int64_t odims[QO_MAX_RANK] = {N, M};
    for (int i = 0; i < nsp; i++) {
        odims[2 + i] = p.out[i] = outsp[i];
        p.in[i] = x->dims[2 + i], p.ker[i] = ker[i], p.str[i] = str[i], p.dil[i] = dil[i], p.pad[i] = pb[i];
    }
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, odims));
    qo_k_convtranspose_f32(&p, x->data, w->data, b ? b->data : NULL, out[0].data, pool);
    return QO_OK;
}

/* ---- Gemm / MatMul -------------------------------------------------------------------------- */
static qo_status run_gemm(qo_kctx *k, qo_pool *pool, const qo_k_act *act, const qo_tensor *const *in,
                          uint32_t nin, qo_tensor *out) {
    const qo_tensor *a = in[0], *b = nin > 1 ? in[1] : NULL, *c = nin > 2 ? in[2] : NULL;
    if (!is_f32(a) || !is_f32(b) || (c && !is_f32(c)) || a->rank != 2 || b->rank != 2) return DECLINE;
    if (!c && k->opset < 11) return DECLINE;
    qo_k_gemm_params p = {.act = act_of(act)};
    p.transA = qo_attr_int(k->g, k->n, "transA", 0) != 0, p.transB = qo_attr_int(k->g, k->n, "transB", 0) != 0;
    p.alpha = qo_attr_float(k->g, k->n, "alpha", 1.0f), p.beta = qo_attr_float(k->g, k->n, "beta", 1.0f);
    p.M = p.transA ? a->dims[1] : a->dims[0], p.K = p.transA ? a->dims[0] : a->dims[1];
    int64_t Kb = p.transB ? b->dims[1] : b->dims[0];
    p.N = p.transB ? b->dims[0] : b->dims[1];
    if (p.K != Kb) return DECLINE;
    if (c) {
        if (c->rank > 2) return DECLINE;
        int64_t c0 = c->rank == 2 ? c->dims[0] : 1, c1 = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if ((c0 != 1 && c0 != p.M) || (c1 != 1 && c1 != p.N)) return DECLINE;
        p.c_cs = c1 == 1 ? 0 : 1;
        p.c_rs = c0 == 1 ? 0 : c1;
    }
    int64_t odims[2] = {p.M, p.N};
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, 2, odims));
    qo_k_gemm_f32(&p, a->data, b->data, c ? c->data : NULL, out[0].data, pool);
    return QO_OK;
}

static qo_status run_matmul(qo_kctx *k, qo_pool *pool, const qo_k_act *act, const qo_tensor *const *in,
                            uint32_t nin, qo_tensor *out) {
    const qo_tensor *a = in[0], *b = nin > 1 ? in[1] : NULL;
    if (!is_f32(a) || !is_f32(b) || a->rank < 1 || b->rank < 1) return DECLINE;
    int64_t ad[QO_MAX_RANK + 1], bd[QO_MAX_RANK + 1];
    int ar = a->rank, br = b->rank;
    memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ar);
    memcpy(bd, b->dims, sizeof(int64_t) * (size_t)br);
    if (ar == 1) ad[1] = ad[0], ad[0] = 1, ar = 2;
    if (br == 1) bd[1] = 1, br = 2;
    qo_k_matmul_params p = {.M = ad[ar - 2], .K = ad[ar - 1], .N = bd[br - 1], .act = act_of(act)};
    if (bd[br - 2] != p.K) return DECLINE;
    int bra = ar - 2, brb = br - 2, brank = bra > brb ? bra : brb;
    if (brank > QO_K_MAX_BATCH_RANK) return DECLINE;
    int64_t ma = p.M * p.K, mb = p.K * p.N;
    for (int i = brank - 1; i >= 0; i--) {
        int ia = i - (brank - bra), ib = i - (brank - brb);
        int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
        if (da != db && da != 1 && db != 1) return DECLINE;
        p.bdims[i] = da == 1 ? db : da;
        p.astr[i] = da == 1 ? 0 : ma;
        p.bstr[i] = db == 1 ? 0 : mb;
        ma *= da, mb *= db;
    }
    p.brank = brank;
    int64_t odims[QO_MAX_RANK + 2] = {0};
    int orank = 0;
    for (int i = 0; i < brank; i++) odims[orank++] = p.bdims[i];
    if (a->rank > 1) odims[orank++] = p.M;
    if (b->rank > 1) odims[orank++] = p.N;
    if (orank > QO_MAX_RANK) return DECLINE;
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, orank, odims));
    qo_k_matmul_f32(&p, a->data, b->data, NULL, out[0].data, pool);
    return QO_OK;
}

/* ---- pools, softmax ------------------------------------------------------------------------- */
static qo_status run_window_pool(qo_kctx *k, qo_pool *pool, bool is_max, const qo_tensor *x, uint32_t nout,
                                 qo_tensor *out) {
    if (!is_f32(x)) return DECLINE;
    if (is_max && nout > 1 && qo_node_output(k->g, k->n, 1)) return DECLINE; /* Indices */
    geom g;
    if (!window_geom(k, x, NULL, (int)qo_attr_int(k->g, k->n, "ceil_mode", 0), &g)) return DECLINE;
    qo_k_pool_params p = {.nsp = g.nsp, .N = x->dims[0], .C = x->dims[1]};
    p.count_include_pad = !is_max && qo_attr_int(k->g, k->n, "count_include_pad", 0) != 0;
    int64_t odims[QO_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < g.nsp; i++) {
        odims[2 + i] = p.out[i] = g.out[i];
        p.in[i] = g.in[i], p.ker[i] = g.ker[i], p.str[i] = g.str[i], p.dil[i] = g.dil[i];
        p.pad[i] = g.pb[i], p.pad_end[i] = g.pe[i];
    }
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, odims));
    (is_max ? qo_k_maxpool_f32 : qo_k_avgpool_f32)(&p, x->data, out[0].data, pool);
    return QO_OK;
}

static qo_status run_global(qo_kctx *k, qo_pool *pool, bool is_max, const qo_tensor *x, qo_tensor *out) {
    if (!is_f32(x) || x->rank < 2) return DECLINE;
    int64_t odims[QO_MAX_RANK] = {0};
    for (int i = 0; i < x->rank; i++) odims[i] = i < 2 ? x->dims[i] : 1;
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, odims));
    int64_t NC = x->dims[0] * x->dims[1], S = prod(x->dims, 2, x->rank);
    (is_max ? qo_k_global_maxpool_f32 : qo_k_global_avgpool_f32)(NC, S, x->data, out[0].data, pool);
    return QO_OK;
}

static qo_status run_softmax(qo_kctx *k, qo_pool *pool, bool is_log, const qo_tensor *x, qo_tensor *out) {
    if (!is_f32(x)) return DECLINE;
    int r = x->rank;
    int64_t axis = qo_attr_int(k->g, k->n, "axis", k->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || (axis >= r && !(r == 0 && axis == 0))) return DECLINE;
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, r, x->dims));
    int64_t outer = prod(x->dims, 0, (int)axis), len, inner;
    if (k->opset < 13) len = prod(x->dims, (int)axis, r), inner = 1;
    else len = r ? x->dims[axis] : 1, inner = prod(x->dims, (int)axis + 1, r);
    qo_k_softmax_f32(outer, len, inner, is_log, x->data, out[0].data, pool);
    return QO_OK;
}

bool qo_k_node_supported(qo_op op) {
    switch (op) {
    case QO_OP_CONV: case QO_OP_CONVTRANSPOSE: case QO_OP_GEMM: case QO_OP_MATMUL: case QO_OP_MAXPOOL:
    case QO_OP_AVERAGEPOOL: case QO_OP_GLOBALAVERAGEPOOL: case QO_OP_GLOBALMAXPOOL: case QO_OP_SOFTMAX:
    case QO_OP_LOGSOFTMAX:
        return true;
    default:
        return false;
    }
}

qo_status qo_k_node_run(qo_kctx *k, qo_pool *pool, const qo_k_act *act, const qo_tensor *const *in,
                        uint32_t nin, qo_tensor *out, uint32_t nout) {
    qo_op op = (qo_op)qo_node_get(k->g, k->n)->op;
    bool has_act = act && act->kind != QO_K_ACT_NONE;
    if (nin < 1 || !in[0] || nout < 1) return DECLINE;
    switch (op) {
    case QO_OP_CONV: return nin >= 2 && in[1] ? run_conv(k, pool, act, in, nin, out) : DECLINE;
    case QO_OP_CONVTRANSPOSE: return nin >= 2 && in[1] ? run_convtranspose(k, pool, act, in, nin, out) : DECLINE;
    case QO_OP_GEMM: return nin >= 2 && in[1] ? run_gemm(k, pool, act, in, nin, out) : DECLINE;
    case QO_OP_MATMUL: return nin >= 2 && in[1] ? run_matmul(k, pool, act, in, nin, out) : DECLINE;
    default: break;
    }
    if (has_act) return DECLINE;
    switch (op) {
    case QO_OP_MAXPOOL: return run_window_pool(k, pool, true, in[0], nout, out);
    case QO_OP_AVERAGEPOOL: return run_window_pool(k, pool, false, in[0], nout, out);
    case QO_OP_GLOBALAVERAGEPOOL: return run_global(k, pool, false, in[0], out);
    case QO_OP_GLOBALMAXPOOL: return run_global(k, pool, true, in[0], out);
    case QO_OP_SOFTMAX: return run_softmax(k, pool, false, in[0], out);
    case QO_OP_LOGSOFTMAX: return run_softmax(k, pool, true, in[0], out);
    default: return DECLINE;
    }
}
