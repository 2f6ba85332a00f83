'use strict';
// Shared helpers for the onnxruntime oracle: .npy read/write, a minimal TensorProto decoder,
// session creation with graph optimizations disabled, and a seeded input generator.
const fs = require('fs');
const path = require('path');

let ortModule = null;
function ort() {
  if (ortModule) return ortModule;
  const dir = path.join(__dirname, 'node_modules', 'onnxruntime-node');
  if (!fs.existsSync(dir)) {
    process.stderr.write(
      `error: onnxruntime-node is not installed (${dir} missing).\n` +
      `       run: (cd ${__dirname} && npm install --ignore-scripts)\n`);
    process.exit(2);
  }
  ortModule = require(dir);
  return ortModule;
}

// ---- dtypes --------------------------------------------------------------------------------------
// ORT tensor type <-> numpy descr <-> ONNX TensorProto.DataType <-> typed array.
const DTYPES = {
  float32: { descr: '<f4', onnx: 1, size: 4, Arr: Float32Array },
  uint8: { descr: '|u1', onnx: 2, size: 1, Arr: Uint8Array },
  int8: { descr: '|i1', onnx: 3, size: 1, Arr: Int8Array },
  uint16: { descr: '<u2', onnx: 4, size: 2, Arr: Uint16Array },
  int16: { descr: '<i2', onnx: 5, size: 2, Arr: Int16Array },
  int32: { descr: '<i4', onnx: 6, size: 4, Arr: Int32Array },
  int64: { descr: '<i8', onnx: 7, size: 8, Arr: BigInt64Array },
  string: { descr: null, onnx: 8, size: 0, Arr: null },
  bool: { descr: '|b1', onnx: 9, size: 1, Arr: Uint8Array },
  float16: { descr: '<f2', onnx: 10, size: 2, Arr: Uint16Array },
  float64: { descr: '<f8', onnx: 11, size: 8, Arr: Float64Array },
  uint32: { descr: '<u4', onnx: 12, size: 4, Arr: Uint32Array },
  uint64: { descr: '<u8', onnx: 13, size: 8, Arr: BigUint64Array },
};
const ONNX_TO_DTYPE = {};
for (const [k, v] of Object.entries(DTYPES)) ONNX_TO_DTYPE[v.onnx] = k;
const DESCR_TO_DTYPE = {};
for (const [k, v] of Object.entries(DTYPES)) if (v.descr) DESCR_TO_DTYPE[v.descr] = k;
// numpy also writes these spellings for 1-byte and native-endian types
Object.assign(DESCR_TO_DTYPE, {
  '<u1': 'uint8', '<i1': 'int8', '<b1': 'bool', '|b': 'bool', '|?': 'bool', '<?': 'bool',
  '=f4': 'float32', '=f8': 'float64', '=i2': 'int16', '=i4': 'int32', '=i8': 'int64',
  '=u2': 'uint16', '=u4': 'uint32', '=u8': 'uint64', '=f2': 'float16',
});

function numel(dims) { return dims.reduce((a, b) => a * b, 1); }

// Copies bytes into a fresh, correctly aligned typed array of the dtype.
function typedFromBytes(dtype, bytes) {
  const info = DTYPES[dtype];
  if (!info || !info.Arr) throw new Error(`unsupported dtype ${dtype}`);
  if (bytes.length % info.size) throw new Error(`byte length ${bytes.length} not a multiple of ${info.size}`);
  const ab = new ArrayBuffer(bytes.length);
  new Uint8Array(ab).set(bytes);
  return new info.Arr(ab);
}

