/* runtime/kernels/train_kernels.c — optimized float32 QuantGrad, MaxPoolGrad and ReduceSum
 * (bit-identical to runtime/ref/train.c and reduce.c), and the node adapter of the training ops
 * (ConvGradWeight's kernel is in conv_grad.c). See train_kernels.h. */
#include "runtime/kernels/train_kernels.h"

#include "runtime/kernels/internal.h"
#include "runtime/ref/fsum.h"
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

/* The end of the run of elements sharing element i's value of b, capped at e. */
static inline int64_t brun_end(const bmap *b, int64_t i, int64_t e) {
    int64_t r = (i / b->inner + 1) * b->inner;
    return b->cnt > 1 && r < e ? r : e;
}

/* Runs shorter than this (a scale or zero point along an axis with few elements after it: a
 * MatMul's [in, out] weight per output channel has runs of one) take the per-element paths
 * (qg_rne_pe, qg_rne512 with sv / zv), not one call per run. */
enum { QG_SHORT_RUN = 64, QG_PE_BLOCK = 512 };

static inline bool bshort(const bmap *b) { return b->cnt > 1 && b->inner < QG_SHORT_RUN; }

/* b's values of elements [i, i + n) into out[0, n): the runs walked, no division per element. */
static void bfill(const bmap *b, int64_t i, int64_t n, float *out) {
    if (b->cnt == 1) {
        for (int64_t j = 0; j < n; j++) out[j] = b->p[0];
        return;
    }
    int64_t k = (i / b->inner) % b->cnt, r = i % b->inner;
    for (int64_t j = 0; j < n;) {
        if (b->inner == 1) { /* consecutive elements read consecutive values */
            int64_t take = qo_k_min64(b->cnt - k, n - j);
            memcpy(out + j, b->p + k, (size_t)take * sizeof(float));
            j += take, k = 0;
            continue;
        }
        int64_t take = qo_k_min64(b->inner - r, n - j);
        for (int64_t t = 0; t < take; t++) out[j + t] = b->p[k];
        j += take, r = 0;
        if (++k == b->cnt) k = 0;
    }
}

typedef struct qg_job {
    const float *dy, *x;
    bmap s, z;
    double lo, hi;
    float dlo, dhi;
    qo_round rm;
    bool fast; /* half-even rounding and bit width <= 24: qg_rne */
    bool relu;   /* dX also zero where x <= 0 */
    bool avx512; /* fast: qg_rne512 */
    float *dx, *ds, *db;
    /* reduce, fused (qg_fused_task): run k of the scale is x[k L, (k + 1) L), cut into nch chunks
       of QO_FSUM_CHUNK; part[k nch + c] is chunk c's partial of dScale (pb: of dBitwidth) */
    int64_t L, nch;
    float *part, *pb;
} qg_job;

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define QO_TK_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), optimize("O3", "no-trapping-math")))
#else
#define QO_TK_SIMD
#endif

/* Elements [0, n) with one scale s and zero point z, half-even rounding, bounds exact in float
 * (bit width <= 24, so float and double comparisons agree): the float32 formulas of the reference
 * kernel (runtime/ref/train.c k_quantgrad), every term computed and then selected (no branches, so
 * the loop vectorizes; the selected values are the reference's). The rounding is qo_rne
 * (runtime/ref/util.h) without branches: the same floor and exact midpoint test, ties to the even
 * neighbour (f/2 integral), |c| >= 2^23 (and NaN) passes through (a zero's sign does not matter:
 * q - z follows). ds / db may be NULL (the loop is unswitched on them); relu: dX also zero where
 * x <= 0. dx may be dy. */
/* One element of qg_rne / qg_rne_pe (inlined into their vectorized loops). */
static inline __attribute__((always_inline)) void qg_el(float xf, float gf, float s, float z, float lo, float hi,
                                                        float dlo, float dhi, bool relu, float *dx, float *ds,
                                                        float *db) {
    float xs = xf / s;
    float v = xs + z;
    int above = v > hi, below = v < lo, inside = (v >= lo) & (v <= hi);
    *dx = inside & (!relu | (xf > 0.0f)) ? gf : 0.0f;
    if (ds) {
        float c = above ? hi : below ? lo : v;
        float f = floorf(c), h = f + 0.5f, f1 = f + 1.0f;
        float even = floorf(f * 0.5f) * 2.0f == f ? f : f1;
        float r = c > h ? f1 : c < h ? f : even;
        float q = fabsf(c) < 0x1p23f ? r : c;
        *ds = gf * ((q - z) - (inside ? xs : 0.0f));
    }
    if (db) *db = (gf * s) * (above ? dhi : below ? dlo : 0.0f);
}

