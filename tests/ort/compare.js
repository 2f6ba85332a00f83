#!/usr/bin/env node
'use strict';
// Runs two ONNX models on the same inputs with onnxruntime (CPU, graph optimizations disabled,
// 1 thread) and checks that every output is bit-identical (raw bytes; NaNs with equal bits are
// equal, -0.0 and +0.0 are not).
//
//   node compare.js A.onnx B.onnx [--seed S] [--inputs DIR] [--by-position] [--dump DIR] [-v]
//   node compare.js --probe A.onnx        (exit 0 if onnxruntime can load A, 3 if not)
//
// Inputs: --inputs DIR (a test_data_set directory with input_N.pb, or a directory of
// <input name>.npy). Without --inputs, uses <A minus .onnx>.in/ if it exists, else
// <dir of A>/test_data_set_0/ if it exists. Inputs not found there are generated from a seeded PRNG
// using A's input metadata (symbolic/unknown dims -> 1).
//
// Outputs are matched by name (B must have the same output names as A) unless --by-position.
// Exit codes: 0 identical, 1 mismatch or B failed, 2 usage error, 3 onnxruntime cannot load A,
// 4 onnxruntime failed to run A.
const fs = require('fs');
const path = require('path');
const lib = require('./lib');

function usage(msg) {
  if (msg) process.stderr.write(`compare.js: ${msg}\n`);
  process.stderr.write('usage: node compare.js A.onnx B.onnx [--seed S] [--inputs DIR] [--by-position] [--dump DIR] [-v]\n' +
    '       node compare.js --probe A.onnx\n');
  process.exit(2);
}

function fmtVal(dtype, data, i) {
  const v = data[i];
  if (dtype === 'float16') return `f16:0x${v.toString(16).padStart(4, '0')}`;
  if (dtype === 'float32' || dtype === 'float64') {
    const b = dtype === 'float32' ? Buffer.alloc(4) : Buffer.alloc(8);
    if (dtype === 'float32') b.writeFloatLE(v); else b.writeDoubleLE(v);
    // show bits too, so NaN payloads and -0.0 are visible
    return `${Object.is(v, -0) ? '-0' : v} (0x${Buffer.from(b).reverse().toString('hex')})`;
  }
  if (dtype === 'string') return JSON.stringify(v);
  return String(v);
}

function unravel(i, dims) {
  const idx = new Array(dims.length);
  for (let k = dims.length - 1; k >= 0; k--) { idx[k] = i % dims[k]; i = Math.floor(i / dims[k]); }
  return `[${idx.join(',')}]`;
}

// Returns null when identical, else a multi-line report.
function compareTensors(a, b) {
  if (a.dtype !== b.dtype) return `dtype differs: ${a.dtype} vs ${b.dtype}`;
  if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i]))
    return `shape differs: [${a.dims.join(',')}] vs [${b.dims.join(',')}]`;
  const n = lib.numel(a.dims);
  const diffs = [];
  let ndiff = 0, maxAbs = 0, nanMismatch = 0;
  if (a.dtype === 'string') {
    for (let i = 0; i < n; i++) if (a.data[i] !== b.data[i]) { ndiff++; if (diffs.length < 10) diffs.push(i); }
  } else {
    const ab = lib.bytesOf(a.data), bb = lib.bytesOf(b.data);
    if (ab.length === bb.length && ab.equals(bb)) return null;
    const sz = lib.DTYPES[a.dtype].size;
    const isFloat = a.dtype === 'float32' || a.dtype === 'float64';
    for (let i = 0; i < n; i++) {
      if (ab.compare(bb, i * sz, (i + 1) * sz, i * sz, (i + 1) * sz) !== 0) {
        ndiff++;
        if (diffs.length < 10) diffs.push(i);
        if (isFloat) {
          const x = a.data[i], y = b.data[i];
          if (Number.isNaN(x) || Number.isNaN(y)) nanMismatch++;
          else maxAbs = Math.max(maxAbs, Math.abs(x - y));
        }
      }
    }
  }
  if (ndiff === 0) return null;
  let s = `${ndiff} of ${n} elements differ`;
  if (a.dtype === 'float32' || a.dtype === 'float64') {
    s += `, max |a-b| = ${maxAbs}`;
    if (nanMismatch) s += `, ${nanMismatch} involve NaN`;
  }
  for (const i of diffs) s += `\n      at ${unravel(i, a.dims)}: ${fmtVal(a.dtype, a.data, i)} vs ${fmtVal(b.dtype, b.data, i)}`;
  if (ndiff > diffs.length) s += `\n      ...`;
  return s;
}

