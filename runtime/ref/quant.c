/* runtime/ref/quant.c — reference kernels: QuantizeLinear, DequantizeLinear (ONNX opsets 10-21:
 * per-tensor, per-axis, blocked), QONNX Quant, BipolarQuant, Trunc (v1 and v2).
 *
 * Numerics follow shared/REFERENCE.md §3.1 and §4 exactly:
 *   QuantizeLinear    q = clamp(RNE(x / scale), qmin - zp, qmax - zp) + zp, division in float32,
 *                     NaN -> qmin (onnxruntime MLAS);
 *   DequantizeLinear  y = float(x - zp) * scale (integer subtraction, then convert, then multiply;
 *                     onnxruntime's order);
 *   Quant             y = x / scale + zp; clamp to [min_int, max_int]; round by rounding_mode;
 *                     out = (y - zp) * scale (all float32; signed 1-bit is bipolar: y >= 0 ? 1 : -1);
 *   BipolarQuant      out = (x >= 0 ? 1 : -1) * scale;
 *   Trunc             see k_trunc.
 * Rounding uses qo_round_apply (runtime/ref/util.h), ties decided on the exact float value. */
#include "runtime/ref/ref.h"
#include "runtime/ref/util.h"

/* Integer range of a quantized element type; false if e is not one. */
static bool qrange(int e, int64_t *lo, int64_t *hi) {
    switch (e) {
    case QO_U8: *lo = 0; *hi = 255; return true;
    case QO_I8: *lo = -128; *hi = 127; return true;
    case QO_U16: *lo = 0; *hi = 65535; return true;
    case QO_I16: *lo = -32768; *hi = 32767; return true;
    case QO_U4: *lo = 0; *hi = 15; return true;
    case QO_I4: *lo = -8; *hi = 7; return true;
    case QO_I32: *lo = INT32_MIN; *hi = INT32_MAX; return true;
    default: return false;
    }
}

static const char *ename(int e) { return qo_elem_name(e) ? qo_elem_name(e) : "?"; }

static bool is_f8(int e) { return e >= QO_F8E4M3FN && e <= QO_F8E5M2FNUZ; }

static float loadf(const qo_tensor *t, int64_t i) {
    switch (t->elem) {
    case QO_F32: return ((const float *)t->data)[i];
    case QO_F16: return qo_f16_to_f32(((const uint16_t *)t->data)[i]);
    case QO_BF16: return qo_bf16_to_f32(((const uint16_t *)t->data)[i]);
    default: return (float)qo_load_f64(t->data, t->elem, i);
    }
}
static void storef(qo_tensor *t, int64_t i, float v) {
    switch (t->elem) {
    case QO_F16: ((uint16_t *)t->data)[i] = qo_f32_to_f16(v); break;
    case QO_BF16: ((uint16_t *)t->data)[i] = qo_f32_to_bf16(v); break;
    default: qo_store_f64(t->data, t->elem, i, v); break;
    }
}

/* How scale/zero point map onto x for Quantize/DequantizeLinear. */
typedef struct qparam {
    int mode; /* 0 per-tensor, 1 per-axis, 2 blocked */
    int64_t outer, dim, inner, block, nblk;
} qparam;

static qo_status qparam_setup(qo_kctx *k, const qo_tensor *x, const qo_tensor *scale, const qo_tensor *zp,
                              qparam *p) {
    memset(p, 0, sizeof *p);
    int64_t axis = qo_kattr_int(k, "axis", 1), block = k->opset >= 21 ? qo_kattr_int(k, "block_size", 0) : 0;
    int64_t sn = qo_tensor_numel(scale);
    if (zp) {
        bool same = zp->rank == scale->rank;
        for (int32_t d = 0; same && d < zp->rank; d++) same = zp->dims[d] == scale->dims[d];
        if (!same && !(qo_tensor_numel(zp) == 1 && sn == 1))
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "zero point and scale have different shapes");
    }
    if (block < 0) return qo_kerr(k, QO_ERR_INVALID_MODEL, "block_size must be >= 0, not %lld", (long long)block);
    if (block == 0 && (scale->rank == 0 || (scale->rank == 1 && sn == 1))) return QO_OK; /* per-tensor */
    if (k->opset < 13) return qo_kerr(k, QO_ERR_INVALID_MODEL, "scale must be a scalar before opset 13");
    if (axis < -x->rank || axis >= x->rank || x->rank == 0)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "axis %lld is out of range for rank %d", (long long)axis, (int)x->rank);
    if (axis < 0) axis += x->rank;
    p->outer = 1;
    p->inner = 1;
    for (int32_t d = 0; d < x->rank; d++) {
        if (d < axis) p->outer *= x->dims[d];
        if (d > axis) p->inner *= x->dims[d];
    }
    p->dim = x->dims[axis];
    if (block == 0) {
        if (scale->rank != 1 || scale->dims[0] != p->dim)
            return qo_kerr(k, QO_ERR_INVALID_MODEL,
                           "per-axis scale must be 1-D with %lld entries (axis %lld), has %lld elements",
                           (long long)p->dim, (long long)axis, (long long)sn);
        p->mode = 1;
        return QO_OK;
    }
    p->mode = 2;
    p->block = block;
    p->nblk = (p->dim + block - 1) / block;
    bool ok = scale->rank == x->rank;
    for (int32_t d = 0; ok && d < x->rank; d++) ok = scale->dims[d] == (d == axis ? p->nblk : x->dims[d]);
    if (!ok)
        return qo_kerr(k, QO_ERR_INVALID_MODEL,
                       "blocked scale must have x's shape with %lld blocks along axis %lld", (long long)p->nblk,
                       (long long)axis);
    return QO_OK;
}