function bytesOf(data) {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

// ---- .npy ----------------------------------------------------------------------------------------
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf[0] !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY')
    throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  let hlen, hstart;
  if (major === 1) { hlen = buf.readUInt16LE(8); hstart = 10; }
  else if (major === 2 || major === 3) { hlen = buf.readUInt32LE(8); hstart = 12; }
  else throw new Error(`${file}: unsupported .npy version ${major}`);
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', hstart, hstart + hlen);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: bad .npy header: ${header}`);
  if (fortran[1] === 'True') throw new Error(`${file}: fortran_order arrays are not supported`);
  const dims = shape[1].split(',').map(s => s.trim()).filter(s => s.length).map(s => parseInt(s, 10));
  const body = buf.subarray(hstart + hlen);
  const d = descr[1];
  const dtype = DESCR_TO_DTYPE[d];
  if (dtype) {
    const n = numel(dims) * DTYPES[dtype].size;
    if (body.length < n) throw new Error(`${file}: truncated data (${body.length} < ${n} bytes)`);
    return { dtype, dims, data: typedFromBytes(dtype, body.subarray(0, n)) };
  }
  const u = /^[<|=]U(\d+)$/.exec(d);
  if (u) { // unicode strings (UTF-32LE, fixed width)
    const w = parseInt(u[1], 10), n = numel(dims), out = [];
    for (let i = 0; i < n; i++) {
      let s = '';
      for (let j = 0; j < w; j++) {
        const cp = body.readUInt32LE((i * w + j) * 4);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      out.push(s);
    }
    return { dtype: 'string', dims, data: out };
  }
  throw new Error(`${file}: unsupported npy dtype '${d}' (big-endian or exotic)`);
}

function npyBytes(dtype, dims, data) {
  let descr, body;
  if (dtype === 'string') {
    const strs = Array.from(data);
    const w = Math.max(1, ...strs.map(s => Array.from(s).length));
    descr = `<U${w}`;
    body = Buffer.alloc(strs.length * w * 4);
    strs.forEach((s, i) => Array.from(s).forEach((ch, j) => body.writeUInt32LE(ch.codePointAt(0), (i * w + j) * 4)));
  } else {
    const info = DTYPES[dtype];
    if (!info) throw new Error(`cannot write dtype ${dtype} as .npy`);
    descr = info.descr;
    body = bytesOf(data);
  }
  const shapeStr = dims.length === 0 ? '()' : dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  pre[0] = 0x93; pre.write('NUMPY', 1, 'latin1'); pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
}

function writeNpy(file, dtype, dims, data) {
  fs.writeFileSync(file, npyBytes(dtype, dims, data));
}

// ---- minimal protobuf reader for onnx.TensorProto ------------------------------------------------
class PbReader {
  constructor(buf) { this.buf = buf; this.pos = 0; }
  eof() { return this.pos >= this.buf.length; }
  varint() { // returns BigInt (unsigned 64-bit)
    let result = 0n, shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
      shift += 7n;
      if (shift > 63n) throw new Error('protobuf: varint too long');
    }
    return BigInt.asUintN(64, result);
  }
  num() { const v = this.varint(); if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('protobuf: length too large'); return Number(v); }
  bytes() {
    const n = this.num();
    if (this.pos + n > this.buf.length) throw new Error('protobuf: truncated field');
    const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b;
  }
  skip(wt) {
    if (wt === 0) this.varint();
    else if (wt === 1) this.pos += 8;
    else if (wt === 2) this.bytes();
    else if (wt === 5) this.pos += 4;
    else throw new Error(`protobuf: unsupported wire type ${wt}`);
  }
}

// Reads a repeated scalar field occurrence (packed or not) into `out`.
function readRepeated(r, wt, kind, out) {
  const one = (rr, w) => {
    if (kind === 'varint') out.push(rr.varint());
    else if (kind === 'f32') { out.push(rr.buf.readFloatLE(rr.pos)); rr.pos += 4; }
    else if (kind === 'f64') { out.push(rr.buf.readDoubleLE(rr.pos)); rr.pos += 8; }
  };
  if (wt === 2) { // packed
    const sub = new PbReader(r.bytes());
    while (!sub.eof()) one(sub);
  } else {
    one(r, wt);
  }
}

