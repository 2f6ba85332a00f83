/* runtime/ref/elementwise.c — reference kernels: arithmetic, activations, comparisons, logic,
 * Where, Clip, Cast.
 *
 * Numerics: float32 tensors compute in float32 with libm float functions (expf, tanhf, ...; erf is
 * qo_erff, runtime/ref/erf.h);
 * float16/bfloat16 compute in float32 and round (to nearest even) after each op, as onnxruntime's
 * MLFloat16 kernels do; float64 computes in double; integers compute in (u)int64 and wrap to the
 * element width on store. Broadcasting is numpy's multidirectional rule (runtime/ref/util.h). */
#include "runtime/ref/erf.h"
#include "runtime/ref/ref.h"
#include "runtime/ref/util.h"

#include <float.h>
#include <limits.h>

/* ---- element classes ------------------------------------------------------------------------ */
enum { C_F32, C_F64, C_INT, C_UINT, C_BOOL, C_OTHER };

static int elem_class(int e) {
    switch (e) {
    case QO_F32: case QO_F16: case QO_BF16: return C_F32; /* f16/bf16 compute in f32 */
    case QO_F64: return C_F64;
    case QO_I8: case QO_I16: case QO_I32: case QO_I64: case QO_I4: return C_INT;
    case QO_U8: case QO_U16: case QO_U32: case QO_U64: case QO_U4: return C_UINT;
    case QO_BOOL: return C_BOOL;
    default: return C_OTHER;
    }
}

static float load_f32(const void *p, int e, int64_t i) {
    switch (e) {
    case QO_F32: return ((const float *)p)[i];
    case QO_F16: return qo_f16_to_f32(((const uint16_t *)p)[i]);
    case QO_BF16: return qo_bf16_to_f32(((const uint16_t *)p)[i]);
    default: return (float)qo_load_f64(p, e, i);
    }
}
static void store_f32(void *p, int e, int64_t i, float v) {
    switch (e) {
    case QO_F32: ((float *)p)[i] = v; break;
    case QO_F16: ((uint16_t *)p)[i] = qo_f32_to_f16(v); break;
    case QO_BF16: ((uint16_t *)p)[i] = qo_f32_to_bf16(v); break;
    default: qo_store_f64(p, e, i, v); break;
    }
}
static uint64_t load_u64(const void *p, int e, int64_t i) { return (uint64_t)qo_load_i64(p, e, i); }

static qo_status bad_type(qo_kctx *k, int e) {
    return qo_kerr(k, QO_ERR_UNSUPPORTED, "element type %s is not supported by this kernel",
                   qo_elem_name(e) ? qo_elem_name(e) : "?");
}

static const char *opname(qo_kctx *k) { return qo_node_op_type(k->g, k->n); }

/* ---- unary ---------------------------------------------------------------------------------- */
typedef struct unattr {
    float alpha, beta, gamma;
    int det_neg, det_pos;
    int approx_tanh;
} unattr;

