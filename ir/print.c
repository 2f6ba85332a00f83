/* ir/print.c — the canonical .qir text form of a module (grammar: docs/qir.md).
 *
 * The printer is a pure function of the IR: the same module always prints the same bytes, and
 * qo_parse_module() of that text builds a module that prints identically. Anonymous values are
 * numbered per graph in definition order (inputs, captures, constants, node results). */
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct printer {
    const qo_module *m;
    FILE *f;
    qo_print_opts o;
} printer;

/* Per-graph numbering of anonymous values. */
typedef struct gstate {
    const qo_graph *g;
    uint32_t *num; /* value id -> number + 1, 0 = not numbered yet */
    uint32_t next;
} gstate;

static void put(printer *p, const char *s) { fputs(s, p->f); }
static void putc_(printer *p, int c) { fputc(c, p->f); }
static void indent(printer *p, int lvl) {
    for (int i = 0; i < lvl; i++) fputs("  ", p->f);
}

/* ---- lexical pieces ------------------------------------------------------------------------ */

static bool ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool ident_char(int c) { return ident_start(c) || (c >= '0' && c <= '9'); }

/* Bare-word rule for op types and attribute names: [A-Za-z_][A-Za-z0-9_]* and not reserved. */
static bool is_word(const char *s, size_t n) {
    static const char *const reserved[] = {"_", "doc", "capture", "const", "return", "loc", "graph", "module", "info", "flags"};
    if (!n || !ident_start((unsigned char)s[0])) return false;
    for (size_t i = 1; i < n; i++)
        if (!ident_char((unsigned char)s[i])) return false;
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strlen(reserved[i]) == n && memcmp(reserved[i], s, n) == 0) return false;
    return true;
}

/* Sigil-name rule for %values and @graphs: [A-Za-z_][A-Za-z0-9_.]* */
static bool is_name(const char *s, size_t n) {
    if (!n || !ident_start((unsigned char)s[0])) return false;
    for (size_t i = 1; i < n; i++)
        if (!ident_char((unsigned char)s[i]) && s[i] != '.') return false;
    return true;
}

/* Length of the well-formed UTF-8 sequence starting at s (at most n bytes), 0 if malformed. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    size_t l = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (!l || l > n) return 0;
    for (size_t i = 1; i < l; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (l == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))) return 0;
    if (l == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))) return 0;
    return l;
}

/* Quoted string: printable ASCII and well-formed UTF-8 verbatim; \" \\ \n \t; other bytes as \xHH. */
static void print_str(printer *p, const char *s, size_t n) {
    static const char hx[] = "0123456789abcdef";
    putc_(p, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t ul = c >= 0x80 ? utf8_len((const unsigned char *)s + i, n - i) : 0;
        if (ul) {
            fwrite(s + i, 1, ul, p->f);
            i += ul - 1;
        } else if (c == '"' || c == '\\') {
            putc_(p, '\\');
            putc_(p, c);
        } else if (c == '\n') {
            put(p, "\\n");
        } else if (c == '\t') {
            put(p, "\\t");
        } else if (c < 0x20 || c >= 0x7f) {
            putc_(p, '\\');
            putc_(p, 'x');
            putc_(p, hx[c >> 4]);
            putc_(p, hx[c & 15]);
        } else {
            putc_(p, c);
        }
    }
    putc_(p, '"');
}

static void print_atom_str(printer *p, qo_atom a) { print_str(p, qo_str(p->m, a), qo_strlen(p->m, a)); }

static void print_word(printer *p, qo_atom a) {
    const char *s = qo_str(p->m, a);
    size_t n = qo_strlen(p->m, a);
    if (is_word(s, n)) fwrite(s, 1, n, p->f);
    else print_str(p, s, n);
}

static void print_sym(printer *p, char sigil, qo_atom a) {
    const char *s = qo_str(p->m, a);
    size_t n = qo_strlen(p->m, a);
    putc_(p, sigil);
    if (is_name(s, n)) fwrite(s, 1, n, p->f);
    else print_str(p, s, n);
}

