/**
 * The main side of the library: each operation runs in its own engine worker
 * (src/api/engine-worker.ts), so the caller's event loop is never blocked and
 * several dumps and restores can run at once, each worker the tracer of its
 * own processes. Errors come back as CkptError with the worker's code,
 * message and data, and the caller's stack.
 */
import { Worker } from 'node:worker_threads';
import { CkptError } from '../errors.js';
import type { EngineOp, EngineRequest, WireError, WorkerMessage } from './wire.js';
import type { ProgressListener } from './types.js';
import { newTracedTable } from './traced.js';
import { CPU_CLAIMS_BYTES } from '../ptrace/cpu-pin.js';

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

/** The operation's hold on its worker. */
export interface EngineWorker {
  /** restore: keep the caller's process alive until the restored process is reaped. */
  ref(): void;
  unref(): void;
  /** End the worker now (the CLI after a detached restore). */
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

/** What a worker reports about the operation it runs now. */
interface Running {
  onMessage(m: WorkerMessage): void;
  /** The worker failed (its error's first line) or exited (its exit code). */
  onEnd(end: WorkerEnd): void;
}

type WorkerEnd = { failure: string } | { code: number };

/** A restore whose process the worker still has to reap. */
interface Owed {
  settle(m: Extract<WorkerMessage, { t: 'exit' | 'exit-error' }>): void;
  onEnd(end: WorkerEnd): void;
  /** The caller waits for the exit: the worker keeps the process alive. */
  held: boolean;
}

interface Slot {
  worker: Worker;
  running?: Running;
  /** By the restore's request id. */
  owed: Map<number, Owed>;
  /** How many of `owed` are held. */
  held: number;
  ended: boolean;
}

/**
 * Engine workers between operations, kept for the next call. A new worker per
 * call loads koffi again, and each load keeps ~40 KiB of native memory that a
 * worker's exit does not give back (measured on Node 20 and koffi 2: 800
 * workers that only load libc grew RSS by 32 MiB, empty ones by 2 MiB); it
 * also costs the worker's start-up, and each warm worker holds an isolate.
 * Each operation still has the thread to itself for all its ptrace calls: a
 * worker runs one operation at a time.
 *
 * A restore leaves the worker owing a reap to the restored process (its
 * child; engine-worker.ts): the worker comes back here as soon as the restore
 * answers, polls for that exit between later operations, and is never ended
 * while it owes one (without `detach`, the process's parent-death signal is
 * tied to its thread). So a live restored process holds no worker of its own,
 * and the next operation may run on the worker that restored it. At most
 * MAX_IDLE workers that owe nothing are kept. A worker is ref'd while it runs an operation or a
 * caller waits for an exit it owes, and unref'd otherwise: it never keeps the
 * process alive by itself.
 */
const idle: Slot[] = [];
/** The pids engine workers of this process are dumping (traced.ts). */
const traced = newTracedTable();
/** How many engine threads are pinned to each CPU (ptrace/cpu-pin.ts). */
const cpus = new SharedArrayBuffer(CPU_CLAIMS_BYTES);
const MAX_IDLE = 2;
let lastId = 0;

function updateRef(slot: Slot): void {
  if (slot.ended) return;
  if (slot.running || slot.held > 0) slot.worker.ref();
  else slot.worker.unref();
}

/** End the least recently used workers beyond MAX_IDLE that owe nothing. */
function trim(): void {
  const spare = idle.filter((s) => s.owed.size === 0);
  for (const s of spare.slice(0, Math.max(0, spare.length - MAX_IDLE))) {
    idle.splice(idle.indexOf(s), 1);
    void s.worker.terminate();
  }
}

/**
 * Node would track the fds a worker opens with `fs` (and close them when it
 * ends), and warn, on the caller's stderr, each time the worker closes with
 * `fs` an fd it made with a syscall (a restore's pipes, memfds, eventfds):
 * "File descriptor N closed but not opened in unmanaged mode". The engine
 * closes every fd it opens itself (dump.ts, restore.ts).
 */
const WORKER_OPTIONS = { trackUnmanagedFds: false };

function newSlot(req: EngineRequest): Slot {
  const slot: Slot = { worker: new Worker(WORKER_URL, { ...WORKER_OPTIONS, workerData: req }), owed: new Map(), held: 0, ended: false };
  let failure: string | undefined;
  slot.worker.on('message', (m: WorkerMessage) => {
    if (m.t === 'exit' || m.t === 'exit-error') {
      const owed = slot.owed.get(m.id);
      if (!owed) return;
      slot.owed.delete(m.id);
      if (owed.held) slot.held--;
      owed.settle(m);
      if (!slot.running) trim();
      updateRef(slot);
      return;
    }
    slot.running?.onMessage(m);
  });
  slot.worker.on('error', (e) => {
    failure = e.message.split('\n')[0];
    slot.running?.onEnd({ failure });
    slot.running = undefined;
  });
  slot.worker.on('exit', (code) => {
    slot.ended = true;
    const i = idle.indexOf(slot);
    if (i >= 0) idle.splice(i, 1);
    const end = failure !== undefined ? { failure } : { code };
    slot.running?.onEnd(end);
    slot.running = undefined;
    for (const owed of slot.owed.values()) owed.onEnd(end);
    slot.owed.clear();
  });
  return slot;
}

/** A pooled worker (or a new one) that has been sent `op`. */
function takeWorker(op: EngineOp): { slot: Slot; id: number } {
  const id = ++lastId;
  const req: EngineRequest = { ...(op.op === 'dump' ? { ...op, traced, cpus } : op.op === 'restore' ? { ...op, traced } : op), id };
  const slot = idle.pop();
  if (!slot) return { slot: newSlot(req), id };
  try {
    slot.worker.postMessage(req);
  } catch (e) {
    // a request that cannot be cloned: the worker never saw it
    idle.push(slot);
    throw e;
  }
  return { slot, id };
}

function release(slot: Slot): void {
  slot.running = undefined;
  if (slot.ended) return;
  idle.push(slot);
  trim();
  updateRef(slot);
}

export function startEngine<T>(op: EngineOp, hooks: EngineHooks): EngineRun<T> {
  let taken: { slot: Slot; id: number };
  try {
    taken = takeWorker(op);
  } catch (e) {
    // a request that cannot be cloned (a function or a symbol where a pid or path goes)
    const message = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw errorFromWire({ code: 'USAGE', message: `bad options for ${op.op}: ${message}`, data: {} }, hooks.frames);
  }
  const { slot, id } = taken;
  const internal = (message: string) => errorFromWire({ code: 'INTERNAL', message: `internal error: ${message}`, data: {} }, hooks.frames);
  const ended = (end: WorkerEnd, before: string) =>
    internal('failure' in end ? `engine worker: ${end.failure}` : `engine worker exited (code ${end.code}) before ${before}`);
  let resolveResult!: (v: T) => void;
  let rejectResult!: (e: unknown) => void;
  let resolveExit!: (s: number) => void;
  let rejectExit!: (e: unknown) => void;
  const result = new Promise<T>((res, rej) => ((resolveResult = res), (rejectResult = rej)));
  const exit = new Promise<number>((res, rej) => ((resolveExit = res), (rejectExit = rej)));
  exit.catch(() => {}); // only the caller's problem if the caller looks at it
  const progress = hooks.onProgress;

  const owed: Owed = {
    held: false,
    settle: (m) => (m.t === 'exit' ? resolveExit(m.status) : rejectExit(errorFromWire(m.error, hooks.frames))),
    onEnd: (end) => rejectExit(ended(end, 'the restored process did')),
  };
  slot.running = {
    onMessage: (m) => {
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
          // The exit of a restore comes later, by id, whatever the worker does meanwhile. Held
          // until the caller lets go (hold.unref(): the library does, the CLI waits).
          if (op.op === 'restore') {
            owed.held = true;
            slot.held++;
            slot.owed.set(id, owed);
          }
          release(slot);
          safely(progress && (() => progress({ phase: 'end', done: 1, total: 1 })));
          resolveResult(m.value as T);
          break;
        case 'error':
          release(slot);
          rejectResult(errorFromWire(m.error, hooks.frames));
          break;
      }
    },
    onEnd: (end) => rejectResult(ended(end, 'it answered')),
  };
  updateRef(slot);

  const hold: EngineWorker = {
    ref: () => {
      if (owed.held || slot.owed.get(id) !== owed) return;
      owed.held = true;
      slot.held++;
      updateRef(slot);
    },
    unref: () => {
      if (!owed.held || slot.owed.get(id) !== owed) return;
      owed.held = false;
      slot.held--;
      updateRef(slot);
    },
    terminate: () => { if (!slot.ended) void slot.worker.terminate(); },
  };
  return { worker: hold, result, exit };
}
