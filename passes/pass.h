/* passes/pass.h — pass registry and pass manager (pipeline strings, fixpoint groups,
 * verify-each, print-after, timing). Grammar of pipeline strings (also in docs/ARCHITECTURE.md):
 *
 *   pipeline := element (',' element)*
 *   element  := NAME options?                         a registered pass
 *             | 'fixpoint' options? '(' pipeline ')'  repeat until no pass reports a change
 *   options  := '{' KEY ('=' VALUE)? (' ' KEY ('=' VALUE)?)* '}'
 *
 * e.g. "canonicalize,shape-infer,fixpoint{max=8}(const-fold,dce),verify" */
#ifndef QOPT_PASSES_PASS_H
#define QOPT_PASSES_PASS_H

#include "ir/ir.h"

#include <stdio.h>

typedef struct qo_pm_opts {
    bool verify_each;          /* run qo_verify after every pass (default on in tests) */
    bool timing;               /* print a per-pass timing table to `report` at the end */
    bool stats;                /* print per-pass statistics to `report` */
    const char *print_after;   /* comma-separated pass names; print IR to `report` after each */
    bool print_after_all;
    bool print_after_change;   /* print only when the pass changed something */
    FILE *report;              /* NULL = stderr */
} qo_pm_opts;

/* Parses `pipeline`, checks every pass name and option, runs it on m. A syntax error or unknown
 * pass/option is reported (with the column) before anything runs. opts may be NULL. */
qo_status qo_pipeline_run(qo_ctx *cx, qo_module *m, const char *pipeline, const qo_pm_opts *opts);

/* Canonical printed form of a pipeline string into buf (for reproducers and emitted files). */
qo_status qo_pipeline_canonical(qo_ctx *cx, const char *pipeline, char *buf, size_t cap);

/* Lists registered passes with their one-line summaries and options. */
void qo_pass_print_list(FILE *out);

#endif
