/* runtime/ref/fsum.h — the one summation order of float32 ReduceSum, shared by the reference kernel
 * (runtime/ref/reduce.c) and the optimized one (runtime/kernels/train_kernels.c), which therefore
 * agree bit for bit whatever their blocking and thread count (header-only, static inline).
 *
 * The sum of a sequence x[0..n) (the elements reduced into one output, in row-major order) is
 * defined as:
 *   1. chunks: x is cut into chunks of QO_FSUM_CHUNK elements (the last one may be shorter);
 *   2. lanes: in a chunk, element t goes to lane t % QO_FSUM_LANES; each lane is a float
 *      accumulator starting at +0.0f that adds its elements in order;
 *   3. the lanes are folded by halving: lane[j] += lane[j + h] for h = LANES/2, ..., 2, 1, giving
 *      the chunk's partial (lane[0]);
 *   4. the chunk partials p[0..m) are combined by stride doubling: for h = 1, 2, 4, ...:
 *      p[i] += p[i + h] for every i that is a multiple of 2h with i + h < m; the sum is p[0]
 *      (equivalently, a binary counter over the chunks, qo_fsum_stk below). n == 0 gives +0.0f.
 * Every addition is one float32 addition (no FMA: there are no products; no reassociation), so any
 * code that follows this definition gets the same bits on every ISA. Each lane adds at most
 * CHUNK/LANES = 128 terms, then there are 5 + ceil(log2 m) levels of pairwise additions, so the
 * error is at most about (128 + 5 + log2 m) * 2^-24 * sum |x| (sequential summation: (n - 1) *
 * 2^-24 * sum |x|). The lanes make a chunk's inner loop LANES independent adds (vectorizes without
 * reassociation); the chunks let threads take whole chunks and combine them in a fixed order.
 *
 *   qo_fsum_chunk(x, n)        partial of one chunk x[0..n), n <= QO_FSUM_CHUNK (steps 2-3)
 *   qo_fsum_fold(lane)         step 3 on LANES accumulators
 *   qo_fsum_tree(p, m)         step 4 on an array of chunk partials (overwrites p)
 *   qo_fsum_stk                step 4 streamed: push partials in order, then total
 *   qo_fsum (init/feed/add1/end)  the whole definition streamed over contiguous segments / elements
 *                              (qo_fsum_close_full for callers that fill the lanes themselves)
 *   qo_fsum_strided(x, nd, ext, str)  sum of the elements x[sum idx[i] * str[i]], idx row-major
 *                              over ext[0..nd)
 *   qo_fsum_to_shape(x, ...)   x summed to a broadcastable shape (qo_fsum_axes splits the axes) */
#ifndef QOPT_RUNTIME_REF_FSUM_H
#define QOPT_RUNTIME_REF_FSUM_H

#include <stdint.h>
#include <string.h>

/* always inlined, so a caller compiled for a wider ISA (target_clones) gets vector code */
#if defined(__GNUC__)
#define QO_FSUM_FN static inline __attribute__((always_inline))
#else
#define QO_FSUM_FN static inline
#endif

#define QO_FSUM_LANES 32
#define QO_FSUM_CHUNK 4096 /* a multiple of QO_FSUM_LANES */

/* Step 3: folds lane[0..LANES) by halving and returns the result (lane is overwritten). */
QO_FSUM_FN float qo_fsum_fold(float *lane) {
    for (int h = QO_FSUM_LANES / 2; h >= 1; h /= 2)
        for (int j = 0; j < h; j++) lane[j] += lane[j + h];
    return lane[0];
}

/* Adds x[0..n) to the lanes a[], x[0] going to lane `phase` (phase < LANES): element t to lane
 * (phase + t) % LANES, each lane in order. */
QO_FSUM_FN void qo_fsum_lanes_add(float *restrict a, int64_t phase, const float *restrict x, int64_t n) {
    int64_t t = 0;
    if (phase == 0 && n % QO_FSUM_LANES == 0) { /* the common aligned case without head and tail */
        for (; t < n; t += QO_FSUM_LANES)
            for (int j = 0; j < QO_FSUM_LANES; j++) a[j] += x[t + j];
        return;
    }
    for (; t < n && phase + t < QO_FSUM_LANES && phase; t++) a[phase + t] += x[t];
    for (; t + QO_FSUM_LANES <= n; t += QO_FSUM_LANES)
        for (int j = 0; j < QO_FSUM_LANES; j++) a[j] += x[t + j];
    for (int j = 0; t + j < n; j++) a[j] += x[t + j];
}

