/* ir/ops.c — the op table (from ops.def), element-type and rounding-mode names. */
#include "ir.h"

#include <string.h>
#include <strings.h>

static const qo_opinfo op_table[QO_OP_COUNT] = {
    [QO_OP_UNKNOWN] = {"", 0, 0, -1, 0, -1, 0},
#define QO_OP(e, name, dom, imin, imax, omin, omax, flags)                                          \
    [QO_OP_##e] = {name, dom, imin, imax, omin, omax, flags},
#include "ops.def"
#undef QO_OP
};

const qo_opinfo *qo_op_info(qo_op op) {
    QO_ASSERT((unsigned)op < QO_OP_COUNT);
    return &op_table[op];
}

bool qo_domain_is_qonnx(const char *d) {
    static const char *const roots[] = {"qonnx.custom_op.general", "onnx.brevitas",
                                        "finn.custom_op.general"};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        size_t n = strlen(roots[i]);
        if (strncmp(d, roots[i], n) == 0 && (d[n] == 0 || d[n] == '.')) return true;
    }
    return false;
}

qo_op qo_op_lookup(const char *domain, const char *op_type) {
    int dom;
    if (!domain || !domain[0] || strcmp(domain, "ai.onnx") == 0) dom = D_ONNX;
    else if (qo_domain_is_qonnx(domain)) dom = D_QONNX;
    else if (strcmp(domain, "ai.qopt.train") == 0) dom = D_TRAIN;
    else return QO_OP_UNKNOWN;
    /* qonnx treats IntQuant as the current name of Quant */
    if (dom == D_QONNX && strcmp(op_type, "IntQuant") == 0) return QO_OP_QONNX_QUANT;
    for (int i = 1; i < QO_OP_COUNT; i++)
        if (op_table[i].dom == dom && strcmp(op_table[i].name, op_type) == 0) return (qo_op)i;
    return QO_OP_UNKNOWN;
}

static const char *const elem_names[QO_ELEM_COUNT] = {
    [QO_UNDEF] = "undef", [QO_F32] = "f32", [QO_U8] = "u8", [QO_I8] = "i8", [QO_U16] = "u16",
    [QO_I16] = "i16", [QO_I32] = "i32", [QO_I64] = "i64", [QO_STR] = "str", [QO_BOOL] = "bool",
    [QO_F16] = "f16", [QO_F64] = "f64", [QO_U32] = "u32", [QO_U64] = "u64", [QO_C64] = "c64",
    [QO_C128] = "c128", [QO_BF16] = "bf16", [QO_F8E4M3FN] = "f8e4m3fn",
    [QO_F8E4M3FNUZ] = "f8e4m3fnuz", [QO_F8E5M2] = "f8e5m2", [QO_F8E5M2FNUZ] = "f8e5m2fnuz",
    [QO_U4] = "u4", [QO_I4] = "i4", [QO_F4E2M1] = "f4e2m1",
};
static const unsigned char elem_bits[QO_ELEM_COUNT] = {
    [QO_F32] = 32, [QO_U8] = 8, [QO_I8] = 8, [QO_U16] = 16, [QO_I16] = 16, [QO_I32] = 32,
    [QO_I64] = 64, [QO_BOOL] = 8, [QO_F16] = 16, [QO_F64] = 64, [QO_U32] = 32, [QO_U64] = 64,
    [QO_C64] = 64, [QO_C128] = 128, [QO_BF16] = 16, [QO_F8E4M3FN] = 8, [QO_F8E4M3FNUZ] = 8,
    [QO_F8E5M2] = 8, [QO_F8E5M2FNUZ] = 8, [QO_U4] = 4, [QO_I4] = 4, [QO_F4E2M1] = 4,
};

const char *qo_elem_name(int e) { return e >= 0 && e < QO_ELEM_COUNT ? elem_names[e] : NULL; }

qo_elem qo_elem_from_name(const char *s, size_t n) {
    for (int i = 1; i < QO_ELEM_COUNT; i++)
        if (strlen(elem_names[i]) == n && memcmp(elem_names[i], s, n) == 0) return (qo_elem)i;
    return QO_UNDEF;
}

int qo_elem_bits(int e) { return e >= 0 && e < QO_ELEM_COUNT ? elem_bits[e] : 0; }

size_t qo_elem_storage(int e, int64_t n) {
    int b = qo_elem_bits(e);
    if (n <= 0 || b == 0) return 0;
    return b == 4 ? (size_t)(n + 1) / 2 : (size_t)n * (size_t)(b / 8);
}

static const char *const round_names[QO_ROUND_COUNT] = {
    "half_even", "half_up", "half_down", "ceil", "floor", "up", "down", "half_pos_inf", "dpu",
};
const char *qo_round_name(qo_round r) { return (unsigned)r < QO_ROUND_COUNT ? round_names[r] : "?"; }
int qo_round_from_name(const char *s) {
    if (strcasecmp(s, "round") == 0) return QO_ROUND_HALF_EVEN;
    for (int i = 0; i < QO_ROUND_COUNT; i++)
        if (strcasecmp(s, round_names[i]) == 0) return i;
    return -1;
}

static const char *const attr_kind_names[] = {
    "undef", "float", "int", "string", "tensor", "graph", "floats", "ints", "strings",
    "tensors", "graphs", "sparse_tensor", "sparse_tensors", "type_proto", "type_protos",
};
const char *qo_attr_kind_name(int k) {
    return k >= 0 && k < (int)(sizeof attr_kind_names / sizeof *attr_kind_names) ? attr_kind_names[k]
                                                                                 : "invalid";
}
