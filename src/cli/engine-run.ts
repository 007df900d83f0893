/**
 * `dump` and `restore` from the command line run the engine in a worker thread
 * (src/api/engine.ts), so that this thread's event loop stays free to hear
 * SIGINT, SIGTERM and SIGHUP. Run synchronously here, the engine would never
 * let Node's signal handlers run, and a signal would kill ckpt as SIGKILL does.
 * (Blocking the signals in this thread and reading a signalfd at each step does
 * not work: Node's other threads do not block them, and a signal sent to the
 * process goes to any thread that does not block it.)
 *
 * A signal sets a word in a SharedArrayBuffer; the engine looks at it at each
 * step and between page batches (src/fault.ts checkAbort) and fails there with
 * INTERRUPTED, and its failure path puts everything back. A signal after the
 * engine's last step changes nothing: the operation is complete.
 */
import { startEngine } from '../api/engine.js';
import type { EngineOp } from '../api/wire.js';
import type { EngineProgress } from '../dump/dump.js';
import { CkptError, isCkptError } from '../errors.js';
import { W } from '../sys/syscalls.js';

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

export interface EngineListeners {
  log?: (msg: string) => void;
  onProgress?: (p: EngineProgress) => void;
}

export interface CliRun<T> {
  value: T;
  /** restore: the restored process's exit status (128+N if signal N killed it). */
  exit: Promise<number>;
}

type Request = Extract<EngineOp, { op: 'dump' | 'restore' }>;

/** Run one dump or restore in an engine worker; `abandoned` completes the message of an INTERRUPTED error. */
export async function runEngine<T>(req: Omit<Request, 'log' | 'abort'>, listeners: EngineListeners, abandoned: string): Promise<CliRun<T>> {
  const abort = new SharedArrayBuffer(4);
  const word = new Int32Array(abort);
  const handlers = Object.entries(SIGNALS).map(([name, signo]) => {
    const h = () => { if (Atomics.load(word, 0) === 0) Atomics.store(word, 0, signo); };
    process.on(name as NodeJS.Signals, h);
    return () => process.off(name as NodeJS.Signals, h);
  });
  const engineSteps = (p: { phase: string; done: number; total: number }) => {
    if (p.phase !== 'start' && p.phase !== 'log' && p.phase !== 'end') listeners.onProgress?.(p);
  };
  try {
    const run = startEngine<T>({ ...req, log: !!(listeners.log || listeners.onProgress), abort } as Request, {
      log: listeners.log, onProgress: engineSteps, frames: '',
    });
    const value = await run.result;
    // A detached restored process needs no one to wait for it: let the worker go.
    if (req.op === 'restore' && (req.opts as { detach?: boolean }).detach) run.worker.terminate();
    const exit = run.exit.then((status) => (W.ifSignaled(status) ? 128 + W.termSig(status) : W.exitStatus(status)));
    exit.catch(() => {});
    return { value, exit };
  } catch (e) {
    if (isCkptError(e) && e.code === 'INTERRUPTED') throw new CkptError('INTERRUPTED', `${e.message}: ${abandoned}`, e.data);
    throw e;
  } finally {
    handlers.forEach((off) => off());
  }
}
