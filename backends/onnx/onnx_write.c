/* backends/onnx/onnx_write.c — qopt IR → ONNX ModelProto (protobuf-c generated structs).
 *
 * The whole ModelProto is built as a tree of protobuf-c structs allocated in one arena; strings and
 * constant bytes are not copied (they point at module atoms and constant-pool bytes, so weights
 * borrowed from a mapped .onnx are streamed straight from the mapping). Messages the module keeps
 * serialized (FunctionProto, SparseTensorProto, TypeProto) are unpacked with protobuf-c and freed
 * after packing. The tree is packed with protobuf_c_message_pack_to_buffer into a ProtobufCBuffer
 * that streams to a temporary file in the destination directory, which is renamed over the
 * destination only once everything was written. */
#include "backends/onnx/onnx_write.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- streaming file buffer ------------------------------------------------------------------ */

typedef struct fbuf {
    ProtobufCBuffer base; /* must be first: protobuf-c hands us &base */
    int fd;
    uint8_t *buf;
    size_t n, cap;
    int err;        /* first errno seen, 0 if none */
    uint64_t total; /* bytes appended so far (written or buffered) */
} fbuf;

static int write_all(int fd, const uint8_t *p, size_t len) {
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (w == 0) return EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static void fbuf_flush(fbuf *b) {
    if (!b->err && b->n) b->err = write_all(b->fd, b->buf, b->n);
    b->n = 0;
}

static void fbuf_append(ProtobufCBuffer *pb, size_t len, const uint8_t *data) {
    fbuf *b = (fbuf *)pb;
    b->total += len;
    if (b->err) return;
    if (b->n + len > b->cap) fbuf_flush(b);
    if (len >= b->cap) {
        if (!b->err) b->err = write_all(b->fd, data, len); /* large payloads go straight out */
        return;
    }
    memcpy(b->buf + b->n, data, len);
    b->n += len;
}

static void fbuf_init(fbuf *b, int fd) {
    memset(b, 0, sizeof *b);
    b->base.append = fbuf_append;
    b->fd = fd;
    b->cap = 1u << 20;
    b->buf = qo_malloc(b->cap);
}

/* ---- temporary output files ----------------------------------------------------------------- */

typedef struct tmpfile_ {
    char *path;  /* final destination */
    char *tmp;   /* temporary in the same directory, NULL once renamed or removed */
    int fd;
} tmpfile_;

/* Directory part of path for messages ("." if none). */
static void dir_of(const char *path, char *buf, size_t cap) {
    const char *sl = strrchr(path, '/');
    if (!sl) snprintf(buf, cap, ".");
    else if (sl == path) snprintf(buf, cap, "/");
    else snprintf(buf, cap, "%.*s", (int)(sl - path), path);
}

static qo_status tmp_open(qo_ctx *cx, const char *path, tmpfile_ *t) {
    qo_loc loc = {.file = path, .node_index = -1};
    size_t pl = strlen(path);
    t->path = qo_strdup(path);
    t->tmp = qo_malloc(pl + 32);
    snprintf(t->tmp, pl + 32, "%s.tmp.XXXXXX", path);
    t->fd = mkstemp(t->tmp);
    if (t->fd < 0) {
        int e = errno;
        char dir[4096];
        dir_of(path, dir, sizeof dir);
        qo_free(t->tmp);
        t->tmp = NULL;
        return qo_error(cx, QO_ERR_IO, &loc, "cannot create a temporary file in directory '%s': %s", dir,
                        strerror(e));
    }
    return QO_OK;
}

/* Closes the descriptor (after an optional fsync); returns an errno or 0. */
static int tmp_close(tmpfile_ *t, bool do_fsync) {
    int err = 0;
    if (t->fd >= 0) {
        if (do_fsync && fsync(t->fd) != 0) err = errno;
        if (close(t->fd) != 0 && !err) err = errno;
        t->fd = -1;
    }
    if (!err && t->tmp) {
        mode_t um = umask(0);
        umask(um);
        if (chmod(t->tmp, 0666 & ~um) != 0) err = errno;
    }
    return err;
}

static int tmp_commit(tmpfile_ *t) {
    if (rename(t->tmp, t->path) != 0) return errno;
    qo_free(t->tmp);
    t->tmp = NULL;
    return 0;
}

/* Removes the temporary if it still exists and frees the names. */
static void tmp_discard(tmpfile_ *t) {
    if (t->fd >= 0) close(t->fd);
    t->fd = -1;
    if (t->tmp) unlink(t->tmp);
    qo_free(t->tmp);
    qo_free(t->path);
    t->tmp = t->path = NULL;
}

/* ---- writer state --------------------------------------------------------------------------- */

typedef struct nameset {
    const char **slot;
    uint32_t cap, n;
} nameset;

typedef struct wctx {
    qo_ctx *cx;
    const qo_module *m;
    const char *path; /* destination (for diagnostics), or "<memory>" */
    qo_arena ar;      /* every proto struct and array we build */
    const char ***names; /* per graph, per value id: the name written (NULL = dead / none) */
    bool *graph_busy;    /* recursion guard: a graph referenced from inside itself */
    bool *graph_done;    /* each subgraph is written for exactly one attribute */
    ProtobufCMessage **owned; /* unpacked messages freed with protobuf_c_message_free_unpacked */
    uint32_t nowned, capowned;
    /* external data */
    bool ext;
    size_t ext_threshold;
    const char *ext_location; /* basename of the side file */
    fbuf *extbuf;
    int64_t *ext_off;         /* per cref: offset in the side file, -1 = not written yet */
    bool value_info_all;
} wctx;

static char *S(const char *s) { return (char *)s; }
static char *Sopt(const qo_module *m, qo_atom a) { return a ? S(qo_str(m, a)) : NULL; }

#define NEW(w, T, INIT) new_msg_((w), sizeof(T), &(T)INIT)
static void *new_msg_(wctx *w, size_t size, const void *init) {
    void *p = qo_arena_alloc(&w->ar, size);
    memcpy(p, init, size);
    return p;
}
#define ARR(w, T, n) ((T *)qo_arena_alloc(&(w)->ar, sizeof(T) * ((n) ? (n) : 1)))

static void own(wctx *w, void *msg) {
    QO_GROW(w->owned, w->capowned, w->nowned + 1);
    w->owned[w->nowned++] = msg;
}

static qo_loc file_loc(const wctx *w) {
    qo_loc l = {.file = w->path, .node_index = -1};
    return l;
}

/* Location of node n of graph g, but naming the file being written. */
static qo_loc node_loc(const wctx *w, const qo_graph *g, qo_node n) {
    qo_loc l = qo_node_loc(g, n);
    l.file = w->path;
    l.line = l.col = 0;
    return l;
}

/* ---- names ---------------------------------------------------------------------------------- */

static uint64_t str_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static bool ns_has(const nameset *ns, const char *s) {
    if (!ns->cap) return false;
    for (uint32_t h = (uint32_t)str_hash(s) & (ns->cap - 1);; h = (h + 1) & (ns->cap - 1)) {
        if (!ns->slot[h]) return false;
        if (strcmp(ns->slot[h], s) == 0) return true;
    }
}

static void ns_add(nameset *ns, const char *s) {
    if ((ns->n + 1) * 2 > ns->cap) {
        uint32_t ocap = ns->cap;
        const char **old = ns->slot;
        ns->cap = ocap ? ocap * 2 : 256;
        ns->slot = qo_calloc(ns->cap, sizeof *ns->slot);
        ns->n = 0;
        for (uint32_t i = 0; i < ocap; i++)
            if (old[i]) ns_add(ns, old[i]);
        qo_free(old);
    }
    uint32_t h = (uint32_t)str_hash(s) & (ns->cap - 1);
    while (ns->slot[h]) {
        if (strcmp(ns->slot[h], s) == 0) return;
        h = (h + 1) & (ns->cap - 1);
    }
    ns->slot[h] = s;
    ns->n++;
}

/* Fills w->names: existing names, fresh "qo_<n>" names for anonymous live values; reports two live
 * values of one graph sharing a name. */
static qo_status assign_names(wctx *w) {
    const qo_module *m = w->m;
    w->names = ARR(w, const char **, m->ngraphs);
    bool any_anon = false;
    for (uint32_t gi = 0; gi < m->ngraphs; gi++) {
        const qo_graph *g = m->graphs[gi];
        w->names[gi] = ARR(w, const char *, g->nvals);
        for (qo_val v = 1; v < g->nvals; v++) {
            const qo_value *vd = &g->vals[v];
            if (vd->flags & QO_VAL_DEAD) continue;
            if (vd->name) w->names[gi][v] = qo_str(m, vd->name);
            else any_anon = true;
        }
    }
    /* duplicate check per graph: seen[atom] = graph index + 1 and the value holding it */
    uint32_t *seen_g = qo_calloc(m->natoms ? m->natoms : 1, sizeof(uint32_t));
    qo_val *seen_v = qo_calloc(m->natoms ? m->natoms : 1, sizeof(qo_val));
    qo_status st = QO_OK;
    for (uint32_t gi = 0; gi < m->ngraphs && st == QO_OK; gi++) {
        const qo_graph *g = m->graphs[gi];
        for (qo_val v = 1; v < g->nvals; v++) {
            const qo_value *vd = &g->vals[v];
            if ((vd->flags & QO_VAL_DEAD) || !vd->name) continue;
            if (vd->flags & QO_VAL_CAPTURE) continue; /* a reference, not a definition */
            if (seen_g[vd->name] == gi + 1) {
                qo_loc l = file_loc(w);
                const qo_value *od = &g->vals[seen_v[vd->name]];
                if (od->def) l = node_loc(w, g, od->def);
                else if (vd->def) l = node_loc(w, g, vd->def);
                st = qo_error(w->cx, QO_ERR_INVALID_MODEL, &l,
                              "graph '%s': two values are named '%s' (%%%u and %%%u); ONNX names must be "
                              "unique within a graph",
                              qo_str(m, g->name), qo_str(m, vd->name), seen_v[vd->name], v);
                break;
            }
            seen_g[vd->name] = gi + 1;
            seen_v[vd->name] = v;
        }
    }
    qo_free(seen_g);
    qo_free(seen_v);
    if (st != QO_OK || !any_anon) return st;

    nameset ns = {0};
    for (uint32_t gi = 0; gi < m->ngraphs; gi++)
        for (qo_val v = 1; v < m->graphs[gi]->nvals; v++)
            if (w->names[gi][v]) ns_add(&ns, w->names[gi][v]);
    uint64_t counter = 0;
    char buf[32];
    for (uint32_t gi = 0; gi < m->ngraphs && st == QO_OK; gi++) {
        const qo_graph *g = m->graphs[gi];
        for (qo_val v = 1; v < g->nvals; v++) {
            const qo_value *vd = &g->vals[v];
            if ((vd->flags & QO_VAL_DEAD) || vd->name) continue;
            if (vd->flags & QO_VAL_CAPTURE) {
                qo_loc l = file_loc(w);
                st = qo_error(w->cx, QO_ERR_INVALID_MODEL, &l,
                              "graph '%s': capture %%%u has no name, so it cannot refer to an outer value",
                              qo_str(m, g->name), v);
                break;
            }
            do snprintf(buf, sizeof buf, "qo_%" PRIu64, counter++);
            while (ns_has(&ns, buf));
            char *s = qo_arena_strndup(&w->ar, buf, strlen(buf));
            ns_add(&ns, s);
            w->names[gi][v] = s;
        }
    }
    qo_free(ns.slot);
    return st;
}

static const char *vname(const wctx *w, const qo_graph *g, qo_val v) {
    if (!v) return "";
    const char *s = w->names[g->index][v];
    return s ? s : "";
}

/* ---- types ---------------------------------------------------------------------------------- */

static Onnx__TensorShapeProto *build_shape(wctx *w, const qo_typedata *td) {
    if (td->rank < 0) return NULL;
    Onnx__TensorShapeProto *sh = NEW(w, Onnx__TensorShapeProto, ONNX__TENSOR_SHAPE_PROTO__INIT);
    sh->n_dim = (size_t)td->rank;
    sh->dim = ARR(w, Onnx__TensorShapeProto__Dimension *, sh->n_dim);
    for (int32_t i = 0; i < td->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d =
            NEW(w, Onnx__TensorShapeProto__Dimension, ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT);
        if (td->syms && td->syms[i]) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = S(qo_str(w->m, td->syms[i]));
        } else if (td->dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = td->dims[i];
        }
        sh->dim[i] = d;
    }
    return sh;
}

