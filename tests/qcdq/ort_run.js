#!/usr/bin/env node
'use strict';
// onnxruntime oracle for tests/qcdq: runs MODEL on X.npy (fed to the model's first input; other inputs
// take their initializers) and writes output 0 to OUT.npy, or every output i to OUT/out_<i>.npy when OUT
// does not end in .npy. CPU, 1 thread, graph optimizations disabled
// (tests/ort/lib.js SESSION_OPTIONS), or all of them with --opt.
//   node ort_run.js MODEL.onnx X.npy OUT.npy [--opt]
//   node ort_run.js --jobs JOBS.json      (a list of {model, x, out, opt}: one process for many runs)
// Exit codes: 0 ok, 1 runtime error, 2 usage, 3 onnxruntime cannot load the model.
const path = require('path');
const lib = require(path.join(__dirname, '..', 'ort', 'lib.js'));

async function runOne(model, xfile, out, opt) {
  const ort = lib.ort();
  const so = Object.assign({}, lib.SESSION_OPTIONS);
  if (opt) so.graphOptimizationLevel = 'all';
  let session;
  try {
    session = await ort.InferenceSession.create(model, so);
  } catch (e) {
    process.stderr.write(`ort_run.js: onnxruntime cannot load ${model}: ${e.message}\n`);
    return 3;
  }
  const x = lib.readNpy(xfile);
  const feeds = {};
  feeds[session.inputNames[0]] = lib.toOrtTensor(x);
  const res = await session.run(feeds);
  if (out.endsWith('.npy')) {
    const t = lib.fromOrtTensor(res[session.outputNames[0]]);
    lib.writeNpy(out, t.dtype, t.dims, t.data);
    return 0;
  }
  require('fs').mkdirSync(out, { recursive: true });
  session.outputNames.forEach((name, i) => {
    const t = lib.fromOrtTensor(res[name]);
    lib.writeNpy(path.join(out, `out_${i}.npy`), t.dtype, t.dims, t.data);
  });
  return 0;
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--jobs' && args.length === 2) {
    const jobs = JSON.parse(require('fs').readFileSync(args[1], 'utf8'));
    let rc = 0;
    for (const j of jobs) {
      let r;
      try {
        r = await runOne(j.model, j.x, j.out, !!j.opt);
      } catch (e) {
        process.stderr.write(`ort_run.js: ${j.model}: ${e && e.message ? e.message : e}\n`);
        r = 1;
      }
      if (r) rc = r;
    }
    process.exit(rc);
  }
  const opt = args.includes('--opt');
  const pos = args.filter(a => a !== '--opt');
  if (pos.length !== 3) {
    process.stderr.write('usage: node ort_run.js MODEL.onnx X.npy OUT.npy [--opt] | --jobs JOBS.json\n');
    process.exit(2);
  }
  process.exit(await runOne(pos[0], pos[1], pos[2], opt));
}

main().catch(e => { process.stderr.write(`ort_run.js: ${e && e.stack ? e.stack : e}\n`); process.exit(1); });
