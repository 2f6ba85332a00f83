/* tests/node/run_node_tests.c — runs ONNX's backend test cases through the reference interpreter
 * (--engine interp, the default) or the LLVM JIT (--engine jit, backends/llvm/jit.h).
 *
 *   run_node_tests DATADIR LISTFILE [--engine interp|jit] [--update] [--no-fork] [-v] [FILTER ...]
 *
 * Cases: DATADIR/{node,pytorch-converted,pytorch-operator,simple}/<case>/ with model.onnx and
 * test_data_set_N/{input_N.pb,output_N.pb}. Each case loads the model, feeds every data set's inputs
 * to the engine and compares the outputs with output_N.pb (the oracle: ONNX's own expected values):
 * integer, bool and other non-float types exactly; float32/float64/float16/bfloat16 with
 * |a - b| <= atol + rtol * |b| (defaults rtol 1e-3, atol 1e-5, per-case overrides below), NaN
 * matching NaN. Every case prints PASS, FAIL or UNSUPPORTED (no kernel, or a type/feature the
 * runtime does not handle: sequences, strings, ...) with the first diagnostic.
 *
 * With --engine jit, per data set the interpreter runs first (a case it cannot run is UNSUPPORTED:
 * not the JIT's to pass); then the model is compiled for the shapes of the data set's inputs
 * (allow_dynamic: shapes that depend on input values are computed at run time) and run, and every
 * output must equal the interpreter's bit for bit (NaN matches NaN) -- the JIT lowers elementwise
 * ops with the reference formulas and runs every other op through the reference kernel -- except in
 * cases where optimized kernels (runtime/kernels: Conv, Gemm, MatMul, pools, Softmax) ran, which
 * reorder sums: those match the interpreter within the node tolerance. The outputs are then checked
 * against output_N.pb as above. The JIT's statistics over the passing cases are summed.
 *
 * LISTFILE names the cases (e.g. node/test_abs) that must pass: a listed case that does not pass is
 * a regression and makes the run fail. The summary prints "N passed, N failed" over the listed
 * cases, then the totals over all cases so growth is visible. --update rewrites LISTFILE with every
 * case that passes now. Each case runs in a forked child (a crash or a hang -- 120 s -- is a FAIL,
 * not the end of the run); --no-fork runs in-process (for debuggers and sanitizers). FILTER words
 * select cases whose name contains one of them. */
#include "frontend/onnx_load.h"
#ifdef QOPT_HAVE_LLVM
#include "backends/llvm/jit.h"
#endif
#include "runtime/rt.h"
#include "runtime/tensor_pb.h"
#include "tests/common/cases.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const areas[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};

enum { R_PASS = 0, R_FAIL = 1, R_UNSUP = 2 };
static const char *const rname[] = {"PASS", "FAIL", "UNSUPPORTED"};

/* Per-case tolerance overrides: first entry whose `match` is a substring of the case name wins. */
static const struct {
    const char *match;
    double rtol, atol;
} tolerances[] = {
    {NULL, 1e-3, 1e-5}, /* default */
};

#define CASE_TIMEOUT 120
#define MSG_CAP 1024

typedef enum engine { ENGINE_INTERP, ENGINE_JIT } engine;
static engine use_engine = ENGINE_INTERP;

typedef struct result {
    int code;
    unsigned groups, fused, kernels, fallback; /* JIT statistics of the case (--engine jit) */
    char msg[MSG_CAP];
} result;

static void set_msg(result *r, const char *fmt, ...) QO_PRINTF(2, 3);
static void set_msg(result *r, const char *fmt, ...) {
    if (r->msg[0]) return; /* keep the first */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
}

static void collect_diag(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    result *r = ud;
    if (kind != QO_DIAG_ERROR) return;
    char lb[512];
    qo_loc_format(loc, lb, sizeof lb);
    /* drop the model path prefix: the case name already says which model */
    const char *p = strstr(lb, "model.onnx");
    p = p ? p + 10 : lb;
    if (p[0] == ':' && p[1] == ' ') p += 2;
    set_msg(r, "%s%s%s", p, p[0] ? ": " : "", msg);
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, ex = (h >> 10) & 0x1F, man = h & 0x3FF;
    float f;
    if (ex == 0) f = ldexpf((float)man, -24);
    else if (ex == 31) f = man ? NAN : INFINITY;
    else f = ldexpf((float)(man | 0x400), (int)ex - 25);
    return sign ? -f : f;
}

