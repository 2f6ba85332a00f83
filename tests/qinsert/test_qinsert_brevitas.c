/* tests/qinsert/test_qinsert_brevitas.c — insert-quant against Brevitas's own digits PTQ exports.
 *
 * For each configuration C of {uniform, io8, fl8} x {W8A8, W4A4, W2A2}: digits_float.onnx goes
 * through canonicalize,shape-infer,const-fold,fold-bn and qo_insert_quant with the config that
 * expresses C (weights int8_weight_per_channel_float:bits=B,narrow=0, acts
 * int8_act_per_tensor_float:bits=A, bias int32_bias; io8 adds io_bits=8; fl8 io_bits=8 and
 * keep_first_last_8bit; fl8_W4A4 is also run from the JSON file of docs/QUANT_CONFIG.md,
 * tests/qinsert/configs/brevitas_fl8_W4A4.json). Brevitas's QONNX export digits_ptq_C_qonnx.onnx
 * (Xilinx/brevitas v0.12 graph-mode quantize() + export_qonnx) is the oracle:
 *  - the set of quantized points is equal: each Quant node is keyed by what it quantizes (the
 *    weight / bias of the k-th Conv or Gemm, or the result of the k-th node of an op type, or a
 *    graph input), and for each key signedness, bit width, narrow range and per-channel-ness agree
 *    (ours from the Quant node's inputs/attributes via qo_qnode_read plus its qopt_spec for pending
 *    per-channel bias quantizers; Brevitas's via qo_qnode_read);
 *  - weight scales are bitwise equal, and our integer weights (qo_qspec_to_int of the float weight
 *    with our scale) equal Brevitas's (its exported fake-quantized weight divided by its scale,
 *    integral to 1e-3 since the export holds int * scale rounded to float32).
 * Usage: test_qinsert_brevitas DATA_DIR SRC_DIR. DATA_DIR holds the float model and the nine
 * exports (tests/data/brevitas/digits, copied from shared/peers/brevitas/digits). */
#include "frontend/onnx_load.h"
#include "passes/pass.h"
#include "passes/pass_impl.h"
#include "passes/quant/config.h"
#include "passes/quant/qgraph.h"
#include "tests/unit/test.h"

#include <math.h>
#include <unistd.h>

typedef struct qpoint {
    char key[96];
    int bits, is_signed, narrow, per_channel;
    qo_node node;
} qpoint;

/* Ordinal of node n among the non-Quant nodes of its op type, in program order. */
static int ordinal(const qo_graph *g, qo_node n) {
    int k = 0;
    QO_FOR_EACH_NODE(g, m) {
        if (m == n) return k;
        if (!qo_qnode_is_quant(g, m) && !strcmp(qo_node_op_type(g, m), qo_node_op_type(g, n))) k++;
    }
    return -1;
}

/* The key of Quant node n: "W:<op>#k" / "B:<op>#k" for the weight/bias of a layer, "A:<op>#k" for the
 * result of the k-th <op> node, "A:input" for a graph input. */
static void key_of(const qo_graph *g, qo_node n, char *key, size_t cap) {
    qo_val x = qo_node_input(g, n, 0), y = qo_node_output(g, n, 0);
    qo_node d = g->vals[x].def;
    if (!d && (g->vals[x].flags & QO_VAL_INPUT) && !g->vals[x].cref) {
        snprintf(key, cap, "A:input");
        return;
    }
    if (d && g->nodes[d].op != QO_OP_CONSTANT) {
        snprintf(key, cap, "A:%s#%d", qo_node_op_type(g, d), ordinal(g, d));
        return;
    }
    /* a constant (initializer, Constant node, or a Brevitas bias input): find the layer reading y */
    QO_FOR_EACH_USE(g, y, u) {
        qo_node o = g->uses[u].owner;
        if (!o) continue;
        for (uint32_t i = 1; i < g->nodes[o].nin; i++)
            if (qo_node_input(g, o, i) == y) {
                snprintf(key, cap, "%s:%s#%d", i == 1 ? "W" : "B", qo_node_op_type(g, o), ordinal(g, o));
                return;
            }
    }
    snprintf(key, cap, "?");
}

