/* runtime/ref/registry.c — the reference-kernel table, filled once by every family. */
#include "runtime/ref/ref.h"

#include <pthread.h>

static qo_ref_kernel table[QO_OP_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill(void) {
    qo_ref_register_elementwise(table);
    qo_ref_register_quant(table);
    qo_ref_register_nn(table);
    qo_ref_register_reduce(table);
    qo_ref_register_shape(table);
    qo_ref_register_train(table);
}

qo_ref_kernel qo_ref_kernel_for(qo_op op) {
    pthread_once(&once, fill);
    return (unsigned)op < QO_OP_COUNT ? table[op] : NULL;
}
