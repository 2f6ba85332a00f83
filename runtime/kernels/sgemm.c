/* runtime/kernels/sgemm.c — our own single-threaded sgemm for the Conv paths, with the epilogue
 * applied while the output tile is still in registers.
 *
 * C[M, N] = A[M, K] B[K, N] (row-major, any leading dimensions), then per element, one float
 * operation per step as the unfused ops: v = acc (+ bias[row]) (+ res), then Relu / Clip. A (the
 * weights) is read in place; B is packed per KC x NR panel into a stack buffer (zero-padded to the
 * tile width), so the micro-kernel reads only full vectors; C tails use masked loads / stores.
 * Loop order: K blocks (the M x KC block of A stays in L2), column tiles (the packed panel stays
 * in L1), row tiles. C is written once per K block (so a K > KC product re-reads it) and the
 * epilogue runs in the last K block. No beta pass, no C zeroing, no weight re-packing.
 *
 * Micro-kernels: AVX-512 (8 rows x 32 columns) and AVX2+FMA (6 x 16), picked at run time; without
 * either, cblas_sgemm and qo_k_epilogue. FMA is used inside the dot products only (the tests allow
 * for reordered sums); the epilogue is separate adds, max, min in the unfused order. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/internal.h"

#include <cblas.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define QO_SG_X86 1
#include <immintrin.h>
#endif

/* K block: the packed panel (KC x 32 floats) stays within 20 KB of L1. */
#define SG_KC 160

static int sg_isa_forced = -1; /* -1: detect */

int qo_k_sgemm_isa(int force) {
    if (force >= 0) sg_isa_forced = force;
    else if (force == -2) sg_isa_forced = -1;
    if (sg_isa_forced >= 0) return sg_isa_forced;
#ifdef QO_SG_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
#else
    return 0;
#endif
}

#ifdef QO_SG_X86
/* ---- AVX-512: 8 x 32 ------------------------------------------------------------------------ */
#define T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))

T512 static inline __m512 sg_act512(__m512 v, qo_k_act act) {
    if (act.kind == QO_K_ACT_RELU) return _mm512_max_ps(_mm512_setzero_ps(), v); /* v < 0 ? 0 : v */
    if (act.kind == QO_K_ACT_CLIP) {
        v = _mm512_max_ps(_mm512_set1_ps(act.lo), v); /* v < lo ? lo : v */
        return _mm512_min_ps(_mm512_set1_ps(act.hi), v); /* v > hi ? hi : v */
    }
    return v;
}

/* One 8 x 32 tile over kc: A rows at A + i*lda (mr valid), the packed panel bp, C at C (ldc);
 * first: start from 0 (else from C); last: apply the epilogue. */
T512 static void sg_ukr512(int64_t kc, const float *A, int64_t lda, int mr, const float *bp, float *C, int64_t ldc,
                           __mmask16 k0m, __mmask16 k1m, bool first, bool last, const float *bias, const float *res,
                           int64_t ldr, qo_k_act act) {
    __m512 c0[8], c1[8];
    const float *a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        a[i] = A + (i < mr ? i : 0) * lda;
        if (first || i >= mr) {
            c0[i] = _mm512_setzero_ps(), c1[i] = _mm512_setzero_ps();
        } else {
            c0[i] = _mm512_maskz_loadu_ps(k0m, C + i * ldc);
            c1[i] = _mm512_maskz_loadu_ps(k1m, C + i * ldc + 16);
        }
    }
    for (int64_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(bp + k * 32), b1 = _mm512_load_ps(bp + k * 32 + 16);
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            __m512 av = _mm512_set1_ps(a[i][k]);
            c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        if (i >= mr) break;
        __m512 v0 = c0[i], v1 = c1[i];
        if (last) {
            if (bias) {
                __m512 bv = _mm512_set1_ps(bias[i]);
                v0 = _mm512_add_ps(v0, bv), v1 = _mm512_add_ps(v1, bv);
            }
            if (res) {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0m, res + i * ldr));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1m, res + i * ldr + 16));
            }
            v0 = sg_act512(v0, act), v1 = sg_act512(v1, act);
        }
        _mm512_mask_storeu_ps(C + i * ldc, k0m, v0);
        _mm512_mask_storeu_ps(C + i * ldc + 16, k1m, v1);
    }
}

T512 static void sg_run512(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                           float *C, int64_t ldc, const float *bias, const float *res, int64_t ldr, qo_k_act act) {
    float bp[SG_KC * 32] __attribute__((aligned(64)));
    int64_t nkb = qo_k_cdiv(K, SG_KC), kcb = qo_k_cdiv(K, nkb);
    for (int64_t k0 = 0; k0 < K; k0 += kcb) {
        int64_t kc = qo_k_min64(kcb, K - k0);
        bool first = k0 == 0, last = k0 + kc == K;
        for (int64_t j0 = 0; j0 < N; j0 += 32) {
            int64_t nc = qo_k_min64(32, N - j0);
            __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xffff : (1u << nc) - 1);
            __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xffff : nc <= 16 ? 0 : (1u << (nc - 16)) - 1);
            const float *bs = B + k0 * ldb + j0;
            if (nc == 32) {
                for (int64_t k = 0; k < kc; k++) {
                    _mm512_store_ps(bp + k * 32, _mm512_loadu_ps(bs + k * ldb));
                    _mm512_store_ps(bp + k * 32 + 16, _mm512_loadu_ps(bs + k * ldb + 16));
                }
            } else {
                for (int64_t k = 0; k < kc; k++) {
                    _mm512_store_ps(bp + k * 32, _mm512_maskz_loadu_ps(m0, bs + k * ldb));
                    _mm512_store_ps(bp + k * 32 + 16, _mm512_maskz_loadu_ps(m1, bs + k * ldb + 16));
                }
            }
            for (int64_t i0 = 0; i0 < M; i0 += 8)
                sg_ukr512(kc, A + i0 * lda + k0, lda, (int)qo_k_min64(8, M - i0), bp, C + i0 * ldc + j0, ldc, m0, m1,
                          first, last, bias ? bias + i0 : NULL, res ? res + i0 * ldr + j0 : NULL, ldr, act);
        }
    }
}

