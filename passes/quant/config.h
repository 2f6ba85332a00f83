/* passes/quant/config.h — what insert-quant quantizes and how: the quantization config (defaults,
 * JSON file, CLI overrides) and the two passes that read it (insert-quant, quant-prop).
 * File format and policy: docs/QUANT_CONFIG.md. Library rules: nothing here prints or exits. */
#ifndef QOPT_PASSES_QUANT_CONFIG_H
#define QOPT_PASSES_QUANT_CONFIG_H

#include "passes/quant/quantizer.h"

/* Which ops an already-quantized activation is looked through when deciding whether a layer's
 * input (or an output) still needs a quantizer. */
typedef enum qo_qcarry {
    QO_QCARRY_BREVITAS = 0, /* Brevitas v0.12 graph mode: MaxPool, Identity, DepthToSpace/SpaceToDepth
                               (PixelShuffle), Reshape (view/reshape), Transpose (permute/transpose);
                               NOT Flatten (nn.Flatten is a module Brevitas does not traverse) */
    QO_QCARRY_ALL           /* everything quant-prop carries: the above plus Flatten, Squeeze,
                               Unsqueeze, Slice, Pad with 0, nearest Resize, Relu on unsigned */
} qo_qcarry;

/* Which activation ops get a quantizer on their result (Brevitas QUANT_ACT_MAP). */
typedef enum qo_qactops {
    QO_QACTOPS_BREVITAS = 0, /* Relu and Clip with min >= 0 (ReLU6): unsigned; Sigmoid: unsigned;
                                Clip with min < 0 and a max (Hardtanh): signed */
    QO_QACTOPS_RELU          /* only Relu and Clip with min >= 0 (unsigned) */
} qo_qactops;

/* One rule of the "rules" list: applies to nodes whose op type equals `op` (if set) and whose name
 * matches the fnmatch glob `name` (if set). Later rules override earlier ones field by field. */
typedef struct qo_qrule {
    char *op;            /* ONNX op type, exact ("Conv"), or NULL */
    char *name;          /* fnmatch(3) glob on the node name (e.g. "fc2*"), or NULL */
    bool exclude;        /* "exclude": the node gets no quantizers at all */
    bool has_weights, has_acts, has_bias;
    bool weights_axis;   /* the weights spec text set axis= (else the layer's channel axis) */
    qo_qspec weights, acts, bias;
    int32_t bits;        /* "bits": weight and act bits of the node (0 = keep); applied after specs */
    uint32_t line;       /* line in the config file (0 if not from a file) */
} qo_qrule;

typedef struct qo_qconfig {
    qo_qspec weights;       /* "weights" (default int8_weight_per_channel_float) */
    qo_qspec acts;          /* "acts" (default int8_act_per_tensor_float; forced signed, unsigned
                               after ReLU-like ops) */
    qo_qspec bias;          /* "bias" (default int32_bias) */
    bool weights_axis;      /* weights spec text set axis= explicitly (else the layer's axis) */
    bool input_quant;       /* "input_quant": signed quantizer on each float graph input (true) */
    bool output_quant;      /* "output_quant": signed quantizer on each graph output (true) */
    bool layer_input_quant; /* "layer_input_quant": signed quantizer on unquantized layer inputs (true) */
    bool relu_quant;        /* "relu_quant": quantizer after activation ops (act_ops), unsigned after
                               ReLU-like ones (true) */
    bool align_residual;    /* "align_residual": Add/Sub/Concat inputs quantized in one group (true) */
    bool add_output_quant;  /* "add_output_quant": requantize an Add/Sub whose result feeds anything
                               but an activation quantizer (Brevitas add_output_quant_handler) (true) */
    bool keep_first_last_8bit; /* "keep_first_last_8bit": first/last weighted layer at 8 bits (false) */
    int32_t io_bits;        /* "io_bits": bits of the signed graph-input, layer-input and output
                               quantizers (Brevitas QuantIdentity); 0 = the acts spec's (0) */
    uint8_t carry;          /* "carry": qo_qcarry, "brevitas" (default) or "all" */
    uint8_t act_ops;        /* "act_ops": qo_qactops, "brevitas" (default) or "relu" */
    qo_qrule *rules;        /* "rules" */
    uint32_t nrules;
    char *source;           /* last file loaded (for messages), or NULL */
} qo_qconfig;

/* Fills c with the defaults above (Brevitas v0.12 graph-mode PTQ): weights
 * int8_weight_per_channel_float, acts int8_act_per_tensor_float (unsigned after ReLU), bias
 * int32_bias, input/output/layer-input/activation quantizers, residual alignment and add
 * requantization on, carry and act_ops "brevitas", no rules. Free with qo_qconfig_free. */
void qo_qconfig_default(qo_qconfig *c);

/* Reads the JSON config file at path and overrides the fields it names (rules are appended).
 * Malformed JSON (file:line:col), unknown keys, wrong value types, unknown presets and bad spec
 * fields are QO_ERR_USAGE naming the file, the key and its line; c is left unchanged then. */
qo_status qo_qconfig_load(qo_ctx *cx, const char *path, qo_qconfig *c);

/* Sets one top-level field from text: "weights", "acts", "bias" take a spec text (the CLI's
 * --weights/--acts/--bias, parsed by qo_qspec_parse); the boolean keys take 0/1/true/false;
 * "io_bits" an integer; "carry" brevitas|all; "act_ops" brevitas|relu. Unknown key or bad value: QO_ERR_USAGE. */
qo_status qo_qconfig_set(qo_ctx *cx, qo_qconfig *c, const char *key, const char *value);

/* Frees what c owns (rules, source); c can be reused after qo_qconfig_default. */
void qo_qconfig_free(qo_qconfig *c);

/* Parses a spec text for config key `key` ("weights"/"acts"/"bias"): the preset's role must match
 * the key. *axis_set tells whether the text set axis= explicitly. loc may be NULL. */
qo_status qo_qconfig_parse_spec(qo_ctx *cx, const qo_loc *loc, const char *key, const char *text,
                                qo_qspec *out, bool *axis_set);

/* Inserts the quantizers of c's policy into g (the main graph; run canonicalize, shape-infer,
 * const-fold and fold-bn first so ranks and constant weights are known). Weight quantizers are
 * resolved now (qo_quant_weight); activation and bias quantizers are pending. *ninserted (may be
 * NULL) gets the number of Quant nodes inserted. Policy: docs/QUANT_CONFIG.md. */
qo_status qo_insert_quant(qo_ctx *cx, qo_graph *g, const qo_qconfig *c, uint32_t *ninserted);

/* Propagates QuantTensor metadata (types only, no nodes) through ops that do not change
 * quantization; see passes/quant/quant_prop.c for the exact list. */
qo_status qo_quant_prop(qo_ctx *cx, qo_graph *g);

#endif
