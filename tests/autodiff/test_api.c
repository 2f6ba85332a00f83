/* tests/autodiff/test_api.c — the pass forms (`autodiff{...}`, `optimizer{...}` in a pipeline with
 * verify-each) checked against hand-derived values, the optimizer's first steps against the torch
 * update formulas worked out by hand, and the diagnostics of the error paths (each names the node,
 * op or value at fault). */
#include "backends/llvm/jit.h"
#include "passes/autodiff/autodiff.h"
#include "passes/pass.h"
#include "runtime/rt.h"
#include "tests/unit/test.h"

#include <math.h>

/* loss = sum((a * x)^2) over 3 elements: dloss/da = 2 a x^2 (a = [1, -2, 0.5] initializer, x input). */
static const char LIN[] =
    "module {\n  opset \"\" = 17\n  graph @main(%x : tensor<3xf32>) {\n"
    "    const %a : tensor<3xf32> = [1.0, -2.0, 0.5]\n"
    "    %y = Mul(%a, %x)\n    %sq = Mul(%y, %y)\n    %loss = ReduceSum(%sq) {keepdims = 0}\n    return %loss\n  }\n}\n";

static qo_module *parse(qo_ctx *cx, const char *text) {
    qo_module *m = NULL;
    qo_parse_module(cx, "t.qir", text, strlen(text), &m);
    return m;
}

static int out_index(const qo_graph *g, const char *name) {
    for (uint32_t i = 0; i < g->noutputs; i++)
        if (strcmp(qo_val_name(g, qo_graph_output(g, i)), name) == 0) return (int)i;
    return -1;
}

static int in_index(const qo_graph *g, const char *name) {
    for (uint32_t i = 0; i < g->ninputs; i++)
        if (strcmp(qo_val_name(g, g->inputs[i]), name) == 0) return (int)i;
    return -1;
}

/* Runs m once in the interpreter with x = [0.5, 1, -3] and every other input at its default. */
static bool run1(qo_ctx *cx, const qo_module *m, qo_tensor *outs) {
    const qo_graph *g = qo_module_main(m);
    qo_tensor x = {0};
    int64_t d = 3;
    qo_tensor_make(cx, &x, QO_F32, 1, &d);
    float xv[3] = {0.5f, 1.0f, -3.0f};
    memcpy(x.data, xv, sizeof xv);
    const qo_tensor *ins[16] = {0};
    ins[in_index(g, "x")] = &x;
    bool ok = qo_interp_run(cx, m, ins, g->ninputs, outs, g->noutputs) == QO_OK;
    qo_tensor_free(&x);
    return ok;
}

static void sgd_pass(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, LIN);
    CHECK(m != NULL);
    if (!m) return;
    qo_pm_opts po = {.verify_each = true};
    qo_status s = qo_pipeline_run(&cx, m, "autodiff{loss=loss},optimizer{kind=sgd lr=0.5 momentum=0.9 weight-decay=0.1}", &po);
    CHECK(s == QO_OK);
    if (s) qt_dump(&d);
    qo_graph *g = qo_module_main(m);
    int ig = out_index(g, "a_grad"), ip = out_index(g, "a_new"), ib = out_index(g, "a_momentum_new");
    CHECK(ig >= 0 && ip >= 0 && ib >= 0);
    CHECK(in_index(g, "a") >= 0 && in_index(g, "lr") >= 0 && in_index(g, "a_momentum") >= 0);
    qo_tensor outs[8] = {{0}};
    if (!s && ig >= 0 && ip >= 0 && ib >= 0 && run1(&cx, m, outs)) {
        const float a[3] = {1, -2, 0.5f}, x[3] = {0.5f, 1, -3};
        for (int i = 0; i < 3; i++) {
            double g2 = 2.0 * a[i] * x[i] * x[i];
            double gd = g2 + 0.1 * a[i];             /* weight decay */
            double buf = gd;                         /* momentum buffer from zero: 0.9 * 0 + gd */
            CHECK(fabs(((float *)outs[ig].data)[i] - g2) <= 1e-6 * (1 + fabs(g2)));
            CHECK(fabs(((float *)outs[ib].data)[i] - buf) <= 1e-6 * (1 + fabs(buf)));
            CHECK(fabs(((float *)outs[ip].data)[i] - (a[i] - 0.5 * buf)) <= 1e-6 * (1 + fabs(a[i])));
        }
    } else
        CHECK(false);
    for (uint32_t i = 0; i < g->noutputs && i < 8; i++) qo_tensor_free(&outs[i]);
    qo_module_free(m);
}

