/**
 * A helper thread of an engine thread (src/helper-thread.ts): runs the jobs it
 * is sent, one at a time, and says when each is over. A compressed dump starts
 * it early (helper-thread.ts prepareHelper): it boots while the tree is read.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { writePages } from './dump/page-writer.js';
import type { HelperJob } from './helper-thread.js';
import { fullGc } from './full-gc.js';

const port = parentPort;
if (!port) throw new Error('helper-worker.js runs only as a worker thread');
const busy = new Int32Array((workerData as { busy: SharedArrayBuffer }).busy);
port.on('message', (job: HelperJob) => {
  // Each job reports its own failure through its shared memory and does not throw.
  writePages(job.data);
  // Free again only after a job that returned: a helper dying of a throw is never chosen again.
  Atomics.store(busy, 0, 0);
  // The job's shared memory (a compressed dump's 32 MiB of page slots) is garbage once this handler has
  // returned (not before: `job` holds it): collect it rather than keep it while waiting.
  setImmediate(fullGc);
});
