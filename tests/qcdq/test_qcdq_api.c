/* tests/qcdq/test_qcdq_api.c — lower-qcdq / import-quant through the C API on small .qir models:
 *  - error cases: an activation quantizer with FLOOR rounding, with 1 bit, unsigned 12-bit at opset 13:
 *    each is reported naming the node and the op, the module is left unchanged, and (through the CLI,
 *    when the qopt binary is given as argv[1]) no output file is written;
 *  - what lowering emits (Brevitas's conventions, REFERENCE.md §3.2): Clip only when narrow or bits != 8,
 *    int8/uint8 zero points, 1-D scale + axis for per-channel, int32 bias with zero point 0, opset >= 13,
 *    the qonnx opset import dropped; unsigned 12-bit activations become uint16 at opset 21;
 *  - constants are quantized with the Quant node's own semantics (FLOOR weights included): integer
 *    values checked against hand-computed ones;
 *  - import-quant: the Brevitas chain shapes become Quant nodes with the expected (bits, signed, narrow)
 *    and qo_quant; chains that are not exact (zero point != 0 on an activation, Clip bounds that are no
 *    range) are left alone with a warning naming them.
 * Usage: test_qcdq_api [QOPT]. */
#include "backends/onnx/onnx_write.h"
#include "backends/qcdq/qcdq.h"
#include "frontend/onnx_load.h"
#include "passes/pass_impl.h"
#include "passes/quant/qgraph.h"
#include "tests/unit/test.h"

#include <stdlib.h>
#include <unistd.h>

static qo_module *parse(qo_ctx *cx, const char *text) {
    qo_module *m = NULL;
    if (qo_parse_module(cx, "t.qir", text, strlen(text), &m) != QO_OK) return NULL;
    return m;
}

static uint32_t count_op(const qo_module *m, qo_op op) {
    uint32_t k = 0;
    const qo_graph *g = qo_module_main(m);
    QO_FOR_EACH_NODE(g, n) k += g->nodes[n].op == op && !(g->nodes[n].flags & QO_NODE_DEAD);
    return k;
}

static qo_node find_op(const qo_graph *g, qo_op op, int nth) {
    QO_FOR_EACH_NODE(g, n)
    if (g->nodes[n].op == op && nth-- == 0) return n;
    return 0;
}

/* A model with one activation quantizer: x -> Quant(bits, signed, narrow, rounding) -> y. */
static char *act_model(int opset, int bits, int is_signed, int narrow, const char *rounding, float zp) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "module {\n  opset \"\" = %d\n  opset \"qonnx.custom_op.general\" = 2\n"
             "  graph @main(%%x : tensor<2x3xf32>) {\n"
             "    const %%s : tensor<f32> = [0.5]\n    const %%z : tensor<f32> = [%g]\n"
             "    const %%b : tensor<f32> = [%d.0]\n"
             "    %%y = \"qonnx.custom_op.general.Quant\"(%%x, %%s, %%z, %%b) {narrow = %d, rounding_mode = \"%s\", signed = %d} "
             ": tensor<2x3xf32> loc(\"act_q\")\n"
             "    return %%y\n  }\n}\n",
             opset, (double)zp, bits, narrow, rounding, is_signed);
    return buf;
}

static void expect_error(const char *what, int opset, int bits, int is_signed, const char *rounding, const char *sub,
                         const char *qopt) {
    qt_current = what;
    qt_diags d;
    qo_ctx cx;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, act_model(opset, bits, is_signed, 0, rounding, 0));
    CHECK(m != NULL);
    if (!m) return;
    CHECK(qo_lower_qcdq(&cx, m, NULL) != QO_OK);
    CHECK(qt_has(&d, "act_q", sub));
    CHECK(qt_has(&d, "act_q", "(Quant)"));
    CHECK(qt_has(&d, "act_q", "--format qonnx"));
    if (!qt_has(&d, "act_q", sub)) qt_dump(&d);
    /* nothing rewritten */
    CHECK_EQ(count_op(m, QO_OP_QONNX_QUANT), 1);
    CHECK_EQ(count_op(m, QO_OP_QUANTIZELINEAR), 0);
    CHECK_EQ(qo_module_opset(m, ""), opset);
    if (qopt) { /* through the CLI: the write must not happen */
        char in[256], out[256], cmd[1024];
        snprintf(in, sizeof in, "/tmp/qcdq_err_%d_%s.onnx", (int)getpid(), what);
        snprintf(out, sizeof out, "/tmp/qcdq_err_%d_%s_out.onnx", (int)getpid(), what);
        unlink(out);
        CHECK(qo_onnx_write(&cx, m, in, NULL) == QO_OK);
        snprintf(cmd, sizeof cmd, "'%s' opt '%s' -p import-quant,lower-qcdq -o '%s' 2>/dev/null", qopt, in, out);
        int rc = system(cmd);
        CHECK(rc != 0);
        CHECK(access(out, F_OK) != 0);
        unlink(in);
        unlink(out);
    }
    qo_module_free(m);
}

