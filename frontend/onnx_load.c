/* frontend/onnx_load.c — ONNX ModelProto → qopt IR.
 *
 * How the bytes flow (weights are never copied needlessly):
 *   1. The model file is mmap'd read-only and the mapping handed to the module (qo_module_add_mapping),
 *      which keeps it alive for borrowed constants.
 *   2. A small bounds-checked protobuf wire-format walker scans ModelProto. Field 7 (graph) is split:
 *      GraphProto field 5 (initializer) entries are parsed here one by one; every other GraphProto
 *      field is copied into a small side buffer that protobuf-c unpacks (nodes, inputs, value_info ...
 *      are small). ModelProto without its graph field is unpacked by protobuf-c too.
 *   3. For each top-level initializer the walker copies the TensorProto minus field 9 (raw_data) into a
 *      scratch buffer for protobuf-c (dims, type, name, typed fields, external_data), and keeps
 *      raw_data as a pointer into the mapping: the constant is QO_CONST_BORROWED with file/file_offset
 *      set so the printer can refer to file("path", offset=N, length=L).
 *   Nested subgraph initializers and tensor attributes come from protobuf-c and are copied (small).
 *
 * Decisions:
 *   - A default-domain Constant node (value, value_float(s), value_int(s), value_string(s)) becomes a
 *     graph constant value (QO_VAL_CONST, appended to g->consts) named after the node's output; the node
 *     itself (its name and doc_string) is not kept. The ONNX writer emits all const values as
 *     initializers. A Constant with sparse_value stays a generic Constant node carrying its attribute.
 *   - A graph input that also has an initializer stays a QO_VAL_INPUT whose cref is the default value.
 *   - sparse_initializer entries are densified into ordinary constants.
 *   - SPARSE_TENSOR / TYPE_PROTO attributes carry the serialized message bytes in u.raw; the list kinds
 *     SPARSE_TENSORS / TYPE_PROTOS carry the n messages each prefixed by its varint byte length.
 *   - Borrowed constant data is not aligned (protobuf puts raw_data at any offset): read it with memcpy.
 *   - Names read from an enclosing graph become captures of the subgraph that reads them (only of that
 *     subgraph, not of the graphs in between).
 *   - Forward references inside one graph are allowed (then the graph is toposorted); any other
 *     reorder is never done, so file order is kept exactly.
 */
#include "frontend/onnx_load.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- loader state --------------------------------------------------------------------------- */

typedef struct span {
    const uint8_t *p;
    size_t n;
} span;

typedef struct spanvec {
    span *v;
    uint32_t n, cap;
} spanvec;

static void spanvec_push(spanvec *sv, const uint8_t *p, size_t n) {
    QO_GROW(sv->v, sv->cap, sv->n + 1);
    sv->v[sv->n].p = p;
    sv->v[sv->n].n = n;
    sv->n++;
}

typedef struct extfile {
    char *location; /* as written in the model */
    char *path;     /* resolved path */
    const uint8_t *p;
    size_t n;
    bool failed; /* already reported */
} extfile;

typedef struct loader {
    qo_ctx *cx;
    qo_module *m;
    const char *file;     /* name used in diagnostics */
    const char *base_dir; /* directory for external data; NULL = not allowed */
    qo_atom file_atom;    /* path atom for borrowed constants; 0 when loading from a buffer */
    const uint8_t *base;  /* start of the model bytes (file_offset origin) */
    size_t len;
    unsigned nerr;
    qo_status first;
    bool stop; /* max_errors reached */
    extfile *ext;
    uint32_t next, capext;
} loader;

static qo_status lerr(loader *L, qo_status code, const qo_loc *loc, const char *fmt, ...) QO_PRINTF(4, 5);
static qo_status lerr(loader *L, qo_status code, const qo_loc *loc, const char *fmt, ...) {
    qo_loc fl = {.file = L->file, .node_index = -1};
    if (!loc) loc = &fl;
    va_list ap;
    va_start(ap, fmt);
    qo_verror(L->cx, code, loc, fmt, ap);
    va_end(ap);
    if (!L->nerr) L->first = code;
    L->nerr++;
    unsigned maxe = L->cx->max_errors ? L->cx->max_errors : 20;
    if (L->nerr >= maxe) L->stop = true;
    return code;
}

static qo_loc file_loc(const loader *L) {
    qo_loc l = {.file = L->file, .node_index = -1};
    return l;
}

/* ---- protobuf wire format ------------------------------------------------------------------- */

typedef struct wfield {
    uint32_t num;
    int wt;
    uint64_t v;         /* varint / fixed value */
    span s;             /* payload of a length-delimited field */
    const uint8_t *beg; /* whole field incl. tag */
    const uint8_t *end;
} wfield;

static bool rd_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end) return false;
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return true;
        }
    }
    return false;
}

/* Reads the next field of [*pp, end). Returns 1 on a field, 0 at the end, -1 on malformed input. */
static int wire_next(const uint8_t **pp, const uint8_t *end, wfield *f) {
    const uint8_t *p = *pp;
    if (p >= end) return 0;
    f->beg = p;
    uint64_t tag;
    if (!rd_varint(&p, end, &tag)) return -1;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    if (f->num == 0 || (tag >> 3) > 0x1fffffff) return -1;
    switch (f->wt) {
    case 0:
        if (!rd_varint(&p, end, &f->v)) return -1;
        break;
    case 1:
        if ((size_t)(end - p) < 8) return -1;
        p += 8;
        break;
    case 5:
        if ((size_t)(end - p) < 4) return -1;
        p += 4;
        break;
    case 2: {
        uint64_t n;
        if (!rd_varint(&p, end, &n)) return -1;
        if (n > (uint64_t)(end - p)) return -1;
        f->s.p = p;
        f->s.n = (size_t)n;
        p += n;
        break;
    }
    default: return -1; /* groups (3, 4) are not used by ONNX; 6, 7 are invalid */
    }
    f->end = p;
    *pp = p;
    return 1;
}

/* Splits the message made of `parts` (protobuf merge semantics: concatenation) into the payloads of
 * field `skip` (length-delimited, pushed to *skipped) and a malloc'd copy of all other fields
 * (*out, *outn). Returns false on malformed wire data. */
static bool wire_split(const span *parts, uint32_t nparts, uint32_t skip, spanvec *skipped, uint8_t **out,
                       size_t *outn) {
    size_t keep = 0;
    for (uint32_t k = 0; k < nparts; k++) {
        const uint8_t *p = parts[k].p, *end = p + parts[k].n;
        wfield f;
        int r;
        while ((r = wire_next(&p, end, &f)) > 0) {
            if (f.num == skip) {
                if (f.wt != 2) return false;
            } else {
                keep += (size_t)(f.end - f.beg);
            }
        }
        if (r < 0) return false;
    }
    uint8_t *buf = qo_malloc(keep ? keep : 1);
    size_t o = 0;
    for (uint32_t k = 0; k < nparts; k++) {
        const uint8_t *p = parts[k].p, *end = p + parts[k].n;
        wfield f;
        while (wire_next(&p, end, &f) > 0) {
            if (f.num == skip) {
                if (skipped) spanvec_push(skipped, f.s.p, f.s.n);
            } else {
                memcpy(buf + o, f.beg, (size_t)(f.end - f.beg));
                o += (size_t)(f.end - f.beg);
            }
        }
    }
    *out = buf;
    *outn = o;
    return true;
}

