/* tests/qcalib/test_calib_stream.c — streaming calibration on a small graph.
 *
 *   x [N,3,4,4] -> Relu -> r        quantizers (pending): qa on x and qb on r share qopt_group 1
 *                                   (int8, 99th percentile), qd on x (int8 abs-min-max), qc on r
 *                                   (uint8 abs-max)
 * - scales after qo_calibrate at batch 8, 64 (short last batch: a second compiled variant) and 200
 *   (all at once) equal tools/gen_qcalib_stream.py's (torch, Brevitas's running average, a shared
 *   quantizer seeing its members' batches in turn) bitwise: expected_stream.txt;
 * - the pass form calibrate{data=... batch=8} gives the same;
 * - resident memory stays flat from batch 40 to batch 400 of a generated stream (not under ASan,
 *   whose quarantine keeps freed blocks);
 * - data of the wrong shape or type: an error naming the input, the expected and the given shape;
 * - without data: BatchNormalization-derived and synthetic ranges, each announced by a warning (also
 *   with the ranges recorded before fold-bn);
 * - quant-bias: the error naming the layer when its input is not quantized; float32 product scales;
 * - bias correction on a two-layer net (one layer without bias) vs tools/gen_qcalib_biascorr.py, a
 *   torch re-implementation of Brevitas's _BiasCorrection: int32 codes and scales exact.
 * Usage: test_calib_stream DATA_DIR expected_stream.txt expected_biascorr.txt */
#include "passes/pass_impl.h"
#include "passes/quant/calib.h"
#include "passes/quant/qgraph.h"
#include "runtime/npy.h"
#include "runtime/ref/util.h"
#include "tests/unit/test.h"

#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

static qo_ctx cx;

typedef struct qs {
    qo_node qa, qb, qc, qd;
} qs;

static qo_node addq(qo_graph *g, qo_val x, const char *spec, int64_t group) {
    qo_qspec s;
    CHECK(qo_qspec_parse(&cx, NULL, spec, &s) == QO_OK);
    qo_node n = qo_qnode_new(&cx, g, x, &s, 0, NULL, NULL);
    CHECK(n != 0);
    if (n && group) qo_node_set_attr_int(g, n, QO_QATTR_GROUP, group);
    return n;
}

static qo_module *build(int64_t hw, qs *q) {
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    int64_t d[4] = {-1, 3, hw, hw};
    qo_atom syms[4] = {qo_intern(m, "N"), 0, 0, 0};
    qo_val x = qo_graph_add_input(g, "x", qo_type_tensor(m, QO_F32, 4, d, syms));
    qo_node r = qo_node_new(g, QO_OP_RELU, NULL, NULL, 1, &x, 1);
    qo_node_set_name(g, r, "relu");
    qo_val rv = qo_node_output(g, r, 0);
    qo_val_set_name(g, rv, "r");
    qo_graph_add_output(g, rv);
    CHECK(qo_pipeline_run(&cx, m, "shape-infer", NULL) == QO_OK);
    /* each new quantizer goes right after its input's definition: create in reverse order */
    q->qd = addq(g, x, "int8_act_per_tensor_float:stat=minmax", 0);
    q->qa = addq(g, x, "int8_act_per_tensor_float:q=99", 1);
    q->qb = addq(g, rv, "int8_act_per_tensor_float:q=99", 1);
    q->qc = addq(g, rv, "uint8_act_per_tensor_float:stat=absmax", 0);
    CHECK(qo_verify(&cx, m) == QO_OK);
    return m;
}

static float scale_of(const qo_module *m, qo_node n) {
    const qo_graph *g = qo_module_main(m);
    if (qo_qnode_is_pending(g, n)) return -1.0f;
    qo_qparams p;
    if (qo_qnode_read(&cx, g, n, &p) != QO_OK) return -1.0f;
    float s = p.scales[0];
    qo_qparams_free(&p);
    return s;
}

typedef struct expect {
    char name[32];
    int batch;
    float scale;
} expect;
static expect EX[16];
static int nex;

static float want(const char *name, int batch) {
    for (int i = 0; i < nex; i++)
        if (!strcmp(EX[i].name, name) && EX[i].batch == batch) return EX[i].scale;
    return NAN;
}

