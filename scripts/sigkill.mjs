#!/usr/bin/env node
// npm run sigkill -- [--runs 100] [--program mem|blocked] [--from MS] [--to MS] [--seed N] [--quiet] [--keep]
//
// What happens to a process when `ckpt dump -R` is SIGKILLed in the middle of a dump?
// ckpt cannot clean up after a SIGKILL; the kernel detaches the tracee. The process must
// then run on as if never seen: alive, not traced, its self-check a PASS, its counter
// growing. A kill during the remote syscalls leaves the scratch mapping (reported below as
// a maps change, not a failure): the return frame (src/ptrace/safe-return.ts) puts the
// registers and mask back. For kills at exact instants see test/e2e-sigkill-window.test.ts.
//
// 1. Calibration: three normal `ckpt dump -R -v --json` of the program. Their median wall
//    time (spawn to exit of the CLI) is D; their timings give a rough map of when each
//    dump step runs (node's start-up first, then validate, freeze, proc, remote, pages,
//    write, finish), used only to label kill moments ("~remote").
// 2. Each run: a fresh program (test/programs/mem.c by default: 64 MiB with a checksum,
//    registers across a raw syscall, a counter; `--program blocked` is blocked.c in
//    nanosleep mode, a small one), a first PASS, then `ckpt dump -R` SIGKILLed at a moment
//    drawn uniformly from [from, to] ms after its spawn (default [0, D]). Then: alive,
//    TracerPid 0, not stopped, counter grows, check PASSes. Also noted, not counted as a
//    failure: whether /proc/PID/maps, the fd table or the signal state (SigBlk, SigIgn,
//    SigCgt, pending) changed, and whether the kill left DIR.partial or a DIR that
//    `ckpt show` cannot read.
// Last line: `sigkill: N of M survived`. Exit status 1 if any run did not survive.
// Build first (npm run sigkill does).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const libDir = path.join(root, 'dist/test/lib');
if (!fs.existsSync(path.join(libDir, 'safety.js'))) {
  console.error('sigkill: dist/test/lib/safety.js is missing: build first (npx tsc -p tsconfig.json)');
  process.exit(2);
}
const h = await import(path.join(libDir, 'index.js'));
const s = await import(path.join(libDir, 'safety.js'));

const { values: opt } = parseArgs({
  options: {
    runs: { type: 'string', default: '100' },
    program: { type: 'string', default: 'mem' },
    from: { type: 'string' },
    to: { type: 'string' },
    seed: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const RUNS = Number(opt.runs);
const PROGRAMS = { mem: { name: 'mem', args: [] }, blocked: { name: 'blocked', args: ['nanosleep'] } };
const program = PROGRAMS[opt.program];
if (!program || !(RUNS > 0)) {
  console.error('usage: sigkill.mjs [--runs N] [--program mem|blocked] [--from MS] [--to MS] [--seed N] [--quiet] [--keep]');
  process.exit(2);
}

// A small seeded PRNG (mulberry32), so that a campaign's kill moments can be replayed.
let seed = opt.seed !== undefined ? Number(opt.seed) >>> 0 : (Date.now() ^ (process.pid << 10)) >>> 0;
const seedUsed = seed;
function random() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const binary = s.uniqueBinary(program.name);
const log = (line) => console.log(line);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function startProgram() {
  const dir = h.makeWorkDir(`sigkill-${program.name}`);
  const started = h.startProgram(binary, [dir, ...program.args]);
  await h.waitReady(dir, { pid: started.pid });
  const first = await h.requestCheck(dir);
  if (!first.startsWith('PASS')) throw new Error(`the program failed its first check: ${first}`);
  return { dir, pid: started.pid, exited: started.exited };
}

async function stopProgram(p) {
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch {
    // gone already
  }
  await h.waitGone(p.pid).catch(() => {});
  if (!opt.keep) fs.rmSync(p.dir, { recursive: true, force: true });
}

/** Runs `ckpt ARGS`, optionally SIGKILLed `killAtMs` after its spawn. */
function runCkpt(args, killAtMs) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [h.CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    let killedAt;
    const timer =
      killAtMs === undefined
        ? undefined
        : setTimeout(() => {
            killedAt = performance.now() - t0;
            child.kill('SIGKILL');
          }, killAtMs);
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, ms: performance.now() - t0, killedAt });
    });
  });
}

