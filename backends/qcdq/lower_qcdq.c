/* backends/qcdq/lower_qcdq.c — lower-qcdq: Quant nodes -> QuantizeLinear/[Clip]/DequantizeLinear
 * (qcdq.h has the rules and the numerics). Every node is checked before anything is rewritten, so a
 * failing lowering leaves the module unchanged. */
#include "backends/qcdq/qcdq.h"

#include "passes/pass_impl.h"
#include "passes/quant/qgraph.h"
#include "runtime/ref/util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* qonnx integer range of (bits, signed, narrow). */
static void int_range(int bits, bool is_signed, bool narrow, int64_t *lo, int64_t *hi) {
    if (is_signed) {
        *lo = -((int64_t)1 << (bits - 1)) + (narrow ? 1 : 0);
        *hi = ((int64_t)1 << (bits - 1)) - 1;
    } else {
        *lo = 0;
        *hi = ((int64_t)1 << bits) - (narrow ? 2 : 1);
    }
}

static bool elem_range(qo_elem e, int64_t *lo, int64_t *hi) {
    switch (e) {
    case QO_I8: *lo = -128; *hi = 127; return true;
    case QO_U8: *lo = 0; *hi = 255; return true;
    case QO_I16: *lo = -32768; *hi = 32767; return true;
    case QO_U16: *lo = 0; *hi = 65535; return true;
    case QO_I32: *lo = INT32_MIN; *hi = INT32_MAX; return true;
    default: return false;
    }
}

