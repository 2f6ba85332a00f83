/* runtime/ref/reduce.c — reference kernels: Reduce*, ArgMax/ArgMin, TopK. */
#include "runtime/ref/ref.h"

void qo_ref_register_reduce(qo_ref_kernel *table) { (void)table; }
