/* tests/runtime/shape/run_shape_cases.c — runs the shape-family kernel cases (gen_cases.py).
 *
 *   run_shape_cases CASESDIR LISTFILE
 *
 * Each listed case CASESDIR/<name>/ holds model.onnx and test_data_set_0/input_N.pb; it either has
 * output_N.pb (expected values from numpy, ONNX's reference or onnxruntime: compared exactly for
 * non-float types and with |a - b| <= 1e-6 + 1e-4 * |b| for floats) or expect_error.txt (the run must
 * fail and one error diagnostic must contain that text and name the node's op). */
#include "frontend/onnx_load.h"
#include "runtime/rt.h"
#include "runtime/tensor_pb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXT 16

typedef struct diag_log {
    char text[4096];
} diag_log;

static void on_diag(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    diag_log *d = ud;
    if (kind != QO_DIAG_ERROR) return;
    size_t n = strlen(d->text);
    snprintf(d->text + n, sizeof d->text - n, "%s: %s\n", loc && loc->op ? loc->op : "-", msg);
}

static double elem_f64(const qo_tensor *t, int64_t i) {
    switch (t->elem) {
    case QO_F32: return ((const float *)t->data)[i];
    case QO_F64: return ((const double *)t->data)[i];
    case QO_F16: {
        uint16_t h = ((const uint16_t *)t->data)[i];
        int e = (h >> 10) & 0x1f, m = h & 0x3ff;
        double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
        return h & 0x8000 ? -v : v;
    }
    default: return 0;
    }
}

static int compare(const qo_tensor *got, const qo_tensor *exp, char *why, size_t cap) {
    if (got->elem != exp->elem) return snprintf(why, cap, "type %d, expected %d", got->elem, exp->elem), 0;
    if (got->rank != exp->rank) return snprintf(why, cap, "rank %d, expected %d", got->rank, exp->rank), 0;
    for (int d = 0; d < got->rank; d++)
        if (got->dims[d] != exp->dims[d])
            return snprintf(why, cap, "dim %d is %lld, expected %lld", d, (long long)got->dims[d],
                            (long long)exp->dims[d]), 0;
    int64_t n = qo_tensor_numel(got);
    bool fl = got->elem == QO_F32 || got->elem == QO_F64 || got->elem == QO_F16;
    size_t es = qo_rt_elem_size(got->elem);
    for (int64_t i = 0; i < n; i++) {
        if (fl) {
            double a = elem_f64(got, i), b = elem_f64(exp, i);
            if (isnan(a) && isnan(b)) continue;
            if (!(fabs(a - b) <= 1e-6 + 1e-4 * fabs(b)))
                return snprintf(why, cap, "element %lld is %.9g, expected %.9g", (long long)i, a, b), 0;
        } else if (memcmp((const char *)got->data + i * es, (const char *)exp->data + i * es, es)) {
            return snprintf(why, cap, "element %lld differs", (long long)i), 0;
        }
    }
    return 1;
}

/* Runs one case; returns 1 on pass and fills why otherwise. */
static int run_case(const char *dir, char *why, size_t cap) {
    diag_log log = {{0}};
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = on_diag;
    cx.diag_ud = &log;
    char path[4200];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    qo_module *m = NULL;
    if (qo_onnx_load(&cx, path, &m) != QO_OK) return snprintf(why, cap, "load failed: %.400s", log.text), 0;
    const qo_graph *g = qo_module_main(m);
    qo_tensor ins[MAXT] = {{0}}, outs[MAXT] = {{0}}, exp[MAXT] = {{0}};
    const qo_tensor *inp[MAXT];
    int ok = 0;
    uint32_t nin = g->ninputs, nout = g->noutputs;
    if (nin > MAXT || nout > MAXT) {
        snprintf(why, cap, "too many inputs/outputs");
        goto done;
    }
    for (uint32_t i = 0; i < nin; i++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%u.pb", dir, i);
        if (qo_tensor_pb_read(&cx, path, &ins[i], NULL) != QO_OK) {
            snprintf(why, cap, "cannot read input %u: %.400s", i, log.text);
            goto done;
        }
        inp[i] = &ins[i];
    }
    snprintf(path, sizeof path, "%s/expect_error.txt", dir);
    FILE *ef = fopen(path, "r");
    qo_status s = qo_interp_run(&cx, m, inp, nin, outs, nout);
    if (ef) {
        char want[512] = "";
        if (!fgets(want, sizeof want, ef)) want[0] = 0;
        fclose(ef);
        want[strcspn(want, "\n")] = 0;
        if (s == QO_OK) snprintf(why, cap, "ran, expected the error '%s'", want);
        else if (!strstr(log.text, want)) snprintf(why, cap, "error text '%.400s' lacks '%.200s'", log.text, want);
        else if (!strstr(log.text, qo_node_op_type(g, g->first)))
            snprintf(why, cap, "error does not name op %s: %.400s", qo_node_op_type(g, g->first), log.text);
        else ok = 1;
        goto done;
    }
    if (s != QO_OK) {
        snprintf(why, cap, "run failed: %.400s", log.text);
        goto done;
    }
    ok = 1;
    for (uint32_t i = 0; i < nout && ok; i++) {
        snprintf(path, sizeof path, "%s/test_data_set_0/output_%u.pb", dir, i);
        if (qo_tensor_pb_read(&cx, path, &exp[i], NULL) != QO_OK) {
            snprintf(why, cap, "cannot read output %u", i);
            ok = 0;
        } else {
            char w[256];
            if (!compare(&outs[i], &exp[i], w, sizeof w)) {
                snprintf(why, cap, "output %u: %s", i, w);
                ok = 0;
            }
        }
    }
done:
    for (int i = 0; i < MAXT; i++) {
        qo_tensor_free(&ins[i]);
        qo_tensor_free(&outs[i]);
        qo_tensor_free(&exp[i]);
    }
    qo_module_free(m);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: run_shape_cases CASESDIR LISTFILE\n");
        return 2;
    }
    FILE *lf = fopen(argv[2], "r");
    if (!lf) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 2;
    }
    char name[512];
    int pass = 0, fail = 0;
    while (fgets(name, sizeof name, lf)) {
        name[strcspn(name, "\r\n")] = 0;
        if (!name[0] || name[0] == '#') continue;
        char dir[4096], why[1024] = "";
        snprintf(dir, sizeof dir, "%s/%s", argv[1], name);
        if (run_case(dir, why, sizeof why)) pass++;
        else {
            fail++;
            printf("FAIL %s: %s\n", name, why);
        }
    }
    fclose(lf);
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
