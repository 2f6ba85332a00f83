/* tests/ir/irdiff.h — structural comparison of two modules for the round-trip tests (header-only,
 * static functions). Compares what the text form promises to keep: metadata, graph nesting,
 * names, order of inputs/outputs/initializers/captures/nodes/attributes, flags, types (printed
 * through the module's own type data, not ids), constant bytes and origins, docs. Value and type
 * ids may differ. Reports the first difference into `why`. */
#ifndef QOPT_TESTS_IRDIFF_H
#define QOPT_TESTS_IRDIFF_H

#include "ir/ir.h"

#include <stdio.h>
#include <string.h>

typedef struct irdiff {
    const qo_module *a, *b;
    char why[512];
    bool check_storage; /* also require equal storage/file/file_offset (constants above 64 bytes) */
} irdiff;

#define DIFF(...) (snprintf(d->why, sizeof d->why, __VA_ARGS__), false)

static bool atom_eq(const irdiff *d, qo_atom x, qo_atom y) {
    return qo_strlen(d->a, x) == qo_strlen(d->b, y) && memcmp(qo_str(d->a, x), qo_str(d->b, y), qo_strlen(d->a, x)) == 0;
}

static bool const_eq(irdiff *d, qo_cref x, qo_cref y, const char *where);

static bool type_eq_(irdiff *d, qo_type x, qo_type y, const char *where) {
    const qo_typedata *tx = qo_type_get(d->a, x), *ty = qo_type_get(d->b, y);
    if (!tx || !ty) return (!tx && !ty) ? true : DIFF("%s: one type unknown", where);
    if (tx->kind != ty->kind || tx->elem != ty->elem || tx->rank != ty->rank)
        return DIFF("%s: type kind/elem/rank differ (%d/%d/%d vs %d/%d/%d)", where, tx->kind, tx->elem, tx->rank,
                    ty->kind, ty->elem, ty->rank);
    for (int32_t i = 0; i < tx->rank; i++) {
        if (tx->dims[i] != ty->dims[i]) return DIFF("%s: dim %d differs", where, i);
        qo_atom sx = tx->syms ? tx->syms[i] : 0, sy = ty->syms ? ty->syms[i] : 0;
        if (!atom_eq(d, sx, sy)) return DIFF("%s: symbolic dim %d differs", where, i);
    }
    if (tx->inner || ty->inner)
        if (!type_eq_(d, tx->inner, ty->inner, where)) return false;
    if (!tx->quant != !ty->quant) return DIFF("%s: quant presence differs", where);
    if (tx->quant) {
        const qo_quant *qx = tx->quant, *qy = ty->quant;
        if (qx->bits != qy->bits || qx->is_signed != qy->is_signed || qx->narrow != qy->narrow ||
            qx->round != qy->round || qx->per_axis != qy->per_axis || qx->pow2 != qy->pow2 || qx->axis != qy->axis ||
            memcmp(&qx->scale, &qy->scale, 4) != 0 || qx->zp != qy->zp)
            return DIFF("%s: quant fields differ", where);
        if (!qx->scales != !qy->scales || !qx->zps != !qy->zps) return DIFF("%s: quant crefs differ", where);
        if (qx->scales && !const_eq(d, qx->scales, qy->scales, where)) return false;
        if (qx->zps && !const_eq(d, qx->zps, qy->zps, where)) return false;
    }
    return true;
}

