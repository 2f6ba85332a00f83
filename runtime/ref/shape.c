/* runtime/ref/shape.c — reference kernels for data-movement and shape ops.
 *
 * Most kernels here are type-generic: they move elements as opaque byte groups of
 * qo_rt_elem_size(elem) bytes, so every element type except strings works. Arithmetic is only
 * needed by Range, Resize/Upsample (linear, cubic), CumSum, OneHot/EyeLike/ConstantOfShape value
 * conversion and the scatter reductions; those go through the numeric load/store helpers below.
 *
 * Every form a model at opset 7..21 can use is accepted: attribute vs input forms (Reshape < 5,
 * Squeeze/Unsqueeze/Split < 13, Slice < 10, Pad < 11, Upsample 7 vs 9), Split num_outputs (18),
 * Pad axes (18) and wrap (19), Shape start/end (15), Resize axes/keep_aspect_ratio_policy (18). */
#include "runtime/ref/ref.h"
#include "runtime/ref/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */
#define SC_MAX (2 * QO_MAX_RANK) /* rank bound of the strided-copy helper (Tile doubles the rank) */

#define BAD(...) qo_kerr(k, QO_ERR_INVALID_MODEL, __VA_ARGS__)
#define UNSUP(...) qo_kerr(k, QO_ERR_UNSUPPORTED, __VA_ARGS__)

static int64_t prod(const int64_t *d, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

static void strides_of(const qo_tensor *t, int64_t *s) {
    int64_t acc = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        s[i] = acc;
        acc *= t->dims[i];
    }
}

/* Element size of t, reporting string/unknown element types as unsupported. */
static qo_status esize(qo_kctx *k, const qo_tensor *t, size_t *out) {
    size_t s = qo_rt_elem_size(t->elem);
    if (!s) {
        const char *nm = qo_elem_name(t->elem);
        return UNSUP("element type %s is not supported", nm ? nm : "?");
    }
    *out = s;
    return QO_OK;
}

/* Copies rank-`rank` box `dims` from src (element strides str, element offset off) to dense dst. */
static void strided_copy(uint8_t *dst, const uint8_t *src, size_t esz, int rank, const int64_t *dims,
                         const int64_t *str, int64_t off) {
    int64_t n = prod(dims, 0, rank);
    if (n <= 0) return;
    int64_t idx[SC_MAX] = {0};
    int64_t pos = off;
    for (int64_t i = 0; i < n; i++) {
        memcpy(dst + (size_t)i * esz, src + (size_t)pos * esz, esz);
        for (int d = rank - 1; d >= 0; d--) {
            if (++idx[d] < dims[d]) {
                pos += str[d];
                break;
            }
            pos -= str[d] * (dims[d] - 1);
            idx[d] = 0;
        }
    }
}

static const qo_attr *attr(qo_kctx *k, const char *name) { return qo_node_attr(k->g, k->n, name); }
static int64_t iattr(qo_kctx *k, const char *name, int64_t dflt) { return qo_attr_int(k->g, k->n, name, dflt); }
static float fattr(qo_kctx *k, const char *name, float dflt) { return qo_attr_float(k->g, k->n, name, dflt); }

/* Integer list attribute: *n = -1 when absent. */
static const int64_t *iattrs(qo_kctx *k, const char *name, int64_t *n) {
    const qo_attr *a = attr(k, name);
    if (!a || a->kind != QO_ATTR_INTS) {
        *n = -1;
        return NULL;
    }
    *n = a->n;
    return a->u.is;
}

/* String attribute copied into buf (NUL-terminated); dflt when absent. */
static const char *sattr(qo_kctx *k, const char *name, const char *dflt, char *buf, size_t cap) {
    const qo_attr *a = attr(k, name);
    if (!a || a->kind != QO_ATTR_STRING) return dflt;
    size_t n = a->u.s.n < cap - 1 ? a->u.s.n : cap - 1;
    memcpy(buf, a->u.s.p, n);
    buf[n] = 0;
    return buf;
}

/* Integer vector from an int32/int64 (or any integer) tensor, malloc'd into *out (caller frees). */
static qo_status tensor_ints(qo_kctx *k, const qo_tensor *t, const char *what, int64_t **out, int64_t *n);

/* ---- numeric load/store (over util.h) -------------------------------------------------------- */
static bool is_float_elem(int e) { return qo_elem_is_float(e); }
static bool is_num_elem(int e) { return qo_elem_is_float(e) || qo_elem_is_int(e) || e == QO_BOOL; }
/* Loads go through an aligned copy: constant-backed tensors may point into an unaligned mapping. */
typedef union { uint64_t u; double d; uint8_t b[8]; } elem_buf;
static double ld(int e, const void *p) {
    elem_buf b;
    memcpy(b.b, p, qo_rt_elem_size(e));
    return qo_load_f64(b.b, e, 0);
}
static int64_t ldi(int e, const void *p) {
    elem_buf b;
    memcpy(b.b, p, qo_rt_elem_size(e));
    return qo_load_i64(b.b, e, 0);
}
static void st(int e, void *p, double v) {
    if (qo_elem_is_float(e)) qo_store_f64(p, e, 0, v);
    else if (e == QO_BOOL) qo_store_i64(p, e, 0, v != 0);
    else qo_store_i64(p, e, 0, (int64_t)v);
}
static void sti(int e, void *p, int64_t v) {
    if (qo_elem_is_float(e)) qo_store_f64(p, e, 0, (double)v);
    else qo_store_i64(p, e, 0, v);
}

static qo_status tensor_ints(qo_kctx *k, const qo_tensor *t, const char *what, int64_t **out, int64_t *n) {
    if (!t) return BAD("missing input '%s'", what);
    if (is_float_elem(t->elem) || !is_num_elem(t->elem) || t->elem == QO_BOOL)
        return BAD("input '%s' must be an integer tensor", what);
    int64_t cnt = qo_tensor_numel(t);
    size_t es = qo_rt_elem_size(t->elem);
    int64_t *v = qo_malloc(sizeof(int64_t) * (size_t)(cnt ? cnt : 1));
    for (int64_t i = 0; i < cnt; i++) v[i] = ldi(t->elem, (const uint8_t *)t->data + (size_t)i * es);
    *out = v;
    *n = cnt;
    return QO_OK;
}

/* Allocates out with x's element type and the given shape, then copies x's bytes (same numel). */
static qo_status copy_reshaped(qo_kctx *k, const qo_tensor *x, qo_tensor *out, int rank, const int64_t *dims) {
    if (rank > QO_MAX_RANK) return UNSUP("output rank %d exceeds %d", rank, QO_MAX_RANK);
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, rank, dims));
    if (out->nbytes != x->nbytes)
        return BAD("output shape holds %zu bytes, input %zu", out->nbytes, x->nbytes);
    if (x->nbytes) memcpy(out->data, x->data, x->nbytes);
    return QO_OK;
}

