/* tests/writer/build_models.c — builds modules through the ir.h builder API and writes them with
 * qo_onnx_write into DIR (argv[1]); tests/writer/check_built.py then checks the files with
 * python3-onnx (checker + exact contents). Also checks the writer's error paths here: unwritable
 * directory, duplicate names, constant of unknown type, a write failing half-way (no output left,
 * an existing destination untouched). Exit status 0 when every error-path check passed. */
#include "backends/onnx/onnx_write.h"
#include "onnx.pb-c.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char last_msg[4096];
static void collect(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    (void)ud;
    char l[1024];
    qo_loc_format(loc, l, sizeof l);
    if (kind == QO_DIAG_ERROR) snprintf(last_msg, sizeof last_msg, "%s: error: %s", l, msg);
}

static int failures;
#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            failures++;                                                                            \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);                           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

static qo_type f32(qo_module *m, int32_t rank, const int64_t *dims) { return qo_type_tensor(m, QO_F32, rank, dims, NULL); }

/* Serialized helper messages carried opaque by SPARSE_TENSOR / TYPE_PROTO attributes. */
static qo_bytes pack_msg(qo_module *m, const ProtobufCMessage *msg) {
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *p = qo_arena_alloc(&m->arena, n + 1);
    protobuf_c_message_pack(msg, p);
    return (qo_bytes){(const char *)p, n};
}

static qo_bytes sparse_bytes(qo_module *m) {
    float vals[2] = {1.5f, -2.0f};
    int64_t idx[2] = {1, 3};
    int64_t vd[1] = {2}, sd[1] = {5};
    Onnx__TensorProto v = ONNX__TENSOR_PROTO__INIT, i = ONNX__TENSOR_PROTO__INIT;
    v.has_data_type = 1, v.data_type = 1, v.n_dims = 1, v.dims = vd;
    v.has_raw_data = 1, v.raw_data.len = sizeof vals, v.raw_data.data = (uint8_t *)vals;
    i.has_data_type = 1, i.data_type = 7, i.n_dims = 1, i.dims = vd;
    i.n_int64_data = 2, i.int64_data = idx;
    Onnx__SparseTensorProto s = ONNX__SPARSE_TENSOR_PROTO__INIT;
    s.values = &v, s.indices = &i, s.n_dims = 1, s.dims = sd;
    return pack_msg(m, &s.base);
}

static qo_bytes typeproto_bytes(qo_module *m, int elem) {
    Onnx__TensorShapeProto__Dimension d = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
    d.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d.dim_value = 2;
    Onnx__TensorShapeProto__Dimension *dp = &d;
    Onnx__TensorShapeProto sh = ONNX__TENSOR_SHAPE_PROTO__INIT;
    sh.n_dim = 1, sh.dim = &dp;
    Onnx__TypeProto__Tensor tt = ONNX__TYPE_PROTO__TENSOR__INIT;
    tt.has_elem_type = 1, tt.elem_type = elem, tt.shape = &sh;
    Onnx__TypeProto tp = ONNX__TYPE_PROTO__INIT;
    tp.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tp.tensor_type = &tt;
    return pack_msg(m, &tp.base);
}

/* varint-length-prefixed concatenation (the list convention of onnx_write.h) */
static qo_bytes concat_prefixed(qo_module *m, const qo_bytes *parts, int n) {
    size_t tot = 0;
    for (int i = 0; i < n; i++) tot += parts[i].n + 10;
    uint8_t *p = qo_arena_alloc(&m->arena, tot), *q = p;
    for (int i = 0; i < n; i++) {
        uint64_t l = parts[i].n;
        do {
            uint8_t b = l & 0x7f;
            l >>= 7;
            *q++ = (uint8_t)(b | (l ? 0x80 : 0));
        } while (l);
        memcpy(q, parts[i].p, parts[i].n);
        q += parts[i].n;
    }
    return (qo_bytes){(const char *)p, (size_t)(q - p)};
}

