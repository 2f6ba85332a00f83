/* tests/runtime/ref/test_ref_cases.c — runs generated single-node cases through the reference
 * kernels (runtime/ref) and compares every output element exactly (NaN matches NaN; -0 == +0).
 *
 *   test_ref_cases CASEFILE...
 *
 * Case files are written by gen_quant_cases.py (format in its docstring); their expected outputs
 * come from onnxruntime or from a numpy transcription of shared/REFERENCE.md, never from qopt.
 * Also checks qo_round_apply on ties for every qo_round mode against a hand-written table taken
 * from REFERENCE.md §3.1/§4.1, and the float16 conversions exhaustively (f16 -> f32 -> f16). */
#include "runtime/ref/util.h"
#include "runtime/rt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int npass, nfail;

static void failf(const char *fmt, ...) QO_PRINTF(1, 2);
static void failf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    nfail++;
}

/* ---- rounding ------------------------------------------------------------------------------- */
static void test_rounding(void) {
    static const float xs[] = {0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 0.49999997f, -0.49999997f, 1.25f, -1.75f, 3.0f, -0.0f};
    enum { NX = sizeof xs / sizeof xs[0] };
    /* rows: qo_round order of ir/ir.h */
    static const float want[QO_ROUND_COUNT][NX] = {
        /* HALF_EVEN     */ {0, -0.0f, 2, -2, 2, -2, 0, -0.0f, 1, -2, 3, -0.0f},
        /* HALF_UP       */ {1, -1, 2, -2, 3, -3, 0, -0.0f, 1, -2, 3, -0.0f},
        /* HALF_DOWN     */ {0, -0.0f, 1, -1, 2, -2, 0, -0.0f, 1, -2, 3, -0.0f},
        /* CEIL          */ {1, -0.0f, 2, -1, 3, -2, 1, -0.0f, 2, -1, 3, -0.0f},
        /* FLOOR         */ {0, -1, 1, -2, 2, -3, 0, -1, 1, -2, 3, -0.0f},
        /* UP            */ {1, -1, 2, -2, 3, -3, 1, -1, 2, -2, 3, -0.0f},
        /* DOWN          */ {0, -0.0f, 1, -1, 2, -2, 0, -0.0f, 1, -1, 3, -0.0f},
        /* HALF_POS_INF  */ {1, -0.0f, 2, -1, 3, -2, 0, -0.0f, 1, -2, 3, -0.0f},
        /* DPU           */ {0, -0.0f, 2, -1, 2, -2, 0, -0.0f, 1, -2, 3, -0.0f},
    };
    for (int m = 0; m < QO_ROUND_COUNT; m++)
        for (int i = 0; i < NX; i++) {
            float r = qo_round_apply(xs[i], (qo_round)m);
            if (r != want[m][i]) failf("FAIL round %s(%.9g) = %.9g, want %.9g", qo_round_name((qo_round)m), xs[i], r, want[m][i]);
            else npass++;
        }
    /* NaN and infinities pass through every mode */
    for (int m = 0; m < QO_ROUND_COUNT; m++) {
        if (!isnan(qo_round_apply(NAN, (qo_round)m)) || qo_round_apply(INFINITY, (qo_round)m) != INFINITY ||
            qo_round_apply(-INFINITY, (qo_round)m) != -INFINITY || qo_round_apply(0x1p30f + 128, (qo_round)m) != 0x1p30f + 128)
            failf("FAIL round %s: special values", qo_round_name((qo_round)m));
        else npass++;
    }
}

static void test_f16(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = qo_f16_to_f32((uint16_t)h);
        uint16_t back = qo_f32_to_f16(f);
        bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (nan ? !(isnan(f) && (back & 0x7c00) == 0x7c00 && (back & 0x3ff)) : back != h) bad++;
        float bf = qo_bf16_to_f32((uint16_t)h);
        if (!isnan(bf) && qo_f32_to_bf16(bf) != h) bad++;
    }
    /* ties between two halves round to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 */
    if (qo_f32_to_f16(1.0f + 0x1p-11f) != 0x3c00 || qo_f32_to_f16(1.0f + 3 * 0x1p-11f) != 0x3c02 ||
        qo_f32_to_f16(65520.0f) != 0x7c00 || qo_f32_to_f16(65519.99f) != 0x7bff || qo_f32_to_f16(0x1p-25f) != 0 ||
        qo_f32_to_f16(0x1p-25f * 1.0000001f) != 1 || qo_f32_to_f16(0x1p-24f * 1.5f) != 2)
        bad++;
    if (qo_f32_to_bf16(1.0f + 0x1p-8f) != 0x3f80 || qo_f32_to_bf16(1.0f + 3 * 0x1p-8f) != 0x3f82) bad++;
    if (bad) failf("FAIL f16/bf16 conversions: %d mismatches", bad);
    else npass++;
}

