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
 * for reordered sums); the epilogue is separate adds, max, min in the unfused order.
 *
 * qo_k_sgemm_acc (the weight gradient of Conv) runs the same kernels without an epilogue, with B
 * optionally given transposed (B^T row-major [N, K]: the packing step transposes it into the panel)
 * and optionally accumulating into C: as BLAS with beta 1, each K block's products are summed from
 * zero in registers and then added to C (sums of at most SG_KC terms before they meet C, so long
 * accumulations keep the accuracy of a blocked sum). On AVX-512 a column tile of
 * at most 16 columns (M >= 16) runs a 16 x 16 kernel instead of half-masked 8 x 32 tiles. */
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

/* How a K block starts and ends (see sg_ukr512). */
enum { SG_ZERO, SG_LOAD, SG_ADD };

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
 * cm: SG_ZERO start from 0, SG_LOAD start from C, SG_ADD start from 0 and add C at the store; last:
 * apply the epilogue. */
T512 static void sg_ukr512(int64_t kc, const float *A, int64_t lda, int mr, const float *bp, float *C, int64_t ldc,
                           __mmask16 k0m, __mmask16 k1m, int cm, bool last, const float *bias, const float *res,
                           int64_t ldr, qo_k_act act) {
    __m512 c0[8], c1[8];
    const float *a[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        a[i] = A + (i < mr ? i : 0) * lda;
        if (cm != SG_LOAD || i >= mr) {
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
        if (cm == SG_ADD) {
            v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(k0m, C + i * ldc), v0);
            v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(k1m, C + i * ldc + 16), v1);
        }
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

/* One 16 x 16 tile over kc (no epilogue): as sg_ukr512 with a 16-column panel bp, 16 rows of A
 * (all readable), storing rows [skip, 16) of C only. The rows are addressed from four bases at 0,
 * 1, 2, 3 lda, so the row pointers stay in registers. */
T512 static void sg_ukr512n(int64_t kc, const float *A, int64_t lda, int skip, const float *bp, float *C,
                            int64_t ldc, __mmask16 km, int cm) {
    __m512 c[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        c[i] = cm != SG_LOAD || i < skip ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(km, C + i * ldc);
    const float *b0 = A, *b1 = A + 4 * lda, *b2 = A + 8 * lda, *b3 = A + 12 * lda;
    int64_t l1 = lda, l2 = 2 * lda, l3 = 3 * lda;
    for (int64_t k = 0; k < kc; k++) {
        __m512 b = _mm512_load_ps(bp + k * 16);
        c[0] = _mm512_fmadd_ps(_mm512_set1_ps(b0[k]), b, c[0]);
        c[1] = _mm512_fmadd_ps(_mm512_set1_ps(b0[k + l1]), b, c[1]);
        c[2] = _mm512_fmadd_ps(_mm512_set1_ps(b0[k + l2]), b, c[2]);
        c[3] = _mm512_fmadd_ps(_mm512_set1_ps(b0[k + l3]), b, c[3]);
        c[4] = _mm512_fmadd_ps(_mm512_set1_ps(b1[k]), b, c[4]);
        c[5] = _mm512_fmadd_ps(_mm512_set1_ps(b1[k + l1]), b, c[5]);
        c[6] = _mm512_fmadd_ps(_mm512_set1_ps(b1[k + l2]), b, c[6]);
        c[7] = _mm512_fmadd_ps(_mm512_set1_ps(b1[k + l3]), b, c[7]);
        c[8] = _mm512_fmadd_ps(_mm512_set1_ps(b2[k]), b, c[8]);
        c[9] = _mm512_fmadd_ps(_mm512_set1_ps(b2[k + l1]), b, c[9]);
        c[10] = _mm512_fmadd_ps(_mm512_set1_ps(b2[k + l2]), b, c[10]);
        c[11] = _mm512_fmadd_ps(_mm512_set1_ps(b2[k + l3]), b, c[11]);
        c[12] = _mm512_fmadd_ps(_mm512_set1_ps(b3[k]), b, c[12]);
        c[13] = _mm512_fmadd_ps(_mm512_set1_ps(b3[k + l1]), b, c[13]);
        c[14] = _mm512_fmadd_ps(_mm512_set1_ps(b3[k + l2]), b, c[14]);
        c[15] = _mm512_fmadd_ps(_mm512_set1_ps(b3[k + l3]), b, c[15]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        if (i >= skip)
            _mm512_mask_storeu_ps(C + i * ldc, km,
                                  cm == SG_ADD ? _mm512_add_ps(_mm512_maskz_loadu_ps(km, C + i * ldc), c[i]) : c[i]);
}

/* Packs the transposed panel: bp[k * w + j] = Bt[j * ldb + k] for j < nc, k < kc, 0 for nc <= j < w
 * (w 16 or 32): 16 x 16 blocks transposed in registers. */
T512 static void sg_pack_t512(const float *Bt, int64_t ldb, int64_t nc, int64_t kc, float *bp, int w) {
    for (int64_t jb = 0; jb < w; jb += 16)
        for (int64_t kb = 0; kb < kc; kb += 16) {
            int64_t kn = qo_k_min64(16, kc - kb);
            __mmask16 km = (__mmask16)(kn >= 16 ? 0xffff : (1u << kn) - 1);
            __m512 r[16];
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++)
                r[j] = jb + j < nc ? _mm512_maskz_loadu_ps(km, Bt + (jb + j) * ldb + kb) : _mm512_setzero_ps();
            /* 16 x 16 transpose: r[j][k] -> t[k][j] */
            __m512 t[16];
#pragma GCC unroll 8
            for (int j = 0; j < 16; j += 2) {
                t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
                t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
            }
#pragma GCC unroll 4
            for (int j = 0; j < 16; j += 4) {
                r[j] = _mm512_shuffle_ps(t[j], t[j + 2], 0x44);
                r[j + 1] = _mm512_shuffle_ps(t[j], t[j + 2], 0xee);
                r[j + 2] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0x44);
                r[j + 3] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0xee);
            }
            /* r[4q + s] holds, per 128-bit lane l, k = 4l + s for rows j in 4q..4q+3 */
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                __m512 a0 = _mm512_shuffle_f32x4(r[s], r[4 + s], 0x88), a1 = _mm512_shuffle_f32x4(r[s], r[4 + s], 0xdd);
                __m512 b0 = _mm512_shuffle_f32x4(r[8 + s], r[12 + s], 0x88),
                       b1 = _mm512_shuffle_f32x4(r[8 + s], r[12 + s], 0xdd);
                t[s] = _mm512_shuffle_f32x4(a0, b0, 0x88);      /* k = s */
                t[8 + s] = _mm512_shuffle_f32x4(a0, b0, 0xdd);  /* k = 8 + s */
                t[4 + s] = _mm512_shuffle_f32x4(a1, b1, 0x88);  /* k = 4 + s */
                t[12 + s] = _mm512_shuffle_f32x4(a1, b1, 0xdd); /* k = 12 + s */
            }
#pragma GCC unroll 16
            for (int k = 0; k < 16; k++)
                if (k < kn) _mm512_store_ps(bp + (kb + k) * w + jb, t[k]);
        }
}