static float softplusf(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

static float un_f32(qo_op op, float x, const unattr *a) {
    switch (op) {
    case QO_OP_ABS: return fabsf(x);
    case QO_OP_NEG: return -x;
    case QO_OP_SQRT: return sqrtf(x);
    case QO_OP_EXP: return expf(x);
    case QO_OP_LOG: return logf(x);
    case QO_OP_RECIPROCAL: return 1.0f / x;
    case QO_OP_FLOOR: return floorf(x);
    case QO_OP_CEIL: return ceilf(x);
    case QO_OP_ROUND: return qo_rne(x);
    case QO_OP_ERF: return qo_erff(x);
    case QO_OP_TANH: return tanhf(x);
    case QO_OP_SIGMOID: return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
    case QO_OP_HARDSIGMOID: return fmaxf(0.0f, fminf(1.0f, a->alpha * x + a->beta));
    case QO_OP_HARDSWISH: return x * fmaxf(0.0f, fminf(1.0f, x / 6.0f + 0.5f));
    case QO_OP_RELU: return x < 0 ? 0.0f : x; /* NaN and -0 pass through, as onnxruntime's max(x, 0) */
    case QO_OP_LEAKYRELU: return x >= 0 ? x : a->alpha * x;
    case QO_OP_ELU: return x >= 0 ? x : a->alpha * (expf(x) - 1.0f);
    case QO_OP_SELU: return x > 0 ? a->gamma * x : a->gamma * (a->alpha * expf(x) - a->alpha);
    case QO_OP_CELU: return fmaxf(0.0f, x) + fminf(0.0f, a->alpha * (expf(x / a->alpha) - 1.0f));
    case QO_OP_THRESHOLDEDRELU: return x > a->alpha ? x : 0.0f;
    case QO_OP_SOFTPLUS: return softplusf(x);
    case QO_OP_SOFTSIGN: return x / (1.0f + fabsf(x));
    case QO_OP_MISH: return x * tanhf(softplusf(x));
    case QO_OP_GELU:
        if (a->approx_tanh)
            return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
        return 0.5f * x * (1.0f + qo_erff(x * 0.70710678118654752f));
    case QO_OP_SHRINK: return x < -a->alpha ? x + a->beta : x > a->alpha ? x - a->beta : 0.0f;
    case QO_OP_SIGN: return x > 0 ? 1.0f : x < 0 ? -1.0f : x == 0 ? 0.0f : x;
    case QO_OP_SIN: return sinf(x);
    case QO_OP_COS: return cosf(x);
    case QO_OP_TAN: return tanf(x);
    case QO_OP_ASIN: return asinf(x);
    case QO_OP_ACOS: return acosf(x);
    case QO_OP_ATAN: return atanf(x);
    case QO_OP_SINH: return sinhf(x);
    case QO_OP_COSH: return coshf(x);
    case QO_OP_ASINH: return asinhf(x);
    case QO_OP_ACOSH: return acoshf(x);
    case QO_OP_ATANH: return atanhf(x);
    default: return x;
    }
}

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double un_f64(qo_op op, double x, const unattr *a) {
    switch (op) {
    case QO_OP_ABS: return fabs(x);
    case QO_OP_NEG: return -x;
    case QO_OP_SQRT: return sqrt(x);
    case QO_OP_EXP: return exp(x);
    case QO_OP_LOG: return log(x);
    case QO_OP_RECIPROCAL: return 1.0 / x;
    case QO_OP_FLOOR: return floor(x);
    case QO_OP_CEIL: return ceil(x);
    case QO_OP_ROUND: return nearbyint(x); /* default FE_TONEAREST: half to even */
    case QO_OP_ERF: return erf(x);
    case QO_OP_TANH: return tanh(x);
    case QO_OP_SIGMOID: return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case QO_OP_HARDSIGMOID: return fmax(0.0, fmin(1.0, (double)a->alpha * x + (double)a->beta));
    case QO_OP_HARDSWISH: return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case QO_OP_RELU: return x > 0 ? x : 0.0;
    case QO_OP_LEAKYRELU: return x >= 0 ? x : (double)a->alpha * x;
    case QO_OP_ELU: return x >= 0 ? x : (double)a->alpha * (exp(x) - 1.0);
    case QO_OP_SELU: return x > 0 ? (double)a->gamma * x : (double)a->gamma * ((double)a->alpha * exp(x) - (double)a->alpha);
    case QO_OP_CELU: return fmax(0.0, x) + fmin(0.0, (double)a->alpha * (exp(x / (double)a->alpha) - 1.0));
    case QO_OP_THRESHOLDEDRELU: return x > (double)a->alpha ? x : 0.0;
    case QO_OP_SOFTPLUS: return softplus(x);
    case QO_OP_SOFTSIGN: return x / (1.0 + fabs(x));
    case QO_OP_MISH: return x * tanh(softplus(x));
    case QO_OP_GELU:
        if (a->approx_tanh) return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
    case QO_OP_SHRINK:
        return x < -(double)a->alpha ? x + (double)a->beta : x > (double)a->alpha ? x - (double)a->beta : 0.0;
    case QO_OP_SIGN: return x > 0 ? 1.0 : x < 0 ? -1.0 : x == 0 ? 0.0 : x;
    case QO_OP_SIN: return sin(x);
    case QO_OP_COS: return cos(x);
    case QO_OP_TAN: return tan(x);
    case QO_OP_ASIN: return asin(x);
    case QO_OP_ACOS: return acos(x);
    case QO_OP_ATAN: return atan(x);
    case QO_OP_SINH: return sinh(x);
    case QO_OP_COSH: return cosh(x);
    case QO_OP_ASINH: return asinh(x);
    case QO_OP_ACOSH: return acosh(x);
    case QO_OP_ATANH: return atanh(x);
    default: return x;
    }
}

/* Ops defined on integers too (result type = input type). */
static bool un_int_ok(qo_op op) {
    return op == QO_OP_ABS || op == QO_OP_NEG || op == QO_OP_SIGN || op == QO_OP_RELU ||
           op == QO_OP_SHRINK || op == QO_OP_CEIL || op == QO_OP_FLOOR || op == QO_OP_ROUND;
}

static qo_status k_unary(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    qo_op op = (qo_op)qo_node_get(k->g, k->n)->op;
    int cls = elem_class(x->elem);
    unattr a = {0};
    switch (op) {
    case QO_OP_HARDSIGMOID: a.alpha = qo_kattr_float(k, "alpha", 0.2f); a.beta = qo_kattr_float(k, "beta", 0.5f); break;
    case QO_OP_LEAKYRELU: a.alpha = qo_kattr_float(k, "alpha", 0.01f); break;
    case QO_OP_ELU: case QO_OP_CELU: case QO_OP_THRESHOLDEDRELU: a.alpha = qo_kattr_float(k, "alpha", 1.0f); break;
    case QO_OP_SELU:
        a.alpha = qo_kattr_float(k, "alpha", 1.67326319217681884765625f);
        a.gamma = qo_kattr_float(k, "gamma", 1.05070102214813232421875f);
        break;
    case QO_OP_SHRINK: a.alpha = qo_kattr_float(k, "lambd", 0.5f); a.beta = qo_kattr_float(k, "bias", 0.0f); break;
    case QO_OP_GELU: {
        char buf[16];
        const char *s = qo_kattr_str(k, "approximate", buf, sizeof buf, "none");
        if (strcmp(s, "tanh") == 0) a.approx_tanh = 1;
        else if (strcmp(s, "none") != 0) return qo_kerr(k, QO_ERR_UNSUPPORTED, "approximate='%s' is not supported", s);
        break;
    }
    default: break;
    }
    if (cls == C_OTHER || cls == C_BOOL || ((cls == C_INT || cls == C_UINT) && !un_int_ok(op)))
        return bad_type(k, x->elem);
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, x->rank, x->dims));
    int64_t n = qo_tensor_numel(x);
    int e = x->elem;
    if (cls == C_F32) {
        for (int64_t i = 0; i < n; i++) store_f32(out->data, e, i, un_f32(op, load_f32(x->data, e, i), &a));
    } else if (cls == C_F64) {
        const double *p = x->data;
        double *q = out->data;
        for (int64_t i = 0; i < n; i++) q[i] = un_f64(op, p[i], &a);
    } else {
        for (int64_t i = 0; i < n; i++) {
            int64_t v = qo_load_i64(x->data, e, i), r = v;
            switch (op) {
            case QO_OP_ABS: r = v < 0 ? (int64_t)(0 - (uint64_t)v) : v; break;
            case QO_OP_NEG: r = (int64_t)(0 - (uint64_t)v); break;
            case QO_OP_SIGN: r = cls == C_UINT ? (v != 0) : (v > 0) - (v < 0); break;
            case QO_OP_RELU: r = (cls == C_INT && v < 0) ? 0 : v; break;
            case QO_OP_SHRINK: {
                double dv = cls == C_UINT ? (double)(uint64_t)v : (double)v;
                double rv = dv < -(double)a.alpha ? dv + a.beta : dv > (double)a.alpha ? dv - a.beta : 0.0;
                r = (int64_t)rv;
                break;
            }
            default: break; /* Ceil/Floor/Round of an integer: itself */
            }
            qo_store_i64(out->data, e, i, r);
        }
    }
    return QO_OK;
}

