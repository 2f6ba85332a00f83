/* runtime/ref/train.c — reference kernels of qopt's training ops (domain "ai.qopt.train"), the
 * gradients that no ONNX op computes. The autodiff pass (passes/autodiff/) emits them; their exact
 * semantics are documented in passes/autodiff/autodiff.h. Every kernel accepts f32 or f64 operands
 * (its results take dY's element type, or the logits' for SoftmaxCrossEntropy) and accumulates in
 * double, so gradient sums do not depend on the summation order of the forward kernels; QuantGrad
 * computes in float32 on float32 data, as torch's autograd does, and sums in fsum.h's order. */
#include "runtime/ref/fsum.h"
#include "runtime/ref/geom.h"
#include "runtime/ref/ref.h"
#include "runtime/ref/util.h"

#include <math.h>

#define QO_LN2 0.693147180559945309417232121458176568

static qo_status need_float(qo_kctx *k, const qo_tensor *t, const char *what) {
    if (!t) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: input '%s' is missing", qo_node_op_type(k->g, k->n), what);
    if (t->elem != QO_F32 && t->elem != QO_F64)
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "%s: element type %s of '%s' is not supported (f32 or f64)",
                       qo_node_op_type(k->g, k->n), qo_elem_name(t->elem) ? qo_elem_name(t->elem) : "?", what);
    return QO_OK;
}

static bool same_shape(const qo_tensor *a, int32_t rank, const int64_t *dims) {
    if (a->rank != rank) return false;
    for (int32_t i = 0; i < rank; i++)
        if (a->dims[i] != dims[i]) return false;
    return true;
}

static qo_status check_dy(qo_kctx *k, const qo_tensor *dy, int32_t rank, const int64_t *dims) {
    if (same_shape(dy, rank, dims)) return QO_OK;
    return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: dY has rank %d and not the shape of the forward result",
                   qo_node_op_type(k->g, k->n), (int)dy->rank);
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

static bool next_index(int64_t *idx, const int64_t *ext, int n) {
    for (int i = n - 1; i >= 0; i--) {
        if (++idx[i] < ext[i]) return true;
        idx[i] = 0;
    }
    return false;
}

/* Offset of window element kidx of output position oidx in a row-major spatial plane, or -1 when it
 * falls in the padding. */
static int64_t win_off(const qo_geom *g, const int64_t *oidx, const int64_t *kidx, const int64_t *rstr) {
    int64_t off = 0;
    for (int i = 0; i < g->nsp; i++) {
        int64_t p = oidx[i] * g->str[i] - g->pb[i] + kidx[i] * g->dil[i];
        if (p < 0 || p >= g->in[i]) return -1;
        off += p * rstr[i];
    }
    return off;
}

static void row_strides(const int64_t *ext, int n, int64_t *str) {
    str[n - 1] = 1;
    for (int i = n - 2; i >= 0; i--) str[i] = str[i + 1] * ext[i + 1];
}

/* ---- ConvGradWeight(dY, X, W) -> dW ----------------------------------------------------------- */
/* dW[m, c, k] = sum over n and output positions o of dY[n, m, o] * X[n, grp(m) * C/group + c, o*s - pb + k*d]
 * with the Conv's strides, pads, dilations, auto_pad and group attributes; W only gives the shape. */
