/**
 * The engine worker: one per library operation (src/api/engine.ts starts it).
 *
 * ptrace is per thread: the thread that seizes a task must make every later
 * ptrace() and wait4() on it. So a dump or restore runs start to finish here,
 * synchronously, and this thread is the tracer for all of it. After a restore
 * the worker stays: the restored process is a child of this thread (the seed
 * was spawned here and cloned it with CLONE_PARENT), its parent-death signal
 * (re-armed without `detach`) fires when this thread ends, and someone must
 * reap it. So the worker polls wait4(pid, WNOHANG) until it exits, reports
 * the status, and ends. Polling, not a blocking wait4: a blocked thread could
 * not be terminated, and Node joins its workers when the process exits.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import { dumpSync } from '../dump/dump.js';
import { restoreSync } from '../restore/restore.js';
import { showImage } from '../show.js';
import { checkKernel } from '../check.js';
import { wait4, W } from '../sys/syscalls.js';
import { WNOHANG } from '../sys/constants.js';
import { watchAbort } from '../fault.js';
import { unlessTraced, whileTracing } from './traced.js';
import { toWire, type EngineRequest, type WorkerMessage } from './wire.js';

const WNOTHREAD = 0x20000000;
const port = parentPort;
if (!port) throw new Error('engine-worker.js runs only as a worker thread');
const post = (m: WorkerMessage) => port.postMessage(m);

/** Reaps the restored process, polling (1 ms, doubling up to 100 ms) so the thread stays responsive. */
function reapLater(pid: number, traced: SharedArrayBuffer | undefined): void {
  let delay = 1;
  const poll = () => {
    let r;
    try {
      // __WNOTHREAD: only this thread's own children, not those of other threads.
      // Not while a dump worker of this process traces the pid (traced.ts).
      r = unlessTraced(traced, pid, () => wait4(pid, WNOHANG | WNOTHREAD));
    } catch (e) {
      // ECHILD: someone else reaped it (e.g. a child_process handle of the caller's with the same pid).
      post({ t: 'exit-error', error: toWire(e) });
      return;
    }
    if (r && r.pid === pid && (W.ifExited(r.status) || W.ifSignaled(r.status))) {
      post({ t: 'exit', status: r.status });
      return;
    }
    delay = Math.min(delay * 2, 100);
    setTimeout(poll, delay);
  };
  poll();
}

function run(req: EngineRequest): void {
  post({ t: 'start' });
  // Set by the caller's thread to stop the engine (the CLI's SIGINT/SIGTERM/SIGHUP): src/fault.ts.
  if (req.op === 'dump' || req.op === 'restore') watchAbort(req.abort);
  switch (req.op) {
    case 'dump': {
      const log = req.log ? (message: string) => post({ t: 'log', message }) : undefined;
      const onProgress = req.log ? (p: { phase: string; done: number; total: number }) => post({ t: 'progress', ...p }) : undefined;
      post({ t: 'result', value: whileTracing(req.traced, req.opts.pid, () => dumpSync({ ...req.opts, log, onProgress })) });
      return;
    }
    case 'restore': {
      const log = req.log ? (message: string) => post({ t: 'log', message }) : undefined;
      const onProgress = req.log ? (p: { phase: string; done: number; total: number }) => post({ t: 'progress', ...p }) : undefined;
      const r = restoreSync({ ...req.opts, log, onProgress });
      post({ t: 'result', value: r });
      reapLater(r.pid, req.traced);
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
 * A full collection, which an idle worker would otherwise never make: after a
 * large dump its heap still holds the page slots (32 MiB of SharedArrayBuffer)
 * as garbage while the worker waits in the pool (engine.ts).
 */
const collect: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

/** A full collection costs ~15 ms: only worth it when an operation left big buffers behind. */
const COLLECT_ABOVE = 16 * 1024 * 1024;

function handle(req: EngineRequest): void {
  try {
    run(req);
  } catch (e) {
    post({ t: 'error', error: toWire(e) });
  }
  const { arrayBuffers, heapUsed } = process.memoryUsage();
  if (arrayBuffers > COLLECT_ABOVE || heapUsed > 4 * COLLECT_ABOVE) collect();
}

// The first request comes as workerData; a reused worker gets the next ones as messages (engine.ts).
handle(workerData as EngineRequest);
port.on('message', handle);
