/* tests/frontend/summary.c — see summary.h. */
#include "summary.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

uint32_t fe_crc32(uint32_t crc, const void *p, size_t n) {
    static uint32_t table[256];
    static int init;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        init = 1;
    }
    const unsigned char *s = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t crc_strings(const qo_bytes *ss, size_t n) {
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t len = ss[i].n;
        unsigned char lb[8];
        for (int k = 0; k < 8; k++) lb[k] = (unsigned char)(len >> (8 * k));
        c = fe_crc32(c, lb, 8);
        c = fe_crc32(c, ss[i].p, ss[i].n);
    }
    return c;
}

static void dims_out(const qo_module *m, const qo_typedata *td, FILE *out) {
    if (td->rank < 0) {
        fputs("[*]", out);
        return;
    }
    fputc('[', out);
    for (int32_t i = 0; i < td->rank; i++) {
        if (i) fputc(',', out);
        if (td->syms && td->syms[i]) fputs(qo_str(m, td->syms[i]), out);
        else if (td->dims[i] < 0) fputc('?', out);
        else fprintf(out, "%" PRId64, td->dims[i]);
    }
    fputc(']', out);
}

static void type_out(const qo_module *m, qo_type t, FILE *out) {
    const qo_typedata *td = qo_type_get(m, t);
    if (!td) {
        fputc('-', out);
        return;
    }
    switch (td->kind) {
    case QO_TY_TENSOR: fprintf(out, "e%d", td->elem); dims_out(m, td, out); break;
    case QO_TY_SPARSE_TENSOR: fprintf(out, "sparse e%d", td->elem); dims_out(m, td, out); break;
    case QO_TY_SEQUENCE: fputs("seq(", out); type_out(m, td->inner, out); fputc(')', out); break;
    case QO_TY_OPTIONAL: fputs("opt(", out); type_out(m, td->inner, out); fputc(')', out); break;
    case QO_TY_MAP: fprintf(out, "map(e%d,", td->elem); type_out(m, td->inner, out); fputc(')', out); break;
    default: fputc('-', out);
    }
}

static void const_out(const qo_module *m, qo_cref c, FILE *out) {
    const qo_constdata *cd = qo_const_get(m, c);
    const qo_typedata *td = qo_type_get(m, cd->type);
    fprintf(out, "e%d [", td->elem);
    for (int32_t i = 0; i < td->rank; i++) fprintf(out, "%s%" PRId64, i ? "," : "", td->dims[i]);
    uint32_t crc = td->elem == QO_STR ? crc_strings(cd->data, cd->nbytes / sizeof(qo_bytes))
                                      : fe_crc32(0, cd->data, cd->nbytes);
    fprintf(out, "] %zu %08x", cd->nbytes, crc);
}

typedef struct initline {
    const char *name;
    char *text;
} initline;

static int cmp_init(const void *a, const void *b) {
    return strcmp(((const initline *)a)->name, ((const initline *)b)->name);
}

static void graph_out(const qo_module *m, const qo_graph *g, int ind, FILE *out);

static void attr_out(const qo_module *m, const qo_graph *g, const qo_attr *a, int ind, FILE *out) {
    fprintf(out, "%*s  attr %s %s ", ind, "", qo_str(m, a->name), qo_attr_kind_name(a->kind));
    switch (a->kind) {
    case QO_ATTR_FLOAT: fprintf(out, "%.9g", (double)a->u.f); break;
    case QO_ATTR_INT: fprintf(out, "%" PRId64, a->u.i); break;
    case QO_ATTR_STRING: fprintf(out, "%zu %08x", a->u.s.n, fe_crc32(0, a->u.s.p, a->u.s.n)); break;
    case QO_ATTR_FLOATS:
        fputc('[', out);
        for (uint32_t i = 0; i < a->n; i++) fprintf(out, "%s%.9g", i ? "," : "", (double)a->u.fs[i]);
        fputc(']', out);
        break;
    case QO_ATTR_INTS:
        fputc('[', out);
        for (uint32_t i = 0; i < a->n; i++) fprintf(out, "%s%" PRId64, i ? "," : "", a->u.is[i]);
        fputc(']', out);
        break;
    case QO_ATTR_STRINGS: fprintf(out, "%u %08x", a->n, crc_strings(a->u.ss, a->n)); break;
    case QO_ATTR_TENSOR: const_out(m, a->u.t, out); break;
    case QO_ATTR_TENSORS:
    case QO_ATTR_GRAPHS: fprintf(out, "%u", a->n); break;
    default: break;
    }
    fputc('\n', out);
    if (a->kind == QO_ATTR_GRAPH) graph_out(m, m->graphs[a->u.g], ind + 2, out);
    if (a->kind == QO_ATTR_GRAPHS)
        for (uint32_t i = 0; i < a->n; i++) graph_out(m, m->graphs[a->u.gs[i]], ind + 2, out);
    (void)g;
}