static bool const_eq(irdiff *d, qo_cref x, qo_cref y, const char *where) {
    if (!x || !y) return (!x && !y) ? true : DIFF("%s: one constant missing", where);
    const qo_constdata *cx = qo_const_get(d->a, x), *cy = qo_const_get(d->b, y);
    if (!type_eq_(d, cx->type, cy->type, where)) return false;
    if (cx->nbytes != cy->nbytes) return DIFF("%s: constant sizes differ (%zu vs %zu)", where, cx->nbytes, cy->nbytes);
    if (qo_type_elem(d->a, cx->type) == QO_STR) {
        const qo_bytes *sx = cx->data, *sy = cy->data;
        for (size_t i = 0; i < cx->nbytes / sizeof(qo_bytes); i++)
            if (sx[i].n != sy[i].n || memcmp(sx[i].p, sy[i].p, sx[i].n))
                return DIFF("%s: string element %zu differs", where, i);
    } else if (cx->nbytes && memcmp(cx->data, cy->data, cx->nbytes)) {
        return DIFF("%s: constant bytes differ", where);
    }
    if (!atom_eq(d, cx->ext_location, cy->ext_location) || cx->ext_offset != cy->ext_offset ||
        cx->ext_length != cy->ext_length)
        return DIFF("%s: external-data origin differs", where);
    /* by contract only file-backed constants above 64 bytes print as file(...) and stay borrowed */
    if (d->check_storage && (cx->nbytes > 64 || cy->storage == QO_CONST_BORROWED) && (cx->storage != cy->storage || !atom_eq(d, cx->file, cy->file) ||
                             cx->file_offset != cy->file_offset))
        return DIFF("%s: storage/file origin differs", where);
    return true;
}

static bool graph_eq(irdiff *d, const qo_graph *ga, const qo_graph *gb);

static bool val_eq(irdiff *d, const qo_graph *ga, qo_val x, const qo_graph *gb, qo_val y, const char *where) {
    if (!x || !y) return (!x && !y) ? true : DIFF("%s: one value omitted", where);
    const qo_value *vx = &ga->vals[x], *vy = &gb->vals[y];
    if (!atom_eq(d, vx->name, vy->name))
        return DIFF("%s: value names differ ('%s' vs '%s')", where, qo_str(d->a, vx->name), qo_str(d->b, vy->name));
    if (vx->flags != vy->flags) return DIFF("%s: value '%s' flags differ (%u vs %u)", where, qo_str(d->a, vx->name), vx->flags, vy->flags);
    if (!atom_eq(d, vx->doc, vy->doc)) return DIFF("%s: value doc differs", where);
    if (vx->res != vy->res) return DIFF("%s: result index differs", where);
    if (!type_eq_(d, vx->type, vy->type, where)) return false;
    if (!!vx->cref != !!vy->cref) return DIFF("%s: value '%s' constant presence differs", where, qo_str(d->a, vx->name));
    if (vx->cref && !const_eq(d, vx->cref, vy->cref, where)) return false;
    return true;
}

/* Anonymous values are matched by position: both sides define them in the same order, so
 * comparing the defining node positions is enough; here we check names and shapes of use. */
static bool attr_eq(irdiff *d, const qo_attr *x, const qo_attr *y, const char *where) {
    if (!atom_eq(d, x->name, y->name) || x->kind != y->kind || x->n != y->n)
        return DIFF("%s: attribute '%s' name/kind/count differ", where, qo_str(d->a, x->name));
    if (!atom_eq(d, x->ref_attr_name, y->ref_attr_name) || !atom_eq(d, x->doc, y->doc))
        return DIFF("%s: attribute '%s' ref/doc differ", where, qo_str(d->a, x->name));
    switch (x->kind) {
    case QO_ATTR_FLOAT: return memcmp(&x->u.f, &y->u.f, 4) ? DIFF("%s: float attr differs", where) : true;
    case QO_ATTR_INT: return x->u.i != y->u.i ? DIFF("%s: int attr differs", where) : true;
    case QO_ATTR_STRING:
        return (x->u.s.n != y->u.s.n || memcmp(x->u.s.p, y->u.s.p, x->u.s.n)) ? DIFF("%s: string attr differs", where) : true;
    case QO_ATTR_TENSOR: return const_eq(d, x->u.t, y->u.t, where);
    case QO_ATTR_GRAPH: return graph_eq(d, d->a->graphs[x->u.g], d->b->graphs[y->u.g]);
    case QO_ATTR_FLOATS: return x->n && memcmp(x->u.fs, y->u.fs, 4 * x->n) ? DIFF("%s: floats differ", where) : true;
    case QO_ATTR_INTS: return x->n && memcmp(x->u.is, y->u.is, 8 * x->n) ? DIFF("%s: ints differ", where) : true;
    case QO_ATTR_STRINGS:
        for (uint32_t i = 0; i < x->n; i++)
            if (x->u.ss[i].n != y->u.ss[i].n || memcmp(x->u.ss[i].p, y->u.ss[i].p, x->u.ss[i].n))
                return DIFF("%s: strings differ", where);
        return true;
    case QO_ATTR_TENSORS:
        for (uint32_t i = 0; i < x->n; i++)
            if (!const_eq(d, x->u.ts[i], y->u.ts[i], where)) return false;
        return true;
    case QO_ATTR_GRAPHS:
        for (uint32_t i = 0; i < x->n; i++)
            if (!graph_eq(d, d->a->graphs[x->u.gs[i]], d->b->graphs[y->u.gs[i]])) return false;
        return true;
    case QO_ATTR_SPARSE_TENSOR:
    case QO_ATTR_SPARSE_TENSORS:
    case QO_ATTR_TYPE_PROTO:
    case QO_ATTR_TYPE_PROTOS:
        return (x->u.raw.n != y->u.raw.n || memcmp(x->u.raw.p, y->u.raw.p, x->u.raw.n)) ? DIFF("%s: raw attr differs", where) : true;
    default: return true;
    }
}

