/* tests/runtime/rt_unit.c — unit tests of the runtime core: tensors, .npy encode/parse round trips
 * and malformed files, TensorProto parsing, and the interpreter's checks (unsupported ops reported
 * in one error, input type/shape checks, defaults, missing inputs, If/Loop, constant views).
 * Prints "N passed, N failed"; exit 1 if any check failed. */
#include "runtime/npy.h"
#include "runtime/rt.h"
#include "runtime/tensor_pb.h"

#include "onnx.pb-c.h"

#include <math.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned npass, nfail;
static char diag[8192];

#define CHECK(c, ...)                                                                              \
    do {                                                                                           \
        if (c) npass++;                                                                            \
        else {                                                                                     \
            nfail++;                                                                               \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);                                    \
            printf(__VA_ARGS__);                                                                   \
            printf("\n   diagnostics: %s\n", diag);                                               \
        }                                                                                          \
    } while (0)

static void on_diag(void *ud, qo_diag_kind kind, const qo_loc *loc, const char *msg) {
    (void)ud;
    char lb[512];
    qo_loc_format(loc, lb, sizeof lb);
    size_t k = strlen(diag);
    snprintf(diag + k, sizeof diag - k, "%s: %s: %s\n", lb, kind == QO_DIAG_ERROR ? "error" : "note", msg);
}

static qo_ctx cx;
static void reset(void) {
    diag[0] = 0;
    qo_ctx_init(&cx);
    cx.diag = on_diag;
}

/* ---- tensors ---------------------------------------------------------------------------------- */

static void test_tensor(void) {
    reset();
    CHECK(qo_rt_elem_size(QO_F32) == 4 && qo_rt_elem_size(QO_BOOL) == 1 && qo_rt_elem_size(QO_I4) == 1 &&
              qo_rt_elem_size(QO_F64) == 8 && qo_rt_elem_size(QO_F16) == 2 && qo_rt_elem_size(QO_STR) == 0,
          "element sizes");
    qo_tensor t;
    int64_t d[3] = {2, 3, 4};
    CHECK(qo_tensor_make(&cx, &t, QO_F32, 3, d) == QO_OK && t.nbytes == 96 && t.owned && t.data, "make");
    CHECK(qo_tensor_numel(&t) == 24, "numel");
    float *f = t.data;
    bool zero = true;
    for (int i = 0; i < 24; i++) zero = zero && f[i] == 0;
    CHECK(zero, "alloc zeroes");
    for (int i = 0; i < 24; i++) f[i] = (float)i;
    qo_tensor c;
    CHECK(qo_tensor_copy(&cx, &t, &c) == QO_OK && c.data != t.data && !memcmp(c.data, t.data, 96) && c.owned,
          "deep copy");
    qo_tensor_free(&c);
    qo_tensor_free(&t);
    CHECK(t.data == NULL && t.nbytes == 0, "free zeroes");

    int64_t z[2] = {0, 5};
    CHECK(qo_tensor_make(&cx, &t, QO_I64, 2, z) == QO_OK && t.data == NULL && t.nbytes == 0, "empty tensor");
    qo_tensor_free(&t);
    CHECK(qo_tensor_make(&cx, &t, QO_F32, 0, NULL) == QO_OK && t.nbytes == 4 && qo_tensor_numel(&t) == 1, "scalar");
    qo_tensor_free(&t);

    reset();
    int64_t huge[4] = {INT64_C(1) << 20, INT64_C(1) << 20, INT64_C(1) << 20, 8};
    CHECK(qo_tensor_make(&cx, &t, QO_F32, 4, huge) != QO_OK && strstr(diag, "too large"), "overflow is an error");
    reset();
    CHECK(qo_tensor_make(&cx, &t, QO_STR, 1, d) == QO_ERR_UNSUPPORTED, "string tensors unsupported");
    reset();
    CHECK(qo_tensor_make(&cx, &t, QO_F32, QO_MAX_RANK + 1, huge) != QO_OK, "rank limit");
}

