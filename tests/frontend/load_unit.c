/* tests/frontend/load_unit.c — checks IR details of loaded models that the summary comparison does not
 * see: borrowed constants pointing at the right bytes of the file (compared with the file read by
 * stdio), external-data origin fields, captures, input defaults, op recognition, symbolic dims,
 * warnings, and qo_onnx_load_buffer. Expected values come from the model generator (make_good.py)
 * and the files' own bytes. Prints "N passed, N failed". */
#include "frontend/onnx_load.h"

#include <stdlib.h>
#include <string.h>

static unsigned npass, nfail;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (c) npass++;                                                                            \
        else {                                                                                     \
            nfail++;                                                                               \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);                                    \
        }                                                                                          \
    } while (0)

static unsigned nwarn;
static void count(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    (void)ud, (void)loc;
    if (kind == QO_DIAG_WARNING) nwarn++;
    else printf("diag: %s\n", msg);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static qo_module *load(const char *dir, const char *c) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/model.onnx", dir, c);
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = count;
    qo_module *m = NULL;
    qo_status st = qo_onnx_load(&cx, p, &m);
    CHECK(st == QO_OK && m);
    return m;
}

static qo_val find(const qo_graph *g, const char *name) { return qo_graph_find(g, name); }

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *dir = argv[1];
    char p[4096];

    /* raw_data: borrowed from the mapping, file offset points at the same bytes */
    qo_module *m = load(dir, "raw_data");
    if (m) {
        snprintf(p, sizeof p, "%s/raw_data/model.onnx", dir);
        size_t fn;
        char *file = slurp(p, &fn);
        qo_graph *g = qo_module_main(m);
        qo_val v = find(g, "r_f32");
        CHECK(v && (g->vals[v].flags & QO_VAL_CONST));
        const qo_constdata *cd = qo_const_get(m, g->vals[v].cref);
        CHECK(cd->storage == QO_CONST_BORROWED);
        CHECK(cd->nbytes == 16);
        CHECK(strcmp(qo_str(m, cd->file), p) == 0);
        CHECK(file && cd->file_offset + 16 <= fn && memcmp(file + cd->file_offset, cd->data, 16) == 0);
        float f3;
        memcpy(&f3, (const char *)cd->data + 12, 4);
        CHECK(f3 == 3.0f);
        CHECK(strcmp(qo_str(m, m->source_path), p) == 0);
        /* the same model from a buffer: loads, constants no longer name a file */
        qo_ctx cx;
        qo_ctx_init(&cx);
        qo_module *mb = NULL;
        CHECK(qo_onnx_load_buffer(&cx, "buf.onnx", file, fn, NULL, &mb) == QO_OK && mb);
        if (mb) {
            memset(file, 0, fn); /* the module must not depend on the caller's buffer */
            qo_graph *gb = qo_module_main(mb);
            qo_val vb = find(gb, "r_f32");
            const qo_constdata *cb = qo_const_get(mb, gb->vals[vb].cref);
            CHECK(cb->file == 0);
            memcpy(&f3, (const char *)cb->data + 12, 4);
            CHECK(f3 == 3.0f);
            qo_module_free(mb);
        }
        free(file);
        qo_module_free(m);
    }

    /* external data: origin recorded, bytes borrowed from the side file */
    m = load(dir, "external_data");
    if (m) {
        qo_graph *g = qo_module_main(m);
        const qo_constdata *ea = qo_const_get(m, g->vals[find(g, "ea")].cref);
        CHECK(strcmp(qo_str(m, ea->ext_location), "weights.bin") == 0);
        CHECK(ea->ext_offset == 16 && ea->ext_length == 24 && ea->file_offset == 16);
        CHECK(strstr(qo_str(m, ea->file), "external_data/weights.bin") != NULL);
        float f5;
        memcpy(&f5, (const char *)ea->data + 20, 4);
        CHECK(f5 == 5.0f);
        const qo_constdata *eb = qo_const_get(m, g->vals[find(g, "eb")].cref);
        int64_t b3;
        memcpy(&b3, (const char *)eb->data + 24, 8);
        CHECK(b3 == 9);
        const qo_constdata *ec = qo_const_get(m, g->vals[find(g, "ec")].cref);
        CHECK(ec->ext_offset == -1 && ec->ext_length == -1 && ec->nbytes == 8);
        qo_module_free(m);
    }
    /* external data through the buffer API: refused without base_dir, resolved with it */
    snprintf(p, sizeof p, "%s/external_data/model.onnx", dir);
    size_t en;
    char *eb = slurp(p, &en);
    if (eb) {
        qo_ctx cx;
        qo_ctx_init(&cx);
        cx.diag = count;
        qo_module *mb = (qo_module *)eb;
        CHECK(qo_onnx_load_buffer(&cx, "ext.onnx", eb, en, NULL, &mb) == QO_ERR_UNSUPPORTED && !mb);
        snprintf(p, sizeof p, "%s/external_data", dir);
        CHECK(qo_onnx_load_buffer(&cx, "ext.onnx", eb, en, p, &mb) == QO_OK && mb);
        qo_module_free(mb);
        free(eb);
    }

    /* misc: input defaults, ops, symbolic dims, metadata */
    m = load(dir, "misc");
    if (m) {
        qo_graph *g = qo_module_main(m);
        qo_val w = find(g, "W");
        CHECK(w && (g->vals[w].flags & QO_VAL_INPUT) && !(g->vals[w].flags & QO_VAL_CONST) && g->vals[w].cref);
        CHECK(g->ninputs == 3 && g->nconsts == 3); /* scale, zp, bw; W and hi are input defaults */
        const qo_typedata *xt = qo_type_get(m, g->vals[find(g, "x")].type);
        CHECK(xt && xt->rank == 2 && xt->syms && strcmp(qo_str(m, xt->syms[0]), "batch") == 0 && xt->dims[1] == 4);
        int nq = 0, nu = 0;
        QO_FOR_EACH_NODE(g, n) {
            if (g->nodes[n].op == QO_OP_QONNX_QUANT) nq++;
            if (g->nodes[n].op == QO_OP_UNKNOWN && !strcmp(qo_node_domain(g, n), "com.example") &&
                !strcmp(qo_node_op_type(g, n), "MyOp"))
                nu++;
            if (!strcmp(qo_node_op_type(g, n), "Clip")) CHECK(qo_node_input(g, n, 1) == 0 && g->nodes[n].nin == 3);
            if (!strcmp(qo_node_op_type(g, n), "Dropout")) CHECK(g->nodes[n].nout == 2 && qo_node_output(g, n, 1) == 0);
        }
        CHECK(nq == 1 && nu == 1);
        CHECK(m->model_version == 42 && m->nprops == 2 && !strcmp(qo_str(m, m->producer_name), "make_good"));
        CHECK(qo_module_opset(m, "") == 13 && qo_module_opset(m, "com.example") == 2);
        qo_val h = find(g, "h");
        CHECK(h && (g->vals[h].flags & QO_VAL_INFO));
        qo_module_free(m);
    }

    /* subgraphs: captures of outer names, nested */
    m = load(dir, "subgraphs");
    if (m) {
        CHECK(m->ngraphs == 6);
        int found_then = 0, found_it = 0, found_body = 0;
        for (uint32_t i = 1; i < m->ngraphs; i++) {
            qo_graph *sg = m->graphs[i];
            const char *nm = qo_str(m, sg->name);
            if (!strcmp(nm, "then")) {
                found_then = sg->ncaptures == 1 && !strcmp(qo_val_name(sg, sg->captures[0]), "x") &&
                             sg->nconsts == 1 && sg->parent == 0;
            }
            if (!strcmp(nm, "it")) {
                found_it = sg->ncaptures == 1 && !strcmp(qo_val_name(sg, sg->captures[0]), "lv") &&
                           !strcmp(qo_str(m, m->graphs[sg->parent]->name), "body");
            }
            if (!strcmp(nm, "body")) found_body = sg->ncaptures == 2; /* x, cond */
        }
        CHECK(found_then && found_it && found_body);
        qo_module_free(m);
    }

    /* Constant nodes become constants, sparse_value stays a node */
    m = load(dir, "constant_nodes");
    if (m) {
        qo_graph *g = qo_module_main(m);
        CHECK(g->nconsts == 7);
        qo_val cf = find(g, "c_f");
        float f;
        memcpy(&f, qo_const_get(m, g->vals[cf].cref)->data, 4);
        CHECK((g->vals[cf].flags & QO_VAL_CONST) && f == 1.25f);
        int nconst_nodes = 0;
        QO_FOR_EACH_NODE(g, n) if (g->nodes[n].op == QO_OP_CONSTANT) nconst_nodes++;
        CHECK(nconst_nodes == 1);
        qo_module_free(m);
    }

    /* opset 6 loads with a warning */
    nwarn = 0;
    m = load(dir, "old_opset");
    CHECK(m && nwarn == 1);
    qo_module_free(m);

    printf("%u passed, %u failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
