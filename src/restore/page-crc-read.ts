/**
 * The page CRC check of the verifier worker: pread in 1 MiB windows into one
 * buffer. It does not map the file as page-crc.ts does, so that the worker
 * never loads the FFI: each thread that loads koffi keeps native memory after
 * it exits, which a long-lived library process would pay on every restore.
 *
 * The window is small on purpose. The buffer is malloc'd in this short-lived
 * thread's glibc arena (Node's ArrayBuffer allocator), not mmapped: glibc
 * raises its mmap threshold up to 32 MiB once a large block was freed (the
 * dump's page slots are), and a thread arena keeps a freed top of that size
 * instead of trimming it. Every restore runs on a new thread, which now and
 * then gets a new arena (up to 8 per core): with a 16 MiB window each new
 * arena kept 16 MiB more resident in a long-lived library process (the lib
 * soak grew in 17 MiB steps). 1 MiB windows cost nothing in speed
 * (64 preads for 64 MiB) and bound what an arena can keep.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { PageCheck } from './page-crc.js';

const WINDOW = 1024 * 1024;

/** Index of the first range whose CRC differs, or -1. */
export function checkPageCrcsByRead(fd: number, checks: PageCheck[]): number {
  const buf = Buffer.allocUnsafe(WINDOW);
  for (const [i, c] of checks.entries()) {
    let crc = 0;
    for (let done = 0; done < c.len;) {
      const n = fs.readSync(fd, buf, 0, Math.min(WINDOW, c.len - done), c.offset + done);
      if (n <= 0) return i;
      crc = zlib.crc32(buf.subarray(0, n), crc);
      done += n;
    }
    if (crc !== c.crc) return i;
  }
  return -1;
}
