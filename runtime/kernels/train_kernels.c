/* runtime/kernels/train_kernels.c — optimized float32 QuantGrad and MaxPoolGrad (bit-identical to
 * runtime/ref/train.c), and the node adapter of the training ops (ConvGradWeight's kernel is in
 * conv_grad.c). See train_kernels.h. */
#include "runtime/kernels/train_kernels.h"

#include "runtime/ref/geom.h"
#include "runtime/ref/util.h"

#include <math.h>
#include <string.h>

#define DECLINE QO_ERR_UNSUPPORTED
#define QO_LN2 0.693147180559945309417232121458176568

static bool is_f32(const qo_tensor *t) { return t && t->elem == QO_F32; }

static bool same_dims(const qo_tensor *a, int32_t rank, const int64_t *dims) {
    if (a->rank != rank) return false;
    for (int32_t i = 0; i < rank; i++)
        if (a->dims[i] != dims[i]) return false;
    return true;
}

/* Output t as float32 of the given shape: kept when it arrives as a view (not owned) of a buffer of
 * exactly that shape (the JIT's planned buffer, written in place), else made. */
static qo_status out_make(qo_kctx *k, qo_tensor *t, int32_t rank, const int64_t *dims) {
    if (t->data && !t->owned && t->elem == QO_F32 && same_dims(t, rank, dims) &&
        t->nbytes == (size_t)qo_tensor_numel(t) * sizeof(float))
        return QO_OK;
    return qo_tensor_make(k->cx, t, QO_F32, rank, dims);
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* ---- QuantGrad ---------------------------------------------------------------------------------- */
/* A per-tensor or one-axis operand t broadcast to x: element i of x reads t[(i / inner) % cnt]. */
typedef struct bmap {
    const float *p;
    int64_t inner, cnt;
} bmap;

static bool bcast_map(const qo_tensor *t, const qo_tensor *x, bmap *b) {
    b->p = t->data, b->inner = 1, b->cnt = 1;
    if (qo_tensor_numel(t) == 1) return t->rank <= x->rank;
    if (t->rank > x->rank) return false;
    int axis = -1;
    for (int32_t i = 0; i < t->rank; i++) {
        int32_t xa = x->rank - t->rank + i;
        if (t->dims[i] == 1) continue;
        if (t->dims[i] != x->dims[xa] || axis >= 0) return false;
        axis = xa;
    }
    if (axis < 0) return false;
    b->cnt = x->dims[axis];
    b->inner = prod(x->dims, axis + 1, x->rank);
    return true;
}

static inline int64_t bidx(const bmap *b, int64_t i) { return b->cnt == 1 ? 0 : (i / b->inner) % b->cnt; }

typedef struct qg_job {
    const float *dy, *x;
    bmap s, z;
    double lo, hi, dlo, dhi;
    qo_round rm;
    bool fast; /* half-even rounding and bit width <= 24: qg_rne */
    float *dx, *ds, *db;
} qg_job;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define QO_TK_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("O3", "no-trapping-math")))
#else
#define QO_TK_SIMD
#endif

/* Elements [0, n) with one scale s and zero point z, half-even rounding, bounds exact in float
 * (bit width <= 24, so float and double comparisons agree): the formulas of the reference kernel
 * (runtime/ref/train.c k_quantgrad), every term computed and then selected (no branches, so the
 * loop vectorizes; the selected values are the reference's). The rounding is qo_rne
 * (runtime/ref/util.h) without branches: the same floor and exact midpoint test, ties to the even
 * neighbour (f/2 integral), a zero result keeps c's sign, |c| >= 2^23 (and NaN) passes through.
 * ds / db may be NULL (the loop is unswitched on them). */
