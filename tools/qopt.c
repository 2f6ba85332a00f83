/* tools/qopt.c — the qopt command-line driver: inspect, print, convert, opt, verify, passes, run,
 * quantize. Exit status: 0 success, 1 bad input or usage (with a message on stderr). */
#include "backends/onnx/onnx_write.h"
#ifdef QOPT_HAVE_LLVM
#include "backends/llvm/jit.h"
#endif
#include "frontend/onnx_load.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "passes/quant/quantize.h"
#include "passes/quant/quantizer.h"
#include "passes/train/trainer.h"
#include "runtime/dataset.h"
#include "runtime/npy.h"
#include "runtime/rt.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <math.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#define QOPT_VERSION "0.1.0"

static const char *const usage_main =
    "usage: qopt <command> [options] ...\n"
    "\n"
    "qopt is a quantization compiler for ONNX models.\n"
    "\n"
    "commands:\n"
    "  inspect MODEL            opsets, op histogram, parameters, inputs and outputs\n"
    "  print MODEL              print the model as textual IR (.qir)\n"
    "  convert IN OUT           convert between .onnx and .qir (by extension)\n"
    "  opt IN -p PIPELINE       run a pass pipeline; -o OUT writes the result\n"
    "  verify MODEL             run the IR verifier\n"
    "  passes                   list the registered passes and their options\n"
    "  run MODEL --input ...    run the model (LLVM JIT, or --engine interp); .npy in and out\n"
    "  quantize IN -o OUT       quantize a float model (calibration, QCDQ or QONNX output, report)\n"
    "  train MODEL --data NPZ   (quantization-aware) training compiled by the JIT; -o OUT writes it\n"
    "\n"
    "  qopt <command> --help    help for one command\n"
    "  qopt --version           version\n";

static const char *const usage_inspect =
    "usage: qopt inspect MODEL\n"
    "\n"
    "Prints the IR version, producer, opset imports, inputs and outputs with shapes, an op\n"
    "histogram, and the parameter count and bytes of the model (.onnx or .qir).\n";

static const char *const usage_print =
    "usage: qopt print MODEL [-o OUT] [--hex-floats] [--inline-constants] [--elide N] [--no-locs]\n"
    "\n"
    "Prints MODEL (.onnx or .qir) as textual IR. Constants borrowed from a file print as\n"
    "file(...) references unless --inline-constants is given.\n"
    "  -o OUT               write to OUT instead of standard output\n"
    "  --hex-floats         print float attributes as C99 hex floats\n"
    "  --inline-constants   print every constant's bytes inline\n"
    "  --elide N            abbreviate constants over N bytes (output does not parse back)\n"
    "  --no-locs            omit loc(...) annotations\n";

static const char *const usage_convert =
    "usage: qopt convert IN OUT [--external-data]\n"
    "\n"
    "Converts IN to OUT; each is .onnx or .qir, chosen by extension. The output is written to\n"
    "a temporary file and renamed, so a failure never leaves a partial file.\n"
    "  --external-data   store large constants of an .onnx output in OUT.data\n";

static const char *const usage_opt =
    "usage: qopt opt IN -p PIPELINE [-o OUT] [options]\n"
    "\n"
    "Runs a pass pipeline on IN (.onnx or .qir). Without -o the result is printed as .qir.\n"
    "  -p, --pipeline STR     e.g. 'canonicalize,shape-infer,fixpoint{max=8}(const-fold,dce)'\n"
    "  -o OUT                 write the result (.onnx or .qir by extension)\n"
    "  --verify-each          run the verifier after every pass\n"
    "  --print-after NAMES    print the IR after the named passes (comma-separated)\n"
    "  --print-after-all      print the IR after every pass\n"
    "  --print-after-change   print the IR after every pass that changed it\n"
    "  --timing               per-pass timing table on stderr\n"
    "  --stats                per-pass statistics on stderr\n"
    "  --list                 list passes (same as `qopt passes`)\n";

static const char *const usage_verify =
    "usage: qopt verify MODEL\n"
    "\n"
    "Loads MODEL and runs the IR verifier; reports every problem found.\n";

static const char *const usage_run =
    "usage: qopt run MODEL --input NAME=FILE.npy [--input ...] --output-dir DIR [--threads N] [--repeat N]\n"
    "                [--engine interp|jit]\n"
    "\n"
    "Runs MODEL (.onnx or .qir) with the LLVM JIT (or the reference interpreter) and writes every graph output to\n"
    "DIR/<output name>.npy, each character of the name outside [A-Za-z0-9_.-] replaced by '_'\n"
    "(DIR is created if missing). Every input without a default initializer must be fed; a fed\n"
    "array must have the input's element type and static dims. A model with a single input also\n"
    "takes --input FILE.npy.\n"
    "  -i, --input NAME=FILE.npy   feed graph input NAME from a .npy file (repeatable)\n"
    "  -o, --output-dir DIR        directory for the output .npy files\n"
    "  --threads N                 threads of the JIT's kernels (default: all cores); the interpreter\n"
    "                              runs on one thread\n"
    "  --repeat N                  run N times, write the last run's outputs, print the median latency\n"
    "  --engine interp|jit         jit (default when built with LLVM 19): compile the graph for the\n"
    "                              given input shapes with LLVM (fused elementwise loops, optimized\n"
    "                              Conv/Gemm/MatMul/pool kernels; If/Loop/Scan bodies run in the\n"
    "                              interpreter) and run it; interp: the reference interpreter\n";

static const char *const usage_quantize =
    "usage: qopt quantize IN.onnx -o OUT.onnx [--calib FILE.npy|FILE.npz|DIR] [--weights SPEC] [--acts SPEC]\n"
    "                     [--bias SPEC] [--config FILE.json] [--set KEY=VALUE]... [--format qcdq|qonnx]\n"
    "                     [--report FILE.json] [--batch N] [--max-samples N] [--no-bias-correction]\n"
    "                     [--no-fold-bn] [--no-report] [--threads N] [--opset N] [--quiet]\n"
    "\n"
    "Quantizes a float ONNX model: folds BatchNormalization, inserts quantizers (defaults: 8-bit per-channel\n"
    "weights, 8-bit per-tensor activations, unsigned after ReLU, int32 bias, as Brevitas's graph-mode PTQ),\n"
    "calibrates activation scales on --calib (samples along axis 0; a .npz holds one array per input),\n"
    "quantizes biases, applies Brevitas's bias correction, and writes QCDQ (QuantizeLinear -> Clip ->\n"
    "DequantizeLinear, opset >= 13, runs in onnxruntime) or QONNX (Quant nodes). Without --calib the\n"
    "activation ranges are derived without data, with a warning.\n"
    "\n"
    "  --weights/--acts/--bias SPEC   a preset with overrides, e.g. int8_weight_per_channel_float:bits=4\n"
    "                                 (`qopt quantize --presets` lists presets and keys)\n"
    "  --config FILE.json             per-op / per-node rules, exclusions (docs/QUANT_CONFIG.md)\n"
    "  --set KEY=VALUE                one config field (e.g. io_bits=8, keep_first_last_8bit=1)\n"
    "  --report FILE.json             the per-layer table (bit widths, scales, SQNR) as JSON\n"
    "  --batch N                      calibration batch size (64, as Brevitas's recipe)\n"
    "  --no-report                    skip the SQNR pass (one more float + quantized run over the data)\n"
    "  --quiet                        no progress bar and no table\n"
    "\n"
    "At the end a table per layer: bit widths, scales, and the SQNR of the quantized against the float\n"
    "output on the calibration set.\n";

