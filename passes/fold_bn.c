/* passes/fold_bn.c — BatchNormalization folding (`fold-bn`).
 *
 * An inference BatchNormalization  y = (x - mean) * gamma / sqrt(var + eps) + beta  with constant
 * parameters is rewritten as follows (s = gamma / sqrt(var + eps), per channel c along axis 1):
 *
 *   Conv(X, W[, B])            W'[c,...]   = W[c,...] * s[c]            (grouped, depthwise, any rank)
 *                              B'[c]       = (B[c] - mean[c]) * s[c] + beta[c]   (B = 0 if absent)
 *   ConvTranspose(X, W[, B])   W is (C_in, C_out/group, k...): output channel of W[i,j,...] is
 *                              (i / (C_in/group)) * (C_out/group) + j; B' as for Conv
 *   Gemm(A, B[, C])            B' scaled along its N axis (columns if transB=0, rows if transB=1);
 *                              C'[.., j] = (beta_g * C[.., j] - mean[j]) * s[j] + beta[j] and the
 *                              Gemm's beta becomes 1 (C = 0 if absent; an [M,N]/[M,1] C stays [M,N])
 *   MatMul(A, B) 2-D, B const  B'[:, j] = B[:, j] * s[j], then Add(., beta - mean * s): only when the
 *                              MatMul output is known to be 2-D [N, C] (BN normalizes axis 1)
 *   anything else              Mul(X, s) then Add(., beta - mean * s), constants shaped [C, 1, ...]
 *                              to broadcast over axis 1 (rank from X's or y's type; unknown rank:
 *                              kept, with a note)
 *
 * Folding needs the producer's output to have the BN as its only user (not a graph output, not
 * captured by a nested graph) and its weights/biases to be constants of f32/f64. A BN is left alone
 * when it runs in training mode (training_mode=1 from opset 14; before, any output after Y present,
 * used or not: onnxruntime then runs it in training mode), when spatial=0 (opsets 7-8), is_test=0
 * (opset < 7), or when a parameter is not a constant rank-1 [C] float tensor.
 *
 * Arithmetic: every folded value is computed in double from the exact (widened) parameters, weights
 * and epsilon, and rounded once to the weight's element type (float32 round-to-nearest for f32).
 * The result differs from onnxruntime running the unfolded graph only by float32 rounding of the
 * reassociated products (relative error ~1e-7 per layer; tests/passes/fold_bn_equiv.py measures it).
 *
 * New constants are fresh initializers (weights may be borrowed from a mapped file: never written);
 * names derive from the old ones: "<W>_bnfold", "<B>_bnfold" (or "<W>_bnfold_bias" when a bias is
 * added), "<gamma>_bnfold" / "<beta>_bnfold" for Mul/Add operands, with "_1", "_2"... appended if
 * taken anywhere in the module. The old constants stay for dce. The BN result's uses move to the
 * rewritten value, which takes over the BN result's name, type and value_info flag, so graph output
 * names and captures by nested graphs never change. */
#include "passes/pass_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct fb {
    qo_pass_ctx *pc;
    qo_graph *g;
    int64_t opset;
    bool *captured;          /* names captured by nested graphs, indexed by atom (ncaptured) */
    uint32_t ncaptured;
    bool *taken;             /* names used anywhere in the module, indexed by atom */
    uint32_t captaken;
    int64_t folded, muladd, kept;
} fb;

/* Inference parameters of one BatchNormalization, widened to double. */
typedef struct bnp {
    int64_t C;
    double *gamma, *beta, *mean, *s; /* one allocation (gamma first; freed through it) */
    qo_elem pelem;                   /* element type of the scale constant */
} bnp;

/* ---- small helpers ------------------------------------------------------------------------- */

static bool is_float(int e) { return e == QO_F32 || e == QO_F64; }

static double getd(const void *p, int e, int64_t i) {
    if (e == QO_F64) {
        double d;
        memcpy(&d, (const char *)p + 8 * i, 8);
        return d;
    }
    float f;
    memcpy(&f, (const char *)p + 4 * i, 4);
    return f;
}

