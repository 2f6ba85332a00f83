/* runtime/kernels/conv_flat.c — direct 2-D convolutions with stride 1 on "flat" padded planes, for
 * the small channel counts where im2col + sgemm spends its time copying (LeNet's 3- and 6-channel
 * convolutions, the input gradients of ResNet's 3x3 convolutions).
 *
 * An input plane is copied, zero-padded, into P[Hp][Wp] with Hp = OH + (KH - 1) dh and
 * Wp = OW + (KW - 1) dw, and the output is computed on the flat index j = oh * Wp + ow for every
 * ow < Wp: out[j] = sum over taps t of w[t] * P[j + off[t]], off[t] = kh dh Wp + kw dw. The columns
 * ow >= OW are computed and dropped; in exchange each tap is one contiguous run, so the inner loop
 * is AVX-512 loads of P and FMAs with broadcast weights, blocked MB output channels x J vectors in
 * registers. ConvTranspose with stride 1 is the same convolution on its input with the kernel
 * flipped and its two channel axes swapped. A strided Conv (dilation 1) reads phase planes: the
 * input split by row and column remainder modulo the strides, so each tap is again one contiguous
 * run of one phase plane (same sums in the same order). A strided ConvTranspose is one such
 * convolution per output phase (the taps congruent to it), scattered back at the stride. The
 * weight gradient multiplies the flat output
 * gradient (its dropped columns zero) by the shifted P runs, MB channels x TB taps in registers.
 *
 * Sums run over (c, tap) in order per output element (forward), and per lane over each image's
 * vectors in chunks summed from zero (weight gradient); nothing depends on thread scheduling. The
 * weight gradient sums one range of images per pool thread and adds the ranges in order, so its
 * result depends on the pool size (as qo_k_convgradweight_f32's does). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/train_kernels.h"

#include "runtime/kernels/internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define FLAT_X86 1
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define INL __attribute__((always_inline)) inline

/* Geometry of one flat convolution: src planes [C][H][W] read as P[r][s] = src[r - pt][s - pl]
 * (zero outside), output planes [M][OH][OW]. */
typedef struct flat_geom {
    int64_t C, M, H, W, pt, pl, OH, OW, KH, KW, dh, dw;
    int64_t Hp, Wp, psz;  /* padded plane, floats per plane with slack */
    /* strides sh x sw > 1 (forward only, dilation 1): each channel's P holds nph phase planes of
       qsz floats, phase (a, b) at slot[a][b]: Q[i][j] = src[sh i + a - pt][sw j + b - pl], Hp x Wp
       = (OH + (KH - 1) / sh) x (OW + (KW - 1) / sw); tap (kh, kw) reads phase (kh % sh, kw % sw)
       at (kh / sh, kw / sw). Stride 1: one phase, qsz = psz. */
    int64_t sh, sw, nph, qsz;
    int8_t slot[4][4];
    int64_t L, nv, ntap;  /* flat outputs (OH - 1) Wp + OW, their 16-vectors, taps */
    int64_t off[QO_K_FLAT_MAX_TAPS];
} flat_geom;

static void flat_geom_init(flat_geom *g, int64_t C, int64_t M, int64_t H, int64_t W, int64_t pt, int64_t pl,
                           int64_t OH, int64_t OW, int64_t KH, int64_t KW, int64_t dh, int64_t dw) {
    *g = (flat_geom){.C = C, .M = M, .H = H, .W = W, .pt = pt, .pl = pl, .OH = OH, .OW = OW, .KH = KH, .KW = KW,
                     .dh = dh, .dw = dw};
    g->Hp = OH + (KH - 1) * dh, g->Wp = OW + (KW - 1) * dw;
    g->L = (OH - 1) * g->Wp + OW, g->nv = qo_k_cdiv(g->L, 16), g->ntap = KH * KW;
    /* reads reach at most j + 15 + off < Hp Wp + 15 (j < nv 16 <= L + 15) */
    g->psz = (g->Hp * g->Wp + 16 + 15) / 16 * 16;
    g->sh = g->sw = 1, g->nph = 1, g->qsz = g->psz;
    for (int64_t i = 0; i < KH; i++)
        for (int64_t k = 0; k < KW; k++) g->off[i * KW + k] = i * dh * g->Wp + k * dw;
}

/* Strided geometry (dilation 1, strides <= 4): phase planes for the phases the taps use. */
static void flat_geom_strided(flat_geom *g, int64_t C, int64_t M, int64_t H, int64_t W, int64_t pt, int64_t pl,
                              int64_t OH, int64_t OW, int64_t KH, int64_t KW, int64_t sh, int64_t sw) {
    flat_geom_init(g, C, M, H, W, pt, pl, OH, OW, KH, KW, 1, 1);
    g->sh = sh, g->sw = sw;
    g->Hp = OH + (KH - 1) / sh, g->Wp = OW + (KW - 1) / sw;
    g->L = (OH - 1) * g->Wp + OW, g->nv = qo_k_cdiv(g->L, 16);
    /* as for stride 1: reads reach at most j + 15 + off < (phase slot) qsz + Hp Wp + 15 */
    g->qsz = (g->Hp * g->Wp + 16 + 15) / 16 * 16;
    memset(g->slot, -1, sizeof g->slot);
    g->nph = 0;
    for (int64_t i = 0; i < KH; i++)
        for (int64_t k = 0; k < KW; k++) {
            int a = (int)(i % sh), b = (int)(k % sw);
            if (g->slot[a][b] < 0) g->slot[a][b] = (int8_t)g->nph++;
            g->off[i * KW + k] = g->slot[a][b] * g->qsz + (i / sh) * g->Wp + k / sw;
        }
    g->psz = g->nph * g->qsz;
}

/* The phase planes of C channels of one image (stride > 1): channel c's phase (a, b) at
 * P + c ldc + slot[a][b] lds, Hp x Wp as in flat_geom, then zeros up to qsz. Stride 2 along the
 * rows: 16 outputs from a 32-float window (two masked loads, read only inside src) and one
 * even-lane permute; a row's last vector may spill into the next row or the slack (written after). */
