/* tests/unit/test_models.c — runs qo_verify over real ONNX models: every
 * <testdata>/{node,pytorch-converted,pytorch-operator,simple}/<case>/model.onnx of Debian's
 * libonnx-testdata. These are valid ONNX models, so any verifier error is a verifier or loader bug.
 *
 * usage: test_models TESTDATA_DIR EXPECTED_LIST [--write]
 *   EXPECTED_LIST names (as "<set>/<case>") the models that must load and verify cleanly; one check
 *   per listed model. Models not listed are still run and reported ("not listed: ...") but do not
 *   fail the test. --write rewrites EXPECTED_LIST with the models that pass now. */
#include "test.h"

#include "frontend/onnx_load.h"
#include "ir/ir.h"

#include <dirent.h>

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted "<set>/<case>" names of cases with a model.onnx. */
static char **list_cases(const char *root, size_t *n) {
    static const char *const sets[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
    char **out = NULL;
    size_t cnt = 0, cap = 0;
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", root, sets[s]);
        DIR *dp = opendir(dir);
        if (!dp) continue;
        struct dirent *e;
        while ((e = readdir(dp))) {
            if (e->d_name[0] == '.') continue;
            char path[4096 + 512];
            snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
            FILE *f = fopen(path, "rb");
            if (!f) continue;
            fclose(f);
            if (cnt == cap) out = qo_realloc(out, (cap = cap ? cap * 2 : 256) * sizeof *out);
            size_t len = strlen(sets[s]) + strlen(e->d_name) + 2;
            out[cnt] = qo_malloc(len);
            snprintf(out[cnt], len, "%s/%s", sets[s], e->d_name);
            cnt++;
        }
        closedir(dp);
    }
    qsort(out, cnt, sizeof *out, cmp_str);
    *n = cnt;
    return out;
}

static bool listed(char **names, size_t n, const char *name) {
    return bsearch(&name, names, n, sizeof *names, cmp_str) != NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_models TESTDATA_DIR EXPECTED_LIST [--write]\n");
        return 2;
    }
    const char *root = argv[1], *listpath = argv[2];
    bool write = argc > 3 && strcmp(argv[3], "--write") == 0;
    size_t ncases;
    char **cases = list_cases(root, &ncases);
    /* expected list */
    char **exp = NULL;
    size_t nexp = 0;
    char *text = NULL;
    size_t tlen = 0;
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    if (!write && qo_read_file(&cx, listpath, &text, &tlen) == QO_OK) {
        exp = qo_malloc((tlen / 2 + 1) * sizeof *exp);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
            if (line[0] && line[0] != '#') exp[nexp++] = line;
        qsort(exp, nexp, sizeof *exp, cmp_str);
    } else if (!write) {
        fprintf(stderr, "cannot read %s\n", listpath);
        return 2;
    }
    FILE *wf = write ? fopen(listpath, "w") : NULL;
    if (wf) fprintf(wf, "# Models of libonnx-testdata that load and pass qo_verify (tests/unit/test_models.c).\n");
    size_t nload_fail = 0, nverify_fail = 0, nok = 0;
    for (size_t i = 0; i < ncases; i++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s/model.onnx", root, cases[i]);
        qt_ctx(&cx, &d);
        qo_module *m = NULL;
        qo_status st = qo_onnx_load(&cx, path, &m);
        bool want = exp && listed(exp, nexp, cases[i]);
        if (st != QO_OK) {
            nload_fail++;
            printf("load failed (%s): %s: %s\n", qo_status_str(st), cases[i], d.n ? d.text[0] : "");
            if (want) CHECK(!"listed model no longer loads");
            continue;
        }
        qt_ctx(&cx, &d);
        cx.max_errors = 20;
        st = qo_verify(&cx, m);
        if (st == QO_OK) {
            nok++;
            if (wf) fprintf(wf, "%s\n", cases[i]);
            if (want) qt_pass++;
            else if (!write) printf("not listed but passes: %s\n", cases[i]);
        } else {
            nverify_fail++;
            printf("verify failed: %s\n", cases[i]);
            for (int k = 0; k < d.n && k < 5; k++) printf("    %s\n", d.text[k]);
            if (want) {
                qt_fail++;
                fprintf(stderr, "FAIL: %s was expected to verify\n", cases[i]);
            }
        }
        qo_module_free(m);
    }
    if (wf) fclose(wf);
    printf("models: %zu, loaded and verified: %zu, load failed: %zu, verify failed: %zu\n", ncases, nok,
           nload_fail, nverify_fail);
    /* every listed model must exist */
    for (size_t i = 0; i < nexp; i++)
        if (!listed(cases, ncases, exp[i])) {
            qt_fail++;
            fprintf(stderr, "FAIL: listed model %s not found\n", exp[i]);
        }
    for (size_t i = 0; i < ncases; i++) qo_free(cases[i]);
    qo_free(cases);
    qo_free(exp);
    qo_free(text);
    return qt_finish();
}
