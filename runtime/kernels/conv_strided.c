/* runtime/kernels/conv_strided.c — strided 2-D convolutions (stride >= 2: ResNet's downsampling 3x3
 * layers, with their 1x1 siblings) as GEMMs over the output pixels, without im2col: the forward
 * (qo_k_conv_strided_f32), the weight gradient (qo_k_convgradweight_strided_f32) and the input
 * gradient (qo_k_convtranspose_strided_f32).
 *
 * Both read the image zero-padded with the channels of a pixel side by side (sg_pad: Xp[r][s][c],
 * one transposing copy per image, against im2col's 9 / s^2 copies), so a tap's input at output
 * pixel (oh, ow) and channel c is Xp[s oh + kh][s ow + kw][c]: the micro-kernels broadcast it with
 * one scalar load (the stride costs nothing) and load 16 MV filters of the other operand.
 *   forward   Y^T[p][m] = sum over (t, c) of Xp[s p + t][c] W^T[(t, c)][m]; a tile is R pixels of an
 *             output row by 16 MV filters; Y^T is transposed into y and the epilogue (bias,
 *             residual, activation) applied per image. Each output sums taps, then channels, in
 *             order from zero. The sibling reads the center tap with its own W2^T.
 *   dW        dW^T[(t, c)][m] = sum over p of Xp[s p + t][c] dY^T[p][m]; a tile is R channels of one
 *             tap by 16 MV filters, walking the pixels row by row. Per filter and weight, the pixels
 *             of each image in row-major order continue one register chain (images in order within
 *             a thread's range); the batch is split into one range per pool thread and the ranges'
 *             sums are added in range order: the result depends on the pool size, not on
 *             scheduling. The sibling is the same kernel on dY2 at the center tap.
 *   ConvT     Y^T[(oh, ow)][m] = sum over the taps reaching (oh, ow) of Xp[i][j][c] W^T[(t, c)][m]:
 *             per output row and column class (ow mod s), a tile is R outputs s apart (reading
 *             consecutive j) by 16 MV filters, summing term by term (tap, then the sibling where
 *             it reaches), channels in order; then as the forward, plus the QuantGrad epilogue.
 * Both differ in rounding from im2col + sgemm (p->fast allows that). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/train_kernels.h"

#include "runtime/kernels/internal.h"

#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define INL inline __attribute__((always_inline))

/* Calls CASE(r, mv) as the case of a switch on R for the tile shapes the kernels use: MV 4 with R up
 * to 6, MV 2 up to 12, MV 1 up to 24 (24 accumulators), so each tile runs a fully unrolled body. */
#define QO_SG_R6(CASE, mv) CASE(1, mv) CASE(2, mv) CASE(3, mv) CASE(4, mv) CASE(5, mv) CASE(6, mv)
#define QO_SG_R12(CASE, mv)                                                                                        \
    QO_SG_R6(CASE, mv) CASE(7, mv) CASE(8, mv) CASE(9, mv) CASE(10, mv) CASE(11, mv) CASE(12, mv)
#define QO_SG_R24(CASE, mv)                                                                                        \
    QO_SG_R12(CASE, mv) CASE(13, mv) CASE(14, mv) CASE(15, mv) CASE(16, mv) CASE(17, mv) CASE(18, mv) CASE(19, mv) \
    CASE(20, mv) CASE(21, mv) CASE(22, mv) CASE(23, mv) CASE(24, mv)
#define QO_SG_DISPATCH(MV, R, CASE)                                                                                \
    do {                                                                                                           \
        if ((MV) == 4) {                                                                                           \
            switch (R) { QO_SG_R6(CASE, 4) default: break; }                                                       \
        } else if ((MV) == 2) {                                                                                    \
            switch (R) { QO_SG_R12(CASE, 2) default: break; }                                                      \
        } else {                                                                                                   \
            switch (R) { QO_SG_R24(CASE, 1) default: break; }                                                      \
        }                                                                                                          \
    } while (0)

