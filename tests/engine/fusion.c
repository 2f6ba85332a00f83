/* tests/engine/fusion.c — the JIT's epilogue fusion (Add / Relu / Clip after Conv, Gemm, MatMul run
 * in the kernel's epilogue) gives bit for bit the result of the unfused program (qo_jit_opts.no_fusion:
 * the kernel, then each op in its own loop), on graphs that reach every Conv path (im2col, 1x1,
 * depthwise, several images per sgemm, output-channel split at batch 1), residual Adds on either
 * side, MatMul bias Adds, Relu and Clip; and the fusion really happened (epilogue_ops). Inputs hold
 * a few NaN and +-Inf. Also: a Relu whose input has a second reader is not fused. Transposes
 * folded into MatMul strides (operand A, transposed operand B, the result; multi-head attention
 * shapes) and Reshapes sharing their input's buffer give the result of the unfused program too
 * (Transpose by the reference kernel, dense sgemm, copied Reshape). Training steps (fast_conv): the
 * 1x1 "siblings" of strided convolutions and the QuantGrad epilogue of ConvTranspose against the
 * unfused program. Prints "N passed, N failed". */
#include "backends/llvm/jit.h"
#include "ir/ir.h"

#include <inttypes.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int npass, nfail;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (c) npass++;                                                                            \
        else {                                                                                     \
            nfail++;                                                                               \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (float)((rng_state * 0x2545f4914f6cdd1dull) >> 40) / (float)(1 << 23) - 1.0f;
}

/* Appends "const %name : tensor<dims x f32> = [...]" with random values scaled by sc. */
static void add_const(char **s, size_t *len, const char *name, const int64_t *d, int r, float sc) {
    char buf[256];
    int64_t n = 1;
    int k = snprintf(buf, sizeof buf, "    const %%%s : tensor<", name);
    for (int i = 0; i < r; i++) k += snprintf(buf + k, sizeof buf - (size_t)k, "%" PRId64 "x", d[i]), n *= d[i];
    snprintf(buf + k, sizeof buf - (size_t)k, "f32> = [");
    size_t need = *len + strlen(buf) + (size_t)n * 20 + 8;
    *s = realloc(*s, need);
    *len += (size_t)sprintf(*s + *len, "%s", buf);
    for (int64_t i = 0; i < n; i++) *len += (size_t)sprintf(*s + *len, "%s%.9g", i ? ", " : "", frand() * sc);
    *len += (size_t)sprintf(*s + *len, "]\n");
}

typedef struct tcase {
    const char *name;
    const char *inputs; /* graph parameter list */
    const char *body;   /* nodes and return, after the constants */
    const char *consts[4];
    int64_t cdims[4][4];
    int crank[4];
    uint32_t want_epilogue; /* ops fused into epilogues */
    uint32_t want_folded;   /* Transposes folded into MatMul strides */
    uint32_t want_aliased;  /* Reshapes sharing their input's buffer */
} tcase;

