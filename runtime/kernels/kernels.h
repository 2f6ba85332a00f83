/* runtime/kernels/kernels.h — optimized float32 kernels for the heavy ops, and their thread pool.
 *
 * Two layers:
 *   1. Plain C kernels (qo_k_*_f32): no IR, no diagnostics, no failure modes. Shapes and attributes
 *      arrive already resolved in a params struct; buffers are dense row-major NC... float32 and
 *      must not overlap. The LLVM JIT calls these through function pointers.
 *   2. Node adapters (qo_k_node_run): the same signature and semantics as a reference kernel
 *      (runtime/rt.h), so an interpreter, a test or a benchmark can swap them in op by op. They
 *      resolve attributes exactly as runtime/ref/nn.c does and return QO_ERR_UNSUPPORTED without a
 *      diagnostic for the forms they do not cover, malformed nodes included (the caller then runs
 *      the reference kernel, which reports those).
 *
 * Numerics: results agree with the reference kernels to about 1e-6 relative (GEMM reorders the
 * sums, so they are not bit-exact). Depthwise convolution, pooling and softmax follow the
 * reference's summation order.
 *
 * Threads: every kernel takes a qo_pool (NULL = run on the calling thread). The pool owns its
 * worker threads and per-thread scratch memory (im2col buffers), so a kernel call does not allocate
 * after the first call with a given size. OpenBLAS is set to one thread when a pool is created:
 * the pool parallelizes around sgemm (see docs/PERFORMANCE.md for the measurement). */
#ifndef QOPT_RUNTIME_KERNELS_KERNELS_H
#define QOPT_RUNTIME_KERNELS_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- thread pool ---------------------------------------------------------------------------- */
typedef struct qo_pool qo_pool;

/* Body of a parallel for: processes indices [begin, end); tid in [0, qo_pool_size) identifies the
 * thread (for per-thread scratch). */
typedef void (*qo_pool_fn)(void *ctx, int64_t begin, int64_t end, int tid);

/* Creates a pool of nthreads threads in all (the caller counts as one; 0 = all online cores).
 * Idle workers spin briefly (adaptive, at most 100 us), then sleep on a condition variable. Also
 * sets OpenBLAS to one thread. NULL if thread creation fails. */
qo_pool *qo_pool_new(int nthreads);
/* Joins the workers and frees the pool and its scratch. NULL is a no-op. */
void qo_pool_free(qo_pool *p);
/* Number of threads (1 for a NULL pool). */
int qo_pool_size(const qo_pool *p);
/* Runs fn over [0, n) split into chunks of at least `grain` indices, on all threads of p (the caller
 * included), and returns when every chunk is done. A NULL pool, n <= grain, or a call from inside a
 * running parallel for (nesting) runs fn(ctx, 0, n, 0) on the calling thread. One parallel for at a
 * time per pool (calls from several application threads are serialized). */
void qo_pool_for(qo_pool *p, int64_t n, int64_t grain, qo_pool_fn fn, void *ctx);
/* Per-thread scratch of at least `bytes` bytes (64-byte aligned), valid until the next call with
 * the same tid or qo_pool_free. p NULL: not allowed (kernels allocate themselves then). */
void *qo_pool_scratch(qo_pool *p, int tid, size_t bytes);

/* ---- fused epilogue ------------------------------------------------------------------------- */
typedef enum qo_k_act_kind {
    QO_K_ACT_NONE = 0, QO_K_ACT_RELU = 1, QO_K_ACT_CLIP = 2,
    /* qo_k_matmul_strided_f32 only: */
    QO_K_ACT_DIV = 3,  /* x / lo (a Div by a constant) */
    QO_K_ACT_GELU = 4  /* the exported erf GELU, op by op: ((qo_erff(x / lo) + 1) * x) * hi (runtime/ref/erf.h) */
} qo_k_act_kind;
typedef struct qo_k_act {
    int32_t kind;  /* qo_k_act_kind, applied after the bias: Relu max(x, 0); Clip min(max(x, lo), hi) */
    float lo, hi;  /* Clip bounds */
} qo_k_act;
/* The epilogue of Conv, Gemm and MatMul computes, per output element, with one float operation per
 * step as the unfused ops would: v = acc (+ bias) (+ res), then act(v). `res` (a params field,
 * NULL = none) is a dense tensor shaped like the output: a fused residual Add. It may not overlap y. */