static size_t varint_put(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        p[n++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return n;
}

/* ---- types ---------------------------------------------------------------------------------- */

static bool elem_known(int64_t e) { return e >= 1 && e < QO_ELEM_COUNT && qo_elem_name((int)e); }

static const char *elem_str(int64_t e) {
    const char *s = e >= 0 && e < QO_ELEM_COUNT ? qo_elem_name((int)e) : NULL;
    return s ? s : "?";
}

/* TypeProto → qo_type. Reports unknown element types against `what`. */
static qo_type type_from_proto(loader *L, const Onnx__TypeProto *tp, const qo_loc *loc, const char *what,
                               int depth) {
    if (!tp) return 0;
    if (depth > 64) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: type nested too deeply", what);
        return 0;
    }
    const Onnx__TensorShapeProto *shape = NULL;
    int64_t elem = 0;
    bool sparse = false;
    switch (tp->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
        if (!tp->tensor_type) return 0;
        elem = tp->tensor_type->elem_type;
        shape = tp->tensor_type->shape;
        break;
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
        if (!tp->sparse_tensor_type) return 0;
        elem = tp->sparse_tensor_type->elem_type;
        shape = tp->sparse_tensor_type->shape;
        sparse = true;
        break;
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: {
        qo_type in = tp->sequence_type ? type_from_proto(L, tp->sequence_type->elem_type, loc, what, depth + 1) : 0;
        return qo_type_sequence(L->m, in);
    }
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: {
        qo_type in = tp->optional_type ? type_from_proto(L, tp->optional_type->elem_type, loc, what, depth + 1) : 0;
        return qo_type_optional(L->m, in);
    }
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: {
        if (!tp->map_type) return 0;
        int64_t k = tp->map_type->key_type;
        if (!elem_known(k)) {
            lerr(L, QO_ERR_UNSUPPORTED, loc, "%s: unknown map key data type %" PRId64, what, k);
            return 0;
        }
        qo_type in = type_from_proto(L, tp->map_type->value_type, loc, what, depth + 1);
        return qo_type_map(L->m, (qo_elem)k, in);
    }
    default: return 0;
    }
    if (elem != 0 && !elem_known(elem)) {
        lerr(L, QO_ERR_UNSUPPORTED, loc, "%s: unknown data type %" PRId64, what, elem);
        return 0;
    }
    int32_t rank = -1;
    int64_t *dims = NULL;
    qo_atom *syms = NULL;
    if (shape) {
        if (shape->n_dim > 4096) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: rank %zu is too large", what, shape->n_dim);
            return 0;
        }
        rank = (int32_t)shape->n_dim;
        dims = qo_calloc(rank ? (size_t)rank : 1, sizeof *dims);
        syms = qo_calloc(rank ? (size_t)rank : 1, sizeof *syms);
        for (int32_t i = 0; i < rank; i++) {
            const Onnx__TensorShapeProto__Dimension *d = shape->dim[i];
            dims[i] = -1;
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0)
                dims[i] = d->dim_value;
            else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param)
                syms[i] = qo_intern(L->m, d->dim_param);
        }
    }
    qo_type t = sparse ? qo_type_sparse(L->m, (qo_elem)elem, rank, dims, syms)
                       : qo_type_tensor(L->m, (qo_elem)elem, rank, dims, syms);
    qo_free(dims);
    qo_free(syms);
    return t;
}

/* ---- external data -------------------------------------------------------------------------- */

static bool location_ok(const char *s) {
    if (!s[0] || s[0] == '/') return false;
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '/');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        p += n;
        if (*p == '/') p++;
    }
    return true;
}

/* Finds or maps the side file `location`. Returns NULL after reporting (once per file). */
static extfile *ext_open(loader *L, const char *location, const qo_loc *loc, const char *what) {
    for (uint32_t i = 0; i < L->next; i++)
        if (strcmp(L->ext[i].location, location) == 0) return L->ext[i].failed ? NULL : &L->ext[i];
    QO_GROW(L->ext, L->capext, L->next + 1);
    extfile *x = &L->ext[L->next++];
    memset(x, 0, sizeof *x);
    x->location = qo_strdup(location);
    size_t pn = strlen(L->base_dir) + strlen(location) + 2;
    x->path = qo_malloc(pn);
    snprintf(x->path, pn, "%s/%s", L->base_dir, location);
    int fd = open(x->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = fd < 0 ? errno : (errno ? errno : EINVAL);
        if (fd >= 0) close(fd);
        x->failed = true;
        lerr(L, QO_ERR_IO, loc, "%s: cannot open external data file '%s': %s", what, x->path,
             fd >= 0 && !S_ISREG(st.st_mode) ? "not a regular file" : strerror(e));
        return NULL;
    }
    x->n = (size_t)st.st_size;
    if (x->n) {
        void *p = mmap(NULL, x->n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            x->failed = true;
            lerr(L, QO_ERR_IO, loc, "%s: cannot map external data file '%s': %s", what, x->path, strerror(e));
            return NULL;
        }
        qo_module_add_mapping(L->m, p, x->n);
        x->p = p;
    } else {
        x->p = (const uint8_t *)"";
    }
    close(fd);
    return x;
}

static bool parse_i64(const char *s, int64_t *out) {
    if (!s || !*s) return false;
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || *e || v < 0) return false;
    *out = v;
    return true;
}

/* ---- tensors → constants -------------------------------------------------------------------- */

/* Converts a TensorProto to a pool constant. `raw` (may be NULL) overrides t->raw_data with bytes
 * inside the model mapping (borrowed). `what` names the tensor in diagnostics. Returns 0 after
 * reporting on failure. */
