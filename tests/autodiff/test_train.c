/* tests/autodiff/test_train.c — whole training steps (forward, backward, optimizer update in one
 * graph: qo_autodiff + qo_add_optimizer) run for 20 steps and compared with torch's trajectories
 * (tools/gen_train_refs.py; same initial weights, same batches; data committed in
 * tests/autodiff/data/train_*):
 *   mlp_sgd   Linear-ReLU-Linear, cross-entropy, SGD momentum 0.9 + weight decay 1e-3, StepLR schedule
 *             fed through the lr input (no recompilation)
 *   mlp_adam  the same network with Adam
 *   cnn_sgd   Conv-BatchNorm(train)-ReLU-MaxPool-Conv(groups 2)-ReLU-GlobalAveragePool-Linear, SGD momentum;
 *             the BatchNorm running statistics are optimizer state (bn_stats) compared with torch's too
 *   qat_sgd   the MLP quantization-aware: QONNX Quant on the input (8-bit), weights (4-bit narrow) and
 *             hidden activation (4-bit unsigned) with learned scales, vs torch through a transcription
 *             of Brevitas's IntQuant (straight-through round, tensor_clamp), SGD momentum. A float32
 *             difference in a scale can move a weight across a rounding boundary, after which the
 *             trajectories differ by a quantization step: free-running tolerance 1e-3; tight (5e-6 +
 *             1e-5 |p|) one-step comparisons from torch's parameters and momentum at every step
 * Each step feeds the updated parameters and optimizer state ("<x>_new" outputs) back into inputs
 * "<x>". Runs in the JIT and in the interpreter. Checks: the loss of every step within relative 5e-6
 * of torch's, every final parameter within 5e-6 + 1e-5 |p| (measured: 3e-7 and 2.3e-7; float32 sums
 * in another order than torch's). Prints the largest deviations.
 *   tfm_adam  a one-block transformer on token ids: Gather (embedding), LayerNormalization, one attention
 *             head (MatMul, Transpose, Softmax), GELU MLP (opset 20 Gelu), residuals, ReduceMean over the
 *             sequence, Gemm, cross-entropy; Adam
 *   mlp_kd    knowledge distillation through the trainer API (qo_train_opts.teacher): the MLP student
 *             (float, logits as output 0) against a fixed MLP teacher, loss = 0.7 * 2^2 * KL(teacher ||
 *             student at T = 2, batch mean) + 0.3 * cross-entropy, SGD momentum; every step's loss and
 *             the final parameters vs torch (kl_div(log_softmax, softmax, "batchmean")), same tolerances.
 *   qat_lb    learned bit widths (qo_train_opts.learn_bits: Brevitas's BitWidthParameter) and learned
 *             scales through the trainer vs torch, with 8-bit biases whose scale the trainer recomputes
 *             every step (s_in x s_w, Brevitas's IntBias); QAT free-running tolerances; the trained
 *             model's bit widths (one crosses a rounding boundary) equal torch's.
 *   param_roles  which constants the trainer trains: weights, biases and a [1]-shaped scale, not traced
 *             numbers, Clip bounds or a Pow's operands (run_param_roles).
 * Usage: test_autodiff_train DATA_DIR */
#include "backends/llvm/jit.h"
#include "passes/autodiff/autodiff.h"
#include "passes/pass_impl.h"
#include "passes/train/trainer.h"
#include "runtime/npy.h"
#include "runtime/rt.h"
#include "tests/unit/test.h"

#include <math.h>

#define STEPS 20
#define MAXP 16

static const char *dir;

static const char MLP[] =
    "module {\n  opset \"\" = 17\n  graph @main(%%x : tensor<16x8xf32>, %%labels : tensor<16xi64>, %s) {\n"
    "    %%h = Gemm(%%x, %%fc1_w, %%fc1_b) {transB = 1}\n    %%a = Relu(%%h)\n"
    "    %%o = Gemm(%%a, %%fc2_w, %%fc2_b) {transB = 1}\n"
    "    %%loss = \"ai.qopt.train.SoftmaxCrossEntropy\"(%%o, %%labels)\n    return %%loss\n  }\n}\n";

static const char CNN[] =
    "module {\n  opset \"\" = 17\n  graph @main(%%x : tensor<8x1x8x8xf32>, %%labels : tensor<8xi64>, %s) {\n"
    "    const %%bn_mean : tensor<4xf32> = [0.0, 0.0, 0.0, 0.0]\n    const %%bn_var : tensor<4xf32> = [1.0, 1.0, 1.0, 1.0]\n"
    "    %%c1 = Conv(%%x, %%c1_w, %%c1_b) {pads = [1, 1, 1, 1]}\n"
    "    %%bn = BatchNormalization(%%c1, %%bn_s, %%bn_b, %%bn_mean, %%bn_var) {training_mode = 1}\n"
    "    %%r1 = Relu(%%bn)\n    %%p1 = MaxPool(%%r1) {kernel_shape = [2, 2], strides = [2, 2]}\n"
    "    %%c2 = Conv(%%p1, %%c2_w, %%c2_b) {group = 2, pads = [1, 1, 1, 1]}\n    %%r2 = Relu(%%c2)\n"
    "    %%gp = GlobalAveragePool(%%r2)\n    %%f = Flatten(%%gp)\n    %%o = Gemm(%%f, %%fc_w, %%fc_b) {transB = 1}\n"
    "    %%loss = \"ai.qopt.train.SoftmaxCrossEntropy\"(%%o, %%labels)\n    return %%loss\n  }\n}\n";

static const char QAT[] =
    "module {\n  opset \"\" = 17\n  graph @main(%%x : tensor<16x8xf32>, %%labels : tensor<16xi64>, %s) {\n"
    "    const %%s_in : tensor<f32> = [0.05]\n    const %%zero : tensor<f32> = [0.0]\n"
    "    const %%b4 : tensor<f32> = [4.0]\n    const %%b8 : tensor<f32> = [8.0]\n"
    "    %%xq = \"qonnx.custom_op.general.Quant\"(%%x, %%s_in, %%zero, %%b8) {narrow = 0, rounding_mode = \"ROUND\", signed = 1}\n"
    "    %%w1q = \"qonnx.custom_op.general.Quant\"(%%fc1_w, %%s_w1, %%zero, %%b4) {narrow = 1, rounding_mode = \"ROUND\", signed = 1}\n"
    "    %%h = Gemm(%%xq, %%w1q, %%fc1_b) {transB = 1}\n    %%a = Relu(%%h)\n"
    "    %%aq = \"qonnx.custom_op.general.Quant\"(%%a, %%s_a, %%zero, %%b4) {narrow = 0, rounding_mode = \"ROUND\", signed = 0}\n"
    "    %%w2q = \"qonnx.custom_op.general.Quant\"(%%fc2_w, %%s_w2, %%zero, %%b4) {narrow = 1, rounding_mode = \"ROUND\", signed = 1}\n"
    "    %%o = Gemm(%%aq, %%w2q, %%fc2_b) {transB = 1}\n"
    "    %%loss = \"ai.qopt.train.SoftmaxCrossEntropy\"(%%o, %%labels)\n    return %%loss\n  }\n}\n";