QO_TK_SIMD static void qg_rne(int64_t n, const float *dy, const float *restrict x, float s, float z, float lo,
                              float hi, float dlo, float dhi, bool relu, float *dx, float *restrict ds,
                              float *restrict db) {
    /* dx may be dy (written in place, see the JIT's plan_memory): element i is read before it is
       written and no other element is touched, so no dependence crosses iterations */
#pragma GCC ivdep
    for (int64_t i = 0; i < n; i++)
        qg_el(x[i], dy[i], s, z, lo, hi, dlo, dhi, relu, dx + i, ds ? ds + i : NULL, db ? db + i : NULL);
}

/* qg_rne with element i's scale and zero point sv[i] / zv[i]: the same formulas per element. */
QO_TK_SIMD static void qg_rne_pe(int64_t n, const float *dy, const float *restrict x, const float *restrict sv,
                                 const float *restrict zv, float lo, float hi, float dlo, float dhi, bool relu,
                                 float *dx, float *restrict ds, float *restrict db) {
#pragma GCC ivdep
    for (int64_t i = 0; i < n; i++)
        qg_el(x[i], dy[i], sv[i], zv[i], lo, hi, dlo, dhi, relu, dx + i, ds ? ds + i : NULL, db ? db + i : NULL);
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define QG_X86 1
#include <immintrin.h>
/* qg_rne with AVX-512 intrinsics (call when qo_k_sgemm_isa(-1) == 2): the same float32 operations
 * in the same order, the rounding one vrndscaleps in round-to-nearest-even mode (IEEE
 * roundToIntegralTiesToEven: qo_rne exactly, signed zeros and NaN included), where the vectorized C
 * loop spends a dozen instructions (ResNet-8's 1M-element QuantGrads in a training step: 0.77 ->
 * 0.50 ms at 2 threads). Comparisons are ordered (false for NaN), so the selects are the C
 * ternaries'.
 * ls / lb (NULL = not wanted; then ds / db are used as in qg_rne): instead of storing dScale /
 * dBitwidth, sum them as they come, for one fsum chunk (n <= QO_FSUM_CHUNK): element t is added to
 * lane t % QO_FSUM_LANES of ls / lb (QO_FSUM_LANES floats, written at the end) in order, from +0.0f,
 * which is qo_fsum_chunk's step 2 on the values that would be stored (lanes past the tail are left
 * alone), so qo_fsum_fold(ls) is the chunk's partial bit for bit. The two 16-lane halves of the 32
 * lanes take the even and the odd vectors. lanes_in: the lanes start from ls / lb's values instead
 * (a chunk continued by a call whose first element goes to lane 0). */
_Static_assert(QO_FSUM_LANES == 32 && QO_FSUM_CHUNK % 32 == 0, "qg_rne512: two vectors of lanes");
__attribute__((target("avx512f,avx512dq,avx512vl"))) static void
qg_rne512(int64_t n, const float *dy, const float *restrict x, float s, float z, const float *restrict sv,
          const float *restrict zv, float lo, float hi, float dlo, float dhi, bool relu, float *dx,
          float *restrict ds, float *restrict db, float *restrict ls, float *restrict lb, bool lanes_in) {
    const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(z), vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi),
                 vdlo = _mm512_set1_ps(dlo), vdhi = _mm512_set1_ps(dhi), zero = _mm512_setzero_ps();
    __m512 as[2] = {zero, zero}, ab[2] = {zero, zero};
    if (lanes_in && ls) as[0] = _mm512_loadu_ps(ls), as[1] = _mm512_loadu_ps(ls + 16);
    if (lanes_in && lb) ab[0] = _mm512_loadu_ps(lb), ab[1] = _mm512_loadu_ps(lb + 16);
    for (int64_t i = 0; i < n; i += 16) {
        const int h = (int)((i >> 4) & 1);
        __mmask16 k = qo_k_bits16(0, n - i);
        __m512 xf = _mm512_maskz_loadu_ps(k, x + i), gf = _mm512_maskz_loadu_ps(k, dy + i);
        const __m512 es = sv ? _mm512_mask_loadu_ps(vs, k, sv + i) : vs;
        const __m512 ez = zv ? _mm512_mask_loadu_ps(vz, k, zv + i) : vz;
        __m512 xs = _mm512_div_ps(xf, es);
        __m512 v = _mm512_add_ps(xs, ez);
        __mmask16 above = _mm512_cmp_ps_mask(v, vhi, _CMP_GT_OQ), below = _mm512_cmp_ps_mask(v, vlo, _CMP_LT_OQ);
        __mmask16 inside = _mm512_cmp_ps_mask(v, vlo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, vhi, _CMP_LE_OQ);
        __mmask16 pass = relu ? inside & _mm512_cmp_ps_mask(xf, zero, _CMP_GT_OQ) : inside;
        _mm512_mask_storeu_ps(dx + i, k, _mm512_maskz_mov_ps(pass, gf));
        if (ds || ls) {
            __m512 c = _mm512_mask_blend_ps(below, _mm512_mask_blend_ps(above, v, vhi), vlo);
            __m512 q = _mm512_roundscale_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m512 t = _mm512_mul_ps(gf, _mm512_sub_ps(_mm512_sub_ps(q, ez), _mm512_maskz_mov_ps(inside, xs)));
            if (ls) as[h] = _mm512_mask_add_ps(as[h], k, as[h], t);
            else _mm512_mask_storeu_ps(ds + i, k, t);
        }
        if (db || lb) {
            __m512 d = _mm512_mask_blend_ps(below, _mm512_maskz_mov_ps(above, vdhi), vdlo);
            __m512 t = _mm512_mul_ps(_mm512_mul_ps(gf, es), d);
            if (lb) ab[h] = _mm512_mask_add_ps(ab[h], k, ab[h], t);
            else _mm512_mask_storeu_ps(db + i, k, t);
        }
    }
    if (ls) _mm512_storeu_ps(ls, as[0]), _mm512_storeu_ps(ls + 16, as[1]);
    if (lb) _mm512_storeu_ps(lb, ab[0]), _mm512_storeu_ps(lb + 16, ab[1]);
}
#endif