static void putd(void *p, int e, int64_t i, double v) {
    if (e == QO_F64) {
        memcpy((char *)p + 8 * i, &v, 8);
        return;
    }
    float f = (float)v; /* one rounding, to nearest */
    memcpy((char *)p + 4 * i, &f, 4);
}

static const qo_typedata *val_type(const qo_graph *g, qo_val v) {
    const qo_typedata *t = v ? qo_type_get(g->m, g->vals[v].type) : NULL;
    return t && t->kind == QO_TY_TENSOR ? t : NULL;
}

/* Constant float operand v as (elem, rank, dims, data); NULL unless static f32/f64 with consistent size. */
static const qo_constdata *float_const(const qo_graph *g, qo_val v, const qo_typedata **td) {
    const qo_constdata *cd = qo_pass_val_const(g, v);
    if (!cd) return NULL;
    const qo_typedata *t = qo_type_get(g->m, cd->type);
    if (!t || t->rank < 0 || !is_float(t->elem)) return NULL;
    int64_t n = qo_type_numel(g->m, cd->type);
    if (n < 0 || qo_elem_storage(t->elem, n) != cd->nbytes) return NULL;
    *td = t;
    return cd;
}

/* Reads a rank-1 constant of exactly C floats (f32/f64/f16/bf16) into out as double. */
static bool read_vec(const qo_graph *g, qo_val v, int64_t C, double *out, qo_elem *elem) {
    const qo_constdata *cd = qo_pass_val_const(g, v);
    if (!cd) return false;
    const qo_typedata *t = qo_type_get(g->m, cd->type);
    if (!t || t->rank != 1 || t->dims[0] != C) return false;
    if (elem) *elem = (qo_elem)t->elem;
    if (t->elem == QO_F64) {
        if (cd->nbytes != 8 * (size_t)C) return false;
        for (int64_t i = 0; i < C; i++) out[i] = getd(cd->data, QO_F64, i);
        return true;
    }
    float *tmp = qo_malloc(sizeof(float) * (size_t)(C ? C : 1));
    bool ok = qo_pass_const_floats(g, v, tmp, C) == C;
    for (int64_t i = 0; ok && i < C; i++) out[i] = tmp[i];
    qo_free(tmp);
    return ok;
}

static void mark_taken(fb *c, qo_atom a) {
    if (a >= c->captaken) QO_GROW(c->taken, c->captaken, a + 1);
    c->taken[a] = true;
}

static bool is_taken(const fb *c, qo_atom a) { return a < c->captaken && c->taken[a]; }

/* A name "<base><suffix>" (then "_1", "_2", ...) free in the whole module; "" if base is empty. */
static char *fresh_name(fb *c, const char *base, const char *suffix) {
    if (!base || !base[0]) return qo_strdup("");
    size_t n = strlen(base) + strlen(suffix) + 24;
    char *s = qo_malloc(n);
    snprintf(s, n, "%s%s", base, suffix);
    for (int k = 1; is_taken(c, qo_intern(c->g->m, s)); k++) snprintf(s, n, "%s%s_%d", base, suffix, k);
    mark_taken(c, qo_intern(c->g->m, s));
    return s;
}

/* Adds an initializer named fresh_name(base, suffix) holding data. */
static qo_val new_const(fb *c, const char *base, const char *suffix, qo_elem e, int32_t rank,
                        const int64_t *dims, const void *data) {
    char *nm = fresh_name(c, base, suffix);
    qo_val v = qo_pass_add_const(c->g, nm, e, rank, dims, data);
    qo_free(nm);
    return v;
}

static bool captured(const fb *c, qo_val v) {
    qo_atom a = c->g->vals[v].name;
    return a && a < c->ncaptured && c->captured[a];
}

/* Moves every use of the BN result to z, erases the BN node and gives z the BN result's name (when
 * it has one), type (when known) and value_info flag. */