T512 static void flat_pad_phases(const flat_geom *g, const float *src, float *P, int64_t ldc, int64_t lds) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int64_t c = 0; c < g->C; c++) {
        const float *sc = src + c * g->H * g->W;
        for (int a = 0; a < g->sh; a++) {
            if (g->sw == 2) { /* both column phases from one window: evens b = 0, odds b = 1 */
                float *q0 = g->slot[a][0] < 0 ? NULL : P + c * ldc + g->slot[a][0] * lds;
                float *q1 = g->slot[a][1] < 0 ? NULL : P + c * ldc + g->slot[a][1] * lds;
                if (!q0 && !q1) continue;
                for (int64_t i = 0; i < g->Hp; i++) {
                    int64_t r = g->sh * i + a - g->pt;
                    if (r < 0 || r >= g->H) {
                        if (q0) memset(q0 + i * g->Wp, 0, (size_t)g->Wp * sizeof(float));
                        if (q1) memset(q1 + i * g->Wp, 0, (size_t)g->Wp * sizeof(float));
                        continue;
                    }
                    uintptr_t sr = (uintptr_t)(sc + r * g->W);
                    for (int64_t j = 0; j < g->Wp; j += 16) {
                        int64_t s0 = 2 * j - g->pl; /* window e < 32 reads src column s0 + e */
                        __m512 lo = _mm512_maskz_loadu_ps(qo_k_bits16(-s0, g->W - s0),
                                                          (const void *)(sr + (uintptr_t)(s0 * 4)));
                        __m512 hi = _mm512_maskz_loadu_ps(qo_k_bits16(-s0 - 16, g->W - s0 - 16),
                                                          (const void *)(sr + (uintptr_t)((s0 + 16) * 4)));
                        if (q0) _mm512_storeu_ps(q0 + i * g->Wp + j, _mm512_permutex2var_ps(lo, even, hi));
                        if (q1) _mm512_storeu_ps(q1 + i * g->Wp + j, _mm512_permutex2var_ps(lo, odd, hi));
                    }
                }
            } else {
                for (int b = 0; b < g->sw; b++) {
                    if (g->slot[a][b] < 0) continue;
                    float *q = P + c * ldc + g->slot[a][b] * lds;
                    for (int64_t i = 0; i < g->Hp; i++) {
                        int64_t r = g->sh * i + a - g->pt;
                        float *qr = q + i * g->Wp;
                        for (int64_t j = 0; j < g->Wp; j++) {
                            int64_t s = g->sw * j + b - g->pl;
                            qr[j] = r >= 0 && r < g->H && s >= 0 && s < g->W ? sc[r * g->W + s] : 0.0f;
                        }
                    }
                }
            }
            for (int b = 0; b < g->sw; b++) { /* the slack: qsz - Hp Wp >= 16 covers any spill */
                if (g->slot[a][b] < 0) continue;
                float *q = P + c * ldc + g->slot[a][b] * lds;
                for (int64_t t = g->Hp * g->Wp; t < g->qsz; t += 16)
                    _mm512_mask_storeu_ps(q + t, qo_k_bits16(0, g->qsz - t), _mm512_setzero_ps());
            }
        }
    }
}

/* Padded planes (internal.h): each row's zeros on either side, then its source run copied with plain
 * vector loads and a masked tail (only src is read). The earlier form, masked loads over the whole
 * padded row from a shifted address, measured 2.4x slower alone on Zen 5 (ResNet's 16 x 32 x 32
 * images) and the strided ConvTranspose with its sibling 7 % slower on 16 x 16 inputs. */
T512 void qo_k_flat_pad(const float *src, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t Hp,
                          int64_t Wp, float *dst, int64_t S, int64_t ldc) {
    int64_t s0 = qo_k_max64(0, pl), s1 = qo_k_min64(Wp, W + pl); /* dst columns with a source */
    for (int64_t c = 0; c < C; c++) {
        const float *sc = src + c * H * W;
        float *pc = dst + c * ldc;
        for (int64_t r = 0; r < Hp; r++) {
            float *pr = pc + r * Wp;
            int64_t sr = r - pt;
            if (sr < 0 || sr >= H || s1 <= s0) {
                memset(pr, 0, (size_t)Wp * sizeof(float));
                continue;
            }
            for (int64_t t = 0; t < s0; t++) pr[t] = 0.0f;
            const float *xr = sc + sr * W + (s0 - pl);
            float *yr = pr + s0;
            int64_t n = s1 - s0, t = 0;
            for (; t + 16 <= n; t += 16) _mm512_storeu_ps(yr + t, _mm512_loadu_ps(xr + t));
            if (t < n) {
                __mmask16 k = qo_k_bits16(0, n - t);
                _mm512_mask_storeu_ps(yr + t, k, _mm512_maskz_loadu_ps(k, xr + t));
            }
            for (int64_t t2 = s1; t2 < Wp; t2++) pr[t2] = 0.0f;
        }
        if (S > Hp * Wp) memset(pc + Hp * Wp, 0, (size_t)(S - Hp * Wp) * sizeof(float));
    }
}

/* Forward block: O[m][j0 + 16 v ..] = sum_c sum_t wk[(c ntap + t) MB + m] P[c][j0 + 16 v + off[t]],
 * m < MB, v < J. */
T512 static INL void fwd_blk(const int MB, const int J, const flat_geom *g, const float *P, const float *wk, float *O,
                             int64_t ldo, int64_t j0) {
    __m512 acc[8][8];
    for (int m = 0; m < MB; m++)
        for (int v = 0; v < J; v++) acc[m][v] = _mm512_setzero_ps();
    int64_t ntap = g->ntap;
    for (int64_t c = 0; c < g->C; c++) {
        const float *pc = P + c * g->psz + j0, *wc = wk + c * ntap * MB;
        for (int64_t t = 0; t < ntap; t++) {
            const float *pt = pc + g->off[t];
            __m512 xv[8];
            for (int v = 0; v < J; v++) xv[v] = _mm512_loadu_ps(pt + 16 * v);
            for (int m = 0; m < MB; m++) {
                __m512 wv = _mm512_set1_ps(wc[t * MB + m]);
                for (int v = 0; v < J; v++) acc[m][v] = _mm512_fmadd_ps(wv, xv[v], acc[m][v]);
            }
        }
    }
    for (int m = 0; m < MB; m++)
        for (int v = 0; v < J; v++) _mm512_storeu_ps(O + m * ldo + j0 + 16 * v, acc[m][v]);
}