static void check_scales(const qo_module *m, const qs *q, int batch) {
    float got[4] = {scale_of(m, q->qa), scale_of(m, q->qb), scale_of(m, q->qc), scale_of(m, q->qd)};
    float w[4] = {want("group", batch), want("group", batch), want("absmax_u8", batch), want("minmax_s8", batch)};
    for (int i = 0; i < 4; i++) {
        if (qo_f32_bits(got[i]) != qo_f32_bits(w[i]))
            fprintf(stderr, "  batch %d quantizer %d: %a, torch %a\n", batch, i, (double)got[i], (double)w[i]);
        CHECK_EQ(qo_f32_bits(got[i]), qo_f32_bits(w[i]));
    }
}

static void test_batches(const qo_tensor *x) {
    static const int B[3] = {8, 64, 200};
    for (int b = 0; b < 3; b++) {
        qs q;
        qo_module *m = build(4, &q);
        qo_batch_source src;
        CHECK(qo_batch_source_tensors(&cx, x, 1, B[b], &src) == QO_OK);
        CHECK(qo_calibrate(&cx, m, &src, NULL) == QO_OK);
        check_scales(m, &q, B[b]);
        /* the shared quantizers carry one scale */
        CHECK_EQ(qo_f32_bits(scale_of(m, q.qa)), qo_f32_bits(scale_of(m, q.qb)));
        CHECK(qo_verify(&cx, m) == QO_OK);
        qo_batch_source_free(&src);
        qo_module_free(m);
    }
    /* batch 8 and all at once differ (per-batch statistics are averaged, not pooled) */
    CHECK(want("group", 8) != want("group", 200));
}

static void test_pass(const char *dir) {
    qs q;
    qo_module *m = build(4, &q);
    char pipe[4200];
    snprintf(pipe, sizeof pipe, "calibrate{data=%s/stream_x.npy batch=8}", dir);
    CHECK(qo_pipeline_run(&cx, m, pipe, NULL) == QO_OK);
    check_scales(m, &q, 8);
    qo_module_free(m);
}

/* ---- memory --------------------------------------------------------------------------------- */
typedef struct gen {
    qo_tensor buf;
    int64_t n, nb;
    uint64_t seed;
} gen;

static qo_status gen_next(void *user, qo_ctx *c, qo_tensor *in, uint32_t nin, int64_t *ns) {
    (void)c, (void)nin;
    gen *s = user;
    if (s->n >= s->nb) {
        *ns = 0;
        return QO_OK;
    }
    float *p = s->buf.data;
    for (int64_t i = 0; i < qo_tensor_numel(&s->buf); i++) {
        s->seed = s->seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((int64_t)(s->seed >> 40) - (1 << 23)) / (float)(1 << 22);
    }
    in[0] = s->buf;
    in[0].owned = 0;
    *ns = s->buf.dims[0];
    s->n++;
    return QO_OK;
}

