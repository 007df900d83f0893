#!/usr/bin/env node
// npm run soak -- [--cycles 200] [--variant cli|lib|both] [--program mem|read] [--keep]
//
// Dump → restore, over and over, of one self-checking program, looking for leaks and
// drift. Two variants (both by default, one after the other):
//
//  cli  `ckpt dump` then `ckpt restore -d --pidfile`, each a new ckpt process started
//       with a preload (dist/test/lib/exit-sampler.js) that reports, as it exits, its
//       peak RSS (ru_maxrss) and the fds it still holds.
//  lib  one long-lived Node process (this one) calling the library: dump() then
//       restore({ detach: true }), from dist/src/index.js. After every cycle (and a
//       gc(), when run with --expose-gc), it samples process.memoryUsage().rss and the
//       entries of /proc/self/fd: what the library leaks stays here and adds up.
//
// Every cycle also checks the program: same pid, its self-check PASSes, its counter
// carried on (mem: it grows again; read: exactly one more byte per SIGUSR1), and its
// own fd count and number of mappings (a restore that leaks an fd or a mapping into
// the process adds up across cycles too).
//
// Programs: mem = test/programs/mem.c (64 MiB with a checksum, sparse memory, a private
// file mapping, the brk heap, vector registers, a counter; fds 0-2 on /dev/null);
// read = test/programs/blocked.c in read mode (a pipe to itself, a SIGUSR1 handler, blocked
// in read()).
//
// Bounds (exit status 1 beyond any of them, or on any failed cycle):
//  - cli: ckpt's peak RSS of the last cycle within 25% (+16 MiB) of the first, per
//    command. Each ckpt is a fresh process, so growth can only come from what it reads
//    (the image, the process), which is the same every cycle; 25% covers GC timing.
//    ckpt's fds at exit: no more in the last cycle than in the first.
//  - lib: fds and threads (/proc/self/task) after the last cycle no more than the most
//    after the first three (every fd a cycle opens must be closed by its end; the first
//    cycles start the library's engine worker and its helper thread, whose event loops
//    hold a few fds; a worker or helper kept per cycle, or per live restored process,
//    adds both). RSS, which holds everything the library keeps (its workers' heaps and
//    compiled code, glibc's arenas, koffi's memory):
//      warm-up: the median of cycles 6-15 at most 16 MiB above cycle 1 (measured: +6 MiB;
//        before the fixes of issue #8, +42 to +63 MiB: every restore's verifier thread
//        left its 16 MiB window in a new glibc arena now and then, and a second engine
//        worker warmed up);
//      the median of the last 10 cycles at most 12 MiB above the median of cycles 6-15
//        (one such 16 MiB step after warm-up fails it; measured: +4 MiB over 200 cycles);
//      the least-squares slope over the cycles after 15 under 48 KiB per cycle (measured:
//        about 20 over 200 cycles, the engine isolate's compiled code still growing, and
//        3 over cycles 200-400; before: 30 to 243).
//    A dump of mem moves ~70 MB and uses 32 MiB of slots: keeping any per-cycle buffer
//    fails the first two at once.
//  - the program: the same fd count every cycle, and never more mappings than after
//    the first restore.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const libDir = path.join(root, 'dist/test/lib');
const sampler = path.join(libDir, 'exit-sampler.js');
if (!fs.existsSync(sampler)) {
  console.error('soak: dist/test/lib/exit-sampler.js is missing: build first (npx tsc -p tsconfig.json)');
  process.exit(2);
}
const h = await import(path.join(libDir, 'index.js'));
const s = await import(path.join(libDir, 'safety.js'));

const { values: opt } = parseArgs({
  options: {
    cycles: { type: 'string', default: '200' },
    variant: { type: 'string', default: 'both' },
    program: { type: 'string', default: 'mem' },
    keep: { type: 'boolean', default: false },
  },
});
const CYCLES = Number(opt.cycles);
const variants = opt.variant === 'both' ? ['cli', 'lib'] : [opt.variant];
if (!(CYCLES >= 1) || !variants.every((v) => v === 'cli' || v === 'lib') || !['mem', 'read'].includes(opt.program)) {
  console.error('usage: soak.mjs [--cycles N] [--variant cli|lib|both] [--program mem|read]');
  process.exit(2);
}
const MiB = 1024 * 1024;
const mib = (b) => `${(b / MiB).toFixed(1)} MiB`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** The least-squares slope of ys over 0, 1, 2...; 0 for fewer than two points. */
function leastSquaresSlope(ys) {
  const n = ys.length;
  if (n < 2) return 0;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, i) => {
    num += (i - mx) * (y - my);
    den += (i - mx) ** 2;
  });
  return num / den;
}
const READ_MODE = opt.program === 'read';
const binary = READ_MODE ? s.uniqueBinary('blocked', [], 'soak') : s.uniqueBinary('mem', [], 'soak');
const progArgs = READ_MODE ? ['read'] : [];

