/* passes/quant/presets.c — Brevitas quantizer presets, the spec parser, and the scalar formulas
 * (integer range, threshold, scale from a statistic, zero point, to_int, IR descriptor).
 *
 * Each preset row cites the Brevitas v0.12.0 class it mirrors (src/brevitas/quant/{scaled_int,
 * fixed_point,shifted_scaled_int}.py, built from the fragments in quant/base.py):
 *   NarrowIntQuant  signed, narrow       IntQuant  signed, not narrow     UintQuant  unsigned
 *   MaxStatsScaling abs-max (weights)    ParamFromRuntimePercentileScaling 99.999th percentile
 *   MinMaxStatsScaling AbsMinMax         ParamFromRuntimePercentileIntervalScaling 0.001..99.999
 *   Per{Tensor,Channel}FloatScaling8bit  float scale;  Per{Tensor,Channel}PoTScaling8bit  po2, CeilSte
 *   ShiftedMinUintQuant zp from NegativeMinOrZero; ShiftedParamFromPercentileUintQuant zp from
 *   NegativePercentileOrZero(0.001); every preset: ROUND (half even), scaling_min_val 1e-10. */
#include "passes/quant/quantizer.h"
#include "runtime/ref/util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HQ 99.999
#define LQ 0.001

typedef struct preset {
    const char *name;
    uint8_t role, bits;
    bool is_signed, narrow, per_channel, pow2;
    uint8_t stat, zp;
} preset;

static const preset PRESETS[] = {
    /* scaled_int.py */
    {"int8_weight_per_tensor_float", QO_QROLE_WEIGHT, 8, true, true, false, false, QO_QSTAT_ABSMAX, QO_QZP_ZERO},
    {"int8_weight_per_channel_float", QO_QROLE_WEIGHT, 8, true, true, true, false, QO_QSTAT_ABSMAX, QO_QZP_ZERO},
    {"int8_weight_per_tensor_float_mse", QO_QROLE_WEIGHT, 8, true, true, false, false, QO_QSTAT_MSE, QO_QZP_ZERO},
    {"int8_weight_per_channel_float_mse", QO_QROLE_WEIGHT, 8, true, true, true, false, QO_QSTAT_MSE, QO_QZP_ZERO},
    {"int8_act_per_tensor_float", QO_QROLE_ACT, 8, true, false, false, false, QO_QSTAT_PERCENTILE, QO_QZP_ZERO},
    {"uint8_act_per_tensor_float", QO_QROLE_ACT, 8, false, false, false, false, QO_QSTAT_PERCENTILE, QO_QZP_ZERO},
    {"int8_act_per_tensor_float_mse", QO_QROLE_ACT, 8, true, false, false, false, QO_QSTAT_MSE, QO_QZP_ZERO},
    {"uint8_act_per_tensor_float_mse", QO_QROLE_ACT, 8, false, false, false, false, QO_QSTAT_MSE, QO_QZP_ZERO},
    /* shifted_scaled_int.py */
    {"shifted_uint8_act_per_tensor_float", QO_QROLE_ACT, 8, false, false, false, false, QO_QSTAT_PERCENTILE_INTERVAL, QO_QZP_STATS},
    {"shifted_uint8_weight_per_tensor_float", QO_QROLE_WEIGHT, 8, false, false, false, false, QO_QSTAT_MINMAX, QO_QZP_STATS},
    {"shifted_uint8_weight_per_channel_float", QO_QROLE_WEIGHT, 8, false, false, true, false, QO_QSTAT_MINMAX, QO_QZP_STATS},
    {"shifted_uint8_act_per_tensor_fixed_point", QO_QROLE_ACT, 8, false, false, false, true, QO_QSTAT_PERCENTILE_INTERVAL, QO_QZP_STATS},
    /* fixed_point.py */
    {"int8_weight_per_tensor_fixed_point", QO_QROLE_WEIGHT, 8, true, true, false, true, QO_QSTAT_ABSMAX, QO_QZP_ZERO},
    {"int8_weight_per_channel_fixed_point", QO_QROLE_WEIGHT, 8, true, true, true, true, QO_QSTAT_ABSMAX, QO_QZP_ZERO},
    {"int8_act_per_tensor_fixed_point", QO_QROLE_ACT, 8, true, false, false, true, QO_QSTAT_PERCENTILE, QO_QZP_ZERO},
    {"uint8_act_per_tensor_fixed_point", QO_QROLE_ACT, 8, false, false, false, true, QO_QSTAT_PERCENTILE, QO_QZP_ZERO},
    /* IntBias family: scale = accumulator scale, IntQuant (signed, not narrow) */
    {"int32_bias", QO_QROLE_BIAS, 32, true, false, false, false, QO_QSTAT_NONE, QO_QZP_ZERO},
    {"int24_bias", QO_QROLE_BIAS, 24, true, false, false, false, QO_QSTAT_NONE, QO_QZP_ZERO},
    {"int16_bias", QO_QROLE_BIAS, 16, true, false, false, false, QO_QSTAT_NONE, QO_QZP_ZERO},
    {"int8_bias", QO_QROLE_BIAS, 8, true, false, false, false, QO_QSTAT_NONE, QO_QZP_ZERO},
};
#define NPRESETS (sizeof PRESETS / sizeof PRESETS[0])

