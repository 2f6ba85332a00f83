/* passes/quant/weights.c — weight and bias quantization and fake quantization, Brevitas order:
 * statistic per tensor or per channel -> scale (qo_qspec_scale_from_stat) -> zero point ->
 * codes clamp(round(w / scale + zp)) (quantizer.h has the sources). */
#include "passes/quant/quantizer.h"
#include "runtime/ref/util.h"

#include <math.h>
#include <string.h>

static int code_elem(const qo_qspec *s) {
    if (s->bits <= 8) return s->is_signed ? QO_I8 : QO_U8;
    if (s->bits <= 16) return s->is_signed ? QO_I16 : QO_U16;
    return QO_I32;
}

void qo_qtensor_free(qo_qtensor *t) {
    if (!t) return;
    qo_tensor_free(&t->q);
    qo_free(t->scales);
    qo_free(t->zps);
    memset(t, 0, sizeof *t);
}

/* Channel layout of x for the spec: nch channels; element (o, c, i) at (o*nch + c)*inner + i. */
typedef struct chlayout {
    int64_t nch, outer, inner;
} chlayout;

static qo_status layout(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s, const qo_tensor *x, chlayout *l) {
    int64_t n = qo_tensor_numel(x);
    if (!s->per_channel) {
        l->nch = 1;
        l->outer = 1;
        l->inner = n;
        return QO_OK;
    }
    if (s->axis >= x->rank)
        return qo_error(cx, QO_ERR_USAGE, loc, "quantizer %s: axis %d out of range for a rank-%d tensor", s->name,
                        s->axis, (int)x->rank);
    l->nch = x->dims[s->axis];
    l->outer = 1;
    l->inner = 1;
    for (int d = 0; d < s->axis; d++) l->outer *= x->dims[d];
    for (int d = s->axis + 1; d < x->rank; d++) l->inner *= x->dims[d];
    if (l->nch > UINT32_MAX)
        return qo_error(cx, QO_ERR_UNSUPPORTED, loc, "quantizer %s: %lld channels", s->name, (long long)l->nch);
    return QO_OK;
}

static void gather(const float *x, const chlayout *l, int64_t c, float *out) {
    for (int64_t o = 0; o < l->outer; o++)
        memcpy(out + o * l->inner, x + (o * l->nch + c) * l->inner, (size_t)l->inner * sizeof(float));
}

qo_status qo_quant_weight(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s, const qo_tensor *w,
                          qo_qtensor *out) {
    memset(out, 0, sizeof *out);
    QO_TRY(qo_qspec_check(cx, loc, s));
    if (s->role == QO_QROLE_BIAS)
        return qo_error(cx, QO_ERR_USAGE, loc, "quantizer %s is a bias quantizer: use qo_quant_bias", s->name);
    if (w->elem != QO_F32)
        return qo_error(cx, QO_ERR_UNSUPPORTED, loc, "quantizer %s: weight is %s, expected f32", s->name,
                        qo_elem_name(w->elem));
    int64_t n = qo_tensor_numel(w);
    if (n <= 0) return qo_error(cx, QO_ERR_USAGE, loc, "quantizer %s: empty weight tensor", s->name);
    chlayout l;
    QO_TRY(layout(cx, loc, s, w, &l));
    if (l.nch <= 0) return qo_error(cx, QO_ERR_USAGE, loc, "quantizer %s: no channels on axis %d", s->name, s->axis);
    QO_TRY(qo_tensor_make(cx, &out->q, code_elem(s), w->rank, w->dims));
    out->nscale = (uint32_t)l.nch;
    out->scales = qo_malloc((size_t)l.nch * sizeof(float));
    out->zps = qo_calloc((size_t)l.nch, sizeof(int32_t));
    int64_t cnt = l.outer * l.inner;
    float *buf = qo_malloc((size_t)cnt * sizeof(float)), *scratch = qo_malloc((size_t)cnt * sizeof(float));
    const float *x = w->data;
    for (int64_t c = 0; c < l.nch; c++) {
        gather(x, &l, c, buf);
        float neg = 0.0f;
        float st = qo_qstat_slice(s, buf, cnt, scratch, s->zp == QO_QZP_STATS ? &neg : NULL);
        float sc = qo_qspec_scale_from_stat(s, st);
        int32_t zp = qo_qspec_zp_from_min(s, sc, neg);
        out->scales[c] = sc;
        out->zps[c] = zp;
        int64_t lo, hi;
        qo_qspec_int_range(s, &lo, &hi);
        for (int64_t o = 0; o < l.outer; o++)
            for (int64_t i = 0; i < l.inner; i++) {
                int64_t idx = (o * l.nch + c) * l.inner + i;
                qo_store_i64(out->q.data, out->q.elem, idx, qo_qspec_to_int_in(x[idx], sc, zp, (qo_round)s->round, lo, hi));
            }
    }
    qo_free(buf);
    qo_free(scratch);
    return QO_OK;
}

