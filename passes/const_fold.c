/* passes/const_fold.c — constant folding (`const-fold`).
 *
 * Evaluates nodes whose operands are all constants (and Shape/Size of any tensor whose static shape
 * is known) when the result is shape-like (int64, up to 1 MiB) or at most max-bytes: the ops that
 * shape computations and weight preprocessing use (Shape, Gather, Concat, (Un)Squeeze, Reshape,
 * Flatten, Slice, Cast, Add/Sub/Mul/Div, Transpose, ConstantOfShape, Range, Equal/Less/Greater,
 * Where, Identity, Size, Floor/Ceil/Sqrt/Neg/Reciprocal). A folded result becomes an initializer
 * named like the value it replaces (graph outputs keep their names) and the node is erased.
 * Float arithmetic is plain IEEE float32, one rounding per operation, in the order onnxruntime uses
 * (x / y is a division, never x * (1 / y)), so folded values are bit-identical to what it computes. */
#include "passes/pass_impl.h"

#include <math.h>
#include <string.h>

#define MAXR 32
#define SHAPE_LIKE_MAX (1u << 20)

typedef struct tens {
    int elem;
    int rank;
    int64_t dims[MAXR];
    int64_t n;
    size_t esz;               /* bytes per element */
    const unsigned char *p;   /* data (borrowed or == buf) */
    unsigned char *buf;       /* owned storage, or NULL */
} tens;

typedef struct cf {
    qo_pass_ctx *pc;
    qo_graph *g;
    int64_t opset;
    int64_t max_bytes;
    int64_t folded;
} cf;

static size_t esize(int e) {
    int b = qo_elem_bits(e);
    return b >= 8 && e != QO_STR ? (size_t)b / 8 : 0;
}

static void tfree(tens *t) {
    qo_free(t->buf);
    t->buf = NULL;
}

/* Allocates t's storage for elem/rank/dims; false if too big for folding. */
static bool talloc(tens *t, int elem, int rank, const int64_t *dims) {
    t->elem = elem;
    t->rank = rank;
    t->esz = esize(elem);
    t->n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || (dims[i] && t->n > (int64_t)SHAPE_LIKE_MAX / dims[i])) return false;
        t->dims[i] = dims[i];
        t->n *= dims[i];
    }
    if (!t->esz || (size_t)t->n * t->esz > 64u * SHAPE_LIKE_MAX) return false;
    t->buf = qo_calloc((size_t)t->n + 1, t->esz);
    t->p = t->buf;
    return true;
}

/* Loads constant operand v; false if not a constant of a fixed-width element type. */
static bool tload(const cf *c, qo_val v, tens *t) {
    memset(t, 0, sizeof *t);
    const qo_constdata *cd = qo_pass_val_const(c->g, v);
    if (!cd) return false;
    const qo_typedata *td = qo_type_get(c->g->m, cd->type);
    if (!td || td->rank < 0 || td->rank > MAXR || !esize(td->elem)) return false;
    t->elem = td->elem;
    t->rank = td->rank;
    t->esz = esize(td->elem);
    t->n = 1;
    for (int i = 0; i < td->rank; i++) {
        t->dims[i] = td->dims[i];
        t->n *= td->dims[i];
    }
    if ((size_t)t->n * t->esz != cd->nbytes) return false;
    t->p = cd->data;
    return true;
}

static int64_t geti(const tens *t, int64_t i) {
    const unsigned char *q = t->p + (size_t)i * t->esz;
    switch (t->elem) {
    case QO_I64: { int64_t x; memcpy(&x, q, 8); return x; }
    case QO_U64: { uint64_t x; memcpy(&x, q, 8); return (int64_t)x; }
    case QO_I32: { int32_t x; memcpy(&x, q, 4); return x; }
    case QO_U32: { uint32_t x; memcpy(&x, q, 4); return x; }
    case QO_I16: { int16_t x; memcpy(&x, q, 2); return x; }
    case QO_U16: { uint16_t x; memcpy(&x, q, 2); return x; }
    case QO_I8: return (int8_t)*q;
    case QO_U8: case QO_BOOL: return *q;
    default: QO_UNREACHABLE();
    }
}

