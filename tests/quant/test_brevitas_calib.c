/* tests/quant/test_brevitas_calib.c — the calibration accumulator against Brevitas's activation
 * scales in its digits PTQ exports.
 *
 * Brevitas's recipe (shared/peers/README.md): calibration_mode over the training split, batch 64 in
 * order; quantization is off while calibrating, so every quantizer sees float activations; each
 * batch gives the 99.999th percentile of |x| and the batches are averaged (qo_qacc, calib=average).
 * Here the float model digits_float.onnx runs in qopt's reference interpreter with the seven
 * quantized points added as outputs (model input, relu1..3, flatten, relu4, logits: the order of the
 * QuantizeLinear nodes in the QCDQ files); signed int quantizers on input/flatten/logits, unsigned
 * after ReLU; bits per config from results.json. The scale of each QuantizeLinear is the oracle.
 * Bitwise equality is expected where our activations equal PyTorch's bit for bit; the interpreter's
 * Conv/Gemm sum in another order than PyTorch, so a percentile can move by an ulp or so: such
 * scales are reported and accepted within 4 ulp (the input quantizer, fed the data itself, must be
 * exact). Usage: test_brevitas_calib DIR. */
#include "frontend/onnx_load.h"
#include "passes/quant/quantizer.h"
#include "runtime/npy.h"
#include "runtime/ref/util.h"
#include "tests/unit/test.h"

#include <unistd.h>

#define NQ 7
static const char *const POINTS[NQ] = {"input", "/relu1/Relu_output_0", "/relu2/Relu_output_0",
                                       "/relu3/Relu_output_0", "/flatten/Flatten_output_0",
                                       "/relu4/Relu_output_0", NULL /* graph output 0: logits */};
static const bool SIGNED[NQ] = {true, false, false, false, true, false, true};

typedef struct cfg {
    const char *name;
    int act_bits, io_bits; /* relu quantizers; input/flatten/logits quantizers */
} cfg;
static const cfg CFGS[] = {
    {"uniform_W8A8", 8, 8}, {"uniform_W4A4", 4, 4}, {"uniform_W2A2", 2, 2}, {"io8_W8A8", 8, 8}, {"io8_W4A4", 4, 8},
    {"io8_W2A2", 2, 8},     {"fl8_W8A8", 8, 8},     {"fl8_W4A4", 4, 8},     {"fl8_W2A2", 2, 8},
};

