/* runtime/kernels/layernorm.c — LayerNormalization over the trailing dims, one task per block of
 * rows. The formula is the reference's (runtime/ref/nn.c): mean = sum / n, var = sum((x - mean)^2) / n,
 * y = (x - mean) / sqrt(var + eps) * scale + bias, a float op per step; only the two sums are
 * taken in 8 interleaved partial sums (vectorizable) instead of one running sum, so results agree
 * with the reference to about 1e-6 relative, not bit for bit. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/internal.h"

#include <math.h>

typedef struct ln_job {
    int64_t inner;
    float eps;
    const float *x, *s, *b;
    float *y;
} ln_job;

/* Sum of p[0..n) in 8 partial sums, combined pairwise. */
static inline float sum8(const float *p, int64_t n) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) a[l] += p[i + l];
    for (int l = 0; i < n; i++, l++) a[l] += p[i];
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* Sum of (p[i] - m)^2 over [0, n), as sum8. */
static inline float sqsum8(const float *p, int64_t n, float m) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) {
            float d = p[i + l] - m;
            a[l] += d * d;
        }
    for (int l = 0; i < n; i++, l++) {
        float d = p[i] - m;
        a[l] += d * d;
    }
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

QO_K_SIMD void qo_k_layernorm_rows(const float *x, float *y, int64_t rows, int64_t n, int64_t ldx, int64_t ldy,
                                   float eps, const float *S, const float *B) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xp = x + r * ldx;
        float *yp = y + r * ldy;
        float mean = sum8(xp, n) / (float)n;
        float sd = sqrtf(sqsum8(xp, n, mean) / (float)n + eps);
        if (B)
            for (int64_t i = 0; i < n; i++) yp[i] = (xp[i] - mean) / sd * S[i] + B[i];
        else
            for (int64_t i = 0; i < n; i++) yp[i] = (xp[i] - mean) / sd * S[i];
    }
}

static void ln_task(void *ctx, int64_t begin, int64_t end, int tid) {
    ln_job *j = ctx;
    (void)tid;
    qo_k_layernorm_rows(j->x + begin * j->inner, j->y + begin * j->inner, end - begin, j->inner, j->inner, j->inner,
                        j->eps, j->s, j->b);
}

void qo_k_layernorm_f32(int64_t outer, int64_t inner, float eps, const float *x, const float *scale,
                        const float *bias, float *y, qo_pool *pool) {
    if (outer <= 0 || inner <= 0) return;
    ln_job j = {.inner = inner, .eps = eps, .x = x, .s = scale, .b = bias, .y = y};
    int64_t grain = qo_k_max64(1, 8192 / inner);
    qo_pool_for(pool, outer, grain, ln_task, &j);
}