/* All vectors of an MB-channel block: J at a time, then the remaining ones (< J <= 8) in one block:
 * on small planes (ResNet's 8x8 and 16x16 strided outputs: 5 and 17 vectors) a remainder done one
 * vector at a time, 9 loads per 8 FMAs, was the kernel's hottest loop. The sums are the same. */
T512 static INL void fwd_rows(const int MB, const int J, const flat_geom *g, const float *P, const float *wk, float *O,
                              int64_t ldo) {
    int64_t v = 0;
    for (; v + J <= g->nv; v += J) fwd_blk(MB, J, g, P, wk, O, ldo, 16 * v);
    switch (g->nv - v) {
    case 0: break;
    case 1: fwd_blk(MB, 1, g, P, wk, O, ldo, 16 * v); break;
    case 2: fwd_blk(MB, 2, g, P, wk, O, ldo, 16 * v); break;
    case 3: fwd_blk(MB, 3, g, P, wk, O, ldo, 16 * v); break;
    case 4: fwd_blk(MB, 4, g, P, wk, O, ldo, 16 * v); break;
    case 5: fwd_blk(MB, 5, g, P, wk, O, ldo, 16 * v); break;
    case 6: fwd_blk(MB, 6, g, P, wk, O, ldo, 16 * v); break;
    default: fwd_blk(MB, 7, g, P, wk, O, ldo, 16 * v); break;
    }
}

/* Accumulators per block: MB channels x J vectors, at most 24 (of 32 registers). */
T512 static void fwd_any(int MB, const flat_geom *g, const float *P, const float *wk, float *O, int64_t ldo) {
    switch (MB) {
    case 1: fwd_rows(1, 8, g, P, wk, O, ldo); break;
    case 2: fwd_rows(2, 8, g, P, wk, O, ldo); break;
    case 3: fwd_rows(3, 8, g, P, wk, O, ldo); break;
    case 4: fwd_rows(4, 6, g, P, wk, O, ldo); break;
    case 5: fwd_rows(5, 4, g, P, wk, O, ldo); break;
    case 6: fwd_rows(6, 4, g, P, wk, O, ldo); break;
    case 7: fwd_rows(7, 3, g, P, wk, O, ldo); break;
    default: fwd_rows(8, 3, g, P, wk, O, ldo); break;
    }
}

/* Channel blocks of at most 8, as equal as possible (16 -> 8 + 8, 12 -> 6 + 6, 6 -> 6). */
static int64_t flat_mb(int64_t M) {
    int64_t nb = qo_k_cdiv(M, 8);
    return qo_k_cdiv(M, nb);
}

typedef struct flat_job {
    flat_geom g;
    const float *x, *b, *res;
    float *y;
    const float *wk; /* [M / MB blocks][C][ntap][MB] */
    /* the 1x1 sibling (qo_k_conv_params.y2; NULL = none): g1 is g with the center tap alone,
       wk2 its weights packed as wk (blocks of mb2) */
    flat_geom g1;
    const float *wk2, *b2;
    float *y2;
    int64_t M2, mb2;
    qo_k_act act2;
    qo_k_act act;
    const qo_k_qgrad *qg; /* prepared, or NULL; qpart[t]: item t's dScale sum */
    float *qpart;
    qo_pool *pool;
    int64_t N, mb, nmc, mchunk; /* channel block, chunks of channels per image, channels per chunk */
} flat_job;

static void flat_fwd_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const flat_job *J = ctx;
    const flat_geom *g = &J->g;
    int64_t ldo = g->nv * 16, osz = g->OH * g->OW;
    void *owned = NULL;
    size_t pbytes = (size_t)(g->C * g->psz) * sizeof(float),
           obytes = (size_t)(qo_k_max64(J->mb, J->mb2) * ldo) * sizeof(float);
    float *P = qo_k_scratch(J->pool, tid, pbytes + obytes, &owned), *O = P + g->C * g->psz;
    int64_t last_n = -1;
    for (int64_t t = begin; t < end; t++) {
        int64_t n = t / J->nmc, mc = t % J->nmc;
        qo_fsum acc;
        qo_fsum_init(&acc);
        if (n != last_n && (g->sh > 1 || g->sw > 1)) flat_pad_phases(g, J->x + n * g->C * g->H * g->W, P, g->psz, g->qsz), last_n = n;
        if (n != last_n)
            qo_k_flat_pad(J->x + n * g->C * g->H * g->W, g->C, g->H, g->W, g->pt, g->pl, g->Hp, g->Wp, P, g->psz, g->psz),
                last_n = n;
        int64_t m1c = qo_k_min64(g->M, (mc + 1) * J->mchunk);
        for (int64_t m0 = mc * J->mchunk; m0 < m1c; m0 += J->mb) {
            int64_t MB = qo_k_min64(J->mb, m1c - m0);
            fwd_any((int)MB, g, P, J->wk + m0 * g->C * g->ntap, O, ldo);
            float *yb = J->y + (n * g->M + m0) * osz;
            for (int64_t m = 0; m < MB; m++)
                for (int64_t oh = 0; oh < g->OH; oh++)
                    memcpy(yb + m * osz + oh * g->OW, O + m * ldo + oh * g->Wp, (size_t)g->OW * sizeof(float));
            qo_k_epilogue(yb, MB, osz, osz, J->b ? J->b + m0 : NULL, J->res ? J->res + (yb - J->y) : NULL, J->act);
            if (J->qg) qo_k_qgrad_span(J->qg, J->y, yb - J->y, yb - J->y + MB * osz, &acc);
        }
        if (J->qg && J->qg->ds) J->qpart[t] = qo_fsum_end(&acc);
        for (int64_t m0 = 0; J->y2 && mc == 0 && m0 < J->M2; m0 += J->mb2) { /* the sibling, same P */
            int64_t MB = qo_k_min64(J->mb2, J->M2 - m0);
            fwd_any((int)MB, &J->g1, P, J->wk2 + m0 * g->C, O, ldo);
            float *yb = J->y2 + (n * J->M2 + m0) * osz;
            for (int64_t m = 0; m < MB; m++)
                for (int64_t oh = 0; oh < g->OH; oh++)
                    memcpy(yb + m * osz + oh * g->OW, O + m * ldo + oh * g->Wp, (size_t)g->OW * sizeof(float));
            qo_k_epilogue(yb, MB, osz, osz, J->b2 ? J->b2 + m0 : NULL, NULL, J->act2);
        }
    }
    qo_k_scratch_release(owned);
}

