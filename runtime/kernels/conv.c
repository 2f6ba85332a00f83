/* runtime/kernels/conv.c — Conv (im2col + sgemm, 1x1 as plain sgemm, direct depthwise) and
 * ConvTranspose (sgemm + col2im), with a fused bias + activation epilogue.
 *
 * Work is cut into tasks (image, group, column block) so that both threads have work at batch 1;
 * each task builds the im2col block of its columns in per-thread scratch and multiplies it with
 * the group's weights straight into the output (ldc = output plane size). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/internal.h"
#include "runtime/kernels/train_kernels.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* ---- shared helpers ------------------------------------------------------------------------- */
void qo_k_geom3_fill(qo_k_geom3 *g, int nsp, const int64_t *in, const int64_t *out, const int64_t *ker,
                     const int64_t *str, const int64_t *dil, const int64_t *pad, const int64_t *pad_end) {
    int off = 3 - nsp;
    for (int i = 0; i < 3; i++) {
        int s = i - off;
        bool real = s >= 0;
        g->in[i] = real ? in[s] : 1;
        g->out[i] = real ? out[s] : 1;
        g->ker[i] = real ? ker[s] : 1;
        g->str[i] = real ? str[s] : 1;
        g->dil[i] = real ? dil[s] : 1;
        g->pad[i] = real ? pad[s] : 0;
        g->pad_end[i] = real && pad_end ? pad_end[s] : 0;
    }
    g->isz = g->in[0] * g->in[1] * g->in[2];
    g->osz = g->out[0] * g->out[1] * g->out[2];
    g->ksz = g->ker[0] * g->ker[1] * g->ker[2];
}

static inline float act1(float v, qo_k_act a) {
    if (a.kind == QO_K_ACT_RELU) return v < 0.0f ? 0.0f : v; /* NaN, -0 pass, as the reference Relu */
    if (a.kind == QO_K_ACT_CLIP) {
        v = v < a.lo ? a.lo : v;
        return v > a.hi ? a.hi : v;
    }
    return v;
}

/* y = act(y + b [+ r]) over one row; the sums are the unfused ops' (a float add each, in this order). */
static inline void epi_row(float *yr, int64_t cols, float bv, const float *bc, const float *rr, qo_k_act act) {
    float lo = act.lo, hi = act.hi;
#define QO_EPI_LOOP(BIAS, RES, ACT)                                                                \
    for (int64_t c = 0; c < cols; c++) {                                                           \
        float v = yr[c] + (BIAS);                                                                  \
        RES;                                                                                       \
        ACT;                                                                                       \
        yr[c] = v;                                                                                 \
    }
#define QO_EPI_ACTS(BIAS, RES)                                                                     \
    if (act.kind == QO_K_ACT_RELU) {                                                               \
        QO_EPI_LOOP(BIAS, RES, v = v < 0.0f ? 0.0f : v)                                            \
    } else if (act.kind == QO_K_ACT_CLIP) {                                                        \
        QO_EPI_LOOP(BIAS, RES, v = v < lo ? lo : v; v = v > hi ? hi : v)                           \
    } else {                                                                                       \
        QO_EPI_LOOP(BIAS, RES, (void)0)                                                            \
    }
    if (bc) {
        if (rr) { QO_EPI_ACTS(bc[c], v += rr[c]) }
        else { QO_EPI_ACTS(bc[c], (void)0) }
    } else {
        if (rr) { QO_EPI_ACTS(bv, v += rr[c]) }
        else { QO_EPI_ACTS(bv, (void)0) }
    }
#undef QO_EPI_ACTS
#undef QO_EPI_LOOP
}

/* Without a bias the unfused graph adds nothing: y + 0.0f would turn -0 into +0, so the row bias
 * is only added when there is one (a column bias array is always real). */
QO_K_SIMD void qo_k_epilogue(float *y, int64_t rows, int64_t cols, int64_t ld, const float *bias, const float *res,
                   qo_k_act act) {
    if (!bias && !res && act.kind == QO_K_ACT_NONE) return;
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * ld;
        const float *rr = res ? res + r * ld : NULL;
        if (bias) {
            epi_row(yr, cols, bias[r], NULL, rr, act);
        } else { /* no bias term: start from y itself */
            for (int64_t c = 0; c < cols; c++) {
                float v = yr[c];
                if (rr) v += rr[c];
                yr[c] = act1(v, act);
            }
        }
    }
}

QO_K_SIMD void qo_k_epilogue_cols(float *y, int64_t rows, int64_t cols, int64_t ld, const float *bias, const float *res,
                        qo_k_act act) {
    if (!bias && !res && act.kind == QO_K_ACT_NONE) return;
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * ld;
        const float *rr = res ? res + r * ld : NULL;
        if (bias) {
            epi_row(yr, cols, 0.0f, bias, rr, act);
        } else {
            for (int64_t c = 0; c < cols; c++) {
                float v = yr[c];
                if (rr) v += rr[c];
                yr[c] = act1(v, act);
            }
        }
    }
}

void *qo_k_scratch(qo_pool *pool, int tid, size_t bytes, void **owned) {
    *owned = NULL;
    if (pool) return qo_pool_scratch(pool, tid, bytes);
    *owned = qo_malloc(bytes ? bytes : 1);
    return *owned;
}

void qo_k_scratch_release(void *owned) { qo_free(owned); }

/* ---- im2col --------------------------------------------------------------------------------- */
/* Copies columns [j0, j1) of the im2col matrix of one image/group (Cg channels at xg) into col
 * (row-major, K = Cg * ksz rows of j1 - j0). */
/* im2col's 2-D stride-1 "same" case (output plane = input plane, dilation 1): row (c, kh, kw) is the
 * plane shifted by d = (kh - pad_h) * W + (kw - pad_w), so columns [j0, j1) are one copy of
 * x[j0 + d, j1 + d) clipped to the plane, zeros outside it, then the columns whose tap leaves the
 * input row (ow + kw - pad_w outside [0, W), at most |kw - pad_w| per output row) zeroed. */
