/* runtime/kernels/conv_grad.c — the weight gradient of Conv (ConvGradWeight) on float32: per image,
 * group and chunk of output rows, im2col of the chunk into col [C/group * kernel, chunk] and one
 * qo_k_sgemm_acc (sgemm.c) dW^T += col dY_chunk^T (col read in place, dY given transposed: cheap to
 * pack), accumulated over the images of a range and transposed into dW once per range (or, for at
 * most 8 output channels per group, dW += dY_chunk col^T). Each K block of the sgemm is summed from
 * zero and added to the accumulator (BLAS beta 1). With AVX-512 (qo_k_sgemm_isa 2) im2col copies
 * with masked loads and stores: stride-1 same-width rows as one contiguous copy per kernel tap
 * (im2col3_512s), else row by row (im2col3_512). The batch is split into one contiguous range per
 * pool thread, each summed into its own buffer; the buffers are added in range order, so results
 * depend on the pool size but not on scheduling. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/train_kernels.h"

#include "runtime/kernels/internal.h"

#include <string.h>

typedef struct cgw_job {
    const qo_k_conv_params *p;
    const float *dy, *x;
    float *dw;        /* range 0 sums here */
    float *part;      /* ranges 1.. sum into part + (r - 1) * wsz */
    int64_t nranges, wsz;
    /* the 1x1 sibling (qo_k_convgradweight_sib_f32; M2 0 = none): dw2 += col's center-tap rows
       dy2^T per chunk, ranges 1.. into part2 */
    int64_t M2, ctap;
    const float *dy2;
    float *dw2, *part2;
    qo_pool *pool;
} cgw_job;

/* One im2col row: r[ow] = xr[ow * sw] for ow in [a, e), 0 for the other ow < n (xr is only read
 * at those ow). */
static void cgw_row(float *r, const float *xr, int64_t n, int64_t a, int64_t e, int64_t sw) {
    for (int64_t ow = 0; ow < a; ow++) r[ow] = 0.0f;
    if (sw == 1)
        for (int64_t ow = a; ow < e; ow++) r[ow] = xr[ow];
    else
        for (int64_t ow = a; ow < e; ow++) r[ow] = xr[ow * sw];
    for (int64_t ow = e; ow < n; ow++) r[ow] = 0.0f;
}

#if defined(__GNUC__) && defined(__x86_64__) && !defined(QO_K_NO_CLONES)
#define CGW_X86 1
#include <immintrin.h>
#define T512 __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma")))

/* dst[t] = src[t] for t in [lo, hi), 0 for the other t < n (src is read only in [lo, hi)). */
T512 static void cgw_copy512(float *dst, const float *src, int64_t n, int64_t lo, int64_t hi) {
    int64_t t = 0;
    for (; t + 16 <= n; t += 16) {
        if (t >= lo && t + 16 <= hi) _mm512_storeu_ps(dst + t, _mm512_loadu_ps(src + t));
        else _mm512_storeu_ps(dst + t, _mm512_maskz_loadu_ps(qo_k_bits16(lo - t, hi - t), src + t));
    }
    if (t < n) _mm512_mask_storeu_ps(dst + t, qo_k_bits16(0, n - t), _mm512_maskz_loadu_ps(qo_k_bits16(lo - t, hi - t), src + t));
}

/* im2col3 for 1-D and 2-D stride 1 along the rows with out[2] == in[2] (same padding along the
 * rows): an output o of the chunk reads x at o + a constant per kernel tap, so each tap's row of col
 * is one contiguous copy, then the columns that wrap around (iw outside the input row) and the
 * rows outside the input are zeroed. */