/* Runs the flat forward convolution over N images; wsrc(m, c, t) is read through the packing
 * below. transposed: w is ConvTranspose's [C][M][KH][KW] (flipped taps), else Conv's [M][C][KH][KW]. */
static void flat_fwd(flat_geom *g, int64_t N, const float *x, const float *w, bool transposed, const float *b,
                     const float *res, qo_k_act act, float *y, qo_pool *pool, const qo_k_conv_params *sib,
                     const qo_k_qgrad *qg) {
    int64_t M = g->M, C = g->C, ntap = g->ntap, mb = flat_mb(M);
    float *wk = qo_malloc((size_t)(M * C * ntap) * sizeof(float));
    for (int64_t m0 = 0; m0 < M; m0 += mb) {
        int64_t MB = qo_k_min64(mb, M - m0);
        float *wb = wk + m0 * C * ntap;
        for (int64_t c = 0; c < C; c++)
            for (int64_t t = 0; t < ntap; t++)
                for (int64_t m = 0; m < MB; m++)
                    wb[(c * ntap + t) * MB + m] = transposed ? w[(c * M + m0 + m) * ntap + (ntap - 1 - t)]
                                                             : w[((m0 + m) * C + c) * ntap + t];
    }
    int nth = qo_pool_size(pool);
    /* fewer images than threads: split the channels too (in whole blocks) */
    int64_t nblk = qo_k_cdiv(M, mb), nmc = N >= nth ? 1 : qo_k_min64(nblk, qo_k_cdiv(nth, N));
    flat_job J = {.g = *g, .x = x, .b = b, .res = res, .y = y, .wk = wk, .act = act, .pool = pool, .N = N, .mb = mb,
                  .nmc = nmc, .mchunk = qo_k_cdiv(nblk, nmc) * mb};
    J.nmc = qo_k_cdiv(M, J.mchunk);
    float *wk2 = NULL;
    if (sib) { /* the center tap: (KH - 1) / 2, (KW - 1) / 2 of the (2-D) kernel */
        J.g1 = *g;
        J.g1.ntap = 1, J.g1.off[0] = g->off[(g->KH - 1) / 2 * g->KW + (g->KW - 1) / 2];
        J.M2 = sib->M2, J.mb2 = flat_mb(sib->M2), J.b2 = sib->b2, J.y2 = sib->y2, J.act2 = sib->act2;
        wk2 = qo_malloc((size_t)(J.M2 * C) * sizeof(float));
        for (int64_t m0 = 0; m0 < J.M2; m0 += J.mb2) {
            int64_t MB = qo_k_min64(J.mb2, J.M2 - m0);
            for (int64_t c = 0; c < C; c++)
                for (int64_t m = 0; m < MB; m++) wk2[m0 * C + c * MB + m] = sib->w2[(m0 + m) * C + c];
        }
        J.wk2 = wk2;
    }
    J.qg = qg;
    J.qpart = qg && qg->ds ? qo_malloc((size_t)(N * J.nmc) * sizeof(float)) : NULL;
    qo_pool_for(pool, N * J.nmc, 1, flat_fwd_task, &J);
    if (J.qpart) *qg->ds = qo_fsum_tree(J.qpart, N * J.nmc);
    qo_free(J.qpart);
    qo_free(wk);
    qo_free(wk2);
}

/* Weight-gradient block: G[(m ldm) + t][16] += per-lane sums over the vectors [v0, v1) of
 * D[m][16 v] P[16 v + off[t]], m < MB, t < TB (each chunk summed from zero, then added). */
T512 static INL void cgw_blk(const int MB, const int TB, const float *D, int64_t ldd, const float *P, const int64_t *off,
                             int64_t v0, int64_t v1, float *G, int64_t ldm) {
    __m512 acc[8][5];
    for (int m = 0; m < MB; m++)
        for (int t = 0; t < TB; t++) acc[m][t] = _mm512_setzero_ps();
    for (int64_t v = v0; v < v1; v++) {
        __m512 xv[5];
        for (int t = 0; t < TB; t++) xv[t] = _mm512_loadu_ps(P + off[t] + 16 * v);
        for (int m = 0; m < MB; m++) {
            __m512 dv = _mm512_load_ps(D + m * ldd + 16 * v);
            for (int t = 0; t < TB; t++) acc[m][t] = _mm512_fmadd_ps(dv, xv[t], acc[m][t]);
        }
    }
    for (int m = 0; m < MB; m++)
        for (int t = 0; t < TB; t++) {
            float *gp = G + (m * ldm + t) * 16;
            _mm512_store_ps(gp, _mm512_add_ps(_mm512_load_ps(gp), acc[m][t]));
        }
}

/* Vectors per chunk summed from zero (the lane sums stay short, as BLAS's K blocks). */
#define FLAT_CHUNK 128

/* Taps per block for MB channels: MB x TB accumulators plus TB + 1 loads stay in registers. */
static int cgw_tb(int MB) { return MB <= 4 ? 5 : MB <= 6 ? 4 : 3; }

T512 static void cgw_any(int MB, int TB, const float *D, int64_t ldd, const float *P, const int64_t *off, int64_t v0,
                         int64_t v1, float *G, int64_t ldm) {
#define CGW_CASE(a, b)                                                                                                 \
    case (a) * 8 + (b): cgw_blk(a, b, D, ldd, P, off, v0, v1, G, ldm); break;
    /* the (MB, TB <= cgw_tb(MB)) pairs */
#define CGW_ROW3(a) CGW_CASE(a, 1) CGW_CASE(a, 2) CGW_CASE(a, 3)
#define CGW_ROW4(a) CGW_ROW3(a) CGW_CASE(a, 4)
#define CGW_ROW5(a) CGW_ROW4(a) CGW_CASE(a, 5)
    switch (MB * 8 + TB) {
        CGW_ROW5(1) CGW_ROW5(2) CGW_ROW5(3) CGW_ROW5(4) CGW_ROW4(5) CGW_ROW4(6) CGW_ROW3(7) CGW_ROW3(8)
    default: break;
    }
#undef CGW_ROW3
#undef CGW_ROW4
#undef CGW_ROW5
#undef CGW_CASE
}

