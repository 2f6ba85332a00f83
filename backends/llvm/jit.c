/* backends/llvm/jit.c — the LLVM 19 JIT: specialize a graph to static shapes, plan one arena, fuse
 * elementwise chains into generated loop nests, call runtime kernels for everything else, optimize
 * for the host CPU and run with ORC LLJIT.
 *
 * Compilation (qo_jit_compile):
 *   1. a private copy of the module (printed and parsed back) gets the input shapes and runs
 *      shape-infer + const-fold; every value a step reads or writes must end with a static shape;
 *   2. grouping: walking the nodes backwards, every node with a native lowering (lower_ok) roots a
 *      group and absorbs the lowerable producers whose result has the group's output shape and is
 *      read only inside the group (and is no graph output): one loop nest computes the group's
 *      root, intermediates stay in registers. Before that, every node an optimized kernel covers
 *      (runtime/kernels: Conv, ConvTranspose, Gemm, MatMul, pools, Softmax) on static float32
 *      shapes is planned once (qo_k_node_plan) and becomes a kcall step that runs the kernel
 *      straight on the planned buffers; a following Add (MatMul: of a [N] bias; any: of a
 *      same-shaped tensor, the residual) and Relu/Clip whose input has no other reader are fused
 *      into its epilogue (one float op each, in the unfused order, so the result is the same).
 *      Other nodes become kernel steps (the reference kernel through the trampoline jit_call) or
 *      copy steps (Reshape and friends: a memcpy);
 *      If/Loop/Scan are kernel steps too: jit_call hands them to the interpreter (qo_interp_run_node)
 *      with views of the buffers of every value their bodies capture (kept materialized and alive
 *      until the node runs); their outputs, and what is computed from them without a static shape,
 *      get run-time shapes on the heap (L_DYN), with or without allow_dynamic;
 *   3. memory plan: each materialized intermediate gets an arena offset from its lifetime in steps
 *      (greedy by size, best-fitting gap among the buffers whose lifetimes overlap); graph outputs
 *      defined by a step are written in place into the caller's buffers; a Reshape-like copy and a
 *      QuantGrad's dX share their input's (dY's) buffer when nothing reads it afterwards;
 *   4. codegen: one internal function per group (noalias pointer parameters, strided numpy
 *      broadcasting with dimensions coalesced so the innermost loop is contiguous) and a main
 *      function `qo_main(void **addr, qo_jit *j)` that runs the steps in order; `addr[v]` holds the
 *      buffer of value v. Scalar math uses LLVM instructions and intrinsics only where they are
 *      exact (IEEE + - * /, sqrt, fabs, floor, ceil, trunc, roundeven, compares, selects); every
 *      libm function (expf, tanhf, fmaxf, ...) is called at its address, and erf is qo_erff's
 *      polynomial (runtime/ref/erf.h) emitted inline, so results are bit for bit those of the
 *      reference kernels (runtime/ref/elementwise.c, quant.c);
 *   5. the module is optimized with default<O3> for the host CPU and features and added to LLJIT.
 * No fast-math flags are ever set: LLVM keeps IEEE semantics (no contraction, no reassociation). */
#include "backends/llvm/jit.h"

#include "passes/pass.h"
#include "runtime/ref/erf.h"
#include "runtime/ref/util.h"
#if defined(__has_include)
#if __has_include("runtime/kernels/kernels.h")
#include "runtime/kernels/kernels.h"
#include "runtime/kernels/train_kernels.h"
#define QO_JIT_OPT_KERNELS 1
#endif
#endif

#include <float.h>
#include <inttypes.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- compiled state --------------------------------------------------------------------------- */
enum { L_NONE = 0, L_CONST, L_INPUT, L_ARENA, L_OUTPUT, L_REG, L_DYN };
enum { S_LOOP = 1, S_KERNEL, S_COPY, S_KCALL };

typedef struct vinfo {
    uint8_t elem;
    uint8_t loc;       /* L_* */
    uint8_t is_static; /* a tensor type with static shape */
    int32_t rank;
    int64_t dims[QO_MAX_RANK];
    int64_t numel;
    size_t nbytes;
    uint32_t idx;      /* L_INPUT/L_OUTPUT: graph input/output index */
    size_t off;        /* L_ARENA: offset */
    int32_t def, last; /* lifetime in steps */
    qo_val alias;      /* L_ARENA: the value whose buffer this one shares (a copy op's input), 0 = own */
} vinfo;

typedef struct step {
    uint8_t kind;
    qo_node node;   /* kernel/copy node, or the group root */
    uint32_t group; /* S_LOOP: group index; S_KCALL: kcall index */
} step;

/* A heavy op resolved at compile time (runtime/kernels qo_k_plan) and called on the planned buffers,
 * with the elementwise ops that follow it fused into its epilogue: for MatMul an Add of a [N] bias,
 * then an Add of a same-shaped tensor (residual), then Relu or Clip (constant bounds), or for
 * MatMul a Div by a constant or the erf GELU chain (gelu_chain), then a last-axis Softmax or
 * LayerNormalization (constant Scale/B). Each fused op's input from the
 * chain has that op as its only reader (the GELU's x: the Div and the Mul). A MatMul also reads
 * Transposes feeding it and writes through a Transpose after it by strides (pro, tout); MatMuls
 * run plan MATMUL_STRIDED. */
#define KC_MAX_CHAIN 8
typedef struct kcall {
    qo_node chain[KC_MAX_CHAIN]; /* the heavy node, then the fused nodes in order */
    uint32_t nchain;
    qo_val out;  /* the value written: the last chain node's output */
    qo_val bias; /* MatMul: the fused bias Add's operand (0 = none) */
    qo_val res;  /* the fused residual Add's operand (0 = none) */
    qo_node pro[2]; /* MatMul: Transposes folded into operand A / B (plan MATMUL_STRIDED; 0 = none) */
    qo_val src[2];  /* the buffers A and B are read from (the heavy node's inputs, or the Transposes') */
    uint8_t tout;   /* chain[1] is a Transpose folded into the MatMul's result */
    qo_node sib;    /* ConvTranspose: the 1x1 sibling ConvTranspose whose output the fused Add adds
                       (sib_convt): run inside this call from its inputs (x2, w2), never on its own;
                       Conv: the 1x1 sibling Conv on the same input (sib_conv), written to out2 */
    qo_node sib_act; /* Conv: the sibling's fused Relu/Clip (0 = none) */
    qo_val out2;     /* Conv: the sibling's value written (its act's output, or its own) */
    qo_node qgn;     /* ConvTranspose: the QuantGrad fused last in the chain (qg_epilogue; 0 = none) */
    qo_val qg_ds;    /* ... its dScale, written too (0 = not wanted) */
#ifdef QO_JIT_OPT_KERNELS
    qo_k_plan plan;
    qo_k_qgrad qg;   /* qgn's attributes (its operands' addresses and values are read per call) */
#endif
} kcall;

/* Two ConvGradWeights on the same input, a convolution with a centered odd kernel (a) and a 1x1
 * sibling with its strides (b: ResNet's downsample), run as one step (qo_k_convgradweight_sib_f32:
 * one im2col) where the later of the two runs; the earlier one's output is read only after that. */
typedef struct cgw_pair {
    qo_node a, b, early, late;
#ifdef QO_JIT_OPT_KERNELS
    qo_k_conv_params pa;
#endif
    int64_t M2;
} cgw_pair;

typedef struct group {
    qo_node root;
    qo_node *members; /* program order */
    uint32_t nmembers;
} group;

struct qo_jit {
    qo_ctx *cx;
    bool fast_conv; /* qo_jit_opts.fast_conv */
    qo_module *m; /* private specialized copy */
    qo_graph *g;
    int64_t opset;
    vinfo *vi;
    uint32_t nvals;
    step *steps;
    uint32_t nsteps;
    group *groups;
    uint32_t ngroups;
    kcall *kcalls;
    uint32_t nkcalls;
    uint32_t *kc_of;     /* per node id: 1 + index of the kcall it belongs to (0 = none) */
    cgw_pair *pairs;
    uint32_t npairs;
    uint32_t *pair_of;   /* per node id: 1 + index of its cgw_pair (0 = none) */
    void **addr;
    qo_tensor *dyn;      /* per value id: L_DYN values, owned, valid during a run */
    qo_tensor *consts;   /* per value id: constant views */
    qo_tensor *defaults; /* per graph input: default initializer views */
    uint8_t *out_inplace;
    uint8_t *captured;   /* per value id: read (by name) by the body of an If/Loop/Scan node */
    uint8_t *ctrl_out;   /* per value id: run-time shaped because of an If/Loop/Scan node: its outputs and
                          * the values without a static shape computed from them (L_DYN) */
    char *arena;
    size_t arena_bytes; /* as allocated (qo_free_big) */
    LLVMOrcLLJITRef lljit;
#ifdef QO_JIT_OPT_KERNELS
    qo_pool *pool; /* threads of the optimized kernels */
#endif
    int32_t (*fn)(void **addr, qo_jit *j);
    uint32_t par_loops; /* elementwise loops split over the kernel threads */
    qo_jit_stats st;
};

/* ---- small helpers ---------------------------------------------------------------------------- */
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static qo_loc graph_loc(const qo_module *m) {
    qo_loc l = {.file = m->source_path ? qo_str(m, m->source_path) : NULL, .node_index = -1};
    return l;
}

