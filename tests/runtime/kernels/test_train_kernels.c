/* tests/runtime/kernels/test_train_kernels.c — the optimized training-op kernels
 * (runtime/kernels/train_kernels.c, conv_grad.c) against the reference kernels (runtime/ref/train.c,
 * the oracle) on seeded random odd shapes and attributes, each case without a pool and on 2- and
 * 3-thread pools:
 *   QuantGrad   bit for bit (all three outputs, or dX only): per-tensor and per-channel scales on
 *               several axes (runs of one element: the per-element paths), zero points per tensor and
 *               per channel, 1..30 bits, signed/unsigned/narrow, every rounding mode, exact ties,
 *               values far outside the range, NaN and infinities; under each ISA the CPU has;
 *   MaxPoolGrad bit for bit: kernels, strides, pads, dilations, ceil_mode, overlapping windows, the
 *   2x2 / stride 2 path (a third of the cases);
 *   AveragePoolGrad bit for bit: the kernel's disjoint unpadded windows (global pools too) and others;
 *   ReduceSum   (float32, axes input) bit for bit: every subset of axes, negative axes, keepdims;
 *               and larger shapes for each path of the kernel (full sums, [K,] R, [K0,] R, K strips,
 *               R, K, R bias blocks, other patterns) with odd sizes around the 4096-element chunks
 *               and 32 lanes of runtime/ref/fsum.h: bit for bit equal to the reference at 0, 2 and 3
 *               threads (so independent of the thread count), and every output within the float
 *               error bound of the blocked order from a double sum computed here, its total error
 *               below sequential float summation's;
 *   ConvGradWeight to 1e-5 of the largest magnitude (sgemm reorders the sums): 1-D, 2-D, 3-D,
 *               groups, strides, dilations, asymmetric pads, batch 1..6; and larger cases (up to 40
 *               output channels per group, outputs longer than a K block) under each sgemm ISA
 *               (AVX-512, AVX2, OpenBLAS: qo_k_sgemm_isa) the CPU has, with long positive sums
 *               (blocked summation) among them; with fast_conv, Winograd's 3x3 stride-1 shapes and
 *               strided 2-D ones with 9..40 channels and 16..64 filters (conv_strided.c);
 *   ConvTranspose + QuantGrad epilogue (qo_k_conv_params.qg): dX bit for bit the ConvTranspose alone
 *               followed by the reference QuantGrad, dScale within the blocked-sum error bound, on
 *               every kernel path (Winograd F(4x4), the flat and strided flat kernels with the 1x1
 *               sibling, Winograd F(2x2) and im2col with the QuantGrad after), fast on and off.
 * usage: test_train_kernels [-v] [-n CASES] [-s SEED]. Prints "N passed, N failed". */
#include "runtime/kernels/internal.h"
#include "runtime/kernels/train_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool verbose;
static int npass, nfail, nskip;
static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void) {
    uint64_t x = rng_state;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return rng_state = x;
}
static int64_t ri(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }
static float rf(void) { return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static void quiet(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    (void)ud, (void)kind, (void)loc;
    if (verbose) fprintf(stderr, "    diag: %s\n", msg);
}

typedef struct tcase {
    qo_module *m;
    qo_graph *g;
    qo_node n;
    qo_tensor in[5];
    uint32_t nin, nout;
    char desc[256];
} tcase;

static void tc_init(tcase *t, qo_op op, uint32_t nin, uint32_t nout) {
    memset(t, 0, sizeof *t);
    t->m = qo_module_new();
    qo_module_set_opset(t->m, "", 13);
    t->g = qo_graph_new(t->m, NULL, 0, "main");
    int64_t d1 = 1;
    qo_val ins[5];
    for (uint32_t i = 0; i < nin; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "i%u", i);
        ins[i] = qo_graph_add_input(t->g, nm, qo_type_tensor(t->m, QO_F32, 1, &d1, NULL));
    }
    t->n = qo_node_new(t->g, op, op == QO_OP_REDUCESUM ? NULL : "ai.qopt.train", NULL, nin, ins, nout);
    t->nin = nin, t->nout = nout;
}

static float *tc_input(qo_ctx *cx, tcase *t, uint32_t i, int rank, const int64_t *dims) {
    QO_ASSERT(qo_tensor_make(cx, &t->in[i], QO_F32, rank, dims) == QO_OK);
    float *p = t->in[i].data;
    for (int64_t j = 0; j < qo_tensor_numel(&t->in[i]); j++) p[j] = rf();
    return p;
}

static void tc_free(tcase *t) {
    for (int i = 0; i < 5; i++) qo_tensor_free(&t->in[i]);
    qo_module_free(t->m);
}

/* Bitwise equality (NaN equals NaN) when tol < 0, else max |got - want| / max |want| <= tol. */
static bool same(const qo_tensor *got, const qo_tensor *want, double tol, double *err) {
    *err = INFINITY;
    if (got->rank != want->rank || got->elem != want->elem) return false;
    for (int i = 0; i < got->rank; i++)
        if (got->dims[i] != want->dims[i]) return false;
    int64_t n = qo_tensor_numel(want);
    const float *a = got->data, *b = want->data;
    double md = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            if (isnan(a[i]) != isnan(b[i])) return false;
            continue;
        }
        if (tol < 0 && memcmp(&a[i], &b[i], sizeof(float)) != 0) {
            *err = fabs((double)a[i] - (double)b[i]);
            return false;
        }
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md) md = d;
        if (fabs((double)b[i]) > mx) mx = fabs((double)b[i]);
    }
    *err = md == 0 ? 0 : md / (mx > 0 ? mx : 1);
    return tol < 0 || *err <= tol;
}

/* set for the Winograd class: the kernels may sum in another order (qo_kctx.fast_conv) */
static bool fast_conv;

static void run_case(qo_ctx *cx, tcase *t, qo_pool **pools, int npools, double tol) {
    qo_kctx k = {cx, t->g, t->n, 13, fast_conv};
    const qo_tensor *ins[5];
    for (uint32_t i = 0; i < t->nin; i++) ins[i] = &t->in[i];
    qo_tensor want[3] = {{0}};
    qo_ref_kernel ref = qo_ref_kernel_for((qo_op)qo_node_get(t->g, t->n)->op);
    unsigned ne = cx->nerrors;
    if (ref(&k, ins, t->nin, want, t->nout) != QO_OK) { /* the generator made an invalid node */
        cx->nerrors = ne;
        nskip++;
        for (uint32_t o = 0; o < 3; o++) qo_tensor_free(&want[o]);
        if (verbose) fprintf(stderr, "skip %s\n", t->desc);
        return;
    }
    for (int pi = 0; pi < npools; pi++) {
        qo_tensor got[3] = {{0}};
        qo_status s = qo_k_node_run(&k, pools[pi], NULL, ins, t->nin, got, t->nout);
        bool ok = s == QO_OK;
        double err = 0;
        for (uint32_t o = 0; ok && o < t->nout; o++) ok = same(&got[o], &want[o], tol, &err);
        if (ok) {
            npass++;
        } else {
            nfail++;
            fprintf(stderr, "FAIL %s threads=%d: %s (error %.3g)\n", t->desc, qo_pool_size(pools[pi]),
                    s == QO_OK ? "mismatch" : qo_status_str(s), err);
        }
        for (uint32_t o = 0; o < 3; o++) qo_tensor_free(&got[o]);
    }
    for (uint32_t o = 0; o < 3; o++) qo_tensor_free(&want[o]);
}