static void adam_pass(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, LIN);
    if (!m) return;
    qo_status s = qo_pipeline_run(&cx, m, "autodiff,optimizer{kind=adam lr=0.01}", NULL);
    CHECK(s == QO_OK);
    if (s) qt_dump(&d);
    qo_graph *g = qo_module_main(m);
    int ip = out_index(g, "a_new"), im = out_index(g, "a_adam_m_new"), iv = out_index(g, "a_adam_v_new");
    CHECK(ip >= 0 && im >= 0 && iv >= 0 && in_index(g, "adam_step") >= 0);
    qo_tensor outs[8] = {{0}};
    if (!s && ip >= 0 && im >= 0 && iv >= 0 && run1(&cx, m, outs)) {
        const float a[3] = {1, -2, 0.5f}, x[3] = {0.5f, 1, -3};
        for (int i = 0; i < 3; i++) {
            double gr = 2.0 * a[i] * x[i] * x[i];
            double mm = 0.1 * gr, vv = 0.001 * gr * gr;                   /* from zero state */
            double mh = mm / (1 - 0.9), vh = vv / (1 - 0.999);            /* bias-corrected, t = 1 */
            double pn = a[i] - 0.01 * mh / (sqrt(vh) + 1e-8);             /* = a - 0.01 sign(g) */
            CHECK(fabs(((float *)outs[im].data)[i] - mm) <= 1e-6 * (1 + fabs(mm)));
            CHECK(fabs(((float *)outs[iv].data)[i] - vv) <= 1e-6 * (1 + fabs(vv)));
            CHECK(fabs(((float *)outs[ip].data)[i] - pn) <= 2e-6);
        }
    } else
        CHECK(false);
    for (uint32_t i = 0; i < g->noutputs && i < 8; i++) qo_tensor_free(&outs[i]);
    qo_module_free(m);
}

/* Runs pipeline on text; expects failure with a diagnostic containing sub (and naming node when given). */
static void expect_error(const char *text, const char *pipeline, const char *node, const char *sub) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, text);
    CHECK(m != NULL);
    if (!m) {
        qt_dump(&d);
        return;
    }
    CHECK(qo_pipeline_run(&cx, m, pipeline, NULL) != QO_OK);
    bool has = qt_has(&d, node, sub);
    CHECK(has);
    if (!has) qt_dump(&d);
    qo_module_free(m);
}

static void errors(void) {
    expect_error(LIN, "autodiff{loss=nope}", NULL, "no value named 'nope'");
    expect_error(LIN, "autodiff{loss=y}", NULL, "is not a one-element float tensor");
    expect_error(LIN, "autodiff{params=zz}", NULL, "parameter 'zz' is not a float initializer");
    expect_error(LIN, "optimizer", NULL, "no parameters");
    expect_error(LIN, "autodiff,optimizer{kind=rmsprop}", NULL, "kind=rmsprop");
    expect_error(LIN, "autodiff,optimizer{lr=fast}", NULL, "lr=fast is not a number");
    static const char erf[] =
        "module {\n  opset \"\" = 17\n  graph @main(%x : tensor<3xf32>) {\n    const %a : tensor<3xf32> = [1.0, 2.0, 3.0]\n"
        "    %y = Mul(%a, %x) loc(\"mul1\")\n    %e = Acosh(%y) loc(\"acosh1\")\n    %loss = ReduceSum(%e) {keepdims = 0}\n"
        "    return %loss\n  }\n}\n";
    expect_error(erf, "autodiff", "acosh1", "no gradient rule for Acosh");
    static const char step2[] =
        "module {\n  opset \"\" = 17\n  graph @main(%x : tensor<6xf32>) {\n"
        "    const %st : tensor<1xi64> = [0]\n    const %en : tensor<1xi64> = [6]\n    const %ax : tensor<1xi64> = [0]\n"
        "    const %sp : tensor<1xi64> = [-1]\n    %s = Slice(%x, %st, %en, %ax, %sp) loc(\"sl\")\n"
        "    %loss = ReduceSum(%s) {keepdims = 0}\n    return %loss\n  }\n}\n";
    expect_error(step2, "autodiff{params=x}", "sl", "only positive steps");
    static const char old[] =
        "module {\n  opset \"\" = 11\n  graph @main(%x : tensor<3xf32>) {\n    %loss = ReduceSum(%x) {keepdims = 0}\n"
        "    return %loss\n  }\n}\n";
    expect_error(old, "autodiff{params=x}", NULL, "gradients need opset >= 13");
    static const char bninf[] =
        "module {\n  opset \"\" = 17\n  graph @main(%x : tensor<2x2x3xf32>) {\n"
        "    const %s : tensor<2xf32> = [1.0, 1.0]\n    const %b : tensor<2xf32> = [0.0, 0.0]\n"
        "    const %mu : tensor<2xf32> = [0.0, 0.0]\n    const %v : tensor<2xf32> = [1.0, 1.0]\n"
        "    %y = BatchNormalization(%x, %s, %b, %mu, %v) loc(\"bn\")\n    %loss = ReduceSum(%y) {keepdims = 0}\n"
        "    return %loss\n  }\n}\n";
    expect_error(bninf, "autodiff", "bn", "inference mode");
}

