/* tests/passes/test_passes.c — unit tests of the pass manager (pipeline strings, errors with columns,
 * fixpoint bound, verify-each) and of shape-infer, const-fold, dce and canonicalize on graphs built
 * with the ir.h API. Expected shapes and values are the ONNX operator specification's (worked by
 * hand from the spec formulas; the same cases are cross-checked against onnx.shape_inference by
 * tests/passes/check_shapes.py on real models). Prints "N passed, N failed". */
#include "passes/pass_impl.h"
#include "tests/unit/test.h"

#include <math.h>

static qo_ctx cx;
static qt_diags dg;

/* ---- builders -------------------------------------------------------------------------------- */

static qo_module *mod(int64_t opset) {
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", opset);
    qo_graph_new(m, NULL, 0, "main");
    return m;
}

static qo_type tt(qo_module *m, qo_elem e, int r, const int64_t *d) { return qo_type_tensor(m, e, r, d, NULL); }

static qo_val input(qo_module *m, const char *name, qo_elem e, int r, const int64_t *d) {
    return qo_graph_add_input(qo_module_main(m), name, tt(m, e, r, d));
}

static qo_val ci64(qo_module *m, const char *name, int n, const int64_t *v) {
    int64_t d = n;
    return qo_pass_add_const(qo_module_main(m), name, QO_I64, 1, &d, v);
}

static qo_val cf32(qo_module *m, const char *name, int r, const int64_t *d, const float *v) {
    return qo_pass_add_const(qo_module_main(m), name, QO_F32, r, d, v);
}

/* A node of op reading ins; returns its first result, named `name`. */
static qo_val node(qo_module *m, qo_op op, const char *name, int nin, const qo_val *ins) {
    qo_graph *g = qo_module_main(m);
    qo_node n = qo_node_new(g, op, NULL, NULL, (uint32_t)nin, ins, 1);
    qo_node_set_name(g, n, name);
    qo_val v = qo_node_output(g, n, 0);
    qo_val_set_name(g, v, name);
    return v;
}

static qo_node def(qo_module *m, qo_val v) { return qo_module_main(m)->vals[v].def; }

static void ints_attr(qo_module *m, qo_val v, const char *k, int n, const int64_t *x) {
    qo_node_set_attr_ints(qo_module_main(m), def(m, v), k, x, (uint32_t)n);
}

static void int_attr(qo_module *m, qo_val v, const char *k, int64_t x) {
    qo_node_set_attr_int(qo_module_main(m), def(m, v), k, x);
}

/* "1x3x224x224xf32"-like text of v's type, "?" for unknown dims, "*" unknown rank. */
static const char *ty(qo_module *m, qo_val v) {
    static char buf[256];
    const qo_typedata *t = qo_type_get(m, qo_module_main(m)->vals[v].type);
    if (!t) return "unknown";
    size_t k = 0;
    buf[0] = 0;
    if (t->rank < 0) k += (size_t)snprintf(buf + k, sizeof buf - k, "*x");
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] >= 0) k += (size_t)snprintf(buf + k, sizeof buf - k, "%lldx", (long long)t->dims[i]);
        else if (t->syms && t->syms[i]) k += (size_t)snprintf(buf + k, sizeof buf - k, "%sx", qo_str(m, t->syms[i]));
        else k += (size_t)snprintf(buf + k, sizeof buf - k, "?x");
    }
    snprintf(buf + k, sizeof buf - k, "%s", t->elem ? qo_elem_name(t->elem) : "?");
    return buf;
}

static qo_status run(qo_module *m, const char *pipeline) {
    qo_pm_opts o = {.verify_each = true};
    return qo_pipeline_run(&cx, m, pipeline, &o);
}

/* ---- pass manager ---------------------------------------------------------------------------- */

static void test_canonical(void) {
    char buf[256];
    CHECK_EQ(qo_pipeline_canonical(&cx, " shape-infer , fixpoint{max=8}( const-fold,dce ),verify", buf, sizeof buf), QO_OK);
    CHECK_STR(buf, "shape-infer,fixpoint{max=8}(const-fold,dce),verify");
    /* defaults are implied: an option set to its default disappears, others are normalized */
    CHECK_EQ(qo_pipeline_canonical(&cx, "const-fold{max-bytes=65536},fixpoint{max=10}(dce)", buf, sizeof buf), QO_OK);
    CHECK_STR(buf, "const-fold,fixpoint(dce)");
    CHECK_EQ(qo_pipeline_canonical(&cx, "const-fold{max-bytes=+0100},canonicalize{keep-identity}", buf, sizeof buf), QO_OK);
    CHECK_STR(buf, "const-fold{max-bytes=100},canonicalize{keep-identity=true}");
    CHECK_EQ(qo_pipeline_canonical(&cx, "fixpoint{max=3}(fixpoint{max=2}(dce),const-fold)", buf, sizeof buf), QO_OK);
    CHECK_STR(buf, "fixpoint{max=3}(fixpoint{max=2}(dce),const-fold)");
    /* too small a buffer is an error, not a silent truncation */
    CHECK_EQ(qo_pipeline_canonical(&cx, "shape-infer,const-fold", buf, 8), QO_ERR_LIMIT);
}

