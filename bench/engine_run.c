/* bench/engine_run.c — runs a model for the execution-engine benchmark and reports its latency.
 *
 * Modes:
 *   jit     the LLVM JIT (backends/llvm/jit.h): qo_jit_compile once (compiled for the input's shape,
 *           --threads kernel threads), then qo_jit_run timed; also prints compile_s (compile seconds)
 *   fast    a small graph walker (this file) that runs Conv/ConvTranspose/Gemm/MatMul/pools/Softmax
 *           with the optimized kernels (runtime/kernels) on a thread pool and every other op with
 *           its reference kernel; a Relu or Clip that is the only reader of a Conv/Gemm/MatMul
 *           result and the next node is fused into the kernel's epilogue; Constant nodes are
 *           evaluated once before timing. This stands in for the JIT until it runs whole models.
 *   walker  the same walker with reference kernels only (no fusion, no pool).
 *   interp  the reference interpreter (qo_interp_run).
 *
 * usage: engine_run MODEL INPUT.npy [--mode jit|fast|walker|interp] [--threads T] [--repeat R]
 *                   [--warmup W] [--out OUT.npy] [--profile]
 * Prints "median_ms X min_ms Y cpu_ms C ... peak_rss_mb Z" (over R timed runs after W warm-up runs; C
 * the user + system CPU time per timed run, all threads; Z the process's peak resident set); --profile adds the time per
 * op type (fast/walker modes). Only single-input, single-output graphs without If/Loop. */
#include "backends/llvm/jit.h"
#include "frontend/onnx_load.h"
#include "runtime/kernels/kernels.h"
#include "runtime/npy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* User + system CPU seconds of the process so far. */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct walker {
    qo_ctx *cx;
    const qo_module *m;
    const qo_graph *g;
    int64_t opset;
    qo_pool *pool;    /* NULL with use_fast = false */
    bool use_fast;
    qo_tensor *env;   /* per value id */
    bool *persist;    /* per value id: constant / Constant-node output, kept across runs */
    int32_t *last;    /* per value id: position of the last reader (INT32_MAX: graph output) */
    double op_time[QO_OP_COUNT];
    double *node_time; /* per node id (profile) */
    int64_t (*node_dims)[5]; /* per node id: N, C, spatial dims of input 0 (profile) */
    bool profile;
} walker;

static qo_status walker_init(walker *w) {
    const qo_graph *g = w->g;
    w->env = qo_calloc(g->nvals, sizeof *w->env);
    w->persist = qo_calloc(g->nvals, sizeof *w->persist);
    w->last = qo_calloc(g->nvals, sizeof *w->last);
    w->node_time = qo_calloc(g->nnodes, sizeof *w->node_time);
    w->node_dims = qo_calloc(g->nnodes, sizeof *w->node_dims);
    for (uint32_t i = 0; i < g->nconsts; i++) {
        qo_val v = g->consts[i];
        QO_TRY(qo_tensor_from_const(w->cx, w->m, g->vals[v].cref, &w->env[v]));
        w->persist[v] = true;
    }
    for (uint32_t v = 0; v < g->nvals; v++) w->last[v] = -1;
    int32_t pos = 0;
    for (qo_node n = g->first; n; n = g->nodes[n].next, pos++) {
        const qo_nodedata *nd = &g->nodes[n];
        if (nd->op == QO_OP_IF || nd->op == QO_OP_LOOP || nd->op == QO_OP_SCAN)
            return qo_error(w->cx, QO_ERR_UNSUPPORTED, NULL, "engine_run: control flow is not supported");
        for (uint32_t i = 0; i < nd->nin; i++) {
            qo_val v = qo_node_input(g, n, i);
            if (v) w->last[v] = pos;
        }
        if (nd->op == QO_OP_CONSTANT) { /* evaluate once */
            qo_kctx k = {w->cx, g, n, w->opset, false};
            qo_tensor out[1] = {{0}};
            QO_TRY(qo_ref_kernel_for(QO_OP_CONSTANT)(&k, NULL, 0, out, 1));
            qo_val o = qo_node_output(g, n, 0);
            w->env[o] = out[0];
            w->persist[o] = true;
        }
    }
    for (uint32_t i = 0; i < g->noutputs; i++) w->last[qo_graph_output(g, i)] = INT32_MAX;
    return QO_OK;
}

static void walker_free(walker *w) {
    for (uint32_t v = 0; v < w->g->nvals; v++)
        if (w->persist[v]) qo_tensor_free(&w->env[v]);
    qo_free(w->env), qo_free(w->persist), qo_free(w->last), qo_free(w->node_time), qo_free(w->node_dims);
}