static void test_errors(const char *qopt) {
    expect_error("floor", 13, 8, 1, "FLOOR", "rounding_mode FLOOR cannot be written as QCDQ", qopt);
    expect_error("one_bit", 13, 1, 1, "ROUND", "1-bit", qopt);
    expect_error("u12_opset13", 13, 12, 0, "ROUND", "unsigned 12-bit activations cannot be written as QCDQ at opset 13", qopt);
}

/* Fails for an explicit opset below 13 with a usage error. */
static void test_opset_option(void) {
    qt_diags d;
    qo_ctx cx;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, act_model(13, 8, 1, 0, "ROUND", 0));
    qo_qcdq_opts o = {.opset = 12};
    CHECK(qo_lower_qcdq(&cx, m, &o) == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "opset in 13..21"));
    qo_module_free(m);
}

/* A qopt-inserted quantizer that was never calibrated is refused, not written with scale 1. */
static void test_pending(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, act_model(13, 8, 1, 0, "ROUND", 0));
    qo_graph *g = qo_module_main(m);
    qo_node n = find_op(g, QO_OP_QONNX_QUANT, 0);
    qo_node_set_attr_string(g, n, QO_QATTR_SPEC, "int8_act_per_tensor_float", 25);
    CHECK(qo_qnode_is_pending(g, n));
    CHECK(qo_lower_qcdq(&cx, m, NULL) != QO_OK);
    CHECK(qt_has(&d, "act_q", "no scale yet"));
    CHECK_EQ(count_op(m, QO_OP_QONNX_QUANT), 1);
    qo_module_free(m);
}

/* A model below opset 13 is raised to 13 unless an op whose inputs changed in between is present. */
static void test_opset_raise(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, act_model(11, 8, 1, 0, "ROUND", 0));
    CHECK(qo_lower_qcdq(&cx, m, NULL) == QO_OK);
    CHECK_EQ(qo_module_opset(m, ""), 13);
    qo_module_free(m);
    const char *sq = "module {\n  opset \"\" = 11\n  graph @main(%x : tensor<1x3xf32>) {\n"
                     "    %y = Squeeze(%x) {axes = [0]} : tensor<3xf32> loc(\"sq\")\n    return %y\n  }\n}\n";
    m = parse(&cx, sq);
    CHECK(m != NULL);
    if (!m) return;
    CHECK(qo_lower_qcdq(&cx, m, NULL) != QO_OK);
    CHECK(qt_has(&d, "sq", "Squeeze changed its inputs at opset 13"));
    CHECK_EQ(qo_module_opset(m, ""), 11);
    qo_module_free(m);
}