static bool graph_eq(irdiff *d, const qo_graph *ga, const qo_graph *gb) {
    char where[256];
    snprintf(where, sizeof where, "graph '%s'", qo_str(d->a, ga->name));
    if (!atom_eq(d, ga->name, gb->name) || !atom_eq(d, ga->doc, gb->doc)) return DIFF("%s: name/doc differ", where);
    if ((ga->parent == ga->index) != (gb->parent == gb->index)) return DIFF("%s: nesting differs", where);
    if (ga->parent != ga->index) {
        const qo_graph *pa = d->a->graphs[ga->parent], *pb = d->b->graphs[gb->parent];
        if (!atom_eq(d, pa->name, pb->name) || !atom_eq(d, pa->nodes[ga->parent_node].name, pb->nodes[gb->parent_node].name) ||
            !atom_eq(d, pa->nodes[ga->parent_node].op_type, pb->nodes[gb->parent_node].op_type))
            return DIFF("%s: parent graph/node differ", where);
    }
    if (ga->ninputs != gb->ninputs || ga->noutputs != gb->noutputs || ga->nconsts != gb->nconsts ||
        ga->ncaptures != gb->ncaptures || qo_graph_num_nodes(ga) != qo_graph_num_nodes(gb))
        return DIFF("%s: counts differ (in %u/%u out %u/%u const %u/%u cap %u/%u nodes %u/%u)", where, ga->ninputs,
                    gb->ninputs, ga->noutputs, gb->noutputs, ga->nconsts, gb->nconsts, ga->ncaptures, gb->ncaptures,
                    qo_graph_num_nodes(ga), qo_graph_num_nodes(gb));
    for (uint32_t i = 0; i < ga->ninputs; i++)
        if (!val_eq(d, ga, ga->inputs[i], gb, gb->inputs[i], where)) return false;
    for (uint32_t i = 0; i < ga->nconsts; i++)
        if (!val_eq(d, ga, ga->consts[i], gb, gb->consts[i], where)) return false;
    for (uint32_t i = 0; i < ga->ncaptures; i++)
        if (!val_eq(d, ga, ga->captures[i], gb, gb->captures[i], where)) return false;
    for (qo_node na = ga->first, nb = gb->first; na; na = ga->nodes[na].next, nb = gb->nodes[nb].next) {
        const qo_nodedata *x = &ga->nodes[na], *y = &gb->nodes[nb];
        snprintf(where, sizeof where, "graph '%s' node '%s' (%s)", qo_str(d->a, ga->name), qo_str(d->a, x->name),
                 qo_str(d->a, x->op_type));
        if (x->op != y->op || !atom_eq(d, x->domain, y->domain) || !atom_eq(d, x->op_type, y->op_type) ||
            !atom_eq(d, x->name, y->name) || !atom_eq(d, x->doc, y->doc))
            return DIFF("%s: op/domain/name/doc differ", where);
        if (x->nin != y->nin || x->nout != y->nout || x->nattr != y->nattr)
            return DIFF("%s: arity/attr count differ", where);
        for (uint32_t i = 0; i < x->nin; i++) {
            qo_val va = ga->uses[x->in0 + i].val, vb = gb->uses[y->in0 + i].val;
            if (!va != !vb || (va && !atom_eq(d, ga->vals[va].name, gb->vals[vb].name)))
                return DIFF("%s: input %u differs", where, i);
        }
        for (uint32_t i = 0; i < x->nout; i++)
            if (!val_eq(d, ga, ga->outs[x->out0 + i], gb, gb->outs[y->out0 + i], where)) return false;
        for (uint32_t i = 0; i < x->nattr; i++)
            if (!attr_eq(d, &ga->attrs[x->attr0 + i], &gb->attrs[y->attr0 + i], where)) return false;
    }
    for (uint32_t i = 0; i < ga->noutputs; i++) {
        qo_val va = qo_graph_output(ga, i), vb = qo_graph_output(gb, i);
        if (!va != !vb || (va && !atom_eq(d, ga->vals[va].name, gb->vals[vb].name)))
            return DIFF("graph '%s': output %u differs", qo_str(d->a, ga->name), i);
    }
    return true;
}