static qo_status k_convgradweight(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                  uint32_t nout) {
    (void)nin, (void)nout;
    const qo_tensor *dy = in[0], *x = in[1], *w = in[2];
    QO_TRY(need_float(k, dy, "dY"));
    QO_TRY(need_float(k, x, "X"));
    if (!w) return qo_kerr(k, QO_ERR_INVALID_MODEL, "ConvGradWeight: input 'W' is missing");
    if (x->rank < 3 || w->rank != x->rank)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "ConvGradWeight: X has rank %d and W rank %d", (int)x->rank,
                       (int)w->rank);
    qo_geom g;
    QO_TRY(qo_geom_window(k, x, w->dims + 2, 0, QO_GEOM_REPORT, &g));
    qo_conv_ch ch;
    QO_TRY(qo_geom_channels(k, x, w, NULL, false, QO_GEOM_REPORT, &ch));
    int64_t odims[QO_MAX_RANK];
    int r = qo_geom_out_dims(&g, ch.N, ch.M, odims);
    QO_TRY(check_dy(k, dy, r, odims));
    QO_TRY(qo_tensor_make(k->cx, &out[0], dy->elem, w->rank, w->dims));
    int nsp = g.nsp;
    int64_t Cg = ch.C / ch.group, Mg = ch.M / ch.group;
    int64_t isz = prod(g.in, 0, nsp), osz = prod(g.out, 0, nsp), ksz = prod(g.ker, 0, nsp);
    int64_t rstr[QO_MAX_RANK];
    row_strides(g.in, nsp, rstr);
    for (int64_t m = 0; m < ch.M; m++) {
        int64_t grp = m / Mg;
        for (int64_t c = 0; c < Cg; c++) {
            int64_t kidx[QO_MAX_RANK] = {0};
            for (int64_t kp = 0; kp < ksz; kp++) {
                double acc = 0;
                for (int64_t n = 0; n < ch.N; n++) {
                    int64_t xb = (n * ch.C + grp * Cg + c) * isz, yb = (n * ch.M + m) * osz;
                    int64_t oidx[QO_MAX_RANK] = {0};
                    for (int64_t o = 0; o < osz; o++) {
                        int64_t off = win_off(&g, oidx, kidx, rstr);
                        if (off >= 0) acc += qo_load_f64(dy->data, dy->elem, yb + o) * qo_load_f64(x->data, x->elem, xb + off);
                        next_index(oidx, g.out, nsp);
                    }
                }
                qo_store_f64(out[0].data, out[0].elem, (m * Cg + c) * ksz + kp, acc);
                next_index(kidx, g.ker, nsp);
            }
        }
    }
    return QO_OK;
}

/* ---- MaxPoolGrad(dY, X) / AveragePoolGrad(dY, X) -> dX ---------------------------------------- */
/* MaxPool: each dY element goes to the first maximal element of its window (MaxPool's choice);
 * AveragePool: dY / count to every element of the window inside X (count as AveragePool: the
 * window's elements inside X, or inside X and its pads with count_include_pad). Overlapping
 * windows add up. */
static qo_status pool_grad(qo_kctx *k, const qo_tensor *const *in, qo_tensor *out, bool is_max) {
    const qo_tensor *dy = in[0], *x = in[1];
    QO_TRY(need_float(k, dy, "dY"));
    QO_TRY(need_float(k, x, "X"));
    qo_geom g;
    QO_TRY(qo_geom_pool(k, x, QO_GEOM_REPORT, &g));
    int64_t odims[QO_MAX_RANK];
    int r = qo_geom_out_dims(&g, x->dims[0], x->dims[1], odims);
    QO_TRY(check_dy(k, dy, r, odims));
    int nsp = g.nsp;
    int64_t isz = prod(g.in, 0, nsp), osz = prod(g.out, 0, nsp), ksz = prod(g.ker, 0, nsp);
    int64_t NC = x->dims[0] * x->dims[1];
    int64_t rstr[QO_MAX_RANK];
    row_strides(g.in, nsp, rstr);
    bool incl = qo_attr_int(k->g, k->n, "count_include_pad", 0) != 0;
    double *acc = qo_calloc((size_t)(NC * isz > 0 ? NC * isz : 1), sizeof(double));
    for (int64_t nc = 0; nc < NC; nc++) {
        int64_t oidx[QO_MAX_RANK] = {0};
        for (int64_t o = 0; o < osz; o++) {
            double gy = qo_load_f64(dy->data, dy->elem, nc * osz + o);
            int64_t kidx[QO_MAX_RANK] = {0}, best = -1, cnt = 0;
            double bv = 0;
            for (int64_t kp = 0; kp < ksz; kp++) {
                int64_t off = win_off(&g, oidx, kidx, rstr);
                if (off >= 0) {
                    double v = qo_load_f64(x->data, x->elem, nc * isz + off);
                    if (best < 0 || v > bv) best = off, bv = v;
                    cnt++;
                } else if (incl) {
                    bool inpad = true;
                    for (int i = 0; i < nsp; i++) {
                        int64_t p = oidx[i] * g.str[i] - g.pb[i] + kidx[i] * g.dil[i];
                        if (p < -g.pb[i] || p >= g.in[i] + g.pe[i]) inpad = false;
                    }
                    cnt += inpad;
                }
                next_index(kidx, g.ker, nsp);
            }
            if (is_max) {
                if (best >= 0) acc[nc * isz + best] += gy;
            } else if (cnt > 0) {
                memset(kidx, 0, sizeof kidx);
                for (int64_t kp = 0; kp < ksz; kp++) {
                    int64_t off = win_off(&g, oidx, kidx, rstr);
                    if (off >= 0) acc[nc * isz + off] += gy / (double)cnt;
                    next_index(kidx, g.ker, nsp);
                }
            }
            next_index(oidx, g.out, nsp);
        }
    }
    qo_status s = qo_tensor_make(k->cx, &out[0], dy->elem, x->rank, x->dims);
    for (int64_t i = 0; s == QO_OK && i < NC * isz; i++) qo_store_f64(out[0].data, out[0].elem, i, acc[i]);
    qo_free(acc);
    return s;
}