/* Index into scale/zp for element i of x. */
static int64_t qparam_index(const qparam *p, int64_t i) {
    if (p->mode == 0) return 0;
    int64_t in = i % p->inner, c = (i / p->inner) % p->dim;
    if (p->mode == 1) return c;
    int64_t o = i / (p->inner * p->dim);
    return (o * p->nblk + c / p->block) * p->inner + in;
}

static qo_status k_quantizelinear(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                  uint32_t nout) {
    const qo_tensor *x = in[0], *scale = nin > 1 ? in[1] : NULL, *zp = nin > 2 ? in[2] : NULL;
    if (!x || !scale) return qo_kerr(k, QO_ERR_INVALID_MODEL, "QuantizeLinear needs x and y_scale");
    if (x->elem != QO_F32 && x->elem != QO_F16 && x->elem != QO_BF16 && x->elem != QO_I32)
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "input element type %s is not supported", ename(x->elem));
    if (scale->elem != QO_F32 && scale->elem != QO_F16 && scale->elem != QO_BF16)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "y_scale must be a float tensor, not %s", ename(scale->elem));
    int oe = QO_U8;
    int64_t odt = k->opset >= 21 ? qo_kattr_int(k, "output_dtype", 0) : 0;
    if (zp) {
        oe = zp->elem;
        if (odt && odt != oe)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "output_dtype %s differs from the zero point's type %s",
                           ename((int)odt), ename(oe));
    } else if (odt) {
        oe = (int)odt;
    }
    int64_t qmin, qmax;
    if (is_f8(oe)) return qo_kerr(k, QO_ERR_UNSUPPORTED, "float8 quantization (%s) is not supported", ename(oe));
    if (oe == QO_I32 || !qrange(oe, &qmin, &qmax))
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "output type %s is not a quantized integer type", ename(oe));
    if (k->opset < 21 && oe != QO_U8 && oe != QO_I8)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "output type %s needs opset 21", ename(oe));
    qparam p;
    QO_TRY(qparam_setup(k, x, scale, zp, &p));
    QO_TRY(qo_tensor_make(k->cx, out, oe, x->rank, x->dims));
    int64_t n = qo_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t j = qparam_index(&p, i);
        float s = loadf(scale, j);
        int64_t z = zp ? qo_load_i64(zp->data, zp->elem, j) : 0;
        float q = loadf(x, i) / s;
        int64_t v;
        if (isnan(q)) {
            v = qmin;
        } else {
            float r = qo_rne(q), lo = (float)(qmin - z), hi = (float)(qmax - z);
            r = r < lo ? lo : r > hi ? hi : r;
            v = (int64_t)r + z;
        }
        qo_store_i64(out->data, oe, i, v);
    }
    return QO_OK;
}

static qo_status k_dequantizelinear(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                    uint32_t nout) {
    const qo_tensor *x = in[0], *scale = nin > 1 ? in[1] : NULL, *zp = nin > 2 ? in[2] : NULL;
    if (!x || !scale) return qo_kerr(k, QO_ERR_INVALID_MODEL, "DequantizeLinear needs x and x_scale");
    int64_t qmin, qmax;
    if (is_f8(x->elem))
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "float8 dequantization (%s) is not supported", ename(x->elem));
    if (!qrange(x->elem, &qmin, &qmax))
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "input type %s is not a quantized integer type", ename(x->elem));
    if (k->opset < 21 && x->elem != QO_U8 && x->elem != QO_I8 && x->elem != QO_I32)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "input type %s needs opset 21", ename(x->elem));
    if (scale->elem != QO_F32 && scale->elem != QO_F16 && scale->elem != QO_BF16)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "x_scale must be a float tensor, not %s", ename(scale->elem));
    if (zp && zp->elem != x->elem)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "zero point type %s differs from input type %s", ename(zp->elem),
                       ename(x->elem));
    qparam p;
    QO_TRY(qparam_setup(k, x, scale, zp, &p));
    QO_TRY(qo_tensor_make(k->cx, out, scale->elem, x->rank, x->dims));
    int64_t n = qo_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t j = qparam_index(&p, i);
        int64_t z = zp ? qo_load_i64(zp->data, zp->elem, j) : 0;
        if (x->elem == QO_I32) z = (int32_t)(uint32_t)z;
        int64_t d = qo_load_i64(x->data, x->elem, i) - z;
        if (x->elem == QO_I32) d = (int32_t)(uint32_t)d; /* int32 arithmetic, as onnxruntime */
        storef(out, i, (float)d * loadf(scale, j));
    }
    return QO_OK;
}