static void im2col_same(const qo_k_geom3 *g, int64_t Cg, const float *xg, int64_t j0, int64_t j1, float *col,
                        int64_t ldc) {
    int64_t W = g->in[2], isz = g->isz, n = j1 - j0;
    float *dst = col;
    for (int64_t c = 0; c < Cg; c++) {
        const float *xc = xg + c * isz;
        for (int64_t kh = 0; kh < g->ker[1]; kh++)
            for (int64_t kw = 0; kw < g->ker[2]; kw++, dst += ldc) {
                int64_t dw = kw - g->pad[2], d = (kh - g->pad[1]) * W + dw;
                int64_t a = qo_k_min64(n, qo_k_max64(0, -(j0 + d))), b = qo_k_max64(a, qo_k_min64(n, isz - (j0 + d)));
                if (a > 0) memset(dst, 0, (size_t)a * sizeof *dst);
                if (b > a) memcpy(dst + a, xc + j0 + d + a, (size_t)(b - a) * sizeof *dst);
                if (n > b) memset(dst + b, 0, (size_t)(n - b) * sizeof *dst);
                if (dw == 0) continue;
                /* columns ow in [0, -dw) (dw < 0) or [W - dw, W) (dw > 0) of every output row */
                int64_t lo = dw < 0 ? 0 : W - dw, hi = dw < 0 ? -dw : W;
                if (lo < 0) lo = 0;
                if (hi > W) hi = W;
                for (int64_t r0 = j0 - j0 % W; r0 < j1; r0 += W)
                    for (int64_t ow = lo; ow < hi; ow++) {
                        int64_t j = r0 + ow;
                        if (j >= j0 && j < j1) dst[j - j0] = 0.0f;
                    }
            }
    }
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define CONV_X86 1
#include <immintrin.h>
#define CONV_T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))

/* dst[q] = src[2 q] for q in [0, n), reading src only at [0, 2 n - 1) (masked loads): the
 * even-lane compaction of two vectors per 16 outputs. */
CONV_T512 static void gather_s2_512(float *dst, const float *src, int64_t n) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int64_t q = 0; q < n; q += 16) {
        int64_t m = n - q < 16 ? n - q : 16, need = 2 * m - 1; /* source elements read */
        __m512 v0 = _mm512_maskz_loadu_ps(qo_k_bits16(0, need), src + 2 * q);
        __m512 v1 = _mm512_maskz_loadu_ps(qo_k_bits16(0, need - 16), src + 2 * q + 16);
        _mm512_mask_storeu_ps(dst + q, qo_k_bits16(0, m), _mm512_permutex2var_ps(v0, even, v1));
    }
}

/* y[2 i] = x[i] + 0 and y[2 i + 1] = 0: the stride-2 interleave with zeros, the first w floats of
 * it written (w <= 2 n; x is read at [0, n)). */
CONV_T512 static void spread_s2_512(float *y, const float *x, int64_t n, int64_t w) {
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    for (int64_t i = 0; i < n; i += 16) {
        /* + 0: a -0 becomes +0, as col2im's 0 + x gives */
        __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(qo_k_bits16(0, n - i), x + i), _mm512_setzero_ps());
        _mm512_mask_storeu_ps(y + 2 * i, qo_k_bits16(0, w - 2 * i), _mm512_maskz_permutexvar_ps(0x5555, lo, v));
        _mm512_mask_storeu_ps(y + 2 * i + 16, qo_k_bits16(0, w - 2 * i - 16), _mm512_maskz_permutexvar_ps(0x5555, hi, v));
    }
}
#endif

QO_K_SIMD static void im2col(const qo_k_geom3 *g, int64_t Cg, const float *xg, int64_t j0, int64_t j1, float *col,
                             int64_t ldc) {
#ifdef CONV_X86
    const bool s2_512 = g->str[2] == 2 && qo_k_sgemm_isa(-1) == 2;
#else
    const bool s2_512 = false;
#endif
    if (g->in[0] == 1 && g->out[0] == 1 && g->ker[0] == 1 && g->str[1] == 1 && g->str[2] == 1 && g->dil[1] == 1 &&
        g->dil[2] == 1 && g->out[1] == g->in[1] && g->out[2] == g->in[2] && g->pad[1] >= 0 && g->pad[2] >= 0) {
        im2col_same(g, Cg, xg, j0, j1, col, ldc);
        return;
    }
    int64_t OW = g->out[2], OH = g->out[1];
    int64_t IW = g->in[2], IH = g->in[1], ID = g->in[0];
    int64_t sw = g->str[2];
    int64_t r = 0;
    for (int64_t c = 0; c < Cg; c++) {
        const float *xc = xg + c * g->isz;
        for (int64_t kd = 0; kd < g->ker[0]; kd++)
            for (int64_t kh = 0; kh < g->ker[1]; kh++)
                for (int64_t kw = 0; kw < g->ker[2]; kw++, r++) {
                    float *dst = col + r * ldc;
                    int64_t j = j0;
                    int64_t ow = j % OW, t = j / OW, oh = t % OH, od = t / OH;
                    int64_t woff = kw * g->dil[2] - g->pad[2];
                    /* output columns whose tap kw lands inside the row: [wlo, whi) */
                    int64_t wlo = woff < 0 ? qo_k_cdiv(-woff, sw) : 0;
                    int64_t whi = IW - 1 - woff < 0 ? 0 : (IW - 1 - woff) / sw + 1;
                    if (whi > OW) whi = OW;
                    while (j < j1) {
                        int64_t run = qo_k_min64(OW - ow, j1 - j);
                        int64_t id = od * g->str[0] - g->pad[0] + kd * g->dil[0];
                        int64_t ih = oh * g->str[1] - g->pad[1] + kh * g->dil[1];
                        if (id < 0 || id >= ID || ih < 0 || ih >= IH || wlo >= whi) {
                            memset(dst, 0, (size_t)run * sizeof *dst);
                        } else {
                            const float *row = xc + (id * IH + ih) * IW + woff;
                            /* valid part [a, b) within [ow, ow + run) (a run entirely left or right
                             * of the valid columns is all zeros: a == b) */
                            int64_t a = qo_k_min64(qo_k_max64(ow, wlo), ow + run);
                            int64_t b = qo_k_max64(a, qo_k_min64(ow + run, whi));
                            int64_t t0 = a - ow, t1 = b - ow;
                            for (int64_t q = 0; q < t0; q++) dst[q] = 0.0f;
                            if (sw == 1) {
                                memcpy(dst + t0, row + a, (size_t)(t1 - t0) * sizeof *dst);
                            } else if (s2_512) {
#ifdef CONV_X86
                                gather_s2_512(dst + t0, row + (ow + t0) * 2, t1 - t0);
#endif
                            } else {
                                for (int64_t q = t0; q < t1; q++) dst[q] = row[(ow + q) * sw];
                            }
                            for (int64_t q = t1; q < run; q++) dst[q] = 0.0f;
                        }
                        dst += run, j += run, ow = 0;
                        if (++oh == OH) oh = 0, od++;
                    }
                }
    }
}

