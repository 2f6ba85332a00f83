/* runtime/interp.c — the reference interpreter: runs a module's main graph node by node with the
 * reference kernels (runtime/ref/).
 *
 * How a graph runs (run_graph):
 *   1. an environment holds one qo_tensor per value id of the graph; constants are bound as
 *      non-owning views of the constant pool (4-bit and misaligned constants are copied once),
 *      graph inputs as non-owning views of the caller's tensors, captures as views of the enclosing
 *      frame's tensors (found by name, walking outwards);
 *   2. nodes run in program order (which the IR keeps topological); every kernel output becomes
 *      owned by the environment;
 *   3. a plan computed once per graph gives every value the position of its last reader (captures
 *      read by an If/Loop body count as reads by that If/Loop node), so each intermediate is freed
 *      right after that node: peak memory stays near the largest live set;
 *   4. graph outputs are moved (or copied) out.
 * If, Loop and Scan (opset 9+) are run here, their bodies recursively with the same function.
 * qo_interp_run_node runs one such node for a backend (the LLVM JIT): a frame of the node's graph
 * holding only the caller's scope (views) stands in for the enclosing frames.
 * Single-threaded. */
#include "runtime/rt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAST_OUTPUT INT32_MAX /* last-use mark of values read by a graph output */

typedef struct plan {
    int32_t *last;       /* per value id: position of the last reading node, -1 = never read */
    uint32_t *cap_val;   /* per capture i: value id in the enclosing frame cap_up[i] levels out */
    uint32_t *cap_up;
    bool caps_resolved;
} plan;

typedef struct interp {
    qo_ctx *cx;
    const qo_module *m;
    int64_t opset;
    plan **plans; /* per graph index, built on first run */
} interp;

typedef struct frame {
    const qo_graph *g;
    qo_tensor *env;
    uint8_t *live;
    const struct frame *parent;
} frame;

/* ---- support check ---------------------------------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static void sb_add(strbuf *b, const char *fmt, ...) QO_PRINTF(2, 3);
static void sb_add(strbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int w = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
        va_end(ap);
        if (w < 0) return;
        if ((size_t)w < room) {
            b->n += (size_t)w;
            return;
        }
        b->cap = (b->cap + (size_t)w + 1) * 2;
        b->p = qo_realloc(b->p, b->cap);
    }
}

typedef struct unsup {
    const char *op;   /* "domain.op_type" or "op_type" (owned) */
    strbuf names;     /* "'a', 'b'" */
    unsigned count;
} unsup;

static const qo_graph *graph_attr(const qo_graph *g, qo_node n, const char *name) {
    const qo_attr *a = qo_node_attr(g, n, name);
    if (!a || a->kind != QO_ATTR_GRAPH || a->u.g >= g->m->ngraphs) return NULL;
    return g->m->graphs[a->u.g];
}

static void note_unsupported(unsup **list, unsigned *nlist, const qo_graph *g, qo_node n) {
    const qo_nodedata *nd = &g->nodes[n];
    char key[512];
    const char *dom = qo_str(g->m, nd->domain);
    snprintf(key, sizeof key, "%s%s%s", dom, dom[0] ? "." : "", qo_str(g->m, nd->op_type));
    unsigned i;
    for (i = 0; i < *nlist; i++)
        if (!strcmp((*list)[i].op, key)) break;
    if (i == *nlist) {
        *list = qo_realloc(*list, (*nlist + 1) * sizeof **list);
        memset(&(*list)[i], 0, sizeof **list);
        (*list)[i].op = qo_strdup(key);
        (*nlist)++;
    }
    unsup *u = &(*list)[i];
    if (u->count < 8 && nd->name)
        sb_add(&u->names, "%s'%s'", u->count ? ", " : "", qo_str(g->m, nd->name));
    else if (u->count < 8) /* unnamed: its position in its graph */
        sb_add(&u->names, "%s#%" PRId64 "%s", u->count ? ", " : "", qo_node_loc(g, n).node_index,
               g->index ? " of a subgraph" : "");
    else if (u->count == 8) sb_add(&u->names, ", ...");
    u->count++;
}

static void collect_unsupported(const qo_graph *g, unsup **list, unsigned *nlist) {
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = &g->nodes[n];
        if (nd->op == QO_OP_IF) {
            const qo_graph *t = graph_attr(g, n, "then_branch"), *e = graph_attr(g, n, "else_branch");
            if (!t || !e) note_unsupported(list, nlist, g, n);
            if (t) collect_unsupported(t, list, nlist);
            if (e) collect_unsupported(e, list, nlist);
        } else if (nd->op == QO_OP_LOOP || nd->op == QO_OP_SCAN) {
            const qo_graph *b = graph_attr(g, n, "body");
            if (!b || (nd->op == QO_OP_SCAN && qo_module_opset(g->m, "") < 9)) note_unsupported(list, nlist, g, n);
            if (b) collect_unsupported(b, list, nlist);
        } else if (nd->op == QO_OP_UNKNOWN || !qo_ref_kernel_for((qo_op)nd->op)) {
            note_unsupported(list, nlist, g, n);
        }
    }
}