static Onnx__TypeProto *build_type(wctx *w, qo_type t, int depth) {
    const qo_typedata *td = qo_type_get(w->m, t);
    if (!td || depth > 64) return NULL;
    Onnx__TypeProto *tp = NEW(w, Onnx__TypeProto, ONNX__TYPE_PROTO__INIT);
    switch (td->kind) {
    case QO_TY_TENSOR: {
        Onnx__TypeProto__Tensor *tt = NEW(w, Onnx__TypeProto__Tensor, ONNX__TYPE_PROTO__TENSOR__INIT);
        tt->has_elem_type = 1;
        tt->elem_type = td->elem;
        tt->shape = build_shape(w, td);
        tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        tp->tensor_type = tt;
        break;
    }
    case QO_TY_SPARSE_TENSOR: {
        Onnx__TypeProto__SparseTensor *st =
            NEW(w, Onnx__TypeProto__SparseTensor, ONNX__TYPE_PROTO__SPARSE_TENSOR__INIT);
        st->has_elem_type = 1;
        st->elem_type = td->elem;
        st->shape = build_shape(w, td);
        tp->value_case = ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE;
        tp->sparse_tensor_type = st;
        break;
    }
    case QO_TY_SEQUENCE: {
        Onnx__TypeProto__Sequence *sq = NEW(w, Onnx__TypeProto__Sequence, ONNX__TYPE_PROTO__SEQUENCE__INIT);
        sq->elem_type = build_type(w, td->inner, depth + 1);
        tp->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
        tp->sequence_type = sq;
        break;
    }
    case QO_TY_OPTIONAL: {
        Onnx__TypeProto__Optional *op = NEW(w, Onnx__TypeProto__Optional, ONNX__TYPE_PROTO__OPTIONAL__INIT);
        op->elem_type = build_type(w, td->inner, depth + 1);
        tp->value_case = ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE;
        tp->optional_type = op;
        break;
    }
    case QO_TY_MAP: {
        Onnx__TypeProto__Map *mp = NEW(w, Onnx__TypeProto__Map, ONNX__TYPE_PROTO__MAP__INIT);
        mp->has_key_type = 1;
        mp->key_type = td->elem;
        mp->value_type = build_type(w, td->inner, depth + 1);
        tp->value_case = ONNX__TYPE_PROTO__VALUE_MAP_TYPE;
        tp->map_type = mp;
        break;
    }
    default: return NULL;
    }
    return tp;
}

