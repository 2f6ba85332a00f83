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
/* How ONNX constructs land in the IR (details in frontend/onnx_load.c's header comment):
 *   - top-level initializers with raw_data: QO_CONST_BORROWED into the mapped file, with file/file_offset
 *     set (the bytes are not aligned: read them with memcpy); external data: borrowed from the mapped side
 *     file, with ext_location/ext_offset/ext_length as written (-1 when absent) and file = resolved path;
 *     typed fields (float_data, int32_data, ...): converted to the raw little-endian layout, owned.
 *   - a graph input that has an initializer: QO_VAL_INPUT with cref = its default (not QO_VAL_CONST).
 *   - a default-domain Constant node: a QO_VAL_CONST value (in g->consts, after the initializers, in node
 *     order) named after its output; the node is not kept. Constant with sparse_value stays a node.
 *   - sparse_initializer: densified into an ordinary constant.
 *   - SPARSE_TENSOR / TYPE_PROTO attributes: u.raw holds the serialized message; SPARSE_TENSORS /
 *     TYPE_PROTOS: u.raw holds the n messages, each preceded by its byte length as a protobuf varint.
 *   - names read from an enclosing graph: captures of the subgraph that reads them.
 *   - FunctionProtos: their original bytes, verbatim, in m->functions.
 *   - file order of nodes is kept unless a graph is not topologically sorted (then it is toposorted). */

/* Same from a caller-owned buffer (copied where needed, so it may be freed after the call). `name`
 * is used in diagnostics; external data is resolved relative to base_dir (NULL = not allowed). */
qo_status qo_onnx_load_buffer(qo_ctx *cx, const char *name, const void *buf, size_t len,
                              const char *base_dir, qo_module **out);

#endif
