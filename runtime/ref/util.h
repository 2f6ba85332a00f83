/* runtime/ref/util.h — helpers shared by the reference-kernel families (header-only: every function
 * is static inline, so no build change is needed to use it). Owned by the elementwise/quant engineer;
 * other kernel families are welcome to include it.
 *
 *   qo_kerr(k, code, fmt, ...)        error naming the node (file, node name, op) of kernel context k
 *   qo_kattr_int/float/str/ints(...)  attribute readers with defaults
 *   qo_bcast_shape(...)               numpy multidirectional broadcast of n input shapes
 *   qo_bcast (init/next)              odometer over an output shape giving each input's element
 *                                     offset (0 stride on broadcast dims), any rank <= QO_MAX_RANK
 *   qo_load_f64/qo_load_i64/qo_load_u64, qo_store_f64/qo_store_i64
 *                                     element access by qo_elem (f16/bf16 included)
 *   qo_f16_to_f32/qo_f32_to_f16, qo_bf16_to_f32/qo_f32_to_bf16  (round to nearest even)
 *   qo_rne(x), qo_round_apply(x, mode) rounding by qo_round mode, exact semantics of
 *                                     shared/REFERENCE.md §3.1/§4.1 (ties decided on the exact value)
 */
#ifndef QOPT_RUNTIME_REF_UTIL_H
#define QOPT_RUNTIME_REF_UTIL_H