static void test_from_const(void) {
    reset();
    qo_module *m = qo_module_new();
    /* int4: values -8..7 packed low nibble first: [1, -2, 7, -8, 3] */
    const uint8_t i4[3] = {0x1 | (0xE << 4), 0x7 | (0x8 << 4), 0x3};
    int64_t d5 = 5;
    qo_cref c = qo_const_new(m, qo_type_tensor(m, QO_I4, 1, &d5, NULL), i4, 3, true);
    qo_tensor t;
    CHECK(qo_tensor_from_const(&cx, m, c, &t) == QO_OK && t.owned && t.nbytes == 5, "int4 view");
    const int8_t *v = t.data;
    CHECK(v[0] == 1 && v[1] == -2 && v[2] == 7 && v[3] == -8 && v[4] == 3, "int4 unpack %d %d %d %d %d", v[0], v[1],
          v[2], v[3], v[4]);
    qo_tensor_free(&t);
    c = qo_const_new(m, qo_type_tensor(m, QO_U4, 1, &d5, NULL), i4, 3, true);
    CHECK(qo_tensor_from_const(&cx, m, c, &t) == QO_OK, "uint4 view");
    const uint8_t *u = t.data;
    CHECK(u[0] == 1 && u[1] == 14 && u[2] == 7 && u[3] == 8 && u[4] == 3, "uint4 unpack");
    qo_tensor_free(&t);

    /* aligned f32: a true view; misaligned borrowed bytes: copied */
    static float fl[4] = {1, 2, 3, 4};
    int64_t d4 = 4;
    qo_type ft = qo_type_tensor(m, QO_F32, 1, &d4, NULL);
    c = qo_const_new(m, ft, fl, sizeof fl, false);
    CHECK(qo_tensor_from_const(&cx, m, c, &t) == QO_OK && t.data == (void *)fl && !t.owned, "aligned view");
    qo_tensor_free(&t);
    CHECK(fl[0] == 1, "view free leaves the constant alone");
    static char raw[17];
    memcpy(raw + 1, fl, 16);
    c = qo_const_new(m, ft, raw + 1, 16, false);
    CHECK(qo_tensor_from_const(&cx, m, c, &t) == QO_OK && t.owned && !memcmp(t.data, fl, 16), "misaligned copy");
    qo_tensor_free(&t);

    qo_bytes s[1] = {{"ab", 2}};
    int64_t d1 = 1;
    c = qo_const_new(m, qo_type_tensor(m, QO_STR, 1, &d1, NULL), s, sizeof s, true);
    CHECK(qo_tensor_from_const(&cx, m, c, &t) == QO_ERR_UNSUPPORTED && strstr(diag, "string"), "string const");
    qo_module_free(m);
}

/* ---- npy ------------------------------------------------------------------------------------- */