static double elem_as_double(int elem, const void *p, size_t i) {
    switch (elem) {
    case QO_F32: return ((const float *)p)[i];
    case QO_F64: return ((const double *)p)[i];
    case QO_F16: return half_to_float(((const uint16_t *)p)[i]);
    case QO_BF16: {
        uint32_t u = (uint32_t)((const uint16_t *)p)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    default: return 0;
    }
}

static void fmt_dims(const qo_tensor *t, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "%s[", qo_elem_name(t->elem) ? qo_elem_name(t->elem) : "?");
    for (int32_t i = 0; i < t->rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* Compares got with want; on mismatch describes the first difference in r. */
static bool compare(const char *oname, const qo_tensor *got, const qo_tensor *want, double rtol, double atol,
                    result *r) {
    char gs[256], ws[256];
    fmt_dims(got, gs, sizeof gs);
    fmt_dims(want, ws, sizeof ws);
    bool same = got->elem == want->elem && got->rank == want->rank;
    for (int32_t i = 0; same && i < got->rank; i++) same = got->dims[i] == want->dims[i];
    if (!same) {
        set_msg(r, "output '%s': got %s, expected %s", oname, gs, ws);
        return false;
    }
    int64_t n = qo_tensor_numel(want);
    int e = want->elem;
    if (e == QO_F32 || e == QO_F64 || e == QO_F16 || e == QO_BF16) {
        int64_t bad = 0, first = -1;
        double worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double a = elem_as_double(e, got->data, (size_t)i), b = elem_as_double(e, want->data, (size_t)i);
            if (isnan(a) && isnan(b)) continue;
            if (a == b) continue;
            double d = fabs(a - b);
            if (d <= atol + rtol * fabs(b)) continue;
            if (isnan(d) || d > worst) worst = d;
            if (first < 0) first = i;
            bad++;
        }
        if (bad) {
            set_msg(r, "output '%s' %s: %lld of %lld values differ (first at %lld: got %.9g, expected %.9g; max |diff| %.3g; rtol %g atol %g)",
                    oname, ws, (long long)bad, (long long)n, (long long)first,
                    elem_as_double(e, got->data, (size_t)first), elem_as_double(e, want->data, (size_t)first), worst,
                    rtol, atol);
            return false;
        }
        return true;
    }
    if (got->nbytes != want->nbytes || (want->nbytes && memcmp(got->data, want->data, want->nbytes))) {
        size_t es = qo_rt_elem_size(e), first = 0;
        const uint8_t *a = got->data, *b = want->data;
        while (first < want->nbytes && first < got->nbytes && a[first] == b[first]) first++;
        set_msg(r, "output '%s' %s: values differ (exact comparison), first at element %zu", oname, ws,
                es ? first / es : 0);
        return false;
    }
    return true;
}

static bool file_exists(const char *p) { return access(p, R_OK) == 0; }

static bool is_tensor_type(const qo_module *m, qo_type t) {
    const qo_typedata *td = qo_type_get(m, t);
    return !td || td->kind == QO_TY_TENSOR;
}

#ifdef QOPT_HAVE_LLVM
/* Bit-exact comparison of two tensors of the same type (float NaNs match any NaN). */
static bool compare_exact(const char *oname, const qo_tensor *got, const qo_tensor *want, result *r) {
    bool same = got->elem == want->elem && got->rank == want->rank && got->nbytes == want->nbytes;
    for (int32_t i = 0; same && i < got->rank; i++) same = got->dims[i] == want->dims[i];
    if (!same) {
        char gs[256], ws[256];
        fmt_dims(got, gs, sizeof gs);
        fmt_dims(want, ws, sizeof ws);
        set_msg(r, "output '%s': JIT gives %s, the interpreter %s", oname, gs, ws);
        return false;
    }
    int64_t n = qo_tensor_numel(want);
    for (int64_t i = 0; i < n; i++) {
        bool eq;
        if (want->elem == QO_F32) {
            float a = ((const float *)got->data)[i], b = ((const float *)want->data)[i];
            eq = (isnan(a) && isnan(b)) || !memcmp(&a, &b, 4);
        } else if (want->elem == QO_F64) {
            double a = ((const double *)got->data)[i], b = ((const double *)want->data)[i];
            eq = (isnan(a) && isnan(b)) || !memcmp(&a, &b, 8);
        } else {
            size_t es = qo_rt_elem_size(want->elem);
            eq = !memcmp((const char *)got->data + (size_t)i * es, (const char *)want->data + (size_t)i * es, es);
        }
        if (!eq) {
            set_msg(r, "output '%s': JIT differs from the interpreter at element %lld (got %.9g, interpreter %.9g)", oname,
                    (long long)i, elem_as_double(want->elem, got->data, (size_t)i),
                    elem_as_double(want->elem, want->data, (size_t)i));
            return false;
        }
    }
    return true;
}

/* One data set through the JIT (see the file comment): the interpreter's outputs first, then the model
 * compiled for the inputs' shapes and run into outs, compared with the interpreter's. Records the
 * compile's statistics in r. */
static bool jit_run_set(qo_ctx *cx, const qo_module *m, const qo_tensor **inp, qo_tensor *outs, double rtol,
                        double atol, result *r) {
    const qo_graph *g = qo_module_main(m);
    uint32_t nin = g->ninputs, nout = g->noutputs;
    qo_tensor *iouts = calloc(nout + 1, sizeof *iouts);
    bool ok = true;
    qo_status s = qo_interp_run(cx, m, inp, nin, iouts, nout);
    if (s != QO_OK) {
        r->code = R_UNSUP;
        set_msg(r, "(interpreter fails)");
        ok = false;
    }
    qo_jit *jit = NULL; /* data sets may have other shapes: compile for each */
    if (ok) {
        qo_tensor *shapes = calloc(nin + 1, sizeof *shapes);
        bool all = true;
        for (uint32_t i = 0; i < nin; i++) {
            if (inp[i]) {
                shapes[i] = *inp[i];
                shapes[i].data = NULL;
                continue;
            }
            /* a default initializer: the graph's own shape */
            if (!g->vals[g->inputs[i]].cref) {
                set_msg(r, "input '%s' is neither fed nor initialized", qo_val_name(g, g->inputs[i]));
                all = false;
                continue;
            }
            const qo_constdata *cd = qo_const_get(m, g->vals[g->inputs[i]].cref);
            const qo_typedata *td = qo_type_get(m, cd->type);
            shapes[i].elem = td->elem;
            shapes[i].rank = td->rank;
            for (int32_t d = 0; d < td->rank; d++) shapes[i].dims[d] = td->dims[d];
        }
        qo_jit_opts jo = {.opt_level = -1, .ninput_shapes = nin, .input_shapes = shapes, .allow_dynamic = true};
        s = all ? qo_jit_compile(cx, m, &jo, &jit) : QO_ERR_USAGE;
        free(shapes);
        if (s != QO_OK) {
            r->code = R_FAIL;
            ok = false;
        } else {
            qo_jit_stats st;
            qo_jit_get_stats(jit, &st);
            r->groups = st.fused_groups;
            r->fused = st.fused_ops;
            r->kernels = st.kernel_calls;
            r->fallback = st.fallback_calls;
        }
    }
    if (ok) {
        s = qo_jit_run(jit, inp, nin, outs, nout);
        if (s != QO_OK) {
            r->code = R_FAIL;
            ok = false;
        }
    }
    qo_jit_free(jit); /* the outputs own their data */
    /* exact, unless optimized kernels ran (they reorder sums): then the node tolerance */
    bool exact = r->kernels == r->fallback;
    for (uint32_t k = 0; ok && k < nout; k++) {
        const char *on = qo_val_name(g, qo_graph_output(g, k));
        if (exact ? !compare_exact(on, &outs[k], &iouts[k], r) : !compare(on, &outs[k], &iouts[k], rtol, atol, r))
            ok = false;
    }
    for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&iouts[i]);
    free(iouts);
    return ok;
}
#endif