/* ---- AVX2 + FMA: 6 x 16 --------------------------------------------------------------------- */
#define T256 __attribute__((target("avx2,fma")))

T256 static inline __m256 sg_act256(__m256 v, qo_k_act act) {
    if (act.kind == QO_K_ACT_RELU) return _mm256_max_ps(_mm256_setzero_ps(), v);
    if (act.kind == QO_K_ACT_CLIP) {
        v = _mm256_max_ps(_mm256_set1_ps(act.lo), v);
        return _mm256_min_ps(_mm256_set1_ps(act.hi), v);
    }
    return v;
}

T256 static void sg_ukr256(int64_t kc, const float *A, int64_t lda, int mr, const float *bp, float *C, int64_t ldc,
                           __m256i k0m, __m256i k1m, bool first, bool last, const float *bias, const float *res,
                           int64_t ldr, qo_k_act act) {
    __m256 c0[6], c1[6];
    const float *a[6];
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        a[i] = A + (i < mr ? i : 0) * lda;
        if (first || i >= mr) {
            c0[i] = _mm256_setzero_ps(), c1[i] = _mm256_setzero_ps();
        } else {
            c0[i] = _mm256_maskload_ps(C + i * ldc, k0m);
            c1[i] = _mm256_maskload_ps(C + i * ldc + 8, k1m);
        }
    }
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(bp + k * 16), b1 = _mm256_load_ps(bp + k * 16 + 8);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            __m256 av = _mm256_broadcast_ss(a[i] + k);
            c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        if (i >= mr) break;
        __m256 v0 = c0[i], v1 = c1[i];
        if (last) {
            if (bias) {
                __m256 bv = _mm256_set1_ps(bias[i]);
                v0 = _mm256_add_ps(v0, bv), v1 = _mm256_add_ps(v1, bv);
            }
            if (res) {
                v0 = _mm256_add_ps(v0, _mm256_maskload_ps(res + i * ldr, k0m));
                v1 = _mm256_add_ps(v1, _mm256_maskload_ps(res + i * ldr + 8, k1m));
            }
            v0 = sg_act256(v0, act), v1 = sg_act256(v1, act);
        }
        _mm256_maskstore_ps(C + i * ldc, k0m, v0);
        _mm256_maskstore_ps(C + i * ldc + 8, k1m, v1);
    }
}

T256 static void sg_run256(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                           float *C, int64_t ldc, const float *bias, const float *res, int64_t ldr, qo_k_act act) {
    float bp[SG_KC * 16] __attribute__((aligned(32)));
    int64_t nkb = qo_k_cdiv(K, SG_KC), kcb = qo_k_cdiv(K, nkb);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t k0 = 0; k0 < K; k0 += kcb) {
        int64_t kc = qo_k_min64(kcb, K - k0);
        bool first = k0 == 0, last = k0 + kc == K;
        for (int64_t j0 = 0; j0 < N; j0 += 16) {
            int nc = (int)qo_k_min64(16, N - j0);
            __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc), lane);
            __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8), lane);
            const float *bs = B + k0 * ldb + j0;
            for (int64_t k = 0; k < kc; k++) {
                _mm256_store_ps(bp + k * 16, _mm256_maskload_ps(bs + k * ldb, m0));
                _mm256_store_ps(bp + k * 16 + 8, _mm256_maskload_ps(bs + k * ldb + 8, m1));
            }
            for (int64_t i0 = 0; i0 < M; i0 += 6)
                sg_ukr256(kc, A + i0 * lda + k0, lda, (int)qo_k_min64(6, M - i0), bp, C + i0 * ldc + j0, ldc, m0, m1,
                          first, last, bias ? bias + i0 : NULL, res ? res + i0 * ldr + j0 : NULL, ldr, act);
        }
    }
}
#endif

void qo_k_sgemm_epi(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                    float *C, int64_t ldc, const float *bias, const float *res, int64_t ldr, qo_k_act act) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty sums: zeros, then the epilogue */
        for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        qo_k_epilogue(C, M, N, ldc, bias, res, act);
        return;
    }
#ifdef QO_SG_X86
    int isa = qo_k_sgemm_isa(-1);
    if (isa == 2) {
        sg_run512(M, N, K, A, lda, B, ldb, C, ldc, bias, res, ldr, act);
        return;
    }
    if (isa == 1) {
        sg_run256(M, N, K, A, lda, B, ldb, C, ldc, bias, res, ldr, act);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f,
                C, (int)ldc);
    if (res && ldr != ldc) {
        for (int64_t i = 0; i < M; i++)
            qo_k_epilogue(C + i * ldc, 1, N, ldc, bias ? bias + i : NULL, res + i * ldr, act);
    } else {
        qo_k_epilogue(C, M, N, ldc, bias, res, act);
    }
}