/* Activation lowering: Clip rule, element types, opset, qonnx import dropped. */
static void test_act_lowering(void) {
    struct { int opset, bits, is_signed, narrow; qo_elem e; int clip; int64_t lo, hi; } cases[] = {
        {13, 8, 1, 0, QO_I8, 0, 0, 0},      {13, 8, 1, 1, QO_I8, 1, -127, 127}, {13, 4, 1, 0, QO_I8, 1, -8, 7},
        {13, 8, 0, 0, QO_U8, 0, 0, 0},      {13, 2, 0, 0, QO_U8, 1, 0, 3},       {13, 8, 0, 1, QO_U8, 1, 0, 254},
        {21, 12, 0, 0, QO_U16, 1, 0, 4095}, {21, 16, 1, 0, QO_I16, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qo_ctx cx;
        qt_diags d;
        qt_ctx(&cx, &d);
        qo_module *m = parse(&cx, act_model(cases[i].opset, cases[i].bits, cases[i].is_signed, cases[i].narrow, "ROUND", 0));
        uint32_t k = 0;
        CHECK(qo_import_quant(&cx, qo_module_main(m), &k) == QO_OK); /* annotates the imported Quant node */
        CHECK_EQ(k, 1);
        qo_qcdq_opts o = {.opset = cases[i].opset};
        CHECK(qo_lower_qcdq(&cx, m, &o) == QO_OK);
        CHECK(qo_verify(&cx, m) == QO_OK);
        qo_graph *g = qo_module_main(m);
        CHECK_EQ(count_op(m, QO_OP_QONNX_QUANT), 0);
        CHECK_EQ(count_op(m, QO_OP_QUANTIZELINEAR), 1);
        CHECK_EQ(count_op(m, QO_OP_DEQUANTIZELINEAR), 1);
        CHECK_EQ(count_op(m, QO_OP_CLIP), cases[i].clip);
        CHECK_EQ(qo_module_opset(m, ""), cases[i].opset);
        CHECK_EQ(qo_module_opset(m, QO_QONNX_DOMAIN), 0);
        qo_node q = find_op(g, QO_OP_QUANTIZELINEAR, 0);
        CHECK_EQ(qo_type_elem(m, g->vals[qo_node_input(g, q, 2)].type), cases[i].e);
        CHECK_EQ(qo_type_elem(m, g->vals[qo_node_output(g, q, 0)].type), cases[i].e);
        if (cases[i].clip && cases[i].e == QO_U16) { /* float Clip after DequantizeLinear, bounds * 0.5 */
            qo_node c = find_op(g, QO_OP_CLIP, 0);
            float lo = -1, hi = -1;
            CHECK(g->vals[qo_node_input(g, c, 0)].def == find_op(g, QO_OP_DEQUANTIZELINEAR, 0));
            CHECK_EQ(qo_pass_const_floats(g, qo_node_input(g, c, 1), &lo, 1), 1);
            CHECK_EQ(qo_pass_const_floats(g, qo_node_input(g, c, 2), &hi, 1), 1);
            CHECK(lo == 0.0f && hi == 2047.5f);
        } else if (cases[i].clip) {
            qo_node c = find_op(g, QO_OP_CLIP, 0);
            int64_t lo = 0, hi = 0;
            CHECK_EQ(qo_pass_const_ints(g, qo_node_input(g, c, 1), &lo, 1), 1);
            CHECK_EQ(qo_pass_const_ints(g, qo_node_input(g, c, 2), &hi, 1), 1);
            CHECK_EQ(lo, cases[i].lo);
            CHECK_EQ(hi, cases[i].hi);
        }
        /* the graph output keeps its name and the QuantTensor metadata */
        qo_val y = qo_graph_output(g, 0);
        CHECK_STR(qo_val_name(g, y), "y");
        const qo_typedata *td = qo_type_get(m, g->vals[y].type);
        CHECK(td && td->quant && td->quant->bits == cases[i].bits);
        qo_module_free(m);
    }
}

/* Weights (per-channel, FLOOR rounding, narrow 4-bit) and an int32 bias: values by hand. */
static const char *const WEIGHTS =
    "module {\n  opset \"\" = 14\n  opset \"qonnx.custom_op.general\" = 2\n"
    "  graph @main(%x : tensor<1x2xf32>) {\n"
    "    const %w : tensor<2x2xf32> = [0.74, -0.26, 3.9, -9.0]\n"
    "    const %ws : tensor<2x1xf32> = [0.25, 1.0]\n    const %wz : tensor<f32> = [0.0]\n"
    "    const %wb : tensor<f32> = [4.0]\n"
    "    const %b : tensor<2xf32> = [0.3, -0.7]\n    const %bs : tensor<2xf32> = [0.125, 0.0625]\n"
    "    const %bb : tensor<f32> = [32.0]\n"
    "    %wq = \"qonnx.custom_op.general.Quant\"(%w, %ws, %wz, %wb) {narrow = 1, rounding_mode = \"FLOOR\", signed = 1} "
    ": tensor<2x2xf32> loc(\"w_q\")\n"
    "    %bq = \"qonnx.custom_op.general.Quant\"(%b, %bs, %wz, %bb) {narrow = 0, rounding_mode = \"ROUND\", signed = 1} "
    ": tensor<2xf32> loc(\"b_q\")\n"
    "    %y = Gemm(%x, %wq, %bq) {transB = 1} : tensor<1x2xf32>\n"
    "    return %y\n  }\n}\n";

static void test_const_lowering(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, WEIGHTS);
    CHECK(m != NULL);
    if (!m) return;
    CHECK(qo_lower_qcdq(&cx, m, NULL) == QO_OK);
    CHECK(qo_verify(&cx, m) == QO_OK);
    qo_graph *g = qo_module_main(m);
    CHECK_EQ(count_op(m, QO_OP_QUANTIZELINEAR), 0);
    CHECK_EQ(count_op(m, QO_OP_DEQUANTIZELINEAR), 2);
    CHECK_EQ(count_op(m, QO_OP_CLIP), 1); /* weights 4-bit narrow: Clip(-7, 7); the int32 bias: none */
    CHECK_EQ(qo_module_opset(m, ""), 14);
    qo_node wd = find_op(g, QO_OP_DEQUANTIZELINEAR, 0), bd = find_op(g, QO_OP_DEQUANTIZELINEAR, 1);
    qo_node c = find_op(g, QO_OP_CLIP, 0);
    int64_t wi[4], bi[2], ax = qo_attr_int(g, wd, "axis", -99);
    CHECK_EQ(ax, 0);
    /* w / s per row: [2.96, -1.04], [3.9, -9.0]; FLOOR after clamping to [-7, 7]: [2, -2], [3, -7] */
    CHECK_EQ(qo_pass_const_ints(g, qo_node_input(g, c, 0), wi, 4), 4);
    CHECK(wi[0] == 2 && wi[1] == -2 && wi[2] == 3 && wi[3] == -7);
    CHECK_EQ(qo_type_elem(m, g->vals[qo_node_input(g, c, 0)].type), QO_I8);
    float sc[2] = {0};
    CHECK_EQ(qo_pass_const_floats(g, qo_node_input(g, wd, 1), sc, 2), 2);
    CHECK(sc[0] == 0.25f && sc[1] == 1.0f);
    CHECK_EQ(qo_type_get(m, g->vals[qo_node_input(g, wd, 1)].type)->rank, 1);
    /* bias: 0.3 / 0.125 = 2.4 -> 2, -0.7 / 0.0625 = -11.2 -> -11, int32, zero point 0 */
    CHECK_EQ(qo_pass_const_ints(g, qo_node_input(g, bd, 0), bi, 2), 2);
    CHECK(bi[0] == 2 && bi[1] == -11);
    CHECK_EQ(qo_type_elem(m, g->vals[qo_node_input(g, bd, 0)].type), QO_I32);
    CHECK_EQ(qo_type_elem(m, g->vals[qo_node_input(g, bd, 2)].type), QO_I32);
    qo_module_free(m);
}