/* One error naming every op of m (all graphs reachable from main) that has no kernel. */
static qo_status check_supported(qo_ctx *cx, const qo_module *m) {
    unsup *list = NULL;
    unsigned nlist = 0;
    collect_unsupported(qo_module_main(m), &list, &nlist);
    if (!nlist) return QO_OK;
    strbuf b = {0};
    unsigned total = 0;
    for (unsigned i = 0; i < nlist; i++) total += list[i].count;
    for (unsigned i = 0; i < nlist; i++) {
        sb_add(&b, "%s%s (%u node%s: %s)", i ? ", " : "", list[i].op, list[i].count, list[i].count == 1 ? "" : "s",
               list[i].names.p);
        free((void *)list[i].op);
        free(list[i].names.p);
    }
    free(list);
    qo_loc l = {.file = m->source_path ? qo_str(m, m->source_path) : NULL, .node_index = -1};
    qo_status s = qo_error(cx, QO_ERR_UNSUPPORTED, &l, "the interpreter has no kernel for %u op%s of %u node%s: %s",
                           nlist, nlist == 1 ? "" : "s", total, total == 1 ? "" : "s", b.p);
    free(b.p);
    return s;
}

/* ---- plans ------------------------------------------------------------------------------------ */

static void raise_last(plan *p, qo_val v, int32_t pos) {
    if (v && p->last[v] < pos) p->last[v] = pos;
}

/* Values of g read (by name) from inside sub or its nested bodies count as read at pos. */
static void mark_captures(plan *p, const qo_graph *g, const qo_graph *sub, int32_t pos) {
    for (uint32_t i = 0; i < sub->ncaptures; i++) {
        qo_val v = qo_graph_find(g, qo_val_name(sub, sub->captures[i]));
        raise_last(p, v, pos);
    }
    QO_FOR_EACH_NODE(sub, n) {
        const qo_nodedata *nd = &sub->nodes[n];
        for (uint32_t a = 0; a < nd->nattr; a++) {
            const qo_attr *at = &sub->attrs[nd->attr0 + a];
            if (at->kind == QO_ATTR_GRAPH && at->u.g < g->m->ngraphs)
                mark_captures(p, g, g->m->graphs[at->u.g], pos);
        }
    }
}

static plan *get_plan(interp *I, const qo_graph *g) {
    if (I->plans[g->index]) return I->plans[g->index];
    plan *p = qo_calloc(1, sizeof *p);
    p->last = qo_malloc((g->nvals ? g->nvals : 1) * sizeof *p->last);
    for (uint32_t v = 0; v < g->nvals; v++) p->last[v] = -1;
    int32_t pos = 0;
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = &g->nodes[n];
        for (uint32_t i = 0; i < nd->nin; i++) raise_last(p, qo_node_input(g, n, i), pos);
        for (uint32_t a = 0; a < nd->nattr; a++) {
            const qo_attr *at = &g->attrs[nd->attr0 + a];
            if (at->kind == QO_ATTR_GRAPH && at->u.g < g->m->ngraphs) mark_captures(p, g, g->m->graphs[at->u.g], pos);
        }
        pos++;
    }
    for (uint32_t i = 0; i < g->noutputs; i++) raise_last(p, qo_graph_output(g, i), LAST_OUTPUT);
    p->cap_val = qo_calloc(g->ncaptures ? g->ncaptures : 1, sizeof *p->cap_val);
    p->cap_up = qo_calloc(g->ncaptures ? g->ncaptures : 1, sizeof *p->cap_up);
    I->plans[g->index] = p;
    return p;
}

/* ---- helpers ---------------------------------------------------------------------------------- */

