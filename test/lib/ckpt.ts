/** Running the ckpt CLI (dist/bin/ckpt.js, the executable) as its own process, the way a user does. */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CLI } from './paths.js';
import { track, trackExact, waitGone } from './processes.js';

export interface CkptResult {
  /** null when ckpt was killed by a signal (or timed out). */
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const TIMEOUT_MS = 120_000;

/** Runs `ckpt ARGS...` to completion. */
export function ckpt(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): CkptResult {
  const r = spawnSync(CLI, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? TIMEOUT_MS, env: opts.env });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

export interface BackgroundCkpt {
  pid: number;
  child: ChildProcess;
  exited: Promise<CkptResult>;
}

/** Starts `ckpt ARGS...` without waiting (e.g. `restore` without -d, which stays the restored process's parent). */
export function ckptBackground(args: string[], env: Record<string, string> = {}): BackgroundCkpt {
  const child = spawn(CLI, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  if (child.pid === undefined) throw new Error('cannot start ckpt');
  trackExact(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<CkptResult>((resolve) => {
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
    child.on('error', (e) => resolve({ status: null, signal: null, stdout, stderr: stderr + String(e) }));
  });
  return { pid: child.pid, child, exited };
}

/** Awaits `work`, but fails at once (with ckpt's stderr) if the background ckpt exits first. */
export async function whileRunning<T>(bg: BackgroundCkpt, work: Promise<T>): Promise<T> {
  const early = bg.exited.then((r) => {
    throw new Error(`ckpt exited early (status ${r.status}, signal ${r.signal}): ${r.stderr.trim()}`);
  });
  early.catch(() => {}); // only an error if it wins the race
  return Promise.race([work, early]);
}

function describe(r: CkptResult): string {
  return `status ${r.status}, signal ${r.signal}\nstderr: ${r.stderr}\nstdout: ${r.stdout}`;
}

export function assertSuccess(r: CkptResult, what: string): void {
  assert.equal(r.status, 0, `${what} failed: ${describe(r)}`);
}

/**
 * The error contract: non-zero exit, exactly one line on stderr, no stack
 * trace; and the line contains `expected` when given.
 */
export function assertCleanError(r: CkptResult, expected?: string | RegExp): void {
  assert.notEqual(r.status, 0, `expected a failure: ${describe(r)}`);
  assert.equal(r.signal, null, `ckpt died of a signal: ${describe(r)}`);
  const lines = r.stderr.replace(/\n$/, '').split('\n');
  assert.equal(lines.length, 1, `expected exactly one line on stderr, got ${lines.length}:\n${r.stderr}`);
  assert.ok(lines[0].trim().length > 0, 'the error line is empty');
  assert.doesNotMatch(r.stderr, /^\s*at /m, `stack frames on stderr:\n${r.stderr}`);
  if (typeof expected === 'string') assert.ok(lines[0].includes(expected), `expected '${expected}' in: ${lines[0]}`);
  else if (expected) assert.match(lines[0], expected);
}

// ---- the usual steps, with their assertions ---------------------------------------

/**
 * `ckpt dump -t PID -D DIR FLAGS...` must succeed; unless -R/--leave-running, waits until PID is gone.
 *
 * A -R dump that caught a test program inside proto_write (holding W/.NAME.tmp, which it
 * renames a moment later) is an image that cannot restore once the program has run on:
 * the file is gone, and ckpt rightly refuses. Such a dump is made again, with --force.
 */
export async function dumpOk(pid: number, dir: string, ...flags: string[]): Promise<CkptResult> {
  const leave = flags.includes('-R') || flags.includes('--leave-running');
  let r = ckpt(['dump', '-t', String(pid), '-D', dir, ...flags]);
  assertSuccess(r, `ckpt dump -t ${pid}`);
  for (let again = 0; leave && again < 5 && holdsProtocolTemp(dir); again++) {
    r = ckpt(['dump', '-t', String(pid), '-D', dir, ...flags.filter((f) => f !== '--force'), '--force']);
    assertSuccess(r, `ckpt dump -t ${pid} (again)`);
  }
  if (!leave) await waitGone(pid);
  return r;
}

/**
 * `ckpt ARGS` (a dump -R into `dir`, under `env` added to this process's) must
 * succeed; made again with --force while its image caught a test program
 * inside proto_write (dumpOk). Returns the last run's result.
 */
export function dumpRunningOk(args: string[], dir: string, env: Record<string, string> = {}): CkptResult {
  const run = (more: string[]) => ckpt([...args, ...more], { env: { ...process.env, ...env } });
  let r = run([]);
  assertSuccess(r, `ckpt ${args.join(' ')}`);
  for (let again = 0; again < 5 && holdsProtocolTemp(dir); again++) {
    r = run(args.includes('--force') ? [] : ['--force']);
    assertSuccess(r, `ckpt ${args.join(' ')} (again)`);
  }
  return r;
}

/** Whether a process of the image at DIR holds a test protocol's temporary file (W/.NAME.tmp): see dumpOk. */
function holdsProtocolTemp(dir: string): boolean {
  const r = ckpt(['show', '-D', dir, '--files', '--json']);
  assertSuccess(r, `ckpt show -D ${dir} --files`);
  const { files } = JSON.parse(r.stdout) as { files: { fds: { path?: string }[] }[] };
  return files.some((p) => p.fds.some((f) => /\/\.[a-z-]+\.tmp$/.test(f.path ?? '')));
}

/** `ckpt restore -d -D DIR --pidfile FILE` must succeed; returns the pid from the pidfile, now tracked. */
export function restoreDetachedOk(dir: string, pidfile: string): number {
  const r = ckpt(['restore', '-d', '-D', dir, '--pidfile', pidfile]);
  assertSuccess(r, `ckpt restore -d -D ${dir}`);
  const pid = Number.parseInt(readFileSync(pidfile, 'utf8'), 10);
  assert.ok(pid > 0, `bad pidfile ${pidfile}`);
  track(pid);
  return pid;
}

/**
 * Starts `ckpt restore -D DIR` (not detached). The restored process needs no
 * tracking of its own: it has the pid and comm of the program that was
 * dumped, which startProgram() tracked.
 */
export function restoreInBackground(dir: string): BackgroundCkpt {
  return ckptBackground(['restore', '-D', dir]);
}