/* The loss does not depend on an explicitly named parameter: its gradient is zeros. Integer-valued
 * and non-differentiable operands (shape of a Reshape) never become default parameters. */
static void zeros_and_defaults(void) {
    static const char text[] =
        "module {\n  opset \"\" = 17\n  graph @main(%x : tensor<2x3xf32>, %u : tensor<2xf32>) {\n"
        "    const %w : tensor<2x3xf32> = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\n    const %sh : tensor<1xi64> = [6]\n"
        "    const %half : tensor<f32> = [0.5]\n"
        "    %p0 = Mul(%w, %x)\n    %p = Mul(%p0, %half)\n    %r = Reshape(%p, %sh)\n    %loss = ReduceSum(%r) {keepdims = 0}\n"
        "    return %loss\n  }\n}\n";
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, text);
    if (!m) return;
    const char *params[] = {"w", "u"};
    qo_autodiff_opts o = {.loss = "loss", .params = params, .nparams = 2};
    qo_graph *g = qo_module_main(m);
    CHECK(qo_autodiff(&cx, g, &o) == QO_OK);
    CHECK(qo_verify(&cx, m) == QO_OK);
    int iu = out_index(g, "u_grad"), iw = out_index(g, "w_grad");
    CHECK(iu >= 0 && iw >= 0);
    qo_tensor x = {0}, u = {0};
    int64_t dx[2] = {2, 3}, du = 2;
    qo_tensor_make(&cx, &x, QO_F32, 2, dx);
    qo_tensor_make(&cx, &u, QO_F32, 1, &du);
    for (int i = 0; i < 6; i++) ((float *)x.data)[i] = (float)(i + 1) * 0.25f;
    const qo_tensor *ins[2] = {&x, &u};
    qo_tensor outs[3] = {{0}};
    if (iu >= 0 && iw >= 0 && qo_interp_run(&cx, m, ins, 2, outs, 3) == QO_OK) {
        CHECK(((float *)outs[iu].data)[0] == 0.0f && ((float *)outs[iu].data)[1] == 0.0f);
        for (int i = 0; i < 6; i++) CHECK(((float *)outs[iw].data)[i] == (float)(i + 1) * 0.125f); /* d/dw sum(w x / 2) = x / 2 */
    } else
        CHECK(false);
    for (int i = 0; i < 3; i++) qo_tensor_free(&outs[i]);
    qo_tensor_free(&x), qo_tensor_free(&u);
    qo_module_free(m);
    /* default parameters: w only (sh is an integer constant, half a scalar constant) */
    m = parse(&cx, text);
    if (!m) return;
    g = qo_module_main(m);
    qo_autodiff_opts o2 = {.loss = "loss"};
    CHECK(qo_autodiff(&cx, g, &o2) == QO_OK);
    CHECK_EQ(g->noutputs, 2);
    CHECK(out_index(g, "w_grad") == 1);
    qo_module_free(m);
}

