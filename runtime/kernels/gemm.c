/* runtime/kernels/gemm.c — Gemm and batched MatMul on our sgemm (sgemm.c's qo_k_sgemm, alpha 1 and
 * no C term; op(A) transposed is packed first) or else cblas_sgemm, tiled over the pool.
 *
 * A task is (batch, row block, column block) of the output; blocks are only cut when there are
 * fewer batches than threads, and never for small products (the pool's wake-up costs more). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/internal.h"

#include <cblas.h>
#include <string.h>

typedef struct gemm_job {
    int64_t M, N, K, nbatch, rb, cb, nrb, ncb;
    int32_t ta, tb;
    float alpha, beta;
    const float *A, *B, *C, *bias;
    int64_t c_rs, c_cs;
    float *Y;
    const float *res;
    qo_k_act act;
    const qo_k_matmul_params *mp; /* batched MatMul: batch offsets from here */
    qo_pool *pool;
    bool own; /* products by qo_k_sgemm (AVX-512 or AVX2 kernels: about twice OpenBLAS's
                 speed on Zen's AVX-512 cores, which OpenBLAS 0.3.21 runs on its Haswell kernels) */
} gemm_job;

/* Offsets of batch index bt into A and B. */
static void batch_offsets(const qo_k_matmul_params *p, int64_t bt, int64_t *ao, int64_t *bo) {
    int64_t a = 0, b = 0;
    for (int i = p->brank - 1; i >= 0; i--) {
        int64_t ix = bt % p->bdims[i];
        bt /= p->bdims[i];
        a += ix * p->astr[i], b += ix * p->bstr[i];
    }
    *ao = a, *bo = b;
}

static void gemm_task(void *ctx, int64_t begin, int64_t end, int tid) {
    gemm_job *j = ctx;
    int64_t M = j->M, N = j->N, K = j->K;
    for (int64_t t = begin; t < end; t++) {
        int64_t cbk = t % j->ncb, r = t / j->ncb, rbk = r % j->nrb, bt = r / j->nrb;
        int64_t i0 = rbk * j->rb, i1 = qo_k_min64(M, i0 + j->rb), c0 = cbk * j->cb, c1 = qo_k_min64(N, c0 + j->cb);
        int64_t rows = i1 - i0, cols = c1 - c0;
        const float *A = j->A, *B = j->B;
        if (j->mp) {
            int64_t ao, bo;
            batch_offsets(j->mp, bt, &ao, &bo);
            A += ao, B += bo;
        }
        float *Y = j->Y + bt * M * N + i0 * N + c0;
        /* op(A) rows i0..i1: A + i0*K (lda K) or A + i0 (lda M); op(B) columns similarly */
        const float *Ab = j->ta ? A + i0 : A + i0 * K;
        const float *Bb = j->tb ? B + c0 * K : B + c0;
        int lda = (int)(j->ta ? M : K), ldb = (int)(j->tb ? K : N);
        float beta = 0.0f;
        if (j->C && j->beta != 0.0f) {
            for (int64_t i = 0; i < rows; i++) {
                const float *cr = j->C + (i0 + i) * j->c_rs + c0 * j->c_cs;
                float *yr = Y + i * N;
                if (j->c_cs == 1) memcpy(yr, cr, (size_t)cols * sizeof *yr);
                else if (j->c_cs == 0) for (int64_t c = 0; c < cols; c++) yr[c] = cr[0];
                else for (int64_t c = 0; c < cols; c++) yr[c] = cr[c * j->c_cs];
            }
            beta = j->beta;
        }
        if (K == 0) { /* empty sums: beta * C or zeros */
            for (int64_t i = 0; i < rows; i++)
                for (int64_t c = 0; c < cols; c++) Y[i * N + c] = beta != 0.0f ? Y[i * N + c] * beta : 0.0f;
        } else if (rows == 1 && !j->mp) { /* Gemm, one row: sgemv reads B once, no packing */
            if (j->tb)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)cols, (int)K, j->alpha, Bb, ldb, Ab, j->ta ? lda : 1, beta, Y,
                            1);
            else
                cblas_sgemv(CblasRowMajor, CblasTrans, (int)K, (int)cols, j->alpha, Bb, ldb, Ab, j->ta ? lda : 1, beta, Y,
                            1);
        } else if (j->own && beta == 0.0f) { /* our sgemm (sgemm.c): A row-major */
            if (j->ta) { /* op(A) rows i0..i1 packed from the columns of A */
                float *at = qo_pool_scratch(j->pool, tid, (size_t)(rows * K) * sizeof(float));
                qo_k_transpose_to(Ab, lda, rows, K, at);
                Ab = at, lda = (int)K;
            }
            qo_k_sgemm(rows, cols, K, Ab, lda, Bb, ldb, j->tb, Y, N);
        } else {
            cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                        (int)rows, (int)cols, (int)K, j->alpha, Ab, lda, Bb, ldb, beta, Y, (int)N);
        }
        qo_k_epilogue_cols(Y, rows, cols, N, j->bias ? j->bias + c0 : NULL, j->res ? j->res + (Y - j->Y) : NULL,
                           j->act);
    }
}

