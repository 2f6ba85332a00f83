/* frontend/onnx_load.h — ONNX ModelProto → qopt IR. */
#ifndef QOPT_FRONTEND_ONNX_LOAD_H
#define QOPT_FRONTEND_ONNX_LOAD_H

#include "ir/ir.h"

/* Loads an ONNX model file. The file is memory-mapped and initializer raw_data is not copied: the
 * module's constants point into the mapping, which the module keeps alive (the same for external
 * data files, resolved relative to the model's directory). IR versions 3..10, default-domain opsets
 * 7..21; unknown ops and custom domains become generic nodes; QONNX ops are recognised. Constant
 * nodes, typed-field initializers, float16/bfloat16/int4 data, strings, value_info, subgraphs,
 * doc strings and metadata_props are all kept. Every problem found is reported naming the file,
 * node and op; on failure *out is NULL and nothing leaks. */
qo_status qo_onnx_load(qo_ctx *cx, const char *path, qo_module **out);

/* Same from a caller-owned buffer (copied where needed, so it may be freed after the call). `name`
 * is used in diagnostics; external data is resolved relative to base_dir (NULL = not allowed). */
qo_status qo_onnx_load_buffer(qo_ctx *cx, const char *name, const void *buf, size_t len,
                              const char *base_dir, qo_module **out);

#endif
