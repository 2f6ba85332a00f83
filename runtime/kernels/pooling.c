/* runtime/kernels/pooling.c — MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, Softmax and
 * LogSoftmax, one task per (image, channel) plane or softmax row, in the reference's order. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "runtime/kernels/internal.h"

#include <math.h>

typedef struct pool_job {
    const qo_k_pool_params *p;
    qo_k_geom3 g;
    const float *x;
    float *y;
} pool_job;

/* For every output position: the valid tap ranges per dim, then max or sum in (kd, kh, kw) order. */
static void window_task(void *ctx, int64_t begin, int64_t end, bool is_max) {
    pool_job *j = ctx;
    const qo_k_geom3 *g = &j->g;
    int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2], IH = g->in[1], IW = g->in[2];
    for (int64_t t = begin; t < end; t++) {
        const float *xp = j->x + t * g->isz;
        float *yp = j->y + t * g->osz;
        for (int64_t od = 0; od < OD; od++) {
            int64_t ds = od * g->str[0] - g->pad[0], dlo, dhi;
            qo_k_taps(ds, g->dil[0], g->ker[0], g->in[0], &dlo, &dhi);
            for (int64_t oh = 0; oh < OH; oh++) {
                int64_t hs = oh * g->str[1] - g->pad[1], hlo, hhi;
                qo_k_taps(hs, g->dil[1], g->ker[1], IH, &hlo, &hhi);
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t ws = ow * g->str[2] - g->pad[2], wlo, whi;
                    qo_k_taps(ws, g->dil[2], g->ker[2], IW, &wlo, &whi);
                    float r;
                    if (is_max) {
                        r = -INFINITY;
                        bool first = true;
                        for (int64_t kd = dlo; kd < dhi; kd++)
                            for (int64_t kh = hlo; kh < hhi; kh++) {
                                const float *xr = xp + ((ds + kd * g->dil[0]) * IH + hs + kh * g->dil[1]) * IW + ws;
                                for (int64_t kw = wlo; kw < whi; kw++) {
                                    float v = xr[kw * g->dil[2]];
                                    if (first || v > r) r = v, first = false;
                                }
                            }
                    } else {
                        float sum = 0.0f;
                        for (int64_t kd = dlo; kd < dhi; kd++)
                            for (int64_t kh = hlo; kh < hhi; kh++) {
                                const float *xr = xp + ((ds + kd * g->dil[0]) * IH + hs + kh * g->dil[1]) * IW + ws;
                                for (int64_t kw = wlo; kw < whi; kw++) sum += xr[kw * g->dil[2]];
                            }
                        int64_t cnt;
                        if (j->p->count_include_pad) {
                            int64_t a, b, c = 1;
                            qo_k_taps(ds + g->pad[0], g->dil[0], g->ker[0], g->in[0] + g->pad[0] + g->pad_end[0], &a, &b);
                            c *= b - a;
                            qo_k_taps(hs + g->pad[1], g->dil[1], g->ker[1], IH + g->pad[1] + g->pad_end[1], &a, &b);
                            c *= b - a;
                            qo_k_taps(ws + g->pad[2], g->dil[2], g->ker[2], IW + g->pad[2] + g->pad_end[2], &a, &b);
                            cnt = c * (b - a);
                        } else {
                            cnt = (dhi - dlo) * (hhi - hlo) * (whi - wlo);
                        }
                        r = cnt > 0 ? sum / (float)cnt : 0.0f;
                    }
                    yp[(od * OH + oh) * OW + ow] = r;
                }
            }
        }
    }
}

/* MaxPool, 2-D (leading dims of extent 1): per output row, the columns whose whole window lies
 * inside the input row run tap by tap along the row (vectorizable), with the reference's rule
 * r = first tap, then r = v > r ? v : r in (kh, kw) order; the others as window_task does. */
QO_K_SIMD static void max2d_task(void *ctx, int64_t begin, int64_t end, int tid) {
    pool_job *j = ctx;
    const qo_k_geom3 *g = &j->g;
    (void)tid;
    int64_t OH = g->out[1], OW = g->out[2], IH = g->in[1], IW = g->in[2], KW = g->ker[2];
    int64_t sw = g->str[2], dw = g->dil[2], pw = g->pad[2];
    int64_t ia = pw > 0 ? qo_k_cdiv(pw, sw) : 0;
    int64_t last = IW - 1 - (KW - 1) * dw + pw;
    int64_t ib = last < 0 ? 0 : qo_k_min64(OW, last / sw + 1);
    if (ib < ia) ib = ia = 0;
    for (int64_t t = begin; t < end; t++) {
        const float *xp = j->x + t * g->isz;
        float *yp = j->y + t * g->osz;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t hs = oh * g->str[1] - g->pad[1], hlo, hhi;
            qo_k_taps(hs, g->dil[1], g->ker[1], IH, &hlo, &hhi);
            float *restrict yr = yp + oh * OW;
            for (int64_t ow = 0; ow < OW; ow++) { /* edge columns */
                if (ow == ia) ow = ib;
                if (ow >= OW) break;
                int64_t ws = ow * sw - pw, wlo, whi;
                qo_k_taps(ws, dw, KW, IW, &wlo, &whi);
                float r = -INFINITY;
                bool first = true;
                for (int64_t kh = hlo; kh < hhi; kh++) {
                    const float *xr = xp + (hs + kh * g->dil[1]) * IW + ws;
                    for (int64_t kw = wlo; kw < whi; kw++) {
                        float v = xr[kw * dw];
                        if (first || v > r) r = v, first = false;
                    }
                }
                yr[ow] = r;
            }
            if (hlo >= hhi) { /* no rows: -inf, as the reference's empty window */
                for (int64_t ow = ia; ow < ib; ow++) yr[ow] = -INFINITY;
                continue;
            }
            bool first = true;
            for (int64_t kh = hlo; kh < hhi; kh++) {
                const float *xr = xp + (hs + kh * g->dil[1]) * IW - pw;
                for (int64_t kw = 0; kw < KW; kw++) {
                    const float *restrict xs = xr + kw * dw;
                    if (first) {
                        for (int64_t ow = ia; ow < ib; ow++) yr[ow] = xs[ow * sw];
                        first = false;
                    } else if (sw == 2) {
                        for (int64_t ow = ia; ow < ib; ow++) yr[ow] = xs[2 * ow] > yr[ow] ? xs[2 * ow] : yr[ow];
                    } else if (sw == 1) {
                        for (int64_t ow = ia; ow < ib; ow++) yr[ow] = xs[ow] > yr[ow] ? xs[ow] : yr[ow];
                    } else {
                        for (int64_t ow = ia; ow < ib; ow++) yr[ow] = xs[ow * sw] > yr[ow] ? xs[ow * sw] : yr[ow];
                    }
                }
            }
        }
    }
}

