/* passes/quant/calibrate.c — `calibrate`: activation scales from calibration data (Brevitas
 * calibration_mode) or, without data, from BatchNormalization parameters and synthetic data; the
 * batch sources; and the batch runner shared with bias-correct (calib.h).
 *
 * How a calibration run works: the module is cloned (printed and parsed back, as the JIT does);
 * in the clone every Quant node is bypassed (Brevitas disables activation, weight and bias
 * quantization in calibration_mode) and the input of every pending activation quantizer becomes a
 * graph output. The clone is JIT-compiled for the batch shape (a shorter last batch compiles a
 * second variant) and run one batch at a time; each quantizer's tensor feeds its accumulator
 * (qo_qacc), one per qopt_group. Nodes of the clone are matched to the original's by program
 * order, which printing and parsing keep. */
#include "passes/quant/calib.h"

#include "backends/llvm/jit.h"
#include "passes/pass_impl.h"
#include "passes/quant/qgraph.h"
#include "runtime/dataset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- batch source over tensors ------------------------------------------------------------ */
/* Every source's user data starts with its destructor, so qo_batch_source_free handles both kinds. */
typedef void (*src_destroy)(void *user);

typedef struct tsrc {
    src_destroy destroy;
    const qo_tensor *x;
    uint32_t nin;
    int64_t batch, pos, n;
} tsrc;

static qo_status tsrc_next(void *user, qo_ctx *cx, qo_tensor *in, uint32_t nin, int64_t *nsamples) {
    tsrc *s = user;
    if (nin != s->nin)
        return qo_error(cx, QO_ERR_USAGE, NULL, "the calibration data has %u tensors, the model %u inputs", s->nin, nin);
    int64_t nb = s->n - s->pos < s->batch ? s->n - s->pos : s->batch;
    *nsamples = nb > 0 ? nb : 0;
    if (nb <= 0) return QO_OK;
    for (uint32_t i = 0; i < nin; i++) {
        const qo_tensor *t = &s->x[i];
        int64_t per = t->dims[0] ? qo_tensor_numel(t) / t->dims[0] : 0;
        size_t es = qo_rt_elem_size(t->elem);
        in[i] = *t;
        in[i].dims[0] = nb;
        in[i].data = (uint8_t *)t->data + (size_t)(s->pos * per) * es;
        in[i].nbytes = (size_t)(nb * per) * es;
        in[i].owned = 0;
    }
    s->pos += nb;
    return QO_OK;
}

static qo_status tsrc_rewind(void *user, qo_ctx *cx) {
    (void)cx;
    ((tsrc *)user)->pos = 0;
    return QO_OK;
}

qo_status qo_batch_source_tensors(qo_ctx *cx, const qo_tensor *x, uint32_t nin, int64_t batch, qo_batch_source *out) {
    memset(out, 0, sizeof *out);
    if (batch < 1) return qo_error(cx, QO_ERR_USAGE, NULL, "calibration batch size %lld: must be at least 1", (long long)batch);
    if (nin == 0) return qo_error(cx, QO_ERR_USAGE, NULL, "no calibration tensors");
    for (uint32_t i = 0; i < nin; i++) {
        if (x[i].rank < 1)
            return qo_error(cx, QO_ERR_USAGE, NULL,
                            "calibration tensor %u is a scalar: samples must lie along axis 0", i);
        if (x[i].dims[0] != x[0].dims[0])
            return qo_error(cx, QO_ERR_USAGE, NULL, "calibration tensor %u has %lld samples, tensor 0 has %lld", i,
                            (long long)x[i].dims[0], (long long)x[0].dims[0]);
    }
    tsrc *s = qo_calloc(1, sizeof *s);
    s->destroy = qo_free;
    s->x = x;
    s->nin = nin;
    s->batch = batch;
    s->n = x[0].dims[0];
    out->next = tsrc_next;
    out->rewind = tsrc_rewind;
    out->user = s;
    out->total = s->n;
    return QO_OK;
}

/* ---- batch source over a sample file (runtime/dataset.h) ------------------------------------- */
typedef struct fsrc {
    src_destroy destroy;
    qo_dataset *d;
    uint32_t nin;
    int64_t batch;
    qo_tensor *buf; /* nin tensors, reused batch after batch */
} fsrc;

