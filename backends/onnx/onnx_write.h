/* backends/onnx/onnx_write.h — qopt IR → ONNX ModelProto. */
#ifndef QOPT_BACKENDS_ONNX_WRITE_H
#define QOPT_BACKENDS_ONNX_WRITE_H

#include "ir/ir.h"

typedef struct qo_onnx_write_opts {
    bool external_data;        /* store constants above external_threshold bytes in a side file */
    size_t external_threshold; /* default 1024 when external_data is set (0 = default) */
    bool value_info_all;       /* also write value_info for every typed intermediate (node result
                                  that is not a graph output), not only values flagged QO_VAL_INFO */
    bool fsync;                /* fsync the written file(s) before the rename */
} qo_onnx_write_opts;

/* Conventions shared with the frontend:
 *  - anonymous values (name atom 0) get fresh deterministic names "qo_<n>" that collide with no value
 *    name of the module; two live values of one graph sharing a name are an error;
 *  - SPARSE_TENSOR / TYPE_PROTO attributes carry one serialized message in u.raw; the list kinds
 *    SPARSE_TENSORS / TYPE_PROTOS carry a->n messages in u.raw, each preceded by its byte length as
 *    a protobuf varint (the encoding protobuf uses for a length-delimited field, minus the tag);
 *  - external data goes to "<basename of path>.data" next to path, location = that basename. */

/* Writes m as an ONNX file at path: to a temporary file in the same directory, then renamed, so a
 * failure never leaves a half-written output. Names, domains, attributes, doc strings, metadata,
 * opset imports, value_info and subgraphs are written back. opts may be NULL. */
qo_status qo_onnx_write(qo_ctx *cx, const qo_module *m, const char *path, const qo_onnx_write_opts *opts);

/* Serializes m (all constants inline) into a malloc'd buffer. */
qo_status qo_onnx_serialize(qo_ctx *cx, const qo_module *m, uint8_t **buf, size_t *len);

#endif
