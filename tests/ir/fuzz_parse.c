/* tests/ir/fuzz_parse.c — libFuzzer target for qo_parse_module.
 *
 * Any input must parse or fail cleanly (no crash, no leak, no sanitizer report). When it parses,
 * the module must print, the printed text must parse again, and printing that must give the same
 * bytes (the round-trip property on arbitrary accepted inputs). Diagnostics are swallowed.
 * Built only with -Dfuzz=true and clang (tests/ir/meson.build); the seed corpus in
 * tests/ir/fuzz_corpus/ is replayed in the normal suite. */
#include "ir/ir.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void drop(void *ud, qo_diag_kind k, const qo_loc *loc, const char *msg) {
    (void)ud, (void)k, (void)loc, (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = drop;
    qo_module *m = NULL;
    /* the parser takes (text, len) and must not read past len: give it an unterminated copy */
    char *text = malloc(size ? size : 1);
    if (size) memcpy(text, data, size);
    if (qo_parse_module(&cx, "fuzz.qir", text, size, &m) == QO_OK) {
        char *t1 = NULL, *t2 = NULL;
        qo_module *m2 = NULL;
        if (qo_print_module_str(&cx, m, NULL, &t1) != QO_OK) abort();
        if (qo_parse_module(&cx, "fuzz.qir", t1, strlen(t1), &m2) != QO_OK) abort();
        if (qo_print_module_str(&cx, m2, NULL, &t2) != QO_OK) abort();
        if (strcmp(t1, t2) != 0) abort();
        free(t1);
        free(t2);
        qo_module_free(m2);
    } else if (m) {
        abort(); /* *out must be NULL on failure */
    }
    qo_module_free(m);
    free(text);
    return 0;
}
