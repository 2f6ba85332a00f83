/* runtime/kernels/conv_wino4.c — Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions of batches
 * (Conv, and ConvTranspose with stride 1: the input gradients of a training step), on AVX-512,
 * with the images of a batch on the vector lanes.
 *
 * Each output is cut into 4x4 tiles; tile (th, tw) reads the 6x6 window at (4 th, 4 tw) of the
 * zero-padded input P. A block of 16 images fills the 16 lanes: a task (16 images, a few tile rows)
 * first transposes each channel's rows into a staging buffer S[row][col][image] (zeros in the
 * padding and in the lanes past the batch), so every window element is one aligned vector and the
 * transforms need no permutes or masks. With the matrices of the interpolation points
 * 0, 1, -1, 2, -1/2 (and infinity):
 *   V[pos][c][t] = (B^T d B)[pos]   (d: the 6x6 window of channel c; pos = 6 i + j; t: tile, lane)
 *   U[pos][m][c] = (G g G^T)[pos]   (g: the 3x3 kernel; computed in double)
 *   Z[pos][m][t] = sum_c U[pos][m][c] V[pos][c][t]   (36 GEMMs: conv_wino.c's qo_k_wino_gemms)
 *   y[m][tile t] = A^T Z[.][m][t] A
 * 36 multiplications per 16 outputs and channel pair: 0.56 times F(2x2, 3x3)'s 16 per 4. The
 * points -1/2 and 2 instead of the usual -2 and 2 halve the rounding error (a few 1e-6 of the
 * largest output for 64 channels of uniform data, measured against double sums); the outputs are
 * transposed back from the staging buffer Y[row][col][image], with the epilogue.
 *
 * Sums run in another order than the direct convolution, so, as conv_wino.c, only convolutions
 * that ask for it (qo_k_conv_params.fast) run here. Nothing depends on thread scheduling. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/internal.h"
#include "runtime/kernels/train_kernels.h"

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define INL __attribute__((always_inline)) inline

typedef struct w4_geom {
    int64_t N, C, M, H, W, pt, pl, OH, OW;
    int64_t TH, TW;  /* tile rows and columns */
    int64_t Wq, Wo;  /* staging columns: input (4 TW + 2, or more for whole blocks of 16), output (4 TW
                        rounded up to 16) */
    int64_t rb, nch; /* tile rows per task, tasks per block of 16 images */
    int64_t ld;      /* floats per row of V and Z: rb TW 16 + 16 (rows not a power of two apart) */
    int64_t mb;      /* output channels per GEMM block (<= 8) */
} w4_geom;