static qo_status llvm_err(qo_ctx *cx, const qo_loc *l, LLVMErrorRef e, const char *what) {
    char *msg = LLVMGetErrorMessage(e); /* consumes e */
    qo_status s = qo_error(cx, QO_ERR_BACKEND, l, "LLVM: %s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return s;
}

static void fmt_shape(int elem, int32_t rank, const int64_t *dims, char *buf, size_t cap) {
    size_t k = (size_t)snprintf(buf, cap, "%s[", qo_elem_name(elem) ? qo_elem_name(elem) : "?");
    for (int32_t i = 0; i < rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? "," : "", dims[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static bool same_shape(const vinfo *a, const vinfo *b) {
    if (a->rank != b->rank) return false;
    for (int32_t d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    return true;
}

/* ---- lowering rules --------------------------------------------------------------------------- */
static bool is_reg_elem(int e) {
    switch (e) {
    case QO_F32: case QO_F64: case QO_BOOL: case QO_I8: case QO_U8: case QO_I16: case QO_U16: case QO_I32:
    case QO_U32: case QO_I64: case QO_U64: case QO_I4: case QO_U4: return true;
    default: return false;
    }
}
static bool is_signed_int(int e) { return e == QO_I8 || e == QO_I16 || e == QO_I32 || e == QO_I64 || e == QO_I4; }

static const vinfo *in_vi(const qo_jit *j, qo_node n, uint32_t i) {
    qo_val v = qo_node_input(j->g, n, i);
    return v ? &j->vi[v] : NULL;
}
static const vinfo *out_vi(const qo_jit *j, qo_node n) {
    qo_val v = qo_node_output(j->g, n, 0);
    return v ? &j->vi[v] : NULL;
}

static bool is_float_unary(qo_op op) {
    switch (op) {
    case QO_OP_ABS: case QO_OP_NEG: case QO_OP_SQRT: case QO_OP_EXP: case QO_OP_LOG: case QO_OP_RECIPROCAL:
    case QO_OP_FLOOR: case QO_OP_CEIL: case QO_OP_ROUND: case QO_OP_ERF: case QO_OP_TANH: case QO_OP_SIGMOID:
    case QO_OP_HARDSIGMOID: case QO_OP_HARDSWISH: case QO_OP_RELU: case QO_OP_LEAKYRELU: case QO_OP_ELU:
    case QO_OP_SELU: case QO_OP_CELU: case QO_OP_THRESHOLDEDRELU: case QO_OP_SOFTPLUS: case QO_OP_SOFTSIGN:
    case QO_OP_MISH: case QO_OP_GELU: case QO_OP_SHRINK: case QO_OP_SIGN: case QO_OP_SIN: case QO_OP_COS:
    case QO_OP_TAN: case QO_OP_ASIN: case QO_OP_ACOS: case QO_OP_ATAN: case QO_OP_SINH: case QO_OP_COSH:
    case QO_OP_ASINH: case QO_OP_ACOSH: case QO_OP_ATANH: return true;
    default: return false;
    }
}

/* Quantize/DequantizeLinear parameters: per-tensor (axis < 0) or per-axis (axis >= 0); false when
 * the form is one the generated code does not handle (blocked, float8, bad shapes). */
static bool qlinear_axis(const qo_jit *j, qo_node n, int32_t *axis) {
    const vinfo *x = in_vi(j, n, 0), *s = in_vi(j, n, 1), *z = qo_node_get(j->g, n)->nin > 2 ? in_vi(j, n, 2) : NULL;
    if (!x || !s) return false;
    if (j->opset >= 21 && qo_attr_int(j->g, n, "block_size", 0) != 0) return false;
    if (z && z->numel != s->numel) return false;
    if (s->rank == 0 || (s->rank == 1 && s->numel == 1)) {
        *axis = -1;
        return true;
    }
    if (j->opset < 13 || s->rank != 1 || x->rank == 0) return false;
    int64_t a = qo_attr_int(j->g, n, "axis", 1);
    if (a < -x->rank || a >= x->rank) return false;
    if (a < 0) a += x->rank;
    if (s->dims[0] != x->dims[a]) return false;
    if (z && (z->rank != 1 || z->dims[0] != s->dims[0])) return false;
    *axis = (int32_t)a;
    return true;
}

static bool qrange(int e, int64_t *lo, int64_t *hi) {
    switch (e) {
    case QO_U8: *lo = 0; *hi = 255; return true;
    case QO_I8: *lo = -128; *hi = 127; return true;
    case QO_U16: *lo = 0; *hi = 65535; return true;
    case QO_I16: *lo = -32768; *hi = 32767; return true;
    case QO_U4: *lo = 0; *hi = 15; return true;
    case QO_I4: *lo = -8; *hi = 7; return true;
    case QO_I32: *lo = INT32_MIN; *hi = INT32_MAX; return true;
    default: return false;
    }
}

/* A constant scalar input's value as double (bitwidths); false if not a constant. */
static bool const_scalar(const qo_jit *j, qo_val v, double *out) {
    if (!v || !(j->g->vals[v].flags & QO_VAL_CONST) || (j->g->vals[v].flags & QO_VAL_INPUT)) return false;
    const qo_tensor *t = &j->consts[v];
    if (qo_tensor_numel(t) != 1 || !t->data) return false;
    *out = qo_load_f64(t->data, t->elem, 0);
    return true;
}

/* Cast types lowered natively (uint32/uint64 targets follow onnxruntime's unsigned conversion
 * sequences and stay with the reference kernel). */
static bool cast_elem_ok(int e) {
    return e == QO_F32 || e == QO_F64 || e == QO_BOOL || e == QO_I8 || e == QO_U8 || e == QO_I16 || e == QO_U16 ||
           e == QO_I32 || e == QO_I64;
}

/* Node n's rounding_mode attribute as a qo_round (half-even when absent), -1 if the name is unknown. */
static int node_round_mode(const qo_graph *g, qo_node n) {
    const qo_attr *ra = qo_node_attr(g, n, "rounding_mode");
    if (!ra || ra->kind != QO_ATTR_STRING) return QO_ROUND_HALF_EVEN;
    char buf[32];
    size_t k = ra->u.s.n < sizeof buf - 1 ? ra->u.s.n : sizeof buf - 1;
    memcpy(buf, ra->u.s.p, k);
    buf[k] = 0;
    return qo_round_from_name(buf);
}

/* The node can be emitted as scalar code inside a loop nest (types and attribute forms checked). */
static bool lower_ok(const qo_jit *j, qo_node n) {
    const qo_nodedata *nd = qo_node_get(j->g, n);
    qo_op op = (qo_op)nd->op;
    if (op == QO_OP_UNKNOWN || nd->nout != 1) return false;
    const vinfo *o = out_vi(j, n);
    if (!o || !o->is_static) return false;
    for (uint32_t i = 0; i < nd->nin; i++) {
        const vinfo *x = in_vi(j, n, i);
        if (x && (!x->is_static || !is_reg_elem(x->elem))) return false;
    }
    if (!is_reg_elem(o->elem)) return false;
    const vinfo *x = nd->nin ? in_vi(j, n, 0) : NULL;
    if (!x && op != QO_OP_UNKNOWN) return false;
    if (is_float_unary(op)) {
        if (nd->nin != 1 || x->elem != QO_F32 || o->elem != QO_F32) return false;
        if (op == QO_OP_GELU) {
            const qo_attr *a = qo_node_attr(j->g, n, "approximate");
            if (a && a->kind == QO_ATTR_STRING && !(a->u.s.n == 4 && !memcmp(a->u.s.p, "none", 4)) &&
                !(a->u.s.n == 4 && !memcmp(a->u.s.p, "tanh", 4)))
                return false;
        }
        return true;
    }
    switch (op) {
    case QO_OP_NOT: return x->elem == QO_BOOL && o->elem == QO_BOOL;
    case QO_OP_ISNAN: case QO_OP_ISINF: return x->elem == QO_F32 && o->elem == QO_BOOL;
    case QO_OP_ADD: case QO_OP_SUB: case QO_OP_MUL: case QO_OP_DIV: case QO_OP_POW:
        return nd->nin == 2 && in_vi(j, n, 1) && x->elem == QO_F32 && in_vi(j, n, 1)->elem == QO_F32 &&
               o->elem == QO_F32;
    case QO_OP_PRELU:
        return j->opset >= 7 && nd->nin == 2 && in_vi(j, n, 1) && x->elem == QO_F32 &&
               in_vi(j, n, 1)->elem == QO_F32 && o->elem == QO_F32;
    case QO_OP_SUM: case QO_OP_MEAN: case QO_OP_MIN: case QO_OP_MAX:
        for (uint32_t i = 0; i < nd->nin; i++)
            if (!in_vi(j, n, i) || in_vi(j, n, i)->elem != QO_F32) return false;
        return o->elem == QO_F32;
    case QO_OP_AND: case QO_OP_OR: case QO_OP_XOR:
        return nd->nin == 2 && in_vi(j, n, 1) && x->elem == QO_BOOL && in_vi(j, n, 1)->elem == QO_BOOL;
    case QO_OP_EQUAL: case QO_OP_LESS: case QO_OP_GREATER: case QO_OP_LESSOREQUAL: case QO_OP_GREATEROREQUAL: {
        if (nd->nin != 2 || !in_vi(j, n, 1) || in_vi(j, n, 1)->elem != x->elem || o->elem != QO_BOOL) return false;
        if (x->elem == QO_BOOL) return op == QO_OP_EQUAL;
        return true;
    }
    case QO_OP_WHERE:
        return nd->nin == 3 && in_vi(j, n, 1) && in_vi(j, n, 2) && x->elem == QO_BOOL &&
               in_vi(j, n, 1)->elem == in_vi(j, n, 2)->elem && o->elem == in_vi(j, n, 1)->elem;
    case QO_OP_CLIP:
        if (x->elem != QO_F32 || o->elem != QO_F32) return false;
        for (uint32_t i = 1; i < nd->nin; i++) {
            const vinfo *b = in_vi(j, n, i);
            if (b && (b->elem != QO_F32 || b->numel != 1)) return false;
        }
        return true;
    case QO_OP_CAST: {
        const qo_attr *a = qo_node_attr(j->g, n, "to");
        if (!a || a->kind != QO_ATTR_INT || a->u.i != o->elem) return false;
        return cast_elem_ok(x->elem) && cast_elem_ok(o->elem);
    }
    case QO_OP_QUANTIZELINEAR: {
        int32_t axis;
        int64_t lo, hi;
        const vinfo *s = in_vi(j, n, 1), *z = nd->nin > 2 ? in_vi(j, n, 2) : NULL;
        if (!s || x->elem != QO_F32 || s->elem != QO_F32 || !qlinear_axis(j, n, &axis)) return false;
        if (z && z->elem != o->elem) return false;
        if (o->elem == QO_I32 || !qrange(o->elem, &lo, &hi)) return false;
        return j->opset >= 21 || o->elem == QO_U8 || o->elem == QO_I8;
    }
    case QO_OP_DEQUANTIZELINEAR: {
        int32_t axis;
        int64_t lo, hi;
        const vinfo *s = in_vi(j, n, 1), *z = nd->nin > 2 ? in_vi(j, n, 2) : NULL;
        if (!s || s->elem != QO_F32 || o->elem != QO_F32 || !qlinear_axis(j, n, &axis)) return false;
        if (!qrange(x->elem, &lo, &hi) || (z && z->elem != x->elem)) return false;
        return j->opset >= 21 || x->elem == QO_U8 || x->elem == QO_I8 || x->elem == QO_I32;
    }
    case QO_OP_QONNX_QUANT: {
        double bw;
        const qo_attr *na = qo_node_attr(j->g, n, "narrow");
        if (nd->nin < 4 || !na || na->kind != QO_ATTR_INT || !const_scalar(j, qo_node_input(j->g, n, 3), &bw)) return false;
        if (!(bw >= 1 && bw <= 64) || bw != floor(bw)) return false;
        for (uint32_t i = 0; i < 3; i++)
            if (!in_vi(j, n, i) || in_vi(j, n, i)->elem != QO_F32) return false;
        if (node_round_mode(j->g, n) < 0) return false;
        return o->elem == QO_F32;
    }
    case QO_OP_QONNX_BIPOLARQUANT:
        return nd->nin == 2 && in_vi(j, n, 1) && x->elem == QO_F32 && in_vi(j, n, 1)->elem == QO_F32 &&
               o->elem == QO_F32;
    default: return false;
    }
}

/* The shape operand i is read with inside a loop over the node's output (numpy broadcasting); the
 * per-axis scale/zero point of Quantize/DequantizeLinear is laid along its axis. */
static void operand_shape(const qo_jit *j, qo_node n, uint32_t i, int32_t *rank, int64_t *dims) {
    const vinfo *x = in_vi(j, n, i);
    qo_op op = (qo_op)qo_node_get(j->g, n)->op;
    if ((op == QO_OP_QUANTIZELINEAR || op == QO_OP_DEQUANTIZELINEAR) && i > 0) {
        int32_t axis = -1;
        qlinear_axis(j, n, &axis);
        if (axis < 0) {
            *rank = 0;
            return;
        }
        const vinfo *d = in_vi(j, n, 0);
        *rank = d->rank;
        for (int32_t k = 0; k < d->rank; k++) dims[k] = k == axis ? d->dims[k] : 1;
        return;
    }
    if (op == QO_OP_CLIP && i > 0) {
        *rank = 0;
        return;
    }
    *rank = x->rank;
    for (int32_t k = 0; k < x->rank; k++) dims[k] = x->dims[k];
}

static bool broadcasts_to(int32_t r, const int64_t *d, const vinfo *o) {
    if (r > o->rank) return false;
    for (int32_t k = 0; k < r; k++) {
        int64_t e = d[k], t = o->dims[o->rank - r + k];
        if (e != 1 && e != t) return false;
    }
    return true;
}

static bool lowerable(const qo_jit *j, qo_node n) {
    if (!lower_ok(j, n)) return false;
    const vinfo *o = out_vi(j, n);
    const qo_nodedata *nd = qo_node_get(j->g, n);
    for (uint32_t i = 0; i < nd->nin; i++) {
        if (!qo_node_input(j->g, n, i)) continue;
        int32_t r;
        int64_t d[QO_MAX_RANK];
        operand_shape(j, n, i, &r, d);
        if (!broadcasts_to(r, d, o)) return false;
    }
    return true;
}

static bool is_copy_op(const qo_jit *j, qo_node n) {
    const qo_nodedata *nd = qo_node_get(j->g, n);
    switch (nd->op) {
    case QO_OP_RESHAPE: case QO_OP_FLATTEN: case QO_OP_SQUEEZE: case QO_OP_UNSQUEEZE: case QO_OP_IDENTITY: break;
    case QO_OP_DROPOUT:
        for (uint32_t i = 1; i < nd->nout; i++)
            if (qo_node_output(j->g, n, i)) return false;
        if (nd->nin > 2 && qo_node_input(j->g, n, 2)) return false; /* training_mode given */
        break;
    default: return false;
    }
    const vinfo *x = in_vi(j, n, 0), *o = out_vi(j, n);
    return x && o && x->is_static && o->is_static && x->elem == o->elem && x->numel == o->numel &&
           qo_rt_elem_size(x->elem) > 0;
}

/* Appends printf-formatted text to the heap string *p of length *len. */
static void str_add(char **p, size_t *len, const char *fmt, ...) QO_PRINTF(3, 4);
static void str_add(char **p, size_t *len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (w <= 0) return;
    *p = qo_realloc(*p, *len + (size_t)w + 1);
    va_start(ap, fmt);
    vsnprintf(*p + *len, (size_t)w + 1, fmt, ap);
    va_end(ap);
    *len += (size_t)w;
}

/* ---- control flow ------------------------------------------------------------------------------ */
static bool is_ctrl(const qo_graph *g, qo_node n) {
    uint16_t op = qo_node_get(g, n)->op;
    return op == QO_OP_IF || op == QO_OP_LOOP || op == QO_OP_SCAN;
}

/* Appends to *vs (deduplicated) the values of g that sub or its nested bodies capture by name. */
static void body_captures(const qo_graph *g, const qo_graph *sub, qo_val **vs, uint32_t *n, uint32_t depth) {
    const qo_module *m = g->m;
    if (depth > 64) return;
    for (uint32_t i = 0; i < sub->ncaptures; i++) {
        qo_val c = sub->captures[i];
        if (sub->vals[c].flags & QO_VAL_DEAD) continue;
        qo_val v = qo_graph_find(g, qo_val_name(sub, c));
        if (!v) continue;
        bool seen = false;
        for (uint32_t k = 0; k < *n && !seen; k++) seen = (*vs)[k] == v;
        if (seen) continue;
        *vs = qo_realloc(*vs, (*n + 1) * sizeof **vs);
        (*vs)[(*n)++] = v;
    }
    QO_FOR_EACH_NODE(sub, k) {
        const qo_nodedata *nd = qo_node_get(sub, k);
        for (uint32_t a = 0; a < nd->nattr; a++) {
            const qo_attr *at = &sub->attrs[nd->attr0 + a];
            if (at->kind == QO_ATTR_GRAPH && at->u.g < m->ngraphs) body_captures(g, m->graphs[at->u.g], vs, n, depth + 1);
        }
    }
}

/* The values of the main graph that the bodies of control-flow node n read (owned array, *n set). */
static qo_val *node_captures(const qo_jit *j, qo_node n, uint32_t *nv) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    qo_val *vs = NULL;
    *nv = 0;
    for (uint32_t a = 0; a < nd->nattr; a++) {
        const qo_attr *at = &g->attrs[nd->attr0 + a];
        if (at->kind == QO_ATTR_GRAPH && at->u.g < j->m->ngraphs) body_captures(g, j->m->graphs[at->u.g], &vs, nv, 0);
    }
    return vs;
}

/* Marks the outputs of control-flow nodes as run-time shaped (and, downstream, the values left
 * without a static shape because of them), and the values their bodies capture. */
static void mark_ctrl(qo_jit *j) {
    const qo_graph *g = j->g;
    j->captured = qo_calloc(g->nvals ? g->nvals : 1, 1);
    j->ctrl_out = qo_calloc(g->nvals ? g->nvals : 1, 1);
    QO_FOR_EACH_NODE(g, n) {
        if (!is_ctrl(g, n)) continue;
        const qo_nodedata *nd = qo_node_get(g, n);
        for (uint32_t r = 0; r < nd->nout; r++) {
            qo_val v = qo_node_output(g, n, r);
            if (!v) continue;
            j->ctrl_out[v] = 1;
            j->vi[v].is_static = 0; /* data-dependent in general: the heap path */
        }
        uint32_t nc;
        qo_val *cs = node_captures(j, n, &nc);
        for (uint32_t k = 0; k < nc; k++) j->captured[cs[k]] = 1;
        free(cs);
    }
    QO_FOR_EACH_NODE(g, n) { /* program order is topological */
        if (is_ctrl(g, n)) continue;
        const qo_nodedata *nd = qo_node_get(g, n);
        bool from = false;
        for (uint32_t i = 0; i < nd->nin && !from; i++) {
            qo_val v = qo_node_input(g, n, i);
            from = v && j->ctrl_out[v];
        }
        for (uint32_t r = 0; from && r < nd->nout; r++) {
            qo_val v = qo_node_output(g, n, r);
            if (v && !j->vi[v].is_static) j->ctrl_out[v] = 1;
        }
    }
}

/* ---- runtime trampoline ----------------------------------------------------------------------- */
static void view_of(const qo_jit *j, qo_val v, qo_tensor *t) {
    const vinfo *x = &j->vi[v];
    if (x->loc == L_DYN) {
        *t = j->dyn[v];
        t->owned = 0;
        return;
    }
    memset(t, 0, sizeof *t);
    t->elem = x->elem;
    t->rank = x->rank;
    for (int32_t d = 0; d < x->rank; d++) t->dims[d] = x->dims[d];
    t->data = x->numel ? j->addr[v] : NULL;
    t->nbytes = x->nbytes;
}

static int32_t run_node(qo_jit *j, qo_node n);

#ifdef QO_JIT_OPT_KERNELS
/* A cgw_pair's step: both gradients from one im2col, straight into their buffers; else (a buffer not
 * planned in the arena) the two nodes one after the other. */
static int32_t run_cgw_pair(qo_jit *j, const cgw_pair *P) {
    const qo_graph *g = j->g;
    qo_val v[5] = {qo_node_input(g, P->a, 0), qo_node_input(g, P->a, 1), qo_node_input(g, P->b, 0),
                   qo_node_output(g, P->a, 0), qo_node_output(g, P->b, 0)};
    bool ok = true;
    for (int i = 0; i < 5; i++)
        ok = ok && j->addr[v[i]] && j->vi[v[i]].loc != L_DYN && j->vi[v[i]].loc != L_NONE;
    if (ok) {
        qo_k_convgradweight_sib_f32(&P->pa, j->addr[v[0]], j->addr[v[1]], j->addr[v[3]], P->M2, j->addr[v[2]],
                                    j->addr[v[4]], j->pool);
        return 0;
    }
    int32_t st = run_node(j, P->early);
    return st ? st : run_node(j, P->late);
}
#endif

/* Runs kernel step si through its reference kernel on views of the planned buffers; outputs are
 * copied into their planned buffers. Returns a qo_status (0 = ok). Called from generated code. */
static int32_t jit_call(qo_jit *j, int32_t si) {
    const step *s = &j->steps[si];
    const qo_graph *g = j->g;
#ifdef QO_JIT_OPT_KERNELS
    if (s->kind == S_KCALL) { /* planned: straight into the buffers */
        const kcall *K = &j->kcalls[s->group];
        qo_node h = K->chain[0];
        const qo_nodedata *hd = qo_node_get(g, h);
        if (!j->vi[K->out].numel || !j->addr[K->out]) return 0;
        const float *in[3] = {NULL, NULL, NULL};
        for (uint32_t i = 0; i < hd->nin && i < 3; i++) {
            qo_val v = i < 2 ? K->src[i] : qo_node_input(g, h, i);
            in[i] = v ? j->addr[v] : NULL;
        }
        bool mm = K->plan.kind == QO_K_PLAN_MATMUL || K->plan.kind == QO_K_PLAN_MATMUL_STRIDED;
        const float *b = mm ? (K->bias ? j->addr[K->bias] : NULL) : in[2];
        if (!K->sib && !K->qgn) {
            qo_k_plan_run(&K->plan, in[0], in[1], b, K->res ? j->addr[K->res] : NULL, j->addr[K->out], j->pool);
            return 0;
        }
        qo_k_plan pl = K->plan;
        if (K->sib && pl.kind == QO_K_PLAN_CONV) {
            qo_val b2 = qo_node_get(g, K->sib)->nin > 2 ? qo_node_input(g, K->sib, 2) : 0;
            pl.u.conv.y2 = j->addr[K->out2];
            pl.u.conv.b2 = b2 ? j->addr[b2] : NULL;
        } else if (K->sib) {
            pl.u.conv.x2 = j->addr[qo_node_input(g, K->sib, 0)];
        }
        if (K->sib) pl.u.conv.w2 = j->addr[qo_node_input(g, K->sib, 1)];
        qo_k_qgrad qg = K->qg;
        if (K->qgn) {
            const float *q[5];
            for (uint32_t i = 1; i < 5; i++) q[i] = j->addr[qo_node_input(g, K->qgn, i)];
            float bits = q[4][0];
            if (!(bits >= 1 && bits <= 32)) {
                qo_loc l = qo_node_loc(g, K->qgn);
                return (int32_t)qo_error(j->cx, QO_ERR_UNSUPPORTED, &l, "QuantGrad: bitwidth %g outside [1, 32]",
                                         (double)bits);
            }
            qg.x = q[1], qg.s = q[2][0], qg.z = q[3][0], qg.bits = (int32_t)bits;
            qg.ds = K->qg_ds ? j->addr[K->qg_ds] : NULL;
            pl.u.conv.qg = &qg;
        }
        qo_k_plan_run(&pl, in[0], in[1], b, K->res ? j->addr[K->res] : NULL, j->addr[K->out], j->pool);
        return 0;
    }
    if (j->pair_of[s->node]) return run_cgw_pair(j, &j->pairs[j->pair_of[s->node] - 1]);
#endif
    return run_node(j, s->node);
}

/* Runs node n (a kernel step's) through the optimized or the reference kernel, as jit_call. */
static int32_t run_node(qo_jit *j, qo_node n) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    qo_ctx *cx = j->cx;
    qo_loc l = qo_node_loc(g, n);
    bool ctrl = is_ctrl(g, n);
    qo_ref_kernel k = ctrl ? NULL : qo_ref_kernel_for((qo_op)nd->op);
    if (!k && !ctrl) return qo_error(cx, QO_ERR_UNSUPPORTED, &l, "no kernel for this op");
    uint32_t nin = nd->nin, nout = nd->nout;
    qo_tensor *views = qo_calloc(nin ? nin : 1, sizeof *views);
    const qo_tensor **in = qo_calloc(nin ? nin : 1, sizeof *in);
    qo_tensor *outs = qo_calloc(nout ? nout : 1, sizeof *outs);
    for (uint32_t i = 0; i < nin; i++) {
        qo_val v = qo_node_input(g, n, i);
        if (!v) continue;
        view_of(j, v, &views[i]);
        in[i] = &views[i];
    }
    qo_kctx kc = {.cx = cx, .g = g, .n = n, .opset = j->opset, .fast_conv = j->fast_conv};
    unsigned nerr = cx->nerrors;
    qo_status st = QO_ERR_UNSUPPORTED;
    if (ctrl) { /* If/Loop/Scan: the interpreter runs the bodies on views of the captured buffers */
        uint32_t nc;
        qo_val *cs = node_captures(j, n, &nc);
        qo_tensor *cv = qo_calloc(nc ? nc : 1, sizeof *cv);
        const qo_tensor **cp = qo_calloc(nc ? nc : 1, sizeof *cp);
        for (uint32_t c = 0; c < nc; c++) {
            view_of(j, cs[c], &cv[c]);
            cp[c] = &cv[c];
        }
        st = qo_interp_run_node(cx, g, n, in, nin, outs, nout, cs, cp, nc);
        free(cp);
        free(cv);
        free(cs);
    }
#ifdef QO_JIT_OPT_KERNELS
    /* the optimized kernel when it covers this node; it declines (no diagnostic) otherwise. Outputs
       arrive as views of their planned buffers, which the training kernels write in place
       (runtime/kernels/train_kernels.h); the others replace them with tensors of their own. */
    if (!ctrl && qo_k_node_supported((qo_op)nd->op)) {
        for (uint32_t i = 0; i < nout; i++) {
            qo_val v = qo_node_output(g, n, i);
            if (v && j->vi[v].loc != L_NONE && j->vi[v].loc != L_DYN && j->vi[v].is_static && j->vi[v].numel)
                view_of(j, v, &outs[i]);
        }
        st = qo_k_node_run(&kc, j->pool, NULL, in, nin, outs, nout);
    }
    if (st == QO_ERR_UNSUPPORTED)
        for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&outs[i]);
#endif
    if (!ctrl && st == QO_ERR_UNSUPPORTED) st = k(&kc, in, nin, outs, nout);
    if (st != QO_OK && cx->nerrors == nerr) st = qo_error(cx, st, &l, "kernel failed (%s)", qo_status_str(st));
    for (uint32_t i = 0; st == QO_OK && i < nout; i++) {
        qo_val v = qo_node_output(g, n, i);
        if (!v || j->vi[v].loc == L_NONE) continue;
        const vinfo *x = &j->vi[v];
        if (x->loc == L_DYN) {
            qo_tensor_free(&j->dyn[v]);
            if (!outs[i].owned && outs[i].data) { /* a view of an input: own a copy */
                st = qo_tensor_copy(cx, &outs[i], &j->dyn[v]);
                if (st != QO_OK) break;
            } else {
                j->dyn[v] = outs[i];
                memset(&outs[i], 0, sizeof outs[i]);
            }
            continue;
        }
        bool same = outs[i].elem == x->elem && outs[i].rank == x->rank && outs[i].nbytes == x->nbytes;
        for (int32_t d = 0; same && d < x->rank; d++) same = outs[i].dims[d] == x->dims[d];
        if (!same) {
            char a[256], b[256];
            fmt_shape(outs[i].elem, outs[i].rank, outs[i].dims, a, sizeof a);
            fmt_shape(x->elem, x->rank, x->dims, b, sizeof b);
            st = qo_error(cx, QO_ERR_BACKEND, &l, "output %u ('%s'): the kernel produced %s, compiled for %s", i,
                          qo_val_name(g, v), a, b);
            break;
        }
        if (x->nbytes && outs[i].data != j->addr[v]) memcpy(j->addr[v], outs[i].data, x->nbytes);
    }
    for (uint32_t i = 0; i < nout; i++) qo_tensor_free(&outs[i]);
    free(outs);
    free(in);
    free(views);
    return (int32_t)st;
}

/* Rounding helper for the QONNX modes without an exact LLVM intrinsic. */
static float jit_round_apply(float x, int32_t mode) { return qo_round_apply(x, (qo_round)mode); }

/* ---- code generation -------------------------------------------------------------------------- */
typedef struct emitter {
    qo_jit *j;
    LLVMContextRef C;
    LLVMModuleRef M;
    LLVMBuilderRef B;
    LLVMTypeRef f32, f64, i1, i8, i16, i32, i64, ptr, v;
    LLVMValueRef *sv; /* per value id: scalar in the current loop body */
} emitter;

static LLVMTypeRef reg_type(emitter *E, int e) {
    switch (e) {
    case QO_F32: return E->f32;
    case QO_F64: return E->f64;
    case QO_BOOL: return E->i1;
    case QO_I8: case QO_U8: case QO_I4: case QO_U4: return E->i8;
    case QO_I16: case QO_U16: return E->i16;
    case QO_I32: case QO_U32: return E->i32;
    default: return E->i64;
    }
}
static LLVMTypeRef mem_type(emitter *E, int e) { return e == QO_BOOL ? E->i8 : reg_type(E, e); }

static LLVMValueRef cf32(emitter *E, float f) { return LLVMConstReal(E->f32, f); }
static LLVMValueRef ci64(emitter *E, int64_t v) { return LLVMConstInt(E->i64, (unsigned long long)v, 1); }

static LLVMValueRef fn_addr(emitter *E, uintptr_t a) {
    return LLVMConstIntToPtr(LLVMConstInt(E->i64, (unsigned long long)a, 0), E->ptr);
}

/* Calls a C function float f(float) / float f(float, float) at its address. */
static LLVMValueRef call_f1(emitter *E, float (*f)(float), LLVMValueRef x) {
    LLVMTypeRef ft = LLVMFunctionType(E->f32, &E->f32, 1, 0);
    return LLVMBuildCall2(E->B, ft, fn_addr(E, (uintptr_t)f), &x, 1, "");
}
static LLVMValueRef call_f2(emitter *E, float (*f)(float, float), LLVMValueRef x, LLVMValueRef y) {
    LLVMTypeRef ps[2] = {E->f32, E->f32};
    LLVMTypeRef ft = LLVMFunctionType(E->f32, ps, 2, 0);
    LLVMValueRef a[2] = {x, y};
    return LLVMBuildCall2(E->B, ft, fn_addr(E, (uintptr_t)f), a, 2, "");
}

static LLVMValueRef intrin1(emitter *E, const char *name, LLVMValueRef x) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(E->M, id, &t, 1);
    LLVMTypeRef ft = LLVMIntrinsicGetType(E->C, id, &t, 1);
    return LLVMBuildCall2(E->B, ft, f, &x, 1, "");
}

static LLVMValueRef sel(emitter *E, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(E->B, c, a, b, "");
}
static LLVMValueRef fcmp(emitter *E, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFCmp(E->B, p, a, b, "");
}
static LLVMValueRef eadd(emitter *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(E->B, a, b, ""); }
static LLVMValueRef esub(emitter *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(E->B, a, b, ""); }
static LLVMValueRef emul(emitter *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(E->B, a, b, ""); }
static LLVMValueRef ediv(emitter *E, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(E->B, a, b, ""); }

static LLVMValueRef is_nan(emitter *E, LLVMValueRef x) { return fcmp(E, LLVMRealUNO, x, x); }

static LLVMValueRef ecopysign(emitter *E, LLVMValueRef mag, LLVMValueRef sgn) {
    const char *name = "llvm.copysign";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef t = LLVMTypeOf(mag);
    LLVMValueRef f = LLVMGetIntrinsicDeclaration(E->M, id, &t, 1), a[2] = {mag, sgn};
    return LLVMBuildCall2(E->B, LLVMIntrinsicGetType(E->C, id, &t, 1), f, a, 2, "");
}

/* qo_erff (runtime/ref/erf.h), the same float operations in the same order: bit-identical to the
 * reference kernel, and branch-free, so fused loops vectorize. */
static LLVMValueRef emit_erff(emitter *E, LLVMValueRef x) {
    LLVMValueRef a = intrin1(E, "llvm.fabs", x), u = esub(E, emul(E, x, x), cf32(E, 0.5f));
    LLVMValueRef p = cf32(E, qo_erf_pa[QO_ERF_NA - 1]);
    for (int i = QO_ERF_NA - 2; i >= 0; i--) p = eadd(E, emul(E, p, u), cf32(E, qo_erf_pa[i]));
    LLVMValueRef ra = eadd(E, x, emul(E, x, p));
    LLVMValueRef v = esub(E, a, cf32(E, QO_ERF_MID)), q = cf32(E, qo_erf_pb[QO_ERF_NB - 1]);
    for (int i = QO_ERF_NB - 2; i >= 0; i--) q = eadd(E, emul(E, q, v), cf32(E, qo_erf_pb[i]));
    LLVMValueRef rb = sel(E, fcmp(E, LLVMRealOGE, a, cf32(E, QO_ERF_CUT)), ecopysign(E, cf32(E, 1.0f), x),
                          ecopysign(E, esub(E, cf32(E, 1.0f), q), x));
    return sel(E, fcmp(E, LLVMRealOLT, a, cf32(E, 1.0f)), ra, rb);
}

/* qo_rne: roundeven is exact (ties to even, keeps the sign of zero, |x| >= 2^23 unchanged). */
static LLVMValueRef rne(emitter *E, LLVMValueRef x) { return intrin1(E, "llvm.roundeven", x); }

static LLVMValueRef round_mode(emitter *E, LLVMValueRef x, qo_round m) {
    switch (m) {
    case QO_ROUND_HALF_EVEN: return rne(E, x);
    case QO_ROUND_CEIL: return intrin1(E, "llvm.ceil", x);
    case QO_ROUND_FLOOR: return intrin1(E, "llvm.floor", x);
    case QO_ROUND_DOWN: return intrin1(E, "llvm.trunc", x);
    default: {
        LLVMTypeRef ps[2] = {E->f32, E->i32};
        LLVMTypeRef ft = LLVMFunctionType(E->f32, ps, 2, 0);
        LLVMValueRef a[2] = {x, LLVMConstInt(E->i32, (unsigned)m, 0)};
        return LLVMBuildCall2(E->B, ft, fn_addr(E, (uintptr_t)jit_round_apply), a, 2, "");
    }
    }
}

/* Integer register value widened to i64 with the signedness of elem. */
static LLVMValueRef widen(emitter *E, LLVMValueRef v, int e) {
    if (LLVMTypeOf(v) == E->i64) return v;
    return is_signed_int(e) ? LLVMBuildSExt(E->B, v, E->i64, "") : LLVMBuildZExt(E->B, v, E->i64, "");
}

static LLVMValueRef softplus(emitter *E, LLVMValueRef x) {
    LLVMValueRef pos = fcmp(E, LLVMRealOGT, x, cf32(E, 0));
    LLVMValueRef e = call_f1(E, expf, sel(E, pos, LLVMBuildFNeg(E->B, x, ""), x));
    LLVMValueRef l = call_f1(E, log1pf, e);
    return sel(E, pos, eadd(E, x, l), l);
}

/* f2i_trunc of runtime/ref/elementwise.c for a double d and a target of at most 32 bits or int64. */
static LLVMValueRef f2i(emitter *E, LLVMValueRef d, int to) {
    if (to == QO_I64) {
        LLVMValueRef ok = LLVMBuildAnd(E->B, fcmp(E, LLVMRealOGE, d, LLVMConstReal(E->f64, -0x1p63)),
                                       fcmp(E, LLVMRealOLT, d, LLVMConstReal(E->f64, 0x1p63)), "");
        LLVMValueRef r = LLVMBuildFPToSI(E->B, sel(E, ok, d, LLVMConstReal(E->f64, 0)), E->i64, "");
        return sel(E, ok, r, ci64(E, INT64_MIN));
    }
    LLVMValueRef ok = LLVMBuildAnd(E->B, fcmp(E, LLVMRealOGT, d, LLVMConstReal(E->f64, -2147483649.0)),
                                   fcmp(E, LLVMRealOLT, d, LLVMConstReal(E->f64, 2147483648.0)), "");
    LLVMValueRef r = LLVMBuildFPToSI(E->B, sel(E, ok, d, LLVMConstReal(E->f64, 0)), E->i32, "");
    r = sel(E, ok, r, LLVMConstInt(E->i32, (unsigned long long)(uint32_t)INT32_MIN, 0));
    LLVMTypeRef t = reg_type(E, to);
    return t == E->i32 ? r : LLVMBuildTrunc(E->B, r, t, "");
}

static LLVMValueRef emit_cast(emitter *E, LLVMValueRef x, int from, int to) {
    if (from == to) return x;
    if (from == QO_F32 || from == QO_F64) {
        if (to == QO_F64) return LLVMBuildFPExt(E->B, x, E->f64, "");
        if (to == QO_F32) return LLVMBuildFPTrunc(E->B, x, E->f32, "");
        LLVMValueRef d = from == QO_F32 ? LLVMBuildFPExt(E->B, x, E->f64, "") : x;
        if (to == QO_BOOL) return LLVMBuildFCmp(E->B, LLVMRealUNE, d, LLVMConstReal(E->f64, 0), "");
        return f2i(E, d, to);
    }
    /* integer or bool source: as int64 (sign- or zero-extended) */
    LLVMValueRef v = widen(E, x, from);
    if (to == QO_F32 || to == QO_F64) return LLVMBuildSIToFP(E->B, v, reg_type(E, to), "");
    if (to == QO_BOOL) return LLVMBuildICmp(E->B, LLVMIntNE, v, ci64(E, 0), "");
    LLVMTypeRef t = reg_type(E, to);
    return t == E->i64 ? v : LLVMBuildTrunc(E->B, v, t, "");
}

/* Scalar code for node n given its operand scalars a[] (NULL for omitted inputs). */
static LLVMValueRef emit_node(emitter *E, qo_node n, LLVMValueRef *a) {
    qo_jit *j = E->j;
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    qo_op op = (qo_op)nd->op;
    LLVMBuilderRef B = E->B;
    LLVMValueRef x = a[0], zero = cf32(E, 0), one = cf32(E, 1);
    switch (op) {
    case QO_OP_ABS: return intrin1(E, "llvm.fabs", x);
    case QO_OP_NEG: return LLVMBuildFNeg(B, x, "");
    case QO_OP_SQRT: return intrin1(E, "llvm.sqrt", x);
    case QO_OP_EXP: return call_f1(E, expf, x);
    case QO_OP_LOG: return call_f1(E, logf, x);
    case QO_OP_RECIPROCAL: return ediv(E, one, x);
    case QO_OP_FLOOR: return intrin1(E, "llvm.floor", x);
    case QO_OP_CEIL: return intrin1(E, "llvm.ceil", x);
    case QO_OP_ROUND: return rne(E, x);
    case QO_OP_ERF: return emit_erff(E, x);
    case QO_OP_TANH: return call_f1(E, tanhf, x);
    case QO_OP_SIN: return call_f1(E, sinf, x);
    case QO_OP_COS: return call_f1(E, cosf, x);
    case QO_OP_TAN: return call_f1(E, tanf, x);
    case QO_OP_ASIN: return call_f1(E, asinf, x);
    case QO_OP_ACOS: return call_f1(E, acosf, x);
    case QO_OP_ATAN: return call_f1(E, atanf, x);
    case QO_OP_SINH: return call_f1(E, sinhf, x);
    case QO_OP_COSH: return call_f1(E, coshf, x);
    case QO_OP_ASINH: return call_f1(E, asinhf, x);
    case QO_OP_ACOSH: return call_f1(E, acoshf, x);
    case QO_OP_ATANH: return call_f1(E, atanhf, x);
    case QO_OP_SIGMOID: {
        /* x >= 0 ? 1 / (1 + e^-x) : e^x / (1 + e^x) */
        LLVMValueRef ge = fcmp(E, LLVMRealOGE, x, zero);
        LLVMValueRef e = call_f1(E, expf, sel(E, ge, LLVMBuildFNeg(B, x, ""), x));
        LLVMValueRef d = eadd(E, one, e);
        return sel(E, ge, ediv(E, one, d), ediv(E, e, d));
    }
    case QO_OP_HARDSIGMOID: {
        float al = qo_attr_float(g, n, "alpha", 0.2f), be = qo_attr_float(g, n, "beta", 0.5f);
        LLVMValueRef t = eadd(E, emul(E, cf32(E, al), x), cf32(E, be));
        return call_f2(E, fmaxf, zero, call_f2(E, fminf, one, t));
    }
    case QO_OP_HARDSWISH: {
        LLVMValueRef t = eadd(E, ediv(E, x, cf32(E, 6.0f)), cf32(E, 0.5f));
        return emul(E, x, call_f2(E, fmaxf, zero, call_f2(E, fminf, one, t)));
    }
    case QO_OP_RELU: return sel(E, fcmp(E, LLVMRealOLT, x, zero), zero, x); /* NaN, -0 pass (as ref) */
    case QO_OP_LEAKYRELU: {
        float al = qo_attr_float(g, n, "alpha", 0.01f);
        return sel(E, fcmp(E, LLVMRealOGE, x, zero), x, emul(E, cf32(E, al), x));
    }
    case QO_OP_ELU: {
        float al = qo_attr_float(g, n, "alpha", 1.0f);
        LLVMValueRef neg = emul(E, cf32(E, al), esub(E, call_f1(E, expf, x), one));
        return sel(E, fcmp(E, LLVMRealOGE, x, zero), x, neg);
    }
    case QO_OP_SELU: {
        float al = qo_attr_float(g, n, "alpha", 1.67326319217681884765625f);
        float ga = qo_attr_float(g, n, "gamma", 1.05070102214813232421875f);
        LLVMValueRef neg = emul(E, cf32(E, ga), esub(E, emul(E, cf32(E, al), call_f1(E, expf, x)), cf32(E, al)));
        return sel(E, fcmp(E, LLVMRealOGT, x, zero), emul(E, cf32(E, ga), x), neg);
    }
    case QO_OP_CELU: {
        float al = qo_attr_float(g, n, "alpha", 1.0f);
        LLVMValueRef t = emul(E, cf32(E, al), esub(E, call_f1(E, expf, ediv(E, x, cf32(E, al))), one));
        return eadd(E, call_f2(E, fmaxf, zero, x), call_f2(E, fminf, zero, t));
    }
    case QO_OP_THRESHOLDEDRELU: {
        float al = qo_attr_float(g, n, "alpha", 1.0f);
        return sel(E, fcmp(E, LLVMRealOGT, x, cf32(E, al)), x, zero);
    }
    case QO_OP_SOFTPLUS: return softplus(E, x);
    case QO_OP_SOFTSIGN: return ediv(E, x, eadd(E, one, intrin1(E, "llvm.fabs", x)));
    case QO_OP_MISH: return emul(E, x, call_f1(E, tanhf, softplus(E, x)));
    case QO_OP_GELU: {
        const qo_attr *at = qo_node_attr(g, n, "approximate");
        bool th = at && at->kind == QO_ATTR_STRING && at->u.s.n == 4 && !memcmp(at->u.s.p, "tanh", 4);
        LLVMValueRef hx = emul(E, cf32(E, 0.5f), x), t;
        if (th) {
            LLVMValueRef c = emul(E, emul(E, emul(E, cf32(E, 0.044715f), x), x), x);
            t = call_f1(E, tanhf, emul(E, cf32(E, 0.7978845608028654f), eadd(E, x, c)));
        } else {
            t = emit_erff(E, emul(E, x, cf32(E, 0.70710678118654752f)));
        }
        return emul(E, hx, eadd(E, one, t));
    }
    case QO_OP_SHRINK: {
        float la = qo_attr_float(g, n, "lambd", 0.5f), bi = qo_attr_float(g, n, "bias", 0.0f);
        LLVMValueRef r = sel(E, fcmp(E, LLVMRealOGT, x, cf32(E, la)), esub(E, x, cf32(E, bi)), zero);
        return sel(E, fcmp(E, LLVMRealOLT, x, cf32(E, -la)), eadd(E, x, cf32(E, bi)), r);
    }
    case QO_OP_SIGN: {
        LLVMValueRef r = sel(E, fcmp(E, LLVMRealOEQ, x, zero), zero, x);
        r = sel(E, fcmp(E, LLVMRealOLT, x, zero), cf32(E, -1.0f), r);
        return sel(E, fcmp(E, LLVMRealOGT, x, zero), one, r);
    }
    case QO_OP_NOT: return LLVMBuildNot(B, x, "");
    case QO_OP_ISNAN: return is_nan(E, x);
    case QO_OP_ISINF: {
        int dn = (int)qo_attr_int(g, n, "detect_negative", 1), dp = (int)qo_attr_int(g, n, "detect_positive", 1);
        LLVMValueRef pi = fcmp(E, LLVMRealOEQ, x, cf32(E, INFINITY)), ni = fcmp(E, LLVMRealOEQ, x, cf32(E, -INFINITY));
        LLVMValueRef f = LLVMConstInt(E->i1, 0, 0);
        return LLVMBuildOr(B, dp ? pi : f, dn ? ni : f, "");
    }
    case QO_OP_ADD: return eadd(E, x, a[1]);
    case QO_OP_SUB: return esub(E, x, a[1]);
    case QO_OP_MUL: return emul(E, x, a[1]);
    case QO_OP_DIV: return ediv(E, x, a[1]);
    case QO_OP_POW: return call_f2(E, powf, x, a[1]);
    case QO_OP_PRELU: return sel(E, fcmp(E, LLVMRealOLT, x, zero), emul(E, a[1], x), x);
    case QO_OP_SUM: case QO_OP_MEAN: case QO_OP_MIN: case QO_OP_MAX: {
        LLVMValueRef acc = x;
        LLVMValueRef qnan = LLVMConstReal(E->f32, NAN);
        for (uint32_t i = 1; i < nd->nin; i++) {
            LLVMValueRef y = a[i];
            if (op == QO_OP_SUM || op == QO_OP_MEAN) {
                acc = eadd(E, acc, y);
            } else {
                LLVMValueRef any = LLVMBuildOr(B, is_nan(E, acc), is_nan(E, y), "");
                LLVMValueRef pick = op == QO_OP_MIN ? sel(E, fcmp(E, LLVMRealOLT, y, acc), y, acc)
                                                    : sel(E, fcmp(E, LLVMRealOGT, y, acc), y, acc);
                acc = sel(E, any, qnan, pick);
            }
        }
        if (op == QO_OP_MEAN) acc = ediv(E, acc, cf32(E, (float)nd->nin));
        return acc;
    }
    case QO_OP_AND: return LLVMBuildAnd(B, x, a[1], "");
    case QO_OP_OR: return LLVMBuildOr(B, x, a[1], "");
    case QO_OP_XOR: return LLVMBuildXor(B, x, a[1], "");
    case QO_OP_EQUAL: case QO_OP_LESS: case QO_OP_GREATER: case QO_OP_LESSOREQUAL: case QO_OP_GREATEROREQUAL: {
        int e = in_vi(j, n, 0)->elem;
        if (e == QO_F32 || e == QO_F64) {
            LLVMRealPredicate p = op == QO_OP_EQUAL ? LLVMRealOEQ : op == QO_OP_LESS ? LLVMRealOLT
                                  : op == QO_OP_GREATER ? LLVMRealOGT : op == QO_OP_LESSOREQUAL ? LLVMRealOLE
                                                                                             : LLVMRealOGE;
            return fcmp(E, p, x, a[1]);
        }
        bool s = is_signed_int(e);
        LLVMIntPredicate p = op == QO_OP_EQUAL ? LLVMIntEQ
                             : op == QO_OP_LESS ? (s ? LLVMIntSLT : LLVMIntULT)
                             : op == QO_OP_GREATER ? (s ? LLVMIntSGT : LLVMIntUGT)
                             : op == QO_OP_LESSOREQUAL ? (s ? LLVMIntSLE : LLVMIntULE)
                                                       : (s ? LLVMIntSGE : LLVMIntUGE);
        return LLVMBuildICmp(B, p, widen(E, x, e), widen(E, a[1], e), "");
    }
    case QO_OP_WHERE: return sel(E, x, a[1], a[2]);
    case QO_OP_CLIP: {
        LLVMValueRef lo = cf32(E, -FLT_MAX), hi = cf32(E, FLT_MAX);
        if (j->opset < 11) {
            lo = cf32(E, qo_attr_float(g, n, "min", -FLT_MAX));
            hi = cf32(E, qo_attr_float(g, n, "max", FLT_MAX));
        }
        if (nd->nin > 1 && a[1]) lo = a[1];
        if (nd->nin > 2 && a[2]) hi = a[2];
        LLVMValueRef v = sel(E, fcmp(E, LLVMRealOLT, x, lo), lo, x); /* NaN compares false: passes */
        return sel(E, fcmp(E, LLVMRealOGT, v, hi), hi, v);
    }
    case QO_OP_CAST: return emit_cast(E, x, in_vi(j, n, 0)->elem, out_vi(j, n)->elem);
    case QO_OP_QUANTIZELINEAR: {
        int oe = out_vi(j, n)->elem;
        int64_t qmin, qmax;
        qrange(oe, &qmin, &qmax);
        LLVMValueRef z = nd->nin > 2 && a[2] ? widen(E, a[2], oe) : ci64(E, 0);
        LLVMValueRef q = ediv(E, x, a[1]);
        LLVMValueRef lo = LLVMBuildSIToFP(B, LLVMBuildSub(B, ci64(E, qmin), z, ""), E->f32, "");
        LLVMValueRef hi = LLVMBuildSIToFP(B, LLVMBuildSub(B, ci64(E, qmax), z, ""), E->f32, "");
        LLVMValueRef r = rne(E, q);
        r = sel(E, fcmp(E, LLVMRealOLT, r, lo), lo, sel(E, fcmp(E, LLVMRealOGT, r, hi), hi, r));
        LLVMValueRef nn = sel(E, is_nan(E, q), cf32(E, 0), r); /* keep fptosi defined */
        LLVMValueRef v = LLVMBuildAdd(B, LLVMBuildFPToSI(B, nn, E->i64, ""), z, "");
        v = sel(E, is_nan(E, q), ci64(E, qmin), v);
        return LLVMBuildTrunc(B, v, reg_type(E, oe), "");
    }
    case QO_OP_DEQUANTIZELINEAR: {
        int xe = in_vi(j, n, 0)->elem;
        LLVMValueRef d;
        if (xe == QO_I32) {
            LLVMValueRef z = nd->nin > 2 && a[2] ? a[2] : LLVMConstInt(E->i32, 0, 0);
            d = LLVMBuildSExt(B, LLVMBuildSub(B, x, z, ""), E->i64, ""); /* int32 arithmetic */
        } else {
            LLVMValueRef z = nd->nin > 2 && a[2] ? widen(E, a[2], xe) : ci64(E, 0);
            d = LLVMBuildSub(B, widen(E, x, xe), z, "");
        }
        return emul(E, LLVMBuildSIToFP(B, d, E->f32, ""), a[1]);
    }
    case QO_OP_QONNX_QUANT: {
        double bw = 8;
        const_scalar(j, qo_node_input(g, n, 3), &bw);
        int is_signed = qo_attr_int(g, n, "signed", 1) != 0, narrow = qo_attr_int(g, n, "narrow", 0) != 0;
        qo_round rm = (qo_round)node_round_mode(g, n);
        double l, h;
        if (is_signed) {
            l = -ldexp(1.0, (int)bw - 1) + (narrow ? 1 : 0);
            h = ldexp(1.0, (int)bw - 1) - 1;
        } else {
            l = 0;
            h = ldexp(1.0, (int)bw) - (narrow ? 2 : 1);
        }
        LLVMValueRef s = a[1], z = a[2];
        LLVMValueRef y = eadd(E, ediv(E, x, s), z);
        if (bw == 1 && is_signed) {
            y = sel(E, fcmp(E, LLVMRealOGE, y, zero), one, cf32(E, -1.0f));
        } else {
            LLVMValueRef lo = cf32(E, (float)l), hi = cf32(E, (float)h);
            y = sel(E, fcmp(E, LLVMRealOGT, y, hi), hi, y);
            y = sel(E, fcmp(E, LLVMRealOLT, y, lo), lo, y);
            y = round_mode(E, y, rm);
        }
        return emul(E, esub(E, y, z), s);
    }
    case QO_OP_QONNX_BIPOLARQUANT: {
        LLVMValueRef y = sel(E, fcmp(E, LLVMRealOGE, x, zero), one, cf32(E, -1.0f));
        return emul(E, y, a[1]);
    }
    default: QO_UNREACHABLE();
    }
}

/* An operand of a group: an external value read with per-dim strides (elements). */
typedef struct operand {
    qo_val v;
    int64_t st[QO_MAX_RANK];
    LLVMValueRef konst; /* a constant scalar embedded in the code, or NULL */
    LLVMValueRef base;
} operand;

static bool val_in_group(const qo_jit *j, const uint32_t *gid, uint32_t gi, qo_val v) {
    qo_node d = j->g->vals[v].def;
    return d && gid[d] == gi + 1;
}

/* Scalar LLVM constant for a constant scalar value, or NULL. */
static LLVMValueRef const_reg(emitter *E, qo_val v) {
    qo_jit *j = E->j;
    if (!(j->g->vals[v].flags & QO_VAL_CONST) || (j->g->vals[v].flags & QO_VAL_INPUT)) return NULL;
    const qo_tensor *t = &j->consts[v];
    if (qo_tensor_numel(t) != 1 || !t->data) return NULL;
    int e = t->elem;
    if (e == QO_F32) return LLVMConstReal(E->f32, ((const float *)t->data)[0]);
    if (e == QO_F64) return LLVMConstReal(E->f64, ((const double *)t->data)[0]);
    if (e == QO_BOOL) return LLVMConstInt(E->i1, ((const uint8_t *)t->data)[0] != 0, 0);
    if (qo_elem_is_int(e)) return LLVMConstInt(reg_type(E, e), (unsigned long long)qo_load_i64(t->data, e, 0), 1);
    return NULL;
}

/* Emits group gi as `internal void @gN(ptr noalias out, ptr noalias in...)`; returns it. */
/* Emits group gi as a function g<gi>(out, operands..., lo, hi) of nested loops over the coalesced
 * output dims; the outermost runs over [lo, hi) of its *ext0_out extent (0: no loop, a single
 * element), so disjoint ranges can run on several threads (every element is computed on its own). */
static LLVMValueRef emit_group(emitter *E, const uint32_t *gid, uint32_t gi, operand **ops_out, uint32_t *nops_out,
                               int64_t *ext0_out) {
    qo_jit *j = E->j;
    const qo_graph *g = j->g;
    group *G = &j->groups[gi];
    qo_val root_v = qo_node_output(g, G->root, 0);
    const vinfo *o = &j->vi[root_v];
    /* operands: distinct external values; strides from each reader's operand shape */
    operand *ops = qo_calloc(64, sizeof *ops);
    uint32_t nops = 0, capops = 64;
    /* per (member, input) operand index */
    for (uint32_t k = 0; k < G->nmembers; k++) {
        qo_node n = G->members[k];
        const qo_nodedata *nd = qo_node_get(g, n);
        for (uint32_t i = 0; i < nd->nin; i++) {
            qo_val v = qo_node_input(g, n, i);
            if (!v || val_in_group(j, gid, gi, v)) continue;
            int32_t r;
            int64_t d[QO_MAX_RANK], st[QO_MAX_RANK] = {0};
            operand_shape(j, n, i, &r, d);
            int64_t s = 1;
            for (int32_t q = r - 1; q >= 0; q--) {
                st[o->rank - r + q] = d[q] == 1 ? 0 : s;
                s *= d[q];
            }
            uint32_t f;
            for (f = 0; f < nops; f++)
                if (ops[f].v == v && !memcmp(ops[f].st, st, sizeof st)) break;
            if (f < nops) continue;
            if (nops == capops) {
                ops = qo_realloc(ops, (capops *= 2) * sizeof *ops);
                memset(ops + nops, 0, (capops - nops) * sizeof *ops);
            }
            ops[nops].v = v;
            memcpy(ops[nops].st, st, sizeof st);
            ops[nops].konst = const_reg(E, v);
            nops++;
        }
    }
    /* coalesce dims: drop extent-1 dims, merge neighbours contiguous for every operand */
    int64_t ext[QO_MAX_RANK], ost[QO_MAX_RANK];
    int64_t (*xst)[QO_MAX_RANK] = qo_calloc(nops ? nops : 1, sizeof *xst);
    int nd = 0;
    {
        int64_t s = 1, full[QO_MAX_RANK];
        for (int32_t q = o->rank - 1; q >= 0; q--) {
            full[q] = s;
            s *= o->dims[q];
        }
        for (int32_t q = 0; q < o->rank; q++) {
            if (o->dims[q] == 1) continue;
            if (nd > 0) {
                bool merge = ost[nd - 1] == full[q] * o->dims[q];
                for (uint32_t k = 0; merge && k < nops; k++)
                    merge = xst[k][nd - 1] == ops[k].st[q] * o->dims[q];
                if (merge) {
                    ext[nd - 1] *= o->dims[q];
                    ost[nd - 1] = full[q];
                    for (uint32_t k = 0; k < nops; k++) xst[k][nd - 1] = ops[k].st[q];
                    continue;
                }
            }
            ext[nd] = o->dims[q];
            ost[nd] = full[q];
            for (uint32_t k = 0; k < nops; k++) xst[k][nd] = ops[k].st[q];
            nd++;
        }
    }
    /* function */
    uint32_t np = 1 + nops;
    LLVMTypeRef *pt = qo_calloc(np + 2, sizeof *pt);
    for (uint32_t k = 0; k < np; k++) pt[k] = E->ptr;
    pt[np] = pt[np + 1] = E->i64;
    LLVMTypeRef ft = LLVMFunctionType(E->v, pt, np + 2, 0);
    *ext0_out = nd > 0 && o->numel > 0 ? ext[0] : 0;
    char name[32];
    snprintf(name, sizeof name, "g%u", gi);
    LLVMValueRef fn = LLVMAddFunction(E->M, name, ft);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (uint32_t k = 0; k < np; k++)
        LLVMAddAttributeAtIndex(fn, k + 1, LLVMCreateEnumAttribute(E->C, noalias, 0));
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(E->C, fn, "entry");
    LLVMPositionBuilderAtEnd(E->B, entry);
    LLVMValueRef outp = LLVMGetParam(fn, 0), lo = LLVMGetParam(fn, np), hi = LLVMGetParam(fn, np + 1);
    for (uint32_t k = 0; k < nops; k++) ops[k].base = LLVMGetParam(fn, k + 1);
    if (o->numel > 0) {
        /* nested do-while loops (every extent >= 2) */
        LLVMValueRef idx[QO_MAX_RANK];
        LLVMBasicBlockRef hdr[QO_MAX_RANK], pre[QO_MAX_RANK];
        for (int q = 0; q < nd; q++) {
            pre[q] = LLVMGetInsertBlock(E->B);
            hdr[q] = LLVMAppendBasicBlockInContext(E->C, fn, "loop");
            LLVMBuildBr(E->B, hdr[q]);
            LLVMPositionBuilderAtEnd(E->B, hdr[q]);
            idx[q] = LLVMBuildPhi(E->B, E->i64, "i");
        }
        /* body */
        memset(E->sv, 0, j->nvals * sizeof *E->sv);
        LLVMValueRef *oval = qo_calloc(nops ? nops : 1, sizeof *oval);
        for (uint32_t k = 0; k < nops; k++) {
            if (ops[k].konst) {
                oval[k] = ops[k].konst;
                continue;
            }
            LLVMValueRef off = ci64(E, 0);
            for (int q = 0; q < nd; q++)
                if (xst[k][q]) off = LLVMBuildAdd(E->B, off, LLVMBuildMul(E->B, idx[q], ci64(E, xst[k][q]), ""), "");
            int e = j->vi[ops[k].v].elem;
            LLVMValueRef p = LLVMBuildGEP2(E->B, mem_type(E, e), ops[k].base, &off, 1, "");
            LLVMValueRef ld = LLVMBuildLoad2(E->B, mem_type(E, e), p, "");
            if (e == QO_BOOL) ld = LLVMBuildICmp(E->B, LLVMIntNE, ld, LLVMConstInt(E->i8, 0, 0), "");
            oval[k] = ld;
        }
        for (uint32_t m = 0; m < G->nmembers; m++) {
            qo_node n = G->members[m];
            const qo_nodedata *ndd = qo_node_get(g, n);
            LLVMValueRef args[64];
            LLVMValueRef *av = ndd->nin <= 64 ? args : qo_calloc(ndd->nin, sizeof *av);
            for (uint32_t i = 0; i < ndd->nin; i++) {
                qo_val v = qo_node_input(g, n, i);
                av[i] = NULL;
                if (!v) continue;
                if (val_in_group(j, gid, gi, v)) {
                    av[i] = E->sv[v];
                    continue;
                }
                int32_t r;
                int64_t d[QO_MAX_RANK], st[QO_MAX_RANK] = {0};
                operand_shape(j, n, i, &r, d);
                int64_t s = 1;
                for (int32_t q = r - 1; q >= 0; q--) {
                    st[o->rank - r + q] = d[q] == 1 ? 0 : s;
                    s *= d[q];
                }
                for (uint32_t k = 0; k < nops; k++)
                    if (ops[k].v == v && !memcmp(ops[k].st, st, sizeof st)) av[i] = oval[k];
            }
            E->sv[qo_node_output(g, n, 0)] = emit_node(E, n, av);
            if (av != args) free(av);
        }
        LLVMValueRef off = ci64(E, 0);
        for (int q = 0; q < nd; q++) off = LLVMBuildAdd(E->B, off, LLVMBuildMul(E->B, idx[q], ci64(E, ost[q]), ""), "");
        LLVMValueRef r = E->sv[root_v];
        if (o->elem == QO_BOOL) r = LLVMBuildZExt(E->B, r, E->i8, "");
        LLVMBuildStore(E->B, r, LLVMBuildGEP2(E->B, mem_type(E, o->elem), outp, &off, 1, ""));
        free(oval);
        /* latches, innermost first */
        for (int q = nd - 1; q >= 0; q--) {
            LLVMValueRef nx = LLVMBuildAdd(E->B, idx[q], ci64(E, 1), "");
            LLVMBasicBlockRef latch = LLVMGetInsertBlock(E->B);
            LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(E->C, fn, "exit");
            LLVMBuildCondBr(E->B, LLVMBuildICmp(E->B, LLVMIntSLT, nx, q ? ci64(E, ext[q]) : hi, ""), hdr[q], exit);
            LLVMValueRef iv[2] = {q ? ci64(E, 0) : lo, nx};
            LLVMBasicBlockRef ib[2] = {pre[q], latch};
            LLVMAddIncoming(idx[q], iv, ib, 2);
            LLVMPositionBuilderAtEnd(E->B, exit);
        }
    }
    LLVMBuildRetVoid(E->B);
    free(pt);
    free(xst);
    *ops_out = ops;
    *nops_out = nops;
    return fn;
}

/* ---- planning --------------------------------------------------------------------------------- */
typedef struct buf {
    qo_val v;
    size_t size;
    int32_t def, last;
} buf;

static int cmp_buf(const void *a, const void *b) {
    const buf *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    if (x->def != y->def) return x->def < y->def ? -1 : 1;
    return x->v < y->v ? -1 : 1;
}

#define ALIGN 64
static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

/* Greedy by size: each buffer (largest first) goes into the smallest gap between the already placed
 * buffers whose lifetimes overlap its own, else after the last of them. Returns the peak. */
static size_t plan_arena(qo_jit *j, buf *bs, uint32_t nb) {
    qsort(bs, nb, sizeof *bs, cmp_buf);
    size_t peak = 0;
    uint32_t *ov = qo_calloc(nb ? nb : 1, sizeof *ov);
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t no = 0;
        for (uint32_t k = 0; k < i; k++)
            if (bs[k].def <= bs[i].last && bs[i].def <= bs[k].last) ov[no++] = k;
        /* sort overlapping by offset (insertion sort; lists are short) */
        for (uint32_t a = 1; a < no; a++)
            for (uint32_t b = a; b > 0 && j->vi[bs[ov[b - 1]].v].off > j->vi[bs[ov[b]].v].off; b--) {
                uint32_t t = ov[b];
                ov[b] = ov[b - 1];
                ov[b - 1] = t;
            }
        size_t need = align_up(bs[i].size), best = SIZE_MAX, best_gap = SIZE_MAX, cur = 0;
        for (uint32_t a = 0; a < no; a++) {
            size_t o = j->vi[bs[ov[a]].v].off;
            if (o >= cur && o - cur >= need && o - cur < best_gap) {
                best_gap = o - cur;
                best = cur;
            }
            size_t end = o + align_up(bs[ov[a]].size);
            if (end > cur) cur = end;
        }
        if (best == SIZE_MAX) best = cur;
        j->vi[bs[i].v].off = best;
        if (best + need > peak) peak = best + need;
    }
    free(ov);
    return peak;
}

