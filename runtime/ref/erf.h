/* runtime/ref/erf.h — qo_erff: the float32 erf of the reference kernels, the JIT (which emits the
 * same operations as LLVM IR, backends/llvm/jit.c) and the optimized kernels' GELU epilogue, so all
 * three agree bit for bit and vectorize (no libm call, no branch).
 *
 * |x| < 1:        x + x * PA(x*x - 0.5)              (PA: degree 6, erf(x)/x - 1 in t = x*x)
 * 1 <= |x| < CUT: sign(x) * (1 - PB(|x| - MID))      (PB: degree 12, erfc on [1, 3.92])
 * |x| >= CUT:     sign(x) * 1 (erff rounds to 1 from 3.8325 on); NaN stays NaN (the middle branch).
 * Coefficients: Chebyshev least-squares fits (numpy, erf/erfc in double) rounded to float, evaluated
 * by Horner, one float operation per step (ISO C: no FMA contraction). An exhaustive sweep over all
 * 2^31 non-negative floats found at most 2 ulp from glibc's erff and from the correctly rounded erf
 * (0.75% of the inputs differ from erff at all); it is odd-symmetric exactly, erf(-0) = -0,
 * erf(+-Inf) = +-1. */
#ifndef QOPT_RUNTIME_REF_ERF_H
#define QOPT_RUNTIME_REF_ERF_H

#include <math.h>

#define QO_ERF_NA 7
#define QO_ERF_NB 13
static const float qo_erf_pa[QO_ERF_NA] = {-0.0345312618f, -0.281072199f, 0.0794099942f, -0.018283356f,
                                           0.00348019181f, -0.000565410592f, 7.88249745e-05f};
static const float qo_erf_pb[QO_ERF_NB] = {0.000503326883f, -0.00265620882f, 0.00653574849f, -0.00983282831f,
                                           0.00990496483f,  -0.00679815374f, 0.00296311988f, -0.000461569696f,
                                           -0.000390678731f, 0.000301366963f, -5.18964043e-05f, -2.53631424e-05f,
                                           9.16692079e-06f};
#define QO_ERF_MID 2.46000004f
#define QO_ERF_CUT 3.92000008f

/* erf(x) in float32, within 2 ulp (see above); the operation order is part of the contract. */
static inline float qo_erff(float x) {
    float a = fabsf(x), u = x * x - 0.5f;
    float p = qo_erf_pa[QO_ERF_NA - 1];
    for (int i = QO_ERF_NA - 2; i >= 0; i--) p = p * u + qo_erf_pa[i];
    float ra = x + x * p;
    float v = a - QO_ERF_MID, q = qo_erf_pb[QO_ERF_NB - 1];
    for (int i = QO_ERF_NB - 2; i >= 0; i--) q = q * v + qo_erf_pb[i];
    float rb = a >= QO_ERF_CUT ? copysignf(1.0f, x) : copysignf(1.0f - q, x);
    return a < 1.0f ? ra : rb;
}

#endif