static void store_int(void *p, qo_elem e, int64_t i, int64_t v) {
    switch (e) {
    case QO_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case QO_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case QO_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case QO_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    default: ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

/* What one Quant node becomes: decided (and checked) before anything is rewritten. */
typedef struct plan {
    qo_node n;
    qo_qparams p;
    bool is_const;   /* x is a constant: quantized now, stored as integers */
    qo_elem store;   /* integer element type of the stored / QuantizeLinear tensor */
    bool clip;
    bool fold_zp;    /* int32 constant: store q - zp, zero point 0 */
} plan;

/* Constant data of v: an initializer or Constant, or a graph input's default initializer (Brevitas's
 * QONNX export lists biases as graph inputs; its QCDQ export stores them as initializers, as we do). */
static const qo_constdata *xconst(const qo_graph *g, qo_val v) {
    const qo_constdata *c = qo_pass_val_const(g, v);
    if (c) return c;
    const qo_value *vd = &g->vals[v];
    if ((vd->flags & QO_VAL_INPUT) && vd->cref && !(vd->flags & QO_VAL_DEAD) && g->index == g->parent)
        return qo_const_get(g->m, vd->cref);
    return NULL;
}

static bool val_is_const(const qo_graph *g, qo_val v) { return xconst(g, v) != NULL; }

/* Checks Quant node n and fills pl. Errors name the node. */
static qo_status plan_quant(qo_ctx *cx, qo_graph *g, qo_node n, int opset, plan *pl) {
    memset(pl, 0, sizeof *pl);
    pl->n = n;
    if (qo_qnode_is_pending(g, n)) {
        qo_loc loc = qo_node_loc(g, n);
        return qo_error(cx, QO_ERR_USAGE, &loc, "quantizer has no scale yet (run calibrate / quant-bias before lower-qcdq)");
    }
    QO_TRY(qo_qnode_read(cx, g, n, &pl->p));
    const qo_qparams *p = &pl->p;
    qo_loc loc = qo_node_loc(g, n);
    pl->is_const = val_is_const(g, qo_node_input(g, n, 0));
    qo_status st = QO_OK;
    if (pl->is_const) {
        /* Quantized at compile time with the Quant node's own semantics: any rounding mode is exact. */
        if (p->bits <= 8) {
            pl->store = p->is_signed || (p->bits == 1 && p->is_signed) ? QO_I8 : QO_U8;
            pl->clip = p->narrow || p->bits != 8;
            int64_t lo, hi;
            elem_range(pl->store, &lo, &hi);
            for (uint32_t i = 0; i < p->n; i++)
                if (p->zps[i] < lo || p->zps[i] > hi)
                    st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                                  "zero point %d does not fit the %s weights of QCDQ (use --format qonnx)",
                                  (int)p->zps[i], qo_elem_name(pl->store));
        } else {
            if (!p->is_signed && p->bits >= 32)
                st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                              "unsigned 32-bit constants cannot be stored as int32 QCDQ (use --format qonnx)");
            pl->store = QO_I32;
            pl->fold_zp = true;
        }
        if (st != QO_OK) qo_qparams_free(&pl->p);
        return st;
    }
    const char *why = NULL;
    char buf[160];
    if (p->round != QO_ROUND_HALF_EVEN) {
        snprintf(buf, sizeof buf,
                 "rounding_mode %s cannot be written as QCDQ: QuantizeLinear rounds half to even",
                 qo_round_qonnx_name((qo_round)p->round));
        why = buf;
    } else if (p->bits == 1) {
        why = "1-bit quantizers cannot be written as QCDQ (Brevitas refuses them too)";
    } else if (p->bits > 16 || (p->bits > 8 && opset < 21)) {
        snprintf(buf, sizeof buf,
                 "%s %d-bit activations cannot be written as QCDQ at opset %d (8 bits at most; 16 at opset 21)",
                 p->is_signed ? "signed" : "unsigned", p->bits, opset);
        why = buf;
    }
    if (why) {
        qo_qparams_free(&pl->p);
        return qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "%s; use --format qonnx", why);
    }
    bool wide = p->bits > 8;
    pl->store = p->is_signed ? (wide ? QO_I16 : QO_I8) : (wide ? QO_U16 : QO_U8);
    pl->clip = p->narrow || p->bits != (wide ? 16 : 8);
    if (wide && pl->clip && p->axis >= 0) {
        qo_qparams_free(&pl->p);
        return qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                        "per-channel %d-bit activations cannot be written as QCDQ (onnxruntime has no int16 Clip; "
                        "the float Clip used instead takes one range); use --format qonnx",
                        p->bits);
    }
    int64_t lo, hi;
    elem_range(pl->store, &lo, &hi);
    bool zp = false;
    for (uint32_t i = 0; i < p->n; i++) {
        zp |= p->zps[i] != 0;
        if (p->zps[i] < lo || p->zps[i] > hi) {
            st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "zero point %d does not fit %s; use --format qonnx",
                          (int)p->zps[i], qo_elem_name(pl->store));
            break;
        }
    }
    if (st == QO_OK && zp)
        qo_note(cx, &loc,
                "zero point != 0: QuantizeLinear adds it after rounding, Quant before (REFERENCE.md "
                "\u00a74.2.2); the QCDQ file can differ by one step near ties");
    if (st != QO_OK) qo_qparams_free(&pl->p);
    return st;
}

/* Shape of x (for per-axis rank and the QuantizeLinear result type). */
static const qo_typedata *tensor_type(const qo_graph *g, qo_val v) {
    const qo_typedata *td = qo_type_get(g->m, g->vals[v].type);
    return td && td->kind == QO_TY_TENSOR ? td : NULL;
}

