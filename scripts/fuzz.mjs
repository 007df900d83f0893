#!/usr/bin/env node
// The long fuzzing campaign over everything restore reads from an image before it creates
// a process (parseImage, loadImage, the pages.img checks). Build first (npx tsc -p tsconfig.json).
//
//   node scripts/fuzz.mjs [--cases 100000] [--seed N] [--seconds S] [--no-dump]
//                         [--load-fraction F] [--hang-ms 2000] [--max-failures 20]
//   node scripts/fuzz.mjs --input DIR        run one saved image directory (a reproducer)
//   node scripts/fuzz.mjs --seed N --replay K [--no-dump]   print and run case K again
//
// The cases run in a worker thread with a bounded heap; the main thread is a watchdog: a
// case that does not finish within max(2.5 x hang-ms, 5 s) is a hang, a worker that dies
// (out of memory...) is a crash of its current case; either way the campaign goes on
// from the next case. A failing input is saved under /tmp/ckpt-fuzz-fail-s<seed>-c<case>.
// The last line is `fuzz: N cases, C crashes, H hangs`; the exit status is 1 on any failure.
// The cases depend on the seed and on the corpus: with --no-dump the corpus is synthetic
// only and (seed, case) replays exactly; with the real dump, the saved input does.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lib = path.join(root, 'dist/test/lib');
if (!fs.existsSync(path.join(lib, 'fuzz-run.js'))) {
  console.error('fuzz: dist/test/lib/fuzz-run.js is missing: build first (npx tsc -p tsconfig.json)');
  process.exit(2);
}
const run = await import(path.join(lib, 'fuzz-run.js'));

const asBuffer = (u) => (u == null ? null : Buffer.from(u.buffer, u.byteOffset, u.byteLength));
const revive = (s) => ({ ...s, img: asBuffer(s.img), pages: asBuffer(s.pages) });

if (!isMainThread) {
  // ---- the worker: run cases, report ----
  const { corpus: raw, opts, shared } = workerData;
  const corpus = raw.map(revive);
  const now = new Float64Array(shared);
  const stats = run.runCampaign(corpus, {
    ...opts,
    onCaseStart: (n) => { now[0] = n; now[1] = Date.now(); },
    onCaseEnd: (s) => { now[2] = s.valid; now[3] = s.rejected; now[4] = s.loaded; },
    onFailure: (f) => parentPort.postMessage({ type: 'failure', failure: f }),
    progressEvery: 500,
    onProgress: (s, n) => parentPort.postMessage({ type: 'progress', n, cases: s.cases, valid: s.valid, rejected: s.rejected, loaded: s.loaded }),
  });
  now[1] = 0;
  parentPort.postMessage({ type: 'done', stats: { ...stats, failures: [], messages: [...stats.messages], noOffset: [...stats.noOffset] } });
} else {
  await main();
}