/* ---- Conv ----------------------------------------------------------------------------------- */
typedef struct conv_job {
    const qo_k_conv_params *p;
    qo_k_geom3 g;
    const float *x, *w, *b;
    float *y;
    qo_pool *pool;
    int64_t Cg, Mg, K, cb, nblk;
    int64_t nimg;  /* > 1: a task multiplies nimg whole images side by side (small planes) */
    int64_t mb;    /* > 0: tasks are blocks of mb output channels of one image, group 1, on the shared
                      im2col matrix col (or x for 1x1) */
    const float *col;
    bool direct_b; /* 1x1, stride 1, no padding: x is the GEMM operand */
} conv_job;

/* Small planes: images n0.. n0+ni of group grp in one sgemm, so the weights are packed once for
 * them all: the im2col blocks (or, for 1x1, the input planes) side by side in col [K, ni * osz],
 * the product in scratch, then each image's rows copied out and the epilogue applied there. */
static void conv_multi(conv_job *cj, int64_t n0, int64_t ni, int64_t grp, float *col) {
    const qo_k_conv_params *p = cj->p;
    int64_t osz = cj->g.osz, isz = cj->g.isz, K = cj->K, Mg = cj->Mg, Cg = cj->Cg, W = ni * osz;
    float *outb = col + K * W;
    for (int64_t i = 0; i < ni; i++) {
        const float *xg = cj->x + ((n0 + i) * p->C + grp * Cg) * isz;
        if (cj->direct_b)
            for (int64_t c = 0; c < Cg; c++) memcpy(col + c * W + i * osz, xg + c * isz, (size_t)osz * sizeof(float));
        else
            im2col(&cj->g, Cg, xg, 0, osz, col + i * osz, W);
    }
    qo_k_sgemm_epi(Mg, W, K, cj->w + grp * Mg * K, K, col, W, outb, W, NULL, NULL, 0, (qo_k_act){QO_K_ACT_NONE, 0, 0});
    for (int64_t i = 0; i < ni; i++) {
        float *yd = cj->y + ((n0 + i) * p->M + grp * Mg) * osz;
        for (int64_t m = 0; m < Mg; m++) memcpy(yd + m * osz, outb + m * W + i * osz, (size_t)osz * sizeof(float));
        qo_k_epilogue(yd, Mg, osz, osz, cj->b ? cj->b + grp * Mg : NULL, p->res ? p->res + (yd - cj->y) : NULL, p->act);
    }
}

/* Output-channel blocks [t * mb, ...) of image n = 0 on one shared B matrix (few images, many
 * channels, small planes: each thread packs only its share of the weights). */
static void conv_mrows_task(void *ctx, int64_t begin, int64_t end, int tid) {
    conv_job *cj = ctx;
    const qo_k_conv_params *p = cj->p;
    int64_t osz = cj->g.osz, K = cj->K;
    (void)tid;
    for (int64_t t = begin; t < end; t++) {
        int64_t n = t / qo_k_cdiv(p->M, cj->mb), m0 = t % qo_k_cdiv(p->M, cj->mb) * cj->mb;
        int64_t rows = qo_k_min64(p->M, m0 + cj->mb) - m0;
        const float *B = cj->direct_b ? cj->x + n * p->C * cj->g.isz : cj->col + n * K * osz;
        float *yb = cj->y + (n * p->M + m0) * osz;
        qo_k_sgemm_epi(rows, osz, K, cj->w + m0 * K, K, B, osz, yb, osz, cj->b ? cj->b + m0 : NULL,
                       p->res ? p->res + (yb - cj->y) : NULL, osz, p->act);
    }
}

static void conv_task(void *ctx, int64_t begin, int64_t end, int tid) {
    conv_job *cj = ctx;
    const qo_k_conv_params *p = cj->p;
    int64_t osz = cj->g.osz, K = cj->K, Mg = cj->Mg, Cg = cj->Cg;
    void *owned = NULL;
    float *col = NULL;
    if (cj->nimg > 1) {
        int64_t W = cj->nimg * osz;
        col = qo_k_scratch(cj->pool, tid, (size_t)((K + Mg) * W) * sizeof(float), &owned);
        for (int64_t t = begin; t < end; t++) {
            int64_t grp = t % p->group, n0 = t / p->group * cj->nimg;
            conv_multi(cj, n0, qo_k_min64(p->N, n0 + cj->nimg) - n0, grp, col);
        }
        qo_k_scratch_release(owned);
        return;
    }
    if (!cj->direct_b) col = qo_k_scratch(cj->pool, tid, (size_t)(K * cj->cb) * sizeof(float), &owned);
    for (int64_t t = begin; t < end; t++) {
        int64_t blk = t % cj->nblk, ng = t / cj->nblk, grp = ng % p->group, n = ng / p->group;
        int64_t j0 = blk * cj->cb, j1 = qo_k_min64(osz, j0 + cj->cb), cbw = j1 - j0;
        const float *xg = cj->x + (n * p->C + grp * Cg) * cj->g.isz;
        const float *B;
        int64_t ldb;
        if (cj->direct_b) {
            B = xg + j0, ldb = cj->g.isz;
        } else {
            im2col(&cj->g, Cg, xg, j0, j1, col, cbw);
            B = col, ldb = cbw;
        }
        float *yb = cj->y + (n * p->M + grp * Mg) * osz + j0;
        qo_k_sgemm_epi(Mg, cbw, K, cj->w + grp * Mg * K, K, B, ldb, yb, osz, cj->b ? cj->b + grp * Mg : NULL,
                       p->res ? p->res + (yb - cj->y) : NULL, osz, p->act);
    }
    qo_k_scratch_release(owned);
}

/* Depthwise (group == C == M): one output plane per task. Every output is summed in the
 * reference's tap order (kd, kh, kw; taps outside the input skipped), starting from 0, then the
 * epilogue; the sums run along whole output rows (one vector loop per tap, the row stays in L1). */
typedef struct dw_job {
    const qo_k_conv_params *p;
    qo_k_geom3 g;
    const float *x, *w, *b;
    float *y;
    qo_pool *pool;
} dw_job;