/* The activation of node a if it is a Relu or a Clip with constant bounds; false otherwise. */
static bool act_of_node(walker *w, qo_node a, qo_k_act *act) {
    const qo_graph *g = w->g;
    const qo_nodedata *nd = &g->nodes[a];
    if (nd->op == QO_OP_RELU) {
        act->kind = QO_K_ACT_RELU;
        return true;
    }
    if (nd->op != QO_OP_CLIP) return false;
    act->kind = QO_K_ACT_CLIP;
    act->lo = -INFINITY, act->hi = INFINITY;
    if (w->opset < 11) {
        act->lo = qo_attr_float(g, a, "min", -INFINITY);
        act->hi = qo_attr_float(g, a, "max", INFINITY);
        return true;
    }
    for (uint32_t i = 1; i < nd->nin && i < 3; i++) {
        qo_val v = qo_node_input(g, a, i);
        if (!v) continue;
        const qo_tensor *t = &w->env[v];
        if (!w->persist[v] || t->elem != QO_F32 || qo_tensor_numel(t) != 1) return false;
        float f = *(const float *)t->data;
        if (i == 1) act->lo = f;
        else act->hi = f;
    }
    return true;
}

static qo_status walker_run(walker *w, const qo_tensor *input, qo_tensor *output) {
    const qo_graph *g = w->g;
    qo_val vin = g->inputs[0];
    w->env[vin] = *input;
    w->env[vin].owned = 0;
    int32_t pos = 0;
    for (qo_node n = g->first; n; n = g->nodes[n].next, pos++) {
        const qo_nodedata *nd = &g->nodes[n];
        if (nd->op == QO_OP_CONSTANT) continue;
        double t0 = w->profile ? now() : 0;
        const qo_tensor *ins[16];
        uint32_t nin = nd->nin < 16 ? nd->nin : 16;
        for (uint32_t i = 0; i < nin; i++) {
            qo_val v = qo_node_input(g, n, i);
            ins[i] = v ? &w->env[v] : NULL;
        }
        qo_tensor outs[8] = {{0}};
        uint32_t nout = nd->nout < 8 ? nd->nout : 8;
        qo_kctx k = {w->cx, g, n, w->opset, false};
        qo_status s = QO_ERR_UNSUPPORTED;
        qo_node fused = 0;
        if (w->use_fast && qo_k_node_supported((qo_op)nd->op)) {
            qo_k_act act = {QO_K_ACT_NONE, 0, 0};
            qo_val o = qo_node_output(g, n, 0);
            qo_node next = nd->next;
            if ((nd->op == QO_OP_CONV || nd->op == QO_OP_GEMM || nd->op == QO_OP_MATMUL) && next && o &&
                w->last[o] == pos + 1 && qo_val_has_one_use(g, o) && qo_node_input(g, next, 0) == o &&
                act_of_node(w, next, &act))
                fused = next;
            s = qo_k_node_run(&k, w->pool, fused ? &act : NULL, ins, nin, outs, nout);
            if (s == QO_ERR_UNSUPPORTED && fused) {
                fused = 0;
                s = qo_k_node_run(&k, w->pool, NULL, ins, nin, outs, nout);
            }
        }
        if (s == QO_ERR_UNSUPPORTED) {
            fused = 0;
            qo_ref_kernel rk = qo_ref_kernel_for((qo_op)nd->op);
            if (!rk) return qo_error(w->cx, QO_ERR_UNSUPPORTED, NULL, "no kernel for %s", qo_node_op_type(g, n));
            s = rk(&k, ins, nin, outs, nout);
        }
        if (s != QO_OK) return s;
        for (uint32_t j = 0; j < nout; j++) {
            qo_val o = qo_node_output(g, n, j);
            if (j == 0 && fused) o = qo_node_output(g, fused, 0);
            if (o) w->env[o] = outs[j];
            else qo_tensor_free(&outs[j]);
        }
        if (w->profile) {
            double dt = now() - t0;
            w->op_time[nd->op] += dt;
            w->node_time[n] += dt;
            for (int i = 0; i < 5; i++) w->node_dims[n][i] = ins[0] && i < ins[0]->rank ? ins[0]->dims[i] : 0;
        }
        /* free what is no longer read (inputs of n, and of the fused activation) */
        qo_node done[2] = {n, fused};
        if (fused) n = fused, pos++;
        for (int d = 0; d < 2 && done[d]; d++)
            for (uint32_t i = 0; i < g->nodes[done[d]].nin; i++) {
                qo_val v = qo_node_input(g, done[d], i);
                if (v && !w->persist[v] && v != vin && w->last[v] <= pos) qo_tensor_free(&w->env[v]);
            }
    }
    qo_val ov = qo_graph_output(g, 0);
    *output = w->env[ov];
    memset(&w->env[ov], 0, sizeof w->env[ov]);
    memset(&w->env[vin], 0, sizeof w->env[vin]);
    return QO_OK;
}

