/* passes/shape_infer.c — element type and shape inference (`shape-infer`).
 *
 * Walks every graph in program order and computes, for each node of a known op, the types of its
 * results from the types of its operands, the constant operands (shape, axes, pads, scales ...) and
 * the model's default-domain opset (attribute forms before opset 10/11/13/18, input forms after).
 * The result is merged into the value's existing type: unknown parts are filled in, known parts are
 * never made less precise, symbolic dims are kept where a dim passes through unchanged, and an
 * existing type that contradicts the inferred one is kept with a warning naming the node.
 * Ops it does not know (custom domains, Einsum, If/Loop/Scan bodies' results) are left alone. */
#include "passes/pass_impl.h"

#include <math.h>
#include <string.h>

#define MAXR 32 /* ranks above this are left unknown */

typedef struct dim {
    int64_t v;  /* extent, -1 unknown */
    qo_atom s;  /* symbolic name when v < 0 (0 none) */
} dim;

typedef struct shp {
    int elem;   /* qo_elem, QO_UNDEF unknown */
    int rank;   /* -1 unknown */
    dim d[MAXR];
} shp;

typedef struct si {
    qo_pass_ctx *pc;
    qo_graph *g;
    int64_t opset;
    bool warn;
    bool record; /* mark refined values QO_VAL_INFO */
    int64_t updated, conflicts;
} si;

static const dim UNK = {-1, 0};

static void shp_unknown(shp *s, int elem) {
    s->elem = elem;
    s->rank = -1;
}

/* Reads v's type into s; false if v has no tensor type at all (then s is unknown rank, no elem). */
static bool get_shp(const si *x, qo_val v, shp *s) {
    shp_unknown(s, QO_UNDEF);
    if (!v) return false;
    const qo_typedata *t = qo_type_get(x->g->m, x->g->vals[v].type);
    if (!t || t->kind != QO_TY_TENSOR) return false;
    s->elem = t->elem;
    if (t->rank < 0 || t->rank > MAXR) return true;
    s->rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
        s->d[i].v = t->dims[i];
        s->d[i].s = t->syms && t->dims[i] < 0 ? t->syms[i] : 0;
    }
    return true;
}

static int in_elem(const si *x, qo_node n, uint32_t i) {
    qo_val v = qo_node_input(x->g, n, i);
    return v ? qo_type_elem(x->g->m, x->g->vals[v].type) : QO_UNDEF;
}

static uint32_t g_nout(const si *x, qo_node n) { return x->g->nodes[n].nout; }

static int64_t numel(const shp *s) {
    if (s->rank < 0) return -1;
    int64_t k = 1;
    for (int i = 0; i < s->rank; i++) {
        if (s->d[i].v < 0) return -1;
        k *= s->d[i].v;
    }
    return k;
}

/* ---- merging into the existing type --------------------------------------------------------- */

static void merge_and_set(si *x, qo_node n, uint32_t oi, const shp *inf) {
    qo_graph *g = x->g;
    qo_module *m = g->m;
    qo_val v = qo_node_output(g, n, oi);
    if (!v) return;
    if (inf->elem == QO_UNDEF && inf->rank < 0) return; /* nothing learned */
    qo_type old = g->vals[v].type;
    const qo_typedata *ot = qo_type_get(m, old);
    if (ot && ot->kind != QO_TY_TENSOR) return; /* sequences etc.: not ours */
    /* the quant descriptor lives in the arena; `ot` itself points into the type table, which the
     * qo_type_tensor call below may grow (realloc), so keep only what we need from it */
    const qo_quant *oquant = ot ? ot->quant : NULL;
    shp cur;
    get_shp(x, v, &cur);
    shp res = cur;
    bool conflict = false;
    if (res.elem == QO_UNDEF) res.elem = inf->elem;
    else if (inf->elem != QO_UNDEF && inf->elem != res.elem) conflict = true;
    if (inf->rank >= 0) {
        if (res.rank < 0) {
            res.rank = inf->rank;
            for (int i = 0; i < inf->rank; i++) res.d[i] = inf->d[i];
        } else if (res.rank != inf->rank) {
            conflict = true;
        } else {
            for (int i = 0; i < res.rank; i++) {
                dim a = res.d[i], b = inf->d[i];
                if (a.v >= 0 && b.v >= 0 && a.v != b.v) conflict = true;
                else if (a.v < 0 && b.v >= 0) res.d[i] = b;
                else if (a.v < 0 && !a.s && b.s) res.d[i] = b;
            }
        }
    }
    if (conflict) {
        x->conflicts++;
        if (x->warn) {
            qo_loc l = qo_node_loc(g, n);
            qo_warning(x->pc->cx, &l,
                       "inferred type of result %u ('%s') contradicts its declared type; keeping the declared one",
                       oi, qo_val_name(g, v));
        }
        return;
    }
    int64_t dims[MAXR];
    qo_atom syms[MAXR];
    for (int i = 0; i < (res.rank > 0 ? res.rank : 0); i++) {
        dims[i] = res.d[i].v;
        syms[i] = res.d[i].v < 0 ? res.d[i].s : 0;
    }
    qo_type t = qo_type_tensor(m, (qo_elem)res.elem, res.rank, dims, syms);
    if (oquant) t = qo_type_with_quant(m, t, oquant);
    if (x->record && res.elem != QO_UNDEF) g->vals[v].flags |= QO_VAL_INFO; /* metadata only */
    if (t != old) {
        g->vals[v].type = t;
        if (x->record) g->vals[v].flags |= QO_VAL_INFO; /* written back as value_info */
        x->updated++;
    }
}

/* ---- attribute and constant-operand helpers ------------------------------------------------- */

static int attr_ints(const si *x, qo_node n, const char *name, int64_t *out, int cap) {
    const qo_attr *a = qo_node_attr(x->g, n, name);
    if (!a || a->kind != QO_ATTR_INTS || (int)a->n > cap) return -1;
    for (uint32_t i = 0; i < a->n; i++) out[i] = a->u.is[i];
    return (int)a->n;
}

static int64_t attr_i(const si *x, qo_node n, const char *name, int64_t dflt) {
    return qo_attr_int(x->g, n, name, dflt);
}

static bool attr_str_is(const si *x, qo_node n, const char *name, const char *val) {
    const qo_attr *a = qo_node_attr(x->g, n, name);
    return a && a->kind == QO_ATTR_STRING && a->u.s.n == strlen(val) && memcmp(a->u.s.p, val, a->u.s.n) == 0;
}

/* Constant integer operand i of n; -1 if absent or not constant. */
static int cin_ints(const si *x, qo_node n, uint32_t i, int64_t *out, int cap) {
    qo_val v = qo_node_input(x->g, n, i);
    if (!v) return -1;
    return (int)qo_pass_const_ints(x->g, v, out, cap);
}

