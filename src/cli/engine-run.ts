/**
 * `dump` and `restore` from the command line run the engine right here, on
 * the main thread, synchronously: no worker to boot (~60 ms before any work
 * on this machine) and no second copy of the engine's code to load.
 *
 * Run synchronously, the engine never lets Node's signal handlers run, so
 * SIGINT, SIGTERM and SIGHUP get a handler of ours in native code for the
 * time of the operation (src/sys/signal-flag.ts): it sets a word in a
 * SharedArrayBuffer, the engine looks at it at each step and between page
 * batches (src/fault.ts checkAbort) and fails there with INTERRUPTED, and its
 * failure path puts everything back. A signal after the engine's last step
 * changes nothing: the operation is complete. (The library runs the same
 * engine in worker threads instead: src/api/engine.ts.)
 */
import type { EngineOp } from '../api/wire.js';
import type { EngineProgress } from '../dump/dump.js';
import { CkptError, isCkptError } from '../errors.js';
import { watchAbort } from '../fault.js';
import { flagSignals } from '../sys/signal-flag.js';
import { startup, formatStartup } from './startup.js';
import { uptimeMs } from '../clock.js';

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

/** Run one dump or restore; `abandoned` completes the message of an INTERRUPTED error. */
export async function runEngine<T>(req: Omit<Request, 'log' | 'abort'>, listeners: EngineListeners, abandoned: string): Promise<CliRun<T>> {
  const { log, onProgress } = listeners;
  // Loaded only now: the other commands never pay for the engine's code.
  const restoring = req.op === 'restore' ? await import('../restore/restore.js') : undefined;
  const engine = restoring?.restoreSync ?? (await import('../dump/dump.js')).dumpSync;
  startup.engineLoaded = uptimeMs();
  const abort = new SharedArrayBuffer(4);
  const putBack = flagSignals(abort, Object.values(SIGNALS));
  watchAbort(abort);
  let value: T;
  try {
    value = (engine as (o: object) => unknown)({ ...req.opts, log, onProgress }) as T;
  } catch (e) {
    if (isCkptError(e) && e.code === 'INTERRUPTED') throw new CkptError('INTERRUPTED', `${e.message}: ${abandoned}`, e.data);
    throw e;
  } finally {
    watchAbort(undefined);
    putBack();
  }
  startup.engineDone = uptimeMs();
  log?.(formatStartup(startup));
  const pid = (value as { pid: number }).pid;
  // The restored process is this thread's child: ckpt waits for it as `ckpt run` does.
  const exit = !restoring || (req.opts as { detach?: boolean }).detach ? Promise.resolve(0) : nextTurn(() => restoring.waitForExit(pid));
  exit.catch(() => {});
  return { value, exit };
}

/** `fn`'s result, computed after this turn of the event loop: once the caller has printed what it has to (--json). */
function nextTurn<T>(fn: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    setImmediate(() => {
      try { resolve(fn()); } catch (e) { reject(e); }
    });
  });
}