// ---- 1. calibration -------------------------------------------------------------

// Whatever happens, the programs this script started are killed (by pid) at the end.
process.on('uncaughtException', async (e) => {
  console.error(`sigkill: ${e?.stack ?? e}`);
  await h.cleanup().catch(() => {});
  process.exit(2);
});

const calib = await startProgram();
const walls = [];
const engineMs = [];
const stepTimings = [];
for (let i = 0; i < 3; i++) {
  const image = path.join(h.makeWorkDir('sigkill-calib'), 'image');
  const r = await runCkpt(['dump', '-R', '--json', '-t', String(calib.pid), '-D', image]);
  if (r.status !== 0) {
    console.error(`sigkill: a normal dump -R failed (status ${r.status}): ${r.stderr.trim()}`);
    process.exit(2);
  }
  const json = JSON.parse(r.stdout);
  walls.push(r.ms);
  engineMs.push(json.ms);
  stepTimings.push(json.timings ?? {});
  fs.rmSync(path.dirname(image), { recursive: true, force: true });
}
const calibProblems = await s.problemsOf(calib.pid, calib.dir);
if (calibProblems.length) {
  console.error(`sigkill: the program is not fine after normal dumps: ${calibProblems.join('; ')}`);
  process.exit(2);
}
await stopProgram(calib);

const D = median(walls);
const engine = median(engineMs);
// The engine's steps, laid out from where it starts (all other time counted as start-up).
const phases = [];
{
  let at = D - engine;
  phases.push(['startup', 0, at]);
  const names = Object.keys(stepTimings[0]);
  for (const name of names) {
    const ms = median(stepTimings.map((t) => t[name] ?? 0));
    phases.push([name, at, at + ms]);
    at += ms;
  }
  phases.push(['exit', at, Infinity]);
}
const phaseAt = (ms) => (phases.find(([, a, b]) => ms >= a && ms < b) ?? ['?'])[0];
const from = opt.from !== undefined ? Number(opt.from) : 0;
const to = opt.to !== undefined ? Number(opt.to) : D;

log(
  `sigkill: ${program.name}, normal dump -R ${D.toFixed(0)} ms (median of 3), the engine ~${engine.toFixed(0)} ms of it; ` +
    `steps (estimated, ms after spawn): ${phases
      .slice(1, -1)
      .map(([n, a, b]) => `${n} ${a.toFixed(0)}-${b.toFixed(0)}`)
      .join(', ')}`,
);
log(`sigkill: ${RUNS} runs, kill uniformly in [${from.toFixed(0)}, ${to.toFixed(0)}] ms, seed ${seedUsed}`);

/** What the process looked like just after ckpt died: where it was, and its blocked mask. */
function stateNow(pid) {
  const read = (f) => {
    try {
      return fs.readFileSync(`/proc/${pid}/${f}`, 'utf8');
    } catch {
      return '';
    }
  };
  const info = h.procInfo(pid);
  if (!info) return 'already gone';
  const sys = read('syscall').trim().split(' ');
  const ip = sys.length >= 9 ? BigInt(sys[sys.length - 1]) : undefined;
  const region = read('maps')
    .split('\n')
    .map((l) => l.split(/\s+/))
    .find(([range]) => {
      if (!range || ip === undefined) return false;
      const [a, b] = range.split('-').map((x) => BigInt('0x' + x));
      return ip >= a && ip < b;
    });
  const blk = /^SigBlk:\s*(\S+)/m.exec(read('status'))?.[1];
  return `state ${info.state}, syscall ${sys[0] || '?'}${ip !== undefined ? ` at ip 0x${ip.toString(16)} in ${region?.[5] || 'anon'}` : ''}, SigBlk ${blk}`;
}

// ---- 2. the runs -------------------------------------------------------------------

let survived = 0;
const failures = [];
const notes = [];
const tally = { completedFirst: 0, partialLeft: 0, dirLeft: 0, unreadableDir: 0 };
const byPhase = new Map();