/* True if a and b are structurally the same module; otherwise d->why says where they differ. */
static bool module_eq(irdiff *d, const qo_module *a, const qo_module *b) {
    d->a = a;
    d->b = b;
    d->why[0] = 0;
    if (a->ir_version != b->ir_version || a->model_version != b->model_version ||
        !atom_eq(d, a->producer_name, b->producer_name) || !atom_eq(d, a->producer_version, b->producer_version) ||
        !atom_eq(d, a->domain, b->domain) || !atom_eq(d, a->doc, b->doc))
        return DIFF("module metadata differs");
    if (a->nopsets != b->nopsets || a->nprops != b->nprops || a->nfunctions != b->nfunctions)
        return DIFF("module opset/prop/function counts differ");
    for (uint32_t i = 0; i < a->nopsets; i++)
        if (!atom_eq(d, a->opsets[i].domain, b->opsets[i].domain) || a->opsets[i].version != b->opsets[i].version)
            return DIFF("opset %u differs", i);
    for (uint32_t i = 0; i < a->nprops; i++)
        if (!atom_eq(d, a->props[i].key, b->props[i].key) || !atom_eq(d, a->props[i].value, b->props[i].value))
            return DIFF("prop %u differs", i);
    for (uint32_t i = 0; i < a->nfunctions; i++)
        if (a->functions[i].n != b->functions[i].n || memcmp(a->functions[i].p, b->functions[i].p, a->functions[i].n))
            return DIFF("function %u differs", i);
    uint32_t ta = 0, tb = 0;
    for (uint32_t i = 0; i < a->ngraphs; i++) ta += a->graphs[i]->parent == a->graphs[i]->index;
    for (uint32_t i = 0; i < b->ngraphs; i++) tb += b->graphs[i]->parent == b->graphs[i]->index;
    if (ta != tb || a->ngraphs != b->ngraphs) return DIFF("graph counts differ (%u/%u top, %u/%u total)", ta, tb, a->ngraphs, b->ngraphs);
    for (uint32_t i = 0, j = 0; i < a->ngraphs; i++) {
        if (a->graphs[i]->parent != a->graphs[i]->index) continue;
        while (b->graphs[j]->parent != b->graphs[j]->index) j++;
        if (!graph_eq(d, a->graphs[i], b->graphs[j++])) return false;
    }
    return true;
}

#undef DIFF
#endif