/* Elements [begin, end) of x into q->dx and (when not NULL) ds / db, which are indexed from `begin`
 * (ds[i - begin]): the reference's float32 formulas. */
static void qg_range(const qg_job *q, int64_t begin, int64_t end, float *ds, float *db) {
    const double lo = q->lo, hi = q->hi;
    if (q->fast && (bshort(&q->s) || bshort(&q->z))) { /* short runs: per-element scales, in blocks */
        float sv[QG_PE_BLOCK], zv[QG_PE_BLOCK];
        for (int64_t i = begin; i < end; i += QG_PE_BLOCK) {
            int64_t m = qo_k_min64(end - i, QG_PE_BLOCK);
            bfill(&q->s, i, m, sv);
            bfill(&q->z, i, m, zv);
            float *dsi = ds ? ds + (i - begin) : NULL, *dbi = db ? db + (i - begin) : NULL;
#ifdef QG_X86
            if (q->avx512)
                qg_rne512(m, q->dy + i, q->x + i, 0.0f, 0.0f, sv, zv, (float)lo, (float)hi, q->dlo, q->dhi, q->relu,
                          q->dx + i, dsi, dbi, NULL, NULL, false);
            else
#endif
                qg_rne_pe(m, q->dy + i, q->x + i, sv, zv, (float)lo, (float)hi, q->dlo, q->dhi, q->relu, q->dx + i,
                          dsi, dbi);
        }
        return;
    }
    if (q->fast) { /* runs of elements sharing one scale and zero point */
        for (int64_t i = begin; i < end;) {
            int64_t e = brun_end(&q->z, i, brun_end(&q->s, i, end));
#ifdef QG_X86
            if (q->avx512)
                qg_rne512(e - i, q->dy + i, q->x + i, q->s.p[bidx(&q->s, i)], q->z.p[bidx(&q->z, i)], NULL, NULL,
                          (float)lo,
                          (float)hi, q->dlo, q->dhi, q->relu, q->dx + i, ds ? ds + (i - begin) : NULL,
                          db ? db + (i - begin) : NULL, NULL, NULL, false);
            else
#endif
                qg_rne(e - i, q->dy + i, q->x + i, q->s.p[bidx(&q->s, i)], q->z.p[bidx(&q->z, i)], (float)lo,
                       (float)hi, q->dlo, q->dhi, q->relu, q->dx + i, ds ? ds + (i - begin) : NULL,
                       db ? db + (i - begin) : NULL);
            i = e;
        }
        return;
    }
    for (int64_t i = begin; i < end; i++) {
        float xf = q->x[i];
        float s = q->s.p[bidx(&q->s, i)];
        float z = q->z.p[bidx(&q->z, i)];
        float xs = xf / s;
        float v = xs + z;
        bool inside = v >= lo && v <= hi;
        float gf = q->dy[i];
        q->dx[i] = inside && (!q->relu || xf > 0.0f) ? gf : 0.0f;
        if (ds) {
            float c = v > hi ? (float)hi : v < lo ? (float)lo : v;
            float qv = (float)qo_round_apply(c, q->rm);
            ds[i - begin] = gf * ((qv - z) - (inside ? xs : 0.0f));
        }
        if (db) db[i - begin] = (gf * s) * (v > hi ? q->dhi : v < lo ? q->dlo : 0.0f);
    }
}

static void qg_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const qg_job *q = ctx;
    qg_range(q, begin, end, q->ds ? q->ds + begin : NULL, q->db ? q->db + begin : NULL);
}