static const char *const rmodes[] = {"ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN", "CEIL", "FLOOR", "UP", "DOWN"};

static void gen_quantgrad(qo_ctx *cx, qo_pool **pools, int npools) {
    tcase t;
    uint32_t nout = ri(0, 2) ? 3 : (uint32_t)ri(1, 2);
    tc_init(&t, QO_OP_TRAIN_QUANTGRAD, 5, nout);
    /* reduce = 1 (what the autodiff pass emits): dScale / dBitwidth summed to the operands' shapes,
       fused with the elementwise pass where runs are contiguous, else through scratch */
    int reduce = (int)ri(0, 1);
    if (reduce) qo_node_set_attr_int(t.g, t.n, "reduce", 1);
    int relu = (int)ri(0, 1); /* a Relu's mask folded in: dX also zero where x <= 0 */
    if (relu) qo_node_set_attr_int(t.g, t.n, "relu", 1);
    int rank = (int)ri(1, 4);
    int64_t d[4];
    bool big = !ri(0, 3); /* several fsum chunks (4096 elements) per output */
    for (int i = 0; i < rank; i++) d[i] = big ? (i == rank - 1 ? ri(2000, 9000) : ri(1, 3)) : ri(1, i == rank - 1 ? 37 : 7);
    tc_input(cx, &t, 0, rank, d);
    float *x = tc_input(cx, &t, 1, rank, d);
    /* scale: per tensor (rank 0 or [1]) or along one axis of x */
    int kind = (int)ri(0, 2), axis = (int)ri(0, rank - 1);
    float *s;
    if (kind == 0) {
        s = tc_input(cx, &t, 2, 0, NULL);
    } else if (kind == 1) {
        int64_t one = 1;
        s = tc_input(cx, &t, 2, 1, &one);
    } else {
        int64_t sd[4];
        for (int i = 0; i < rank; i++) sd[i] = i == axis ? d[i] : 1;
        int drop = (int)ri(0, axis); /* leading 1s may be left out (numpy broadcasting) */
        s = tc_input(cx, &t, 2, rank - drop, sd + drop);
    }
    int64_t ns = qo_tensor_numel(&t.in[2]);
    for (int64_t i = 0; i < ns; i++) s[i] = ri(0, 5) ? 0.01f + fabsf(s[i]) * 0.5f : 1.0f / (float)(1 << ri(1, 6));
    /* zero point: per tensor, or along the scale's axis (per-element paths of short runs) */
    bool zaxis = kind == 2 && !ri(0, 3);
    float *z;
    if (zaxis) {
        int64_t zd[4];
        for (int i = 0; i < rank; i++) zd[i] = i == axis ? d[i] : 1;
        z = tc_input(cx, &t, 3, rank, zd);
    } else {
        z = tc_input(cx, &t, 3, 0, NULL);
    }
    for (int64_t i = 0; i < qo_tensor_numel(&t.in[3]); i++) z[i] = ri(0, 2) ? 0.0f : (float)ri(-3, 3);
    float *b = tc_input(cx, &t, 4, 0, NULL);
    static const int bits[] = {1, 2, 3, 4, 8, 16, 24, 25, 30};
    b[0] = (float)bits[ri(0, 8)];
    bool is_signed = ri(0, 1), narrow = ri(0, 1);
    qo_node_set_attr_int(t.g, t.n, "signed", is_signed);
    qo_node_set_attr_int(t.g, t.n, "narrow", narrow);
    const char *rm = rmodes[ri(0, 7)];
    if (ri(0, 3)) qo_node_set_attr_string(t.g, t.n, "rounding_mode", rm, strlen(rm));
    else rm = "(default)";
    double range = ldexp(1.0, (int)b[0]);
    int64_t inner = 1;
    for (int i = axis + 1; i < rank; i++) inner *= d[i];
    int64_t n = qo_tensor_numel(&t.in[1]);
    for (int64_t i = 0; i < n; i++) {
        /* x / s around the integer grid: exact ties, integers, far outside, specials */
        switch (ri(0, 9)) {
        case 0: x[i] = (float)((double)ri(-40, 40) + 0.5); break;
        case 1: x[i] = (float)ri(-40, 40); break;
        case 2: x[i] = (float)(rf() * 4 * range); break;
        case 3: x[i] = ri(0, 20) ? rf() * 1e-3f : (ri(0, 2) ? NAN : ri(0, 1) ? INFINITY : -INFINITY); break;
        case 4: x[i] = -0.0f; break;
        default: x[i] = (float)(rf() * range * 0.6); break;
        }
        /* scaled by the element's scale so that x / s lands on the grid values */
        if (isfinite(x[i])) x[i] *= s[kind == 2 ? (i / inner) % d[axis] : 0];
    }
    snprintf(t.desc, sizeof t.desc, "QuantGrad rank %d dims %lld.. scale kind %d axis %d bits %g signed %d narrow %d "
             "round %s z %g%s nout %u reduce %d relu %d isa %d", rank, (long long)d[0], kind, axis, (double)b[0], is_signed,
             narrow, rm, (double)z[0], zaxis ? " (per channel)" : "", nout, reduce, relu, qo_k_sgemm_isa(-1));
    run_case(cx, &t, pools, npools, -1);
    tc_free(&t);
}