static qo_cref tensor_to_const(loader *L, const Onnx__TensorProto *t, const span *raw, const qo_loc *loc,
                               const char *what) {
    qo_module *m = L->m;
    int64_t e = t->data_type;
    if (!elem_known(e)) {
        lerr(L, QO_ERR_UNSUPPORTED, loc, "%s: unknown data type %" PRId64, what, e);
        return 0;
    }
    if (t->segment) {
        lerr(L, QO_ERR_UNSUPPORTED, loc, "%s: segmented tensors are not supported", what);
        return 0;
    }
    if (t->n_dims > 4096) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: rank %zu is too large", what, t->n_dims);
        return 0;
    }
    int64_t numel = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        int64_t d = t->dims[i];
        if (d < 0) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: negative dimension %" PRId64 " at axis %zu", what, d, i);
            return 0;
        }
        if (d && numel > (INT64_C(1) << 56) / d) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: element count overflows", what);
            return 0;
        }
        numel *= d;
    }
    qo_type ty = qo_type_tensor(m, (qo_elem)e, (int32_t)t->n_dims, t->dims, NULL);
    size_t expect = qo_elem_storage((int)e, numel);
    bool is_str = e == QO_STR;

    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
        if (is_str) {
            lerr(L, QO_ERR_UNSUPPORTED, loc, "%s: string tensors cannot use external data", what);
            return 0;
        }
        const char *location = NULL, *soff = NULL, *slen = NULL;
        for (size_t i = 0; i < t->n_external_data; i++) {
            const Onnx__StringStringEntryProto *kv = t->external_data[i];
            if (!kv->key || !kv->value) continue;
            if (!strcmp(kv->key, "location")) location = kv->value;
            else if (!strcmp(kv->key, "offset")) soff = kv->value;
            else if (!strcmp(kv->key, "length")) slen = kv->value;
        }
        if (!location) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: external data without a 'location' entry", what);
            return 0;
        }
        if (!L->base_dir) {
            lerr(L, QO_ERR_UNSUPPORTED, loc,
                 "%s: external data '%s' cannot be resolved when loading from a buffer", what, location);
            return 0;
        }
        if (!location_ok(location)) {
            lerr(L, QO_ERR_INVALID_MODEL, loc,
                 "%s: external data location '%s' must be a relative path inside the model's directory",
                 what, location);
            return 0;
        }
        int64_t off = 0, len = -1;
        if (soff && !parse_i64(soff, &off)) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: bad external data offset '%s'", what, soff);
            return 0;
        }
        if (slen && !parse_i64(slen, &len)) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: bad external data length '%s'", what, slen);
            return 0;
        }
        extfile *x = ext_open(L, location, loc, what);
        if (!x) return 0;
        if ((uint64_t)off > x->n || (len >= 0 && (uint64_t)len > x->n - (uint64_t)off)) {
            lerr(L, QO_ERR_IO, loc,
                 "%s: external data file '%s' is too short: needs bytes %" PRId64 "..%" PRId64
                 " but has %zu bytes",
                 what, x->path, off, len >= 0 ? off + len : off, x->n);
            return 0;
        }
        size_t n = len >= 0 ? (size_t)len : x->n - (size_t)off;
        if (n != expect) {
            lerr(L, QO_ERR_INVALID_MODEL, loc,
                 "%s: external data holds %zu bytes, expected %zu for %" PRId64 " elements of type %s", what,
                 n, expect, numel, elem_str(e));
            return 0;
        }
        qo_cref c = qo_const_new(m, ty, x->p + off, n, false);
        qo_constdata *cd = qo_const_get_mut(m, c);
        cd->ext_location = qo_intern(m, location);
        cd->ext_offset = soff ? off : -1;
        cd->ext_length = slen ? len : -1;
        cd->file = qo_intern(m, x->path);
        cd->file_offset = (uint64_t)off;
        return c;
    }

    bool has_raw = raw != NULL || t->has_raw_data;
    if (has_raw) {
        const uint8_t *rp = raw ? raw->p : t->raw_data.data;
        size_t rn = raw ? raw->n : t->raw_data.len;
        if (is_str) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: string tensors cannot use raw_data", what);
            return 0;
        }
        if (rn != expect) {
            lerr(L, QO_ERR_INVALID_MODEL, loc,
                 "%s: raw_data holds %zu bytes, expected %zu for %" PRId64 " elements of type %s", what, rn,
                 expect, numel, elem_str(e));
            return 0;
        }
        if (raw) {
            qo_cref c = qo_const_new(m, ty, rp, rn, false);
            qo_constdata *cd = qo_const_get_mut(m, c);
            if (L->file_atom) {
                cd->file = L->file_atom;
                cd->file_offset = (uint64_t)(rp - L->base);
            }
            return c;
        }
        return qo_const_new(m, ty, rn ? rp : (const void *)"", rn, true);
    }

    /* typed fields: pick the field the data type lives in */
    const char *field;
    size_t have, need = (size_t)numel;
    switch (e) {
    case QO_F32: field = "float_data"; have = t->n_float_data; break;
    case QO_C64: field = "float_data"; have = t->n_float_data; need *= 2; break;
    case QO_F64: field = "double_data"; have = t->n_double_data; break;
    case QO_C128: field = "double_data"; have = t->n_double_data; need *= 2; break;
    case QO_I64: field = "int64_data"; have = t->n_int64_data; break;
    case QO_U32:
    case QO_U64: field = "uint64_data"; have = t->n_uint64_data; break;
    case QO_STR: field = "string_data"; have = t->n_string_data; break;
    case QO_U4:
    case QO_I4:
    case QO_F4E2M1: field = "int32_data"; have = t->n_int32_data; need = ((size_t)numel + 1) / 2; break;
    default: field = "int32_data"; have = t->n_int32_data; break; /* i32, 8/16-bit ints, bool, f16, bf16, f8 */
    }
    if (have != need) {
        size_t other = t->n_float_data + t->n_double_data + t->n_int64_data + t->n_uint64_data +
                       t->n_string_data + t->n_int32_data - have;
        if (have == 0 && other == 0)
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: no data for %" PRId64 " elements of type %s", what, numel,
                 elem_str(e));
        else
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: %s holds %zu values, expected %zu for %" PRId64
                 " elements of type %s", what, field, have, need, numel, elem_str(e));
        return 0;
    }
    if (is_str) {
        qo_bytes *ss = qo_calloc(need ? need : 1, sizeof *ss);
        for (size_t i = 0; i < need; i++) {
            ss[i].p = t->string_data[i].len ? (const char *)t->string_data[i].data : "";
            ss[i].n = t->string_data[i].len;
        }
        qo_cref c = qo_const_new(m, ty, ss, need * sizeof(qo_bytes), true);
        qo_free(ss);
        return c;
    }
    uint8_t *buf = qo_calloc(expect ? expect : 1, 1);
    int bits = qo_elem_bits((int)e);
    switch (expect ? e : QO_UNDEF) {
    case QO_UNDEF: break;
    case QO_F32:
    case QO_C64: memcpy(buf, t->float_data, expect); break;
    case QO_F64:
    case QO_C128: memcpy(buf, t->double_data, expect); break;
    case QO_I64: memcpy(buf, t->int64_data, expect); break;
    case QO_U64: memcpy(buf, t->uint64_data, expect); break;
    case QO_U32:
        for (size_t i = 0; i < need; i++) {
            uint32_t v = (uint32_t)t->uint64_data[i];
            memcpy(buf + 4 * i, &v, 4);
        }
        break;
    case QO_I32: memcpy(buf, t->int32_data, expect); break;
    default:
        if (bits == 4 || bits == 8) {
            for (size_t i = 0; i < need; i++) buf[i] = (uint8_t)t->int32_data[i];
        } else { /* 16 bits */
            for (size_t i = 0; i < need; i++) {
                uint16_t v = (uint16_t)t->int32_data[i];
                memcpy(buf + 2 * i, &v, 2);
            }
        }
        break;
    }
    qo_cref c = qo_const_new(m, ty, buf, expect, true);
    qo_free(buf);
    return c;
}