static void expect_parse_error(const char *pipeline, unsigned col, const char *sub) {
    qt_ctx(&cx, &dg);
    qo_module *m = mod(13);
    int64_t d[1] = {4};
    qo_val x = input(m, "x", QO_F32, 1, d);
    qo_val y = node(m, QO_OP_IDENTITY, "y", 1, &x);
    qo_graph_add_output(qo_module_main(m), y);
    CHECK_EQ(run(m, pipeline), QO_ERR_PARSE);
    char want[64];
    snprintf(want, sizeof want, "pipeline:1:%u:", col);
    bool found = false;
    for (int i = 0; i < dg.n; i++) found |= strstr(dg.text[i], want) && strstr(dg.text[i], sub);
    if (!found) {
        fprintf(stderr, "  expected '%s' ... '%s' for \"%s\"\n", want, sub, pipeline);
        qt_dump(&dg);
    }
    CHECK(found);
    /* nothing ran: the Identity that canonicalize would remove is still there */
    CHECK_EQ(qo_graph_num_nodes(qo_module_main(m)), 1);
    qo_module_free(m);
}

static void test_errors(void) {
    expect_parse_error("canonicalize,shape-infr", 14, "unknown pass 'shape-infr'");
    expect_parse_error("canonicalize,const-fold{max-byte=3}", 25, "unknown option 'max-byte' of pass 'const-fold'");
    expect_parse_error("canonicalize,const-fold{max-bytes=abc}", 35, "bad integer value 'abc'");
    expect_parse_error("canonicalize,const-fold{max-bytes}", 25, "needs a value");
    expect_parse_error("canonicalize,fixpoint{max=0}(dce)", 27, "positive integer");
    expect_parse_error("canonicalize,fixpoint(dce", 26, "expected ')'");
    expect_parse_error("canonicalize,fixpoint dce", 23, "expected '('");
    expect_parse_error("canonicalize,,dce", 14, "expected a pass name");
    expect_parse_error("canonicalize,", 14, "expected a pass name at end");
    expect_parse_error("canonicalize dce", 14, "unexpected 'd'");
    expect_parse_error("canonicalize{keep-identity=maybe}", 28, "bad boolean value 'maybe'");
    expect_parse_error("canonicalize{keep-identity", 27, "unterminated option list");
    expect_parse_error("canonicalize,fixpoint{count=2}(dce)", 23, "unknown option 'count' of 'fixpoint'");
    qt_ctx(&cx, &dg);
}

/* Shape -> Gather -> Unsqueeze -> Concat -> Reshape (the PyTorch Flatten export) with a static
 * input: const-fold must leave Reshape with a constant shape operand. */
static qo_module *flatten_chain(int64_t opset, qo_val *out) {
    qo_module *m = mod(opset);
    qo_graph *g = qo_module_main(m);
    int64_t d[4] = {2, 3, 4, 5};
    qo_val x = input(m, "x", QO_F32, 4, d);
    qo_val r = node(m, QO_OP_RELU, "r", 1, &x);
    qo_val sh = node(m, QO_OP_SHAPE, "sh", 1, &r);
    int64_t zero = 0, neg1 = -1;
    qo_val idx = qo_pass_add_const(g, "idx", QO_I64, 0, NULL, &zero);
    qo_val gi[2] = {sh, idx};
    qo_val ga = node(m, QO_OP_GATHER, "ga", 2, gi);
    qo_val ax = ci64(m, "ax", 1, &zero);
    qo_val ui[2] = {ga, ax};
    qo_val un = node(m, QO_OP_UNSQUEEZE, "un", opset >= 13 ? 2 : 1, ui);
    if (opset < 13) ints_attr(m, un, "axes", 1, &zero);
    qo_val m1 = ci64(m, "m1", 1, &neg1);
    qo_val ci[2] = {un, m1};
    qo_val cat = node(m, QO_OP_CONCAT, "cat", 2, ci);
    int_attr(m, cat, "axis", 0);
    qo_val ri[2] = {r, cat};
    qo_val y = node(m, QO_OP_RESHAPE, "y", 2, ri);
    qo_graph_add_output(g, y);
    *out = y;
    return m;
}

static void test_fixpoint_and_chain(void) {
    qt_ctx(&cx, &dg);
    qo_val y;
    qo_module *m = flatten_chain(13, &y);
    qo_graph *g = qo_module_main(m);
    CHECK_EQ(run(m, "shape-infer,fixpoint{max=4}(const-fold,dce),shape-infer"), QO_OK);
    qt_dump(&dg);
    /* Relu + Reshape are all that is left, Reshape reads a constant [2, -1] */
    CHECK_EQ(qo_graph_num_nodes(g), 2);
    qo_node rs = def(m, y);
    int64_t sh[4];
    CHECK_EQ(qo_pass_const_ints(g, qo_node_input(g, rs, 1), sh, 4), 2);
    CHECK_EQ(sh[0], 2);
    CHECK_EQ(sh[1], -1);
    CHECK_STR(ty(m, y), "2x60xf32");
    CHECK_STR(qo_val_name(g, y), "y");
    qo_module_free(m);

    /* opset 11: Unsqueeze with the axes attribute folds too */
    m = flatten_chain(11, &y);
    CHECK_EQ(run(m, "shape-infer,fixpoint(const-fold,dce)"), QO_OK);
    CHECK_EQ(qo_graph_num_nodes(qo_module_main(m)), 2);
    qo_module_free(m);

    /* a fixpoint bound that is too small is an error naming the pass that kept changing */
    qt_ctx(&cx, &dg);
    m = flatten_chain(13, &y);
    CHECK_EQ(run(m, "shape-infer,fixpoint{max=1}(dce,const-fold)"), QO_ERR_LIMIT);
    CHECK(qt_has(&dg, NULL, "pass 'const-fold' kept changing"));
    CHECK(qt_has(&dg, NULL, "pipeline:1:13:"));
    qo_module_free(m);
    qt_ctx(&cx, &dg);
}