static void gen_maxpoolgrad(qo_ctx *cx, qo_pool **pools, int npools) {
    tcase t;
    tc_init(&t, QO_OP_TRAIN_MAXPOOLGRAD, 2, 1);
    int64_t xd[4] = {ri(1, 3), ri(1, 4), ri(1, 13), ri(1, 13)};
    int64_t k[2] = {ri(1, 4), ri(1, 4)}, st[2] = {ri(1, 3), ri(1, 3)}, dl[2] = {ri(1, 2), ri(1, 2)};
    int64_t p[4] = {ri(0, k[0] - 1), ri(0, k[1] - 1), ri(0, k[0] - 1), ri(0, k[1] - 1)};
    int ceil = (int)ri(0, 1);
    if (!ri(0, 2)) { /* the 2x2 / stride 2 window of most CNNs (its own kernel path), odd extents too */
        k[0] = k[1] = st[0] = st[1] = 2, dl[0] = dl[1] = 1, ceil = 0;
        p[0] = p[1] = p[2] = p[3] = 0;
    }
    qo_node_set_attr_ints(t.g, t.n, "kernel_shape", k, 2);
    qo_node_set_attr_ints(t.g, t.n, "strides", st, 2);
    qo_node_set_attr_ints(t.g, t.n, "dilations", dl, 2);
    qo_node_set_attr_ints(t.g, t.n, "pads", p, 4);
    qo_node_set_attr_int(t.g, t.n, "ceil_mode", ceil);
    int64_t od[4] = {xd[0], xd[1], 0, 0};
    for (int i = 0; i < 2; i++) {
        int64_t span = xd[2 + i] + p[i] + p[2 + i] - dl[i] * (k[i] - 1) - 1;
        if (span < 0) {
            nskip++;
            tc_free(&t);
            return;
        }
        od[2 + i] = (ceil ? (span + st[i] - 1) / st[i] : span / st[i]) + 1;
        if (ceil && (od[2 + i] - 1) * st[i] >= xd[2 + i] + p[i]) od[2 + i]--;
    }
    float *dy = tc_input(cx, &t, 0, 4, od);
    for (int64_t i = 0; i < qo_tensor_numel(&t.in[0]); i++)
        if (!ri(0, 7)) dy[i] = -0.0f; /* the reference's double sum makes it +0 */
    float *x = tc_input(cx, &t, 1, 4, xd);
    for (int64_t i = 0; i < qo_tensor_numel(&t.in[1]); i++)
        if (!ri(0, 3)) x[i] = (float)ri(-2, 2); /* equal values: the first maximum wins */
    snprintf(t.desc, sizeof t.desc, "MaxPoolGrad x %lldx%lldx%lldx%lld k %lldx%lld s %lldx%lld d %lldx%lld p %lld,%lld,%lld,%lld ceil %d",
             (long long)xd[0], (long long)xd[1], (long long)xd[2], (long long)xd[3], (long long)k[0], (long long)k[1],
             (long long)st[0], (long long)st[1], (long long)dl[0], (long long)dl[1], (long long)p[0], (long long)p[1],
             (long long)p[2], (long long)p[3], ceil);
    run_case(cx, &t, pools, npools, -1);
    tc_free(&t);
}

/* AveragePoolGrad in the kernel's geometry (no pads, stride >= kernel, windows inside X: global pools
 * and 2x2 / stride 2 among them; the JIT runs the reference for any other, which qo_k_node_run
 * reports as unsupported). */
static void gen_avgpoolgrad(qo_ctx *cx, qo_pool **pools, int npools) {
    tcase t;
    tc_init(&t, QO_OP_TRAIN_AVERAGEPOOLGRAD, 2, 1);
    int64_t xd[4] = {ri(1, 3), ri(1, 4), ri(1, 13), ri(1, 13)};
    int64_t k[2] = {ri(1, 4), ri(1, 4)}, st[2] = {ri(1, 3), ri(1, 3)};
    int64_t p[4];
    int ceil = 0, incl = (int)ri(0, 1);
    for (int i = 0; i < 2; i++) {
        k[i] = ri(1, xd[2 + i] < 4 ? xd[2 + i] : 4), st[i] = k[i] + ri(0, 1);
        if (!ri(0, 3)) k[i] = st[i] = xd[2 + i]; /* a global pool */
    }
    p[0] = p[1] = p[2] = p[3] = 0;
    qo_node_set_attr_ints(t.g, t.n, "kernel_shape", k, 2);
    qo_node_set_attr_ints(t.g, t.n, "strides", st, 2);
    qo_node_set_attr_ints(t.g, t.n, "pads", p, 4);
    qo_node_set_attr_int(t.g, t.n, "ceil_mode", ceil);
    qo_node_set_attr_int(t.g, t.n, "count_include_pad", incl);
    int64_t od[4] = {xd[0], xd[1], 0, 0};
    for (int i = 0; i < 2; i++) {
        int64_t span = xd[2 + i] + p[i] + p[2 + i] - k[i];
        if (span < 0) {
            nskip++;
            tc_free(&t);
            return;
        }
        od[2 + i] = (ceil ? (span + st[i] - 1) / st[i] : span / st[i]) + 1;
        if (ceil && (od[2 + i] - 1) * st[i] >= xd[2 + i] + p[i]) od[2 + i]--;
    }
    float *dy = tc_input(cx, &t, 0, 4, od);
    for (int64_t i = 0; i < qo_tensor_numel(&t.in[0]); i++)
        if (!ri(0, 7)) dy[i] = -0.0f; /* the reference's double sum makes it +0 */
    tc_input(cx, &t, 1, 4, xd);
    snprintf(t.desc, sizeof t.desc, "AveragePoolGrad x %lldx%lldx%lldx%lld k %lldx%lld s %lldx%lld p %lld,%lld,%lld,%lld ceil %d incl %d",
             (long long)xd[0], (long long)xd[1], (long long)xd[2], (long long)xd[3], (long long)k[0], (long long)k[1],
             (long long)st[0], (long long)st[1], (long long)p[0], (long long)p[1], (long long)p[2], (long long)p[3], ceil,
             incl);
    run_case(cx, &t, pools, npools, -1);
    tc_free(&t);
}

/* size 1: up to 40 output channels per group (several sgemm column tiles, 16-wide tails) and long
 * outputs (several K blocks); size 2: 1-D, 180k..320k positive products per weight, where one
 * running float sum would be off by more than the tolerance (the kernel sums blocks); size 3:
 * 1-D/2-D "same" convolutions (stride 1, pads dil * (k - 1) / 2), ResNet's shape; size 4: conv_flat.c's
 * direct path (one group, stride 1, up to 8 input channels, C * taps * M mostly >= 256). */