T512 static void sg_run512(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                           float *C, int64_t ldc, const float *bias, const float *res, int64_t ldr, qo_k_act act,
                           bool bt, bool accum, bool add, bool narrow) {
    float bp[SG_KC * 32] __attribute__((aligned(64)));
    int64_t nkb = qo_k_cdiv(K, SG_KC), kcb = qo_k_cdiv(K, nkb);
    for (int64_t k0 = 0; k0 < K; k0 += kcb) {
        int64_t kc = qo_k_min64(kcb, K - k0);
        int cm = k0 == 0 && !accum ? SG_ZERO : add ? SG_ADD : SG_LOAD;
        bool last = k0 + kc == K;
        for (int64_t j0 = 0; j0 < N; j0 += 32) {
            int64_t nc = qo_k_min64(32, N - j0);
            __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xffff : (1u << nc) - 1);
            __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xffff : nc <= 16 ? 0 : (1u << (nc - 16)) - 1);
            if (narrow && nc <= 16 && M >= 16) {
                if (bt) sg_pack_t512(B + j0 * ldb + k0, ldb, nc, kc, bp, 16);
                else
                    for (int64_t k = 0; k < kc; k++)
                        _mm512_store_ps(bp + k * 16, _mm512_maskz_loadu_ps(m0, B + (k0 + k) * ldb + j0));
                /* the last tile ends at M, overlapping the one before (its overlap rows are not stored) */
                for (int64_t i0 = 0; i0 < M; i0 += 16) {
                    int64_t t0 = qo_k_min64(i0, M - 16);
                    sg_ukr512n(kc, A + t0 * lda + k0, lda, (int)(i0 - t0), bp, C + t0 * ldc + j0, ldc, m0, cm);
                }
                continue;
            }
            const float *bs = B + k0 * ldb + j0;
            if (bt) {
                sg_pack_t512(B + j0 * ldb + k0, ldb, nc, kc, bp, 32);
            } else if (nc == 32) {
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
                          cm, last, bias ? bias + i0 : NULL, res ? res + i0 * ldr + j0 : NULL, ldr, act);
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
                           __m256i k0m, __m256i k1m, int cm, bool last, const float *bias, const float *res,
                           int64_t ldr, qo_k_act act) {
    __m256 c0[6], c1[6];
    const float *a[6];
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        a[i] = A + (i < mr ? i : 0) * lda;
        if (cm != SG_LOAD || i >= mr) {
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
        if (cm == SG_ADD) {
            v0 = _mm256_add_ps(_mm256_maskload_ps(C + i * ldc, k0m), v0);
            v1 = _mm256_add_ps(_mm256_maskload_ps(C + i * ldc + 8, k1m), v1);
        }
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

/* Packs the transposed panel: bp[k * 16 + j] = Bt[j * ldb + k] for j < nc, k < kc, 0 for j >= nc:
 * 8 x 8 blocks transposed in registers. */
T256 static void sg_pack_t256(const float *Bt, int64_t ldb, int nc, int64_t kc, float *bp) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int jb = 0; jb < 16; jb += 8)
        for (int64_t kb = 0; kb < kc; kb += 8) {
            int kn = (int)qo_k_min64(8, kc - kb);
            __m256i km = _mm256_cmpgt_epi32(_mm256_set1_epi32(kn), lane);
            __m256 r[8], t[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                r[j] = jb + j < nc ? _mm256_maskload_ps(Bt + (jb + j) * ldb + kb, km) : _mm256_setzero_ps();
#pragma GCC unroll 4
            for (int j = 0; j < 8; j += 2) {
                t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
                t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
            }
#pragma GCC unroll 2
            for (int j = 0; j < 8; j += 4) {
                r[j] = _mm256_shuffle_ps(t[j], t[j + 2], 0x44);
                r[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], 0xee);
                r[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0x44);
                r[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], 0xee);
            }
            /* r[4q + s] holds, per 128-bit lane l, k = 4l + s for rows j in 4q..4q+3 */
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                t[s] = _mm256_permute2f128_ps(r[s], r[4 + s], 0x20);
                t[4 + s] = _mm256_permute2f128_ps(r[s], r[4 + s], 0x31);
            }
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++)
                if (k < kn) _mm256_store_ps(bp + (kb + k) * 16 + jb, t[k]);
        }
}

