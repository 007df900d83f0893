#!/usr/bin/env node
// npm run bench [-- options]: how fast ckpt dumps and restores processes holding
// 64 MiB, 256 MiB and 1 GiB of incompressible anonymous memory, and one with 1 GiB
// mapped of which 16 MiB is touched beside one holding only 16 MiB, on tmpfs and on
// disk, against what the filesystem alone costs for the same bytes.
//
// Options:
//   --sizes LIST      subset of 16,64,256,1024,sparse (MiB; 1g = 1024); default all five
//   --runs N          runs per row, medians reported (default 3)
//   --fs KIND         tmpfs | disk | both (default both)
//   --quick           64 MiB only, 1 run
//   --compress        compression: ratio and speed of zstd and lz4 beside none, on a python3
//                     holding ~300 MiB of real objects and on 256 MiB of random data
//   --small           the small-process latency target: a 5 MiB process, 10 dumps and
//                     restores, with ckpt -v's own time breakdown
//   --json            write the results as JSON to stdout (the table goes to stderr)
//   --out FILE        write the results as JSON to FILE
//   --keep            keep the work directories (images are still removed per row)
//
// Per run, on a fresh process (bench/memhog.c, a child of this script in its own
// session, so that this script reaps it as soon as it dies):
//  1. `ckpt dump -R`: the process spins in a clock_gettime(CLOCK_MONOTONIC) loop and
//     itself measures the largest gap between two iterations: how long it was frozen.
//     It must verify its memory afterwards (PASS).
//  2. `ckpt dump` (which kills it): wall time of the CLI, ckpt's peak RSS, image size.
//  3. wait until /proc/PID is gone, `ckpt restore -d`: wall time, peak RSS; the restored
//     process must be alive with its memory intact (checksum of the touched part, zeros
//     in the untouched part: PASS), else the row is FAIL.
//  4. references on the same filesystem, for the dumped number of bytes (bench/ioref.c):
//     write() + fsync() + close() of a file (ckpt fsyncs its image files), and read()
//     of that file, still in the page cache, into fresh memory.
// Wall times are the whole CLI command's life, node's start-up and exit included, as
// bench/maxrss.c (the wrapper around each command) sees it: from just before its fork
// to wait4's return. The bench's own spawning of the wrapper (~10 ms here: a fork of
// this node process, the wrapper's exec, the pipes' close) is left out; `harnessMs`
// in the JSON's runs (dumpHarnessMs, restoreHarnessMs) has it in. Peak RSS is wait4's ru_maxrss.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ckptBin = path.join(root, 'dist/bin/ckpt.js');
const MiB = 1 << 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

// ---------------------------------------------------------------- options

function usage(code) {
  process.stderr.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n')
    .filter((l) => l.startsWith("//")).slice(0, 16).map((l) => l.slice(3)).join('\n') + '\n');
  process.exit(code);
}

function parseOptions(argv) {
  const o = { sizes: ['16', '64', '256', '1024', 'sparse'], runs: 3, fs: 'both', small: false, json: false, out: undefined, keep: false };
  let sizesGiven = false;
  let runsGiven = false;
  let quick = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) { log(`${a} needs a value`); usage(2); } return argv[++i]; };
    if (a === '--sizes') { o.sizes = val().split(',').map((s) => s.trim().toLowerCase()).filter(Boolean); sizesGiven = true; }
    else if (a === '--runs') { o.runs = Number(val()); runsGiven = true; }
    else if (a === '--fs') o.fs = val();
    else if (a === '--quick') quick = true;
    else if (a === '--small') o.small = true;
    else if (a === '--compress') o.compress = true;
    else if (a === '--json') o.json = true;
    else if (a === '--out') o.out = val();
    else if (a === '--keep') o.keep = true;
    else if (a === '-h' || a === '--help') usage(0);
    else { log(`unknown option ${a}`); usage(2); }
  }
  if (quick) { if (!sizesGiven) o.sizes = ['64']; if (!runsGiven) o.runs = 1; }
  o.sizes = o.sizes.map((s) => (s === '1g' || s === '1gib' ? '1024' : s));
  for (const s of o.sizes) {
    if (s !== 'sparse' && !(/^[0-9]+$/.test(s) && Number(s) > 0)) { log(`bad size '${s}' (MiB, or 'sparse')`); usage(2); }
  }
  if (!Number.isInteger(o.runs) || o.runs < 1) { log('--runs must be a positive integer'); usage(2); }
  if (!['tmpfs', 'disk', 'both'].includes(o.fs)) { log('--fs must be tmpfs, disk or both'); usage(2); }
  return o;
}