/* Transposes 16 vectors in place: r[i] lane j becomes r[j] lane i. */
T512 static INL void w4_tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) { /* pairs of rows, interleaved per 128-bit lane */
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4 i + j] 128-bit lane l: rows 4 i .. 4 i + 3 of column 4 l + j */
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int j = 0; j < 4; j++) { /* gather the 128-bit lanes of column j, j + 4, j + 8, j + 12 */
        __m512 a = r[j], b = r[4 + j], c = r[8 + j], d = r[12 + j];
        __m512 ablo = _mm512_shuffle_f32x4(a, b, 0x44), abhi = _mm512_shuffle_f32x4(a, b, 0xEE);
        __m512 cdlo = _mm512_shuffle_f32x4(c, d, 0x44), cdhi = _mm512_shuffle_f32x4(c, d, 0xEE);
        t[j] = _mm512_shuffle_f32x4(ablo, cdlo, 0x88), t[j + 4] = _mm512_shuffle_f32x4(ablo, cdlo, 0xDD);
        t[j + 8] = _mm512_shuffle_f32x4(abhi, cdhi, 0x88), t[j + 12] = _mm512_shuffle_f32x4(abhi, cdhi, 0xDD);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Staging: S[r][s][lane] = plane_lane[r0 + r][s - pl] for r < rows, s < Wq, where plane_lane =
 * src + lane istride (H x W), zero outside the plane and for lanes >= nimg. The transposed blocks
 * start at plane column 0 (s = pl), so a row of 32 takes two. Needs Wq >= pl + 16 cdiv(W, 16). */
T512 static void w4_stage(const float *src, int64_t istride, int64_t nimg, int64_t H, int64_t W, int64_t r0,
                          int64_t pl, int64_t rows, int64_t Wq, float *S) {
    int64_t wr = pl + qo_k_cdiv(W, 16) * 16; /* columns [pl, wr) come from transposed blocks */
    for (int64_t r = 0; r < rows; r++) {
        float *sr = S + r * Wq * 16;
        int64_t xr = r0 + r;
        if (xr < 0 || xr >= H) {
            memset(sr, 0, (size_t)(Wq * 16) * sizeof(float));
            continue;
        }
        memset(sr, 0, (size_t)(pl * 16) * sizeof(float));
        memset(sr + wr * 16, 0, (size_t)((Wq - wr) * 16) * sizeof(float));
        for (int64_t xc = 0; xc < W; xc += 16) {
            __mmask16 k = qo_k_bits16(0, W - xc);
            __m512 v[16];
            if (nimg == 16) /* (a separate loop: no test per load) */
                for (int i = 0; i < 16; i++) v[i] = _mm512_maskz_loadu_ps(k, src + i * istride + xr * W + xc);
            else
                for (int64_t i = 0; i < 16; i++)
                    v[i] = i < nimg ? _mm512_maskz_loadu_ps(k, src + i * istride + xr * W + xc) : _mm512_setzero_ps();
            w4_tr16(v);
            for (int j = 0; j < 16; j++) _mm512_storeu_ps(sr + (pl + xc + j) * 16, v[j]);
        }
    }
}

/* B^T applied to 6 vectors (points 0, 1, -1, 2, -1/2, infinity):
 *   o0 = d0 + 1.5 d1 - 2 d2 - 1.5 d3 + d4     o3 = -0.5 d1 - d2 + 0.5 d3 + d4
 *   o1 = -d1 - 2.5 d2 - 0.5 d3 + d4           o4 = 2 d1 - d2 - 2 d3 + d4
 *   o2 = d1 + 0.5 d2 - 2.5 d3 + d4            o5 = d1 + 1.5 d2 - 2 d3 - 1.5 d4 + d5 */
T512 static INL void w4_bt(const __m512 d[6], __m512 o[6]) {
    const __m512 h = _mm512_set1_ps(0.5f), h3 = _mm512_set1_ps(1.5f), two = _mm512_set1_ps(2.0f);
    const __m512 h5 = _mm512_set1_ps(2.5f);
    __m512 s13 = _mm512_sub_ps(d[1], d[3]), q = _mm512_sub_ps(d[4], d[2]);
    o[0] = _mm512_fmadd_ps(h3, s13, _mm512_fnmadd_ps(two, d[2], _mm512_add_ps(d[0], d[4])));
    o[1] = _mm512_fnmadd_ps(h5, d[2], _mm512_fnmadd_ps(h, d[3], _mm512_sub_ps(d[4], d[1])));
    o[2] = _mm512_fmadd_ps(h, d[2], _mm512_fnmadd_ps(h5, d[3], _mm512_add_ps(d[4], d[1])));
    o[3] = _mm512_fnmadd_ps(h, s13, q);
    o[4] = _mm512_fmadd_ps(two, s13, q);
    o[5] = _mm512_fmadd_ps(h3, _mm512_sub_ps(d[2], d[4]), _mm512_fnmadd_ps(two, d[3], _mm512_add_ps(d[1], d[5])));
}

/* A^T applied to 6 vectors: o0 = m0 + m1 + m2 + m3 + m4, o1 = m1 - m2 + 2 m3 - m4 / 2,
 * o2 = m1 + m2 + 4 m3 + m4 / 4, o3 = m1 - m2 + 8 m3 - m4 / 8 + m5. */
T512 static INL void w4_at(const __m512 m[6], __m512 o[4]) {
    __m512 p = _mm512_add_ps(m[1], m[2]), q = _mm512_sub_ps(m[1], m[2]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], p), _mm512_add_ps(m[3], m[4]));
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), m[3], _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), m[4], q));
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), m[3], _mm512_fmadd_ps(_mm512_set1_ps(0.25f), m[4], p));
    o[3] = _mm512_fmadd_ps(_mm512_set1_ps(8.0f), m[3],
                           _mm512_fnmadd_ps(_mm512_set1_ps(0.125f), m[4], _mm512_add_ps(q, m[5])));
}