static const char *const usage_train =
    "usage: qopt train MODEL.onnx --data TRAIN.npz -o OUT.onnx [--val VAL.npz] [--epochs N] [--batch B]\n"
    "                  [--lr X] [--optimizer sgd|adam] [--momentum M] [--weight-decay W]\n"
    "                  [--schedule cosine|constant] [--weights SPEC] [--acts SPEC] [--bias SPEC] [--config FILE]\n"
    "                  [--set KEY=VALUE]... [--float] [--no-learn-scales] [--learn-bits] [--seed S] [--threads N]\n"
    "                  [--format qcdq|qonnx] [--resume CKPT.npz] [--distill] [--distill-temp T]\n"
    "                  [--distill-alpha A] [--quiet]\n"
    "\n"
    "Trains MODEL (graph output 0 = logits [N, C]) with softmax cross-entropy on TRAIN.npz (arrays x and y:\n"
    "inputs and int64 labels). Unless --float, the model is first quantized as `qopt quantize` does (the\n"
    "same --weights/--acts/--bias/--config/--set, calibrated on x) and trained quantization-aware:\n"
    "straight-through rounding, zero gradient outside the clamp range, learned weight and activation\n"
    "scales (LSQ-style gradient), as Brevitas. Forward, backward and the optimizer update of one step are\n"
    "one function compiled by the LLVM JIT. Shuffling uses --seed; results are deterministic for a given\n"
    "seed and thread count. Writes OUT (QCDQ unless --format qonnx; a float model stays float) and\n"
    "OUT.ckpt.npz (parameters, optimizer state, step count) for --resume.\n"
    "--distill adds knowledge distillation from MODEL as it is given (the float network, run by the JIT on\n"
    "each batch): loss = A * T^2 * KL(softmax(teacher / T) || softmax(student / T)) (batch mean) +\n"
    "(1 - A) * cross-entropy with the labels.\n"
    "--learn-bits learns the bit width of every weight and activation quantizer too, as Brevitas's\n"
    "BitWidthParameter (minimum 2 bits): the quantizer uses round(|o| + 2) with o trained from bits - 2\n"
    "(straight-through rounding); OUT gets the rounded widths. Nothing penalizes wider quantizers: add\n"
    "your own constraint if the widths must stay bounded (QCDQ export needs at most 8 bits, 16 at opset 21).\n"
    "Defaults: --epochs 10 --batch 64 --lr 1e-3 --optimizer adam --schedule cosine (per epoch), --seed 0,\n"
    "--distill-temp 1 --distill-alpha 0.5.\n";

static const char *const usage_passes = "usage: qopt passes\n\nLists the registered passes.\n";

static bool has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    return n >= e && strcmp(path + n - e, ext) == 0;
}

/* Loads .qir text or an ONNX file. */
static qo_status load_model(qo_ctx *cx, const char *path, qo_module **m) {
    if (has_ext(path, ".qir")) {
        char *text;
        size_t len;
        QO_TRY(qo_read_file(cx, path, &text, &len));
        qo_status s = qo_parse_module(cx, path, text, len, m);
        free(text);
        return s;
    }
    return qo_onnx_load(cx, path, m);
}

static qo_status write_text(qo_ctx *cx, const qo_module *m, const char *path, const qo_print_opts *po) {
    char *text;
    QO_TRY(qo_print_module_str(cx, m, po, &text));
    qo_status s;
    if (!path || strcmp(path, "-") == 0) {
        s = fputs(text, stdout) < 0 ? qo_error(cx, QO_ERR_IO, NULL, "cannot write to standard output")
                                    : QO_OK;
    } else {
        s = qo_write_file_atomic(cx, path, text, strlen(text));
    }
    free(text);
    return s;
}

static qo_status save_model(qo_ctx *cx, const qo_module *m, const char *path, bool external) {
    if (has_ext(path, ".qir") || strcmp(path, "-") == 0) return write_text(cx, m, path, NULL);
    if (!has_ext(path, ".onnx")) {
        qo_loc l = {.file = path, .node_index = -1};
        return qo_error(cx, QO_ERR_USAGE, &l, "unknown output format: expected a .onnx or .qir file name");
    }
    qo_onnx_write_opts wo = {.external_data = external, .external_threshold = 1024};
    return qo_onnx_write(cx, m, path, &wo);
}

static int finish(qo_status s) { return s == QO_OK ? 0 : 1; }

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "qopt: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    return 1;
}

/* Returns true (and prints usage) when argv holds -h/--help. */
static bool wants_help(int argc, char **argv, const char *usage) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return true;
        }
    return false;
}

/* ---- inspect -------------------------------------------------------------------------------- */

static void fmt_type(const qo_module *m, qo_type t, char *buf, size_t cap) {
    const qo_typedata *td = qo_type_get(m, t);
    size_t k = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + k, cap > k ? cap - k : 0, __VA_ARGS__);                            \
        if (w_ > 0) k += (size_t)w_;                                                               \
        if (k >= cap) k = cap - 1;                                                                 \
    } while (0)
    buf[0] = 0;
    if (!td) {
        PUT("?");
        return;
    }
    if (td->kind != QO_TY_TENSOR) {
        PUT("%s", td->kind == QO_TY_SEQUENCE ? "seq" : td->kind == QO_TY_OPTIONAL ? "optional" : "other");
        return;
    }
    PUT("%s[", qo_elem_name(td->elem) ? qo_elem_name(td->elem) : "?");
    if (td->rank < 0) PUT("*");
    for (int32_t i = 0; i < td->rank; i++) {
        if (i) PUT(",");
        if (td->syms && td->syms[i]) PUT("%s", qo_str(m, td->syms[i]));
        else if (td->dims[i] < 0) PUT("?");
        else PUT("%" PRId64, td->dims[i]);
    }
    PUT("]");
#undef PUT
}

typedef struct op_count {
    const char *name;
    unsigned n;
} op_count;

static int cmp_count(const void *a, const void *b) {
    const op_count *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return strcmp(x->name, y->name);
}

static void count_graph(const qo_graph *g, op_count **hist, unsigned *nh, unsigned *caph, uint64_t *params,
                        uint64_t *bytes, unsigned *nnodes) {
    const qo_module *m = g->m;
    for (uint32_t i = 0; i < g->nconsts; i++) {
        const qo_value *v = &g->vals[g->consts[i]];
        const qo_constdata *c = qo_const_get(m, v->cref);
        int64_t ne = qo_type_numel(m, c->type);
        if (ne > 0) *params += (uint64_t)ne;
        *bytes += c->nbytes;
    }
    for (uint32_t i = 0; i < g->ninputs; i++) {
        const qo_value *v = &g->vals[g->inputs[i]];
        if (!v->cref) continue;
        const qo_constdata *c = qo_const_get(m, v->cref);
        int64_t ne = qo_type_numel(m, c->type);
        if (ne > 0) *params += (uint64_t)ne;
        *bytes += c->nbytes;
    }
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = &g->nodes[n];
        const char *dom = qo_str(m, nd->domain);
        char key[256];
        snprintf(key, sizeof key, "%s%s%s", dom, dom[0] ? "." : "", qo_str(m, nd->op_type));
        (*nnodes)++;
        unsigned j;
        for (j = 0; j < *nh; j++)
            if (strcmp((*hist)[j].name, key) == 0) break;
        if (j == *nh) {
            if (*nh == *caph) {
                *caph = *caph ? *caph * 2 : 32;
                *hist = realloc(*hist, *caph * sizeof **hist);
                if (!*hist) abort();
            }
            (*hist)[j].name = qo_strdup(key);
            (*hist)[j].n = 0;
            (*nh)++;
        }
        (*hist)[j].n++;
    }
}

