/* ir/ir.c — module, atoms, uniqued types, constant pool, graphs, values, nodes, use lists,
 * attributes and program order. The contracts are in ir.h. */
#include "ir.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- hashing -------------------------------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}
#define HASH_SEED 0xcbf29ce484222325ull

/* ---- module --------------------------------------------------------------------------------- */

qo_module *qo_module_new(void) {
    qo_module *m = qo_calloc(1, sizeof *m);
    m->ir_version = 8;
    qo_intern_n(m, "", 0); /* atom 0 */
    QO_GROW(m->types, m->captypes, 1);
    m->ntypes = 1; /* type 0 = unknown */
    QO_GROW(m->consts, m->capconsts, 1);
    m->nconsts = 1; /* cref 0 = none */
    return m;
}

static void graph_free(qo_graph *g) {
    qo_free(g->vals);
    qo_free(g->nodes);
    qo_free(g->uses);
    qo_free(g->outs);
    qo_free(g->attrs);
    qo_free(g->inputs);
    qo_free(g->outputs);
    qo_free(g->consts);
    qo_free(g->captures);
    qo_free(g);
}

void qo_module_free(qo_module *m) {
    if (!m) return;
    for (uint32_t i = 0; i < m->ngraphs; i++) graph_free(m->graphs[i]);
    qo_free(m->graphs);
    for (uint32_t i = 0; i < m->nmaps; i++) munmap(m->maps[i].p, m->maps[i].n);
    qo_free(m->maps);
    qo_free(m->atom_str);
    qo_free(m->atom_len);
    qo_free(m->atom_hash);
    qo_free(m->types);
    qo_free(m->type_hash);
    qo_free(m->consts);
    qo_free(m->opsets);
    qo_free(m->props);
    qo_free(m->functions);
    qo_arena_free(&m->arena);
    qo_free(m);
}

void qo_module_add_mapping(qo_module *m, void *p, size_t n) {
    QO_GROW(m->maps, m->capmaps, m->nmaps + 1);
    m->maps[m->nmaps].p = p;
    m->maps[m->nmaps].n = n;
    m->nmaps++;
}

int64_t qo_module_opset(const qo_module *m, const char *domain) {
    for (uint32_t i = 0; i < m->nopsets; i++) {
        const char *d = qo_str(m, m->opsets[i].domain);
        bool dflt = !domain[0] || strcmp(domain, "ai.onnx") == 0;
        if (strcmp(d, domain) == 0 || (dflt && (!d[0] || strcmp(d, "ai.onnx") == 0)))
            return m->opsets[i].version;
    }
    return 0;
}

void qo_module_set_opset(qo_module *m, const char *domain, int64_t version) {
    qo_atom d = qo_intern(m, domain);
    for (uint32_t i = 0; i < m->nopsets; i++)
        if (m->opsets[i].domain == d) {
            m->opsets[i].version = version;
            return;
        }
    QO_GROW(m->opsets, m->capopsets, m->nopsets + 1);
    m->opsets[m->nopsets].domain = d;
    m->opsets[m->nopsets].version = version;
    m->nopsets++;
}

qo_graph *qo_module_main(const qo_module *m) { return m->ngraphs ? m->graphs[0] : NULL; }

/* ---- atoms ---------------------------------------------------------------------------------- */

static void atom_rehash(qo_module *m, uint32_t ncap) {
    qo_free(m->atom_hash);
    m->atom_hash = qo_calloc(ncap, sizeof(uint32_t));
    m->atom_hcap = ncap;
    for (uint32_t a = 1; a < m->natoms; a++) {
        uint32_t h = (uint32_t)hash_bytes(HASH_SEED, m->atom_str[a], m->atom_len[a]) & (ncap - 1);
        while (m->atom_hash[h]) h = (h + 1) & (ncap - 1);
        m->atom_hash[h] = a;
    }
}

qo_atom qo_intern_n(qo_module *m, const char *s, size_t n) {
    if (m->natoms == 0) { /* reserve atom 0 = "" */
        QO_GROW(m->atom_str, m->capatoms, 1);
        m->atom_len = qo_realloc(m->atom_len, m->capatoms * sizeof(uint32_t));
        m->atom_str[0] = qo_arena_strndup(&m->arena, "", 0);
        m->atom_len[0] = 0;
        m->natoms = 1;
        atom_rehash(m, 64);
    }
    if (n == 0) return 0;
    uint32_t h = (uint32_t)hash_bytes(HASH_SEED, s, n) & (m->atom_hcap - 1);
    for (;;) {
        uint32_t a = m->atom_hash[h];
        if (!a) break;
        if (m->atom_len[a] == n && memcmp(m->atom_str[a], s, n) == 0) return a;
        h = (h + 1) & (m->atom_hcap - 1);
    }
    uint32_t a = m->natoms;
    if (a + 1 > m->capatoms) {
        uint32_t oc = m->capatoms;
        QO_GROW(m->atom_str, m->capatoms, a + 1);
        m->atom_len = qo_realloc(m->atom_len, m->capatoms * sizeof(uint32_t));
        (void)oc;
    }
    m->atom_str[a] = qo_arena_strndup(&m->arena, s, n);
    m->atom_len[a] = (uint32_t)n;
    m->natoms++;
    m->atom_hash[h] = a;
    if (m->natoms * 2 > m->atom_hcap) atom_rehash(m, m->atom_hcap * 2);
    return a;
}

