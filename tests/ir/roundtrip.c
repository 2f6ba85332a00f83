/* tests/ir/roundtrip.c — .onnx -> IR -> .qir -> IR round trip over real models.
 *
 *   roundtrip [--expect LIST] [--write LIST] [MODEL.onnx...]
 *
 * Without models, walks /usr/share/libonnx-testdata/data/{node,pytorch-converted,pytorch-operator,
 * simple}/ (every model.onnx one level down). For each model (loaded with qo_onnx_load):
 *   1. print (defaults: big file-backed constants as file(...) references) -> parse -> print must
 *      give the same text, and the parsed module must be structurally equal to the loaded one
 *      (tests/ir/irdiff.h, including storage and file origin of every constant) and pass qo_verify
 *      whenever the loaded module does;
 *   2. print with inline_all -> parse: structurally equal again, i.e. every constant's bytes equal
 *      the bytes the loader took from the .onnx file, and printing the result with inline_all gives
 *      the same text.
 * LIST holds model paths expected to pass (one per line); with --expect, a listed model that fails
 * fails the test. --write rewrites LIST with the models that passed. Ends with "N passed, N failed". */
#include "frontend/onnx_load.h"
#include "irdiff.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static void quiet(void *ud, qo_diag_kind k, const qo_loc *loc, const char *msg) {
    char where[512];
    (void)ud;
    if (k != QO_DIAG_ERROR) return;
    qo_loc_format(loc, where, sizeof where);
    fprintf(stderr, "    %s: %.*s\n", where, (int)strcspn(msg, "\n"), msg);
}

static bool check_model(const char *path, char *why, size_t cap) {
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = quiet;
    qo_module *m = NULL, *m2 = NULL, *m3 = NULL;
    char *t1 = NULL, *t2 = NULL, *t3 = NULL, *t4 = NULL;
    bool ok = false;
    irdiff d = {.check_storage = true};
    qo_print_opts inl = {.inline_all = true};
    if (qo_onnx_load(&cx, path, &m)) {
        snprintf(why, cap, "load failed");
        goto done;
    }
    if (qo_print_module_str(&cx, m, NULL, &t1)) {
        snprintf(why, cap, "print failed");
        goto done;
    }
    if (qo_parse_module(&cx, "printed.qir", t1, strlen(t1), &m2)) {
        snprintf(why, cap, "parse of printed text failed");
        goto done;
    }
    if (qo_print_module_str(&cx, m2, NULL, &t2)) goto done;
    /* the verifier (ir/verify.c) is an independent judge: a module it accepts must still pass */
    {
        qo_ctx vcx;
        qo_ctx_init(&vcx);
        vcx.diag = quiet;
        if (qo_verify(&vcx, m) == QO_OK && qo_verify(&cx, m2) != QO_OK) {
            snprintf(why, cap, "parsed module fails qo_verify");
            goto done;
        }
    }
    if (strcmp(t1, t2) != 0) {
        const char *a = t1, *b = t2;
        unsigned line = 1;
        while (*a && *a == *b) line += *a++ == '\n', b++;
        snprintf(why, cap, "reprinted text differs at line %u", line);
        goto done;
    }
    if (!module_eq(&d, m, m2)) {
        snprintf(why, cap, "parsed module differs: %s", d.why);
        goto done;
    }
    if (qo_print_module_str(&cx, m, &inl, &t3)) goto done;
    if (qo_parse_module(&cx, "inline.qir", t3, strlen(t3), &m3)) {
        snprintf(why, cap, "parse of inline_all text failed");
        goto done;
    }
    d.check_storage = false; /* inline bytes are owned by the new module */
    if (!module_eq(&d, m, m3)) {
        snprintf(why, cap, "inline_all module differs: %s", d.why);
        goto done;
    }
    if (qo_print_module_str(&cx, m3, &inl, &t4)) goto done;
    if (strcmp(t3, t4) != 0) {
        snprintf(why, cap, "inline_all reprint differs");
        goto done;
    }
    ok = true;
done:
    qo_module_free(m);
    qo_module_free(m2);
    qo_module_free(m3);
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    return ok;
}

typedef struct strlist {
    char **s;
    size_t n, cap;
} strlist;

static void push(strlist *l, const char *s) {
    if (l->n == l->cap) l->s = realloc(l->s, (l->cap = l->cap ? l->cap * 2 : 256) * sizeof(char *));
    l->s[l->n++] = strdup(s);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool listed(const strlist *l, const char *s) {
    return l->n && bsearch(&s, l->s, l->n, sizeof(char *), cmp) != NULL;
}

int main(int argc, char **argv) {
    const char *expect = NULL, *write = NULL;
    strlist models = {0}, exp = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--expect") == 0 && i + 1 < argc) expect = argv[++i];
        else if (strcmp(argv[i], "--write") == 0 && i + 1 < argc) write = argv[++i];
        else push(&models, argv[i]);
    }
    if (!models.n) {
        static const char *const dirs[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};
        for (size_t k = 0; k < 4; k++) {
            char dir[512];
            snprintf(dir, sizeof dir, "/usr/share/libonnx-testdata/data/%s", dirs[k]);
            DIR *dp = opendir(dir);
            if (!dp) continue;
            struct dirent *e;
            while ((e = readdir(dp))) {
                if (e->d_name[0] == '.') continue;
                char p[1024];
                snprintf(p, sizeof p, "%s/%s/model.onnx", dir, e->d_name);
                FILE *f = fopen(p, "rb");
                if (f) {
                    fclose(f);
                    push(&models, p);
                }
            }
            closedir(dp);
        }
        qsort(models.s, models.n, sizeof(char *), cmp);
    }
    if (expect) {
        FILE *f = fopen(expect, "r");
        char line[1024];
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (line[0] && line[0] != '#') push(&exp, line);
        }
        if (f) fclose(f);
        qsort(exp.s, exp.n, sizeof(char *), cmp);
    }
    FILE *wf = write ? fopen(write, "w") : NULL;
    unsigned pass = 0, fail = 0, regress = 0;
    for (size_t i = 0; i < models.n; i++) {
        char why[1024];
        if (check_model(models.s[i], why, sizeof why)) {
            pass++;
            if (wf) fprintf(wf, "%s\n", models.s[i]);
            if (expect && !listed(&exp, models.s[i])) printf("NEW PASS %s\n", models.s[i]);
        } else {
            fail++;
            bool was = listed(&exp, models.s[i]);
            regress += was;
            printf("%s %s: %s\n", was ? "REGRESSION" : "FAIL", models.s[i], why);
        }
    }
    if (wf) fclose(wf);
    printf("%u passed, %u failed\n", pass, fail);
    for (size_t i = 0; i < models.n; i++) free(models.s[i]);
    for (size_t i = 0; i < exp.n; i++) free(exp.s[i]);
    free(models.s);
    free(exp.s);
    if (expect) return regress ? 1 : 0;
    return fail ? 1 : 0;
}