static qo_bytes function_bytes(qo_module *m) {
    char fx[] = "fx", fy[] = "fy", relu[] = "Relu", empty[] = "", name[] = "MyRelu", dom[] = "qo.test",
         doc[] = "a function";
    Onnx__FunctionProto f = ONNX__FUNCTION_PROTO__INIT;
    char *in[1] = {fx}, *out[1] = {fy};
    Onnx__NodeProto n = ONNX__NODE_PROTO__INIT;
    n.op_type = relu, n.n_input = 1, n.input = in, n.n_output = 1, n.output = out;
    Onnx__NodeProto *np = &n;
    Onnx__OperatorSetIdProto os = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    os.domain = empty, os.has_version = 1, os.version = 13;
    Onnx__OperatorSetIdProto *osp = &os;
    f.name = name, f.domain = dom;
    f.n_input = 1, f.input = in, f.n_output = 1, f.output = out;
    f.n_node = 1, f.node = &np, f.n_opset_import = 1, f.opset_import = &osp;
    f.doc_string = doc;
    return pack_msg(m, &f.base);
}

/* basic.onnx: metadata, symbolic dims, input default, every constant kind, anonymous values (one
 * candidate name already taken), every attribute kind, an If with captures, omitted inputs/outputs,
 * value_info, a model-local function. */