static void test_npy_roundtrip(void) {
    static const int elems[] = {QO_F32, QO_F64, QO_F16, QO_I8, QO_U8, QO_I16, QO_U16, QO_I32, QO_U32,
                                QO_I64, QO_U64, QO_BOOL};
    static const int32_t ranks[] = {0, 1, 2, 4, 8};
    for (size_t e = 0; e < sizeof elems / sizeof *elems; e++)
        for (size_t r = 0; r < sizeof ranks / sizeof *ranks; r++) {
            reset();
            int64_t dims[QO_MAX_RANK];
            for (int32_t i = 0; i < ranks[r]; i++) dims[i] = i % 3 + 1;
            qo_tensor t, back;
            qo_tensor_make(&cx, &t, elems[e], ranks[r], dims);
            uint8_t *p = t.data;
            for (size_t i = 0; i < t.nbytes; i++) p[i] = elems[e] == QO_BOOL ? (uint8_t)(i % 2) : (uint8_t)(i * 37 + 5);
            char *buf;
            size_t len;
            CHECK(qo_npy_encode(&cx, &t, &buf, &len) == QO_OK, "encode elem %d rank %d", elems[e], ranks[r]);
            CHECK(len % 64 == t.nbytes % 64 && (len - t.nbytes) % 64 == 0, "header padded to 64");
            CHECK(qo_npy_parse(&cx, "mem.npy", buf, len, &back) == QO_OK, "parse elem %d rank %d", elems[e], ranks[r]);
            bool same = back.elem == t.elem && back.rank == t.rank && back.nbytes == t.nbytes &&
                        !memcmp(back.data, t.data, t.nbytes);
            for (int32_t i = 0; same && i < t.rank; i++) same = back.dims[i] == t.dims[i];
            CHECK(same, "round trip elem %d rank %d", elems[e], ranks[r]);
            free(buf);
            qo_tensor_free(&t);
            qo_tensor_free(&back);
        }
    /* an empty array */
    reset();
    int64_t d[2] = {3, 0};
    qo_tensor t, back;
    qo_tensor_make(&cx, &t, QO_F32, 2, d);
    char *buf;
    size_t len;
    CHECK(qo_npy_encode(&cx, &t, &buf, &len) == QO_OK && qo_npy_parse(&cx, "e.npy", buf, len, &back) == QO_OK &&
              back.rank == 2 && back.dims[0] == 3 && back.dims[1] == 0 && back.nbytes == 0,
          "empty array");
    CHECK(memmem(buf, len, "'shape': (3, 0), }", 18) != NULL, "header text");
    free(buf);
    qo_tensor_free(&back);
    qo_tensor_free(&t);
    /* bf16 has no numpy equivalent */
    reset();
    qo_tensor_make(&cx, &t, QO_BF16, 0, NULL);
    CHECK(qo_npy_write(&cx, "/tmp/never-written.npy", &t) == QO_ERR_UNSUPPORTED &&
              strstr(diag, "never-written.npy") && strstr(diag, "bf16"),
          "bf16 write refused, names the file");
    qo_tensor_free(&t);
}

/* Builds an .npy with the given version and header text followed by ndata bytes. */
static size_t mk_npy(char *out, int major, const char *hdr, size_t ndata) {
    size_t hl = strlen(hdr), pre = major == 1 ? 10 : 12;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (char)major;
    out[7] = 0;
    if (major == 1) {
        out[8] = (char)(hl & 0xFF);
        out[9] = (char)(hl >> 8);
    } else {
        out[8] = (char)(hl & 0xFF);
        out[9] = (char)(hl >> 8);
        out[10] = out[11] = 0;
    }
    memcpy(out + pre, hdr, hl);
    memset(out + pre + hl, 0x3f, ndata);
    return pre + hl + ndata;
}