static void run_case(const tcase *tc) {
    char *s = NULL;
    size_t len = 0;
    s = malloc(4096);
    len = (size_t)sprintf(s, "module {\n  opset \"\" = 13\n  graph @main(%s) {\n", tc->inputs);
    for (int c = 0; c < 4 && tc->consts[c]; c++) {
        bool scalar = tc->crank[c] == 0;
        if (scalar) { /* Clip bounds */
            s = realloc(s, len + 128);
            len += (size_t)sprintf(s + len, "    const %%%s : tensor<f32> = [%s]\n", tc->consts[c],
                                   !strcmp(tc->consts[c], "lo") ? "0.0" : "0.75");
        } else {
            add_const(&s, &len, tc->consts[c], tc->cdims[c], tc->crank[c], 0.4f);
        }
    }
    s = realloc(s, len + strlen(tc->body) + 16);
    len += (size_t)sprintf(s + len, "%s  }\n}\n", tc->body);
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = NULL;
    if (qo_parse_module(&cx, tc->name, s, len, &m) != QO_OK) {
        CHECK(false, "%s: the test model does not parse:\n%s", tc->name, s);
        free(s);
        return;
    }
    free(s);
    const qo_graph *g = qo_module_main(m);
    uint32_t nin = g->ninputs;
    qo_tensor in[4] = {{0}};
    const qo_tensor *ins[4];
    for (uint32_t i = 0; i < nin && i < 4; i++) {
        const qo_typedata *td = qo_type_get(m, g->vals[g->inputs[i]].type);
        qo_tensor_make(&cx, &in[i], QO_F32, td->rank, td->dims);
        float *p = in[i].data;
        int64_t n = qo_tensor_numel(&in[i]);
        for (int64_t k = 0; k < n; k++) p[k] = frand() * 2.0f;
        if (n > 40) p[3] = NAN, p[17] = INFINITY, p[29] = -INFINITY; /* specials, too */
        ins[i] = &in[i];
    }
    qo_tensor out[2] = {{0}, {0}};
    qo_jit_stats st[2];
    bool ok = true;
    for (int f = 0; f < 2 && ok; f++) {
        qo_jit_opts o = {.threads = 2, .opt_level = -1, .no_fusion = f == 1};
        qo_jit *j = NULL;
        ok = qo_jit_compile(&cx, m, &o, &j) == QO_OK && qo_jit_run(j, ins, nin, &out[f], 1) == QO_OK;
        if (j) qo_jit_get_stats(j, &st[f]);
        qo_jit_free(j);
    }
    CHECK(ok, "%s: compile or run failed", tc->name);
    if (ok) {
        CHECK(st[0].epilogue_ops == tc->want_epilogue, "%s: %u ops fused into epilogues, want %u", tc->name,
              st[0].epilogue_ops, tc->want_epilogue);
        CHECK(st[1].epilogue_ops == 0, "%s: no_fusion still fused %u ops", tc->name, st[1].epilogue_ops);
        CHECK(st[0].folded_transposes == tc->want_folded && st[0].aliased_copies == tc->want_aliased,
              "%s: %u Transposes folded, %u copies aliased; want %u, %u", tc->name, st[0].folded_transposes,
              st[0].aliased_copies, tc->want_folded, tc->want_aliased);
        CHECK(st[1].folded_transposes == 0 && st[1].aliased_copies == 0, "%s: no_fusion still folded/aliased",
              tc->name);
        int64_t n = qo_tensor_numel(&out[0]), bad = -1;
        const uint32_t *a = out[0].data, *b = out[1].data;
        const float *af = out[0].data, *bf = out[1].data;
        /* bit for bit, except where a Transpose was folded into the BLAS call: cblas_sgemm does not
           promise the same summation order for op(A) = A^T as for a copied A^T (OpenBLAS's Haswell
           kernels, which it picks on Zen 5, round differently; its SkylakeX kernels agree) */
        double tol = st[0].folded_transposes ? 32.0 * FLT_EPSILON : 0.0;
        for (int64_t k = 0; k < n && bad < 0; k++)
            if (a[k] != b[k] && !(isnan(af[k]) && isnan(bf[k])) &&
                !(tol > 0 && isfinite(af[k]) && fabs((double)af[k] - bf[k]) <= tol * (1.0 + fabs((double)af[k]) + fabs((double)bf[k]))))
                bad = k;
        CHECK(n == qo_tensor_numel(&out[1]) && bad < 0, "%s: fused and unfused differ at %" PRId64 ": %.9g vs %.9g",
              tc->name, bad, bad >= 0 ? af[bad] : 0.0, bad >= 0 ? bf[bad] : 0.0);
    }
    for (int f = 0; f < 2; f++) qo_tensor_free(&out[f]);
    for (uint32_t i = 0; i < nin && i < 4; i++) qo_tensor_free(&in[i]);
    qo_module_free(m);
}

/* Parses the test model text s (freed) as `name`; NULL, a failed check, if it does not parse. */
static qo_module *parse_model(qo_ctx *cx, const char *name, char *s, size_t len) {
    qo_module *mod = NULL;
    if (qo_parse_module(cx, name, s, len, &mod) != QO_OK) {
        CHECK(false, "%s: the test model does not parse:\n%s", name, s);
        mod = NULL;
    }
    free(s);
    return mod;
}

/* The main graph's n float32 inputs with random values in [-1, 1), input `big` (-1: none) times 16. */
static void random_inputs(qo_ctx *cx, qo_module *mod, uint32_t n, qo_tensor *in, const qo_tensor **ins, int big) {
    const qo_graph *g = qo_module_main(mod);
    for (uint32_t i = 0; i < n; i++) {
        const qo_typedata *td = qo_type_get(mod, g->vals[g->inputs[i]].type);
        qo_tensor_make(cx, &in[i], QO_F32, td->rank, td->dims);
        float *p = in[i].data;
        for (int64_t e = 0; e < qo_tensor_numel(&in[i]); e++) p[e] = frand() * ((int)i == big ? 16.0f : 1.0f);
        ins[i] = &in[i];
    }
}

/* ResNet's downsample beside a 3x3 stride-2 convolution in a training step (fast_conv): the forward
 * 1x1 Conv (its bias computed after the 3x3, so its producer is hoisted), the two input gradients
 * summed by an Add, and the two weight gradients (the 1x1's read later) run as three sibling calls
 * (sibling_convs), and
 * all outputs agree with the unfused program (each op alone) to float rounding: the input
 * gradient sums the sibling in the center tap's sums, another order. dep: the 1x1's bias is computed
 * from the 3x3's output (a second reader, so not in its chain), which must keep the 1x1 out of the
 * 3x3's call (two sibling calls, nothing hoisted above the 3x3). */