/* Quantizes the constant x of a Quant node with exactly the reference kernel's formula. */
static qo_status quantize_const(qo_ctx *cx, qo_graph *g, const plan *pl, int64_t **out, int64_t *count,
                                int32_t *rank, int64_t *dims) {
    const qo_qparams *p = &pl->p;
    qo_val x = qo_node_input(g, pl->n, 0);
    const qo_constdata *c = xconst(g, x);
    const qo_typedata *td = qo_type_get(g->m, c->type);
    int64_t n = qo_type_numel(g->m, c->type);
    qo_loc loc = qo_node_loc(g, pl->n);
    if (n < 0 || td->rank > QO_MAX_RANK) return qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "constant input has no static shape");
    *rank = td->rank;
    for (int32_t i = 0; i < td->rank; i++) dims[i] = td->dims[i];
    float *xf = qo_malloc(sizeof(float) * (size_t)(n ? n : 1));
    bool f32 = td->elem == QO_F32 && c->nbytes == (size_t)n * 4;
    if (f32) memcpy(xf, c->data, (size_t)n * 4);
    if (!f32 && qo_pass_const_floats(g, x, xf, n) != n) {
        qo_free(xf);
        return qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "constant input is not a float tensor");
    }
    int64_t inner = 1;
    if (p->axis >= 0) {
        if (p->axis >= td->rank || td->dims[p->axis] != (int64_t)p->n) {
            qo_free(xf);
            return qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "per-channel scale does not match the constant's shape");
        }
        for (int32_t d = p->axis + 1; d < td->rank; d++) inner *= td->dims[d];
    }
    int64_t lo, hi;
    int_range(p->bits, p->is_signed, p->narrow, &lo, &hi);
    float flo = (float)lo, fhi = (float)hi;
    bool bipolar = p->bits == 1 && p->is_signed;
    int64_t *q = qo_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    qo_status st = QO_OK;
    int64_t ch = 0, left = inner; /* channel of element i, and elements left in its run */
    for (int64_t i = 0; i < n && st == QO_OK; i++) {
        if (p->axis >= 0 && left-- == 0) {
            left = inner - 1;
            if (++ch == (int64_t)p->n) ch = 0;
        }
        float s = p->scales[ch], z = (float)p->zps[ch];
        float y = xf[i] / s;
        y = y + z;
        if (bipolar) {
            y = y >= 0 ? 1.0f : -1.0f;
        } else {
            y = y > fhi ? fhi : y;
            y = y < flo ? flo : y;
            y = qo_round_apply(y, (qo_round)p->round);
        }
        if (!(fabsf(y) <= 2147483648.0f)) {
            st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "constant element %lld is %g after quantization (NaN or out of range)",
                          (long long)i, (double)y);
            break;
        }
        q[i] = (int64_t)y;
        if (pl->fold_zp) {
            q[i] -= p->zps[ch];
            if (q[i] < INT32_MIN || q[i] > INT32_MAX)
                st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "quantized constant element %lld does not fit int32",
                              (long long)i);
        }
    }
    qo_free(xf);
    if (st != QO_OK) {
        qo_free(q);
        return st;
    }
    *out = q;
    *count = n;
    return QO_OK;
}

/* Scale / zero-point constants of the Q/DQ nodes: rank 0, or 1-D along the axis. */
static void qdq_params(qo_graph *g, const plan *pl, const char *base, bool zero_zp, qo_val *sv, qo_val *zv) {
    const qo_qparams *p = &pl->p;
    int64_t dim = p->n;
    int32_t rank = p->axis >= 0 ? 1 : 0;
    *sv = qo_pass_add_const_named(g, base, "_scale", QO_F32, rank, &dim, p->scales);
    void *zb = qo_calloc(p->n, 4);
    if (!zero_zp)
        for (uint32_t i = 0; i < p->n; i++) store_int(zb, pl->store, i, p->zps[i]);
    *zv = qo_pass_add_const_named(g, base, "_zero_point", pl->store, rank, &dim, zb);
    qo_free(zb);
}

static qo_node add_node(qo_graph *g, qo_op op, const char *base, const char *suffix, uint32_t nin, const qo_val *ins) {
    qo_node k = qo_node_new(g, op, NULL, NULL, nin, ins, 1);
    char nm[512];
    snprintf(nm, sizeof nm, "%s/%s", base, suffix);
    qo_node_set_name(g, k, nm);
    char *vn = qo_pass_fresh_name(g, nm, "_output_0");
    qo_val_set_name(g, qo_node_output(g, k, 0), vn);
    qo_free(vn);
    return k;
}

