/* passes/quant/bias_correct.c — `bias-correct`: Brevitas v0.12's bias_correction_mode
 * (src/brevitas/graph/calibrate.py, _BiasCorrection), see calib.h.
 *
 * Brevitas registers a forward hook on every QuantWBIOL layer. With quantization on, the hook runs
 * the layer again with activation, weight and bias quantization off on the same input, keeps
 * mean(float out) - mean(quant out) per output channel (channel axis 1; means over every other axis,
 * float32), sums these errors over batches and returns the float output, so later layers see float
 * outputs of earlier ones. At the end the sum is divided by the number of batches and added to the
 * float bias. Here: in a clone of the module, every such layer L (a Conv / ConvTranspose / Gemm whose
 * weight and bias come from resolved Quant nodes, the bias a float32 constant) gets a twin Lf reading
 * L's input with the float weight and bias; L's readers are moved to Lf; both results become graph
 * outputs. The clone runs in the JIT one batch at a time; means are summed in double and rounded to
 * float32 (PyTorch sums float32 in another order: the error can differ by an ulp or so). Finally each
 * bias constant is replaced by bias + correction; its quantizer keeps its scales, so the codes
 * follow. A layer without a bias gets one holding the correction (Brevitas's skip_if_no_bias=False
 * default), quantized with int32_bias (input scale x weight scale) when its input is quantized, else
 * left float with a warning. */
#include "passes/quant/calib.h"

#include "passes/pass_impl.h"
#include "passes/quant/qgraph.h"

#include <stdio.h>
#include <string.h>

typedef struct bl {
    qo_node L;       /* layer in the original graph */
    qo_node bq;      /* its bias Quant node; 0: the layer has no bias (one is added, as Brevitas does) */
    int64_t C;       /* bias entries */
    uint32_t oq, of; /* output indices in the variant: quantized and float results */
    float *corr;     /* C summed errors */
} bl;

typedef struct bc {
    bl *l;
    uint32_t nl;
    int64_t iters;
} bc;

static bool is_layer(const qo_graph *g, qo_node n) {
    qo_op op = (qo_op)g->nodes[n].op;
    return op == QO_OP_CONV || op == QO_OP_CONVTRANSPOSE || op == QO_OP_GEMM;
}

/* Per-channel means (axis 1) of t into out (C floats): summed in double, rounded once. */
static qo_status channel_means(qo_ctx *cx, const qo_tensor *t, int64_t C, double *acc, float *out) {
    if (t->elem != QO_F32 || t->rank < 2 || t->dims[1] != C)
        return qo_error(cx, QO_ERR_PASS, NULL, "bias-correct: layer output does not have %lld channels on axis 1",
                        (long long)C);
    int64_t outer = t->dims[0], inner = 1;
    for (int32_t d = 2; d < t->rank; d++) inner *= t->dims[d];
    const float *p = t->data;
    for (int64_t c = 0; c < C; c++) acc[c] = 0.0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < C; c++) {
            const float *q = p + (o * C + c) * inner;
            double s = 0.0;
            for (int64_t i = 0; i < inner; i++) s += q[i];
            acc[c] += s;
        }
    double n = (double)(outer * inner);
    for (int64_t c = 0; c < C; c++) out[c] = n > 0 ? (float)(acc[c] / n) : 0.0f;
    return QO_OK;
}

static qo_status bc_batch(void *user, qo_ctx *cx, const qo_tensor *in, uint32_t nin, qo_tensor *out, uint32_t nout,
                          int64_t nsamples) {
    (void)in, (void)nin, (void)nout, (void)nsamples;
    bc *b = user;
    for (uint32_t k = 0; k < b->nl; k++) {
        bl *l = &b->l[k];
        double *acc = qo_malloc((size_t)l->C * sizeof(double));
        float *mf = qo_malloc(2 * (size_t)l->C * sizeof(float)), *mq = mf + l->C;
        qo_status st = channel_means(cx, &out[l->of], l->C, acc, mf);
        if (st == QO_OK) st = channel_means(cx, &out[l->oq], l->C, acc, mq);
        if (st == QO_OK)
            for (int64_t c = 0; c < l->C; c++) l->corr[c] += mf[c] - mq[c]; /* float32, as torch */
        qo_free(acc);
        qo_free(mf);
        QO_TRY(st);
    }
    b->iters++;
    return QO_OK;
}