static void fmt_shape(const qo_module *m, int elem, int32_t rank, const int64_t *dims, const qo_atom *syms,
                      char *buf, size_t cap) {
    size_t k = 0;
    int w = snprintf(buf, cap, "%s[", qo_elem_name(elem) ? qo_elem_name(elem) : "?");
    k = w > 0 ? (size_t)w : 0;
    if (rank < 0 && k < cap) k += (size_t)snprintf(buf + k, cap - k, "*");
    for (int32_t i = 0; i < rank && k < cap; i++) {
        if (syms && syms[i]) w = snprintf(buf + k, cap - k, "%s%s", i ? "," : "", qo_str(m, syms[i]));
        else if (dims[i] < 0) w = snprintf(buf + k, cap - k, "%s?", i ? "," : "");
        else w = snprintf(buf + k, cap - k, "%s%" PRId64, i ? "," : "", dims[i]);
        if (w > 0) k += (size_t)w;
    }
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static qo_loc graph_loc(const qo_module *m) {
    qo_loc l = {.file = m->source_path ? qo_str(m, m->source_path) : NULL, .node_index = -1};
    return l;
}

/* Checks a tensor fed to graph input i against the input's declared type. */
static qo_status check_input(qo_ctx *cx, const qo_graph *g, uint32_t i, const qo_tensor *t) {
    const qo_module *m = g->m;
    qo_val v = g->inputs[i];
    const char *name = qo_val_name(g, v);
    const qo_typedata *td = qo_type_get(m, g->vals[v].type);
    qo_loc l = graph_loc(m);
    if (!td) return QO_OK;
    if (td->kind != QO_TY_TENSOR)
        return qo_error(cx, QO_ERR_UNSUPPORTED, &l, "input '%s' is not a tensor; the runtime runs tensors only", name);
    char want[256], got[256];
    fmt_shape(m, td->elem, td->rank, td->dims, td->syms, want, sizeof want);
    fmt_shape(m, t->elem, t->rank, t->dims, NULL, got, sizeof got);
    if (td->elem != QO_UNDEF && td->elem != t->elem)
        return qo_error(cx, QO_ERR_USAGE, &l, "input '%s': element type mismatch: expected %s, got %s", name, want,
                        got);
    if (td->rank >= 0 && td->rank != t->rank)
        return qo_error(cx, QO_ERR_USAGE, &l, "input '%s': rank mismatch: expected %s (rank %" PRId32
                        "), got %s (rank %" PRId32 ")", name, want, td->rank, got, t->rank);
    for (int32_t d = 0; td->rank >= 0 && d < td->rank; d++) {
        if (td->dims[d] < 0 || (td->syms && td->syms[d])) continue;
        if (td->dims[d] != t->dims[d])
            return qo_error(cx, QO_ERR_USAGE, &l, "input '%s': shape mismatch at axis %" PRId32
                            ": expected %s, got %s", name, d, want, got);
    }
    if (t->rank < 0 || t->rank > QO_MAX_RANK)
        return qo_error(cx, QO_ERR_USAGE, &l, "input '%s': bad rank %" PRId32, name, t->rank);
    return QO_OK;
}

/* True if the first element of t is nonzero (bool/ints/floats). */
static bool truthy(const qo_tensor *t) {
    if (!t || !t->data || !t->nbytes) return false;
    size_t es = qo_rt_elem_size(t->elem);
    if (t->elem == QO_F32) return *(const float *)t->data != 0;
    if (t->elem == QO_F64) return *(const double *)t->data != 0;
    const uint8_t *p = t->data;
    for (size_t i = 0; i < es; i++)
        if (p[i]) return true;
    return false;
}

static void free_outputs(qo_tensor *outs, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) qo_tensor_free(&outs[i]);
}

static qo_status run_graph(interp *I, const qo_graph *g, const frame *parent, const qo_tensor *const *inputs,
                           uint32_t nin, qo_tensor *outputs, uint32_t nout);

/* ---- If, Loop, Scan ------------------------------------------------------------------------- */

static qo_status run_if(interp *I, frame *F, qo_node n, const qo_tensor *const *in, qo_tensor *outs, uint32_t nout) {
    const qo_graph *g = F->g;
    qo_loc l = qo_node_loc(g, n);
    if (!in[0] || qo_tensor_numel(in[0]) != 1)
        return qo_error(I->cx, QO_ERR_BACKEND, &l, "condition must be a tensor with one element");
    const qo_graph *b = graph_attr(g, n, truthy(in[0]) ? "then_branch" : "else_branch");
    if (!b) return qo_error(I->cx, QO_ERR_INVALID_MODEL, &l, "missing branch graph");
    if (b->noutputs != nout)
        return qo_error(I->cx, QO_ERR_INVALID_MODEL, &l, "branch has %u outputs, the node %u", b->noutputs, nout);
    return run_graph(I, b, F, NULL, 0, outs, nout);
}

/* Appends one scan output slice to acc (shape fixed by the first slice). */
static qo_status scan_append(interp *I, const qo_loc *l, qo_tensor *acc, const qo_tensor *s, int64_t iter) {
    if (iter == 0) {
        if (s->rank + 1 > QO_MAX_RANK)
            return qo_error(I->cx, QO_ERR_UNSUPPORTED, l, "scan output rank exceeds %d", QO_MAX_RANK);
        acc->elem = s->elem;
        acc->rank = s->rank + 1;
        acc->dims[0] = 0;
        for (int32_t d = 0; d < s->rank; d++) acc->dims[d + 1] = s->dims[d];
    } else {
        bool same = acc->elem == s->elem && acc->rank == s->rank + 1;
        for (int32_t d = 0; same && d < s->rank; d++) same = acc->dims[d + 1] == s->dims[d];
        if (!same) return qo_error(I->cx, QO_ERR_BACKEND, l, "scan output changes shape or type at iteration %" PRId64, iter);
    }
    if (s->nbytes) {
        void *p = realloc(acc->owned ? acc->data : NULL, acc->nbytes + s->nbytes);
        if (!p) return qo_error(I->cx, QO_ERR_NOMEM, l, "out of memory growing a scan output");
        memcpy((char *)p + acc->nbytes, s->data, s->nbytes);
        acc->data = p;
        acc->owned = 1;
        acc->nbytes += s->nbytes;
    }
    acc->dims[0]++;
    return QO_OK;
}