static void gen_convgradweight(qo_ctx *cx, qo_pool **pools, int npools, int size) {
    tcase t;
    tc_init(&t, QO_OP_TRAIN_CONVGRADWEIGHT, 3, 1);
    bool big = size == 1 || size == 3;
    int nsp = size == 2 ? 1 : size == 3 ? (int)ri(1, 2) : (int)ri(1, 3);
    int64_t grp = ri(1, 3), N = ri(1, big ? 4 : 6), Cg = ri(1, big ? 9 : 4), Mg = ri(1, big ? 40 : 5);
    if (size == 2) grp = 1, N = ri(6, 8), Cg = ri(1, 2), Mg = ri(1, 3);
    if (size == 4) grp = 1, N = ri(1, 9), Cg = ri(1, 8), Mg = ri(4, 24), nsp = (int)ri(1, 2);
    bool packed = size == 5 && !ri(0, 2); /* outputs 7, 8, 15, 16 wide: tile rows packed 4 or 2 */
    if (size == 5) grp = 1, N = ri(1, 6), Cg = packed ? ri(32, 48) : ri(8, 40), Mg = packed ? ri(32, 48) : ri(8, 40), nsp = 2;
    if (size == 6) grp = 1, N = ri(1, 5), Cg = ri(9, 40), Mg = 16 * ri(1, 4), nsp = 2; /* conv_strided.c */
    bool batch = size == 5 && !packed && ri(0, 1); /* conv_wino4.c's F(3x3, 4x4): 16 images to a vector */
    if (batch) {
        static const int64_t ns[] = {12, 16, 24, 28, 40};
        N = ns[ri(0, 4)], Cg = ri(8, 24), Mg = ri(8, 24);
    }
    int64_t xd[5] = {N, Cg * grp}, wd[5] = {Mg * grp, Cg}, yd[5] = {N, Mg * grp};
    int64_t st[3], dl[3], p[6];
    for (int i = 0; i < nsp; i++) {
        int64_t maxin = big ? (nsp == 3 ? 9 : nsp == 2 ? 24 : 400) : nsp == 3 ? 6 : nsp == 2 ? 11 : 19;
        xd[2 + i] = ri(1, maxin);
        wd[2 + i] = ri(1, 4);
        if (size == 2) xd[2 + i] = ri(30000, 40000), wd[2 + i] = ri(1, 3);
        st[i] = size == 2 ? 1 : ri(1, 3), dl[i] = size == 2 ? 1 : ri(1, 2);
        p[i] = ri(0, 2), p[nsp + i] = ri(0, 2);
        if (size == 3) {
            wd[2 + i] = 2 * ri(0, 2) + 1, st[i] = 1;
            p[i] = p[nsp + i] = dl[i] * (wd[2 + i] - 1) / 2;
            if (i == nsp - 1) xd[2 + i] = ri(1, 40);
        }
        if (size == 4) {
            xd[2 + i] = ri(1, 36), wd[2 + i] = ri(nsp == 1 ? 3 : 2, 6), st[i] = 1, dl[i] = ri(1, 2);
            p[i] = ri(0, wd[2 + i] - 1), p[nsp + i] = ri(0, wd[2 + i] - 1);
        }
        if (size == 5) { /* Winograd F(3x3, 2x2) or F(3x3, 4x4) (fast_conv): 3x3 stride 1, mostly */
            xd[2 + i] = ri(1, 40), wd[2 + i] = ri(0, 9) ? 3 : ri(1, 4), st[i] = 1, dl[i] = 1;
            p[i] = ri(0, 2), p[nsp + i] = ri(0, 2);
            if (packed) {
                static const int64_t ow[] = {7, 8, 15, 16};
                wd[2 + i] = 3, xd[2 + i] = ow[ri(0, 3)] - p[i] - p[nsp + i] + 2;
                if (xd[2 + i] < 1) xd[2 + i] = 1;
            }
            if (batch) xd[2 + i] = ri(6, 30);
        }
        if (size == 6) /* strided, any kernel and pads: the weight gradient without im2col (fast_conv) */
            xd[2 + i] = ri(1, 33), wd[2 + i] = ri(1, 4), st[i] = ri(2, 3), dl[i] = 1, p[i] = ri(0, 2), p[nsp + i] = ri(0, 2);
        int64_t span = xd[2 + i] + p[i] + p[nsp + i] - dl[i] * (wd[2 + i] - 1) - 1;
        if (span < 0) {
            nskip++;
            tc_free(&t);
            return;
        }
        yd[2 + i] = span / st[i] + 1;
    }
    qo_node_set_attr_ints(t.g, t.n, "strides", st, (uint32_t)nsp);
    qo_node_set_attr_ints(t.g, t.n, "dilations", dl, (uint32_t)nsp);
    qo_node_set_attr_ints(t.g, t.n, "pads", p, (uint32_t)(2 * nsp));
    qo_node_set_attr_int(t.g, t.n, "group", grp);
    float *dy = tc_input(cx, &t, 0, nsp + 2, yd), *x = tc_input(cx, &t, 1, nsp + 2, xd);
    tc_input(cx, &t, 2, nsp + 2, wd);
    if (size == 2) {
        for (int64_t i = 0; i < qo_tensor_numel(&t.in[0]); i++) dy[i] = 0.5f + 0.5f * dy[i];
        for (int64_t i = 0; i < qo_tensor_numel(&t.in[1]); i++) x[i] = 0.5f + 0.5f * x[i];
    }
    snprintf(t.desc, sizeof t.desc,
             "ConvGradWeight isa %d nsp %d N %lld C %lld M %lld group %lld in %lld k %lld s %lld d %lld p %lld,%lld",
             qo_k_sgemm_isa(-1), nsp, (long long)N, (long long)xd[1], (long long)wd[0], (long long)grp, (long long)xd[2], (long long)wd[2],
             (long long)st[0], (long long)dl[0], (long long)p[0], (long long)p[nsp]);
    run_case(cx, &t, pools, npools, 1e-5);
    tc_free(&t);
}

static void gen_reducesum(qo_ctx *cx, qo_pool **pools, int npools) {
    tcase t;
    tc_init(&t, QO_OP_REDUCESUM, 2, 1);
    int rank = (int)ri(1, 5);
    int64_t d[5], ax[5];
    for (int i = 0; i < rank; i++) d[i] = ri(1, 9);
    float *x = tc_input(cx, &t, 0, rank, d);
    for (int64_t i = 0; i < qo_tensor_numel(&t.in[0]); i++) x[i] *= (float)(1 << ri(0, 12)); /* rounding matters */
    int nax = 0;
    for (int i = 0; i < rank; i++)
        if (ri(0, 1)) ax[nax++] = ri(0, 1) ? i : i - rank;
    if (!nax) ax[nax++] = ri(0, rank - 1);
    QO_ASSERT(qo_tensor_make(cx, &t.in[1], QO_I64, 1, (int64_t[]){nax}) == QO_OK);
    memcpy(t.in[1].data, ax, sizeof(int64_t) * (size_t)nax);
    int keep = (int)ri(0, 1);
    qo_node_set_attr_int(t.g, t.n, "keepdims", keep);
    snprintf(t.desc, sizeof t.desc, "ReduceSum rank %d (%lld..) %d axes first %lld keepdims %d", rank, (long long)d[0],
             nax, (long long)ax[0], keep);
    run_case(cx, &t, pools, npools, -1);
    tc_free(&t);
}

/* ReduceSum of x[dims] over the axes in mask (keepdims 0/1): the kernel at every pool size bit for
 * bit equal to the reference (hence to each other), then every output against a double sum taken
 * here. The error bound: fsum.h's order adds, on any path from an element to the result, at most
 * min(n - 1, ceil(min(n, 4096) / 32) - 1 + 5 + ceil(log2(chunks))) times (lane, 5 lane folds, chunk
 * tree; an addition of +0 from an empty lane is exact, and no tree over n terms is deeper than
 * n - 1), so |sum - exact| <= gamma_k * sum |x| with gamma_k = k u / (1 - k u), u = 2^-24 (Higham,
 * Accuracy and Stability, 4.2); the double sum's own error (n 2^-53 sum |x|) is added. The
 * sequential float sum's error is accumulated too: *blk_err / *seq_err get the summed errors. */