static Onnx__ValueInfoProto *build_vi(wctx *w, const qo_graph *g, qo_val v) {
    Onnx__ValueInfoProto *vi = NEW(w, Onnx__ValueInfoProto, ONNX__VALUE_INFO_PROTO__INIT);
    vi->name = S(vname(w, g, v));
    if (v) {
        vi->type = build_type(w, g->vals[v].type, 0);
        vi->doc_string = Sopt(w->m, g->vals[v].doc);
    }
    return vi;
}

/* ---- tensors -------------------------------------------------------------------------------- */

/* Builds the TensorProto of constant c. what/name describe it in diagnostics ("initializer 'w'"). */
static qo_status build_tensor(wctx *w, qo_cref c, const char *name, qo_atom doc, const qo_loc *loc,
                              const char *what, Onnx__TensorProto **out) {
    const qo_module *m = w->m;
    if (!c || c >= m->nconsts)
        return qo_error(w->cx, QO_ERR_INVALID_MODEL, loc, "%s '%s' refers to no constant (#%u)", what,
                        name ? name : "", c);
    const qo_constdata *cd = qo_const_get(m, c);
    const qo_typedata *td = qo_type_get(m, cd->type);
    if (!td || td->kind != QO_TY_TENSOR || td->elem == QO_UNDEF || td->elem >= QO_ELEM_COUNT || td->rank < 0)
        return qo_error(w->cx, QO_ERR_UNSUPPORTED, loc,
                        "%s '%s': constant #%u has an unknown type (no tensor element type and rank), "
                        "so it cannot be written as a TensorProto",
                        what, name ? name : "", c);
    int64_t numel = 1;
    for (int32_t i = 0; i < td->rank; i++) {
        if (td->dims[i] < 0)
            return qo_error(w->cx, QO_ERR_UNSUPPORTED, loc, "%s '%s': constant #%u has a dynamic dimension %d",
                            what, name ? name : "", c, (int)i);
        numel *= td->dims[i];
    }
    Onnx__TensorProto *t = NEW(w, Onnx__TensorProto, ONNX__TENSOR_PROTO__INIT);
    t->name = name ? S(name) : NULL;
    t->doc_string = Sopt(m, doc);
    t->has_data_type = 1;
    t->data_type = td->elem;
    t->n_dims = (size_t)td->rank;
    t->dims = (int64_t *)td->dims;
    if (td->elem == QO_STR) {
        size_t n = cd->nbytes / sizeof(qo_bytes);
        if ((int64_t)n != numel)
            return qo_error(w->cx, QO_ERR_INVALID_MODEL, loc, "%s '%s': %zu strings for %" PRId64 " elements",
                            what, name ? name : "", n, numel);
        const qo_bytes *src = cd->data;
        t->n_string_data = n;
        t->string_data = ARR(w, ProtobufCBinaryData, n);
        for (size_t i = 0; i < n; i++) {
            t->string_data[i].len = src[i].n;
            t->string_data[i].data = (uint8_t *)src[i].p;
        }
        *out = t;
        return QO_OK;
    }
    size_t want = qo_elem_storage(td->elem, numel);
    if (cd->nbytes != want)
        return qo_error(w->cx, QO_ERR_INVALID_MODEL, loc, "%s '%s': constant #%u holds %zu bytes, its type needs %zu",
                        what, name ? name : "", c, cd->nbytes, want);
    if (w->ext && cd->nbytes > w->ext_threshold) {
        if (w->ext_off[c] < 0) {
            w->ext_off[c] = (int64_t)w->extbuf->total;
            fbuf_append(&w->extbuf->base, cd->nbytes, cd->data);
        }
        char num[2][32];
        snprintf(num[0], sizeof num[0], "%" PRId64, w->ext_off[c]);
        snprintf(num[1], sizeof num[1], "%zu", cd->nbytes);
        const char *keys[3] = {"location", "offset", "length"};
        const char *vals[3] = {w->ext_location, num[0], num[1]};
        t->n_external_data = 3;
        t->external_data = ARR(w, Onnx__StringStringEntryProto *, 3);
        for (int i = 0; i < 3; i++) {
            Onnx__StringStringEntryProto *e =
                NEW(w, Onnx__StringStringEntryProto, ONNX__STRING_STRING_ENTRY_PROTO__INIT);
            e->key = S(keys[i]);
            e->value = qo_arena_strndup(&w->ar, vals[i], strlen(vals[i]));
            t->external_data[i] = e;
        }
        t->has_data_location = 1;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    } else {
        t->has_raw_data = 1;
        t->raw_data.len = cd->nbytes;
        t->raw_data.data = (uint8_t *)cd->data; /* no copy: points at the pool (or the mapping) */
    }
    *out = t;
    return QO_OK;
}