/* reduce, fused: items are (run k, chunk c) pairs; each chunk's per-element dScale / dBitwidth are
 * summed in registers (qg_rne512's lanes) when the chunk has one scale and zero point on AVX-512,
 * else go through a buffer in L1 into qo_fsum_chunk; the full-size tensors are never written. */
QO_TK_SIMD static void qg_fused_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const qg_job *q = ctx;
    float bs[QO_FSUM_CHUNK], bb[QO_FSUM_CHUNK];
    for (int64_t it = begin; it < end; it++) {
        int64_t k = it / q->nch, c = it % q->nch, i0 = k * q->L + c * QO_FSUM_CHUNK;
        int64_t len = q->L - c * QO_FSUM_CHUNK < QO_FSUM_CHUNK ? q->L - c * QO_FSUM_CHUNK : QO_FSUM_CHUNK;
#ifdef QG_X86
        /* one scale and zero point over the chunk: summed in registers (qg_rne512's ls / lb) */
        if (q->fast && q->avx512 && brun_end(&q->z, i0, brun_end(&q->s, i0, i0 + len)) == i0 + len) {
            float ls[QO_FSUM_LANES], lb[QO_FSUM_LANES];
            qg_rne512(len, q->dy + i0, q->x + i0, q->s.p[bidx(&q->s, i0)], q->z.p[bidx(&q->z, i0)], NULL, NULL,
                      (float)q->lo,
                      (float)q->hi, q->dlo, q->dhi, q->relu, q->dx + i0, NULL, NULL, q->part ? ls : NULL,
                      q->pb ? lb : NULL, false);
            if (q->part) q->part[it] = qo_fsum_fold(ls);
            if (q->pb) q->pb[it] = qo_fsum_fold(lb);
            continue;
        }
#endif
        qg_range(q, i0, i0 + len, q->part ? bs : NULL, q->pb ? bb : NULL);
        if (q->part) q->part[it] = qo_fsum_chunk(bs, len);
        if (q->pb) q->pb[it] = qo_fsum_chunk(bb, len);
    }
}

/* The integer range [lo, hi] of bit width b and the dBitwidth factors at its ends. */
static void qg_bounds(qg_job *q, double b, int is_signed, int narrow) {
    double dlo, dhi;
    if (is_signed) {
        q->lo = -ldexp(1.0, (int)b - 1) + narrow, q->hi = ldexp(1.0, (int)b - 1) - 1;
        dlo = -QO_LN2 * ldexp(1.0, (int)b - 1), dhi = QO_LN2 * ldexp(1.0, (int)b - 1);
    } else {
        q->lo = 0, q->hi = ldexp(1.0, (int)b) - 1 - narrow;
        dlo = 0, dhi = QO_LN2 * ldexp(1.0, (int)b);
    }
    q->dlo = (float)dlo, q->dhi = (float)dhi;
}

/* The element paths q takes: qg_rne (and qg_rne512) for half-even rounding with bounds exact in float. */
static void qg_modes(qg_job *q, double b) {
    q->fast = q->rm == QO_ROUND_HALF_EVEN && b <= 24;
#ifdef QG_X86
    q->avx512 = qo_k_sgemm_isa(-1) == 2;
#endif
}

void qo_k_qgrad_prepare(qo_k_qgrad *g) {
    qg_job q = {.rm = (qo_round)g->rm};
    qg_bounds(&q, g->bits, g->is_signed, g->narrow);
    qg_modes(&q, g->bits);
    g->lo = q.lo, g->hi = q.hi, g->fast = q.fast, g->avx512 = q.avx512;
}

/* The qg_job of a prepared qo_k_qgrad on y (dY and dX both y; no dBitwidth). */
static void qg_job_of(const qo_k_qgrad *g, float *y, qg_job *q) {
    *q = (qg_job){.dy = y, .x = g->x, .dx = y, .s = {&g->s, 1, 1}, .z = {&g->z, 1, 1}, .lo = g->lo, .hi = g->hi,
                  .rm = (qo_round)g->rm, .fast = g->fast != 0, .relu = g->relu != 0, .avx512 = g->avx512 != 0};
}