static void test_stats_timing_print(void) {
    qt_ctx(&cx, &dg);
    qo_val y;
    qo_module *m = flatten_chain(13, &y);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    qo_pm_opts o = {.verify_each = true, .stats = true, .timing = true, .print_after = "dce", .report = f};
    CHECK_EQ(qo_pipeline_run(&cx, m, "shape-infer,const-fold,dce", &o), QO_OK);
    fclose(f);
    CHECK(strstr(buf, "nodes-folded") != NULL);
    CHECK(strstr(buf, "constants-removed") != NULL);
    CHECK(strstr(buf, "pass timing") != NULL);
    CHECK(strstr(buf, "IR after dce") != NULL);
    CHECK(strstr(buf, "IR after const-fold") == NULL);
    free(buf);
    /* a misspelt print-after name is reported, not ignored */
    qo_pm_opts o2 = {.print_after = "dcee"};
    CHECK_EQ(qo_pipeline_run(&cx, m, "dce", &o2), QO_ERR_USAGE);
    qo_module_free(m);
    qt_ctx(&cx, &dg);
}

/* ---- shape-infer ------------------------------------------------------------------------------ */

static void test_shape_conv_pool(void) {
    qo_module *m = mod(13);
    int64_t xd[4] = {1, 3, 224, 224}, wd[4] = {64, 3, 7, 7};
    qo_val x = input(m, "x", QO_F32, 4, xd);
    qo_val w = input(m, "w", QO_F32, 4, wd);
    qo_val ci[2] = {x, w};
    qo_val c = node(m, QO_OP_CONV, "c", 2, ci);
    int64_t s2[2] = {2, 2}, p3[4] = {3, 3, 3, 3}, k3[2] = {3, 3}, p1[4] = {1, 1, 1, 1};
    ints_attr(m, c, "strides", 2, s2);
    ints_attr(m, c, "pads", 4, p3);
    qo_val mp = node(m, QO_OP_MAXPOOL, "mp", 1, &c);
    ints_attr(m, mp, "kernel_shape", 2, k3);
    ints_attr(m, mp, "strides", 2, s2);
    ints_attr(m, mp, "pads", 4, p1);
    /* ceil_mode: 112 -> (112-3)/2 rounds up to 55, +1 = 56 windows (floor would give 55) */
    qo_val cm = node(m, QO_OP_AVERAGEPOOL, "cm", 1, &c);
    ints_attr(m, cm, "kernel_shape", 2, k3);
    ints_attr(m, cm, "strides", 2, s2);
    int_attr(m, cm, "ceil_mode", 1);
    qo_val fl = node(m, QO_OP_AVERAGEPOOL, "fl", 1, &c);
    ints_attr(m, fl, "kernel_shape", 2, k3);
    ints_attr(m, fl, "strides", 2, s2);
    /* SAME_UPPER with stride 2: ceil(56/2) */
    qo_val w2 = input(m, "w2", QO_F32, 4, (int64_t[]){8, 32, 3, 3});
    qo_val ci2[2] = {mp, w2};
    qo_val c2 = node(m, QO_OP_CONV, "c2", 2, ci2);
    ints_attr(m, c2, "strides", 2, s2);
    qo_node_set_attr_string(qo_module_main(m), def(m, c2), "auto_pad", "SAME_UPPER", 10);
    int_attr(m, c2, "group", 2);
    /* ConvTranspose: stride 2, kernel 3, pads 1, output_padding 1: 2*(28-1)+1+2+1-2 = 56 */
    qo_val wt = input(m, "wt", QO_F32, 4, (int64_t[]){8, 4, 3, 3});
    qo_val cti[2] = {c2, wt};
    qo_val ct = node(m, QO_OP_CONVTRANSPOSE, "ct", 2, cti);
    ints_attr(m, ct, "strides", 2, s2);
    ints_attr(m, ct, "pads", 4, p1);
    ints_attr(m, ct, "output_padding", 2, (int64_t[]){1, 1});
    int_attr(m, ct, "group", 2);
    qo_val gp = node(m, QO_OP_GLOBALAVERAGEPOOL, "gp", 1, &ct);
    qo_val fl2 = node(m, QO_OP_FLATTEN, "fl2", 1, &gp);
    CHECK_EQ(run(m, "shape-infer"), QO_OK);
    CHECK_STR(ty(m, c), "1x64x112x112xf32");
    CHECK_STR(ty(m, mp), "1x64x56x56xf32");
    CHECK_STR(ty(m, cm), "1x64x56x56xf32");
    CHECK_STR(ty(m, fl), "1x64x55x55xf32");
    CHECK_STR(ty(m, c2), "1x8x28x28xf32");
    CHECK_STR(ty(m, ct), "1x8x56x56xf32");
    CHECK_STR(ty(m, gp), "1x8x1x1xf32");
    CHECK_STR(ty(m, fl2), "1x8xf32");
    qo_module_free(m);
}