uint32_t qo_qpreset_count(void) { return (uint32_t)NPRESETS; }

const char *qo_qpreset_name(uint32_t i) { return i < NPRESETS ? PRESETS[i].name : NULL; }

bool qo_qspec_preset(const char *name, qo_qspec *out) {
    for (size_t i = 0; i < NPRESETS; i++) {
        const preset *p = &PRESETS[i];
        if (strcmp(p->name, name) != 0) continue;
        memset(out, 0, sizeof *out);
        snprintf(out->name, sizeof out->name, "%s", p->name);
        out->role = p->role;
        out->bits = p->bits;
        out->is_signed = p->is_signed;
        out->narrow = p->narrow;
        out->per_channel = p->per_channel;
        out->pow2 = p->pow2;
        out->axis = 0;
        out->round = QO_ROUND_HALF_EVEN;
        out->stat = p->stat;
        out->zp = p->zp;
        out->calib = QO_QCALIB_AVERAGE;
        out->high_q = HQ;
        out->low_q = LQ;
        out->momentum = 0.1f;
        out->min_scale = 1e-10f;
        out->mse_iters = 20;
        return true;
    }
    return false;
}

/* ---- enum names ------------------------------------------------------------------------------- */
static const char *const ROLE_NAMES[] = {"weight", "act", "bias"};
static const char *const STAT_NAMES[] = {"absmax", "minmax", "percentile", "percentile_interval", "mse",
                                         "none"};
static const char *const ZP_NAMES[] = {"zero", "stats"};
static const char *const CALIB_NAMES[] = {"average", "ema", "global"};

static int name_index(const char *const *names, int n, const char *s) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

/* ---- parsing ---------------------------------------------------------------------------------- */
static qo_status usage(qo_ctx *cx, const qo_loc *loc, const char *fmt, ...) QO_PRINTF(3, 4);
static qo_status usage(qo_ctx *cx, const qo_loc *loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    qo_status s = qo_verror(cx, QO_ERR_USAGE, loc, fmt, ap);
    va_end(ap);
    return s;
}

static bool parse_i64(const char *v, int64_t *out) {
    if (!*v) return false;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end) return false;
    *out = x;
    return true;
}

static bool parse_f(const char *v, float *out) {
    if (!*v) return false;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x)) return false;
    *out = (float)x;
    return true;
}

static bool parse_d(const char *v, double *out) {
    if (!*v) return false;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || !isfinite(x)) return false;
    *out = x;
    return true;
}

static bool parse_bool(const char *v, bool *out) {
    if (!strcmp(v, "1") || !strcmp(v, "true")) *out = true;
    else if (!strcmp(v, "0") || !strcmp(v, "false")) *out = false;
    else return false;
    return true;
}