static void run_siblings(int64_t n, int64_t c, int64_t hw, bool dep) {
    int64_t m = 2 * c, o = (hw - 1) / 2 + 1;
    char *s = malloc(4096);
    size_t len = (size_t)sprintf(s,
        "module {\n  opset \"\" = 13\n  opset \"ai.qopt.train\" = 1\n"
        "  graph @main(%%x : tensor<%lldx%lldx%lldx%lldxf32>, %%dy1 : tensor<%lldx%lldx%lldx%lldxf32>, "
        "%%dy2 : tensor<%lldx%lldx%lldx%lldxf32>, %%k : tensor<f32>) {\n",
        (long long)n, (long long)c, (long long)hw, (long long)hw, (long long)n, (long long)m, (long long)o,
        (long long)o, (long long)n, (long long)m, (long long)o, (long long)o);
    int64_t dw[4] = {m, c, 3, 3}, dw2[4] = {m, c, 1, 1}, db[1] = {m};
    add_const(&s, &len, "w", dw, 4, 0.4f);
    add_const(&s, &len, "b", db, 1, 0.4f);
    add_const(&s, &len, "w2", dw2, 4, 0.4f);
    char body[3072];
    snprintf(body, sizeof body,
        "    const %%two : tensor<f32> = [2.0]\n"
        "    %%c = Conv(%%x, %%w, %%b) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]} : tensor<%lldx%lldx%lldx%lldxf32>\n"
        "    %%r = Relu(%%c) : tensor<%lldx%lldx%lldx%lldxf32>\n"
        "    %%bm = ReduceMean(%%%s) {axes = [0, 2, 3], keepdims = 0} : tensor<%lldxf32>\n"
        "    %%b2 = Mul(%%bm, %%k) : tensor<%lldxf32>\n"
        "    %%d = Conv(%%x, %%w2, %%b2) {kernel_shape = [1, 1], strides = [2, 2]} : tensor<%lldx%lldx%lldx%lldxf32>\n"
        "    %%rd = Relu(%%d) : tensor<%lldx%lldx%lldx%lldxf32>\n"
        "    %%y = Add(%%r, %%rd) : tensor<%lldx%lldx%lldx%lldxf32>\n"
        "    %%g1 = ConvTranspose(%%dy2, %%w2) {kernel_shape = [1, 1], output_padding = [%d, %d], strides = [2, 2]} : tensor<%lldx%lldx%lldx%lldxf32>\n"
        "    %%g2 = ConvTranspose(%%dy1, %%w) {kernel_shape = [3, 3], output_padding = [%d, %d], pads = [1, 1, 1, 1], strides = [2, 2]} : tensor<%lldx%lldx%lldx%lldxf32>\n"
        "    %%gx = Add(%%g1, %%g2) : tensor<%lldx%lldx%lldx%lldxf32>\n"
        "    %%gw1 = \"ai.qopt.train.ConvGradWeight\"(%%dy2, %%x, %%w2) {pads = [0, 0, 0, 0], strides = [2, 2]} : tensor<%lldx%lldx1x1xf32>\n"
        "    %%gw2 = \"ai.qopt.train.ConvGradWeight\"(%%dy1, %%x, %%w) {pads = [1, 1, 1, 1], strides = [2, 2]} : tensor<%lldx%lldx3x3xf32>\n"
        "    %%gw1s = Mul(%%gw1, %%two) : tensor<%lldx%lldx1x1xf32>\n"
        "    return %%y, %%gx, %%gw1s, %%gw2\n  }\n}\n",
        (long long)n, (long long)m, (long long)o, (long long)o, (long long)n, (long long)m, (long long)o, (long long)o,
        dep ? "c" : "dy1", (long long)m, (long long)m, (long long)n, (long long)m, (long long)o, (long long)o, (long long)n, (long long)m, (long long)o,
        (long long)o, (long long)n, (long long)m, (long long)o, (long long)o, (int)(hw % 2 == 0), (int)(hw % 2 == 0),
        (long long)n, (long long)c, (long long)hw, (long long)hw, (int)(hw % 2 == 0), (int)(hw % 2 == 0), (long long)n,
        (long long)c, (long long)hw, (long long)hw, (long long)n, (long long)c, (long long)hw, (long long)hw,
        (long long)m, (long long)c, (long long)m, (long long)c, (long long)m, (long long)c);
    s = realloc(s, len + strlen(body) + 1);
    memcpy(s + len, body, strlen(body) + 1);
    len += strlen(body);
    char name[64];
    snprintf(name, sizeof name, "siblings_n%lld_c%lld_hw%lld%s", (long long)n, (long long)c, (long long)hw,
             dep ? "_bias_after" : "");
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *mod = parse_model(&cx, name, s, len);
    if (!mod) return;
    qo_tensor in[4] = {{0}}, out[2][4];
    const qo_tensor *ins[4];
    random_inputs(&cx, mod, 4, in, ins, -1);
    memset(out, 0, sizeof out);
    qo_jit_stats st[2];
    bool ok = true;
    for (int f = 0; f < 2 && ok; f++) {
        qo_jit_opts op = {.threads = 2, .opt_level = -1, .fast_conv = true, .no_fusion = f == 1};
        qo_jit *j = NULL;
        ok = qo_jit_compile(&cx, mod, &op, &j) == QO_OK && qo_jit_run(j, ins, 4, out[f], 4) == QO_OK;
        if (j) qo_jit_get_stats(j, &st[f]);
        qo_jit_free(j);
    }
    CHECK(ok, "%s: compile or run failed", name);
    if (ok) {
        CHECK(st[0].sibling_convs == (dep ? 2u : 3u) && st[1].sibling_convs == 0, "%s: %u and %u sibling calls, want %d and 0",
              name, st[0].sibling_convs, st[1].sibling_convs, dep ? 2 : 3);
        for (int k = 0; k < 4; k++) {
            int64_t cnt = qo_tensor_numel(&out[0][k]);
            const float *a = out[0][k].data, *b = out[1][k].data;
            double md = 0, mx = 0;
            for (int64_t i = 0; i < cnt; i++) {
                md = fmax(md, fabs((double)a[i] - b[i]));
                mx = fmax(mx, fabs((double)b[i]));
            }
            CHECK(cnt == qo_tensor_numel(&out[1][k]) && cnt > 0 && md <= 1e-5 * mx,
                  "%s: output %d differs from the unfused program by %.3g (max %.3g)", name, k, md, mx);
        }
    }
    for (int f = 0; f < 2; f++)
        for (int k = 0; k < 4; k++) qo_tensor_free(&out[f][k]);
    for (int i = 0; i < 4; i++) qo_tensor_free(&in[i]);
    qo_module_free(mod);
}

