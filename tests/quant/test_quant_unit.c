/* tests/quant/test_quant_unit.c — unit tests of passes/quant: preset fields (Brevitas classes),
 * spec parsing and its errors, integer ranges, thresholds, po2 scales, per-channel axes, bias,
 * fake quant, the IR descriptor, and the statistics against expected_stats.txt (written by
 * gen_expected.py with Brevitas's formulas in torch; see there).
 * Usage: test_quant_unit expected_stats.txt. Prints "N passed, N failed". */
#include "passes/quant/quantizer.h"
#include "runtime/ref/util.h"
#include "tests/unit/test.h"

#include <math.h>

#define CHECK_F(a, b)                                                                              \
    do {                                                                                           \
        float fa_ = (a), fb_ = (b);                                                                \
        if (qo_f32_bits(fa_) == qo_f32_bits(fb_)) qt_pass++;                                       \
        else {                                                                                     \
            qt_fail++;                                                                             \
            fprintf(stderr, "%s:%d: [%s] CHECK_F failed: %s == %s (%a vs %a)\n", __FILE__, __LINE__, \
                    qt_current, #a, #b, (double)fa_, (double)fb_);                                 \
        }                                                                                          \
    } while (0)

static qo_qspec P(const char *name) {
    qo_qspec s;
    memset(&s, 0, sizeof s);
    CHECK(qo_qspec_preset(name, &s));
    return s;
}

/* ---- presets ------------------------------------------------------------------------------------ */
static void test_presets(void) {
    /* (name, role, bits, signed, narrow, per_channel, pow2, stat, zp) per Brevitas v0.12 classes */
    struct {
        const char *n;
        int role, bits, sg, nr, pc, p2, stat, zp;
    } t[] = {
        {"int8_weight_per_tensor_float", QO_QROLE_WEIGHT, 8, 1, 1, 0, 0, QO_QSTAT_ABSMAX, QO_QZP_ZERO},
        {"int8_weight_per_channel_float", QO_QROLE_WEIGHT, 8, 1, 1, 1, 0, QO_QSTAT_ABSMAX, QO_QZP_ZERO},
        {"int8_act_per_tensor_float", QO_QROLE_ACT, 8, 1, 0, 0, 0, QO_QSTAT_PERCENTILE, QO_QZP_ZERO},
        {"uint8_act_per_tensor_float", QO_QROLE_ACT, 8, 0, 0, 0, 0, QO_QSTAT_PERCENTILE, QO_QZP_ZERO},
        {"shifted_uint8_act_per_tensor_float", QO_QROLE_ACT, 8, 0, 0, 0, 0, QO_QSTAT_PERCENTILE_INTERVAL, QO_QZP_STATS},
        {"shifted_uint8_weight_per_tensor_float", QO_QROLE_WEIGHT, 8, 0, 0, 0, 0, QO_QSTAT_MINMAX, QO_QZP_STATS},
        {"int8_weight_per_tensor_fixed_point", QO_QROLE_WEIGHT, 8, 1, 1, 0, 1, QO_QSTAT_ABSMAX, QO_QZP_ZERO},
        {"int8_act_per_tensor_fixed_point", QO_QROLE_ACT, 8, 1, 0, 0, 1, QO_QSTAT_PERCENTILE, QO_QZP_ZERO},
        {"uint8_act_per_tensor_fixed_point", QO_QROLE_ACT, 8, 0, 0, 0, 1, QO_QSTAT_PERCENTILE, QO_QZP_ZERO},
        {"int32_bias", QO_QROLE_BIAS, 32, 1, 0, 0, 0, QO_QSTAT_NONE, QO_QZP_ZERO},
        {"int16_bias", QO_QROLE_BIAS, 16, 1, 0, 0, 0, QO_QSTAT_NONE, QO_QZP_ZERO},
        {"int8_bias", QO_QROLE_BIAS, 8, 1, 0, 0, 0, QO_QSTAT_NONE, QO_QZP_ZERO},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        qt_current = t[i].n;
        qo_qspec s = P(t[i].n);
        CHECK_STR(s.name, t[i].n);
        CHECK_EQ(s.role, t[i].role);
        CHECK_EQ(s.bits, t[i].bits);
        CHECK_EQ(s.is_signed, t[i].sg);
        CHECK_EQ(s.narrow, t[i].nr);
        CHECK_EQ(s.per_channel, t[i].pc);
        CHECK_EQ(s.pow2, t[i].p2);
        CHECK_EQ(s.stat, t[i].stat);
        CHECK_EQ(s.zp, t[i].zp);
        CHECK_EQ(s.round, QO_ROUND_HALF_EVEN);
        CHECK_EQ(s.axis, 0);
        CHECK(s.high_q == 99.999);
        CHECK(s.low_q == 0.001);
        CHECK_F(s.min_scale, 1e-10f);
        CHECK_EQ(s.mse_iters, 20);
        qo_ctx cx;
        qt_diags d;
        qt_ctx(&cx, &d);
        CHECK(qo_qspec_check(&cx, NULL, &s) == QO_OK);
        /* format parses back to the same spec */
        char buf[512];
        qo_qspec_format(&s, buf, sizeof buf);
        qo_qspec r;
        CHECK(qo_qspec_parse(&cx, NULL, buf, &r) == QO_OK);
        CHECK(memcmp(&r, &s, sizeof s) == 0);
        qt_dump(&d);
    }
    qt_current = "presets";
    CHECK(qo_qpreset_count() >= 12);
    for (uint32_t i = 0; i < qo_qpreset_count(); i++) {
        qo_qspec s;
        CHECK(qo_qspec_preset(qo_qpreset_name(i), &s));
    }
    CHECK(qo_qpreset_name(qo_qpreset_count()) == NULL);
    qo_qspec s;
    CHECK(!qo_qspec_preset("Int8WeightPerTensorFloat", &s));
}

/* ---- parsing -------------------------------------------------------------------------------- */
static void test_parse(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_qspec s;
    CHECK(qo_qspec_parse(&cx, NULL, "int8_weight_per_channel_float:bits=4", &s) == QO_OK);
    CHECK_EQ(s.bits, 4);
    CHECK(s.narrow && s.per_channel && s.is_signed);
    CHECK(qo_qspec_parse(&cx, NULL,
                         "uint8_act_per_tensor_float:bits=3,narrow=1,q=99.9,round=half_up,calib=ema,momentum=0.2,"
                         "scale=po2,min_scale=0.5,stat=mse,mse_iters=10",
                         &s) == QO_OK);
    CHECK(s.bits == 3 && s.narrow && s.round == QO_ROUND_HALF_UP && s.calib == QO_QCALIB_EMA && s.pow2);
    CHECK(s.high_q == 99.9);
    CHECK_F(s.momentum, 0.2f);
    CHECK_F(s.min_scale, 0.5f);
    CHECK(s.stat == QO_QSTAT_MSE && s.mse_iters == 10);
    CHECK(qo_qspec_parse(&cx, NULL, "int8_weight_per_tensor_float:granularity=channel,axis=1,signed=0,narrow=false",
                         &s) == QO_OK);
    CHECK(s.per_channel && s.axis == 1 && !s.is_signed && !s.narrow);
    CHECK(qo_qspec_parse(&cx, NULL, "int8_weight_per_tensor_float:round=ROUND", &s) == QO_OK);
    CHECK_EQ(s.round, QO_ROUND_HALF_EVEN);
    CHECK(qo_qspec_parse(&cx, NULL, "int8_weight_per_tensor_float:bits=1,narrow=0", &s) == QO_OK);
    CHECK_EQ(d.nerrors, 0);
    qt_dump(&d);

    struct {
        const char *text, *sub;
    } bad[] = {
        {"int9_weight", "unknown quantizer preset 'int9_weight'"},
        {"int8_weight_per_tensor_float:bitz=4", "unknown key 'bitz'"},
        {"int8_weight_per_tensor_float:bits=17", "bits=17 out of range 1..16"},
        {"int8_weight_per_tensor_float:bits=0", "out of range"},
        {"int8_weight_per_tensor_float:bits=x", "bad value 'x' for 'bits'"},
        {"int8_weight_per_tensor_float:bits=4,", "empty option"},
        {"int8_weight_per_tensor_float:", "empty option list"},
        {"int8_weight_per_tensor_float:bits", "not key=value"},
        {"int8_weight_per_tensor_float:signed=2", "bad value '2' for 'signed'"},
        {"int8_weight_per_tensor_float:scale=log", "float or po2"},
        {"int8_weight_per_tensor_float:round=nearest", "bad value 'nearest' for 'round'"},
        {"int8_weight_per_tensor_float:stat=kl", "bad value 'kl' for 'stat'"},
        {"int8_weight_per_tensor_float:axis=-1", "axis=-1 out of range"},
        {"int8_weight_per_tensor_float:zp=stats", "zp=stats needs an unsigned"},
        {"uint8_act_per_tensor_float:q=100.5", "q=100.5 must be in (0, 100]"},
        {"uint8_act_per_tensor_float:q=0", "must be in (0, 100]"},
        {"uint8_act_per_tensor_float:low_q=100", "low_q=100 must be in [0, 100)"},
        {"shifted_uint8_act_per_tensor_float:low_q=99.9999,q=99.999", "must be below"},
        {"uint8_act_per_tensor_float:momentum=0", "momentum=0 must be in (0, 1]"},
        {"uint8_act_per_tensor_float:calib=global", "calib=global needs stat=absmax or minmax"},
        {"uint8_act_per_tensor_float:min_scale=-1", "min_scale=-1"},
        {"uint8_act_per_tensor_float:mse_iters=1", "mse_iters=1 out of range"},
        {"int8_weight_per_tensor_float:bits=1", "narrow range at 1 bit"},
        {"int8_weight_per_tensor_float:stat=none", "stat=none is only for bias"},
        {"int32_bias:bits=33", "out of range 1..32"},
        {"int32_bias:bits=1", "bias bits=1 out of range 2..32"},
        {"int32_bias:narrow=1", "signed, not narrow"},
        {"int32_bias:stat=absmax", "stat must be none"},
        {"int32_bias:scale=po2", "does not apply"},
        {"shifted_uint8_weight_per_tensor_float:stat=mse", "not implemented"},
        {"int8_weight_per_tensor_float:q=nan", "bad value 'nan' for 'q'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qt_ctx(&cx, &d);
        qo_qspec keep = s;
        qo_status st = qo_qspec_parse(&cx, NULL, bad[i].text, &s);
        CHECK_EQ(st, QO_ERR_USAGE);
        CHECK(memcmp(&keep, &s, sizeof s) == 0); /* untouched on error */
        bool ok = qt_has(&d, NULL, bad[i].sub);
        CHECK(ok);
        if (!ok) {
            fprintf(stderr, "  for '%s' expected '%s'\n", bad[i].text, bad[i].sub);
            qt_dump(&d);
        }
    }
    /* the location given is used */
    qt_ctx(&cx, &d);
    qo_loc loc = {.file = "cfg.txt", .line = 3, .col = 7};
    CHECK(qo_qspec_parse(&cx, &loc, "nope", &s) == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "cfg.txt:3:7"));
}

/* ---- ranges, thresholds, scales -------------------------------------------------------------- */
static void test_ranges(void) {
    struct {
        int bits, sg, nr;
        long long lo, hi;
        float thr;
    } t[] = {
        {8, 1, 0, -128, 127, 128}, {8, 1, 1, -127, 127, 127}, {8, 0, 0, 0, 255, 255}, {8, 0, 1, 0, 254, 254},
        {4, 1, 0, -8, 7, 8},       {2, 1, 0, -2, 1, 2},       {2, 1, 1, -1, 1, 1},     {1, 1, 0, -1, 0, 1},
        {1, 0, 0, 0, 1, 1},        {16, 1, 0, -32768, 32767, 32768},                  {3, 0, 1, 0, 6, 6},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        qo_qspec s = P("int8_weight_per_tensor_float");
        s.bits = (uint8_t)t[i].bits;
        s.is_signed = t[i].sg;
        s.narrow = t[i].nr;
        int64_t lo, hi;
        qo_qspec_int_range(&s, &lo, &hi);
        CHECK_EQ(lo, t[i].lo);
        CHECK_EQ(hi, t[i].hi);
        CHECK_F(qo_qspec_threshold(&s), t[i].thr);
        /* po2 threshold ignores narrow: max_int(signed, narrow=False) + 1 */
        s.pow2 = true;
        CHECK_F(qo_qspec_threshold(&s), ldexpf(1.0f, t[i].sg ? t[i].bits - 1 : t[i].bits));
    }
    qo_qspec b = P("int32_bias");
    int64_t lo, hi;
    qo_qspec_int_range(&b, &lo, &hi);
    CHECK_EQ(lo, -2147483648LL);
    CHECK_EQ(hi, 2147483647LL);
    /* scale clamp: scaling_min_val 1e-10 */
    qo_qspec s = P("int8_weight_per_tensor_float");
    CHECK_F(qo_qspec_scale_from_stat(&s, 0.0f), 1e-10f / 127.0f);
    CHECK_F(qo_qspec_scale_from_stat(&s, 1.27f), 1.27f / 127.0f);
    /* to_int: x/scale + zp, round half even, clamp */
    CHECK_EQ(qo_qspec_to_int(&s, 2.5f, 1.0f, 0), 2);
    CHECK_EQ(qo_qspec_to_int(&s, -2.5f, 1.0f, 0), -2);
    CHECK_EQ(qo_qspec_to_int(&s, 3.5f, 1.0f, 0), 4);
    CHECK_EQ(qo_qspec_to_int(&s, 1000.0f, 1.0f, 0), 127);
    CHECK_EQ(qo_qspec_to_int(&s, -1000.0f, 1.0f, 0), -127);
    CHECK_EQ(qo_qspec_to_int(&s, 1e30f, 1e-30f, 0), 127);
    s.round = QO_ROUND_HALF_UP;
    CHECK_EQ(qo_qspec_to_int(&s, 2.5f, 1.0f, 0), 3);
    CHECK_EQ(qo_qspec_to_int(&s, -2.5f, 1.0f, 0), -3);
    s.round = QO_ROUND_FLOOR;
    CHECK_EQ(qo_qspec_to_int(&s, -2.5f, 1.0f, 0), -3);
    /* the zero point is added before rounding (REFERENCE §4.2.2): 2.5+1ulp + 128 rounds to 130 */
    qo_qspec u = P("shifted_uint8_weight_per_tensor_float");
    CHECK_EQ(qo_qspec_to_int(&u, nextafterf(2.5f, 3.0f), 1.0f, 128), 130);
    /* zero point: clamp(round(-min/scale)) */
    CHECK_EQ(qo_qspec_zp_from_min(&u, 0.1f, -1.0f), 10);
    CHECK_EQ(qo_qspec_zp_from_min(&u, 0.1f, -100.0f), 255);
    CHECK_EQ(qo_qspec_zp_from_min(&u, 0.1f, 0.0f), 0);
    CHECK_EQ(qo_qspec_zp_from_min(&s, 0.1f, -1.0f), 0); /* zero-zero-point preset */
}

/* ---- per-channel axis, weights, bias, fake quant, IR descriptor ------------------------------ */
static void test_weights(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    /* (2,3,2) tensor; per-channel along axis 1: channel c = {x[o][c][i]} */
    float w[12] = {1, -2, 0.5f, 0.25f, 4, 0, -8, 3, 1, -1, 2, 2};
    qo_tensor t = {.elem = QO_F32, .rank = 3, .dims = {2, 3, 2}, .data = w, .nbytes = sizeof w};
    qo_qspec s;
    CHECK(qo_qspec_parse(&cx, NULL, "int8_weight_per_channel_float:axis=1,narrow=0", &s) == QO_OK);
    qo_qtensor q;
    CHECK(qo_quant_weight(&cx, NULL, &s, &t, &q) == QO_OK);
    CHECK_EQ(q.nscale, 3);
    CHECK_EQ(q.q.elem, QO_I8);
    /* channel 0: {1,-2,-8,3} absmax 8; channel 1: {0.5,0.25,1,-1} absmax 1; channel 2: {4,0,2,2} 4 */
    CHECK_F(q.scales[0], 8.0f / 128.0f);
    CHECK_F(q.scales[1], 1.0f / 128.0f);
    CHECK_F(q.scales[2], 4.0f / 128.0f);
    int8_t *c = q.q.data;
    int8_t exp[12] = {16, -32, 64, 32, 127, 0, -128, 48, 127, -128, 64, 64};
    for (int i = 0; i < 12; i++) CHECK_EQ(c[i], exp[i]);
    /* fake quant with these scales */
    float f[12];
    memcpy(f, w, sizeof f);
    qo_tensor ft = t;
    ft.data = f;
    CHECK(qo_quant_fake(&cx, NULL, &s, &ft, q.scales, q.zps, q.nscale) == QO_OK);
    for (int i = 0; i < 12; i++) CHECK_F(f[i], (float)exp[i] * q.scales[(i / 2) % 3]);
    /* IR descriptor */
    qo_module *m = qo_module_new();
    qo_quant iq;
    qo_qspec_to_quant(&s, m, q.nscale, q.scales, q.zps, &iq);
    CHECK(iq.per_axis && iq.axis == 1 && iq.bits == 8 && iq.is_signed && !iq.narrow && !iq.pow2);
    CHECK(iq.scales != 0 && iq.zps == 0);
    const qo_constdata *cd = qo_const_get(m, iq.scales);
    CHECK_EQ(qo_type_numel(m, cd->type), 3);
    CHECK(memcmp(cd->data, q.scales, 12) == 0);
    qo_module_free(m);
    qo_qtensor_free(&q);

    /* axis out of range for the tensor */
    s.axis = 3;
    CHECK(qo_quant_weight(&cx, NULL, &s, &t, &q) == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "axis 3 out of range for a rank-3 tensor"));
    /* non-f32 input */
    qo_tensor it = t;
    it.elem = QO_I32;
    s.axis = 0;
    CHECK(qo_quant_weight(&cx, NULL, &s, &it, &q) == QO_ERR_UNSUPPORTED);

    /* po2 per-tensor narrow: absmax 8 -> 2^3 / 2^7 = 1/16; codes clamp to [-127, 127] */
    CHECK(qo_qspec_parse(&cx, NULL, "int8_weight_per_tensor_fixed_point", &s) == QO_OK);
    CHECK(qo_quant_weight(&cx, NULL, &s, &t, &q) == QO_OK);
    CHECK_EQ(q.nscale, 1);
    CHECK_F(q.scales[0], 0.0625f);
    CHECK_EQ(((int8_t *)q.q.data)[6], -127); /* -8 / 0.0625 = -128 -> narrow clamp */
    CHECK_EQ(((int8_t *)q.q.data)[4], 64);
    m = qo_module_new();
    qo_qspec_to_quant(&s, m, 1, q.scales, q.zps, &iq);
    CHECK(!iq.per_axis && iq.pow2 && iq.narrow && iq.scale == 0.0625f && iq.zp == 0);
    qo_module_free(m);
    qo_qtensor_free(&q);

    /* shifted uint8 weights: minmax = |4 - (-8)| = 12 -> scale 12/255, zp round(8/scale) = 170 */
    CHECK(qo_qspec_parse(&cx, NULL, "shifted_uint8_weight_per_tensor_float", &s) == QO_OK);
    CHECK(qo_quant_weight(&cx, NULL, &s, &t, &q) == QO_OK);
    CHECK_F(q.scales[0], 12.0f / 255.0f);
    CHECK_EQ(q.zps[0], 170);
    CHECK_EQ(q.q.elem, QO_U8);
    CHECK_EQ(((uint8_t *)q.q.data)[6], 0);   /* -8: 8/s = 170.00001 -> 170 - 170 = 0 */
    CHECK_EQ(((uint8_t *)q.q.data)[4], 255); /* 4/s + 170 = 255 */
    qo_qtensor_free(&q);

    /* bias: scale = in_scale * w_scale[c] (float32), codes round(b / scale), int32 */
    float bv[3] = {0.1f, -0.2f, 1e6f};
    qo_tensor bt = {.elem = QO_F32, .rank = 1, .dims = {3}, .data = bv, .nbytes = sizeof bv};
    float ws[3] = {0.01f, 0.02f, 0.03f};
    CHECK(qo_qspec_parse(&cx, NULL, "int32_bias", &s) == QO_OK);
    CHECK(qo_quant_bias(&cx, NULL, &s, &bt, 0.5f, ws, 3, &q) == QO_OK);
    CHECK_EQ(q.q.elem, QO_I32);
    for (int i = 0; i < 3; i++) {
        float sc = 0.5f * ws[i];
        CHECK_F(q.scales[i], sc);
        CHECK_EQ(((int32_t *)q.q.data)[i], (int32_t)nearbyintf(bv[i] / sc));
    }
    qo_qtensor_free(&q);
    CHECK(qo_qspec_parse(&cx, NULL, "int8_bias", &s) == QO_OK);
    CHECK(qo_quant_bias(&cx, NULL, &s, &bt, 0.5f, ws, 1, &q) == QO_OK);
    CHECK_EQ(q.q.elem, QO_I8);
    CHECK_EQ(((int8_t *)q.q.data)[2], 127); /* clamped */
    CHECK_EQ(((int8_t *)q.q.data)[1], -40);
    qo_qtensor_free(&q);
    CHECK(qo_quant_bias(&cx, NULL, &s, &bt, 0.5f, ws, 2, &q) == QO_ERR_USAGE);
    CHECK(qo_quant_weight(&cx, NULL, &s, &bt, &q) == QO_ERR_USAGE);
}

