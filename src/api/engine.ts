/**
 * The main side of the library: each operation runs in its own engine worker
 * (src/api/engine-worker.ts), so the caller's event loop is never blocked and
 * several dumps and restores can run at once, each worker the tracer of its
 * own processes. Errors come back as CkptError with the worker's code,
 * message and data, and the caller's stack.
 */
import { Worker } from 'node:worker_threads';
import { CkptError } from '../errors.js';
import type { EngineRequest, WireError, WorkerMessage } from './wire.js';
import type { ProgressListener } from './types.js';
import { newTracedTable } from './traced.js';

/** The caller's frames, taken synchronously at the API call (before any await). */
export function callerFrames(above: Function): string {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, above);
  return (holder.stack ?? '').split('\n').slice(1).join('\n');
}

export function errorFromWire(w: WireError, frames: string): CkptError {
  const e = new CkptError(w.code, w.message, w.data);
  e.stack = `CkptError: ${w.message}${frames ? '\n' + frames : ''}`;
  if (w.stack) {
    const inner = new Error(w.message);
    inner.stack = w.stack;
    Object.defineProperty(e, 'cause', { value: inner, enumerable: false, writable: true, configurable: true });
  }
  return e;
}

function safely(fn: (() => void) | undefined): void {
  try {
    fn?.();
  } catch {
    // a listener's failure must not break the operation
  }
}

export interface EngineHooks {
  log?: (msg: string) => void;
  onProgress?: ProgressListener;
  /** From callerFrames(), for the stack of any error. */
  frames: string;
}

/** The operation's hold on its worker: a no-op once the worker went back to the pool. */
export interface EngineWorker {
  ref(): void;
  unref(): void;
  terminate(): void;
}

export interface EngineRun<T> {
  worker: EngineWorker;
  /** The operation's result. */
  result: Promise<T>;
  /** restore only: the raw wait status of the restored process. */
  exit: Promise<number>;
}

const WORKER_URL = new URL('./engine-worker.js', import.meta.url);

/**
 * Engine workers whose operation is over, kept for the next call. A new
 * worker per call loads koffi again, and each load keeps ~40 KiB of native
 * memory that a worker's exit does not give back (measured on Node 20 and
 * koffi 2: 800 workers that only load libc grew RSS by 32 MiB, empty ones by
 * 2 MiB); it also costs the worker's start-up. An idle worker is unref'd: it
 * never keeps the process alive. A worker is reused only once its operation is
 * entirely over (a restore: once the restored process has exited and been
 * reaped), so each operation still has a thread of its own for all its ptrace
 * calls.
 */
const idle: Worker[] = [];
/** The pids engine workers of this process are dumping (traced.ts). */
const traced = newTracedTable();
const MAX_IDLE = 2;

function takeWorker(request: EngineRequest): Worker {
  const req = request.op === 'dump' || request.op === 'restore' ? { ...request, traced } : request;
  for (;;) {
    const w = idle.pop();
    if (!w) return new Worker(WORKER_URL, { workerData: req });
    w.ref();
    try {
      w.postMessage(req);
      return w;
    } catch {
      void w.terminate();
      // a request that cannot be cloned throws again below, with a new worker
      return new Worker(WORKER_URL, { workerData: req });
    }
  }
}

function releaseWorker(w: Worker): void {
  w.removeAllListeners('message');
  w.removeAllListeners('error');
  w.removeAllListeners('exit');
  if (idle.length >= MAX_IDLE) { void w.terminate(); return; }
  w.unref();
  w.on('exit', () => { const i = idle.indexOf(w); if (i >= 0) idle.splice(i, 1); });
  w.on('error', () => {});
  idle.push(w);
}

export function startEngine<T>(req: EngineRequest, hooks: EngineHooks): EngineRun<T> {
  let worker: Worker;
  try {
    worker = takeWorker(req);
  } catch (e) {
    // workerData that cannot be cloned (a function or a symbol where a pid or path goes)
    const message = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw errorFromWire({ code: 'USAGE', message: `bad options for ${req.op}: ${message}`, data: {} }, hooks.frames);
  }
  const internal = (message: string) => errorFromWire({ code: 'INTERNAL', message: `internal error: ${message}`, data: {} }, hooks.frames);
  let answered = false;
  let exited = false;
  let resolveResult!: (v: T) => void;
  let rejectResult!: (e: unknown) => void;
  let resolveExit!: (s: number) => void;
  let rejectExit!: (e: unknown) => void;
  const result = new Promise<T>((res, rej) => ((resolveResult = res), (rejectResult = rej)));
  const exit = new Promise<number>((res, rej) => ((resolveExit = res), (rejectExit = rej)));
  exit.catch(() => {}); // only the caller's problem if the caller looks at it
  const progress = hooks.onProgress;
  // The operation is over once it answered and, for a successful restore, its process was reaped.
  let restoring = false;
  let released = false;
  const maybeRelease = () => {
    if (released || !answered || (restoring && !exited)) return;
    released = true;
    releaseWorker(worker);
  };
  const hold: EngineWorker = {
    ref: () => { if (!released) worker.ref(); },
    unref: () => { if (!released) worker.unref(); },
    terminate: () => { if (!released) void worker.terminate(); },
  };

  worker.on('message', (m: WorkerMessage) => {
    switch (m.t) {
      case 'start':
        safely(progress && (() => progress({ phase: 'start', done: 0, total: 1 })));
        break;
      case 'log':
        safely(hooks.log && (() => hooks.log!(m.message)));
        safely(progress && (() => progress({ phase: 'log', done: 0, total: 0, message: m.message })));
        break;
      case 'progress':
        safely(progress && (() => progress({ phase: m.phase, done: m.done, total: m.total })));
        break;
      case 'result':
        answered = true;
        restoring = req.op === 'restore';
        safely(progress && (() => progress({ phase: 'end', done: 1, total: 1 })));
        resolveResult(m.value as T);
        maybeRelease();
        break;
      case 'error':
        answered = true;
        rejectResult(errorFromWire(m.error, hooks.frames));
        maybeRelease();
        break;
      case 'exit':
        exited = true;
        resolveExit(m.status);
        maybeRelease();
        break;
      case 'exit-error':
        exited = true;
        rejectExit(errorFromWire(m.error, hooks.frames));
        maybeRelease();
        break;
    }
  });
  worker.on('error', (e) => {
    const err = internal(`engine worker: ${e.message.split('\n')[0]}`);
    if (!answered) {
      answered = true;
      rejectResult(err);
    } else if (!exited) {
      exited = true;
      rejectExit(err);
    }
  });
  worker.on('exit', (code) => {
    if (!answered) {
      answered = true;
      rejectResult(internal(`engine worker exited (code ${code}) before it answered`));
    }
    if (!exited) {
      exited = true;
      rejectExit(internal(`engine worker exited (code ${code}) before the restored process did`));
    }
  });
  return { worker: hold, result, exit };
}