static const char TFM[] =
    "module {\n  opset \"\" = 20\n  graph @main(%%x : tensor<16x6xi64>, %%labels : tensor<16xi64>, %s) {\n"
    "    const %%sqrt8 : tensor<f32> = [2.8284271247461903]\n    const %%ax1 : tensor<1xi64> = [1]\n"
    "    %%h0 = Gather(%%emb, %%x)\n    %%a = LayerNormalization(%%h0, %%ln_s, %%ln_b)\n"
    "    %%wqt = Transpose(%%wq) {perm = [1, 0]}\n    %%wkt = Transpose(%%wk) {perm = [1, 0]}\n"
    "    %%wvt = Transpose(%%wv) {perm = [1, 0]}\n    %%q = MatMul(%%a, %%wqt)\n    %%k = MatMul(%%a, %%wkt)\n"
    "    %%v = MatMul(%%a, %%wvt)\n    %%kt = Transpose(%%k) {perm = [0, 2, 1]}\n    %%qk = MatMul(%%q, %%kt)\n"
    "    %%qs = Div(%%qk, %%sqrt8)\n    %%p = Softmax(%%qs) {axis = -1}\n    %%av = MatMul(%%p, %%v)\n"
    "    %%h1 = Add(%%h0, %%av)\n    %%w1t = Transpose(%%fc1_w) {perm = [1, 0]}\n    %%f1 = MatMul(%%h1, %%w1t)\n"
    "    %%f1b = Add(%%f1, %%fc1_b)\n    %%ge = Gelu(%%f1b)\n    %%w2t = Transpose(%%fc2_w) {perm = [1, 0]}\n"
    "    %%f2 = MatMul(%%ge, %%w2t)\n    %%f2b = Add(%%f2, %%fc2_b)\n    %%h2 = Add(%%h1, %%f2b)\n"
    "    %%mp = ReduceMean(%%h2, %%ax1) {keepdims = 0}\n    %%o = Gemm(%%mp, %%fc_w, %%fc_b) {transB = 1}\n"
    "    %%loss = \"ai.qopt.train.SoftmaxCrossEntropy\"(%%o, %%labels)\n    return %%loss\n  }\n}\n";

static qo_status load(qo_ctx *cx, const char *run, const char *what, qo_tensor *t) {
    char p[1024];
    snprintf(p, sizeof p, "%s/train_%s_%s.npy", dir, run, what);
    return qo_npy_read(cx, p, t);
}

/* The view of batch t of a [STEPS, ...] tensor. */
static qo_tensor slice(const qo_tensor *all, int t) {
    qo_tensor v = *all;
    v.rank = all->rank - 1;
    memmove(v.dims, all->dims + 1, sizeof(int64_t) * (size_t)v.rank);
    size_t per = all->nbytes / (size_t)all->dims[0];
    v.data = (char *)all->data + per * (size_t)t;
    v.nbytes = per;
    v.owned = 0;
    return v;
}

static double lr_at(const char *run, int t) {
    if (strcmp(run, "mlp_sgd") == 0) return 0.1 * pow(0.5, t / 10);
    if (strcmp(run, "mlp_adam") == 0 || strcmp(run, "tfm_adam") == 0) return 0.01;
    return 0.05; /* cnn_sgd, qat_sgd */
}