static void test_shape_matmul_bcast(void) {
    qo_module *m = mod(13);
    qo_graph *g = qo_module_main(m);
    qo_atom syms[3] = {qo_intern(m, "batch"), 0, 0};
    qo_val a = qo_graph_add_input(g, "a", qo_type_tensor(m, QO_F32, 3, (int64_t[]){-1, 16, 32}, syms));
    qo_val b = input(m, "b", QO_F32, 2, (int64_t[]){32, 8});
    qo_val v = input(m, "v", QO_F32, 1, (int64_t[]){8});
    qo_val mm = node(m, QO_OP_MATMUL, "mm", 2, (qo_val[]){a, b});
    qo_val mv = node(m, QO_OP_MATMUL, "mv", 2, (qo_val[]){mm, v});
    qo_val vm = node(m, QO_OP_MATMUL, "vm", 2, (qo_val[]){v, input(m, "c", QO_F32, 3, (int64_t[]){5, 8, 4})});
    qo_val ad = node(m, QO_OP_ADD, "ad", 2, (qo_val[]){mm, input(m, "bias", QO_F32, 1, (int64_t[]){8})});
    qo_val rl = node(m, QO_OP_RELU, "rl", 1, &ad);
    qo_val eq = node(m, QO_OP_EQUAL, "eq", 2, (qo_val[]){rl, ad});
    qo_val gm = node(m, QO_OP_GEMM, "gm", 2,
                     (qo_val[]){input(m, "ga", QO_F32, 2, (int64_t[]){7, 5}), input(m, "gb", QO_F32, 2, (int64_t[]){9, 7})});
    int_attr(m, gm, "transA", 1);
    int_attr(m, gm, "transB", 1);
    CHECK_EQ(run(m, "shape-infer"), QO_OK);
    CHECK_STR(ty(m, mm), "batchx16x8xf32");
    CHECK_STR(ty(m, mv), "batchx16xf32");
    CHECK_STR(ty(m, vm), "5x4xf32");
    CHECK_STR(ty(m, rl), "batchx16x8xf32");
    CHECK_STR(ty(m, eq), "batchx16x8xbool");
    CHECK_STR(ty(m, gm), "5x9xf32");
    qo_module_free(m);
}

static void test_shape_data_movement(void) {
    qo_module *m = mod(13);
    qo_val x = input(m, "x", QO_F32, 4, (int64_t[]){2, 3, 4, 5});
    qo_val rs = node(m, QO_OP_RESHAPE, "rs", 2, (qo_val[]){x, ci64(m, "s1", 3, (int64_t[]){0, -1, 5})});
    qo_val tr = node(m, QO_OP_TRANSPOSE, "tr", 1, &x);
    ints_attr(m, tr, "perm", 4, (int64_t[]){0, 2, 3, 1});
    /* Slice: starts -3, ends huge (clamped), step 2 on axis 3 -> indices 2,4; axis 1 reversed */
    qo_val sl = node(m, QO_OP_SLICE, "sl", 5,
                     (qo_val[]){x, ci64(m, "st", 2, (int64_t[]){-3, -1}), ci64(m, "en", 2, (int64_t[]){INT64_MAX, INT64_MIN}),
                                ci64(m, "ax", 2, (int64_t[]){3, 1}), ci64(m, "sp", 2, (int64_t[]){2, -1})});
    qo_val sq = node(m, QO_OP_SQUEEZE, "sq", 2, (qo_val[]){node(m, QO_OP_UNSQUEEZE, "us", 2, (qo_val[]){x, ci64(m, "ua", 2, (int64_t[]){0, -1})}),
                                                      ci64(m, "sa", 1, (int64_t[]){0})});
    qo_val us = def(m, sq) ? qo_node_input(qo_module_main(m), def(m, sq), 0) : 0;
    qo_val cc = node(m, QO_OP_CONCAT, "cc", 2, (qo_val[]){x, x});
    int_attr(m, cc, "axis", -1);
    qo_val ga = node(m, QO_OP_GATHER, "ga", 2, (qo_val[]){x, input(m, "ix", QO_I64, 2, (int64_t[]){6, 7})});
    int_attr(m, ga, "axis", 1);
    qo_val sh = node(m, QO_OP_SHAPE, "sh", 1, &x);
    qo_val ex = node(m, QO_OP_EXPAND, "ex", 2, (qo_val[]){input(m, "e", QO_F32, 2, (int64_t[]){3, 1}), ci64(m, "es", 3, (int64_t[]){2, 1, 6})});
    qo_val rd = node(m, QO_OP_REDUCEMEAN, "rd", 1, &x);
    ints_attr(m, rd, "axes", 2, (int64_t[]){1, -1});
    int_attr(m, rd, "keepdims", 0);
    qo_val rsum = node(m, QO_OP_REDUCESUM, "rsum", 2, (qo_val[]){x, ci64(m, "ra", 1, (int64_t[]){2})});
    qo_val pd = node(m, QO_OP_PAD, "pd", 2, (qo_val[]){x, ci64(m, "pads", 8, (int64_t[]){0, 0, 1, 2, 0, 0, 3, 4})});
    qo_val cs = node(m, QO_OP_CONSTANTOFSHAPE, "cs", 1, &sh);
    qo_node tpn = qo_node_new(qo_module_main(m), QO_OP_TOPK, NULL, NULL, 2, (qo_val[]){x, ci64(m, "k", 1, (int64_t[]){2})}, 2);
    qo_val tp = qo_node_output(qo_module_main(m), tpn, 0), tpi = qo_node_output(qo_module_main(m), tpn, 1);
    qo_val am = node(m, QO_OP_ARGMAX, "am", 1, &x);
    int_attr(m, am, "axis", 2);
    qo_val rz = node(m, QO_OP_RESIZE, "rz", 3,
                     (qo_val[]){x, cf32(m, "roi", 1, (int64_t[]){0}, (float[]){0}),
                                cf32(m, "sc", 1, (int64_t[]){4}, (float[]){1, 1, 2, 1.5f})});
    CHECK_EQ(run(m, "shape-infer"), QO_OK);
    qt_dump(&dg);
    CHECK_STR(ty(m, rs), "2x12x5xf32");
    CHECK_STR(ty(m, tr), "2x4x5x3xf32");
    CHECK_STR(ty(m, sl), "2x3x4x2xf32");
    CHECK_STR(ty(m, us), "1x2x3x4x5x1xf32");
    CHECK_STR(ty(m, sq), "2x3x4x5x1xf32");
    CHECK_STR(ty(m, cc), "2x3x4x10xf32");
    CHECK_STR(ty(m, ga), "2x6x7x4x5xf32");
    CHECK_STR(ty(m, sh), "4xi64");
    CHECK_STR(ty(m, ex), "2x3x6xf32");
    CHECK_STR(ty(m, rd), "2x4xf32");
    CHECK_STR(ty(m, rsum), "2x3x1x5xf32");
    CHECK_STR(ty(m, pd), "2x3x8x11xf32");
    CHECK_STR(ty(m, cs), "?x?x?x?xf32"); /* shape operand not constant: rank from its length */
    CHECK_STR(ty(m, tp), "2x3x4x2xf32");
    CHECK_STR(ty(m, tpi), "2x3x4x2xi64");
    CHECK_STR(ty(m, am), "2x3x1x5xi64");
    CHECK_STR(ty(m, rz), "2x3x8x7xf32");
    qo_module_free(m);
}