/* Runs one data set's inputs on the selected engine into outs (zeroed); on failure sets r->code. */
static bool run_set(qo_ctx *cx, const qo_module *m, const qo_tensor **inp, qo_tensor *outs, double rtol, double atol,
                    result *r) {
#ifdef QOPT_HAVE_LLVM
    if (use_engine == ENGINE_JIT) return jit_run_set(cx, m, inp, outs, rtol, atol, r);
#endif
    const qo_graph *g = qo_module_main(m);
    qo_status s = qo_interp_run(cx, m, inp, g->ninputs, outs, g->noutputs);
    if (s == QO_OK) return true;
    r->code = s == QO_ERR_UNSUPPORTED ? R_UNSUP : R_FAIL;
    return false;
}

/* Runs one case directory; fills r. */
static void run_case(const char *dir, const char *rel, result *r) {
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = collect_diag;
    cx.diag_ud = r;
    r->code = R_FAIL;
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    qo_module *m = NULL;
    qo_status s = qo_onnx_load(&cx, path, &m);
    if (s != QO_OK) {
        r->code = s == QO_ERR_UNSUPPORTED ? R_UNSUP : R_FAIL;
        return;
    }
    const qo_graph *g = qo_module_main(m);
    /* the fed inputs are the graph inputs without a default initializer, in order */
    uint32_t nin = g->ninputs, nout = g->noutputs, nreal = 0;
    uint32_t *real = calloc(nin + 1, sizeof *real);
    for (uint32_t i = 0; i < nin; i++) {
        if (!is_tensor_type(m, g->vals[g->inputs[i]].type)) {
            set_msg(r, "input '%s' is not a tensor (sequence/optional/map values are not supported)",
                    qo_val_name(g, g->inputs[i]));
            r->code = R_UNSUP;
            goto done_nodata;
        }
        if (!g->vals[g->inputs[i]].cref) real[nreal++] = i;
    }
    for (uint32_t i = 0; i < nout; i++)
        if (!is_tensor_type(m, g->vals[qo_graph_output(g, i)].type)) {
            set_msg(r, "output '%s' is not a tensor (sequence/optional/map values are not supported)",
                    qo_val_name(g, qo_graph_output(g, i)));
            r->code = R_UNSUP;
            goto done_nodata;
        }
    double rtol = 1e-3, atol = 1e-5;
    for (size_t i = 0; i < sizeof tolerances / sizeof *tolerances; i++)
        if (!tolerances[i].match || strstr(rel, tolerances[i].match)) {
            rtol = tolerances[i].rtol;
            atol = tolerances[i].atol;
            break;
        }
    unsigned nsets = 0;
    for (unsigned set = 0;; set++) {
        char sdir[4200];
        snprintf(sdir, sizeof sdir, "%s/test_data_set_%u", dir, set);
        if (access(sdir, F_OK) != 0) break;
        nsets++;
        qo_tensor *ins = calloc(nin + 1, sizeof *ins), *outs = calloc(nout + 1, sizeof *outs);
        const qo_tensor **inp = calloc(nin + 1, sizeof *inp);
        bool ok = true;
        for (uint32_t k = 0; ok; k++) {
            char f[4300];
            snprintf(f, sizeof f, "%s/input_%u.pb", sdir, k);
            if (!file_exists(f)) break;
            qo_tensor t;
            char *name = NULL;
            s = qo_tensor_pb_read(&cx, f, &t, &name);
            if (s != QO_OK) {
                r->code = s == QO_ERR_UNSUPPORTED ? R_UNSUP : R_FAIL;
                ok = false;
                break;
            }
            /* by name if it names a graph input, else by position among the inputs to feed */
            uint32_t slot = UINT32_MAX;
            for (uint32_t i = 0; name && name[0] && i < nin; i++)
                if (!strcmp(qo_val_name(g, g->inputs[i]), name)) slot = i;
            if (slot == UINT32_MAX && k < nreal) slot = real[k];
            free(name);
            if (slot == UINT32_MAX || inp[slot]) {
                set_msg(r, "input_%u.pb matches no graph input", k);
                qo_tensor_free(&t);
                ok = false;
                break;
            }
            /* ONNX's older test data stores bfloat16 tensors as uint16 bit patterns */
            if (t.elem == QO_U16 && qo_type_elem(m, g->vals[g->inputs[slot]].type) == QO_BF16) t.elem = QO_BF16;
            ins[slot] = t;
            inp[slot] = &ins[slot];
        }
        if (ok) ok = run_set(&cx, m, inp, outs, rtol, atol, r);
        for (uint32_t k = 0; ok && k < nout; k++) {
            char f[4300];
            snprintf(f, sizeof f, "%s/output_%u.pb", sdir, k);
            if (!file_exists(f)) continue;
            qo_tensor want;
            s = qo_tensor_pb_read(&cx, f, &want, NULL);
            if (s != QO_OK) {
                r->code = s == QO_ERR_UNSUPPORTED ? R_UNSUP : R_FAIL;
                ok = false;
                break;
            }
            if (want.elem == QO_U16 && outs[k].elem == QO_BF16) want.elem = QO_BF16; /* as above */
            if (!compare(qo_val_name(g, qo_graph_output(g, k)), &outs[k], &want, rtol, atol, r)) ok = false;
            qo_tensor_free(&want);
        }
        for (uint32_t i = 0; i < nin; i++) qo_tensor_free(&ins[i]);
        for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&outs[i]);
        free(ins);
        free(outs);
        free(inp);
        if (!ok) goto done_nodata;
    }
    if (!nsets) set_msg(r, "no test_data_set_* directory");
    else r->code = R_PASS;