static int cmd_inspect(int argc, char **argv, qo_ctx *cx) {
    if (wants_help(argc, argv, usage_inspect)) return 0;
    if (argc != 2) return usage_error(usage_inspect, "expected one MODEL argument%s", "");
    qo_module *m;
    if (load_model(cx, argv[1], &m) != QO_OK) return 1;
    const qo_graph *g = qo_module_main(m);
    printf("model:       %s\n", argv[1]);
    printf("ir_version:  %" PRId64 "\n", m->ir_version);
    if (m->producer_name)
        printf("producer:    %s %s\n", qo_str(m, m->producer_name), qo_str(m, m->producer_version));
    printf("opsets:     ");
    for (uint32_t i = 0; i < m->nopsets; i++) {
        const char *d = qo_str(m, m->opsets[i].domain);
        printf(" %s=%" PRId64, d[0] ? d : "ai.onnx", m->opsets[i].version);
    }
    printf("\n");
    for (uint32_t i = 0; i < m->nprops; i++)
        printf("metadata:    %s = %s\n", qo_str(m, m->props[i].key), qo_str(m, m->props[i].value));
    char tb[512];
    if (g) {
        printf("inputs:\n");
        for (uint32_t i = 0; i < g->ninputs; i++) {
            const qo_value *v = &g->vals[g->inputs[i]];
            if (v->cref) continue; /* initializer listed as input */
            fmt_type(m, v->type, tb, sizeof tb);
            printf("  %-30s %s\n", qo_str(m, v->name), tb);
        }
        printf("outputs:\n");
        for (uint32_t i = 0; i < g->noutputs; i++) {
            qo_val v = qo_graph_output(g, i);
            fmt_type(m, g->vals[v].type, tb, sizeof tb);
            printf("  %-30s %s\n", qo_str(m, g->vals[v].name), tb);
        }
    }
    op_count *hist = NULL;
    unsigned nh = 0, caph = 0, nnodes = 0;
    uint64_t params = 0, bytes = 0;
    for (uint32_t i = 0; i < m->ngraphs; i++)
        count_graph(m->graphs[i], &hist, &nh, &caph, &params, &bytes, &nnodes);
    printf("graphs:      %u (main + %u subgraphs)\n", m->ngraphs, m->ngraphs ? m->ngraphs - 1 : 0);
    printf("nodes:       %u\n", nnodes);
    printf("parameters:  %" PRIu64 " (%" PRIu64 " bytes, %.2f MiB)\n", params, bytes, bytes / 1048576.0);
    printf("ops:\n");
    if (nh) qsort(hist, nh, sizeof *hist, cmp_count);
    for (unsigned j = 0; j < nh; j++) {
        printf("  %-30s %u\n", hist[j].name, hist[j].n);
        free((void *)hist[j].name);
    }
    free(hist);
    qo_module_free(m);
    return 0;
}

/* ---- print / convert / verify --------------------------------------------------------------- */

static int cmd_print(int argc, char **argv, qo_ctx *cx) {
    static const struct option lo[] = {{"hex-floats", no_argument, 0, 'x'},
                                       {"inline-constants", no_argument, 0, 'i'},
                                       {"elide", required_argument, 0, 'e'},
                                       {"no-locs", no_argument, 0, 'l'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    qo_print_opts po = {0};
    const char *out = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'x': po.hex_floats = true; break;
        case 'i': po.inline_all = true; break;
        case 'e': po.elide_bytes = (size_t)strtoull(optarg, NULL, 10); break;
        case 'l': po.no_locs = true; break;
        case 'h': fputs(usage_print, stdout); return 0;
        default: fputs(usage_print, stderr); return 1;
        }
    }
    if (argc - optind != 1) return usage_error(usage_print, "expected one MODEL argument%s", "");
    qo_module *m;
    if (load_model(cx, argv[optind], &m) != QO_OK) return 1;
    qo_status s = write_text(cx, m, out, &po);
    qo_module_free(m);
    return finish(s);
}

static int cmd_convert(int argc, char **argv, qo_ctx *cx) {
    static const struct option lo[] = {
        {"external-data", no_argument, 0, 'x'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    bool external = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'x': external = true; break;
        case 'h': fputs(usage_convert, stdout); return 0;
        default: fputs(usage_convert, stderr); return 1;
        }
    }
    if (argc - optind != 2) return usage_error(usage_convert, "expected IN and OUT arguments%s", "");
    qo_module *m;
    if (load_model(cx, argv[optind], &m) != QO_OK) return 1;
    qo_status s = save_model(cx, m, argv[optind + 1], external);
    qo_module_free(m);
    return finish(s);
}

static int cmd_verify(int argc, char **argv, qo_ctx *cx) {
    if (wants_help(argc, argv, usage_verify)) return 0;
    if (argc != 2) return usage_error(usage_verify, "expected one MODEL argument%s", "");
    qo_module *m;
    if (load_model(cx, argv[1], &m) != QO_OK) return 1;
    qo_status s = qo_verify(cx, m);
    if (s == QO_OK) printf("%s: ok\n", argv[1]);
    qo_module_free(m);
    return finish(s);
}

/* ---- opt ------------------------------------------------------------------------------------ */

static int cmd_opt(int argc, char **argv, qo_ctx *cx) {
    enum { O_VERIFY = 256, O_PA, O_PAA, O_PAC, O_TIMING, O_STATS, O_LIST, O_EXT };
    static const struct option lo[] = {{"pipeline", required_argument, 0, 'p'},
                                       {"verify-each", no_argument, 0, O_VERIFY},
                                       {"print-after", required_argument, 0, O_PA},
                                       {"print-after-all", no_argument, 0, O_PAA},
                                       {"print-after-change", no_argument, 0, O_PAC},
                                       {"timing", no_argument, 0, O_TIMING},
                                       {"stats", no_argument, 0, O_STATS},
                                       {"list", no_argument, 0, O_LIST},
                                       {"external-data", no_argument, 0, O_EXT},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    qo_pm_opts pm = {0};
    const char *pipeline = NULL, *out = NULL;
    bool external = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'p': pipeline = optarg; break;
        case 'o': out = optarg; break;
        case O_VERIFY: pm.verify_each = true; break;
        case O_PA: pm.print_after = optarg; break;
        case O_PAA: pm.print_after_all = true; break;
        case O_PAC: pm.print_after_change = true; break;
        case O_TIMING: pm.timing = true; break;
        case O_STATS: pm.stats = true; break;
        case O_LIST: qo_pass_print_list(stdout); return 0;
        case O_EXT: external = true; break;
        case 'h': fputs(usage_opt, stdout); return 0;
        default: fputs(usage_opt, stderr); return 1;
        }
    }
    if (argc - optind != 1) return usage_error(usage_opt, "expected one input model%s", "");
    if (!pipeline) return usage_error(usage_opt, "missing -p PIPELINE%s", "");
    qo_module *m;
    if (load_model(cx, argv[optind], &m) != QO_OK) return 1;
    qo_status s = qo_pipeline_run(cx, m, pipeline, &pm);
    if (s == QO_OK) s = out ? save_model(cx, m, out, external) : write_text(cx, m, NULL, NULL);
    qo_module_free(m);
    return finish(s);
}

static int cmd_passes(int argc, char **argv, qo_ctx *cx) {
    (void)cx;
    if (wants_help(argc, argv, usage_passes)) return 0;
    qo_pass_print_list(stdout);
    return 0;
}