/* ---- expected_stats.txt ----------------------------------------------------------------------- */
#define MAXA 32
static struct {
    char name[32];
    int64_t n;
    float *v;
} A[MAXA];
static int nA;

static int find(const char *name) {
    for (int i = 0; i < nA; i++)
        if (!strcmp(A[i].name, name)) return i;
    return -1;
}

static void test_expected(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static char line[1 << 17];
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    int npct = 0, ncal = 0, npo2 = 0, nmse = 0, nwq = 0, nk = 0;
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *kind = strtok_r(line, " \n", &save);
        if (!kind) continue;
        if (!strcmp(kind, "arr")) {
            char *name = strtok_r(NULL, " \n", &save);
            int64_t n = atoll(strtok_r(NULL, " \n", &save));
            QO_ASSERT(nA < MAXA);
            snprintf(A[nA].name, sizeof A[nA].name, "%s", name);
            A[nA].n = n;
            A[nA].v = qo_malloc((size_t)n * sizeof(float));
            for (int64_t i = 0; i < n; i++) A[nA].v[i] = strtof(strtok_r(NULL, " \n", &save), NULL);
            nA++;
        } else if (!strcmp(kind, "genarr")) { /* x[i] = ((i * mul) % mod - off) * 2^-shift, see gen_expected.py */
            char *name = strtok_r(NULL, " \n", &save);
            int64_t n = atoll(strtok_r(NULL, " \n", &save)), mul = atoll(strtok_r(NULL, " \n", &save)),
                    mod = atoll(strtok_r(NULL, " \n", &save)), off = atoll(strtok_r(NULL, " \n", &save));
            int shift = atoi(strtok_r(NULL, " \n", &save));
            QO_ASSERT(nA < MAXA);
            snprintf(A[nA].name, sizeof A[nA].name, "%s", name);
            A[nA].n = n;
            A[nA].v = qo_malloc((size_t)n * sizeof(float));
            for (int64_t i = 0; i < n; i++)
                A[nA].v[i] = ldexpf((float)((int64_t)(((uint64_t)i * (uint64_t)mul) % (uint64_t)mod) - off), -shift);
            nA++;
        } else if (!strcmp(kind, "pct")) {
            qt_current = "percentile";
            int a = find(strtok_r(NULL, " \n", &save));
            double q = atof(strtok_r(NULL, " \n", &save));
            char *what = strtok_r(NULL, " \n", &save);
            float e = strtof(strtok_r(NULL, " \n", &save), NULL);
            qo_qspec s = P("shifted_uint8_act_per_tensor_float");
            float got, neg = 1.0f;
            if (!strcmp(what, "abs")) {
                s.stat = QO_QSTAT_PERCENTILE;
                s.high_q = q;
                got = qo_qstat_slice(&s, A[a].v, A[a].n, NULL, NULL);
                /* the k formula, in double as Python computes it */
                CHECK_EQ(qo_qstat_high_k(q, A[a].n), (int64_t)floor(0.01 * q * (double)A[a].n + 0.5));
            } else if (!strcmp(what, "negmin")) {
                s.low_q = q;
                (void)qo_qstat_slice(&s, A[a].v, A[a].n, NULL, &neg);
                got = neg;
            } else {
                s.low_q = q;
                got = qo_qstat_slice(&s, A[a].v, A[a].n, NULL, NULL);
            }
            CHECK_F(got, e);
            npct++;
        } else if (!strcmp(kind, "k")) {
            qt_current = "percentile k";
            double q = atof(strtok_r(NULL, " \n", &save));
            int64_t n = atoll(strtok_r(NULL, " \n", &save)), hk = atoll(strtok_r(NULL, " \n", &save)),
                    lk = atoll(strtok_r(NULL, " \n", &save));
            CHECK_EQ(qo_qstat_high_k(q, n), hk < 1 ? 1 : hk);
            CHECK_EQ(qo_qstat_low_k(q, n), lk < 1 ? 1 : lk);
            if (q == 99.999) { /* the preset's q gives Python's k (a float32 q would not at n = 50001) */
                qo_qspec s = P("uint8_act_per_tensor_float");
                CHECK_EQ(qo_qstat_high_k(s.high_q, n), hk < 1 ? 1 : hk);
            }
            nk++;
        } else if (!strcmp(kind, "calib")) {
            qt_current = "calibration";
            char *mode = strtok_r(NULL, " \n", &save), *stat = strtok_r(NULL, " \n", &save);
            int nb = atoi(strtok_r(NULL, " \n", &save));
            float e = strtof(strtok_r(NULL, " \n", &save), NULL);
            qo_qspec s = P("int8_act_per_tensor_float");
            s.calib = !strcmp(mode, "ema") ? QO_QCALIB_EMA : QO_QCALIB_AVERAGE;
            s.stat = !strcmp(stat, "absmax") ? QO_QSTAT_ABSMAX : QO_QSTAT_PERCENTILE;
            qo_qacc acc;
            CHECK(qo_qacc_init(&cx, &acc, &s) == QO_OK);
            for (int b = 0; b < nb; b++) {
                char nm[16];
                snprintf(nm, sizeof nm, "batch%d", b);
                int a = find(nm);
                CHECK(qo_qacc_add(&cx, &acc, A[a].v, A[a].n) == QO_OK);
            }
            CHECK_F(acc.buf, e);
            float sc;
            int32_t zp;
            CHECK(qo_qacc_result(&cx, &acc, &sc, &zp) == QO_OK);
            CHECK_F(sc, e / 128.0f);
            CHECK_EQ(zp, 0);
            ncal++;
        } else if (!strcmp(kind, "shifted")) {
            qt_current = "shifted calibration";
            int nb = atoi(strtok_r(NULL, " \n", &save));
            float e = strtof(strtok_r(NULL, " \n", &save), NULL);
            int ez = atoi(strtok_r(NULL, " \n", &save));
            qo_qspec s = P("shifted_uint8_act_per_tensor_float");
            qo_qacc acc;
            CHECK(qo_qacc_init(&cx, &acc, &s) == QO_OK);
            for (int b = 0; b < nb; b++) {
                char nm[16];
                snprintf(nm, sizeof nm, "batch%d", b);
                CHECK(qo_qacc_add(&cx, &acc, A[find(nm)].v, A[find(nm)].n) == QO_OK);
            }
            float sc;
            int32_t zp;
            CHECK(qo_qacc_result(&cx, &acc, &sc, &zp) == QO_OK);
            CHECK_F(sc, e);
            CHECK_EQ(zp, ez);
            ncal++;
        } else if (!strcmp(kind, "po2")) {
            qt_current = "po2";
            float st = strtof(strtok_r(NULL, " \n", &save), NULL);
            int bits = atoi(strtok_r(NULL, " \n", &save)), sg = atoi(strtok_r(NULL, " \n", &save));
            float e = strtof(strtok_r(NULL, " \n", &save), NULL);
            qo_qspec s = P("int8_act_per_tensor_fixed_point");
            s.bits = (uint8_t)bits;
            s.is_signed = sg;
            CHECK_F(qo_qspec_scale_from_stat(&s, st), e);
            s.narrow = true; /* narrow does not change a po2 threshold */
            CHECK_F(qo_qspec_scale_from_stat(&s, st), e);
            npo2++;
        } else if (!strcmp(kind, "mse")) {
            qt_current = "mse";
            int a = find(strtok_r(NULL, " \n", &save));
            int bits = atoi(strtok_r(NULL, " \n", &save)), nr = atoi(strtok_r(NULL, " \n", &save));
            float e = strtof(strtok_r(NULL, " \n", &save), NULL);
            qo_qspec s = P("int8_weight_per_tensor_float_mse");
            s.bits = (uint8_t)bits;
            s.narrow = nr;
            CHECK_F(qo_qstat_mse(&s, A[a].v, A[a].n), e);
            nmse++;
        } else if (!strcmp(kind, "wq")) {
            qt_current = "weight codes";
            int a = find(strtok_r(NULL, " \n", &save));
            int bits = atoi(strtok_r(NULL, " \n", &save)), sg = atoi(strtok_r(NULL, " \n", &save)),
                nr = atoi(strtok_r(NULL, " \n", &save));
            float e = strtof(strtok_r(NULL, " \n", &save), NULL);
            qo_qspec s = P("int8_weight_per_tensor_float");
            s.bits = (uint8_t)bits;
            s.is_signed = sg;
            s.narrow = nr;
            qo_tensor t = {.elem = QO_F32, .rank = 1, .dims = {A[a].n}, .data = A[a].v,
                           .nbytes = (size_t)A[a].n * 4};
            qo_qtensor q;
            CHECK(qo_quant_weight(&cx, NULL, &s, &t, &q) == QO_OK);
            CHECK_F(q.scales[0], e);
            int bad = 0;
            for (int64_t i = 0; i < A[a].n; i++)
                bad += qo_load_i64(q.q.data, q.q.elem, i) != atoll(strtok_r(NULL, " \n", &save));
            CHECK_EQ(bad, 0);
            qo_qtensor_free(&q);
            nwq++;
        }
    }
    fclose(f);
    qt_current = "expected file";
    CHECK(npct > 50 && ncal == 5 && npo2 > 40 && nmse == 12 && nwq == 18 && nk == 75);
    printf("expected_stats: %d percentiles, %d k values, %d calibrations, %d po2 scales, %d MSE searches, %d weight "
           "code sets\n", npct, nk, ncal, npo2, nmse, nwq);
    CHECK_EQ(d.nerrors, 0);
    qt_dump(&d);
    for (int i = 0; i < nA; i++) qo_free(A[i].v);
}

