/* runtime/kernels/conv_wino.c — Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (Conv, and
 * ConvTranspose with stride 1: the input gradients of a training step), on AVX-512.
 *
 * Each output is cut into 2x2 tiles; tile (th, tw) reads the 4x4 window at (2 th, 2 tw) of the
 * zero-padded input P, read from x by masked loads (no padded copy). The transforms put 16 tiles on
 * the vector lanes: 16 of one tile row, or on 16x16 and 8x8 outputs (TW 8 or 4) whole tile rows
 * packed 2 or 4 to a vector. With B, G, A the F(2x2, 3x3) matrices:
 *   V[pos][c][t] = (B^T d B)[pos]   (d: the window of channel c, pos = 4 i + j)
 *   U[pos][m][c] = (G g G^T)[pos]   (g: the 3x3 kernel of output m, input c)
 *   Z[pos][m][t] = sum_c U[pos][m][c] V[pos][c][t]   (16 small GEMMs)
 *   y[m][tile t] = A^T Z[.][m][t] A
 * which takes 16 multiplications per tile and channel pair where the direct sum takes 36. A pool
 * task runs a chunk of images: their tiles are numbered image after image (t = image T + th TW + tw)
 * so the GEMMs of small planes still run over long rows; V and Z stay in L2.
 *
 * The sums differ from the direct convolution's (the transforms add and subtract inputs before the
 * products; errors stay within a few ulps of the largest input-weight product per output), so
 * only convolutions that ask for it (qo_k_conv_params.fast: the training steps) run here;
 * inference keeps the exact order of im2col + sgemm. Nothing depends on thread scheduling. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/internal.h"

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define WINO_X86 1
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))
#define INL __attribute__((always_inline)) inline

/* Geometry: x [C][H][W] read as P[r][s] = x[r - pt][s - pl]; y [M][OH][OW]. */
typedef struct wino_geom {
    int64_t C, M, H, W, pt, pl, OH, OW;
    int64_t TH, TW, T;  /* tile rows and columns, tiles per image */
    int64_t R;          /* tile rows per vector: 1 (16 tiles of a row), 2 (TW == 8), 4 (TW == 4) */
    int64_t nb, Tt;     /* images per task, tile lanes per task (nb T rounded up to 16) */
    int64_t ld;         /* floats per row of V and Z: Tt + 16, so the 16 rows of one tile are not
                           a power of two apart (that stride thrashed L1's sets) */
    int64_t mb;         /* output channels per GEMM block (<= 8) */
} wino_geom;

/* Column masks and offsets of the loads of one block of tile columns (tw0): for the window column
 * offsets 0 and 2 (o) and the two vectors of a row (h), the lanes inside x and where lane 0 reads
 * (relative to the row). They do not depend on the tile row, so a block computes them once. */
typedef struct wino_cols {
    __mmask16 k[2][2];
    int64_t xc[2][2];
} wino_cols;

static inline void wino_cols_of(const wino_geom *g, int64_t tw0, wino_cols *wc) {
    for (int o = 0; o < 2; o++)
        for (int h = 0; h < 2; h++) {
            /* R = 1: columns 2 tw0 + 2 o + 16 h ..; R = 2, 4: columns 2 o .. of another row pair */
            int64_t xc = (g->R == 1 ? 2 * tw0 + 2 * o + 16 * h : 2 * o) - g->pl;
            int64_t len = g->R == 4 ? 8 : 16;
            wc->xc[o][h] = xc, wc->k[o][h] = qo_k_bits16(-xc, qo_k_min64(len, g->W - xc));
        }
}

/* Lanes of P row pr at the columns of (o, h) (masked, 8 lanes when R = 4), 0 outside x. */
T512 static INL __m512 wino_ld16(const wino_geom *g, const float *x, const wino_cols *wc, int64_t pr, int o, int h) {
    int64_t xr = pr - g->pt;
    bool in = xr >= 0 && xr < g->H;
    /* a row outside x: no lane read (mask 0) */
    return _mm512_maskz_loadu_ps(in ? wc->k[o][h] : 0, x + (in ? xr : 0) * g->W + wc->xc[o][h]);
}