QO_K_SIMD static void dw_task(void *ctx, int64_t begin, int64_t end, int tid) {
    dw_job *dj = ctx;
    const qo_k_geom3 *g = &dj->g;
    const qo_k_conv_params *p = dj->p;
    (void)tid;
    int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    int64_t IH = g->in[1], IW = g->in[2];
    int64_t sw = g->str[2], dw = g->dil[2];
    for (int64_t t = begin; t < end; t++) {
        int64_t c = t % p->C;
        const float *xp = dj->x + t * g->isz, *wc = dj->w + c * g->ksz;
        float *yp = dj->y + t * g->osz;
        for (int64_t od = 0; od < OD; od++) {
            int64_t ds = od * g->str[0] - g->pad[0], dlo, dhi;
            qo_k_taps(ds, g->dil[0], g->ker[0], g->in[0], &dlo, &dhi);
            for (int64_t oh = 0; oh < OH; oh++) {
                int64_t hs = oh * g->str[1] - g->pad[1], hlo, hhi;
                qo_k_taps(hs, g->dil[1], g->ker[1], IH, &hlo, &hhi);
                float *restrict yr = yp + (od * OH + oh) * OW;
                for (int64_t ow = 0; ow < OW; ow++) yr[ow] = 0.0f;
                for (int64_t kd = dlo; kd < dhi; kd++)
                    for (int64_t kh = hlo; kh < hhi; kh++) {
                        const float *xr = xp + ((ds + kd * g->dil[0]) * IH + hs + kh * g->dil[1]) * IW;
                        const float *wr = wc + (kd * g->ker[1] + kh) * g->ker[2];
                        for (int64_t kw = 0; kw < g->ker[2]; kw++) {
                            float wv = wr[kw];
                            int64_t woff = kw * dw - g->pad[2];
                            int64_t a = woff < 0 ? qo_k_cdiv(-woff, sw) : 0;
                            int64_t e = IW - 1 - woff < 0 ? 0 : (IW - 1 - woff) / sw + 1;
                            if (e > OW) e = OW;
                            const float *restrict xs = xr + woff;
                            if (sw == 1) {
                                for (int64_t ow = a; ow < e; ow++) yr[ow] += xs[ow] * wv;
                            } else if (sw == 2) {
                                for (int64_t ow = a; ow < e; ow++) yr[ow] += xs[2 * ow] * wv;
                            } else {
                                for (int64_t ow = a; ow < e; ow++) yr[ow] += xs[ow * sw] * wv;
                            }
                        }
                    }
            }
        }
        if (dj->b || p->res || p->act.kind != QO_K_ACT_NONE)
            qo_k_epilogue(yp, 1, g->osz, g->osz, dj->b ? dj->b + c : NULL, p->res ? p->res + t * g->osz : NULL, p->act);
    }
}

/* Depthwise 2-D, the fast form: the input plane is copied into a zero-padded buffer (WP columns,
 * HP rows, slack after the last row), so every tap is valid for every output. A padded tap adds
 * x * w = +-0 to a sum that starts at +0, which leaves it bit for bit unchanged (a sum of floats is
 * -0 only if both terms are), so the result is the reference's, whose sums skip those taps; unless
 * w is Inf or NaN (0 * w = NaN): such channels take dw_task. Each 16-wide run of an output row is
 * summed in registers over the taps (a multiply and an add each, in tap order), then gets the
 * epilogue (bias, residual, activation: one float operation each, as qo_k_epilogue) and is stored
 * once; lanes past the row end read the slack and are dropped. */
typedef float dw_v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t dw_i16 __attribute__((vector_size(64), aligned(4)));
/* The even lanes of the 32 floats a:b (stride-2 taps): GCC's and clang's spelling of a shuffle. */
#if defined(__clang__)
#define DW_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#else
#define DW_EVEN(a, b) __builtin_shuffle(a, b, (dw_i16){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#endif

