/* tests/unit/test_attrs.c — the generated attribute/signature table (ir/attrs.def) and its lookups.
 * Expected values are ONNX schema facts (onnx/defs, docs/Changelog.md), not output of the code. */
#include "test.h"

#include "ir/attrs.h"

static void test_table_order(void) {
    /* lookups rely on rows grouped by op in enum order, attributes sorted by name within an op */
    int prev_op = -1;
    for (int op = 1; op < QO_OP_COUNT; op++) {
        uint32_t n;
        const qo_op_sig *s = qo_op_sigs_all((qo_op)op, &n);
        CHECK(s != NULL && n >= 1); /* every op in ops.def has a signature */
        for (uint32_t i = 1; s && i < n; i++) CHECK(s[i - 1].since < s[i].since);
        const qo_attr_spec *a = qo_attr_specs_all((qo_op)op, &n);
        for (uint32_t i = 1; a && i < n; i++) {
            int c = strcmp(a[i - 1].name, a[i].name);
            CHECK(c < 0 || (c == 0 && a[i - 1].last && a[i - 1].last < a[i].first));
        }
        prev_op = op;
    }
    CHECK_EQ(prev_op, QO_OP_COUNT - 1);
    uint32_t n;
    CHECK(qo_op_sigs_all(QO_OP_UNKNOWN, &n) == NULL && n == 0);
    CHECK(qo_attr_specs_all(QO_OP_UNKNOWN, &n) == NULL && n == 0);
}

static void test_find(void) {
    const qo_attr_spec *s = qo_attr_spec_find(QO_OP_CONV, "kernel_shape", 13);
    CHECK(s && s->kind == QO_ATTR_INTS && !s->required);
    s = qo_attr_spec_find(QO_OP_CONV, "auto_pad", 11);
    CHECK(s && s->kind == QO_ATTR_STRING && s->dflt && strcmp(s->dflt, "NOTSET") == 0);
    CHECK(qo_attr_spec_find(QO_OP_CONV, "nonexistent", 13) == NULL);
    /* Cast 'to' was a string before opset 6, an int since */
    s = qo_attr_spec_find(QO_OP_CAST, "to", 5);
    CHECK(s && s->kind == QO_ATTR_STRING && s->required);
    s = qo_attr_spec_find(QO_OP_CAST, "to", 13);
    CHECK(s && s->kind == QO_ATTR_INT && s->required);
    CHECK(qo_attr_spec_find(QO_OP_CAST, "saturate", 18) == NULL);
    CHECK(qo_attr_spec_find(QO_OP_CAST, "saturate", 19) != NULL);
    /* Clip min/max attributes exist in opsets 6..10 only */
    CHECK(qo_attr_spec_find(QO_OP_CLIP, "min", 6) != NULL);
    CHECK(qo_attr_spec_find(QO_OP_CLIP, "min", 10) != NULL);
    CHECK(qo_attr_spec_find(QO_OP_CLIP, "min", 11) == NULL);
    /* Reduce axes: attribute up to 17 (ReduceMean), input from 18; ReduceSum moved at 13 */
    CHECK(qo_attr_spec_find(QO_OP_REDUCEMEAN, "axes", 17) != NULL);
    CHECK(qo_attr_spec_find(QO_OP_REDUCEMEAN, "axes", 18) == NULL);
    CHECK(qo_attr_spec_find(QO_OP_REDUCEMEAN, "noop_with_empty_axes", 18) != NULL);
    CHECK(qo_attr_spec_find(QO_OP_REDUCESUM, "axes", 12) != NULL);
    CHECK(qo_attr_spec_find(QO_OP_REDUCESUM, "axes", 13) == NULL);
    /* Split: 'split' attribute until 12, num_outputs from 18 */
    CHECK(qo_attr_spec_find(QO_OP_SPLIT, "split", 11) != NULL);
    CHECK(qo_attr_spec_find(QO_OP_SPLIT, "split", 13) == NULL);
    CHECK(qo_attr_spec_find(QO_OP_SPLIT, "num_outputs", 17) == NULL);
    CHECK(qo_attr_spec_find(QO_OP_SPLIT, "num_outputs", 18) != NULL);
    /* If: both branches required graphs */
    s = qo_attr_spec_find(QO_OP_IF, "then_branch", 13);
    CHECK(s && s->kind == QO_ATTR_GRAPH && s->required);
    /* QuantizeLinear: axis from 13, block_size/output_dtype from 21 */
    CHECK(qo_attr_spec_find(QO_OP_QUANTIZELINEAR, "axis", 10) == NULL);
    CHECK(qo_attr_spec_find(QO_OP_QUANTIZELINEAR, "axis", 13) != NULL);
    CHECK(qo_attr_spec_find(QO_OP_QUANTIZELINEAR, "block_size", 21) != NULL);
    /* Gelu exists from 20 */
    s = qo_attr_spec_find(QO_OP_GELU, "approximate", 20);
    CHECK(s && s->kind == QO_ATTR_STRING && s->dflt && strcmp(s->dflt, "none") == 0);
    /* Resize-18 attributes */
    CHECK(qo_attr_spec_find(QO_OP_RESIZE, "antialias", 18) != NULL);
    CHECK(qo_attr_spec_find(QO_OP_RESIZE, "antialias", 13) == NULL);
    /* opset <= 0 = newest */
    CHECK(qo_attr_spec_find(QO_OP_QUANTIZELINEAR, "output_dtype", 0) != NULL);
    /* QONNX ops (REFERENCE.md 3.1) */
    s = qo_attr_spec_find(QO_OP_QONNX_QUANT, "narrow", 1);
    CHECK(s && s->kind == QO_ATTR_INT && s->required && strcmp(s->dflt, "1") == 0);
    s = qo_attr_spec_find(QO_OP_QONNX_QUANT, "signed", 2);
    CHECK(s && s->kind == QO_ATTR_INT && s->required);
    s = qo_attr_spec_find(QO_OP_QONNX_QUANT, "rounding_mode", 1);
    CHECK(s && s->kind == QO_ATTR_STRING && !s->required && strcmp(s->dflt, "ROUND") == 0);
    s = qo_attr_spec_find(QO_OP_QONNX_TRUNC, "rounding_mode", 1);
    CHECK(s && s->required && strcmp(s->dflt, "FLOOR") == 0);
    s = qo_attr_spec_find(QO_OP_QONNX_TRUNC, "narrow", 1);
    CHECK(s && !s->required && strcmp(s->dflt, "0") == 0);
    uint32_t n;
    CHECK(qo_attr_specs_all(QO_OP_QONNX_BIPOLARQUANT, &n) == NULL && n == 0);
}