QO_TK_SIMD static void qg_rne(int64_t n, const float *restrict dy, const float *restrict x, float s, float z, float lo,
                              float hi, double dlo, double dhi, float *restrict dx, float *restrict ds,
                              float *restrict db) {
    const bool want_s = ds != NULL, want_b = db != NULL;
    for (int64_t i = 0; i < n; i++) {
        float xf = x[i];
        float v = xf / s;
        v = v + z;
        int above = v > hi, below = v < lo, inside = (v >= lo) & (v <= hi);
        float gf = dy[i];
        double g = gf;
        dx[i] = inside ? gf : 0.0f;
        if (want_s) {
            float c = above ? hi : below ? lo : v;
            float f = floorf(c), h = f + 0.5f, f1 = f + 1.0f;
            float even = floorf(f * 0.5f) * 2.0f == f ? f : f1;
            float r = c > h ? f1 : c < h ? f : even;
            float sz = copysignf(0.0f, c);
            r = r == 0.0f ? sz : r;
            double q = fabsf(c) < 0x1p23f ? r : c;
            double xs = (double)xf / s;
            ds[i] = (float)(g * ((q - z) - (inside ? xs : 0.0)));
        }
        if (want_b) {
            double d = above ? dhi : below ? dlo : 0.0;
            db[i] = (float)(g * s * d);
        }
    }
}

/* The reference's per-element formulas (runtime/ref/train.c k_quantgrad) on float32 data. */
static void qg_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const qg_job *q = ctx;
    const double lo = q->lo, hi = q->hi;
    if (q->fast) { /* runs of elements sharing one scale and zero point */
        for (int64_t i = begin; i < end;) {
            int64_t e = end;
            if (q->s.cnt > 1 && (i / q->s.inner + 1) * q->s.inner < e) e = (i / q->s.inner + 1) * q->s.inner;
            if (q->z.cnt > 1 && (i / q->z.inner + 1) * q->z.inner < e) e = (i / q->z.inner + 1) * q->z.inner;
            qg_rne(e - i, q->dy + i, q->x + i, q->s.p[bidx(&q->s, i)], q->z.p[bidx(&q->z, i)], (float)lo, (float)hi,
                   q->dlo, q->dhi, q->dx + i, q->ds ? q->ds + i : NULL, q->db ? q->db + i : NULL);
            i = e;
        }
        return;
    }
    for (int64_t i = begin; i < end; i++) {
        float xf = q->x[i];
        float s = q->s.p[bidx(&q->s, i)];
        float z = q->z.p[bidx(&q->z, i)];
        float v = xf / s;
        v = v + z;
        bool inside = v >= lo && v <= hi;
        double g = q->dy[i];
        q->dx[i] = (float)(inside ? g : 0.0);
        if (q->ds) {
            float c = v > hi ? (float)hi : v < lo ? (float)lo : v;
            double qv = qo_round_apply(c, q->rm);
            q->ds[i] = (float)(g * ((qv - z) - (inside ? (double)xf / s : 0.0)));
        }
        if (q->db) q->db[i] = (float)(g * s * (v > hi ? q->dhi : v < lo ? q->dlo : 0.0));
    }
}

static qo_status quantgrad(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                           uint32_t nout) {
    if (nin < 5 || nout < 1) return DECLINE;
    for (int i = 0; i < 5; i++)
        if (!is_f32(in[i])) return DECLINE;
    const qo_tensor *dy = in[0], *x = in[1];
    if (!same_dims(dy, x->rank, x->dims) || qo_tensor_numel(in[4]) != 1) return DECLINE;
    double b = ((const float *)in[4]->data)[0];
    if (!(b >= 1 && b <= 32)) return DECLINE;
    qg_job q = {.dy = dy->data, .x = x->data};
    if (!bcast_map(in[2], x, &q.s) || !bcast_map(in[3], x, &q.z)) return DECLINE;
    int is_signed = qo_kattr_int(k, "signed", 1) != 0, narrow = qo_kattr_int(k, "narrow", 0) != 0;
    char buf[32];
    int rm = qo_round_from_name(qo_kattr_str(k, "rounding_mode", buf, sizeof buf, "ROUND"));
    if (rm < 0) return DECLINE;
    q.rm = (qo_round)rm;
    if (is_signed) {
        q.lo = -ldexp(1.0, (int)b - 1) + narrow, q.hi = ldexp(1.0, (int)b - 1) - 1;
        q.dlo = -QO_LN2 * ldexp(1.0, (int)b - 1), q.dhi = QO_LN2 * ldexp(1.0, (int)b - 1);
    } else {
        q.lo = 0, q.hi = ldexp(1.0, (int)b) - 1 - narrow;
        q.dlo = 0, q.dhi = QO_LN2 * ldexp(1.0, (int)b);
    }
    bool want_s = nout > 1 && qo_node_output(k->g, k->n, 1), want_b = nout > 2 && qo_node_output(k->g, k->n, 2);
    QO_TRY(out_make(k, &out[0], x->rank, x->dims));
    if (want_s) QO_TRY(out_make(k, &out[1], x->rank, x->dims));
    if (want_b) QO_TRY(out_make(k, &out[2], x->rank, x->dims));
    q.dx = out[0].data;
    q.ds = want_s ? out[1].data : NULL;
    q.fast = q.rm == QO_ROUND_HALF_EVEN && b <= 24;
    q.db = want_b ? out[2].data : NULL;
    int64_t n = qo_tensor_numel(x);
    if (n) qo_pool_for(pool, n, 8192, qg_task, &q);
    return QO_OK;
}