/* Node name prefix for the lowered nodes: the Quant node's name minus a trailing "/Quant". */
static void node_base(const qo_graph *g, qo_node n, char *buf, size_t cap) {
    const char *nm = qo_node_name(g, n);
    if (!nm[0]) nm = qo_val_name(g, qo_node_output(g, n, 0));
    if (!nm[0]) nm = "quant";
    snprintf(buf, cap, "%s", nm);
    size_t l = strlen(buf);
    if (l > 6 && strcmp(buf + l - 6, "/Quant") == 0) buf[l - 6] = 0;
}

/* Rewrites the planned Quant node. */
static qo_status lower_one(qo_ctx *cx, qo_graph *g, plan *pl) {
    qo_node n = pl->n;
    const qo_qparams *p = &pl->p;
    char base[400];
    node_base(g, n, base, sizeof base);
    qo_val x = qo_node_input(g, n, 0), y = qo_node_output(g, n, 0);
    qo_val oldin[4] = {x, qo_node_input(g, n, 1), qo_node_input(g, n, 2), qo_node_input(g, n, 3)};
    qo_node saved = g->insert_before;
    g->insert_before = n;
    qo_val sv, zv, iv;
    int64_t lo, hi;
    int_range(p->bits, p->is_signed, p->narrow, &lo, &hi);
    if (p->bits == 1 && p->is_signed) lo = -1, hi = 1; /* bipolar constants: -1 / +1 */
    if (pl->is_const) {
        int64_t *q = NULL, cnt = 0, dims[QO_MAX_RANK];
        int32_t rank = 0;
        qo_status st = quantize_const(cx, g, pl, &q, &cnt, &rank, dims);
        if (st != QO_OK) {
            g->insert_before = saved;
            return st;
        }
        void *buf = qo_calloc((size_t)(cnt ? cnt : 1), 4);
        for (int64_t i = 0; i < cnt; i++) store_int(buf, pl->store, i, q[i]);
        qo_free(q);
        const char *xn = qo_val_name(g, x);
        char ib[400];
        snprintf(ib, sizeof ib, "%s", xn[0] ? xn : base);
        size_t il = strlen(ib);
        if (il > 6 && strcmp(ib + il - 6, "_float") == 0) ib[il - 6] = 0; /* import-quant's name for it */
        iv = qo_pass_add_const_named(g, ib, "_int", pl->store, rank, dims, buf);
        qo_free(buf);
        qdq_params(g, pl, base, pl->fold_zp, &sv, &zv);
    } else {
        qdq_params(g, pl, base, false, &sv, &zv);
        qo_val qin[3] = {x, sv, zv};
        qo_node qn = add_node(g, QO_OP_QUANTIZELINEAR, base, "QuantizeLinear", 3, qin);
        if (p->axis >= 0) qo_node_set_attr_int(g, qn, "axis", p->axis);
        iv = qo_node_output(g, qn, 0);
        const qo_typedata *tx = tensor_type(g, x);
        if (tx) g->vals[iv].type = qo_type_tensor(g->m, pl->store, tx->rank, tx->dims, tx->syms);
    }
    bool float_clip = !pl->is_const && (pl->store == QO_I16 || pl->store == QO_U16) && pl->clip;
    if (pl->clip && pl->store != QO_I32 && !float_clip) {
        uint8_t lb[4] = {0}, hb[4] = {0};
        store_int(lb, pl->store, 0, lo);
        store_int(hb, pl->store, 0, hi);
        qo_val cin[3] = {iv, qo_pass_add_const_named(g, base, "_clip_min", pl->store, 0, NULL, lb),
                         qo_pass_add_const_named(g, base, "_clip_max", pl->store, 0, NULL, hb)};
        qo_node cn = add_node(g, QO_OP_CLIP, base, "Clip", 3, cin);
        qo_val cv = qo_node_output(g, cn, 0);
        g->vals[cv].type = g->vals[iv].type;
        iv = cv;
    }
    qo_val din[3] = {iv, sv, zv};
    qo_node dn = add_node(g, QO_OP_DEQUANTIZELINEAR, base, "DequantizeLinear", 3, din);
    if (p->axis >= 0) qo_node_set_attr_int(g, dn, "axis", p->axis);
    qo_val d = qo_node_output(g, dn, 0);
    if (float_clip) {
        /* onnxruntime has no int16/uint16 Clip: clamp after DequantizeLinear instead, with the dequantized
         * bounds. DequantizeLinear is monotonic, so Clip(DQ(q), DQ(lo), DQ(hi)) == DQ(Clip(q, lo, hi)). */
        float flo = (float)(lo - p->zps[0]) * p->scales[0], fhi = (float)(hi - p->zps[0]) * p->scales[0];
        g->vals[d].type = g->vals[y].type ? qo_type_with_quant(g->m, g->vals[y].type, NULL) : 0;
        qo_val cin[3] = {d, qo_pass_add_const_named(g, base, "_clip_min", QO_F32, 0, NULL, &flo),
                         qo_pass_add_const_named(g, base, "_clip_max", QO_F32, 0, NULL, &fhi)};
        d = qo_node_output(g, add_node(g, QO_OP_CLIP, base, "Clip", 3, cin), 0);
    }
    g->insert_before = saved;
    /* the DequantizeLinear result takes the Quant result's place: uses, name, type (with qo_quant) */
    qo_replace_all_uses(g, y, d);
    char *yname = qo_strdup(qo_val_name(g, y));
    qo_type yt = g->vals[y].type;
    uint16_t info = g->vals[y].flags & QO_VAL_INFO;
    qo_node_erase(g, n);
    qo_val_set_name(g, d, yname);
    qo_free(yname);
    g->vals[d].type = yt;
    g->vals[d].flags |= info;
    for (int i = 0; i < 4; i++) qo_pass_drop_unused_const(g, oldin[i]);
    /* a graph input with a default that only this quantizer read: now an integer initializer */
    if (pl->is_const && (g->vals[x].flags & QO_VAL_INPUT) && !g->vals[x].nuses) qo_val_erase(g, x);
    return QO_OK;
}

