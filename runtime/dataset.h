/* runtime/dataset.h — streaming sample sets for calibration, evaluation and training.
 *
 * Sources:
 *   FILE.npy   one array, samples along axis 0 (single-input models)
 *   FILE.npz   a NumPy archive (np.savez or np.savez_compressed): one member per array, looked up by
 *              name ("<name>.npy"); a single-array request takes the only member, or "x"
 *   DIR        the *.npy files of a directory in name order, each holding samples along axis 0
 *              (or one sample without the batch axis when its rank is one less than expected);
 *              single array only
 * Reading is sequential and one batch at a time: memory is O(batch), never O(number of samples).
 * Every error names the file (and member). Library code: nothing printed. */
#ifndef QOPT_RUNTIME_DATASET_H
#define QOPT_RUNTIME_DATASET_H

#include "runtime/rt.h"

typedef struct qo_dataset qo_dataset;

/* Opens path for narr arrays. names[i] selects the npz member of array i (NULL: the single member or
 * "x"); want_rank[i] is the full rank expected (batch axis included), or -1 to accept any (then DIR
 * files are always batches). The sample shape of every file of a DIR must agree; the sample count
 * of all arrays must agree. */
qo_status qo_dataset_open(qo_ctx *cx, const char *path, uint32_t narr, const char *const *names,
                          const int32_t *want_rank, qo_dataset **out);
/* Number of samples. */
int64_t qo_dataset_count(const qo_dataset *d);
/* Element type and shape of array i with the batch axis (dims[0] = number of samples). */
void qo_dataset_shape(const qo_dataset *d, uint32_t i, qo_tensor *shape);
/* Reads the next min(batch, remaining) samples of every array into out[0..narr) (owned tensors,
 * reallocated as needed; free them with qo_tensor_free). *n = samples read, 0 at the end. */
qo_status qo_dataset_next(qo_ctx *cx, qo_dataset *d, int64_t batch, qo_tensor *out, int64_t *n);
/* Starts again from the first sample. */
qo_status qo_dataset_rewind(qo_ctx *cx, qo_dataset *d);
void qo_dataset_free(qo_dataset *d);

#endif