static qo_status k_maxpoolgrad(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    (void)nin, (void)nout;
    return pool_grad(k, in, out, true);
}

static qo_status k_avgpoolgrad(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    (void)nin, (void)nout;
    return pool_grad(k, in, out, false);
}

/* ---- BatchNormalizationGrad(dY, X, scale) -> dX, dScale, dBias ------------------------------- */
/* Training-mode BatchNormalization over axis 1 with batch statistics (biased variance, epsilon
 * attribute, default 1e-5): with xhat = (x - mean) / sqrt(var + eps) and M = elements per channel,
 * dBias = sum dY, dScale = sum dY * xhat, dX = scale / sqrt(var + eps) * (dY - dBias/M - xhat * dScale/M). */
static qo_status k_bngrad(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    (void)nin;
    const qo_tensor *dy = in[0], *x = in[1], *sc = in[2];
    QO_TRY(need_float(k, dy, "dY"));
    QO_TRY(need_float(k, x, "X"));
    QO_TRY(need_float(k, sc, "scale"));
    if (x->rank < 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "BatchNormalizationGrad: X has rank %d", (int)x->rank);
    QO_TRY(check_dy(k, dy, x->rank, x->dims));
    int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
    if (qo_tensor_numel(sc) != C)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "BatchNormalizationGrad: scale has %lld elements, X has %lld channels",
                       (long long)qo_tensor_numel(sc), (long long)C);
    double eps = qo_attr_float(k->g, k->n, "epsilon", 1e-5f);
    int64_t cd[1] = {C};
    QO_TRY(qo_tensor_make(k->cx, &out[0], dy->elem, x->rank, x->dims));
    bool want_s = nout > 1 && qo_node_output(k->g, k->n, 1), want_b = nout > 2 && qo_node_output(k->g, k->n, 2);
    if (want_s) QO_TRY(qo_tensor_make(k->cx, &out[1], dy->elem, 1, cd));
    if (want_b) QO_TRY(qo_tensor_make(k->cx, &out[2], dy->elem, 1, cd));
    double M = (double)(N * S);
    for (int64_t c = 0; c < C; c++) {
        double sum = 0, sq = 0, gb = 0, gs = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) sum += qo_load_f64(x->data, x->elem, (n * C + c) * S + i);
        double mean = sum / M;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                double d = qo_load_f64(x->data, x->elem, (n * C + c) * S + i) - mean;
                sq += d * d;
            }
        double istd = 1.0 / sqrt(sq / M + eps);
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t j = (n * C + c) * S + i;
                double g = qo_load_f64(dy->data, dy->elem, j);
                gb += g;
                gs += g * (qo_load_f64(x->data, x->elem, j) - mean) * istd;
            }
        double s = qo_load_f64(sc->data, sc->elem, c) * istd;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t j = (n * C + c) * S + i;
                double xh = (qo_load_f64(x->data, x->elem, j) - mean) * istd;
                qo_store_f64(out[0].data, out[0].elem, j, s * (qo_load_f64(dy->data, dy->elem, j) - gb / M - xh * gs / M));
            }
        if (want_s) qo_store_f64(out[1].data, out[1].elem, c, gs);
        if (want_b) qo_store_f64(out[2].data, out[2].elem, c, gb);
    }
    return QO_OK;
}

