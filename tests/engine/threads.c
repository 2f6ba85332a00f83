/* tests/engine/threads.c SRCROOT — qo_jit_opts.threads (qopt run --threads N) is honoured: compiling
 * tests/models/resnet18_w16_op13.onnx with N threads starts exactly N - 1 kernel worker threads
 * (counted in /proc/self/task), every one of them runs kernel work (its on-CPU time from
 * /proc/self/task/TID/schedstat grows by at least 2% of the calling thread's over 30 runs), and
 * qo_jit_free joins them. Prints "N passed, N failed". */
#include "backends/llvm/jit.h"
#include "frontend/onnx_load.h"
#include "runtime/npy.h"

#include <dirent.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int npass, nfail;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (c) npass++;                                                                            \
        else {                                                                                     \
            nfail++;                                                                               \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* The thread ids of this process (up to cap), sorted; returns the count. */
static int list_tasks(long *tids, int cap) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.' && n < cap) tids[n++] = atol(e->d_name);
    closedir(d);
    for (int a = 1; a < n; a++) /* insertion sort */
        for (int b = a; b > 0 && tids[b - 1] > tids[b]; b--) {
            long t = tids[b];
            tids[b] = tids[b - 1];
            tids[b - 1] = t;
        }
    return n;
}

/* On-CPU nanoseconds of thread tid (schedstat's first field), -1 if unreadable. */
static long long cpu_ns(long tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld/schedstat", tid);
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (!f) return -1;
    if (fscanf(f, "%lld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

static bool contains(const long *a, int n, long t) {
    for (int i = 0; i < n; i++)
        if (a[i] == t) return true;
    return false;
}

static void check_threads(const qo_module *m, qo_tensor *in, int nthreads) {
    qo_ctx cx;
    qo_ctx_init(&cx);
    long before[256], after[256], self = 0;
    int nb = list_tasks(before, 256);
    qo_jit_opts o = {.threads = nthreads, .opt_level = -1, .ninput_shapes = 1, .input_shapes = in};
    qo_jit *j = NULL;
    if (qo_jit_compile(&cx, m, &o, &j) != QO_OK) {
        CHECK(false, "compile with %d threads failed", nthreads);
        return;
    }
    int na = list_tasks(after, 256);
    CHECK(na - nb == nthreads - 1, "%d threads asked: %d new threads (want %d)", nthreads, na - nb, nthreads - 1);
    long workers[256];
    int nw = 0;
    for (int i = 0; i < na; i++)
        if (!contains(before, nb, after[i])) workers[nw++] = after[i];
    for (int i = 0; i < nb; i++) /* the calling thread: the process's main thread */
        if (before[i] == (long)getpid()) self = before[i];
    long long w0[256], s0 = cpu_ns(self);
    for (int i = 0; i < nw; i++) w0[i] = cpu_ns(workers[i]);
    const qo_tensor *ins[1] = {in};
    qo_tensor out = {0};
    bool ok = true;
    for (int r = 0; r < 30 && ok; r++) {
        qo_tensor_free(&out);
        ok = qo_jit_run(j, ins, 1, &out, 1) == QO_OK;
    }
    CHECK(ok, "run with %d threads failed", nthreads);
    long long ds = cpu_ns(self) - s0;
    for (int i = 0; i < nw; i++) {
        long long dw = cpu_ns(workers[i]) - w0[i];
        CHECK(dw * 50 >= ds, "%d threads: worker %d ran %.2f ms while the caller ran %.2f ms", nthreads, i, dw * 1e-6,
              ds * 1e-6);
    }
    qo_tensor_free(&out);
    qo_jit_free(j);
    na = list_tasks(after, 256);
    CHECK(na == nb, "%d threads: %d threads left after qo_jit_free (had %d)", nthreads, na, nb);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: engine_threads SRCROOT\n");
        return 2;
    }
    char path[4096], inp[4096];
    snprintf(path, sizeof path, "%s/tests/models/resnet18_w16_op13.onnx", argv[1]);
    snprintf(inp, sizeof inp, "%s/tests/models/resnet18_w16_op13.in/input.npy", argv[1]);
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = NULL;
    qo_tensor in = {0};
    if (qo_onnx_load(&cx, path, &m) != QO_OK || qo_npy_read(&cx, inp, &in) != QO_OK) return 1;
    check_threads(m, &in, 1);
    check_threads(m, &in, 2);
    check_threads(m, &in, 3);
    qo_tensor_free(&in);
    qo_module_free(m);
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail != 0;
}