void qo_k_qgrad_span(const qo_k_qgrad *g, float *y, int64_t e0, int64_t e1, qo_fsum *acc) {
#ifdef QG_X86
    /* the AVX-512 path summing into acc's lanes in registers, while the chunk's next element goes
       to lane 0 (spans of whole vector pairs keep it so): fsum.h's order without a buffer */
    if (g->fast && g->avx512 && (!g->ds || acc->pos % QO_FSUM_LANES == 0)) {
        for (int64_t e = e0; e < e1;) {
            int64_t take = g->ds ? qo_k_min64(e1 - e, QO_FSUM_CHUNK - acc->pos) : e1 - e;
            qg_rne512(take, y + e, g->x + e, g->s, g->z, NULL, NULL, (float)g->lo, (float)g->hi, 0.0f, 0.0f, g->relu != 0, y + e,
                      NULL, NULL, g->ds ? acc->lane : NULL, NULL, true);
            e += take;
            if (!g->ds) continue;
            acc->pos += take;
            qo_fsum_close_full(acc);
            if (acc->pos % QO_FSUM_LANES && e < e1) { /* off the lanes: the rest buffered */
                qo_k_qgrad_span(g, y, e, e1, acc);
                return;
            }
        }
        return;
    }
#endif
    qg_job q;
    qg_job_of(g, y, &q);
    float buf[QO_FSUM_CHUNK];
    for (int64_t e = e0; e < e1; e += QO_FSUM_CHUNK) {
        int64_t ce = qo_k_min64(e1, e + QO_FSUM_CHUNK);
        qg_range(&q, e, ce, g->ds ? buf : NULL, NULL);
        if (g->ds) qo_fsum_feed(acc, buf, ce - e);
    }
}

void qo_k_qgrad_apply(const qo_k_qgrad *g, float *y, int64_t n, qo_pool *pool) {
    if (n <= 0) {
        if (g->ds) *g->ds = 0.0f;
        return;
    }
    qg_job q;
    qg_job_of(g, y, &q);
    q.L = n, q.nch = (n + QO_FSUM_CHUNK - 1) / QO_FSUM_CHUNK;
    float *part = g->ds ? qo_malloc((size_t)q.nch * sizeof(float)) : NULL;
    q.part = part;
    qo_pool_for(pool, q.nch, 1, qg_fused_task, &q);
    if (g->ds) *g->ds = qo_fsum_tree(part, q.nch);
    qo_free(part);
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
    bool reduce = qo_kattr_int(k, "reduce", 0) != 0;
    q.relu = qo_kattr_int(k, "relu", 0) != 0;
    char buf[32];
    int rm = qo_round_from_name(qo_kattr_str(k, "rounding_mode", buf, sizeof buf, "ROUND"));
    if (rm < 0) return DECLINE;
    q.rm = (qo_round)rm;
    qg_bounds(&q, b, is_signed, narrow);
    bool want_s = nout > 1 && qo_node_output(k->g, k->n, 1), want_b = nout > 2 && qo_node_output(k->g, k->n, 2);
    QO_TRY(out_make(k, &out[0], x->rank, x->dims));
    if (want_s) QO_TRY(out_make(k, &out[1], reduce ? in[2]->rank : x->rank, reduce ? in[2]->dims : x->dims));
    if (want_b) QO_TRY(out_make(k, &out[2], reduce ? in[4]->rank : x->rank, reduce ? in[4]->dims : x->dims));
    q.dx = out[0].data;
    qg_modes(&q, b);
    int64_t n = qo_tensor_numel(x);
    if (!reduce) {
        q.ds = want_s ? out[1].data : NULL;
        q.db = want_b ? out[2].data : NULL;
        if (n) qo_pool_for(pool, n, 8192, qg_task, &q);
        return QO_OK;
    }
    /* reduce: fused when every scale element's elements are one contiguous run (per tensor, or one
       axis with nothing but size-1 dims before it) and the bit width's single run is cut the same
       way (only one run); else the per-element values go through full-size scratch */
    int64_t nruns = q.s.cnt;
    bool fused = n > 0 && (nruns == 1 || n == q.s.cnt * q.s.inner) && (!want_b || nruns == 1);
    if (fused) {
        q.L = n / nruns, q.nch = (q.L + QO_FSUM_CHUNK - 1) / QO_FSUM_CHUNK;
        int64_t items = nruns * q.nch;
        float *part = qo_malloc((size_t)(2 * items) * sizeof(float));
        q.part = want_s ? part : NULL;
        q.pb = want_b ? part + items : NULL;
        qo_pool_for(pool, items, 1, qg_fused_task, &q);
        for (int64_t r = 0; r < nruns; r++) {
            if (want_s) ((float *)out[1].data)[r] = qo_fsum_tree(part + r * q.nch, q.nch);
            if (want_b) ((float *)out[2].data)[r] = qo_fsum_tree(part + items + r * q.nch, q.nch);
        }
        qo_free(part);
        return QO_OK;
    }
    float *el = qo_malloc((size_t)((want_s + want_b) * (n ? n : 1)) * sizeof(float));
    q.ds = want_s ? el : NULL;
    q.db = want_b ? el + (want_s ? n : 0) : NULL;
    if (n) qo_pool_for(pool, n, 8192, qg_task, &q);
    if (want_s) qo_fsum_to_shape(q.ds, x->rank, x->dims, in[2]->rank, in[2]->dims, out[1].data);
    if (want_b) qo_fsum_to_shape(q.db, x->rank, x->dims, in[4]->rank, in[4]->dims, out[2].data);
    qo_free(el);
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

/* ---- AveragePoolGrad ---------------------------------------------------------------------------- */
/* 2-D, no padding, windows that cannot overlap (stride >= kernel extent) and lie inside X: every
 * input element gets at most one term, dY / count with count the window's elements, computed as
 * the reference does, (float)(0.0 + (double)dY / count); elements no window covers get 0. Other
 * geometries decline to the reference. */
static void apg_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const mpg_job *J = ctx;
    const qo_geom *g = J->g;
    int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1], isz = H * W, osz = OH * OW;
    int64_t KH = g->ker[0], KW = g->ker[1], SH = g->str[0], SW = g->str[1];
    double cnt = (double)(KH * KW);
    for (int64_t nc = begin; nc < end; nc++) {
        const float *dy = J->dy + nc * osz;
        float *dx = J->dx + nc * isz;
        memset(dx, 0, (size_t)isz * sizeof(float));
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                float v = (float)(0.0 + (double)dy[oh * OW + ow] / cnt);
                for (int64_t kh = 0; kh < KH; kh++) {
                    float *r = dx + (oh * SH + kh) * W + ow * SW;
                    for (int64_t kw = 0; kw < KW; kw++) r[kw] = v;
                }
            }
    }
}

