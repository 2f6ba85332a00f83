/* runtime/ref/ref.h — reference-kernel families. Each family file fills the rows of the ops it
 * implements in the kernel table (indexed by qo_op); registry.c calls every family once. */
#ifndef QOPT_RUNTIME_REF_REF_H
#define QOPT_RUNTIME_REF_REF_H

#include "runtime/rt.h"

void qo_ref_register_elementwise(qo_ref_kernel *table); /* elementwise.c: arithmetic, activations,
                                                            comparisons, logic, Where, Clip, Cast */
void qo_ref_register_quant(qo_ref_kernel *table);       /* quant.c: Quantize/DequantizeLinear, QONNX */
void qo_ref_register_nn(qo_ref_kernel *table);          /* nn.c: Conv, Gemm, MatMul, pools, norms,
                                                            softmax */
void qo_ref_register_reduce(qo_ref_kernel *table);      /* reduce.c: Reduce*, ArgMax/Min, TopK */
void qo_ref_register_shape(qo_ref_kernel *table);       /* shape.c: data movement and shape ops */
void qo_ref_register_train(qo_ref_kernel *table);       /* train.c: ai.qopt.train gradient ops */

#endif