T512 static INL __m256 wino_ld8(const wino_geom *g, const float *x, const wino_cols *wc, int64_t pr, int o) {
    int64_t xr = pr - g->pt;
    bool in = xr >= 0 && xr < g->H;
    return _mm256_maskz_loadu_ps((__mmask8)(in ? wc->k[o][0] : 0), x + (in ? xr : 0) * g->W + wc->xc[o][0]);
}

/* Window columns 2 o (*c0) and 2 o + 1 (*c1) of row i of the 4x4 windows of 16 tiles, one tile
 * per lane: read as 32 consecutive values (two vectors) and split into even and odd ones. R = 1:
 * tiles tw0..tw0 + 15 of tile row th; R = 2: tile rows th and th + 1 (8 tiles each); R = 4: tile
 * rows th..th + 3 (4 each). */
T512 static INL void wino_cols2(const wino_geom *g, const float *x, const wino_cols *wc, int64_t th, int i, int o,
                               __m512 *c0, __m512 *c1) {
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    int64_t pr = 2 * th + i;
    __m512 a0, a1;
    if (g->R == 1) {
        a0 = wino_ld16(g, x, wc, pr, o, 0), a1 = wino_ld16(g, x, wc, pr, o, 1);
    } else if (g->R == 2) {
        a0 = wino_ld16(g, x, wc, pr, o, 0), a1 = wino_ld16(g, x, wc, pr + 2, o, 0);
    } else {
        a0 = _mm512_insertf32x8(_mm512_castps256_ps512(wino_ld8(g, x, wc, pr, o)), wino_ld8(g, x, wc, pr + 2, o), 1);
        a1 = _mm512_insertf32x8(_mm512_castps256_ps512(wino_ld8(g, x, wc, pr + 4, o)), wino_ld8(g, x, wc, pr + 6, o), 1);
    }
    *c0 = _mm512_permutex2var_ps(a0, ev, a1), *c1 = _mm512_permutex2var_ps(a0, od, a1);
}

/* The 16 tile lanes of block (th, tw0) that exist: their stores are masked with it. */
static inline __mmask16 wino_lanes(const wino_geom *g, int64_t th, int64_t tw0) {
    if (g->R == 1) return qo_k_bits16(0, g->TW - tw0);
    return qo_k_bits16(0, qo_k_min64(g->R, g->TH - th) * g->TW);
}

/* Input transform of one channel of one image (x: its [H][W] plane, read through the padding):
 * V[pos * ldp + t0 + tile] for its T tiles. Tile rows are packed R to a vector on small planes. */
T512 static void wino_in(const wino_geom *g, const float *x, float *V, int64_t ldp, int64_t t0) {
    for (int64_t tw0 = 0; tw0 < g->TW; tw0 += 16) {
        wino_cols wc;
        wino_cols_of(g, tw0, &wc);
        for (int64_t th = 0; th < g->TH; th += g->R) {
            __mmask16 k = wino_lanes(g, th, tw0);
            /* B^T d as the rows arrive (d[i][j] lane l = P[2 th + i][2 (tw0 + l) + j], R = 1): rows 0
               and 1 are kept, row 2 gives t[0..2], row 3 t[3]; at most 16 live vectors, no spills */
            __m512 d0[4], d1[4], t[4][4];
            for (int i = 0; i < 4; i++) {
                __m512 r[4];
                wino_cols2(g, x, &wc, th, i, 0, &r[0], &r[1]);
                wino_cols2(g, x, &wc, th, i, 1, &r[2], &r[3]);
                for (int j = 0; j < 4; j++) {
                    if (i == 0) d0[j] = r[j];
                    else if (i == 1) d1[j] = r[j];
                    else if (i == 2) {
                        t[0][j] = _mm512_sub_ps(d0[j], r[j]);
                        t[1][j] = _mm512_add_ps(d1[j], r[j]);
                        t[2][j] = _mm512_sub_ps(r[j], d1[j]);
                    } else t[3][j] = _mm512_sub_ps(d1[j], r[j]);
                }
            }
            float *v = V + t0 + th * g->TW + tw0;
            for (int i = 0; i < 4; i++) { /* (B^T d) B */
                _mm512_mask_storeu_ps(v + (4 * i + 0) * ldp, k, _mm512_sub_ps(t[i][0], t[i][2]));
                _mm512_mask_storeu_ps(v + (4 * i + 1) * ldp, k, _mm512_add_ps(t[i][1], t[i][2]));
                _mm512_mask_storeu_ps(v + (4 * i + 2) * ldp, k, _mm512_sub_ps(t[i][2], t[i][1]));
                _mm512_mask_storeu_ps(v + (4 * i + 3) * ldp, k, _mm512_sub_ps(t[i][1], t[i][3]));
            }
        }
    }
}

