import { workerData } from 'node:worker_threads';
import { checkPageCrcsByRead } from './page-crc-read.js';
import type { PageCheck } from './page-crc.js';

const { fd, checks, state } = workerData as { fd: number; checks: PageCheck[]; state: SharedArrayBuffer };
const s = new Int32Array(state);
try {
  s[1] = checkPageCrcsByRead(fd, checks);
  Atomics.store(s, 0, 1);
} catch {
  Atomics.store(s, 0, 2);
}
Atomics.notify(s, 0);