static void run_train(const char *run, char params[][32], int np, bool jit) {
    char cur[96];
    snprintf(cur, sizeof cur, "%s/%s", run, jit ? "jit" : "interp");
    qt_current = cur;
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_tensor init[MAXP] = {{0}}, fin[MAXP] = {{0}}, xs = {0}, ys = {0}, ref_loss = {0};
    bool ok = !load(&cx, run, "x", &xs) && !load(&cx, run, "y", &ys) && !load(&cx, run, "loss", &ref_loss);
    char decl[2048] = "", nm[96];
    size_t o = 0;
    for (int i = 0; i < np && ok; i++) {
        snprintf(nm, sizeof nm, "%s_init", params[i]);
        ok = !load(&cx, run, nm, &init[i]);
        snprintf(nm, sizeof nm, "%s_final", params[i]);
        ok = ok && !load(&cx, run, nm, &fin[i]);
        o += (size_t)snprintf(decl + o, sizeof decl - o, "%s%%%s : tensor<", i ? ", " : "", params[i]);
        for (int k = 0; ok && k < init[i].rank; k++) o += (size_t)snprintf(decl + o, sizeof decl - o, "%lldx", (long long)init[i].dims[k]);
        o += (size_t)snprintf(decl + o, sizeof decl - o, "f32>");
    }
    CHECK(ok);
    qo_module *m = NULL;
    qo_jit *j = NULL;
    qo_tensor *in = NULL, *out = NULL;
    if (!ok) goto out;
    char text[4096];
    snprintf(text, sizeof text,
             strncmp(run, "mlp", 3) == 0   ? MLP
             : strncmp(run, "qat", 3) == 0 ? QAT
             : strncmp(run, "tfm", 3) == 0 ? TFM
                                           : CNN,
             decl);
    CHECK(qo_parse_module(&cx, "train.qir", text, strlen(text), &m) == QO_OK);
    if (!m) goto out;
    qo_graph *g = qo_module_main(m);
    const char *pn[MAXP];
    for (int i = 0; i < np; i++) {
        pn[i] = params[i];
        qo_val v = qo_graph_find(g, params[i]);
        g->vals[v].cref = qo_const_new(m, g->vals[v].type, init[i].data, init[i].nbytes, true);
    }
    qo_autodiff_opts ao = {.loss = "loss", .params = pn, .nparams = (uint32_t)np};
    qo_optim_opts oo = {.kind = QO_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-3f};
    if (strcmp(run, "mlp_adam") == 0 || strcmp(run, "tfm_adam") == 0) oo = (qo_optim_opts){.kind = QO_OPTIM_ADAM, .lr = 0.01f};
    if (strcmp(run, "cnn_sgd") == 0) oo = (qo_optim_opts){.kind = QO_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f, .bn_stats = true};
    if (strcmp(run, "qat_sgd") == 0) oo = (qo_optim_opts){.kind = QO_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f};
    qo_status s = qo_autodiff(&cx, g, &ao);
    if (!s) s = qo_add_optimizer(&cx, g, &oo);
    if (!s) s = qo_verify(&cx, m);
    if (!s && jit) s = qo_jit_compile(&cx, m, NULL, &j);
    CHECK(s == QO_OK);
    if (s) {
        qt_dump(&d);
        goto out;
    }
    uint32_t nin = g->ninputs, nout = g->noutputs;
    in = qo_calloc(nin, sizeof *in);
    out = qo_calloc(nout, sizeof *out);
    const qo_tensor **inp = qo_calloc(nin, sizeof *inp);
    int *fed_by = qo_calloc(nin, sizeof *fed_by); /* output index feeding input i next step, -1 none */
    int loss_out = -1;
    for (uint32_t k = 0; k < nout; k++)
        if (strcmp(qo_val_name(g, qo_graph_output(g, k)), "loss") == 0) loss_out = (int)k;
    for (uint32_t i = 0; i < nin; i++) {
        qo_val v = g->inputs[i];
        const char *iname = qo_val_name(g, v);
        fed_by[i] = -1;
        snprintf(nm, sizeof nm, "%s_new", iname);
        for (uint32_t k = 0; k < nout; k++)
            if (strcmp(qo_val_name(g, qo_graph_output(g, k)), nm) == 0) fed_by[i] = (int)k;
        if (g->vals[v].cref) CHECK(qo_tensor_from_const(&cx, m, g->vals[v].cref, &in[i]) == QO_OK);
        if (g->vals[v].cref) {
            qo_tensor c = {0};
            qo_tensor_copy(&cx, &in[i], &c); /* own the data: it is overwritten each step */
            in[i] = c;
        }
    }
    double max_loss = 0, max_p = 0;
    /* QAT: a float32 difference in a scale can move a weight across a rounding boundary, after which
       the trajectories differ by a quantization step: the free-running comparison is loose, the
       one-step comparison from torch's own state (below) tight */
    bool qat = strncmp(run, "qat", 3) == 0;
    double tol_loss = qat ? 1e-3 : 5e-6, tol_abs = qat ? 1e-3 : 5e-6, tol_rel = qat ? 1e-3 : 1e-5;
    for (int t = 0; t < STEPS && !s; t++) {
        qo_tensor xb = slice(&xs, t), yb = slice(&ys, t);
        for (uint32_t i = 0; i < nin; i++) {
            const char *iname = qo_val_name(g, g->inputs[i]);
            inp[i] = &in[i];
            if (strcmp(iname, "x") == 0) inp[i] = &xb;
            else if (strcmp(iname, "labels") == 0) inp[i] = &yb;
            else if (strcmp(iname, "lr") == 0) ((float *)in[i].data)[0] = (float)lr_at(run, t);
            else if (strcmp(iname, "adam_step") == 0) ((float *)in[i].data)[0] = (float)(t + 1);
        }
        memset(out, 0, sizeof *out * nout);
        s = jit ? qo_jit_run(j, inp, nin, out, nout) : qo_interp_run(&cx, m, inp, nin, out, nout);
        CHECK(s == QO_OK);
        if (s) {
            qt_dump(&d);
            break;
        }
        double l = ((float *)out[loss_out].data)[0], rl = ((float *)ref_loss.data)[t];
        double e = fabs(l - rl) / fabs(rl);
        if (e > max_loss) max_loss = e;
        if (!(e <= tol_loss)) {
            qt_fail++;
            fprintf(stderr, "[%s] step %d: loss %.8g, torch %.8g\n", cur, t, l, rl);
        } else
            qt_pass++;
        for (uint32_t i = 0; i < nin; i++)
            if (fed_by[i] >= 0) {
                qo_tensor_free(&in[i]);
                in[i] = out[fed_by[i]];
                out[fed_by[i]] = (qo_tensor){0};
            }
        for (uint32_t k = 0; k < nout; k++) qo_tensor_free(&out[k]);
    }
    /* final parameters */
    for (int p = 0; p < np && !s; p++) {
        uint32_t i = 0;
        while (i < nin && strcmp(qo_val_name(g, g->inputs[i]), params[p])) i++;
        CHECK(i < nin && qo_tensor_numel(&in[i]) == qo_tensor_numel(&fin[p]));
        if (i >= nin || qo_tensor_numel(&in[i]) != qo_tensor_numel(&fin[p])) continue;
        bool good = true;
        for (int64_t k = 0; k < qo_tensor_numel(&fin[p]); k++) {
            double a = ((float *)in[i].data)[k], b = ((float *)fin[p].data)[k];
            double e = fabs(a - b);
            if (e > max_p) max_p = e;
            if (!(e <= tol_abs + tol_rel * fabs(b))) {
                if (good) fprintf(stderr, "[%s] %s[%lld]: %.8g, torch %.8g\n", cur, params[p], (long long)k, a, b);
                good = false;
            }
        }
        CHECK(good);
    }
    /* BatchNorm running statistics (state fed back like the parameters) vs torch's */
    double max_st = 0;
    int nst = 0;
    for (uint32_t i = 0; i < nin && !s && strcmp(run, "cnn_sgd") == 0; i++) {
        const char *iname = qo_val_name(g, g->inputs[i]);
        if (strcmp(iname, "bn_mean") && strcmp(iname, "bn_var")) continue;
        nst++;
        qo_tensor ref = {0};
        snprintf(nm, sizeof nm, "%s_final", iname);
        CHECK(load(&cx, run, nm, &ref) == QO_OK);
        CHECK(qo_tensor_numel(&ref) == qo_tensor_numel(&in[i]));
        for (int64_t k = 0; k < qo_tensor_numel(&ref) && qo_tensor_numel(&ref) == qo_tensor_numel(&in[i]); k++) {
            double a = ((float *)in[i].data)[k], b = ((float *)ref.data)[k], e = fabs(a - b);
            if (e > max_st) max_st = e;
            CHECK(e <= 5e-6 + 1e-5 * fabs(b));
        }
        qo_tensor_free(&ref);
    }
    if (strcmp(run, "cnn_sgd") == 0) CHECK_EQ(nst, 2);
    /* one step from torch's state at every step t (parameters and momentum buffers) vs torch's t + 1 */
    double max_one = 0;
    for (int t = 0; t < STEPS && qat && !s; t++) {
        qo_tensor xb = slice(&xs, t), yb = slice(&ys, t), refs[MAXP][2];
        memset(refs, 0, sizeof refs);
        for (uint32_t i = 0; i < nin; i++) {
            const char *iname = qo_val_name(g, g->inputs[i]);
            inp[i] = &in[i];
            if (strcmp(iname, "x") == 0) inp[i] = &xb;
            else if (strcmp(iname, "labels") == 0) inp[i] = &yb;
            else if (strcmp(iname, "lr") == 0) ((float *)in[i].data)[0] = (float)lr_at(run, t);
        }
        for (int p = 0; p < np; p++) {
            snprintf(nm, sizeof nm, "%s_steps", params[p]);
            CHECK(load(&cx, run, nm, &refs[p][0]) == QO_OK);
            snprintf(nm, sizeof nm, "%s_mom_steps", params[p]);
            CHECK(load(&cx, run, nm, &refs[p][1]) == QO_OK);
            for (int k = 0; k < 2; k++) {
                snprintf(nm, sizeof nm, k ? "%s_momentum" : "%s", params[p]);
                for (uint32_t i = 0; i < nin; i++)
                    if (strcmp(qo_val_name(g, g->inputs[i]), nm) == 0 && refs[p][k].data) {
                        qo_tensor v = slice(&refs[p][k], t);
                        memcpy(in[i].data, v.data, in[i].nbytes);
                    }
            }
        }
        memset(out, 0, sizeof *out * nout);
        s = jit ? qo_jit_run(j, inp, nin, out, nout) : qo_interp_run(&cx, m, inp, nin, out, nout);
        CHECK(s == QO_OK);
        for (int p = 0; p < np && !s; p++)
            for (int k = 0; k < 2; k++) {
                snprintf(nm, sizeof nm, k ? "%s_momentum_new" : "%s_new", params[p]);
                for (uint32_t o2 = 0; o2 < nout; o2++) {
                    if (strcmp(qo_val_name(g, qo_graph_output(g, o2)), nm) || !refs[p][k].data) continue;
                    qo_tensor want = slice(&refs[p][k], t + 1);
                    bool good = true;
                    for (int64_t e = 0; e < qo_tensor_numel(&out[o2]); e++) {
                        double a = ((float *)out[o2].data)[e], b = ((float *)want.data)[e], err = fabs(a - b);
                        if (err > max_one) max_one = err;
                        if (!(err <= 5e-6 + 1e-5 * fabs(b))) {
                            if (good) fprintf(stderr, "[%s] one step %d: %s[%lld] %.8g, torch %.8g\n", cur, t, nm, (long long)e, a, b);
                            good = false;
                        }
                    }
                    CHECK(good);
                }
            }
        for (uint32_t k = 0; k < nout; k++) qo_tensor_free(&out[k]);
        for (int p = 0; p < np; p++) qo_tensor_free(&refs[p][0]), qo_tensor_free(&refs[p][1]);
    }
    if (qat) printf("%-18s one step from torch's state, 20 steps: max |param/momentum - torch| %.3g\n", cur, max_one);
    printf("%-18s %2d steps  max loss rel err %.3g  max |param - torch| %.3g  max |bn stat - torch| %.3g\n", cur, STEPS,
           max_loss, max_p, max_st);
    for (uint32_t i = 0; i < nin; i++) qo_tensor_free(&in[i]);
    qo_free(inp);
    qo_free(fed_by);
out:
    qo_free(in);
    qo_free(out);
    qo_jit_free(j);
    qo_module_free(m);
    for (int i = 0; i < np; i++) qo_tensor_free(&init[i]), qo_tensor_free(&fin[i]);
    qo_tensor_free(&xs), qo_tensor_free(&ys), qo_tensor_free(&ref_loss);
}