/* ---- MaxPoolGrad (2-D) -------------------------------------------------------------------------- */
typedef struct mpg_job {
    const qo_geom *g;
    const float *dy, *x;
    float *dx;
    qo_pool *pool;
} mpg_job;

/* One (n, c) plane per index: the reference's window scan (first maximum, padding skipped) and its
 * double accumulation, then one rounding per element. */
static void mpg_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const mpg_job *J = ctx;
    const qo_geom *g = J->g;
    int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1], isz = H * W, osz = OH * OW;
    /* windows that cannot overlap give every input element at most one term: the reference's
       (float)(0.0 + (double)dy) is dy + 0.0f, stored directly */
    bool disjoint = g->str[0] > (g->ker[0] - 1) * g->dil[0] && g->str[1] > (g->ker[1] - 1) * g->dil[1];
    double *acc = NULL;
    if (!disjoint)
        acc = J->pool ? qo_pool_scratch(J->pool, tid, (size_t)isz * sizeof(double))
                      : qo_malloc((size_t)(isz ? isz : 1) * sizeof(double));
    /* the common 2x2 / stride 2 window without padding: the same scan (first strict maximum in
       (kh, kw) order) without the bounds checks */
    bool k2 = g->ker[0] == 2 && g->ker[1] == 2 && g->str[0] == 2 && g->str[1] == 2 && g->dil[0] == 1 &&
              g->dil[1] == 1 && g->pb[0] == 0 && g->pb[1] == 0 && 2 * OH <= H && 2 * OW <= W;
    for (int64_t nc = begin; k2 && nc < end; nc++) {
        const float *x = J->x + nc * isz, *dy = J->dy + nc * osz;
        float *dx = J->dx + nc * isz;
        memset(dx, 0, (size_t)isz * sizeof(float));
        for (int64_t oh = 0; oh < OH; oh++) {
            const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t i = 2 * ow, best = 2 * oh * W + i;
                float bv = r0[i];
                if (r0[i + 1] > bv) bv = r0[i + 1], best = 2 * oh * W + i + 1;
                if (r1[i] > bv) bv = r1[i], best = (2 * oh + 1) * W + i;
                if (r1[i + 1] > bv) best = (2 * oh + 1) * W + i + 1;
                dx[best] = dy[oh * OW + ow] + 0.0f;
            }
        }
    }
    if (k2) return;
    for (int64_t nc = begin; nc < end; nc++) {
        const float *x = J->x + nc * isz, *dy = J->dy + nc * osz;
        float *dx = J->dx + nc * isz;
        if (disjoint) memset(dx, 0, (size_t)isz * sizeof(float));
        else memset(acc, 0, (size_t)isz * sizeof(double));
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t best = -1;
                float bv = 0;
                for (int64_t kh = 0; kh < g->ker[0]; kh++) {
                    int64_t ih = oh * g->str[0] - g->pb[0] + kh * g->dil[0];
                    if (ih < 0 || ih >= H) continue;
                    for (int64_t kw = 0; kw < g->ker[1]; kw++) {
                        int64_t iw = ow * g->str[1] - g->pb[1] + kw * g->dil[1];
                        if (iw < 0 || iw >= W) continue;
                        float v = x[ih * W + iw];
                        if (best < 0 || v > bv) best = ih * W + iw, bv = v;
                    }
                }
                if (best < 0) continue;
                if (disjoint) dx[best] = dy[oh * OW + ow] + 0.0f;
                else acc[best] += (double)dy[oh * OW + ow];
            }
        if (!disjoint)
            for (int64_t i = 0; i < isz; i++) dx[i] = (float)acc[i];
    }
    if (!J->pool) qo_free(acc);
}