static void fsrc_destroy(void *user) {
    fsrc *s = user;
    for (uint32_t i = 0; i < s->nin; i++) qo_tensor_free(&s->buf[i]);
    qo_free(s->buf);
    qo_dataset_free(s->d);
    qo_free(s);
}

static qo_status fsrc_next(void *user, qo_ctx *cx, qo_tensor *in, uint32_t nin, int64_t *nsamples) {
    fsrc *s = user;
    if (nin != s->nin)
        return qo_error(cx, QO_ERR_USAGE, NULL, "the calibration data has %u arrays, the model %u inputs", s->nin, nin);
    QO_TRY(qo_dataset_next(cx, s->d, s->batch, s->buf, nsamples));
    for (uint32_t i = 0; i < nin; i++) {
        in[i] = s->buf[i];
        in[i].owned = 0;
    }
    return QO_OK;
}

static qo_status fsrc_rewind(void *user, qo_ctx *cx) { return qo_dataset_rewind(cx, ((fsrc *)user)->d); }

qo_status qo_batch_source_file(qo_ctx *cx, const char *path, uint32_t nin, const char *const *names, int64_t batch,
                               qo_batch_source *out) {
    memset(out, 0, sizeof *out);
    if (batch < 1) return qo_error(cx, QO_ERR_USAGE, NULL, "calibration batch size %lld: must be at least 1", (long long)batch);
    if (nin == 0) return qo_error(cx, QO_ERR_USAGE, NULL, "no calibration arrays asked for");
    qo_dataset *d = NULL;
    QO_TRY(qo_dataset_open(cx, path, nin, names, NULL, &d));
    fsrc *s = qo_calloc(1, sizeof *s);
    s->destroy = fsrc_destroy;
    s->d = d;
    s->nin = nin;
    s->batch = batch;
    s->buf = qo_calloc(nin, sizeof *s->buf);
    out->next = fsrc_next;
    out->rewind = fsrc_rewind;
    out->user = s;
    out->total = qo_dataset_count(d);
    return QO_OK;
}

void qo_batch_source_free(qo_batch_source *s) {
    if (!s) return;
    if (s->user) (*(src_destroy *)s->user)(s->user);
    memset(s, 0, sizeof *s);
}

/* ---- shared helpers (calib.h, internal) ------------------------------------------------------ */
static void drop_diag(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    (void)ud, (void)kind, (void)loc, (void)msg;
}

qo_status qo_calib_clone(qo_ctx *cx, const qo_module *m, qo_module **out) {
    char *text = NULL;
    *out = NULL;
    const char *path = m->source_path ? qo_str(m, m->source_path) : "<calibrate>";
    QO_TRY(qo_print_module_str(cx, m, NULL, &text));
    /* borrowed constants print as file(...) references: parse silently, then retry fully inline */
    qo_ctx quiet = *cx;
    quiet.diag = drop_diag;
    quiet.diag_ud = NULL;
    qo_status s = qo_parse_module(&quiet, path, text, strlen(text), out);
    free(text);
    if (s == QO_OK) return QO_OK;
    qo_print_opts po = {.inline_all = true};
    QO_TRY(qo_print_module_str(cx, m, &po, &text));
    s = qo_parse_module(cx, path, text, strlen(text), out);
    free(text);
    return s;
}

qo_node *qo_calib_node_map(const qo_graph *a, const qo_graph *b) {
    qo_node *map = qo_calloc(a->nnodes + 1, sizeof *map);
    qo_node nb = b->first;
    QO_FOR_EACH_NODE(a, na) {
        if (!nb) break;
        map[na] = nb;
        nb = b->nodes[nb].next;
    }
    return map;
}

qo_val qo_calib_map_val(const qo_graph *a, const qo_graph *b, const qo_node *map, qo_val v) {
    if (!v) return 0;
    const qo_value *vd = &a->vals[v];
    if (vd->def) return map[vd->def] ? qo_node_output(b, map[vd->def], vd->res) : 0;
    if (vd->flags & QO_VAL_INPUT)
        for (uint32_t i = 0; i < a->ninputs; i++)
            if (a->inputs[i] == v) return i < b->ninputs ? b->inputs[i] : 0;
    const char *nm = qo_val_name(a, v);
    return nm[0] ? qo_graph_find(b, nm) : 0;
}

