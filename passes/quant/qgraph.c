/* passes/quant/qgraph.c — building and reading Quant nodes (the quantized IR of qgraph.h). */
#include "passes/quant/qgraph.h"

#include "passes/pass_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

bool qo_qnode_is_quant(const qo_graph *g, qo_node n) {
    return n && !(g->nodes[n].flags & QO_NODE_DEAD) && g->nodes[n].op == QO_OP_QONNX_QUANT;
}

qo_node qo_qnode_of(const qo_graph *g, qo_val v) {
    if (!v) return 0;
    qo_node d = g->vals[v].def;
    return qo_qnode_is_quant(g, d) ? d : 0;
}

const char *qo_round_qonnx_name(qo_round r) {
    switch (r) {
    case QO_ROUND_HALF_EVEN: return "ROUND";
    case QO_ROUND_HALF_UP: return "HALF_UP";
    case QO_ROUND_HALF_DOWN: return "HALF_DOWN";
    case QO_ROUND_CEIL: return "CEIL";
    case QO_ROUND_FLOOR: return "FLOOR";
    case QO_ROUND_UP: return "UP";
    case QO_ROUND_DOWN: return "DOWN";
    case QO_ROUND_HALF_POS_INF: return "HALF_POS_INF";
    case QO_ROUND_DPU: return "DPU";
    default: return "ROUND";
    }
}

qo_node qo_qnode_new(qo_ctx *cx, qo_graph *g, qo_val x, const qo_qspec *s, uint32_t nscale,
                     const float *scales, const int32_t *zps) {
    if (s->per_channel) {
        const qo_typedata *td = qo_type_get(g->m, g->vals[x].type);
        if (!td || td->kind != QO_TY_TENSOR || td->rank < 0 || s->axis >= td->rank) {
            qo_error(cx, QO_ERR_USAGE, NULL,
                     "per-channel quantizer on '%s': axis %d is outside the tensor's rank (%d)",
                     qo_val_name(g, x), s->axis, td ? td->rank : -1);
            return 0;
        }
    }
    if (!qo_module_opset(g->m, QO_QONNX_DOMAIN)) qo_module_set_opset(g->m, QO_QONNX_DOMAIN, 2); /* as Brevitas */
    qo_node def = g->vals[x].def;
    qo_node saved = g->insert_before;
    g->insert_before = def ? g->nodes[def].next : g->first;
    float one = 1.0f, zero = 0.0f, bits = (float)s->bits;
    const char *xn = qo_val_name(g, x);
    char base[256];
    snprintf(base, sizeof base, "%s", xn[0] ? xn : "v");
    qo_val ins[4] = {x, qo_pass_add_const_named(g, base, "_scale", QO_F32, 0, NULL, &one),
                     qo_pass_add_const_named(g, base, "_zeropt", QO_F32, 0, NULL, &zero),
                     qo_pass_add_const_named(g, base, "_bitwidth", QO_F32, 0, NULL, &bits)};
    qo_node n = qo_node_new(g, QO_OP_QONNX_QUANT, QO_QONNX_DOMAIN, "Quant", 4, ins, 1);
    g->insert_before = saved;
    char *nm = qo_pass_fresh_name(g, base, "_q");
    qo_val y = qo_node_output(g, n, 0);
    qo_val_set_name(g, y, nm);
    qo_free(nm);
    char nname[280];
    snprintf(nname, sizeof nname, "%s_quant", base);
    qo_node_set_name(g, n, nname);
    g->vals[y].type = g->vals[x].type ? qo_type_with_quant(g->m, g->vals[x].type, NULL) : 0;
    qo_node_set_attr_int(g, n, "signed", s->is_signed);
    qo_node_set_attr_int(g, n, "narrow", s->narrow);
    const char *rm = qo_round_qonnx_name((qo_round)s->round);
    qo_node_set_attr_string(g, n, "rounding_mode", rm, strlen(rm));
    char spec[512];
    qo_qspec_format(s, spec, sizeof spec);
    qo_node_set_attr_string(g, n, QO_QATTR_SPEC, spec, strlen(spec));
    if (nscale && qo_qnode_set_params(cx, g, n, s, nscale, scales, zps) != QO_OK) return 0;
    return n;
}

