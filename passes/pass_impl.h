/* passes/pass_impl.h — what a pass sees: the pass context, option accessors, statistics, and small
 * helpers shared by the pass files (reading constant operands). Internal to passes/ and tests. */
#ifndef QOPT_PASSES_PASS_IMPL_H
#define QOPT_PASSES_PASS_IMPL_H

#include "passes/pass.h"

typedef enum qo_opt_kind { QO_OPT_INT, QO_OPT_BOOL, QO_OPT_STR } qo_opt_kind;
enum { QO_PASS_MODULE = 1 << 0 };

typedef struct qo_pm_stats qo_pm_stats; /* owned by the manager */

typedef struct qo_pass_ctx {
    qo_ctx *cx;
    qo_module *m;
    int pass;             /* registry index */
    const char *name;     /* pipeline name of the pass */
    const char *const *optvals; /* option values of this pipeline element, in registry order */
    bool changed;         /* set by the pass when it modified the IR */
    qo_pm_stats *stats;   /* may be NULL */
} qo_pass_ctx;

typedef qo_status (*qo_pass_fn)(qo_pass_ctx *pc, qo_graph *g);

#define QO_PASS(id, name, flags, summary) qo_status qo_pass_##id(qo_pass_ctx *pc, qo_graph *g);
#define QO_PASS_OPT(id, key, kind, dflt, help)
#include "passes/passes.def"
#undef QO_PASS
#undef QO_PASS_OPT

/* Option values of the running pass; `key` must be declared for it in passes.def (asserted). */
int64_t qo_pass_opt_int(const qo_pass_ctx *pc, const char *key);
bool qo_pass_opt_bool(const qo_pass_ctx *pc, const char *key);
const char *qo_pass_opt_str(const qo_pass_ctx *pc, const char *key);

/* Adds delta to the named statistics counter of the running pass ("nodes-removed", ...). */
void qo_pass_stat(qo_pass_ctx *pc, const char *counter, int64_t delta);

/* ---- helpers shared by passes (passes/util.c) ---------------------------------------------- */
/* Constant data behind value v: an initializer, or the `value` tensor of a Constant node (also
 * value_float(s)/value_int(s) forms are not covered here: see qo_pass_constant_node_tensor).
 * NULL if v is not constant or is a captured outer value. */
const qo_constdata *qo_pass_val_const(const qo_graph *g, qo_val v);
/* The constant pool entry behind v, by the same rules as qo_pass_val_const; 0 if none. */
qo_cref qo_pass_val_cref(const qo_graph *g, qo_val v);
/* Reads an integer (i64/i32/i16/i8/u8 ...) constant vector into out (at most cap entries); returns
 * the number of elements, or -1 if v is not an integer constant or has more than cap entries. */
int64_t qo_pass_const_ints(const qo_graph *g, qo_val v, int64_t *out, int64_t cap);
/* Reads a float (f32/f64/f16) constant vector into out as float; -1 as above. */
int64_t qo_pass_const_floats(const qo_graph *g, qo_val v, float *out, int64_t cap);
/* The tensor constant a Constant node holds (value, value_float(s), value_int(s)); 0 if it holds
 * something else (sparse/strings kept for value_string(s) too). Creates a pool entry for the
 * scalar/list forms. */
qo_cref qo_pass_constant_node_tensor(qo_graph *g, qo_node n);
/* Marks in `captured` (indexed by atom, sized m->natoms, caller frees) every name that a graph nested
 * inside g captures; those values of g are used even without a use slot. */
bool *qo_pass_captured_names(const qo_graph *g);
/* True if v is read by a graph output slot. */
bool qo_pass_val_is_graph_output(const qo_graph *g, qo_val v);
/* "<base><suffix>", then "<base><suffix>_1", ... naming no live value of g (malloc'd; qo_free it). */
char *qo_pass_fresh_name(const qo_graph *g, const char *base, const char *suffix);
/* qo_pass_add_const named qo_pass_fresh_name(base, suffix). */
qo_val qo_pass_add_const_named(qo_graph *g, const char *base, const char *suffix, qo_elem e, int32_t rank,
                               const int64_t *dims, const void *data);
/* Removes initializer v from g when nothing reads it any more (not a graph input, not dead). */
void qo_pass_drop_unused_const(qo_graph *g, qo_val v);
/* A new owned constant of elem/rank/dims with `data` copied, added to g as an initializer named
 * `name` (may be NULL or ""). */
qo_val qo_pass_add_const(qo_graph *g, const char *name, qo_elem e, int32_t rank, const int64_t *dims,
                         const void *data);

#endif
