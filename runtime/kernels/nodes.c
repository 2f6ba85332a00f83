/* runtime/kernels/nodes.c — node adapters: resolve a node's attributes and input shapes the way
 * runtime/ref/nn.c does (Conv, ConvTranspose and pool geometry through the same resolver,
 * runtime/ref/geom.h), allocate the output, and call the optimized kernel. Every check that
 * fails declines the node (QO_ERR_UNSUPPORTED, no diagnostic): the reference kernel then runs and
 * reports malformed nodes with its own messages. */
#include "runtime/kernels/kernels.h"
#include "runtime/kernels/train_kernels.h"
#include "runtime/ref/geom.h"

#include <string.h>

#define DECLINE QO_ERR_UNSUPPORTED

static bool is_f32(const qo_tensor *t) { return t && t->elem == QO_F32; }

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Geometry is read as the reference reads it (runtime/ref/geom.h), but strictly (malformed
 * attributes decline) and silently; ranks beyond the kernels' QO_K_MAX_SP spatial dims decline. */
static bool fits(const qo_tensor *x) { return x->rank >= 3 && x->rank - 2 <= QO_K_MAX_SP; }

static qo_k_act act_of(const qo_k_act *act) {
    qo_k_act a = {QO_K_ACT_NONE, 0.0f, 0.0f};
    return act ? *act : a;
}

/* ---- Conv / ConvTranspose ------------------------------------------------------------------- */
static qo_k_conv_params conv_params(const qo_geom *g, const qo_conv_ch *c, const qo_k_act *act) {
    qo_k_conv_params p = {.nsp = g->nsp, .N = c->N, .C = c->C, .M = c->M, .group = c->group, .act = act_of(act)};
    for (int i = 0; i < g->nsp; i++) {
        p.in[i] = g->in[i], p.out[i] = g->out[i], p.ker[i] = g->ker[i];
        p.str[i] = g->str[i], p.dil[i] = g->dil[i], p.pad[i] = g->pb[i];
    }
    return p;
}

/* Conv (transpose false) or ConvTranspose (true). */
static qo_status plan_conv(qo_kctx *k, const qo_k_act *act, const qo_tensor *const *in, uint32_t nin, qo_k_plan *pl,
                           bool transpose) {
    const qo_tensor *x = in[0], *w = nin > 1 ? in[1] : NULL, *b = nin > 2 ? in[2] : NULL;
    if (!is_f32(x) || !is_f32(w) || (b && !is_f32(b)) || !fits(x) || w->rank != x->rank) return DECLINE;
    qo_conv_ch ch;
    if (qo_geom_channels(k, x, w, b, transpose, QO_GEOM_STRICT, &ch) != QO_OK) return DECLINE;
    qo_geom g;
    qo_status s = transpose ? qo_geom_convtranspose(k, x, w, QO_GEOM_STRICT, &g)
                            : qo_geom_window(k, x, w->dims + 2, 0, QO_GEOM_STRICT, &g);
    if (s != QO_OK) return DECLINE;
    for (int i = 0; i < g.nsp; i++)
        if (g.ker[i] != w->dims[2 + i]) return DECLINE; /* Conv: kernel_shape disagrees with W */
    pl->kind = transpose ? QO_K_PLAN_CONVTRANSPOSE : QO_K_PLAN_CONV;
    pl->u.conv = conv_params(&g, &ch, act);
    pl->u.conv.fast = k->fast_conv;
    pl->rank = qo_geom_out_dims(&g, ch.N, ch.M, pl->dims);
    return QO_OK;
}

/* ---- Gemm / MatMul -------------------------------------------------------------------------- */
static qo_status plan_gemm(qo_kctx *k, const qo_k_act *act, const qo_tensor *const *in, uint32_t nin, qo_k_plan *pl) {
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
    pl->kind = QO_K_PLAN_GEMM;
    pl->u.gemm = p;
    pl->rank = 2, pl->dims[0] = p.M, pl->dims[1] = p.N;
    return QO_OK;
}

static qo_status plan_matmul(const qo_k_act *act, const qo_tensor *const *in, uint32_t nin, qo_k_plan *pl) {
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
    int orank = 0;
    for (int i = 0; i < brank; i++) {
        if (orank >= QO_MAX_RANK) return DECLINE;
        pl->dims[orank++] = p.bdims[i];
    }
    if (orank + (a->rank > 1) + (b->rank > 1) > QO_MAX_RANK) return DECLINE;
    if (a->rank > 1) pl->dims[orank++] = p.M;
    if (b->rank > 1) pl->dims[orank++] = p.N;
    pl->kind = QO_K_PLAN_MATMUL;
    pl->u.mm = p;
    pl->rank = orank;
    return QO_OK;
}