static bool is_int(int e) {
    return e == QO_I64 || e == QO_U64 || e == QO_I32 || e == QO_U32 || e == QO_I16 || e == QO_U16 ||
           e == QO_I8 || e == QO_U8 || e == QO_BOOL;
}

/* Integer operand as a vector (axes, shapes, indices); -1 if not a constant integer tensor. */
static int ints_of(const cf *c, qo_val v, int64_t *out, int cap) {
    tens t;
    if (!v || !tload(c, v, &t) || !is_int(t.elem) || t.n > cap) return -1;
    for (int64_t i = 0; i < t.n; i++) out[i] = geti(&t, i);
    return (int)t.n;
}

static int attr_ints(const cf *c, qo_node n, const char *name, int64_t *out, int cap) {
    const qo_attr *a = qo_node_attr(c->g, n, name);
    if (!a || a->kind != QO_ATTR_INTS || (int)a->n > cap) return -1;
    for (uint32_t i = 0; i < a->n; i++) out[i] = a->u.is[i];
    return (int)a->n;
}

static bool norm_axis(int64_t *a, int rank) {
    if (*a < 0) *a += rank;
    return *a >= 0 && *a < rank;
}

/* ---- broadcasting iteration ----------------------------------------------------------------- */

/* Computes the broadcast shape of k tensors into out dims; false if incompatible. */
static bool bshape(tens *const *in, int k, int *rank, int64_t *dims) {
    int r = 0;
    for (int i = 0; i < k; i++) r = in[i]->rank > r ? in[i]->rank : r;
    for (int d = 0; d < r; d++) {
        int64_t e = 1;
        for (int i = 0; i < k; i++) {
            int id = d - (r - in[i]->rank);
            int64_t x = id >= 0 ? in[i]->dims[id] : 1;
            if (x == 1) continue;
            if (e != 1 && e != x) return false;
            e = x;
        }
        dims[d] = e;
    }
    *rank = r;
    return true;
}

/* Flat index into tensor t of the output element whose coordinates are `co` (output rank r). */
static int64_t bindex(const tens *t, int r, const int64_t *co) {
    int64_t idx = 0;
    for (int d = 0; d < t->rank; d++) {
        int od = d + (r - t->rank);
        idx = idx * t->dims[d] + (t->dims[d] == 1 ? 0 : co[od]);
    }
    return idx;
}

static void inc(int64_t *co, const int64_t *dims, int r) {
    for (int d = r - 1; d >= 0; d--) {
        if (++co[d] < dims[d]) return;
        co[d] = 0;
    }
}

/* ---- the evaluators: each fills *o or returns false (leave the node) ------------------------ */

static bool f_binary(const cf *c, qo_op op, tens *a, tens *b, tens *o) {
    if (a->elem != b->elem) return false;
    int e = a->elem;
    bool cmp = op == QO_OP_EQUAL || op == QO_OP_LESS || op == QO_OP_GREATER;
    if (!(e == QO_F32 || e == QO_I64 || e == QO_I32 || (cmp && e == QO_BOOL && op == QO_OP_EQUAL))) return false;
    tens *in[2] = {a, b};
    int r;
    int64_t dims[MAXR], co[MAXR] = {0};
    if (!bshape(in, 2, &r, dims) || !talloc(o, cmp ? QO_BOOL : e, r, dims)) return false;
    (void)c;
    for (int64_t i = 0; i < o->n; i++, inc(co, dims, r)) {
        int64_t ia = bindex(a, r, co), ib = bindex(b, r, co);
        if (e == QO_F32) {
            float x, y, z = 0;
            memcpy(&x, a->p + 4 * ia, 4);
            memcpy(&y, b->p + 4 * ib, 4);
            switch (op) {
            case QO_OP_ADD: z = x + y; break;
            case QO_OP_SUB: z = x - y; break;
            case QO_OP_MUL: z = x * y; break;
            case QO_OP_DIV: z = x / y; break;
            case QO_OP_EQUAL: o->buf[i] = x == y; continue;
            case QO_OP_LESS: o->buf[i] = x < y; continue;
            case QO_OP_GREATER: o->buf[i] = x > y; continue;
            default: return false;
            }
            memcpy(o->buf + 4 * i, &z, 4);
        } else {
            int64_t x = geti(a, ia), y = geti(b, ib), z = 0;
            switch (op) {
            case QO_OP_ADD: z = (int64_t)((uint64_t)x + (uint64_t)y); break;
            case QO_OP_SUB: z = (int64_t)((uint64_t)x - (uint64_t)y); break;
            case QO_OP_MUL: z = (int64_t)((uint64_t)x * (uint64_t)y); break;
            case QO_OP_DIV:
                if (y == 0 || (y == -1 && (x == INT64_MIN || (e == QO_I32 && x == INT32_MIN)))) return false;
                z = x / y;
                break;
            case QO_OP_EQUAL: o->buf[i] = x == y; continue;
            case QO_OP_LESS: o->buf[i] = x < y; continue;
            case QO_OP_GREATER: o->buf[i] = x > y; continue;
            default: return false;
            }
            if (e == QO_I64) memcpy(o->buf + 8 * i, &z, 8);
            else {
                int32_t z32 = (int32_t)(uint32_t)(uint64_t)z;
                memcpy(o->buf + 4 * i, &z32, 4);
            }
        }
    }
    return true;
}