/* ---- compile ---------------------------------------------------------------------------------- */
static pthread_once_t llvm_once = PTHREAD_ONCE_INIT;
static void llvm_init(void) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
}

static qo_status specialize(qo_ctx *cx, const qo_module *src, const qo_jit_opts *o, qo_module **out) {
    const qo_graph *sg = qo_module_main(src);
    qo_loc gl = graph_loc(src);
    if (!sg) return qo_error(cx, QO_ERR_INVALID_MODEL, &gl, "the model has no main graph");
    char *text = NULL;
    QO_TRY(qo_print_module_str(cx, src, NULL, &text));
    const char *path = src->source_path ? qo_str(src, src->source_path) : "<jit>";
    qo_module *m = NULL;
    qo_status s = qo_parse_module(cx, path, text, strlen(text), &m);
    free(text);
    if (s != QO_OK) {
        qo_print_opts po = {.inline_all = true};
        QO_TRY(qo_print_module_str(cx, src, &po, &text));
        s = qo_parse_module(cx, path, text, strlen(text), &m);
        free(text);
        QO_TRY(s);
    }
    qo_graph *g = qo_module_main(m);
    if (o && o->ninput_shapes) {
        if (o->ninput_shapes != g->ninputs) {
            qo_module_free(m);
            return qo_error(cx, QO_ERR_USAGE, &gl, "%u input shapes given, the graph has %u inputs", o->ninput_shapes,
                            g->ninputs);
        }
        for (uint32_t i = 0; i < g->ninputs; i++) {
            const qo_tensor *t = &o->input_shapes[i];
            g->vals[g->inputs[i]].type = qo_type_tensor(m, (qo_elem)t->elem, t->rank, t->dims, NULL);
        }
        QO_FOR_EACH_NODE(g, n) {
            const qo_nodedata *nd = qo_node_get(g, n);
            for (uint32_t r = 0; r < nd->nout; r++)
                if (qo_node_output(g, n, r)) g->vals[qo_node_output(g, n, r)].type = 0;
        }
    } else {
        for (uint32_t i = 0; i < g->ninputs; i++) {
            qo_val v = g->inputs[i];
            const qo_typedata *td = qo_type_get(m, g->vals[v].type);
            if (g->vals[v].cref && (!td || td->rank < 0)) g->vals[v].type = qo_const_get(m, g->vals[v].cref)->type;
            td = qo_type_get(m, g->vals[v].type);
            bool ok = td && td->kind == QO_TY_TENSOR && td->rank >= 0 && td->elem;
            for (int32_t d = 0; ok && d < td->rank; d++) ok = td->dims[d] >= 0 && !(td->syms && td->syms[d]);
            if (!ok) {
                qo_module_free(m);
                return qo_error(cx, QO_ERR_USAGE, &gl,
                                "input '%s' has no static shape; give the input shapes to compile for",
                                qo_val_name(sg, sg->inputs[i]));
            }
        }
    }
    /* folding a shape computation lets shape inference see more constants: repeat to a fixpoint */
    s = qo_pipeline_run(cx, m,
                        "fixpoint{max=16}(shape-infer{warn-conflicts=false value-info=false},const-fold)", NULL);
    if (s != QO_OK) {
        qo_module_free(m);
        return s;
    }
    *out = m;
    return QO_OK;
}

