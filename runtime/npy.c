/* runtime/npy.c — NumPy .npy read/write (format: numpy/lib/format.py's documented layout).
 *
 * Layout: "\x93NUMPY", major, minor, header length (uint16 LE for 1.x, uint32 LE for 2.x/3.x), the
 * header (a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, padded
 * with spaces and ending in '\n'), then the raw array bytes. */
#include "runtime/npy.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static const struct {
    char kind;
    int size;
    qo_elem elem;
} dtypes[] = {
    {'f', 2, QO_F16}, {'f', 4, QO_F32}, {'f', 8, QO_F64}, {'i', 1, QO_I8},  {'u', 1, QO_U8},
    {'i', 2, QO_I16}, {'u', 2, QO_U16}, {'i', 4, QO_I32}, {'u', 4, QO_U32}, {'i', 8, QO_I64},
    {'u', 8, QO_U64}, {'b', 1, QO_BOOL},
};

typedef struct hparse {
    const char *p, *end;
} hparse;

static void skip_ws(hparse *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

static bool eat(hparse *h, char c) {
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* A quoted Python string without escapes; copies up to cap-1 bytes into buf. */
static bool parse_str(hparse *h, char *buf, size_t cap) {
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
    char q = *h->p++;
    size_t k = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\') return false;
        if (k + 1 < cap) buf[k++] = *h->p;
        else return false;
        h->p++;
    }
    if (h->p >= h->end) return false;
    h->p++;
    buf[k] = 0;
    return true;
}

static bool parse_word(hparse *h, const char *w) {
    skip_ws(h);
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n)) return false;
    h->p += n;
    return true;
}

/* (d0, d1, ...) with an optional trailing comma; Python 2's 'L' suffix accepted. */
static bool parse_shape(hparse *h, int32_t *rank, int64_t *dims, bool *too_deep) {
    if (!eat(h, '(')) return false;
    *rank = 0;
    for (;;) {
        if (eat(h, ')')) return true;
        skip_ws(h);
        if (h->p >= h->end || !isdigit((unsigned char)*h->p)) return false;
        int64_t v = 0;
        while (h->p < h->end && isdigit((unsigned char)*h->p)) {
            if (v > (INT64_MAX - 9) / 10) return false;
            v = v * 10 + (*h->p++ - '0');
        }
        if (h->p < h->end && (*h->p == 'L' || *h->p == 'l')) h->p++;
        if (*rank >= QO_MAX_RANK) {
            *too_deep = true;
            return false;
        }
        dims[(*rank)++] = v;
        if (eat(h, ')')) return true;
        if (!eat(h, ',')) return false;
    }
}

