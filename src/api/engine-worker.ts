/**
 * The engine worker: runs the library's operations (src/api/engine.ts starts
 * it, and reuses it from a pool for later operations).
 *
 * ptrace is per thread: the thread that seizes a task must make every later
 * ptrace() and wait4() on it. So a dump or restore runs start to finish here,
 * synchronously, and this thread is the tracer for all of it. A restored
 * process is a child of this thread (the seed was spawned here and cloned it
 * with CLONE_PARENT), its parent-death signal (re-armed without `detach`)
 * fires when this thread ends, and someone must reap it. So the worker owes
 * its restored processes a reap: it polls wait4(pid, WNOHANG) for each until
 * it exits and reports the status. Polling, not a blocking wait4: a blocked
 * thread could not be terminated, Node joins its workers when the process
 * exits, and the worker stays free for the next operation meanwhile (the
 * polls wait while one runs). engine.ts never ends a worker that still owes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { dumpSync } from '../dump/dump.js';
import { restoreSync } from '../restore/restore.js';
import { showImage } from '../show.js';
import { checkKernel } from '../check.js';
import { wait4, W } from '../sys/syscalls.js';
import { WNOHANG } from '../sys/constants.js';
import { E } from '../sys/errno.js';
import { watchAbort } from '../fault.js';
import { fullGc } from '../full-gc.js';
import { unlessTraced, whileTracing } from './traced.js';
import { shareCpuClaims } from '../ptrace/cpu-pin.js';
import { toWire, type EngineRequest, type WorkerMessage } from './wire.js';
import { sysError } from '../sys/libc.js';

const WNOTHREAD = 0x20000000;
const port = parentPort;
if (!port) throw new Error('engine-worker.js runs only as a worker thread');
const post = (m: WorkerMessage) => port.postMessage(m);

/** The restored processes this thread still has to reap: pid -> the id of the restore. */
const owed = new Map<number, number>();
/** The table of pids being dumped by this process's engine workers (traced.ts): the same for every request. */
let tracedTable: SharedArrayBuffer | undefined;
let pollTimer: ReturnType<typeof setTimeout> | undefined;
let pollDelay = 1;

/**
 * One poll of every owed pid. __WNOTHREAD: only this thread's own children,
 * not those of other threads. Not while a dump worker of this process traces
 * the pid (traced.ts).
 */
function reapOwed(): void {
  for (const [pid, id] of owed) {
    let r;
    try {
      r = unlessTraced(tracedTable, pid, () => wait4(pid, WNOHANG | WNOTHREAD));
    } catch (e) {
      // ECHILD: someone else reaped it (a dump of this process killed it, or a child_process handle with the same pid).
      owed.delete(pid);
      post({ t: 'exit-error', id, error: toWire(e) });
      continue;
    }
    if (r && r.pid === pid && (W.ifExited(r.status) || W.ifSignaled(r.status))) {
      owed.delete(pid);
      post({ t: 'exit', id, status: r.status });
    }
  }
}

/** Polls the owed pids from 1 ms, doubling up to 100 ms, so the thread stays responsive. */
function schedulePoll(): void {
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = undefined;
  if (owed.size === 0) return;
  pollTimer = setTimeout(() => {
    pollTimer = undefined;
    reapOwed();
    pollDelay = Math.min(pollDelay * 2, 100);
    schedulePoll();
  }, pollDelay);
}

/** Owe a reap to the process a restore (request `id`) just made. */
function owe(pid: number, id: number): void {
  // The pid was free for the restore, so an older process of ours with it was reaped elsewhere
  // (a poll now would find the new one).
  const stale = owed.get(pid);
  if (stale !== undefined) {
    owed.delete(pid);
    post({ t: 'exit-error', id: stale, error: toWire(sysError(E.ECHILD, 'wait4', { pid })) });
  }
  owed.set(pid, id);
  pollDelay = 1;
  reapOwed();
  schedulePoll();
}

function run(req: EngineRequest): void {
  post({ t: 'start' });
  // Set by the caller's thread to stop the engine (the CLI's SIGINT/SIGTERM/SIGHUP): src/fault.ts.
  if (req.op === 'dump' || req.op === 'restore') watchAbort(req.abort);
  switch (req.op) {
    case 'dump': {
      const log = req.log ? (message: string) => post({ t: 'log', message }) : undefined;
      const onProgress = req.log ? (p: { phase: string; done: number; total: number }) => post({ t: 'progress', ...p }) : undefined;
      shareCpuClaims(req.cpus);
      post({ t: 'result', value: whileTracing(req.traced, req.opts.pid, () => dumpSync({ ...req.opts, log, onProgress })) });
      return;
    }
    case 'restore': {
      const log = req.log ? (message: string) => post({ t: 'log', message }) : undefined;
      const onProgress = req.log ? (p: { phase: string; done: number; total: number }) => post({ t: 'progress', ...p }) : undefined;
      const r = restoreSync({ ...req.opts, log, onProgress });
      post({ t: 'result', value: r });
      owe(r.pid, req.id);
      return;
    }
    case 'show':
      post({ t: 'result', value: showImage(req.dir) });
      return;
    case 'check':
      post({ t: 'result', value: checkKernel() });
      return;
  }
}

/**
 * A worker waiting in the pool would never collect, and its heap would keep
 * the last operation's garbage (a dump's 32 MiB of page slots). But a full
 * collection costs ~15 ms, and a call that comes right after waits for it:
 * after an operation that left big buffers it is made at once, after the
 * others only once the worker has been idle for IDLE_GC_MS.
 */
const COLLECT_ABOVE = 16 * 1024 * 1024;
const IDLE_GC_MS = 25;
let idleGc: NodeJS.Timeout | undefined;

function handle(req: EngineRequest): void {
  clearTimeout(idleGc);
  if (req.op === 'dump' || req.op === 'restore') tracedTable = req.traced;
  // Reap what exited while this worker waited in the pool: a zombie holds its pid, which this restore may need.
  reapOwed();
  try {
    run(req);
  } catch (e) {
    post({ t: 'error', error: toWire(e) });
  }
  const { arrayBuffers, heapUsed } = process.memoryUsage();
  if (arrayBuffers > COLLECT_ABOVE || heapUsed > 4 * COLLECT_ABOVE) fullGc();
  else idleGc = setTimeout(fullGc, IDLE_GC_MS);
  schedulePoll();
}

// The first request comes as workerData; a reused worker gets the next ones as messages (engine.ts).
handle(workerData as EngineRequest);
port.on('message', handle);
