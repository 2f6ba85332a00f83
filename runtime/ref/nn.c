/* runtime/ref/nn.c — reference kernels: Conv, ConvTranspose, Gemm, MatMul, normalizations, pools,
 * Softmax/LogSoftmax. */
#include "runtime/ref/ref.h"

void qo_ref_register_nn(qo_ref_kernel *table) { (void)table; }
