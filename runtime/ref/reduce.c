/* runtime/ref/reduce.c — reference kernels: ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd
 * ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare, ArgMax/ArgMin, TopK.
 *
 * Reductions accumulate each output in input (row-major) order, in float32 for float32 data, double
 * for float64, int64 for integer types; float32 ReduceSum instead sums in the blocked order of
 * runtime/ref/fsum.h (shared with the optimized kernel, so the two agree bit for bit).
 * ReduceLogSumExp subtracts the maximum first, as onnxruntime does. Axes come from the `axes` input
 * when it is given (ReduceSum opset >= 13, the others opset >= 18) and from the `axes` attribute
 * otherwise. */
#include "runtime/ref/fsum.h"
#include "runtime/ref/ref.h"
#include "runtime/ref/util.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static const char *op_name(qo_kctx *k) { return qo_node_op_type(k->g, k->n); }
static const char *ename(int e) { return qo_elem_name(e) ? qo_elem_name(e) : "?"; }

enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ };

/* Reads the reduction axes into mask[0..r). *noop is set when axes are empty and
 * noop_with_empty_axes asks for the identity. */
static qo_status reduce_axes(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, int r, bool *mask,
                             bool *noop) {
    int64_t ax[QO_MAX_RANK * 2];
    int64_t nax = 0;
    *noop = false;
    memset(mask, 0, sizeof(bool) * QO_MAX_RANK);
    if (nin > 1 && in[1]) {
        const qo_tensor *a = in[1];
        if (a->elem != QO_I64 && a->elem != QO_I32)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: axes input must be int64", op_name(k));
        if (a->rank > 1) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: axes input must be 1-D", op_name(k));
        nax = qo_tensor_numel(a);
        if (nax > 2 * QO_MAX_RANK) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: too many axes", op_name(k));
        for (int64_t i = 0; i < nax; i++) ax[i] = qo_load_i64(a->data, a->elem, i);
    } else {
        uint32_t n;
        const int64_t *v = qo_kattr_ints(k, "axes", &n);
        if (n > 2 * QO_MAX_RANK) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: too many axes", op_name(k));
        for (uint32_t i = 0; i < n; i++) ax[i] = v[i];
        nax = n;
    }
    if (nax == 0) {
        if (qo_kattr_int(k, "noop_with_empty_axes", 0)) *noop = true;
        else for (int i = 0; i < r; i++) mask[i] = true;
        return QO_OK;
    }
    for (int64_t i = 0; i < nax; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
        if (a < 0 || a >= r)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: axis %lld out of range for rank %d", op_name(k),
                           (long long)ax[i], r);
        mask[a] = true;
    }
    return QO_OK;
}

/* Advances idx over ext[0..n) in row-major order, keeping *off = sum idx[i]*str[i]. */
static void step(int64_t *idx, const int64_t *ext, const int64_t *str, int n, int64_t *off) {
    for (int i = n - 1; i >= 0; i--) {
        if (++idx[i] < ext[i]) {
            *off += str[i];
            return;
        }
        *off -= (ext[i] - 1) * str[i];
        idx[i] = 0;
    }
}

/* One accumulation loop per accumulator type. ACC acc[o] accumulates; MX holds maxima for
 * LogSumExp. SQRT/LOG/EXP are the accumulator type's libm functions. */
#define REDUCE_LOOP(ACC, LOAD, LOWEST, HIGHEST, SQRT, LOG, EXP, STORE)                             \
    do {                                                                                           \
        ACC *acc = qo_malloc((size_t)(nout ? nout : 1) * sizeof(ACC));                             \
        ACC *mx = NULL;                                                                            \
        for (int64_t o = 0; o < nout; o++)                                                         \
            acc[o] = op == R_PROD ? (ACC)1 : op == R_MAX ? LOWEST : op == R_MIN ? HIGHEST : (ACC)0; \
        int64_t idx[QO_MAX_RANK] = {0}, off = 0;                                                   \
        if (op == R_LOGSUMEXP) {                                                                   \
            mx = qo_malloc((size_t)(nout ? nout : 1) * sizeof(ACC));                               \
            for (int64_t o = 0; o < nout; o++) mx[o] = LOWEST;                                     \
            for (int64_t i = 0; i < nin_; i++) {                                                   \
                ACC v = LOAD(i);                                                                   \
                if (v > mx[off]) mx[off] = v;                                                      \
                step(idx, x->dims, ostr, r, &off);                                                 \
            }                                                                                      \
            memset(idx, 0, sizeof idx), off = 0;                                                   \
        }                                                                                          \
        for (int64_t i = 0; i < nin_; i++) {                                                       \
            ACC v = LOAD(i);                                                                       \
            ACC *a = &acc[off];                                                                    \
            switch (op) {                                                                          \
            case R_SUM: case R_MEAN: case R_LOGSUM: *a += v; break;                                \
            case R_SUMSQ: case R_L2: *a += v * v; break;                                           \
            case R_L1: *a += v < 0 ? -v : v; break;                                                \
            case R_PROD: *a *= v; break;                                                           \
            case R_MAX: if (v > *a) *a = v; break;                                                 \
            case R_MIN: if (v < *a) *a = v; break;                                                 \
            default: *a += (ACC)EXP(v - mx[off]); break;                                           \
            }                                                                                      \
            step(idx, x->dims, ostr, r, &off);                                                     \
        }                                                                                          \
        for (int64_t o = 0; o < nout; o++) {                                                       \
            ACC v = acc[o];                                                                        \
            switch (op) {                                                                          \
            case R_MEAN: v = cnt ? v / (ACC)cnt : (ACC)0; break;                                   \
            case R_L2: v = (ACC)SQRT(v); break;                                                    \
            case R_LOGSUM: v = (ACC)LOG(v); break;                                                 \
            case R_LOGSUMEXP: v = (ACC)LOG(v) + mx[o]; break;                                      \
            default: break;                                                                        \
            }                                                                                      \
            STORE(o, v);                                                                           \
        }                                                                                          \
        qo_free(acc);                                                                              \
        qo_free(mx);                                                                               \
    } while (0)