static qo_status run_loop(interp *I, frame *F, qo_node n, const qo_tensor *const *in, uint32_t nin, qo_tensor *outs,
                          uint32_t nout) {
    const qo_graph *g = F->g;
    qo_ctx *cx = I->cx;
    qo_loc l = qo_node_loc(g, n);
    const qo_graph *b = graph_attr(g, n, "body");
    if (!b) return qo_error(cx, QO_ERR_INVALID_MODEL, &l, "missing body graph");
    if (nin < 2) return qo_error(cx, QO_ERR_INVALID_MODEL, &l, "Loop needs at least 2 inputs");
    uint32_t N = nin - 2;
    if (b->ninputs != N + 2 || b->noutputs < N + 1 || nout != b->noutputs - 1)
        return qo_error(cx, QO_ERR_INVALID_MODEL, &l,
                        "body has %u inputs and %u outputs, inconsistent with %u loop-carried values and %u outputs",
                        b->ninputs, b->noutputs, N, nout);
    uint32_t K = nout - N;
    for (uint32_t i = 2; i < nin; i++)
        if (!in[i]) return qo_error(cx, QO_ERR_INVALID_MODEL, &l, "loop-carried input %u is omitted", i - 2);
    int64_t max_trip = INT64_MAX;
    if (in[0]) {
        if (in[0]->elem != QO_I64 || qo_tensor_numel(in[0]) != 1)
            return qo_error(cx, QO_ERR_BACKEND, &l, "trip count M must be an int64 tensor with one element");
        max_trip = *(const int64_t *)in[0]->data;
    }
    bool cond = in[1] ? truthy(in[1]) : true;

    qo_status s = QO_OK;
    qo_tensor *carried = qo_calloc(N + 1, sizeof *carried);
    qo_tensor *bout = qo_calloc(b->noutputs, sizeof *bout);
    const qo_tensor **bin = qo_calloc(N + 2, sizeof *bin);
    qo_tensor iter = {0}, cnd = {0};
    for (uint32_t i = 0; i < N; i++) {
        carried[i] = *in[2 + i];
        carried[i].owned = 0;
    }
    if ((s = qo_tensor_make(cx, &iter, QO_I64, 0, NULL)) != QO_OK) goto out;
    if ((s = qo_tensor_make(cx, &cnd, QO_BOOL, 0, NULL)) != QO_OK) goto out;
    int64_t it = 0;
    for (; it < max_trip && cond; it++) {
        *(int64_t *)iter.data = it;
        *(uint8_t *)cnd.data = 1;
        bin[0] = &iter;
        bin[1] = &cnd;
        for (uint32_t i = 0; i < N; i++) bin[2 + i] = &carried[i];
        if ((s = run_graph(I, b, F, bin, N + 2, bout, b->noutputs)) != QO_OK) goto out;
        /* as onnxruntime does, the body's condition counts even when the cond input is omitted */
        cond = truthy(&bout[0]);
        qo_tensor_free(&bout[0]);
        for (uint32_t i = 0; i < N; i++) {
            qo_tensor_free(&carried[i]);
            carried[i] = bout[1 + i];
            memset(&bout[1 + i], 0, sizeof bout[1 + i]);
        }
        for (uint32_t k = 0; k < K; k++) {
            s = scan_append(I, &l, &outs[N + k], &bout[1 + N + k], it);
            qo_tensor_free(&bout[1 + N + k]);
            if (s != QO_OK) goto out;
        }
    }
    for (uint32_t i = 0; i < N; i++) {
        if (carried[i].owned) {
            outs[i] = carried[i];
            memset(&carried[i], 0, sizeof carried[i]);
        } else if ((s = qo_tensor_copy(cx, &carried[i], &outs[i])) != QO_OK) {
            goto out;
        }
    }
    if (it == 0) {
        /* no iteration: scan outputs are empty along the new axis; the rest of the shape comes from
         * the body's declared output type when static */
        for (uint32_t k = 0; k < K; k++) {
            const qo_typedata *td = qo_type_get(I->m, b->vals[qo_graph_output(b, 1 + N + k)].type);
            qo_tensor *o = &outs[N + k];
            o->elem = td && td->kind == QO_TY_TENSOR && td->elem ? td->elem : QO_F32;
            o->rank = 1;
            o->dims[0] = 0;
            if (td && td->kind == QO_TY_TENSOR && td->rank >= 0 && td->rank + 1 <= QO_MAX_RANK) {
                bool stat = true;
                for (int32_t d = 0; d < td->rank; d++) stat = stat && td->dims[d] >= 0;
                if (stat) {
                    o->rank = td->rank + 1;
                    for (int32_t d = 0; d < td->rank; d++) o->dims[d + 1] = td->dims[d];
                }
            }
        }
    }
out:
    for (uint32_t i = 0; i < N; i++) qo_tensor_free(&carried[i]);
    free_outputs(bout, b->noutputs);
    qo_tensor_free(&iter);
    qo_tensor_free(&cnd);
    free(carried);
    free(bout);
    free(bin);
    return s;
}

/* Copies slice `idx` along `axis` of t into s (t's shape without that axis); with put, the reverse. */
static void slice_move(qo_tensor *t, int32_t axis, int64_t idx, qo_tensor *s, bool put) {
    size_t es = qo_rt_elem_size(t->elem);
    int64_t outer = 1, inner = 1;
    for (int32_t d = 0; d < axis; d++) outer *= t->dims[d];
    for (int32_t d = axis + 1; d < t->rank; d++) inner *= t->dims[d];
    size_t row = (size_t)inner * es;
    for (int64_t o = 0; o < outer && row; o++) {
        char *big = (char *)t->data + ((size_t)(o * t->dims[axis] + idx)) * row;
        char *small = (char *)s->data + (size_t)o * row;
        if (put) memcpy(big, small, row);
        else memcpy(small, big, row);
    }
}