static const char MLP_FWD[] =
    "module {\n  opset \"\" = 17\n  graph @main(%%x : tensor<16x8xf32>) {\n%s"
    "    %%h = Gemm(%%x, %%fc1_w, %%fc1_b) {transB = 1}\n    %%a = Relu(%%h)\n"
    "    %%o = Gemm(%%a, %%fc2_w, %%fc2_b) {transB = 1}\n    return %%o\n  }\n}\n";

/* Appends "const %P : tensor<...> = [...]" lines to decl for each parameter P (skipping names with
 * '.' when skip_dotted) from DATA_DIR/train_<run>_<prefix>P<suffix>.npy (float32, rank <= 2). */
static bool const_decls(qo_ctx *cx, const char *run, const char *prefix, const char *suffix, char params[][32], int np,
                        bool skip_dotted, char *decl, size_t cap) {
    char nm[96];
    size_t o = 0;
    bool ok = true;
    decl[0] = 0;
    for (int i = 0; i < np && ok; i++) {
        if (skip_dotted && strchr(params[i], '.')) continue;
        qo_tensor t = {0};
        snprintf(nm, sizeof nm, "%s%s%s", prefix, params[i], suffix);
        ok = !load(cx, run, nm, &t) && t.elem == QO_F32 && t.rank <= 2;
        o += (size_t)snprintf(decl + o, cap - o, "    const %%%s : tensor<", params[i]);
        for (int k = 0; ok && k < t.rank; k++) o += (size_t)snprintf(decl + o, cap - o, "%lldx", (long long)t.dims[k]);
        o += (size_t)snprintf(decl + o, cap - o, "f32> = [");
        for (int64_t e = 0; ok && e < qo_tensor_numel(&t); e++)
            o += (size_t)snprintf(decl + o, cap - o, "%s%.9g", e ? ", " : "", (double)((float *)t.data)[e]);
        o += (size_t)snprintf(decl + o, cap - o, "]\n");
        qo_tensor_free(&t);
    }
    return ok;
}