static void test_npy_malformed(void) {
    static const struct {
        int major;
        const char *hdr;
        size_t ndata;
        const char *words; /* expected in the message */
    } cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 8, NULL}, /* control: valid */
        {2, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }\n", 8, NULL},
        {3, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n", 1, NULL},
        {1, "{\"descr\": \"<f4\", \"shape\": (2L,), \"fortran_order\": False}", 8, NULL}, /* py2 style */
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", 8, "Fortran"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8, "big-endian"},
        {1, "{'descr': '<U5', 'fortran_order': False, 'shape': (2,), }\n", 40, "dtype '<U5'"},
        {1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n", 16, "dtype"},
        {1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", 16, "dtype '<c8'"},
        {1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n", 8, "structured"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }\n", 4, "rank"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }\n", 4, "shape"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", 8, "truncated"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", 8, "data bytes"},
        {1, "{'descr': '<f4', 'shape': (1,), }\n", 4, "fortran_order"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", 4, "unexpected key"},
        {1, "{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }\n", 4, "malformed"},
        {1, "['descr']", 4, "malformed"},
        {1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }\n", 4, "fortran_order"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999, 99999999999), }\n", 4,
         "truncated"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", 4, "shape"},
        {1, "{'descr': '<f', 'fortran_order': False, 'shape': (1,), }\n", 4, "dtype"},
        {1, "{'descr': '', 'fortran_order': False, 'shape': (1,), }\n", 4, "dtype"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4, "malformed"},
    };
    char buf[1024];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        reset();
        size_t n = mk_npy(buf, cases[i].major, cases[i].hdr, cases[i].ndata);
        qo_tensor t;
        qo_status s = qo_npy_parse(&cx, "bad.npy", buf, n, &t);
        if (!cases[i].words) {
            CHECK(s == QO_OK, "case %zu should parse", i);
        } else {
            CHECK(s != QO_OK && t.data == NULL, "case %zu should fail", i);
            CHECK(strstr(diag, "bad.npy") && strstr(diag, cases[i].words), "case %zu message lacks '%s'", i,
                  cases[i].words);
        }
        qo_tensor_free(&t);
    }
    /* bad magic, short files, unknown version, header length past the end: every prefix of a
     * valid file fails cleanly */
    size_t n = mk_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 8);
    for (size_t cut = 0; cut < n; cut++) {
        reset();
        qo_tensor t;
        CHECK(qo_npy_parse(&cx, "cut.npy", buf, cut, &t) != QO_OK && strstr(diag, "cut.npy"), "prefix %zu", cut);
    }
    reset();
    qo_tensor t;
    buf[6] = 9;
    CHECK(qo_npy_parse(&cx, "v9.npy", buf, n, &t) == QO_ERR_UNSUPPORTED && strstr(diag, "version 9"), "version");
    buf[6] = 1;
    buf[9] = 0x7f;
    reset();
    CHECK(qo_npy_parse(&cx, "len.npy", buf, n, &t) != QO_OK && strstr(diag, "truncated .npy header"), "header len");
    buf[0] = 'X';
    reset();
    CHECK(qo_npy_parse(&cx, "magic.npy", buf, n, &t) == QO_ERR_PARSE && strstr(diag, "magic"), "magic");
    reset();
    CHECK(qo_npy_read(&cx, "/nonexistent/dir/x.npy", &t) == QO_ERR_IO && strstr(diag, "/nonexistent/dir/x.npy"),
          "missing file");
    /* bools are normalised to 0/1 */
    reset();
    n = mk_npy(buf, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }\n", 2);
    CHECK(qo_npy_parse(&cx, "b.npy", buf, n, &t) == QO_OK && ((uint8_t *)t.data)[0] == 1, "bool normalised");
    qo_tensor_free(&t);
}

/* ---- TensorProto ------------------------------------------------------------------------------ */

static void test_tensor_pb(void) {
    reset();
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[2] = {2, 2};
    float fd[4] = {1.5f, -2, 3, NAN};
    tp.n_dims = 2;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = QO_F32;
    tp.n_float_data = 4;
    tp.float_data = fd;
    tp.name = (char *)"x";
    uint8_t buf[256];
    size_t n = onnx__tensor_proto__pack(&tp, buf);
    qo_tensor t;
    char *name;
    CHECK(qo_tensor_pb_parse(&cx, "t.pb", buf, n, &t, &name) == QO_OK && !strcmp(name, "x") && t.rank == 2 &&
              ((float *)t.data)[1] == -2 && isnan(((float *)t.data)[3]),
          "float_data");
    free(name);
    qo_tensor_free(&t);
    /* int4 raw, uint16 typed, bool typed */
    tp.n_float_data = 0;
    tp.data_type = QO_I4;
    tp.has_raw_data = 1;
    uint8_t raw[2] = {0xF1, 0x87};
    tp.raw_data.data = raw;
    tp.raw_data.len = 2;
    n = onnx__tensor_proto__pack(&tp, buf);
    CHECK(qo_tensor_pb_parse(&cx, "t.pb", buf, n, &t, NULL) == QO_OK && ((int8_t *)t.data)[0] == 1 &&
              ((int8_t *)t.data)[1] == -1 && ((int8_t *)t.data)[2] == 7 && ((int8_t *)t.data)[3] == -8,
          "int4 raw");
    qo_tensor_free(&t);
    tp.has_raw_data = 0;
    tp.data_type = QO_U16;
    int32_t i32[4] = {65535, 1, 2, 3};
    tp.n_int32_data = 4;
    tp.int32_data = i32;
    n = onnx__tensor_proto__pack(&tp, buf);
    CHECK(qo_tensor_pb_parse(&cx, "t.pb", buf, n, &t, NULL) == QO_OK && ((uint16_t *)t.data)[0] == 65535, "u16");
    qo_tensor_free(&t);
    tp.n_int32_data = 3;
    n = onnx__tensor_proto__pack(&tp, buf);
    reset();
    CHECK(qo_tensor_pb_parse(&cx, "short.pb", buf, n, &t, NULL) == QO_ERR_PARSE && strstr(diag, "short.pb"),
          "count mismatch");
    tp.n_int32_data = 0;
    tp.data_type = QO_STR;
    n = onnx__tensor_proto__pack(&tp, buf);
    reset();
    CHECK(qo_tensor_pb_parse(&cx, "s.pb", buf, n, &t, NULL) == QO_ERR_UNSUPPORTED, "string");
    reset();
    CHECK(qo_tensor_pb_parse(&cx, "junk.pb", "\xff\xff\xff", 3, &t, NULL) == QO_ERR_PARSE && strstr(diag, "junk.pb"),
          "junk");
}

