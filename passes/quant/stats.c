/* passes/quant/stats.c — Brevitas statistics: k-th value percentiles, abs-max / min-max, the MSE
 * grid search, and the streaming per-batch accumulator used for activation calibration.
 * Semantics and sources: see the header comment of quantizer.h. */
#include "passes/quant/quantizer.h"
#include "runtime/ref/util.h"

#include <math.h>
#include <string.h>

/* ---- k-th value ------------------------------------------------------------------------------- */
int64_t qo_qstat_high_k(double q, int64_t n) {
    int64_t k = (int64_t)floor(0.01 * q * (double)n + 0.5);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return k;
}

int64_t qo_qstat_low_k(double q, int64_t n) {
    int64_t k = (int64_t)ceil(0.01 * q * (double)n);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return k;
}

/* a < b with NaN largest (torch.kthvalue orders NaN after every number). */
static inline bool lt(float a, float b) {
    if (b != b) return a == a;
    return a < b;
}

/* Quickselect (Hoare partition, median of three): afterwards v[k] holds the k-th smallest (0-based). */
static float select_k(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    while (hi > lo) {
        int64_t mid = lo + (hi - lo) / 2;
        float a = v[lo], b = v[mid], c = v[hi], p;
        if (lt(a, b)) p = lt(b, c) ? b : (lt(a, c) ? c : a);
        else p = lt(a, c) ? a : (lt(b, c) ? c : b);
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (lt(v[i], p)) i++;
            while (lt(p, v[j])) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return v[k];
}

/* Selection by a bounded heap when the wanted value is among the m largest (or smallest) of n
 * with m small, as Brevitas's 99.999th percentile is (m = 64 of 6.4 M): one streaming pass over x,
 * no copy. Blocks whose values cannot enter the heap are skipped by a vectorizable test. */
#define KTH_HEAP_MAX 65536
#define KTH_BLOCK 64
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define KTH_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KTH_SIMD
#endif

/* First block start at or after i holding a value v (|v| if absval) that is not <= t (greater, or
 * NaN); blocks end at n, a short last block always counts as a hit. */
KTH_SIMD static int64_t skip_le(const float *x, int64_t i, int64_t n, float t, bool absval) {
    for (; i + KTH_BLOCK <= n; i += KTH_BLOCK) {
        int hit = 0;
        if (absval)
            for (int j = 0; j < KTH_BLOCK; j++) hit |= !(fabsf(x[i + j]) <= t);
        else
            for (int j = 0; j < KTH_BLOCK; j++) hit |= !(x[i + j] <= t);
        if (hit) return i;
    }
    return i;
}

/* Same for values < t (t not NaN), the other end. */
KTH_SIMD static int64_t skip_ge(const float *x, int64_t i, int64_t n, float t, bool absval) {
    for (; i + KTH_BLOCK <= n; i += KTH_BLOCK) {
        int hit = 0;
        if (absval)
            for (int j = 0; j < KTH_BLOCK; j++) hit |= fabsf(x[i + j]) < t;
        else
            for (int j = 0; j < KTH_BLOCK; j++) hit |= x[i + j] < t;
        if (hit) return i;
    }
    return i;
}

/* Restores the heap property below slot i; top: a min-heap (root the smallest kept), else a
 * max-heap, both in the lt order. */
static void sift_down(float *h, int64_t m, int64_t i, bool top) {
    float v = h[i];
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && (top ? lt(h[c + 1], h[c]) : lt(h[c], h[c + 1]))) c++;
        if (!(top ? lt(h[c], v) : lt(v, h[c]))) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

/* The m-th largest (top) or m-th smallest value of x in the lt order, by a heap of m slots. */
static float select_heap(const float *x, int64_t n, int64_t m, bool absval, bool top) {
    float *h = qo_malloc((size_t)m * sizeof(float));
    for (int64_t i = 0; i < m; i++) h[i] = absval ? fabsf(x[i]) : x[i];
    for (int64_t i = m / 2; i-- > 0;) sift_down(h, m, i, top);
    int64_t i = m;
    while (i < n) {
        float t = h[0];
        if (top && t != t) break; /* the root is NaN: every kept value is NaN, nothing ranks higher */
        int64_t b;
        if (top) b = skip_le(x, i, n, t, absval);
        else if (t != t) b = i; /* a NaN root: any number replaces it, test element by element */
        else b = skip_ge(x, i, n, t, absval);
        int64_t e = b + KTH_BLOCK < n ? b + KTH_BLOCK : n;
        for (i = b; i < e; i++) {
            float v = absval ? fabsf(x[i]) : x[i];
            if (top ? lt(h[0], v) : lt(v, h[0])) {
                h[0] = v;
                sift_down(h, m, 0, top);
            }
        }
    }
    float r = h[0];
    qo_free(h);
    return r;
}

float qo_qstat_kth(const float *x, int64_t n, int64_t k, bool absval, float *scratch) {
    int64_t m_top = n - k + 1;
    if (m_top <= KTH_HEAP_MAX && m_top * 16 <= n) return select_heap(x, n, m_top, absval, true);
    if (k <= KTH_HEAP_MAX && k * 16 <= n) return select_heap(x, n, k, absval, false);
    float *v = scratch ? scratch : qo_malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = absval ? fabsf(x[i]) : x[i];
    float r = select_k(v, n, k - 1);
    if (!scratch) qo_free(v);
    return r;
}

/* ---- slice statistics ------------------------------------------------------------------------- */
static void minmax(const float *x, int64_t n, float *mn, float *mx) {
    float a = x[0], b = x[0];
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (v != v) { /* torch.min/max propagate NaN */
            a = b = v;
            break;
        }
        if (v < a) a = v;
        if (v > b) b = v;
    }
    *mn = a;
    *mx = b;
}