async function main() {
  const argv = process.argv.slice(2);
  const files = [];
  let seed = 0, inputsDir = null, byPosition = false, dumpDir = null, verbose = false, probe = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    if (a === '--seed') { seed = Number(val()); if (!Number.isInteger(seed)) usage('--seed wants an integer'); }
    else if (a === '--inputs') inputsDir = val();
    else if (a === '--by-position') byPosition = true;
    else if (a === '--dump') dumpDir = val();
    else if (a === '--probe') probe = true;
    else if (a === '-v' || a === '--verbose') verbose = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else files.push(a);
  }
  lib.ort();
  if (probe) {
    if (files.length !== 1) usage('--probe wants exactly one model');
    try { await lib.createSession(files[0]); } catch (e) {
      process.stdout.write(`onnxruntime cannot load ${files[0]}: ${oneLine(e)}\n`);
      process.exit(3);
    }
    process.stdout.write('OK\n');
    return 0;
  }
  if (files.length !== 2) usage('need two models');
  const [fa, fb] = files;

  let sa, sb;
  try { sa = await lib.createSession(fa); } catch (e) {
    process.stdout.write(`onnxruntime cannot load ${fa}: ${oneLine(e)}\n`);
    return 3;
  }
  try { sb = await lib.createSession(fb); } catch (e) {
    process.stdout.write(`MISMATCH: onnxruntime cannot load ${fb}: ${oneLine(e)}\n`);
    return 1;
  }

  // ---- inputs
  const metas = lib.inputMeta(sa);
  const names = metas.map(m => m.name);
  if (!inputsDir) {
    const base = fa.replace(/\.onnx$/i, '') + '.in';
    const tds = path.join(path.dirname(fa), 'test_data_set_0');
    if (fs.existsSync(base) && fs.statSync(base).isDirectory()) inputsDir = base;
    else if (fs.existsSync(tds) && fs.statSync(tds).isDirectory()) inputsDir = tds;
  } else if (!fs.existsSync(inputsDir)) {
    usage(`inputs directory ${inputsDir} does not exist`);
  }
  const feeds = inputsDir ? lib.loadFeedsFromDir(inputsDir, names) : {};
  const generated = [];
  for (const m of metas) {
    if (!(m.name in feeds)) { feeds[m.name] = lib.randomTensor(m, seed); generated.push(m.name); }
  }
  if (verbose) {
    process.stderr.write(`inputs: ${inputsDir ? 'from ' + inputsDir : 'none from files'}` +
      (generated.length ? `; generated (seed ${seed}): ${generated.join(', ')}` : '') + '\n');
    for (const m of metas) process.stderr.write(`  ${m.name}: ${feeds[m.name].dtype}[${feeds[m.name].dims.join(',')}]\n`);
  }
  if (dumpDir) {
    fs.mkdirSync(path.join(dumpDir, 'inputs'), { recursive: true });
    for (const n of names) lib.writeNpy(path.join(dumpDir, 'inputs', lib.sanitize(n) + '.npy'), feeds[n].dtype, feeds[n].dims, feeds[n].data);
  }

  const problems = [];
  const bNames = sb.inputNames;
  const sameInputs = bNames.length === names.length && bNames.every(n => names.includes(n));
  if (!sameInputs) {
    process.stdout.write(`MISMATCH: input names differ: A [${names.join(', ')}] vs B [${bNames.join(', ')}]\n`);
    return 1;
  }
  const mkFeeds = () => { const f = {}; for (const n of names) f[n] = lib.toOrtTensor(feeds[n]); return f; };

  let ra, rb;
  try { ra = await sa.run(mkFeeds()); } catch (e) {
    process.stdout.write(`onnxruntime failed to run ${fa}: ${oneLine(e)}\n`);
    return 4;
  }
  try { rb = await sb.run(mkFeeds()); } catch (e) {
    process.stdout.write(`MISMATCH: onnxruntime failed to run ${fb}: ${oneLine(e)}\n`);
    return 1;
  }

  // ---- outputs
  const oa = sa.outputNames, ob = sb.outputNames;
  let pairs;
  if (byPosition) {
    if (oa.length !== ob.length) problems.push(`output count differs: ${oa.length} vs ${ob.length}`);
    pairs = oa.slice(0, Math.min(oa.length, ob.length)).map((n, i) => [n, ob[i]]);
  } else {
    if (oa.length !== ob.length || oa.some((n, i) => n !== ob[i])) {
      problems.push(`output names differ: A [${oa.join(', ')}] vs B [${ob.join(', ')}]`);
    }
    pairs = oa.filter(n => ob.includes(n)).map(n => [n, n]);
  }
  for (const [na, nb] of pairs) {
    let ta, tb;
    try { ta = lib.fromOrtTensor(ra[na]); tb = lib.fromOrtTensor(rb[nb]); } catch (e) {
      problems.push(`output '${na}': ${e.message}`); continue;
    }
    if (dumpDir) {
      for (const [w, t, n] of [['a', ta, na], ['b', tb, nb]]) {
        fs.mkdirSync(path.join(dumpDir, w), { recursive: true });
        lib.writeNpy(path.join(dumpDir, w, lib.sanitize(n) + '.npy'), t.dtype, t.dims, t.data);
      }
    }
    const r = compareTensors(ta, tb);
    if (r) problems.push(`output '${na}'${na !== nb ? ` (B: '${nb}')` : ''} ${ta.dtype}[${ta.dims.join(',')}]: ${r}`);
    else if (verbose) process.stderr.write(`  output '${na}' ${ta.dtype}[${ta.dims.join(',')}]: identical\n`);
  }
  if (problems.length) {
    process.stdout.write(`MISMATCH: ${fa} vs ${fb}` + (inputsDir ? ` (inputs: ${inputsDir})` : ` (seed ${seed})`) + '\n');
    for (const p of problems) process.stdout.write(`  ${p}\n`);
    return 1;
  }
  process.stdout.write('OK\n');
  return 0;
}

function oneLine(e) { return String(e && e.message ? e.message : e).replace(/\s+/g, ' ').trim(); }

main().then(code => process.exit(code || 0))
  .catch(e => { process.stdout.write(`compare.js: error: ${e && e.stack ? e.stack : e}\n`); process.exit(1); });
