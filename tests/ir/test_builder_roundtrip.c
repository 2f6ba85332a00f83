/* tests/ir/test_builder_roundtrip.c — a module built with the ir.h API that uses every field the
 * text form carries (metadata, opsets, props, function blobs, symbolic dims, quantized types
 * per-tensor and per-axis, sparse/seq/opt/map types, every attribute kind, string constants, u4
 * packing, file-backed and external-data constants, input defaults, captures, nested subgraphs,
 * generic and reserved-name ops, omitted inputs/outputs, docs, flags, quoted names) goes through
 * print -> parse -> print. Checks: identical text, structurally equal module (irdiff.h, written
 * independently of the printer), inline_all/hex_floats variants, node line/col against the text,
 * and that elided text is refused. */
#include "irdiff.h"

#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned npass, nfail;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (c) npass++;                                                                            \
        else {                                                                                     \
            nfail++;                                                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);                           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static float fbits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static qo_cref f32_const(qo_module *m, int64_t n, const float *v) {
    return qo_const_new(m, qo_type_tensor(m, QO_F32, 1, &n, NULL), v, sizeof(float) * (size_t)n, true);
}

static char data_path[256];

static qo_module *build(void) {
    qo_module *m = qo_module_new();
    m->ir_version = 9;
    m->producer_name = qo_intern(m, "qopt-test");
    m->producer_version = qo_intern(m, "0.1 \"beta\"");
    m->domain = qo_intern(m, "org.example");
    m->model_version = 42;
    m->doc = qo_intern(m, "line1\nline2\t\\ \x01 caf\xc3\xa9");
    qo_module_set_opset(m, "", 17);
    qo_module_set_opset(m, "com.example", 1);
    qo_module_set_opset(m, "qonnx.custom_op.general", 1);
    QO_GROW(m->props, m->capprops, 2);
    m->props[0] = (qo_prop){qo_intern(m, "author"), qo_intern(m, "me")};
    m->props[1] = (qo_prop){qo_intern(m, "empty"), 0};
    m->nprops = 2;
    QO_GROW(m->functions, m->capfunctions, 1);
    m->functions[0] = (qo_bytes){qo_arena_memdup(&m->arena, "\x0a\x03\x00\xffxyz", 7), 7};
    m->nfunctions = 1;

    qo_graph *g = qo_graph_new(m, NULL, 0, "main graph");
    g->doc = qo_intern(m, "the main graph");

    /* types */
    int64_t d4[4] = {-1, 3, -1, 8};
    qo_atom s4[4] = {qo_intern(m, "batch"), 0, qo_intern(m, "h x"), 0};
    qo_type tx = qo_type_tensor(m, QO_F32, 4, d4, s4);
    int64_t d2[2] = {8, 3};
    qo_type t83 = qo_type_tensor(m, QO_F32, 2, d2, NULL);
    int64_t d1 = 8, d3 = 3, d5 = 5;
    qo_type t8 = qo_type_tensor(m, QO_F32, 1, &d1, NULL);
    qo_type ti64s = qo_type_tensor(m, QO_I64, 0, NULL, NULL);
    qo_type tunk = qo_type_tensor(m, QO_F32, -1, NULL, NULL);

    /* per-tensor and per-axis quantized types */
    qo_quant q1 = {.bits = 8, .is_signed = 1, .narrow = 1, .round = QO_ROUND_FLOOR, .scale = 0.0125f, .zp = -3};
    qo_type tq1 = qo_type_with_quant(m, t83, &q1);
    float sc[8] = {0.5f, 0.25f, 1e-3f, 3.0f, 1e-40f, 0.1f, 7.0f, 1.0f};
    int32_t zps[8] = {0, 1, -1, 2, 0, 0, 127, -128};
    int64_t d8 = 8;
    qo_cref scales = f32_const(m, 8, sc);
    qo_cref zpc = qo_const_new(m, qo_type_tensor(m, QO_I32, 1, &d8, NULL), zps, sizeof zps, true);
    qo_quant q2 = {.bits = 4, .is_signed = 0, .pow2 = 1, .per_axis = 1, .axis = 0, .round = QO_ROUND_DPU,
                   .scales = scales, .zps = zpc};
    qo_type tq2 = qo_type_with_quant(m, t83, &q2);
    qo_quant q3 = {.bits = 3, .is_signed = 1, .scale = 2.0f, .axis = -1}; /* axis without per_axis */
    qo_type tq3 = qo_type_with_quant(m, t8, &q3);

    /* inputs: plain with info+doc, one with a default that is also an initializer, one with a
     * default that is not */
    qo_val x = qo_graph_add_input(g, "x", tx);
    g->vals[x].flags |= QO_VAL_INFO;
    g->vals[x].doc = qo_intern(m, "input \"x\"");
    float dflt[3] = {1, 2, 3};
    qo_type t3 = qo_type_tensor(m, QO_F32, 1, &d3, NULL);
    qo_val bias = qo_graph_add_input(g, "bias:0", t3);
    g->vals[bias].cref = qo_const_new(m, t3, dflt, sizeof dflt, true);
    qo_val k = qo_graph_add_input(g, "12", ti64s); /* numeric-looking name: must be quoted */
    int64_t kv = 7;
    g->vals[k].cref = qo_const_new(m, ti64s, &kv, 8, true);

    /* constants */
    float w[24];
    for (int i = 0; i < 24; i++) w[i] = (float)i * 0.5f - 3.0f;
    qo_val vw = qo_graph_add_const(g, "w", qo_const_new(m, t83, w, sizeof w, true));
    g->vals[vw].type = tq1; /* value typed with quantization, data plain f32 */
    QO_GROW(g->consts, g->capconsts, g->nconsts + 1); /* the defaulted input is also an initializer */
    g->consts[g->nconsts++] = bias;
    g->vals[bias].flags |= QO_VAL_CONST;
    qo_bytes strs[3] = {{"a", 1}, {"with \"quote\"\n", 13}, {"nul\0byte", 8}};
    qo_type tstr = qo_type_tensor(m, QO_STR, 1, &d3, NULL);
    qo_val vs = qo_graph_add_const(g, "", qo_const_new(m, tstr, strs, sizeof strs, true)); /* anonymous */
    unsigned char u4[3] = {0x21, 0x43, 0x05};
    qo_type tu4 = qo_type_tensor(m, QO_U4, 1, &d5, NULL);
    qo_val vu4 = qo_graph_add_const(g, "u4", qo_const_new(m, tu4, u4, 3, true));
    uint16_t h[3] = {0x3c00, 0x8000, 0x7e01};
    qo_val vh = qo_graph_add_const(g, "half", qo_const_new(m, qo_type_tensor(m, QO_F16, 1, &d3, NULL), h, 6, true));
    qo_cref ce = f32_const(m, 3, dflt);
    qo_constdata *ced = qo_const_get_mut(m, ce);
    ced->ext_location = qo_intern(m, "weights.bin");
    ced->ext_offset = 4096;
    ced->ext_length = 12;
    qo_val vext = qo_graph_add_const(g, "ext", ce);
    g->vals[vext].doc = qo_intern(m, "from external data");

    /* a file-backed (borrowed) constant of 96 bytes at offset 32 of a data file */
    int fd = open(data_path, O_RDONLY);
    void *mp = mmap(NULL, 256, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    qo_module_add_mapping(m, mp, 256);
    int64_t d24 = 24;
    qo_cref cf = qo_const_new(m, qo_type_tensor(m, QO_F32, 1, &d24, NULL), (char *)mp + 32, 96, false);
    qo_const_get_mut(m, cf)->file = qo_intern(m, data_path);
    qo_const_get_mut(m, cf)->file_offset = 32;
    qo_val vfile = qo_graph_add_const(g, "filew", cf);

    /* nodes */
    qo_val cin[3] = {x, vw, 0};
    qo_node conv = qo_node_new(g, QO_OP_CONV, NULL, NULL, 3, cin, 1);
    qo_val y = qo_node_output(g, conv, 0);
    qo_val_set_name(g, y, "y");
    g->vals[y].type = tunk;
    g->vals[y].flags |= QO_VAL_INFO;
    qo_node_set_name(g, conv, "conv \"1\"");
    g->nodes[conv].doc = qo_intern(m, "a convolution");
    int64_t pads[4] = {1, 1, 1, 1};
    qo_node_set_attr_ints(g, conv, "pads", pads, 4);
    qo_node_set_attr_int(g, conv, "group", -9223372036854775807ll - 1);
    qo_node_set_attr_string(g, conv, "auto_pad", "NOTSET", 6);

    /* generic op in a custom domain with an omitted output and every attribute kind */
    qo_val gin[4] = {y, 0, vs, vu4};
    qo_node foo = qo_node_new(g, QO_OP_UNKNOWN, "com.example", "Foo", 4, gin, 3);
    qo_node_drop_output(g, foo, 1);
    qo_val f0 = qo_node_output(g, foo, 0), f2 = qo_node_output(g, foo, 2);
    g->vals[f0].type = tq2;
    g->vals[f2].type = qo_type_sparse(m, QO_F32, 2, d2, NULL);
    g->vals[f2].doc = qo_intern(m, "sparse out");
    g->vals[f2].flags |= QO_VAL_CONST; /* a flag the syntax position does not imply */
    float specials[] = {0.0f, fbits(0x80000000), fbits(1), fbits(0x7f7fffff), INFINITY, -INFINITY,
                        fbits(0x7fc00000), fbits(0xffc00000), fbits(0x7fc00001), fbits(0xff800123), 0.1f, 1e10f, 100.0f};
    int nsp = (int)(sizeof specials / sizeof *specials);
    qo_attr a = {0};
    a.name = qo_intern(m, "fs");
    a.kind = QO_ATTR_FLOATS;
    a.n = (uint32_t)nsp;
    a.u.fs = specials;
    qo_node_set_attr(g, foo, &a);
    for (int i = 0; i < nsp; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "f%02d", i);
        qo_node_set_attr_float(g, foo, nm, specials[i]);
    }
    memset(&a, 0, sizeof a);
    a.name = qo_intern(m, "empty_ints");
    a.kind = QO_ATTR_INTS;
    a.u.is = NULL;
    qo_node_set_attr(g, foo, &a);
    qo_bytes ss[2] = {{"", 0}, {"x\\y\x7f", 4}};
    a = (qo_attr){.name = qo_intern(m, "my attr"), .kind = QO_ATTR_STRINGS, .n = 2};
    a.u.ss = ss;
    a.doc = qo_intern(m, "attr doc");
    qo_node_set_attr(g, foo, &a);
    a = (qo_attr){.name = qo_intern(m, "t"), .kind = QO_ATTR_TENSOR};
    a.u.t = f32_const(m, 3, dflt);
    qo_node_set_attr(g, foo, &a);
    qo_cref tl[2] = {qo_const_new(m, tstr, strs, sizeof strs, true), cf};
    a = (qo_attr){.name = qo_intern(m, "ts"), .kind = QO_ATTR_TENSORS, .n = 2};
    a.u.ts = tl;
    qo_node_set_attr(g, foo, &a);
    a = (qo_attr){.name = qo_intern(m, "ts0"), .kind = QO_ATTR_TENSORS, .n = 0};
    qo_node_set_attr(g, foo, &a);
    a = (qo_attr){.name = qo_intern(m, "sp"), .kind = QO_ATTR_SPARSE_TENSOR, .n = 0};
    a.u.raw = (qo_bytes){"\x0a\x02\x08\x01", 4};
    qo_node_set_attr(g, foo, &a);
    a = (qo_attr){.name = qo_intern(m, "tps"), .kind = QO_ATTR_TYPE_PROTOS, .n = 2};
    a.u.raw = (qo_bytes){"\x0a\x00\x0a\x00", 4};
    qo_node_set_attr(g, foo, &a);
    a = (qo_attr){.name = qo_intern(m, "u"), .kind = QO_ATTR_UNDEF};
    qo_node_set_attr(g, foo, &a);
    a = (qo_attr){.name = qo_intern(m, "alpha"), .kind = QO_ATTR_FLOAT, .ref_attr_name = qo_intern(m, "outer_alpha")};
    qo_node_set_attr(g, foo, &a);

    /* reserved op name, dotted op type, op in "ai.onnx", zero-output node, QONNX op */
    qo_val rin[1] = {f0};
    qo_node rn = qo_node_new(g, QO_OP_UNKNOWN, "", "return", 1, rin, 1);
    g->vals[qo_node_output(g, rn, 0)].type = qo_type_map(m, QO_I64, t8);
    qo_node dn = qo_node_new(g, QO_OP_UNKNOWN, "x.y", "Foo.Bar", 0, NULL, 1);
    g->vals[qo_node_output(g, dn, 0)].type = qo_type_optional(m, qo_type_sequence(m, tunk));
    qo_val relin[1] = {vh};
    qo_node relu = qo_node_new(g, QO_OP_RELU, "ai.onnx", "Relu", 1, relin, 1);
    qo_val rl = qo_node_output(g, relu, 0);
    qo_node_new(g, QO_OP_UNKNOWN, "com.example", "Sink", 2, (qo_val[]){rl, vfile}, 0);
    qo_val qin[4] = {vext, vext, vext, vext};
    qo_node qn = qo_node_new(g, QO_OP_QONNX_QUANT, NULL, NULL, 4, qin, 1);
    g->vals[qo_node_output(g, qn, 0)].type = tq3;
    qo_node_set_attr_string(g, qn, "rounding_mode", "ROUND", 5);

    /* If with two bodies capturing outer values; the then-body nests a Loop with its own body */
    qo_val cond_in[1] = {k};
    qo_node ifn = qo_node_new(g, QO_OP_IF, NULL, NULL, 1, cond_in, 1);
    qo_val ifo = qo_node_output(g, ifn, 0);
    qo_val_set_name(g, ifo, "if_out");
    qo_graph *tb = qo_graph_new(m, g, ifn, "then");
    qo_val cy = qo_graph_add_capture(tb, "y", tunk);
    tb->vals[cy].flags |= QO_VAL_INFO;
    qo_node lp = qo_node_new(tb, QO_OP_LOOP, NULL, NULL, 3, (qo_val[]){0, 0, cy}, 1);
    qo_graph *lb = qo_graph_new(m, tb, lp, "");
    qo_val it = qo_graph_add_input(lb, "i", ti64s);
    qo_val cnd = qo_graph_add_input(lb, "", qo_type_tensor(m, QO_BOOL, 0, NULL, NULL));
    qo_val car = qo_graph_add_input(lb, "", tunk);
    qo_val cw = qo_graph_add_capture(lb, "w", tq1);
    qo_node ln = qo_node_new(lb, QO_OP_ADD, NULL, NULL, 2, (qo_val[]){car, cw}, 1);
    qo_graph_add_output(lb, cnd);
    qo_graph_add_output(lb, qo_node_output(lb, ln, 0));
    (void)it;
    a = (qo_attr){.name = qo_intern(m, "body"), .kind = QO_ATTR_GRAPH, .u.g = lb->index};
    qo_node_set_attr(tb, lp, &a);
    qo_graph_add_output(tb, qo_node_output(tb, lp, 0));
    qo_graph *eb = qo_graph_new(m, g, ifn, "else");
    eb->doc = qo_intern(m, "no outputs");
    a = (qo_attr){.name = qo_intern(m, "then_branch"), .kind = QO_ATTR_GRAPH, .u.g = tb->index};
    qo_node_set_attr(g, ifn, &a);
    a = (qo_attr){.name = qo_intern(m, "else_branch"), .kind = QO_ATTR_GRAPH, .u.g = eb->index};
    qo_node_set_attr(g, ifn, &a);
    /* a GRAPHS attribute with two bodies */
    qo_node gs = qo_node_new(g, QO_OP_UNKNOWN, "com.example", "Multi", 0, NULL, 0);
    qo_graph *b1 = qo_graph_new(m, g, gs, "b1");
    qo_graph *b2 = qo_graph_new(m, g, gs, "b2");
    qo_graph_add_output(b1, qo_graph_add_capture(b1, "if_out", 0));
    uint32_t gl[2] = {b1->index, b2->index};
    a = (qo_attr){.name = qo_intern(m, "branches"), .kind = QO_ATTR_GRAPHS, .n = 2};
    a.u.gs = gl;
    qo_node_set_attr(g, gs, &a);

    qo_graph_add_output(g, y);
    qo_graph_add_output(g, ifo);
    qo_graph_add_output(g, 0);

    /* a second top-level graph */
    qo_graph *g2 = qo_graph_new(m, NULL, 0, "aux");
    qo_val ax = qo_graph_add_input(g2, "", 0);
    qo_graph_add_output(g2, ax);
    return m;
}

