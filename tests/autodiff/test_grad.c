/* tests/autodiff/test_grad.c — gradients emitted by qo_autodiff against central finite differences.
 *
 * Each case is a small forward graph y = f(inputs); the harness adds loss = sum(y * r) with a random
 * r (so every element of dy/dx matters), differentiates with respect to the named inputs, runs the
 * differentiated graph in the interpreter and in the LLVM JIT, and compares both with central
 * differences of the forward graph run in the interpreter:
 *   f64 cases (ops whose reference kernels take f64): h = 1e-6, |g - fd| <= 1e-6 (1 + |fd|)
 *   f32 cases (Conv, Gemm, MatMul, pools, BN ... are f32-only): h = 1e-2 (1e-3 for the small network,
 *     whose Relu/MaxPool act on computed values; relative to max(1, |x|)),
 *     |g - fd| <= 2e-3 + 1e-2 |fd|; linear ops make the differences exact up to rounding.
 * The JIT's gradients are also compared with the interpreter's (relative 1e-4: its Gemm/Conv kernels
 * sum in another order). Non-smooth ops (Relu, MaxPool, Clip, Abs) draw inputs away from their kinks
 * by construction of the data (f64 differences with h = 1e-6 cannot cross a kink of a random input
 * drawn from a 1e-3 grid offset). Prints the largest error per case and "N passed, N failed". */
#include "backends/llvm/jit.h"
#include "passes/autodiff/autodiff.h"
#include "runtime/rt.h"
#include "tests/unit/test.h"

#include <math.h>

typedef struct gcase {
    const char *name;
    const char *inputs; /* qir input declarations (the harness appends %r) */
    const char *body;   /* statements defining %y */
    const char *ytype;  /* type of %y, e.g. "2x3xf32" */
    const char *params; /* comma-separated inputs to differentiate */
    double lo, hi;      /* random range of the float inputs */
    double h;           /* f32 difference step (0: 1e-2); smaller where a kink (Relu/MaxPool on computed
                           values) could fall within the step */
    int opset;          /* the default domain's opset (0: 17) */
} gcase;

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double max_err_all;

static qo_module *parse(qo_ctx *cx, const char *text) {
    qo_module *m = NULL;
    if (qo_parse_module(cx, "case.qir", text, strlen(text), &m)) return NULL;
    return m;
}

static double get(const qo_tensor *t, int64_t i) {
    return t->elem == QO_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
}
static void put(qo_tensor *t, int64_t i, double v) {
    if (t->elem == QO_F64) ((double *)t->data)[i] = v;
    else ((float *)t->data)[i] = (float)v;
}

static bool in_list(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, name, n) == 0) return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

static double run_loss(qo_ctx *cx, const qo_module *m, const qo_tensor *const *ins, uint32_t nin) {
    qo_tensor out = {0};
    if (qo_interp_run(cx, m, ins, nin, &out, 1)) return NAN;
    double l = get(&out, 0);
    qo_tensor_free(&out);
    return l;
}