/* Input transform of one tile: the window at s (staging rows rs floats apart) to v[pos ps]. */
T512 static INL void w4_in(const float *s, int64_t rs, float *v, int64_t ps) {
    __m512 t[6][6];
    for (int j = 0; j < 6; j++) { /* B^T d, column by column */
        __m512 d[6], o[6];
        for (int i = 0; i < 6; i++) d[i] = _mm512_loadu_ps(s + i * rs + 16 * j);
        w4_bt(d, o);
        for (int i = 0; i < 6; i++) t[i][j] = o[i];
    }
    for (int i = 0; i < 6; i++) { /* (B^T d) B, row by row */
        __m512 o[6];
        w4_bt(t[i], o);
        for (int j = 0; j < 6; j++) _mm512_storeu_ps(v + (6 * i + j) * ps, o[j]);
    }
}

/* Output transform of one tile: z[pos ps] to the 4x4 block at ys (staging rows rs floats apart). */
T512 static INL void w4_out(const float *z, int64_t ps, float *ys, int64_t rs) {
    __m512 t[4][6];
    for (int j = 0; j < 6; j++) { /* A^T Z */
        __m512 m[6], o[4];
        for (int i = 0; i < 6; i++) m[i] = _mm512_loadu_ps(z + (6 * i + j) * ps);
        w4_at(m, o);
        for (int a = 0; a < 4; a++) t[a][j] = o[a];
    }
    for (int a = 0; a < 4; a++) { /* (A^T Z) A */
        __m512 o[4];
        w4_at(t[a], o);
        for (int b = 0; b < 4; b++) _mm512_storeu_ps(ys + a * rs + 16 * b, o[b]);
    }
}

typedef struct w4_job {
    w4_geom g;
    const float *x, *b, *res, *U; /* U: [36][M / mb blocks][C][MB] */
    float *y;
    qo_k_act act;
    const qo_k_qgrad *qg; /* ConvTranspose: prepared, or NULL; qpart[task]: the task's dScale sum */
    float *qpart;
    qo_pool *pool;
} w4_job;

#define W4_PF 4 /* spans of the QuantGrad epilogue prefetched ahead */