/* Significant digits of a decimal literal ("100.0" -> 1, "1.25e+03" -> 3). */
static int sig_digits(const char *s) {
    int first = -1, last = -1, k = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (*s != '0') {
            if (first < 0) first = k;
            last = k;
        }
        k++;
    }
    return first < 0 ? 0 : last - first + 1;
}

/* Shortest decimal that strtof() maps back to the same bits; specials spelled out. The result
 * always contains '.', 'e', 'p', "inf" or "nan" so it never reads as an integer. */
static void fmt_float(char *buf, size_t cap, float f, bool hex) {
    uint32_t b;
    memcpy(&b, &f, 4);
    if (isnan(f)) {
        if (b == 0x7fc00000u) snprintf(buf, cap, "nan");
        else if (b == 0xffc00000u) snprintf(buf, cap, "-nan");
        else snprintf(buf, cap, "nan(0x%08x)", b);
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    if (hex) {
        snprintf(buf, cap, "%a", (double)f);
        return;
    }
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, cap, "%.*g", prec, (double)f);
        float back = strtof(buf, NULL);
        uint32_t bb;
        memcpy(&bb, &back, 4);
        if (bb == b) break;
    }
    /* integral values in exponent form (100 -> "1e+02"): the plain form is as short in digits */
    if (strchr(buf, 'e') && fabsf(f) >= 1.0f && fabsf(f) < 1e16f) {
        char alt[64];
        snprintf(alt, sizeof alt, "%.1f", (double)f);
        float back = strtof(alt, NULL);
        if (memcmp(&back, &f, 4) == 0 && strlen(alt) <= strlen(buf) && sig_digits(alt) <= sig_digits(buf))
            strcpy(buf, alt);
    }
    if (!strpbrk(buf, ".e")) {
        size_t n = strlen(buf);
        if (n + 3 <= cap) memcpy(buf + n, ".0", 3);
    }
}

static void print_float(printer *p, float f) {
    char buf[64];
    fmt_float(buf, sizeof buf, f, p->o.hex_floats);
    put(p, buf);
}

static void print_i64(printer *p, int64_t v) { fprintf(p->f, "%lld", (long long)v); }

static void print_hex(printer *p, const void *data, size_t n) {
    static const char hx[] = "0123456789abcdef";
    const unsigned char *s = data;
    char buf[4096];
    size_t k = 0;
    put(p, "hex\"");
    for (size_t i = 0; i < n; i++) {
        buf[k++] = hx[s[i] >> 4];
        buf[k++] = hx[s[i] & 15];
        if (k == sizeof buf) {
            fwrite(buf, 1, k, p->f);
            k = 0;
        }
    }
    fwrite(buf, 1, k, p->f);
    putc_(p, '"');
}

/* ---- types and constants ------------------------------------------------------------------- */

static void print_type(printer *p, qo_type t);

static void print_elem(printer *p, int e) {
    if (e == QO_UNDEF) put(p, "undef");
    else if (e > 0 && e < QO_ELEM_COUNT) put(p, qo_elem_name(e));
    else fprintf(p->f, "elem%d", e);
}

/* A constant literal; the type is omitted when it equals ctx (the type given by the context). */
static void print_constant(printer *p, qo_cref c, qo_type ctx) {
    if (!c) {
        put(p, "none");
        return;
    }
    const qo_module *m = p->m;
    const qo_constdata *cd = qo_const_get(m, c);
    if (cd->type != ctx || !ctx) {
        print_type(p, cd->type);
        putc_(p, ' ');
    }
    bool is_str = qo_type_elem(m, cd->type) == QO_STR;
    if (p->o.elide_bytes && cd->nbytes > p->o.elide_bytes) {
        fprintf(p->f, "elided<%zu bytes>", cd->nbytes);
    } else if (is_str) {
        const qo_bytes *ss = cd->data;
        size_t n = cd->nbytes / sizeof(qo_bytes);
        putc_(p, '[');
        for (size_t i = 0; i < n; i++) {
            if (i) put(p, ", ");
            print_str(p, ss[i].p, ss[i].n);
        }
        putc_(p, ']');
    } else if (!p->o.inline_all && cd->storage == QO_CONST_BORROWED && cd->file && cd->nbytes > 64) {
        put(p, "file(");
        print_atom_str(p, cd->file);
        fprintf(p->f, ", offset=%llu, length=%zu)", (unsigned long long)cd->file_offset, cd->nbytes);
    } else {
        print_hex(p, cd->data, cd->nbytes);
    }
    if (cd->ext_location || cd->ext_offset || cd->ext_length) {
        put(p, " ext(");
        print_atom_str(p, cd->ext_location);
        fprintf(p->f, ", offset=%lld, length=%lld)", (long long)cd->ext_offset, (long long)cd->ext_length);
    }
}