static void take_over(fb *c, qo_node bn, qo_val z) {
    qo_graph *g = c->g;
    qo_val y = qo_node_output(g, bn, 0);
    qo_value yd = g->vals[y];
    char *nm = qo_strdup(qo_val_name(g, y));
    qo_replace_all_uses(g, y, z);
    qo_val_set_name(g, y, "");
    qo_node_erase(g, bn);
    if (nm[0]) qo_val_set_name(g, z, nm);
    qo_free(nm);
    if (yd.type) g->vals[z].type = yd.type;
    g->vals[z].flags |= yd.flags & QO_VAL_INFO;
    if (yd.doc) g->vals[z].doc = yd.doc;
}

/* ---- BatchNormalization parameters ---------------------------------------------------------- */

/* Fills p for an inference-mode BN with constant parameters; false (p untouched) otherwise. */
static bool bn_params(const fb *c, qo_node bn, bnp *p) {
    const qo_graph *g = c->g;
    const qo_nodedata *nd = &g->nodes[bn];
    if (nd->nin < 5 || !qo_node_input(g, bn, 0) || !qo_node_output(g, bn, 0)) return false;
    /* any statistics output present means training mode (opsets < 14 decide by output count) */
    for (uint32_t i = 1; i < nd->nout; i++)
        if (qo_node_output(g, bn, i)) return false;
    if (c->opset >= 14 && qo_attr_int(g, bn, "training_mode", 0) != 0) return false;
    if (c->opset < 9 && qo_attr_int(g, bn, "spatial", 1) == 0) return false; /* per-element stats */
    if (c->opset < 7 && qo_attr_int(g, bn, "is_test", 0) == 0) return false;
    const qo_constdata *sc = qo_pass_val_const(g, qo_node_input(g, bn, 1));
    if (!sc) return false;
    const qo_typedata *st = qo_type_get(g->m, sc->type);
    if (!st || st->rank != 1 || st->dims[0] < 1) return false;
    int64_t C = st->dims[0];
    /* gamma, beta, mean, s, var */
    double *buf = qo_malloc(sizeof(double) * 5 * (size_t)C);
    double *sv = buf + 3 * C, *var = buf + 4 * C;
    qo_elem pe = QO_UNDEF;
    bool ok = read_vec(g, qo_node_input(g, bn, 1), C, buf, &pe) &&
              read_vec(g, qo_node_input(g, bn, 2), C, buf + C, NULL) &&
              read_vec(g, qo_node_input(g, bn, 3), C, buf + 2 * C, NULL) &&
              read_vec(g, qo_node_input(g, bn, 4), C, var, NULL);
    /* epsilon is a float attribute: its exact value, widened */
    double eps = (double)qo_attr_float(g, bn, "epsilon", 1e-5f);
    for (int64_t i = 0; ok && i < C; i++) {
        sv[i] = buf[i] / sqrt(var[i] + eps);
        ok = isfinite(sv[i]);
    }
    if (!ok) {
        qo_free(buf);
        return false;
    }
    *p = (bnp){.C = C, .gamma = buf, .beta = buf + C, .mean = buf + 2 * C, .s = sv, .pelem = pe};
    return true;
}

/* ---- folding into the producer -------------------------------------------------------------- */

/* How a weight element maps to its output channel. */
typedef enum { L_ROWS, L_COLS, L_CONVT } layout;
typedef struct wmap {
    layout kind;
    int64_t inner;  /* L_ROWS: elements per channel row; L_CONVT: elements per (i, j) kernel */
    int64_t ncols;  /* L_COLS: row length (channels are columns) */
    int64_t cg;     /* L_CONVT: output channels per group (W dim 1) */
    int64_t cin_g;  /* L_CONVT: input channels per group */
} wmap;

static int64_t chan_of(const wmap *w, int64_t idx) {
    switch (w->kind) {
    case L_ROWS: return idx / w->inner;
    case L_COLS: return idx % w->ncols;
    case L_CONVT: {
        int64_t ij = idx / w->inner, i = ij / w->cg, j = ij % w->cg;
        return (i / w->cin_g) * w->cg + j;
    }
    }
    QO_UNREACHABLE();
}