static qo_status fill_vinfo(qo_jit *j) {
    qo_graph *g = j->g;
    j->nvals = g->nvals;
    j->vi = qo_calloc(g->nvals ? g->nvals : 1, sizeof *j->vi);
    j->consts = qo_calloc(g->nvals ? g->nvals : 1, sizeof *j->consts);
    j->dyn = qo_calloc(g->nvals ? g->nvals : 1, sizeof *j->dyn);
    for (qo_val v = 1; v < g->nvals; v++) {
        if (g->vals[v].flags & QO_VAL_DEAD) continue;
        const qo_typedata *td = qo_type_get(j->m, g->vals[v].type);
        vinfo *x = &j->vi[v];
        x->def = x->last = -1;
        if (!td || td->kind != QO_TY_TENSOR || td->rank < 0 || td->rank > QO_MAX_RANK) continue;
        bool ok = td->elem != QO_UNDEF && qo_rt_elem_size(td->elem) > 0;
        for (int32_t d = 0; ok && d < td->rank; d++) ok = td->dims[d] >= 0;
        if (!ok) continue;
        x->is_static = 1;
        x->elem = td->elem;
        x->rank = td->rank;
        x->numel = 1;
        for (int32_t d = 0; d < td->rank; d++) {
            x->dims[d] = td->dims[d];
            x->numel *= td->dims[d];
        }
        x->nbytes = (size_t)x->numel * qo_rt_elem_size(td->elem);
    }
    for (uint32_t i = 0; i < g->nconsts; i++) {
        qo_val v = g->consts[i];
        QO_TRY(qo_tensor_from_const(j->cx, j->m, g->vals[v].cref, &j->consts[v]));
        j->vi[v].loc = L_CONST;
    }
    return QO_OK;
}