/* Parses a top-level initializer from the mapping (raw_data stays borrowed). */
static qo_cref wire_initializer(loader *L, span sp, char **name_out, char **doc_out) {
    spanvec raws = {0};
    uint8_t *rest;
    size_t restn;
    qo_loc fl = file_loc(L);
    *name_out = NULL;
    *doc_out = NULL;
    if (!wire_split(&sp, 1, 9, &raws, &rest, &restn)) {
        qo_free(raws.v);
        lerr(L, QO_ERR_INVALID_MODEL, &fl, "malformed initializer TensorProto at byte %zu",
             (size_t)(sp.p - L->base));
        return 0;
    }
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, restn, rest);
    qo_free(rest);
    if (!t) {
        qo_free(raws.v);
        lerr(L, QO_ERR_INVALID_MODEL, &fl, "malformed initializer TensorProto at byte %zu",
             (size_t)(sp.p - L->base));
        return 0;
    }
    char what[320];
    snprintf(what, sizeof what, "initializer '%.256s'", t->name ? t->name : "");
    qo_cref c = tensor_to_const(L, t, raws.n ? &raws.v[raws.n - 1] : NULL, &fl, what);
    *name_out = qo_strdup(t->name ? t->name : "");
    if (t->doc_string && t->doc_string[0]) *doc_out = qo_strdup(t->doc_string);
    qo_free(raws.v);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return c;
}

/* Densifies a SparseTensorProto into a constant. */
static qo_cref sparse_to_const(loader *L, const Onnx__SparseTensorProto *sp, const qo_loc *loc, const char *what) {
    if (!sp->values || !sp->indices) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: sparse tensor without values or indices", what);
        return 0;
    }
    qo_cref vc = tensor_to_const(L, sp->values, NULL, loc, what);
    if (!vc) return 0;
    qo_cref ic = tensor_to_const(L, sp->indices, NULL, loc, what);
    if (!ic) return 0;
    qo_module *m = L->m;
    const qo_constdata *vd = qo_const_get(m, vc), *id = qo_const_get(m, ic);
    qo_elem e = qo_type_elem(m, vd->type);
    int bits = qo_elem_bits(e);
    int64_t numel = 1;
    for (size_t i = 0; i < sp->n_dims; i++) {
        if (sp->dims[i] < 0 || (sp->dims[i] && numel > (INT64_C(1) << 40) / sp->dims[i])) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: bad sparse tensor dims", what);
            return 0;
        }
        numel *= sp->dims[i];
    }
    int64_t nnz = qo_type_numel(m, vd->type);
    const qo_typedata *it = qo_type_get(m, id->type);
    if (e == QO_STR || bits < 8 || qo_type_elem(m, id->type) != QO_I64 || it->rank < 1 || it->rank > 2 ||
        it->dims[0] != nnz || (it->rank == 2 && it->dims[1] != (int64_t)sp->n_dims)) {
        lerr(L, QO_ERR_UNSUPPORTED, loc, "%s: unsupported sparse tensor layout", what);
        return 0;
    }
    size_t esz = (size_t)bits / 8;
    uint8_t *buf = qo_calloc(numel ? (size_t)numel * esz : 1, 1);
    const uint8_t *vals = vd->data, *idx = id->data;
    bool ok = true;
    for (int64_t k = 0; k < nnz && ok; k++) {
        int64_t lin = 0;
        if (it->rank == 1) {
            memcpy(&lin, idx + 8 * k, 8);
        } else {
            for (size_t a = 0; a < sp->n_dims; a++) {
                int64_t ia;
                memcpy(&ia, idx + 8 * ((size_t)k * sp->n_dims + a), 8);
                if (ia < 0 || ia >= sp->dims[a]) ok = false;
                lin = lin * sp->dims[a] + ia;
            }
        }
        if (lin < 0 || lin >= numel) ok = false;
        if (ok) memcpy(buf + (size_t)lin * esz, vals + (size_t)k * esz, esz);
    }
    qo_cref c = 0;
    if (!ok) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: sparse index out of range", what);
    } else {
        qo_type ty = qo_type_tensor(m, e, (int32_t)sp->n_dims, sp->dims, NULL);
        c = qo_const_new(m, ty, buf, (size_t)numel * esz, true);
    }
    qo_free(buf);
    return c;
}

/* ---- graphs --------------------------------------------------------------------------------- */

typedef struct scope {
    struct scope *parent;
    qo_graph *g;
    uint32_t *map; /* atom -> value id in g */
    uint32_t cap;
} scope;

/* Scope entry of a name whose definition failed (already reported): uses of it stay quiet. */
#define BROKEN UINT32_MAX

static qo_val scope_get(const scope *s, qo_atom a) { return a < s->cap ? s->map[a] : 0; }

static void scope_set(scope *s, qo_atom a, qo_val v) {
    if (a >= s->cap) {
        uint32_t nc = s->cap ? s->cap : 256;
        while (nc <= a) nc *= 2;
        s->map = qo_realloc(s->map, nc * sizeof(uint32_t));
        memset(s->map + s->cap, 0, (nc - s->cap) * sizeof(uint32_t));
        s->cap = nc;
    }
    s->map[a] = v;
}

/* Resolves a name in s, creating a capture if it lives in an enclosing graph. 0 if undefined. */
static qo_val scope_resolve(scope *s, qo_atom a) {
    qo_val v = scope_get(s, a);
    if (v) return v;
    for (scope *p = s->parent; p; p = p->parent) {
        qo_val pv = scope_get(p, a);
        if (pv == BROKEN) return BROKEN;
        if (pv) {
            qo_val c = qo_graph_add_capture(s->g, qo_str(s->g->m, a), p->g->vals[pv].type);
            scope_set(s, a, c);
            return c;
        }
    }
    return 0;
}

static qo_loc node_loc(const loader *L, const Onnx__NodeProto *np, int64_t idx) {
    qo_loc l = {.file = L->file, .node = np->name ? np->name : "", .op = np->op_type ? np->op_type : "",
                .node_index = idx};
    return l;
}

static void build_graph(loader *L, scope *sc, const Onnx__GraphProto *gp, const spanvec *wire_inits,
                        int depth);