/* IsNaN / IsInf (bool out), Not. */
static qo_status k_pred(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    qo_op op = (qo_op)qo_node_get(k->g, k->n)->op;
    int cls = elem_class(x->elem);
    if (op == QO_OP_NOT ? cls != C_BOOL : (cls != C_F32 && cls != C_F64)) return bad_type(k, x->elem);
    int dn = (int)qo_kattr_int(k, "detect_negative", 1), dp = (int)qo_kattr_int(k, "detect_positive", 1);
    QO_TRY(qo_tensor_make(k->cx, out, QO_BOOL, x->rank, x->dims));
    int64_t n = qo_tensor_numel(x);
    uint8_t *q = out->data;
    for (int64_t i = 0; i < n; i++) {
        if (op == QO_OP_NOT) {
            q[i] = !((const uint8_t *)x->data)[i];
            continue;
        }
        double v = qo_load_f64(x->data, x->elem, i);
        if (op == QO_OP_ISNAN) q[i] = isnan(v) != 0;
        else q[i] = isinf(v) && ((v > 0 && dp) || (v < 0 && dn));
    }
    return QO_OK;
}

/* ---- binary (broadcasting) ------------------------------------------------------------------ */
enum {
    B_ADD, B_SUB, B_MUL, B_DIV, B_MOD, B_FMOD, B_MIN, B_MAX, B_PRELU, B_AND, B_OR, B_XOR,
    B_EQ, B_LT, B_GT, B_LE, B_GE, B_SHL, B_SHR
};

static bool is_cmp(int b) { return b >= B_EQ && b <= B_GE; }