/* ---- case files ----------------------------------------------------------------------------- */
/* Tokens of the current line (strtok_r over a line already NUL-terminated). */
typedef struct reader {
    char *save;
} reader;

static char *tok(reader *r) { return strtok_r(NULL, " \t\r", &r->save); }

/* Reads "ELEM RANK DIMS... VALUES..." (first token already read: e) into t (owned storage). */
static bool read_tensor(reader *r, const char *e, qo_ctx *cx, qo_tensor *t) {
    char *rk = tok(r);
    if (!e || !rk) return false;
    int32_t rank = atoi(rk);
    if (rank < 0 || rank > QO_MAX_RANK) return false;
    int64_t dims[QO_MAX_RANK];
    for (int32_t d = 0; d < rank; d++) {
        char *s = tok(r);
        if (!s) return false;
        dims[d] = atoll(s);
    }
    if (qo_tensor_make(cx, t, atoi(e), rank, dims) != QO_OK) return false;
    int64_t n = qo_tensor_numel(t);
    bool isf = qo_elem_is_float(t->elem);
    for (int64_t i = 0; i < n; i++) {
        char *s = tok(r);
        if (!s) return false;
        if (isf) qo_store_f64(t->data, t->elem, i, strtod(s, NULL));
        else if (t->elem == QO_U64) qo_store_i64(t->data, t->elem, i, (int64_t)strtoull(s, NULL, 10));
        else qo_store_i64(t->data, t->elem, i, strtoll(s, NULL, 10));
    }
    return true;
}

#define MAXIO 8

static bool same_value(const qo_tensor *a, const qo_tensor *b, int64_t i) {
    if (qo_elem_is_float(a->elem)) {
        double x = qo_load_f64(a->data, a->elem, i), y = qo_load_f64(b->data, b->elem, i);
        return (isnan(x) && isnan(y)) || x == y;
    }
    return qo_load_i64(a->data, a->elem, i) == qo_load_i64(b->data, b->elem, i);
}

typedef struct tcase {
    char name[256], domain[128], optype[64];
    int64_t opset;
    qo_attr attrs[MAXIO];
    char attr_names[MAXIO][64];
    int nattrs, nin, nout;
    qo_tensor ins[MAXIO], outs[MAXIO];
    bool present[MAXIO];
} tcase;

static void run_case(qo_ctx *cx, tcase *c) {
    qo_module *m = qo_module_new();
    qo_graph *g = qo_graph_new(m, NULL, 0, "g");
    qo_val vals[MAXIO];
    for (int i = 0; i < c->nin; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "in%d", i);
        vals[i] = c->present[i] ? qo_graph_add_input(g, nm, qo_type_tensor(m, (qo_elem)c->ins[i].elem, c->ins[i].rank,
                                                                            c->ins[i].dims, NULL))
                                : 0;
    }
    qo_op op = qo_op_lookup(c->domain, c->optype);
    qo_node n = qo_node_new(g, op, c->domain, c->optype, (uint32_t)c->nin, vals, (uint32_t)c->nout);
    for (int i = 0; i < c->nattrs; i++) {
        c->attrs[i].name = qo_intern(m, c->attr_names[i]);
        qo_node_set_attr(g, n, &c->attrs[i]);
    }
    qo_ref_kernel kern = qo_ref_kernel_for(op);
    if (!kern) {
        failf("FAIL %s: no kernel for %s", c->name, c->optype);
        qo_module_free(m);
        return;
    }
    qo_kctx k = {cx, g, n, c->opset, false};
    const qo_tensor *inp[MAXIO];
    for (int i = 0; i < c->nin; i++) inp[i] = c->present[i] ? &c->ins[i] : NULL;
    qo_tensor got[MAXIO];
    memset(got, 0, sizeof got);
    qo_status s = kern(&k, inp, (uint32_t)c->nin, got, (uint32_t)c->nout);
    if (s != QO_OK) {
        failf("FAIL %s: kernel error %s", c->name, qo_status_str(s));
    } else {
        for (int j = 0; j < c->nout; j++) {
            const qo_tensor *w = &c->outs[j], *a = &got[j];
            bool ok = a->elem == w->elem && a->rank == w->rank;
            for (int32_t d = 0; ok && d < w->rank; d++) ok = a->dims[d] == w->dims[d];
            if (!ok) {
                failf("FAIL %s: output %d has type %s rank %d, want %s rank %d", c->name, j, qo_elem_name(a->elem),
                      (int)a->rank, qo_elem_name(w->elem), (int)w->rank);
                continue;
            }
            int64_t cnt = qo_tensor_numel(w), bad = 0, first = -1;
            for (int64_t i = 0; i < cnt; i++)
                if (!same_value(a, w, i)) {
                    if (first < 0) first = i;
                    bad++;
                }
            if (bad)
                failf("FAIL %s: %lld of %lld values differ; first at %lld: got %.9g want %.9g", c->name,
                      (long long)bad, (long long)cnt, (long long)first, qo_load_f64(a->data, a->elem, first),
                      qo_load_f64(w->data, w->elem, first));
            else npass++;
        }
    }
    for (int j = 0; j < MAXIO; j++) qo_tensor_free(&got[j]);
    qo_module_free(m);
}