/* AttributeProto → qo_attr on node n of graph g. Subgraphs are built here. */
static void convert_attr(loader *L, scope *sc, qo_node n, const Onnx__AttributeProto *ap, const qo_loc *loc,
                         int depth) {
    qo_graph *g = sc->g;
    qo_module *m = L->m;
    const char *aname = ap->name ? ap->name : "";
    if (!aname[0]) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "attribute without a name");
        return;
    }
    if (qo_node_attr(g, n, aname)) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "duplicate attribute '%s'", aname);
        return;
    }
    qo_attr a;
    memset(&a, 0, sizeof a);
    a.name = qo_intern(m, aname);
    if (ap->ref_attr_name && ap->ref_attr_name[0]) a.ref_attr_name = qo_intern(m, ap->ref_attr_name);
    if (ap->doc_string && ap->doc_string[0]) a.doc = qo_intern(m, ap->doc_string);
    int kind = ap->has_type ? (int)ap->type : 0;
    if (kind == 0) { /* IR v1-style: infer from the field that is set */
        if (ap->has_f) kind = QO_ATTR_FLOAT;
        else if (ap->has_i) kind = QO_ATTR_INT;
        else if (ap->has_s) kind = QO_ATTR_STRING;
        else if (ap->t) kind = QO_ATTR_TENSOR;
        else if (ap->g) kind = QO_ATTR_GRAPH;
        else if (ap->sparse_tensor) kind = QO_ATTR_SPARSE_TENSOR;
        else if (ap->tp) kind = QO_ATTR_TYPE_PROTO;
        else if (ap->n_floats) kind = QO_ATTR_FLOATS;
        else if (ap->n_ints) kind = QO_ATTR_INTS;
        else if (ap->n_strings) kind = QO_ATTR_STRINGS;
        else if (ap->n_tensors) kind = QO_ATTR_TENSORS;
        else if (ap->n_graphs) kind = QO_ATTR_GRAPHS;
        else if (ap->n_sparse_tensors) kind = QO_ATTR_SPARSE_TENSORS;
        else if (ap->n_type_protos) kind = QO_ATTR_TYPE_PROTOS;
        else if (ap->ref_attr_name && ap->ref_attr_name[0]) kind = QO_ATTR_UNDEF;
        else {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "attribute '%s' has no type and no value", aname);
            return;
        }
    }
    a.kind = (uint8_t)kind;
    char what[320];
    snprintf(what, sizeof what, "attribute '%.256s'", aname);
    switch (kind) {
    case QO_ATTR_UNDEF: break;
    case QO_ATTR_FLOAT: a.u.f = ap->f; break;
    case QO_ATTR_INT: a.u.i = ap->i; break;
    case QO_ATTR_STRING:
        a.u.s.p = ap->s.len ? (const char *)ap->s.data : "";
        a.u.s.n = ap->s.len;
        break;
    case QO_ATTR_FLOATS: a.n = (uint32_t)ap->n_floats; a.u.fs = ap->floats; break;
    case QO_ATTR_INTS: a.n = (uint32_t)ap->n_ints; a.u.is = ap->ints; break;
    case QO_ATTR_STRINGS: {
        qo_bytes *ss = qo_calloc(ap->n_strings + 1, sizeof *ss);
        for (size_t i = 0; i < ap->n_strings; i++) {
            ss[i].p = ap->strings[i].len ? (const char *)ap->strings[i].data : "";
            ss[i].n = ap->strings[i].len;
        }
        a.n = (uint32_t)ap->n_strings;
        a.u.ss = ss;
        qo_node_set_attr(g, n, &a);
        qo_free(ss);
        return;
    }
    case QO_ATTR_TENSOR:
        if (!ap->t) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s of kind tensor has no tensor", what);
            return;
        }
        a.u.t = tensor_to_const(L, ap->t, NULL, loc, what);
        if (!a.u.t) return;
        break;
    case QO_ATTR_TENSORS: {
        qo_cref *ts = qo_calloc(ap->n_tensors + 1, sizeof *ts);
        for (size_t i = 0; i < ap->n_tensors; i++) {
            ts[i] = tensor_to_const(L, ap->tensors[i], NULL, loc, what);
            if (!ts[i]) {
                qo_free(ts);
                return;
            }
        }
        a.n = (uint32_t)ap->n_tensors;
        a.u.ts = ts;
        qo_node_set_attr(g, n, &a);
        qo_free(ts);
        return;
    }
    case QO_ATTR_GRAPH:
    case QO_ATTR_GRAPHS: {
        size_t cnt = kind == QO_ATTR_GRAPH ? 1 : ap->n_graphs;
        if (kind == QO_ATTR_GRAPH && !ap->g) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s of kind graph has no graph", what);
            return;
        }
        if (depth > 32) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s: subgraphs nested too deeply", what);
            return;
        }
        uint32_t *gs = qo_calloc(cnt + 1, sizeof *gs);
        for (size_t i = 0; i < cnt && !L->stop; i++) {
            const Onnx__GraphProto *sgp = kind == QO_ATTR_GRAPH ? ap->g : ap->graphs[i];
            qo_graph *sg = qo_graph_new(m, g, n, sgp->name ? sgp->name : "");
            scope child = {.parent = sc, .g = sg};
            build_graph(L, &child, sgp, NULL, depth + 1);
            qo_free(child.map);
            gs[i] = sg->index;
        }
        if (kind == QO_ATTR_GRAPH) a.u.g = gs[0];
        else {
            a.n = (uint32_t)cnt;
            a.u.gs = gs;
        }
        qo_node_set_attr(g, n, &a);
        qo_free(gs);
        return;
    }
    case QO_ATTR_SPARSE_TENSOR:
    case QO_ATTR_TYPE_PROTO: {
        const ProtobufCMessage *msg = kind == QO_ATTR_SPARSE_TENSOR ? (const ProtobufCMessage *)ap->sparse_tensor
                                                                     : (const ProtobufCMessage *)ap->tp;
        if (!msg) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s of kind %s has no value", what, qo_attr_kind_name(kind));
            return;
        }
        size_t sz = protobuf_c_message_get_packed_size(msg);
        uint8_t *buf = qo_malloc(sz + 1);
        protobuf_c_message_pack(msg, buf);
        a.u.raw.p = (const char *)buf;
        a.u.raw.n = sz;
        qo_node_set_attr(g, n, &a);
        qo_free(buf);
        return;
    }
    case QO_ATTR_SPARSE_TENSORS:
    case QO_ATTR_TYPE_PROTOS: {
        size_t cnt = kind == QO_ATTR_SPARSE_TENSORS ? ap->n_sparse_tensors : ap->n_type_protos;
        size_t total = 0;
        for (size_t i = 0; i < cnt; i++) {
            const ProtobufCMessage *msg = kind == QO_ATTR_SPARSE_TENSORS
                                              ? (const ProtobufCMessage *)ap->sparse_tensors[i]
                                              : (const ProtobufCMessage *)ap->type_protos[i];
            total += protobuf_c_message_get_packed_size(msg) + 10;
        }
        uint8_t *buf = qo_malloc(total + 1);
        size_t o = 0;
        for (size_t i = 0; i < cnt; i++) {
            const ProtobufCMessage *msg = kind == QO_ATTR_SPARSE_TENSORS
                                              ? (const ProtobufCMessage *)ap->sparse_tensors[i]
                                              : (const ProtobufCMessage *)ap->type_protos[i];
            size_t sz = protobuf_c_message_get_packed_size(msg);
            o += varint_put(buf + o, sz);
            o += protobuf_c_message_pack(msg, buf + o);
        }
        a.n = (uint32_t)cnt;
        a.u.raw.p = (const char *)buf;
        a.u.raw.n = o;
        qo_node_set_attr(g, n, &a);
        qo_free(buf);
        return;
    }
    default:
        lerr(L, QO_ERR_UNSUPPORTED, loc, "attribute '%s' has unknown kind %d", aname, kind);
        return;
    }
    qo_node_set_attr(g, n, &a);
}