qo_atom qo_intern(qo_module *m, const char *s) { return qo_intern_n(m, s ? s : "", s ? strlen(s) : 0); }

const char *qo_str(const qo_module *m, qo_atom a) {
    QO_ASSERT(a < m->natoms || (a == 0));
    return m->natoms ? m->atom_str[a] : "";
}

size_t qo_strlen(const qo_module *m, qo_atom a) { return m->natoms ? m->atom_len[a] : 0; }

/* ---- types ---------------------------------------------------------------------------------- */

static uint64_t type_hash(const qo_typedata *t) {
    uint64_t h = HASH_SEED;
    h = hash_bytes(h, &t->kind, 1);
    h = hash_bytes(h, &t->elem, 1);
    h = hash_bytes(h, &t->rank, sizeof t->rank);
    h = hash_bytes(h, &t->inner, sizeof t->inner);
    if (t->rank > 0) {
        h = hash_bytes(h, t->dims, sizeof(int64_t) * (size_t)t->rank);
        if (t->syms) h = hash_bytes(h, t->syms, sizeof(qo_atom) * (size_t)t->rank);
    }
    if (t->quant) h = hash_bytes(h, t->quant, sizeof *t->quant);
    return h;
}

static bool type_eq(const qo_typedata *a, const qo_typedata *b) {
    if (a->kind != b->kind || a->elem != b->elem || a->rank != b->rank || a->inner != b->inner)
        return false;
    if (a->rank > 0) {
        if (memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank)) return false;
        if (!a->syms != !b->syms) return false;
        if (a->syms && memcmp(a->syms, b->syms, sizeof(qo_atom) * (size_t)a->rank)) return false;
    }
    if (!a->quant != !b->quant) return false;
    if (a->quant && memcmp(a->quant, b->quant, sizeof *a->quant)) return false;
    return true;
}

static void type_rehash(qo_module *m, uint32_t ncap) {
    qo_free(m->type_hash);
    m->type_hash = qo_calloc(ncap, sizeof(uint32_t));
    m->type_hcap = ncap;
    for (uint32_t t = 1; t < m->ntypes; t++) {
        uint32_t h = (uint32_t)type_hash(m->types[t]) & (ncap - 1);
        while (m->type_hash[h]) h = (h + 1) & (ncap - 1);
        m->type_hash[h] = t;
    }
}

/* Finds or inserts `key` (its arrays are borrowed; copied into the arena on insert). */
static qo_type type_intern(qo_module *m, qo_typedata key) {
    if (!m->type_hcap) type_rehash(m, 64);
    /* canonicalize: a syms array of all zeros is the same as none */
    if (key.syms && key.rank > 0) {
        bool any = false;
        for (int32_t i = 0; i < key.rank; i++) any |= key.syms[i] != 0;
        if (!any) key.syms = NULL;
    }
    if (key.rank <= 0) key.dims = NULL, key.syms = NULL;
    uint32_t h = (uint32_t)type_hash(&key) & (m->type_hcap - 1);
    for (;;) {
        uint32_t t = m->type_hash[h];
        if (!t) break;
        if (type_eq(m->types[t], &key)) return t;
        h = (h + 1) & (m->type_hcap - 1);
    }
    qo_typedata td = key;
    if (key.rank > 0) {
        td.dims = qo_arena_memdup(&m->arena, key.dims, sizeof(int64_t) * (size_t)key.rank);
        if (key.syms) td.syms = qo_arena_memdup(&m->arena, key.syms, sizeof(qo_atom) * (size_t)key.rank);
    }
    if (key.quant) td.quant = qo_arena_memdup(&m->arena, key.quant, sizeof *key.quant);
    QO_GROW(m->types, m->captypes, m->ntypes + 1);
    qo_type id = m->ntypes++;
    m->types[id] = qo_arena_memdup(&m->arena, &td, sizeof td);
    m->type_hash[h] = id;
    if (m->ntypes * 2 > m->type_hcap) type_rehash(m, m->type_hcap * 2);
    return id;
}