static int collect(qo_ctx *cx, const qo_graph *g, qpoint *out, int cap, bool ours) {
    int n = 0;
    QO_FOR_EACH_NODE(g, q) {
        if (!qo_qnode_is_quant(g, q) || n >= cap) continue;
        qpoint *p = &out[n++];
        memset(p, 0, sizeof *p);
        p->node = q;
        key_of(g, q, p->key, sizeof p->key);
        qo_qparams pr;
        if (qo_qnode_read(cx, g, q, &pr) != QO_OK) {
            p->bits = -1;
            continue;
        }
        p->bits = pr.bits;
        p->is_signed = pr.is_signed;
        p->narrow = pr.narrow;
        p->per_channel = pr.n > 1;
        qo_qspec s;
        if (ours && qo_qnode_spec(cx, g, q, &s)) {
            CHECK_EQ(s.bits, pr.bits); /* the Quant node agrees with its spec */
            CHECK_EQ(s.is_signed, pr.is_signed);
            if (qo_qnode_is_pending(g, q)) p->per_channel = s.per_channel;
            else CHECK_EQ(s.per_channel, pr.n > 1);
        }
        qo_qparams_free(&pr);
    }
    return n;
}

static const qpoint *find(const qpoint *v, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].key, key)) return &v[i];
    return NULL;
}

/* Weight codes and scales of our resolved weight quantizer a vs Brevitas's b. */
static void compare_weights(qo_ctx *cx, const qo_graph *ga, qo_node a, const qo_graph *gb, qo_node b,
                            long long *ncodes, long long *nbad) {
    qo_qparams pa, pb;
    if (qo_qnode_read(cx, ga, a, &pa) != QO_OK) {
        CHECK(0);
        return;
    }
    if (qo_qnode_read(cx, gb, b, &pb) != QO_OK) {
        CHECK(0);
        qo_qparams_free(&pa);
        return;
    }
    CHECK_EQ(pa.n, pb.n);
    CHECK_EQ(pa.axis, pb.axis);
    qo_qspec s;
    CHECK(qo_qnode_spec(cx, ga, a, &s));
    bool scales_eq = pa.n == pb.n;
    for (uint32_t i = 0; scales_eq && i < pa.n; i++) scales_eq = memcmp(&pa.scales[i], &pb.scales[i], 4) == 0;
    CHECK(scales_eq);
    const qo_constdata *ca = qo_pass_val_const(ga, qo_node_input(ga, a, 0));
    const qo_constdata *cb = qo_pass_val_const(gb, qo_node_input(gb, b, 0));
    CHECK(ca && cb);
    if (ca && cb && scales_eq) {
        int64_t n = (int64_t)(ca->nbytes / 4), per = n / pa.n;
        CHECK_EQ(ca->nbytes, cb->nbytes);
        for (int64_t i = 0; i < n && ca->nbytes == cb->nbytes; i++) {
            float x, y;
            memcpy(&x, (const char *)ca->data + 4 * i, 4);
            memcpy(&y, (const char *)cb->data + 4 * i, 4);
            uint32_t c = pa.n > 1 ? (uint32_t)(i / per) : 0; /* axis 0 for Conv and Gemm(transB=1) */
            int64_t qa = qo_qspec_to_int(&s, x, pa.scales[c], 0);
            /* Brevitas exports int * scale in float32: dividing back is integral up to one rounding */
            float qbf = y / pb.scales[c], r = floorf(qbf + 0.5f);
            (*ncodes)++;
            if (fabsf(qbf - r) > 1e-3f || (int64_t)r != qa) (*nbad)++;
        }
    }
    qo_qparams_free(&pa);
    qo_qparams_free(&pb);
}

typedef struct cfg {
    const char *name;
    int wbits, abits;
    bool io8, fl8;
} cfg;

static const cfg CFGS[] = {
    {"uniform_W8A8", 8, 8, 0, 0}, {"uniform_W4A4", 4, 4, 0, 0}, {"uniform_W2A2", 2, 2, 0, 0},
    {"io8_W8A8", 8, 8, 1, 0},     {"io8_W4A4", 4, 4, 1, 0},     {"io8_W2A2", 2, 2, 1, 0},
    {"fl8_W8A8", 8, 8, 1, 1},     {"fl8_W4A4", 4, 4, 1, 1},     {"fl8_W2A2", 2, 2, 1, 1},
};