static void print_quant(printer *p, const qo_quant *q, int elem) {
    fprintf(p->f, "!q<%c%u:", q->is_signed ? 'i' : 'u', (unsigned)q->bits);
    print_elem(p, elem);
    if (q->narrow) put(p, " narrow");
    if (q->pow2) put(p, " pow2");
    if (q->per_axis) put(p, " per_axis");
    put(p, ", ");
    print_float(p, q->scale);
    fprintf(p->f, ", %d", (int)q->zp);
    if (q->round != QO_ROUND_HALF_EVEN) {
        if (q->round < QO_ROUND_COUNT) fprintf(p->f, ", round=%s", qo_round_name((qo_round)q->round));
        else fprintf(p->f, ", round=%u", (unsigned)q->round);
    }
    if (q->per_axis || q->axis) fprintf(p->f, ", axis=%d", (int)q->axis);
    if (q->scales) {
        put(p, ", scales=");
        print_constant(p, q->scales, 0);
    }
    if (q->zps) {
        put(p, ", zps=");
        print_constant(p, q->zps, 0);
    }
    putc_(p, '>');
}

static void print_type(printer *p, qo_type t) {
    const qo_typedata *td = qo_type_get(p->m, t);
    if (!td) {
        putc_(p, '?');
        return;
    }
    switch (td->kind) {
    case QO_TY_TENSOR:
    case QO_TY_SPARSE_TENSOR:
        put(p, td->kind == QO_TY_TENSOR ? "tensor<" : "sparse<");
        if (td->rank < 0) put(p, "*x");
        for (int32_t i = 0; i < td->rank; i++) {
            if (td->dims[i] == -1) putc_(p, '?');
            else print_i64(p, td->dims[i]);
            if (td->syms && td->syms[i]) print_atom_str(p, td->syms[i]);
            putc_(p, 'x');
        }
        if (td->quant) print_quant(p, td->quant, td->elem);
        else print_elem(p, td->elem);
        putc_(p, '>');
        break;
    case QO_TY_SEQUENCE:
    case QO_TY_OPTIONAL:
        put(p, td->kind == QO_TY_SEQUENCE ? "seq<" : "opt<");
        print_type(p, td->inner);
        putc_(p, '>');
        break;
    case QO_TY_MAP:
        put(p, "map<");
        print_elem(p, td->elem);
        put(p, ", ");
        print_type(p, td->inner);
        putc_(p, '>');
        break;
    default: fprintf(p->f, "badtype<%u>", (unsigned)td->kind); break;
    }
}

/* ---- values -------------------------------------------------------------------------------- */

static void print_val(printer *p, gstate *gs, qo_val v) {
    if (!v) {
        putc_(p, '_');
        return;
    }
    const qo_value *vd = &gs->g->vals[v];
    if (vd->name) {
        print_sym(p, '%', vd->name);
        return;
    }
    if (!gs->num[v]) gs->num[v] = ++gs->next;
    fprintf(p->f, "%%%u", gs->num[v] - 1);
}

/* Numbers an anonymous value at its definition. */
static void define_val(gstate *gs, qo_val v) {
    if (v && !gs->g->vals[v].name && !gs->num[v]) gs->num[v] = ++gs->next;
}

