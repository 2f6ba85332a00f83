/* runtime/ref/nn.c — reference kernels: Conv, ConvTranspose, Gemm, MatMul, BatchNormalization,
 * InstanceNormalization, LayerNormalization, LRN, MaxPool, AveragePool, GlobalAveragePool,
 * GlobalMaxPool, Softmax, LogSoftmax; also LpPool, GlobalLpPool, MaxUnpool, LpNormalization,
 * MeanVarianceNormalization.
 *
 * Plain scalar loops. Float kernels compute in float32: dot products accumulate in natural order
 * (Conv: over (c, k1, k2, ...) with the bias added last, as onnxruntime's im2col + GEMM does),
 * normalizations follow onnxruntime's formulas. Output shapes are computed at run time from the
 * input shapes and attributes. */
#include "runtime/ref/ref.h"
#include "runtime/ref/geom.h"
#include "runtime/ref/util.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */
static const char *op_name(qo_kctx *k) { return qo_node_op_type(k->g, k->n); }

static qo_status need_f32(qo_kctx *k, const qo_tensor *t, const char *what) {
    if (t->elem != QO_F32)
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "%s: element type %s of %s is not supported (float32 only)",
                       op_name(k), qo_elem_name(t->elem) ? qo_elem_name(t->elem) : "?", what);
    return QO_OK;
}

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Advances a multi-index idx over extents ext[0..n) in row-major order; false when it wraps. */
static bool next_index(int64_t *idx, const int64_t *ext, int n) {
    for (int i = n - 1; i >= 0; i--) {
        if (++idx[i] < ext[i]) return true;
        idx[i] = 0;
    }
    return false;
}

/* Row-major strides of extents ext[0..n) (n >= 1) into str. */
static void row_strides(const int64_t *ext, int n, int64_t *str) {
    str[n - 1] = 1;
    for (int i = n - 2; i >= 0; i--) str[i] = str[i + 1] * ext[i + 1];
}

/* A pool's output (N, C, g's output extents) of element type e, made in out[0], and the sizes its
 * loops use: shape odims, NC planes, spatial sizes isz/osz/ksz, row-major input strides rstr. */
typedef struct pool_run {
    int64_t odims[QO_MAX_RANK], NC, isz, osz, ksz, rstr[QO_MAX_RANK];
} pool_run;

static qo_status pool_begin(qo_kctx *k, const qo_tensor *x, int e, const qo_geom *g, qo_tensor *out, pool_run *r) {
    qo_geom_out_dims(g, x->dims[0], x->dims[1], r->odims);
    QO_TRY(qo_tensor_make(k->cx, &out[0], e, x->rank, r->odims));
    r->NC = x->dims[0] * x->dims[1];
    r->isz = prod(g->in, 0, g->nsp), r->osz = prod(g->out, 0, g->nsp), r->ksz = prod(g->ker, 0, g->nsp);
    row_strides(g->in, g->nsp, r->rstr);
    return QO_OK;
}

/* ---- Conv ----------------------------------------------------------------------------------- */
static qo_status k_conv(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0], *w = in[1], *b = nin > 2 ? in[2] : NULL;
    QO_TRY(need_f32(k, x, "X"));
    QO_TRY(need_f32(k, w, "W"));
    if (b) QO_TRY(need_f32(k, b, "B"));
    if (w->rank != x->rank)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "Conv: W has rank %d, X has rank %d", (int)w->rank, (int)x->rank);
    qo_conv_ch ch;
    QO_TRY(qo_geom_channels(k, x, w, b, false, QO_GEOM_REPORT, &ch));
    int64_t N = ch.N, C = ch.C, M = ch.M, Cg = C / ch.group, Mg = M / ch.group;
    qo_geom g;
    QO_TRY(qo_geom_window(k, x, w->dims + 2, 0, QO_GEOM_REPORT, &g));
    for (int i = 0; i < g.nsp; i++)
        if (g.ker[i] != w->dims[2 + i])
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "Conv: kernel_shape disagrees with W's shape");
    int64_t odims[QO_MAX_RANK];
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, qo_geom_out_dims(&g, N, M, odims), odims));
    (void)nout;

    int nsp = g.nsp;
    int64_t isz = prod(g.in, 0, nsp), osz = prod(g.out, 0, nsp), ksz = prod(g.ker, 0, nsp);
    /* kernel offsets per kernel position, per dim, and the row-major input strides */
    int64_t *koff = qo_malloc((size_t)(ksz * nsp) * sizeof *koff);
    int64_t kidx[QO_MAX_RANK] = {0};
    for (int64_t kp = 0; kp < ksz; kp++) {
        for (int i = 0; i < nsp; i++) koff[kp * nsp + i] = kidx[i] * g.dil[i];
        next_index(kidx, g.ker, nsp);
    }
    int64_t istr[QO_MAX_RANK];
    row_strides(g.in, nsp, istr);

    const float *X = x->data, *W = w->data, *B = b ? b->data : NULL;
    float *Y = out[0].data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            int64_t grp = m / Mg;
            const float *xg = X + (n * C + grp * Cg) * isz;
            const float *wm = W + m * Cg * ksz;
            float *ym = Y + (n * M + m) * osz;
            int64_t oidx[QO_MAX_RANK] = {0};
            for (int64_t op = 0; op < osz; op++) {
                int64_t base[QO_MAX_RANK];
                for (int i = 0; i < nsp; i++) base[i] = oidx[i] * g.str[i] - g.pb[i];
                float acc = 0.0f;
                for (int64_t c = 0; c < Cg; c++) {
                    const float *xc = xg + c * isz;
                    const float *wc = wm + c * ksz;
                    for (int64_t kp = 0; kp < ksz; kp++) {
                        int64_t off = 0;
                        bool inside = true;
                        for (int i = 0; i < nsp; i++) {
                            int64_t p = base[i] + koff[kp * nsp + i];
                            if (p < 0 || p >= g.in[i]) { inside = false; break; }
                            off += p * istr[i];
                        }
                        if (inside) acc += xc[off] * wc[kp];
                    }
                }
                if (B) acc += B[m];
                ym[op] = acc;
                next_index(oidx, g.out, nsp);
            }
        }
    qo_free(koff);
    return QO_OK;
}

