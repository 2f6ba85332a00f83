/* runtime/kernels/train_kernels.h — optimized float32 kernels of the training ops (domain
 * "ai.qopt.train", reference kernels in runtime/ref/train.c) and their node adapter.
 *
 * Numerics: QuantGrad, MaxPoolGrad and ReduceSum give results bit-identical to the reference kernels (the same
 * float/double expressions per element; MaxPoolGrad accumulates overlapping windows in double in the
 * reference's order; ReduceSum sums in the blocked order of runtime/ref/fsum.h, which the reference
 * uses too, so its result does not depend on the pool size either). ConvGradWeight sums in float
 * through sgemm (one product per image and group, images added in a fixed order for a given thread
 * count), so it agrees with the reference's double sums to about 1e-6 relative and is deterministic
 * for a given pool size.
 *
 * The adapter has the reference-kernel signature and declines (QO_ERR_UNSUPPORTED, no diagnostic)
 * every form it does not cover (f64 operands, scale broadcasts over more than one axis, malformed
 * nodes); the caller then runs the reference kernel, which reports errors. An output that arrives
 * as a float32 view (owned 0) of exactly the result's shape is written in place (the LLVM JIT passes
 * its planned buffers so); other outputs are made (qo_tensor_make) as usual. */
#ifndef QOPT_RUNTIME_KERNELS_TRAIN_KERNELS_H
#define QOPT_RUNTIME_KERNELS_TRAIN_KERNELS_H

#include "runtime/kernels/kernels.h"
#include "runtime/ref/fsum.h"
#include "runtime/rt.h"

/* True for the ops of training steps the adapter may run (QuantGrad, MaxPoolGrad, ConvGradWeight,
 * and float32 ReduceSum with an axes input, bit-identical to the reference). */
bool qo_k_train_supported(qo_op op);

/* Runs k's node (one of qo_k_train_supported) on pool (NULL: the calling thread) into freshly made
 * outputs, or returns QO_ERR_UNSUPPORTED without a diagnostic for the forms it does not cover. */
qo_status qo_k_train_node_run(qo_kctx *k, qo_pool *pool, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                              uint32_t nout);

/* A ConvGradWeight node's geometry from its inputs' shapes (dY, X, W; data not read), as the adapter
 * resolves it; QO_ERR_UNSUPPORTED (no diagnostic) where the adapter declines. */
qo_status qo_k_cgw_params(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_k_conv_params *p);

/* ConvGradWeight: dw[M, C/group, ker...] = sum over n and output positions o of
 * dy[n, m, o] * x[n, grp(m) * C/group + c, o * str - pad + k * dil] (zero outside x), with p's
 * geometry as for qo_k_conv_f32 (p->act and p->res are ignored). */
void qo_k_convgradweight_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw, qo_pool *pool);
/* The weight gradients of a convolution and of its 1x1 sibling on the same input (qo_k_conv_sib_ok(p):
 * the sibling reads x at p's center tap): dw as qo_k_convgradweight_f32, and dw2[M2, C] of the
 * 1x1 convolution with p's strides and no padding from its output gradient dy2[N, M2, out...].
 * Where p takes the im2col path (strided, more than 8 channels and filters) both come from one
 * im2col (the sibling's is the center tap's rows), else they run apart; either way dw2 has the
 * sums of qo_k_convgradweight_f32 on the sibling alone (same chunks, same order). */
void qo_k_convgradweight_sib_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw, int64_t M2,
                                 const float *dy2, float *dw2, qo_pool *pool);

/* ---- the QuantGrad epilogue of ConvTranspose (qo_k_qgrad, kernels.h) ---- */
/* Fills g's derived fields (lo, hi, fast, avx512) from the others: once before g is used. */
void qo_k_qgrad_prepare(qo_k_qgrad *g);
/* Applies prepared g to y[e0, e1) of the tensor at y and feeds the span's dScale terms, in order,
 * to acc (untouched if g->ds is NULL). dX is the unfused QuantGrad's bit for bit. */
void qo_k_qgrad_span(const qo_k_qgrad *g, float *y, int64_t e0, int64_t e1, qo_fsum *acc);
/* Applies prepared g to the whole n-element y on pool, dScale included: the unfused QuantGrad's
 * path and results, bit for bit. */
void qo_k_qgrad_apply(const qo_k_qgrad *g, float *y, int64_t n, qo_pool *pool);

#endif
