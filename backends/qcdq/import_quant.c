/* backends/qcdq/import_quant.c — import-quant: QCDQ/QDQ chains and imported QONNX Quant nodes ->
 * Quant nodes with qo_quant on their results (qcdq.h has the rules; a chain is imported only when
 * the Quant node gives the same values as the chain on every input). */
#include "backends/qcdq/qcdq.h"

#include "passes/pass_impl.h"
#include "passes/quant/qgraph.h"
#include "runtime/ref/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void warn_node(qo_ctx *cx, const qo_graph *g, qo_node n, const char *fmt, ...) QO_PRINTF(4, 5);
static void warn_node(qo_ctx *cx, const qo_graph *g, qo_node n, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qo_loc loc = qo_node_loc(g, n);
    qo_warning(cx, &loc, "%s; chain left as it is", msg);
}

/* Forwards a sub-context's errors as warnings to the parent context. */
static void as_warning(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    qo_ctx *cx = ud;
    if (kind == QO_DIAG_ERROR || kind == QO_DIAG_WARNING) qo_warning(cx, loc, "%s; left without QuantTensor metadata", msg);
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

static int log2_exact(int64_t v) {
    if (v <= 0 || (v & (v - 1))) return -1;
    int b = 0;
    while ((1LL << b) < v) b++;
    return b;
}

/* (bits, narrow) of the qonnx range [lo, hi] for the signedness; false if it is none. */
static bool range_bits(bool is_signed, int64_t lo, int64_t hi, int *bits, bool *narrow) {
    if (is_signed) {
        int b = log2_exact(hi + 1);
        if (b < 1) return false;
        *bits = b + 1;
        if (lo == -(hi + 1)) *narrow = false;
        else if (lo == -hi) *narrow = true;
        else return false;
        return true;
    }
    if (lo != 0) return false;
    int b = log2_exact(hi + 1);
    if (b >= 1) {
        *bits = b;
        *narrow = false;
        return true;
    }
    b = log2_exact(hi + 2);
    if (b >= 1) {
        *bits = b;
        *narrow = true;
        return true;
    }
    return false;
}

/* Constant float vector of v (malloc'd, count in *n), NULL if v is not one. */
static float *const_floats(const qo_graph *g, qo_val v, int64_t *n) {
    const qo_constdata *c = qo_pass_val_const(g, v);
    if (!c) return NULL;
    int64_t k = qo_type_numel(g->m, c->type);
    if (k <= 0) return NULL;
    float *buf = qo_malloc(sizeof(float) * (size_t)k);
    if (qo_pass_const_floats(g, v, buf, k) != k) {
        qo_free(buf);
        return NULL;
    }
    *n = k;
    return buf;
}

static int64_t *const_ints(const qo_graph *g, qo_val v, int64_t *n) {
    const qo_constdata *c = qo_pass_val_const(g, v);
    if (!c) return NULL;
    int64_t k = qo_type_numel(g->m, c->type);
    if (k <= 0) return NULL;
    int64_t *buf = qo_malloc(sizeof(int64_t) * (size_t)k);
    if (qo_pass_const_ints(g, v, buf, k) != k) {
        qo_free(buf);
        return NULL;
    }
    *n = k;
    return buf;
}

static qo_elem val_elem(const qo_graph *g, qo_val v) {
    const qo_constdata *c = qo_pass_val_const(g, v);
    return c ? qo_type_elem(g->m, c->type) : qo_type_elem(g->m, g->vals[v].type);
}

static int32_t val_rank(const qo_graph *g, qo_val v) {
    const qo_constdata *c = qo_pass_val_const(g, v);
    const qo_typedata *td = qo_type_get(g->m, c ? c->type : g->vals[v].type);
    return td && td->kind == QO_TY_TENSOR ? td->rank : -1;
}

/* One recognised chain ending at DequantizeLinear `dq`. */
typedef struct chain {
    qo_node dq, clip, q;  /* clip/q 0 when absent */
    qo_val src;           /* integer tensor entering [Clip] -> DQ (Q's result or an integer constant) */
    qo_val x;             /* float input of Q (0 for integer constants) */
    qo_elem store;
    int64_t n;            /* scale count */
    float *s;
    int64_t *z;           /* n entries */
    int axis;             /* -1 per-tensor */
    int32_t rank;         /* of the quantized tensor, -1 unknown */
    int bits;
    bool is_signed, narrow;
    int64_t lo, hi;       /* integer range after Clip */
} chain;

static void chain_free(chain *c) {
    qo_free(c->s);
    qo_free(c->z);
}

/* Same scale/zero point/axis on Q and DQ (values, not ids). */
static bool read_qparams(const qo_graph *g, qo_node k, float **s, int64_t **z, int64_t *n, int64_t *axis) {
    qo_val sv = qo_node_input(g, k, 1), zv = g->nodes[k].nin > 2 ? qo_node_input(g, k, 2) : 0;
    *z = NULL;
    *s = val_elem(g, sv) == QO_F32 ? const_floats(g, sv, n) : NULL; /* f16/bf16 scales: DQ would not give f32 */
    if (!*s) return false;
    *axis = *n > 1 ? qo_attr_int(g, k, "axis", 1) : -1;
    int64_t nz = 0;
    if (zv) {
        *z = const_ints(g, zv, &nz);
        if (!*z || nz != *n) {
            qo_free(*s);
            qo_free(*z);
            *s = NULL;
            *z = NULL;
            return false;
        }
    } else {
        *z = qo_calloc((size_t)*n, sizeof(int64_t));
    }
    return true;
}

/* Recognises the chain ending at dq. Returns false (after a warning when it looked like one) if it is
 * not importable. */
static bool match_chain(qo_ctx *cx, const qo_graph *g, qo_node dq, chain *c) {
    memset(c, 0, sizeof *c);
    c->dq = dq;
    qo_val in = qo_node_input(g, dq, 0);
    if (!in) return false;
    if (qo_attr_int(g, dq, "block_size", 0) != 0) {
        warn_node(cx, g, dq, "blocked quantization (block_size) has no Quant node form");
        return false;
    }
    qo_node d = g->vals[in].def;
    if (d && g->nodes[d].op == QO_OP_CLIP) {
        if (!qo_val_has_one_use(g, in)) return false;
        c->clip = d;
        in = qo_node_input(g, d, 0);
        if (!in) return false;
        d = g->vals[in].def;
    }
    c->src = in;
    if (d && g->nodes[d].op == QO_OP_QUANTIZELINEAR) {
        if (!qo_val_has_one_use(g, in)) {
            warn_node(cx, g, d, "its integer result has other readers");
            return false;
        }
        c->q = d;
        c->x = qo_node_input(g, d, 0);
        qo_elem xe = qo_type_elem(g->m, g->vals[c->x].type);
        if (xe != QO_UNDEF && xe != QO_F32) return false;
    } else if (!qo_pass_val_const(g, in)) {
        return false; /* integer data from elsewhere: not a quantizer */
    }
    /* scale, zero point, axis */
    int64_t n = 0, axis = -1;
    if (!read_qparams(g, dq, &c->s, &c->z, &n, &axis)) {
        warn_node(cx, g, dq, "scale or zero point is not a constant (float32 scale, integer zero point)");
        return false;
    }
    c->n = n;
    c->rank = val_rank(g, c->src);
    if (c->q) {
        float *s1;
        int64_t *z1, n1, a1;
        if (!read_qparams(g, c->q, &s1, &z1, &n1, &a1)) {
            warn_node(cx, g, c->q, "scale or zero point is not a constant (float32 scale, integer zero point)");
            chain_free(c);
            return false;
        }
        bool same = n1 == n && memcmp(s1, c->s, sizeof(float) * (size_t)n) == 0 &&
                    memcmp(z1, c->z, sizeof(int64_t) * (size_t)n) == 0 && (n == 1 || a1 == axis);
        qo_free(s1);
        qo_free(z1);
        if (!same) {
            warn_node(cx, g, dq, "QuantizeLinear and DequantizeLinear have different scales, zero points or axes");
            chain_free(c);
            return false;
        }
        if (c->rank < 0) c->rank = val_rank(g, c->x);
    }
    c->axis = -1;
    if (n > 1 || axis >= 0) {
        if (c->rank < 0) {
            warn_node(cx, g, dq, "per-axis quantization of a tensor of unknown rank");
            chain_free(c);
            return false;
        }
        c->axis = (int)(axis < 0 ? axis + c->rank : axis);
        if (c->axis < 0 || c->axis >= c->rank) {
            chain_free(c);
            return false;
        }
    }
    /* integer type and range */
    c->store = c->q ? (g->nodes[c->q].nin > 2 && qo_node_input(g, c->q, 2) ? val_elem(g, qo_node_input(g, c->q, 2))
                                                                             : (qo_elem)qo_attr_int(g, c->q, "output_dtype", QO_U8))
                    : val_elem(g, c->src);
    if (!elem_range(c->store, &c->lo, &c->hi)) {
        warn_node(cx, g, dq, "integer type %s is not supported", qo_elem_name(c->store) ? qo_elem_name(c->store) : "?");
        chain_free(c);
        return false;
    }
    c->is_signed = c->store == QO_I8 || c->store == QO_I16 || c->store == QO_I32;
    if (c->clip) {
        int64_t b[2] = {c->lo, c->hi};
        for (int i = 0; i < 2; i++) {
            qo_val bv = g->nodes[c->clip].nin > (uint32_t)(i + 1) ? qo_node_input(g, c->clip, (uint32_t)(i + 1)) : 0;
            const qo_attr *ba = qo_node_attr(g, c->clip, i ? "max" : "min");
            int64_t k = 0;
            if (bv) {
                int64_t *vals = const_ints(g, bv, &k);
                if (!vals || k != 1) {
                    qo_free(vals);
                    warn_node(cx, g, c->clip, "non-constant or non-scalar Clip bound");
                    chain_free(c);
                    return false;
                }
                b[i] = vals[0];
                qo_free(vals);
            } else if (ba && ba->kind == QO_ATTR_FLOAT) {
                b[i] = (int64_t)(i ? floorf(ba->u.f) : ceilf(ba->u.f));
            }
        }
        if (b[0] > c->lo) c->lo = b[0];
        if (b[1] < c->hi) c->hi = b[1];
    }
    if (!range_bits(c->is_signed, c->lo, c->hi, &c->bits, &c->narrow)) {
        warn_node(cx, g, c->clip ? c->clip : dq, "integer range [%lld, %lld] is no (bits, signed, narrow) range of a Quant node",
                  (long long)c->lo, (long long)c->hi);
        chain_free(c);
        return false;
    }
    return true;
}

/* Quant node's value on x (reference kernel formula) compared with the chain's integer q. */
static bool quant_reproduces(const chain *c, float x, int64_t ch, int64_t q) {
    float s = c->s[ch], z = (float)c->z[ch];
    float flo = (float)c->lo, fhi = (float)c->hi;
    float y = x / s;
    y = y + z;
    y = y > fhi ? fhi : y;
    y = y < flo ? flo : y;
    y = qo_rne(y);
    return y == (float)q;
}

/* QuantizeLinear's integer for x (runtime/ref/quant.c), then the Clip. */
static int64_t qcdq_int(const chain *c, float x, int64_t ch) {
    int64_t smin = 0, smax = 0;
    elem_range(c->store, &smin, &smax);
    float qf = x / c->s[ch];
    int64_t v;
    if (isnan(qf)) {
        v = smin;
    } else {
        float r = qo_rne(qf), lo = (float)(smin - c->z[ch]), hi = (float)(smax - c->z[ch]);
        r = r < lo ? lo : r > hi ? hi : r;
        v = (int64_t)r + c->z[ch];
    }
    return v < c->lo ? c->lo : v > c->hi ? c->hi : v;
}

/* For a constant chain: the float tensor the Quant node reads (malloc'd), or NULL with a warning when
 * the Quant node would not reproduce the chain's integers exactly. */
static float *const_input(qo_ctx *cx, const qo_graph *g, const chain *c, int64_t *count) {
    const qo_constdata *cd = qo_pass_val_const(g, c->q ? c->x : c->src);
    int64_t n = qo_type_numel(g->m, cd->type);
    if (n <= 0) return NULL;
    const qo_typedata *td = qo_type_get(g->m, cd->type);
    int64_t inner = 1;
    if (c->axis >= 0) {
        if (td->dims[c->axis] != c->n) return NULL;
        for (int32_t d = c->axis + 1; d < td->rank; d++) inner *= td->dims[d];
    }
    float *xf = qo_malloc(sizeof(float) * (size_t)n);
    int64_t *iv = NULL;
    bool ok;
    if (c->q) ok = qo_pass_const_floats(g, c->x, xf, n) == n;
    else {
        iv = qo_malloc(sizeof(int64_t) * (size_t)n);
        ok = qo_pass_const_ints(g, c->src, iv, n) == n;
    }
    for (int64_t i = 0; ok && i < n; i++) {
        int64_t ch = c->axis >= 0 ? (i / inner) % c->n : 0;
        int64_t q;
        if (c->q) {
            q = qcdq_int(c, xf[i], ch);
        } else {
            q = iv[i] < c->lo ? c->lo : iv[i] > c->hi ? c->hi : iv[i];
            int64_t dlt = q - c->z[ch];
            if (c->store == QO_I32) dlt = (int32_t)(uint32_t)dlt;
            xf[i] = (float)dlt * c->s[ch]; /* DequantizeLinear's value */
        }
        if (!quant_reproduces(c, xf[i], ch, q)) {
            warn_node(cx, g, c->dq, "a Quant node would not reproduce element %lld (integer %lld) of the constant",
                      (long long)i, (long long)q);
            ok = false;
        }
    }
    qo_free(iv);
    if (!ok) {
        qo_free(xf);
        return NULL;
    }
    *count = n;
    return xf;
}

static void quant_name(const qo_graph *g, qo_node dq, char *buf, size_t cap) {
    const char *nm = qo_node_name(g, dq);
    snprintf(buf, cap, "%s", nm[0] ? nm : "quant");
    size_t l = strlen(buf);
    if (l >= 17 && strcmp(buf + l - 17, "/DequantizeLinear") == 0) snprintf(buf + l - 17, cap - (l - 17), "/Quant");
    else if (strlen(buf) + 6 < cap) strcat(buf, "_quant");
}

/* Sets qo_quant on the result of Quant node n from its parameters. */
static bool annotate(qo_ctx *cx, qo_graph *g, qo_node n) {
    qo_ctx sub;
    qo_ctx_init(&sub);
    sub.diag = as_warning;
    sub.diag_ud = cx;
    qo_qparams p;
    if (qo_qnode_read(&sub, g, n, &p) != QO_OK) return false;
    qo_val y = qo_node_output(g, n, 0);
    qo_type t = g->vals[y].type;
    const qo_typedata *td = qo_type_get(g->m, t);
    if (!td || td->kind != QO_TY_TENSOR) {
        const qo_typedata *tx = qo_type_get(g->m, g->vals[qo_node_input(g, n, 0)].type);
        t = tx && tx->kind == QO_TY_TENSOR ? qo_type_with_quant(g->m, g->vals[qo_node_input(g, n, 0)].type, NULL)
                                          : qo_type_tensor(g->m, QO_F32, -1, NULL, NULL);
    }
    qo_quant q;
    qo_qparams_to_quant(&p, g->m, &q);
    qo_qparams_free(&p);
    g->vals[y].type = qo_type_with_quant(g->m, t, &q);
    return true;
}

static bool import_chain(qo_ctx *cx, qo_graph *g, chain *c) {
    bool is_const = c->q ? qo_pass_val_const(g, c->x) != NULL : true;
    if (!is_const) {
        for (int64_t i = 0; i < c->n; i++)
            if (c->z[i] != 0) {
                warn_node(cx, g, c->q,
                          "zero point %lld: QuantizeLinear adds it after rounding, a Quant node before (REFERENCE.md "
                          "\u00a74.2.2), so they differ near ties",
                          (long long)c->z[i]);
                return false;
            }
    }
    qo_val x = c->x;
    char base[400];
    quant_name(g, c->dq, base, sizeof base);
    qo_node saved = g->insert_before;
    g->insert_before = c->dq;
    if (is_const) {
        int64_t cnt = 0;
        float *xf = const_input(cx, g, c, &cnt);
        if (!xf) {
            g->insert_before = saved;
            return false;
        }
        const qo_constdata *cd = qo_pass_val_const(g, c->q ? c->x : c->src);
        const qo_typedata *td = qo_type_get(g->m, cd->type);
        if (c->q) {
            qo_free(xf); /* the float constant itself is the Quant node's input */
        } else {
            const char *sn = qo_val_name(g, c->src);
            x = qo_pass_add_const_named(g, sn[0] ? sn : base, "_float", QO_F32, td->rank, td->dims, xf);
            qo_free(xf);
        }
    }
    /* scale / zero point in QONNX's broadcast shape */
    int32_t rank = 0;
    int64_t dims[QO_MAX_RANK];
    if (c->axis >= 0) {
        rank = c->rank > QO_MAX_RANK ? QO_MAX_RANK : c->rank;
        for (int32_t i = 0; i < rank; i++) dims[i] = i == c->axis ? c->n : 1;
    }
    bool zsame = true;
    for (int64_t i = 1; i < c->n; i++) zsame &= c->z[i] == c->z[0];
    float *zf = qo_malloc(sizeof(float) * (size_t)c->n);
    for (int64_t i = 0; i < c->n; i++) zf[i] = (float)c->z[i];
    float bits = (float)c->bits;
    qo_val ins[4] = {x, qo_pass_add_const_named(g, base, "_scale", QO_F32, rank, dims, c->s),
                     zsame ? qo_pass_add_const_named(g, base, "_zeropt", QO_F32, 0, NULL, zf)
                           : qo_pass_add_const_named(g, base, "_zeropt", QO_F32, rank, dims, zf),
                     qo_pass_add_const_named(g, base, "_bitwidth", QO_F32, 0, NULL, &bits)};
    qo_free(zf);
    qo_node qn = qo_node_new(g, QO_OP_QONNX_QUANT, QO_QONNX_DOMAIN, "Quant", 4, ins, 1);
    g->insert_before = saved;
    qo_node_set_name(g, qn, base);
    qo_node_set_attr_int(g, qn, "signed", c->is_signed);
    qo_node_set_attr_int(g, qn, "narrow", c->narrow);
    qo_node_set_attr_string(g, qn, "rounding_mode", "ROUND", 5);
    qo_val y = qo_node_output(g, qn, 0), d = qo_node_output(g, c->dq, 0);
    g->vals[y].type = g->vals[d].type ? qo_type_with_quant(g->m, g->vals[d].type, NULL) : 0;
    qo_replace_all_uses(g, d, y);
    char *dname = qo_strdup(qo_val_name(g, d));
    uint16_t info = g->vals[d].flags & QO_VAL_INFO;
    /* erase DQ, Clip, Q and the constants nobody reads any more */
    qo_node nodes[3] = {c->dq, c->clip, c->q};
    for (int i = 0; i < 3; i++) {
        if (!nodes[i]) continue;
        qo_val in[3] = {0};
        for (uint32_t j = 0; j < g->nodes[nodes[i]].nin && j < 3; j++) in[j] = qo_node_input(g, nodes[i], j);
        qo_node_erase(g, nodes[i]);
        for (int j = 0; j < 3; j++)
            if (in[j] != x) qo_pass_drop_unused_const(g, in[j]);
    }
    qo_val_set_name(g, y, dname);
    qo_free(dname);
    g->vals[y].flags |= info;
    if (!annotate(cx, g, qn)) {
        /* cannot happen for what we built; keep the IR consistent anyway */
        QO_ASSERT(!"import-quant built an unreadable Quant node");
    }
    return true;
}

qo_status qo_import_quant(qo_ctx *cx, qo_graph *g, uint32_t *nimported) {
    uint32_t k = 0;
    for (qo_node n = g->first, next; n; n = next) {
        next = g->nodes[n].next;
        if (g->nodes[n].flags & QO_NODE_DEAD) continue;
        if (g->nodes[n].op == QO_OP_QONNX_QUANT) {
            const qo_typedata *td = qo_type_get(g->m, g->vals[qo_node_output(g, n, 0)].type);
            if ((!td || !td->quant) && !qo_qnode_is_pending(g, n) && !qo_node_attr(g, n, QO_QATTR_SPEC) &&
                annotate(cx, g, n))
                k++;
            continue;
        }
        if (g->nodes[n].op != QO_OP_DEQUANTIZELINEAR) continue;
        chain c;
        if (!match_chain(cx, g, n, &c)) continue;
        if (import_chain(cx, g, &c)) k++;
        chain_free(&c);
    }
    if (k && !qo_module_opset(g->m, QO_QONNX_DOMAIN)) {
        bool other = false;
        for (uint32_t i = 0; i < g->m->nopsets; i++) other |= qo_domain_is_qonnx(qo_str(g->m, g->m->opsets[i].domain));
        if (!other) qo_module_set_opset(g->m, QO_QONNX_DOMAIN, 1);
    }
    if (nimported) *nimported = k;
    return QO_OK;
}

qo_status qo_pass_import_quant(qo_pass_ctx *pc, qo_graph *g) {
    uint32_t k = 0;
    QO_TRY(qo_import_quant(pc->cx, g, &k));
    pc->changed |= k > 0;
    qo_pass_stat(pc, "quantizers-imported", k);
    return QO_OK;
}