static int64_t ints_at(const qo_attr *a, uint32_t i) { return a && a->kind == QO_ATTR_INTS && i < a->n ? a->u.is[i] : 0; }

/* Scan (opset 9+): N state variables, M scan inputs sliced along their scan axes, K scan outputs
 * stacked along theirs; directions reverse the order. */
static qo_status run_scan(interp *I, frame *F, qo_node n, const qo_tensor *const *in, uint32_t nin, qo_tensor *outs,
                          uint32_t nout) {
    const qo_graph *g = F->g;
    qo_ctx *cx = I->cx;
    qo_loc l = qo_node_loc(g, n);
    if (I->opset < 9)
        return qo_error(cx, QO_ERR_UNSUPPORTED, &l, "Scan before opset 9 (batched form) is not supported");
    const qo_graph *b = graph_attr(g, n, "body");
    int64_t M = qo_attr_int(g, n, "num_scan_inputs", -1);
    if (!b || M < 1 || (uint32_t)M > nin)
        return qo_error(cx, QO_ERR_INVALID_MODEL, &l, "Scan needs a body and 1..%u num_scan_inputs", nin);
    uint32_t N = nin - (uint32_t)M, K = nout >= N ? nout - N : 0;
    if (nout < N || b->ninputs != nin || b->noutputs != nout)
        return qo_error(cx, QO_ERR_INVALID_MODEL, &l, "body has %u inputs and %u outputs, the node %u and %u",
                        b->ninputs, b->noutputs, nin, nout);
    const qo_attr *in_axes = qo_node_attr(g, n, "scan_input_axes"), *in_dirs = qo_node_attr(g, n, "scan_input_directions");
    const qo_attr *out_axes = qo_node_attr(g, n, "scan_output_axes"),
                  *out_dirs = qo_node_attr(g, n, "scan_output_directions");
    int32_t axes[64];
    if (M > 64 || K > 64) return qo_error(cx, QO_ERR_UNSUPPORTED, &l, "more than 64 scan inputs or outputs");
    int64_t L = -1;
    for (uint32_t j = 0; j < (uint32_t)M; j++) {
        const qo_tensor *t = in[N + j];
        int64_t ax = ints_at(in_axes, j);
        if (!t || ax < -t->rank || ax >= t->rank)
            return qo_error(cx, QO_ERR_BACKEND, &l, "scan input %u: missing or bad scan axis %" PRId64, j, ax);
        axes[j] = (int32_t)(ax < 0 ? ax + t->rank : ax);
        if (L >= 0 && t->dims[axes[j]] != L)
            return qo_error(cx, QO_ERR_BACKEND, &l, "scan inputs disagree on the sequence length");
        L = t->dims[axes[j]];
    }
    qo_status s = QO_OK;
    qo_tensor *state = qo_calloc(N + 1, sizeof *state), *slices = qo_calloc((size_t)M, sizeof *slices);
    qo_tensor *bout = qo_calloc(nout + 1, sizeof *bout);
    const qo_tensor **bin = qo_calloc(nin, sizeof *bin);
    for (uint32_t i = 0; i < N; i++) {
        state[i] = *in[i];
        state[i].owned = 0;
    }
    for (uint32_t j = 0; j < (uint32_t)M; j++) {
        const qo_tensor *t = in[N + j];
        qo_tensor *sl = &slices[j];
        sl->elem = t->elem;
        sl->rank = t->rank - 1;
        for (int32_t d = 0, k = 0; d < t->rank; d++)
            if (d != axes[j]) sl->dims[k++] = t->dims[d];
        if ((s = qo_tensor_alloc(cx, sl)) != QO_OK) goto out;
    }
    for (int64_t it = 0; it < L; it++) {
        for (uint32_t j = 0; j < (uint32_t)M; j++)
            slice_move((qo_tensor *)in[N + j], axes[j], ints_at(in_dirs, j) ? L - 1 - it : it, &slices[j], false);
        for (uint32_t i = 0; i < N; i++) bin[i] = &state[i];
        for (uint32_t j = 0; j < (uint32_t)M; j++) bin[N + j] = &slices[j];
        if ((s = run_graph(I, b, F, bin, nin, bout, nout)) != QO_OK) goto out;
        for (uint32_t i = 0; i < N; i++) {
            qo_tensor_free(&state[i]);
            state[i] = bout[i];
            memset(&bout[i], 0, sizeof bout[i]);
        }
        for (uint32_t k = 0; k < K; k++) {
            qo_tensor *sl = &bout[N + k], *o = &outs[N + k];
            int64_t ax = ints_at(out_axes, k);
            if (ax < 0) ax += sl->rank + 1;
            if (ax < 0 || ax > sl->rank || sl->rank + 1 > QO_MAX_RANK) {
                s = qo_error(cx, QO_ERR_BACKEND, &l, "scan output %u: bad scan axis", k);
                goto out;
            }
            if (it == 0) {
                o->elem = sl->elem;
                o->rank = sl->rank + 1;
                for (int32_t d = 0, q = 0; d < o->rank; d++) o->dims[d] = d == ax ? L : sl->dims[q++];
                if ((s = qo_tensor_alloc(cx, o)) != QO_OK) goto out;
            }
            bool same = o->elem == sl->elem && o->rank == sl->rank + 1;
            for (int32_t d = 0, q = 0; same && d < o->rank; d++)
                if (d != ax) same = o->dims[d] == sl->dims[q++];
            if (!same) {
                s = qo_error(cx, QO_ERR_BACKEND, &l, "scan output %u changes shape or type at iteration %" PRId64, k, it);
                goto out;
            }
            slice_move(o, (int32_t)ax, ints_at(out_dirs, k) ? L - 1 - it : it, sl, true);
            qo_tensor_free(sl);
        }
    }
    for (uint32_t i = 0; i < N; i++) {
        if (state[i].owned) {
            outs[i] = state[i];
            memset(&state[i], 0, sizeof state[i]);
        } else if ((s = qo_tensor_copy(cx, &state[i], &outs[i])) != QO_OK) {
            goto out;
        }
    }
    if (L == 0)
        s = qo_error(cx, QO_ERR_UNSUPPORTED, &l, "Scan over an empty sequence (scan output shapes unknown)");
out:
    for (uint32_t i = 0; i < N; i++) qo_tensor_free(&state[i]);
    for (uint32_t j = 0; j < (uint32_t)M; j++) qo_tensor_free(&slices[j]);
    free_outputs(bout, nout);
    free(state);
    free(slices);
    free(bout);
    free(bin);
    return s;
}