/* A QuantGrad{reduce = 1} (runtime/ref/train.c) fused after a ConvTranspose's epilogue, where a
 * training step's input gradient meets the previous layer's activation quantizer: the output y
 * (dY of the QuantGrad) becomes dX, y where v = x / s + z lies in [lo, hi] (and x > 0 with relu),
 * else 0, and *ds receives dScale, the sum over the tensor of dy ((rnd(clamp(v)) - z) - (v inside ?
 * x / s : 0)). dX is the unfused QuantGrad's bit for bit (the same float formulas); the dScale
 * terms too, but the kernel sums them per work unit (fsum.h's order over the unit's elements as it
 * visits them) and combines the units' sums with qo_fsum_tree in unit order: deterministic for a
 * given pool size, within float rounding of the unfused sum. Per-tensor s and z only; no dBitwidth. */
typedef struct qo_k_qgrad {
    const float *x;  /* the quantizer's input, shaped like y (may not overlap it) */
    float s, z;      /* scale, zero point */
    int32_t bits;    /* bit width, 1..32 */
    int32_t is_signed, narrow, relu;
    int32_t rm;      /* rounding mode (qo_round) */
    float *ds;       /* dScale (one float), NULL = not wanted */
    double lo, hi;   /* set by qo_k_qgrad_prepare (train_kernels.h): the integer range */
    int32_t fast, avx512; /* ... and the element paths */
} qo_k_qgrad;

/* ---- Conv ----------------------------------------------------------------------------------- */
#define QO_K_MAX_SP 3 /* spatial dims handled by the kernels (1-D, 2-D, 3-D) */

typedef struct qo_k_conv_params {
    int32_t nsp;                 /* spatial dims, 1..QO_K_MAX_SP */
    int64_t N, C, M, group;      /* batch, input channels, output channels, groups (C, M divisible) */
    int64_t in[QO_K_MAX_SP];     /* input spatial extents */
    int64_t out[QO_K_MAX_SP];    /* output spatial extents */
    int64_t ker[QO_K_MAX_SP];    /* kernel extents */
    int64_t str[QO_K_MAX_SP];    /* strides (>= 1) */
    int64_t dil[QO_K_MAX_SP];    /* dilations (>= 1) */
    int64_t pad[QO_K_MAX_SP];    /* padding at the beginning of each dim (the end follows from out) */
    qo_k_act act;                /* fused activation after the bias */
    const float *res;            /* NULL, or [N, M, out...] added after the bias (fused Add) */
    int32_t fast;                /* nonzero: may sum in another order than im2col + sgemm (Winograd,
                                    conv_wino.c); training steps set it, inference keeps the exact order */
    /* ConvTranspose only: a 1x1 "sibling" ConvTranspose added into y (x2 NULL = none), y +=
       ConvTranspose(x2 [N, C2, in...], w2 [C2, M, 1...]) with p's strides and no padding (before
       the bias and res are added and act applied); its outputs y[i str] (i < in) must lie in y.
       ResNet's 1x1 stride-2 downsample beside the 3x3 stride-2 convolution on the same input:
       the input gradients of both in one call. With fast and the strided flat kernel, where one
       output phase is a single tap reading x[i] at y[i str] (a centered odd kernel, as
       qo_k_conv_sib_ok), the sibling's channels join that phase's sums; else it is computed
       apart and added as a residual. */
    const float *x2, *w2;
    int64_t C2;
    /* Conv only: a 1x1 sibling Conv on the same input written to y2 (NULL = none): y2[N, M2, out...]
       = act2(Conv(x, w2 [M2, C, 1...]) with p's strides and no padding (+ b2[M2], NULL = none)),
       where qo_k_conv_sib_ok(p) (it reads x at p's center tap). ResNet's downsample beside the 3x3
       stride-2 convolution: with fast and the strided flat kernel both come from one copy of x's
       phase planes (each sum in its own order, as alone), else they run one after the other. */
    float *y2;
    const float *b2;
    int64_t M2;
    qo_k_act act2;
    /* ConvTranspose only: a QuantGrad applied to y after the bias, res and act (NULL = none) */
    const qo_k_qgrad *qg;
} qo_k_conv_params;

