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

export interface EngineRun<T> {
  worker: Worker;
  /** The operation's result. */
  result: Promise<T>;
  /** restore only: the raw wait status of the restored process. */
  exit: Promise<number>;
}

const WORKER_URL = new URL('./engine-worker.js', import.meta.url);

export function startEngine<T>(req: EngineRequest, hooks: EngineHooks): EngineRun<T> {
  let worker: Worker;
  try {
    worker = new Worker(WORKER_URL, { workerData: req });
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
        safely(progress && (() => progress({ phase: 'end', done: 1, total: 1 })));
        resolveResult(m.value as T);
        break;
      case 'error':
        answered = true;
        rejectResult(errorFromWire(m.error, hooks.frames));
        break;
      case 'exit':
        exited = true;
        resolveExit(m.status);
        break;
      case 'exit-error':
        exited = true;
        rejectExit(errorFromWire(m.error, hooks.frames));
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
  return { worker, result, exit };
}