/* Turns a default-domain Constant node into a constant; 0 after reporting on failure. */
static qo_cref constant_node(loader *L, const Onnx__NodeProto *np, const qo_loc *loc) {
    qo_module *m = L->m;
    if (np->n_attribute != 1) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "Constant node needs exactly one attribute (value, value_float, "
             "value_floats, value_int, value_ints, value_string or value_strings), found %zu", np->n_attribute);
        return 0;
    }
    const Onnx__AttributeProto *ap = np->attribute[0];
    const char *an = ap->name ? ap->name : "";
    int kind = ap->has_type ? (int)ap->type : 0;
    int want;
    if (!strcmp(an, "value")) want = QO_ATTR_TENSOR;
    else if (!strcmp(an, "value_float")) want = QO_ATTR_FLOAT;
    else if (!strcmp(an, "value_floats")) want = QO_ATTR_FLOATS;
    else if (!strcmp(an, "value_int")) want = QO_ATTR_INT;
    else if (!strcmp(an, "value_ints")) want = QO_ATTR_INTS;
    else if (!strcmp(an, "value_string")) want = QO_ATTR_STRING;
    else if (!strcmp(an, "value_strings")) want = QO_ATTR_STRINGS;
    else {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "Constant node has unknown attribute '%s'", an);
        return 0;
    }
    if (kind == 0 && want == QO_ATTR_TENSOR && ap->t) kind = want; /* IR v1-style untyped attribute */
    if (kind != want) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "Constant attribute '%s' has kind %s, expected %s", an,
             qo_attr_kind_name(kind), qo_attr_kind_name(want));
        return 0;
    }
    char what[320];
    snprintf(what, sizeof what, "Constant attribute '%s'", an);
    int64_t n1;
    switch (want) {
    case QO_ATTR_TENSOR:
        if (!ap->t) {
            lerr(L, QO_ERR_INVALID_MODEL, loc, "%s has no tensor", what);
            return 0;
        }
        return tensor_to_const(L, ap->t, NULL, loc, what);
    case QO_ATTR_FLOAT: return qo_const_new(m, qo_type_tensor(m, QO_F32, 0, NULL, NULL), &ap->f, 4, true);
    case QO_ATTR_INT: return qo_const_new(m, qo_type_tensor(m, QO_I64, 0, NULL, NULL), &ap->i, 8, true);
    case QO_ATTR_FLOATS:
        n1 = (int64_t)ap->n_floats;
        return qo_const_new(m, qo_type_tensor(m, QO_F32, 1, &n1, NULL), n1 ? (const void *)ap->floats : "",
                            4 * ap->n_floats, true);
    case QO_ATTR_INTS:
        n1 = (int64_t)ap->n_ints;
        return qo_const_new(m, qo_type_tensor(m, QO_I64, 1, &n1, NULL), n1 ? (const void *)ap->ints : "",
                            8 * ap->n_ints, true);
    case QO_ATTR_STRING: {
        qo_bytes b = {.p = ap->s.len ? (const char *)ap->s.data : "", .n = ap->s.len};
        return qo_const_new(m, qo_type_tensor(m, QO_STR, 0, NULL, NULL), &b, sizeof b, true);
    }
    case QO_ATTR_STRINGS: {
        n1 = (int64_t)ap->n_strings;
        qo_bytes *ss = qo_calloc(ap->n_strings + 1, sizeof *ss);
        for (size_t i = 0; i < ap->n_strings; i++) {
            ss[i].p = ap->strings[i].len ? (const char *)ap->strings[i].data : "";
            ss[i].n = ap->strings[i].len;
        }
        qo_cref c = qo_const_new(m, qo_type_tensor(m, QO_STR, 1, &n1, NULL), ss, sizeof(qo_bytes) * ap->n_strings,
                                 true);
        qo_free(ss);
        return c;
    }
    default: QO_UNREACHABLE();
    }
}

static bool is_constant_node(const Onnx__NodeProto *np) {
    const char *d = np->domain ? np->domain : "";
    if (!(d[0] == 0 || !strcmp(d, "ai.onnx"))) return false;
    if (!np->op_type || strcmp(np->op_type, "Constant")) return false;
    for (size_t i = 0; i < np->n_attribute; i++)
        if (np->attribute[i]->name && !strcmp(np->attribute[i]->name, "sparse_value")) return false;
    return true;
}

/* Defines `name` as v in scope; reports a duplicate definition. */
static bool define(loader *L, scope *sc, const char *name, qo_val v, const qo_loc *loc, const char *what) {
    qo_atom a = qo_intern(L->m, name);
    if (scope_get(sc, a)) {
        lerr(L, QO_ERR_INVALID_MODEL, loc, "%s '%s' is defined more than once", what, name);
        return false;
    }
    scope_set(sc, a, v);
    return true;
}

/* Records that `name` has a definition that failed to load, so its uses are not reported again. */
static void mark_broken(loader *L, scope *sc, const char *name) {
    if (!name || !name[0]) return;
    qo_atom a = qo_intern(L->m, name);
    if (!scope_get(sc, a)) scope_set(sc, a, BROKEN);
}

static void add_initializer(loader *L, scope *sc, const char *name, const char *doc, qo_cref c) {
    qo_graph *g = sc->g;
    qo_loc fl = file_loc(L);
    if (!name[0]) {
        lerr(L, QO_ERR_INVALID_MODEL, &fl, "initializer without a name in graph '%s'", qo_str(L->m, g->name));
        return;
    }
    qo_atom a = qo_intern(L->m, name);
    qo_val v = scope_get(sc, a);
    if (v == BROKEN) return;
    if (v && (g->vals[v].flags & QO_VAL_INPUT) && !g->vals[v].cref) {
        g->vals[v].cref = c;
        if (!g->vals[v].type) g->vals[v].type = qo_const_get(L->m, c)->type;
        return;
    }
    if (v) {
        lerr(L, QO_ERR_INVALID_MODEL, &fl, "initializer '%s' is defined more than once", name);
        return;
    }
    v = qo_graph_add_const(g, name, c);
    if (doc && doc[0]) g->vals[v].doc = qo_intern(L->m, doc);
    scope_set(sc, a, v);
}