/* ---- ConvTranspose -------------------------------------------------------------------------- */
static qo_status k_convtranspose(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                 uint32_t nout) {
    const qo_tensor *x = in[0], *w = in[1], *b = nin > 2 ? in[2] : NULL;
    (void)nout;
    QO_TRY(need_f32(k, x, "X"));
    QO_TRY(need_f32(k, w, "W"));
    if (b) QO_TRY(need_f32(k, b, "B"));
    if (x->rank < 3 || w->rank != x->rank)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "ConvTranspose: X rank %d, W rank %d", (int)x->rank, (int)w->rank);
    qo_conv_ch ch;
    QO_TRY(qo_geom_channels(k, x, w, b, true, QO_GEOM_REPORT, &ch));
    int64_t N = ch.N, C = ch.C, M = ch.M, Cg = C / ch.group, Mg = M / ch.group;
    qo_geom g;
    QO_TRY(qo_geom_convtranspose(k, x, w, QO_GEOM_REPORT, &g));
    int nsp = g.nsp;
    int64_t odims[QO_MAX_RANK];
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, qo_geom_out_dims(&g, N, M, odims), odims));

    int64_t isz = prod(g.in, 0, nsp), osz = prod(g.out, 0, nsp), ksz = prod(g.ker, 0, nsp);
    int64_t ostr[QO_MAX_RANK];
    row_strides(g.out, nsp, ostr);
    const float *X = x->data, *W = w->data;
    float *Y = out[0].data;
    /* onnxruntime's order: col[m, kpos, ipos] = sum over c (GEMM), then col2im adds the columns
     * into the output in (m, kpos, ipos) order, then the bias. */
    for (int64_t nb = 0; nb < N; nb++)
        for (int64_t m = 0; m < M; m++) {
            int64_t grp = m / Mg, mm = m % Mg;
            const float *xg = X + (nb * C + grp * Cg) * isz;
            float *ym = Y + (nb * M + m) * osz;
            int64_t kidx[QO_MAX_RANK] = {0};
            for (int64_t kp = 0; kp < ksz; kp++) {
                int64_t iidx[QO_MAX_RANK] = {0};
                for (int64_t ip = 0; ip < isz; ip++) {
                    int64_t off = 0;
                    bool inside = true;
                    for (int i = 0; i < nsp; i++) {
                        int64_t p = iidx[i] * g.str[i] - g.pb[i] + kidx[i] * g.dil[i];
                        if (p < 0 || p >= g.out[i]) { inside = false; break; }
                        off += p * ostr[i];
                    }
                    if (inside) {
                        float acc = 0.0f;
                        for (int64_t c = 0; c < Cg; c++)
                            acc += xg[c * isz + ip] * W[((grp * Cg + c) * Mg + mm) * ksz + kp];
                        ym[off] += acc;
                    }
                    next_index(iidx, g.in, nsp);
                }
                next_index(kidx, g.ker, nsp);
            }
            if (b) {
                float bv = ((const float *)b->data)[m];
                for (int64_t op = 0; op < osz; op++) ym[op] += bv;
            }
        }
    return QO_OK;
}

/* ---- Gemm ----------------------------------------------------------------------------------- */
static qo_status k_gemm(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *a = in[0], *b = in[1], *c = nin > 2 ? in[2] : NULL;
    (void)nout;
    QO_TRY(need_f32(k, a, "A"));
    QO_TRY(need_f32(k, b, "B"));
    if (c) QO_TRY(need_f32(k, c, "C"));
    if (a->rank != 2 || b->rank != 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "Gemm: A and B must be 2-D");
    if (!c && k->opset < 11) return qo_kerr(k, QO_ERR_INVALID_MODEL, "Gemm: input C is required before opset 11");
    int64_t ta = qo_attr_int(k->g, k->n, "transA", 0), tb = qo_attr_int(k->g, k->n, "transB", 0);
    float alpha = qo_attr_float(k->g, k->n, "alpha", 1.0f), beta = qo_attr_float(k->g, k->n, "beta", 1.0f);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t Kb = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != Kb) return qo_kerr(k, QO_ERR_INVALID_MODEL, "Gemm: inner dimensions %lld and %lld differ", (long long)K, (long long)Kb);
    /* C broadcasts unidirectionally to [M, N] */
    int64_t cs0 = 0, cs1 = 0;
    if (c) {
        if (c->rank > 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "Gemm: C has rank %d", (int)c->rank);
        int64_t c0 = c->rank == 2 ? c->dims[0] : 1, c1 = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if ((c0 != 1 && c0 != M) || (c1 != 1 && c1 != N))
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "Gemm: C cannot broadcast to [%lld, %lld]", (long long)M, (long long)N);
        cs1 = c1 == 1 ? 0 : 1;
        cs0 = c0 == 1 ? 0 : c1;
    }
    int64_t odims[2] = {M, N};
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, 2, odims));
    const float *A = a->data, *B = b->data, *Cd = c ? c->data : NULL;
    float *Y = out[0].data;
    int64_t as0 = ta ? 1 : a->dims[1], as1 = ta ? a->dims[1] : 1;
    int64_t bs0 = tb ? 1 : b->dims[1], bs1 = tb ? b->dims[1] : 1;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int64_t kk = 0; kk < K; kk++) acc += A[i * as0 + kk * as1] * B[kk * bs0 + j * bs1];
            float y = alpha * acc;
            if (Cd && beta != 0.0f) y += beta * Cd[i * cs0 + j * cs1];
            Y[i * N + j] = y;
        }
    return QO_OK;
}