/* Copies node n of g (same op, attributes) reading ins; returns the copy, placed after n. */
static qo_node twin(qo_graph *g, qo_node n, const qo_val *ins, uint32_t nin) {
    qo_node saved = g->insert_before;
    g->insert_before = g->nodes[n].next;
    qo_node t = qo_node_new(g, (qo_op)g->nodes[n].op, qo_str(g->m, g->nodes[n].domain), qo_str(g->m, g->nodes[n].op_type),
                            nin, ins, 1);
    g->insert_before = saved;
    for (uint32_t i = 0; i < g->nodes[n].nattr; i++) {
        qo_attr a = g->attrs[g->nodes[n].attr0 + i];
        qo_node_set_attr(g, t, &a);
    }
    char nm[512];
    snprintf(nm, sizeof nm, "%s_float", qo_node_name(g, n));
    qo_node_set_name(g, t, nm);
    qo_val y = qo_node_output(g, n, 0), yf = qo_node_output(g, t, 0);
    g->vals[yf].type = g->vals[y].type ? qo_type_with_quant(g->m, g->vals[y].type, NULL) : 0;
    snprintf(nm, sizeof nm, "%s_bcfloat", qo_val_name(g, y)[0] ? qo_val_name(g, y) : "v");
    for (int k = 1; qo_graph_find(g, nm); k++) snprintf(nm, sizeof nm, "%s_bcfloat_%d", qo_val_name(g, y), k);
    qo_val_set_name(g, yf, nm);
    return t;
}

/* Output channels of layer n from its weight's static shape, -1 if unknown. */
static int64_t out_channels(const qo_graph *g, qo_node n) {
    const qo_typedata *td = qo_type_get(g->m, g->vals[qo_node_input(g, n, 1)].type);
    if (!td || td->kind != QO_TY_TENSOR || td->rank < 2) return -1;
    switch ((qo_op)g->nodes[n].op) {
    case QO_OP_CONV: return td->dims[0];
    case QO_OP_CONVTRANSPOSE: return td->dims[1] < 0 ? -1 : td->dims[1] * qo_attr_int(g, n, "group", 1);
    case QO_OP_GEMM: return td->rank != 2 ? -1 : qo_attr_int(g, n, "transB", 0) ? td->dims[0] : td->dims[1];
    default: return -1;
    }
}

/* Collects the layers to correct; errors for pending activation / bias quantizers. */
static qo_status collect(qo_ctx *cx, qo_graph *g, bc *b) {
    memset(b, 0, sizeof *b);
    qo_status st = QO_OK;
    uint32_t cap = 0;
    QO_FOR_EACH_NODE(g, n) {
        if (qo_qnode_is_pending(g, n)) {
            qo_loc loc = qo_node_loc(g, n);
            st = qo_error(cx, QO_ERR_USAGE, &loc,
                          "bias-correct needs resolved quantizers: '%s' is pending (run calibrate and quant-bias first)",
                          qo_val_name(g, qo_node_output(g, n, 0)));
            continue;
        }
        if (!is_layer(g, n)) continue;
        qo_node wq = qo_qnode_of(g, qo_node_input(g, n, 1));
        qo_val bv = g->nodes[n].nin >= 3 ? qo_node_input(g, n, 2) : 0;
        qo_node bq = qo_qnode_of(g, bv);
        if (!wq || (bv && !bq)) continue;
        if (bq && g->nodes[n].op == QO_OP_GEMM && qo_attr_float(g, n, "beta", 1.0f) == 0.0f) continue; /* C unused */
        int64_t C;
        if (bq) {
            const qo_constdata *bcd = qo_pass_val_const(g, qo_node_input(g, bq, 0));
            if (!bcd || qo_type_elem(g->m, bcd->type) != QO_F32) continue;
            C = qo_type_numel(g->m, bcd->type);
            int64_t oc = out_channels(g, n);
            if (oc > 0 && C != oc) continue; /* a per-sample Gemm C ([M, N]): not a per-channel bias */
        } else {
            C = out_channels(g, n);
            if (C <= 0) continue;
        }
        if (b->nl == cap) {
            cap = cap ? cap * 2 : 8;
            b->l = qo_realloc(b->l, cap * sizeof *b->l);
        }
        b->l[b->nl++] = (bl){.L = n, .bq = bq, .C = C, .corr = qo_calloc((size_t)(C > 0 ? C : 1), sizeof(float))};
    }
    return st;
}