/* Normalises axis a of a rank-r tensor (negative counts from the end). */
static qo_status norm_axis(qo_kctx *k, int64_t *a, int64_t r, const char *what) {
    int64_t v = *a < 0 ? *a + r : *a;
    if (v < 0 || v >= r) return BAD("%s %lld is out of range for rank %lld", what, (long long)*a, (long long)r);
    *a = v;
    return QO_OK;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity ------------------------------------------- */
static qo_status k_reshape(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    int64_t *shp = NULL, n;
    if (k->opset < 5) {
        const int64_t *a = iattrs(k, "shape", &n);
        if (n < 0) return BAD("missing attribute 'shape'");
        shp = qo_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        memcpy(shp, a, sizeof(int64_t) * (size_t)n);
    } else {
        QO_TRY(tensor_ints(k, nin > 1 ? in[1] : NULL, "shape", &shp, &n));
    }
    qo_status s = QO_OK;
    int64_t dims[QO_MAX_RANK];
    int allowzero = (int)iattr(k, "allowzero", 0);
    int infer = -1;
    int64_t known = 1;
    if (n > QO_MAX_RANK) {
        s = UNSUP("reshape to rank %lld exceeds %d", (long long)n, QO_MAX_RANK);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        int64_t v = shp[i];
        if (v == 0 && !allowzero) {
            if (i >= x->rank) {
                s = BAD("shape[%d] = 0 copies a dimension the rank-%d input does not have", i, x->rank);
                goto done;
            }
            v = x->dims[i];
        } else if (v == -1) {
            if (infer >= 0) {
                s = BAD("shape has more than one -1");
                goto done;
            }
            infer = i;
            continue;
        } else if (v < 0) {
            s = BAD("shape[%d] = %lld is negative", i, (long long)v);
            goto done;
        }
        dims[i] = v;
        known *= v;
    }
    if (infer >= 0) {
        int64_t total = qo_tensor_numel(x);
        if (known == 0 || total % known) {
            s = BAD("cannot infer the -1 dimension: %lld elements do not divide by %lld", (long long)total,
                    (long long)known);
            goto done;
        }
        dims[infer] = total / known;
    }
    s = copy_reshaped(k, x, out, (int)n, dims);
done:
    qo_free(shp);
    return s;
}

static qo_status k_flatten(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    int64_t axis = iattr(k, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank) return BAD("axis %lld is out of range for rank %d", (long long)iattr(k, "axis", 1), x->rank);
    int64_t dims[2] = {prod(x->dims, 0, (int)axis), prod(x->dims, (int)axis, x->rank)};
    return copy_reshaped(k, x, out, 2, dims);
}

static qo_status k_identity(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    return copy_reshaped(k, in[0], out, in[0]->rank, in[0]->dims);
}

/* Axes from the attribute (opset < since) or input 1 (opset >= since); *n = -1 if absent. */
static qo_status get_axes(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, int64_t since, uint32_t slot,
                          int64_t **axes, int64_t *n) {
    *axes = NULL;
    *n = -1;
    if (k->opset < since) {
        const int64_t *a = iattrs(k, "axes", n);
        if (*n >= 0) {
            *axes = qo_malloc(sizeof(int64_t) * (size_t)(*n ? *n : 1));
            memcpy(*axes, a, sizeof(int64_t) * (size_t)*n);
        }
        return QO_OK;
    }
    if (nin > slot && in[slot]) return tensor_ints(k, in[slot], "axes", axes, n);
    return QO_OK;
}

static qo_status k_squeeze(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    int64_t *axes, n;
    QO_TRY(get_axes(k, in, nin, 13, 1, &axes, &n));
    bool drop[QO_MAX_RANK] = {false};
    qo_status s = QO_OK;
    if (n < 0) {
        for (int i = 0; i < x->rank; i++) drop[i] = x->dims[i] == 1;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t a = axes[i];
        if ((s = norm_axis(k, &a, x->rank, "axis")) != QO_OK) goto done;
        if (x->dims[a] != 1) {
            s = BAD("cannot squeeze axis %lld of extent %lld", (long long)axes[i], (long long)x->dims[a]);
            goto done;
        }
        drop[a] = true;
    }
    int64_t dims[QO_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!drop[i]) dims[r++] = x->dims[i];
    s = copy_reshaped(k, x, out, r, dims);
done:
    qo_free(axes);
    return s;
}

static qo_status k_unsqueeze(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    int64_t *axes, n;
    QO_TRY(get_axes(k, in, nin, 13, 1, &axes, &n));
    qo_status s = QO_OK;
    if (n < 0) {
        s = BAD("missing axes");
        goto done;
    }
    int64_t r = x->rank + n;
    if (r > QO_MAX_RANK) {
        s = UNSUP("output rank %lld exceeds %d", (long long)r, QO_MAX_RANK);
        goto done;
    }
    bool ins[QO_MAX_RANK] = {false};
    for (int64_t i = 0; i < n; i++) {
        int64_t a = axes[i];
        if ((s = norm_axis(k, &a, r, "axis")) != QO_OK) goto done;
        if (ins[a]) {
            s = BAD("axis %lld repeated", (long long)axes[i]);
            goto done;
        }
        ins[a] = true;
    }
    int64_t dims[QO_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
    s = copy_reshaped(k, x, out, (int)r, dims);
done:
    qo_free(axes);
    return s;
}

/* ---- Transpose, Concat, Split ------------------------------------------------------------------ */
static qo_status k_transpose(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int64_t n, perm[QO_MAX_RANK];
    const int64_t *p = iattrs(k, "perm", &n);
    if (n < 0) {
        for (int i = 0; i < x->rank; i++) perm[i] = x->rank - 1 - i;
    } else {
        if (n != x->rank) return BAD("perm has %lld entries for a rank-%d input", (long long)n, x->rank);
        bool seen[QO_MAX_RANK] = {false};
        for (int i = 0; i < n; i++) {
            perm[i] = p[i] < 0 ? p[i] + x->rank : p[i];
            if (perm[i] < 0 || perm[i] >= x->rank || seen[perm[i]]) return BAD("perm is not a permutation");
            seen[perm[i]] = true;
        }
    }
    int64_t xs[QO_MAX_RANK], dims[QO_MAX_RANK], str[QO_MAX_RANK];
    strides_of(x, xs);
    for (int i = 0; i < x->rank; i++) {
        dims[i] = x->dims[perm[i]];
        str[i] = xs[perm[i]];
    }
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, x->rank, dims));
    if (x->rank == 0) {
        if (x->nbytes) memcpy(out->data, x->data, x->nbytes);
    } else {
        strided_copy(out->data, x->data, es, x->rank, dims, str, 0);
    }
    return QO_OK;
}

static qo_status k_concat(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    if (nin == 0 || !in[0]) return BAD("no inputs");
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    const qo_attr *aa = attr(k, "axis");
    if (!aa) return BAD("missing attribute 'axis'");
    int64_t axis = aa->u.i;
    if (x->rank == 0) return BAD("cannot concatenate scalars");
    QO_TRY(norm_axis(k, &axis, x->rank, "axis"));
    int64_t dims[QO_MAX_RANK];
    memcpy(dims, x->dims, sizeof(dims));
    dims[axis] = 0;
    for (uint32_t i = 0; i < nin; i++) {
        const qo_tensor *t = in[i];
        if (!t) return BAD("input %u is missing", i);
        if (t->elem != x->elem || t->rank != x->rank) return BAD("input %u differs in type or rank from input 0", i);
        for (int d = 0; d < x->rank; d++)
            if (d != axis && t->dims[d] != x->dims[d])
                return BAD("input %u has extent %lld on axis %d, input 0 has %lld", i, (long long)t->dims[d], d,
                           (long long)x->dims[d]);
        dims[axis] += t->dims[axis];
    }
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, x->rank, dims));
    int64_t outer = prod(dims, 0, (int)axis), inner = prod(dims, (int)axis + 1, x->rank);
    uint8_t *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        for (uint32_t i = 0; i < nin; i++) {
            size_t chunk = (size_t)(in[i]->dims[axis] * inner) * es;
            if (!chunk) continue;
            memcpy(dst, (const uint8_t *)in[i]->data + (size_t)o * chunk, chunk);
            dst += chunk;
        }
    return QO_OK;
}

static qo_status k_split(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int64_t axis = iattr(k, "axis", 0);
    QO_TRY(norm_axis(k, &axis, x->rank, "axis"));
    int64_t dim = x->dims[axis], *sizes = NULL, n = -1;
    if (k->opset < 13) {
        const int64_t *a = iattrs(k, "split", &n);
        if (n >= 0) {
            sizes = qo_malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
            memcpy(sizes, a, sizeof(int64_t) * (size_t)n);
        }
    } else if (nin > 1 && in[1]) {
        QO_TRY(tensor_ints(k, in[1], "split", &sizes, &n));
    }
    qo_status s = QO_OK;
    if (n >= 0) {
        int64_t sum = 0;
        for (int64_t i = 0; i < n; i++) {
            if (sizes[i] < 0) {
                s = BAD("split[%lld] is negative", (long long)i);
                goto done;
            }
            sum += sizes[i];
        }
        if (n != nout || sum != dim) {
            s = BAD("split has %lld parts summing to %lld; the node has %u outputs and axis extent %lld", (long long)n,
                    (long long)sum, nout, (long long)dim);
            goto done;
        }
    } else {
        int64_t parts = nout;
        const qo_attr *no = k->opset >= 18 ? attr(k, "num_outputs") : NULL;
        if (no) {
            parts = no->u.i;
            if (parts != nout) {
                s = BAD("num_outputs is %lld but the node has %u outputs", (long long)parts, nout);
                goto done;
            }
        }
        if (parts <= 0) {
            s = BAD("no outputs");
            goto done;
        }
        int64_t chunk = (dim + parts - 1) / parts;
        if (!no && dim % parts) {
            s = BAD("axis extent %lld does not split into %lld equal parts", (long long)dim, (long long)parts);
            goto done;
        }
        if (chunk * (parts - 1) > dim) {
            s = BAD("axis extent %lld cannot be split into %lld parts", (long long)dim, (long long)parts);
            goto done;
        }
        sizes = qo_malloc(sizeof(int64_t) * (size_t)parts);
        for (int64_t i = 0; i < parts; i++) sizes[i] = i == parts - 1 ? dim - chunk * (parts - 1) : chunk;
    }
    int64_t outer = prod(x->dims, 0, (int)axis), inner = prod(x->dims, (int)axis + 1, x->rank), off = 0;
    for (uint32_t j = 0; j < nout; j++) {
        int64_t dims[QO_MAX_RANK];
        memcpy(dims, x->dims, sizeof(dims));
        dims[axis] = sizes[j];
        if ((s = qo_tensor_make(k->cx, &out[j], x->elem, x->rank, dims)) != QO_OK) goto done;
        size_t chunk = (size_t)(sizes[j] * inner) * es;
        for (int64_t o = 0; o < outer && chunk; o++)
            memcpy((uint8_t *)out[j].data + (size_t)o * chunk,
                   (const uint8_t *)x->data + ((size_t)(o * dim + off) * (size_t)inner) * es, chunk);
        off += sizes[j];
    }
done:
    qo_free(sizes);
    return s;
}