static bool f_unary(qo_op op, tens *a, tens *o) {
    if (a->elem == QO_F32) {
        if (!talloc(o, QO_F32, a->rank, a->dims)) return false;
        for (int64_t i = 0; i < a->n; i++) {
            float x, z;
            memcpy(&x, a->p + 4 * i, 4);
            switch (op) {
            case QO_OP_FLOOR: z = floorf(x); break;
            case QO_OP_CEIL: z = ceilf(x); break;
            case QO_OP_SQRT: z = sqrtf(x); break;
            case QO_OP_NEG: z = -x; break;
            case QO_OP_RECIPROCAL: z = 1.0f / x; break;
            default: return false;
            }
            memcpy(o->buf + 4 * i, &z, 4);
        }
        return true;
    }
    if (op == QO_OP_NEG && (a->elem == QO_I64 || a->elem == QO_I32)) {
        if (!talloc(o, a->elem, a->rank, a->dims)) return false;
        for (int64_t i = 0; i < a->n; i++) {
            int64_t z = (int64_t)(0 - (uint64_t)geti(a, i));
            if (a->elem == QO_I64) memcpy(o->buf + 8 * i, &z, 8);
            else {
                int32_t z32 = (int32_t)(uint32_t)(uint64_t)z;
                memcpy(o->buf + 4 * i, &z32, 4);
            }
        }
        return true;
    }
    return false;
}

static bool cast_ok_elem(int e) {
    return e == QO_F32 || e == QO_F64 || e == QO_BOOL || (is_int(e) && e != QO_U64);
}

static bool f_cast(tens *a, int to, tens *o) {
    if (!cast_ok_elem(a->elem) || !cast_ok_elem(to)) return false;
    if (!talloc(o, to, a->rank, a->dims)) return false;
    for (int64_t i = 0; i < a->n; i++) {
        unsigned char *q = o->buf + (size_t)i * o->esz;
        bool fsrc = a->elem == QO_F32 || a->elem == QO_F64;
        double d = 0;
        int64_t v = 0;
        if (a->elem == QO_F32) {
            float f;
            memcpy(&f, a->p + 4 * i, 4);
            d = f;
        } else if (a->elem == QO_F64) {
            memcpy(&d, a->p + 8 * i, 8);
        } else {
            v = geti(a, i);
        }
        if (to == QO_F32) {
            float f = fsrc ? (float)d : (float)v;
            memcpy(q, &f, 4);
            continue;
        }
        if (to == QO_F64) {
            double f = fsrc ? d : (double)v;
            memcpy(q, &f, 8);
            continue;
        }
        if (to == QO_BOOL) {
            *q = fsrc ? d != 0 : v != 0;
            continue;
        }
        if (fsrc) { /* float -> int truncates; out of range or NaN is undefined: leave the node */
            if (!(d > -9.2e18 && d < 9.2e18)) return false;
            v = (int64_t)d;
            if (to != QO_I64) {
                int bits = qo_elem_bits(to);
                bool sgn = to == QO_I32 || to == QO_I16 || to == QO_I8;
                int64_t lo = sgn ? -((int64_t)1 << (bits - 1)) : 0;
                int64_t hi = sgn ? ((int64_t)1 << (bits - 1)) - 1 : ((int64_t)1 << bits) - 1;
                if (v < lo || v > hi) return false;
            }
        }
        /* int -> int wraps (two's complement truncation), as static_cast does */
        uint64_t u = (uint64_t)v;
        memcpy(q, &u, o->esz); /* little-endian: low bytes first */
    }
    return true;
}

