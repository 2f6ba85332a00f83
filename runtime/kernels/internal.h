/* runtime/kernels/internal.h — helpers shared by the kernel files (not part of the ABI). */
#ifndef QOPT_RUNTIME_KERNELS_INTERNAL_H
#define QOPT_RUNTIME_KERNELS_INTERNAL_H

#include "runtime/kernels/kernels.h"

#include <stdlib.h>

/* Spatial geometry padded to 3-D (leading dims of extent 1), so one loop nest serves 1-D..3-D. */
typedef struct qo_k_geom3 {
    int64_t in[3], out[3], ker[3], str[3], dil[3], pad[3], pad_end[3];
    int64_t isz, osz, ksz;
} qo_k_geom3;

/* Fills g from nsp-dim arrays (pad_end may be NULL: zeros). */
void qo_k_geom3_fill(qo_k_geom3 *g, int nsp, const int64_t *in, const int64_t *out, const int64_t *ker,
                     const int64_t *str, const int64_t *dil, const int64_t *pad, const int64_t *pad_end);

/* Adds per-row bias (bias[r], may be NULL), then res (NULL, or a matrix laid out as y: res[r * ld + c]),
 * then the activation, over rows x cols at stride ld. */
void qo_k_epilogue(float *y, int64_t rows, int64_t cols, int64_t ld, const float *bias, const float *res,
                   qo_k_act act);
/* Adds per-column bias (bias[c], may be NULL), then res (as above), then the activation. */
void qo_k_epilogue_cols(float *y, int64_t rows, int64_t cols, int64_t ld, const float *bias, const float *res,
                        qo_k_act act);

/* C[M, N] (ldc) = A[M, K] (lda) B[K, N] (ldb), then per element v (+ bias[row], bias may be NULL)
 * (+ res[row * ldr + col], res may be NULL), then act: the Conv epilogue of qo_k_epilogue, applied
 * in registers (runtime/kernels/sgemm.c). Single-threaded, no allocation; C must not overlap A, B,
 * res. Runs the AVX-512 or AVX2 micro-kernel the CPU has (see qo_k_sgemm_isa), else OpenBLAS. */
void qo_k_sgemm_epi(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                    float *C, int64_t ldc, const float *bias, const float *res, int64_t ldr, qo_k_act act);
/* C[M, N] (ldc) = A[M, K] (lda) B[K, N], or (accum) C += A B, without an epilogue: B is B[K, N]
 * row-major at ldb, or (bt) given transposed, B^T[N, K] row-major at ldb. The kernels of
 * qo_k_sgemm_epi (same ISA choice; OpenBLAS without AVX2); each element's sum runs over k in order
 * (in K blocks), so the result does not depend on M, N tiling. C must not overlap A, B. */
void qo_k_sgemm_acc(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, bool bt,
                    bool accum, float *C, int64_t ldc);
/* at[i K + k] = a[k lda + i] for i < rows, k < K: the rows x K row-major copy of the transposed
 * block at a (its K rows lda floats apart), the form qo_k_sgemm's A operand is read in. */
static inline void qo_k_transpose_to(const float *a, int64_t lda, int64_t rows, int64_t K, float *at) {
    for (int64_t k = 0; k < K; k++)
        for (int64_t i = 0; i < rows; i++) at[i * K + k] = a[k * lda + i];
}
/* C[M, N] (ldc) = A[M, K] (lda) B (B[K, N] at ldb, or (bt) B^T[N, K] at ldb): the kernels and sums
 * of qo_k_sgemm_epi, without an epilogue. Each element is one multiply-add chain over k in order
 * (a K block continues from the partial stored by the one before), as onnxruntime's MLAS and
 * OpenBLAS sum: the order the QCDQ bit-exactness tests depend on. C must not overlap A, B. */
void qo_k_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, bool bt,
                float *C, int64_t ldc);
/* The micro-kernel qo_k_sgemm_epi uses: 2 AVX-512, 1 AVX2+FMA, 0 OpenBLAS. force -1 only queries
 * (the forced value, else what the CPU has), -2 restores detection, >= 0 forces it (for tests: the
 * caller must not force more than an unforced query returned). Returns the level now in use. Not
 * thread-safe against running kernels. */