int main(int argc, char **argv) {
    const char *model = NULL, *input = NULL, *outp = NULL, *mode = "jit";
    int threads = 2, repeat = 10, warmup = 2;
    bool profile = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) outp = argv[++i];
        else if (!strcmp(argv[i], "--profile")) profile = true;
        else if (!model) model = argv[i];
        else if (!input) input = argv[i];
        else model = NULL, i = argc;
    }
    if (!model || !input || repeat < 1) {
        fprintf(stderr, "usage: engine_run MODEL INPUT.npy [--mode jit|fast|walker|interp] [--threads T] [--repeat R] "
                        "[--warmup W] [--out OUT.npy] [--profile]\n");
        return 2;
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = NULL;
    qo_tensor in = {0}, out = {0};
    if (qo_onnx_load(&cx, model, &m) != QO_OK || qo_npy_read(&cx, input, &in) != QO_OK) return 1;
    const qo_graph *g = qo_module_main(m);
    if (g->ninputs != 1 || g->noutputs != 1) {
        fprintf(stderr, "engine_run: the model must have one input and one output\n");
        return 1;
    }
    walker w = {.cx = &cx, .m = m, .g = g, .opset = qo_module_opset(m, ""), .profile = profile};
    bool interp = !strcmp(mode, "interp"), jit = !strcmp(mode, "jit");
    qo_jit *jj = NULL;
    double compile_s = 0;
    if (jit) {
        qo_jit_opts jo = {.threads = threads, .opt_level = -1, .ninput_shapes = 1, .input_shapes = &in};
        double t0 = now();
        if (qo_jit_compile(&cx, m, &jo, &jj) != QO_OK) return 1;
        compile_s = now() - t0;
        qo_tensor shp;
        if (qo_jit_output_shape(jj, 0, &shp) != QO_OK || qo_tensor_make(&cx, &out, shp.elem, shp.rank, shp.dims) != QO_OK)
            return 1;
    } else if (!strcmp(mode, "fast")) w.use_fast = true, w.pool = qo_pool_new(threads);
    else if (strcmp(mode, "walker") && !interp) {
        fprintf(stderr, "engine_run: unknown mode '%s'\n", mode);
        return 2;
    }
    if (!interp && !jit && walker_init(&w) != QO_OK) return 1;
    double *times = qo_malloc((size_t)repeat * sizeof *times);
    double cpu0 = 0;
    for (int r = 0; r < warmup + repeat; r++) {
        if (r == warmup) cpu0 = cpu_seconds();
        if (!jit) qo_tensor_free(&out);
        double t0 = now();
        qo_status s;
        if (jit) {
            const qo_tensor *ins[1] = {&in};
            s = qo_jit_run(jj, ins, 1, &out, 1);
        } else if (interp) {
            const qo_tensor *ins[1] = {&in};
            s = qo_interp_run(&cx, m, ins, 1, &out, 1);
        } else {
            s = walker_run(&w, &in, &out);
        }
        double dt = now() - t0;
        if (s != QO_OK) return 1;
        if (!interp && !jit && (r == warmup - 1 || (warmup == 0 && r == 0))) {
            memset(w.op_time, 0, sizeof w.op_time);
            memset(w.node_time, 0, g->nnodes * sizeof *w.node_time);
        }
        if (r >= warmup) times[r - warmup] = dt;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_d);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_ms = (cpu_seconds() - cpu0) * 1e3 / repeat;
    printf("median_ms %.3f min_ms %.3f cpu_ms %.3f", times[repeat / 2] * 1e3, times[0] * 1e3, cpu_ms);
    if (jit) {
        qo_jit_stats st;
        qo_jit_get_stats(jj, &st);
        printf(" compile_s %.3f loops %u loop_ops %u kernel_calls %u fallbacks %u epilogue_ops %u folded_transposes %u aliased_copies %u arena_mb %.1f",
               compile_s, st.fused_groups, st.fused_ops, st.kernel_calls, st.fallback_calls, st.epilogue_ops,
               st.folded_transposes, st.aliased_copies,
               (double)st.arena_bytes / 1048576.0);
    }
    printf(" peak_rss_mb %.1f\n", (double)ru.ru_maxrss / 1024.0);
    if (profile && !interp && !jit) {
        for (int op = 0; op < QO_OP_COUNT; op++)
            if (w.op_time[op] > 0)
                printf("  %-22s %9.3f ms/run\n", qo_op_info((qo_op)op)->name, w.op_time[op] * 1e3 / repeat);
        printf("  slowest nodes:\n");
        for (int top = 0; top < 8; top++) { /* selection of the slowest remaining node */
            qo_node bn = 0;
            for (qo_node n = g->first; n; n = g->nodes[n].next)
                if (!bn || w.node_time[n] > w.node_time[bn]) bn = n;
            if (!bn || w.node_time[bn] <= 0) break;
            printf("    %-10s %-28s %8.3f ms/run  group %lld, input [", qo_node_op_type(g, bn), qo_node_name(g, bn),
                   w.node_time[bn] * 1e3 / repeat, (long long)qo_attr_int(g, bn, "group", 1));
            for (int i = 0; i < 5 && w.node_dims[bn][i]; i++) printf(i ? ",%lld" : "%lld", (long long)w.node_dims[bn][i]);
            printf("]\n");
            w.node_time[bn] = 0;
        }
    }
    if (outp && qo_npy_write(&cx, outp, &out) != QO_OK) return 1;
    qo_tensor_free(&out);
    qo_tensor_free(&in);
    qo_free(times);
    if (!interp && !jit) walker_free(&w);
    qo_jit_free(jj);
    qo_pool_free(w.pool);
    qo_module_free(m);
    return 0;
}