static bool f_transpose(const cf *c, qo_node n, tens *a, tens *o) {
    int64_t perm[MAXR], dims[MAXR], co[MAXR] = {0}, st[MAXR];
    int k = attr_ints(c, n, "perm", perm, MAXR);
    if (k < 0) {
        k = a->rank;
        for (int i = 0; i < k; i++) perm[i] = k - 1 - i;
    }
    if (k != a->rank) return false;
    for (int i = 0; i < k; i++) {
        if (perm[i] < 0 || perm[i] >= k) return false;
        dims[i] = a->dims[perm[i]];
    }
    int64_t s = 1;
    for (int i = k - 1; i >= 0; i--) st[i] = s, s *= a->dims[i];
    if (!talloc(o, a->elem, k, dims)) return false;
    for (int64_t i = 0; i < o->n; i++, inc(co, dims, k)) {
        int64_t src = 0;
        for (int d = 0; d < k; d++) src += co[d] * st[perm[d]];
        memcpy(o->buf + (size_t)i * o->esz, a->p + (size_t)src * a->esz, a->esz);
    }
    return true;
}

static bool f_gather(const cf *c, qo_node n, tens *a, tens *idx, tens *o) {
    int64_t ax = qo_attr_int(c->g, n, "axis", 0);
    if (!is_int(idx->elem) || !norm_axis(&ax, a->rank) || a->rank - 1 + idx->rank > MAXR) return false;
    int64_t dims[MAXR];
    int r = 0;
    for (int i = 0; i < ax; i++) dims[r++] = a->dims[i];
    for (int i = 0; i < idx->rank; i++) dims[r++] = idx->dims[i];
    for (int i = (int)ax + 1; i < a->rank; i++) dims[r++] = a->dims[i];
    int64_t outer = 1, inner = 1, D = a->dims[ax];
    for (int i = 0; i < ax; i++) outer *= a->dims[i];
    for (int i = (int)ax + 1; i < a->rank; i++) inner *= a->dims[i];
    if (!talloc(o, a->elem, r, dims)) return false;
    size_t blk = (size_t)inner * a->esz;
    for (int64_t ou = 0; ou < outer; ou++)
        for (int64_t j = 0; j < idx->n; j++) {
            int64_t k = geti(idx, j);
            if (k < 0) k += D;
            if (k < 0 || k >= D) return false;
            memcpy(o->buf + ((size_t)(ou * idx->n + j)) * blk, a->p + ((size_t)(ou * D + k)) * blk, blk);
        }
    return true;
}

static bool f_concat(const cf *c, qo_node n, tens *in, int k, tens *o) {
    int64_t ax = qo_attr_int(c->g, n, "axis", 0);
    if (!k || !norm_axis(&ax, in[0].rank)) return false;
    int64_t dims[MAXR];
    memcpy(dims, in[0].dims, sizeof dims);
    dims[ax] = 0;
    for (int i = 0; i < k; i++) {
        if (in[i].elem != in[0].elem || in[i].rank != in[0].rank) return false;
        for (int d = 0; d < in[0].rank; d++)
            if (d != ax && in[i].dims[d] != in[0].dims[d]) return false;
        dims[ax] += in[i].dims[ax];
    }
    int64_t outer = 1;
    for (int i = 0; i < ax; i++) outer *= dims[i];
    if (!talloc(o, in[0].elem, in[0].rank, dims)) return false;
    unsigned char *q = o->buf;
    for (int64_t ou = 0; ou < outer; ou++)
        for (int i = 0; i < k; i++) {
            size_t blk = in[i].n / (outer ? outer : 1) * in[i].esz;
            if (!outer) break;
            memcpy(q, in[i].p + (size_t)ou * blk, blk);
            q += blk;
        }
    return true;
}