static qo_status maxpoolgrad(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                             uint32_t nout) {
    if (nin < 2 || nout < 1 || !is_f32(in[0]) || !is_f32(in[1]) || in[1]->rank != 4) return DECLINE;
    const qo_tensor *dy = in[0], *x = in[1];
    qo_geom g;
    if (qo_geom_pool(k, x, 0, &g) != QO_OK || g.nsp != 2) return DECLINE;
    int64_t od[QO_MAX_RANK];
    int r = qo_geom_out_dims(&g, x->dims[0], x->dims[1], od);
    if (!same_dims(dy, r, od)) return DECLINE;
    QO_TRY(out_make(k, &out[0], x->rank, x->dims));
    mpg_job J = {.g = &g, .dy = dy->data, .x = x->data, .dx = out[0].data, .pool = pool};
    int64_t NC = x->dims[0] * x->dims[1];
    if (NC && qo_tensor_numel(x)) qo_pool_for(pool, NC, 1, mpg_task, &J);
    return QO_OK;
}

/* ---- ConvGradWeight ----------------------------------------------------------------------------- */
static qo_status convgradweight(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                uint32_t nout) {
    if (nin < 3 || nout < 1 || !is_f32(in[0]) || !is_f32(in[1]) || !in[2]) return DECLINE;
    const qo_tensor *dy = in[0], *x = in[1], *w = in[2];
    if (x->rank < 3 || x->rank > 2 + QO_K_MAX_SP || w->rank != x->rank) return DECLINE;
    qo_geom g;
    if (qo_geom_window(k, x, w->dims + 2, 0, 0, &g) != QO_OK) return DECLINE;
    qo_conv_ch ch;
    if (qo_geom_channels(k, x, w, NULL, false, 0, &ch) != QO_OK) return DECLINE;
    int64_t od[QO_MAX_RANK];
    int r = qo_geom_out_dims(&g, ch.N, ch.M, od);
    if (!same_dims(dy, r, od)) return DECLINE;
    for (int i = 0; i < g.nsp; i++)
        if (g.ker[i] != w->dims[2 + i]) return DECLINE;
    qo_k_conv_params p = {.nsp = g.nsp, .N = ch.N, .C = ch.C, .M = ch.M, .group = ch.group};
    for (int i = 0; i < g.nsp; i++) {
        p.in[i] = g.in[i], p.out[i] = g.out[i], p.ker[i] = g.ker[i];
        p.str[i] = g.str[i], p.dil[i] = g.dil[i], p.pad[i] = g.pb[i];
    }
    QO_TRY(out_make(k, &out[0], w->rank, w->dims));
    qo_k_convgradweight_f32(&p, dy->data, x->data, out[0].data, pool);
    return QO_OK;
}

/* ---- ReduceSum ---------------------------------------------------------------------------------- */
/* float32 ReduceSum with the axes input (opset 13), in the reference's order (runtime/ref/reduce.c:
 * one float accumulator per output element, the input added in row-major order), so the result is
 * bit-identical. The dims are coalesced into runs of reduced and kept axes; the innermost run is
 * either summed into one accumulator or added element-wise into a row of accumulators. */
typedef struct rs_job {
    const float *x;
    float *acc;
    int64_t r0, nk, r1;
} rs_job;

static void rs_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const rs_job *J = ctx;
    for (int64_t c = begin; c < end; c++) {
        float a = 0.0f;
        for (int64_t n = 0; n < J->r0; n++) {
            const float *xp = J->x + (n * J->nk + c) * J->r1;
            for (int64_t j = 0; j < J->r1; j++) a += xp[j];
        }
        J->acc[c] = a;
    }
}