/* import-quant on the chain shapes Brevitas writes, and the ones it must leave alone. */
static const char *const CHAINS =
    "module {\n  opset \"\" = 13\n"
    "  graph @main(%x : tensor<1x2x2x2xf32>) {\n"
    "    const %s : tensor<f32> = [0.5]\n    const %z8 : tensor<i8> = [0]\n    const %zu : tensor<u8> = [0]\n"
    "    const %zu3 : tensor<u8> = [3]\n"
    "    const %lo : tensor<i8> = [-7]\n    const %hi : tensor<i8> = [7]\n"
    "    const %ulo : tensor<u8> = [0]\n    const %uhi : tensor<u8> = [15]\n    const %odd : tensor<u8> = [9]\n"
    "    const %w : tensor<2x2x1x1xi8> = [3, -7, 7, 1]\n    const %ws : tensor<2xf32> = [0.5, 0.25]\n"
    "    const %wz : tensor<2xi8> = [0, 0]\n"
    "    const %b : tensor<2xi32> = [100, -3]\n    const %bs : tensor<2xf32> = [0.01, 0.02]\n"
    "    const %bz : tensor<2xi32> = [0, 0]\n"
    "    %q = QuantizeLinear(%x, %s, %z8) : tensor<1x2x2x2xi8> loc(\"a/QuantizeLinear\")\n"
    "    %c = Clip(%q, %lo, %hi) : tensor<1x2x2x2xi8> loc(\"a/Clip\")\n"
    "    %a = DequantizeLinear(%c, %s, %z8) : tensor<1x2x2x2xf32> loc(\"a/DequantizeLinear\")\n"
    "    %wc = Clip(%w, %lo, %hi) : tensor<2x2x1x1xi8> loc(\"w/Clip\")\n"
    "    %wd = DequantizeLinear(%wc, %ws, %wz) {axis = 0} : tensor<2x2x1x1xf32> loc(\"w/DequantizeLinear\")\n"
    "    %bd = DequantizeLinear(%b, %bs, %bz) {axis = 0} : tensor<2xf32> loc(\"b/DequantizeLinear\")\n"
    "    %conv = Conv(%a, %wd, %bd) {kernel_shape = [1, 1]} : tensor<1x2x2x2xf32>\n"
    "    %r = Relu(%conv) : tensor<1x2x2x2xf32>\n"
    "    %q2 = QuantizeLinear(%r, %s, %zu) : tensor<1x2x2x2xu8> loc(\"r/QuantizeLinear\")\n"
    "    %c2 = Clip(%q2, %ulo, %uhi) : tensor<1x2x2x2xu8> loc(\"r/Clip\")\n"
    "    %r2 = DequantizeLinear(%c2, %s, %zu) : tensor<1x2x2x2xf32> loc(\"r/DequantizeLinear\")\n"
    "    %q3 = QuantizeLinear(%r2, %s, %zu3) : tensor<1x2x2x2xu8> loc(\"zp/QuantizeLinear\")\n"
    "    %r3 = DequantizeLinear(%q3, %s, %zu3) : tensor<1x2x2x2xf32> loc(\"zp/DequantizeLinear\")\n"
    "    %q4 = QuantizeLinear(%r3, %s, %zu) : tensor<1x2x2x2xu8> loc(\"odd/QuantizeLinear\")\n"
    "    %c4 = Clip(%q4, %ulo, %odd) : tensor<1x2x2x2xu8> loc(\"odd/Clip\")\n"
    "    %y = DequantizeLinear(%c4, %s, %zu) : tensor<1x2x2x2xf32> loc(\"odd/DequantizeLinear\")\n"
    "    return %y\n  }\n}\n";