typedef struct sg_job {
    const qo_k_conv_params *p;
    const float *dy, *x, *dy2;
    int64_t C, M, M2, H, W, OH, OW, KH, KW, sh, sw, pt, pl;
    int64_t Hp, Wp;      /* padded image: rows, pixels per row */
    int64_t P;           /* output pixels per image */
    int64_t nranges;
    qo_pool *pool;
    float *acc;          /* per range: dWt [KH KW][C][M], then dW2t [C][M2] */
    int64_t asz;         /* floats per range */
} sg_job;

/* dst[j ldd + i] = src[i lds + j] for i < rows, j < cols: 16 x 16 blocks transposed in registers,
 * the edges element by element. */
T512 static void sg_tr(const float *src, int64_t lds, int64_t rows, int64_t cols, float *dst, int64_t ldd) {
    int64_t i0 = 0;
    for (; i0 + 16 <= rows; i0 += 16) {
        int64_t j0 = 0;
        for (; j0 + 16 <= cols; j0 += 16) {
            __m512 r[16], t[16];
            for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (i0 + i) * lds + j0);
            for (int i = 0; i < 16; i += 2) {
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 16; i += 4) {
                r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
                r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
                r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
                r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
            }
            for (int i = 0; i < 4; i++) {
                t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
                t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
                t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
                t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
            }
            for (int i = 0; i < 8; i++) {
                r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
                r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
            }
            for (int j = 0; j < 16; j++) _mm512_storeu_ps(dst + (j0 + j) * ldd + i0, r[j]);
        }
        for (; j0 < cols; j0++)
            for (int64_t i = i0; i < i0 + 16; i++) dst[j0 * ldd + i] = src[i * lds + j0];
    }
    for (; i0 < rows; i0++)
        for (int64_t j = 0; j < cols; j++) dst[j * ldd + i0] = src[i0 * lds + j];
}

/* acc[r][16 v ..] (+)= sum over the pixels of xs[sh oh rs + sw ow cs + r] B[oh OW + ow][16 v ..],
 * for r < R, v < MV (the R channels of a pixel side by side: broadcasts at constant offsets); acc
 * rows ldc floats apart; fresh: start from zero instead of acc. */