static bool node_ok(const qo_jit *j, qo_node n) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    if (is_ctrl(g, n)) /* run by the interpreter (qo_interp_run_node) */
        return nd->op == QO_OP_IF ? qo_node_attr(g, n, "then_branch") && qo_node_attr(g, n, "else_branch")
                                  : qo_node_attr(g, n, "body") && (nd->op != QO_OP_SCAN || j->opset >= 9);
    return nd->op != QO_OP_UNKNOWN && !(qo_op_info((qo_op)nd->op)->flags & F_CTRL) && qo_ref_kernel_for((qo_op)nd->op);
}

static bool same_op(const qo_graph *g, qo_node a, qo_node b) {
    return !strcmp(qo_node_domain(g, a), qo_node_domain(g, b)) && !strcmp(qo_node_op_type(g, a), qo_node_op_type(g, b));
}

/* One error listing, per op, the nodes that have neither a lowering nor a kernel (worded as the
 * interpreter's: "no kernel for N ops of M nodes: dom.Op (2 nodes: 'a', 'b'), ..."); then one
 * naming the first value without a static shape. */
static qo_status check_nodes(qo_jit *j, bool allow_dynamic) {
    qo_graph *g = j->g;
    qo_loc gl = graph_loc(j->m);
    uint32_t nn = 0;
    QO_FOR_EACH_NODE(g, n) nn++;
    qo_node *bad = qo_calloc(nn ? nn : 1, sizeof *bad);
    uint32_t nbad = 0;
    QO_FOR_EACH_NODE(g, n) {
        if (!node_ok(j, n)) bad[nbad++] = n;
    }
    if (nbad) {
        uint8_t *done = qo_calloc(nbad, 1);
        char *list = NULL;
        size_t len = 0;
        unsigned nops = 0;
        for (uint32_t a = 0; a < nbad; a++) {
            if (done[a]) continue;
            uint32_t cnt = 0;
            for (uint32_t b = a; b < nbad; b++) cnt += !done[b] && same_op(g, bad[a], bad[b]);
            const char *dom = qo_node_domain(g, bad[a]);
            if (nops < 16)
                str_add(&list, &len, "%s%s%s%s (%u node%s: ", nops ? ", " : "", dom, dom[0] ? "." : "",
                        qo_node_op_type(g, bad[a]), cnt, cnt == 1 ? "" : "s");
            uint32_t k = 0;
            for (uint32_t b = a; b < nbad; b++) {
                if (done[b] || !same_op(g, bad[a], bad[b])) continue;
                done[b] = 1;
                if (nops < 16 && k < 8) str_add(&list, &len, "%s'%s'", k ? ", " : "", qo_node_name(g, bad[b]));
                else if (nops < 16 && k == 8) str_add(&list, &len, ", ...");
                k++;
            }
            if (nops < 16) str_add(&list, &len, ")");
            else if (nops == 16) str_add(&list, &len, ", ...");
            nops++;
        }
        qo_status s = qo_error(j->cx, QO_ERR_UNSUPPORTED, &gl, "the JIT has no kernel for %u op%s of %u node%s (nor a native lowering): %s", nops,
                               nops == 1 ? "" : "s", nbad, nbad == 1 ? "" : "s", list);
        free(list);
        free(done);
        free(bad);
        return s;
    }
    free(bad);
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = qo_node_get(g, n);
        for (uint32_t i = 0; i < nd->nin + nd->nout; i++) {
            qo_val v = i < nd->nin ? qo_node_input(g, n, i) : qo_node_output(g, n, i - nd->nin);
            if (!v || j->vi[v].is_static) continue;
            qo_loc l = qo_node_loc(g, n);
            const qo_typedata *td = qo_type_get(j->m, g->vals[v].type);
            if (td && td->kind == QO_TY_TENSOR && (td->elem == QO_STR || (td->elem && !qo_rt_elem_size(td->elem))))
                return qo_error(j->cx, QO_ERR_UNSUPPORTED, &l, "value '%s' has element type %s, which the JIT does not handle",
                                qo_val_name(g, v), qo_elem_name(td->elem) ? qo_elem_name(td->elem) : "?");
            if ((allow_dynamic || j->ctrl_out[v]) && (!td || td->kind == QO_TY_TENSOR)) continue;
            return qo_error(j->cx, QO_ERR_UNSUPPORTED, &l,
                            "value '%s' has no static shape after shape inference (%s %u); the JIT needs static shapes",
                            qo_val_name(g, v), i < nd->nin ? "input" : "output", i < nd->nin ? i : i - nd->nin);
        }
    }
    for (uint32_t i = 0; i < g->noutputs; i++) {
        qo_val v = qo_graph_output(g, i);
        if (!v || (!j->vi[v].is_static && !allow_dynamic && !j->ctrl_out[v]))
            return qo_error(j->cx, QO_ERR_UNSUPPORTED, &gl, "graph output %u ('%s') has no static shape", i,
                            v ? qo_val_name(g, v) : "");
    }
    return QO_OK;
}

/* ---- heavy ops on planned buffers ------------------------------------------------------------ */
#ifdef QO_JIT_OPT_KERNELS
/* A static float32 value that is materialized in a buffer of its own (not a control-flow output). */
static bool dense_f32(const qo_jit *j, qo_val v) {
    return v && j->vi[v].is_static && j->vi[v].elem == QO_F32 && !j->ctrl_out[v];
}

/* The only reader of v if it is one node (not a graph output, not captured by a body), else 0. */
static qo_node sole_reader(const qo_jit *j, qo_val v) {
    const qo_graph *g = j->g;
    if (g->vals[v].nuses != 1 || j->captured[v]) return 0;
    qo_use_id u = g->vals[v].first_use;
    return u ? g->uses[u].owner : 0;
}

/* Relu, or Clip with constant bounds (defaults as the lowering's: -FLT_MAX, FLT_MAX), on float32. */
static bool act_of(const qo_jit *j, qo_node n, qo_k_act *act) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    if (nd->nout != 1 || !dense_f32(j, qo_node_input(g, n, 0)) || !dense_f32(j, qo_node_output(g, n, 0))) return false;
    if (nd->op == QO_OP_RELU && nd->nin == 1) {
        *act = (qo_k_act){QO_K_ACT_RELU, 0.0f, 0.0f};
        return true;
    }
    if (nd->op != QO_OP_CLIP) return false;
    float lo = -FLT_MAX, hi = FLT_MAX;
    if (j->opset < 11) {
        lo = qo_attr_float(g, n, "min", -FLT_MAX);
        hi = qo_attr_float(g, n, "max", FLT_MAX);
    }
    for (uint32_t i = 1; i < nd->nin && i < 3; i++) {
        qo_val v = qo_node_input(g, n, i);
        double d;
        if (!v) continue;
        if (j->vi[v].elem != QO_F32 || !const_scalar(j, v, &d)) return false;
        if (i == 1) lo = (float)d;
        else hi = (float)d;
    }
    if (nd->nin > 3) return false;
    *act = (qo_k_act){QO_K_ACT_CLIP, lo, hi};
    return true;
}

/* The other operand of Add node n (whose operand `from` continues the chain) if n is a float32 Add
 * with the output shape of `from`; 0 otherwise. */
static qo_val add_other(const qo_jit *j, qo_node n, qo_val from) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    if (nd->op != QO_OP_ADD || nd->nin != 2 || nd->nout != 1) return 0;
    qo_val a = qo_node_input(g, n, 0), b = qo_node_input(g, n, 1), o = qo_node_output(g, n, 0);
    qo_val other = a == from ? b : a;
    if (a == b || !dense_f32(j, other) || !dense_f32(j, o) || !same_shape(&j->vi[o], &j->vi[from])) return 0;
    return other;
}

/* Transpose node t on a dense static float32 value: its perm (resolved) and input; false otherwise. */
static bool transpose_perm(const qo_jit *j, qo_node t, int64_t *perm, qo_val *src) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, t);
    if (nd->op != QO_OP_TRANSPOSE || nd->nin != 1 || nd->nout != 1) return false;
    qo_val x = qo_node_input(g, t, 0), o = qo_node_output(g, t, 0);
    if (!dense_f32(j, x) || !dense_f32(j, o)) return false;
    int32_t r = j->vi[x].rank;
    const qo_attr *a = qo_node_attr(g, t, "perm");
    bool seen[QO_MAX_RANK] = {false};
    if (a && (a->kind != QO_ATTR_INTS || (int64_t)a->n != r)) return false;
    for (int32_t i = 0; i < r; i++) {
        perm[i] = a ? (a->u.is[i] < 0 ? a->u.is[i] + r : a->u.is[i]) : r - 1 - i;
        if (perm[i] < 0 || perm[i] >= r || seen[perm[i]]) return false;
        seen[perm[i]] = true;
    }
    *src = x;
    return true;
}

static bool is_graph_output(const qo_jit *j, qo_val v) {
    for (uint32_t i = 0; i < j->g->noutputs; i++)
        if (qo_graph_output(j->g, i) == v) return true;
    return false;
}

/* Element strides of Transpose t's output as a view of its dense input; 0 where the extent is 1. */
static void transpose_strides(const qo_jit *j, qo_val src, const int64_t *perm, int64_t *ostr) {
    const vinfo *x = &j->vi[src];
    int64_t xs[QO_MAX_RANK], s = 1;
    for (int32_t i = x->rank - 1; i >= 0; i--) xs[i] = s, s *= x->dims[i];
    for (int32_t i = 0; i < x->rank; i++) ostr[i] = x->dims[perm[i]] == 1 ? 0 : xs[perm[i]];
}

/* Rewrites K's MATMUL plan into MATMUL_STRIDED, folding a Transpose that feeds operand A or B (its
 * only reader is the MatMul) into the operand's strides, and one that is the MatMul's only reader
 * and keeps the last axis into the result's. Operands of rank >= 2 only; a view that cblas cannot
 * read (no unit stride in the two matrix dims) is left alone. Returns the Transpose folded into the
 * result (0 = none). */
static qo_node fold_transposes(qo_jit *j, kcall *K) {
    qo_graph *g = j->g;
    qo_node n = K->chain[0];
    qo_k_matmul_params mm = K->plan.u.mm;
    qo_k_smm_params p = {.M = mm.M, .N = mm.N, .K = mm.K, .brank = mm.brank, .act = mm.act};
    memcpy(p.bdims, mm.bdims, sizeof p.bdims);
    memcpy(p.astr, mm.astr, sizeof p.astr);
    memcpy(p.bstr, mm.bstr, sizeof p.bstr);
    p.lda = mm.K, p.ldb = mm.N, p.ldy = mm.N;
    bool folded = false;
    for (uint32_t i = 0; i < 2; i++) {
        qo_val v = qo_node_input(g, n, i), src;
        qo_node t = g->vals[v].def;
        int64_t perm[QO_MAX_RANK], st[QO_MAX_RANK];
        int32_t r = j->vi[v].rank;
        if (!t || r < 2 || j->kc_of[t] || sole_reader(j, v) != n || is_graph_output(j, v) ||
            !transpose_perm(j, t, perm, &src))
            continue;
        transpose_strides(j, src, perm, st);
        int64_t rows = j->vi[v].dims[r - 2], cols = j->vi[v].dims[r - 1], ld;
        int32_t tr;
        if (st[r - 1] == 1 || cols == 1) tr = 0, ld = rows == 1 ? (cols > 1 ? cols : 1) : st[r - 2];
        else if (st[r - 2] == 1 || rows == 1) tr = 1, ld = cols == 1 ? (rows > 1 ? rows : 1) : st[r - 1];
        else continue;
        if (ld < (tr ? rows : cols) || ld < 1 || ld > INT32_MAX) continue;
        int64_t *bs = i == 0 ? p.astr : p.bstr;
        for (int32_t b = 0; b < p.brank; b++) {
            int32_t ob = b - (p.brank - (r - 2));
            bs[b] = ob < 0 || j->vi[v].dims[ob] == 1 ? 0 : st[ob];
        }
        if (i == 0) p.transA = tr, p.lda = ld;
        else p.transB = tr, p.ldb = ld;
        K->pro[i] = t, K->src[i] = src;
        folded = true;
    }
    /* result: Y dim d lands at the Transpose output's axis inv[d] */
    qo_node ot = 0;
    qo_val out = qo_node_output(g, n, 0), tsrc;
    qo_node u = sole_reader(j, out);
    int64_t perm[QO_MAX_RANK];
    int32_t r = j->vi[out].rank;
    if (u && r >= 2 && !j->kc_of[u] && !is_graph_output(j, out) && transpose_perm(j, u, perm, &tsrc) &&
        perm[r - 1] == r - 1 && p.brank == r - 2) {
        qo_val to = qo_node_output(g, u, 0);
        int64_t ts[QO_MAX_RANK], s = 1, inv[QO_MAX_RANK];
        for (int32_t i = r - 1; i >= 0; i--) ts[i] = s, s *= j->vi[to].dims[i];
        for (int32_t i = 0; i < r; i++) inv[perm[i]] = i;
        int64_t ld = p.M == 1 ? (p.N > 1 ? p.N : 1) : ts[inv[r - 2]];
        if (ld >= p.N && ld <= INT32_MAX) {
            for (int32_t b = 0; b < p.brank; b++) p.ystr[b] = ts[inv[b]];
            p.ldy = ld;
            ot = u;
            folded = true;
        }
    }
    if (!ot) { /* dense result */
        int64_t s = p.M * p.N;
        for (int32_t b = p.brank - 1; b >= 0; b--) p.ystr[b] = s, s *= p.bdims[b];
    }
    if (folded) {
        K->plan.kind = QO_K_PLAN_MATMUL_STRIDED;
        K->plan.u.smm = p;
    }
    return ot;
}

/* If n is a float32 binary op `op` with `from` as one operand and a constant scalar as the other
 * (`from` first if ordered), producing the shape of `from`: the constant. */
static bool scalar_op(const qo_jit *j, qo_node n, qo_op op, qo_val from, bool ordered, float *c) {
    const qo_graph *g = j->g;
    if (!n) return false;
    const qo_nodedata *nd = qo_node_get(g, n);
    if (nd->op != op || nd->nin != 2 || nd->nout != 1) return false;
    qo_val a = qo_node_input(g, n, 0), b = qo_node_input(g, n, 1), o = qo_node_output(g, n, 0);
    if (a != from && (ordered || b != from)) return false;
    qo_val k = a == from ? b : a;
    double d;
    if (k == from || j->vi[k].elem != QO_F32 || !const_scalar(j, k, &d) || j->vi[k].rank > j->vi[from].rank ||
        !dense_f32(j, o) || !same_shape(&j->vi[o], &j->vi[from]))
        return false;
    *c = (float)d;
    return true;
}

/* The only reader of v if it is one node of op `op`, else 0. */
static qo_node reader_op(const qo_jit *j, qo_val v, qo_op op) {
    qo_node u = sole_reader(j, v);
    return u && !j->kc_of[u] && qo_node_get(j->g, u)->op == op && !is_graph_output(j, v) ? u : 0;
}

/* The erf GELU as PyTorch exports it, reading x (the chain's value so far): Div(x, c1) -> Erf ->
 * Add(1) -> Mul(x, .) -> Mul(., c3), with x read by exactly the Div and the first Mul. Fills the
 * five nodes and the act (QO_K_ACT_GELU, lo = c1, hi = c3). */
static bool gelu_chain(const qo_jit *j, qo_val x, qo_node *nodes, qo_k_act *act) {
    const qo_graph *g = j->g;
    if (g->vals[x].nuses != 2 || j->captured[x] || is_graph_output(j, x)) return false;
    qo_node d = 0, m = 0;
    QO_FOR_EACH_USE(g, x, u) {
        qo_node own = g->uses[u].owner;
        if (!own || j->kc_of[own]) return false;
        if (qo_node_get(g, own)->op == QO_OP_DIV && !d) d = own;
        else if (qo_node_get(g, own)->op == QO_OP_MUL && !m) m = own;
        else return false;
    }
    float c1, c2, c3;
    if (!d || !m || !scalar_op(j, d, QO_OP_DIV, x, true, &c1)) return false;
    qo_val dv = qo_node_output(g, d, 0);
    qo_node e = reader_op(j, dv, QO_OP_ERF);
    if (!e || qo_node_get(g, e)->nin != 1 || !dense_f32(j, qo_node_output(g, e, 0))) return false;
    qo_val ev = qo_node_output(g, e, 0);
    qo_node a = reader_op(j, ev, QO_OP_ADD);
    if (!a || !scalar_op(j, a, QO_OP_ADD, ev, false, &c2) || c2 != 1.0f) return false;
    qo_val av = qo_node_output(g, a, 0);
    if (sole_reader(j, av) != m || is_graph_output(j, av)) return false;
    qo_val m0 = qo_node_input(g, m, 0), m1 = qo_node_input(g, m, 1), mv = qo_node_output(g, m, 0);
    if (!((m0 == x && m1 == av) || (m0 == av && m1 == x)) || !dense_f32(j, mv) || !same_shape(&j->vi[mv], &j->vi[x]))
        return false;
    qo_node h = reader_op(j, mv, QO_OP_MUL);
    if (!h || !scalar_op(j, h, QO_OP_MUL, mv, false, &c3)) return false;
    nodes[0] = d, nodes[1] = e, nodes[2] = a, nodes[3] = m, nodes[4] = h;
    *act = (qo_k_act){QO_K_ACT_GELU, c1, c3};
    return true;
}

/* Softmax node n (one output, float32, static shapes) normalizes over the last axis only. */
static bool last_axis_softmax(const qo_jit *j, qo_node n) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    if (nd->nin != 1 || nd->nout != 1) return false;
    qo_val x = qo_node_input(g, n, 0), o = qo_node_output(g, n, 0);
    if (!dense_f32(j, x) || !dense_f32(j, o) || !same_shape(&j->vi[x], &j->vi[o]) || j->vi[x].rank < 1) return false;
    int64_t r = j->vi[x].rank, axis = qo_attr_int(g, n, "axis", j->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    return axis == r - 1;
}

/* LayerNormalization node n over the last axis (length N) with constant float32 Scale (and B) of N
 * values, one output: fills p's ln_* fields (the constants live as long as the compiled graph). */