static bool norm_axis(int64_t *a, int rank) {
    if (*a < 0) *a += rank;
    return *a >= 0 && *a < rank;
}

/* ---- broadcasting --------------------------------------------------------------------------- */

static dim bdim(dim a, dim b) {
    if (a.v == 1) return b;
    if (b.v == 1) return a;
    if (a.v >= 0) return a;
    if (b.v >= 0) return b;
    if (a.s && a.s == b.s) return a;
    return UNK;
}

/* out = broadcast(out, b) in numpy rules. */
static void bcast_into(shp *out, const shp *b) {
    if (out->rank < 0 || b->rank < 0) {
        out->rank = -1;
        return;
    }
    int r = out->rank > b->rank ? out->rank : b->rank;
    shp t = *out;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - out->rank), ib = i - (r - b->rank);
        dim da = ia >= 0 ? out->d[ia] : (dim){1, 0};
        dim db = ib >= 0 ? b->d[ib] : (dim){1, 0};
        t.d[i] = bdim(da, db);
    }
    t.rank = r;
    *out = t;
}

static void bcast_inputs(const si *x, qo_node n, uint32_t from, uint32_t to, shp *out) {
    bool first = true;
    for (uint32_t i = from; i < to; i++) {
        shp s;
        qo_val v = qo_node_input(x->g, n, i);
        if (!v) continue;
        get_shp(x, v, &s);
        if (first) {
            *out = s;
            first = false;
        } else {
            int e = out->elem;
            bcast_into(out, &s);
            out->elem = e;
        }
    }
    if (first) shp_unknown(out, QO_UNDEF);
}

/* ---- convolution and pooling ---------------------------------------------------------------- */

typedef struct win {
    int nsp;              /* spatial dims */
    int64_t k[MAXR], s[MAXR], dil[MAXR], pads[2 * MAXR], opad[MAXR];
    bool same_upper, same_lower, valid, ceil_mode;
} win;