static void shape_text(const qo_module *m, const qo_graph *g, qo_val v, char *buf, size_t cap) {
    const qo_typedata *td = qo_type_get(m, g->vals[v].type);
    size_t o = 0;
    if (!td || td->kind != QO_TY_TENSOR) {
        snprintf(buf, cap, "a tensor");
        return;
    }
    o += (size_t)snprintf(buf + o, cap - o, "%s", qo_elem_name(td->elem));
    if (td->rank < 0) {
        snprintf(buf + o, cap - o, " of any shape");
        return;
    }
    o += (size_t)snprintf(buf + o, cap - o, " [");
    for (int32_t d = 0; d < td->rank && o < cap; d++) {
        const char *sep = d ? "," : "";
        if (td->syms && td->syms[d]) o += (size_t)snprintf(buf + o, cap - o, "%s%s", sep, qo_str(m, td->syms[d]));
        else if (td->dims[d] < 0) o += (size_t)snprintf(buf + o, cap - o, "%s?", sep);
        else o += (size_t)snprintf(buf + o, cap - o, "%s%lld", sep, (long long)td->dims[d]);
    }
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static void tensor_text(const qo_tensor *t, char *buf, size_t cap) {
    size_t o = (size_t)snprintf(buf, cap, "%s [", qo_elem_name(t->elem));
    for (int32_t d = 0; d < t->rank && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", d ? "," : "", (long long)t->dims[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

qo_status qo_calib_check_input(qo_ctx *cx, const qo_module *m, uint32_t i, const qo_tensor *t) {
    const qo_graph *g = qo_module_main(m);
    qo_val v = g->inputs[i];
    const qo_typedata *td = qo_type_get(m, g->vals[v].type);
    bool ok = true;
    if (td && td->kind == QO_TY_TENSOR) {
        if (td->elem && td->elem != t->elem) ok = false;
        if (td->rank >= 0) {
            if (td->rank != t->rank) ok = false;
            else
                for (int32_t d = 1; d < td->rank; d++)
                    if (td->dims[d] >= 0 && td->dims[d] != t->dims[d]) ok = false;
        }
    }
    if (t->rank < 1) ok = false;
    if (ok) return QO_OK;
    char want[256], got[256];
    shape_text(m, g, v, want, sizeof want);
    tensor_text(t, got, sizeof got);
    qo_loc loc = {.file = m->source_path ? qo_str(m, m->source_path) : NULL, .node_index = -1};
    return qo_error(cx, QO_ERR_USAGE, loc.file ? &loc : NULL,
                    "calibration data for input '%s': expected %s (samples along axis 0), got %s",
                    qo_val_name(g, v), want, got);
}

typedef struct jit_slot {
    qo_jit *j;
    int64_t nsamples;
} jit_slot;

/* Runs one batch in the JIT: slot 0 holds the graph compiled for the first batch size, slot 1 one for
 * any other (a short last batch), recompiled when the size changes. */
static qo_status run_jit(qo_ctx *cx, const qo_module *variant, jit_slot *slots, const qo_tensor *in,
                         const qo_tensor **inp, uint32_t nin, qo_tensor *out, uint32_t nout, int threads, int64_t ns) {
    int k = !slots[0].j || slots[0].nsamples == ns ? 0 : 1;
    if (slots[k].j && slots[k].nsamples != ns) {
        qo_jit_free(slots[k].j);
        slots[k].j = NULL;
    }
    if (!slots[k].j) {
        /* O1: these graphs run for one pass over the data; compile time dominates on small sets */
        qo_jit_opts jo = {.threads = threads, .opt_level = 1, .ninput_shapes = nin, .input_shapes = in};
        QO_TRY(qo_jit_compile(cx, variant, &jo, &slots[k].j));
        slots[k].nsamples = ns;
    }
    return qo_jit_run(slots[k].j, inp, nin, out, nout);
}

qo_status qo_calib_run(qo_ctx *cx, const qo_module *orig, const qo_module *variant, qo_batch_source *src,
                       const qo_calib_opts *o, qo_calib_batch_fn fn, void *user, int64_t *nbatches) {
    const qo_graph *g = qo_module_main(variant);
    uint32_t nin = g->ninputs, nout = g->noutputs;
    qo_loc gl = {.file = orig->source_path ? qo_str(orig, orig->source_path) : NULL, .node_index = -1};
    if (nbatches) *nbatches = 0;
    if (!src || !src->next) return qo_error(cx, QO_ERR_USAGE, &gl, "no calibration data source");
    if (nin == 0) return qo_error(cx, QO_ERR_USAGE, &gl, "the model has no inputs to feed calibration data to");
    if (src->rewind) QO_TRY(src->rewind(src->user, cx));
    qo_tensor *in = qo_calloc(nin, sizeof *in);
    const qo_tensor **inp = qo_calloc(nin, sizeof *inp);
    qo_tensor *out = qo_calloc(nout ? nout : 1, sizeof *out);
    jit_slot slots[2] = {{0}};
    qo_status st = QO_OK;
    int64_t done = 0, nb = 0, out_ns = -1; /* out holds the JIT's buffers for batches of out_ns samples */
    for (;;) {
        int64_t ns = 0;
        memset(in, 0, nin * sizeof *in);
        st = src->next(src->user, cx, in, nin, &ns);
        if (st != QO_OK || ns == 0) break;
        for (uint32_t i = 0; i < nin && st == QO_OK; i++) {
            st = qo_calib_check_input(cx, orig, i, &in[i]);
            if (st == QO_OK && in[i].dims[0] != ns)
                st = qo_error(cx, QO_ERR_USAGE, &gl, "calibration batch for input '%s' has %lld samples, expected %lld",
                              qo_val_name(g, g->inputs[i]), (long long)in[i].dims[0], (long long)ns);
            inp[i] = &in[i];
        }
        if (st != QO_OK) break;
        /* the JIT writes into the previous batch's output buffers when the batch size is the same
           (no allocation and page faults for every exposed activation, every batch) */
        bool reuse = !(o && o->interp) && ns == out_ns;
        if (!reuse) {
            for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&out[i]);
            memset(out, 0, (nout ? nout : 1) * sizeof *out);
        }
        if (o && o->interp) st = qo_interp_run(cx, variant, inp, nin, out, nout);
        else st = run_jit(cx, variant, slots, in, inp, nin, out, nout, o ? o->threads : 0, ns);
        out_ns = st == QO_OK && !(o && o->interp) ? ns : -1;
        if (st == QO_OK) st = fn(user, cx, in, nin, out, nout, ns);
        if (st != QO_OK) break;
        done += ns;
        nb++;
        if (o && o->progress) o->progress(o->progress_user, done, src->total);
    }
    for (int k = 0; k < 2; k++) qo_jit_free(slots[k].j);
    for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&out[i]);
    qo_free(out);
    qo_free(inp);
    qo_free(in);
    if (st == QO_OK && nb == 0) st = qo_error(cx, QO_ERR_USAGE, &gl, "the calibration data has no samples");
    if (nbatches) *nbatches = nb;
    return st;
}

/* ---- calibrate ------------------------------------------------------------------------------- */
typedef struct cq {
    qo_node n;      /* pending quantizer in the original graph */
    qo_qspec spec;
    uint32_t acc;   /* accumulator index */
    int32_t in_idx; /* >= 0: fed from graph input in_idx; else from output out_idx */
    uint32_t out_idx;
} cq;

typedef struct cal {
    cq *q;
    uint32_t nq;
    qo_qacc *acc;
    uint32_t nacc;
} cal;

static qo_status cal_batch(void *user, qo_ctx *cx, const qo_tensor *in, uint32_t nin, qo_tensor *out, uint32_t nout,
                           int64_t nsamples) {
    (void)nin, (void)nout, (void)nsamples;
    cal *c = user;
    for (uint32_t i = 0; i < c->nq; i++) {
        const qo_tensor *t = c->q[i].in_idx >= 0 ? &in[c->q[i].in_idx] : &out[c->q[i].out_idx];
        if (t->elem != QO_F32)
            return qo_error(cx, QO_ERR_UNSUPPORTED, NULL, "activation quantizer input is %s, expected float32",
                            qo_elem_name(t->elem));
        int64_t n = qo_tensor_numel(t);
        if (n > 0) QO_TRY(qo_qacc_add(cx, &c->acc[c->q[i].acc], t->data, n));
    }
    return QO_OK;
}

/* Collects the pending activation quantizers of g in graph order and their accumulators. */
static qo_status collect(qo_ctx *cx, qo_graph *g, cal *c) {
    memset(c, 0, sizeof *c);
    uint32_t cap = 0;
    int64_t *groups = NULL;
    qo_status st = QO_OK;
    QO_FOR_EACH_NODE(g, n) {
        if (!qo_qnode_is_pending(g, n)) continue;
        qo_qspec s;
        if (!qo_qnode_spec(cx, g, n, &s)) {
            st = QO_ERR_INVALID_MODEL;
            break;
        }
        if (s.role != QO_QROLE_ACT) continue;
        if (s.per_channel) {
            qo_loc loc = qo_node_loc(g, n);
            st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                          "calibrate: per-channel activation quantizers are not supported (Brevitas's calibration "
                          "collects per-tensor statistics); use a per-tensor spec for '%s'",
                          qo_val_name(g, qo_node_input(g, n, 0)));
            break;
        }
        if (c->nq == cap) {
            cap = cap ? cap * 2 : 16;
            c->q = qo_realloc(c->q, cap * sizeof *c->q);
            c->acc = qo_realloc(c->acc, cap * sizeof *c->acc);
            groups = qo_realloc(groups, cap * sizeof *groups);
        }
        int64_t grp = qo_qnode_group(g, n);
        uint32_t a = c->nacc;
        if (grp > 0)
            for (uint32_t k = 0; k < c->nq; k++)
                if (groups[k] == grp) a = c->q[k].acc;
        qo_loc loc = qo_node_loc(g, n);
        if (a == c->nacc) {
            st = qo_qacc_init(cx, &c->acc[c->nacc], &s);
            if (st != QO_OK) break;
            c->nacc++;
        } else if (c->acc[a].spec.stat != s.stat || c->acc[a].spec.high_q != s.high_q ||
                   c->acc[a].spec.low_q != s.low_q || c->acc[a].spec.calib != s.calib ||
                   c->acc[a].spec.zp != s.zp || c->acc[a].spec.pow2 != s.pow2) {
            /* members may differ in sign and bits: as Brevitas's align_input_quant with
               align_sign=False, they share the statistic (one scaling_impl) and each divides it by
               its own threshold (finish) */
            st = qo_error(cx, QO_ERR_USAGE, &loc, "quantizer group %lld mixes statistics (%s and %s): a group shares one statistic",
                          (long long)grp, c->acc[a].spec.name, s.name);
            break;
        }
        groups[c->nq] = grp;
        c->q[c->nq++] = (cq){.n = n, .spec = s, .acc = a, .in_idx = -1};
    }
    qo_free(groups);
    return st;
}

