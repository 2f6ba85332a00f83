/* tests/qcdq/qcdq_tool.c — the qopt side of the QCDQ tests (run_qcdq.py drives it and the oracles).
 *
 *   qcdq_tool lower IN.onnx OUT.onnx [--no-import] [--opset N] [--probe]
 *       load, import-quant (unless --no-import), lower-qcdq, verify, write OUT; prints
 *       "imported N quant K" (Quant nodes after import, and how many there were before lowering)
 *   qcdq_tool copy IN.onnx OUT.onnx --probe         (no import, no lowering)
 *   qcdq_tool run MODEL.onnx X.npy OUTDIR [--import] [--lower] [--opset N] [--probe]
 *       load, optionally import-quant and lower-qcdq, run the main graph in qopt's LLVM JIT on X (fed to
 *       input 0; other inputs take their initializers), write output i to OUTDIR/out_<i>.npy.
 * --probe appends every activation quantizer's result (a Quant node reading a non-constant, or a
 * DequantizeLinear fed by QuantizeLinear [-> Clip]) to the graph outputs, in program order, so the
 * quantized tensors are compared even where a float layer (Gemm summation order) follows them.
 * Exit status 0 on success, 1 on failure (diagnostics on stderr). */
#include "backends/llvm/jit.h"
#include "backends/onnx/onnx_write.h"
#include "backends/qcdq/qcdq.h"
#include "frontend/onnx_load.h"
#include "passes/pass_impl.h"
#include "runtime/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t count_quant(const qo_module *m) {
    uint32_t k = 0;
    for (uint32_t gi = 0; gi < m->ngraphs; gi++) {
        const qo_graph *g = m->graphs[gi];
        QO_FOR_EACH_NODE(g, n) k += g->nodes[n].op == QO_OP_QONNX_QUANT && !(g->nodes[n].flags & QO_NODE_DEAD);
    }
    return k;
}

static bool is_const(const qo_graph *g, qo_val v) {
    return v && ((g->vals[v].flags & (QO_VAL_CONST | QO_VAL_INPUT)) == QO_VAL_CONST ||
                 ((g->vals[v].flags & QO_VAL_INPUT) && g->vals[v].cref && g->vals[v].nuses == 1 &&
                  g->ninputs > 1 && v != g->inputs[0]));
}

/* Appends the probes and prints "quantized-outputs i,j,..." (indices of graph outputs that are
 * activation quantizer results, including original outputs that are). */
static void add_probes(qo_module *m) {
    qo_graph *g = qo_module_main(m);
    fprintf(stderr, "quantized-outputs ");
    const char *sep = "";
    QO_FOR_EACH_NODE(g, n) {
        if (g->nodes[n].flags & QO_NODE_DEAD) continue;
        bool act = false;
        if (g->nodes[n].op == QO_OP_QONNX_QUANT) act = !is_const(g, qo_node_input(g, n, 0));
        if (g->nodes[n].op == QO_OP_DEQUANTIZELINEAR) {
            qo_node d = g->vals[qo_node_input(g, n, 0)].def;
            if (d && g->nodes[d].op == QO_OP_CLIP) d = g->vals[qo_node_input(g, d, 0)].def;
            act = d && g->nodes[d].op == QO_OP_QUANTIZELINEAR;
        }
        if (!act) continue;
        qo_val v = qo_node_output(g, n, 0);
        uint32_t idx = g->noutputs;
        for (uint32_t i = 0; i < g->noutputs; i++)
            if (qo_graph_output(g, i) == v) idx = i;
        if (idx == g->noutputs) qo_graph_add_output(g, v);
        fprintf(stderr, "%s%u", sep, idx);
        sep = ",";
    }
    fprintf(stderr, "\n");
}