static float bin_f32(int b, float x, float y) {
    switch (b) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_FMOD: return fmodf(x, y);
    case B_MIN: return (isnan(x) || isnan(y)) ? NAN : (y < x ? y : x);
    case B_MAX: return (isnan(x) || isnan(y)) ? NAN : (y > x ? y : x);
    case B_PRELU: return x < 0 ? y * x : x;
    default: return 0;
    }
}
static double bin_f64(int b, double x, double y) {
    switch (b) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_FMOD: return fmod(x, y);
    case B_MIN: return (isnan(x) || isnan(y)) ? NAN : (y < x ? y : x);
    case B_MAX: return (isnan(x) || isnan(y)) ? NAN : (y > x ? y : x);
    case B_PRELU: return x < 0 ? y * x : x;
    default: return 0;
    }
}
/* Signed integers (computed in int64 with wrap-around). *err set on division by zero. */
static int64_t bin_i64(int b, int64_t x, int64_t y, int *err) {
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    switch (b) {
    case B_ADD: return (int64_t)(ux + uy);
    case B_SUB: return (int64_t)(ux - uy);
    case B_MUL: return (int64_t)(ux * uy);
    case B_DIV:
        if (y == 0) { *err = 1; return 0; }
        if (y == -1) return (int64_t)(0 - ux);
        return x / y;
    case B_MOD: case B_FMOD: {
        if (y == 0) { *err = 1; return 0; }
        if (y == -1) return 0;
        int64_t r = x % y;
        if (b == B_MOD && r != 0 && ((r < 0) != (y < 0))) r += y;
        return r;
    }
    case B_MIN: return y < x ? y : x;
    case B_MAX: return y > x ? y : x;
    case B_PRELU: return x < 0 ? (int64_t)(ux * uy) : x;
    default: return 0;
    }
}
static uint64_t bin_u64(int b, uint64_t x, uint64_t y, int *err, int bits) {
    switch (b) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: if (y == 0) { *err = 1; return 0; } return x / y;
    case B_MOD: case B_FMOD: if (y == 0) { *err = 1; return 0; } return x % y;
    case B_MIN: return y < x ? y : x;
    case B_MAX: return y > x ? y : x;
    case B_PRELU: return x;
    case B_AND: return x && y;
    case B_OR: return x || y;
    case B_XOR: return (x != 0) != (y != 0);
    case B_SHL: return y >= (uint64_t)bits ? 0 : x << y;
    case B_SHR: return y >= (uint64_t)bits ? 0 : x >> y;
    default: return 0;
    }
}

/* out[o] = a[ia] op b[ib] for one element; comparisons store bool. */
static int bin_elem(int b, int cls, int e, const void *pa, int64_t ia, const void *pb, int64_t ib, void *po,
                    int64_t io) {
    int err = 0;
    if (is_cmp(b)) {
        int r;
        if (cls == C_F32 || cls == C_F64) {
            double x = qo_load_f64(pa, e, ia), y = qo_load_f64(pb, e, ib);
            r = b == B_EQ ? x == y : b == B_LT ? x < y : b == B_GT ? x > y : b == B_LE ? x <= y : x >= y;
        } else if (cls == C_INT) {
            int64_t x = qo_load_i64(pa, e, ia), y = qo_load_i64(pb, e, ib);
            r = b == B_EQ ? x == y : b == B_LT ? x < y : b == B_GT ? x > y : b == B_LE ? x <= y : x >= y;
        } else {
            uint64_t x = load_u64(pa, e, ia), y = load_u64(pb, e, ib);
            r = b == B_EQ ? x == y : b == B_LT ? x < y : b == B_GT ? x > y : b == B_LE ? x <= y : x >= y;
        }
        ((uint8_t *)po)[io] = (uint8_t)r;
        return 0;
    }
    switch (cls) {
    case C_F32: store_f32(po, e, io, bin_f32(b, load_f32(pa, e, ia), load_f32(pb, e, ib))); break;
    case C_F64: ((double *)po)[io] = bin_f64(b, ((const double *)pa)[ia], ((const double *)pb)[ib]); break;
    case C_INT: qo_store_i64(po, e, io, bin_i64(b, qo_load_i64(pa, e, ia), qo_load_i64(pb, e, ib), &err)); break;
    default:
        qo_store_i64(po, e, io,
                     (int64_t)bin_u64(b, load_u64(pa, e, ia), load_u64(pb, e, ib), &err, qo_elem_bits(e)));
        break;
    }
    return err;
}

static qo_status check_same_elem(qo_kctx *k, const qo_tensor *a, const qo_tensor *b) {
    if (a->elem != b->elem)
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "inputs have different element types (%s and %s)",
                       qo_elem_name(a->elem) ? qo_elem_name(a->elem) : "?",
                       qo_elem_name(b->elem) ? qo_elem_name(b->elem) : "?");
    return QO_OK;
}