T512 static INL void sg_tile(const int R, const int MV, const float *xs, int64_t rs, int64_t cs, int64_t OH,
                             int64_t OW, const float *B, int64_t ldb, float *acc, int64_t ldc, bool fresh) {
    __m512 a[24];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < MV; v++)
            a[r * MV + v] = fresh ? _mm512_setzero_ps() : _mm512_loadu_ps(acc + r * ldc + 16 * v);
    for (int64_t oh = 0; oh < OH; oh++) {
        const float *xr = xs + oh * rs;
        const float *br = B + oh * OW * ldb;
        for (int64_t ow = 0; ow < OW; ow++, xr += cs, br += ldb) {
            __m512 b[4];
            for (int v = 0; v < MV; v++) b[v] = _mm512_loadu_ps(br + 16 * v);
            for (int r = 0; r < R; r++) {
                __m512 xv = _mm512_set1_ps(xr[r]);
                for (int v = 0; v < MV; v++) a[r * MV + v] = _mm512_fmadd_ps(xv, b[v], a[r * MV + v]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < MV; v++) _mm512_storeu_ps(acc + r * ldc + 16 * v, a[r * MV + v]);
}

/* One tap (xs: its input at output pixel 0, channel 0, in Xp) over the C channels and all M
 * filters: MV vectors of filters (4 if M allows, else 2, else 1) by tiles of at most 24 / MV
 * channels, C split into tiles as equal as possible (16 channels with MV 2: 8 + 8, not 12 + 4). */
T512 static void sg_tap(const float *xs, int64_t C, int64_t M, const sg_job *J, const float *B, float *acc,
                        bool fresh) {
    int MV = M % 64 == 0 ? 4 : M % 32 == 0 ? 2 : 1, RM = 24 / MV;
    int64_t nt = qo_k_cdiv(C, RM);
    for (int64_t m0 = 0; m0 < M; m0 += 16 * MV)
        for (int64_t i = 0, c = 0; i < nt; i++) {
            int R = (int)((i + 1) * C / nt - i * C / nt);
            const float *xc = xs + c;
            float *ac = acc + c * M + m0;
            const float *bm = B + m0;
#define SG_CASE(r_, mv_)                                                                                           \
    case r_:                                                                                                       \
        sg_tile(r_, mv_, xc, J->sh * J->Wp * J->C, J->sw * J->C, J->OH, J->OW, bm, M, ac, M, fresh);              \
        break;
            QO_SG_DISPATCH(MV, R, SG_CASE);
#undef SG_CASE
            c += R;
        }
}

/* dst[(r Wp + s) C + c] = src[c][r - pt][s - pl] (src [C][H][W], zero outside) for r < Hp, s < Wp:
 * the image zero-padded with the channels of a pixel side by side. */
T512 static void sg_pad(const float *src, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl, int64_t Hp,
                        int64_t Wp, float *dst) {
    int64_t s0 = qo_k_max64(0, pl), s1 = qo_k_min64(Wp, W + pl); /* dst columns with a source */
    for (int64_t r = 0; r < Hp; r++) {
        float *pr = dst + r * Wp * C;
        int64_t sr = r - pt;
        if (sr < 0 || sr >= H || s1 <= s0) {
            memset(pr, 0, (size_t)(Wp * C) * sizeof(float));
            continue;
        }
        memset(pr, 0, (size_t)(s0 * C) * sizeof(float));
        sg_tr(src + sr * W + (s0 - pl), H * W, C, s1 - s0, pr + s0 * C, C);
        memset(pr + s1 * C, 0, (size_t)((Wp - s1) * C) * sizeof(float));
    }
}

static void sg_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const sg_job *J = ctx;
    int64_t C = J->C, ntap = J->KH * J->KW, P = J->P;
    size_t xn = (size_t)(C * J->Hp * J->Wp), bn = (size_t)(P * J->M), b2n = (size_t)(P * J->M2);
    void *owned = NULL;
    float *Xp = qo_k_scratch(J->pool, tid, (xn + bn + b2n) * sizeof(float), &owned), *B = Xp + xn, *B2 = B + bn;
    for (int64_t r = begin; r < end; r++) {
        float *acc = J->acc + r * J->asz, *acc2 = acc + ntap * C * J->M;
        int64_t n0 = r * J->p->N / J->nranges, n1 = (r + 1) * J->p->N / J->nranges;
        if (n0 == n1) memset(acc, 0, (size_t)J->asz * sizeof(float));
        for (int64_t n = n0; n < n1; n++) {
            bool fresh = n == n0;
            sg_pad(J->x + n * C * J->H * J->W, C, J->H, J->W, J->pt, J->pl, J->Hp, J->Wp, Xp);
            sg_tr(J->dy + n * J->M * P, P, J->M, P, B, J->M);
            for (int64_t kh = 0; kh < J->KH; kh++)
                for (int64_t kw = 0; kw < J->KW; kw++)
                    sg_tap(Xp + (kh * J->Wp + kw) * C, C, J->M, J, B, acc + (kh * J->KW + kw) * C * J->M, fresh);
            if (J->M2) {
                sg_tr(J->dy2 + n * J->M2 * P, P, J->M2, P, B2, J->M2);
                sg_tap(Xp + ((J->KH - 1) / 2 * J->Wp + (J->KW - 1) / 2) * C, C, J->M2, J, B2, acc2, fresh);
            }
        }
    }
    qo_k_scratch_release(owned);
}

bool qo_k_convgradweight_strided_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                     int64_t M2, const float *dy2, float *dw2, qo_pool *pool) {
    if (!p->fast || qo_k_sgemm_isa(-1) != 2 || p->nsp != 2 || p->group != 1 || p->N < 1) return false;
    if (p->str[0] < 2 && p->str[1] < 2) return false;
    if (p->dil[0] != 1 || p->dil[1] != 1 || p->M % 16 || (M2 && (M2 % 16 || !qo_k_conv_sib_ok(p)))) return false;
    /* up to 8 channels the flat kernel (conv_flat.c) is faster: few channels leave few accumulators */
    if (p->ker[0] * p->ker[1] > QO_K_FLAT_MAX_TAPS || p->C <= 8) return false;
    sg_job J = {.p = p, .dy = dy, .x = x, .dy2 = dy2, .C = p->C, .M = p->M, .M2 = M2, .H = p->in[0], .W = p->in[1],
                .OH = p->out[0], .OW = p->out[1], .KH = p->ker[0], .KW = p->ker[1], .sh = p->str[0],
                .sw = p->str[1], .pt = p->pad[0], .pl = p->pad[1], .pool = pool};
    if (J.OH < 1 || J.OW < 1) return false;
    J.Hp = J.sh * (J.OH - 1) + J.KH, J.Wp = J.sw * (J.OW - 1) + J.KW;
    J.P = J.OH * J.OW;
    int64_t ntap = J.KH * J.KW, wsz = ntap * J.C * J.M;
    J.asz = wsz + J.C * M2;
    J.nranges = qo_k_min64(qo_pool_size(pool), p->N);
    J.acc = qo_malloc((size_t)(J.nranges * J.asz) * sizeof(float));
    qo_pool_for(pool, J.nranges, 1, sg_task, &J);
    for (int64_t r = 1; r < J.nranges; r++)
        for (int64_t i = 0; i < J.asz; i++) J.acc[i] += J.acc[r * J.asz + i];
    /* dW[m][c][t] = dWt[t][c][m]; dW2[m][c] = dW2t[c][m] */
    for (int64_t m = 0; m < J.M; m++)
        for (int64_t c = 0; c < J.C; c++)
            for (int64_t t = 0; t < ntap; t++) dw[(m * J.C + c) * ntap + t] = J.acc[(t * J.C + c) * J.M + m];
    for (int64_t m = 0; m < M2; m++)
        for (int64_t c = 0; c < J.C; c++) dw2[m * J.C + c] = J.acc[wsz + c * M2 + m];
    qo_free(J.acc);
    return true;
}

