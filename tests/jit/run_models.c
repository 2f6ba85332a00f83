/* tests/jit/run_models.c — runs one model through the JIT and compares its outputs with
 * onnxruntime's (written beforehand by tests/ort/run.js).
 *
 *   jit_run_models MODEL.onnx INDIR ORTDIR [--max-rel R] [--repeat N]
 *
 * Inputs: INDIR/<sanitized input name>.npy (the sanitizing of tests/ort/lib.js). The graph is
 * compiled for those shapes; every output must satisfy max|jit - ort| <= R * max|ort| (normwise
 * relative error, default R = 1e-5; integer outputs exactly). Prints compile time, fused-group
 * statistics, the arena plan and the error per output; exit 0 pass, 1 fail, 77 unsupported (a model
 * the JIT does not compile because of an op it has no kernel for). */
#include "backends/llvm/jit.h"
#include "frontend/onnx_load.h"
#include "runtime/npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void sanitize(const char *in, char *out, size_t cap) {
    size_t k = 0;
    for (; in[k] && k + 2 < cap; k++) {
        char c = in[k];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == '-';
        out[k] = ok ? c : '_';
    }
    out[k] = 0;
    if (!strcmp(out, "") || !strcmp(out, ".") || !strcmp(out, "..")) {
        memmove(out + 1, out, strlen(out) + 1);
        out[0] = '_';
    }
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double as_double(const qo_tensor *t, int64_t i) {
    switch (t->elem) {
    case QO_F32: return ((const float *)t->data)[i];
    case QO_F64: return ((const double *)t->data)[i];
    case QO_I64: return (double)((const int64_t *)t->data)[i];
    case QO_I32: return ((const int32_t *)t->data)[i];
    case QO_I8: return ((const int8_t *)t->data)[i];
    case QO_U8: case QO_BOOL: return ((const uint8_t *)t->data)[i];
    default: return 0;
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.onnx INDIR ORTDIR [--max-rel R] [--repeat N]\n", argv[0]);
        return 2;
    }
    double max_rel = 1e-5;
    int repeat = 1;
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--max-rel")) max_rel = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat")) repeat = atoi(argv[i + 1]);
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = NULL;
    if (qo_onnx_load(&cx, argv[1], &m) != QO_OK) return 1;
    const qo_graph *g = qo_module_main(m);
    uint32_t nin = g->ninputs, nout = g->noutputs;
    qo_tensor *in = calloc(nin + 1, sizeof *in), *out = calloc(nout + 1, sizeof *out);
    const qo_tensor **inp = calloc(nin + 1, sizeof *inp);
    qo_tensor *shapes = calloc(nin + 1, sizeof *shapes);
    int rc = 0;
    for (uint32_t i = 0; i < nin; i++) {
        char nm[512], path[4096];
        sanitize(qo_val_name(g, g->inputs[i]), nm, sizeof nm);
        snprintf(path, sizeof path, "%s/%s.npy", argv[2], nm);
        if (g->vals[g->inputs[i]].cref && access(path, R_OK) != 0) { /* its default initializer */
            const qo_typedata *td = qo_type_get(m, qo_const_get(m, g->vals[g->inputs[i]].cref)->type);
            shapes[i].elem = td->elem;
            shapes[i].rank = td->rank;
            for (int32_t d = 0; d < td->rank; d++) shapes[i].dims[d] = td->dims[d];
            continue;
        }
        if (qo_npy_read(&cx, path, &in[i]) != QO_OK) {
            rc = 1;
            goto done;
        }
        inp[i] = &in[i];
        shapes[i] = in[i];
        shapes[i].data = NULL;
    }
    qo_jit_opts o = {.opt_level = -1, .ninput_shapes = nin, .input_shapes = shapes};
    qo_jit *j = NULL;
    double t0 = now();
    qo_status s = qo_jit_compile(&cx, m, &o, &j);
    double tc = now() - t0;
    if (s != QO_OK) {
        printf("UNSUPPORTED %s: compile failed (%s)\n", argv[1], qo_status_str(s));
        rc = s == QO_ERR_UNSUPPORTED ? 77 : 1;
        goto done;
    }
    qo_jit_stats st;
    qo_jit_get_stats(j, &st);
    double best = 1e30;
    for (int r = 0; r < repeat && rc == 0; r++) {
        for (uint32_t k = 0; k < nout; k++) qo_tensor_free(&out[k]);
        double t1 = now();
        if (qo_jit_run(j, inp, nin, out, nout) != QO_OK) rc = 1;
        if (now() - t1 < best) best = now() - t1;
    }
    printf("%s: compile %.3f s (%.3f s in qo_jit_compile), run %.2f ms; %u fused loops holding %u ops, %u kernel "
           "calls (%u reference fallbacks); arena %zu bytes planned vs %zu naive\n",
           argv[1], tc, st.compile_seconds, best * 1e3, st.fused_groups, st.fused_ops, st.kernel_calls,
           st.fallback_calls, st.arena_bytes, st.naive_bytes);
    for (uint32_t k = 0; rc == 0 && k < nout; k++) {
        char nm[512], path[4096];
        sanitize(qo_val_name(g, qo_graph_output(g, k)), nm, sizeof nm);
        snprintf(path, sizeof path, "%s/%s.npy", argv[3], nm);
        qo_tensor want;
        if (qo_npy_read(&cx, path, &want) != QO_OK) {
            rc = 1;
            break;
        }
        bool same = want.elem == out[k].elem && want.rank == out[k].rank;
        for (int32_t d = 0; same && d < want.rank; d++) same = want.dims[d] == out[k].dims[d];
        if (!same) {
            printf("FAIL output '%s': shape or type differs from onnxruntime's\n", nm);
            rc = 1;
        } else {
            int64_t n = qo_tensor_numel(&want);
            double maxd = 0, maxb = 0;
            for (int64_t i = 0; i < n; i++) {
                double a = as_double(&out[k], i), b = as_double(&want, i);
                double d = fabs(a - b);
                if (isnan(a) != isnan(b)) d = INFINITY;
                else if (isnan(a)) d = 0;
                if (d > maxd) maxd = d;
                if (fabs(b) > maxb) maxb = fabs(b);
            }
            bool fl = want.elem == QO_F32 || want.elem == QO_F64;
            double rel = maxb > 0 ? maxd / maxb : maxd;
            bool ok = fl ? rel <= max_rel : maxd == 0;
            printf("%s output '%s': max |diff| %.3g, max |ort| %.3g, relative %.3g\n", ok ? "PASS" : "FAIL", nm, maxd,
                   maxb, rel);
            if (!ok) rc = 1;
        }
        qo_tensor_free(&want);
    }
    qo_jit_free(j);
done:
    for (uint32_t i = 0; i < nin; i++) qo_tensor_free(&in[i]);
    for (uint32_t k = 0; k < nout; k++) qo_tensor_free(&out[k]);
    free(in);
    free(out);
    free(inp);
    free(shapes);
    qo_module_free(m);
    return rc;
}