T512 static void w4_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const w4_job *J = ctx;
    const w4_geom *g = &J->g;
    int64_t C = g->C, M = g->M, ld = g->ld, isz = g->H * g->W, osz = g->OH * g->OW;
    size_t vf = (size_t)(36 * C * ld), zf = (size_t)(36 * M * ld);
    size_t sf = (size_t)qo_k_max64((4 * g->rb + 2) * g->Wq, 4 * g->rb * g->Wo) * 16;
    void *owned = NULL;
    float *V = qo_k_scratch(J->pool, tid, (vf + zf + sf) * sizeof(float), &owned), *Z = V + vf, *S = Z + zf;
    for (int64_t task = begin; task < end; task++) {
        int64_t n0 = task / g->nch * 16, nimg = qo_k_min64(16, g->N - n0);
        qo_fsum acc;
        qo_fsum_init(&acc);
        int64_t th0 = task % g->nch * g->rb, th1 = qo_k_min64(g->TH, th0 + g->rb), nt = (th1 - th0) * g->TW;
        for (int64_t c = 0; c < C; c++) {
            w4_stage(J->x + (n0 * C + c) * isz, C * isz, nimg, g->H, g->W, 4 * th0 - g->pt, g->pl, 4 * (th1 - th0) + 2,
                     g->Wq, S);
            for (int64_t th = th0; th < th1; th++)
                for (int64_t tw = 0; tw < g->TW; tw++)
                    w4_in(S + (4 * (th - th0) * g->Wq + 4 * tw) * 16, g->Wq * 16,
                          V + c * ld + ((th - th0) * g->TW + tw) * 16, C * ld);
        }
        qo_k_wino_gemms(36, M, g->mb, C, nt, J->U, V, ld, Z);
        int64_t oy0 = 4 * th0, orows = qo_k_min64(g->OH, 4 * th1) - oy0;
        for (int64_t m = 0; m < M; m++) {
            for (int64_t th = th0; th < th1; th++)
                for (int64_t tw = 0; tw < g->TW; tw++)
                    w4_out(Z + m * ld + ((th - th0) * g->TW + tw) * 16, M * ld, S + (4 * (th - th0) * g->Wo + 4 * tw) * 16,
                           g->Wo * 16);
            float *ym = J->y + (n0 * M + m) * osz + oy0 * g->OW;
            for (int64_t r = 0; r < orows; r++)
                for (int64_t s0 = 0; s0 < g->OW; s0 += 16) {
                    __m512 v[16];
                    for (int j = 0; j < 16; j++) v[j] = _mm512_loadu_ps(S + (r * g->Wo + s0 + j) * 16);
                    w4_tr16(v);
                    __mmask16 k = qo_k_bits16(0, g->OW - s0);
                    float *yr = ym + r * g->OW + s0;
                    if (nimg == 16)
                        for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(yr + i * M * osz, k, v[i]);
                    else
                        for (int64_t i = 0; i < nimg; i++) _mm512_mask_storeu_ps(yr + i * M * osz, k, v[i]);
                }
            if (J->b || J->res || J->act.kind != QO_K_ACT_NONE)
                for (int64_t i = 0; i < nimg; i++) {
                    float *yi = ym + i * M * osz;
                    qo_k_epilogue(yi, 1, orows * g->OW, orows * g->OW, J->b ? J->b + m : NULL,
                                  J->res ? J->res + (yi - J->y) : NULL, J->act);
                }
        }
        /* the QuantGrad over the task's outputs (in L2), image by image: one span per image when the
           task has all its rows */
        for (int64_t i = 0; J->qg && i < nimg; i++) {
            int64_t e0 = ((n0 + i) * M) * osz + oy0 * g->OW;
            if (orows == g->OH) {
                qo_k_qgrad_span(J->qg, J->y, e0, e0 + M * osz, &acc);
                continue;
            }
            for (int64_t m = 0; m < M; m++) {
                /* X's rows of the span W4_PF ahead (short runs the hardware prefetcher misses) */
                int64_t a = i * M + m + W4_PF;
                if (a < nimg * M) {
                    const float *xp = J->qg->x + ((n0 + a / M) * M + a % M) * osz + oy0 * g->OW;
                    for (int64_t o = 0; o < orows * g->OW; o += 16) _mm_prefetch((const char *)(xp + o), _MM_HINT_T0);
                }
                qo_k_qgrad_span(J->qg, J->y, e0 + m * osz, e0 + m * osz + orows * g->OW, &acc);
            }
        }
        if (J->qg && J->qg->ds) J->qpart[task] = qo_fsum_end(&acc);
    }
    qo_k_scratch_release(owned);
}

/* G rows for the points 0, 1, -1, 2, -1/2, infinity: (1, p, p^2) / prod_{q != p} (p - q). */
static const double w4_G[6][3] = {{1, 0, 0},
                                  {-1.0 / 3, -1.0 / 3, -1.0 / 3},
                                  {1.0 / 3, -1.0 / 3, 1.0 / 3},
                                  {1.0 / 15, 2.0 / 15, 4.0 / 15},
                                  {-16.0 / 15, 8.0 / 15, -4.0 / 15},
                                  {0, 0, 1}};

/* U = G k G^T (in double, rounded once) for every (m, c), packed per block of mb output channels
 * as [36][block][C][MB]. Blocks of W4_NP (m, c) pairs are first copied to K[tap][pair], so that the
 * transforms run along the pairs, 8 to a vector; the blocks are spread over the pool (each pair's
 * value depends on its kernel only, so the split changes nothing). */
enum { W4_NP = 128 };
typedef struct w4w_job {
    const w4_geom *g;
    const float *w;
    bool transposed;
    float *U;
} w4w_job;