/* float32 ReduceSum: each output is the qo_fsum_strided sum of its elements (row-major over the
 * reduced axes). */
static void sum_f32(const qo_tensor *x, const bool *mask, float *y) {
    int r = x->rank, nr = 0, nk = 0;
    int64_t str[QO_MAX_RANK], rext[QO_MAX_RANK], rstr[QO_MAX_RANK], kext[QO_MAX_RANK], kstr[QO_MAX_RANK];
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) str[i] = s, s *= x->dims[i];
    for (int i = 0; i < r; i++) {
        if (mask[i]) rext[nr] = x->dims[i], rstr[nr++] = str[i];
        else kext[nk] = x->dims[i], kstr[nk++] = str[i];
    }
    int64_t nout = 1, idx[QO_MAX_RANK] = {0}, off = 0;
    for (int i = 0; i < nk; i++) nout *= kext[i];
    if (qo_tensor_numel(x) == 0) { /* an empty reduction: +0 */
        for (int64_t o = 0; o < nout; o++) y[o] = 0.0f;
        return;
    }
    for (int64_t o = 0; o < nout; o++) {
        y[o] = qo_fsum_strided((const float *)x->data + off, nr, rext, rstr);
        step(idx, kext, kstr, nk, &off);
    }
}

static double sqrt_i(int64_t v) { return sqrt((double)v); }
static double log_i(int64_t v) { return log((double)v); }
static double exp_i(int64_t v) { return exp((double)v); }

static qo_status reduce(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, int op) {
    const qo_tensor *x = in[0];
    int e = x->elem, r = x->rank;
    bool isf = qo_elem_is_float(e), isi = qo_elem_is_int(e) && e != QO_U4 && e != QO_I4;
    if (!isf && !isi) return qo_kerr(k, QO_ERR_UNSUPPORTED, "%s: element type %s is not supported", op_name(k), ename(e));
    bool mask[QO_MAX_RANK], noop;
    QO_TRY(reduce_axes(k, in, nin, r, mask, &noop));
    if (noop) {
        QO_TRY(qo_tensor_make(k->cx, &out[0], e, r, x->dims));
        if (x->nbytes) memcpy(out[0].data, x->data, x->nbytes);
        return QO_OK;
    }
    bool keep = qo_kattr_int(k, "keepdims", 1) != 0;
    int64_t odims[QO_MAX_RANK], ostr[QO_MAX_RANK], cnt = 1;
    int orank = 0;
    for (int i = 0; i < r; i++) {
        if (mask[i]) cnt *= x->dims[i];
        if (!mask[i]) odims[orank++] = x->dims[i];
        else if (keep) odims[orank++] = 1;
    }
    /* strides of the output seen with the input's rank: 0 along reduced axes */
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        ostr[i] = mask[i] ? 0 : s;
        if (!mask[i]) s *= x->dims[i];
    }
    QO_TRY(qo_tensor_make(k->cx, &out[0], e, orank, odims));
    int64_t nout = qo_tensor_numel(&out[0]), nin_ = qo_tensor_numel(x);
    if ((op == R_MAX || op == R_MIN) && cnt == 0 && nout > 0 && !isf)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: reduction over an empty axis", op_name(k));
    const void *X = x->data;
    void *Y = out[0].data;