static void expect_quant(const qo_graph *g, const char *name, int bits, int is_signed, int narrow, int axis) {
    qo_node n = 0;
    QO_FOR_EACH_NODE(g, k) if (strcmp(qo_node_name(g, k), name) == 0) n = k;
    CHECK(n && g->nodes[n].op == QO_OP_QONNX_QUANT);
    if (!n) {
        fprintf(stderr, "    no Quant node '%s'\n", name);
        return;
    }
    const qo_typedata *td = qo_type_get(g->m, g->vals[qo_node_output(g, n, 0)].type);
    CHECK(td && td->quant);
    if (!td || !td->quant) return;
    CHECK_EQ(td->quant->bits, bits);
    CHECK_EQ(td->quant->is_signed, is_signed);
    CHECK_EQ(td->quant->narrow, narrow);
    CHECK_EQ(td->quant->per_axis ? td->quant->axis : -1, axis);
}

static void test_import(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, CHAINS);
    CHECK(m != NULL);
    if (!m) return;
    qo_graph *g = qo_module_main(m);
    uint32_t k = 0;
    CHECK(qo_import_quant(&cx, g, &k) == QO_OK);
    CHECK(qo_verify(&cx, m) == QO_OK);
    CHECK_EQ(k, 4);
    expect_quant(g, "a/Quant", 4, 1, 1, -1);
    expect_quant(g, "w/Quant", 4, 1, 1, 0);
    expect_quant(g, "b/Quant", 32, 1, 0, 0);
    expect_quant(g, "r/Quant", 4, 0, 0, -1);
    /* left alone, with warnings naming them */
    CHECK_EQ(count_op(m, QO_OP_QUANTIZELINEAR), 2);
    bool wzp = false, wodd = false;
    for (int i = 0; i < d.n; i++) {
        if (d.kind[i] != QO_DIAG_WARNING) continue;
        wzp |= strcmp(d.node[i], "zp/QuantizeLinear") == 0 && strstr(d.text[i], "zero point 3") != NULL;
        wodd |= strcmp(d.node[i], "odd/Clip") == 0 && strstr(d.text[i], "[0, 9]") != NULL;
    }
    CHECK(wzp);
    CHECK(wodd);
    CHECK(qo_module_opset(m, QO_QONNX_DOMAIN) > 0);
    /* the per-channel weight Quant reads a float constant that reproduces the integers: w * s */
    qo_node wq = 0;
    QO_FOR_EACH_NODE(g, n) if (strcmp(qo_node_name(g, n), "w/Quant") == 0) wq = n;
    float wf[4] = {0};
    CHECK_EQ(qo_pass_const_floats(g, qo_node_input(g, wq, 0), wf, 4), 4);
    CHECK(wf[0] == 1.5f && wf[1] == -3.5f && wf[2] == 1.75f && wf[3] == 0.25f);
    /* and back: lowering reproduces the original integers; the chains left alone stay */
    CHECK(qo_lower_qcdq(&cx, m, NULL) == QO_OK);
    CHECK(qo_verify(&cx, m) == QO_OK);
    CHECK_EQ(count_op(m, QO_OP_QONNX_QUANT), 0);
    CHECK_EQ(count_op(m, QO_OP_QUANTIZELINEAR), 4);
    CHECK_EQ(count_op(m, QO_OP_DEQUANTIZELINEAR), 6);
    CHECK_EQ(qo_module_opset(m, QO_QONNX_DOMAIN), 0);
    qo_module_free(m);
}

