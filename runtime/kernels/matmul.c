/* runtime/kernels/matmul.c — batched MatMul on strided operands (qo_k_matmul_strided_f32): A, B and
 * Y are views with arbitrary batch strides and row strides, A and B possibly transposed, so a
 * Transpose feeding a MatMul or following it costs no copy (the sgemm reads op(A) / op(B)
 * through lda / ldb and writes Y through ldc; only a transposed A is packed, per task, for
 * sgemm.c's kernels, which take it row-major; cblas_sgemm without AVX2). Blocking as gemm.c: a
 * task is (batch, row block, column block); blocks are only cut when there are fewer batches than
 * threads. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/internal.h"
#include "runtime/ref/erf.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct smm_job {
    const qo_k_smm_params *p;
    int64_t rb, cb, nrb, ncb;
    const float *A, *B, *bias, *res;
    float *Y;
    qo_pool *pool; /* products by qo_k_sgemm when the CPU has its kernels (see gemm.c) */
} smm_job;

static void smm_offsets(const qo_k_smm_params *p, int64_t bt, int64_t *ao, int64_t *bo, int64_t *yo) {
    int64_t a = 0, b = 0, y = 0;
    for (int i = p->brank - 1; i >= 0; i--) {
        int64_t ix = bt % p->bdims[i];
        bt /= p->bdims[i];
        a += ix * p->astr[i], b += ix * p->bstr[i], y += ix * p->ystr[i];
    }
    *ao = a, *bo = b, *yo = y;
}

/* The activations only this kernel applies (after bias and res, as separate float ops in the
 * unfused graph's order, so results are those of the unfused ops). */
QO_K_SIMD static void act_ext(float *y, int64_t rows, int64_t cols, int64_t ld, qo_k_act a) {
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * ld;
        if (a.kind == QO_K_ACT_DIV) {
            for (int64_t c = 0; c < cols; c++) yr[c] = yr[c] / a.lo;
        } else {
            for (int64_t c = 0; c < cols; c++) {
                float x = yr[c], e = qo_erff(x / a.lo) + 1.0f;
                yr[c] = (x * e) * a.hi;
            }
        }
    }
}

/* Softmax of one contiguous row, the operations of qo_k_softmax_f32 (runtime/kernels/pooling.c) in
 * its order: max, then expf(x - max) summed left to right, then each divided by the sum. */
static void softmax_row(float *y, int64_t n) {
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t k = 0; k < n; k++) mx = y[k] > mx ? y[k] : mx;
    for (int64_t k = 0; k < n; k++) {
        float ev = expf(y[k] - mx);
        y[k] = ev;
        sum += ev;
    }
    for (int64_t k = 0; k < n; k++) y[k] = y[k] / sum;
}