/* ---- attributes ----------------------------------------------------------------------------- */

static qo_status build_graph(wctx *w, uint32_t gi, const qo_loc *from, Onnx__GraphProto **out);

/* Unpacks one serialized message of descriptor d; the result is freed with the writer. */
static void *unpack_owned(wctx *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n) {
    ProtobufCMessage *msg = protobuf_c_message_unpack(d, NULL, n, p);
    if (msg) own(w, msg);
    return msg;
}

/* Splits raw into `cnt` varint-length-prefixed messages and unpacks each. */
static qo_status unpack_list(wctx *w, const ProtobufCMessageDescriptor *d, qo_bytes raw, uint32_t cnt,
                             void **dst, const qo_loc *loc, const char *aname) {
    const uint8_t *p = (const uint8_t *)raw.p, *end = p + raw.n;
    for (uint32_t i = 0; i < cnt; i++) {
        uint64_t len = 0;
        int shift = 0;
        for (;;) {
            if (p >= end || shift > 63) goto bad;
            uint8_t b = *p++;
            len |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            if (!(b & 0x80)) break;
        }
        if (len > (uint64_t)(end - p)) goto bad;
        dst[i] = unpack_owned(w, d, p, (size_t)len);
        if (!dst[i]) goto bad;
        p += len;
    }
    if (p == end) return QO_OK;
bad:
    return qo_error(w->cx, QO_ERR_INVALID_MODEL, loc, "attribute '%s': carried %s bytes are malformed", aname,
                    d->short_name);
}