/* ---- Slice --------------------------------------------------------------------------------------- */
static qo_status k_slice(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int64_t *starts = NULL, *ends = NULL, *axes = NULL, *steps = NULL, ns = 0, ne = 0, na = -1, nst = -1;
    qo_status s = QO_OK;
    if (k->opset < 10) {
        const int64_t *a;
        if (!(a = iattrs(k, "starts", &ns)) && ns < 0) return BAD("missing attribute 'starts'");
        starts = qo_malloc(sizeof(int64_t) * (size_t)(ns + 1));
        memcpy(starts, a, sizeof(int64_t) * (size_t)ns);
        a = iattrs(k, "ends", &ne);
        if (ne < 0) {
            qo_free(starts);
            return BAD("missing attribute 'ends'");
        }
        ends = qo_malloc(sizeof(int64_t) * (size_t)(ne + 1));
        memcpy(ends, a, sizeof(int64_t) * (size_t)ne);
        a = iattrs(k, "axes", &na);
        if (na >= 0) {
            axes = qo_malloc(sizeof(int64_t) * (size_t)(na + 1));
            memcpy(axes, a, sizeof(int64_t) * (size_t)na);
        }
    } else {
        if (nin < 3 || !in[1] || !in[2]) return BAD("missing starts or ends input");
        if ((s = tensor_ints(k, in[1], "starts", &starts, &ns)) != QO_OK) goto done;
        if ((s = tensor_ints(k, in[2], "ends", &ends, &ne)) != QO_OK) goto done;
        if (nin > 3 && in[3] && (s = tensor_ints(k, in[3], "axes", &axes, &na)) != QO_OK) goto done;
        if (nin > 4 && in[4] && (s = tensor_ints(k, in[4], "steps", &steps, &nst)) != QO_OK) goto done;
    }
    if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns)) {
        s = BAD("starts, ends, axes and steps differ in length");
        goto done;
    }
    int64_t xs[QO_MAX_RANK], st_[QO_MAX_RANK], dims[QO_MAX_RANK], off = 0;
    int64_t b[QO_MAX_RANK], stp[QO_MAX_RANK];
    bool seen[QO_MAX_RANK] = {false};
    strides_of(x, xs);
    for (int d = 0; d < x->rank; d++) {
        b[d] = 0;
        stp[d] = 1;
        dims[d] = x->dims[d];
    }
    for (int64_t i = 0; i < ns; i++) {
        int64_t a = axes ? axes[i] : i;
        if ((s = norm_axis(k, &a, x->rank, "axis")) != QO_OK) goto done;
        if (seen[a]) {
            s = BAD("axis %lld repeated", (long long)a);
            goto done;
        }
        seen[a] = true;
        int64_t step = steps ? steps[i] : 1, d = x->dims[a], st0 = starts[i], en = ends[i];
        if (step == 0) {
            s = BAD("step 0 on axis %lld", (long long)a);
            goto done;
        }
        if (st0 < 0) st0 += d;
        if (en < 0) en += d;
        int64_t cnt;
        if (step > 0) {
            st0 = st0 < 0 ? 0 : st0 > d ? d : st0;
            en = en < 0 ? 0 : en > d ? d : en;
            cnt = en > st0 ? (en - st0 + step - 1) / step : 0;
        } else {
            st0 = st0 < 0 ? 0 : st0 > d - 1 ? d - 1 : st0;
            en = en < -1 ? -1 : en > d - 1 ? d - 1 : en;
            cnt = st0 > en ? (st0 - en + (-step) - 1) / (-step) : 0;
        }
        b[a] = st0;
        stp[a] = step;
        dims[a] = cnt;
    }
    for (int d = 0; d < x->rank; d++) {
        st_[d] = xs[d] * stp[d];
        if (dims[d] > 0) off += b[d] * xs[d];
    }
    if ((s = qo_tensor_make(k->cx, out, x->elem, x->rank, dims)) != QO_OK) goto done;
    if (x->rank == 0) {
        if (x->nbytes) memcpy(out->data, x->data, x->nbytes);
    } else {
        strided_copy(out->data, x->data, es, x->rank, dims, st_, off);
    }
done:
    qo_free(starts);
    qo_free(ends);
    qo_free(axes);
    qo_free(steps);
    return s;
}

/* ---- Gather, GatherElements, GatherND --------------------------------------------------------- */
static qo_status k_gather(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0], *it = in[1];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int64_t axis = iattr(k, "axis", 0);
    QO_TRY(norm_axis(k, &axis, x->rank, "axis"));
    int r = x->rank - 1 + it->rank;
    if (r > QO_MAX_RANK) return UNSUP("output rank %d exceeds %d", r, QO_MAX_RANK);
    int64_t dims[QO_MAX_RANK], *idx, ni;
    int j = 0;
    for (int d = 0; d < axis; d++) dims[j++] = x->dims[d];
    for (int d = 0; d < it->rank; d++) dims[j++] = it->dims[d];
    for (int d = (int)axis + 1; d < x->rank; d++) dims[j++] = x->dims[d];
    QO_TRY(tensor_ints(k, it, "indices", &idx, &ni));
    int64_t n = x->dims[axis];
    for (int64_t i = 0; i < ni; i++) {
        if (idx[i] < 0) idx[i] += n;
        if (idx[i] < 0 || idx[i] >= n) {
            int64_t bad = idx[i] < 0 ? idx[i] - n : idx[i];
            qo_free(idx);
            return BAD("index %lld is out of range for axis extent %lld", (long long)bad, (long long)n);
        }
    }
    qo_status s = qo_tensor_make(k->cx, out, x->elem, r, dims);
    if (s == QO_OK) {
        int64_t outer = prod(x->dims, 0, (int)axis), inner = prod(x->dims, (int)axis + 1, x->rank);
        size_t chunk = (size_t)inner * es;
        uint8_t *dst = out->data;
        for (int64_t o = 0; o < outer && chunk; o++)
            for (int64_t i = 0; i < ni; i++) {
                memcpy(dst, (const uint8_t *)x->data + (size_t)(o * n + idx[i]) * chunk, chunk);
                dst += chunk;
            }
    }
    qo_free(idx);
    return s;
}

static qo_status k_gather_elements(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                   uint32_t nout) {
    const qo_tensor *x = in[0], *it = in[1];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    if (it->rank != x->rank) return BAD("indices rank %d differs from data rank %d", it->rank, x->rank);
    int64_t axis = iattr(k, "axis", 0);
    QO_TRY(norm_axis(k, &axis, x->rank, "axis"));
    int64_t *idx, ni, xs[QO_MAX_RANK], pos[QO_MAX_RANK] = {0};
    QO_TRY(tensor_ints(k, it, "indices", &idx, &ni));
    strides_of(x, xs);
    qo_status s = qo_tensor_make(k->cx, out, x->elem, it->rank, it->dims);
    for (int64_t i = 0; i < ni && s == QO_OK; i++) {
        int64_t v = idx[i], n = x->dims[axis], off = 0;
        if (v < 0) v += n;
        if (v < 0 || v >= n) {
            s = BAD("index %lld is out of range for axis extent %lld", (long long)idx[i], (long long)n);
            break;
        }
        for (int d = 0; d < x->rank; d++) off += (d == axis ? v : pos[d]) * xs[d];
        memcpy((uint8_t *)out->data + (size_t)i * es, (const uint8_t *)x->data + (size_t)off * es, es);
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++pos[d] < it->dims[d]) break;
            pos[d] = 0;
        }
    }
    qo_free(idx);
    return s;
}

static qo_status k_gather_nd(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0], *it = in[1];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int64_t bd = iattr(k, "batch_dims", 0);
    int q = it->rank, r = x->rank;
    if (q < 1) return BAD("indices must have rank >= 1");
    int64_t last = it->dims[q - 1];
    if (bd < 0 || bd >= q || bd >= r || last > r - bd) return BAD("indices shape does not fit data and batch_dims");
    for (int d = 0; d < bd; d++)
        if (it->dims[d] != x->dims[d]) return BAD("batch dimension %d differs between data and indices", d);
    int64_t dims[QO_MAX_RANK];
    int orank = 0;
    if (q - 1 + r - bd - last > QO_MAX_RANK) return UNSUP("output rank exceeds %d", QO_MAX_RANK);
    for (int d = 0; d < q - 1; d++) dims[orank++] = it->dims[d];
    for (int d = (int)(bd + last); d < r; d++) dims[orank++] = x->dims[d];
    int64_t *idx, ni, xs[QO_MAX_RANK];
    QO_TRY(tensor_ints(k, it, "indices", &idx, &ni));
    strides_of(x, xs);
    qo_status s = qo_tensor_make(k->cx, out, x->elem, orank, dims);
    int64_t B = prod(it->dims, 0, (int)bd), G = prod(it->dims, (int)bd, q - 1);
    int64_t S = prod(x->dims, (int)(bd + last), r), bstride = prod(x->dims, (int)bd, r);
    uint8_t *dst = s == QO_OK ? out->data : NULL;
    for (int64_t b = 0; b < B && s == QO_OK; b++)
        for (int64_t g = 0; g < G && s == QO_OK; g++) {
            const int64_t *iv = idx + (b * G + g) * last;
            int64_t off = b * bstride;
            for (int64_t j = 0; j < last; j++) {
                int64_t v = iv[j], n = x->dims[bd + j];
                if (v < 0) v += n;
                if (v < 0 || v >= n) {
                    s = BAD("index %lld is out of range for extent %lld", (long long)iv[j], (long long)n);
                    break;
                }
                off += v * xs[bd + j];
            }
            if (s != QO_OK || !S) break;
            memcpy(dst, (const uint8_t *)x->data + (size_t)off * es, (size_t)S * es);
            dst += (size_t)S * es;
        }
    qo_free(idx);
    return s;
}

/* ---- Expand, Tile ---------------------------------------------------------------------------- */
static qo_status k_expand(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int64_t *shp, n;
    QO_TRY(tensor_ints(k, nin > 1 ? in[1] : NULL, "shape", &shp, &n));
    int R = (int)(n > x->rank ? n : x->rank);
    qo_status s = QO_OK;
    if (R > QO_MAX_RANK) {
        qo_free(shp);
        return UNSUP("output rank %d exceeds %d", R, QO_MAX_RANK);
    }
    int64_t xs[QO_MAX_RANK], dims[QO_MAX_RANK], str[QO_MAX_RANK];
    strides_of(x, xs);
    for (int i = 0; i < R; i++) {
        int xi = i - (R - x->rank), si = i - (R - (int)n);
        int64_t a = xi >= 0 ? x->dims[xi] : 1, b = si >= 0 ? shp[si] : 1;
        if (a != b && a != 1 && b != 1) {
            s = BAD("cannot broadcast extent %lld to %lld on axis %d", (long long)a, (long long)b, i);
            break;
        }
        dims[i] = a == 1 ? b : a;
        str[i] = (xi >= 0 && a != 1) ? xs[xi] : 0;
    }
    qo_free(shp);
    if (s != QO_OK) return s;
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, R, dims));
    if (R == 0) {
        if (x->nbytes) memcpy(out->data, x->data, x->nbytes);
    } else {
        strided_copy(out->data, x->data, es, R, dims, str, 0);
    }
    return QO_OK;
}