static void cal_free(cal *c) {
    qo_free(c->q);
    qo_free(c->acc);
    memset(c, 0, sizeof *c);
}

/* The clone of m with every Quant node bypassed and each quantizer's input exposed. */
static qo_status build_variant(qo_ctx *cx, qo_module *m, cal *c, qo_module **out) {
    qo_graph *g = qo_module_main(m);
    qo_module *vm = NULL;
    QO_TRY(qo_calib_clone(cx, m, &vm));
    qo_graph *vg = qo_module_main(vm);
    qo_node *map = qo_calib_node_map(g, vg);
    /* quantizer inputs, seen through other Quant nodes (bypassed below), mapped into the clone */
    qo_val *xs = qo_calloc(c->nq + 1, sizeof *xs);
    for (uint32_t i = 0; i < c->nq; i++) {
        qo_val x = qo_node_input(g, c->q[i].n, 0);
        while (qo_qnode_of(g, x)) x = qo_node_input(g, qo_qnode_of(g, x), 0);
        xs[i] = qo_calib_map_val(g, vg, map, x);
        for (uint32_t k = 0; k < g->ninputs; k++)
            if (g->inputs[k] == x) c->q[i].in_idx = (int32_t)k;
    }
    QO_FOR_EACH_NODE(vg, n) {
        if (!qo_qnode_is_quant(vg, n)) continue;
        qo_replace_all_uses(vg, qo_node_output(vg, n, 0), qo_node_input(vg, n, 0));
    }
    qo_status st = QO_OK;
    for (uint32_t i = 0; i < c->nq; i++) {
        if (c->q[i].in_idx >= 0) continue;
        if (!xs[i]) {
            qo_loc loc = qo_node_loc(g, c->q[i].n);
            st = qo_error(cx, QO_ERR_PASS, &loc, "calibrate: cannot find the quantizer's input in the clone");
            break;
        }
        uint32_t k = 0;
        for (; k < c->nq; k++)
            if (k < i && c->q[k].in_idx < 0 && xs[k] == xs[i]) break;
        if (k < i) c->q[i].out_idx = c->q[k].out_idx;
        else {
            c->q[i].out_idx = vg->noutputs;
            qo_graph_add_output(vg, xs[i]);
        }
    }
    qo_free(xs);
    qo_free(map);
    if (st != QO_OK) {
        qo_module_free(vm);
        return st;
    }
    *out = vm;
    return QO_OK;
}

