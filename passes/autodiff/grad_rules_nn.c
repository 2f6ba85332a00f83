/* passes/autodiff/grad_rules_nn.c — gradient rules of the normalization layers (LayerNormalization,
 * InstanceNormalization), the indexing ops (Gather, GatherElements), data rearrangements (Tile,
 * DepthToSpace, SpaceToDepth, CumSum) and nearest-neighbour upsampling (Resize; upgrade-opset
 * turns an older model's Upsample into it, autodiff needing opset 13), written
 * in ONNX ops like the rules of grad_rules.c (which dispatches here). */
#include "passes/autodiff/ad_impl.h"

#include <string.h>

#define IN(i) qo_node_input(a->g, n, (i))
#define OUT(i) qo_node_output(a->g, n, (i))
#define NEEDS(i) (qo_node_input(a->g, n, (i)) && qo_ad_needs(a, qo_node_input(a->g, n, (i))))

static qo_val konst(ad *a, qo_val like, double v) { return qo_ad_scalar(a, qo_ad_elem(a, like), v); }

static bool str_attr_is(ad *a, qo_node n, const char *name, const char *dflt, const char *want) {
    const qo_attr *at = qo_node_attr(a->g, n, name);
    if (!at || at->kind != QO_ATTR_STRING) return strcmp(dflt, want) == 0;
    size_t k = strlen(want);
    return at->u.s.n == k && memcmp(at->u.s.p, want, k) == 0;
}

/* Adds c (X's shape) to the gradient of x. */
static void contrib(ad *a, qo_val x, qo_val c) {
    qo_ad_type_like(a, c, x);
    qo_ad_add_grad(a, x, c);
}

/* ---- normalization ------------------------------------------------------------------------------ */

/* Mean over axes (kept), as ReduceSum / count: the ReduceSum form with axes as an input is the one
 * every opset >= 13 reads. */
static qo_val mean_keep(ad *a, qo_val x, int na, const int64_t *axes, int64_t cnt) {
    return qo_ad_op2(a, QO_OP_DIV, qo_ad_reducesum(a, x, na, axes, true), konst(a, x, (double)cnt));
}

/* The input gradient of a normalization over axes (count cnt elements each), recomputing the
 * statistics from x: xhat = (x - mean) rstd, rstd = 1 / sqrt(var + eps), and with gs = dY scale,
 *   dX = rstd (gs - mean(gs) - xhat mean(gs xhat)).
 * *xhat_out receives xhat (for the scale's gradient). */
static qo_val norm_dx(ad *a, qo_val x, qo_val gs, int na, const int64_t *axes, int64_t cnt, double eps, qo_val *xhat_out) {
    qo_val mu = mean_keep(a, x, na, axes, cnt);
    qo_val xc = qo_ad_op2(a, QO_OP_SUB, x, mu);
    qo_val var = mean_keep(a, qo_ad_op2(a, QO_OP_MUL, xc, xc), na, axes, cnt);
    qo_val rstd = qo_ad_op1(a, QO_OP_RECIPROCAL, qo_ad_op1(a, QO_OP_SQRT, qo_ad_op2(a, QO_OP_ADD, var, konst(a, x, eps))));
    qo_val xhat = qo_ad_op2(a, QO_OP_MUL, xc, rstd);
    qo_val m1 = mean_keep(a, gs, na, axes, cnt);
    qo_val m2 = mean_keep(a, qo_ad_op2(a, QO_OP_MUL, gs, xhat), na, axes, cnt);
    qo_val t = qo_ad_op2(a, QO_OP_SUB, qo_ad_op2(a, QO_OP_SUB, gs, m1), qo_ad_op2(a, QO_OP_MUL, xhat, m2));
    *xhat_out = xhat;
    return qo_ad_op2(a, QO_OP_MUL, t, rstd);
}

/* LayerNormalization(X, Scale[, B]) over the axes [axis, r): Scale and B broadcast to X's trailing
 * dims, so their gradients are dY xhat and dY summed over the broadcast axes. */