qo_type qo_type_tensor(qo_module *m, qo_elem e, int32_t rank, const int64_t *dims, const qo_atom *syms) {
    qo_typedata k = {.kind = QO_TY_TENSOR, .elem = (uint8_t)e, .rank = rank, .dims = dims, .syms = syms};
    return type_intern(m, k);
}

qo_type qo_type_sparse(qo_module *m, qo_elem e, int32_t rank, const int64_t *dims, const qo_atom *syms) {
    qo_typedata k = {.kind = QO_TY_SPARSE_TENSOR, .elem = (uint8_t)e, .rank = rank, .dims = dims, .syms = syms};
    return type_intern(m, k);
}

qo_type qo_type_sequence(qo_module *m, qo_type inner) {
    qo_typedata k = {.kind = QO_TY_SEQUENCE, .rank = -1, .inner = inner};
    return type_intern(m, k);
}

qo_type qo_type_optional(qo_module *m, qo_type inner) {
    qo_typedata k = {.kind = QO_TY_OPTIONAL, .rank = -1, .inner = inner};
    return type_intern(m, k);
}

qo_type qo_type_map(qo_module *m, qo_elem key, qo_type value) {
    qo_typedata k = {.kind = QO_TY_MAP, .elem = (uint8_t)key, .rank = -1, .inner = value};
    return type_intern(m, k);
}

qo_type qo_type_with_quant(qo_module *m, qo_type t, const qo_quant *q) {
    QO_ASSERT(t && t < m->ntypes);
    qo_typedata k = *m->types[t];
    qo_quant qc;
    if (q) {
        memset(&qc, 0, sizeof qc); /* padding bytes take part in hashing */
        qc = *q;
        k.quant = &qc;
    } else {
        k.quant = NULL;
    }
    return type_intern(m, k);
}

const qo_typedata *qo_type_get(const qo_module *m, qo_type t) {
    if (!t) return NULL;
    QO_ASSERT(t < m->ntypes);
    return m->types[t];
}

int64_t qo_type_numel(const qo_module *m, qo_type t) {
    const qo_typedata *td = qo_type_get(m, t);
    if (!td || td->kind != QO_TY_TENSOR || td->rank < 0) return -1;
    int64_t n = 1;
    for (int32_t i = 0; i < td->rank; i++) {
        if (td->dims[i] < 0) return -1;
        if (td->dims[i] && n > INT64_MAX / td->dims[i]) return -1;
        n *= td->dims[i];
    }
    return n;
}

qo_elem qo_type_elem(const qo_module *m, qo_type t) {
    const qo_typedata *td = qo_type_get(m, t);
    return td && (td->kind == QO_TY_TENSOR || td->kind == QO_TY_SPARSE_TENSOR) ? (qo_elem)td->elem
                                                                                : QO_UNDEF;
}

/* ---- constants ------------------------------------------------------------------------------ */

qo_cref qo_const_new(qo_module *m, qo_type type, const void *data, size_t nbytes, bool copy) {
    QO_GROW(m->consts, m->capconsts, m->nconsts + 1);
    qo_cref c = m->nconsts++;
    qo_constdata *cd = qo_arena_alloc(&m->arena, sizeof *cd);
    m->consts[c] = cd;
    memset(cd, 0, sizeof *cd);
    cd->type = type;
    cd->nbytes = nbytes;
    if (qo_type_elem(m, type) == QO_STR) {
        size_t n = nbytes / sizeof(qo_bytes);
        qo_bytes *dst = qo_arena_alloc(&m->arena, n * sizeof(qo_bytes));
        const qo_bytes *src = data;
        for (size_t i = 0; i < n; i++) {
            dst[i].p = qo_arena_memdup(&m->arena, src[i].p, src[i].n);
            dst[i].n = src[i].n;
        }
        cd->data = dst;
        cd->storage = QO_CONST_OWNED;
    } else if (copy) {
        cd->data = qo_arena_memdup(&m->arena, data, nbytes);
        cd->storage = QO_CONST_OWNED;
    } else {
        cd->data = data;
        cd->storage = QO_CONST_BORROWED;
    }
    return c;
}

const qo_constdata *qo_const_get(const qo_module *m, qo_cref c) {
    QO_ASSERT(c && c < m->nconsts);
    return m->consts[c];
}

qo_constdata *qo_const_get_mut(qo_module *m, qo_cref c) {
    QO_ASSERT(c && c < m->nconsts);
    return m->consts[c];
}

/* ---- graphs --------------------------------------------------------------------------------- */

