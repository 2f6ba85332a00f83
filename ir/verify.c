/* ir/verify.c — the IR verifier (contract in ir.h, qo_verify).
 *
 * Strategy: trust nothing that is maintained incrementally. Per graph, first check that every id
 * stored anywhere is in range (so the later checks can index freely), then rebuild from scratch what
 * the IR core maintains — program-order positions, use-slot ownership, per-value use counts and use
 * list membership, definition sites — and compare. Then the semantic rules that onnx.checker applies
 * (op arity and per-position required operands from the schema in effect at the model's opset,
 * attribute kinds, required and unknown attributes, SSA names, topological order) and the IR's own
 * (constants sized by their type, captures resolving by name to an enclosing graph, GRAPH attributes
 * owning their bodies). Every problem is reported, up to cx->max_errors, naming the graph, node and
 * op; checking continues after each.
 *
 * ONNX rules matched (onnx/checker.cc and OpSchema::Verify):
 *   - node output names are unique in the graph and must not reuse a name visible from an enclosing
 *     graph (no shadowing by node outputs); subgraph inputs and initializers may shadow outer names;
 *   - nodes read only names defined earlier (graph inputs, initializers, outer-scope names, earlier
 *     node outputs);
 *   - input/output counts within the schema's [min, max]; a 'single' (required) operand position may
 *     not be empty;
 *   - attributes: unknown names on default-domain ops are errors (except internal "__" names), the
 *     kind must match, required attributes must be present; deprecated or not-yet-defined ops at the
 *     model's opset are errors.
 *
 * Conventions: cx->max_errors == 0 means no limit. A module that imports no default-domain opset
 * (IR built in memory) is checked against the newest opset the table describes (QO_ATTRS_MAX_OPSET).
 * Bodies of erased nodes (graphs whose parent node is dead) are unreachable garbage and not checked.
 * Unknown ops (QO_OP_UNKNOWN) get the structural checks only; QONNX ops get kind/required checks but
 * unknown attributes on them are tolerated (qonnx adds attributes across versions). */
#include "attrs.h"
#include "ir.h"

#include <stdlib.h>
#include <string.h>

typedef struct gstate {
    bool skip;          /* detached (body of an erased node) or structurally broken: not checked */
    bool tables_ok;     /* all ids in range: deeper checks may index */
    uint32_t *pos;      /* program-order position + 1 of each node; 0 = not in the order list */
    qo_node *order;     /* the order list as walked (cycle-free prefix), nlive entries */
    uint32_t nlive;     /* nodes in the order list */
    struct named { qo_atom name; qo_val v; } *names; /* live named values, sorted by atom */
    uint32_t nnames;
} gstate;

typedef struct vctx {
    qo_ctx *cx;
    const qo_module *m;
    unsigned nerr;   /* errors found by this run */
    unsigned limit;  /* cx->max_errors, 0 = unlimited */
    int64_t opset;   /* default-domain opset used for schema checks */
    gstate *gs;
} vctx;

/* ---- reporting ------------------------------------------------------------------------------ */

static const char *gname(const qo_graph *g, char *buf, size_t cap) {
    const char *n = qo_str(g->m, g->name);
    if (n[0]) snprintf(buf, cap, "'%s'", n);
    else snprintf(buf, cap, "#%u", g->index);
    return buf;
}

/* Location of node n of g without walking the (possibly broken) order list. */
static qo_loc node_loc(const vctx *v, const qo_graph *g, qo_node n) {
    qo_loc l = {.node_index = -1};
    const qo_module *m = v->m;
    l.file = m->source_path ? qo_str(m, m->source_path) : NULL;
    if (!n || n >= g->nnodes) return l;
    const qo_nodedata *nd = &g->nodes[n];
    l.line = nd->line;
    l.col = nd->col;
    l.node = nd->name < m->natoms ? qo_str(m, nd->name) : "?";
    l.op = nd->op_type < m->natoms ? qo_str(m, nd->op_type) : "?";
    const gstate *s = &v->gs[g->index];
    if (!nd->line && s->pos && s->pos[n]) l.node_index = (int64_t)s->pos[n] - 1;
    return l;
}