/* ---- interpreter ------------------------------------------------------------------------------ */

static qo_type f32t(qo_module *m, int32_t rank, const int64_t *dims) { return qo_type_tensor(m, QO_F32, rank, dims, NULL); }

static void test_interp_checks(void) {
    /* x -> Relu -> Foo(custom) -> Bar(custom) -> Foo -> y; also an unknown default-domain op */
    reset();
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    int64_t d[2] = {2, -1};
    qo_val x = qo_graph_add_input(g, "x", f32t(m, 2, d));
    qo_node r = qo_node_new(g, QO_OP_RELU, NULL, NULL, 1, &x, 1);
    qo_val rv = qo_node_output(g, r, 0);
    qo_node f1 = qo_node_new(g, QO_OP_UNKNOWN, "my.domain", "Foo", 1, &rv, 1);
    qo_node_set_name(g, f1, "foo_a");
    qo_val v1 = qo_node_output(g, f1, 0);
    qo_node b = qo_node_new(g, QO_OP_UNKNOWN, "", "NotAnOnnxOp", 1, &v1, 1);
    qo_node_set_name(g, b, "bar");
    qo_val v2 = qo_node_output(g, b, 0);
    qo_node f2 = qo_node_new(g, QO_OP_UNKNOWN, "my.domain", "Foo", 1, &v2, 1);
    qo_node_set_name(g, f2, "foo_b");
    qo_graph_add_output(g, qo_node_output(g, f2, 0));
    qo_tensor in, out;
    int64_t id[2] = {2, 3};
    qo_tensor_make(&cx, &in, QO_F32, 2, id);
    const qo_tensor *ins[1] = {&in};
    qo_status s = qo_interp_run(&cx, m, ins, 1, &out, 1);
    CHECK(s == QO_ERR_UNSUPPORTED && cx.nerrors == 1, "one error");
    CHECK(strstr(diag, "my.domain.Foo (2 nodes: 'foo_a', 'foo_b')") && strstr(diag, "NotAnOnnxOp (1 node: 'bar')") &&
              !strstr(diag, "Relu"),
          "lists every unsupported op and node");
    qo_module_free(m);

    /* input checks: Relu(x) with x: f32[2, N] (symbolic) */
    m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    g = qo_graph_new(m, NULL, 0, "main");
    qo_atom syms[2] = {0, qo_intern(m, "N")};
    x = qo_graph_add_input(g, "x", qo_type_tensor(m, QO_F32, 2, (int64_t[]){2, -1}, syms));
    r = qo_node_new(g, QO_OP_RELU, NULL, NULL, 1, &x, 1);
    qo_graph_add_output(g, qo_node_output(g, r, 0));
    float *p = in.data;
    for (int i = 0; i < 6; i++) p[i] = (float)(i - 3);
    reset();
    s = qo_interp_run(&cx, m, ins, 1, &out, 1);
    CHECK(s == QO_OK && out.owned && out.rank == 2 && ((float *)out.data)[0] == 0 && ((float *)out.data)[5] == 2,
          "relu runs");
    qo_tensor_free(&out);
    qo_tensor bad;
    int64_t bd[2] = {3, 3};
    qo_tensor_make(&cx, &bad, QO_F32, 2, bd);
    const qo_tensor *bins[1] = {&bad};
    reset();
    CHECK(qo_interp_run(&cx, m, bins, 1, &out, 1) == QO_ERR_USAGE && strstr(diag, "input 'x'") &&
              strstr(diag, "expected f32[2,N], got f32[3,3]"),
          "static dim checked, symbolic not");
    qo_tensor_free(&bad);
    qo_tensor_make(&cx, &bad, QO_I64, 2, id);
    reset();
    CHECK(qo_interp_run(&cx, m, bins, 1, &out, 1) == QO_ERR_USAGE && strstr(diag, "element type") &&
              strstr(diag, "got i64[2,3]"),
          "element type checked");
    qo_tensor_free(&bad);
    qo_tensor_make(&cx, &bad, QO_F32, 1, id);
    reset();
    CHECK(qo_interp_run(&cx, m, bins, 1, &out, 1) == QO_ERR_USAGE && strstr(diag, "rank"), "rank checked");
    qo_tensor_free(&bad);
    const qo_tensor *none[1] = {NULL};
    reset();
    CHECK(qo_interp_run(&cx, m, none, 1, &out, 1) == QO_ERR_USAGE && strstr(diag, "input 'x' is missing"),
          "missing input");
    reset();
    CHECK(qo_interp_run(&cx, m, ins, 2, &out, 1) == QO_ERR_USAGE, "input count");
    qo_module_free(m);

    /* default initializer used when the input is not fed; graph output that is a constant and one
     * that is an input are copied out (owned) */
    m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    g = qo_graph_new(m, NULL, 0, "main");
    float def[2] = {-1, 5};
    int64_t d2 = 2;
    qo_cref c = qo_const_new(m, f32t(m, 1, &d2), def, sizeof def, true);
    x = qo_graph_add_input(g, "x", f32t(m, 1, &d2));
    g->vals[x].cref = c;
    qo_val k = qo_graph_add_const(g, "k", c);
    r = qo_node_new(g, QO_OP_RELU, NULL, NULL, 1, &x, 1);
    qo_graph_add_output(g, qo_node_output(g, r, 0));
    qo_graph_add_output(g, k);
    qo_graph_add_output(g, x);
    qo_tensor outs[3];
    reset();
    s = qo_interp_run(&cx, m, none, 1, outs, 3);
    CHECK(s == QO_OK && ((float *)outs[0].data)[0] == 0 && ((float *)outs[0].data)[1] == 5, "default initializer");
    CHECK(s == QO_OK && outs[1].owned && outs[1].data != (void *)qo_const_get(m, c)->data &&
              ((float *)outs[1].data)[1] == 5 && outs[2].owned,
          "constant/input outputs are owned copies");
    for (int i = 0; i < 3; i++) qo_tensor_free(&outs[i]);
    qo_module_free(m);
    qo_tensor_free(&in);
}

