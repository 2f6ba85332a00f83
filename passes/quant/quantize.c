/* passes/quant/quantize.c — the quantization driver (quantize.h): preprocessing, insert-quant,
 * calibration, bias quantization and correction, quant-prop, the SQNR report, and writing. */
#include "passes/quant/quantize.h"

#include "backends/llvm/jit.h"
#include "backends/onnx/onnx_write.h"
#include "backends/qcdq/qcdq.h"
#include "passes/pass.h"
#include "passes/quant/calib.h"
#include "passes/quant/config.h"
#include "passes/quant/qgraph.h"
#include "runtime/dataset.h"

#include <json-c/json.h>
#include <math.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the dataset as a batch source ------------------------------------------------------------ */
typedef struct dsrc {
    qo_dataset *d;
    int64_t batch, max, done;
    uint32_t n;
    qo_tensor *buf;
} dsrc;

static qo_status ds_next(void *u, qo_ctx *cx, qo_tensor *in, uint32_t nin, int64_t *ns) {
    dsrc *s = u;
    *ns = 0;
    int64_t want = s->batch;
    if (s->max && s->max - s->done < want) want = s->max - s->done;
    if (want <= 0) return QO_OK;
    QO_TRY(qo_dataset_next(cx, s->d, want, s->buf, ns));
    s->done += *ns;
    for (uint32_t i = 0; i < nin && i < s->n; i++) {
        in[i] = s->buf[i];
        in[i].owned = 0;
    }
    return QO_OK;
}

static qo_status ds_rewind(void *u, qo_ctx *cx) {
    dsrc *s = u;
    s->done = 0;
    return qo_dataset_rewind(cx, s->d);
}

static void ds_close(dsrc *s) {
    if (s->buf)
        for (uint32_t i = 0; i < s->n; i++) qo_tensor_free(&s->buf[i]);
    qo_free(s->buf);
    qo_dataset_free(s->d);
    memset(s, 0, sizeof *s);
}

/* Opens o->calib for g's inputs. */
static qo_status ds_open(qo_ctx *cx, const qo_graph *g, const qo_quantize_opts *o, dsrc *s, qo_batch_source *src) {
    memset(s, 0, sizeof *s);
    uint32_t n = g->ninputs;
    const char **names = qo_malloc(sizeof(char *) * (n ? n : 1));
    int32_t *ranks = qo_malloc(sizeof(int32_t) * (n ? n : 1));
    for (uint32_t i = 0; i < n; i++) {
        names[i] = qo_val_name(g, g->inputs[i]);
        const qo_typedata *td = qo_type_get(g->m, g->vals[g->inputs[i]].type);
        ranks[i] = td && td->kind == QO_TY_TENSOR ? td->rank : -1;
    }
    qo_status st = qo_dataset_open(cx, o->calib, n, n == 1 ? NULL : names, ranks, &s->d);
    qo_free(names);
    qo_free(ranks);
    if (st != QO_OK) return st;
    s->n = n;
    s->batch = o->batch > 0 ? o->batch : 64;
    /* a model whose inputs have a fixed batch dimension (often 1, with Reshapes baked for it) can
       only run batches of that size */
    for (uint32_t i = 0; i < n; i++) {
        const qo_typedata *td = qo_type_get(g->m, g->vals[g->inputs[i]].type);
        if (td && td->kind == QO_TY_TENSOR && td->rank > 0 && td->dims[0] > 0 && td->dims[0] != s->batch) {
            qo_note(cx, NULL, "input '%s' has a fixed batch dimension of %lld: calibrating in batches of %lld",
                    qo_val_name(g, g->inputs[i]), (long long)td->dims[0], (long long)td->dims[0]);
            s->batch = td->dims[0];
            break;
        }
    }
    s->max = o->max_samples;
    s->buf = qo_calloc(n ? n : 1, sizeof(qo_tensor));
    int64_t total = qo_dataset_count(s->d);
    if (s->max && s->max < total) total = s->max;
    *src = (qo_batch_source){ds_next, ds_rewind, s, total};
    return QO_OK;
}

