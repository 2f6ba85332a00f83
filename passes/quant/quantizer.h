/* passes/quant/quantizer.h — the quantizer core: specs, Brevitas presets, weight/bias quantization
 * and streaming activation statistics, with Brevitas v0.12's exact float32 semantics.
 *
 * What Brevitas computes (BREV = Xilinx/brevitas @ v0.12.0; see shared/REFERENCE.md §3, §4):
 *   threshold  = IntScaling: -min_int for signed (2^(b-1), or 2^(b-1)-1 when narrow), max_int for
 *                unsigned (2^b-1, or 2^b-2 when narrow)              (core/scaling/int_scaling.py)
 *                power-of-two scale: PowerOfTwoIntScaling = max_int(signed, narrow=False)+1, itself
 *                restricted, i.e. 2^(b-1) signed / 2^b unsigned
 *   scale      = restrict(max(stat, 1e-10)) / threshold, float32    (core/scaling/runtime.py
 *                _StatsScaling; the clamp is scaling_min_val = 1e-10 of every preset)
 *                restrict: float = identity; po2 = 2^ceil(log2(x)) computed as float32 log2, CeilSte,
 *                2**x                                                (core/restrict_val.py)
 *   int        = clamp(round(x / scale + zp), min_int, max_int): true float32 division, the zero
 *                point added before rounding, round then clamp       (core/quant/int_base.py to_int)
 *   zero point = 0, or (shifted presets) clamp(round(-min / scale), 0, max_int) with min =
 *                min(x) clamped to <= 0 (weights, NegativeMinOrZero) or the low percentile clamped
 *                to <= 0 (activations, NegativePercentileOrZero)    (core/zero_point.py)
 *   stats      absmax: max|x|; minmax: |max(x) - min(min(x), 0)| (AbsMinMax); percentile:
 *                kthvalue(|x|, k) with k = floor(0.01*q*N + 0.5), 1-based, no interpolation
 *                (AbsPercentile); percentile interval: kthvalue(x, floor(0.01*qh*N + 0.5)) -
 *                min(kthvalue(x, ceil(0.01*ql*N)), 0) (PercentileInterval); mse: grid search over
 *                candidates base*i, i = 2..iters, base = absmax/iters (or abs-min-max), keeping the
 *                candidate with the smallest sum of squared fake-quant errors (core/stats/stats_op.py
 *                MSE.mse_grid_search, strict '<')
 *   calibration (activations): one statistic per batch, combined by a true running average
 *                (calibration_mode sets momentum None: buf = buf*(c/(c+1)) + s/(c+1), float32) or by
 *                Brevitas's training-time EMA with momentum 0.1 (buf = buf*0.9 + 0.1*s); the batch
 *                statistic is clamped to 1e-10 before it is accumulated (ParameterFromRuntimeStats-
 *                Scaling.training_forward)
 *
 * Library rules: nothing here prints or exits; errors go through qo_error on the caller's qo_ctx. */
#ifndef QOPT_PASSES_QUANT_QUANTIZER_H
#define QOPT_PASSES_QUANT_QUANTIZER_H

#include "ir/ir.h"
#include "runtime/ref/util.h"
#include "runtime/rt.h"

/* ---- the spec --------------------------------------------------------------------------------- */
typedef enum qo_qrole {
    QO_QROLE_WEIGHT = 0, /* statistics of a constant tensor */
    QO_QROLE_ACT,        /* statistics collected at run time over calibration batches */
    QO_QROLE_BIAS        /* scale = input scale x weight scale (the accumulator's), no statistics */
} qo_qrole;

typedef enum qo_qstat {
    QO_QSTAT_ABSMAX = 0,         /* max |x|                                     (AbsMax) */
    QO_QSTAT_MINMAX,             /* |max(x) - min(min(x), 0)|                   (AbsMinMax) */
    QO_QSTAT_PERCENTILE,         /* kthvalue(|x|, floor(q/100*N + 0.5))         (AbsPercentile) */
    QO_QSTAT_PERCENTILE_INTERVAL,/* high - min(low, 0) over x, not |x|          (PercentileInterval) */
    QO_QSTAT_MSE,                /* grid search on squared error               (MSE, 'grid') */
    QO_QSTAT_NONE                /* bias: no statistic */
} qo_qstat;

typedef enum qo_qzp {
    QO_QZP_ZERO = 0, /* ZeroZeroPoint */
    QO_QZP_STATS     /* shifted: integer zero point from the (negative) minimum / low percentile */
} qo_qzp;

typedef enum qo_qcalib {
    QO_QCALIB_AVERAGE = 0, /* Brevitas calibration_mode: running true average of per-batch stats */
    QO_QCALIB_EMA,         /* Brevitas training-time collection: EMA with `momentum` (default 0.1) */
    QO_QCALIB_GLOBAL       /* not Brevitas: max/min over all data (absmax/minmax only) */
} qo_qcalib;