qo_status qo_qnode_set_params(qo_ctx *cx, qo_graph *g, qo_node n, const qo_qspec *s, uint32_t nscale,
                              const float *scales, const int32_t *zps) {
    qo_val x = qo_node_input(g, n, 0);
    const qo_typedata *td = qo_type_get(g->m, g->vals[x].type);
    int32_t rank = 0;
    int64_t dims[QO_MAX_RANK];
    if (s->per_channel) {
        if (!td || td->kind != QO_TY_TENSOR || td->rank < 0 || s->axis >= td->rank || td->rank > QO_MAX_RANK) {
            qo_loc loc = qo_node_loc(g, n);
            return qo_error(cx, QO_ERR_USAGE, &loc, "per-channel axis %d is outside the rank of '%s'", s->axis,
                            qo_val_name(g, x));
        }
        rank = td->rank;
        for (int32_t i = 0; i < rank; i++) dims[i] = i == s->axis ? (int64_t)nscale : 1;
        if (td->dims[s->axis] >= 0 && td->dims[s->axis] != (int64_t)nscale) {
            qo_loc loc = qo_node_loc(g, n);
            return qo_error(cx, QO_ERR_USAGE, &loc, "'%s' has %lld channels along axis %d, not %u",
                            qo_val_name(g, x), (long long)td->dims[s->axis], s->axis, nscale);
        }
    } else if (nscale != 1) {
        qo_loc loc = qo_node_loc(g, n);
        return qo_error(cx, QO_ERR_USAGE, &loc, "a per-tensor quantizer takes one scale, not %u", nscale);
    }
    float *zf = qo_malloc(sizeof(float) * nscale);
    for (uint32_t i = 0; i < nscale; i++) zf[i] = zps ? (float)zps[i] : 0.0f;
    float bits = (float)s->bits;
    const char *xn = qo_val_name(g, x);
    char base[256];
    snprintf(base, sizeof base, "%s", xn[0] ? xn : "v");
    qo_val old[3] = {qo_node_input(g, n, 1), qo_node_input(g, n, 2), qo_node_input(g, n, 3)};
    /* detach and drop the old constants first, so the new ones can take their names */
    for (int i = 0; i < 3; i++) qo_set_input(g, qo_node_use(g, n, (uint32_t)i + 1), 0);
    for (int i = 0; i < 3; i++) qo_pass_drop_unused_const(g, old[i]);
    qo_set_input(g, qo_node_use(g, n, 1), qo_pass_add_const_named(g, base, "_scale", QO_F32, rank, dims, scales));
    qo_set_input(g, qo_node_use(g, n, 2), qo_pass_add_const_named(g, base, "_zeropt", QO_F32, rank, dims, zf));
    qo_set_input(g, qo_node_use(g, n, 3), qo_pass_add_const_named(g, base, "_bitwidth", QO_F32, 0, NULL, &bits));
    qo_free(zf);
    qo_node_set_attr_int(g, n, "signed", s->is_signed);
    qo_node_set_attr_int(g, n, "narrow", s->narrow);
    const char *rm = qo_round_qonnx_name((qo_round)s->round);
    qo_node_set_attr_string(g, n, "rounding_mode", rm, strlen(rm));
    char spec[512];
    qo_qspec_format(s, spec, sizeof spec);
    qo_node_set_attr_string(g, n, QO_QATTR_SPEC, spec, strlen(spec));
    qo_val y = qo_node_output(g, n, 0);
    if (g->vals[y].type) {
        qo_quant q;
        qo_qspec_to_quant(s, g->m, nscale, scales, zps, &q);
        g->vals[y].type = qo_type_with_quant(g->m, g->vals[y].type, &q);
    }
    return QO_OK;
}

