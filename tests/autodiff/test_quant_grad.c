/* tests/autodiff/test_quant_grad.c — gradients of a QONNX Quant node (straight-through round, clamp
 * gradient zero outside the range, LSQ-style scale gradient, learned bit width) against torch
 * autograd through Brevitas's IntQuant, transcribed in tools/gen_train_refs.py (data committed in
 * tests/autodiff/data: quant_cases.txt and quant_<case>_{x,s,r,dx,ds,db}.npy). The differentiated
 * graph runs in the interpreter and the JIT. Tolerances: dX relative 2.5e-7 (it is dY or 0, the same
 * float32 v = x/s + z deciding the mask; torch's chain computes (dY * s) / s, within 2 ulp of dY),
 * dScale and dBitwidth (sums) relative 1e-5.
 * Also: default parameters include a constant scale and exclude the bit width unless learn_bitwidth.
 * Usage: test_autodiff_quant DATA_DIR */
#include "backends/llvm/jit.h"
#include "passes/autodiff/autodiff.h"
#include "runtime/npy.h"
#include "runtime/rt.h"
#include "tests/unit/test.h"

#include <math.h>

static const char *dir;

static qo_status load(qo_ctx *cx, const char *cname, const char *what, qo_tensor *t) {
    char p[1024];
    snprintf(p, sizeof p, "%s/quant_%s_%s.npy", dir, cname, what);
    return qo_npy_read(cx, p, t);
}

static void dims_text(const qo_tensor *t, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < t->rank; i++) o += (size_t)snprintf(buf + o, cap - o, "%lldx", (long long)t->dims[i]);
}

static double cmp(const qo_tensor *a, const qo_tensor *b, double *maxe) {
    if (qo_tensor_numel(a) != qo_tensor_numel(b)) return INFINITY;
    double worst = 0;
    for (int64_t i = 0; i < qo_tensor_numel(a); i++) {
        double x = ((const float *)a->data)[i], y = ((const float *)b->data)[i];
        double e = fabs(x - y) / (1e-6 + fabs(y));
        if (fabs(x - y) > *maxe) *maxe = fabs(x - y);
        if (e > worst) worst = e;
    }
    return worst;
}

/* Modes past the plain one, where the Quant's dX is not a graph output and the JIT may write it over
 * its dY when that buffer dies there (plan_memory), which must not change any value:
 *   M_CHAIN   the Quant reads h = x * 1 (exact): dY dies at the QuantGrad, which writes over it;
 *   M_SHARED  y = Quant(h) + Quant(h): both QuantGrads read the same dY, so only the second may
 *             write over it; every gradient is twice the reference (exact). */
enum { M_PLAIN, M_CHAIN, M_SHARED };
static const char *const mode_tag[] = {"", " (x * 1)", " (shared dY)"};

