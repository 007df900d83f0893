/**
 * Helpers of the safety tests (test/e2e-safety.test.ts) and of the scripts that
 * hurt ckpt on purpose (scripts/sigkill.mjs, scripts/soak.mjs): what a process
 * that ckpt touched and let go must still be, what a failed ckpt must not leave
 * behind, and fingerprints of an image directory.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, chmodSync, readdirSync, readFileSync, readlinkSync, lstatSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { CkptResult } from './ckpt.js';
import { CLI } from './paths.js';
import { compile } from './programs.js';
import { procInfo, isRunning, tracerPid } from './proc.js';
import { track } from './processes.js';
import { readCounter, requestCheck, waitCounterAbove } from './protocol.js';
import { makeWorkDir } from './workdir.js';
import { sleep, waitFor } from './wait.js';

/**
 * test/programs/NAME.c compiled, then copied under a name of its own (at most
 * 15 bytes, so that it is the whole comm): a scan for leftovers by comm then
 * finds only what this run started, not the programs of a concurrent test run.
 */
export function uniqueBinary(name: string, cflags: string[] = [], tag = name.slice(0, 4)): string {
  const comm = `${tag}-${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 2).toString(36)}`.slice(0, 15);
  const path = join(makeWorkDir('bin'), comm);
  copyFileSync(compile(name, cflags), path);
  chmodSync(path, 0o755);
  return path;
}