process.on('uncaughtException', async (e) => {
  console.error(`soak: ${e?.stack ?? e}`);
  await h.killAll().catch(() => {});
  process.exit(2);
});

/** Runs `ckpt ARGS` with the exit sampler; returns its result and sample. */
function sampledCkpt(args) {
  const out = path.join(h.makeWorkDir('soak-sample'), 'sample.json');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(sampler).href, h.CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CKPT_SAMPLE_OUT: out },
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.stdout.resume();
    child.on('close', (status, signal) => {
      let sample;
      try {
        sample = JSON.parse(fs.readFileSync(out, 'utf8'));
      } catch {}
      fs.rmSync(path.dirname(out), { recursive: true, force: true });
      resolve({ status, signal, stderr, sample });
    });
  });
}

function programShape(pid) {
  // The program opens its protocol files (W/.NAME.tmp, /proc/self/...) for an
  // instant: such an fd, or one gone before its link is read, is not a leak.
  const link = (fd) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } };
  const fds = fs.readdirSync(`/proc/${pid}/fd`).map(link).filter((l) => l !== '' && !l.endsWith('.tmp') && !l.startsWith('/proc/')).length;
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n').length;
  return { fds, maps };
}

/** The program's check after a restore; returns the new counter or throws what is wrong. */
async function checkProgram(pid, dir, last) {
  if (READ_MODE) {
    await h.waitBlockedIn(pid, h.SYSCALL.read, 30_000);
    const report = await h.requestCheck(dir, { timeoutMs: 30_000, poke: () => process.kill(pid, 'SIGUSR1') });
    if (!report.startsWith('PASS')) throw new Error(`check: ${report}`);
    const n = h.reportedCounter(report);
    if (last !== undefined && n !== last + 1) throw new Error(`counter ${n} after ${last}: expected exactly one more`);
    return n;
  }
  const report = await h.requestCheck(dir, { timeoutMs: 60_000 });
  if (!report.startsWith('PASS')) throw new Error(`check: ${report}`);
  const n = h.reportedCounter(report);
  if (last !== undefined && n < last) throw new Error(`counter went back from ${last}: ${report}`);
  return h.waitCounterAbove(dir, n, 10_000);
}

async function startProgram(orphan = false) {
  const dir = h.makeWorkDir(`soak-${opt.program}`);
  // The lib variant traces from this very process: its program must not be our child (see startOrphan).
  const { pid } = orphan ? h.startOrphan(binary, [dir, ...progArgs]) : h.startProgram(binary, [dir, ...progArgs]);
  await h.waitReady(dir, { pid });
  const counter = await checkProgram(pid, dir);
  return { dir, pid, counter };
}

// ---- the cli variant -------------------------------------------------------------