/* The MLP forward model with parameters from DATA_DIR/train_mlp_kd_<prefix><P><suffix>.npy. */
static qo_module *mlp_model(qo_ctx *cx, const char *prefix, const char *suffix, char params[][32], int np) {
    static char decl[1 << 16], text[1 << 17];
    bool ok = const_decls(cx, "mlp_kd", prefix, suffix, params, np, false, decl, sizeof decl);
    qo_module *m = NULL;
    snprintf(text, sizeof text, MLP_FWD, decl);
    if (ok && qo_parse_module(cx, "kd.qir", text, strlen(text), &m) != QO_OK) m = NULL;
    return m;
}

static void run_distill(char params[][32], int np) {
    qt_current = "mlp_kd/trainer";
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_tensor xs = {0}, ys = {0}, ref_loss = {0};
    CHECK(!load(&cx, "mlp_kd", "x", &xs) && !load(&cx, "mlp_kd", "y", &ys) && !load(&cx, "mlp_kd", "loss", &ref_loss));
    qo_module *student = mlp_model(&cx, "", "_init", params, np), *teacher = mlp_model(&cx, "teacher_", "", params, np);
    qo_trainer *tr = NULL;
    CHECK(student && teacher);
    if (!student || !teacher) {
        qt_dump(&d);
        goto out;
    }
    qo_train_opts o = {.optimizer = QO_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .threads = 1, .teacher = teacher,
                       .distill_temp = 2.0f, .distill_alpha = 0.7f};
    CHECK(qo_trainer_new(&cx, student, 16, &o, &tr) == QO_OK);
    if (!tr) {
        qt_dump(&d);
        goto out;
    }
    double max_loss = 0, max_p = 0;
    for (int t = 0; t < STEPS; t++) {
        qo_tensor xb = slice(&xs, t), yb = slice(&ys, t);
        float l = 0;
        CHECK(qo_trainer_step(tr, &xb, &yb, 0.1f, &l, NULL) == QO_OK);
        double rl = ((float *)ref_loss.data)[t], e = fabs(l - rl) / fabs(rl);
        if (e > max_loss) max_loss = e;
        if (!(e <= 5e-6)) fprintf(stderr, "[mlp_kd] step %d: loss %.8g, torch %.8g\n", t, (double)l, rl);
        CHECK(e <= 5e-6);
    }
    int found = 0;
    for (uint32_t i = 0; i < qo_trainer_nstate(tr); i++) {
        const char *nm = qo_trainer_state_name(tr, i);
        for (int p = 0; nm && p < np; p++) {
            if (strcmp(nm, params[p])) continue;
            found++;
            qo_tensor fin = {0};
            char w[64];
            snprintf(w, sizeof w, "%s_final", params[p]);
            CHECK(load(&cx, "mlp_kd", w, &fin) == QO_OK);
            const qo_tensor *cur = qo_trainer_state(tr, i);
            CHECK(qo_tensor_numel(cur) == qo_tensor_numel(&fin));
            for (int64_t k = 0; k < qo_tensor_numel(&fin) && qo_tensor_numel(cur) == qo_tensor_numel(&fin); k++) {
                double a = ((const float *)cur->data)[k], b = ((float *)fin.data)[k], e = fabs(a - b);
                if (e > max_p) max_p = e;
                CHECK(e <= 5e-6 + 1e-5 * fabs(b));
            }
            qo_tensor_free(&fin);
        }
    }
    CHECK_EQ(found, np);
    printf("%-18s %2d steps  max loss rel err %.3g  max |param - torch| %.3g\n", "mlp_kd/trainer", STEPS, max_loss,
           max_p);
out:
    qo_trainer_free(tr);
    qo_module_free(student);
    qo_module_free(teacher);
    qo_tensor_free(&xs), qo_tensor_free(&ys), qo_tensor_free(&ref_loss);
}

/* 8-bit bias quantizers (the trainer recomputes their scale every step from the learned scales; the
 * constants s_b1 / s_b2 are deliberately stale: 1.0, so only the recomputation can match torch) */
#define BIAS8                                                                                                    \
    "int8_bias:role=bias,bits=8,signed=1,narrow=0,per_channel=0,axis=0,scale=float,round=half_even,stat=none,zp=zero"
static const char QMLP_FWD[] =
    "module {\n  opset \"\" = 17\n  graph @main(%%x : tensor<16x8xf32>) {\n%s"
    "    const %%zero : tensor<f32> = [0.0]\n    const %%b_x : tensor<f32> = [8.0]\n"
    "    const %%b_w1 : tensor<f32> = [4.0]\n    const %%b_a : tensor<f32> = [4.0]\n    const %%b_w2 : tensor<f32> = [2.0]\n"
    "    const %%b_b : tensor<f32> = [8.0]\n    const %%s_b1 : tensor<f32> = [1.0]\n    const %%s_b2 : tensor<f32> = [1.0]\n"
    "    %%xq = \"qonnx.custom_op.general.Quant\"(%%x, %%s_in, %%zero, %%b_x) {narrow = 0, rounding_mode = \"ROUND\", signed = 1}\n"
    "    %%w1q = \"qonnx.custom_op.general.Quant\"(%%fc1_w, %%s_w1, %%zero, %%b_w1) {narrow = 1, rounding_mode = \"ROUND\", signed = 1}\n"
    "    %%b1q = \"qonnx.custom_op.general.Quant\"(%%fc1_b, %%s_b1, %%zero, %%b_b) {narrow = 0, rounding_mode = \"ROUND\", signed = 1, "
    "qopt_spec = \"" BIAS8 "\"}\n"
    "    %%h = Gemm(%%xq, %%w1q, %%b1q) {transB = 1}\n    %%a = Relu(%%h)\n"
    "    %%aq = \"qonnx.custom_op.general.Quant\"(%%a, %%s_a, %%zero, %%b_a) {narrow = 0, rounding_mode = \"ROUND\", signed = 0}\n"
    "    %%b2q = \"qonnx.custom_op.general.Quant\"(%%fc2_b, %%s_b2, %%zero, %%b_b) {narrow = 0, rounding_mode = \"ROUND\", signed = 1, "
    "qopt_spec = \"" BIAS8 "\"}\n"
    "    %%w2q = \"qonnx.custom_op.general.Quant\"(%%fc2_w, %%s_w2, %%zero, %%b_w2) {narrow = 1, rounding_mode = \"ROUND\", signed = 1}\n"
    "    %%o = Gemm(%%aq, %%w2q, %%b2q) {transB = 1}\n    return %%o\n  }\n}\n";