static bool row_layernorm(const qo_jit *j, qo_node n, int64_t N, qo_k_smm_params *p) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    if (nd->nin < 2 || nd->nin > 3) return false;
    for (uint32_t i = 1; i < nd->nout; i++)
        if (qo_node_output(g, n, i)) return false;
    qo_val x = qo_node_input(g, n, 0), o = qo_node_output(g, n, 0);
    if (!dense_f32(j, x) || !dense_f32(j, o) || !same_shape(&j->vi[x], &j->vi[o]) || j->vi[x].rank < 1) return false;
    int64_t r = j->vi[x].rank, axis = qo_attr_int(g, n, "axis", -1);
    if (axis < 0) axis += r;
    if (axis != r - 1 || j->vi[x].dims[r - 1] != N) return false;
    const float *sb[2] = {NULL, NULL};
    for (uint32_t i = 1; i < nd->nin; i++) {
        qo_val v = qo_node_input(g, n, i);
        if (!v && i == 2) continue;
        if (!v || !(g->vals[v].flags & QO_VAL_CONST) || (g->vals[v].flags & QO_VAL_INPUT) ||
            j->vi[v].elem != QO_F32 || j->vi[v].numel != N || !j->consts[v].data ||
            j->vi[v].dims[j->vi[v].rank - 1] != N)
            return false;
        sb[i - 1] = j->consts[v].data;
    }
    p->ln_scale = sb[0], p->ln_bias = sb[1];
    p->ln_eps = qo_attr_float(g, n, "epsilon", 1e-5f);
    return true;
}

/* A MATMUL plan as a MATMUL_STRIDED one on the same dense buffers. */
static void matmul_dense_strided(qo_k_plan *pl) {
    qo_k_matmul_params mm = pl->u.mm;
    qo_k_smm_params p = {.M = mm.M, .N = mm.N, .K = mm.K, .brank = mm.brank, .act = mm.act};
    memcpy(p.bdims, mm.bdims, sizeof p.bdims);
    memcpy(p.astr, mm.astr, sizeof p.astr);
    memcpy(p.bstr, mm.bstr, sizeof p.bstr);
    p.lda = mm.K, p.ldb = mm.N, p.ldy = mm.N;
    int64_t s = p.M * p.N;
    for (int32_t b = p.brank - 1; b >= 0; b--) p.ystr[b] = s, s *= p.bdims[b];
    pl->kind = QO_K_PLAN_MATMUL_STRIDED;
    pl->u.smm = p;
}

/* Plans every node that an optimized kernel covers with static float32 shapes, and fuses the
 * epilogue chains (see kcall). */
/* Shape-only tensors (no data) of the inputs of n (at most 3) for the kernels' planners: sh[i] and
 * ins[i] = &sh[i], ins[i] NULL for an absent input; false if an input is not dense static float32. */
static bool input_shapes(const qo_jit *j, qo_node n, qo_tensor *sh, const qo_tensor **ins) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    for (uint32_t i = 0; i < 3; i++) ins[i] = NULL;
    if (nd->nin > 3) return false;
    for (uint32_t i = 0; i < nd->nin; i++) {
        qo_val v = qo_node_input(g, n, i);
        if (!v) continue;
        if (!dense_f32(j, v)) return false;
        memset(&sh[i], 0, sizeof sh[i]);
        sh[i].elem = QO_F32, sh[i].rank = j->vi[v].rank, sh[i].nbytes = j->vi[v].nbytes;
        memcpy(sh[i].dims, j->vi[v].dims, sizeof(int64_t) * (size_t)j->vi[v].rank);
        ins[i] = &sh[i];
    }
    return true;
}

/* qo_k_node_plan of node n on its inputs' shapes (all dense static float32); false if not planned. */
static bool node_plan(const qo_jit *j, qo_node n, qo_k_plan *pl) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    qo_tensor sh[3];
    const qo_tensor *ins[3];
    if (nd->nin < 1 || nd->nout != 1 || !input_shapes(j, n, sh, ins)) return false;
    qo_kctx kc = {.cx = j->cx, .g = g, .n = n, .opset = j->opset, .fast_conv = j->fast_conv};
    return qo_k_node_plan(&kc, NULL, ins, nd->nin, 1, pl) == QO_OK;
}

/* True if Conv plan b is a 1x1 sibling of Conv plan a (qo_k_conv_params.y2): a strided, one group,
 * centered odd kernel; b 1x1 without padding with a's strides, batch, channels and output extents. */
static bool conv_sibs(const qo_k_plan *a, const qo_k_plan *b) {
    const qo_k_conv_params *p = &a->u.conv, *q = &b->u.conv;
    if (a->kind != QO_K_PLAN_CONV || b->kind != QO_K_PLAN_CONV || !qo_k_conv_sib_ok(p) || q->group != 1 ||
        q->nsp != p->nsp || q->N != p->N || q->C != p->C)
        return false;
    bool strided = false;
    for (int i = 0; i < p->nsp; i++) {
        if (q->ker[i] != 1 || q->pad[i] != 0 || q->str[i] != p->str[i] || q->out[i] != p->out[i]) return false;
        strided = strided || p->str[i] > 1;
    }
    return strided;
}

/* Training steps (fast_conv): for each strided Conv A with a 1x1 sibling B later in program order
 * (conv_sibs), the nodes between them that B's inputs come from (its bias's quantizer, say) move
 * before A, so that B can run inside A's call (sib_conv); not if one of them reads A's results. */
static void hoist_sibling_inputs(qo_jit *j) {
    qo_graph *g = j->g;
    uint32_t nn = g->nnodes ? g->nnodes : 1;
    uint32_t *pos = qo_calloc(nn, sizeof *pos);
    qo_node *stack = qo_calloc(nn, sizeof *stack), *set = qo_calloc(nn, sizeof *set);
    uint8_t *seen = qo_calloc(nn, 1);
    QO_FOR_EACH_NODE(g, a) {
        qo_k_plan pa, pb;
        if (qo_node_get(g, a)->op != QO_OP_CONV || !node_plan(j, a, &pa) || pa.kind != QO_K_PLAN_CONV) continue;
        uint32_t k = 0;
        QO_FOR_EACH_NODE(g, n) pos[n] = ++k;
        qo_val x = qo_node_input(g, a, 0);
        QO_FOR_EACH_USE(g, x, u) {
            qo_node b = g->uses[u].owner;
            if (!b || pos[b] <= pos[a] || qo_node_get(g, b)->op != QO_OP_CONV || qo_node_input(g, b, 0) != x ||
                !node_plan(j, b, &pb) || !conv_sibs(&pa, &pb))
                continue;
            /* B's ancestors after A */
            memset(seen, 0, nn);
            uint32_t sp = 0, ns = 0;
            bool ok = true;
            stack[sp++] = b;
            while (sp && ok) {
                qo_node m = stack[--sp];
                const qo_nodedata *md = qo_node_get(g, m);
                for (uint32_t i = 0; i < md->nin && ok; i++) {
                    qo_val v = qo_node_input(g, m, i);
                    qo_node d = v ? g->vals[v].def : 0;
                    if (d == a) ok = false; /* B reads A's results: B cannot run in A's call */
                    if (!ok || !d || seen[d] || pos[d] < pos[a]) continue;
                    if (is_ctrl(g, d)) ok = false;
                    seen[d] = 1;
                    set[ns++] = d;
                    stack[sp++] = d;
                }
            }
            if (!ok) continue;
            /* in program order, each right before A */
            for (uint32_t i = 1; i < ns; i++)
                for (uint32_t q = i; q > 0 && pos[set[q - 1]] > pos[set[q]]; q--) {
                    qo_node t = set[q];
                    set[q] = set[q - 1], set[q - 1] = t;
                }
            for (uint32_t i = 0; i < ns; i++) qo_node_move_before(g, set[i], a);
            break;
        }
    }
    free(pos);
    free(stack);
    free(set);
    free(seen);
}

/* The 1x1 sibling B of Conv kcall K (training steps, fast_conv; hoist_sibling_inputs ran): B reads
 * K's input, conv_sibs holds, B is not planned yet and comes after K's node, all B's inputs are
 * defined before K's call runs (at pos_end, its chain's end), and B's result (after a Relu/Clip
 * that is its only reader, fused) is read only after that. Sets K's sib, sib_act, out2 and the
 * plan's M2 and act2. */
static void sib_conv(qo_jit *j, kcall *K, const uint32_t *pos, uint32_t pos_end) {
    const qo_graph *g = j->g;
    qo_node a = K->chain[0];
    qo_val x = qo_node_input(g, a, 0);
    QO_FOR_EACH_USE(g, x, u) {
        qo_node b = g->uses[u].owner;
        qo_k_plan pb;
        if (!b || j->kc_of[b] || pos[b] <= pos[a] || qo_node_get(g, b)->op != QO_OP_CONV ||
            qo_node_input(g, b, 0) != x || !node_plan(j, b, &pb) || !conv_sibs(&K->plan, &pb))
            continue;
        const qo_nodedata *bd = qo_node_get(g, b);
        bool ok = true;
        for (uint32_t i = 0; i < bd->nin && ok; i++) {
            qo_val v = qo_node_input(g, b, i);
            ok = !v || !g->vals[v].def || pos[g->vals[v].def] < pos_end;
        }
        qo_val out2 = qo_node_output(g, b, 0);
        qo_node act = sole_reader(j, out2);
        qo_k_act a2 = {QO_K_ACT_NONE, 0.0f, 0.0f};
        if (act && !is_graph_output(j, out2) && !j->kc_of[act] && act_of(j, act, &a2)) out2 = qo_node_output(g, act, 0);
        else act = 0;
        ok = ok && !is_graph_output(j, out2) && !j->captured[out2] && dense_f32(j, out2);
        QO_FOR_EACH_USE(g, out2, w) {
            qo_node r = g->uses[w].owner;
            if (!r || pos[r] <= pos_end) ok = false;
        }
        if (!ok) continue;
        K->sib = b, K->sib_act = act, K->out2 = out2;
        K->plan.u.conv.M2 = pb.u.conv.M, K->plan.u.conv.act2 = a2;
        return;
    }
}

/* The 1x1 sibling of ConvTranspose kcall K (training steps, fast_conv): `other`, the operand of the
 * Add fused after K, is the output of a ConvTranspose B without bias that nothing else reads, with a
 * 1x1 kernel, no padding, one group, K's strides and K's input extents, whose kcall (if planned) is
 * B alone. Their sum is then one call (qo_k_conv_params.x2: ResNet's downsample beside the 3x3
 * stride-2 convolution; both input gradients land in the same dX). Returns B (its channels into
 * *C2) or 0. */
static qo_node sib_convt(qo_jit *j, const kcall *K, qo_val other, int64_t *C2) {
    const qo_graph *g = j->g;
    const qo_k_conv_params *a = &K->plan.u.conv;
    if (!j->fast_conv || K->plan.kind != QO_K_PLAN_CONVTRANSPOSE || a->group != 1 || a->x2) return 0;
    qo_node b = g->vals[other].def;
    if (!b || !sole_reader(j, other) || is_graph_output(j, other)) return 0;
    const qo_nodedata *bd = qo_node_get(g, b);
    if (bd->op != QO_OP_CONVTRANSPOSE || bd->nin != 2 || bd->nout != 1) return 0;
    qo_k_plan pb;
    if (j->kc_of[b]) {
        const kcall *B = &j->kcalls[j->kc_of[b] - 1];
        if (B->nchain != 1 || B->out != other || B->res || B->sib) return 0;
        pb = B->plan;
    } else if (!node_plan(j, b, &pb)) {
        return 0;
    }
    const qo_k_conv_params *q = &pb.u.conv;
    if (pb.kind != QO_K_PLAN_CONVTRANSPOSE || q->nsp != a->nsp || q->group != 1 || q->N != a->N || q->M != a->M)
        return 0;
    for (int i = 0; i < a->nsp; i++)
        if (q->ker[i] != 1 || q->pad[i] != 0 || q->str[i] != a->str[i] || q->in[i] != a->in[i] || q->out[i] != a->out[i])
            return 0;
    *C2 = q->C;
    return b;
}

/* True if kcall K, a lone 1x1 ConvTranspose without padding, should leave the Add of `other` (the
 * output of a ConvTranspose planned later) to that one, which may take K's node in as its sibling
 * (sib_convt); if it does not, it fuses the Add as a residual instead. */
static bool defer_to_sibling(const qo_jit *j, const kcall *K, qo_val other) {
    const qo_graph *g = j->g;
    const qo_k_conv_params *q = &K->plan.u.conv;
    if (!j->fast_conv || K->plan.kind != QO_K_PLAN_CONVTRANSPOSE || K->nchain != 1 || q->group != 1) return false;
    for (int i = 0; i < q->nsp; i++)
        if (q->ker[i] != 1 || q->pad[i] != 0) return false;
    qo_node a = g->vals[other].def;
    return a && !j->kc_of[a] && qo_node_get(g, a)->op == QO_OP_CONVTRANSPOSE;
}

/* True if node q is a QuantGrad a ConvTranspose's call can apply to its result dy in the epilogue
 * (qo_k_qgrad): dY = dy (read by nothing else), X a float32 tensor of dy's shape, per-tensor float32
 * scale, zero point and bit width, reduce = 1, dBitwidth not used; its attributes into *qg. */
static bool qg_epilogue(const qo_jit *j, qo_node q, qo_val dy, qo_k_qgrad *qg) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, q);
    if (nd->op != QO_OP_TRAIN_QUANTGRAD || nd->nin != 5 || nd->nout < 1 || qo_node_input(g, q, 0) != dy) return false;
    qo_val x = qo_node_input(g, q, 1), dx = qo_node_output(g, q, 0);
    /* dX read (the call writes it; a model input's gradient that nothing reads keeps the QuantGrad
       apart, for its dScale) */
    if (x == dy || !dense_f32(j, x) || !same_shape(&j->vi[x], &j->vi[dy]) || !dx || !dense_f32(j, dx) ||
        !same_shape(&j->vi[dx], &j->vi[dy]) || !qo_attr_int(g, q, "reduce", 0) ||
        !(g->vals[dx].nuses || j->captured[dx] || is_graph_output(j, dx)))
        return false;
    for (uint32_t i = 2; i < 5; i++) {
        qo_val v = qo_node_input(g, q, i);
        if (!v || v == dy || !dense_f32(j, v) || j->vi[v].numel != 1) return false;
    }
    qo_val ds = nd->nout > 1 ? qo_node_output(g, q, 1) : 0, db = nd->nout > 2 ? qo_node_output(g, q, 2) : 0;
    if (ds && (!dense_f32(j, ds) || j->vi[ds].numel != 1)) return false;
    if (db && (g->vals[db].nuses || j->captured[db] || is_graph_output(j, db))) return false;
    int rm = node_round_mode(g, q);
    if (rm < 0) return false;
    *qg = (qo_k_qgrad){.is_signed = qo_attr_int(g, q, "signed", 1) != 0, .narrow = qo_attr_int(g, q, "narrow", 0) != 0,
                       .relu = qo_attr_int(g, q, "relu", 0) != 0, .rm = rm};
    return true;
}

static void plan_kcalls(qo_jit *j, bool no_fusion) {
    qo_graph *g = j->g;
    j->kc_of = qo_calloc(g->nnodes ? g->nnodes : 1, sizeof *j->kc_of);
    uint32_t cap = 0, *pos = qo_calloc(g->nnodes ? g->nnodes : 1, sizeof *pos), np = 0;
    QO_FOR_EACH_NODE(g, n) pos[n] = ++np;
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = qo_node_get(g, n);
        if (j->kc_of[n] || !qo_k_node_supported((qo_op)nd->op) || nd->nin < 1 || nd->nin > 3) continue;
        qo_tensor sh[3];
        const qo_tensor *ins[3];
        bool ok = input_shapes(j, n, sh, ins);
        qo_val out = qo_node_output(g, n, 0);
        if (!ok || !dense_f32(j, out)) continue;
        for (uint32_t r = 1; r < nd->nout; r++)
            if (qo_node_output(g, n, r)) ok = false;
        if (!ok) continue;
        kcall K = {.chain = {n}, .nchain = 1, .out = out, .src = {qo_node_input(g, n, 0), nd->nin > 1 ? qo_node_input(g, n, 1) : 0}};
        qo_kctx kc = {.cx = j->cx, .g = g, .n = n, .opset = j->opset, .fast_conv = j->fast_conv};
        if (qo_k_node_plan(&kc, NULL, ins, nd->nin, nd->nout, &K.plan) != QO_OK) continue;
        const vinfo *ov = &j->vi[out];
        ok = K.plan.rank == ov->rank;
        for (int32_t d = 0; ok && d < ov->rank; d++) ok = K.plan.dims[d] == ov->dims[d];
        if (!ok) continue; /* the run-time path reports the disagreement */
        /* epilogue chain */
        int kind = K.plan.kind;
        bool heavy = kind == QO_K_PLAN_CONV || kind == QO_K_PLAN_CONVTRANSPOSE || kind == QO_K_PLAN_GEMM ||
                     kind == QO_K_PLAN_MATMUL;
        qo_k_act act = {QO_K_ACT_NONE, 0.0f, 0.0f};
        if (kind == QO_K_PLAN_MATMUL && !no_fusion) {
            qo_node ot = fold_transposes(j, &K);
            kind = K.plan.kind;
            if (ot) {
                K.tout = 1;
                K.chain[K.nchain++] = ot;
                K.out = qo_node_output(g, ot, 0);
                ov = &j->vi[K.out];
            }
        }
        while (heavy && !no_fusion && K.nchain < KC_MAX_CHAIN && act.kind == QO_K_ACT_NONE) {
            qo_node u = sole_reader(j, K.out);
            if (!u || j->kc_of[u]) break;
            qo_val other = add_other(j, u, K.out);
            if (other && defer_to_sibling(j, &K, other)) break;
            if (other && !K.bias && !K.res && (kind == QO_K_PLAN_MATMUL || kind == QO_K_PLAN_MATMUL_STRIDED) && j->vi[other].numel == ov->dims[ov->rank - 1] &&
                j->vi[other].rank >= 1 && ov->rank >= 1 && j->vi[other].dims[j->vi[other].rank - 1] == ov->dims[ov->rank - 1] &&
                j->vi[other].rank <= ov->rank && !same_shape(&j->vi[other], ov)) {
                K.bias = other;
            } else if (other && !K.res && !K.sib && K.nchain == 1 && (K.sib = sib_convt(j, &K, other, &K.plan.u.conv.C2))) {
                /* the Add of a 1x1 sibling's output: the sibling runs inside this call */
            } else if (other && !K.res && same_shape(&j->vi[other], ov)) {
                K.res = other;
            } else if (act_of(j, u, &act)) {
            } else if ((kind == QO_K_PLAN_MATMUL || kind == QO_K_PLAN_MATMUL_STRIDED) &&
                       scalar_op(j, u, QO_OP_DIV, K.out, true, &act.lo)) {
                act.kind = QO_K_ACT_DIV;
            } else {
                break;
            }
            K.chain[K.nchain++] = u;
            K.out = qo_node_output(g, u, 0);
        }
        qo_node gl[5];
        if ((kind == QO_K_PLAN_MATMUL || kind == QO_K_PLAN_MATMUL_STRIDED) && !no_fusion &&
            act.kind == QO_K_ACT_NONE && K.nchain + 5 <= KC_MAX_CHAIN && gelu_chain(j, K.out, gl, &act)) {
            for (int c = 0; c < 5; c++) K.chain[K.nchain++] = gl[c];
            K.out = qo_node_output(g, gl[4], 0);
        }
        if (kind == QO_K_PLAN_MATMUL) { /* the strided kernel also merges broadcast-B batches into rows */
            matmul_dense_strided(&K.plan);
            kind = K.plan.kind;
        }
        qo_node sm = kind == QO_K_PLAN_MATMUL_STRIDED && !no_fusion && K.nchain < KC_MAX_CHAIN ? reader_op(j, K.out, QO_OP_SOFTMAX) : 0;
        if (sm && last_axis_softmax(j, sm)) { /* a Softmax over the rows of the result */
            K.plan.u.smm.softmax = 1;
            K.chain[K.nchain++] = sm;
            K.out = qo_node_output(g, sm, 0);
        }
        qo_node ln = kind == QO_K_PLAN_MATMUL_STRIDED && !no_fusion && !K.plan.u.smm.softmax && K.nchain < KC_MAX_CHAIN
                         ? reader_op(j, K.out, QO_OP_LAYERNORMALIZATION) : 0;
        if (ln && row_layernorm(j, ln, K.plan.u.smm.N, &K.plan.u.smm)) { /* e.g. residual Add -> LayerNorm */
            K.chain[K.nchain++] = ln;
            K.out = qo_node_output(g, ln, 0);
        }
        if (kind == QO_K_PLAN_CONV && !no_fusion && j->fast_conv)
            sib_conv(j, &K, pos, pos[K.chain[K.nchain - 1]]);
        qo_node qn = kind == QO_K_PLAN_CONVTRANSPOSE && !no_fusion && j->fast_conv && K.nchain < KC_MAX_CHAIN
                         ? sole_reader(j, K.out) : 0;
        if (qn && !j->kc_of[qn] && qg_epilogue(j, qn, K.out, &K.qg)) { /* the input gradient's QuantGrad */
            K.qgn = qn;
            K.chain[K.nchain++] = qn;
            K.out = qo_node_output(g, qn, 0);
            K.qg_ds = qo_node_get(g, qn)->nout > 1 ? qo_node_output(g, qn, 1) : 0;
        }
        switch (kind) {
        case QO_K_PLAN_CONV: case QO_K_PLAN_CONVTRANSPOSE: K.plan.u.conv.act = act; break;
        case QO_K_PLAN_GEMM: K.plan.u.gemm.act = act; break;
        case QO_K_PLAN_MATMUL: K.plan.u.mm.act = act; break;
        case QO_K_PLAN_MATMUL_STRIDED: K.plan.u.smm.act = act; break;
        default: break;
        }
        if (j->nkcalls == cap) j->kcalls = qo_realloc(j->kcalls, (cap = cap ? 2 * cap : 16) * sizeof *j->kcalls);
        j->kcalls[j->nkcalls++] = K;
        for (uint32_t c = 0; c < K.nchain; c++) j->kc_of[K.chain[c]] = j->nkcalls;
        if (K.sib) j->kc_of[K.sib] = j->nkcalls; /* runs here: no call (nor step) of its own */
        if (K.sib_act) j->kc_of[K.sib_act] = j->nkcalls;
        for (uint32_t c = 0; c < 2; c++)
            if (K.pro[c]) j->kc_of[K.pro[c]] = j->nkcalls;
    }
    free(pos);
}

