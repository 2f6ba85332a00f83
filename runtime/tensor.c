/* runtime/tensor.c — qo_tensor storage: sizes, allocation, views of constants, copies.
 *
 * Storage is plain malloc/free (not qo_malloc, which aborts on exhaustion): a tensor too large for
 * memory is an ordinary error the interpreter reports, not a crash. */
#include "runtime/rt.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Largest tensor the runtime allocates (bytes): larger requests are reported, not attempted. */
#define QO_RT_MAX_BYTES ((uint64_t)1 << 40)

size_t qo_rt_elem_size(int elem) {
    if (elem == QO_STR) return 0;
    int bits = qo_elem_bits(elem);
    if (bits <= 0) return 0;
    return bits < 8 ? 1 : (size_t)bits / 8;
}

int64_t qo_tensor_numel(const qo_tensor *t) {
    int64_t n = 1;
    for (int32_t i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

/* Checked element count and byte size of t's shape. */
static qo_status shape_bytes(qo_ctx *cx, const qo_tensor *t, size_t *nbytes) {
    size_t es = qo_rt_elem_size(t->elem);
    if (!es) {
        const char *en = qo_elem_name(t->elem);
        return qo_error(cx, QO_ERR_UNSUPPORTED, NULL, "tensors of element type %s are not supported by the runtime",
                        en ? en : "unknown");
    }
    if (t->rank < 0 || t->rank > QO_MAX_RANK)
        return qo_error(cx, QO_ERR_UNSUPPORTED, NULL, "tensor rank %" PRId32 " is outside 0..%d", t->rank,
                        QO_MAX_RANK);
    uint64_t n = 1;
    bool zero = false;
    for (int32_t i = 0; i < t->rank; i++) {
        int64_t d = t->dims[i];
        if (d < 0) return qo_error(cx, QO_ERR_BACKEND, NULL, "negative dimension %" PRId64 " at axis %" PRId32, d, i);
        if (d == 0) zero = true;
        else if (!zero && n > QO_RT_MAX_BYTES / (uint64_t)d) n = QO_RT_MAX_BYTES + 1;
        else if (!zero) n *= (uint64_t)d;
    }
    if (zero) n = 0;
    if (n > QO_RT_MAX_BYTES / es)
        return qo_error(cx, QO_ERR_LIMIT, NULL, "tensor is too large (more than %" PRIu64 " bytes)", QO_RT_MAX_BYTES);
    *nbytes = (size_t)(n * es);
    return QO_OK;
}

qo_status qo_tensor_alloc(qo_ctx *cx, qo_tensor *t) {
    size_t nb;
    t->data = NULL;
    t->nbytes = 0;
    t->owned = 0;
    QO_TRY(shape_bytes(cx, t, &nb));
    if (nb) {
        t->data = calloc(1, nb);
        if (!t->data) return qo_error(cx, QO_ERR_NOMEM, NULL, "out of memory allocating a tensor of %zu bytes", nb);
        t->owned = 1;
    }
    t->nbytes = nb;
    return QO_OK;
}

qo_status qo_tensor_make(qo_ctx *cx, qo_tensor *t, int elem, int32_t rank, const int64_t *dims) {
    memset(t, 0, sizeof *t);
    if (rank < 0 || rank > QO_MAX_RANK)
        return qo_error(cx, QO_ERR_UNSUPPORTED, NULL, "tensor rank %" PRId32 " is outside 0..%d", rank, QO_MAX_RANK);
    t->elem = (uint8_t)elem;
    t->rank = rank;
    for (int32_t i = 0; i < rank; i++) t->dims[i] = dims[i];
    return qo_tensor_alloc(cx, t);
}

void qo_tensor_free(qo_tensor *t) {
    if (!t) return;
    if (t->owned) free(t->data);
    memset(t, 0, sizeof *t);
}

qo_status qo_tensor_from_const(qo_ctx *cx, const qo_module *m, qo_cref c, qo_tensor *out) {
    memset(out, 0, sizeof *out);
    const qo_constdata *cd = qo_const_get(m, c);
    const qo_typedata *td = cd ? qo_type_get(m, cd->type) : NULL;
    if (!td || td->kind != QO_TY_TENSOR || td->rank < 0)
        return qo_error(cx, QO_ERR_INVALID_MODEL, NULL, "constant #%u has no static tensor type", c);
    if (td->elem == QO_STR)
        return qo_error(cx, QO_ERR_UNSUPPORTED, NULL, "string tensors are not supported by the runtime");
    if (td->rank > QO_MAX_RANK)
        return qo_error(cx, QO_ERR_UNSUPPORTED, NULL, "constant of rank %" PRId32 " exceeds the runtime's maximum rank %d",
                        td->rank, QO_MAX_RANK);
    out->elem = td->elem;
    out->rank = td->rank;
    for (int32_t i = 0; i < td->rank; i++) out->dims[i] = td->dims[i];
    size_t nb;
    QO_TRY(shape_bytes(cx, out, &nb));
    int bits = qo_elem_bits(td->elem);
    if (bits == 4) { /* unpack: low nibble first; int4 sign-extended */
        int64_t n = qo_tensor_numel(out);
        if (cd->nbytes < qo_elem_storage(td->elem, n))
            return qo_error(cx, QO_ERR_INVALID_MODEL, NULL, "constant #%u holds %zu bytes, too few for %" PRId64
                            " 4-bit elements", c, cd->nbytes, n);
        QO_TRY(qo_tensor_alloc(cx, out));
        const uint8_t *src = cd->data;
        uint8_t *dst = out->data;
        for (int64_t i = 0; i < n; i++) {
            uint8_t nib = (uint8_t)((src[i / 2] >> ((i & 1) * 4)) & 0xF);
            if (td->elem == QO_I4 && (nib & 8)) nib |= 0xF0;
            dst[i] = nib;
        }
        return QO_OK;
    }
    if (cd->nbytes != nb)
        return qo_error(cx, QO_ERR_INVALID_MODEL, NULL, "constant #%u holds %zu bytes, expected %zu", c, cd->nbytes, nb);
    if (!nb) return QO_OK;
    size_t es = qo_rt_elem_size(td->elem);
    if ((uintptr_t)cd->data % es) {
        /* borrowed bytes inside a mapped .onnx need not be aligned: kernels read typed pointers, so
         * misaligned constants are copied once */
        out->data = malloc(nb);
        if (!out->data) return qo_error(cx, QO_ERR_NOMEM, NULL, "out of memory copying a constant of %zu bytes", nb);
        memcpy(out->data, cd->data, nb);
        out->owned = 1;
    } else {
        out->data = (void *)cd->data;
    }
    out->nbytes = nb;
    return QO_OK;
}

qo_status qo_tensor_copy(qo_ctx *cx, const qo_tensor *src, qo_tensor *dst) {
    qo_tensor t = *src;
    QO_TRY(qo_tensor_alloc(cx, &t));
    if (t.nbytes != src->nbytes) {
        qo_tensor_free(&t);
        return qo_error(cx, QO_ERR_BACKEND, NULL, "tensor holds %zu bytes, expected %zu for its shape", src->nbytes,
                        t.nbytes);
    }
    if (t.nbytes) memcpy(t.data, src->data, t.nbytes);
    *dst = t;
    return QO_OK;
}