/* The quantized MLP forward model of qat_lb with the initial values of the parameters that are
 * model constants (names without '.': the bit-width offsets are made by the trainer). */
static qo_module *qmlp_model(qo_ctx *cx, char params[][32], int np) {
    static char decl[1 << 16], text[1 << 17];
    bool ok = const_decls(cx, "qat_lb", "", "_init", params, np, true, decl, sizeof decl);
    qo_module *m = NULL;
    snprintf(text, sizeof text, QMLP_FWD, decl);
    if (ok && qo_parse_module(cx, "qat_lb.qir", text, strlen(text), &m) != QO_OK) m = NULL;
    return m;
}

/* The bit width the Quant producing `name` reads in m (a constant), or -1. */
static float quant_bits(const qo_module *m, const char *name) {
    const qo_graph *g = qo_module_main((qo_module *)m);
    qo_val v = qo_graph_find(g, name);
    qo_node q = v ? g->vals[v].def : 0;
    float b = -1;
    if (!q || g->nodes[q].nin < 4 || qo_pass_const_floats(g, qo_node_input(g, q, 3), &b, 1) != 1) return -1;
    return b;
}

/* qat_lb's fc1 units whose pre-activation cancels exactly in some sample of step t (unit[j] set):
 * the quantized inputs and weights are integers times |s_in| and |s_w1| and the bias an integer times
 * |s_in| |s_w1|, so when the integers sum to 0 without every term being 0, the float sum is a
 * rounding residue whose sign depends on the summation order of the BLAS kernel at hand (OpenBLAS
 * picks it per CPU: Haswell kernels on Zen 5, SkylakeX on Zen 4), and Relu's gradient at that point
 * with it. The integers are computed from torch's state as torch does (float32 division, clamp, then
 * round half to even). Returns the number of such units. */
static int lb_cancelling_units(const qo_tensor *x, const float *w, const float *b, float s_in, float s_w1,
                               float off_x, float off_w, bool unit[16]) {
    const int64_t n = x->dims[0], k = x->dims[1], m = 16;
    const float *xv = x->data;
    float bx = nearbyintf(fabsf(off_x) + 2.0f), bw = nearbyintf(fabsf(off_w) + 2.0f);
    float sx = fabsf(s_in), sw = fabsf(s_w1), sb = sx * sw;
    float xlo = -ldexpf(1.0f, (int)bx - 1), xhi = ldexpf(1.0f, (int)bx - 1) - 1.0f;
    float whi = ldexpf(1.0f, (int)bw - 1) - 1.0f, wlo = -whi;
    int cnt = 0;
    for (int64_t j = 0; j < m; j++) unit[j] = false;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            float bq = nearbyintf(fminf(fmaxf(b[j] / sb, -128.0f), 127.0f));
            int64_t sum = (int64_t)bq, mag = (int64_t)fabsf(bq);
            for (int64_t c = 0; c < k; c++) {
                int64_t xi = (int64_t)nearbyintf(fminf(fmaxf(xv[i * k + c] / sx, xlo), xhi));
                int64_t wi = (int64_t)nearbyintf(fminf(fmaxf(w[j * k + c] / sw, wlo), whi));
                sum += xi * wi;
                mag += llabs(xi * wi);
            }
            if (sum == 0 && mag != 0 && !unit[j]) unit[j] = true, cnt++;
        }
    return cnt;
}

/* True when state value idx of nm depends on Relu's gradient at a cancelling fc1 unit (see
 * lb_cancelling_units): that unit's weight row and bias, and the scales and bit widths whose
 * gradients sum over it. Everything else (fc2, s_a, the hidden quantizer's bits) does not. */
static bool lb_order_dependent(const char *nm, int64_t idx, const bool unit[16]) {
    if (!strncmp(nm, "fc1_w", 5)) return unit[(idx / 8) & 15];
    if (!strncmp(nm, "fc1_b", 5)) return unit[idx & 15];
    return !strncmp(nm, "s_in", 4) || !strncmp(nm, "s_w1", 4) || !strncmp(nm, "xq.", 3) || !strncmp(nm, "w1q.", 4);
}

/* qat_lb: learned bit widths (qo_train_opts.learn_bits) and scales through the trainer vs torch's
 * BitWidthParameter transcription: the offsets start at bits - 2 (checked), fc1's is then set to
 * torch's 1.52; every step's loss and the final parameters within the QAT free-running tolerance of
 * run_train; the trained model's bit widths equal torch's round(|offset| + 2) (fc1's weights end at
 * 3 bits, the others where they started). */