static qo_status rule_layernorm(ad *a, qo_node n, const qo_val *gy) {
    qo_graph *g = a->g;
    if (g->nodes[n].nout > 1 && (gy[1] || (g->nodes[n].nout > 2 && gy[2])))
        return qo_ad_err(a, QO_ERR_UNSUPPORTED, "LayerNormalization: only the normalized result is differentiated");
    int32_t r;
    int64_t d[QO_AD_MAXR], axes[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the normalized input", &r, d));
    int64_t ax = qo_attr_int(g, n, "axis", -1);
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) return qo_ad_err(a, QO_ERR_INVALID_MODEL, "LayerNormalization: axis out of range");
    int na = 0;
    int64_t cnt = 1;
    for (int64_t i = ax; i < r; i++) axes[na++] = i, cnt *= d[i];
    double eps = qo_attr_float(g, n, "epsilon", 1e-5f);
    qo_val x = IN(0), g0 = gy[0];
    qo_val gs = qo_ad_op2(a, QO_OP_MUL, g0, IN(1)), xhat;
    qo_val dx = norm_dx(a, x, gs, na, axes, cnt, eps, &xhat);
    if (NEEDS(0)) contrib(a, x, dx);
    if (NEEDS(1)) {
        qo_val c;
        QO_TRY(qo_ad_unbroadcast(a, qo_ad_op2(a, QO_OP_MUL, g0, xhat), r, d, IN(1), &c));
        qo_ad_add_grad(a, IN(1), c);
    }
    if (g->nodes[n].nin > 2 && NEEDS(2)) {
        qo_val c;
        QO_TRY(qo_ad_unbroadcast(a, g0, r, d, IN(2), &c));
        qo_ad_add_grad(a, IN(2), c);
    }
    return QO_OK;
}

/* InstanceNormalization(X [N, C, D...], scale [C], B [C]) over the axes [2, r). */
static qo_status rule_instancenorm(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    int32_t r;
    int64_t d[QO_AD_MAXR], axes[QO_AD_MAXR], cd[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the normalized input", &r, d));
    if (r < 3) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "InstanceNormalization input of rank %d", (int)r);
    int na = 0;
    int64_t cnt = 1;
    for (int32_t i = 2; i < r; i++) axes[na++] = i, cnt *= d[i];
    double eps = qo_attr_float(g, n, "epsilon", 1e-5f);
    cd[0] = d[1];
    for (int32_t i = 1; i < r - 1; i++) cd[i] = 1;
    qo_val x = IN(0);
    qo_val gs = qo_ad_op2(a, QO_OP_MUL, gy, qo_ad_reshape(a, IN(1), r - 1, cd)), xhat;
    qo_val dx = norm_dx(a, x, gs, na, axes, cnt, eps, &xhat);
    if (NEEDS(0)) contrib(a, x, dx);
    int64_t sax[QO_AD_MAXR]; /* the axes other than C */
    int ns = 0;
    for (int32_t i = 0; i < r; i++)
        if (i != 1) sax[ns++] = i;
    if (NEEDS(1)) contrib(a, IN(1), qo_ad_reducesum(a, qo_ad_op2(a, QO_OP_MUL, gy, xhat), ns, sax, false));
    if (NEEDS(2)) contrib(a, IN(2), qo_ad_reducesum(a, gy, ns, sax, false));
    return QO_OK;
}

/* ---- indexing ----------------------------------------------------------------------------------- */

/* Gather(data, indices, axis): dY scattered back, added where an index repeats. Axis 0 (embedding
 * tables) is ScatterND(zeros, indices[..., None], dY); another axis is ScatterElements on dY
 * reshaped to data's rank with the indices broadcast to it. */
static qo_status rule_gather(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    int32_t r, q;
    int64_t d[QO_AD_MAXR], id[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the gathered data", &r, d));
    QO_TRY(qo_ad_need_shape(a, IN(1), "the indices", &q, id));
    int64_t ax = qo_attr_int(g, n, "axis", 0);
    if (ax < 0) ax += r;
    if (ax < 0 || ax >= r) return qo_ad_err(a, QO_ERR_INVALID_MODEL, "Gather: axis out of range");
    int64_t k = 1;
    for (int32_t i = 0; i < q; i++) k *= id[i];
    qo_val zeros = qo_ad_zeros_like(a, IN(0)), c;
    if (ax == 0) {
        int64_t i2[QO_AD_MAXR];
        if (q + 1 > QO_AD_MAXR) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Gather: indices of rank %d", (int)q);
        memcpy(i2, id, sizeof(int64_t) * (size_t)q);
        i2[q] = 1;
        qo_val ins[3] = {zeros, qo_ad_reshape(a, IN(1), q + 1, i2), gy};
        c = qo_ad_op(a, QO_OP_SCATTERND, 3, ins);
    } else {
        int64_t gd[QO_AD_MAXR], idd[QO_AD_MAXR];
        for (int32_t i = 0; i < r; i++) gd[i] = i == ax ? k : d[i], idd[i] = i == ax ? k : 1;
        qo_val gyr = qo_ad_reshape(a, gy, r, gd);
        qo_val idx = qo_ad_op2(a, QO_OP_EXPAND, qo_ad_reshape(a, IN(1), r, idd), qo_ad_ints(a, r, gd));
        qo_val ins[3] = {zeros, idx, gyr};
        c = qo_ad_op(a, QO_OP_SCATTERELEMENTS, 3, ins);
        qo_node_set_attr_int(g, g->vals[c].def, "axis", ax);
    }
    qo_node_set_attr_string(g, g->vals[c].def, "reduction", "add", 3);
    contrib(a, IN(0), c);
    return QO_OK;
}

/* GatherElements(data, indices, axis): ScatterElements(zeros, indices, dY, axis, add). */
static qo_status rule_gather_elements(ad *a, qo_node n, qo_val gy) {
    qo_val zeros = qo_ad_zeros_like(a, IN(0));
    if (!zeros) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "GatherElements: the data needs a static shape");
    qo_val ins[3] = {zeros, IN(1), gy};
    qo_val c = qo_ad_op(a, QO_OP_SCATTERELEMENTS, 3, ins);
    qo_node_set_attr_int(a->g, a->g->vals[c].def, "axis", qo_attr_int(a->g, n, "axis", 0));
    qo_node_set_attr_string(a->g, a->g->vals[c].def, "reduction", "add", 3);
    contrib(a, IN(0), c);
    return QO_OK;
}