static bool in_list(const qo_val *l, uint32_t n, qo_val v) {
    for (uint32_t i = 0; i < n; i++)
        if (l[i] == v) return true;
    return false;
}

/* Type plus the value's own annotations: `info`, `doc("...")`, `flags(N)` when the flags differ
 * from what the syntax position implies (`implied`). */
static void print_vtype(printer *p, gstate *gs, qo_val v, uint16_t implied) {
    const qo_value *vd = &gs->g->vals[v];
    print_type(p, vd->type);
    if (vd->flags & QO_VAL_INFO) put(p, " info");
    if (vd->doc) {
        put(p, " doc(");
        print_atom_str(p, vd->doc);
        putc_(p, ')');
    }
    uint16_t want = (uint16_t)(implied | (vd->flags & QO_VAL_INFO));
    if (vd->flags != want) fprintf(p->f, " flags(%u)", (unsigned)vd->flags);
}

/* ---- graphs, nodes, attributes ------------------------------------------------------------- */

static void print_graph(printer *p, const qo_graph *g, int lvl);

static void print_attr_value(printer *p, const qo_graph *g, const qo_attr *a, int lvl) {
    const qo_module *m = p->m;
    switch (a->kind) {
    case QO_ATTR_UNDEF: put(p, "undef"); break;
    case QO_ATTR_FLOAT: print_float(p, a->u.f); break;
    case QO_ATTR_INT: print_i64(p, a->u.i); break;
    case QO_ATTR_STRING: print_str(p, a->u.s.p, a->u.s.n); break;
    case QO_ATTR_TENSOR: print_constant(p, a->u.t, 0); break;
    case QO_ATTR_GRAPH:
        if (a->u.g < m->ngraphs) print_graph(p, m->graphs[a->u.g], lvl);
        else put(p, "badgraph");
        break;
    case QO_ATTR_FLOATS:
    case QO_ATTR_INTS:
    case QO_ATTR_STRINGS:
    case QO_ATTR_TENSORS:
    case QO_ATTR_GRAPHS:
        if (!a->n) {
            put(p, qo_attr_kind_name(a->kind));
            put(p, "[]");
            break;
        }
        putc_(p, '[');
        for (uint32_t i = 0; i < a->n; i++) {
            if (i) put(p, ", ");
            switch (a->kind) {
            case QO_ATTR_FLOATS: print_float(p, a->u.fs[i]); break;
            case QO_ATTR_INTS: print_i64(p, a->u.is[i]); break;
            case QO_ATTR_STRINGS: print_str(p, a->u.ss[i].p, a->u.ss[i].n); break;
            case QO_ATTR_TENSORS: print_constant(p, a->u.ts[i], 0); break;
            default:
                if (a->u.gs[i] < m->ngraphs) print_graph(p, m->graphs[a->u.gs[i]], lvl);
                else put(p, "badgraph");
                break;
            }
        }
        putc_(p, ']');
        break;
    case QO_ATTR_SPARSE_TENSOR:
    case QO_ATTR_SPARSE_TENSORS:
    case QO_ATTR_TYPE_PROTO:
    case QO_ATTR_TYPE_PROTOS:
        fprintf(p->f, "%s(%u) ", qo_attr_kind_name(a->kind), (unsigned)a->n);
        print_hex(p, a->u.raw.p, a->u.raw.n);
        break;
    default: fprintf(p->f, "badattr(%u)", (unsigned)a->kind); break;
    }
    (void)g;
}