/* Same data, new dims (Reshape, Squeeze, Unsqueeze, Flatten, Identity). */
static bool f_reshape_to(tens *a, int r, const int64_t *dims, tens *o) {
    int64_t k = 1;
    for (int i = 0; i < r; i++) k *= dims[i];
    if (k != a->n || !talloc(o, a->elem, r, dims)) return false;
    memcpy(o->buf, a->p, (size_t)a->n * a->esz);
    return true;
}

static bool f_reshape(const cf *c, qo_node n, tens *a, tens *o) {
    int64_t sh[MAXR];
    int r = ints_of(c, qo_node_input(c->g, n, 1), sh, MAXR);
    if (r < 0) return false;
    bool allowzero = c->opset >= 14 && qo_attr_int(c->g, n, "allowzero", 0);
    int neg = -1;
    int64_t known = 1;
    for (int i = 0; i < r; i++) {
        if (sh[i] == 0 && !allowzero) {
            if (i >= a->rank) return false;
            sh[i] = a->dims[i];
        }
        if (sh[i] == -1) {
            if (neg >= 0) return false;
            neg = i;
            continue;
        }
        if (sh[i] < 0) return false;
        known *= sh[i];
    }
    if (neg >= 0) {
        if (!known || a->n % known) return false;
        sh[neg] = a->n / known;
    }
    return f_reshape_to(a, r, sh, o);
}

static bool f_squeeze(const cf *c, qo_node n, tens *a, tens *o, bool unsq) {
    int64_t axes[MAXR], dims[MAXR];
    int k;
    bool given;
    if (c->opset >= 13) {
        qo_val av = qo_node_input(c->g, n, 1);
        given = av != 0;
        k = av ? ints_of(c, av, axes, MAXR) : 0;
    } else {
        k = attr_ints(c, n, "axes", axes, MAXR);
        given = k >= 0;
    }
    if (k < 0 && given) return false;
    if (k < 0) k = 0;
    if (unsq) {
        int r = a->rank + k;
        bool ins[MAXR] = {0};
        if (!given || r > MAXR) return false;
        for (int i = 0; i < k; i++) {
            if (!norm_axis(&axes[i], r) || ins[axes[i]]) return false;
            ins[axes[i]] = true;
        }
        for (int i = 0, j = 0; i < r; i++) dims[i] = ins[i] ? 1 : a->dims[j++];
        return f_reshape_to(a, r, dims, o);
    }
    bool del[MAXR] = {0};
    for (int i = 0; i < k; i++) {
        if (!norm_axis(&axes[i], a->rank) || a->dims[axes[i]] != 1) return false;
        del[axes[i]] = true;
    }
    if (!given)
        for (int i = 0; i < a->rank; i++) del[i] = a->dims[i] == 1;
    int r = 0;
    for (int i = 0; i < a->rank; i++)
        if (!del[i]) dims[r++] = a->dims[i];
    return f_reshape_to(a, r, dims, o);
}

static bool f_flatten(const cf *c, qo_node n, tens *a, tens *o) {
    int64_t ax = qo_attr_int(c->g, n, "axis", 1);
    if (ax < 0) ax += a->rank;
    if (ax < 0 || ax > a->rank) return false;
    int64_t dims[2] = {1, 1};
    for (int i = 0; i < a->rank; i++) dims[i >= ax] *= a->dims[i];
    return f_reshape_to(a, 2, dims, o);
}