static bool read_win(const si *x, qo_node n, int nsp, const int64_t *kdefault, win *w) {
    memset(w, 0, sizeof *w);
    w->nsp = nsp;
    int64_t tmp[2 * MAXR];
    int c = attr_ints(x, n, "kernel_shape", tmp, MAXR);
    if (c == nsp) memcpy(w->k, tmp, sizeof(int64_t) * (size_t)nsp);
    else if (c < 0 && kdefault) memcpy(w->k, kdefault, sizeof(int64_t) * (size_t)nsp);
    else return false;
    for (int i = 0; i < nsp; i++) w->s[i] = w->dil[i] = 1;
    if ((c = attr_ints(x, n, "strides", tmp, MAXR)) >= 0) {
        if (c != nsp) return false;
        memcpy(w->s, tmp, sizeof(int64_t) * (size_t)nsp);
    }
    if ((c = attr_ints(x, n, "dilations", tmp, MAXR)) >= 0) {
        if (c != nsp) return false;
        memcpy(w->dil, tmp, sizeof(int64_t) * (size_t)nsp);
    }
    if ((c = attr_ints(x, n, "pads", tmp, 2 * MAXR)) >= 0) {
        if (c != 2 * nsp) return false;
        memcpy(w->pads, tmp, sizeof(int64_t) * (size_t)(2 * nsp));
    }
    if ((c = attr_ints(x, n, "output_padding", tmp, MAXR)) >= 0) {
        if (c != nsp) return false;
        memcpy(w->opad, tmp, sizeof(int64_t) * (size_t)nsp);
    }
    w->same_upper = attr_str_is(x, n, "auto_pad", "SAME_UPPER");
    w->same_lower = attr_str_is(x, n, "auto_pad", "SAME_LOWER");
    w->valid = attr_str_is(x, n, "auto_pad", "VALID");
    w->ceil_mode = attr_i(x, n, "ceil_mode", 0) != 0;
    for (int i = 0; i < nsp; i++)
        if (w->s[i] < 1 || w->dil[i] < 1 || w->k[i] < 1) return false;
    return true;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* Output extent of a convolution/pooling window along spatial axis i for input extent in. */
static int64_t win_out(const win *w, int i, int64_t in) {
    if (in < 0) return -1;
    int64_t ek = w->dil[i] * (w->k[i] - 1) + 1;
    if (w->same_upper || w->same_lower) return ceil_div(in, w->s[i]);
    if (w->valid) return ceil_div(in - ek + 1, w->s[i]);
    int64_t pb = w->pads[i], pe = w->pads[i + w->nsp];
    int64_t span = in + pb + pe - ek;
    if (span < 0) return -1;
    if (!w->ceil_mode) return span / w->s[i] + 1;
    int64_t o = ceil_div(span, w->s[i]) + 1;
    if ((o - 1) * w->s[i] >= in + pb) o--; /* the last window must start inside the input or the begin padding */
    return o;
}

static void infer_conv(si *x, qo_node n, bool transpose, int out_elem) {
    shp X, W, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    get_shp(x, qo_node_input(x->g, n, 1), &W);
    shp_unknown(&o, out_elem ? out_elem : X.elem);
    int r = X.rank >= 0 ? X.rank : W.rank;
    if (r < 3) goto done;
    int nsp = r - 2;
    int64_t kd[MAXR];
    bool kknown = W.rank == r;
    for (int i = 0; i < nsp && kknown; i++) kknown = (kd[i] = W.d[2 + i].v) > 0;
    win w;
    o.rank = r;
    for (int i = 0; i < r; i++) o.d[i] = UNK;
    if (X.rank == r) o.d[0] = X.d[0];
    int64_t group = attr_i(x, n, "group", 1);
    if (W.rank == r) {
        if (!transpose) o.d[1] = W.d[0];
        else if (W.d[1].v >= 0) o.d[1] = (dim){W.d[1].v * group, 0};
    }
    if (!read_win(x, n, nsp, kknown ? kd : NULL, &w) || X.rank != r) goto done;
    if (!transpose) {
        for (int i = 0; i < nsp; i++) o.d[2 + i].v = win_out(&w, i, X.d[2 + i].v);
    } else {
        int64_t os[MAXR];
        int c = attr_ints(x, n, "output_shape", os, MAXR);
        for (int i = 0; i < nsp; i++) {
            int64_t in = X.d[2 + i].v;
            if (c == nsp) o.d[2 + i].v = os[i];
            else if (c > nsp) o.d[2 + i].v = os[c - nsp + i];
            else if (in < 0) o.d[2 + i].v = -1;
            else if (w.same_upper || w.same_lower) o.d[2 + i].v = in * w.s[i];
            else
                o.d[2 + i].v = w.s[i] * (in - 1) + w.opad[i] + (w.k[i] - 1) * w.dil[i] + 1 - w.pads[i] -
                               w.pads[i + nsp];
        }
    }
done:
    merge_and_set(x, n, 0, &o);
}

static void infer_pool(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    win w;
    if (X.rank >= 3 && read_win(x, n, X.rank - 2, NULL, &w)) {
        o = X;
        for (int i = 0; i < X.rank - 2; i++) o.d[2 + i] = (dim){win_out(&w, i, X.d[2 + i].v), 0};
    } else if (X.rank >= 3) {
        o = X;
        for (int i = 2; i < X.rank; i++) o.d[i] = UNK;
    }
    merge_and_set(x, n, 0, &o);
    if (g_nout(x, n) > 1) {
        o.elem = QO_I64;
        merge_and_set(x, n, 1, &o);
    }
}

/* ---- matrix products ------------------------------------------------------------------------ */

static void infer_matmul(si *x, qo_node n, int out_elem, uint32_t ia, uint32_t ib) {
    shp A, B, o;
    get_shp(x, qo_node_input(x->g, n, ia), &A);
    get_shp(x, qo_node_input(x->g, n, ib), &B);
    shp_unknown(&o, out_elem ? out_elem : A.elem);
    if (A.rank < 1 || B.rank < 1) goto done;
    {
        /* promote 1-D operands, broadcast batch dims, drop the promoted dims again */
        shp a = A, b = B;
        if (A.rank == 1) a.rank = 2, a.d[0] = (dim){1, 0}, a.d[1] = A.d[0];
        if (B.rank == 1) b.rank = 2, b.d[0] = B.d[0], b.d[1] = (dim){1, 0};
        shp ba = a, bb = b;
        ba.rank -= 2;
        bb.rank -= 2;
        bcast_into(&ba, &bb);
        if (ba.rank < 0) goto done;
        o.rank = ba.rank;
        for (int i = 0; i < ba.rank; i++) o.d[i] = ba.d[i];
        if (A.rank != 1) o.d[o.rank++] = a.d[a.rank - 2];
        if (B.rank != 1) o.d[o.rank++] = b.d[b.rank - 1];
    }
done:
    merge_and_set(x, n, 0, &o);
}

static void infer_gemm(si *x, qo_node n) {
    shp A, B, o;
    get_shp(x, qo_node_input(x->g, n, 0), &A);
    get_shp(x, qo_node_input(x->g, n, 1), &B);
    shp_unknown(&o, A.elem);
    if (A.rank == 2 && B.rank == 2) {
        o.rank = 2;
        o.d[0] = attr_i(x, n, "transA", 0) ? A.d[1] : A.d[0];
        o.d[1] = attr_i(x, n, "transB", 0) ? B.d[0] : B.d[1];
    }
    merge_and_set(x, n, 0, &o);
}

/* ---- reductions ----------------------------------------------------------------------------- */

/* Reduces X over axes (all if nax == 0 && !noop); keepdims keeps them as 1. */
static void reduce_shape(const shp *X, const int64_t *axes, int nax, bool keep, bool noop, shp *o) {
    o->rank = -1;
    if (X->rank < 0) return;
    if (nax == 0 && noop) {
        *o = (shp){.elem = o->elem, .rank = X->rank};
        memcpy(o->d, X->d, sizeof(dim) * (size_t)X->rank);
        return;
    }
    bool red[MAXR] = {0};
    for (int i = 0; i < nax; i++) {
        int64_t a = axes[i];
        if (!norm_axis(&a, X->rank)) return;
        red[a] = true;
    }
    if (nax == 0)
        for (int i = 0; i < X->rank; i++) red[i] = true;
    int r = 0;
    for (int i = 0; i < X->rank; i++) {
        if (!red[i]) o->d[r++] = X->d[i];
        else if (keep) o->d[r++] = (dim){1, 0};
    }
    o->rank = r;
}

static void infer_reduce(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    qo_op op = (qo_op)x->g->nodes[n].op;
    int64_t input_form = op == QO_OP_REDUCESUM ? 13 : 18;
    int64_t axes[MAXR];
    int nax;
    bool keep = attr_i(x, n, "keepdims", 1) != 0;
    bool noop = attr_i(x, n, "noop_with_empty_axes", 0) != 0;
    if (x->opset >= input_form) {
        qo_val av = qo_node_input(x->g, n, 1);
        nax = av ? cin_ints(x, n, 1, axes, MAXR) : 0;
        if (nax < 0) { /* axes not constant: rank known only with keepdims */
            if (keep && X.rank >= 0) {
                o = X;
                for (int i = 0; i < X.rank; i++) o.d[i] = UNK;
            }
            merge_and_set(x, n, 0, &o);
            return;
        }
    } else {
        nax = attr_ints(x, n, "axes", axes, MAXR);
        if (nax < 0) nax = 0;
        noop = false;
    }
    reduce_shape(&X, axes, nax, keep, noop, &o);
    merge_and_set(x, n, 0, &o);
}

static void infer_argmax(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, QO_I64);
    int64_t ax = attr_i(x, n, "axis", 0);
    if (X.rank >= 0 && norm_axis(&ax, X.rank)) reduce_shape(&X, &ax, 1, attr_i(x, n, "keepdims", 1) != 0, false, &o);
    merge_and_set(x, n, 0, &o);
}

/* ---- data movement -------------------------------------------------------------------------- */

static void infer_reshape(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    int64_t sh[MAXR];
    int c = cin_ints(x, n, 1, sh, MAXR);
    bool allowzero = x->opset >= 14 && attr_i(x, n, "allowzero", 0) != 0;
    if (c < 0) {
        shp S;
        get_shp(x, qo_node_input(x->g, n, 1), &S);
        if (S.rank == 1 && S.d[0].v >= 0 && S.d[0].v <= MAXR) {
            o.rank = (int)S.d[0].v;
            for (int i = 0; i < o.rank; i++) o.d[i] = UNK;
        }
        merge_and_set(x, n, 0, &o);
        return;
    }
    o.rank = c;
    int neg = -1;
    int64_t known = 1;
    bool all_known = true;
    for (int i = 0; i < c; i++) {
        if (sh[i] == 0 && !allowzero) {
            o.d[i] = i < X.rank ? X.d[i] : UNK;
        } else if (sh[i] == -1) {
            neg = i;
            o.d[i] = UNK;
            continue;
        } else {
            o.d[i] = (dim){sh[i], 0};
        }
        if (o.d[i].v < 0) all_known = false;
        else known *= o.d[i].v;
    }
    int64_t total = numel(&X);
    if (neg >= 0 && all_known && total >= 0 && known > 0) o.d[neg] = (dim){total / known, 0};
    merge_and_set(x, n, 0, &o);
}

