/* runtime/tensor_pb.h — serialized ONNX TensorProto files (the input_N.pb / output_N.pb of ONNX's
 * backend test data) -> qo_tensor. */
#ifndef QOPT_RUNTIME_TENSOR_PB_H
#define QOPT_RUNTIME_TENSOR_PB_H

#include "runtime/rt.h"

/* Reads the TensorProto file at path into *out (owned storage; 4-bit types unpacked to one byte per
 * element). raw_data and the typed fields (float_data, int32_data, ...) are both accepted; string
 * tensors, external data and segments are QO_ERR_UNSUPPORTED. If name_out is not NULL it receives a
 * malloc'd copy of the tensor's name ("" if it has none). Errors name the file. */
qo_status qo_tensor_pb_read(qo_ctx *cx, const char *path, qo_tensor *out, char **name_out);

/* Same from bytes in memory; `name` names the source in diagnostics. */
qo_status qo_tensor_pb_parse(qo_ctx *cx, const char *name, const void *buf, size_t len, qo_tensor *out,
                             char **name_out);

#endif