/* A QuantGrad on a ConvTranspose's result (training: the input gradient meeting the previous layer's
 * activation quantizer: zero point 3, so the relu mask matters, and a run-time scale) runs in the ConvTranspose's call
 * (qgrad_epilogues): stride 1 with a residual Add (Winograd F(4x4) on 16 images), or stride 2 with
 * the 1x1 sibling. dX equals the unfused program's bit for bit (to float rounding with the sibling,
 * whose sums are reordered); dScale is within the blocked-sum error bound of the double sum of its
 * terms, computed here from a second copy of the gradient (%h) that the program also returns. When
 * nothing reads dX (a model input's gradient, only its scale's gradient wanted) it is not fused. */
static void run_qgrad(int64_t n, int64_t c, int64_t m, int64_t hw, bool sib, bool dx_unused) {
    int64_t o = sib ? hw / 2 : hw;
    char t_dy[64], t_x[64];
    snprintf(t_dy, sizeof t_dy, "tensor<%lldx%lldx%lldx%lldxf32>", (long long)n, (long long)m, (long long)o, (long long)o);
    snprintf(t_x, sizeof t_x, "tensor<%lldx%lldx%lldx%lldxf32>", (long long)n, (long long)c, (long long)hw, (long long)hw);
    char *s = malloc(4096);
    size_t len = (size_t)sprintf(s,
        "module {\n  opset \"\" = 13\n  opset \"ai.qopt.train\" = 1\n"
        "  graph @main(%%dy : %s, %%r : %s, %%xq : %s, %%s : tensor<f32>) {\n", t_dy, sib ? t_dy : t_x, t_x);
    int64_t dw[4] = {m, c, 3, 3}, dw2[4] = {m, c, 1, 1};
    add_const(&s, &len, "w", dw, 4, 0.3f);
    add_const(&s, &len, "w2", dw2, 4, 0.3f);
    const char *ct = sib ? "{kernel_shape = [3, 3], output_padding = [1, 1], pads = [1, 1, 1, 1], strides = [2, 2]}"
                         : "{kernel_shape = [3, 3], pads = [1, 1, 1, 1]}";
    char body[3072];
    int k = 0;
    k += snprintf(body + k, sizeof body - (size_t)k,
                  "    const %%z : tensor<f32> = [3.0]\n    const %%bits : tensor<f32> = [8.0]\n");
    for (int copy = 0; copy < 2; copy++) { /* %g0 + %g1 (into the QuantGrad) and the same as %h */
        const char *v = copy ? "h" : "g";
        k += snprintf(body + k, sizeof body - (size_t)k, "    %%%s0 = ConvTranspose(%%dy, %%w) %s : %s\n", v, ct, t_x);
        if (sib)
            k += snprintf(body + k, sizeof body - (size_t)k,
                          "    %%%s1 = ConvTranspose(%%r, %%w2) {kernel_shape = [1, 1], output_padding = [1, 1], "
                          "strides = [2, 2]} : %s\n", v, t_x);
        k += snprintf(body + k, sizeof body - (size_t)k, "    %%%s = Add(%%%s0, %%%s) : %s\n", v, v,
                      sib ? (copy ? "h1" : "g1") : "r", t_x);
    }
    k += snprintf(body + k, sizeof body - (size_t)k,
                  "    %%dx, %%ds, _ = \"ai.qopt.train.QuantGrad\"(%%g, %%xq, %%s, %%z, %%bits) {reduce = 1, relu = 1, "
                  "signed = 0} : %s, tensor<f32>\n    return %s%%ds, %%h\n  }\n}\n", t_x, dx_unused ? "" : "%dx, ");
    s = realloc(s, len + (size_t)k + 1);
    memcpy(s + len, body, (size_t)k + 1);
    len += (size_t)k;
    char name[80];
    snprintf(name, sizeof name, "qgrad_n%lld_c%lld_hw%lld%s%s", (long long)n, (long long)c, (long long)hw,
             sib ? "_sibling" : "_residual", dx_unused ? "_dx_unused" : "");
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *mod = parse_model(&cx, name, s, len);
    if (!mod) return;
    qo_tensor in[4] = {{0}}, out[2][3];
    const qo_tensor *ins[4];
    random_inputs(&cx, mod, 4, in, ins, 2);
    ((float *)in[3].data)[0] = 0.05f; /* x / s over [-320, 320]: inside [0, 255], above, below */
    memset(out, 0, sizeof out);
    qo_jit_stats st[2];
    uint32_t nout = dx_unused ? 2 : 3;
    bool ok = true;
    for (int f = 0; f < 2 && ok; f++) {
        qo_jit_opts op = {.threads = 2, .opt_level = -1, .fast_conv = true, .no_fusion = f == 1};
        qo_jit *j = NULL;
        ok = qo_jit_compile(&cx, mod, &op, &j) == QO_OK && qo_jit_run(j, ins, 4, out[f], nout) == QO_OK;
        if (j) qo_jit_get_stats(j, &st[f]);
        qo_jit_free(j);
    }
    CHECK(ok, "%s: compile or run failed", name);
    if (ok) {
        uint32_t want = dx_unused ? 0 : 1;
        CHECK(st[0].qgrad_epilogues == want && st[1].qgrad_epilogues == 0, "%s: %u and %u QuantGrad epilogues, want %u and 0",
              name, st[0].qgrad_epilogues, st[1].qgrad_epilogues, want);
        int id = dx_unused ? -1 : 0, is = dx_unused ? 0 : 1, ih = is + 1;
        int64_t cnt = qo_tensor_numel(&out[0][ih]);
        if (id == 0) { /* dX: the unfused program's */
            const float *a = out[0][0].data, *b = out[1][0].data;
            double md = 0, mx = 0;
            for (int64_t i = 0; i < cnt; i++) md = fmax(md, fabs((double)a[i] - b[i])), mx = fmax(mx, fabs((double)b[i]));
            bool same = memcmp(a, b, (size_t)cnt * sizeof(float)) == 0;
            CHECK(sib ? md <= 1e-5 * mx : same, "%s: dX differs from the unfused program by %.3g (max %.3g)", name, md, mx);
        }
        /* dScale against the double sum of its terms, from %h (the gradient the QuantGrad read) */
        const float *h = out[0][ih].data, *xq = in[2].data;
        float sc = ((float *)in[3].data)[0];
        double sum = 0, sabs = 0;
        for (int64_t i = 0; i < cnt; i++) {
            float xs = xq[i] / sc, v = xs + 3.0f, cl = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
            bool inside = v >= 0.0f && v <= 255.0f;
            float t = h[i] * ((nearbyintf(cl) - 3.0f) - (inside ? xs : 0.0f));
            sum += t, sabs += fabs(t);
        }
        double bound = 2.0 * 165 * ldexp(1.0, -24) * sabs;
        float dsf = ((float *)out[0][is].data)[0], dsu = ((float *)out[1][is].data)[0];
        CHECK(fabs(dsf - sum) <= bound && fabs(dsu - sum) <= bound + 1e-5 * sabs * sib,
              "%s: dScale %.9g (unfused %.9g), double sum of the terms %.9g, bound %.3g", name, (double)dsf, (double)dsu,
              sum, bound);
    }
    for (int f = 0; f < 2; f++)
        for (uint32_t e = 0; e < 3; e++) qo_tensor_free(&out[f][e]);
    for (int i = 0; i < 4; i++) qo_tensor_free(&in[i]);
    qo_module_free(mod);
}