/* ---- run ------------------------------------------------------------------------------------ */

/* mkdir -p */
static qo_status make_dirs(qo_ctx *cx, const char *dir) {
    char *p = qo_strdup(dir);
    qo_status s = QO_OK;
    for (char *q = p + 1;; q++) {
        bool end = !*q;
        if (*q != '/' && !end) continue;
        *q = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            qo_loc l = {.file = p, .node_index = -1};
            s = qo_error(cx, QO_ERR_IO, &l, "cannot create directory: %s", strerror(errno));
            break;
        }
        if (end) break;
        *q = '/';
    }
    struct stat st;
    if (s == QO_OK && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
        qo_loc l = {.file = dir, .node_index = -1};
        s = qo_error(cx, QO_ERR_IO, &l, "not a directory");
    }
    free(p);
    return s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* "a, b, c" of the main graph's inputs that need feeding. */
static void input_names(const qo_graph *g, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < g->ninputs && k < cap; i++) {
        if (g->vals[g->inputs[i]].cref) continue;
        int w = snprintf(buf + k, cap - k, "%s'%s'", k ? ", " : "", qo_val_name(g, g->inputs[i]));
        if (w > 0) k += (size_t)w;
    }
}

static int cmd_run(int argc, char **argv, qo_ctx *cx) {
    enum { O_THREADS = 256, O_REPEAT, O_ENGINE };
    static const struct option lo[] = {{"input", required_argument, 0, 'i'},
                                       {"engine", required_argument, 0, O_ENGINE},
                                       {"output-dir", required_argument, 0, 'o'},
                                       {"threads", required_argument, 0, O_THREADS},
                                       {"repeat", required_argument, 0, O_REPEAT},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char **specs = calloc((size_t)argc + 1, sizeof *specs);
    unsigned nspecs = 0;
    const char *outdir = NULL;
    long repeat = 1, threads = 0;
    bool timing = false;
#ifdef QOPT_HAVE_LLVM
    bool use_jit = true;
#else
    bool use_jit = false;
#endif
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:o:h", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'i': specs[nspecs++] = optarg; break;
        case 'o': outdir = optarg; break;
        case O_THREADS:
            if ((threads = strtol(optarg, &end, 10)) < 1 || *end || threads > 4096) {
                free(specs);
                return usage_error(usage_run, "--threads needs a positive integer, got '%s'", optarg);
            }
            break;
        case O_ENGINE:
            if (!strcmp(optarg, "jit")) use_jit = true;
            else if (!strcmp(optarg, "interp")) use_jit = false;
            else {
                free(specs);
                return usage_error(usage_run, "--engine must be interp or jit, got '%s'", optarg);
            }
#ifndef QOPT_HAVE_LLVM
            if (use_jit) {
                free(specs);
                return usage_error(usage_run, "--engine jit: this qopt was built without LLVM 19%s", "");
            }
#endif
            break;
        case O_REPEAT:
            repeat = strtol(optarg, &end, 10);
            if (repeat < 1 || *end || repeat > 1000000) {
                free(specs);
                return usage_error(usage_run, "--repeat needs a positive integer, got '%s'", optarg);
            }
            timing = true;
            break;
        case 'h': free(specs); fputs(usage_run, stdout); return 0;
        default: free(specs); fputs(usage_run, stderr); return 1;
        }
    }
    if (argc - optind != 1) {
        free(specs);
        return usage_error(usage_run, "expected one MODEL argument%s", "");
    }
    if (!outdir) {
        free(specs);
        return usage_error(usage_run, "missing --output-dir DIR%s", "");
    }
    const char *path = argv[optind];
    qo_module *m;
    if (load_model(cx, path, &m) != QO_OK) {
        free(specs);
        return 1;
    }
    const qo_graph *g = qo_module_main(m);
    qo_loc ml = {.file = path, .node_index = -1};
    uint32_t nin = g ? g->ninputs : 0, nout = g ? g->noutputs : 0;
    qo_tensor *ins = calloc(nin + 1, sizeof *ins), *outs = calloc(nout + 1, sizeof *outs);
    const qo_tensor **feed = calloc(nin + 1, sizeof *feed);
    const char **files = calloc(nin + 1, sizeof *files);
    double *lat = calloc((size_t)repeat, sizeof *lat);
    qo_status s = QO_OK;
    char names[1024];
#ifdef QOPT_HAVE_LLVM
    qo_jit *jit = NULL;
#else
    (void)threads;
    (void)use_jit;
#endif
    if (!g) {
        s = qo_error(cx, QO_ERR_INVALID_MODEL, &ml, "the model has no main graph");
        goto out;
    }
    input_names(g, names, sizeof names);
    uint32_t nneed = 0, only = 0;
    for (uint32_t i = 0; i < nin; i++)
        if (!g->vals[g->inputs[i]].cref) nneed++, only = i;

    /* match each --input to a graph input: NAME=FILE (the longest NAME that is an input name
     * wins, so names and paths may contain '='), or a bare FILE for a single-input model */
    for (unsigned k = 0; k < nspecs; k++) {
        const char *sp = specs[k], *file = NULL;
        uint32_t slot = UINT32_MAX;
        for (const char *eq = strchr(sp, '='); eq; eq = strchr(eq + 1, '='))
            for (uint32_t i = 0; i < nin; i++) {
                const char *nm = qo_val_name(g, g->inputs[i]);
                if (strlen(nm) == (size_t)(eq - sp) && !strncmp(nm, sp, (size_t)(eq - sp))) {
                    slot = i;
                    file = eq + 1;
                }
            }
        if (slot == UINT32_MAX) {
            const char *eq = strchr(sp, '=');
            if (eq) {
                s = qo_error(cx, QO_ERR_USAGE, &ml, "unknown input '%.*s' in --input %s; the model's inputs are %s",
                             (int)(eq - sp), sp, sp, names[0] ? names : "(none)");
                goto out;
            }
            if (nneed != 1) {
                s = qo_error(cx, QO_ERR_USAGE, &ml,
                             "--input %s has no NAME=: that form needs a model with one input, this one has %u (%s)",
                             sp, nneed, names[0] ? names : "none");
                goto out;
            }
            slot = only;
            file = sp;
        }
        if (files[slot]) {
            s = qo_error(cx, QO_ERR_USAGE, &ml, "input '%s' is given twice (%s and %s)",
                         qo_val_name(g, g->inputs[slot]), files[slot], file);
            goto out;
        }
        files[slot] = file;
    }
    for (uint32_t i = 0; i < nin; i++) {
        if (!files[i]) {
            if (g->vals[g->inputs[i]].cref) continue;
            s = qo_error(cx, QO_ERR_USAGE, &ml, "missing input '%s': give --input %s=FILE.npy",
                         qo_val_name(g, g->inputs[i]), qo_val_name(g, g->inputs[i]));
            goto out;
        }
        if ((s = qo_npy_read(cx, files[i], &ins[i])) != QO_OK) goto out;
        if ((s = qo_interp_check_input(cx, m, i, &ins[i])) != QO_OK) {
            qo_loc fl = {.file = files[i], .node_index = -1};
            qo_note(cx, &fl, "the array for input '%s' was read from this file", qo_val_name(g, g->inputs[i]));
            goto out;
        }
        feed[i] = &ins[i];
    }
    if ((s = make_dirs(cx, outdir)) != QO_OK) goto out;
