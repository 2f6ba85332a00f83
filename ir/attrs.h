/* ir/attrs.h — ONNX/QONNX attribute specifications and per-version op signatures, from ir/attrs.def
 * (generated from the ONNX operator schemas by tools/gen_attrs_def.py). The frontend (defaults),
 * shape inference and the verifier read the same table.
 *
 * Opsets: `opset` is the version imported by the model for the op's domain (the default-domain
 * opset for ONNX ops, the qonnx domain version for QONNX ops). opset <= 0 means "the newest version
 * the table describes" (QO_ATTRS_MAX_OPSET). */
#ifndef QOPT_IR_ATTRS_H
#define QOPT_IR_ATTRS_H

#include "ir.h"

/* Newest default-domain opset the table describes; later opsets use the newest rows. */
#define QO_ATTRS_MAX_OPSET 21

typedef struct qo_attr_spec {
    qo_op op;
    const char *name;
    qo_attr_kind kind;
    bool required;
    int16_t first;    /* first opset where the attribute exists with these properties */
    int16_t last;     /* last such opset, 0 = still (up to QO_ATTRS_MAX_OPSET and beyond) */
    const char *dflt; /* schema default as text (documentation only), NULL = none */
} qo_attr_spec;

typedef struct qo_op_sig {
    qo_op op;
    int16_t since;    /* opset where this schema version starts */
    bool deprecated;  /* the op is deprecated from `since` on (onnx.checker rejects it) */
    int16_t imin, imax; /* input count bounds; imax -1 = unbounded */
    int16_t omin, omax;
    const char *ins;  /* one letter per formal input: 'S' required, 'O' optional, 'V' variadic */
    const char *outs; /* same for outputs */
} qo_op_sig;

/* The spec of attribute `name` of op at `opset`, or NULL if the op has no such attribute then (or op
 * is QO_OP_UNKNOWN). */
const qo_attr_spec *qo_attr_spec_find(qo_op op, const char *name, int64_t opset);

/* Iterates the attribute specs of op valid at opset, in name order: pass prev = NULL for the first;
 * returns NULL after the last.
 *   for (const qo_attr_spec *s = NULL; (s = qo_attr_spec_next(op, opset, s));) ... */
const qo_attr_spec *qo_attr_spec_next(qo_op op, int64_t opset, const qo_attr_spec *prev);

/* All spec rows of op over every opset (the table slice); *count receives their number. */
const qo_attr_spec *qo_attr_specs_all(qo_op op, uint32_t *count);

/* The schema version of op in effect at opset (the row with the greatest since <= opset), or NULL if
 * the op does not exist yet at that opset or op is QO_OP_UNKNOWN. */
const qo_op_sig *qo_op_sig_at(qo_op op, int64_t opset);

/* First row (lowest since) of op's signature list, with *count rows, or NULL for QO_OP_UNKNOWN. */
const qo_op_sig *qo_op_sigs_all(qo_op op, uint32_t *count);

#endif
