/* backends/llvm/jit.h — compile an IR graph to native code with LLVM 19 (ORC LLJIT) and run it.
 *
 * A compiled graph is specialized to the shapes of the inputs given at compile time (the graph's
 * static input types, or explicit shapes in opts); running it with other shapes is an error.
 * Compile once, run many times on caller-owned buffers. */
#ifndef QOPT_BACKENDS_LLVM_JIT_H
#define QOPT_BACKENDS_LLVM_JIT_H

#include "runtime/rt.h"

typedef struct qo_jit qo_jit;

typedef struct qo_jit_opts {
    int threads;                 /* runtime kernel threads; 0 = all cores */
    int opt_level;               /* LLVM optimization level 0..3 (default 3 when 0 is not asked:
                                    use -1 for "default") */
    bool no_fusion;              /* lower each elementwise op in its own loop (for testing) */
    uint32_t ninput_shapes;      /* 0 = take input shapes from the graph's static input types */
    const qo_tensor *input_shapes; /* only elem/rank/dims are read, one per graph input */
    bool dump_llvm;              /* print the LLVM IR module to stderr after optimization */
    bool allow_dynamic;          /* values whose shape depends on input values (a Reshape whose shape
                                    is a graph input, NonZero, ...) are computed at run time by their
                                    kernels on the heap instead of being a compile error; such outputs
                                    report rank -1 from qo_jit_output_shape and must be passed zeroed */
    bool fast_conv;              /* Conv/ConvTranspose may use faster algorithms whose float sums run in
                                    another order (Winograd: results within a few ulps, not bit-identical
                                    to onnxruntime's); the training steps set it, inference does not */
} qo_jit_opts;

/* Compiles the main graph of m (which is not modified; a private copy is shape-inferred).
 * Every op without a lowering or a runtime kernel is reported in one error before compiling; a value
 * without a static shape after shape inference is an error naming it (unless opts->allow_dynamic).
 * cx must outlive the compiled graph: run-time errors (kernels) are reported through it. */
qo_status qo_jit_compile(qo_ctx *cx, const qo_module *m, const qo_jit_opts *opts, qo_jit **out);

/* Runs a compiled graph: inputs[i] feeds graph input i (NULL = its default initializer); outputs
 * must be preallocated by the caller with the shapes given by qo_jit_output_shape (qo_tensor_make)
 * — or zeroed, in which case they are allocated and owned by the tensors. Thread-compatible: one
 * run at a time per qo_jit. */
qo_status qo_jit_run(qo_jit *j, const qo_tensor *const *inputs, uint32_t nin, qo_tensor *outputs,
                     uint32_t nout);

/* Shape (elem/rank/dims) of output i, without data (rank -1: known only at run time). */
qo_status qo_jit_output_shape(const qo_jit *j, uint32_t i, qo_tensor *shape);

/* Statistics: fused loop count, kernel calls, arena bytes (planned peak), compile seconds.
 * epilogue_ops: elementwise ops (Add, Relu, Clip) fused into the epilogue of a Conv/Gemm/MatMul call
 * (counted in neither fused_ops nor kernel_calls; nor are folded_transposes and aliased_copies). */
typedef struct qo_jit_stats {
    uint32_t fused_groups, fused_ops, kernel_calls, fallback_calls;
    uint32_t epilogue_ops;
    uint32_t folded_transposes; /* Transposes read or written through MatMul strides (no copy) */
    uint32_t aliased_copies;    /* Reshape-like copies that share their input's buffer (no copy) */
    uint32_t inplace_kernels;   /* kernels writing their result over an input that dies there (QuantGrad) */
    uint32_t sibling_convs;     /* 1x1 convolutions (or their gradients) run inside the call of a strided
                                   convolution on the same input (fast_conv: ResNet's downsample) */
    uint32_t qgrad_epilogues;   /* QuantGrads applied in a ConvTranspose's epilogue (fast_conv: the
                                   input gradient meeting the previous activation quantizer) */
    size_t arena_bytes, naive_bytes; /* planned peak vs sum of all intermediates */
    double compile_seconds;
} qo_jit_stats;
void qo_jit_get_stats(const qo_jit *j, qo_jit_stats *st);

void qo_jit_free(qo_jit *j);

#endif