static void infer_flatten(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    int64_t ax = attr_i(x, n, "axis", 1);
    if (X.rank >= 0) {
        if (ax < 0) ax += X.rank;
        if (ax >= 0 && ax <= X.rank) {
            int64_t a = 1, b = 1;
            for (int i = 0; i < X.rank; i++) {
                int64_t *p = i < ax ? &a : &b;
                if (X.d[i].v < 0 || *p < 0) *p = -1;
                else *p *= X.d[i].v;
            }
            o.rank = 2;
            o.d[0] = (dim){a, 0};
            o.d[1] = (dim){b, 0};
            if (ax == 1 && X.d[0].v < 0) o.d[0] = X.d[0]; /* batch dim passes through */
        }
    }
    merge_and_set(x, n, 0, &o);
}

static void infer_transpose(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    if (X.rank >= 0) {
        int64_t perm[MAXR];
        int c = attr_ints(x, n, "perm", perm, MAXR);
        if (c < 0) {
            c = X.rank;
            for (int i = 0; i < c; i++) perm[i] = c - 1 - i;
        }
        if (c == X.rank) {
            o.rank = c;
            for (int i = 0; i < c; i++) {
                if (perm[i] < 0 || perm[i] >= c) {
                    o.rank = -1;
                    break;
                }
                o.d[i] = X.d[perm[i]];
            }
        }
    }
    merge_and_set(x, n, 0, &o);
}

static void infer_squeeze(si *x, qo_node n, bool unsq) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    int64_t axes[MAXR];
    int nax;
    bool has_axes = true;
    if (x->opset >= 13) {
        qo_val av = qo_node_input(x->g, n, 1);
        has_axes = av != 0;
        nax = av ? cin_ints(x, n, 1, axes, MAXR) : 0;
    } else {
        nax = attr_ints(x, n, "axes", axes, MAXR);
        has_axes = nax >= 0;
        if (nax < 0) nax = 0;
    }
    if (X.rank < 0 || nax < 0) goto done;
    if (unsq) {
        int r = X.rank + nax;
        if (!has_axes || r > MAXR) goto done;
        bool ins[MAXR] = {0};
        for (int i = 0; i < nax; i++) {
            int64_t a = axes[i];
            if (!norm_axis(&a, r) || ins[a]) goto done;
            ins[a] = true;
        }
        int j = 0;
        for (int i = 0; i < r; i++) o.d[i] = ins[i] ? (dim){1, 0} : X.d[j++];
        o.rank = r;
    } else {
        bool del[MAXR] = {0};
        if (!has_axes) {
            for (int i = 0; i < X.rank; i++) {
                if (X.d[i].v < 0) goto done; /* which dims are 1 is unknown */
                del[i] = X.d[i].v == 1;
            }
        }
        for (int i = 0; i < nax; i++) {
            int64_t a = axes[i];
            if (!norm_axis(&a, X.rank)) goto done;
            del[a] = true;
        }
        int r = 0;
        for (int i = 0; i < X.rank; i++)
            if (!del[i]) o.d[r++] = X.d[i];
        o.rank = r;
    }
done:
    merge_and_set(x, n, 0, &o);
}

static void infer_concat(si *x, qo_node n) {
    shp o;
    shp_unknown(&o, QO_UNDEF);
    int64_t ax = attr_i(x, n, "axis", 0);
    uint32_t nin = x->g->nodes[n].nin;
    bool first = true;
    for (uint32_t i = 0; i < nin; i++) {
        shp s;
        get_shp(x, qo_node_input(x->g, n, i), &s);
        if (o.elem == QO_UNDEF) o.elem = s.elem;
        if (s.rank < 0) {
            if (first) {
                first = false;
                o.rank = -1;
            }
            o.d[0].v = -2; /* mark: sum unknown */
            continue;
        }
        int64_t a = ax;
        if (!norm_axis(&a, s.rank)) {
            o.rank = -1;
            break;
        }
        if (first) {
            o.rank = s.rank;
            memcpy(o.d, s.d, sizeof(dim) * (size_t)s.rank);
            first = false;
            continue;
        }
        if (o.rank < 0) { /* an earlier input had unknown rank: take this one's rank */
            o.rank = s.rank;
            memcpy(o.d, s.d, sizeof(dim) * (size_t)s.rank);
            o.d[a] = UNK;
            continue;
        }
        if (o.rank != s.rank) {
            o.rank = -1;
            break;
        }
        for (int k = 0; k < s.rank; k++) {
            if (k == a) {
                o.d[k] = o.d[k].v >= 0 && s.d[k].v >= 0 ? (dim){o.d[k].v + s.d[k].v, 0} : UNK;
            } else if (o.d[k].v < 0 && (s.d[k].v >= 0 || (!o.d[k].s && s.d[k].s))) {
                o.d[k] = s.d[k];
            }
        }
    }
    merge_and_set(x, n, 0, &o);
}

static void infer_split(si *x, qo_node n) {
    shp X;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    uint32_t nout = g_nout(x, n);
    int64_t ax = attr_i(x, n, "axis", 0);
    int64_t sp[MAXR * 4];
    int c = -1;
    if (x->opset >= 13) {
        if (qo_node_input(x->g, n, 1)) {
            c = cin_ints(x, n, 1, sp, MAXR * 4);
            if (c < 0) c = -2; /* given but not constant */
        }
    } else {
        c = attr_ints(x, n, "split", sp, MAXR * 4);
    }
    for (uint32_t i = 0; i < nout; i++) {
        shp o;
        shp_unknown(&o, X.elem);
        int64_t a = ax;
        if (X.rank >= 0 && norm_axis(&a, X.rank)) {
            o = X;
            int64_t d = X.d[a].v, len = -1;
            if (c >= 0 && (uint32_t)c == nout) {
                len = sp[i];
            } else if (c == -1 && d >= 0) {
                int64_t no = x->opset >= 18 ? attr_i(x, n, "num_outputs", (int64_t)nout) : (int64_t)nout;
                if (no > 0) {
                    int64_t chunk = ceil_div(d, no);
                    if (x->opset < 18) chunk = d / no;
                    len = (int64_t)i < no - 1 ? chunk : d - chunk * (no - 1);
                    if (x->opset < 18 && d % no) len = -1;
                }
            }
            o.d[a] = (dim){len, 0};
        }
        merge_and_set(x, n, i, &o);
    }
}