static void graph_out(const qo_module *m, const qo_graph *g, int ind, FILE *out) {
    fprintf(out, "%*sgraph '%s'\n", ind, "", qo_str(m, g->name));
    for (uint32_t i = 0; i < g->ninputs; i++) {
        fprintf(out, "%*s input %s ", ind, "", qo_val_name(g, g->inputs[i]));
        type_out(m, g->vals[g->inputs[i]].type, out);
        fputc('\n', out);
    }
    /* inits: inputs with defaults + constants, sorted by name */
    initline *il = calloc(g->ninputs + g->nconsts + 1, sizeof *il);
    uint32_t ni = 0;
    for (uint32_t i = 0; i < g->ninputs + g->nconsts; i++) {
        qo_val v = i < g->ninputs ? g->inputs[i] : g->consts[i - g->ninputs];
        if (!g->vals[v].cref) continue;
        char *buf;
        size_t bn;
        FILE *f = open_memstream(&buf, &bn);
        const_out(m, g->vals[v].cref, f);
        fclose(f);
        il[ni].name = qo_val_name(g, v);
        il[ni++].text = buf;
    }
    qsort(il, ni, sizeof *il, cmp_init);
    for (uint32_t i = 0; i < ni; i++) {
        fprintf(out, "%*s init %s %s\n", ind, "", il[i].name, il[i].text);
        free(il[i].text);
    }
    free(il);
    /* value_info, sorted by name */
    initline *vl = calloc(g->nvals + 1, sizeof *vl);
    uint32_t nv = 0;
    for (qo_val v = 1; v < g->nvals; v++) {
        if (!(g->vals[v].flags & QO_VAL_INFO) || (g->vals[v].flags & QO_VAL_DEAD)) continue;
        char *buf;
        size_t bn;
        FILE *f = open_memstream(&buf, &bn);
        type_out(m, g->vals[v].type, f);
        fclose(f);
        vl[nv].name = qo_val_name(g, v);
        vl[nv++].text = buf;
    }
    qsort(vl, nv, sizeof *vl, cmp_init);
    for (uint32_t i = 0; i < nv; i++) {
        fprintf(out, "%*s vi %s %s\n", ind, "", vl[i].name, vl[i].text);
        free(vl[i].text);
    }
    free(vl);
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = &g->nodes[n];
        fprintf(out, "%*s node %s:%s '%s' in=", ind, "", qo_str(m, nd->domain), qo_str(m, nd->op_type),
                qo_str(m, nd->name));
        for (uint32_t i = 0; i < nd->nin; i++) {
            qo_val v = qo_node_input(g, n, i);
            fprintf(out, "%s%s", i ? "," : "", v ? qo_val_name(g, v) : "");
        }
        fputs(" out=", out);
        for (uint32_t i = 0; i < nd->nout; i++) {
            qo_val v = qo_node_output(g, n, i);
            fprintf(out, "%s%s", i ? "," : "", v ? qo_val_name(g, v) : "");
        }
        fputc('\n', out);
        for (uint32_t i = 0; i < nd->nattr; i++) attr_out(m, g, &g->attrs[nd->attr0 + i], ind, out);
    }
    for (uint32_t i = 0; i < g->noutputs; i++) {
        qo_val v = qo_graph_output(g, i);
        fprintf(out, "%*s output %s ", ind, "", qo_val_name(g, v));
        type_out(m, g->vals[v].type, out);
        fputc('\n', out);
    }
}

void fe_summary(const qo_module *m, FILE *out) {
    fprintf(out, "ir %" PRId64 "\n", m->ir_version);
    for (uint32_t i = 0; i < m->nopsets; i++)
        fprintf(out, "opset %s %" PRId64 "\n", qo_str(m, m->opsets[i].domain), m->opsets[i].version);
    const char *doc = qo_str(m, m->doc);
    fprintf(out, "meta '%s' '%s' '%s' %" PRId64 " functions=%u doc=%08x\n", qo_str(m, m->producer_name),
            qo_str(m, m->producer_version), qo_str(m, m->domain), m->model_version, m->nfunctions,
            fe_crc32(0, doc, strlen(doc)));
    for (uint32_t i = 0; i < m->nprops; i++)
        fprintf(out, "prop %s=%s\n", qo_str(m, m->props[i].key), qo_str(m, m->props[i].value));
    graph_out(m, qo_module_main(m), 0, out);
}