/* ---- MatMul --------------------------------------------------------------------------------- */
#define MATMUL_LOOP(T, ACC)                                                                        \
    do {                                                                                           \
        const T *A = a->data, *B = b->data;                                                        \
        T *Y = out[0].data;                                                                        \
        for (int64_t bt = 0; bt < nbatch; bt++) {                                                  \
            const T *Ab = A + aoff[bt], *Bb = B + boff[bt];                                        \
            T *Yb = Y + bt * M * N;                                                                \
            for (int64_t i = 0; i < M; i++)                                                        \
                for (int64_t j = 0; j < N; j++) {                                                  \
                    ACC acc = 0;                                                                   \
                    for (int64_t kk = 0; kk < K; kk++) acc += (ACC)Ab[i * K + kk] * (ACC)Bb[kk * N + j]; \
                    Yb[i * N + j] = (T)acc;                                                        \
                }                                                                                  \
        }                                                                                          \
    } while (0)

static qo_status k_matmul(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *a = in[0], *b = in[1];
    (void)nin, (void)nout;
    if (a->elem != b->elem) return qo_kerr(k, QO_ERR_INVALID_MODEL, "MatMul: A and B have different element types");
    int e = a->elem;
    if (e != QO_F32 && e != QO_F64 && e != QO_I32 && e != QO_I64 && e != QO_U32 && e != QO_U64)
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "MatMul: element type %s is not supported",
                       qo_elem_name(e) ? qo_elem_name(e) : "?");
    if (a->rank < 1 || b->rank < 1) return qo_kerr(k, QO_ERR_INVALID_MODEL, "MatMul: scalar operand");
    /* promote 1-D operands: A [K] -> [1, K], B [K] -> [K, 1]; the added dims are dropped again */
    int64_t ad[QO_MAX_RANK + 1], bd[QO_MAX_RANK + 1];
    int ar = a->rank, br = b->rank;
    memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ar);
    memcpy(bd, b->dims, sizeof(int64_t) * (size_t)br);
    if (ar == 1) ad[1] = ad[0], ad[0] = 1, ar = 2;
    if (br == 1) bd[1] = 1, br = 2;
    int64_t M = ad[ar - 2], K = ad[ar - 1], N = bd[br - 1];
    if (bd[br - 2] != K) return qo_kerr(k, QO_ERR_INVALID_MODEL, "MatMul: inner dimensions %lld and %lld differ", (long long)K, (long long)bd[br - 2]);
    int bra = ar - 2, brb = br - 2, brank = bra > brb ? bra : brb;
    int64_t bdims[QO_MAX_RANK], sa[QO_MAX_RANK], sb[QO_MAX_RANK];
    int64_t ma = M * K, mb = K * N;
    for (int i = brank - 1; i >= 0; i--) {
        int ia = i - (brank - bra), ib = i - (brank - brb);
        int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "MatMul: batch dimensions %lld and %lld do not broadcast", (long long)da, (long long)db);
        bdims[i] = da == 1 ? db : da;
        sa[i] = da == 1 ? 0 : ma;
        sb[i] = db == 1 ? 0 : mb;
        ma *= da, mb *= db;
    }
    int64_t odims[QO_MAX_RANK + 2] = {0};
    int orank = 0;
    for (int i = 0; i < brank; i++) odims[orank++] = bdims[i];
    if (a->rank > 1) odims[orank++] = M;
    if (b->rank > 1) odims[orank++] = N;
    if (orank > QO_MAX_RANK) return qo_kerr(k, QO_ERR_UNSUPPORTED, "MatMul: rank too large");
    QO_TRY(qo_tensor_make(k->cx, &out[0], e, orank, odims));
    int64_t nbatch = prod(bdims, 0, brank);
    int64_t *aoff = qo_malloc((size_t)(nbatch ? nbatch : 1) * 2 * sizeof *aoff), *boff = aoff + (nbatch ? nbatch : 1);
    int64_t idx[QO_MAX_RANK] = {0};
    for (int64_t bt = 0; bt < nbatch; bt++) {
        aoff[bt] = boff[bt] = 0;
        for (int i = 0; i < brank; i++) aoff[bt] += idx[i] * sa[i], boff[bt] += idx[i] * sb[i];
        next_index(idx, bdims, brank);
    }
    switch (e) {
    case QO_F32: MATMUL_LOOP(float, float); break;
    case QO_F64: MATMUL_LOOP(double, double); break;
    case QO_I32: MATMUL_LOOP(int32_t, uint32_t); break; /* wraps like two's complement */
    case QO_I64: MATMUL_LOOP(int64_t, uint64_t); break;
    case QO_U32: MATMUL_LOOP(uint32_t, uint32_t); break;
    default: MATMUL_LOOP(uint64_t, uint64_t); break;
    }
    qo_free(aoff);
    return QO_OK;
}

/* ---- BatchNormalization --------------------------------------------------------------------- */
static qo_status check_vec(qo_kctx *k, const qo_tensor *t, int64_t C, const char *what) {
    QO_TRY(need_f32(k, t, what));
    if (qo_tensor_numel(t) != C || t->rank != 1)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: %s must have shape [%lld]", op_name(k), what, (long long)C);
    return QO_OK;
}