#define LD_F32(i) ((const float *)X)[i]
#define ST_F32(o, v) ((float *)Y)[o] = (v)
#define LD_F64(i) ((const double *)X)[i]
#define ST_F64(o, v) ((double *)Y)[o] = (v)
#define LD_HALF(i) ((float)qo_load_f64(X, e, i))
#define ST_HALF(o, v) qo_store_f64(Y, e, o, (double)(v))
#define LD_INT(i) qo_load_i64(X, e, i)
#define ST_INT(o, v) qo_store_i64(Y, e, o, (v))
    if (e == QO_F32 && op == R_SUM) sum_f32(x, mask, Y);
    else if (e == QO_F32) REDUCE_LOOP(float, LD_F32, -INFINITY, INFINITY, sqrtf, logf, expf, ST_F32);
    else if (e == QO_F64) REDUCE_LOOP(double, LD_F64, -INFINITY, INFINITY, sqrt, log, exp, ST_F64);
    else if (isf) REDUCE_LOOP(float, LD_HALF, -INFINITY, INFINITY, sqrtf, logf, expf, ST_HALF);
    else REDUCE_LOOP(int64_t, LD_INT, INT64_MIN, INT64_MAX, sqrt_i, log_i, exp_i, ST_INT);
    return QO_OK;
}

#define REDUCE_KERNEL(fn, OP)                                                                      \
    static qo_status fn(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,      \
                        uint32_t nout) {                                                           \
        (void)nout;                                                                                \
        return reduce(k, in, nin, out, OP);                                                        \
    }
REDUCE_KERNEL(k_reducesum, R_SUM)
REDUCE_KERNEL(k_reducemean, R_MEAN)
REDUCE_KERNEL(k_reducemax, R_MAX)
REDUCE_KERNEL(k_reducemin, R_MIN)
REDUCE_KERNEL(k_reduceprod, R_PROD)
REDUCE_KERNEL(k_reducel1, R_L1)
REDUCE_KERNEL(k_reducel2, R_L2)
REDUCE_KERNEL(k_reducelogsum, R_LOGSUM)
REDUCE_KERNEL(k_reducelogsumexp, R_LOGSUMEXP)
REDUCE_KERNEL(k_reducesumsquare, R_SUMSQ)

/* ---- ArgMax / ArgMin ------------------------------------------------------------------------ */
/* a > b (or a < b) for element i/j of x, compared exactly for integers. */
static int cmp_elem(const void *p, int e, int64_t i, int64_t j) {
    if (qo_elem_is_float(e)) {
        double a = qo_load_f64(p, e, i), b = qo_load_f64(p, e, j);
        return a > b ? 1 : a < b ? -1 : 0;
    }
    if (e == QO_U64) {
        uint64_t a = ((const uint64_t *)p)[i], b = ((const uint64_t *)p)[j];
        return a > b ? 1 : a < b ? -1 : 0;
    }
    int64_t a = qo_load_i64(p, e, i), b = qo_load_i64(p, e, j);
    return a > b ? 1 : a < b ? -1 : 0;
}

static qo_status arg_reduce(qo_kctx *k, const qo_tensor *const *in, qo_tensor *out, bool is_max) {
    const qo_tensor *x = in[0];
    int e = x->elem, r = x->rank;
    if (!qo_elem_is_float(e) && !qo_elem_is_int(e))
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "%s: element type %s is not supported", op_name(k), ename(e));
    int64_t axis = qo_kattr_int(k, "axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: axis out of range for rank %d", op_name(k), r);
    bool keep = qo_kattr_int(k, "keepdims", 1) != 0, last = qo_kattr_int(k, "select_last_index", 0) != 0;
    int64_t len = x->dims[axis];
    if (len == 0) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s: reduction over an empty axis", op_name(k));
    int64_t odims[QO_MAX_RANK] = {0};
    int orank = 0;
    for (int i = 0; i < r; i++) {
        if (i != axis) odims[orank++] = x->dims[i];
        else if (keep) odims[orank++] = 1;
    }
    QO_TRY(qo_tensor_make(k->cx, &out[0], QO_I64, orank, odims));
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = (int)axis + 1; i < r; i++) inner *= x->dims[i];
    int64_t *Y = out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in_ = 0; in_ < inner; in_++) {
            int64_t base = o * len * inner + in_, best = 0;
            for (int64_t i = 1; i < len; i++) {
                int c = cmp_elem(x->data, e, base + i * inner, base + best * inner);
                if (!is_max) c = -c;
                if (c > 0 || (last && c == 0)) best = i;
            }
            Y[o * inner + in_] = best;
        }
    return QO_OK;
}

static qo_status k_argmax(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    (void)nin, (void)nout;
    return arg_reduce(k, in, out, true);
}

static qo_status k_argmin(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    (void)nin, (void)nout;
    return arg_reduce(k, in, out, false);
}

/* ---- TopK ----------------------------------------------------------------------------------- */
typedef struct topk_ctx {
    const void *p;
    int e;
    int64_t base, stride;
    bool largest;
} topk_ctx;