qo_graph *qo_graph_new(qo_module *m, qo_graph *parent, qo_node parent_node, const char *name) {
    qo_graph *g = qo_calloc(1, sizeof *g);
    g->m = m;
    g->index = m->ngraphs;
    g->parent = parent ? parent->index : g->index;
    g->parent_node = parent_node;
    g->name = qo_intern(m, name);
    /* id 0 of every table is the reserved "none" entry */
    QO_GROW(g->vals, g->capvals, 1);
    g->nvals = 1;
    QO_GROW(g->nodes, g->capnodes, 1);
    g->nnodes = 1;
    QO_GROW(g->uses, g->capuses, 1);
    g->nuses = 1;
    QO_GROW(m->graphs, m->capgraphs, m->ngraphs + 1);
    m->graphs[m->ngraphs++] = g;
    return g;
}

static qo_val new_value(qo_graph *g, qo_type t, const char *name) {
    QO_GROW(g->vals, g->capvals, g->nvals + 1);
    qo_val v = g->nvals++;
    qo_value *vd = &g->vals[v];
    memset(vd, 0, sizeof *vd);
    vd->type = t;
    vd->name = qo_intern(g->m, name);
    return v;
}

qo_val qo_graph_add_input(qo_graph *g, const char *name, qo_type t) {
    qo_val v = new_value(g, t, name);
    g->vals[v].flags |= QO_VAL_INPUT;
    QO_GROW(g->inputs, g->capinputs, g->ninputs + 1);
    g->inputs[g->ninputs++] = v;
    return v;
}

qo_val qo_graph_add_const(qo_graph *g, const char *name, qo_cref c) {
    qo_val v = new_value(g, qo_const_get(g->m, c)->type, name);
    g->vals[v].flags |= QO_VAL_CONST;
    g->vals[v].cref = c;
    QO_GROW(g->consts, g->capconsts, g->nconsts + 1);
    g->consts[g->nconsts++] = v;
    return v;
}

qo_val qo_graph_add_capture(qo_graph *g, const char *name, qo_type t) {
    qo_val v = new_value(g, t, name);
    g->vals[v].flags |= QO_VAL_CAPTURE;
    QO_GROW(g->captures, g->capcaptures, g->ncaptures + 1);
    g->captures[g->ncaptures++] = v;
    return v;
}

static void use_link(qo_graph *g, qo_use_id u, qo_val v) {
    qo_use *us = &g->uses[u];
    us->val = v;
    us->prev = 0;
    us->next = 0;
    if (!v) return;
    qo_value *vd = &g->vals[v];
    us->next = vd->first_use;
    if (vd->first_use) g->uses[vd->first_use].prev = u;
    vd->first_use = u;
    vd->nuses++;
}

static void use_unlink(qo_graph *g, qo_use_id u) {
    qo_use *us = &g->uses[u];
    if (!us->val) return;
    qo_value *vd = &g->vals[us->val];
    if (us->prev) g->uses[us->prev].next = us->next;
    else vd->first_use = us->next;
    if (us->next) g->uses[us->next].prev = us->prev;
    vd->nuses--;
    us->val = 0;
    us->next = us->prev = 0;
}

static qo_use_id new_uses(qo_graph *g, uint32_t n, qo_node owner) {
    QO_GROW(g->uses, g->capuses, g->nuses + n + 1);
    qo_use_id first = g->nuses;
    for (uint32_t i = 0; i < n; i++) {
        memset(&g->uses[first + i], 0, sizeof(qo_use));
        g->uses[first + i].owner = owner;
    }
    g->nuses += n;
    return first;
}

qo_use_id qo_graph_add_output(qo_graph *g, qo_val v) {
    qo_use_id u = new_uses(g, 1, 0);
    use_link(g, u, v);
    QO_GROW(g->outputs, g->capoutputs, g->noutputs + 1);
    g->outputs[g->noutputs++] = u;
    return u;
}

qo_val qo_graph_output(const qo_graph *g, uint32_t i) {
    QO_ASSERT(i < g->noutputs);
    return g->uses[g->outputs[i]].val;
}

void qo_graph_remove_input(qo_graph *g, uint32_t i) {
    QO_ASSERT(i < g->ninputs);
    g->vals[g->inputs[i]].flags &= (uint16_t)~QO_VAL_INPUT;
    memmove(&g->inputs[i], &g->inputs[i + 1], sizeof(qo_val) * (g->ninputs - i - 1));
    g->ninputs--;
}

void qo_graph_remove_const(qo_graph *g, qo_val v) {
    for (uint32_t i = 0; i < g->nconsts; i++)
        if (g->consts[i] == v) {
            memmove(&g->consts[i], &g->consts[i + 1], sizeof(qo_val) * (g->nconsts - i - 1));
            g->nconsts--;
            return;
        }
}