/* ---- QONNX ---------------------------------------------------------------------------------- */
static qo_status need_float_t(qo_kctx *k, const qo_tensor *t, const char *what) {
    if (!t) return qo_kerr(k, QO_ERR_INVALID_MODEL, "input '%s' is missing", what);
    if (t->elem != QO_F32 && t->elem != QO_F16 && t->elem != QO_BF16 && t->elem != QO_F64)
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "input '%s' has element type %s (expected float)", what, ename(t->elem));
    return QO_OK;
}

/* A scalar bit-width input: integer-valued in [1, 64]. */
static qo_status read_bitwidth(qo_kctx *k, const qo_tensor *t, const char *what, double *bw) {
    if (!t) return qo_kerr(k, QO_ERR_INVALID_MODEL, "input '%s' is missing", what);
    if (qo_tensor_numel(t) != 1)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s must be a scalar (has %lld elements)", what,
                       (long long)qo_tensor_numel(t));
    double b = qo_load_f64(t->data, t->elem, 0);
    if (!(b >= 1 && b <= 64) || b != floor(b))
        return qo_kerr(k, QO_ERR_UNSUPPORTED, "%s must be an integer in [1, 64], not %g", what, b);
    *bw = b;
    return QO_OK;
}

static qo_status read_rounding(qo_kctx *k, const char *dflt, qo_round *r) {
    char buf[32];
    const char *s = qo_kattr_str(k, "rounding_mode", buf, sizeof buf, dflt);
    int m = qo_round_from_name(s);
    if (m < 0) return qo_kerr(k, QO_ERR_UNSUPPORTED, "unknown rounding_mode '%s'", s);
    *r = (qo_round)m;
    return QO_OK;
}

/* qonnx min_int/max_int as float32. */
static void int_range(int is_signed, int narrow, double bw, float *lo, float *hi) {
    double l, h;
    if (is_signed) {
        l = -ldexp(1.0, (int)bw - 1) + (narrow ? 1 : 0);
        h = ldexp(1.0, (int)bw - 1) - 1;
    } else {
        l = 0;
        h = ldexp(1.0, (int)bw) - (narrow ? 2 : 1);
    }
    *lo = (float)l;
    *hi = (float)h;
}

static qo_status out_float(qo_kctx *k, const qo_tensor *x, const qo_tensor *const *ops, uint32_t nops,
                           qo_tensor *out, qo_bcast *it) {
    int32_t rank;
    int64_t dims[QO_MAX_RANK];
    QO_TRY(qo_bcast_shape(k, ops, nops, &rank, dims));
    QO_TRY(qo_tensor_make(k->cx, out, x->elem == QO_F64 ? QO_F32 : x->elem, rank, dims));
    qo_bcast_init(it, rank, dims, ops, nops);
    return QO_OK;
}

static qo_status k_qonnx_quant(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                               uint32_t nout) {
    if (nin < 4) return qo_kerr(k, QO_ERR_INVALID_MODEL, "Quant needs 4 inputs, has %u", nin);
    QO_TRY(need_float_t(k, in[0], "X"));
    QO_TRY(need_float_t(k, in[1], "scale"));
    QO_TRY(need_float_t(k, in[2], "zeropt"));
    double bw;
    QO_TRY(read_bitwidth(k, in[3], "bitwidth", &bw));
    const qo_attr *na = qo_node_attr(k->g, k->n, "narrow");
    if (!na || na->kind != QO_ATTR_INT)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "missing int attribute 'narrow' (qonnx requires it)");
    int is_signed = qo_kattr_int(k, "signed", 1) != 0, narrow = na->u.i != 0;
    qo_round rm;
    QO_TRY(read_rounding(k, "ROUND", &rm));
    float lo, hi;
    int_range(is_signed, narrow, bw, &lo, &hi);
    bool bipolar = bw == 1 && is_signed;
    qo_bcast it;
    QO_TRY(out_float(k, in[0], in, 3, out, &it));
    int64_t n = qo_tensor_numel(out);
    for (int64_t i = 0; i < n; i++, qo_bcast_next(&it)) {
        float s = loadf(in[1], it.off[1]), z = loadf(in[2], it.off[2]);
        float y = loadf(in[0], it.off[0]) / s;
        y = y + z;
        if (bipolar) {
            y = y >= 0 ? 1.0f : -1.0f;
        } else {
            y = y > hi ? hi : y; /* clamp first (NaN passes), then round */
            y = y < lo ? lo : y;
            y = qo_round_apply(y, rm);
        }
        storef(out, i, (y - z) * s);
    }
    return QO_OK;
}