/* ---- QuantGrad(dY, X, scale, zeropt, bitwidth) -> dX, dScale, dBitwidth ------------------------ */
/* Brevitas's gradients of a QONNX Quant y = (round(clamp(v, lo, hi)) - z) * s, v = x/s + z (Brevitas
 * IntQuant.to_int: tensor_clamp, then RoundSte; lo/hi are min_int/max_int of bitwidth, signed and
 * narrow): round is the identity (straight-through); tensor_clamp (torch.where) passes the gradient
 * to v where lo <= v <= hi and to the bound it clamps to elsewhere:
 *   dX = dY * [lo <= v <= hi]
 *   dScale (one element per X element) = dY * ((q - z) - [lo <= v <= hi] * x / s)
 *                                        q = round(clamp(v, lo, hi))
 *   dBitwidth (per element) = dY * s * (v > hi ? dhi/db : v < lo ? dlo/db : 0)
 *        with dhi/db = ln 2 * 2^(b-1) (signed) or ln 2 * 2^b (unsigned), dlo/db = -ln 2 * 2^(b-1)
 *        (signed) or 0 (unsigned).
 * On float32 every step is one float32 operation, as torch's autograd computes it: xs = x / s,
 * v = xs + z, dScale = dY * ((q - z) - (inside ? xs : 0)), dBitwidth = (dY * s) * (float)(dhi/db...);
 * on float64 the products are taken in double. With reduce = 1 (what the autodiff pass emits),
 * outputs 1 and 2 are those elements summed to the shapes of the scale and of the bit width (the
 * broadcast axes reduced): on float32 each sum in the order of runtime/ref/fsum.h over its elements
 * in row-major order (ReduceSum's order), on float64 sequentially in double. Outputs 1 and 2 are
 * optional. The rounding_mode attribute is qonnx's (default "ROUND"). With relu = 1 dX is also zero
 * where X <= 0: a Relu's mask (Where(X > 0, dX, 0), X its output) folded in; dScale and dBitwidth
 * do not change. */

/* dst (the shape of t, which broadcasts to x's rank/dims) = the sums of el (x's shape) over the
 * elements mapping to each of dst's elements, as documented above. */
static qo_status qg_reduce(qo_kctx *k, const qo_tensor *el, const qo_tensor *t, int32_t xr, const int64_t *xd,
                           qo_tensor *dst) {
    QO_TRY(qo_tensor_make(k->cx, dst, el->elem, t->rank, t->dims));
    if (el->elem == QO_F32) {
        qo_fsum_to_shape(el->data, xr, xd, t->rank, t->dims, dst->data);
        return QO_OK;
    }
    int64_t kext[QO_MAX_RANK], kstr[QO_MAX_RANK], rext[QO_MAX_RANK], rstr[QO_MAX_RANK];
    int nk, nr;
    qo_fsum_axes(xr, xd, t->rank, t->dims, &nk, kext, kstr, &nr, rext, rstr);
    int64_t kidx[QO_MAX_RANK] = {0}, m = qo_tensor_numel(dst);
    bool any = true;
    for (int i = 0; i < nr; i++) any = any && rext[i] > 0;
    for (int64_t o = 0; o < m; o++) { /* float64: sequential double sums */
        int64_t base = 0;
        for (int i = 0; i < nk; i++) base += kidx[i] * kstr[i];
        double sum = 0;
        int64_t ridx[QO_MAX_RANK] = {0};
        while (any) {
            int64_t off = base;
            for (int i = 0; i < nr; i++) off += ridx[i] * rstr[i];
            sum += ((const double *)el->data)[off];
            if (!next_index(ridx, rext, nr)) break;
        }
        ((double *)dst->data)[o] = sum;
        next_index(kidx, kext, nk);
    }
    return QO_OK;
}