/* n's ConvGradWeight geometry (qo_k_cgw_params on its inputs' shapes); false if not resolved. */
static bool cgw_params(const qo_jit *j, qo_node n, qo_k_conv_params *p) {
    const qo_graph *g = j->g;
    const qo_nodedata *nd = qo_node_get(g, n);
    qo_tensor sh[3];
    const qo_tensor *ins[3];
    if (nd->op != QO_OP_TRAIN_CONVGRADWEIGHT || nd->nin != 3 || nd->nout != 1 || !dense_f32(j, qo_node_output(g, n, 0)) ||
        !input_shapes(j, n, sh, ins) || !ins[0] || !ins[1] || !ins[2])
        return false;
    qo_kctx kc = {.cx = j->cx, .g = g, .n = n, .opset = j->opset, .fast_conv = j->fast_conv};
    return qo_k_cgw_params(&kc, ins, 3, p) == QO_OK;
}

/* cgw_pairs of the training step (fast_conv): for each ConvGradWeight with a centered odd kernel, a
 * 1x1 ConvGradWeight on the same input with its strides, batch, channels and output extents, where
 * every reader of the earlier one's output comes after the later one. */
static void plan_cgw_pairs(qo_jit *j, bool no_fusion) {
    qo_graph *g = j->g;
    j->pair_of = qo_calloc(g->nnodes ? g->nnodes : 1, sizeof *j->pair_of);
    if (no_fusion || !j->fast_conv) return;
    uint32_t *pos = qo_calloc(g->nnodes ? g->nnodes : 1, sizeof *pos), k = 0, cap = 0;
    QO_FOR_EACH_NODE(g, n) pos[n] = ++k;
    QO_FOR_EACH_NODE(g, a) {
        qo_k_conv_params pa, pb;
        if (j->pair_of[a] || !cgw_params(j, a, &pa) || !qo_k_conv_sib_ok(&pa)) continue;
        qo_val x = qo_node_input(g, a, 1);
        QO_FOR_EACH_USE(g, x, u) {
            qo_node b = g->uses[u].owner;
            if (!b || b == a || j->pair_of[b] || qo_node_input(g, b, 1) != x || !cgw_params(j, b, &pb)) continue;
            bool ok = pb.nsp == pa.nsp && pb.group == 1 && pb.N == pa.N && pb.C == pa.C;
            for (int i = 0; ok && i < pa.nsp; i++)
                ok = pb.ker[i] == 1 && pb.pad[i] == 0 && pb.str[i] == pa.str[i] && pb.out[i] == pa.out[i];
            qo_node early = pos[a] < pos[b] ? a : b, late = early == a ? b : a;
            qo_val eo = qo_node_output(g, early, 0);
            ok = ok && !is_graph_output(j, eo) && !j->captured[eo];
            QO_FOR_EACH_USE(g, eo, w) {
                qo_node r = g->uses[w].owner;
                if (!r || pos[r] <= pos[late]) ok = false;
            }
            if (!ok) continue;
            if (j->npairs == cap) j->pairs = qo_realloc(j->pairs, (cap = cap ? 2 * cap : 4) * sizeof *j->pairs);
            j->pairs[j->npairs++] = (cgw_pair){.a = a, .b = b, .early = early, .late = late, .pa = pa, .M2 = pb.M};
            j->pair_of[a] = j->pair_of[b] = j->npairs;
            break;
        }
    }
    free(pos);
}
#else
static void plan_cgw_pairs(qo_jit *j, bool no_fusion) {
    (void)no_fusion;
    j->pair_of = qo_calloc(j->g->nnodes ? j->g->nnodes : 1, sizeof *j->pair_of);
}

static void plan_kcalls(qo_jit *j, bool no_fusion) {
    (void)no_fusion;
    j->kc_of = qo_calloc(j->g->nnodes ? j->g->nnodes : 1, sizeof *j->kc_of); }
#endif

/* Groups and steps. */
static void build_steps(qo_jit *j, uint32_t *gid, bool no_fusion) {
    qo_graph *g = j->g;
    uint32_t nn = 0;
    QO_FOR_EACH_NODE(g, n) nn++;
    qo_node *order = qo_calloc(nn ? nn : 1, sizeof *order);
    uint32_t k = 0;
    QO_FOR_EACH_NODE(g, n) order[k++] = n;
    bool *is_gout = qo_calloc(g->nvals ? g->nvals : 1, sizeof *is_gout);
    for (uint32_t i = 0; i < g->noutputs; i++) is_gout[qo_graph_output(g, i)] = true;
    uint32_t capg = 16;
    j->groups = qo_calloc(capg, sizeof *j->groups);
    qo_node *stack = qo_calloc(nn ? nn : 1, sizeof *stack);
    for (uint32_t r = nn; r-- > 0;) {
        qo_node n = order[r];
        if (gid[n] || j->kc_of[n] || !lowerable(j, n)) continue;
        if (j->ngroups == capg) {
            j->groups = qo_realloc(j->groups, (capg *= 2) * sizeof *j->groups);
            memset(j->groups + j->ngroups, 0, (capg - j->ngroups) * sizeof *j->groups);
        }
        uint32_t gi = j->ngroups++;
        group *G = &j->groups[gi];
        G->root = n;
        gid[n] = gi + 1;
        const vinfo *o = out_vi(j, n);
        uint32_t sp = 0;
        stack[sp++] = n;
        while (sp && !no_fusion) {
            qo_node m = stack[--sp];
            const qo_nodedata *md = qo_node_get(g, m);
            for (uint32_t i = 0; i < md->nin; i++) {
                qo_val v = qo_node_input(g, m, i);
                if (!v) continue;
                qo_node p = g->vals[v].def;
                if (!p || gid[p] || j->kc_of[p] || is_gout[v] || j->captured[v] || !lowerable(j, p) ||
                    !same_shape(&j->vi[v], o))
                    continue;
                bool inside = true;
                QO_FOR_EACH_USE(g, v, u) {
                    qo_node own = g->uses[u].owner;
                    if (!own || gid[own] != gi + 1) inside = false;
                }
                if (!inside) continue;
                gid[p] = gi + 1;
                stack[sp++] = p;
            }
        }
    }
    /* members in program order; steps */
    j->steps = qo_calloc(nn ? nn : 1, sizeof *j->steps);
    for (uint32_t i = 0; i < nn; i++) {
        qo_node n = order[i];
        if (gid[n]) {
            group *G = &j->groups[gid[n] - 1];
            G->members = qo_realloc(G->members, (G->nmembers + 1) * sizeof *G->members);
            G->members[G->nmembers++] = n;
            if (G->root == n) j->steps[j->nsteps++] = (step){.kind = S_LOOP, .node = n, .group = gid[n] - 1};
        } else if (j->kc_of[n]) { /* the call runs where its chain ends */
            const kcall *K = &j->kcalls[j->kc_of[n] - 1];
            if (K->chain[K->nchain - 1] == n)
                j->steps[j->nsteps++] = (step){.kind = S_KCALL, .node = K->chain[0], .group = j->kc_of[n] - 1};
        } else if (j->pair_of[n]) { /* a cgw_pair runs where its later node is */
            if (j->pairs[j->pair_of[n] - 1].late == n) j->steps[j->nsteps++] = (step){.kind = S_KERNEL, .node = n};
        } else {
            j->steps[j->nsteps++] = (step){.kind = is_copy_op(j, n) ? S_COPY : S_KERNEL, .node = n};
        }
    }
    free(stack);
    free(order);
    free(is_gout);
}