T512 static void im2col3_512s(const int64_t *in, const int64_t *out, const int64_t *ker, const int64_t *dil,
                              const int64_t *pad, int64_t C, const float *x, int64_t r0, int64_t r1, float *col) {
    int64_t W = out[2], H = in[1], isz = H * W, len = (r1 - r0) * W;
    float *row = col;
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * isz;
        for (int64_t kh = 0; kh < ker[1]; kh++)
            for (int64_t kw = 0; kw < ker[2]; kw++, row += len) {
                int64_t hoff = kh * dil[1] - pad[1], w0 = kw * dil[2] - pad[2];
                /* rows oh with 0 <= oh + hoff < H, within [r0, r1) */
                int64_t v0 = qo_k_min64(r1, qo_k_max64(r0, -hoff)), v1 = qo_k_max64(v0, qo_k_min64(r1, H - hoff));
                /* chunk output t reads xc[(r0 * W + t) + hoff * W + w0]; reads stay inside the channel */
                const float *src = xc + (r0 + hoff) * W + w0;
                int64_t lo = qo_k_max64((v0 - r0) * W, -((r0 + hoff) * W + w0));
                int64_t hi = qo_k_min64((v1 - r0) * W, isz - ((r0 + hoff) * W + w0));
                cgw_copy512(row, src, len, lo, hi);
                /* columns ow outside [a, e) read a neighbouring row: zero */
                int64_t a = qo_k_min64(W, qo_k_max64(0, -w0)), e = qo_k_max64(a, qo_k_min64(W, W - w0));
                if (a > 0 || e < W)
                    for (int64_t r = v0; r < v1; r++) {
                        float *rr = row + (r - r0) * W;
                        for (int64_t ow = 0; ow < a; ow++) rr[ow] = 0.0f;
                        for (int64_t ow = e; ow < W; ow++) rr[ow] = 0.0f;
                    }
            }
    }
}

/* im2col3 (below) for out[2] <= 64 and str[2] 1 or 2: each row by masked AVX-512 loads (the
 * masked-off lanes are not read) and stores, the masks computed once per kernel tap. */
T512 static void im2col3_512(const int64_t *in, const int64_t *out, const int64_t *ker, const int64_t *str,
                             const int64_t *dil, const int64_t *pad, int64_t C, const float *x, int64_t r0, int64_t r1,
                             float *col) {
    int64_t isz = in[0] * in[1] * in[2], ow_n = out[2], len = (r1 - r0) * ow_n, sw = str[2];
    int nq = (int)qo_k_cdiv(ow_n, 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __mmask16 kst[4], kin[4], kl0[4], kl1[4];
    for (int q = 0; q < nq; q++) kst[q] = qo_k_bits16(0, ow_n - 16 * q);
    float *row = col;
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * isz;
        for (int64_t kd = 0; kd < ker[0]; kd++)
            for (int64_t kh = 0; kh < ker[1]; kh++)
                for (int64_t kw = 0; kw < ker[2]; kw++, row += len) {
                    int64_t w0 = kw * dil[2] - pad[2], a, e;
                    qo_k_taps(w0, sw, ow_n, in[2], &a, &e); /* ow in [a, e) reads inside the row */
                    for (int q = 0; q < nq; q++) {
                        int64_t j = 16 * q;
                        kin[q] = qo_k_bits16(a - j, e - j);
                        /* stride 2: offsets 2 ow for ow in [a, e) and the odd ones between them */
                        kl0[q] = qo_k_bits16(2 * (a - j), 2 * (e - j) - 1);
                        kl1[q] = qo_k_bits16(2 * (a - j) - 16, 2 * (e - j) - 17);
                    }
                    float *r = row;
                    int64_t od = r0 / out[1], oh = r0 % out[1];
                    for (int64_t rr = r0; rr < r1; rr++, r += ow_n) {
                        int64_t id = od * str[0] - pad[0] + kd * dil[0], ih = oh * str[1] - pad[1] + kh * dil[1];
                        if (++oh == out[1]) oh = 0, od++;
                        if (id < 0 || id >= in[0] || ih < 0 || ih >= in[1]) {
                            for (int q = 0; q < nq; q++) _mm512_mask_storeu_ps(r + 16 * q, kst[q], _mm512_setzero_ps());
                            continue;
                        }
                        const float *xr = xc + (id * in[1] + ih) * in[2] + w0;
                        if (sw == 1) {
                            for (int q = 0; q < nq; q++)
                                if (kst[q] == 0xffff) _mm512_storeu_ps(r + 16 * q, _mm512_maskz_loadu_ps(kin[q], xr + 16 * q));
                                else _mm512_mask_storeu_ps(r + 16 * q, kst[q], _mm512_maskz_loadu_ps(kin[q], xr + 16 * q));
                        } else {
                            for (int q = 0; q < nq; q++) {
                                __m512 v0 = _mm512_maskz_loadu_ps(kl0[q], xr + 32 * q);
                                __m512 v1 = _mm512_maskz_loadu_ps(kl1[q], xr + 32 * q + 16);
                                _mm512_mask_storeu_ps(r + 16 * q, kst[q], _mm512_maskz_permutex2var_ps(kin[q], v0, even, v1));
                            }
                        }
                    }
                }
    }
}
#endif