static void rs_shape(qo_ctx *cx, qo_pool **pools, int npools, int rank, const int64_t *d, const bool *mask, int keep,
                     bool positive, double *blk_err, double *seq_err) {
    tcase t;
    tc_init(&t, QO_OP_REDUCESUM, 2, 1);
    float *x = tc_input(cx, &t, 0, rank, d);
    int64_t nx = qo_tensor_numel(&t.in[0]);
    for (int64_t i = 0; i < nx; i++) x[i] = (positive ? fabsf(x[i]) : x[i]) * (float)(1 << ri(0, 12));
    int64_t ax[8];
    int nax = 0, p = snprintf(t.desc, sizeof t.desc, "ReduceSum dims");
    for (int i = 0; i < rank; i++) {
        if (mask[i]) ax[nax++] = ri(0, 1) ? i : i - rank;
        p += snprintf(t.desc + p, sizeof t.desc - (size_t)p, " %s%lld", mask[i] ? "R" : "", (long long)d[i]);
    }
    snprintf(t.desc + p, sizeof t.desc - (size_t)p, " keepdims %d%s", keep, positive ? " positive" : "");
    QO_ASSERT(qo_tensor_make(cx, &t.in[1], QO_I64, 1, (int64_t[]){nax}) == QO_OK);
    memcpy(t.in[1].data, ax, sizeof(int64_t) * (size_t)nax);
    qo_node_set_attr_int(t.g, t.n, "keepdims", keep);
    qo_kctx k = {cx, t.g, t.n, 13, false};
    const qo_tensor *ins[2] = {&t.in[0], &t.in[1]};
    qo_tensor want = {0};
    QO_ASSERT(qo_ref_kernel_for(QO_OP_REDUCESUM)(&k, ins, 2, &want, 1) == QO_OK);
    int64_t ny = qo_tensor_numel(&want), n = ny ? nx / ny : 0;
    bool ok = true;
    for (int pi = 0; pi < npools; pi++) {
        qo_tensor got = {0};
        double err = 0;
        if (qo_k_node_run(&k, pools[pi], NULL, ins, 2, &got, 1) != QO_OK || !same(&got, &want, -1, &err)) {
            fprintf(stderr, "FAIL %s threads=%d: not bit for bit the reference (error %.3g)\n", t.desc,
                    qo_pool_size(pools[pi]), err);
            ok = false;
        }
        qo_tensor_free(&got);
    }
    /* exact (double) and sequential float sums per output, by the output index of every element */
    double *ex = calloc((size_t)ny, sizeof(double)), *ab = calloc((size_t)ny, sizeof(double));
    float *sq = calloc((size_t)ny, sizeof(float));
    int64_t idx[8] = {0};
    for (int64_t i = 0; i < nx; i++) {
        int64_t o = 0;
        for (int a = 0; a < rank; a++)
            if (!mask[a]) o = o * d[a] + idx[a];
        ex[o] += x[i], ab[o] += fabs(x[i]), sq[o] += x[i];
        for (int a = rank - 1; a >= 0 && ++idx[a] == d[a]; a--) idx[a] = 0;
    }
    int64_t chunks = (n + 4095) / 4096, depth = (((n < 4096 ? n : 4096) + 31) / 32) - 1 + 5, lg = 0;
    while ((1ll << lg) < chunks) lg++;
    depth += lg;
    if (depth > n - 1) depth = n - 1;
    double u = 0x1p-24, gam = depth * u / (1 - depth * u);
    const float *y = want.data;
    bool in_bound = true;
    for (int64_t o = 0; o < ny; o++) {
        double e = fabs((double)y[o] - ex[o]), bound = gam * ab[o] + (double)n * 0x1p-53 * ab[o];
        *blk_err += e, *seq_err += fabs((double)sq[o] - ex[o]);
        if (e > bound && in_bound) {
            in_bound = ok = false;
            fprintf(stderr, "FAIL %s: output %lld = %.9g, double sum %.17g: error %.3g above the bound %.3g\n", t.desc,
                    (long long)o, (double)y[o], ex[o], e, bound);
        }
    }
    if (ok) npass++;
    else nfail++;
    if (verbose) fprintf(stderr, "%s %s\n", ok ? "ok  " : "FAIL", t.desc);
    free(ex), free(ab), free(sq);
    qo_tensor_free(&want);
    tc_free(&t);
}

/* The ReduceSum paths at sizes around the chunk (4096) and lane (32) boundaries; positive inputs
 * (no cancellation: sequential summation's error grows with n) and signed ones. */
static void rs_paths(qo_ctx *cx, qo_pool **pools, int npools) {
    static const int64_t lens[] = {1, 3, 31, 32, 33, 100, 4095, 4096, 4097, 8191, 8192, 12293, 20480, 29000, 70001};
    double blk = 0, seq = 0;
    for (int pos = 0; pos < 2; pos++) {
        for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) { /* R (full sum) and K, R */
            rs_shape(cx, pools, npools, 1, (int64_t[]){lens[i]}, (bool[]){true}, (int)ri(0, 1), pos, &blk, &seq);
            if (lens[i] < 30000)
                rs_shape(cx, pools, npools, 3, (int64_t[]){ri(2, 5), 1, lens[i]}, (bool[]){false, true, true},
                         (int)ri(0, 1), pos, &blk, &seq);
        }
        /* a large full sum over several axes (tensor of rank 4, the activation-scale gradient) */
        rs_shape(cx, pools, npools, 4, (int64_t[]){8, 16, 33, 31}, (bool[]){true, true, true, true}, 0, pos, &blk,
                 &seq);
        /* R, K strips (K odd: partial strips) and K0, R, K */
        static const int64_t rows[] = {1, 7, 33, 4096, 4100, 9000};
        for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
            int64_t K = i % 2 ? ri(1, 15) : ri(17, 40);
            rs_shape(cx, pools, npools, 2, (int64_t[]){rows[i], K}, (bool[]){true, false}, (int)ri(0, 1), pos, &blk,
                     &seq);
            if (rows[i] < 5000)
                rs_shape(cx, pools, npools, 3, (int64_t[]){ri(2, 3), rows[i], ri(1, 20)}, (bool[]){false, true, false},
                         (int)ri(0, 1), pos, &blk, &seq);
        }
        /* R, K, R bias gradients: runs of odd lengths (chunks and lanes not aligned with runs), channel
           counts around the 32-output blocks, N H W split over several axes */
        static const int64_t runs[][3] = {{150, 3, 33}, {64, 33, 64}, {7, 65, 100}, {5, 1, 9000}, {2, 40, 4097},
                                          {64, 16, 256}, {3, 31, 1}};
        for (size_t i = 0; i < sizeof runs / sizeof *runs; i++)
            rs_shape(cx, pools, npools, 3, runs[i], (bool[]){true, false, true}, (int)ri(0, 1), pos, &blk, &seq);
        rs_shape(cx, pools, npools, 4, (int64_t[]){32, 17, 12, 11}, (bool[]){true, false, true, true}, 1, pos, &blk,
                 &seq);
        /* other patterns: K, R, K, R and R, K, R, K (a strided innermost run) */
        rs_shape(cx, pools, npools, 4, (int64_t[]){3, 70, 5, 33}, (bool[]){false, true, false, true}, 0, pos, &blk,
                 &seq);
        rs_shape(cx, pools, npools, 4, (int64_t[]){70, 5, 33, 3}, (bool[]){true, false, true, false}, 1, pos, &blk,
                 &seq);
    }
    /* over all these cases the blocked order must be more accurate than sequential summation */
    if (blk < seq) npass++;
    else nfail++, fprintf(stderr, "FAIL ReduceSum total error %.3g not below sequential summation's %.3g\n", blk, seq);
    if (verbose) fprintf(stderr, "ReduceSum total error %.3g, sequential float %.3g\n", blk, seq);
}