typedef struct flat_cgw_job {
    flat_geom g;
    const float *dy, *x;
    float *G; /* per range: [M][C][ntap][16] lane sums */
    int64_t N, nranges, mb, nb; /* images per batch */
    qo_pool *pool;
} flat_cgw_job;

/* Images are batched nb at a time, plane after plane (S = psz floats each) in P [C][nb S] and
 * D [M][nb S]; one run over the batch's vectors covers them all: a vector that starts in one
 * image's dropped columns or slack reads the next image's P, times zeros of D. */
static void flat_cgw_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const flat_cgw_job *J = ctx;
    const flat_geom *g = &J->g;
    int64_t S = g->psz, ldc = J->nb * S, osz = g->OH * g->OW, C = g->C, M = g->M, ntap = g->ntap,
            gsz = M * C * ntap * 16;
    void *owned = NULL;
    char *raw = qo_k_scratch(J->pool, tid, (size_t)((C + M) * ldc) * sizeof(float) + 64, &owned);
    float *P = (float *)(((uintptr_t)raw + 63) & ~(uintptr_t)63), *D = P + C * ldc;
    for (int64_t r = begin; r < end; r++) {
        float *G = J->G + r * gsz;
        memset(G, 0, (size_t)gsz * sizeof *G);
        int64_t n0 = r * J->N / J->nranges, n1 = (r + 1) * J->N / J->nranges;
        for (int64_t n = n0; n < n1; n += J->nb) {
            int64_t nb = qo_k_min64(J->nb, n1 - n);
            for (int64_t i = 0; i < nb; i++) {
                qo_k_flat_pad(J->x + (n + i) * C * g->H * g->W, C, g->H, g->W, g->pt, g->pl, g->Hp, g->Wp, P + i * S, S,
                         ldc);
                qo_k_flat_pad(J->dy + (n + i) * M * osz, M, g->OH, g->OW, 0, 0, g->OH, g->Wp, D + i * S, S, ldc);
            }
            int64_t nv = qo_k_cdiv((nb - 1) * S + g->L, 16);
            for (int64_t v0 = 0; v0 < nv; v0 += FLAT_CHUNK) {
                int64_t v1 = qo_k_min64(nv, v0 + FLAT_CHUNK);
                for (int64_t m0 = 0; m0 < M; m0 += J->mb) {
                    int MB = (int)qo_k_min64(J->mb, M - m0), tbm = cgw_tb(MB);
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t t0 = 0; t0 < ntap; t0 += tbm) {
                            int TB = (int)qo_k_min64(tbm, ntap - t0);
                            cgw_any(MB, TB, D + m0 * ldc, ldc, P + c * ldc, g->off + t0, v0, v1,
                                    G + ((m0 * C + c) * ntap + t0) * 16, C * ntap);
                        }
                }
            }
        }
    }
    qo_k_scratch_release(owned);
}

/* The flat kernels need AVX-512, 1-D or 2-D, one group, stride 1 (or, with strided, strides up to
 * 4 with dilation 1: Conv on phase planes, ConvTranspose per output phase), 2..QO_K_FLAT_MAX_TAPS taps,
 * C * taps * M >= 256 (below that, as for digits' 1- and 16-channel 8x8 convolutions, the padding
 * costs more than it saves) and C <= 256 (measured on ResNet-18's 3x3 layers against im2col +
 * sgemm, batch 1 and 16, 2 threads: 64..256 channels 0-15% faster, 512 channels on 7x7 planes 10-35%
 * slower: a block's taps then read 512 planes, out of L1 and L2). */
static bool flat_shape(const qo_k_conv_params *p, bool strided) {
    if (p->group != 1 || p->nsp < 1 || p->nsp > 2 || qo_k_sgemm_isa(-1) != 2) return false;
    int64_t taps = 1;
    bool str1 = true;
    for (int i = 0; i < p->nsp; i++) {
        if (p->str[i] < 1 || p->str[i] > (strided ? 4 : 1) || p->in[i] < 1 || p->out[i] < 1 || p->ker[i] < 1)
            return false;
        str1 = str1 && p->str[i] == 1;
        taps *= p->ker[i];
    }
    for (int i = 0; i < p->nsp && !str1; i++)
        if (p->dil[i] != 1) return false; /* phase planes: dilation 1 in every dim */
    /* measured (batch 64, one thread) against im2col + sgemm and sgemm + col2im, strided: 3x3 stride 2
       16 -> 32 on 32x32 1.3x (Conv) and 1.5x (ConvTranspose), 32 -> 64 on 16x16 1.15x / 1.2x, ResNet-18's
       7x7 stem 1.3x / 1.6x; 1x1 stride 2 0.9x / 0.7x (so one tap stays on im2col + sgemm) */
    return taps >= 2 && taps <= QO_K_FLAT_MAX_TAPS && p->C * taps * p->M >= 256 && p->C <= 256;
}

/* g for p: 2-D (1-D as one row); ConvTranspose (transposed) as the convolution of its input at
 * offset (K - 1) dil - pad (y[oh] = sum_i x[oh + pad - i dil] w[i]) with the taps reversed. */
static void flat_geom_of(const qo_k_conv_params *p, bool transposed, flat_geom *g) {
    int64_t in[2] = {1, 1}, out[2] = {1, 1}, ker[2] = {1, 1}, dil[2] = {1, 1}, pad[2] = {0, 0};
    int off = 2 - p->nsp;
    for (int i = 0; i < p->nsp; i++) {
        in[off + i] = p->in[i], out[off + i] = p->out[i], ker[off + i] = p->ker[i];
        dil[off + i] = p->dil[i], pad[off + i] = p->pad[i];
    }
    for (int i = 0; i < 2 && transposed; i++) pad[i] = (ker[i] - 1) * dil[i] - pad[i];
    int64_t str[2] = {1, 1};
    for (int i = 0; i < p->nsp && !transposed; i++) str[off + i] = p->str[i];
    if (str[0] > 1 || str[1] > 1)
        flat_geom_strided(g, p->C, p->M, in[0], in[1], pad[0], pad[1], out[0], out[1], ker[0], ker[1], str[0], str[1]);
    else
        flat_geom_init(g, p->C, p->M, in[0], in[1], pad[0], pad[1], out[0], out[1], ker[0], ker[1], dil[0], dil[1]);
}

