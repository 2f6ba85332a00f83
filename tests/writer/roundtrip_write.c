/* tests/writer/roundtrip_write.c — test driver: qo_onnx_load(IN) → qo_onnx_write(OUT), and with
 * --reload also qo_onnx_load(OUT) and compares the two modules' canonical text (qo_print_module_str,
 * constants inline, no locations). run_roundtrip.py runs it per model and compares IN/OUT with
 * python3-onnx (compare_models.py).
 *
 * usage: writer_roundtrip [--reload] [--external N] [--stats] IN.onnx OUT.onnx
 * --stats prints the process's peak RSS and its anonymous / file-backed parts after the write
 * (borrowed weights are file-backed pages of the input mapping, not copies).
 * exit: 0 ok, 10 load of IN failed, 11 write failed, 12 reload of OUT failed, 13 IR text differs,
 *       14 --reload asked but ir/print.c was not built (message on stderr), 2 usage. */
#include "backends/onnx/onnx_write.h"
#include "frontend/onnx_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef QO_HAVE_PRINT
/* The external-data origin of a constant records where its bytes were read from, which a write
 * legitimately changes (inline, or another side file): not part of the comparison. */
static void clear_origins(qo_module *m) {
    for (qo_cref c = 1; c < m->nconsts; c++) {
        qo_constdata *cd = qo_const_get_mut(m, c);
        cd->ext_location = 0;
        cd->ext_offset = cd->ext_length = 0;
    }
}

static char *print_str(qo_ctx *cx, qo_module *m) {
    clear_origins(m);
    qo_print_opts po = {.inline_all = true, .no_locs = true, .hex_floats = true};
    char *s = NULL;
    if (qo_print_module_str(cx, m, &po, &s) != QO_OK) return NULL;
    return s;
}

/* First differing line, for the log. */
static void show_diff(const char *a, const char *b) {
    int line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') line++, la = a + 1, lb = b + 1;
        a++, b++;
    }
    const char *ea = strchr(la, '\n'), *eb = strchr(lb, '\n');
    int na = ea ? (int)(ea - la) : (int)strlen(la), nb = eb ? (int)(eb - lb) : (int)strlen(lb);
    fprintf(stderr, "IR text differs at line %d:\n  loaded : %.*s\n  written: %.*s\n", line, na > 300 ? 300 : na, la,
            nb > 300 ? 300 : nb, lb);
}
#endif

static void print_stats(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6) || !strncmp(line, "RssAnon:", 8) || !strncmp(line, "RssFile:", 8))
            fputs(line, stderr);
    fclose(f);
}

int main(int argc, char **argv) {
    bool reload = false, stats = false;
    qo_onnx_write_opts wo = {0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--reload") == 0) reload = true;
        else if (strcmp(argv[i], "--stats") == 0) stats = true;
        else if (strcmp(argv[i], "--external") == 0 && i + 1 < argc) {
            wo.external_data = true;
            wo.external_threshold = (size_t)strtoull(argv[++i], NULL, 10);
        } else break;
    }
    if (argc - i != 2) {
        fprintf(stderr, "usage: %s [--reload] [--external N] [--stats] IN.onnx OUT.onnx\n", argv[0]);
        return 2;
    }
    const char *in = argv[i], *out = argv[i + 1];
    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = NULL;
    if (qo_onnx_load(&cx, in, &m) != QO_OK) return 10;
    if (qo_onnx_write(&cx, m, out, &wo) != QO_OK) {
        qo_module_free(m);
        return 11;
    }
    if (stats) print_stats();
    int rc = 0;
    if (reload) {
#ifdef QO_HAVE_PRINT
        qo_module *m2 = NULL;
        if (qo_onnx_load(&cx, out, &m2) != QO_OK) {
            rc = 12;
        } else {
            char *a = print_str(&cx, m), *b = print_str(&cx, m2);
            if (!a || !b) rc = 13, fprintf(stderr, "qo_print_module_str failed\n");
            else if (strcmp(a, b) != 0) rc = 13, show_diff(a, b);
            free(a);
            free(b);
            qo_module_free(m2);
        }
#else
        fprintf(stderr, "--reload: ir/print.c (qo_print_module_str) was not built; IR comparison skipped\n");
        rc = 14;
#endif
    }
    qo_module_free(m);
    return rc;
}