/* Output transform of one channel of one image: y[OH][OW] from Z[pos * ldp + t0 + tile]. */
T512 static void wino_out(const wino_geom *g, const float *Z, int64_t ldp, int64_t t0, float *y) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int64_t th = 0; th < g->TH; th += g->R)
        for (int64_t tw0 = 0; tw0 < g->TW; tw0 += 16) {
            __mmask16 k = wino_lanes(g, th, tw0);
            const float *z = Z + t0 + th * g->TW + tw0;
            __m512 s[2][4];
            for (int j = 0; j < 4; j++) { /* A^T Z */
                __m512 z0 = _mm512_maskz_loadu_ps(k, z + (0 + j) * ldp), z1 = _mm512_maskz_loadu_ps(k, z + (4 + j) * ldp);
                __m512 z2 = _mm512_maskz_loadu_ps(k, z + (8 + j) * ldp), z3 = _mm512_maskz_loadu_ps(k, z + (12 + j) * ldp);
                s[0][j] = _mm512_add_ps(_mm512_add_ps(z0, z1), z2);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(z1, z2), z3);
            }
            for (int a = 0; a < 2; a++) { /* (A^T Z) A, interleaved */
                __m512 y0 = _mm512_add_ps(_mm512_add_ps(s[a][0], s[a][1]), s[a][2]);
                __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(s[a][1], s[a][2]), s[a][3]);
                __m512 p = _mm512_permutex2var_ps(y0, lo, y1), q = _mm512_permutex2var_ps(y0, hi, y1);
                if (g->R == 1) { /* p, q: 32 outputs of row 2 th + a */
                    if (2 * th + a >= g->OH) continue;
                    int64_t n = g->OW - 2 * tw0;
                    float *yr = y + (2 * th + a) * g->OW + 2 * tw0;
                    _mm512_mask_storeu_ps(yr, qo_k_bits16(0, n), p);
                    if (n > 16) _mm512_mask_storeu_ps(yr + 16, qo_k_bits16(0, n - 16), q);
                } else if (g->R == 2) { /* p: row 2 th + a, q: row 2 th + 2 + a (16 outputs each) */
                    __mmask16 kw = qo_k_bits16(0, g->OW);
                    if (2 * th + a < g->OH) _mm512_mask_storeu_ps(y + (2 * th + a) * g->OW, kw, p);
                    if (2 * th + 2 + a < g->OH) _mm512_mask_storeu_ps(y + (2 * th + 2 + a) * g->OW, kw, q);
                } else { /* 8 outputs of rows 2 (th + r) + a, r = 0..3: p's halves, then q's */
                    __mmask8 kw = (__mmask8)qo_k_bits16(0, g->OW);
                    __m256 h[4] = {_mm512_castps512_ps256(p), _mm512_extractf32x8_ps(p, 1), _mm512_castps512_ps256(q),
                                   _mm512_extractf32x8_ps(q, 1)};
                    for (int r = 0; r < 4; r++)
                        if (2 * (th + r) + a < g->OH) _mm256_mask_storeu_ps(y + (2 * (th + r) + a) * g->OW, kw, h[r]);
                }
            }
        }
}

/* GEMM block: Z[m][t0 + 16 v ..] = sum_c U[c MB + m] V[c][t0 + 16 v ..], m < MB, v < J. */
T512 static INL void wino_blk(const int MB, const int J, int64_t C, const float *U, const float *V, int64_t ldv,
                              float *Z, int64_t ldz, int64_t t0) {
    __m512 acc[8][4];
    for (int m = 0; m < MB; m++)
        for (int v = 0; v < J; v++) acc[m][v] = _mm512_setzero_ps();
    for (int64_t c = 0; c < C; c++) {
        const float *vc = V + c * ldv + t0, *uc = U + c * MB;
        __m512 xv[4];
        for (int v = 0; v < J; v++) xv[v] = _mm512_loadu_ps(vc + 16 * v);
        for (int m = 0; m < MB; m++) {
            __m512 u = _mm512_set1_ps(uc[m]);
            for (int v = 0; v < J; v++) acc[m][v] = _mm512_fmadd_ps(u, xv[v], acc[m][v]);
        }
    }
    for (int m = 0; m < MB; m++)
        for (int v = 0; v < J; v++) _mm512_storeu_ps(Z + m * ldz + t0 + 16 * v, acc[m][v]);
}