static void bc_free(bc *b) {
    for (uint32_t k = 0; k < b->nl; k++) qo_free(b->l[k].corr);
    qo_free(b->l);
    memset(b, 0, sizeof *b);
}

static qo_status build_variant(qo_ctx *cx, qo_module *m, bc *b, qo_module **out) {
    qo_graph *g = qo_module_main(m);
    qo_module *vm = NULL;
    QO_TRY(qo_calib_clone(cx, m, &vm));
    qo_graph *vg = qo_module_main(vm);
    qo_node *map = qo_calib_node_map(g, vg);
    qo_status st = QO_OK;
    for (uint32_t k = 0; k < b->nl && st == QO_OK; k++) {
        qo_node L = map[b->l[k].L];
        if (!L || !is_layer(vg, L)) {
            qo_loc loc = qo_node_loc(g, b->l[k].L);
            st = qo_error(cx, QO_ERR_PASS, &loc, "bias-correct: the layer is missing from the module's copy");
            break;
        }
        qo_val ins[3] = {qo_node_input(vg, L, 0), qo_node_input(vg, qo_qnode_of(vg, qo_node_input(vg, L, 1)), 0),
                         b->l[k].bq ? qo_node_input(vg, qo_qnode_of(vg, qo_node_input(vg, L, 2)), 0) : 0};
        qo_node f = twin(vg, L, ins, b->l[k].bq ? 3 : 2);
        qo_val y = qo_node_output(vg, L, 0), yf = qo_node_output(vg, f, 0);
        qo_replace_all_uses(vg, y, yf);
        b->l[k].oq = vg->noutputs;
        qo_graph_add_output(vg, y);
        b->l[k].of = vg->noutputs;
        qo_graph_add_output(vg, yf);
    }
    qo_free(map);
    if (st != QO_OK) {
        qo_module_free(vm);
        return st;
    }
    *out = vm;
    return QO_OK;
}

/* A layer without bias gets bias = corr / iters (Brevitas: register_parameter('bias', correction)),
 * quantized with int32_bias when its input is quantized, else left float with a warning. */
static qo_status add_bias(qo_ctx *cx, qo_graph *g, bl *l, int64_t iters) {
    float *nb = qo_malloc((size_t)l->C * sizeof(float));
    for (int64_t c = 0; c < l->C; c++) nb[c] = l->corr[c] / (float)iters;
    char nm[512];
    const char *ln = qo_node_name(g, l->L)[0] ? qo_node_name(g, l->L) : "layer";
    snprintf(nm, sizeof nm, "%s_bias_bcorr", ln);
    for (int k = 1; qo_graph_find(g, nm); k++) snprintf(nm, sizeof nm, "%s_bias_bcorr_%d", ln, k);
    qo_val v = qo_pass_add_const(g, nm, QO_F32, 1, &l->C, nb);
    qo_free(nb);
    qo_val y = v;
    float in_scale;
    int32_t zp;
    qo_loc loc = qo_node_loc(g, l->L);
    if (qo_calib_input_scale(g, qo_node_input(g, l->L, 0), &in_scale, &zp) && zp == 0) {
        qo_qspec bs;
        QO_ASSERT(qo_qspec_preset("int32_bias", &bs));
        qo_node q = qo_qnode_new(cx, g, v, &bs, 0, NULL, NULL);
        if (!q) return QO_ERR_USAGE;
        y = qo_node_output(g, q, 0);
    } else
        qo_warning(cx, &loc, "bias correction added a float bias to this layer (its input is not quantized, so "
                             "the bias is not quantized)");
    if (g->nodes[l->L].nin < 3) qo_node_set_num_inputs(g, l->L, 3);
    qo_set_input(g, qo_node_use(g, l->L, 2), y);
    return QO_OK;
}