static char *print(qo_ctx *cx, const qo_module *m, const qo_print_opts *o) {
    char *s = NULL;
    qo_status st = qo_print_module_str(cx, m, o, &s);
    CHECK(st == QO_OK, "print failed");
    return s;
}

static unsigned errs_seen;
static char first_err[1024];
static void collect(void *ud, qo_diag_kind k, const qo_loc *loc, const char *msg) {
    (void)ud;
    (void)loc;
    if (k == QO_DIAG_ERROR && !errs_seen++) snprintf(first_err, sizeof first_err, "%s", msg);
}

int main(void) {
    snprintf(data_path, sizeof data_path, "/tmp/qopt-ir-test-%d.bin", (int)getpid());
    FILE *df = fopen(data_path, "wb");
    for (int i = 0; i < 256; i++) fputc(i * 7 + 1, df);
    fclose(df);

    qo_ctx cx;
    qo_ctx_init(&cx);
    qo_module *m = build();
    char *t1 = print(&cx, m, NULL);
    if (getenv("QIR_DUMP")) fputs(t1, stdout);
    CHECK(strstr(t1, "file(\"") != NULL, "file-backed constant should print as file(...)");
    CHECK(strstr(t1, "%\"12\"") != NULL, "numeric name must be quoted");
    CHECK(strstr(t1, "tensor<?\"batch\"x3x?\"h x\"x8xf32>") != NULL, "symbolic dims");
    CHECK(strstr(t1, "\"com.example.Foo\"(") != NULL, "generic op form");
    CHECK(strstr(t1, "\"x.y\"::\"Foo.Bar\"()") != NULL, "dotted op type form");
    CHECK(strstr(t1, "nan(0x7fc00001)") != NULL, "NaN payload");
    CHECK(strstr(t1, "0.0125") != NULL, "shortest float");

    qo_module *m2 = NULL;
    qo_status st = qo_parse_module(&cx, "built.qir", t1, strlen(t1), &m2);
    CHECK(st == QO_OK && m2, "parse of printed module failed");
    if (!m2) {
        fputs(t1, stderr);
        return 1;
    }
    char *t2 = print(&cx, m2, NULL);
    CHECK(strcmp(t1, t2) == 0, "print(parse(print)) differs:\n%s\n----\n%s", t1, t2);
    irdiff d = {.check_storage = true};
    CHECK(module_eq(&d, m, m2), "structure differs: %s", d.why);

    /* node line/col: the Conv statement starts at the '%' of "%y = Conv" */
    const char *at = strstr(t1, "%y = Conv");
    unsigned line = 1, col = 1;
    for (const char *s = t1; s < at; s++) {
        if (*s == '\n') line++, col = 1;
        else col++;
    }
    qo_graph *g2 = qo_module_main(m2);
    qo_node c2 = g2->first;
    CHECK(g2->nodes[c2].line == line && g2->nodes[c2].col == col, "conv at %u:%u, recorded %u:%u", line, col,
          g2->nodes[c2].line, g2->nodes[c2].col);
    CHECK(g2->nodes[c2].op == QO_OP_CONV, "op looked up");
    qo_loc l = qo_node_loc(g2, c2);
    CHECK(l.file && strcmp(l.file, "built.qir") == 0, "source path");

    /* inline_all and hex_floats: same structure, stable text */
    qo_print_opts vars[] = {{.inline_all = true}, {.hex_floats = true}, {.inline_all = true, .hex_floats = true}};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        char *ti = print(&cx, m, &vars[i]);
        qo_module *mi = NULL;
        CHECK(qo_parse_module(&cx, "v.qir", ti, strlen(ti), &mi) == QO_OK, "variant %zu parse", i);
        if (mi) {
            irdiff di = {0};
            CHECK(module_eq(&di, m, mi), "variant %zu structure: %s", i, di.why);
            char *tj = print(&cx, mi, &vars[i]);
            CHECK(strcmp(ti, tj) == 0, "variant %zu reprint differs", i);
            free(tj);
        }
        if (vars[i].inline_all) CHECK(!strstr(ti, "file("), "inline_all prints no file(...)");
        if (vars[i].hex_floats) CHECK(strstr(ti, "0x1.99999ap-4") != NULL, "hex float for 0.1");
        qo_module_free(mi);
        free(ti);
    }

    /* elided text is refused with a clear message */
    qo_print_opts el = {.elide_bytes = 16};
    char *te = print(&cx, m, &el);
    CHECK(strstr(te, "elided<96 bytes>") != NULL, "elided form");
    qo_ctx ecx;
    qo_ctx_init(&ecx);
    ecx.diag = collect;
    qo_module *me = (qo_module *)1;
    CHECK(qo_parse_module(&ecx, "e.qir", te, strlen(te), &me) == QO_ERR_PARSE && me == NULL, "elided must fail");
    CHECK(strstr(first_err, "elided") != NULL, "message mentions elided: %s", first_err);
    free(te);

    /* no_locs drops node names but still parses */
    qo_print_opts nl = {.no_locs = true};
    char *tn = print(&cx, m, &nl);
    qo_module *mn = NULL;
    CHECK(!strstr(tn, "loc(\"conv") && qo_parse_module(&cx, "n.qir", tn, strlen(tn), &mn) == QO_OK, "no_locs");
    qo_module_free(mn);
    free(tn);

    /* the file-backed constant is borrowed again after parsing, from the same file region */
    qo_val fw = qo_graph_find(g2, "filew");
    const qo_constdata *fcd = qo_const_get(m2, g2->vals[fw].cref);
    CHECK(fcd->storage == QO_CONST_BORROWED && fcd->file_offset == 32 && fcd->nbytes == 96 &&
              ((const unsigned char *)fcd->data)[0] == (unsigned char)(32 * 7 + 1),
          "file constant re-mapped");

    qo_module_free(m);
    qo_module_free(m2);
    free(t1);
    free(t2);
    unlink(data_path);
    printf("%u passed, %u failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