static qo_status k_tile(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    if (k->opset < 6) return UNSUP("Tile before opset 6 is not supported");
    int64_t *rep, n;
    QO_TRY(tensor_ints(k, nin > 1 ? in[1] : NULL, "repeats", &rep, &n));
    if (n != x->rank) {
        qo_free(rep);
        return BAD("repeats has %lld entries for a rank-%d input", (long long)n, x->rank);
    }
    int64_t xs[QO_MAX_RANK], dims[QO_MAX_RANK], bd[SC_MAX], bs[SC_MAX];
    strides_of(x, xs);
    for (int i = 0; i < x->rank; i++) {
        if (rep[i] < 0) {
            qo_free(rep);
            return BAD("repeats[%d] is negative", i);
        }
        dims[i] = x->dims[i] * rep[i];
        bd[2 * i] = rep[i];
        bs[2 * i] = 0;
        bd[2 * i + 1] = x->dims[i];
        bs[2 * i + 1] = xs[i];
    }
    qo_free(rep);
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, x->rank, dims));
    if (x->rank == 0) {
        if (x->nbytes) memcpy(out->data, x->data, x->nbytes);
    } else {
        strided_copy(out->data, x->data, es, 2 * x->rank, bd, bs, 0);
    }
    return QO_OK;
}

/* ---- Pad ------------------------------------------------------------------------------------- */
static qo_status k_pad(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int r = x->rank;
    char mb[32];
    const char *mode = sattr(k, "mode", "constant", mb, sizeof mb);
    int m = !strcmp(mode, "constant") ? 0 : !strcmp(mode, "reflect") ? 1 : !strcmp(mode, "edge") ? 2
            : !strcmp(mode, "wrap") && k->opset >= 19 ? 3 : -1;
    if (m < 0) return UNSUP("pad mode '%s' is not supported at opset %lld", mode, (long long)k->opset);
    int64_t pads[2 * QO_MAX_RANK] = {0}, *pv = NULL, np, *axes = NULL, na = -1;
    uint8_t fill[16] = {0};
    qo_status s = QO_OK;
    if (k->opset < 11) {
        const int64_t *a = iattrs(k, "pads", &np);
        if (np < 0) return BAD("missing attribute 'pads'");
        pv = qo_malloc(sizeof(int64_t) * (size_t)(np + 1));
        memcpy(pv, a, sizeof(int64_t) * (size_t)np);
        if (is_num_elem(x->elem)) st(x->elem, fill, fattr(k, "value", 0.0f));
    } else {
        QO_TRY(tensor_ints(k, nin > 1 ? in[1] : NULL, "pads", &pv, &np));
        if (nin > 2 && in[2] && qo_tensor_numel(in[2]) > 0) {
            if (in[2]->elem != x->elem) {
                s = BAD("constant_value type differs from data type");
                goto done;
            }
            memcpy(fill, in[2]->data, es);
        }
        if (nin > 3 && in[3] && (s = tensor_ints(k, in[3], "axes", &axes, &na)) != QO_OK) goto done;
    }
    int64_t nax = na >= 0 ? na : r;
    if (np != 2 * nax) {
        s = BAD("pads has %lld entries, expected %lld", (long long)np, (long long)(2 * nax));
        goto done;
    }
    for (int64_t i = 0; i < nax; i++) {
        int64_t a = axes ? axes[i] : i;
        if ((s = norm_axis(k, &a, r, "axis")) != QO_OK) goto done;
        pads[a] = pv[i];
        pads[r + a] = pv[nax + i];
    }
    int64_t dims[QO_MAX_RANK], xs[QO_MAX_RANK];
    int64_t *map[QO_MAX_RANK] = {NULL};
    strides_of(x, xs);
    for (int d = 0; d < r; d++) {
        int64_t n = x->dims[d], pb = pads[d], pe = pads[r + d];
        dims[d] = n + pb + pe;
        if (dims[d] < 0) {
            s = BAD("pads on axis %d remove more than its extent %lld", d, (long long)n);
            goto free_maps;
        }
        /* negative pads crop first; the remaining window [lo, lo+nc) is then padded */
        int64_t lo = pb < 0 ? -pb : 0, nc = n - lo - (pe < 0 ? -pe : 0), ob = pb > 0 ? pb : 0;
        map[d] = qo_malloc(sizeof(int64_t) * (size_t)(dims[d] + 1));
        for (int64_t o = 0; o < dims[d]; o++) {
            int64_t i = o - ob;
            if (i < 0 || i >= nc) {
                if (m == 0) i = -1;
                else if (nc <= 0) {
                    s = BAD("mode '%s' cannot pad an empty axis %d", mode, d);
                    goto free_maps;
                } else if (m == 1) {
                    if (nc == 1) i = 0;
                    else {
                        int64_t per = 2 * (nc - 1);
                        i %= per;
                        if (i < 0) i += per;
                        if (i >= nc) i = per - i;
                    }
                } else if (m == 2) i = i < 0 ? 0 : nc - 1;
                else {
                    i %= nc;
                    if (i < 0) i += nc;
                }
            }
            map[d][o] = i < 0 ? -1 : i + lo;
        }
    }
    if ((s = qo_tensor_make(k->cx, out, x->elem, r, dims)) != QO_OK) goto free_maps;
    {
        int64_t total = qo_tensor_numel(out), pos[QO_MAX_RANK] = {0};
        for (int64_t o = 0; o < total; o++) {
            int64_t off = 0;
            bool cst = false;
            for (int d = 0; d < r; d++) {
                int64_t i = map[d][pos[d]];
                if (i < 0) cst = true;
                else off += i * xs[d];
            }
            memcpy((uint8_t *)out->data + (size_t)o * es, cst ? fill : (const uint8_t *)x->data + (size_t)off * es, es);
            for (int d = r - 1; d >= 0; d--) {
                if (++pos[d] < dims[d]) break;
                pos[d] = 0;
            }
        }
    }
free_maps:
    for (int d = 0; d < r; d++) qo_free(map[d]);
done:
    qo_free(pv);
    qo_free(axes);
    return s;
}

/* ---- Shape, Size, ConstantOfShape, Range, Dropout ------------------------------------------- */
static qo_status k_shape(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    int64_t r = x->rank, b = 0, e = r;
    if (k->opset >= 15) {
        b = iattr(k, "start", 0);
        e = iattr(k, "end", r);
        if (b < 0) b += r;
        if (e < 0) e += r;
        b = b < 0 ? 0 : b > r ? r : b;
        e = e < 0 ? 0 : e > r ? r : e;
    }
    int64_t n = e > b ? e - b : 0;
    QO_TRY(qo_tensor_make(k->cx, out, QO_I64, 1, &n));
    if (n) memcpy(out->data, x->dims + b, sizeof(int64_t) * (size_t)n);
    return QO_OK;
}

static qo_status k_size(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    int64_t n = qo_tensor_numel(in[0]);
    QO_TRY(qo_tensor_make(k->cx, out, QO_I64, 0, NULL));
    memcpy(out->data, &n, 8);
    return QO_OK;
}

static qo_status k_constant_of_shape(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                     uint32_t nout) {
    int64_t *shp, n;
    QO_TRY(tensor_ints(k, in[0], "input", &shp, &n));
    int elem = QO_F32;
    uint8_t val[16] = {0};
    const qo_attr *a = attr(k, "value");
    if (a && a->kind == QO_ATTR_TENSOR) {
        const qo_constdata *c = qo_const_get(k->g->m, a->u.t);
        elem = qo_type_elem(k->g->m, c->type);
        size_t es = qo_rt_elem_size(elem);
        if (!es || elem == QO_U4 || elem == QO_I4 || c->nbytes < es || qo_type_numel(k->g->m, c->type) != 1) {
            qo_free(shp);
            return UNSUP("value must be a one-element numeric or bool tensor");
        }
        memcpy(val, c->data, es);
    }
    qo_status s = QO_OK;
    if (n > QO_MAX_RANK) s = UNSUP("output rank %lld exceeds %d", (long long)n, QO_MAX_RANK);
    for (int64_t i = 0; i < n && s == QO_OK; i++)
        if (shp[i] < 0) s = BAD("shape[%lld] is negative", (long long)i);
    if (s == QO_OK) s = qo_tensor_make(k->cx, out, elem, (int)n, shp);
    if (s == QO_OK) {
        size_t es = qo_rt_elem_size(elem);
        int64_t total = qo_tensor_numel(out);
        for (int64_t i = 0; i < total; i++) memcpy((uint8_t *)out->data + (size_t)i * es, val, es);
    }
    qo_free(shp);
    return s;
}

