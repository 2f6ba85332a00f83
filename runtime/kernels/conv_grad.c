/* runtime/kernels/conv_grad.c — the weight gradient of Conv (ConvGradWeight) on float32: per image
 * and group, im2col of the image into [C/group * kernel, out] and one sgemm dY_n col^T accumulated
 * into the gradient. The batch is split into one contiguous range per pool thread, each summed into
 * its own buffer; the buffers are added in range order, so results depend on the pool size but not
 * on scheduling. */
#include "runtime/kernels/train_kernels.h"

#include <cblas.h>
#include <string.h>

typedef struct cgw_job {
    const qo_k_conv_params *p;
    const float *dy, *x;
    float *dw;        /* range 0 sums here */
    float *part;      /* ranges 1.. sum into part + (r - 1) * wsz */
    int64_t nranges, wsz;
    qo_pool *pool;
} cgw_job;

/* col[(c * ksz + kp) * osz + o] = x[c, o * str - pad + k * dil] or 0 in the padding; spatial dims
 * are padded to three with leading extents 1. */
static void im2col3(const int64_t *in, const int64_t *out, const int64_t *ker, const int64_t *str, const int64_t *dil,
                    const int64_t *pad, int64_t C, const float *x, float *col) {
    int64_t isz = in[0] * in[1] * in[2], osz = out[0] * out[1] * out[2];
    float *row = col;
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * isz;
        for (int64_t kd = 0; kd < ker[0]; kd++)
            for (int64_t kh = 0; kh < ker[1]; kh++)
                for (int64_t kw = 0; kw < ker[2]; kw++, row += osz) {
                    float *r = row;
                    for (int64_t od = 0; od < out[0]; od++) {
                        int64_t id = od * str[0] - pad[0] + kd * dil[0];
                        if (id < 0 || id >= in[0]) {
                            memset(r, 0, (size_t)(out[1] * out[2]) * sizeof(float));
                            r += out[1] * out[2];
                            continue;
                        }
                        for (int64_t oh = 0; oh < out[1]; oh++, r += out[2]) {
                            int64_t ih = oh * str[1] - pad[1] + kh * dil[1];
                            if (ih < 0 || ih >= in[1]) {
                                memset(r, 0, (size_t)out[2] * sizeof(float));
                                continue;
                            }
                            const float *xr = xc + (id * in[1] + ih) * in[2];
                            /* ow in [a, e) reads inside the row: iw = ow * str + w0 in [0, in) */
                            int64_t w0 = kw * dil[2] - pad[2], sw = str[2];
                            int64_t a = w0 < 0 ? (-w0 + sw - 1) / sw : 0;
                            int64_t e = in[2] - 1 - w0 < 0 ? 0 : (in[2] - 1 - w0) / sw + 1;
                            if (a > out[2]) a = out[2];
                            if (e > out[2]) e = out[2];
                            if (e < a) e = a;
                            for (int64_t ow = 0; ow < a; ow++) r[ow] = 0.0f;
                            if (sw == 1) memcpy(r + a, xr + a + w0, (size_t)(e - a) * sizeof(float));
                            else
                                for (int64_t ow = a; ow < e; ow++) r[ow] = xr[ow * sw + w0];
                            for (int64_t ow = e; ow < out[2]; ow++) r[ow] = 0.0f;
                        }
                    }
                }
    }
}

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
    size_t cbytes = (size_t)(CK * osz > 0 ? CK * osz : 1) * sizeof(float);
    float *col = J->pool ? qo_pool_scratch(J->pool, tid, cbytes) : qo_malloc(cbytes);
    for (int64_t r = begin; r < end; r++) {
        float *acc = r == 0 ? J->dw : J->part + (r - 1) * J->wsz;
        int64_t n0 = r * p->N / J->nranges, n1 = (r + 1) * p->N / J->nranges;
        if (n0 == n1) memset(acc, 0, (size_t)J->wsz * sizeof(float));
        for (int64_t n = n0; n < n1; n++)
            for (int64_t grp = 0; grp < p->group; grp++) {
                im2col3(in, out, ker, str, dil, pad, Cg, J->x + (n * p->C + grp * Cg) * isz, col);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Mg, (int)CK, (int)osz, 1.0f,
                            J->dy + (n * p->M + grp * Mg) * osz, (int)osz, col, (int)osz, n == n0 ? 0.0f : 1.0f,
                            acc + grp * Mg * CK, (int)CK);
            }
    }
    if (!J->pool) qo_free(col);
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
    int64_t nr = qo_pool_size(pool);
    if (nr > p->N) nr = p->N;
    cgw_job J = {.p = p, .dy = dy, .x = x, .dw = dw, .nranges = nr, .wsz = wsz, .pool = pool};
    if (nr > 1) J.part = qo_malloc((size_t)((nr - 1) * wsz) * sizeof(float));
    qo_pool_for(pool, nr, 1, cgw_task, &J);
    for (int64_t r = 1; r < nr; r++) {
        const float *s = J.part + (r - 1) * wsz;
        for (int64_t i = 0; i < wsz; i++) dw[i] += s[i];
    }
    qo_free(J.part);
}