static void smm_task(void *ctx, int64_t begin, int64_t end, int tid) {
    smm_job *j = ctx;
    const qo_k_smm_params *p = j->p;
    for (int64_t t = begin; t < end; t++) {
        int64_t cbk = t % j->ncb, r = t / j->ncb, rbk = r % j->nrb, bt = r / j->nrb;
        int64_t i0 = rbk * j->rb, i1 = qo_k_min64(p->M, i0 + j->rb), c0 = cbk * j->cb, c1 = qo_k_min64(p->N, c0 + j->cb);
        int64_t rows = i1 - i0, cols = c1 - c0, ao, bo, yo;
        smm_offsets(p, bt, &ao, &bo, &yo);
        float *Y = j->Y + yo + i0 * p->ldy + c0;
        if (p->K == 0) {
            for (int64_t i = 0; i < rows; i++) memset(Y + i * p->ldy, 0, (size_t)cols * sizeof *Y);
        } else {
            /* op(A) rows i0..i1: A + i0*lda (A [M, K]) or A + i0 (A stored [K, M]); op(B) columns alike */
            const float *Ab = j->A + ao + (p->transA ? i0 : i0 * p->lda);
            const float *Bb = j->B + bo + (p->transB ? c0 * p->ldb : c0);
            if (j->pool && qo_k_sgemm_isa(-1) >= 1) { /* our sgemm (as gemm.c): op(A) packed row-major */
                int64_t lda = p->lda;
                if (p->transA) {
                    float *at = qo_pool_scratch(j->pool, tid, (size_t)(rows * p->K) * sizeof(float));
                    qo_k_transpose_to(Ab, p->lda, rows, p->K, at);
                    Ab = at, lda = p->K;
                }
                qo_k_sgemm(rows, cols, p->K, Ab, lda, Bb, p->ldb, p->transB, Y, p->ldy);
            } else {
                cblas_sgemm(CblasRowMajor, p->transA ? CblasTrans : CblasNoTrans, p->transB ? CblasTrans : CblasNoTrans,
                            (int)rows, (int)cols, (int)p->K, 1.0f, Ab, (int)p->lda, Bb, (int)p->ldb, 0.0f, Y, (int)p->ldy);
            }
        }
        bool ext = p->act.kind == QO_K_ACT_DIV || p->act.kind == QO_K_ACT_GELU;
        qo_k_act none = {QO_K_ACT_NONE, 0.0f, 0.0f};
        qo_k_epilogue_cols(Y, rows, cols, p->ldy, j->bias ? j->bias + c0 : NULL, j->res ? j->res + (Y - j->Y) : NULL,
                           ext ? none : p->act);
        if (ext) act_ext(Y, rows, cols, p->ldy, p->act);
        if (p->softmax)
            for (int64_t i = 0; i < rows; i++) softmax_row(Y + i * p->ldy, cols);
        if (p->ln_scale) qo_k_layernorm_rows(Y, Y, rows, cols, p->ldy, p->ldy, p->ln_eps, p->ln_scale, p->ln_bias);
    }
}

void qo_k_matmul_strided_f32(const qo_k_smm_params *pp, const float *A, const float *B, const float *bias,
                             const float *res, float *Y, qo_pool *pool) {
    /* Inner batch dims over which B is broadcast and whose A and Y matrices follow each other
     * (row after row) become rows: one [b*M, K] x [K, N] product packs B once, not b times. */
    qo_k_smm_params mp = *pp;
    const qo_k_smm_params *p = &mp;
    while (mp.brank > 0) {
        int32_t b = mp.brank - 1;
        if (mp.bstr[b] != 0 || mp.transA || mp.astr[b] != mp.M * mp.lda || mp.ystr[b] != mp.M * mp.ldy ||
            mp.M * mp.bdims[b] > INT32_MAX)
            break;
        mp.M *= mp.bdims[b];
        mp.brank--;
    }
    int64_t nb = 1;
    for (int i = 0; i < p->brank; i++) nb *= p->bdims[i];
    if (nb == 0 || p->M == 0 || p->N == 0) return;
    smm_job j = {.p = p, .rb = p->M, .cb = p->N, .nrb = 1, .ncb = 1, .A = A, .B = B, .bias = bias, .res = res, .Y = Y,
                 .pool = pool};
    int nth = qo_pool_size(pool);
    double flops = 2.0 * (double)p->M * (double)p->N * (double)(p->K ? p->K : 1);
    if (nb < nth && flops * (double)nb >= 2e5) {
        int64_t need = qo_k_cdiv(nth, nb);
        bool whole = p->softmax || p->ln_scale; /* row epilogues: no column blocks */
        /* each task packs its rows of A and its columns of B: cut the larger of M and N */
        if (p->N > p->M && p->N >= 16 * need && !whole) {
            j.cb = (qo_k_cdiv(p->N, need) + 15) / 16 * 16;
        } else if (p->M >= 4 * need && (p->M >= p->N / 4 || whole)) {
            j.rb = qo_k_cdiv(p->M, need);
            if (j.rb > 4) j.rb = (j.rb + 3) / 4 * 4;
        } else if (p->N >= 16 * need && !whole) {
            j.cb = (qo_k_cdiv(p->N, need) + 15) / 16 * 16;
        }
        j.nrb = qo_k_cdiv(p->M, j.rb), j.ncb = qo_k_cdiv(p->N, j.cb);
    }
    int64_t grain = flops < 2e5 ? qo_k_max64(1, (int64_t)(2e5 / (flops + 1))) : 1;
    qo_pool_for(pool, nb * j.nrb * j.ncb, grain, smm_task, &j);
}