static void build_graph(loader *L, scope *sc, const Onnx__GraphProto *gp, const spanvec *wire_inits, int depth) {
    qo_graph *g = sc->g;
    qo_module *m = L->m;
    qo_loc fl = file_loc(L);
    const char *gname = gp->name ? gp->name : "";
    if (gp->doc_string && gp->doc_string[0]) g->doc = qo_intern(m, gp->doc_string);

    /* inputs */
    for (size_t i = 0; i < gp->n_input && !L->stop; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = vi->name ? vi->name : "";
        char what[320];
        snprintf(what, sizeof what, "graph '%.100s' input '%.200s'", gname, name);
        if (!name[0]) {
            lerr(L, QO_ERR_INVALID_MODEL, &fl, "graph '%s' input %zu has no name", gname, i);
            continue;
        }
        qo_type t = type_from_proto(L, vi->type, &fl, what, 0);
        qo_val v = qo_graph_add_input(g, name, t);
        if (vi->doc_string && vi->doc_string[0]) g->vals[v].doc = qo_intern(m, vi->doc_string);
        define(L, sc, name, v, &fl, "graph input");
    }

    /* initializers */
    if (wire_inits) {
        for (uint32_t i = 0; i < wire_inits->n && !L->stop; i++) {
            char *name, *doc;
            qo_cref c = wire_initializer(L, wire_inits->v[i], &name, &doc);
            if (c) add_initializer(L, sc, name, doc, c);
            else mark_broken(L, sc, name);
            qo_free(name);
            qo_free(doc);
        }
    }
    for (size_t i = 0; i < gp->n_initializer && !L->stop; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        char what[320];
        snprintf(what, sizeof what, "initializer '%.256s'", t->name ? t->name : "");
        qo_cref c = tensor_to_const(L, t, NULL, &fl, what);
        if (c) add_initializer(L, sc, t->name ? t->name : "", t->doc_string, c);
        else mark_broken(L, sc, t->name);
    }
    for (size_t i = 0; i < gp->n_sparse_initializer && !L->stop; i++) {
        const Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
        const char *name = sp->values && sp->values->name ? sp->values->name : "";
        char what[320];
        snprintf(what, sizeof what, "sparse initializer '%.256s'", name);
        qo_cref c = sparse_to_const(L, sp, &fl, what);
        if (c) add_initializer(L, sc, name, sp->values->doc_string, c);
        else mark_broken(L, sc, name);
    }

    /* nodes, pass 1: create nodes and define their outputs */
    size_t nn = gp->n_node;
    qo_node *ids = qo_calloc(nn + 1, sizeof *ids);
    for (size_t i = 0; i < nn && !L->stop; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        qo_loc loc = node_loc(L, np, (int64_t)i);
        if (!np->op_type || !np->op_type[0]) {
            lerr(L, QO_ERR_INVALID_MODEL, &loc, "node has no op_type");
            for (size_t o = 0; o < np->n_output; o++) mark_broken(L, sc, np->output[o]);
            continue;
        }
        if (is_constant_node(np)) {
            if (np->n_input != 0 || np->n_output != 1 || !np->output[0][0]) {
                lerr(L, QO_ERR_INVALID_MODEL, &loc, "Constant node needs no inputs and one named output");
                for (size_t o = 0; o < np->n_output; o++) mark_broken(L, sc, np->output[o]);
                continue;
            }
            qo_cref c = constant_node(L, np, &loc);
            if (!c) {
                mark_broken(L, sc, np->output[0]);
                continue;
            }
            qo_val v = qo_graph_add_const(g, np->output[0], c);
            define(L, sc, np->output[0], v, &loc, "output");
            continue;
        }
        if (np->n_input > UINT16_MAX || np->n_output > UINT16_MAX) {
            lerr(L, QO_ERR_INVALID_MODEL, &loc, "too many inputs or outputs");
            for (size_t o = 0; o < np->n_output; o++) mark_broken(L, sc, np->output[o]);
            continue;
        }
        const char *dom = np->domain ? np->domain : "";
        qo_op op = qo_op_lookup(dom, np->op_type);
        qo_node n = qo_node_new(g, op, dom, np->op_type, (uint32_t)np->n_input, NULL, (uint32_t)np->n_output);
        ids[i] = n;
        if (np->name && np->name[0]) g->nodes[n].name = qo_intern(m, np->name);
        if (np->doc_string && np->doc_string[0]) g->nodes[n].doc = qo_intern(m, np->doc_string);
        for (size_t o = 0; o < np->n_output; o++) {
            const char *on = np->output[o];
            if (!on[0]) {
                qo_node_drop_output(g, n, (uint32_t)o);
                continue;
            }
            qo_val v = qo_node_output(g, n, (uint32_t)o);
            qo_val_set_name(g, v, on);
            define(L, sc, on, v, &loc, "output");
        }
    }

    /* nodes, pass 2: resolve inputs and attributes (subgraphs see every name of this graph) */
    bool need_sort = false;
    for (size_t i = 0; i < nn && !L->stop; i++) {
        qo_node n = ids[i];
        if (!n) continue;
        const Onnx__NodeProto *np = gp->node[i];
        qo_loc loc = node_loc(L, np, (int64_t)i);
        for (size_t k = 0; k < np->n_input; k++) {
            const char *in = np->input[k];
            if (!in[0]) continue;
            qo_val v = scope_resolve(sc, qo_intern(m, in));
            if (v == BROKEN) continue;
            if (!v) {
                lerr(L, QO_ERR_INVALID_MODEL, &loc, "input '%s' is not defined (not a graph input, initializer "
                     "or output of any node in scope)", in);
                continue;
            }
            if (g->vals[v].def >= n) need_sort = true;
            qo_set_input(g, qo_node_use(g, n, (uint32_t)k), v);
        }
        for (size_t k = 0; k < np->n_attribute && !L->stop; k++) convert_attr(L, sc, n, np->attribute[k], &loc, depth);
    }
    qo_free(ids);

    /* value_info */
    for (size_t i = 0; i < gp->n_value_info && !L->stop; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        const char *name = vi->name ? vi->name : "";
        qo_val v = name[0] ? scope_get(sc, qo_intern(m, name)) : 0;
        if (!v || v == BROKEN) continue; /* value_info about a name that is not in this graph: nothing to annotate */
        char what[320];
        snprintf(what, sizeof what, "value_info '%.256s'", name);
        qo_type t = type_from_proto(L, vi->type, &fl, what, 0);
        if (t) g->vals[v].type = t;
        g->vals[v].flags |= QO_VAL_INFO;
        if (vi->doc_string && vi->doc_string[0]) g->vals[v].doc = qo_intern(m, vi->doc_string);
    }

    /* outputs */
    for (size_t i = 0; i < gp->n_output && !L->stop; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        const char *name = vi->name ? vi->name : "";
        if (!name[0]) {
            lerr(L, QO_ERR_INVALID_MODEL, &fl, "graph '%s' output %zu has no name", gname, i);
            continue;
        }
        qo_val v = scope_resolve(sc, qo_intern(m, name));
        if (v == BROKEN) continue;
        if (!v) {
            lerr(L, QO_ERR_INVALID_MODEL, &fl, "graph '%s' output '%s' is not defined", gname, name);
            continue;
        }
        char what[320];
        snprintf(what, sizeof what, "graph '%.100s' output '%.200s'", gname, name);
        qo_type t = type_from_proto(L, vi->type, &fl, what, 0);
        qo_value *vd = &g->vals[v];
        if (t && !(vd->flags & (QO_VAL_CONST | QO_VAL_INPUT)) && (!vd->type || !(vd->flags & QO_VAL_INFO)))
            vd->type = t;
        if (vi->doc_string && vi->doc_string[0] && !vd->doc) vd->doc = qo_intern(m, vi->doc_string);
        qo_graph_add_output(g, v);
    }

    if (need_sort && !L->stop && !L->nerr) {
        unsigned before = L->cx->nerrors;
        qo_status st = qo_graph_toposort(L->cx, g);
        if (st != QO_OK) {
            if (!L->nerr) L->first = st;
            L->nerr += L->cx->nerrors - before ? L->cx->nerrors - before : 1;
        }
    }
}

/* ---- model ---------------------------------------------------------------------------------- */