/* Replaces the bias constant behind quantizer bq by b + corr / iters. */
static qo_status apply(qo_ctx *cx, qo_graph *g, bl *l, int64_t iters) {
    if (!l->bq) return add_bias(cx, g, l, iters);
    qo_val bv = qo_node_input(g, l->bq, 0);
    qo_tensor bt;
    QO_TRY(qo_tensor_from_const(cx, g->m, g->vals[bv].cref, &bt));
    float *nb = qo_malloc((size_t)l->C * sizeof(float));
    const float *ob = bt.data;
    /* torch: correction = sum / n; bias += correction (a Gemm's C is scaled by beta: divide it out) */
    float beta = g->nodes[l->L].op == QO_OP_GEMM ? qo_attr_float(g, l->L, "beta", 1.0f) : 1.0f;
    for (int64_t c = 0; c < l->C; c++) {
        float corr = l->corr[c] / (float)iters;
        nb[c] = ob[c] + (beta == 1.0f ? corr : corr / beta);
    }
    char nm[512];
    const char *base = qo_val_name(g, bv)[0] ? qo_val_name(g, bv) : "bias";
    snprintf(nm, sizeof nm, "%s_bcorr", base);
    for (int k = 1; qo_graph_find(g, nm); k++) snprintf(nm, sizeof nm, "%s_bcorr_%d", base, k);
    qo_val v = qo_pass_add_const(g, nm, QO_F32, bt.rank, bt.dims, nb);
    qo_free(nb);
    qo_tensor_free(&bt);
    qo_set_input(g, qo_node_use(g, l->bq, 0), v);
    qo_pass_drop_unused_const(g, bv);
    return QO_OK;
}

qo_status qo_bias_correct(qo_ctx *cx, qo_module *m, qo_batch_source *src, const qo_calib_opts *o) {
    qo_graph *g = qo_module_main(m);
    if (!g) return qo_error(cx, QO_ERR_INVALID_MODEL, NULL, "the model has no main graph");
    bc b;
    qo_status st = collect(cx, g, &b);
    if (st != QO_OK || b.nl == 0) {
        bc_free(&b);
        return st;
    }
    qo_module *vm = NULL;
    st = build_variant(cx, m, &b, &vm);
    if (st == QO_OK) st = qo_calib_run(cx, m, vm, src, o, bc_batch, &b, NULL);
    bool added = false;
    for (uint32_t k = 0; k < b.nl && st == QO_OK; k++) {
        st = apply(cx, g, &b.l[k], b.iters);
        added |= !b.l[k].bq;
    }
    if (st == QO_OK && added) st = qo_quant_bias_graph(cx, g); /* the new bias quantizers */
    qo_module_free(vm);
    bc_free(&b);
    return st;
}

qo_status qo_pass_bias_correct(qo_pass_ctx *pc, qo_graph *g) {
    (void)g;
    const char *data = qo_pass_opt_str(pc, "data");
    if (!data || !data[0])
        return qo_error(pc->cx, QO_ERR_USAGE, NULL, "bias-correct needs data: bias-correct{data=FILE.npy}");
    qo_calib_opts o = {.threads = (int)qo_pass_opt_int(pc, "threads")};
    qo_batch_source src;
    QO_TRY(qo_calib_load_source(pc, &src));
    qo_status st = qo_bias_correct(pc->cx, pc->m, &src, &o);
    qo_batch_source_free(&src);
    pc->changed = true;
    return st;
}