/* Gradient ops whose first result (dX) is not needed keep it (the signature requires it): a quantizer
 * and a BatchNormalization reading a graph input that is not a parameter. */
static void unneeded_dx(void) {
    static const char text[] =
        "module {\n  opset \"\" = 17\n  graph @main(%x : tensor<2x2x3xf32>) {\n"
        "    const %s : tensor<f32> = [0.1]\n    const %z : tensor<f32> = [0.0]\n    const %b : tensor<f32> = [4.0]\n"
        "    const %g : tensor<2xf32> = [1.0, 0.5]\n    const %be : tensor<2xf32> = [0.0, 0.1]\n"
        "    const %mu : tensor<2xf32> = [0.0, 0.0]\n    const %v : tensor<2xf32> = [1.0, 1.0]\n"
        "    %q = \"qonnx.custom_op.general.Quant\"(%x, %s, %z, %b) {narrow = 0, rounding_mode = \"ROUND\", signed = 1}\n"
        "    %y = BatchNormalization(%x, %g, %be, %mu, %v) {training_mode = 1}\n    %t = Mul(%q, %y)\n"
        "    %loss = ReduceSum(%t) {keepdims = 0}\n    return %loss\n  }\n}\n";
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, text);
    if (!m) return;
    qo_graph *g = qo_module_main(m);
    qo_autodiff_opts o = {.loss = "loss"};
    CHECK(qo_autodiff(&cx, g, &o) == QO_OK);
    CHECK(qo_verify(&cx, m) == QO_OK);
    CHECK(out_index(g, "s_grad") > 0 && out_index(g, "g_grad") > 0 && out_index(g, "be_grad") > 0);
    qo_tensor x = {0};
    int64_t dx[3] = {2, 2, 3};
    qo_tensor_make(&cx, &x, QO_F32, 3, dx);
    for (int i = 0; i < 12; i++) ((float *)x.data)[i] = (float)(i % 5) * 0.3f - 0.6f;
    const qo_tensor *ins[1] = {&x};
    qo_tensor outs[4] = {{0}};
    CHECK(g->noutputs == 4 && qo_interp_run(&cx, m, ins, 1, outs, 4) == QO_OK);
    if (d.nerrors) qt_dump(&d);
    for (int i = 0; i < 4; i++) qo_tensor_free(&outs[i]);
    qo_tensor_free(&x);
    qo_module_free(m);
}

/* Learned bit width as Brevitas builds it: Quant(x, s, z, Round(bp)). The Round feeding only the bit
 * width is straight-through, so bp_grad equals the bit-width gradient of the same Quant fed bp's
 * rounded value directly (whose values test_quant_grad checks against torch); a Round elsewhere has
 * a zero gradient (torch.round). */
static void learned_bitwidth(void) {
    static const char fmt[] =
        "module {\n  opset \"\" = 17\n  graph @main(%%x : tensor<2x3xf32>) {\n"
        "    const %%s : tensor<f32> = [0.05]\n    const %%z : tensor<f32> = [0.0]\n    const %%bp : tensor<f32> = [%s]\n"
        "    const %%w : tensor<2x3xf32> = [0.9, -0.7, 0.33, 0.05, -0.41, 0.6]\n%s"
        "    %%y = \"qonnx.custom_op.general.Quant\"(%%w, %%s, %%z, %%%s) {narrow = 0, rounding_mode = \"ROUND\", signed = 1}\n"
        "    %%p = Mul(%%y, %%x)\n    %%loss = ReduceSum(%%p) {keepdims = 0}\n    return %%loss\n  }\n}\n";
    char t1[2048], t2[2048];
    snprintf(t1, sizeof t1, fmt, "3.2", "    %b = Round(%bp)\n", "b");
    snprintf(t2, sizeof t2, fmt, "3.0", "", "bp");
    float got[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        qo_ctx cx;
        qt_diags d;
        qt_ctx(&cx, &d);
        qo_module *m = parse(&cx, k ? t2 : t1);
        CHECK(m != NULL);
        if (!m) return;
        qo_graph *g = qo_module_main(m);
        const char *params[] = {"bp"};
        qo_autodiff_opts o = {.loss = "loss", .params = params, .nparams = 1, .learn_bitwidth = true};
        CHECK(qo_autodiff(&cx, g, &o) == QO_OK);
        qo_tensor x = {0}, outs[2] = {{0}};
        int64_t dx[2] = {2, 3};
        qo_tensor_make(&cx, &x, QO_F32, 2, dx);
        for (int i = 0; i < 6; i++) ((float *)x.data)[i] = 1.0f + (float)i;
        const qo_tensor *ins[1] = {&x};
        CHECK(qo_interp_run(&cx, m, ins, 1, outs, 2) == QO_OK);
        if (outs[1].data) got[k] = ((float *)outs[1].data)[0];
        if (d.nerrors) qt_dump(&d);
        qo_tensor_free(&x), qo_tensor_free(&outs[0]), qo_tensor_free(&outs[1]);
        qo_module_free(m);
    }
    CHECK(got[1] != 0.0f); /* 3 bits: 0.9 / 0.05 = 18 > 3 clamps */
    CHECK(got[0] == got[1]);
    if (got[0] != got[1]) fprintf(stderr, "bp_grad %g vs %g\n", got[0], got[1]);
}