// Decodes a serialized TensorProto into {name, dtype, dims, data} (data: typed array, or string[]).
function decodeTensorProto(buf) {
  const r = new PbReader(buf);
  const t = { dims: [], dataType: 0, name: '', raw: null, floats: [], int32s: [], int64s: [], doubles: [], uint64s: [], strings: [], external: false };
  while (!r.eof()) {
    const key = r.num(), field = key >>> 3, wt = key & 7;
    switch (field) {
      case 1: { const v = []; readRepeated(r, wt, 'varint', v); for (const x of v) t.dims.push(Number(BigInt.asIntN(64, x))); break; }
      case 2: t.dataType = Number(r.varint()); break;
      case 4: readRepeated(r, wt, 'f32', t.floats); break;
      case 5: readRepeated(r, wt, 'varint', t.int32s); break;
      case 6: t.strings.push(r.bytes().toString('utf8')); break;
      case 7: readRepeated(r, wt, 'varint', t.int64s); break;
      case 8: t.name = r.bytes().toString('utf8'); break;
      case 9: t.raw = r.bytes(); break;
      case 10: readRepeated(r, wt, 'f64', t.doubles); break;
      case 11: readRepeated(r, wt, 'varint', t.uint64s); break;
      case 14: t.external = Number(r.varint()) === 1; break;
      default: r.skip(wt);
    }
  }
  if (t.external) throw new Error('TensorProto with external data is not supported here');
  const dtype = ONNX_TO_DTYPE[t.dataType];
  if (!dtype) throw new Error(`TensorProto data_type ${t.dataType} not supported`);
  if (t.dims.some(d => !Number.isInteger(d) || d < 0) || numel(t.dims) > 2 ** 31)
    throw new Error(`TensorProto '${t.name}': implausible dims [${t.dims}] (not a TensorProto?)`);
  const n = numel(t.dims);
  let data;
  if (dtype === 'string') {
    data = t.strings;
  } else if (t.raw) {
    data = typedFromBytes(dtype, t.raw);
  } else {
    const Arr = DTYPES[dtype].Arr;
    data = new Arr(n);
    let src;
    switch (dtype) {
      case 'float32': src = t.floats; break;
      case 'float64': src = t.doubles; break;
      case 'int64': src = t.int64s.map(x => BigInt.asIntN(64, x)); break;
      case 'uint64': case 'uint32': src = t.uint64s; break;
      default: src = t.int32s; // int8/uint8/int16/uint16/int32/bool/float16 (bits)
    }
    for (let i = 0; i < src.length && i < n; i++) {
      const x = src[i];
      if (Arr === BigInt64Array || Arr === BigUint64Array) data[i] = typeof x === 'bigint' ? x : BigInt(x);
      else if (typeof x === 'bigint') data[i] = Number(dtype === 'int32' || dtype === 'int8' || dtype === 'int16' ? BigInt.asIntN(32, x) : BigInt.asUintN(32, x));
      else data[i] = x;
    }
    if (src.length !== n) throw new Error(`TensorProto '${t.name}': ${src.length} values for ${n} elements`);
  }
  if (dtype !== 'string' && data.length !== n) throw new Error(`TensorProto '${t.name}': ${data.length} values for ${n} elements`);
  return { name: t.name, dtype, dims: t.dims, data };
}

function readPb(file) { return decodeTensorProto(fs.readFileSync(file)); }

// ---- sessions and tensors ------------------------------------------------------------------------
const SESSION_OPTIONS = {
  executionProviders: ['cpu'],
  graphOptimizationLevel: 'disabled',
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  enableCpuMemArena: false,
  logSeverityLevel: 3,
};

async function createSession(model) {
  return ort().InferenceSession.create(model, SESSION_OPTIONS);
}

function toOrtTensor(t) {
  return new (ort().Tensor)(t.dtype, t.data, t.dims);
}

function fromOrtTensor(v) {
  if (!v || typeof v !== 'object' || !('type' in v) || !('dims' in v))
    throw new Error('output is not a tensor (sequence/map outputs are not supported)');
  return { dtype: v.type, dims: Array.from(v.dims), data: v.data };
}

// Model input names in order (initializers excluded, as ORT reports them).
function inputMeta(session) {
  const md = session.inputMetadata;
  return session.inputNames.map((name, i) => {
    let m = null;
    if (Array.isArray(md)) m = md[i];
    else if (md && typeof md === 'object') m = md[name];
    return Object.assign({ name }, m || {});
  });
}