#ifdef QOPT_HAVE_LLVM
    if (use_jit) {
        /* compile for the shapes fed (inputs left to their defaults keep the initializer's shape) */
        qo_tensor *shapes = calloc(nin + 1, sizeof *shapes);
        for (uint32_t i = 0; i < nin; i++) {
            if (feed[i]) {
                shapes[i] = *feed[i];
                shapes[i].data = NULL;
                shapes[i].owned = 0;
            } else {
                const qo_typedata *td = qo_type_get(m, qo_const_get(m, g->vals[g->inputs[i]].cref)->type);
                shapes[i].elem = td->elem;
                shapes[i].rank = td->rank;
                for (int32_t d = 0; d < td->rank && d < QO_MAX_RANK; d++) shapes[i].dims[d] = td->dims[d];
            }
        }
        qo_jit_opts jo = {.threads = (int)threads, .opt_level = -1, .ninput_shapes = nin, .input_shapes = shapes,
                          .allow_dynamic = true};
        s = qo_jit_compile(cx, m, &jo, &jit);
        free(shapes);
        if (s != QO_OK) goto out;
    }
#endif
    for (long r = 0; r < repeat; r++) {
        for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&outs[i]);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
#ifdef QOPT_HAVE_LLVM
        if (jit) s = qo_jit_run(jit, feed, nin, outs, nout);
        else
#endif
            s = qo_interp_run(cx, m, feed, nin, outs, nout);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (s != QO_OK) goto out;
        lat[r] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    }
    for (uint32_t i = 0; i < nout; i++) {
        const char *nm = qo_val_name(g, qo_graph_output(g, i));
        size_t dl = strlen(outdir), nl = strlen(nm);
        char *fp = malloc(dl + nl + 32);
        if (!fp) abort();
        memcpy(fp, outdir, dl);
        fp[dl] = '/';
        char *q = fp + dl + 1;
        if (!nl) q += sprintf(q, "output_%u", i);
        for (size_t j = 0; j < nl; j++) {
            char ch = nm[j];
            bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                      ch == '.' || ch == '-';
            *q++ = ok ? ch : '_';
        }
        strcpy(q, ".npy");
        s = qo_npy_write(cx, fp, &outs[i]);
        free(fp);
        if (s != QO_OK) goto out;
    }
    if (timing) {
        qsort(lat, (size_t)repeat, sizeof *lat, cmp_double);
        double med = repeat % 2 ? lat[repeat / 2] : (lat[repeat / 2 - 1] + lat[repeat / 2]) / 2;
        printf("latency: median %.3f ms over %ld run%s (min %.3f ms, max %.3f ms)\n", med, repeat,
               repeat == 1 ? "" : "s", lat[0], lat[repeat - 1]);
#ifdef QOPT_HAVE_LLVM
        if (jit) {
            qo_jit_stats st;
            qo_jit_get_stats(jit, &st);
            printf("jit: compile %.3f s; %u fused loops holding %u ops; %u kernel calls (%u reference); arena %zu "
                   "bytes (unplanned %zu)\n",
                   st.compile_seconds, st.fused_groups, st.fused_ops, st.kernel_calls, st.fallback_calls,
                   st.arena_bytes, st.naive_bytes);
        }
#endif
    }
out:
#ifdef QOPT_HAVE_LLVM
    qo_jit_free(jit);
#endif
    for (uint32_t i = 0; i < nin; i++) qo_tensor_free(&ins[i]);
    for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&outs[i]);
    free(ins);
    free(outs);
    free(feed);
    free(files);
    free(lat);
    free(specs);
    qo_module_free(m);
    return finish(s);
}


/* ---- quantize ------------------------------------------------------------------------------- */
typedef struct bar {
    bool tty;
    double t0;
    const char *last;
} bar;

static void progress_bar(void *u, const char *phase, int64_t done, int64_t total) {
    bar *b = u;
    if (!b->tty) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    if (b->last != phase) b->t0 = t;
    b->last = phase;
    int w = 30, fill = total > 0 ? (int)(w * (double)done / (double)total) : 0;
    char line[64];
    for (int i = 0; i < w; i++) line[i] = i < fill ? '#' : '.';
    line[w] = 0;
    if (total > 0)
        fprintf(stderr, "\r%-13s [%s] %" PRId64 "/%" PRId64 " samples %.1fs", phase, line, done, total, t - b->t0);
    else
        fprintf(stderr, "\r%-13s %" PRId64 " samples %.1fs", phase, done, t - b->t0);
    if (total > 0 && done >= total) fputc('\n', stderr);
    fflush(stderr);
}

static void print_report(const qo_quantize_report *r, FILE *f) {
    fprintf(f, "%-28s %-8s %-26s %-16s %-5s %8s\n", "layer", "op", "weight (bits, scale)", "input (bits, scale)",
            "bias", "SQNR dB");
    for (uint32_t i = 0; i < r->nlayers; i++) {
        const qo_qlayer *l = &r->layers[i];
        char w[64] = "-", a[48] = "-", b[16] = "-", q[16] = "-";
        if (l->wbits) {
            if (l->w_per_channel)
                snprintf(w, sizeof w, "%c%d/ch %.3g..%.3g", l->w_signed ? 'i' : 'u', l->wbits, (double)l->wscale_min,
                         (double)l->wscale_max);
            else
                snprintf(w, sizeof w, "%c%d %.4g", l->w_signed ? 'i' : 'u', l->wbits, (double)l->wscale_min);
        }
        if (l->abits) snprintf(a, sizeof a, "%c%d %.4g", l->a_signed ? 'i' : 'u', l->abits, (double)l->ascale);
        if (l->bbits) snprintf(b, sizeof b, "i%d", l->bbits);
        if (isinf(l->sqnr_db)) snprintf(q, sizeof q, "exact");
        else if (!isnan(l->sqnr_db)) snprintf(q, sizeof q, "%.2f", l->sqnr_db);
        fprintf(f, "%-28.28s %-8s %-26s %-16s %-5s %8s\n", l->name, l->op, w, a, b, q);
    }
    fprintf(f, "%u quantizers; %s; %.2fs (prepare %.2f, calibrate %.2f, bias %.2f, report %.2f)\n", r->nquantizers,
            r->prequantized ? "already quantized (imported)" : r->datafree ? "data-free ranges" : "calibrated", r->t_prep + r->t_insert + r->t_calib + r->t_bias + r->t_report,
            r->t_prep + r->t_insert, r->t_calib, r->t_bias, r->t_report);
}