/* A copy of weight constant wv with each element scaled by s[channel]; input slot `slot` of node p
 * reads it afterwards. */
static void scale_weight(fb *c, qo_node p, uint32_t slot, const qo_constdata *cd, const qo_typedata *t,
                         const wmap *w, const double *s) {
    qo_graph *g = c->g;
    qo_val wv = qo_node_input(g, p, slot);
    int64_t n = qo_type_numel(g->m, cd->type);
    void *buf = qo_malloc(cd->nbytes ? cd->nbytes : 1);
    for (int64_t i = 0; i < n; i++) putd(buf, t->elem, i, getd(cd->data, t->elem, i) * s[chan_of(w, i)]);
    char *base = qo_strdup(qo_val_name(g, wv));
    qo_val nv = new_const(c, base, "_bnfold", (qo_elem)t->elem, t->rank, t->dims, buf);
    qo_free(base);
    qo_free(buf);
    qo_set_input(g, qo_node_use(g, p, slot), nv);
}

/* New bias (b - mean) * s + beta of length C in elem e (b = 0 when bv is 0), into input `slot` of p. */
static void set_bias(fb *c, qo_node p, uint32_t slot, qo_val bv, const double *b, const bnp *bp, qo_elem e,
                     const char *wname) {
    qo_graph *g = c->g;
    void *buf = qo_malloc(8 * (size_t)bp->C);
    for (int64_t i = 0; i < bp->C; i++) putd(buf, e, i, ((bv ? b[i] : 0.0) - bp->mean[i]) * bp->s[i] + bp->beta[i]);
    char *base = qo_strdup(bv ? qo_val_name(g, bv) : wname);
    qo_val nv = new_const(c, base, bv ? "_bnfold" : "_bnfold_bias", e, 1, &bp->C, buf);
    qo_free(base);
    qo_free(buf);
    if (g->nodes[p].nin <= slot) qo_node_set_num_inputs(g, p, slot + 1);
    qo_set_input(g, qo_node_use(g, p, slot), nv);
}

/* Conv / ConvTranspose: weight and optional bias constants. */
static bool fold_conv(fb *c, qo_node bn, qo_node p, const bnp *bp, bool transpose) {
    qo_graph *g = c->g;
    const qo_typedata *wt, *bt;
    const qo_constdata *wc = float_const(g, qo_node_input(g, p, 1), &wt);
    if (!wc || wt->rank < 3) return false; /* weights not a constant (e.g. a Quant node): not here */
    wmap w = {.kind = L_ROWS};
    int64_t k = 1;
    for (int i = 2; i < wt->rank; i++) k *= wt->dims[i];
    if (!transpose) {
        if (wt->dims[0] != bp->C) return false;
        w.inner = wt->dims[1] * k;
    } else {
        int64_t grp = qo_attr_int(g, p, "group", 1);
        if (grp < 1 || wt->dims[0] % grp || wt->dims[1] * grp != bp->C) return false;
        w = (wmap){.kind = L_CONVT, .inner = k, .cg = wt->dims[1], .cin_g = wt->dims[0] / grp};
    }
    qo_val bv = g->nodes[p].nin > 2 ? qo_node_input(g, p, 2) : 0;
    double *b = NULL;
    if (bv) {
        const qo_constdata *bc = float_const(g, bv, &bt);
        if (!bc || bt->elem != wt->elem || bt->rank != 1 || bt->dims[0] != bp->C) return false;
        b = qo_malloc(sizeof(double) * (size_t)bp->C);
        for (int64_t i = 0; i < bp->C; i++) b[i] = getd(bc->data, bt->elem, i);
    }
    char *wname = qo_strdup(qo_val_name(g, qo_node_input(g, p, 1)));
    scale_weight(c, p, 1, wc, wt, &w, bp->s);
    set_bias(c, p, 2, bv, b, bp, (qo_elem)wt->elem, wname);
    qo_free(wname);
    qo_free(b);
    take_over(c, bn, qo_node_output(g, p, 0));
    return true;
}

