/* runtime/ref/quant.c — reference kernels: QuantizeLinear, DequantizeLinear, QONNX Quant,
 * BipolarQuant, Trunc. */
#include "runtime/ref/ref.h"
#include "runtime/ref/util.h"

void qo_ref_register_quant(qo_ref_kernel *table) {
    (void)table;
}