int main(void) {
    static const tcase cases[] = {
        {"conv3x3_add_relu", "%x : tensor<2x8x10x10xf32>, %r : tensor<2x16x10x10xf32>",
         "    %c = Conv(%x, %w, %b) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]} : tensor<2x16x10x10xf32>\n"
         "    %s = Add(%r, %c) : tensor<2x16x10x10xf32>\n"
         "    %y = Relu(%s) : tensor<2x16x10x10xf32>\n    return %y\n",
         {"w", "b"}, {{16, 8, 3, 3}, {16}}, {4, 1}, 2, 0, 0},
        {"conv_big_images", "%x : tensor<4x8x40x40xf32>, %r : tensor<4x16x20x20xf32>",
         "    %c = Conv(%x, %w, %b) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]} : tensor<4x16x20x20xf32>\n"
         "    %s = Add(%c, %r) : tensor<4x16x20x20xf32>\n"
         "    %y = Clip(%s, %lo, %hi) : tensor<4x16x20x20xf32>\n    return %y\n",
         {"w", "b", "lo", "hi"}, {{16, 8, 3, 3}, {16}}, {4, 1, 0, 0}, 2, 0, 0},
        {"conv1x1_clip", "%x : tensor<4x16x6x6xf32>",
         "    %c = Conv(%x, %w) : tensor<4x32x6x6xf32>\n"
         "    %y = Clip(%c, %lo, %hi) : tensor<4x32x6x6xf32>\n    return %y\n",
         {"w", "lo", "hi"}, {{32, 16, 1, 1}}, {4, 0, 0}, 1, 0, 0},
        {"conv_channel_split_b1", "%x : tensor<1x64x4x4xf32>",
         "    %c = Conv(%x, %w, %b) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]} : tensor<1x128x4x4xf32>\n"
         "    %y = Relu(%c) : tensor<1x128x4x4xf32>\n    return %y\n",
         {"w", "b"}, {{128, 64, 3, 3}, {128}}, {4, 1}, 1, 0, 0},
        {"depthwise_add_clip", "%x : tensor<2x6x12x12xf32>, %r : tensor<2x6x12x12xf32>",
         "    %c = Conv(%x, %w, %b) {group = 6, kernel_shape = [3, 3], pads = [1, 1, 1, 1]} : tensor<2x6x12x12xf32>\n"
         "    %s = Add(%c, %r) : tensor<2x6x12x12xf32>\n"
         "    %y = Clip(%s, %lo, %hi) : tensor<2x6x12x12xf32>\n    return %y\n",
         {"w", "b", "lo", "hi"}, {{6, 1, 3, 3}, {6}}, {4, 1, 0, 0}, 2, 0, 0},
        {"matmul_bias_residual_relu", "%a : tensor<2x9x24xf32>, %r : tensor<2x9x20xf32>",
         "    %m = MatMul(%a, %w) : tensor<2x9x20xf32>\n"
         "    %s = Add(%bias, %m) : tensor<2x9x20xf32>\n"
         "    %t = Add(%s, %r) : tensor<2x9x20xf32>\n"
         "    %y = Relu(%t) : tensor<2x9x20xf32>\n    return %y\n",
         {"w", "bias"}, {{24, 20}, {20}}, {2, 1}, 3, 0, 0},
        {"gemm_relu", "%a : tensor<7x24xf32>",
         "    %m = Gemm(%a, %w, %c) {transB = 1} : tensor<7x20xf32>\n"
         "    %y = Relu(%m) : tensor<7x20xf32>\n    return %y\n",
         {"w", "c"}, {{20, 24}, {20}}, {2, 1}, 1, 0, 0},
        /* multi-head attention, 3 heads of 5: head split (Reshape, aliased) + Transpose into A, into a
         * transposed B (K^T) and into B, head merge Transpose written through the result's strides */
        {"attention_heads", "%x : tensor<2x7x15xf32>",
         "    const %hs : tensor<4xi64> = [2, 7, 3, 5]\n"
         "    const %ms : tensor<3xi64> = [2, 7, 15]\n"
         "    %q0 = MatMul(%x, %wq) : tensor<2x7x15xf32>\n"
         "    %q1 = Add(%bq, %q0) : tensor<2x7x15xf32>\n"
         "    %q2 = Reshape(%q1, %hs) : tensor<2x7x3x5xf32>\n"
         "    %q = Transpose(%q2) {perm = [0, 2, 1, 3]} : tensor<2x3x7x5xf32>\n"
         "    %k0 = MatMul(%x, %wk) : tensor<2x7x15xf32>\n"
         "    %k2 = Reshape(%k0, %hs) : tensor<2x7x3x5xf32>\n"
         "    %k = Transpose(%k2) {perm = [0, 2, 3, 1]} : tensor<2x3x5x7xf32>\n"
         "    %v2 = Reshape(%x, %hs) : tensor<2x7x3x5xf32>\n"
         "    %v = Transpose(%v2) {perm = [0, 2, 1, 3]} : tensor<2x3x7x5xf32>\n"
         "    %s = MatMul(%q, %k) : tensor<2x3x7x7xf32>\n"
         "    %p = Softmax(%s) {axis = -1} : tensor<2x3x7x7xf32>\n"
         "    %o = MatMul(%p, %v) : tensor<2x3x7x5xf32>\n"
         "    %ot = Transpose(%o) {perm = [0, 2, 1, 3]} : tensor<2x7x3x5xf32>\n"
         "    %om = Reshape(%ot, %ms) : tensor<2x7x15xf32>\n"
         "    %y = Add(%om, %q1) : tensor<2x7x15xf32>\n    return %y\n",
         {"wq", "bq", "wk"}, {{15, 15}, {15}, {15, 15}}, {2, 1, 2}, 2, 4, 2},
        /* transposed A (a [K, M] view), rank-2 B broadcast over the batch; the result's Transpose moves
         * the last axis: not folded */
        {"transposed_a_bias", "%x : tensor<3x9x6xf32>",
         "    %a = Transpose(%x) {perm = [0, 2, 1]} : tensor<3x6x9xf32>\n"
         "    %m = MatMul(%a, %w) : tensor<3x6x11xf32>\n"
         "    %s = Add(%m, %bias) : tensor<3x6x11xf32>\n"
         "    %y = Transpose(%s) {perm = [0, 2, 1]} : tensor<3x11x6xf32>\n    return %y\n",
         {"w", "bias"}, {{9, 11}, {11}}, {2, 1}, 1, 1, 0},
        /* batch axes swapped on both sides, then bias, residual and Relu in the epilogue */
        {"batch_swap_epilogue", "%x : tensor<3x4x6xf32>, %r : tensor<3x4x7xf32>",
         "    %a = Transpose(%x) {perm = [1, 0, 2]} : tensor<4x3x6xf32>\n"
         "    %m = MatMul(%a, %w) : tensor<4x3x7xf32>\n"
         "    %t = Transpose(%m) {perm = [1, 0, 2]} : tensor<3x4x7xf32>\n"
         "    %s = Add(%bias, %t) : tensor<3x4x7xf32>\n"
         "    %u = Add(%s, %r) : tensor<3x4x7xf32>\n"
         "    %y = Relu(%u) : tensor<3x4x7xf32>\n    return %y\n",
         {"w", "bias"}, {{6, 7}, {7}}, {2, 1}, 3, 2, 0},
        /* one-row matrices (M = 1: any row stride), and a Transpose with a second reader (not folded) */
        {"single_row_second_reader", "%x : tensor<3x9x1xf32>, %z : tensor<5x9xf32>",
         "    %a = Transpose(%x) {perm = [0, 2, 1]} : tensor<3x1x9xf32>\n"
         "    %m = MatMul(%a, %w) : tensor<3x1x4xf32>\n"
         "    %b = Transpose(%z) {perm = [1, 0]} : tensor<9x5xf32>\n"
         "    %n = MatMul(%a, %b) : tensor<3x1x5xf32>\n"
         "    %c = Neg(%b) : tensor<9x5xf32>\n"
         "    %o = MatMul(%m, %v) : tensor<3x1x9xf32>\n"
         "    %y = Concat(%o, %n, %n, %n, %n) {axis = 2} : tensor<3x1x29xf32>\n"
         "    %z2 = ReduceSum(%c) {keepdims = 0} : tensor<f32>\n"
         "    %y2 = Add(%y, %z2) : tensor<3x1x29xf32>\n    return %y2\n",
         {"w", "v"}, {{9, 4}, {4, 9}}, {2, 2}, 0, 0, 0},
        /* the erf GELU (PyTorch's export) after a MatMul + bias, then a second MatMul */
        {"matmul_bias_gelu", "%x : tensor<2x5x12xf32>",
         "    const %c1 : tensor<f32> = [1.41421354]\n    const %c2 : tensor<f32> = [1.0]\n"
         "    const %c3 : tensor<f32> = [0.5]\n"
         "    %m = MatMul(%x, %w) : tensor<2x5x33xf32>\n"
         "    %h = Add(%bias, %m) : tensor<2x5x33xf32>\n"
         "    %d = Div(%h, %c1) : tensor<2x5x33xf32>\n"
         "    %e = Erf(%d) : tensor<2x5x33xf32>\n"
         "    %a = Add(%e, %c2) : tensor<2x5x33xf32>\n"
         "    %p = Mul(%h, %a) : tensor<2x5x33xf32>\n"
         "    %g = Mul(%p, %c3) : tensor<2x5x33xf32>\n"
         "    %y = MatMul(%g, %w2) : tensor<2x5x12xf32>\n    return %y\n",
         {"w", "bias", "w2"}, {{12, 33}, {33}, {33, 12}}, {2, 1, 2}, 6, 0, 0},
        {"gelu_large", "%x : tensor<64x12xf32>",
         "    const %c1 : tensor<f32> = [1.41421354]\n    const %c2 : tensor<f32> = [1.0]\n"
         "    const %c3 : tensor<f32> = [0.5]\n"
         "    %h = MatMul(%x, %w) : tensor<64x200xf32>\n"
         "    %d = Div(%h, %c1) : tensor<64x200xf32>\n"
         "    %e = Erf(%d) : tensor<64x200xf32>\n"
         "    %a = Add(%e, %c2) : tensor<64x200xf32>\n"
         "    %p = Mul(%h, %a) : tensor<64x200xf32>\n"
         "    %y = Mul(%p, %c3) : tensor<64x200xf32>\n    return %y\n",
         {"w"}, {{12, 200}}, {2}, 5, 0, 0},
        /* GELU as the graph output, operands swapped; a GELU-like chain adding 2 is not fused */
        {"gelu_output", "%x : tensor<6x12xf32>",
         "    const %c1 : tensor<f32> = [1.41421354]\n    const %c2 : tensor<f32> = [1.0]\n"
         "    const %c4 : tensor<f32> = [2.0]\n    const %c3 : tensor<f32> = [0.5]\n"
         "    %h = MatMul(%x, %w) : tensor<6x20xf32>\n"
         "    %d = Div(%h, %c1) : tensor<6x20xf32>\n"
         "    %e = Erf(%d) : tensor<6x20xf32>\n"
         "    %a = Add(%c2, %e) : tensor<6x20xf32>\n"
         "    %p = Mul(%a, %h) : tensor<6x20xf32>\n"
         "    %g = Mul(%c3, %p) : tensor<6x20xf32>\n"
         "    %h2 = MatMul(%x, %w) : tensor<6x20xf32>\n"
         "    %d2 = Div(%h2, %c1) : tensor<6x20xf32>\n"
         "    %e2 = Erf(%d2) : tensor<6x20xf32>\n"
         "    %a2 = Add(%e2, %c4) : tensor<6x20xf32>\n"
         "    %p2 = Mul(%h2, %a2) : tensor<6x20xf32>\n"
         "    %g2 = Mul(%p2, %c3) : tensor<6x20xf32>\n"
         "    %y = Sub(%g, %g2) : tensor<6x20xf32>\n    return %y\n",
         {"w"}, {{12, 20}}, {2}, 5, 0, 0},
        /* attention scores: MatMul of head views, Div by sqrt(d) in the epilogue (x * (1 / c) would
         * differ in some of the 17424 values) */
        {"scores_div", "%q : tensor<2x33x4x6xf32>, %k : tensor<2x33x4x6xf32>",
         "    const %sc : tensor<f32> = [2.44948983]\n"
         "    %qt = Transpose(%q) {perm = [0, 2, 1, 3]} : tensor<2x4x33x6xf32>\n"
         "    %kt = Transpose(%k) {perm = [0, 2, 3, 1]} : tensor<2x4x6x33xf32>\n"
         "    %s = MatMul(%qt, %kt) : tensor<2x4x33x33xf32>\n"
         "    %y = Div(%s, %sc) : tensor<2x4x33x33xf32>\n    return %y\n",
         {NULL}, {{0}}, {0}, 1, 2, 0},
        /* scores, Div and a last-axis Softmax in one epilogue; a Softmax over another axis is not fused */
        {"scores_div_softmax", "%q : tensor<2x33x4x6xf32>, %k : tensor<2x33x4x6xf32>",
         "    const %sc : tensor<f32> = [2.44948983]\n"
         "    %qt = Transpose(%q) {perm = [0, 2, 1, 3]} : tensor<2x4x33x6xf32>\n"
         "    %kt = Transpose(%k) {perm = [0, 2, 3, 1]} : tensor<2x4x6x33xf32>\n"
         "    %s = MatMul(%qt, %kt) : tensor<2x4x33x33xf32>\n"
         "    %d = Div(%s, %sc) : tensor<2x4x33x33xf32>\n"
         "    %p = Softmax(%d) {axis = -1} : tensor<2x4x33x33xf32>\n"
         "    %s2 = MatMul(%p, %p) : tensor<2x4x33x33xf32>\n"
         "    %y = Softmax(%s2) {axis = 2} : tensor<2x4x33x33xf32>\n    return %y\n",
         {NULL}, {{0}}, {0}, 2, 2, 0},
        /* bias + residual + LayerNorm (constant Scale/B) in one epilogue, then a LayerNorm without B;
         * a LayerNorm whose Scale is a graph input is not fused */
        {"matmul_residual_layernorm", "%x : tensor<3x7x40xf32>, %s2 : tensor<40xf32>",
         "    %m = MatMul(%x, %w) : tensor<3x7x40xf32>\n"
         "    %b = Add(%m, %bias) : tensor<3x7x40xf32>\n"
         "    %r = Add(%x, %b) : tensor<3x7x40xf32>\n"
         "    %l = LayerNormalization(%r, %sc, %bias) {axis = -1, epsilon = 0.001} : tensor<3x7x40xf32>\n"
         "    %m2 = MatMul(%l, %w) : tensor<3x7x40xf32>\n"
         "    %l2 = LayerNormalization(%m2, %sc) : tensor<3x7x40xf32>\n"
         "    %m3 = MatMul(%l2, %w) : tensor<3x7x40xf32>\n"
         "    %y = LayerNormalization(%m3, %s2, %bias) : tensor<3x7x40xf32>\n    return %y\n",
         {"w", "bias", "sc"}, {{40, 40}, {40}, {40}}, {2, 1, 1}, 4, 0, 0},
        {"relu_second_reader", "%x : tensor<2x8x6x6xf32>",
         "    %c = Conv(%x, %w) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]} : tensor<2x8x6x6xf32>\n"
         "    %y0 = Relu(%c) : tensor<2x8x6x6xf32>\n"
         "    %y = Add(%y0, %c) : tensor<2x8x6x6xf32>\n    return %y\n",
         {"w"}, {{8, 8, 3, 3}}, {4}, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
    run_siblings(4, 16, 16, false);
    run_siblings(3, 16, 9, false);
    run_siblings(2, 32, 8, false);
    run_siblings(2, 16, 8, true);
    run_qgrad(16, 16, 16, 8, false, false);
    run_qgrad(16, 16, 16, 8, false, true);
    run_qgrad(3, 16, 32, 12, true, false);
    run_qgrad(2, 8, 12, 7, false, false);
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail != 0;
}
