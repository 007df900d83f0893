/**
 * The library API: dump(), restore(), waitRestored(), readImage(), check().
 * Promise-based; every failure is a CkptError with a stable `code`.
 *
 * Each call runs the synchronous engine in a worker thread of its own
 * (src/api/engine-worker.ts), which makes every ptrace call of that operation:
 * the caller's event loop is never blocked, and several operations may run at
 * once. See docs/api.md.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { CkptError } from './errors.js';
import { callerFrames, startEngine } from './api/engine.js';
import type { DumpOptions, DumpResult, ExitStatus, Progress, ProgressListener, RestoreOptions, RestoreResult } from './api/types.js';
import type { RestoreResult as EngineRestoreResult } from './restore/restore.js';
import type { ImageJson } from './show.js';
import type { CheckResult, Probe } from './check.js';

export { CkptError, isCkptError, type ErrorCode, type ErrorData } from './errors.js';
export type { DumpOptions, DumpResult, RestoreOptions, RestoreResult, ExitStatus, Progress, ProgressListener, ImageJson, CheckResult, Probe };

/**
 * Freezes process `pid`, writes its image into `dir`, then kills it (or, with
 * `leaveRunning`, lets it run on). Resolves with `{ pids, pages, bytes, ms, timings }`.
 */
export async function dump(opts: DumpOptions): Promise<DumpResult> {
  const frames = callerFrames(dump);
  refuseOwnSpawnedChild(opts.pid);
  const { pid, dir, leaveRunning, snapshot, shellJob, force, compress, tcpEstablished, extUnixSk, log, onProgress } = opts;
  const run = startEngine<DumpResult>(
    { op: 'dump', opts: { pid, dir, leaveRunning, snapshot, shellJob, force, compress, tcpEstablished, extUnixSk }, log: !!(log || onProgress) },
    { log, onProgress, frames },
  );
  return run.result;
}

/**
 * A child this process started (child_process) cannot be traced from here:
 * libuv's SIGCHLD handler waitpid()s its own children from the main thread
 * and would take the ptrace stops meant for the engine's thread. Processes
 * this library restored are children too, but libuv does not know them.
 */
function refuseOwnSpawnedChild(pid: unknown): void {
  if (typeof pid !== 'number' || restored.has(pid)) return;
  let ppid = 0;
  try { ppid = Number(/\) \S+ (\d+)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? 0); } catch { return; }
  if (ppid === process.pid) {
    throw new CkptError('BAD_PID', `pid ${pid} is a child of this process: Node would take its ptrace stops; start it detached from a shell (sh -c 'cmd &') or dump it from another process (the ckpt CLI)`, { pid });
  }
}

/** The restores of this process, by pid, for waitRestored(). */
const restored = new Map<number, Promise<ExitStatus>>();

function exitStatus(raw: number): ExitStatus {
  const sig = raw & 0x7f;
  if (sig === 0) return { code: (raw >> 8) & 0xff, signal: null, status: (raw >> 8) & 0xff };
  const name = (Object.keys(constants.signals) as NodeJS.Signals[]).find((n) => constants.signals[n] === sig) ?? null;
  return { code: null, signal: name, status: 128 + sig };
}

/**
 * Recreates the process saved in `dir` under its pid; resolves with
 * `{ pid, pids, ms, timings }` as soon as it runs, plus `exited`.
 */
export async function restore(opts: RestoreOptions): Promise<RestoreResult> {
  const frames = callerFrames(restore);
  const { dir, detach, pidfile, shellJob, log, onProgress } = opts;
  const run = startEngine<EngineRestoreResult>(
    { op: 'restore', opts: { dir, detach, pidfile, shellJob }, log: !!(log || onProgress) },
    { log, onProgress, frames },
  );
  const r = await run.result;
  // The worker waits on in the background for the process to exit; it must not keep the caller alive by itself.
  run.worker.unref();
  const exited = run.exit.then(exitStatus);
  exited.catch(() => {});
  restored.set(r.pid, exited);
  Object.defineProperty(r, 'exited', {
    enumerable: false,
    get() {
      run.worker.ref();
      return exited;
    },
  });
  exited.then(
    () => run.worker.unref(),
    () => run.worker.unref(),
  );
  return r as RestoreResult;
}

/**
 * Waits until a process restored by this process exits; resolves with its
 * shell-style status (its exit code, or 128+N if signal N killed it), as
 * `ckpt restore` exits. Keeps the event loop alive until then.
 */
export async function waitRestored(pid: number): Promise<number> {
  const frames = callerFrames(waitRestored);
  const exited = restored.get(pid);
  if (!exited) {
    const e = new CkptError('ESRCH_PID', `pid ${pid} was not restored by this process`, { pid });
    e.stack = `CkptError: ${e.message}\n${frames}`;
    throw e;
  }
  // Keep the loop alive while someone waits: a ref'd timer, cleared once it settles.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    return (await exited).status;
  } finally {
    clearInterval(keepAlive);
  }
}

/** The image in `dir` as plain JSON: exactly what `ckpt show --json` prints. */
export async function readImage(dir: string): Promise<ImageJson> {
  const frames = callerFrames(readImage);
  return startEngine<ImageJson>({ op: 'show', dir }, { frames }).result;
}

/** Probes the kernel features ckpt relies on (what `ckpt check --json` prints). */
export async function check(): Promise<CheckResult> {
  const frames = callerFrames(check);
  return startEngine<CheckResult>({ op: 'check' }, { frames }).result;
}