static void test_iterate(void) {
    /* Gemm at opset 13: alpha, beta, transA, transB (name order), none required */
    const char *want[] = {"alpha", "beta", "transA", "transB"};
    int k = 0;
    for (const qo_attr_spec *s = NULL; (s = qo_attr_spec_next(QO_OP_GEMM, 13, s));) {
        CHECK(k < 4 && strcmp(s->name, want[k]) == 0);
        CHECK(!s->required);
        k++;
    }
    CHECK_EQ(k, 4);
    /* Gemm at opset 6 also had 'broadcast' */
    k = 0;
    for (const qo_attr_spec *s = NULL; (s = qo_attr_spec_next(QO_OP_GEMM, 6, s));) k++;
    CHECK_EQ(k, 5);
    /* Relu: nothing at opset 14, consumed_inputs at opset 1 */
    CHECK(qo_attr_spec_next(QO_OP_RELU, 14, NULL) == NULL);
    const qo_attr_spec *s = qo_attr_spec_next(QO_OP_RELU, 1, NULL);
    CHECK(s && strcmp(s->name, "consumed_inputs") == 0);
}

static void test_sigs(void) {
    const qo_op_sig *s = qo_op_sig_at(QO_OP_CONV, 13);
    CHECK(s && s->since == 11 && s->imin == 2 && s->imax == 3 && strcmp(s->ins, "SSO") == 0);
    CHECK(qo_op_sig_at(QO_OP_GELU, 19) == NULL);
    s = qo_op_sig_at(QO_OP_GELU, 20);
    CHECK(s && s->since == 20);
    s = qo_op_sig_at(QO_OP_UPSAMPLE, 9);
    CHECK(s && !s->deprecated && s->imin == 2);
    s = qo_op_sig_at(QO_OP_UPSAMPLE, 10);
    CHECK(s && s->deprecated);
    s = qo_op_sig_at(QO_OP_LOOP, 13);
    CHECK(s && strcmp(s->ins, "OOV") == 0 && s->imin == 2 && s->imax == -1);
    s = qo_op_sig_at(QO_OP_CLIP, 11);
    CHECK(s && s->since == 11 && s->imax == 3);
    s = qo_op_sig_at(QO_OP_CLIP, 7);
    CHECK(s && s->since == 6 && s->imax == 1);
    s = qo_op_sig_at(QO_OP_DROPOUT, 13);
    CHECK(s && s->omax == 2 && strcmp(s->outs, "SO") == 0);
    s = qo_op_sig_at(QO_OP_QONNX_TRUNC, 2);
    CHECK(s && s->imin == 5 && s->imax == 6);
    s = qo_op_sig_at(QO_OP_RESHAPE, 30); /* beyond the table: newest row */
    CHECK(s && s->since == 21);
}

int main(void) {
    RUN(test_table_order);
    RUN(test_find);
    RUN(test_iterate);
    RUN(test_sigs);
    return qt_finish();
}
