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
 * left float with a warning.
 *
 * Linear layers need no quantized twin: both results read the same input x, so the error is
 * mean(conv(x, Wf - Wq)) + (bf - bq) = (Wf - Wq) . P + (bf - bq), with P the mean input patch (the
 * mean over the batch and every output position of the input under each kernel tap, zero in the
 * padding). For Conv (1-D and 2-D, any group, stride, dilation, pads) and Gemm, L itself is switched
 * to the float weight and bias in the clone (its readers see the float output, as above), its input
 * becomes a graph output, and the error per batch is computed from the patch means in double: one
 * convolution per layer instead of two. ConvTranspose, 3-D convolutions and weights that are not
 * constants keep the twin. */
#include "passes/quant/calib.h"

#include "passes/pass_impl.h"
#include "passes/quant/qgraph.h"
#include "runtime/ref/geom.h"

#include <stdio.h>
#include <string.h>

typedef struct bl {
    qo_node L;       /* layer in the original graph */
    qo_node bq;      /* its bias Quant node; 0: the layer has no bias (one is added, as Brevitas does) */
    int64_t C;       /* bias entries */
    uint32_t oq, of; /* twin: output indices in the variant of the quantized and float results */
    float *corr;     /* C summed errors */
    /* linear correction (lin): */
    bool lin;
    int32_t xin;     /* >= 0: the layer reads graph input xin; else variant output ox */
    uint32_t ox;
    int64_t K;       /* weight entries per output channel: Cin / group x kernel taps (Gemm: K) */
    double *wd;      /* [C][K] float - quantized weight (Gemm: times alpha) */
    double *bd;      /* [C] float - quantized bias (Gemm: times beta); 0 without a bias */
} bl;

typedef struct bc {
    bl *l;
    uint32_t nl;
    int64_t iters;
    const qo_graph *g; /* the original graph (attributes of the layers) */
    int64_t opset;
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

/* Floor division for a possibly negative numerator (b > 0). */
static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Outputs o in [*lo, *hi) whose tap at offset off (input index o * s + off) falls inside [0, in). */
static void tap_range(int64_t in, int64_t out, int64_t s, int64_t off, int64_t *lo, int64_t *hi) {
    int64_t l = -floor_div(off, s); /* ceil(-off / s) */
    int64_t h = floor_div(in - 1 - off, s) + 1;
    *lo = l < 0 ? 0 : l;
    *hi = h > out ? out : h;
    if (*hi < *lo) *hi = *lo;
}

/* Sums (not yet means) of a Conv's input under each kernel tap over the batch and every output
 * position, in double: P[c][kh][kw] (padding contributes zeros). 1-D is H = KH = OH = 1. Rows are
 * summed per kw first, then the row sums per kh: O(H x KW x OW + KH x KW x OH) per plane. */
static void conv_patch_sums(const float *x, int64_t N, int64_t C, int64_t H, int64_t W, const int64_t k[2],
                            const int64_t o[2], const int64_t s[2], const int64_t d[2], const int64_t p[2], double *P) {
    int64_t KH = k[0], KW = k[1], T = KH * KW;
    double *S = qo_malloc((size_t)(H * KW) * sizeof(double));
    int64_t *wr = qo_malloc((size_t)(2 * (KW + KH)) * sizeof(int64_t)), *hr = wr + 2 * KW;
    for (int64_t kw = 0; kw < KW; kw++) tap_range(W, o[1], s[1], kw * d[1] - p[1], &wr[2 * kw], &wr[2 * kw + 1]);
    for (int64_t kh = 0; kh < KH; kh++) tap_range(H, o[0], s[0], kh * d[0] - p[0], &hr[2 * kh], &hr[2 * kh + 1]);
    memset(P, 0, (size_t)(C * T) * sizeof(double));
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *pl = x + (n * C + c) * H * W;
            for (int64_t r = 0; r < H; r++)
                for (int64_t kw = 0; kw < KW; kw++) {
                    int64_t b0 = r * W + kw * d[1] - p[1]; /* element of output column 0 (may be padding) */
                    double a = 0.0;
                    for (int64_t q = wr[2 * kw]; q < wr[2 * kw + 1]; q++) a += pl[b0 + q * s[1]];
                    S[r * KW + kw] = a;
                }
            double *Pc = P + c * T;
            for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                    double a = 0.0;
                    for (int64_t q = hr[2 * kh]; q < hr[2 * kh + 1]; q++) a += S[(q * s[0] + kh * d[0] - p[0]) * KW + kw];
                    Pc[kh * KW + kw] += a;
                }
        }
    qo_free(wr);
    qo_free(S);
}

