#!/usr/bin/env node
'use strict';
// Self-check of the oracle against ONNX backend test data: runs run.js (as a subprocess) on ONNX
// node/model test directories with --pb-dir test_data_set_0 and compares the .npy files it writes
// with output_N.pb (rtol 1e-3, atol 1e-7 as in onnx's backend tests; exact for non-floats).
//
//   node selftest.js [TESTDIR ...]          default: a fixed selection of libonnx-testdata cases
//   node selftest.js --all DATADIR          every <DATADIR>/*/ with model.onnx (in-process, faster)
//
// Prints PASS/FAIL/SKIP per case and a summary; exit 1 if any case failed. SKIP = onnxruntime
// cannot load the model or the test data uses types the oracle does not handle (sequences...).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const lib = require('./lib');

const DATA = '/usr/share/libonnx-testdata/data';
const DEFAULT_CASES = [
  'node/test_add', 'node/test_gather_0', 'node/test_conv_with_strides_padding', 'node/test_cast_FLOAT_to_DOUBLE',
  'node/test_argmax_default_axis_example', 'node/test_equal', 'node/test_softmax_example', 'node/test_reshape_extended_dims',
  'node/test_clip_default_int8_min', 'node/test_and2d', 'node/test_where_example', 'node/test_quantizelinear',
  'node/test_dequantizelinear', 'node/test_qlinearconv', 'node/test_matmulinteger', 'node/test_layer_normalization_2d_axis0',
  'pytorch-converted/test_Conv2d', 'pytorch-converted/test_Embedding', 'pytorch-operator/test_operator_maxpool',
  'simple/test_single_relu_model',
];

function closeEnough(exp, got) {
  if (exp.dtype !== got.dtype) return `dtype ${got.dtype}, expected ${exp.dtype}`;
  if (exp.dims.length !== got.dims.length || exp.dims.some((d, i) => d !== got.dims[i]))
    return `shape [${got.dims}], expected [${exp.dims}]`;
  const n = lib.numel(exp.dims);
  const isFloat = ['float32', 'float64'].includes(exp.dtype);
  for (let i = 0; i < n; i++) {
    const e = exp.data[i], g = got.data[i];
    if (isFloat) {
      if (Number.isNaN(e) && Number.isNaN(g)) continue;
      if (e === g) continue;
      if (!(Math.abs(e - g) <= 1e-7 + 1e-3 * Math.abs(e))) return `element ${i}: ${g}, expected ${e}`;
    } else if (e !== g) return `element ${i}: ${g}, expected ${e}`;
  }
  return null;
}

function outputsOf(tds) {
  return fs.readdirSync(tds).filter(f => /^output_\d+\.pb$/.test(f))
    .sort((a, b) => parseInt(a.slice(7), 10) - parseInt(b.slice(7), 10));
}

// Through run.js: proves the CLI, the .npy writer and reader, and the TensorProto decoder.
function viaRunJs(dir) {
  const model = path.join(dir, 'model.onnx'), tds = path.join(dir, 'test_data_set_0');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'qopt-selftest-'));
  try {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'run.js'), model, '--pb-dir', tds, '--out-dir', out],
      { encoding: 'utf8' });
    if (r.status === 3) return { skip: r.stderr.trim().split('\n').pop() };
    if (r.status !== 0) return { fail: `run.js exit ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` };
    // run.js prints "name<TAB>type<TAB>file" per output in model output order
    const files = r.stdout.trim().split('\n').map(l => l.split('\t')[2]);
    const outs = outputsOf(tds);
    if (outs.length !== files.length) return { fail: `${files.length} outputs, expected ${outs.length}` };
    for (let i = 0; i < outs.length; i++) {
      let exp;
      try { exp = lib.readPb(path.join(tds, outs[i])); } catch (e) { return { skip: `${outs[i]}: ${e.message}` }; }
      const bad = closeEnough(exp, lib.readNpy(files[i]));
      if (bad) return { fail: `${outs[i]}: ${bad}` };
    }
    return {};
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

async function inProcess(dir) {
  const model = path.join(dir, 'model.onnx'), tds = path.join(dir, 'test_data_set_0');
  let s;
  try { s = await lib.createSession(model); } catch (e) { return { skip: 'ort cannot load: ' + e.message.split('\n')[0] }; }
  let feeds;
  try { feeds = lib.loadFeedsFromDir(tds, s.inputNames); } catch (e) { return { skip: e.message }; }
  const f = {};
  for (const n of s.inputNames) {
    if (!(n in feeds)) return { skip: `no data for input ${n}` };
    f[n] = lib.toOrtTensor(feeds[n]);
  }
  let res;
  try { res = await s.run(f); } catch (e) { return { fail: 'run: ' + e.message.split('\n')[0] }; }
  const outs = outputsOf(tds);
  for (let i = 0; i < outs.length && i < s.outputNames.length; i++) {
    let exp, got;
    try { exp = lib.readPb(path.join(tds, outs[i])); got = lib.fromOrtTensor(res[s.outputNames[i]]); } catch (e) { return { skip: e.message }; }
    // round-trip the result through the .npy writer/reader as well
    const tmp = path.join(os.tmpdir(), `qopt-selftest-${process.pid}.npy`);
    lib.writeNpy(tmp, got.dtype, got.dims, got.data);
    got = lib.readNpy(tmp);
    fs.unlinkSync(tmp);
    const bad = closeEnough(exp, got);
    if (bad) return { fail: `${outs[i]}: ${bad}` };
  }
  return {};
}

async function main() {
  const argv = process.argv.slice(2);
  let cases, fn = viaRunJs;
  if (argv[0] === '--all') {
    const root = argv[1] || path.join(DATA, 'node');
    cases = fs.readdirSync(root).sort().map(d => path.join(root, d))
      .filter(d => fs.existsSync(path.join(d, 'model.onnx')) && fs.existsSync(path.join(d, 'test_data_set_0')));
    fn = inProcess;
  } else {
    cases = (argv.length ? argv : DEFAULT_CASES.map(c => path.join(DATA, c)));
  }
  lib.ort();
  let pass = 0, fail = 0, skip = 0;
  for (const c of cases) {
    const r = await fn(c);
    const name = path.basename(c);
    if (r.fail) { fail++; console.log(`FAIL ${name}: ${r.fail}`); }
    else if (r.skip) { skip++; console.log(`SKIP ${name}: ${r.skip}`); }
    else { pass++; console.log(`PASS ${name}`); }
  }
  console.log(`${pass} passed, ${fail} failed` + (skip ? `, ${skip} skipped` : ''));
  return fail ? 1 : 0;
}

main().then(c => process.exit(c)).catch(e => { console.error(e); process.exit(1); });
