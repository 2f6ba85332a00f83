/* tests/quant/test_brevitas_weights.c — qo_quant_weight against Brevitas's own digits PTQ exports.
 *
 * For every digits_ptq_{uniform,io8,fl8}_W{8,4,2}A*_qcdq.onnx in DIR (shared/peers/brevitas/digits):
 * the float weights of digits_float.onnx (Conv/Gemm input 1, in graph order) are quantized with
 * int8_weight_per_channel_float:bits=B,narrow=0 (the README's recipe: per-channel abs-max, float
 * scale, narrow range off) and compared with the QCDQ file's weights, matched by Conv/Gemm order:
 * Conv/Gemm input 1 <- DequantizeLinear(int codes [-> Clip], scale, zero point). Codes and zero
 * points must be equal and scales bitwise equal. Bit widths per layer are results.json's "bits"
 * (copied below; the Clip bounds of sub-8-bit layers are checked to agree). Bias scales (int32_bias:
 * input scale x weight scale) are checked bitwise too; bias codes cannot be, since Brevitas's bias
 * correction changed the float biases after calibration.
 * Usage: test_brevitas_weights DIR. Prints per-config results and "N passed, N failed". */
#include "frontend/onnx_load.h"
#include "passes/quant/quantizer.h"
#include "runtime/ref/util.h"
#include "tests/unit/test.h"

#include <unistd.h>

typedef struct cfg {
    const char *name;
    int bits[5]; /* conv1 conv2 conv3 fc1 fc2, from results.json ptq.<name>.bits */
} cfg;

static const cfg CFGS[] = {
    {"uniform_W8A8", {8, 8, 8, 8, 8}}, {"uniform_W4A4", {4, 4, 4, 4, 4}}, {"uniform_W2A2", {2, 2, 2, 2, 2}},
    {"io8_W8A8", {8, 8, 8, 8, 8}},     {"io8_W4A4", {4, 4, 4, 4, 4}},     {"io8_W2A2", {2, 2, 2, 2, 2}},
    {"fl8_W8A8", {8, 8, 8, 8, 8}},     {"fl8_W4A4", {8, 4, 4, 4, 8}},     {"fl8_W2A2", {8, 2, 2, 2, 8}},
};

/* Conv/Gemm nodes of the main graph in order. */
static int weight_nodes(const qo_graph *g, qo_node *out, int cap) {
    int n = 0;
    QO_FOR_EACH_NODE(g, nd) {
        const char *op = qo_node_op_type(g, nd);
        if ((!strcmp(op, "Conv") || !strcmp(op, "Gemm")) && n < cap) out[n++] = nd;
    }
    return n;
}

static qo_cref const_of(const qo_graph *g, qo_val v) { return v ? g->vals[v].cref : 0; }