static qo_status build_attr(wctx *w, const qo_graph *g, qo_node n, const qo_attr *a, Onnx__AttributeProto **out) {
    const qo_module *m = w->m;
    Onnx__AttributeProto *ap = NEW(w, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
    const char *aname = qo_str(m, a->name);
    qo_loc loc = node_loc(w, g, n);
    ap->name = S(aname);
    ap->doc_string = Sopt(m, a->doc);
    ap->has_type = 1;
    ap->type = (Onnx__AttributeProto__AttributeType)a->kind;
    *out = ap;
    if (a->ref_attr_name) {
        ap->ref_attr_name = S(qo_str(m, a->ref_attr_name));
        return QO_OK; /* a reference to a function attribute carries no value */
    }
    switch (a->kind) {
    case QO_ATTR_FLOAT: ap->has_f = 1, ap->f = a->u.f; break;
    case QO_ATTR_INT: ap->has_i = 1, ap->i = a->u.i; break;
    case QO_ATTR_STRING:
        ap->has_s = 1;
        ap->s.len = a->u.s.n;
        ap->s.data = (uint8_t *)(a->u.s.p ? a->u.s.p : "");
        break;
    case QO_ATTR_TENSOR: {
        char what[64];
        snprintf(what, sizeof what, "tensor attribute '%.40s'", aname);
        return build_tensor(w, a->u.t, NULL, 0, &loc, what, &ap->t);
    }
    case QO_ATTR_GRAPH: return build_graph(w, a->u.g, &loc, &ap->g);
    case QO_ATTR_FLOATS: ap->n_floats = a->n, ap->floats = (float *)a->u.fs; break;
    case QO_ATTR_INTS: ap->n_ints = a->n, ap->ints = (int64_t *)a->u.is; break;
    case QO_ATTR_STRINGS:
        ap->n_strings = a->n;
        ap->strings = ARR(w, ProtobufCBinaryData, a->n);
        for (uint32_t i = 0; i < a->n; i++) {
            ap->strings[i].len = a->u.ss[i].n;
            ap->strings[i].data = (uint8_t *)(a->u.ss[i].p ? a->u.ss[i].p : "");
        }
        break;
    case QO_ATTR_TENSORS: {
        ap->n_tensors = a->n;
        ap->tensors = ARR(w, Onnx__TensorProto *, a->n);
        char what[64];
        snprintf(what, sizeof what, "tensors attribute '%.40s'", aname);
        for (uint32_t i = 0; i < a->n; i++) QO_TRY(build_tensor(w, a->u.ts[i], NULL, 0, &loc, what, &ap->tensors[i]));
        break;
    }
    case QO_ATTR_GRAPHS:
        ap->n_graphs = a->n;
        ap->graphs = ARR(w, Onnx__GraphProto *, a->n);
        for (uint32_t i = 0; i < a->n; i++) QO_TRY(build_graph(w, a->u.gs[i], &loc, &ap->graphs[i]));
        break;
    case QO_ATTR_SPARSE_TENSOR:
        ap->sparse_tensor =
            unpack_owned(w, &onnx__sparse_tensor_proto__descriptor, (const uint8_t *)a->u.raw.p, a->u.raw.n);
        if (!ap->sparse_tensor)
            return qo_error(w->cx, QO_ERR_INVALID_MODEL, &loc, "attribute '%s': carried SparseTensorProto bytes are malformed",
                            aname);
        break;
    case QO_ATTR_TYPE_PROTO:
        ap->tp = unpack_owned(w, &onnx__type_proto__descriptor, (const uint8_t *)a->u.raw.p, a->u.raw.n);
        if (!ap->tp)
            return qo_error(w->cx, QO_ERR_INVALID_MODEL, &loc, "attribute '%s': carried TypeProto bytes are malformed",
                            aname);
        break;
    case QO_ATTR_SPARSE_TENSORS:
        ap->n_sparse_tensors = a->n;
        ap->sparse_tensors = ARR(w, Onnx__SparseTensorProto *, a->n);
        return unpack_list(w, &onnx__sparse_tensor_proto__descriptor, a->u.raw, a->n, (void **)ap->sparse_tensors,
                           &loc, aname);
    case QO_ATTR_TYPE_PROTOS:
        ap->n_type_protos = a->n;
        ap->type_protos = ARR(w, Onnx__TypeProto *, a->n);
        return unpack_list(w, &onnx__type_proto__descriptor, a->u.raw, a->n, (void **)ap->type_protos, &loc, aname);
    default:
        return qo_error(w->cx, QO_ERR_UNSUPPORTED, &loc, "attribute '%s' has an unknown kind %d", aname, a->kind);
    }
    return QO_OK;
}

/* ---- graphs --------------------------------------------------------------------------------- */

static qo_status build_node(wctx *w, const qo_graph *g, qo_node n, Onnx__NodeProto **out) {
    const qo_module *m = w->m;
    const qo_nodedata *nd = &g->nodes[n];
    Onnx__NodeProto *np = NEW(w, Onnx__NodeProto, ONNX__NODE_PROTO__INIT);
    np->name = Sopt(m, nd->name);
    np->op_type = S(qo_str(m, nd->op_type));
    np->domain = Sopt(m, nd->domain);
    np->doc_string = Sopt(m, nd->doc);
    np->n_input = nd->nin;
    np->input = ARR(w, char *, nd->nin);
    for (uint32_t i = 0; i < nd->nin; i++) np->input[i] = S(vname(w, g, g->uses[nd->in0 + i].val));
    np->n_output = nd->nout;
    np->output = ARR(w, char *, nd->nout);
    for (uint32_t i = 0; i < nd->nout; i++) np->output[i] = S(vname(w, g, g->outs[nd->out0 + i]));
    np->n_attribute = nd->nattr;
    np->attribute = ARR(w, Onnx__AttributeProto *, nd->nattr);
    for (uint32_t i = 0; i < nd->nattr; i++) QO_TRY(build_attr(w, g, n, &g->attrs[nd->attr0 + i], &np->attribute[i]));
    *out = np;
    return QO_OK;
}

static qo_status build_graph(wctx *w, uint32_t gi, const qo_loc *from, Onnx__GraphProto **out) {
    const qo_module *m = w->m;
    if (gi >= m->ngraphs)
        return qo_error(w->cx, QO_ERR_INVALID_MODEL, from, "graph attribute refers to graph #%u, the module has %u", gi,
                        m->ngraphs);
    if (w->graph_busy[gi])
        return qo_error(w->cx, QO_ERR_INVALID_MODEL, from, "graph #%u is referenced from inside itself", gi);
    const qo_graph *g = m->graphs[gi];
    w->graph_busy[gi] = true;
    w->graph_done[gi] = true;
    qo_status st = QO_OK;
    Onnx__GraphProto *gp = NEW(w, Onnx__GraphProto, ONNX__GRAPH_PROTO__INIT);
    gp->name = Sopt(m, g->name);
    gp->doc_string = Sopt(m, g->doc);

    gp->n_input = g->ninputs;
    gp->input = ARR(w, Onnx__ValueInfoProto *, g->ninputs);
    for (uint32_t i = 0; i < g->ninputs; i++) gp->input[i] = build_vi(w, g, g->inputs[i]);

    /* initializers: the constants in order, then defaults of inputs not already listed. Before IR
     * version 4 every initializer had to be a graph input too, so constants that are not inputs are
     * written as Constant nodes at the start of the graph instead (what the frontend read them from). */
    bool as_nodes = m->ir_version > 0 && m->ir_version < 4;
    bool *listed = qo_calloc(g->nvals ? g->nvals : 1, sizeof(bool));
    uint32_t ninit = 0, nconst_nodes = 0;
    for (uint32_t i = 0; i < g->nconsts; i++)
        if (!(g->vals[g->consts[i]].flags & QO_VAL_DEAD)) listed[g->consts[i]] = true, ninit++;
    for (uint32_t i = 0; i < g->ninputs; i++)
        if (g->vals[g->inputs[i]].cref && !listed[g->inputs[i]]) ninit++;
    gp->initializer = ARR(w, Onnx__TensorProto *, ninit);
    Onnx__NodeProto **const_nodes = ARR(w, Onnx__NodeProto *, ninit);
    for (uint32_t i = 0; i < g->nconsts && st == QO_OK; i++) {
        qo_val v = g->consts[i];
        const qo_value *vd = &g->vals[v];
        if (vd->flags & QO_VAL_DEAD) continue;
        qo_loc l = file_loc(w);
        if (as_nodes && !(vd->flags & QO_VAL_INPUT)) {
            Onnx__NodeProto *np = NEW(w, Onnx__NodeProto, ONNX__NODE_PROTO__INIT);
            Onnx__AttributeProto *ap = NEW(w, Onnx__AttributeProto, ONNX__ATTRIBUTE_PROTO__INIT);
            np->op_type = S("Constant");
            np->n_output = 1;
            np->output = ARR(w, char *, 1);
            np->output[0] = S(vname(w, g, v));
            np->n_attribute = 1;
            np->attribute = ARR(w, Onnx__AttributeProto *, 1);
            np->attribute[0] = ap;
            ap->name = S("value");
            ap->has_type = 1;
            ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
            st = build_tensor(w, vd->cref, vname(w, g, v), vd->doc, &l, "constant", &ap->t);
            const_nodes[nconst_nodes++] = np;
            continue;
        }
        st = build_tensor(w, vd->cref, vname(w, g, v), vd->doc, &l, "initializer", &gp->initializer[gp->n_initializer++]);
    }
    for (uint32_t i = 0; i < g->ninputs && st == QO_OK; i++) {
        qo_val v = g->inputs[i];
        const qo_value *vd = &g->vals[v];
        if (!vd->cref || listed[v]) continue;
        listed[v] = true;
        qo_loc l = file_loc(w);
        st = build_tensor(w, vd->cref, vname(w, g, v), vd->doc, &l, "input default", &gp->initializer[gp->n_initializer++]);
    }
    qo_free(listed);
    if (st != QO_OK) goto done;

    gp->n_output = g->noutputs;
    gp->output = ARR(w, Onnx__ValueInfoProto *, g->noutputs);
    for (uint32_t i = 0; i < g->noutputs; i++) {
        qo_val v = g->uses[g->outputs[i]].val;
        if (!v) {
            qo_loc l = file_loc(w);
            st = qo_error(w->cx, QO_ERR_INVALID_MODEL, &l, "graph '%s': output %u reads no value", qo_str(m, g->name), i);
            goto done;
        }
        gp->output[i] = build_vi(w, g, v);
    }

    /* value_info */
    uint32_t nvi = 0;
    bool *isout = NULL;
    if (w->value_info_all) {
        isout = qo_calloc(g->nvals ? g->nvals : 1, sizeof(bool));
        for (uint32_t i = 0; i < g->noutputs; i++) isout[g->uses[g->outputs[i]].val] = true;
    }
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) gp->value_info = ARR(w, Onnx__ValueInfoProto *, nvi);
        for (qo_val v = 1; v < g->nvals; v++) {
            const qo_value *vd = &g->vals[v];
            if (vd->flags & QO_VAL_DEAD) continue;
            bool want = (vd->flags & QO_VAL_INFO) ||
                        (w->value_info_all && vd->def && vd->type && !isout[v]);
            if (!want) continue;
            if (pass == 0) nvi++;
            else gp->value_info[gp->n_value_info++] = build_vi(w, g, v);
        }
    }
    qo_free(isout);

    gp->node = ARR(w, Onnx__NodeProto *, nconst_nodes + qo_graph_num_nodes(g));
    memcpy(gp->node, const_nodes, sizeof(*const_nodes) * nconst_nodes);
    gp->n_node = nconst_nodes;
    QO_FOR_EACH_NODE(g, n) {
        if (g->nodes[n].flags & QO_NODE_DEAD) continue;
        st = build_node(w, g, n, &gp->node[gp->n_node++]);
        if (st != QO_OK) break;
    }