/* The linear layer's mean error per output channel for input x, added to l->corr (float32). */
static qo_status linear_error(qo_ctx *cx, const bc *b, bl *l, const qo_tensor *x) {
    const qo_graph *g = b->g;
    qo_loc loc = qo_node_loc(g, l->L);
    if (x->elem != QO_F32) return qo_error(cx, QO_ERR_PASS, &loc, "bias-correct: the layer input is not float32");
    double *P, count;
    int64_t groups = 1, Cg;
    if ((qo_op)g->nodes[l->L].op == QO_OP_GEMM) {
        if (x->rank != 2) return qo_error(cx, QO_ERR_PASS, &loc, "bias-correct: the Gemm input is not 2-D");
        bool ta = qo_attr_int(g, l->L, "transA", 0) != 0;
        int64_t rows = ta ? x->dims[1] : x->dims[0], K = ta ? x->dims[0] : x->dims[1];
        if (K != l->K) return qo_error(cx, QO_ERR_PASS, &loc, "bias-correct: the Gemm input has %lld columns, the weight %lld",
                                       (long long)K, (long long)l->K);
        P = qo_calloc((size_t)K, sizeof(double));
        const float *a = x->data;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t k = 0; k < K; k++) P[k] += ta ? a[k * rows + i] : a[i * K + k];
        count = (double)rows;
        Cg = K;
    } else {
        qo_kctx k = {.cx = cx, .g = g, .n = l->L, .opset = b->opset};
        const qo_typedata *wt = qo_type_get(g->m, g->vals[qo_node_input(g, l->L, 1)].type);
        int64_t ker[QO_MAX_RANK] = {0};
        for (int32_t i = 2; i < wt->rank; i++) ker[i - 2] = wt->dims[i];
        qo_geom ge;
        QO_TRY(qo_geom_window(&k, x, ker, 0, QO_GEOM_REPORT, &ge));
        groups = qo_attr_int(g, l->L, "group", 1);
        int64_t C = x->dims[1];
        if (groups < 1 || C % groups || (C / groups) * (ge.nsp == 2 ? ge.ker[0] * ge.ker[1] : ge.ker[0]) != l->K)
            return qo_error(cx, QO_ERR_PASS, &loc, "bias-correct: the Conv input does not match its weight");
        Cg = C / groups;
        int64_t kk[2], oo[2], ss[2], dd[2], pp[2];
        if (ge.nsp == 2) {
            for (int i = 0; i < 2; i++) kk[i] = ge.ker[i], oo[i] = ge.out[i], ss[i] = ge.str[i], dd[i] = ge.dil[i], pp[i] = ge.pb[i];
        } else {
            kk[0] = oo[0] = ss[0] = dd[0] = 1, pp[0] = 0;
            kk[1] = ge.ker[0], oo[1] = ge.out[0], ss[1] = ge.str[0], dd[1] = ge.dil[0], pp[1] = ge.pb[0];
        }
        P = qo_malloc((size_t)(C * kk[0] * kk[1]) * sizeof(double));
        conv_patch_sums(x->data, x->dims[0], C, ge.nsp == 2 ? ge.in[0] : 1, ge.in[ge.nsp - 1], kk, oo, ss, dd, pp, P);
        count = (double)x->dims[0] * (double)oo[0] * (double)oo[1];
        Cg *= kk[0] * kk[1];
    }
    int64_t Mg = l->C / groups;
    for (int64_t c = 0; c < l->C; c++) {
        const double *w = l->wd + c * l->K, *pc = P + (c / Mg) * Cg;
        double a = 0.0;
        for (int64_t i = 0; i < l->K; i++) a += w[i] * pc[i];
        l->corr[c] += (float)(a / count + l->bd[c]); /* float32 sum over batches, as torch */
    }
    qo_free(P);
    return QO_OK;
}