static qo_status k_range(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *a = in[0], *l = in[1], *d = in[2];
    int e = a->elem;
    if (l->elem != e || d->elem != e) return BAD("start, limit and delta differ in type");
    if (qo_tensor_numel(a) != 1 || qo_tensor_numel(l) != 1 || qo_tensor_numel(d) != 1)
        return BAD("start, limit and delta must be scalars");
    if (!is_num_elem(e) || e == QO_BOOL) return UNSUP("Range over %s is not supported", qo_elem_name(e));
    size_t es = qo_rt_elem_size(e);
    int64_t n;
    if (is_float_elem(e)) {
        double s0 = ld(e, a->data), lim = ld(e, l->data), del = ld(e, d->data);
        if (del == 0) return BAD("delta is zero");
        double diff = e == QO_F64 ? lim - s0 : (double)(float)(lim - s0);
        double c = ceil(diff / del);
        n = c > 0 ? (int64_t)c : 0;
        QO_TRY(qo_tensor_make(k->cx, out, e, 1, &n));
        if (e == QO_F64) {
            double v = s0;
            for (int64_t i = 0; i < n; i++, v += del) memcpy((uint8_t *)out->data + (size_t)i * 8, &v, 8);
        } else {
            float v = (float)s0, fd = (float)del;
            for (int64_t i = 0; i < n; i++, v += fd) st(e, (uint8_t *)out->data + (size_t)i * es, v);
        }
    } else {
        int64_t s0 = ldi(e, a->data), lim = ldi(e, l->data), del = ldi(e, d->data);
        if (del == 0) return BAD("delta is zero");
        int64_t diff = lim - s0;
        if ((diff > 0 && del > 0) || (diff < 0 && del < 0)) {
            int64_t q = diff / del;
            n = q * del == diff ? q : q + 1;
        } else n = 0;
        QO_TRY(qo_tensor_make(k->cx, out, e, 1, &n));
        for (int64_t i = 0; i < n; i++) sti(e, (uint8_t *)out->data + (size_t)i * es, s0 + i * del);
    }
    return QO_OK;
}

static qo_status k_dropout(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    if (k->opset >= 12 && nin > 2 && in[2] && qo_tensor_numel(in[2]) > 0 && ld(in[2]->elem, in[2]->data) != 0) {
        double ratio = nin > 1 && in[1] && qo_tensor_numel(in[1]) > 0 ? ld(in[1]->elem, in[1]->data) : 0.5;
        if (ratio != 0) return UNSUP("Dropout in training mode with ratio %g is random: not supported", ratio);
    }
    QO_TRY(copy_reshaped(k, x, &out[0], x->rank, x->dims));
    if (nout > 1) {
        int me = QO_BOOL;
        qo_val mv = qo_node_output(k->g, k->n, 1);
        if (!mv) return QO_OK;
        qo_elem te = qo_type_elem(k->g->m, qo_val_get(k->g, mv)->type);
        if (te != QO_UNDEF) me = te;
        else if (k->opset < 10) me = x->elem;
        if (!is_num_elem(me)) return UNSUP("mask type %s is not supported", qo_elem_name(me));
        QO_TRY(qo_tensor_make(k->cx, &out[1], me, x->rank, x->dims));
        size_t es = qo_rt_elem_size(me);
        int64_t n = qo_tensor_numel(x);
        for (int64_t i = 0; i < n; i++) st(me, (uint8_t *)out[1].data + (size_t)i * es, 1);
    }
    return QO_OK;
}

/* ---- DepthToSpace, SpaceToDepth ------------------------------------------------------------- */
static qo_status k_depth_to_space(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                  uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    if (x->rank != 4) return BAD("input must have rank 4, got %d", x->rank);
    int64_t b = iattr(k, "blocksize", 0), N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (b <= 0 || C % (b * b)) return BAD("blocksize %lld does not divide channels %lld", (long long)b, (long long)C);
    char mb[16];
    const char *mode = sattr(k, "mode", "DCR", mb, sizeof mb);
    int64_t Cp = C / (b * b), dims[4] = {N, Cp, H * b, W * b};
    int64_t bd[6] = {N, Cp, H, b, W, b}, bs[6];
    if (!strcmp(mode, "DCR")) { /* input viewed as [N, b1, b2, C', H, W] */
        int64_t s[6] = {C * H * W, H * W, W, b * Cp * H * W, 1, Cp * H * W};
        memcpy(bs, s, sizeof bs);
    } else if (!strcmp(mode, "CRD")) { /* input viewed as [N, C', b1, b2, H, W] */
        int64_t s[6] = {C * H * W, b * b * H * W, W, b * H * W, 1, H * W};
        memcpy(bs, s, sizeof bs);
    } else return BAD("unknown mode '%s'", mode);
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, 4, dims));
    strided_copy(out->data, x->data, es, 6, bd, bs, 0);
    return QO_OK;
}

static qo_status k_space_to_depth(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                  uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    if (x->rank != 4) return BAD("input must have rank 4, got %d", x->rank);
    int64_t b = iattr(k, "blocksize", 0), N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    if (b <= 0 || H % b || W % b) return BAD("blocksize %lld does not divide the spatial extents", (long long)b);
    int64_t Hp = H / b, Wp = W / b, dims[4] = {N, C * b * b, Hp, Wp};
    /* input viewed as [N, C, H', b1, W', b2]; output order [N, b1, b2, C, H', W'] */
    int64_t bd[6] = {N, b, b, C, Hp, Wp}, bs[6] = {C * H * W, W, 1, H * W, b * W, b};
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, 4, dims));
    strided_copy(out->data, x->data, es, 6, bd, bs, 0);
    return QO_OK;
}

/* ---- Resize, Upsample ------------------------------------------------------------------------ */
enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC };
enum { CT_HALF_PIXEL, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_HALF_PIXEL_FOR_NN,
       CT_TF_CROP_AND_RESIZE, CT_HALF_PIXEL_SYMMETRIC };
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };

typedef struct rz_params {
    int mode, ctm, nearest;
    double cubic_a, extrap;
    bool exclude_outside;
    double scale[QO_MAX_RANK];
    double roi_lo[QO_MAX_RANK], roi_hi[QO_MAX_RANK];
} rz_params;

/* Per-axis taps: for output coordinate o, taps tap[o*4 .. o*4+cnt[o]) with weights w[]; cnt 0 marks
 * an extrapolated coordinate (tf_crop_and_resize outside the input). */
typedef struct rz_axis {
    int64_t *idx;
    double *w;
    int *cnt;
} rz_axis;

/* Input coordinate of output coordinate o on axis d, computed in float32 as onnxruntime does (the
 * rounding of nearest modes depends on it). As in ONNX's reference, length_resized is
 * scale * length_original (not rounded: it differs from lout when scales do not divide). */
static double rz_coord(const rz_params *p, int d, int64_t o, int64_t lin, int64_t lout) {
    float x = (float)o, s = (float)p->scale[d], lr = s * (float)lin, li = (float)lin;
    switch (p->ctm) {
    case CT_HALF_PIXEL: return (x + 0.5f) / s - 0.5f;
    case CT_PYTORCH_HALF_PIXEL: return lr > 1 ? (x + 0.5f) / s - 0.5f : 0.0f;
    case CT_ALIGN_CORNERS: return lr == 1 ? 0.0f : x * (li - 1) / (lr - 1);
    case CT_ASYMMETRIC: return x / s;
    case CT_TF_HALF_PIXEL_FOR_NN: return (x + 0.5f) / s;
    case CT_HALF_PIXEL_SYMMETRIC: {
        float adj = (float)lout / lr, center = li / 2, offset = center * (1 - adj);
        return (float)((double)offset + ((double)x + 0.5) / (double)s - 0.5); /* in double, as onnxruntime */
    }
    default: { /* tf_crop_and_resize */
        float lo = (float)p->roi_lo[d], hi = (float)p->roi_hi[d];
        if (lr == 1) return 0.5f * (lo + hi) * (li - 1);
        return lo * (li - 1) + x * (hi - lo) * (li - 1) / (lr - 1);
    }
    }
}

static void rz_build_axis(const rz_params *p, int d, int64_t lin, int64_t lout, rz_axis *ax) {
    ax->idx = qo_malloc(sizeof(int64_t) * 4 * (size_t)(lout + 1));
    ax->w = qo_malloc(sizeof(double) * 4 * (size_t)(lout + 1));
    ax->cnt = qo_malloc(sizeof(int) * (size_t)(lout + 1));
    for (int64_t o = 0; o < lout; o++) {
        int64_t *ti = ax->idx + o * 4;
        double *tw = ax->w + o * 4;
        double x = rz_coord(p, d, o, lin, lout);
        if (p->ctm == CT_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(lin - 1))) {
            ax->cnt[o] = 0;
            continue;
        }
        if (p->mode == RZ_NEAREST && p->scale[d] == 1 && lin == lout && p->ctm != CT_TF_CROP_AND_RESIZE) {
            ti[0] = o; /* onnxruntime leaves unscaled axes alone (tf_half_pixel_for_nn would shift them) */
            tw[0] = 1;
            ax->cnt[o] = 1;
        } else if (p->mode == RZ_NEAREST) {
            double f = floor(x), r;
            switch (p->nearest) {
            case NM_ROUND_PREFER_FLOOR: r = x - f == 0.5 ? f : floor(x + 0.5); break;
            case NM_ROUND_PREFER_CEIL: r = x - f == 0.5 ? f + 1 : floor(x + 0.5); break;
            case NM_FLOOR: r = f; break;
            case NM_CEIL: r = ceil(x); break;
            default: r = p->scale[d] < 1 ? ceil(x) : f; break; /* onnxruntime's opset-10 rule */
            }
            int64_t i = (int64_t)r;
            ti[0] = i < 0 ? 0 : i >= lin ? lin - 1 : i;
            tw[0] = 1;
            ax->cnt[o] = 1;
        } else if (p->mode == RZ_LINEAR) {
            double xc = x < 0 ? 0 : x > (double)(lin - 1) ? (double)(lin - 1) : x;
            int64_t i0 = (int64_t)floor(xc), i1 = i0 + 1 < lin ? i0 + 1 : lin - 1;
            double w1 = xc - (double)i0;
            int c = 0;
            if (1 - w1 != 0) { ti[c] = i0; tw[c++] = 1 - w1; }
            if (w1 != 0) { ti[c] = i1; tw[c++] = w1; }
            ax->cnt[o] = c;
        } else {
            double A = p->cubic_a, f = floor(x), r = x - f, sum = 0;
            double cf[4] = {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
                            ((A + 2) * r - (A + 3)) * r * r + 1,
                            ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
                            ((A * (2 - r) - 5 * A) * (2 - r) + 8 * A) * (2 - r) - 4 * A};
            for (int j = 0; j < 4; j++) {
                int64_t i = (int64_t)f - 1 + j;
                if (p->exclude_outside && (i < 0 || i >= lin)) cf[j] = 0;
                sum += cf[j];
            }
            int c = 0;
            for (int j = 0; j < 4; j++) {
                int64_t i = (int64_t)f - 1 + j;
                double w = p->exclude_outside ? cf[j] / sum : cf[j];
                if (w == 0) continue;
                ti[c] = i < 0 ? 0 : i >= lin ? lin - 1 : i;
                tw[c++] = w;
            }
            ax->cnt[o] = c;
        }
    }
}