/* ---- Trunc: the exact float formula of runtime/ref/quant.c (k_trunc) ---------------------------- */
static bool scalar_float(const qo_graph *g, qo_val v, float *out) {
    return v && qo_pass_const_floats(g, v, out, 1) == 1;
}

static qo_status check_trunc(qo_ctx *cx, const qo_graph *g, qo_node n) {
    qo_loc loc = qo_node_loc(g, n);
    uint32_t nin = g->nodes[n].nin;
    float s, z, a, b, os = 1;
    bool v2 = nin >= 6 && qo_node_input(g, n, 5);
    if (!scalar_float(g, qo_node_input(g, n, 1), &s) || !scalar_float(g, qo_node_input(g, n, 2), &z) ||
        !scalar_float(g, qo_node_input(g, n, 3), &a) || !scalar_float(g, qo_node_input(g, n, v2 ? 5 : 4), &b) ||
        (v2 && !scalar_float(g, qo_node_input(g, n, 4), &os)))
        return qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                        "Trunc needs per-tensor constant scale, zero point, bit widths (and output scale); "
                        "use --format qonnx");
    char buf[32];
    const qo_attr *ra = qo_node_attr(g, n, "rounding_mode");
    int rm = QO_ROUND_FLOOR;
    if (ra && ra->kind == QO_ATTR_STRING) {
        size_t len = ra->u.s.n < sizeof buf - 1 ? ra->u.s.n : sizeof buf - 1;
        memcpy(buf, ra->u.s.p, len);
        buf[len] = 0;
        rm = qo_round_from_name(buf);
    }
    if (rm != QO_ROUND_HALF_EVEN && rm != QO_ROUND_FLOOR && rm != QO_ROUND_CEIL)
        return qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                        "Trunc rounding_mode %s has no ONNX operator (Round, Floor and Ceil do); use --format qonnx",
                        rm < 0 ? "?" : qo_round_qonnx_name((qo_round)rm));
    return QO_OK;
}