/* If with a capture and a nested value; Loop summing a capture (checked against hand values). */
static void test_interp_control(void) {
    reset();
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    int64_t d2 = 2;
    qo_val cond = qo_graph_add_input(g, "cond", qo_type_tensor(m, QO_BOOL, 0, NULL, NULL));
    qo_val x = qo_graph_add_input(g, "x", f32t(m, 1, &d2));
    qo_node rn = qo_node_new(g, QO_OP_NEG, NULL, NULL, 1, &x, 1);
    qo_val nx = qo_node_output(g, rn, 0);
    qo_val_set_name(g, nx, "nx");
    qo_node ifn = qo_node_new(g, QO_OP_IF, NULL, NULL, 1, &cond, 1);
    qo_graph *tb = qo_graph_new(m, g, ifn, "then");
    qo_val cap = qo_graph_add_capture(tb, "nx", f32t(m, 1, &d2));
    qo_node tr = qo_node_new(tb, QO_OP_RELU, NULL, NULL, 1, &cap, 1);
    qo_graph_add_output(tb, qo_node_output(tb, tr, 0));
    qo_graph *eb = qo_graph_new(m, g, ifn, "else");
    qo_val cap2 = qo_graph_add_capture(eb, "x", f32t(m, 1, &d2));
    qo_node er = qo_node_new(eb, QO_OP_ABS, NULL, NULL, 1, &cap2, 1);
    qo_graph_add_output(eb, qo_node_output(eb, er, 0));
    qo_attr a = {.name = qo_intern(m, "then_branch"), .kind = QO_ATTR_GRAPH, .u.g = tb->index};
    qo_node_set_attr(g, ifn, &a);
    a.name = qo_intern(m, "else_branch");
    a.u.g = eb->index;
    qo_node_set_attr(g, ifn, &a);
    qo_graph_add_output(g, qo_node_output(g, ifn, 0));

    qo_tensor tc, tx, out;
    qo_tensor_make(&cx, &tc, QO_BOOL, 0, NULL);
    qo_tensor_make(&cx, &tx, QO_F32, 1, &d2);
    ((float *)tx.data)[0] = -3;
    ((float *)tx.data)[1] = 4;
    const qo_tensor *ins[2] = {&tc, &tx};
    *(uint8_t *)tc.data = 1;
    qo_status s = qo_interp_run(&cx, m, ins, 2, &out, 1);
    CHECK(s == QO_OK && ((float *)out.data)[0] == 3 && ((float *)out.data)[1] == 0, "If then: relu(-x)");
    qo_tensor_free(&out);
    *(uint8_t *)tc.data = 0;
    s = qo_interp_run(&cx, m, ins, 2, &out, 1);
    CHECK(s == QO_OK && ((float *)out.data)[0] == 3 && ((float *)out.data)[1] == 4, "If else: abs(x)");
    qo_tensor_free(&out);
    qo_module_free(m);

    /* Loop(M=3, cond="", acc) body: acc' = acc + x (captured); scan output = acc' */
    m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    g = qo_graph_new(m, NULL, 0, "main");
    qo_val M = qo_graph_add_input(g, "M", qo_type_tensor(m, QO_I64, 0, NULL, NULL));
    x = qo_graph_add_input(g, "x", f32t(m, 1, &d2));
    qo_val acc0 = qo_graph_add_input(g, "acc0", f32t(m, 1, &d2));
    qo_val lin[3] = {M, 0, acc0};
    qo_node ln = qo_node_new(g, QO_OP_LOOP, NULL, NULL, 3, lin, 2);
    qo_graph *body = qo_graph_new(m, g, ln, "body");
    qo_graph_add_input(body, "i", qo_type_tensor(m, QO_I64, 0, NULL, NULL));
    qo_val bc = qo_graph_add_input(body, "c", qo_type_tensor(m, QO_BOOL, 0, NULL, NULL));
    qo_val ba = qo_graph_add_input(body, "a", f32t(m, 1, &d2));
    qo_val bx = qo_graph_add_capture(body, "x", f32t(m, 1, &d2));
    qo_val addin[2] = {ba, bx};
    qo_node add = qo_node_new(body, QO_OP_ADD, NULL, NULL, 2, addin, 1);
    body->vals[qo_node_output(body, add, 0)].type = f32t(m, 1, &d2); /* shapes the empty scan output */
    qo_node idn = qo_node_new(body, QO_OP_IDENTITY, NULL, NULL, 1, &bc, 1);
    qo_graph_add_output(body, qo_node_output(body, idn, 0));
    qo_graph_add_output(body, qo_node_output(body, add, 0));
    qo_graph_add_output(body, qo_node_output(body, add, 0));
    a.name = qo_intern(m, "body");
    a.u.g = body->index;
    qo_node_set_attr(g, ln, &a);
    qo_graph_add_output(g, qo_node_output(g, ln, 0));
    qo_graph_add_output(g, qo_node_output(g, ln, 1));
    qo_tensor tm, ta, outs[2];
    qo_tensor_make(&cx, &tm, QO_I64, 0, NULL);
    *(int64_t *)tm.data = 3;
    qo_tensor_make(&cx, &ta, QO_F32, 1, &d2);
    const qo_tensor *lins[3] = {&tm, &tx, &ta};
    reset();
    s = qo_interp_run(&cx, m, lins, 3, outs, 2);
    CHECK(s == QO_OK, "loop runs");
    if (s == QO_OK) {
        const float *f = outs[0].data, *sc = outs[1].data;
        CHECK(f[0] == -9 && f[1] == 12, "loop carried %g %g", f[0], f[1]);
        CHECK(outs[1].rank == 2 && outs[1].dims[0] == 3 && outs[1].dims[1] == 2 && sc[0] == -3 && sc[2] == -6 &&
                  sc[5] == 12,
              "scan output stacked");
    }
    qo_tensor_free(&outs[0]);
    qo_tensor_free(&outs[1]);
    *(int64_t *)tm.data = 0;
    s = qo_interp_run(&cx, m, lins, 3, outs, 2);
    CHECK(s == QO_OK && ((float *)outs[0].data)[0] == 0 && outs[1].rank == 2 && outs[1].dims[0] == 0 &&
              outs[1].dims[1] == 2,
          "zero iterations");
    qo_tensor_free(&outs[0]);
    qo_tensor_free(&outs[1]);
    qo_module_free(m);
    qo_tensor_free(&tm);
    qo_tensor_free(&ta);
    qo_tensor_free(&tc);
    qo_tensor_free(&tx);
}