/* col[(c * ksz + kp) * len + o - o0] = x[c, o * str - pad + k * dil] or 0 in the padding, for the
 * outputs o in [o0, o0 + len) of output rows [r0, r1) (a row: one (od, oh), out[2] outputs; o0 =
 * r0 * out[2], len = (r1 - r0) * out[2]); spatial dims are padded to three with leading extents 1.
 * avx512: im2col3_512 where it applies. */
static void im2col3(const int64_t *in, const int64_t *out, const int64_t *ker, const int64_t *str, const int64_t *dil,
                    const int64_t *pad, int64_t C, const float *x, int64_t r0, int64_t r1, float *col, bool avx512) {
#ifdef CGW_X86
    if (avx512 && in[0] == 1 && out[0] == 1 && ker[0] == 1 && pad[0] == 0 && str[1] == 1 && str[2] == 1 && in[2] == out[2]) {
        im2col3_512s(in, out, ker, dil, pad, C, x, r0, r1, col);
        return;
    }
    if (avx512 && out[2] <= 64 && (str[2] == 1 || str[2] == 2)) {
        im2col3_512(in, out, ker, str, dil, pad, C, x, r0, r1, col);
        return;
    }
#endif
    (void)avx512;
    int64_t isz = in[0] * in[1] * in[2], len = (r1 - r0) * out[2], ow_n = out[2];
    float *row = col;
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * isz;
        for (int64_t kd = 0; kd < ker[0]; kd++)
            for (int64_t kh = 0; kh < ker[1]; kh++)
                for (int64_t kw = 0; kw < ker[2]; kw++, row += len) {
                    /* ow in [a, e) reads inside the row: iw = ow * str + w0 in [0, in) */
                    int64_t w0 = kw * dil[2] - pad[2], sw = str[2], a, e;
                    qo_k_taps(w0, sw, ow_n, in[2], &a, &e);
                    float *r = row;
                    int64_t od = r0 / out[1], oh = r0 % out[1];
                    for (int64_t rr = r0; rr < r1; rr++, r += ow_n) {
                        int64_t id = od * str[0] - pad[0] + kd * dil[0], ih = oh * str[1] - pad[1] + kh * dil[1];
                        if (++oh == out[1]) oh = 0, od++;
                        bool inside = id >= 0 && id < in[0] && ih >= 0 && ih < in[1];
                        /* rows in the padding: all zeros (xr is not read) */
                        const float *xr = inside ? xc + (id * in[1] + ih) * in[2] + w0 : xc;
                        cgw_row(r, xr, ow_n, inside ? a : 0, inside ? e : 0, sw);
                    }
                }
    }
}

/* Outputs per im2col chunk (whole output rows, at least one): the chunk [C/group * kernel, chunk]
 * stays in L2 (256..768 measured alike on ResNet-8's layers). */
#define CGW_CHUNK 512