static qo_val binop(qo_graph *g, qo_op op, const char *base, const char *sfx, qo_val a, qo_val b, qo_type t) {
    qo_val ins[2] = {a, b};
    qo_node k = add_node(g, op, base, sfx, b ? 2 : 1, ins);
    qo_val r = qo_node_output(g, k, 0);
    g->vals[r].type = t;
    return r;
}

static void lower_trunc(qo_graph *g, qo_node n) {
    uint32_t nin = g->nodes[n].nin;
    bool v2 = nin >= 6 && qo_node_input(g, n, 5);
    float s, z, inb, outb, os = 0;
    scalar_float(g, qo_node_input(g, n, 1), &s);
    scalar_float(g, qo_node_input(g, n, 2), &z);
    scalar_float(g, qo_node_input(g, n, 3), &inb);
    scalar_float(g, qo_node_input(g, n, v2 ? 5 : 4), &outb);
    if (v2) scalar_float(g, qo_node_input(g, n, 4), &os);
    const qo_attr *ra = qo_node_attr(g, n, "rounding_mode");
    int rm = QO_ROUND_FLOOR;
    if (ra && ra->kind == QO_ATTR_STRING) {
        char buf[32];
        size_t len = ra->u.s.n < sizeof buf - 1 ? ra->u.s.n : sizeof buf - 1;
        memcpy(buf, ra->u.s.p, len);
        buf[len] = 0;
        rm = qo_round_from_name(buf);
    }
    qo_op rop = rm == QO_ROUND_FLOOR ? QO_OP_FLOOR : rm == QO_ROUND_CEIL ? QO_OP_CEIL : QO_OP_ROUND;
    char base[400];
    node_base(g, n, base, sizeof base);
    size_t l = strlen(base);
    if (l > 6 && strcmp(base + l - 6, "/Trunc") == 0) base[l - 6] = 0;
    qo_val x = qo_node_input(g, n, 0), y = qo_node_output(g, n, 0);
    qo_val oldin[6];
    for (uint32_t i = 0; i < 6; i++) oldin[i] = i < nin ? qo_node_input(g, n, i) : 0;
    qo_type t = g->vals[y].type ? qo_type_with_quant(g->m, g->vals[y].type, NULL) : 0;
    qo_node saved = g->insert_before;
    g->insert_before = n;
    qo_val sv = qo_pass_add_const_named(g, base, "_trunc_scale", QO_F32, 0, NULL, &s);
    qo_val zv = qo_pass_add_const_named(g, base, "_trunc_zeropt", QO_F32, 0, NULL, &z);
    qo_val v = binop(g, QO_OP_DIV, base, "Div", x, sv, t);
    v = binop(g, QO_OP_ADD, base, "Add", v, zv, t);
    v = binop(g, QO_OP_ROUND, base, "Round", v, 0, t);
    qo_val last;
    if (v2) {
        float tt = exp2f(qo_rne(log2f(os / s)));
        float zt = z / tt;
        int64_t lo, hi;
        int_range((int)outb, qo_attr_int(g, n, "signed", 1) != 0, qo_attr_int(g, n, "narrow", 0) != 0, &lo, &hi);
        float flo = (float)lo, fhi = (float)hi;
        v = binop(g, QO_OP_DIV, base, "Div_1", v, qo_pass_add_const_named(g, base, "_trunc_div", QO_F32, 0, NULL, &tt), t);
        qo_val cin[3] = {v, qo_pass_add_const_named(g, base, "_trunc_min", QO_F32, 0, NULL, &flo),
                         qo_pass_add_const_named(g, base, "_trunc_max", QO_F32, 0, NULL, &fhi)};
        qo_node cn = add_node(g, QO_OP_CLIP, base, "Clip", 3, cin);
        v = qo_node_output(g, cn, 0);
        g->vals[v].type = t;
        v = binop(g, rop, base, "Round_1", v, 0, t);
        v = binop(g, QO_OP_SUB, base, "Sub", v, qo_pass_add_const_named(g, base, "_trunc_zt", QO_F32, 0, NULL, &zt), t);
        last = binop(g, QO_OP_MUL, base, "Mul", v, qo_pass_add_const_named(g, base, "_trunc_out_scale", QO_F32, 0, NULL, &os), t);
    } else {
        float t1 = (float)ldexp(1.0, (int)inb - (int)outb);
        v = binop(g, QO_OP_DIV, base, "Div_1", v, qo_pass_add_const_named(g, base, "_trunc_div", QO_F32, 0, NULL, &t1), t);
        v = binop(g, rop, base, "Round_1", v, 0, t);
        v = binop(g, QO_OP_SUB, base, "Sub", v, zv, t);
        last = binop(g, QO_OP_MUL, base, "Mul", v, sv, t);
    }
    g->insert_before = saved;
    qo_replace_all_uses(g, y, last);
    char *yname = qo_strdup(qo_val_name(g, y));
    qo_type yt = g->vals[y].type;
    qo_node_erase(g, n);
    qo_val_set_name(g, last, yname);
    qo_free(yname);
    g->vals[last].type = yt;
    for (int i = 0; i < 6; i++) qo_pass_drop_unused_const(g, oldin[i]);
}