static void print_node(printer *p, gstate *gs, qo_node n, int lvl) {
    const qo_graph *g = gs->g;
    const qo_module *m = p->m;
    const qo_nodedata *nd = &g->nodes[n];
    indent(p, lvl);
    /* results */
    for (uint32_t i = 0; i < nd->nout; i++) {
        qo_val v = g->outs[nd->out0 + i];
        define_val(gs, v);
        if (i) put(p, ", ");
        print_val(p, gs, v);
    }
    if (nd->nout) put(p, " = ");
    /* op */
    const char *dom = qo_str(m, nd->domain);
    size_t dn = qo_strlen(m, nd->domain);
    const char *ot = qo_str(m, nd->op_type);
    size_t on = qo_strlen(m, nd->op_type);
    if (!dn && is_word(ot, on)) {
        fwrite(ot, 1, on, p->f);
    } else if (!memchr(ot, '.', on) && !memchr(dom, 0, dn) && !memchr(ot, 0, on)) {
        /* "domain.op" (split at the last dot; a dotless string is an op of the default domain) */
        char *s = qo_malloc(dn + on + 2);
        memcpy(s, dom, dn);
        size_t k = dn;
        if (dn) s[k++] = '.';
        memcpy(s + k, ot, on);
        print_str(p, s, k + on);
        qo_free(s);
    } else {
        print_atom_str(p, nd->domain);
        put(p, "::");
        print_atom_str(p, nd->op_type);
    }
    /* operands */
    putc_(p, '(');
    for (uint32_t i = 0; i < nd->nin; i++) {
        if (i) put(p, ", ");
        print_val(p, gs, g->uses[nd->in0 + i].val);
    }
    putc_(p, ')');
    /* attributes */
    if (nd->nattr) {
        put(p, " {");
        for (uint32_t i = 0; i < nd->nattr; i++) {
            const qo_attr *a = &g->attrs[nd->attr0 + i];
            if (i) put(p, ", ");
            print_word(p, a->name);
            put(p, " = ");
            print_attr_value(p, g, a, lvl);
            if (a->ref_attr_name) {
                put(p, " ref(");
                print_atom_str(p, a->ref_attr_name);
                putc_(p, ')');
            }
            if (a->doc) {
                put(p, " doc(");
                print_atom_str(p, a->doc);
                putc_(p, ')');
            }
        }
        putc_(p, '}');
    }
    /* result types */
    bool first = true;
    for (uint32_t i = 0; i < nd->nout; i++) {
        qo_val v = g->outs[nd->out0 + i];
        if (!v) continue;
        put(p, first ? " : " : ", ");
        first = false;
        print_vtype(p, gs, v, 0);
    }
    if ((nd->name && !p->o.no_locs) || (nd->doc && !first)) {
        put(p, " loc(");
        print_atom_str(p, p->o.no_locs ? 0 : nd->name); /* loc("") keeps a node doc apart from a result doc */
        putc_(p, ')');
    }
    if (nd->doc) {
        put(p, " doc(");
        print_atom_str(p, nd->doc);
        putc_(p, ')');
    }
    putc_(p, '\n');
}

static void print_graph(printer *p, const qo_graph *g, int lvl) {
    gstate gs = {.g = g, .num = qo_calloc(g->nvals + 1, sizeof(uint32_t))};
    put(p, "graph ");
    print_sym(p, '@', g->name);
    putc_(p, '(');
    for (uint32_t i = 0; i < g->ninputs; i++) {
        qo_val v = g->inputs[i];
        const qo_value *vd = &g->vals[v];
        if (i) put(p, ", ");
        define_val(&gs, v);
        print_val(p, &gs, v);
        put(p, " : ");
        uint16_t implied = QO_VAL_INPUT;
        if (in_list(g->consts, g->nconsts, v)) implied |= QO_VAL_CONST;
        print_vtype(p, &gs, v, implied);
        if (vd->cref) {
            put(p, " = ");
            print_constant(p, vd->cref, vd->type);
        }
    }
    put(p, ") {\n");
    if (g->doc) {
        indent(p, lvl + 1);
        put(p, "doc(");
        print_atom_str(p, g->doc);
        put(p, ")\n");
    }
    for (uint32_t i = 0; i < g->ncaptures; i++) {
        qo_val v = g->captures[i];
        indent(p, lvl + 1);
        put(p, "capture ");
        define_val(&gs, v);
        print_val(p, &gs, v);
        put(p, " : ");
        print_vtype(p, &gs, v, QO_VAL_CAPTURE);
        putc_(p, '\n');
    }
    for (uint32_t i = 0; i < g->nconsts; i++) {
        qo_val v = g->consts[i];
        const qo_value *vd = &g->vals[v];
        indent(p, lvl + 1);
        put(p, "const ");
        if (vd->flags & QO_VAL_INPUT) { /* an input whose default was given in the header */
            print_val(p, &gs, v);
            putc_(p, '\n');
            continue;
        }
        define_val(&gs, v);
        print_val(p, &gs, v);
        put(p, " : ");
        print_vtype(p, &gs, v, QO_VAL_CONST);
        put(p, " = ");
        print_constant(p, vd->cref, vd->type);
        putc_(p, '\n');
    }
    QO_FOR_EACH_NODE(g, n) print_node(p, &gs, n, lvl + 1);
    indent(p, lvl + 1);
    put(p, "return");
    for (uint32_t i = 0; i < g->noutputs; i++) {
        put(p, i ? ", " : " ");
        print_val(p, &gs, g->uses[g->outputs[i]].val);
    }
    putc_(p, '\n');
    indent(p, lvl);
    putc_(p, '}');
    qo_free(gs.num);
}

