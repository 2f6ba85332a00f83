#!/usr/bin/env node
'use strict';
// Runs an ONNX model with onnxruntime (CPU, graph optimizations disabled, 1 thread) and writes each
// output as <out-dir>/<sanitized output name>.npy.
//
//   node run.js MODEL.onnx [--input NAME=FILE.npy ...] [--pb-dir DIR] [--npy-dir DIR] --out-dir DIR
//
// --pb-dir DIR   reads DIR/input_N.pb (ONNX TensorProto) for the model's N-th input (or by name
//                when the TensorProto carries a matching name).
// --npy-dir DIR  reads DIR/<sanitized input name>.npy for every input present there.
// --input NAME=FILE.npy overrides/adds a single input.
// Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 onnxruntime could not load the model.
const fs = require('fs');
const path = require('path');
const lib = require('./lib');

function usage(msg) {
  if (msg) process.stderr.write(`run.js: ${msg}\n`);
  process.stderr.write('usage: node run.js MODEL.onnx [--input NAME=FILE.npy ...] [--pb-dir DIR] [--npy-dir DIR] --out-dir DIR\n');
  process.exit(2);
}

async function main() {
  const argv = process.argv.slice(2);
  let model = null, outDir = null, pbDir = null, npyDir = null, quiet = false;
  const inputs = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    if (a === '--input') inputs.push(val());
    else if (a === '--out-dir') outDir = val();
    else if (a === '--pb-dir') pbDir = val();
    else if (a === '--npy-dir') npyDir = val();
    else if (a === '-q' || a === '--quiet') quiet = true;
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (!model) model = a;
    else usage(`unexpected argument ${a}`);
  }
  if (!model) usage('no model given');
  if (!outDir) usage('--out-dir is required');

  lib.ort();
  let session;
  try {
    session = await lib.createSession(model);
  } catch (e) {
    process.stderr.write(`run.js: onnxruntime cannot load ${model}: ${e.message}\n`);
    process.exit(3);
  }
  const names = session.inputNames;
  let feeds = {};
  if (pbDir) Object.assign(feeds, lib.loadFeedsFromDir(pbDir, names));
  if (npyDir) Object.assign(feeds, lib.loadFeedsFromDir(npyDir, names));
  for (const spec of inputs) {
    const eq = spec.lastIndexOf('=');
    if (eq <= 0) usage(`bad --input '${spec}' (want NAME=FILE.npy)`);
    const name = spec.slice(0, eq), file = spec.slice(eq + 1);
    if (!names.includes(name)) usage(`model has no input '${name}' (inputs: ${names.join(', ')})`);
    feeds[name] = lib.readNpy(file);
  }
  const missing = names.filter(n => !(n in feeds));
  if (missing.length) usage(`no data for input(s): ${missing.join(', ')}`);

  const ortFeeds = {};
  for (const n of names) ortFeeds[n] = lib.toOrtTensor(feeds[n]);
  const results = await session.run(ortFeeds);
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of session.outputNames) {
    const t = lib.fromOrtTensor(results[name]);
    const file = path.join(outDir, lib.sanitize(name) + '.npy');
    lib.writeNpy(file, t.dtype, t.dims, t.data);
    if (!quiet) process.stdout.write(`${name}\t${t.dtype}[${t.dims.join(',')}]\t${file}\n`);
  }
}

main().catch(e => { process.stderr.write(`run.js: ${e && e.stack ? e.stack : e}\n`); process.exit(1); });