int qo_k_sgemm_isa(int force);
/* LayerNormalization of `rows` rows of n floats (x and y row strides ldx, ldy; y may be x): the
 * operations of qo_k_layernorm_f32 (layernorm.c), which runs this. */
void qo_k_layernorm_rows(const float *x, float *y, int64_t rows, int64_t n, int64_t ldx, int64_t ldy, float eps,
                         const float *scale, const float *bias);

/* Direct stride-1 convolutions on zero-padded flat planes (conv_flat.c), for 1-D/2-D, one group,
 * at most QO_K_FLAT_MAX_TAPS taps, on AVX-512; each returns false without touching the outputs
 * when it does not apply. Same contracts as qo_k_conv_f32, qo_k_convtranspose_f32 and
 * qo_k_convgradweight_f32; the float sums run in another order. */
#define QO_K_FLAT_MAX_TAPS 49
bool qo_k_conv_flat_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                        qo_pool *pool);
bool qo_k_convtranspose_flat_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                                 qo_pool *pool);
bool qo_k_convgradweight_flat_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                  qo_pool *pool);

/* Winograd F(2x2, 3x3) (conv_wino.c) for Conv (transposed false) or ConvTranspose (true) with
 * 3x3 kernels, stride 1, one group, when p->fast asks for it, on AVX-512; returns false without
 * touching y when it does not apply. Same contract as qo_k_conv_f32 / qo_k_convtranspose_f32 up to
 * rounding. */
bool qo_k_conv_wino_f32(const qo_k_conv_params *p, bool transposed, const float *x, const float *w, const float *b,
                        float *y, qo_pool *pool);
/* Winograd F(4x4, 3x3) (conv_wino4.c): as qo_k_conv_wino_f32, for batches of at least 12 images
 * (16 to a vector) and outputs of at least 6x6; false without touching y when it does not apply. */
bool qo_k_conv_wino4_f32(const qo_k_conv_params *p, bool transposed, const float *x, const float *w, const float *b,
                         float *y, qo_pool *pool);
/* The GEMMs of the Winograd kernels (conv_wino.c, AVX-512 only): for each position p < npos,
 * Z[p][m][0 .. 16 nv) = sum_c U[p][m][c] V[p][c][..], summing c in order. Z [npos][M], V [npos][C]
 * (rows ld floats apart); U [npos][M / mb blocks][C][MB] (MB = mb, the last block smaller), mb <= 8. */
void qo_k_wino_gemms(int npos, int64_t M, int64_t mb, int64_t C, int64_t nv, const float *U, const float *V,
                     int64_t ld, float *Z);
/* The reductions of the Winograd weight gradients (conv_wino.c, AVX-512 only): for each position
 * p < npos, S[p][m / 4][c / 4][4 (m % 4) + c % 4] += the dot product of Y[p][m] and V[p][c] (rows ld
 * floats apart, 16 nv floats long; Y [npos][Mp], V [npos][Cp], Mp and Cp multiples of 4), summed in
 * a fixed order. */
void qo_k_wino_dots(int npos, const float *Y, int64_t Mp, const float *V, int64_t Cp, int64_t ld, int64_t nv,
                    float *S);
/* Winograd F(3x3, 4x4) (conv_wino4.c) for the weight gradient of the convolutions of
 * qo_k_conv_wino4_f32; false without touching dw when it does not apply. Same contract as
 * qo_k_convgradweight_f32 up to rounding (depends on the pool size, not on scheduling). */
bool qo_k_convgradweight_wino4_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                   qo_pool *pool);
/* Winograd F(3x3, 2x2) (conv_wino.c) for the weight gradient of the convolutions above (3x3, stride
 * 1, one group, p->fast, AVX-512); false without touching dw when it does not apply. Same contract
 * as qo_k_convgradweight_f32 up to rounding (depends on the pool size, not on scheduling). */