static qo_status load_bytes(loader *L) {
    qo_module *m = L->m;
    qo_loc fl = file_loc(L);
    if (L->len == 0)
        return lerr(L, QO_ERR_INVALID_MODEL, &fl, "empty file: not an ONNX model");
    span whole = {L->base, L->len};
    spanvec graphs = {0}, funcs = {0};
    uint8_t *rest = NULL;
    size_t restn = 0;
    /* Split ModelProto: graph (7) out; remember functions (25) bytes to keep them verbatim. */
    {
        const uint8_t *p = L->base, *end = p + L->len;
        wfield f;
        int r;
        while ((r = wire_next(&p, end, &f)) > 0) {
            if (f.num == 25 && f.wt == 2) spanvec_push(&funcs, f.s.p, f.s.n);
            if (f.num == 7 && f.wt != 2) r = -1;
            if (r < 0) break;
        }
        if (r < 0 || !wire_split(&whole, 1, 7, &graphs, &rest, &restn)) {
            qo_free(funcs.v);
            qo_free(graphs.v);
            qo_free(rest);
            return lerr(L, QO_ERR_INVALID_MODEL, &fl, "not an ONNX model: malformed or truncated protobuf data");
        }
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, restn, rest);
    qo_free(rest);
    if (!mp) {
        qo_free(funcs.v);
        qo_free(graphs.v);
        return lerr(L, QO_ERR_INVALID_MODEL, &fl, "not an ONNX model: malformed or truncated protobuf data");
    }
    qo_status st = QO_OK;
    if (!mp->has_ir_version || !graphs.n) {
        st = lerr(L, QO_ERR_INVALID_MODEL, &fl, "not an ONNX model: %s",
                  !mp->has_ir_version ? "no ir_version" : "no graph");
        goto done;
    }
    if (mp->ir_version < 3 || mp->ir_version > 10) {
        st = lerr(L, QO_ERR_UNSUPPORTED, &fl, "unsupported ONNX IR version %" PRId64 " (supported: 3 to 10)",
                  mp->ir_version);
        goto done;
    }
    m->ir_version = mp->ir_version;
    if (mp->producer_name && mp->producer_name[0]) m->producer_name = qo_intern(m, mp->producer_name);
    if (mp->producer_version && mp->producer_version[0]) m->producer_version = qo_intern(m, mp->producer_version);
    if (mp->domain && mp->domain[0]) m->domain = qo_intern(m, mp->domain);
    if (mp->doc_string && mp->doc_string[0]) m->doc = qo_intern(m, mp->doc_string);
    m->model_version = mp->has_model_version ? mp->model_version : 0;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *os = mp->opset_import[i];
        const char *d = os->domain ? os->domain : "";
        QO_GROW(m->opsets, m->capopsets, m->nopsets + 1);
        m->opsets[m->nopsets].domain = qo_intern(m, d);
        m->opsets[m->nopsets].version = os->has_version ? os->version : 0;
        m->nopsets++;
        if (d[0] == 0 || !strcmp(d, "ai.onnx")) {
            int64_t v = os->has_version ? os->version : 0;
            if (v > 21) {
                st = lerr(L, QO_ERR_UNSUPPORTED, &fl, "unsupported default-domain opset %" PRId64 " (supported: 7 to 21)", v);
                goto done;
            }
            if (v < 7)
                qo_warning(L->cx, &fl, "default-domain opset %" PRId64 " is older than 7; loading it as is", v);
        }
    }
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *kv = mp->metadata_props[i];
        QO_GROW(m->props, m->capprops, m->nprops + 1);
        m->props[m->nprops].key = qo_intern(m, kv->key ? kv->key : "");
        m->props[m->nprops].value = qo_intern(m, kv->value ? kv->value : "");
        m->nprops++;
    }
    for (uint32_t i = 0; i < funcs.n; i++) {
        QO_GROW(m->functions, m->capfunctions, m->nfunctions + 1);
        m->functions[m->nfunctions].p = qo_arena_memdup(&m->arena, funcs.v[i].p, funcs.v[i].n);
        m->functions[m->nfunctions].n = funcs.v[i].n;
        m->nfunctions++;
    }
    if (mp->n_training_info) qo_warning(L->cx, &fl, "training_info is not supported and is dropped");

    /* Main graph: initializers stay in the mapping. */
    {
        spanvec inits = {0};
        uint8_t *gb;
        size_t gn;
        if (!wire_split(graphs.v, graphs.n, 5, &inits, &gb, &gn)) {
            qo_free(inits.v);
            st = lerr(L, QO_ERR_INVALID_MODEL, &fl, "malformed or truncated GraphProto");
            goto done;
        }
        Onnx__GraphProto *gp = onnx__graph_proto__unpack(NULL, gn, gb);
        qo_free(gb);
        if (!gp) {
            qo_free(inits.v);
            st = lerr(L, QO_ERR_INVALID_MODEL, &fl, "malformed or truncated GraphProto");
            goto done;
        }
        qo_graph *g = qo_graph_new(m, NULL, 0, gp->name ? gp->name : "");
        scope sc = {.g = g};
        build_graph(L, &sc, gp, &inits, 0);
        qo_free(sc.map);
        qo_free(inits.v);
        onnx__graph_proto__free_unpacked(gp, NULL);
    }
    st = L->nerr ? L->first : QO_OK;
done:
    onnx__model_proto__free_unpacked(mp, NULL);
    qo_free(funcs.v);
    qo_free(graphs.v);
    return st;
}

static void loader_fini(loader *L) {
    for (uint32_t i = 0; i < L->next; i++) {
        qo_free(L->ext[i].location);
        qo_free(L->ext[i].path);
    }
    qo_free(L->ext);
}

static qo_status finish(loader *L, qo_status st, qo_module **out) {
    loader_fini(L);
    if (st == QO_OK && L->nerr) st = L->first;
    if (st != QO_OK) {
        qo_module_free(L->m);
        *out = NULL;
        return st;
    }
    *out = L->m;
    return QO_OK;
}

qo_status qo_onnx_load(qo_ctx *cx, const char *path, qo_module **out) {
    *out = NULL;
    loader L = {.cx = cx, .file = path};
    qo_loc fl = file_loc(&L);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return qo_error(cx, QO_ERR_IO, &fl, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return qo_error(cx, QO_ERR_IO, &fl, "cannot read: %s", e ? strerror(e) : "not a regular file");
    }
    L.m = qo_module_new();
    L.len = (size_t)st.st_size;
    if (L.len) {
        void *p = mmap(NULL, L.len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            qo_module_free(L.m);
            return qo_error(cx, QO_ERR_IO, &fl, "cannot map: %s", strerror(e));
        }
        qo_module_add_mapping(L.m, p, L.len);
        L.base = p;
    } else {
        L.base = (const uint8_t *)"";
    }
    close(fd);
    L.m->source_path = qo_intern(L.m, path);
    L.file_atom = L.m->source_path;
    /* base directory for external data */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? qo_malloc((size_t)(slash - path) + 2) : qo_strdup(".");
    if (slash) {
        size_t dn = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, dn);
        dir[dn] = 0;
    }
    L.base_dir = dir;
    qo_status s = load_bytes(&L);
    s = finish(&L, s, out);
    qo_free(dir);
    return s;
}

qo_status qo_onnx_load_buffer(qo_ctx *cx, const char *name, const void *buf, size_t len, const char *base_dir,
                              qo_module **out) {
    *out = NULL;
    loader L = {.cx = cx, .file = name ? name : "<buffer>", .base_dir = base_dir};
    L.m = qo_module_new();
    L.len = len;
    if (len) {
        /* Private copy in an anonymous mapping the module owns, so constants can borrow from it. */
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            qo_module_free(L.m);
            qo_loc fl = file_loc(&L);
            return qo_error(cx, QO_ERR_NOMEM, &fl, "cannot allocate %zu bytes: %s", len, strerror(errno));
        }
        memcpy(p, buf, len);
        qo_module_add_mapping(L.m, p, len);
        L.base = p;
    } else {
        L.base = (const uint8_t *)"";
    }
    qo_status s = load_bytes(&L);
    return finish(&L, s, out);
}
