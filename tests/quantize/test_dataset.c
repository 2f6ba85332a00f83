/* tests/quantize/test_dataset.c — reads a dataset (runtime/dataset.h) in batches of B and writes each
 * array's samples, concatenated, to OUTDIR/<i>.npy; dataset.sh compares them with numpy's arrays.
 * Usage: test_dataset PATH B OUTDIR RANK [NAME ...]  (RANK: expected full rank, -1 for any).
 * Exit 0 on success, 1 with the diagnostic on stderr on failure. */
#include "runtime/dataset.h"
#include "runtime/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    qo_ctx cx;
    qo_ctx_init(&cx);
    int64_t b = atoll(argv[2]);
    uint32_t narr = argc > 5 ? (uint32_t)(argc - 5) : 1;
    const char **names = argc > 5 ? (const char **)argv + 5 : NULL;
    int32_t ranks[16];
    for (uint32_t i = 0; i < narr; i++) ranks[i] = atoi(argv[4]);
    qo_dataset *d;
    if (qo_dataset_open(&cx, argv[1], narr, names, ranks, &d) != QO_OK) {
        return 1;
    }
    int rc = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) { /* twice: rewind must restart */
        qo_tensor all[16], batch[16];
        memset(batch, 0, sizeof batch);
        for (uint32_t i = 0; i < narr; i++) {
            qo_dataset_shape(d, i, &all[i]);
            all[i].data = NULL;
            qo_tensor_alloc(&cx, &all[i]);
        }
        size_t off[16] = {0};
        int64_t n, total = 0;
        while (qo_dataset_next(&cx, d, b, batch, &n) == QO_OK && n) {
            for (uint32_t i = 0; i < narr; i++) {
                memcpy((char *)all[i].data + off[i], batch[i].data, batch[i].nbytes);
                off[i] += batch[i].nbytes;
            }
            total += n;
        }
        if (cx.nerrors || total != qo_dataset_count(d)) rc = 1;
        for (uint32_t i = 0; i < narr && !rc; i++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%u_%d.npy", argv[3], i, pass);
            if (qo_npy_write(&cx, p, &all[i]) != QO_OK) rc = 1;
        }
        for (uint32_t i = 0; i < narr; i++) {
            qo_tensor_free(&all[i]);
            qo_tensor_free(&batch[i]);
        }
        qo_dataset_rewind(&cx, d);
    }
    qo_dataset_free(d);
    return rc;
}
