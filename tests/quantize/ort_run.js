#!/usr/bin/env node
'use strict';
// Runs a single-input model with onnxruntime on one .npy and writes its first output as .npy.
//   node ort_run.js MODEL.onnx IN.npy OUT.npy [--opt disabled|basic|extended|all]
// Default: graph optimizations disabled (the exactness contract); --opt all for the mismatch figures.
const path = require('path');
const lib = require(path.join(__dirname, '..', 'ort', 'lib.js'));

async function main() {
  const [model, inp, out, flag, level] = process.argv.slice(2);
  if (!out) { process.stderr.write('usage: ort_run.js MODEL IN.npy OUT.npy [--opt LEVEL]\n'); process.exit(2); }
  const opts = Object.assign({}, lib.SESSION_OPTIONS);
  if (flag === '--opt') opts.graphOptimizationLevel = level;
  const s = await lib.ort().InferenceSession.create(model, opts);
  const x = lib.readNpy(inp);
  const r = await s.run({ [s.inputNames[0]]: lib.toOrtTensor(x) });
  const t = lib.fromOrtTensor(r[s.outputNames[0]]);
  lib.writeNpy(out, t.dtype, t.dims, t.data);
}
main().catch(e => { process.stderr.write(`ort_run.js: ${e && e.message ? e.message : e}\n`); process.exit(1); });
