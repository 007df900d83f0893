import zlib from 'node:zlib';
import { mapFileRange } from '../sys/libc.js';

export interface PageCheck { offset: number; len: number; crc: number; what: string }

const WINDOW = 16 * 1024 * 1024;

/** Index of the first range whose CRC differs, or -1. */
export function checkPageCrcs(fd: number, checks: PageCheck[]): number {
  for (const [i, c] of checks.entries()) {
    let crc = 0;
    for (let done = 0; done < c.len; done += WINDOW) {
      const n = Math.min(WINDOW, c.len - done);
      const m = mapFileRange(fd, c.offset + done, n);
      try { crc = zlib.crc32(m.buf, crc); } finally { m.unmap(); }
    }
    if (crc !== c.crc) return i;
  }
  return -1;
}