qo_status qo_npy_header(qo_ctx *cx, const char *name, const void *buf, size_t len, uint64_t file_len,
                        qo_tensor *out, size_t *data_off) {
    const uint8_t *b = buf;
    qo_loc l = {.file = name, .node_index = -1};
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(b, magic, sizeof magic))
        return qo_error(cx, QO_ERR_PARSE, &l, "not a .npy file (bad magic bytes)");
    unsigned major = b[6], minor = b[7];
    size_t hoff, hlen;
    if (major == 1) {
        hoff = 10;
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else if (major == 2 || major == 3) {
        if (len < 12) return qo_error(cx, QO_ERR_PARSE, &l, "truncated .npy header");
        hoff = 12;
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else {
        return qo_error(cx, QO_ERR_UNSUPPORTED, &l, "unsupported .npy format version %u.%u", major, minor);
    }
    if (hlen > len - hoff)
        return qo_error(cx, QO_ERR_PARSE, &l, "truncated .npy header: needs %zu bytes, the file has %zu", hoff + hlen,
                        len);
    hparse h = {(const char *)b + hoff, (const char *)b + hoff + hlen};
    char descr[64] = "";
    int fortran = -1;
    bool have_descr = false, have_shape = false, too_deep = false;
    int32_t rank = 0;
    int64_t dims[QO_MAX_RANK] = {0};
    if (!eat(&h, '{')) return qo_error(cx, QO_ERR_PARSE, &l, "malformed .npy header: expected a '{' dictionary");
    for (;;) {
        if (eat(&h, '}')) break;
        char key[32];
        if (!parse_str(&h, key, sizeof key) || !eat(&h, ':'))
            return qo_error(cx, QO_ERR_PARSE, &l, "malformed .npy header dictionary");
        if (!strcmp(key, "descr")) {
            if (!parse_str(&h, descr, sizeof descr))
                return qo_error(cx, QO_ERR_UNSUPPORTED, &l,
                                "unsupported .npy dtype: 'descr' is not a simple type string (structured arrays are not supported)");
            have_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&h, "True")) fortran = 1;
            else if (parse_word(&h, "False")) fortran = 0;
            else return qo_error(cx, QO_ERR_PARSE, &l, "malformed .npy header: bad 'fortran_order' value");
        } else if (!strcmp(key, "shape")) {
            if (!parse_shape(&h, &rank, dims, &too_deep)) {
                if (too_deep)
                    return qo_error(cx, QO_ERR_UNSUPPORTED, &l, "array rank exceeds the runtime's maximum rank %d",
                                    QO_MAX_RANK);
                return qo_error(cx, QO_ERR_PARSE, &l, "malformed .npy header: bad 'shape' tuple");
            }
            have_shape = true;
        } else {
            return qo_error(cx, QO_ERR_PARSE, &l, "malformed .npy header: unexpected key '%s'", key);
        }
        if (eat(&h, '}')) break;
        if (!eat(&h, ',')) return qo_error(cx, QO_ERR_PARSE, &l, "malformed .npy header dictionary");
    }
    if (!have_descr || !have_shape || fortran < 0)
        return qo_error(cx, QO_ERR_PARSE, &l, "malformed .npy header: missing '%s'",
                        !have_descr ? "descr" : !have_shape ? "shape" : "fortran_order");
    if (fortran)
        return qo_error(cx, QO_ERR_UNSUPPORTED, &l,
                        "Fortran-order arrays are not supported (save a C-order array, e.g. np.ascontiguousarray)");

    /* descr: byte order, kind, item size */
    char order = descr[0], kind = descr[0] ? descr[1] : 0;
    char *endp = NULL;
    long size = kind ? strtol(descr + 2, &endp, 10) : 0;
    qo_elem elem = QO_UNDEF;
    if (kind && endp && endp != descr + 2 && !*endp && strchr("<>|=", order))
        for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
            if (dtypes[i].kind == kind && dtypes[i].size == size) elem = dtypes[i].elem;
    if (elem == QO_UNDEF) return qo_error(cx, QO_ERR_UNSUPPORTED, &l, "unsupported .npy dtype '%s'", descr);
    if (order == '>' && size > 1)
        return qo_error(cx, QO_ERR_UNSUPPORTED, &l, "big-endian .npy data ('%s') is not supported", descr);

    qo_tensor t = {.elem = (uint8_t)elem, .rank = rank};
    memcpy(t.dims, dims, sizeof dims);
    size_t doff = hoff + hlen;
    len = file_len > SIZE_MAX ? SIZE_MAX : (size_t)file_len; /* from here on: the data size check */
    /* size check before allocating: a huge shape in a small file must not allocate */
    uint64_t need = (uint64_t)size;
    for (int32_t i = 0; i < rank; i++)
        if (dims[i] == 0) need = 0;
    for (int32_t i = 0; i < rank && need; i++) {
        if (need > (uint64_t)(len - doff) / (uint64_t)dims[i]) {
            need = UINT64_MAX;
            break;
        }
        need *= (uint64_t)dims[i];
    }
    if (need != len - doff) {
        char sh[200];
        size_t k = 0;
        for (int32_t i = 0; i < rank && k < sizeof sh; i++)
            k += (size_t)snprintf(sh + k, sizeof sh - k, "%s%" PRId64, i ? ", " : "", dims[i]);
        if (!rank) sh[0] = 0;
        if (need == UINT64_MAX)
            return qo_error(cx, QO_ERR_PARSE, &l, "truncated .npy data: shape (%s) of '%s' needs more than the %zu bytes the file has",
                            sh, descr, len - doff);
        if (need > len - doff)
            return qo_error(cx, QO_ERR_PARSE, &l, "truncated .npy data: shape (%s) of '%s' needs %" PRIu64 " bytes, the file has %zu",
                            sh, descr, need, len - doff);
        return qo_error(cx, QO_ERR_PARSE, &l, "the .npy file has %zu data bytes, shape (%s) of '%s' needs only %" PRIu64,
                        len - doff, sh, descr, need);
    }
    *out = t;
    *data_off = doff;
    return QO_OK;
}

