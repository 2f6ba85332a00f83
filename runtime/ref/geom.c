/* runtime/ref/geom.c — sliding-window geometry for Conv, ConvTranspose and the pools; see geom.h. */
#include "runtime/ref/geom.h"
#include "runtime/ref/util.h"

#include <string.h>

/* Rejects k's node with code: reported at the node (qo_kerr) with QO_GEOM_REPORT, else silently. */
#define REJECT(code, ...) return (flags & QO_GEOM_REPORT) ? qo_kerr(k, code, __VA_ARGS__) : (code)
#define BAD(...) REJECT(QO_ERR_INVALID_MODEL, __VA_ARGS__)

static const char *op_name(qo_kctx *k) { return qo_node_op_type(k->g, k->n); }

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

int qo_geom_attr_ints(qo_kctx *k, const char *name, int64_t *out, int max) {
    const qo_attr *a = qo_node_attr(k->g, k->n, name);
    if (!a) return -1;
    if (a->kind != QO_ATTR_INTS || a->n > (uint32_t)max) return -2;
    for (uint32_t i = 0; i < a->n; i++) out[i] = a->u.is[i];
    return (int)a->n;
}

int qo_geom_autopad(qo_kctx *k) {
    const qo_attr *a = qo_node_attr(k->g, k->n, "auto_pad");
    if (!a || a->kind != QO_ATTR_STRING || a->u.s.n == 0) return QO_PAD_NOTSET;
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int i = 0; i < 4; i++)
        if (a->u.s.n == strlen(names[i]) && memcmp(a->u.s.p, names[i], a->u.s.n) == 0) return i;
    return -1;
}

/* Reads INTS attribute `name` (at most max entries) that must have `want` entries into dst, left
 * as is when the attribute is absent; one of the wrong kind or longer than max counts as absent
 * unless QO_GEOM_STRICT. The qo_geom_attr_ints count goes to *count. */
static qo_status read_list(qo_kctx *k, unsigned flags, const char *name, int max, int want, int64_t *dst,
                           int *count) {
    int64_t v[2 * QO_MAX_RANK];
    int n = *count = qo_geom_attr_ints(k, name, v, max);
    if (n == -2 && (flags & QO_GEOM_STRICT)) BAD("%s: %s is not a list of at most %d ints", op_name(k), name, max);
    if (n >= 0 && n != want) BAD("%s: %s has %d entries, expected %d", op_name(k), name, n, want);
    for (int i = 0; i < n; i++) dst[i] = v[i];
    return QO_OK;
}

/* strides and dilations (default 1), ConvTranspose's output_padding (adj, default 0), their
 * positivity, then the auto_pad value into *ap. */
static qo_status steps(qo_kctx *k, unsigned flags, bool transpose, qo_geom *g, int *ap) {
    int n, nsp = g->nsp;
    for (int i = 0; i < nsp; i++) g->str[i] = g->dil[i] = 1;
    QO_TRY(read_list(k, flags, "strides", QO_MAX_RANK, nsp, g->str, &n));
    QO_TRY(read_list(k, flags, "dilations", QO_MAX_RANK, nsp, g->dil, &n));
    if (transpose) QO_TRY(read_list(k, flags, "output_padding", QO_MAX_RANK, nsp, g->adj, &n));
    for (int i = 0; i < nsp; i++)
        if (g->str[i] < 1 || g->dil[i] < 1) BAD("%s: strides and dilations must be positive", op_name(k));
    *ap = qo_geom_autopad(k);
    if (*ap < 0) BAD("%s: unknown auto_pad value", op_name(k));
    return QO_OK;
}

qo_status qo_geom_channels(qo_kctx *k, const qo_tensor *x, const qo_tensor *w, const qo_tensor *b, bool transpose,
                           unsigned flags, qo_conv_ch *c) {
    int64_t group = c->group = qo_attr_int(k->g, k->n, "group", 1);
    int64_t C = c->C = x->dims[1], w0 = w->dims[0], w1 = w->dims[1];
    c->N = x->dims[0];
    bool bad = transpose ? group < 1 || w0 != C || C % group != 0 : group < 1 || C != w1 * group || w0 % group != 0;
    if (bad)
        BAD("%s: X has %lld channels, W is [%lld, %lld, ...] with group %lld", op_name(k), (long long)C,
            (long long)w0, (long long)w1, (long long)group);
    c->M = transpose ? w1 * group : w0;
    if (b && (b->rank != 1 || b->dims[0] != c->M)) BAD("%s: B must have shape [%lld]", op_name(k), (long long)c->M);
    return QO_OK;
}