/** Every file under DIR (recursively) as "relative path" → "type mode size sha256"; symlinks by their target. */
export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      const rel = relative(dir, p);
      if (st.isDirectory()) {
        out.set(rel + '/', `dir ${mode}`);
        walk(p);
      } else if (st.isSymbolicLink()) out.set(rel, `symlink -> ${readlinkSync(p)}`);
      else out.set(rel, `file ${mode} ${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(dir);
  return out;
}

/** The differences between two digests, one line each (empty: identical). */
export function diffDigests(before: Map<string, string>, after: Map<string, string>): string[] {
  const diffs: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (before.get(key) !== after.get(key)) diffs.push(`${key}: ${before.get(key) ?? '(missing)'} → ${after.get(key) ?? '(missing)'}`);
  }
  return diffs;
}

function readOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function linkOr(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

/** A ckpt seed, or a process grown from one that is not yet rebuilt: argv[0] 'ckpt-seed' or an exe in the seed's memfd. (Its comm is the number of the fd it was exec'd from.) */
export function isSeed(pid: number): boolean {
  return readOr(`/proc/${pid}/cmdline`).split('\0')[0] === 'ckpt-seed' || linkOr(`/proc/${pid}/exe`).startsWith('/memfd:ckpt-seed');
}

function allPids(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

export interface LeftoverQuery {
  /** A process whose cmdline contains one of these strings (a test's work dir) is a leftover. */
  args?: string[];
  /** A process (zombies included) whose comm is one of these is a leftover. */
  comms?: string[];
  /** Pids that are expected to be there (the program that runs on). */
  except?: number[];
}

/**
 * Processes a failed ckpt must not leave behind, described one per line: those
 * matching the query, and seeds that nobody traces any more (a seed of a
 * concurrent, healthy restore is traced by its ckpt and lives a few ms: one is
 * reported only if it is still there, untraced, `settleMs` later).
 */
export async function leftovers(query: LeftoverQuery, settleMs = 300): Promise<string[]> {
  const except = new Set([process.pid, ...(query.except ?? [])]);
  const found: string[] = [];
  const describe = (pid: number, why: string) => {
    const info = procInfo(pid);
    return `pid ${pid} (${why}): comm ${info?.comm} state ${info?.state} ppid ${info?.ppid} cmdline ${JSON.stringify(readOr(`/proc/${pid}/cmdline`))}`;
  };
  const untracedSeeds = () =>
    new Map(
      allPids()
        .filter((pid) => !except.has(pid) && isSeed(pid) && safeTracer(pid) === 0)
        .map((pid) => [pid, procInfo(pid)?.startTime]),
    );
  for (const pid of allPids()) {
    if (except.has(pid)) continue;
    const info = procInfo(pid);
    if (!info) continue;
    if (query.comms?.includes(info.comm)) {
      found.push(describe(pid, 'its comm'));
      continue;
    }
    const cmdline = readOr(`/proc/${pid}/cmdline`);
    const arg = query.args?.find((a) => cmdline.includes(a));
    if (arg !== undefined) found.push(describe(pid, `its cmdline holds ${arg}`));
  }
  const seeds = untracedSeeds();
  if (seeds.size) {
    await sleep(settleMs);
    for (const [pid, start] of untracedSeeds()) if (seeds.get(pid) === start) found.push(describe(pid, 'an untraced ckpt seed'));
  }
  return found;
}

function safeTracer(pid: number): number {
  try {
    return tracerPid(pid);
  } catch {
    return -1;
  }
}

/**
 * What a process that ckpt touched and let go must be: running, not traced,
 * its counter growing and its self-check a PASS. Returns what is wrong (empty:
 * nothing) rather than throwing, so that a script can count.
 */
export async function problemsOf(pid: number, dir: string, opts: { timeoutMs?: number; poke?: () => void } = {}): Promise<string[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const info = procInfo(pid);
  if (!info) return ['the process is gone'];
  if (!isRunning(pid)) return [`the process is a zombie (state ${info.state})`];
  const problems: string[] = [];
  const tracer = safeTracer(pid);
  if (tracer !== 0) problems.push(`still traced by pid ${tracer}`);
  if (info.state === 'T' || info.state === 't') problems.push(`stopped (state ${info.state})`);
  if (!opts.poke) {
    try {
      const now = readCounter(dir);
      await waitCounterAbove(dir, now, timeoutMs);
    } catch (e) {
      problems.push(`the counter does not grow: ${(e as Error).message}`);
    }
  }
  try {
    const report = await requestCheck(dir, { timeoutMs, poke: opts.poke });
    if (!/^PASS counter=\d+/.test(report)) problems.push(`its check: ${report}`);
  } catch (e) {
    problems.push(`no answer to a check: ${(e as Error).message}`);
  }
  if (!isRunning(pid)) problems.push('the process died during the checks');
  return problems;
}

/**
 * A zombie: `sh -c 'sleep 0 & exec sleep 1000'` leaves the background sleep's
 * corpse as a child of the exec'd `sleep 1000`, which never reaps it. The
 * parent is tracked (killAll); once it dies, the zombie is reaped by init.
 */
export async function makeZombie(): Promise<{ parent: number; zombie: number }> {
  const child = spawn('/bin/sh', ['-c', 'sleep 0 & exec sleep 1000'], { detached: true, stdio: 'ignore' });
  if (child.pid === undefined) throw new Error('cannot start sh');
  const parent = child.pid;
  track(parent, 'sleep');
  const zombie = await waitFor(
    `a zombie child of pid ${parent}`,
    () => {
      if (procInfo(parent)?.comm !== 'sleep') return undefined;
      const kids = readOr(`/proc/${parent}/task/${parent}/children`).trim().split(/\s+/).filter(Boolean).map(Number);
      return kids.find((k) => procInfo(k)?.state === 'Z');
    },
    10_000,
  );
  return { parent, zombie };
}

/** `ckpt ARGS...` run to completion with extra environment (e.g. CKPT_FAULT), the way ckpt() runs it. */
export function ckptEnv(args: string[], env: Record<string, string>, timeoutMs = 60_000): CkptResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, ...env } });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

/** The lines of /proc/PID/status that a dump must leave as they were: signal mask and dispositions, pending signals. */
export function signalState(pid: number): string {
  return readOr(`/proc/${pid}/status`)
    .split('\n')
    .filter((l) => /^(SigBlk|SigIgn|SigCgt|SigPnd|ShdPnd|NoNewPrivs|Seccomp):/.test(l))
    .join('\n');
}

/**
 * The CPUs each thread of process `pid` may run on ("TID: LIST" per line): a
 * dump that kills the process pins its thread and ckpt's own to one CPU for
 * the remote calls (src/ptrace/cpu-pin.ts), and must put both masks back.
 */
export function cpuMasks(pid: number): string {
  const tids = readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
  return tids
    .map((tid) => `${tid}: ${/^Cpus_allowed_list:\s*(.*)$/m.exec(readOr(`/proc/${pid}/task/${tid}/status`))?.[1] ?? 'gone'}`)
    .filter((l) => !l.endsWith('gone'))
    .join('\n');
}

/** /proc/PID/maps and the fd table: what a failed dump (a leftover scratch mapping, a stolen fd) must not change. */
export function addressSpaceAndFds(pid: number): string {
  // The test programs open their protocol files (W/.NAME.tmp, /proc/self/...) for an
  // instant: such an fd, or one gone before its link could be read, is not state.
  const transient = (link: string) => link === '' || link.endsWith('.tmp') || link.startsWith('/proc/');
  const fds = readdirSync(`/proc/${pid}/fd`)
    .map(Number)
    .sort((a, b) => a - b)
    .map((fd) => [fd, linkOr(`/proc/${pid}/fd/${fd}`)] as const)
    .filter(([, link]) => !transient(link))
    .map(([fd, link]) => `fd ${fd} -> ${link}`);
  return [readOr(`/proc/${pid}/maps`).trim(), ...fds].join('\n');
}
