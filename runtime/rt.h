/* runtime/rt.h — tensors, reference kernels and the reference interpreter.
 *
 * The reference kernels (runtime/ref/) are plain scalar C, written for clarity: they are the oracle
 * the LLVM JIT is tested against, and they run any graph through the interpreter
 * (runtime/interp.c). Kernels compute their output shapes from their input shapes and attributes
 * at run time (as onnxruntime does), so the interpreter needs no prior shape inference. */
#ifndef QOPT_RUNTIME_RT_H
#define QOPT_RUNTIME_RT_H

#include "ir/ir.h"

#define QO_MAX_RANK 8

/* A dense row-major tensor. Element layout is ONNX raw_data layout except that 4-bit types are
 * unpacked to one byte per element (int8/uint8 values) and bool is one byte (0/1). */
typedef struct qo_tensor {
    uint8_t elem;               /* qo_elem */
    int32_t rank;               /* 0 = scalar */
    int64_t dims[QO_MAX_RANK];
    void *data;                 /* NULL only when numel == 0 */
    size_t nbytes;
    uint8_t owned;              /* data is owned (malloc'd) by this tensor */
} qo_tensor;

/* Bytes per element in qo_tensor layout (4-bit types: 1); 0 for strings/unknown. */
size_t qo_rt_elem_size(int elem);
/* Product of dims (1 for a scalar). */
int64_t qo_tensor_numel(const qo_tensor *t);
/* Allocates zeroed owned storage for t (elem/rank/dims must be set). Errors on overflow/too large. */
qo_status qo_tensor_alloc(qo_ctx *cx, qo_tensor *t);
/* Shapes t and allocates: convenience over qo_tensor_alloc. */
qo_status qo_tensor_make(qo_ctx *cx, qo_tensor *t, int elem, int32_t rank, const int64_t *dims);
/* Frees owned storage and zeroes t. */
void qo_tensor_free(qo_tensor *t);
/* A non-owning view of constant c (4-bit constants are unpacked into owned storage). */
qo_status qo_tensor_from_const(qo_ctx *cx, const qo_module *m, qo_cref c, qo_tensor *out);
/* Deep copy. */
qo_status qo_tensor_copy(qo_ctx *cx, const qo_tensor *src, qo_tensor *dst);

/* ---- kernels -------------------------------------------------------------------------------- */
/* What a kernel sees of the node it runs. Attributes: qo_node_attr(k->g, k->n, "name"). */
typedef struct qo_kctx {
    qo_ctx *cx;
    const qo_graph *g;
    qo_node n;
    int64_t opset;  /* the default-domain opset of the module (QONNX ops: ignored) */
    bool fast_conv; /* Conv/ConvTranspose may sum in another order (qo_k_conv_params.fast) */
} qo_kctx;

/* Runs node k->n: in[i] is NULL for an omitted optional input; the kernel shapes and allocates
 * out[0..nout) (zeroed on entry). Errors (bad shapes, unsupported attribute values or types) are
 * reported with qo_error(k->cx, ..., &loc) where loc = qo_node_loc(k->g, k->n). */
typedef qo_status (*qo_ref_kernel)(qo_kctx *k, const qo_tensor *const *in, uint32_t nin, qo_tensor *out,
                                   uint32_t nout);

/* The reference kernel for op, or NULL if none. */
qo_ref_kernel qo_ref_kernel_for(qo_op op);

/* ---- interpreter ---------------------------------------------------------------------------- */
/* Runs the main graph of m. inputs[i] feeds graph input i (nin == g->ninputs); NULL uses the input's
 * default initializer (an error if it has none). Outputs are written to outputs[0..g->noutputs) (owned; the caller frees
 * them with qo_tensor_free). Before running, every op without a kernel is reported in one error
 * listing all of them. Input element types and ranks are checked against the graph's input types. */
qo_status qo_interp_run(qo_ctx *cx, const qo_module *m, const qo_tensor *const *inputs, uint32_t nin,
                        qo_tensor *outputs, uint32_t nout);
/* The check qo_interp_run applies to a tensor fed to main-graph input i: element type, rank and
 * static (non-symbolic, non-negative) dims of the input's declared type. Reports an error naming the
 * input with expected vs got (QO_ERR_USAGE; QO_ERR_UNSUPPORTED for non-tensor inputs). */
qo_status qo_interp_check_input(qo_ctx *cx, const qo_module *m, uint32_t i, const qo_tensor *t);

/* Runs one If, Loop or Scan node n of graph g (any graph of its module) with the interpreter, as
 * qo_interp_run would run it: in[0..nin) are the node's inputs (NULL = omitted optional input),
 * out[0..nout) receive its outputs (zeroed on entry; owned on success, the caller frees them with
 * qo_tensor_free; all freed on failure). nin/nout must equal the node's. The bodies' captures are
 * resolved by name, innermost graph first, against g: scope[i] is the value of g's value
 * scope_vals[i] (non-owning; it must stay valid during the call); a capture resolving to a value of g
 * missing from the scope is an error. This entry exists for backends (the LLVM JIT) that run
 * control flow through the interpreter; op kernels in the bodies are checked as they run. */
qo_status qo_interp_run_node(qo_ctx *cx, const qo_graph *g, qo_node n, const qo_tensor *const *in, uint32_t nin,
                             qo_tensor *out, uint32_t nout, const qo_val *scope_vals, const qo_tensor *const *scope,
                             uint32_t nscope);

#endif
