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
 * flipped and its two channel axes swapped. The weight gradient multiplies the flat output
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
    for (int64_t i = 0; i < KH; i++)
        for (int64_t k = 0; k < KW; k++) g->off[i * KW + k] = i * dh * g->Wp + k * dw;
}

/* Padded planes (internal.h): masked loads read only src. */
T512 void qo_k_flat_pad(const float *src, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t Hp,
                          int64_t Wp, float *dst, int64_t S, int64_t ldc) {
    int64_t s0 = qo_k_max64(0, pl), s1 = qo_k_min64(Wp, W + pl);
    for (int64_t c = 0; c < C; c++) {
        const float *sc = src + c * H * W;
        float *pc = dst + c * ldc;
        for (int64_t r = 0; r < Hp; r++) {
            float *pr = pc + r * Wp; /* a row's last vector may spill into the next row (or the slack) */
            int64_t sr = r - pt;
            if (sr < 0 || sr >= H || s1 <= s0) {
                for (int64_t t = 0; t < Wp; t += 16) _mm512_storeu_ps(pr + t, _mm512_setzero_ps());
                continue;
            }
            /* lanes s in [s0, s1) read src row sr at s - pl (the address of lane 0 may lie outside) */
            uintptr_t sp = (uintptr_t)(sc + sr * W);
            for (int64_t t = 0; t < Wp; t += 16)
                _mm512_storeu_ps(pr + t, _mm512_maskz_loadu_ps(qo_k_bits16(s0 - t, s1 - t),
                                                               (const void *)(sp + (uintptr_t)((t - pl) * 4))));
        }
        for (int64_t t = Hp * Wp; t < S; t += 16) /* S - Hp Wp >= 16: covers any spill */
            _mm512_mask_storeu_ps(pc + t, qo_k_bits16(0, S - t), _mm512_setzero_ps());
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

/* All vectors of an MB-channel block: J at a time, then one at a time. */
T512 static INL void fwd_rows(const int MB, const int J, const flat_geom *g, const float *P, const float *wk, float *O,
                              int64_t ldo) {
    int64_t v = 0;
    for (; v + J <= g->nv; v += J) fwd_blk(MB, J, g, P, wk, O, ldo, 16 * v);
    for (; v < g->nv; v++) fwd_blk(MB, 1, g, P, wk, O, ldo, 16 * v);
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
    qo_k_act act;
    qo_pool *pool;
    int64_t N, mb, nmc, mchunk; /* channel block, chunks of channels per image, channels per chunk */
} flat_job;

static void flat_fwd_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const flat_job *J = ctx;
    const flat_geom *g = &J->g;
    int64_t ldo = g->nv * 16, osz = g->OH * g->OW;
    void *owned = NULL;
    size_t pbytes = (size_t)(g->C * g->psz) * sizeof(float), obytes = (size_t)(J->mb * ldo) * sizeof(float);
    float *P = qo_k_scratch(J->pool, tid, pbytes + obytes, &owned), *O = P + g->C * g->psz;
    int64_t last_n = -1;
    for (int64_t t = begin; t < end; t++) {
        int64_t n = t / J->nmc, mc = t % J->nmc;
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
        }
    }
    qo_k_scratch_release(owned);
}

/* Runs the flat forward convolution over N images; wsrc(m, c, t) is read through the packing
 * below. transposed: w is ConvTranspose's [C][M][KH][KW] (flipped taps), else Conv's [M][C][KH][KW]. */
static void flat_fwd(flat_geom *g, int64_t N, const float *x, const float *w, bool transposed, const float *b,
                     const float *res, qo_k_act act, float *y, qo_pool *pool) {
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
    qo_pool_for(pool, N * J.nmc, 1, flat_fwd_task, &J);
    qo_free(wk);
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

/* The flat kernels need AVX-512, 1-D or 2-D, one group, stride 1, 2..QO_K_FLAT_MAX_TAPS taps,
 * C * taps * M >= 256 (below that, as for digits' 1- and 16-channel 8x8 convolutions, the padding
 * costs more than it saves) and C <= 256 (measured on ResNet-18's 3x3 layers against im2col +
 * sgemm, batch 1 and 16, 2 threads: 64..256 channels 0-15% faster, 512 channels on 7x7 planes 10-35%
 * slower: a block's taps then read 512 planes, out of L1 and L2). */
static bool flat_shape(const qo_k_conv_params *p) {
    if (p->group != 1 || p->nsp < 1 || p->nsp > 2 || qo_k_sgemm_isa(-1) != 2) return false;
    int64_t taps = 1;
    for (int i = 0; i < p->nsp; i++) {
        if (p->str[i] != 1 || p->in[i] < 1 || p->out[i] < 1 || p->ker[i] < 1) return false;
        taps *= p->ker[i];
    }
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
    flat_geom_init(g, p->C, p->M, in[0], in[1], pad[0], pad[1], out[0], out[1], ker[0], ker[1], dil[0], dil[1]);
}

bool qo_k_conv_flat_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                        qo_pool *pool) {
    if (!flat_shape(p)) return false;
    flat_geom g;
    flat_geom_of(p, false, &g);
    flat_fwd(&g, p->N, x, w, false, b, p->res, p->act, y, pool);
    return true;
}

bool qo_k_convtranspose_flat_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                                 qo_pool *pool) {
    if (!flat_shape(p)) return false;
    flat_geom g;
    flat_geom_of(p, true, &g);
    flat_fwd(&g, p->N, x, w, true, b, p->res, p->act, y, pool);
    return true;
}

bool qo_k_convgradweight_flat_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                  qo_pool *pool) {
    /* measured against conv_grad.c's im2col + sgemm: faster up to 8 input channels (LeNet's 3 and 6:
     * 2.8x and even), slower from 16 (ResNet's 16..64 with padded planes of 8x8..32x32) */
    if (!flat_shape(p) || p->N < 1 || p->C > 8) return false;
    flat_cgw_job J = {.dy = dy, .x = x, .N = p->N, .pool = pool};
    flat_geom_of(p, false, &J.g);
    /* up to 8 channels one block, more in blocks of at most 4 (measured: 16 channels as 4 x 4 with 5
     * taps beat 2 x 8 with 3) */
    J.mb = p->M <= 8 ? flat_mb(p->M) : qo_k_cdiv(p->M, qo_k_cdiv(p->M, 4));
    int64_t nr = qo_k_min64(qo_pool_size(pool), p->N), ntap = J.g.ntap, wsz = p->M * p->C * ntap;
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