static void run_case(const gcase *c) {
    qt_current = c->name;
    /* each case draws from its own seed (FNV-1a of its name): adding a case changes no other's data */
    rng = 14695981039346656037ull;
    for (const char *p = c->name; *p; p++) rng = (rng ^ (unsigned char)*p) * 1099511628211ull;
    rng |= 1;
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    char text[8192];
    snprintf(text, sizeof text,
             "module {\n  opset \"\" = %d\n  graph @main(%s, %%r : tensor<%s>) {\n%s\n"
             "    %%prod = Mul(%%y, %%r)\n    %%loss = ReduceSum(%%prod) {keepdims = 0}\n    return %%loss\n  }\n}\n",
             c->opset ? c->opset : 17, c->inputs, c->ytype, c->body);
    qo_module *fwd = parse(&cx, text), *bwd = parse(&cx, text);
    CHECK(fwd && bwd);
    if (!fwd || !bwd) {
        qt_dump(&d);
        qo_module_free(fwd);
        qo_module_free(bwd);
        return;
    }
    qo_graph *g = qo_module_main(bwd);
    /* the parameters */
    const char *pn[16];
    uint32_t np = 0;
    for (uint32_t i = 0; i < g->ninputs && np < 16; i++)
        if (in_list(c->params, qo_val_name(g, g->inputs[i]))) pn[np++] = qo_val_name(g, g->inputs[i]);
    qo_autodiff_opts o = {.loss = "loss", .params = pn, .nparams = np};
    qo_status s = qo_autodiff(&cx, g, &o);
    CHECK(s == QO_OK);
    if (s == QO_OK) CHECK(qo_verify(&cx, bwd) == QO_OK);
    if (d.nerrors) qt_dump(&d);
    /* inputs */
    qo_graph *fg = qo_module_main(fwd);
    uint32_t nin = fg->ninputs;
    qo_tensor ins[16];
    const qo_tensor *inp[16];
    bool is_param[16] = {0};
    memset(ins, 0, sizeof ins);
    for (uint32_t i = 0; i < nin; i++) {
        const qo_typedata *t = qo_type_get(fwd, fg->vals[fg->inputs[i]].type);
        qo_tensor_make(&cx, &ins[i], t->elem, t->rank, t->dims);
        int64_t n = qo_tensor_numel(&ins[i]);
        bool isr = strcmp(qo_val_name(fg, fg->inputs[i]), "r") == 0;
        for (int64_t k = 0; k < n; k++) {
            /* a 1e-3 grid offset by 3e-4: never within 1e-4 of 0 or of another draw's kink */
            double v = isr ? urand() * 2 - 1 : c->lo + (c->hi - c->lo) * urand();
            if (!isr) v = (floor(v * 1000) + 0.3) / 1000;
            put(&ins[i], k, v);
        }
        inp[i] = &ins[i];
        is_param[i] = in_list(c->params, qo_val_name(fg, fg->inputs[i]));
    }
    if (s != QO_OK) goto out;
    uint32_t nout = g->noutputs;
    qo_tensor go[17], gj[17];
    memset(go, 0, sizeof go);
    memset(gj, 0, sizeof gj);
    s = qo_interp_run(&cx, bwd, inp, nin, go, nout);
    CHECK(s == QO_OK);
    qo_jit *j = NULL;
    qo_status sj = qo_jit_compile(&cx, bwd, NULL, &j);
    CHECK(sj == QO_OK);
    if (sj == QO_OK) sj = qo_jit_run(j, inp, nin, gj, nout);
    CHECK(sj == QO_OK);
    if (s || sj) qt_dump(&d);
    double base = s ? NAN : get(&go[0], 0), lf = run_loss(&cx, fwd, inp, nin);
    CHECK(!s && fabs(base - lf) <= 1e-5 * (1 + fabs(lf))); /* the forward part is unchanged */
    bool f64 = ins[0].elem == QO_F64;
    double maxe = 0, maxj = 0;
    uint32_t gi = 1;
    for (uint32_t i = 0; i < nin && !s && !sj; i++) {
        if (!is_param[i]) continue;
        qo_tensor *gr = &go[gi], *grj = &gj[gi];
        gi++;
        int64_t n = qo_tensor_numel(&ins[i]);
        CHECK_EQ(qo_tensor_numel(gr), n);
        if (qo_tensor_numel(gr) != n) continue;
        int64_t step = n > 48 ? n / 48 : 1;
        double maxfd = 0;
        for (int64_t k = 0; k < n; k += step) {
            double x0 = get(&ins[i], k);
            double h = f64 ? 1e-6 : (c->h > 0 ? c->h : 1e-2) * fmax(1.0, fabs(x0));
            put(&ins[i], k, x0 + h);
            double lp = run_loss(&cx, fwd, inp, nin);
            put(&ins[i], k, x0 - h);
            double lm = run_loss(&cx, fwd, inp, nin);
            put(&ins[i], k, x0);
            double fd = (lp - lm) / (2 * h), gv = get(gr, k), gjv = get(grj, k);
            double tol = f64 ? 1e-6 * (1 + fabs(fd)) : 2e-3 + 1e-2 * fabs(fd);
            double e = fabs(gv - fd), ej = fabs(gjv - gv);
            if (fabs(fd) > maxfd) maxfd = fabs(fd);
            if (e > maxe) maxe = e;
            if (ej > maxj) maxj = ej;
            if (!(e <= tol) || !(ej <= 1e-4 * (1 + fabs(gv)))) {
                qt_fail++;
                fprintf(stderr, "[%s] %s[%lld]: grad %.9g jit %.9g fd %.9g\n", c->name, qo_val_name(fg, fg->inputs[i]),
                        (long long)k, gv, gjv, fd);
            } else
                qt_pass++;
        }
        CHECK(maxfd > 1e-3); /* the sampled elements do test something */
    }
    printf("%-28s %s  max |grad - fd| %.3g  max |jit - interp| %.3g\n", c->name, f64 ? "f64" : "f32", maxe, maxj);
    if (!f64 && maxe > max_err_all) max_err_all = maxe;
    for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&go[i]), qo_tensor_free(&gj[i]);
    qo_jit_free(j);
out:
    for (uint32_t i = 0; i < nin; i++) qo_tensor_free(&ins[i]);
    qo_module_free(fwd);
    qo_module_free(bwd);
}