static qo_status finish(qo_ctx *cx, qo_graph *g, cal *c) {
    for (uint32_t i = 0; i < c->nq; i++) {
        float sc;
        int32_t zp;
        qo_qacc a = c->acc[c->q[i].acc];
        a.spec = c->q[i].spec; /* the shared statistic, this member's threshold */
        QO_TRY(qo_qacc_result(cx, &a, &sc, &zp));
        /* the qo_quant lives on the result's type: give an untyped result a float tensor type */
        qo_val y = qo_node_output(g, c->q[i].n, 0);
        if (!g->vals[y].type) g->vals[y].type = qo_type_tensor(g->m, QO_F32, -1, NULL, NULL);
        QO_TRY(qo_qnode_set_params(cx, g, c->q[i].n, &c->q[i].spec, 1, &sc, &zp));
    }
    return QO_OK;
}

qo_status qo_calibrate(qo_ctx *cx, qo_module *m, qo_batch_source *src, const qo_calib_opts *o) {
    qo_graph *g = qo_module_main(m);
    if (!g) return qo_error(cx, QO_ERR_INVALID_MODEL, NULL, "the model has no main graph");
    cal c;
    qo_status st = collect(cx, g, &c);
    if (st != QO_OK || c.nq == 0) {
        cal_free(&c);
        return st;
    }
    qo_module *vm = NULL;
    st = build_variant(cx, m, &c, &vm);
    if (st == QO_OK) st = qo_calib_run(cx, m, vm, src, o, cal_batch, &c, NULL);
    if (st == QO_OK) st = finish(cx, g, &c);
    qo_module_free(vm);
    cal_free(&c);
    return st;
}