static int cmd_quantize(int argc, char **argv, qo_ctx *cx) {
    enum { O_CALIB = 256, O_W, O_A, O_B, O_CFG, O_SET, O_FMT, O_REP, O_BATCH, O_MAX, O_NOBC, O_NOBN, O_THR, O_OPSET,
           O_QUIET, O_PRESETS, O_NOREP };
    static const struct option lo[] = {{"calib", required_argument, 0, O_CALIB},
                                       {"weights", required_argument, 0, O_W},
                                       {"acts", required_argument, 0, O_A},
                                       {"bias", required_argument, 0, O_B},
                                       {"config", required_argument, 0, O_CFG},
                                       {"set", required_argument, 0, O_SET},
                                       {"format", required_argument, 0, O_FMT},
                                       {"report", required_argument, 0, O_REP},
                                       {"batch", required_argument, 0, O_BATCH},
                                       {"max-samples", required_argument, 0, O_MAX},
                                       {"no-bias-correction", no_argument, 0, O_NOBC},
                                       {"no-fold-bn", no_argument, 0, O_NOBN},
                                       {"threads", required_argument, 0, O_THR},
                                       {"opset", required_argument, 0, O_OPSET},
                                       {"quiet", no_argument, 0, O_QUIET},
                                       {"presets", no_argument, 0, O_PRESETS},
                                       {"no-report", no_argument, 0, O_NOREP},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    qo_quantize_opts o = {0};
    const char *out = NULL, *report = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof(char *));
    bool quiet = false;
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_CALIB: o.calib = optarg; break;
        case O_W: o.weights = optarg; break;
        case O_A: o.acts = optarg; break;
        case O_B: o.bias = optarg; break;
        case O_CFG: o.config = optarg; break;
        case O_SET: sets[o.nset++] = optarg; break;
        case O_FMT:
            if (!strcmp(optarg, "qcdq")) o.format = QO_QFORMAT_QCDQ;
            else if (!strcmp(optarg, "qonnx")) o.format = QO_QFORMAT_QONNX;
            else {
                free(sets);
                return usage_error(usage_quantize, "unknown --format '%s' (qcdq or qonnx)", optarg);
            }
            break;
        case O_REP: report = optarg; break;
        case O_BATCH:
        case O_MAX:
        case O_THR:
        case O_OPSET: {
            long long v = strtoll(optarg, &end, 10);
            if (*end || end == optarg || v < (c == O_MAX || c == O_THR || c == O_OPSET ? 0 : 1) || v > 1000000000) {
                free(sets);
                return usage_error(usage_quantize, "bad number '%s'", optarg);
            }
            if (c == O_BATCH) o.batch = v;
            else if (c == O_MAX) o.max_samples = v;
            else if (c == O_THR) o.threads = (int)v;
            else o.opset = (int)v;
            break;
        }
        case O_NOBC: o.no_bias_correction = true; break;
        case O_NOBN: o.no_fold_bn = true; break;
        case O_NOREP: o.no_report = true; break;
        case O_QUIET: quiet = true; break;
        case O_PRESETS:
            for (uint32_t i = 0; qo_qpreset_name(i); i++) printf("%s\n", qo_qpreset_name(i));
            printf("\nkeys: bits signed narrow per_channel granularity axis scale round stat zp q low_q calib momentum "
                   "min_scale mse_iters role\n");
            free(sets);
            return 0;
        case 'h': fputs(usage_quantize, stdout); free(sets); return 0;
        default: fputs(usage_quantize, stderr); free(sets); return 1;
        }
    }
    o.set = sets;
    if (argc - optind != 1) {
        free(sets);
        return usage_error(usage_quantize, "expected one input model%s", "");
    }
    if (!out) {
        free(sets);
        return usage_error(usage_quantize, "missing -o OUT%s", "");
    }
    bar b = {.tty = !quiet && isatty(2)};
    o.progress = progress_bar;
    o.progress_user = &b;
    qo_module *m = NULL;
    qo_quantize_report rep = {0};
    qo_status s = load_model(cx, argv[optind], &m);
    if (s == QO_OK) s = qo_quantize(cx, m, &o, &rep);
    if (s == QO_OK) s = qo_quantize_write(cx, m, out, &o);
    if (s == QO_OK && report) {
        char *js = qo_quantize_report_json(&rep, argv[optind], out);
        s = qo_write_file_atomic(cx, report, js, strlen(js));
        qo_free(js);
    }
    if (s == QO_OK && !quiet) print_report(&rep, stdout);
    qo_quantize_report_free(&rep);
    qo_module_free(m);
    free(sets);
    return finish(s);
}

/* ---- train ---------------------------------------------------------------------------------- */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Reads arrays x and y of an .npz whole. */
static qo_status load_xy(qo_ctx *cx, const char *path, qo_tensor *x, qo_tensor *y) {
    const char *names[2] = {"x", "y"};
    qo_dataset *d;
    QO_TRY(qo_dataset_open(cx, path, 2, names, NULL, &d));
    qo_tensor t[2] = {{0}, {0}};
    int64_t n;
    qo_status s = qo_dataset_next(cx, d, qo_dataset_count(d) ? qo_dataset_count(d) : 1, t, &n);
    qo_dataset_free(d);
    if (s == QO_OK && t[1].elem != QO_I64) {
        qo_loc l = {.file = path, .node_index = -1};
        s = qo_error(cx, QO_ERR_USAGE, &l, "labels 'y' must be int64 (np.int64), one per sample");
    }
    if (s == QO_OK && t[1].rank != 1) {
        qo_loc l = {.file = path, .node_index = -1};
        s = qo_error(cx, QO_ERR_USAGE, &l, "labels 'y' must be a 1-D array");
    }
    if (s != QO_OK) {
        qo_tensor_free(&t[0]);
        qo_tensor_free(&t[1]);
        return s;
    }
    *x = t[0];
    *y = t[1];
    return QO_OK;
}

/* Writes the trainer's state as an .npz (through a temporary file). */
static qo_status save_ckpt(qo_ctx *cx, qo_trainer *tr, const char *path) {
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    snprintf(tmp, tl, "%s.tmp%ld", path, (long)getpid());
    int err = 0;
    zip_t *z = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &err);
    qo_loc l = {.file = path, .node_index = -1};
    if (!z) {
        free(tmp);
        return qo_error(cx, QO_ERR_IO, &l, "cannot create the checkpoint");
    }
    qo_status s = QO_OK;
    for (uint32_t i = 0; i < qo_trainer_nstate(tr) + 1 && s == QO_OK; i++) {
        const char *nm;
        qo_tensor steps = {0};
        const qo_tensor *v;
        if (i == qo_trainer_nstate(tr)) {
            int64_t one = 1;
            qo_tensor_make(cx, &steps, QO_I64, 1, &one);
            ((int64_t *)steps.data)[0] = qo_trainer_steps(tr);
            nm = "qopt_steps";
            v = &steps;
        } else {
            nm = qo_trainer_state_name(tr, i);
            v = qo_trainer_state(tr, i);
            if (!nm || !v) continue;
        }
        char *buf;
        size_t len;
        s = qo_npy_encode(cx, v, &buf, &len);
        qo_tensor_free(&steps);
        if (s != QO_OK) break;
        zip_source_t *src = zip_source_buffer(z, buf, len, 1); /* libzip frees buf */
        char member[600];
        snprintf(member, sizeof member, "%s.npy", nm);
        if (!src || zip_file_add(z, member, src, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8) < 0) {
            if (src) zip_source_free(src);
            s = qo_error(cx, QO_ERR_IO, &l, "cannot add '%s' to the checkpoint: %s", nm, zip_strerror(z));
        }
    }
    if (s != QO_OK) {
        zip_discard(z);
        remove(tmp);
        free(tmp);
        return s;
    }
    if (zip_close(z) < 0) {
        s = qo_error(cx, QO_ERR_IO, &l, "cannot write the checkpoint: %s", zip_strerror(z));
        zip_discard(z);
    } else if (rename(tmp, path) != 0) {
        s = qo_error(cx, QO_ERR_IO, &l, "cannot rename the checkpoint into place: %s", strerror(errno));
    }
    if (s != QO_OK) remove(tmp);
    free(tmp);
    return s;
}