qo_status qo_npy_parse(qo_ctx *cx, const char *name, const void *buf, size_t len, qo_tensor *out) {
    qo_loc l = {.file = name, .node_index = -1};
    size_t doff;
    QO_TRY(qo_npy_header(cx, name, buf, len, len, out, &doff));
    qo_tensor t = *out;
    memset(out, 0, sizeof *out);
    qo_status s = qo_tensor_alloc(cx, &t);
    if (s != QO_OK) {
        qo_tensor_free(&t);
        return qo_error(cx, s, &l, "cannot allocate the array");
    }
    if (t.nbytes) memcpy(t.data, (const uint8_t *)buf + doff, t.nbytes);
    if (t.elem == QO_BOOL)
        for (size_t i = 0; i < t.nbytes; i++) ((uint8_t *)t.data)[i] = ((uint8_t *)t.data)[i] != 0;
    *out = t;
    return QO_OK;
}

qo_status qo_npy_read(qo_ctx *cx, const char *path, qo_tensor *out) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    QO_TRY(qo_read_file(cx, path, &buf, &len));
    qo_status s = qo_npy_parse(cx, path, buf, len, out);
    free(buf);
    return s;
}

static const char *descr_of(int elem) {
    switch (elem) {
    case QO_F16: return "<f2";
    case QO_F32: return "<f4";
    case QO_F64: return "<f8";
    case QO_I8: case QO_I4: return "|i1";
    case QO_U8: case QO_U4: return "|u1";
    case QO_I16: return "<i2";
    case QO_U16: return "<u2";
    case QO_I32: return "<i4";
    case QO_U32: return "<u4";
    case QO_I64: return "<i8";
    case QO_U64: return "<u8";
    case QO_BOOL: return "|b1";
    default: return NULL;
    }
}

static qo_status encode(qo_ctx *cx, const qo_loc *l, const qo_tensor *t, char **out, size_t *len) {
    const char *descr = descr_of(t->elem);
    *out = NULL;
    *len = 0;
    if (!descr) {
        const char *en = qo_elem_name(t->elem);
        return qo_error(cx, QO_ERR_UNSUPPORTED, l, "element type %s has no .npy equivalent", en ? en : "unknown");
    }
    if (t->rank < 0 || t->rank > QO_MAX_RANK)
        return qo_error(cx, QO_ERR_BACKEND, l, "bad tensor rank %" PRId32, t->rank);
    int64_t ne = qo_tensor_numel(t);
    if (ne < 0 || t->nbytes != (size_t)ne * qo_rt_elem_size(t->elem) || (t->nbytes && !t->data))
        return qo_error(cx, QO_ERR_BACKEND, l, "tensor holds %zu bytes, inconsistent with its shape", t->nbytes);
    char hdr[64 + QO_MAX_RANK * 24];
    int k = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int32_t i = 0; i < t->rank; i++)
        k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%s%" PRId64, i ? ", " : "", t->dims[i]);
    k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%s), }", t->rank == 1 ? "," : "");
    size_t dict = (size_t)k;
    size_t pre = 10; /* version 1.0: the header always fits in 65535 bytes here */
    size_t total_hdr = (pre + dict + 1 + 63) / 64 * 64; /* magic+len+dict+'\n', padded to 64 */
    size_t hlen = total_hdr - pre;
    size_t nbytes = t->nbytes;
    char *p = malloc(total_hdr + nbytes + 1);
    if (!p) return qo_error(cx, QO_ERR_NOMEM, l, "out of memory encoding .npy");
    memcpy(p, magic, 6);
    p[6] = 1;
    p[7] = 0;
    p[8] = (char)(hlen & 0xFF);
    p[9] = (char)(hlen >> 8);
    memcpy(p + pre, hdr, dict);
    memset(p + pre + dict, ' ', hlen - dict - 1);
    p[total_hdr - 1] = '\n';
    if (nbytes) memcpy(p + total_hdr, t->data, nbytes);
    *out = p;
    *len = total_hdr + nbytes;
    return QO_OK;
}

qo_status qo_npy_encode(qo_ctx *cx, const qo_tensor *t, char **out, size_t *len) {
    return encode(cx, NULL, t, out, len);
}

qo_status qo_npy_write(qo_ctx *cx, const char *path, const qo_tensor *t) {
    char *buf;
    size_t len;
    qo_loc l = {.file = path, .node_index = -1};
    QO_TRY(encode(cx, &l, t, &buf, &len));
    qo_status s = qo_write_file_atomic(cx, path, buf, len);
    free(buf);
    return s;
}
