/* include/qopt/qopt.h — qopt's public C API, one include for programmatic use:
 *
 *   qo_ctx cx; qo_ctx_init(&cx);
 *   qo_module *m;
 *   if (qo_onnx_load(&cx, "model.onnx", &m) != QO_OK) ...;          // frontend
 *   qo_pipeline_run(&cx, m, "canonicalize,shape-infer,dce", NULL);  // passes
 *   qo_onnx_write(&cx, m, "out.onnx", NULL);                         // ONNX backend
 *   qo_interp_run(&cx, m, inputs, nin, outputs, nout);               // reference execution
 *   qo_module_free(m);
 *
 * Every fallible call returns a qo_status; the words go to the diagnostics handler in qo_ctx. */
#ifndef QOPT_QOPT_H
#define QOPT_QOPT_H

#include "backends/onnx/onnx_write.h"
#include "frontend/onnx_load.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "runtime/rt.h"

#endif