/* True if slice element a comes before b: larger (smaller) value first, ties by lower index. */
static bool topk_before(const topk_ctx *c, int64_t a, int64_t b) {
    int r = cmp_elem(c->p, c->e, c->base + a * c->stride, c->base + b * c->stride);
    if (!c->largest) r = -r;
    return r > 0 || (r == 0 && a < b);
}

/* Stable merge sort of idx[0..n) with scratch tmp[0..n). */
static void topk_sort(const topk_ctx *c, int64_t *idx, int64_t *tmp, int64_t n) {
    if (n < 2) return;
    int64_t h = n / 2;
    topk_sort(c, idx, tmp, h);
    topk_sort(c, idx + h, tmp, n - h);
    int64_t i = 0, j = h, o = 0;
    while (i < h && j < n) tmp[o++] = topk_before(c, idx[j], idx[i]) ? idx[j++] : idx[i++];
    while (i < h) tmp[o++] = idx[i++];
    while (j < n) tmp[o++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

static qo_status k_topk(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    int e = x->elem, r = x->rank;
    (void)nout;
    if (!qo_elem_is_float(e) && !qo_elem_is_int(e))
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "TopK: element type %s is not supported", ename(e));
    int64_t kk;
    if (nin > 1 && in[1]) {
        const qo_tensor *kt = in[1];
        if ((kt->elem != QO_I64 && kt->elem != QO_I32) || qo_tensor_numel(kt) != 1)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "TopK: K must be a 1-element int64 tensor");
        kk = qo_load_i64(kt->data, kt->elem, 0);
    } else {
        const qo_attr *a = qo_node_attr(k->g, k->n, "k");
        if (!a) return qo_kerr(k, QO_ERR_INVALID_MODEL, "TopK: no K input and no k attribute");
        kk = qo_kattr_int(k, "k", 0);
    }
    int64_t axis = qo_kattr_int(k, "axis", -1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return qo_kerr(k, QO_ERR_INVALID_MODEL, "TopK: axis out of range for rank %d", r);
    int64_t len = x->dims[axis];
    if (kk < 0 || kk > len)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "TopK: k = %lld is out of range [0, %lld]", (long long)kk, (long long)len);
    bool largest = qo_kattr_int(k, "largest", 1) != 0;
    /* sorted=0 leaves the order unspecified: the sorted order is a valid answer */
    int64_t odims[QO_MAX_RANK] = {0};
    memcpy(odims, x->dims, sizeof(int64_t) * (size_t)r);
    odims[axis] = kk;
    QO_TRY(qo_tensor_make(k->cx, &out[0], e, r, odims));
    QO_TRY(qo_tensor_make(k->cx, &out[1], QO_I64, r, odims));
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = (int)axis + 1; i < r; i++) inner *= x->dims[i];
    size_t es = qo_rt_elem_size(e);
    int64_t *idx = qo_malloc((size_t)(len ? len : 1) * 2 * sizeof *idx), *tmp = idx + (len ? len : 1);
    const uint8_t *X = x->data;
    uint8_t *V = out[0].data;
    int64_t *I = out[1].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in_ = 0; in_ < inner; in_++) {
            topk_ctx c = {x->data, e, o * len * inner + in_, inner, largest};
            for (int64_t i = 0; i < len; i++) idx[i] = i;
            topk_sort(&c, idx, tmp, len);
            for (int64_t i = 0; i < kk; i++) {
                int64_t dst = o * kk * inner + i * inner + in_;
                memcpy(V + (size_t)dst * es, X + (size_t)(c.base + idx[i] * inner) * es, es);
                I[dst] = idx[i];
            }
        }
    qo_free(idx);
    return QO_OK;
}

/* Fills the reduce family's rows of the kernel table. */
void qo_ref_register_reduce(qo_ref_kernel *table) {
    table[QO_OP_REDUCESUM] = k_reducesum;
    table[QO_OP_REDUCEMEAN] = k_reducemean;
    table[QO_OP_REDUCEMAX] = k_reducemax;
    table[QO_OP_REDUCEMIN] = k_reducemin;
    table[QO_OP_REDUCEPROD] = k_reduceprod;
    table[QO_OP_REDUCEL1] = k_reducel1;
    table[QO_OP_REDUCEL2] = k_reducel2;
    table[QO_OP_REDUCELOGSUM] = k_reducelogsum;
    table[QO_OP_REDUCELOGSUMEXP] = k_reducelogsumexp;
    table[QO_OP_REDUCESUMSQUARE] = k_reducesumsquare;
    table[QO_OP_ARGMAX] = k_argmax;
    table[QO_OP_ARGMIN] = k_argmin;
    table[QO_OP_TOPK] = k_topk;
}