static void run_case(const char *name, int sgn, int narrow, double bits, double zp, const char *rnd, int mode) {
    qt_current = name;
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_tensor x = {0}, s = {0}, r = {0}, dx = {0}, ds = {0}, db = {0};
    bool ok = !load(&cx, name, "x", &x) && !load(&cx, name, "s", &s) && !load(&cx, name, "r", &r) &&
              !load(&cx, name, "dx", &dx) && !load(&cx, name, "ds", &ds) && !load(&cx, name, "db", &db);
    CHECK(ok);
    if (!ok) {
        qt_dump(&d);
        goto out;
    }
    if (mode == M_SHARED) { /* dx, ds, db: the sum of two equal terms */
        qo_tensor *refs[3] = {&dx, &ds, &db};
        for (int k = 0; k < 3; k++)
            for (int64_t i = 0; i < qo_tensor_numel(refs[k]); i++) ((float *)refs[k]->data)[i] *= 2.0f;
    }
    char xt[64], st[64], text[2048], q[256];
    dims_text(&x, xt, sizeof xt);
    dims_text(&s, st, sizeof st);
    /* a case named *_relu quantizes relu(x): the Relu's mask is folded into the QuantGrad */
    size_t nl = strlen(name);
    bool relu = nl > 5 && !strcmp(name + nl - 5, "_relu");
    snprintf(q, sizeof q, "\"qonnx.custom_op.general.Quant\"(%%%s, %%s, %%z, %%b) {narrow = %d, rounding_mode = \"%s\", signed = %d}",
             relu || mode ? "h" : "x", narrow, rnd, sgn);
    snprintf(text, sizeof text,
             "module {\n  opset \"\" = 17\n  graph @main(%%x : tensor<%sf32>, %%s : tensor<%sf32>, %%b : tensor<f32>, %%r : tensor<%sf32>) {\n"
             "    const %%z : tensor<f32> = [%g]\n%s"
             "%s%s%s%s%s"
             "    %%prod = Mul(%%y, %%r)\n    %%loss = ReduceSum(%%prod) {keepdims = 0}\n    return %%loss\n  }\n}\n",
             xt, st, xt, zp, relu ? "    %h = Relu(%x)\n" : mode ? "    const %one : tensor<f32> = [1.0]\n    %h = Mul(%x, %one)\n" : "",
             mode == M_SHARED ? "    %ya = " : "    %y = ", q, mode == M_SHARED ? "\n    %yb = " : "\n",
             mode == M_SHARED ? q : "", mode == M_SHARED ? "\n    %y = Add(%ya, %yb)\n" : "");
    qo_module *m = NULL;
    CHECK(qo_parse_module(&cx, "quant.qir", text, strlen(text), &m) == QO_OK);
    if (!m) {
        qt_dump(&d);
        goto out;
    }
    const char *params[] = {"x", "s", "b"};
    qo_autodiff_opts o = {.loss = "loss", .params = params, .nparams = 3, .learn_bitwidth = true};
    qo_status st_ = qo_autodiff(&cx, qo_module_main(m), &o);
    CHECK(st_ == QO_OK);
    CHECK(st_ || qo_verify(&cx, m) == QO_OK);
    if (!st_) { /* the fold: no Where left, the QuantGrad carries relu = 1 (and only then) */
        const qo_graph *g = qo_module_main(m);
        int wheres = 0, folded = 0;
        QO_FOR_EACH_NODE(g, n) {
            wheres += g->nodes[n].op == QO_OP_WHERE;
            folded += g->nodes[n].op == QO_OP_TRAIN_QUANTGRAD && qo_attr_int(g, n, "relu", 0) == 1;
        }
        CHECK_EQ(wheres, 0);
        CHECK_EQ(folded, relu ? 1 : 0);
    }
    qo_tensor b = {0};
    float bf = (float)bits;
    qo_tensor_make(&cx, &b, QO_F32, 0, NULL);
    memcpy(b.data, &bf, 4);
    const qo_tensor *ins[4] = {&x, &s, &b, &r};
    for (int eng = 0; eng < 2 && !st_; eng++) {
        qo_tensor outs[4] = {{0}};
        qo_status rs;
        qo_jit *j = NULL;
        if (eng == 0) rs = qo_interp_run(&cx, m, ins, 4, outs, 4);
        else {
            rs = qo_jit_compile(&cx, m, NULL, &j);
            if (!rs) rs = qo_jit_run(j, ins, 4, outs, 4);
            if (!rs) { /* chain and shared: one QuantGrad writes its dX over its dY */
                qo_jit_stats js;
                qo_jit_get_stats(j, &js);
                CHECK_EQ(js.inplace_kernels, mode ? 1u : 0u);
            }
        }
        CHECK(rs == QO_OK);
        if (rs) {
            qt_dump(&d);
        } else {
            double ex = 0, es = 0, eb = 0;
            double wx = cmp(&outs[1], &dx, &ex), ws = cmp(&outs[2], &ds, &es), wb = cmp(&outs[3], &db, &eb);
            CHECK(wx <= 2.5e-7); /* torch computes (dY * s) / s: within 2 ulp of dY */
            CHECK(ws <= 1e-5);
            CHECK(wb <= 1e-5);
            printf("%-14s %-6s%s dX max |err| %.3g  dScale rel %.3g  dBitwidth rel %.3g\n", name, eng ? "jit" : "interp",
                   mode_tag[mode], ex, ws, wb);
        }
        for (int i = 0; i < 4; i++) qo_tensor_free(&outs[i]);
        qo_jit_free(j);
    }
    qo_tensor_free(&b);
    qo_module_free(m);
out:
    qo_tensor_free(&x), qo_tensor_free(&s), qo_tensor_free(&r);
    qo_tensor_free(&dx), qo_tensor_free(&ds), qo_tensor_free(&db);
}

/* Default parameters: a constant scale gets a gradient, the zero point never, the bit width only with
 * learn_bitwidth. */
static void default_params(void) {
    qt_current = "default_params";
    static const char text[] =
        "module {\n  opset \"\" = 17\n  graph @main(%x : tensor<2x3xf32>) {\n"
        "    const %s : tensor<f32> = [0.1]\n    const %z : tensor<f32> = [0.0]\n    const %b : tensor<f32> = [4.0]\n"
        "    const %w : tensor<2x3xf32> = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\n"
        "    %y = \"qonnx.custom_op.general.Quant\"(%w, %s, %z, %b) {narrow = 0, rounding_mode = \"ROUND\", signed = 1}\n"
        "    %p = Mul(%y, %x)\n    %loss = ReduceSum(%p) {keepdims = 0}\n    return %loss\n  }\n}\n";
    for (int lb = 0; lb < 2; lb++) {
        qo_ctx cx;
        qt_diags d;
        qt_ctx(&cx, &d);
        qo_module *m = NULL;
        CHECK(qo_parse_module(&cx, "q.qir", text, strlen(text), &m) == QO_OK);
        if (!m) return;
        qo_autodiff_opts o = {.loss = "loss", .learn_bitwidth = lb != 0};
        qo_graph *g = qo_module_main(m);
        CHECK(qo_autodiff(&cx, g, &o) == QO_OK);
        CHECK(qo_graph_find(g, "w_grad") != 0);
        CHECK(qo_graph_find(g, "s_grad") != 0);
        CHECK(qo_graph_find(g, "z_grad") == 0);
        CHECK((qo_graph_find(g, "b_grad") != 0) == (lb != 0));
        CHECK_EQ(g->noutputs, 3u + (unsigned)lb);
        qo_module_free(m);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    char p[1024];
    snprintf(p, sizeof p, "%s/quant_cases.txt", dir);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    char name[64], rnd[16];
    int sgn, narrow;
    double bits, zp;
    int n = 0;
    while (f && fscanf(f, "%63s %d %d %lf %lf %15s", name, &sgn, &narrow, &bits, &zp, rnd) == 6) {
        run_case(name, sgn, narrow, bits, zp, rnd, M_PLAIN);
        size_t nl = strlen(name);
        if (!(nl > 5 && !strcmp(name + nl - 5, "_relu")))
            for (int mode = M_CHAIN; mode <= M_SHARED; mode++) run_case(name, sgn, narrow, bits, zp, rnd, mode);
        n++;
    }
    if (f) fclose(f);
    CHECK(n >= 4);
    RUN(default_params);
    return qt_finish();
}