/* A 1x1 convolution with p's strides and no padding on p's input reads the positions of p's
 * center tap: group 1, every kernel extent odd, pad = (ker - 1) / 2 * dil, and (for a Conv's
 * params) out = (in - 1) / str + 1. */
bool qo_k_conv_sib_ok(const qo_k_conv_params *p);

/* Conv: y[N, M, out...] = conv(x[N, C, in...], w[M, C/group, ker...]) + b[M] (b may be NULL), then
 * p->act. Depthwise (group == C == M) runs a direct kernel, 1x1/stride 1/no pad runs sgemm on x,
 * everything else im2col + sgemm per (image, group, column block). */
void qo_k_conv2d_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                     qo_pool *pool);
/* Same function under an N-D name (nsp 1..3); qo_k_conv2d_f32 also takes any nsp. */
void qo_k_conv_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b, float *y,
                   qo_pool *pool);

/* ConvTranspose: y[N, M, out...] from x[N, C, in...] and w[C, M/group, ker...] (+ b[M]), via sgemm
 * (W^T x per group) and col2im. Here p->in are the input extents of x, p->out the output extents,
 * p->pad the begin pads of the output; p->act applies after the bias. */
void qo_k_convtranspose_f32(const qo_k_conv_params *p, const float *x, const float *w, const float *b,
                            float *y, qo_pool *pool);

/* ---- Gemm / MatMul -------------------------------------------------------------------------- */
typedef struct qo_k_gemm_params {
    int64_t M, N, K;
    int32_t transA, transB;      /* A is [M, K] ([K, M] if transA); B is [K, N] ([N, K] if transB) */
    float alpha, beta;
    int64_t c_rs, c_cs;          /* element strides of C over rows and columns (0 = broadcast) */
    qo_k_act act;
    const float *res;            /* NULL, or [M, N] added after the C term (fused Add) */
} qo_k_gemm_params;

/* Y[M, N] = alpha * op(A) op(B) + beta * C (C may be NULL: no term), then p->act. */
void qo_k_gemm_f32(const qo_k_gemm_params *p, const float *A, const float *B, const float *C, float *Y,
                   qo_pool *pool);

#define QO_K_MAX_BATCH_RANK 8
typedef struct qo_k_matmul_params {
    int64_t M, N, K;             /* each batch: A [M, K] x B [K, N] -> Y [M, N], all dense */
    int32_t brank;               /* batch dims of the output (0 = plain 2-D) */
    int64_t bdims[QO_K_MAX_BATCH_RANK];
    int64_t astr[QO_K_MAX_BATCH_RANK], bstr[QO_K_MAX_BATCH_RANK]; /* element strides of A's and B's
                                    batch dims (0 = broadcast); Y's batches are dense in order */
    qo_k_act act;
    const float *res;            /* NULL, or shaped like Y, added after the bias (fused Add) */
} qo_k_matmul_params;

/* Batched MatMul with broadcasting: for every batch index, Y = A B (+ bias[N] per row if bias is
 * not NULL), then p->act. */
void qo_k_matmul_f32(const qo_k_matmul_params *p, const float *A, const float *B, const float *bias,
                     float *Y, qo_pool *pool);