static qo_status rz_run(qo_kctx *k, const qo_tensor *x, const rz_params *p, const int64_t *odims, qo_tensor *out) {
    int r = x->rank;
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    if (p->mode != RZ_NEAREST && !is_num_elem(x->elem))
        return UNSUP("interpolation over %s is not supported", qo_elem_name(x->elem));
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, r, odims));
    rz_axis ax[QO_MAX_RANK];
    int64_t xs[QO_MAX_RANK];
    strides_of(x, xs);
    for (int d = 0; d < r; d++) rz_build_axis(p, d, x->dims[d], odims[d], &ax[d]);
    int64_t total = qo_tensor_numel(out), pos[QO_MAX_RANK] = {0};
    uint8_t *dst = out->data;
    for (int64_t o = 0; o < total; o++, dst += es) {
        bool extrap = false;
        for (int d = 0; d < r; d++)
            if (ax[d].cnt[pos[d]] == 0) extrap = true;
        if (extrap) st(x->elem, dst, p->extrap);
        else if (p->mode == RZ_NEAREST) {
            int64_t off = 0;
            for (int d = 0; d < r; d++) off += ax[d].idx[pos[d] * 4] * xs[d];
            memcpy(dst, (const uint8_t *)x->data + (size_t)off * es, es);
        } else {
            /* sum over the tap combinations (odometer over per-axis tap counters) */
            int t[QO_MAX_RANK] = {0};
            double acc = 0;
            for (;;) {
                int64_t off = 0;
                double w = 1;
                for (int d = 0; d < r; d++) {
                    off += ax[d].idx[pos[d] * 4 + t[d]] * xs[d];
                    w *= ax[d].w[pos[d] * 4 + t[d]];
                }
                acc += w * ld(x->elem, (const uint8_t *)x->data + (size_t)off * es);
                int d = r - 1;
                for (; d >= 0; d--) {
                    if (++t[d] < ax[d].cnt[pos[d]]) break;
                    t[d] = 0;
                }
                if (d < 0) break;
            }
            if (!is_float_elem(x->elem)) acc = nearbyint(acc);
            st(x->elem, dst, acc);
        }
        for (int d = r - 1; d >= 0; d--) {
            if (++pos[d] < odims[d]) break;
            pos[d] = 0;
        }
    }
    for (int d = 0; d < r; d++) {
        qo_free(ax[d].idx);
        qo_free(ax[d].w);
        qo_free(ax[d].cnt);
    }
    return QO_OK;
}

static int rz_mode(const char *s) {
    if (!strcmp(s, "nearest")) return RZ_NEAREST;
    if (!strcmp(s, "linear") || !strcmp(s, "bilinear")) return RZ_LINEAR;
    if (!strcmp(s, "cubic")) return RZ_CUBIC;
    return -1;
}

/* Float vector from a float tensor (scales, roi). */
static qo_status tensor_floats(qo_kctx *k, const qo_tensor *t, const char *what, double *out, int64_t cap, int64_t *n) {
    if (!is_float_elem(t->elem)) return BAD("input '%s' must be a float tensor", what);
    int64_t c = qo_tensor_numel(t);
    if (c > cap) return BAD("input '%s' has %lld entries, at most %lld expected", what, (long long)c, (long long)cap);
    size_t es = qo_rt_elem_size(t->elem);
    for (int64_t i = 0; i < c; i++) out[i] = ld(t->elem, (const uint8_t *)t->data + (size_t)i * es);
    *n = c;
    return QO_OK;
}

static qo_status k_upsample(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    rz_params p = {.ctm = CT_ASYMMETRIC, .nearest = NM_FLOOR};
    char mb[32];
    const char *mode = sattr(k, "mode", "nearest", mb, sizeof mb);
    if ((p.mode = rz_mode(mode)) < 0 || p.mode == RZ_CUBIC) return UNSUP("Upsample mode '%s' is not supported", mode);
    int64_t n;
    if (k->opset < 9) {
        const qo_attr *a = attr(k, "scales");
        if (!a || a->kind != QO_ATTR_FLOATS) return BAD("missing attribute 'scales'");
        n = a->n;
        if (n != x->rank) return BAD("scales has %lld entries for a rank-%d input", (long long)n, x->rank);
        for (int64_t i = 0; i < n; i++) p.scale[i] = a->u.fs[i];
    } else {
        if (nin < 2 || !in[1]) return BAD("missing input 'scales'");
        QO_TRY(tensor_floats(k, in[1], "scales", p.scale, QO_MAX_RANK, &n));
        if (n != x->rank) return BAD("scales has %lld entries for a rank-%d input", (long long)n, x->rank);
    }
    int64_t od[QO_MAX_RANK];
    for (int d = 0; d < x->rank; d++) {
        if (p.scale[d] <= 0) return BAD("scale %g is not positive", p.scale[d]);
        od[d] = (int64_t)floor(p.scale[d] * (double)x->dims[d]);
    }
    return rz_run(k, x, &p, od, out);
}