/* ---- progress adapters -------------------------------------------------------------------------- */
typedef struct prog {
    const qo_quantize_opts *o;
    const char *phase;
} prog;

static void on_progress(void *u, int64_t done, int64_t total) {
    prog *p = u;
    if (p->o->progress) p->o->progress(p->o->progress_user, p->phase, done, total);
}

/* ---- the report -------------------------------------------------------------------------------- */
static bool is_weighted(uint16_t op) {
    return op == QO_OP_CONV || op == QO_OP_CONVTRANSPOSE || op == QO_OP_GEMM || op == QO_OP_MATMUL;
}

static const qo_quant *val_quant(const qo_graph *g, qo_val v) {
    const qo_typedata *td = v ? qo_type_get(g->m, g->vals[v].type) : NULL;
    return td ? td->quant : NULL;
}

/* Fills the static part of row r for weighted node n. */
static void layer_row(qo_ctx *cx, const qo_graph *g, qo_node n, qo_qlayer *r) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", qo_node_name(g, n));
    snprintf(r->op, sizeof r->op, "%s", qo_node_op_type(g, n));
    r->sqnr_db = NAN;
    qo_node wq = qo_qnode_of(g, qo_node_input(g, n, 1));
    qo_qparams p;
    if (wq && qo_qnode_read(cx, g, wq, &p) == QO_OK) {
        r->wbits = p.bits;
        r->w_signed = p.is_signed;
        r->w_per_channel = p.axis >= 0;
        r->wscale_min = r->wscale_max = p.scales[0];
        for (uint32_t i = 1; i < p.n; i++) {
            if (p.scales[i] < r->wscale_min) r->wscale_min = p.scales[i];
            if (p.scales[i] > r->wscale_max) r->wscale_max = p.scales[i];
        }
        qo_qparams_free(&p);
    }
    const qo_quant *aq = val_quant(g, qo_node_input(g, n, 0));
    if (aq) {
        r->abits = aq->bits;
        r->a_signed = aq->is_signed;
        r->ascale = aq->per_axis ? NAN : aq->scale;
    }
    qo_val b = g->nodes[n].nin > 2 ? qo_node_input(g, n, 2) : 0;
    const qo_quant *bq = val_quant(g, b);
    if (bq) r->bbits = bq->bits;
}

/* Result 0 of the live node named `name` (non-empty), or 0. */
static qo_val node_out(const qo_graph *g, const char *name) {
    if (!name || !name[0]) return 0;
    QO_FOR_EACH_NODE(g, n)
        if (!strcmp(qo_node_name(g, n), name)) return qo_node_output(g, n, 0);
    return 0;
}

typedef struct cmp_ctx {
    qo_jit *jf[2], *jq[2]; /* compiled per batch size (full, last) */
    int64_t bs[2];
    const qo_module *fm, *qm;
    uint32_t nout;
    double *sig, *noise;
    int threads;
} cmp_ctx;

static qo_status compile_pair(qo_ctx *cx, cmp_ctx *c, int slot, const qo_tensor *in, uint32_t nin) {
    qo_jit_opts jo = {.threads = c->threads, .opt_level = -1, .ninput_shapes = nin, .input_shapes = in};
    QO_TRY(qo_jit_compile(cx, c->fm, &jo, &c->jf[slot]));
    return qo_jit_compile(cx, c->qm, &jo, &c->jq[slot]);
}