static qo_module *build_basic(void) {
    qo_module *m = qo_module_new();
    m->ir_version = 8;
    m->producer_name = qo_intern(m, "qopt-test");
    m->producer_version = qo_intern(m, "1.2");
    m->domain = qo_intern(m, "ai.qopt.test");
    m->model_version = 3;
    m->doc = qo_intern(m, "model doc");
    qo_module_set_opset(m, "", 13);
    qo_module_set_opset(m, "com.qopt.custom", 1);
    qo_module_set_opset(m, "qo.test", 1);
    QO_GROW(m->props, m->capprops, 2);
    m->props[0] = (qo_prop){qo_intern(m, "k1"), qo_intern(m, "v1")};
    m->props[1] = (qo_prop){qo_intern(m, "author"), qo_intern(m, "qopt")};
    m->nprops = 2;
    QO_GROW(m->functions, m->capfunctions, 1);
    m->functions[0] = function_bytes(m);
    m->nfunctions = 1;

    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    g->doc = qo_intern(m, "graph doc");
    int64_t d_n3[2] = {-1, 3};
    qo_atom syms[2] = {qo_intern(m, "N"), 0};
    qo_val x = qo_graph_add_input(g, "X", qo_type_tensor(m, QO_F32, 2, d_n3, syms));
    g->vals[x].doc = qo_intern(m, "input doc");
    int64_t d3[1] = {3};
    float bdef[3] = {1, 2, 3};
    qo_val b = qo_graph_add_input(g, "B", f32(m, 1, d3));
    g->vals[b].cref = qo_const_new(m, f32(m, 1, d3), bdef, sizeof bdef, true);
    qo_val cond = qo_graph_add_input(g, "cond", qo_type_tensor(m, QO_BOOL, 0, NULL, NULL));

    int64_t d33[2] = {3, 3};
    float wv[9];
    for (int i = 0; i < 9; i++) wv[i] = (float)i * 0.5f - 1.0f;
    qo_val w = qo_graph_add_const(g, "W", qo_const_new(m, f32(m, 2, d33), wv, sizeof wv, true));
    g->vals[w].doc = qo_intern(m, "weights");
    qo_bytes sv[3] = {{"ab", 2}, {"c\0d", 3}, {"", 0}};
    qo_graph_add_const(g, "S", qo_const_new(m, qo_type_tensor(m, QO_STR, 1, d3, NULL), sv, sizeof sv, true));
    int64_t d5[1] = {5};
    uint8_t q4[3] = {0x21, 0x43, 0x0d}; /* int4 [1,2,3,4,-3] packed low nibble first */
    qo_graph_add_const(g, "Q4", qo_const_new(m, qo_type_tensor(m, QO_I4, 1, d5, NULL), q4, sizeof q4, true));
    uint16_t h[2] = {0x3c00, 0xc000}; /* f16 1.0, -2.0 */
    int64_t d2[1] = {2};
    qo_graph_add_const(g, "H", qo_const_new(m, qo_type_tensor(m, QO_F16, 1, d2, NULL), h, sizeof h, true));
    int64_t d0[1] = {0};
    qo_graph_add_const(g, "E", qo_const_new(m, qo_type_tensor(m, QO_I64, 1, d0, NULL), NULL, 0, true));
    double sc = 2.5;
    qo_graph_add_const(g, "SC", qo_const_new(m, qo_type_tensor(m, QO_F64, 0, NULL, NULL), &sc, sizeof sc, true));

    /* mm: MatMul(X, W) -> anonymous; add: Add(anon, B) -> Y; "qo_0" is taken by a real value */
    qo_val ins[3] = {x, w};
    qo_node mm = qo_node_new(g, QO_OP_MATMUL, NULL, NULL, 2, ins, 1);
    qo_node_set_name(g, mm, "mm");
    g->nodes[mm].doc = qo_intern(m, "node doc");
    qo_val anon = qo_node_output(g, mm, 0);
    g->vals[anon].type = qo_type_tensor(m, QO_F32, 2, d_n3, syms);
    g->vals[anon].flags |= QO_VAL_INFO;
    ins[0] = anon, ins[1] = b;
    qo_node add = qo_node_new(g, QO_OP_ADD, NULL, NULL, 2, ins, 1);
    qo_node_set_name(g, add, "add");
    qo_val y = qo_node_output(g, add, 0);
    qo_val_set_name(g, y, "qo_0");
    g->vals[y].type = qo_type_tensor(m, QO_F32, 2, d_n3, syms);

    /* custom node with every attribute kind, an omitted input and an omitted output */
    ins[0] = y, ins[1] = 0, ins[2] = w;
    qo_node foo = qo_node_new(g, QO_OP_UNKNOWN, "com.qopt.custom", "Foo", 3, ins, 3);
    qo_node_set_name(g, foo, "foo");
    qo_val_set_name(g, qo_node_output(g, foo, 0), "Z");
    g->vals[qo_node_output(g, foo, 0)].type = f32(m, 2, d33);
    qo_node_drop_output(g, foo, 1);
    qo_val_set_name(g, qo_node_output(g, foo, 2), "Z2");
    qo_node_set_attr_float(g, foo, "f", 1.5f);
    qo_node_set_attr_int(g, foo, "i", -7);
    qo_node_set_attr_string(g, foo, "s", "he\0llo", 6);
    int64_t tv[2] = {4, 5};
    qo_cref tc = qo_const_new(m, qo_type_tensor(m, QO_I64, 1, d2, NULL), tv, sizeof tv, true);
    qo_attr a = {.name = qo_intern(m, "t"), .kind = QO_ATTR_TENSOR};
    a.u.t = tc;
    a.doc = qo_intern(m, "attr doc");
    qo_node_set_attr(g, foo, &a);
    float fl[2] = {1.0f, 2.5f};
    a = (qo_attr){.name = qo_intern(m, "floats"), .kind = QO_ATTR_FLOATS, .n = 2};
    a.u.fs = fl;
    qo_node_set_attr(g, foo, &a);
    int64_t il[3] = {1, -2, 3};
    qo_node_set_attr_ints(g, foo, "ints", il, 3);
    qo_bytes sl[2] = {{"a", 1}, {"bc", 2}};
    a = (qo_attr){.name = qo_intern(m, "strings"), .kind = QO_ATTR_STRINGS, .n = 2};
    a.u.ss = sl;
    qo_node_set_attr(g, foo, &a);
    qo_cref tl[2] = {tc, g->vals[w].cref};
    a = (qo_attr){.name = qo_intern(m, "tensors"), .kind = QO_ATTR_TENSORS, .n = 2};
    a.u.ts = tl;
    qo_node_set_attr(g, foo, &a);
    a = (qo_attr){.name = qo_intern(m, "sparse"), .kind = QO_ATTR_SPARSE_TENSOR};
    a.u.raw = sparse_bytes(m);
    qo_node_set_attr(g, foo, &a);
    qo_bytes sp2[2] = {sparse_bytes(m), sparse_bytes(m)};
    a = (qo_attr){.name = qo_intern(m, "sparses"), .kind = QO_ATTR_SPARSE_TENSORS, .n = 2};
    a.u.raw = concat_prefixed(m, sp2, 2);
    qo_node_set_attr(g, foo, &a);
    a = (qo_attr){.name = qo_intern(m, "tp"), .kind = QO_ATTR_TYPE_PROTO};
    a.u.raw = typeproto_bytes(m, QO_F32);
    qo_node_set_attr(g, foo, &a);
    qo_bytes tp2[2] = {typeproto_bytes(m, QO_I8), typeproto_bytes(m, QO_U8)};
    a = (qo_attr){.name = qo_intern(m, "tps"), .kind = QO_ATTR_TYPE_PROTOS, .n = 2};
    a.u.raw = concat_prefixed(m, tp2, 2);
    qo_node_set_attr(g, foo, &a);

    /* If(cond) with then = Identity(W captured), else = Neg(W captured) -> R; the else body has an
     * anonymous intermediate */
    ins[0] = cond;
    qo_node iff = qo_node_new(g, QO_OP_IF, NULL, NULL, 1, ins, 1);
    qo_node_set_name(g, iff, "if");
    qo_val r = qo_node_output(g, iff, 0);
    qo_val_set_name(g, r, "R");
    g->vals[r].type = f32(m, 2, d33);
    qo_graph *tg = qo_graph_new(m, g, iff, "then_body");
    qo_val tw = qo_graph_add_capture(tg, "W", f32(m, 2, d33));
    qo_node tid = qo_node_new(tg, QO_OP_IDENTITY, NULL, NULL, 1, &tw, 1);
    qo_val to = qo_node_output(tg, tid, 0);
    qo_val_set_name(tg, to, "then_out");
    tg->vals[to].type = f32(m, 2, d33);
    qo_graph_add_output(tg, to);
    qo_graph *eg = qo_graph_new(m, g, iff, "else_body");
    qo_val ew = qo_graph_add_capture(eg, "W", f32(m, 2, d33));
    qo_node en = qo_node_new(eg, QO_OP_NEG, NULL, NULL, 1, &ew, 1);
    qo_val eanon = qo_node_output(eg, en, 0);
    qo_node en2 = qo_node_new(eg, QO_OP_IDENTITY, NULL, NULL, 1, &eanon, 1);
    qo_val eo = qo_node_output(eg, en2, 0);
    qo_val_set_name(eg, eo, "else_out");
    eg->vals[eo].type = f32(m, 2, d33);
    qo_graph_add_output(eg, eo);
    a = (qo_attr){.name = qo_intern(m, "then_branch"), .kind = QO_ATTR_GRAPH};
    a.u.g = tg->index;
    qo_node_set_attr(g, iff, &a);
    a = (qo_attr){.name = qo_intern(m, "else_branch"), .kind = QO_ATTR_GRAPH};
    a.u.g = eg->index;
    qo_node_set_attr(g, iff, &a);

    /* call of the model-local function */
    qo_node fc = qo_node_new(g, QO_OP_UNKNOWN, "qo.test", "MyRelu", 1, &y, 1);
    qo_val fo = qo_node_output(g, fc, 0);
    qo_val_set_name(g, fo, "F");
    g->vals[fo].type = qo_type_tensor(m, QO_F32, 2, d_n3, syms);

    qo_graph_add_output(g, y);
    qo_graph_add_output(g, qo_node_output(g, foo, 0));
    qo_graph_add_output(g, r);
    qo_graph_add_output(g, fo);
    return m;
}