typedef struct qo_qspec {
    char name[48];       /* preset the spec came from ("" if built by hand) */
    uint8_t role;        /* qo_qrole */
    uint8_t bits;        /* 1..16 for weights/activations, 2..32 for bias */
    bool is_signed;
    bool narrow;         /* signed: min_int = -2^(b-1)+1; unsigned: max_int = 2^b-2 */
    bool per_channel;    /* one scale (and zero point) per index of `axis` */
    bool pow2;           /* scale restricted to a power of two, exponent rounded up (CeilSte) */
    int16_t axis;        /* channel axis when per_channel (0 = output channels of Conv/Gemm(transB)) */
    uint8_t round;       /* qo_round for x/scale (Brevitas presets: half_even) */
    uint8_t stat;        /* qo_qstat */
    uint8_t zp;          /* qo_qzp */
    uint8_t calib;       /* qo_qcalib (activations) */
    double high_q;       /* percentile, in percent (99.999; double: k is computed in double, as Python) */
    double low_q;        /* low percentile for interval / zero point (0.001) */
    float momentum;      /* EMA momentum (0.1) */
    float min_scale;     /* scaling_min_val: the statistic is clamped to at least this (1e-10) */
    uint16_t mse_iters;  /* grid size (Brevitas mse_iters = 20) */
} qo_qspec;

/* Number of presets, and preset i's name (NULL past the end). */
uint32_t qo_qpreset_count(void);
const char *qo_qpreset_name(uint32_t i);
/* Fills *out with the named preset (exact, case-sensitive name); false if unknown. */
bool qo_qspec_preset(const char *name, qo_qspec *out);

/* Parses "NAME[:key=value,...]" (e.g. "int8_weight_per_channel_float:bits=4,narrow=1"). Keys:
 *   bits=N  signed=0|1  narrow=0|1  per_channel=0|1  granularity=tensor|channel  axis=N
 *   scale=float|po2  round=<qo_round name>  stat=absmax|minmax|percentile|percentile_interval|mse
 *   zp=zero|stats  q=PERCENT  low_q=PERCENT  calib=average|ema|global  momentum=F
 *   min_scale=F  mse_iters=N  role=weight|act|bias
 * then validates the result (qo_qspec_check). Unknown preset or key, malformed or out-of-range
 * value: QO_ERR_USAGE naming the offending text. `loc` may be NULL. */
qo_status qo_qspec_parse(qo_ctx *cx, const qo_loc *loc, const char *text, qo_qspec *out);

/* Checks field ranges and combinations (bits per role, per-channel axis >= 0, percentile in
 * (0, 100], zero point only for unsigned, stat allowed for the role, ...). QO_ERR_USAGE if not. */
qo_status qo_qspec_check(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s);

/* Canonical text of a spec: "name:bits=...,..." listing every field (parses back to the same spec). */
void qo_qspec_format(const qo_qspec *s, char *buf, size_t cap);

/* Integer range of the spec (REFERENCE §3.1 table; 1-bit signed is {-1, 0} as Brevitas IntQuant). */
void qo_qspec_int_range(const qo_qspec *s, int64_t *min_int, int64_t *max_int);

/* The divisor `threshold` the statistic is divided by (IntScaling / PowerOfTwoIntScaling, already
 * restricted for po2 specs). */
float qo_qspec_threshold(const qo_qspec *s);

/* Scale from a statistic, Brevitas's order: restrict(max(stat, min_scale)), clamp again, / threshold. */
float qo_qspec_scale_from_stat(const qo_qspec *s, float stat);

/* Zero point (integer code) from the scale and the (<= 0) minimum statistic:
 * clamp(round(-min / scale), min_int, max_int). 0 for QO_QZP_ZERO. */
int32_t qo_qspec_zp_from_min(const qo_qspec *s, float scale, float neg_min);

/* Quantizes one value: clamp(round(x / scale + zp)) as an integer (Brevitas to_int). */
int64_t qo_qspec_to_int(const qo_qspec *s, float x, float scale, int32_t zp);

/* qo_qspec_to_int for loops: the rounding mode and the integer range [lo, hi] (qo_qspec_int_range)
 * given once. NaN gives 0. */
static inline int64_t qo_qspec_to_int_in(float x, float scale, int32_t zp, qo_round mode, int64_t lo, int64_t hi) {
    float y = x / scale;
    y = y + (float)zp;
    y = qo_round_apply(y, mode);
    if (y != y) return 0; /* NaN: Brevitas would propagate it; the integer code is undefined */
    if (y <= (float)lo) return lo;
    if (y >= (float)hi) return hi;
    return (int64_t)y;
}

/* Builds the IR descriptor: bits/signed/narrow/round/pow2 copied; per-tensor: scale and zp; per-
 * channel: `n` scales as an f32 vector constant and the zero points as an i32 vector constant
 * (0 if all zero) added to m's constant pool. */
