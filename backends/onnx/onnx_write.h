/* backends/onnx/onnx_write.h — qopt IR → ONNX ModelProto. */
#ifndef QOPT_BACKENDS_ONNX_WRITE_H
#define QOPT_BACKENDS_ONNX_WRITE_H

#include "ir/ir.h"

typedef struct qo_onnx_write_opts {
    bool external_data;        /* store constants above external_threshold bytes in a side file */
    size_t external_threshold; /* default 1024 when external_data is set */
} qo_onnx_write_opts;

/* Writes m as an ONNX file at path: to a temporary file in the same directory, then renamed, so a
 * failure never leaves a half-written output. Names, domains, attributes, doc strings, metadata,
 * opset imports, value_info and subgraphs are written back. opts may be NULL. */
qo_status qo_onnx_write(qo_ctx *cx, const qo_module *m, const char *path, const qo_onnx_write_opts *opts);

/* Serializes m (all constants inline) into a malloc'd buffer. */
qo_status qo_onnx_serialize(qo_ctx *cx, const qo_module *m, uint8_t **buf, size_t *len);

#endif