static void test_shape_legacy_forms(void) {
    /* opset 9: Slice attributes, Squeeze attributes, Upsample scales input, Split attribute */
    qo_module *m = mod(9);
    qo_val x = input(m, "x", QO_F32, 4, (int64_t[]){1, 6, 4, 4});
    qo_val sl = node(m, QO_OP_SLICE, "sl", 1, &x);
    ints_attr(m, sl, "starts", 1, (int64_t[]){1});
    ints_attr(m, sl, "ends", 1, (int64_t[]){-1});
    ints_attr(m, sl, "axes", 1, (int64_t[]){1});
    qo_val up = node(m, QO_OP_UPSAMPLE, "up", 2, (qo_val[]){x, cf32(m, "s", 1, (int64_t[]){4}, (float[]){1, 1, 2, 2})});
    qo_graph *g = qo_module_main(m);
    qo_node sp = qo_node_new(g, QO_OP_SPLIT, NULL, NULL, 1, &x, 2);
    qo_node_set_attr_ints(g, sp, "split", (int64_t[]){2, 4}, 2);
    qo_node_set_attr_int(g, sp, "axis", 1);
    CHECK_EQ(run(m, "shape-infer"), QO_OK);
    CHECK_STR(ty(m, sl), "1x4x4x4xf32");
    CHECK_STR(ty(m, up), "1x6x8x8xf32");
    CHECK_STR(ty(m, qo_node_output(g, sp, 0)), "1x2x4x4xf32");
    CHECK_STR(ty(m, qo_node_output(g, sp, 1)), "1x4x4x4xf32");
    qo_module_free(m);

    /* opset 18: Split num_outputs with an uneven last chunk (ceil(7/3) = 3: 3, 3, 1) */
    m = mod(18);
    g = qo_module_main(m);
    x = input(m, "x", QO_F32, 2, (int64_t[]){7, 2});
    sp = qo_node_new(g, QO_OP_SPLIT, NULL, NULL, 1, &x, 3);
    qo_node_set_attr_int(g, sp, "num_outputs", 3);
    qo_val q = node(m, QO_OP_QUANTIZELINEAR, "q", 3,
                    (qo_val[]){x, cf32(m, "qs", 0, NULL, (float[]){0.5f}),
                               qo_pass_add_const(g, "zp", QO_I8, 0, NULL, (int8_t[]){0})});
    CHECK_EQ(run(m, "shape-infer"), QO_OK);
    CHECK_STR(ty(m, qo_node_output(g, sp, 0)), "3x2xf32");
    CHECK_STR(ty(m, qo_node_output(g, sp, 2)), "1x2xf32");
    CHECK_STR(ty(m, q), "7x2xi8");
    qo_module_free(m);
}

