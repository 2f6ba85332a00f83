/* tests/qinsert/test_qconfig.c — the quant config C API (passes/quant/config.h): defaults, single-key
 * overrides, the JSON loader (rules appended, the config unchanged on error, messages naming file,
 * line and key), and qo_insert_quant's count and rule handling on small parsed graphs.
 * Usage: test_qconfig SRC_DIR (for tests/qinsert/configs). Prints "N passed, N failed". */
#include "passes/quant/config.h"
#include "passes/quant/qgraph.h"
#include "tests/unit/test.h"

#include <stdio.h>

static const char *src_dir;

static void cfg_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/tests/qinsert/configs/%s", src_dir, name);
}

static void test_defaults(void) {
    qt_current = "defaults";
    qo_qconfig c;
    qo_qconfig_default(&c);
    CHECK_STR(c.weights.name, "int8_weight_per_channel_float");
    CHECK(c.weights.per_channel && c.weights.bits == 8 && c.weights.narrow);
    CHECK_STR(c.acts.name, "int8_act_per_tensor_float");
    CHECK(c.acts.is_signed && c.acts.bits == 8 && !c.acts.per_channel);
    CHECK_STR(c.bias.name, "int32_bias");
    CHECK_EQ(c.bias.bits, 32);
    CHECK(c.input_quant && c.output_quant && c.layer_input_quant && c.relu_quant && c.align_residual &&
          c.add_output_quant);
    CHECK(!c.keep_first_last_8bit);
    CHECK_EQ(c.io_bits, 0);
    CHECK_EQ(c.carry, QO_QCARRY_BREVITAS);
    CHECK_EQ(c.act_ops, QO_QACTOPS_BREVITAS);
    CHECK_EQ(c.nrules, 0);
    qo_qconfig_free(&c);
}

static void test_set(void) {
    qt_current = "set";
    qt_diags d;
    qo_ctx cx;
    qt_ctx(&cx, &d);
    qo_qconfig c;
    qo_qconfig_default(&c);
    CHECK(qo_qconfig_set(&cx, &c, "weights", "int8_weight_per_channel_float:bits=4") == QO_OK);
    CHECK_EQ(c.weights.bits, 4);
    CHECK(!c.weights_axis);
    CHECK(qo_qconfig_set(&cx, &c, "weights", "int8_weight_per_channel_float:axis=1,bits=3") == QO_OK);
    CHECK(c.weights_axis);
    CHECK_EQ(c.weights.axis, 1);
    CHECK(qo_qconfig_set(&cx, &c, "acts", "int8_act_per_tensor_float_mse:bits=6") == QO_OK);
    CHECK_EQ(c.acts.bits, 6);
    CHECK_EQ(c.acts.stat, QO_QSTAT_MSE);
    CHECK(qo_qconfig_set(&cx, &c, "bias", "int16_bias") == QO_OK);
    CHECK_EQ(c.bias.bits, 16);
    CHECK(qo_qconfig_set(&cx, &c, "io_bits", "8") == QO_OK);
    CHECK_EQ(c.io_bits, 8);
    CHECK(qo_qconfig_set(&cx, &c, "keep_first_last_8bit", "true") == QO_OK);
    CHECK(c.keep_first_last_8bit);
    CHECK(qo_qconfig_set(&cx, &c, "carry", "all") == QO_OK);
    CHECK_EQ(c.carry, QO_QCARRY_ALL);
    CHECK(qo_qconfig_set(&cx, &c, "act_ops", "relu") == QO_OK);
    CHECK_EQ(c.act_ops, QO_QACTOPS_RELU);
    CHECK(qo_qconfig_set(&cx, &c, "act_ops", "tanh") == QO_ERR_USAGE);
    /* bad input: error, field unchanged */
    CHECK(qo_qconfig_set(&cx, &c, "weights", "int8_weight_per_channel_float:bits=40") == QO_ERR_USAGE);
    CHECK_EQ(c.weights.bits, 3);
    CHECK(qt_has(&d, NULL, "bits=40 out of range"));
    CHECK(qo_qconfig_set(&cx, &c, "weights", "int32_bias") == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "is a bias quantizer, not a weight one"));
    CHECK(qo_qconfig_set(&cx, &c, "acts", "nope") == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "unknown quantizer preset 'nope'"));
    CHECK(qo_qconfig_set(&cx, &c, "io_bits", "17") == QO_ERR_USAGE);
    CHECK_EQ(c.io_bits, 8);
    CHECK(qo_qconfig_set(&cx, &c, "relu_quant", "maybe") == QO_ERR_USAGE);
    CHECK(qo_qconfig_set(&cx, &c, "carry", "some") == QO_ERR_USAGE);
    CHECK(qo_qconfig_set(&cx, &c, "wieghts", "x") == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "unknown key 'wieghts'"));
    qo_qconfig_free(&c);
}