bool qo_k_conv_flat_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                        qo_pool *pool) {
    if (!flat_shape(p, true)) return false;
    bool str1 = true;
    for (int i = 0; i < p->nsp; i++) str1 = str1 && p->str[i] == 1;
    if (p->y2 && (str1 || !qo_k_conv_sib_ok(p))) return false; /* a sibling only with strides */
    flat_geom g;
    flat_geom_of(p, false, &g);
    flat_fwd(&g, p->N, x, w, false, b, p->res, p->act, y, pool, p->y2 ? p : NULL, NULL);
    return true;
}

/* Strided ConvTranspose (dilation 1) as one flat convolution per output phase: the outputs
 * y[oh] with (oh + pad) % s == r read x[q - u] w[r + s u] (q = (oh + pad - r) / s), a stride-1
 * correlation of x with the taps r, r + s, ... of the kernel, reversed; its outputs are scattered
 * back into y at stride s. A phase without taps (kernel smaller than the stride) is zeros. Every
 * phase reads one padded copy of x (the largest padding of any phase, row pitch Wc) from its own
 * base offset. With stride 2 along the rows the two column phases of a row phase are computed
 * one after the other and interleaved into y's rows by a lane permute. */
typedef struct convt_phase {
    flat_geom g;     /* over x, outputs q - q0 for q in [q0, q0 + g.OH) (and columns alike); Wp = Wc */
    int64_t base;    /* the phase's P[0][0] in the common padded plane */
    int64_t y0[2];   /* y's row and column of the phase's output (0, 0) */
    float *wk;       /* packed as flat_fwd's (NULL: no taps) */
} convt_phase;

typedef struct convt_sjob {
    const qo_k_conv_params *p;
    const float *x, *b;
    int64_t C2; /* the 1x1 sibling's channels (p->x2), padded into P after x's: extra channels of the
                   phase whose one tap reads x at the sibling's positions (0 = none) */
    float *y;
    int64_t s[2], H, W, OH, OW, mb;
    int64_t PT, PL, Hc, Wc, psz; /* the common padded plane */
    int nph;
    convt_phase ph[16]; /* phase (r, c) at r s[1] + c */
    int64_t ofl;        /* floats per column phase's output block */
    float *qpart;       /* p->qg: image n's dScale sum at n */
    qo_pool *pool;
} convt_sjob;

/* Scatters MB channels of phase f's outputs O (row pitch Wc, ldo per channel) into yn. */
static void convt_scatter(const convt_sjob *J, const convt_phase *f, const float *O, int64_t ldo, float *yn,
                          int64_t m0, int64_t MB) {
    const flat_geom *g = &f->g;
    int64_t osz = J->OH * J->OW;
    for (int64_t m = 0; m < MB; m++)
        for (int64_t i = 0; i < g->OH; i++) {
            float *yr = yn + (m0 + m) * osz + (f->y0[0] + i * J->s[0]) * J->OW + f->y0[1];
            const float *o = O ? O + m * ldo + i * J->Wc : NULL;
            for (int64_t j = 0; j < g->OW; j++) yr[j * J->s[1]] = o ? o[j] : 0.0f;
        }
}

/* Interleaves the column phases E (columns 0, 2, ..) and D (1, 3, ..) of one row phase into yn's
 * rows: 16 outputs from 8 of each, a masked store at the row's end. */
T512 static void convt_interleave2(const convt_sjob *J, const convt_phase *fe, const float *E, int64_t lde,
                                   const float *D, int64_t ldd, float *yn, int64_t m0, int64_t MB) {
    const __m512i mix = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    int64_t osz = J->OH * J->OW, OW = J->OW;
    for (int64_t m = 0; m < MB; m++)
        for (int64_t i = 0; i < fe->g.OH; i++) {
            float *yr = yn + (m0 + m) * osz + (fe->y0[0] + i * J->s[0]) * OW;
            const float *e = E + m * lde + i * J->Wc, *d = D + m * ldd + i * J->Wc;
            for (int64_t o = 0; o < OW; o += 16) {
                __m512 v = _mm512_permutex2var_ps(_mm512_castps256_ps512(_mm256_loadu_ps(e + o / 2)), mix,
                                                  _mm512_castps256_ps512(_mm256_loadu_ps(d + o / 2)));
                _mm512_mask_storeu_ps(yr + o, qo_k_bits16(0, OW - o), v);
            }
        }
}