static void test_acc_errors(void) {
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    qo_qacc a;
    qo_qspec s = P("int8_weight_per_channel_float");
    CHECK(qo_qacc_init(&cx, &a, &s) == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "per-channel activation statistics"));
    s = P("int32_bias");
    CHECK(qo_qacc_init(&cx, &a, &s) == QO_ERR_USAGE);
    s = P("uint8_act_per_tensor_float");
    CHECK(qo_qacc_init(&cx, &a, &s) == QO_OK);
    float sc;
    int32_t zp;
    CHECK(qo_qacc_result(&cx, &a, &sc, &zp) == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "no calibration data"));
    float x[4] = {0, 1, 2, 3};
    CHECK(qo_qacc_add(&cx, &a, x, 0) == QO_ERR_USAGE);
    /* global absmax over batches (not Brevitas) */
    s.stat = QO_QSTAT_ABSMAX;
    s.calib = QO_QCALIB_GLOBAL;
    CHECK(qo_qacc_init(&cx, &a, &s) == QO_OK);
    CHECK(qo_qacc_add(&cx, &a, x, 4) == QO_OK);
    float y[2] = {-5, 1};
    CHECK(qo_qacc_add(&cx, &a, y, 2) == QO_OK);
    CHECK(qo_qacc_result(&cx, &a, &sc, &zp) == QO_OK);
    CHECK_F(sc, 5.0f / 255.0f);
    /* all-zero data: the 1e-10 floor */
    s = P("uint8_act_per_tensor_float");
    float z[3] = {0, 0, 0};
    CHECK(qo_qacc_init(&cx, &a, &s) == QO_OK);
    CHECK(qo_qacc_add(&cx, &a, z, 3) == QO_OK);
    CHECK(qo_qacc_result(&cx, &a, &sc, &zp) == QO_OK);
    CHECK_F(sc, 1e-10f / 255.0f);
}

int main(int argc, char **argv) {
    RUN(test_presets);
    RUN(test_parse);
    RUN(test_ranges);
    RUN(test_weights);
    RUN(test_acc_errors);
    if (argc > 1) test_expected(argv[1]);
    else CHECK(!"usage: test_quant_unit expected_stats.txt");
    return qt_finish();
}