static void cgw_task(void *ctx, int64_t begin, int64_t end, int tid) {
    const cgw_job *J = ctx;
    const qo_k_conv_params *p = J->p;
    int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, ker[3] = {1, 1, 1}, str[3] = {1, 1, 1}, dil[3] = {1, 1, 1},
            pad[3] = {0, 0, 0};
    int off = 3 - p->nsp;
    for (int i = 0; i < p->nsp; i++) {
        in[off + i] = p->in[i], out[off + i] = p->out[i], ker[off + i] = p->ker[i];
        str[off + i] = p->str[i], dil[off + i] = p->dil[i], pad[off + i] = p->pad[i];
    }
    int64_t isz = in[0] * in[1] * in[2], osz = out[0] * out[1] * out[2], ksz = ker[0] * ker[1] * ker[2];
    int64_t Cg = p->C / p->group, Mg = p->M / p->group, CK = Cg * ksz;
    int64_t nrows = out[0] * out[1], rpc = qo_k_max64(1, CGW_CHUNK / out[2]); /* output rows per chunk */
    if (rpc > nrows) rpc = nrows;
    bool avx512 = qo_k_sgemm_isa(-1) == 2;
    /* Mg > 8: dW^T = col dY^T (col as A, read in place; Mg the vector width); else dW = dY col^T
     * (col packed as B^T, its rows the vector width: fewer idle lanes for LeNet's 6 channels) */
    bool tr = Mg > 8;
    /* col [CK, rpc * out[2]], then dW^T [group][CK, Mg] */
    int64_t wsz2 = J->M2 * Cg;
    size_t cn = (size_t)(CK * rpc * out[2]), bytes = (cn + (size_t)(J->wsz + wsz2)) * sizeof(float);
    float *col = J->pool ? qo_pool_scratch(J->pool, tid, bytes) : qo_malloc(bytes), *wt = col + cn, *wt2 = wt + J->wsz;
    for (int64_t r = begin; r < end; r++) {
        float *acc = r == 0 ? J->dw : J->part + (r - 1) * J->wsz;
        float *acc2 = J->M2 ? (r == 0 ? J->dw2 : J->part2 + (r - 1) * wsz2) : NULL;
        int64_t n0 = r * p->N / J->nranges, n1 = (r + 1) * p->N / J->nranges;
        if (n0 == n1) memset(acc, 0, (size_t)J->wsz * sizeof(float));
        if (n0 == n1 && acc2) memset(acc2, 0, (size_t)wsz2 * sizeof(float));
        for (int64_t n = n0; n < n1; n++)
            for (int64_t grp = 0; grp < p->group; grp++)
                for (int64_t r0 = 0; r0 < nrows; r0 += rpc) {
                    int64_t r1 = qo_k_min64(nrows, r0 + rpc), len = (r1 - r0) * out[2];
                    im2col3(in, out, ker, str, dil, pad, Cg, J->x + (n * p->C + grp * Cg) * isz, r0, r1, col,
                            avx512);
                    const float *dyg = J->dy + (n * p->M + grp * Mg) * osz + r0 * out[2];
                    bool more = n > n0 || r0 > 0;
                    if (tr) qo_k_sgemm_acc(CK, Mg, len, col, len, dyg, osz, true, more, wt + grp * Mg * CK, Mg);
                    else qo_k_sgemm_acc(Mg, CK, len, dyg, osz, col, len, true, more, acc + grp * Mg * CK, CK);
                    if (acc2) /* the center-tap rows c ksz + ctap are the 1x1 sibling's im2col */
                        qo_k_sgemm_acc(Cg, J->M2, len, col + J->ctap * len, ksz * len,
                                       J->dy2 + n * J->M2 * osz + r0 * out[2], osz, true, more, wt2, J->M2);
                }
        if (tr && n1 > n0) /* dW = (dW^T)^T */
            for (int64_t grp = 0; grp < p->group; grp++)
                for (int64_t m = 0; m < Mg; m++)
                    for (int64_t k = 0; k < CK; k++) acc[(grp * Mg + m) * CK + k] = wt[grp * Mg * CK + k * Mg + m];
        if (acc2 && n1 > n0)
            for (int64_t m = 0; m < J->M2; m++)
                for (int64_t c = 0; c < Cg; c++) acc2[m * Cg + c] = wt2[c * J->M2 + m];
    }
    if (!J->pool) qo_free(col);
}

