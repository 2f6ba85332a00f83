/* tests/frontend/load_all.c — loads every testdata model.onnx with qo_onnx_load and compares a
 * structural summary of the IR (summary.c) against the one python3-onnx prints (onnx_summary.py).
 *
 *   load_all PYTHON SCRIPT LISTFILE DATADIR [--write-list]
 *
 * Models: DATADIR/{node,pytorch-converted,pytorch-operator,simple,real}/<case>/model.onnx and
 * DATADIR/<case>/model.onnx. LISTFILE names the models (relative to DATADIR, e.g. node/test_abs) expected to match; a listed model
 * that no longer matches is a regression and fails the test. Prints "N passed, N failed, N skipped"
 * (skipped = not in the list and not matching). --write-list rewrites LISTFILE from this run. */
#include "frontend/onnx_load.h"
#include "summary.h"
#include "tests/common/cases.h"

#include <stdlib.h>
#include <string.h>

/* "" = models directly under DATADIR (DATADIR/<case>/model.onnx) */
static const char *const areas[] = {"node", "pytorch-converted", "pytorch-operator", "simple", "real", ""};

typedef struct diagbuf {
    char *buf;
    size_t n;
    FILE *f;
} diagbuf;

static void collect(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    diagbuf *d = ud;
    char lb[512];
    qo_loc_format(loc, lb, sizeof lb);
    fprintf(d->f, "%s: %s: %s\n", lb, kind == QO_DIAG_ERROR ? "error" : "warning", msg);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s PYTHON SCRIPT LISTFILE DATADIR [--write-list]\n", argv[0]);
        return 2;
    }
    const char *py = argv[1], *script = argv[2], *listfile = argv[3], *datadir = argv[4];
    bool write_list = argc > 5 && !strcmp(argv[5], "--write-list");

    char **rel = NULL;
    size_t nrel = qo_test_cases_list(datadir, areas, sizeof areas / sizeof *areas, NULL, 0, &rel);
    if (!nrel) {
        fprintf(stderr, "no models under %s\n", datadir);
        return 1;
    }

    /* expected list */
    char *listtext = NULL;
    size_t listlen = 0;
    {
        FILE *f = fopen(listfile, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            listlen = (size_t)ftell(f);
            fseek(f, 0, SEEK_SET);
            listtext = calloc(listlen + 3, 1);
            listtext[0] = '\n';
            if (fread(listtext + 1, 1, listlen, f) != listlen) listlen = 0;
            listtext[listlen + 1] = '\n';
            fclose(f);
        } else if (!write_list) {
            fprintf(stderr, "cannot open %s\n", listfile);
            return 1;
        }
    }

    /* run the oracle once over all models */
    size_t cl = strlen(py) + strlen(script) + 16;
    for (size_t i = 0; i < nrel; i++) cl += strlen(datadir) + strlen(rel[i]) + 20;
    char *cmd = malloc(cl);
    size_t o = (size_t)snprintf(cmd, cl, "'%s' '%s'", py, script);
    for (size_t i = 0; i < nrel; i++) o += (size_t)snprintf(cmd + o, cl - o, " '%s/%s/model.onnx'", datadir, rel[i]);
    FILE *pf = popen(cmd, "r");
    free(cmd);
    if (!pf) {
        perror("popen");
        return 1;
    }
    char *oracle = NULL;
    size_t olen = 0, ocap = 0;
    for (;;) {
        if (olen + 65536 + 1 > ocap) oracle = realloc(oracle, ocap = (ocap ? ocap * 2 : 1 << 20));
        size_t r = fread(oracle + olen, 1, ocap - olen - 1, pf);
        if (!r) break;
        olen += r;
    }
    oracle[olen] = 0;
    int prc = pclose(pf);
    if (prc != 0) {
        fprintf(stderr, "oracle %s %s failed (status %d)\n", py, script, prc);
        return 1;
    }

    FILE *lf = write_list ? fopen(listfile, "w") : NULL;
    unsigned pass = 0, fail = 0, skip = 0, newpass = 0;
    char *cursor = oracle;
    for (size_t i = 0; i < nrel; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/model.onnx", datadir, rel[i]);
        /* oracle chunk */
        char hdr[4200];
        snprintf(hdr, sizeof hdr, "== %s\n", path);
        char *beg = strstr(cursor, hdr);
        if (!beg) {
            fprintf(stderr, "oracle output lacks %s\n", path);
            return 1;
        }
        beg += strlen(hdr);
        char *end = strstr(beg, "\n== ");
        end = end ? end + 1 : oracle + olen;
        cursor = end;
        size_t elen = (size_t)(end - beg);

        diagbuf db = {0};
        db.f = open_memstream(&db.buf, &db.n);
        qo_ctx cx;
        qo_ctx_init(&cx);
        cx.diag = collect;
        cx.diag_ud = &db;
        qo_module *m = NULL;
        qo_status st = qo_onnx_load(&cx, path, &m);
        char *got = NULL;
        size_t glen = 0;
        FILE *gf = open_memstream(&got, &glen);
        if (st == QO_OK) fe_summary(m, gf);
        else fputs("ERROR qopt\n", gf);
        fclose(gf);
        fclose(db.f);
        qo_module_free(m);

        bool ok = st == QO_OK && glen == elen && memcmp(got, beg, elen) == 0;
        char key[4200];
        snprintf(key, sizeof key, "\n%s\n", rel[i]);
        bool listed = listtext && strstr(listtext, key) != NULL;
        if (ok) {
            pass++;
            if (!listed && !write_list) newpass++, printf("NEW PASS %s (add it to the list)\n", rel[i]);
            if (lf) fprintf(lf, "%s\n", rel[i]);
        } else {
            if (listed && !write_list) fail++;
            else skip++;
            printf("%s %s\n", listed && !write_list ? "FAIL" : "known-fail", rel[i]);
            if (st != QO_OK) {
                printf("  load failed (%s):\n%s", qo_status_str(st), db.buf);
            } else {
                /* first differing line */
                const char *a = got, *b = beg;
                int line = 1;
                while (*a && *a == *b) {
                    if (*a == '\n') line++;
                    a++, b++;
                }
                while (a > got && a[-1] != '\n') a--, b--;
                const char *ae = strchr(a, '\n'), *be = memchr(b, '\n', (size_t)(beg + elen - b));
                printf("  line %d:\n    qopt:   %.*s\n    python: %.*s\n", line, ae ? (int)(ae - a) : (int)strlen(a), a,
                       be ? (int)(be - b) : (int)(beg + elen - b), b);
            }
        }
        free(got);
        free(db.buf);
    }
    if (lf) fclose(lf);
    printf("%u passed, %u failed, %u skipped\n", pass, fail, skip);
    qo_test_cases_free(rel, nrel);
    free(oracle);
    free(listtext);
    return fail ? 1 : 0;
}