async function cliVariant() {
  const p = await startProgram();
  let counter = p.counter;
  const rows = [];
  const failures = [];
  let shape0;
  const t0 = performance.now();
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const image = path.join(h.makeWorkDir('soak-img'), 'image');
    const pidfile = path.join(path.dirname(image), 'pid');
    try {
      if (READ_MODE) await h.waitBlockedIn(p.pid, h.SYSCALL.read, 30_000);
      const d = await sampledCkpt(['dump', '-t', String(p.pid), '-D', image]);
      if (d.status !== 0) throw new Error(`dump: status ${d.status} signal ${d.signal}: ${d.stderr.trim()}`);
      await h.waitGone(p.pid);
      const r = await sampledCkpt(['restore', '-d', '-D', image, '--pidfile', pidfile]);
      if (r.status !== 0) throw new Error(`restore: status ${r.status} signal ${r.signal}: ${r.stderr.trim()}`);
      const pid = Number(fs.readFileSync(pidfile, 'utf8'));
      if (pid !== p.pid) throw new Error(`restored as pid ${pid}, not ${p.pid}`);
      h.track(pid);
      counter = await checkProgram(pid, p.dir, counter);
      const shape = programShape(pid);
      shape0 ??= shape;
      if (shape.fds !== shape0.fds) throw new Error(`the program holds ${shape.fds} fds, ${shape0.fds} after the first restore`);
      if (shape.maps > shape0.maps) throw new Error(`the program has ${shape.maps} mappings, ${shape0.maps} after the first restore`);
      if (!d.sample || !r.sample) throw new Error('no sample from the exit sampler');
      rows.push({ dumpRss: d.sample.maxRssBytes, restoreRss: r.sample.maxRssBytes, dumpFds: d.sample.fdsAtExit, restoreFds: r.sample.fdsAtExit });
    } catch (e) {
      failures.push(`cycle ${cycle}: ${e.message}`);
      console.log(`cli cycle ${cycle}: FAILED: ${e.message}`);
      break; // the program is in an unknown state: stop here
    } finally {
      if (!opt.keep) fs.rmSync(path.dirname(image), { recursive: true, force: true });
    }
    if (cycle % 10 === 0 || cycle === 1) {
      const row = rows.at(-1);
      console.log(`cli cycle ${cycle}: ckpt dump peak ${mib(row.dumpRss)} fds ${row.dumpFds}; restore peak ${mib(row.restoreRss)} fds ${row.restoreFds}; counter ${counter}`);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  await h.killAll();
  const bounds = [];
  if (rows.length) {
    const first = rows[0];
    const last = rows.at(-1);
    for (const [what, key] of [['dump', 'dumpRss'], ['restore', 'restoreRss']]) {
      if (last[key] > first[key] * 1.25 + 16 * MiB) bounds.push(`ckpt ${what} peak RSS grew from ${mib(first[key])} to ${mib(last[key])}`);
    }
    for (const [what, key] of [['dump', 'dumpFds'], ['restore', 'restoreFds']]) {
      if (last[key] > first[key]) bounds.push(`ckpt ${what} fds at exit grew from ${first[key]} to ${last[key]}`);
    }
  }
  const stat = (key) => (rows.length ? `${mib(rows[0][key])}/${mib(rows.at(-1)[key])}/${mib(Math.max(...rows.map((r) => r[key])))}` : 'n/a');
  const fdStat = (key) => (rows.length ? `${rows[0][key]}/${rows.at(-1)[key]}` : 'n/a');
  console.log(
    `soak cli (${opt.program}): ${rows.length} cycles, ${failures.length} failures, ${secs.toFixed(0)} s; ` +
      `ckpt dump rss first/last/max ${stat('dumpRss')}, fds first/last ${fdStat('dumpFds')}; ` +
      `ckpt restore rss first/last/max ${stat('restoreRss')}, fds first/last ${fdStat('restoreFds')}; ` +
      `program fds ${shape0?.fds}, mappings ${shape0?.maps}`,
  );
  return { failures, bounds };
}

// ---- the lib variant ---------------------------------------------------------------

/** This process's resident bytes by mapping kind, from /proc/self/smaps. */
function residentByKind() {
  const out = { anon: 0, brk: 0, file: 0 };
  let kind = 'anon';
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) { kind = head[1] === '[heap]' ? 'brk' : head[1].startsWith('/') ? 'file' : 'anon'; continue; }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) out[kind] += Number(rss[1]) * 1024;
  }
  return out;
}