/* Which element classes each binary op accepts. */
static bool bin_type_ok(int b, int cls) {
    switch (b) {
    case B_AND: case B_OR: case B_XOR: return cls == C_BOOL;
    case B_SHL: case B_SHR: return cls == C_UINT;
    case B_FMOD: return cls != C_BOOL && cls != C_OTHER;
    case B_MOD: return cls == C_INT || cls == C_UINT;
    case B_EQ: return cls != C_OTHER;
    default: return cls != C_BOOL && cls != C_OTHER;
    }
}

static qo_status run_binary(qo_kctx *k, int b, const qo_tensor *x, const qo_tensor *y, qo_tensor *out) {
    QO_TRY(check_same_elem(k, x, y));
    int e = x->elem, cls = elem_class(e);
    if (!bin_type_ok(b, cls)) return bad_type(k, e);
    const qo_tensor *ops[2] = {x, y};
    int32_t rank;
    int64_t dims[QO_MAX_RANK];
    QO_TRY(qo_bcast_shape(k, ops, 2, &rank, dims));
    QO_TRY(qo_tensor_make(k->cx, out, is_cmp(b) ? QO_BOOL : e, rank, dims));
    int64_t n = qo_tensor_numel(out);
    qo_bcast it;
    qo_bcast_init(&it, rank, dims, ops, 2);
    int err = 0;
    for (int64_t i = 0; i < n; i++, qo_bcast_next(&it))
        err |= bin_elem(b, cls, e, x->data, it.off[0], y->data, it.off[1], out->data, i);
    if (err) {
        qo_tensor_free(out);
        return qo_kerr(k, QO_ERR_BACKEND, "integer division by zero");
    }
    return QO_OK;
}

static int binop_of(qo_kctx *k, qo_op op) {
    switch (op) {
    case QO_OP_ADD: case QO_OP_SUM: case QO_OP_MEAN: return B_ADD;
    case QO_OP_SUB: return B_SUB;
    case QO_OP_MUL: return B_MUL;
    case QO_OP_DIV: return B_DIV;
    case QO_OP_MOD: return qo_kattr_int(k, "fmod", 0) ? B_FMOD : B_MOD;
    case QO_OP_MIN: return B_MIN;
    case QO_OP_MAX: return B_MAX;
    case QO_OP_PRELU: return B_PRELU;
    case QO_OP_AND: return B_AND;
    case QO_OP_OR: return B_OR;
    case QO_OP_XOR: return B_XOR;
    case QO_OP_EQUAL: return B_EQ;
    case QO_OP_LESS: return B_LT;
    case QO_OP_GREATER: return B_GT;
    case QO_OP_LESSOREQUAL: return B_LE;
    case QO_OP_GREATEROREQUAL: return B_GE;
    default: return -1;
    }
}

static qo_status k_binary(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    qo_op op = (qo_op)qo_node_get(k->g, k->n)->op;
    if (nin != 2 || !in[0] || !in[1]) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s needs two inputs", opname(k));
    int b = binop_of(k, op);
    if (op == QO_OP_BITSHIFT) {
        char buf[16];
        const char *d = qo_kattr_str(k, "direction", buf, sizeof buf, "");
        if (strcmp(d, "LEFT") == 0) b = B_SHL;
        else if (strcmp(d, "RIGHT") == 0) b = B_SHR;
        else return qo_kerr(k, QO_ERR_INVALID_MODEL, "direction must be LEFT or RIGHT, not '%s'", d);
    }
    if (b == B_PRELU && k->opset < 7 && in[1]->rank == 1 && in[0]->rank >= 2 && in[1]->dims[0] != 1 &&
        in[1]->dims[0] == in[0]->dims[1]) {
        /* PRelu-6 and earlier: a 1-D slope of C entries is per channel (axis 1). */
        qo_tensor slope = *in[1];
        slope.owned = 0;
        slope.rank = in[0]->rank - 1;
        for (int32_t d = 1; d < slope.rank; d++) slope.dims[d] = 1;
        return run_binary(k, b, in[0], &slope, out);
    }
    if (b == B_MOD && (elem_class(in[0]->elem) == C_F32 || elem_class(in[0]->elem) == C_F64))
        return qo_kerr(k, QO_ERR_INVALID_MODEL, "Mod of floating-point inputs requires fmod=1");
    return run_binary(k, b, in[0], in[1], out);
}