static void run_cfg(qo_ctx *cx, const char *dir, const char *src, const cfg *c, bool from_json) {
    char path[4096], buf[256];
    qo_module *m = NULL;
    snprintf(path, sizeof path, "%s/digits_float.onnx", dir);
    CHECK(qo_onnx_load(cx, path, &m) == QO_OK);
    if (!m) return;
    CHECK(qo_pipeline_run(cx, m, "canonicalize,shape-infer,const-fold,fold-bn,dce", NULL) == QO_OK);
    qo_qconfig qc;
    qo_qconfig_default(&qc);
    if (from_json) {
        snprintf(path, sizeof path, "%s/tests/qinsert/configs/brevitas_fl8_W4A4.json", src);
        CHECK(qo_qconfig_load(cx, path, &qc) == QO_OK);
    } else {
        snprintf(buf, sizeof buf, "int8_weight_per_channel_float:bits=%d,narrow=0", c->wbits);
        CHECK(qo_qconfig_set(cx, &qc, "weights", buf) == QO_OK);
        snprintf(buf, sizeof buf, "int8_act_per_tensor_float:bits=%d", c->abits);
        CHECK(qo_qconfig_set(cx, &qc, "acts", buf) == QO_OK);
        CHECK(qo_qconfig_set(cx, &qc, "bias", "int32_bias") == QO_OK);
        if (c->io8) CHECK(qo_qconfig_set(cx, &qc, "io_bits", "8") == QO_OK);
        if (c->fl8) CHECK(qo_qconfig_set(cx, &qc, "keep_first_last_8bit", "true") == QO_OK);
    }
    qo_graph *g = qo_module_main(m);
    uint32_t nins = 0;
    CHECK(qo_insert_quant(cx, g, &qc, &nins) == QO_OK);
    CHECK(qo_verify(cx, m) == QO_OK);
    uint32_t again = 1;
    CHECK(qo_insert_quant(cx, g, &qc, &again) == QO_OK); /* idempotent */
    CHECK_EQ(again, 0);
    qo_qconfig_free(&qc);

    snprintf(path, sizeof path, "%s/digits_ptq_%s_qonnx.onnx", dir, c->name);
    qo_module *bm = NULL;
    CHECK(qo_onnx_load(cx, path, &bm) == QO_OK);
    if (!bm) {
        qo_module_free(m);
        return;
    }
    const qo_graph *bg = qo_module_main(bm);
    qpoint ours[64], theirs[64];
    int na = collect(cx, g, ours, 64, true), nb = collect(cx, bg, theirs, 64, false);
    CHECK_EQ(na, (int)nins);
    CHECK_EQ(na, nb);
    int matched = 0;
    long long ncodes = 0, nbad = 0;
    for (int i = 0; i < nb; i++) {
        const qpoint *b = &theirs[i], *a = find(ours, na, b->key);
        if (!a) {
            fprintf(stderr, "[%s] Brevitas quantizes %s, qopt does not\n", c->name, b->key);
            CHECK(0);
            continue;
        }
        matched++;
        if (a->bits != b->bits || a->is_signed != b->is_signed || a->narrow != b->narrow ||
            a->per_channel != b->per_channel) {
            fprintf(stderr, "[%s] %s: qopt bits %d signed %d narrow %d per-channel %d; Brevitas %d %d %d %d\n",
                    c->name, b->key, a->bits, a->is_signed, a->narrow, a->per_channel, b->bits, b->is_signed,
                    b->narrow, b->per_channel);
            CHECK(0);
        } else CHECK(1);
        if (b->key[0] == 'W') compare_weights(cx, g, a->node, bg, b->node, &ncodes, &nbad);
    }
    for (int i = 0; i < na; i++)
        if (!find(theirs, nb, ours[i].key)) {
            fprintf(stderr, "[%s] qopt quantizes %s, Brevitas does not\n", c->name, ours[i].key);
            CHECK(0);
        }
    CHECK_EQ(nbad, 0);
    CHECK(ncodes > 40000);
    printf("%-13s%s %d quantizers (Brevitas %d), %d matched; %lld weight codes, %lld differ\n", c->name,
           from_json ? " (json)" : "", na, nb, matched, ncodes, nbad);
    qo_module_free(bm);
    qo_module_free(m);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATA_DIR SRC_DIR\n", argv[0]);
        return 2;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    for (size_t i = 0; i < sizeof CFGS / sizeof CFGS[0]; i++) {
        qt_current = CFGS[i].name;
        run_cfg(&cx, argv[1], argv[2], &CFGS[i], false);
    }
    qt_current = "fl8_W4A4 json";
    run_cfg(&cx, argv[1], argv[2], &CFGS[7], true);
    return qt_finish();
}