/* Steps 2-3: the partial of one chunk x[0..n), 0 <= n <= QO_FSUM_CHUNK. */
QO_FSUM_FN float qo_fsum_chunk(const float *x, int64_t n) {
    float a[QO_FSUM_LANES] = {0};
    qo_fsum_lanes_add(a, 0, x, n);
    return qo_fsum_fold(a);
}

/* Step 4 on the chunk partials p[0..m), m >= 1; p is overwritten. */
QO_FSUM_FN float qo_fsum_tree(float *p, int64_t m) {
    for (int64_t h = 1; h < m; h *= 2)
        for (int64_t i = 0; i + h < m; i += 2 * h) p[i] += p[i + h];
    return p[0];
}

/* Step 4 streamed: a binary counter over the partials pushed so far (v[0..top) holds the sums of
 * aligned power-of-two runs of chunks, largest first). Same result as qo_fsum_tree. */
typedef struct qo_fsum_stk {
    float v[64];
    int top;
    int64_t n; /* partials pushed */
} qo_fsum_stk;

QO_FSUM_FN void qo_fsum_stk_init(qo_fsum_stk *s) { s->top = 0, s->n = 0; }

/* Pushes the partial of the next chunk. */
QO_FSUM_FN void qo_fsum_stk_push(qo_fsum_stk *s, float p) {
    s->v[s->top++] = p;
    for (int64_t c = ++s->n; !(c & 1); c >>= 1, s->top--) s->v[s->top - 2] += s->v[s->top - 1];
}

/* The combination of the partials pushed (+0.0f if none). */
QO_FSUM_FN float qo_fsum_stk_total(const qo_fsum_stk *s) {
    if (!s->top) return 0.0f;
    float t = s->v[s->top - 1];
    for (int i = s->top - 2; i >= 0; i--) t = s->v[i] + t;
    return t;
}

/* The whole definition streamed: the current chunk's lanes and position, and the partials. */
typedef struct qo_fsum {
    float lane[QO_FSUM_LANES];
    int64_t pos; /* elements in the current chunk */
    qo_fsum_stk stk;
} qo_fsum;

QO_FSUM_FN void qo_fsum_init(qo_fsum *s) {
    memset(s->lane, 0, sizeof s->lane);
    s->pos = 0;
    qo_fsum_stk_init(&s->stk);
}

/* Appends the contiguous elements x[0..n). */
QO_FSUM_FN void qo_fsum_feed(qo_fsum *s, const float *x, int64_t n) {
    float a[QO_FSUM_LANES]; /* a local copy, so the lanes stay in registers (x cannot alias them) */
    memcpy(a, s->lane, sizeof a);
    int64_t pos = s->pos;
    while (n > 0) {
        int64_t take = QO_FSUM_CHUNK - pos < n ? QO_FSUM_CHUNK - pos : n;
        qo_fsum_lanes_add(a, pos % QO_FSUM_LANES, x, take);
        pos += take, x += take, n -= take;
        if (pos == QO_FSUM_CHUNK) {
            qo_fsum_stk_push(&s->stk, qo_fsum_fold(a));
            memset(a, 0, sizeof a);
            pos = 0;
        }
    }
    memcpy(s->lane, a, sizeof a);
    s->pos = pos;
}

/* Ends the current chunk once it is full (pos == QO_FSUM_CHUNK): its partial pushed, lanes reset.
 * For callers that add to s->lane themselves and advance s->pos. */
QO_FSUM_FN void qo_fsum_close_full(qo_fsum *s) {
    if (s->pos != QO_FSUM_CHUNK) return;
    qo_fsum_stk_push(&s->stk, qo_fsum_fold(s->lane));
    memset(s->lane, 0, sizeof s->lane);
    s->pos = 0;
}