static qo_status k_resize(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    int r = x->rank;
    rz_params p = {0};
    char b1[40], b2[40], b3[40], b4[40];
    const char *mode = sattr(k, "mode", "nearest", b1, sizeof b1);
    if ((p.mode = rz_mode(mode)) < 0 || !strcmp(mode, "bilinear")) return BAD("unknown Resize mode '%s'", mode);
    const char *ctm = sattr(k, "coordinate_transformation_mode", "half_pixel", b2, sizeof b2);
    const char *nm = sattr(k, "nearest_mode", "round_prefer_floor", b3, sizeof b3);
    const char *kar = sattr(k, "keep_aspect_ratio_policy", "stretch", b4, sizeof b4);
    p.cubic_a = fattr(k, "cubic_coeff_a", -0.75f);
    p.exclude_outside = iattr(k, "exclude_outside", 0) != 0;
    p.extrap = fattr(k, "extrapolation_value", 0.0f);
    if (k->opset < 11) {
        p.ctm = CT_ASYMMETRIC;
        p.nearest = NM_SIMPLE;
    } else {
        static const char *const ctms[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                                           "tf_half_pixel_for_nn", "tf_crop_and_resize", "half_pixel_symmetric"};
        static const char *const nms[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
        p.ctm = -1;
        for (int i = 0; i < 7; i++)
            if (!strcmp(ctm, ctms[i])) p.ctm = i;
        if (p.ctm < 0 || (p.ctm == CT_HALF_PIXEL_SYMMETRIC && k->opset < 19))
            return UNSUP("coordinate_transformation_mode '%s' is not supported", ctm);
        p.nearest = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(nm, nms[i])) p.nearest = i;
        if (p.nearest < 0) return UNSUP("nearest_mode '%s' is not supported", nm);
    }
    /* axes (opset 18) */
    int64_t axes[QO_MAX_RANK], nax = r;
    {
        int64_t n;
        const int64_t *a = k->opset >= 18 ? iattrs(k, "axes", &n) : NULL;
        if (a && n >= 0) {
            if (n > r) return BAD("axes has %lld entries for a rank-%d input", (long long)n, r);
            nax = n;
            bool seen[QO_MAX_RANK] = {false};
            for (int64_t i = 0; i < n; i++) {
                axes[i] = a[i];
                QO_TRY(norm_axis(k, &axes[i], r, "axis"));
                if (seen[axes[i]]) return BAD("axis %lld repeated", (long long)a[i]);
                seen[axes[i]] = true;
            }
        } else {
            for (int i = 0; i < r; i++) axes[i] = i;
        }
    }
    const qo_tensor *roi = NULL, *scales = NULL, *sizes = NULL;
    if (k->opset < 11) scales = nin > 1 ? in[1] : NULL;
    else {
        roi = nin > 1 ? in[1] : NULL;
        scales = nin > 2 ? in[2] : NULL;
        sizes = nin > 3 ? in[3] : NULL;
    }
    if (scales && qo_tensor_numel(scales) == 0) scales = NULL;
    if (sizes && qo_tensor_numel(sizes) == 0) sizes = NULL;
    if (roi && qo_tensor_numel(roi) == 0) roi = NULL;
    if (!scales == !sizes) return BAD("exactly one of scales and sizes must be given");
    int64_t od[QO_MAX_RANK];
    for (int d = 0; d < r; d++) {
        p.scale[d] = 1;
        od[d] = x->dims[d];
        p.roi_lo[d] = 0;
        p.roi_hi[d] = 1;
    }
    if (p.ctm == CT_TF_CROP_AND_RESIZE && roi) {
        double rv[2 * QO_MAX_RANK];
        int64_t n;
        QO_TRY(tensor_floats(k, roi, "roi", rv, 2 * QO_MAX_RANK, &n));
        if (n != 2 * nax) return BAD("roi has %lld entries, expected %lld", (long long)n, (long long)(2 * nax));
        for (int64_t i = 0; i < nax; i++) {
            p.roi_lo[axes[i]] = rv[i];
            p.roi_hi[axes[i]] = rv[nax + i];
        }
    }
    if (scales) {
        double sv[QO_MAX_RANK];
        int64_t n;
        QO_TRY(tensor_floats(k, scales, "scales", sv, QO_MAX_RANK, &n));
        if (n != nax) return BAD("scales has %lld entries, expected %lld", (long long)n, (long long)nax);
        for (int64_t i = 0; i < nax; i++) {
            int64_t d = axes[i];
            if (sv[i] <= 0) return BAD("scale %g is not positive", sv[i]);
            p.scale[d] = sv[i];
            od[d] = (int64_t)floor(sv[i] * (double)x->dims[d]);
        }
    } else {
        int64_t *sz, n;
        QO_TRY(tensor_ints(k, sizes, "sizes", &sz, &n));
        if (n != nax) {
            qo_free(sz);
            return BAD("sizes has %lld entries, expected %lld", (long long)n, (long long)nax);
        }
        int pol = !strcmp(kar, "stretch") ? 0 : !strcmp(kar, "not_larger") ? 1 : !strcmp(kar, "not_smaller") ? 2 : -1;
        if (pol < 0 || k->opset < 18) pol = pol < 0 && k->opset >= 18 ? -1 : 0;
        if (pol < 0) {
            qo_free(sz);
            return UNSUP("keep_aspect_ratio_policy '%s' is not supported", kar);
        }
        double common = pol == 1 ? INFINITY : 0;
        for (int64_t i = 0; i < nax; i++) {
            double s = (double)sz[i] / (double)x->dims[axes[i]];
            if (pol == 1 && s < common) common = s;
            if (pol == 2 && s > common) common = s;
        }
        for (int64_t i = 0; i < nax; i++) {
            int64_t d = axes[i];
            if (pol == 0) {
                od[d] = sz[i];
                p.scale[d] = (float)sz[i] / (float)x->dims[d];
            } else {
                p.scale[d] = common;
                od[d] = (int64_t)nearbyint(common * (double)x->dims[d]);
            }
        }
        qo_free(sz);
    }
    if (iattr(k, "antialias", 0) && p.mode != RZ_NEAREST)
        for (int d = 0; d < r; d++)
            if (p.scale[d] < 1) return UNSUP("antialias with downscaling is not supported");
    for (int d = 0; d < r; d++)
        if (od[d] < 0) return BAD("negative output extent on axis %d", d);
    return rz_run(k, x, &p, od, out);
}

/* ---- Compress, OneHot, NonZero, Trilu, EyeLike, CumSum --------------------------------------- */
static qo_status k_compress(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0], *c = in[1];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    if (c->rank != 1) return BAD("condition must be 1-D");
    const qo_attr *aa = attr(k, "axis");
    int64_t nc = c->dims[0];
    const uint8_t *cv = c->data;
    size_t ces = qo_rt_elem_size(c->elem);
    if (!aa) {
        int64_t total = qo_tensor_numel(x), lim = nc < total ? nc : total, cnt = 0;
        for (int64_t i = 0; i < lim; i++) cnt += ld(c->elem, cv + (size_t)i * ces) != 0;
        QO_TRY(qo_tensor_make(k->cx, out, x->elem, 1, &cnt));
        uint8_t *dst = out->data;
        for (int64_t i = 0; i < lim; i++)
            if (ld(c->elem, cv + (size_t)i * ces) != 0) {
                memcpy(dst, (const uint8_t *)x->data + (size_t)i * es, es);
                dst += es;
            }
        return QO_OK;
    }
    int64_t axis = aa->u.i;
    QO_TRY(norm_axis(k, &axis, x->rank, "axis"));
    int64_t n = x->dims[axis], lim = nc < n ? nc : n, cnt = 0, dims[QO_MAX_RANK];
    for (int64_t i = 0; i < lim; i++) cnt += ld(c->elem, cv + (size_t)i * ces) != 0;
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = cnt;
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, x->rank, dims));
    int64_t outer = prod(x->dims, 0, (int)axis), inner = prod(x->dims, (int)axis + 1, x->rank);
    size_t chunk = (size_t)inner * es;
    uint8_t *dst = out->data;
    for (int64_t o = 0; o < outer && chunk; o++)
        for (int64_t i = 0; i < lim; i++)
            if (ld(c->elem, cv + (size_t)i * ces) != 0) {
                memcpy(dst, (const uint8_t *)x->data + (size_t)(o * n + i) * chunk, chunk);
                dst += chunk;
            }
    return QO_OK;
}

static qo_status k_onehot(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *it = in[0], *dp = in[1], *vals = in[2];
    if (qo_tensor_numel(dp) != 1) return BAD("depth must have one element");
    if (qo_tensor_numel(vals) != 2) return BAD("values must have two elements");
    if (!is_num_elem(it->elem) || !is_num_elem(dp->elem)) return BAD("indices and depth must be numeric");
    size_t es = 0;
    QO_TRY(esize(k, vals, &es));
    int64_t depth = (int64_t)ld(dp->elem, dp->data), r = it->rank + 1;
    if (depth <= 0) return BAD("depth %lld is not positive", (long long)depth);
    if (r > QO_MAX_RANK) return UNSUP("output rank %lld exceeds %d", (long long)r, QO_MAX_RANK);
    int64_t axis = iattr(k, "axis", -1);
    QO_TRY(norm_axis(k, &axis, r, "axis"));
    int64_t dims[QO_MAX_RANK];
    for (int d = 0, j = 0; d < r; d++) dims[d] = d == axis ? depth : it->dims[j++];
    QO_TRY(qo_tensor_make(k->cx, out, vals->elem, (int)r, dims));
    int64_t outer = prod(it->dims, 0, (int)axis), inner = prod(it->dims, (int)axis, it->rank);
    size_t ies = qo_rt_elem_size(it->elem);
    const uint8_t *off = vals->data, *on = (const uint8_t *)vals->data + es;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t d = 0; d < depth; d++)
            for (int64_t i = 0; i < inner; i++) {
                double v = ld(it->elem, (const uint8_t *)it->data + (size_t)(o * inner + i) * ies);
                int64_t iv = (int64_t)v;
                if (iv < 0) iv += depth;
                memcpy((uint8_t *)out->data + (size_t)((o * depth + d) * inner + i) * es, iv == d ? on : off, es);
            }
    return QO_OK;
}

static qo_status k_nonzero(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int64_t n = qo_tensor_numel(x), cnt = 0;
    for (int64_t i = 0; i < n; i++) cnt += ld(x->elem, (const uint8_t *)x->data + (size_t)i * es) != 0;
    int r = x->rank ? x->rank : 1;
    int64_t dims[2] = {r, cnt}, pos[QO_MAX_RANK] = {0}, j = 0;
    QO_TRY(qo_tensor_make(k->cx, out, QO_I64, 2, dims));
    int64_t *o = out->data;
    for (int64_t i = 0; i < n; i++) {
        if (ld(x->elem, (const uint8_t *)x->data + (size_t)i * es) != 0) {
            for (int d = 0; d < r; d++) o[d * cnt + j] = x->rank ? pos[d] : 0;
            j++;
        }
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++pos[d] < x->dims[d]) break;
            pos[d] = 0;
        }
    }
    return QO_OK;
}

static qo_status k_trilu(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    if (x->rank < 2) return BAD("input must have rank >= 2");
    int64_t kk = 0;
    if (nin > 1 && in[1] && qo_tensor_numel(in[1]) > 0) kk = ldi(in[1]->elem, in[1]->data);
    bool upper = iattr(k, "upper", 1) != 0;
    QO_TRY(copy_reshaped(k, x, out, x->rank, x->dims));
    int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1], B = prod(x->dims, 0, x->rank - 2);
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < C; j++)
                if (upper ? j - i < kk : j - i > kk) memset((uint8_t *)out->data + (size_t)((b * R + i) * C + j) * es, 0, es);
    return QO_OK;
}

static qo_status k_eyelike(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    if (x->rank != 2) return BAD("input must be 2-D");
    int e = (int)iattr(k, "dtype", x->elem);
    if (!is_num_elem(e)) return UNSUP("dtype %d is not supported", e);
    int64_t kk = iattr(k, "k", 0);
    QO_TRY(qo_tensor_make(k->cx, out, e, 2, x->dims));
    size_t es = qo_rt_elem_size(e);
    for (int64_t i = 0; i < x->dims[0]; i++) {
        int64_t j = i + kk;
        if (j >= 0 && j < x->dims[1]) st(e, (uint8_t *)out->data + (size_t)(i * x->dims[1] + j) * es, 1);
    }
    return QO_OK;
}