static qo_node def_of(const qo_graph *g, qo_val v) { return v ? g->vals[v].def : 0; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/digits_float.onnx", argv[1]);
    if (access(path, R_OK) != 0) {
        printf("skipped: %s not found\n", path);
        return 77;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *fm = NULL;
    CHECK(qo_onnx_load(&cx, path, &fm) == QO_OK);
    if (!fm) return qt_finish();
    const qo_graph *fg = qo_module_main(fm);
    qo_node fn[8];
    int nf = weight_nodes(fg, fn, 8);
    CHECK_EQ(nf, 5);
    int cfg_ok = 0;
    for (size_t ci = 0; ci < sizeof CFGS / sizeof CFGS[0]; ci++) {
        const cfg *c = &CFGS[ci];
        qt_current = c->name;
        snprintf(path, sizeof path, "%s/digits_ptq_%s_qcdq.onnx", argv[1], c->name);
        qo_module *qm = NULL;
        CHECK(qo_onnx_load(&cx, path, &qm) == QO_OK);
        if (!qm) continue;
        const qo_graph *qg = qo_module_main(qm);
        qo_node qn[8];
        int nq = weight_nodes(qg, qn, 8);
        CHECK_EQ(nq, nf);
        long long codes = 0, code_bad = 0, scales = 0, scale_bad = 0, zp_bad = 0, bscales = 0, bscale_bad = 0;
        for (int l = 0; l < nf && l < nq; l++) {
            /* float weight */
            qo_tensor w;
            CHECK(qo_tensor_from_const(&cx, fm, const_of(fg, qo_node_input(fg, fn[l], 1)), &w) == QO_OK);
            /* Brevitas: DequantizeLinear(int [-> Clip], scale, zp) */
            qo_node dq = def_of(qg, qo_node_input(qg, qn[l], 1));
            CHECK(dq && !strcmp(qo_node_op_type(qg, dq), "DequantizeLinear"));
            if (!dq) continue;
            qo_val iv = qo_node_input(qg, dq, 0);
            qo_node clip = def_of(qg, iv);
            if (clip) {
                CHECK_STR(qo_node_op_type(qg, clip), "Clip");
                qo_tensor lo, hi;
                CHECK(qo_tensor_from_const(&cx, qm, const_of(qg, qo_node_input(qg, clip, 1)), &lo) == QO_OK);
                CHECK(qo_tensor_from_const(&cx, qm, const_of(qg, qo_node_input(qg, clip, 2)), &hi) == QO_OK);
                CHECK_EQ(qo_load_i64(lo.data, lo.elem, 0), -(1 << (c->bits[l] - 1)));
                CHECK_EQ(qo_load_i64(hi.data, hi.elem, 0), (1 << (c->bits[l] - 1)) - 1);
                qo_tensor_free(&lo);
                qo_tensor_free(&hi);
                iv = qo_node_input(qg, clip, 0);
            } else {
                CHECK_EQ(c->bits[l], 8); /* Brevitas emits Clip iff narrow or bits != 8 */
            }
            qo_tensor bq, bs, bz;
            CHECK(qo_tensor_from_const(&cx, qm, const_of(qg, iv), &bq) == QO_OK);
            CHECK(qo_tensor_from_const(&cx, qm, const_of(qg, qo_node_input(qg, dq, 1)), &bs) == QO_OK);
            CHECK(qo_tensor_from_const(&cx, qm, const_of(qg, qo_node_input(qg, dq, 2)), &bz) == QO_OK);
            CHECK_EQ(qo_attr_int(qg, dq, "axis", 1), 0);

            char spec[128];
            snprintf(spec, sizeof spec, "int8_weight_per_channel_float:bits=%d,narrow=0", c->bits[l]);
            qo_qspec s;
            CHECK(qo_qspec_parse(&cx, NULL, spec, &s) == QO_OK);
            qo_qtensor q;
            qo_loc loc = qo_node_loc(fg, fn[l]);
            CHECK(qo_quant_weight(&cx, &loc, &s, &w, &q) == QO_OK);
            int64_t n = qo_tensor_numel(&w);
            CHECK_EQ(qo_tensor_numel(&bq), n);
            CHECK_EQ(qo_tensor_numel(&bs), q.nscale);
            if (qo_tensor_numel(&bq) == n && q.q.data) {
                for (int64_t i = 0; i < n; i++) {
                    codes++;
                    if (qo_load_i64(q.q.data, q.q.elem, i) != qo_load_i64(bq.data, bq.elem, i)) {
                        if (code_bad < 5)
                            fprintf(stderr, "  %s layer %d elem %lld: code %lld, Brevitas %lld (w=%.9g)\n",
                                    c->name, l, (long long)i, (long long)qo_load_i64(q.q.data, q.q.elem, i),
                                    (long long)qo_load_i64(bq.data, bq.elem, i), (double)((float *)w.data)[i]);
                        code_bad++;
                    }
                }
            }
            if (qo_tensor_numel(&bs) == q.nscale && q.scales) {
                for (uint32_t k = 0; k < q.nscale; k++) {
                    scales++;
                    float b = ((const float *)bs.data)[k];
                    if (qo_f32_bits(b) != qo_f32_bits(q.scales[k])) {
                        if (scale_bad < 5)
                            fprintf(stderr, "  %s layer %d channel %u: scale %a, Brevitas %a\n", c->name, l, k,
                                    (double)q.scales[k], (double)b);
                        scale_bad++;
                    }
                    if (qo_load_i64(bz.data, bz.elem, k) != q.zps[k]) zp_bad++;
                }
            }
            /* bias: int32_bias scale = input scale (the DequantizeLinear feeding input 0, through a
             * MaxPool if any) x weight scale, float32 product, bitwise as Brevitas's bias DQ scale */
            qo_node in_dq = def_of(qg, qo_node_input(qg, qn[l], 0));
            if (in_dq && !strcmp(qo_node_op_type(qg, in_dq), "MaxPool")) in_dq = def_of(qg, qo_node_input(qg, in_dq, 0));
            qo_node b_dq = def_of(qg, qo_node_input(qg, qn[l], 2));
            CHECK(in_dq && !strcmp(qo_node_op_type(qg, in_dq), "DequantizeLinear"));
            CHECK(b_dq && !strcmp(qo_node_op_type(qg, b_dq), "DequantizeLinear"));
            if (in_dq && b_dq) {
                qo_tensor is, bsc, bb, fb;
                CHECK(qo_tensor_from_const(&cx, qm, const_of(qg, qo_node_input(qg, in_dq, 1)), &is) == QO_OK);
                CHECK(qo_tensor_from_const(&cx, qm, const_of(qg, qo_node_input(qg, b_dq, 1)), &bsc) == QO_OK);
                CHECK(qo_tensor_from_const(&cx, qm, const_of(qg, qo_node_input(qg, b_dq, 0)), &bb) == QO_OK);
                CHECK(qo_tensor_from_const(&cx, fm, const_of(fg, qo_node_input(fg, fn[l], 2)), &fb) == QO_OK);
                qo_qspec bs32;
                CHECK(qo_qspec_parse(&cx, NULL, "int32_bias", &bs32) == QO_OK);
                qo_qtensor qb;
                CHECK(qo_quant_bias(&cx, &loc, &bs32, &fb, ((const float *)is.data)[0], q.scales, q.nscale, &qb) ==
                      QO_OK);
                CHECK_EQ(bb.elem, QO_I32);
                CHECK_EQ(qo_tensor_numel(&bsc), qb.nscale);
                for (uint32_t k = 0; k < qb.nscale && k < qo_tensor_numel(&bsc); k++) {
                    bscales++;
                    if (qo_f32_bits(qb.scales[k]) != qo_f32_bits(((const float *)bsc.data)[k])) bscale_bad++;
                }
                qo_qtensor_free(&qb);
                qo_tensor_free(&is);
                qo_tensor_free(&bsc);
                qo_tensor_free(&bb);
                qo_tensor_free(&fb);
            }
            qo_qtensor_free(&q);
            qo_tensor_free(&w);
            qo_tensor_free(&bq);
            qo_tensor_free(&bs);
            qo_tensor_free(&bz);
        }
        CHECK_EQ(code_bad, 0);
        CHECK_EQ(scale_bad, 0);
        CHECK_EQ(zp_bad, 0);
        CHECK_EQ(bscale_bad, 0);
        printf("%-13s codes %lld/%lld exact, scales %lld/%lld bitwise equal, zero points %s, bias scales %lld/%lld\n",
               c->name, codes - code_bad, codes, scales - scale_bad, scales, zp_bad ? "DIFFER" : "all 0 as Brevitas",
               bscales - bscale_bad, bscales);
        if (!code_bad && !scale_bad && !zp_bad && !bscale_bad && codes) cfg_ok++;
        qo_module_free(qm);
    }
    printf("%d of %zu Brevitas digits PTQ configurations reproduced exactly\n", cfg_ok,
           sizeof CFGS / sizeof CFGS[0]);
    qo_module_free(fm);
    return qt_finish();
}