static bool f_slice(const cf *c, qo_node n, tens *a, tens *o) {
    int64_t st[MAXR], en[MAXR], ax[MAXR], sp[MAXR];
    int ns, ne, na, nst;
    if (c->opset < 10) {
        ns = attr_ints(c, n, "starts", st, MAXR);
        ne = attr_ints(c, n, "ends", en, MAXR);
        na = attr_ints(c, n, "axes", ax, MAXR);
        nst = -2;
    } else {
        qo_graph *g = c->g;
        ns = ints_of(c, qo_node_input(g, n, 1), st, MAXR);
        ne = ints_of(c, qo_node_input(g, n, 2), en, MAXR);
        na = qo_node_input(g, n, 3) ? ints_of(c, qo_node_input(g, n, 3), ax, MAXR) : -2;
        nst = qo_node_input(g, n, 4) ? ints_of(c, qo_node_input(g, n, 4), sp, MAXR) : -2;
        if (na == -1 || nst == -1) return false;
    }
    if (ns < 0 || ne != ns) return false;
    if (na < 0) {
        na = ns;
        for (int i = 0; i < na; i++) ax[i] = i;
    }
    if (nst < 0) {
        nst = na;
        for (int i = 0; i < nst; i++) sp[i] = 1;
    }
    if (na != ns || nst != ns) return false;
    int64_t start[MAXR], step[MAXR], dims[MAXR];
    bool seen[MAXR] = {0};
    for (int d = 0; d < a->rank; d++) start[d] = 0, step[d] = 1, dims[d] = a->dims[d];
    for (int i = 0; i < na; i++) {
        int64_t x = ax[i];
        if (!norm_axis(&x, a->rank) || seen[x] || sp[i] == 0) return false;
        seen[x] = true;
        int64_t d = a->dims[x], s = st[i], e = en[i], p = sp[i], len;
        if (s < 0) s += d;
        if (e < 0) e += d;
        if (p > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            len = e > s ? (e - s + p - 1) / p : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            len = s > e ? (s - e + (-p) - 1) / (-p) : 0;
        }
        start[x] = s;
        step[x] = p;
        dims[x] = len;
    }
    int64_t strd[MAXR], sz = 1, co[MAXR] = {0};
    for (int d = a->rank - 1; d >= 0; d--) strd[d] = sz, sz *= a->dims[d];
    if (!talloc(o, a->elem, a->rank, dims)) return false;
    for (int64_t i = 0; i < o->n; i++, inc(co, dims, a->rank)) {
        int64_t src = 0;
        for (int d = 0; d < a->rank; d++) src += (start[d] + co[d] * step[d]) * strd[d];
        memcpy(o->buf + (size_t)i * o->esz, a->p + (size_t)src * a->esz, a->esz);
    }
    return true;
}

static bool f_const_of_shape(const cf *c, qo_node n, tens *o) {
    int64_t sh[MAXR];
    int r = ints_of(c, qo_node_input(c->g, n, 0), sh, MAXR);
    if (r < 0) return false;
    tens v = {0};
    const qo_attr *a = qo_node_attr(c->g, n, "value");
    static const unsigned char zero[8] = {0};
    if (a && a->kind == QO_ATTR_TENSOR && a->u.t) {
        const qo_constdata *cd = qo_const_get(c->g->m, a->u.t);
        v.elem = qo_type_elem(c->g->m, cd->type);
        v.esz = esize(v.elem);
        if (!v.esz || cd->nbytes != v.esz) return false;
        v.p = cd->data;
    } else {
        v.elem = QO_F32;
        v.esz = 4;
        v.p = zero;
    }
    if (!talloc(o, v.elem, r, sh)) return false;
    for (int64_t i = 0; i < o->n; i++) memcpy(o->buf + (size_t)i * o->esz, v.p, v.esz);
    return true;
}

static bool f_range(tens *s, tens *l, tens *d, tens *o) {
    if (s->n != 1 || l->n != 1 || d->n != 1 || s->elem != l->elem || s->elem != d->elem) return false;
    if (s->elem == QO_F32) {
        float a, b, st;
        memcpy(&a, s->p, 4);
        memcpy(&b, l->p, 4);
        memcpy(&st, d->p, 4);
        if (st == 0 || !isfinite(a) || !isfinite(b) || !isfinite(st)) return false;
        double len = ceil((double)(b - a) / (double)st);
        int64_t k = len > 0 ? (int64_t)len : 0;
        if (!talloc(o, QO_F32, 1, &k)) return false;
        float v = a; /* onnxruntime accumulates: v += delta */
        for (int64_t i = 0; i < k; i++, v += st) memcpy(o->buf + 4 * i, &v, 4);
        return true;
    }
    if (s->elem != QO_I64 && s->elem != QO_I32) return false;
    int64_t a = geti(s, 0), b = geti(l, 0), st = geti(d, 0);
    if (st == 0) return false;
    int64_t k = (int64_t)ceil((double)(b - a) / (double)st);
    if (k < 0) k = 0;
    if (!talloc(o, s->elem, 1, &k)) return false;
    for (int64_t i = 0; i < k; i++) {
        int64_t v = a + i * st;
        if (s->elem == QO_I64) memcpy(o->buf + 8 * i, &v, 8);
        else {
            int32_t v32 = (int32_t)v;
            memcpy(o->buf + 4 * i, &v32, 4);
        }
    }
    return true;
}