/* Gemm: B scaled along N, C rewritten, beta set to 1. */
static bool fold_gemm(fb *c, qo_node bn, qo_node p, const bnp *bp) {
    qo_graph *g = c->g;
    if (c->opset < 7) return false; /* legacy `broadcast` attribute semantics */
    const qo_typedata *bt, *ct = NULL;
    qo_val bv = qo_node_input(g, p, 1);
    const qo_constdata *bc = float_const(g, bv, &bt);
    if (!bc || bt->rank != 2) return false;
    bool transb = qo_attr_int(g, p, "transB", 0) != 0;
    int64_t N = transb ? bt->dims[0] : bt->dims[1], K = transb ? bt->dims[1] : bt->dims[0];
    if (N != bp->C) return false;
    qo_val cv = g->nodes[p].nin > 2 ? qo_node_input(g, p, 2) : 0;
    const qo_constdata *cc = NULL;
    int64_t M = 1; /* rows of the new C */
    if (cv) {
        cc = float_const(g, cv, &ct);
        if (!cc || ct->elem != bt->elem || ct->rank > 2) return false;
        int64_t cr = ct->rank == 2 ? ct->dims[0] : 1, cn = ct->rank >= 1 ? ct->dims[ct->rank - 1] : 1;
        if (cn != 1 && cn != N) return false;
        M = cr;
    }
    double beta_g = qo_attr_float(g, p, "beta", 1.0f);
    /* C'[m, j] = (beta_g * C[m, j] - mean[j]) * s[j] + beta[j] */
    int64_t nc = M * N;
    void *buf = qo_malloc(8 * (size_t)nc);
    for (int64_t m = 0; m < M; m++)
        for (int64_t j = 0; j < N; j++) {
            double x = 0;
            if (cc) {
                int64_t cn = ct->rank >= 1 ? ct->dims[ct->rank - 1] : 1;
                x = beta_g * getd(cc->data, ct->elem, m * cn + (cn == 1 ? 0 : j));
            }
            putd(buf, bt->elem, m * N + j, (x - bp->mean[j]) * bp->s[j] + bp->beta[j]);
        }
    wmap w = transb ? (wmap){.kind = L_ROWS, .inner = K} : (wmap){.kind = L_COLS, .ncols = N};
    char *bname = qo_strdup(qo_val_name(g, bv));
    scale_weight(c, p, 1, bc, bt, &w, bp->s);
    int64_t cd[2] = {M, N};
    char *cname = qo_strdup(cv ? qo_val_name(g, cv) : "");
    qo_val nv = cv ? new_const(c, cname, "_bnfold", (qo_elem)bt->elem, M > 1 ? 2 : 1, M > 1 ? cd : cd + 1, buf)
                   : new_const(c, bname, "_bnfold_bias", (qo_elem)bt->elem, 1, &N, buf);
    qo_free(cname);
    qo_free(bname);
    qo_free(buf);
    if (g->nodes[p].nin < 3) qo_node_set_num_inputs(g, p, 3);
    qo_set_input(g, qo_node_use(g, p, 2), nv);
    if (beta_g != 1.0) qo_node_set_attr_float(g, p, "beta", 1.0f);
    take_over(c, bn, qo_node_output(g, p, 0));
    return true;
}

/* Rank of the BN input (from its type or the BN result's), -1 if unknown. */
static int32_t bn_rank(const fb *c, qo_node bn) {
    const qo_typedata *t = val_type(c->g, qo_node_input(c->g, bn, 0));
    if (t && t->rank >= 0) return t->rank;
    t = val_type(c->g, qo_node_output(c->g, bn, 0));
    return t ? t->rank : -1;
}