/* ---- data-free ------------------------------------------------------------------------------- */
/* ---- BatchNormalization ranges, keyed by the BN result's name (fold-bn keeps it) -------------- */
typedef struct bnr {
    char *val, *node; /* BN result name, BN node name */
    float sym, pos;   /* max_c max(|beta + 3|gamma||, |beta - 3|gamma||); max_c max(beta + 3|gamma|, 0) */
} bnr;

struct qo_calib_bn_ranges {
    bnr *r;
    uint32_t n;
};

qo_calib_bn_ranges *qo_calib_bn_collect(const qo_graph *g) {
    qo_calib_bn_ranges *t = qo_calloc(1, sizeof *t);
    uint32_t cap = 0;
    QO_FOR_EACH_NODE(g, d) {
        if (g->nodes[d].op != QO_OP_BATCHNORMALIZATION || g->nodes[d].nin < 3) continue;
        qo_val y = qo_node_output(g, d, 0);
        const qo_constdata *cg = qo_pass_val_const(g, qo_node_input(g, d, 1));
        if (!y || !qo_val_name(g, y)[0] || !cg) continue;
        int64_t C = qo_type_numel(g->m, cg->type);
        if (C <= 0 || C > (1 << 24)) continue;
        float *gm = qo_malloc(2 * (size_t)C * sizeof(float));
        float *bt = gm + C;
        if (qo_pass_const_floats(g, qo_node_input(g, d, 1), gm, C) == C &&
            qo_pass_const_floats(g, qo_node_input(g, d, 2), bt, C) == C) {
            float sym = 0.0f, pos = 0.0f;
            for (int64_t i = 0; i < C; i++) {
                float hi = bt[i] + 3.0f * fabsf(gm[i]), lo = bt[i] - 3.0f * fabsf(gm[i]);
                sym = fmaxf(sym, fmaxf(fabsf(hi), fabsf(lo)));
                pos = fmaxf(pos, fmaxf(hi, 0.0f));
            }
            if (t->n == cap) {
                cap = cap ? cap * 2 : 8;
                t->r = qo_realloc(t->r, cap * sizeof *t->r);
            }
            t->r[t->n++] = (bnr){.val = qo_strdup(qo_val_name(g, y)), .node = qo_strdup(qo_node_name(g, d)), .sym = sym, .pos = pos};
        }
        qo_free(gm);
    }
    return t;
}