static qo_status k_batchnorm(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin;
    QO_TRY(need_f32(k, x, "X"));
    if (x->rank < 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "BatchNormalization: X has rank %d", (int)x->rank);
    int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
    static const char *const names[] = {"scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++) QO_TRY(check_vec(k, in[i], C, names[i - 1]));
    float eps = qo_attr_float(k->g, k->n, "epsilon", 1e-5f);
    bool training = k->opset >= 14 ? qo_attr_int(k->g, k->n, "training_mode", 0) != 0 : false;
    if (!training && nout > 1 && qo_node_output(k->g, k->n, 1) && k->opset < 14)
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "BatchNormalization: training outputs (opset %lld) are not supported",
                       (long long)k->opset);
    const float *X = x->data, *sc = in[1]->data, *bi = in[2]->data, *mean = in[3]->data, *var = in[4]->data;
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, x->dims));
    float *Y = out[0].data;
    if (!training) {
        /* onnxruntime: inv_std = 1/sqrt(var+eps); s = inv_std*scale; y = x*s + (B - mean*s) */
        for (int64_t c = 0; c < C; c++) {
            float inv_std = 1.0f / sqrtf(var[c] + eps);
            float s = inv_std * sc[c];
            float sh = bi[c] - mean[c] * s;
            for (int64_t n = 0; n < N; n++) {
                const float *xp = X + (n * C + c) * S;
                float *yp = Y + (n * C + c) * S;
                for (int64_t i = 0; i < S; i++) yp[i] = xp[i] * s + sh;
            }
        }
        return QO_OK;
    }
    /* training_mode=1: normalize with the batch statistics, output updated running statistics */
    float momentum = qo_attr_float(k->g, k->n, "momentum", 0.9f);
    float *rm = NULL, *rv = NULL;
    int64_t cd[1] = {C};
    if (nout > 1 && qo_node_output(k->g, k->n, 1)) {
        QO_TRY(qo_tensor_make(k->cx, &out[1], QO_F32, 1, cd));
        rm = out[1].data;
    }
    if (nout > 2 && qo_node_output(k->g, k->n, 2)) {
        QO_TRY(qo_tensor_make(k->cx, &out[2], QO_F32, 1, cd));
        rv = out[2].data;
    }
    float cnt = (float)(N * S);
    for (int64_t c = 0; c < C; c++) {
        float sum = 0.0f;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) sum += X[(n * C + c) * S + i];
        float bm = sum / cnt, sq = 0.0f;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                float d = X[(n * C + c) * S + i] - bm;
                sq += d * d;
            }
        float bv = sq / cnt;
        float inv_std = 1.0f / sqrtf(bv + eps);
        float s = inv_std * sc[c], sh = bi[c] - bm * s;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) Y[(n * C + c) * S + i] = X[(n * C + c) * S + i] * s + sh;
        if (rm) rm[c] = mean[c] * momentum + bm * (1.0f - momentum);
        if (rv) rv[c] = var[c] * momentum + bv * (1.0f - momentum);
    }
    return QO_OK;
}

/* ---- InstanceNormalization ------------------------------------------------------------------ */
static qo_status k_instancenorm(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin, (void)nout;
    QO_TRY(need_f32(k, x, "input"));
    if (x->rank < 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "InstanceNormalization: input has rank %d", (int)x->rank);
    int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
    QO_TRY(check_vec(k, in[1], C, "scale"));
    QO_TRY(check_vec(k, in[2], C, "B"));
    float eps = qo_attr_float(k->g, k->n, "epsilon", 1e-5f);
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, x->dims));
    const float *X = x->data, *sc = in[1]->data, *bi = in[2]->data;
    float *Y = out[0].data;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *xp = X + (n * C + c) * S;
            float *yp = Y + (n * C + c) * S;
            float sum = 0.0f;
            for (int64_t i = 0; i < S; i++) sum += xp[i];
            float mean = sum / (float)S, sq = 0.0f;
            for (int64_t i = 0; i < S; i++) {
                float d = xp[i] - mean;
                sq += d * d;
            }
            /* onnxruntime: inv = 1/sqrt(var+eps); s = inv*scale; y = x*s + (B - mean*s) */
            float inv = 1.0f / sqrtf(sq / (float)S + eps);
            float s = inv * sc[c], sh = bi[c] - mean * s;
            for (int64_t i = 0; i < S; i++) yp[i] = xp[i] * s + sh;
        }
    return QO_OK;
}

/* ---- LayerNormalization --------------------------------------------------------------------- */
/* True if t broadcasts (unidirectionally) to the trailing dims `d[0..n)`; fills strides. */
static bool trailing_bcast(const qo_tensor *t, const int64_t *d, int n, int64_t *strides) {
    if (t->rank > n) {
        for (int i = 0; i < t->rank - n; i++)
            if (t->dims[i] != 1) return false;
    }
    int64_t s = 1;
    for (int i = n - 1; i >= 0; i--) {
        int ti = t->rank - (n - i);
        int64_t td = ti >= 0 ? t->dims[ti] : 1;
        if (td != d[i] && td != 1) return false;
        strides[i] = td == 1 ? 0 : s;
        s *= td;
    }
    return true;
}