static void print_module(printer *p) {
    const qo_module *m = p->m;
    put(p, "module {\n");
    fprintf(p->f, "  ir_version = %lld\n", (long long)m->ir_version);
#define STRFIELD(key, a)                                                                           \
    if (a) {                                                                                       \
        put(p, "  " key " = ");                                                                    \
        print_atom_str(p, a);                                                                      \
        putc_(p, '\n');                                                                            \
    }
    STRFIELD("producer_name", m->producer_name)
    STRFIELD("producer_version", m->producer_version)
    STRFIELD("domain", m->domain)
    if (m->model_version) fprintf(p->f, "  model_version = %lld\n", (long long)m->model_version);
    STRFIELD("doc", m->doc)
#undef STRFIELD
    for (uint32_t i = 0; i < m->nopsets; i++) {
        put(p, "  opset ");
        print_atom_str(p, m->opsets[i].domain);
        fprintf(p->f, " = %lld\n", (long long)m->opsets[i].version);
    }
    for (uint32_t i = 0; i < m->nprops; i++) {
        put(p, "  prop ");
        print_atom_str(p, m->props[i].key);
        put(p, " = ");
        print_atom_str(p, m->props[i].value);
        putc_(p, '\n');
    }
    for (uint32_t i = 0; i < m->nfunctions; i++) {
        put(p, "  function ");
        print_hex(p, m->functions[i].p, m->functions[i].n);
        putc_(p, '\n');
    }
    for (uint32_t i = 0; i < m->ngraphs; i++) {
        const qo_graph *g = m->graphs[i];
        if (g->parent != g->index) continue; /* bodies print inside their node's attribute */
        put(p, "  ");
        print_graph(p, g, 1);
        putc_(p, '\n');
    }
    put(p, "}\n");
}

/* Contract in ir.h: canonical text of m to `out`; QO_ERR_IO if the stream reports an error. */
qo_status qo_print_module(qo_ctx *cx, const qo_module *m, FILE *out, const qo_print_opts *opts) {
    printer p = {.m = m, .f = out};
    if (opts) p.o = *opts;
    print_module(&p);
    if (fflush(out) != 0 || ferror(out)) {
        qo_loc loc = {.node_index = -1};
        return qo_error(cx, QO_ERR_IO, &loc, "write error while printing the module");
    }
    return QO_OK;
}

/* Contract in ir.h: same text in a malloc'd string (free with free()/qo_free); *out NULL on error. */
qo_status qo_print_module_str(qo_ctx *cx, const qo_module *m, const qo_print_opts *opts, char **out) {
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return qo_error(cx, QO_ERR_NOMEM, NULL, "cannot open a memory stream for printing");
    qo_status s = qo_print_module(cx, m, f, opts);
    fclose(f);
    if (s != QO_OK) {
        free(buf);
        return s;
    }
    *out = buf;
    return QO_OK;
}