/* ---- nodes and graphs ------------------------------------------------------------------------- */

static qo_status run_node(interp *I, frame *F, const plan *P, qo_node n, int32_t pos) {
    const qo_graph *g = F->g;
    const qo_nodedata *nd = &g->nodes[n];
    qo_ctx *cx = I->cx;
    const qo_tensor **in = qo_calloc(nd->nin ? nd->nin : 1, sizeof *in);
    qo_tensor *outs = qo_calloc(nd->nout ? nd->nout : 1, sizeof *outs);
    qo_status s = QO_OK;
    for (uint32_t i = 0; i < nd->nin; i++) {
        qo_val v = qo_node_input(g, n, i);
        if (!v) continue;
        if (!F->live[v]) {
            qo_loc l = qo_node_loc(g, n);
            s = qo_error(cx, QO_ERR_BACKEND, &l, "input %u ('%s') has no value at this point", i, qo_val_name(g, v));
            goto out;
        }
        in[i] = &F->env[v];
    }
    unsigned nerr = cx->nerrors;
    if (nd->op == QO_OP_IF) {
        s = run_if(I, F, n, in, outs, nd->nout);
    } else if (nd->op == QO_OP_LOOP) {
        s = run_loop(I, F, n, in, nd->nin, outs, nd->nout);
    } else if (nd->op == QO_OP_SCAN) {
        s = run_scan(I, F, n, in, nd->nin, outs, nd->nout);
    } else {
        qo_ref_kernel k = nd->op == QO_OP_UNKNOWN ? NULL : qo_ref_kernel_for((qo_op)nd->op);
        qo_loc l = qo_node_loc(g, n);
        if (!k) {
            s = qo_error(cx, QO_ERR_UNSUPPORTED, &l, "no kernel for this op");
            goto out;
        }
        qo_kctx kc = {.cx = cx, .g = g, .n = n, .opset = I->opset};
        s = k(&kc, in, nd->nin, outs, nd->nout);
        if (s != QO_OK && cx->nerrors == nerr) s = qo_error(cx, s, &l, "kernel failed (%s)", qo_status_str(s));
    }
    if (s != QO_OK) goto out;
    for (uint32_t j = 0; j < nd->nout; j++) {
        qo_val v = qo_node_output(g, n, j);
        qo_tensor *o = &outs[j];
        if (!v) {
            qo_tensor_free(o);
            continue;
        }
        int64_t ne = o->rank >= 0 && o->rank <= QO_MAX_RANK ? qo_tensor_numel(o) : -1;
        size_t es = qo_rt_elem_size(o->elem);
        if (ne < 0 || !es || o->nbytes != (size_t)ne * es || (ne && !o->data)) {
            qo_loc l = qo_node_loc(g, n);
            s = qo_error(cx, QO_ERR_BACKEND, &l,
                         "output %u: the kernel produced an inconsistent tensor (rank %" PRId32 ", %zu bytes)", j,
                         o->rank, o->nbytes);
            goto out;
        }
        if (!o->owned && o->data) { /* a view of some input: own a copy, inputs may be freed below */
            qo_tensor c;
            if ((s = qo_tensor_copy(cx, o, &c)) != QO_OK) goto out;
            *o = c;
        }
        qo_tensor_free(&F->env[v]);
        F->env[v] = *o;
        F->live[v] = 1;
        memset(o, 0, sizeof *o);
        if (P->last[v] < 0) {
            qo_tensor_free(&F->env[v]);
            F->live[v] = 0;
        }
    }
    for (uint32_t i = 0; i < nd->nin; i++) {
        qo_val v = qo_node_input(g, n, i);
        if (v && P->last[v] == pos && F->live[v]) {
            qo_tensor_free(&F->env[v]);
            F->live[v] = 0;
        }
    }
    /* values captured by this node's bodies, read for the last time */
    if (nd->op == QO_OP_IF || nd->op == QO_OP_LOOP || nd->op == QO_OP_SCAN) {
        for (qo_val v = 1; v < g->nvals; v++)
            if (P->last[v] == pos && F->live[v]) {
                qo_tensor_free(&F->env[v]);
                F->live[v] = 0;
            }
    }
out:
    free_outputs(outs, nd->nout);
    free(outs);
    free(in);
    return s;
}