/* ext.onnx: one big and one small initializer, the big one used twice (written once). */
static qo_module *build_ext(void) {
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "ext");
    int64_t d64[1] = {64}, d2[1] = {2};
    float big[64], small[2] = {7, 8};
    for (int i = 0; i < 64; i++) big[i] = (float)i * 0.25f;
    qo_val x = qo_graph_add_input(g, "X", f32(m, 1, d64));
    qo_cref bc = qo_const_new(m, f32(m, 1, d64), big, sizeof big, true);
    qo_val b1 = qo_graph_add_const(g, "big1", bc);
    qo_val b2 = qo_graph_add_const(g, "big2", bc);
    qo_graph_add_const(g, "small", qo_const_new(m, f32(m, 1, d2), small, sizeof small, true));
    qo_val ins[2] = {x, b1};
    qo_node a1 = qo_node_new(g, QO_OP_ADD, NULL, NULL, 2, ins, 1);
    ins[0] = qo_node_output(g, a1, 0), ins[1] = b2;
    qo_node a2 = qo_node_new(g, QO_OP_ADD, NULL, NULL, 2, ins, 1);
    qo_val y = qo_node_output(g, a2, 0);
    qo_val_set_name(g, y, "Y");
    g->vals[y].type = f32(m, 1, d64);
    qo_graph_add_output(g, y);
    return m;
}