static float absmax(const float *x, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > m || a != a) m = a; /* torch.max propagates NaN */
        if (m != m) break;
    }
    return m;
}

/* Scale a candidate statistic gives during the MSE search (see qo_qstat_mse). */
static float mse_scale(const qo_qspec *s, float c) {
    if (s->role == QO_QROLE_ACT) return fmaxf(c, s->min_scale) / qo_qspec_threshold(s);
    return qo_qspec_scale_from_stat(s, c);
}

float qo_qstat_mse(const qo_qspec *s, const float *x, int64_t n) {
    float init = absmax(x, n);
    float base = init / (float)s->mse_iters;
    float best = base;
    double best_loss = INFINITY;
    int64_t lo, hi;
    qo_qspec_int_range(s, &lo, &hi);
    for (int i = 2; i <= s->mse_iters; i++) {
        float cand = base * (float)i;
        float sc = mse_scale(s, cand);
        double loss = 0.0;
        for (int64_t j = 0; j < n; j++) {
            float q = (float)qo_qspec_to_int(s, x[j], sc, 0) * sc;
            float d = x[j] - q;
            loss += (double)(d * d);
        }
        if (loss < best_loss) {
            best_loss = loss;
            best = cand;
        }
    }
    return best;
}

float qo_qstat_slice(const qo_qspec *s, const float *x, int64_t n, float *scratch, float *neg_min) {
    float r = 0.0f, mn = 0.0f, mx = 0.0f;
    bool have_mm = false;
    switch ((qo_qstat)s->stat) {
    case QO_QSTAT_ABSMAX: r = absmax(x, n); break;
    case QO_QSTAT_MINMAX:
        minmax(x, n, &mn, &mx);
        have_mm = true;
        r = fabsf(mx - fminf(mn, 0.0f)); /* AbsMinMax: |max - clamp(min, max=0)| */
        break;
    case QO_QSTAT_PERCENTILE: r = qo_qstat_kth(x, n, qo_qstat_high_k(s->high_q, n), true, scratch); break;
    case QO_QSTAT_PERCENTILE_INTERVAL: {
        float h = qo_qstat_kth(x, n, qo_qstat_high_k(s->high_q, n), false, scratch);
        float l = qo_qstat_kth(x, n, qo_qstat_low_k(s->low_q, n), false, scratch);
        r = fabsf(h - fminf(l, 0.0f));
        break;
    }
    case QO_QSTAT_MSE: r = qo_qstat_mse(s, x, n); break;
    default: r = 0.0f; break;
    }
    if (neg_min) {
        bool pct = s->role == QO_QROLE_ACT && s->stat != QO_QSTAT_ABSMAX && s->stat != QO_QSTAT_MINMAX;
        if (pct) {
            *neg_min = fminf(qo_qstat_kth(x, n, qo_qstat_low_k(s->low_q, n), false, scratch), 0.0f);
        } else {
            if (!have_mm) minmax(x, n, &mn, &mx);
            *neg_min = fminf(mn, 0.0f);
        }
    }
    return r;
}