static void convt_strided_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const convt_sjob *J = ctx;
    const qo_k_conv_params *p = J->p;
    int64_t C = p->C, M = p->M, osz = J->OH * J->OW, S1 = J->s[1];
    void *owned = NULL;
    int64_t Ct = C + J->C2;
    float *P = qo_k_scratch(J->pool, tid, (size_t)(Ct * J->psz + S1 * J->ofl) * sizeof(float), &owned);
    float *O = P + Ct * J->psz;
    for (int64_t n = begin; n < end; n++) {
        float *yn = J->y + n * M * osz;
        if (p->qg) /* the quantizer input the epilogue reads, into L2 while the image is computed */
            for (int64_t o = 0; o < M * osz; o += 16) _mm_prefetch((const char *)(p->qg->x + n * M * osz + o), _MM_HINT_T1);
        qo_k_flat_pad(J->x + n * C * J->H * J->W, C, J->H, J->W, J->PT, J->PL, J->Hc, J->Wc, P, J->psz, J->psz);
        if (J->C2)
            qo_k_flat_pad(p->x2 + n * J->C2 * J->H * J->W, J->C2, J->H, J->W, J->PT, J->PL, J->Hc, J->Wc,
                          P + C * J->psz, J->psz, J->psz);
        for (int64_t m0 = 0; m0 < M; m0 += J->mb) {
            int64_t MB = qo_k_min64(J->mb, M - m0);
            for (int64_t r = 0; r < J->s[0]; r++) {
                const convt_phase *row = &J->ph[r * S1];
                for (int64_t c = 0; c < S1; c++) {
                    const convt_phase *f = &row[c];
                    if (f->g.OH < 1 || f->g.OW < 1 || !f->wk) continue;
                    fwd_any((int)MB, &f->g, P + f->base, f->wk + m0 * f->g.C * f->g.ntap, O + c * J->ofl, f->g.nv * 16);
                }
                if (S1 == 2 && row[0].wk && row[1].wk && row[0].g.OH >= 1 && row[0].g.OW >= 1 && row[1].g.OW >= 1 &&
                    row[0].y0[1] + row[1].y0[1] == 1) {
                    int e = row[0].y0[1] == 0 ? 0 : 1;
                    convt_interleave2(J, &row[e], O + e * J->ofl, row[e].g.nv * 16, O + (1 - e) * J->ofl,
                                      row[1 - e].g.nv * 16, yn, m0, MB);
                    continue;
                }
                for (int64_t c = 0; c < S1; c++) {
                    const convt_phase *f = &row[c];
                    if (f->g.OH < 1 || f->g.OW < 1) continue;
                    convt_scatter(J, f, f->wk ? O + c * J->ofl : NULL, f->g.nv * 16, yn, m0, MB);
                }
            }
        }
        qo_k_epilogue(yn, M, osz, osz, J->b, p->res ? p->res + (yn - J->y) : NULL, p->act);
        if (p->qg) {
            qo_fsum acc;
            qo_fsum_init(&acc);
            qo_k_qgrad_span(p->qg, J->y, yn - J->y, yn - J->y + M * osz, &acc);
            if (p->qg->ds) J->qpart[n] = qo_fsum_end(&acc);
        }
    }
    qo_k_scratch_release(owned);
}

static bool convt_strided(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                          qo_pool *pool) {
    convt_sjob J = {.p = p, .x = x, .b = b, .y = y, .pool = pool, .s = {1, 1}, .H = 1, .W = 1, .OH = 1, .OW = 1};
    int64_t ker[2] = {1, 1}, pad[2] = {0, 0}, *in = &J.H, *out = &J.OH;
    int off = 2 - p->nsp;
    for (int i = 0; i < p->nsp; i++)
        in[off + i] = p->in[i], out[off + i] = p->out[i], ker[off + i] = p->ker[i], J.s[off + i] = p->str[i],
                 pad[off + i] = p->pad[i];
    int64_t C = p->C, M = p->M;
    J.mb = flat_mb(M);
    int64_t K[16][2], q0[16][2], nq[16][2];
    for (int64_t r = 0; r < J.s[0]; r++)
        for (int64_t c = 0; c < J.s[1]; c++) {
            convt_phase *f = &J.ph[J.nph];
            int64_t rc[2] = {r, c}, *Kk = K[J.nph], *q = q0[J.nph], *nk = nq[J.nph];
            J.nph++;
            for (int d = 0; d < 2; d++) {
                /* taps rc, rc + s, ...; outputs oh = s q + rc - pad in [0, out) */
                Kk[d] = rc[d] < ker[d] ? qo_k_cdiv(ker[d] - rc[d], J.s[d]) : 0;
                q[d] = qo_k_cdiv(pad[d] - rc[d] + J.s[d] * (ker[d] + out[d]), J.s[d]) - (ker[d] + out[d]);
                int64_t oh0 = J.s[d] * q[d] + rc[d] - pad[d];
                nk[d] = oh0 < out[d] ? qo_k_cdiv(out[d] - oh0, J.s[d]) : 0;
                f->y0[d] = oh0;
            }
        }
    /* output q' = q - q0 reads x[q' + q0 - u] = P[q' + (K - 1 - u)] with P[i] = x[i - pt], pt =
       max(K, 1) - 1 - q0: one plane with the largest pt (and pl), each phase from its offset */
    J.PT = J.PL = INT64_MIN;
    for (int k = 0; k < J.nph; k++) {
        J.PT = qo_k_max64(J.PT, qo_k_max64(K[k][0], 1) - 1 - q0[k][0]);
        J.PL = qo_k_max64(J.PL, qo_k_max64(K[k][1], 1) - 1 - q0[k][1]);
    }
    J.Hc = J.Wc = 1;
    for (int k = 0; k < J.nph; k++) {
        int64_t pt = qo_k_max64(K[k][0], 1) - 1 - q0[k][0], pl = qo_k_max64(K[k][1], 1) - 1 - q0[k][1];
        J.Hc = qo_k_max64(J.Hc, J.PT - pt + nq[k][0] + qo_k_max64(K[k][0], 1) - 1);
        J.Wc = qo_k_max64(J.Wc, J.PL - pl + nq[k][1] + qo_k_max64(K[k][1], 1) - 1);
    }
    /* reads reach at most base + L + 15 + off < Hc Wc + 16 (as flat_geom_init's) */
    J.psz = (J.Hc * J.Wc + 16 + 15) / 16 * 16;
    /* the sibling's outputs y[i s] (i < in) are the phase at (0, 0) with one tap reading x[i] */
    int sib = -1;
    for (int k = 0; k < J.nph && p->x2; k++)
        if (J.ph[k].y0[0] == 0 && J.ph[k].y0[1] == 0 && K[k][0] == 1 && K[k][1] == 1 && q0[k][0] == 0 &&
            q0[k][1] == 0 && nq[k][0] == J.H && nq[k][1] == J.W)
            sib = k;
    if (p->x2 && sib < 0) return false;
    if (sib >= 0) J.C2 = p->C2;
    for (int k = 0; k < J.nph; k++) {
        convt_phase *f = &J.ph[k];
        int64_t KH = qo_k_max64(K[k][0], 1), KW = qo_k_max64(K[k][1], 1);
        int64_t pt = KH - 1 - q0[k][0], pl = KW - 1 - q0[k][1];
        flat_geom_init(&f->g, C, M, J.H, J.W, pt, pl, nq[k][0], nq[k][1], KH, KW, 1, 1);
        /* the common plane's row pitch */
        f->g.Wp = J.Wc, f->g.Hp = J.Hc, f->g.psz = f->g.qsz = J.psz;
        f->g.L = (nq[k][0] - 1) * J.Wc + nq[k][1], f->g.nv = qo_k_cdiv(f->g.L, 16);
        for (int64_t i = 0; i < KH; i++)
            for (int64_t t = 0; t < KW; t++) f->g.off[i * KW + t] = i * J.Wc + t;
        f->base = (J.PT - pt) * J.Wc + (J.PL - pl);
        if (K[k][0] == 0 || K[k][1] == 0 || nq[k][0] < 1 || nq[k][1] < 1) continue;
        int64_t nt = K[k][0] * K[k][1], r = k / J.s[1], c = k % J.s[1], Ct = C + (k == sib ? J.C2 : 0);
        f->g.C = Ct;
        f->wk = qo_malloc((size_t)(M * Ct * nt) * sizeof(float));
        for (int64_t m0 = 0; m0 < M; m0 += J.mb) {
            int64_t MB = qo_k_min64(J.mb, M - m0);
            float *wb = f->wk + m0 * Ct * nt;
            for (int64_t ch = C; ch < Ct; ch++) /* the sibling's channels: one tap */
                for (int64_t m = 0; m < MB; m++) wb[ch * MB + m] = p->w2[(ch - C) * M + m0 + m];
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t th = 0; th < K[k][0]; th++)
                    for (int64_t tw = 0; tw < K[k][1]; tw++)
                        for (int64_t m = 0; m < MB; m++) {
                            int64_t kh = r + J.s[0] * (K[k][0] - 1 - th), kw = c + J.s[1] * (K[k][1] - 1 - tw);
                            wb[((ch * K[k][0] + th) * K[k][1] + tw) * MB + m] =
                                w[((ch * M + m0 + m) * ker[0] + kh) * ker[1] + kw];
                        }
        }
        /* + 16: the interleave reads 8 past a row's last output */
        J.ofl = qo_k_max64(J.ofl, J.mb * f->g.nv * 16 + 16);
    }
    J.qpart = p->qg && p->qg->ds ? qo_malloc((size_t)p->N * sizeof(float)) : NULL;
    qo_pool_for(pool, p->N, 1, convt_strided_task, &J);
    if (J.qpart) *p->qg->ds = qo_fsum_tree(J.qpart, p->N);
    qo_free(J.qpart);
    for (int k = 0; k < J.nph; k++) qo_free(J.ph[k].wk);
    return true;
}

