/* runtime/tensor_pb.c — ONNX TensorProto (.pb) files -> qo_tensor, through protobuf-c. */
#include "runtime/tensor_pb.h"

#include "onnx.pb-c.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

qo_status qo_tensor_pb_parse(qo_ctx *cx, const char *name, const void *buf, size_t len, qo_tensor *out,
                             char **name_out) {
    qo_loc l = {.file = name, .node_index = -1};
    memset(out, 0, sizeof *out);
    if (name_out) *name_out = NULL;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp) return qo_error(cx, QO_ERR_PARSE, &l, "not a serialized ONNX TensorProto");
    qo_status s = QO_OK;
    qo_tensor t = {0};
    int64_t e = tp->data_type;
    int bits = e > 0 && e < QO_ELEM_COUNT ? qo_elem_bits((int)e) : 0;
    if (e == QO_STR) {
        s = qo_error(cx, QO_ERR_UNSUPPORTED, &l, "string tensors are not supported by the runtime");
        goto out;
    }
    if (!bits || !qo_rt_elem_size((int)e)) {
        s = qo_error(cx, QO_ERR_UNSUPPORTED, &l, "unsupported tensor data type %" PRId64, e);
        goto out;
    }
    if (tp->segment || (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)) {
        s = qo_error(cx, QO_ERR_UNSUPPORTED, &l, "segmented or external-data tensors are not supported here");
        goto out;
    }
    if (tp->n_dims > QO_MAX_RANK) {
        s = qo_error(cx, QO_ERR_UNSUPPORTED, &l, "tensor rank %zu exceeds the runtime's maximum rank %d", tp->n_dims,
                     QO_MAX_RANK);
        goto out;
    }
    t.elem = (uint8_t)e;
    t.rank = (int32_t)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0) {
            s = qo_error(cx, QO_ERR_PARSE, &l, "negative dimension %" PRId64, tp->dims[i]);
            goto out;
        }
        t.dims[i] = tp->dims[i];
    }
    /* size sanity before allocating: the data present must match the shape */
    int64_t numel = 1;
    for (int32_t i = 0; i < t.rank; i++) {
        if (t.dims[i] && numel > (INT64_C(1) << 40) / t.dims[i]) {
            s = qo_error(cx, QO_ERR_PARSE, &l, "element count overflows");
            goto out;
        }
        numel *= t.dims[i];
    }
    size_t n = (size_t)numel, packed = qo_elem_storage((int)e, numel);
    size_t have;
    if (tp->has_raw_data) have = tp->raw_data.len == packed ? n : (size_t)-1;
    else if (e == QO_F32) have = tp->n_float_data;
    else if (e == QO_F64) have = tp->n_double_data;
    else if (e == QO_I64) have = tp->n_int64_data;
    else if (e == QO_U32 || e == QO_U64) have = tp->n_uint64_data;
    else if (bits == 4) have = tp->n_int32_data == (n + 1) / 2 ? n : (size_t)-1;
    else have = tp->n_int32_data;
    if (have != n) {
        s = qo_error(cx, QO_ERR_PARSE, &l, "tensor data does not match its shape (%" PRId64 " elements of type %s)",
                     numel, qo_elem_name((int)e));
        goto out;
    }
    if ((s = qo_tensor_alloc(cx, &t)) != QO_OK) goto out;
    uint8_t *d = t.data;
    if (!n) goto named;
    if (bits == 4) {
        for (size_t i = 0; i < n; i++) {
            unsigned byte = tp->has_raw_data ? tp->raw_data.data[i / 2] : (unsigned)tp->int32_data[i / 2];
            uint8_t nib = (uint8_t)((byte >> ((i & 1) * 4)) & 0xF);
            if (e == QO_I4 && (nib & 8)) nib |= 0xF0;
            d[i] = nib;
        }
    } else if (tp->has_raw_data) {
        memcpy(d, tp->raw_data.data, t.nbytes);
    } else if (e == QO_F32) {
        memcpy(d, tp->float_data, t.nbytes);
    } else if (e == QO_F64) {
        memcpy(d, tp->double_data, t.nbytes);
    } else if (e == QO_I64) {
        memcpy(d, tp->int64_data, t.nbytes);
    } else if (e == QO_U64) {
        memcpy(d, tp->uint64_data, t.nbytes);
    } else if (e == QO_U32) {
        for (size_t i = 0; i < n; i++) {
            uint32_t v = (uint32_t)tp->uint64_data[i];
            memcpy(d + 4 * i, &v, 4);
        }
    } else if (e == QO_I32) {
        memcpy(d, tp->int32_data, t.nbytes);
    } else if (bits == 8) {
        for (size_t i = 0; i < n; i++) d[i] = (uint8_t)tp->int32_data[i];
    } else if (bits == 16) {
        for (size_t i = 0; i < n; i++) {
            uint16_t v = (uint16_t)tp->int32_data[i];
            memcpy(d + 2 * i, &v, 2);
        }
    } else {
        s = qo_error(cx, QO_ERR_UNSUPPORTED, &l, "typed-field data of type %s is not supported", qo_elem_name((int)e));
        goto out;
    }
    if (e == QO_BOOL)
        for (size_t i = 0; i < n; i++) d[i] = d[i] != 0;
named:
    if (name_out) *name_out = qo_strdup(tp->name ? tp->name : "");
out:
    onnx__tensor_proto__free_unpacked(tp, NULL);
    if (s != QO_OK) qo_tensor_free(&t);
    else *out = t;
    return s;
}

qo_status qo_tensor_pb_read(qo_ctx *cx, const char *path, qo_tensor *out, char **name_out) {
    char *buf;
    size_t len;
    memset(out, 0, sizeof *out);
    if (name_out) *name_out = NULL;
    QO_TRY(qo_read_file(cx, path, &buf, &len));
    qo_status s = qo_tensor_pb_parse(cx, path, buf, len, out, name_out);
    free(buf);
    return s;
}