bool qo_k_convgradweight_wino_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                  qo_pool *pool);

/* The weight gradient of a 2-D convolution with a stride >= 2 (conv_strided.c: a GEMM over the output
 * pixels reading x's padded planes in place, no im2col), with its 1x1 sibling when M2 > 0 (as
 * qo_k_convgradweight_sib_f32: dy2 [N, M2, out...] gives dw2 [M2, C]), for one group, dilation 1,
 * M and M2 multiples of 16, p->fast, on AVX-512; false without touching dw when it does not apply.
 * Same contract as qo_k_convgradweight_f32 up to rounding (depends on the pool size, not on
 * scheduling). */
bool qo_k_convgradweight_strided_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                     int64_t M2, const float *dy2, float *dw2, qo_pool *pool);

/* A 2-D convolution with a stride >= 2 (conv_strided.c: the same GEMM form, output pixels by filters,
 * then transposed into y and the epilogue applied), with its 1x1 sibling (p->y2), for one group,
 * dilation 1, more than 8 channels, M (and M2) multiples of 16, p->fast, on AVX-512; false without
 * touching y when it does not apply. Same contract as qo_k_conv_f32 up to rounding. */
bool qo_k_conv_strided_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                           qo_pool *pool);

/* A 2-D ConvTranspose with a stride >= 2 (conv_strided.c: per output row and column class, the taps
 * that reach it as terms of the same GEMM form), with its 1x1 sibling (p->x2: added where it
 * reaches) and the QuantGrad epilogue (p->qg, prepared), for one group, dilation 1, M a multiple of
 * 32 and more than 8 input channels (at least 48 on planes larger than 64 pixels), p->fast, on
 * AVX-512; false without touching y when it does not apply. Same contract as qo_k_convtranspose_f32 up to rounding. */
bool qo_k_convtranspose_strided_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b,
                                    float *y, qo_pool *pool);

/* Padded planes for the AVX-512 kernels (conv_flat.c; call only when qo_k_sgemm_isa(-1) == 2):
 * dst[c ldc + r Wp + s] = src[c][r - pt][s - pl] (src [C][H][W], zero outside) for r < Hp, s < Wp,
 * then zeros up to dst[c ldc + S) (S >= Hp Wp + 16). */
void qo_k_flat_pad(const float *src, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t Hp, int64_t Wp,
                   float *dst, int64_t S, int64_t ldc);

/* Scratch for thread tid: from the pool, or (pool NULL) a buffer the caller frees with
 * qo_k_scratch_release. */
void *qo_k_scratch(qo_pool *pool, int tid, size_t bytes, void **owned);
void qo_k_scratch_release(void *owned);

/* Hot loops are compiled for AVX-512 and AVX2 besides the baseline, picked at load time (GCC
 * function multi-versioning). The build is ISO C (-ffp-contract=off): no FMA contraction, so each
 * version rounds exactly as the scalar code does. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define QO_K_SIMD __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define QO_K_SIMD
#endif

static inline int64_t qo_k_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t qo_k_max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t qo_k_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* A 16-lane mask (an AVX-512 __mmask16) with bits [lo, hi) set, both clipped to [0, 16]. */
static inline uint16_t qo_k_bits16(int64_t lo, int64_t hi) {
    lo = qo_k_max64(0, qo_k_min64(16, lo)), hi = qo_k_max64(0, qo_k_min64(16, hi));
    return (uint16_t)(hi > lo ? ((1u << hi) - 1) & ~((1u << lo) - 1) : 0);
}

/* Valid kernel taps of one dim: k in [*lo, *hi) keeps 0 <= start + k * d < in. */
static inline void qo_k_taps(int64_t start, int64_t d, int64_t ker, int64_t in, int64_t *lo, int64_t *hi) {
    int64_t l = start < 0 ? qo_k_cdiv(-start, d) : 0;
    int64_t h = in - 1 - start < 0 ? 0 : (in - 1 - start) / d + 1;
    if (h > ker) h = ker;
    if (l > h) l = h;
    *lo = l, *hi = h;
}

#endif