static qo_status set_key(qo_ctx *cx, const qo_loc *loc, const char *spec, qo_qspec *s, const char *k,
                         const char *v) {
    int64_t i;
    float f;
    double dv;
    bool b;
    int e;
#define BAD(what) usage(cx, loc, "quantizer spec '%s': bad value '%s' for '%s' (expected %s)", spec, v, k, what)
    if (!strcmp(k, "bits")) {
        if (!parse_i64(v, &i)) return BAD("an integer");
        if (i < 1 || i > 32) return usage(cx, loc, "quantizer spec '%s': bits=%s out of range 1..32", spec, v);
        s->bits = (uint8_t)i;
    } else if (!strcmp(k, "signed")) {
        if (!parse_bool(v, &b)) return BAD("0 or 1");
        s->is_signed = b;
    } else if (!strcmp(k, "narrow")) {
        if (!parse_bool(v, &b)) return BAD("0 or 1");
        s->narrow = b;
    } else if (!strcmp(k, "per_channel")) {
        if (!parse_bool(v, &b)) return BAD("0 or 1");
        s->per_channel = b;
    } else if (!strcmp(k, "granularity")) {
        if (!strcmp(v, "tensor")) s->per_channel = false;
        else if (!strcmp(v, "channel")) s->per_channel = true;
        else return BAD("tensor or channel");
    } else if (!strcmp(k, "axis")) {
        if (!parse_i64(v, &i)) return BAD("an integer");
        if (i < 0 || i >= QO_MAX_RANK)
            return usage(cx, loc, "quantizer spec '%s': axis=%s out of range 0..%d", spec, v, QO_MAX_RANK - 1);
        s->axis = (int16_t)i;
    } else if (!strcmp(k, "scale")) {
        if (!strcmp(v, "float")) s->pow2 = false;
        else if (!strcmp(v, "po2")) s->pow2 = true;
        else return BAD("float or po2");
    } else if (!strcmp(k, "round")) {
        if ((e = qo_round_from_name(v)) < 0)
            return BAD("half_even, half_up, half_down, ceil, floor, up, down, half_pos_inf or dpu");
        s->round = (uint8_t)e;
    } else if (!strcmp(k, "stat")) {
        if ((e = name_index(STAT_NAMES, 6, v)) < 0)
            return BAD("absmax, minmax, percentile, percentile_interval, mse or none");
        s->stat = (uint8_t)e;
    } else if (!strcmp(k, "zp")) {
        if ((e = name_index(ZP_NAMES, 2, v)) < 0) return BAD("zero or stats");
        s->zp = (uint8_t)e;
    } else if (!strcmp(k, "calib")) {
        if ((e = name_index(CALIB_NAMES, 3, v)) < 0) return BAD("average, ema or global");
        s->calib = (uint8_t)e;
    } else if (!strcmp(k, "role")) {
        if ((e = name_index(ROLE_NAMES, 3, v)) < 0) return BAD("weight, act or bias");
        s->role = (uint8_t)e;
    } else if (!strcmp(k, "q")) {
        if (!parse_d(v, &dv)) return BAD("a number");
        s->high_q = dv;
    } else if (!strcmp(k, "low_q")) {
        if (!parse_d(v, &dv)) return BAD("a number");
        s->low_q = dv;
    } else if (!strcmp(k, "momentum")) {
        if (!parse_f(v, &f)) return BAD("a number");
        s->momentum = f;
    } else if (!strcmp(k, "min_scale")) {
        if (!parse_f(v, &f)) return BAD("a number");
        s->min_scale = f;
    } else if (!strcmp(k, "mse_iters")) {
        if (!parse_i64(v, &i)) return BAD("an integer");
        if (i < 2 || i > 1000)
            return usage(cx, loc, "quantizer spec '%s': mse_iters=%s out of range 2..1000", spec, v);
        s->mse_iters = (uint16_t)i;
    } else {
        return usage(cx, loc,
                     "quantizer spec '%s': unknown key '%s' (known: bits signed narrow per_channel granularity "
                     "axis scale round stat zp q low_q calib momentum min_scale mse_iters role)",
                     spec, k);
    }
#undef BAD
    return QO_OK;
}

qo_status qo_qspec_parse(qo_ctx *cx, const qo_loc *loc, const char *text, qo_qspec *out) {
    char buf[512];
    size_t len = strlen(text);
    if (len >= sizeof buf) return usage(cx, loc, "quantizer spec too long (%zu characters)", len);
    memcpy(buf, text, len + 1);
    char *colon = strchr(buf, ':');
    if (colon) *colon = 0;
    qo_qspec s;
    if (!qo_qspec_preset(buf, &s)) {
        char names[1024];
        size_t o = 0;
        for (size_t i = 0; i < NPRESETS && o < sizeof names; i++)
            o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? " " : "", PRESETS[i].name);
        return usage(cx, loc, "unknown quantizer preset '%s' (known: %s)", buf, names);
    }
    if (colon) {
        char *p = colon + 1;
        if (!*p) return usage(cx, loc, "quantizer spec '%s': empty option list after ':'", text);
        while (p) {
            char *next = strchr(p, ',');
            if (next) *next++ = 0;
            char *eq = strchr(p, '=');
            if (!*p) return usage(cx, loc, "quantizer spec '%s': empty option", text);
            if (!eq) return usage(cx, loc, "quantizer spec '%s': option '%s' is not key=value", text, p);
            *eq = 0;
            QO_TRY(set_key(cx, loc, text, &s, p, eq + 1));
            p = next;
        }
    }
    QO_TRY(qo_qspec_check(cx, loc, &s));
    *out = s;
    return QO_OK;
}