static qo_status load_ckpt(qo_ctx *cx, qo_trainer *tr, const char *path) {
    qo_loc l = {.file = path, .node_index = -1};
    int err = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY, &err);
    if (!z) return qo_error(cx, QO_ERR_IO, &l, "cannot open the checkpoint (not a readable .npz)");
    qo_status s = QO_OK;
    for (uint32_t i = 0; i <= qo_trainer_nstate(tr) && s == QO_OK; i++) {
        const char *nm = i == qo_trainer_nstate(tr) ? "qopt_steps" : qo_trainer_state_name(tr, i);
        if (!nm) continue;
        char member[600];
        snprintf(member, sizeof member, "%s.npy", nm);
        zip_stat_t st;
        zip_stat_init(&st);
        zip_file_t *f = zip_stat(z, member, 0, &st) == 0 ? zip_fopen(z, member, 0) : NULL;
        if (!f) {
            s = qo_error(cx, QO_ERR_USAGE, &l, "the checkpoint has no '%s' (another model or settings?)", nm);
            break;
        }
        char *buf = malloc(st.size ? st.size : 1);
        zip_int64_t got = zip_fread(f, buf, st.size);
        zip_fclose(f);
        qo_tensor t = {0};
        if (got != (zip_int64_t)st.size) s = qo_error(cx, QO_ERR_IO, &l, "cannot read '%s'", member);
        else s = qo_npy_parse(cx, path, buf, st.size, &t);
        free(buf);
        if (s == QO_OK) {
            if (i == qo_trainer_nstate(tr)) qo_trainer_set_steps(tr, t.elem == QO_I64 ? ((int64_t *)t.data)[0] : 0);
            else s = qo_trainer_set_state(tr, nm, &t);
        }
        qo_tensor_free(&t);
    }
    /* and nothing this run would drop (e.g. learned bit widths resumed without --learn-bits) */
    zip_int64_t ne = s == QO_OK ? zip_get_num_entries(z, 0) : 0;
    for (zip_int64_t e = 0; e < ne && s == QO_OK; e++) {
        const char *mn = zip_get_name(z, (zip_uint64_t)e, 0);
        size_t ml = mn ? strlen(mn) : 0;
        if (ml < 5 || strcmp(mn + ml - 4, ".npy")) continue;
        bool known = ml - 4 == strlen("qopt_steps") && !strncmp(mn, "qopt_steps", ml - 4);
        for (uint32_t i = 0; i < qo_trainer_nstate(tr) && !known; i++) {
            const char *nm = qo_trainer_state_name(tr, i);
            known = nm && strlen(nm) == ml - 4 && !strncmp(nm, mn, ml - 4);
        }
        if (!known)
            s = qo_error(cx, QO_ERR_USAGE, &l, "the checkpoint has '%.*s', which this run does not train%s", (int)(ml - 4),
                         mn, strstr(mn, QO_TRAIN_BITS_SUFFIX) ? " (resume with --learn-bits)" : " (another model or settings?)");
    }
    zip_discard(z);
    return s;
}