static void test_load(void) {
    qt_current = "load";
    qt_diags d;
    qo_ctx cx;
    qt_ctx(&cx, &d);
    char p[4096];
    qo_qconfig c;
    qo_qconfig_default(&c);
    cfg_path(p, sizeof p, "rules.json");
    CHECK(qo_qconfig_load(&cx, p, &c) == QO_OK);
    CHECK_EQ(c.nrules, 4);
    if (c.nrules == 4) {
        CHECK_STR(c.rules[0].op, "Conv");
        CHECK(c.rules[0].has_weights && c.rules[0].weights.bits == 4 && !c.rules[0].weights.per_channel);
        CHECK_STR(c.rules[1].name, "head*");
        CHECK(c.rules[1].exclude);
        CHECK_EQ(c.rules[2].bits, 3);
        CHECK(c.rules[3].has_acts && c.rules[3].acts.bits == 6);
        CHECK_EQ(c.rules[0].line, 3);
    }
    CHECK(c.source && strstr(c.source, "rules.json"));
    /* a second file appends its rules and overrides fields */
    cfg_path(p, sizeof p, "brevitas_fl8_W4A4.json");
    CHECK(qo_qconfig_load(&cx, p, &c) == QO_OK);
    CHECK_EQ(c.nrules, 4);
    CHECK_EQ(c.io_bits, 8);
    CHECK(c.keep_first_last_8bit);
    CHECK_EQ(c.weights.bits, 4);
    CHECK(!c.weights.narrow);
    cfg_path(p, sizeof p, "rules.json");
    CHECK(qo_qconfig_load(&cx, p, &c) == QO_OK);
    CHECK_EQ(c.nrules, 8);
    /* errors leave c unchanged */
    const char *bad[] = {"bad_key.json", "bad_preset.json", "bad_rule_key.json", "malformed.json",
                         "wrong_role.json", "bad_type.json", "bad_bits.json", "missing.json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg_path(p, sizeof p, bad[i]);
        unsigned before = cx.nerrors;
        CHECK(qo_qconfig_load(&cx, p, &c) != QO_OK);
        CHECK(cx.nerrors > before);
        CHECK_EQ(c.nrules, 8);
        CHECK_EQ(c.weights.bits, 4);
        CHECK_EQ(c.acts.bits, 4);
    }
    qo_qconfig_free(&c);
}

static qo_module *parse(qo_ctx *cx, const char *text) {
    qo_module *m = NULL;
    CHECK(qo_parse_module(cx, "t.qir", text, strlen(text), &m) == QO_OK);
    return m;
}

static int count_quant(const qo_graph *g) {
    int n = 0;
    QO_FOR_EACH_NODE(g, x) n += qo_qnode_is_quant(g, x);
    return n;
}

static void test_insert(void) {
    qt_current = "insert";
    qt_diags d;
    qo_ctx cx;
    qt_ctx(&cx, &d);
    static const char *text =
        "module {\n opset \"\" = 13\n graph @main(%x : tensor<1x2xf32>) {\n"
        "  const %w : tensor<2x2xf32> = [1.0, 2.0, 3.0, 4.0]\n"
        "  const %b : tensor<2xf32> = [1.0, 2.0]\n"
        "  %g = Gemm(%x, %w, %b) {transB = 1} : tensor<1x2xf32> loc(\"fc\")\n"
        "  %r = Relu(%g) : tensor<1x2xf32> loc(\"act\")\n"
        "  %h = Gemm(%r, %w) {transB = 1} : tensor<1x2xf32> loc(\"head\")\n"
        "  return %h\n }\n}\n";
    qo_module *m = parse(&cx, text);
    if (!m) return;
    qo_qconfig c;
    qo_qconfig_default(&c);
    uint32_t n = 99;
    CHECK(qo_insert_quant(&cx, qo_module_main(m), &c, &n) == QO_OK);
    /* x, w (fc), b, relu, w (head), head output */
    CHECK_EQ(n, 6);
    CHECK_EQ(count_quant(qo_module_main(m)), 6);
    CHECK(qo_verify(&cx, m) == QO_OK);
    /* pending quantizers: activation and bias ones; resolved: weights */
    int pending = 0, resolved = 0;
    const qo_graph *g = qo_module_main(m);
    QO_FOR_EACH_NODE(g, x) {
        if (!qo_qnode_is_quant(g, x)) continue;
        if (qo_qnode_is_pending(g, x)) pending++;
        else resolved++;
    }
    CHECK_EQ(pending, 4);
    CHECK_EQ(resolved, 2);
    /* a second run finds everything quantized */
    CHECK(qo_insert_quant(&cx, qo_module_main(m), &c, &n) == QO_OK);
    CHECK_EQ(n, 0);
    CHECK_EQ(count_quant(qo_module_main(m)), 6);
    qo_module_free(m);
    /* exclude the head through a rule added by hand, and the input quantizer off */
    m = parse(&cx, text);
    if (!m) return;
    qo_qrule r;
    memset(&r, 0, sizeof r);
    r.name = qo_strdup("he?d");
    r.exclude = true;
    c.rules = qo_malloc(sizeof r);
    c.rules[0] = r;
    c.nrules = 1;
    c.input_quant = false;
    CHECK(qo_insert_quant(&cx, qo_module_main(m), &c, &n) == QO_OK);
    /* fc: w, b, its input (x: a layer-input quantizer now); relu; head excluded: nothing */
    CHECK_EQ(n, 4);
    CHECK(qo_verify(&cx, m) == QO_OK);
    qo_module_free(m);
    qo_qconfig_free(&c);
    /* a bad spec in the config struct is caught before the graph changes */
    m = parse(&cx, text);
    if (!m) return;
    qo_qconfig_default(&c);
    c.acts.bits = 40;
    CHECK(qo_insert_quant(&cx, qo_module_main(m), &c, &n) == QO_ERR_USAGE);
    CHECK_EQ(n, 0);
    CHECK_EQ(count_quant(qo_module_main(m)), 0);
    qo_qconfig_free(&c);
    qo_module_free(m);
}

int main(int argc, char **argv) {
    src_dir = argc > 1 ? argv[1] : ".";
    test_defaults();
    test_set();
    test_load();
    test_insert();
    return qt_finish();
}