/* ---- pools, softmax ------------------------------------------------------------------------- */
static qo_status plan_window_pool(qo_kctx *k, bool is_max, const qo_tensor *x, uint32_t nout, qo_k_plan *pl) {
    if (!is_f32(x)) return DECLINE;
    if (is_max && nout > 1 && qo_node_output(k->g, k->n, 1)) return DECLINE; /* Indices */
    qo_geom g;
    if (!fits(x) || qo_geom_pool(k, x, QO_GEOM_STRICT, &g) != QO_OK) return DECLINE;
    qo_k_pool_params p = {.nsp = g.nsp, .N = x->dims[0], .C = x->dims[1]};
    p.count_include_pad = !is_max && qo_attr_int(k->g, k->n, "count_include_pad", 0) != 0;
    for (int i = 0; i < g.nsp; i++) {
        p.in[i] = g.in[i], p.out[i] = g.out[i], p.ker[i] = g.ker[i], p.str[i] = g.str[i], p.dil[i] = g.dil[i];
        p.pad[i] = g.pb[i], p.pad_end[i] = g.pe[i];
    }
    pl->kind = is_max ? QO_K_PLAN_MAXPOOL : QO_K_PLAN_AVGPOOL;
    pl->u.pool = p;
    pl->rank = qo_geom_out_dims(&g, x->dims[0], x->dims[1], pl->dims);
    return QO_OK;
}

static qo_status plan_global(bool is_max, const qo_tensor *x, qo_k_plan *pl) {
    if (!is_f32(x) || x->rank < 2) return DECLINE;
    for (int i = 0; i < x->rank; i++) pl->dims[i] = i < 2 ? x->dims[i] : 1;
    pl->rank = x->rank;
    pl->kind = is_max ? QO_K_PLAN_GLOBALMAX : QO_K_PLAN_GLOBALAVG;
    pl->u.red.outer = x->dims[0] * x->dims[1];
    pl->u.red.len = prod(x->dims, 2, x->rank);
    return QO_OK;
}

static qo_status plan_softmax(qo_kctx *k, bool is_log, const qo_tensor *x, qo_k_plan *pl) {
    if (!is_f32(x)) return DECLINE;
    int r = x->rank;
    int64_t axis = qo_attr_int(k->g, k->n, "axis", k->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || (axis >= r && !(r == 0 && axis == 0))) return DECLINE;
    pl->rank = r;
    memcpy(pl->dims, x->dims, sizeof(int64_t) * (size_t)r);
    pl->u.red.outer = prod(x->dims, 0, (int)axis);
    if (k->opset < 13) pl->u.red.len = prod(x->dims, (int)axis, r), pl->u.red.inner = 1;
    else pl->u.red.len = r ? x->dims[axis] : 1, pl->u.red.inner = prod(x->dims, (int)axis + 1, r);
    pl->kind = is_log ? QO_K_PLAN_LOGSOFTMAX : QO_K_PLAN_SOFTMAX;
    return QO_OK;
}

/* LayerNormalization with one output whose Scale (and B) are dense over the normalized dims (leading
 * 1s allowed); broadcast Scale/B, Mean and InvStdDev outputs decline. */
static bool covers_trailing(const qo_tensor *t, const qo_tensor *x, int64_t axis) {
    if (!is_f32(t)) return false;
    for (int i = 0; i < t->rank; i++) {
        int xi = x->rank - (t->rank - i);
        if (xi < axis ? t->dims[i] != 1 : t->dims[i] != x->dims[xi]) return false;
    }
    return prod(t->dims, 0, t->rank) == prod(x->dims, (int)axis, x->rank); /* no broadcast within them */
}