/* ---- rearrangements ----------------------------------------------------------------------------- */

/* dY of shape [.., f_i d_i, ..] split into [.., f_i, d_i, ..] on the axes with a factor f_i > 1
 * (Tile: the copy index first) or [.., d_i, f_i, ..] (nearest upsampling: the offset last), summed
 * over the factor axes: X's shape. */
static qo_status sum_blocks(ad *a, qo_val x, qo_val gy, int32_t r, const int64_t *d, const int64_t *f, bool factor_first) {
    int64_t sd[QO_AD_MAXR], axes[QO_AD_MAXR];
    int32_t s = 0;
    int na = 0;
    for (int32_t i = 0; i < r; i++) {
        if (f[i] == 1) {
            sd[s++] = d[i];
            continue;
        }
        if (s + 2 > QO_AD_MAXR) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "rank %d too high to split", (int)r);
        if (factor_first) axes[na++] = s, sd[s++] = f[i], sd[s++] = d[i];
        else sd[s++] = d[i], axes[na++] = s, sd[s++] = f[i];
    }
    if (!na) {
        contrib(a, x, gy);
        return QO_OK;
    }
    qo_val t = qo_ad_reducesum(a, qo_ad_reshape(a, gy, s, sd), na, axes, false);
    contrib(a, x, t);
    return QO_OK;
}

static qo_status rule_tile(ad *a, qo_node n, qo_val gy) {
    int32_t r;
    int64_t d[QO_AD_MAXR], rep[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the tiled input", &r, d));
    if (qo_pass_const_ints(a->g, IN(1), rep, QO_AD_MAXR) != r)
        return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Tile: the repeats must be a constant");
    for (int32_t i = 0; i < r; i++)
        if (rep[i] < 1) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "Tile: repeat %lld", (long long)rep[i]);
    return sum_blocks(a, IN(0), gy, r, d, rep, true);
}

/* DepthToSpace / SpaceToDepth permute elements: the gradient is the inverse permutation, dY
 * reshaped to the 6-D form of the result, transposed back and reshaped to X's shape. */