qo_status qo_geom_window(qo_kctx *k, const qo_tensor *x, const int64_t *ker, int ceil_mode, unsigned flags,
                         qo_geom *g) {
    memset(g, 0, sizeof *g);
    if (x->rank < 3) BAD("%s: input rank %d, expected at least 3", op_name(k), (int)x->rank);
    int nsp = g->nsp = x->rank - 2, n, ap;
    int64_t ks[QO_MAX_RANK], v[2 * QO_MAX_RANK];
    QO_TRY(read_list(k, flags, "kernel_shape", QO_MAX_RANK, nsp, ks, &n));
    if (n < 0 && !ker) BAD("%s: kernel_shape attribute is required", op_name(k));
    for (int i = 0; i < nsp; i++) {
        g->in[i] = x->dims[2 + i];
        g->ker[i] = n >= 0 ? ks[i] : ker[i];
        if (g->ker[i] < 1) BAD("%s: kernel extent %lld < 1", op_name(k), (long long)g->ker[i]);
    }
    QO_TRY(steps(k, flags, false, g, &ap));
    if (ap == QO_PAD_NOTSET) {
        QO_TRY(read_list(k, flags, "pads", 2 * QO_MAX_RANK, 2 * nsp, v, &n));
        for (int i = 0; i < nsp && n > 0; i++) {
            g->pb[i] = v[i];
            g->pe[i] = v[nsp + i];
            if (g->pb[i] < 0 || g->pe[i] < 0) REJECT(QO_ERR_UNSUPPORTED, "%s: negative pads", op_name(k));
        }
    }
    for (int i = 0; i < nsp; i++) {
        int64_t dk = (g->ker[i] - 1) * g->dil[i] + 1;
        if (ap == QO_PAD_SAME_UPPER || ap == QO_PAD_SAME_LOWER) {
            g->out[i] = ceil_div(g->in[i], g->str[i]);
            int64_t need = (g->out[i] - 1) * g->str[i] + dk - g->in[i];
            if (need < 0) need = 0;
            g->pb[i] = ap == QO_PAD_SAME_LOWER ? (need + 1) / 2 : need / 2;
            g->pe[i] = need - g->pb[i];
        } else {
            int64_t num = g->in[i] + g->pb[i] + g->pe[i] - dk;
            if (num < 0)
                BAD("%s: kernel (dilated extent %lld) larger than padded input (%lld)", op_name(k), (long long)dk,
                    (long long)(g->in[i] + g->pb[i] + g->pe[i]));
            if (ceil_mode) {
                g->out[i] = ceil_div(num, g->str[i]) + 1;
                /* the last window must start inside the input or the begin padding */
                if ((g->out[i] - 1) * g->str[i] >= g->in[i] + g->pb[i]) g->out[i]--;
            } else {
                g->out[i] = num / g->str[i] + 1;
            }
        }
    }
    return QO_OK;
}

qo_status qo_geom_pool(qo_kctx *k, const qo_tensor *x, unsigned flags, qo_geom *g) {
    return qo_geom_window(k, x, NULL, (int)qo_attr_int(k->g, k->n, "ceil_mode", 0), flags, g);
}

qo_status qo_geom_convtranspose(qo_kctx *k, const qo_tensor *x, const qo_tensor *w, unsigned flags, qo_geom *g) {
    memset(g, 0, sizeof *g);
    int nsp = g->nsp = x->rank - 2, n, nos, ap;
    int64_t v[2 * QO_MAX_RANK], oshape[QO_MAX_RANK + 2];
    QO_TRY(read_list(k, flags, "kernel_shape", QO_MAX_RANK, nsp, v, &n));
    for (int i = 0; i < nsp; i++) {
        g->ker[i] = w->dims[2 + i];
        if (n >= 0 && v[i] != g->ker[i]) BAD("%s: kernel_shape disagrees with W's shape", op_name(k));
        g->in[i] = x->dims[2 + i];
    }
    QO_TRY(steps(k, flags, true, g, &ap));
    QO_TRY(read_list(k, flags, "pads", 2 * QO_MAX_RANK, 2 * nsp, v, &n));
    if (n > 0 && ap == QO_PAD_NOTSET)
        for (int i = 0; i < nsp; i++) g->pb[i] = v[i], g->pe[i] = v[nsp + i];
    nos = qo_geom_attr_ints(k, "output_shape", oshape, QO_MAX_RANK);
    if (nos == -2 && (flags & QO_GEOM_STRICT)) BAD("%s: output_shape is not a list of ints", op_name(k));
    if (nos >= 0) {
        /* output_shape may list the spatial dims only or the whole shape */
        if (nos == nsp + 2) memmove(oshape, oshape + 2, (size_t)nsp * sizeof *oshape), nos = nsp;
        if (nos != nsp) BAD("%s: output_shape has %d entries, expected %d", op_name(k), nos, nsp);
    }
    for (int i = 0; i < nsp; i++) {
        int64_t full = g->str[i] * (g->in[i] - 1) + g->adj[i] + (g->ker[i] - 1) * g->dil[i] + 1;
        if (nos >= 0 || ap == QO_PAD_SAME_UPPER || ap == QO_PAD_SAME_LOWER) {
            g->out[i] = nos >= 0 ? oshape[i] : g->in[i] * g->str[i];
            int64_t total = full - g->out[i];
            if (total < 0) total = 0;
            if (ap == QO_PAD_SAME_LOWER) g->pb[i] = total - total / 2, g->pe[i] = total / 2;
            else g->pb[i] = total / 2, g->pe[i] = total - total / 2;
        } else {
            g->out[i] = full - g->pb[i] - g->pe[i];
        }
        if (g->out[i] < 0) BAD("%s: negative output extent", op_name(k));
    }
    return QO_OK;
}

int qo_geom_out_dims(const qo_geom *g, int64_t d0, int64_t d1, int64_t *odims) {
    odims[0] = d0, odims[1] = d1;
    for (int i = 0; i < g->nsp; i++) odims[2 + i] = g->out[i];
    return g->nsp + 2;
}
