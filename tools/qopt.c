/* tools/qopt.c — the qopt command-line driver: inspect, print, convert, opt, verify, passes.
 * Exit status: 0 success, 1 bad input or usage (with a message on stderr). */
#include "backends/onnx/onnx_write.h"
#include "frontend/onnx_load.h"
#include "ir/ir.h"
#include "passes/pass.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(int, char **, qo_ctx *);
    } cmds[] = {{"inspect", cmd_inspect}, {"print", cmd_print},   {"convert", cmd_convert},
                {"opt", cmd_opt},         {"verify", cmd_verify}, {"passes", cmd_passes}};
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
