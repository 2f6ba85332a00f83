/* passes/util.c — small helpers shared by the pass files: constant operands, Constant nodes,
 * captured names, graph-output checks. Contracts in pass_impl.h. */
#include "passes/pass_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

qo_cref qo_pass_val_cref(const qo_graph *g, qo_val v) {
    if (!v) return 0;
    const qo_value *vd = &g->vals[v];
    if (vd->flags & QO_VAL_DEAD) return 0;
    if ((vd->flags & QO_VAL_CONST) && !(vd->flags & QO_VAL_INPUT) && vd->cref) return vd->cref;
    if (vd->def && g->nodes[vd->def].op == QO_OP_CONSTANT) {
        const qo_attr *a = qo_node_attr(g, vd->def, "value");
        if (a && a->kind == QO_ATTR_TENSOR && a->u.t) return a->u.t;
    }
    return 0;
}

const qo_constdata *qo_pass_val_const(const qo_graph *g, qo_val v) {
    qo_cref c = qo_pass_val_cref(g, v);
    return c ? qo_const_get(g->m, c) : NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, f = h & 0x3ff, bits;
    if (e == 0) {
        if (!f) bits = s;
        else { /* subnormal: normalize */
            float v = ldexpf((float)f, -24);
            return s ? -v : v;
        }
    } else if (e == 31) {
        bits = s | 0x7f800000u | (f << 13);
    } else {
        bits = s | ((e + 112) << 23) | (f << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int64_t qo_pass_const_ints(const qo_graph *g, qo_val v, int64_t *out, int64_t cap) {
    const qo_constdata *c = qo_pass_val_const(g, v);
    if (!c) return -1;
    int64_t n = qo_type_numel(g->m, c->type);
    qo_elem e = qo_type_elem(g->m, c->type);
    if (n < 0 || n > cap) return -1;
    const unsigned char *p = c->data;
    for (int64_t i = 0; i < n; i++) {
        switch (e) {
        case QO_I64: { int64_t x; memcpy(&x, p + 8 * i, 8); out[i] = x; break; }
        case QO_U64: { uint64_t x; memcpy(&x, p + 8 * i, 8); out[i] = (int64_t)x; break; }
        case QO_I32: { int32_t x; memcpy(&x, p + 4 * i, 4); out[i] = x; break; }
        case QO_U32: { uint32_t x; memcpy(&x, p + 4 * i, 4); out[i] = x; break; }
        case QO_I16: { int16_t x; memcpy(&x, p + 2 * i, 2); out[i] = x; break; }
        case QO_U16: { uint16_t x; memcpy(&x, p + 2 * i, 2); out[i] = x; break; }
        case QO_I8: out[i] = (int8_t)p[i]; break;
        case QO_U8: case QO_BOOL: out[i] = p[i]; break;
        default: return -1;
        }
    }
    return n;
}

int64_t qo_pass_const_floats(const qo_graph *g, qo_val v, float *out, int64_t cap) {
    const qo_constdata *c = qo_pass_val_const(g, v);
    if (!c) return -1;
    int64_t n = qo_type_numel(g->m, c->type);
    qo_elem e = qo_type_elem(g->m, c->type);
    if (n < 0 || n > cap) return -1;
    const unsigned char *p = c->data;
    for (int64_t i = 0; i < n; i++) {
        switch (e) {
        case QO_F32: memcpy(&out[i], p + 4 * i, 4); break;
        case QO_F64: { double x; memcpy(&x, p + 8 * i, 8); out[i] = (float)x; break; }
        case QO_F16: { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = half_to_float(h); break; }
        case QO_BF16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t b = (uint32_t)h << 16;
            memcpy(&out[i], &b, 4);
            break;
        }
        default: return -1;
        }
    }
    return n;
}

qo_cref qo_pass_constant_node_tensor(qo_graph *g, qo_node n) {
    qo_module *m = g->m;
    const qo_nodedata *nd = &g->nodes[n];
    for (uint32_t i = 0; i < nd->nattr; i++) {
        const qo_attr *a = &g->attrs[nd->attr0 + i];
        const char *k = qo_str(m, a->name);
        if (strcmp(k, "value") == 0 && a->kind == QO_ATTR_TENSOR) return a->u.t;
        if (strcmp(k, "value_float") == 0 && a->kind == QO_ATTR_FLOAT)
            return qo_const_new(m, qo_type_tensor(m, QO_F32, 0, NULL, NULL), &a->u.f, 4, true);
        if (strcmp(k, "value_int") == 0 && a->kind == QO_ATTR_INT)
            return qo_const_new(m, qo_type_tensor(m, QO_I64, 0, NULL, NULL), &a->u.i, 8, true);
        if (strcmp(k, "value_floats") == 0 && a->kind == QO_ATTR_FLOATS) {
            int64_t d = a->n;
            return qo_const_new(m, qo_type_tensor(m, QO_F32, 1, &d, NULL), a->u.fs, 4 * (size_t)a->n, true);
        }
        if (strcmp(k, "value_ints") == 0 && a->kind == QO_ATTR_INTS) {
            int64_t d = a->n;
            return qo_const_new(m, qo_type_tensor(m, QO_I64, 1, &d, NULL), a->u.is, 8 * (size_t)a->n, true);
        }
        if (strcmp(k, "value_string") == 0 && a->kind == QO_ATTR_STRING)
            return qo_const_new(m, qo_type_tensor(m, QO_STR, 0, NULL, NULL), &a->u.s, sizeof(qo_bytes), true);
        if (strcmp(k, "value_strings") == 0 && a->kind == QO_ATTR_STRINGS) {
            int64_t d = a->n;
            return qo_const_new(m, qo_type_tensor(m, QO_STR, 1, &d, NULL), a->u.ss, sizeof(qo_bytes) * a->n, true);
        }
    }
    return 0;
}

/* True if graph h is nested (at any depth) inside graph g. */
static bool nested_in(const qo_module *m, const qo_graph *h, const qo_graph *g) {
    while (h->parent != h->index) {
        h = m->graphs[h->parent];
        if (h == g) return true;
    }
    return false;
}

bool *qo_pass_captured_names(const qo_graph *g) {
    const qo_module *m = g->m;
    bool *cap = qo_calloc(m->natoms + 1, sizeof(bool));
    for (uint32_t i = 0; i < m->ngraphs; i++) {
        const qo_graph *h = m->graphs[i];
        if (h == g || !nested_in(m, h, g)) continue;
        for (uint32_t k = 0; k < h->ncaptures; k++) {
            const qo_value *vd = &h->vals[h->captures[k]];
            if (!(vd->flags & QO_VAL_DEAD) && vd->name < m->natoms) cap[vd->name] = true;
        }
    }
    return cap;
}

bool qo_pass_val_is_graph_output(const qo_graph *g, qo_val v) {
    QO_FOR_EACH_USE(g, v, u)
    if (!g->uses[u].owner) return true;
    return false;
}

qo_val qo_pass_add_const(qo_graph *g, const char *name, qo_elem e, int32_t rank, const int64_t *dims,
                         const void *data) {
    qo_type t = qo_type_tensor(g->m, e, rank, dims, NULL);
    int64_t n = qo_type_numel(g->m, t);
    qo_cref c = qo_const_new(g->m, t, data, qo_elem_storage(e, n), true);
    return qo_graph_add_const(g, name ? name : "", c);
}

char *qo_pass_fresh_name(const qo_graph *g, const char *base, const char *suffix) {
    size_t n = strlen(base) + strlen(suffix) + 24;
    char *s = qo_malloc(n);
    snprintf(s, n, "%s%s", base, suffix);
    for (int k = 1; qo_graph_find(g, s); k++) snprintf(s, n, "%s%s_%d", base, suffix, k);
    return s;
}

qo_val qo_pass_add_const_named(qo_graph *g, const char *base, const char *suffix, qo_elem e, int32_t rank,
                               const int64_t *dims, const void *data) {
    char *nm = qo_pass_fresh_name(g, base, suffix);
    qo_val v = qo_pass_add_const(g, nm, e, rank, dims, data);
    qo_free(nm);
    return v;
}

void qo_pass_drop_unused_const(qo_graph *g, qo_val v) {
    if (!v || (g->vals[v].flags & QO_VAL_DEAD) || g->vals[v].nuses || !(g->vals[v].flags & QO_VAL_CONST) ||
        (g->vals[v].flags & QO_VAL_INPUT))
        return;
    qo_graph_remove_const(g, v);
    qo_val_erase(g, v);
}