bool qo_k_convtranspose_flat_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                                 qo_pool *pool) {
    if (!flat_shape(p, true)) return false;
    bool str1 = true;
    for (int i = 0; i < p->nsp; i++) str1 = str1 && p->str[i] == 1;
    if (!str1) return convt_strided(p, x, w, b, y, pool);
    if (p->x2) return false; /* a sibling only with strides */
    flat_geom g;
    flat_geom_of(p, true, &g);
    flat_fwd(&g, p->N, x, w, true, b, p->res, p->act, y, pool, NULL, p->qg);
    return true;
}

bool qo_k_convgradweight_flat_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                  qo_pool *pool) {
    /* measured against conv_grad.c's im2col + sgemm: faster up to 8 input channels (LeNet's 3 and 6:
     * 2.8x and even), slower from 16 (ResNet's 16..64 with padded planes of 8x8..32x32). Also slower
     * when many output channels meet a short im2col (C x taps <= 32, M >= 16: ResNet's 3-channel
     * 3x3 stem with 16 filters, where padding the 16 dY planes costs more than im2col's 27 rows;
     * 1 % of ResNet-8's training step), while LeNet's 5x5 layers (25 and 150 rows) stay here. */
    int64_t ntap = 1;
    for (int i = 0; i < p->nsp; i++) ntap *= p->ker[i];
    if (!flat_shape(p, false) || p->N < 1 || p->C > 8 || (p->C * ntap <= 32 && p->M >= 16)) return false;
    flat_cgw_job J = {.dy = dy, .x = x, .N = p->N, .pool = pool};
    flat_geom_of(p, false, &J.g);
    /* up to 8 channels one block, more in blocks of at most 4 (measured: 16 channels as 4 x 4 with 5
     * taps beat 2 x 8 with 3) */
    J.mb = p->M <= 8 ? flat_mb(p->M) : qo_k_cdiv(p->M, qo_k_cdiv(p->M, 4));
    int64_t nr = qo_k_min64(qo_pool_size(pool), p->N), wsz = p->M * p->C * ntap;
    J.nranges = nr;
    /* a batch's P and D within ~256 KB (L2) */
    J.nb = qo_k_max64(1, qo_k_min64(qo_k_cdiv(p->N, nr), 65536 / ((p->C + p->M) * J.g.psz)));
    char *graw = qo_malloc((size_t)(nr * wsz * 16) * sizeof(float) + 64);
    J.G = (float *)(((uintptr_t)graw + 63) & ~(uintptr_t)63);
    qo_pool_for(pool, nr, 1, flat_cgw_task, &J);
    /* dw = lane sums of range 0, then of range 1, ... (lanes pairwise, in a fixed order) */
    for (int64_t i = 0; i < wsz; i++) {
        float s = 0.0f;
        for (int64_t r = 0; r < nr; r++) {
            const float *l = J.G + (r * wsz + i) * 16;
            float h[8];
            for (int k = 0; k < 8; k++) h[k] = l[k] + l[k + 8];
            for (int k = 0; k < 4; k++) h[k] += h[k + 4];
            s += (h[0] + h[2]) + (h[1] + h[3]);
        }
        dw[i] = s;
    }
    qo_free(graw);
    return true;
}

#else /* no AVX-512 code: never applies */
bool qo_k_conv_flat_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                        qo_pool *pool) {
    (void)p, (void)x, (void)w, (void)b, (void)y, (void)pool;
    return false;
}

bool qo_k_convtranspose_flat_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                                 qo_pool *pool) {
    (void)p, (void)x, (void)w, (void)b, (void)y, (void)pool;
    return false;
}

bool qo_k_convgradweight_flat_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                  qo_pool *pool) {
    (void)p, (void)dy, (void)x, (void)dw, (void)pool;
    return false;
}
#endif
