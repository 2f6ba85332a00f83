'use strict';
// bench/ort_bench.js — onnxruntime latency peer of bench/engine_run.c.
// usage: node bench/ort_bench.js MODEL INPUT.npy [--threads T] [--repeat R] [--warmup W] [--out OUT.npy]
//                                [--opt all|disabled]
// Session: CPU provider, graph optimizations 'all' (default), intraOpNumThreads T (default 2),
// interOpNumThreads 1, sequential execution, memory arena on. Prints "median_ms X min_ms Y cpu_ms C
// session_s S peak_rss_mb R base_rss_mb B": C the user + system CPU time per timed run (all threads,
// onnxruntime's spin-waiting included), S the session creation (load + optimize) seconds, R the
// process's peak resident set (process.resourceUsage), B the resident set after loading node and
// onnxruntime, before the session (node's own share, which a C program would not have).
const path = require('path');
const lib = require(path.join(__dirname, '..', 'tests', 'ort', 'lib.js'));

async function main() {
  const args = process.argv.slice(2);
  const pos = [];
  const opt = { threads: 2, repeat: 10, warmup: 2, out: null, level: 'all' };
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--threads') opt.threads = parseInt(args[++i], 10);
    else if (args[i] === '--repeat') opt.repeat = parseInt(args[++i], 10);
    else if (args[i] === '--warmup') opt.warmup = parseInt(args[++i], 10);
    else if (args[i] === '--out') opt.out = args[++i];
    else if (args[i] === '--opt') opt.level = args[++i];
    else pos.push(args[i]);
  }
  if (pos.length !== 2) {
    process.stderr.write('usage: ort_bench.js MODEL INPUT.npy [--threads T] [--repeat R] [--warmup W] [--out OUT.npy]\n');
    process.exit(2);
  }
  const ort = lib.ort();
  const base = process.memoryUsage().rss / 1048576;
  const t00 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(pos[0], {
    executionProviders: ['cpu'], graphOptimizationLevel: opt.level, intraOpNumThreads: opt.threads,
    interOpNumThreads: 1, executionMode: 'sequential', logSeverityLevel: 3,
  });
  const sessionS = Number(process.hrtime.bigint() - t00) / 1e9;
  const x = lib.readNpy(pos[1]);
  const feeds = { [session.inputNames[0]]: lib.toOrtTensor(x) };
  const times = [];
  let res = null;
  let cpu0 = null;
  for (let r = 0; r < opt.warmup + opt.repeat; r++) {
    if (r === opt.warmup) cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    res = await session.run(feeds);
    const dt = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r >= opt.warmup) times.push(dt);
  }
  times.sort((a, b) => a - b);
  const cu = process.cpuUsage(cpu0);
  const cpuMs = (cu.user + cu.system) / 1000 / opt.repeat;
  const peak = process.resourceUsage().maxRSS / 1024;
  console.log(`median_ms ${times[Math.floor(times.length / 2)].toFixed(3)} min_ms ${times[0].toFixed(3)} ` +
              `cpu_ms ${cpuMs.toFixed(3)} ` +
              `session_s ${sessionS.toFixed(3)} peak_rss_mb ${peak.toFixed(1)} base_rss_mb ${base.toFixed(1)}`);
  if (opt.out) {
    const y = lib.fromOrtTensor(res[session.outputNames[0]]);
    lib.writeNpy(opt.out, y.dtype, y.dims, y.data);
  }
}

main().catch((e) => { process.stderr.write(`error: ${e.message}\n`); process.exit(1); });