/* A ConvGradWeight node of kernel `ker` over x/dy shaped xd/yd (strides st, dilations dl, pads pd),
 * its reference result into *want; false (skipped) if the reference declines. */
static bool ref_cgw(qo_ctx *cx, int nsp, const int64_t *xd, const float *x, const int64_t *yd, const float *dy,
                    const int64_t *wd, const int64_t *st, const int64_t *dl, const int64_t *pd, qo_tensor *want) {
    tcase t;
    tc_init(&t, QO_OP_TRAIN_CONVGRADWEIGHT, 3, 1);
    qo_node_set_attr_ints(t.g, t.n, "strides", st, (uint32_t)nsp);
    qo_node_set_attr_ints(t.g, t.n, "dilations", dl, (uint32_t)nsp);
    qo_node_set_attr_ints(t.g, t.n, "pads", pd, (uint32_t)(2 * nsp));
    float *tdy = tc_input(cx, &t, 0, nsp + 2, yd), *tx = tc_input(cx, &t, 1, nsp + 2, xd);
    memcpy(tdy, dy, (size_t)qo_tensor_numel(&t.in[0]) * sizeof(float));
    memcpy(tx, x, (size_t)qo_tensor_numel(&t.in[1]) * sizeof(float));
    tc_input(cx, &t, 2, nsp + 2, wd);
    qo_kctx k = {cx, t.g, t.n, 13, false};
    const qo_tensor *ins[3] = {&t.in[0], &t.in[1], &t.in[2]};
    unsigned ne = cx->nerrors;
    bool ok = qo_ref_kernel_for(QO_OP_TRAIN_CONVGRADWEIGHT)(&k, ins, 3, want, 1) == QO_OK;
    cx->nerrors = ne;
    tc_free(&t);
    return ok;
}

/* qo_k_convgradweight_sib_f32: a convolution with a centered odd kernel and its 1x1 sibling (same
 * strides, no padding) on the same input, against the reference ConvGradWeight of each; the
 * sibling's gradient also bit-identical to qo_k_convgradweight_f32 on it alone. resnet: ResNet's
 * 3x3 stride-2 layers with their downsample (the fused im2col path). */
static void gen_cgw_sib(qo_ctx *cx, qo_pool **pools, int npools, bool resnet) {
    int nsp = resnet ? 2 : (int)ri(1, 2);
    int64_t N = ri(1, 5), C = resnet ? 16 * ri(1, 2) : ri(1, 20), M = resnet ? 2 * C : ri(1, 20),
            M2 = resnet ? M : ri(1, 20);
    int64_t xd[4] = {N, C}, yd[4] = {N, M}, y2d[4] = {N, M2}, wd[4] = {M, C}, w2d[4] = {M2, C, 1, 1};
    int64_t st[2], dl[2], pd[4], one[2] = {1, 1}, zero[4] = {0, 0, 0, 0};
    for (int i = 0; i < nsp; i++) {
        wd[2 + i] = resnet ? 3 : 2 * ri(0, 2) + 1;
        st[i] = resnet ? 2 : ri(1, 3), dl[i] = resnet ? 1 : ri(1, 2);
        pd[i] = pd[nsp + i] = dl[i] * (wd[2 + i] - 1) / 2;
        xd[2 + i] = resnet ? 8 * ri(1, 4) : ri(1, nsp == 1 ? 40 : 18);
        yd[2 + i] = y2d[2 + i] = (xd[2 + i] - 1) / st[i] + 1;
    }
    int64_t nx = N * C, ny = N * M, ny2 = N * M2;
    for (int i = 0; i < nsp; i++) nx *= xd[2 + i], ny *= yd[2 + i], ny2 *= yd[2 + i];
    float *x = malloc((size_t)nx * 4), *dy = malloc((size_t)ny * 4), *dy2 = malloc((size_t)ny2 * 4);
    for (int64_t i = 0; i < nx; i++) x[i] = rf();
    for (int64_t i = 0; i < ny; i++) dy[i] = rf();
    for (int64_t i = 0; i < ny2; i++) dy2[i] = rf();
    qo_tensor want = {0}, want2 = {0};
    char desc[200];
    snprintf(desc, sizeof desc, "ConvGradWeight+1x1 sibling nsp %d N %lld C %lld M %lld M2 %lld in %lld k %lld s %lld d %lld",
             nsp, (long long)N, (long long)C, (long long)M, (long long)M2, (long long)xd[2], (long long)wd[2],
             (long long)st[0], (long long)dl[0]);
    if (!ref_cgw(cx, nsp, xd, x, yd, dy, wd, st, dl, pd, &want) ||
        !ref_cgw(cx, nsp, xd, x, y2d, dy2, w2d, st, one, zero, &want2)) {
        nskip++;
    } else {
        qo_k_conv_params p = {.nsp = nsp, .N = N, .C = C, .M = M, .group = 1, .fast = fast_conv};
        for (int i = 0; i < nsp; i++)
            p.in[i] = xd[2 + i], p.out[i] = yd[2 + i], p.ker[i] = wd[2 + i], p.str[i] = st[i], p.dil[i] = dl[i],
            p.pad[i] = pd[i];
        qo_k_conv_params q = p;
        q.M = M2;
        for (int i = 0; i < nsp; i++) q.ker[i] = 1, q.dil[i] = 1, q.pad[i] = 0;
        QO_ASSERT(qo_k_conv_sib_ok(&p));
        for (int pi = 0; pi < npools; pi++) {
            qo_tensor got = {0}, got2 = {0}, alone = {0};
            QO_ASSERT(qo_tensor_make(cx, &got, QO_F32, want.rank, want.dims) == QO_OK);
            QO_ASSERT(qo_tensor_make(cx, &got2, QO_F32, want2.rank, want2.dims) == QO_OK);
            QO_ASSERT(qo_tensor_make(cx, &alone, QO_F32, want2.rank, want2.dims) == QO_OK);
            qo_k_convgradweight_sib_f32(&p, dy, x, got.data, M2, dy2, got2.data, pools[pi]);
            qo_k_convgradweight_f32(&q, dy2, x, alone.data, pools[pi]);
            double e1 = 0, e2 = 0, e3 = 0;
            bool ok1 = same(&got, &want, 1e-5, &e1), ok2 = same(&got2, &want2, 1e-5, &e2), ok3 = same(&got2, &alone, -1, &e3);
            if (ok1 && ok2 && ok3) {
                npass++;
            } else {
                nfail++;
                fprintf(stderr, "FAIL %s threads=%d: dw %s (%.3g), dw2 %s (%.3g), dw2 vs alone %s\n", desc,
                        qo_pool_size(pools[pi]), ok1 ? "ok" : "mismatch", e1, ok2 ? "ok" : "mismatch", e2,
                        ok3 ? "same" : "differs");
            }
            qo_tensor_free(&got);
            qo_tensor_free(&got2);
            qo_tensor_free(&alone);
        }
    }
    qo_tensor_free(&want);
    qo_tensor_free(&want2);
    free(x);
    free(dy);
    free(dy2);
}