/* ---- driver ------------------------------------------------------------------------------------ */
static bool graph_has_qonnx(const qo_graph *g) {
    QO_FOR_EACH_NODE(g, n) {
        if (g->nodes[n].flags & QO_NODE_DEAD) continue;
        if (qo_domain_is_qonnx(qo_str(g->m, g->nodes[n].domain))) return true;
    }
    return false;
}

qo_status qo_lower_qcdq(qo_ctx *cx, qo_module *m, const qo_qcdq_opts *o) {
    int64_t cur = qo_module_opset(m, "");
    int opset = o && o->opset ? o->opset : (int)(cur > 13 ? cur : 13);
    if (opset < 13 || opset > 21)
        return qo_error(cx, QO_ERR_USAGE, NULL,
                        "QCDQ needs a default-domain opset in 13..21 (per-axis QuantizeLinear), not %d", opset);
    if (cur && opset < cur)
        return qo_error(cx, QO_ERR_USAGE, NULL, "the model uses opset %lld; QCDQ cannot lower it to %d",
                        (long long)cur, opset);
    /* Raising the opset must not change the meaning of other nodes: ops whose signature changed between
     * the model's opset and 13 are refused (convert the model first). */
    static const struct { const char *op; int since; } changed[] = {
        {"Squeeze", 13}, {"Unsqueeze", 13}, {"Split", 13}, {"ReduceSum", 13}, {"Clip", 11}, {"Pad", 11},
        {"Slice", 10}, {"Upsample", 10}, {"Resize", 11}, {"TopK", 10}, {"Dropout", 12}, {"BatchNormalization", 9},
    };
    qo_status st = QO_OK;
    for (uint32_t gi = 0; cur && cur < opset && gi < m->ngraphs; gi++) {
        qo_graph *g = m->graphs[gi];
        QO_FOR_EACH_NODE(g, n) {
            if ((g->nodes[n].flags & QO_NODE_DEAD) || qo_str(m, g->nodes[n].domain)[0]) continue;
            const char *ot = qo_node_op_type(g, n);
            for (size_t i = 0; i < sizeof changed / sizeof changed[0]; i++)
                if (strcmp(ot, changed[i].op) == 0 && cur < changed[i].since && changed[i].since <= opset) {
                    qo_loc loc = qo_node_loc(g, n);
                    st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                                  "QCDQ needs opset %d, and %s changed its inputs at opset %d (the model uses %lld): "
                                  "convert the model to opset %d first", opset, ot, changed[i].since, (long long)cur, opset);
                }
        }
    }
    if (st != QO_OK) return st;
    /* 1. check every node and plan the rewrite (no change yet) */
    plan *plans = NULL;
    uint32_t np = 0, cap = 0;
    for (uint32_t gi = 0; gi < m->ngraphs; gi++) {
        qo_graph *g = m->graphs[gi];
        QO_FOR_EACH_NODE(g, n) {
            if (g->nodes[n].flags & QO_NODE_DEAD) continue;
            uint16_t op = g->nodes[n].op;
            if (op == QO_OP_QONNX_QUANT) {
                QO_GROW(plans, cap, np + 1);
                if (plan_quant(cx, g, n, opset, &plans[np]) == QO_OK) {
                    plans[np].n = n;
                    np++;
                    continue;
                }
                st = QO_ERR_UNSUPPORTED;
            } else if (op == QO_OP_QONNX_TRUNC) {
                if (check_trunc(cx, g, n) != QO_OK) st = QO_ERR_UNSUPPORTED;
            } else if (op == QO_OP_QONNX_BIPOLARQUANT) {
                qo_loc loc = qo_node_loc(g, n);
                st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                              "1-bit (bipolar) quantizers cannot be written as QCDQ (Brevitas refuses them too); "
                              "use --format qonnx");
            }
            if (cx->nerrors >= cx->max_errors) break;
        }
    }
    /* plans hold graph ids per node; record which graph each belongs to */
    if (st == QO_OK) {
        /* 2. rewrite, graph by graph (plans are in graph order) */
        uint32_t k = 0;
        for (uint32_t gi = 0; gi < m->ngraphs && st == QO_OK; gi++) {
            qo_graph *g = m->graphs[gi];
            uint32_t count = 0;
            QO_FOR_EACH_NODE(g, n) count += g->nodes[n].op == QO_OP_QONNX_QUANT && !(g->nodes[n].flags & QO_NODE_DEAD);
            for (uint32_t j = 0; j < count && st == QO_OK; j++, k++) st = lower_one(cx, g, &plans[k]);
            for (qo_node n = g->first, next; n && st == QO_OK; n = next) {
                next = g->nodes[n].next;
                if (g->nodes[n].op == QO_OP_QONNX_TRUNC && !(g->nodes[n].flags & QO_NODE_DEAD)) lower_trunc(g, n);
            }
        }
    }
    for (uint32_t i = 0; i < np; i++) qo_qparams_free(&plans[i].p);
    qo_free(plans);
    if (st != QO_OK) return st;
    qo_module_set_opset(m, "", opset);
    bool any = false;
    for (uint32_t gi = 0; gi < m->ngraphs && !any; gi++) any = graph_has_qonnx(m->graphs[gi]);
    if (!any) {
        uint32_t w = 0;
        for (uint32_t i = 0; i < m->nopsets; i++)
            if (!qo_domain_is_qonnx(qo_str(m, m->opsets[i].domain))) m->opsets[w++] = m->opsets[i];
        m->nopsets = w;
    }
    return QO_OK;
}

qo_status qo_pass_lower_qcdq(qo_pass_ctx *pc, qo_graph *g) {
    (void)g;
    qo_qcdq_opts o = {.opset = (int)qo_pass_opt_int(pc, "opset")};
    qo_module *m = pc->m;
    int64_t opset = qo_module_opset(m, "");
    uint32_t nq = 0;
    for (uint32_t gi = 0; gi < m->ngraphs; gi++) {
        const qo_graph *gg = m->graphs[gi];
        QO_FOR_EACH_NODE(gg, n) nq += !(gg->nodes[n].flags & QO_NODE_DEAD) && (qo_op_info(gg->nodes[n].op)->flags & F_QUANT) &&
                                     qo_domain_is_qonnx(qo_str(m, gg->nodes[n].domain));
    }
    QO_TRY(qo_lower_qcdq(pc->cx, m, &o));
    pc->changed = nq > 0 || qo_module_opset(m, "") != opset;
    qo_pass_stat(pc, "quantizers-lowered", nq);
    return QO_OK;
}