/* A training graph (private ops, defaults on inputs, optimizer state) prints as .qir and parses back
 * to the same text, the parsed copy verifies, and it compiles for explicit input shapes. */
static void qir_roundtrip(void) {
    static const char text[] =
        "module {\n  opset \"\" = 17\n  graph @main(%x : tensor<2x1x4x4xf32>) {\n"
        "    const %w : tensor<2x1x3x3xf32> = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, -0.1, -0.2, -0.3, -0.4, -0.5, -0.6, -0.7, -0.8, -0.9]\n"
        "    const %lab : tensor<2xi64> = [1, 0]\n    %c = Conv(%x, %w) {group = 1}\n"
        "    %p = MaxPool(%c) {kernel_shape = [2, 2], strides = [2, 2]}\n    %f = Flatten(%p)\n"
        "    %loss = \"ai.qopt.train.SoftmaxCrossEntropy\"(%f, %lab)\n    return %loss\n  }\n}\n";
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, text);
    if (!m) return;
    CHECK(qo_pipeline_run(&cx, m, "autodiff,optimizer{kind=adam}", NULL) == QO_OK);
    char *a = NULL, *b = NULL;
    CHECK(qo_print_module_str(&cx, m, NULL, &a) == QO_OK);
    qo_module *m2 = a ? parse(&cx, a) : NULL;
    CHECK(m2 != NULL);
    if (m2) {
        CHECK(qo_verify(&cx, m2) == QO_OK);
        CHECK(qo_print_module_str(&cx, m2, NULL, &b) == QO_OK);
        CHECK(a && b && strcmp(a, b) == 0);
        CHECK(a && strstr(a, "\"ai.qopt.train.MaxPoolGrad\"") != NULL);
        CHECK(a && strstr(a, "opset \"ai.qopt.train\" = 1") != NULL);
    }
    /* compiled for explicit input shapes, the JIT re-infers every node's type: shape-infer must know
       the private ops (no dynamic values allowed here) */
    qo_graph *g = qo_module_main(m);
    qo_tensor shapes[16];
    memset(shapes, 0, sizeof shapes);
    for (uint32_t i = 0; i < g->ninputs && i < 16; i++) {
        const qo_typedata *t = qo_type_get(m, g->vals[g->inputs[i]].type);
        shapes[i].elem = t->elem, shapes[i].rank = t->rank;
        if (t->rank > 0) memcpy(shapes[i].dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    }
    qo_jit_opts jo = {.opt_level = -1, .ninput_shapes = g->ninputs, .input_shapes = shapes};
    qo_jit *j = NULL;
    CHECK(g->ninputs <= 16 && qo_jit_compile(&cx, m, &jo, &j) == QO_OK);
    qo_jit_free(j);
    if (d.nerrors) qt_dump(&d);
    free(a);
    free(b);
    qo_module_free(m2);
    qo_module_free(m);
}

/* SGD with dampening and Nesterov momentum, and Adam with weight decay, on their second step (state
 * fed back), against torch's formulas evaluated here in double. */
