/* tests/unit/test.h — a tiny check harness (chibicc style). Each test binary includes it once,
 * calls CHECK* in functions, and ends main with `return qt_finish();`, which prints the closing line
 * "N passed, N failed" and returns non-zero if anything failed. Failures print file:line and the
 * expression; checking continues. Also: a diagnostics collector for qo_ctx. */
#ifndef QOPT_TESTS_UNIT_TEST_H
#define QOPT_TESTS_UNIT_TEST_H

#include "ir/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int qt_pass, qt_fail;
static const char *qt_current = "";

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) qt_pass++;                                                                       \
        else {                                                                                     \
            qt_fail++;                                                                             \
            fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__, qt_current, #cond); \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long qa_ = (long long)(a), qb_ = (long long)(b);                                      \
        if (qa_ == qb_) qt_pass++;                                                                 \
        else {                                                                                     \
            qt_fail++;                                                                             \
            fprintf(stderr, "%s:%d: [%s] CHECK_EQ failed: %s == %s (%lld vs %lld)\n", __FILE__, __LINE__, \
                    qt_current, #a, #b, qa_, qb_);                                                 \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *qa_ = (a), *qb_ = (b);                                                         \
        if (qa_ && qb_ && strcmp(qa_, qb_) == 0) qt_pass++;                                        \
        else {                                                                                     \
            qt_fail++;                                                                             \
            fprintf(stderr, "%s:%d: [%s] CHECK_STR failed: %s == %s (\"%s\" vs \"%s\")\n", __FILE__,  \
                    __LINE__, qt_current, #a, #b, qa_ ? qa_ : "(null)", qb_ ? qb_ : "(null)");     \
        }                                                                                          \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        qt_current = #fn;                                                                          \
        fn();                                                                                      \
    } while (0)

static inline int qt_finish(void) {
    printf("%d passed, %d failed\n", qt_pass, qt_fail);
    return qt_fail ? 1 : 0;
}

/* ---- diagnostics collector ---------------------------------------------------------------- */
#define QT_MAX_DIAGS 64
typedef struct qt_diags {
    int n, nerrors;
    qo_diag_kind kind[QT_MAX_DIAGS];
    char node[QT_MAX_DIAGS][128]; /* loc->node ("" if none) */
    char text[QT_MAX_DIAGS][1024]; /* "location: message" as the default handler renders it */
} qt_diags;

static inline void qt_diag_fn(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    qt_diags *d = ud;
    if (kind == QO_DIAG_ERROR) d->nerrors++;
    if (d->n >= QT_MAX_DIAGS) return;
    char where[512];
    qo_loc_format(loc, where, sizeof where);
    d->kind[d->n] = kind;
    snprintf(d->node[d->n], sizeof d->node[0], "%s", loc && loc->node ? loc->node : "");
    snprintf(d->text[d->n], sizeof d->text[0], "%s: %s", where, msg);
    d->n++;
}

/* A context whose diagnostics go to d (cleared). */
static inline void qt_ctx(qo_ctx *cx, qt_diags *d) {
    qo_ctx_init(cx);
    memset(d, 0, sizeof *d);
    cx->diag = qt_diag_fn;
    cx->diag_ud = d;
    cx->max_errors = 1000;
}

/* True if some error diagnostic has loc->node == node (NULL = any) and text containing `sub`. */
static inline bool qt_has(const qt_diags *d, const char *node, const char *sub) {
    for (int i = 0; i < d->n; i++)
        if (d->kind[i] == QO_DIAG_ERROR && (!node || strcmp(d->node[i], node) == 0) && strstr(d->text[i], sub))
            return true;
    return false;
}

/* Prints the collected diagnostics (for debugging failing checks). */
static inline void qt_dump(const qt_diags *d) {
    for (int i = 0; i < d->n; i++) fprintf(stderr, "    diag: %s\n", d->text[i]);
}

#endif