/* The reference QuantGrad (runtime/ref/train.c) of dy at x with per-tensor scale s, zero point z,
 * bits b: dX and dScale (reduce 1) into want[0..1], or (terms) dX and the per-element dScale terms. */
static bool ref_qgrad(qo_ctx *cx, int rank, const int64_t *d, const float *dy, const float *x, float s, float z,
                      float b, int is_signed, int narrow, int relu, const char *rm, bool terms, qo_tensor *want) {
    tcase t;
    tc_init(&t, QO_OP_TRAIN_QUANTGRAD, 5, 2);
    if (!terms) qo_node_set_attr_int(t.g, t.n, "reduce", 1);
    if (relu) qo_node_set_attr_int(t.g, t.n, "relu", 1);
    qo_node_set_attr_int(t.g, t.n, "signed", is_signed);
    qo_node_set_attr_int(t.g, t.n, "narrow", narrow);
    qo_node_set_attr_string(t.g, t.n, "rounding_mode", rm, strlen(rm));
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    memcpy(tc_input(cx, &t, 0, rank, d), dy, (size_t)n * sizeof(float));
    memcpy(tc_input(cx, &t, 1, rank, d), x, (size_t)n * sizeof(float));
    *tc_input(cx, &t, 2, 0, NULL) = s;
    *tc_input(cx, &t, 3, 0, NULL) = z;
    *tc_input(cx, &t, 4, 0, NULL) = b;
    qo_kctx k = {cx, t.g, t.n, 13, false};
    const qo_tensor *ins[5] = {&t.in[0], &t.in[1], &t.in[2], &t.in[3], &t.in[4]};
    bool ok = qo_ref_kernel_for(QO_OP_TRAIN_QUANTGRAD)(&k, ins, 5, want, 2) == QO_OK;
    tc_free(&t);
    return ok;
}

/* ConvTranspose with a QuantGrad fused after it (qo_k_conv_params.qg) against the ConvTranspose
 * alone (same params, qg NULL) followed by the reference QuantGrad on its output: dX bit for bit;
 * dScale, the same terms summed in another order, within twice fsum.h's error bound,
 * 2 (128 + 5 + 32) 2^-24 sum |term|. kind 0: ResNet's 3x3 stride 1 on 16 images (Winograd
 * F(4x4) with fast); 1: its 3x3 stride 2 with the 1x1 sibling (the strided flat kernel); 2: odd
 * geometries (1-D and 2-D, 1..5 taps, strides 1..3: the flat kernels, Winograd F(2x2), the generic
 * path). Bias, residual, Relu, relu mask, rounding modes (half-even: the AVX-512 element path),
 * dScale wanted or not. */