static qo_status bc_batch(void *user, qo_ctx *cx, const qo_tensor *in, uint32_t nin, qo_tensor *out, uint32_t nout,
                          int64_t nsamples) {
    (void)nin, (void)nout, (void)nsamples;
    bc *b = user;
    for (uint32_t k = 0; k < b->nl; k++) {
        bl *l = &b->l[k];
        if (l->lin) {
            QO_TRY(linear_error(cx, b, l, l->xin >= 0 ? &in[l->xin] : &out[l->ox]));
            continue;
        }
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
    for (uint32_t k = 0; k < b->nl; k++) {
        qo_free(b->l[k].corr);
        qo_free(b->l[k].wd);
        qo_free(b->l[k].bd);
    }
    qo_free(b->l);
    memset(b, 0, sizeof *b);
}

/* The constant behind v (an initializer or a Constant node) as a tensor; false if v is not one. */
static bool const_tensor(qo_ctx *cx, const qo_graph *g, qo_val v, qo_tensor *t) {
    memset(t, 0, sizeof *t);
    qo_cref c = qo_pass_val_cref(g, v);
    return c && qo_tensor_from_const(cx, g->m, c, t) == QO_OK;
}

/* Runs Quant node q, whose inputs are all constants, with its reference kernel: the dequantized
 * tensor the JIT computes too. false if an input is not constant or the kernel fails. */
static bool eval_quant(qo_ctx *cx, const qo_graph *g, int64_t opset, qo_node q, qo_tensor *out) {
    uint32_t nin = g->nodes[q].nin;
    qo_tensor in[4] = {{0}};
    const qo_tensor *inp[4];
    bool ok = nin <= 4;
    for (uint32_t i = 0; ok && i < nin; i++) {
        ok = const_tensor(cx, g, qo_node_input(g, q, i), &in[i]); /* zeroed when it fails */
        inp[i] = &in[i];
    }
    qo_ref_kernel kf = ok ? qo_ref_kernel_for((qo_op)g->nodes[q].op) : NULL;
    qo_kctx k = {.cx = cx, .g = g, .n = q, .opset = opset};
    memset(out, 0, sizeof *out);
    ok = kf && kf(&k, inp, nin, out, 1) == QO_OK && out->elem == QO_F32;
    if (!ok) qo_tensor_free(out);
    for (uint32_t i = 0; i < 4; i++) qo_tensor_free(&in[i]);
    return ok;
}

/* Sets up the linear correction of l (float - quantized weight and bias from the constants); false
 * (nothing set) for a layer that keeps the twin: ConvTranspose, 3-D Conv, non-constant weights. */
static bool prepare_linear(qo_ctx *cx, const qo_graph *g, int64_t opset, bl *l) {
    qo_op op = (qo_op)g->nodes[l->L].op;
    if (op != QO_OP_CONV && op != QO_OP_GEMM) return false;
    qo_node wq = qo_qnode_of(g, qo_node_input(g, l->L, 1));
    qo_tensor wf, wqt, bf = {0}, bqt = {0};
    if (!const_tensor(cx, g, qo_node_input(g, wq, 0), &wf)) return false;
    bool ok = wf.elem == QO_F32 && eval_quant(cx, g, opset, wq, &wqt);
    if (!ok) {
        qo_tensor_free(&wf);
        return false;
    }
    int64_t C = l->C, K = 0;
    bool tb = false;
    if (op == QO_OP_CONV) {
        ok = wf.rank >= 3 && wf.rank <= 4 && wf.dims[0] == C;
        K = qo_tensor_numel(&wf) / (C > 0 ? C : 1);
    } else {
        tb = qo_attr_int(g, l->L, "transB", 0) != 0;
        ok = wf.rank == 2 && (tb ? wf.dims[0] : wf.dims[1]) == C;
        K = tb ? wf.dims[1] : wf.dims[0];
    }
    ok = ok && qo_tensor_numel(&wqt) == qo_tensor_numel(&wf);
    if (ok && l->bq) {
        ok = const_tensor(cx, g, qo_node_input(g, l->bq, 0), &bf) && bf.elem == QO_F32 &&
             qo_tensor_numel(&bf) == C && eval_quant(cx, g, opset, l->bq, &bqt) && qo_tensor_numel(&bqt) == C;
    }
    if (ok) {
        double alpha = op == QO_OP_GEMM ? qo_attr_float(g, l->L, "alpha", 1.0f) : 1.0;
        double beta = op == QO_OP_GEMM ? qo_attr_float(g, l->L, "beta", 1.0f) : 1.0;
        const float *a = wf.data, *q = wqt.data;
        l->wd = qo_malloc((size_t)(C * K) * sizeof(double));
        l->bd = qo_calloc((size_t)C, sizeof(double));
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < K; k++) {
                int64_t i = op == QO_OP_GEMM && !tb ? k * C + c : c * K + k;
                l->wd[c * K + k] = alpha * ((double)a[i] - (double)q[i]);
            }
        if (l->bq) {
            const float *fb = bf.data, *qb = bqt.data;
            for (int64_t c = 0; c < C; c++) l->bd[c] = beta * ((double)fb[c] - (double)qb[c]);
        }
        l->K = K;
        l->lin = true;
    }
    qo_tensor_free(&wf);
    qo_tensor_free(&wqt);
    qo_tensor_free(&bf);
    qo_tensor_free(&bqt);
    return ok;
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
        if (prepare_linear(cx, g, b->opset, &b->l[k])) {
            /* L computes the float result for its readers; its input is read back for the patch means */
            qo_set_input(vg, qo_node_use(vg, L, 1), ins[1]);
            if (ins[2]) qo_set_input(vg, qo_node_use(vg, L, 2), ins[2]);
            bl *l = &b->l[k];
            l->xin = -1;
            for (uint32_t i = 0; i < vg->ninputs; i++)
                if (vg->inputs[i] == ins[0]) l->xin = (int32_t)i;
            if (l->xin < 0) {
                l->ox = UINT32_MAX;
                for (uint32_t j = 0; j < k; j++) /* an input shared with an earlier layer is read once */
                    if (b->l[j].lin && b->l[j].xin < 0 && qo_graph_output(vg, b->l[j].ox) == ins[0]) l->ox = b->l[j].ox;
                if (l->ox == UINT32_MAX) {
                    l->ox = vg->noutputs;
                    qo_graph_add_output(vg, ins[0]);
                }
            }
            continue;
        }
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
    b.g = g;
    b.opset = qo_module_opset(m, "");
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