/* Resolves the captures of g against the frames enclosing it (once per graph). */
static qo_status resolve_captures(interp *I, const qo_graph *g, plan *P, const frame *parent) {
    if (P->caps_resolved) return QO_OK;
    for (uint32_t i = 0; i < g->ncaptures; i++) {
        const char *name = qo_val_name(g, g->captures[i]);
        uint32_t up = 0;
        qo_val v = 0;
        for (const frame *f = parent; f && !v; f = f->parent, up++) v = qo_graph_find(f->g, name);
        if (!v) {
            qo_loc l = graph_loc(I->m);
            return qo_error(I->cx, QO_ERR_INVALID_MODEL, &l, "graph '%s' reads '%s', which no enclosing graph defines",
                            qo_str(I->m, g->name), name);
        }
        P->cap_val[i] = v;
        P->cap_up[i] = up - 1;
    }
    P->caps_resolved = true;
    return QO_OK;
}

static qo_status run_graph(interp *I, const qo_graph *g, const frame *parent, const qo_tensor *const *inputs,
                           uint32_t nin, qo_tensor *outputs, uint32_t nout) {
    qo_ctx *cx = I->cx;
    qo_loc gl = graph_loc(I->m);
    if (nin != g->ninputs || nout != g->noutputs)
        return qo_error(cx, QO_ERR_USAGE, &gl, "graph '%s' has %u inputs and %u outputs, called with %u and %u",
                        qo_str(I->m, g->name), g->ninputs, g->noutputs, nin, nout);
    plan *P = get_plan(I, g);
    QO_TRY(resolve_captures(I, g, P, parent));
    frame F = {.g = g, .parent = parent};
    F.env = qo_calloc(g->nvals ? g->nvals : 1, sizeof *F.env);
    F.live = qo_calloc(g->nvals ? g->nvals : 1, 1);
    qo_status s = QO_OK;
    memset(outputs, 0, nout * sizeof *outputs);

    for (uint32_t i = 0; i < g->nconsts; i++) {
        qo_val v = g->consts[i];
        if ((s = qo_tensor_from_const(cx, I->m, g->vals[v].cref, &F.env[v])) != QO_OK) goto out;
        F.live[v] = 1;
    }
    for (uint32_t i = 0; i < nin; i++) {
        qo_val v = g->inputs[i];
        F.env[v] = *inputs[i];
        F.env[v].owned = 0;
        F.live[v] = 1;
    }
    for (uint32_t i = 0; i < g->ncaptures; i++) {
        const frame *f = parent;
        for (uint32_t u = 0; u < P->cap_up[i]; u++) f = f->parent;
        qo_val src = P->cap_val[i], v = g->captures[i];
        if (!f->live[src]) {
            s = qo_error(cx, QO_ERR_BACKEND, &gl, "captured value '%s' has no value when graph '%s' runs",
                         qo_val_name(g, v), qo_str(I->m, g->name));
            goto out;
        }
        F.env[v] = f->env[src];
        F.env[v].owned = 0;
        F.live[v] = 1;
    }
    int32_t pos = 0;
    QO_FOR_EACH_NODE(g, n) {
        if ((s = run_node(I, &F, P, n, pos++)) != QO_OK) goto out;
    }
    for (uint32_t i = 0; i < nout; i++) {
        qo_val v = qo_graph_output(g, i);
        if (!v || !F.live[v]) {
            s = qo_error(cx, QO_ERR_BACKEND, &gl, "graph output %u ('%s') was not computed", i, v ? qo_val_name(g, v) : "");
            goto out;
        }
        if (F.env[v].owned) {
            outputs[i] = F.env[v];
            F.env[v].owned = 0; /* still readable by later output slots as a view */
        } else if ((s = qo_tensor_copy(cx, &F.env[v], &outputs[i])) != QO_OK) {
            goto out;
        }
    }
out:
    if (s != QO_OK) free_outputs(outputs, nout);
    for (uint32_t v = 0; v < g->nvals; v++) qo_tensor_free(&F.env[v]);
    free(F.env);
    free(F.live);
    return s;
}