#define ST_TERMS 64 /* terms per tile: the taps, plus a sibling (QO_K_FLAT_MAX_TAPS + 1 fits) */

/* The micro-kernel of the forward and the ConvTranspose: o[r ldo + 16 v ..] = sum over terms e in
 * order and k < tk[e] in order of tx[e][r tps[e] + k] tw[e][k ldw + 16 v ..], r < R, v < MV, from
 * zero (a term: an input pointer whose R rows are tps[e] floats apart, tk[e] channels, weights). */
T512 static INL void st_tile(const int R, const int MV, int nt, const float *const *tx, const int64_t *tps,
                             const float *const *tw, const int64_t *tk, int64_t ldw, float *o, int64_t ldo) {
    __m512 a[24];
    for (int i = 0; i < R * MV; i++) a[i] = _mm512_setzero_ps();
    for (int e = 0; e < nt; e++) {
        const float *xt = tx[e], *wr = tw[e];
        int64_t off[24];
        for (int r = 0; r < R; r++) off[r] = r * tps[e];
        for (int64_t k = 0; k < tk[e]; k++, wr += ldw) {
            __m512 b[4];
            for (int v = 0; v < MV; v++) b[v] = _mm512_loadu_ps(wr + 16 * v);
            for (int r = 0; r < R; r++) {
                __m512 xv = _mm512_set1_ps(xt[off[r] + k]);
                for (int v = 0; v < MV; v++) a[r * MV + v] = _mm512_fmadd_ps(xv, b[v], a[r * MV + v]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < MV; v++) _mm512_storeu_ps(o + r * ldo + 16 * v, a[r * MV + v]);
}

/* ---- forward ------------------------------------------------------------------------------------ */
/* Y^T[p][m] = sum over taps t and channels c of Xp[s p + t][c] Wt[(t, c)][m]: the same GEMM form with
 * the output pixels as rows. A tile holds R pixels of an output row by 16 MV filters; the pixels'
 * broadcasts are sw C floats apart (one offset register each), W^T's rows are loaded. */
typedef struct sf_job {
    const qo_k_conv_params *p;
    const float *x, *b, *b2;
    float *y, *y2;
    float *wt, *wt2;       /* W^T [(t, c)][M], W2^T [c][M2] */
    int64_t C, M, M2, H, W, OH, OW, KH, KW, sh, sw, pt, pl, Hp, Wp, P;
    qo_pool *pool;
} sf_job;

/* One image's Y^T [P][M] (ldo = M) from its padded planes Xp: taps toff, weights wt [(t, c)][M]. */
T512 static void sf_image(const sf_job *J, const float *Xp, const int64_t *toff, int64_t ntap, const float *wt,
                          int64_t M, float *Yt) {
    int MV = M % 64 == 0 ? 4 : M % 32 == 0 ? 2 : 1, RM = 24 / MV;
    int64_t nt = qo_k_cdiv(J->OW, RM);
    const float *tx[ST_TERMS], *tw[ST_TERMS];
    int64_t tps[ST_TERMS], tk[ST_TERMS];
    for (int64_t t = 0; t < ntap; t++) tps[t] = J->sw * J->C, tk[t] = J->C; /* one term per tap */
    for (int64_t m0 = 0; m0 < M; m0 += 16 * MV)
        for (int64_t oh = 0; oh < J->OH; oh++)
            for (int64_t i = 0, ow = 0; i < nt; i++) {
                int R = (int)((i + 1) * J->OW / nt - i * J->OW / nt);
                const float *xs = Xp + (J->sh * oh * J->Wp + J->sw * ow) * J->C;
                for (int64_t t = 0; t < ntap; t++) tx[t] = xs + toff[t], tw[t] = wt + t * J->C * M + m0;
                float *o = Yt + (oh * J->OW + ow) * M + m0;
#define SF_CASE(r_, mv_)                                                                                           \
    case r_:                                                                                                       \
        st_tile(r_, mv_, (int)ntap, tx, tps, tw, tk, M, o, M);                                                    \
        break;
                QO_SG_DISPATCH(MV, R, SF_CASE);
#undef SF_CASE
                ow += R;
            }
}

static void sf_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const sf_job *J = ctx;
    const qo_k_conv_params *p = J->p;
    int64_t C = J->C, P = J->P, ntap = J->KH * J->KW;
    size_t xn = (size_t)(C * J->Hp * J->Wp), yn = (size_t)(P * qo_k_max64(J->M, J->M2));
    void *owned = NULL;
    float *Xp = qo_k_scratch(J->pool, tid, (xn + yn) * sizeof(float), &owned), *Yt = Xp + xn;
    int64_t toff[QO_K_FLAT_MAX_TAPS], ctr = ((J->KH - 1) / 2 * J->Wp + (J->KW - 1) / 2) * C;
    for (int64_t kh = 0; kh < J->KH; kh++)
        for (int64_t kw = 0; kw < J->KW; kw++) toff[kh * J->KW + kw] = (kh * J->Wp + kw) * C;
    for (int64_t n = begin; n < end; n++) {
        sg_pad(J->x + n * C * J->H * J->W, C, J->H, J->W, J->pt, J->pl, J->Hp, J->Wp, Xp);
        float *yn_ = J->y + n * J->M * P;
        sf_image(J, Xp, toff, ntap, J->wt, J->M, Yt);
        sg_tr(Yt, J->M, P, J->M, yn_, P);
        qo_k_epilogue(yn_, J->M, P, P, J->b, p->res ? p->res + n * J->M * P : NULL, p->act);
        if (J->y2) {
            float *y2n = J->y2 + n * J->M2 * P;
            sf_image(J, Xp + ctr, (const int64_t[]){0}, 1, J->wt2, J->M2, Yt);
            sg_tr(Yt, J->M2, P, J->M2, y2n, P);
            qo_k_epilogue(y2n, J->M2, P, P, J->b2, NULL, p->act2);
        }
    }
    qo_k_scratch_release(owned);
}

bool qo_k_conv_strided_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                           qo_pool *pool) {
    if (!p->fast || qo_k_sgemm_isa(-1) != 2 || p->nsp != 2 || p->group != 1 || p->N < 1) return false;
    if (p->str[0] < 2 && p->str[1] < 2) return false;
    if (p->dil[0] != 1 || p->dil[1] != 1 || p->M % 16 || p->C <= 8) return false;
    if (p->y2 && (p->M2 % 16 || !qo_k_conv_sib_ok(p))) return false;
    if (p->ker[0] * p->ker[1] > QO_K_FLAT_MAX_TAPS || p->out[0] < 1 || p->out[1] < 1) return false;
    sf_job J = {.p = p, .x = x, .b = b, .b2 = p->b2, .y = y, .y2 = p->y2, .C = p->C, .M = p->M, .M2 = p->y2 ? p->M2 : 0,
                .H = p->in[0], .W = p->in[1], .OH = p->out[0], .OW = p->out[1], .KH = p->ker[0], .KW = p->ker[1],
                .sh = p->str[0], .sw = p->str[1], .pt = p->pad[0], .pl = p->pad[1], .pool = pool};
    J.Hp = J.sh * (J.OH - 1) + J.KH, J.Wp = J.sw * (J.OW - 1) + J.KW, J.P = J.OH * J.OW;
    int64_t ntap = J.KH * J.KW;
    J.wt = qo_malloc((size_t)(ntap * J.C * J.M + J.C * J.M2) * sizeof(float));
    J.wt2 = J.wt + ntap * J.C * J.M;
    for (int64_t m = 0; m < J.M; m++)
        for (int64_t c = 0; c < J.C; c++)
            for (int64_t t = 0; t < ntap; t++) J.wt[(t * J.C + c) * J.M + m] = w[(m * J.C + c) * ntap + t];
    for (int64_t m = 0; m < J.M2; m++)
        for (int64_t c = 0; c < J.C; c++) J.wt2[c * J.M2 + m] = p->w2[m * J.C + c];
    qo_pool_for(pool, p->N, 1, sf_task, &J);
    qo_free(J.wt);
    return true;
}

/* ---- ConvTranspose ------------------------------------------------------------------------------ */
/* Y^T[(oh, ow)][m] = sum over the taps reaching (oh, ow) and channels c of Xp[i][j][c] W^T[(t, c)][m],
 * i = (oh + pt - kh) / s (the taps with kh = oh + pt mod s), likewise j: per output row and column
 * class q (ow = q + s t), R consecutive t read consecutive j (channels side by side), so the same
 * micro-kernel form applies with terms (one per tap, plus the 1x1 sibling on the rows and columns
 * it reaches), each with its own input pointer, pixel pitch and weights. */
typedef struct st_job {
    const qo_k_conv_params *p;
    const float *x, *b;
    float *y;
    float *wt;                           /* W^T [(t, c)][M] */
    int64_t C, M, C2, H, W, OH, OW, KH, KW, sh, sw, pt, pl;
    int64_t PT, PL, Hp, Wp;              /* x's padded layout: x[i][j] at row i + PT, column j + PL */
    int64_t W2;                          /* the sibling's row pitch (pixels), zeros past W */
    float *qpart;                        /* p->qg: image n's dScale sum at n */
    qo_pool *pool;
} st_job;

/* One image's Y^T [OH OW][M] from x's padded layout Xp and the sibling's X2 ([H][W2][C2], or NULL). */
T512 static void st_image(const st_job *J, const float *Xp, const float *X2, const float *w2, float *Yt) {
    int64_t M = J->M, C = J->C, sh = J->sh, sw = J->sw;
    int MV = M % 64 == 0 ? 4 : M % 32 == 0 ? 2 : 1, RM = 24 / MV;
    for (int64_t m0 = 0; m0 < M; m0 += 16 * MV)
        for (int64_t oh = 0; oh < J->OH; oh++)
            for (int64_t q = 0; q < sw && q < J->OW; q++) {
                const float *tx[ST_TERMS], *tw[ST_TERMS];
                int64_t tps[ST_TERMS], tk[ST_TERMS];
                int nt = 0;
                for (int64_t kh = (oh + J->pt) % sh; kh < J->KH; kh += sh)
                    for (int64_t kw = (q + J->pl) % sw; kw < J->KW; kw += sw) {
                        int64_t i = (oh + J->pt - kh) / sh, j = (q + J->pl - kw) / sw; /* exact */
                        tx[nt] = Xp + ((i + J->PT) * J->Wp + j + J->PL) * C;
                        tw[nt] = J->wt + (kh * J->KW + kw) * C * M + m0;
                        tps[nt] = C, tk[nt] = C, nt++;
                    }
                if (X2 && oh % sh == 0 && oh / sh < J->H && q == 0) {
                    tx[nt] = X2 + oh / sh * J->W2 * J->C2, tw[nt] = w2 + m0, tps[nt] = J->C2, tk[nt] = J->C2, nt++;
                }
                int64_t cnt = (J->OW - q + sw - 1) / sw, ntl = qo_k_cdiv(cnt, RM);
                for (int64_t l = 0, t0 = 0; l < ntl; l++) {
                    int R = (int)((l + 1) * cnt / ntl - l * cnt / ntl);
                    const float *ttx[ST_TERMS];
                    for (int e = 0; e < nt; e++) ttx[e] = tx[e] + t0 * tps[e];
                    float *o = Yt + (oh * J->OW + q + sw * t0) * M + m0;
#define ST_CASE(r_, mv_)                                                                                           \
    case r_:                                                                                                       \
        st_tile(r_, mv_, nt, ttx, tps, tw, tk, M, o, sw * M);                                                     \
        break;
                    QO_SG_DISPATCH(MV, R, ST_CASE);
#undef ST_CASE
                    t0 += R;
                }
            }
}

static void st_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const st_job *J = ctx;
    const qo_k_conv_params *p = J->p;
    int64_t C = J->C, M = J->M, HW = J->H * J->W, osz = J->OH * J->OW;
    size_t xn = (size_t)(C * J->Hp * J->Wp), x2n = (size_t)(J->C2 * J->H * J->W2), yn = (size_t)(osz * M);
    void *owned = NULL;
    float *Xp = qo_k_scratch(J->pool, tid, (xn + x2n + yn) * sizeof(float), &owned), *X2 = Xp + xn, *Yt = X2 + x2n;
    /* the padding (and the sibling's columns past W) stays zero: each image overwrites the rest */
    memset(Xp, 0, xn * sizeof(float));
    if (J->C2 && J->W2 > J->W) memset(X2, 0, x2n * sizeof(float));
    for (int64_t n = begin; n < end; n++) {
        float *ynp = J->y + n * M * osz;
        if (p->qg) /* the quantizer input the epilogue reads, into L2 while the image is computed */
            for (int64_t o = 0; o < M * osz; o += 16)
                _mm_prefetch((const char *)(p->qg->x + n * M * osz + o), _MM_HINT_T1);
        for (int64_t i = 0; i < J->H; i++)
            sg_tr(J->x + n * C * HW + i * J->W, HW, C, J->W, Xp + ((i + J->PT) * J->Wp + J->PL) * C, C);
        if (J->C2)
            for (int64_t i = 0; i < J->H; i++)
                sg_tr(p->x2 + n * J->C2 * HW + i * J->W, HW, J->C2, J->W, X2 + i * J->W2 * J->C2, J->C2);
        st_image(J, Xp, J->C2 ? X2 : NULL, p->w2, Yt);
        sg_tr(Yt, M, osz, M, ynp, osz);
        qo_k_epilogue(ynp, M, osz, osz, J->b, p->res ? p->res + n * M * osz : NULL, p->act);
        if (p->qg) {
            qo_fsum acc;
            qo_fsum_init(&acc);
            qo_k_qgrad_span(p->qg, J->y, ynp - J->y, ynp - J->y + M * osz, &acc);
            if (p->qg->ds) J->qpart[n] = qo_fsum_end(&acc);
        }
    }
    qo_k_scratch_release(owned);
}