static int64_t ulps(float a, float b) {
    int32_t x = (int32_t)qo_f32_bits(a), y = (int32_t)qo_f32_bits(b);
    return x > y ? (int64_t)x - y : (int64_t)y - x;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    char path[4096];
    snprintf(path, sizeof path, "%s/digits_float.onnx", argv[1]);
    if (access(path, R_OK) != 0) {
        printf("skipped: %s not found\n", path);
        return 77;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = NULL;
    CHECK(qo_onnx_load(&cx, path, &m) == QO_OK);
    qo_tensor x;
    snprintf(path, sizeof path, "%s/digits_train_x.npy", argv[1]);
    CHECK(qo_npy_read(&cx, path, &x) == QO_OK);
    if (!m || !x.data) return qt_finish();
    qo_graph *g = qo_module_main(m);
    uint32_t out_of[NQ];
    for (int i = 0; i < NQ; i++) {
        if (!POINTS[i]) {
            out_of[i] = 0;
            continue;
        }
        qo_val v = qo_graph_find(g, POINTS[i]);
        CHECK(v != 0);
        out_of[i] = g->noutputs;
        qo_graph_add_output(g, v);
    }
    uint32_t nout = g->noutputs;

    /* one accumulator per (quantization point, bit width in use) */
    const int BW[3] = {8, 4, 2};
    qo_qacc acc[NQ][3];
    for (int i = 0; i < NQ; i++)
        for (int b = 0; b < 3; b++) {
            char spec[96];
            snprintf(spec, sizeof spec, "%s:bits=%d", SIGNED[i] ? "int8_act_per_tensor_float" : "uint8_act_per_tensor_float",
                     BW[b]);
            qo_qspec s;
            CHECK(qo_qspec_parse(&cx, NULL, spec, &s) == QO_OK);
            CHECK(qo_qacc_init(&cx, &acc[i][b], &s) == QO_OK);
        }
    int64_t N = x.dims[0], per = qo_tensor_numel(&x) / N;
    for (int64_t at = 0; at < N; at += 64) {
        int64_t nb = N - at < 64 ? N - at : 64;
        qo_tensor in = x;
        in.dims[0] = nb;
        in.data = (float *)x.data + at * per;
        in.nbytes = (size_t)(nb * per) * sizeof(float);
        in.owned = 0;
        const qo_tensor *ins[1] = {&in};
        qo_tensor outs[16];
        memset(outs, 0, sizeof outs);
        qo_status st = qo_interp_run(&cx, m, ins, 1, outs, nout);
        CHECK(st == QO_OK);
        if (st != QO_OK) break;
        for (int i = 0; i < NQ; i++) {
            const qo_tensor *t = i == 0 ? &in : &outs[out_of[i]];
            for (int b = 0; b < 3; b++) CHECK(qo_qacc_add(&cx, &acc[i][b], t->data, qo_tensor_numel(t)) == QO_OK);
        }
        for (uint32_t o = 0; o < nout; o++) qo_tensor_free(&outs[o]);
    }

    int exact = 0, close = 0, total = 0;
    for (size_t ci = 0; ci < sizeof CFGS / sizeof CFGS[0]; ci++) {
        const cfg *c = &CFGS[ci];
        qt_current = c->name;
        snprintf(path, sizeof path, "%s/digits_ptq_%s_qcdq.onnx", argv[1], c->name);
        qo_module *qm = NULL;
        CHECK(qo_onnx_load(&cx, path, &qm) == QO_OK);
        if (!qm) continue;
        const qo_graph *qg = qo_module_main(qm);
        int k = 0;
        int64_t worst = 0;
        QO_FOR_EACH_NODE(qg, n) {
            if (strcmp(qo_node_op_type(qg, n), "QuantizeLinear") != 0) continue;
            if (k >= NQ) {
                k++;
                continue;
            }
            qo_tensor bs;
            CHECK(qo_tensor_from_const(&cx, qm, qg->vals[qo_node_input(qg, n, 1)].cref, &bs) == QO_OK);
            float brev = ((const float *)bs.data)[0];
            int bits = SIGNED[k] ? c->io_bits : c->act_bits;
            int b = bits == 8 ? 0 : bits == 4 ? 1 : 2;
            float sc;
            int32_t zp;
            CHECK(qo_qacc_result(&cx, &acc[k][b], &sc, &zp) == QO_OK);
            int64_t u = ulps(sc, brev);
            if (u > worst) worst = u;
            total++;
            if (u == 0) exact++;
            else if (u <= 4) {
                close++;
                fprintf(stderr, "  %s quantizer %d (%s): %lld ulp\n", c->name, k, POINTS[k] ? POINTS[k] : "logits", (long long)u);
            }
            else fprintf(stderr, "  %s quantizer %d: scale %a, Brevitas %a (%lld ulp)\n", c->name, k, (double)sc,
                         (double)brev, (long long)u);
            if (k == 0) CHECK_EQ(u, 0);
            CHECK(u <= 4);
            CHECK_EQ(zp, 0);
            qo_tensor_free(&bs);
            k++;
        }
        CHECK_EQ(k, NQ);
        printf("%-13s %d activation scales, worst %lld ulp from Brevitas\n", c->name, k, (long long)worst);
        qo_module_free(qm);
    }
    printf("activation scales: %d of %d bitwise equal to Brevitas, %d within 4 ulp\n", exact, total, close);
    qo_tensor_free(&x);
    qo_module_free(m);
    return qt_finish();
}