static void infer_slice(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    if (X.rank < 0) goto done;
    int64_t st[MAXR], en[MAXR], ax[MAXR], sp[MAXR];
    int ns, ne, na, nst;
    if (x->opset < 10) {
        ns = attr_ints(x, n, "starts", st, MAXR);
        ne = attr_ints(x, n, "ends", en, MAXR);
        na = attr_ints(x, n, "axes", ax, MAXR);
        nst = -2;
    } else {
        ns = cin_ints(x, n, 1, st, MAXR);
        ne = cin_ints(x, n, 2, en, MAXR);
        na = qo_node_input(x->g, n, 3) ? cin_ints(x, n, 3, ax, MAXR) : -2;
        nst = qo_node_input(x->g, n, 4) ? cin_ints(x, n, 4, sp, MAXR) : -2;
        if (na == -1 || nst == -1) { /* axes or steps not constant: which dims change is unknown */
            o = X;
            for (int i = 0; i < X.rank; i++) o.d[i] = UNK;
            goto done;
        }
    }
    if (na < 0) { /* default axes */
        na = ns;
        for (int i = 0; i < na && i < MAXR; i++) ax[i] = i;
    }
    if (nst < 0) {
        nst = na;
        for (int i = 0; i < nst && i < MAXR; i++) sp[i] = 1;
    }
    o = X;
    if (ns < 0 || ne < 0 || ns != ne || ns != na || na != nst) {
        /* starts/ends not constant: the sliced axes lose their extents */
        if (na >= 0 && ns < 0)
            for (int i = 0; i < na; i++) {
                int64_t a = ax[i];
                if (norm_axis(&a, X.rank)) o.d[a] = UNK;
            }
        else
            for (int i = 0; i < X.rank; i++) o.d[i] = UNK;
        goto done;
    }
    for (int i = 0; i < na; i++) {
        int64_t a = ax[i];
        if (!norm_axis(&a, X.rank) || sp[i] == 0) {
            shp_unknown(&o, X.elem);
            goto done;
        }
        int64_t d = X.d[a].v;
        if (d < 0) {
            o.d[a] = UNK;
            continue;
        }
        int64_t s = st[i], e = en[i], step = sp[i], len;
        if (s < 0) s += d;
        if (e < 0) e += d;
        if (step > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            len = e > s ? ceil_div(e - s, step) : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            len = s > e ? ceil_div(s - e, -step) : 0;
        }
        o.d[a] = (dim){len, 0};
    }
done:
    merge_and_set(x, n, 0, &o);
}

static void infer_gather(si *x, qo_node n) {
    shp X, I, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    get_shp(x, qo_node_input(x->g, n, 1), &I);
    shp_unknown(&o, X.elem);
    int64_t ax = attr_i(x, n, "axis", 0);
    if (X.rank >= 1 && I.rank >= 0 && norm_axis(&ax, X.rank) && X.rank - 1 + I.rank <= MAXR) {
        int r = 0;
        for (int i = 0; i < ax; i++) o.d[r++] = X.d[i];
        for (int i = 0; i < I.rank; i++) o.d[r++] = I.d[i];
        for (int i = (int)ax + 1; i < X.rank; i++) o.d[r++] = X.d[i];
        o.rank = r;
    }
    merge_and_set(x, n, 0, &o);
}

static void infer_shape_op(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, QO_I64);
    o.rank = 1;
    o.d[0] = UNK;
    if (X.rank >= 0) {
        int64_t s = x->opset >= 15 ? attr_i(x, n, "start", 0) : 0;
        int64_t e = x->opset >= 15 ? attr_i(x, n, "end", X.rank) : X.rank;
        if (s < 0) s += X.rank;
        if (e < 0) e += X.rank;
        s = s < 0 ? 0 : s > X.rank ? X.rank : s;
        e = e < 0 ? 0 : e > X.rank ? X.rank : e;
        o.d[0].v = e > s ? e - s : 0;
    }
    merge_and_set(x, n, 0, &o);
}

/* Output of shape `sh` (constant operand) for ConstantOfShape/Expand-like ops; false if unknown. */
static bool shape_from_operand(si *x, qo_node n, uint32_t i, shp *o) {
    int64_t sh[MAXR];
    int c = cin_ints(x, n, i, sh, MAXR);
    if (c >= 0) {
        o->rank = c;
        for (int k = 0; k < c; k++) o->d[k] = (dim){sh[k], 0};
        return true;
    }
    shp S;
    get_shp(x, qo_node_input(x->g, n, i), &S);
    if (S.rank == 1 && S.d[0].v >= 0 && S.d[0].v <= MAXR) {
        o->rank = (int)S.d[0].v;
        for (int k = 0; k < o->rank; k++) o->d[k] = UNK;
    }
    return false;
}

static void infer_expand(si *x, qo_node n) {
    shp X, S, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    shp_unknown(&S, X.elem);
    bool known = shape_from_operand(x, n, 1, &S);
    if (S.rank >= 0 && X.rank >= 0) {
        if (known) {
            /* Expand broadcasts both ways: a 1 in the shape keeps the input's extent */
            o = X;
            bcast_into(&o, &S);
        } else {
            /* extents > 1 of the input survive whatever the (unknown) target is */
            int r = S.rank > X.rank ? S.rank : X.rank;
            o.rank = r;
            for (int i = 0; i < r; i++) {
                int ix = i - (r - X.rank);
                o.d[i] = ix >= 0 && X.d[ix].v > 1 ? X.d[ix] : UNK;
            }
        }
    }
    o.elem = X.elem;
    merge_and_set(x, n, 0, &o);
}

static void infer_tile(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    int64_t rep[MAXR];
    int c = cin_ints(x, n, 1, rep, MAXR);
    if (X.rank >= 0) {
        o = X;
        for (int i = 0; i < X.rank; i++)
            o.d[i] = c == X.rank && X.d[i].v >= 0 ? (dim){X.d[i].v * rep[i], 0}
                     : c == X.rank && rep[i] == 1 ? X.d[i]
                                                  : UNK;
    }
    merge_and_set(x, n, 0, &o);
}

static void infer_pad(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    if (X.rank < 0) goto done;
    int64_t pads[2 * MAXR], axes[MAXR];
    int c = x->opset < 11 ? attr_ints(x, n, "pads", pads, 2 * MAXR) : cin_ints(x, n, 1, pads, 2 * MAXR);
    int na = X.rank;
    for (int i = 0; i < X.rank; i++) axes[i] = i;
    if (x->opset >= 18 && qo_node_input(x->g, n, 3)) na = cin_ints(x, n, 3, axes, MAXR);
    o = X;
    if (c < 0 || na < 0 || c != 2 * na) {
        for (int i = 0; i < X.rank; i++) o.d[i] = UNK;
        goto done;
    }
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i];
        if (!norm_axis(&a, X.rank)) {
            shp_unknown(&o, X.elem);
            goto done;
        }
        int64_t add = pads[i] + pads[i + na];
        if (add == 0) continue;
        o.d[a] = X.d[a].v >= 0 ? (dim){X.d[a].v + add, 0} : UNK;
    }
done:
    merge_and_set(x, n, 0, &o);
}