/* Appends one element. */
QO_FSUM_FN void qo_fsum_add1(qo_fsum *s, float v) {
    s->lane[s->pos++ % QO_FSUM_LANES] += v;
    qo_fsum_close_full(s);
}

/* The sum of everything appended (the state is used up). */
QO_FSUM_FN float qo_fsum_end(qo_fsum *s) {
    if (s->pos) qo_fsum_stk_push(&s->stk, qo_fsum_fold(s->lane));
    return qo_fsum_stk_total(&s->stk);
}

/* The sum, in the order above, of the elements x[sum_i idx[i] * str[i]] with idx running row-major
 * over ext[0..nd) (nd <= 16; nd == 0: the one element x[0]). Runs along a last axis of stride 1
 * are fed as contiguous segments. */
QO_FSUM_FN float qo_fsum_strided(const float *x, int nd, const int64_t *ext, const int64_t *str) {
    qo_fsum s;
    qo_fsum_init(&s);
    if (nd == 0) {
        qo_fsum_add1(&s, x[0]);
        return qo_fsum_end(&s);
    }
    for (int i = 0; i < nd; i++)
        if (ext[i] == 0) return 0.0f;
    int64_t idx[16] = {0}, off = 0, L = ext[nd - 1], ls = str[nd - 1];
    for (;;) {
        if (ls == 1) qo_fsum_feed(&s, x + off, L);
        else
            for (int64_t j = 0; j < L; j++) qo_fsum_add1(&s, x[off + j * ls]);
        int i = nd - 2;
        for (; i >= 0; i--) {
            if (++idx[i] < ext[i]) {
                off += str[i];
                break;
            }
            off -= (ext[i] - 1) * str[i];
            idx[i] = 0;
        }
        if (i < 0) break;
    }
    return qo_fsum_end(&s);
}

/* The axes of x (rank xr <= 16, dims xd) split for summing x to a shape td (rank tr <= xr, aligned
 * to x's trailing axes, each dim 1 or x's): kept axes (td's dim not 1) and reduced ones, each with
 * its extent and stride in x, in x's order. */
QO_FSUM_FN void qo_fsum_axes(int xr, const int64_t *xd, int tr, const int64_t *td, int *nk, int64_t *kext,
                             int64_t *kstr, int *nr, int64_t *rext, int64_t *rstr) {
    int64_t st = 1;
    *nk = *nr = 0;
    for (int i = xr - 1; i >= 0; i--) {
        int ti = i - (xr - tr);
        if ((ti >= 0 ? td[ti] : 1) == 1) rext[*nr] = xd[i], rstr[(*nr)++] = st;
        else kext[*nk] = xd[i], kstr[(*nk)++] = st;
        st *= xd[i];
    }
    for (int a = 0, b = *nk - 1; a < b; a++, b--) { /* collected last axis first: reverse */
        int64_t e = kext[a], s2 = kstr[a];
        kext[a] = kext[b], kstr[a] = kstr[b], kext[b] = e, kstr[b] = s2;
    }
    for (int a = 0, b = *nr - 1; a < b; a++, b--) {
        int64_t e = rext[a], s2 = rstr[a];
        rext[a] = rext[b], rstr[a] = rstr[b], rext[b] = e, rstr[b] = s2;
    }
}

/* x summed to the shape td (as qo_fsum_axes): dst[o] (row-major over td) is the sum in the order
 * above of the elements of x that broadcast from o, taken in row-major order. */
QO_FSUM_FN void qo_fsum_to_shape(const float *x, int xr, const int64_t *xd, int tr, const int64_t *td, float *dst) {
    int64_t kext[16], kstr[16], rext[16], rstr[16], kidx[16] = {0}, m = 1;
    int nk, nr;
    qo_fsum_axes(xr, xd, tr, td, &nk, kext, kstr, &nr, rext, rstr);
    for (int i = 0; i < nk; i++) m *= kext[i];
    for (int64_t o = 0; o < m; o++) {
        int64_t base = 0;
        for (int i = 0; i < nk; i++) base += kidx[i] * kstr[i];
        dst[o] = qo_fsum_strided(x + base, nr, rext, rstr);
        for (int i = nk - 1; i >= 0; i--) {
            if (++kidx[i] < kext[i]) break;
            kidx[i] = 0;
        }
    }
}

#endif