/* Runs both modules on one batch and accumulates signal and noise per output. */
static qo_status compare_batch(qo_ctx *cx, cmp_ctx *c, const qo_tensor *in, uint32_t nin, int64_t ns) {
    int slot = ns == c->bs[0] ? 0 : ns == c->bs[1] ? 1 : -1;
    if (slot < 0) {
        slot = c->jf[0] ? 1 : 0;
        if (c->jf[slot]) {
            qo_jit_free(c->jf[slot]);
            qo_jit_free(c->jq[slot]);
            c->jf[slot] = c->jq[slot] = NULL;
        }
        QO_TRY(compile_pair(cx, c, slot, in, nin));
        c->bs[slot] = ns;
    }
    const qo_tensor **ip = qo_malloc(sizeof(qo_tensor *) * (nin ? nin : 1));
    for (uint32_t i = 0; i < nin; i++) ip[i] = &in[i];
    qo_tensor *fo = qo_calloc(c->nout, sizeof(qo_tensor)), *qo_ = qo_calloc(c->nout, sizeof(qo_tensor));
    qo_status st = qo_jit_run(c->jf[slot], ip, nin, fo, c->nout);
    if (st == QO_OK) st = qo_jit_run(c->jq[slot], ip, nin, qo_, c->nout);
    for (uint32_t k = 0; st == QO_OK && k < c->nout; k++) {
        if (fo[k].elem != QO_F32 || qo_[k].elem != QO_F32 || fo[k].nbytes != qo_[k].nbytes) continue;
        const float *f = fo[k].data, *q = qo_[k].data;
        int64_t n = qo_tensor_numel(&fo[k]);
        double s = 0, e = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = (double)f[i] - (double)q[i];
            s += (double)f[i] * f[i];
            e += d * d;
        }
        c->sig[k] += s;
        c->noise[k] += e;
    }
    for (uint32_t k = 0; k < c->nout; k++) {
        qo_tensor_free(&fo[k]);
        qo_tensor_free(&qo_[k]);
    }
    qo_free(fo);
    qo_free(qo_);
    qo_free(ip);
    return st;
}