void qo_calib_bn_free(qo_calib_bn_ranges *t) {
    if (!t) return;
    for (uint32_t i = 0; i < t->n; i++) {
        qo_free(t->r[i].val);
        qo_free(t->r[i].node);
    }
    qo_free(t->r);
    qo_free(t);
}

/* The BN range behind quantizer input x: x itself, or the input of the Relu/Clip defining x. */
static const bnr *bn_find(const qo_graph *g, const qo_calib_bn_ranges *t, qo_val x) {
    if (!t) return NULL;
    qo_val cand[2] = {x, 0};
    qo_node d = g->vals[x].def;
    if (d && (g->nodes[d].op == QO_OP_RELU || g->nodes[d].op == QO_OP_CLIP)) cand[1] = qo_node_input(g, d, 0);
    for (int k = 0; k < 2; k++) {
        if (!cand[k] || !qo_val_name(g, cand[k])[0]) continue;
        for (uint32_t i = 0; i < t->n; i++)
            if (!strcmp(t->r[i].val, qo_val_name(g, cand[k]))) return &t->r[i];
    }
    return NULL;
}

static uint64_t splitmix(uint64_t *st) {
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

qo_status qo_calibrate_datafree(qo_ctx *cx, qo_module *m, const qo_calib_opts *o) {
    qo_graph *g = qo_module_main(m);
    if (!g) return qo_error(cx, QO_ERR_INVALID_MODEL, NULL, "the model has no main graph");
    qo_calib_bn_ranges *t = qo_calib_bn_collect(g);
    qo_status st = qo_calibrate_datafree_bn(cx, m, t, o);
    qo_calib_bn_free(t);
    return st;
}

qo_status qo_calibrate_datafree_bn(qo_ctx *cx, qo_module *m, const qo_calib_bn_ranges *bn, const qo_calib_opts *o) {
    qo_graph *g = qo_module_main(m);
    if (!g) return qo_error(cx, QO_ERR_INVALID_MODEL, NULL, "the model has no main graph");
    cal c;
    QO_TRY(collect(cx, g, &c));
    uint32_t rest = 0;
    for (uint32_t i = 0; i < c.nq; i++) {
        qo_node n = c.q[i].n;
        qo_loc loc = qo_node_loc(g, n);
        const bnr *r = NULL;
        if (qo_qnode_group(g, n) == 0 && c.q[i].spec.zp == QO_QZP_ZERO && (r = bn_find(g, bn, qo_node_input(g, n, 0)))) {
            float stat = c.q[i].spec.is_signed ? r->sym : r->pos;
            float sc = qo_qspec_scale_from_stat(&c.q[i].spec, stat);
            int32_t zp = 0;
            qo_val y = qo_node_output(g, n, 0);
            if (!g->vals[y].type) g->vals[y].type = qo_type_tensor(g->m, QO_F32, -1, NULL, NULL);
            qo_status st = qo_qnode_set_params(cx, g, n, &c.q[i].spec, 1, &sc, &zp);
            if (st != QO_OK) {
                cal_free(&c);
                return st;
            }
            qo_warning(cx, &loc,
                       "no calibration data: activation range of '%s' taken from BatchNormalization '%s' "
                       "(beta +- 3|gamma|): range %g, scale %g",
                       qo_val_name(g, qo_node_input(g, n, 0)), r->node, (double)stat, (double)sc);
        } else
            rest++;
    }
    cal_free(&c);
    if (rest == 0) return QO_OK;
    /* the others: seeded N(0,1) synthetic data, 4 batches of 8 */
    enum { NB = 4, BATCH = 8 };
    uint32_t nin = g->ninputs;
    qo_tensor *x = qo_calloc(nin ? nin : 1, sizeof *x);
    qo_status st = QO_OK;
    uint64_t seed = 0x5eedca1bull;
    for (uint32_t i = 0; i < nin && st == QO_OK; i++) {
        const qo_typedata *td = qo_type_get(m, g->vals[g->inputs[i]].type);
        if (!td || td->kind != QO_TY_TENSOR || td->rank < 1 || td->rank > QO_MAX_RANK || td->elem != QO_F32) {
            qo_loc loc = {.file = m->source_path ? qo_str(m, m->source_path) : NULL, .node_index = -1};
            st = qo_error(cx, QO_ERR_UNSUPPORTED, &loc,
                          "no calibration data, and input '%s' is not a float32 tensor of known rank: cannot "
                          "make synthetic data for it",
                          qo_val_name(g, g->inputs[i]));
            break;
        }
        int64_t dims[QO_MAX_RANK];
        for (int32_t d = 0; d < td->rank; d++) dims[d] = d == 0 ? NB * BATCH : td->dims[d] < 0 ? 1 : td->dims[d];
        st = qo_tensor_make(cx, &x[i], QO_F32, td->rank, dims);
        if (st != QO_OK) break;
        float *p = x[i].data;
        int64_t n = qo_tensor_numel(&x[i]);
        for (int64_t k = 0; k < n; k++) { /* Box-Muller */
            double u1 = ((double)(splitmix(&seed) >> 11) + 1.0) / 9007199254740993.0;
            double u2 = (double)(splitmix(&seed) >> 11) / 9007199254740992.0;
            p[k] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        }
    }
    if (st == QO_OK) {
        qo_batch_source src;
        st = qo_batch_source_tensors(cx, x, nin, BATCH, &src);
        if (st == QO_OK) {
            cal c2;
            st = collect(cx, g, &c2);
            if (st == QO_OK) {
                for (uint32_t i = 0; i < c2.nq; i++) {
                    qo_loc loc = qo_node_loc(g, c2.q[i].n);
                    qo_warning(cx, &loc,
                               "no calibration data: activation range of '%s' calibrated on %d synthetic "
                               "N(0,1) samples (seeded), not on real data",
                               qo_val_name(g, qo_node_input(g, c2.q[i].n, 0)), NB * BATCH);
                }
                cal_free(&c2);
                st = qo_calibrate(cx, m, &src, o);
            }
            qo_batch_source_free(&src);
        }
    }
    for (uint32_t i = 0; i < nin; i++) qo_tensor_free(&x[i]);
    qo_free(x);
    return st;
}

/* ---- the pass -------------------------------------------------------------------------------- */
qo_status qo_calib_load_source(qo_pass_ctx *pc, qo_batch_source *src) {
    const char *data = qo_pass_opt_str(pc, "data");
    int64_t batch = qo_pass_opt_int(pc, "batch");
    qo_graph *g = qo_module_main(pc->m);
    memset(src, 0, sizeof *src);
    if (g->ninputs != 1)
        return qo_error(pc->cx, QO_ERR_USAGE, NULL,
                        "%s{data=%s}: one sample file feeds a single-input model, this one has %u inputs", pc->name,
                        data, g->ninputs);
    return qo_batch_source_file(pc->cx, data, 1, NULL, batch, src);
}

qo_status qo_pass_calibrate(qo_pass_ctx *pc, qo_graph *g) {
    (void)g;
    qo_calib_opts o = {.threads = (int)qo_pass_opt_int(pc, "threads")};
    const char *data = qo_pass_opt_str(pc, "data");
    if (!data || !data[0]) {
        qo_status st = qo_calibrate_datafree(pc->cx, pc->m, &o);
        pc->changed = true;
        return st;
    }
    qo_batch_source src;
    QO_TRY(qo_calib_load_source(pc, &src));
    qo_status st = qo_calibrate(pc->cx, pc->m, &src, &o);
    qo_batch_source_free(&src);
    pc->changed = true;
    return st;
}