done_nodata:
    free(real);
    qo_module_free(m);
}

/* Runs a case in a child process with a time limit. */
static void run_case_forked(const char *dir, const char *rel, result *r) {
    int fds[2];
    if (pipe(fds) != 0) {
        run_case(dir, rel, r);
        return;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(CASE_TIMEOUT);
        result cr = {0};
        run_case(dir, rel, &cr);
        size_t n = sizeof cr, off = 0;
        while (off < n) {
            ssize_t w = write(fds[1], (char *)&cr + off, n - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        run_case(dir, rel, r);
        return;
    }
    size_t off = 0;
    while (off < sizeof *r) {
        ssize_t n = read(fds[0], (char *)r + off, sizeof *r - off);
        if (n <= 0) break;
        off += (size_t)n;
    }
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (off < sizeof *r) {
        r->code = R_FAIL;
        if (WIFSIGNALED(st))
            snprintf(r->msg, sizeof r->msg, "%s", WTERMSIG(st) == SIGALRM ? "timeout" : strsignal(WTERMSIG(st)));
        else snprintf(r->msg, sizeof r->msg, "child exited with status %d", WEXITSTATUS(st));
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATADIR LISTFILE [--engine interp|jit] [--update] [--no-fork] [-v] [FILTER ...]\n",
                argv[0]);
        return 2;
    }
    const char *datadir = argv[1], *listfile = argv[2];
    bool update = false, nofork = false, verbose = false;
    char **filters = calloc((size_t)argc, sizeof *filters);
    size_t nfilters = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--engine")) {
            const char *e = i + 1 < argc ? argv[++i] : "";
            if (!strcmp(e, "interp")) use_engine = ENGINE_INTERP;
            else if (!strcmp(e, "jit")) use_engine = ENGINE_JIT;
            else {
                fprintf(stderr, "--engine must be interp or jit, got '%s'\n", e);
                free(filters);
                return 2;
            }
#ifndef QOPT_HAVE_LLVM
            if (use_engine == ENGINE_JIT) {
                fprintf(stderr, "--engine jit: built without LLVM 19\n");
                free(filters);
                return 2;
            }
#endif
        } else if (!strcmp(argv[i], "--update")) update = true;
        else if (!strcmp(argv[i], "--no-fork")) nofork = true;
        else if (!strcmp(argv[i], "-v")) verbose = true;
        else filters[nfilters++] = argv[i];
    }

    char **cases = NULL;
    size_t ncases = qo_test_cases_list(datadir, areas, sizeof areas / sizeof *areas, filters, nfilters, &cases);
    if (!ncases) {
        fprintf(stderr, "no test cases under %s\n", datadir);
        return 1;
    }

    /* the expected-pass list */
    char **listed = NULL;
    size_t nlisted = 0;
    {
        FILE *f = fopen(listfile, "r");
        char line[1024];
        size_t lcap = 0;
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!line[0] || line[0] == '#') continue;
            if (nlisted == lcap) listed = realloc(listed, (lcap = lcap ? lcap * 2 : 256) * sizeof *listed);
            listed[nlisted++] = strdup(line);
        }
        if (f) fclose(f);
        else if (!update) fprintf(stderr, "note: no expected-pass list at %s\n", listfile);
        if (nlisted) qsort(listed, nlisted, sizeof *listed, qo_test_cmpstr);
    }

    int *codes = calloc(ncases, sizeof *codes);
    unsigned long sum_groups = 0, sum_fused = 0, sum_kernels = 0, sum_fallback = 0;
    unsigned total[3] = {0}, lpass = 0, lfail = 0;
    for (size_t i = 0; i < ncases; i++) {
        char dir[4096 + 1024];
        snprintf(dir, sizeof dir, "%s/%s", datadir, cases[i]);
        result r = {0};
        if (nofork) run_case(dir, cases[i], &r);
        else run_case_forked(dir, cases[i], &r);
        codes[i] = r.code;
        total[r.code]++;
        if (r.code == R_PASS) {
            sum_groups += r.groups;
            sum_fused += r.fused;
            sum_kernels += r.kernels;
            sum_fallback += r.fallback;
        }
        bool is_listed = nlisted && bsearch(&cases[i], listed, nlisted, sizeof *listed, qo_test_cmpstr);
        if (is_listed) {
            if (r.code == R_PASS) lpass++;
            else lfail++;
        }
        if (r.code == R_PASS && !verbose) printf("PASS %s\n", cases[i]);
        else printf("%s %s%s%s%s\n", rname[r.code], cases[i], r.msg[0] ? ": " : "", r.msg,
                    is_listed && r.code != R_PASS ? "   [REGRESSION: in the expected-pass list]" : "");
    }
    /* listed cases that no longer exist (or were filtered out) are not counted */
    printf("\n%u passed, %u failed\n", lpass, lfail);
    printf("all %zu cases: %u pass, %u fail, %u unsupported (%zu listed as expected to pass)\n", ncases,
           total[R_PASS], total[R_FAIL], total[R_UNSUP], nlisted);
    if (use_engine == ENGINE_JIT)
        printf("JIT over the passing cases: %lu fused loops holding %lu ops, %lu kernel calls (%lu reference fallbacks)\n",
               sum_groups, sum_fused, sum_kernels, sum_fallback);
    int rc = lfail ? 1 : 0;
    if (update) {
        if (nfilters) {
            fprintf(stderr, "--update with filters would drop unselected cases; refusing\n");
            rc = 2;
        } else {
            FILE *f = fopen(listfile, "w");
            if (!f) {
                perror(listfile);
                rc = 2;
            } else {
                for (size_t i = 0; i < ncases; i++)
                    if (codes[i] == R_PASS) fprintf(f, "%s\n", cases[i]);
                fclose(f);
                printf("wrote %u cases to %s\n", total[R_PASS], listfile);
                rc = 0;
            }
        }
    }
    qo_test_cases_free(cases, ncases);
    for (size_t i = 0; i < nlisted; i++) free(listed[i]);
    free(listed);
    free(codes);
    free(filters);
    return rc;
}
