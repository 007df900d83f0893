/**
 * The page CRC check of the verifier, on a helper thread (src/helper-thread.ts):
 * pread in 1 MiB windows into one buffer, rather than mapping the file as
 * page-crc.ts does.
 *
 * The window is small on purpose. The buffer is malloc'd in the thread's glibc
 * arena (Node's ArrayBuffer allocator), not mmapped: glibc raises its mmap
 * threshold up to 32 MiB once a large block was freed (the dump's page slots
 * are), and a thread arena keeps a freed top of that size instead of
 * trimming it. When every restore ran its verifier on a new thread, which now
 * and then got a new arena (up to 8 per core), a 16 MiB window left 16 MiB
 * more resident in a long-lived library process each time (the lib soak grew
 * in 17 MiB steps). 1 MiB windows cost nothing in speed (64 preads for
 * 64 MiB), and the helper keeps its one window.
 */
import fs from 'node:fs';
import { crc32 } from '../sys/crc32.js';
import type { PageCheck } from './page-crc.js';

const WINDOW = 1024 * 1024;
let window: Buffer | undefined;

/** Index of the first range whose CRC differs, or -1. */
export function checkPageCrcsByRead(fd: number, checks: PageCheck[]): number {
  window ??= Buffer.allocUnsafe(WINDOW);
  const buf = window;
  for (const [i, c] of checks.entries()) {
    let crc = 0;
    for (let done = 0; done < c.len;) {
      const n = fs.readSync(fd, buf, 0, Math.min(WINDOW, c.len - done), c.offset + done);
      if (n <= 0) return i;
      crc = crc32(buf.subarray(0, n), crc);
      done += n;
    }
    if (crc !== c.crc) return i;
  }
  return -1;
}

export interface VerifyPagesJob {
  fd: number;
  checks: PageCheck[];
  /** Int32Array [done, bad index or -1]: done 1 checked, 2 the check itself failed. */
  state: SharedArrayBuffer;
}

/** The verifier's job: the verdict goes to `state`, and the waiter is woken. */
export function verifyPages(job: VerifyPagesJob): void {
  const s = new Int32Array(job.state);
  try {
    s[1] = checkPageCrcsByRead(job.fd, job.checks);
    Atomics.store(s, 0, 1);
  } catch {
    Atomics.store(s, 0, 2);
  }
  Atomics.notify(s, 0);
}