T512 static void w4w_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const w4w_job *J = ctx;
    const w4_geom *g = J->g;
    const float *w = J->w;
    int64_t M = g->M, C = g->C, np = M * C;
    double K[9][W4_NP], T[6][3][W4_NP];
    int64_t dst[W4_NP]; /* where pair q goes in U[0] */
    for (int64_t blk = begin; blk < end; blk++) {
        int64_t q0 = blk * W4_NP, n = qo_k_min64(W4_NP, np - q0), m = q0 / C, c = q0 % C;
        for (int64_t q = 0; q < n; q++) { /* pair q0 + q = m C + c */
            for (int r = 0; r < 9; r++) K[r][q] = J->transposed ? w[(c * M + m) * 9 + 8 - r] : w[(m * C + c) * 9 + r];
            int64_t m0 = m / g->mb * g->mb;
            dst[q] = m0 * C + c * qo_k_min64(g->mb, M - m0) + (m - m0);
            if (++c == C) c = 0, m++;
        }
        for (int i = 0; i < 6; i++) /* T = G K */
            for (int j = 0; j < 3; j++)
                for (int64_t q = 0; q < n; q++)
                    T[i][j][q] = w4_G[i][0] * K[j][q] + w4_G[i][1] * K[3 + j][q] + w4_G[i][2] * K[6 + j][q];
        for (int p = 0; p < 36; p++) { /* U = T G^T */
            int i = p / 6, j = p % 6;
            float *up = J->U + p * M * C;
            for (int64_t q = 0; q < n; q++)
                up[dst[q]] = (float)(T[i][0][q] * w4_G[j][0] + T[i][1][q] * w4_G[j][1] + T[i][2][q] * w4_G[j][2]);
        }
    }
}

static float *w4_weights(const w4_geom *g, const float *w, bool transposed, qo_pool *pool) {
    w4w_job J = {.g = g, .w = w, .transposed = transposed};
    J.U = qo_malloc((size_t)(36 * g->M * g->C) * sizeof(float));
    qo_pool_for(pool, qo_k_cdiv(g->M * g->C, W4_NP), 1, w4w_task, &J);
    return J.U;
}

/* Shape checks shared by the forward and the weight gradient: 3x3, stride 1, one group, batches
 * that fill the lanes (at least 3/4 of them), outputs of at least 6x6. */
static bool w4_applies(const qo_k_conv_params *p) {
    if (!p->fast || qo_k_sgemm_isa(-1) != 2 || p->nsp != 2 || p->group != 1 || p->N < 12) return false;
    for (int i = 0; i < 2; i++)
        if (p->ker[i] != 3 || p->str[i] != 1 || p->dil[i] != 1) return false;
    if (p->C > 1024 || p->M > 1024 || p->out[0] < 6 || p->out[1] < 6) return false;
    return qo_k_cdiv(p->N, 16) * 16 * 3 <= 4 * p->N;
}

bool qo_k_conv_wino4_f32(const qo_k_conv_params *p, bool transposed, const float *x, const float *w, const float *b,
                         float *y, qo_pool *pool) {
    if (!w4_applies(p)) return false;
    w4_geom g = {.N = p->N, .C = p->C, .M = p->M, .H = p->in[0], .W = p->in[1], .OH = p->out[0], .OW = p->out[1]};
    /* ConvTranspose with stride 1: the convolution of x at begin pad 2 - pad, kernel flipped */
    g.pt = transposed ? 2 - p->pad[0] : p->pad[0];
    g.pl = transposed ? 2 - p->pad[1] : p->pad[1];
    if (g.pt < 0 || g.pl < 0) return false;
    g.TH = qo_k_cdiv(g.OH, 4), g.TW = qo_k_cdiv(g.OW, 4);
    /* conv_wino.c's threshold (transforms (C + M) per tile, GEMMs C M), on the columns of a row */
    if (g.C * g.M * qo_k_min64(4 * g.TW, 16) < 64 * (g.C + g.M)) return false;
    g.Wq = qo_k_max64(4 * g.TW + 2, g.pl + qo_k_cdiv(g.W, 16) * 16), g.Wo = qo_k_cdiv(4 * g.TW, 16) * 16;
    /* V and Z of a task within ~1.3 MB (36 (C + M) floats per lane of a tile): a little over L2, measured
       faster than 800 KB (16 -> 16 on 32x32 and 64 -> 64 on 8x8: 3 % less) for two tile rows */
    int64_t nblk = qo_k_cdiv(g.N, 16), nth = qo_pool_size(pool);
    g.rb = qo_k_max64(1, qo_k_min64(g.TH, 1300 * 1024 / (36 * 4 * 16 * (g.C + g.M) * g.TW)));
    while (g.rb > 1 && nblk * qo_k_cdiv(g.TH, g.rb) < 2 * nth) g.rb--;
    g.nch = qo_k_cdiv(g.TH, g.rb);
    g.ld = g.rb * g.TW * 16 + 16;
    g.mb = qo_k_cdiv(g.M, qo_k_cdiv(g.M, 8));
    w4_job J = {.g = g, .x = x, .b = b, .res = p->res, .y = y, .act = p->act, .qg = transposed ? p->qg : NULL,
                .pool = pool};
    float *U = w4_weights(&g, w, transposed, pool);
    J.U = U;
    J.qpart = J.qg && J.qg->ds ? qo_malloc((size_t)(nblk * g.nch) * sizeof(float)) : NULL;
    qo_pool_for(pool, nblk * g.nch, 1, w4_task, &J);
    if (J.qpart) *J.qg->ds = qo_fsum_tree(J.qpart, nblk * g.nch);
    qo_free(J.qpart);
    qo_free(U);
    return true;
}