qo_status qo_qspec_check(qo_ctx *cx, const qo_loc *loc, const qo_qspec *s) {
    const char *nm = s->name[0] ? s->name : "(custom)";
    if (s->role > QO_QROLE_BIAS) return usage(cx, loc, "quantizer %s: bad role %u", nm, s->role);
    if (s->role == QO_QROLE_BIAS) {
        if (s->bits < 2 || s->bits > 32)
            return usage(cx, loc, "quantizer %s: bias bits=%u out of range 2..32", nm, s->bits);
        if (!s->is_signed || s->narrow || s->zp != QO_QZP_ZERO)
            return usage(cx, loc, "quantizer %s: a bias quantizer is signed, not narrow, zero point 0 (Brevitas IntBias)", nm);
        if (s->stat != QO_QSTAT_NONE)
            return usage(cx, loc, "quantizer %s: a bias takes its scale from the accumulator: stat must be none", nm);
        if (s->pow2)
            return usage(cx, loc, "quantizer %s: a bias scale is the accumulator's; scale=po2 does not apply", nm);
    } else {
        if (s->bits < 1 || s->bits > 16)
            return usage(cx, loc, "quantizer %s: bits=%u out of range 1..16", nm, s->bits);
        if (s->bits == 1 && s->narrow)
            return usage(cx, loc, "quantizer %s: narrow range at 1 bit leaves a single level", nm);
        if (s->stat == QO_QSTAT_NONE)
            return usage(cx, loc, "quantizer %s: stat=none is only for bias quantizers", nm);
    }
    if (s->stat > QO_QSTAT_NONE) return usage(cx, loc, "quantizer %s: bad stat %u", nm, s->stat);
    if (s->zp > QO_QZP_STATS) return usage(cx, loc, "quantizer %s: bad zp %u", nm, s->zp);
    if (s->zp == QO_QZP_STATS && s->is_signed)
        return usage(cx, loc, "quantizer %s: zp=stats needs an unsigned quantizer (Brevitas shifted quantizers are unsigned)", nm);
    if (s->zp == QO_QZP_STATS && s->stat == QO_QSTAT_MSE)
        return usage(cx, loc, "quantizer %s: stat=mse with zp=stats (Brevitas MSEAsymmetricScale + MSE zero point) is not implemented", nm);
    if (s->round >= QO_ROUND_COUNT) return usage(cx, loc, "quantizer %s: bad rounding mode %u", nm, s->round);
    if (s->per_channel && (s->axis < 0 || s->axis >= QO_MAX_RANK))
        return usage(cx, loc, "quantizer %s: axis=%d out of range 0..%d", nm, s->axis, QO_MAX_RANK - 1);
    if (!(s->high_q > 0.0 && s->high_q <= 100.0))
        return usage(cx, loc, "quantizer %s: q=%g must be in (0, 100]", nm, s->high_q);
    if (!(s->low_q >= 0.0 && s->low_q < 100.0))
        return usage(cx, loc, "quantizer %s: low_q=%g must be in [0, 100)", nm, s->low_q);
    if (s->stat == QO_QSTAT_PERCENTILE_INTERVAL && !(s->low_q < s->high_q))
        return usage(cx, loc, "quantizer %s: low_q=%g must be below q=%g", nm, s->low_q, s->high_q);
    if (s->calib > QO_QCALIB_GLOBAL) return usage(cx, loc, "quantizer %s: bad calib %u", nm, s->calib);
    if (s->calib == QO_QCALIB_GLOBAL && s->stat != QO_QSTAT_ABSMAX && s->stat != QO_QSTAT_MINMAX)
        return usage(cx, loc, "quantizer %s: calib=global needs stat=absmax or minmax", nm);
    if (!(s->momentum > 0.0f && s->momentum <= 1.0f))
        return usage(cx, loc, "quantizer %s: momentum=%g must be in (0, 1]", nm, (double)s->momentum);
    if (!(s->min_scale >= 0.0f) || !isfinite(s->min_scale))
        return usage(cx, loc, "quantizer %s: min_scale=%g must be finite and >= 0", nm, (double)s->min_scale);
    if (s->stat == QO_QSTAT_MSE && (s->mse_iters < 2 || s->mse_iters > 1000))
        return usage(cx, loc, "quantizer %s: mse_iters=%u out of range 2..1000", nm, s->mse_iters);
    return QO_OK;
}