T256 static void sg_run256(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                           float *C, int64_t ldc, const float *bias, const float *res, int64_t ldr, qo_k_act act,
                           bool bt, bool accum, bool add) {
    float bp[SG_KC * 16] __attribute__((aligned(32)));
    int64_t nkb = qo_k_cdiv(K, SG_KC), kcb = qo_k_cdiv(K, nkb);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t k0 = 0; k0 < K; k0 += kcb) {
        int64_t kc = qo_k_min64(kcb, K - k0);
        int cm = k0 == 0 && !accum ? SG_ZERO : add ? SG_ADD : SG_LOAD;
        bool last = k0 + kc == K;
        for (int64_t j0 = 0; j0 < N; j0 += 16) {
            int nc = (int)qo_k_min64(16, N - j0);
            __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc), lane);
            __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nc - 8), lane);
            const float *bs = B + k0 * ldb + j0;
            if (bt) sg_pack_t256(B + j0 * ldb + k0, ldb, nc, kc, bp);
            else
                for (int64_t k = 0; k < kc; k++) {
                    _mm256_store_ps(bp + k * 16, _mm256_maskload_ps(bs + k * ldb, m0));
                    _mm256_store_ps(bp + k * 16 + 8, _mm256_maskload_ps(bs + k * ldb + 8, m1));
                }
            for (int64_t i0 = 0; i0 < M; i0 += 6)
                sg_ukr256(kc, A + i0 * lda + k0, lda, (int)qo_k_min64(6, M - i0), bp, C + i0 * ldc + j0, ldc, m0, m1,
                          cm, last, bias ? bias + i0 : NULL, res ? res + i0 * ldr + j0 : NULL, ldr, act);
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
        sg_run512(M, N, K, A, lda, B, ldb, C, ldc, bias, res, ldr, act, false, false, false, false);
        return;
    }
    if (isa == 1) {
        sg_run256(M, N, K, A, lda, B, ldb, C, ldc, bias, res, ldr, act, false, false, false);
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

/* qo_k_sgemm (add false: K blocks continue from C) and qo_k_sgemm_acc (add true: each K block from
 * zero, then added); accum: the first block also adds to C. */
static void sg_product(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb,
                       bool bt, bool accum, bool add, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accum)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
#ifdef QO_SG_X86
    const qo_k_act none = {QO_K_ACT_NONE, 0, 0};
    int isa = qo_k_sgemm_isa(-1);
    if (isa == 2) {
        sg_run512(M, N, K, A, lda, B, ldb, C, ldc, NULL, NULL, 0, none, bt, accum, add, true);
        return;
    }
    if (isa == 1) {
        sg_run256(M, N, K, A, lda, B, ldb, C, ldc, NULL, NULL, 0, none, bt, accum, add);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, bt ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)lda,
                B, (int)ldb, accum ? 1.0f : 0.0f, C, (int)ldc);
}

void qo_k_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, bool bt,
                float *C, int64_t ldc) {
    sg_product(M, N, K, A, lda, B, ldb, bt, false, false, C, ldc);
}

void qo_k_sgemm_acc(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, bool bt,
                    bool accum, float *C, int64_t ldc) {
    sg_product(M, N, K, A, lda, B, ldb, bt, accum, true, C, ldc);
}