static qo_status k_quantgrad(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    (void)nin;
    const qo_tensor *dy = in[0], *x = in[1];
    QO_TRY(need_float(k, dy, "dY"));
    QO_TRY(need_float(k, x, "X"));
    QO_TRY(need_float(k, in[2], "scale"));
    QO_TRY(need_float(k, in[3], "zeropt"));
    QO_TRY(need_float(k, in[4], "bitwidth"));
    QO_TRY(check_dy(k, dy, x->rank, x->dims));
    if (qo_tensor_numel(in[4]) != 1) return qo_kerr(k, QO_ERR_INVALID_MODEL, "QuantGrad: bitwidth must be a scalar");
    double b = qo_load_f64(in[4]->data, in[4]->elem, 0);
    if (!(b >= 1 && b <= 32)) return qo_kerr(k, QO_ERR_UNSUPPORTED, "QuantGrad: bitwidth %g outside [1, 32]", b);
    int is_signed = qo_kattr_int(k, "signed", 1) != 0, narrow = qo_kattr_int(k, "narrow", 0) != 0;
    bool reduce = qo_kattr_int(k, "reduce", 0) != 0, relu = qo_kattr_int(k, "relu", 0) != 0;
    char buf[32];
    const char *rs = qo_kattr_str(k, "rounding_mode", buf, sizeof buf, "ROUND");
    int rm = qo_round_from_name(rs);
    if (rm < 0) return qo_kerr(k, QO_ERR_UNSUPPORTED, "QuantGrad: unknown rounding_mode '%s'", rs);
    double lo, hi, dlo, dhi;
    if (is_signed) {
        lo = -ldexp(1.0, (int)b - 1) + narrow, hi = ldexp(1.0, (int)b - 1) - 1;
        dlo = -QO_LN2 * ldexp(1.0, (int)b - 1), dhi = QO_LN2 * ldexp(1.0, (int)b - 1);
    } else {
        lo = 0, hi = ldexp(1.0, (int)b) - 1 - narrow;
        dlo = 0, dhi = QO_LN2 * ldexp(1.0, (int)b);
    }
    const float dlo_f = (float)dlo, dhi_f = (float)dhi;
    /* scale and zero point broadcast to X's shape (the Quant's result shape) */
    const qo_tensor *ops[3] = {x, in[2], in[3]};
    int32_t rank;
    int64_t dims[QO_MAX_RANK];
    QO_TRY(qo_bcast_shape(k, ops, 3, &rank, dims));
    if (!same_shape(x, rank, dims))
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "QuantGrad: scale/zeropt broadcast beyond X's shape");
    QO_TRY(qo_tensor_make(k->cx, &out[0], dy->elem, x->rank, x->dims));
    bool want_s = nout > 1 && qo_node_output(k->g, k->n, 1), want_b = nout > 2 && qo_node_output(k->g, k->n, 2);
    /* per-element dScale / dBitwidth: the outputs, or temporaries summed into them */
    qo_tensor es = {0}, eb = {0};
    qo_tensor *ts = reduce ? &es : &out[1], *tb = reduce ? &eb : &out[2];
    qo_status st = QO_OK;
    if (want_s) st = qo_tensor_make(k->cx, ts, dy->elem, x->rank, x->dims);
    if (st == QO_OK && want_b) st = qo_tensor_make(k->cx, tb, dy->elem, x->rank, x->dims);
    qo_bcast it;
    qo_bcast_init(&it, rank, dims, ops, 3);
    int64_t n = qo_tensor_numel(x);
    bool f32 = dy->elem == QO_F32;
    for (int64_t i = 0; st == QO_OK && i < n; i++, qo_bcast_next(&it)) {
        /* the forward's float32 arithmetic: v = x / s + z, clamped, then rounded */
        float xf = (float)qo_load_f64(x->data, x->elem, it.off[0]);
        float s = (float)qo_load_f64(in[2]->data, in[2]->elem, it.off[1]);
        float z = (float)qo_load_f64(in[3]->data, in[3]->elem, it.off[2]);
        float xs = xf / s;
        float v = xs + z;
        bool inside = v >= lo && v <= hi;
        float c = v > hi ? (float)hi : v < lo ? (float)lo : v;
        double q = qo_round_apply(c, (qo_round)rm);
        double g = qo_load_f64(dy->data, dy->elem, i);
        bool pass = inside && (!relu || qo_load_f64(x->data, x->elem, it.off[0]) > 0);
        qo_store_f64(out[0].data, out[0].elem, i, pass ? g : 0.0);
        if (f32) {
            float gf = (float)g, qf = (float)q;
            if (want_s) ((float *)ts->data)[i] = gf * ((qf - z) - (inside ? xs : 0.0f));
            if (want_b) ((float *)tb->data)[i] = (gf * s) * (v > hi ? dhi_f : v < lo ? dlo_f : 0.0f);
        } else {
            if (want_s) qo_store_f64(ts->data, ts->elem, i, g * ((q - z) - (inside ? (double)xf / s : 0.0)));
            if (want_b) qo_store_f64(tb->data, tb->elem, i, g * s * (v > hi ? dhi : v < lo ? dlo : 0.0));
        }
    }
    if (st == QO_OK && reduce && want_s) st = qg_reduce(k, &es, in[2], x->rank, x->dims, &out[1]);
    if (st == QO_OK && reduce && want_b) st = qg_reduce(k, &eb, in[4], x->rank, x->dims, &out[2]);
    qo_tensor_free(&es);
    qo_tensor_free(&eb);
    return st;
}

/* ---- SoftmaxCrossEntropy(logits, labels) -> loss; SoftmaxCrossEntropyGrad(dLoss, logits, labels) */
/* logits [N, C] (f32/f64), labels [N] integers in [0, C). loss = mean over n (reduction "mean", the
 * default) or sum ("sum") of logsumexp(logits[n]) - logits[n, labels[n]], a scalar (rank 0) as
 * torch.nn.functional.cross_entropy. The gradient is dLoss * (softmax(logits[n]) - onehot(labels[n]))
 * divided by N for "mean". */
