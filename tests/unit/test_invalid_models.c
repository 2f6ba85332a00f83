/* tests/unit/test_invalid_models.c — models that onnx.checker rejects (tests/unit/invalid/, made by
 * gen_invalid.py, which confirms the rejection) must be rejected by qopt too: by the loader or by
 * qo_verify, with the words listed in invalid/expect.txt.
 * usage: test_invalid_models DIR   (DIR holds expect.txt and the models) */
#include "test.h"

#include "frontend/onnx_load.h"
#include "ir/ir.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_invalid_models DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/expect.txt", argv[1]);
    qo_ctx cx;
    qt_diags d;
    qt_ctx(&cx, &d);
    char *text;
    size_t len;
    if (qo_read_file(&cx, path, &text, &len) != QO_OK) {
        fprintf(stderr, "cannot read %s\n", path);
        return 2;
    }
    int ncases = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0]) continue;
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = 0;
        const char *words = tab + 1;
        snprintf(path, sizeof path, "%s/%s", argv[1], line);
        qt_current = line;
        ncases++;
        qt_ctx(&cx, &d);
        qo_module *m = NULL;
        qo_status st = qo_onnx_load(&cx, path, &m);
        if (st == QO_OK) {
            st = qo_verify(&cx, m);
            CHECK_EQ(st, QO_ERR_VERIFY);
            qo_module_free(m);
        } else {
            CHECK(st == QO_ERR_INVALID_MODEL || st == QO_ERR_UNSUPPORTED);
        }
        bool has = qt_has(&d, NULL, words);
        CHECK(has);
        if (!has) {
            fprintf(stderr, "  %s: expected \"%s\"\n", line, words);
            qt_dump(&d);
        }
    }
    qt_current = "";
    CHECK(ncases >= 10);
    qo_free(text);
    return qt_finish();
}