QO_K_SIMD static void dw2d_task(void *ctx, int64_t begin, int64_t end, int tid) {
    dw_job *dj = ctx;
    const qo_k_geom3 *g = &dj->g;
    const qo_k_conv_params *p = dj->p;
    int64_t OH = g->out[1], OW = g->out[2], IH = g->in[1], IW = g->in[2], KH = g->ker[1], KW = g->ker[2];
    int64_t sh = g->str[1], sw = g->str[2], dh = g->dil[1], dw = g->dil[2], ph = g->pad[1], pw = g->pad[2];
    int64_t OWV = qo_k_cdiv(OW, 16) * 16;
    int64_t WP = qo_k_max64(IW + pw, (OW - 1) * sw + (KW - 1) * dw + 1);
    int64_t HP = qo_k_max64(IH + ph, (OH - 1) * sh + (KH - 1) * dh + 1);
    int64_t slack = (OWV - OW) * sw + 16 * sw + 16; /* the last row's vector overrun */
    size_t plane = (size_t)(HP * WP + slack);
    void *owned = NULL;
    float *xpad = qo_k_scratch(dj->pool, tid, plane * sizeof(float), &owned);
    bool has_res = p->res != NULL, has_b = dj->b != NULL;
    int ak = p->act.kind;
    const dw_v16 zero = {0}, lo = zero + p->act.lo, hi = zero + p->act.hi;
    for (int64_t t = begin; t < end; t++) {
        int64_t c = t % p->C;
        const float *xp = dj->x + t * g->isz, *wc = dj->w + c * g->ksz;
        bool finite = true;
        for (int64_t k = 0; k < g->ksz; k++) finite = finite && isfinite(wc[k]);
        if (!finite || KH * KW > 64) {
            dw_task(ctx, t, t + 1, tid);
            continue;
        }
        float wt[64];
        for (int64_t k = 0; k < KH * KW; k++) wt[k] = wc[k];
        float *yp = dj->y + t * g->osz;
        const float *rp = has_res ? p->res + t * g->osz : NULL;
        float bv = has_b ? dj->b[c] : 0.0f;
        /* the padded plane: pad rows, pad columns and slack zeroed, the rest copied */
        for (int64_t q = 0; q < ph * WP; q++) xpad[q] = 0.0f;
        for (int64_t ih = 0; ih < IH; ih++) { /* inline loops: the rows are short, a call each costs */
            float *restrict row = xpad + (ih + ph) * WP;
            const float *restrict src = xp + ih * IW;
            for (int64_t q = 0; q < pw; q++) row[q] = 0.0f;
            for (int64_t q = 0; q < IW; q++) row[pw + q] = src[q];
            for (int64_t q = pw + IW; q < WP; q++) row[q] = 0.0f;
        }
        for (int64_t q = (IH + ph) * WP; q < (int64_t)plane; q++) xpad[q] = 0.0f;
        /* 16-wide output runs, four at a time (independent sums: the adds' latency overlaps) */
        int64_t nvec = OWV / 16, njobs = OH * nvec;
        int64_t noh = 0, now = 0; /* the next run's row and column */
        for (int64_t j0 = 0; j0 < njobs; j0 += 4) {
            int nj = (int)qo_k_min64(4, njobs - j0);
            const float *xb[4];
            int64_t yo[4], nn[4];
            for (int u = 0; u < 4; u++) {
                if (u == 0 || u < nj) { /* nj >= 1 */
                    xb[u] = xpad + noh * sh * WP + now * sw, yo[u] = noh * OW + now, nn[u] = qo_k_min64(16, OW - now);
                    if ((now += 16) >= OW) now = 0, noh++;
                } else {
                    xb[u] = xb[u - 1], yo[u] = yo[u - 1], nn[u] = nn[u - 1];
                }
            }
            dw_v16 acc[4] = {zero, zero, zero, zero};
#define QO_DW_TAPS(LOAD)                                                                           \
    for (int64_t kh = 0; kh < KH; kh++)                                                            \
        for (int64_t kw = 0; kw < KW; kw++) {                                                      \
            int64_t off = kh * dh * WP + kw * dw;                                                  \
            float wv = wt[kh * KW + kw];                                                           \
            for (int u = 0; u < 4; u++) {                                                          \
                const float *xs = xb[u] + off;                                                     \
                dw_v16 xv;                                                                         \
                LOAD;                                                                              \
                acc[u] = acc[u] + xv * wv;                                                         \
            }                                                                                      \
        }
            if (sw == 1) {
                QO_DW_TAPS(xv = *(const dw_v16 *)xs)
            } else if (sw == 2) {
                QO_DW_TAPS(xv = DW_EVEN(*(const dw_v16 *)xs, *(const dw_v16 *)(xs + 16)))
            } else {
                QO_DW_TAPS(for (int q = 0; q < 16; q++) xv[q] = xs[q * sw])
            }
#undef QO_DW_TAPS
            for (int u = 0; u < nj; u++) {
                dw_v16 a = acc[u];
                /* a run short of 16 outputs but not in the plane's last row is loaded and stored
                 * whole: the extra lanes fall on the next rows of this plane, which later runs
                 * (in order) overwrite; in the last row only the n outputs are touched */
                int64_t n = yo[u] + 16 <= g->osz ? 16 : nn[u];
                if (has_b) a = a + bv;
                if (has_res) {
                    dw_v16 rv = zero;
                    if (n == 16) rv = *(const dw_v16 *)(rp + yo[u]);
                    else for (int64_t q = 0; q < n; q++) rv[q] = rp[yo[u] + q];
                    a = a + rv;
                }
                if (ak == QO_K_ACT_RELU) { /* v < 0 ? 0 : v (NaN and -0 pass) */
                    a = (dw_v16)((dw_i16)a & ~(dw_i16)(a < zero));
                } else if (ak == QO_K_ACT_CLIP) { /* v < lo ? lo : v, then v > hi ? hi : v */
                    dw_i16 m = a < lo;
                    a = (dw_v16)(((dw_i16)a & ~m) | ((dw_i16)lo & m));
                    m = a > hi;
                    a = (dw_v16)(((dw_i16)a & ~m) | ((dw_i16)hi & m));
                }
                if (n == 16) *(dw_v16 *)(yp + yo[u]) = a;
                else for (int64_t q = 0; q < n; q++) yp[yo[u] + q] = a[q];
            }
        }
    }
    qo_k_scratch_release(owned);
}

#ifdef CONV_X86
/* 2-D 1x1 kernels with stride 2 and no padding (ResNet's downsample convolutions), one group, on
 * AVX-512: a task gathers the even rows and columns of its output rows into a dense [C, len] block
 * (gather_s2_512) and multiplies it straight into y with the epilogue in registers. The sums are
 * im2col + sgemm's (the same qo_k_sgemm_epi over the same K), only without the im2col bookkeeping
 * and the copy-out of the multi-image path. */
typedef struct s2_job {
    const qo_k_conv_params *p;
    const float *x, *w, *b;
    float *y;
    qo_pool *pool;
    int64_t rows; /* output rows per task */
} s2_job;

static void conv1x1_s2_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const s2_job *J = ctx;
    const qo_k_conv_params *p = J->p;
    int64_t IH = p->in[0], IW = p->in[1], OH = p->out[0], OW = p->out[1], osz = OH * OW, C = p->C;
    int64_t nb = qo_k_cdiv(OH, J->rows);
    void *owned = NULL;
    float *col = qo_k_scratch(J->pool, tid, (size_t)(C * J->rows * OW) * sizeof(float), &owned);
    for (int64_t t = begin; t < end; t++) {
        int64_t n = t / nb, r0 = t % nb * J->rows, r1 = qo_k_min64(OH, r0 + J->rows), len = (r1 - r0) * OW;
        const float *xn = J->x + n * C * IH * IW;
        for (int64_t c = 0; c < C; c++)
            for (int64_t oh = r0; oh < r1; oh++)
                gather_s2_512(col + c * len + (oh - r0) * OW, xn + (c * IH + 2 * oh) * IW, OW);
        float *yb = J->y + n * p->M * osz + r0 * OW;
        qo_k_sgemm_epi(p->M, len, C, J->w, C, col, len, yb, osz, J->b, p->res ? p->res + (yb - J->y) : NULL, osz,
                       p->act);
    }
    qo_k_scratch_release(owned);
}

/* The 1x1 stride-2 path when it applies (else false, y untouched). */
static bool conv1x1_s2(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                       qo_pool *pool) {
    if (p->nsp != 2 || p->group != 1 || p->ker[0] != 1 || p->ker[1] != 1 || p->str[0] != 2 || p->str[1] != 2 ||
        p->pad[0] != 0 || p->pad[1] != 0 || qo_k_sgemm_isa(-1) != 2)
        return false;
    int64_t OH = p->out[0], OW = p->out[1];
    /* no padding: output row oh reads input row 2 oh and columns 2 ow (the end pads may drop the rest) */
    if (OH < 1 || OW < 1 || 2 * (OH - 1) >= p->in[0] || 2 * (OW - 1) >= p->in[1] || p->C < 1) return false;
    s2_job J = {.p = p, .x = x, .w = w, .b = b, .y = y, .pool = pool};
    /* a block of at most ~128 KB of gathered input, at least one row */
    J.rows = qo_k_max64(1, qo_k_min64(OH, (int64_t)(32u << 10) / (p->C * OW)));
    qo_pool_for(pool, p->N * qo_k_cdiv(OH, J.rows), 1, conv1x1_s2_task, &J);
    return true;
}
#endif