T512 static INL void wino_rows(const int MB, const int J, int64_t C, int64_t nv, const float *U, const float *V,
                               int64_t ldv, float *Z, int64_t ldz) {
    int64_t v = 0;
    for (; v + J <= nv; v += J) wino_blk(MB, J, C, U, V, ldv, Z, ldz, 16 * v);
    for (; v < nv; v++) wino_blk(MB, 1, C, U, V, ldv, Z, ldz, 16 * v);
}

/* MB x J accumulators, at most 24 of the 32 registers. */
T512 static void wino_gemm(int MB, int64_t C, int64_t nv, const float *U, const float *V, int64_t ldv, float *Z,
                           int64_t ldz) {
    switch (MB) {
    case 1: wino_rows(1, 4, C, nv, U, V, ldv, Z, ldz); break;
    case 2: wino_rows(2, 4, C, nv, U, V, ldv, Z, ldz); break;
    case 3: wino_rows(3, 4, C, nv, U, V, ldv, Z, ldz); break;
    case 4: wino_rows(4, 4, C, nv, U, V, ldv, Z, ldz); break;
    case 5: wino_rows(5, 4, C, nv, U, V, ldv, Z, ldz); break;
    case 6: wino_rows(6, 4, C, nv, U, V, ldv, Z, ldz); break;
    case 7: wino_rows(7, 3, C, nv, U, V, ldv, Z, ldz); break;
    default: wino_rows(8, 3, C, nv, U, V, ldv, Z, ldz); break;
    }
}

T512 void qo_k_wino_gemms(int npos, int64_t M, int64_t mb, int64_t C, int64_t nv, const float *U, const float *V,
                          int64_t ld, float *Z) {
    for (int p = 0; p < npos; p++)
        for (int64_t m0 = 0; m0 < M; m0 += mb) {
            int MB = (int)qo_k_min64(mb, M - m0);
            const float *u = U + (p * M + m0) * C, *v = V + p * C * ld;
            float *z = Z + (p * M + m0) * ld;
            if (nv == 2 && MB >= 7) /* 2 x MB accumulators: one pass over U, not two */
                MB == 8 ? wino_rows(8, 2, C, nv, u, v, ld, z, ld) : wino_rows(7, 2, C, nv, u, v, ld, z, ld);
            else wino_gemm(MB, C, nv, u, v, ld, z, ld);
        }
}

typedef struct wino_job {
    wino_geom g;
    const float *x, *b, *res;
    const float *U; /* [16][M / mb blocks][C][MB] */
    float *y;
    qo_k_act act;
    int64_t N;
    qo_pool *pool;
} wino_job;

static void wino_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const wino_job *J = ctx;
    const wino_geom *g = &J->g;
    int64_t C = g->C, M = g->M, Tt = g->Tt, ld = g->ld, osz = g->OH * g->OW;
    size_t vf = (size_t)(16 * C * ld), zf = (size_t)(16 * M * ld);
    void *owned = NULL;
    float *V = qo_k_scratch(J->pool, tid, (vf + zf) * sizeof(float), &owned), *Z = V + vf;
    int64_t isz = g->H * g->W;
    for (int64_t task = begin; task < end; task++) {
        int64_t n0 = task * g->nb, nb = qo_k_min64(g->nb, J->N - n0), used = nb * g->T;
        for (int64_t c = 0; c < C; c++) {
            for (int64_t i = 0; i < nb; i++) wino_in(g, J->x + ((n0 + i) * C + c) * isz, V + c * ld, C * ld, i * g->T);
            if (used < Tt) /* the lanes past the last tile: zeros, not stale floats */
                for (int p = 0; p < 16; p++) memset(V + (p * C + c) * ld + used, 0, (size_t)(Tt - used) * sizeof(float));
        }
        int64_t nv = qo_k_cdiv(used, 16);
        qo_k_wino_gemms(16, M, g->mb, C, nv, J->U, V, ld, Z);
        for (int64_t i = 0; i < nb; i++) {
            float *yn = J->y + (n0 + i) * M * osz;
            for (int64_t m = 0; m < M; m++) wino_out(g, Z + m * ld, M * ld, i * g->T, yn + m * osz);
            if (J->b || J->res || J->act.kind != QO_K_ACT_NONE)
                qo_k_epilogue(yn, M, osz, osz, J->b, J->res ? J->res + (yn - J->y) : NULL, J->act);
        }
    }
    qo_k_scratch_release(owned);
}