static void report(vctx *v, const qo_graph *g, qo_node n, const char *fmt, ...) QO_PRINTF(4, 5);
static void report(vctx *v, const qo_graph *g, qo_node n, const char *fmt, ...) {
    v->nerr++;
    if (v->limit && v->nerr > v->limit) return;
    char msg[1024], gb[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qo_loc l = node_loc(v, g, n);
    if (!n) l.node = NULL, l.op = NULL;
    qo_error(v->cx, QO_ERR_VERIFY, l.file || n ? &l : NULL, "verify: graph %s: %s",
             gname(g, gb, sizeof gb), msg);
    if (v->limit && v->nerr == v->limit) qo_note(v->cx, NULL, "verify: stopping after %u errors", v->limit);
}

static bool full(const vctx *v) { return v->limit && v->nerr >= v->limit; }

/* Printable name of value x for messages: 'name' or %id. */
static const char *vname(const qo_graph *g, qo_val x, char *buf, size_t cap) {
    if (x < g->nvals && g->vals[x].name && g->vals[x].name < g->m->natoms)
        snprintf(buf, cap, "'%s'", qo_str(g->m, g->vals[x].name));
    else snprintf(buf, cap, "%%%u", x);
    return buf;
}

/* ---- stage 1: ids in range ------------------------------------------------------------------ */

static bool check_tables(vctx *v, const qo_graph *g) {
    const qo_module *m = v->m;
    unsigned before = v->nerr;
    if (g->nvals < 1 || g->nnodes < 1 || g->nuses < 1 || g->nvals > g->capvals ||
        g->nnodes > g->capnodes || g->nuses > g->capuses || g->nouts > g->capouts ||
        g->nattrs > g->capattrs) {
        report(v, g, 0, "table sizes are inconsistent (vals %u/%u, nodes %u/%u, uses %u/%u)", g->nvals,
               g->capvals, g->nnodes, g->capnodes, g->nuses, g->capuses);
        return false;
    }
    for (qo_val x = 1; x < g->nvals; x++) {
        const qo_value *vd = &g->vals[x];
        if (vd->def >= g->nnodes || vd->first_use >= g->nuses || vd->cref >= m->nconsts ||
            vd->type >= m->ntypes || vd->name >= m->natoms)
            report(v, g, 0, "value %%%u has an out-of-range id (def %u, first_use %u, cref %u, type %u)", x,
                   vd->def, vd->first_use, vd->cref, vd->type);
    }
    for (qo_use_id u = 1; u < g->nuses; u++) {
        const qo_use *us = &g->uses[u];
        if (us->val >= g->nvals || us->owner >= g->nnodes || us->next >= g->nuses || us->prev >= g->nuses)
            report(v, g, 0, "use slot %u has an out-of-range id (val %u, owner %u, next %u, prev %u)", u,
                   us->val, us->owner, us->next, us->prev);
    }
    for (qo_node n = 1; n < g->nnodes; n++) {
        const qo_nodedata *nd = &g->nodes[n];
        if ((uint64_t)nd->in0 + nd->nin > g->nuses || (nd->nin && nd->in0 == 0) ||
            (uint64_t)nd->out0 + nd->nout > g->nouts || (uint64_t)nd->attr0 + nd->nattr > g->nattrs ||
            nd->prev >= g->nnodes || nd->next >= g->nnodes || nd->name >= m->natoms ||
            nd->op_type >= m->natoms || nd->domain >= m->natoms || nd->op >= QO_OP_COUNT)
            report(v, g, 0, "node %u has an out-of-range field (inputs %u+%u, outputs %u+%u, attrs %u+%u)", n,
                   nd->in0, nd->nin, nd->out0, nd->nout, nd->attr0, nd->nattr);
    }
    for (uint32_t i = 0; i < g->nouts; i++)
        if (g->outs[i] >= g->nvals) report(v, g, 0, "node output entry %u names value %u out of range", i, g->outs[i]);
    for (uint32_t i = 0; i < g->ninputs; i++)
        if (!g->inputs[i] || g->inputs[i] >= g->nvals) report(v, g, 0, "graph input %u is value %u (out of range)", i, g->inputs[i]);
    for (uint32_t i = 0; i < g->nconsts; i++)
        if (!g->consts[i] || g->consts[i] >= g->nvals) report(v, g, 0, "initializer %u is value %u (out of range)", i, g->consts[i]);
    for (uint32_t i = 0; i < g->ncaptures; i++)
        if (!g->captures[i] || g->captures[i] >= g->nvals) report(v, g, 0, "capture %u is value %u (out of range)", i, g->captures[i]);
    for (uint32_t i = 0; i < g->noutputs; i++)
        if (!g->outputs[i] || g->outputs[i] >= g->nuses) report(v, g, 0, "graph output %u is use slot %u (out of range)", i, g->outputs[i]);
    if (g->first >= g->nnodes || g->last >= g->nnodes || g->insert_before >= g->nnodes)
        report(v, g, 0, "program order ends out of range (first %u, last %u)", g->first, g->last);
    return v->nerr == before;
}

/* ---- stage 2: program order ----------------------------------------------------------------- */

static void check_order(vctx *v, const qo_graph *g, gstate *s) {
    s->pos = qo_calloc(g->nnodes, sizeof(uint32_t));
    s->order = qo_calloc(g->nnodes, sizeof(qo_node));
    uint32_t k = 0;
    qo_node prev = 0;
    for (qo_node n = g->first; n; n = g->nodes[n].next) {
        if (s->pos[n]) {
            report(v, g, n, "program order list has a cycle through this node");
            break;
        }
        s->order[k] = n;
        s->pos[n] = ++k;
        if (g->nodes[n].prev != prev)
            report(v, g, n, "program order: prev link is %u, expected %u", g->nodes[n].prev, prev);
        if (g->nodes[n].flags & QO_NODE_DEAD) report(v, g, n, "erased node is still in program order");
        prev = n;
    }
    s->nlive = k;
    if (g->last != prev) report(v, g, g->last, "program order: last is node %u, the list ends at node %u", g->last, prev);
    for (qo_node n = 1; n < g->nnodes; n++)
        if (!(g->nodes[n].flags & QO_NODE_DEAD) && !s->pos[n])
            report(v, g, n, "live node is missing from program order");
    if (g->insert_before && (!s->pos[g->insert_before]))
        report(v, g, g->insert_before, "insertion point is not a node in program order");
}

/* ---- stage 3: uses, definitions ------------------------------------------------------------- */

static void check_uses_and_defs(vctx *v, const qo_graph *g, gstate *s) {
    const qo_module *m = v->m;
    char b1[300];
    /* who owns each use slot: node id, or UINT32_MAX - i for graph output i; 0 = free */
    uint32_t *slot = qo_calloc(g->nuses, sizeof(uint32_t));
    uint32_t *cnt = qo_calloc(g->nvals, sizeof(uint32_t));
    uint8_t *seen = qo_calloc(g->nuses, 1);
    qo_node *defn = qo_calloc(g->nvals, sizeof(qo_node)); /* node whose output list holds the value */
    uint32_t *nlisted = qo_calloc(g->nvals, sizeof(uint32_t)); /* in inputs/consts/captures: bits */
#define OUT_OWNER(i) (UINT32_MAX - (i))
    for (qo_node n = 1; n < g->nnodes; n++) {
        const qo_nodedata *nd = &g->nodes[n];
        if (nd->flags & QO_NODE_DEAD) continue;
        for (uint32_t i = 0; i < nd->nin; i++) {
            qo_use_id u = nd->in0 + i;
            if (slot[u]) report(v, g, n, "input slot %u (use %u) is shared with another node or output", i, u);
            slot[u] = n;
            if (g->uses[u].owner != n)
                report(v, g, n, "input slot %u (use %u) records owner %u", i, u, g->uses[u].owner);
        }
        for (uint32_t i = 0; i < nd->nout; i++) {
            qo_val x = g->outs[nd->out0 + i];
            if (!x) continue;
            if (defn[x]) {
                report(v, g, n, "output %u (value %s) is also an output of node %u", i, vname(g, x, b1, sizeof b1), defn[x]);
                continue;
            }
            defn[x] = n;
            const qo_value *vd = &g->vals[x];
            if (vd->flags & QO_VAL_DEAD) report(v, g, n, "output %u (value %s) is erased", i, vname(g, x, b1, sizeof b1));
            if (vd->def != n || vd->res != i)
                report(v, g, n, "output %u (value %s) points back to node %u result %u", i,
                       vname(g, x, b1, sizeof b1), vd->def, vd->res);
        }
    }
    for (uint32_t i = 0; i < g->noutputs; i++) {
        qo_use_id u = g->outputs[i];
        if (slot[u]) report(v, g, 0, "graph output %u (use %u) is shared with another slot", i, u);
        slot[u] = OUT_OWNER(i);
        if (g->uses[u].owner) report(v, g, 0, "graph output %u (use %u) records owner node %u", i, u, g->uses[u].owner);
        if (!g->uses[u].val) report(v, g, 0, "graph output %u reads no value", i);
    }
    /* rebuilt counts; free slots must be unlinked */
    for (qo_use_id u = 1; u < g->nuses; u++) {
        qo_val x = g->uses[u].val;
        if (!x) continue;
        if (!slot[u]) {
            report(v, g, g->uses[u].owner < g->nnodes ? g->uses[u].owner : 0,
                   "use slot %u belongs to no live node or graph output but still reads value %s", u,
                   vname(g, x, b1, sizeof b1));
            continue;
        }
        cnt[x]++;
    }
    /* maintained lists against the rebuild */
    for (qo_val x = 1; x < g->nvals && !full(v); x++) {
        const qo_value *vd = &g->vals[x];
        uint32_t k = 0;
        qo_use_id prev = 0;
        for (qo_use_id u = vd->first_use; u; u = g->uses[u].next) {
            if (seen[u]) {
                report(v, g, 0, "use list of value %s revisits use %u (cycle or shared)", vname(g, x, b1, sizeof b1), u);
                break;
            }
            seen[u] = 1;
            k++;
            const qo_use *us = &g->uses[u];
            if (us->val != x)
                report(v, g, us->owner < g->nnodes ? us->owner : 0, "use %u is in the use list of value %s but reads value %u", u,
                       vname(g, x, b1, sizeof b1), us->val);
            if (us->prev != prev)
                report(v, g, 0, "use list of value %s: use %u has prev %u, expected %u", vname(g, x, b1, sizeof b1), u, us->prev, prev);
            if (!slot[u])
                report(v, g, 0, "use list of value %s holds use %u that belongs to no live node or graph output",
                       vname(g, x, b1, sizeof b1), u);
            prev = u;
        }
        if (k != vd->nuses || k != cnt[x])
            report(v, g, vd->def, "value %s: use count %u, use list length %u, uses found by rebuild %u",
                   vname(g, x, b1, sizeof b1), vd->nuses, k, cnt[x]);
    }
    for (qo_use_id u = 1; u < g->nuses; u++)
        if (g->uses[u].val && slot[u] && !seen[u]) {
            uint32_t o = slot[u];
            report(v, g, o < g->nnodes ? o : 0, "use %u reads value %s but is missing from its use list", u,
                   vname(g, g->uses[u].val, b1, sizeof b1));
        }

    /* graph-level definitions: list membership <-> flags */
    static const struct { uint16_t flag; const char *what; } kinds[] = {
        {QO_VAL_INPUT, "graph input"}, {QO_VAL_CONST, "initializer"}, {QO_VAL_CAPTURE, "capture"}};
    const qo_val *lists[3] = {g->inputs, g->consts, g->captures};
    uint32_t lens[3] = {g->ninputs, g->nconsts, g->ncaptures};
    for (int k = 0; k < 3; k++)
        for (uint32_t i = 0; i < lens[k]; i++) {
            qo_val x = lists[k][i];
            if (nlisted[x] & (1u << (k * 8))) {
                report(v, g, 0, "value %s is listed twice as %s", vname(g, x, b1, sizeof b1), kinds[k].what);
                continue;
            }
            nlisted[x] |= 1u << (k * 8);
            if (!(g->vals[x].flags & kinds[k].flag))
                report(v, g, 0, "%s %u (value %s) lacks the %s flag", kinds[k].what, i, vname(g, x, b1, sizeof b1), kinds[k].what);
        }
    for (qo_val x = 1; x < g->nvals; x++) {
        const qo_value *vd = &g->vals[x];
        const uint16_t gflags = vd->flags & (QO_VAL_INPUT | QO_VAL_CONST | QO_VAL_CAPTURE);
        vname(g, x, b1, sizeof b1);
        if (vd->flags & QO_VAL_DEAD) {
            if (gflags) report(v, g, 0, "erased value %s still carries input/initializer/capture flags", b1);
            continue; /* uses of dead values are reported at the reader (stage 4) */
        }
        for (int k = 0; k < 3; k++)
            if ((vd->flags & kinds[k].flag) && !(nlisted[x] & (1u << (k * 8))))
                report(v, g, 0, "value %s is flagged %s but is not in the graph's %s list", b1, kinds[k].what, kinds[k].what);
        if (vd->def) {
            if (defn[x] != vd->def) {
                if (g->nodes[vd->def].flags & QO_NODE_DEAD)
                    report(v, g, vd->def, "live value %s is defined by an erased node", b1);
                else
                    report(v, g, vd->def, "value %s claims to be result %u of this node, which does not list it", b1, vd->res);
            }
            if (gflags) report(v, g, vd->def, "value %s is a node result and also an input/initializer/capture", b1);
        } else if (defn[x]) {
            report(v, g, defn[x], "value %s is a result of this node but records no defining node", b1);
        }
        if ((vd->flags & QO_VAL_CAPTURE) && (vd->flags & (QO_VAL_INPUT | QO_VAL_CONST)))
            report(v, g, 0, "value %s is both a capture and an input/initializer", b1);
        if ((vd->flags & QO_VAL_CONST) && !vd->cref) report(v, g, 0, "initializer %s has no constant", b1);
        if (vd->cref && !(vd->flags & (QO_VAL_CONST | QO_VAL_INPUT)))
            report(v, g, vd->def, "value %s carries constant data but is neither initializer nor input", b1);
        if (!vd->def && !gflags && vd->nuses)
            report(v, g, 0, "value %s is used but has no definition", b1);
        if ((vd->flags & QO_VAL_CAPTURE) && !vd->name) report(v, g, 0, "capture %%%u has no name to resolve", x);
        if (vd->cref && vd->type) {
            const qo_typedata *vt = qo_type_get(m, vd->type);
            const qo_typedata *ct = qo_type_get(m, qo_const_get(m, vd->cref)->type);
            bool same = ct && vt->kind == ct->kind && vt->elem == ct->elem && vt->rank == ct->rank &&
                        (vt->rank <= 0 || !memcmp(vt->dims, ct->dims, sizeof(int64_t) * (size_t)vt->rank));
            if (!same && vd->type != qo_const_get(m, vd->cref)->type)
                report(v, g, 0, "value %s has a type different from its constant's", b1);
        }
    }
    qo_free(slot);
    qo_free(cnt);
    qo_free(seen);
    qo_free(defn);
    qo_free(nlisted);
#undef OUT_OWNER
}

/* ---- constants ------------------------------------------------------------------------------ */

/* Checks constant c once (checked[] marks it); n != 0 names the referencing node. */
static void check_const(vctx *v, const qo_graph *g, qo_node n, qo_cref c, uint8_t *checked, const char *what) {
    const qo_module *m = v->m;
    if (!c || c >= m->nconsts) {
        report(v, g, n, "%s refers to constant %u, out of range", what, c);
        return;
    }
    if (checked[c]) return;
    checked[c] = 1;
    const qo_constdata *cd = m->consts[c];
    const qo_typedata *t = cd->type < m->ntypes ? qo_type_get(m, cd->type) : NULL;
    if (!t || t->kind != QO_TY_TENSOR || t->rank < 0) {
        report(v, g, n, "%s: constant #%u does not have a tensor type of known rank", what, c);
        return;
    }
    int64_t numel = qo_type_numel(m, cd->type);
    if (numel < 0) {
        report(v, g, n, "%s: constant #%u has a non-static shape", what, c);
        return;
    }
    size_t want = t->elem == QO_STR ? (size_t)numel * sizeof(qo_bytes) : qo_elem_storage(t->elem, numel);
    if (t->elem == QO_UNDEF || (t->elem != QO_STR && !qo_elem_bits(t->elem)))
        report(v, g, n, "%s: constant #%u has element type %d with no storage size", what, c, t->elem);
    else if (cd->nbytes != want)
        report(v, g, n, "%s: constant #%u holds %zu bytes, its type %s[%lld elements] needs %zu", what, c, cd->nbytes,
               qo_elem_name(t->elem), (long long)numel, want);
    else if (want && !cd->data)
        report(v, g, n, "%s: constant #%u has no data", what, c);
}

/* ---- stage 4: nodes ------------------------------------------------------------------------- */

static int64_t node_opset(const vctx *v, const qo_graph *g, qo_node n) {
    const qo_nodedata *nd = &g->nodes[n];
    if (qo_op_info(nd->op)->dom == D_ONNX) return v->opset;
    int64_t o = qo_module_opset(v->m, qo_str(v->m, nd->domain));
    return o > 0 ? o : 1;
}

static void check_arity(vctx *v, const qo_graph *g, qo_node n, int64_t opset) {
    const qo_nodedata *nd = &g->nodes[n];
    const qo_opinfo *oi = qo_op_info(nd->op);
    const char *opn = oi->name;
    /* trailing omitted operands are equivalent to absent ones for the upper bound; the slots still
     * count for the lower bound (ONNX writes "" placeholders, e.g. Loop's M and cond) */
    uint32_t nin = nd->nin, nout = nd->nout, ein = nin, eout = nout;
    while (ein && !g->uses[nd->in0 + ein - 1].val) ein--;
    while (eout && !g->outs[nd->out0 + eout - 1]) eout--;
    bool bad = false;
    if ((int)nin < oi->imin || (oi->imax >= 0 && (int)ein > oi->imax)) {
        if (oi->imax < 0) report(v, g, n, "%s takes at least %d inputs, node has %u", opn, oi->imin, nin);
        else report(v, g, n, "%s takes %d to %d inputs, node has %u", opn, oi->imin, oi->imax, ein > (uint32_t)oi->imax ? ein : nin);
        bad = true;
    }
    if ((int)nout < oi->omin || (oi->omax >= 0 && (int)eout > oi->omax)) {
        if (oi->omax < 0) report(v, g, n, "%s has at least %d outputs, node has %u", opn, oi->omin, nout);
        else report(v, g, n, "%s has %d to %d outputs, node has %u", opn, oi->omin, oi->omax, eout > (uint32_t)oi->omax ? eout : nout);
        bad = true;
    }
    const qo_op_sig *sig = qo_op_sig_at((qo_op)nd->op, opset);
    if (!sig) {
        uint32_t cnt;
        const qo_op_sig *all = qo_op_sigs_all((qo_op)nd->op, &cnt);
        report(v, g, n, "%s does not exist at opset %lld (defined from opset %d)", opn, (long long)opset,
               all ? all[0].since : 0);
        return;
    }
    if (sig->deprecated) report(v, g, n, "%s is deprecated at opset %lld (since opset %d)", opn, (long long)opset, sig->since);
    if (bad) return;
    if ((int)nin < sig->imin || (sig->imax >= 0 && (int)ein > sig->imax))
        report(v, g, n, "%s-%d takes %d to %d inputs, node has %u", opn, sig->since, sig->imin, sig->imax,
               (int)nin < sig->imin ? nin : ein);
    if ((int)nout < sig->omin || (sig->omax >= 0 && (int)eout > sig->omax))
        report(v, g, n, "%s-%d has %d to %d outputs, node has %u", opn, sig->since, sig->omin, sig->omax,
               (int)nout < sig->omin ? nout : eout);
    /* positions past the formal parameters belong to a variadic last one (which ONNX does not
     * check for emptiness) or are trailing omitted slots already judged by the count check */
    size_t np = strlen(sig->ins);
    for (uint32_t i = 0; i < nin && i < np; i++)
        if (sig->ins[i] == 'S' && !g->uses[nd->in0 + i].val) report(v, g, n, "required input %u of %s is omitted", i, opn);
    np = strlen(sig->outs);
    for (uint32_t i = 0; i < nout && i < np; i++)
        if (sig->outs[i] == 'S' && !g->outs[nd->out0 + i]) report(v, g, n, "required output %u of %s is omitted", i, opn);
}

static void check_attrs(vctx *v, const qo_graph *g, qo_node n, int64_t opset, uint8_t *cchecked, uint32_t *grefs) {
    const qo_module *m = v->m;
    const qo_nodedata *nd = &g->nodes[n];
    const qo_op op = (qo_op)nd->op;
    const bool dflt_domain = op != QO_OP_UNKNOWN && qo_op_info(op)->dom == D_ONNX;
    const char *prevname = NULL;
    for (uint32_t i = 0; i < nd->nattr; i++) {
        const qo_attr *a = &g->attrs[nd->attr0 + i];
        if (!a->name || a->name >= m->natoms) {
            report(v, g, n, "attribute %u has no name", i);
            continue;
        }
        const char *an = qo_str(m, a->name);
        if (prevname) {
            int c = strcmp(prevname, an);
            if (c == 0) report(v, g, n, "attribute '%s' appears twice", an);
            else if (c > 0) report(v, g, n, "attributes are not sorted by name ('%s' after '%s')", an, prevname);
        }
        prevname = an;
        if (a->kind < QO_ATTR_FLOAT || a->kind > QO_ATTR_TYPE_PROTOS) {
            report(v, g, n, "attribute '%s' has invalid kind %d", an, a->kind);
            continue;
        }
        switch (a->kind) {
        case QO_ATTR_GRAPH:
        case QO_ATTR_GRAPHS: {
            uint32_t cnt = a->kind == QO_ATTR_GRAPH ? 1 : a->n;
            for (uint32_t j = 0; j < cnt; j++) {
                uint32_t gi = a->kind == QO_ATTR_GRAPH ? a->u.g : a->u.gs[j];
                if (gi == 0 || gi >= m->ngraphs || !m->graphs[gi]) {
                    report(v, g, n, "attribute '%s' refers to graph %u, which does not exist", an, gi);
                    continue;
                }
                const qo_graph *sg = m->graphs[gi];
                grefs[gi]++;
                if (sg->parent != g->index || sg->parent_node != n)
                    report(v, g, n, "attribute '%s' refers to graph %u whose parent is graph %u node %u", an, gi,
                           sg->parent, sg->parent_node);
            }
            break;
        }
        case QO_ATTR_TENSOR: check_const(v, g, n, a->u.t, cchecked, "tensor attribute"); break;
        case QO_ATTR_TENSORS:
            for (uint32_t j = 0; j < a->n; j++) check_const(v, g, n, a->u.ts[j], cchecked, "tensor attribute");
            break;
        default: break;
        }
        if (op == QO_OP_UNKNOWN || a->ref_attr_name) continue;
        const qo_attr_spec *sp = qo_attr_spec_find(op, an, opset);
        if (!sp) {
            if (dflt_domain && !(an[0] == '_' && an[1] == '_'))
                report(v, g, n, "unknown attribute '%s' for %s at opset %lld", an, qo_op_info(op)->name, (long long)opset);
            continue;
        }
        if (sp->kind != a->kind)
            report(v, g, n, "attribute '%s' has kind %s, expected %s", an, qo_attr_kind_name(a->kind),
                   qo_attr_kind_name(sp->kind));
    }
    if (op == QO_OP_UNKNOWN) return;
    for (const qo_attr_spec *sp = NULL; (sp = qo_attr_spec_next(op, opset, sp));)
        if (sp->required && !qo_node_attr(g, n, sp->name))
            report(v, g, n, "required attribute '%s' of %s is missing", sp->name, qo_op_info(op)->name);
}

static void check_nodes(vctx *v, const qo_graph *g, gstate *s, uint8_t *cchecked, uint32_t *grefs) {
    const qo_module *m = v->m;
    char b1[300];
    for (uint32_t k = 0; k < s->nlive && !full(v); k++) {
        const qo_node n = s->order[k];
        const qo_nodedata *nd = &g->nodes[n];
        if (!nd->op_type) report(v, g, n, "node has no op_type");
        if (nd->op != QO_OP_UNKNOWN) {
            qo_op want = qo_op_lookup(qo_str(m, nd->domain), qo_str(m, nd->op_type));
            if (want != nd->op)
                report(v, g, n, "op enum %s does not match op_type '%s' in domain '%s'", qo_op_info(nd->op)->name,
                       qo_str(m, nd->op_type), qo_str(m, nd->domain));
        }
        /* dominance: every operand is defined before the node */
        for (uint32_t i = 0; i < nd->nin; i++) {
            qo_val x = g->uses[nd->in0 + i].val;
            if (!x) continue;
            const qo_value *vd = &g->vals[x];
            vname(g, x, b1, sizeof b1);
            if (vd->flags & QO_VAL_DEAD) report(v, g, n, "input %u reads erased value %s", i, b1);
            else if (vd->def) {
                if (!s->pos[vd->def]) report(v, g, n, "input %u reads value %s of a node not in program order", i, b1);
                else if (s->pos[vd->def] >= s->pos[n])
                    report(v, g, n, "input %u reads value %s, which is defined %s in program order", i, b1,
                           vd->def == n ? "by this node" : "later");
            } else if (!(vd->flags & (QO_VAL_INPUT | QO_VAL_CONST | QO_VAL_CAPTURE)))
                report(v, g, n, "input %u reads value %s, which has no definition", i, b1);
        }
        int64_t opset = node_opset(v, g, n);
        if (nd->op != QO_OP_UNKNOWN) check_arity(v, g, n, opset);
        check_attrs(v, g, n, opset, cchecked, grefs);
    }
    for (uint32_t i = 0; i < g->noutputs; i++) {
        qo_val x = g->uses[g->outputs[i]].val;
        if (x && (g->vals[x].flags & QO_VAL_DEAD)) report(v, g, 0, "graph output %u reads erased value %s", i, vname(g, x, b1, sizeof b1));
    }
}

/* ---- names and scopes ----------------------------------------------------------------------- */

static int cmp_named(const void *a, const void *b) {
    const struct named *x = a, *y = b;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    return x->v < y->v ? -1 : x->v > y->v;
}

static void build_names(vctx *v, const qo_graph *g, gstate *s) {
    s->names = qo_calloc(g->nvals, sizeof *s->names);
    for (qo_val x = 1; x < g->nvals; x++) {
        const qo_value *vd = &g->vals[x];
        if ((vd->flags & QO_VAL_DEAD) || !vd->name) continue;
        if (!vd->def && !(vd->flags & (QO_VAL_INPUT | QO_VAL_CONST | QO_VAL_CAPTURE))) continue; /* orphan */
        s->names[s->nnames].name = vd->name;
        s->names[s->nnames].v = x;
        s->nnames++;
    }
    qsort(s->names, s->nnames, sizeof *s->names, cmp_named);
    for (uint32_t i = 1; i < s->nnames; i++)
        if (s->names[i].name == s->names[i - 1].name) {
            qo_val x = s->names[i].v;
            report(v, g, g->vals[x].def, "value name '%s' is defined more than once in the graph (SSA)",
                   qo_str(v->m, s->names[i].name));
        }
}

/* Is a value named `name` visible in graph gi right before node `before` (0 = anywhere)? Returns the
 * graph index where it was found (searching outward), or -1. */
static int64_t resolve_outward(const vctx *v, uint32_t gi, qo_node before, qo_atom name) {
    const qo_module *m = v->m;
    for (uint32_t hops = 0; hops <= m->ngraphs; hops++) {
        const qo_graph *g = m->graphs[gi];
        const gstate *s = &v->gs[gi];
        if (s->names) {
            struct named key = {name, 0};
            uint32_t lo = 0, hi = s->nnames;
            while (lo < hi) {
                uint32_t mid = (lo + hi) / 2;
                if (cmp_named(&s->names[mid], &key) < 0) lo = mid + 1;
                else hi = mid;
            }
            for (; lo < s->nnames && s->names[lo].name == name; lo++) {
                const qo_value *vd = &g->vals[s->names[lo].v];
                if (!vd->def) return gi;
                if (!before || (s->pos && s->pos[vd->def] && s->pos[before] && s->pos[vd->def] < s->pos[before]))
                    return gi;
            }
        }
        if (gi == 0 || g->parent == gi) return -1;
        before = g->parent_node;
        gi = g->parent;
    }
    return -1;
}

static void check_scopes(vctx *v, const qo_graph *g) {
    const qo_module *m = v->m;
    if (g->index == 0 || g->parent == g->index) return;
    /* captures resolve outward */
    for (uint32_t i = 0; i < g->ncaptures; i++) {
        qo_val x = g->captures[i];
        const qo_value *vd = &g->vals[x];
        if (!vd->name || (vd->flags & QO_VAL_DEAD)) continue;
        if (resolve_outward(v, g->parent, g->parent_node, vd->name) < 0)
            report(v, g, 0, "capture '%s' does not name a value visible in an enclosing graph at node %u",
                   qo_str(m, vd->name), g->parent_node);
    }
    /* node results may not shadow names of enclosing scopes */
    for (qo_val x = 1; x < g->nvals; x++) {
        const qo_value *vd = &g->vals[x];
        if ((vd->flags & QO_VAL_DEAD) || !vd->def || !vd->name) continue;
        int64_t gi = resolve_outward(v, g->parent, g->parent_node, vd->name);
        if (gi >= 0) {
            char gb[300];
            report(v, g, vd->def, "output name '%s' is already defined in enclosing graph %s (ONNX forbids reuse of names)",
                   qo_str(m, vd->name), gname(m->graphs[gi], gb, sizeof gb));
        }
    }
}

/* ---- graph tree ----------------------------------------------------------------------------- */

/* Marks graphs whose parent node is erased (bodies of deleted If/Loop nodes: unreachable garbage)
 * and reports graphs whose parent links are broken. */
static void check_tree(vctx *v) {
    const qo_module *m = v->m;
    for (uint32_t i = 0; i < m->ngraphs; i++) {
        const qo_graph *g = m->graphs[i];
        gstate *s = &v->gs[i];
        if (!g) {
            qo_error(v->cx, QO_ERR_VERIFY, NULL, "verify: graph slot %u is empty", i);
            v->nerr++;
            s->skip = true;
            continue;
        }
        if (g->m != m || g->index != i) {
            report(v, g, 0, "graph records module/index %u, found at %u", g->index, i);
            s->skip = true;
            continue;
        }
        if (i == 0) {
            if (g->parent != 0 || g->parent_node) report(v, g, 0, "main graph has a parent");
            continue;
        }
        /* walk up: must reach graph 0 through live parent nodes */
        uint32_t gi = i, hops = 0;
        while (gi != 0 && hops++ <= m->ngraphs) {
            const qo_graph *c = m->graphs[gi];
            if (!c || c->parent >= m->ngraphs || c->parent == gi || !m->graphs[c->parent]) {
                report(v, g, 0, "graph is not nested in the main graph (parent chain broken at graph %u)", gi);
                s->skip = true;
                break;
            }
            const qo_graph *p = m->graphs[c->parent];
            if (!c->parent_node || c->parent_node >= p->nnodes) {
                report(v, g, 0, "graph's parent node %u is out of range in graph %u", c->parent_node, c->parent);
                s->skip = true;
                break;
            }
            if (p->nodes[c->parent_node].flags & QO_NODE_DEAD) {
                s->skip = true; /* detached body */
                break;
            }
            gi = c->parent;
        }
        if (hops > m->ngraphs) {
            report(v, g, 0, "graph parent chain has a cycle");
            s->skip = true;
        }
    }
}

/* ---- entry point ---------------------------------------------------------------------------- */

qo_status qo_verify(qo_ctx *cx, const qo_module *m) {
    vctx v = {.cx = cx, .m = m, .limit = cx->max_errors};
    v.opset = qo_module_opset(m, "");
    if (v.opset <= 0) v.opset = QO_ATTRS_MAX_OPSET;
    v.gs = qo_calloc(m->ngraphs + 1, sizeof(gstate));
    uint8_t *cchecked = qo_calloc(m->nconsts + 1, 1);
    uint32_t *grefs = qo_calloc(m->ngraphs + 1, sizeof(uint32_t));
    if (!m->ngraphs) {
        qo_error(cx, QO_ERR_VERIFY, NULL, "verify: module has no main graph");
        v.nerr++;
    }
    check_tree(&v);
    for (uint32_t i = 0; i < m->ngraphs && !full(&v); i++) {
        const qo_graph *g = m->graphs[i];
        gstate *s = &v.gs[i];
        if (s->skip) continue;
        s->tables_ok = check_tables(&v, g);
        if (!s->tables_ok) {
            s->skip = true;
            continue;
        }
        check_order(&v, g, s);
        check_uses_and_defs(&v, g, s);
        for (uint32_t k = 0; k < g->nconsts; k++) {
            qo_val x = g->consts[k];
            if (!(g->vals[x].flags & QO_VAL_DEAD) && g->vals[x].cref) {
                char b[300], what[340];
                snprintf(what, sizeof what, "initializer %s", vname(g, x, b, sizeof b));
                check_const(&v, g, 0, g->vals[x].cref, cchecked, what);
            }
        }
        for (uint32_t k = 0; k < g->ninputs; k++) {
            qo_val x = g->inputs[k];
            if (g->vals[x].cref) {
                char b[300], what[340];
                snprintf(what, sizeof what, "input default %s", vname(g, x, b, sizeof b));
                check_const(&v, g, 0, g->vals[x].cref, cchecked, what);
            }
        }
        check_nodes(&v, g, s, cchecked, grefs);
        build_names(&v, g, s);
    }
    for (uint32_t i = 1; i < m->ngraphs && !full(&v); i++) {
        const qo_graph *g = m->graphs[i];
        if (v.gs[i].skip || v.gs[g->parent].skip) continue;
        if (grefs[i] != 1)
            report(&v, g, 0, "graph is referenced by %u GRAPH attributes of its parent node, expected 1", grefs[i]);
        check_scopes(&v, g);
    }
    for (uint32_t i = 0; i <= m->ngraphs; i++) {
        qo_free(v.gs[i].pos);
        qo_free(v.gs[i].order);
        qo_free(v.gs[i].names);
    }
    qo_free(v.gs);
    qo_free(cchecked);
    qo_free(grefs);
    return v.nerr ? QO_ERR_VERIFY : QO_OK;
}