static qo_status k_layernorm(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0], *sc = in[1], *bi = nin > 2 ? in[2] : NULL;
    QO_TRY(need_f32(k, x, "X"));
    QO_TRY(need_f32(k, sc, "Scale"));
    if (bi) QO_TRY(need_f32(k, bi, "B"));
    int64_t axis = qo_attr_int(k->g, k->n, "axis", -1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "LayerNormalization: axis out of range for rank %d", (int)x->rank);
    float eps = qo_attr_float(k->g, k->n, "epsilon", 1e-5f);
    int nn = x->rank - (int)axis;
    int64_t outer = prod(x->dims, 0, (int)axis), inner = prod(x->dims, (int)axis, x->rank);
    int64_t ss[QO_MAX_RANK], bs[QO_MAX_RANK];
    if (!trailing_bcast(sc, x->dims + axis, nn, ss) || (bi && !trailing_bcast(bi, x->dims + axis, nn, bs)))
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "LayerNormalization: Scale/B do not broadcast to the normalized dims");
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, x->dims));
    int64_t sdims[QO_MAX_RANK];
    for (int i = 0; i < x->rank; i++) sdims[i] = i < axis ? x->dims[i] : 1;
    float *mo = NULL, *io = NULL;
    if (nout > 1 && qo_node_output(k->g, k->n, 1)) {
        QO_TRY(qo_tensor_make(k->cx, &out[1], QO_F32, x->rank, sdims));
        mo = out[1].data;
    }
    if (nout > 2 && qo_node_output(k->g, k->n, 2)) {
        QO_TRY(qo_tensor_make(k->cx, &out[2], QO_F32, x->rank, sdims));
        io = out[2].data;
    }
    const float *X = x->data, *S = sc->data, *B = bi ? bi->data : NULL;
    float *Y = out[0].data;
    /* scale/bias offsets per inner position */
    int64_t *soff = qo_malloc((size_t)(inner ? inner : 1) * 2 * sizeof *soff), *boff = soff + (inner ? inner : 1);
    int64_t idx[QO_MAX_RANK] = {0};
    for (int64_t i = 0; i < inner; i++) {
        soff[i] = boff[i] = 0;
        for (int d = 0; d < nn; d++) {
            soff[i] += idx[d] * ss[d];
            if (B) boff[i] += idx[d] * bs[d];
        }
        next_index(idx, x->dims + axis, nn);
    }
    for (int64_t o = 0; o < outer; o++) {
        const float *xp = X + o * inner;
        float *yp = Y + o * inner;
        float sum = 0.0f;
        for (int64_t i = 0; i < inner; i++) sum += xp[i];
        float mean = sum / (float)inner, sq = 0.0f;
        for (int64_t i = 0; i < inner; i++) {
            float d = xp[i] - mean;
            sq += d * d;
        }
        float sd = sqrtf(sq / (float)inner + eps);
        for (int64_t i = 0; i < inner; i++) {
            float y = (xp[i] - mean) / sd * S[soff[i]];
            if (B) y += B[boff[i]];
            yp[i] = y;
        }
        if (mo) mo[o] = mean;
        if (io) io[o] = 1.0f / sd;
    }
    qo_free(soff);
    return QO_OK;
}

/* ---- LRN ------------------------------------------------------------------------------------ */
static qo_status k_lrn(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin, (void)nout;
    QO_TRY(need_f32(k, x, "X"));
    if (x->rank < 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "LRN: X has rank %d", (int)x->rank);
    int64_t size = qo_attr_int(k->g, k->n, "size", 0);
    if (size < 1) return qo_kerr(k, QO_ERR_INVALID_MODEL, "LRN: size attribute must be positive");
    float alpha = qo_attr_float(k->g, k->n, "alpha", 1e-4f), beta = qo_attr_float(k->g, k->n, "beta", 0.75f);
    float bias = qo_attr_float(k->g, k->n, "bias", 1.0f);
    int64_t N = x->dims[0], C = x->dims[1], S = prod(x->dims, 2, x->rank);
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, x->dims));
    const float *X = x->data;
    float *Y = out[0].data;
    float a = alpha / (float)size;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < S; i++) {
                float sq = 0.0f;
                for (int64_t j = c - lo; j <= c + hi; j++)
                    if (j >= 0 && j < C) {
                        float v = X[(n * C + j) * S + i];
                        sq += v * v;
                    }
                Y[(n * C + c) * S + i] = X[(n * C + c) * S + i] / powf(bias + a * sq, beta);
            }
    return QO_OK;
}

/* ---- pools ---------------------------------------------------------------------------------- */
static double load_d(const void *p, int e, int64_t i) {
    switch (e) {
    case QO_F32: return ((const float *)p)[i];
    case QO_F64: return ((const double *)p)[i];
    case QO_I8: return ((const int8_t *)p)[i];
    case QO_U8: return ((const uint8_t *)p)[i];
    default: return 0;
    }
}
static void store_d(void *p, int e, int64_t i, double v) {
    switch (e) {
    case QO_F32: ((float *)p)[i] = (float)v; break;
    case QO_F64: ((double *)p)[i] = v; break;
    case QO_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case QO_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    default: break;
    }
}

static qo_status k_maxpool(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin;
    int e = x->elem;
    if (e != QO_F32 && e != QO_F64 && e != QO_I8 && e != QO_U8)
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "MaxPool: element type %s is not supported",
                       qo_elem_name(e) ? qo_elem_name(e) : "?");
    qo_geom g;
    QO_TRY(qo_geom_pool(k, x, QO_GEOM_REPORT, &g));
    int64_t storage = qo_attr_int(k->g, k->n, "storage_order", 0);
    int nsp = g.nsp;
    pool_run r;
    QO_TRY(pool_begin(k, x, e, &g, out, &r));
    int64_t *ind = NULL;
    if (nout > 1 && qo_node_output(k->g, k->n, 1)) {
        QO_TRY(qo_tensor_make(k->cx, &out[1], QO_I64, x->rank, r.odims));
        ind = out[1].data;
    }
    int64_t NC = r.NC, isz = r.isz, osz = r.osz, ksz = r.ksz, *rstr = r.rstr;
    int64_t cstr[QO_MAX_RANK]; /* column-major spatial strides (storage_order 1) */
    cstr[0] = 1;
    for (int i = 1; i < nsp; i++) cstr[i] = cstr[i - 1] * g.in[i - 1];
    for (int64_t nc = 0; nc < NC; nc++) {
        int64_t oidx[QO_MAX_RANK] = {0};
        for (int64_t op = 0; op < osz; op++) {
            double best = -INFINITY;
            int64_t bi = -1;
            int64_t kidx[QO_MAX_RANK] = {0};
            for (int64_t kp = 0; kp < ksz; kp++) {
                int64_t roff = 0, coff = 0;
                bool inside = true;
                for (int i = 0; i < nsp; i++) {
                    int64_t p = oidx[i] * g.str[i] - g.pb[i] + kidx[i] * g.dil[i];
                    if (p < 0 || p >= g.in[i]) { inside = false; break; }
                    roff += p * rstr[i], coff += p * cstr[i];
                }
                if (inside) {
                    double v = load_d(x->data, e, nc * isz + roff);
                    if (bi < 0 || v > best) best = v, bi = nc * isz + (storage ? coff : roff);
                }
                next_index(kidx, g.ker, nsp);
            }
            store_d(out[0].data, e, nc * osz + op, best);
            if (ind) ind[nc * osz + op] = bi;
            next_index(oidx, g.out, nsp);
        }
    }
    return QO_OK;
}