/* Inserts Add(x, beta - mean * s) right before the BN; returns the Add's result. */
static qo_val add_shift(fb *c, qo_node bn, qo_val x, const bnp *bp, qo_elem e, int32_t rank, const int64_t *dims) {
    qo_graph *g = c->g;
    void *buf = qo_malloc(8 * (size_t)bp->C);
    for (int64_t i = 0; i < bp->C; i++) putd(buf, e, i, bp->beta[i] - bp->mean[i] * bp->s[i]);
    char *base = qo_strdup(qo_val_name(g, qo_node_input(g, bn, 2)));
    qo_val sh = new_const(c, base, "_bnfold", e, rank, dims, buf);
    qo_free(base);
    qo_free(buf);
    qo_node saved = g->insert_before;
    g->insert_before = bn;
    qo_val ins[2] = {x, sh};
    qo_node add = qo_node_new(g, QO_OP_ADD, NULL, NULL, 2, ins, 1);
    g->insert_before = saved;
    const char *bname = qo_node_name(g, bn);
    if (bname[0]) {
        char *nm = qo_malloc(strlen(bname) + 8);
        sprintf(nm, "%s_add", bname);
        qo_node_set_name(g, add, nm);
        qo_free(nm);
    }
    return qo_node_output(g, add, 0);
}

/* MatMul(A, B) with a constant 2-D B and a 2-D result: B scaled by column, then Add. */
static bool fold_matmul(fb *c, qo_node bn, qo_node p, const bnp *bp) {
    qo_graph *g = c->g;
    if (c->opset < 7 || bn_rank(c, bn) != 2) return false; /* axis 1 must be the feature axis */
    const qo_typedata *bt;
    const qo_constdata *bc = float_const(g, qo_node_input(g, p, 1), &bt);
    if (!bc || bt->rank != 2 || bt->dims[1] != bp->C) return false;
    wmap w = {.kind = L_COLS, .ncols = bp->C};
    scale_weight(c, p, 1, bc, bt, &w, bp->s);
    qo_val z = add_shift(c, bn, qo_node_output(g, p, 0), bp, (qo_elem)bt->elem, 1, &bp->C);
    take_over(c, bn, z);
    return true;
}

/* Folds bn into the node producing its input, if that is possible. */
static bool fold_into_producer(fb *c, qo_node bn, const bnp *bp) {
    qo_graph *g = c->g;
    qo_val x = qo_node_input(g, bn, 0);
    const qo_value *xd = &g->vals[x];
    /* the producer's result must feed this BN only (no other user, not a graph output, not captured) */
    if (!xd->def || xd->res != 0 || xd->nuses != 1 || captured(c, x)) return false;
    qo_node p = xd->def;
    const qo_nodedata *pd = &g->nodes[p];
    if (pd->nout != 1 || pd->nin < 2) return false;
    const qo_typedata *yt = val_type(g, x);
    if (yt && yt->quant) return false;
    if (yt && yt->rank >= 2 && yt->dims[1] >= 0 && yt->dims[1] != bp->C) return false; /* inconsistent */
    switch ((qo_op)pd->op) {
    case QO_OP_CONV: return fold_conv(c, bn, p, bp, false);
    case QO_OP_CONVTRANSPOSE: return fold_conv(c, bn, p, bp, true);
    case QO_OP_GEMM: return fold_gemm(c, bn, p, bp);
    case QO_OP_MATMUL: return fold_matmul(c, bn, p, bp);
    default: return false;
    }
}

/* ---- Mul + Add ------------------------------------------------------------------------------ */