/* ---- weight gradients: F(3x3, 4x4) ------------------------------------------------------------ *
 * dW[m][c] = sum over images and 4x4 output tiles of the 3x3 correlation of the tile's 6x6 input
 * window d with its 4x4 output gradient g: the forward's trilinear form
 * sum_pos (A^T ...)(G w G^T)(B^T d B) differentiated in w, with the same matrices:
 *   V[pos][c][t] = (B^T d B)[pos]           w4_in, as the forward
 *   Y[pos][m][t] = (A g A^T)[pos]           w4_dy (A: the 6x4 transpose of A^T)
 *   S[pos][m][c] = sum_t Y[pos][m][t] V[pos][c][t]   (qo_k_wino_dots: 4x4 blocks of (m, c), the
 *                                            lanes folded once per chunk of at least 16 vectors)
 *   dW[m][c] = G^T S[.][m][c] G             in double
 * The tile rows of all image blocks are split into one contiguous range per pool thread, each
 * summing into its own S; the ranges are added in order: results depend on the pool size, not on
 * scheduling. */

/* A applied to 4 vectors: o0 = g0, o1 = g0 + g1 + g2 + g3, o2 = g0 - g1 + g2 - g3,
 * o3 = g0 + 2 g1 + 4 g2 + 8 g3, o4 = g0 - g1 / 2 + g2 / 4 - g3 / 8, o5 = g3 (Horner forms). */
T512 static INL void w4_a(const __m512 g[4], __m512 o[6]) {
    const __m512 two = _mm512_set1_ps(2.0f), h = _mm512_set1_ps(0.5f);
    __m512 e = _mm512_add_ps(g[0], g[2]), od = _mm512_add_ps(g[1], g[3]);
    o[0] = g[0];
    o[1] = _mm512_add_ps(e, od);
    o[2] = _mm512_sub_ps(e, od);
    o[3] = _mm512_fmadd_ps(two, _mm512_fmadd_ps(two, _mm512_fmadd_ps(two, g[3], g[2]), g[1]), g[0]);
    o[4] = _mm512_fnmadd_ps(h, _mm512_fnmadd_ps(h, _mm512_fnmadd_ps(h, g[3], g[2]), g[1]), g[0]);
    o[5] = g[3];
}

/* Output-gradient transform of one tile: the 4x4 block at s (staging rows rs floats apart) to
 * y[pos ps]. */
T512 static INL void w4_dy(const float *s, int64_t rs, float *y, int64_t ps) {
    __m512 t[6][4];
    for (int b = 0; b < 4; b++) { /* A g, column by column */
        __m512 g[4], o[6];
        for (int a = 0; a < 4; a++) g[a] = _mm512_loadu_ps(s + a * rs + 16 * b);
        w4_a(g, o);
        for (int i = 0; i < 6; i++) t[i][b] = o[i];
    }
    for (int i = 0; i < 6; i++) { /* (A g) A^T, row by row */
        __m512 o[6];
        w4_a(t[i], o);
        for (int j = 0; j < 6; j++) _mm512_storeu_ps(y + (6 * i + j) * ps, o[j]);
    }
}