static qo_status ce_check(qo_kctx *k, const qo_tensor *x, const qo_tensor *lab, bool *mean) {
    QO_TRY(need_float(k, x, "logits"));
    if (!lab || !qo_elem_is_int(lab->elem))
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: labels must be an integer tensor", qo_node_op_type(k->g, k->n));
    if (x->rank != 2 || lab->rank != 1 || lab->dims[0] != x->dims[0])
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: logits must be [N, C] and labels [N]", qo_node_op_type(k->g, k->n));
    for (int64_t i = 0; i < lab->dims[0]; i++) {
        int64_t l = qo_load_i64(lab->data, lab->elem, i);
        if (l < 0 || l >= x->dims[1])
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: label %lld of row %lld is outside [0, %lld)",
                           qo_node_op_type(k->g, k->n), (long long)l, (long long)i, (long long)x->dims[1]);
    }
    char buf[16];
    const char *red = qo_kattr_str(k, "reduction", buf, sizeof buf, "mean");
    if (strcmp(red, "mean") && strcmp(red, "sum"))
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "%s: reduction '%s' (mean or sum)", qo_node_op_type(k->g, k->n), red);
    *mean = strcmp(red, "mean") == 0;
    return QO_OK;
}

static double row_lse(const qo_tensor *x, int64_t n, int64_t C) {
    double mx = -INFINITY, s = 0;
    for (int64_t c = 0; c < C; c++) mx = fmax(mx, qo_load_f64(x->data, x->elem, n * C + c));
    for (int64_t c = 0; c < C; c++) s += exp(qo_load_f64(x->data, x->elem, n * C + c) - mx);
    return mx + log(s);
}

static qo_status k_softmaxce(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    (void)nin, (void)nout;
    const qo_tensor *x = in[0], *lab = in[1];
    bool mean;
    QO_TRY(ce_check(k, x, lab, &mean));
    int64_t N = x->dims[0], C = x->dims[1];
    double acc = 0;
    for (int64_t n = 0; n < N; n++)
        acc += row_lse(x, n, C) - qo_load_f64(x->data, x->elem, n * C + qo_load_i64(lab->data, lab->elem, n));
    QO_TRY(qo_tensor_make(k->cx, &out[0], x->elem, 0, NULL));
    qo_store_f64(out[0].data, out[0].elem, 0, mean && N ? acc / (double)N : acc);
    return QO_OK;
}

static qo_status k_softmaxcegrad(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                 uint32_t nout) {
    (void)nin, (void)nout;
    const qo_tensor *dl = in[0], *x = in[1], *lab = in[2];
    QO_TRY(need_float(k, dl, "dLoss"));
    if (qo_tensor_numel(dl) != 1) return qo_kerr(k, QO_ERR_INVALID_MODEL, "SoftmaxCrossEntropyGrad: dLoss must be a scalar");
    bool mean;
    QO_TRY(ce_check(k, x, lab, &mean));
    int64_t N = x->dims[0], C = x->dims[1];
    double g = qo_load_f64(dl->data, dl->elem, 0);
    if (mean && N) g /= (double)N;
    QO_TRY(qo_tensor_make(k->cx, &out[0], dl->elem, 2, x->dims));
    for (int64_t n = 0; n < N; n++) {
        double lse = row_lse(x, n, C);
        int64_t l = qo_load_i64(lab->data, lab->elem, n);
        for (int64_t c = 0; c < C; c++) {
            double p = exp(qo_load_f64(x->data, x->elem, n * C + c) - lse);
            qo_store_f64(out[0].data, out[0].elem, n * C + c, g * (p - (c == l ? 1.0 : 0.0)));
        }
    }
    return QO_OK;
}

void qo_ref_register_train(qo_ref_kernel *t) {
    t[QO_OP_TRAIN_CONVGRADWEIGHT] = k_convgradweight;
    t[QO_OP_TRAIN_MAXPOOLGRAD] = k_maxpoolgrad;
    t[QO_OP_TRAIN_AVERAGEPOOLGRAD] = k_avgpoolgrad;
    t[QO_OP_TRAIN_BATCHNORMGRAD] = k_bngrad;
    t[QO_OP_TRAIN_QUANTGRAD] = k_quantgrad;
    t[QO_OP_TRAIN_SOFTMAXCE] = k_softmaxce;
    t[QO_OP_TRAIN_SOFTMAXCEGRAD] = k_softmaxcegrad;
}