void qo_qspec_format(const qo_qspec *s, char *buf, size_t cap) {
    snprintf(buf, cap,
             "%s:role=%s,bits=%u,signed=%d,narrow=%d,per_channel=%d,axis=%d,scale=%s,round=%s,stat=%s,zp=%s,"
             "q=%.17g,low_q=%.17g,calib=%s,momentum=%.9g,min_scale=%.9g,mse_iters=%u",
             s->name[0] ? s->name : "?", ROLE_NAMES[s->role % 3], s->bits, s->is_signed, s->narrow,
             s->per_channel, s->axis, s->pow2 ? "po2" : "float", qo_round_name((qo_round)s->round),
             STAT_NAMES[s->stat % 6], ZP_NAMES[s->zp % 2], s->high_q, s->low_q,
             CALIB_NAMES[s->calib % 3], (double)s->momentum, (double)s->min_scale, s->mse_iters);
}

/* ---- scalar formulas -------------------------------------------------------------------------- */
void qo_qspec_int_range(const qo_qspec *s, int64_t *min_int, int64_t *max_int) {
    int b = s->bits;
    if (s->is_signed) {
        *min_int = -((int64_t)1 << (b - 1)) + (s->narrow ? 1 : 0);
        *max_int = ((int64_t)1 << (b - 1)) - 1;
    } else {
        *min_int = 0;
        *max_int = ((int64_t)1 << b) - 1 - (s->narrow ? 1 : 0);
    }
}

float qo_qspec_threshold(const qo_qspec *s) {
    int b = s->bits;
    if (s->pow2) /* PowerOfTwoIntScaling: max_int(signed, narrow=False) + 1, a power of two already */
        return ldexpf(1.0f, s->is_signed ? b - 1 : b);
    int64_t lo, hi;
    qo_qspec_int_range(s, &lo, &hi);
    return s->is_signed ? (float)-lo : (float)hi;
}

float qo_qspec_scale_from_stat(const qo_qspec *s, float stat) {
    float v = fmaxf(stat, s->min_scale); /* _ClampValue (torch.clamp_min) */
    if (s->pow2) {
        v = exp2f(ceilf(log2f(v)));      /* LogTwo, then CeilSte + PowerOfTwo in restrict_clamp */
        v = fmaxf(v, s->min_scale);
    }
    return v / qo_qspec_threshold(s);
}

int64_t qo_qspec_to_int(const qo_qspec *s, float x, float scale, int32_t zp) {
    int64_t lo, hi;
    qo_qspec_int_range(s, &lo, &hi);
    return qo_qspec_to_int_in(x, scale, zp, (qo_round)s->round, lo, hi);
}

int32_t qo_qspec_zp_from_min(const qo_qspec *s, float scale, float neg_min) {
    if (s->zp == QO_QZP_ZERO) return 0;
    /* _ScaleShiftZeroPoint with quantize_zero_point: to_int(scale, zp = min_int = 0, x = -min) */
    return (int32_t)qo_qspec_to_int(s, -neg_min, scale, 0);
}

void qo_qspec_to_quant(const qo_qspec *s, qo_module *m, uint32_t n, const float *scales,
                       const int32_t *zps, qo_quant *out) {
    memset(out, 0, sizeof *out);
    out->bits = s->bits;
    out->is_signed = s->is_signed;
    out->narrow = s->narrow;
    out->round = s->round;
    out->pow2 = s->pow2;
    if (!s->per_channel) {
        out->scale = scales[0];
        out->zp = zps ? zps[0] : 0;
        return;
    }
    out->per_axis = 1;
    out->axis = s->axis;
    int64_t dim = n;
    out->scales = qo_const_new(m, qo_type_tensor(m, QO_F32, 1, &dim, NULL), scales, (size_t)n * 4, true);
    bool any = false;
    for (uint32_t i = 0; zps && i < n; i++) any |= zps[i] != 0;
    if (any) out->zps = qo_const_new(m, qo_type_tensor(m, QO_I32, 1, &dim, NULL), zps, (size_t)n * 4, true);
}
