/* backends/qcdq/qcdq.h — QCDQ ONNX (QuantizeLinear -> [Clip] -> DequantizeLinear, as Brevitas's
 * export_onnx_qcdq emits it, shared/REFERENCE.md §3.2) to and from the quantized IR (Quant nodes with
 * qo_quant on their results, passes/quant/qgraph.h).
 *
 * Numerics (REFERENCE.md §4.2.2). A Quant node computes y = clamp(x / s + z), rounds y, returns
 * (y - z) * s: the zero point is added BEFORE rounding, in float32. QuantizeLinear computes
 * clamp(RNE(x / s)) + z: it is added AFTER rounding. The two agree exactly when z == 0 (every preset
 * but the "shifted" ones), except for the sign of a zero result (Quant gives -0 for small negative x,
 * DequantizeLinear +0) and NaN inputs (Quant propagates NaN, QuantizeLinear gives qmin as onnxruntime
 * does). With z != 0 x / s + z is rounded to float32 before the tie decision, so an input a few ulps
 * above or below a tie rounds differently (tests/qcdq measures it). Hence:
 *  - lower-qcdq writes every activation quantizer with ONNX's order (the written file has ONNX's
 *    meaning; qopt runs the lowered IR with the same kernels, bit-identically to onnxruntime). For
 *    z != 0 it notes the difference. Constant inputs (weights, biases) are quantized at compile time
 *    with the Quant node's own semantics and stored as integers, so they are exact in every case,
 *    whatever the rounding mode or bit width (also 1-bit bipolar weights, stored as -1/+1).
 *  - import-quant turns a chain into a Quant node only where both forms give the same values on every
 *    input: activations with zero point 0, and constants after checking every element. Other chains
 *    stay as they are (with a warning), and lower-qcdq writes them back unchanged.
 * Library rules: nothing here prints or exits; errors name file, node and op. */
#ifndef QOPT_BACKENDS_QCDQ_H
#define QOPT_BACKENDS_QCDQ_H

#include "ir/ir.h"

/* import-quant: QCDQ/QDQ chains (QuantizeLinear -> [Clip] -> DequantizeLinear on activations; integer
 * initializer (or Constant) -> [Clip] -> DequantizeLinear for weights and biases, also DequantizeLinear
 * alone) and imported QONNX Quant nodes become Quant nodes with qo_quant on their results. Legal only
 * when exact: a chain that is not representable (zero point != 0 on an activation, Clip bounds that are
 * no (bits, signed, narrow) range, scales that differ between Q and DQ, an integer tensor read by
 * something else, a constant whose values a Quant node would not reproduce) is left alone with a
 * warning naming it. *nimported (may be NULL) receives the number of Quant nodes created or annotated.
 * Adds the qonnx domain opset import when it creates a Quant node. Errors only for broken IR. */
qo_status qo_import_quant(qo_ctx *cx, qo_graph *g, uint32_t *nimported);

typedef struct qo_qcdq_opts {
    int opset; /* 0 = max(13, the model's) */
} qo_qcdq_opts;

/* lower-qcdq: every Quant node of every graph of m -> QCDQ as Brevitas emits it:
 *   activations  QuantizeLinear(x, s, zp[int8|uint8]) -> Clip(min_int, max_int) when narrow or
 *                bits != 8 -> DequantizeLinear(s, zp); per-axis scales become 1-D with `axis`;
 *                9..16 bits use int16/uint16 when the opset is 21; as onnxruntime has no int16 Clip,
 *                the clamp (narrow or bits != 16) is a float Clip after DequantizeLinear with the
 *                dequantized bounds (exact: DequantizeLinear is monotonic), per-tensor only;
 *   constants    an integer initializer (int8/uint8, Clip as above; int32 with zero point 0 and no
 *                Clip above 8 bits) -> DequantizeLinear.
 * qonnx Trunc nodes (Brevitas's truncating average pool) become their exact float formula
 * (Div, Add, Round, Div, Clip, Round/Floor/Ceil, Sub, Mul), not Brevitas's QuantizeLinear by the output
 * scale, which double-rounds. Errors, each naming the node and op and suggesting --format qonnx:
 * an activation quantizer with a rounding mode other than half-even, with 1 bit, with more than 8 bits
 * (16 at opset 21; per-tensor only above 8 bits when a clamp is needed), a zero point outside the
 * integer type, a pending (uncalibrated) quantizer, BipolarQuant; an opset outside 13..21, or raising the
 * model's opset over an op whose inputs changed in between (Squeeze, Split, ... below 13). Every node
 * is checked before anything is rewritten, so on error the module is unchanged (and the driver writes
 * nothing). A graph input with a default initializer that only a quantizer reads (Brevitas's QONNX lists
 * biases so) counts as a constant and becomes an integer initializer, as in Brevitas's QCDQ.
 * Sets the default-domain opset, and drops the qonnx opset imports when no qonnx node remains. */
qo_status qo_lower_qcdq(qo_ctx *cx, qo_module *m, const qo_qcdq_opts *o);

#endif