/* MaxPoolGrad (mpg_task) or AveragePoolGrad (apg_task, its geometry only) on 2-D f32 planes. */
static qo_status poolgrad(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                          uint32_t nout, bool is_max) {
    if (nin < 2 || nout < 1 || !is_f32(in[0]) || !is_f32(in[1]) || in[1]->rank != 4) return DECLINE;
    const qo_tensor *dy = in[0], *x = in[1];
    qo_geom g;
    if (qo_geom_pool(k, x, 0, &g) != QO_OK || g.nsp != 2) return DECLINE;
    for (int i = 0; !is_max && i < 2; i++)
        if (g.pb[i] || g.pe[i] || g.dil[i] != 1 || g.str[i] < g.ker[i] || g.ker[i] < 1 ||
            (g.out[i] - 1) * g.str[i] + g.ker[i] > g.in[i])
            return DECLINE;
    int64_t od[QO_MAX_RANK];
    int r = qo_geom_out_dims(&g, x->dims[0], x->dims[1], od);
    if (!same_dims(dy, r, od)) return DECLINE;
    QO_TRY(out_make(k, &out[0], x->rank, x->dims));
    mpg_job J = {.g = &g, .dy = dy->data, .x = x->data, .dx = out[0].data, .pool = pool};
    int64_t NC = x->dims[0] * x->dims[1];
    if (NC && qo_tensor_numel(x)) qo_pool_for(pool, NC, 1, is_max ? mpg_task : apg_task, &J);
    return QO_OK;
}

/* ---- ConvGradWeight ----------------------------------------------------------------------------- */
qo_status qo_k_cgw_params(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_k_conv_params *p) {
    if (nin < 3 || !is_f32(in[0]) || !is_f32(in[1]) || !in[2]) return DECLINE;
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
    *p = (qo_k_conv_params){.nsp = g.nsp, .N = ch.N, .C = ch.C, .M = ch.M, .group = ch.group, .fast = k->fast_conv};
    for (int i = 0; i < g.nsp; i++) {
        p->in[i] = g.in[i], p->out[i] = g.out[i], p->ker[i] = g.ker[i];
        p->str[i] = g.str[i], p->dil[i] = g.dil[i], p->pad[i] = g.pb[i];
    }
    return QO_OK;
}

static qo_status convgradweight(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                uint32_t nout) {
    qo_k_conv_params p;
    if (nout < 1 || qo_k_cgw_params(k, in, nin, &p) != QO_OK) return DECLINE;
    QO_TRY(out_make(k, &out[0], in[2]->rank, in[2]->dims));
    qo_k_convgradweight_f32(&p, in[0]->data, in[1]->data, out[0].data, pool);
    return QO_OK;
}

/* ---- ReduceSum ---------------------------------------------------------------------------------- */
/* float32 ReduceSum with the axes input (opset 13) in the summation order of runtime/ref/fsum.h
 * (chunks of 4096 elements, 32 lanes, pairwise folds), which the reference kernel uses too: the
 * result is bit-identical to it and independent of the thread count. The dims are coalesced into
 * runs of reduced (R) and kept (K) axes, then:
 *   [K,] R      each output sums a contiguous run: its chunks are summed in parallel (32
 *               independent lanes vectorize), then combined per output (qo_fsum_tree);
 *   [K0,] R, K  the outputs are contiguous: strips of RS_W outputs keep their 32 lanes side by side
 *               (rows added element-wise into lane r % 32), in parallel over strips;
 *   R, K, R     (a bias gradient over N, H, W): in parallel over blocks of RS_B outputs, each block
 *               read in memory order, its runs fed to one qo_fsum state per output;
 *   otherwise   in parallel over outputs, each streamed through qo_fsum_strided. */
