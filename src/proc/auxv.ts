import { readProcBuffer } from './read.js';
import { badProc } from './text.js';

/** The auxv types ckpt cares about (include/uapi/linux/auxvec.h, x86_64). */
export const AT_NULL = 0n;
export const AT_PHDR = 3n;
export const AT_PHNUM = 5n;
export const AT_PAGESZ = 6n;
export const AT_BASE = 7n;
export const AT_ENTRY = 9n;
export const AT_HWCAP = 16n;
export const AT_RANDOM = 25n;
export const AT_HWCAP2 = 26n;
export const AT_EXECFN = 31n;
export const AT_SYSINFO_EHDR = 33n;
export const AT_MINSIGSTKSZ = 51n;

export type AuxvEntry = [type: bigint, value: bigint];

const ENTRY_SIZE = 16;

/** /proc/PID/auxv: 64-bit little-endian (type, value) pairs, up to (not including) AT_NULL. */
export function parseAuxv(buf: Buffer): AuxvEntry[] {
  const entries: AuxvEntry[] = [];
  for (let off = 0; off + ENTRY_SIZE <= buf.length; off += ENTRY_SIZE) {
    const type = buf.readBigUInt64LE(off);
    if (type === AT_NULL) return entries;
    entries.push([type, buf.readBigUInt64LE(off + 8)]);
  }
  throw badProc('auxv', `${buf.length} bytes without AT_NULL`);
}

export const readAuxv = (pid: number): Buffer => readProcBuffer(pid, 'auxv');