async function libVariant() {
  const api = await import(pathToFileURL(path.join(root, 'dist/src/index.js')).href);
  const { wait4 } = await import(pathToFileURL(path.join(root, 'dist/src/sys/syscalls.js')).href);
  const p = await startProgram(true);
  let counter = p.counter;
  let pid = p.pid;
  const rows = [];
  const failures = [];
  let shape0;
  const gc = globalThis.gc;
  const selfFds = () => fs.readdirSync('/proc/self/fd').length - 1; // minus the one readdir uses
  const selfThreads = () => fs.readdirSync('/proc/self/task').length;
  const t0 = performance.now();
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const image = path.join(h.makeWorkDir('soak-img'), 'image');
    try {
      if (READ_MODE) await h.waitBlockedIn(pid, h.SYSCALL.read, 30_000);
      await api.dump({ pid, dir: image });
      await h.waitGone(pid);
      const r = await api.restore({ dir: image, detach: true });
      if (r.pid !== p.pid) throw new Error(`restored as pid ${r.pid}, not ${p.pid}`);
      pid = r.pid; // our child now (the seed's CLONE_PARENT); the next dump reaps it
      counter = await checkProgram(pid, p.dir, counter);
      const shape = programShape(pid);
      shape0 ??= shape;
      if (shape.fds !== shape0.fds) throw new Error(`the program holds ${shape.fds} fds, ${shape0.fds} after the first restore`);
      if (shape.maps > shape0.maps) throw new Error(`the program has ${shape.maps} mappings, ${shape0.maps} after the first restore`);
    } catch (e) {
      failures.push(`cycle ${cycle}: ${e.message}`);
      console.log(`lib cycle ${cycle}: FAILED: ${e.message}`);
      break;
    } finally {
      if (!opt.keep) fs.rmSync(path.dirname(image), { recursive: true, force: true });
    }
    await h.sleep(20); // let worker terminations and other async closes land
    gc?.();
    const mem = process.memoryUsage();
    rows.push({ rss: mem.rss, fds: selfFds(), threads: selfThreads() });
    if (cycle % 10 === 0 || cycle === 1) {
      // Where the resident memory is: this thread's JS heap and buffers, and the mappings by kind.
      const where = residentByKind();
      console.log(`lib cycle ${cycle}: rss ${mib(rows.at(-1).rss)} (js heap ${mib(mem.heapUsed)}, buffers ${mib(mem.arrayBuffers)}; ` +
        `anonymous ${mib(where.anon)}, [heap] ${mib(where.brk)}, files ${mib(where.file)}) fds ${rows.at(-1).fds} threads ${rows.at(-1).threads}; counter ${counter}`);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  // The restored program is our child, unknown to Node: kill and reap it ourselves.
  if (pid !== p.pid || h.procInfo(pid)?.ppid === process.pid) {
    try {
      process.kill(pid, 'SIGKILL');
      wait4(pid);
    } catch {}
  }
  await h.killAll();

  const bounds = [];
  let slope = 0;
  let lateSlope = 0;
  if (rows.length) {
    const rss = rows.map((r) => r.rss);
    // The library keeps its finished engine workers (src/api/engine.ts) and their helper
    // threads, each with its event loop's fds: compare with the most of the first three cycles.
    for (const key of ['fds', 'threads']) {
      const first = Math.max(...rows.slice(0, 3).map((r) => r[key]));
      if (rows.at(-1)[key] > first) bounds.push(`${key} grew from ${first} in the first cycles to ${rows.at(-1)[key]}`);
    }
    const warm = Math.min(15, Math.floor(rows.length / 2));
    const base = median(rss.slice(Math.min(5, Math.max(0, warm - 1)), Math.max(warm, 1)));
    const tail = median(rss.slice(-10));
    const xs = rss.slice(warm);
    slope = leastSquaresSlope(xs);
    lateSlope = leastSquaresSlope(rss.slice(Math.floor(rss.length / 2)));
    if (rows.length >= 15 && base - rss[0] > 16 * MiB) bounds.push(`rss grew from ${mib(rss[0])} (cycle 1) to ${mib(base)} (cycles 6-15)`);
    if (tail - base > 12 * MiB) bounds.push(`rss grew from ${mib(base)} (cycles 6-15) to ${mib(tail)} (last 10)`);
    if (xs.length >= 50 && slope > 48 * 1024) bounds.push(`rss grows by ${(slope / 1024).toFixed(0)} KiB per cycle`);
  }
  const rss = rows.map((r) => r.rss);
  console.log(
    `soak lib (${opt.program}): ${rows.length} cycles, ${failures.length} failures, ${secs.toFixed(0)} s; ` +
      (rows.length
        ? `rss first/last/max ${mib(rss[0])}/${mib(rss.at(-1))}/${mib(Math.max(...rss))} (slope after cycle 15 ${(slope / 1024).toFixed(1)} KiB/cycle, ` +
          `over the second half ${(lateSlope / 1024).toFixed(1)}${gc ? '' : ', no --expose-gc'}), ` +
          `fds first/last ${rows[0].fds}/${rows.at(-1).fds}, threads ${rows[0].threads}/${rows.at(-1).threads}; `
        : '') +
      `program fds ${shape0?.fds}, mappings ${shape0?.maps}`,
  );
  return { failures, bounds };
}

// ---- main ----------------------------------------------------------------------------

let bad = 0;
for (const v of variants) {
  const { failures, bounds } = v === 'cli' ? await cliVariant() : await libVariant();
  for (const b of bounds) console.log(`soak ${v}: beyond bound: ${b}`);
  bad += failures.length + bounds.length;
}
await h.cleanup();
console.log(bad ? `soak: FAILED (${bad} problems)` : 'soak: ok');
// Exit now: the lib variant's first program was reaped by dump(), not by Node, whose
// handle of that child would otherwise keep the event loop waiting forever.
process.exit(bad ? 1 : 0);