qo_status qo_interp_check_input(qo_ctx *cx, const qo_module *m, uint32_t i, const qo_tensor *t) {
    const qo_graph *g = qo_module_main(m);
    if (!g || i >= g->ninputs) {
        qo_loc l = graph_loc(m);
        return qo_error(cx, QO_ERR_USAGE, &l, "the model has no input #%u", i);
    }
    return check_input(cx, g, i, t);
}

qo_status qo_interp_run(qo_ctx *cx, const qo_module *m, const qo_tensor *const *inputs, uint32_t nin,
                        qo_tensor *outputs, uint32_t nout) {
    const qo_graph *g = qo_module_main(m);
    qo_loc gl = graph_loc(m);
    if (!g) return qo_error(cx, QO_ERR_INVALID_MODEL, &gl, "the model has no main graph");
    if (nin != g->ninputs)
        return qo_error(cx, QO_ERR_USAGE, &gl, "the model has %u inputs, %u given", g->ninputs, nin);
    if (nout != g->noutputs)
        return qo_error(cx, QO_ERR_USAGE, &gl, "the model has %u outputs, room for %u given", g->noutputs, nout);
    QO_TRY(check_supported(cx, m));

    interp I = {.cx = cx, .m = m, .opset = qo_module_opset(m, "")};
    I.plans = qo_calloc(m->ngraphs ? m->ngraphs : 1, sizeof *I.plans);
    qo_tensor *defaults = qo_calloc(nin ? nin : 1, sizeof *defaults);
    const qo_tensor **in = qo_calloc(nin ? nin : 1, sizeof *in);
    qo_status s = QO_OK;
    for (uint32_t i = 0; i < nin; i++) {
        qo_val v = g->inputs[i];
        if (inputs && inputs[i]) {
            if ((s = check_input(cx, g, i, inputs[i])) != QO_OK) goto out;
            in[i] = inputs[i];
        } else if (g->vals[v].cref) {
            if ((s = qo_tensor_from_const(cx, m, g->vals[v].cref, &defaults[i])) != QO_OK) goto out;
            in[i] = &defaults[i];
        } else {
            s = qo_error(cx, QO_ERR_USAGE, &gl, "input '%s' is missing (it has no default initializer)",
                         qo_val_name(g, v));
            goto out;
        }
    }
    s = run_graph(&I, g, NULL, in, nin, outputs, nout);
out:
    for (uint32_t i = 0; i < nin; i++) qo_tensor_free(&defaults[i]);
    for (uint32_t i = 0; i < m->ngraphs; i++)
        if (I.plans[i]) {
            free(I.plans[i]->last);
            free(I.plans[i]->cap_val);
            free(I.plans[i]->cap_up);
            free(I.plans[i]);
        }
    free(I.plans);
    free(defaults);
    free(in);
    return s;
}

/* See rt.h: one If/Loop/Scan node, its bodies' captures resolved against the caller's scope. */
qo_status qo_interp_run_node(qo_ctx *cx, const qo_graph *g, qo_node n, const qo_tensor *const *in, uint32_t nin,
                             qo_tensor *out, uint32_t nout, const qo_val *scope_vals, const qo_tensor *const *scope,
                             uint32_t nscope) {
    const qo_module *m = g->m;
    const qo_nodedata *nd = &g->nodes[n];
    qo_loc l = qo_node_loc(g, n);
    memset(out, 0, nout * sizeof *out);
    if (nd->op != QO_OP_IF && nd->op != QO_OP_LOOP && nd->op != QO_OP_SCAN)
        return qo_error(cx, QO_ERR_USAGE, &l, "qo_interp_run_node runs If, Loop and Scan nodes only");
    if (nin != nd->nin || nout != nd->nout)
        return qo_error(cx, QO_ERR_USAGE, &l, "the node has %u inputs and %u outputs, called with %u and %u", nd->nin,
                        nd->nout, nin, nout);
    interp I = {.cx = cx, .m = m, .opset = qo_module_opset(m, "")};
    I.plans = qo_calloc(m->ngraphs ? m->ngraphs : 1, sizeof *I.plans);
    frame F = {.g = g, .parent = NULL};
    F.env = qo_calloc(g->nvals ? g->nvals : 1, sizeof *F.env);
    F.live = qo_calloc(g->nvals ? g->nvals : 1, 1);
    for (uint32_t i = 0; i < nscope; i++) {
        qo_val v = scope_vals[i];
        if (!v || v >= g->nvals || !scope[i]) continue;
        F.env[v] = *scope[i];
        F.env[v].owned = 0;
        F.live[v] = 1;
    }
    qo_status s;
    if (nd->op == QO_OP_IF) s = run_if(&I, &F, n, in, out, nout);
    else if (nd->op == QO_OP_LOOP) s = run_loop(&I, &F, n, in, nin, out, nout);
    else s = run_scan(&I, &F, n, in, nin, out, nout);
    if (s != QO_OK) free_outputs(out, nout);
    for (uint32_t i = 0; i < m->ngraphs; i++)
        if (I.plans[i]) {
            free(I.plans[i]->last);
            free(I.plans[i]->cap_val);
            free(I.plans[i]->cap_up);
            free(I.plans[i]);
        }
    free(I.plans);
    free(F.env); /* views only */
    free(F.live);
    return s;
}