static void test_shape_precision(void) {
    qt_ctx(&cx, &dg);
    qo_module *m = mod(13);
    qo_graph *g = qo_module_main(m);
    qo_atom syms[2] = {qo_intern(m, "N"), 0};
    qo_val x = qo_graph_add_input(g, "x", qo_type_tensor(m, QO_F32, 2, (int64_t[]){-1, 4}, syms));
    qo_val r = node(m, QO_OP_RELU, "r", 1, &x);
    /* a declared type more precise than what can be inferred stays */
    g->vals[r].type = tt(m, QO_F32, 2, (int64_t[]){8, 4});
    qo_val s = node(m, QO_OP_SIGMOID, "s", 1, &x);
    /* a contradicting declared type stays and is reported as a warning naming the node */
    g->vals[s].type = tt(m, QO_F32, 2, (int64_t[]){-1, 5});
    qo_node un = qo_node_new(g, QO_OP_UNKNOWN, "com.example", "Foo", 1, &x, 1);
    qo_val unk = qo_node_output(g, un, 0);
    CHECK_EQ(run(m, "shape-infer"), QO_OK);
    CHECK_STR(ty(m, r), "8x4xf32");
    CHECK_STR(ty(m, s), "?x5xf32");
    CHECK_STR(ty(m, unk), "unknown"); /* ops it does not know are left alone */
    bool warned = false;
    for (int i = 0; i < dg.n; i++) warned |= dg.kind[i] == QO_DIAG_WARNING && strcmp(dg.node[i], "s") == 0;
    CHECK(warned);
    /* running again changes nothing: shape-infer converges in a fixpoint */
    CHECK_EQ(run(m, "fixpoint{max=1}(shape-infer)"), QO_OK);
    qo_module_free(m);
    qt_ctx(&cx, &dg);
}

/* ---- const-fold -------------------------------------------------------------------------------- */

static void test_fold_values(void) {
    qo_module *m = mod(13);
    qo_graph *g = qo_module_main(m);
    float a[4] = {1.0f, 2.0f, 3.0f, 10.0f}, b[1] = {3.0f};
    qo_val ca = cf32(m, "a", 1, (int64_t[]){4}, a), cb = cf32(m, "b", 0, NULL, b);
    qo_val dv = node(m, QO_OP_DIV, "dv", 2, (qo_val[]){ca, cb});
    qo_val sq = node(m, QO_OP_SQRT, "sq", 1, &dv);
    qo_val rc = node(m, QO_OP_RECIPROCAL, "rc", 1, &ca);
    qo_val ct = node(m, QO_OP_CAST, "ct", 1, &dv);
    int_attr(m, ct, "to", QO_I64);
    qo_val rg = node(m, QO_OP_RANGE, "rg", 3, (qo_val[]){qo_pass_add_const(g, "r0", QO_I64, 0, NULL, (int64_t[]){10}),
                                                          qo_pass_add_const(g, "r1", QO_I64, 0, NULL, (int64_t[]){1}),
                                                          qo_pass_add_const(g, "r2", QO_I64, 0, NULL, (int64_t[]){-4})});
    qo_val id = node(m, QO_OP_DIV, "id", 2, (qo_val[]){ci64(m, "n7", 2, (int64_t[]){-7, 7}), ci64(m, "d2", 1, (int64_t[]){2})});
    qo_val x = input(m, "x", QO_F32, 1, (int64_t[]){4});
    qo_val live = node(m, QO_OP_ADD, "live", 2, (qo_val[]){x, sq});
    qo_graph_add_output(g, live);
    qo_graph_add_output(g, rc);
    qo_graph_add_output(g, ct);
    qo_graph_add_output(g, rg);
    qo_graph_add_output(g, id);
    CHECK_EQ(run(m, "const-fold,dce"), QO_OK);
    CHECK_EQ(qo_graph_num_nodes(g), 1); /* only the Add reading the graph input */
    float got[4];
    CHECK_EQ(qo_pass_const_floats(g, qo_node_input(g, def(m, live), 1), got, 4), 4);
    for (int i = 0; i < 4; i++) {
        volatile float q = a[i] / b[0]; /* one IEEE division, then one square root */
        float want = sqrtf(q);
        CHECK(memcmp(&got[i], &want, 4) == 0);
    }
    /* outputs keep their names and read the folded constants */
    qo_val o1 = qo_graph_output(g, 1);
    CHECK_STR(qo_val_name(g, o1), "rc");
    CHECK_EQ(qo_pass_const_floats(g, o1, got, 4), 4);
    CHECK(got[3] == 1.0f / 10.0f);
    int64_t iv[4];
    CHECK_EQ(qo_pass_const_ints(g, qo_graph_output(g, 2), iv, 4), 4); /* 1/3, 2/3, 1, 10/3 truncated */
    CHECK(iv[0] == 0 && iv[1] == 0 && iv[2] == 1 && iv[3] == 3);
    CHECK_EQ(qo_pass_const_ints(g, qo_graph_output(g, 3), iv, 4), 3); /* 10, 6, 2 */
    CHECK(iv[0] == 10 && iv[1] == 6 && iv[2] == 2);
    CHECK_EQ(qo_pass_const_ints(g, qo_graph_output(g, 4), iv, 4), 2); /* C truncation, as onnxruntime */
    CHECK(iv[0] == -3 && iv[1] == 3);
    CHECK_STR(qo_val_name(g, qo_graph_output(g, 4)), "id");
    qo_module_free(m);
}