bool qo_qnode_spec(qo_ctx *cx, const qo_graph *g, qo_node n, qo_qspec *s) {
    const qo_attr *a = qo_node_attr(g, n, QO_QATTR_SPEC);
    if (!a || a->kind != QO_ATTR_STRING) return false;
    char buf[512];
    size_t len = a->u.s.n < sizeof buf - 1 ? a->u.s.n : sizeof buf - 1;
    memcpy(buf, a->u.s.p, len);
    buf[len] = 0;
    qo_loc loc = qo_node_loc(g, n);
    if (qo_qspec_parse(cx, &loc, buf, s) != QO_OK) {
        qo_error(cx, QO_ERR_INVALID_MODEL, &loc, "bad %s attribute '%s'", QO_QATTR_SPEC, buf);
        return false;
    }
    return true;
}

bool qo_qnode_is_pending(const qo_graph *g, qo_node n) {
    if (!qo_qnode_is_quant(g, n) || !qo_node_attr(g, n, QO_QATTR_SPEC)) return false;
    const qo_typedata *td = qo_type_get(g->m, g->vals[qo_node_output(g, n, 0)].type);
    return !td || !td->quant;
}

int64_t qo_qnode_group(const qo_graph *g, qo_node n) { return qo_attr_int(g, n, QO_QATTR_GROUP, 0); }

/* Float data of constant input i of n: count in *cnt, shape in *cd (NULL if not a float constant). */
static float *const_floats(const qo_graph *g, qo_node n, uint32_t i, int64_t *cnt, const qo_typedata **cd) {
    qo_val v = qo_node_input(g, n, i);
    const qo_constdata *c = v ? qo_pass_val_const(g, v) : NULL;
    if (!c) return NULL;
    const qo_typedata *td = qo_type_get(g->m, c->type);
    int64_t k = qo_type_numel(g->m, c->type);
    if (!td || k <= 0) return NULL;
    float *buf = qo_malloc(sizeof(float) * (size_t)k);
    if (qo_pass_const_floats(g, v, buf, k) != k) {
        qo_free(buf);
        return NULL;
    }
    *cnt = k;
    *cd = td;
    return buf;
}

/* Axis of a per-channel parameter shape: -1 for all-ones, -2 if more than one dim is not 1. */
static int shape_axis(const qo_typedata *td) {
    int ax = -1;
    for (int32_t i = 0; i < td->rank; i++)
        if (td->dims[i] != 1) {
            if (ax >= 0) return -2;
            ax = i;
        }
    return ax;
}