static qo_status plan_memory(qo_jit *j, const uint32_t *gid, bool no_alias) {
    qo_graph *g = j->g;
    int32_t *stepof = qo_calloc(g->nnodes ? g->nnodes : 1, sizeof *stepof);
    for (uint32_t s = 0; s < j->nsteps; s++) {
        const step *st = &j->steps[s];
        if (st->kind == S_LOOP) {
            const group *G = &j->groups[st->group];
            for (uint32_t k = 0; k < G->nmembers; k++) stepof[G->members[k]] = (int32_t)s;
        } else if (st->kind == S_KCALL) {
            const kcall *K = &j->kcalls[st->group];
            for (uint32_t k = 0; k < K->nchain; k++) stepof[K->chain[k]] = (int32_t)s;
            if (K->sib) stepof[K->sib] = (int32_t)s; /* its inputs are read here */
            if (K->sib_act) stepof[K->sib_act] = (int32_t)s;
            for (uint32_t k = 0; k < 2; k++)
                if (K->pro[k]) stepof[K->pro[k]] = (int32_t)s;
        } else {
            stepof[st->node] = (int32_t)s;
        }
    }
    for (uint32_t p = 0; p < j->npairs; p++) stepof[j->pairs[p].early] = stepof[j->pairs[p].late];
    for (uint32_t i = 0; i < g->ninputs; i++) {
        j->vi[g->inputs[i]].loc = L_INPUT;
        j->vi[g->inputs[i]].idx = i;
    }
    j->out_inplace = qo_calloc(g->noutputs ? g->noutputs : 1, 1);
    /* locations of values defined by nodes */
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = qo_node_get(g, n);
        for (uint32_t r = 0; r < nd->nout; r++) {
            qo_val v = qo_node_output(g, n, r);
            if (!v) continue;
            vinfo *x = &j->vi[v];
            x->def = stepof[n];
            x->last = -1;
            if (gid[n] && j->groups[gid[n] - 1].root != n) {
                x->loc = L_REG;
                continue;
            }
            const kcall *Kn = j->kc_of[n] ? &j->kcalls[j->kc_of[n] - 1] : NULL;
            if (Kn && v != Kn->out && v != Kn->out2 && v != Kn->qg_ds) {
                /* inside an epilogue chain */
                x->loc = L_NONE;
                continue;
            }
            x->loc = !x->is_static ? L_DYN : g->vals[v].nuses || j->captured[v] ? L_ARENA : L_NONE;
        }
    }
    for (uint32_t i = 0; i < g->noutputs; i++) {
        qo_val v = qo_graph_output(g, i);
        if (j->vi[v].loc == L_ARENA || j->vi[v].loc == L_NONE) {
            bool first = true;
            for (uint32_t k = 0; k < i; k++) first = first && qo_graph_output(g, k) != v;
            if (first && g->vals[v].def) {
                j->vi[v].loc = L_OUTPUT;
                j->vi[v].idx = i;
                j->out_inplace[i] = 1;
            }
        }
    }
    /* lifetimes */
    QO_FOR_EACH_NODE(g, n) {
        const qo_nodedata *nd = qo_node_get(g, n);
        for (uint32_t i = 0; i < nd->nin; i++) {
            qo_val v = qo_node_input(g, n, i);
            if (v && j->vi[v].last < stepof[n]) j->vi[v].last = stepof[n];
        }
        if (!is_ctrl(g, n)) continue;
        uint32_t nc; /* values read by the node's bodies live until it has run */
        qo_val *cs = node_captures(j, n, &nc);
        for (uint32_t k = 0; k < nc; k++)
            if (j->vi[cs[k]].last < stepof[n]) j->vi[cs[k]].last = stepof[n];
        free(cs);
    }
    for (qo_val v = 1; v < g->nvals; v++)
        if (j->vi[v].loc == L_ARENA && j->vi[v].last < j->vi[v].def) j->vi[v].last = j->vi[v].def;
    /* a Reshape-like copy whose input buffer nobody reads afterwards shares that buffer (no copy);
       so does a QuantGrad's dX with its dY (written in place: each element is read before it is
       written, and a buffer still in cache is not fetched again to be overwritten) */
    for (uint32_t s = 0; s < j->nsteps && !no_alias; s++) {
        bool qg = j->steps[s].kind == S_KERNEL && qo_node_get(g, j->steps[s].node)->op == QO_OP_TRAIN_QUANTGRAD;
        if (j->steps[s].kind != S_COPY && !qg) continue;
        qo_val iv = qo_node_input(g, j->steps[s].node, 0), ov = qo_node_output(g, j->steps[s].node, 0);
        if (!iv || !ov || (qg && (j->vi[iv].nbytes != j->vi[ov].nbytes || j->vi[iv].elem != j->vi[ov].elem))) continue;
        if (j->vi[iv].loc != L_ARENA || j->vi[ov].loc != L_ARENA || j->captured[iv] || j->captured[ov]) continue;
        qo_val root = j->vi[iv].alias ? j->vi[iv].alias : iv;
        if (j->vi[root].last > (int32_t)s) continue;
        j->vi[ov].alias = root;
        if (j->vi[root].last < j->vi[ov].last) j->vi[root].last = j->vi[ov].last;
        if (qg) j->st.inplace_kernels++;
        else j->st.aliased_copies++;
    }
    buf *bs = qo_calloc(g->nvals ? g->nvals : 1, sizeof *bs);
    uint32_t nb = 0;
    size_t naive = 0;
    for (qo_val v = 1; v < g->nvals; v++) {
        vinfo *x = &j->vi[v];
        if (x->loc != L_ARENA || x->alias) continue;
        bs[nb++] = (buf){.v = v, .size = x->nbytes, .def = x->def, .last = x->last};
        naive += align_up(x->nbytes);
    }
    size_t peak = plan_arena(j, bs, nb);
    free(bs);
    free(stepof);
    j->st.arena_bytes = peak;
    j->st.naive_bytes = naive;
    j->arena_bytes = peak + ALIGN;
    j->arena = qo_calloc_big(j->arena_bytes);
    char *base = (char *)(((uintptr_t)j->arena + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    j->addr = qo_calloc(g->nvals ? g->nvals : 1, sizeof *j->addr);
    for (qo_val v = 1; v < g->nvals; v++) {
        if (j->vi[v].loc == L_ARENA) j->addr[v] = base + j->vi[j->vi[v].alias ? j->vi[v].alias : v].off;
        else if (j->vi[v].loc == L_CONST) j->addr[v] = j->consts[v].data;
    }
    /* default initializers of inputs */
    j->defaults = qo_calloc(g->ninputs ? g->ninputs : 1, sizeof *j->defaults);
    for (uint32_t i = 0; i < g->ninputs; i++) {
        qo_val v = g->inputs[i];
        if (g->vals[v].cref) QO_TRY(qo_tensor_from_const(j->cx, j->m, g->vals[v].cref, &j->defaults[i]));
    }
    return QO_OK;
}

/* Elementwise loops with at least this many elements are split over the kernel threads. */
#define PAR_MIN_ELEMS 32768
/* Elements per chunk at least (a chunk is a range of the outermost loop). */
#define PAR_GRAIN_ELEMS 16384

typedef void (*group_wrapper)(void **args, int64_t lo, int64_t hi);
typedef struct par_ctx {
    group_wrapper f;
    void **args;
} par_ctx;

static void par_task(void *ctx, int64_t b, int64_t e, int tid) {
    (void)tid;
    par_ctx *c = ctx;
    c->f(c->args, b, e);
}

/* Runs a group's loop (wrapper f over its pointer array) over [0, n) of its outermost dim, inner
 * elements per index, on the kernel threads when there are several (called from JIT code). */
static void jit_par_loop(qo_jit *j, group_wrapper f, void **args, int64_t n, int64_t inner) {
#ifdef QO_JIT_OPT_KERNELS
    if (j->pool && qo_pool_size(j->pool) > 1) {
        par_ctx c = {f, args};
        int64_t grain = PAR_GRAIN_ELEMS / (inner > 0 ? inner : 1);
        qo_pool_for(j->pool, n, grain > 0 ? grain : 1, par_task, &c);
        return;
    }
#else
    (void)j;
#endif
    f(args, 0, n);
}

/* w<gi>(args, lo, hi): calls g<gi> with the np pointers of args and the range. */
static LLVMValueRef emit_wrapper(emitter *E, LLVMValueRef g, uint32_t gi, uint32_t np) {
    LLVMTypeRef wt[3] = {E->ptr, E->i64, E->i64};
    char name[32];
    snprintf(name, sizeof name, "w%u", gi);
    LLVMValueRef w = LLVMAddFunction(E->M, name, LLVMFunctionType(E->v, wt, 3, 0));
    LLVMBasicBlockRef saved = LLVMGetInsertBlock(E->B);
    LLVMPositionBuilderAtEnd(E->B, LLVMAppendBasicBlockInContext(E->C, w, "entry"));
    LLVMValueRef *a = qo_calloc(np + 2, sizeof *a);
    LLVMTypeRef *pt = qo_calloc(np + 2, sizeof *pt);
    for (uint32_t k = 0; k < np; k++) {
        LLVMValueRef ix = ci64(E, k);
        a[k] = LLVMBuildLoad2(E->B, E->ptr, LLVMBuildGEP2(E->B, E->ptr, LLVMGetParam(w, 0), &ix, 1, ""), "");
        pt[k] = E->ptr;
    }
    a[np] = LLVMGetParam(w, 1);
    a[np + 1] = LLVMGetParam(w, 2);
    pt[np] = pt[np + 1] = E->i64;
    LLVMBuildCall2(E->B, LLVMFunctionType(E->v, pt, np + 2, 0), g, a, np + 2, "");
    LLVMBuildRetVoid(E->B);
    free(a);
    free(pt);
    if (saved) LLVMPositionBuilderAtEnd(E->B, saved);
    return w;
}

static LLVMValueRef load_addr(emitter *E, LLVMValueRef addr, qo_val v) {
    LLVMValueRef i = ci64(E, (int64_t)v);
    LLVMValueRef p = LLVMBuildGEP2(E->B, E->ptr, addr, &i, 1, "");
    return LLVMBuildLoad2(E->B, E->ptr, p, "");
}

static qo_status codegen(qo_jit *j, const uint32_t *gid, const qo_jit_opts *o) {
    qo_ctx *cx = j->cx;
    qo_loc gl = graph_loc(j->m);
    pthread_once(&llvm_once, llvm_init);
    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName(), *feat = LLVMGetHostCPUFeatures();
    LLVMTargetRef target;
    char *emsg = NULL;
    qo_status s = QO_OK;
    if (LLVMGetTargetFromTriple(triple, &target, &emsg)) {
        s = qo_error(cx, QO_ERR_BACKEND, &gl, "LLVM: no target for %s: %s", triple, emsg);
        LLVMDisposeMessage(emsg);
        LLVMDisposeMessage(triple);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(feat);
        return s;
    }
    int lvl = o && o->opt_level >= 0 && o->opt_level <= 3 ? o->opt_level : 3;
    LLVMCodeGenOptLevel cg = lvl == 0 ? LLVMCodeGenLevelNone : lvl == 1 ? LLVMCodeGenLevelLess
                             : lvl == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelAggressive;
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, feat, cg, LLVMRelocDefault, LLVMCodeModelJITDefault);
    LLVMTargetMachineRef tm_jit = LLVMCreateTargetMachine(target, triple, cpu, feat, cg, LLVMRelocDefault,
                                                          LLVMCodeModelJITDefault);

    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    emitter E = {.j = j};
    E.C = LLVMOrcThreadSafeContextGetContext(tsc);
    E.M = LLVMModuleCreateWithNameInContext("qopt", E.C);
    LLVMSetTarget(E.M, triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(E.M, td);
    LLVMDisposeTargetData(td);
    E.B = LLVMCreateBuilderInContext(E.C);
    E.f32 = LLVMFloatTypeInContext(E.C);
    E.f64 = LLVMDoubleTypeInContext(E.C);
    E.i1 = LLVMInt1TypeInContext(E.C);
    E.i8 = LLVMInt8TypeInContext(E.C);
    E.i16 = LLVMInt16TypeInContext(E.C);
    E.i32 = LLVMInt32TypeInContext(E.C);
    E.i64 = LLVMInt64TypeInContext(E.C);
    E.ptr = LLVMPointerTypeInContext(E.C, 0);
    E.v = LLVMVoidTypeInContext(E.C);
    E.sv = qo_calloc(j->nvals ? j->nvals : 1, sizeof *E.sv);

    /* group functions */
    LLVMValueRef *gfn = qo_calloc(j->ngroups ? j->ngroups : 1, sizeof *gfn);
    operand **gops = qo_calloc(j->ngroups ? j->ngroups : 1, sizeof *gops);
    uint32_t *gnops = qo_calloc(j->ngroups ? j->ngroups : 1, sizeof *gnops);
    int64_t *gext = qo_calloc(j->ngroups ? j->ngroups : 1, sizeof *gext);
    LLVMValueRef *gwrap = qo_calloc(j->ngroups ? j->ngroups : 1, sizeof *gwrap);
    for (uint32_t gi = 0; gi < j->ngroups; gi++) {
        gfn[gi] = emit_group(&E, gid, gi, &gops[gi], &gnops[gi], &gext[gi]);
        qo_val ov = qo_node_output(j->g, j->groups[gi].root, 0);
        if (gext[gi] >= 2 && j->vi[ov].numel >= PAR_MIN_ELEMS) gwrap[gi] = emit_wrapper(&E, gfn[gi], gi, 1 + gnops[gi]);
    }

    /* main */
    LLVMTypeRef mps[2] = {E.ptr, E.ptr};
    LLVMTypeRef mft = LLVMFunctionType(E.i32, mps, 2, 0);
    LLVMValueRef mainf = LLVMAddFunction(E.M, "qo_main", mft);
    LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(E.C, mainf, "entry");
    LLVMPositionBuilderAtEnd(E.B, bb);
    LLVMValueRef addr = LLVMGetParam(mainf, 0), jp = LLVMGetParam(mainf, 1);
    LLVMTypeRef cps[2] = {E.ptr, E.i32};
    LLVMTypeRef cft = LLVMFunctionType(E.i32, cps, 2, 0);
    for (uint32_t si = 0; si < j->nsteps; si++) {
        const step *st = &j->steps[si];
        if (st->kind == S_LOOP) {
            uint32_t gi = st->group;
            qo_val ov = qo_node_output(j->g, st->node, 0);
            if (!j->vi[ov].numel || j->vi[ov].loc == L_NONE) continue; /* empty or unread */
            uint32_t np = 1 + gnops[gi];
            LLVMValueRef *args = qo_calloc(np + 2, sizeof *args);
            LLVMTypeRef *pt = qo_calloc(np + 2, sizeof *pt);
            args[0] = load_addr(&E, addr, ov);
            for (uint32_t k = 0; k < gnops[gi]; k++)
                args[k + 1] = gops[gi][k].konst ? LLVMConstPointerNull(E.ptr) : load_addr(&E, addr, gops[gi][k].v);
            for (uint32_t k = 0; k < np; k++) pt[k] = E.ptr;
            if (gwrap[gi]) {
                /* the pointers go to an array; jit_par_loop splits [0, ext0) over the kernel threads */
                LLVMTypeRef at = LLVMArrayType(E.ptr, np);
                LLVMValueRef arr = LLVMBuildAlloca(E.B, at, "");
                for (uint32_t k = 0; k < np; k++) {
                    LLVMValueRef ix = ci64(&E, k);
                    LLVMBuildStore(E.B, args[k], LLVMBuildGEP2(E.B, E.ptr, arr, &ix, 1, ""));
                }
                qo_val rv = qo_node_output(j->g, j->groups[gi].root, 0);
                LLVMValueRef pa[5] = {jp, gwrap[gi], arr, ci64(&E, gext[gi]), ci64(&E, j->vi[rv].numel / gext[gi])};
                LLVMTypeRef ppt[5] = {E.ptr, E.ptr, E.ptr, E.i64, E.i64};
                LLVMBuildCall2(E.B, LLVMFunctionType(E.v, ppt, 5, 0), fn_addr(&E, (uintptr_t)jit_par_loop), pa, 5, "");
                j->par_loops++;
            } else {
                pt[np] = pt[np + 1] = E.i64;
                args[np] = ci64(&E, 0);
                args[np + 1] = ci64(&E, gext[gi]);
                LLVMBuildCall2(E.B, LLVMFunctionType(E.v, pt, np + 2, 0), gfn[gi], args, np + 2, "");
            }
            free(args);
            free(pt);
        } else if (st->kind == S_COPY) {
            qo_val iv = qo_node_input(j->g, st->node, 0), ov = qo_node_output(j->g, st->node, 0);
            if (!j->vi[ov].nbytes || j->vi[ov].loc == L_NONE || j->vi[ov].alias) continue;
            LLVMBuildMemCpy(E.B, load_addr(&E, addr, ov), 1, load_addr(&E, addr, iv), 1,
                            ci64(&E, (int64_t)j->vi[ov].nbytes));
        } else {
            LLVMValueRef a[2] = {jp, LLVMConstInt(E.i32, si, 0)};
            LLVMValueRef r = LLVMBuildCall2(E.B, cft, fn_addr(&E, (uintptr_t)jit_call), a, 2, "");
            LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(E.C, mainf, "fail");
            LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(E.C, mainf, "ok");
            LLVMBuildCondBr(E.B, LLVMBuildICmp(E.B, LLVMIntNE, r, LLVMConstInt(E.i32, 0, 0), ""), fail, ok);
            LLVMPositionBuilderAtEnd(E.B, fail);
            LLVMBuildRet(E.B, r);
            LLVMPositionBuilderAtEnd(E.B, ok);
        }
    }
    LLVMBuildRet(E.B, LLVMConstInt(E.i32, 0, 0));
    for (uint32_t gi = 0; gi < j->ngroups; gi++) free(gops[gi]);
    free(gops);
    free(gnops);
    free(gfn);
    free(gext);
    free(gwrap);
    free(E.sv);
    LLVMDisposeBuilder(E.B);

    char *vmsg = NULL;
    if (LLVMVerifyModule(E.M, LLVMReturnStatusAction, &vmsg)) {
        s = qo_error(cx, QO_ERR_BACKEND, &gl, "LLVM: generated module does not verify: %s", vmsg);
        LLVMDisposeMessage(vmsg);
        goto fail_module;
    }
    LLVMDisposeMessage(vmsg);
    {
        char passes[32];
        snprintf(passes, sizeof passes, "default<O%d>", lvl);
        LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
        LLVMPassBuilderOptionsSetLoopVectorization(po, lvl >= 2);
        LLVMPassBuilderOptionsSetSLPVectorization(po, lvl >= 2);
        LLVMErrorRef e = LLVMRunPasses(E.M, passes, tm, po);
        LLVMDisposePassBuilderOptions(po);
        if (e) {
            s = llvm_err(cx, &gl, e, "optimization");
            goto fail_module;
        }
    }
    if (o && o->dump_llvm) {
        char *t = LLVMPrintModuleToString(E.M);
        fputs(t, stderr);
        LLVMDisposeMessage(t);
    }
    {
        LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
        LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm_jit));
        tm_jit = NULL;
        LLVMErrorRef e = LLVMOrcCreateLLJIT(&j->lljit, jb); /* takes jb */
        if (e) {
            j->lljit = NULL;
            s = llvm_err(cx, &gl, e, "creating the JIT");
            goto fail_module;
        }
        LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(E.M, tsc);
        E.M = NULL;
        e = LLVMOrcLLJITAddLLVMIRModule(j->lljit, LLVMOrcLLJITGetMainJITDylib(j->lljit), tsm);
        if (e) { /* the module was consumed either way */
            s = llvm_err(cx, &gl, e, "adding the module");
            goto fail_module;
        }
        LLVMOrcExecutorAddress fa = 0;
        e = LLVMOrcLLJITLookup(j->lljit, &fa, "qo_main");
        if (e) {
            s = llvm_err(cx, &gl, e, "looking up qo_main");
            goto fail_module;
        }
        j->fn = (int32_t(*)(void **, qo_jit *))(uintptr_t)fa;
    }
fail_module:
    if (E.M) LLVMDisposeModule(E.M);
    LLVMOrcDisposeThreadSafeContext(tsc);
    if (tm_jit) LLVMDisposeTargetMachine(tm_jit);
    LLVMDisposeTargetMachine(tm);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    return s;
}

qo_status qo_jit_compile(qo_ctx *cx, const qo_module *m, const qo_jit_opts *opts, qo_jit **out) {
    double t0 = now_seconds();
    *out = NULL;
    qo_jit *j = qo_calloc(1, sizeof *j);
    j->cx = cx;
    j->fast_conv = opts && opts->fast_conv;
    qo_status s = specialize(cx, m, opts, &j->m);
    if (s != QO_OK) {
        free(j);
        return s;
    }
    j->g = qo_module_main(j->m);
    j->opset = qo_module_opset(j->m, "");
    uint32_t *gid = NULL;
    if ((s = fill_vinfo(j)) != QO_OK) goto fail;
    mark_ctrl(j);
    if ((s = check_nodes(j, opts && opts->allow_dynamic)) != QO_OK) goto fail;
    gid = qo_calloc(j->g->nnodes ? j->g->nnodes : 1, sizeof *gid);
#ifdef QO_JIT_OPT_KERNELS
    if (j->fast_conv && !(opts && opts->no_fusion)) hoist_sibling_inputs(j);
#endif
    plan_kcalls(j, opts && opts->no_fusion);
    plan_cgw_pairs(j, opts && opts->no_fusion);
    build_steps(j, gid, opts && opts->no_fusion);
    if ((s = plan_memory(j, gid, opts && opts->no_fusion)) != QO_OK) goto fail;
    if ((s = codegen(j, gid, opts)) != QO_OK) goto fail;
    for (uint32_t i = 0; i < j->ngroups; i++) j->st.fused_ops += j->groups[i].nmembers;
    j->st.fused_groups = j->ngroups;
    for (uint32_t i = 0; i < j->nsteps; i++)
        if (j->steps[i].kind == S_KCALL) {
            j->st.kernel_calls++;
            const kcall *K = &j->kcalls[j->steps[i].group];
            j->st.epilogue_ops += K->nchain - 1 - K->tout;
            j->st.sibling_convs += K->sib != 0;
            j->st.qgrad_epilogues += K->qgn != 0;
            j->st.folded_transposes += K->tout + (K->pro[0] != 0) + (K->pro[1] != 0);
        } else if (j->steps[i].kind == S_KERNEL) {
            j->st.kernel_calls++;
            j->st.sibling_convs += j->pair_of[j->steps[i].node] != 0;
#ifdef QO_JIT_OPT_KERNELS
            if (qo_k_node_supported((qo_op)qo_node_get(j->g, j->steps[i].node)->op)) continue;
#endif
            j->st.fallback_calls++;
        }
#ifdef QO_JIT_OPT_KERNELS
    if (j->st.kernel_calls > j->st.fallback_calls || j->par_loops) {
        j->pool = qo_pool_new(opts ? opts->threads : 0);
        if (!j->pool) {
            qo_loc gl = graph_loc(j->m);
            s = qo_error(cx, QO_ERR_BACKEND, &gl, "cannot start the kernel threads");
            goto fail;
        }
    }
#endif
    free(gid);
    j->st.compile_seconds = now_seconds() - t0;
    *out = j;
    return QO_OK;
fail:
    free(gid);
    qo_jit_free(j);
    return s;
}

qo_status qo_jit_output_shape(const qo_jit *j, uint32_t i, qo_tensor *shape) {
    memset(shape, 0, sizeof *shape);
    if (i >= j->g->noutputs) {
        qo_loc gl = graph_loc(j->m);
        return qo_error(j->cx, QO_ERR_USAGE, &gl, "the model has no output #%u", i);
    }
    const vinfo *x = &j->vi[qo_graph_output(j->g, i)];
    shape->elem = x->elem;
    shape->rank = x->is_static ? x->rank : -1;
    for (int32_t d = 0; d < x->rank; d++) shape->dims[d] = x->dims[d];
    return QO_OK;
}

qo_status qo_jit_run(qo_jit *j, const qo_tensor *const *inputs, uint32_t nin, qo_tensor *outputs, uint32_t nout) {
    const qo_graph *g = j->g;
    qo_ctx *cx = j->cx;
    qo_loc gl = graph_loc(j->m);
    if (nin != g->ninputs) return qo_error(cx, QO_ERR_USAGE, &gl, "the model has %u inputs, %u given", g->ninputs, nin);
    if (nout != g->noutputs)
        return qo_error(cx, QO_ERR_USAGE, &gl, "the model has %u outputs, room for %u given", g->noutputs, nout);
    for (uint32_t i = 0; i < nin; i++) {
        qo_val v = g->inputs[i];
        const qo_tensor *t = inputs && inputs[i] ? inputs[i] : (g->vals[v].cref ? &j->defaults[i] : NULL);
        if (!t)
            return qo_error(cx, QO_ERR_USAGE, &gl, "input '%s' is missing (it has no default initializer)",
                            qo_val_name(g, v));
        const vinfo *x = &j->vi[v];
        bool same = t->elem == x->elem && t->rank == x->rank;
        for (int32_t d = 0; same && d < t->rank; d++) same = t->dims[d] == x->dims[d];
        if (!same) {
            char a[256], b[256];
            fmt_shape(t->elem, t->rank, t->dims, a, sizeof a);
            fmt_shape(x->elem, x->rank, x->dims, b, sizeof b);
            return qo_error(cx, QO_ERR_USAGE, &gl, "input '%s': got %s, the graph was compiled for %s", qo_val_name(g, v),
                            a, b);
        }
        j->addr[v] = t->data;
    }
    bool *alloced = qo_calloc(nout ? nout : 1, sizeof *alloced);
    qo_status s = QO_OK;
    for (uint32_t i = 0; i < nout; i++) {
        qo_tensor *t = &outputs[i];
        const vinfo *x = &j->vi[qo_graph_output(g, i)];
        if (x->loc == L_DYN) {
            if (t->data || t->nbytes || t->rank || t->elem) {
                s = qo_error(cx, QO_ERR_USAGE, &gl, "output %u ('%s') has a run-time shape: pass it zeroed", i,
                             qo_val_name(g, qo_graph_output(g, i)));
                goto out;
            }
            continue;
        }
        if (!t->data && !t->nbytes && !t->rank && !t->elem) {
            if ((s = qo_tensor_make(cx, t, x->elem, x->rank, x->dims)) != QO_OK) goto out;
            alloced[i] = true;
        } else {
            bool same = t->elem == x->elem && t->rank == x->rank && t->nbytes == x->nbytes;
            for (int32_t d = 0; same && d < t->rank; d++) same = t->dims[d] == x->dims[d];
            if (!same) {
                s = qo_error(cx, QO_ERR_USAGE, &gl, "output %u ('%s'): the buffer given has another shape", i,
                             qo_val_name(g, qo_graph_output(g, i)));
                goto out;
            }
        }
        if (j->out_inplace[i]) j->addr[qo_graph_output(g, i)] = t->data;
    }
    s = (qo_status)j->fn(j->addr, j);
    for (uint32_t i = 0; s == QO_OK && i < nout; i++) {
        if (j->out_inplace[i]) continue;
        qo_val v = qo_graph_output(g, i);
        if (j->vi[v].loc == L_DYN) s = qo_tensor_copy(cx, &j->dyn[v], &outputs[i]);
        else if (j->vi[v].nbytes) memcpy(outputs[i].data, j->addr[v], j->vi[v].nbytes);
        if (s == QO_OK && j->vi[v].loc == L_DYN) alloced[i] = true;
    }
    for (uint32_t v = 0; v < j->nvals; v++) qo_tensor_free(&j->dyn[v]);
out:
    if (s != QO_OK)
        for (uint32_t i = 0; i < nout; i++)
            if (alloced[i]) qo_tensor_free(&outputs[i]);
    free(alloced);
    return s;
}

void qo_jit_get_stats(const qo_jit *j, qo_jit_stats *st) { *st = j->st; }

void qo_jit_free(qo_jit *j) {
    if (!j) return;
#ifdef QO_JIT_OPT_KERNELS
    qo_pool_free(j->pool);
#endif
    if (j->lljit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
        if (e) LLVMConsumeError(e);
    }
    if (j->consts)
        for (uint32_t v = 0; v < j->nvals; v++) qo_tensor_free(&j->consts[v]);
    if (j->defaults && j->g)
        for (uint32_t i = 0; i < j->g->ninputs; i++) qo_tensor_free(&j->defaults[i]);
    for (uint32_t i = 0; i < j->ngroups; i++) free(j->groups[i].members);
    free(j->groups);
    free(j->steps);
    free(j->kcalls);
    free(j->kc_of);
    free(j->pairs);
    free(j->pair_of);
    if (j->dyn)
        for (uint32_t v = 0; v < j->nvals; v++) qo_tensor_free(&j->dyn[v]);
    free(j->dyn);
    free(j->consts);
    free(j->defaults);
    free(j->vi);
    free(j->addr);
    qo_free_big(j->arena, j->arena_bytes);
    free(j->out_inplace);
    free(j->captured);
    free(j->ctrl_out);
    qo_module_free(j->m);
    free(j);
}