qo_val qo_graph_find(const qo_graph *g, const char *name) {
    if (!name[0]) return 0;
    for (qo_val v = 1; v < g->nvals; v++) {
        const qo_value *vd = &g->vals[v];
        if (!(vd->flags & QO_VAL_DEAD) && vd->name && strcmp(qo_str(g->m, vd->name), name) == 0)
            return v;
    }
    return 0;
}

/* ---- values --------------------------------------------------------------------------------- */

void qo_val_set_name(qo_graph *g, qo_val v, const char *name) { g->vals[v].name = qo_intern(g->m, name); }

const char *qo_val_name(const qo_graph *g, qo_val v) { return qo_str(g->m, g->vals[v].name); }

bool qo_val_has_one_use(const qo_graph *g, qo_val v) { return g->vals[v].nuses == 1; }

void qo_replace_all_uses(qo_graph *g, qo_val from, qo_val to) {
    if (from == to) return;
    while (g->vals[from].first_use) {
        qo_use_id u = g->vals[from].first_use;
        use_unlink(g, u);
        use_link(g, u, to);
    }
}

void qo_val_erase(qo_graph *g, qo_val v) {
    qo_value *vd = &g->vals[v];
    QO_ASSERT(vd->nuses == 0);
    if (vd->flags & QO_VAL_CONST) qo_graph_remove_const(g, v);
    if (vd->flags & QO_VAL_CAPTURE)
        for (uint32_t i = 0; i < g->ncaptures; i++)
            if (g->captures[i] == v) {
                memmove(&g->captures[i], &g->captures[i + 1], sizeof(qo_val) * (g->ncaptures - i - 1));
                g->ncaptures--;
                break;
            }
    if (vd->flags & QO_VAL_INPUT)
        for (uint32_t i = 0; i < g->ninputs; i++)
            if (g->inputs[i] == v) {
                qo_graph_remove_input(g, i);
                break;
            }
    vd->flags = (uint16_t)((vd->flags & ~(QO_VAL_CONST | QO_VAL_CAPTURE | QO_VAL_INPUT)) | QO_VAL_DEAD);
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static void order_insert_before(qo_graph *g, qo_node n, qo_node before) {
    qo_nodedata *nd = &g->nodes[n];
    if (!before) {
        nd->prev = g->last;
        nd->next = 0;
        if (g->last) g->nodes[g->last].next = n;
        else g->first = n;
        g->last = n;
        return;
    }
    qo_nodedata *bd = &g->nodes[before];
    nd->next = before;
    nd->prev = bd->prev;
    if (bd->prev) g->nodes[bd->prev].next = n;
    else g->first = n;
    bd->prev = n;
}

static void order_unlink(qo_graph *g, qo_node n) {
    qo_nodedata *nd = &g->nodes[n];
    if (nd->prev) g->nodes[nd->prev].next = nd->next;
    else g->first = nd->next;
    if (nd->next) g->nodes[nd->next].prev = nd->prev;
    else g->last = nd->prev;
    nd->prev = nd->next = 0;
}

qo_node qo_node_new(qo_graph *g, qo_op op, const char *domain, const char *op_type, uint32_t nin,
                    const qo_val *ins, uint32_t nout) {
    const qo_opinfo *oi = qo_op_info(op);
    if (!op_type) {
        QO_ASSERT(op != QO_OP_UNKNOWN);
        op_type = oi->name;
    }
    if (!domain) domain = oi->dom == D_QONNX ? "qonnx.custom_op.general" : oi->dom == D_TRAIN ? "ai.qopt.train" : "";
    QO_GROW(g->nodes, g->capnodes, g->nnodes + 1);
    qo_node n = g->nnodes++;
    qo_nodedata *nd = &g->nodes[n];
    memset(nd, 0, sizeof *nd);
    nd->op = (uint16_t)op;
    nd->domain = qo_intern(g->m, domain);
    nd->op_type = qo_intern(g->m, op_type);
    nd->in0 = new_uses(g, nin, n);
    nd->nin = nin;
    for (uint32_t i = 0; i < nin; i++) use_link(g, nd->in0 + i, ins ? ins[i] : 0);
    QO_GROW(g->outs, g->capouts, g->nouts + nout + 1);
    nd = &g->nodes[n];
    nd->out0 = g->nouts;
    nd->nout = nout;
    g->nouts += nout;
    for (uint32_t i = 0; i < nout; i++) {
        qo_val v = new_value(g, 0, NULL);
        g->vals[v].def = n;
        g->vals[v].res = (uint16_t)i;
        g->outs[nd->out0 + i] = v;
    }
    order_insert_before(g, n, g->insert_before);
    return n;
}

qo_val qo_node_input(const qo_graph *g, qo_node n, uint32_t i) {
    const qo_nodedata *nd = &g->nodes[n];
    return i < nd->nin ? g->uses[nd->in0 + i].val : 0;
}

qo_val qo_node_output(const qo_graph *g, qo_node n, uint32_t i) {
    const qo_nodedata *nd = &g->nodes[n];
    return i < nd->nout ? g->outs[nd->out0 + i] : 0;
}

void qo_set_input(qo_graph *g, qo_use_id u, qo_val v) {
    use_unlink(g, u);
    use_link(g, u, v);
}

void qo_node_set_num_inputs(qo_graph *g, qo_node n, uint32_t nin) {
    qo_nodedata *nd = &g->nodes[n];
    if (nin <= nd->nin) {
        for (uint32_t i = nin; i < nd->nin; i++) use_unlink(g, nd->in0 + i);
        nd->nin = nin;
        return;
    }
    /* move to a fresh contiguous range */
    uint32_t old0 = nd->in0, oldn = nd->nin;
    qo_use_id first = new_uses(g, nin, n);
    nd = &g->nodes[n];
    for (uint32_t i = 0; i < oldn; i++) {
        qo_val v = g->uses[old0 + i].val;
        use_unlink(g, old0 + i);
        g->uses[old0 + i].owner = 0;
        use_link(g, first + i, v);
    }
    nd->in0 = first;
    nd->nin = nin;
}

void qo_node_drop_output(qo_graph *g, qo_node n, uint32_t i) {
    qo_nodedata *nd = &g->nodes[n];
    QO_ASSERT(i < nd->nout);
    qo_val v = g->outs[nd->out0 + i];
    if (!v) return;
    QO_ASSERT(g->vals[v].nuses == 0);
    g->vals[v].flags |= QO_VAL_DEAD;
    g->outs[nd->out0 + i] = 0;
}

void qo_node_erase(qo_graph *g, qo_node n) {
    qo_nodedata *nd = &g->nodes[n];
    QO_ASSERT(!(nd->flags & QO_NODE_DEAD));
    for (uint32_t i = 0; i < nd->nout; i++) {
        qo_val v = g->outs[nd->out0 + i];
        if (!v) continue;
        QO_ASSERT(g->vals[v].nuses == 0);
        g->vals[v].flags |= QO_VAL_DEAD;
    }
    for (uint32_t i = 0; i < nd->nin; i++) use_unlink(g, nd->in0 + i);
    if (g->insert_before == n) g->insert_before = nd->next;
    order_unlink(g, n);
    nd->flags |= QO_NODE_DEAD;
}

void qo_node_move_before(qo_graph *g, qo_node n, qo_node before) {
    if (n == before) return;
    order_unlink(g, n);
    order_insert_before(g, n, before);
}

void qo_node_set_name(qo_graph *g, qo_node n, const char *name) { g->nodes[n].name = qo_intern(g->m, name); }
const char *qo_node_name(const qo_graph *g, qo_node n) { return qo_str(g->m, g->nodes[n].name); }
const char *qo_node_op_type(const qo_graph *g, qo_node n) { return qo_str(g->m, g->nodes[n].op_type); }
const char *qo_node_domain(const qo_graph *g, qo_node n) { return qo_str(g->m, g->nodes[n].domain); }

qo_loc qo_node_loc(const qo_graph *g, qo_node n) {
    qo_loc l = {0};
    const qo_nodedata *nd = &g->nodes[n];
    l.file = g->m->source_path ? qo_str(g->m, g->m->source_path) : NULL;
    l.line = nd->line;
    l.col = nd->col;
    l.node = qo_str(g->m, nd->name);
    l.op = qo_str(g->m, nd->op_type);
    l.node_index = -1;
    if (!nd->line) {
        int64_t k = 0;
        QO_FOR_EACH_NODE(g, it) {
            if (it == n) {
                l.node_index = k;
                break;
            }
            k++;
        }
    }
    return l;
}

/* ---- attributes ----------------------------------------------------------------------------- */

const qo_attr *qo_node_attr(const qo_graph *g, qo_node n, const char *name) {
    const qo_nodedata *nd = &g->nodes[n];
    for (uint32_t i = 0; i < nd->nattr; i++) {
        const qo_attr *a = &g->attrs[nd->attr0 + i];
        if (strcmp(qo_str(g->m, a->name), name) == 0) return a;
    }
    return NULL;
}

/* Copies list and byte payloads of a into the module arena. */
static qo_attr attr_copy(qo_module *m, const qo_attr *a) {
    qo_attr c = *a;
    qo_arena *ar = &m->arena;
    switch (a->kind) {
    case QO_ATTR_STRING: c.u.s.p = qo_arena_memdup(ar, a->u.s.p, a->u.s.n); break;
    case QO_ATTR_FLOATS: c.u.fs = qo_arena_memdup(ar, a->u.fs, sizeof(float) * a->n); break;
    case QO_ATTR_INTS: c.u.is = qo_arena_memdup(ar, a->u.is, sizeof(int64_t) * a->n); break;
    case QO_ATTR_TENSORS: c.u.ts = qo_arena_memdup(ar, a->u.ts, sizeof(qo_cref) * a->n); break;
    case QO_ATTR_GRAPHS: c.u.gs = qo_arena_memdup(ar, a->u.gs, sizeof(uint32_t) * a->n); break;
    case QO_ATTR_STRINGS: {
        qo_bytes *ss = qo_arena_alloc(ar, sizeof(qo_bytes) * a->n);
        for (uint32_t i = 0; i < a->n; i++) {
            ss[i].p = qo_arena_memdup(ar, a->u.ss[i].p, a->u.ss[i].n);
            ss[i].n = a->u.ss[i].n;
        }
        c.u.ss = ss;
        break;
    }
    case QO_ATTR_SPARSE_TENSOR:
    case QO_ATTR_SPARSE_TENSORS:
    case QO_ATTR_TYPE_PROTO:
    case QO_ATTR_TYPE_PROTOS: c.u.raw.p = qo_arena_memdup(ar, a->u.raw.p, a->u.raw.n); break;
    default: break;
    }
    return c;
}

void qo_node_set_attr(qo_graph *g, qo_node n, const qo_attr *a) {
    qo_module *m = g->m;
    qo_nodedata *nd = &g->nodes[n];
    const char *name = qo_str(m, a->name);
    QO_ASSERT(a->name);
    qo_attr c = attr_copy(m, a);
    for (uint32_t i = 0; i < nd->nattr; i++)
        if (g->attrs[nd->attr0 + i].name == a->name) {
            g->attrs[nd->attr0 + i] = c;
            return;
        }
    /* new slice at the end with the attribute inserted in name order */
    uint32_t k = nd->nattr;
    QO_GROW(g->attrs, g->capattrs, g->nattrs + k + 1);
    nd = &g->nodes[n];
    uint32_t dst = g->nattrs, j = 0;
    bool placed = false;
    for (uint32_t i = 0; i < k; i++) {
        qo_attr *old = &g->attrs[nd->attr0 + i];
        if (!placed && strcmp(name, qo_str(m, old->name)) < 0) {
            g->attrs[dst + j++] = c;
            placed = true;
        }
        g->attrs[dst + j++] = *old;
    }
    if (!placed) g->attrs[dst + j++] = c;
    nd->attr0 = dst;
    nd->nattr = k + 1;
    g->nattrs += k + 1;
}

bool qo_node_remove_attr(qo_graph *g, qo_node n, const char *name) {
    qo_nodedata *nd = &g->nodes[n];
    for (uint32_t i = 0; i < nd->nattr; i++)
        if (strcmp(qo_str(g->m, g->attrs[nd->attr0 + i].name), name) == 0) {
            memmove(&g->attrs[nd->attr0 + i], &g->attrs[nd->attr0 + i + 1],
                    sizeof(qo_attr) * (nd->nattr - i - 1));
            nd->nattr--;
            return true;
        }
    return false;
}

int64_t qo_attr_int(const qo_graph *g, qo_node n, const char *name, int64_t dflt) {
    const qo_attr *a = qo_node_attr(g, n, name);
    return a && a->kind == QO_ATTR_INT ? a->u.i : dflt;
}

float qo_attr_float(const qo_graph *g, qo_node n, const char *name, float dflt) {
    const qo_attr *a = qo_node_attr(g, n, name);
    return a && a->kind == QO_ATTR_FLOAT ? a->u.f : dflt;
}

void qo_node_set_attr_int(qo_graph *g, qo_node n, const char *name, int64_t v) {
    qo_attr a = {.name = qo_intern(g->m, name), .kind = QO_ATTR_INT};
    a.u.i = v;
    qo_node_set_attr(g, n, &a);
}

void qo_node_set_attr_float(qo_graph *g, qo_node n, const char *name, float v) {
    qo_attr a = {.name = qo_intern(g->m, name), .kind = QO_ATTR_FLOAT};
    a.u.f = v;
    qo_node_set_attr(g, n, &a);
}

void qo_node_set_attr_ints(qo_graph *g, qo_node n, const char *name, const int64_t *v, uint32_t cnt) {
    qo_attr a = {.name = qo_intern(g->m, name), .kind = QO_ATTR_INTS, .n = cnt};
    a.u.is = v;
    qo_node_set_attr(g, n, &a);
}

void qo_node_set_attr_string(qo_graph *g, qo_node n, const char *name, const char *s, size_t len) {
    qo_attr a = {.name = qo_intern(g->m, name), .kind = QO_ATTR_STRING};
    a.u.s.p = s;
    a.u.s.n = len;
    qo_node_set_attr(g, n, &a);
}

/* ---- order ---------------------------------------------------------------------------------- */

uint32_t qo_graph_num_nodes(const qo_graph *g) {
    uint32_t k = 0;
    QO_FOR_EACH_NODE(g, n) k++;
    return k;
}

/* Kahn's algorithm, picking ready nodes in their current order (a min-heap keyed by position), so
 * an already topological order is kept as is. */
qo_status qo_graph_toposort(qo_ctx *cx, qo_graph *g) {
    uint32_t nn = g->nnodes;
    uint32_t *pos = qo_calloc(nn, sizeof(uint32_t));
    uint32_t *indeg = qo_calloc(nn, sizeof(uint32_t));
    qo_node *byorder = qo_calloc(nn, sizeof(qo_node));
    uint32_t cnt = 0;
    QO_FOR_EACH_NODE(g, n) {
        pos[n] = cnt;
        byorder[cnt++] = n;
    }
    for (uint32_t k = 0; k < cnt; k++) {
        qo_node n = byorder[k];
        const qo_nodedata *nd = &g->nodes[n];
        for (uint32_t i = 0; i < nd->nin; i++) {
            qo_val v = g->uses[nd->in0 + i].val;
            if (v && g->vals[v].def) indeg[n]++;
        }
    }
    /* binary heap of positions */
    uint32_t *heap = qo_calloc(cnt + 1, sizeof(uint32_t));
    uint32_t hn = 0;
#define HPUSH(p)                                                                                   \
    do {                                                                                           \
        uint32_t i_ = hn++;                                                                        \
        heap[i_] = (p);                                                                            \
        while (i_ && heap[(i_ - 1) / 2] > heap[i_]) {                                              \
            uint32_t t_ = heap[i_];                                                                \
            heap[i_] = heap[(i_ - 1) / 2];                                                         \
            heap[(i_ - 1) / 2] = t_;                                                               \
            i_ = (i_ - 1) / 2;                                                                     \
        }                                                                                          \
    } while (0)
    for (uint32_t k = 0; k < cnt; k++)
        if (!indeg[byorder[k]]) HPUSH(k);
    qo_node *sorted = qo_calloc(cnt + 1, sizeof(qo_node));
    uint32_t ns = 0;
    while (hn) {
        uint32_t top = heap[0];
        heap[0] = heap[--hn];
        for (uint32_t i = 0;;) {
            uint32_t l = 2 * i + 1, r = l + 1, s = i;
            if (l < hn && heap[l] < heap[s]) s = l;
            if (r < hn && heap[r] < heap[s]) s = r;
            if (s == i) break;
            uint32_t t = heap[i];
            heap[i] = heap[s];
            heap[s] = t;
            i = s;
        }
        qo_node n = byorder[top];
        sorted[ns++] = n;
        const qo_nodedata *nd = &g->nodes[n];
        for (uint32_t o = 0; o < nd->nout; o++) {
            qo_val v = g->outs[nd->out0 + o];
            if (!v) continue;
            QO_FOR_EACH_USE(g, v, u) {
                qo_node user = g->uses[u].owner;
                if (user && --indeg[user] == 0) HPUSH(pos[user]);
            }
        }
    }
#undef HPUSH
    qo_status st = QO_OK;
    if (ns != cnt) {
        qo_node bad = 0;
        for (uint32_t k = 0; k < cnt && !bad; k++)
            if (indeg[byorder[k]]) bad = byorder[k];
        qo_loc l = qo_node_loc(g, bad);
        st = qo_error(cx, QO_ERR_INVALID_MODEL, &l, "graph has a cycle through this node (%u of %u nodes ordered)",
                      ns, cnt);
    } else {
        g->first = g->last = 0;
        for (uint32_t k = 0; k < ns; k++) {
            g->nodes[sorted[k]].prev = g->nodes[sorted[k]].next = 0;
            order_insert_before(g, sorted[k], 0);
        }
    }
    qo_free(pos);
    qo_free(indeg);
    qo_free(byorder);
    qo_free(heap);
    qo_free(sorted);
    return st;
}