/* U = G g G^T for every (m, c), packed per block of mb output channels as [16][block][C][MB]. */
static float *wino_weights(const wino_geom *g, const float *w, bool transposed) {
    int64_t M = g->M, C = g->C;
    float *U = qo_malloc((size_t)(16 * M * C) * sizeof(float));
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            float k[3][3], t[4][3], u[4][4];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    k[i][j] = transposed ? w[(c * M + m) * 9 + (2 - i) * 3 + (2 - j)] : w[(m * C + c) * 9 + i * 3 + j];
            for (int j = 0; j < 3; j++) { /* G k */
                t[0][j] = k[0][j];
                t[1][j] = 0.5f * (k[0][j] + k[1][j] + k[2][j]);
                t[2][j] = 0.5f * (k[0][j] - k[1][j] + k[2][j]);
                t[3][j] = k[2][j];
            }
            for (int i = 0; i < 4; i++) { /* (G k) G^T */
                u[i][0] = t[i][0];
                u[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                u[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                u[i][3] = t[i][2];
            }
            int64_t m0 = m / g->mb * g->mb, MB = qo_k_min64(g->mb, M - m0);
            for (int p = 0; p < 16; p++) U[(p * M + m0) * C + c * MB + (m - m0)] = u[p / 4][p % 4];
        }
    return U;
}

bool qo_k_conv_wino_f32(const qo_k_conv_params *p, bool transposed, const float *x, const float *w, const float *b,
                        float *y, qo_pool *pool) {
    if (!p->fast || qo_k_sgemm_isa(-1) != 2 || p->nsp != 2 || p->group != 1 || p->N < 1) return false;
    for (int i = 0; i < 2; i++)
        if (p->ker[i] != 3 || p->str[i] != 1 || p->dil[i] != 1) return false;
    if (p->C > 1024 || p->M > 1024) return false;
    wino_geom g = {.C = p->C, .M = p->M, .H = p->in[0], .W = p->in[1], .OH = p->out[0], .OW = p->out[1]};
    /* ConvTranspose with stride 1: the convolution of x at begin pad 2 - pad, kernel flipped */
    g.pt = transposed ? 2 - p->pad[0] : p->pad[0];
    g.pl = transposed ? 2 - p->pad[1] : p->pad[1];
    if (g.pt < 0 || g.pl < 0 || g.OH < 1 || g.OW < 1) return false;
    g.TH = qo_k_cdiv(g.OH, 2), g.TW = qo_k_cdiv(g.OW, 2), g.T = g.TH * g.TW;
    /* the transforms cost (C + M) per tile, on min(TW, 16) of 16 lanes; the GEMMs C M per tile.
       Measured against conv_flat.c (batch 64): faster from C M min(TW, 16) >= 64 (C + M) on
       (8 -> 8 channels on 32x32: 1.2x; 16 -> 16, 32x32: 1.5x; 64 -> 64, 8x8: 1.3x), slower below
       (16 -> 32 on 8x8: 0.9x; 3 -> 16 on 32x32: 0.95x) */
    if (g.C * g.M * qo_k_min64(g.TW, 16) < 64 * (g.C + g.M)) return false;
    g.R = g.TW == 8 ? 2 : g.TW == 4 ? 4 : 1;
    /* V and Z of a task within ~640 KB (L2): tiles per task about 10240 / (C + M) */
    g.nb = qo_k_max64(1, qo_k_min64(p->N, 10240 / (g.C + g.M) / g.T));
    int nth = qo_pool_size(pool);
    while (g.nb > 1 && qo_k_cdiv(p->N, g.nb) < 2 * nth) g.nb--;
    /* a task count that the threads divide (64 images as 13 tasks of 5 left one thread a task
       behind; 16 of 4 do not), giving up at most half the chunk */
    for (int64_t k = g.nb; k > 1 && 2 * k >= g.nb; k--)
        if (qo_k_cdiv(p->N, k) % nth == 0) {
            g.nb = k;
            break;
        }
    g.Tt = qo_k_cdiv(g.nb * g.T, 16) * 16, g.ld = g.Tt + 16;
    g.mb = qo_k_cdiv(g.M, qo_k_cdiv(g.M, 8));
    wino_job J = {.g = g, .x = x, .b = b, .res = p->res, .y = y, .act = p->act, .N = p->N, .pool = pool};
    float *U = wino_weights(&g, w, transposed);
    J.U = U;
    qo_pool_for(pool, qo_k_cdiv(p->N, g.nb), 1, wino_task, &J);
    qo_free(U);
    return true;
}

/* ---- weight gradients: F(3x3, 2x2) ----------------------------------------------------------- *
 * dW[m][c] = sum over images and 2x2 output tiles of the 3x3 correlation of the tile's 4x4 input
 * window d with its 2x2 output gradient g, which is Winograd F(3x3, 2x2) with the matrices of
 * F(2x2, 3x3) in other roles (the trilinear form sum_xi (A g A^T)(G w G^T)(B^T d B) differentiated in w):
 *   V[pos][c][t] = (B^T d B)[pos]            wino_in, as the forward
 *   Y[pos][m][t] = (A g A^T)[pos]            A = [1 0; 1 1; 1 -1; 0 -1]
 *   S[pos][m][c] = sum_t Y[pos][m][t] V[pos][c][t]   (16 GEMMs, the tiles the reduction axis)
 *   dW[m][c] = G^T S[.][m][c] G             G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 * The tiles run along the vector lanes: a 4 x 4 block of (m, c) keeps 16 accumulators and folds
 * them into one vector of 16 sums (wg_fold) per task. The batch is split into one contiguous range
 * per pool thread (each summing into its own S), the ranges added in order: results depend on the
 * pool size, not on scheduling. */

/* Output-gradient transform of one channel of one image: Y[pos * ldp + t0 + tile] for its T tiles;
 * dy [OH][OW], zero past its edges (read as a plane without padding: gd). */
T512 static void wg_dy(const wino_geom *g, const wino_geom *gd, const float *dy, float *Y, int64_t ldp, int64_t t0) {
    for (int64_t tw0 = 0; tw0 < g->TW; tw0 += 16) {
        wino_cols wc;
        wino_cols_of(gd, tw0, &wc);
        for (int64_t th = 0; th < g->TH; th += g->R) {
            __mmask16 k = wino_lanes(g, th, tw0);
            __m512 e[2][2]; /* e[i][j] lane l = dy[2 th + i][2 (tw0 + l) + j] (R = 1) */
            for (int i = 0; i < 2; i++) wino_cols2(gd, dy, &wc, th, i, 0, &e[i][0], &e[i][1]);
            __m512 t[4][2]; /* A g */
            for (int j = 0; j < 2; j++) {
                t[0][j] = e[0][j];
                t[1][j] = _mm512_add_ps(e[0][j], e[1][j]);
                t[2][j] = _mm512_sub_ps(e[0][j], e[1][j]);
                t[3][j] = _mm512_sub_ps(_mm512_setzero_ps(), e[1][j]);
            }
            float *y = Y + t0 + th * g->TW + tw0;
            for (int i = 0; i < 4; i++) { /* (A g) A^T */
                _mm512_mask_storeu_ps(y + (4 * i + 0) * ldp, k, t[i][0]);
                _mm512_mask_storeu_ps(y + (4 * i + 1) * ldp, k, _mm512_add_ps(t[i][0], t[i][1]));
                _mm512_mask_storeu_ps(y + (4 * i + 2) * ldp, k, _mm512_sub_ps(t[i][0], t[i][1]));
                _mm512_mask_storeu_ps(y + (4 * i + 3) * ldp, k, _mm512_sub_ps(_mm512_setzero_ps(), t[i][1]));
            }
        }
    }
}

/* Folds 16 accumulators into one vector whose lane i is the sum of a[i]'s lanes (pairwise, a
 * fixed order). */
T512 static INL __m512 wg_fold(__m512 *a) {
    static const int32_t ix[4][2][16] = {
        {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
        {{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27}, {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31}},
        {{0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29}, {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31}},
        {{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}, {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}}};
    for (int lv = 0, n = 16; lv < 4; lv++, n /= 2) {
        __m512i lo = _mm512_loadu_si512(ix[lv][0]), hi = _mm512_loadu_si512(ix[lv][1]);
        for (int i = 0; i < n / 2; i++)
            a[i] = _mm512_add_ps(_mm512_permutex2var_ps(a[2 * i], lo, a[2 * i + 1]),
                                 _mm512_permutex2var_ps(a[2 * i], hi, a[2 * i + 1]));
    }
    return a[0];
}

/* S block += the 4 x 4 (m, c) dot products of Y rows m0.. and V rows c0.. over nv vectors. */
T512 static void wg_blk(const float *Y, const float *V, int64_t ld, int64_t nv, float *S) {
    __m512 acc[16];
    for (int i = 0; i < 16; i++) acc[i] = _mm512_setzero_ps();
    for (int64_t v = 0; v < nv; v++) {
        __m512 y[4], x[4];
        for (int i = 0; i < 4; i++) y[i] = _mm512_loadu_ps(Y + i * ld + 16 * v), x[i] = _mm512_loadu_ps(V + i * ld + 16 * v);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) acc[4 * i + j] = _mm512_fmadd_ps(y[i], x[j], acc[4 * i + j]);
    }
    _mm512_storeu_ps(S, _mm512_add_ps(_mm512_loadu_ps(S), wg_fold(acc)));
}

T512 void qo_k_wino_dots(int npos, const float *Y, int64_t Mp, const float *V, int64_t Cp, int64_t ld, int64_t nv,
                         float *S) {
    for (int p = 0; p < npos; p++)
        for (int64_t m0 = 0; m0 < Mp; m0 += 4)
            for (int64_t c0 = 0; c0 < Cp; c0 += 4)
                wg_blk(Y + (p * Mp + m0) * ld, V + (p * Cp + c0) * ld, ld, nv,
                       S + ((p * (Mp / 4) + m0 / 4) * (Cp / 4) + c0 / 4) * 16);
}

typedef struct wg_job {
    wino_geom g;
    const float *dy, *x;
    float *S;           /* [nranges][16][Mp / 4][Cp / 4][16] */
    int64_t Mp, Cp, N, nranges, ssz;
    qo_pool *pool;
} wg_job;

static void wg_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const wg_job *J = ctx;
    const wino_geom *g = &J->g;
    int64_t C = g->C, M = g->M, Cp = J->Cp, Mp = J->Mp, Tt = g->Tt, ld = g->ld;
    size_t vf = (size_t)(16 * Cp * ld), yf = (size_t)(16 * Mp * ld);
    void *owned = NULL;
    float *V = qo_k_scratch(J->pool, tid, (vf + yf) * sizeof(float), &owned), *Y = V + vf;
    int64_t isz = g->H * g->W;
    wino_geom gd = *g; /* dy's planes: no padding */
    gd.pt = gd.pl = 0, gd.H = g->OH, gd.W = g->OW;
    /* rows past C and M stay zero */
    memset(V, 0, (vf + yf) * sizeof(float));
    for (int64_t r = begin; r < end; r++) {
        float *S = J->S + r * J->ssz;
        memset(S, 0, (size_t)J->ssz * sizeof(float));
        int64_t n0 = r * J->N / J->nranges, n1 = (r + 1) * J->N / J->nranges;
        for (int64_t b0 = n0; b0 < n1; b0 += g->nb) {
            int64_t nb = qo_k_min64(g->nb, n1 - b0), used = nb * g->T;
            for (int64_t c = 0; c < C; c++) {
                for (int64_t i = 0; i < nb; i++) wino_in(g, J->x + ((b0 + i) * C + c) * isz, V + c * ld, Cp * ld, i * g->T);
                if (used < Tt)
                    for (int p = 0; p < 16; p++) memset(V + (p * Cp + c) * ld + used, 0, (size_t)(Tt - used) * sizeof(float));
            }
            int64_t osz = g->OH * g->OW;
            for (int64_t m = 0; m < M; m++) {
                for (int64_t i = 0; i < nb; i++) wg_dy(g, &gd, J->dy + ((b0 + i) * M + m) * osz, Y + m * ld, Mp * ld, i * g->T);
                if (used < Tt)
                    for (int p = 0; p < 16; p++) memset(Y + (p * Mp + m) * ld + used, 0, (size_t)(Tt - used) * sizeof(float));
            }
            qo_k_wino_dots(16, Y, Mp, V, Cp, ld, qo_k_cdiv(used, 16), S);
        }
    }
    qo_k_scratch_release(owned);
}