static bool to_mul_add(fb *c, qo_node bn, const bnp *bp) {
    qo_graph *g = c->g;
    qo_loc loc = qo_node_loc(g, bn);
    if (c->opset < 7) return false; /* Mul/Add need the `broadcast` attribute before opset 7 */
    int32_t rank = bn_rank(c, bn);
    if (rank < 0) {
        qo_note(c->pc->cx, &loc, "fold-bn: BatchNormalization kept: the rank of its input is unknown (run shape-infer first)");
        return false;
    }
    if (rank < 2) return false;
    qo_val x = qo_node_input(g, bn, 0), y = qo_node_output(g, bn, 0);
    const qo_typedata *xt = val_type(g, x), *yt = val_type(g, y);
    qo_elem e = xt && xt->elem ? (qo_elem)xt->elem : yt && yt->elem ? (qo_elem)yt->elem : QO_UNDEF;
    if (e == QO_UNDEF && c->opset < 15) e = bp->pelem; /* X and the parameters share T before 15 */
    if (!is_float(e)) {
        qo_note(c->pc->cx, &loc, "fold-bn: BatchNormalization kept: Mul/Add constants need an f32 or f64 input (have %s)",
                e ? qo_elem_name(e) : "unknown");
        return false;
    }
    int64_t dims[64];
    if (rank > 64) return false;
    dims[0] = bp->C;
    for (int i = 1; i < rank - 1; i++) dims[i] = 1;
    void *buf = qo_malloc(8 * (size_t)bp->C);
    for (int64_t i = 0; i < bp->C; i++) putd(buf, e, i, bp->s[i]);
    char *base = qo_strdup(qo_val_name(g, qo_node_input(g, bn, 1)));
    qo_val sc = new_const(c, base, "_bnfold", e, rank - 1, dims, buf);
    qo_free(base);
    qo_free(buf);
    qo_node saved = g->insert_before;
    g->insert_before = bn;
    qo_val ins[2] = {x, sc};
    qo_node mul = qo_node_new(g, QO_OP_MUL, NULL, NULL, 2, ins, 1);
    g->insert_before = saved;
    const char *bname = qo_node_name(g, bn);
    if (bname[0]) {
        char *nm = qo_malloc(strlen(bname) + 8);
        sprintf(nm, "%s_mul", bname);
        qo_node_set_name(g, mul, nm);
        qo_free(nm);
    }
    qo_val mv = qo_node_output(g, mul, 0);
    g->vals[mv].type = g->vals[x].type ? g->vals[x].type : g->vals[y].type;
    qo_val z = add_shift(c, bn, mv, bp, e, rank - 1, dims);
    take_over(c, bn, z);
    return true;
}

/* ---- driver --------------------------------------------------------------------------------- */

qo_status qo_pass_fold_bn(qo_pass_ctx *pc, qo_graph *g) {
    qo_module *m = g->m;
    fb c = {.pc = pc, .g = g, .opset = qo_module_opset(m, "")};
    if (!c.opset) c.opset = 21;
    bool any = false;
    QO_FOR_EACH_NODE(g, n) any |= g->nodes[n].op == QO_OP_BATCHNORMALIZATION;
    if (!any) return QO_OK;
    c.captured = qo_pass_captured_names(g);
    c.ncaptured = m->natoms;
    /* every name in the module is taken: new initializers must not collide with or be shadowed by any */
    for (uint32_t gi = 0; gi < m->ngraphs; gi++) {
        const qo_graph *h = m->graphs[gi];
        for (qo_val v = 1; v < h->nvals; v++)
            if (h->vals[v].name && !(h->vals[v].flags & QO_VAL_DEAD)) mark_taken(&c, h->vals[v].name);
    }
    for (qo_node n = g->first, next; n; n = next) {
        next = g->nodes[n].next;
        if (g->nodes[n].op != QO_OP_BATCHNORMALIZATION) continue;
        bnp bp;
        if (!bn_params(&c, n, &bp)) { /* training mode or non-constant parameters */
            c.kept++;
            continue;
        }
        if (fold_into_producer(&c, n, &bp)) c.folded++;
        else if (to_mul_add(&c, n, &bp)) c.muladd++;
        else c.kept++;
        qo_free(bp.gamma);
    }
    qo_free(c.captured);
    qo_free(c.taken);
    if (c.folded) qo_pass_stat(pc, "bn-folded", c.folded);
    if (c.muladd) qo_pass_stat(pc, "bn-to-mul-add", c.muladd);
    if (c.kept) qo_pass_stat(pc, "bn-kept", c.kept);
    if (c.folded || c.muladd) pc->changed = true;
    return QO_OK;
}