static int64_t st_fdiv(int64_t a, int64_t s) { return a >= 0 ? a / s : -((-a + s - 1) / s); }

bool qo_k_convtranspose_strided_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b,
                                    float *y, qo_pool *pool) {
    if (!p->fast || qo_k_sgemm_isa(-1) != 2 || p->nsp != 2 || p->group != 1 || p->N < 1) return false;
    if (p->str[0] < 2 && p->str[1] < 2) return false;
    /* against the strided flat kernel (2 threads, 64 images, with the sibling): faster from 32 filters
       on small planes or many channels (C 64 -> M 32 on 8x8: 0.75 vs 0.96 ms; 128 -> 64 on 4x4: 0.82
       vs 1.52; 32 -> 32 on 8x8: 0.44 vs 0.54), even at 32 -> 32 on 16x16, slower with 16 filters or
       few channels on larger planes (32 -> 16 on 16x16: 0.95 vs 0.83; 16 -> 32: 1.17 vs 0.81) */
    if (p->dil[0] != 1 || p->dil[1] != 1 || p->M % 32 || p->C <= 8) return false;
    if (p->C < 48 && p->in[0] * p->in[1] > 64) return false;
    if (p->ker[0] * p->ker[1] > QO_K_FLAT_MAX_TAPS || p->out[0] < 1 || p->out[1] < 1 || p->in[0] < 1 || p->in[1] < 1)
        return false;
    if (p->x2 && (p->str[0] * (p->in[0] - 1) >= p->out[0] || p->str[1] * (p->in[1] - 1) >= p->out[1])) return false;
    st_job J = {.p = p, .x = x, .b = b, .y = y, .C = p->C, .M = p->M, .C2 = p->x2 ? p->C2 : 0, .H = p->in[0],
                .W = p->in[1], .OH = p->out[0], .OW = p->out[1], .KH = p->ker[0], .KW = p->ker[1], .sh = p->str[0],
                .sw = p->str[1], .pt = p->pad[0], .pl = p->pad[1], .pool = pool};
    /* the rows i and columns j any tap reads, padded with zeros around x */
    int64_t i0 = st_fdiv(J.pt - (J.KH - 1), J.sh), i1 = st_fdiv(J.OH - 1 + J.pt, J.sh);
    int64_t j0 = st_fdiv(J.pl - (J.KW - 1), J.sw), j1 = st_fdiv(J.OW - 1 + J.pl, J.sw);
    J.PT = qo_k_max64(0, -i0), J.PL = qo_k_max64(0, -j0);
    J.Hp = J.PT + qo_k_max64(J.H, i1 + 1), J.Wp = J.PL + qo_k_max64(J.W, j1 + 1);
    /* the sibling reads columns t < ceil(OW / sw) of its rows */
    J.W2 = qo_k_max64(J.W, qo_k_cdiv(J.OW, J.sw));
    int64_t ntap = J.KH * J.KW;
    J.wt = qo_malloc((size_t)(ntap * J.C * J.M) * sizeof(float));
    for (int64_t c = 0; c < J.C; c++)
        for (int64_t m = 0; m < J.M; m++)
            for (int64_t t = 0; t < ntap; t++) J.wt[(t * J.C + c) * J.M + m] = w[(c * J.M + m) * ntap + t];
    J.qpart = p->qg && p->qg->ds ? qo_malloc((size_t)p->N * sizeof(float)) : NULL;
    qo_pool_for(pool, p->N, 1, st_task, &J);
    if (J.qpart) *p->qg->ds = qo_fsum_tree(J.qpart, p->N);
    qo_free(J.qpart);
    qo_free(J.wt);
    return true;
}
#else
bool qo_k_convtranspose_strided_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b,
                                    float *y, qo_pool *pool) {
    (void)p, (void)x, (void)w, (void)b, (void)y, (void)pool;
    return false;
}
bool qo_k_conv_strided_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                           qo_pool *pool) {
    (void)p, (void)x, (void)w, (void)b, (void)y, (void)pool;
    return false;
}
bool qo_k_convgradweight_strided_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                     int64_t M2, const float *dy2, float *dw2, qo_pool *pool) {
    (void)p, (void)dy, (void)x, (void)dw, (void)M2, (void)dy2, (void)dw2, (void)pool;
    return false;
}
#endif
