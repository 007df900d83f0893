/**
 * The page CRC check of the verifier worker: pread in 16 MiB windows into one
 * buffer. It does not map the file as page-crc.ts does, so that the worker
 * never loads the FFI: each thread that loads koffi keeps native memory after
 * it exits, which a long-lived library process would pay on every restore.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { PageCheck } from './page-crc.js';

const WINDOW = 16 * 1024 * 1024;

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