typedef struct w4g_job {
    w4_geom g;
    const float *dy, *x;
    float *S;                 /* [nranges][36][Mp / 4][Cp / 4][16] */
    int64_t Mp, Cp, nrows;    /* channels rounded up to 4; tile rows of all blocks (blk TH + th) */
    int64_t nranges, ssz, rpt; /* ranges, floats per range's S, tile rows per chunk */
    int64_t Wd;               /* staging columns of dy */
    qo_pool *pool;
} w4g_job;

T512 static void w4g_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const w4g_job *J = ctx;
    const w4_geom *g = &J->g;
    int64_t C = g->C, M = g->M, Cp = J->Cp, Mp = J->Mp, ld = g->ld, isz = g->H * g->W, osz = g->OH * g->OW;
    size_t vf = (size_t)(36 * Cp * ld), yf = (size_t)(36 * Mp * ld);
    size_t sf = (size_t)qo_k_max64(6 * g->Wq, 4 * J->Wd) * 16;
    void *owned = NULL;
    float *V = qo_k_scratch(J->pool, tid, (vf + yf + sf) * sizeof(float), &owned), *Y = V + vf, *St = Y + yf;
    for (int p = 0; p < 36; p++) { /* rows past C and M: zeros, never written */
        memset(V + (p * Cp + C) * ld, 0, (size_t)((Cp - C) * ld) * sizeof(float));
        memset(Y + (p * Mp + M) * ld, 0, (size_t)((Mp - M) * ld) * sizeof(float));
    }
    for (int64_t r = begin; r < end; r++) {
        float *S = J->S + r * J->ssz;
        memset(S, 0, (size_t)J->ssz * sizeof(float));
        int64_t q0 = r * J->nrows / J->nranges, q1 = (r + 1) * J->nrows / J->nranges;
        for (int64_t b0 = q0; b0 < q1; b0 += J->rpt) {
            int64_t b1 = qo_k_min64(q1, b0 + J->rpt);
            for (int64_t q = b0; q < b1; q++) {
                int64_t n0 = q / g->TH * 16, th = q % g->TH, nimg = qo_k_min64(16, g->N - n0), tv = (q - b0) * g->TW;
                for (int64_t c = 0; c < C; c++) {
                    w4_stage(J->x + (n0 * C + c) * isz, C * isz, nimg, g->H, g->W, 4 * th - g->pt, g->pl, 6, g->Wq, St);
                    for (int64_t tw = 0; tw < g->TW; tw++)
                        w4_in(St + 4 * tw * 16, g->Wq * 16, V + c * ld + (tv + tw) * 16, Cp * ld);
                }
                for (int64_t m = 0; m < M; m++) {
                    w4_stage(J->dy + (n0 * M + m) * osz, M * osz, nimg, g->OH, g->OW, 4 * th, 0, 4, J->Wd, St);
                    for (int64_t tw = 0; tw < g->TW; tw++)
                        w4_dy(St + 4 * tw * 16, J->Wd * 16, Y + m * ld + (tv + tw) * 16, Mp * ld);
                }
            }
            qo_k_wino_dots(36, Y, Mp, V, Cp, ld, (b1 - b0) * g->TW, S);
        }
    }
    qo_k_scratch_release(owned);
}

/* dW = G^T S G per (m, c), a 4x4 block of (m, c) per index: the ranges' partial sums S are added
 * in range order (the same float sums whatever the split), then transformed in double. */
typedef struct w4g_out_job {
    const w4g_job *J;
    float *dw;
} w4g_out_job;