/* A chain of 64 Relu nodes over an 8 MiB tensor: with intermediates freed after their last use the
 * peak stays near two tensors; keeping them all would add 512 MiB. (Skipped under AddressSanitizer,
 * whose quarantine keeps freed memory resident.) */
static void test_interp_memory(void) {
#if defined(__SANITIZE_ADDRESS__)
    return;
#endif
    reset();
    qo_module *m = qo_module_new();
    qo_module_set_opset(m, "", 13);
    qo_graph *g = qo_graph_new(m, NULL, 0, "main");
    int64_t d = 2 * 1024 * 1024;
    qo_val v = qo_graph_add_input(g, "x", f32t(m, 1, &d));
    for (int i = 0; i < 64; i++) v = qo_node_output(g, qo_node_new(g, QO_OP_RELU, NULL, NULL, 1, &v, 1), 0);
    qo_graph_add_output(g, v);
    qo_tensor in, out;
    qo_tensor_make(&cx, &in, QO_F32, 1, &d);
    memset(in.data, 0x3f, in.nbytes);
    const qo_tensor *ins[1] = {&in};
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    qo_status s = qo_interp_run(&cx, m, ins, 1, &out, 1);
    getrusage(RUSAGE_SELF, &r1);
    long grew_mb = (r1.ru_maxrss - r0.ru_maxrss) / 1024;
    CHECK(s == QO_OK && ((float *)out.data)[d - 1] > 0, "relu chain runs");
    CHECK(grew_mb < 128, "peak memory grew by %ld MiB over a 64-node chain of 8 MiB tensors", grew_mb);
    qo_tensor_free(&out);
    qo_tensor_free(&in);
    qo_module_free(m);
}

int main(void) {
    test_tensor();
    test_from_const();
    test_npy_roundtrip();
    test_npy_malformed();
    test_tensor_pb();
    test_interp_checks();
    test_interp_control();
    test_interp_memory();
    printf("%u passed, %u failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
