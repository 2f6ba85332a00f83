/* tests/runtime/npy_copy.c — reads IN.npy with qo_npy_read and writes it to OUT.npy with
 * qo_npy_write (so numpy can check both directions). Exit 0 ok, 1 error (message on stderr). */
#include "runtime/npy.h"

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN.npy OUT.npy\n", argv[0]);
        return 2;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_tensor t;
    if (qo_npy_read(&cx, argv[1], &t) != QO_OK) return 1;
    qo_status s = qo_npy_write(&cx, argv[2], &t);
    qo_tensor_free(&t);
    return s == QO_OK ? 0 : 1;
}