static void w4g_out_task(void *ctx, int64_t begin, int64_t end, int tid) {
    (void)tid;
    const w4g_out_job *O = ctx;
    const w4g_job *J = O->J;
    int64_t M = J->g.M, C = J->g.C, Mb = J->Mp / 4, Cb = J->Cp / 4;
    for (int64_t k = begin; k < end; k++) {
        int64_t mb = k / Cb, cb = k % Cb;
        float blk[36][16]; /* the block's 16 sums at each position: contiguous in each range's S */
        for (int q = 0; q < 36; q++) {
            int64_t o = ((q * Mb + mb) * Cb + cb) * 16;
            memcpy(blk[q], J->S + o, sizeof blk[q]);
            for (int64_t r = 1; r < J->nranges; r++)
                for (int e = 0; e < 16; e++) blk[q][e] += J->S[r * J->ssz + o + e];
        }
        for (int e = 0; e < 16; e++) {
            int64_t m = 4 * mb + e / 4, c = 4 * cb + e % 4;
            if (m >= M || c >= C) continue;
            double t[3][6];
            for (int r = 0; r < 3; r++)
                for (int j = 0; j < 6; j++) {
                    double a = 0;
                    for (int i = 0; i < 6; i++) a += w4_G[i][r] * blk[6 * i + j][e];
                    t[r][j] = a;
                }
            float *w = O->dw + (m * C + c) * 9;
            for (int r = 0; r < 3; r++)
                for (int u = 0; u < 3; u++) {
                    double a = 0;
                    for (int j = 0; j < 6; j++) a += t[r][j] * w4_G[j][u];
                    w[r * 3 + u] = (float)a;
                }
        }
    }
}

bool qo_k_convgradweight_wino4_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                   qo_pool *pool) {
    if (!w4_applies(p)) return false;
    w4_geom g = {.N = p->N, .C = p->C, .M = p->M, .H = p->in[0], .W = p->in[1], .OH = p->out[0], .OW = p->out[1]};
    g.pt = p->pad[0], g.pl = p->pad[1];
    g.TH = qo_k_cdiv(g.OH, 4), g.TW = qo_k_cdiv(g.OW, 4);
    if (g.C * g.M * qo_k_min64(4 * g.TW, 16) < 64 * (g.C + g.M)) return false; /* the forward's threshold */
    g.Wq = qo_k_max64(4 * g.TW + 2, g.pl + qo_k_cdiv(g.W, 16) * 16);
    w4g_job J = {.dy = dy, .x = x, .Mp = qo_k_cdiv(g.M, 4) * 4, .Cp = qo_k_cdiv(g.C, 4) * 4, .pool = pool};
    J.Wd = qo_k_max64(4 * g.TW, qo_k_cdiv(g.OW, 16) * 16);
    J.nrows = qo_k_cdiv(g.N, 16) * g.TH;
    J.nranges = qo_k_min64(qo_pool_size(pool), J.nrows);
    /* chunks of at least 16 tile vectors (the fold of qo_k_wino_dots amortized), more while V and Y
       stay within ~1.3 MB; one 36th of them (one position) is what the reduction reads at a time */
    J.rpt = qo_k_max64(qo_k_cdiv(16, g.TW), 1300 * 1024 / (36 * 4 * 16 * (J.Cp + J.Mp) * g.TW));
    J.rpt = qo_k_max64(1, qo_k_min64(J.rpt, qo_k_cdiv(J.nrows, J.nranges)));
    g.ld = J.rpt * g.TW * 16 + 16;
    J.g = g;
    J.ssz = 36 * J.Mp * J.Cp;
    J.S = qo_malloc((size_t)(J.nranges * J.ssz) * sizeof(float));
    qo_pool_for(pool, J.nranges, 1, w4g_task, &J);
    qo_pool_for(pool, (J.Mp / 4) * (J.Cp / 4), 4, w4g_out_task, &(w4g_out_job){&J, dw});
    qo_free(J.S);
    return true;
}

#else /* no AVX-512 code: never applies */
bool qo_k_convgradweight_wino4_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                   qo_pool *pool) {
    (void)p, (void)dy, (void)x, (void)dw, (void)pool;
    return false;
}

bool qo_k_conv_wino4_f32(const qo_k_conv_params *p, bool transposed, const float *x, const float *w, const float *b,
                         float *y, qo_pool *pool) {
    (void)p, (void)transposed, (void)x, (void)w, (void)b, (void)y, (void)pool;
    return false;
}
#endif
