/* runtime/ref/elementwise.c — reference kernels: arithmetic, activations, comparisons, logic,
 * Where, Clip, Cast. */
#include "runtime/ref/ref.h"
#include "runtime/ref/util.h"

void qo_ref_register_elementwise(qo_ref_kernel *table) {
    (void)table;
}
