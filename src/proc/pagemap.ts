import fs from 'node:fs';
import { procError } from './read.js';

/** /proc/PID/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst), in the high word. */
export const PM_PRESENT = 0x80000000;   // bit 63
export const PM_SWAPPED = 0x40000000;   // bit 62
export const PM_FILE = 0x20000000;      // bit 61: file page or shared anon

/** An open /proc/PID/pagemap; read() fills `into` with one u64 per page. */
export class Pagemap {
  readonly fd: number;
  constructor(readonly pid: number) {
    try { this.fd = fs.openSync(`/proc/${pid}/pagemap`, 'r'); } catch (e) { throw procError(e, pid, 'open', `/proc/${pid}/pagemap`); }
  }
  /** Entries for `count` pages from virtual page `firstPage`; returns the high words. */
  read(firstPage: number, count: number, into: Buffer): Uint32Array {
    const len = count * 8;
    const n = fs.readSync(this.fd, into, 0, len, firstPage * 8);
    const words = new Uint32Array(into.buffer, into.byteOffset, n / 4);
    return words;
  }
  close(): void { fs.closeSync(this.fd); }
}