static void infer_resize(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    if (X.rank < 0) goto done;
    float sc[MAXR];
    int64_t sz[MAXR], axes[MAXR];
    int nsc = -1, nsz = -1, nax = -1;
    qo_op op = (qo_op)x->g->nodes[n].op;
    if (op == QO_OP_UPSAMPLE) {
        if (x->opset < 9) {
            const qo_attr *a = qo_node_attr(x->g, n, "scales");
            if (a && a->kind == QO_ATTR_FLOATS && a->n <= MAXR) {
                nsc = (int)a->n;
                memcpy(sc, a->u.fs, sizeof(float) * a->n);
            }
        } else {
            nsc = (int)qo_pass_const_floats(x->g, qo_node_input(x->g, n, 1), sc, MAXR);
        }
    } else if (x->opset < 11) {
        nsc = (int)qo_pass_const_floats(x->g, qo_node_input(x->g, n, 1), sc, MAXR);
    } else {
        qo_val vs = qo_node_input(x->g, n, 2), vz = qo_node_input(x->g, n, 3);
        if (vs) nsc = (int)qo_pass_const_floats(x->g, vs, sc, MAXR);
        if (vz) nsz = (int)qo_pass_const_ints(x->g, vz, sz, MAXR);
        if (nsc == 0) nsc = -1; /* empty scales means "use sizes" */
        if (x->opset >= 18) nax = attr_ints(x, n, "axes", axes, MAXR);
    }
    o = X;
    if (nax < 0) {
        nax = X.rank;
        for (int i = 0; i < X.rank; i++) axes[i] = i;
    }
    if (nsz == nax && nsz > 0 && !attr_str_is(x, n, "keep_aspect_ratio_policy", "not_larger") &&
        !attr_str_is(x, n, "keep_aspect_ratio_policy", "not_smaller")) {
        for (int i = 0; i < nax; i++) {
            int64_t a = axes[i];
            if (!norm_axis(&a, X.rank)) goto unknown_dims;
            o.d[a] = (dim){sz[i], 0};
        }
        goto done;
    }
    if (nsc == nax && nsc > 0) {
        for (int i = 0; i < nax; i++) {
            int64_t a = axes[i];
            if (!norm_axis(&a, X.rank)) goto unknown_dims;
            if (sc[i] == 1.0f) continue;
            o.d[a] = X.d[a].v >= 0 ? (dim){(int64_t)floorf((float)X.d[a].v * sc[i]), 0} : UNK;
        }
        goto done;
    }
unknown_dims:
    for (int i = 0; i < X.rank; i++) o.d[i] = UNK;
done:
    merge_and_set(x, n, 0, &o);
}

static void infer_topk(si *x, qo_node n) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    int64_t ax = attr_i(x, n, "axis", -1), k = -1;
    if (x->opset < 10) k = attr_i(x, n, "k", -1);
    else if (cin_ints(x, n, 1, &k, 1) != 1) k = -1;
    if (X.rank >= 0 && norm_axis(&ax, X.rank)) {
        o = X;
        o.d[ax] = (dim){k, 0};
    }
    merge_and_set(x, n, 0, &o);
    o.elem = QO_I64;
    merge_and_set(x, n, 1, &o);
}

static void infer_range(si *x, qo_node n) {
    shp o;
    shp_unknown(&o, in_elem(x, n, 0));
    o.rank = 1;
    o.d[0] = UNK;
    int64_t a, b, c;
    float fa, fb, fc;
    if (cin_ints(x, n, 0, &a, 1) == 1 && cin_ints(x, n, 1, &b, 1) == 1 && cin_ints(x, n, 2, &c, 1) == 1 && c) {
        int64_t len = (int64_t)ceil((double)(b - a) / (double)c);
        o.d[0].v = len > 0 ? len : 0;
    } else if (qo_pass_const_floats(x->g, qo_node_input(x->g, n, 0), &fa, 1) == 1 &&
               qo_pass_const_floats(x->g, qo_node_input(x->g, n, 1), &fb, 1) == 1 &&
               qo_pass_const_floats(x->g, qo_node_input(x->g, n, 2), &fc, 1) == 1 && fc != 0) {
        double len = ceil((double)(fb - fa) / (double)fc);
        o.d[0].v = len > 0 ? (int64_t)len : 0;
    }
    merge_and_set(x, n, 0, &o);
}

static void infer_same(si *x, qo_node n, uint32_t oi, int elem) {
    shp s;
    get_shp(x, qo_node_input(x->g, n, 0), &s);
    if (elem) s.elem = elem;
    merge_and_set(x, n, oi, &s);
}

/* qopt's training ops (ai.qopt.train, passes/autodiff/autodiff.h): each gradient has the shape of
 * what it differentiates, in dY's element type; SoftmaxCrossEntropy is a scalar. */
static void infer_train(si *x, qo_node n) {
    shp s;
    int e = in_elem(x, n, 0);
    for (uint32_t r = 0; r < g_nout(x, n); r++) {
        uint32_t src = 1;
        if (x->g->nodes[n].op == QO_OP_TRAIN_CONVGRADWEIGHT) src = 2;
        if (x->g->nodes[n].op == QO_OP_TRAIN_BATCHNORMGRAD && r > 0) src = 2;
        /* QuantGrad{reduce=1}: dScale and dBitwidth summed to the scale's and bit width's shapes */
        if (x->g->nodes[n].op == QO_OP_TRAIN_QUANTGRAD && r > 0 && attr_i(x, n, "reduce", 0)) src = r == 1 ? 2 : 4;
        get_shp(x, qo_node_input(x->g, n, src), &s);
        if (x->g->nodes[n].op == QO_OP_TRAIN_SOFTMAXCE) shp_unknown(&s, e), s.rank = 0;
        s.elem = e;
        merge_and_set(x, n, r, &s);
    }
}

/* Per-channel statistics outputs ([C]) of BatchNormalization in training form. */
static void infer_bn(si *x, qo_node n) {
    infer_same(x, n, 0, 0);
    shp s;
    get_shp(x, qo_node_input(x->g, n, 1), &s);
    for (uint32_t i = 1; i < g_nout(x, n); i++) merge_and_set(x, n, i, &s);
}

static void infer_layernorm(si *x, qo_node n) {
    infer_same(x, n, 0, 0);
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    int64_t ax = attr_i(x, n, "axis", -1);
    shp_unknown(&o, (int)attr_i(x, n, "stash_type", QO_F32));
    if (X.rank >= 0 && norm_axis(&ax, X.rank)) {
        o = X;
        o.elem = (int)attr_i(x, n, "stash_type", QO_F32);
        for (int i = (int)ax; i < X.rank; i++) o.d[i] = (dim){1, 0};
    }
    for (uint32_t i = 1; i < g_nout(x, n); i++) merge_and_set(x, n, i, &o);
}

