/**
 * The engine's helper threads: the compressing second stage of a large
 * --compress dump's page copy (dump/page-writer.ts) runs on one, on the second
 * core, while the engine thread goes on. A job talks to the engine thread only through its shared
 * memory (Atomics), since the engine thread never returns to its event loop
 * during an operation.
 *
 * A helper stays for the next job: the library keeps its engine workers
 * (src/api/engine.ts), and a new thread for every dump and restore left
 * native memory behind each time (Node keeps a little per worker it ever
 * started, and each new thread may get a glibc arena that keeps what the
 * thread freed), which a long-lived library process paid on every cycle. A
 * helper is unref'd: it never keeps its thread's event loop alive. A job goes
 * to a helper whose last job is over, or to a new one; at most MAX_SPARE
 * helpers wait with nothing to do.
 */
import type { Worker } from 'node:worker_threads';
import { builtin } from './builtin.js';
import type { PageWriterJob } from './dump/page-writer.js';

export type HelperJob = { kind: 'write-pages'; data: PageWriterJob };

interface Helper {
  worker: Worker;
  /** 1 from the moment a job is sent until the helper is done with it. */
  busy: Int32Array;
}

const helpers: Helper[] = [];
const MAX_SPARE = 1;

function newHelper(): Helper {
  const busy = new Int32Array(new SharedArrayBuffer(4));
  const { Worker } = builtin<typeof import('node:worker_threads')>('node:worker_threads');
  const worker = new Worker(new URL('./helper-worker.js', import.meta.url), { workerData: { busy: busy.buffer } });
  worker.unref();
  const helper = { worker, busy };
  worker.on('exit', () => {
    const i = helpers.indexOf(helper);
    if (i >= 0) helpers.splice(i, 1);
  });
  helpers.push(helper);
  return helper;
}

/**
 * Have a helper thread booting now, for a job soon: a new thread takes
 * ~55 ms here to run its first job, and a dump that starts it only when its
 * pages are due waits for it (a 64 MiB CLI dump waited 15-37 ms).
 * startHelperJob then takes it.
 */
export function prepareHelper(): void {
  if (!helpers.some((h) => Atomics.load(h.busy, 0) === 0)) newHelper();
}

/** Start `job` on a free helper thread; the caller follows it through the job's shared memory. */
export function startHelperJob(job: HelperJob): void {
  const free = helpers.filter((h) => Atomics.load(h.busy, 0) === 0);
  const helper = free.pop() ?? newHelper();
  for (const spare of free.slice(MAX_SPARE)) {
    helpers.splice(helpers.indexOf(spare), 1);
    void spare.worker.terminate();
  }
  Atomics.store(helper.busy, 0, 1);
  helper.worker.postMessage(job);
}