#include "runtime/rt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- diagnostics ------------------------------------------------------------------------------ */
/* Reports an error located at the kernel's node and returns code. */
static inline qo_status qo_kerr(qo_kctx *k, qo_status code, const char *fmt, ...) QO_PRINTF(3, 4);
static inline qo_status qo_kerr(qo_kctx *k, qo_status code, const char *fmt, ...) {
    qo_loc loc = qo_node_loc(k->g, k->n);
    va_list ap;
    va_start(ap, fmt);
    qo_status s = qo_verror(k->cx, code, &loc, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- attributes ------------------------------------------------------------------------------- */
static inline int64_t qo_kattr_int(const qo_kctx *k, const char *name, int64_t dflt) {
    return qo_attr_int(k->g, k->n, name, dflt);
}
static inline float qo_kattr_float(const qo_kctx *k, const char *name, float dflt) {
    return qo_attr_float(k->g, k->n, name, dflt);
}
/* String attribute as a NUL-terminated copy into buf (truncated to cap-1); returns dflt when the
 * attribute is absent or not a string (then buf is untouched). */
static inline const char *qo_kattr_str(const qo_kctx *k, const char *name, char *buf, size_t cap,
                                       const char *dflt) {
    const qo_attr *a = qo_node_attr(k->g, k->n, name);
    if (!a || a->kind != QO_ATTR_STRING || cap == 0) return dflt;
    size_t n = a->u.s.n < cap - 1 ? a->u.s.n : cap - 1;
    memcpy(buf, a->u.s.p, n);
    buf[n] = 0;
    return buf;
}
/* INTS attribute: the array and its length in *n; NULL (and *n = 0) when absent or another kind. */
static inline const int64_t *qo_kattr_ints(const qo_kctx *k, const char *name, uint32_t *n) {
    const qo_attr *a = qo_node_attr(k->g, k->n, name);
    if (!a || a->kind != QO_ATTR_INTS) {
        *n = 0;
        return NULL;
    }
    *n = a->n;
    return a->u.is;
}

/* ---- broadcasting ----------------------------------------------------------------------------- */
#define QO_BCAST_MAX 4 /* operands one iterator follows; variadic ops fold pairwise */

/* Numpy multidirectional broadcast of the shapes of ts[0..n) (NULL entries skipped) into
 * *rank/dims. Reports incompatible extents as an error at the kernel's node. */
static inline qo_status qo_bcast_shape(qo_kctx *k, const qo_tensor *const *ts, uint32_t n, int32_t *rank,
                                       int64_t *dims) {
    int32_t r = 0;
    for (uint32_t i = 0; i < n; i++)
        if (ts[i] && ts[i]->rank > r) r = ts[i]->rank;
    for (int32_t d = 0; d < r; d++) dims[d] = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (!ts[i]) continue;
        int32_t off = r - ts[i]->rank;
        for (int32_t d = 0; d < ts[i]->rank; d++) {
            int64_t e = ts[i]->dims[d], *o = &dims[off + d];
            if (e == *o) continue;
            if (*o == 1) *o = e;
            else if (e != 1)
                return qo_kerr(k, QO_ERR_INVALID_MODEL,
                               "input %u: dimension %d has extent %lld, not broadcastable with %lld", i,
                               (int)d, (long long)e, (long long)*o);
        }
    }
    *rank = r;
    return QO_OK;
}

/* Odometer over an output shape; off[i] is the element offset of operand i at the current index. */
typedef struct qo_bcast {
    int32_t rank;
    uint32_t n;
    int64_t dims[QO_MAX_RANK];
    int64_t idx[QO_MAX_RANK];
    int64_t st[QO_BCAST_MAX][QO_MAX_RANK]; /* per-operand stride per output dim (0 = broadcast) */
    int64_t off[QO_BCAST_MAX];
} qo_bcast;

/* Sets up b over output shape (rank, dims) for operands ts[0..n) (n <= QO_BCAST_MAX; each must be
 * broadcastable to the shape; a NULL operand gets offset 0 always). */
static inline void qo_bcast_init(qo_bcast *b, int32_t rank, const int64_t *dims, const qo_tensor *const *ts,
                                 uint32_t n) {
    memset(b, 0, sizeof *b);
    b->rank = rank;
    b->n = n;
    for (int32_t d = 0; d < rank; d++) b->dims[d] = dims[d];
    for (uint32_t i = 0; i < n; i++) {
        if (!ts[i]) continue;
        int64_t s = 1;
        int32_t off = rank - ts[i]->rank;
        for (int32_t d = ts[i]->rank - 1; d >= 0; d--) {
            b->st[i][off + d] = ts[i]->dims[d] == 1 ? 0 : s;
            s *= ts[i]->dims[d];
        }
    }
}

/* Advances to the next output index (row-major). */
static inline void qo_bcast_next(qo_bcast *b) {
    for (int32_t d = b->rank - 1; d >= 0; d--) {
        if (++b->idx[d] < b->dims[d]) {
            for (uint32_t i = 0; i < b->n; i++) b->off[i] += b->st[i][d];
            return;
        }
        b->idx[d] = 0;
        for (uint32_t i = 0; i < b->n; i++) b->off[i] -= b->st[i][d] * (b->dims[d] - 1);
    }
}

/* ---- half-precision conversions --------------------------------------------------------------- */
static inline uint32_t qo_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float qo_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline float qo_f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) return qo_bits_f32(s | 0x7f800000u | (m << 13));
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* subnormal (exact) */
        return s ? -v : v;
    }
    return qo_bits_f32(s | ((e + 112) << 23) | (m << 13));
}
/* Round to nearest even; overflow to inf; NaN stays a (quiet) NaN. */
static inline uint16_t qo_f32_to_f16(float f) {
    uint32_t u = qo_f32_bits(f);
    uint16_t s = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return (uint16_t)(s | 0x7c00 | (a > 0x7f800000u ? 0x200 | ((a >> 13) & 0x3ff) : 0));
    if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00); /* >= 65520 rounds to inf */
    if (a < 0x38800000u) {                                /* below 2^-14: subnormal half */
        if (a < 0x33000000u) return s;                    /* < 2^-25: rounds to 0 */
        uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* value = m * 2^(e-150); half subnormal unit 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), halfw = 1u << (shift - 1);
        if (rem > halfw || (rem == halfw && (q & 1))) q++;
        return (uint16_t)(s | q);
    }
    uint32_t r = a + 0xfff + ((a >> 13) & 1); /* RNE on the 13 dropped bits */
    return (uint16_t)(s | ((r - 0x38000000u) >> 13));
}
static inline float qo_bf16_to_f32(uint16_t h) { return qo_bits_f32((uint32_t)h << 16); }
static inline uint16_t qo_f32_to_bf16(float f) {
    uint32_t u = qo_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* ---- element access --------------------------------------------------------------------------- */
static inline bool qo_elem_is_float(int e) {
    return e == QO_F32 || e == QO_F64 || e == QO_F16 || e == QO_BF16;
}
static inline bool qo_elem_is_unsigned(int e) {
    return e == QO_U8 || e == QO_U16 || e == QO_U32 || e == QO_U64 || e == QO_U4 || e == QO_BOOL;
}
static inline bool qo_elem_is_int(int e) {
    return e == QO_U8 || e == QO_I8 || e == QO_U16 || e == QO_I16 || e == QO_I32 || e == QO_I64 ||
           e == QO_U32 || e == QO_U64 || e == QO_U4 || e == QO_I4;
}

/* Element i of p (type e) as a double (integers convert as C does). */
static inline double qo_load_f64(const void *p, int e, int64_t i) {
    switch (e) {
    case QO_F32: return ((const float *)p)[i];
    case QO_F64: return ((const double *)p)[i];
    case QO_F16: return qo_f16_to_f32(((const uint16_t *)p)[i]);
    case QO_BF16: return qo_bf16_to_f32(((const uint16_t *)p)[i]);
    case QO_U8: case QO_U4: case QO_BOOL: return ((const uint8_t *)p)[i];
    case QO_I8: case QO_I4: return ((const int8_t *)p)[i];
    case QO_U16: return ((const uint16_t *)p)[i];
    case QO_I16: return ((const int16_t *)p)[i];
    case QO_I32: return ((const int32_t *)p)[i];
    case QO_I64: return (double)((const int64_t *)p)[i];
    case QO_U32: return ((const uint32_t *)p)[i];
    case QO_U64: return (double)((const uint64_t *)p)[i];
    default: return 0;
    }
}
/* Element i of an integer/bool tensor as int64 (uint64 reinterpreted); floats truncate. */
static inline int64_t qo_load_i64(const void *p, int e, int64_t i) {
    switch (e) {
    case QO_U8: case QO_U4: case QO_BOOL: return ((const uint8_t *)p)[i];
    case QO_I8: case QO_I4: return ((const int8_t *)p)[i];
    case QO_U16: return ((const uint16_t *)p)[i];
    case QO_I16: return ((const int16_t *)p)[i];
    case QO_I32: return ((const int32_t *)p)[i];
    case QO_I64: return ((const int64_t *)p)[i];
    case QO_U32: return ((const uint32_t *)p)[i];
    case QO_U64: return (int64_t)((const uint64_t *)p)[i];
    default: return (int64_t)qo_load_f64(p, e, i);
    }
}
/* Stores v into element i of a float tensor (f32/f64/f16/bf16; f16/bf16 round through float). */
static inline void qo_store_f64(void *p, int e, int64_t i, double v) {
    switch (e) {
    case QO_F32: ((float *)p)[i] = (float)v; break;
    case QO_F64: ((double *)p)[i] = v; break;
    case QO_F16: ((uint16_t *)p)[i] = qo_f32_to_f16((float)v); break;
    case QO_BF16: ((uint16_t *)p)[i] = qo_f32_to_bf16((float)v); break;
    default: break;
    }
}
/* Stores the low bits of v into element i of an integer/bool tensor (two's complement wrap; bool
 * stores v != 0; 4-bit types keep the low nibble sign- or zero-extended). */
static inline void qo_store_i64(void *p, int e, int64_t i, int64_t v) {
    switch (e) {
    case QO_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case QO_I8: ((int8_t *)p)[i] = (int8_t)(uint8_t)v; break;
    case QO_U4: ((uint8_t *)p)[i] = (uint8_t)(v & 0xf); break;
    case QO_I4: ((int8_t *)p)[i] = (int8_t)((v & 0x8) ? (v & 0xf) - 16 : (v & 0xf)); break; /* sign-extend the low nibble */
    case QO_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case QO_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case QO_I16: ((int16_t *)p)[i] = (int16_t)(uint16_t)v; break;
    case QO_I32: ((int32_t *)p)[i] = (int32_t)(uint32_t)v; break;
    case QO_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case QO_I64: ((int64_t *)p)[i] = v; break;
    case QO_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    default: break;
    }
}

/* ---- rounding ----------------------------------------------------------------------------------- */
/* Round half to even on the exact value (never C round()); NaN/inf pass through; keeps -0.
 * The tie test compares x with floor(x) + 0.5, which is exact for |x| < 2^23 (x - floor(x) is not:
 * for x in (-1, 0) it can round onto 0.5). */
static inline float qo_rne(float x) {
    if (!(fabsf(x) < 0x1p23f)) return x; /* already integral, inf or NaN */
    float f = floorf(x), h = f + 0.5f;   /* both exact */
    float r;
    if (x > h) r = f + 1.0f;
    else if (x < h) r = f;
    else r = fmodf(f, 2.0f) == 0.0f ? f : f + 1.0f;
    return r == 0.0f ? copysignf(0.0f, x) : r;
}

/* Rounds x to an integral float by mode (qo_round of ir/ir.h), ties decided on the exact value:
 *   HALF_EVEN ties to even; HALF_UP ties away from zero (qonnx); HALF_DOWN ties toward zero;
 *   CEIL; FLOOR; UP away from zero; DOWN toward zero; HALF_POS_INF all ties toward +inf (Vitis
 *   half_up); DPU negative ties toward +inf, other values to nearest even (Brevitas dpu_round).
 * NaN and infinities pass through. */
static inline float qo_round_apply(float x, qo_round mode) {
    if (mode == QO_ROUND_HALF_EVEN) return qo_rne(x); /* the common case, without the tie setup below */
    if (!(fabsf(x) < 0x1p23f)) return x;
    float f = floorf(x), h = f + 0.5f, r; /* exact: x is above, below or on the midpoint h */
    int side = x > h ? 1 : x < h ? -1 : 0;
    switch (mode) {
    case QO_ROUND_HALF_EVEN: return qo_rne(x);
    case QO_ROUND_HALF_UP: r = side > 0 ? f + 1 : side < 0 ? f : (x < 0 ? f : f + 1); break;
    case QO_ROUND_HALF_DOWN: r = side > 0 ? f + 1 : side < 0 ? f : (x < 0 ? f + 1 : f); break;
    case QO_ROUND_CEIL: r = ceilf(x); break;
    case QO_ROUND_FLOOR: r = f; break;
    case QO_ROUND_UP: r = x < 0 ? f : ceilf(x); break;
    case QO_ROUND_DOWN: r = truncf(x); break;
    case QO_ROUND_HALF_POS_INF: r = side >= 0 ? f + 1 : f; break;
    case QO_ROUND_DPU:
        if (x < 0 && side == 0) r = f + 1;
        else return qo_rne(x);
        break;
    default: return qo_rne(x);
    }
    return r == 0.0f ? copysignf(0.0f, x) : r;
}

#endif