qo_status qo_qnode_read(qo_ctx *cx, const qo_graph *g, qo_node n, qo_qparams *out) {
    memset(out, 0, sizeof *out);
    qo_loc loc = qo_node_loc(g, n);
    int64_t ns = 0, nz = 0, nb = 0;
    const qo_typedata *ts = NULL, *tz = NULL, *tb = NULL;
    float *s = const_floats(g, n, 1, &ns, &ts), *z = const_floats(g, n, 2, &nz, &tz),
          *b = const_floats(g, n, 3, &nb, &tb);
    qo_status st = QO_OK;
    if (!s || !z || !b) {
        st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "Quant with a non-constant %s is not supported",
                      !s ? "scale" : !z ? "zero point" : "bit width");
        goto done;
    }
    if (nb != 1 || !(b[0] >= 1 && b[0] <= 32) || b[0] != floorf(b[0])) {
        st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "Quant bit width must be one integer in [1, 32]");
        goto done;
    }
    int as = shape_axis(ts), az = shape_axis(tz);
    if (as == -2 || az == -2 || (nz != 1 && (az != as || nz != ns))) {
        st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                      "Quant scale/zero point must be scalars or vary along one common axis");
        goto done;
    }
    out->bits = (uint8_t)b[0];
    out->is_signed = qo_attr_int(g, n, "signed", 1) != 0;
    out->narrow = qo_attr_int(g, n, "narrow", 1) != 0;
    const qo_attr *ra = qo_node_attr(g, n, "rounding_mode");
    int rm = QO_ROUND_HALF_EVEN;
    if (ra && ra->kind == QO_ATTR_STRING) {
        char buf[32];
        size_t len = ra->u.s.n < sizeof buf - 1 ? ra->u.s.n : sizeof buf - 1;
        memcpy(buf, ra->u.s.p, len);
        buf[len] = 0;
        rm = qo_round_from_name(buf);
        if (rm < 0) {
            st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "unknown rounding_mode '%s'", buf);
            goto done;
        }
    }
    out->round = (uint8_t)rm;
    out->n = (uint32_t)ns;
    out->axis = (int16_t)(ns == 1 ? -1 : as);
    /* a per-channel parameter of a lower rank than x broadcasts from the right */
    if (ns > 1) {
        const qo_typedata *tx = qo_type_get(g->m, g->vals[qo_node_input(g, n, 0)].type);
        if (tx && tx->rank > ts->rank) out->axis = (int16_t)(as + tx->rank - ts->rank);
    }
    out->scales = qo_malloc(sizeof(float) * (size_t)ns);
    out->zps = qo_malloc(sizeof(int32_t) * (size_t)ns);
    for (int64_t i = 0; i < ns; i++) {
        float zi = z[nz == 1 ? 0 : i];
        if (!(s[i] > 0) || !isfinite(s[i]) || zi != floorf(zi) || fabsf(zi) > 2147483647.0f) {
            st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                          "Quant scale must be positive and finite and the zero point an integer "
                          "(channel %lld: scale %g, zero point %g)", (long long)i, (double)s[i], (double)zi);
            qo_qparams_free(out);
            goto done;
        }
        out->scales[i] = s[i];
        out->zps[i] = (int32_t)zi;
    }
done:
    qo_free(s);
    qo_free(z);
    qo_free(b);
    return st;
}

void qo_qparams_free(qo_qparams *p) {
    qo_free(p->scales);
    qo_free(p->zps);
    p->scales = NULL;
    p->zps = NULL;
}

void qo_qparams_to_quant(const qo_qparams *p, qo_module *m, qo_quant *out) {
    memset(out, 0, sizeof *out);
    out->bits = p->bits;
    out->is_signed = p->is_signed;
    out->narrow = p->narrow;
    out->round = p->round;
    bool pow2 = true;
    for (uint32_t i = 0; i < p->n; i++) {
        int e;
        pow2 &= frexpf(p->scales[i], &e) == 0.5f;
    }
    out->pow2 = pow2;
    if (p->axis < 0) {
        out->scale = p->scales[0];
        out->zp = p->zps[0];
        return;
    }
    out->per_axis = 1;
    out->axis = p->axis;
    int64_t dim = p->n;
    out->scales = qo_const_new(m, qo_type_tensor(m, QO_F32, 1, &dim, NULL), p->scales, (size_t)p->n * 4, true);
    bool any = false;
    for (uint32_t i = 0; i < p->n; i++) any |= p->zps[i] != 0;
    if (any) out->zps = qo_const_new(m, qo_type_tensor(m, QO_I32, 1, &dim, NULL), p->zps, (size_t)p->n * 4, true);
}

uint32_t qo_qnode_strip_attrs(qo_graph *g) {
    uint32_t k = 0;
    QO_FOR_EACH_NODE(g, n) {
        if (!qo_qnode_is_quant(g, n)) continue;
        bool a = qo_node_remove_attr(g, n, QO_QATTR_SPEC);
        bool b = qo_node_remove_attr(g, n, QO_QATTR_GROUP);
        k += a || b;
    }
    return k;
}