/* Builds the report rows and, with data, measures SQNR of every row against the float module. */
static qo_status make_report(qo_ctx *cx, qo_module *m, const qo_module *fmod, qo_batch_source *src,
                             const qo_quantize_opts *o, qo_quantize_report *rep) {
    qo_graph *g = qo_module_main(m);
    uint32_t cap = 0;
    QO_FOR_EACH_NODE(g, n) {
        if (qo_qnode_is_quant(g, n)) rep->nquantizers++;
        if (is_weighted(g->nodes[n].op)) cap++;
    }
    cap += g->noutputs;
    rep->layers = qo_calloc(cap ? cap : 1, sizeof(qo_qlayer));
    /* rows: weighted layers, then graph outputs; each row's float-side value name */
    const char **vname = qo_calloc(cap ? cap : 1, sizeof(char *));
    QO_FOR_EACH_NODE(g, n) {
        if (!is_weighted(g->nodes[n].op)) continue;
        layer_row(cx, g, n, &rep->layers[rep->nlayers]);
        vname[rep->nlayers++] = qo_node_name(g, n); /* layer outputs are matched by node name: insert-quant
                                                        may rename a result it quantizes */
    }
    for (uint32_t i = 0; i < g->noutputs; i++) {
        qo_qlayer *r = &rep->layers[rep->nlayers];
        memset(r, 0, sizeof *r);
        qo_val v = qo_graph_output(g, i);
        snprintf(r->name, sizeof r->name, "output %s", qo_val_name(g, v));
        snprintf(r->op, sizeof r->op, "output");
        const qo_quant *q = val_quant(g, v);
        if (q) {
            r->abits = q->bits;
            r->a_signed = q->is_signed;
            r->ascale = q->per_axis ? NAN : q->scale;
        }
        r->sqnr_db = NAN;
        vname[rep->nlayers++] = NULL; /* the graph output itself */
    }
    qo_status st = QO_OK;
    if (!src || o->no_report) goto done;
    /* two comparison modules: the float and the quantized graph, each exposing the rows' values */
    qo_module *fm = NULL, *qm = NULL;
    st = qo_calib_clone(cx, fmod, &fm);
    if (st == QO_OK) st = qo_calib_clone(cx, m, &qm);
    cmp_ctx c = {.fm = fm, .qm = qm, .threads = o->threads, .bs = {-1, -1}};
    uint32_t *row_of = qo_calloc(cap ? cap : 1, sizeof(uint32_t));
    if (st == QO_OK) {
        qo_graph *fg = qo_module_main(fm), *qg = qo_module_main(qm);
        uint32_t nfo = fg->noutputs; /* the original outputs come first, in both */
        if (nfo != qg->noutputs) {
            st = qo_error(cx, QO_ERR_PASS, NULL, "report: the quantized graph has %u outputs, the float one %u",
                          qg->noutputs, nfo);
        } else {
            c.nout = nfo;
            for (uint32_t r = 0; r < rep->nlayers; r++) {
                if (!vname[r]) continue;
                qo_val fv = node_out(fg, vname[r]), qv = node_out(qg, vname[r]);
                if (!fv || !qv) continue;
                qo_graph_add_output(fg, fv);
                qo_graph_add_output(qg, qv);
                row_of[c.nout++] = r + 1;
            }
            uint32_t k = 0;
            for (uint32_t r = 0; r < rep->nlayers; r++)
                if (!vname[r]) row_of[k++] = r + 1;
        }
    }
    if (st == QO_OK) {
        c.sig = qo_calloc(c.nout ? c.nout : 1, sizeof(double));
        c.noise = qo_calloc(c.nout ? c.nout : 1, sizeof(double));
        st = src->rewind(src->user, cx);
        qo_tensor *in = qo_calloc(g->ninputs ? g->ninputs : 1, sizeof(qo_tensor));
        int64_t ns = 0, done = 0;
        while (st == QO_OK && (st = src->next(src->user, cx, in, g->ninputs, &ns)) == QO_OK && ns > 0) {
            st = compare_batch(cx, &c, in, g->ninputs, ns);
            done += ns;
            if (o->progress) o->progress(o->progress_user, "report", done, src->total);
        }
        qo_free(in);
        for (uint32_t k = 0; st == QO_OK && k < c.nout; k++) {
            if (!row_of[k]) continue;
            qo_qlayer *r = &rep->layers[row_of[k] - 1];
            r->sqnr_db = c.noise[k] == 0 ? INFINITY : 10.0 * log10(c.sig[k] / c.noise[k]);
        }
    }
    for (int i = 0; i < 2; i++) {
        qo_jit_free(c.jf[i]);
        qo_jit_free(c.jq[i]);
    }
    qo_free(c.sig);
    qo_free(c.noise);
    qo_free(row_of);
    qo_module_free(fm);
    qo_module_free(qm);
done:
    qo_free(vname);
    return st;
}

/* ---- the driver ---------------------------------------------------------------------------------- */
static qo_status build_config(qo_ctx *cx, const qo_quantize_opts *o, qo_qconfig *cfg) {
    qo_qconfig_default(cfg);
    if (o->config) QO_TRY(qo_qconfig_load(cx, o->config, cfg));
    if (o->weights) QO_TRY(qo_qconfig_set(cx, cfg, "weights", o->weights));
    if (o->acts) QO_TRY(qo_qconfig_set(cx, cfg, "acts", o->acts));
    if (o->bias) QO_TRY(qo_qconfig_set(cx, cfg, "bias", o->bias));
    for (uint32_t i = 0; i < o->nset; i++) {
        const char *eq = strchr(o->set[i], '=');
        if (!eq) return qo_error(cx, QO_ERR_USAGE, NULL, "config override '%s' is not KEY=VALUE", o->set[i]);
        char key[64];
        size_t kl = (size_t)(eq - o->set[i]) < sizeof key - 1 ? (size_t)(eq - o->set[i]) : sizeof key - 1;
        memcpy(key, o->set[i], kl);
        key[kl] = 0;
        QO_TRY(qo_qconfig_set(cx, cfg, key, eq + 1));
    }
    return QO_OK;
}

