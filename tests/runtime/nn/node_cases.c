/* tests/runtime/nn/node_cases.c — runs ONNX backend-test-style cases (DIR/<case>/model.onnx with
 * test_data_set_N/{input_K.pb,output_K.pb}) through the reference interpreter and compares every
 * output with the stored one: floats within |got - want| <= atol + rtol*|want| (NaN matches NaN),
 * everything else exactly.
 *
 * usage: node_cases LIST DIR [DIR...] [-v]
 *   LIST lines: "<case> [rtol [atol]]" ('#' comments); each case is looked up in the DIRs in order.
 * Prints "N passed, N failed" and exits non-zero if any listed case fails. */
#include "frontend/onnx_load.h"
#include "runtime/rt.h"
#include "runtime/tensor_pb.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool verbose;

static void quiet_diag(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    char buf[512];
    (void)ud;
    if (!verbose || kind != QO_DIAG_ERROR) return;
    qo_loc_format(loc, buf, sizeof buf);
    fprintf(stderr, "    %s: %s\n", buf, msg);
}

static double load(const qo_tensor *t, int64_t i) {
    switch (t->elem) {
    case QO_F32: return ((const float *)t->data)[i];
    case QO_F64: return ((const double *)t->data)[i];
    default: return 0;
    }
}

/* Compares got with want; on mismatch prints why (verbose) and returns false. */
static bool same(const char *what, const qo_tensor *got, const qo_tensor *want, double rtol, double atol) {
    if (got->elem != want->elem || got->rank != want->rank) {
        if (verbose) fprintf(stderr, "    %s: elem/rank %d/%d, want %d/%d\n", what, got->elem, got->rank, want->elem, want->rank);
        return false;
    }
    for (int i = 0; i < got->rank; i++)
        if (got->dims[i] != want->dims[i]) {
            if (verbose) fprintf(stderr, "    %s: dim %d is %lld, want %lld\n", what, i, (long long)got->dims[i], (long long)want->dims[i]);
            return false;
        }
    int64_t n = qo_tensor_numel(got);
    if (got->elem == QO_F32 || got->elem == QO_F64) {
        for (int64_t i = 0; i < n; i++) {
            double a = load(got, i), b = load(want, i);
            if (isnan(a) && isnan(b)) continue;
            if (a == b) continue;
            if (!(fabs(a - b) <= atol + rtol * fabs(b))) {
                if (verbose) fprintf(stderr, "    %s: element %lld is %.9g, want %.9g\n", what, (long long)i, a, b);
                return false;
            }
        }
        return true;
    }
    if (got->nbytes != want->nbytes || (got->nbytes && memcmp(got->data, want->data, got->nbytes) != 0)) {
        if (verbose) fprintf(stderr, "    %s: bytes differ\n", what);
        return false;
    }
    return true;
}

static bool exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* Runs every test_data_set_N of the case in dir; true if all match. */
static bool run_case(qo_ctx *cx, const char *dir, double rtol, double atol) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    qo_module *m = NULL;
    if (qo_onnx_load(cx, path, &m) != QO_OK) return false;
    const qo_graph *g = qo_module_main(m);
    bool ok = true;
    int nsets = 0;
    for (int set = 0; ok; set++) {
        char sd[3600];
        snprintf(sd, sizeof sd, "%s/test_data_set_%d", dir, set);
        if (!exists(sd)) break;
        nsets++;
        uint32_t nin = g->ninputs, nout = g->noutputs;
        qo_tensor *ins = calloc(nin ? nin : 1, sizeof *ins), *outs = calloc(nout ? nout : 1, sizeof *outs);
        const qo_tensor **inp = calloc(nin ? nin : 1, sizeof *inp);
        for (uint32_t i = 0; i < nin && ok; i++) {
            snprintf(path, sizeof path, "%s/input_%u.pb", sd, i);
            if (!exists(path)) continue; /* optional input left to its initializer */
            ok = qo_tensor_pb_read(cx, path, &ins[i], NULL) == QO_OK;
            inp[i] = &ins[i];
        }
        if (ok) ok = qo_interp_run(cx, m, inp, nin, outs, nout) == QO_OK;
        for (uint32_t i = 0; i < nout && ok; i++) {
            qo_tensor want;
            snprintf(path, sizeof path, "%s/output_%u.pb", sd, i);
            if (qo_tensor_pb_read(cx, path, &want, NULL) != QO_OK) {
                ok = false;
                break;
            }
            char what[64];
            snprintf(what, sizeof what, "set %d output %u", set, i);
            ok = same(what, &outs[i], &want, rtol, atol);
            qo_tensor_free(&want);
        }
        for (uint32_t i = 0; i < nin; i++) qo_tensor_free(&ins[i]);
        for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&outs[i]);
        free(ins), free(outs), free(inp);
    }
    qo_module_free(m);
    return ok && nsets > 0;
}

int main(int argc, char **argv) {
    const char *list = NULL;
    const char *dirs[16];
    int ndirs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = true;
        else if (!list) list = argv[i];
        else if (ndirs < 16) dirs[ndirs++] = argv[i];
    }
    if (!list || !ndirs) {
        fprintf(stderr, "usage: node_cases LIST DIR [DIR...] [-v]\n");
        return 2;
    }
    FILE *f = fopen(list, "r");
    if (!f) {
        perror(list);
        return 2;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = quiet_diag;
    char line[1024];
    int pass = 0, fail = 0;
    while (fgets(line, sizeof line, f)) {
        char name[512];
        double rtol = 1e-3, atol = 1e-5;
        char *h = strchr(line, '#');
        if (h) *h = 0;
        int n = sscanf(line, "%511s %lf %lf", name, &rtol, &atol);
        if (n < 1) continue;
        char dir[3000] = "";
        for (int d = 0; d < ndirs; d++) {
            snprintf(dir, sizeof dir, "%s/%s", dirs[d], name);
            if (exists(dir)) break;
            dir[0] = 0;
        }
        bool ok = dir[0] && run_case(&cx, dir, rtol, atol);
        if (ok) pass++;
        else {
            fail++;
            printf("FAIL %s%s\n", name, dir[0] ? "" : " (case not found)");
        }
        if (verbose && ok) printf("ok   %s\n", name);
    }
    fclose(f);
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