done:
    w->graph_busy[gi] = false;
    *out = gp;
    return st;
}

/* ---- model ---------------------------------------------------------------------------------- */

static qo_status build_model(wctx *w, Onnx__ModelProto **out) {
    const qo_module *m = w->m;
    qo_loc l = file_loc(w);
    if (!m->ngraphs) return qo_error(w->cx, QO_ERR_INVALID_MODEL, &l, "module has no main graph");
    w->graph_busy = ARR(w, bool, m->ngraphs);
    w->graph_done = ARR(w, bool, m->ngraphs);
    QO_TRY(assign_names(w));
    Onnx__ModelProto *mp = NEW(w, Onnx__ModelProto, ONNX__MODEL_PROTO__INIT);
    *out = mp;
    mp->has_ir_version = 1;
    mp->ir_version = m->ir_version ? m->ir_version : 8;
    mp->producer_name = Sopt(m, m->producer_name);
    mp->producer_version = Sopt(m, m->producer_version);
    mp->domain = Sopt(m, m->domain);
    mp->doc_string = Sopt(m, m->doc);
    if (m->model_version) mp->has_model_version = 1, mp->model_version = m->model_version;
    mp->n_opset_import = m->nopsets;
    mp->opset_import = ARR(w, Onnx__OperatorSetIdProto *, m->nopsets);
    for (uint32_t i = 0; i < m->nopsets; i++) {
        Onnx__OperatorSetIdProto *o = NEW(w, Onnx__OperatorSetIdProto, ONNX__OPERATOR_SET_ID_PROTO__INIT);
        o->domain = S(qo_str(m, m->opsets[i].domain));
        o->has_version = 1;
        o->version = m->opsets[i].version;
        mp->opset_import[i] = o;
    }
    mp->n_metadata_props = m->nprops;
    mp->metadata_props = ARR(w, Onnx__StringStringEntryProto *, m->nprops);
    for (uint32_t i = 0; i < m->nprops; i++) {
        Onnx__StringStringEntryProto *e = NEW(w, Onnx__StringStringEntryProto, ONNX__STRING_STRING_ENTRY_PROTO__INIT);
        e->key = S(qo_str(m, m->props[i].key));
        e->value = S(qo_str(m, m->props[i].value));
        mp->metadata_props[i] = e;
    }
    mp->n_functions = m->nfunctions;
    mp->functions = ARR(w, Onnx__FunctionProto *, m->nfunctions);
    for (uint32_t i = 0; i < m->nfunctions; i++) {
        mp->functions[i] = unpack_owned(w, &onnx__function_proto__descriptor, (const uint8_t *)m->functions[i].p,
                                        m->functions[i].n);
        if (!mp->functions[i]) {
            mp->n_functions = i;
            return qo_error(w->cx, QO_ERR_INVALID_MODEL, &l, "function #%u: carried FunctionProto bytes are malformed", i);
        }
    }
    QO_TRY(build_graph(w, 0, &l, &mp->graph));
    for (uint32_t gi = 1; gi < m->ngraphs; gi++)
        if (!w->graph_done[gi])
            qo_warning(w->cx, &l, "graph #%u ('%s') is referenced by no attribute and is not written", gi,
                       qo_str(m, m->graphs[gi]->name));
    return QO_OK;
}