#define T2 "tensor<2x3xf64>"
static const gcase cases[] = {
    /* ---- elementwise with broadcasting (f64) ---- */
    {"add_bcast", "%a : tensor<2x3x4xf64>, %b : tensor<3x1xf64>", "    %y = Add(%a, %b)", "2x3x4xf64", "a,b", -1, 1, 0, 0},
    {"sub_bcast", "%a : tensor<4xf64>, %b : tensor<2x3x4xf64>", "    %y = Sub(%a, %b)", "2x3x4xf64", "a,b", -1, 1, 0, 0},
    {"mul_bcast", "%a : tensor<2x1x4xf64>, %b : tensor<3x1xf64>", "    %y = Mul(%a, %b)", "2x3x4xf64", "a,b", -1, 1, 0, 0},
    {"div_bcast", "%a : tensor<2x3xf64>, %b : tensor<3xf64>", "    %y = Div(%a, %b)", "2x3xf64", "a,b", 0.5, 2, 0, 0},
    {"mul_self", "%a : tensor<2x3xf64>", "    %y = Mul(%a, %a)", "2x3xf64", "a", -1, 1, 0, 0},
    {"neg_exp_log", "%a : " T2, "    %e = Exp(%a)\n    %n = Neg(%e)\n    %l = Log(%a)\n    %y = Add(%n, %l)", "2x3xf64", "a", 0.5, 2, 0, 0},
    {"sqrt_abs", "%a : " T2 ", %b : " T2, "    %s = Sqrt(%a)\n    %t = Abs(%b)\n    %y = Mul(%s, %t)", "2x3xf64", "a,b", 0.2, 2, 0, 0},
    {"pow2_pow3", "%a : " T2, "    const %two : tensor<f64> = [2.0]\n    const %three : tensor<f64> = [3.0]\n"
                  "    %p = Pow(%a, %two)\n    %q = Pow(%a, %three)\n    %y = Add(%p, %q)", "2x3xf64", "a", -1, 1, 0, 0},
    {"relu", "%a : tensor<3x4xf64>", "    %y = Relu(%a)", "3x4xf64", "a", -1, 1, 0, 0},
    {"leaky_relu", "%a : tensor<3x4xf64>", "    %y = LeakyRelu(%a) {alpha = 0.2}", "3x4xf64", "a", -1, 1, 0, 0},
    {"sigmoid", "%a : tensor<3x4xf64>", "    %y = Sigmoid(%a)", "3x4xf64", "a", -3, 3, 0, 0},
    {"tanh", "%a : tensor<3x4xf64>", "    %y = Tanh(%a)", "3x4xf64", "a", -2, 2, 0, 0},
    {"clip", "%a : tensor<3x4xf64>", "    const %lo : tensor<f64> = [-0.5]\n    const %hi : tensor<f64> = [0.6]\n"
             "    %y = Clip(%a, %lo, %hi)", "3x4xf64", "a", -1, 1, 0, 0},
    {"where", "%a : " T2 ", %b : " T2, "    %c = Greater(%a, %b)\n    %y = Where(%c, %a, %b)", "2x3xf64", "a,b", -1, 1, 0, 0},
    /* ---- shape ops (f64) ---- */
    {"reshape", "%a : tensor<2x3x4xf64>", "    const %s : tensor<2xi64> = [4, 6]\n    %t = Reshape(%a, %s)\n    %y = Mul(%t, %t)",
     "4x6xf64", "a", -1, 1, 0, 0},
    {"flatten", "%a : tensor<2x3x4xf64>", "    %t = Flatten(%a) {axis = 2}\n    %y = Mul(%t, %t)", "6x4xf64", "a", -1, 1, 0, 0},
    {"squeeze_unsqueeze", "%a : tensor<2x1x3xf64>", "    const %ax : tensor<1xi64> = [1]\n    const %ax0 : tensor<1xi64> = [0]\n"
                          "    %s = Squeeze(%a, %ax)\n    %u = Unsqueeze(%s, %ax0)\n    %y = Mul(%u, %u)", "1x2x3xf64", "a", -1, 1, 0, 0},
    {"transpose", "%a : tensor<2x3x4xf64>, %b : tensor<4x2x3xf64>", "    %t = Transpose(%a) {perm = [2, 0, 1]}\n    %y = Mul(%t, %b)",
     "4x2x3xf64", "a,b", -1, 1, 0, 0},
    {"concat", "%a : tensor<2x3xf64>, %b : tensor<2x2xf64>", "    %c = Concat(%a, %b) {axis = 1}\n    %y = Mul(%c, %c)", "2x5xf64",
     "a,b", -1, 1, 0, 0},
    {"slice", "%a : tensor<4x5xf64>", "    const %st : tensor<2xi64> = [1, -4]\n    const %en : tensor<2xi64> = [3, 100]\n"
              "    const %ax : tensor<2xi64> = [0, 1]\n    %s = Slice(%a, %st, %en, %ax)\n    %y = Mul(%s, %s)", "2x4xf64", "a", -1, 1, 0, 0},
    {"expand", "%a : tensor<3x1xf64>", "    const %sh : tensor<3xi64> = [2, 3, 4]\n    %y = Expand(%a, %sh)", "2x3x4xf64", "a", -1, 1, 0, 0},
    {"pad", "%a : tensor<2x3xf64>", "    const %p : tensor<4xi64> = [1, 0, 0, 2]\n    %t = Pad(%a, %p)\n    %y = Mul(%t, %t)",
     "3x5xf64", "a", -1, 1, 0, 0},
    {"split_one_used", "%a : tensor<2x6xf64>", "    const %sp : tensor<2xi64> = [2, 4]\n"
                       "    %s0, %s1 = Split(%a, %sp) {axis = 1}\n    %y = Mul(%s0, %s0)", "2x2xf64", "a", -1, 1, 0, 0},
    {"split_both", "%a : tensor<4x3xf64>", "    const %sp : tensor<2xi64> = [2, 2]\n    %s0, %s1 = Split(%a, %sp) {axis = 0}\n    %y = Mul(%s0, %s1)",
     "2x3xf64", "a", -1, 1, 0, 0},
    {"sum_mean_bcast", "%a : tensor<2x3xf64>, %b : tensor<3xf64>, %c : tensor<2x1xf64>",
     "    %s = Sum(%a, %b, %c)\n    %m = Mean(%a, %c)\n    %y = Mul(%s, %m)", "2x3xf64", "a,b,c", -1, 1, 0, 0},
    {"erf_softplus_recip", "%a : tensor<2x3xf64>", "    %e = Erf(%a)\n    %s = Softplus(%a)\n    %rc = Reciprocal(%a)\n"
                           "    %t = Add(%e, %s)\n    %y = Add(%t, %rc)", "2x3xf64", "a", 0.3, 2, 0, 0},
    {"hardsigmoid", "%a : tensor<3x4xf64>", "    %y = HardSigmoid(%a) {alpha = 0.25, beta = 0.5}", "3x4xf64", "a", -3, 3, 0, 0},
    {"cast_f32_f64", "%a : tensor<2x3xf32>", "    %c = Cast(%a) {to = 11}\n    %y = Mul(%c, %c)", "2x3xf64", "a", -1, 1, 0, 0},
    {"slice_steps", "%a : tensor<5x4x2xf64>", "    const %st : tensor<3xi64> = [1, 0, 1]\n    const %en : tensor<3xi64> = [5, 4, 2]\n"
                    "    const %ax : tensor<3xi64> = [0, 1, 2]\n    const %sp : tensor<3xi64> = [2, 3, 1]\n"
                    "    %s = Slice(%a, %st, %en, %ax, %sp)\n    %y = Mul(%s, %s)", "2x2x1xf64", "a", -1, 1, 0, 0},
    {"slice_step_overrun", "%a : tensor<3x7xf64>", "    const %st : tensor<1xi64> = [2]\n    const %en : tensor<1xi64> = [7]\n"
                           "    const %ax : tensor<1xi64> = [1]\n    const %sp : tensor<1xi64> = [4]\n"
                           "    %s = Slice(%a, %st, %en, %ax, %sp)\n    %y = Mul(%s, %s)", "3x2xf64", "a", -1, 1, 0, 0},
    /* ---- reductions, softmax (f64 where the kernels take it) ---- */
    {"reducesum_keep0", "%a : tensor<2x3x4xf64>", "    const %ax : tensor<2xi64> = [0, 2]\n    %t = ReduceSum(%a, %ax) {keepdims = 0}\n"
                        "    %y = Mul(%t, %t)", "3xf64", "a", -1, 1, 0, 0},
    {"reducemean", "%a : tensor<2x3x4xf64>", "    %t = ReduceMean(%a) {axes = [1], keepdims = 1}\n    %y = Mul(%t, %t)", "2x1x4xf64", "a",
     -1, 1, 0, 0},
    {"softmax", "%a : tensor<3x5xf32>", "    %y = Softmax(%a) {axis = 1}", "3x5xf32", "a", -2, 2, 0, 0},
    {"logsoftmax", "%a : tensor<3x5xf32>", "    %y = LogSoftmax(%a) {axis = -1}", "3x5xf32", "a", -2, 2, 0, 0},
    {"softmax_axis0", "%a : tensor<4x3xf32>", "    %y = Softmax(%a) {axis = 0}", "4x3xf32", "a", -2, 2, 0, 0},
    /* ---- linear algebra (f32) ---- */
    {"matmul_2d", "%a : tensor<3x4xf32>, %b : tensor<4x5xf32>", "    %y = MatMul(%a, %b)", "3x5xf32", "a,b", -1, 1, 0, 0},
    {"matmul_batched_bcast", "%a : tensor<2x3x4xf32>, %b : tensor<4x5xf32>", "    %y = MatMul(%a, %b)", "2x3x5xf32", "a,b", -1, 1, 0, 0},
    {"matmul_batch_b1", "%a : tensor<3x4xf32>, %b : tensor<2x4x5xf32>", "    %y = MatMul(%a, %b)", "2x3x5xf32", "a,b", -1, 1, 0, 0},
    {"matmul_vec_mat", "%a : tensor<4xf32>, %b : tensor<2x4x3xf32>", "    %y = MatMul(%a, %b)", "2x3xf32", "a,b", -1, 1, 0, 0},
    {"matmul_mat_vec", "%a : tensor<2x3x4xf32>, %b : tensor<4xf32>", "    %y = MatMul(%a, %b)", "2x3xf32", "a,b", -1, 1, 0, 0},
    {"matmul_vec_vec", "%a : tensor<5xf32>, %b : tensor<5xf32>", "    %y = MatMul(%a, %b)", "f32", "a,b", -1, 1, 0, 0},
    {"gemm", "%a : tensor<3x4xf32>, %b : tensor<4x5xf32>, %c : tensor<5xf32>", "    %y = Gemm(%a, %b, %c)", "3x5xf32", "a,b,c", -1, 1, 0, 0},
    {"gemm_tB_alpha_beta", "%a : tensor<3x4xf32>, %b : tensor<5x4xf32>, %c : tensor<3x1xf32>",
     "    %y = Gemm(%a, %b, %c) {alpha = 0.5, beta = 2.0, transB = 1}", "3x5xf32", "a,b,c", -1, 1, 0, 0},
    {"gemm_tA", "%a : tensor<4x3xf32>, %b : tensor<4x5xf32>", "    %y = Gemm(%a, %b) {transA = 1}", "3x5xf32", "a,b", -1, 1, 0, 0},
    {"gemm_tA_tB", "%a : tensor<4x3xf32>, %b : tensor<5x4xf32>, %c : tensor<3x5xf32>",
     "    %y = Gemm(%a, %b, %c) {transA = 1, transB = 1, alpha = 1.5}", "3x5xf32", "a,b,c", -1, 1, 0, 0},
    /* ---- convolution (f32) ---- */
    {"conv_pad1_bias", "%x : tensor<2x3x5x5xf32>, %w : tensor<4x3x3x3xf32>, %b : tensor<4xf32>",
     "    %y = Conv(%x, %w, %b) {pads = [1, 1, 1, 1]}", "2x4x5x5xf32", "x,w,b", -1, 1, 0, 0},
    {"conv_stride_asym_pad", "%x : tensor<1x2x7x6xf32>, %w : tensor<3x2x3x2xf32>",
     "    %y = Conv(%x, %w) {pads = [1, 0, 0, 1], strides = [2, 2]}", "1x3x3x3xf32", "x,w", -1, 1, 0, 0},
    {"conv_dilation", "%x : tensor<1x2x7x7xf32>, %w : tensor<2x2x3x3xf32>",
     "    %y = Conv(%x, %w) {dilations = [2, 2], pads = [1, 1, 1, 1]}", "1x2x5x5xf32", "x,w", -1, 1, 0, 0},
    {"conv_groups", "%x : tensor<2x4x5x5xf32>, %w : tensor<6x2x3x3xf32>, %b : tensor<6xf32>",
     "    %y = Conv(%x, %w, %b) {group = 2}", "2x6x3x3xf32", "x,w,b", -1, 1, 0, 0},
    {"conv_depthwise_s2", "%x : tensor<1x3x6x6xf32>, %w : tensor<3x1x3x3xf32>",
     "    %y = Conv(%x, %w) {group = 3, pads = [1, 1, 1, 1], strides = [2, 2]}", "1x3x3x3xf32", "x,w", -1, 1, 0, 0},
    {"conv1d_s2", "%x : tensor<2x3x8xf32>, %w : tensor<4x3x3xf32>, %b : tensor<4xf32>",
     "    %y = Conv(%x, %w, %b) {strides = [2]}", "2x4x3xf32", "x,w,b", -1, 1, 0, 0},
    {"conv_valid_1x1", "%x : tensor<2x3x4x4xf32>, %w : tensor<5x3x1x1xf32>",
     "    %y = Conv(%x, %w) {auto_pad = \"VALID\"}", "2x5x4x4xf32", "x,w", -1, 1, 0, 0},
    {"convtranspose_s2_outpad", "%x : tensor<1x2x3x3xf32>, %w : tensor<2x3x3x3xf32>, %b : tensor<3xf32>",
     "    %y = ConvTranspose(%x, %w, %b) {output_padding = [1, 1], pads = [1, 1, 1, 1], strides = [2, 2]}", "1x3x6x6xf32",
     "x,w,b", -1, 1, 0, 0},
    {"convtranspose_groups", "%x : tensor<2x4x3x3xf32>, %w : tensor<4x1x2x2xf32>",
     "    %y = ConvTranspose(%x, %w) {group = 2}", "2x2x4x4xf32", "x,w", -1, 1, 0, 0},
    {"conv_same_upper_s2", "%x : tensor<1x2x5x6xf32>, %w : tensor<3x2x3x2xf32>",
     "    %y = Conv(%x, %w) {auto_pad = \"SAME_UPPER\", strides = [2, 2]}", "1x3x3x3xf32", "x,w", -1, 1, 0, 0},
    {"conv_same_lower", "%x : tensor<1x2x5x5xf32>, %w : tensor<2x2x2x2xf32>",
     "    %y = Conv(%x, %w) {auto_pad = \"SAME_LOWER\"}", "1x2x5x5xf32", "x,w", -1, 1, 0, 0},
    /* ---- pooling ---- */
    {"maxpool_overlap_pad", "%x : tensor<2x2x5x5xf64>",
     "    %y = MaxPool(%x) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}", "2x2x3x3xf64", "x", -1, 1, 0, 0},
    {"maxpool_2x2", "%x : tensor<1x3x4x6xf64>", "    %y = MaxPool(%x) {kernel_shape = [2, 2], strides = [2, 2]}",
     "1x3x2x3xf64", "x", -1, 1, 0, 0},
    {"maxpool_ceil_dil", "%x : tensor<1x2x7x7xf64>",
     "    %y = MaxPool(%x) {ceil_mode = 1, dilations = [2, 2], kernel_shape = [2, 2], strides = [2, 2]}", "1x2x3x3xf64", "x", -1, 1, 0, 0},
    {"maxpool_same_lower", "%x : tensor<1x2x5x5xf64>",
     "    %y = MaxPool(%x) {auto_pad = \"SAME_LOWER\", kernel_shape = [2, 2], strides = [2, 2]}", "1x2x3x3xf64", "x", -1, 1, 0, 0},
    {"avgpool_pad_excl", "%x : tensor<2x2x5x5xf32>",
     "    %y = AveragePool(%x) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}", "2x2x3x3xf32", "x", -1, 1, 0, 0},
    {"avgpool_pad_incl", "%x : tensor<1x2x5x5xf32>",
     "    %y = AveragePool(%x) {count_include_pad = 1, kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}",
     "1x2x3x3xf32", "x", -1, 1, 0, 0},
    {"global_maxpool", "%x : tensor<2x3x4x5xf64>", "    %y = GlobalMaxPool(%x)", "2x3x1x1xf64", "x", -1, 1, 0, 0},
    {"global_avgpool", "%x : tensor<2x3x4x5xf32>", "    %y = GlobalAveragePool(%x)", "2x3x1x1xf32", "x", -1, 1, 0, 0},
    /* ---- batch normalization, training mode (batch statistics) ---- */
    {"batchnorm_train", "%x : tensor<4x3x2x2xf32>, %s : tensor<3xf32>, %b : tensor<3xf32>",
     "    const %mu : tensor<3xf32> = [0.0, 0.0, 0.0]\n    const %var : tensor<3xf32> = [1.0, 1.0, 1.0]\n"
     "    %y = BatchNormalization(%x, %s, %b, %mu, %var) {training_mode = 1}", "4x3x2x2xf32", "x,s,b", -1, 1, 0, 0},
    {"batchnorm_train_stats_out", "%x : tensor<3x2x5xf32>, %s : tensor<2xf32>, %b : tensor<2xf32>",
     "    const %mu : tensor<2xf32> = [0.1, -0.2]\n    const %var : tensor<2xf32> = [1.5, 0.5]\n"
     "    %y, %rm, %rv = BatchNormalization(%x, %s, %b, %mu, %var) {epsilon = 0.001, momentum = 0.8, training_mode = 1}",
     "3x2x5xf32", "x,s,b", -1, 1, 0, 0},
    /* ---- a small network: Conv -> Relu -> MaxPool -> Flatten -> Gemm -> cross-entropy ---- */
    {"cnn_ce", "%x : tensor<2x1x6x6xf32>, %w : tensor<3x1x3x3xf32>, %b : tensor<3xf32>, %fw : tensor<4x12xf32>, %fb : tensor<4xf32>",
     "    %c = Conv(%x, %w, %b) {pads = [1, 1, 1, 1]}\n    %rl = Relu(%c)\n"
     "    %p = MaxPool(%rl) {kernel_shape = [3, 3], strides = [3, 3]}\n    %f = Flatten(%p)\n"
     "    %lg = Gemm(%f, %fw, %fb) {transB = 1}\n    const %lab : tensor<2xi64> = [1, 3]\n"
     "    %y = \"ai.qopt.train.SoftmaxCrossEntropy\"(%lg, %lab)", "f32", "w,b,fw,fb", -1, 1, 1e-3, 0},
    /* ---- more activations (f64) ---- */
    {"max_min_variadic", "%a : tensor<2x3xf64>, %b : tensor<3xf64>, %c : tensor<2x1xf64>",
     "    %mx = Max(%a, %b, %c)\n    %mn = Min(%a, %b)\n    %y = Add(%mx, %mn)", "2x3xf64", "a,b,c", -1, 1, 0, 0},
    {"max_ties_split", "%a : tensor<2x3xf64>",
     "    %mx = Max(%a, %a)\n    %y = Mul(%mx, %mx)", "2x3xf64", "a", -1, 1, 0, 0},
    {"prelu_bcast", "%a : tensor<2x3x4xf64>, %s : tensor<3x1xf64>", "    %y = PRelu(%a, %s)", "2x3x4xf64", "a,s", -1, 1, 0, 0},
    {"elu_selu_celu", "%a : tensor<3x4xf64>",
     "    %e = Elu(%a) {alpha = 0.7}\n    %s = Selu(%a)\n    %c = Celu(%a) {alpha = 1.5}\n    %t = Add(%e, %s)\n    %y = Add(%t, %c)",
     "3x4xf64", "a", -2, 2, 0, 0},
    {"hardswish_thresholded", "%a : tensor<4x5xf64>",
     "    %h = HardSwish(%a)\n    %t = ThresholdedRelu(%a) {alpha = 0.5}\n    %y = Add(%h, %t)", "4x5xf64", "a", -5, 5, 0, 0},
    {"softsign_mish_sin_cos", "%a : tensor<3x4xf64>",
     "    %s = Softsign(%a)\n    %m = Mish(%a)\n    %sn = Sin(%a)\n    %cs = Cos(%a)\n    %t = Add(%s, %m)\n"
     "    %u = Add(%sn, %cs)\n    %y = Add(%t, %u)", "3x4xf64", "a", -3, 3, 0, 18},
    {"gelu_erf_tanh", "%a : tensor<3x4xf64>",
     "    %e = Gelu(%a)\n    %t = Gelu(%a) {approximate = \"tanh\"}\n    %y = Add(%e, %t)", "3x4xf64", "a", -3, 3, 0, 20},
    /* ---- more reductions (f64) ---- */
    {"reducemax_min", "%a : tensor<2x3x4xf64>",
     "    %mx = ReduceMax(%a) {axes = [1], keepdims = 0}\n    %mn = ReduceMin(%a) {axes = [0, 1], keepdims = 1}\n"
     "    %y = Mul(%mx, %mn)", "1x2x4xf64", "a", -1, 1, 0, 0},
    {"reducemax_ties", "%a : tensor<2x3xf64>",
     "    %c = Concat(%a, %a) {axis = 1}\n    %y = ReduceMax(%c) {axes = [1], keepdims = 1}", "2x1xf64", "a", -1, 1, 0, 0},
    {"reducel2_sumsq_lse", "%a : tensor<2x3x4xf64>",
     "    %l = ReduceL2(%a) {axes = [2], keepdims = 0}\n    %q = ReduceSumSquare(%a) {axes = [2], keepdims = 0}\n"
     "    %e = ReduceLogSumExp(%a) {axes = [2], keepdims = 0}\n    %t = Mul(%l, %q)\n    %y = Add(%t, %e)", "2x3xf64", "a",
     -1, 1, 0, 0},
    /* ---- normalization layers (f32) ---- */
    {"layernorm_last", "%x : tensor<2x3x4xf32>, %s : tensor<4xf32>, %b : tensor<4xf32>",
     "    %y = LayerNormalization(%x, %s, %b)", "2x3x4xf32", "x,s,b", -1, 1, 0, 0},
    {"layernorm_axis1_nobias", "%x : tensor<2x3x4xf32>, %s : tensor<3x4xf32>",
     "    %y = LayerNormalization(%x, %s) {axis = 1, epsilon = 0.001}", "2x3x4xf32", "x,s", -1, 1, 0, 0},
    {"instancenorm", "%x : tensor<2x3x2x3xf32>, %s : tensor<3xf32>, %b : tensor<3xf32>",
     "    %y = InstanceNormalization(%x, %s, %b) {epsilon = 0.01}", "2x3x2x3xf32", "x,s,b", -1, 1, 0, 0},
    /* ---- indexing and rearrangements (f64) ---- */
    {"gather_axis0_repeats", "%d : tensor<5x3xf64>",
     "    const %i : tensor<2x2xi64> = [0, 4, 2, -1]\n    %y = Gather(%d, %i)", "2x2x3xf64", "d", -1, 1, 0, 0},
    {"gather_axis1", "%d : tensor<2x5x3xf64>",
     "    const %i : tensor<3xi64> = [3, 0, 3]\n    %y = Gather(%d, %i) {axis = 1}", "2x3x3xf64", "d", -1, 1, 0, 0},
    {"gather_scalar_index", "%d : tensor<4x3xf64>",
     "    const %i : tensor<i64> = [2]\n    %t = Gather(%d, %i) {axis = 0}\n    %y = Mul(%t, %t)", "3xf64", "d", -1, 1, 0, 0},
    {"gather_elements", "%d : tensor<3x4xf64>",
     "    const %i : tensor<2x4xi64> = [0, 2, 2, 1, 1, 0, 2, -1]\n    %y = GatherElements(%d, %i) {axis = 0}", "2x4xf64", "d",
     -1, 1, 0, 0},
    {"tile", "%a : tensor<2x3xf64>", "    const %rp : tensor<2xi64> = [2, 3]\n    %t = Tile(%a, %rp)\n    %y = Mul(%t, %t)",
     "4x9xf64", "a", -1, 1, 0, 0},
    {"depth_to_space_dcr_crd", "%a : tensor<1x8x2x3xf64>",
     "    %p = DepthToSpace(%a) {blocksize = 2}\n    %q = DepthToSpace(%a) {blocksize = 2, mode = \"CRD\"}\n    %y = Mul(%p, %q)",
     "1x2x4x6xf64", "a", -1, 1, 0, 0},
    {"space_to_depth", "%a : tensor<1x2x4x6xf64>",
     "    %t = SpaceToDepth(%a) {blocksize = 2}\n    %y = Mul(%t, %t)", "1x8x2x3xf64", "a", -1, 1, 0, 0},
    {"cumsum_excl_rev", "%a : tensor<3x4xf64>",
     "    const %ax : tensor<i64> = [1]\n    %c = CumSum(%a, %ax) {exclusive = 1}\n    %d = CumSum(%a, %ax) {reverse = 1}\n"
     "    %y = Mul(%c, %d)", "3x4xf64", "a", -1, 1, 0, 0},
    {"resize_nearest_asym", "%a : tensor<1x2x2x3xf32>",
     "    const %sc : tensor<4xf32> = [1.0, 1.0, 2.0, 3.0]\n"
     "    %t = Resize(%a, _, %sc) {mode = \"nearest\", coordinate_transformation_mode = \"asymmetric\", nearest_mode = \"floor\"}\n"
     "    %y = Mul(%t, %t)", "1x2x4x9xf32", "a", -1, 1, 0, 0},
    {"resize_nearest_halfpixel", "%a : tensor<1x1x3x2xf32>",
     "    const %sc : tensor<4xf32> = [1.0, 1.0, 2.0, 2.0]\n    %t = Resize(%a, _, %sc) {mode = \"nearest\"}\n    %y = Mul(%t, %t)",
     "1x1x6x4xf32", "a", -1, 1, 0, 0},
    /* ---- losses ---- */
    {"mse", "%p : tensor<4x3xf64>, %t : tensor<4x3xf64>",
     "    %dd = Sub(%p, %t)\n    %sq = Mul(%dd, %dd)\n    %y = ReduceMean(%sq) {keepdims = 0}", "f64", "p,t", -1, 1, 0, 0},
    {"softmax_ce", "%x : tensor<4x5xf32>",
     "    const %lab : tensor<4xi64> = [0, 3, 4, 1]\n    %y = \"ai.qopt.train.SoftmaxCrossEntropy\"(%x, %lab)", "f32", "x", -2, 2, 0, 0},
    {"softmax_ce_f64_sum", "%x : tensor<3x4xf64>",
     "    const %lab : tensor<3xi64> = [2, 0, 3]\n    %y = \"ai.qopt.train.SoftmaxCrossEntropy\"(%x, %lab) {reduction = \"sum\"}", "f64",
     "x", -2, 2, 0, 0},
};

int main(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    printf("largest f32 |grad - fd|: %.3g\n", max_err_all);
    return qt_finish();
}