static qo_status k_avgpool(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin, (void)nout;
    QO_TRY(need_f32(k, x, "X"));
    qo_geom g;
    QO_TRY(qo_geom_pool(k, x, QO_GEOM_REPORT, &g));
    bool incl = qo_attr_int(k->g, k->n, "count_include_pad", 0) != 0;
    int nsp = g.nsp;
    pool_run r;
    QO_TRY(pool_begin(k, x, QO_F32, &g, out, &r));
    int64_t NC = r.NC, isz = r.isz, osz = r.osz, ksz = r.ksz, *rstr = r.rstr;
    const float *X = x->data;
    float *Y = out[0].data;
    for (int64_t nc = 0; nc < NC; nc++) {
        int64_t oidx[QO_MAX_RANK] = {0};
        for (int64_t op = 0; op < osz; op++) {
            float sum = 0.0f;
            int64_t nvalid = 0, npad = 0;
            int64_t kidx[QO_MAX_RANK] = {0};
            for (int64_t kp = 0; kp < ksz; kp++) {
                int64_t off = 0;
                bool inside = true, inpad = true;
                for (int i = 0; i < nsp; i++) {
                    int64_t p = oidx[i] * g.str[i] - g.pb[i] + kidx[i] * g.dil[i];
                    if (p < 0 || p >= g.in[i]) inside = false;
                    if (p < -g.pb[i] || p >= g.in[i] + g.pe[i]) inpad = false;
                    off += p * rstr[i];
                }
                if (inside) sum += X[nc * isz + off], nvalid++;
                if (inpad) npad++;
                next_index(kidx, g.ker, nsp);
            }
            int64_t cnt = incl ? npad : nvalid;
            Y[nc * osz + op] = cnt > 0 ? sum / (float)cnt : 0.0f;
            next_index(oidx, g.out, nsp);
        }
    }
    return QO_OK;
}

static qo_status global_pool(qo_kctx *k, const qo_tensor *const *in, qo_tensor *out, bool is_max) {
    const qo_tensor *x = in[0];
    int e = x->elem;
    if (e != QO_F32 && e != QO_F64)
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "%s: element type %s is not supported", op_name(k),
                       qo_elem_name(e) ? qo_elem_name(e) : "?");
    if (x->rank < 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: input rank %d, expected at least 2", op_name(k), (int)x->rank);
    int64_t odims[QO_MAX_RANK] = {0};
    for (int i = 0; i < x->rank; i++) odims[i] = i < 2 ? x->dims[i] : 1;
    QO_TRY(qo_tensor_make(k->cx, &out[0], e, x->rank, odims));
    int64_t NC = x->dims[0] * x->dims[1], S = prod(x->dims, 2, x->rank);
    for (int64_t nc = 0; nc < NC; nc++) {
        if (e == QO_F32) {
            const float *xp = (const float *)x->data + nc * S;
            float r = is_max ? -INFINITY : 0.0f;
            for (int64_t i = 0; i < S; i++) r = is_max ? (xp[i] > r ? xp[i] : r) : r + xp[i];
            ((float *)out[0].data)[nc] = is_max ? r : r / (float)S;
        } else {
            const double *xp = (const double *)x->data + nc * S;
            double r = is_max ? -INFINITY : 0.0;
            for (int64_t i = 0; i < S; i++) r = is_max ? (xp[i] > r ? xp[i] : r) : r + xp[i];
            ((double *)out[0].data)[nc] = is_max ? r : r / (double)S;
        }
    }
    return QO_OK;
}

static qo_status k_globalavgpool(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                 uint32_t nout) {
    (void)nin, (void)nout;
    return global_pool(k, in, out, false);
}

static qo_status k_globalmaxpool(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                 uint32_t nout) {
    (void)nin, (void)nout;
    return global_pool(k, in, out, true);
}

/* ---- Softmax / LogSoftmax ------------------------------------------------------------------- */
static qo_status softmax(qo_kctx *k, const qo_tensor *const *in, qo_tensor *out, bool is_log) {
    const qo_tensor *x = in[0];
    QO_TRY(need_f32(k, x, "input"));
    int r = x->rank;
    int64_t axis = qo_attr_int(k->g, k->n, "axis", k->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis < 0 || (axis >= r && !(r == 0 && axis == 0)))
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: axis out of range for rank %d", op_name(k), r);
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, r, x->dims));
    /* opset < 13: coerced to 2-D [outer, prod(dims[axis:])]; >= 13: along one axis */
    int64_t outer = prod(x->dims, 0, (int)axis), len, inner;
    if (k->opset < 13) len = prod(x->dims, (int)axis, r), inner = 1;
    else len = r ? x->dims[axis] : 1, inner = prod(x->dims, (int)axis + 1, r);
    const float *X = x->data;
    float *Y = out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in_ = 0; in_ < inner; in_++) {
            const float *xp = X + o * len * inner + in_;
            float *yp = Y + o * len * inner + in_;
            float mx = -INFINITY;
            for (int64_t i = 0; i < len; i++) mx = xp[i * inner] > mx ? xp[i * inner] : mx;
            float sum = 0.0f;
            for (int64_t i = 0; i < len; i++) {
                float ev = expf(xp[i * inner] - mx);
                if (!is_log) yp[i * inner] = ev;
                sum += ev;
            }
            if (is_log) {
                float ls = logf(sum);
                for (int64_t i = 0; i < len; i++) yp[i * inner] = xp[i * inner] - mx - ls;
            } else {
                for (int64_t i = 0; i < len; i++) yp[i * inner] = yp[i * inner] / sum;
            }
        }
    return QO_OK;
}