static void test_fold_limits(void) {
    /* max-bytes keeps big float results as nodes; int64 shape-like results fold regardless */
    qo_module *m = mod(13);
    qo_graph *g = qo_module_main(m);
    static float big[4096];
    qo_val c = cf32(m, "c", 1, (int64_t[]){4096}, big);
    qo_val ng = node(m, QO_OP_NEG, "ng", 1, &c);
    qo_graph_add_output(g, ng);
    CHECK_EQ(run(m, "const-fold{max-bytes=1024}"), QO_OK);
    CHECK_EQ(qo_graph_num_nodes(g), 1);
    CHECK_EQ(run(m, "const-fold"), QO_OK);
    CHECK_EQ(qo_graph_num_nodes(g), 0);
    qo_module_free(m);

    /* Shape of a tensor with a symbolic dim does not fold; Shape with start/end (opset 15) does */
    m = mod(15);
    g = qo_module_main(m);
    qo_atom syms[3] = {qo_intern(m, "N"), 0, 0};
    qo_val x = qo_graph_add_input(g, "x", qo_type_tensor(m, QO_F32, 3, (int64_t[]){-1, 3, 4}, syms));
    qo_val s1 = node(m, QO_OP_SHAPE, "s1", 1, &x);
    qo_val s2 = node(m, QO_OP_SHAPE, "s2", 1, &x);
    int_attr(m, s2, "start", 1);
    qo_graph_add_output(g, s1);
    qo_graph_add_output(g, s2);
    CHECK_EQ(run(m, "const-fold"), QO_OK);
    CHECK_EQ(qo_graph_num_nodes(g), 2); /* the input's shape is not fully static: neither folds */
    qo_module_free(m);
}

/* ---- dce ------------------------------------------------------------------------------------ */

static void test_dce(void) {
    qo_module *m = mod(13);
    qo_graph *g = qo_module_main(m);
    qo_val x = input(m, "x", QO_F32, 1, (int64_t[]){4});
    qo_val unused_in = input(m, "unused_in", QO_F32, 1, (int64_t[]){4});
    (void)unused_in;
    qo_val w = cf32(m, "w", 1, (int64_t[]){1}, (float[]){2});
    cf32(m, "dead_w", 1, (int64_t[]){1}, (float[]){3});
    qo_val a = node(m, QO_OP_MUL, "a", 2, (qo_val[]){x, w});
    qo_val d1 = node(m, QO_OP_RELU, "d1", 1, &a);
    node(m, QO_OP_EXP, "d2", 1, &d1); /* dead chain d1 -> d2 */
    node(m, QO_OP_RANDOMNORMALLIKE, "rnd", 1, &x); /* random ops with unused results go too */
    qo_val y = node(m, QO_OP_NEG, "y", 1, &a);
    qo_graph_add_output(g, y);
    /* Dropout's unused mask output is dropped, its data output stays */
    qo_node dn = qo_node_new(g, QO_OP_DROPOUT, NULL, NULL, 1, &a, 2);
    qo_graph_add_output(g, qo_node_output(g, dn, 0));
    CHECK_EQ(run(m, "dce"), QO_OK);
    CHECK_EQ(qo_graph_num_nodes(g), 3);
    CHECK_EQ(g->ninputs, 2);
    CHECK_EQ(g->nconsts, 1);
    CHECK_EQ(qo_node_output(g, dn, 1), 0);
    qo_module_free(m);
}

static void test_dce_captures(void) {
    /* a value read only by a nested body (through a capture) is live */
    qo_module *m = mod(13);
    qo_graph *g = qo_module_main(m);
    qo_val x = input(m, "x", QO_F32, 1, (int64_t[]){4});
    qo_val cond = input(m, "cond", QO_BOOL, 0, NULL);
    qo_val t = node(m, QO_OP_RELU, "t", 1, &x);
    qo_node ifn = qo_node_new(g, QO_OP_IF, NULL, NULL, 1, &cond, 1);
    qo_graph *th = qo_graph_new(m, g, ifn, "then");
    qo_graph *el = qo_graph_new(m, g, ifn, "else");
    qo_val cap = qo_graph_add_capture(th, "t", g->vals[t].type);
    qo_graph_add_capture(th, "x", g->vals[x].type); /* unused capture: removed */
    qo_graph_add_output(th, cap);
    qo_val cap2 = qo_graph_add_capture(el, "x", g->vals[x].type);
    qo_graph_add_output(el, cap2);
    qo_attr ta = {.name = qo_intern(m, "then_branch"), .kind = QO_ATTR_GRAPH};
    ta.u.g = th->index;
    qo_node_set_attr(g, ifn, &ta);
    qo_attr ea = {.name = qo_intern(m, "else_branch"), .kind = QO_ATTR_GRAPH};
    ea.u.g = el->index;
    qo_node_set_attr(g, ifn, &ea);
    qo_graph_add_output(g, qo_node_output(g, ifn, 0));
    qo_val_set_name(g, qo_node_output(g, ifn, 0), "y");
    CHECK_EQ(run(m, "dce"), QO_OK);
    CHECK_EQ(qo_graph_num_nodes(g), 2); /* Relu kept: captured by the then branch */
    CHECK_EQ(th->ncaptures, 1);
    CHECK_EQ(el->ncaptures, 1);
    qo_module_free(m);
}