/* Runs the im2col path (sibling too when J->M2) and adds the ranges in order. */
static void cgw_run(cgw_job *J) {
    const qo_k_conv_params *p = J->p;
    int64_t nr = qo_pool_size(J->pool), wsz = J->wsz, wsz2 = J->M2 * p->C;
    if (nr > p->N) nr = p->N;
    J->nranges = nr;
    if (nr > 1) J->part = qo_malloc((size_t)((nr - 1) * wsz) * sizeof(float));
    if (nr > 1 && J->M2) J->part2 = qo_malloc((size_t)((nr - 1) * wsz2) * sizeof(float));
    qo_pool_for(J->pool, nr, 1, cgw_task, J);
    for (int64_t r = 1; r < nr; r++) {
        const float *s = J->part + (r - 1) * wsz;
        for (int64_t i = 0; i < wsz; i++) J->dw[i] += s[i];
        if (!J->M2) continue;
        s = J->part2 + (r - 1) * wsz2;
        for (int64_t i = 0; i < wsz2; i++) J->dw2[i] += s[i];
    }
    qo_free(J->part);
    qo_free(J->part2);
}

void qo_k_convgradweight_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw, qo_pool *pool) {
    int64_t ksz = 1;
    for (int i = 0; i < p->nsp; i++) ksz *= p->ker[i];
    int64_t wsz = p->M * (p->C / p->group) * ksz;
    if (wsz <= 0) return;
    int64_t osz = 1;
    for (int i = 0; i < p->nsp; i++) osz *= p->out[i];
    if (p->N <= 0 || osz <= 0) {
        memset(dw, 0, (size_t)wsz * sizeof(float));
        return;
    }
    if (qo_k_convgradweight_wino4_f32(p, dy, x, dw, pool) || qo_k_convgradweight_wino_f32(p, dy, x, dw, pool)) return;
    if (qo_k_convgradweight_flat_f32(p, dy, x, dw, pool)) return;
    if (qo_k_convgradweight_strided_f32(p, dy, x, dw, 0, NULL, NULL, pool)) return;
    cgw_job J = {.p = p, .dy = dy, .x = x, .dw = dw, .wsz = wsz, .pool = pool};
    cgw_run(&J);
}

/* The 1x1 sibling's params: p's batch, input and output extents and strides, one tap, no padding. */
static qo_k_conv_params sib_params(const qo_k_conv_params *p, int64_t M2) {
    qo_k_conv_params q = *p;
    q.M = M2, q.group = 1, q.act = (qo_k_act){QO_K_ACT_NONE, 0.0f, 0.0f}, q.res = NULL, q.x2 = NULL, q.w2 = NULL,
    q.C2 = 0;
    for (int i = 0; i < p->nsp; i++) q.ker[i] = 1, q.dil[i] = 1, q.pad[i] = 0;
    return q;
}

void qo_k_convgradweight_sib_f32(const qo_k_conv_params *p, const float *dy, const float *x, float *dw, int64_t M2,
                                 const float *dy2, float *dw2, qo_pool *pool) {
    int64_t ksz = 1, osz = 1;
    for (int i = 0; i < p->nsp; i++) ksz *= p->ker[i], osz *= p->out[i];
    int64_t wsz = p->M * p->C * ksz;
    if (qo_k_convgradweight_strided_f32(p, dy, x, dw, M2, dy2, dw2, pool)) return;
    /* fused where the main convolution takes the im2col path with dW^T = col dY^T: more than 8
       filters, a stride (Winograd takes stride 1) and more than 8 channels (the flat kernel takes
       up to 8); the sibling's im2col is then col's center-tap rows, and with more than 8 filters
       the sibling alone would take the same path (dW2^T = col dY2^T, same chunks) */
    bool strided = false;
    for (int i = 0; i < p->nsp; i++) strided = strided || p->str[i] > 1;
    bool fused = p->M > 8 && p->C > 8 && strided && M2 > 8 && wsz > 0 && p->N > 0 && osz > 0 && qo_k_conv_sib_ok(p);
    if (!fused) {
        qo_k_conv_params q = sib_params(p, M2);
        qo_k_convgradweight_f32(p, dy, x, dw, pool);
        qo_k_convgradweight_f32(&q, dy2, x, dw2, pool);
        return;
    }
    /* the center tap's index in the flattened kernel */
    int64_t ct = 0;
    for (int i = 0; i < p->nsp; i++) ct = ct * p->ker[i] + (p->ker[i] - 1) / 2;
    cgw_job J = {.p = p, .dy = dy, .x = x, .dw = dw, .wsz = wsz, .pool = pool, .M2 = M2, .ctap = ct, .dy2 = dy2,
                 .dw2 = dw2};
    cgw_run(&J);
}
