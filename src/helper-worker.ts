/**
 * A helper thread of an engine thread (src/helper-thread.ts): runs the jobs it
 * is sent, one at a time, and says when each is over. It loads koffi and
 * maps the CRC's code as it starts, before any job is due (a dump starts it
 * early for that: helper-thread.ts prepareHelper).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { writePages } from './dump/page-writer.js';
import { verifyPages } from './restore/page-crc-read.js';
import type { HelperJob } from './helper-thread.js';
import { fullGc } from './full-gc.js';
import { crc32Folds } from './sys/crc32.js';

const port = parentPort;
if (!port) throw new Error('helper-worker.js runs only as a worker thread');
const busy = new Int32Array((workerData as { busy: SharedArrayBuffer }).busy);
// koffi (~20 ms here) and the folding code, now rather than in the first job's CRC.
crc32Folds();

port.on('message', (job: HelperJob) => {
  // Each job reports its own failure through its shared memory and does not throw.
  if (job.kind === 'write-pages') writePages(job.data);
  else verifyPages(job.data);
  // Free again only after a job that returned: a helper dying of a throw is never chosen again.
  Atomics.store(busy, 0, 0);
  // The job's shared memory (a dump's 32 MiB of page slots) is garbage once this handler has
  // returned (not before: `job` holds it): collect it rather than keep it while waiting.
  setImmediate(fullGc);
});