qo_status qo_quantize(qo_ctx *cx, qo_module *m, const qo_quantize_opts *o, qo_quantize_report *rep) {
    qo_quantize_report local;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    qo_graph *g = qo_module_main(m);
    if (!g) return qo_error(cx, QO_ERR_USAGE, NULL, "the model has no graph");
    qo_qconfig cfg;
    qo_status st = build_config(cx, o, &cfg); /* bad specs fail before any work */
    dsrc ds = {0};
    qo_batch_source src = {0}, *srcp = NULL;
    qo_module *fmod = NULL;
    double t0 = now();
    if (st == QO_OK && o->calib) {
        st = ds_open(cx, g, o, &ds, &src);
        if (st == QO_OK) srcp = &src;
    }
    /* a model that is already quantized (QCDQ/QDQ chains, QONNX Quant nodes) keeps its quantizers:
       they become Quant nodes with QuantTensor metadata and the model is only re-expressed */
    uint32_t nimported = 0;
    if (st == QO_OK) st = qo_pipeline_run(cx, m, "canonicalize,shape-infer", NULL);
    int64_t opset = qo_module_opset(m, "");
    if (st == QO_OK && opset && opset < 13) { /* QCDQ needs opset 13 (per-axis Q/DQ) */
        qo_note(cx, NULL, "the model imports opset %lld: upgraded to 13 first (upgrade-opset)", (long long)opset);
        st = qo_pipeline_run(cx, m, "upgrade-opset{to=13},shape-infer", NULL);
    }
    if (st == QO_OK) st = qo_import_quant(cx, qo_module_main(m), &nimported);
    if (st == QO_OK && nimported) {
        rep->prequantized = true;
        qo_note(cx, NULL, "the model is already quantized (%u quantizers imported): kept as they are, "
                          "no calibration", nimported);
        st = qo_pipeline_run(cx, m, "shape-infer,dce", NULL);
        if (st == QO_OK) st = qo_quant_prop(cx, qo_module_main(m));
        if (st == QO_OK) st = qo_verify(cx, m);
        if (st == QO_OK) st = make_report(cx, m, NULL, NULL, o, rep);
        ds_close(&ds);
        qo_qconfig_free(&cfg);
        if (rep == &local) qo_quantize_report_free(rep);
        return st;
    }
    /* data-free ranges come from BatchNorm statistics: record them before fold-bn folds the BNs away */
    qo_calib_bn_ranges *bn = !o->calib && st == QO_OK ? qo_calib_bn_collect(qo_module_main(m)) : NULL;
    if (st == QO_OK)
        st = qo_pipeline_run(cx, m, o->no_fold_bn ? "const-fold,dce" : "const-fold,fold-bn,dce,shape-infer", NULL);
    if (st == QO_OK) g = qo_module_main(m);
    if (st == QO_OK && srcp && !o->no_report) st = qo_calib_clone(cx, m, &fmod);
    double t1 = now();
    rep->t_prep = t1 - t0;
    if (st == QO_OK) st = qo_insert_quant(cx, g, &cfg, NULL);
    double t2 = now();
    rep->t_insert = t2 - t1;
    prog pc = {o, "calibrate"};
    qo_calib_opts co = {.threads = o->threads, .progress = on_progress, .progress_user = &pc};
    if (st == QO_OK) {
        if (srcp) {
            st = qo_calibrate(cx, m, srcp, &co);
            rep->samples = src.total;
        } else {
            rep->datafree = true;
            qo_warning(cx, NULL, "no calibration data given: activation ranges are derived without data "
                                 "(from BatchNorm statistics where present, else synthetic inputs); pass --calib for real ranges");
            st = qo_calibrate_datafree_bn(cx, m, bn, &co);
        }
    }
    double t3 = now();
    rep->t_calib = t3 - t2;
    if (st == QO_OK) st = qo_quant_bias_graph(cx, g);
    if (st == QO_OK && srcp && !o->no_bias_correction) {
        pc.phase = "bias-correct";
        st = qo_bias_correct(cx, m, srcp, &co);
    }
    if (st == QO_OK) st = qo_quant_prop(cx, g);
    if (st == QO_OK) st = qo_verify(cx, m);
    double t4 = now();
    rep->t_bias = t4 - t3;
    if (st == QO_OK) st = make_report(cx, m, fmod, srcp, o, rep);
    rep->t_report = now() - t4;
    qo_module_free(fmod);
    qo_calib_bn_free(bn);
    ds_close(&ds);
    qo_qconfig_free(&cfg);
    if (rep == &local) qo_quantize_report_free(rep);
    return st;
}