static int cmd_train(int argc, char **argv, qo_ctx *cx) {
    enum { O_DATA = 256, O_VAL, O_EPOCHS, O_BATCH, O_LR, O_OPT, O_MOM, O_WD, O_SCHED, O_W, O_A, O_B, O_CFG, O_SET,
           O_FLOAT, O_NOLS, O_LBITS, O_SEED, O_THR, O_FMT, O_RESUME, O_QUIET, O_KD, O_KDT, O_KDA };
    static const struct option lo[] = {{"data", required_argument, 0, O_DATA},
                                       {"val", required_argument, 0, O_VAL},
                                       {"epochs", required_argument, 0, O_EPOCHS},
                                       {"batch", required_argument, 0, O_BATCH},
                                       {"lr", required_argument, 0, O_LR},
                                       {"optimizer", required_argument, 0, O_OPT},
                                       {"momentum", required_argument, 0, O_MOM},
                                       {"weight-decay", required_argument, 0, O_WD},
                                       {"schedule", required_argument, 0, O_SCHED},
                                       {"weights", required_argument, 0, O_W},
                                       {"acts", required_argument, 0, O_A},
                                       {"bias", required_argument, 0, O_B},
                                       {"config", required_argument, 0, O_CFG},
                                       {"set", required_argument, 0, O_SET},
                                       {"float", no_argument, 0, O_FLOAT},
                                       {"no-learn-scales", no_argument, 0, O_NOLS},
                                       {"learn-bits", no_argument, 0, O_LBITS},
                                       {"seed", required_argument, 0, O_SEED},
                                       {"threads", required_argument, 0, O_THR},
                                       {"format", required_argument, 0, O_FMT},
                                       {"resume", required_argument, 0, O_RESUME},
                                       {"quiet", no_argument, 0, O_QUIET},
                                       {"distill", no_argument, 0, O_KD},
                                       {"distill-temp", required_argument, 0, O_KDT},
                                       {"distill-alpha", required_argument, 0, O_KDA},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    const char *data = NULL, *val = NULL, *out = NULL, *resume = NULL;
    bool distill = false;
    double kd_temp = 1.0, kd_alpha = 0.5;
    long long epochs = 10, batch = 64, seed = 0;
    double lr = 1e-3, momentum = 0.9, wd = 0;
    bool cosine = true, is_float = false, quiet = false;
    qo_train_opts to = {.optimizer = QO_OPTIM_ADAM, .learn_scales = true};
    qo_quantize_opts qo = {0};
    const char **sets = calloc((size_t)argc + 1, sizeof(char *));
    int c, rc = 1;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case O_DATA: data = optarg; break;
        case O_VAL: val = optarg; break;
        case O_EPOCHS:
        case O_BATCH:
        case O_SEED:
        case O_THR: {
            long long v = strtoll(optarg, &end, 10);
            if (*end || end == optarg || v < (c == O_SEED || c == O_THR ? 0 : 1)) {
                usage_error(usage_train, "bad number '%s'", optarg);
                goto done;
            }
            if (c == O_EPOCHS) epochs = v;
            else if (c == O_BATCH) batch = v;
            else if (c == O_SEED) seed = v;
            else to.threads = (int)v;
            break;
        }
        case O_LR:
        case O_MOM:
        case O_WD: {
            double v = strtod(optarg, &end);
            if (*end || end == optarg || !(v >= 0) || !isfinite(v)) {
                usage_error(usage_train, "bad number '%s'", optarg);
                goto done;
            }
            if (c == O_LR) lr = v;
            else if (c == O_MOM) momentum = v;
            else wd = v;
            break;
        }
        case O_KD: distill = true; break;
        case O_KDT:
        case O_KDA: {
            double v = strtod(optarg, &end);
            bool ok = !*end && end != optarg && isfinite(v) && (c == O_KDT ? v > 0 : v >= 0 && v <= 1);
            if (!ok) {
                usage_error(usage_train, c == O_KDT ? "bad --distill-temp '%s' (a number > 0)"
                                                    : "bad --distill-alpha '%s' (a number in [0, 1])", optarg);
                goto done;
            }
            if (c == O_KDT) kd_temp = v;
            else kd_alpha = v;
            break;
        }
        case O_OPT:
            if (!strcmp(optarg, "sgd")) to.optimizer = QO_OPTIM_SGD;
            else if (!strcmp(optarg, "adam")) to.optimizer = QO_OPTIM_ADAM;
            else {
                usage_error(usage_train, "unknown --optimizer '%s' (sgd or adam)", optarg);
                goto done;
            }
            break;
        case O_SCHED:
            if (!strcmp(optarg, "cosine")) cosine = true;
            else if (!strcmp(optarg, "constant")) cosine = false;
            else {
                usage_error(usage_train, "unknown --schedule '%s' (cosine or constant)", optarg);
                goto done;
            }
            break;
        case O_W: qo.weights = optarg; break;
        case O_A: qo.acts = optarg; break;
        case O_B: qo.bias = optarg; break;
        case O_CFG: qo.config = optarg; break;
        case O_SET: sets[qo.nset++] = optarg; break;
        case O_FLOAT: is_float = true; break;
        case O_NOLS: to.learn_scales = false; break;
        case O_LBITS: to.learn_bits = true; break;
        case O_FMT:
            if (!strcmp(optarg, "qcdq")) qo.format = QO_QFORMAT_QCDQ;
            else if (!strcmp(optarg, "qonnx")) qo.format = QO_QFORMAT_QONNX;
            else {
                usage_error(usage_train, "unknown --format '%s' (qcdq or qonnx)", optarg);
                goto done;
            }
            break;
        case O_RESUME: resume = optarg; break;
        case O_QUIET: quiet = true; break;
        case 'h': fputs(usage_train, stdout); rc = 0; goto done;
        default: fputs(usage_train, stderr); goto done;
        }
    }
    qo.set = sets;
    if (argc - optind != 1) {
        usage_error(usage_train, "expected one MODEL argument%s", "");
        goto done;
    }
    if (!data || !out) {
        usage_error(usage_train, "%s", !data ? "missing --data TRAIN.npz" : "missing -o OUT.onnx");
        goto done;
    }
    to.lr = (float)lr;
    to.momentum = to.optimizer == QO_OPTIM_SGD ? (float)momentum : 0.0f;
    to.weight_decay = (float)wd;
    qo_module *m = NULL, *teacher = NULL;
    qo_trainer *tr = NULL;
    qo_tensor x = {0}, y = {0}, vx = {0}, vy = {0}, bx = {0}, by = {0};
    int64_t *perm = NULL;
    qo_status s = load_model(cx, argv[optind], &m);
    if (s == QO_OK && distill) s = load_model(cx, argv[optind], &teacher);
    if (s == QO_OK && distill) {
        to.teacher = teacher;
        to.distill_temp = (float)kd_temp;
        to.distill_alpha = (float)kd_alpha;
    }
    if (s == QO_OK) s = load_xy(cx, data, &x, &y);
    if (s == QO_OK && val) s = load_xy(cx, val, &vx, &vy);
    if (s == QO_OK && !is_float) {
        qo.calib = data;
        qo.batch = batch;
        qo.no_report = true;
        qo.threads = to.threads;
        qo_quantize_report rep = {0};
        s = qo_quantize(cx, m, &qo, &rep);
        qo_quantize_report_free(&rep);
    } else if (s == QO_OK) {
        s = qo_pipeline_run(cx, m, "canonicalize,shape-infer", NULL);
    }
    if (s == QO_OK) s = qo_trainer_new(cx, m, batch, &to, &tr);
    if (s == QO_OK && resume) s = load_ckpt(cx, tr, resume);
    int64_t n = x.rank ? x.dims[0] : 0;
    if (s == QO_OK && n != y.dims[0]) {
        qo_loc l = {.file = data, .node_index = -1};
        s = qo_error(cx, QO_ERR_USAGE, &l, "x has %lld samples, y %lld", (long long)n, (long long)y.dims[0]);
    }
    perm = calloc((size_t)(n ? n : 1), sizeof(int64_t));
    size_t xs = n ? x.nbytes / (size_t)n : 0;
    bool tty = !quiet && isatty(2);
    uint64_t rng = (uint64_t)seed;
    int64_t steps_per_epoch = (n + batch - 1) / batch;
    int64_t start_epoch = tr ? qo_trainer_steps(tr) / (steps_per_epoch ? steps_per_epoch : 1) : 0;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    /* a resumed run replays the shuffles of the epochs it skips, so it continues the same sequence */
    for (int64_t e = 0; s == QO_OK && e < epochs; e++) {
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)(splitmix(&rng) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        if (e < start_epoch) continue;
        float elr = cosine ? (float)(0.5 * lr * (1.0 + cos(M_PI * (double)e / (double)epochs))) : (float)lr;
        double lsum = 0;
        int64_t hits = 0, seen = 0;
        for (int64_t i = 0; s == QO_OK && i < n; i += batch) {
            int64_t b = n - i < batch ? n - i : batch;
            int64_t dims[QO_MAX_RANK];
            memcpy(dims, x.dims, sizeof dims);
            dims[0] = b;
            if (bx.dims[0] != b || !bx.data) {
                qo_tensor_free(&bx);
                qo_tensor_free(&by);
                s = qo_tensor_make(cx, &bx, x.elem, x.rank, dims);
                if (s == QO_OK) s = qo_tensor_make(cx, &by, QO_I64, 1, &b);
                if (s != QO_OK) break;
            }
            for (int64_t k = 0; k < b; k++) {
                memcpy((char *)bx.data + (size_t)k * xs, (char *)x.data + (size_t)perm[i + k] * xs, xs);
                ((int64_t *)by.data)[k] = ((int64_t *)y.data)[perm[i + k]];
            }
            float loss;
            int64_t hit;
            s = qo_trainer_step(tr, &bx, &by, elr, &loss, &hit);
            lsum += (double)loss * (double)b;
            hits += hit;
            seen += b;
            if (tty)
                fprintf(stderr, "\repoch %lld/%lld [%5lld/%lld] loss %.4f acc %.2f%%", (long long)e + 1, epochs,
                        (long long)seen, (long long)n, lsum / (double)seen, 100.0 * (double)hits / (double)seen);
        }
        if (s != QO_OK) break;
        double va = 0, vl = 0;
        if (val) s = qo_trainer_eval(tr, &vx, &vy, batch, &va, &vl);
        if (s != QO_OK) break;
        if (!quiet) {
            fprintf(tty ? stderr : stdout, "%sepoch %lld/%lld lr %.3g loss %.4f acc %.2f%%", tty ? "\r" : "",
                    (long long)e + 1, epochs, (double)elr, lsum / (double)(seen ? seen : 1),
                    100.0 * (double)hits / (double)(seen ? seen : 1));
            if (val) fprintf(tty ? stderr : stdout, "  val loss %.4f acc %.2f%%", vl, 100.0 * va);
            fputc('\n', tty ? stderr : stdout);
        }
    }
    qo_module *trained = NULL;
    if (s == QO_OK) s = qo_trainer_model(tr, &trained);
    if (s == QO_OK) s = qo_quantize_write(cx, trained, out, &qo);
    if (s == QO_OK) {
        char ck[4200];
        snprintf(ck, sizeof ck, "%s.ckpt.npz", out);
        s = save_ckpt(cx, tr, ck);
        if (s == QO_OK && !quiet) printf("wrote %s and %s (%lld steps)\n", out, ck, (long long)qo_trainer_steps(tr));
    }
    qo_module_free(trained);
    qo_trainer_free(tr);
    qo_module_free(m);
    qo_module_free(teacher);
    free(perm);
    qo_tensor_free(&x), qo_tensor_free(&y), qo_tensor_free(&vx), qo_tensor_free(&vy);
    qo_tensor_free(&bx), qo_tensor_free(&by);
    rc = finish(s);
done:
    free(sets);
    return rc;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(int, char **, qo_ctx *);
    } cmds[] = {{"inspect", cmd_inspect}, {"print", cmd_print},   {"convert", cmd_convert},
                {"opt", cmd_opt},         {"verify", cmd_verify}, {"passes", cmd_passes},
                {"run", cmd_run},         {"quantize", cmd_quantize},
                {"train", cmd_train}};
    qo_ctx cx;
    qo_ctx_init(&cx);
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 1;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("qopt %s\n", QOPT_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0) return cmds[i].fn(argc - 1, argv + 1, &cx);
    fprintf(stderr, "qopt: error: unknown command '%s'\n\n%s", argv[1], usage_main);
    return 1;
}