static qo_status rule_depth_space(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    int32_t r;
    int64_t d[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the input", &r, d));
    int64_t b = qo_attr_int(g, n, "blocksize", 0);
    if (r != 4 || b < 1) return qo_ad_err(a, QO_ERR_UNSUPPORTED, "%s: rank-4 input and a blocksize", qo_node_op_type(g, n));
    int64_t N = d[0], C = d[1], H = d[2], W = d[3], s6[6], perm[6];
    if (g->nodes[n].op == QO_OP_SPACETODEPTH) {
        /* y[N, (bh bw C), H/b, W/b] from x viewed [N, C, H/b, bh, W/b, bw] transposed (0, 3, 5, 1, 2, 4) */
        int64_t v[6] = {N, b, b, C, H / b, W / b}, p[6] = {0, 3, 4, 1, 5, 2};
        memcpy(s6, v, sizeof v), memcpy(perm, p, sizeof p);
    } else if (str_attr_is(a, n, "mode", "DCR", "CRD")) {
        /* y[N, C/b^2, H b, W b] from x viewed [N, C/b^2, bh, bw, H, W] transposed (0, 1, 4, 2, 5, 3) */
        int64_t v[6] = {N, C / (b * b), H, b, W, b}, p[6] = {0, 1, 3, 5, 2, 4};
        memcpy(s6, v, sizeof v), memcpy(perm, p, sizeof p);
    } else {
        /* DCR: x viewed [N, bh, bw, C/b^2, H, W] transposed (0, 3, 4, 1, 5, 2) */
        int64_t v[6] = {N, C / (b * b), H, b, W, b}, p[6] = {0, 3, 5, 1, 2, 4};
        memcpy(s6, v, sizeof v), memcpy(perm, p, sizeof p);
    }
    qo_val t = qo_ad_op1(a, QO_OP_TRANSPOSE, qo_ad_reshape(a, gy, 6, s6));
    qo_node_set_attr_ints(g, g->vals[t].def, "perm", perm, 6);
    contrib(a, IN(0), qo_ad_reshape(a, t, r, d));
    return QO_OK;
}

/* CumSum: the cumulative sum of dY in the other direction, exclusive as the forward. */
static qo_status rule_cumsum(ad *a, qo_node n, qo_val gy) {
    qo_val ins[2] = {gy, IN(1)};
    qo_val c = qo_ad_op(a, QO_OP_CUMSUM, 2, ins);
    qo_node t = a->g->vals[c].def;
    qo_node_set_attr_int(a->g, t, "exclusive", qo_attr_int(a->g, n, "exclusive", 0));
    qo_node_set_attr_int(a->g, t, "reverse", qo_attr_int(a->g, n, "reverse", 0) ? 0 : 1);
    contrib(a, IN(0), c);
    return QO_OK;
}

/* Resize in nearest mode by whole factors, where output index o reads input o / f
 * (floor): coordinate_transformation_mode half_pixel or pytorch_half_pixel with a round_prefer_*
 * nearest_mode (the source coordinate (o + 1/2) / f - 1/2 is then never half-way), or asymmetric
 * with floor (PyTorch's nn.Upsample export, and Upsample upgraded). dX sums dY over each f-block. */
static qo_status rule_resize(ad *a, qo_node n, qo_val gy) {
    qo_graph *g = a->g;
    const char *op = qo_node_op_type(g, n);
    int32_t r, yr;
    int64_t d[QO_AD_MAXR], yd[QO_AD_MAXR], f[QO_AD_MAXR];
    QO_TRY(qo_ad_need_shape(a, IN(0), "the resized input", &r, d));
    QO_TRY(qo_ad_need_shape(a, OUT(0), "the resized result", &yr, yd));
    if (!str_attr_is(a, n, "mode", "nearest", "nearest"))
        return qo_ad_err(a, QO_ERR_UNSUPPORTED, "%s: only mode 'nearest' is differentiated", op);
    {
        bool hp = str_attr_is(a, n, "coordinate_transformation_mode", "half_pixel", "half_pixel") ||
                  str_attr_is(a, n, "coordinate_transformation_mode", "half_pixel", "pytorch_half_pixel");
        bool asym = str_attr_is(a, n, "coordinate_transformation_mode", "half_pixel", "asymmetric");
        bool rnd = str_attr_is(a, n, "nearest_mode", "round_prefer_floor", "round_prefer_floor") ||
                   str_attr_is(a, n, "nearest_mode", "round_prefer_floor", "round_prefer_ceil");
        bool flr = str_attr_is(a, n, "nearest_mode", "round_prefer_floor", "floor");
        if (!((hp && rnd) || (asym && flr)))
            return qo_ad_err(a, QO_ERR_UNSUPPORTED,
                             "%s: nearest resizing is differentiated for half_pixel with round_prefer_floor/ceil or "
                             "asymmetric with floor",
                             op);
    }
    if (yr != r) return qo_ad_err(a, QO_ERR_INVALID_MODEL, "%s: result rank differs", op);
    for (int32_t i = 0; i < r; i++) {
        if (d[i] < 1 || yd[i] % d[i])
            return qo_ad_err(a, QO_ERR_UNSUPPORTED, "%s: only whole upsampling factors are differentiated (axis %d: %lld -> %lld)",
                             op, (int)i, (long long)d[i], (long long)yd[i]);
        f[i] = yd[i] / d[i];
    }
    return sum_blocks(a, IN(0), gy, r, d, f, false);
}

qo_status qo_ad_rule_nn(ad *a, qo_node n, const qo_val *gy, bool *handled) {
    *handled = true;
    switch ((qo_op)a->g->nodes[n].op) {
    case QO_OP_LAYERNORMALIZATION: return rule_layernorm(a, n, gy);
    case QO_OP_INSTANCENORMALIZATION: return rule_instancenorm(a, n, gy[0]);
    case QO_OP_GATHER: return rule_gather(a, n, gy[0]);
    case QO_OP_GATHERELEMENTS: return rule_gather_elements(a, n, gy[0]);
    case QO_OP_TILE: return rule_tile(a, n, gy[0]);
    case QO_OP_DEPTHTOSPACE:
    case QO_OP_SPACETODEPTH: return rule_depth_space(a, n, gy[0]);
    case QO_OP_CUMSUM: return rule_cumsum(a, n, gy[0]);
    case QO_OP_RESIZE: return rule_resize(a, n, gy[0]);
    default: *handled = false; return QO_OK;
    }
}
