/* passes/quant/quantize.h — the `qopt quantize` driver as a C API: float model in, quantized model
 * out, with a per-layer report. Steps (each also a pass of its own, see `qopt passes`):
 *
 *   canonicalize, shape-infer, const-fold, fold-bn, dce      float preprocessing
 *   insert-quant (config)                                      weights quantized, acts/bias pending
 *   calibrate (data) | data-free ranges (warned)               activation scales
 *   quant-bias                                                 int32 bias scales = s_in x s_w
 *   bias-correct (data, optional)                              Brevitas bias correction
 *   quant-prop                                                 QuantTensor metadata through the graph
 *   report                                                     per-layer SQNR vs the float model
 * and qo_quantize_write lowers to the output format (QCDQ or QONNX) and writes atomically.
 * Library rules: nothing printed (progress goes to the callback), errors through cx. */
#ifndef QOPT_PASSES_QUANT_QUANTIZE_H
#define QOPT_PASSES_QUANT_QUANTIZE_H

#include "ir/ir.h"

typedef enum qo_qformat { QO_QFORMAT_QCDQ = 0, QO_QFORMAT_QONNX } qo_qformat;

typedef struct qo_quantize_opts {
    const char *weights, *acts, *bias; /* spec texts (NAME[:key=value,...]) or NULL for the defaults */
    const char *config;                /* JSON config file (docs/QUANT_CONFIG.md) or NULL */
    const char *const *set;            /* extra config overrides "key=value" (applied last) */
    uint32_t nset;
    const char *calib;                 /* .npy / .npz / directory of .npy, or NULL: data-free */
    int64_t batch;                     /* calibration batch size (0 = 64) */
    int64_t max_samples;               /* use at most this many calibration samples (0 = all) */
    bool no_bias_correction;           /* skip bias correction (it runs by default with data) */
    bool no_fold_bn;                   /* keep BatchNormalization unfolded */
    bool no_report;                    /* skip the SQNR pass over the data */
    int threads;                       /* 0 = all cores */
    qo_qformat format;
    int opset;                         /* QCDQ opset (0 = max(13, model's)) */
    /* progress: phase ("calibrate", "bias-correct", "report"), samples done, total (-1 unknown) */
    void (*progress)(void *user, const char *phase, int64_t done, int64_t total);
    void *progress_user;
} qo_quantize_opts;

/* One row of the report: a weighted layer (Conv, ConvTranspose, Gemm, MatMul) or a graph output. */
typedef struct qo_qlayer {
    char name[96];        /* node name (or output name) */
    char op[24];
    int wbits;            /* weight bits, 0 = not quantized */
    bool w_signed, w_per_channel;
    float wscale_min, wscale_max;
    int abits;            /* bits of the quantized activation input, 0 = none */
    bool a_signed;
    float ascale;         /* its scale (per-tensor) */
    int bbits;            /* bias bits, 0 = none */
    double sqnr_db;       /* 10 log10(sum f^2 / sum (f - q)^2) over the data; NAN if not measured,
                             INFINITY when identical */
} qo_qlayer;

typedef struct qo_quantize_report {
    qo_qlayer *layers;    /* weighted layers in program order, then graph outputs */
    uint32_t nlayers;
    uint32_t nquantizers; /* Quant nodes in the result */
    int64_t samples;      /* calibration samples used (0: data-free) */
    bool datafree;
    bool prequantized;    /* the input was already quantized: its quantizers were imported and kept */
    double t_prep, t_insert, t_calib, t_bias, t_report; /* seconds */
} qo_quantize_report;

/* Quantizes m's main graph in place (the result is the quantized IR: Quant nodes with qo_quant).
 * A model that already holds quantizers (QCDQ/QDQ chains, QONNX Quant nodes) is not quantized again:
 * import-quant turns them into Quant nodes (rep->prequantized), so writing re-expresses the same model.
 * rep may be NULL. On error m is in an unspecified state: discard it. */
qo_status qo_quantize(qo_ctx *cx, qo_module *m, const qo_quantize_opts *o, qo_quantize_report *rep);

/* Lowers a quantized module to o->format (QCDQ: lower-qcdq; QONNX: the qopt_* attributes dropped) and
 * writes it to path through a temporary file (no output at all on error). m is modified. */
qo_status qo_quantize_write(qo_ctx *cx, qo_module *m, const char *path, const qo_quantize_opts *o);

/* The report as JSON text (malloc'd, NUL-terminated) — what `qopt quantize --report` writes. */
char *qo_quantize_report_json(const qo_quantize_report *rep, const char *input, const char *output);

void qo_quantize_report_free(qo_quantize_report *rep);

#endif