/* Sum Mean Min Max: variadic, folded left to right into the full broadcast shape. */
static qo_status k_variadic(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    qo_op op = (qo_op)qo_node_get(k->g, k->n)->op;
    if (nin < 1) return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s needs at least one input", opname(k));
    for (uint32_t i = 0; i < nin; i++) {
        if (!in[i]) return qo_kerr(k, QO_ERR_INVALID_MODEL, "input %u is missing", i);
        QO_TRY(check_same_elem(k, in[0], in[i]));
    }
    int e = in[0]->elem, cls = elem_class(e), b = binop_of(k, op);
    if (!bin_type_ok(b, cls) || (op == QO_OP_MEAN && cls != C_F32 && cls != C_F64)) return bad_type(k, e);
    int32_t rank;
    int64_t dims[QO_MAX_RANK];
    QO_TRY(qo_bcast_shape(k, in, nin, &rank, dims));
    QO_TRY(qo_tensor_make(k->cx, out, e, rank, dims));
    int64_t n = qo_tensor_numel(out);
    size_t es = qo_rt_elem_size(e);
    qo_bcast it;
    qo_bcast_init(&it, rank, dims, in, 1);
    for (int64_t i = 0; i < n; i++, qo_bcast_next(&it))
        memcpy((uint8_t *)out->data + (size_t)i * es, (const uint8_t *)in[0]->data + (size_t)it.off[0] * es, es);
    for (uint32_t j = 1; j < nin; j++) {
        const qo_tensor *ops[2] = {out, in[j]};
        qo_bcast_init(&it, rank, dims, ops, 2);
        int err = 0;
        for (int64_t i = 0; i < n; i++, qo_bcast_next(&it))
            err |= bin_elem(b, cls, e, out->data, i, in[j]->data, it.off[1], out->data, i);
        (void)err; /* no division here */
    }
    if (op == QO_OP_MEAN)
        for (int64_t i = 0; i < n; i++) {
            if (cls == C_F64) ((double *)out->data)[i] /= (double)nin;
            else store_f32(out->data, e, i, load_f32(out->data, e, i) / (float)nin);
        }
    return QO_OK;
}

/* Pow: base and exponent types may differ; the result has the base's type. */
static qo_status k_pow(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0], *y = in[1];
    int cx = elem_class(x->elem), cy = elem_class(y->elem);
    if (cx == C_BOOL || cx == C_OTHER) return bad_type(k, x->elem);
    if (cy == C_BOOL || cy == C_OTHER) return bad_type(k, y->elem);
    const qo_tensor *ops[2] = {x, y};
    int32_t rank;
    int64_t dims[QO_MAX_RANK];
    QO_TRY(qo_bcast_shape(k, ops, 2, &rank, dims));
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, rank, dims));
    int64_t n = qo_tensor_numel(out);
    qo_bcast it;
    qo_bcast_init(&it, rank, dims, ops, 2);
    for (int64_t i = 0; i < n; i++, qo_bcast_next(&it)) {
        if (cx == C_F32 && y->elem == QO_F32) {
            store_f32(out->data, x->elem, i, powf(load_f32(x->data, x->elem, it.off[0]), ((const float *)y->data)[it.off[1]]));
            continue;
        }
        double b = qo_load_f64(x->data, x->elem, it.off[0]), p = qo_load_f64(y->data, y->elem, it.off[1]);
        double r = pow(b, p);
        if (cx == C_F32 || cx == C_F64) qo_store_f64(out->data, x->elem, i, r);
        else qo_store_i64(out->data, x->elem, i, isfinite(r) && fabs(r) < 0x1p63 ? (int64_t)r : INT64_MIN);
    }
    return QO_OK;
}

/* Where(cond, X, Y). */
static qo_status k_where(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    if (nin != 3 || !in[0] || !in[1] || !in[2]) return qo_kerr(k, QO_ERR_INVALID_MODEL, "Where needs three inputs");
    if (in[0]->elem != QO_BOOL) return qo_kerr(k, QO_ERR_INVALID_MODEL, "condition must be bool");
    QO_TRY(check_same_elem(k, in[1], in[2]));
    size_t es = qo_rt_elem_size(in[1]->elem);
    if (!es) return bad_type(k, in[1]->elem);
    int32_t rank;
    int64_t dims[QO_MAX_RANK];
    QO_TRY(qo_bcast_shape(k, in, 3, &rank, dims));
    QO_TRY(qo_tensor_make(k->cx, out, in[1]->elem, rank, dims));
    int64_t n = qo_tensor_numel(out);
    qo_bcast it;
    qo_bcast_init(&it, rank, dims, in, 3);
    for (int64_t i = 0; i < n; i++, qo_bcast_next(&it)) {
        bool c = ((const uint8_t *)in[0]->data)[it.off[0]] != 0;
        const qo_tensor *s = c ? in[1] : in[2];
        memcpy((uint8_t *)out->data + (size_t)i * es, (const uint8_t *)s->data + (size_t)it.off[c ? 1 : 2] * es, es);
    }
    return QO_OK;
}