static int prepare(qo_ctx *cx, qo_module *m, bool import, bool lower, int opset) {
    uint32_t imported = 0;
    if (import)
        for (uint32_t gi = 0; gi < m->ngraphs; gi++) {
            uint32_t k = 0;
            if (qo_import_quant(cx, m->graphs[gi], &k) != QO_OK) return 1;
            imported += k;
        }
    uint32_t nq = count_quant(m);
    if (qo_verify(cx, m) != QO_OK) return 1;
    if (lower) {
        qo_qcdq_opts o = {.opset = opset};
        if (qo_lower_qcdq(cx, m, &o) != QO_OK) return 1;
        if (qo_verify(cx, m) != QO_OK) return 1;
    }
    fprintf(stderr, "imported %u quant %u\n", imported, nq);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: qcdq_tool lower IN OUT [--no-import] [--opset N] | run MODEL X.npy OUT.npy [--import] [--lower]\n");
        return 2;
    }
    bool is_run = strcmp(argv[1], "run") == 0, is_copy = strcmp(argv[1], "copy") == 0, probe = false;
    bool import = !is_run && !is_copy, lower = !is_run && !is_copy;
    int opset = 0, first = is_run ? 5 : 4;
    if (is_run && argc < 5) return 2;
    for (int i = first; i < argc; i++) {
        if (!strcmp(argv[i], "--no-import")) import = false;
        else if (!strcmp(argv[i], "--import")) import = true;
        else if (!strcmp(argv[i], "--lower")) lower = true;
        else if (!strcmp(argv[i], "--probe")) probe = true;
        else if (!strcmp(argv[i], "--opset") && i + 1 < argc) opset = atoi(argv[++i]);
        else {
            fprintf(stderr, "qcdq_tool: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = NULL;
    if (qo_onnx_load(&cx, argv[2], &m) != QO_OK) return 1;
    int rc = prepare(&cx, m, import, lower, opset);
    if (rc == 0 && probe) add_probes(m);
    if (rc == 0 && !is_run) rc = qo_onnx_write(&cx, m, argv[3], NULL) == QO_OK ? 0 : 1;
    if (rc == 0 && is_run) {
        qo_tensor x = {0}, *ys = NULL;
        const qo_graph *g = qo_module_main(m);
        qo_tensor *shapes = qo_calloc(g->ninputs, sizeof(qo_tensor));
        const qo_tensor **ins = qo_calloc(g->ninputs, sizeof(qo_tensor *));
        qo_jit *j = NULL;
        rc = 1;
        if (qo_npy_read(&cx, argv[3], &x) == QO_OK) {
            for (uint32_t i = 0; i < g->ninputs; i++) {
                const qo_typedata *td = qo_type_get(m, g->vals[g->inputs[i]].type);
                if (i == 0) shapes[i] = x;
                else if (td && td->rank >= 0) {
                    shapes[i].elem = td->elem;
                    shapes[i].rank = td->rank;
                    for (int32_t d = 0; d < td->rank; d++) shapes[i].dims[d] = td->dims[d];
                }
            }
            ins[0] = &x;
            qo_jit_opts jo = {.threads = 1, .opt_level = -1, .ninput_shapes = g->ninputs, .input_shapes = shapes};
            uint32_t nout = g->noutputs;
            ys = qo_calloc(nout, sizeof(qo_tensor));
            if (qo_jit_compile(&cx, m, &jo, &j) == QO_OK && qo_jit_run(j, ins, g->ninputs, ys, nout) == QO_OK) {
                rc = 0;
                for (uint32_t i = 0; i < nout && rc == 0; i++) {
                    char path[4096];
                    snprintf(path, sizeof path, "%s/out_%u.npy", argv[4], i);
                    if (qo_npy_write(&cx, path, &ys[i]) != QO_OK) rc = 1;
                }
            }
            for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&ys[i]);
        }
        qo_jit_free(j);
        qo_tensor_free(&x);
        qo_free(ys);
        qo_free(shapes);
        qo_free(ins);
    }
    qo_module_free(m);
    return rc;
}