static void infer_constant(si *x, qo_node n) {
    qo_cref c = qo_pass_constant_node_tensor(x->g, n);
    if (!c) return;
    shp s;
    const qo_typedata *t = qo_type_get(x->g->m, qo_const_get(x->g->m, c)->type);
    if (!t || t->rank > MAXR) return;
    s.elem = t->elem;
    s.rank = t->rank;
    for (int i = 0; i < t->rank; i++) s.d[i] = (dim){t->dims[i], 0};
    merge_and_set(x, n, 0, &s);
}

static void infer_const_of_shape(si *x, qo_node n) {
    shp o;
    int elem = QO_F32;
    const qo_attr *a = qo_node_attr(x->g, n, "value");
    if (a && a->kind == QO_ATTR_TENSOR && a->u.t) elem = qo_type_elem(x->g->m, qo_const_get(x->g->m, a->u.t)->type);
    shp_unknown(&o, elem);
    shape_from_operand(x, n, 0, &o);
    merge_and_set(x, n, 0, &o);
}

static void infer_depth_space(si *x, qo_node n, bool to_space) {
    shp X, o;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    shp_unknown(&o, X.elem);
    int64_t b = attr_i(x, n, "blocksize", 0);
    if (X.rank == 4 && b > 0) {
        o = X;
        int64_t c = X.d[1].v, h = X.d[2].v, w = X.d[3].v;
        if (to_space) {
            o.d[1] = (dim){c >= 0 ? c / (b * b) : -1, 0};
            o.d[2] = (dim){h >= 0 ? h * b : -1, 0};
            o.d[3] = (dim){w >= 0 ? w * b : -1, 0};
        } else {
            o.d[1] = (dim){c >= 0 ? c * b * b : -1, 0};
            o.d[2] = (dim){h >= 0 ? h / b : -1, 0};
            o.d[3] = (dim){w >= 0 ? w / b : -1, 0};
        }
    }
    merge_and_set(x, n, 0, &o);
}

static void infer_global_pool(si *x, qo_node n) {
    shp X;
    get_shp(x, qo_node_input(x->g, n, 0), &X);
    for (int i = 2; i < X.rank; i++) X.d[i] = (dim){1, 0};
    merge_and_set(x, n, 0, &X);
}

static void infer_graph(si *x);

/* If: the bodies are inferred first; a result whose type is the same in both branches takes it. */
static void infer_if(si *x, qo_node n) {
    qo_graph *g = x->g;
    const qo_attr *ta = qo_node_attr(g, n, "then_branch"), *ea = qo_node_attr(g, n, "else_branch");
    if (!ta || !ea || ta->kind != QO_ATTR_GRAPH || ea->kind != QO_ATTR_GRAPH) return;
    qo_graph *tg = g->m->graphs[ta->u.g], *eg = g->m->graphs[ea->u.g];
    si xt = *x, xe = *x;
    xt.g = tg;
    xe.g = eg;
    infer_graph(&xt);
    infer_graph(&xe);
    x->updated += xt.updated + xe.updated;
    x->conflicts += xt.conflicts + xe.conflicts;
    for (uint32_t i = 0; i < g->nodes[n].nout && i < tg->noutputs && i < eg->noutputs; i++) {
        qo_type a = tg->vals[qo_graph_output(tg, i)].type, b = eg->vals[qo_graph_output(eg, i)].type;
        if (!a || a != b) continue;
        shp s;
        qo_val tmp = qo_graph_output(tg, i);
        si xb = *x;
        xb.g = tg;
        get_shp(&xb, tmp, &s);
        merge_and_set(x, n, i, &s);
    }
}

