/* passes/quant/calib.h — calibration (activation scales from data or without data), bias
 * quantization and bias correction over the quantized IR (passes/quant/qgraph.h).
 *
 * What is reproduced (Brevitas v0.12.0, src/brevitas/graph/calibrate.py):
 *  - calibrate = calibration_mode: activation, weight and bias quantization are all disabled while
 *    calibrating (quantization_status_manager(disable_act_quant=True, disable_weight_quant=True,
 *    disable_bias_quant=True)), so every activation quantizer sees the float network's activations.
 *    Each pending activation quantizer gets one statistic per batch, combined by its spec's rule
 *    (qo_qacc: the true running average of calibration_mode by default). Quantizers sharing a
 *    "qopt_group" feed one accumulator, each member's batch statistic in turn in graph order, as
 *    Brevitas's shared quantizer module sees every call; each member's scale is that statistic over
 *    its own threshold (members may differ in sign or bits, as with Brevitas's aligned inputs). The network runs in the LLVM JIT one batch
 *    at a time: memory does not grow with the number of samples.
 *  - quant-bias: bias scale[c] = input scale x weight scale[c] (float32 product), codes
 *    clamp(round(b / scale)) (IntBias), as Brevitas's export of int32 biases.
 *  - bias-correct = bias_correction_mode (_BiasCorrection): quantization on; every Conv /
 *    ConvTranspose / Gemm with a bias and a quantized weight runs twice on the same (quantized)
 *    input: with float weight and bias, and as quantized. Per batch, the error per output channel is
 *    mean(float out) - mean(quant out) over batch and spatial dims; errors are summed over batches
 *    (float32) and divided by the number of batches. Conv (1-D, 2-D) and Gemm layers get the same
 *    error without running twice: it is linear in the weight and bias differences, so it follows
 *    from the mean input patch (bias_correct.c). Downstream layers see the float output (as
 *    Brevitas's hook returns it), so errors do not accumulate. The mean correction is finally added
 *    to the float bias, which is re-quantized with the same scales. A layer without a bias gets one
 *    (Brevitas's skip_if_no_bias=False), int32-quantized when its input is quantized.
 * Library rules: nothing here prints or exits. */
#ifndef QOPT_PASSES_QUANT_CALIB_H
#define QOPT_PASSES_QUANT_CALIB_H

#include "ir/ir.h"
#include "runtime/rt.h"

typedef struct qo_batch_source {          /* a stream of calibration batches for the main graph's inputs */
    /* Fills in[0..nin) with the next batch (tensors owned by the source, valid until the next call);
       *nsamples = batch size, 0 at the end of the data. */
    qo_status (*next)(void *user, qo_ctx *cx, qo_tensor *in, uint32_t nin, int64_t *nsamples);
    qo_status (*rewind)(void *user, qo_ctx *cx);   /* start again (bias correction is a second pass) */
    void *user;
    int64_t total;                          /* samples in all, -1 if unknown (progress) */
} qo_batch_source;

/* A source slicing caller-owned tensors x[0..nin) (one per graph input, samples along axis 0, all
 * with the same number of samples, rank >= 1) into batches of `batch` samples (the last one may be
 * shorter). The tensors must outlive the source; the batches are views into them. QO_ERR_USAGE on
 * batch < 1, nin == 0 or mismatched sample counts. Free with qo_batch_source_free. */
qo_status qo_batch_source_tensors(qo_ctx *cx, const qo_tensor *x, uint32_t nin, int64_t batch, qo_batch_source *out);
/* A source reading a sample file one batch at a time (runtime/dataset.h: .npy, .npz, or a directory
 * of .npy files), so memory is O(batch). nin arrays; names[i] is the .npz member of array i (names
 * may be NULL: the only member, or "x"; e.g. pass the graph input names for several inputs).
 * Errors name the file. */
qo_status qo_batch_source_file(qo_ctx *cx, const char *path, uint32_t nin, const char *const *names, int64_t batch,
                               qo_batch_source *out);
/* Frees what qo_batch_source_tensors / qo_batch_source_file allocated (not the caller's tensors);
 * zeroes *s. NULL and zeroed sources are fine. */
void qo_batch_source_free(qo_batch_source *s);

typedef struct qo_calib_opts {
    int threads;                            /* JIT runtime threads, 0 = all */
    void (*progress)(void *user, int64_t done, int64_t total);   /* may be NULL; called after each batch */
    void *progress_user;
    bool interp;                            /* run the reference interpreter instead of the JIT (slower; its
                                               scalar Conv/Gemm sums are the ones test_brevitas_calib
                                               measured against PyTorch) */
} qo_calib_opts;

/* Resolves every pending activation quantizer of m's main graph from the batches of src (rewound
 * first) with its spec's statistic and calibration rule (see the header comment). Each batch is
 * checked against the graph inputs' declared element types and ranks/static dims (except axis 0): a
 * mismatch is QO_ERR_USAGE naming the input with the expected and the given shape. No data at all,
 * or no pending activation quantizer reached by data, is an error / a no-op respectively. o may be
 * NULL (defaults). */
qo_status qo_calibrate(qo_ctx *cx, qo_module *m, qo_batch_source *src, const qo_calib_opts *o);

/* Resolves pending activation quantizers without calibration data, and says so through warnings:
 *  - a quantizer whose input is a BatchNormalization result (optionally through Relu/Clip; with
 *    qo_calibrate_datafree_bn also a BN folded by fold-bn, found by its result's name) takes
 *    its range from BN's beta and |gamma| per channel: max_c |beta_c| + 3|gamma_c| for signed
 *    quantizers, max_c max(beta_c + 3|gamma_c|, 0) for unsigned (the +-3 sigma interval of the
 *    normalized output), turned into a scale by the spec (qo_qspec_scale_from_stat);
 *  - every other one is calibrated (as qo_calibrate) on 4 batches of 8 seeded N(0, 1) samples per
 *    graph input (dynamic dims taken as 1), which says little about real data.
 * One warning per quantizer names the method. o may be NULL. */