static qo_status reducesum(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                           uint32_t nout) {
    if (nin < 2 || nout < 1 || !is_f32(in[0]) || !in[1] || in[1]->elem != QO_I64 || in[1]->rank != 1) return DECLINE;
    const qo_tensor *x = in[0], *ax = in[1];
    int r = x->rank;
    int64_t nax = qo_tensor_numel(ax);
    if (nax < 1 || r < 1 || qo_tensor_numel(x) < 1) return DECLINE;
    bool mask[QO_MAX_RANK] = {false};
    for (int64_t i = 0; i < nax; i++) {
        int64_t a = ((const int64_t *)ax->data)[i];
        if (a < 0) a += r;
        if (a < 0 || a >= r) return DECLINE;
        mask[a] = true;
    }
    bool keep = qo_kattr_int(k, "keepdims", 1) != 0;
    int64_t odims[QO_MAX_RANK];
    int orank = 0;
    for (int i = 0; i < r; i++)
        if (!mask[i]) odims[orank++] = x->dims[i];
        else if (keep) odims[orank++] = 1;
    /* runs of equal mask (dims of extent 1 join any run) */
    int64_t ext[QO_MAX_RANK], ostr[QO_MAX_RANK];
    bool red[QO_MAX_RANK];
    int ns = 0;
    for (int i = 0; i < r; i++) {
        if (x->dims[i] == 1) continue;
        if (ns && red[ns - 1] == mask[i]) ext[ns - 1] *= x->dims[i];
        else ext[ns] = x->dims[i], red[ns] = mask[i], ns++;
    }
    if (ns == 0) ext[0] = 1, red[0] = true, ns = 1;
    int64_t st = 1;
    for (int i = ns - 1; i >= 0; i--) {
        ostr[i] = red[i] ? 0 : st;
        if (!red[i]) st *= ext[i];
    }
    QO_TRY(out_make(k, &out[0], orank, odims));
    float *acc = out[0].data;
    if (ns >= 2 && !red[ns - 2] && red[ns - 1] && (ns == 2 || (ns == 3 && red[0]))) {
        /* [reduced,] kept, reduced (a bias gradient over N, C, H, W): accumulators in parallel, each
           in the reference's order */
        rs_job J = {.x = x->data, .acc = acc, .r0 = ns == 3 ? ext[0] : 1, .nk = ext[ns - 2], .r1 = ext[ns - 1]};
        qo_pool_for(pool, J.nk, 1 + (1 << 14) / (J.r0 * J.r1), rs_task, &J);
        return QO_OK;
    }
    memset(acc, 0, (size_t)qo_tensor_numel(&out[0]) * sizeof(float));
    const float *xp = x->data;
    int64_t L = ext[ns - 1], nouter = qo_tensor_numel(x) / L, idx[QO_MAX_RANK] = {0}, off = 0;
    for (int64_t o = 0; o < nouter; o++, xp += L) {
        if (red[ns - 1]) {
            float a = acc[off];
            for (int64_t j = 0; j < L; j++) a += xp[j];
            acc[off] = a;
        } else {
            float *ar = acc + off;
            for (int64_t j = 0; j < L; j++) ar[j] += xp[j];
        }
        for (int i = ns - 2; i >= 0; i--) { /* next outer index */
            if (++idx[i] < ext[i]) {
                off += ostr[i];
                break;
            }
            off -= (ext[i] - 1) * ostr[i];
            idx[i] = 0;
        }
    }
    return QO_OK;
}

/* ---- node adapter ------------------------------------------------------------------------------- */
bool qo_k_train_supported(qo_op op) {
    return op == QO_OP_TRAIN_QUANTGRAD || op == QO_OP_TRAIN_MAXPOOLGRAD || op == QO_OP_TRAIN_CONVGRADWEIGHT ||
           op == QO_OP_REDUCESUM;
}

qo_status qo_k_train_node_run(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                              uint32_t nout) {
    switch ((qo_op)qo_node_get(k->g, k->n)->op) {
    case QO_OP_TRAIN_QUANTGRAD: return quantgrad(k, pool, in, nin, out, nout);
    case QO_OP_TRAIN_MAXPOOLGRAD: return maxpoolgrad(k, pool, in, nin, out, nout);
    case QO_OP_TRAIN_CONVGRADWEIGHT: return convgradweight(k, pool, in, nin, out, nout);
    case QO_OP_REDUCESUM: return k->opset >= 13 ? reducesum(k, pool, in, nin, out, nout) : DECLINE;
    default: return DECLINE;
    }
}