static qo_status k_softmax(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    (void)nin, (void)nout;
    return softmax(k, in, out, false);
}

static qo_status k_logsoftmax(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                              uint32_t nout) {
    (void)nin, (void)nout;
    return softmax(k, in, out, true);
}

/* ---- LpPool / GlobalLpPool ------------------------------------------------------------------ */
static float lp_root(float sum, int64_t p) {
    return p == 1 ? sum : p == 2 ? sqrtf(sum) : powf(sum, 1.0f / (float)p);
}
static float lp_term(float v, int64_t p) {
    float a = fabsf(v);
    return p == 1 ? a : p == 2 ? a * a : powf(a, (float)p);
}

static qo_status k_lppool(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin, (void)nout;
    QO_TRY(need_f32(k, x, "X"));
    int64_t p = qo_attr_int(k->g, k->n, "p", 2);
    if (p < 1) return qo_kerr(k, QO_ERR_INVALID_MODEL, "LpPool: p must be positive");
    qo_geom g;
    QO_TRY(qo_geom_pool(k, x, QO_GEOM_REPORT, &g));
    int nsp = g.nsp;
    pool_run r;
    QO_TRY(pool_begin(k, x, QO_F32, &g, out, &r));
    int64_t NC = r.NC, isz = r.isz, osz = r.osz, ksz = r.ksz, *rstr = r.rstr;
    const float *X = x->data;
    float *Y = out[0].data;
    for (int64_t nc = 0; nc < NC; nc++) {
        int64_t oidx[QO_MAX_RANK] = {0};
        for (int64_t op = 0; op < osz; op++) {
            float sum = 0.0f;
            int64_t kidx[QO_MAX_RANK] = {0};
            for (int64_t kp = 0; kp < ksz; kp++) {
                int64_t off = 0;
                bool inside = true;
                for (int i = 0; i < nsp; i++) {
                    int64_t q = oidx[i] * g.str[i] - g.pb[i] + kidx[i] * g.dil[i];
                    if (q < 0 || q >= g.in[i]) inside = false;
                    off += q * rstr[i];
                }
                if (inside) sum += lp_term(X[nc * isz + off], p);
                next_index(kidx, g.ker, nsp);
            }
            Y[nc * osz + op] = lp_root(sum, p);
            next_index(oidx, g.out, nsp);
        }
    }
    return QO_OK;
}

static qo_status k_globallppool(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin, (void)nout;
    QO_TRY(need_f32(k, x, "X"));
    if (x->rank < 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "GlobalLpPool: input rank %d, expected at least 2", (int)x->rank);
    int64_t p = qo_attr_int(k->g, k->n, "p", 2);
    if (p < 1) return qo_kerr(k, QO_ERR_INVALID_MODEL, "GlobalLpPool: p must be positive");
    int64_t odims[QO_MAX_RANK];
    for (int i = 0; i < x->rank; i++) odims[i] = i < 2 ? x->dims[i] : 1;
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, odims));
    int64_t NC = x->dims[0] * x->dims[1], S = prod(x->dims, 2, x->rank);
    const float *X = x->data;
    float *Y = out[0].data;
    for (int64_t nc = 0; nc < NC; nc++) {
        float sum = 0.0f;
        for (int64_t i = 0; i < S; i++) sum += lp_term(X[nc * S + i], p);
        Y[nc] = lp_root(sum, p);
    }
    return QO_OK;
}

/* ---- MaxUnpool ------------------------------------------------------------------------------ */
static qo_status k_maxunpool(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                             uint32_t nout) {
    const qo_tensor *x = in[0], *ind = in[1], *os = nin > 2 ? in[2] : NULL;
    (void)nout;
    QO_TRY(need_f32(k, x, "X"));
    if (ind->elem != QO_I64 || ind->rank != x->rank || qo_tensor_numel(ind) != qo_tensor_numel(x))
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "MaxUnpool: I must be int64 with X's shape");
    if (x->rank < 3) return qo_kerr(k, QO_ERR_INVALID_MODEL, "MaxUnpool: X has rank %d", (int)x->rank);
    int nsp = x->rank - 2;
    /* the indices address the default output shape (N, C, (in-1)*s - pads + k); output_shape,
     * when given, only enlarges the tensor they are scattered into */
    int64_t ddims[QO_MAX_RANK] = {x->dims[0], x->dims[1]}, odims[QO_MAX_RANK];
    int64_t ks[QO_MAX_RANK], v[2 * QO_MAX_RANK], st[QO_MAX_RANK], pads[2 * QO_MAX_RANK] = {0};
    if (qo_geom_attr_ints(k, "kernel_shape", ks, QO_MAX_RANK) != nsp)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "MaxUnpool: kernel_shape must have %d entries", nsp);
    int n = qo_geom_attr_ints(k, "strides", v, QO_MAX_RANK);
    for (int i = 0; i < nsp; i++) st[i] = n == nsp ? v[i] : 1;
    n = qo_geom_attr_ints(k, "pads", v, 2 * QO_MAX_RANK);
    for (int i = 0; i < 2 * nsp && n == 2 * nsp; i++) pads[i] = v[i];
    for (int i = 0; i < nsp; i++) ddims[2 + i] = (x->dims[2 + i] - 1) * st[i] - pads[i] - pads[nsp + i] + ks[i];
    memcpy(odims, ddims, sizeof odims);
    if (os) {
        if (os->elem != QO_I64 || qo_tensor_numel(os) != x->rank)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "MaxUnpool: output_shape must be int64 with %d entries", (int)x->rank);
        for (int i = 0; i < x->rank; i++) {
            odims[i] = ((const int64_t *)os->data)[i];
            if (odims[i] < ddims[i])
                return qo_kerr(k, QO_ERR_INVALID_MODEL, "MaxUnpool: output_shape is smaller than the unpooled shape");
        }
    }
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, odims));
    int64_t total = prod(ddims, 0, x->rank), cnt = qo_tensor_numel(x);
    const float *X = x->data;
    const int64_t *I = ind->data;
    float *Y = out[0].data;
    for (int64_t i = 0; i < cnt; i++) {
        if (I[i] < 0 || I[i] >= total)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "MaxUnpool: index %lld out of range [0, %lld)", (long long)I[i], (long long)total);
        int64_t rem = I[i], o = 0, mul = 1;
        for (int d = x->rank - 1; d >= 0; d--) {
            o += (rem % ddims[d]) * mul;
            rem /= ddims[d];
            mul *= odims[d];
        }
        Y[o] = X[i];
    }
    return QO_OK;
}