static void run_learned_bits(char params[][32], int np) {
    qt_current = "qat_lb/trainer";
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_tensor xs = {0}, ys = {0}, ref_loss = {0};
    CHECK(!load(&cx, "qat_lb", "x", &xs) && !load(&cx, "qat_lb", "y", &ys) && !load(&cx, "qat_lb", "loss", &ref_loss));
    qo_module *fwd = qmlp_model(&cx, params, np), *trained = NULL;
    qo_trainer *tr = NULL;
    CHECK(fwd != NULL);
    if (!fwd) {
        qt_dump(&d);
        goto out;
    }
    qo_train_opts o = {.optimizer = QO_OPTIM_SGD, .lr = 0.2f, .momentum = 0.9f, .threads = 1, .learn_scales = true,
                       .learn_bits = true};
    CHECK(qo_trainer_new(&cx, fwd, 16, &o, &tr) == QO_OK);
    if (!tr) {
        qt_dump(&d);
        goto out;
    }
    static const char *const qn[4] = {"xq", "w1q", "aq", "w2q"};
    static const float start[4] = {6, 2, 2, 0};
    int seen = 0;
    for (uint32_t i = 0; i < qo_trainer_nstate(tr); i++)
        for (int k = 0; k < 4; k++) {
            char nm[64];
            snprintf(nm, sizeof nm, "%s%s", qn[k], QO_TRAIN_BITS_SUFFIX);
            const char *sn = qo_trainer_state_name(tr, i);
            if (!sn || strcmp(sn, nm)) continue;
            seen++;
            const qo_tensor *s = qo_trainer_state(tr, i);
            CHECK(qo_tensor_numel(s) == 1 && *(const float *)s->data == start[k]);
        }
    CHECK_EQ(seen, 4);
    /* one step from torch's state at every step t (parameters and momentum buffers) vs torch's t + 1:
       a float32 difference in a scale can move a value across a rounding boundary (the 8-bit biases make
       that likely), after which free-running trajectories part, so each step starts from torch's state */
    qo_tensor st[MAXP][2] = {{{0}}};
    bool ok = np <= MAXP;
    for (int p = 0; ok && p < np; p++) {
        char nm[96];
        snprintf(nm, sizeof nm, "%s_steps", params[p]);
        ok = load(&cx, "qat_lb", nm, &st[p][0]) == QO_OK;
        snprintf(nm, sizeof nm, "%s_mom_steps", params[p]);
        ok = ok && load(&cx, "qat_lb", nm, &st[p][1]) == QO_OK;
    }
    CHECK(ok);
    double max_loss = 0, max_p = 0;
    int lb_steps_cancel = 0;
    long lb_skipped = 0, lb_compared = 0;
    for (int t = 0; ok && t < STEPS; t++) {
        for (int p = 0; p < np; p++)
            for (int k = 0; k < 2; k++) {
                char nm[96];
                snprintf(nm, sizeof nm, k ? "%s_momentum" : "%s", params[p]);
                qo_tensor v = slice(&st[p][k], t);
                CHECK(qo_trainer_set_state(tr, nm, &v) == QO_OK);
            }
        qo_tensor xb = slice(&xs, t), yb = slice(&ys, t);
        /* torch's state at t: which fc1 units cancel exactly (their dependants are not compared) */
        const float *sv[6] = {NULL};
        static const char *const lbn[6] = {"fc1_w", "fc1_b", "s_in", "s_w1", "xq.bit_width_offset", "w1q.bit_width_offset"};
        for (int q = 0; q < 6; q++)
            for (int p = 0; p < np; p++)
                if (!strcmp(params[p], lbn[q])) sv[q] = slice(&st[p][0], t).data;
        bool unit[16] = {false};
        int ncancel = 0;
        bool have = sv[0] && sv[1] && sv[2] && sv[3] && sv[4] && sv[5] && xb.rank == 2 && xb.dims[1] == 8;
        CHECK(have);
        if (have)
            ncancel = lb_cancelling_units(&xb, sv[0], sv[1], sv[2][0], sv[3][0], sv[4][0], sv[5][0], unit);
        if (ncancel) lb_steps_cancel++;
        float l = 0;
        CHECK(qo_trainer_step(tr, &xb, &yb, 0.2f, &l, NULL) == QO_OK);
        double rl = ((float *)ref_loss.data)[t], e = fabs(l - rl) / fabs(rl);
        if (e > max_loss) max_loss = e;
        if (!(e <= 5e-6)) fprintf(stderr, "[qat_lb] step %d: loss %.8g, torch %.8g\n", t, (double)l, rl);
        CHECK(e <= 5e-6);
        for (uint32_t i = 0; i < qo_trainer_nstate(tr); i++) {
            const char *nm = qo_trainer_state_name(tr, i);
            for (int p = 0; nm && p < np; p++)
                for (int k = 0; k < 2; k++) {
                    char want[96];
                    snprintf(want, sizeof want, k ? "%s_momentum" : "%s", params[p]);
                    if (strcmp(nm, want)) continue;
                    qo_tensor ref = slice(&st[p][k], t + 1);
                    const qo_tensor *cur = qo_trainer_state(tr, i);
                    CHECK(qo_tensor_numel(cur) == qo_tensor_numel(&ref));
                    for (int64_t j = 0; j < qo_tensor_numel(&ref) && qo_tensor_numel(cur) == qo_tensor_numel(&ref); j++) {
                        double x = ((const float *)cur->data)[j], r = ((const float *)ref.data)[j], e2 = fabs(x - r);
                        if (ncancel && lb_order_dependent(nm, j, unit)) {
                            lb_skipped++;
                            continue;
                        }
                        lb_compared++;
                        if (e2 > max_p) max_p = e2;
                        if (!(e2 <= 5e-6 + 1e-5 * fabs(r)))
                            fprintf(stderr, "[qat_lb] step %d %s[%lld] %.8g, torch %.8g\n", t, nm, (long long)j, x, r);
                        CHECK(e2 <= 5e-6 + 1e-5 * fabs(r));
                    }
                }
        }
    }
    /* the exemption stays narrow: steps 2-7 have cancelling units (6 of 20), and the values left out
       are under a tenth of those compared */
    CHECK(lb_steps_cancel >= 1 && lb_steps_cancel <= 8);
    CHECK(lb_skipped * 10 < lb_compared);
    /* torch's final state in, the trained model out: its bit widths are torch's */
    for (int p = 0; ok && p < np; p++) {
        qo_tensor v = slice(&st[p][0], STEPS);
        CHECK(qo_trainer_set_state(tr, params[p], &v) == QO_OK);
    }
    CHECK(qo_trainer_model(tr, &trained) == QO_OK);
    if (!trained) qt_dump(&d);
    for (int k = 0; trained && k < 4; k++) {
        char w[96];
        qo_tensor fin = {0};
        snprintf(w, sizeof w, "%s%s_final", qn[k], QO_TRAIN_BITS_SUFFIX);
        CHECK(load(&cx, "qat_lb", w, &fin) == QO_OK);
        /* torch: round_ste(|o| + 2) rounds half to even (torch.round); no tie here */
        float want = fin.data ? rintf(fabsf(*(float *)fin.data) + 2.0f) : -2;
        CHECK_EQ(quant_bits(trained, qn[k]), want);
        qo_tensor_free(&fin);
    }
    CHECK_EQ(quant_bits(trained, "w1q"), 3.0f);
    printf("%-18s one step from torch's state, %d steps: max loss rel err %.3g  max |param/momentum - torch| %.3g  "
           "bits %g %g %g %g (%d steps with cancelling fc1 units: %ld of %ld values not compared)\n", "qat_lb/trainer",
           STEPS, max_loss, max_p, (double)quant_bits(trained, "xq"), (double)quant_bits(trained, "w1q"),
           (double)quant_bits(trained, "aq"), (double)quant_bits(trained, "w2q"), lb_steps_cancel, lb_skipped,
           lb_skipped + lb_compared);
    for (int p = 0; p < np && p < MAXP; p++) qo_tensor_free(&st[p][0]), qo_tensor_free(&st[p][1]);
out:
    qo_module_free(trained);
    qo_trainer_free(tr);
    qo_module_free(fwd);
    qo_tensor_free(&xs), qo_tensor_free(&ys), qo_tensor_free(&ref_loss);
}

