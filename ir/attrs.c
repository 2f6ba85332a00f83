/* ir/attrs.c — lookups over the generated attribute/signature table ir/attrs.def. Contracts in
 * attrs.h. Both tables are emitted grouped by op in enum order, which the lookups rely on (binary
 * search for an op's slice); tests/unit/test_attrs.c checks the ordering. */
#include "attrs.h"

#include <string.h>

static const qo_attr_spec attr_table[] = {
#define QO_ATTR(e, name, kind, req, first, last, dflt) {QO_OP_##e, name, kind, req, first, last, dflt},
#include "attrs.def"
};
static const qo_op_sig sig_table[] = {
#define QO_OPVER(e, since, depr, imin, imax, omin, omax, ins, outs)                                 \
    {QO_OP_##e, since, depr, imin, imax, omin, omax, ins, outs},
#include "attrs.def"
};
#define NATTR (sizeof attr_table / sizeof attr_table[0])
#define NSIG (sizeof sig_table / sizeof sig_table[0])

/* [*lo, *hi) = rows of op in a table sorted by op; the macro keeps one body for both tables. */
#define SLICE(tab, n, op_, lo, hi)                                                                 \
    do {                                                                                           \
        size_t l_ = 0, h_ = (n);                                                                   \
        while (l_ < h_) {                                                                          \
            size_t m_ = (l_ + h_) / 2;                                                             \
            if ((int)tab[m_].op < (int)(op_)) l_ = m_ + 1;                                         \
            else h_ = m_;                                                                          \
        }                                                                                          \
        *(lo) = l_;                                                                                \
        while (l_ < (n) && tab[l_].op == (op_)) l_++;                                              \
        *(hi) = l_;                                                                                \
    } while (0)

static int64_t norm_opset(int64_t opset) { return opset <= 0 ? QO_ATTRS_MAX_OPSET : opset; }

static bool spec_valid(const qo_attr_spec *s, int64_t opset) {
    return s->first <= opset && (s->last == 0 || opset <= s->last);
}

const qo_attr_spec *qo_attr_specs_all(qo_op op, uint32_t *count) {
    size_t lo, hi;
    SLICE(attr_table, NATTR, op, &lo, &hi);
    *count = (uint32_t)(hi - lo);
    return hi > lo ? &attr_table[lo] : NULL;
}

const qo_attr_spec *qo_attr_spec_find(qo_op op, const char *name, int64_t opset) {
    uint32_t n;
    const qo_attr_spec *s = qo_attr_specs_all(op, &n);
    opset = norm_opset(opset);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0 && spec_valid(&s[i], opset)) return &s[i];
    return NULL;
}

const qo_attr_spec *qo_attr_spec_next(qo_op op, int64_t opset, const qo_attr_spec *prev) {
    uint32_t n;
    const qo_attr_spec *s = qo_attr_specs_all(op, &n);
    if (!s) return NULL;
    opset = norm_opset(opset);
    uint32_t i = prev ? (uint32_t)(prev - s) + 1 : 0;
    for (; i < n; i++)
        if (spec_valid(&s[i], opset)) return &s[i];
    return NULL;
}

const qo_op_sig *qo_op_sigs_all(qo_op op, uint32_t *count) {
    size_t lo, hi;
    SLICE(sig_table, NSIG, op, &lo, &hi);
    *count = (uint32_t)(hi - lo);
    return hi > lo ? &sig_table[lo] : NULL;
}

const qo_op_sig *qo_op_sig_at(qo_op op, int64_t opset) {
    uint32_t n;
    const qo_op_sig *s = qo_op_sigs_all(op, &n);
    const qo_op_sig *best = NULL;
    opset = norm_opset(opset);
    for (uint32_t i = 0; i < n; i++)
        if (s[i].since <= opset) best = &s[i];
    return best;
}