/* ---- LpNormalization, MeanVarianceNormalization ----------------------------------------------- */
static qo_status k_lpnorm(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin, (void)nout;
    QO_TRY(need_f32(k, x, "input"));
    int64_t axis = qo_attr_int(k->g, k->n, "axis", -1), p = qo_attr_int(k->g, k->n, "p", 2);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return qo_kerr(k, QO_ERR_INVALID_MODEL, "LpNormalization: axis out of range");
    if (p != 1 && p != 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "LpNormalization: p must be 1 or 2");
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, x->rank, x->dims));
    int64_t outer = prod(x->dims, 0, (int)axis), len = x->dims[axis], inner = prod(x->dims, (int)axis + 1, x->rank);
    const float *X = x->data;
    float *Y = out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const float *xp = X + o * len * inner + i;
            float *yp = Y + o * len * inner + i;
            float s = 0.0f;
            for (int64_t j = 0; j < len; j++) s += lp_term(xp[j * inner], p);
            float nrm = lp_root(s, p);
            for (int64_t j = 0; j < len; j++) yp[j * inner] = nrm != 0.0f ? xp[j * inner] / nrm : 0.0f;
        }
    return QO_OK;
}

static qo_status k_mvn(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    (void)nin, (void)nout;
    QO_TRY(need_f32(k, x, "X"));
    int r = x->rank;
    bool mask[QO_MAX_RANK] = {0};
    int64_t ax[QO_MAX_RANK];
    int n = qo_geom_attr_ints(k, "axes", ax, QO_MAX_RANK);
    if (n == -2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "MeanVarianceNormalization: bad axes");
    if (n < 0) { /* default [0, 2, 3] */
        ax[0] = 0, ax[1] = 2, ax[2] = 3;
        n = 3;
    }
    for (int i = 0; i < n; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
        if (a < 0 || a >= r) return qo_kerr(k, QO_ERR_INVALID_MODEL, "MeanVarianceNormalization: axis %lld out of range", (long long)ax[i]);
        mask[a] = true;
    }
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_F32, r, x->dims));
    /* statistics indexed like the reduced (keepdims) tensor */
    int64_t sstr[QO_MAX_RANK], s = 1, cnt = 1;
    for (int i = r - 1; i >= 0; i--) {
        sstr[i] = mask[i] ? 0 : s;
        if (!mask[i]) s *= x->dims[i];
        else cnt *= x->dims[i];
    }
    int64_t nst = s, total = qo_tensor_numel(x);
    float *sum = qo_calloc((size_t)(nst ? nst : 1) * 2, sizeof(float)), *sq = sum + (nst ? nst : 1);
    const float *X = x->data;
    float *Y = out[0].data;
    int64_t idx[QO_MAX_RANK] = {0};
    int64_t *map = qo_malloc((size_t)(total ? total : 1) * sizeof *map);
    for (int64_t i = 0; i < total; i++) {
        int64_t o = 0;
        for (int d = 0; d < r; d++) o += idx[d] * sstr[d];
        map[i] = o;
        sum[o] += X[i];
        sq[o] += X[i] * X[i];
        next_index(idx, x->dims, r);
    }
    /* ONNX function body: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) */
    for (int64_t o = 0; o < nst; o++) {
        float m = sum[o] / (float)cnt;
        sum[o] = m;
        sq[o] = sqrtf(sq[o] / (float)cnt - m * m) + 1e-9f;
    }
    for (int64_t i = 0; i < total; i++) Y[i] = (X[i] - sum[map[i]]) / sq[map[i]];
    qo_free(map);
    qo_free(sum);
    return QO_OK;
}

/* Fills the nn family's rows of the kernel table. */
void qo_ref_register_nn(qo_ref_kernel *table) {
    table[QO_OP_CONV] = k_conv;
    table[QO_OP_CONVTRANSPOSE] = k_convtranspose;
    table[QO_OP_GEMM] = k_gemm;
    table[QO_OP_MATMUL] = k_matmul;
    table[QO_OP_BATCHNORMALIZATION] = k_batchnorm;
    table[QO_OP_INSTANCENORMALIZATION] = k_instancenorm;
    table[QO_OP_LAYERNORMALIZATION] = k_layernorm;
    table[QO_OP_LRN] = k_lrn;
    table[QO_OP_MAXPOOL] = k_maxpool;
    table[QO_OP_AVERAGEPOOL] = k_avgpool;
    table[QO_OP_GLOBALAVERAGEPOOL] = k_globalavgpool;
    table[QO_OP_GLOBALMAXPOOL] = k_globalmaxpool;
    table[QO_OP_SOFTMAX] = k_softmax;
    table[QO_OP_LOGSOFTMAX] = k_logsoftmax;
    table[QO_OP_LPPOOL] = k_lppool;
    table[QO_OP_GLOBALLPPOOL] = k_globallppool;
    table[QO_OP_MAXUNPOOL] = k_maxunpool;
    table[QO_OP_LPNORMALIZATION] = k_lpnorm;
    table[QO_OP_MEANVARIANCENORMALIZATION] = k_mvn;
}