static void max_task(void *ctx, int64_t b, int64_t e, int tid) {
    pool_job *j = ctx;
    if (j->g.out[0] == 1 && j->g.in[0] == 1 && j->g.ker[0] == 1 && j->g.pad[0] == 0) max2d_task(ctx, b, e, tid);
    else window_task(ctx, b, e, true);
}
static void avg_task(void *ctx, int64_t b, int64_t e, int tid) { (void)tid, window_task(ctx, b, e, false); }

static void run_window(const qo_k_pool_params *p, const float *x, float *y, qo_pool *pool, qo_pool_fn fn) {
    pool_job j = {.p = p, .x = x, .y = y};
    qo_k_geom3_fill(&j.g, p->nsp, p->in, p->out, p->ker, p->str, p->dil, p->pad, p->pad_end);
    int64_t work = j.g.osz * j.g.ksz;
    qo_pool_for(pool, p->N * p->C, qo_k_max64(1, 32768 / (work ? work : 1)), fn, &j);
}

void qo_k_maxpool_f32(const qo_k_pool_params *p, const float *x, float *y, qo_pool *pool) {
    run_window(p, x, y, pool, max_task);
}

void qo_k_avgpool_f32(const qo_k_pool_params *p, const float *x, float *y, qo_pool *pool) {
    run_window(p, x, y, pool, avg_task);
}

/* ---- global pools --------------------------------------------------------------------------- */
typedef struct global_job {
    int64_t S;
    const float *x;
    float *y;
} global_job;

static void gavg_task(void *ctx, int64_t b, int64_t e, int tid) {
    global_job *j = ctx;
    (void)tid;
    for (int64_t nc = b; nc < e; nc++) {
        const float *xp = j->x + nc * j->S;
        float r = 0.0f;
        for (int64_t i = 0; i < j->S; i++) r += xp[i];
        j->y[nc] = r / (float)j->S;
    }
}

static void gmax_task(void *ctx, int64_t b, int64_t e, int tid) {
    global_job *j = ctx;
    (void)tid;
    for (int64_t nc = b; nc < e; nc++) {
        const float *xp = j->x + nc * j->S;
        float r = -INFINITY;
        for (int64_t i = 0; i < j->S; i++) r = xp[i] > r ? xp[i] : r;
        j->y[nc] = r;
    }
}

void qo_k_global_avgpool_f32(int64_t NC, int64_t S, const float *x, float *y, qo_pool *pool) {
    global_job j = {S, x, y};
    qo_pool_for(pool, NC, qo_k_max64(1, 65536 / (S ? S : 1)), gavg_task, &j);
}

void qo_k_global_maxpool_f32(int64_t NC, int64_t S, const float *x, float *y, qo_pool *pool) {
    global_job j = {S, x, y};
    qo_pool_for(pool, NC, qo_k_max64(1, 65536 / (S ? S : 1)), gmax_task, &j);
}

/* ---- Softmax / LogSoftmax ------------------------------------------------------------------- */
typedef struct softmax_job {
    int64_t len, inner;
    int is_log;
    const float *x;
    float *y;
} softmax_job;

/* Rows t = o * inner + i of the [outer, len, inner] view. */
static void softmax_task(void *ctx, int64_t b, int64_t e, int tid) {
    softmax_job *j = ctx;
    (void)tid;
    int64_t len = j->len, inner = j->inner;
    for (int64_t t = b; t < e; t++) {
        int64_t o = t / inner, i = t % inner;
        const float *xp = j->x + o * len * inner + i;
        float *yp = j->y + o * len * inner + i;
        float mx = -INFINITY;
        for (int64_t k = 0; k < len; k++) mx = xp[k * inner] > mx ? xp[k * inner] : mx;
        float sum = 0.0f;
        if (j->is_log) {
            for (int64_t k = 0; k < len; k++) sum += expf(xp[k * inner] - mx);
            float ls = logf(sum);
            for (int64_t k = 0; k < len; k++) yp[k * inner] = xp[k * inner] - mx - ls;
        } else {
            for (int64_t k = 0; k < len; k++) {
                float ev = expf(xp[k * inner] - mx);
                yp[k * inner] = ev;
                sum += ev;
            }
            for (int64_t k = 0; k < len; k++) yp[k * inner] = yp[k * inner] / sum;
        }
    }
}

void qo_k_softmax_f32(int64_t outer, int64_t len, int64_t inner, int is_log, const float *x, float *y,
                      qo_pool *pool) {
    softmax_job j = {len, inner, is_log, x, y};
    qo_pool_for(pool, outer * inner, qo_k_max64(1, 16384 / (len ? len : 1)), softmax_task, &j);
}