/* Batched MatMul on strided views (a Transpose folded into the operands or the result): for every
 * batch index b (row-major over bdims), Y_b = op(A_b) op(B_b) (+ bias[N] per row) (+ res), then
 * act, where A_b = A + sum(b_i * astr[i]) is [M, K] with row stride lda (transA: stored [K, M],
 * row stride lda), B_b likewise [K, N] / [N, K] with ldb, and Y_b = Y + sum(b_i * ystr[i]) is
 * [M, N] with row stride ldy and unit column stride. res (NULL = none) is laid out as the memory
 * Y points into: element Y[o] gets res[o]. act may also be QO_K_ACT_DIV or QO_K_ACT_GELU. The Y views of distinct batches must not overlap, nor
 * overlap A, B, res. lda/ldb/ldy >= 1 and at least the stored row length (cblas). */
typedef struct qo_k_smm_params {
    int64_t M, N, K;
    int32_t brank;
    int64_t bdims[QO_K_MAX_BATCH_RANK];
    int64_t astr[QO_K_MAX_BATCH_RANK], bstr[QO_K_MAX_BATCH_RANK], ystr[QO_K_MAX_BATCH_RANK];
    int64_t lda, ldb, ldy;
    int32_t transA, transB;
    qo_k_act act;
    int32_t softmax;             /* 1: then Softmax over each row of Y, as qo_k_softmax_f32 (rows whole per task) */
    const float *ln_scale;       /* not NULL: then LayerNormalization of each row of Y, as qo_k_layernorm_f32 */
    const float *ln_bias;        /*   with this Scale [N], B [N] (NULL = none) and epsilon (rows whole per task) */
    float ln_eps;
} qo_k_smm_params;
void qo_k_matmul_strided_f32(const qo_k_smm_params *p, const float *A, const float *B, const float *bias,
                             const float *res, float *Y, qo_pool *pool);

/* ---- pooling -------------------------------------------------------------------------------- */
typedef struct qo_k_pool_params {
    int32_t nsp;                 /* spatial dims, 1..QO_K_MAX_SP */
    int64_t N, C;
    int64_t in[QO_K_MAX_SP], out[QO_K_MAX_SP], ker[QO_K_MAX_SP];
    int64_t str[QO_K_MAX_SP], dil[QO_K_MAX_SP];
    int64_t pad[QO_K_MAX_SP], pad_end[QO_K_MAX_SP];  /* pad_end: AveragePool count_include_pad */
    int32_t count_include_pad;   /* AveragePool: divide by the window size clipped to the padded
                                    input instead of by the number of valid elements */
} qo_k_pool_params;

/* MaxPool (no Indices output) over x[N, C, in...] into y[N, C, out...]. */
void qo_k_maxpool_f32(const qo_k_pool_params *p, const float *x, float *y, qo_pool *pool);
/* AveragePool (sum of the valid elements in window order, divided by the count). */
void qo_k_avgpool_f32(const qo_k_pool_params *p, const float *x, float *y, qo_pool *pool);
/* GlobalAveragePool / GlobalMaxPool: y[nc] = mean / max of x[nc, 0..S) for nc in [0, NC). */
void qo_k_global_avgpool_f32(int64_t NC, int64_t S, const float *x, float *y, qo_pool *pool);
void qo_k_global_maxpool_f32(int64_t NC, int64_t S, const float *x, float *y, qo_pool *pool);

/* ---- softmax -------------------------------------------------------------------------------- */
/* Softmax (is_log = 0) or LogSoftmax over the middle dim of x viewed as [outer, len, inner]. */
void qo_k_softmax_f32(int64_t outer, int64_t len, int64_t inner, int is_log, const float *x, float *y,
                      qo_pool *pool);

/* ---- LayerNormalization -------------------------------------------------------------------- */
/* LayerNormalization of x viewed as [outer, inner] over inner: y = (x - mean) / sqrt(var + eps) *
 * scale[i] (+ bias[i]; bias may be NULL), scale and bias dense [inner]. Sums in 8 partial sums
 * (about 1e-6 relative to the reference kernel). */