qo_status qo_quantize_write(qo_ctx *cx, qo_module *m, const char *path, const qo_quantize_opts *o) {
    qo_graph *g = qo_module_main(m);
    if (o->format == QO_QFORMAT_QCDQ) {
        qo_qcdq_opts qo = {.opset = o->opset};
        QO_TRY(qo_lower_qcdq(cx, m, &qo));
    } else {
        for (uint32_t i = 0; i < m->ngraphs; i++) qo_qnode_strip_attrs(m->graphs[i]);
    }
    (void)g;
    QO_TRY(qo_verify(cx, m));
    return qo_onnx_write(cx, m, path, NULL);
}

void qo_quantize_report_free(qo_quantize_report *rep) {
    qo_free(rep->layers);
    rep->layers = NULL;
    rep->nlayers = 0;
}

static json_object *num_or_null(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }

char *qo_quantize_report_json(const qo_quantize_report *rep, const char *input, const char *output) {
    json_object *root = json_object_new_object();
    json_object_object_add(root, "input", input ? json_object_new_string(input) : NULL);
    json_object_object_add(root, "output", output ? json_object_new_string(output) : NULL);
    json_object_object_add(root, "calibration_samples", json_object_new_int64(rep->samples));
    json_object_object_add(root, "data_free", json_object_new_boolean(rep->datafree));
    json_object_object_add(root, "quantizers", json_object_new_int64(rep->nquantizers));
    json_object *t = json_object_new_object();
    json_object_object_add(t, "prepare", json_object_new_double(rep->t_prep));
    json_object_object_add(t, "insert", json_object_new_double(rep->t_insert));
    json_object_object_add(t, "calibrate", json_object_new_double(rep->t_calib));
    json_object_object_add(t, "bias", json_object_new_double(rep->t_bias));
    json_object_object_add(t, "report", json_object_new_double(rep->t_report));
    json_object_object_add(root, "seconds", t);
    json_object *arr = json_object_new_array();
    for (uint32_t i = 0; i < rep->nlayers; i++) {
        const qo_qlayer *r = &rep->layers[i];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(r->name));
        json_object_object_add(o, "op", json_object_new_string(r->op));
        if (r->wbits) {
            json_object *w = json_object_new_object();
            json_object_object_add(w, "bits", json_object_new_int(r->wbits));
            json_object_object_add(w, "signed", json_object_new_boolean(r->w_signed));
            json_object_object_add(w, "per_channel", json_object_new_boolean(r->w_per_channel));
            json_object_object_add(w, "scale_min", json_object_new_double(r->wscale_min));
            json_object_object_add(w, "scale_max", json_object_new_double(r->wscale_max));
            json_object_object_add(o, "weight", w);
        }
        if (r->abits) {
            json_object *a = json_object_new_object();
            json_object_object_add(a, "bits", json_object_new_int(r->abits));
            json_object_object_add(a, "signed", json_object_new_boolean(r->a_signed));
            json_object_object_add(a, "scale", num_or_null(r->ascale));
            json_object_object_add(o, r->wbits ? "input" : "quant", a);
        }
        if (r->bbits) json_object_object_add(o, "bias_bits", json_object_new_int(r->bbits));
        json_object_object_add(o, "sqnr_db", isinf(r->sqnr_db) ? json_object_new_string("inf") : num_or_null(r->sqnr_db));
        json_object_array_add(arr, o);
    }
    json_object_object_add(root, "layers", arr);
    char *s = qo_strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return s;
}