/* ---- Clip ----------------------------------------------------------------------------------- */
static qo_status k_clip(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    int e = x->elem, cls = elem_class(e);
    if (cls == C_BOOL || cls == C_OTHER) return bad_type(k, e);
    const qo_tensor *bounds[2] = {nin > 1 ? in[1] : NULL, nin > 2 ? in[2] : NULL};
    for (int j = 0; j < 2; j++) {
        if (!bounds[j]) continue;
        QO_TRY(check_same_elem(k, x, bounds[j]));
        if (qo_tensor_numel(bounds[j]) != 1)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "%s must be a scalar (has %lld elements)", j ? "max" : "min",
                           (long long)qo_tensor_numel(bounds[j]));
    }
    QO_TRY(qo_tensor_make(k->cx, out, e, x->rank, x->dims));
    int64_t n = qo_tensor_numel(x);
    if (cls == C_F32 || cls == C_F64) {
        double lo = cls == C_F64 ? -DBL_MAX : -FLT_MAX, hi = -lo;
        if (k->opset < 11) {
            lo = qo_kattr_float(k, "min", -FLT_MAX);
            hi = qo_kattr_float(k, "max", FLT_MAX);
        }
        if (e == QO_F16) lo = -65504.0, hi = 65504.0;
        if (bounds[0]) lo = qo_load_f64(bounds[0]->data, e, 0);
        if (bounds[1]) hi = qo_load_f64(bounds[1]->data, e, 0);
        for (int64_t i = 0; i < n; i++) {
            double v = qo_load_f64(x->data, e, i);
            if (!isnan(v)) {
                if (v < lo) v = lo;
                if (v > hi) v = hi;
            }
            if (cls == C_F64) ((double *)out->data)[i] = v;
            else store_f32(out->data, e, i, (float)v);
        }
    } else if (cls == C_INT) {
        int bits = qo_elem_bits(e);
        int64_t lo = bits == 64 ? INT64_MIN : -((int64_t)1 << (bits - 1)), hi = bits == 64 ? INT64_MAX : ((int64_t)1 << (bits - 1)) - 1;
        if (bounds[0]) lo = qo_load_i64(bounds[0]->data, e, 0);
        if (bounds[1]) hi = qo_load_i64(bounds[1]->data, e, 0);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = qo_load_i64(x->data, e, i);
            if (v < lo) v = lo;
            if (v > hi) v = hi;
            qo_store_i64(out->data, e, i, v);
        }
    } else {
        uint64_t lo = 0, hi = UINT64_MAX;
        if (bounds[0]) lo = load_u64(bounds[0]->data, e, 0);
        if (bounds[1]) hi = load_u64(bounds[1]->data, e, 0);
        for (int64_t i = 0; i < n; i++) {
            uint64_t v = load_u64(x->data, e, i);
            if (v < lo) v = lo;
            if (v > hi) v = hi;
            qo_store_i64(out->data, e, i, (int64_t)v);
        }
    }
    return QO_OK;
}

/* ---- Cast / CastLike ------------------------------------------------------------------------ */
/* Float to integer as onnxruntime's static_cast compiles on x86-64 (cvttss2si/cvttsd2si):
 * truncation toward zero; a value outside the instruction's range (or NaN) gives its "integer
 * indefinite" (the minimum of the 32- or 64-bit width), then the result wraps to the target. */
static int64_t f2i_trunc(double d, int dst) {
    switch (dst) {
    case QO_I64: return (d >= -0x1p63 && d < 0x1p63) ? (int64_t)d : INT64_MIN;
    case QO_U32: { /* measured on onnxruntime 1.23: the unsigned split of cvttss2si, 32-bit */
        bool hi = d >= 0x1p31;
        double v = hi ? d - 0x1p31 : d;
        uint32_t r = (v > -2147483649.0 && v < 2147483648.0) ? (uint32_t)(int32_t)v : 0x80000000u;
        return (int64_t)(hi ? r ^ 0x80000000u : r);
    }
    case QO_U64:
        if (!(d >= 0x1p63)) return (d >= -0x1p63 && d < 0x1p63) ? (int64_t)d : INT64_MIN;
        if (d - 0x1p63 < 0x1p63) return (int64_t)((uint64_t)(int64_t)(d - 0x1p63) ^ 0x8000000000000000ull);
        return INT64_MIN;
    default: /* 32-bit conversion, then wrap to 8/16/32 bits */
        return (d > -2147483649.0 && d < 2147483648.0) ? (int64_t)(int32_t)d : INT32_MIN;
    }
}