void qo_k_conv_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                   qo_pool *pool) {
    qo_k_geom3 g;
    qo_k_geom3_fill(&g, p->nsp, p->in, p->out, p->ker, p->str, p->dil, p->pad, NULL);
    if (p->N == 0 || p->M == 0 || g.osz == 0) return;
    if (p->y2) { /* a 1x1 sibling: one pass over x in the strided flat kernel, else one after the other */
        if (p->fast && (qo_k_conv_strided_f32(p, x, w, b, y, pool) || qo_k_conv_flat_f32(p, x, w, b, y, pool))) return;
        qo_k_conv_params q = *p, m = *p;
        q.M = p->M2, q.group = 1, q.act = p->act2, q.res = NULL, q.y2 = NULL;
        for (int i = 0; i < p->nsp; i++) q.ker[i] = 1, q.dil[i] = 1, q.pad[i] = 0;
        m.y2 = NULL;
        qo_k_conv_f32(&q, x, p->w2, p->b2, p->y2, pool);
        qo_k_conv_f32(&m, x, w, b, y, pool);
        return;
    }
    if (qo_k_conv_wino4_f32(p, false, x, w, b, y, pool) || qo_k_conv_wino_f32(p, false, x, w, b, y, pool) ||
        qo_k_conv_strided_f32(p, x, w, b, y, pool) || qo_k_conv_flat_f32(p, x, w, b, y, pool))
        return;
#ifdef CONV_X86
    if (conv1x1_s2(p, x, w, b, y, pool)) return;
#endif
    int64_t Cg = p->C / p->group, Mg = p->M / p->group;
    int nth = qo_pool_size(pool);
    if (p->group == p->C && p->group == p->M) {
        dw_job dj = {p, g, x, w, b, y, pool};
        int64_t work = g.osz * g.ksz;
        bool is2d = g.in[0] == 1 && g.out[0] == 1 && g.ker[0] == 1 && g.pad[0] == 0;
        qo_pool_for(pool, p->N * p->C, qo_k_max64(1, 16384 / (work ? work : 1)), is2d ? dw2d_task : dw_task, &dj);
        return;
    }
    conv_job cj = {.p = p, .g = g, .x = x, .w = w, .b = b, .y = y, .pool = pool, .Cg = Cg, .Mg = Mg};
    void *owned0 = NULL;
    cj.K = Cg * g.ksz;
    if (cj.K == 0) { /* no input channels: bias only */
        for (int64_t n = 0; n < p->N; n++) {
            float *yn = y + n * p->M * g.osz;
            memset(yn, 0, (size_t)(p->M * g.osz) * sizeof *y);
            qo_k_epilogue(yn, p->M, g.osz, g.osz, b, p->res ? p->res + (yn - y) : NULL, p->act);
        }
        return;
    }
    cj.direct_b = g.ksz == 1 && g.str[0] == 1 && g.str[1] == 1 && g.str[2] == 1 && g.pad[0] == 0 &&
                  g.pad[1] == 0 && g.pad[2] == 0 && g.osz == g.isz;
    /* column blocks: enough tasks for every thread, im2col block at most ~2 MB */
    int64_t ng = p->N * p->group, nblk = 1;
    if (ng < nth) nblk = qo_k_cdiv(nth, ng);
    int64_t cap = qo_k_max64(64, (int64_t)(2u << 20) / (int64_t)sizeof(float) / cj.K);
    int64_t cb = qo_k_cdiv(g.osz, nblk);
    if (!cj.direct_b && cb > cap) cb = cap;
    /* keep the output block (Mg x cb) in L2 so the epilogue does not go back to memory */
    int64_t ocap = qo_k_max64(256, (int64_t)(512u << 10) / (int64_t)sizeof(float) / Mg);
    if (cb > ocap) cb = ocap;
    if (cb < g.osz) {
        /* equal blocks, and a multiple of the threads when there are few tasks (4 blocks of
         * 912, 912, 912, 400 on 2 threads would leave one idle a quarter of the time) */
        int64_t nb = qo_k_cdiv(g.osz, cb);
        if (ng * nb < 4 * nth)
            for (int k = 0; k < nth && (ng * nb) % nth; k++) nb++;
        cb = qo_k_min64(g.osz, (qo_k_cdiv(g.osz, nb) + 15) / 16 * 16);
    }
    /* tiny problems: one task */
    if (Mg * g.osz * cj.K * ng < 32768) cb = g.osz;
    cj.cb = cb;
    cj.nblk = qo_k_cdiv(g.osz, cb);
    /* fewer images than threads, more output channels than columns: split the channels instead of
     * the columns, on one im2col matrix (made by the caller: it is small here) */
    if (p->group == 1 && p->N < nth && p->M >= 2 * g.osz && p->M >= 32 * nth &&
        (cj.direct_b || p->N * cj.K * g.osz <= (int64_t)(8u << 20) / (int64_t)sizeof(float))) {
        float *col = NULL;
        if (!cj.direct_b) {
            col = qo_k_scratch(pool, 0, (size_t)(p->N * cj.K * g.osz) * sizeof(float), &owned0);
            for (int64_t n = 0; n < p->N; n++) im2col(&g, p->C, x + n * p->C * g.isz, 0, g.osz, col + n * cj.K * g.osz, g.osz);
        }
        cj.col = col;
        cj.mb = (qo_k_cdiv(p->M, qo_k_cdiv(nth, p->N)) + 15) / 16 * 16;
        qo_pool_for(pool, p->N * qo_k_cdiv(p->M, cj.mb), 1, conv_mrows_task, &cj);
        qo_k_scratch_release(owned0);
        return;
    }
    /* small planes, several images: whole images side by side (at most ~1024 columns and an 8 MB
     * im2col block per task, and still a task per thread) */
    cj.nimg = 1;
    if (p->N > 1 && g.osz < 1024) {
        int64_t ni = qo_k_min64(p->N, qo_k_max64(1, 1024 / g.osz));
        ni = qo_k_min64(ni, qo_k_max64(1, (int64_t)(8u << 20) / (int64_t)sizeof(float) / (cj.K * g.osz)));
        if (p->group < nth) ni = qo_k_min64(ni, qo_k_max64(1, p->N * p->group / nth));
        if (ni > 1) { /* equal image counts, and few tasks a multiple of the threads (not 5,5,5,1) */
            int64_t nc = qo_k_cdiv(p->N, ni);
            if (nc * p->group < 4 * nth)
                for (int k = 0; k < nth && (nc * p->group) % nth && nc < p->N; k++) nc++;
            ni = qo_k_cdiv(p->N, nc);
        }
        if (ni > 1) {
            cj.nimg = ni;
            qo_pool_for(pool, qo_k_cdiv(p->N, ni) * p->group, 1, conv_task, &cj);
            return;
        }
    }
    qo_pool_for(pool, ng * cj.nblk, 1, conv_task, &cj);
}