static qo_status k_cumsum(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    if (!is_num_elem(x->elem) || x->elem == QO_BOOL) return UNSUP("CumSum over %s is not supported", qo_elem_name(x->elem));
    if (!in[1] || qo_tensor_numel(in[1]) != 1) return BAD("axis must be a scalar");
    int64_t axis = ldi(in[1]->elem, in[1]->data);
    QO_TRY(norm_axis(k, &axis, x->rank, "axis"));
    bool excl = iattr(k, "exclusive", 0) != 0, rev = iattr(k, "reverse", 0) != 0;
    QO_TRY(qo_tensor_make(k->cx, out, x->elem, x->rank, x->dims));
    int64_t outer = prod(x->dims, 0, (int)axis), n = x->dims[axis], inner = prod(x->dims, (int)axis + 1, x->rank);
    bool fl = is_float_elem(x->elem);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double accf = 0;
            float acc32 = 0;
            int64_t acci = 0;
            for (int64_t t = 0; t < n; t++) {
                int64_t j = rev ? n - 1 - t : t;
                size_t at = (size_t)((o * n + j) * inner + i) * es;
                const uint8_t *src = (const uint8_t *)x->data + at;
                uint8_t *dst = (uint8_t *)out->data + at;
                if (excl) {
                    if (x->elem == QO_F32) st(x->elem, dst, acc32);
                    else if (fl) st(x->elem, dst, accf);
                    else sti(x->elem, dst, acci);
                }
                if (x->elem == QO_F32) acc32 += (float)ld(x->elem, src);
                else if (fl) accf += ld(x->elem, src);
                else acci = (int64_t)((uint64_t)acci + (uint64_t)ldi(x->elem, src));
                if (!excl) {
                    if (x->elem == QO_F32) st(x->elem, dst, acc32);
                    else if (fl) st(x->elem, dst, accf);
                    else sti(x->elem, dst, acci);
                }
            }
        }
    return QO_OK;
}

/* ---- ScatterElements, Scatter, ScatterND ---------------------------------------------------- */
enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static qo_status get_reduction(qo_kctx *k, int *red) {
    char b[16];
    const char *r = sattr(k, "reduction", "none", b, sizeof b);
    *red = !strcmp(r, "none") ? RED_NONE : !strcmp(r, "add") ? RED_ADD : !strcmp(r, "mul") ? RED_MUL
           : !strcmp(r, "max") ? RED_MAX : !strcmp(r, "min") ? RED_MIN : -1;
    if (*red < 0) return BAD("unknown reduction '%s'", r);
    return QO_OK;
}

static void reduce_into(int e, uint8_t *dst, const uint8_t *src, size_t es, int red) {
    if (red == RED_NONE) {
        memcpy(dst, src, es);
    } else if (is_float_elem(e)) {
        double a = ld(e, dst), b = ld(e, src);
        double r = red == RED_ADD ? a + b : red == RED_MUL ? a * b : red == RED_MAX ? (a > b ? a : b) : (a < b ? a : b);
        if (e == QO_F32) r = red == RED_ADD ? (double)((float)a + (float)b) : red == RED_MUL ? (double)((float)a * (float)b) : r;
        st(e, dst, r);
    } else {
        int64_t a = ldi(e, dst), b = ldi(e, src);
        int64_t r = red == RED_ADD ? (int64_t)((uint64_t)a + (uint64_t)b) : red == RED_MUL ? (int64_t)((uint64_t)a * (uint64_t)b)
                    : red == RED_MAX ? (a > b ? a : b) : (a < b ? a : b);
        sti(e, dst, r);
    }
}

static qo_status k_scatter_elements(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                    uint32_t nout) {
    const qo_tensor *x = in[0], *it = in[1], *up = in[2];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int red = RED_NONE;
    if (qo_node_get(k->g, k->n)->op == QO_OP_SCATTERELEMENTS) QO_TRY(get_reduction(k, &red));
    if (it->rank != x->rank || up->rank != it->rank || up->elem != x->elem)
        return BAD("data, indices and updates must have the same rank (and data/updates the same type)");
    for (int d = 0; d < it->rank; d++)
        if (it->dims[d] != up->dims[d]) return BAD("indices and updates differ in shape");
    int64_t axis = iattr(k, "axis", 0);
    QO_TRY(norm_axis(k, &axis, x->rank, "axis"));
    int64_t *idx, ni, xs[QO_MAX_RANK], pos[QO_MAX_RANK] = {0};
    QO_TRY(tensor_ints(k, it, "indices", &idx, &ni));
    strides_of(x, xs);
    qo_status s = copy_reshaped(k, x, out, x->rank, x->dims);
    for (int64_t i = 0; i < ni && s == QO_OK; i++) {
        int64_t v = idx[i], n = x->dims[axis], off = 0;
        if (v < 0) v += n;
        if (v < 0 || v >= n) {
            s = BAD("index %lld is out of range for axis extent %lld", (long long)idx[i], (long long)n);
            break;
        }
        for (int d = 0; d < x->rank; d++) off += (d == axis ? v : pos[d]) * xs[d];
        reduce_into(x->elem, (uint8_t *)out->data + (size_t)off * es, (const uint8_t *)up->data + (size_t)i * es, es, red);
        for (int d = x->rank - 1; d >= 0; d--) {
            if (++pos[d] < it->dims[d]) break;
            pos[d] = 0;
        }
    }
    qo_free(idx);
    return s;
}

static qo_status k_scatter_nd(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out, uint32_t nout) {
    const qo_tensor *x = in[0], *it = in[1], *up = in[2];
    size_t es = 0;
    QO_TRY(esize(k, x, &es));
    int red = RED_NONE;
    QO_TRY(get_reduction(k, &red));
    int q = it->rank, r = x->rank;
    if (q < 1 || up->elem != x->elem) return BAD("indices must have rank >= 1 and updates the data type");
    int64_t last = it->dims[q - 1];
    if (last > r) return BAD("index tuples are longer than the data rank");
    if (up->rank != q - 1 + r - last) return BAD("updates has rank %d, expected %lld", up->rank, (long long)(q - 1 + r - last));
    for (int d = 0; d < q - 1; d++)
        if (up->dims[d] != it->dims[d]) return BAD("updates shape does not match indices");
    for (int64_t d = last; d < r; d++)
        if (up->dims[q - 1 + d - last] != x->dims[d]) return BAD("updates shape does not match data");
    int64_t *idx, ni, xs[QO_MAX_RANK];
    QO_TRY(tensor_ints(k, it, "indices", &idx, &ni));
    strides_of(x, xs);
    qo_status s = copy_reshaped(k, x, out, x->rank, x->dims);
    int64_t G = prod(it->dims, 0, q - 1), S = prod(x->dims, (int)last, r);
    for (int64_t g = 0; g < G && s == QO_OK; g++) {
        int64_t off = 0;
        for (int64_t j = 0; j < last; j++) {
            int64_t v = idx[g * last + j], n = x->dims[j];
            if (v < 0) v += n;
            if (v < 0 || v >= n) {
                s = BAD("index %lld is out of range for extent %lld", (long long)idx[g * last + j], (long long)n);
                break;
            }
            off += v * xs[j];
        }
        for (int64_t e = 0; e < S && s == QO_OK; e++)
            reduce_into(x->elem, (uint8_t *)out->data + (size_t)(off + e) * es,
                        (const uint8_t *)up->data + (size_t)(g * S + e) * es, es, red);
    }
    qo_free(idx);
    return s;
}

/* ---- registration ---------------------------------------------------------------------------- */
/* Fills the kernel-table rows of the shape/data-movement family. */
void qo_ref_register_shape(qo_ref_kernel *table) {
    table[QO_OP_RESHAPE] = k_reshape;
    table[QO_OP_FLATTEN] = k_flatten;
    table[QO_OP_IDENTITY] = k_identity;
    table[QO_OP_SQUEEZE] = k_squeeze;
    table[QO_OP_UNSQUEEZE] = k_unsqueeze;
    table[QO_OP_TRANSPOSE] = k_transpose;
    table[QO_OP_CONCAT] = k_concat;
    table[QO_OP_SPLIT] = k_split;
    table[QO_OP_SLICE] = k_slice;
    table[QO_OP_GATHER] = k_gather;
    table[QO_OP_GATHERELEMENTS] = k_gather_elements;
    table[QO_OP_GATHERND] = k_gather_nd;
    table[QO_OP_EXPAND] = k_expand;
    table[QO_OP_TILE] = k_tile;
    table[QO_OP_PAD] = k_pad;
    table[QO_OP_SHAPE] = k_shape;
    table[QO_OP_SIZE] = k_size;
    table[QO_OP_CONSTANTOFSHAPE] = k_constant_of_shape;
    table[QO_OP_RANGE] = k_range;
    table[QO_OP_DROPOUT] = k_dropout;
    table[QO_OP_DEPTHTOSPACE] = k_depth_to_space;
    table[QO_OP_SPACETODEPTH] = k_space_to_depth;
    table[QO_OP_RESIZE] = k_resize;
    table[QO_OP_UPSAMPLE] = k_upsample;
    table[QO_OP_COMPRESS] = k_compress;
    table[QO_OP_ONEHOT] = k_onehot;
    table[QO_OP_NONZERO] = k_nonzero;
    table[QO_OP_TRILU] = k_trilu;
    table[QO_OP_EYELIKE] = k_eyelike;
    table[QO_OP_CUMSUM] = k_cumsum;
    table[QO_OP_SCATTER] = k_scatter_elements;
    table[QO_OP_SCATTERELEMENTS] = k_scatter_elements;
    table[QO_OP_SCATTERND] = k_scatter_nd;
}