/* refattr.onnx: an attribute that references a function attribute (not checker-valid in a main
 * graph, parsed only). */
static qo_module *build_refattr(void) {
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "g");
    int64_t d1[1] = {4};
    qo_val x = qo_graph_add_input(g, "X", f32(m, 1, d1));
    qo_node n = qo_node_new(g, QO_OP_LEAKYRELU, NULL, NULL, 1, &x, 1);
    qo_attr a = {.name = qo_intern(m, "alpha"), .kind = QO_ATTR_FLOAT, .ref_attr_name = qo_intern(m, "outer_alpha")};
    qo_node_set_attr(g, n, &a);
    qo_val_set_name(g, qo_node_output(g, n, 0), "Y");
    qo_graph_add_output(g, qo_node_output(g, n, 0));
    return m;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) k++;
    closedir(d);
    return k;
}

static void error_cases(qo_ctx *cx, const char *dir) {
    char path[4096];
    qo_status st;

    /* 1. destination directory missing */
    qo_module *m = build_ext();
    st = qo_onnx_write(cx, m, "/nonexistent-qopt-dir/sub/out.onnx", NULL);
    CHECK(st == QO_ERR_IO, "status %s", qo_status_str(st));
    CHECK(strstr(last_msg, "/nonexistent-qopt-dir/sub/out.onnx") && strstr(last_msg, "/nonexistent-qopt-dir/sub'"),
          "message: %s", last_msg);
    printf("error 1: %s\n", last_msg);

    /* 2. unwritable directory (only meaningful when not root) */
    snprintf(path, sizeof path, "%s/ro", dir);
    mkdir(path, 0555);
    chmod(path, 0555);
    snprintf(path, sizeof path, "%s/ro/out.onnx", dir);
    if (geteuid() != 0) {
        st = qo_onnx_write(cx, m, path, NULL);
        CHECK(st == QO_ERR_IO && strstr(last_msg, path) && strstr(last_msg, "Permission denied"), "message: %s", last_msg);
        printf("error 2: %s\n", last_msg);
    } else {
        printf("error 2: skipped (running as root, permissions are not enforced)\n");
    }
    snprintf(path, sizeof path, "%s/ro", dir);
    chmod(path, 0755);
    rmdir(path);

    /* 3. two values with one name: reported, nothing written */
    snprintf(path, sizeof path, "%s/err", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/err/dup.onnx", dir);
    qo_graph *g = qo_module_main(m);
    qo_val_set_name(g, qo_graph_output(g, 0), "big1"); /* Y renamed onto the initializer's name */
    st = qo_onnx_write(cx, m, path, NULL);
    CHECK(st == QO_ERR_INVALID_MODEL && strstr(last_msg, path) && strstr(last_msg, "'big1'"), "message: %s", last_msg);
    printf("error 3: %s\n", last_msg);
    qo_module_free(m);

    /* 4. constant of unknown type */
    m = build_ext();
    g = qo_module_main(m);
    float one = 1;
    qo_graph_add_const(g, "untyped", qo_const_new(m, 0, &one, sizeof one, true));
    st = qo_onnx_write(cx, m, path, NULL);
    CHECK(st == QO_ERR_UNSUPPORTED && strstr(last_msg, path) && strstr(last_msg, "untyped") &&
              strstr(last_msg, "unknown type"),
          "message: %s", last_msg);
    printf("error 4: %s\n", last_msg);
    uint8_t *buf;
    size_t len;
    st = qo_onnx_serialize(cx, m, &buf, &len);
    CHECK(st == QO_ERR_UNSUPPORTED && buf == NULL, "serialize status %s", qo_status_str(st));
    qo_module_free(m);
    CHECK(count_entries(dir) >= 0 && access(path, F_OK) != 0, "%s exists after failed writes", path);

    /* 5. a write failing half-way (file size limit): the previous file stays, no temporary is left */
    snprintf(path, sizeof path, "%s/err/keep.onnx", dir);
    FILE *f = fopen(path, "wb");
    fputs("previous", f);
    fclose(f);
    m = build_ext();
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 100;
    signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    st = qo_onnx_write(cx, m, path, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(st == QO_ERR_IO && strstr(last_msg, path) && strstr(last_msg, "too large"), "message: %s", last_msg);
    printf("error 5: %s\n", last_msg);
    char tmp[64] = {0};
    f = fopen(path, "rb");
    CHECK(f && fread(tmp, 1, sizeof tmp - 1, f) == 8 && strcmp(tmp, "previous") == 0, "destination changed: '%s'", tmp);
    if (f) fclose(f);
    /* with external data the side file must not be left behind either */
    setrlimit(RLIMIT_FSIZE, &lim);
    qo_onnx_write_opts o = {.external_data = true, .external_threshold = 16};
    snprintf(path, sizeof path, "%s/err/ext.onnx", dir);
    st = qo_onnx_write(cx, m, path, &o);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(st == QO_ERR_IO, "status %s", qo_status_str(st));
    printf("error 6: %s\n", last_msg);
    snprintf(path, sizeof path, "%s/err", dir);
    CHECK(count_entries(path) == 1, "%d files in %s, expected only keep.onnx", count_entries(path), path);
    qo_module_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    qo_ctx cx;
    qo_ctx_init(&cx);
    cx.diag = collect;
    char path[4096];
    qo_status st;

    qo_module *m = build_basic();
    snprintf(path, sizeof path, "%s/basic.onnx", dir);
    st = qo_onnx_write(&cx, m, path, NULL);
    CHECK(st == QO_OK, "basic: %s", last_msg);
    /* qo_onnx_serialize gives the same bytes as the file */
    uint8_t *buf = NULL;
    size_t len = 0;
    st = qo_onnx_serialize(&cx, m, &buf, &len);
    CHECK(st == QO_OK, "serialize: %s", last_msg);
    char *file = NULL;
    size_t flen = 0;
    if (qo_read_file(&cx, path, &file, &flen) == QO_OK) {
        CHECK(flen == len && memcmp(file, buf, len) == 0, "serialize differs from file (%zu vs %zu bytes)", len, flen);
        qo_free(file);
    }
    qo_free(buf);
    snprintf(path, sizeof path, "%s/basic_vi.onnx", dir);
    qo_onnx_write_opts vo = {.value_info_all = true, .fsync = true};
    st = qo_onnx_write(&cx, m, path, &vo);
    CHECK(st == QO_OK, "basic_vi: %s", last_msg);
    qo_module_free(m);

    m = build_ext();
    snprintf(path, sizeof path, "%s/ext.onnx", dir);
    qo_onnx_write_opts eo = {.external_data = true, .external_threshold = 16};
    st = qo_onnx_write(&cx, m, path, &eo);
    CHECK(st == QO_OK, "ext: %s", last_msg);
    snprintf(path, sizeof path, "%s/inline.onnx", dir);
    st = qo_onnx_write(&cx, m, path, NULL);
    CHECK(st == QO_OK, "inline: %s", last_msg);
    qo_module_free(m);

    m = build_refattr();
    snprintf(path, sizeof path, "%s/refattr.onnx", dir);
    st = qo_onnx_write(&cx, m, path, NULL);
    CHECK(st == QO_OK, "refattr: %s", last_msg);
    qo_module_free(m);

    error_cases(&cx, dir);
    printf("build_models: %d failure(s)\n", failures);
    return failures ? 1 : 0;
}