/* Picks the blocking and runs. */
static void gemm_run(gemm_job *j, qo_pool *pool) {
    int nth = qo_pool_size(pool);
    j->rb = j->M, j->cb = j->N, j->nrb = j->ncb = 1;
    double flops = 2.0 * (double)j->M * (double)j->N * (double)(j->K ? j->K : 1);
    if (j->nbatch < nth && flops * (double)j->nbatch >= 2e5 && j->M > 0 && j->N > 0) {
        int64_t need = qo_k_cdiv(nth, j->nbatch);
        if (j->M >= 4 * need && j->M >= j->N / 4) {
            j->rb = qo_k_cdiv(j->M, need);
            if (j->rb > 4) j->rb = (j->rb + 3) / 4 * 4;
        } else if (j->N >= 16 * need) {
            j->cb = (qo_k_cdiv(j->N, need) + 15) / 16 * 16;
        }
        j->nrb = qo_k_cdiv(j->M, j->rb), j->ncb = qo_k_cdiv(j->N, j->cb);
    }
    int64_t tasks = j->nbatch * j->nrb * j->ncb;
    if (j->M == 0 || j->N == 0) return;
    j->pool = pool;
    j->own = pool && j->alpha == 1.0f && qo_k_sgemm_isa(-1) >= 1;
    int64_t grain = flops < 2e5 ? qo_k_max64(1, (int64_t)(2e5 / (flops + 1))) : 1;
    qo_pool_for(pool, tasks, grain, gemm_task, j);
}

void qo_k_gemm_f32(const qo_k_gemm_params *p, const float *A, const float *B, const float *C, float *Y,
                   qo_pool *pool) {
    gemm_job j = {.M = p->M, .N = p->N, .K = p->K, .nbatch = 1, .ta = p->transA, .tb = p->transB,
                  .alpha = p->alpha, .beta = p->beta, .A = A, .B = B, .C = C, .c_rs = p->c_rs,
                  .c_cs = p->c_cs, .Y = Y, .res = p->res, .act = p->act};
    gemm_run(&j, pool);
}

void qo_k_matmul_f32(const qo_k_matmul_params *p, const float *A, const float *B, const float *bias,
                     float *Y, qo_pool *pool) {
    int64_t nb = 1;
    for (int i = 0; i < p->brank; i++) nb *= p->bdims[i];
    if (nb == 0) return;
    gemm_job j = {.M = p->M, .N = p->N, .K = p->K, .nbatch = nb, .alpha = 1.0f, .A = A, .B = B,
                  .bias = bias, .Y = Y, .res = p->res, .act = p->act, .mp = p};
    if (p->K == 0) { /* empty sums: zeros (then bias/act) */
        memset(Y, 0, (size_t)(nb * p->M * p->N) * sizeof *Y);
        for (int64_t b = 0; b < nb; b++)
            qo_k_epilogue_cols(Y + b * p->M * p->N, p->M, p->N, p->N, bias, p->res ? p->res + b * p->M * p->N : NULL,
                               p->act);
        return;
    }
    gemm_run(&j, pool);
}