static void gen_convt_qgrad(qo_ctx *cx, qo_pool **pools, int npools, int kind) {
    int nsp = kind < 2 ? 2 : (int)ri(1, 2);
    int64_t N = kind == 0 ? 16 : ri(1, 4), C = kind < 2 ? 16 * ri(1, 2) : ri(1, 20);
    int64_t M = kind == 0 ? C : kind == 1 ? C / 2 : ri(1, 20), C2 = kind == 1 ? C : 0;
    int64_t xd[4] = {N, C}, yd[4] = {N, M}, wd[4] = {C, M};
    int64_t st[2], dl[2], pd[2];
    for (int i = 0; i < nsp; i++) {
        wd[2 + i] = kind < 2 ? 3 : 2 * ri(0, 2) + 1;
        st[i] = kind == 0 ? 1 : kind == 1 ? 2 : ri(1, 3), dl[i] = kind < 2 || st[i] > 1 ? 1 : ri(1, 2);
        pd[i] = dl[i] * (wd[2 + i] - 1) / 2;
        xd[2 + i] = kind == 0 ? 8 * ri(1, 4) : kind == 1 ? 4 * ri(1, 4) : ri(1, nsp == 1 ? 30 : 12);
        int64_t os = kind == 1 ? 1 : ri(0, st[i] - 1);
        yd[2 + i] = (xd[2 + i] - 1) * st[i] + 1 + os + (wd[2 + i] - 1) * dl[i] - 2 * pd[i];
    }
    int64_t nx = N * C, ny = N * M, osz = 1;
    for (int i = 0; i < nsp; i++) nx *= xd[2 + i], osz *= yd[2 + i];
    ny *= osz;
    int64_t nw = C * M;
    for (int i = 0; i < nsp; i++) nw *= wd[2 + i];
    float *x = malloc((size_t)nx * 4), *w = malloc((size_t)nw * 4), *b = malloc((size_t)M * 4);
    float *x2 = malloc((size_t)(C2 ? nx : 1) * 4), *w2 = malloc((size_t)(C2 ? C2 * M : 1) * 4);
    float *res = malloc((size_t)ny * 4), *xq = malloc((size_t)ny * 4);
    for (int64_t i = 0; i < nx; i++) x[i] = rf();
    for (int64_t i = 0; i < nw; i++) w[i] = rf();
    for (int64_t i = 0; i < M; i++) b[i] = rf();
    for (int64_t i = 0; C2 && i < nx; i++) x2[i] = rf();
    for (int64_t i = 0; C2 && i < C2 * M; i++) w2[i] = rf();
    for (int64_t i = 0; i < ny; i++) res[i] = rf();
    /* the quantizer: its input spread over the range and beyond on both sides */
    static const int bits[] = {2, 4, 8, 8, 16};
    float qb = (float)bits[ri(0, 4)], qs = 0.01f + fabsf(rf()) * 0.1f;
    int is_signed = (int)ri(0, 1), narrow = (int)ri(0, 1), relu = (int)ri(0, 1);
    float qz = ri(0, 2) ? 0.0f : (float)ri(0, 3);
    double range = ldexp(1.0, (int)qb);
    for (int64_t i = 0; i < ny; i++) xq[i] = (float)(rf() * range * 0.7) * qs;
    const char *rm = ri(0, 3) ? "ROUND" : ri(0, 1) ? "FLOOR" : "HALF_UP";
    bool with_res = ri(0, 1), with_b = ri(0, 1), want_ds = ri(0, 3) != 0;
    qo_k_act act = {ri(0, 1) ? QO_K_ACT_RELU : QO_K_ACT_NONE, 0.0f, 0.0f};
    qo_k_conv_params p = {.nsp = nsp, .N = N, .C = C, .M = M, .group = 1, .act = act, .res = with_res ? res : NULL,
                          .fast = fast_conv, .x2 = C2 ? x2 : NULL, .w2 = C2 ? w2 : NULL, .C2 = C2};
    for (int i = 0; i < nsp; i++)
        p.in[i] = xd[2 + i], p.out[i] = yd[2 + i], p.ker[i] = wd[2 + i], p.str[i] = st[i], p.dil[i] = dl[i],
        p.pad[i] = pd[i];
    char desc[256];
    snprintf(desc, sizeof desc, "ConvTranspose+QuantGrad kind %d nsp %d N %lld C %lld M %lld in %lld k %lld s %lld d %lld "
             "fast %d bits %g signed %d narrow %d z %g relu %d round %s ds %d", kind, nsp, (long long)N, (long long)C,
             (long long)M, (long long)xd[2], (long long)wd[2], (long long)st[0], (long long)dl[0], (int)fast_conv,
             (double)qb, is_signed, narrow, (double)qz, relu, rm, (int)want_ds);
    for (int pi = 0; pi < npools; pi++) {
        float *y0 = malloc((size_t)ny * 4), *y = malloc((size_t)ny * 4), ds = NAN;
        qo_k_convtranspose_f32(&p, x, w, with_b ? b : NULL, y0, pools[pi]);
        qo_tensor want[2] = {{0}}, terms[2] = {{0}};
        int32_t rank = nsp + 2;
        if (!ref_qgrad(cx, rank, yd, y0, xq, qs, qz, qb, is_signed, narrow, relu, rm, false, want) ||
            !ref_qgrad(cx, rank, yd, y0, xq, qs, qz, qb, is_signed, narrow, relu, rm, true, terms)) {
            nskip++;
        } else {
            qo_k_qgrad qg = {.x = xq, .s = qs, .z = qz, .bits = (int32_t)qb, .is_signed = is_signed, .narrow = narrow,
                             .relu = relu, .rm = qo_round_from_name(rm), .ds = want_ds ? &ds : NULL};
            qo_k_conv_params q = p;
            q.qg = &qg;
            qo_k_convtranspose_f32(&q, x, w, with_b ? b : NULL, y, pools[pi]);
            bool dx_ok = memcmp(y, want[0].data, (size_t)ny * 4) == 0;
            double S = 0, dev = want_ds ? fabs((double)ds - ((float *)want[1].data)[0]) : 0;
            for (int64_t i = 0; i < ny; i++) S += fabs(((float *)terms[1].data)[i]);
            double bound = 2.0 * (128 + 5 + 32) * ldexp(1.0, -24) * S;
            bool ds_ok = !want_ds || dev <= bound;
            if (dx_ok && ds_ok) {
                npass++;
            } else {
                nfail++;
                fprintf(stderr, "FAIL %s threads=%d: dX %s, dScale %g vs %g (bound %.3g)\n", desc,
                        qo_pool_size(pools[pi]), dx_ok ? "same" : "differs", (double)ds,
                        (double)((float *)want[1].data)[0], bound);
            }
        }
        for (int o = 0; o < 2; o++) qo_tensor_free(&want[o]), qo_tensor_free(&terms[o]);
        free(y0);
        free(y);
    }
    free(x), free(w), free(b), free(x2), free(w2), free(res), free(xq);
}

int main(int argc, char **argv) {
    int cases = 60;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = true;
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) cases = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) rng_state = strtoull(argv[++i], NULL, 0) | 1;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = quiet;
    qo_pool *pools[3] = {NULL, qo_pool_new(2), qo_pool_new(3)};
    rs_paths(&cx, pools, 3);
    for (int c = 0; c < cases; c++) {
        gen_quantgrad(&cx, pools, 3);
        gen_maxpoolgrad(&cx, pools, 3);
        gen_avgpoolgrad(&cx, pools, 3);
        gen_convgradweight(&cx, pools, 3, 0);
        gen_reducesum(&cx, pools, 3);
    }
    int top = qo_k_sgemm_isa(-1);
    for (int isa = top; isa >= 0; isa--) {
        qo_k_sgemm_isa(isa);
        for (int c = 0; c < cases / 3 && isa < top; c++) gen_quantgrad(&cx, pools, 3); /* QuantGrad's C paths */
        for (int c = 0; c < cases / 3; c++) {
            gen_convgradweight(&cx, pools, 3, 0);
            gen_convgradweight(&cx, pools, 3, 1);
        }
        for (int c = 0; c < 3; c++) gen_convgradweight(&cx, pools, 3, 2);
        for (int c = 0; c < cases / 3; c++) gen_convgradweight(&cx, pools, 3, 3);
        for (int c = 0; c < cases; c++) gen_convgradweight(&cx, pools, 3, 4);
        fast_conv = true;
        for (int c = 0; c < cases; c++) gen_convgradweight(&cx, pools, 3, 5);
        for (int c = 0; c < cases / 3; c++) gen_convgradweight(&cx, pools, 3, 6);
        for (int c = 0; c < cases / 3; c++) gen_cgw_sib(&cx, pools, 3, c % 2);
        for (int c = 0; c < cases / 3 && isa == top; c++) gen_convt_qgrad(&cx, pools, 3, c % 3);
        fast_conv = false;
        for (int c = 0; c < cases / 6 && isa == top; c++) gen_convt_qgrad(&cx, pools, 3, c % 3);
        for (int c = 0; c < cases / 6; c++) gen_cgw_sib(&cx, pools, 3, c % 2);
    }
    qo_k_sgemm_isa(-2);
    qo_pool_free(pools[1]);
    qo_pool_free(pools[2]);
    printf("%d passed, %d failed, %d skipped\n", npass, nfail, nskip);
    return nfail || npass == 0 ? 1 : 0;
}