/* ---- canonicalize ------------------------------------------------------------------------------ */

static void test_canonicalize(void) {
    qt_ctx(&cx, &dg);
    qo_module *m = mod(13);
    qo_graph *g = qo_module_main(m);
    qo_val x = input(m, "x", QO_F32, 2, (int64_t[]){2, 4});
    qo_node k = qo_node_new(g, QO_OP_CONSTANT, NULL, NULL, 0, NULL, 1);
    qo_node_set_attr_float(g, k, "value_float", 0.5f);
    qo_val kv = qo_node_output(g, k, 0);
    qo_val_set_name(g, kv, "half");
    qo_val mu = node(m, QO_OP_MUL, "mu", 2, (qo_val[]){x, kv});
    qo_val i1 = node(m, QO_OP_IDENTITY, "i1", 1, &mu);
    qo_val dr = node(m, QO_OP_DROPOUT, "dr", 1, &i1);
    qo_val re = node(m, QO_OP_RELU, "re", 1, &dr);
    qo_val out = node(m, QO_OP_IDENTITY, "out", 1, &re); /* graph output: Relu's result takes the name */
    qo_val passthru = node(m, QO_OP_IDENTITY, "passthru", 1, &x); /* input -> output: must stay */
    qo_val sq = node(m, QO_OP_SQUEEZE, "sq", 1, &re);  /* axes attribute in an opset-13 model */
    ints_attr(m, sq, "axes", 1, (int64_t[]){0});
    qo_graph_add_output(g, out);
    qo_graph_add_output(g, passthru);
    qo_graph_add_output(g, sq);
    CHECK_EQ(run(m, "canonicalize,dce"), QO_OK);
    qt_dump(&dg);
    CHECK_EQ(qo_graph_num_nodes(g), 4); /* Mul, Relu, Identity(passthru), Squeeze */
    CHECK_STR(qo_val_name(g, qo_graph_output(g, 0)), "out");
    CHECK_EQ(g->nodes[g->vals[qo_graph_output(g, 0)].def].op, QO_OP_RELU);
    CHECK_EQ(g->nodes[g->vals[qo_graph_output(g, 1)].def].op, QO_OP_IDENTITY);
    float h;
    CHECK_EQ(qo_pass_const_floats(g, qo_graph_find(g, "half"), &h, 1), 1);
    CHECK(h == 0.5f);
    qo_node sqn = g->vals[qo_graph_output(g, 2)].def;
    int64_t ax[2];
    CHECK_EQ(g->nodes[sqn].nin, 2);
    CHECK_EQ(qo_pass_const_ints(g, qo_node_input(g, sqn, 1), ax, 2), 1);
    CHECK(qo_node_attr(g, sqn, "axes") == NULL);
    qo_module_free(m);

    /* opset 9: Upsample stays (Resize with these semantics needs 11), Squeeze keeps its attribute,
     * Clip keeps min/max attributes, BatchNormalization loses spatial=1 */
    qt_ctx(&cx, &dg);
    m = mod(9);
    g = qo_module_main(m);
    x = input(m, "x", QO_F32, 4, (int64_t[]){1, 2, 4, 4});
    qo_val up = node(m, QO_OP_UPSAMPLE, "up", 2, (qo_val[]){x, cf32(m, "s", 1, (int64_t[]){4}, (float[]){1, 1, 2, 2})});
    qo_val cl = node(m, QO_OP_CLIP, "cl", 1, &up);
    qo_node_set_attr_float(g, def(m, cl), "min", 0.0f);
    qo_val p = cf32(m, "p", 1, (int64_t[]){2}, (float[]){1, 1});
    qo_val bn = node(m, QO_OP_BATCHNORMALIZATION, "bn", 5, (qo_val[]){cl, p, p, p, p});
    int_attr(m, bn, "spatial", 1);
    sq = node(m, QO_OP_SQUEEZE, "sq", 1, &bn);
    ints_attr(m, sq, "axes", 1, (int64_t[]){0});
    qo_graph_add_output(g, sq);
    CHECK_EQ(run(m, "canonicalize"), QO_OK);
    CHECK_EQ(g->nodes[def(m, up)].op, QO_OP_UPSAMPLE);
    CHECK(qo_node_attr(g, def(m, cl), "min") != NULL);
    CHECK(qo_node_attr(g, def(m, bn), "spatial") == NULL);
    CHECK(qo_node_attr(g, def(m, sq), "axes") != NULL);
    bool noted = false;
    for (int i = 0; i < dg.n; i++) noted |= dg.kind[i] == QO_DIAG_NOTE && strcmp(dg.node[i], "up") == 0;
    CHECK(noted);
    qo_module_free(m);
    qt_ctx(&cx, &dg);
}

int main(void) {
    qt_ctx(&cx, &dg);
    RUN(test_canonical);
    RUN(test_errors);
    RUN(test_fixpoint_and_chain);
    RUN(test_stats_timing_print);
    RUN(test_shape_conv_pool);
    RUN(test_shape_matmul_bcast);
    RUN(test_shape_data_movement);
    RUN(test_shape_legacy_forms);
    RUN(test_shape_precision);
    RUN(test_fold_values);
    RUN(test_fold_limits);
    RUN(test_dce);
    RUN(test_dce_captures);
    RUN(test_canonicalize);
    return qt_finish();
}