static qo_status plan_layernorm(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, uint32_t nout, qo_k_plan *pl) {
    const qo_tensor *x = in[0], *sc = nin > 1 ? in[1] : NULL, *bi = nin > 2 ? in[2] : NULL;
    if (!is_f32(x) || !sc || nin > 3 || x->rank < 1) return DECLINE;
    for (uint32_t i = 1; i < nout; i++)
        if (qo_node_output(k->g, k->n, i)) return DECLINE;
    int64_t axis = qo_attr_int(k->g, k->n, "axis", -1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return DECLINE;
    if (!covers_trailing(sc, x, axis) || (bi && !covers_trailing(bi, x, axis))) return DECLINE;
    pl->kind = QO_K_PLAN_LAYERNORM;
    pl->rank = x->rank;
    memcpy(pl->dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    pl->u.ln.outer = prod(x->dims, 0, (int)axis);
    pl->u.ln.inner = prod(x->dims, (int)axis, x->rank);
    pl->u.ln.eps = qo_attr_float(k->g, k->n, "epsilon", 1e-5f);
    return QO_OK;
}

bool qo_k_node_supported(qo_op op) {
    if (qo_k_train_supported(op)) return true; /* train_kernels.c */
    switch (op) {
    case QO_OP_CONV: case QO_OP_CONVTRANSPOSE: case QO_OP_GEMM: case QO_OP_MATMUL: case QO_OP_MAXPOOL:
    case QO_OP_AVERAGEPOOL: case QO_OP_GLOBALAVERAGEPOOL: case QO_OP_GLOBALMAXPOOL: case QO_OP_SOFTMAX:
    case QO_OP_LOGSOFTMAX: case QO_OP_LAYERNORMALIZATION:
        return true;
    default:
        return false;
    }
}

qo_status qo_k_node_plan(qo_kctx *k, const qo_k_act *act, const qo_tensor *const *in, uint32_t nin, uint32_t nout,
                         qo_k_plan *pl) {
    memset(pl, 0, sizeof *pl);
    qo_op op = (qo_op)qo_node_get(k->g, k->n)->op;
    bool has_act = act && act->kind != QO_K_ACT_NONE;
    if (nin < 1 || !in[0] || nout < 1) return DECLINE;
    switch (op) {
    case QO_OP_CONV: return nin >= 2 && in[1] ? plan_conv(k, act, in, nin, pl, false) : DECLINE;
    case QO_OP_CONVTRANSPOSE: return nin >= 2 && in[1] ? plan_conv(k, act, in, nin, pl, true) : DECLINE;
    case QO_OP_GEMM: return nin >= 2 && in[1] ? plan_gemm(k, act, in, nin, pl) : DECLINE;
    case QO_OP_MATMUL: return nin >= 2 && in[1] ? plan_matmul(act, in, nin, pl) : DECLINE;
    default: break;
    }
    if (has_act) return DECLINE;
    switch (op) {
    case QO_OP_MAXPOOL: return plan_window_pool(k, true, in[0], nout, pl);
    case QO_OP_AVERAGEPOOL: return plan_window_pool(k, false, in[0], nout, pl);
    case QO_OP_GLOBALAVERAGEPOOL: return plan_global(false, in[0], pl);
    case QO_OP_GLOBALMAXPOOL: return plan_global(true, in[0], pl);
    case QO_OP_SOFTMAX: return plan_softmax(k, false, in[0], pl);
    case QO_OP_LOGSOFTMAX: return plan_softmax(k, true, in[0], pl);
    case QO_OP_LAYERNORMALIZATION: return plan_layernorm(k, in, nin, nout, pl);
    default: return DECLINE;
    }
}

void qo_k_plan_run(const qo_k_plan *pl, const float *x, const float *w, const float *b, const float *res, float *y,
                   qo_pool *pool) {
    switch (pl->kind) {
    case QO_K_PLAN_CONV:
    case QO_K_PLAN_CONVTRANSPOSE: {
        qo_k_conv_params p = pl->u.conv;
        p.res = res;
        (pl->kind == QO_K_PLAN_CONV ? qo_k_conv_f32 : qo_k_convtranspose_f32)(&p, x, w, b, y, pool);
        break;
    }
    case QO_K_PLAN_GEMM: {
        qo_k_gemm_params p = pl->u.gemm;
        p.res = res;
        qo_k_gemm_f32(&p, x, w, b, y, pool);
        break;
    }
    case QO_K_PLAN_MATMUL: {
        qo_k_matmul_params p = pl->u.mm;
        p.res = res;
        qo_k_matmul_f32(&p, x, w, b, y, pool);
        break;
    }
    case QO_K_PLAN_MAXPOOL: qo_k_maxpool_f32(&pl->u.pool, x, y, pool); break;
    case QO_K_PLAN_AVGPOOL: qo_k_avgpool_f32(&pl->u.pool, x, y, pool); break;
    case QO_K_PLAN_GLOBALAVG: qo_k_global_avgpool_f32(pl->u.red.outer, pl->u.red.len, x, y, pool); break;
    case QO_K_PLAN_GLOBALMAX: qo_k_global_maxpool_f32(pl->u.red.outer, pl->u.red.len, x, y, pool); break;
    case QO_K_PLAN_SOFTMAX:
    case QO_K_PLAN_LOGSOFTMAX:
        qo_k_softmax_f32(pl->u.red.outer, pl->u.red.len, pl->u.red.inner, pl->kind == QO_K_PLAN_LOGSOFTMAX, x, y, pool);
        break;
    case QO_K_PLAN_MATMUL_STRIDED: qo_k_matmul_strided_f32(&pl->u.smm, x, w, b, res, y, pool); break;
    case QO_K_PLAN_LAYERNORM: qo_k_layernorm_f32(pl->u.ln.outer, pl->u.ln.inner, pl->u.ln.eps, x, w, b, y, pool); break;
    default: break;
    }
}

qo_status qo_k_node_run(qo_kctx *k, qo_pool *pool, const qo_k_act *act, const qo_tensor *const *in,
                        uint32_t nin, qo_tensor *out, uint32_t nout) {
    if (qo_k_train_supported((qo_op)qo_node_get(k->g, k->n)->op))
        return act && act->kind != QO_K_ACT_NONE ? DECLINE : qo_k_train_node_run(k, pool, in, nin, out, nout);
    qo_k_plan pl;
    QO_TRY(qo_k_node_plan(k, act, in, nin, nout, &pl));
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, pl.rank, pl.dims));
    const float *w = nin > 1 && in[1] ? in[1]->data : NULL, *b = nin > 2 && in[2] ? in[2]->data : NULL;
    if (pl.kind == QO_K_PLAN_MATMUL) b = NULL; /* MatMul has no bias input */
    qo_k_plan_run(&pl, in[0]->data, w, b, NULL, out[0].data, pool);
    return QO_OK;
}