void qo_k_conv2d_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                     qo_pool *pool) {
    qo_k_conv_f32(p, x, w, b, y, pool);
}

/* ---- ConvTranspose -------------------------------------------------------------------------- */
typedef struct convt_job {
    const qo_k_conv_params *p;
    qo_k_geom3 g; /* in = x extents, out = y extents */
    const float *x, *w, *b;
    float *y;
    qo_pool *pool;
    int64_t Cg, Mg, mb, nmb;
    float *wt;   /* NULL, or per group W_g^T ([Mg * ksz, Cg]) for qo_k_sgemm (AVX-512) */
    bool spread; /* 2-D 1x1, stride 2, no padding, AVX-512: spread_1x1_s2 instead of col2im_add */
} convt_job;

/* Adds one output channel's column block cm ([ksz, isz]: tap-major, the input positions within) onto
 * ym at the positions the taps reach (col2im). The stride-1 runs are plain vector adds. */
static void col2im_add(const qo_k_geom3 *g, const float *cm, float *ym) {
    int64_t isz = g->isz, kp = 0;
    for (int64_t kd = 0; kd < g->ker[0]; kd++)
        for (int64_t kh = 0; kh < g->ker[1]; kh++)
            for (int64_t kw = 0; kw < g->ker[2]; kw++, kp++) {
                const float *cr = cm + kp * isz;
                int64_t woff = kw * g->dil[2] - g->pad[2], sw = g->str[2];
                int64_t a = woff < 0 ? qo_k_cdiv(-woff, sw) : 0;
                int64_t e = g->out[2] - 1 - woff < 0 ? 0 : (g->out[2] - 1 - woff) / sw + 1;
                if (e > g->in[2]) e = g->in[2];
                for (int64_t id = 0; id < g->in[0]; id++) {
                    int64_t pd = id * g->str[0] - g->pad[0] + kd * g->dil[0];
                    if (pd < 0 || pd >= g->out[0]) continue;
                    for (int64_t ih = 0; ih < g->in[1]; ih++) {
                        int64_t ph = ih * g->str[1] - g->pad[1] + kh * g->dil[1];
                        if (ph < 0 || ph >= g->out[1]) continue;
                        const float *restrict cx = cr + (id * g->in[1] + ih) * g->in[2];
                        float *restrict yr = ym + (pd * g->out[1] + ph) * g->out[2];
                        if (sw == 1) { /* a + woff >= 0 */
                            float *restrict yo = yr + a + woff;
                            const float *restrict cs = cx + a;
                            for (int64_t i = 0; i < e - a; i++) yo[i] += cs[i];
                        } else {
                            for (int64_t iw = a; iw < e; iw++) yr[iw * sw + woff] += cx[iw];
                        }
                    }
                }
            }
}

#ifdef CONV_X86
/* col2im of a 2-D 1x1 kernel with stride 2 and no padding (ResNet's downsample input gradients):
 * input row ih lands on the even columns of output row 2 ih, every other output element is 0;
 * written row by row (no memset then scattered adds). */
static void spread_1x1_s2(const qo_k_geom3 *g, const float *cm, float *ym) {
    int64_t OH = g->out[1], OW = g->out[2], IH = g->in[1], IW = g->in[2];
    int64_t n = qo_k_min64(IW, (OW + 1) / 2); /* input columns that land inside the row */
    for (int64_t oh = 0; oh < OH; oh++) {
        float *yr = ym + oh * OW;
        if (oh % 2 || oh / 2 >= IH) {
            memset(yr, 0, (size_t)OW * sizeof *yr);
            continue;
        }
        int64_t w = qo_k_min64(2 * n, OW); /* an odd OW drops the last input column's zero */
        spread_s2_512(yr, cm + (oh / 2) * IW, n, w);
        if (OW > w) memset(yr + w, 0, (size_t)(OW - w) * sizeof *yr);
    }
}
#endif

static void convt_task(void *ctx, int64_t begin, int64_t end, int tid) {
    convt_job *cj = ctx;
    const qo_k_conv_params *p = cj->p;
    const qo_k_geom3 *g = &cj->g;
    int64_t isz = g->isz, osz = g->osz, ksz = g->ksz, Cg = cj->Cg, Mg = cj->Mg;
    void *owned = NULL;
    float *col = qo_k_scratch(cj->pool, tid, (size_t)(cj->mb * ksz * isz) * sizeof(float), &owned);
    for (int64_t t = begin; t < end; t++) {
        int64_t blk = t % cj->nmb, ng = t / cj->nmb, grp = ng % p->group, n = ng / p->group;
        int64_t m0 = blk * cj->mb, m1 = qo_k_min64(Mg, m0 + cj->mb), rows = (m1 - m0) * ksz;
        const float *xg = cj->x + (n * p->C + grp * Cg) * isz;
        /* W_g is [Cg, Mg * ksz]; col = W_g[:, m0*ksz .. m1*ksz]^T x_g  ([rows, isz]) */
        if (cj->wt) { /* W_g^T given: our sgemm */
            qo_k_sgemm(rows, isz, Cg, cj->wt + (grp * Mg + m0) * ksz * Cg, Cg, xg, isz, false, col, isz);
        } else {
            const float *wg = cj->w + grp * Cg * Mg * ksz + m0 * ksz;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows, (int)isz, (int)Cg, 1.0f, wg,
                        (int)(Mg * ksz), xg, (int)isz, 0.0f, col, (int)isz);
        }
        for (int64_t m = m0; m < m1; m++) {
            int64_t mo = grp * Mg + m;
            float *ym = cj->y + (n * p->M + mo) * osz;
            if (cj->spread) {
#ifdef CONV_X86
                spread_1x1_s2(g, col + (m - m0) * ksz * isz, ym);
#endif
            } else {
                memset(ym, 0, (size_t)osz * sizeof *ym);
                col2im_add(g, col + (m - m0) * ksz * isz, ym);
            }
            qo_k_epilogue(ym, 1, osz, osz, cj->b ? cj->b + mo : NULL, p->res ? p->res + (ym - cj->y) : NULL, p->act);
        }
    }
    qo_k_scratch_release(owned);
}