qo_status qo_calibrate_datafree(qo_ctx *cx, qo_module *m, const qo_calib_opts *o);

/* BatchNormalization ranges recorded before fold-bn, for qo_calibrate_datafree_bn: fold-bn gives
 * the folded result the BN result's name, so the table is keyed by that name. */
typedef struct qo_calib_bn_ranges qo_calib_bn_ranges;
/* Records every BatchNormalization of g with constant gamma/beta and a named result. Never NULL;
 * free with qo_calib_bn_free (NULL is fine). */
qo_calib_bn_ranges *qo_calib_bn_collect(const qo_graph *g);
void qo_calib_bn_free(qo_calib_bn_ranges *t);
/* qo_calibrate_datafree with BN ranges from `bn` (collected before fold-bn) instead of from the
 * BatchNormalization nodes still in the graph; bn may be NULL (synthetic data everywhere). */
qo_status qo_calibrate_datafree_bn(qo_ctx *cx, qo_module *m, const qo_calib_bn_ranges *bn, const qo_calib_opts *o);

/* Resolves every pending bias quantizer of g read as the bias (input 2) of a Conv, ConvTranspose or
 * Gemm: scale[c] = input scale x weight scale[c] in float32 (one scale if the weight is per-tensor),
 * the input scale taken from the qo_quant of the layer's activation input (or of the quantizer it
 * comes from through MaxPool/Flatten/Reshape/Transpose/Squeeze/Unsqueeze/Identity), the weight
 * scales from the weight's Quant node. Errors name the layer: an input without a per-tensor quantized
 * type ("input scale required for bias quantization", Brevitas's "Input scale required for bias
 * export"), a weight that is not quantized, a bias that is not a float32 constant.
 * (Named qo_quant_bias_graph because qo_quant_bias is quantizer.h's tensor-level function.) */
qo_status qo_quant_bias_graph(qo_ctx *cx, qo_graph *g);

/* Brevitas bias correction (see the header comment) over the batches of src (rewound first): every
 * Conv/ConvTranspose/Gemm of the main graph with a quantized weight and either a constant float bias
 * behind a resolved bias quantizer or no bias gets bias + mean error (the bias constant replaced; the
 * quantizer keeps its scales), or a new bias = mean error (int32_bias when the input is quantized,
 * else float with a warning). Needs every activation quantizer resolved
 * (qo_calibrate first) and the biases quantized (qo_quant_bias_graph first); a pending one is an
 * error naming it. o may be NULL. */
qo_status qo_bias_correct(qo_ctx *cx, qo_module *m, qo_batch_source *src, const qo_calib_opts *o);

/* ---- internal: shared by calibrate.c and bias_correct.c (and their tests) ---------------------- */
/* A private copy of m, printed and parsed back (constants inline if the file references do not parse). */
qo_status qo_calib_clone(qo_ctx *cx, const qo_module *m, qo_module **out);
/* Node map a -> b for two graphs with the same program order (a clone): indexed by a's node ids,
 * a->nnodes + 1 entries (malloc'd; free with qo_free). */
qo_node *qo_calib_node_map(const qo_graph *a, const qo_graph *b);
/* The value of b corresponding to value v of a (node results by the map, inputs by position,
 * constants by name); 0 if none. */
qo_val qo_calib_map_val(const qo_graph *a, const qo_graph *b, const qo_node *map, qo_val v);
/* Checks a batch fed to main-graph input i of m: element type, rank, static dims after axis 0.
 * QO_ERR_USAGE naming the input, with the expected and the given shape. */
qo_status qo_calib_check_input(qo_ctx *cx, const qo_module *m, uint32_t i, const qo_tensor *t);
/* Called once per batch with the batch inputs and the variant's outputs (valid during the call). */
typedef qo_status (*qo_calib_batch_fn)(void *user, qo_ctx *cx, const qo_tensor *in, uint32_t nin, qo_tensor *out,
                                       uint32_t nout, int64_t nsamples);
/* Rewinds src and runs `variant` (same inputs as `orig`, which names them in errors) in the JIT on
 * every batch, one at a time (one compiled graph per batch size, at most two alive), calling fn.
 * Progress goes to o->progress. No batch at all is an error. *nbatches (may be NULL) gets the count. */
qo_status qo_calib_run(qo_ctx *cx, const qo_module *orig, const qo_module *variant, qo_batch_source *src,
                       const qo_calib_opts *o, qo_calib_batch_fn fn, void *user, int64_t *nbatches);
/* The per-tensor scale and zero point of activation v: its type's qo_quant, or that of the Quant node
 * it comes from through ops that keep values (MaxPool, Flatten, Reshape, Transpose, Squeeze,
 * Unsqueeze, Identity, Dropout, Slice, DepthToSpace, SpaceToDepth). false if none or per-axis. */
bool qo_calib_input_scale(const qo_graph *g, qo_val v, float *scale, int32_t *zp);
/* True for the ops whose output has their input 0's scale and zero point (MaxPool, the reshape
 * family, Slice, Identity, Dropout, depth/space moves): the walk of qo_calib_input_scale. */
bool qo_quant_keeps_scale(qo_op op);
/* The pass forms' data source: the `data` option's file (the model must have one input), read in
 * batches of the `batch` option (qo_batch_source_file). */
struct qo_pass_ctx;
qo_status qo_calib_load_source(struct qo_pass_ctx *pc, qo_batch_source *src);

#endif