static bool f_where(tens *cnd, tens *a, tens *b, tens *o) {
    if (cnd->elem != QO_BOOL || a->elem != b->elem) return false;
    tens *in[3] = {cnd, a, b};
    int r;
    int64_t dims[MAXR], co[MAXR] = {0};
    if (!bshape(in, 3, &r, dims) || !talloc(o, a->elem, r, dims)) return false;
    for (int64_t i = 0; i < o->n; i++, inc(co, dims, r)) {
        bool t = cnd->p[bindex(cnd, r, co)] != 0;
        const tens *src = t ? a : b;
        memcpy(o->buf + (size_t)i * o->esz, src->p + (size_t)bindex(src, r, co) * src->esz, o->esz);
    }
    return true;
}

/* Static shape of v's type into dims; -1 unless fully static. */
static int static_shape(const cf *c, qo_val v, int64_t *dims) {
    const qo_typedata *t = qo_type_get(c->g->m, c->g->vals[v].type);
    if (!t || t->kind != QO_TY_TENSOR || t->rank < 0 || t->rank > MAXR) return -1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0) return -1;
        dims[i] = t->dims[i];
    }
    return t->rank;
}

/* ---- driver --------------------------------------------------------------------------------- */

static bool all_inputs_const(const cf *c, qo_node n) {
    const qo_nodedata *nd = &c->g->nodes[n];
    for (uint32_t i = 0; i < nd->nin; i++) {
        qo_val v = c->g->uses[nd->in0 + i].val;
        if (v && !qo_pass_val_const(c->g, v)) return false;
    }
    return true;
}

/* Evaluates n into o; false if it cannot or should not be folded. */
static bool eval(cf *c, qo_node n, tens *o) {
    qo_graph *g = c->g;
    const qo_nodedata *nd = &g->nodes[n];
    qo_op op = (qo_op)nd->op;
    if (nd->nout != 1) return false;
    if (op == QO_OP_SHAPE || op == QO_OP_SIZE) {
        int64_t dims[MAXR];
        int r = static_shape(c, qo_node_input(g, n, 0), dims);
        if (r < 0) return false;
        if (op == QO_OP_SIZE) {
            int64_t k = 1;
            for (int i = 0; i < r; i++) k *= dims[i];
            if (!talloc(o, QO_I64, 0, NULL)) return false;
            memcpy(o->buf, &k, 8);
            return true;
        }
        int64_t s = c->opset >= 15 ? qo_attr_int(g, n, "start", 0) : 0;
        int64_t e = c->opset >= 15 ? qo_attr_int(g, n, "end", r) : r;
        if (s < 0) s += r;
        if (e < 0) e += r;
        s = s < 0 ? 0 : s > r ? r : s;
        e = e < 0 ? 0 : e > r ? r : e;
        int64_t k = e > s ? e - s : 0;
        if (!talloc(o, QO_I64, 1, &k)) return false;
        memcpy(o->buf, dims + s, (size_t)k * 8);
        return true;
    }
    switch (op) {
    case QO_OP_GATHER: case QO_OP_CONCAT: case QO_OP_UNSQUEEZE: case QO_OP_SQUEEZE:
    case QO_OP_RESHAPE: case QO_OP_FLATTEN: case QO_OP_SLICE: case QO_OP_CAST: case QO_OP_ADD:
    case QO_OP_SUB: case QO_OP_MUL: case QO_OP_DIV: case QO_OP_TRANSPOSE: case QO_OP_CONSTANTOFSHAPE:
    case QO_OP_RANGE: case QO_OP_EQUAL: case QO_OP_LESS: case QO_OP_GREATER: case QO_OP_WHERE:
    case QO_OP_IDENTITY: case QO_OP_FLOOR: case QO_OP_CEIL: case QO_OP_SQRT: case QO_OP_NEG:
    case QO_OP_RECIPROCAL:
        break;
    default:
        return false;
    }
    if (!all_inputs_const(c, n) || nd->nin == 0) return false;
    tens in[8];
    uint32_t k = nd->nin < 8 ? nd->nin : 8;
    if (nd->nin > 8 && op != QO_OP_CONCAT) return false;
    if (op == QO_OP_CONCAT && nd->nin > 8) return false;
    for (uint32_t i = 0; i < k; i++) {
        qo_val v = qo_node_input(g, n, i);
        if (!v) {
            memset(&in[i], 0, sizeof in[i]);
            continue;
        }
        if (!tload(c, v, &in[i])) return false;
    }
    switch (op) {
    case QO_OP_IDENTITY: return f_reshape_to(&in[0], in[0].rank, in[0].dims, o);
    case QO_OP_ADD: case QO_OP_SUB: case QO_OP_MUL: case QO_OP_DIV: case QO_OP_EQUAL: case QO_OP_LESS:
    case QO_OP_GREATER:
        return f_binary(c, op, &in[0], &in[1], o);
    case QO_OP_FLOOR: case QO_OP_CEIL: case QO_OP_SQRT: case QO_OP_NEG: case QO_OP_RECIPROCAL:
        return f_unary(op, &in[0], o);
    case QO_OP_CAST: return f_cast(&in[0], (int)qo_attr_int(g, n, "to", 0), o);
    case QO_OP_TRANSPOSE: return f_transpose(c, n, &in[0], o);
    case QO_OP_GATHER: return f_gather(c, n, &in[0], &in[1], o);
    case QO_OP_CONCAT: return f_concat(c, n, in, (int)k, o);
    case QO_OP_RESHAPE: return f_reshape(c, n, &in[0], o);
    case QO_OP_SQUEEZE: return f_squeeze(c, n, &in[0], o, false);
    case QO_OP_UNSQUEEZE: return f_squeeze(c, n, &in[0], o, true);
    case QO_OP_FLATTEN: return f_flatten(c, n, &in[0], o);
    case QO_OP_SLICE: return f_slice(c, n, &in[0], o);
    case QO_OP_CONSTANTOFSHAPE: return f_const_of_shape(c, n, o);
    case QO_OP_RANGE: return f_range(&in[0], &in[1], &in[2], o);
    case QO_OP_WHERE: return f_where(&in[0], &in[1], &in[2], o);
    default: return false;
    }
}

