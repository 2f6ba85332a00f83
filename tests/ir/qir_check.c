/* tests/ir/qir_check.c — runner for hand-written .qir files.
 *
 *   qir_check roundtrip FILE...  each FILE (minus its full-line // comments) must be in canonical
 *                                form: parse -> print gives the same bytes, and so does a second
 *                                parse -> print of the output.
 *   qir_check invalid FILE...    each FILE must fail to parse; every `// expected-error: TEXT` line
 *                                in it must match (substring) the first line of one reported error,
 *                                `// expected-error-at: L:C` must match the first error's place and
 *                                `// expected-error-count: N` the number of errors.
 *   qir_check print FILE         parse and print (debugging aid).
 * A directory argument stands for the *.qir files in it (sorted).
 * Prints one line per failure and a final "N passed, N failed" line. */
#include "ir/ir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct diags {
    char *text; /* all first lines, '\n'-separated */
    size_t n, cap;
    unsigned count;
    unsigned first_line, first_col;
} diags;

static void collect(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    diags *d = ud;
    if (kind != QO_DIAG_ERROR) return;
    if (!d->count && loc) {
        d->first_line = loc->line;
        d->first_col = loc->col;
    }
    d->count++;
    size_t l = strcspn(msg, "\n");
    if (d->n + l + 2 > d->cap) {
        d->cap = (d->n + l + 2) * 2;
        d->text = realloc(d->text, d->cap);
    }
    memcpy(d->text + d->n, msg, l);
    d->n += l;
    d->text[d->n++] = '\n';
    d->text[d->n] = 0;
}

/* The file without lines starting with "//". */
static char *strip_comments(const char *t) {
    size_t n = strlen(t);
    char *o = malloc(n + 1);
    size_t k = 0;
    const char *p = t;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p + 1) : strlen(p);
        if (!(l >= 2 && p[0] == '/' && p[1] == '/')) {
            memcpy(o + k, p, l);
            k += l;
        }
        p += l;
    }
    o[k] = 0;
    return o;
}

static void first_diff(const char *a, const char *b) {
    unsigned line = 1;
    while (*a && *a == *b) {
        if (*a == '\n') line++;
        a++, b++;
    }
    fprintf(stderr, "  first difference at output line %u:\n  want: %.*s\n  got:  %.*s\n", line,
            (int)strcspn(a, "\n"), a, (int)strcspn(b, "\n"), b);
}

static bool roundtrip(const char *path) {
    qo_ctx cx;
    qo_ctx_init(&cx);
    char *text;
    size_t len;
    if (qo_read_file(&cx, path, &text, &len)) return false;
    char *want = strip_comments(text);
    qo_module *m = NULL, *m2 = NULL;
    char *out = NULL, *out2 = NULL;
    bool ok = false;
    if (qo_parse_module(&cx, path, text, len, &m)) goto done;
    if (qo_print_module_str(&cx, m, NULL, &out)) goto done;
    if (strcmp(want, out) != 0) {
        fprintf(stderr, "FAIL %s: printed text differs from the file\n", path);
        first_diff(want, out);
        goto done;
    }
    if (qo_parse_module(&cx, path, out, strlen(out), &m2)) goto done; /* same path: file(...) resolves alike */
    if (qo_print_module_str(&cx, m2, NULL, &out2)) goto done;
    if (strcmp(out, out2) != 0) {
        fprintf(stderr, "FAIL %s: second round trip differs\n", path);
        first_diff(out, out2);
        goto done;
    }
    ok = true;
done:
    if (!ok && !out) fprintf(stderr, "FAIL %s: did not parse\n", path);
    qo_module_free(m);
    qo_module_free(m2);
    free(out);
    free(out2);
    free(want);
    free(text);
    return ok;
}

static bool invalid(const char *path) {
    qo_ctx cx;
    qo_ctx_init(&cx);
    char *text;
    size_t len;
    if (qo_read_file(&cx, path, &text, &len)) return false;
    diags d = {0};
    cx.diag = collect;
    cx.diag_ud = &d;
    qo_module *m = NULL;
    qo_status s = qo_parse_module(&cx, path, text, len, &m);
    bool ok = true;
    if (s == QO_OK || m) {
        fprintf(stderr, "FAIL %s: parsed without error\n", path);
        ok = false;
    }
    if (d.count == 0) {
        fprintf(stderr, "FAIL %s: no error reported\n", path);
        ok = false;
    }
    unsigned nexp = 0;
    for (const char *p = text; (p = strstr(p, "// expected-error")); p++) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char *want = strndup(p, l);
        if (strncmp(want, "// expected-error: ", 19) == 0) {
            nexp++;
            if (!d.text || !strstr(d.text, want + 19)) {
                fprintf(stderr, "FAIL %s: no error matching '%s'; got:\n%s", path, want + 19, d.text ? d.text : "");
                ok = false;
            }
        } else if (strncmp(want, "// expected-error-count: ", 25) == 0) {
            nexp++;
            if ((unsigned)atoi(want + 25) != d.count) {
                fprintf(stderr, "FAIL %s: %u errors reported, expected %s:\n%s", path, d.count, want + 25, d.text);
                ok = false;
            }
        } else if (strncmp(want, "// expected-error-at: ", 22) == 0) {
            unsigned L, C;
            nexp++;
            if (sscanf(want + 22, "%u:%u", &L, &C) != 2 || L != d.first_line || C != d.first_col) {
                fprintf(stderr, "FAIL %s: first error at %u:%u, expected %s\n", path, d.first_line, d.first_col,
                        want + 22);
                ok = false;
            }
        }
        free(want);
    }
    if (!nexp) {
        fprintf(stderr, "FAIL %s: no '// expected-error: ' line in the file\n", path);
        ok = false;
    }
    qo_module_free(m);
    free(d.text);
    free(text);
    return ok;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: qir_check roundtrip|invalid|print FILE...\n");
        return 2;
    }
    if (strcmp(argv[1], "print") == 0) {
        qo_ctx cx;
        qo_ctx_init(&cx);
        char *text;
        size_t len;
        qo_module *m;
        if (qo_read_file(&cx, argv[2], &text, &len) || qo_parse_module(&cx, argv[2], text, len, &m)) return 1;
        qo_status s = qo_print_module(&cx, m, stdout, NULL);
        qo_module_free(m);
        free(text);
        return s ? 1 : 0;
    }
    bool inv = strcmp(argv[1], "invalid") == 0;
    unsigned pass = 0, fail = 0;
    for (int i = 2; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            struct dirent **ents;
            int n = scandir(argv[i], &ents, NULL, alphasort);
            for (int k = 0; k < n; k++) {
                size_t l = strlen(ents[k]->d_name);
                if (l > 4 && strcmp(ents[k]->d_name + l - 4, ".qir") == 0) {
                    char p[4096];
                    snprintf(p, sizeof p, "%s/%s", argv[i], ents[k]->d_name);
                    if (inv ? invalid(p) : roundtrip(p)) pass++;
                    else fail++;
                }
                free(ents[k]);
            }
            if (n >= 0) free(ents);
            continue;
        }
        if (inv ? invalid(argv[i]) : roundtrip(argv[i])) pass++;
        else fail++;
    }
    printf("%u passed, %u failed\n", pass, fail);
    return fail ? 1 : 0;
}