void qo_qspec_to_quant(const qo_qspec *s, qo_module *m, uint32_t n, const float *scales,
                       const int32_t *zps, qo_quant *out);

/* ---- statistics (stats.c) ---------------------------------------------------------------------- */
/* Brevitas's 1-based k for AbsPercentile / the high side of PercentileInterval:
 * floor(0.01*q*n + 0.5) in double, at least 1 (Brevitas's kthvalue would fail at k = 0). */
int64_t qo_qstat_high_k(double q, int64_t n);
/* k for the low side (NegativePercentileOrZero / PercentileInterval): ceil(0.01*q*n), at least 1. */
int64_t qo_qstat_low_k(double q, int64_t n);
/* k-th smallest (1-based) of x[0..n) (|x| when `absval`), x unchanged; NaNs sort last as torch's
 * kthvalue does. Uses `scratch` (n floats) if given, else allocates. */
float qo_qstat_kth(const float *x, int64_t n, int64_t k, bool absval, float *scratch);

/* Statistic of n contiguous values (the spec's stat; percentiles use s->high_q / s->low_q; MSE
 * runs qo_qstat_mse). When neg_min is not NULL it gets the zero-point statistic, <= 0: for weights
 * min(min(x), 0) (NegativeMinOrZero); for activations the low_q percentile clamped to <= 0
 * (NegativePercentileOrZero), or min(min(x), 0) when the stat is absmax/minmax. `scratch` (n
 * floats) may be NULL (then percentiles allocate). The result is not clamped to min_scale. */
float qo_qstat_slice(const qo_qspec *s, const float *x, int64_t n, float *scratch, float *neg_min);

/* Brevitas MSE grid search (symmetric): init = max|x|, base = init / iters (float32), candidates
 * base*i for i = 2..iters, loss = sum (x - fakequant(x))^2 (summed in double; Brevitas sums in
 * float32, so near-ties may pick the other candidate), the first strictly smaller loss wins, base if
 * none is finite. Weights evaluate a candidate with qo_qspec_scale_from_stat; activations (as
 * ParameterFromRuntimeStatsScaling in local-loss mode) with max(c, min_scale)/threshold, unrestricted.
 * Returns the winning statistic. */
float qo_qstat_mse(const qo_qspec *s, const float *x, int64_t n);

/* Streaming activation statistics: per-tensor, constant memory (a batch's percentile needs a
 * scratch the size of that batch, allocated per call). */
typedef struct qo_qacc {
    qo_qspec spec;
    uint64_t batches; /* batches seen */
    uint64_t count;   /* elements seen */
    float buf;        /* accumulated scale statistic */
    float zbuf;       /* accumulated zero-point statistic (<= 0) */
    float gmin, gmax; /* global min / max over everything seen */
} qo_qacc;

/* Starts an accumulator for activation spec s (per-tensor only; QO_ERR_USAGE otherwise). */
qo_status qo_qacc_init(qo_ctx *cx, qo_qacc *a, const qo_qspec *s);
/* Adds one batch of n values (n > 0). */
qo_status qo_qacc_add(qo_ctx *cx, qo_qacc *a, const float *x, int64_t n);
/* Scale and zero point from what was seen (QO_ERR_USAGE if nothing was). */
qo_status qo_qacc_result(qo_ctx *cx, const qo_qacc *a, float *scale, int32_t *zp);

/* ---- weights and biases (weights.c) ------------------------------------------------------------ */
typedef struct qo_qtensor {
    qo_tensor q;      /* integer codes: i8/u8 up to 8 bits, i16/u16 up to 16, else i32 (same shape) */
    uint32_t nscale;  /* 1 per-tensor, else the extent of the axis */
    float *scales;    /* nscale entries */
    int32_t *zps;     /* nscale entries */
} qo_qtensor;

/* Quantizes a float32 weight tensor w with weight spec s exactly as Brevitas does (statistic per
 * tensor or per index of s->axis, then scale, zero point, codes). Errors name `loc` (the constant's
 * node) — non-f32 input, axis out of range, empty tensor. */
qo_status qo_quant_weight(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s, const qo_tensor *w,
                          qo_qtensor *out);

/* Quantizes a float32 bias (1-D, C entries) with bias spec s: scale[c] = in_scale * w_scales[c]
 * (float32 product; nw == 1 or C), codes clamp(round(b / scale)) (IntBias: signed, zero point 0). */
qo_status qo_quant_bias(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s, const qo_tensor *b,
                        float in_scale, const float *w_scales, uint32_t nw, qo_qtensor *out);

/* Fake-quantizes x in place with scale/zp per index of the spec's axis (or per tensor):
 * (clamp(round(x/s + zp)) - zp) * s, float32 (Brevitas IntQuant.forward). */
qo_status qo_quant_fake(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s, qo_tensor *x,
                        const float *scales, const int32_t *zps, uint32_t nscale);

void qo_qtensor_free(qo_qtensor *t);

#endif