/* The trainer's parameters are what PyTorch would train: a model exported in eval mode keeps
 * traced numbers (x * 2 - 1), Clip bounds and a TensorNorm's Pow(running_var + eps, 0.5) as
 * constants beside the weights; the trainer takes the weights, biases and the norm's [1]-shaped
 * scale, and none of the others, which stay as they were after training steps (training the
 * variance had driven it below zero and every value to NaN within 80 steps). A [1]-shaped running
 * mean in a Sub cannot be told from a bias by its roles; it is trained (the Brevitas SFC export
 * aliases it to the bias anyway). */
static void run_param_roles(void) {
    qt_current = "param_roles";
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    static char text[1 << 14];
    size_t o = (size_t)snprintf(text, sizeof text,
                                "module {\n  opset \"\" = 17\n  graph @main(%%x : tensor<16x8xf32>) {\n"
                                "    const %%two : tensor<f32> = [2]\n    const %%one : tensor<f32> = [1]\n"
                                "    const %%zero : tensor<f32> = [0]\n    const %%half : tensor<f32> = [0.5]\n"
                                "    const %%var : tensor<1xf32> = [1.0001]\n    const %%mean : tensor<1xf32> = [0.01]\n"
                                "    const %%tn_w : tensor<1xf32> = [1]\n    const %%fc1_b : tensor<4xf32> = [0.1, 0, -0.1, 0.2]\n"
                                "    const %%fc1_w : tensor<4x8xf32> = [");
    for (int i = 0; i < 32; i++) o += (size_t)snprintf(text + o, sizeof text - o, "%s%g", i ? ", " : "", 0.05 * ((i * 7) % 11 - 5));
    snprintf(text + o, sizeof text - o,
             "]\n    %%x2 = Mul(%%x, %%two)\n    %%xs = Sub(%%x2, %%one)\n"
             "    %%h = Gemm(%%xs, %%fc1_w, %%fc1_b) {transB = 1}\n    %%a = Clip(%%h, %%zero, %%one)\n"
             "    %%c = Sub(%%a, %%mean)\n    %%sd = Pow(%%var, %%half)\n    %%n = Div(%%c, %%sd)\n"
             "    %%o = Mul(%%n, %%tn_w)\n    return %%o\n  }\n}\n");
    qo_module *m = NULL;
    qo_trainer *tr = NULL;
    qo_tensor x = {0}, y = {0};
    int64_t xd[2] = {16, 8}, n = 16;
    CHECK(qo_parse_module(&cx, "roles.qir", text, strlen(text), &m) == QO_OK);
    qo_train_opts to = {.optimizer = QO_OPTIM_SGD, .lr = 0.5f, .momentum = 0.9f, .threads = 1};
    if (m) CHECK(qo_trainer_new(&cx, m, 16, &to, &tr) == QO_OK);
    if (!tr) {
        qt_dump(&d);
        qo_module_free(m);
        return;
    }
    CHECK(qo_tensor_make(&cx, &x, QO_F32, 2, xd) == QO_OK && qo_tensor_make(&cx, &y, QO_I64, 1, &n) == QO_OK);
    for (int i = 0; i < 128; i++) ((float *)x.data)[i] = (float)((i * 37) % 17) / 17.0f;
    for (int i = 0; i < 16; i++) ((int64_t *)y.data)[i] = i % 4;
    float first = 0, loss = 0;
    for (int t = 0; t < 30; t++) CHECK(qo_trainer_step(tr, &x, &y, 0.5f, t ? &loss : &first, NULL) == QO_OK);
    CHECK(loss < first); /* it trains */
    static const char *const want[] = {"fc1_w", "fc1_b", "tn_w"};
    static const char *const frozen[] = {"two", "one", "zero", "half", "var"};
    int found = 0;
    for (uint32_t i = 0; i < qo_trainer_nstate(tr); i++) {
        const char *nm = qo_trainer_state_name(tr, i);
        if (!nm) continue;
        for (int k = 0; k < 3; k++) found += !strcmp(nm, want[k]);
        for (int k = 0; k < 5; k++)
            if (!strcmp(nm, frozen[k])) {
                fprintf(stderr, "[param_roles] %s is trained\n", nm);
                CHECK(false);
            }
    }
    CHECK_EQ(found, 3);
    /* the trained model keeps the constants' values */
    qo_module *tm = NULL;
    CHECK(qo_trainer_model(tr, &tm) == QO_OK);
    for (int k = 0; tm && k < 5; k++) {
        static const float vals[] = {2, 1, 0, 0.5f, 1.0001f};
        qo_graph *g = qo_module_main(tm);
        qo_val v = qo_graph_find(g, frozen[k]);
        const qo_constdata *cd = v && g->vals[v].cref ? qo_const_get(tm, g->vals[v].cref) : NULL;
        const float *c = cd ? cd->data : NULL;
        CHECK(c != NULL && c[0] == vals[k]);
    }
    printf("%-18s 30 steps  loss %.4g -> %.4g, %d parameters, 5 constants kept\n", "param_roles", (double)first,
           (double)loss, found);
    qo_module_free(tm);
    qo_trainer_free(tr);
    qo_module_free(m);
    qo_tensor_free(&x), qo_tensor_free(&y);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    char p[1024], line[1024];
    snprintf(p, sizeof p, "%s/train_runs.txt", dir);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    int nruns = 0;
    while (f && fgets(line, sizeof line, f)) {
        char run[64], params[MAXP][32];
        int np = 0, off = 0, k;
        if (sscanf(line, "%63s%n", run, &off) != 1) continue;
        char *q = line + off;
        while (np < MAXP && sscanf(q, "%31s%n", params[np], &k) == 1) q += k, np++;
        if (strcmp(run, "mlp_kd") == 0) {
            run_distill(params, np);
        } else if (strcmp(run, "qat_lb") == 0) {
            run_learned_bits(params, np);
        } else {
            run_train(run, params, np, true);
            run_train(run, params, np, false);
        }
        nruns++;
    }
    if (f) fclose(f);
    CHECK(nruns == 7);
    run_param_roles();
    return qt_finish();
}