static int run_file(qo_ctx *cx, const char *path) {
    char *text;
    size_t len;
    if (qo_read_file(cx, path, &text, &len) != QO_OK) return 1;
    tcase *c = calloc(1, sizeof *c);
    char *lsave = NULL;
    for (char *line = strtok_r(text, "\n", &lsave); line; line = strtok_r(NULL, "\n", &lsave)) {
        reader r = {NULL};
        char *kw = strtok_r(line, " \t\r", &r.save);
        if (!kw || kw[0] == '#') continue;
        if (!strcmp(kw, "case")) {
            for (int i = 0; i < MAXIO; i++) {
                qo_tensor_free(&c->ins[i]);
                qo_tensor_free(&c->outs[i]);
            }
            memset(c, 0, sizeof *c);
            snprintf(c->name, sizeof c->name, "%s", tok(&r));
        } else if (!strcmp(kw, "op")) {
            char *d = tok(&r);
            snprintf(c->domain, sizeof c->domain, "%s", strcmp(d, "-") ? d : "");
            snprintf(c->optype, sizeof c->optype, "%s", tok(&r));
            c->opset = atoll(tok(&r));
        } else if (!strcmp(kw, "attr") && c->nattrs < MAXIO) {
            char *kind = tok(&r), *an = tok(&r), *v = tok(&r);
            qo_attr *a = &c->attrs[c->nattrs];
            snprintf(c->attr_names[c->nattrs], sizeof c->attr_names[0], "%s", an);
            if (kind[0] == 'i') a->kind = QO_ATTR_INT, a->u.i = atoll(v);
            else if (kind[0] == 'f') a->kind = QO_ATTR_FLOAT, a->u.f = (float)strtod(v, NULL);
            else a->kind = QO_ATTR_STRING, a->u.s.p = v, a->u.s.n = strlen(v); /* copied by set_attr */
            c->nattrs++;
            if (a->kind == QO_ATTR_STRING) { /* keep the bytes alive past this line: copy into the name slot */
                static char strs[MAXIO][64];
                snprintf(strs[c->nattrs - 1], sizeof strs[0], "%s", v);
                a->u.s.p = strs[c->nattrs - 1];
            }
        } else if (!strcmp(kw, "in") && c->nin < MAXIO) {
            char *e = tok(&r);
            if (e && !strcmp(e, "none")) {
                c->present[c->nin++] = false;
            } else {
                c->present[c->nin] = read_tensor(&r, e, cx, &c->ins[c->nin]);
                if (!c->present[c->nin]) failf("FAIL %s: bad input record", c->name);
                c->nin++;
            }
        } else if (!strcmp(kw, "out") && c->nout < MAXIO) {
            if (!read_tensor(&r, tok(&r), cx, &c->outs[c->nout])) failf("FAIL %s: bad output record", c->name);
            c->nout++;
        } else if (!strcmp(kw, "end")) {
            run_case(cx, c);
        }
    }
    for (int i = 0; i < MAXIO; i++) {
        qo_tensor_free(&c->ins[i]);
        qo_tensor_free(&c->outs[i]);
    }
    free(c);
    free(text);
    return 0;
}

int main(int argc, char **argv) {
    qo_ctx cx;
    qo_ctx_init(&cx);
    test_rounding();
    test_f16();
    for (int i = 1; i < argc; i++)
        if (run_file(&cx, argv[i])) nfail++;
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
