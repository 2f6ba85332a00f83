/* passes/quant/quant_bias.c — `quant-bias`: resolves pending bias quantizers of Conv,
 * ConvTranspose and Gemm layers (REFERENCE.md §3.2 "Bias", §4.2.6): scale[c] = input scale x weight
 * scale[c] as one float32 product, zero point 0, the bias spec's bits (int32 by default), as
 * Brevitas's IntBias with the accumulator's scale (brevitas/proxy/parameter_quant.py
 * BiasQuantProxyFromInjector: requires the input scale, "Input scale required for bias export").
 * The bias codes themselves are computed where they are needed (the Quant node computes them at run
 * time; backends from the constant and the scales), so only the quantizer's parameters change. */
#include "passes/quant/calib.h"

#include "passes/pass_impl.h"
#include "passes/quant/qgraph.h"

#include <string.h>

bool qo_quant_keeps_scale(qo_op op) {
    switch (op) {
    case QO_OP_MAXPOOL:
    case QO_OP_FLATTEN:
    case QO_OP_RESHAPE:
    case QO_OP_TRANSPOSE:
    case QO_OP_SQUEEZE:
    case QO_OP_UNSQUEEZE:
    case QO_OP_IDENTITY:
    case QO_OP_DROPOUT:
    case QO_OP_SLICE:
    case QO_OP_DEPTHTOSPACE:
    case QO_OP_SPACETODEPTH: return true;
    default: return false;
    }
}

bool qo_calib_input_scale(const qo_graph *g, qo_val v, float *scale, int32_t *zp) {
    for (int hops = 0; v && hops < 64; hops++) {
        const qo_typedata *td = qo_type_get(g->m, g->vals[v].type);
        if (td && td->quant) {
            if (td->quant->per_axis) return false;
            *scale = td->quant->scale;
            *zp = td->quant->zp;
            return true;
        }
        qo_node d = g->vals[v].def;
        if (!d || !qo_quant_keeps_scale((qo_op)g->nodes[d].op) || g->vals[v].res != 0) return false;
        v = qo_node_input(g, d, 0);
    }
    return false;
}

static bool is_layer(const qo_graph *g, qo_node n) {
    qo_op op = (qo_op)g->nodes[n].op;
    return op == QO_OP_CONV || op == QO_OP_CONVTRANSPOSE || op == QO_OP_GEMM;
}

/* Resolves bias quantizer q read as input 2 of layer L. */
static qo_status resolve(qo_ctx *cx, qo_graph *g, qo_node q, const qo_qspec *bs, qo_node L) {
    qo_loc loc = qo_node_loc(g, L);
    float in_scale = 0.0f;
    int32_t in_zp = 0;
    if (!qo_calib_input_scale(g, qo_node_input(g, L, 0), &in_scale, &in_zp))
        return qo_error(cx, QO_ERR_USAGE, &loc,
                        "input scale required for bias quantization: input '%s' is not quantized per tensor "
                        "(calibrate the activation quantizers first)",
                        qo_val_name(g, qo_node_input(g, L, 0)));
    if (in_zp != 0)
        return qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                        "bias quantization needs a zero-point-free input, '%s' has zero point %d",
                        qo_val_name(g, qo_node_input(g, L, 0)), in_zp);
    qo_node wq = qo_qnode_of(g, qo_node_input(g, L, 1));
    if (!wq || qo_qnode_is_pending(g, wq))
        return qo_error(cx, QO_ERR_USAGE, &loc, "bias quantization needs a quantized weight; '%s' is not",
                        qo_val_name(g, qo_node_input(g, L, 1)));
    qo_qparams wp;
    QO_TRY(qo_qnode_read(cx, g, wq, &wp));
    qo_val bv = qo_node_input(g, q, 0);
    const qo_constdata *bc = qo_pass_val_const(g, bv);
    int64_t C = bc ? qo_type_numel(g->m, bc->type) : -1;
    qo_status st = QO_OK;
    if (!bc || qo_type_elem(g->m, bc->type) != QO_F32 || C <= 0)
        st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc, "bias '%s' is not a float32 constant", qo_val_name(g, bv));
    else if (wp.n != 1 && (int64_t)wp.n != C)
        st = qo_error(cx, QO_ERR_USAGE, &loc, "bias '%s' has %lld entries but the weight has %u scales",
                      qo_val_name(g, bv), (long long)C, wp.n);
    if (st == QO_OK) {
        /* wrong weight axis for a per-channel bias (e.g. ConvTranspose weights are (C_in, C_out/g, ...)) */
        qo_op op = (qo_op)g->nodes[L].op;
        int want = op == QO_OP_CONVTRANSPOSE ? 1 : op == QO_OP_GEMM ? (qo_attr_int(g, L, "transB", 0) ? 0 : 1) : 0;
        if (wp.n != 1 && wp.axis != want)
            st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                          "weight quantizer of '%s' is per-channel along axis %d, not the output-channel axis %d",
                          qo_val_name(g, qo_node_input(g, L, 1)), wp.axis, want);
    }
    if (st == QO_OK) {
        qo_qspec s = *bs;
        s.per_channel = wp.n != 1;
        s.axis = 0;
        float *sc = qo_malloc(wp.n * sizeof(float));
        for (uint32_t c = 0; c < wp.n; c++) sc[c] = in_scale * wp.scales[c]; /* float32 product */
        st = qo_qnode_set_params(cx, g, q, &s, wp.n, sc, NULL);
        qo_free(sc);
    }
    qo_qparams_free(&wp);
    return st;
}

qo_status qo_quant_bias_graph(qo_ctx *cx, qo_graph *g) {
    qo_status st = QO_OK;
    QO_FOR_EACH_NODE(g, q) {
        if (!qo_qnode_is_pending(g, q)) continue;
        qo_qspec s;
        if (!qo_qnode_spec(cx, g, q, &s)) return QO_ERR_INVALID_MODEL;
        if (s.role != QO_QROLE_BIAS) continue;
        qo_val y = qo_node_output(g, q, 0);
        qo_node L = 0;
        QO_FOR_EACH_USE(g, y, u) {
            qo_node o = g->uses[u].owner;
            if (o && is_layer(g, o) && u == qo_node_use(g, o, 2)) L = o;
        }
        if (!L) {
            qo_loc loc = qo_node_loc(g, q);
            st = qo_error(cx, QO_ERR_USAGE, &loc, "bias quantizer '%s' is not the bias of a Conv, ConvTranspose or Gemm",
                          qo_val_name(g, y));
            continue;
        }
        qo_status s2 = resolve(cx, g, q, &s, L);
        if (s2 != QO_OK) st = s2;
    }
    return st;
}

qo_status qo_pass_quant_bias(qo_pass_ctx *pc, qo_graph *g) {
    uint32_t before = 0;
    QO_FOR_EACH_NODE(g, n) before += qo_qnode_is_pending(g, n);
    qo_status st = qo_quant_bias_graph(pc->cx, g);
    uint32_t after = 0;
    QO_FOR_EACH_NODE(g, n) after += qo_qnode_is_pending(g, n);
    if (after != before) {
        pc->changed = true;
        qo_pass_stat(pc, "biases-quantized", (int64_t)before - after);
    }
    return st;
}