// ---------------------------------------------------------------- bookkeeping and cleanup

/** Pids this script started (test processes, restored ones, ckpt runs): killed on exit. */
const live = new Set();
const workDirs = [];
let mountedTmpfs;
let keepDirs = false;

function gone(pid) {
  try {
    return /^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

function killPid(pid) {
  try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
}

/** pid and its descendants (a ckpt run is the wrapper -> node ckpt -> a process it restores). */
function tree(pid) {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    let tids = [];
    try { tids = fs.readdirSync(`/proc/${all[i]}/task`); } catch { continue; }
    for (const t of tids) {
      try {
        for (const c of fs.readFileSync(`/proc/${all[i]}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) all.push(Number(c));
      } catch { /* gone */ }
    }
  }
  return all;
}

function cleanup() {
  for (const pid of [...live].flatMap(tree)) killPid(pid);
  live.clear();
  if (mountedTmpfs) {
    try { execFileSync('umount', ['-l', mountedTmpfs], { stdio: 'ignore' }); } catch { /* tried */ }
  }
  for (const d of workDirs) {
    if (keepDirs) { log(`kept ${d}`); continue; }
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* tried */ }
  }
  workDirs.length = 0;
  mountedTmpfs = undefined;
}

process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { log(`${sig}: killing what I started`); cleanup(); process.exit(130); });
}

// ---------------------------------------------------------------- running things

/** Run a command to completion; resolves {code, signal, ms, stdout, stderr}. */
function run(cmd, args, { track = true } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (track && child.pid) live.add(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      live.delete(child.pid);
      resolve({ code, signal, ms, stdout, stderr });
    });
  });
}

let wrapper; // bench/maxrss.c, built

/** What every CLI command pays before ckpt does anything: the median wall of `n` runs of `ckpt --version`. */
async function startupMs(work, n) {
  const walls = [];
  for (let i = 0; i < n; i++) walls.push((await ckpt(['--version'], work)).ms);
  return median(walls);
}

/** Run `ckpt ARGS` under the wrapper: {ok, code, ms, harnessMs, rssKiB, json, stderr, vline}. */
async function ckpt(args, work) {
  const outFile = path.join(work, `rss.${process.hrtime.bigint()}`);
  const r = await run(wrapper, [outFile, ckptBin, ...args]);
  let rssKiB = NaN;
  let ms = NaN;
  try {
    [rssKiB, ms] = fs.readFileSync(outFile, 'utf8').trim().split(' ').map(Number);
    fs.rmSync(outFile, { force: true });
  } catch { /* no figure */ }
  let json;
  const last = r.stdout.trim().split('\n').pop();
  try { json = last ? JSON.parse(last) : undefined; } catch { /* not JSON */ }
  const isV = (l) => /^ckpt: (dump|restore) of pid/.test(l) || /^ckpt: time since start/.test(l);
  const vline = r.stderr.split('\n').filter(isV).join('\n    ') || undefined;
  const errText = r.stderr.split('\n').filter((l) => l && !isV(l) && !/^Command exited/.test(l)).join(' | ');
  return { ok: r.code === 0, code: r.code, ms: Number.isFinite(ms) ? ms : r.ms, harnessMs: r.ms, rssKiB, json, stderr: errText, vline };
}

/** A memhog process with its control directory, driven through files (see bench/memhog.c). */
class Hog {
  constructor(bins, ctl, mappedMiB, touchedMiB, seed) {
    fs.mkdirSync(ctl, { recursive: true });
    this.ctl = ctl;
    this.seq = 0;
    // Its own session, our child: we reap it the moment it dies (see scripts/demo.mjs).
    const child = spawn(bins.memhog, [ctl, String(mappedMiB), String(touchedMiB), String(seed)],
      { detached: true, stdio: 'ignore', cwd: ctl });
    child.on('error', () => {});
    child.unref();
    this.pid = child.pid;
    live.add(this.pid);
  }

  async response(seq, timeoutMs) {
    const file = path.join(this.ctl, 'resp');
    const end = Date.now() + timeoutMs;
    for (;;) {
      let text = '';
      try { text = fs.readFileSync(file, 'utf8').trim(); } catch { /* not yet */ }
      const words = text.split(/\s+/);
      if (words[0] === String(seq)) return words.slice(1);
      if (Date.now() > end) throw new Error(`pid ${this.pid}: no answer ${seq} within ${timeoutMs} ms (last: '${text}')`);
      if (gone(this.pid)) throw new Error(`pid ${this.pid} is not running`);
      await sleep(2);
    }
  }

  ready(timeoutMs = 120000) {
    return this.response(0, timeoutMs);
  }

  async send(verb, timeoutMs = 30000) {
    const seq = ++this.seq;
    const tmp = path.join(this.ctl, 'cmd.tmp');
    fs.writeFileSync(tmp, `${seq} ${verb}\n`);
    fs.renameSync(tmp, path.join(this.ctl, 'cmd'));
    return this.response(seq, timeoutMs);
  }

  async verify(all) {
    const w = await this.send(all ? 'verify-all' : 'verify');
    return { pass: w[0] === 'PASS', detail: w.join(' ') };
  }

  async report() {
    const w = await this.send('report');
    const kv = Object.fromEntries([[w[0], w[1]], [w[2], w[3]], [w[4], w[5]]]);
    return { maxGapMs: Number(kv.maxgap) / 1e6, spinMs: Number(kv.spin) / 1e6, iters: Number(kv.iters) };
  }
}

async function waitGone(pid, timeoutMs = 10000) {
  const t0 = Date.now();
  while (fs.existsSync(`/proc/${pid}`)) {
    if (Date.now() - t0 > timeoutMs) return false;
    await sleep(2);
  }
  return true;
}

/** Kill a pid we started; wait until it has exited (a zombie of PID 1's holds no memory). */
async function killAndWait(pid) {
  killPid(pid);
  const t0 = Date.now();
  while (!gone(pid) && Date.now() - t0 < 10000) await sleep(2);
  live.delete(pid);
}

function dirSize(dir) {
  let blocks = 0;
  let apparent = 0;
  const walk = (p) => {
    const st = fs.lstatSync(p);
    blocks += st.blocks * 512;
    if (st.isDirectory()) { for (const n of fs.readdirSync(p)) walk(path.join(p, n)); }
    else apparent += st.size;
  };
  walk(dir);
  return { du: blocks, apparent };
}

// ---------------------------------------------------------------- filesystems

function mountOf(p) {
  const real = fs.realpathSync(p);
  let best = { dir: '', type: '?' };
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [, dir, type] = line.split(' ');
    if (!dir) continue;
    const d = dir.replace(/\\040/g, ' ');
    if ((real === d || real.startsWith(d === '/' ? '/' : d + '/')) && d.length >= best.dir.length) best = { dir: d, type };
  }
  return best;
}

function setupFs(kind) {
  if (kind === 'tmpfs') {
    if (fs.existsSync('/dev/shm') && mountOf('/dev/shm').type === 'tmpfs') {
      const d = fs.mkdtempSync('/dev/shm/ckpt-bench-');
      workDirs.push(d);
      return { kind, dir: d, type: 'tmpfs', where: '/dev/shm' };
    }
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-tmpfs-'));
    workDirs.push(d);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4g', 'ckpt-bench', d]);
    mountedTmpfs = d;
    return { kind, dir: d, type: 'tmpfs', where: d };
  }
  for (const base of ['/var/tmp', '/tmp', root]) {
    if (!fs.existsSync(base)) continue;
    const m = mountOf(base);
    if (['tmpfs', 'ramfs', 'overlay'].includes(m.type) && base !== root) continue;
    const d = fs.mkdtempSync(path.join(base, 'ckpt-bench-'));
    workDirs.push(d);
    return { kind, dir: d, type: m.type, where: base };
  }
  throw new Error('no disk-backed directory found');
}

// ---------------------------------------------------------------- measurements

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

async function reference(bins, where, bytes, seed) {
  const file = path.join(where, `ref.${seed}`);
  try {
    const r = await run(bins.ioref, [file, String(bytes), String(seed)]);
    if (r.code !== 0) throw new Error(`ioref failed: ${r.stderr.trim()}`);
    const w = r.stdout.trim().split(/\s+/);
    const kv = Object.fromEntries([[w[0], w[1]], [w[2], w[3]], [w[4], w[5]], [w[6], w[7]]]);
    return { writeMs: Number(kv.write_ns) / 1e6, writeNoSyncMs: Number(kv.nosync_ns) / 1e6, readMs: Number(kv.read_ns) / 1e6 };
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** One run of one case on one filesystem. */
async function oneRun(bins, fsx, c, runNo, seed) {
  const r = { run: runNo, pass: false, errors: [] };
  const ctl = path.join(fsx.dir, `ctl-${seed}`);
  const imgR = path.join(fsx.dir, `img-R-${seed}`);
  const img = path.join(fsx.dir, `img-${seed}`);
  const fail = (what) => { r.errors.push(what); return r; };
  let hog;
  try {
    hog = new Hog(bins, ctl, c.mapped, c.touched, seed);
    await hog.ready();
    r.pid = hog.pid;

    // Idle baseline of the gap measurement, then the frozen time of a dump -R.
    await hog.send('reset');
    await sleep(100);
    r.idleGapMs = (await hog.report()).maxGapMs;
    await hog.send('reset');
    const dr = await ckpt(['dump', '-t', String(hog.pid), '-D', imgR, '-R', '--json'], ctl);
    const gap = await hog.report();
    r.frozenMs = gap.maxGapMs;
    r.dumpRMs = dr.ms;
    r.dumpRTimings = dr.json?.timings;
    fs.rmSync(imgR, { recursive: true, force: true });
    if (!dr.ok) return fail(`dump -R exited ${dr.code}: ${dr.stderr}`);
    const vr = await hog.verify(false);
    r.afterLeaveRunning = vr.detail;
    if (!vr.pass) return fail(`after dump -R: ${vr.detail}`);

    // Dump (kills it).
    const d = await ckpt(['dump', '-t', String(hog.pid), '-D', img, '--json'], ctl);
    r.dumpMs = d.ms;
    r.dumpHarnessMs = d.harnessMs;
    r.dumpRssKiB = d.rssKiB;
    r.dumpTimings = d.json?.timings;
    // The dump's own time (ckpt's engine), without node's start-up and the loading of ckpt.
    r.dumpEngineMs = d.json?.ms;
    if (!d.ok) return fail(`dump exited ${d.code}: ${d.stderr}`);
    r.bytes = d.json?.bytes;
    r.pages = d.json?.pages;
    r.dumpMiBs = r.bytes / MiB / (d.ms / 1000);
    Object.assign(r, (({ du, apparent }) => ({ imageDu: du, imageApparent: apparent }))(dirSize(img)));
    const t0 = Date.now();
    if (!(await waitGone(hog.pid))) return fail(`pid ${hog.pid} still in /proc 10 s after the dump`);
    r.waitGoneMs = Date.now() - t0;
    live.delete(hog.pid);

    // Restore, and check it.
    const rs = await ckpt(['restore', '-D', img, '-d', '--json'], ctl);
    if (rs.ok) live.add(hog.pid); // the restored process, ours to kill
    r.restoreMs = rs.ms;
    r.restoreHarnessMs = rs.harnessMs;
    r.restoreRssKiB = rs.rssKiB;
    r.restoreTimings = rs.json?.timings;
    if (!rs.ok) return fail(`restore exited ${rs.code}: ${rs.stderr}`);
    if (rs.json?.pid !== hog.pid) return fail(`restore says pid ${rs.json?.pid}, expected ${hog.pid}`);
    if (gone(hog.pid)) return fail(`restored pid ${hog.pid} is not running`);
    const v = await hog.verify(true);
    r.afterRestore = v.detail;
    if (!v.pass) return fail(`after restore: ${v.detail}`);
    r.pass = true;
  } catch (e) {
    fail(e.message);
  } finally {
    if (hog && live.has(hog.pid)) await killAndWait(hog.pid);
    fs.rmSync(img, { recursive: true, force: true });
    fs.rmSync(imgR, { recursive: true, force: true });
    fs.rmSync(ctl, { recursive: true, force: true });
  }
  // References for the same bytes on the same filesystem, with no test process around.
  if (r.bytes > 0) {
    try {
      Object.assign(r, await reference(bins, fsx.dir, r.bytes, seed));
    } catch (e) {
      r.errors.push(e.message);
    }
  }
  return r;
}

const METRICS = ['bytes', 'dumpMs', 'dumpEngineMs', 'dumpMiBs', 'restoreMs', 'writeMs', 'writeNoSyncMs', 'readMs', 'imageDu', 'imageApparent',
  'dumpRssKiB', 'restoreRssKiB', 'frozenMs', 'idleGapMs', 'dumpRMs'];

function summarize(runs) {
  const ok = runs.filter((r) => r.pass);
  const m = {};
  for (const k of METRICS) m[k] = median(ok.map((r) => r[k]));
  m.dumpVsWrite = m.dumpMs / m.writeMs;
  m.restoreVsRead = m.restoreMs / m.readMs;
  return m;
}

// ---------------------------------------------------------------- output

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const mib = (x) => (Number.isFinite(x) ? (x / MiB).toFixed(1) : '-');

function table(headers, rows) {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [line(headers), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

function formatResults(res) {
  const out = [];
  out.push(`ckpt ${res.meta.ckptVersion} bench, ${res.meta.date}: kernel ${res.meta.kernel}, ${res.meta.cpus} CPUs, node ${res.meta.node}; ` +
    `medians of ${res.meta.runs} run(s); wall time and peak RSS of each ckpt process from bench/maxrss.c (fork to wait4)`);
  const headers = ['fs', 'case', 'MiB', 'dump ms', 'MiB/s', 'wref ms', 'dump/w', 'rest ms', 'rref ms', 'rest/r',
    'du MiB', 'app MiB', 'rss d', 'rss r', 'frozen', 'idle', 'dump-R', 'verify'];
  const rows = res.rows.map((row) => {
    const m = row.median;
    return [`${row.fs}(${row.fsType})`, row.case, mib(m.bytes), f0(m.dumpMs), f0(m.dumpMiBs), f0(m.writeMs), f2(m.dumpVsWrite),
      f0(m.restoreMs), f0(m.readMs), f2(m.restoreVsRead), mib(m.imageDu), mib(m.imageApparent),
      mib(m.dumpRssKiB * 1024), mib(m.restoreRssKiB * 1024), f1(m.frozenMs), f1(m.idleGapMs), f0(m.dumpRMs),
      row.pass ? 'PASS' : `FAIL ${row.runs.filter((r) => !r.pass).length}/${row.runs.length}`];
  });
  out.push(table(headers, rows));
  out.push('MiB: bytes dumped; dump/rest ms: wall of the ckpt CLI, its process from fork to exit; wref/rref: write()+fsync / read() of the same bytes on the same fs;');
  out.push('du/app: image size allocated/apparent; rss d/r: ckpt peak RSS MiB; frozen: largest gap (ms) the process saw during dump -R;');
  out.push('idle: largest gap in 100 ms without ckpt (noise floor); dump-R: wall ms of that dump -R.');
  for (const s of res.sparse) {
    const ofDense = s.dumpFraction === undefined
      ? `image ${f1(s.imageMiB)} MiB, dump ${f0(s.dumpMs)} ms (the dump itself, start-up aside: ${f0(s.dumpEngineMs)} ms), restore ${f0(s.restoreMs)} ms`
      : `image ${f1(s.imageMiB)} MiB = ${f2(100 * s.imageFraction)}% of the dense 1 GiB image, ` +
        `dump ${f0(s.dumpMs)} ms = ${f2(100 * s.dumpFraction)}% of the dense 1 GiB dump (the dump itself, start-up aside: ${f0(s.dumpEngineMs)} ms = ${f2(100 * s.dumpEngineFraction)}%), ` +
        `restore ${f0(s.restoreMs)} ms = ${f2(100 * s.restoreFraction)}%`;
    out.push(`sparse on ${s.fs}: 1 GiB mapped, 16 MiB touched: ${ofDense}` +
      (s.touchedOnly ? `; a process of only those 16 MiB: dump ${f0(s.touchedOnly.dumpMs)} ms (itself ${f0(s.touchedOnly.dumpEngineMs)} ms), restore ${f0(s.touchedOnly.restoreMs)} ms` : '') +
      `; \`ckpt --version\` alone: ${f0(s.startupMs)} ms` + (s.startupFraction === undefined ? '' : ` = ${f2(100 * s.startupFraction)}% of the dense dump`));
  }
  const fails = res.rows.flatMap((row) => row.runs.filter((r) => !r.pass).map((r) => `  ${row.fs} ${row.case} run ${r.run}: ${r.errors.join('; ')}`));
  if (fails.length) out.push('', '*** FAILURES: these restores (or dumps) are broken, their figures mean nothing ***', ...fails);
  if (res.small) out.push('', formatSmall(res.small));
  if (res.compress) out.push('', formatCompress(res.compress));
  return out.join('\n');
}

function formatSmall(small) {
  const out = [`small process (5 MiB touched), median of ${small.runs} runs:`];
  const headers = ['fs', 'case', 'dump ms', 'min', 'max', 'rest ms', 'min', 'max', 'startup', 'rss d', 'rss r', 'verify'];
  out.push(table(headers, small.rows.map((r) => [`${r.fs}(${r.fsType})`, '5MiB', f1(r.dumpMs), f1(r.dumpMin), f1(r.dumpMax),
    f1(r.restoreMs), f1(r.restoreMin), f1(r.restoreMax), f1(r.startupMs), mib(r.dumpRssKiB * 1024), mib(r.restoreRssKiB * 1024),
    r.pass ? 'PASS' : `FAIL ${r.fails.length}/${small.runs}`])));
  out.push('startup: median wall of `ckpt --version` (node start-up and loading ckpt), part of every command.');
  for (const r of small.rows) {
    out.push(`${r.fs}: ckpt -v of the median dump:\n    ${r.dumpV ?? '(none)'}`);
    out.push(`${r.fs}: ckpt -v of the median restore:\n    ${r.restoreV ?? '(none)'}`);
    if (r.fails.length) out.push('*** FAILURES ***', ...r.fails.map((f) => `  ${f}`));
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- small mode

async function smallMode(bins, fsx, runs) {
  const dumps = [];
  const restores = [];
  const fails = [];
  for (let i = 0; i < runs; i++) {
    const seed = 9000 + i;
    const ctl = path.join(fsx.dir, `ctl-${seed}`);
    const img = path.join(fsx.dir, `img-${seed}`);
    let hog;
    try {
      hog = new Hog(bins, ctl, 5, 5, seed);
      await hog.ready();
      const d = await ckpt(['dump', '-t', String(hog.pid), '-D', img, '-v'], ctl);
      if (!d.ok) throw new Error(`dump exited ${d.code}: ${d.stderr}`);
      dumps.push(d);
      if (!(await waitGone(hog.pid))) throw new Error(`pid ${hog.pid} still in /proc 10 s after the dump`);
      live.delete(hog.pid);
      const rs = await ckpt(['restore', '-D', img, '-d', '-v'], ctl);
      if (!rs.ok) throw new Error(`restore exited ${rs.code}: ${rs.stderr}`);
      live.add(hog.pid);
      restores.push(rs);
      const v = await hog.verify(true);
      if (!v.pass) throw new Error(`after restore: ${v.detail}`);
    } catch (e) {
      fails.push(`run ${i + 1}: ${e.message}`);
    } finally {
      if (hog && live.has(hog.pid)) await killAndWait(hog.pid);
      fs.rmSync(img, { recursive: true, force: true });
      fs.rmSync(ctl, { recursive: true, force: true });
    }
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  // What every CLI command pays before ckpt does anything: node + loading ckpt.
  const startup = await startupMs(fsx.dir, runs);
  const atMedian = (xs) => {
    const s = [...xs].sort((a, b) => a.ms - b.ms);
    return s[(s.length - 1) >> 1];
  };
  return {
    fs: fsx.kind, fsType: fsx.type, pass: fails.length === 0, fails,
    dumpMs: median(dumps.map((d) => d.ms)), dumpMin: Math.min(...dumps.map((d) => d.ms)), dumpMax: Math.max(...dumps.map((d) => d.ms)),
    restoreMs: median(restores.map((d) => d.ms)), restoreMin: Math.min(...restores.map((d) => d.ms)),
    restoreMax: Math.max(...restores.map((d) => d.ms)),
    startupMs: startup,
    dumpRssKiB: median(dumps.map((d) => d.rssKiB)), restoreRssKiB: median(restores.map((d) => d.rssKiB)),
    dumpV: dumps.length ? atMedian(dumps).vline : undefined, restoreV: restores.length ? atMedian(restores).vline : undefined,
    dumpVAll: dumps.map((d) => d.vline), restoreVAll: restores.map((d) => d.vline),
    dumpAllMs: dumps.map((d) => d.ms), restoreAllMs: restores.map((d) => d.ms),
  };
}

// ---------------------------------------------------------------- compress mode

// An unmodified python3 holding a few hundred MiB of real objects (dicts, strings,
// ints, lists): the realistic image for compression. It answers W/verify with a
// checksum of all of it, computed the same way as at start.
const PY_OBJECTS = `
import os, sys, time, random
w, mib = sys.argv[1], int(sys.argv[2])
random.seed(7)
words = ['alpha', 'beta', 'gamma', 'delta', 'request', 'response', 'user', 'session', 'token', 'cache']
data = []
while len(data) * 330 < mib * 1024 * 1024:
    data.append({'id': len(data), 'name': ' '.join(random.choice(words) for _ in range(6)), 'score': random.random(),
                 'tags': [random.choice(words) for _ in range(4)], 'n': random.randrange(1 << 30)})
def check():
    return sum(d['id'] + len(d['name']) + d['n'] % 1000 for d in data)
open(w + '/ready.tmp', 'w').write(str(check())); os.rename(w + '/ready.tmp', w + '/ready')
while True:
    if os.path.exists(w + '/verify'):
        os.unlink(w + '/verify')
        open(w + '/verified.tmp', 'w').write(str(check())); os.rename(w + '/verified.tmp', w + '/verified')
    time.sleep(0.05)
`;

async function pythonObjects(ctl, mib) {
  fs.mkdirSync(ctl, { recursive: true });
  const child = spawn('/usr/bin/python3', ['-c', PY_OBJECTS, ctl, String(mib)], { detached: true, stdio: 'ignore' });
  child.on('error', () => {});
  child.unref();
  live.add(child.pid);
  const ready = path.join(ctl, 'ready');
  for (let i = 0; i < 3000 && !fs.existsSync(ready); i++) await sleep(50);
  const want = fs.readFileSync(ready, 'utf8').trim();
  return {
    pid: child.pid,
    async verify() {
      const done = path.join(ctl, 'verified');
      fs.rmSync(done, { force: true });
      fs.writeFileSync(path.join(ctl, 'verify'), '');
      for (let i = 0; i < 1200 && !fs.existsSync(done); i++) await sleep(50);
      const got = fs.existsSync(done) ? fs.readFileSync(done, 'utf8').trim() : 'no answer';
      return { pass: got === want, detail: `checksum ${got}, want ${want}` };
    },
  };
}

async function compressMode(bins, fsx) {
  const rows = [];
  const subjects = [
    { name: 'python3 objects', start: (ctl) => pythonObjects(ctl, 300) },
    { name: 'random 256 MiB', start: async (ctl) => { const h = new Hog(bins, ctl, 256, 256, 4242); await h.ready(); return { pid: h.pid, verify: () => h.verify(true) }; } },
  ];
  for (const subject of subjects) {
    for (const codec of ['none', 'zstd', 'lz4']) {
      log(`compress: ${fsx.kind} ${subject.name} ${codec}`);
      const ctl = path.join(fsx.dir, `ctl-${codec}`);
      const img = path.join(fsx.dir, `img-${codec}`);
      const row = { fs: fsx.kind, subject: subject.name, codec, pass: false, errors: [] };
      let p;
      try {
        p = await subject.start(ctl);
        const d = await ckpt(['dump', '-t', String(p.pid), '-D', img, '--compress', codec], ctl);
        if (!d.ok) throw new Error(`dump exited ${d.code}: ${d.stderr}`);
        row.dumpMs = d.ms;
        row.imageBytes = dirSize(img).apparent;
        if (!(await waitGone(p.pid))) throw new Error(`pid ${p.pid} still in /proc after the dump`);
        live.delete(p.pid);
        const r = await ckpt(['restore', '-D', img, '-d'], ctl);
        if (!r.ok) throw new Error(`restore exited ${r.code}: ${r.stderr}`);
        live.add(p.pid);
        row.restoreMs = r.ms;
        const v = await p.verify();
        if (!v.pass) throw new Error(`after restore: ${v.detail}`);
        row.pass = true;
      } catch (e) {
        row.errors.push(e.message);
        log(`*** FAIL: ${e.message}`);
      } finally {
        if (p && live.has(p.pid)) await killAndWait(p.pid);
        fs.rmSync(img, { recursive: true, force: true });
        fs.rmSync(ctl, { recursive: true, force: true });
      }
      rows.push(row);
    }
  }
  for (const r of rows) {
    const plain = rows.find((x) => x.subject === r.subject && x.codec === 'none');
    r.ratio = plain?.imageBytes && r.imageBytes ? plain.imageBytes / r.imageBytes : NaN;
  }
  return rows;
}

function formatCompress(rows) {
  const headers = ['fs', 'image', 'codec', 'image MiB', 'ratio', 'dump ms', 'restore ms', 'verify'];
  return 'compression (--compress), one run each:\n' + table(headers, rows.map((r) => [r.fs, r.subject, r.codec, mib(r.imageBytes),
    f2(r.ratio), f0(r.dumpMs), f0(r.restoreMs), r.pass ? 'PASS' : 'FAIL']));
}

// ---------------------------------------------------------------- main

const opts = parseOptions(process.argv.slice(2));
keepDirs = opts.keep;

async function main() {
  if (process.getuid?.() !== 0) log('warning: not root; ckpt needs root');
  if (!fs.existsSync(ckptBin)) throw new Error(`${ckptBin} is missing: npm run build first`);
  const build = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-bench-bin-'));
  workDirs.push(build);
  const bins = {};
  for (const name of ['memhog', 'ioref', 'maxrss']) {
    bins[name] = path.join(build, name);
    execFileSync('cc', ['-O2', '-o', bins[name], path.join(root, 'bench', `${name}.c`)], { stdio: 'inherit' });
  }
  wrapper = bins.maxrss;

  const kinds = opts.fs === 'both' ? ['tmpfs', 'disk'] : [opts.fs];
  const fss = kinds.map(setupFs);
  for (const f of fss) log(`${f.kind}: ${f.dir} (${f.type})`);
  let ckptVersion = '?';
  try { ckptVersion = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version; } catch { /* unknown */ }
  let gitRev;
  try { gitRev = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* no git */ }
  const res = {
    meta: {
      ckptVersion, gitRev, date: new Date().toISOString(), kernel: os.release(), cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model, memTotalMiB: Math.round(os.totalmem() / MiB), node: process.version,
      runs: opts.small ? 10 : opts.runs, rssTool: 'maxrss', wallClock: 'bench/maxrss.c: fork to wait4', filesystems: fss.map(({ kind, dir, type }) => ({ kind, dir, type })),
      references: 'write: open+write()+fsync()+close() of the dumped bytes; read: read() of that file from the page cache into fresh memory',
    },
    rows: [], sparse: [],
  };
  const t0 = Date.now();

  if (opts.compress) {
    res.compress = [];
    for (const f of fss) res.compress.push(...await compressMode(bins, f));
  } else if (opts.small) {
    res.small = { runs: 10, rows: [] };
    for (const f of fss) {
      log(`small: ${f.kind}`);
      res.small.rows.push(await smallMode(bins, f, 10));
    }
  } else {
    const cases = opts.sizes.map((s) => (s === 'sparse'
      ? { name: 'sparse-1G/16M', mapped: 1024, touched: 16, sparse: true }
      : { name: `${s}MiB`, mapped: Number(s), touched: Number(s) }));
    let seed = 1;
    for (const f of fss) {
      for (const c of cases) {
        const runs = [];
        for (let i = 1; i <= opts.runs; i++) {
          log(`${f.kind} ${c.name} run ${i}/${opts.runs} (${((Date.now() - t0) / 1000).toFixed(0)} s so far)`);
          const r = await oneRun(bins, f, c, i, seed++);
          if (!r.pass) log(`*** FAIL: ${f.kind} ${c.name} run ${i}: ${r.errors.join('; ')}`);
          runs.push(r);
        }
        res.rows.push({ fs: f.kind, fsType: f.type, case: c.name, mappedMiB: c.mapped, touchedMiB: c.touched,
          pass: runs.every((r) => r.pass), median: summarize(runs), runs });
      }
      const sp = res.rows.find((r) => r.fs === f.kind && r.case.startsWith('sparse'));
      const dense = res.rows.find((r) => r.fs === f.kind && r.mappedMiB === 1024 && r.touchedMiB === 1024);
      // The same 16 MiB in a process that maps nothing more: what the sparse one would cost if
      // its 1008 untouched MiB cost nothing.
      const touchedOnly = sp && res.rows.find((r) => r.fs === f.kind && r.mappedMiB === sp.touchedMiB && r.touchedMiB === sp.touchedMiB);
      if (sp && (dense || touchedOnly)) {
        // About what any command costs before it does anything (node's start-up, loading ckpt,
        // its exit): the part of the sparse dump that no work on the dump itself can take away.
        const startup = await startupMs(f.dir, opts.runs + 2);
        res.sparse.push({ fs: f.kind, imageMiB: sp.median.imageDu / MiB, dumpMs: sp.median.dumpMs, restoreMs: sp.median.restoreMs,
          dumpEngineMs: sp.median.dumpEngineMs, startupMs: startup,
          ...(dense && { startupFraction: startup / dense.median.dumpMs, imageFraction: sp.median.imageDu / dense.median.imageDu, dumpFraction: sp.median.dumpMs / dense.median.dumpMs,
            restoreFraction: sp.median.restoreMs / dense.median.restoreMs, dumpEngineFraction: sp.median.dumpEngineMs / dense.median.dumpEngineMs }),
          touchedOnly: touchedOnly && { dumpMs: touchedOnly.median.dumpMs, restoreMs: touchedOnly.median.restoreMs, dumpEngineMs: touchedOnly.median.dumpEngineMs } });
      }
    }
  }
  res.meta.seconds = (Date.now() - t0) / 1000;
  const text = formatResults(res);
  const json = JSON.stringify(res, null, 2) + '\n';
  if (opts.out) fs.writeFileSync(opts.out, json);
  if (opts.json && !opts.out) { process.stderr.write(text + '\n'); process.stdout.write(json); }
  else process.stdout.write(text + '\n');
  log(`done in ${res.meta.seconds.toFixed(0)} s`);
  const failed = res.rows.some((r) => !r.pass) || (res.small?.rows.some((r) => !r.pass) ?? false)
    || (res.compress?.some((r) => !r.pass) ?? false);
  return failed ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (e) => { log(`error: ${e.stack ?? e.message}`); process.exitCode = 1; })
  .finally(cleanup);