/* ---- streaming accumulator -------------------------------------------------------------------- */
qo_status qo_qacc_init(qo_ctx *cx, qo_qacc *a, const qo_qspec *s) {
    QO_TRY(qo_qspec_check(cx, NULL, s));
    if (s->role == QO_QROLE_BIAS)
        return qo_error(cx, QO_ERR_USAGE, NULL, "quantizer %s: a bias quantizer collects no statistics", s->name);
    if (s->per_channel)
        return qo_error(cx, QO_ERR_USAGE, NULL,
                        "quantizer %s: per-channel activation statistics are not supported (per-tensor only)",
                        s->name);
    memset(a, 0, sizeof *a);
    a->spec = *s;
    a->gmin = INFINITY;
    a->gmax = -INFINITY;
    return QO_OK;
}

/* inplace_momentum_update (brevitas/core/utils.py) in float32, scalars cast to float as torch does. */
static float combine(const qo_qspec *s, float buf, float upd, uint64_t c) {
    if (s->calib == QO_QCALIB_EMA) {
        double m = (double)s->momentum;
        return buf * (float)(1.0 - m) + (float)m * upd;
    }
    uint64_t nc = c + 1;
    float keep = buf * (float)((double)c / (double)nc);
    return keep + upd / (float)nc;
}

qo_status qo_qacc_add(qo_ctx *cx, qo_qacc *a, const float *x, int64_t n) {
    if (n <= 0) return qo_error(cx, QO_ERR_USAGE, NULL, "quantizer %s: empty calibration batch", a->spec.name);
    float mn, mx;
    minmax(x, n, &mn, &mx);
    if (mn < a->gmin || mn != mn) a->gmin = mn;
    if (mx > a->gmax || mx != mx) a->gmax = mx;
    a->count += (uint64_t)n;
    if (a->spec.calib == QO_QCALIB_GLOBAL) {
        a->batches++;
        return QO_OK;
    }
    /* no scratch: qo_qstat_kth copies only when the rank is far from both ends */
    float zs = 0.0f;
    float st = qo_qstat_slice(&a->spec, x, n, NULL, a->spec.zp == QO_QZP_STATS ? &zs : NULL);
    st = fmaxf(st, a->spec.min_scale); /* clamp_scaling before the buffer update */
    if (a->batches == 0) {
        a->buf = st;          /* inplace_tensor_mul(buffer = 1.0, stats) */
        a->zbuf = 0.0f + zs;  /* inplace_tensor_add(buffer = 0.0, stats) */
    } else {
        a->buf = combine(&a->spec, a->buf, st, a->batches);
        a->zbuf = combine(&a->spec, a->zbuf, zs, a->batches);
    }
    a->batches++;
    return QO_OK;
}

qo_status qo_qacc_result(qo_ctx *cx, const qo_qacc *a, float *scale, int32_t *zp) {
    if (a->batches == 0)
        return qo_error(cx, QO_ERR_USAGE, NULL, "quantizer %s: no calibration data was seen", a->spec.name);
    float st = a->buf, zs = a->zbuf;
    if (a->spec.calib == QO_QCALIB_GLOBAL) {
        if (a->spec.stat == QO_QSTAT_ABSMAX) st = fmaxf(fabsf(a->gmin), fabsf(a->gmax));
        else st = fabsf(a->gmax - fminf(a->gmin, 0.0f));
        zs = fminf(a->gmin, 0.0f);
    }
    *scale = qo_qspec_scale_from_stat(&a->spec, st);
    *zp = qo_qspec_zp_from_min(&a->spec, *scale, zs);
    return QO_OK;
}