// Loads feeds from a directory: test_data_set style (input_N.pb) or <input name>.npy files.
// Unnamed input_N.pb map to the model's N-th input; named ones map by name when the name matches.
function loadFeedsFromDir(dir, inputNames) {
  const feeds = {};
  const pbs = fs.readdirSync(dir).filter(f => /^input_\d+\.pb$/.test(f))
    .sort((a, b) => parseInt(a.slice(6), 10) - parseInt(b.slice(6), 10));
  if (pbs.length) {
    for (const f of pbs) {
      const idx = parseInt(f.slice(6), 10);
      const t = readPb(path.join(dir, f));
      let name = t.name && inputNames.includes(t.name) ? t.name : inputNames[idx];
      if (name === undefined) throw new Error(`${dir}/${f}: model has only ${inputNames.length} inputs`);
      feeds[name] = t;
    }
    return feeds;
  }
  for (const name of inputNames) {
    const f = path.join(dir, sanitize(name) + '.npy');
    if (fs.existsSync(f)) feeds[name] = readNpy(f);
  }
  return feeds;
}

function sanitize(name) {
  const s = String(name).replace(/[^A-Za-z0-9_.-]/g, '_');
  return s === '' || s === '.' || s === '..' ? '_' + s : s;
}

// ---- seeded random inputs ------------------------------------------------------------------------
function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(s) { // FNV-1a, so each input gets its own stream regardless of order
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}

function f32ToF16Bits(x) {
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  f[0] = x;
  const b = u[0], sign = (b >>> 16) & 0x8000, exp = ((b >>> 23) & 0xff) - 127 + 15, mant = b & 0x7fffff;
  if (exp <= 0) return sign; // flush tiny values (only used for generation)
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | (mant >>> 13);
}

function concreteDims(shape) {
  if (!Array.isArray(shape)) return null;
  return shape.map(d => (typeof d === 'number' && Number.isInteger(d) && d >= 0 ? d : 1));
}

// Random tensor for an input: floats roughly normal, clipped to [-1, 1]; integers small and
// non-negative (safe as indices / shape values); bools 0/1.
function randomTensor(meta, seed) {
  const dtype = meta.type;
  const dims = concreteDims(meta.shape);
  if (!dims) throw new Error(`input '${meta.name}': no static shape information (non-tensor input?)`);
  const rnd = mulberry32((seed ^ hashString(meta.name)) >>> 0);
  const n = numel(dims);
  const normal = () => Math.max(-1, Math.min(1, (rnd() + rnd() + rnd() - 1.5) * 0.8));
  let data;
  switch (dtype) {
    case 'float32': data = Float32Array.from({ length: n }, normal); break;
    case 'float64': data = Float64Array.from({ length: n }, normal); break;
    case 'float16': data = Uint16Array.from({ length: n }, () => f32ToF16Bits(normal())); break;
    case 'int8': data = Int8Array.from({ length: n }, () => Math.floor(rnd() * 256) - 128); break;
    case 'uint8': data = Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256)); break;
    case 'int16': case 'uint16': case 'int32': case 'uint32':
      data = DTYPES[dtype].Arr.from({ length: n }, () => Math.floor(rnd() * 4)); break;
    case 'int64': case 'uint64':
      data = DTYPES[dtype].Arr.from({ length: n }, () => BigInt(Math.floor(rnd() * 4))); break;
    case 'bool': data = Uint8Array.from({ length: n }, () => (rnd() < 0.5 ? 1 : 0)); break;
    case 'string': data = Array.from({ length: n }, () => 'qopt' + Math.floor(rnd() * 100)); break;
    default: throw new Error(`input '${meta.name}': cannot generate random data of type ${dtype}`);
  }
  return { dtype, dims, data };
}

module.exports = {
  ort, DTYPES, numel, readNpy, writeNpy, npyBytes, decodeTensorProto, readPb, createSession,
  toOrtTensor, fromOrtTensor, inputMeta, loadFeedsFromDir, sanitize, randomTensor, bytesOf,
  typedFromBytes, SESSION_OPTIONS,
};