static qo_status gen_rewind(void *user, qo_ctx *c) {
    (void)c;
    ((gen *)user)->n = 0;
    return QO_OK;
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = -1;
    fclose(f);
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

typedef struct prog {
    long at40, at400;
    int64_t calls, last;
} prog;

static void on_progress(void *user, int64_t done, int64_t total) {
    prog *p = user;
    (void)total;
    p->calls++;
    p->last = done;
    if (done == 40 * 16) p->at40 = rss_kb();
    if (done == 400 * 16) p->at400 = rss_kb();
}

static void test_memory(void) {
    qs q;
    qo_module *m = build(32, &q);
    gen s = {.nb = 400, .seed = 7};
    int64_t d[4] = {16, 3, 32, 32};
    CHECK(qo_tensor_make(&cx, &s.buf, QO_F32, 4, d) == QO_OK);
    qo_batch_source src = {.next = gen_next, .rewind = gen_rewind, .user = &s, .total = 400 * 16};
    prog p = {0};
    qo_calib_opts o = {.threads = 1, .progress = on_progress, .progress_user = &p};
    CHECK(qo_calibrate(&cx, m, &src, &o) == QO_OK);
    CHECK_EQ(p.calls, 400);
    CHECK_EQ(p.last, 400 * 16);
    CHECK(scale_of(m, q.qa) > 0 && scale_of(m, q.qc) > 0);
    printf("resident memory after 40 batches %ld KiB, after 400 batches %ld KiB (%lld MiB of data streamed)\n",
           p.at40, p.at400, (long long)(400 * qo_tensor_numel(&s.buf) * 4) >> 20);
    if (!UNDER_ASAN) CHECK(p.at40 > 0 && p.at400 - p.at40 < 1024);
    qo_tensor_free(&s.buf);
    qo_module_free(m);
}

/* ---- bad data --------------------------------------------------------------------------------- */
static void test_bad_input(void) {
    qs q;
    qo_module *m = build(4, &q);
    qo_ctx c;
    qt_diags d;
    qt_ctx(&c, &d);
    qo_tensor bad;
    int64_t dims[4] = {10, 3, 5, 4};
    CHECK(qo_tensor_make(&cx, &bad, QO_F32, 4, dims) == QO_OK);
    qo_batch_source src;
    CHECK(qo_batch_source_tensors(&cx, &bad, 1, 8, &src) == QO_OK);
    CHECK(qo_calibrate(&c, m, &src, NULL) == QO_ERR_USAGE);
    CHECK(qt_has(&d, NULL, "input 'x'") && qt_has(&d, NULL, "[N,3,4,4]") && qt_has(&d, NULL, "[8,3,5,4]"));
    qt_dump(&d);
    qo_batch_source_free(&src);
    qo_tensor_free(&bad);
    CHECK(qo_qnode_is_pending(qo_module_main(m), q.qa)); /* nothing resolved */

    /* float64 data through the pass form */
    int64_t d2[4] = {5, 3, 4, 4};
    CHECK(qo_tensor_make(&cx, &bad, QO_F64, 4, d2) == QO_OK);
    char path[] = "/tmp/qcalib_bad_XXXXXX.npy";
    int fd = mkstemps(path, 4);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK(qo_npy_write(&cx, path, &bad) == QO_OK);
    qt_ctx(&c, &d);
    char pipe[256];
    snprintf(pipe, sizeof pipe, "calibrate{data=%s}", path);
    CHECK(qo_pipeline_run(&c, m, pipe, NULL) != QO_OK);
    CHECK(qt_has(&d, NULL, "input 'x'") && qt_has(&d, NULL, "[N,3,4,4]") && qt_has(&d, NULL, "[5,3,4,4]"));
    qt_dump(&d);
    unlink(path);
    qo_tensor_free(&bad);
    qo_module_free(m);

    /* a per-channel activation quantizer: refused, naming it */
    m = build(4, &q);
    qo_qspec pc;
    qo_ctx c2;
    qt_diags dg2;
    qt_ctx(&c2, &dg2);
    if (qo_qspec_parse(&c2, NULL, "int8_act_per_tensor_float:per_channel=1,axis=1", &pc) == QO_OK) {
        qo_graph *g = qo_module_main(m);
        qo_node pn = qo_qnode_new(&cx, g, g->inputs[0], &pc, 0, NULL, NULL);
        CHECK(pn != 0);
        qo_batch_source s2;
        CHECK(qo_batch_source_tensors(&cx, &bad, 0, 8, &s2) == QO_ERR_USAGE); /* no tensors */
        qo_tensor ok;
        int64_t d3[4] = {8, 3, 4, 4};
        CHECK(qo_tensor_make(&cx, &ok, QO_F32, 4, d3) == QO_OK);
        CHECK(qo_batch_source_tensors(&cx, &ok, 1, 8, &s2) == QO_OK);
        CHECK(qo_calibrate(&c2, m, &s2, NULL) == QO_ERR_UNSUPPORTED);
        CHECK(qt_has(&dg2, "x_quant", "per-channel activation quantizers"));
        qt_dump(&dg2);
        qo_batch_source_free(&s2);
        qo_tensor_free(&ok);
    }
    qo_module_free(m);
}

/* ---- data-free -------------------------------------------------------------------------------- */
/* x -> Conv 1x1 (W, B) -> BatchNormalization 'bn' -> Relu -> r, pending quantizers on r and x */
static qo_module *bn_graph(qo_node *qr, qo_node *qx) {
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    int64_t d[4] = {-1, 3, 4, 4}, wd[4] = {3, 3, 1, 1}, c3 = 3;
    qo_atom syms[4] = {qo_intern(m, "N"), 0, 0, 0};
    qo_val x = qo_graph_add_input(g, "x", qo_type_tensor(m, QO_F32, 4, d, syms));
    const float w[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}, bias[3] = {0.1f, 0.2f, 0.3f};
    qo_val cin[3] = {x, qo_pass_add_const(g, "W", QO_F32, 4, wd, w), qo_pass_add_const(g, "B", QO_F32, 1, &c3, bias)};
    qo_node conv = qo_node_new(g, QO_OP_CONV, NULL, NULL, 3, cin, 1);
    qo_node_set_name(g, conv, "conv");
    qo_val_set_name(g, qo_node_output(g, conv, 0), "conv_out");
    const float gamma[3] = {0.5f, -2.0f, 1.0f}, beta[3] = {0.25f, 1.0f, -4.0f}, mean[3] = {0, 0, 0}, var[3] = {1, 1, 1};
    qo_val bn_in[5] = {qo_node_output(g, conv, 0), qo_pass_add_const(g, "gamma", QO_F32, 1, &c3, gamma),
                       qo_pass_add_const(g, "beta", QO_F32, 1, &c3, beta),
                       qo_pass_add_const(g, "mean", QO_F32, 1, &c3, mean),
                       qo_pass_add_const(g, "var", QO_F32, 1, &c3, var)};
    qo_node bn = qo_node_new(g, QO_OP_BATCHNORMALIZATION, NULL, NULL, 5, bn_in, 1);
    qo_node_set_name(g, bn, "bn");
    qo_val b = qo_node_output(g, bn, 0);
    qo_val_set_name(g, b, "bn_out");
    qo_node r = qo_node_new(g, QO_OP_RELU, NULL, NULL, 1, &b, 1);
    qo_val rv = qo_node_output(g, r, 0);
    qo_val_set_name(g, rv, "r");
    qo_graph_add_output(g, rv);
    CHECK(qo_pipeline_run(&cx, m, "shape-infer", NULL) == QO_OK);
    *qr = addq(g, rv, "uint8_act_per_tensor_float", 0);
    *qx = addq(g, x, "int8_act_per_tensor_float", 0);
    return m;
}

static void check_datafree_diags(const qt_diags *dd) {
    int warns = 0;
    bool bnw = false, synw = false;
    for (int i = 0; i < dd->n; i++) {
        if (dd->kind[i] != QO_DIAG_WARNING) continue;
        warns++;
        bnw |= strstr(dd->text[i], "BatchNormalization 'bn'") != NULL && strstr(dd->text[i], "'r'") != NULL;
        synw |= strstr(dd->text[i], "synthetic") != NULL && strstr(dd->text[i], "'x'") != NULL;
    }
    CHECK_EQ(warns, 2);
    CHECK(bnw && synw);
    qt_dump(dd);
}

static void test_datafree(void) {
    qo_node qr, qx;
    qo_module *m = bn_graph(&qr, &qx);
    qo_ctx c;
    qt_diags dd;
    qt_ctx(&c, &dd);
    CHECK(qo_pipeline_run(&c, m, "calibrate", NULL) == QO_OK); /* no data: data-free */
    check_datafree_diags(&dd);
    /* unsigned after Relu: max_c max(beta + 3|gamma|, 0) = max(1.75, 7, -1) = 7, threshold 255 */
    CHECK_EQ(qo_f32_bits(scale_of(m, qr)), qo_f32_bits(7.0f / 255.0f));
    float sx = scale_of(m, qx);
    CHECK(sx > 0);
    qo_module_free(m);

    /* the same after fold-bn, with the ranges recorded before it */
    m = bn_graph(&qr, &qx);
    qo_calib_bn_ranges *t = qo_calib_bn_collect(qo_module_main(m));
    CHECK(qo_pipeline_run(&cx, m, "fold-bn", NULL) == QO_OK);
    int nbn = 0;
    QO_FOR_EACH_NODE(qo_module_main(m), n) nbn += qo_module_main(m)->nodes[n].op == QO_OP_BATCHNORMALIZATION;
    CHECK_EQ(nbn, 0);
    qt_ctx(&c, &dd);
    CHECK(qo_calibrate_datafree_bn(&c, m, t, NULL) == QO_OK);
    check_datafree_diags(&dd);
    CHECK_EQ(qo_f32_bits(scale_of(m, qr)), qo_f32_bits(7.0f / 255.0f));
    CHECK_EQ(qo_f32_bits(scale_of(m, qx)), qo_f32_bits(sx)); /* seeded: the same synthetic data */
    qo_calib_bn_free(t);
    qo_module_free(m);
}

/* ---- quant-bias errors ------------------------------------------------------------------------- */
static void test_bias_errors(void) {
    /* x [N,4] -> Gemm(W quantized, b pending) ; the input is not quantized */
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    int64_t d[2] = {-1, 4}, wd[2] = {2, 4}, c2 = 2;
    qo_val x = qo_graph_add_input(g, "x", qo_type_tensor(m, QO_F32, 2, d, NULL));
    const float w[8] = {1, 2, 3, 4, -1, -2, -3, -4}, b[2] = {0.5f, -0.25f};
    qo_val ins[3] = {x, qo_pass_add_const(g, "W", QO_F32, 2, wd, w), qo_pass_add_const(g, "B", QO_F32, 1, &c2, b)};
    qo_node gm = qo_node_new(g, QO_OP_GEMM, NULL, NULL, 3, ins, 1);
    qo_node_set_name(g, gm, "fc");
    qo_node_set_attr_int(g, gm, "transB", 1);
    qo_graph_add_output(g, qo_node_output(g, gm, 0));
    CHECK(qo_pipeline_run(&cx, m, "shape-infer", NULL) == QO_OK);
    qo_qspec ws, bs;
    CHECK(qo_qspec_parse(&cx, NULL, "int8_weight_per_channel_float", &ws) == QO_OK);
    CHECK(qo_qspec_parse(&cx, NULL, "int32_bias", &bs) == QO_OK);
    const float wsc[2] = {4.0f / 127, 4.0f / 127};
    qo_node wq = qo_qnode_new(&cx, g, ins[1], &ws, 2, wsc, NULL);
    qo_node bq = qo_qnode_new(&cx, g, ins[2], &bs, 0, NULL, NULL);
    CHECK(wq && bq);
    if (!wq || !bq) return;
    qo_set_input(g, qo_node_use(g, gm, 1), qo_node_output(g, wq, 0));
    qo_set_input(g, qo_node_use(g, gm, 2), qo_node_output(g, bq, 0));
    qo_ctx c;
    qt_diags dd;
    qt_ctx(&c, &dd);
    CHECK(qo_pipeline_run(&c, m, "quant-bias", NULL) == QO_ERR_USAGE);
    CHECK(qt_has(&dd, "fc", "input scale required") && qt_has(&dd, "fc", "'x'"));
    qt_dump(&dd);
    CHECK(qo_qnode_is_pending(g, bq));
    /* quantize the input (scale 0.5): bias scales 0.5 x 4/127 each (float32 product) */
    qo_qspec as;
    CHECK(qo_qspec_parse(&cx, NULL, "int8_act_per_tensor_float", &as) == QO_OK);
    float half = 0.5f;
    qo_node xq = qo_qnode_new(&cx, g, x, &as, 1, &half, NULL);
    CHECK(xq != 0);
    if (!xq) return;
    qo_set_input(g, qo_node_use(g, gm, 0), qo_node_output(g, xq, 0));
    qt_ctx(&c, &dd);
    CHECK(qo_pipeline_run(&c, m, "quant-bias,verify", NULL) == QO_OK);
    CHECK(!qo_qnode_is_pending(g, bq));
    qo_qparams p;
    CHECK(qo_qnode_read(&cx, g, bq, &p) == QO_OK);
    CHECK_EQ(p.n, 2);
    CHECK_EQ(p.bits, 32);
    volatile float prod = 0.5f * (4.0f / 127); /* float32 product */
    for (uint32_t i = 0; i < p.n; i++) CHECK_EQ(qo_f32_bits(p.scales[i]), qo_f32_bits(prod));
    qo_qparams_free(&p);
    qo_module_free(m);
}

/* ---- bias correction vs tools/gen_qcalib_biascorr.py (torch) ----------------------------------- */
static qo_val const_npy(qo_graph *g, const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    qo_tensor t;
    if (qo_npy_read(&cx, path, &t) != QO_OK) return 0;
    qo_val v = qo_pass_add_const(g, name, QO_F32, t.rank, t.dims, t.data);
    qo_tensor_free(&t);
    return v;
}

static qo_val wquant(qo_graph *g, qo_val w) {
    qo_qspec s;
    CHECK(qo_qspec_parse(&cx, NULL, "int8_weight_per_channel_float:bits=4,narrow=0", &s) == QO_OK);
    qo_tensor wt;
    CHECK(qo_tensor_from_const(&cx, g->m, g->vals[w].cref, &wt) == QO_OK);
    qo_qtensor qt;
    CHECK(qo_quant_weight(&cx, NULL, &s, &wt, &qt) == QO_OK);
    qo_node q = qo_qnode_new(&cx, g, w, &s, qt.nscale, qt.scales, qt.zps);
    qo_qtensor_free(&qt);
    qo_tensor_free(&wt);
    return q ? qo_node_output(g, q, 0) : 0;
}

static qo_val aquant(qo_graph *g, qo_val x, const char *spec, float scale) {
    qo_qspec s;
    CHECK(qo_qspec_parse(&cx, NULL, spec, &s) == QO_OK);
    qo_node q = qo_qnode_new(&cx, g, x, &s, 1, &scale, NULL);
    return q ? qo_node_output(g, q, 0) : 0;
}

static void test_bias_correct(const char *dir, const char *expected, const qo_tensor *x) {
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    int64_t d[4] = {-1, 3, 4, 4};
    qo_atom syms[4] = {qo_intern(m, "N"), 0, 0, 0};
    qo_val xv = qo_graph_add_input(g, "x", qo_type_tensor(m, QO_F32, 4, d, syms));
    qo_val w1 = const_npy(g, dir, "bc_w1"), b1 = const_npy(g, dir, "bc_b1"), w2 = const_npy(g, dir, "bc_w2");
    CHECK(w1 && b1 && w2);
    if (!w1 || !b1 || !w2) return;
    /* the float net first (shape-infer gives every value a type), then its quantizers */
    qo_val a_in[3] = {xv, w1, b1};
    qo_node ca = qo_node_new(g, QO_OP_CONV, NULL, NULL, 3, a_in, 1);
    qo_node_set_name(g, ca, "convA");
    qo_val av = qo_node_output(g, ca, 0);
    qo_val_set_name(g, av, "a");
    qo_node r = qo_node_new(g, QO_OP_RELU, NULL, NULL, 1, &av, 1);
    qo_val rv = qo_node_output(g, r, 0);
    qo_val_set_name(g, rv, "r");
    qo_val b_in[2] = {rv, w2};
    qo_node cb = qo_node_new(g, QO_OP_CONV, NULL, NULL, 2, b_in, 1);
    qo_node_set_name(g, cb, "convB");
    const int64_t pads[4] = {1, 1, 1, 1};
    qo_node_set_attr_ints(g, cb, "pads", pads, 4);
    qo_val_set_name(g, qo_node_output(g, cb, 0), "y");
    qo_graph_add_output(g, qo_node_output(g, cb, 0));
    CHECK(qo_pipeline_run(&cx, m, "shape-infer", NULL) == QO_OK);
    qo_qspec bs;
    CHECK(qo_qspec_parse(&cx, NULL, "int32_bias", &bs) == QO_OK);
    qo_node b1q = qo_qnode_new(&cx, g, b1, &bs, 0, NULL, NULL);
    qo_set_input(g, qo_node_use(g, ca, 0), aquant(g, xv, "int8_act_per_tensor_float", 1.0f / 16));
    qo_set_input(g, qo_node_use(g, ca, 1), wquant(g, w1));
    qo_set_input(g, qo_node_use(g, ca, 2), qo_node_output(g, b1q, 0));
    qo_set_input(g, qo_node_use(g, cb, 0), aquant(g, rv, "uint8_act_per_tensor_float", 1.0f / 32));
    qo_set_input(g, qo_node_use(g, cb, 1), wquant(g, w2));
    CHECK(qo_pipeline_run(&cx, m, "shape-infer,verify", NULL) == QO_OK);
    CHECK(qo_quant_bias_graph(&cx, g) == QO_OK);
    qo_batch_source src;
    CHECK(qo_batch_source_tensors(&cx, x, 1, 64, &src) == QO_OK);
    CHECK(qo_bias_correct(&cx, m, &src, NULL) == QO_OK);
    qo_batch_source_free(&src);
    CHECK(qo_verify(&cx, m) == QO_OK);

    FILE *f = fopen(expected, "r");
    CHECK(f != NULL);
    char line[256];
    int n = 0, codes_ok = 0;
    int64_t worst = 0;
    while (f && fgets(line, sizeof line, f)) {
        char layer[8], hb[64], hs[64];
        int ch;
        long long code;
        if (line[0] == '#' || sscanf(line, "%7s %d %63s %63s %lld", layer, &ch, hb, hs, &code) != 5) continue;
        qo_node L = layer[0] == 'A' ? ca : cb;
        CHECK(g->nodes[L].nin == 3);
        qo_node bq = qo_qnode_of(g, qo_node_input(g, L, 2));
        CHECK(bq && !qo_qnode_is_pending(g, bq));
        if (!bq) continue;
        qo_qparams p;
        qo_qspec spec;
        CHECK(qo_qnode_read(&cx, g, bq, &p) == QO_OK);
        CHECK(qo_qnode_spec(&cx, g, bq, &spec));
        CHECK_EQ(p.bits, 32);
        qo_tensor bt;
        CHECK(qo_tensor_from_const(&cx, m, g->vals[qo_node_input(g, bq, 0)].cref, &bt) == QO_OK);
        float bias = ((const float *)bt.data)[ch], want_b = strtof(hb, NULL), want_s = strtof(hs, NULL);
        int32_t x1 = (int32_t)qo_f32_bits(bias), x2 = (int32_t)qo_f32_bits(want_b);
        int64_t u = x1 > x2 ? (int64_t)x1 - x2 : (int64_t)x2 - x1;
        if (u > worst) worst = u;
        CHECK(u <= 32); /* float32 means of conv outputs summed in another order than PyTorch's */
        CHECK_EQ(qo_f32_bits(p.scales[ch]), qo_f32_bits(want_s));
        int64_t got = qo_qspec_to_int(&spec, bias, p.scales[ch], 0);
        CHECK_EQ(got, code);
        codes_ok += got == code;
        n++;
        qo_tensor_free(&bt);
        qo_qparams_free(&p);
    }
    if (f) fclose(f);
    CHECK_EQ(n, 6);
    printf("bias correction vs torch: %d/%d int32 codes equal, corrected biases within %lld ulp\n", codes_ok, n,
           (long long)worst);
    qo_module_free(m);
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    qo_ctx_init(&cx);
    FILE *f = fopen(argv[2], "r");
    CHECK(f != NULL);
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (line[0] != '#' && nex < 16) {
            char hex[64];
            if (sscanf(line, "%31s %d %63s", EX[nex].name, &EX[nex].batch, hex) == 3) {
                EX[nex].scale = strtof(hex, NULL);
                nex++;
            }
        }
    if (f) fclose(f);
    CHECK_EQ(nex, 9);
    char path[4096];
    snprintf(path, sizeof path, "%s/stream_x.npy", argv[1]);
    qo_tensor x;
    CHECK(qo_npy_read(&cx, path, &x) == QO_OK);
    if (qt_fail) return qt_finish();
    qt_current = "batches";
    test_batches(&x);
    qt_current = "pass";
    test_pass(argv[1]);
    RUN(test_memory);
    RUN(test_bad_input);
    RUN(test_datafree);
    RUN(test_bias_errors);
    qt_current = "bias_correct";
    test_bias_correct(argv[1], argv[3], &x);
    qo_tensor_free(&x);
    return qt_finish();
}