function parseArgs(argv) {
  const o = { cases: 100000, seed: (Date.now() ^ (process.pid << 8)) >>> 0, seconds: undefined, dump: true, loadFraction: 0.15,
    hangMs: 2000, maxFailures: 20, input: undefined, replay: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = () => {
      const v = Number(val());
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a}: not a number`);
      return v;
    };
    switch (a) {
      case '--cases': o.cases = Math.floor(num()); break;
      case '--seed': o.seed = Math.floor(num()) >>> 0; break;
      case '--seconds': o.seconds = num(); break;
      case '--no-dump': o.dump = false; break;
      case '--load-fraction': o.loadFraction = num(); break;
      case '--hang-ms': o.hangMs = num(); break;
      case '--max-failures': o.maxFailures = Math.max(1, Math.floor(num())); break;
      case '--input': o.input = val(); break;
      case '--replay': o.replay = Math.floor(num()); break;
      case '-h': case '--help':
        console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 17).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return o;
}

function describe(o) {
  const e = o.error;
  return `${o.verdict} (parse ${o.parse}, load ${o.load}, ${o.ms.toFixed(1)} ms)` +
    (e ? `: ${e instanceof Error ? (o.verdict === 'valid' || o.verdict === 'rejected' ? `${e.code ?? e.name}: ${e.message}` : e.stack) : String(e)}` : '');
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`fuzz: ${e.message} (--help)`);
    process.exit(2);
  }
  const dir = run.caseDir('ckpt-fuzz-');
  try {
    process.exitCode = await campaign(o, dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function campaign(o, dir) {
  if (o.input !== undefined) {
    const read = (n) => (fs.existsSync(path.join(o.input, n)) ? fs.readFileSync(path.join(o.input, n)) : null);
    const out = run.runInput({ img: read('ckpt.img'), pages: read('pages.img') }, true, { dir, hangMs: o.hangMs });
    console.log(`fuzz: ${o.input}: ${describe(out)}`);
    return out.verdict === 'valid' || out.verdict === 'rejected' ? 0 : 1;
  }

  const t0 = Date.now();
  const corpus = run.syntheticCorpus(o.seed);
  if (o.dump) {
    const { dumpRealSeed } = await import(path.join(lib, 'fuzz-dump.js'));
    const real = await dumpRealSeed();
    corpus.push(real, real, real);
  }
  console.log(`fuzz: seed ${o.seed}, corpus of ${corpus.length} images (${[...new Set(corpus.map((s) => s.name))].join(', ')}), built in ${Date.now() - t0} ms`);

  if (o.replay !== undefined) {
    const c = run.makeCase(corpus, o.seed, o.replay, o.loadFraction);
    console.log(`case ${o.replay} (seed image ${c.seedName}): ${c.log.join('; ')}`);
    const out = run.runInput(c.input, c.load, { dir, hangMs: o.hangMs });
    console.log(`fuzz: case ${o.replay}: ${describe(out)}`);
    return out.verdict === 'valid' || out.verdict === 'rejected' ? 0 : 1;
  }

  const start = Date.now();
  const deadline = o.seconds === undefined ? Infinity : start + o.seconds * 1000;
  const watchdogMs = Math.max(2.5 * o.hangMs, 5000);
  const failures = [];
  const total = { cases: 0, valid: 0, rejected: 0, loaded: 0, resealed: 0, mutatorErrors: 0, slowestMs: 0, slowestCase: -1, peakHeap: 0 };
  const messages = new Map();
  const noOffset = new Map();
  let firstMutatorError;
  let next = 0;
  let lastPrint = Date.now();

  const fail = (f) => {
    failures.push(f);
    const saved = run.saveFailure({ ...f, input: { img: asBuffer(f.input.img), pages: asBuffer(f.input.pages) } });
    console.log(`fuzz: FAILURE (${f.verdict}) at seed ${f.seed}, case ${f.n} (seed image ${f.seedName})`);
    console.log(`  mutations: ${f.log.join('; ')}`);
    console.log(`  ${f.message.split('\n').join('\n  ')}`);
    console.log(`  input saved in ${saved} (node scripts/fuzz.mjs --input ${saved})`);
  };

  while (next < o.cases && Date.now() < deadline && failures.length < o.maxFailures) {
    const shared = new SharedArrayBuffer(5 * 8); // [case, its start (ms), valid, rejected, loaded]
    const now = new Float64Array(shared);
    now[0] = next;
    const first = next;
    const opts = {
      seed: o.seed, first, cases: o.cases - first, dir, loadFraction: o.loadFraction, hangMs: o.hangMs,
      seconds: deadline === Infinity ? undefined : (deadline - Date.now()) / 1000, maxFailures: o.maxFailures - failures.length,
    };
    const worker = new Worker(fileURLToPath(import.meta.url), {
      workerData: { corpus, opts, shared }, resourceLimits: { maxOldGenerationSizeMb: 1536 },
    });
    const outcome = await new Promise((resolve) => {
      let settled = false;
      const settle = (v) => { if (!settled) { settled = true; clearInterval(timer); resolve(v); } };
      const timer = setInterval(() => {
        if (now[1] > 0 && Date.now() - now[1] > watchdogMs) {
          const n = now[0];
          void worker.terminate();
          settle({ kind: 'hang', n, ms: Date.now() - now[1] });
        }
      }, 200);
      worker.on('message', (m) => {
        if (m.type === 'failure') fail(m.failure);
        else if (m.type === 'progress') {
          if (Date.now() - lastPrint >= 5000) {
            lastPrint = Date.now();
            const done = total.cases + m.cases;
            const s = (Date.now() - start) / 1000;
            console.log(`fuzz: ${done}/${o.cases} cases (${(done / s).toFixed(0)}/s), valid ${total.valid + m.valid}, ` +
              `rejected ${total.rejected + m.rejected}, loaded ${total.loaded + m.loaded}, failures ${failures.length}`);
          }
        } else if (m.type === 'done') settle({ kind: 'done', stats: m.stats });
      });
      worker.on('error', (e) => settle({ kind: 'died', n: now[0], error: e }));
      worker.on('exit', (code) => settle({ kind: 'died', n: now[0], error: new Error(`worker exited with code ${code}`) }));
    });
    if (outcome.kind === 'done') {
      const s = outcome.stats;
      for (const k of ['cases', 'valid', 'rejected', 'loaded', 'resealed', 'mutatorErrors']) total[k] += s[k];
      if (s.slowestMs > total.slowestMs) { total.slowestMs = s.slowestMs; total.slowestCase = s.slowestCase; }
      total.peakHeap = Math.max(total.peakHeap, s.peakHeap);
      for (const [k, v] of s.messages) messages.set(k, (messages.get(k) ?? 0) + v);
      for (const [k, v] of s.noOffset) noOffset.set(k, (noOffset.get(k) ?? 0) + v);
      firstMutatorError ??= s.firstMutatorError;
      next = first + s.cases;
      if (s.cases === 0) break; // out of time
      continue;
    }
    // The worker hung or died in case n: count the cases it finished, rebuild case n here.
    const n = outcome.n;
    total.cases += n - first + 1;
    total.valid += now[2];
    total.rejected += now[3];
    total.loaded += now[4];
    const c = run.makeCase(corpus, o.seed, n, o.loadFraction);
    const message = outcome.kind === 'hang'
      ? `case still running after ${outcome.ms} ms: the worker was stopped`
      : `the worker died in this case: ${outcome.error?.code ?? ''} ${outcome.error?.stack ?? outcome.error}`;
    fail({ seed: o.seed, n, verdict: outcome.kind === 'hang' ? 'hang' : 'crash', message, ms: outcome.ms ?? 0, heapGrowth: 0, log: c.log, seedName: c.seedName, input: c.input });
    next = n + 1;
  }

  const secs = (Date.now() - start) / 1000;
  console.log(`fuzz: ${total.cases} cases in ${secs.toFixed(1)} s (${(total.cases / secs).toFixed(0)}/s): valid ${total.valid}, ` +
    `rejected ${total.rejected}, through loadImage ${total.loaded}, CRCs resealed ${total.resealed}; ` +
    `slowest case ${total.slowestCase} (${total.slowestMs.toFixed(1)} ms); peak heap ${(total.peakHeap / 1048576).toFixed(0)} MiB`);
  console.log(`fuzz: ${messages.size} kinds of rejection; the most frequent:`);
  for (const [m, c] of [...messages].sort((a, b) => b[1] - a[1]).slice(0, process.env.FUZZ_ALL_MESSAGES ? Infinity : 15)) console.log(`  ${String(c).padStart(7)}  ${m}`);
  if (noOffset.size) {
    console.log('fuzz: BAD_IMAGE errors without an offset:');
    for (const [m, c] of [...noOffset].sort((a, b) => b[1] - a[1])) console.log(`  ${String(c).padStart(7)}  ${m}`);
  }
  if (total.mutatorErrors) console.log(`fuzz: ${total.mutatorErrors} mutations threw (a fuzzer bug), first: ${firstMutatorError}`);
  const count = (...v) => failures.filter((f) => v.includes(f.verdict)).length;
  const crashes = count('crash', 'memory', 'inconsistent');
  const hangs = count('hang');
  if (failures.length) {
    console.log(`fuzz: seed ${o.seed}: failing cases ${failures.map((f) => `${f.n} (${f.verdict})`).join(', ')}`);
  }
  console.log(`fuzz: ${total.cases} cases, ${crashes} crashes, ${hangs} hangs`);
  return failures.length ? 1 : 0;
}
