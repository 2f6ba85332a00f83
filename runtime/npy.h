/* runtime/npy.h — NumPy .npy files <-> qo_tensor.
 *
 * Reads format versions 1.0, 2.0 and 3.0; little-endian (or byte-order-free) C-order arrays of
 * float16, float32, float64, int8, uint8, int16, uint16, int32, uint32, int64, uint64 and bool,
 * including 0-d arrays. Fortran order, big-endian data, structured/object/string dtypes and ranks
 * above QO_MAX_RANK are reported as errors naming the file. Malformed files (bad magic, truncated
 * header or data, bad header dictionary, sizes that do not add up) are errors, never crashes. */
#ifndef QOPT_RUNTIME_NPY_H
#define QOPT_RUNTIME_NPY_H

#include "runtime/rt.h"

/* Reads the .npy file at path into *out (owned storage; free with qo_tensor_free). On failure *out
 * is zeroed and an error naming path has been reported. */
qo_status qo_npy_read(qo_ctx *cx, const char *path, qo_tensor *out);

/* Parses only the header: buf holds the first `len` bytes of a .npy file of `file_len` bytes. Fills
 * elem/rank/dims of *out (no data) and the data's byte offset; checks that the data size matches. */
qo_status qo_npy_header(qo_ctx *cx, const char *name, const void *buf, size_t len, uint64_t file_len,
                        qo_tensor *out, size_t *data_off);
/* Same from bytes in memory; `name` names the source in diagnostics. */
qo_status qo_npy_parse(qo_ctx *cx, const char *name, const void *buf, size_t len, qo_tensor *out);

/* Encodes t as .npy bytes (format 1.0, or 2.0 if the header needs more than 65535 bytes) into a
 * malloc'd buffer *out of *len bytes. 4-bit tensors are written unpacked as int8/uint8. Element types
 * without a NumPy equivalent (bfloat16, float8, strings, ...) are errors. */
qo_status qo_npy_encode(qo_ctx *cx, const qo_tensor *t, char **out, size_t *len);

/* Writes t to path as .npy through qo_write_file_atomic (no partial file on failure). */
qo_status qo_npy_write(qo_ctx *cx, const char *path, const qo_tensor *t);

#endif