static qo_status cast_to(qo_kctx *k, const qo_tensor *x, int to, qo_tensor *out) {
    int from = x->elem, cf = elem_class(from), ct = elem_class(to);
    if (cf == C_OTHER) return bad_type(k, from);
    if (ct == C_OTHER) return bad_type(k, to);
    QO_TRY(qo_tensor_make(k->cx, out, to, x->rank, x->dims));
    int64_t n = qo_tensor_numel(x);
    if (from == to) {
        if (n) memcpy(out->data, x->data, out->nbytes);
        return QO_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        if (cf == C_F32 || cf == C_F64) {
            double d = qo_load_f64(x->data, from, i);
            if (to == QO_F64) ((double *)out->data)[i] = d;
            else if (ct == C_F32) store_f32(out->data, to, i, (float)d); /* f64->f16 rounds through f32, as ORT */
            else if (ct == C_BOOL) ((uint8_t *)out->data)[i] = d != 0;
            else qo_store_i64(out->data, to, i, f2i_trunc(d, to));
        } else if (cf == C_UINT && from == QO_U64) {
            uint64_t u = load_u64(x->data, from, i);
            if (to == QO_F64) ((double *)out->data)[i] = (double)u;
            else if (ct == C_F32) store_f32(out->data, to, i, (float)u);
            else qo_store_i64(out->data, to, i, (int64_t)u);
        } else {
            int64_t v = qo_load_i64(x->data, from, i);
            if (to == QO_F64) ((double *)out->data)[i] = (double)v;
            else if (ct == C_F32) store_f32(out->data, to, i, (float)v);
            else qo_store_i64(out->data, to, i, v);
        }
    }
    return QO_OK;
}

static qo_status k_cast(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    int to;
    if (qo_node_get(k->g, k->n)->op == QO_OP_CASTLIKE) {
        if (nin < 2 || !in[1]) return qo_kerr(k, QO_ERR_INVALID_MODEL, "CastLike needs two inputs");
        to = in[1]->elem;
    } else {
        const qo_attr *a = qo_node_attr(k->g, k->n, "to");
        if (!a || a->kind != QO_ATTR_INT) return qo_kerr(k, QO_ERR_INVALID_MODEL, "missing int attribute 'to'");
        to = (int)a->u.i;
        if (a->u.i <= 0 || a->u.i >= QO_ELEM_COUNT)
            return qo_kerr(k, QO_ERR_INVALID_MODEL, "'to' is not a tensor element type (%lld)", (long long)a->u.i);
    }
    return cast_to(k, in[0], to, out);
}

/* ---- registration --------------------------------------------------------------------------- */
void qo_ref_register_elementwise(qo_ref_kernel *t) {
    static const qo_op unary[] = {
        QO_OP_ABS, QO_OP_NEG, QO_OP_SQRT, QO_OP_EXP, QO_OP_LOG, QO_OP_RECIPROCAL, QO_OP_FLOOR, QO_OP_CEIL,
        QO_OP_ROUND, QO_OP_ERF, QO_OP_TANH, QO_OP_SIGMOID, QO_OP_HARDSIGMOID, QO_OP_HARDSWISH, QO_OP_RELU,
        QO_OP_LEAKYRELU, QO_OP_ELU, QO_OP_SELU, QO_OP_CELU, QO_OP_THRESHOLDEDRELU, QO_OP_SOFTPLUS,
        QO_OP_SOFTSIGN, QO_OP_MISH, QO_OP_GELU, QO_OP_SHRINK, QO_OP_SIGN, QO_OP_SIN, QO_OP_COS, QO_OP_TAN,
        QO_OP_ASIN, QO_OP_ACOS, QO_OP_ATAN, QO_OP_SINH, QO_OP_COSH, QO_OP_ASINH, QO_OP_ACOSH, QO_OP_ATANH};
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++) t[unary[i]] = k_unary;
    static const qo_op binary[] = {
        QO_OP_ADD, QO_OP_SUB, QO_OP_MUL, QO_OP_DIV, QO_OP_MOD, QO_OP_PRELU, QO_OP_AND, QO_OP_OR, QO_OP_XOR,
        QO_OP_EQUAL, QO_OP_LESS, QO_OP_GREATER, QO_OP_LESSOREQUAL, QO_OP_GREATEROREQUAL, QO_OP_BITSHIFT};
    for (size_t i = 0; i < sizeof binary / sizeof binary[0]; i++) t[binary[i]] = k_binary;
    t[QO_OP_SUM] = t[QO_OP_MEAN] = t[QO_OP_MIN] = t[QO_OP_MAX] = k_variadic;
    t[QO_OP_ISNAN] = t[QO_OP_ISINF] = t[QO_OP_NOT] = k_pred;
    t[QO_OP_POW] = k_pow;
    t[QO_OP_WHERE] = k_where;
    t[QO_OP_CLIP] = k_clip;
    t[QO_OP_CAST] = t[QO_OP_CASTLIKE] = k_cast;
}