static void infer_node(si *x, qo_node n) {
    qo_graph *g = x->g;
    const qo_nodedata *nd = &g->nodes[n];
    qo_op op = (qo_op)nd->op;
    const qo_opinfo *oi = qo_op_info(op);
    shp o;
    switch (op) {
    case QO_OP_IF: infer_if(x, n); return;
    case QO_OP_UNKNOWN:
    case QO_OP_LOOP:
    case QO_OP_SCAN:
    case QO_OP_EINSUM:
        return; /* left as they are */
    case QO_OP_CONSTANT: infer_constant(x, n); return;
    case QO_OP_CAST: infer_same(x, n, 0, (int)attr_i(x, n, "to", QO_UNDEF)); return;
    case QO_OP_CASTLIKE: infer_same(x, n, 0, in_elem(x, n, 1)); return;
    case QO_OP_ISINF:
    case QO_OP_ISNAN:
    case QO_OP_NOT: infer_same(x, n, 0, QO_BOOL); return;
    case QO_OP_WHERE:
        bcast_inputs(x, n, 0, 3, &o);
        o.elem = in_elem(x, n, 1) ? in_elem(x, n, 1) : in_elem(x, n, 2);
        merge_and_set(x, n, 0, &o);
        return;
    case QO_OP_AND:
    case QO_OP_OR:
    case QO_OP_XOR:
        bcast_inputs(x, n, 0, nd->nin, &o);
        o.elem = QO_BOOL;
        merge_and_set(x, n, 0, &o);
        return;
    case QO_OP_CLIP:
    case QO_OP_DROPOUT:
        infer_same(x, n, 0, 0);
        if (op == QO_OP_DROPOUT && nd->nout > 1) infer_same(x, n, 1, QO_BOOL);
        return;
    case QO_OP_PRELU:
        bcast_inputs(x, n, 0, 2, &o);
        o.elem = in_elem(x, n, 0);
        merge_and_set(x, n, 0, &o);
        return;
    case QO_OP_SOFTMAX:
    case QO_OP_LOGSOFTMAX:
    case QO_OP_HARDMAX:
    case QO_OP_LRN:
    case QO_OP_LPNORMALIZATION:
    case QO_OP_MEANVARIANCENORMALIZATION:
    case QO_OP_INSTANCENORMALIZATION:
    case QO_OP_IDENTITY:
    case QO_OP_CUMSUM:
    case QO_OP_TRILU:
    case QO_OP_SCATTER:
    case QO_OP_SCATTERELEMENTS:
    case QO_OP_SCATTERND:
    case QO_OP_QONNX_QUANT:
    case QO_OP_QONNX_BIPOLARQUANT:
    case QO_OP_QONNX_TRUNC: infer_same(x, n, 0, 0); return;
    case QO_OP_RANDOMNORMALLIKE:
    case QO_OP_RANDOMUNIFORMLIKE:
    case QO_OP_EYELIKE: infer_same(x, n, 0, (int)attr_i(x, n, "dtype", in_elem(x, n, 0))); return;
    case QO_OP_RANDOMNORMAL:
    case QO_OP_RANDOMUNIFORM: {
        int64_t sh[MAXR];
        int c = attr_ints(x, n, "shape", sh, MAXR);
        shp_unknown(&o, (int)attr_i(x, n, "dtype", QO_F32));
        if (c >= 0) {
            o.rank = c;
            for (int i = 0; i < c; i++) o.d[i] = (dim){sh[i], 0};
        }
        merge_and_set(x, n, 0, &o);
        return;
    }
    case QO_OP_BATCHNORMALIZATION: infer_bn(x, n); return;
    case QO_OP_TRAIN_CONVGRADWEIGHT:
    case QO_OP_TRAIN_MAXPOOLGRAD:
    case QO_OP_TRAIN_AVERAGEPOOLGRAD:
    case QO_OP_TRAIN_BATCHNORMGRAD:
    case QO_OP_TRAIN_QUANTGRAD:
    case QO_OP_TRAIN_SOFTMAXCE:
    case QO_OP_TRAIN_SOFTMAXCEGRAD: infer_train(x, n); return;
    case QO_OP_LAYERNORMALIZATION: infer_layernorm(x, n); return;
    case QO_OP_QUANTIZELINEAR: {
        int e = in_elem(x, n, 2);
        if (!qo_node_input(g, n, 2)) e = QO_U8;
        int64_t od = attr_i(x, n, "output_dtype", 0);
        if (od) e = (int)od;
        infer_same(x, n, 0, e);
        return;
    }
    case QO_OP_DEQUANTIZELINEAR: infer_same(x, n, 0, in_elem(x, n, 1)); return;
    case QO_OP_DYNAMICQUANTIZELINEAR:
        infer_same(x, n, 0, QO_U8);
        shp_unknown(&o, QO_F32);
        o.rank = 0;
        merge_and_set(x, n, 1, &o);
        o.elem = QO_U8;
        merge_and_set(x, n, 2, &o);
        return;
    case QO_OP_CONV: infer_conv(x, n, false, 0); return;
    case QO_OP_CONVINTEGER: infer_conv(x, n, false, QO_I32); return;
    case QO_OP_QLINEARCONV: return; /* not needed by the models we import; left alone */
    case QO_OP_CONVTRANSPOSE: infer_conv(x, n, true, 0); return;
    case QO_OP_AVERAGEPOOL:
    case QO_OP_MAXPOOL:
    case QO_OP_LPPOOL: infer_pool(x, n); return;
    case QO_OP_GLOBALAVERAGEPOOL:
    case QO_OP_GLOBALMAXPOOL:
    case QO_OP_GLOBALLPPOOL: infer_global_pool(x, n); return;
    case QO_OP_GEMM: infer_gemm(x, n); return;
    case QO_OP_MATMUL: infer_matmul(x, n, 0, 0, 1); return;
    case QO_OP_MATMULINTEGER: infer_matmul(x, n, QO_I32, 0, 1); return;
    case QO_OP_QLINEARMATMUL: infer_matmul(x, n, in_elem(x, n, 7), 0, 3); return;
    case QO_OP_REDUCEL1:
    case QO_OP_REDUCEL2:
    case QO_OP_REDUCELOGSUM:
    case QO_OP_REDUCELOGSUMEXP:
    case QO_OP_REDUCEMAX:
    case QO_OP_REDUCEMEAN:
    case QO_OP_REDUCEMIN:
    case QO_OP_REDUCEPROD:
    case QO_OP_REDUCESUM:
    case QO_OP_REDUCESUMSQUARE: infer_reduce(x, n); return;
    case QO_OP_ARGMAX:
    case QO_OP_ARGMIN: infer_argmax(x, n); return;
    case QO_OP_RESHAPE: infer_reshape(x, n); return;
    case QO_OP_FLATTEN: infer_flatten(x, n); return;
    case QO_OP_TRANSPOSE: infer_transpose(x, n); return;
    case QO_OP_SQUEEZE: infer_squeeze(x, n, false); return;
    case QO_OP_UNSQUEEZE: infer_squeeze(x, n, true); return;
    case QO_OP_CONCAT: infer_concat(x, n); return;
    case QO_OP_SPLIT: infer_split(x, n); return;
    case QO_OP_SLICE: infer_slice(x, n); return;
    case QO_OP_GATHER: infer_gather(x, n); return;
    case QO_OP_GATHERELEMENTS: {
        get_shp(x, qo_node_input(g, n, 1), &o);
        o.elem = in_elem(x, n, 0);
        merge_and_set(x, n, 0, &o);
        return;
    }
    case QO_OP_SHAPE: infer_shape_op(x, n); return;
    case QO_OP_SIZE:
        shp_unknown(&o, QO_I64);
        o.rank = 0;
        merge_and_set(x, n, 0, &o);
        return;
    case QO_OP_NONZERO: {
        shp X;
        get_shp(x, qo_node_input(g, n, 0), &X);
        shp_unknown(&o, QO_I64);
        o.rank = 2;
        o.d[0] = X.rank >= 0 ? (dim){X.rank, 0} : UNK;
        o.d[1] = UNK;
        merge_and_set(x, n, 0, &o);
        return;
    }
    case QO_OP_CONSTANTOFSHAPE: infer_const_of_shape(x, n); return;
    case QO_OP_EXPAND: infer_expand(x, n); return;
    case QO_OP_TILE: infer_tile(x, n); return;
    case QO_OP_PAD: infer_pad(x, n); return;
    case QO_OP_RESIZE:
    case QO_OP_UPSAMPLE: infer_resize(x, n); return;
    case QO_OP_TOPK: infer_topk(x, n); return;
    case QO_OP_RANGE: infer_range(x, n); return;
    case QO_OP_DEPTHTOSPACE: infer_depth_space(x, n, true); return;
    case QO_OP_SPACETODEPTH: infer_depth_space(x, n, false); return;
    default: break;
    }
    if (oi->flags & F_EW) {
        bcast_inputs(x, n, 0, nd->nin, &o);
        o.elem = (oi->flags & F_CMP) ? QO_BOOL : in_elem(x, n, 0);
        merge_and_set(x, n, 0, &o);
    }
}

static void infer_graph(si *x) {
    QO_FOR_EACH_NODE(x->g, n) infer_node(x, n);
}

qo_status qo_pass_shape_infer(qo_pass_ctx *pc, qo_graph *g) {
    si x = {.pc = pc, .g = g, .opset = qo_module_opset(g->m, ""), .warn = qo_pass_opt_bool(pc, "warn-conflicts"),
          .record = qo_pass_opt_bool(pc, "value-info")};
    if (!x.opset) x.opset = 21;
    infer_graph(&x);
    if (x.updated) {
        pc->changed = true;
        qo_pass_stat(pc, "types-refined", x.updated);
    }
    if (x.conflicts) qo_pass_stat(pc, "conflicts", x.conflicts);
    return QO_OK;
}