/* QuantizeLinear on a float weight (Brevitas's export_weight_q_node=True form), a 1-element 1-D scale with
 * an axis attribute (per-tensor), an f16 scale (left alone: the Quant node would compute in f32). */
static const char *const WQ =
    "module {\n  opset \"\" = 13\n"
    "  graph @main(%x : tensor<1x2xf32>) {\n"
    "    const %wf : tensor<2x2xf32> = [0.26, -0.74, 1.0, 0.49]\n"
    "    const %s1 : tensor<1xf32> = [0.25]\n    const %z1 : tensor<1xi8> = [0]\n"
    "    const %h : tensor<f16> = hex\"0034\"\n    const %hz : tensor<i8> = [0]\n"
    "    const %wi : tensor<2x2xi8> = [1, 2, 3, 4]\n"
    "    %wq = QuantizeLinear(%wf, %s1, %z1) {axis = 0} : tensor<2x2xi8> loc(\"wq/QuantizeLinear\")\n"
    "    %wd = DequantizeLinear(%wq, %s1, %z1) {axis = 0} : tensor<2x2xf32> loc(\"wq/DequantizeLinear\")\n"
    "    %hd = DequantizeLinear(%wi, %h, %hz) : tensor<2x2xf16> loc(\"h/DequantizeLinear\")\n"
    "    %y = MatMul(%x, %wd) : tensor<1x2xf32>\n"
    "    return %y, %hd\n  }\n}\n";

static void test_import_weight_q(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_module *m = parse(&cx, WQ);
    CHECK(m != NULL);
    if (!m) return;
    qo_graph *g = qo_module_main(m);
    uint32_t k = 0;
    CHECK(qo_import_quant(&cx, g, &k) == QO_OK);
    CHECK(qo_verify(&cx, m) == QO_OK);
    CHECK_EQ(k, 1);
    expect_quant(g, "wq/Quant", 8, 1, 0, -1);
    CHECK_EQ(count_op(m, QO_OP_DEQUANTIZELINEAR), 1); /* the f16 one stays */
    CHECK(qo_lower_qcdq(&cx, m, NULL) == QO_OK);
    CHECK(qo_verify(&cx, m) == QO_OK);
    CHECK_EQ(count_op(m, QO_OP_QUANTIZELINEAR), 0); /* constant: stored as integers */
    CHECK_EQ(count_op(m, QO_OP_CLIP), 0);           /* 8-bit, not narrow */
    qo_node dq = 0;
    QO_FOR_EACH_NODE(g, n) if (g->nodes[n].op == QO_OP_DEQUANTIZELINEAR && strcmp(qo_node_name(g, n), "wq/DequantizeLinear") == 0) dq = n;
    CHECK(dq != 0);
    if (!dq) return;
    int64_t w[4] = {0};
    CHECK_EQ(qo_pass_const_ints(g, qo_node_input(g, dq, 0), w, 4), 4);
    CHECK(w[0] == 1 && w[1] == -3 && w[2] == 4 && w[3] == 2);
    qo_module_free(m);
}

int main(int argc, char **argv) {
    const char *qopt = argc > 1 && access(argv[1], X_OK) == 0 ? argv[1] : NULL;
    RUN(test_opset_option);
    RUN(test_opset_raise);
    RUN(test_pending);
    test_errors(qopt);
    RUN(test_act_lowering);
    RUN(test_const_lowering);
    RUN(test_import);
    RUN(test_import_weight_q);
    return qt_finish();
}