qo_status qo_quant_bias(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s, const qo_tensor *b,
                        float in_scale, const float *w_scales, uint32_t nw, qo_qtensor *out) {
    memset(out, 0, sizeof *out);
    QO_TRY(qo_qspec_check(cx, loc, s));
    if (s->role != QO_QROLE_BIAS)
        return qo_error(cx, QO_ERR_USAGE, loc, "quantizer %s is not a bias quantizer", s->name);
    if (b->elem != QO_F32)
        return qo_error(cx, QO_ERR_UNSUPPORTED, loc, "quantizer %s: bias is %s, expected f32", s->name,
                        qo_elem_name(b->elem));
    int64_t n = qo_tensor_numel(b);
    if (n <= 0 || nw == 0 || (nw != 1 && (int64_t)nw != n))
        return qo_error(cx, QO_ERR_USAGE, loc, "quantizer %s: %lld bias entries but %u weight scales", s->name,
                        (long long)n, nw);
    QO_TRY(qo_tensor_make(cx, &out->q, code_elem(s), b->rank, b->dims));
    out->nscale = nw == 1 ? 1 : (uint32_t)n;
    out->scales = qo_malloc((size_t)out->nscale * sizeof(float));
    out->zps = qo_calloc(out->nscale, sizeof(int32_t));
    for (uint32_t c = 0; c < out->nscale; c++) out->scales[c] = in_scale * w_scales[c]; /* float32 product */
    const float *x = b->data;
    for (int64_t i = 0; i < n; i++) {
        float sc = out->scales[out->nscale == 1 ? 0 : i];
        qo_store_i64(out->q.data, out->q.elem, i, qo_qspec_to_int(s, x[i], sc, 0));
    }
    return QO_OK;
}

qo_status qo_quant_fake(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s, qo_tensor *x,
                        const float *scales, const int32_t *zps, uint32_t nscale) {
    if (x->elem != QO_F32)
        return qo_error(cx, QO_ERR_UNSUPPORTED, loc, "quantizer %s: tensor is %s, expected f32", s->name,
                        qo_elem_name(x->elem));
    chlayout l;
    QO_TRY(layout(cx, loc, s, x, &l));
    if ((int64_t)nscale != l.nch)
        return qo_error(cx, QO_ERR_USAGE, loc, "quantizer %s: %u scales for %lld channels", s->name, nscale,
                        (long long)l.nch);
    float *v = x->data;
    for (int64_t o = 0; o < l.outer; o++)
        for (int64_t c = 0; c < l.nch; c++) {
            float sc = scales[c];
            int32_t zp = zps ? zps[c] : 0;
            for (int64_t i = 0; i < l.inner; i++) {
                float *p = &v[(o * l.nch + c) * l.inner + i];
                float q = (float)qo_qspec_to_int(s, *p, sc, zp);
                *p = (q - (float)zp) * sc;
            }
        }
    return QO_OK;
}