#define RS_W 16
#define RS_B 32

typedef struct rs_job {
    const float *x;
    float *y, *part;                 /* outputs; chunk partials of the [K,] R path (NULL: one chunk) */
    int64_t L, nch;                  /* [K,] R: run length, chunks per output */
    int64_t R, K, nstrip;            /* [K0,] R, K: rows, columns, strips per K0 slab */
    int64_t r0, r1;                  /* R, K, R: the reduced extents (K is the kept one) */
    int nk, nr;                      /* generic: kept and reduced runs */
    int64_t kext[QO_MAX_RANK], kstr[QO_MAX_RANK], rext[QO_MAX_RANK], rstr[QO_MAX_RANK];
} rs_job;

/* [K,] R: items [begin, end) are (output, chunk) pairs. */
QO_TK_SIMD static void rs_chunks(const rs_job *J, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
        int64_t o = i / J->nch, c = i % J->nch, n = J->L - c * QO_FSUM_CHUNK;
        float v = qo_fsum_chunk(J->x + o * J->L + c * QO_FSUM_CHUNK, n < QO_FSUM_CHUNK ? n : QO_FSUM_CHUNK);
        if (J->part) J->part[i] = v;
        else J->y[i] = v;
    }
}

static void rs_chunks_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    rs_chunks(ctx, begin, end);
}

/* [K0,] R, K: items [begin, end) are (K0 index, strip of RS_W columns) pairs; lane[j][c] is lane j of
 * column c, so every column follows qo_fsum's steps exactly. */
QO_TK_SIMD static void rs_strips(const rs_job *J, int64_t begin, int64_t end) {
    float lane[QO_FSUM_LANES][RS_W];
    qo_fsum_stk stk[RS_W];
    const int64_t R = J->R, K = J->K;
    for (int64_t it = begin; it < end; it++) {
        int64_t k0 = it / J->nstrip, c0 = it % J->nstrip * RS_W, w = K - c0 < RS_W ? K - c0 : RS_W;
        const float *x = J->x + k0 * R * K + c0;
        for (int64_t c = 0; c < w; c++) qo_fsum_stk_init(&stk[c]);
        for (int64_t r0 = 0; r0 < R; r0 += QO_FSUM_CHUNK) {
            int64_t nr = R - r0 < QO_FSUM_CHUNK ? R - r0 : QO_FSUM_CHUNK;
            memset(lane, 0, sizeof lane);
            if (w == RS_W) {
                for (int64_t r = 0; r < nr; r++) {
                    float *l = lane[r % QO_FSUM_LANES];
                    const float *xr = x + (r0 + r) * K;
                    for (int c = 0; c < RS_W; c++) l[c] += xr[c];
                }
            } else {
                for (int64_t r = 0; r < nr; r++)
                    for (int64_t c = 0; c < w; c++) lane[r % QO_FSUM_LANES][c] += x[(r0 + r) * K + c];
            }
            for (int h = QO_FSUM_LANES / 2; h >= 1; h /= 2) /* qo_fsum_fold, column by column */
                for (int j = 0; j < h; j++)
                    for (int c = 0; c < RS_W; c++) lane[j][c] += lane[j + h][c];
            for (int64_t c = 0; c < w; c++) qo_fsum_stk_push(&stk[c], lane[0][c]);
        }
        for (int64_t c = 0; c < w; c++) J->y[k0 * K + c0 + c] = qo_fsum_stk_total(&stk[c]);
    }
}

static void rs_strips_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    rs_strips(ctx, begin, end);
}

/* R, K, R: outputs [begin, end), RS_B at a time, each block's runs read in memory order. */
QO_TK_SIMD static void rs_bias(const rs_job *J, int64_t begin, int64_t end) {
    qo_fsum st[RS_B];
    for (int64_t b = begin; b < end; b += RS_B) {
        int64_t nb = end - b < RS_B ? end - b : RS_B;
        for (int64_t c = 0; c < nb; c++) qo_fsum_init(&st[c]);
        for (int64_t n = 0; n < J->r0; n++) {
            const float *xp = J->x + (n * J->K + b) * J->r1;
            for (int64_t c = 0; c < nb; c++) qo_fsum_feed(&st[c], xp + c * J->r1, J->r1);
        }
        for (int64_t c = 0; c < nb; c++) J->y[b + c] = qo_fsum_end(&st[c]);
    }
}

static void rs_bias_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    rs_bias(ctx, begin, end);
}

