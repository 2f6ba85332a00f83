/* passes/quant/qgraph.h — quantizers as IR. How a quantized graph looks, shared by insert-quant,
 * calibrate, quant-prop, quant-bias, bias-correct, the QCDQ backend and the importers.
 *
 * The quantized IR (docs/ARCHITECTURE.md, "Quantized IR"):
 *  - A quantizer is a QONNX `Quant` node (QO_OP_QONNX_QUANT, domain "qonnx.custom_op.general"):
 *    inputs x (f32), scale (f32 constant), zeropt (f32 constant), bitwidth (f32 rank-0 constant);
 *    attributes signed, narrow (always written) and rounding_mode (qonnx names "ROUND", "HALF_UP",
 *    "FLOOR", ...; qopt's extra modes as "HALF_POS_INF" and "DPU"). It computes the fake-quantized
 *    value with qonnx's semantics (REFERENCE.md §3.1), so a quantized graph runs in the interpreter
 *    and the JIT as it is, and it is already QONNX.
 *    Per-tensor: scale and zeropt are rank-0. Per-channel along axis a of an r-D x: shape with the
 *    channel count at a and 1 elsewhere (QONNX's broadcast rule; a 1-D bias has shape (C)).
 *  - Its result's type carries qo_quant (bits, signedness, narrow, round, pow2, per-axis scales and
 *    zero points): the QuantTensor metadata every backend reads. quant-prop copies it onto results of
 *    ops that do not change quantization (types only, no nodes).
 *  - Quant nodes that qopt inserts carry the string attribute "qopt_spec": the full qo_qspec in its
 *    qo_qspec_format text, so later passes know the statistic, percentile and calibration rule.
 *    A quantizer whose scale is not known yet is *pending*: scale 1, zero point 0, and no qo_quant on
 *    its result. calibrate resolves pending activation quantizers, quant-bias pending bias ones.
 *  - Quantizers that must end with one scale (inputs of a residual Add or of a Concat, Brevitas's
 *    shared quantizers) carry the same integer attribute "qopt_group" (> 0).
 *  - Writers of other formats drop the qopt_* attributes (qo_qnode_strip_attrs).
 * Library rules: nothing here prints or exits. */
#ifndef QOPT_PASSES_QUANT_QGRAPH_H
#define QOPT_PASSES_QUANT_QGRAPH_H

#include "passes/quant/quantizer.h"

#define QO_QATTR_SPEC "qopt_spec"
#define QO_QATTR_GROUP "qopt_group"
#define QO_QONNX_DOMAIN "qonnx.custom_op.general"

/* True if n is a live QONNX Quant node (any origin: inserted by qopt or imported). */
bool qo_qnode_is_quant(const qo_graph *g, qo_node n);

/* The Quant node defining v, or 0. */
qo_node qo_qnode_of(const qo_graph *g, qo_val v);

/* Creates a Quant node reading x for spec s, placed right after x's definition (at the start of the
 * program for graph inputs and constants), named after x ("<x>_quant" for the node, "<x>_q" for the
 * result, both made unique). With nscale == 0 the quantizer is pending (scale 1, zero point 0, no
 * qo_quant); otherwise qo_qnode_set_params(nscale, scales, zps) is applied. Uses of x are NOT
 * rewired (the caller decides which readers see the quantized value). Returns the node; its result
 * is qo_node_output(g, n, 0). Per-channel specs need x's rank (from its type): if it is unknown, or
 * s->axis is outside it, an error naming x is reported and 0 returned. */
qo_node qo_qnode_new(qo_ctx *cx, qo_graph *g, qo_val x, const qo_qspec *s, uint32_t nscale,
                     const float *scales, const int32_t *zps);

/* Sets a Quant node's scale/zeropt/bitwidth inputs (fresh constants, the old ones erased when
 * unused), its signed/narrow/rounding_mode attributes from s, its "qopt_spec" attribute, and the
 * qo_quant of its result. nscale is 1 (per-tensor) or the extent of s->axis of x; zps may be NULL
 * (all zero). */
qo_status qo_qnode_set_params(qo_ctx *cx, qo_graph *g, qo_node n, const qo_qspec *s, uint32_t nscale,
                              const float *scales, const int32_t *zps);

/* Reads the spec stored in n's "qopt_spec" attribute. false (nothing reported) if n has none; an
 * attribute that does not parse is reported as QO_ERR_INVALID_MODEL naming n, and false returned. */
bool qo_qnode_spec(qo_ctx *cx, const qo_graph *g, qo_node n, qo_qspec *s);

/* True if n is a Quant node with a "qopt_spec" whose result has no qo_quant yet. */
bool qo_qnode_is_pending(const qo_graph *g, qo_node n);

/* The "qopt_group" of n, 0 if none. */
int64_t qo_qnode_group(const qo_graph *g, qo_node n);

/* A Quant node's parameters, from its constant inputs and attributes (any origin). */
typedef struct qo_qparams {
    uint8_t bits;       /* 1..32 */
    bool is_signed, narrow;
    uint8_t round;      /* qo_round */
    int16_t axis;       /* channel axis of x, -1 for per-tensor */
    uint32_t n;         /* 1, or the number of channels */
    float *scales;      /* n entries (malloc'd) */
    int32_t *zps;       /* n entries (malloc'd); zero points must be integers */
} qo_qparams;

/* Reads n's parameters. Non-constant scale/zeropt/bitwidth, a scale shape that is neither a scalar
 * nor ones except along one axis, a non-integer zero point or bit width, a non-positive or
 * non-finite scale: QO_ERR_UNSUPPORTED naming the node. Free with qo_qparams_free. */
qo_status qo_qnode_read(qo_ctx *cx, const qo_graph *g, qo_node n, qo_qparams *out);
void qo_qparams_free(qo_qparams *p);

/* The qo_quant descriptor for p (per-axis scales/zps go to m's constant pool); pow2 is set when every
 * scale is an exact power of two. */
void qo_qparams_to_quant(const qo_qparams *p, qo_module *m, qo_quant *out);

/* Removes the qopt_* attributes from every Quant node of g (and its subgraphs' nodes are left alone).
 * Returns the number of nodes changed. */
uint32_t qo_qnode_strip_attrs(qo_graph *g);

/* qonnx rounding_mode string for a qo_round ("ROUND" for half_even, "HALF_UP", ..., "DPU"). */
const char *qo_round_qonnx_name(qo_round r);

#endif