static void wctx_init(wctx *w, qo_ctx *cx, const qo_module *m, const char *path) {
    memset(w, 0, sizeof *w);
    w->cx = cx;
    w->m = m;
    w->path = path;
}

static void wctx_free(wctx *w) {
    for (uint32_t i = 0; i < w->nowned; i++) protobuf_c_message_free_unpacked(w->owned[i], NULL);
    qo_free(w->owned);
    qo_free(w->ext_off);
    qo_arena_free(&w->ar);
}

/* ---- entry points --------------------------------------------------------------------------- */

qo_status qo_onnx_serialize(qo_ctx *cx, const qo_module *m, uint8_t **buf, size_t *len) {
    wctx w;
    wctx_init(&w, cx, m, "<memory>");
    *buf = NULL;
    *len = 0;
    Onnx__ModelProto *mp = NULL;
    qo_status st = build_model(&w, &mp);
    if (st == QO_OK) {
        size_t n = protobuf_c_message_get_packed_size(&mp->base);
        uint8_t *p = qo_malloc(n ? n : 1);
        size_t k = protobuf_c_message_pack(&mp->base, p);
        QO_ASSERT(k == n);
        *buf = p;
        *len = n;
    }
    wctx_free(&w);
    return st;
}

static const char *base_name(const char *path) {
    const char *sl = strrchr(path, '/');
    return sl ? sl + 1 : path;
}