qo_status qo_pass_const_fold(qo_pass_ctx *pc, qo_graph *g) {
    cf c = {.pc = pc, .g = g, .opset = qo_module_opset(g->m, ""), .max_bytes = qo_pass_opt_int(pc, "max-bytes")};
    if (!c.opset) c.opset = 21;
    for (qo_node n = g->first, next; n; n = next) {
        next = g->nodes[n].next;
        qo_val out = qo_node_output(g, n, 0);
        if (!out) continue;
        const qo_typedata *ot = qo_type_get(g->m, g->vals[out].type);
        if (ot && (ot->quant || ot->kind != QO_TY_TENSOR)) continue; /* keep quant annotations on nodes */
        tens o = {0};
        if (!eval(&c, n, &o)) {
            tfree(&o);
            continue;
        }
        size_t bytes = (size_t)o.n * o.esz;
        bool shape_like = o.elem == QO_I64 && bytes <= SHAPE_LIKE_MAX;
        if (!shape_like && (int64_t)bytes > c.max_bytes) {
            tfree(&o);
            continue;
        }
        /* a declared type that disagrees means the model is inconsistent: leave it */
        if (ot && ot->elem != QO_UNDEF && ot->elem != o.elem) {
            tfree(&o);
            continue;
        }
        char *name = qo_strdup(qo_val_name(g, out));
        qo_val nv = qo_pass_add_const(g, name, (qo_elem)o.elem, o.rank, o.dims, o.buf);
        g->vals[nv].doc = g->vals[out].doc;
        g->vals[nv].flags |= g->vals[out].flags & QO_VAL_INFO;
        qo_free(name);
        tfree(&o);
        qo_replace_all_uses(g, out, nv);
        qo_node_erase(g, n);
        c.folded++;
    }
    if (c.folded) {
        pc->changed = true;
        qo_pass_stat(pc, "nodes-folded", c.folded);
    }
    return QO_OK;
}