bool qo_k_conv_sib_ok(const qo_k_conv_params *p) {
    if (p->group != 1 || p->nsp < 1) return false;
    for (int i = 0; i < p->nsp; i++)
        if (p->ker[i] % 2 == 0 || p->pad[i] != (p->ker[i] - 1) / 2 * p->dil[i] ||
            (p->in[i] - 1) / p->str[i] + 1 != p->out[i])
            return false;
    return true;
}

/* ConvTranspose with a 1x1 sibling (p->x2) where the flat kernel does not take it in: the sibling
 * into a buffer (plus the residual), then the main convolution with that buffer as its residual. */
static void convt_sib_apart(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                            qo_pool *pool) {
    int64_t osz = 1;
    for (int i = 0; i < p->nsp; i++) osz *= p->out[i];
    qo_k_conv_params q = *p, m = *p;
    q.C = p->C2, q.group = 1, q.act = (qo_k_act){QO_K_ACT_NONE, 0.0f, 0.0f}, q.x2 = NULL, q.w2 = NULL, q.C2 = 0;
    for (int i = 0; i < p->nsp; i++) q.ker[i] = 1, q.dil[i] = 1, q.pad[i] = 0;
    float *t = qo_malloc((size_t)(p->N * p->M * osz) * sizeof(float));
    qo_k_convtranspose_f32(&q, p->x2, p->w2, NULL, t, pool); /* + p->res, its epilogue */
    m.x2 = NULL, m.w2 = NULL, m.C2 = 0, m.res = t;
    qo_k_convtranspose_f32(&m, x, w, b, y, pool);
    qo_free(t);
}

/* ConvTranspose with a QuantGrad after it (p->qg), on the kernel the convolution alone would take:
 * in its epilogue where that is Winograd F(4x4, 3x3) or a flat kernel, else over y afterwards. */
static void convt_qgrad(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                        qo_pool *pool, int64_t osz) {
    qo_k_qgrad g = *p->qg;
    qo_k_qgrad_prepare(&g);
    qo_k_conv_params q = *p, alone = *p;
    q.qg = &g, alone.qg = NULL;
    bool done = false;
    if (p->x2) {
        if (p->fast && (qo_k_convtranspose_strided_f32(&q, x, w, b, y, pool) ||
                        qo_k_convtranspose_flat_f32(&q, x, w, b, y, pool)))
            return;
    } else {
        if (qo_k_conv_wino4_f32(&q, true, x, w, b, y, pool)) return;
        done = qo_k_conv_wino_f32(&alone, true, x, w, b, y, pool);
        if (!done && (qo_k_convtranspose_strided_f32(&q, x, w, b, y, pool) ||
                      qo_k_convtranspose_flat_f32(&q, x, w, b, y, pool)))
            return;
    }
    if (!done) qo_k_convtranspose_f32(&alone, x, w, b, y, pool);
    qo_k_qgrad_apply(&g, y, p->N * p->M * osz, pool);
}

void qo_k_convtranspose_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b,
                            float *y, qo_pool *pool) {
    qo_k_geom3 g;
    qo_k_geom3_fill(&g, p->nsp, p->in, p->out, p->ker, p->str, p->dil, p->pad, NULL);
    if (p->N == 0 || p->M == 0 || g.osz == 0) {
        if (p->qg && p->qg->ds) *p->qg->ds = 0.0f;
        return;
    }
    if (p->qg) {
        convt_qgrad(p, x, w, b, y, pool, g.osz);
        return;
    }
    if (p->x2) {
        if (!(p->fast && (qo_k_convtranspose_strided_f32(p, x, w, b, y, pool) ||
                          qo_k_convtranspose_flat_f32(p, x, w, b, y, pool))))
            convt_sib_apart(p, x, w, b, y, pool);
        return;
    }
    if (qo_k_conv_wino4_f32(p, true, x, w, b, y, pool) || qo_k_conv_wino_f32(p, true, x, w, b, y, pool) ||
        qo_k_convtranspose_strided_f32(p, x, w, b, y, pool) || qo_k_convtranspose_flat_f32(p, x, w, b, y, pool))
        return;
    convt_job cj = {.p = p, .g = g, .x = x, .w = w, .b = b, .y = y, .pool = pool};
    cj.Cg = p->C / p->group, cj.Mg = p->M / p->group;
#ifdef CONV_X86
    cj.spread = g.ksz == 1 && g.in[0] == 1 && g.out[0] == 1 && g.str[1] == 2 && g.str[2] == 2 && g.pad[1] == 0 &&
                g.pad[2] == 0 && qo_k_sgemm_isa(-1) == 2;
#endif
    if (cj.Cg == 0 || g.isz == 0) {
        for (int64_t n = 0; n < p->N; n++) {
            float *yn = y + n * p->M * g.osz;
            memset(yn, 0, (size_t)(p->M * g.osz) * sizeof *y);
            qo_k_epilogue(yn, p->M, g.osz, g.osz, b, p->res ? p->res + (yn - y) : NULL, p->act);
        }
        return;
    }
    int nth = qo_pool_size(pool);
    int64_t ng = p->N * p->group, nmb = 1;
    if (ng < nth) nmb = qo_k_min64(cj.Mg, qo_k_cdiv(nth, ng));
    int64_t cap = qo_k_max64(1, (int64_t)(4u << 20) / (int64_t)sizeof(float) / (g.ksz * g.isz));
    cj.mb = qo_k_min64(qo_k_cdiv(cj.Mg, nmb), cap);
    cj.nmb = qo_k_cdiv(cj.Mg, cj.mb);
    if (qo_k_sgemm_isa(-1) == 2) { /* our AVX-512 kernels need A row-major: transpose each W_g once */
        int64_t rk = cj.Mg * g.ksz;
        cj.wt = qo_malloc((size_t)(p->group * rk * cj.Cg) * sizeof(float));
        for (int64_t grp = 0; grp < p->group; grp++)
            qo_k_transpose_to(w + grp * cj.Cg * rk, rk, rk, cj.Cg, cj.wt + grp * rk * cj.Cg);
    }
    qo_pool_for(pool, ng * cj.nmb, 1, convt_task, &cj);
    qo_free(cj.wt);
}