qo_status qo_onnx_write(qo_ctx *cx, const qo_module *m, const char *path, const qo_onnx_write_opts *opts) {
    qo_onnx_write_opts o = {0};
    if (opts) o = *opts;
    if (o.external_data && !o.external_threshold) o.external_threshold = 1024;
    qo_loc loc = {.file = path, .node_index = -1};
    if (!path || !path[0]) return qo_error(cx, QO_ERR_USAGE, &loc, "no output path given");
    if (base_name(path)[0] == 0) return qo_error(cx, QO_ERR_USAGE, &loc, "output path names a directory");

    wctx w;
    wctx_init(&w, cx, m, path);
    w.value_info_all = o.value_info_all;
    tmpfile_ mt = {.fd = -1}, dt = {.fd = -1};
    fbuf mb = {0}, db = {0};
    char *dpath = NULL;
    qo_status st = QO_OK;
    int err = 0;
    const char *failing = path;

    if (o.external_data) {
        size_t pl = strlen(path);
        dpath = qo_malloc(pl + 8);
        snprintf(dpath, pl + 8, "%s.data", path);
        st = tmp_open(cx, dpath, &dt);
        if (st != QO_OK) goto out;
        fbuf_init(&db, dt.fd);
        w.ext = true;
        w.ext_threshold = o.external_threshold;
        w.ext_location = base_name(dpath);
        w.extbuf = &db;
        w.ext_off = qo_malloc(sizeof(int64_t) * (m->nconsts ? m->nconsts : 1));
        for (uint32_t i = 0; i < m->nconsts; i++) w.ext_off[i] = -1;
    }

    Onnx__ModelProto *mp = NULL;
    st = build_model(&w, &mp); /* also streams the external data */
    if (st != QO_OK) goto out;
    if (o.external_data) {
        fbuf_flush(&db);
        failing = dpath;
        if ((err = db.err) != 0) goto out;
        if ((err = tmp_close(&dt, o.fsync)) != 0) goto out;
    }

    failing = path;
    st = tmp_open(cx, path, &mt);
    if (st != QO_OK) goto out;
    fbuf_init(&mb, mt.fd);
    protobuf_c_message_pack_to_buffer(&mp->base, &mb.base);
    fbuf_flush(&mb);
    if ((err = mb.err) != 0) goto out;
    if ((err = tmp_close(&mt, o.fsync)) != 0) goto out;
    if (o.external_data) {
        failing = dpath;
        if ((err = tmp_commit(&dt)) != 0) goto out;
    }
    failing = path;
    err = tmp_commit(&mt);

out:
    if (err && st == QO_OK) {
        qo_loc fl = {.file = failing, .node_index = -1};
        st = qo_error(cx, QO_ERR_IO, &fl, "cannot write: %s", strerror(err));
    }
    tmp_discard(&mt);
    tmp_discard(&dt);
    qo_free(mb.buf);
    qo_free(db.buf);
    qo_free(dpath);
    wctx_free(&w);
    return st;
}