static qo_status k_bipolarquant(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                uint32_t nout) {
    if (nin < 2) return qo_kerr(k, QO_ERR_INVALID_MODEL, "BipolarQuant needs 2 inputs, has %u", nin);
    QO_TRY(need_float_t(k, in[0], "X"));
    QO_TRY(need_float_t(k, in[1], "scale"));
    qo_bcast it;
    QO_TRY(out_float(k, in[0], in, 2, out, &it));
    int64_t n = qo_tensor_numel(out);
    for (int64_t i = 0; i < n; i++, qo_bcast_next(&it)) {
        float y = loadf(in[0], it.off[0]) >= 0 ? 1.0f : -1.0f;
        storef(out, i, y * loadf(in[1], it.off[1]));
    }
    return QO_OK;
}

/* Trunc v1 (5 inputs: X, scale, zeropt, in_bitwidth, out_bitwidth):
 *   t = 2^(in_bw - out_bw); out = (rounding(RNE(X/s + z) / t) - z) * s   (no clamp)
 * Trunc v2 (6 inputs: X, scale, zeropt, in_bitwidth, out_scale, out_bitwidth):
 *   t = 2^RNE(log2(out_scale / s)); y = RNE(X/s + z) / t; clamp to the out_bitwidth range
 *   (signed/narrow attributes); out = (rounding(y) - z/t) * out_scale.
 * rounding_mode defaults to FLOOR. All float32. */
static qo_status k_trunc(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    if (nin < 5) return qo_kerr(k, QO_ERR_INVALID_MODEL, "Trunc needs 5 or 6 inputs, has %u", nin);
    bool v2 = nin >= 6 && in[5];
    QO_TRY(need_float_t(k, in[0], "X"));
    QO_TRY(need_float_t(k, in[1], "scale"));
    QO_TRY(need_float_t(k, in[2], "zeropt"));
    double in_bw, out_bw;
    QO_TRY(read_bitwidth(k, in[3], "in_bitwidth", &in_bw));
    if (v2) {
        QO_TRY(need_float_t(k, in[4], "out_scale"));
        QO_TRY(read_bitwidth(k, in[5], "out_bitwidth", &out_bw));
    } else {
        QO_TRY(read_bitwidth(k, in[4], "out_bitwidth", &out_bw));
    }
    qo_round rm;
    QO_TRY(read_rounding(k, "FLOOR", &rm));
    int is_signed = qo_kattr_int(k, "signed", 1) != 0, narrow = qo_kattr_int(k, "narrow", 0) != 0;
    float lo, hi;
    int_range(is_signed, narrow, out_bw, &lo, &hi);
    const qo_tensor *ops[4] = {in[0], in[1], in[2], v2 ? in[4] : NULL};
    qo_bcast it;
    QO_TRY(out_float(k, in[0], ops, 4, out, &it));
    int64_t n = qo_tensor_numel(out);
    float t1 = (float)ldexp(1.0, (int)in_bw - (int)out_bw);
    for (int64_t i = 0; i < n; i++, qo_bcast_next(&it)) {
        float s = loadf(in[1], it.off[1]), z = loadf(in[2], it.off[2]);
        float y = loadf(in[0], it.off[0]) / s;
        y = qo_rne(y + z);
        if (!v2) {
            y = qo_round_apply(y / t1, rm);
            storef(out, i, (y - z) * s);
            continue;
        }
        float os = loadf(in[4], it.off[3]);
        float t = exp2f(qo_rne(log2f(os / s)));
        y = y / t;
        y = y > hi ? hi : y;
        y = y < lo ? lo : y;
        y = qo_round_apply(y, rm);
        storef(out, i, (y - z / t) * os);
    }
    return QO_OK;
}

void qo_ref_register_quant(qo_ref_kernel *table) {
    table[QO_OP_QUANTIZELINEAR] = k_quantizelinear;
    table[QO_OP_DEQUANTIZELINEAR] = k_dequantizelinear;
    table[QO_OP_QONNX_QUANT] = k_qonnx_quant;
    table[QO_OP_QONNX_BIPOLARQUANT] = k_bipolarquant;
    table[QO_OP_QONNX_TRUNC] = k_trunc;
}