/* Generic: outputs [begin, end), each qo_fsum_strided over the reduced runs. */
QO_TK_SIMD static void rs_outputs(const rs_job *J, int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; o++) {
        int64_t off = 0, q = o;
        for (int i = J->nk - 1; i >= 0; i--) off += q % J->kext[i] * J->kstr[i], q /= J->kext[i];
        J->y[o] = qo_fsum_strided(J->x + off, J->nr, J->rext, J->rstr);
    }
}

static void rs_outputs_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    rs_outputs(ctx, begin, end);
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
    /* runs of equal mask (dims of extent 1 join any run; they do not change the row-major order of
       an output's elements) */
    int64_t ext[QO_MAX_RANK], str[QO_MAX_RANK];
    bool red[QO_MAX_RANK];
    int ns = 0;
    for (int i = 0; i < r; i++) {
        if (x->dims[i] == 1) continue;
        if (ns && red[ns - 1] == mask[i]) ext[ns - 1] *= x->dims[i];
        else ext[ns] = x->dims[i], red[ns] = mask[i], ns++;
    }
    if (ns == 0) ext[0] = 1, red[0] = true, ns = 1;
    for (int64_t i = ns - 1, s = 1; i >= 0; i--) str[i] = s, s *= ext[i];
    QO_TRY(out_make(k, &out[0], orank, odims));
    rs_job J = {.x = x->data, .y = out[0].data};
    int64_t ny = qo_tensor_numel(&out[0]), cnt = qo_tensor_numel(x) / ny;
    if (red[ns - 1] && (ns == 1 || (ns == 2 && !red[0]))) { /* [K,] R */
        J.L = ext[ns - 1], J.nch = (J.L + QO_FSUM_CHUNK - 1) / QO_FSUM_CHUNK;
        int64_t items = ny * J.nch, per = J.L < QO_FSUM_CHUNK ? J.L : QO_FSUM_CHUNK;
        if (J.nch > 1) J.part = qo_malloc((size_t)items * sizeof(float));
        qo_pool_for(pool, items, 1 + (1 << 14) / per, rs_chunks_task, &J);
        if (J.part)
            for (int64_t o = 0; o < ny; o++) J.y[o] = qo_fsum_tree(J.part + o * J.nch, J.nch);
        qo_free(J.part);
        return QO_OK;
    }
    if (ns >= 2 && !red[ns - 1] && red[ns - 2] && (ns == 2 || (ns == 3 && !red[0]))) { /* [K0,] R, K */
        J.R = ext[ns - 2], J.K = ext[ns - 1], J.nstrip = (J.K + RS_W - 1) / RS_W;
        int64_t items = (ns == 3 ? ext[0] : 1) * J.nstrip;
        qo_pool_for(pool, items, 1 + (1 << 14) / (J.R * RS_W), rs_strips_task, &J);
        return QO_OK;
    }
    if (ns == 3 && red[0] && !red[1] && red[2]) { /* R, K, R */
        J.r0 = ext[0], J.K = ext[1], J.r1 = ext[2];
        qo_pool_for(pool, J.K, 1 + (1 << 14) / cnt, rs_bias_task, &J);
        return QO_OK;
    }
    for (int i = 0; i < ns; i++) {
        if (red[i]) J.rext[J.nr] = ext[i], J.rstr[J.nr++] = str[i];
        else J.kext[J.nk] = ext[i], J.kstr[J.nk++] = str[i];
    }
    qo_pool_for(pool, ny, 1 + (1 << 14) / cnt, rs_outputs_task, &J);
    return QO_OK;
}

/* ---- node adapter ------------------------------------------------------------------------------- */
bool qo_k_train_supported(qo_op op) {
    return op == QO_OP_TRAIN_QUANTGRAD || op == QO_OP_TRAIN_MAXPOOLGRAD || op == QO_OP_TRAIN_AVERAGEPOOLGRAD ||
           op == QO_OP_TRAIN_CONVGRADWEIGHT ||
           op == QO_OP_REDUCESUM;
}

qo_status qo_k_train_node_run(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                              uint32_t nout) {
    switch ((qo_op)qo_node_get(k->g, k->n)->op) {
    case QO_OP_TRAIN_QUANTGRAD: return quantgrad(k, pool, in, nin, out, nout);
    case QO_OP_TRAIN_MAXPOOLGRAD: return poolgrad(k, pool, in, nin, out, nout, true);
    case QO_OP_TRAIN_AVERAGEPOOLGRAD: return poolgrad(k, pool, in, nin, out, nout, false);
    case QO_OP_TRAIN_CONVGRADWEIGHT: return convgradweight(k, pool, in, nin, out, nout);
    case QO_OP_REDUCESUM: return k->opset >= 13 ? reducesum(k, pool, in, nin, out, nout) : DECLINE;
    default: return DECLINE;
    }
}