bool qo_k_convgradweight_wino_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                  qo_pool *pool) {
    if (!p->fast || qo_k_sgemm_isa(-1) != 2 || p->nsp != 2 || p->group != 1 || p->N < 1) return false;
    for (int i = 0; i < 2; i++)
        if (p->ker[i] != 3 || p->str[i] != 1 || p->dil[i] != 1) return false;
    if (p->C > 1024 || p->M > 1024) return false;
    wino_geom g = {.C = p->C, .M = p->M, .H = p->in[0], .W = p->in[1], .OH = p->out[0], .OW = p->out[1]};
    g.pt = p->pad[0], g.pl = p->pad[1];
    if (g.OH < 1 || g.OW < 1) return false;
    g.TH = qo_k_cdiv(g.OH, 2), g.TW = qo_k_cdiv(g.OW, 2), g.T = g.TH * g.TW;
    /* the forward's threshold: the transforms cost (C + M) per tile, the GEMMs C M */
    if (g.C * g.M * qo_k_min64(g.TW, 16) < 64 * (g.C + g.M)) return false;
    g.R = g.TW == 8 ? 2 : g.TW == 4 ? 4 : 1;
    int64_t nr = qo_k_min64(qo_pool_size(pool), p->N);
    /* V and Y of a task near L2, but at least 256 tiles (16 vectors) so that wg_fold is amortized */
    g.nb = qo_k_max64(1, qo_k_max64(10240 / (g.C + g.M) / g.T, qo_k_cdiv(256, g.T)));
    g.nb = qo_k_min64(g.nb, qo_k_cdiv(p->N, nr));
    g.Tt = qo_k_cdiv(g.nb * g.T, 16) * 16, g.ld = g.Tt + 16;
    wg_job J = {.g = g, .dy = dy, .x = x, .Mp = qo_k_cdiv(g.M, 4) * 4, .Cp = qo_k_cdiv(g.C, 4) * 4, .N = p->N,
                .nranges = nr, .pool = pool};
    J.ssz = 16 * J.Mp * J.Cp;
    J.S = qo_malloc((size_t)(nr * J.ssz) * sizeof(float));
    qo_pool_for(pool, nr, 1, wg_task, &J);
    for (int64_t r = 1; r < nr; r++)
        for (int64_t i = 0; i < J.ssz; i++) J.S[i] += J.S[r * J.ssz + i];
    /* dW = G^T S G per (m, c) */
    int64_t Mb = J.Mp / 4, Cb = J.Cp / 4;
    for (int64_t m = 0; m < g.M; m++)
        for (int64_t c = 0; c < g.C; c++) {
            float s[4][4], t[3][4];
            for (int q = 0; q < 16; q++)
                s[q / 4][q % 4] = J.S[((q * Mb + m / 4) * Cb + c / 4) * 16 + (m % 4) * 4 + c % 4];
            for (int j = 0; j < 4; j++) { /* G^T s */
                t[0][j] = s[0][j] + 0.5f * (s[1][j] + s[2][j]);
                t[1][j] = 0.5f * (s[1][j] - s[2][j]);
                t[2][j] = 0.5f * (s[1][j] + s[2][j]) + s[3][j];
            }
            float *w = dw + (m * g.C + c) * 9;
            for (int i = 0; i < 3; i++) { /* (G^T s) G */
                w[i * 3 + 0] = t[i][0] + 0.5f * (t[i][1] + t[i][2]);
                w[i * 3 + 1] = 0.5f * (t[i][1] - t[i][2]);
                w[i * 3 + 2] = 0.5f * (t[i][1] + t[i][2]) + t[i][3];
            }
        }
    qo_free(J.S);
    return true;
}

#else /* no AVX-512 code: never applies */
bool qo_k_convgradweight_wino_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw,
                                  qo_pool *pool) {
    (void)p, (void)dy, (void)x, (void)dw, (void)pool;
    return false;
}

bool qo_k_conv_wino_f32(const qo_k_conv_params *p, bool transposed, const float *x, const float *w, const float *b,
                        float *y, qo_pool *pool) {
    (void)p, (void)transposed, (void)x, (void)w, (void)b, (void)y, (void)pool;
    return false;
}
#endif