for (let run = 1; run <= RUNS; run++) {
  const killAt = from + random() * (to - from);
  const p = await startProgram();
  // The program opens its protocol files (in its work dir) for a moment now and then: not ours.
  const shape = (pid) =>
    s
      .addressSpaceAndFds(pid)
      .split('\n')
      .filter((l) => !/^fd \d+ -> /.test(l) || !(l.includes(p.dir) || / -> $/.test(l)))
      .join('\n');
  const layout = shape(p.pid);
  const signals = s.signalState(p.pid);
  const image = path.join(h.makeWorkDir('sigkill-img'), 'image');
  const r = await runCkpt(['dump', '-R', '-t', String(p.pid), '-D', image], killAt);
  const phase = r.killedAt === undefined ? 'done' : phaseAt(r.killedAt);
  const when = r.killedAt === undefined ? `not killed: ckpt exited first (status ${r.status}) after ${r.ms.toFixed(0)} ms` : `killed at ${r.killedAt.toFixed(1)} ms (~${phase})`;
  if (r.killedAt === undefined) tally.completedFirst++;
  if (r.killedAt === undefined && r.status !== 0) notes.push(`run ${run}: the unkilled dump failed: ${r.stderr.trim()}`);

  const atKill = stateNow(p.pid);
  const problems = await s.problemsOf(p.pid, p.dir, { timeoutMs: 5000 });
  const changes = [];
  if (problems.length === 0) {
    const nowSignals = s.signalState(p.pid);
    if (nowSignals !== signals) changes.push(`signal state ${JSON.stringify(signals)} -> ${JSON.stringify(nowSignals)}`);
    const nowLayout = shape(p.pid);
    if (nowLayout !== layout) {
      const a = new Set(layout.split('\n'));
      const b = new Set(nowLayout.split('\n'));
      changes.push(`maps/fds: gone ${JSON.stringify([...a].filter((l) => !b.has(l)))}, new ${JSON.stringify([...b].filter((l) => !a.has(l)))}`);
    }
  } else {
    const info = h.procInfo(p.pid);
    if (!info || info.state === 'Z') {
      const exit = await Promise.race([p.exited, h.sleep(2000).then(() => undefined)]);
      if (exit) problems.push(`it exited: code ${exit.code} signal ${exit.signal}`);
    } else {
      let wchan = '';
      try {
        wchan = fs.readFileSync(`/proc/${p.pid}/wchan`, 'utf8');
      } catch {}
      problems.push(`state ${info.state}, wchan ${wchan || '?'}, syscall ${String(h.currentSyscall(p.pid))}, ${s.signalState(p.pid).replace(/\n/g, ', ')}`);
    }
    problems.push(`right after the kill: ${atKill}`);
  }

  if (fs.existsSync(`${image}.partial`)) tally.partialLeft++;
  if (fs.existsSync(image)) {
    tally.dirLeft++;
    const show = spawnSync(process.execPath, [h.CLI, 'show', '-D', image], { encoding: 'utf8' });
    if (show.status !== 0) {
      tally.unreadableDir++;
      problems.push(`DIR exists (looks complete) but ckpt show fails: ${show.stderr.trim()}`);
    }
  }

  const ok = problems.length === 0;
  const ph = byPhase.get(phase) ?? { runs: 0, survived: 0 };
  ph.runs++;
  if (ok) ph.survived++;
  byPhase.set(phase, ph);
  if (ok) survived++;
  else failures.push(`run ${run}: ${when}: ${problems.join('; ')}`);
  if (ok && changes.length) notes.push(`run ${run}: ${when}: survived, but ${changes.join('; ')}`);
  if (!opt.quiet) log(`run ${run}/${RUNS}: ${when}: ${ok ? 'survived' : `FAILED: ${problems.join('; ')}`}${ok && changes.length ? ' (changed: ' + changes.join('; ') + ')' : ''}`);

  await stopProgram(p);
  if (!opt.keep) fs.rmSync(path.dirname(image), { recursive: true, force: true });
}

await h.cleanup();

log(`by estimated step: ${[...byPhase].map(([n, v]) => `${n} ${v.survived}/${v.runs}`).join(', ')}`);
log(
  `image dirs: ${tally.completedFirst} dumps finished before the kill; DIR.partial left by ${tally.partialLeft} runs; ` +
    `DIR present after ${tally.dirLeft} runs (${tally.unreadableDir} unreadable)`,
);
if (notes.length) {
  log(`notes (${notes.length}):`);
  for (const n of notes) log(`  ${n}`);
}
if (failures.length) {
  log(`failures (${failures.length}):`);
  for (const f of failures) log(`  ${f}`);
}
log(`sigkill: ${survived} of ${RUNS} survived`);
process.exit(survived === RUNS ? 0 : 1);