void qo_k_layernorm_f32(int64_t outer, int64_t inner, float eps, const float *x, const float *scale,
                        const float *bias, float *y, qo_pool *pool);

/* ---- node adapters (reference-kernel signature) --------------------------------------------- */
#include "runtime/rt.h"

/* Runs node k->n with the optimized kernels: Conv, ConvTranspose, Gemm, MatMul, MaxPool (without
 * Indices), AveragePool, GlobalAveragePool, GlobalMaxPool, Softmax, LogSoftmax, LayerNormalization
 * (one output, Scale/B covering the normalized dims) on float32; `act`
 * (NULL = none) is fused into Conv/Gemm/MatMul. Semantics, output shapes and attribute handling
 * match the reference kernel of the op. Returns QO_ERR_UNSUPPORTED with no diagnostic (and out
 * untouched) for forms it does not cover and for malformed nodes: run the reference kernel then.
 * The training-step ops (QuantGrad, MaxPoolGrad, ConvGradWeight, ReduceSum; no act) go to
 * train_kernels.h's adapter, which writes outputs that arrive as views of the right shape in place. */
qo_status qo_k_node_run(qo_kctx *k, qo_pool *pool, const qo_k_act *act, const qo_tensor *const *in,
                        uint32_t nin, qo_tensor *out, uint32_t nout);
/* True if qo_k_node_run may handle op (it can still decline a particular node). */
bool qo_k_node_supported(qo_op op);

/* A node resolved once (for a compiler: shapes known, buffers not yet): which kernel, its params and
 * the output shape. */
typedef enum qo_k_plan_kind {
    QO_K_PLAN_NONE = 0, QO_K_PLAN_CONV, QO_K_PLAN_CONVTRANSPOSE, QO_K_PLAN_GEMM, QO_K_PLAN_MATMUL, QO_K_PLAN_MAXPOOL,
    QO_K_PLAN_AVGPOOL, QO_K_PLAN_GLOBALAVG, QO_K_PLAN_GLOBALMAX, QO_K_PLAN_SOFTMAX, QO_K_PLAN_LOGSOFTMAX,
    QO_K_PLAN_LAYERNORM, QO_K_PLAN_MATMUL_STRIDED
} qo_k_plan_kind;
typedef struct qo_k_plan {
    int32_t kind; /* qo_k_plan_kind */
    int32_t rank; /* output shape */
    int64_t dims[QO_MAX_RANK];
    union {
        qo_k_conv_params conv;
        qo_k_gemm_params gemm;
        qo_k_matmul_params mm;
        qo_k_smm_params smm; /* made by a compiler from a MATMUL plan (not by qo_k_node_plan) */
        qo_k_pool_params pool;
        struct { int64_t outer, len, inner; } red; /* global pools (outer = N*C, len = spatial), softmax */
        struct { int64_t outer, inner; float eps; } ln; /* LayerNormalization */
    } u;
} qo_k_plan;

/* Resolves node k->n as qo_k_node_run would, from the inputs' elem/rank/dims only (data is not read;
 * shape-only tensors are fine). QO_ERR_UNSUPPORTED (no diagnostic) where qo_k_node_run declines. */
qo_status qo_k_node_plan(qo_kctx *k, const qo_k_act *act, const qo_tensor *const *in, uint32_t nin, uint32_t nout,
                         qo_k_plan *pl);
/* Runs a plan on dense float32 buffers: x is input 0; w input 1 (Conv/ConvTranspose W, Gemm/MatMul
 * B, LayerNormalization Scale); b the Conv/ConvTranspose/LayerNormalization bias or the Gemm C (NULL = none), for MatMul a bias[N] added to every
 * row (a fused Add); res NULL or a tensor shaped like y added after the bias (a fused Add; Conv,
 * ConvTranspose, Gemm, MatMul only); y the output (pl->rank/dims). Buffers must not overlap y. */
void qo_k_plan_run(const qo_k_plan *pl, const float *x, const float *w, const float *b, const float *res, float *y,
                   qo_pool *pool);

#endif