static void sgd_nesterov_adam_wd(void) {
    const float a0[3] = {1, -2, 0.5f}, x[3] = {0.5f, 1, -3};
    for (int kind = 0; kind < 2; kind++) {
        qo_ctx cx;
        qt_diags d;
        qt_ctx(&cx, &d);
        qo_module *m = parse(&cx, LIN);
        if (!m) return;
        const char *pl = kind == 0 ? "autodiff,optimizer{kind=sgd lr=0.1 momentum=0.8 dampening=0.2 nesterov weight-decay=0.05}"
                                   : "autodiff,optimizer{kind=adam lr=0.02 beta1=0.8 beta2=0.9 eps=1e-6 weight-decay=0.05}";
        CHECK(qo_pipeline_run(&cx, m, pl, NULL) == QO_OK);
        qo_graph *g = qo_module_main(m);
        /* reference state, double */
        double p[3], s1[3] = {0, 0, 0}, s2[3] = {0, 0, 0};
        for (int i = 0; i < 3; i++) p[i] = a0[i];
        qo_tensor in[8] = {{0}};
        const qo_tensor *inp[8] = {0};
        for (uint32_t i = 0; i < g->ninputs; i++) {
            if (g->vals[g->inputs[i]].cref) {
                qo_tensor v = {0};
                qo_tensor_from_const(&cx, m, g->vals[g->inputs[i]].cref, &v);
                qo_tensor_copy(&cx, &v, &in[i]);
            } else {
                int64_t dd = 3;
                qo_tensor_make(&cx, &in[i], QO_F32, 1, &dd);
                memcpy(in[i].data, x, sizeof x);
            }
            inp[i] = &in[i];
        }
        double maxe = 0;
        for (int step = 1; step <= 2; step++) {
            int ia = in_index(g, "a"), st = in_index(g, "adam_step");
            if (st >= 0) ((float *)in[st].data)[0] = (float)step;
            qo_tensor outs[8] = {{0}};
            if (qo_interp_run(&cx, m, inp, g->ninputs, outs, g->noutputs) != QO_OK) {
                qt_dump(&d);
                CHECK(false);
                break;
            }
            for (int i = 0; i < 3; i++) {
                double gr = 2.0 * p[i] * x[i] * x[i] + 0.05 * p[i];
                if (kind == 0) {
                    s1[i] = 0.8 * s1[i] + 0.8 * gr; /* (1 - dampening) g; torch's first step copies g instead */
                    p[i] -= 0.1 * (gr + 0.8 * s1[i]);
                } else {
                    s1[i] = 0.8 * s1[i] + 0.2 * gr;
                    s2[i] = 0.9 * s2[i] + 0.1 * gr * gr;
                    double bc1 = 1 - pow(0.8, step), bc2 = 1 - pow(0.9, step);
                    p[i] -= (0.02 / bc1) * s1[i] / (sqrt(s2[i]) / sqrt(bc2) + 1e-6);
                }
            }
            /* feed back every <x>_new */
            for (uint32_t i = 0; i < g->ninputs; i++) {
                char nm[64];
                snprintf(nm, sizeof nm, "%s_new", qo_val_name(g, g->inputs[i]));
                int o = out_index(g, nm);
                if (o >= 0) memcpy(in[i].data, outs[o].data, in[i].nbytes);
            }
            for (int i = 0; i < 3; i++) {
                double e = fabs(((float *)in[ia].data)[i] - p[i]);
                if (e > maxe) maxe = e;
            }
            for (uint32_t i = 0; i < g->noutputs; i++) qo_tensor_free(&outs[i]);
        }
        CHECK(maxe <= 2e-6);
        if (maxe > 2e-6) fprintf(stderr, "kind %d: max error %g\n", kind, maxe);
        for (uint32_t i = 0; i < g->ninputs; i++) qo_tensor_free(&in[i]);
        qo_module_free(m);
    }
}

int main(void) {
    RUN(sgd_nesterov_adam_wd);
    RUN(qir_roundtrip);
    RUN(learned_bitwidth);
    RUN(unneeded_dx);
    RUN(sgd_pass);
    RUN(adam_pass);
    RUN(errors);
    RUN(zeros_and_defaults);
    return qt_finish();
}
